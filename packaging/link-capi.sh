#!/bin/sh
# Turns the staticlib cargo built (LTO, no_std, panic=abort) into the two shipped libraries,
# both exporting exactly the dk_* functions:
#
#   libdaemonkit.a          one relocatable object: the daemonkit code plus the
#                           compiler_builtins members it needs (`ld -r`), every symbol but
#                           dk_* made local (`objcopy --keep-global-symbols`), so a program
#                           linking it statically gets no stray global such as __muldc3 or
#                           rust_eh_personality;
#   libdaemonkit.so.VERSION the same object linked with packaging/libdaemonkit.map (one
#                           version node, DAEMONKIT_0, only dk_* global), soname
#                           libdaemonkit.so.0, plus the .so.0 and .so links.
#
# The shared library is linked here rather than by cargo's cdylib because rustc always adds
# its own anonymous version script to a cdylib, which a named version node cannot be
# combined with. The linker is the one rustc uses (rust-lld where the toolchain ships it,
# else the system's ld with -z noseparate-code), so the size is what a cdylib would be.
#
# usage: packaging/link-capi.sh STATICLIB OUTDIR VERSION
set -eu
staticlib=$1 out=$2 version=$3
here=$(cd "$(dirname "$0")" && pwd)
map=$here/libdaemonkit.map
CC=${CC:-cc}
LD=${LD:-ld}
OBJCOPY=${OBJCOPY:-objcopy}
AR=${AR:-ar}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The dk_* functions the daemonkit object defines (the roots of the partial link).
nm -g --defined-only "$staticlib" 2>/dev/null | awk 'NF == 3 && $3 ~ /^dk_/ { print $3 }' \
    | sort -u > "$tmp/keep"
[ -s "$tmp/keep" ] || { echo "link-capi.sh: no dk_* symbol in $staticlib" >&2; exit 1; }

"$LD" -r -o "$tmp/daemonkit.o" $(sed 's/^/-u /' "$tmp/keep") "$staticlib"
# No unwind tables: nothing can unwind through this library (panic = "abort", every export
# is a non-unwinding extern "C" function), and they were 9.6 KiB of a 64 KiB budget. So a
# C++ exception thrown out of a supervisor callback, or a pthread_cancel of a thread inside
# a dk_* call, terminates the process instead of unwinding through our frames (documented
# in the README).
"$OBJCOPY" --keep-global-symbols="$tmp/keep" --remove-section=.eh_frame \
    --remove-section=.rela.eh_frame "$tmp/daemonkit.o" "$tmp/daemonkit-local.o"
others=$(nm -g --defined-only "$tmp/daemonkit-local.o" | awk '$3 !~ /^dk_/ { print $3 }')
[ -z "$others" ] || { echo "link-capi.sh: globals left besides dk_*: $others" >&2; exit 1; }

# rust-lld, as rustc itself links on this target, when the toolchain has it.
ldflags="-Wl,-z,noseparate-code"
if sysroot=$(rustc --print sysroot 2>/dev/null); then
    gccld=$(ls -d "$sysroot"/lib/rustlib/*/bin/gcc-ld 2>/dev/null | head -1 || true)
    if [ -n "$gccld" ] && [ -x "$gccld/ld.lld" ]; then
        ldflags="-B$gccld -fuse-ld=lld"
    fi
fi

mkdir -p "$out"
rm -f "$out/libdaemonkit.a"
"$AR" rcs "$out/libdaemonkit.a" "$tmp/daemonkit-local.o"
# shellcheck disable=SC2086 # $ldflags is a list of flags
"$CC" -shared -o "$out/libdaemonkit.so.$version" "$tmp/daemonkit-local.o" \
    $ldflags -Wl,-soname,libdaemonkit.so.0 -Wl,--version-script="$map" \
    -Wl,--gc-sections -Wl,--as-needed -Wl,--no-undefined -Wl,-z,relro,-z,now \
    -Wl,-z,noexecstack -Wl,--strip-debug -lc
ln -sf "libdaemonkit.so.$version" "$out/libdaemonkit.so.0"
ln -sf libdaemonkit.so.0 "$out/libdaemonkit.so"
