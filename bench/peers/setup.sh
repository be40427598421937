#!/usr/bin/env bash
# Creates (or completes) the venv of the benchmark's Python peers: dlt, Sling (its PyPI binary
# wheel), pandas, DuckDB's Python module and CLI, PyMySQL, ConnectorX. Idempotent; only PyPI is
# needed. Prints nothing on success but the venv's path on the last line, so that callers can do
#   venv="$(bash bench/peers/setup.sh | tail -1)"
# Override the place with OSIRIS_PEERS_VENV.
#
# Sling: `import sling` downloads its binary from the network unless SLING_BINARY names one; the
# venv's bin/sling is a wrapper that sets it to the binary of the sling-linux-* wheel, and
# ~/.sling is kept inside the venv (SLING_HOME_DIR) so that a run never reaches the network and
# never reads the user's own Sling connections. Sling's duckdb connections run the duckdb CLI of
# the duckdb-cli wheel (DUCKDB_PATH), the same DuckDB version as the embedded one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${OSIRIS_PEERS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/venv-peers}"
stamp="$venv/.requirements.txt"

if [ ! -x "$venv/bin/python" ]; then
    echo "bench/peers: creating $venv" >&2
    python3 -m venv "$venv"
fi
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    echo "bench/peers: installing $here/requirements.txt into $venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi

sling_bin="$("$venv/bin/python" -c 'import sling_linux_amd64 as s; print(s.SLING_BIN)' 2>/dev/null \
    || "$venv/bin/python" -c 'import sling_linux_arm64 as s; print(s.SLING_BIN)')"
chmod +x "$sling_bin"
mkdir -p "$venv/sling-home"
cat > "$venv/bin/sling" <<WRAP
#!/usr/bin/env bash
# Written by bench/peers/setup.sh: the PyPI binary of Sling, offline, with its own home.
export SLING_BINARY="$sling_bin"
export SLING_HOME_DIR="\${SLING_HOME_DIR:-$venv/sling-home}"
export DUCKDB_PATH="\${DUCKDB_PATH:-$venv/bin/duckdb}"
export SLING_DISABLE_TELEMETRY=true
# The PyPI duckdb CLI has json/parquet built in; without this Sling runs INSTALL json, which
# goes to the network.
export DUCKDB_USE_INSTALLED_EXTENSIONS=true
exec "$sling_bin" "\$@"
WRAP
chmod +x "$venv/bin/sling"
"$venv/bin/sling" --version >/dev/null
echo "$venv"
