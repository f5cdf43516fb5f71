#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: install dependencies, build
# (warnings are errors), run every test with ctest, then the sanitizer pass
# (ASan + UBSan build of the unit and golden tests), then ThreadSanitizer on
# the multi-threaded parts (engine, KV and prefix cache, prefix-cache store). FAST=1
# skips the sanitizer builds.
set -euo pipefail
cd "$(dirname "$0")"
bash packaging/install-deps.sh --tests
JOBS=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"
if [ "${FAST:-0}" != 1 ]; then
  echo "== sanitizer pass (ASan + UBSan) =="
  # -O1, as the ASan documentation advises: the unoptimised build ran the
  # slowest tests 4-16x slower (test_spec_sampled 83 s against 5 s on this machine).
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
    -DHEARTH_SANITIZE=ON -DHEARTH_WERROR=ON \
    -DHEARTH_CUDA=OFF -DHEARTH_VULKAN=OFF >/dev/null
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS" -L 'unit|golden' -E 'fuzz'
  echo "== ThreadSanitizer pass (engine, KV and prefix cache, cache store) =="
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_TSAN=ON -DHEARTH_WERROR=ON \
    -DHEARTH_CUDA=OFF -DHEARTH_VULKAN=OFF >/dev/null
  TSAN_TESTS="test_engine test_cache_store test_cache_store_crash test_kv_cache test_prefix_cache"
  cmake --build build-tsan -j"$JOBS" --target $TSAN_TESTS
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --test-dir build-tsan --output-on-failure -R "^unit/(${TSAN_TESTS// /|})\$"
fi
