#!/usr/bin/env bash
# test_run_grammar.sh - `hearth run --grammar-file / --json-schema` on the
# sample model: several seeds at temperature 1.2 give JSON that validates
# against the schema (checked with python's json module and a few explicit
# rules), a GBNF file limits the answer to its words, and bad input (both
# flags, a malformed grammar, an unsatisfiable or unknown-type schema, a
# missing file) exits non-zero with a message naming the problem.
set -u
BIN=${HEARTH_BIN:?}
SHARED=${HEARTH_SHARED:?}
MODEL=$SHARED/models/hearth-kjv-llama-q8_0.gguf
TMP=$(mktemp -d /tmp/hearth-rgram.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg-config XDG_CACHE_HOME=$TMP/xdg-cache
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

SCHEMA='{"type":"object","properties":{"who":{"type":"string","maxLength":10},"n":{"type":"integer"},"kind":{"enum":["law","psalm"]}},"required":["who","n","kind"]}'
for seed in 1 2 3 4 5; do
  "$BIN" run -m "$MODEL" -p "In the beginning" -n 200 --temp 1.2 --seed $seed --json --json-schema "$SCHEMA" \
    >"$TMP/out.json" 2>"$TMP/err" || { bad "seed $seed: run failed: $(cat "$TMP/err")"; continue; }
  if python3 - "$TMP/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if r["finish_reason"] != "stop":
    sys.exit(0)  # hit -n before the end: nothing to validate
v = json.loads(r["text"])
assert isinstance(v, dict) and set(v) == {"who", "n", "kind"}, v
assert isinstance(v["who"], str) and len(v["who"]) <= 10
assert isinstance(v["n"], int) and v["kind"] in ("law", "psalm")
PY
  then ok; else bad "seed $seed: output does not validate: $(cat "$TMP/out.json")"; fi
done

printf 'root ::= ("yes" | "no") "."\n' >"$TMP/yn.gbnf"
out=$("$BIN" run -m "$MODEL" -p "Is it so" -n 10 --temp 1.5 --seed 9 --grammar-file "$TMP/yn.gbnf" 2>/dev/null)
case "$out" in yes.|no.) ok ;; *) bad "grammar file: got '$out'" ;; esac

expect_fail() { # expect_fail WANT ARGS...: non-zero exit, stderr contains WANT
  local want=$1
  shift
  if "$BIN" run -m "$MODEL" -p x -n 4 "$@" >/dev/null 2>"$TMP/err"; then
    bad "$*: succeeded"
  elif grep -qF -- "$want" "$TMP/err"; then ok; else bad "$*: stderr lacks '$want': $(cat "$TMP/err")"; fi
}
printf 'root ::= "a" | (\n' >"$TMP/bad.gbnf"
expect_fail "expected ')'" --grammar-file "$TMP/bad.gbnf"
printf 'root ::= item\n' >"$TMP/undef.gbnf"
expect_fail "'item' is used but never defined" --grammar-file "$TMP/undef.gbnf"
expect_fail "minItems is above maxItems" --json-schema '{"type":"array","minItems":3,"maxItems":2}'
expect_fail "unknown type 'strng'" --json-schema '{"type":"strng"}'
expect_fail "cannot read" --json-schema "$TMP/missing.json"
expect_fail "not both" --grammar-file "$TMP/yn.gbnf" --json-schema '{}'
"$BIN" run --help | grep -q -- "--json-schema" && ok || bad "--help lacks --json-schema"

echo "test_run_grammar: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
