#!/usr/bin/env bash
# Starts (or installs, then starts) what the test suite needs, so that the tests also pass on
# a fresh machine. Idempotent. Tests needing a service fail when it is missing; they never skip.
#
# Needs: the embedded DuckDB (fetched by scripts/dev-env.sh), a scratch directory, and the real
# `psql` client (tests of `osiris serve`). MariaDB, PostgreSQL servers and PostgREST join here
# with the drivers that test against them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# The PostgreSQL client, from Debian's packages, for the PostgreSQL-wire server tests.
if ! command -v psql >/dev/null 2>&1; then
    echo "testing_env: installing postgresql-client (psql)" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql-client >/dev/null
fi

# Scratch space for tests (git-ignored), like the Python original's testing_env/tmp.
mkdir -p "$here/tmp"
# Remove scratch dirs of earlier runs older than a day; tests clean up after themselves, but a
# killed run cannot.
find "$here/tmp" -mindepth 1 -maxdepth 1 -mtime +1 -exec rm -rf {} + 2>/dev/null || true
