# vulkan_common.sh - sourced by the Vulkan CLI tests (test_vulkan_*.sh): the
# shared setup and the device probe.
#
# Sets H (the hearth binary), SHARED, M (the models folder), T (a temp dir
# removed at exit, also XDG_CACHE_HOME's parent), fails and bad(). Exits 77
# (skipped) when the sample models are missing, or when `hearth run --backend
# vulkan` says this build has no Vulkan backend or there is no device; any
# other probe failure is counted as a failure.
H=${HEARTH_BIN:-hearth}
SHARED=${HEARTH_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
M="$SHARED/models"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
fails=0
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
[ -f "$M/hearth-kjv-llama-q8_0.gguf" ] || { echo "skipped: no sample models under $M"; exit 77; }

if ! "$H" run -m "$M/hearth-kjv-llama-q8_0.gguf" -p "In" -n 1 --temp 0 --backend vulkan --cache-db none \
    >"$T/probe.out" 2>"$T/probe.err"; then
    if grep -qiE "no Vulkan|no usable Vulkan|no such device|Vulkan driver" "$T/probe.err"; then
        echo "skipped: no Vulkan device ($(tail -1 "$T/probe.err"))"
        exit 77
    fi
    bad "vulkan probe run failed: $(cat "$T/probe.err")"
fi
