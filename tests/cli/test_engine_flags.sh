#!/usr/bin/env bash
# test_engine_flags.sh - the shared engine options (app/cli/engine_opts.c) on
# every command that runs the engine: run, chat (--once), serve and bench
# (--concurrency). For each flag on each command: the flag is accepted and
# takes effect (seen in --print-config), a bad value exits non-zero with a
# message naming the flag, a config-file value (--config, and the XDG
# default file) is used when no flag is given and the flag overrides it.
# Then each command really runs with a set of engine flags: run and chat
# generate, serve answers /v1/models and /props over a Unix socket (context
# and slots as given), bench --concurrency completes.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
MODEL=$SHARED/models/hearth-kjv-llama-q8_0.gguf
TMP=$(mktemp -d /tmp/hearth-eflags.XXXXXX) # short: Unix socket paths are limited to 107 bytes
export XDG_CONFIG_HOME=$TMP/xdg-config     # no user config file leaks into the test
export XDG_CACHE_HOME=$TMP/xdg-cache
mkdir -p "$XDG_CONFIG_HOME/hearth"
srv_pid=""
cleanup() {
  [ -n "$srv_pid" ] && kill -TERM "$srv_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# field FILE KEY: the value of KEY in the JSON object in FILE (python repr)
field() { python3 -c "import json,sys; d=json.load(open('$1')); v=d$2; print(json.dumps(v))" 2>/dev/null; }

# the command line that prints the resolved options, per command
pc() {
  case $1 in
  run) "$BIN" run "${@:2}" --print-config ;;
  chat) "$BIN" chat --once hi "${@:2}" --print-config ;;
  serve) "$BIN" serve "${@:2}" --print-config ;;
  bench) "$BIN" bench --concurrency 2 "${@:2}" --print-config ;;
  esac
}

# FLAG | good value | JSON key | expected | bad value | config YAML | expected from the config
CASES=(
  "--backend|cpu|backend|\"cpu\"|tpu|backend: cpu|\"cpu\""
  "--threads|3|threads|3|abc|threads: 2|2"
  "--gpu-layers|0|gpu_layers|0|-5|gpu_layers: 5|5"
  "--ctx|96|context|96|8|context: 128|128"
  "--batch|16|batch|16|0|batch: 32|32"
  "--parallel|3|parallel|3|-1|parallel: 2|2"
  "--max-waiting|7|max_waiting|7|0|server: {max_waiting: 9}|9"
  "--kv-type|q8_0|kv_type|\"q8_0\"|q4_0|kv_type: f32|\"f32\""
  "--cache-db|$TMP/flag.sqlite|cache_db|\"$TMP/flag.sqlite\"||prefix_cache: {path: $TMP/cfg.sqlite}|\"$TMP/cfg.sqlite\""
  "--cache-max-size|1MiB|cache_max_size|1048576|lots|prefix_cache: {max_size: 2MiB}|2097152"
  "--n-cpu-moe|2|n_cpu_moe|2|-1|n_cpu_moe: 3|3"
)

for cmd in run chat serve bench; do
  for c in "${CASES[@]}"; do
    IFS='|' read -r flag good key want badv yaml want_cfg <<<"$c"
    # the flag takes effect
    if pc "$cmd" "$flag" "$good" >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['$key']")" = "$want" ] &&
      [ "$(field "$TMP/o" "['source']")" != "" ]; then ok; else bad "$cmd $flag $good: $(cat "$TMP/o" "$TMP/e")"; fi
    # a bad value: non-zero, a message that names the flag
    pc "$cmd" "$flag" "$badv" >"$TMP/o" 2>"$TMP/e"
    rc=$?
    if [ $rc -ne 0 ] && grep -q -- "hearth $cmd: $flag" "$TMP/e"; then ok; else bad "$cmd $flag '$badv' (rc $rc): $(cat "$TMP/e")"; fi
    # the config file: used without the flag (bench keeps the cache in memory), overridden by it
    printf '%s\n' "$yaml" >"$TMP/c.yaml"
    [ "$cmd" = bench ] && [ "$key" = cache_db ] && want_cfg=null
    if pc "$cmd" --config "$TMP/c.yaml" >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['$key']")" = "$want_cfg" ]; then ok; else
      bad "$cmd --config ($yaml): $(cat "$TMP/o" "$TMP/e")"; fi
    if pc "$cmd" --config "$TMP/c.yaml" "$flag" "$good" >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['$key']")" = "$want" ]; then ok; else
      bad "$cmd --config ($yaml) $flag $good: $(cat "$TMP/o" "$TMP/e")"; fi
  done
  # --cpu-moe / cpu_moe: true: every layer's experts on the CPU (n_cpu_moe = 2^30, "all")
  if pc "$cmd" --cpu-moe >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['n_cpu_moe']")" = 1073741824 ]; then ok; else bad "$cmd --cpu-moe: $(cat "$TMP/o" "$TMP/e")"; fi
  printf 'cpu_moe: true\n' >"$TMP/c.yaml"
  if pc "$cmd" --config "$TMP/c.yaml" >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['n_cpu_moe']")" = 1073741824 ]; then ok; else bad "$cmd cpu_moe: true: $(cat "$TMP/o" "$TMP/e")"; fi
  # --no-prefix-cache: a flag without a value
  if pc "$cmd" --no-prefix-cache >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['prefix_cache']")" = false ] &&
    [ "$(field "$TMP/o" "['cache_db']")" = null ]; then ok; else bad "$cmd --no-prefix-cache: $(cat "$TMP/o" "$TMP/e")"; fi
  pc "$cmd" --no-prefix-cache=yes >"$TMP/o" 2>"$TMP/e" && bad "$cmd --no-prefix-cache=yes accepted" || ok
  printf 'prefix_cache:\n  enabled: false\n' >"$XDG_CONFIG_HOME/hearth/config.yaml" # the default file
  if pc "$cmd" >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['prefix_cache']")" = false ] &&
    [ "$(field "$TMP/o" "['source']['prefix_cache.enabled']")" = '"config"' ]; then ok; else
    bad "$cmd: prefix_cache.enabled from the XDG config: $(cat "$TMP/o" "$TMP/e")"; fi
  rm -f "$XDG_CONFIG_HOME/hearth/config.yaml"
  # the defaults are the same everywhere (parallel: the command's own)
  if pc "$cmd" >"$TMP/o" 2>"$TMP/e" &&
    [ "$(python3 -c "import json; d=json.load(open('$TMP/o')); print(d['backend'],d['threads'],d['gpu_layers'],d['context'],d['batch'],d['max_waiting'],d['kv_type'],d['prefix_cache'],d['cache_max_size'])")" = "auto 0 -1 0 512 256 f16 True 0" ]; then ok; else
    bad "$cmd defaults: $(cat "$TMP/o" "$TMP/e")"; fi
  # --help lists the engine options with their config keys
  if "$BIN" "$cmd" --help >"$TMP/o" 2>&1 && grep -q -- "--kv-type TYPE .*\[kv_type\]" "$TMP/o" &&
    grep -q -- "--print-config" "$TMP/o"; then ok; else bad "$cmd --help: no engine options"; fi
