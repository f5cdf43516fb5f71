#!/usr/bin/env bash
# test_package.sh - the .deb: `cpack -G DEB` in the build folder makes
# hearth_VERSION_ARCH.deb; `dpkg-deb --contents` lists the binary, man page,
# completions, catalog, config example and both systemd user units; the
# extracted binary prints version, commit and backends; the man page has a
# section per command (it is generated from --help); `systemd-analyze verify`
# accepts the units (when systemd-analyze exists); `systemd-socket-activate`
# starts `hearth serve` on a socket whose first request is answered (when the
# tool exists). `dpkg -i` runs only with HEARTH_TEST_DPKG_INSTALL=1 as root
# (it changes the machine: CI sets it, a developer's run does not).
# Needs HEARTH_BIN (set by ctest; the build folder is its parent's parent).
set -uo pipefail
BIN=${HEARTH_BIN:?HEARTH_BIN must point at the hearth binary}
BUILD=$(cd "$(dirname "$BIN")/.." && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL="$HERE/../../../shared/models/hearth-kjv-llama-q8_0.gguf"
for t in cpack dpkg-deb curl; do command -v $t >/dev/null || { echo "skipped: $t not found"; exit 0; }; done
tmp=$(mktemp -d /tmp/hearth-pkg-XXXXXX)
sa_pid=
cleanup() { [ -n "$sa_pid" ] && kill "$sa_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

(cd "$BUILD" && timeout 300 cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; bad "cpack failed"; }
deb=$(ls "$tmp/out"/hearth_*_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] && ok || { bad "no hearth_VERSION_ARCH.deb"; echo "test_package: $passes passed, $fails failed"; exit 1; }
dpkg-deb --contents "$deb" | awk '{print $6}' >"$tmp/contents"
for f in ./usr/bin/hearth ./usr/share/man/man1/hearth.1 ./usr/share/bash-completion/completions/hearth \
    ./usr/share/zsh/vendor-completions/_hearth ./usr/share/hearth/catalog.yaml \
    ./usr/share/doc/hearth/config.example.yaml ./usr/lib/systemd/user/hearth.service \
    ./usr/lib/systemd/user/hearth.socket; do
    grep -qxF "$f" "$tmp/contents" && ok || bad "$f not in the .deb"
done
dpkg-deb --field "$deb" Depends | grep -q libcurl4 && ok || bad "Depends does not declare libcurl4"

dpkg-deb -x "$deb" "$tmp/root"
ver=$("$tmp/root/usr/bin/hearth" --version)
echo "$ver" | grep -Eq '^hearth [0-9.]+ \(commit [0-9a-f]{7,}|unknown; backends: cpu' && ok || bad "--version: $ver"
for c in PULL LIST RM SERVE CHAT; do
    grep -q "^.SH \"HEARTH $c\"" "$tmp/root/usr/share/man/man1/hearth.1" && ok || bad "man page lacks HEARTH $c"
done
bash -n "$tmp/root/usr/share/bash-completion/completions/hearth" && ok || bad "bash completion does not parse"

if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/bin/hearth|$tmp/root/usr/bin/hearth|" "$tmp/root/usr/lib/systemd/user/hearth.service" >"$tmp/hearth.service"
    cp "$tmp/root/usr/lib/systemd/user/hearth.socket" "$tmp/hearth.socket"
    # the units name man:hearth(1): let man find the extracted page
    if MANPATH="$tmp/root/usr/share/man" timeout 60 systemd-analyze verify "$tmp/hearth.socket" "$tmp/hearth.service" >"$tmp/verify" 2>&1; then ok; else
        bad "systemd-analyze verify:"
        cat "$tmp/verify" >&2
    fi
else
    echo "note: systemd-analyze not installed; units not verified"
fi

if command -v systemd-socket-activate >/dev/null && [ -f "$MODEL" ]; then
    timeout 60 systemd-socket-activate -l "$tmp/s.sock" "$tmp/root/usr/bin/hearth" serve -m "$MODEL" --socket none \
        >"$tmp/sa.log" 2>&1 &
    sa_pid=$!
    for _ in $(seq 50); do [ -S "$tmp/s.sock" ] && break; sleep 0.1; done
    timeout 30 curl -s --unix-socket "$tmp/s.sock" http://localhost/api/tags >"$tmp/tags"
    grep -q '"models"' "$tmp/tags" && ok || { bad "first request on the activated socket:"; cat "$tmp/sa.log" >&2; }
    grep -q "socket systemd passed" "$tmp/sa.log" && ok || bad "serve did not take the passed socket"
else
    echo "note: systemd-socket-activate or the sample model missing; activation not tested"
fi

if [ "${HEARTH_TEST_DPKG_INSTALL:-}" = 1 ] && [ "$(id -u)" = 0 ]; then
    dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 && ok || { bad "dpkg -i:"; cat "$tmp/dpkg.log" >&2; }
    /usr/bin/hearth --version | grep -q "^hearth " && ok || bad "/usr/bin/hearth --version"
    man -w hearth >/dev/null 2>&1 || [ -f /usr/share/man/man1/hearth.1.gz ] || [ -f /usr/share/man/man1/hearth.1 ] && ok || bad "the man page installed"
    HOME=$tmp/home XDG_DATA_HOME=$tmp/home/data /usr/bin/hearth list >"$tmp/list" 2>&1 && ok || { bad "/usr/bin/hearth list:"; cat "$tmp/list" >&2; }
    dpkg -r hearth >"$tmp/dpkg-r.log" 2>&1 && [ ! -e /usr/bin/hearth ] && ok || { bad "dpkg -r:"; cat "$tmp/dpkg-r.log" >&2; }
else
    echo "note: dpkg -i skipped (set HEARTH_TEST_DPKG_INSTALL=1 and run as root)"
fi

echo "test_package: $passes passed, $fails failed"
[ "$fails" = 0 ]
