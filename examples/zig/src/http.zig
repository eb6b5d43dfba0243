//! HTTP/1.1, just enough: one request per connection, answered with Content-Length and
//! `Connection: close`. Connections are non-blocking and live in a fixed table the poll
//! loop in main.zig watches; `/slow?ms=N` parks its connection until a deadline instead of
//! sleeping, so one process keeps serving its other clients meanwhile.
const std = @import("std");
const config = @import("config.zig");

const c = std.c;
const pollfd = std.posix.pollfd;
const POLL = std.posix.POLL;

pub const lang = "zig";
const req_max = 8192; // request line + headers, at most
const out_max = 2048; // one whole response
pub const max_conns = 1024;

extern "c" fn getgroups(size: c_int, list: ?[*]c.gid_t) c_int;

pub fn nowMs() i64 {
    var ts: c.timespec = undefined;
    _ = c.clock_gettime(.MONOTONIC, &ts);
    return @as(i64, ts.sec) * 1000 + @divTrunc(@as(i64, ts.nsec), 1_000_000);
}

const State = enum { free, read, wait, write };

const Conn = struct {
    fd: c.fd_t = -1,
    state: State = .free,
    /// read/write: the I/O timeout; wait: when /slow answers.
    deadline: i64 = 0,
    method: []const u8 = "-",
    target: []const u8 = "-",
    head: bool = false,
    in_len: usize = 0,
    out_len: usize = 0,
    out_pos: usize = 0,
    in: [req_max]u8 = undefined,
    out: [out_max]u8 = undefined,
};

var conns: [max_conns]Conn = @splat(.{});
var open_count: usize = 0;

/// Connections currently open.
pub fn count() usize {
    return open_count;
}

fn close(conn: *Conn) void {
    _ = c.close(conn.fd);
    conn.fd = -1;
    conn.state = .free;
    open_count -= 1;
}

/// Closes every connection (graceful timeout passed).
pub fn closeAll() void {
    for (&conns) |*conn| if (conn.state != .free) close(conn);
}

pub const AcceptResult = struct { accepted: usize = 0, pause: bool = false };

/// Accepts up to `limit` connections from the non-blocking listener.
pub fn acceptSome(lfd: c.fd_t, limit: usize) AcceptResult {
    var res: AcceptResult = .{};
    while (res.accepted < @min(limit, 64) and open_count < max_conns) {
        const fd = c.accept4(lfd, null, null, c.SOCK.NONBLOCK | c.SOCK.CLOEXEC);
        if (fd < 0) {
            switch (c.errno(fd)) {
                .INTR, .CONNABORTED => continue,
                .MFILE, .NFILE, .NOBUFS, .NOMEM => |e| {
                    logErr("accept: {t}; pausing 100 ms", .{e});
                    res.pause = true;
                },
                else => {}, // AGAIN: a sibling took it, or nothing left
            }
            return res;
        }
        const conn = for (&conns) |*k| {
            if (k.state == .free) break k;
        } else unreachable;
        conn.* = .{ .fd = fd, .state = .read, .deadline = nowMs() + config.current.io_timeout_ms };
        open_count += 1;
        res.accepted += 1;
    }
    return res;
}

/// Adds a pollfd per connection to `fds` (tagging each with its table index in `tags`)
/// from `at`; returns the new count and lowers `next` to the earliest deadline.
pub fn fillPoll(fds: []pollfd, tags: []i32, at: usize, next: *i64) usize {
    var n = at;
    for (&conns, 0..) |*conn, i| {
        if (conn.state == .free) continue;
        fds[n] = .{ .fd = conn.fd, .events = switch (conn.state) {
            .read => POLL.IN,
            .write => POLL.OUT,
            else => 0,
        }, .revents = 0 };
        tags[n] = @intCast(i);
        n += 1;
        if (next.* < 0 or conn.deadline < next.*) next.* = conn.deadline;
    }
    return n;
}

