//! daemonkit for Zig: process plumbing for long-running servers.
//!
//! Two layers:
//!
//! - `c`: the C ABI of `include/daemonkit.h`, declared by hand with `extern fn` (Zig 0.17 has
//!   no `@cImport`). `zig build test` parses the header and fails when a function or a
//!   `DK_*` constant has no declaration here, or when a return or parameter type differs.
//! - the idiomatic layer below it: Zig error sets instead of negative errnos, slices instead
//!   of pointer + length, `std.posix.SIG` instead of signal numbers, handles with methods,
//!   and a supervisor that takes a Zig worker function.
//!
//! Errors: every fallible wrapper returns `Error!T`. Calls whose failure deserves a message
//! naming the object (a PID file, a user, an address, a log file, an upgrade) accept an
//! optional `*Diagnostics` that receives the errno, the object and, where there is one, the
//! other instance's pid or the new generation's message; print it with `{f}`:
//!
//!     var diag: dk.Diagnostics = .{};
//!     const pf = dk.Pidfile.open("/run/app.pid", .{}, &diag) catch {
//!         std.debug.print("{f}\n", .{diag}); // pid file /run/app.pid: daemon already running (PID: 4242)
//!         return 1;
//!     };
//!
//! The canonical startup order (see examples/README.md): parse config → open+lock PID file
//! → bind listeners → `daemonize` → write pid → drop privileges → signals → serve →
//! `ready()`.
const std = @import("std");

pub const fd_t = std.posix.fd_t;
pub const pid_t = std.posix.pid_t;
/// Signals as Zig names them (`.TERM`, `.HUP`, …); non-exhaustive, so any number fits.
pub const Signal = std.posix.SIG;

// ---------------------------------------------------------------------------------------
// The C ABI, declared by hand. Every pointer the C side may receive as NULL is optional
// here; the header check renders these types back to C and compares them with the header.

pub const c = struct {
    pub const dk_pidfile = opaque {};
    pub const dk_supervisor = opaque {};
    pub const dk_worker_fn = *const fn (ctx: ?*anyopaque, index: u32) callconv(.c) c_int;
    pub const dk_hook_fn = *const fn (ctx: ?*anyopaque, index: u32) callconv(.c) void;
    pub const dk_event_fn = *const fn (ctx: ?*anyopaque, kind: c_int, pid: i32, value: i32) callconv(.c) void;
    pub const dk_stdio_fn = *const fn (ctx: ?*anyopaque, index: u32) callconv(.c) c_int;

    pub const DK_VERSION = 256;
    pub const DK_VERSION_MAJOR = 0;
    pub const DK_PIDFILE_RUNNING = 1;
    pub const DK_PIDFILE_STALE = 0;
    pub const DK_PIDFILE_FOREIGN = 2;
    pub const DK_ERR_PIDFILE_FOREIGN = -16;
    pub const DK_ERR_UNKNOWN_USER = -3;
    pub const DK_ERR_UNKNOWN_GROUP = -2;
    pub const DK_ERR_NOT_ROOT = -1;
    pub const DK_ERR_VERIFY = -131;
    pub const DK_PRIVILEGES_NO_NEW_PRIVS: u32 = 1;
    pub const DK_PRIVILEGES_DROP_BOUNDING: u32 = 2;
    pub const DK_RLIM_INFINITY = std.math.maxInt(u64);
    pub const DK_RLIMIT_CORE = 4;
    pub const DK_RLIMIT_NPROC = 6;
    pub const DK_RLIMIT_NOFILE = 7;
    pub const DK_RLIMIT_AS = 9;
    pub const DK_LOG_STDOUT = 1;
    pub const DK_LOG_STDERR = 2;
    pub const DK_SIGNAL_NO_RESTART = 1;
    pub const DK_LISTEN_REUSEPORT = 1;
    pub const DK_LISTEN_INHERIT = 2;
    pub const DK_LISTEN_FDS_UNSET = 1;
    pub const DK_LISTEN_FDS_START = 3;
    pub const DK_DAEMON_FOREGROUND = 1;
    pub const DK_DAEMON_KEEP_STDIO = 2;
    pub const DK_DAEMON_NO_CLOSE_FDS = 4;
    pub const DK_DAEMON_NO_CHDIR = 8;
    pub const DK_DAEMON_NO_SIGNAL_RESET = 16;
    pub const DK_ROLE_DAEMON = 1;
    pub const DK_ROLE_FOREGROUND = 2;
    pub const DK_ROLE_UPGRADE = 3;
    pub const DK_EVENT_SPAWNED = 1;
    pub const DK_EVENT_EXITED = 2;
    pub const DK_EVENT_RESPAWN_DELAYED = 3;
    pub const DK_EVENT_WORKER_READY = 4;
    pub const DK_EVENT_READY = 5;
    pub const DK_EVENT_RELOADING = 6;
    pub const DK_EVENT_RELOADED = 7;
    pub const DK_EVENT_STOPPING = 8;
    pub const DK_EVENT_KILLED = 9;
    pub const DK_EVENT_UPGRADE_STARTED = 10;
    pub const DK_EVENT_UPGRADE_READY = 11;
    pub const DK_EVENT_UPGRADE_FAILED = 12;
    pub const DK_EVENT_LOG_REOPENED = 13;
    pub const DK_EVENT_WORKERS_CHANGED = 14;
    pub const DK_EVENT_WORKER_FAILED = 15;
    pub const DK_EVENT_RELOAD_FAILED = 16;
    pub const DK_EVENT_GAVE_UP = 17;
    pub const DK_SUPERVISOR_GAVE_UP = 2;
    pub const DK_SUPERVISOR_REAP_ALL = 1;
    pub const DK_SUPERVISOR_ONCE = 2;
    pub const DK_SUPERVISOR_SIGNAL_GROUP = 4;
    pub const DK_SUPERVISOR_STOPPED = 0;
    pub const DK_SUPERVISOR_UPGRADED = 1;
    pub const DK_SUPERVISOR_MAX_WORKERS = 256;

    pub extern fn dk_version() u32;
    pub extern fn dk_strerror(err: c_int) [*:0]const u8;

    pub extern fn dk_pidfile_open(path: ?[*:0]const u8, mode: u32, flags: u32, out: ?*?*dk_pidfile, other_pid: ?*i32) c_int;
    pub extern fn dk_pidfile_write(pf: ?*dk_pidfile) c_int;
    pub extern fn dk_pidfile_fd(pf: ?*const dk_pidfile) c_int;
    pub extern fn dk_pidfile_close(pf: ?*dk_pidfile) c_int;
    pub extern fn dk_pidfile_remove(pf: ?*dk_pidfile) c_int;
    pub extern fn dk_pidfile_check(path: ?[*:0]const u8, pid_out: ?*i32) c_int;
    pub extern fn dk_pidfile_kill(path: ?[*:0]const u8, sig: c_int, pid_out: ?*i32) c_int;

    pub extern fn dk_privileges_drop(user: ?[*:0]const u8, group: ?[*:0]const u8, flags: u32) c_int;
    pub extern fn dk_privileges_drop_caps(user: ?[*:0]const u8, group: ?[*:0]const u8, flags: u32, keep: u64) c_int;
    pub extern fn dk_cap_from_name(name: ?[*:0]const u8) c_int;
    pub extern fn dk_user_lookup(user: ?[*:0]const u8, uid_out: ?*u32, gid_out: ?*u32) c_int;
    pub extern fn dk_group_lookup(group: ?[*:0]const u8, gid_out: ?*u32) c_int;

    pub extern fn dk_rlimit_get(resource: c_int, soft: ?*u64, hard: ?*u64) c_int;
    pub extern fn dk_rlimit_set(resource: c_int, soft: u64, hard: u64) c_int;
    pub extern fn dk_rlimit_nofile(wanted: u64, obtained: ?*u64) c_int;
    pub extern fn dk_rlimit_disable_core() c_int;

    pub extern fn dk_fd_set_cloexec(fd: c_int, on: c_int) c_int;
    pub extern fn dk_fd_close_from(first: c_int, keep: ?[*]const c_int, n_keep: usize) c_int;

    pub extern fn dk_log_open(path: ?[*:0]const u8, which: u32) c_int;
    pub extern fn dk_log_reopen() c_int;

    pub extern fn dk_signal_open(sigs: ?[*]const c_int, n: usize) c_int;
    pub extern fn dk_signal_open_flags(sigs: ?[*]const c_int, n: usize, flags: u32) c_int;
    pub extern fn dk_signal_next() c_int;
    pub extern fn dk_signal_wait(timeout_ms: c_int) c_int;
    pub extern fn dk_signal_close() c_int;
    pub extern fn dk_signal_reset_child() c_int;
    pub extern fn dk_signal_ignore_sigpipe() c_int;

    pub extern fn dk_listen_tcp(addr: ?[*:0]const u8, backlog: c_int, flags: u32) c_int;
    pub extern fn dk_listen_unix(path: ?[*:0]const u8, mode: u32, backlog: c_int, flags: u32) c_int;
    pub extern fn dk_socket_port(fd: c_int) c_int;
    pub extern fn dk_socket_name(fd: c_int, buf: ?[*]c_char, len: usize) c_int;
    pub extern fn dk_listen_fds(flags: u32, names: ?[*]c_char, names_len: usize) c_int;

    pub extern fn dk_notify(state: ?[*:0]const u8) c_int;
    pub extern fn dk_notify_reloading() c_int;
    pub extern fn dk_notify_stopping() c_int;
    pub extern fn dk_notify_fd(fd: c_int) c_int;
    pub extern fn dk_watchdog_usec(usec: ?*u64) c_int;

    pub extern fn dk_fd_send(sock: c_int, data: ?[*]const u8, len: usize, fds: ?[*]const c_int, n_fds: usize) c_int;
    pub extern fn dk_fd_recv(sock: c_int, buf: ?[*]u8, len: usize, fds: ?[*]c_int, n_fds: ?*usize) c_int;

    pub extern fn dk_daemonize(flags: u32, keep: ?[*]const c_int, n_keep: usize, chdir_path: ?[*:0]const u8, umask_value: c_int, timeout_ms: u32) c_int;
    pub extern fn dk_ready() c_int;
    pub extern fn dk_fail(code: c_int, msg: ?[*:0]const u8) c_int;
    pub extern fn dk_reexec(argv: ?[*:null]const ?[*:0]const u8, fds: ?[*]const c_int, n_fds: usize, names: ?[*:0]const u8, pf: ?*const dk_pidfile) c_int;
    pub extern fn dk_upgrade(argv: ?[*:null]const ?[*:0]const u8, fds: ?[*]const c_int, n_fds: usize, names: ?[*:0]const u8, pf: ?*dk_pidfile, timeout_ms: u32, msg: ?[*]c_char, msg_len: usize) c_int;

    pub extern fn dk_supervisor_new(out: ?*?*dk_supervisor) c_int;
    pub extern fn dk_supervisor_free(sv: ?*dk_supervisor) c_int;
    pub extern fn dk_supervisor_set_workers(sv: ?*dk_supervisor, n: u32) c_int;
    pub extern fn dk_supervisor_set_graceful_timeout(sv: ?*dk_supervisor, ms: u32) c_int;
    pub extern fn dk_supervisor_set_ready_timeout(sv: ?*dk_supervisor, ms: u32) c_int;
    pub extern fn dk_supervisor_set_worker(sv: ?*dk_supervisor, f: ?dk_worker_fn, ctx: ?*anyopaque) c_int;
    pub extern fn dk_supervisor_set_exec(sv: ?*dk_supervisor, argv: ?[*:null]const ?[*:0]const u8) c_int;
    pub extern fn dk_supervisor_set_post_fork(sv: ?*dk_supervisor, f: ?dk_hook_fn, ctx: ?*anyopaque) c_int;
    pub extern fn dk_supervisor_set_event(sv: ?*dk_supervisor, f: ?dk_event_fn, ctx: ?*anyopaque) c_int;
    pub extern fn dk_supervisor_add_listener(sv: ?*dk_supervisor, fd: c_int) c_int;
    pub extern fn dk_supervisor_set_listen_names(sv: ?*dk_supervisor, names: ?[*:0]const u8) c_int;
    pub extern fn dk_supervisor_set_pidfile(sv: ?*dk_supervisor, pf: ?*dk_pidfile) c_int;
    pub extern fn dk_supervisor_set_upgrade(sv: ?*dk_supervisor, argv: ?[*:null]const ?[*:0]const u8, timeout_ms: u32) c_int;
    pub extern fn dk_supervisor_run(sv: ?*dk_supervisor) c_int;
    pub extern fn dk_supervisor_add_listener_pair(sv: ?*dk_supervisor, a: c_int, b: c_int) c_int;
    pub extern fn dk_supervisor_add_listener_slots(sv: ?*dk_supervisor, fds: ?[*]const c_int, n: u32) c_int;
    pub extern fn dk_supervisor_set_stop_signal(sv: ?*dk_supervisor, sig: c_int) c_int;
    pub extern fn dk_supervisor_set_restart(sv: ?*dk_supervisor, max_backoff_ms: u32, give_up: u32, window_ms: u32) c_int;
    pub extern fn dk_supervisor_set_flags(sv: ?*dk_supervisor, flags: u32) c_int;
    pub extern fn dk_supervisor_set_stdio(sv: ?*dk_supervisor, f: ?dk_stdio_fn, ctx: ?*anyopaque) c_int;
    pub extern fn dk_supervisor_exit_status(sv: ?*dk_supervisor) c_int;
    pub extern fn dk_event_describe(kind: c_int, pid: i32, value: i32, buf: ?[*]c_char, len: usize) c_int;
};

