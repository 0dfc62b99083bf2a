#!/bin/sh
# Builds the installed libkmclient.a as one relocatable object in which only
# the public km_* functions are global: everything else (the protobuf-c
# generated code, the framing, kmc_ internals) is hidden at compile time and
# made local here, so it cannot collide with names in the programs that
# link the static library.
# Usage: make-static.sh OBJCOPY AR OUT.a IN.a...
set -eu
objcopy=$1 ar=$2 out=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -nostdlib -r -o "$tmp/kmclient.o" -Wl,--whole-archive "$@" -Wl,--no-whole-archive
"$objcopy" --localize-hidden "$tmp/kmclient.o"
rm -f "$out"
"$ar" rcs "$out" "$tmp/kmclient.o"
