//! dk-hello (Zig): the daemonkit example server.
//!
//! A small poll()-based HTTP/1.1 server. Everything outside request handling —
//! daemonizing with readiness, the PID file, privileges, signals, limits, the prefork
//! supervisor, socket activation, re-exec and zero-downtime upgrades — comes from the
//! daemonkit Zig binding (bindings/zig), called in the order of examples/README.md.
//! No process-plumbing syscall is made here directly (src/plumbing_test.zig checks that).
//!
//!   dk-hello [--listen HOST:PORT] [-D|--daemonize] [--pid FILE] [--user USER]
//!            [--group GROUP] [-w|--workers N] [--max-requests N] [--log FILE]
//!            [--nofile N] [--graceful-timeout SECONDS] [--foreground-notify]
//!            [--config FILE] [--notify-fd N]
//!
//! `--notify-fd N`: s6's readiness protocol (the service directory's `notification-fd`
//! names N). Stays in the foreground and hands fd N to `dk.notify.readyFd`: `dk.ready()`
//! writes `\n` to it and closes it once we serve (with -w N the master does, once every
//! worker is ready). A re-exec (HUP) or a new generation (USR2) runs without the option: the
//! fd is used up by then, and in the new image fd N may be an inherited listener.
//!
//! `--config FILE`: `greeting`, `slow_max_ms`, `io_timeout_ms` (see config.zig), read at
//! start and again on HUP: in single-process mode before the re-exec, with workers in the
//! master before the new workers start. A file that does not validate keeps the running
//! configuration: `config FILE: <why>; keeping the old one`.
//!
//! Endpoints: GET / /pid /ids /slow?ms=N (anything else: 404); one log line per request on
//! stdout: `METHOD PATH STATUS pid=PID`.
const std = @import("std");
const dk = @import("daemonkit");
const http = @import("http.zig");
const config = @import("config.zig");

const c = std.c;
const logErr = http.logErr;

const default_listen = "127.0.0.1:8080";
const upgrade_timeout_ms = 30_000;

// ---------------------------------------------------------------------------------------
// Command line

const Options = struct {
    listen: []const u8 = default_listen,
    daemonize: bool = false,
    foreground_notify: bool = false,
    pid_path: ?[:0]const u8 = null, // absolute
    log_path: ?[:0]const u8 = null, // absolute
    config_path: ?[:0]const u8 = null, // absolute
    user: ?[]const u8 = null,
    group: ?[]const u8 = null,
    workers: u32 = 0, // 0: single process
    max_requests: u64 = 0, // 0: unlimited
    nofile: u64 = 0, // 0: unchanged
    graceful_ms: u32 = 30_000,
    notify_fd: ?c.fd_t = null, // --notify-fd N (s6 readiness)
};

var opts: Options = .{};
var exe_buf: [4096:0]u8 = undefined;
/// What a re-exec or an upgrade runs: {exe, the arguments (paths made absolute), NULL}.
var reargv: dk.Argv = undefined;
var lfd: c.fd_t = -1; // the listening socket
var pidfile: ?dk.Pidfile = null;

const usage_text =
    \\usage: dk-hello [--listen HOST:PORT] [-D|--daemonize] [--pid FILE]
    \\                [--user USER] [--group GROUP] [-w|--workers N]
    \\                [--max-requests N] [--log FILE] [--nofile N]
    \\                [--graceful-timeout SECONDS] [--foreground-notify]
    \\                [--config FILE] [--notify-fd N]
    \\
;

/// The options that take a value.
const value_options = [_][]const u8{ "--listen", "--pid", "--log", "--config", "--user", "--group", "-w", "--workers", "--max-requests", "--nofile", "--graceful-timeout", "--notify-fd" };

fn usageError(comptime fmt: []const u8, args: anytype) u8 {
    logErr("dk-hello: " ++ fmt, args);
    return 2;
}

fn parseNum(s: []const u8, max: u64) ?u64 {
    if (s.len == 0 or s[0] < '0' or s[0] > '9') return null;
    const v = std.fmt.parseInt(u64, s, 10) catch return null;
    return if (v <= max) v else null;
}

