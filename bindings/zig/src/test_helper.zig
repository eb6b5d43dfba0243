//! A tiny program the binding's tests exec (never installed):
//!
//!   dk-zig-test-helper upgrade PIDFILE   a new generation: adopt the listeners and the
//!                                        locked PID file, write its pid, ready(), wait for TERM
//!   dk-zig-test-helper fail CODE MSG     report a startup failure with fail(CODE, MSG)
//!   dk-zig-test-helper worker            an exec'd supervisor worker: ready(), wait for TERM
//!   dk-zig-test-helper environ           std.debug.print after the library unset variables
const std = @import("std");
const dk = @import("daemonkit");

pub fn main(init: std.process.Init.Minimal) u8 {
    const argv = init.args.vector;
    if (argv.len < 2) return 2;
    const mode = std.mem.span(argv[1]);
    if (std.mem.eql(u8, mode, "upgrade") and argv.len == 3) {
        const act = dk.listen.fds(.{ .unset = true }, null) catch return 10;
        var diag: dk.Diagnostics = .{};
        const pf = dk.Pidfile.open(std.mem.span(argv[2]), .{}, &diag) catch {
            std.debug.print("helper: {f}\n", .{diag});
            return 11;
        };
        const keep: []const dk.fd_t = if (act.count > 0) &.{act.fd(0)} else &.{};
        const role = dk.daemonize(.{ .foreground = true, .keep_stdio = true, .change_dir = false, .keep = keep }, null) catch return 12;
        pf.write() catch return 13;
        if (role != .upgrade or act.count < 1) {
            dk.failFmt(20, "helper: role={t} listen_fds={d}", .{ role, act.count });
            return 20;
        }
        _ = dk.signal.open(&.{ .TERM, .INT }) catch return 14;
        dk.ready() catch return 15;
        _ = dk.signal.wait(20_000) catch return 16;
        pf.close();
        return 0;
    }
    if (std.mem.eql(u8, mode, "fail") and argv.len == 4) {
        const code = std.fmt.parseInt(u8, std.mem.span(argv[2]), 10) catch return 2;
        _ = dk.daemonize(.{ .foreground = true, .keep_stdio = true, .change_dir = false }, null) catch return 12;
        dk.fail(code, std.mem.span(argv[3]));
        return code;
    }
    if (std.mem.eql(u8, mode, "worker")) {
        // an exec'd worker runs the normal startup: daemonize() picks up the readiness fd
        const act = dk.listen.fds(.{ .unset = true }, null) catch return 10;
        if (act.count < 1) return 17;
        _ = dk.daemonize(.{ .foreground = true, .keep_stdio = true, .change_dir = false, .keep = &.{act.fd(0)} }, null) catch return 12;
        _ = dk.signal.open(&.{.TERM}) catch return 14;
        dk.ready() catch return 15;
        _ = dk.signal.wait(20_000) catch return 16;
        return 0;
    }
    if (std.mem.eql(u8, mode, "environ")) {
        // started with LISTEN_PID/LISTEN_FDS/DAEMONKIT_REEXEC in its environment: after the
        // library unset them, std.debug.print must still work (see primeEnviron)
        const act = dk.listen.fds(.{ .unset = true }, null) catch return 10;
        _ = dk.daemonize(.{ .foreground = true, .keep_stdio = true, .change_dir = false, .keep = &.{act.fd(0)} }, null) catch return 12;
        std.debug.print("environ ok: {d} fd(s)\n", .{act.count});
        return if (act.count == 1) 0 else 17;
    }
    return 2;
}
