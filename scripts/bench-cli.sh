#!/usr/bin/env bash
# Times whole breakglass commands (process start to exit) with hyperfine on a release build, against the
# targets of the performance issue, and compares with cast (Foundry) doing the same kind of work:
#   verify  single pause() Safe tx (flags)           target < 20 ms
#   verify  composed halt bundle (file)               target < 20 ms
#   compose halt --nonce 0 -o … --force               target < 20 ms (compose + verify + write)
#   compose halt50 (50 pause actions, 50 contracts)   target < 30 ms
#   manifest check
#   import  the halt request's parts as PNG, and as camera-like JPEGs (screen photo with glare)  < 100 ms
#   cast calldata 'pause()'  /  cast mktx (offline, private key)   for the ratios
#   and the verify/cast pair of the goal (<= 0.35) again, back to back in 3 rounds: the figure to quote
#
# Usage: scripts/bench-cli.sh [--quick]      (--quick: fewer runs, for a smoke check)
# Env:   CAST=path/to/cast (default: .tools/npm's, then PATH); HYPERFINE_ARGS=extra hyperfine flags.
# Needs: cargo, hyperfine (apt-get install -y hyperfine), python3. Everything it writes is in a temp dir
# (under TMPDIR, default /tmp), including BREAKGLASS_CONFIG_DIR (the pin store) and BREAKGLASS_DATA_DIR (the
# audit log), removed on exit. Writes are fsynced, so the figures include the disk under TMPDIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUNS=(--warmup 5 --min-runs 30)
if [[ "${1:-}" == "--quick" ]]; then
    RUNS=(--warmup 2 --min-runs 5 --max-runs 10)
fi

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

if ! command -v hyperfine >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing hyperfine (apt)"
        apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq hyperfine >/dev/null; } ||
            die "could not install hyperfine"
    else
        die "hyperfine not found: apt-get install -y hyperfine (or cargo install hyperfine)"
    fi
fi
command -v python3 >/dev/null 2>&1 || die "python3 not found (used to print the summary)"

CAST="${CAST:-}"
if [[ -z "$CAST" ]]; then
    if [[ -x "$ROOT/.tools/npm/node_modules/@foundry-rs/cast-linux-amd64/bin/cast" ]]; then
        CAST="$ROOT/.tools/npm/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
    elif command -v cast >/dev/null 2>&1; then
        CAST="$(command -v cast)"
    fi
fi
[[ -n "$CAST" ]] || echo "note: cast not found (run scripts/test.sh once, or set CAST=): no cast comparison"

echo "==> cargo build --release"
cargo build --release --quiet
[[ -x "$ROOT/target/release/breakglass" ]] || die "target/release/breakglass was not built"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/bench-cli.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
# The binary as `cargo install` leaves it: a copy. The file the linker has just written starts slower than
# a byte-identical copy of it for as long as its pages stay cached as the linker left them (here 0.08 ms
# more for --version, 0.25 ms more for `verify`; once its cache is dropped and it is read back, it starts
# as fast as the copy), so timing it would time how the link was written, not breakglass.
cp "$ROOT/target/release/breakglass" "$TMP/breakglass"
BG="$TMP/breakglass"
export BREAKGLASS_CONFIG_DIR="$TMP/config"
mkdir -p "$BREAKGLASS_CONFIG_DIR"
# The audit log (one fsynced append per command) goes to the temp dir too: same disk as a real run.
export BREAKGLASS_DATA_DIR="$TMP/data"
export XDG_DATA_HOME="$TMP/data"

DEMO="$ROOT/examples/demo.toml"
SAFE=0x5AFe00000000000000000000000000000000a11C
POOL=0xb001000000000000000000000000000000000001
PAUSE=0x8456cb59 # pause()
# anvil's first well-known test key: never a real key.
PK=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

# The pinned path is what a guardian runs; pin both manifests in the temp pin store.
"$BG" --manifest "$DEMO" manifest pin --yes >/dev/null

# A 50-action playbook: 50 contracts, one pause() action each, all through the Safe (one MultiSend).
BIG="$TMP/halt50.toml"
python3 - "$BIG" <<'EOF'
import sys
n = 50
out = [
    'version = 1',
    'name = "bench: 50 pausable contracts"',
    'chain_id = 31337',
    '',
    '[safe]',
    'address = "0x5AFe00000000000000000000000000000000a11C"',
    'version = "1.4.1"',
    'owners = [',
    '  "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D",',
    '  "0x463e4e114AA57F54f2Fd2C3ec03572C6f75d84C2",',
    '  "0x5DD37a819253D52EC6c31f0323bd17C20c1B4CC2",',
    ']',
    'threshold = 2',
    '',
]
for i in range(n):
    out += [
        f'[contracts.c{i:02}]',
        f'address = "0x{0xb0010000 + i:08x}{"0" * 31}{i % 10}"',
        'abi = ["function pause()", "function paused() view returns (bool)"]',
        '',
    ]
