#!/usr/bin/env bash
# test_vulkan_offload.sh - partial offload across a real Vulkan device and the CPU.
#
# `hearth run --backend vulkan --gpu-layers N` puts the first N layers on the
# Vulkan device (lavapipe in CI) and the rest on the CPU: for every split of
# the sample model the greedy text equals the all-CPU and all-Vulkan runs, the
# plan line on stderr says where the layers went, and `hearth info --backend
# vulkan --gpu-layers N` prints the same plan. Then the engine on a split
# model: concurrent requests with a shared prefix get prefix-cache hits.
# Exit 77 (skipped) when the build has no Vulkan backend or no device.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/vulkan_common.sh"
M="$M/hearth-kjv-llama-q8_0.gguf"

n_layer=$("$H" info "$M" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hparams"]["n_layer"])')
[ "${n_layer:-0}" -ge 2 ] || bad "could not read n_layer from hearth info --json"

prompt="And God said, Let there be light"
"$H" run -m "$M" -p "$prompt" -n 24 --temp 0 --backend cpu --cache-db none >"$T/cpu.out" 2>"$T/cpu.err" ||
    bad "cpu run failed: $(tail -3 "$T/cpu.err")"
[ -s "$T/cpu.out" ] || bad "cpu run printed nothing"

for g in 0 1 $((n_layer - 1)) "$n_layer" -1; do
    if ! "$H" run -m "$M" -p "$prompt" -n 24 --temp 0 --backend vulkan --gpu-layers "$g" --cache-db none \
        >"$T/vk$g.out" 2>"$T/vk$g.err"; then
        bad "--gpu-layers $g failed: $(tail -3 "$T/vk$g.err")"
        continue
    fi
    cmp -s "$T/cpu.out" "$T/vk$g.out" || bad "--gpu-layers $g: text differs from the CPU: '$(cat "$T/vk$g.out")' vs '$(cat "$T/cpu.out")'"
    plan=$(grep "^hearth: layers" "$T/vk$g.err")
    case $g in
    0) want="layers 0-$((n_layer - 1)) on cpu; embeddings on cpu, output on cpu" ;;
    -1 | "$n_layer") want="layers 0-$((n_layer - 1)) on vulkan:0; embeddings on vulkan:0, output on vulkan:0" ;;
    1) want="layers 0 on vulkan:0, 1-$((n_layer - 1)) on cpu; embeddings on vulkan:0, output on cpu" ;;
    *) want="layers 0-$((g - 1)) on vulkan:0, $g on cpu; embeddings on vulkan:0, output on cpu" ;;
    esac
    [ "$plan" = "hearth: $want" ] || bad "--gpu-layers $g: plan line '$plan', expected 'hearth: $want'"
done

# the chat's status line says how much of the model is on the GPU
"$H" chat -m "$M" --backend vulkan --gpu-layers 1 --once "Who was Moses?" -n 4 --temp 0 --stats --cache-db none \
    >/dev/null 2>"$T/chat.err" || bad "chat on a split model failed: $(tail -2 "$T/chat.err")"
grep -q "vulkan:0 1/$n_layer layers" "$T/chat.err" || bad "chat status line lacks the split: $(tail -2 "$T/chat.err")"

# hearth info shows the plan without generating
"$H" info "$M" --backend vulkan --gpu-layers 1 >"$T/info.out" 2>"$T/info.err" || bad "info --backend failed: $(cat "$T/info.err")"
grep -q "layers 0 on vulkan:0, 1-$((n_layer - 1)) on cpu" "$T/info.out" || bad "info shows no plan: $(cat "$T/info.out")"
"$H" info "$M" --backend vulkan --gpu-layers 1 --json >"$T/info.json" 2>/dev/null || bad "info --json failed"
python3 - "$T/info.json" <<'PY' || bad "info --json has no offload plan"
import json, sys
j = json.load(open(sys.argv[1]))
p = j["offload"]
assert p["device_layers"] == 1 and p["backend"].startswith("vulkan"), p
assert p["device_weight_bytes"] > 0 and "on cpu" in p["plan"], p
PY

# hearth info --devices lists the lavapipe device as software, never auto's pick
"$H" info --devices --json >"$T/dev.json" 2>/dev/null || bad "info --devices failed"
python3 - "$T/dev.json" <<'PY' || bad "info --devices: no software vulkan:0 entry: $(cat "$T/dev.json")"
import json, sys
d = json.load(open(sys.argv[1]))["devices"]
vk = [x for x in d if x["select"].startswith("vulkan:")]
assert vk and all(x["usable"] for x in vk), d
sw = [x for x in vk if x["kind"] == "software"]
assert all(not x["auto"] for x in sw) and all("--backend vulkan:" in x["note"] for x in sw), d
assert sum(x["auto"] for x in d) == 1, d
PY

# the engine on a split model: 4 concurrent requests sharing a prefix
if "$H" bench -m "$M" --backend vulkan --gpu-layers 1 --concurrency 4 --requests 8 --prompt-tokens 48 \
    --shared-prefix 32 --output-tokens 8 -t 1 --json >"$T/load.json" 2>"$T/load.err"; then
    python3 - "$T/load.json" <<'PY' || bad "bench on a split model: no prefix-cache hits or errors: $(cat "$T/load.json")"
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert j["failed"] == 0, j
assert j["cached_prompt_tokens"] > 0, j
assert j["device_layers"] == 1 and "on cpu" in j["plan"], j
PY
else
    bad "bench --concurrency on a split model failed: $(tail -3 "$T/load.err")"
fi

[ $fails -eq 0 ] && echo "test_vulkan_offload: ok" || echo "test_vulkan_offload: $fails failure(s)"
exit $((fails > 0))
