#!/usr/bin/env bash
# Starts (or installs, then starts) what the test suite needs, so that the tests also pass on
# a fresh machine. Idempotent. Tests needing a service fail when it is missing; they never skip.
#
# Needs: the embedded DuckDB (fetched by scripts/dev-env.sh), a scratch directory, and the real
# `psql` client (tests of `osiris serve`), MariaDB (mysql drivers). PostgreSQL servers and
# PostgREST join here with the drivers that test against them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# The PostgreSQL client, from Debian's packages, for the PostgreSQL-wire server tests.
if ! command -v psql >/dev/null 2>&1; then
    echo "testing_env: installing postgresql-client (psql)" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql-client >/dev/null
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

# Scratch space for tests (git-ignored), like the Python original's testing_env/tmp.
mkdir -p "$here/tmp"
# Remove scratch dirs of earlier runs older than a day; tests clean up after themselves, but a
# killed run cannot.
find "$here/tmp" -mindepth 1 -maxdepth 1 -mtime +1 -exec rm -rf {} + 2>/dev/null || true
