#!/bin/sh
# The files of the osiris container image, and nothing else: the binary, libduckdb.so and the
# shared libraries `ldd` says they need (glibc, libstdc++, libgcc_s, the loader), each at the
# path the loader looks for it, plus an empty /tmp and the CA bundle when the build host has one.
#   sh deploy/kubernetes/rootfs.sh target/release/osiris /rootfs
# Used by the Dockerfile (build stage) and by tests/it/orchestration.rs, which runs the binary in a
# chroot of exactly these files: the list is complete when that test passes.
set -eu
bin="$1"
dest="$2"
: "${DUCKDB_LIB_DIR:?DUCKDB_LIB_DIR must name the directory of libduckdb.so (. scripts/dev-env.sh)}"
mkdir -p "$dest/usr/local/bin" "$dest/usr/local/lib" "$dest/tmp" "$dest/work"
chmod 1777 "$dest/tmp"
install -m 0755 "$bin" "$dest/usr/local/bin/osiris"
install -m 0644 "$DUCKDB_LIB_DIR/libduckdb.so" "$dest/usr/local/lib/libduckdb.so"
# `ldd` prints `name => /path (addr)` for libraries and `/path (addr)` for the loader.
LD_LIBRARY_PATH="$DUCKDB_LIB_DIR" ldd "$bin" "$DUCKDB_LIB_DIR/libduckdb.so" \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' \
    | grep -v '/libduckdb\.so$' | sort -u \
    | while read -r lib; do
        mkdir -p "$dest$(dirname "$lib")"
        cp -L "$lib" "$dest$lib"
    done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$dest/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/"
fi
