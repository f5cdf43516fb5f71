#!/usr/bin/env bash
# test_fuzz_gguf.sh - run the GGUF fuzzer (tests/fuzz/run.sh) for a short,
# bounded time as part of ctest. Skips (exit 0) only when clang is missing.
#   FUZZ_SECONDS  seconds per fuzz target (default 30)
set -euo pipefail
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    echo "skipped: clang not found"
    exit 0
fi
src=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -z "${FUZZ_BUILD_DIR:-}" ] && [ -n "${HEARTH_BUILD:-}" ]; then
    export FUZZ_BUILD_DIR="$HEARTH_BUILD/fuzz"
fi
FUZZ_SECONDS=${FUZZ_SECONDS:-30} exec bash "$src/tests/fuzz/run.sh"