/// `path` made absolute (the daemon's working directory becomes "/").
fn absolute(gpa: std.mem.Allocator, path: []const u8) ![:0]const u8 {
    if (path.len > 0 and path[0] == '/') return gpa.dupeSentinel(u8, path, 0);
    var cwd: [4096]u8 = undefined;
    const p = c.getcwd(&cwd, cwd.len) orelse return gpa.dupeSentinel(u8, path, 0);
    return std.fmt.allocPrintSentinel(gpa, "{s}/{s}", .{ std.mem.sliceTo(p, 0), path }, 0);
}

/// Parses argv into `opts` and builds `reargv` (without `--notify-fd N`). Returns an exit
/// code for usage errors.
fn parseArgs(gpa: std.mem.Allocator, argv: []const [*:0]const u8) !?u8 {
    const re = try gpa.allocSentinel(?[*:0]const u8, argv.len, null);
    re[0] = &exe_buf;
    var i: usize = 1;
    while (i < argv.len) : (i += 1) {
        const a = std.mem.span(argv[i]);
        re[i] = argv[i];
        if (std.mem.eql(u8, a, "-D") or std.mem.eql(u8, a, "--daemonize")) {
            opts.daemonize = true;
            continue;
        }
        if (std.mem.eql(u8, a, "--foreground-notify")) {
            opts.foreground_notify = true;
            continue;
        }
        if (std.mem.eql(u8, a, "-h") or std.mem.eql(u8, a, "--help")) {
            http.writeAll(1, usage_text);
            return 0;
        }
        // --name VALUE or --name=VALUE
        const eq = if (std.mem.startsWith(u8, a, "--")) std.mem.indexOfScalar(u8, a, '=') else null;
        const name = a[0 .. eq orelse a.len];
        const known = for (value_options) |o| {
            if (std.mem.eql(u8, o, name)) break true;
        } else false;
        if (!known) {
            http.writeAll(2, usage_text);
            return usageError("unknown option '{s}'", .{a});
        }
        const opt_at = i; // where the option itself sits
        var at = i; // where the value sits
        const v: []const u8 = if (eq) |e| a[e + 1 ..] else blk: {
            if (i + 1 >= argv.len) return usageError("option '{s}' needs a value", .{a});
            i += 1;
            at = i;
            re[i] = argv[i];
            break :blk std.mem.span(argv[i]);
        };

        if (std.mem.eql(u8, name, "--listen")) {
            opts.listen = v;
        } else if (std.mem.eql(u8, name, "--pid") or std.mem.eql(u8, name, "--log") or std.mem.eql(u8, name, "--config")) {
            const abs = try absolute(gpa, v);
            if (name[2] == 'p') opts.pid_path = abs else if (name[2] == 'l') opts.log_path = abs else opts.config_path = abs;
            re[at] = if (eq != null) (try std.fmt.allocPrintSentinel(gpa, "{s}={s}", .{ name, abs }, 0)).ptr else abs.ptr;
        } else if (std.mem.eql(u8, name, "--user")) {
            opts.user = v;
        } else if (std.mem.eql(u8, name, "--group")) {
            opts.group = v;
        } else if (std.mem.eql(u8, name, "-w") or std.mem.eql(u8, name, "--workers")) {
            opts.workers = @intCast(parseNum(v, dk.Supervisor.max_workers) orelse
                return usageError("{s}: expected 0..{d}, got '{s}'", .{ name, dk.Supervisor.max_workers, v }));
        } else if (std.mem.eql(u8, name, "--max-requests")) {
            opts.max_requests = parseNum(v, std.math.maxInt(u64)) orelse
                return usageError("--max-requests: not a number: '{s}'", .{v});
        } else if (std.mem.eql(u8, name, "--nofile")) {
            opts.nofile = parseNum(v, std.math.maxInt(u64)) orelse 0;
            if (opts.nofile == 0) return usageError("--nofile: not a positive number: '{s}'", .{v});
        } else if (std.mem.eql(u8, name, "--graceful-timeout")) {
            opts.graceful_ms = @intCast(1000 * (parseNum(v, 86400) orelse
                return usageError("--graceful-timeout: expected 0..86400 seconds, got '{s}'", .{v})));
        } else if (std.mem.eql(u8, name, "--notify-fd")) {
            const fd = parseNum(v, std.math.maxInt(c_int)) orelse 0;
            if (fd < 3) return usageError("--notify-fd: expected a descriptor number of 3 or more (0..2 are stdio), got '{s}'", .{v});
            opts.notify_fd = @intCast(fd);
            re[opt_at] = null; // not for a re-exec or an upgrade: dropped below
            re[at] = null;
        } else unreachable; // not in value_options
    }
    // Close the gaps --notify-fd left.
    var j: usize = 1;
    for (re[1..]) |arg| if (arg) |a| {
        re[j] = a;
        j += 1;
    };
    re[j] = null;
    if (opts.max_requests > 0 and opts.workers == 0)
        return usageError("--max-requests needs workers (-w N): a single process cannot be replaced after N requests", .{});
    if (opts.group != null and opts.user == null)
        return usageError("--group needs --user", .{});
    reargv = re[0..j :null];
    return null;
}

