#!/usr/bin/env bash
# test_serve_embed.sh - the embedding and rerank routes of `hearth serve` end
# to end, on encoder models `hearth mkmodel` writes deterministically (bert,
# nomic-bert, a bert reranker; f32, seed 42) beside the sample chat model in
# one server, checked against llama.cpp's vectors for the same files
# (tests/data/embed, see its README; tests/cli/serve_embed_check.py):
#   /v1/embeddings (batched and alone, base64, dimensions, token ids),
#   /api/embed (truncate), /api/embeddings (not normalised), /embedding,
#   /v1/rerank (scores and order), the errors (a chat model without
#   --embeddings, chat with an encoder, too long without truncation, bad
#   fields), 32 concurrent embedding requests mixed with chat requests to the
#   other model (all answered, vectors unchanged), a decoder embedder under
#   --embeddings against llama.cpp's mean pooling, and the real `openai`
#   (embeddings.create) and `ollama` (embed) npm clients when node is there.
# Needs HEARTH_BIN, HEARTH_SHARED (ctest), python3, curl.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${HEARTH_BUILD:-$SRC/build}
DATA=$SRC/tests/data/embed
CHECK="python3 $SRC/tests/cli/serve_embed_check.py"
for t in python3 curl; do command -v $t >/dev/null || { echo "skipped: $t not found"; exit 0; }; done
TMP=$(mktemp -d /tmp/hearth-se.XXXXXX)
. "$SRC/tests/cli/lib.sh"
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=$TMP/cfg XDG_DATA_HOME=$TMP/data XDG_CACHE_HOME=$TMP/cache

for s in bert-test nomic-test bert-rerank-test tiny; do
  "$BIN" mkmodel --shape $s --type f32 --seed 42 -o "$TMP/$s.gguf" >/dev/null 2>&1 || { echo "FAIL: mkmodel $s"; exit 1; }
done
cat >"$TMP/config.yaml" <<EOF
models:
  kjv: $SHARED/models/hearth-kjv-llama-q8_0.gguf
  bert: $TMP/bert-test.gguf
  nomic: $TMP/nomic-test.gguf
  rerank: $TMP/bert-rerank-test.gguf
  tiny: $TMP/tiny.gguf
EOF
serve_bg s --config "$TMP/config.yaml" --socket "$TMP/s.sock" --listen 127.0.0.1:0 --cache-db none --max-loaded 5 -c 256 ||
  { echo "FAIL: server start"; exit 1; }
c() { local o=$1; shift; curl -s -o "$o" -w '%{http_code}' --max-time 60 --unix-socket "$TMP/s.sock" "$@"; }
inputs() { python3 -c "import json; print(json.dumps(json.load(open('$DATA/$1.json'))['inputs']))"; }
BERT_IN=$(inputs bert-test-cls)
# cmp SHAPE CASE REPLY [flags] : the reply's vectors against llama.cpp's
: >"$TMP/cmp"
cmpv() { $CHECK "$1" "$DATA/$2.json" "$3" "${@:4}" >"$TMP/cmp" 2>&1; }

