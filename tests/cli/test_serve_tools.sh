#!/usr/bin/env bash
# test_serve_tools.sh - tool calling and reasoning through `hearth serve` on
# the agent test model (../shared/models/agent: a Qwen3-template model that
# thinks, then calls lookup_verse/count_verses), over a Unix socket with curl:
# OpenAI chat whole and streamed (reasoning_content, tool_calls with ids and
# JSON-string arguments, finish_reason tool_calls, no call text in content),
# the streamed deltas reassembled, tool_choice none / unknown name (400) /
# malformed tools (400), a tool loop (call -> tool message -> answer), Ollama
# /api/chat tools (object arguments) and think (message.thinking; think:false
# renders the empty think block), /api/show capabilities, max_tokens -1.
# Owner: serve (tools and reasoning).
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
MODEL=$SHARED/models/agent/hearth-kjv-agent-q8_0.gguf
[ -f "$MODEL" ] || {
  echo "skipped: $MODEL not found"
  exit 0
}
TMP=$(mktemp -d /tmp/hearth-tools.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
pass=0 fail=0
check() { if eval "$1"; then pass=$((pass + 1)); else
  fail=$((fail + 1))
  echo "FAIL: $2" >&2
fi; }
py() { python3 -c "import json,sys; d=json.load(open('$1')); $2" 2>>"$TMP/py.err"; }

S=$TMP/s.sock
"$BIN" serve -m "$MODEL" --cache-db none --socket "$S" --listen 127.0.0.1:0 2>"$TMP/err" &
pid=$!
for i in $(seq 1 100); do
  curl -s -o /dev/null --max-time 2 --unix-socket "$S" http://x/health && break
  sleep 0.1
done
c() { # c OUT PATH BODY: prints the status
  curl -s -o "$1" -w '%{http_code}' --max-time 60 --unix-socket "$S" "http://x$2" -d "$3"
}
TOOLS='[{"type":"function","function":{"name":"lookup_verse","description":"Look up a Bible verse","parameters":{"type":"object","properties":{"book":{"type":"string"},"chapter":{"type":"integer"},"verse":{"type":"integer"}},"required":["book","chapter","verse"]}}}]'
Q='[{"role":"user","content":"What does John 3:16 say?"}]'

# ---- OpenAI, whole reply
st=$(c "$TMP/a.json" /v1/chat/completions '{"messages":'"$Q"',"tools":'"$TOOLS"',"temperature":0,"max_tokens":200}')
check '[ "$st" = 200 ]' "openai tools: status $st"
check 'py "$TMP/a.json" "
ch=d[\"choices\"][0]; m=ch[\"message\"]; tc=m[\"tool_calls\"]
assert ch[\"finish_reason\"]==\"tool_calls\", ch
assert tc[0][\"type\"]==\"function\" and tc[0][\"id\"].startswith(\"call_\")
assert tc[0][\"function\"][\"name\"]==\"lookup_verse\"
a=json.loads(tc[0][\"function\"][\"arguments\"]); assert set(a)=={\"book\",\"chapter\",\"verse\"}, a
assert isinstance(a[\"chapter\"], int)
assert m[\"reasoning_content\"].strip(), m
assert not m[\"content\"] or \"tool_call\" not in m[\"content\"]
"' "openai whole: tool_calls, reasoning_content, finish_reason ($(cat "$TMP/a.json"))"

# ---- OpenAI, streamed: reassemble the deltas as a client does
curl -s -N --max-time 60 --unix-socket "$S" http://x/v1/chat/completions \
  -d '{"stream":true,"messages":'"$Q"',"tools":'"$TOOLS"',"temperature":0,"max_tokens":200}' >"$TMP/s.txt"
check 'python3 - "$TMP/s.txt" "$TMP/a.json" <<EOF 2>>"$TMP/py.err"
import json, sys
lines = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert lines[-1] == "[DONE]"
content = reasoning = ""
calls = {}
finish = None
for l in lines[:-1]:
    ch = json.loads(l)["choices"][0]
    d = ch["delta"]
    content += d.get("content") or ""
    reasoning += d.get("reasoning_content") or ""
    for t in d.get("tool_calls", []):
        c = calls.setdefault(t["index"], {"id": None, "name": "", "arguments": ""})
        if t.get("id"): c["id"] = t["id"]
        c["name"] += t.get("function", {}).get("name", "")
        c["arguments"] += t.get("function", {}).get("arguments", "")
    finish = ch["finish_reason"] or finish
whole = json.load(open(sys.argv[2]))["choices"][0]["message"]
assert finish == "tool_calls", finish
assert "tool_call" not in content, content
assert reasoning == whole["reasoning_content"], (reasoning, whole)
assert calls[0]["name"] == "lookup_verse" and calls[0]["id"].startswith("call_")
assert json.loads(calls[0]["arguments"]) == json.loads(whole["tool_calls"][0]["function"]["arguments"])
EOF' "openai stream: deltas reassemble to the whole reply"

# ---- tool_choice and tools errors
st=$(c "$TMP/e.json" /v1/chat/completions '{"messages":'"$Q"',"tools":'"$TOOLS"',"tool_choice":{"type":"function","function":{"name":"nope"}}}')
check '[ "$st" = 400 ] && grep -q "nope" "$TMP/e.json"' "unknown tool_choice name: 400 naming it ($st $(cat "$TMP/e.json"))"
st=$(c "$TMP/e.json" /v1/chat/completions '{"messages":'"$Q"',"tools":[{"type":"function"}]}')
check '[ "$st" = 400 ] && grep -q "tools\[0\]" "$TMP/e.json"' "malformed tools entry: 400 ($st)"
st=$(c "$TMP/e.json" /v1/chat/completions '{"messages":'"$Q"',"tool_choice":"required"}')
check '[ "$st" = 400 ]' "tool_choice required without tools: 400 ($st)"
st=$(c "$TMP/n.json" /v1/chat/completions '{"messages":'"$Q"',"tools":'"$TOOLS"',"tool_choice":"none","temperature":0,"max_tokens":120}')
check '[ "$st" = 200 ] && py "$TMP/n.json" "m=d[\"choices\"][0][\"message\"]; assert \"tool_calls\" not in m; assert d[\"choices\"][0][\"finish_reason\"]!=\"tool_calls\""' \
  "tool_choice none: no calls ($(cat "$TMP/n.json"))"
st=$(c "$TMP/r.json" /v1/chat/completions '{"messages":'"$Q"',"tools":'"$TOOLS"',"tool_choice":"required","temperature":0,"max_tokens":200}')
check '[ "$st" = 200 ] && py "$TMP/r.json" "assert d[\"choices\"][0][\"message\"][\"tool_calls\"]"' "tool_choice required: a call ($st)"
st=$(c "$TMP/r.json" /v1/chat/completions '{"messages":'"$Q"',"tools":'"$TOOLS"',"tool_choice":{"type":"function","function":{"name":"lookup_verse"}},"temperature":0,"max_tokens":200}')
check '[ "$st" = 200 ]' "tool_choice named: a call of it ($st)"

# ---- forced calls are guaranteed by the grammar: a greeting (which the model
# answers without a tool) at temperature 1.3, several seeds, both APIs
TOOLS2='[{"type":"function","function":{"name":"lookup_verse","parameters":{"type":"object","properties":{"book":{"type":"string"},"chapter":{"type":"integer"},"verse":{"type":"integer"}},"required":["book","chapter","verse"]}}},{"type":"function","function":{"name":"count_verses","parameters":{"type":"object","properties":{"book":{"type":"string"},"chapter":{"type":"integer"}},"required":["book","chapter"]}}}]'
HI='[{"role":"user","content":"Hello there, how are you today?"}]'
for seed in 1 2 3 4; do
  for choice in '"required"' '{"type":"function","function":{"name":"count_verses"}}'; do
    only=""; case "$choice" in *count_verses*) only=count_verses ;; esac
    st=$(c "$TMP/f.json" /v1/chat/completions '{"messages":'"$HI"',"tools":'"$TOOLS2"',"tool_choice":'"$choice"',"temperature":1.3,"seed":'$seed',"max_tokens":300}')
    check '[ "$st" = 200 ] && py "$TMP/f.json" "
ch=d[\"choices\"][0]; tc=ch[\"message\"][\"tool_calls\"]; assert ch[\"finish_reason\"]==\"tool_calls\"
want={\"lookup_verse\":{\"book\":str,\"chapter\":int,\"verse\":int},\"count_verses\":{\"book\":str,\"chapter\":int}}
for t in tc:
    n=t[\"function\"][\"name\"]; a=json.loads(t[\"function\"][\"arguments\"])
    assert set(a)==set(want[n]) and all(type(a[k]) is v for k,v in want[n].items()), (n,a)
    assert n==\"$only\" or not \"$only\", (n, \"$only\")
"' "forced tool_choice $choice seed $seed: a schema-valid call ($st: $(head -c 300 "$TMP/f.json"))"
  done
done
st=$(c "$TMP/f.json" /api/chat '{"model":"'"$(basename "$MODEL" .gguf)"'","stream":false,"messages":'"$HI"',"tools":'"$TOOLS2"',"tool_choice":{"type":"function","function":{"name":"count_verses"}},"options":{"temperature":1.3,"seed":9}}')
check '[ "$st" = 200 ] && py "$TMP/f.json" "tc=d[\"message\"][\"tool_calls\"]; assert tc and all(t[\"function\"][\"name\"]==\"count_verses\" and isinstance(t[\"function\"][\"arguments\"][\"chapter\"], int) for t in tc), tc"' "ollama named tool_choice: forced call ($st: $(head -c 300 "$TMP/f.json"))"
st=$(c "$TMP/f.json" /v1/chat/completions '{"messages":'"$HI"',"tools":'"$TOOLS2"',"tool_choice":"required","response_format":{"type":"json_object"}}')
check '[ "$st" = 400 ] && grep -q "cannot be combined" "$TMP/f.json"' "response_format with a forced tool_choice: 400 ($st)"

# ---- a tool loop: the call, the tool's answer, the model answers
ID=$(py "$TMP/a.json" "print(d['choices'][0]['message']['tool_calls'][0]['id'])")
ARGS=$(py "$TMP/a.json" "print(json.dumps(d['choices'][0]['message']['tool_calls'][0]['function']['arguments']))")
LOOP='[{"role":"user","content":"What does John 3:16 say?"},{"role":"assistant","content":null,"tool_calls":[{"id":"'$ID'","type":"function","function":{"name":"lookup_verse","arguments":'$ARGS'}}]},{"role":"tool","tool_call_id":"'$ID'","content":"{\"text\": \"For God so loved the world.\"}"}]'
st=$(c "$TMP/l.json" /v1/chat/completions '{"messages":'"$LOOP"',"tools":'"$TOOLS"',"temperature":0,"max_tokens":60}')
check '[ "$st" = 200 ] && py "$TMP/l.json" "m=d[\"choices\"][0][\"message\"]; assert m[\"content\"].strip() and \"tool_calls\" not in m, m"' \
  "tool loop: the model answers from the tool message ($st $(cat "$TMP/l.json"))"

# ---- Ollama: tools (arguments as an object) and think
st=$(c "$TMP/o.json" /api/chat '{"model":"hearth-kjv-agent-q8_0","stream":false,"messages":'"$Q"',"tools":'"$TOOLS"',"options":{"temperature":0,"num_predict":200}}')
check '[ "$st" = 200 ] && py "$TMP/o.json" "m=d[\"message\"]; f=m[\"tool_calls\"][0][\"function\"]; assert f[\"name\"]==\"lookup_verse\" and isinstance(f[\"arguments\"], dict); assert m[\"thinking\"].strip(); assert \"tool_call\" not in m[\"content\"]"' \
  "ollama tools: object arguments, thinking ($(cat "$TMP/o.json"))"
curl -s -N --max-time 60 --unix-socket "$S" http://x/api/chat -d '{"model":"hearth-kjv-agent-q8_0","messages":'"$Q"',"tools":'"$TOOLS"',"options":{"temperature":0,"num_predict":200}}' >"$TMP/o.ndjson"
check 'python3 - "$TMP/o.ndjson" <<EOF 2>>"$TMP/py.err"
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert ls[-1]["done"]
th = "".join(l["message"].get("thinking", "") for l in ls)
calls = [c for l in ls for c in l["message"].get("tool_calls", [])]
assert th.strip() and calls and isinstance(calls[0]["function"]["arguments"], dict)
assert "tool_call" not in "".join(l["message"]["content"] for l in ls)
EOF' "ollama stream: thinking and tool_calls lines"
st=$(c "$TMP/t.json" /api/chat '{"model":"hearth-kjv-agent-q8_0","stream":false,"think":false,"messages":[{"role":"user","content":"Recite Genesis 1:1."}],"options":{"temperature":0,"num_predict":40}}')
check '[ "$st" = 200 ] && py "$TMP/t.json" "assert not d[\"message\"].get(\"thinking\", \"\").strip(), d"' "ollama think:false: no thinking ($(cat "$TMP/t.json"))"
st=$(c "$TMP/t.json" /api/chat '{"model":"hearth-kjv-agent-q8_0","stream":false,"think":"yes","messages":'"$Q"'}')
check '[ "$st" = 400 ]' "think of the wrong type: 400 ($st)"

st=$(c "$TMP/e.json" /v1/chat/completions '{"messages":'"$Q"',"logprobs":true,"top_logprobs":2,"max_tokens":8}')
check '[ "$st" = 200 ] && py "$TMP/e.json" "c=d[\"choices\"][0][\"logprobs\"][\"content\"]; assert len(c) == d[\"usage\"][\"completion_tokens\"] and all(len(x[\"top_logprobs\"]) == 2 for x in c), c"' "logprobs with a thinking model: one entry per generated token ($st)"

# ---- capabilities, max_tokens -1
st=$(c "$TMP/show.json" /api/show '{"model":"hearth-kjv-agent-q8_0"}')
check 'py "$TMP/show.json" "c=d[\"capabilities\"]; assert \"completion\" in c and \"tools\" in c and \"thinking\" in c, c; assert d[\"model_info\"][\"general.basename\"]"' \
  "/api/show capabilities: tools, thinking"
st=$(c "$TMP/m.json" /v1/chat/completions '{"messages":[{"role":"user","content":"Recite Genesis 1:1."}],"max_tokens":-1,"temperature":0}')
check '[ "$st" = 200 ]' "max_tokens -1 accepted ($st $(head -c 300 "$TMP/m.json"))"

# ---- the real clients (node): openai and ollama npm packages
node_ok=""
BUILD=${HEARTH_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$SRC/tests/cli/lib.sh" --keep-counts
e2e_node_setup
if [ -z "$node_ok" ]; then
  PORT=$(sed -n 's/^hearth serve: listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/err" | head -n 1)
  E2E_NODE_DIR=$NODE_DIR HEARTH_SOCK=$S HEARTH_PORT=$PORT HEARTH_MODEL_ID=hearth-kjv-agent-q8_0 \
    timeout 120 node "$SRC/tests/e2e/tools.mjs" >"$TMP/tools.out" 2>&1
  check '[ $? -eq 0 ]' "node tools.mjs (openai + ollama clients): $(tail -n 8 "$TMP/tools.out")"
fi

echo "test_serve_tools: $pass passed, $fail failed"
[ -n "$node_ok" ] && echo "skipped: node e2e clients ($node_ok)"
[ $fail -eq 0 ] || cat "$TMP/py.err" >&2
[ $fail -eq 0 ]
