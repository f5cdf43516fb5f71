#!/usr/bin/env bash
# test_imatrix.sh - `hearth imatrix` and `hearth quantize --imatrix` end to end.
#
# (a) hearth imatrix on stories260K over ../shared/golden/perplexity-input.txt (-c 128)
#     gives the entries, counts and chunk metadata of llama-imatrix's file for the same
#     model and text (tests/data/imatrix), and per-channel mean x^2 within 1 %
#     (tests/cli/imatrix_compare.py); --json parses; the file is read back by
#     hearth quantize --imatrix.
# (b) hearth quantize --imatrix with llama.cpp-made imatrix files is byte-identical to
#     llama-quantize --imatrix (sha256 of its outputs, see the data README): kjv-llama
#     Q4_0, Q4_K_M, Q2_K, Q3_K_M, Q5_K_M, Q6_K; stories260K Q4_K_M from the GGUF and the
#     legacy .dat form; IQ4_NL, IQ4_XS, IQ3_S, IQ3_M, IQ3_XS and IQ3_XXS (--pure) too, and the
#     IQ3_XXS, IQ2 and IQ1 mixtures. The weighted file differs from the plain one.
# (c) Bad input: an imatrix of another model, a model given as imatrix, a cut file,
#     a missing file, calibration text shorter than one
#     context (imatrix and --awq), --awq with --imatrix, --awq on a quantized input,
#     --awq-alpha out of range: clear message, non-zero exit, no OUT and no OUT.part.
# (d) --awq: the folded F32 model (fixed alpha 0.5) gives the original's distributions
#     (KLD < 1e-5, same top token everywhere); the searched Q4_0 file loads and scores,
#     and --json reports alpha and the error ratio (<= 1) per layer and group.
# (e) the PPL hearth imatrix prints alongside equals hearth perplexity's; --no-ppl;
#     --from-chunk; two halves (--chunks 2, --from-chunk 2) merged with --in-file equal
#     the file over the whole text (sums and counts to 1e-5) and quantize with it;
#     merge of a non-imatrix or of another model's file, --from-chunk past the end: errors.
# (f) --awq: -t 1 and -t 2 give the same bytes; the clipping lowers the sample error
#     (--json), token_embd's error ratio <= 1; --awq-no-clip gives another file.
# (g) MoE: per-expert entries from hearth imatrix (qwen3moe-tiny from mkmodel); per-expert
#     importance in the quantizer: --pure Q4_K_M equals llama-quantize's bytes.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED, HEARTH_SOURCE. Owner: the quantize engineer.
set -uo pipefail

