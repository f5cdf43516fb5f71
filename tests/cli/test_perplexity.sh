#!/usr/bin/env bash
# test_perplexity.sh - `hearth perplexity` against llama-perplexity.
#
# golden/perplexity-stories260K.txt holds llama-perplexity's figures for
# stories260K f32, q8_0 and q4_0 over golden/perplexity-input.txt with -c 128
# (4 chunks). Hearth's final estimate must be within 0.1 % for f32 and q8_0;
# q4_0 is held to 1 % (a known 0.5 % gap, see docs/QUANTIZATION.md). The
# per-chunk line, --json, --chunks and the error paths (text shorter than two
# contexts, missing file, no -m, bad -c) are checked too.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED. Owner: the quantize engineer.
set -uo pipefail

H=${HEARTH_BIN:-hearth}
SHARED=${HEARTH_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
M=$SHARED/models
G=$SHARED/golden
TXT=$G/perplexity-input.txt
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
[ -f "$TXT" ] && [ -f "$G/perplexity-stories260K.txt" ] || { echo "FAIL: golden files missing under $G" >&2; exit 1; }

# golden final estimate for a model file name
golden() { grep -A3 "llama-perplexity -m $1 " "$G/perplexity-stories260K.txt" | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' | head -1; }

for spec in f32:0.001 q8_0:0.001 q4_0:0.01; do
    q=${spec%%:*} tol=${spec#*:}
    want=$(golden "stories260K-$q.gguf")
    [ -n "$want" ] || { bad "no golden figure for $q"; continue; }
    if ! "$H" perplexity -m "$M/stories260K-$q.gguf" -f "$TXT" -c 128 -t 2 --json >"$T/p.json" 2>"$T/p.err"; then
        bad "perplexity $q failed: $(cat "$T/p.err")"
        continue
    fi
    python3 - "$T/p.json" "$want" "$tol" <<'PY' && ok || bad "perplexity $q: $(cat "$T/p.json") vs golden $want (tol $tol)"
import json, sys
d = json.load(open(sys.argv[1])); want = float(sys.argv[2]); tol = float(sys.argv[3])
assert d["chunks"] == 4 and d["n_ctx"] == 128 and d["scored"] == 4 * 63, d
assert abs(d["ppl"] - want) / want <= tol, (d["ppl"], want)
assert d["ppl_err"] > 0
PY
done

# text output: per-chunk figures and the final line, --chunks
"$H" perplexity -m "$M/stories260K-f32.gguf" -f "$TXT" -c 128 --chunks 2 >"$T/p.out" 2>"$T/p.err" || bad "--chunks 2 failed: $(cat "$T/p.err")"
grep -q '^\[1\]1\.78[0-9]*,\[2\]1\.71[0-9]*,$' "$T/p.out" && ok || bad "per-chunk line wrong: $(cat "$T/p.out")"
grep -q 'Final estimate: PPL = 1\.71' "$T/p.out" && ok || bad "final line wrong: $(cat "$T/p.out")"

# bad input
efail() { # efail WHAT PATTERN ARGS...
    local what=$1 pat=$2
    shift 2
    if "$H" perplexity "$@" >"$T/e.out" 2>"$T/e.err"; then bad "$what: succeeded"; else
        grep -qi -- "$pat" "$T/e.err" && ok || bad "$what: message lacks '$pat': $(cat "$T/e.err")"
    fi
}
head -c 300 "$TXT" >"$T/short.txt"
efail "short text" "needs at least 256" -m "$M/stories260K-f32.gguf" -f "$T/short.txt" -c 128
efail "missing text" "cannot open" -m "$M/stories260K-f32.gguf" -f "$T/nope.txt"
efail "no model" "no model" -f "$TXT"
efail "bad -c" "-c wants" -m "$M/stories260K-f32.gguf" -f "$TXT" -c 0
efail "unsupported flag" "unknown option" -m "$M/stories260K-f32.gguf" -f "$TXT" --frobnicate
efail "kld without a base" "--kl-divergence-base FILE" -m "$M/stories260K-f32.gguf" -f "$TXT" --kl-divergence

# ---- KL divergence against the F32 model's saved distributions, beside llama.cpp's
# figures for the same files (native llama-perplexity, commit dc02e1f, -c 128 -t 2 --chunks 3:
# --kl-divergence-base on f32, then --kl-divergence on q4_0 / q8_0):
#   q4_0: Mean KLD 0.04594, ln(PPL(Q)/PPL(base)) 0.08646, same top 85.185 %
#   q8_0: Mean KLD 0.000497, same top 98.942 %
kp() { "$H" perplexity -f "$TXT" -c 128 -t 2 --chunks 3 --quiet --json --kl-divergence-base "$T/base.kld" "$@"; }
kp -m "$M/stories260K-f32.gguf" >"$T/kb.json" 2>"$T/kb.err" && [ -s "$T/base.kld" ] && ok || bad "saving the base: $(cat "$T/kb.err")"
kv() { python3 -c "import json,sys; d=json.load(open('$1'))['kld']; print($2)"; }
kp -m "$M/stories260K-f32.gguf" --kl-divergence >"$T/k.json" 2>"$T/k.err"
[ "$(kv "$T/k.json" "d['mean'] < 1e-5 and d['same_top'] == 1")" = True ] && ok || bad "the base against itself: KLD ~0 ($(cat "$T/k.json" "$T/k.err"))"
kp -m "$M/stories260K-q4_0.gguf" --kl-divergence >"$T/k4.json" 2>"$T/k.err"
[ "$(kv "$T/k4.json" "abs(d['mean'] - 0.04594) <= 0.1 * 0.04594 and abs(d['ln_ppl_ratio'] - 0.08646) <= 0.01 and abs(100 * d['same_top'] - 85.185) <= 2")" = True ] && ok ||
    bad "q4_0 KLD beside llama.cpp's 0.04594 / 0.08646 / 85.185 %: $(cat "$T/k4.json" "$T/k.err")"
kp -m "$M/stories260K-q8_0.gguf" --kl-divergence >"$T/k8.json" 2>"$T/k.err"
[ "$(kv "$T/k8.json" "abs(d['mean'] - 0.000497) <= 0.3 * 0.000497 and abs(100 * d['same_top'] - 98.942) <= 2")" = True ] && ok ||
    bad "q8_0 KLD beside llama.cpp's 0.000497 / 98.942 %: $(cat "$T/k8.json")"
"$H" perplexity -m "$M/stories260K-q4_0.gguf" -f "$TXT" -c 128 -t 2 --chunks 3 --kl-divergence-base "$T/base.kld" --kl-divergence --quiet | grep -q "Same top p:" && ok || bad "the text report has the KLD lines"
efail "a base of another run" "written for another run" -m "$M/stories260K-q4_0.gguf" -f "$TXT" -c 64 --kl-divergence-base "$T/base.kld" --kl-divergence
head -c 1000 "$T/base.kld" >"$T/cut.kld"
efail "a cut base file" "ends early" -m "$M/stories260K-q4_0.gguf" -f "$TXT" -c 128 --chunks 3 --kl-divergence-base "$T/cut.kld" --kl-divergence
printf 'not a base' >"$T/junk.kld"
efail "not a base file" "is not a file" -m "$M/stories260K-q4_0.gguf" -f "$TXT" -c 128 --kl-divergence-base "$T/junk.kld" --kl-divergence
"$H" perplexity --help | grep -q -- "--chunks" && ok || bad "--help lacks --chunks"

echo "test_perplexity: $pass passed, $fails failed"
[ $fails -eq 0 ]
