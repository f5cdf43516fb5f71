#!/usr/bin/env bash
# test_chat_tui.sh - drives the real `hearth chat` TUI in tmux on the sample
# model: send-keys in, capture-pane out, every wait a bounded poll.
#
# Covers: a streamed answer and the status line (TTFT, tok/s, cached);
# non-ASCII input echoed intact; Ctrl-C and Esc stop a generation and the app
# lives on; /system, /clear; /save, /quit, restart, /load shows the old
# transcript; resizing redraws the layout; /help; a reasoning model's <think>
# block folded to one line once the answer starts, Ctrl-T unfolding it.
# Runs with its own XDG_* directories and tmux server; the server is killed on
# exit whatever happens. Env: HEARTH_BIN, HEARTH_SHARED (set by ctest).
set -euo pipefail

BIN=${HEARTH_BIN:-build/bin/hearth}
SHARED=${HEARTH_SHARED:-../shared}
MODEL="$SHARED/models/hearth-kjv-llama-q8_0.gguf"
if ! command -v tmux >/dev/null; then
  echo "test_chat_tui: tmux is not installed (packaging/install-deps.sh installs it)" >&2
  exit 1
fi
[ -f "$MODEL" ] || { echo "test_chat_tui: no sample model at $MODEL" >&2; exit 1; }
BIN=$(realpath "$BIN")
MODEL=$(realpath "$MODEL")

TMP=$(mktemp -d)
SOCK="hearth-tui-test-$$"
cleanup() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

T() { tmux -L "$SOCK" "$@"; }
screen() { T capture-pane -p -t chat; }

fail() {
  echo "FAIL: $*" >&2
  echo "---- screen ----" >&2
  screen >&2 || true
  echo "----------------" >&2
  exit 1
}

# wait_for TEXT [SECONDS]: until the screen shows TEXT (fixed string).
wait_for() {
  local deadline=$((SECONDS + ${2:-10}))
  while [ $SECONDS -lt $deadline ]; do
    screen | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  fail "waited ${2:-10}s for '$1'"
}

# wait_gone TEXT [SECONDS]: until the screen no longer shows TEXT.
wait_gone() {
  local deadline=$((SECONDS + ${2:-10}))
  while [ $SECONDS -lt $deadline ]; do
    screen | grep -qF -- "$1" || return 0
    sleep 0.1
  done
  fail "waited ${2:-10}s for '$1' to go away"
}

count() { screen | grep -cF -- "$1" || true; }

# start [ENV=VALUE ...] -- [hearth chat flags]: a fresh session named "chat".
start() {
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  T kill-session -t chat 2>/dev/null || true
  T new-session -d -s chat -x 100 -y 30 \
    env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color \
    XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache" \
    "${envs[@]}" bash -c '"$0" chat "$@"; echo "HEARTH-EXITED rc=$?"; sleep 60' \
    "$BIN" -m "$MODEL" --temp 0 -t 1 "$@"
  wait_for "Ask something" 15
}

# A session that outlives the "chat" ones: killing the last session would shut
# the server down while the next one starts ("server exited unexpectedly").
T new-session -d -s keep -x 100 -y 30 "sleep 600"

send() { T send-keys -t chat -l -- "$1"; }
key() { T send-keys -t chat "$@"; }

# ---------------------------------------------------------------- stream + status line
start --
send "Who was Moses?"
key Enter
wait_for "you" 5
wait_for "spake unto Moses" 10
wait_for "TTFT" 10
screen | grep -q "tok/s" || fail "status line has no tok/s"
screen | grep -qE "ctx [0-9]+/512" || fail "status line has no context used/total"
screen | grep -q "cached [0-9]*/[0-9]*" || fail "status line has no cached prompt tokens"
screen | grep -q "Q8_0" || fail "status line has no quant type"
echo "ok: streamed answer and status line"

# ---------------------------------------------------------------- non-ASCII input
send "Über 日本語 ✓"
wait_for "› Über 日本語 ✓" 5
key Enter
wait_for "   Über 日本語 ✓" 10 # now in the transcript, indented under "you"
wait_for "Ask something" 10
echo "ok: non-ASCII text echoed"

# ---------------------------------------------------------------- /help, /system, /clear
send "/help"; key Enter
wait_for "Alt-Enter or Ctrl-J inserts a newline" 5
send "/system Answer in one verse."; key Enter
wait_for "System prompt set." 5
send "/clear"; key Enter
wait_for "Cleared." 5
wait_gone "Who was Moses?" 5
screen | grep -qF "System prompt: Answer in one verse." || fail "/clear lost the system prompt"
echo "ok: /help /system /clear"

