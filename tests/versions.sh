#!/usr/bin/env bash
# Release metadata (run by `make test`):
#  - one version number: the crate's (Cargo.toml) must be the C library's DK_VERSION (source
#    and header), the Perl dist's (every module's $VERSION, and what MakeMaker reads), the
#    Zig packages' (build.zig.zon) and both bindings' copy of DK_VERSION; the lock files
#    agree. packaging/set-version NEW changes them all;
#  - the licence texts the crate's `MIT OR Apache-2.0` requires ship with every package:
#    LICENSE-MIT and LICENSE-APACHE here, identical copies in the Zig package (listed in its
#    .paths with the README), both texts in the Perl dist's LICENSE (in its MANIFEST, with
#    Changes); CHANGELOG.md is in Keep a Changelog form.
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

# licences and changelogs
grep -q 'Permission is hereby granted, free of charge' LICENSE-MIT || { echo "FAIL: LICENSE-MIT is not the MIT licence"; fail=1; }
grep -q 'Apache License' LICENSE-APACHE && grep -q 'Version 2.0, January 2004' LICENSE-APACHE \
    || { echo "FAIL: LICENSE-APACHE is not the Apache License 2.0"; fail=1; }
grep -q '^license = "MIT OR Apache-2.0"$' Cargo.toml || { echo "FAIL: Cargo.toml's license"; fail=1; }
for f in LICENSE-MIT LICENSE-APACHE; do
    cmp -s "$f" "bindings/zig/$f" || { echo "FAIL: bindings/zig/$f differs from $f"; fail=1; }
done
paths=$(sed -n '/\.paths = \.{/,/}/p' bindings/zig/build.zig.zon | grep -oE '"[^"]+"' | tr -d '"')
for p in build.zig build.zig.zon src README.md LICENSE-MIT LICENSE-APACHE; do
    grep -qxF "$p" <<<"$paths" || { echo "FAIL: bindings/zig/build.zig.zon's .paths lacks $p"; fail=1; }
done
for p in $paths; do [ -e "bindings/zig/$p" ] || { echo "FAIL: .paths names a missing bindings/zig/$p"; fail=1; }; done
lic=$(cat bindings/perl/LICENSE)
for f in LICENSE-MIT LICENSE-APACHE; do
    [[ $lic == *"$(cat "$f")"* ]] || { echo "FAIL: bindings/perl/LICENSE lacks the text of $f"; fail=1; }
done
for f in LICENSE Changes; do
    grep -qxF "$f" bindings/perl/MANIFEST || { echo "FAIL: bindings/perl/MANIFEST lacks $f"; fail=1; }
done
grep -q "^$v " bindings/perl/Changes || { echo "FAIL: bindings/perl/Changes has no entry for $v"; fail=1; }
grep -q 'Keep a Changelog' CHANGELOG.md && grep -qE '^## \[(Unreleased|'"${v//./\\.}"')\]' CHANGELOG.md \
    || { echo "FAIL: CHANGELOG.md is not in Keep a Changelog form with an Unreleased or $v section"; fail=1; }
[ "$fail" -eq 0 ] && echo "  licences: LICENSE-MIT, LICENSE-APACHE; copies in bindings/zig (.paths) and bindings/perl/LICENSE; CHANGELOG.md, Changes"

[ "$fail" -eq 0 ] && echo "versions: all $v" || echo "versions: FAILED"
exit "$fail"
