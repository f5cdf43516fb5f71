#!/usr/bin/env bash
# test_mkmodel_bench.sh - `hearth mkmodel` and `hearth bench` end to end.
#
# Makes the tiny synthetic model (dim 256, 2 layers, vocab 1000 generated BPE)
# in every weight type mkmodel writes, and checks for each: `hearth info --json`
# reads the shape back, `hearth run` generates a few tokens without crashing.
# Then: the generated vocabulary round-trips text through `hearth tokenize`;
# the same seed gives the same bytes whatever the thread count; the Llama SPM
# vocabulary is copied for stories110m; `hearth bench --json` prints parseable
# JSON with pp_tok_s.mean > 0; and every user error (unknown shape or type,
# no -o, missing model, bad -t) exits non-zero with a message that names it.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED. Owner: the mkmodel/bench engineer.
set -uo pipefail

H=${HEARTH_BIN:-hearth}
SHARED=${HEARTH_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
have_py=0
command -v python3 >/dev/null 2>&1 && have_py=1

# json_get FILE EXPR: evaluate a python expression over d = the JSON in FILE
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---------------------------------------------------------------- every type
types=$("$H" mkmodel --help | sed -n 's/.*weight type: //p' | tr -d ',')
[ -n "$types" ] || bad "mkmodel --help does not list the weight types"
for ty in $types; do
    m="$T/tiny-$ty.gguf"
    if ! "$H" mkmodel --shape tiny --type "$ty" -o "$m" >"$T/mk.out" 2>"$T/mk.err"; then
        bad "mkmodel --type $ty failed: $(cat "$T/mk.err")"
        continue
    fi
    grep -q "wrote $m" "$T/mk.out" && ok || bad "mkmodel $ty: no summary line"
    [ ! -e "$m.part" ] && ok || bad "mkmodel $ty left $m.part behind"
    if ! "$H" info --json "$m" >"$T/info.json" 2>"$T/info.err"; then
        bad "info $ty failed: $(cat "$T/info.err")"
        continue
    fi
    if [ $have_py = 1 ]; then
        shape=$(json_get "$T/info.json" "'%(arch)s %(n_embd)d %(n_layer)d %(n_head)d %(n_head_kv)d %(n_ff)d %(n_vocab)d' % dict(d['hparams'], arch=d['architecture'])")
        [ "$shape" = "llama 256 2 4 2 512 1000" ] && ok || bad "info $ty reads back '$shape'"
        main_type=$(json_get "$T/info.json" "max(d['tensor_types'], key=lambda k: d['tensor_types'][k] if k != 'f32' or '$ty' == 'f32' else -1)")
        [ "$main_type" = "$ty" ] && ok || bad "info $ty: tensors are mostly $main_type"
    else
        grep -q '"n_embd":256' "$T/info.json" && grep -q '"n_layer":2' "$T/info.json" &&
            grep -q '"n_vocab":1000' "$T/info.json" && ok || bad "info $ty: shape not read back"
    fi
    if "$H" run -m "$m" -p "Hello world" -n 4 --temp 0 --json >"$T/run.json" 2>"$T/run.err"; then
        grep -q '"tokens":\[' "$T/run.json" && ok || bad "run $ty: no tokens in the output"
    else
        bad "run $ty failed (exit $?): $(tail -3 "$T/run.err")"
    fi
done

m="$T/tiny-q8_0.gguf"

# ---------------------------------------------------------------- tokenizer round trip
text="Hello world, the quick brown fox: 42 times! <|im_start|>"
if "$H" tokenize -m "$m" --json "$text" >"$T/tok.json" 2>"$T/tok.err"; then
    if [ $have_py = 1 ]; then
        back=$(json_get "$T/tok.json" "''.join(d['pieces'])")
        [ "$back" = "$text" ] && ok || bad "tokenize round trip gave '$back'"
        n=$(json_get "$T/tok.json" "len(d['tokens'])")
        [ "$n" -lt "${#text}" ] && ok || bad "tokenize: no merges applied ($n tokens for ${#text} bytes)"
        special=$(json_get "$T/tok.json" "d['tokens'][-1]")
        [ "$special" = 998 ] && ok || bad "tokenize: <|im_start|> is $special, expected 998"
    else
        grep -q '"tokens":\[' "$T/tok.json" && ok || bad "tokenize: no tokens"
    fi
else
    bad "tokenize failed: $(cat "$T/tok.err")"
fi

# ---------------------------------------------------------------- determinism
"$H" mkmodel --shape tiny --type q4_K --seed 7 -t 1 -o "$T/a.gguf" >/dev/null 2>&1
"$H" mkmodel --shape tiny --type q4_K --seed 7 -t 2 -o "$T/b.gguf" >/dev/null 2>&1
"$H" mkmodel --shape tiny --type q4_K --seed 8 -t 2 -o "$T/c.gguf" >/dev/null 2>&1
cmp -s "$T/a.gguf" "$T/b.gguf" && ok || bad "same seed, different thread count: files differ"
cmp -s "$T/a.gguf" "$T/c.gguf" && bad "different seeds gave identical files" || ok

# ---------------------------------------------------------------- Llama SPM vocabulary (stories110m)
if [ -f "$SHARED/vocab/ggml-vocab-llama-spm.gguf" ]; then
    s="$T/stories.gguf"
    if HEARTH_SHARED="$SHARED" "$H" mkmodel --shape stories110m --type q4_0 -o "$s" >/dev/null 2>"$T/mk.err"; then
        ids=$("$H" tokenize -m "$s" --ids "Hello world" 2>&1)
        [ "$ids" = "[1, 15043, 3186]" ] && ok || bad "stories110m vocabulary: 'Hello world' -> $ids"
        "$H" info "$s" | grep -q "768 (ffn 2048)" && ok || bad "stories110m: info does not show dim 768 / ffn 2048"
    else
        bad "mkmodel stories110m failed: $(cat "$T/mk.err")"
    fi
    rm -f "$s"
else
    echo "note: $SHARED/vocab/ggml-vocab-llama-spm.gguf not found; stories110m check skipped"
fi

# ---------------------------------------------------------------- bench --json
if "$H" bench -m "$m" -p 32 -n 8 -r 2 -t 1 --json >"$T/bench.json" 2>"$T/bench.err"; then
    lines=$(wc -l <"$T/bench.json")
    [ "$lines" -eq 1 ] && ok || bad "bench --json printed $lines lines, expected 1"
    if [ $have_py = 1 ]; then
        chk=$(python3 - "$T/bench.json" <<'EOF'
import json, sys
d = json.loads(open(sys.argv[1]).read())
need = ["model", "type", "n_params", "model_bytes", "threads", "backend", "pp", "tg", "pp_tok_s", "tg_tok_s",
        "bandwidth_gbs", "tg_roofline_fraction"]
missing = [k for k in need if k not in d]
errs = []
if missing: errs.append("missing keys %s" % missing)
if not d["pp_tok_s"]["mean"] > 0: errs.append("pp_tok_s.mean %r" % d["pp_tok_s"]["mean"])
if not d["tg_tok_s"]["mean"] > 0: errs.append("tg_tok_s.mean %r" % d["tg_tok_s"]["mean"])
if d["pp_tok_s"]["stddev"] < 0: errs.append("negative stddev")
if (d["pp"], d["tg"], d["threads"], d["type"]) != (32, 8, 1, "q8_0"): errs.append("config %r" % [d["pp"], d["tg"], d["threads"], d["type"]])
if not (d["bandwidth_gbs"] or 0) > 0: errs.append("bandwidth_gbs %r" % d["bandwidth_gbs"])
if not (d["tg_roofline_fraction"] or 0) > 0: errs.append("tg_roofline_fraction %r" % d["tg_roofline_fraction"])
print("; ".join(errs) or "ok")
EOF
)
        [ "$chk" = ok ] && ok || bad "bench --json: $chk"
    else
        grep -Eq '"pp_tok_s":\{"mean":[0-9]*[1-9]' "$T/bench.json" && ok || bad "bench --json: no positive pp_tok_s.mean"
    fi
else
    bad "bench failed: $(cat "$T/bench.err")"
fi

# table output, two thread counts, -p 0 skips pp, --profile prints per-op times
if "$H" bench -m "$m" -p 0 -n 4 -r 1 -t 1,2 --bw-mib 0 --profile >"$T/table.md" 2>"$T/bench.err"; then
    grep -q '^| model | type | size | params | backend | threads | test | t/s' "$T/table.md" && ok || bad "bench: no table header"
    [ "$(grep -c '| tg4 |' "$T/table.md")" -eq 2 ] && ok || bad "bench: expected two tg4 rows"
    grep -q '| pp' "$T/table.md" && bad "bench -p 0 still ran pp" || ok
    grep -q '^| matmul |' "$T/table.md" && ok || bad "bench --profile: no matmul line"
else
    bad "bench (table) failed: $(cat "$T/bench.err")"
fi

# tiny runs: a single decode step with no prompt, a prompt with no generation
"$H" bench -m "$m" -p 0 -n 1 -r 1 -t 1 --bw-mib 0 --json >"$T/b1.json" 2>"$T/bench.err" &&
    grep -q '"pp_tok_s":null' "$T/b1.json" && ok || bad "bench -p 0 -n 1: $(cat "$T/bench.err")"
"$H" bench -m "$m" -p 5 -n 0 -r 1 -t 1 --bw-mib 0 --json >"$T/b2.json" 2>"$T/bench.err" &&
    grep -q '"tg_tok_s":null' "$T/b2.json" && ok || bad "bench -p 5 -n 0: $(cat "$T/bench.err")"

# ---------------------------------------------------------------- errors
expect_error() { # expect_error "what" "message regex" cmd...
    local what=$1 re=$2
    shift 2
    if "$@" >"$T/err.out" 2>"$T/err.txt"; then
        bad "$what: exit 0"
    elif grep -Eq -e "$re" "$T/err.txt"; then
        ok
    else
        bad "$what: message '$(cat "$T/err.txt")' does not match /$re/"
    fi
}
expect_error "unknown shape" "unknown shape 'gpt5'.*tiny" "$H" mkmodel --shape gpt5 --type q8_0 -o "$T/x.gguf"
expect_error "unknown type" "unknown type 'q9_9'.*q4_0" "$H" mkmodel --shape tiny --type q9_9 -o "$T/x.gguf"
expect_error "missing -o" "no output file" "$H" mkmodel --shape tiny --type q8_0
expect_error "missing --shape" "no --shape" "$H" mkmodel --type q8_0 -o "$T/x.gguf"
expect_error "unwritable output" "cannot create" "$H" mkmodel --shape tiny --type q8_0 -o "$T/no/such/dir/x.gguf"
expect_error "vocab size mismatch" "has 32000 tokens but the shape needs 1000" \
    "$H" mkmodel --shape tiny --type q8_0 -o "$T/x.gguf" --vocab "$SHARED/vocab/ggml-vocab-llama-spm.gguf"
[ ! -e "$T/x.gguf" ] && [ ! -e "$T/x.gguf.part" ] && ok || bad "a failed mkmodel left a file behind"
expect_error "bench missing model" "nope.gguf: no such model file" "$H" bench -m "$T/nope.gguf"
expect_error "bench no model" "no model given" "$H" bench -p 8
expect_error "bench bad -t" "-t expects a comma-separated list" "$H" bench -m "$m" -t 1,zero
expect_error "bench -t 0" "-t expects a comma-separated list" "$H" bench -m "$m" -t 0
expect_error "bench nothing to do" "nothing to measure" "$H" bench -m "$m" -p 0 -n 0
expect_error "bench -r 0" "-r must be at least 1" "$H" bench -m "$m" -r 0
# ---------------------------------------------------------------- bench -d (context depth)
if "$H" bench -m "$m" -p 16 -n 4 -r 1 -t 1 -d 300 --bw-mib 0 >"$T/depth.md" 2>"$T/bench.err" &&
    "$H" bench -m "$m" -p 16 -n 4 -r 1 -t 1 -d 300 --bw-mib 0 --json >"$T/depth.json" 2>>"$T/bench.err"; then
    grep -q "pp16 @ d300" "$T/depth.md" && grep -q "tg4 @ d300" "$T/depth.md" && ok ||
        bad "bench -d: rows not labelled like llama-bench's: $(cat "$T/depth.md")"
    python3 -c "import json,sys; d=json.load(open('$T/depth.json')); sys.exit(not (d['depth'] == 300 and d['pp_tok_s']['mean'] > 0 and d['tg_tok_s']['mean'] > 0))" &&
        ok || bad "bench -d --json: $(cat "$T/depth.json")"
else
    bad "bench -d failed: $(cat "$T/bench.err")"
fi
"$H" bench -m "$m" -d -5 >/dev/null 2>"$T/bench.err"
[ $? -eq 2 ] && grep -q -- "-d must be" "$T/bench.err" && ok || bad "bench -d -5: usage error"
"$H" mkmodel --help | grep -q -- "--shape" && ok || bad "mkmodel --help"
"$H" bench --help >"$T/bench-help.txt" 2>&1 # not piped: grep -q + pipefail races SIGPIPE on a long help
grep -q -- "--profile" "$T/bench-help.txt" && ok || bad "bench --help"

echo "test_mkmodel_bench: $pass passed, $fails failed"
[ "$fails" -eq 0 ]
