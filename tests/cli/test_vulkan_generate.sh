#!/usr/bin/env bash
# test_vulkan_generate.sh - the Vulkan backend end to end through `hearth`.
#
# On the sample models in every weight type the Vulkan backend runs (f32, f16,
# q8_0, q4_0), greedy `hearth run --backend vulkan` prints the same text as
# `--backend cpu`. Then the engine on Vulkan: `hearth bench --concurrency 4`
# with a shared prompt prefix serves every request with prefix-cache hits.
# Skips (passes) when the build has no Vulkan backend or there is no device.
# Lavapipe is slow (~4 tok/s on these models): sizes keep this under a minute.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED. Owner: the Vulkan backend (issue 7).
set -uo pipefail

H=${HEARTH_BIN:-hearth}
SHARED=${HEARTH_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
fails=0
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
M="$SHARED/models"
[ -f "$M/hearth-kjv-llama-f32.gguf" ] || { echo "skipped: no sample models under $M"; exit 0; }

if ! "$H" run -m "$M/hearth-kjv-llama-q8_0.gguf" -p "In" -n 1 --temp 0 --backend vulkan --cache-db none \
    >"$T/probe.out" 2>"$T/probe.err"; then
    if grep -qiE "no Vulkan|no usable Vulkan|no such device|Vulkan driver" "$T/probe.err"; then
        echo "skipped: no Vulkan device ($(tail -1 "$T/probe.err"))"
        exit 0
    fi
    bad "vulkan probe run failed: $(cat "$T/probe.err")"
fi

# ---------------------------------------------------------------- greedy parity
prompt="In the beginning God created"
for ty in f32 f16 q8_0 q4_0; do
    m="$M/hearth-kjv-llama-$ty.gguf"
    for be in cpu vulkan; do
        if ! "$H" run -m "$m" -p "$prompt" -n 16 --temp 0 --backend "$be" --cache-db none >"$T/$be.out" 2>"$T/$be.err"; then
            bad "$ty --backend $be failed: $(tail -3 "$T/$be.err")"
        fi
    done
    grep -q "backend vulkan" "$T/vulkan.err" || bad "$ty: the run did not report the vulkan backend"
    if cmp -s "$T/cpu.out" "$T/vulkan.out"; then
        echo "ok: $ty greedy tokens match the CPU: $(tr '\n' ' ' <"$T/vulkan.out")"
    else
        bad "$ty: vulkan output differs from cpu: cpu=[$(cat "$T/cpu.out")] vulkan=[$(cat "$T/vulkan.out")]"
    fi
done

# ---------------------------------------------------------------- unsupported types say so
if "$H" run -m "$M/hearth-kjv-llama-q4_k.gguf" -p "In" -n 1 --temp 0 --backend vulkan --cache-db none \
    >"$T/k.out" 2>"$T/k.err"; then
    bad "q4_k on vulkan should be refused (no shader yet)"
else
    grep -q "q4_k\|Q4_K" "$T/k.err" || bad "q4_k refusal does not name the type: $(cat "$T/k.err")"
fi

# ---------------------------------------------------------------- engine: concurrency + prefix cache
if "$H" bench --concurrency 4 --backend vulkan -m "$M/hearth-kjv-llama-q8_0.gguf" --requests 8 --prompt-tokens 40 \
    --shared-prefix 32 --output-tokens 8 >"$T/bench.out" 2>&1; then
    hits=$(sed -n 's/.*: \([0-9]*\) of [0-9]* prompt tokens from the prefix cache.*/\1/p' "$T/bench.out")
    [ "${hits:-0}" -gt 0 ] || bad "bench on vulkan: no prefix-cache hits: $(cat "$T/bench.out")"
    grep -q "| vulkan" "$T/bench.out" || bad "bench table does not name the vulkan backend"
else
    bad "bench --concurrency 4 on vulkan failed: $(tail -5 "$T/bench.out")"
fi

[ $fails -eq 0 ] && echo "test_vulkan_generate: ok" || echo "test_vulkan_generate: $fails failure(s)"
exit $((fails > 0))
