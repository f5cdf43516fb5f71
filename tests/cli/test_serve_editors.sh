#!/usr/bin/env bash
# test_serve_editors.sh - the editors' own request shapes against `hearth
# serve` over TCP 127.0.0.1 (tests/e2e/editors.mjs: VS Code Copilot Chat's
# Ollama provider, Zed, Continue, Cline, aider through litellm), on two
# servers: the sample model with a context (-c 1024) smaller than the
# options.num_ctx the editors send, and the agent model (tools, thinking).
# The fixtures are written from each client's source (named in editors.mjs
# and docs/API.md "Editors and tools"). Needs node and the npm clients
# (e2e_node_setup); without them it says so and skips.
# Owner: serve tests (editors).
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${HEARTH_BUILD:-$SRC/build}
MODEL=$SHARED/models/hearth-kjv-llama-q8_0.gguf
AGENT=$SHARED/models/agent/hearth-kjv-agent-q8_0.gguf
for f in "$MODEL" "$AGENT"; do
  [ -f "$f" ] || {
    echo "skipped: $f not found"
    exit 0
  }
done
TMP=$(mktemp -d /tmp/hearth-editors.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config XDG_CACHE_HOME=$TMP/xdg-cache
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
pass=0 fail=0
. "$SRC/tests/cli/lib.sh" --keep-counts

e2e_node_setup
if [ -n "$node_ok" ]; then
  echo "skipped: node e2e clients ($node_ok)"
  exit 0
fi
serve_bg sample -m "$MODEL" --cache-db none --socket "$TMP/s.sock" --listen 127.0.0.1:0 -c 1024 || exit 1
serve_bg agent -m "$AGENT" --cache-db none --socket "$TMP/a.sock" --listen 127.0.0.1:0 -c 2048 || exit 1
[ -n "$sample_port" ] && [ -n "$agent_port" ] || {
  echo "FAIL: no TCP port in the servers' logs" >&2
  exit 1
}
E2E_NODE_DIR=$NODE_DIR HEARTH_SOCK=$sample_sock HEARTH_PORT=$sample_port HEARTH_AGENT_PORT=$agent_port \
  HEARTH_MODEL_ID=hearth-kjv-llama-q8_0 HEARTH_AGENT_ID=hearth-kjv-agent-q8_0 HEARTH_CTX=1024 \
  timeout 240 node "$SRC/tests/e2e/editors.mjs" >"$TMP/editors.out" 2>&1
rc=$?
cat "$TMP/editors.out"
[ $rc -eq 0 ] || {
  echo "FAIL: editors.mjs exited $rc; servers' logs:" >&2
  tail -n 20 "$TMP/sample.err" "$TMP/agent.err" >&2
  exit 1
}
