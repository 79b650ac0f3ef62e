#!/usr/bin/env bash
# Installs what breakglass's drill and tests need on a fresh Debian 12 machine (idempotent, cached):
#   1. Debian packages needed to build (libudev-dev, pkg-config) and by TUI tests (tmux);
#   2. pinned npm test tools (anvil, cast, Safe and OpenZeppelin artifacts, solc-js, Ledger JS)
#      into the git-ignored .tools/npm, from scripts/npm/package-lock.json;
#   3. the test contracts in tests/contracts/*.sol, compiled into .tools/contracts/<Name>.json;
#   4. when Ledger's real Ethereum app is at hand (../shared/ledger-app), Speculos and qemu-user-static;
# Steps 2 and 3 are skipped when their inputs have not changed (sha256 stamp files).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$ROOT/.tools"
NPM_SRC="$ROOT/scripts/npm"
NPM_DIR="$TOOLS/npm"
CONTRACTS_OUT="$TOOLS/contracts"

T0=$SECONDS
STEP_T=$SECONDS
step() {
    printf '==> %s [%ds]\n' "$*" "$((SECONDS - T0))"
    STEP_T=$SECONDS
}
done_step() {
    printf '    done in %ds\n' "$((SECONDS - STEP_T))"
}
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
sha() {
    sha256sum "$@" | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- 1. Debian packages
APT_PACKAGES=(libudev-dev pkg-config tmux)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
if ((${#missing[@]} == 0)); then
    step "apt packages (present)"
else
    step "apt packages: installing ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "missing Debian packages (${missing[*]}) and not root, and sudo is not available"
    fi
    "${SUDO[@]}" apt-get update -qq >/dev/null
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    done_step
fi

# ---------------------------------------------------------------- 2. npm tools
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup) first"

npm_quiet=(--ignore-scripts --no-audit --no-fund --loglevel=error)
if [[ -f "$NPM_SRC/package-lock.json" ]]; then
    npm_want="$(sha "$NPM_SRC/package.json" "$NPM_SRC/package-lock.json")"
else
    npm_want="no-lock"
fi
npm_stamp="$NPM_DIR/.installed-lock.sha256"
if [[ "$npm_want" != "no-lock" && -d "$NPM_DIR/node_modules" && -f "$npm_stamp" &&
    "$(cat "$npm_stamp")" == "$npm_want" ]]; then
    step "npm tools (cached)"
else
    step "npm tools: installing into .tools/npm"
    mkdir -p "$NPM_DIR"
    rm -f "$npm_stamp"
    cp "$NPM_SRC/package.json" "$NPM_DIR/package.json"
    if [[ -f "$NPM_SRC/package-lock.json" ]]; then
        cp "$NPM_SRC/package-lock.json" "$NPM_DIR/package-lock.json"
        npm ci --prefix "$NPM_DIR" "${npm_quiet[@]}" >/dev/null
    else
        # No lock committed yet: resolve the pinned versions and keep the lock for committing.
        rm -f "$NPM_DIR/package-lock.json"
        npm install --prefix "$NPM_DIR" "${npm_quiet[@]}" >/dev/null
        cp "$NPM_DIR/package-lock.json" "$NPM_SRC/package-lock.json"
        npm_want="$(sha "$NPM_SRC/package.json" "$NPM_SRC/package-lock.json")"
        echo "    wrote scripts/npm/package-lock.json: commit it"
    fi
    echo "$npm_want" >"$npm_stamp"
    done_step
fi

FOUNDRY_BIN="$NPM_DIR/node_modules/@foundry-rs"
ANVIL="$FOUNDRY_BIN/anvil-linux-amd64/bin/anvil"
CAST="$FOUNDRY_BIN/cast-linux-amd64/bin/cast"
for b in "$ANVIL" "$CAST"; do
    [[ -x "$b" ]] || die "$b missing or not executable after npm install"
done
"$ANVIL" --version >/dev/null || die "anvil does not run ($ANVIL)"

# ---------------------------------------------------------------- 3. test contracts
shopt -s nullglob
sol_files=(tests/contracts/*.sol)
shopt -u nullglob
if ((${#sol_files[@]} == 0)); then
    step "test contracts (none in tests/contracts)"
else
    sol_want="$(sha "${sol_files[@]}" "$NPM_SRC/compile-contracts.js" "$npm_stamp")"
    sol_stamp="$CONTRACTS_OUT/.sources.sha256"
    if [[ -f "$sol_stamp" && "$(cat "$sol_stamp")" == "$sol_want" ]]; then
        step "test contracts (cached)"
    else
        step "test contracts: compiling ${#sol_files[@]} files with solc-js"
        rm -rf "$CONTRACTS_OUT"
        mkdir -p "$CONTRACTS_OUT"
        node "$NPM_SRC/compile-contracts.js" "$NPM_DIR/node_modules" "$CONTRACTS_OUT" "${sol_files[@]}" |
            sed 's/^/    /'
        echo "$sol_want" >"$sol_stamp"
        done_step
    fi
fi

# ---------------------------------------------------------------- 4. the real Ledger app (optional)
# Ledger's Ethereum app 1.22.0 (Nano S Plus build) is not in the repository: it is used when the folder
# ../shared/ledger-app (or $BREAKGLASS_LEDGER_APP) holds it, under Speculos (PyPI, pinned) and Debian's
# qemu-user-static. Without it the real-app tests do not run, and the test command says so.
SPECULOS_VERSION=0.27.1
SPECULOS_DIR="$TOOLS/speculos"
LEDGER_APP_DIR="${BREAKGLASS_LEDGER_APP:-$ROOT/../shared/ledger-app}"
LEDGER_APP_ELF="$LEDGER_APP_DIR/app-ethereum-1.22.0-nanosp.elf"
if [[ -f "$LEDGER_APP_ELF" ]]; then
    LEDGER_APP_DIR="$(cd "$LEDGER_APP_DIR" && pwd)"
    if ! dpkg-query -W -f='${Status}' qemu-user-static 2>/dev/null | grep -q 'install ok installed'; then
        step "real Ledger app: installing qemu-user-static"
        if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
        "${SUDO[@]}" apt-get update -qq >/dev/null
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
        done_step
    fi
    spec_stamp="$SPECULOS_DIR/.installed-version"
    if [[ -x "$SPECULOS_DIR/bin/speculos" && -f "$spec_stamp" && "$(cat "$spec_stamp")" == "$SPECULOS_VERSION" ]]; then
        step "real Ledger app: speculos $SPECULOS_VERSION (cached)"
    else
        step "real Ledger app: installing speculos==$SPECULOS_VERSION into .tools/speculos"
        rm -rf "$SPECULOS_DIR"
        python3 -m venv "$SPECULOS_DIR"
        "$SPECULOS_DIR/bin/pip" install -q --disable-pip-version-check "speculos==$SPECULOS_VERSION" >/dev/null
        echo "$SPECULOS_VERSION" >"$spec_stamp"
        done_step
    fi
    export BREAKGLASS_LEDGER_APP="$LEDGER_APP_DIR"
    export BREAKGLASS_SPECULOS="$SPECULOS_DIR/bin/speculos"
else
    step "real Ledger app: NOT FOUND at $LEDGER_APP_DIR: the real-app tests will not run"
    unset BREAKGLASS_LEDGER_APP BREAKGLASS_SPECULOS
fi

export BREAKGLASS_TOOLS="$TOOLS"
export PATH="$FOUNDRY_BIN/anvil-linux-amd64/bin:$FOUNDRY_BIN/cast-linux-amd64/bin:$PATH"
