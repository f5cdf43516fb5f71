#!/usr/bin/env bash
# test_vulkan_embed.sh - encoder models (bert, nomic-bert) on the Vulkan backend.
#
# Regenerates the small encoder shapes with `hearth mkmodel` (f32, seed 42;
# q8_0 and q4_k too) and runs `hearth embed --json --backend vulkan` on the
# inputs of tests/data/embed: every vector must match llama.cpp's stored one
# (cosine >= 0.9999, max abs error <= 1e-3, rank scores <= 1e-4, as
# test_embed.sh asks of the CPU) and the CPU's vectors of the same run
# (embed_compare.py with the CPU output as the reference), all inputs packed
# into one pass (bidirectional attention within each input, none across) and
# each input alone (--alone) agreeing within 1e-6. Then the same with the
# shared-memory reduction shaders (HEARTH_VK_SUBGROUPS=0) on one case, the
# "backend" field of --json, and -b small passes (several passes, same
# vectors). Skips (exit 77) when the build has no Vulkan backend or there is
# no device (vulkan_common.sh's probe).
# Env (ctest): HEARTH_BIN, HEARTH_SHARED. Owner: the Vulkan backend (backends/vulkan).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/vulkan_common.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=$HERE/../data/embed
command -v python3 >/dev/null 2>&1 ||
    { echo "FAIL: python3 is needed to compare vectors (packaging/install-deps.sh installs it)" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); }

for st in bert-test:f32 nomic-test:f32 bert-rerank-test:f32 bert-test:q8_0 nomic-test:q4_k; do
    s=${st%%:*} ty=${st##*:}
    "$H" mkmodel --shape "$s" --type "$ty" --seed 42 -o "$T/$s-$ty.gguf" >/dev/null 2>"$T/mk.err" ||
        { bad "mkmodel $st: $(tail -2 "$T/mk.err")"; exit 1; }
done

# case model [flags]: vulkan (all at once, then --alone) against llama.cpp and the CPU
check_case() {
    local c=$1 m=$T/$2.gguf
    shift 2
    local -a inputs
    mapfile -t inputs < <(python3 -c "import json,sys; [print(x) for x in json.load(open(sys.argv[1]))['inputs']]" "$DATA/$c.json")
    for run in "cpu" "vulkan" "vulkan --alone"; do
        local tag=${run// /}
        if ! "$H" embed -m "$m" --json --backend $run "$@" "${inputs[@]}" >"$T/$c.$tag.json" 2>"$T/err"; then
            bad "$c --backend $run failed: $(cat "$T/err")"
            return
        fi
    done
    python3 - "$T/$c.vulkan.json" <<'PY' && ok || bad "$c: the run did not report a vulkan backend, or did not share one pass"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["backend"].startswith("vulkan:"), r["backend"]
assert r["passes"] == 1, r["passes"]
PY
    python3 "$HERE/embed_compare.py" "$DATA/$c.json" "$T/$c.vulkan.json" --exact "$T/$c.vulkan--alone.json" \
        >"$T/cmp" && ok || bad "$c vulkan vs llama.cpp: $(grep FAIL "$T/cmp" | head -3)"
    python3 "$HERE/embed_compare.py" "$T/$c.cpu.json" "$T/$c.vulkan.json" >"$T/cmp" && ok ||
        bad "$c vulkan vs cpu: $(grep FAIL "$T/cmp" | head -3)"
    echo "ok: $c on vulkan: $(grep -o 'max abs error [0-9.e+-]*' "$T/cmp" | sort -k4 -g | tail -1) (vs the cpu)"
}
check_case bert-test-cls bert-test-f32
check_case bert-test-mean bert-test-f32 --pooling mean
check_case nomic-test-mean nomic-test-f32
check_case nomic-test-last nomic-test-f32 --pooling last
check_case bert-rerank-test bert-rerank-test-f32
check_case bert-test-q8_0 bert-test-q8_0
check_case nomic-test-q4_k nomic-test-q4_k
HEARTH_VK_SUBGROUPS=0 check_case nomic-test-mean nomic-test-f32

# passes smaller than the inputs: several passes, the same vectors
B=$T/bert-test-f32.gguf
texts=("hello world" "a second text that is somewhat longer than the first one" "third")
"$H" embed -m "$B" --json --backend vulkan "${texts[@]}" >"$T/one.json" 2>"$T/err" || bad "embed: $(cat "$T/err")"
"$H" embed -m "$B" --json --backend vulkan -b 16 "${texts[@]}" >"$T/small.json" 2>"$T/err" ||
    bad "embed -b 16: $(cat "$T/err")"
python3 - "$T/one.json" "$T/small.json" <<'PY' && ok || bad "-b 16 on vulkan: not several passes or different vectors"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["passes"] == 1 and b["passes"] > 1, (a["passes"], b["passes"])
d = max(abs(x - y) for u, v in zip(a["embeddings"], b["embeddings"]) for x, y in zip(u, v))
assert d <= 1e-6, d
PY

if [ "$fails" -ne 0 ]; then
    echo "test_vulkan_embed: $pass passed, $fails failed" >&2
    exit 1
fi
echo "test_vulkan_embed: $pass passed"
