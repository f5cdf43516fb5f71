#!/usr/bin/env bash
# test_moe.sh - mixture-of-experts models end to end (qwen3moe-tiny Q8_0,
# mixtral-tiny F32 from `hearth mkmodel`):
#   - `hearth info --json` gives the experts and the active counts: total
#     parameters minus the unused experts' (layers x (experts - used) x
#     3 x dim x expert width), the same for the bytes; the text report says
#     "active per token";
#   - `hearth bench --json` counts the router and the used experts' bytes
#     in bytes_per_token (the roofline), not all the experts';
#   - `hearth run` greedy text on the CPU; on Vulkan (lavapipe), which has no
#     moe ops yet, the MoE layers run on the device with routing and the
#     weighted sum on the host (forward_moe.c's host-assisted path), the plan
#     says so, and the text is the same as on the CPU (skipped without a
#     device); there --n-cpu-moe 1 and --cpu-moe give the same text, the plan
#     and `hearth info` count the layers whose experts stay on the CPU and the
#     device weights drop by exactly their bytes;
#   - a negative --n-cpu-moe is refused naming the flag; on the CPU backend
#     --cpu-moe changes nothing.
# Env (ctest): HEARTH_BIN.
set -uo pipefail
BIN=${HEARTH_BIN:-hearth}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export XDG_CACHE_HOME="$TMP/cache"
. "$(dirname "$0")/lib.sh"

