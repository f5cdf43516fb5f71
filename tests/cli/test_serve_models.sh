#!/usr/bin/env bash
# test_serve_models.sh - one `hearth serve` serving several models: three
# models pulled (from a real HTTP server this test starts on 127.0.0.1,
# tests/cli/pull_server.py) into a temporary $XDG_DATA_HOME, a server started
# without -m, and requests naming each.
#
# Checks: /api/tags and /v1/models list every local model, /api/show reads
# one without loading it; requests for each model by name, one after another
# and 9 at once interleaved, give each model's own greedy answer (the same as
# alone), with --max-loaded 2 holding at most two loaded; the least recently
# used idle model is the one unloaded; keep_alive 0 (after a request, and in
# an empty request) unloads, a short keep_alive expires, /api/ps says what is
# loaded; /api/copy and /api/delete (a copy's file stays until its last name
# goes); /api/pull streams Ollama's NDJSON progress and the model is then
# served, a failed pull ends with an error line; a model larger than
# --max-memory gets a clear error while the loaded one keeps serving; the
# real `ollama` npm client's list/ps/pull/delete when node is there; bad
# --keep-alive / --max-* / --timeout values exit 2 naming the flag.
# Needs HEARTH_BIN, HEARTH_SHARED (set by ctest), python3, curl, sha256sum.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${HEARTH_BUILD:-$SRC/build}
for t in python3 curl sha256sum; do command -v $t >/dev/null || { echo "skipped: $t not found"; exit 0; }; done
TMP=$(mktemp -d /tmp/hearth-sm.XXXXXX)
. "$SRC/tests/cli/lib.sh"
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=$TMP/cfg XDG_DATA_HOME=$TMP/data XDG_CACHE_HOME=$TMP/cache
STORE=$XDG_DATA_HOME/hearth/models