done
# the --cache-db default: the XDG file, except bench (memory only, said in its --help)
for cmd in run chat serve; do
  pc "$cmd" >"$TMP/o" 2>/dev/null
  [ "$(field "$TMP/o" "['cache_db']")" = "\"$XDG_CACHE_HOME/hearth/prefix-cache.sqlite\"" ] && ok || bad "$cmd: cache_db default $(cat "$TMP/o")"
done
pc bench >"$TMP/o" 2>/dev/null
[ "$(field "$TMP/o" "['cache_db']")" = null ] && ok || bad "bench: cache_db default $(cat "$TMP/o")"
"$BIN" bench --concurrency 1 --help 2>&1 | grep -q "bench default: memory only" && ok || bad "bench --help: memory-only cache not said"
pc serve >"$TMP/o" 2>/dev/null
[ "$(field "$TMP/o" "['parallel']")" = 8 ] && ok || bad "serve: parallel default"
pc run >"$TMP/o" 2>/dev/null
[ "$(field "$TMP/o" "['parallel']")" = 1 ] && ok || bad "run: parallel default"
pc bench --concurrency 4 >"$TMP/o" 2>/dev/null
[ "$(field "$TMP/o" "['parallel']")" = 4 ] && ok || bad "bench: parallel = --concurrency"

# ---- the flags in real runs
ENG=(--backend cpu -t 1 -ngl 0 -c 96 -b 16 --kv-type q8_0 --max-waiting 4 --cache-max-size 1MiB --cache-db "$TMP/run.sqlite")
if "$BIN" run -m "$MODEL" -p "In the beginning" -n 4 --temp 0 --json "${ENG[@]}" >"$TMP/o" 2>"$TMP/e" &&
  [ "$(field "$TMP/o" "['timings']['gen_n']")" = 4 ] && [ -f "$TMP/run.sqlite" ]; then ok; else bad "run with engine flags: $(cat "$TMP/e")"; fi
"$BIN" run -m "$MODEL" -p "$(printf 'word %.0s' $(seq 1 120))" -n 2 -c 96 --cache-db none >"$TMP/o" 2>"$TMP/e"
[ $? -ne 0 ] && grep -q "the context holds 96" "$TMP/e" && ok || bad "run: -c 96 not in effect: $(cat "$TMP/e")"
if "$BIN" chat -m "$MODEL" --once "Hello" -n 4 --temp 0 "${ENG[@]}" --no-prefix-cache >"$TMP/o" 2>"$TMP/e" &&
  [ -s "$TMP/o" ]; then ok; else bad "chat --once with engine flags: $(cat "$TMP/e")"; fi
if "$BIN" bench --concurrency 2 -m "$MODEL" --requests 2 --prompt-tokens 8 --output-tokens 4 --json "${ENG[@]}" \
  >"$TMP/o" 2>"$TMP/e" && [ "$(field "$TMP/o" "['failed']")" = 0 ]; then ok; else bad "bench with engine flags: $(cat "$TMP/e")"; fi
S=$TMP/s.sock
"$BIN" serve -m "$MODEL" --socket "$S" "${ENG[@]}" -np 3 2>"$TMP/serve.err" &
srv_pid=$!
up=0
for i in $(seq 1 100); do
  if [ -S "$S" ] && curl -s -o /dev/null --max-time 2 --unix-socket "$S" http://x/health; then up=1; break; fi
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.1
done
if [ $up = 1 ]; then
  curl -s --max-time 5 --unix-socket "$S" http://x/v1/models >"$TMP/models.json"
  curl -s --max-time 5 --unix-socket "$S" http://x/props >"$TMP/props.json"
  [ "$(field "$TMP/models.json" "['data'][0]['meta']['n_ctx']")" = 96 ] && ok || bad "serve -c 96: $(cat "$TMP/models.json")"
  [ "$(field "$TMP/props.json" "['total_slots']")" = 3 ] && ok || bad "serve -np 3: $(cat "$TMP/props.json")"
  kill -TERM "$srv_pid"
  for i in $(seq 1 50); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$srv_pid" && ok || bad "serve did not exit 0 on SIGTERM"
  srv_pid=""
else
  bad "serve with engine flags did not come up: $(cat "$TMP/serve.err")"
fi

echo "test_engine_flags: $pass passed, $fail failed"
[ $fail -eq 0 ]