// ---------------------------------------------------------------------------------------
// Errors

/// Every failure of the idiomatic layer. Most names stand for one errno (see `errnoOf`);
/// a few are specific to a call (`AlreadyRunning`, `UnknownUser`, …).
pub const Error = error{
    /// `Pidfile.open`: a live instance holds the lock (its pid: `Diagnostics.pid`).
    AlreadyRunning,
    /// `privileges.drop`/`lookupUser`: no such user.
    UnknownUser,
    /// `privileges.drop`/`lookupGroup`: no such group.
    UnknownGroup,
    /// `privileges.drop`: not running as root (nothing changed).
    NotRoot,
    /// `privileges.drop`: the ids changed but did not verify: exit at once.
    VerifyFailed,
    /// `Pidfile.kill`: nobody holds the PID file's lock (stale file; nobody was signalled).
    NotRunning,
    /// `Pidfile.open`/`kill`: the PID file is locked, but not by the process whose pid it
    /// holds (another process took a stale file's lock); that pid (`Diagnostics.pid`) was
    /// not signalled.
    LockedByOther,
    /// `Pidfile.kill`: the holder has not written its pid yet.
    PidNotWritten,
    /// `Pidfile.remove`: this process does not own the file (nothing unlinked).
    NotOwner,
    /// `upgrade`: the new generation failed or exited before it was ready.
    UpgradeFailed,
    /// `upgrade`: the new generation was not ready in time.
    TimedOut,
    InvalidArgument,
    BadFileDescriptor,
    NameTooLong,
    AccessDenied,
    PermissionDenied,
    FileNotFound,
    SymLinkLoop,
    IsDir,
    OutOfMemory,
    AddressInUse,
    AddressNotAvailable,
    NoSpaceLeft,
    BufferTooSmall,
    NotSocket,
    AddressFamilyNotSupported,
    ConnectionRefused,
    WouldBlock,
    MessageTooLong,
    BrokenPipe,
    InputOutput,
    /// Another errno; `Diagnostics.errno` has it when a diagnostics struct was given.
    Unexpected,
};

const E = std.posix.E;

/// Maps a negative return code to an error, with the common errno names.
pub fn errorFromCode(rc: c_int) Error {
    const e: E = @fromBackingInt(@as(u16, @intCast(@min(-@as(i64, rc), 0xffff))));
    return switch (e) {
        .INVAL => error.InvalidArgument,
        .BADF => error.BadFileDescriptor,
        .NAMETOOLONG => error.NameTooLong,
        .ACCES => error.AccessDenied,
        .PERM => error.PermissionDenied,
        .NOENT => error.FileNotFound,
        .LOOP => error.SymLinkLoop,
        .ISDIR => error.IsDir,
        .NOMEM => error.OutOfMemory,
        .ADDRINUSE => error.AddressInUse,
        .ADDRNOTAVAIL => error.AddressNotAvailable,
        .NOSPC => error.NoSpaceLeft,
        .RANGE => error.BufferTooSmall,
        .NOTSOCK => error.NotSocket,
        .AFNOSUPPORT => error.AddressFamilyNotSupported,
        .CONNREFUSED => error.ConnectionRefused,
        .AGAIN => error.WouldBlock,
        .MSGSIZE => error.MessageTooLong,
        .PIPE => error.BrokenPipe,
        .IO => error.InputOutput,
        .TIMEDOUT => error.TimedOut,
        .CANCELED => error.UpgradeFailed,
        .EXIST => error.AlreadyRunning,
        .SRCH => error.NotRunning,
        .BUSY => error.LockedByOther,
        .NOTRECOVERABLE => error.VerifyFailed,
        else => error.Unexpected,
    };
}

