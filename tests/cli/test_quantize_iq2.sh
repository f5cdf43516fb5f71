#!/usr/bin/env bash
# test_quantize_iq2.sh - `hearth quantize --imatrix` to IQ2_XXS, IQ2_XS, IQ2_S (file type
# IQ2_M), IQ1_S and IQ1_M from hearth-kjv-llama-f32.gguf: the whole output file is
# byte-identical to llama-quantize's (sha256 below, commands in tests/data/iq/README.md),
# --pure (every matrix the IQ type; token_embd/output Q8_0 where llama.cpp needs an
# importance vector for them) and llama.cpp's own mixtures, whose Q2_K..Q5_K and
# IQ3_S tensors come from the other quantizers. The outputs load and score in
# `hearth perplexity`. The row quantizers are core/quant_iq2.c (bytes per tensor:
# unit/test_quant_iq2_model); the IQ file-type names and mixture rules live in
# runtime/format/quant_rules.c: a build without them skips (77).
# Env (ctest): HEARTH_BIN, HEARTH_SHARED, HEARTH_SOURCE.
set -uo pipefail

H=${HEARTH_BIN:-hearth}
SHARED=${HEARTH_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LL=$SHARED/models/hearth-kjv-llama-f32.gguf
TXT=$SHARED/golden/perplexity-input.txt
KI=imatrix-kjv-llama-esther.gguf
[ -f "$LL" ] && [ -f "$TXT" ] || { echo "FAIL: shared model/text missing under $SHARED" >&2; exit 1; }
if ! "$H" quantize --help | grep -q 'IQ2_XXS'; then
    echo "SKIP: this build's hearth quantize has no IQ2/IQ1 file types (runtime/format/quant_rules.c)"
    exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp "$SRC/tests/data/imatrix/$KI" "$T/"
cd "$T" || exit 1
fails=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

same_sha() { # same_sha TYPE SHA256 FLAGS...
    local ty=$1 want=$2 got
    shift 2
    if ! "$H" quantize --quiet "$@" --imatrix $KI "$LL" "q-$ty.gguf" "$ty" >q.out 2>q.err; then
        bad "quantize $* $ty failed: $(cat q.err)"
        return
    fi
    got=$(sha256sum "q-$ty.gguf" | cut -d' ' -f1)
    [ "$got" = "$want" ] && ok || bad "quantize $* --imatrix $ty: sha256 $got, llama-quantize's is $want"
    [ ! -e "q-$ty.gguf.part" ] && ok || bad "q-$ty.gguf.part left behind"
}
Q8="--pure --token-embedding-type q8_0 --output-type q8_0"
# shellcheck disable=SC2086
{
    same_sha iq2_xxs 0b21f8d1c8daf295448288163f106fef5dc605742333e1175cc45ef428170987 $Q8
    same_sha iq2_xs 7d7404a4c9efb2c5487d24f98a62b2dd67d3b7bee510a7943a953123970edc34 $Q8
    same_sha IQ1_S 236fefe77dbb93739c5fa1942104b79f3db51f871face52fe4bf44dd784d884a $Q8 -t 1
}
same_sha iq2_m 00d972ac4bff44b21cd6fc0b0dd80784616393765464cbdad6102f573e7b92f1 --pure
same_sha iq1_m fde2f355b3effff5d3f2bb6469d279b141d26621b14c7d4fd598adcf71ee45e9 --pure
# llama.cpp's mixtures (llama-quantize --imatrix IM F32 OUT TYPE 2)
same_sha iq2_xxs 54e898f0aa71b3f0a0b00655d5ba4416fb2e9b9877366c517af9882118e7b669
same_sha iq2_xs 68e504c8947d2edc49eb8d03294e19fbd86fb7f2cbba7ef25150ab16ba73745c
same_sha iq2_s bf20684881c087496a7700200ee0691c61eb57161ed76de7de193925536d1b76
same_sha iq2_m 7ea6b735284c2fcf74905fd895c39eff244932facfb8975c798f50c291998195
same_sha iq1_s ad91eed235fc9f7b88a475a9db1c98a7cec991941ba01eb46fe2d072d5e8d9d6
same_sha iq1_m 4ef319a1393006059b8ea38c70fb4addfcc96541992f21d06b649c050af5119a

# the outputs run: a finite perplexity, worse than nothing-lost but not garbage
for ty in iq2_xxs iq1_m; do
    [ -f "q-$ty.gguf" ] || continue
    if "$H" perplexity -m "q-$ty.gguf" -f "$TXT" -c 128 --chunks 2 --json >p.json 2>p.err; then
        python3 -c "import json,math; p=json.load(open('p.json'))['ppl']; assert math.isfinite(p) and 1 < p < 1e4, p" &&
            ok || bad "perplexity of $ty: $(cat p.json)"
    else
        bad "perplexity on $ty failed: $(cat p.err)"
    fi
done

echo "test_quantize_iq2: $pass passed, $fails failed"
[ "$fails" -eq 0 ]
