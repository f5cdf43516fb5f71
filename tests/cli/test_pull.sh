#!/usr/bin/env bash
# test_pull.sh - `hearth pull`, `list`, `rm` and `-m NAME` against a real HTTP
# server this test starts on 127.0.0.1 (tests/cli/pull_server.py: Range
# requests, a fake of the Hugging Face file-list API, a truncating, a
# stalling and a slow route), with $XDG_DATA_HOME in a temporary folder.
#
# Checks: a URL pull, a hf.co/ORG/REPO:QUANT pull and a catalog-name pull end
# with the source file's sha256 and a manifest row; a pull killed half-way
# resumes (it says from which byte) and ends with identical bytes; a wrong
# sha256, a 404, a truncated body, a stalling server and a full disk (a 1 MiB
# tmpfs, only when this runs as root and mount works; otherwise skipped and
# said) each fail with a clear message and leave no manifest row.
# Needs HEARTH_BIN (set by ctest), python3, sqlite3, sha256sum.
set -uo pipefail
BIN=${HEARTH_BIN:?HEARTH_BIN must point at the hearth binary}
HERE=$(cd "$(dirname "$0")" && pwd)
MODELS="$HERE/../../../shared/models"
for t in python3 sqlite3 sha256sum; do command -v $t >/dev/null || { echo "skipped: $t not found"; exit 0; }; done
[ -f "$MODELS/hearth-kjv-llama-q8_0.gguf" ] || { echo "skipped: $MODELS has no sample models"; exit 0; }