/// The positive errno an error stands for (as the library returned it), or null for
/// `Unexpected`.
pub fn errnoOf(err: Error) ?i32 {
    const e: E = switch (err) {
        error.AlreadyRunning => .EXIST,
        error.UnknownUser => .SRCH,
        error.UnknownGroup => .NOENT,
        error.NotRoot => .PERM,
        error.VerifyFailed => .NOTRECOVERABLE,
        error.NotRunning => .SRCH,
        error.LockedByOther => .BUSY,
        error.PidNotWritten => .AGAIN,
        error.NotOwner => .PERM,
        error.UpgradeFailed => .CANCELED,
        error.TimedOut => .TIMEDOUT,
        error.InvalidArgument => .INVAL,
        error.BadFileDescriptor => .BADF,
        error.NameTooLong => .NAMETOOLONG,
        error.AccessDenied => .ACCES,
        error.PermissionDenied => .PERM,
        error.FileNotFound => .NOENT,
        error.SymLinkLoop => .LOOP,
        error.IsDir => .ISDIR,
        error.OutOfMemory => .NOMEM,
        error.AddressInUse => .ADDRINUSE,
        error.AddressNotAvailable => .ADDRNOTAVAIL,
        error.NoSpaceLeft => .NOSPC,
        error.BufferTooSmall => .RANGE,
        error.NotSocket => .NOTSOCK,
        error.AddressFamilyNotSupported => .AFNOSUPPORT,
        error.ConnectionRefused => .CONNREFUSED,
        error.WouldBlock => .AGAIN,
        error.MessageTooLong => .MSGSIZE,
        error.BrokenPipe => .PIPE,
        error.InputOutput => .IO,
        error.Unexpected => return null,
    };
    return @backingInt(e);
}

/// A short description of an error: "daemon already running", "unknown user", or libc's
/// text for the errno it stands for.
pub fn describe(err: Error) []const u8 {
    return switch (err) {
        error.AlreadyRunning => "daemon already running",
        error.UnknownUser => "unknown user",
        error.UnknownGroup => "unknown group",
        error.NotRoot => "not running as root",
        error.VerifyFailed => "privilege drop did not verify",
        error.NotRunning => "not running (the pid file's lock is free)",
        error.LockedByOther => "locked by another process, not the pid in the file",
        error.PidNotWritten => "the running instance has not written its pid yet",
        error.NotOwner => "not the owner of the pid file",
        error.UpgradeFailed => "the new generation failed",
        error.Unexpected => "unexpected error",
        else => std.mem.span(c.dk_strerror(errnoOf(err).?)),
    };
}

/// libc's description of an errno (positive or negative).
pub fn strerror(errno: i32) [:0]const u8 {
    return std.mem.span(c.dk_strerror(errno));
}

/// What a failed call was about; filled by the calls that accept one. Print it with `{f}`
/// for a message that names the object and the cause.
pub const Diagnostics = struct {
    pub const Kind = enum { none, pidfile, user, group, privileges, listen, log, daemonize, reexec, upgrade, socket, other };

    kind: Kind = .none,
    err: ?Error = null,
    /// The positive errno the library returned (0: none).
    errno: i32 = 0,
    /// `AlreadyRunning`: the running instance's pid (0 if it has not written one).
    /// `Pidfile.check`/`kill`: the pid found.
    pid: pid_t = 0,
    object_buf: [512]u8 = undefined,
    object_len: usize = 0,
    /// `upgrade`: the message the new generation gave with `fail()`.
    detail_buf: [1024]u8 = undefined,
    detail_len: usize = 0,

    /// Whether the recorded failure is `err`.
    pub fn isErr(d: *const Diagnostics, err: Error) bool {
        return if (d.err) |e| e == err else false;
    }

    /// The object of the failed call: a path, a user or group name, an address.
    pub fn object(d: *const Diagnostics) []const u8 {
        return d.object_buf[0..d.object_len];
    }

    /// `upgrade`: the failure message of the new generation (may be empty).
    pub fn detail(d: *const Diagnostics) []const u8 {
        return d.detail_buf[0..d.detail_len];
    }

    fn set(d: *Diagnostics, kind: Kind, obj: []const u8, err: Error, rc: c_int) void {
        d.kind = kind;
        d.err = err;
        d.errno = if (rc < 0) -rc else 0;
        d.pid = 0;
        d.detail_len = 0;
        d.object_len = @min(obj.len, d.object_buf.len);
        @memcpy(d.object_buf[0..d.object_len], obj[0..d.object_len]);
    }

    fn cause(d: *const Diagnostics) []const u8 {
        const e = d.err orelse return "no error";
        return switch (e) {
            error.AlreadyRunning,
            error.UnknownUser,
            error.UnknownGroup,
            error.NotRoot,
            error.VerifyFailed,
            error.NotRunning,
            error.LockedByOther,
            error.PidNotWritten,
            error.NotOwner,
            error.UpgradeFailed,
            => describe(e),
            else => if (d.errno != 0) strerror(d.errno) else describe(e),
        };
    }

    /// `pid file /run/app.pid: daemon already running (PID: 4242)`, `unknown user 'www'`,
    /// `127.0.0.1:8080: Address already in use`, `upgrade: …: <the new generation's message>`.
    pub fn format(d: Diagnostics, w: *std.Io.Writer) std.Io.Writer.Error!void {
        const obj = d.object();
        const why = d.cause();
        switch (d.kind) {
            .pidfile => {
                try w.print("pid file {s}: {s}", .{ obj, why });
                if (d.isErr(error.AlreadyRunning)) try w.print(" (PID: {d})", .{d.pid});
                if (d.isErr(error.LockedByOther) and d.pid > 0) try w.print(" (PID {d}, not signalled)", .{d.pid});
            },
            .user => if (d.isErr(error.UnknownUser))
                try w.print("unknown user '{s}'", .{obj})
            else
                try w.print("user '{s}': {s}", .{ obj, why }),
            .group => if (d.isErr(error.UnknownGroup))
                try w.print("unknown group '{s}'", .{obj})
            else
                try w.print("group '{s}': {s}", .{ obj, why }),
            .privileges => try w.print("cannot switch to user '{s}': {s}", .{ obj, why }),
            .listen => if (d.isErr(error.InvalidArgument) and obj.len > 0 and obj[0] != '/' and obj[0] != '@')
                try w.print("{s}: invalid listen address (want HOST:PORT)", .{obj})
            else
                try w.print("{s}: {s}", .{ obj, why }),
            .log => try w.print("log file {s}: {s}", .{ obj, why }),
            .daemonize => try w.print("daemonize: {s}", .{why}),
            .reexec => try w.print("re-exec of {s}: {s}", .{ obj, why }),
            .upgrade => {
                try w.print("upgrade of {s}: {s}", .{ obj, why });
                if (d.detail_len > 0) try w.print(": {s}", .{d.detail()});
            },
            .socket, .other => if (obj.len > 0)
                try w.print("{s}: {s}", .{ obj, why })
            else
                try w.print("{s}", .{why}),
            .none => try w.print("{s}", .{why}),
        }
    }
};

fn fill(diag: ?*Diagnostics, kind: Diagnostics.Kind, obj: []const u8, err: Error, rc: c_int) Error {
    if (diag) |d| d.set(kind, obj, err, rc);
    return err;
}

fn ok(rc: c_int) Error!c_int {
    return if (rc < 0) errorFromCode(rc) else rc;
}

/// Workaround for Zig 0.17's std: `std.Io.Threaded` reads the environment block captured at
/// start the first time it locks stderr (`std.debug.print`, the panic handler) and unwraps
/// every entry. libc's `unsetenv` compacts that block in place, leaving null entries, so
/// the first `std.debug.print` after the library unset a variable panics — and the panic
/// handler, re-entering the same lock, deadlocks. The library unsets variables in
/// `listen.fds(.{ .unset = true })`, `daemonize` and `Pidfile.open` (when adopting what a
/// re-exec, an upgrade or systemd passed), so these call this first: it makes std scan the
/// environment while it is intact. Programs with their own `std.process.Init.io` should
/// call `primeEnviron(init.io)` once at start for the same reason.
pub fn primeEnviron(io: ?std.Io) void {
    if (io) |i| {
        _ = i.lockStderr(&.{}, null) catch return;
        i.unlockStderr();
    }
    if (!primed) {
        primed = true;
        _ = std.debug.lockStderr(&.{});
        std.debug.unlockStderr();
    }
}
var primed = false;

/// Copies `s` into `buf` with a terminating NUL (C strings from slices).
fn cstr(buf: []u8, s: []const u8) Error![*:0]const u8 {
    if (s.len >= buf.len) return error.NameTooLong;
    if (std.mem.indexOfScalar(u8, s, 0) != null) return error.InvalidArgument;
    @memcpy(buf[0..s.len], s);
    buf[s.len] = 0;
    return buf[0..s.len :0].ptr;
}

