#!/usr/bin/env bash
# `make deb`: builds the Debian packages libdaemonkit0, libdaemonkit-dev, daemonkit and
# libdaemonkit-perl into target/deb/, then runs lintian on them (errors fail the build).
#
# The source tree (the files git tracks or would track) is copied to
# target/deb/src/daemonkit-VERSION/ with packaging/debian/ as debian/ and a debian/changelog
# made from Cargo.toml's version, then built there with `dpkg-buildpackage -b`: the
# checkout itself is never modified. Needs debhelper, dpkg-dev, lintian (tests/setup.sh
# installs them) and cargo (rustup's; Debian 12's rustc is too old).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out=$root/target/deb
stage=$out/src/daemonkit-$version

for tool in dpkg-buildpackage dh lintian cargo git; do
    command -v "$tool" >/dev/null || { echo "build-deb: $tool not found (tests/setup.sh installs the Debian ones)" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$stage"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"    # (a tracked file deleted in the work tree is skipped)
done | tar -c --null -T - -f - | tar -x -C "$stage"
cp -r packaging/debian "$stage/debian"

# debian/changelog from the one version number, dated by the last commit (reproducible).
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
maintainer=$(sed -n 's/^Maintainer: //p' packaging/debian/control)
cat > "$stage/debian/changelog" <<EOF
daemonkit ($version) unstable; urgency=medium

  * Upstream release $version; see CHANGELOG.md.

 -- $maintainer  $(date -u -R -d "@$epoch")
EOF

(cd "$stage" && dpkg-buildpackage -b -us -uc > "$out/build.log" 2>&1) || {
    echo "build-deb: dpkg-buildpackage failed; the end of $out/build.log:" >&2
    tail -40 "$out/build.log" >&2
    exit 1
}
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"

echo "built in target/deb:"
for deb in "$out"/*.deb; do
    echo "  $(basename "$deb"): $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version), $(dpkg-deb -c "$deb" | grep -vc '/$') files"
done
# lintian: errors fail; warnings and the rest are shown. Its temporary files (MLDBM
# caches it leaves behind) go to a directory of ours, removed after it.
mkdir -p "$out/lintian-tmp"
lintian_ok=0
TMPDIR="$out/lintian-tmp" lintian --fail-on error --display-info "$out"/*.changes \
    > "$out/lintian.log" 2>&1 && lintian_ok=1
rm -rf "$out/lintian-tmp"
if [ "$lintian_ok" = 1 ]; then
    echo "lintian: no errors ($(grep -c '^W:' "$out/lintian.log" || true) warnings, $(grep -c '^I:' "$out/lintian.log" || true) info)"
    sed 's/^/  /' "$out/lintian.log"
else
    echo "lintian found errors:" >&2
    cat "$out/lintian.log" >&2
    exit 1
fi