// ---------------------------------------------------------------------------------------
// Configuration file

/// HUP: re-reads --config. True when there is none, or it validated (and is now current);
/// false when it was refused (the running configuration stays, and we say why).
fn reloadConfig() bool {
    const path = opts.config_path orelse return true;
    var problem: config.Problem = .{};
    config.current = config.load(path, &problem) catch {
        logErr("config {s}: {s}; keeping the old one", .{ path, problem.text() });
        return false;
    };
    logErr("config {s}: reloaded (greeting '{s}', slow_max_ms {d}, io_timeout_ms {d})", .{
        path, config.current.greeting(), config.current.slow_max_ms, config.current.io_timeout_ms,
    });
    return true;
}

/// USR2: the new generation reads --config at its start; check it first so that a bad file
/// is reported here instead of as a new generation that died.
fn configValid() bool {
    const path = opts.config_path orelse return true;
    var problem: config.Problem = .{};
    _ = config.load(path, &problem) catch {
        logErr("upgrade refused: config {s}: {s}; still serving", .{ path, problem.text() });
        return false;
    };
    return true;
}

// ---------------------------------------------------------------------------------------
// The serving loop (single process and workers)

const Phase = enum {
    running,
    /// TERM/INT/QUIT, or --max-requests reached: exit when drained.
    drain_exit,
    /// USR2 succeeded: exit when drained, leave the PID file.
    drain_upgraded,
    /// HUP: re-exec when drained, the listener kept open.
    drain_reexec,
};

