#!/usr/bin/env bash
# side_by_side.sh - Hearth against llama.cpp on the same GGUF files, the same
# thread count and the same 461-token prompt, in one run: prompt processing
# (tok/s to the first token) and generation (128 greedy tokens, tok/s).
# llama.cpp is node-llama-cpp 3.22.1 from ../shared/peers (install it first,
# see ../shared/peers/README.md; PEERS points at that folder). Models: make
# them with `hearth mkmodel --shape stories110m --type T -o DIR/stories110m-T.gguf`.
# usage: tests/bench/side_by_side.sh [MODEL_DIR] [THREADS]
set -u
H=${HEARTH_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin/hearth}
MDIR=${1:-/tmp/mk}
T=${2:-1}
PEERS=${PEERS:-/tmp/peers}
P=$(python3 -c "print(' '.join(['Once upon a time there was a little girl who loved to play in the park with her dog.']*23))")
for t in q8_0 q4_0 f16; do
  M=$MDIR/stories110m-$t.gguf
  for rep in 1 2; do
    h=$($H run -m $M -p "$P" -n 128 --temp 0 --ignore-eos --no-prefix-cache -t $T -c 1024 --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); t=d['timings']; print(t['prompt_n'], round(t['prompt_tok_s'],1), round(t['gen_tok_s'],1))")
    l=$(cd "$PEERS" && node llamacpp-cpu.mjs --model $M -p "$P" -n 128 --threads $T --ctx 1024 --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['prompt_n'], round(d['prompt_per_second'],1), round(d['predicted_per_second'],1), d['predicted_n'])")
    echo "$t rep$rep hearth(prompt_n pp tg): $h | llama.cpp(prompt_n pp tg n): $l"
  done
done
