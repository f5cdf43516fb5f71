#!/usr/bin/env bash
# test_neon_qemu.sh - the arm64 NEON kernels, really run: cross-compile the
# CPU kernels and their tests (HEARTH_KERNELS_ONLY, cmake/aarch64-linux-gnu.cmake)
# and run them under qemu-user on two emulated CPUs:
#   -cpu cortex-a53  Armv8.0, no dotprod: the dispatcher must pick plain NEON;
#   -cpu max         has dotprod: the SDOT family is tested and picked.
# test_simd checks every weight type's dot kernel and every activation
# converter of both families against the scalar reference (bytes, bits, or
# the float tolerance); test_gemm checks the Q8_0/Q4_0 tiles bit for bit.
# HEARTH_CPU_ISA=neon must cap the pick to plain NEON on the dotprod CPU, and
# HEARTH_CPU_ISA=scalar must give the scalar kernels (the tests' own re-exec of
# themselves cannot go through qemu, so the --scalar-child runs are done here).
# Then the forward pass: neon_greedy (built for arm64 from the runtime) must
# produce the same 24 greedy tokens as the x86-64 `hearth run --temp 0` on
# every model in $HEARTH_SHARED/models (dotprod CPU), and on the KJV llama
# quantizations on the Cortex-A53 too. Skipped when no x86 `hearth` binary
# ($HEARTH_BIN) or no models are there.
# Exits 77 (skipped) when the cross compiler or qemu-aarch64 is absent;
# packaging/install-deps.sh installs both.
set -euo pipefail

SRC=${HEARTH_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
CC_CROSS=aarch64-linux-gnu-gcc
SYSROOT=/usr/aarch64-linux-gnu
for tool in "$CC_CROSS" qemu-aarch64 cmake; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool not found (bash packaging/install-deps.sh installs gcc-aarch64-linux-gnu and qemu-user)"
        exit 77
    fi
done

BUILD=${HEARTH_BUILD:-$SRC/build}/aarch64-kernels
mkdir -p "$BUILD"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$SRC" -B "$BUILD" "${GEN[@]}" -DCMAKE_TOOLCHAIN_FILE="$SRC/cmake/aarch64-linux-gnu.cmake" \
        -DHEARTH_KERNELS_ONLY=ON -DHEARTH_WERROR=ON -DCMAKE_BUILD_TYPE=Release >"$BUILD/configure.log" 2>&1 ||
        { cat "$BUILD/configure.log"; exit 1; }
fi
cmake --build "$BUILD" -j2 --target test_simd test_gemm neon_greedy >"$BUILD/build.log" 2>&1 || { cat "$BUILD/build.log"; exit 1; }
BIN=$BUILD/bin

pass=0
fail=0
# run NAME EXPECT CPU [ENV...] -- ARGS...: run ARGS under qemu on CPU with ENV;
# it must exit 0 and print a line matching EXPECT.
run() {
    local name=$1 expect=$2 cpu=$3
    shift 3
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    local out
    if out=$(env HEARTH_TEST_NO_BENCH=1 HEARTH_TEST_NO_REEXEC=1 "${envs[@]}" \
        timeout 120 qemu-aarch64 -cpu "$cpu" -L "$SYSROOT" "$@" 2>&1) && grep -q -- "$expect" <<<"$out"; then
        echo "ok   $name: $(tail -n 1 <<<"$out")"
        pass=$((pass + 1))
    else
        echo "FAIL $name (wanted a line matching '$expect'):"
        tail -n 30 <<<"$out"
        fail=$((fail + 1))
    fi
}

run "kernels, plain NEON (cortex-a53)" "neon level: neon$" cortex-a53 -- "$BIN/test_simd"
run "kernels, NEON + dotprod (max)" "neon level: dotprod$" max -- "$BIN/test_simd"
run "kernels, HEARTH_CPU_ISA=neon caps dotprod" "neon level: neon$" max HEARTH_CPU_ISA=neon -- "$BIN/test_simd"
run "kernels, HEARTH_CPU_ISA=scalar" "0 failed" max HEARTH_CPU_ISA=scalar -- "$BIN/test_simd" --scalar-child
run "gemm tiles, plain NEON (cortex-a53)" "neon-dotprod: not usable" cortex-a53 -- "$BIN/test_gemm"
run "gemm tiles, NEON + dotprod (max)" "neon-dotprod q4_0" max -- "$BIN/test_gemm"
run "gemm, HEARTH_CPU_ISA=scalar" "0 failed" max HEARTH_CPU_ISA=scalar -- "$BIN/test_gemm" --scalar-child

# ---------------------------------------------------------------- forward pass
SHARED=${HEARTH_SHARED:-$SRC/../shared}
HOST_BIN=${HEARTH_BIN:-$SRC/build/bin/hearth}
# ids FIELD JSON: the comma-separated ids of "FIELD":[...] in one JSON line.
ids() { grep -o "\"$1\":\[[0-9,]*\]" <<<"$2" | grep -o '[0-9][0-9,]*' || true; }
greedy_same() { # greedy_same CPU MODEL.gguf
    local cpu=$1 model=$2 json prompt want got
    json=$(timeout 60 "$HOST_BIN" run -m "$model" -p "And God said" -n 24 --temp 0 --json --no-prefix-cache \
        --backend cpu -t 1 2>/dev/null) || true
    prompt=$(ids prompt_tokens "$json")
    want=$(ids tokens "$json")
    if [ -z "$prompt" ] || [ -z "$want" ]; then
        echo "FAIL forward $(basename "$model"): x86 hearth run gave no tokens"
        fail=$((fail + 1))
        return
    fi
    got=$(timeout 120 qemu-aarch64 -cpu "$cpu" -L "$SYSROOT" "$BIN/neon_greedy" "$model" 24 "$prompt" 2>&1) || true
    if [ "$got" = "$want" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL forward $(basename "$model") on $cpu: greedy tokens differ from x86-64"
        echo "  x86-64: $want"
        echo "  arm64:  $got"
        fail=$((fail + 1))
    fi
}
models=("$SHARED"/models/*.gguf)
if [ ! -x "$HOST_BIN" ] || [ ! -f "${models[0]}" ]; then
    echo "note: forward-pass check skipped (no x86 hearth at $HOST_BIN or no models in $SHARED/models)"
else
    before=$pass
    for m in "${models[@]}"; do greedy_same max "$m"; done
    for q in q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k bf16; do
        greedy_same cortex-a53 "$SHARED/models/hearth-kjv-llama-$q.gguf"
    done
    echo "ok   forward pass: $((pass - before)) model runs under qemu give the x86-64 greedy tokens"
fi

echo "test_neon_qemu: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