const Server = struct {
    worker: bool,
    sigs: dk.signal.Watcher,
    phase: Phase = .running,
    drain_deadline: i64 = 0,
    accept_pause: i64 = 0,
    accepted: u64 = 0,
    announced: bool = false,

    fn beginDrain(s: *Server, p: Phase, close_listener: bool) void {
        s.phase = p;
        s.drain_deadline = http.nowMs() + opts.graceful_ms;
        if (close_listener and lfd >= 0) {
            _ = c.close(lfd); // stop accepting; queued clients go to a sibling or successor
            lfd = -1;
        }
    }

    fn upgrade(s: *Server) void {
        var diag: dk.Diagnostics = .{};
        if (dk.upgrade(reargv, &.{lfd}, null, pidfile, upgrade_timeout_ms, &diag)) |pid| {
            logErr("upgrade: new generation {d} is ready; draining", .{pid});
            s.beginDrain(.drain_upgraded, true);
        } else |_| {
            logErr("upgrade failed: {f}; still serving", .{diag});
        }
    }

    fn onSignals(s: *Server) void {
        while (s.sigs.next()) |sig| switch (sig) {
            .TERM, .INT, .QUIT => {
                if (s.phase == .drain_exit or s.phase == .drain_upgraded) continue;
                if (!s.worker) _ = dk.notify.stopping() catch {};
                s.beginDrain(.drain_exit, true);
            },
            .HUP => {
                if (s.worker or s.phase != .running) continue;
                _ = dk.notify.reloading() catch {};
                if (!reloadConfig()) {
                    _ = dk.notify.send("READY=1") catch {}; // reload done: nothing changed
                    continue;
                }
                s.beginDrain(.drain_reexec, false); // keep the listener for the new image
            },
            .USR1 => dk.log.reopen() catch {}, // BadFileDescriptor without --log: nothing to do
            .USR2 => if (!s.worker and s.phase == .running and configValid()) s.upgrade(),
            .TTIN, .TTOU => if (!s.worker) logErr("TTIN/TTOU ignored: single process (start with -w N for workers)", .{}),
            else => {},
        };
    }

    /// Serves until the phase says stop and every connection is done (or the graceful
    /// timeout passed). Returns the phase that ended it.
    fn serve(s: *Server) Phase {
        const P = struct {
            var fds: [http.max_conns + 2]std.posix.pollfd = undefined;
            var tags: [http.max_conns + 2]i32 = undefined;
        };
        while (true) {
            var now = http.nowMs();
            if (s.phase != .running and http.count() == 0) return s.phase;
            if (s.phase != .running and now >= s.drain_deadline) {
                logErr("graceful timeout: closing {d} connection(s)", .{http.count()});
                http.closeAll();
                return s.phase;
            }
            if (s.phase == .running and opts.max_requests > 0 and s.accepted >= opts.max_requests) {
                logErr("max requests ({d}) reached; worker {d} exits when done", .{ opts.max_requests, c.getpid() });
                s.beginDrain(.drain_exit, true);
                continue;
            }

            // Watch the signal fd, the listener (while accepting) and every connection.
            var next: i64 = -1;
            P.fds[0] = s.sigs.pollFd();
            P.tags[0] = -1;
            var n: usize = 1;
            var listen_at: ?usize = null;
            if (s.phase == .running and lfd >= 0 and http.count() < http.max_conns) {
                if (now >= s.accept_pause) {
                    listen_at = n;
                    P.fds[n] = .{ .fd = lfd, .events = std.posix.POLL.IN, .revents = 0 };
                    P.tags[n] = -1;
                    n += 1;
                } else next = s.accept_pause;
            }
            n = http.fillPoll(&P.fds, &P.tags, n, &next);
            if (s.phase != .running and (next < 0 or s.drain_deadline < next)) next = s.drain_deadline;
            const timeout: i32 = if (next < 0) -1 else if (next <= now) 0 else @intCast(@min(next - now, std.math.maxInt(i32)));

            // Ready once we are about to poll the listener: the launcher, the old
            // generation or the master is waiting for this.
            if (!s.announced) {
                s.announced = true;
                dk.ready() catch |e| logErr("ready: {s}", .{dk.describe(e)});
            }
            _ = std.posix.poll(P.fds[0..n], timeout) catch |e| {
                logErr("poll: {t}", .{e});
                return .drain_exit;
            };

            if (P.fds[0].revents != 0) s.onSignals();
            http.onPoll(P.fds[0..n], P.tags[0..n]);
            now = http.nowMs();
            http.expire(now);
            if (listen_at) |li| {
                if (lfd >= 0 and s.phase == .running and P.fds[li].revents != 0) {
                    const limit = if (opts.max_requests > 0) opts.max_requests - s.accepted else std.math.maxInt(u64);
                    const r = http.acceptSome(lfd, @intCast(@min(limit, std.math.maxInt(usize))));
                    s.accepted += r.accepted;
                    if (r.pause) s.accept_pause = now + 100;
                }
            }
        }
    }
};

// ---------------------------------------------------------------------------------------
// Single process and supervisor

fn runSingle() u8 {
    // Signals arrive as bytes on a pipe watched by the poll loop.
    const sigs = dk.signal.open(&.{ .TERM, .INT, .QUIT, .HUP, .USR1, .USR2, .TTIN, .TTOU }) catch |e| {
        dk.failFmt(1, "signals: {s}", .{dk.describe(e)});
        return 1;
    };
    var s: Server = .{ .worker = false, .sigs = sigs };
    while (true) {
        switch (s.serve()) {
            .drain_reexec => {
                // HUP: same pid, PID file still locked, listener kept; the new image runs
                // this same startup (reading --config again) and calls ready() (READY=1).
                var diag: dk.Diagnostics = .{};
                dk.reexec(reargv, &.{lfd}, null, pidfile, &diag) catch {};
                logErr("HUP: {f}; still serving", .{diag});
                _ = dk.notify.send("READY=1") catch {};
                s.phase = .running;
            },
            .drain_upgraded => {
                if (pidfile) |pf| pf.close(); // the file holds the new generation's pid now
                return 0;
            },
            .drain_exit, .running => {
                if (pidfile) |pf| pf.remove() catch |e| switch (e) {
                    error.AccessDenied => logErr("pid file {s} left behind (directory not writable); it is harmless, its lock is free", .{opts.pid_path.?}),
                    else => logErr("pid file {s}: {s}", .{ opts.pid_path.?, dk.describe(e) }),
                };
                return 0;
            },
        }
    }
}

