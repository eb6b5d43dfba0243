#!/usr/bin/env bash
# Getting daemonkit the way each language installs things, against a real `make install`
# to a non-default prefix (a temporary directory, not DESTDIR), from outside the
# repository (run by `make test`):
#
#  1. make install: the command runs, `man` finds the installed pages (daemonkit(1), a
#     per-function link in section 3), pkg-config reports the version, the completions
#     are there;
#  2. Perl, as CPAN does it: where the library is missing, Makefile.PL exits 0 without a
#     Makefile (N/A, not FAIL); with PKG_CONFIG_PATH at configure time only, perl
#     Makefile.PL && make && make test && make install, then a one-liner run from / with
#     no DAEMONKIT_LIB, LD_LIBRARY_PATH or PKG_CONFIG_PATH loads the installed library;
#  3. Zig: a consumer package outside bindings/zig (build.zig.zon path dependency, the
#     dk-lib-dir and shared options) builds against PREFIX/lib, static and shared, and runs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d /tmp/dk-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
prefix=$tmp/prefix
clean_env=(env -u DAEMONKIT_LIB -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u PERL5LIB -u DAEMONKIT_HEADER)

# 1. make install
if ! make -s install PREFIX="$prefix" > "$tmp/install.log" 2>&1; then
    bad "make install PREFIX=$prefix failed:"; tail -20 "$tmp/install.log"
    exit 1
fi
out=$("${clean_env[@]}" "$prefix/bin/daemonkit" --version 2>&1)
[ "$out" = "daemonkit $version" ] && echo "installed command: $prefix/bin/daemonkit --version: $out" \
    || bad "$prefix/bin/daemonkit --version: '$out'"
for page in daemonkit.1 daemonkit.3 dk_pidfile_open.3; do
    sec=${page##*.} name=${page%.*}
    if f=$(man -M "$prefix/share/man" -w "$sec" "$name" 2>&1) && [[ $f == "$prefix/share/man/"* ]] \
        && MANWIDTH=80 man -M "$prefix/share/man" "$sec" "$name" 2>/dev/null | grep -q "$name"; then
        echo "installed man page: man $sec $name -> $f"
    else
        bad "man -M $prefix/share/man $sec $name: $f"
    fi
done
pcv=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion daemonkit 2>&1)
[ "$pcv" = "$version" ] || bad "pkg-config --modversion daemonkit: '$pcv'"
for f in share/bash-completion/completions/daemonkit share/zsh/site-functions/_daemonkit; do
    [ -f "$prefix/$f" ] || bad "make install did not install $f"
done

# 2. Perl
cp -r bindings/perl "$tmp/perl-na"
rm -f "$tmp/perl-na/Makefile"
if existing=$(perl -MFFI::CheckLib=find_lib -e 'print find_lib(lib => "daemonkit")') && [ -n "$existing" ]; then
    bad "a libdaemonkit is installed on this machine ($existing): cannot check the N/A case"
else
    (cd "$tmp/perl-na" && "${clean_env[@]}" PKG_CONFIG_PATH=/nonexistent perl Makefile.PL > "$tmp/na.log" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [ ! -e "$tmp/perl-na/Makefile" ] && grep -q 'library not found: daemonkit' "$tmp/na.log"; then
        echo "Perl dist without the library: Makefile.PL exits 0 without a Makefile (N/A): $(head -1 "$tmp/na.log")"
    else
        bad "Perl dist without the library: exit $rc, Makefile: $(ls "$tmp/perl-na/Makefile" 2>&1): $(cat "$tmp/na.log")"
    fi
fi
cp -r bindings/perl "$tmp/perl"
rm -f "$tmp/perl/Makefile"
if (cd "$tmp/perl" && "${clean_env[@]}" PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
        perl Makefile.PL INSTALL_BASE="$tmp/perl5" > "$tmp/perl.log" 2>&1 \
    && make > "$tmp/perl.log" 2>&1 \
    && "${clean_env[@]}" CI="${CI:-}" DAEMONKIT_HEADER="$prefix/include/daemonkit.h" make test > "$tmp/perl-test.log" 2>&1 \
    && make install > "$tmp/perl.log" 2>&1); then
    echo "Perl dist: perl Makefile.PL && make && make test ($(grep -E '^Files=' "$tmp/perl-test.log")) && make install"
    if out=$(cd / && "${clean_env[@]}" perl -I"$tmp/perl5/lib/perl5" -MDaemonKit -e \
            'printf "DaemonKit %s, libdaemonkit %s, loaded from %s\n", $DaemonKit::VERSION, DaemonKit::version_string(), DaemonKit::FFI::loaded()' 2>&1) \
        && [[ $out == "DaemonKit $version, libdaemonkit $version, loaded from $prefix/lib/"* ]]; then
        echo "Perl one-liner, no variable set: $out"
    else
        bad "Perl one-liner against the installed dist: $out"
    fi
    meta=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["version"], m["license"])' "$tmp/perl/MYMETA.json")
    [ "$meta" = "v$version ['mit', 'apache_2_0']" ] || bad "Perl dist META: $meta"
