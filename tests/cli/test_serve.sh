#!/usr/bin/env bash
# test_serve.sh - `hearth serve` end to end: a real server on the sample model
# on a temporary Unix socket and on 127.0.0.1 (port 0: the server picks and
# prints it). curl over the Unix socket for every route and error status
# (400 malformed / wrong type / too long, 401, 404, 405, 413, 429); the real
# `openai` and `ollama` npm clients over TCP and the Unix socket
# (tests/e2e/clients.mjs); a load test of 32 concurrent streaming clients
# plus clients that vanish mid-stream, after which no KV page may be in use
# (tests/e2e/load.mjs); socket-file handling; SIGTERM exits 0.
# Owner: serve. The node part is skipped (with a "skipped:" line) only when
# node/npm are missing or `npm install` fails (no network).
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${HEARTH_BUILD:-$SRC/build}
MODEL=$SHARED/models/hearth-kjv-llama-q8_0.gguf
ID=hearth-kjv-llama-q8_0
TMP=$(mktemp -d /tmp/hearth-serve.XXXXXX) # short: Unix socket paths are limited to 107 bytes
export XDG_CONFIG_HOME=$TMP/xdg-config # no user config file leaks into the test
. "$SRC/tests/cli/lib.sh"
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# start_server NAME ARGS... : the sample model, no prefix-cache file (lib.sh's serve_bg)
start_server() {
  local name=$1
  shift
  serve_bg "$name" -m "$MODEL" --cache-db none "$@"
}

S=$TMP/s1.sock
start_server s1 --socket "$S" --listen 127.0.0.1:0 --max-body 65536 -c 512 --cors-origins loopback,https://app.example || { echo "FAIL: server start"; exit 1; }
P=$s1_port
# c OUTFILE ARGS... : curl over the Unix socket; prints the HTTP status
c() { local o=$1; shift; curl -s -o "$o" -w '%{http_code}' --max-time 30 --unix-socket "$S" "$@"; }

# ---- transport
check '[ "$(stat -c %a "$S")" = 600 ]' "socket mode 0600"
check '[ -n "$P" ] && [ "$(curl -s --max-time 5 http://127.0.0.1:$P/health)" = "{\"status\":\"ok\"}" ]' "TCP /health on the printed port"
# 600 clients that connect and stall half-way through their request headers must not lock
# others out: a new TCP request and a generation are answered while they hang on
python3 - "$P" >"$TMP/idle" 2>&1 <<'PY'
import socket, subprocess, sys, time
port = int(sys.argv[1])
held = []
for i in range(600):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
    held.append(s)
t = time.time()
h = subprocess.run(["curl", "-s", "--max-time", "10", "http://127.0.0.1:%d/health" % port], capture_output=True, text=True)
g = subprocess.run(["curl", "-s", "--max-time", "30", "http://127.0.0.1:%d/v1/completions" % port, "-d",
                    '{"prompt":"In the beginning","max_tokens":4}'], capture_output=True, text=True)
ok = '"ok"' in h.stdout and '"text_completion"' in g.stdout
print("held %d; health %r; completion %d bytes in %.2fs" % (len(held), h.stdout, len(g.stdout), time.time() - t))
sys.exit(0 if ok else 1)
PY
check '[ $? = 0 ]' "600 stalled TCP clients do not lock others out ($(tail -n 1 "$TMP/idle"))"
"$BIN" serve -m "$MODEL" --cache-db none --socket "$S" >"$TMP/o" 2>&1
check '[ $? -ne 0 ] && grep -q "already listening on" "$TMP/o"' "a live server's socket is refused"
python3 -c "import socket; s=socket.socket(socket.AF_UNIX); s.bind('$TMP/stale.sock')"
start_server s3 --socket "$TMP/stale.sock" && ok || bad "stale socket file replaced"
kill -TERM "$s3_pid"; wait "$s3_pid"; check '[ $? -eq 0 ] && [ ! -e "$TMP/stale.sock" ]' "SIGTERM: exit 0, socket removed"
"$BIN" serve --help >"$TMP/o" 2>&1; check '[ $? -eq 0 ] && grep -q -- "--listen" "$TMP/o"' "serve --help"
"$BIN" serve -m "$MODEL" --listen nonsense:port --socket none >"$TMP/o" 2>&1
check '[ $? -ne 0 ] && grep -q "HOST:PORT" "$TMP/o"' "bad --listen named"

