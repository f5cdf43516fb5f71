#!/usr/bin/env bash
# test_arch_backends.sh - the newer architectures on a device backend.
#
# olmo2 and phi3 (fused weights as views, LongRoPE factors) need only the ops
# every backend has: on Vulkan (lavapipe) their layers run on the device and
# greedy `hearth run` prints the same text as on the CPU. gemma2, gemma3 and
# granite need CPU-only ops (gelu_mul, scale_cap, attention_ext): with --backend vulkan every
# layer is placed on the host CPU backend, the plan says why (hearth run's
# stderr and hearth info), and the text equals the CPU run's. The models are
# the small -test shapes of `hearth mkmodel` (F32, seed 42).
# Skips (exit 77) when the build has no Vulkan backend or there is no device.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/vulkan_common.sh"

prompt="hello world, a prompt longer than the sliding windows of the test shapes"
run() { # model backend -> text on stdout, stderr in $T/err
    "$H" run -m "$1" -p "$prompt" -n 12 --temp 0 --backend "$2" --no-prefix-cache --cache-db none 2>"$T/err"
}
for s in olmo2-test gemma2-test gemma3-test phi3-test granite-test; do
    "$H" mkmodel --shape "$s" --type f32 --seed 42 -o "$T/$s.gguf" >/dev/null 2>&1 || { bad "mkmodel $s"; continue; }
    cpu=$(run "$T/$s.gguf" cpu) || bad "$s on cpu: $(tail -1 "$T/err")"
    vk=$(run "$T/$s.gguf" vulkan) || bad "$s on vulkan: $(tail -1 "$T/err")"
    [ -n "$cpu" ] && [ "$cpu" = "$vk" ] || bad "$s: vulkan text '$vk' differs from cpu '$cpu'"
    if [ "$s" = olmo2-test ] || [ "$s" = phi3-test ]; then
        grep -q "layers 0-1 on vulkan" "$T/err" || bad "$s: layers not on the device: $(grep layers "$T/err")"
    else
        grep -q "runs on the cpu: this device backend lacks" "$T/err" ||
            bad "$s: no placement note: $(grep layers "$T/err")"
        "$H" info "$T/$s.gguf" --backend vulkan 2>&1 | grep -q "0 of [0-9]* layers" ||
            bad "$s: hearth info does not show 0 device layers"
    fi
    echo "$s: cpu and vulkan print '$cpu'"
done
[ "$fails" -eq 0 ] && echo "test_arch_backends: ok" || echo "test_arch_backends: $fails failed"
exit $((fails > 0))
