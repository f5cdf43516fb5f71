#!/usr/bin/env bash
# test_chat_once.sh - `hearth chat` without the TUI: --once, stdin lines (one
# turn per line, multi-turn context, commands), --save/--load through the
# SQLite history, the prefix cache across turns, and the errors a user sees.
# Env: HEARTH_BIN, HEARTH_SHARED (set by ctest). Own XDG_* directories.
set -euo pipefail

BIN=${HEARTH_BIN:-build/bin/hearth}
SHARED=${HEARTH_SHARED:-../shared}
MODEL="$SHARED/models/hearth-kjv-llama-q8_0.gguf"
[ -f "$MODEL" ] || { echo "test_chat_once: no sample model at $MODEL" >&2; exit 1; }
BIN=$(realpath "$BIN")
MODEL=$(realpath "$MODEL")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache"
fail() { echo "FAIL: $*" >&2; exit 1; }
chat() { "$BIN" chat -m "$MODEL" --temp 0 -t 1 "$@"; }

# --once: the answer on stdout, nothing else
out=$(chat --once "Who was Moses?" 2>"$TMP/err")
[ -n "$out" ] || fail "--once printed no answer"
grep -q "Moses" <<<"$out" || fail "--once answer unexpected: $out"
[ "$(printf '%s\n' "$out" | wc -l)" -le 3 ] || fail "--once printed more than an answer: $out"
# the same question gives the same greedy answer as `hearth run` on the ChatML prompt
ref=$("$BIN" run -m "$MODEL" --temp 0 -t 1 -n 512 -p "<|im_start|>user
Who was Moses?<|im_end|>
<|im_start|>assistant
" 2>/dev/null)
[ "$out" = "$ref" ] || fail "--once differs from run on the ChatML prompt: '$out' vs '$ref'"
echo "ok: --once"

# --stats: the status line on stderr
chat --once "Who was Moses?" --stats 2>"$TMP/err" >/dev/null
grep -q "TTFT .* ms · .* tok/s · cached [0-9]*/[0-9]*" "$TMP/err" || fail "--stats: $(cat "$TMP/err")"
grep -q "hearth-kjv-llama Q8_0 · cpu · ctx [0-9]*/512" "$TMP/err" || fail "--stats: $(cat "$TMP/err")"
echo "ok: --stats"

# stdin: one turn per line, answers one per line; the second turn reuses the
# first turn's pages from the prefix cache; commands go to stderr
printf 'Who was Moses?\n\nWho was Aaron?\n/stats\n' | chat --stats --save two >"$TMP/out" 2>"$TMP/err"
[ "$(wc -l <"$TMP/out")" -eq 2 ] || fail "stdin mode: expected 2 answer lines, got: $(cat "$TMP/out")"
head -1 "$TMP/out" | grep -qx "$out" || fail "stdin mode: first answer differs from --once"
grep -q "Last answer (stop)" "$TMP/err" || fail "/stats in stdin mode: $(cat "$TMP/err")"
cached=$(grep -o "cached [0-9]*" "$TMP/err" | sed -n 2p | cut -d' ' -f2)
[ "${cached:-0}" -gt 0 ] || fail "second turn used no cached prompt tokens: $(cat "$TMP/err")"
echo "ok: stdin turns, prefix cache across turns ($cached cached)"

# --load continues the saved conversation; /history lists it
printf '/history\n' | chat 2>"$TMP/err" >/dev/null
grep -q "two .* 4 msgs  Who was Moses?" "$TMP/err" || fail "/history: $(cat "$TMP/err")"
test -f "$TMP/data/hearth/history.sqlite" || fail "history not under XDG_DATA_HOME"
chat --load two --once "And then?" --stats >/dev/null 2>"$TMP/err"
ctx=$(grep -o "ctx [0-9]*" "$TMP/err" | cut -d' ' -f2)
[ "${ctx:-0}" -gt 60 ] || fail "--load did not bring the old turns into the context: $(cat "$TMP/err")"
echo "ok: --save / --load / /history"

# --history-db elsewhere; /system then a turn
printf '/system Answer briefly.\nWho was Moses?\n' | chat --history-db "$TMP/h/x.sqlite" --save s1 >/dev/null 2>&1
test -f "$TMP/h/x.sqlite" || fail "--history-db not used"
echo "ok: --history-db"

# errors a user sees
if chat --load nosuch --once hi 2>"$TMP/err"; then fail "--load of a missing name succeeded"; fi
grep -q "no conversation named 'nosuch'" "$TMP/err" || fail "missing conversation message: $(cat "$TMP/err")"
if printf '/bogus\n' | chat 2>"$TMP/err" >/dev/null; then fail "unknown command exited 0"; fi
grep -q "Unknown command /bogus" "$TMP/err" || fail "unknown command message: $(cat "$TMP/err")"
if printf '/temp abc\n' | chat 2>"$TMP/err" >/dev/null; then fail "bad /temp exited 0"; fi
grep -q "/temp expects a number" "$TMP/err" || fail "/temp message: $(cat "$TMP/err")"
if HEARTH_SAMPLE_MODEL=/nonexistent "$BIN" chat -m "$TMP/missing.gguf" --once hi 2>"$TMP/err"; then fail "missing model exited 0"; fi
grep -q "missing.gguf" "$TMP/err" || fail "missing model message: $(cat "$TMP/err")"
long=$(printf 'In the beginning %.0s' $(seq 1 400))
if chat -c 128 --once "$long" 2>"$TMP/err" >/dev/null; then fail "over-long message exited 0"; fi
grep -q "context holds 128" "$TMP/err" || fail "context message: $(cat "$TMP/err")"
echo "ok: error messages"

# no -m: the sample model (the README's main command)
out2=$(cd "$TMP" && HEARTH_SAMPLE_MODEL="$MODEL" "$BIN" chat --temp 0 -t 1 --once "Who was Moses?" 2>/dev/null)
[ "$out2" = "$out" ] || fail "default model answer differs: $out2"
echo "ok: sample model by default"

# the config file: models by name, the default model, per-model system prompt;
# flags override it; /model switches among configured models; errors name the place
mkdir -p "$XDG_CONFIG_HOME/hearth"
cat >"$XDG_CONFIG_HOME/hearth/config.yaml" <<YAML
default_model: kjv
models:
  kjv:
    path: $MODEL
    temperature: 0
    system_prompt: "Answer in one verse."
  qwen: $(dirname "$MODEL")/hearth-kjv-qwen2-q8_0.gguf
threads: 1
YAML
"$BIN" chat --once "Who was Moses?" --stats >/dev/null 2>"$TMP/err" || fail "configured default model: $(cat "$TMP/err")"
grep -q "^hearth: kjv Q8_0 · cpu" "$TMP/err" || fail "configured default model not used: $(cat "$TMP/err")"
"$BIN" chat -m qwen --once "Who was Moses?" --stats >/dev/null 2>"$TMP/err" || fail "-m NAME: $(cat "$TMP/err")"
grep -q "^hearth: qwen Q8_0" "$TMP/err" || fail "-m NAME did not pick the configured model: $(cat "$TMP/err")"
printf '/model qwen\nWho was Moses?\n/model\n' | "$BIN" chat >/dev/null 2>"$TMP/err" || fail "/model: $(cat "$TMP/err")"
grep -q "Now using qwen Q8_0." "$TMP/err" || fail "/model switch: $(cat "$TMP/err")"
printf 'models:\n  kjv:\n    path: %s\n    temprature: 0\n' "$MODEL" >"$TMP/bad.yaml"
if "$BIN" chat --config "$TMP/bad.yaml" --once hi 2>"$TMP/err"; then fail "a bad config was accepted"; fi
grep -q "bad.yaml:4:" "$TMP/err" || fail "config error without its place: $(cat "$TMP/err")"
rm "$XDG_CONFIG_HOME/hearth/config.yaml"
echo "ok: config file (default model, names, /model, errors)"

echo "test_chat_once: all passed"
