#!/usr/bin/env bash
# side_by_side.sh - Hearth against llama.cpp on the same GGUF files, the same
# thread count and the same 461-token prompt, in one run: prompt processing
# (tok/s to the first token) and generation (128 greedy tokens, tok/s).
# llama.cpp is node-llama-cpp 3.22.1 from ../shared/peers (install it first,
# see ../shared/peers/README.md; PEERS points at that folder). Models: make
# them with `hearth mkmodel --shape S --type T -o DIR/S-T.gguf` for the shapes
# in SHAPES (default: stories110m qwen2.5-0.5b) and the types in TYPES
# (default: q8_0 q4_0 f16); REPS repetitions each (default 2), Hearth and
# llama.cpp alternating so that both see the same machine load.
# usage: tests/bench/side_by_side.sh [MODEL_DIR] [THREADS]
set -u
H=${HEARTH_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin/hearth}
MDIR=${1:-/tmp/mk}
T=${2:-1}
PEERS=${PEERS:-/tmp/peers}
P=$(python3 -c "print(' '.join(['Once upon a time there was a little girl who loved to play in the park with her dog.']*23))")
SHAPES=${SHAPES:-stories110m qwen2.5-0.5b}
TYPES=${TYPES:-q8_0 q4_0 f16}
REPS=${REPS:-2}
for s in $SHAPES; do
for t in $TYPES; do
  M=$MDIR/$s-$t.gguf
  [ -f "$M" ] || { echo "$s $t: $M missing, skipped"; continue; }
  C=2048; [ "$s" = stories110m ] && C=1024 # its training context; qwen's prompt is 989 tokens
  for rep in $(seq 1 "$REPS"); do
    h=$($H run -m $M -p "$P" -n 128 --temp 0 --ignore-eos --no-prefix-cache -t $T -c $C --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); t=d['timings']; print(t['prompt_n'], round(t['prompt_tok_s'],1), round(t['gen_tok_s'],1))")
    l=$(cd "$PEERS" && node llamacpp-cpu.mjs --model $M -p "$P" -n 128 --threads $T --ctx $C --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['prompt_n'], round(d['prompt_per_second'],1), round(d['predicted_per_second'],1), d['predicted_n'])")
    echo "$s $t rep$rep hearth(prompt_n pp tg): $h | llama.cpp(prompt_n pp tg n): $l"
  done
done
done