const path_max = 4096;

fn fdsPtr(list: []const fd_t) ?[*]const c_int {
    return if (list.len == 0) null else list.ptr;
}

// ---------------------------------------------------------------------------------------
// Version

/// The loaded library's version.
pub fn version() std.SemanticVersion {
    const v = c.dk_version();
    return .{ .major = v >> 16, .minor = (v >> 8) & 0xff, .patch = v & 0xff };
}

/// The version of the header these declarations were checked against.
pub const header_version: std.SemanticVersion = .{
    .major = c.DK_VERSION >> 16,
    .minor = (c.DK_VERSION >> 8) & 0xff,
    .patch = c.DK_VERSION & 0xff,
};

// ---------------------------------------------------------------------------------------
// PID file

/// An open, locked PID file (BSD pidfile(3) semantics: the flock is held for the handle's
/// life; liveness is the lock, never `kill(pid, 0)`).
pub const Pidfile = struct {
    handle: *c.dk_pidfile,

    pub const OpenOptions = struct {
        /// File mode (0: 0644).
        mode: u32 = 0,
    };

    /// Opens and locks `path` before daemonizing (a relative path is made absolute). After
    /// a re-exec or upgrade the inherited locked fd is adopted. `error.AlreadyRunning` when a
    /// live instance holds it: its pid goes to `diag.pid`. `error.LockedByOther` when the lock
    /// is held by a process other than the pid in the file (that pid goes to `diag.pid`).
    pub fn open(path: []const u8, options: OpenOptions, diag: ?*Diagnostics) Error!Pidfile {
        primeEnviron(null); // it may unset DAEMONKIT_PIDFILE_FD
        var buf: [path_max]u8 = undefined;
        const p = cstr(&buf, path) catch |e| return fill(diag, .pidfile, path, e, 0);
        var out: ?*c.dk_pidfile = null;
        var other: i32 = 0;
        const rc = c.dk_pidfile_open(p, options.mode, 0, &out, &other);
        if (rc < 0) {
            const err = fill(diag, .pidfile, path, errorFromCode(rc), rc);
            if (diag) |d| d.pid = other;
            return err;
        }
        return .{ .handle = out.? };
    }

    /// Writes this process's pid (call it after `daemonize`).
    pub fn write(pf: Pidfile) Error!void {
        _ = try ok(c.dk_pidfile_write(pf.handle));
    }

    /// The locked fd (close-on-exec).
    pub fn fd(pf: Pidfile) fd_t {
        return c.dk_pidfile_fd(pf.handle);
    }

    /// Closes this process's reference without removing the file (a forked child, or an
    /// old generation after an upgrade).
    pub fn close(pf: Pidfile) void {
        _ = c.dk_pidfile_close(pf.handle);
    }

    /// Unlinks the file if this process owns it, then closes the handle in every case.
    /// `error.NotOwner`: not ours (nothing unlinked); `error.AccessDenied`: the directory is
    /// not writable (after a privilege drop; the leftover file is harmless, its lock is free).
    pub fn remove(pf: Pidfile) Error!void {
        const rc = c.dk_pidfile_remove(pf.handle);
        if (rc == -@as(c_int, @backingInt(E.PERM))) return error.NotOwner;
        _ = try ok(rc);
    }

    pub const Status = struct {
        /// A live process holds the lock, and it is the pid in the file (the kernel says so).
        running: bool,
        /// The lock is held by a process other than the pid in the file (never signal it).
        foreign: bool = false,
        /// The holder's pid, the pid a foreign-locked file names, or the stale pid (0: none
        /// written / unreadable).
        pid: pid_t,
    };

    /// Tells from the lock whether a daemon holds the PID file at `path`, and whether the
    /// pid in the file is provably the holder (see `dk_pidfile_check`).
    /// `error.FileNotFound` when there is no file; `error.AccessDenied` also when the file
    /// is locked and its pid's `/proc` entries are not readable (another user's process).
    pub fn check(path: []const u8, diag: ?*Diagnostics) Error!Status {
        var buf: [path_max]u8 = undefined;
        const p = cstr(&buf, path) catch |e| return fill(diag, .pidfile, path, e, 0);
        var pid: i32 = 0;
        const rc = c.dk_pidfile_check(p, &pid);
        if (rc < 0) return fill(diag, .pidfile, path, errorFromCode(rc), rc);
        return .{ .running = rc == c.DK_PIDFILE_RUNNING, .foreign = rc == c.DK_PIDFILE_FOREIGN, .pid = pid };
    }

    /// Sends `sig` (null: only probe) to the process that provably holds the PID file's
    /// lock and returns its pid. `error.NotRunning`: stale file, nobody signalled;
    /// `error.LockedByOther`: locked by a process other than the pid in the file, nobody
    /// signalled; `error.PidNotWritten`; `error.FileNotFound`; `error.PermissionDenied`.
    pub fn kill(path: []const u8, sig: ?Signal, diag: ?*Diagnostics) Error!pid_t {
        var buf: [path_max]u8 = undefined;
        const p = cstr(&buf, path) catch |e| return fill(diag, .pidfile, path, e, 0);
        var pid: i32 = 0;
        const signo: c_int = if (sig) |s| signal.number(s) else 0;
        const rc = c.dk_pidfile_kill(p, signo, &pid);
        if (rc < 0) {
            const e: Error = if (rc == -@as(c_int, @backingInt(E.AGAIN))) error.PidNotWritten else errorFromCode(rc);
            const err = fill(diag, .pidfile, path, e, rc);
            if (diag) |d| d.pid = pid;
            return err;
        }
        return pid;
    }
};

// ---------------------------------------------------------------------------------------
// Privileges

pub const privileges = struct {
    pub const Ids = struct { uid: u32, gid: u32 };

    /// Drops root for good: `user` (name or number), `group` (null: the user's primary
    /// group), the user's supplementary groups, then verifies. Also succeeds when already
    /// running as exactly that user. `error.UnknownUser`/`UnknownGroup`/`NotRoot`: nothing
    /// changed. `error.VerifyFailed`: exit at once.
    pub fn drop(user: []const u8, group: ?[]const u8, diag: ?*Diagnostics) Error!void {
        return dropCaps(user, group, .{}, 0, diag);
    }

    /// How `dropCaps` drops (`DK_PRIVILEGES_*`).
    pub const DropOptions = struct {
        /// `PR_SET_NO_NEW_PRIVS` after the drop.
        no_new_privs: bool = false,
        /// Every capability not kept leaves the bounding set too.
        drop_bounding: bool = false,
    };

    /// The number of the capability named `name` (`"NET_BIND_SERVICE"`, `"cap_net_raw"`),
    /// for `dropCaps`'s `keep` (`@as(u64, 1) << n`); `dk_cap_from_name`.
    pub fn capFromName(name: []const u8) Error!u6 {
        var buf: [64]u8 = undefined;
        const n = cstr(&buf, name) catch return error.InvalidArgument;
        const rc = c.dk_cap_from_name(n);
        if (rc < 0) return errorFromCode(rc);
        return @intCast(rc);
    }

    /// `drop`, keeping the capabilities in `keep` (bit N: `CAP_*` number N) across the
    /// switch, ambient so that they survive exec, then verified that the process holds
    /// exactly them (`dk_privileges_drop_caps`). `error.InvalidArgument` (nothing changed)
    /// for SETUID, SETGID, SETPCAP or a capability the kernel lacks.
    pub fn dropCaps(user: []const u8, group: ?[]const u8, opts: DropOptions, keep: u64, diag: ?*Diagnostics) Error!void {
        var ubuf: [256]u8 = undefined;
        var gbuf: [256]u8 = undefined;
        const u = cstr(&ubuf, user) catch |e| return fill(diag, .privileges, user, e, 0);
        const g: ?[*:0]const u8 = if (group) |gr|
            (cstr(&gbuf, gr) catch |e| return fill(diag, .privileges, gr, e, 0))
        else
            null;
        var flags: u32 = 0;
        if (opts.no_new_privs) flags |= c.DK_PRIVILEGES_NO_NEW_PRIVS;
        if (opts.drop_bounding) flags |= c.DK_PRIVILEGES_DROP_BOUNDING;
        const rc = c.dk_privileges_drop_caps(u, g, flags, keep);
        if (rc >= 0) return;
        return switch (rc) {
            c.DK_ERR_UNKNOWN_USER => fill(diag, .user, user, error.UnknownUser, rc),
            c.DK_ERR_UNKNOWN_GROUP => fill(diag, .group, group orelse "", error.UnknownGroup, rc),
            c.DK_ERR_NOT_ROOT => fill(diag, .privileges, user, error.NotRoot, rc),
            c.DK_ERR_VERIFY => fill(diag, .privileges, user, error.VerifyFailed, rc),
            else => fill(diag, .privileges, user, errorFromCode(rc), rc),
        };
    }

    /// Resolves a user name or number to its uid and primary gid.
    pub fn lookupUser(user: []const u8, diag: ?*Diagnostics) Error!Ids {
        var buf: [256]u8 = undefined;
        const u = cstr(&buf, user) catch |e| return fill(diag, .user, user, e, 0);
        var ids: Ids = .{ .uid = 0, .gid = 0 };
        const rc = c.dk_user_lookup(u, &ids.uid, &ids.gid);
        if (rc == c.DK_ERR_UNKNOWN_USER) return fill(diag, .user, user, error.UnknownUser, rc);
        if (rc < 0) return fill(diag, .user, user, errorFromCode(rc), rc);
        return ids;
    }

    /// Resolves a group name or number to its gid.
    pub fn lookupGroup(group: []const u8, diag: ?*Diagnostics) Error!u32 {
        var buf: [256]u8 = undefined;
        const g = cstr(&buf, group) catch |e| return fill(diag, .group, group, e, 0);
        var gid: u32 = 0;
        const rc = c.dk_group_lookup(g, &gid);
        if (rc == c.DK_ERR_UNKNOWN_GROUP) return fill(diag, .group, group, error.UnknownGroup, rc);
        if (rc < 0) return fill(diag, .group, group, errorFromCode(rc), rc);
        return gid;
    }
};

