#!/usr/bin/env bash
# Hand-run benchmark of `osiris serve --pg`: one session with a ROWS-row step table (5 columns:
# bigint, text, numeric(12,2), timestamp, boolean) fetched whole through psql `\copy ... TO` and
# through pgJDBC with fetchSize=10000, against the same query in DuckDB itself (COPY ... TO a CSV
# file, the work psql's \copy asks for), in one run. Reports seconds and the server's peak RSS
# (VmHWM) and CPU seconds per client (the rest of the wall time is the client's or waiting); a
# fresh server per client. Goal (issue 15): within 3x of DuckDB, peak RSS under 200 MB whatever
# ROWS.
#
#   bash bench/pg.sh            # 10 000 000 rows
#   bash bench/pg.sh 1000000
# Needs psql, a JDK and pgJDBC (testing_env/setup.sh installs them).
set -euo pipefail

rows="${1:-10000000}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=../scripts/dev-env.sh
. scripts/dev-env.sh
# The package set of bench/run.sh, so that the shared release build is reused as it is.
cargo build --release --no-default-features -p osiris-cli -p osiris-bench
osiris="$CARGO_TARGET_DIR/release/osiris"
jar="${OSIRIS_PG_JDBC_JAR:-/usr/share/java/postgresql.jar}"

work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
cat > gen.yaml <<YAML
oml_version: "0.1.0"
name: pg-bench
steps:
  - id: big
    component: duckdb.processor
    mode: transform
    config:
      query: |
        SELECT i AS id, 'customer-' || (i % 1000) AS customer,
               ((i % 100000) / 100.0)::DECIMAL(12,2) AS amount,
               TIMESTAMP '2024-01-01' + INTERVAL (i % 86400) SECOND AS at, i % 3 = 0 AS flag
        FROM range($rows) t(i)
YAML
"$osiris" run gen.yaml --session-id bench >/dev/null
query='SELECT * FROM "bench"."big"'

seconds() { date +%s.%N; }
elapsed() { echo "$(seconds) - $1" | bc; }

export OSIRIS_PG_PASSWORD=bench-pw PGPASSWORD=bench-pw
start_server() {
    "$osiris" serve --pg 127.0.0.1:0 > server.out 2>&1 &
    server=$!
    for _ in $(seq 1 100); do grep -q postgresql:// server.out 2>/dev/null && break; sleep 0.05; done
    port="$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' server.out | head -1)"
}
stop_server() {
    peak="$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status")"
    # utime + stime, in clock ticks.
    cpu="$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$server/stat")"
    kill "$server"; wait "$server" 2>/dev/null || true
}

# DuckDB itself (the Python package of the same DuckDB version, from the clients' venv): the
# same query written as CSV by DuckDB's own COPY.
venv="${OSIRIS_PG_CLIENTS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/venv}"
t0="$(seconds)"
"$venv/bin/python" -c "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True).execute(sys.argv[2])" \
    "$work/.osiris_sessions/bench/pipeline_data.duckdb" \
    "COPY (SELECT * FROM big) TO '$work/duckdb.csv' (FORMAT csv, HEADER)"
duckdb_s="$(elapsed "$t0")"

start_server
t0="$(seconds)"
psql "postgresql://osiris@127.0.0.1:$port/osiris" -X -q -c "\\copy ($query) TO '$work/psql.csv' CSV HEADER"
psql_s="$(elapsed "$t0")"
stop_server
psql_peak="$peak"
psql_cpu="$cpu"
psql_rows="$(($(wc -l < "$work/psql.csv") - 1))"

javac -d "$work" "$root/bench/pg/Fetch.java"
start_server
t0="$(seconds)"
jdbc_out="$(java -cp "$work:$jar" Fetch "jdbc:postgresql://127.0.0.1:$port/osiris" bench-pw "$query" 10000)"
jdbc_s="$(elapsed "$t0")"
stop_server
jdbc_peak="$peak"
jdbc_cpu="$cpu"

printf '%-28s %10s %8s %14s %12s\n' "path ($rows rows)" seconds "x duckdb" "server peak MB" "server cpu s"
printf '%-28s %10.2f %8s %14s %12s\n' "duckdb COPY TO csv" "$duckdb_s" 1.0 - -
printf '%-28s %10.2f %8.1f %14s %12s\n' "psql \\copy TO (csv)" "$psql_s" "$(echo "$psql_s / $duckdb_s" | bc -l)" "$psql_peak" "$psql_cpu"
printf '%-28s %10.2f %8.1f %14s %12s\n' "pgJDBC fetchSize=10000" "$jdbc_s" "$(echo "$jdbc_s / $duckdb_s" | bc -l)" "$jdbc_peak" "$jdbc_cpu"
echo "rows: psql $psql_rows, jdbc ${jdbc_out%% *}"
