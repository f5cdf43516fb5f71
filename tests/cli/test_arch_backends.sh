#!/usr/bin/env bash
# test_arch_backends.sh - the newer architectures on a device backend.
#
# On Vulkan (lavapipe) the layers of every one of these run on the device
# (olmo2 and phi3 with the common ops, gemma2/gemma3/granite with gelu_mul,
# scale_cap and attention_ext) and greedy `hearth run` prints the same text as
# on the CPU. A device backend without those ops places the Gemma and
# Granite layers on its host CPU: that is checked by test_arch_parity's
# placement case, not here (CUDA has them: tests/gpu/test_cuda_ops). The models are the small
# -test shapes of `hearth mkmodel` (F32, seed 42).
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
    grep -qE "layers 0-[0-9]+ on vulkan" "$T/err" || bad "$s: layers not on the device: $(grep layers "$T/err")"
    grep -q "runs on the cpu" "$T/err" && bad "$s: placed on the cpu: $(grep layers "$T/err")"
    echo "$s: cpu and vulkan print '$cpu'"
done
[ "$fails" -eq 0 ] && echo "test_arch_backends: ok" || echo "test_arch_backends: $fails failed"
exit $((fails > 0))
