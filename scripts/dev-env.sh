#!/usr/bin/env bash
# Source this file (`. scripts/dev-env.sh`) to build against DuckDB's prebuilt libduckdb.so 1.5.6
# instead of compiling DuckDB's C++ (about an hour on two cores). Idempotent and offline after the
# first call: the library is fetched once with `npm pack` into a per-user cache directory outside
# the checkout (override with OSIRIS_DUCKDB_DIR). A stable path keeps RUSTFLAGS (which carry it as
# rpath) identical across checkouts, so every clone and CI run reuses one build cache.
# See docs/adr/0001-duckdb-as-step-exchange.md ("Linking") for why there are two link modes.

_osiris_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_duckdb_pkg="@duckdb/node-bindings-linux-x64@1.5.6-r.1"
_duckdb_dir="${OSIRIS_DUCKDB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/osiris-rs/duckdb-1.5.6}"

if [ ! -f "$_duckdb_dir/libduckdb.so" ]; then
    command -v npm >/dev/null 2>&1 || { echo "dev-env: npm is needed to fetch $_duckdb_pkg" >&2; return 1 2>/dev/null || exit 1; }
    _tmp="$(mktemp -d)"
    ( cd "$_tmp" && npm pack --silent "$_duckdb_pkg" >/dev/null ) || { echo "dev-env: npm pack $_duckdb_pkg failed" >&2; rm -rf "$_tmp"; return 1 2>/dev/null || exit 1; }
    mkdir -p "$_duckdb_dir"
    tar -xzf "$_tmp"/*.tgz -C "$_tmp"
    cp "$_tmp/package/libduckdb.so" "$_duckdb_dir/libduckdb.so"
    rm -rf "$_tmp"
fi

export DUCKDB_LIB_DIR="$_duckdb_dir"
export LD_LIBRARY_PATH="$_duckdb_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The rpath lets the built `osiris` binary find the library without LD_LIBRARY_PATH.
export RUSTFLAGS="-C link-arg=-Wl,-rpath,$_duckdb_dir${OSIRIS_EXTRA_RUSTFLAGS:+ $OSIRIS_EXTRA_RUSTFLAGS}"
# Intermediate build artifacts live in one persistent build dir shared by every checkout and CI
# run on this machine (dependencies compile once); final binaries go to the checkout's own
# target/ so that two checkouts never run each other's `osiris` (cargo copies a binary into the
# target dir only when it rebuilds it).
export CARGO_BUILD_BUILD_DIR="${CARGO_BUILD_BUILD_DIR:-$HOME/.cache/osiris-rs/build}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$_osiris_root/target}"
# Every cargo invocation in this mode must leave `bundled` off.
export OSIRIS_CARGO_FLAGS="--workspace --no-default-features"
