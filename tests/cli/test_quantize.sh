#!/usr/bin/env bash
# test_quantize.sh - `hearth quantize` end to end.
#
# (a) Byte-identical to llama-quantize: hearth-kjv-llama F32 -> Q8_0, Q4_0,
#     Q6_K, Q4_K (all --pure, as the shared files were made) and the Q4_K_M
#     mixture (default rules); stories260K F32 -> Q8_0, Q4_0, Q6_K, Q4_K_M
#     with default rules (rows of 64 and 172: the K-quant and F16 fallbacks).
# (b) Other mixtures (Q2_K, Q3_K_M, Q5_K_M, Q3_K_L) load and generate in Hearth;
#     case-insensitive type names give the same bytes; --output-type and
#     --token-embedding-type change exactly those tensors; --json parses.
#     IQ4_NL/IQ4_XS/IQ3_S/IQ3_M and unweighted IQ3_XXS tensors: sha256 of llama-quantize's files.
# (c) Bad input: unknown type, an IQ type that needs --imatrix without one, already-quantized input without
#     --allow-requantize (and with it, works), missing input, SIGINT mid-way:
#     clear message, non-zero exit, no OUT and no OUT.part left.
# Env (ctest): HEARTH_BIN, HEARTH_SHARED. Owner: the quantize engineer.
set -uo pipefail

