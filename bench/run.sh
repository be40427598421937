#!/usr/bin/env bash
# Hand-run benchmark: `osiris run` CSV -> DuckDB -> CSV against DuckDB alone doing the same work
# (CREATE TABLE AS SELECT * FROM read_csv; COPY TO), in the same run, through the same libduckdb.
#
#   bash bench/run.sh                 # 5,000,000 rows, 3 runs per side
#   bash bench/run.sh --rows 1000000 --runs 5
#   bash bench/run.sh --help          # every option of bench-csv
#   bash bench/run.sh mysql           # MySQL extract against the mariadb client (5M rows;
#                                     # needs MariaDB, see testing_env/setup.sh)
#   bash bench/run.sh mysql --help    # every option of bench-mysql
#   bash bench/run.sh postgres        # PostgreSQL extract/write against psql's \copy
#
# The movements of issue 16, each side by side with its physical limit and its peers in one run
# (ratio, peak RSS, same rows checked; 1,000,000 rows and 3 runs unless --rows/--runs say else;
# peers from the venv of bench/peers/setup.sh, created on first use, 1 run each):
#   bash bench/run.sh csv-table        # CSV -> DuckDB table: vs CREATE TABLE AS read_csv; dlt
#   bash bench/run.sh csv-groupby-csv  # CSV -> GROUP BY -> CSV: vs DuckDB alone; Sling, pandas
#   bash bench/run.sh mariadb-duckdb   # MariaDB -> DuckDB table: vs `mariadb --quick`; dlt, Sling
#   bash bench/run.sh csv-mariadb      # CSV -> MariaDB table: vs LOAD DATA LOCAL INFILE; dlt, Sling
#                                      # (both need MariaDB; the source table is made once)
#
# Builds the release binaries first (prebuilt libduckdb.so, see scripts/dev-env.sh). The input
# CSV is generated once and cached in bench/out/ (git-ignored), with the outputs and the pipeline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=../scripts/dev-env.sh
. scripts/dev-env.sh

cargo build --release --no-default-features -p osiris-cli -p osiris-bench

# Issue 16's defaults (1M rows, 3 runs) unless given.
defaults=()
[[ " $* " == *" --rows "* ]] || defaults+=(--rows 1000000)
[[ " $* " == *" --runs "* ]] || defaults+=(--runs 3)
case "${1:-}" in
    csv-table | csv-groupby-csv | mariadb-duckdb | csv-mariadb)
        movement="$1"
        shift
        venv="$(bash "$root/bench/peers/setup.sh" | tail -1)"
        case "$movement" in
            csv-table) peers=dlt ;;
            csv-groupby-csv) peers=sling,pandas ;;
            *) peers=dlt,sling ;;
        esac
        # `--peers LIST` on the command line replaces the default list (`--peers ''`: none).
        [[ " $* " == *" --peers "* ]] || defaults+=(--peers "$peers")
        exec "$CARGO_TARGET_DIR/release/bench-csv" --osiris "$CARGO_TARGET_DIR/release/osiris" \
            --movement "$movement" --peers-venv "$venv" "${defaults[@]}" "$@"
        ;;
esac
if [ "${1:-}" = postgres ]; then
    shift
    exec "$CARGO_TARGET_DIR/release/bench-postgres" --osiris "$CARGO_TARGET_DIR/release/osiris" "$@"
fi
if [ "${1:-}" = mysql ]; then
    shift
    exec "$CARGO_TARGET_DIR/release/bench-mysql" --osiris "$CARGO_TARGET_DIR/release/osiris" "$@"
fi
exec "$CARGO_TARGET_DIR/release/bench-csv" --osiris "$CARGO_TARGET_DIR/release/osiris" "$@"
