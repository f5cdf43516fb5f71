#!/usr/bin/env bash
# test_embed.sh - `hearth embed` and the encoder models end to end.
#
# Regenerates the small encoder shapes with `hearth mkmodel` (f32, seed 42) and
# checks `hearth embed --json` against llama.cpp's vectors stored in
# tests/data/embed (cosine >= 0.9999, max abs error <= 1e-3; see its README):
# all inputs in one call (packed into one pass) and each input alone, which
# must also agree with each other. Then: Matryoshka --dimensions (the prefix,
# re-normalised), --no-normalize, an input over the context (refused, or cut
# with --truncate, keeping [SEP]), a pass smaller than the inputs (-b: several
# passes, same vectors), `hearth info` on a bert file, and every user error:
# no model, no text, bad --pooling / --dimensions, a decoder model without a
# pooling (or with rank), `hearth run` on an encoder. Decoder embedders (the
# llama `tiny` shape, --pooling mean / last) are checked against llama.cpp too. Env (ctest): HEARTH_BIN, HEARTH_SHARED.
set -uo pipefail

H=${HEARTH_BIN:-hearth}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=$HERE/../data/embed
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
if ! command -v python3 >/dev/null 2>&1; then # packaging/install-deps.sh installs it
    echo "FAIL: python3 is needed to compare vectors (packaging/install-deps.sh installs it)" >&2
    exit 1
fi
for s in bert-test nomic-test bert-rerank-test tiny; do
    "$H" mkmodel --shape "$s" --type f32 --seed 42 -o "$T/$s.gguf" >/dev/null 2>"$T/mk.err" ||
        { bad "mkmodel $s: $(tail -2 "$T/mk.err")"; exit 1; }
done
for st in bert-test:q8_0 nomic-test:q4_k; do
    "$H" mkmodel --shape "${st%%:*}" --type "${st##*:}" --seed 42 -o "$T/${st%%:*}-${st##*:}.gguf" >/dev/null \
        2>"$T/mk.err" || { bad "mkmodel $st: $(tail -2 "$T/mk.err")"; exit 1; }
done

# ---------------------------------------------------------------- parity with llama.cpp
# case model [flags]: all inputs at once, then --alone, each against the reference
check_case() {
    local c=$1 m=$2
    shift 2
    local -a inputs
    mapfile -t inputs < <(python3 -c "import json,sys; [print(x) for x in json.load(open(sys.argv[1]))['inputs']]" "$DATA/$c.json")
    if ! "$H" embed -m "$T/$m.gguf" --json "$@" "${inputs[@]}" >"$T/$c.json" 2>"$T/err"; then
        bad "$c: embed failed: $(cat "$T/err")"
        return
    fi
    if ! "$H" embed -m "$T/$m.gguf" --json --alone "$@" "${inputs[@]}" >"$T/$c.alone.json" 2>"$T/err"; then
        bad "$c: embed --alone failed: $(cat "$T/err")"
        return
    fi
    python3 "$HERE/embed_compare.py" "$DATA/$c.json" "$T/$c.json" --exact "$T/$c.alone.json" >"$T/cmp" &&
        ok || bad "$c: $(grep FAIL "$T/cmp" | head -3)"
    # (a decoder's mean pooling reads a hidden row per token, at most 64 a pass: several passes)
    [ "$c" = tiny-mean ] ||
        { [ "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['passes'])" "$T/$c.json")" = 1 ] &&
            ok || bad "$c: the inputs did not share one pass"; }
}
check_case bert-test-cls bert-test
check_case bert-test-mean bert-test --pooling mean
check_case nomic-test-mean nomic-test
check_case nomic-test-last nomic-test --pooling last
check_case bert-rerank-test bert-rerank-test
check_case bert-test-q8_0 bert-test-q8_0
check_case nomic-test-q4_k nomic-test-q4_k
check_case tiny-mean tiny --pooling mean # a decoder (llama), causal, KV cache of the embedder
check_case tiny-last tiny --pooling last

# ---------------------------------------------------------------- options
B=$T/bert-test.gguf
"$H" embed -m "$B" --json "hello world" "a second text" >"$T/full.json" 2>"$T/err" || bad "embed: $(cat "$T/err")"
"$H" embed -m "$B" --json --dimensions 16 "hello world" "a second text" >"$T/d16.json" 2>"$T/err" ||
    bad "embed --dimensions 16: $(cat "$T/err")"
python3 - "$T/full.json" "$T/d16.json" <<'PY' && ok || bad "--dimensions 16 is not the re-normalised prefix"
import json, math, sys
full = json.load(open(sys.argv[1]))["embeddings"]
cut = json.load(open(sys.argv[2]))
assert cut["dimensions"] == 16
for f, c in zip(full, cut["embeddings"]):
    assert len(c) == 16
    n = math.sqrt(sum(x * x for x in f[:16]))
    assert max(abs(x / n - y) for x, y in zip(f[:16], c)) < 1e-6
    assert abs(sum(y * y for y in c) - 1) < 1e-5
PY
"$H" embed -m "$B" --json --no-normalize "hello world" >"$T/raw.json" 2>"$T/err" || bad "--no-normalize: $(cat "$T/err")"
python3 -c "
import json, math, sys
r = json.load(open(sys.argv[1])); f = json.load(open(sys.argv[2]))['embeddings'][0]
v = r['embeddings'][0]; n = math.sqrt(sum(x * x for x in v))
assert not r['normalized'] and abs(n - 1) > 0.01 and max(abs(x / n - y) for x, y in zip(v, f)) < 1e-6
" "$T/raw.json" "$T/full.json" && ok || bad "--no-normalize does not give the unnormalised vector"
# the plain output: one line per text, dim numbers each
"$H" embed -m "$B" "hello world" "a second text" >"$T/plain" 2>"$T/err" || bad "plain: $(cat "$T/err")"
[ "$(wc -l <"$T/plain")" = 2 ] && [ "$(head -1 "$T/plain" | wc -w)" = 128 ] && ok || bad "plain output is not 2 lines of 128"

