#!/usr/bin/env bash
# grammar_tg.sh - decode speed with and without a JSON-Schema grammar, side by
# side in one run: for each model, sampling mode and schema, unconstrained,
# constrained (the default candidate check) and constrained with the whole-
# vocabulary mask at every step (HEARTH_GRAMMAR_FULL_MASK=1, the same tokens),
# ROUNDS rounds interleaved; prints the median tg and the engine's own grammar
# time per token (timings.grammar_ms / gen_n from `hearth run --json`).
#   tests/bench/grammar_tg.sh HEARTH_BIN THREADS ROUNDS MODEL.gguf...
set -euo pipefail
bin=$1 threads=$2 rounds=$3
shift 3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%s' '{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"},"maxItems":4}},"required":["name","age","tags"]}' >"$dir/free.json"
printf '%s' '{"type":"object","properties":{"name":{"type":"string","maxLength":40},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"},"maxItems":4}},"required":["name","age","tags"]}' >"$dir/bounded.json"
one() { # model sampling-flags schema|none fullmask -> "tok_s grammar_ms_per_tok masked/gen"
    local g=()
    [ "$3" = none ] || g=(--json-schema "$dir/$3.json")
    HEARTH_GRAMMAR_FULL_MASK=$4 "$bin" run -m "$1" -n 64 $2 --ignore-eos --json "${g[@]}" -t "$threads" \
        --no-prefix-cache -p "Describe a person as JSON:" 2>/dev/null |
        python3 -c 'import json,sys; t=json.load(sys.stdin)["timings"]; n=max(t["gen_n"],1); print("%.2f %.2f %d/%d" % (t["gen_tok_s"], t["grammar_ms"]/n, t["grammar_masked_n"], n))'
}
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '| model | sampling | schema | tg off | tg schema | ratio | grammar ms/tok (masked) | tg full mask | grammar ms/tok full mask |\n'
printf '|---|---|---|---:|---:|---:|---:|---:|---:|\n'
for m in "$@"; do
    for smp in "--temp 0" "--temp 0.8"; do
        for sc in free bounded; do
            : >"$dir/off" && : >"$dir/on" && : >"$dir/full"
            for ((r = 0; r < rounds; r++)); do
                one "$m" "$smp" none 0 >>"$dir/off"
                one "$m" "$smp" "$sc" 0 >>"$dir/on"
                one "$m" "$smp" "$sc" 1 >>"$dir/full"
            done
            off=$(cut -d' ' -f1 "$dir/off" | med) on=$(cut -d' ' -f1 "$dir/on" | med)
            full=$(cut -d' ' -f1 "$dir/full" | med)
            gon=$(cut -d' ' -f2 "$dir/on" | med) gfull=$(cut -d' ' -f2 "$dir/full" | med)
            masked=$(head -1 "$dir/on" | cut -d' ' -f3)
            printf '| %s | %s | %s | %s | %s | %.2f | %s (%s) | %s | %s |\n' "$(basename "$m")" "$smp" "$sc" \
                "$off" "$on" "$(echo "$on / $off" | bc -l)" "$gon" "$masked" "$full" "$gfull"
        done
    done
done