/// Handles poll results for the connections tagged in `tags` (tag < 0: not a connection).
pub fn onPoll(fds: []const pollfd, tags: []const i32) void {
    for (fds, tags) |p, tag| {
        if (tag < 0 or p.revents == 0) continue;
        const conn = &conns[@intCast(tag)];
        switch (conn.state) {
            .read => onReadable(conn),
            .write => onWritable(conn),
            .wait => if (p.revents & (POLL.ERR | POLL.HUP) != 0) close(conn), // the /slow client left
            .free => {},
        }
    }
}

/// Answers parked /slow requests and drops connections past their I/O deadline.
pub fn expire(now: i64) void {
    for (&conns) |*conn| {
        if (conn.state == .free or conn.deadline > now) continue;
        if (conn.state == .wait) respond(conn, 200, "done\n") else close(conn);
    }
}

fn onWritable(conn: *Conn) void {
    while (conn.out_pos < conn.out_len) {
        const n = c.write(conn.fd, conn.out[conn.out_pos..].ptr, conn.out_len - conn.out_pos);
        if (n > 0) {
            conn.out_pos += @intCast(n);
            continue;
        }
        switch (c.errno(n)) {
            .INTR => continue,
            .AGAIN => return, // the poll loop waits for POLL.OUT
            else => break, // the client went away
        }
    }
    close(conn); // Connection: close
}

fn onReadable(conn: *Conn) void {
    while (true) {
        if (conn.in_len == req_max) return respond(conn, 431, "request head over 8 KiB\n");
        const n = c.read(conn.fd, conn.in[conn.in_len..].ptr, req_max - conn.in_len);
        if (n > 0) {
            const from = conn.in_len -| 3;
            conn.in_len += @intCast(n);
            if (std.mem.indexOfPos(u8, conn.in[0..conn.in_len], from, "\r\n\r\n")) |end| {
                if (std.mem.indexOfScalar(u8, conn.in[0..end], 0) != null)
                    return respond(conn, 400, "bad request\n"); // a NUL byte in the head
                return handle(conn, conn.in[0..end]);
            }
            continue;
        }
        if (n < 0) switch (c.errno(n)) {
            .INTR => continue,
            .AGAIN => return,
            else => {},
        };
        return close(conn); // closed (or failed) before a whole request
    }
}

fn tokenOk(s: []const u8, lo: u8, hi: u8) bool {
    for (s) |ch| if (ch < lo or ch > hi) return false;
    return true;
}

/// A whole request head: parse the request line and answer.
fn handle(conn: *Conn, head: []const u8) void {
    const line = head[0 .. std.mem.indexOf(u8, head, "\r\n") orelse head.len];
    var parts = std.mem.splitScalar(u8, line, ' ');
    const method = parts.next() orelse "";
    const target = parts.next() orelse "";
    const version = parts.rest();
    if (method.len == 0 or method.len > 15 or !tokenOk(method, 'A', 'Z') or target.len == 0 or
        target[0] != '/' or !tokenOk(target, '!', '~') or !std.mem.startsWith(u8, version, "HTTP/1."))
        return respond(conn, 400, "bad request\n");
    conn.method = method;
    conn.target = target;
    conn.head = std.mem.eql(u8, method, "HEAD");

    const q = std.mem.indexOfScalar(u8, target, '?');
    const path = target[0 .. q orelse target.len];
    const query = if (q) |i| target[i + 1 ..] else "";
    const Route = enum { root, pid, ids, slow };
    const route = std.meta.stringToEnum(Route, switch (path.len) {
        1 => "root",
        else => path[1..],
    }) orelse return respond(conn, 404, "not found\n");
    if (route == .root and !std.mem.eql(u8, path, "/")) return respond(conn, 404, "not found\n");
    if (!std.mem.eql(u8, method, "GET") and !conn.head) return respond(conn, 405, "method not allowed\n");

    var body: [out_max / 2]u8 = undefined;
    const pid = c.getpid();
    switch (route) {
        .root => respond(conn, 200, std.fmt.bufPrint(&body, "{s} from {s} pid {d}\n", .{ config.current.greeting(), lang, pid }) catch "?\n"),
        .pid => respond(conn, 200, std.fmt.bufPrint(&body, "{d}\n", .{pid}) catch "?\n"),
        .ids => respond(conn, 200, idsBody(&body)),
        .slow => {
            const ms = slowMs(query) orelse {
                var msg: [96]u8 = undefined;
                return respond(conn, 400, std.fmt.bufPrint(&msg, "usage: /slow?ms=N (N <= {d})\n", .{config.current.slow_max_ms}) catch "usage\n");
            };
            // No sleeping: park the connection; the poll loop answers it at the deadline.
            conn.state = .wait;
            conn.deadline = nowMs() + ms;
        },
    }
}

