#!/usr/bin/env bash
# One version number: the crate's (Cargo.toml) must be the C library's DK_VERSION (source
# and header), the Perl dist's (every module's $VERSION, and what MakeMaker reads), the Zig
# packages' (build.zig.zon) and both bindings' copy of DK_VERSION; the lock files agree.
# packaging/set-version NEW changes them all. Run by `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
v=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IFS=. read -r major minor patch <<<"$v"
dec=$(( (major << 16) | (minor << 8) | patch ))
check() { # what, found
    if [ "$2" = "$3" ]; then echo "  $1: $2"; else echo "FAIL: $1 is '$2', want '$3'"; fail=1; fi
}
echo "Cargo.toml: $v"
check "DK_VERSION in src/capi/mod.rs" "$(( $(sed -n 's/^pub const DK_VERSION: u32 = \(0x[0-9a-fA-F]*\);/\1/p' src/capi/mod.rs) ))" "$dec"
check "DK_VERSION in include/daemonkit.h" "$(sed -n 's/^#define DK_VERSION \([0-9]*\)$/\1/p' include/daemonkit.h)" "$dec"
check "DK_VERSION_MAJOR in include/daemonkit.h" "$(sed -n 's/^#define DK_VERSION_MAJOR \([0-9]*\)$/\1/p' include/daemonkit.h)" "$major"
for pm in $(find bindings/perl/lib -name '*.pm' | sort); do
    check "\$VERSION in $pm" "$(sed -n "s/^our \$VERSION = '\(.*\)';/\1/p" "$pm")" "$v"
done
check "MakeMaker's version of the Perl dist" \
    "$(cd bindings/perl && perl -MExtUtils::MakeMaker -e 'print MM->parse_version("lib/DaemonKit.pm")')" "$v"
check "DK_VERSION in DaemonKit.pm" "$(sed -n 's/^    DK_VERSION  *=> \([0-9]*\),/\1/p' bindings/perl/lib/DaemonKit.pm)" "$dec"
check "DK_VERSION in daemonkit.zig" "$(sed -n 's/^    pub const DK_VERSION = \([0-9]*\);/\1/p' bindings/zig/src/daemonkit.zig)" "$dec"
for zon in bindings/zig/build.zig.zon examples/zig/build.zig.zon; do
    check ".version in $zon" "$(sed -n 's/^    \.version = "\(.*\)",/\1/p' "$zon")" "$v"
done
for lock in Cargo.lock fuzz/Cargo.lock; do
    check "daemonkit in $lock" "$(awk '/^name = "daemonkit"$/ { getline; gsub(/version = |"/, ""); print }' "$lock")" "$v"
done
[ "$fail" -eq 0 ] && echo "versions: all $v" || echo "versions: FAILED"
exit "$fail"