# ---------------------------------------------------------------- multi-line input
send "first line"; key M-Enter; send "second line"; key C-j; send "third"
wait_for "  second line" 5
wait_for "  third" 5
key C-u
wait_for "Ask something" 5
echo "ok: Alt-Enter / Ctrl-J newlines"

# ---------------------------------------------------------------- /save, /quit, restart, /load
send "Who was Aaron?"; key Enter
wait_for "Who was Aaron?" 5
wait_for "TTFT" 10
ANSWER=$(screen | grep -A1 "^ hearth-kjv-llama" | tail -1 | sed 's/^ *//')
[ -n "$ANSWER" ] || fail "no answer text to compare after /load"
send "/save moses-chat"; key Enter
wait_for "Saved as 'moses-chat'" 5
send "/quit"; key Enter
wait_for "HEARTH-EXITED rc=0" 5
start --
wait_gone "Who was Aaron?" 2
send "/history"; key Enter
wait_for "moses-chat" 5
send "/load moses-chat"; key Enter
wait_for "Conversation 'moses-chat'" 5
wait_for "Who was Aaron?" 5
wait_for "$ANSWER" 5
wait_for "System prompt: Answer in one verse." 5
echo "ok: /save, restart, /load"

# ---------------------------------------------------------------- scrollback
for _ in 1 2 3; do send "/help"; key Enter; done
wait_for "PgUp/PgDn scroll" 5
wait_gone "Who was Aaron?" 5 # scrolled off the top by the help texts
key PPage
wait_for "more below" 5
wait_for "Who was Aaron?" 5
key NPage; key NPage; key NPage
wait_gone "more below" 5
wait_gone "Who was Aaron?" 5
echo "ok: PgUp/PgDn scrollback"

# ---------------------------------------------------------------- resize
T resize-window -t chat -x 60 -y 20
deadline=$((SECONDS + 10))
while :; do
  s=$(screen)
  last=$(printf '%s\n' "$s" | sed -n 20p)
  rule=$(printf '%s\n' "$s" | sed -n 19p)
  widest=$(printf '%s\n' "$s" | LC_ALL=C.UTF-8 wc -L)
  if [[ "$last" == "› "* ]] && [[ "$rule" == "─"* ]] && [ "$widest" -le 60 ] && printf '%s\n' "$s" | grep -qF "PgUp/PgDn scroll the transcript"; then
    break
  fi
  [ $SECONDS -lt $deadline ] || fail "layout not redrawn for 60x20"
  sleep 0.1
done
T resize-window -t chat -x 100 -y 30
deadline=$((SECONDS + 10))
while :; do
  s=$(screen)
  [[ "$(printf '%s\n' "$s" | sed -n 30p)" == "› "* ]] && [[ "$(printf '%s\n' "$s" | sed -n 29p)" == "─"* ]] && break
  [ $SECONDS -lt $deadline ] || fail "layout not redrawn for 100x30"
  sleep 0.1
done
echo "ok: resize redraws"

# ---------------------------------------------------------------- Ctrl-C / Esc stop a generation
start HEARTH_CHAT_TOKEN_DELAY_MS=30 -- --ignore-eos -n 400
send "Tell me everything."; key Enter
wait_for "generating" 10
key C-c
wait_for "stopped" 10
wait_gone "generating" 5
screen | grep -q "TTFT" || fail "no stats after a stopped answer"
send "/stats"; key Enter
wait_for "Last answer (cancelled)" 5
send "Again."; key Enter
wait_for "generating" 10
key Escape
deadline=$((SECONDS + 10))
while [ "$(count stopped)" -lt 2 ]; do
  [ $SECONDS -lt $deadline ] || fail "Esc did not stop the second answer"
  sleep 0.1
done
send "/quit"; key Enter
wait_for "HEARTH-EXITED rc=0" 5
echo "ok: Ctrl-C and Esc stop generation, app stays alive"

# ---------------------------------------------------------------- a reasoning model's <think> block
AGENT=$(realpath "$SHARED/models/agent/hearth-kjv-agent-q8_0.gguf")
start -- -m "$AGENT" -n 160
send "Who made the heaven and the earth?"; key Enter
wait_for "thought for" 30
wait_gone "generating" 30
screen | grep -qF "<think>" && fail "the <think> tag is shown"
screen | grep -qF "Ctrl-T shows it" || fail "the folded line does not say how to unfold it"
key C-t
wait_gone "thought for" 5
screen | grep -qF "<think>" && fail "the <think> tag is shown unfolded"
screen | grep -qF "The user asks" || fail "unfolding did not show the thinking text"
key C-t
wait_for "thought for" 5
send "/quit"; key Enter
wait_for "HEARTH-EXITED rc=0" 5
echo "ok: a <think> block streams dim, folds to one line, Ctrl-T unfolds it"

echo "test_chat_tui: all passed"
