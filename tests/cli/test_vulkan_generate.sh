#!/usr/bin/env bash
# test_vulkan_generate.sh - the Vulkan backend end to end through `hearth`.
#
# On the llama sample model in every weight type of ../shared/models (f32,
# f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q4_k_m, q5_k, q6_k: all the
# shaders decode), on qwen2/qwen3 (NEOX rope, q/k norms) and with the f32 and
# q8_0 KV caches, greedy `hearth run --backend vulkan` prints the same text as
# `--backend cpu`, with the 16/8-bit storage shaders the device allows (on
# lavapipe: all of the runs but one), with the subgroup shaders turned off
# (HEARTH_VK_SUBGROUPS=0) and with the 32-bit word reads of F16 data and int8
# quants (HEARTH_VK_STORAGE16=0, on Q8_0 weights and a Q8_0 KV cache) too. No divergence is known: the CPU quantizes
# activations to 8 bits for its dot products and the shaders do not, but on
# these models that never flips a greedy choice within 16 tokens; a model
# where it did would be documented here with the step and the logit margin.
# Then the engine on Vulkan: `hearth bench --concurrency 4` with a shared
# prompt prefix serves every request with prefix-cache hits.
# Skips (exit 77) when the build has no Vulkan backend or there is no device.
# Lavapipe is slow (~10 tok/s on these models): sizes keep this near a minute.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED. Owner: the Vulkan backend (backends/vulkan).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/vulkan_common.sh"
[ -f "$M/hearth-kjv-llama-f32.gguf" ] || { echo "skipped: no f32 sample model under $M"; exit 77; }

# ---------------------------------------------------------------- greedy parity
prompt="In the beginning God created"
# parity NAME MODEL [extra hearth args...]: cpu and vulkan print the same text
parity() {
    local name=$1 m=$2
    shift 2
    for be in cpu vulkan; do
        if ! "$H" run -m "$m" -p "$prompt" -n 16 --temp 0 --backend "$be" --cache-db none "$@" >"$T/$be.out" 2>"$T/$be.err"; then
            bad "$name --backend $be failed: $(tail -3 "$T/$be.err")"
        fi
    done
    grep -q "backend vulkan" "$T/vulkan.err" || bad "$name: the run did not report the vulkan backend"
    if grep -q "on cpu" "$T/vulkan.err"; then bad "$name: part of the model fell back to the CPU: $(cat "$T/vulkan.err")"; fi
    if cmp -s "$T/cpu.out" "$T/vulkan.out"; then
        echo "ok: $name greedy tokens match the CPU: $(tr '\n' ' ' <"$T/vulkan.out")"
    else
        bad "$name: vulkan output differs from cpu: cpu=[$(cat "$T/cpu.out")] vulkan=[$(cat "$T/vulkan.out")]"
    fi
}
n_types=0
for m in "$M"/hearth-kjv-llama-*.gguf; do
    ty=$(basename "$m" .gguf)
    ty=${ty#hearth-kjv-llama-}
    parity "llama $ty" "$m"
    if grep -q llvmpipe "$T/vulkan.err" && ! grep -q "; 16/8-bit storage\]" "$T/vulkan.err"; then
        bad "llama $ty: lavapipe has 16/8-bit storage but the run did not use it: $(head -1 "$T/vulkan.err")"
    fi
    n_types=$((n_types + 1))
done
[ $n_types -ge 12 ] || bad "expected the 12 llama weight types under $M, found $n_types"
parity "qwen2 q8_0" "$M/hearth-kjv-qwen2-q8_0.gguf"
parity "qwen3 q4_k" "$M/hearth-kjv-qwen3-q4_k.gguf"
parity "llama q8_0, q8_0 KV" "$M/hearth-kjv-llama-q8_0.gguf" --kv-type q8_0
parity "llama q4_k, f32 KV" "$M/hearth-kjv-llama-q4_k.gguf" --kv-type f32
HEARTH_VK_SUBGROUPS=0 parity "llama q6_k, no subgroups" "$M/hearth-kjv-llama-q6_k.gguf"
grep -q "no subgroup ops" "$T/vulkan.err" || bad "HEARTH_VK_SUBGROUPS=0 did not select the fallback shaders: $(head -1 "$T/vulkan.err")"
HEARTH_VK_STORAGE16=0 parity "llama q8_0, q8_0 KV, no 16/8-bit storage" "$M/hearth-kjv-llama-q8_0.gguf" --kv-type q8_0
grep -q "no 16/8-bit storage" "$T/vulkan.err" || bad "HEARTH_VK_STORAGE16=0 did not select the word-read shaders: $(head -1 "$T/vulkan.err")"

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
