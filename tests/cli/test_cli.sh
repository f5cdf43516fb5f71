#!/usr/bin/env bash
# test_cli.sh - the real `hearth` binary as a user runs it: help and errors,
# `run` on the sample model (tokens equal llama.cpp's, seeds reproducible,
# the persistent prefix cache across two processes), `info`, `tokenize`.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
MODEL=$SHARED/models/hearth-kjv-llama-q8_0.gguf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

# ---- help and argument errors
$BIN --help >"$TMP/o" 2>&1; check '[ $? -eq 0 ] && grep -q "usage: hearth COMMAND" "$TMP/o"' "hearth --help"
for c in run info tokenize; do
  $BIN $c --help >"$TMP/o" 2>&1; check '[ $? -eq 0 ] && grep -q "usage: hearth '$c'" "$TMP/o"' "$c --help"
done
$BIN frobnicate >"$TMP/o" 2>&1; check '[ $? -eq 2 ] && grep -q "unknown command .frobnicate." "$TMP/o"' "unknown command"
$BIN run -p hi >"$TMP/o" 2>&1; check '[ $? -ne 0 ] && grep -q "no model given" "$TMP/o"' "run without -m"
$BIN run -m "$TMP/nope.gguf" -p hi >"$TMP/o" 2>&1
check '[ $? -eq 1 ] && grep -q "nope.gguf" "$TMP/o"' "missing model file named"
$BIN run -m "$MODEL" --bogus >"$TMP/o" 2>&1; check '[ $? -eq 2 ] && grep -q "unknown option .--bogus." "$TMP/o"' "unknown flag"
$BIN run -m "$MODEL" -n abc >"$TMP/o" 2>&1; check '[ $? -eq 2 ] && grep -q "expects a whole number" "$TMP/o"' "bad number"
$BIN run -m "$MODEL" -n 0 -p x >"$TMP/o" 2>&1; check '[ $? -eq 2 ] && grep -q "at least 1" "$TMP/o"' "-n 0"
$BIN run -m "$MODEL" --kv-type q4_0 -p x >"$TMP/o" 2>&1; check '[ $? -eq 2 ] && grep -q "hearth run: --kv-type .q4_0. is not one of f16, f32, q8_0" "$TMP/o"' "bad --kv-type"
$BIN info "$MODEL" --kv-type nope >"$TMP/o" 2>&1; check '[ $? -eq 2 ] && grep -q "hearth info: --kv-type .nope. is not one of" "$TMP/o"' "info: bad --kv-type"
$BIN run -m "$MODEL" --backend cuda -p x >"$TMP/o" 2>&1; rc=$?
if ! $BIN --version | grep -q cuda; then
  check '[ $rc -eq 1 ] && grep -q "no CUDA backend" "$TMP/o"' "--backend cuda without CUDA says so"
fi
head -c 100000 "$MODEL" >"$TMP/trunc.gguf"
$BIN run -m "$TMP/trunc.gguf" -p x >"$TMP/o" 2>&1
check '[ $? -eq 1 ] && grep -q "trunc.gguf" "$TMP/o" && grep -qi "trunc\|past the end\|exceeds" "$TMP/o"' "truncated model: clear error"

# ---- greedy run equals llama.cpp's tokens on this file (first 16 of prompt 1)
$BIN run -m "$MODEL" -p "In the beginning" -n 16 --temp 0 --json --cache-db none -t 1 >"$TMP/r.json" 2>"$TMP/e"
check '[ $? -eq 0 ]' "run --json exit code"
want_prompt=$(python3 -c "import json; d=json.loads(open('$SHARED/golden/llamacpp-hearth-kjv-llama-q8_0.jsonl').readline()); print(d['prompt_tokens'])")
want_tokens=$(python3 -c "import json; d=json.loads(open('$SHARED/golden/llamacpp-hearth-kjv-llama-q8_0.jsonl').readline()); print(d['tokens'][:16])")
check '[ "$(json "$TMP/r.json" "d[\"prompt_tokens\"]")" = "$want_prompt" ]' "prompt tokens equal llama.cpp's"
check '[ "$(json "$TMP/r.json" "d[\"tokens\"]")" = "$want_tokens" ]' "greedy tokens equal llama.cpp's"
check '[ "$(json "$TMP/r.json" "d[\"timings\"][\"ttft_ms\"] > 0 and d[\"timings\"][\"gen_tok_s\"] > 0 and d[\"timings\"][\"load_ms\"] >= 0")" = True ]' "timings present"
check '[ -n "$(json "$TMP/r.json" "d[\"text\"]")" ]' "text present"