# ---- settings from a config file (no -m: the configured default model, its socket)
mkdir -p "$TMP/cfg"
printf 'default_model: kjv\nmodels:\n  kjv: %s\nserver:\n  socket: %s\nprefix_cache:\n  enabled: false\n' \
  "$MODEL" "$TMP/cfg.sock" >"$TMP/cfg/config.yaml"
"$BIN" serve --config "$TMP/cfg/config.yaml" 2>"$TMP/cfg.err" &
cfg_pid=$!
pids+=("$cfg_pid")
for i in $(seq 1 100); do
  curl -s -o /dev/null --max-time 2 --unix-socket "$TMP/cfg.sock" http://x/health && break
  sleep 0.1
done
st=$(curl -s -o "$TMP/r" -w '%{http_code}' --max-time 10 --unix-socket "$TMP/cfg.sock" http://x/v1/models)
check '[ "$st" = 200 ] && [ "$(jq_ "$TMP/r" "d[\"data\"][0][\"id\"]")" = kjv ]' "serve --config: model (named as the config names it) and socket from the file"
kill -TERM "$cfg_pid" 2>/dev/null; wait "$cfg_pid" 2>/dev/null
printf 'threads: four\n' >"$TMP/cfg/bad.yaml"
"$BIN" serve --config "$TMP/cfg/bad.yaml" >"$TMP/o" 2>&1
check '[ $? -eq 2 ] && grep -q "bad.yaml:1:10" "$TMP/o"' "serve --config: a bad file is reported with line:column"

# ---- routes over the Unix socket
st=$(c "$TMP/r" http://x/v1/models); check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"data\"][0][\"id\"]")" = $ID ]' "GET /v1/models"
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"model":"'$ID'","messages":[{"role":"user","content":"Who made the heaven?"}],"max_tokens":16,"temperature":0}')
check '[ $st = 200 ] && [ -n "$(jq_ "$TMP/r" "d[\"choices\"][0][\"message\"][\"content\"]")" ] && [ "$(jq_ "$TMP/r" "d[\"usage\"][\"completion_tokens\"] <= 16")" = True ]' "POST /v1/chat/completions"
st=$(c "$TMP/r" -N http://x/v1/chat/completions -d '{"messages":[{"role":"user","content":"Who made the heaven?"}],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true}}')
check '[ $st = 200 ] && [ "$(tail -n 2 "$TMP/r" | head -n 1)" = "data: [DONE]" ] && grep -q "\"choices\":\[\],\"usage\":{\"prompt_tokens\"" "$TMP/r" && grep -q "\"finish_reason\":\"" "$TMP/r"' "chat stream: finish, usage chunk, [DONE]"
st=$(c "$TMP/r" http://x/v1/completions -d '{"prompt":"In the beginning","max_tokens":4,"temperature":0}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"choices\"][0][\"finish_reason\"]")" = length ]' "POST /v1/completions"
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"'$ID'","prompt":"Who made the heaven?","options":{"num_predict":6}}')
check '[ $st = 200 ] && [ "$(tail -n 1 "$TMP/r" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d[\"done\"] and d[\"eval_count\"] == 6 and d[\"eval_duration\"] > 0 and d[\"done_reason\"])")" = length ]' "POST /api/generate NDJSON, last line done"
st=$(c "$TMP/r" http://x/api/chat -d '{"model":"'$ID'","messages":[{"role":"user","content":"Who?"}],"stream":false,"options":{"num_predict":4}}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"done\"] and d[\"message\"][\"role\"]")" = assistant ]' "POST /api/chat stream:false"
# CORS on s1 (--cors-origins loopback,https://app.example)
curl -s -D "$TMP/h" -o /dev/null -H "Origin: http://localhost:5173" --unix-socket "$S" http://x/v1/models
check 'grep -qi "^access-control-allow-origin: http://localhost:5173" "$TMP/h" && grep -qi "^vary: origin" "$TMP/h"' "CORS: a loopback origin is allowed"
curl -s -D "$TMP/h" -o /dev/null -H "Origin: https://app.example" --unix-socket "$S" http://x/v1/chat/completions -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}'
check 'grep -qi "^access-control-allow-origin: https://app.example" "$TMP/h"' "CORS: a listed origin is allowed on POST"
curl -s -D "$TMP/h" -o /dev/null -H "Origin: https://evil.example" --unix-socket "$S" http://x/v1/models
check '! grep -qi "^access-control-allow-origin" "$TMP/h"' "CORS: another origin gets no header"
st=$(curl -s -D "$TMP/h" -o /dev/null -w '%{http_code}' -X OPTIONS -H "Origin: http://127.0.0.1:3000" -H "Access-Control-Request-Method: POST" -H "Access-Control-Request-Headers: content-type,authorization" --unix-socket "$S" http://x/v1/chat/completions)
check '[ $st = 204 ] && grep -qi "^access-control-allow-methods: .*POST" "$TMP/h" && grep -qi "^access-control-allow-headers: content-type,authorization" "$TMP/h"' "CORS preflight: 204 with methods and headers ($st)"
"$BIN" serve -m "$MODEL" --socket none --listen 127.0.0.1:0 --cors-origins localhost:5173 >"$TMP/o" 2>&1
check '[ $? -eq 2 ] && grep -q "localhost:5173. is not an origin" "$TMP/o"' "--cors-origins with a bad entry: exit 2, named"
st=$(c "$TMP/r" "http://x/v1/models/$ID"); check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"id\"]")" = $ID ] && [ "$(jq_ "$TMP/r" "d[\"object\"]")" = model ]' "GET /v1/models/{id}"
st=$(c "$TMP/r" http://x/v1/models/no-such-model); check '[ $st = 404 ] && grep -q "no-such-model" "$TMP/r"' "GET /v1/models/{unknown}: 404 naming it ($st)"
# options.num_ctx: a request's own context (the server runs with -c 512)
# above the engine's it is cut to it, as Ollama cuts it to the trained length (editors send fixed ones)
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"'$ID'","prompt":"Who made the heaven?","stream":false,"options":{"num_ctx":4096,"num_predict":-1,"temperature":0}}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"prompt_eval_count\"] + d[\"eval_count\"] <= 512")" = True ]' "num_ctx above the engine's: cut to it ($st $(head -c 200 "$TMP/r"))"
st=$(c "$TMP/r" http://x/api/chat -d '{"model":"'$ID'","messages":[{"role":"user","content":"Hi"}],"stream":false,"options":{"num_thread":4}}')
check '[ $st = 400 ] && grep -q "options.num_thread is not supported" "$TMP/r"' "an options key Hearth does not act on: 400 naming it ($st $(head -c 200 "$TMP/r"))"
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"'$ID'","prompt":"Who made the heaven?","stream":false,"options":{"num_ctx":4}}')
check '[ $st = 400 ] && grep -q "options.num_ctx is 4" "$TMP/r"' "a prompt longer than num_ctx: 400 ($st)"
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"'$ID'","prompt":"Who made the heaven?","raw":true,"stream":false,"options":{"num_ctx":20,"num_predict":-1,"temperature":0}}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"prompt_eval_count\"] + d[\"eval_count\"] <= 20 and d[\"done_reason\"]")" = length ]' "num_ctx bounds the answer ($st $(head -c 300 "$TMP/r"))"
for ka in '"5m"' '"1h30m"' '0' '"-1"' '"250ms"' '-1'; do
  st=$(c "$TMP/r" http://x/api/generate -d '{"model":"'$ID'","prompt":"Who?","stream":false,"keep_alive":'"$ka"',"options":{"num_predict":2}}')
  check '[ $st = 200 ]' "keep_alive $ka accepted ($st)"
done
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"'$ID'","prompt":"Who?","stream":false,"keep_alive":"soon"}')
check '[ $st = 400 ] && grep -q "keep_alive" "$TMP/r"' "keep_alive not a duration: 400 naming it ($st)"
# token logprobs: llama.cpp's distribution at the first position, and every API's shape
# (on the F32 file, where the logits agree with llama.cpp's to 2e-3; a server of its own)
serve_bg lp -m "$SHARED/models/hearth-kjv-llama-f32.gguf" --cache-db none --socket "$TMP/lp.sock" -c 512 &&
  python3 "$SRC/tests/cli/serve_logprobs_check.py" "$TMP/lp.sock" "$SHARED/golden/llamacpp-hearth-kjv-llama-f32.jsonl" \
    hearth-kjv-llama-f32 >"$TMP/lp" 2>&1