/// A supervised worker: runs in the child with default signal dispositions.
fn workerMain(_: void, _: u32) !void {
    // The worker starts with every disposition at its default, SIGPIPE included: a client
    // that hangs up must give EPIPE, not kill the worker.
    try dk.signal.ignoreSigpipe();
    const sigs = try dk.signal.open(&.{ .TERM, .INT, .QUIT, .USR1 });
    var s: Server = .{ .worker = true, .sigs = sigs };
    _ = s.serve(); // TERM or --max-requests: drained
}

/// Supervisor events, in the master: one line each on stderr; on HUP the configuration is
/// re-read before the new workers start (they inherit it).
fn onEvent(_: void, ev: dk.Event) void {
    logErr("{f}", .{ev});
    if (ev.kind == .reloading) _ = reloadConfig();
}

fn runSupervisor() u8 {
    const sv = dk.Supervisor.init() catch |e| {
        dk.failFmt(1, "supervisor: {s}", .{dk.describe(e)});
        return 1;
    };
    defer sv.deinit();
    setupSupervisor(sv) catch |e| {
        dk.failFmt(1, "supervisor: {s}", .{dk.describe(e)});
        return 1;
    };
    // The master: HUP/TTIN/TTOU/TERM/INT/QUIT/USR1/USR2, ready() once the workers are.
    _ = sv.run() catch |e| {
        dk.failFmt(1, "supervisor: {s}", .{dk.describe(e)});
        return 1;
    };
    if (pidfile) |pf| pf.close(); // stopped: already unlinked; upgraded: the new one's
    return 0;
}

fn setupSupervisor(sv: dk.Supervisor) !void {
    try sv.setWorkers(opts.workers);
    try sv.setGracefulTimeout(opts.graceful_ms);
    try sv.addListener(lfd);
    if (pidfile) |pf| try sv.setPidfile(pf);
    try sv.setUpgrade(reargv, upgrade_timeout_ms);
    try sv.setWorker({}, workerMain);
    try sv.setEvent({}, onEvent);
}

// ---------------------------------------------------------------------------------------

