//! dk-hello, the Zig example server: `zig build` → zig-out/bin/dk-hello.
//!
//! It uses the binding in ../../bindings/zig (a path dependency in build.zig.zon), which
//! links libdaemonkit statically by default:
//!
//!   cd ../.. && make lib                                     # the library first (target/lib)
//!   python3 -m ziglang build                                   # zig-out/bin/dk-hello
//!   python3 -m ziglang build -Dshared=true                     # against libdaemonkit.so
//!   python3 -m ziglang build -Ddk-lib-dir=/elsewhere/release   # another library build
//!   python3 -m ziglang build test                              # the config parser's tests
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const shared = b.option(bool, "shared", "Link libdaemonkit.so instead of libdaemonkit.a") orelse false;
    const lib_dir = b.option([]const u8, "dk-lib-dir", "Directory holding libdaemonkit.{a,so} (default: the binding's, ../../target/lib)");

    const dk = if (lib_dir) |d|
        b.dependency("daemonkit", .{ .target = target, .optimize = optimize, .shared = shared, .@"dk-lib-dir" = d })
    else
        b.dependency("daemonkit", .{ .target = target, .optimize = optimize, .shared = shared });

    const mod = b.createModule(.{
        .root_source_file = b.path("src/main.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .imports = &.{.{ .name = "daemonkit", .module = dk.module("daemonkit") }},
    });
    const exe = b.addExecutable(.{ .name = "dk-hello", .root_module = mod });
    // -Dshared: the binding's install step makes the soname link libdaemonkit.so.0.
    if (shared) exe.step.dependOn(dk.builder.getInstallStep());
    b.installArtifact(exe);

    const run = b.addRunArtifact(exe);
    run.addPassthruArgs();
    b.step("run", "Run dk-hello (args after --)").dependOn(&run.step);

    const tests = b.addTest(.{ .root_module = mod });
    b.step("test", "Run the example's unit tests").dependOn(&b.addRunArtifact(tests).step);
}
