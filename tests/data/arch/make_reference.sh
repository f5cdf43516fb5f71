#!/usr/bin/env bash
# make_reference.sh - regenerate the llama.cpp reference logits in this folder.
# Usage: make_reference.sh HEARTH_BIN LOGITS_BIN OUT_DIR
#   HEARTH_BIN  the hearth binary (for `hearth mkmodel`)
#   LOGITS_BIN  a small C program linked against native libllama that prints,
#               per prompt, the top-10 logits at the last prompt position and
#               the greedy tokens (see README.md; it is not part of Hearth)
#   OUT_DIR     where the models and the JSON go
set -euo pipefail
H=$1 L=$2 O=$3
mkdir -p "$O"
# prompts (token ids): 2, 7, 20 and 45 tokens; the last two are longer than
# the sliding windows of gemma2-test (8) and gemma3-test (6)
P1="986 100"
P2="986 5 17 300 42 9 77"
P3="986 11 250 33 600 72 8 400 19 910 3 55 120 700 64 28 333 9 81 500"
P4=""
for i in $(seq 1 45); do P4="$P4 $(((i * 37 + 11) % 900 + 20))"; done
P4=${P4# }
ref() { # name shape n_ctx
    local name=$1 shape=$2 ctx=$3
    [ -f "$O/$shape.gguf" ] || "$H" mkmodel --shape "$shape" --type f32 --seed 42 -o "$O/$shape.gguf" >/dev/null 2>&1
    {
        printf '{"model": "hearth mkmodel --shape %s --type f32 --seed 42", "n_ctx": %d,\n "cases": [\n' "$shape" "$ctx"
        "$L" "$O/$shape.gguf" "$ctx" 8 "$P1" "$P2" "$P3" "$P4" 2>/dev/null | sed 's/^/  /; $!s/$/,/'
        printf ' ]}\n'
    } >"$O/$name.json"
}
ref gemma2-test gemma2-test 256
ref gemma3-test gemma3-test 256
ref phi3-test-short phi3-test 256
ref phi3-test-long phi3-test 1024
ref granite-test granite-test 256
ref olmo2-test olmo2-test 256
# mixture of experts (issue 15, MoE part) and the mistral3 naming
ref qwen3moe-tiny qwen3moe-tiny 256
ref mixtral-tiny mixtral-tiny 256
ref mistral3-test mistral3-test 256
ref qwen2moe-tiny qwen2moe-tiny 256
# YaRN and the attention temperature (Ministral 3)
ref ministral3-test ministral3-test 256
