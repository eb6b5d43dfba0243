//! The example does its process plumbing through the daemonkit binding only: no direct
//! call of fork, setsid, flock, setuid or sigaction (nor their relatives) in its sources.
const std = @import("std");

const sources = [_]struct { name: []const u8, text: []const u8 }{
    .{ .name = "main.zig", .text = @embedFile("main.zig") },
    .{ .name = "http.zig", .text = @embedFile("http.zig") },
    .{ .name = "config.zig", .text = @embedFile("config.zig") },
};

const forbidden = [_][]const u8{
    "fork",      "vfork",      "setsid",    "daemon", "flock",       "lockf",
    "setuid",    "seteuid",    "setresuid", "setgid", "setegid",     "setresgid",
    "setgroups", "initgroups", "sigaction", "signal", "sigprocmask", "execve",
};

fn isIdent(ch: u8) bool {
    return std.ascii.isAlphanumeric(ch) or ch == '_';
}

/// `name` used as a call: not part of a longer identifier, followed by `(`.
fn calls(text: []const u8, name: []const u8) ?usize {
    var i: usize = 0;
    while (std.mem.indexOfPos(u8, text, i, name)) |at| : (i = at + 1) {
        if (at > 0 and isIdent(text[at - 1])) continue;
        var j = at + name.len;
        if (j < text.len and isIdent(text[j])) continue;
        while (j < text.len and (text[j] == ' ' or text[j] == '\t')) j += 1;
        if (j < text.len and text[j] == '(') return at;
    }
    return null;
}

test "no direct fork/setsid/flock/setuid/sigaction call: all of it comes from the binding" {
    var found = false;
    for (sources) |src| for (forbidden) |name| {
        if (calls(src.text, name)) |at| {
            const line = std.mem.count(u8, src.text[0..at], "\n") + 1;
            std.debug.print("{s}:{d}: calls {s}() directly\n", .{ src.name, line, name });
            found = true;
        }
    };
    try std.testing.expect(!found);
    // the detector itself
    try std.testing.expect(calls("_ = std.c.fork();", "fork") != null);
    try std.testing.expect(calls("x = setuid (0);", "setuid") != null);
    try std.testing.expect(calls("dk.daemonize(.{})", "daemon") == null);
    try std.testing.expect(calls("// no fork here", "fork") == null);
}
