#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: install dependencies, build
# (warnings are errors), run every test with ctest, then the sanitizer pass
# (ASan + UBSan build of the unit tests). FAST=1 skips the sanitizer build.
set -euo pipefail
cd "$(dirname "$0")"
bash packaging/install-deps.sh
JOBS=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"
if [ "${FAST:-0}" != 1 ]; then
  echo "== sanitizer pass (ASan + UBSan) =="
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHEARTH_SANITIZE=ON -DHEARTH_WERROR=ON \
    -DHEARTH_CUDA=OFF -DHEARTH_VULKAN=OFF >/dev/null
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS" -L 'unit|golden' -E 'fuzz'
fi
