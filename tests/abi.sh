#!/usr/bin/env bash
# ABI guard for the shipped libraries (run by `make test` after `make lib`):
#
#  1. the .so exports exactly the symbols committed in packaging/debian/libdaemonkit0.symbols
#     (name@version; the list changes only on purpose: edit it in the same commit), all in
#     one version node, DAEMONKIT_0, with soname libdaemonkit.so.0;
#  2. every function declared in include/daemonkit.h is exported, and nothing else;
#  3. glibc baseline: no symbol needs a glibc newer than 2.28 (Debian 10/11, RHEL 8);
#  4. the .a defines no global symbol but the same dk_* functions.
#
# usage: tests/abi.sh [LIBDIR]   (default target/lib)
set -uo pipefail
cd "$(dirname "$0")/.."
libdir=${1:-target/lib}
so=$(readlink -f "$libdir/libdaemonkit.so.0")
a=$libdir/libdaemonkit.a
list=packaging/debian/libdaemonkit0.symbols
baseline=2.28
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -f "$so" ] && [ -f "$a" ] || { echo "FAIL: no $libdir/libdaemonkit.so.0 or .a (make lib)"; exit 1; }

# 1. the exported list, against the committed one
objdump -T "$so" | awk '$2 == "g" && $4 != "*UND*" { print $(NF) "@" $(NF-1) }' | sort > "$tmp/exported"
awk '/^ / { print $1 }' "$list" | sort > "$tmp/committed"
if ! diff -u "$tmp/committed" "$tmp/exported" > "$tmp/diff"; then
    bad "the exported symbols differ from $list (- committed, + built):"; sed -n '3,$p' "$tmp/diff"
else
    echo "exported: $(grep -c '^dk_' "$tmp/exported") dk_* functions, as committed in $list"
fi
nodes=$(readelf -V "$so" | awk '/^Version definition section/ { d = 1; next } /^Version (needs|symbols)/ { d = 0 }
                                  d && /Name:/ && !/BASE/ { for (i = 1; i <= NF; i++) if ($i == "Name:") print $(i+1) }')
[ "$nodes" = "DAEMONKIT_0" ] && echo "version nodes: $nodes" || bad "version nodes: '${nodes//$'\n'/ }' (want exactly DAEMONKIT_0)"
others=$(grep -v '@DAEMONKIT_0$' "$tmp/exported" || true)
[ -z "$others" ] || bad "exported outside DAEMONKIT_0: $others"
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libdaemonkit.so.0" ] && echo "soname: $soname" || bad "soname '$soname'"

# 2. the header's functions == the exported functions
tr '\n' ' ' < include/daemonkit.h | grep -oE '[a-z_0-9*]+ \**dk_[a-z_0-9]+\(' | grep -oE 'dk_[a-z_0-9]+' \
    | sort -u > "$tmp/header"
sed -n 's/@DAEMONKIT_0$//p' "$tmp/exported" | grep '^dk_' > "$tmp/exported-names"
if diff -u "$tmp/header" "$tmp/exported-names" > "$tmp/diff"; then
    echo "header: all $(wc -l < "$tmp/header") functions of include/daemonkit.h exported, nothing else"
else
    bad "include/daemonkit.h (-) and the exports (+) differ:"; sed -n '3,$p' "$tmp/diff"
fi

# 3. glibc baseline
newest=$(objdump -T "$so" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -uV | tail -1)
too_new=$(objdump -T "$so" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\(?GLIBC_[0-9.]+\)?$/) { v = $i; gsub(/[()]|GLIBC_/, "", v); print v, $NF } }' \
          | while read -r v sym; do
                [ "$(printf '%s\n%s\n' "$v" "$baseline" | sort -V | tail -1)" = "$baseline" ] || echo "$sym@GLIBC_$v"
            done)
if [ -z "$newest" ]; then
    bad "no GLIBC_ version found in objdump -T $so"
elif [ -n "$too_new" ]; then
    bad "symbols newer than GLIBC_$baseline: $too_new"
else
    echo "glibc: newest symbol version GLIBC_$newest (baseline GLIBC_$baseline)"
fi

# 4. the static library
nm -g --defined-only "$a" | awk 'NF == 3 { print $3 }' | sort > "$tmp/static"
stray=$(grep -v '^dk_' "$tmp/static" || true)
if [ -n "$stray" ]; then
    bad "libdaemonkit.a defines $(echo "$stray" | wc -l) non-dk_ globals: $(echo $stray)"
elif ! diff -q "$tmp/static" "$tmp/exported-names" >/dev/null; then
    bad "libdaemonkit.a and libdaemonkit.so define different dk_* functions"
else
    echo "static: libdaemonkit.a defines only the same $(wc -l < "$tmp/static") dk_* globals"
fi

[ "$fail" -eq 0 ] && echo "ABI guard: ok" || echo "ABI guard: FAILED"
exit "$fail"
