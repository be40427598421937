#!/usr/bin/env bash
# Hand-run benchmark: per-step overhead of `osiris run --target remote` (worker over stdio) against
# the same 20-step pipeline of tiny steps run locally. Goal: under 20 ms per step.
#
#   bash bench/remote.sh                # 20 steps, 7 runs per side
#   bash bench/remote.sh --steps 50 --runs 11
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=../scripts/dev-env.sh
. scripts/dev-env.sh

cargo build --release --no-default-features -p osiris-cli -p osiris-bench

exec "$CARGO_TARGET_DIR/release/bench-remote" --osiris "$CARGO_TARGET_DIR/release/osiris" "$@"
