#!/usr/bin/env bash
# test_spec_cost.sh - how speculation chooses K, from the command line:
#  - `--spec-k cost|step` / config `speculative.k` (engine option of run,
#    chat, serve, bench): shown by --print-config with its source (default
#    cost), listed by --help, a bad value (flag or config) refused by name
#    with the accepted ones;
#  - with the default (cost: K from measured pass times and acceptance, 0 when
#    a draft would not pay) `hearth run --spec ngram` and `--draft` give the
#    same greedy tokens as without speculation (quoting prompt, Q8_0 and F16);
#  - `hearth bench --spec ngram` / `--draft` report what the cost model
#    measured (--json: spec_k, pass_ms_fixed, pass_ms_per_position,
#    draft_pass_ms, cost_skips; a stderr line), tokens still the same;
#    `--spec-k step` is reported as step.
# Owner: speculative decoding.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
TMP=$(mktemp -d /tmp/hearth-spec-cost.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
field() { python3 -c "import json,sys; d=json.loads(open('$1').read().strip().splitlines()[-1]); print($2)" 2>/dev/null; }
M8=$SHARED/models/hearth-kjv-llama-q8_0.gguf
F16=$SHARED/models/hearth-kjv-llama-f16.gguf
D8=$SHARED/models/hearth-kjv-draft-q8_0.gguf

# ---- the option
"$BIN" run --print-config >"$TMP/p0.json" 2>/dev/null
check '[ "$(field "$TMP/p0.json" "d[\"spec_k\"], d[\"source\"][\"speculative.k\"]")" = "cost default" ]' \
  "--print-config: spec_k cost by default ($(head -c 300 "$TMP/p0.json"))"
"$BIN" run --spec-k step --print-config >"$TMP/p1.json" 2>/dev/null
check '[ "$(field "$TMP/p1.json" "d[\"spec_k\"], d[\"source\"][\"speculative.k\"]")" = "step flag" ]' \
  "--print-config: --spec-k step from the flag"
"$BIN" run -m "$M8" --spec-k fixed -p hi >"$TMP/o" 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q -- "--spec-k fixed: is not a way to choose K (cost, step)" "$TMP/o"' \
  "a bad --spec-k is refused by name ($(cat "$TMP/o"))"
mkdir -p "$XDG_CONFIG_HOME/hearth"
printf 'speculative:\n  k: step\n' >"$XDG_CONFIG_HOME/hearth/config.yaml"
"$BIN" run --print-config >"$TMP/p2.json" 2>/dev/null
check '[ "$(field "$TMP/p2.json" "d[\"spec_k\"], d[\"source\"][\"speculative.k\"]")" = "step config" ]' \
  "config speculative.k: step ($(head -c 300 "$TMP/p2.json"))"
printf 'speculative:\n  k: sometimes\n' >"$XDG_CONFIG_HOME/hearth/config.yaml"
"$BIN" run --print-config >/dev/null 2>"$TMP/e2"
rc=$?
check '[ $rc -ne 0 ] && grep -q "speculative.k: unknown way to choose K" "$TMP/e2"' \
  "a bad speculative.k is refused by name ($(cat "$TMP/e2"))"
rm -f "$XDG_CONFIG_HOME/hearth/config.yaml"
check '"$BIN" run --help 2>&1 | grep -q -- "--spec-k HOW"' "run --help lists --spec-k"
check '"$BIN" serve --help 2>&1 | grep -q -- "--spec-k HOW"' "serve --help lists --spec-k"

# ---- the default policy keeps greedy output identical
Q="Repeat this passage exactly. In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. Again: In the beginning God created the heaven and the earth."
for M in "$M8" "$F16"; do
  q=$(basename "$M" .gguf)
  "$BIN" run -m "$M" -t 1 --temp 0 -n 96 --ignore-eos --no-prefix-cache --spec off --json -p "$Q" >"$TMP/off.json" 2>/dev/null
  for arm in "--spec ngram" "--draft $D8"; do
    "$BIN" run -m "$M" -t 1 --temp 0 -n 96 --ignore-eos --no-prefix-cache $arm --json -p "$Q" >"$TMP/on.json" 2>"$TMP/on.err"
    a=$(field "$TMP/off.json" "d[\"tokens\"]")
    b=$(field "$TMP/on.json" "d[\"tokens\"]")
    check '[ -n "$a" ] && [ "$a" = "$b" ]' "$q ${arm%% *}: cost policy, tokens differ ($(head -c 200 "$TMP/on.err"))"
  done
done

# ---- bench reports the cost model
"$BIN" bench -m "$M8" -p 64 -n 48 -r 2 -t 1 --bw-mib 0 --spec ngram --json >"$TMP/n.json" 2>"$TMP/n.err"
check '[ "$(field "$TMP/n.json" "d[\"speculative\"][\"spec_k\"], d[\"speculative\"][\"same_tokens\"]")" = "cost True" ]' \
  "bench --spec ngram: cost policy, same tokens ($(head -c 600 "$TMP/n.json"))"
check 'field "$TMP/n.json" "1 if d[\"speculative\"][\"pass_ms_fixed\"] + d[\"speculative\"][\"pass_ms_per_position\"] > 0 and d[\"speculative\"][\"cost_skips\"] >= 0 else exit(1)" >/dev/null' \
  "bench --spec ngram --json: the fitted pass time"
"$BIN" bench -m "$M8" -p 32 -n 24 -r 1 -t 1 --bw-mib 0 --spec ngram >"$TMP/t.md" 2>"$TMP/t.err"
check 'grep -q "tg24 engine, ngram" "$TMP/t.md" && grep -q "K by cost: target pass" "$TMP/t.err"' \
  "bench table: the cost model's line on stderr ($(tail -2 "$TMP/t.err"))"
"$BIN" bench -m "$M8" -p 32 -n 48 -r 2 -t 1 --bw-mib 0 --draft "$D8" --json >"$TMP/d.json" 2>/dev/null
check 'field "$TMP/d.json" "1 if d[\"speculative\"][\"draft_pass_ms\"] > 0 and d[\"speculative\"][\"same_tokens\"] else exit(1)" >/dev/null' \
  "bench --draft: a draft pass timed, same tokens ($(head -c 600 "$TMP/d.json"))"
"$BIN" bench -m "$M8" -p 32 -n 24 -r 1 -t 1 --bw-mib 0 --spec ngram --spec-k step --json >"$TMP/s.json" 2>/dev/null
check '[ "$(field "$TMP/s.json" "d[\"speculative\"][\"spec_k\"]")" = step ]' "bench --spec-k step is reported"

echo "test_spec_cost: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