# bad limits: exit 2 at once, naming the flag and the value, nothing listening
M0=$SHARED/models/hearth-kjv-llama-q8_0.gguf
for a in "--keep-alive 5x" "--max-loaded 0" "--max-connections 0" "--timeout -1" "--request-timeout -5" \
  "--max-memory lots" "--max-memory 0" "--max-body 2xB"; do
  flag=${a% *} val=${a#* }
  timeout 10 "$BIN" serve -m "$M0" --socket "$TMP/bad.sock" "$flag" "$val" >/dev/null 2>"$TMP/bad.err"
  rc=$?
  check '[ $rc = 2 ] && grep -q -- "$flag.*$val" "$TMP/bad.err" && [ ! -e "$TMP/bad.sock" ]' \
    "serve $a: exit 2 naming it (rc $rc: $(head -c 200 "$TMP/bad.err"))"
done

mkdir -p "$TMP/root"
for f in llama-q8_0 qwen2-q8_0 qwen3-q8_0 draft-q8_0 llama-f32 qwen2-f16; do
  cp "$SHARED/models/hearth-kjv-$f.gguf" "$TMP/root/"
done
python3 "$SRC/tests/cli/pull_server.py" "$TMP/root" "$TMP/port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
[ -s "$TMP/port" ] || { echo "FAIL: the test file server did not start"; exit 1; }
BASE=http://127.0.0.1:$(cat "$TMP/port")
for m in llama qwen2 qwen3; do
  timeout 60 "$BIN" pull -q "$BASE/plain/hearth-kjv-$m-q8_0.gguf" --name "kjv-$m" >/dev/null 2>"$TMP/pull.err"
  check '[ $? = 0 ]' "pull kjv-$m ($(cat "$TMP/pull.err"))"
done

serve_bg s --socket "$TMP/s.sock" --cache-db none --max-loaded 2 -c 256 --parallel 4 || { echo "FAIL: server start"; exit 1; }
c() { local o=$1; shift; curl -s -o "$o" -w '%{http_code}' --max-time 60 --unix-socket "$TMP/s.sock" "$@"; }
loaded() { c "$TMP/ps" http://x/api/ps >/dev/null; jq_ "$TMP/ps" "' '.join(sorted(m['name'] for m in d['models']))"; }
# wait_loaded WANT : poll /api/ps (bounded, 5 s) until the loaded set is WANT
wait_loaded() { for _ in $(seq 50); do [ "$(loaded)" = "$1" ] && return 0; sleep 0.1; done; return 1; }
# answer MODEL [EXTRA-JSON] : greedy completion text, into stdout
answer() {
  c "$TMP/a.$1.$$" http://x/v1/completions -d '{"model":"'$1'","prompt":"In the beginning God","max_tokens":8,"temperature":0'"${2:-}"'}' >/dev/null
  jq_ "$TMP/a.$1.$$" "d['choices'][0]['text']"
}

# ---- listing without loading
st=$(c "$TMP/r" http://x/api/tags)
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "sorted(m[\"name\"] for m in d[\"models\"])")" = "['"'"'kjv-llama'"'"', '"'"'kjv-qwen2'"'"', '"'"'kjv-qwen3'"'"']" ]' "/api/tags lists the three pulled models ($(head -c 300 "$TMP/r"))"
check '[ "$(jq_ "$TMP/r" "[m[\"details\"][\"family\"] for m in d[\"models\"]]")" = "['"'"'llama'"'"', '"'"'qwen2'"'"', '"'"'qwen3'"'"']" ]' "/api/tags: each with its architecture"
st=$(c "$TMP/r" http://x/v1/models); check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "len(d[\"data\"])")" = 3 ]' "/v1/models lists them"
st=$(c "$TMP/r" http://x/api/show -d '{"model":"kjv-qwen3"}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"model_info\"][\"general.architecture\"]")" = qwen3 ]' "/api/show kjv-qwen3"
check '[ -z "$(loaded)" ]' "nothing loaded before a request (show and tags do not load)"
st=$(c "$TMP/r" http://x/v1/completions -d '{"prompt":"x","max_tokens":1}')
check '[ $st = 400 ] && grep -q "model.*is required" "$TMP/r"' "no default model: a request without 'model' is a 400 ($st)"
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"nosuch:7b","prompt":"x"}')
check '[ $st = 404 ] && grep -q "hearth pull nosuch:7b" "$TMP/r"' "an unknown model: 404 that says how to pull it ($st)"

# ---- each model by name; LRU with --max-loaded 2
A_llama=$(answer kjv-llama); A_qwen2=$(answer kjv-qwen2)
check '[ "$(loaded)" = "kjv-llama kjv-qwen2" ]' "two models loaded after a request each"
A_qwen3=$(answer kjv-qwen3)
check '[ "$(loaded)" = "kjv-qwen2 kjv-qwen3" ]' "a third request unloads the least recently used (kjv-llama): $(loaded)"
check '[ -n "$A_llama" ] && [ -n "$A_qwen3" ] && [ "$A_llama" != "$A_qwen2" ] && [ "$A_qwen2" != "$A_qwen3" ]' "three models, three different answers"
check '[ "$(answer kjv-llama:latest)" = "$A_llama" ]' "NAME:latest is NAME, and a reload gives the same answer"
grep -q "unloaded kjv-llama (room for another model: --max-loaded)" "$TMP/s.err" && ok || bad "the log says why kjv-llama was unloaded"

# ---- 9 requests at once, interleaved across the three (two fit at a time)
cc=()
for i in 1 2 3; do
  for m in llama qwen2 qwen3; do
    c "$TMP/cc.$m.$i" http://x/v1/completions -d '{"model":"kjv-'$m'","prompt":"In the beginning God","max_tokens":8,"temperature":0}' >"$TMP/cc.$m.$i.st" &
    cc+=($!)
  done
done
most=0
for _ in $(seq 300); do # bounded: 60 s
  n=$(loaded | wc -w); [ "$n" -gt "$most" ] && most=$n
  alive=0; for p in "${cc[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.2
done
wait "${cc[@]}"
good=0
for i in 1 2 3; do
  [ "$(cat "$TMP/cc.llama.$i.st")" = 200 ] && [ "$(jq_ "$TMP/cc.llama.$i" "d['choices'][0]['text']")" = "$A_llama" ] && good=$((good + 1))
  [ "$(cat "$TMP/cc.qwen2.$i.st")" = 200 ] && [ "$(jq_ "$TMP/cc.qwen2.$i" "d['choices'][0]['text']")" = "$A_qwen2" ] && good=$((good + 1))
  [ "$(cat "$TMP/cc.qwen3.$i.st")" = 200 ] && [ "$(jq_ "$TMP/cc.qwen3.$i" "d['choices'][0]['text']")" = "$A_qwen3" ] && good=$((good + 1))
done
check '[ $good = 9 ]' "9 concurrent requests to three models: each answered by its own model ($good of 9)"
check '[ $most -le 2 ] && [ $(loaded | wc -w) -le 2 ]' "at most --max-loaded 2 loaded meanwhile (saw $most)"

# ---- keep_alive
answer kjv-qwen2 ',"keep_alive":0' >/dev/null # an OpenAI request takes no keep_alive: stays
c "$TMP/r" http://x/api/generate -d '{"model":"kjv-qwen2","prompt":"In the beginning","stream":false,"keep_alive":0,"options":{"num_predict":2}}' >/dev/null
check 'wait_loaded "$(loaded | tr " " "\n" | grep -v qwen2 | tr "\n" " " | sed "s/ $//")" && ! loaded | grep -q qwen2' "keep_alive 0 unloads after the request ($(loaded))"
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"kjv-llama","keep_alive":"-1"}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"done_reason\"]")" = load ] && loaded | grep -q kjv-llama' "an empty /api/generate loads the model"
c "$TMP/r" http://x/api/ps >/dev/null
check '[ "$(jq_ "$TMP/r" "[m[\"expires_at\"] > \"2300\" and m[\"size\"] > m[\"size_vram\"] == 0 and m[\"context_length\"] == 256 for m in d[\"models\"] if m[\"name\"] == \"kjv-llama\"][0]")" = True ]' "/api/ps: keep_alive -1 never expires; size and context shown ($(head -c 400 "$TMP/r"))"
st=$(c "$TMP/r" http://x/api/chat -d '{"model":"kjv-llama","messages":[],"keep_alive":0}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "d[\"done_reason\"]")" = unload ] && ! loaded | grep -q kjv-llama' "an empty /api/chat with keep_alive 0 unloads it ($(loaded))"
c "$TMP/r" http://x/api/generate -d '{"model":"kjv-qwen2","prompt":"In","stream":false,"keep_alive":"1s","options":{"num_predict":1}}' >/dev/null
loaded | grep -q kjv-qwen2 && ok || bad "loaded while its keep_alive of 1s runs"
sleep 1.5
check 'wait_loaded "$(loaded | tr " " "\n" | grep -v qwen2 | tr "\n" " " | sed "s/ $//")" && ! loaded | grep -q qwen2' "keep_alive 1s: unloaded once it expired"

# ---- copy and delete
st=$(c "$TMP/r" http://x/api/copy -d '{"source":"kjv-llama","destination":"my-llama"}')
check '[ $st = 200 ] && [ "$(answer my-llama)" = "$A_llama" ]' "/api/copy: the copy answers like the original ($st)"
st=$(c "$TMP/r" -X DELETE http://x/api/delete -d '{"model":"my-llama"}')
check '[ $st = 200 ] && [ -f "$STORE/hearth-kjv-llama-q8_0.gguf" ] && [ "$(answer kjv-llama)" = "$A_llama" ]' "/api/delete of the copy keeps the file its original uses ($st)"
st=$(c "$TMP/r" -X DELETE http://x/api/delete -d '{"model":"kjv-llama"}')
check '[ $st = 200 ] && [ ! -e "$STORE/hearth-kjv-llama-q8_0.gguf" ]' "/api/delete of the last name removes the file ($st)"
st=$(c "$TMP/r" http://x/api/generate -d '{"model":"kjv-llama","prompt":"x","stream":false}')
check '[ $st = 404 ]' "a deleted model is not found ($st)"
check 'wait_loaded "$(loaded | tr " " "\n" | grep -v kjv-llama | tr "\n" " " | sed "s/ $//")"' "a deleted model is unloaded once idle"
st=$(c "$TMP/r" -X DELETE http://x/api/delete -d '{"model":"kjv-llama"}'); check '[ $st = 404 ]' "deleting it again: 404 ($st)"
st=$(c "$TMP/r" http://x/api/copy -d '{"source":"kjv-qwen3"}'); check '[ $st = 400 ]' "/api/copy without destination: 400 ($st)"

# ---- /api/pull, streamed and not
st=$(c "$TMP/r" http://x/api/pull -d '{"model":"'$BASE'/plain/hearth-kjv-draft-q8_0.gguf"}')
check '[ $st = 200 ] && head -n 1 "$TMP/r" | grep -q "pulling manifest" && grep -q "\"status\":\"pulling hearth-kjv-draft-q8_0.gguf\".*\"total\":1175648" "$TMP/r" && tail -n 1 "$TMP/r" | grep -q "{\"status\":\"success\"}"' "/api/pull streams Ollama's progress lines ($(tail -n 2 "$TMP/r" | head -c 300))"
check '[ "$(sha256sum <"$STORE/hearth-kjv-draft-q8_0.gguf")" = "$(sha256sum <"$TMP/root/hearth-kjv-draft-q8_0.gguf")" ] && [ -n "$(answer hearth-kjv-draft-q8_0)" ]' "the pulled model is whole and served at once"
st=$(c "$TMP/r" http://x/api/pull -d '{"model":"'$BASE'/plain/nosuch.gguf"}')
check '[ $st = 200 ] && tail -n 1 "$TMP/r" | grep -q "\"error\":.*404"' "a failed streamed pull ends with an error line ($(tail -n 1 "$TMP/r" | head -c 200))"
st=$(c "$TMP/r" http://x/api/pull -d '{"model":"'$BASE'/plain/nosuch.gguf","stream":false}')
check '[ $st = 500 ] && grep -q "404" "$TMP/r"' "a failed pull without streaming: 500 saying why ($st)"
st=$(c "$TMP/r" http://x/api/pull -d '{"model":"--help"}'); check '[ $st = 400 ]' "/api/pull of an option-like name: 400"

# ---- a model larger than --max-memory: a clear error, the loaded one keeps serving
timeout 60 "$BIN" pull -q "$BASE/plain/hearth-kjv-llama-f32.gguf" --name big >/dev/null 2>&1
printf 'models:\n  coder: %s\n' "$SHARED/vocab/ggml-vocab-starcoder.gguf" >"$TMP/m.yaml" # a vocabulary with FIM tokens
serve_bg m --config "$TMP/m.yaml" --socket "$TMP/m.sock" --cache-db none -c 256 --parallel 1 -m kjv-qwen3 --max-memory 8000000 || bad "server with --max-memory"
cm() { curl -s -o "$1" -w '%{http_code}' --max-time 60 --unix-socket "$TMP/m.sock" "${@:2}"; }
st=$(cm "$TMP/r" http://x/api/generate -d '{"model":"big","prompt":"In","stream":false}')
check '[ $st = 500 ] && grep -q "needs about .* but --max-memory is" "$TMP/r"' "a model over --max-memory: a clear error ($st $(head -c 300 "$TMP/r"))"
st=$(cm "$TMP/r" http://x/api/generate -d '{"model":"kjv-qwen3","prompt":"In","stream":false,"options":{"num_predict":2}}')
check '[ $st = 200 ]' "the loaded model keeps serving ($st)"
st=$(cm "$TMP/r" http://x/api/show -d '{"model":"coder"}')
check '[ $st = 200 ] && [ "$(jq_ "$TMP/r" "\"insert\" in d[\"capabilities\"]")" = True ]' "/api/show: a vocabulary with FIM tokens has the insert capability"
st=$(cm "$TMP/r" http://x/api/show -d '{"model":"kjv-qwen3"}')
check '[ "$(jq_ "$TMP/r" "\"insert\" in d[\"capabilities\"]")" = False ]' "... one without them does not"
st=$(cm "$TMP/r" http://x/api/generate -d '{"model":"coder","prompt":"x","stream":false}')
check '[ $st = 500 ] && grep -q "cannot load model .coder.: .*no tensors" "$TMP/r"' "a file that cannot load (a vocabulary only): a clear error ($st $(head -c 200 "$TMP/r"))"
st=$(cm "$TMP/r" http://x/api/generate -d '{"model":"kjv-qwen3","prompt":"In","stream":false,"options":{"num_predict":2}}')
check '[ $st = 200 ]' "... and the loaded model still serves ($st)"

# ---- the real ollama npm client: list, ps, pull, delete
E2E=$SRC/tests/e2e
if e2e_node_setup; then
  E2E_NODE_DIR=$NODE_DIR HEARTH_SOCK=$TMP/s.sock timeout 120 node "$E2E/models.mjs" "$BASE/plain/hearth-kjv-qwen2-f16.gguf" >"$TMP/node" 2>&1
  check '[ $? = 0 ]' "ollama client: list, ps, pull with progress, delete ($(tail -n 5 "$TMP/node"))"
else
  echo "skipped: the ollama npm client ($node_ok)"
fi

kill -TERM "$s_pid"; wait "$s_pid"; check '[ $? = 0 ]' "SIGTERM with models loaded: exit 0"
echo "test_serve_models: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