// ---------------------------------------------------------------------------------------
// Resource limits

pub const rlimit = struct {
    /// `RLIMIT_*` (Linux numbering); non-exhaustive, any number may be passed.
    pub const Resource = enum(c_int) {
        core = c.DK_RLIMIT_CORE,
        nproc = c.DK_RLIMIT_NPROC,
        nofile = c.DK_RLIMIT_NOFILE,
        as = c.DK_RLIMIT_AS,
        _,
    };
    pub const infinity: u64 = c.DK_RLIM_INFINITY;
    pub const Limit = struct { soft: u64, hard: u64 };

    pub fn get(resource: Resource) Error!Limit {
        var l: Limit = .{ .soft = 0, .hard = 0 };
        _ = try ok(c.dk_rlimit_get(@backingInt(resource), &l.soft, &l.hard));
        return l;
    }

    /// `error.InvalidArgument`: unknown resource or soft > hard; `error.PermissionDenied`:
    /// raising the hard limit without root.
    pub fn set(resource: Resource, limit: Limit) Error!void {
        _ = try ok(c.dk_rlimit_set(@backingInt(resource), limit.soft, limit.hard));
    }

    /// Sets the soft RLIMIT_NOFILE to `wanted`, capped at the hard limit; returns what was
    /// obtained.
    pub fn nofile(wanted: u64) Error!u64 {
        var got: u64 = 0;
        _ = try ok(c.dk_rlimit_nofile(wanted, &got));
        return got;
    }

    /// No core dumps (RLIMIT_CORE soft and hard 0).
    pub fn disableCore() Error!void {
        _ = try ok(c.dk_rlimit_disable_core());
    }
};

// ---------------------------------------------------------------------------------------
// File descriptors, fd passing

pub const fds = struct {
    pub fn setCloexec(fd: fd_t, on: bool) Error!void {
        _ = try ok(c.dk_fd_set_cloexec(fd, @intFromBool(on)));
    }

    /// Closes every fd >= `first` except those in `keep` (and the library's own).
    pub fn closeFrom(first: fd_t, keep: []const fd_t) Error!void {
        _ = try ok(c.dk_fd_close_from(first, fdsPtr(keep), keep.len));
    }

    /// Sends `data` (at least one byte) with `to_send` over a connected Unix socket
    /// (SCM_RIGHTS); returns the bytes sent.
    pub fn send(sock: fd_t, data: []const u8, to_send: []const fd_t) Error!usize {
        const rc = try ok(c.dk_fd_send(sock, data.ptr, data.len, fdsPtr(to_send), to_send.len));
        return @intCast(rc);
    }

    pub const Received = struct {
        /// The payload (empty: the peer closed).
        data: []u8,
        /// The fds that arrived (close-on-exec; the caller owns them).
        fds: []fd_t,
    };

    /// Receives one message into `buf` and up to `fd_buf.len` fds. `error.MessageTooLong`
    /// when the payload or the fds were truncated (the fds that did arrive are closed);
    /// `error.WouldBlock` on a non-blocking socket with nothing to read.
    pub fn recv(sock: fd_t, buf: []u8, fd_buf: []fd_t) Error!Received {
        var n: usize = fd_buf.len;
        const rc = try ok(c.dk_fd_recv(sock, buf.ptr, buf.len, fd_buf.ptr, &n));
        return .{ .data = buf[0..@intCast(rc)], .fds = fd_buf[0..n] };
    }
};

// ---------------------------------------------------------------------------------------
// Log file

pub const log = struct {
    pub const Streams = struct {
        stdout: bool = true,
        stderr: bool = true,
    };

    /// Opens `path` append-only (0640) and moves stdout and/or stderr onto it; remembered
    /// for `reopen`.
    pub fn open(path: []const u8, streams: Streams, diag: ?*Diagnostics) Error!void {
        var buf: [path_max]u8 = undefined;
        const p = cstr(&buf, path) catch |e| return fill(diag, .log, path, e, 0);
        var which: u32 = 0;
        if (streams.stdout) which |= c.DK_LOG_STDOUT;
        if (streams.stderr) which |= c.DK_LOG_STDERR;
        if (which == 0) return fill(diag, .log, path, error.InvalidArgument, 0);
        const rc = c.dk_log_open(p, which);
        if (rc < 0) return fill(diag, .log, path, errorFromCode(rc), rc);
    }

    /// Reopens the log (after logrotate renamed it). `error.BadFileDescriptor` when no log
    /// was opened.
    pub fn reopen() Error!void {
        _ = try ok(c.dk_log_reopen());
    }
};

// ---------------------------------------------------------------------------------------
// Signals: a self-pipe whose read end any poll loop can watch

pub const signal = struct {
    /// The process's signal pipe: watch `fd` (or `pollFd()`) for readability, then drain
    /// pending signals with `next`.
    pub const Watcher = struct {
        fd: fd_t,

        /// A `pollfd` for `std.posix.poll`/`std.c.poll` (POLL.IN).
        pub fn pollFd(w: Watcher) std.posix.pollfd {
            return .{ .fd = w.fd, .events = std.posix.POLL.IN, .revents = 0 };
        }

        /// The next pending signal (lowest number first, each once), or null.
        pub fn next(w: Watcher) ?Signal {
            _ = w;
            return signal.next();
        }

        /// Waits up to `timeout_ms` (null: forever) for a signal; null on timeout.
        pub fn wait(w: Watcher, timeout_ms: ?u31) Error!?Signal {
            _ = w;
            return signal.wait(timeout_ms);
        }

        /// Restores the previous dispositions and closes the pipe.
        pub fn close(w: Watcher) void {
            _ = w;
            signal.close();
        }
    };

    pub const OpenOptions = struct {
        /// Install the handlers with `SA_RESTART` (an interrupted blocking call restarts).
        /// false: it fails with `EINTR` instead (`DK_SIGNAL_NO_RESTART`).
        restart: bool = true,
    };

    /// Registers `sigs` with the signal pipe (again: adds signals, same fd), with
    /// `SA_RESTART`. `error.InvalidArgument` for an uncatchable signal or a synchronous
    /// fault (SEGV, BUS, FPE, ILL, TRAP, SYS: nothing registered).
    pub fn open(sigs: []const Signal) Error!Watcher {
        return openWith(sigs, .{});
    }

    /// `open` with options (`.{ .restart = false }`: without `SA_RESTART`).
    pub fn openWith(sigs: []const Signal, options: OpenOptions) Error!Watcher {
        var nums: [64]c_int = undefined;
        if (sigs.len > nums.len) return error.InvalidArgument;
        for (sigs, 0..) |s, i| nums[i] = std.math.cast(c_int, @backingInt(s)) orelse return error.InvalidArgument;
        const flags: u32 = if (options.restart) 0 else c.DK_SIGNAL_NO_RESTART;
        const rc = try ok(c.dk_signal_open_flags(&nums, sigs.len, flags));
        return .{ .fd = rc };
    }

    pub fn next() ?Signal {
        const s = c.dk_signal_next();
        return if (s > 0) fromNumber(s) else null;
    }

    /// A signal number as a `Signal`.
    pub fn fromNumber(n: c_int) Signal {
        return @fromBackingInt(@as(@typeInfo(Signal).@"enum".tag_type, @intCast(n)));
    }

    /// A `Signal` as its number.
    pub fn number(s: Signal) c_int {
        return @intCast(@backingInt(s));
    }

    /// `error.BadFileDescriptor` when no signal is registered.
    pub fn wait(timeout_ms: ?u31) Error!?Signal {
        const t: c_int = if (timeout_ms) |ms| ms else -1;
        const s = try ok(c.dk_signal_wait(t));
        return if (s > 0) fromNumber(s) else null;
    }

    pub fn close() void {
        _ = c.dk_signal_close();
    }

    /// In a freshly forked child: default dispositions, empty mask, pipe closed.
    /// Async-signal-safe.
    pub fn resetChild() void {
        _ = c.dk_signal_reset_child();
    }

    pub fn ignoreSigpipe() Error!void {
        _ = try ok(c.dk_signal_ignore_sigpipe());
    }
};

