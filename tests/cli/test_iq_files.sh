#!/usr/bin/env bash
# test_iq_files.sh - the grid IQ types (IQ2_*, IQ3_*, IQ1_*) through the hearth binary.
#
# On each file of tests/data/iq (made by llama-quantize --imatrix; README.md there):
# `hearth info` names the type (--json too), `hearth run --temp 0` on the CPU
# generates, and on a Vulkan device (lavapipe in CI) the same command gives the
# same text with every layer on the CPU and the plan line saying that the device
# has no kernel for the type (never a wrong answer). `hearth quantize` refuses
# IQ2_XS without --imatrix (a refusal that says how to make one); `hearth mkmodel
# --type IQ1_M` writes a model that runs. The Vulkan part is skipped (said so) without a device.
# Env (ctest): HEARTH_BIN, HEARTH_SOURCE.
set -uo pipefail
H=${HEARTH_BIN:-hearth}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
D="$SRC/tests/data/iq"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
fails=0
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

vulkan=1
if ! "$H" run -m "$D/tiny-iq2_xxs.gguf" -p "In" -n 1 --temp 0 --backend vulkan --cache-db none \
    >"$T/probe.out" 2>"$T/probe.err"; then
    if grep -qiE "no Vulkan|no usable Vulkan|no such device|Vulkan driver" "$T/probe.err"; then
        echo "no Vulkan device: the Vulkan checks are skipped ($(tail -1 "$T/probe.err"))"
        vulkan=0
    else
        bad "vulkan probe run failed: $(cat "$T/probe.err")"
    fi
fi

prompt="In the beginning God created"
# file (llama-quantize's file type) : the tensor type it is mostly made of
for ft in iq2_xxs:iq2_xxs iq2_xs:iq2_xs iq2_m:iq2_s iq3_xxs:iq3_xxs iq3_s:iq3_s iq1_s:iq1_s iq1_m:iq1_m; do
    f=${ft%%:*} t=${ft#*:}
    M="$D/tiny-$f.gguf"
    [ -f "$M" ] || { bad "missing $M"; continue; }
    "$H" info "$M" >"$T/$t.info" 2>&1 || bad "$t: info failed: $(tail -2 "$T/$t.info")"
    grep -q "tensor types:.* $t x" "$T/$t.info" || bad "$t: info does not list $t tensors: $(grep 'tensor types' "$T/$t.info")"
    "$H" info "$M" --json >"$T/$t.json" 2>/dev/null || bad "$t: info --json failed"
    grep -q "\"$t\"" "$T/$t.json" || bad "$t: info --json does not name $t"
    if ! "$H" run -m "$M" -p "$prompt" -n 12 --temp 0 --backend cpu --cache-db none >"$T/$t.cpu" 2>"$T/$t.cpu.err"; then
        bad "$t: cpu run failed: $(tail -2 "$T/$t.cpu.err")"
        continue
    fi
    [ -s "$T/$t.cpu" ] || bad "$t: cpu run printed nothing"
    [ $vulkan = 1 ] || continue
    if ! "$H" run -m "$M" -p "$prompt" -n 12 --temp 0 --backend vulkan --cache-db none >"$T/$t.vk" 2>"$T/$t.vk.err"; then
        bad "$t: vulkan run failed: $(tail -2 "$T/$t.vk.err")"
        continue
    fi
    cmp -s "$T/$t.cpu" "$T/$t.vk" || bad "$t: vulkan text '$(cat "$T/$t.vk")' differs from the cpu's '$(cat "$T/$t.cpu")'"
    plan=$(grep "^hearth: layers" "$T/$t.vk.err")
    case $plan in
    *"layers 0-1 on cpu"*"has no iq"[123]"_"*" kernel: those tensors run on the cpu"*) ;;
    *) bad "$t: vulkan plan line '$plan' does not say the $t layers run on the cpu" ;;
    esac
done

# IQ2_XS needs an importance matrix (as in llama-quantize): without --imatrix a clear
# refusal that says how to make one, and no output file
"$H" quantize --allow-requantize "$D/tiny-iq2_xs.gguf" "$T/out.gguf" iq2_xs >"$T/q.out" 2>"$T/q.err"
rc=$?
[ $rc = 1 ] || bad "quantize to iq2_xs: exit $rc, want 1"
grep -q "requires an importance matrix.*hearth imatrix" "$T/q.err" || bad "quantize to iq2_xs: message '$(cat "$T/q.err")'"
[ -e "$T/out.gguf" ] || [ -e "$T/out.gguf.part" ] && bad "quantize to iq2_xs left an output file"
# mkmodel writes IQ1_M (llama.cpp's unweighted IQ1_M search) and the model runs
if "$H" mkmodel --shape tiny --type IQ1_M -o "$T/mk.gguf" >"$T/mk.out" 2>"$T/mk.err"; then
    "$H" info "$T/mk.gguf" 2>&1 | grep -q "iq1_m" || bad "mkmodel --type IQ1_M: hearth info names no iq1_m tensor"
    ft=$("$H" info --json "$T/mk.gguf" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin).get('file_type'))")
    [ "$ft" = IQ1_M ] || bad "mkmodel --type IQ1_M: general.file_type reads '$ft', want IQ1_M"
    "$H" run -m "$T/mk.gguf" -p "In" -n 2 --temp 0 --cache-db none >"$T/mk.run" 2>"$T/mk.rerr" ||
        bad "run on mkmodel's IQ1_M model: $(cat "$T/mk.rerr")"
else
    bad "mkmodel --type IQ1_M: $(cat "$T/mk.err")"
fi

[ $fails = 0 ] && echo "test_iq_files: ok (vulkan checks: $([ $vulkan = 1 ] && echo run || echo skipped))"
exit $((fails > 0))
