#!/usr/bin/env bash
# Hand-run benchmark: the graphql.extractor step (200,000 rows in 200 pages from a local
# async-graphql server into DuckDB) against downloading the same pages with the same client.
#
#   bash bench/run-graphql.sh                      # 200,000 rows, 200 pages, 5 runs per side
#   bash bench/run-graphql.sh --rows 100000 --pages 100 --runs 3
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=../scripts/dev-env.sh
. scripts/dev-env.sh

cargo build --release --no-default-features -p osiris-bench --bin bench-graphql

exec "$CARGO_TARGET_DIR/release/bench-graphql" "$@"