// ---------------------------------------------------------------------------------------
// Listening sockets, socket activation

pub const listen = struct {
    pub const TcpOptions = struct {
        /// 0: 1024.
        backlog: u31 = 0,
        reuseport: bool = false,
        /// Leave the fd inheritable across exec.
        inherit: bool = false,
    };

    /// Binds and listens on `HOST:PORT` (`127.0.0.1:8080`, `[::1]:0`, `*:80`, `:80`).
    /// `error.AddressInUse`, `error.AccessDenied` (privileged port),
    /// `error.AddressNotAvailable`, `error.InvalidArgument` (malformed).
    pub fn tcp(addr: []const u8, options: TcpOptions, diag: ?*Diagnostics) Error!fd_t {
        var buf: [256]u8 = undefined;
        const a = cstr(&buf, addr) catch |e| return fill(diag, .listen, addr, e, 0);
        var flags: u32 = 0;
        if (options.reuseport) flags |= c.DK_LISTEN_REUSEPORT;
        if (options.inherit) flags |= c.DK_LISTEN_INHERIT;
        const rc = c.dk_listen_tcp(a, options.backlog, flags);
        if (rc < 0) return fill(diag, .listen, addr, errorFromCode(rc), rc);
        return rc;
    }

    pub const UnixOptions = struct {
        /// chmod the socket file (0: leave it).
        mode: u32 = 0,
        backlog: u31 = 0,
        inherit: bool = false,
    };

    /// Binds and listens on a Unix stream socket (`@name`: abstract namespace).
    pub fn unix(path: []const u8, options: UnixOptions, diag: ?*Diagnostics) Error!fd_t {
        var buf: [path_max]u8 = undefined;
        const p = cstr(&buf, path) catch |e| return fill(diag, .listen, path, e, 0);
        const flags: u32 = if (options.inherit) c.DK_LISTEN_INHERIT else 0;
        const rc = c.dk_listen_unix(p, options.mode, options.backlog, flags);
        if (rc < 0) return fill(diag, .listen, path, errorFromCode(rc), rc);
        return rc;
    }

    pub const Activation = struct {
        /// How many fds were passed, from `first`.
        count: usize,
        /// `LISTEN_FDNAMES` (colon-separated; empty when unset or not asked for).
        names: []const u8,
        pub const first: fd_t = c.DK_LISTEN_FDS_START;

        /// The passed fds: `first .. first + count`.
        pub fn fd(a: Activation, i: usize) fd_t {
            std.debug.assert(i < a.count);
            return first + @as(fd_t, @intCast(i));
        }
    };

    pub const FdsOptions = struct {
        /// Unset LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES afterwards.
        unset: bool = false,
    };

    /// Socket activation (systemd, `systemd-socket-activate`, or our own re-exec/upgrade):
    /// the listening fds passed to this process. `names_buf` receives LISTEN_FDNAMES.
    pub fn fds(options: FdsOptions, names_buf: ?[]u8) Error!Activation {
        const flags: u32 = if (options.unset) c.DK_LISTEN_FDS_UNSET else 0;
        if (options.unset) primeEnviron(null);
        const nb: ?[*]c_char = if (names_buf) |b| @ptrCast(b.ptr) else null;
        const rc = try ok(c.dk_listen_fds(flags, nb, if (names_buf) |b| b.len else 0));
        const names: []const u8 = if (names_buf) |b| std.mem.sliceTo(b, 0) else "";
        return .{ .count = @intCast(rc), .names = names };
    }
};

pub const socket = struct {
    /// The local TCP port of `fd`.
    pub fn port(fd: fd_t) Error!u16 {
        return @intCast(try ok(c.dk_socket_port(fd)));
    }

    /// The local address of `fd` as `HOST:PORT` (`[v6]:PORT`, or the Unix path), in `buf`.
    /// `error.BufferTooSmall` when it does not fit.
    pub fn name(fd: fd_t, buf: []u8) Error![]u8 {
        const rc = try ok(c.dk_socket_name(fd, @ptrCast(buf.ptr), buf.len));
        return buf[0..@intCast(rc)];
    }
};

// ---------------------------------------------------------------------------------------
// sd_notify

pub const notify = struct {
    /// Sends `state` (`READY=1`, `STATUS=…`) to `$NOTIFY_SOCKET`; false when it is unset.
    pub fn send(state: []const u8) Error!bool {
        var buf: [4096]u8 = undefined;
        const s = try cstr(&buf, state);
        return (try ok(c.dk_notify(s))) == 1;
    }

    /// `RELOADING=1` with `MONOTONIC_USEC` (send `READY=1` when done).
    pub fn reloading() Error!bool {
        return (try ok(c.dk_notify_reloading())) == 1;
    }

    /// `STOPPING=1`.
    pub fn stopping() Error!bool {
        return (try ok(c.dk_notify_stopping())) == 1;
    }

    /// s6's readiness protocol: `ready()` also writes a newline to `fd` (the service's
    /// `notification-fd`) and closes it. The library owns the fd from here on.
    pub fn readyFd(fd: fd_t) Error!void {
        _ = try ok(c.dk_notify_fd(fd));
    }

    /// The systemd watchdog interval in microseconds when enabled for this process.
    pub fn watchdogUsec() ?u64 {
        var usec: u64 = 0;
        return if (c.dk_watchdog_usec(&usec) == 1) usec else null;
    }
};

// ---------------------------------------------------------------------------------------
// Daemonizing, readiness, re-exec, upgrade

pub const Role = enum(c_int) {
    /// A forked daemon: a launcher waits for `ready()`/`fail()`.
    daemon = c.DK_ROLE_DAEMON,
    /// The foreground (`foreground = true`), or an image started by `reexec`.
    foreground = c.DK_ROLE_FOREGROUND,
    /// A new generation started by an upgrade: the old master waits for `ready()`.
    upgrade = c.DK_ROLE_UPGRADE,
};

pub const DaemonizeOptions = struct {
    /// No fork; `ready()` then also sends READY=1 to $NOTIFY_SOCKET.
    foreground: bool = false,
    /// Keep stdin/stdout/stderr (do not point them at /dev/null).
    keep_stdio: bool = false,
    /// Close inherited fds above 2 (except `keep` and the library's own).
    close_fds: bool = true,
    /// Reset signal dispositions and the mask.
    reset_signals: bool = true,
    /// Directory to change to (null: "/"); see `change_dir`.
    chdir: ?[]const u8 = null,
    change_dir: bool = true,
    /// Fds to keep open (listeners).
    keep: []const fd_t = &.{},
    /// null: unchanged.
    umask: ?u32 = 0o022,
    /// > 0: the launcher kills the daemon and exits 1 when not ready in time.
    timeout_ms: u32 = 0,
};

/// Turns the process into a daemon (daemon(7)). The launching process never returns: it
/// exits 0 once the daemon calls `ready()`, or prints the message and exits with the code
/// given to `fail()`. Flush your own buffers first. From here on report failures with
/// `fail()`.
pub fn daemonize(options: DaemonizeOptions, diag: ?*Diagnostics) Error!Role {
    primeEnviron(null); // it unsets DAEMONKIT_READY_FD / DAEMONKIT_REEXEC when present
    var flags: u32 = 0;
    if (options.foreground) flags |= c.DK_DAEMON_FOREGROUND;
    if (options.keep_stdio) flags |= c.DK_DAEMON_KEEP_STDIO;
    if (!options.close_fds) flags |= c.DK_DAEMON_NO_CLOSE_FDS;
    if (!options.change_dir) flags |= c.DK_DAEMON_NO_CHDIR;
    if (!options.reset_signals) flags |= c.DK_DAEMON_NO_SIGNAL_RESET;
    var buf: [path_max]u8 = undefined;
    const dir: ?[*:0]const u8 = if (options.chdir) |d|
        (cstr(&buf, d) catch |e| return fill(diag, .daemonize, d, e, 0))
    else
        null;
    const um: c_int = if (options.umask) |u| @intCast(u & 0o777) else -1;
    const rc = c.dk_daemonize(flags, fdsPtr(options.keep), options.keep.len, dir, um, options.timeout_ms);
    if (rc < 0) return fill(diag, .daemonize, options.chdir orelse "", errorFromCode(rc), rc);
    return @fromBackingInt(rc);
}