for i in range(n):
    out += [
        '[[actions]]',
        f'id = "pause-c{i:02}"',
        f'title = "Pause contract {i}"',
        f'contract = "c{i:02}"',
        'function = "pause()"',
        'via = "safe"',
        'expect = ["paused() == true"]',
        '',
    ]
out += [
    '[[playbooks]]',
    'id = "halt4"',
    'title = "Halt four contracts"',
    'actions = [' + ', '.join(f'"pause-c{i:02}"' for i in range(4)) + ']',
    '',
    '[[playbooks]]',
    'id = "halt50"',
    'title = "Halt all 50 contracts"',
    'actions = [' + ', '.join(f'"pause-c{i:02}"' for i in range(n)) + ']',
]
open(sys.argv[1], 'w').write('\n'.join(out) + '\n')
EOF
"$BG" --manifest "$BIG" manifest check >/dev/null || die "the generated 50-action manifest does not load"
"$BG" --manifest "$BIG" manifest pin --yes >/dev/null

# Sanity: every command must succeed before it is timed (hyperfine would time failures too).
HALT="$TMP/halt.json"
"$BG" --manifest "$DEMO" compose halt --nonce 0 -o "$HALT" --force >/dev/null
"$BG" --manifest "$BIG" compose halt50 --nonce 0 -o "$TMP/halt50.json" --force >/dev/null
"$BG" --manifest "$BIG" verify "$TMP/halt50.json" >/dev/null
"$BG" --manifest "$DEMO" verify --safe "$SAFE" --to "$POOL" --data "$PAUSE" >/dev/null
"$BG" --manifest "$DEMO" verify "$HALT" >/dev/null
# The same 4-call MultiSendCallOnly batch, verified by breakglass (decode every call, judge it against the
# manifest, print, fsync the audit entry) and decoded by cast (`cast decode-calldata` of multiSend).
"$BG" --manifest "$BIG" compose halt4 --nonce 0 -o "$TMP/halt4.json" --force >/dev/null
read -r B4_TO B4_DATA < <(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["safe_tx"]; print(t["to"], t["data"])' "$TMP/halt4.json")
"$BG" --manifest "$BIG" verify --safe "$SAFE" --to "$B4_TO" --data "$B4_DATA" --operation 1 >/dev/null

# The request's parts as QR images: clean PNGs from `export --png`, and the same parts photographed as a
# phone photographs a laptop screen (rotated, in perspective, moiré, glare, JPEG 60): the test suite's
# camera model writes them (tests/support/camera.rs, BREAKGLASS_KEEP_CAMERA_IMAGES).
"$BG" --manifest "$DEMO" export "$HALT" --png "$TMP/png" --force >/dev/null
echo "==> camera-like images of the request's parts (the qr_camera test, debug build)"
BREAKGLASS_KEEP_CAMERA_IMAGES="$TMP/cam" cargo test --locked --quiet --test tests \
    qr_camera::every_part_of_a_request_imports_from_camera_like_images >/dev/null 2>&1 ||
    die "the qr_camera test failed (cargo test --test tests qr_camera)"
N_PARTS=$(find "$TMP/png" -name '*.png' | wc -l)
echo "    $N_PARTS parts"

CMDS=(
    "import-parts-png" "$BG --manifest $DEMO import $(find "$TMP/png" -name '*.png' | sort | tr '\n' ' ')-o $TMP/imp-png.json --force"
    "import-parts-glare" "$BG --manifest $DEMO import $(find "$TMP/cam/screen-photo-glare" -name '*.jpg' | sort | tr '\n' ' ')-o $TMP/imp-cam.json --force"
    "verify-pause" "$BG --manifest $DEMO verify --safe $SAFE --to $POOL --data $PAUSE"
    "verify-halt-bundle" "$BG --manifest $DEMO verify $HALT"
    "compose-halt" "$BG --manifest $DEMO compose halt --nonce 0 -o $TMP/halt-timed.json --force"
    "compose-halt50" "$BG --manifest $BIG compose halt50 --nonce 0 -o $TMP/halt50-timed.json --force"
    "verify-halt50-bundle" "$BG --manifest $BIG verify $TMP/halt50.json"
    "manifest-check" "$BG --manifest $DEMO manifest check"
    "manifest-check-50" "$BG --manifest $BIG manifest check"
    "breakglass-version" "$BG --version"
    "verify-batch4" "$BG --manifest $BIG verify --safe $SAFE --to $B4_TO --data $B4_DATA --operation 1"
)
if [[ -n "$CAST" ]]; then
    "$CAST" calldata 'pause()' >/dev/null || die "cast calldata failed"
    "$CAST" mktx --private-key "$PK" --nonce 0 --gas-limit 100000 --gas-price 2gwei \
        --priority-gas-price 1gwei --chain 31337 "$POOL" 'pause()' >/dev/null || die "cast mktx failed"
    CMDS+=(
        "cast-calldata" "$CAST calldata pause()"
        "cast-mktx" "$CAST mktx --private-key $PK --nonce 0 --gas-limit 100000 --gas-price 2gwei --priority-gas-price 1gwei --chain 31337 $POOL pause()"
        "cast-version" "$CAST --version"
        "cast-decode-batch4" "$CAST decode-calldata multiSend(bytes) $B4_DATA"
    )
fi

ARGS=()
for ((i = 0; i < ${#CMDS[@]}; i += 2)); do
    ARGS+=(--command-name "${CMDS[i]}" "${CMDS[i + 1]}")
done

echo "==> hyperfine (${RUNS[*]})"
# -N: no intermediate shell, so the numbers are the process alone.
# shellcheck disable=SC2086
hyperfine -N "${RUNS[@]}" ${HYPERFINE_ARGS:-} --style basic --export-json "$TMP/results.json" "${ARGS[@]}"

python3 - "$TMP/results.json" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ms = lambda name: res[name]["mean"] * 1e3
targets = {
    "verify-pause": 20, "verify-halt-bundle": 20, "compose-halt": 20, "compose-halt50": 30,
    "import-parts-png": 100, "import-parts-glare": 100,
}
print()
print(f"{'command':<22}{'mean ms':>9}{'± ms':>8}{'median':>9}{'min ms':>9}{'max ms':>9}  target (on the mean)")
for name, r in res.items():
    t = targets.get(name)
    mark = "" if t is None else f"< {t} ms: {'ok' if r['mean'] * 1e3 < t else 'MISSED'}"
    print(f"{name:<22}{r['mean']*1e3:9.2f}{r['stddev']*1e3:8.2f}{r['median']*1e3:9.2f}{r['min']*1e3:9.2f}{r['max']*1e3:9.2f}  {mark}")
pairs = [
    ("verify-pause", "cast-calldata", "verify of a pause() Safe tx vs cast building pause() calldata"),
    ("compose-halt", "cast-mktx", "compose+verify+write halt vs cast mktx (build + sign an EIP-1559 tx)"),
    ("breakglass-version", "cast-version", "process start-up alone (--version)"),
    ("verify-batch4", "cast-decode-batch4", "verify of a 4-call MultiSend batch vs cast decode-calldata of it (goal <= 0.35)"),
]
have = [p for p in pairs if p[0] in res and p[1] in res]
if have:
    print()
    print("ratios (breakglass / cast, of the means and of the medians; < 1 means breakglass is faster):")
    med = lambda name: res[name]["median"]
    for a, b, what in have:
        print(f"  {ms(a) / ms(b):5.2f} {med(a) / med(b):5.2f}  {a} / {b}: {what}")
missed = [n for n, t in targets.items() if n in res and ms(n) >= t]
print()
print("all targets met" if not missed else "targets MISSED: " + ", ".join(missed))
EOF

# The ratio with a goal, measured as a pair: both commands back to back in one hyperfine call, three
# rounds, so that a noisy stretch of a shared machine (minutes apart in the run above) weighs on both.
if [[ -n "$CAST" ]]; then
    PAIR_RUNS=(--warmup 10 --runs 300)
    [[ "${1:-}" == "--quick" ]] && PAIR_RUNS=(--warmup 2 --runs 20)
    echo
    echo "==> verify-batch4 and cast-decode-batch4 as a pair, 3 rounds (${PAIR_RUNS[*]})"
    for r in 1 2 3; do
        # shellcheck disable=SC2086
        hyperfine -N "${PAIR_RUNS[@]}" ${HYPERFINE_ARGS:-} --style none --export-json "$TMP/pair$r.json" \
            --command-name verify-batch4 "$BG --manifest $BIG verify --safe $SAFE --to $B4_TO --data $B4_DATA --operation 1" \
            --command-name cast-decode-batch4 "$CAST decode-calldata multiSend(bytes) $B4_DATA" >/dev/null 2>&1 ||
            die "hyperfine failed on the verify/cast pair"
    done
    python3 - "$TMP"/pair1.json "$TMP"/pair2.json "$TMP"/pair3.json <<'EOF'
import json, statistics, sys
rows = []
for path in sys.argv[1:]:
    r = {x["command"]: x for x in json.load(open(path))["results"]}
    v, c = r["verify-batch4"], r["cast-decode-batch4"]
    rows.append((v["mean"] * 1e3, c["mean"] * 1e3, v["median"] * 1e3, c["median"] * 1e3))
print(f"{'round':<7}{'verify mean':>12}{'cast mean':>11}{'ratio':>7}{'verify med':>12}{'cast med':>10}{'ratio':>7}")
for i, (vm, cm, vd, cd) in enumerate(rows, 1):
    print(f"{i:<7}{vm:12.2f}{cm:11.2f}{vm / cm:7.2f}{vd:12.2f}{cd:10.2f}{vd / cd:7.2f}")
mean_ratio = statistics.median(vm / cm for vm, cm, _, _ in rows)
median_ratio = statistics.median(vd / cd for _, _, vd, cd in rows)
ok = "met" if mean_ratio <= 0.35 else "MISSED"
print(f"verify/cast, median of the rounds: {mean_ratio:.2f} of the means, {median_ratio:.2f} of the medians (goal <= 0.35 on the means: {ok})")
EOF
fi
