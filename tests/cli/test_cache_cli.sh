#!/usr/bin/env bash
# test_cache_cli.sh - `hearth cache stats|clear` on throw-away databases.
#
# Creates a cache database by running `cache stats` on a fresh path, adds
# rows with the sqlite3 CLI (the schema of runtime/store/cache_store.h), and checks
# the JSON and text output, clear per model and all, the exit codes, every
# usage error, a garbage file being moved aside, a database from a newer
# Hearth being refused, and the $XDG_CACHE_HOME default. JSON is read with
# sqlite3's own json_extract, so nothing beyond sqlite3 is needed.
# Needs HEARTH_BIN (set by ctest).
set -uo pipefail
BIN=${HEARTH_BIN:?HEARTH_BIN must point at the hearth binary}
command -v sqlite3 >/dev/null || { echo "skipped: sqlite3 CLI not found"; exit 0; }

tmp=$(mktemp -d /tmp/hearth-cache-cli-XXXXXX)
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: expected '$2', got '$1'"; fi; }
expect_in() { if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not in output:"; sed 's/^/  | /' "$1" >&2; fi; }

# run ARGS...: stdout -> $tmp/out, stderr -> $tmp/err, exit code -> $rc
run() { "$BIN" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
# jget PATH: a value from the JSON in $tmp/out
jget() { sqlite3 :memory: "SELECT json_extract(readfile('$tmp/out'), '$1')"; }

db="$tmp/nested/dir/cache.sqlite"

# ---- a fresh path: created empty, with its directories
run cache stats --cache-db "$db" --json
expect_eq "$rc" 0 "stats on a fresh path"
[ -f "$db" ] && ok || bad "stats did not create $db"
expect_eq "$(jget '$.rows')" 0 "fresh rows"
expect_eq "$(jget '$.bytes')" 0 "fresh bytes"
expect_eq "$(jget '$.path')" "$db" "path"
expect_eq "$(jget '$.recovered')" 0 "fresh recovered"
expect_eq "$(jget '$.max_bytes')" 2147483648 "default cap"
expect_eq "$(sqlite3 :memory: "SELECT json_array_length(readfile('$tmp/out'), '\$.models')")" 0 "no models"
expect_eq "$(stat -c %a "$tmp/nested/dir")" 700 "new directories are private"

# ---- rows written the way the store writes them
sqlite3 "$db" "INSERT INTO pages(fingerprint,hash,data,checksum,nbytes,last_used) VALUES
  ('fpA', 1, zeroblob(1000), 0, 1000, 1700000000000000),
  ('fpA', -5, zeroblob(1000), 0, 1000, 1700000001000000),
  ('fpB', 1, zeroblob(500), 0, 500, 1700000002000000);" || bad "sqlite3 insert"

run cache stats --cache-db "$db" --json
expect_eq "$rc" 0 "stats with rows"
expect_eq "$(jget '$.rows')" 3 "rows"
expect_eq "$(jget '$.bytes')" 2500 "bytes"
expect_eq "$(jget '$.models[0].fingerprint')" fpA "first model"
expect_eq "$(jget '$.models[0].rows')" 2 "fpA rows"
expect_eq "$(jget '$.models[0].bytes')" 2000 "fpA bytes"
expect_eq "$(jget '$.models[0].last_used')" "2023-11-14T22:13:21Z" "fpA last used"
expect_eq "$(jget '$.models[1].fingerprint')" fpB "second model"
expect_eq "$(jget '$.models[1].rows')" 1 "fpB rows"
[ "$(jget '$.file_bytes')" -gt 0 ] && ok || bad "file_bytes is not positive"

run cache stats --cache-db "$db"
expect_eq "$rc" 0 "text stats"
expect_in "$tmp/out" "3 rows" "text stats"
expect_in "$tmp/out" "$db" "text stats path"
expect_in "$tmp/out" "fpA" "text stats model"
expect_in "$tmp/out" "FINGERPRINT" "text stats header"

# ---- clear one model, an unknown model, then everything
run cache clear --cache-db "$db" --model-fingerprint fpA
expect_eq "$rc" 0 "clear fpA"
expect_in "$tmp/out" "cleared 2 rows" "clear fpA"
expect_in "$tmp/out" "fpA" "clear fpA names the model"
expect_eq "$(sqlite3 "$db" "SELECT count(*) FROM pages WHERE fingerprint='fpA'")" 0 "fpA rows gone"
expect_eq "$(sqlite3 "$db" "SELECT count(*) FROM pages WHERE fingerprint='fpB'")" 1 "fpB rows kept"

run cache clear --cache-db "$db" --model-fingerprint nope
expect_eq "$rc" 0 "clear an unknown model"
expect_in "$tmp/out" "nothing cached for model 'nope'" "clear unknown model"
expect_in "$tmp/out" "fpB" "clear unknown model lists the cached ones"

run cache clear --cache-db "$db"
expect_eq "$rc" 0 "clear all"
expect_in "$tmp/out" "cleared 1 row " "clear all"
run cache stats --cache-db "$db" --json
expect_eq "$(jget '$.rows')" 0 "rows after clear"

# ---- usage errors
run cache frobnicate
expect_eq "$rc" 2 "bad subcommand exit code"
expect_in "$tmp/err" "unknown subcommand 'frobnicate'" "bad subcommand message"
expect_in "$tmp/err" "expected stats or clear" "bad subcommand hint"
run cache
expect_eq "$rc" 2 "no subcommand"
expect_in "$tmp/err" "usage: hearth cache stats" "no subcommand usage"
run cache --help
expect_eq "$rc" 0 "cache --help"
expect_in "$tmp/out" "usage: hearth cache stats" "cache --help"
run cache stats --help
expect_eq "$rc" 0 "stats --help"
expect_in "$tmp/out" "--cache-db PATH" "stats --help"
run cache clear --help
expect_eq "$rc" 0 "clear --help"
expect_in "$tmp/out" "--model-fingerprint FP" "clear --help"
run cache stats --cache-db "$db" --bogus
expect_eq "$rc" 2 "unknown option"
expect_in "$tmp/err" "unknown option '--bogus'" "unknown option message"
run cache stats --cache-db "$db" extra
expect_eq "$rc" 2 "extra argument"
expect_in "$tmp/err" "unexpected argument 'extra'" "extra argument message"
run cache clear --cache-db "$db" --model-fingerprint ""
expect_eq "$rc" 2 "empty fingerprint"
expect_in "$tmp/err" "--model-fingerprint is empty" "empty fingerprint message"
run --help
expect_in "$tmp/out" "cache" "hearth --help lists cache"

# ---- a garbage file is moved aside and replaced
junk="$tmp/junk.sqlite"
head -c 20000 /dev/urandom >"$junk"
run cache stats --cache-db "$junk" --json
expect_eq "$rc" 0 "stats on garbage"
expect_eq "$(jget '$.recovered')" 1 "garbage recovered"
expect_in "$tmp/err" "note:" "garbage note"
expect_in "$tmp/err" "moved it to $junk.corrupt-" "garbage note names the new place"
expect_eq "$(ls "$junk".corrupt-* 2>/dev/null | wc -l)" 1 "garbage kept aside"
expect_eq "$(sqlite3 "$junk" "PRAGMA integrity_check")" ok "fresh database after garbage"

# ---- a database from a newer Hearth is refused and left alone
future="$tmp/future.sqlite"
run cache stats --cache-db "$future"
sqlite3 "$future" "UPDATE meta SET value='42' WHERE key='schema_version'"
run cache stats --cache-db "$future"
expect_eq "$rc" 1 "newer schema exit code"
expect_in "$tmp/err" "schema version 42" "newer schema message"
expect_in "$tmp/err" "newer Hearth" "newer schema message"
expect_eq "$(sqlite3 "$future" "SELECT value FROM meta WHERE key='schema_version'")" 42 "newer schema untouched"
run cache clear --cache-db "$future"
expect_eq "$rc" 1 "clear on a newer schema"

# ---- a path that cannot be a database
run cache stats --cache-db "$tmp"
expect_eq "$rc" 1 "directory as database"
expect_in "$tmp/err" "hearth cache stats: " "directory as database message"

# ---- the default location follows $XDG_CACHE_HOME
XDG_CACHE_HOME="$tmp/xdg" run cache stats --json
expect_eq "$rc" 0 "default path"
expect_eq "$(jget '$.path')" "$tmp/xdg/hearth/prefix-cache.sqlite" "default path under XDG_CACHE_HOME"
[ -f "$tmp/xdg/hearth/prefix-cache.sqlite" ] && ok || bad "default database not created"

echo "test_cache_cli: $passes passed, $fails failed"
if [ "$fails" -eq 0 ]; then rm -rf "$tmp"; else echo "files kept in $tmp" >&2; fi
[ "$fails" -eq 0 ]