# shape type layers experts used dim width
for spec in "qwen3moe-tiny q8_0 4 8 2 512 256" "mixtral-tiny f32 2 8 2 256 384"; do
    set -- $spec
    s=$1 ty=$2 L=$3 NE=$4 K=$5 E=$6 F=$7
    f="$TMP/$s.gguf"
    "$BIN" mkmodel --shape "$s" --type "$ty" --seed 42 -o "$f" >/dev/null 2>&1 || { bad "mkmodel $s"; continue; }
    "$BIN" info "$f" --json >"$TMP/info.json" || bad "$s: info --json"
    unused=$((L * (NE - K) * 3 * E * F))
    bpp=$([ "$ty" = q8_0 ] && echo "34/32" || echo "4")
    check "[ \"$(jq_ "$TMP/info.json" "d['n_params'] - d['n_params_active']")\" = $unused ]" \
        "$s: unused parameters $(jq_ "$TMP/info.json" "d['n_params'] - d['n_params_active']"), want $unused"
    check "[ \"$(jq_ "$TMP/info.json" "d['memory']['weights_bytes'] - d['memory']['active_weights_bytes']")\" = $((unused * $bpp)) ]" \
        "$s: unused bytes, want $((unused * $bpp))"
    check "[ \"$(jq_ "$TMP/info.json" "(d['hparams']['n_expert'], d['hparams']['n_expert_used'], d['hparams']['n_ff_exp'])")\" = \"($NE, $K, $F)\" ]" \
        "$s: hparams $(jq_ "$TMP/info.json" "d['hparams']")"
    "$BIN" info "$f" | grep -q "active per token" && ok || bad "$s: info text has no active count"
    # bench: bytes_per_token holds the active experts, not all of them
    "$BIN" bench -m "$f" -p 8 -n 4 -r 1 -t 1 --bw-mib 0 --json >"$TMP/bench.json" 2>"$TMP/bench.err" || bad "$s: bench: $(tail -1 "$TMP/bench.err")"
    act=$(jq_ "$TMP/info.json" "d['memory']['active_weights_bytes']")
    tot=$(jq_ "$TMP/info.json" "d['memory']['weights_bytes']")
    bpt=$(jq_ "$TMP/bench.json" "int(d['bytes_per_token'])")
    check "[ -n \"$bpt\" ] && [ \"$bpt\" -le \"$act\" ] && [ \"$bpt\" -gt $((act / 2)) ]" \
        "$s: bench bytes_per_token $bpt, active weights $act, all weights $tot"
    echo "$s $ty: $(jq_ "$TMP/info.json" "d['n_params_active']") of $(jq_ "$TMP/info.json" "d['n_params']") parameters active; bench bytes/token $bpt (active weights $act of $tot)"
    # run: CPU, then Vulkan (host-assisted MoE layers), on F32 weights: Vulkan
    # does not quantize the activations as the CPU does for Q8_0, and a
    # routing near-tie would then part the texts without a bug
    if [ "$ty" != f32 ]; then
        f="$TMP/$s-f32.gguf"
        "$BIN" mkmodel --shape "$s" --type f32 --seed 42 -o "$f" >/dev/null 2>&1 || bad "mkmodel $s f32"
    fi
    cpu=$("$BIN" run -m "$f" -p "hello world" -n 12 --temp 0 --backend cpu --cache-db none 2>"$TMP/cpu.err") || bad "$s cpu: $(tail -1 "$TMP/cpu.err")"
    check "[ -n \"$cpu\" ]" "$s: no text on the cpu"
    if vk=$("$BIN" run -m "$f" -p "hello world" -n 12 --temp 0 --backend vulkan --cache-db none 2>"$TMP/vk.err"); then
        check "[ \"$vk\" = \"$cpu\" ]" "$s: vulkan text '$vk' differs from cpu '$cpu'"
        grep -qE "layers 0-[0-9]+ on vulkan" "$TMP/vk.err" && ok || bad "$s: layers not on the device"
        grep -q "mixture-of-experts layers: routing and the weighted sum on the host" "$TMP/vk.err" && ok || bad "$s: plan: $(grep layers "$TMP/vk.err")"
        echo "$s on vulkan: $(grep -o 'layers .*' "$TMP/vk.err" | head -1)"
        # --n-cpu-moe 1 and --cpu-moe: the same text; the plan and info say how many layers'
        # experts stay on the CPU and the device weights drop by exactly those bytes
        for n in "--n-cpu-moe 1" "--cpu-moe"; do
            t=$("$BIN" run -m "$f" -p "hello world" -n 12 --temp 0 --backend vulkan --cache-db none $n 2>"$TMP/vk.err") || bad "$s vulkan $n: $(tail -1 "$TMP/vk.err")"
            check "[ \"$t\" = \"$cpu\" ]" "$s: vulkan $n text '$t' differs from cpu '$cpu'"
            want=$([ "$n" = --cpu-moe ] && echo "$L" || echo 1)
            grep -q "experts of $want layer" "$TMP/vk.err" && ok || bad "$s $n: plan: $(grep layers "$TMP/vk.err")"
        done
        "$BIN" info "$f" --backend vulkan --json >"$TMP/i0.json" && "$BIN" info "$f" --backend vulkan --n-cpu-moe 1 --json >"$TMP/i1.json" || bad "$s: info --n-cpu-moe"
        per_layer=$((NE * 3 * E * F * 4)) # F32 experts of one layer
        check "[ \"$(jq_ "$TMP/i1.json" "(d['offload']['cpu_moe_layers'], d['offload']['cpu_moe_bytes'])")\" = \"(1, $per_layer)\" ]" \
            "$s: info cpu_moe $(jq_ "$TMP/i1.json" "d['offload']")"
        check "[ \"$(( $(jq_ "$TMP/i0.json" "d['offload']['device_weight_bytes']") - $(jq_ "$TMP/i1.json" "d['offload']['device_weight_bytes']") ))\" = $per_layer ]" \
            "$s: device weights did not drop by one layer's experts"
        "$BIN" info "$f" --backend vulkan --n-cpu-moe 1 | grep -q "experts on the cpu: 1 layer" && ok || bad "$s: info text has no experts-on-the-cpu line"
    elif grep -qiE "no Vulkan|no usable Vulkan|no such device|Vulkan driver|not built" "$TMP/vk.err"; then
        echo "$s: vulkan part skipped ($(tail -1 "$TMP/vk.err"))"
    else
        bad "$s vulkan: $(tail -1 "$TMP/vk.err")"
    fi
done
# a negative --n-cpu-moe is refused with a message naming the flag (any backend)
"$BIN" run -m "$f" -p hi -n 1 --n-cpu-moe -2 --cache-db none >/dev/null 2>"$TMP/neg.err" && bad "--n-cpu-moe -2 accepted" ||
    { grep -q -- "--n-cpu-moe -2: give a layer count" "$TMP/neg.err" && ok || bad "--n-cpu-moe -2: $(cat "$TMP/neg.err")"; }
"$BIN" info "$f" --n-cpu-moe -2 >/dev/null 2>"$TMP/neg.err" && bad "info --n-cpu-moe -2 accepted" ||
    { grep -q -- "--n-cpu-moe -2" "$TMP/neg.err" && ok || bad "info --n-cpu-moe -2: $(cat "$TMP/neg.err")"; }
# the CPU backend alone: the flag changes nothing
t=$("$BIN" run -m "$f" -p "hello world" -n 12 --temp 0 --backend cpu --cache-db none --cpu-moe 2>/dev/null)
check "[ \"$t\" = \"$cpu\" ]" "cpu --cpu-moe text '$t' differs from '$cpu'"
echo "test_moe: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
