#!/usr/bin/env bash
# Runs the drill: a whole incident in the console, on a local chain with the real Safe and OpenZeppelin
# contracts and the built-in Ledger simulator. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"
step "building breakglass"
cargo build --locked --quiet
exec "$ROOT/target/debug/breakglass" drill "$@"