# ---- streaming mode prints text on stdout, timings on stderr
$BIN run -m "$MODEL" -p "In the beginning" -n 16 --temp 0 --cache-db none >"$TMP/o" 2>"$TMP/e"
check 'grep -q "of the LORD" "$TMP/o" && grep -q "tok/s" "$TMP/e" && ! grep -q "tok/s" "$TMP/o"' "stream: text on stdout, timings on stderr"

# ---- same seed, same text; sampling is on
$BIN run -m "$MODEL" -p "Blessed are the" -n 24 --temp 1.0 --seed 7 --json --cache-db none >"$TMP/s1" 2>/dev/null
$BIN run -m "$MODEL" -p "Blessed are the" -n 24 --temp 1.0 --seed 7 --json --cache-db none >"$TMP/s2" 2>/dev/null
$BIN run -m "$MODEL" -p "Blessed are the" -n 24 --temp 1.0 --seed 8 --json --cache-db none >"$TMP/s3" 2>/dev/null
check '[ "$(json "$TMP/s1" "d[\"tokens\"]")" = "$(json "$TMP/s2" "d[\"tokens\"]")" ]' "same seed same tokens"
check '[ "$(json "$TMP/s1" "d[\"tokens\"]")" != "$(json "$TMP/s3" "d[\"tokens\"]")" ]' "another seed other tokens"

# ---- the persistent prefix cache across two processes
LONG=$(for i in $(seq 1 30); do printf 'And the LORD spake unto Moses, saying, '; done)
$BIN run -m "$MODEL" -p "$LONG" -n 8 --temp 0 --json --cache-db "$TMP/c.sqlite" >"$TMP/p1" 2>/dev/null
$BIN run -m "$MODEL" -p "$LONG" -n 8 --temp 0 --json --cache-db "$TMP/c.sqlite" >"$TMP/p2" 2>/dev/null
check '[ "$(json "$TMP/p1" "d[\"timings\"][\"cached_n\"]")" = 0 ]' "first process: nothing cached"
check '[ "$(json "$TMP/p2" "d[\"timings\"][\"cached_n\"] >= d[\"timings\"][\"prompt_n\"] - 16")" = True ]' "second process: prompt from the cache"
check '[ "$(json "$TMP/p1" "d[\"tokens\"]")" = "$(json "$TMP/p2" "d[\"tokens\"]")" ]' "cached run gives the same tokens"
$BIN run -m "$MODEL" -p "$LONG" -n 8 --temp 0 --json --no-prefix-cache >"$TMP/p3" 2>/dev/null
check '[ "$(json "$TMP/p3" "d[\"timings\"][\"cached_n\"]")" = 0 ] && [ "$(json "$TMP/p1" "d[\"tokens\"]")" = "$(json "$TMP/p3" "d[\"tokens\"]")" ]' "--no-prefix-cache"
XDG_CACHE_HOME=$TMP/xdg $BIN run -m "$MODEL" -p "hello" -n 2 --temp 0 >/dev/null 2>&1
check '[ -f "$TMP/xdg/hearth/prefix-cache.sqlite" ]' "default cache database under XDG_CACHE_HOME"

# ---- prompt longer than the context
$BIN run -m "$MODEL" -p "$LONG$LONG$LONG" -n 4 --cache-db none >"$TMP/o" 2>&1
check '[ $? -eq 1 ] && grep -q "context holds 512" "$TMP/o"' "prompt too long: numbers in the message"