check '[ $? = 0 ]' "logprobs = llama.cpp's (all routes): $(grep -c '^ok' "$TMP/lp") ok; $(grep FAIL "$TMP/lp" | head -3)"
kill -TERM "$lp_pid" 2>/dev/null
st=$(c "$TMP/r" http://x/api/tags); check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"models\"][0][\"name\"]")" = $ID ]' "GET /api/tags"
st=$(c "$TMP/r" http://x/api/version); check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "tuple(map(int, d[\"version\"].split(\".\"))) >= (0,6,4)")" = True ]' "GET /api/version >= 0.6.4"
st=$(c "$TMP/r" http://x/api/show -d '{"model":"'$ID'"}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"model_info\"][\"llama.context_length\"]")" = 512 ] && [ "$(jq_ "$TMP/r" "d[\"capabilities\"] == [\"completion\"]")" = True ]' "POST /api/show"
st=$(c "$TMP/r" http://x/api/ps); check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "len(d[\"models\"]) == 1 and d[\"models\"][0][\"expires_at\"] > \"2300\"")" = True ]' "GET /api/ps: loaded, kept (keep_alive -1 last)"
st=$(c "$TMP/r" -N http://x/completion -d '{"prompt":"In the beginning","n_predict":6,"stream":true}')
check '[ $st = 200 ] && grep -q "^data: {\"content\":" "$TMP/r" && tail -n 2 "$TMP/r" | grep -q "\"stop\":true"' "POST /completion SSE"
st=$(c "$TMP/r" http://x/infill -d '{"input_prefix":"And God said, Let there be","input_suffix":"\n","input_extra":[{"filename":"gen.txt","text":"In the beginning"}],"n_predict":0}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"tokens_predicted\"]")" = 0 ]' "POST /infill warm-up (n_predict 0)"
st=$(c "$TMP/r" http://x/infill -d '{"input_prefix":"And God said, Let there be","input_suffix":"\n","input_extra":[{"filename":"gen.txt","text":"In the beginning"}],"n_predict":4}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"tokens_predicted\"] == 4 and d[\"tokens_cached\"] > 0")" = True ]' "POST /infill reuses the warmed prefix"
st=$(c "$TMP/r" http://x/tokenize -d '{"content":"In the beginning"}'); toks=$(jq_ "$TMP/r" "json.dumps(d[\"tokens\"])")
st=$(c "$TMP/r" http://x/detokenize -d "{\"tokens\":$toks}")
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"content\"]")" = "In the beginning" ]' "tokenize/detokenize round trip"
st=$(c "$TMP/r" http://x/metrics)
check '[ $st = 200 ] && grep -q "^hearth_kv_pages_used " "$TMP/r" && grep -q "^hearth_time_to_first_token_seconds_bucket" "$TMP/r" && grep -q "^hearth_prefix_cache_hits_total" "$TMP/r"' "GET /metrics"
check 'grep -Eq "^hearth serve: POST /v1/chat/completions 200 prompt=[0-9]+ gen=[0-9]+ ttft=[0-9.]+ms [0-9.]+ms$" "$TMP/s1.err"' "one log line per request"

# ---- errors
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"messages": [')
check '[ $st = 400 ] && grep -q "not valid JSON" "$TMP/r" && [ "$(jq_ "$TMP/r" "d[\"error\"][\"type\"]")" = invalid_request_error ]' "400 malformed JSON (OpenAI shape)"
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}')
check '[ $st = 400 ] && grep -q "temperature" "$TMP/r"' "400 wrong type names the field"
st=$(c "$TMP/r" http://x/api/chat -d '{"model":"'$ID'","messages":"x"}')
check '[ $st = 400 ] && [ "$(jq_ "$TMP/r" "type(d[\"error\"]).__name__")" = str ] && grep -q messages "$TMP/r"' "400 Ollama shape: error is a string"
# a top-level field the route does not act on: a 400 naming it, in each API family's shape
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"messages":[{"role":"user","content":"x"}],"logit_bias":{"5":10}}')
check '[ $st = 400 ] && grep -q "logit_bias" "$TMP/r" && [ "$(jq_ "$TMP/r" "d[\"error\"][\"type\"]")" = invalid_request_error ]' "unknown field on /v1/chat/completions: 400 naming it ($st)"
st=$(c "$TMP/r" http://x/v1/completions -d '{"prompt":"In the","echo":true}')
check '[ $st = 400 ] && grep -q "echo" "$TMP/r"' "unknown field on /v1/completions: 400 naming it ($st)"
st=$(c "$TMP/r" http://x/v1/completions -d '{"prompt":"In the","messages":[]}')
check '[ $st = 400 ] && grep -q "messages" "$TMP/r"' "another route's field on /v1/completions: 400 ($st)"
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"'$ID'","prompt":"In the","template":"{{ .Prompt }}","stream":false}')
check '[ $st = 400 ] && grep -q "template" "$TMP/r" && [ "$(jq_ "$TMP/r" "type(d[\"error\"]).__name__")" = str ]' "unknown field on /api/generate: 400 naming it, Ollama shape ($st)"
st=$(c "$TMP/r" http://x/completion -d '{"prompt":"In the","n_predict":2,"typical_p":0.5}')
check '[ $st = 400 ] && grep -q "typical_p" "$TMP/r" && grep -q "send 1" "$TMP/r"' "a sampler knob Hearth lacks, not at its off value: 400 ($st)"
st=$(c "$TMP/r" http://x/completion -d '{"prompt":"In the","n_predict":2,"typical_p":1,"dry_multiplier":0,"cache_prompt":true,"suffix":null}')
check '[ $st = 200 ]' "neutral knobs, no-op fields and nulls are accepted on /completion ($st $(head -c 200 "$TMP/r"))"
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2,"user":"u1","store":false,"metadata":{"k":"v"}}')
check '[ $st = 200 ]' "user / store false / metadata accepted on /v1/chat/completions ($st)"
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"messages":[{"role":"user","content":"x"}],"store":true}')
check '[ $st = 400 ] && grep -q "store" "$TMP/r"' "store true: 400 ($st)"
python3 -c "print('{\"prompt\":\"' + 'In the beginning God created the heaven. ' * 100 + '\"}')" >"$TMP/long.json"
st=$(c "$TMP/r" http://x/v1/completions -d @"$TMP/long.json")
check '[ $st = 400 ] && grep -q "context holds 512" "$TMP/r"' "400 prompt longer than the context, with the numbers"
head -c 70000 /dev/zero | tr '\0' a >"$TMP/big"
st=$(c "$TMP/r" http://x/v1/completions --data-binary @"$TMP/big"); check '[ $st = 413 ]' "413 body over --max-body"
st=$(c "$TMP/r" http://x/v1/chat/completions -d '{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}')
check '[ $st = 404 ] && grep -q "gpt-4" "$TMP/r"' "404 unknown model (OpenAI)"
st=$(c "$TMP/r" http://x/api/show -d '{"model":"nope"}'); check '[ $st = 404 ] && [ "$(jq_ "$TMP/r" "type(d[\"error\"]).__name__")" = str ]' "404 unknown model (Ollama)"
st=$(c "$TMP/r" http://x/nope); check '[ $st = 404 ]' "404 unknown route"
st=$(c "$TMP/r" http://x/v1/chat/completions); check '[ $st = 405 ]' "405 GET on a POST route"

# ---- API key and 429 on a second server (one sequence, one waiting)
start_server s2 --socket "$TMP/s2.sock" --api-key sekrit --parallel 1 --max-waiting 1 || bad "server s2 start"
st=$(curl -s -o "$TMP/r" -w '%{http_code}' --unix-socket "$TMP/s2.sock" http://x/v1/models); check '[ $st = 401 ]' "401 without the key"
st=$(curl -s -o "$TMP/r" -w '%{http_code}' -H "Authorization: Bearer wrong" --unix-socket "$TMP/s2.sock" http://x/v1/models); check '[ $st = 401 ]' "401 with a wrong key"
st=$(curl -s -o "$TMP/r" -w '%{http_code}' -H "Authorization: Bearer sekrit" --unix-socket "$TMP/s2.sock" http://x/v1/models); check '[ $st = 200 ]' "200 with the key"
# CORS: s2 runs without --cors-origins: no header even for a loopback origin; a
# preflight is not exempt from the key there
curl -s -D "$TMP/h" -o /dev/null -H "Origin: http://localhost:5173" -H "Authorization: Bearer sekrit" --unix-socket "$TMP/s2.sock" http://x/v1/models
check '! grep -qi "^access-control-allow-origin" "$TMP/h"' "no CORS header without --cors-origins"
st=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H "Origin: http://localhost:5173" --unix-socket "$TMP/s2.sock" http://x/v1/models); check '[ $st = 401 ]' "no CORS: OPTIONS is not let past the key ($st)"

got429=0
for attempt in 1 2 3; do
  cpids=()
  for i in $(seq 1 8); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer sekrit" --unix-socket "$TMP/s2.sock" http://x/v1/completions \
      -d '{"prompt":"In the beginning","max_tokens":400,"ignore_eos":true}' >>"$TMP/codes.$attempt" &
    cpids+=($!)
  done
  wait "${cpids[@]}"
  grep -q 429 "$TMP/codes.$attempt" && { got429=1; break; }
done
check '[ $got429 = 1 ]' "429 when too many requests wait"

# ---- the real clients and the load test (node)
e2e_node_setup
if [ -z "$node_ok" ]; then
  export E2E_NODE_DIR=$NODE_DIR HEARTH_SOCK=$S HEARTH_PORT=$P HEARTH_MODEL_ID=$ID
  timeout 120 node "$SRC/tests/e2e/clients.mjs" >"$TMP/clients.out" 2>&1
  check '[ $? -eq 0 ]' "node clients (openai + ollama, TCP + Unix): $(tail -n 5 "$TMP/clients.out")"
  timeout 120 node "$SRC/tests/e2e/load.mjs" >"$TMP/load.out" 2>&1
  check '[ $? -eq 0 ]' "load test: $(tail -n 5 "$TMP/load.out")"
  grep '^{' "$TMP/load.out" | sed 's/^/load: /'
fi

# ---- shutdown with a stream in flight
curl -s -N --unix-socket "$S" http://x/v1/completions -d '{"prompt":"In","max_tokens":480,"ignore_eos":true,"stream":true}' >"$TMP/inflight" &
sleep 0.05
kill -TERM "$s1_pid"; wait "$s1_pid"; rc=$?
check '[ $rc -eq 0 ] && [ ! -e "$S" ] && grep -q "stopped" "$TMP/s1.err"' "SIGTERM with a stream in flight: exit 0"

echo "test_serve: $pass passed, $fail failed"
[ -n "$node_ok" ] && echo "skipped: node e2e clients and load test ($node_ok)"
[ $fail -eq 0 ]
