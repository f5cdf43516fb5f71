# lib.sh - what the shell tests share (sourced, never run): pass/fail
# counting, JSON field reads, and starting a `hearth serve` in the
# background with a bounded wait for its socket.
# Needs: $TMP (a temporary folder the test owns), $BIN (the hearth binary);
# fills the array pids with what it started, for the test's cleanup.
# (". lib.sh --keep-counts" keeps the caller's pass/fail counts and pids)
if [ "${1:-}" != --keep-counts ]; then
  pass=0 fail=0
  pids=()
fi
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
# jq_ FILE EXPR : a Python expression over the JSON in FILE (as d)
jq_() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)" 2>/dev/null; }

# serve_bg NAME ARGS... : `hearth serve ARGS` in the background (stderr in
# $TMP/NAME.err); waits (bounded, 10 s) until its Unix socket answers /health.
# Sets NAME_pid and NAME_sock. Returns 1, with the server's log, otherwise.
serve_bg() {
  local name=$1
  shift
  "$BIN" serve "$@" 2>"$TMP/$name.err" &
  local pid=$!
  pids+=("$pid")
  eval "${name}_pid=$pid"
  local sock=""
  for _ in $(seq 1 100); do
    sock=$(sed -n 's/^hearth serve: listening on unix:\(.*\)$/\1/p' "$TMP/$name.err" | head -n 1)
    if [ -n "$sock" ] && curl -s -o /dev/null --max-time 2 --unix-socket "$sock" http://x/health; then
      eval "${name}_sock=$sock"
      eval "${name}_port=$(sed -n 's/^hearth serve: listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/$name.err" | head -n 1)"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $name did not come up:" >&2
  cat "$TMP/$name.err" >&2
  return 1
}

# e2e_node_setup : the npm clients (openai, ollama, undici, zod, the AI SDK) installed under
# $BUILD/e2e-node (once; tests that run at the same time wait on a lock).
# Sets NODE_DIR, or node_ok to why not (node missing, npm install failed).
e2e_node_setup() {
  node_ok=""
  NODE_DIR=$BUILD/e2e-node
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    node_ok="node/npm not found"
    return 1
  fi
  mkdir -p "$NODE_DIR"
  (
    flock -w 180 9 || exit 1
    local p missing=
    for p in openai ollama undici zod ai @ai-sdk/openai-compatible; do
      [ -d "$NODE_DIR/node_modules/$p" ] || missing=1
    done
    if [ -n "$missing" ]; then
      timeout 180 npm install --ignore-scripts --no-audit --no-fund --prefix "$NODE_DIR" \
        openai ollama undici zod ai @ai-sdk/openai-compatible >"$TMP/npm.log" 2>&1
    fi
  ) 9>"$NODE_DIR/.lock" || node_ok="npm install failed (no network?): $(tail -n 1 "$TMP/npm.log" 2>/dev/null)"
  [ -z "$node_ok" ]
}

# finish : the summary line and the exit status
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
