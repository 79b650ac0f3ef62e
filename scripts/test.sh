#!/usr/bin/env bash
# Runs the whole breakglass test suite on a fresh Debian 12 machine: installs what it needs
# (scripts/setup.sh: apt packages, pinned npm tools into .tools/, test contracts), then
# cargo fmt --check, cargo clippy -D warnings, and cargo test --locked --all-targets "$@".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"

export BREAKGLASS_TOOLS="$TOOLS"
export PATH="$FOUNDRY_BIN/anvil-linux-amd64/bin:$FOUNDRY_BIN/cast-linux-amd64/bin:$PATH"

step "cargo fmt --check"
cargo fmt --all -- --check || die "code is not formatted: run cargo fmt --all"
step "cargo clippy -D warnings"
cargo clippy --locked --all-targets --quiet -- -D warnings || die "clippy found problems (see above)"

step "cargo test --locked --all-targets${*:+ $*}"
rc=0
cargo test --locked --all-targets "$@" || rc=$?
printf '==> cargo test exited %d [%ds total]\n' "$rc" "$((SECONDS - T0))"
if [[ -n "${BREAKGLASS_LEDGER_APP:-}" ]]; then
    printf '==> real Ledger app tests ran: Ethereum app 1.22.0 under Speculos %s (%s)\n' "$SPECULOS_VERSION" "$BREAKGLASS_LEDGER_APP"
else
    printf '==> real Ledger app tests DID NOT RUN: no app at %s (set BREAKGLASS_LEDGER_APP to its folder)\n' "$LEDGER_APP_DIR"
fi
exit "$rc"
