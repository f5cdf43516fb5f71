#!/usr/bin/env bash
# test_spec_draft.sh - speculative decoding with a draft model from the
# command line and the server: `hearth run --draft hearth-kjv-draft` gives the
# same greedy tokens as without it on every shared golden prompt (Q8_0 and
# F16 targets) and drafts are accepted; --draft picks mode draft
# (--print-config); a draft that fails to load, one with another vocabulary
# and --spec draft without a draft are clear errors; bench --concurrency
# reports the draft figures in --json; chat answers the same with --draft
# and /stats shows its figures; a real `hearth serve` (Unix socket)
# with config models.NAME.draft gives the same text as without speculation
# and counts accepted drafts in /metrics.
# Owner: speculative decoding.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
TMP=$(mktemp -d /tmp/hearth-spec-draft.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config XDG_CACHE_HOME=$TMP/xdg-cache
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

D=$SHARED/models/hearth-kjv-draft-q8_0.gguf
M8=$SHARED/models/hearth-kjv-llama-q8_0.gguf

# ---- run: identical greedy tokens with and without the draft model on every
# prompt of the shared golden set (one file per prompt: some hold newlines)
mkdir -p "$TMP/p"
python3 -c "
import json, sys
for i, l in enumerate(open(sys.argv[1])):
    open(sys.argv[2] + '/' + str(i), 'w').write(json.loads(l)['prompt'])
" "$SHARED/golden/llamacpp-hearth-kjv-llama-q8_0.jsonl" "$TMP/p"
n_prompts=$(ls "$TMP/p" | wc -l)
check '[ "$n_prompts" -ge 6 ]' "golden prompts found ($n_prompts)"
for q in q8_0 f16; do
  M=$SHARED/models/hearth-kjv-llama-$q.gguf
  acc_total=0
  for pf in $(ls "$TMP/p" | sort -n); do
    prompt=$(cat "$TMP/p/$pf")
    "$BIN" run -m "$M" -t 1 --temp 0 -n 48 --ignore-eos --no-prefix-cache --json -p "$prompt" >"$TMP/off.json" 2>"$TMP/off.err"
    "$BIN" run -m "$M" -t 1 --temp 0 -n 48 --ignore-eos --no-prefix-cache --draft "$D" --spec-k step --json -p "$prompt" >"$TMP/on.json" 2>"$TMP/on.err"
    a=$(field "$TMP/off.json" "d['tokens']") b=$(field "$TMP/on.json" "d['tokens']")
    check '[ -n "$a" ] && [ "$a" = "$b" ]' "$q prompt $pf: tokens differ with --draft ($(head -c 300 "$TMP/on.err"))"
    acc=$(field "$TMP/on.json" "d['timings']['draft_accepted_n']")
    acc_total=$((acc_total + ${acc:-0}))
  done
  check '[ "$acc_total" -gt 0 ]' "$q: no draft accepted over the golden prompts"
  echo "$q target: $acc_total draft tokens accepted over $n_prompts prompts"
done

# ---- options and errors
"$BIN" run -m "$M8" --draft "$D" --print-config >"$TMP/o" 2>/dev/null
check '[ "$(field "$TMP/o" "d[\"speculative\"], d[\"draft\"] == \"$D\"")" = "draft True" ]' "--draft turns on mode draft ($(cat "$TMP/o"))"
"$BIN" run -m "$M8" --draft "$TMP/missing.gguf" -p hi -n 4 >"$TMP/o" 2>&1; rc=$?
check '[ $rc -ne 0 ] && grep -q "hearth run: draft model .*missing.gguf.*cannot open" "$TMP/o"' "a draft that fails to load: $(cat "$TMP/o")"
"$BIN" run -m "$M8" --draft "$SHARED/models/stories260K-q8_0.gguf" -p hi -n 4 >"$TMP/o" 2>&1; rc=$?
check '[ $rc -ne 0 ] && grep -q "draft model: its vocabulary has 512 tokens.*the first difference is token 3" "$TMP/o"' \
  "another vocabulary: $(cat "$TMP/o")"
"$BIN" run -m "$M8" --spec draft -p hi -n 4 >"$TMP/o" 2>&1; rc=$?
check '[ $rc -ne 0 ] && grep -q "needs a draft model (--draft MODEL" "$TMP/o"' "--spec draft without a draft: $(cat "$TMP/o")"
"$BIN" run -m "$M8" --draft "" -p hi >"$TMP/o" 2>&1; rc=$?
check '[ $rc -ne 0 ] && grep -q -- "--draft" "$TMP/o"' "empty --draft refused"
"$BIN" run --help >"$TMP/o" 2>&1
check 'grep -q -- "--draft MODEL" "$TMP/o"' "run --help lists --draft"

# ---- chat: the same answer with the draft model, and /stats reports it
a=$("$BIN" chat -m "$M8" --temp 0 -t 1 --once "Who was Moses?" 2>/dev/null)
b=$("$BIN" chat -m "$M8" --temp 0 -t 1 --draft "$D" --spec-k step --once "Who was Moses?" 2>"$TMP/chat.err")
check '[ -n "$a" ] && [ "$a" = "$b" ]' "chat --draft: another answer ($a / $b $(head -c 200 "$TMP/chat.err"))"
printf 'Who was Moses?\n/stats\n' | "$BIN" chat -m "$M8" --temp 0 -t 1 --draft "$D" --spec-k step >"$TMP/chat.out" 2>&1
check 'grep -qE "Speculation \(draft\): [0-9]+ drafted, [1-9][0-9]* accepted" "$TMP/chat.out"' \
  "chat /stats shows the draft figures ($(grep -i specul "$TMP/chat.out"))"

# ---- bench --concurrency: the figures in --json
"$BIN" bench --concurrency 2 --requests 2 --prompt-tokens 16 --output-tokens 32 -m "$M8" -t 1 --draft "$D" --spec-k step --json >"$TMP/b.json" 2>"$TMP/b.err"
check '[ "$(field "$TMP/b.json" "d[\"speculative\"], d[\"draft_n\"] > 0, d[\"tokens_per_target_pass\"] >= 1")" = "draft True True" ]' \
  "bench --draft: figures in --json ($(head -c 300 "$TMP/b.json") $(head -c 300 "$TMP/b.err"))"

# ---- serve: config models.NAME.draft
mkdir -p "$XDG_CONFIG_HOME/hearth"
cat >"$XDG_CONFIG_HOME/hearth/config.yaml" <<EOF
models:
  kjv:
    path: $M8
    draft: kjv-draft
  kjv-draft: $D
EOF
S=$TMP/s.sock
"$BIN" serve -m kjv --cache-db none --socket "$S" -t 1 --spec-k step 2>"$TMP/serve.err" &
spid=$!
for i in $(seq 1 100); do
  curl -s -o /dev/null --max-time 2 --unix-socket "$S" http://x/health && break
  kill -0 "$spid" 2>/dev/null || break
  sleep 0.1
done
c() { local o=$1; shift; curl -s -o "$o" -w '%{http_code}' --max-time 60 --unix-socket "$S" "$@"; }
body='"model":"kjv","prompt":"And God said, Let there be light","max_tokens":48,"temperature":0,"ignore_eos":true'
st1=$(c "$TMP/r1" http://x/v1/completions -d "{$body}")
st2=$(c "$TMP/r2" http://x/v1/completions -d "{$body,\"speculative\":false}")
check '[ "$st1" = 200 ] && [ "$st2" = 200 ]' "serve: completions with and without the draft ($st1 $st2; $(tail -c 300 "$TMP/serve.err"))"
t1=$(field "$TMP/r1" "d['choices'][0]['text']") t2=$(field "$TMP/r2" "d['choices'][0]['text']")
check '[ -n "$t1" ] && [ "$t1" = "$t2" ]' "serve: same text with the draft model and without"
c "$TMP/m" http://x/metrics >/dev/null
acc=$(sed -n 's/^hearth_spec_accepted_total \([0-9.e+]*\)$/\1/p' "$TMP/m")
check 'python3 -c "import sys; sys.exit(0 if float(\"${acc:-0}\") > 0 else 1)"' "serve: /metrics counts accepted drafts (${acc:-none})"

echo "test_spec_draft: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
