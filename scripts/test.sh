#!/usr/bin/env bash
# The test command (see README): sets up everything the tests need on a fresh machine and runs
# the whole suite. Safe to run repeatedly.
#   - fetches DuckDB's prebuilt libduckdb.so 1.5.6 (npm) and links against it (scripts/dev-env.sh);
#   - starts the services the tests use (testing_env/setup.sh);
#   - runs every test of the workspace with cargo-nextest (cargo test when nextest is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh
bash testing_env/setup.sh

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run $OSIRIS_CARGO_FLAGS --no-fail-fast "$@"
else
    cargo test $OSIRIS_CARGO_FLAGS --no-fail-fast "$@"
fi
