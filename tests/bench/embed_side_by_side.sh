#!/usr/bin/env bash
# embed_side_by_side.sh - embeddings/s of `hearth embed` and native llama.cpp
# `llama-embedding` on the same synthetic files, side by side in one run.
#
# Shapes bert-base and nomic-embed-text (hearth mkmodel, f16, seed 42); inputs
# of exactly 128 tokens ([CLS] + 126 x "hello" + [SEP]); batch 1 (one input)
# and batch 32 (32 inputs in one call); 1 and 2 threads. Both pack inputs into
# passes of the same size (bert-base 512 tokens = 4 inputs, nomic 2048 = 16):
# hearth by default (the model's context), llama.cpp with -c/-b/-ub N.
# Hearth: the fastest of 2 runs inside one process (`--repeat 2`, tokenizing
# and loading excluded). llama.cpp: the fastest of 2 processes, each timed
# from its "system_info" log line (model loaded, warm-up run done) to exit.
# Prints one table row per (shape, threads, batch) with embeddings/s and the
# ratio. Not run by ctest (a measuring tool).
# usage: embed_side_by_side.sh HEARTH_BIN LLAMA_EMBEDDING_BIN WORKDIR
set -euo pipefail
H=$1 L=$2 W=$3
mkdir -p "$W"
text=$(python3 -c "print(' '.join(['hello'] * 126))")
printf '| shape | threads | inputs | hearth emb/s | llama.cpp emb/s | hearth / llama.cpp |\n|---|---|---|---|---|---|\n'
for shape in bert-base nomic-embed-text; do
    m=$W/$shape-f16.gguf
    [ -f "$m" ] || "$H" mkmodel --shape "$shape" --type f16 --seed 42 -o "$m" >/dev/null 2>&1
    case $shape in bert-base) pass=512 ;; *) pass=2048 ;; esac
    for t in 1 2; do
        for n in 1 32; do
            args=()
            for i in $(seq "$n"); do args+=("$text"); done
            "$H" embed -m "$m" --json --repeat 2 -t "$t" "${args[@]}" >"$W/h.json"
            h=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['n_tokens'] == 128 * $n; print(d['embeddings_per_s'])" "$W/h.json")
            best=
            for r in 1 2; do
                prompt=$(printf '%s\n' "${args[@]}")
                s0=$(date +%s.%N)
                "$L" -m "$m" -p "$prompt" -t "$t" -c $pass -b $pass -ub $pass --log-timestamps \
                    --embd-output-format json >"$W/ll.out" 2>"$W/ll.err"
                s1=$(date +%s.%N)
                # log timestamps are m.ss.mmm.uuu since start; compute = wall - time at system_info
                ready=$(grep -m1 system_info "$W/ll.err" | awk '{split($1,a,"."); print a[1]*60 + a[2] + a[3]/1e3 + a[4]/1e6}')
                c=$(python3 -c "print($s1 - $s0 - $ready)")
                best=$(python3 -c "b='$best'; print(min(float(b), $c) if b else $c)")
            done
            l=$(python3 -c "print($n / $best)")
            python3 -c "print('| %s | %d | %d | %.2f | %.2f | %.2f |' % ('$shape', $t, $n, $h, $l, $h / $l))"
        done
    done
done