H=${HEARTH_BIN:-hearth}
SHARED=${HEARTH_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
M=$SHARED/models
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

LL=$M/hearth-kjv-llama-f32.gguf
ST=$M/stories260K-f32.gguf
[ -f "$LL" ] && [ -f "$ST" ] || { echo "FAIL: shared models missing under $M" >&2; exit 1; }

# same_as FLAGS... -- SRC TYPE REF
same_as() {
    local src=$1 ty=$2 ref=$3
    shift 3
    local out="$T/out-$ty.gguf"
    if ! "$H" quantize --quiet "$@" "$src" "$out" "$ty" >"$T/q.out" 2>"$T/q.err"; then
        bad "quantize $* $(basename "$src") $ty failed: $(cat "$T/q.err")"
        return
    fi
    cmp -s "$out" "$ref" && ok || bad "quantize $* $(basename "$src") $ty differs from $(basename "$ref")"
    [ ! -e "$out.part" ] && ok || bad "$out.part left behind"
    rm -f "$out"
}

# ---------------------------------------------------------------- (a) bytes
for ty in q8_0 q4_0 q6_k q4_k; do same_as "$LL" "$ty" "$M/hearth-kjv-llama-$ty.gguf" --pure; done
same_as "$LL" q4_k_m "$M/hearth-kjv-llama-q4_k_m.gguf"
for ty in q8_0 q4_0 q6_k q4_k_m; do same_as "$ST" "$ty" "$M/stories260K-$ty.gguf"; done
same_as "$LL" Q8_0 "$M/hearth-kjv-llama-q8_0.gguf" --pure   # case-insensitive
same_as "$LL" Q4_K_M "$M/hearth-kjv-llama-q4_k_m.gguf" -t 1 # one thread, same bytes

# IQ4_NL / IQ4_XS: ../shared has no llama.cpp file of these types, so the sha256 of the
# whole file that llama-quantize (llama.cpp dc02e1f, GGML_NATIVE build) wrote from
# hearth-kjv-llama-f32.gguf is the reference (`llama-quantize [--pure] IN OUT IQ4_NL 2`)
same_sha() { # same_sha TYPE SHA256 FLAGS...
    local ty=$1 want=$2
    shift 2
    local out="$T/iq-$ty.gguf"
    if ! "$H" quantize --quiet "$@" "$LL" "$out" "$ty" >"$T/q.out" 2>"$T/q.err"; then
        bad "quantize $* $ty failed: $(cat "$T/q.err")"
        return
    fi
    local got
    got=$(sha256sum "$out" | cut -d' ' -f1)
    [ "$got" = "$want" ] && ok || bad "quantize $* $ty: sha256 $got, llama-quantize's is $want"
    rm -f "$out"
}
same_sha iq4_nl a4513cf20a47c8eb6a4b373292a8ed24a472f507660b025efa7d263d14e39683 --pure
same_sha iq4_nl 384209c52c7005aadb12a98f8ab46b1ee1b4cc05ec58d37f95dcbd346e66b26c
same_sha IQ4_XS 4b0c16b9394b7685e9ad7b46b53425e7030c35bb5a3b92fea80df694eb7e481b --pure
same_sha iq4_xs b15be199ed3a9582ff08ff58067df127654e7aa002e91928429be7135f0d2d31
# IQ3_S (no imatrix needed): --pure, the default mixture (attn_v Q4_K at GQA 4), IQ3_M
# (attn_v/attn_output/first ffn_down Q4_K); IQ3_XXS's unweighted search through the two
# tensors llama.cpp writes without an imatrix (`--output-tensor-type iq3_xxs
# --token-embedding-type iq3_xxs ... Q8_0`)
same_sha iq3_s dbe0771e6826556fd2cbeedd05f960944ee2f9d6de97acbea1ca05aeb972edaf --pure
same_sha IQ3_S 4b6dd5dbbff8dc251c6f705f2940f8bf83a2b799f5a69dfa2b2422598983796f
same_sha iq3_m 89c8e42cc516a66674eedc9a587bf1466902b7d5c20b2f53e797c498c2e6cb89
same_sha q8_0 81578763a41d9623a8ebff1e54f5d3668f0b66d1b9d02438b4f71d5503a60878 --output-type iq3_xxs --token-embedding-type iq3_xxs

# ---------------------------------------------------------------- (b) other mixtures load
for ty in q2_k q3_k_m q3_k_l q5_k_m q4_k_s; do
    out="$T/ll-$ty.gguf"
    if ! "$H" quantize --quiet --json "$LL" "$out" "$ty" >"$T/q.json" 2>"$T/q.err"; then
        bad "quantize $ty failed: $(cat "$T/q.err")"
        continue
    fi
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['output_bytes']>0 and d['tensors']==39, d" \
        "$T/q.json" && ok || bad "quantize --json $ty: bad summary $(cat "$T/q.json")"
    if "$H" run -m "$out" -p "In the beginning" -n 8 --temp 0 >"$T/run.out" 2>"$T/run.err" && [ -s "$T/run.out" ]; then
        ok
    else
        bad "hearth run on $ty output failed: $(tail -3 "$T/run.err")"
    fi
done
# mixture sanity: Q4_K_M has Q6_K tensors, --pure has none
grep -q '"q6_K":5' <("$H" quantize --quiet --json "$LL" "$T/m.gguf" q4_k_m) && ok || bad "Q4_K_M: expected 5 q6_K tensors"
# --output-type / --token-embedding-type
"$H" quantize --quiet --json --pure --output-type q8_0 --token-embedding-type f16 "$LL" "$T/o.gguf" q4_0 >"$T/o.json" 2>"$T/o.err" ||
    bad "quantize --output-type failed: $(cat "$T/o.err")"
grep -q '"q8_0":1' "$T/o.json" && grep -q '"f16":1' "$T/o.json" && grep -q '"q4_0":28' "$T/o.json" && ok ||
    bad "--output-type/--token-embedding-type not applied: $(cat "$T/o.json")"

# ---------------------------------------------------------------- (c) bad input
expect_fail() { # expect_fail WHAT PATTERN OUT -- ARGS...
    local what=$1 pat=$2 out=$3
    shift 3
    if "$H" quantize "$@" >"$T/e.out" 2>"$T/e.err"; then
        bad "$what: succeeded"
    else
        grep -qi -- "$pat" "$T/e.err" && ok || bad "$what: message lacks '$pat': $(cat "$T/e.err")"
    fi
    [ ! -e "$out" ] && [ ! -e "$out.part" ] && ok || bad "$what: left $out or $out.part"
}
expect_fail "unknown type" "unknown type 'q9_9'" "$T/x.gguf" "$LL" "$T/x.gguf" q9_9
# the types llama-quantize only writes with an importance matrix (their IQ3_XXS/IQ2/IQ1 tensors)
for ty in iq3_xxs IQ3_XS iq2_xxs iq2_xs iq2_s iq2_m iq1_s iq1_m; do
    expect_fail "$ty without --imatrix" "requires an importance matrix.*--imatrix" "$T/x.gguf" "$LL" "$T/x.gguf" "$ty"
done
expect_fail "requantize" "allow-requantize" "$T/x.gguf" "$M/hearth-kjv-llama-q8_0.gguf" "$T/x.gguf" q4_0
expect_fail "missing input" "nope.gguf" "$T/x.gguf" "$T/nope.gguf" "$T/x.gguf" q4_0
expect_fail "too few args" "IN OUT TYPE" "$T/x.gguf" "$LL" "$T/x.gguf"
expect_fail "bad output type" "unknown tensor type" "$T/x.gguf" --output-type q9 "$LL" "$T/x.gguf" q4_0
"$H" quantize --quiet --allow-requantize "$M/hearth-kjv-llama-q8_0.gguf" "$T/rq.gguf" q4_0 >/dev/null 2>"$T/rq.err" &&
    [ -s "$T/rq.gguf" ] && ok || bad "--allow-requantize failed: $(cat "$T/rq.err")"
# unwritable output directory
expect_fail "unwritable output" "cannot create" "$T/nodir/x.gguf" "$LL" "$T/nodir/x.gguf" q4_0

# SIGINT mid-way: one thread of IQ4_XS (its scale search makes it the slowest
# type, ~3 s here) interrupted once the part file exists
"$H" quantize -t 1 "$LL" "$T/int.gguf" iq4_xs >"$T/int.out" 2>"$T/int.err" &
pid=$!
for i in $(seq 1 200); do [ -e "$T/int.gguf.part" ] && break; sleep 0.01; done
sleep 0.1
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
[ $rc -eq 130 ] && ok || bad "SIGINT: exit $rc, want 130 ($(cat "$T/int.err"))"
grep -q "interrupted" "$T/int.err" && ok || bad "SIGINT: no 'interrupted' message: $(cat "$T/int.err")"
[ ! -e "$T/int.gguf" ] && [ ! -e "$T/int.gguf.part" ] && ok || bad "SIGINT left a partial file"

"$H" quantize --help | grep -q -- "--allow-requantize" && ok || bad "--help lacks --allow-requantize"
for ty in IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ1_S IQ1_M IQ4_NL IQ4_XS; do
    "$H" quantize --help | grep -q -- "$ty" && ok || bad "--help does not list $ty"
done

echo "test_quantize: $pass passed, $fails failed"
[ $fails -eq 0 ]