/// Startup succeeded: the launcher exits 0, an old master starts draining, a supervisor
/// counts the worker ready; also READY=1 to $NOTIFY_SOCKET (except in a worker).
pub fn ready() Error!void {
    _ = try ok(c.dk_ready());
}

/// Startup failed: the launcher prints `msg` (at most 1024 bytes) and exits with `code`
/// (1..255). In the foreground and in a worker the message goes to stderr. Exit afterwards.
pub fn fail(code: u8, msg: []const u8) void {
    var buf: [1025]u8 = undefined;
    const n = @min(msg.len, 1024);
    @memcpy(buf[0..n], msg[0..n]);
    buf[n] = 0;
    // a NUL inside msg just ends it early
    _ = c.dk_fail(code, buf[0..n :0].ptr);
}

/// `fail` with a formatted message (truncated to 1024 bytes).
pub fn failFmt(code: u8, comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    var w: std.Io.Writer = .fixed(&buf);
    w.print(fmt, args) catch {};
    fail(code, w.buffered());
}

/// A NULL-terminated argv, as `std.c.execve` takes it: `argv[0]` is the absolute path.
pub const Argv = [:null]const ?[*:0]const u8;

/// Replaces the program with a fresh image of `argv`, same pid, keeping `listeners` (as
/// fds 3.. with LISTEN_FDS) and the locked PID file. Returns only on failure, with the error
/// (every fd as it was): `dk.reexec(…) catch |err| …`.
pub fn reexec(argv: Argv, listeners: []const fd_t, names: ?[:0]const u8, pf: ?Pidfile, diag: ?*Diagnostics) Error!noreturn {
    const rc = c.dk_reexec(argv.ptr, fdsPtr(listeners), listeners.len, if (names) |n| n.ptr else null, if (pf) |p| p.handle else null);
    const prog: []const u8 = if (argv.len > 0 and argv[0] != null) std.mem.span(argv[0].?) else "";
    return fill(diag, .reexec, prog, errorFromCode(if (rc < 0) rc else -@as(c_int, @backingInt(E.INVAL))), rc);
}

/// Zero-downtime upgrade of a single process: fork+exec `argv` as a new generation with
/// `listeners` and the PID file, and wait up to `timeout_ms` (0: forever) for its `ready()`.
/// Returns its pid: stop accepting, drain, `Pidfile.close` (not remove) and exit 0.
/// `error.UpgradeFailed` (its message in `diag.detail()`), `error.TimedOut`: it was killed
/// and the PID file holds our pid again.
pub fn upgrade(argv: Argv, listeners: []const fd_t, names: ?[:0]const u8, pf: ?Pidfile, timeout_ms: u32, diag: ?*Diagnostics) Error!pid_t {
    var msg: [1024]u8 = undefined;
    msg[0] = 0;
    const rc = c.dk_upgrade(argv.ptr, fdsPtr(listeners), listeners.len, if (names) |n| n.ptr else null, if (pf) |p| p.handle else null, timeout_ms, @ptrCast(&msg), msg.len);
    if (rc > 0) return rc;
    const prog: []const u8 = if (argv.len > 0 and argv[0] != null) std.mem.span(argv[0].?) else "";
    const err = fill(diag, .upgrade, prog, errorFromCode(if (rc < 0) rc else -@as(c_int, @backingInt(E.INVAL))), rc);
    if (diag) |d| {
        const text = std.mem.sliceTo(&msg, 0);
        d.detail_len = @min(text.len, d.detail_buf.len);
        @memcpy(d.detail_buf[0..d.detail_len], text[0..d.detail_len]);
    }
    return err;
}

// ---------------------------------------------------------------------------------------
// Supervisor

pub const EventKind = enum(c_int) {
    spawned = c.DK_EVENT_SPAWNED,
    exited = c.DK_EVENT_EXITED,
    respawn_delayed = c.DK_EVENT_RESPAWN_DELAYED,
    worker_ready = c.DK_EVENT_WORKER_READY,
    ready = c.DK_EVENT_READY,
    reloading = c.DK_EVENT_RELOADING,
    reloaded = c.DK_EVENT_RELOADED,
    stopping = c.DK_EVENT_STOPPING,
    killed = c.DK_EVENT_KILLED,
    upgrade_started = c.DK_EVENT_UPGRADE_STARTED,
    upgrade_ready = c.DK_EVENT_UPGRADE_READY,
    upgrade_failed = c.DK_EVENT_UPGRADE_FAILED,
    log_reopened = c.DK_EVENT_LOG_REOPENED,
    workers_changed = c.DK_EVENT_WORKERS_CHANGED,
    worker_failed = c.DK_EVENT_WORKER_FAILED,
    reload_failed = c.DK_EVENT_RELOAD_FAILED,
    gave_up = c.DK_EVENT_GAVE_UP,
    _,
};

/// A supervisor event: `pid` and `value` as documented for each `DK_EVENT_*` in the header.
pub const Event = struct {
    kind: EventKind,
    pid: pid_t,
    value: i32,

    /// One human line, the library's own description (`dk_event_describe`, the text of its
    /// default log): `worker 4242 started (index 0)`, `worker 4242 exited with status 0`, …
    pub fn format(ev: Event, w: *std.Io.Writer) std.Io.Writer.Error!void {
        var buf: [256]u8 = undefined;
        const n = c.dk_event_describe(@backingInt(ev.kind), ev.pid, ev.value, @ptrCast(&buf), buf.len);
        if (n < 0) return w.print("event {d} (pid {d}, value {d})", .{ @backingInt(ev.kind), ev.pid, ev.value });
        try w.writeAll(buf[0..@min(@as(usize, @intCast(n)), buf.len - 1)]);
    }
};

pub const RunResult = enum {
    /// Graceful stop finished; the PID file is already unlinked.
    stopped,
    /// A new generation took over; leave the PID file alone.
    upgraded,
    /// The restart policy gave up (`setRestart`); every worker was stopped. Exit non-zero.
    gave_up,
};

/// `Supervisor.setFlags`: init duties and tini's model.
pub const SupervisorFlags = struct {
    /// Reap every orphan (as PID 1, or as a child subreaper).
    reap_all: bool = false,
    /// One worker run once: not respawned, its signals forwarded, its status in
    /// `exitStatus`.
    once: bool = false,
    /// Signals go to the worker's whole process group.
    signal_group: bool = false,
};

