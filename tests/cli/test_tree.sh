#!/usr/bin/env bash
# test_tree.sh - the tree's structural rules (tools/check_tree.py): floors
# core < backends < runtime < app, the concept-folder order inside runtime/
# and app/, no include loop, no include that names no file, no oversized file
# or function, no app/ file reaching into the backend vtable. First the checker is shown to catch each kind of finding on a
# small tree made here (so it can fail), then it must pass on the checkout.
set -euo pipefail
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
CHECK="python3 $SRC/tools/check_tree.py"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
expect() { # expect NAME PATTERN: the last run's output has a line matching PATTERN
    if grep -qE -- "$2" "$T/out"; then
        pass=$((pass + 1))
    else
        echo "FAIL $1: no line matching '$2' in:"
        cat "$T/out"
        fail=$((fail + 1))
    fi
}

mkdir -p "$T/bad/core" "$T/bad/backends/cpu" "$T/bad/backends/cuda" "$T/bad/runtime/text" \
    "$T/bad/runtime/format" "$T/bad/runtime/serving" "$T/bad/app/cli"
cat >"$T/bad/core/dtype.h" <<'C'
#include "runtime/text/tokenizer.h"
C
cat >"$T/bad/runtime/text/tokenizer.h" <<'C'
#include "core/dtype.h"
C
cat >"$T/bad/runtime/format/gguf.h" <<'C'
#include "runtime/serving/engine.h"
#include "runtime/format/missing.h"
C
cat >"$T/bad/runtime/serving/engine.h" <<'C'
#include "a.h"
C
cat >"$T/bad/runtime/serving/a.h" <<'C'
#include "b.h"
C
cat >"$T/bad/runtime/serving/b.h" <<'C'
#include "a.h"
C
cat >"$T/bad/backends/cpu/k.c" <<'C'
#include "backends/cuda/cuda_backend.h"
C
touch "$T/bad/backends/cuda/cuda_backend.h" "$T/bad/backends/backend_impl.h"
echo '#include "backends/backend_impl.h"' >"$T/bad/app/cli/peek.c"
{
    echo 'int long_one(int x) {'
    for i in $(seq 1 160); do echo "    x += $i;"; done
    echo '    return x;'
    echo '}'
    echo '// check_tree: flat table'
    echo 'int table_one(int x) {'
    for i in $(seq 1 160); do echo "    x += $i;"; done
    echo '    return x;'
    echo '}'
} >"$T/bad/app/cli/long.c"
for i in $(seq 1 1600); do echo "int v$i;"; done >"$T/bad/app/cli/big.c"

if $CHECK "$T/bad" >"$T/out" 2>&1; then
    echo "FAIL: check_tree.py passed a tree with violations"
    fail=$((fail + 1))
fi
expect upward 'core/dtype.h:1: core/ includes runtime/text/tokenizer.h from runtime/'
expect sibling-order 'runtime/format/gguf.h:1: runtime/format includes runtime/serving/engine.h'
expect missing 'runtime/format/gguf.h:2: #include "runtime/format/missing.h" names no file'
expect loop 'include loop: .*runtime/serving/a.h -> runtime/serving/b.h -> runtime/serving/a.h'
expect loop-across-floors 'include loop: .*core/dtype.h -> runtime/text/tokenizer.h -> core/dtype.h'
expect device 'backends/cpu/k.c:1: device folder backends/cpu includes backends/cuda/cuda_backend.h'
expect vtable 'app/cli/peek.c:1: app/ includes backends/backend_impl.h'
expect long-function 'app/cli/long.c:1: function long_one is 163 lines'
expect big-file 'app/cli/big.c:1: 1601 lines, over the 1500-line limit'
if grep -q table_one "$T/out"; then
    echo "FAIL: a function marked 'check_tree: flat table' was reported"
    fail=$((fail + 1))
else
    pass=$((pass + 1))
fi

if $CHECK "$SRC" >"$T/out" 2>&1; then
    pass=$((pass + 1))
    tail -n 1 "$T/out"
else
    echo "FAIL: the checkout breaks its structural rules:"
    cat "$T/out"
    fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
