#!/usr/bin/env bash
# Hand-run benchmark: `osiris run` CSV -> DuckDB -> CSV against DuckDB alone doing the same work
# (CREATE TABLE AS SELECT * FROM read_csv; COPY TO), in the same run, through the same libduckdb.
#
#   bash bench/run.sh                 # 5,000,000 rows, 3 runs per side
#   bash bench/run.sh --rows 1000000 --runs 5
#   bash bench/run.sh --help          # every option of bench-csv
#   bash bench/run.sh mysql           # MySQL extract/write against the mariadb client and
#                                     # LOAD DATA (needs MariaDB, see testing_env/setup.sh)
#   bash bench/run.sh mysql --help    # every option of bench-mysql
#   bash bench/run.sh postgres        # PostgreSQL extract/write against psql's \copy
#
# Builds the release binaries first (prebuilt libduckdb.so, see scripts/dev-env.sh). The input
# CSV is generated once and cached in bench/out/ (git-ignored), with the outputs and the pipeline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=../scripts/dev-env.sh
. scripts/dev-env.sh

cargo build --release --no-default-features -p osiris-cli -p osiris-bench

if [ "${1:-}" = postgres ]; then
    shift
    exec "$CARGO_TARGET_DIR/release/bench-postgres" --osiris "$CARGO_TARGET_DIR/release/osiris" "$@"
fi
if [ "${1:-}" = mysql ]; then
    shift
    exec "$CARGO_TARGET_DIR/release/bench-mysql" --osiris "$CARGO_TARGET_DIR/release/osiris" "$@"
fi
exec "$CARGO_TARGET_DIR/release/bench-csv" --osiris "$CARGO_TARGET_DIR/release/osiris" "$@"
