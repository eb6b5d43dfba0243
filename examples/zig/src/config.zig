//! The server's configuration file: a few `key = value` lines read at start and again on
//! HUP (before the re-exec in single-process mode; in the master, before the new workers
//! start, with -w N). A file that does not parse or validate is refused as a whole and the
//! running configuration stays. The listen address is not in it (sockets are kept across a
//! reload; use --listen).
//!
//!     # dk-hello (zig)
//!     greeting = hello        # GET / answers "<greeting> from zig pid N"
//!     slow_max_ms = 600000    # the longest /slow?ms=N accepted (0..3600000)
//!     io_timeout_ms = 10000   # a client must send its request / read ours within this
const std = @import("std");

pub const App = struct {
    greeting_buf: [64]u8 = blk: {
        var b: [64]u8 = @splat(0);
        @memcpy(b[0..5], "hello");
        break :blk b;
    },
    greeting_len: usize = 5,
    slow_max_ms: u32 = 600_000,
    io_timeout_ms: u32 = 10_000,

    pub fn greeting(a: *const App) []const u8 {
        return a.greeting_buf[0..a.greeting_len];
    }
};

/// The running configuration (defaults until a file is loaded).
pub var current: App = .{};

/// Why a file was refused: "line 3: unknown key 'colour'".
pub const Problem = struct {
    buf: [256]u8 = undefined,
    len: usize = 0,

    pub fn text(p: *const Problem) []const u8 {
        return p.buf[0..p.len];
    }

    fn set(p: *Problem, comptime fmt: []const u8, args: anytype) error{Invalid} {
        const s = std.fmt.bufPrint(&p.buf, fmt, args) catch p.buf[0..];
        p.len = s.len;
        return error.Invalid;
    }
};

const max_size = 64 * 1024;

/// Reads and validates `path` into a new `App`; on failure `problem` says why.
pub fn load(path: [:0]const u8, problem: *Problem) error{Invalid}!App {
    var buf: [max_size + 1]u8 = undefined;
    const fd = std.c.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
    if (fd < 0) return problem.set("cannot open: {s}", .{errnoText()});
    defer _ = std.c.close(fd);
    var n: usize = 0;
    while (n < buf.len) {
        const r = std.c.read(fd, buf[n..].ptr, buf.len - n);
        if (r < 0) return problem.set("cannot read: {s}", .{errnoText()});
        if (r == 0) break;
        n += @intCast(r);
    }
    if (n > max_size) return problem.set("larger than {d} bytes", .{max_size});
    return parse(buf[0..n], problem);
}

fn errnoText() []const u8 {
    const e: c_int = std.c._errno().*;
    return std.mem.span(@import("daemonkit").c.dk_strerror(e));
}

/// Parses a configuration text (every line checked; the first problem wins).
pub fn parse(text: []const u8, problem: *Problem) error{Invalid}!App {
    var app: App = .{};
    var lines = std.mem.splitScalar(u8, text, '\n');
    var lineno: usize = 0;
    while (lines.next()) |raw| {
        lineno += 1;
        const no_comment = if (std.mem.indexOfScalar(u8, raw, '#')) |i| raw[0..i] else raw;
        const line = std.mem.trim(u8, no_comment, " \t\r");
        if (line.len == 0) continue;
        const eq = std.mem.indexOfScalar(u8, line, '=') orelse
            return problem.set("line {d}: expected key = value, got '{s}'", .{ lineno, line });
        const key = std.mem.trim(u8, line[0..eq], " \t");
        const value = std.mem.trim(u8, line[eq + 1 ..], " \t");
        if (std.mem.eql(u8, key, "greeting")) {
            if (value.len == 0 or value.len > app.greeting_buf.len)
                return problem.set("line {d}: greeting: 1 to {d} characters, got {d}", .{ lineno, app.greeting_buf.len, value.len });
            for (value) |ch| if (ch < 0x20 or ch > 0x7e)
                return problem.set("line {d}: greeting: printable ASCII only", .{lineno});
            @memcpy(app.greeting_buf[0..value.len], value);
            app.greeting_len = value.len;
        } else if (std.mem.eql(u8, key, "slow_max_ms")) {
            app.slow_max_ms = number(value, 3_600_000) orelse
                return problem.set("line {d}: slow_max_ms: expected 0..3600000, got '{s}'", .{ lineno, value });
        } else if (std.mem.eql(u8, key, "io_timeout_ms")) {
            const v = number(value, 600_000) orelse 0;
            if (v < 100) return problem.set("line {d}: io_timeout_ms: expected 100..600000, got '{s}'", .{ lineno, value });
            app.io_timeout_ms = v;
        } else if (std.mem.eql(u8, key, "listen")) {
            return problem.set("line {d}: the listen address is not a config key (use --listen; sockets are kept across reloads)", .{lineno});
        } else {
            return problem.set("line {d}: unknown key '{s}'", .{ lineno, key });
        }
    }
    return app;
}

fn number(s: []const u8, max: u32) ?u32 {
    if (s.len == 0 or s[0] < '0' or s[0] > '9') return null;
    const v = std.fmt.parseInt(u32, s, 10) catch return null;
    return if (v <= max) v else null;
}

test parse {
    var p: Problem = .{};
    const a = try parse("# comment\n greeting = hi there \nslow_max_ms=5\n\nio_timeout_ms = 200 # trailing\n", &p);
    try std.testing.expectEqualStrings("hi there", a.greeting());
    try std.testing.expectEqual(@as(u32, 5), a.slow_max_ms);
    try std.testing.expectEqual(@as(u32, 200), a.io_timeout_ms);
    try std.testing.expectError(error.Invalid, parse("colour = red\n", &p));
    try std.testing.expectEqualStrings("line 1: unknown key 'colour'", p.text());
    try std.testing.expectError(error.Invalid, parse("greeting = ok\nslow_max_ms = soon\n", &p));
    try std.testing.expectEqualStrings("line 2: slow_max_ms: expected 0..3600000, got 'soon'", p.text());
    try std.testing.expectError(error.Invalid, parse("listen = 127.0.0.1:80\n", &p));
    try std.testing.expectError(error.Invalid, parse("just words\n", &p));
    try std.testing.expectEqualStrings("hello", (App{}).greeting());
}
