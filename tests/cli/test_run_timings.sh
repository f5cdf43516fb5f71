#!/usr/bin/env bash
# test_run_timings.sh - `hearth run --json` breaks a fresh process's time to
# the first token down, and the parts add up: start_ms = load_ms + engine_ms
# + setup_ms + ttft_ms, ttft_ms = queue_ms + prompt_ms, cache_ms within
# queue_ms, the store reads within cache_ms. A second process reads the
# prefix from SQLite (cache_read_ms > 0, the same tokens as the first); a
# database whose rows were damaged in place still gives the same tokens.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
MODEL=$SHARED/models/hearth-kjv-llama-q8_0.gguf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
# py FILE EXPR: EXPR over d (the object) and t (its timings)
py() { python3 -c "import json; d=json.load(open('$1')); t=d['timings']; print($2)"; }

LONG=$(for i in $(seq 1 30); do printf 'And the LORD spake unto Moses, saying, '; done)
run() { $BIN run -m "$MODEL" -p "$1" -n 8 --temp 0 --json -t 2 "${@:2}"; }

run "In the" --cache-db none >"$TMP/short" 2>"$TMP/e"
check '[ $? -eq 0 ]' "short run"
for k in load_ms engine_ms setup_ms start_ms queue_ms cache_ms cache_read_ms cache_upload_ms prompt_ms ttft_ms; do
  check '[ "$(py "$TMP/short" "isinstance(t.get(\"'$k'\"), (int, float)) and t[\"'$k'\"] >= 0")" = True ]' "field $k"
done
sums='abs(t["start_ms"] - (t["load_ms"] + t["engine_ms"] + t["setup_ms"] + t["ttft_ms"])) < 0.01 and abs(t["ttft_ms"] - (t["queue_ms"] + t["prompt_ms"])) < 0.01 and t["cache_ms"] <= t["queue_ms"] + 0.01 and t["cache_read_ms"] + t["cache_upload_ms"] <= t["cache_ms"] + 0.01'
check '[ "$(py "$TMP/short" "$sums")" = True ]' "short: the parts add up"
check '[ "$(py "$TMP/short" "t[\"cached_n\"] == 0 and t[\"cache_read_ms\"] == 0")" = True ]' "short: nothing from a cache, no store"

run "$LONG" --cache-db "$TMP/c.sqlite" >"$TMP/p1" 2>/dev/null
run "$LONG" --cache-db "$TMP/c.sqlite" >"$TMP/p2" 2>/dev/null
check '[ "$(py "$TMP/p1" "t[\"cached_n\"] == 0")" = True ]' "first process: cold"
check '[ "$(py "$TMP/p2" "t[\"cached_n\"] >= t[\"prompt_n\"] - 16 and t[\"cache_read_ms\"] > 0 and t[\"cache_ms\"] >= t[\"cache_read_ms\"]")" = True ]' "second process: prefix read from SQLite"
check '[ "$(py "$TMP/p2" "$sums")" = True ]' "cached: the parts add up"
check '[ "$(py "$TMP/p1" "d[\"tokens\"]")" = "$(py "$TMP/p2" "d[\"tokens\"]")" ]' "cached: the cold run's tokens"

# damage every row's bytes in place: nothing is reused, the tokens stay right
python3 - "$TMP/c.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE pages SET data = randomblob(nbytes)")
db.commit()
PY
run "$LONG" --cache-db "$TMP/c.sqlite" >"$TMP/p3" 2>/dev/null
check '[ $? -eq 0 ] && [ "$(py "$TMP/p3" "t[\"cached_n\"]")" = 0 ]' "damaged rows: nothing reused"
check '[ "$(py "$TMP/p1" "d[\"tokens\"]")" = "$(py "$TMP/p3" "d[\"tokens\"]")" ]' "damaged rows: the cold run's tokens"

echo "test_run_timings: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
