#!/bin/sh
# gen_man.sh HEARTH_BIN VERSION OUT - write hearth(1) from the --help texts of
# the binary (`hearth --help` and `hearth COMMAND --help` for every command it
# lists), so the man page says exactly what --help says. Run at build time by
# packaging/package.cmake.
set -eu
bin=$1 ver=$2 out=$3
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"; }
{
    printf '.TH HEARTH 1 "" "hearth %s" "User Commands"\n' "$ver"
    printf '.SH NAME\nhearth \\- run open-weight LLMs (GGUF) on your own machine\n'
    printf '.SH SYNOPSIS\n.B hearth\nCOMMAND [options]\n.SH DESCRIPTION\n.nf\n'
    "$bin" --help | esc
    printf '.fi\n'
    for c in $("$bin" --help | sed -n 's/^  \([a-z][a-z]*\)  .*/\1/p'); do
        printf '.SH "HEARTH %s"\n.nf\n' "$(echo "$c" | tr a-z A-Z)"
        "$bin" "$c" --help 2>&1 | esc
        printf '.fi\n'
    done
    printf '.SH FILES\n.TP\n$XDG_DATA_HOME/hearth/models/\npulled models and their manifest (manifest.sqlite)\n'
    printf '.TP\n/usr/share/hearth/catalog.yaml\nthe names hearth pull knows\n'
} >"$out.tmp"
mv "$out.tmp" "$out"
