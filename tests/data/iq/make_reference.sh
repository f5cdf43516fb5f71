#!/usr/bin/env bash
# make_reference.sh - regenerate the IQ test files and llama.cpp's outputs in this folder.
# Usage: make_reference.sh HEARTH_BIN LLAMA_BIN_DIR LOGITS_BIN GGMLREF_BIN OUT_DIR
#   HEARTH_BIN     the hearth binary (for `hearth mkmodel`)
#   LLAMA_BIN_DIR  native llama.cpp's build/bin (llama-imatrix, llama-quantize)
#   LOGITS_BIN     a small C program linked against libllama: per prompt, the top-10
#                  logits at the last prompt position and the greedy tokens (README.md)
#   GGMLREF_BIN    a small C program linked against libggml: per IQ tensor, an FNV-1a
#                  hash of ggml's dequantization and 16 of ggml's CPU dot products (README.md)
# Neither program is part of Hearth; what they print (llama.cpp's results) is the data.
set -euo pipefail
H=$1 B=$2 L=$3 G=$4 O=$5
mkdir -p "$O"
export LD_LIBRARY_PATH=$B
"$H" mkmodel --shape tiny --type f16 --seed 42 -o "$O/tiny-f16.gguf" >/dev/null 2>&1
# importance-matrix text: the repository's README.md and docs/ARCHITECTURE.md
here=$(cd "$(dirname "$0")/../../.." && pwd)
cat "$here/README.md" "$here/docs/ARCHITECTURE.md" >"$O/text.txt"
"$B/llama-imatrix" -m "$O/tiny-f16.gguf" -f "$O/text.txt" -o "$O/imatrix.gguf" -c 128 -t 2 >/dev/null 2>&1
P1="1 73"
P2="1 73 110 275 104 101 257"
P3="1 986 11 250 33 600 72 8 400 19 910 3 55 120 700 64 28 333 9 81"
P4="1"
for i in $(seq 1 44); do P4="$P4 $(((i * 37 + 11) % 900 + 20))"; done
# names are llama-quantize's file types (mixtures; IQ2_M is the one made mostly of IQ2_S)
for t in iq2_xxs iq2_xs iq2_m iq3_xxs iq3_s iq1_s iq1_m; do
    T=$(echo "$t" | tr a-z A-Z)
    "$B/llama-quantize" --imatrix "$O/imatrix.gguf" "$O/tiny-f16.gguf" "$O/tiny-$t.gguf" "$T" 2 >/dev/null 2>&1
    {
        printf '{"model": "tiny-%s.gguf", "n_ctx": 256,\n "cases": [\n' "$t"
        "$L" "$O/tiny-$t.gguf" 256 16 "$P1" "$P2" "$P3" "$P4" 2>/dev/null | sed 's/^/  /; $!s/$/,/'
        printf ' ]}\n'
    } >"$O/tiny-$t.logits.json"
    "$G" "$O/tiny-$t.gguf" >"$O/tiny-$t.ggml.json"
done
