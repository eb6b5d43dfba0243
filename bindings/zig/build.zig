//! daemonkit for Zig: `zig build test` builds and checks the binding; other packages
//! depend on this one and import its `daemonkit` module.
//!
//!   -Ddk-lib-dir=DIR     where libdaemonkit.a / libdaemonkit.so are
//!                        (default: ../../target/lib, relative to this directory;
//!                        `make lib` in the repository builds them there; after `make
//!                        install`, pass PREFIX/lib)
//!   -Ddk-include-dir=DIR where daemonkit.h is, for the header check (default ../../include)
//!   -Dshared=true        link libdaemonkit.so (with an rpath) instead of libdaemonkit.a
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const lib_dir_opt = b.option([]const u8, "dk-lib-dir", "Directory holding libdaemonkit.{a,so} (default ../../target/lib)") orelse "../../target/lib";
    const inc_dir_opt = b.option([]const u8, "dk-include-dir", "Directory holding daemonkit.h (default ../../include)") orelse "../../include";
    const shared = b.option(bool, "shared", "Link libdaemonkit.so instead of libdaemonkit.a") orelse false;

    // Absolute, so that -L and the RUNPATH work from any directory (and from a package that
    // depends on this one).
    const lib_dir = absolute(b, lib_dir_opt);
    const inc_dir = absolute(b, inc_dir_opt);

    // The module other packages import: `@import("daemonkit")`.
    const mod = b.addModule("daemonkit", .{
        .root_source_file = b.path("src/daemonkit.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
    });
    mod.addLibraryPath(b.graph.cwdRelativePath(lib_dir));
    mod.linkSystemLibrary("daemonkit", .{
        .use_pkg_config = .no,
        .preferred_link_mode = if (shared) .dynamic else .static,
        // fail instead of silently linking the other kind
        .search_strategy = .no_fallback,
    });
    // `make lib` puts the soname link (libdaemonkit.so.0) next to the library.
    if (shared) {
        mod.addRPathSpecial(lib_dir);
    }

    // A small program the tests exec (upgrade, exec'd workers): it calls dk_ready/dk_fail.
    const helper = b.addExecutable(.{
        .name = "dk-zig-test-helper",
        .root_module = b.createModule(.{
            .root_source_file = b.path("src/test_helper.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
            .imports = &.{.{ .name = "daemonkit", .module = mod }},
        }),
    });

    const opts = b.addOptions();
    opts.addOptionPath("header_path", b.graph.cwdRelativePath(b.pathJoin(&.{ inc_dir, "daemonkit.h" })));
    opts.addOptionPath("helper_path", helper.getEmittedBin());
    opts.addOption(bool, "shared", shared);

    const filter = b.option([]const u8, "test-filter", "Run only the tests whose name contains this");
    const tests = b.addTest(.{
        .name = "daemonkit-zig-tests",
        .filters = if (filter) |f| b.allocator.dupe([]const u8, &.{f}) catch @panic("OOM") else &.{},
        .root_module = b.createModule(.{
            .root_source_file = b.path("src/tests.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
            .imports = &.{
                .{ .name = "daemonkit", .module = mod },
                .{ .name = "build_options", .module = opts.createModule() },
            },
        }),
    });
    const run_tests = b.addRunArtifact(tests);
    const test_step = b.step("test", "Run the binding's tests (header check, every wrapper with real calls)");
    test_step.dependOn(&run_tests.step);
}

/// A user-given directory made absolute (relative ones are relative to this build root).
fn absolute(b: *std.Build, p: []const u8) []const u8 {
    if (std.fs.path.isAbsolute(p)) return std.fs.path.resolvePosix(b.allocator, &.{p}) catch @panic("OOM");
    // This build root, absolute even when this package is a dependency of another one.
    const root = b.root.joinString(b.allocator, p) catch @panic("OOM");
    if (std.fs.path.isAbsolute(root)) return std.fs.path.resolvePosix(b.allocator, &.{root}) catch @panic("OOM");
    const cwd = std.process.currentPathAlloc(b.graph.io, b.allocator) catch @panic("cannot read the current directory");
    return std.fs.path.resolvePosix(b.allocator, &.{ cwd, root }) catch @panic("OOM");
}