H=${HEARTH_BIN:-hearth}
SHARED=${HEARTH_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
SRC=${HEARTH_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
M=$SHARED/models
D=$SRC/tests/data/imatrix
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

LL=$M/hearth-kjv-llama-f32.gguf
ST=$M/stories260K-f32.gguf
TXT=$SHARED/golden/perplexity-input.txt
[ -f "$LL" ] && [ -f "$ST" ] && [ -f "$TXT" ] || { echo "FAIL: shared models/text missing under $SHARED" >&2; exit 1; }
cp "$D"/imatrix-* "$T"/
cd "$T" || exit 1

# ---------------------------------------------------------------- (a) values
if "$H" imatrix -m "$ST" -f "$TXT" -o st.gguf -c 128 -t 2 --json >im.json 2>im.err; then
    python3 -c "import json,sys; d=json.load(open('im.json')); assert d['entries']==35 and d['chunks']==4 and d['chunk_size']==128, d" &&
        ok || bad "imatrix --json: $(cat im.json)"
    python3 "$SRC/tests/cli/imatrix_compare.py" st.gguf imatrix-stories260K.gguf --max-rel 0.01 >cmp.out &&
        ok || bad "hearth imatrix differs from llama-imatrix: $(cat cmp.out)"
    cat cmp.out
    [ ! -e st.gguf.part ] && ok || bad "st.gguf.part left behind"
    "$H" quantize --quiet --imatrix st.gguf "$ST" st-q.gguf q4_k_m >/dev/null 2>q.err && ok ||
        bad "quantize with hearth's imatrix: $(cat q.err)"
else
    bad "hearth imatrix failed: $(cat im.err)"
fi

# ---------------------------------------------------------------- (b) bytes
same_sha() { # same_sha SRC IMATRIX TYPE SHA256
    local out="q-$3.gguf" got
    if ! "$H" quantize --quiet --imatrix "$2" "$1" "$out" "$3" >q.out 2>q.err; then
        bad "quantize --imatrix $2 $3 failed: $(cat q.err)"
        return
    fi
    got=$(sha256sum "$out" | cut -d' ' -f1)
    [ "$got" = "$4" ] && ok || bad "quantize --imatrix $2 $(basename "$1") $3: sha256 $got, llama-quantize's is $4"
    rm -f "$out"
}
KI=imatrix-kjv-llama-esther.gguf
same_sha "$LL" $KI q4_0 0e39579b7206238373a39258eabc714ca4eb834d63cb917b6faae4cd2bc3ea70
same_sha "$LL" $KI q4_k_m aae815dc06cdb8bf8ca0b780d7eb1f2824bb6d8ed8cc4b1dca7514355946b621
same_sha "$LL" $KI q2_k bb23c171fc70e262344b1ad619e6d6b1934bbaea3eadd709faea8dd6eecad7ce
same_sha "$LL" $KI q3_k_m 2a2c06b52c041355e1f174cf615381715bcf01747a0edb1033033530e731cd4b
same_sha "$LL" $KI q5_k_m b3960a281748b161dafc90ce4d2d307842d0a5983f9b2295ff716f3b77869e47
same_sha "$LL" $KI q6_k 55559bb94865695b70fa84eb4905b0163c616819a729ccc2dc55755c75a60204
same_sha "$ST" imatrix-stories260K.gguf q4_k_m 9601d2d1a144044e6b9593cbcb4d1e68dd3b6b8b4163f40c12d2ca1442186cc6
same_sha "$ST" imatrix-stories260K.dat q4_k_m 315f0fa98eb559d7a48543739d93f970b2efc3bf1c5d2e55ede65d0ad5c0a4e1
# the IQ types with an imatrix (llama-quantize --imatrix, bare file name as above)
same_sha_f() { # same_sha_f TYPE SHA256 FLAGS...: kjv-llama with the Esther imatrix
    local ty=$1 want=$2 got
    shift 2
    if ! "$H" quantize --quiet --imatrix $KI "$@" "$LL" "q-$ty.gguf" "$ty" >q.out 2>q.err; then
        bad "quantize --imatrix $* $ty failed: $(cat q.err)"
        return
    fi
    got=$(sha256sum "q-$ty.gguf" | cut -d' ' -f1)
    [ "$got" = "$want" ] && ok || bad "quantize --imatrix $* $ty: sha256 $got, llama-quantize's is $want"
    rm -f "q-$ty.gguf"
}
same_sha_f iq4_nl aa899042f83caae2d1aa31b97ca9a1a4576ea3403460eb918193b65e38269013
same_sha_f IQ4_XS 58c08a6c59083bc4445938586f9dc58cdddd09dd22d9849a71ae6b6da06e6011
same_sha_f iq4_xs 147199b7e3b746e1d41abee5d0b7c29b331d22e08261384c7e92dd0b89b8698f --pure
same_sha_f iq3_s ef54d5b268b0f2bd29be035c6f850e8f49eedb1a467cf359a09ccdf3f0ccc728
same_sha_f iq3_m 130ed5be3ea7159344710a1c75c72843b54975fe812646063366c07a9af23916
same_sha_f iq3_xs e6375292f7c5203e91fe63d8e6fd90a4f01766b21efde0fd6e844145619ded18
same_sha_f iq3_xxs bde0e51e514d45a5b4bb3e264dbcb79df73d72f69f8257acaafb071d9e09077f --pure
# mixtures with IQ2/IQ1 tensors (IQ3_XXS's attn_q/attn_k are IQ2_S): llama-quantize's bytes
same_sha_mix() { # same_sha_mix TYPE SHA256
    if "$H" quantize --quiet --imatrix $KI "$LL" "n-$1.gguf" "$1" >q.out 2>q.err; then
        [ "$(sha256sum "n-$1.gguf" | cut -d' ' -f1)" = "$2" ] && ok || bad "quantize --imatrix $1: not llama-quantize's bytes"
    else
        bad "quantize --imatrix $1: $(cat q.err)"
    fi
    rm -f "n-$1.gguf"
}
same_sha_mix iq3_xxs 7fd615976f1d9af058d72b1d1680f24759dbb5e60ab07199cf1b9e93c18def78
same_sha_mix iq2_xxs 54e898f0aa71b3f0a0b00655d5ba4416fb2e9b9877366c517af9882118e7b669
same_sha_mix iq2_xs 68e504c8947d2edc49eb8d03294e19fbd86fb7f2cbba7ef25150ab16ba73745c
same_sha_mix iq2_s bf20684881c087496a7700200ee0691c61eb57161ed76de7de193925536d1b76
same_sha_mix iq2_m 7ea6b735284c2fcf74905fd895c39eff244932facfb8975c798f50c291998195
same_sha_mix iq1_s ad91eed235fc9f7b88a475a9db1c98a7cec991941ba01eb46fe2d072d5e8d9d6
same_sha_mix iq1_m 4ef319a1393006059b8ea38c70fb4addfcc96541992f21d06b649c050af5119a
# the imatrix changes the search: not the bytes of the plain Q4_0 file
"$H" quantize --quiet "$LL" plain.gguf q4_0 >/dev/null && "$H" quantize --quiet --imatrix $KI "$LL" w.gguf q4_0 >/dev/null &&
    ! cmp -s plain.gguf w.gguf && ok || bad "Q4_0 with an imatrix is the same as without"
"$H" quantize --json --imatrix $KI "$LL" w.gguf q4_0 | python3 -c "import json,sys; assert json.load(sys.stdin)['imatrix']=='$KI'" &&
    ok || bad "quantize --json has no imatrix field"
rm -f plain.gguf w.gguf

# ---------------------------------------------------------------- (c) bad input
refuse() { # refuse WHAT EXPECTED-TEXT OUT cmd...
    local what=$1 want=$2 out=$3
    shift 3
    if "$@" >bad.out 2>bad.err; then
        bad "$what: accepted"
    else
        grep -q -- "$want" bad.err && ok || bad "$what: message '$(cat bad.err)' lacks '$want'"
    fi
    [ ! -e "$out" ] && [ ! -e "$out.part" ] && ok || bad "$what: $out or $out.part left behind"
}
refuse "imatrix of another model" "not an importance matrix of" o.gguf "$H" quantize --imatrix imatrix-stories260K.gguf "$LL" o.gguf q4_0
refuse "a model as imatrix" "no imatrix entries" o.gguf "$H" quantize --imatrix "$ST" "$ST" o.gguf q4_0
head -c 20000 $KI >cut.gguf
refuse "cut imatrix" "cut.gguf" o.gguf "$H" quantize --imatrix cut.gguf "$LL" o.gguf q4_0
refuse "missing imatrix" "cannot open imatrix" o.gguf "$H" quantize --imatrix nope.gguf "$LL" o.gguf q4_0
head -c 300 "$TXT" >short.txt
refuse "short calibration" "shorter than one context" x.gguf "$H" imatrix -m "$ST" -f short.txt -o x.gguf -c 128
refuse "no text" "pass -f" x.gguf "$H" imatrix -m "$ST" -o x.gguf
refuse "awq with imatrix" "do not combine" o.gguf "$H" quantize --awq "$TXT" --imatrix imatrix-stories260K.gguf "$ST" o.gguf q4_0
refuse "awq short calibration" "shorter than one context" o.gguf "$H" quantize --quiet --awq short.txt --awq-ctx 128 "$ST" o.gguf q4_0
refuse "awq quantized input" "needs float weights" o.gguf "$H" quantize --quiet --allow-requantize --awq "$TXT" --awq-ctx 128 "$M/stories260K-q8_0.gguf" o.gguf q4_0
refuse "awq alpha range" "from 0 to 1" o.gguf "$H" quantize --awq "$TXT" --awq-alpha 2 "$ST" o.gguf q4_0

# ---------------------------------------------------------------- (d) AWQ
# the fold alone (F32 out, alpha 0.5 everywhere) computes the same function: the
# distributions equal the original's up to float rounding (KLD < 1e-5, same top token)
"$H" perplexity -m "$ST" -f "$TXT" -c 128 -t 2 --kl-divergence-base base.kld --json >/dev/null 2>&1 || bad "perplexity base"
if "$H" quantize --quiet --awq "$TXT" --awq-ctx 128 --awq-alpha 0.5 "$ST" awq-f32.gguf f32 >/dev/null 2>q.err; then
    ! cmp -s awq-f32.gguf "$ST" && ok || bad "awq F32 file equals the input (no scales folded)"
    "$H" perplexity -m awq-f32.gguf -f "$TXT" -c 128 -t 2 --kl-divergence-base base.kld --kl-divergence --json >k.json 2>k.err &&
        python3 -c "import json; k=json.load(open('k.json'))['kld']; assert k['mean'] < 1e-5 and k['same_top'] == 1, k" &&
        ok || bad "folded F32 model differs from the original: $(cat k.json k.err)"
else
    bad "quantize --awq f32 failed: $(cat q.err)"
fi
# the search: a Q4_0 file that loads and scores; --json reports alpha per layer and group
if "$H" quantize --quiet --json --awq "$TXT" --awq-ctx 128 "$ST" awq-q4.gguf q4_0 >a.json 2>q.err; then
    python3 -c "
import json; a=json.load(open('a.json'))['awq']
assert a['chunks'] == 4 and len(a['layers']) == 5, a
for l in a['layers']:
    for g in ('qkv', 'attn_output', 'gate_up', 'down'):
        assert 0 <= l[g]['alpha'] <= 1 and l[g]['err_ratio'] <= 1.0 + 1e-9, l
" && ok || bad "awq --json: $(cat a.json)"
    "$H" perplexity -m awq-q4.gguf -f "$TXT" -c 128 -t 2 --kl-divergence-base base.kld --kl-divergence --json >k.json 2>k.err &&
        python3 -c "import json; k=json.load(open('k.json'))['kld']; assert k['mean'] < 0.2, k" &&
        ok || bad "awq Q4_0 does not score: $(cat k.json k.err)"
else
    bad "quantize --awq q4_0 failed: $(cat q.err)"
fi

# ---------------------------------------------------------------- (e) PPL alongside, --from-chunk, --in-file
# the perplexity printed alongside is hearth perplexity's on the same text and context
"$H" perplexity -m "$ST" -f "$TXT" -c 128 -t 2 --json >p.json 2>/dev/null || bad "perplexity for the imatrix PPL"
if "$H" imatrix -m "$ST" -f "$TXT" -c 128 -t 2 -o all.gguf --json --quiet >i.json 2>q.err; then
    python3 -c "
import json; i=json.load(open('i.json')); p=json.load(open('p.json'))
assert abs(i['ppl'] - p['ppl']) <= 1e-6 * p['ppl'] and i['ppl_tokens'] == p['scored'], (i, p)
assert abs(i['ppl_err'] - p['ppl_err']) <= 1e-6 * p['ppl_err'] and len(i['ppl_chunks']) == 4, i
assert abs(i['ppl_chunks'][-1] - i['ppl']) <= 1e-12 * i['ppl'], i
" && ok || bad "imatrix PPL differs from hearth perplexity: $(cat i.json p.json)"
else
    bad "imatrix with PPL failed: $(cat q.err)"
fi
"$H" imatrix -m "$ST" -f "$TXT" -c 128 -t 2 -o a.gguf --chunks 2 --no-ppl --json --quiet >a.json 2>/dev/null &&
    python3 -c "import json; a=json.load(open('a.json')); assert 'ppl' not in a and a['chunks'] == 2, a" &&
    ok || bad "--no-ppl: $(cat a.json)"
"$H" imatrix -m "$ST" -f "$TXT" -c 128 -t 2 -o b.gguf --from-chunk 2 --no-ppl --quiet >/dev/null 2>&1 || bad "--from-chunk 2"
# two halves merged equal one file over both (sums and counts; chunk metadata 4 x 128)
if "$H" imatrix --in-file a.gguf --in-file b.gguf -o ab.gguf --json >m.json 2>q.err; then
    python3 "$SRC/tests/cli/imatrix_compare.py" ab.gguf all.gguf --max-rel 1e-5 >cmp.txt && ok ||
        bad "merged halves differ from the whole: $(cat cmp.txt)"
    python3 -c "import json; m=json.load(open('m.json')); assert m['chunks'] == 4 and m['merged_chunks'] == 4, m" &&
        ok || bad "merge --json: $(cat m.json)"
else
    bad "imatrix --in-file merge failed: $(cat q.err)"
fi
# the merged file is accepted by the quantizer
"$H" quantize --quiet --imatrix ab.gguf "$ST" abq.gguf q4_k_m >/dev/null 2>q.err && ok || bad "quantize with merged: $(cat q.err)"
refuse "merge a model file" "no imatrix entries" mm.gguf "$H" imatrix --in-file "$ST" -o mm.gguf
refuse "merge two models' files" "imatrix entry" mm.gguf "$H" imatrix --in-file all.gguf --in-file $KI -o mm.gguf
refuse "from-chunk past the end" "leaves no chunk" mm.gguf "$H" imatrix -m "$ST" -f "$TXT" -c 128 --from-chunk 4 -o mm.gguf

# ---------------------------------------------------------------- (f) AWQ search: threads, clipping, --json
if "$H" quantize --quiet --json -t 1 --awq "$TXT" --awq-ctx 128 "$ST" t1.gguf q4_0 >t1.json 2>q.err &&
    "$H" quantize --quiet --json -t 2 --awq "$TXT" --awq-ctx 128 "$ST" t2.gguf q4_0 >t2.json 2>>q.err; then
    cmp -s t1.gguf t2.gguf && ok || bad "--awq -t 1 and -t 2 give different bytes"
    python3 -c "
import json; a=json.load(open('t2.json'))['awq']
assert a['clip'] and a['round'] and 0 < a['token_embd_err_ratio'] <= 1.0, a
r=[l[g]['err_ratio'] for l in a['layers'] for g in ('qkv', 'attn_output', 'gate_up', 'down')]
c=[l[g]['clip_err_ratio'] for l in a['layers'] for g in ('qkv', 'attn_output', 'gate_up', 'down')]
assert sum(r) / len(r) < 0.95 and min(c) < 1, (r, c)
" && ok || bad "awq clip --json: $(cat t2.json)"
else
    bad "quantize --awq -t 1 / -t 2 failed: $(cat q.err)"
fi
"$H" quantize --quiet --awq "$TXT" --awq-ctx 128 --awq-no-clip "$ST" nc.gguf q4_0 >/dev/null 2>&1 &&
    ! cmp -s nc.gguf t2.gguf && ok || bad "--awq-no-clip gives the clipped file"

# ---------------------------------------------------------------- (g) MoE entries
# hearth imatrix on a MoE model: per-expert sums and counts for ffn_{gate,up,down}_exps in
# llama.cpp's layout ([ne0, n_expert] sums, [1, n_expert] counts; each token counted once
# per chosen expert); the quantizer weights each expert's rows by its own vector: with
# llama-imatrix's file, --pure Q4_K_M is llama-quantize's bytes
"$H" mkmodel --shape qwen3moe-tiny --type f32 -o moe.gguf >/dev/null 2>&1 || bad "mkmodel qwen3moe-tiny"
if "$H" imatrix -m moe.gguf -f "$TXT" -c 128 -t 2 --no-ppl --quiet -o moe-im.gguf >/dev/null 2>q.err; then
    python3 -c "
import sys; sys.path.insert(0, '$SRC/tests/cli'); import imatrix_compare as ic
_, t, _ = ic.read_gguf('moe-im.gguf'); e = ic.entries(t)
exps = [n for n in e if '_exps' in n]
assert len(exps) == 12, sorted(e)
for n in exps:
    shape, v, c = e[n]
    assert list(shape) == [256 if 'down' in n else 512, 8], (n, shape)
    assert len(c) == 8 and sum(c) == 6 * 128 * 2 and len(v) == shape[0] * 8, (n, shape, list(c))
" && ok || bad "MoE imatrix entries"
else
    bad "hearth imatrix on a MoE model failed: $(cat q.err)"
fi
if "$H" quantize --quiet --pure --imatrix imatrix-qwen3moe-tiny.gguf moe.gguf moe-q.gguf q4_k_m >/dev/null 2>q.err; then
    got=$(sha256sum moe-q.gguf | cut -d' ' -f1)
    [ "$got" = 2864269cad9a95ebc5c590db0c31117640e7af7a26f8dce702b8c11250467ea7 ] && ok ||
        bad "MoE --pure q4_k_m with per-expert importance: sha256 $got differs from llama-quantize's"
else
    bad "quantize --imatrix on a MoE model failed: $(cat q.err)"
fi
"$H" quantize --quiet --imatrix moe-im.gguf moe.gguf moe-q2.gguf q4_0 >/dev/null 2>q.err && ok ||
    bad "quantize with hearth's MoE imatrix: $(cat q.err)"

"$H" imatrix --help | grep -q -- "--in-file" && ok || bad "imatrix --help lacks --in-file"
"$H" quantize --help | grep -q -- "--awq-no-clip" && ok || bad "quantize --help lacks --awq-no-clip"
"$H" imatrix --help | grep -q -- "--chunks" && ok || bad "imatrix --help"
"$H" quantize --help | grep -q -- "--imatrix" && ok || bad "quantize --help lacks --imatrix"

echo "test_imatrix: $pass passed, $fails failed"
[ "$fails" -eq 0 ]
