#!/usr/bin/env bash
# test_spec_bench.sh - speculation figures and knobs from the command line:
#  - `hearth bench --spec ngram` / `--draft MODEL` (pp/tg mode) adds tg through
#    the engine with speculation off and on: table rows and --json fields
#    (speeds, speedup, drafts accepted, tokens per target pass, same tokens,
#    which must be true), with drafts really accepted; -n 1 with --spec is
#    refused;
#  - `--spec-max-batch N` / config `speculative.max_batch`: shown by
#    --print-config with its source, bad values refused by name, and it
#    decides: bench --concurrency 2 with --spec-max-batch 1 turns speculation
#    off for the steps (spec_off_load_steps > 0, nothing drafted) and with 2
#    it drafts;
#  - a sampled request (temperature 1) speculates: `run --spec ngram --temp 1
#    --json` reports drafts;
#  - `--draft-gpu-layers N` / `speculative.draft_gpu_layers`: --print-config
#    (default: as --gpu-layers), bad values refused; with a Vulkan device, the
#    target on Vulkan and the draft's layers on the CPU (--draft-gpu-layers 0)
#    give the same greedy tokens as without speculation, drafts accepted
#    (skipped without a device).
# Owner: speculative decoding.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
TMP=$(mktemp -d /tmp/hearth-spec-bench.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
field() { python3 -c "import json,sys; d=json.loads(open('$1').read().strip().splitlines()[-1]); print($2)" 2>/dev/null; }
M8=$SHARED/models/hearth-kjv-llama-q8_0.gguf
D8=$SHARED/models/hearth-kjv-draft-q8_0.gguf

# ---- bench pp/tg with speculation: table and JSON
"$BIN" bench -m "$M8" -p 64 -n 48 -r 2 -t 1 --bw-mib 0 --spec ngram --spec-k step >"$TMP/t.md" 2>"$TMP/t.err"
check 'grep -q "tg48 engine, spec off" "$TMP/t.md" && grep -q "tg48 engine, ngram .*tokens/pass, same tokens" "$TMP/t.md"' \
  "bench --spec ngram: table rows ($(cat "$TMP/t.md" "$TMP/t.err" | tail -3))"
"$BIN" bench -m "$M8" -p 64 -n 48 -r 2 -t 1 --bw-mib 0 --spec ngram --spec-k step --json >"$TMP/n.json" 2>/dev/null
check '[ "$(field "$TMP/n.json" "d[\"speculative\"][\"mode\"]")" = ngram ]' "bench --spec ngram --json: mode"
check '[ "$(field "$TMP/n.json" "d[\"speculative\"][\"same_tokens\"]")" = True ]' "bench --spec ngram: same tokens"
check 'field "$TMP/n.json" "1 if d[\"speculative\"][\"draft_accepted_n\"] > 0 and d[\"speculative\"][\"tokens_per_target_pass\"] > 1 and d[\"speculative\"][\"tg_spec_tok_s\"][\"mean\"] > 0 and d[\"speculative\"][\"tg_off_tok_s\"][\"mean\"] > 0 and d[\"speculative\"][\"speedup\"] > 0 else exit(1)" >/dev/null' \
  "bench --spec ngram --json: drafts accepted, figures ($(cat "$TMP/n.json"))"
"$BIN" bench -m "$M8" -p 32 -n 48 -r 2 -t 1 --bw-mib 0 --draft "$D8" --spec-k step --json >"$TMP/d.json" 2>/dev/null
check '[ "$(field "$TMP/d.json" "d[\"speculative\"][\"mode\"]")" = draft ] && [ "$(field "$TMP/d.json" "d[\"speculative\"][\"same_tokens\"]")" = True ]' \
  "bench --draft --json: mode draft, same tokens ($(cat "$TMP/d.json"))"
check 'field "$TMP/d.json" "1 if d[\"speculative\"][\"draft_accepted_n\"] > 0 and 0 < d[\"speculative\"][\"acceptance\"] <= 1 else exit(1)" >/dev/null' \
  "bench --draft: drafts accepted"
"$BIN" bench -m "$M8" -p 32 -n 1 --bw-mib 0 --spec ngram >/dev/null 2>"$TMP/e1"
rc=$?
check '[ $rc -eq 2 ] && grep -q -- "-n 2 or more" "$TMP/e1"' "bench --spec -n 1 is refused ($(cat "$TMP/e1"))"

# ---- --spec-max-batch / speculative.max_batch
"$BIN" run --spec-max-batch 3 --print-config >"$TMP/pc.json" 2>/dev/null
check '[ "$(field "$TMP/pc.json" "d[\"spec_max_batch\"]")" = 3 ] && [ "$(field "$TMP/pc.json" "d[\"source\"][\"speculative.max_batch\"]")" = flag ]' \
  "--spec-max-batch in --print-config ($(cat "$TMP/pc.json"))"
"$BIN" run --print-config >"$TMP/pd.json" 2>/dev/null
check '[ "$(field "$TMP/pd.json" "d[\"spec_max_batch\"]")" = 4 ]' "default spec_max_batch is 4"
mkdir -p "$XDG_CONFIG_HOME/hearth"
printf 'speculative:\n  max_batch: 2\n' >"$XDG_CONFIG_HOME/hearth/config.yaml"
"$BIN" run --print-config >"$TMP/pf.json" 2>/dev/null
check '[ "$(field "$TMP/pf.json" "d[\"spec_max_batch\"]")" = 2 ] && [ "$(field "$TMP/pf.json" "d[\"source\"][\"speculative.max_batch\"]")" = config ]' \
  "config speculative.max_batch ($(cat "$TMP/pf.json"))"
printf 'speculative:\n  max_batch: 99\n' >"$XDG_CONFIG_HOME/hearth/config.yaml"
"$BIN" run --print-config >/dev/null 2>"$TMP/e2"
rc=$?
check '[ $rc -ne 0 ] && grep -q "max_batch" "$TMP/e2"' "config max_batch 99 is refused by name ($(cat "$TMP/e2"))"
rm -f "$XDG_CONFIG_HOME/hearth/config.yaml"
"$BIN" run --spec-max-batch 0 --print-config >/dev/null 2>"$TMP/e3"
rc=$?
check '[ $rc -ne 0 ] && grep -q -- "--spec-max-batch" "$TMP/e3"' "--spec-max-batch 0 is refused by name ($(cat "$TMP/e3"))"
check '"$BIN" run --help 2>&1 | grep -q -- "--spec-max-batch N"' "run --help lists --spec-max-batch"
for mb in 1 2; do
  "$BIN" bench --concurrency 2 --requests 2 --output-tokens 32 --prompt-tokens 16 -m "$M8" -t 1 --json \
    --draft "$D8" --spec-k step --spec-max-batch $mb >"$TMP/c$mb.json" 2>/dev/null
done
check 'field "$TMP/c1.json" "1 if d[\"spec_off_load_steps\"] > 0 else exit(1)" >/dev/null' \
  "--spec-max-batch 1 with 2 streams: speculation off while both run ($(cat "$TMP/c1.json" | head -c 400))"
check 'field "$TMP/c2.json" "1 if d[\"spec_off_load_steps\"] == 0 and d[\"draft_n\"] > 0 else exit(1)" >/dev/null' \
  "--spec-max-batch 2 with 2 streams: speculation on"

# ---- a sampled request speculates
Q="Repeat this passage exactly. In the beginning God created the heaven and the earth. Again: In the beginning God created the heaven and the earth."
"$BIN" run -m "$M8" -p "$Q" -n 64 --temp 1 --seed 7 --ignore-eos --json --spec ngram --spec-k step >"$TMP/s.json" 2>/dev/null
check 'field "$TMP/s.json" "1 if d[\"timings\"][\"draft_n\"] > 0 and d[\"timings\"][\"gen_n\"] == 64 else exit(1)" >/dev/null' \
  "run --temp 1 --spec ngram drafts ($(head -c 300 "$TMP/s.json"))"

# ---- --draft-gpu-layers / speculative.draft_gpu_layers
"$BIN" run -ngl 3 --print-config >"$TMP/g1.json" 2>/dev/null
check '[ "$(field "$TMP/g1.json" "d[\"draft_gpu_layers\"]")" = 3 ]' "draft_gpu_layers defaults to --gpu-layers ($(cat "$TMP/g1.json"))"
"$BIN" run -ngl 3 --draft-gpu-layers 0 --print-config >"$TMP/g2.json" 2>/dev/null
check '[ "$(field "$TMP/g2.json" "d[\"draft_gpu_layers\"]")" = 0 ] && [ "$(field "$TMP/g2.json" "d[\"source\"][\"speculative.draft_gpu_layers\"]")" = flag ]' \
  "--draft-gpu-layers 0 in --print-config"
printf 'speculative:\n  draft_gpu_layers: 1\n' >"$XDG_CONFIG_HOME/hearth/config.yaml"
"$BIN" run --print-config >"$TMP/g3.json" 2>/dev/null
check '[ "$(field "$TMP/g3.json" "d[\"draft_gpu_layers\"]")" = 1 ]' "config speculative.draft_gpu_layers ($(cat "$TMP/g3.json"))"
rm -f "$XDG_CONFIG_HOME/hearth/config.yaml"
"$BIN" run --draft-gpu-layers -5 --print-config >/dev/null 2>"$TMP/e4"
rc=$?
check '[ $rc -ne 0 ] && grep -q -- "--draft-gpu-layers" "$TMP/e4"' "--draft-gpu-layers -5 is refused by name ($(cat "$TMP/e4"))"
P="In the beginning God created the heaven and the earth."
if "$BIN" run -m "$M8" -p "In" -n 1 --temp 0 --backend vulkan >/dev/null 2>"$TMP/vk.err"; then
  "$BIN" run --backend vulkan -m "$M8" -p "$P" -n 32 --temp 0 --ignore-eos --json --spec off >"$TMP/v0.json" 2>/dev/null
  "$BIN" run --backend vulkan -m "$M8" -p "$P" -n 32 --temp 0 --ignore-eos --json --draft "$D8" --spec-k step \
    --draft-gpu-layers 0 >"$TMP/v1.json" 2>/dev/null
  check '[ -s "$TMP/v0.json" ] && [ "$(field "$TMP/v0.json" "d[\"tokens\"]")" = "$(field "$TMP/v1.json" "d[\"tokens\"]")" ]' \
    "vulkan target, draft on the CPU: same tokens"
  check 'field "$TMP/v1.json" "1 if d[\"timings\"][\"draft_accepted_n\"] > 0 else exit(1)" >/dev/null' \
    "vulkan target, draft on the CPU: drafts accepted ($(head -c 300 "$TMP/v1.json"))"
else
  echo "test_spec_bench: no Vulkan device, the --draft-gpu-layers 0 run is skipped ($(tail -1 "$TMP/vk.err"))"
fi

echo "test_spec_bench: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