else
    bad "Perl dist against $prefix:"; tail -20 "$tmp/perl.log" "$tmp/perl-test.log" 2>/dev/null
fi

# 3. Zig
mkdir -p "$tmp/zig-consumer"
rel=$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$root/bindings/zig" "$tmp/zig-consumer")
fingerprint=$(python3 -c 'import zlib; print(hex(zlib.crc32(b"dk_consumer") << 32 | 0x5eed1e55))')
cat > "$tmp/zig-consumer/build.zig.zon" <<EOF
.{
    .name = .dk_consumer,
    .version = "0.0.0",
    .fingerprint = $fingerprint,
    .minimum_zig_version = "0.17.1",
    .dependencies = .{
        .daemonkit = .{ .path = "$rel" },
    },
    .paths = .{ "build.zig", "build.zig.zon", "main.zig" },
}
EOF
cat > "$tmp/zig-consumer/build.zig" <<'EOF'
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const lib_dir = b.option([]const u8, "dk-lib-dir", "PREFIX/lib of make install") orelse "/usr/local/lib";
    const shared = b.option(bool, "shared", "link libdaemonkit.so") orelse false;
    const dk = b.dependency("daemonkit", .{
        .target = target,
        .optimize = optimize,
        .@"dk-lib-dir" = lib_dir,
        .shared = shared,
    });
    const exe_mod = b.createModule(.{
        .root_source_file = b.path("main.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
    });
    exe_mod.addImport("daemonkit", dk.module("daemonkit"));
    b.installArtifact(b.addExecutable(.{ .name = "dk-consumer", .root_module = exe_mod }));
}
EOF
cat > "$tmp/zig-consumer/main.zig" <<'EOF'
const std = @import("std");
const dk = @import("daemonkit");

pub fn main() !void {
    var diag: dk.Diagnostics = .{};
    const path = "/tmp/dk-zig-consumer.pid";
    const pf = dk.Pidfile.open(path, .{}, &diag) catch |err| {
        std.debug.print("{f}\n", .{diag});
        return err;
    };
    try pf.write();
    // A second open of the same file must be refused: the lock is ours.
    if (dk.Pidfile.open(path, .{}, &diag)) |other| {
        other.close();
        return error.SecondOpenSucceeded;
    } else |_| {}
    try pf.remove();
    const v = dk.version();
    std.debug.print("libdaemonkit {d}.{d}.{d}; {f}\n", .{ v.major, v.minor, v.patch, diag });
}
EOF
for mode in static shared; do
    opt=(); [ "$mode" = shared ] && opt=(-Dshared=true)
    rm -rf "$tmp/zig-consumer/zig-out"
    if (cd "$tmp/zig-consumer" && python3 -m ziglang build -Ddk-lib-dir="$prefix/lib" "${opt[@]}" > "$tmp/zig.log" 2>&1); then
        exe=$tmp/zig-consumer/zig-out/bin/dk-consumer
        deps=$(ldd "$exe" 2>&1 || true)
        if [ "$mode" = shared ] && [[ $deps != *"libdaemonkit.so.0 => $prefix/lib/libdaemonkit.so.0"* ]]; then
            bad "the shared Zig consumer does not load $prefix/lib/libdaemonkit.so.0: $deps"
        elif [ "$mode" = static ] && [[ $deps == *libdaemonkit* ]]; then
            bad "the static Zig consumer needs libdaemonkit.so: $deps"
        elif out=$(cd / && "${clean_env[@]}" "$exe" 2>&1) \
            && [[ $out == "libdaemonkit $version; pid file /tmp/dk-zig-consumer.pid: daemon already running (PID: "* ]]; then
            echo "Zig consumer ($mode, outside bindings/zig, dk-lib-dir=$prefix/lib): $out"
        else
            bad "the $mode Zig consumer: $out"
        fi
    else
        bad "the Zig consumer ($mode) does not build against $prefix/lib:"; tail -20 "$tmp/zig.log"
    fi
done

[ "$fail" -eq 0 ] && echo "install: ok" || echo "install: FAILED"
exit "$fail"
