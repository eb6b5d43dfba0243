//! Workaround for a library bug (/tmp/dk-bugs/zig-eh-personality.md): libdaemonkit built as
//! shipped (`--no-default-features`: no_std, panic = "abort") still references
//! `rust_eh_personality` from libcore's unwind tables, and neither libdaemonkit.a nor
//! libdaemonkit.so defines it. GNU ld drops the reference with --gc-sections; Zig's linkers
//! keep it, and the dynamic loader refuses the .so. With panic = "abort" nothing ever
//! unwinds, so a stub that aborts is exact. It is weak: a library that defines the symbol
//! wins. build.zig links this object into everything that uses the daemonkit module (and an
//! executable exports it for the .so).
fn rustEhPersonality() callconv(.c) noreturn {
    @trap();
}

comptime {
    @export(&rustEhPersonality, .{ .name = "rust_eh_personality", .linkage = .weak });
}
