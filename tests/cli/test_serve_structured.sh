#!/usr/bin/env bash
# test_serve_structured.sh - structured output over HTTP (Unix socket, curl)
# on the sample model: OpenAI response_format json_schema / json_object on
# /v1/chat/completions, Ollama format (schema) on /api/generate and llama.cpp
# grammar / json_schema on /completion, several seeds at temperature >= 1;
# every answer that finished parses and validates against its schema. Then
# the 400s: malformed GBNF, an unsatisfiable schema, strict with an
# unsupported keyword, an unknown format value. Then real client libraries
# (tests/e2e/structured.mjs): the openai client's parse() with a zod schema
# and the Vercel AI SDK's generateText / streamText / generateObject.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${HEARTH_BUILD:-$SRC/build}
MODEL=$SHARED/models/hearth-kjv-llama-q8_0.gguf
TMP=$(mktemp -d /tmp/hearth-sstruct.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config XDG_CACHE_HOME=$TMP/xdg-cache
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

S=$TMP/s.sock
"$BIN" serve -m "$MODEL" --cache-db none --socket "$S" --listen 127.0.0.1:0 -c 512 2>"$TMP/serve.err" &
pid=$!
for i in $(seq 1 100); do
  curl -s -o /dev/null --max-time 2 --unix-socket "$S" http://x/health && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
# post PATH JSON OUT: prints the HTTP status
post() { curl -s -o "$3" -w '%{http_code}' --max-time 60 --unix-socket "$S" -H 'Content-Type: application/json' -d "$2" "http://x$1"; }

SCHEMA='{"type":"object","properties":{"who":{"type":"string","maxLength":10},"n":{"type":"integer"},"kind":{"enum":["law","psalm"]}},"required":["who","n","kind"],"additionalProperties":false}'
# validate FILE HOW: HOW = openai | ollama | llama | object
validate() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); how = sys.argv[2]
if how in ("openai", "object"):
    c = r["choices"][0]; done = c["finish_reason"] == "stop"; text = c["message"]["content"]
elif how == "ollama":
    done = r.get("done_reason") == "stop"; text = r["response"]
else:
    done = r.get("stop_type") in ("eos", "word") or r.get("stopped_eos"); text = r["content"]
if not done:
    sys.exit(0)
v = json.loads(text)
open(sys.argv[1] + ".done", "a").write("x")
if how == "object":
    assert isinstance(v, dict); sys.exit(0)
assert isinstance(v, dict) and set(v) == {"who", "n", "kind"}, v
assert isinstance(v["who"], str) and len(v["who"]) <= 10 and isinstance(v["n"], int) and v["kind"] in ("law", "psalm"), v
PY
}
for seed in 1 2 3; do
  st=$(post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"Who?\"}],\"max_tokens\":200,\"temperature\":1.1,\"seed\":$seed,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\",\"strict\":true,\"schema\":$SCHEMA}}}" "$TMP/o.json")
  [ "$st" = 200 ] && validate "$TMP/o.json" openai && ok || bad "openai json_schema seed $seed: $st $(cat "$TMP/o.json")"
  st=$(post /api/generate "{\"model\":\"hearth-kjv-llama-q8_0\",\"prompt\":\"Who?\",\"stream\":false,\"format\":$SCHEMA,\"options\":{\"temperature\":1.2,\"seed\":$seed,\"num_predict\":200}}" "$TMP/o.json")
  [ "$st" = 200 ] && validate "$TMP/o.json" ollama && ok || bad "ollama format seed $seed: $st $(cat "$TMP/o.json")"
  st=$(post /completion "{\"prompt\":\"Who?\",\"n_predict\":200,\"temperature\":1.0,\"seed\":$seed,\"json_schema\":$SCHEMA}" "$TMP/o.json")
  [ "$st" = 200 ] && validate "$TMP/o.json" llama && ok || bad "llama.cpp json_schema seed $seed: $st $(cat "$TMP/o.json")"
done
st=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":150,"temperature":1,"response_format":{"type":"json_object"}}' "$TMP/o.json")
[ "$st" = 200 ] && validate "$TMP/o.json" object && ok || bad "json_object: $st $(cat "$TMP/o.json")"
st=$(post /completion '{"prompt":"Is it","n_predict":8,"temperature":1.5,"grammar":"root ::= (\"yes\" | \"no\") \".\""}' "$TMP/o.json")
txt=$(python3 -c "import json; print(json.load(open('$TMP/o.json'))['content'])" 2>/dev/null)
[ "$st" = 200 ] && { [ "$txt" = yes. ] || [ "$txt" = no. ]; } && ok || bad "grammar: $st $(cat "$TMP/o.json")"

# most answers must have finished (a grammar that never lets the model end would pass vacuously)
nd=$(cat "$TMP/o.json.done" 2>/dev/null | wc -c)
[ "$nd" -ge 6 ] && ok || bad "only $nd of 10 structured answers finished"

# expect400 PATH JSON WANT
expect400() {
  local st
  st=$(post "$1" "$2" "$TMP/e.json")
  [ "$st" = 400 ] && grep -qF -- "$3" "$TMP/e.json" && ok || bad "$1 $2: wanted 400 with '$3', got $st $(cat "$TMP/e.json")"
}
expect400 /completion '{"prompt":"x","grammar":"root ::= (\"a\""}' "expected ')'"
expect400 /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"array","minItems":3,"maxItems":1}}}}' "minItems is above maxItems"
expect400 /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"strict":true,"schema":{"type":"string","pattern":"^a"}}}}' "'pattern' is not supported with strict"
expect400 /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}' "'response_format.type' is 'yaml'"
expect400 /api/chat '{"model":"hearth-kjv-llama-q8_0","messages":[{"role":"user","content":"x"}],"format":"xml"}' "'format' is 'xml'"

# ---- real client libraries with zod schemas
. "$SRC/tests/cli/lib.sh" --keep-counts
if e2e_node_setup; then
  PORT=$(sed -n 's/^hearth serve: listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/serve.err" | head -n 1)
  E2E_NODE_DIR=$NODE_DIR HEARTH_SOCK=$S HEARTH_PORT=$PORT HEARTH_MODEL_ID=hearth-kjv-llama-q8_0 \
    timeout 300 node "$SRC/tests/e2e/structured.mjs" >"$TMP/node.out" 2>&1 && ok ||
    bad "structured.mjs (openai parse + zod, the AI SDK): $(tail -n 6 "$TMP/node.out")"
else
  echo "skipped: the npm clients ($node_ok)"
fi

echo "test_serve_structured: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
