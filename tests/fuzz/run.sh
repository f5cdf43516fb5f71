#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer targets with clang, seed their
# corpora, run each for a bounded time; exit non-zero on any crash.
#
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_BUILD_DIR build directory (default <repo>/build-fuzz)
#   FUZZ_CC        compiler (default clang)
#   HEARTH_SHARED  shared test material (default <repo>/../shared)
# Crash inputs are left in $FUZZ_BUILD_DIR/artifacts/; the grown corpus in
# $FUZZ_BUILD_DIR/corpus/<target>/ is kept between runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${HEARTH_SHARED:-$root/../shared}
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found (libFuzzer needs clang)" >&2
    exit 2
fi

gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$here" -B "$build" "${gen[@]}" -DCMAKE_C_COMPILER="$cc" >"$build/configure.log" 2>&1 ||
        { cat "$build/configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j2 >"$build/build.log" 2>&1 || { cat "$build/build.log" >&2; exit 1; }

# ---------------------------------------------------------------- seeds
seeds=$build/seeds
rm -rf "$seeds"
mkdir -p "$seeds/fuzz_gguf" "$build/artifacts"
"$build/gguf_seed_writer" --write-seeds "$seeds/fuzz_gguf" >/dev/null
for m in stories260K-q4_0.gguf hearth-kjv-draft-q4_0.gguf; do
    [ -f "$shared/models/$m" ] && head -c 65536 "$shared/models/$m" >"$seeds/fuzz_gguf/head64k-$m"
done
smallest=$(ls -S "$shared"/vocab/*.gguf 2>/dev/null | tail -n 1 || true)
[ -n "$smallest" ] && cat "$smallest" >"$seeds/fuzz_gguf/$(basename "$smallest")"
mkdir -p "$seeds/fuzz_config"
cp "$root/packaging/config.example.yaml" "$seeds/fuzz_config/"
mkdir -p "$seeds/fuzz_chat_template"
"$build/fuzz_chat_template" --write-seeds "$seeds/fuzz_chat_template" >/dev/null 2>&1
# Committed seeds, if any: tests/fuzz/corpus/<target>/
for d in "$here"/corpus/*/; do
    [ -d "$d" ] && mkdir -p "$seeds/$(basename "$d")" && cp "$d"* "$seeds/$(basename "$d")/" 2>/dev/null || true
done

# ---------------------------------------------------------------- run
status=0
for exe in "$build"/fuzz_*; do
    [ -x "$exe" ] || continue
    t=$(basename "$exe")
    corpus=$build/corpus/$t
    mkdir -p "$corpus" "$seeds/$t"
    log=$build/$t.log
    echo "== $t: ${seconds}s"
    if "$exe" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$build/artifacts/$t-" "$corpus" "$seeds/$t" >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
        echo "$t: ok, ${execs:-?} execs in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files"
    else
        status=1
        echo "$t: FAILED (log: $log)" >&2
        grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -n 20 >&2 || tail -n 40 "$log" >&2
    fi
done
exit $status
