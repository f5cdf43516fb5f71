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
cmake --build "$BUILD" -j2 --target test_simd test_gemm >"$BUILD/build.log" 2>&1 || { cat "$BUILD/build.log"; exit 1; }
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

echo "test_neon_qemu: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