tmp=$(mktemp -d /tmp/hearth-pull-XXXXXX)
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
    mountpoint -q "$tmp/full" 2>/dev/null && umount "$tmp/full"
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: expected '$2', got '$1'"; fi; }
expect_in() { if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not in output:"; sed 's/^/  | /' "$1" >&2; fi; }
run() { timeout 60 "$BIN" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
rows() { sqlite3 "$XDG_DATA_HOME/hearth/models/manifest.sqlite" "SELECT count(*) FROM models WHERE name='$1'"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$tmp/root" "$tmp/data"
cp "$MODELS/hearth-kjv-llama-q8_0.gguf" "$MODELS/hearth-kjv-qwen3-q4_0.gguf" "$tmp/root/"
python3 "$HERE/pull_server.py" "$tmp/root" "$tmp/port" &
srv_pid=$!
for _ in $(seq 100); do [ -f "$tmp/port" ] && break; sleep 0.1; done
[ -f "$tmp/port" ] || { echo "FAIL: the test server did not start"; exit 1; }
base="http://127.0.0.1:$(cat "$tmp/port")"
export XDG_DATA_HOME="$tmp/data" HEARTH_HF_ENDPOINT="$base"
store="$XDG_DATA_HOME/hearth/models"
want=$(sha "$tmp/root/hearth-kjv-llama-q8_0.gguf")

# ---- URL pull with the right --sha256
run pull -q "$base/plain/hearth-kjv-llama-q8_0.gguf" --sha256 "$want"
expect_eq "$rc" 0 "URL pull"
expect_eq "$(sha "$store/hearth-kjv-llama-q8_0.gguf" 2>/dev/null)" "$want" "URL pull bytes"
expect_eq "$(rows hearth-kjv-llama-q8_0)" 1 "URL pull manifest row"
expect_eq "$(sqlite3 "$store/manifest.sqlite" "SELECT sha256||' '||size FROM models WHERE name='hearth-kjv-llama-q8_0'")" \
    "$want 3794592" "manifest sha256 and size"
[ ! -e "$store/hearth-kjv-llama-q8_0.gguf.part" ] && ok || bad ".part left after a complete pull"

# ---- list (text, json), -m NAME, rm
run list
expect_in "$tmp/out" "hearth-kjv-llama-q8_0" "list names the model"
expect_in "$tmp/out" "Q8_0" "list shows the quantization"
run list --json
expect_eq "$(sqlite3 :memory: "SELECT json_extract(readfile('$tmp/out'), '\$[0].sha256')")" "$want" "list --json sha256"
run info hearth-kjv-llama-q8_0
expect_eq "$rc" 0 "info NAME loads the pulled model"
run show hearth-kjv-llama-q8_0
expect_eq "$rc" 0 "show"
expect_in "$tmp/out" "sha256:        $want" "show prints the sha256"
expect_in "$tmp/out" "llama" "show prints the architecture (hearth info)"
run show hearth-kjv-llama-q8_0 --json
expect_eq "$(sqlite3 :memory: "SELECT json_extract(readfile('$tmp/out'), '\$.manifest.sha256')")" "$want" "show --json"
run rm hearth-kjv-llama-q8_0
expect_eq "$rc" 0 "rm"
expect_eq "$(rows hearth-kjv-llama-q8_0)" 0 "rm deletes the row"
[ ! -e "$store/hearth-kjv-llama-q8_0.gguf" ] && ok || bad "rm left the file"
run rm hearth-kjv-llama-q8_0
expect_eq "$rc" 1 "rm of an absent name"
expect_in "$tmp/err" "no pulled model named" "rm absent message"

# ---- hf.co/ORG/REPO:QUANT through the fake API
run pull -q hf.co/test/kjv:Q4_0
expect_eq "$rc" 0 "hf.co pull"
expect_eq "$(rows hf.co/test/kjv:Q4_0)" 1 "hf.co manifest row"
expect_eq "$(sha "$store/hearth-kjv-qwen3-q4_0.gguf" 2>/dev/null)" "$(sha "$tmp/root/hearth-kjv-qwen3-q4_0.gguf")" "hf.co bytes"
# the sha256 Hugging Face publishes (the LFS oid of its tree listing) is checked
run pull hf.co/test/kjv:Q4_0 --name kjv-published
expect_eq "$rc" 0 "hf.co pull checked against the published sha256"
expect_in "$tmp/err" "as Hugging Face publishes it" "the pull says the published sha256 matched"
run pull hf.co/liar/kjv:Q4_0
expect_eq "$rc" 1 "a file whose published sha256 differs"
expect_in "$tmp/err" "the sha256 Hugging Face publishes" "the mismatch names the published sha256"
expect_eq "$(rows hf.co/liar/kjv:Q4_0)" 0 "no manifest row after a published-sha256 mismatch"
run pull hf.co/nolfs/kjv:Q4_0 --name kjv-unchecked
expect_eq "$rc" 0 "a listing without sha256s still pulls"
expect_in "$tmp/err" "none was published" "... and says nothing checked it"
run pull -q hf.co/test/kjv:Q5_K
expect_eq "$rc" 1 "hf.co pull of an absent quantization"
expect_in "$tmp/err" "no GGUF file of quantization Q5_K" "absent quantization message"

# ---- a split model (hearth split writes the parts): every part pulled, loaded from the first
whole="$MODELS/hearth-kjv-llama-q6_k.gguf"
run split "$whole" --max-size 1M -o "$tmp/root/kjv-split-Q6_K" --json
expect_eq "$rc" 0 "hearth split --max-size"
nparts=$(ls "$tmp/root"/kjv-split-Q6_K-*-of-*.gguf 2>/dev/null | wc -l)
[ "$nparts" -ge 3 ] && ok || bad "split into $nparts parts (want >= 3 for a 2.9 MB model under 1M)"
python3 -c "import json,sys; d=json.load(open('$tmp/out')); sys.exit(not (len(d['parts']) == $nparts and all(p['bytes'] <= 1048576 for p in d['parts'])))" && ok || bad "split --json: every part under --max-size"
run split "$whole" --parts 2 --max-size 1M; expect_eq "$rc" 2 "split: --parts and --max-size together is a usage error"
run split "$whole" --max-size 1K; expect_eq "$rc" 2 "split: a tensor over --max-size"
expect_in "$tmp/err" "does not fit in a part" "split: says a tensor is too large"
run pull -q hf.co/test/kjv:Q6_K
expect_eq "$rc" 0 "hf.co pull of a split model"
expect_eq "$(ls "$store"/kjv-split-Q6_K-*-of-*.gguf 2>/dev/null | wc -l)" "$nparts" "every part pulled"
timeout 60 "$BIN" run -m hf.co/test/kjv:Q6_K -n 12 --temp 0 "In the beginning" >"$tmp/split.txt" 2>/dev/null
timeout 60 "$BIN" run -m "$whole" -n 12 --temp 0 "In the beginning" >"$tmp/whole.txt" 2>/dev/null
[ -s "$tmp/split.txt" ] && cmp -s "$tmp/split.txt" "$tmp/whole.txt" && ok || bad "the pulled split model generates what the whole file does"
run info "$store/kjv-split-Q6_K-00001-of-$(printf %05d "$nparts").gguf"
expect_in "$tmp/out" "in $nparts parts" "info names the parts"
run rm hf.co/test/kjv:Q6_K
expect_eq "$(ls "$store"/kjv-split-Q6_K-* 2>/dev/null | wc -l)" 0 "rm removes every part"
rm -f "$tmp/root"/kjv-split-*

# ---- catalog name (a test catalog with the published-sha256 field)
cat >"$tmp/catalog.yaml" <<YAML
models:
  - name: kjv:8b-test
    hf_repo: test/kjv
    file: hearth-kjv-llama-q8_0.gguf
    sha256: $want
  - name: kjv:bad-sha
    hf_repo: test/kjv
    file: hearth-kjv-llama-q8_0.gguf
    sha256: $(printf '0%.0s' $(seq 64))
YAML
export HEARTH_CATALOG="$tmp/catalog.yaml"
run pull -q kjv:8b-test
expect_eq "$rc" 0 "catalog pull"
expect_eq "$(rows kjv:8b-test)" 1 "catalog manifest row"
run rm kjv:8b-test
run pull -q kjv:bad-sha
expect_eq "$rc" 1 "catalog sha256 mismatch"
expect_in "$tmp/err" "sha256 mismatch" "mismatch message"
expect_eq "$(rows kjv:bad-sha)" 0 "no row after a mismatch"
[ ! -e "$store/hearth-kjv-llama-q8_0.gguf" ] && [ ! -e "$store/hearth-kjv-llama-q8_0.gguf.part" ] && ok ||
    bad "a mismatched download was kept"
# the shipped catalog parses and resolves to its HF file (the fake has no such file: 404)
HEARTH_CATALOG="$HERE/../../models/catalog.yaml" run pull -q qwen2.5:0.5b
expect_eq "$rc" 1 "shipped catalog entry on the fake server"
expect_in "$tmp/err" "/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf" "catalog URL"
expect_in "$tmp/err" "HTTP 404" "catalog entry 404"
run pull -q no-such-model:1b
expect_eq "$rc" 1 "unknown name"
expect_in "$tmp/err" "is not in the catalog" "unknown name message"

# ---- 404, truncated, stalled
run pull -q "$base/plain/nope.gguf"
expect_eq "$rc" 1 "404"
expect_in "$tmp/err" "HTTP 404" "404 message"
expect_eq "$(rows nope)" 0 "no row after 404"
run pull -q "$base/trunc/hearth-kjv-llama-q8_0.gguf"
expect_eq "$rc" 1 "truncated body"
expect_in "$tmp/err" "resume" "truncated message says it can resume"
expect_eq "$(rows hearth-kjv-llama-q8_0)" 0 "no row after a truncated body"
rm -f "$store"/*.part
t0=$(date +%s)
HEARTH_PULL_STALL_S=2 run pull -q "$base/stall/hearth-kjv-llama-q8_0.gguf"
expect_eq "$rc" 1 "stalled server"
expect_in "$tmp/err" "the server stopped sending" "stall message"
[ $(($(date +%s) - t0)) -lt 20 ] && ok || bad "the stall took too long to detect"
expect_eq "$(rows hearth-kjv-llama-q8_0)" 0 "no row after a stall"
rm -f "$store"/*.part

# ---- killed half-way, then resumed to identical bytes
"$BIN" pull -q "$base/slow/hearth-kjv-llama-q8_0.gguf" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ "$(stat -c %s "$store/hearth-kjv-llama-q8_0.gguf.part" 2>/dev/null || echo 0)" -gt 1000000 ] && break
    sleep 0.1
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
have=$(stat -c %s "$store/hearth-kjv-llama-q8_0.gguf.part" 2>/dev/null || echo 0)
[ "$have" -gt 0 ] && [ "$have" -lt 3794592 ] && ok || bad "kill left $have bytes (want a partial file)"
expect_eq "$(rows hearth-kjv-llama-q8_0)" 0 "no row after a kill"
run pull "$base/plain/hearth-kjv-llama-q8_0.gguf"
expect_eq "$rc" 0 "resumed pull"
expect_in "$tmp/err" "resuming an interrupted download from byte $have" "resume says from where"
expect_eq "$(sha "$store/hearth-kjv-llama-q8_0.gguf" 2>/dev/null)" "$want" "resumed bytes identical"
expect_in "$tmp/err" "ETA" "progress bar"

# ---- full disk: a 1 MiB tmpfs as the data folder
mkdir -p "$tmp/full"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$tmp/full" 2>/dev/null; then
    XDG_DATA_HOME="$tmp/full" run pull -q "$base/plain/hearth-kjv-llama-q8_0.gguf"
    expect_eq "$rc" 1 "full disk"
    expect_in "$tmp/err" "not enough disk space" "full disk message"
    expect_eq "$(sqlite3 "$tmp/full/hearth/models/manifest.sqlite" "SELECT count(*) FROM models")" 0 "no row on a full disk"
    umount "$tmp/full"
else
    echo "note: full-disk case skipped (needs root to mount a tmpfs)"
fi

# ---- a second pull of the same file while one holds its lock
if command -v flock >/dev/null; then
    flock "$store/hearth-kjv-qwen3-q4_0.gguf.lock" sleep 5 &
    lk=$!
    sleep 0.3
    run pull -q "$base/plain/hearth-kjv-qwen3-q4_0.gguf"
    expect_eq "$rc" 1 "concurrent pull of one file"
    expect_in "$tmp/err" "another pull of hearth-kjv-qwen3-q4_0.gguf is running" "lock message"
    kill "$lk" 2>/dev/null
    wait "$lk" 2>/dev/null
fi

# ---- usage errors
run pull
expect_eq "$rc" 2 "pull without a model"
run pull x --sha256 abc
expect_eq "$rc" 2 "bad --sha256"
expect_in "$tmp/err" "64 hex digits" "bad --sha256 message"

echo "test_pull: $passes passed, $fails failed"
[ "$fails" = 0 ]
