#!/usr/bin/env bash
# Starts (or installs, then starts) what the test suite needs, so that the tests also pass on
# a fresh machine. Idempotent. Tests needing a service fail when it is missing; they never skip.
#
# Today the suite needs only the embedded DuckDB (fetched by scripts/dev-env.sh) and a scratch
# directory; MariaDB, PostgreSQL and PostgREST join here with the drivers that test against them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# Scratch space for tests (git-ignored), like the Python original's testing_env/tmp.
mkdir -p "$here/tmp"
# Remove scratch dirs of earlier runs older than a day; tests clean up after themselves, but a
# killed run cannot.
find "$here/tmp" -mindepth 1 -maxdepth 1 -mtime +1 -exec rm -rf {} + 2>/dev/null || true