/// GET /ids: `uid=N gid=N euid=N egid=N groups=N,N…`
fn idsBody(buf: []u8) []const u8 {
    var w: std.Io.Writer = .fixed(buf);
    w.print("uid={d} gid={d} euid={d} egid={d} groups=", .{ c.getuid(), c.getgid(), c.geteuid(), c.getegid() }) catch {};
    var groups: [256]c.gid_t = undefined;
    const n = getgroups(groups.len, &groups);
    for (groups[0..@intCast(@max(n, 0))], 0..) |g, i| w.print("{s}{d}", .{ if (i > 0) "," else "", g }) catch {};
    w.writeByte('\n') catch {};
    return w.buffered();
}

/// /slow?ms=N: N (at most slow_max_ms), or null when missing or malformed.
fn slowMs(query: []const u8) ?u32 {
    var it = std.mem.splitScalar(u8, query, '&');
    while (it.next()) |kv| {
        if (!std.mem.startsWith(u8, kv, "ms=")) continue;
        const v = kv[3..];
        if (v.len == 0 or v.len > 10 or !tokenOk(v, '0', '9')) return null;
        const ms = std.fmt.parseInt(u32, v, 10) catch return null;
        return if (ms <= config.current.slow_max_ms) ms else null;
    }
    return null;
}

fn reason(status: u16) []const u8 {
    return switch (status) {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        else => "Error",
    };
}

/// Queues the response, logs the request line (`METHOD PATH STATUS pid=PID` on stdout,
/// unbuffered), and starts writing.
fn respond(conn: *Conn, status: u16, body: []const u8) void {
    const out = std.fmt.bufPrint(&conn.out, "HTTP/1.1 {d} {s}\r\nContent-Type: text/plain\r\nContent-Length: {d}\r\n{s}Connection: close\r\n\r\n{s}", .{
        status,
        reason(status),
        body.len,
        if (status == 405) "Allow: GET, HEAD\r\n" else "",
        if (conn.head) "" else body,
    }) catch conn.out[0..];
    conn.out_len = out.len;
    conn.out_pos = 0;
    conn.state = .write;
    conn.deadline = nowMs() + config.current.io_timeout_ms;
    var line: [256]u8 = undefined;
    const l = std.fmt.bufPrint(&line, "{s} {s} {d} pid={d}\n", .{ conn.method, conn.target, status, c.getpid() }) catch line[0..];
    writeAll(1, l);
    onWritable(conn);
}

pub fn writeAll(fd: c.fd_t, data: []const u8) void {
    var off: usize = 0;
    while (off < data.len) {
        const n = c.write(fd, data[off..].ptr, data.len - off);
        if (n > 0) {
            off += @intCast(n);
        } else if (n < 0 and c.errno(n) == .INTR) {
            continue;
        } else return;
    }
}

/// One line on stderr (the log file with --log), written at once.
pub fn logErr(comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    var w: std.Io.Writer = .fixed(buf[0 .. buf.len - 1]);
    w.print(fmt, args) catch {};
    const n = w.buffered().len;
    buf[n] = '\n';
    writeAll(2, buf[0 .. n + 1]);
}
