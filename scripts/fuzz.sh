#!/usr/bin/env bash
# Fuzzes every parser of user input for a bounded time (issue 13). Not part of CI's default path.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 240 s, every target)
#
# Targets live in fuzz/fuzz_targets/ (docs/security.md, "Fuzzing", says what each covers).
# Builds once, then runs one target at a time. Each target's corpus starts from the repo's own
# files (examples, component specs, fixtures) plus fuzz/seeds/<target>/; what libFuzzer adds goes
# to fuzz/corpus/<target>/ and crashes to fuzz/artifacts/<target>/ (both git-ignored). A crash
# found becomes a regression test in the crate it concerns, with its input in fuzz/regressions/.
#
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
# Sanitizer: none by default (FUZZ_SANITIZER=address to change): the workspace forbids unsafe
# code, so AddressSanitizer would mostly instrument dependencies, at the price of a second full
# build and half the executions. Debug assertions (overflow checks) are on.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${1:-240}"
shift || true
all_targets=(oml_parse connections_file component_spec csv_diagnose remote_line)
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

# The targets link DuckDB (the CSV diagnosis and the engine): use the prebuilt library.
# shellcheck source=dev-env.sh
. "$root/scripts/dev-env.sh"
# The fuzz crate is its own workspace with its own flags: keep its build apart from the main
# workspace's (shared) build dir.
export CARGO_TARGET_DIR="$root/fuzz/target"
export CARGO_BUILD_BUILD_DIR="$root/fuzz/target/build"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

flags=(--sanitizer "${FUZZ_SANITIZER:-none}" --debug-assertions)

# Seed corpora from the repo's own files. A csv_diagnose input starts with two control bytes
# (dialect, lines to skip), a remote_line input with two (line limit, buffer size).
seed() {
    local target="$1"
    shift
    mkdir -p "fuzz/corpus/$target"
    local file
    for file in "$@"; do
        [ -f "$file" ] || continue
        cp "$file" "fuzz/corpus/$target/repo-$(echo "$file" | tr '/' '_')"
    done
}
seed_prefixed() {
    local target="$1" prefix="$2"
    shift 2
    mkdir -p "fuzz/corpus/$target"
    local file
    for file in "$@"; do
        [ -f "$file" ] || continue
        { printf "$prefix"; cat "$file"; } >"fuzz/corpus/$target/repo-$(echo "$file" | tr '/' '_')"
    done
}
shopt -s nullglob
seed oml_parse examples/*.yaml examples/*/*.yaml
seed connections_file examples/*/osiris_connections.yaml
seed component_spec components/*/spec.yaml
seed_prefixed csv_diagnose '\340\000' examples/*/data/*.csv tests/fixtures/*/*.csv
seed_prefixed csv_diagnose '\341\001' examples/*/data/*.csv
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
done

echo "fuzz: building the targets" >&2
cargo fuzz build "${flags[@]}"

mkdir -p fuzz/target/logs
failed=()
for target in "${targets[@]}"; do
    echo "fuzz: running $target for ${seconds}s" >&2
    log="fuzz/target/logs/$target.log"
    if cargo fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
    echo "fuzz: $target: $status, ${runs:-?} executions (log: $log)" >&2
    if [ "$status" = FAILED ]; then
        grep -E 'panicked|ERROR|SUMMARY|Test unit written|timeout' "$log" | head -20 >&2 || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: failures in ${failed[*]}; inputs in fuzz/artifacts/" >&2
    exit 1
fi