# ---- vectors equal llama.cpp's: OpenAI, batched and each alone
st=$(c "$TMP/r" http://x/v1/embeddings -d '{"model":"bert","input":'"$BERT_IN"'}')
check '[ $st = 200 ] && cmpv openai bert-test-cls "$TMP/r"' "/v1/embeddings, 6 inputs in one request = llama.cpp ($st $(grep -c ok "$TMP/cmp") ok; $(grep FAIL "$TMP/cmp" | head -2))"
check '[ "$(jq_ "$TMP/r" "(d[\"object\"], d[\"model\"], d[\"usage\"][\"prompt_tokens\"] > 6, d[\"data\"][5][\"index\"])")" = "('"'"'list'"'"', '"'"'bert'"'"', True, 5)" ]' "/v1/embeddings reply shape and usage"
alone=0
for i in 0 1 2 3 4 5; do
  text=$(python3 -c "import json; print(json.dumps(json.loads('''$BERT_IN''')[$i]))")
  c "$TMP/r1" http://x/v1/embeddings -d '{"model":"bert","input":'"$text"'}' >/dev/null
  $CHECK openai "$DATA/bert-test-cls.json" "$TMP/r1" --from $i >/dev/null && alone=$((alone + 1))
done
check '[ $alone = 6 ]' "each input alone = llama.cpp ($alone of 6)"
st=$(c "$TMP/r" http://x/v1/embeddings -d '{"model":"bert","input":'"$BERT_IN"',"encoding_format":"base64"}')
check '[ $st = 200 ] && cmpv openai bert-test-cls "$TMP/r"' "encoding_format base64 decodes to the same vectors"
st=$(c "$TMP/r" http://x/v1/embeddings -d '{"model":"bert","input":"hello world","dimensions":16}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "len(d[\"data\"][0][\"embedding\"])")" = 16 ] && [ "$(jq_ "$TMP/r" "round(sum(x*x for x in d[\"data\"][0][\"embedding\"]), 5)")" = 1.0 ]' "dimensions 16: 16 components, re-normalised"
"$BIN" tokenize -m "$TMP/bert-test.gguf" --json "hello world" >"$TMP/ids" 2>/dev/null
IDS=$(jq_ "$TMP/ids" "d['tokens']")
st=$(c "$TMP/r" http://x/v1/embeddings -d '{"model":"bert","input":'"$IDS"'}')
check '[ $st = 200 ] && cmpv openai bert-test-cls "$TMP/r" --from 0' "token-id input [CLS] hello world [SEP] = the text's vector ($st $IDS)"

# ---- Ollama and llama.cpp shapes, the nomic-bert model
st=$(c "$TMP/r" http://x/api/embed -d '{"model":"nomic","input":'"$(inputs nomic-test-mean)"'}')
check '[ $st = 200 ] && cmpv ollama nomic-test-mean "$TMP/r"' "/api/embed on nomic-bert = llama.cpp ($st; $(grep FAIL "$TMP/cmp" | head -1))"
check '[ "$(jq_ "$TMP/r" "d[\"model\"] == \"nomic\" and d[\"prompt_eval_count\"] > 0 and d[\"total_duration\"] > 0")" = True ]' "/api/embed reply fields"
st=$(c "$TMP/r" http://x/api/embed -d '{"model":"nomic","input":"hi","options":{"num_thread":4}}')
check '[ $st = 400 ] && grep -q "options.num_thread is not supported on the embedding routes" "$TMP/r"' "/api/embed: an options key is a 400 naming it ($st $(head -c 200 "$TMP/r"))"
st=$(c "$TMP/r" http://x/api/embed -d '{"model":"nomic","input":"hi","options":{"num_ctx":null}}')
check '[ $st = 200 ]' "/api/embed: a null options key is absent ($st)"
st=$(c "$TMP/r" http://x/api/embeddings -d '{"model":"bert","prompt":"hello world"}')
check '[ $st = 200 ] && cmpv ollama-legacy bert-test-cls "$TMP/r" --unnormalized && [ "$(jq_ "$TMP/r" "sum(x*x for x in d[\"embedding\"]) > 1.01")" = True ]' "/api/embeddings: the unnormalised vector, same direction"
st=$(c "$TMP/r" http://x/embedding -d '{"model":"bert","content":'"$BERT_IN"'}')
check '[ $st = 200 ] && cmpv llama bert-test-cls "$TMP/r"' "llama.cpp /embedding = llama.cpp ($st)"

# ---- rerank: llama.cpp's scores for the (query, document) pairs, best first
st=$(c "$TMP/r" http://x/v1/rerank -d '{"model":"rerank","query":"what is a panda?","documents":["The giant panda is a bear species endemic to China.","hi"],"return_documents":true}')
r0=$(jq_ "$DATA/bert-rerank-test.json" "d['embeddings'][0][0]")
r1=$(jq_ "$DATA/bert-rerank-test.json" "d['embeddings'][1][0]")
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "len(d[\"results\"]) == 2 and all(abs(x[\"relevance_score\"] - [$r0, $r1][x[\"index\"]]) <= 1e-4 for x in d[\"results\"]) and d[\"results\"][0][\"relevance_score\"] >= d[\"results\"][1][\"relevance_score\"] and \"document\" in d[\"results\"][0]")" = True ]' "/v1/rerank: llama.cpp's scores ($r0, $r1), best first ($st $(head -c 300 "$TMP/r"))"
st=$(c "$TMP/r" http://x/v1/rerank -d '{"model":"rerank","query":"q","documents":["a","b","c"],"top_n":1}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "len(d[\"results\"])")" = 1 ]' "rerank top_n 1"

# ---- errors
st=$(c "$TMP/r" http://x/v1/embeddings -d '{"model":"kjv","input":"x"}')
check '[ $st = 400 ] && grep -q -- "--embeddings" "$TMP/r"' "a chat model without --embeddings: 400 naming the flag ($st)"
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"model":"bert","messages":[{"role":"user","content":"hi"}]}')
check '[ $st = 400 ] && grep -q "embedding model" "$TMP/r"' "chat with an encoder: 400 ($st)"
st=$(c "$TMP/r" http://x/v1/rerank -d '{"model":"bert","query":"q","documents":["a"]}')
check '[ $st = 400 ]' "rerank with a model without a classification head: 400 ($st)"
st=$(c "$TMP/r" http://x/v1/embeddings -d '{"model":"rerank","input":"a"}')
check '[ $st = 400 ] && grep -q "reranker" "$TMP/r"' "embeddings from a reranker: 400 ($st)"
LONG=$(python3 -c "print(' '.join(['word'] * 400))")
st=$(c "$TMP/r" http://x/v1/embeddings -d '{"model":"bert","input":"'"$LONG"'"}')
check '[ $st = 400 ] && grep -q "truncat" "$TMP/r"' "an input over the context: 400 that says so ($st)"
st=$(c "$TMP/r" http://x/api/embed -d '{"model":"bert","input":"'"$LONG"'"}')
check '[ $st = 200 ]' "Ollama truncates by default ($st)"
st=$(c "$TMP/r" http://x/api/embed -d '{"model":"bert","input":"'"$LONG"'","truncate":false}')
check '[ $st = 400 ]' "Ollama truncate false: 400 ($st)"
for body in '{"model":"bert","input":[]}' '{"model":"bert","input":"a","encoding_format":"hex"}' '{"model":"bert","input":"a","dimensions":100000}' '{"model":"bert","input":[[1,2,99999999]]}' '{"model":"bert"}' '{"model":"bert","input":{"a":1}}'; do
  st=$(c "$TMP/r" http://x/v1/embeddings -d "$body")
  check '[ $st = 400 ]' "bad request $body: 400 ($st $(head -c 150 "$TMP/r"))"
done
c "$TMP/r" http://x/api/show -d '{"model":"bert"}' >/dev/null
check '[ "$(jq_ "$TMP/r" "d[\"capabilities\"]")" = "['"'"'embedding'"'"']" ]' "/api/show: an encoder's capability is embedding"

# ---- 32 concurrent embedding requests mixed with chat requests to the other model
c "$TMP/one" http://x/v1/embeddings -d '{"model":"bert","input":"In the beginning God created the heaven and the earth."}' >/dev/null
cc=()
for i in $(seq 32); do
  c "$TMP/e.$i" http://x/v1/embeddings -d '{"model":"bert","input":"In the beginning God created the heaven and the earth."}' >"$TMP/e.$i.st" &
  cc+=($!)
  if [ $((i % 8)) = 0 ]; then
    c "$TMP/g.$i" http://x/v1/chat/completions -d '{"model":"kjv","messages":[{"role":"user","content":"Who made the heaven?"}],"max_tokens":8}' >"$TMP/g.$i.st" &
    cc+=($!)
  fi
done
wait "${cc[@]}"
good=$(python3 - "$TMP" <<'PY'
import json, sys, os
t = sys.argv[1]
one = json.load(open(t + "/one"))["data"][0]["embedding"]
n = 0
for i in range(1, 33):
    if open("%s/e.%d.st" % (t, i)).read() == "200":
        v = json.load(open("%s/e.%d" % (t, i)))["data"][0]["embedding"]
        n += max(abs(a - b) for a, b in zip(v, one)) <= 1e-5
print(n)
PY
)
chats=0; for i in 8 16 24 32; do [ "$(cat "$TMP/g.$i.st")" = 200 ] && [ -n "$(jq_ "$TMP/g.$i" "d['choices'][0]['message']['content']")" ] && chats=$((chats + 1)); done
check '[ "$good" = 32 ] && [ $chats = 4 ]' "32 concurrent embeddings (same vector as alone: $good) and 4 chats to kjv ($chats) all answered"

# ---- a decoder as embedder, only with --embeddings: llama.cpp's mean pooling
serve_bg d --config "$TMP/config.yaml" --socket "$TMP/d.sock" --cache-db none --embeddings -m tiny || bad "server with --embeddings"
st=$(curl -s -o "$TMP/r" -w '%{http_code}' --max-time 60 --unix-socket "$TMP/d.sock" http://x/v1/embeddings -d '{"model":"tiny","input":'"$(inputs tiny-mean)"'}')
check '[ $st = 200 ] && cmpv openai tiny-mean "$TMP/r"' "--embeddings: a llama model's mean-pooled vectors = llama.cpp's ($st; $(grep FAIL "$TMP/cmp" | head -1))"
curl -s -o "$TMP/r" --unix-socket "$TMP/d.sock" http://x/api/show -d '{"model":"tiny"}'
check '[ "$(jq_ "$TMP/r" "d[\"capabilities\"][:2]")" = "['"'"'completion'"'"', '"'"'embedding'"'"']" ]' "/api/show under --embeddings: completion and embedding"

# ---- the real npm clients
if e2e_node_setup; then
  E2E_NODE_DIR=$NODE_DIR HEARTH_SOCK=$TMP/s.sock HEARTH_PORT=$s_port timeout 120 node "$SRC/tests/e2e/embed.mjs" "$DATA/bert-test-cls.json" >"$TMP/node" 2>&1
  check '[ $? = 0 ]' "openai embeddings.create and ollama embed, single and batched ($(tail -n 4 "$TMP/node"))"
else
  echo "skipped: the npm clients ($node_ok)"
fi

echo "test_serve_embed: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