# ---- info
$BIN info "$MODEL" --json --ctx 512 --parallel 2 >"$TMP/i.json" 2>&1
check '[ "$(json "$TMP/i.json" "d[\"architecture\"], d[\"hparams\"][\"n_layer\"], d[\"hparams\"][\"n_head_kv\"], d[\"tensor_types\"].get(\"q8_0\")")" = "llama 4 2 30" ]' "info --json fields"
check '[ "$(json "$TMP/i.json" "d[\"memory\"][\"kv_bytes\"]")" = "$((2 * 4 * 512 * 2 * 64 * 2))" ]' "info: KV bytes for ctx 512 x 2"
$BIN info "$MODEL" >"$TMP/o" 2>&1; check 'grep -q "grouped-query attention" "$TMP/o" && grep -q "kv cache" "$TMP/o"' "info text"
$BIN run -m "$MODEL" -p x -n 1 --gpu-layers -5 >"$TMP/o" 2>&1; check '[ $? -ne 0 ] && grep -q "gpu-layers -5: give a layer count" "$TMP/o"' "run: bad --gpu-layers"
# devices: the CPU is always listed, with memory; JSON for scripts
$BIN info --devices --json >"$TMP/dev.json" 2>&1
check '[ "$(json "$TMP/dev.json" "d[\"devices\"][0][\"select\"], d[\"devices\"][0][\"usable\"], d[\"devices\"][0][\"mem_total\"] > 0")" = "cpu True True" ]' "info --devices --json: the cpu first"
$BIN info --devices >"$TMP/o" 2>&1; check 'grep -q "^backends in this build: cpu" "$TMP/o" && grep -q "^cpu " "$TMP/o"' "info --devices text"
$BIN info "$MODEL" --backend cpu >"$TMP/o" 2>&1; check 'grep -q "layers 0-3 on cpu; embeddings on cpu, output on cpu" "$TMP/o"' "info --backend cpu: the plan"

# ---- tokenize, including a vocabulary-only file
$BIN tokenize -m "$MODEL" --json "In the beginning" >"$TMP/t.json" 2>&1
check '[ "$(json "$TMP/t.json" "d[\"tokens\"]")" = "$want_prompt" ]' "tokenize --json"
# byte-fallback tokens split characters: --json stays valid JSON (such a
# piece is its byte array) and the pieces' bytes are the text's
Q2=$SHARED/models/hearth-kjv-qwen2-q8_0.gguf
$BIN tokenize -m "$Q2" --json --no-bos "héllo 日本語 🙂 naïve" >"$TMP/u.json" 2>&1
check 'python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
b=b\"\".join(p.encode() if isinstance(p,str) else bytes(p) for p in d[\"pieces\"])
assert b.removeprefix(b\" \")==\"héllo 日本語 🙂 naïve\".encode(), b  # SPM adds a leading space
assert any(isinstance(p,list) for p in d[\"pieces\"])
" "$TMP/u.json"' "tokenize --json: valid JSON for split UTF-8, bytes round-trip ($(head -c 200 "$TMP/u.json"))"
$BIN tokenize -m "$SHARED/vocab/ggml-vocab-llama-spm.gguf" --no-bos --ids "Hello world" >"$TMP/o" 2>&1
check 'grep -q "\[15043, 3186\]" "$TMP/o"' "tokenize a vocab-only file"
# WordPiece (BERT): [CLS] ... [SEP], lower-cased, accents dropped, punctuation split
$BIN tokenize -m "$SHARED/vocab/ggml-vocab-bert-bge.gguf" --ids "Hello, World! "$'Caf\xc3\xa9' >"$TMP/o" 2>&1
check 'grep -q "\[101, 7592, 1010, 2088, 999, 7668, 102\]" "$TMP/o"' "tokenize a WordPiece vocabulary"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