pub fn main(init: std.process.Init.Minimal) u8 {
    // 1. Parse the command line; resolve our own path for re-exec and upgrade.
    const n = c.readlink("/proc/self/exe", &exe_buf, exe_buf.len - 1);
    if (n <= 0) {
        logErr("dk-hello: /proc/self/exe: {t}", .{c.errno(n)});
        return 1;
    }
    exe_buf[@intCast(n)] = 0;
    const gpa = std.heap.c_allocator;
    if (parseArgs(gpa, init.args.vector) catch {
        logErr("dk-hello: out of memory", .{});
        return 1;
    }) |code| return code;

    // The configuration file: refused at start means no start.
    if (opts.config_path) |path| {
        var problem: config.Problem = .{};
        config.current = config.load(path, &problem) catch {
            logErr("config {s}: {s}", .{ path, problem.text() });
            return 1;
        };
    }

    // s6 readiness: the library owns fd N from here on (close-on-exec, kept by daemonize's
    // fd sweep) and ready() writes "\n" to it.
    if (opts.notify_fd) |fd| dk.notify.readyFd(fd) catch |e| {
        logErr("dk-hello: --notify-fd {d}: {s}", .{ fd, dk.describe(e) });
        return 1;
    };

    // 2. PID file: opened and locked first, before binding and daemonizing, so "already
    //    running" reaches the terminal, also when the second start names the same fixed
    //    port. (After a re-exec or upgrade the inherited locked fd is adopted.)
    if (opts.pid_path) |path| {
        var diag: dk.Diagnostics = .{};
        pidfile = dk.Pidfile.open(path, .{}, &diag) catch {
            logErr("{f}", .{diag}); // pid file PATH: daemon already running (PID: N)
            return 1;
        };
    }

    // 3. Listeners: inherited (socket activation, re-exec, upgrade) or bound. A bind error
    //    reaches the terminal; the PID file we locked goes with us.
    const act = dk.listen.fds(.{ .unset = true }, null) catch |e| {
        logErr("LISTEN_FDS: {s}", .{dk.describe(e)});
        if (pidfile) |pf| pf.remove() catch {};
        return 1;
    };
    if (act.count > 0) {
        lfd = act.fd(0); // only the first one is used
    } else {
        var diag: dk.Diagnostics = .{};
        lfd = dk.listen.tcp(opts.listen, .{}, &diag) catch {
            logErr("{f}", .{diag}); // 127.0.0.1:8080: Address already in use
            if (pidfile) |pf| pf.remove() catch {}; // nothing written yet: ours to unlink
            return 1;
        };
    }
    // workers race for accept: the listener must not block
    const nonblock: u32 = @bitCast(c.O{ .NONBLOCK = true });
    _ = c.fcntl(lfd, c.F.SETFL, c.fcntl(lfd, c.F.GETFL) | @as(c_int, @bitCast(nonblock)));
    var name_buf: [128]u8 = undefined;
    const name = dk.socket.name(lfd, &name_buf) catch std.fmt.bufPrint(&name_buf, "fd {d}", .{lfd}) catch "?";
    logErr("listening on {s}", .{name});

    // 4. Daemonize. With -D the launcher waits here for ready()/fail() and exits with the
    //    daemon's verdict; from now on failures go through fail().
    _ = dk.daemonize(.{
        .foreground = !opts.daemonize or opts.foreground_notify or opts.notify_fd != null,
        .keep = &.{lfd},
        .umask = 0o022,
    }, null) catch |e| {
        dk.failFmt(1, "daemonize: {s}", .{dk.describe(e)});
        return 1;
    };

    // 5. Log: stdout and stderr appended to --log FILE (USR1 reopens it).
    if (opts.log_path) |path| {
        var diag: dk.Diagnostics = .{};
        dk.log.open(path, .{}, &diag) catch {
            dk.failFmt(1, "{f}", .{diag});
            return 1;
        };
        logErr("listening on {s}", .{name});
        // With --user, hand the file to that user: a re-exec (HUP) or a new generation
        // (USR2) opens it again after the privilege drop, and USR1 reopens it. (An unknown
        // user is reported at step 8.)
        if (opts.user) |user| if (c.geteuid() == 0) {
            if (dk.privileges.lookupUser(user, null)) |ids| {
                const gid = if (opts.group) |g| dk.privileges.lookupGroup(g, null) catch ids.gid else ids.gid;
                if (c.fchown(1, ids.uid, gid) != 0) logErr("log file {s}: chown: {t}", .{ path, c.errno(-1) });
            } else |_| {}
        };
    }

    // 6. Write our pid (the daemon's, not the launcher's).
    if (pidfile) |pf| pf.write() catch |e| {
        dk.failFmt(1, "pid file {s}: {s}", .{ opts.pid_path.?, dk.describe(e) });
        return 1;
    };

    // 7. Limits: --nofile, and no core dumps.
    if (opts.nofile > 0) {
        const got = dk.rlimit.nofile(opts.nofile) catch |e| {
            dk.failFmt(1, "nofile limit: {s}", .{dk.describe(e)});
            return 1;
        };
        logErr("nofile limit set to {d}", .{got});
    }
    dk.rlimit.disableCore() catch {};

    // 8. Privileges: for good, with the user's groups (a no-op when we already are that
    //    user, as after a re-exec).
    if (opts.user) |user| {
        var diag: dk.Diagnostics = .{};
        dk.privileges.drop(user, opts.group, &diag) catch {
            dk.failFmt(1, "{f}", .{diag}); // unknown user 'www'
            return 1;
        };
    }

    // 9. A client that hangs up gives EPIPE, not death.
    dk.signal.ignoreSigpipe() catch {};

    // 10. Run.
    return if (opts.workers == 0) runSingle() else runSupervisor();
}

test {
    _ = config;
    _ = http;
    _ = @import("plumbing_test.zig");
}