/// A prefork supervisor: configure, `run`, `deinit`. Argv arrays and the PID file given to
/// it must stay valid for its life.
pub const Supervisor = struct {
    handle: *c.dk_supervisor,

    pub const max_workers = c.DK_SUPERVISOR_MAX_WORKERS;

    /// 1 worker, 30 s graceful timeout, 2 s ready timeout, 60 s upgrade timeout.
    pub fn init() Error!Supervisor {
        var out: ?*c.dk_supervisor = null;
        _ = try ok(c.dk_supervisor_new(&out));
        return .{ .handle = out.? };
    }

    pub fn deinit(sv: Supervisor) void {
        _ = c.dk_supervisor_free(sv.handle);
    }

    /// 1..`max_workers`, else `error.InvalidArgument`.
    pub fn setWorkers(sv: Supervisor, n: u32) Error!void {
        _ = try ok(c.dk_supervisor_set_workers(sv.handle, n));
    }

    pub fn setGracefulTimeout(sv: Supervisor, ms: u32) Error!void {
        _ = try ok(c.dk_supervisor_set_graceful_timeout(sv.handle, ms));
    }

    pub fn setReadyTimeout(sv: Supervisor, ms: u32) Error!void {
        _ = try ok(c.dk_supervisor_set_ready_timeout(sv.handle, ms));
    }

    /// The worker entry as a Zig function, run in each forked worker after the post-fork
    /// hook: `func(context, index)` where `context` is a pointer (or `{}`) and the result is
    /// `void`, `u8`, `c_int`, or an error union of those. Its value is the worker's exit
    /// status (0: clean, e.g. max-requests reached — replaced without counting as a crash);
    /// an error is printed on stderr and gives status 1. It should serve the inherited
    /// listeners, call `ready()` once it accepts, and return after draining on SIGTERM.
    pub fn setWorker(sv: Supervisor, context: anytype, comptime func: anytype) Error!void {
        const T = Trampolines(@TypeOf(context), func);
        _ = try ok(c.dk_supervisor_set_worker(sv.handle, &T.worker, ctxPtr(context)));
    }

    /// The post-fork hook as a Zig function `func(context, index) void`, run in each worker
    /// right after the fork with default signal dispositions (rebuild event loops here).
    pub fn setPostFork(sv: Supervisor, context: anytype, comptime func: anytype) Error!void {
        const T = Trampolines(@TypeOf(context), func);
        _ = try ok(c.dk_supervisor_set_post_fork(sv.handle, &T.hook, ctxPtr(context)));
    }

    /// The event callback as a Zig function `func(context, Event) void`, run in the
    /// master's loop. Without one, events are logged as one line each on stderr.
    pub fn setEvent(sv: Supervisor, context: anytype, comptime func: anytype) Error!void {
        const T = Trampolines(@TypeOf(context), func);
        _ = try ok(c.dk_supervisor_set_event(sv.handle, &T.event, ctxPtr(context)));
    }

    /// Clears the event callback (default logging on stderr).
    pub fn clearEvent(sv: Supervisor) Error!void {
        _ = try ok(c.dk_supervisor_set_event(sv.handle, null, null));
    }

    /// Clears the post-fork hook.
    pub fn clearPostFork(sv: Supervisor) Error!void {
        _ = try ok(c.dk_supervisor_set_post_fork(sv.handle, null, null));
    }

    /// Workers exec `argv` (listeners as fds 3.., readiness pipe in DAEMONKIT_READY_FD)
    /// instead of calling a worker entry.
    pub fn setExec(sv: Supervisor, argv: Argv) Error!void {
        _ = try ok(c.dk_supervisor_set_exec(sv.handle, argv.ptr));
    }

    /// A listening fd the workers inherit and an upgrade passes on (at most 62).
    pub fn addListener(sv: Supervisor, fd: fd_t) Error!void {
        _ = try ok(c.dk_supervisor_add_listener(sv.handle, fd));
    }

    /// A listener as a pair of `SO_REUSEPORT` TCP sockets on one address (`listen.tcp`
    /// with `.reuseport = true`, twice, `a` first): rolling restarts then lose no freshly
    /// accepted connection (the generations alternate between the two sockets).
    pub fn addListenerPair(sv: Supervisor, a: fd_t, b: fd_t) Error!void {
        _ = try ok(c.dk_supervisor_add_listener_pair(sv.handle, a, b));
    }

    /// A listener as one `SO_REUSEPORT` TCP socket per worker slot, all on one address
    /// (`listen.tcp` with `.reuseport = true`, N times): worker slot i accepts on
    /// `slot_fds[i % N]` only, and the master holds them all, so a slot's accept queue outlives
    /// its worker. The worker count never goes below N; not with `addListenerPair`.
    pub fn addListenerSlots(sv: Supervisor, slot_fds: []const fd_t) Error!void {
        _ = try ok(c.dk_supervisor_add_listener_slots(sv.handle, fdsPtr(slot_fds), @intCast(slot_fds.len)));
    }

    pub fn setListenNames(sv: Supervisor, names: ?[:0]const u8) Error!void {
        _ = try ok(c.dk_supervisor_set_listen_names(sv.handle, if (names) |n| n.ptr else null));
    }

    /// The PID file the master unlinks after a graceful stop and hands over on upgrade.
    pub fn setPidfile(sv: Supervisor, pf: ?Pidfile) Error!void {
        _ = try ok(c.dk_supervisor_set_pidfile(sv.handle, if (pf) |p| p.handle else null));
    }

    /// Enables USR2 upgrades to `argv` (argv[0] absolute, e.g. /proc/self/exe resolved).
    pub fn setUpgrade(sv: Supervisor, argv: Argv, timeout_ms: u32) Error!void {
        _ = try ok(c.dk_supervisor_set_upgrade(sv.handle, argv.ptr, timeout_ms));
    }

    /// `setRestart`: give up after `count` crashes within `window_ms`.
    pub const GiveUp = struct { count: u32, window_ms: u32 };

    /// The signal that stops a worker (default TERM; Starman: QUIT).
    pub fn setStopSignal(sv: Supervisor, sig: Signal) Error!void {
        _ = try ok(c.dk_supervisor_set_stop_signal(sv.handle, signal.number(sig)));
    }

    /// The restart policy: the crash-loop backoff's cap (ms, 0: 8000) and, when `give_up`
    /// is set, `.count` crashes within `.window_ms` stop every worker (`run` returns
    /// `.gave_up`).
    pub fn setRestart(sv: Supervisor, max_backoff_ms: u32, give_up: ?GiveUp) Error!void {
        const g: GiveUp = give_up orelse .{ .count = 0, .window_ms = 0 };
        _ = try ok(c.dk_supervisor_set_restart(sv.handle, max_backoff_ms, g.count, g.window_ms));
    }

    /// Init duties (`reap_all`), tini's model (`once`), signals to the group.
    pub fn setFlags(sv: Supervisor, flags: SupervisorFlags) Error!void {
        var f: u32 = 0;
        if (flags.reap_all) f |= c.DK_SUPERVISOR_REAP_ALL;
        if (flags.once) f |= c.DK_SUPERVISOR_ONCE;
        if (flags.signal_group) f |= c.DK_SUPERVISOR_SIGNAL_GROUP;
        _ = try ok(c.dk_supervisor_set_flags(sv.handle, f));
    }

    /// Worker output as a Zig function `func(context, index) ?fd_t`: the fd returned
    /// becomes that worker's stdout and stderr (the master closes it after the fork).
    pub fn setStdio(sv: Supervisor, context: anytype, comptime func: anytype) Error!void {
        const T = struct {
            fn stdio(ctx: ?*anyopaque, index: u32) callconv(.c) c_int {
                return func(ctxFrom(@TypeOf(context), ctx), index) orelse -1;
            }
        };
        _ = try ok(c.dk_supervisor_set_stdio(sv.handle, &T.stdio, ctxPtr(context)));
    }

    /// After `run`: the worker's status in a `once` run (128 + N for signal N), else 0.
    pub fn exitStatus(sv: Supervisor) u8 {
        return @intCast(@max(0, @min(255, c.dk_supervisor_exit_status(sv.handle))));
    }

    /// Runs the master until a graceful stop, a completed upgrade (exit 0 after either) or
    /// the restart policy giving up. Never returns in a worker.
    pub fn run(sv: Supervisor) Error!RunResult {
        const rc = try ok(c.dk_supervisor_run(sv.handle));
        return switch (rc) {
            c.DK_SUPERVISOR_UPGRADED => .upgraded,
            c.DK_SUPERVISOR_GAVE_UP => .gave_up,
            else => .stopped,
        };
    }
};

fn ctxPtr(context: anytype) ?*anyopaque {
    const T = @TypeOf(context);
    if (T == void) return null;
    switch (@typeInfo(T)) {
        .pointer => return @ptrCast(@constCast(context)),
        .optional => return if (context) |p| @ptrCast(@constCast(p)) else null,
        else => @compileError("daemonkit: a callback context must be a pointer or {}, not " ++ @typeName(T)),
    }
}

fn ctxFrom(comptime T: type, p: ?*anyopaque) T {
    if (T == void) return {};
    if (@typeInfo(T) == .optional) return @ptrCast(@alignCast(p));
    return @ptrCast(@alignCast(p.?));
}

fn Trampolines(comptime Ctx: type, comptime func: anytype) type {
    return struct {
        fn worker(ctx: ?*anyopaque, index: u32) callconv(.c) c_int {
            return exitStatus(index, func(ctxFrom(Ctx, ctx), index));
        }
        fn hook(ctx: ?*anyopaque, index: u32) callconv(.c) void {
            func(ctxFrom(Ctx, ctx), index);
        }
        fn event(ctx: ?*anyopaque, kind: c_int, pid: i32, value: i32) callconv(.c) void {
            func(ctxFrom(Ctx, ctx), Event{ .kind = @fromBackingInt(kind), .pid = pid, .value = value });
        }
    };
}

fn exitStatus(index: u32, result: anytype) c_int {
    const R = @TypeOf(result);
    switch (@typeInfo(R)) {
        .void => return 0,
        .int => return @intCast(result),
        .error_union => {
            if (result) |v| {
                return exitStatus(index, v);
            } else |err| {
                std.debug.print("worker {d} (pid {d}): error: {s}\n", .{ index, std.c.getpid(), @errorName(err) });
                return 1;
            }
        },
        else => @compileError("daemonkit: a worker returns void, an integer, or an error union of those, not " ++ @typeName(R)),
    }
}
