#!/bin/sh
# Fails unless every function declared in the header is called in test_badinput.c.
# Usage: check_coverage.sh [header] [test source]
set -eu
here=$(dirname "$0")
header=${1:-$here/../../include/daemonkit.h}
src=${2:-$here/test_badinput.c}

# Declarations only: drop comment lines (doc comments mention functions too), then take
# every `dk_name(` left.
funcs=$(grep -v '^[[:space:]]*\(/\*\|\*\|//\)' "$header" | grep -oE 'dk_[a-z_]+\(' | tr -d '(' | sort -u)
n=$(printf '%s\n' "$funcs" | grep -c . || true)
if [ "$n" -lt 40 ]; then
    echo "check_coverage: only $n functions found in $header: the pattern is broken" >&2
    exit 1
fi
missing=""
for f in $funcs; do
    # a call: the name followed by `(`, not as part of a longer name
    if ! grep -qE "(^|[^a-z_])$f\(" "$src"; then
        missing="$missing $f"
    fi
done
if [ -n "$missing" ]; then
    echo "check_coverage: not called in $src:$missing" >&2
    exit 1
fi
echo "check_coverage: all $n functions of $(basename "$header") are called in $(basename "$src")"
