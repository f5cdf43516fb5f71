#!/usr/bin/env bash
# test_spec.sh - speculative decoding (n-gram lookup) from the command line
# and the server: `hearth run --spec ngram` gives the same greedy tokens as
# without it on every shared golden prompt and on a quoting prompt (Q8_0 and
# F16), and drafts are accepted on the quoting prompt; bad --spec/--draft-max
# values are refused by name; a real `hearth serve --spec ngram` (Unix
# socket) gives the same text with "speculative": true and false, rejects a
# non-boolean "speculative" with a 400, and reports hearth_spec_* in /metrics.
# Owner: speculative decoding.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
TMP=$(mktemp -d /tmp/hearth-spec.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config
spid=""
cleanup() {
  [ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)" 2>/dev/null; }

# ---- a grammar turns speculation off for its request (drafts would be checked
# against the unmasked argmax): same JSON with and without --spec, no drafts
SCHEMA='{"type":"object","properties":{"verse":{"type":"string","maxLength":24},"chapter":{"type":"integer"}},"required":["verse","chapter"]}'
M8=$SHARED/models/hearth-kjv-llama-q8_0.gguf
G="In the beginning God created the heaven and the earth. In the beginning God created"
"$BIN" run -m "$M8" -p "$G" -n 200 --temp 0 --json --json-schema "$SCHEMA" >"$TMP/g0.json" 2>/dev/null
"$BIN" run -m "$M8" -p "$G" -n 200 --temp 0 --json --json-schema "$SCHEMA" --spec ngram >"$TMP/g1.json" 2>/dev/null
check '[ -s "$TMP/g0.json" ] && [ "$(field "$TMP/g0.json" "d[\"tokens\"]")" = "$(field "$TMP/g1.json" "d[\"tokens\"]")" ]' \
  "grammar + --spec: the same tokens as without"
check 'field "$TMP/g1.json" "json.loads(d[\"text\"])[\"chapter\"]" >/dev/null' "grammar + --spec: the text is the schema's JSON"
check '[ "$(field "$TMP/g1.json" "d.get(\"draft_n\", 0)")" = 0 ]' "grammar + --spec: nothing drafted ($(field "$TMP/g1.json" "d.get(\"draft_n\")"))"


QUOTE="Repeat this passage exactly. In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. Again: In the beginning God created the heaven and the earth."

# ---- run: identical greedy tokens with and without, on the quoting prompt
# and every prompt of the shared golden set (one file per prompt: some hold
# newlines)
mkdir -p "$TMP/p"
printf '%s' "$QUOTE" >"$TMP/p/0"
python3 -c "
import json, sys
for i, l in enumerate(open(sys.argv[1])):
    open(sys.argv[2] + '/' + str(i + 1), 'w').write(json.loads(l)['prompt'])
" "$SHARED/golden/llamacpp-hearth-kjv-llama-q8_0.jsonl" "$TMP/p"
n_prompts=$(ls "$TMP/p" | wc -l)
check '[ "$n_prompts" -ge 7 ]' "golden prompts found ($n_prompts)"
for q in q8_0 f16; do
  M=$SHARED/models/hearth-kjv-llama-$q.gguf
  for pf in $(ls "$TMP/p" | sort -n); do
    prompt=$(cat "$TMP/p/$pf")
    "$BIN" run -m "$M" -t 1 --temp 0 -n 48 --ignore-eos --no-prefix-cache --json -p "$prompt" >"$TMP/off.json" 2>"$TMP/off.err"
    "$BIN" run -m "$M" -t 1 --temp 0 -n 48 --ignore-eos --no-prefix-cache --spec ngram --spec-k step --json -p "$prompt" >"$TMP/on.json" 2>"$TMP/on.err"
    a=$(field "$TMP/off.json" "d['tokens']") b=$(field "$TMP/on.json" "d['tokens']")
    check '[ -n "$a" ] && [ "$a" = "$b" ]' "$q prompt $pf: tokens differ with --spec ngram ($(head -c 200 "$TMP/on.err"))"
    if [ "$pf" = 0 ]; then
      acc=$(field "$TMP/on.json" "d['timings']['draft_accepted_n']")
      check '[ "${acc:-0}" -gt 0 ]' "$q quoting prompt: no draft accepted"
    fi
  done
done

M=$SHARED/models/hearth-kjv-llama-q8_0.gguf
"$BIN" run -m "$M" --spec draftmodel -p hi >"$TMP/o" 2>&1
check '[ $? -ne 0 ] && grep -q -- "--spec draftmodel: is not a speculation mode (ngram, draft, off)" "$TMP/o"' "bad --spec named"
"$BIN" run -m "$M" --draft-max 0 -p hi >"$TMP/o" 2>&1
check '[ $? -ne 0 ] && grep -q -- "--draft-max 0" "$TMP/o"' "bad --draft-max named"
"$BIN" run --help >"$TMP/o" 2>&1
check 'grep -q -- "--spec MODE" "$TMP/o" && grep -q -- "--draft-max K" "$TMP/o" && grep -q -- "--draft-min K" "$TMP/o"' "run --help lists the flags"
"$BIN" run -m "$M" --spec ngram --draft-max 5 --print-config >"$TMP/o" 2>/dev/null
check '[ "$(field "$TMP/o" "d[\"speculative\"], d[\"draft_max\"]")" = "ngram 5" ]' "--print-config shows speculation"

# ---- serve: per-request opt-out and metrics
S=$TMP/s.sock
"$BIN" serve -m "$M" --cache-db none --socket "$S" --spec ngram --spec-k step -t 1 2>"$TMP/serve.err" &
spid=$!
for i in $(seq 1 100); do
  curl -s -o /dev/null --max-time 2 --unix-socket "$S" http://x/health && break
  kill -0 "$spid" 2>/dev/null || break
  sleep 0.1
done
c() { local o=$1; shift; curl -s -o "$o" -w '%{http_code}' --max-time 60 --unix-socket "$S" "$@"; }
body='"prompt":"'"$QUOTE"'","max_tokens":48,"temperature":0,"ignore_eos":true'
st1=$(c "$TMP/r1" http://x/v1/completions -d "{$body}")
st2=$(c "$TMP/r2" http://x/v1/completions -d "{$body,\"speculative\":false}")
st3=$(c "$TMP/r3" http://x/completion -d "{\"prompt\":\"$QUOTE\",\"n_predict\":48,\"temperature\":0,\"ignore_eos\":true,\"speculative\":false}")
check '[ "$st1" = 200 ] && [ "$st2" = 200 ] && [ "$st3" = 200 ]' "serve: completions with and without speculation ($st1 $st2 $st3)"
t1=$(field "$TMP/r1" "d['choices'][0]['text']") t2=$(field "$TMP/r2" "d['choices'][0]['text']") t3=$(field "$TMP/r3" "d['content']")
check '[ -n "$t1" ] && [ "$t1" = "$t2" ] && [ "$t1" = "$t3" ]' "serve: same text with speculative true and false"
st=$(c "$TMP/r4" http://x/v1/completions -d "{$body,\"speculative\":\"no\"}")
check '[ "$st" = 400 ] && grep -q speculative "$TMP/r4"' "serve: a non-boolean speculative is a 400 naming it"
c "$TMP/m" http://x/metrics >/dev/null
acc=$(sed -n 's/^hearth_spec_accepted_total \([0-9.e+]*\)$/\1/p' "$TMP/m")
check 'grep -q "^hearth_spec_drafted_total" "$TMP/m" && python3 -c "import sys; sys.exit(0 if float(\"${acc:-0}\") > 0 else 1)"' "serve: /metrics counts accepted drafts"

echo "test_spec: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