# -f FILE / -f -: one text per non-empty line (CRLF too), after the TEXT arguments
printf 'a second text\r\n\n' >"$T/lines.txt"
"$H" embed -m "$B" --json -f "$T/lines.txt" "hello world" >"$T/file.json" 2>"$T/err" || bad "-f: $(cat "$T/err")"
python3 -c "
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a['embeddings'] == b['embeddings'], 'different vectors'
" "$T/file.json" "$T/full.json" && ok || bad "-f FILE does not give the same vectors as the arguments"
printf 'hello world\n' | "$H" embed -m "$B" -f - >"$T/stdin.out" 2>"$T/err" &&
    [ "$(head -1 "$T/stdin.out")" = "$(head -1 "$T/plain")" ] && ok || bad "-f - (stdin): $(cat "$T/err")"
expect_fail_early() { "$H" "$@" >/dev/null 2>"$T/err" && bad "'$*' succeeded" || ok; }
expect_fail_early embed -m "$B" -f "$T/no-such-file"
grep -q "cannot open" "$T/err" && ok || bad "-f missing file: $(cat "$T/err")"

# over the context (64 tokens): refused, or cut with --truncate (still ending in [SEP])
long=$(printf 'word%d ' $(seq 1 80))
"$H" embed -m "$B" "$long" >/dev/null 2>"$T/err" && bad "an input over the context was accepted" ||
    { grep -q "context of 64" "$T/err" && grep -q "truncat" "$T/err" && ok || bad "over-context message: $(cat "$T/err")"; }
"$H" embed -m "$B" --json --truncate "$long" "hello world" >"$T/trunc.json" 2>"$T/err" || bad "--truncate: $(cat "$T/err")"
python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['tokens'][0] == 64 and d['truncated'] == [True, False], d['tokens']
" "$T/trunc.json" && ok || bad "--truncate did not cut to 64 tokens"
# -b 6: a pass holds 6 tokens, so the inputs take several passes; the vectors stay the same
"$H" embed -m "$B" --json -b 6 "hello world" "a second text" >"$T/b16.json" 2>"$T/err" || bad "-b 6: $(cat "$T/err")"
python3 -c "
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a['passes'] == 2, a['passes']
assert max(abs(x - y) for u, v in zip(a['embeddings'], b['embeddings']) for x, y in zip(u, v)) < 1e-6
" "$T/b16.json" "$T/full.json" && ok || bad "-b 6: not 2 passes with the same vectors"

# a vocabulary with add_eos_token (as Qwen3-Embedding's): EOS ends every input. The flag is
# patched into tiny's add_bos_token key (same length, false -> true)
python3 - "$T/tiny.gguf" "$T/tiny-eos.gguf" <<'PY' || bad "could not patch add_eos_token"
import sys
d = bytearray(open(sys.argv[1], "rb").read())
k = b"tokenizer.ggml.add_bos_token"
i = d.index(k)
d[i:i + len(k)] = b"tokenizer.ggml.add_eos_token"
d[i + len(k) + 4] = 1
open(sys.argv[2], "wb").write(d)
PY
"$H" embed -m "$T/tiny.gguf" --json --pooling last "hello world" >"$T/noeos.json" 2>"$T/err" || bad "tiny: $(cat "$T/err")"
"$H" embed -m "$T/tiny-eos.gguf" --json --pooling last "hello world" >"$T/eos.json" 2>"$T/err" || bad "tiny-eos: $(cat "$T/err")"
python3 -c "
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert b['tokens'][0] == a['tokens'][0] + 1, (a['tokens'], b['tokens'])
assert max(abs(x - y) for x, y in zip(a['embeddings'][0], b['embeddings'][0])) > 1e-3
" "$T/noeos.json" "$T/eos.json" && ok || bad "add_eos_token did not append EOS"

# ---------------------------------------------------------------- info, errors
"$H" info --json "$B" >"$T/info.json" 2>"$T/err" && grep -q '"architecture":"bert"' "$T/info.json" && ok ||
    bad "info on a bert file: $(cat "$T/err")"
"$H" embed --help | grep -q -- "--dimensions" && ok || bad "embed --help does not list --dimensions"
expect_fail() { # message-pattern args...
    local pat=$1
    shift
    if "$H" "$@" >/dev/null 2>"$T/err"; then
        bad "'$*' succeeded"
    else
        grep -qi -- "$pat" "$T/err" && ok || bad "'$*': message lacks '$pat': $(cat "$T/err")"
    fi
}
expect_fail "pass -m" embed "hello"
expect_fail "no TEXT" embed -m "$B"
expect_fail "not one of mean" embed -m "$B" --pooling max "hello"
expect_fail "out of range" embed -m "$B" --dimensions 500 "hello"
expect_fail "no classification head" embed -m "$B" --pooling rank "hello"
expect_fail "does not generate text" run -m "$B" -p "hello" -n 2
# (encoders on --backend vulkan: tests/cli/test_vulkan_embed.sh)
expect_fail "ask for a pooling" embed -m "$T/tiny.gguf" "hello" # a decoder without pooling_type
expect_fail "decoder" embed -m "$T/tiny.gguf" --pooling rank "hello"

echo "test_embed: $pass passed, $fails failed"
[ "$fails" = 0 ]
