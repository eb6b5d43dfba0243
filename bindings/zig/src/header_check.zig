//! Checks the hand-written `extern fn` declarations of `daemonkit.c` against
//! `include/daemonkit.h`: each Zig function type is rendered back to a normalized C
//! signature (`int(const char*,uint32_t,dk_pidfile**)`), each header prototype (which may
//! span several lines) is normalized the same way (parameter names dropped, function
//! pointer typedefs expanded), and the two lists are compared both ways. `DK_*` integer
//! constants are compared by value.
//!
//! Rendering rules (Zig → C): `c_int` int, `c_uint` unsigned int, `u8`/`i32`/`u32`/`u64`
//! uint8_t/int32_t/uint32_t/uint64_t, `usize` size_t, `anyopaque` void, an opaque type its
//! own name, `[*:0]const u8` const char* (C strings), `[*]c_char` char* (char buffers),
//! `[*]u8` uint8_t*, optionals as their child (C pointers are nullable), a pointer to a
//! function `RET(*)(PARAMS)`.
const std = @import("std");

pub const Prototype = struct {
    name: []const u8,
    /// `RET(P1,P2)`; no parameters: `RET()`.
    sig: []const u8,
};

pub const Constant = struct {
    name: []const u8,
    value: ?i128,
};

// ---------------------------------------------------------------------------------------
// Zig side (comptime)

fn intName(comptime T: type) []const u8 {
    return switch (T) {
        c_char => "char",
        c_int => "int",
        c_uint => "unsigned int",
        c_long => "long",
        c_ulong => "unsigned long",
        c_short => "short",
        c_ushort => "unsigned short",
        c_longlong => "long long",
        c_ulonglong => "unsigned long long",
        usize => "size_t",
        isize => "ssize_t",
        u8 => "uint8_t",
        i8 => "int8_t",
        u16 => "uint16_t",
        i16 => "int16_t",
        u32 => "uint32_t",
        i32 => "int32_t",
        u64 => "uint64_t",
        i64 => "int64_t",
        else => @compileError("header_check: no C name for " ++ @typeName(T)),
    };
}

fn isPointerLike(comptime T: type) bool {
    return switch (@typeInfo(T)) {
        .pointer => true,
        .optional => |o| isPointerLike(o.child),
        else => false,
    };
}

fn baseName(comptime full: []const u8) []const u8 {
    const i = std.mem.lastIndexOfScalar(u8, full, '.') orelse return full;
    return full[i + 1 ..];
}

/// The normalized C spelling of a Zig type used in an extern declaration.
pub fn renderType(comptime T: type) []const u8 {
    comptime {
        switch (@typeInfo(T)) {
            .void, .noreturn => return "void",
            .@"opaque" => return if (T == anyopaque) "void" else baseName(@typeName(T)),
            .optional => |o| return renderType(o.child),
            .int => return intName(T),
            .bool => return "bool",
            .pointer => |p| {
                if (p.size == .slice) @compileError("header_check: a slice cannot cross the C ABI: " ++ @typeName(T));
                if (@typeInfo(p.child) == .@"fn") return renderFnPointer(p.child);
                const is_const = p.attrs.@"const";
                const inner = if (p.child == u8 and p.sentinel() != null) "char" else renderType(p.child);
                if (isPointerLike(p.child))
                    return inner ++ (if (is_const) "const" else "") ++ "*";
                return (if (is_const) "const " else "") ++ inner ++ "*";
            },
            else => @compileError("header_check: unsupported type " ++ @typeName(T)),
        }
    }
}

fn renderParams(comptime info: std.builtin.Type.Fn) []const u8 {
    comptime {
        var s: []const u8 = "(";
        for (info.param_types, 0..) |pt, i| {
            if (i > 0) s = s ++ ",";
            s = s ++ renderType(pt orelse @compileError("header_check: generic parameter"));
        }
        return s ++ ")";
    }
}

fn renderFnPointer(comptime F: type) []const u8 {
    const info = @typeInfo(F).@"fn";
    return comptime renderType(info.return_type.?) ++ "(*)" ++ renderParams(info);
}

/// `RET(P1,P2)` for a function type.
pub fn renderFn(comptime F: type) []const u8 {
    const info = @typeInfo(F).@"fn";
    return comptime renderType(info.return_type.?) ++ renderParams(info);
}

/// Every function declared in namespace `Ns` (e.g. `daemonkit.c`), rendered.
pub fn zigPrototypes(comptime Ns: type) []const Prototype {
    const arr = comptime blk: {
        @setEvalBranchQuota(100_000);
        var list: []const Prototype = &.{};
        for (@typeInfo(Ns).@"struct".decl_names) |name| {
            const T = @TypeOf(@field(Ns, name));
            if (@typeInfo(T) == .@"fn")
                list = list ++ [_]Prototype{.{ .name = name, .sig = renderFn(T) }};
        }
        break :blk list[0..list.len].*;
    };
    return &arr;
}

/// Every integer `DK_*` constant declared in namespace `Ns`.
pub fn zigConstants(comptime Ns: type) []const Constant {
    const arr = comptime blk: {
        @setEvalBranchQuota(100_000);
        var list: []const Constant = &.{};
        for (@typeInfo(Ns).@"struct".decl_names) |name| {
            if (!std.mem.startsWith(u8, name, "DK_")) continue;
            const v = @field(Ns, name);
            switch (@typeInfo(@TypeOf(v))) {
                .comptime_int, .int => list = list ++ [_]Constant{.{ .name = name, .value = v }},
                else => {},
            }
        }
        break :blk list[0..list.len].*;
    };
    return &arr;
}

// ---------------------------------------------------------------------------------------
// Header side (runtime)

pub const Header = struct {
    prototypes: []Prototype,
    constants: []Constant,
};

fn isIdent(ch: u8) bool {
    return std.ascii.isAlphanumeric(ch) or ch == '_';
}

/// Removes `/* … */` and `// …` comments and preprocessor lines, keeping `#define`s aside.
fn stripComments(gpa: std.mem.Allocator, text: []const u8) ![]u8 {
    var out: std.ArrayList(u8) = .empty;
    errdefer out.deinit(gpa);
    var i: usize = 0;
    while (i < text.len) {
        if (std.mem.startsWith(u8, text[i..], "/*")) {
            const end = std.mem.indexOfPos(u8, text, i + 2, "*/") orelse text.len;
            i = @min(end + 2, text.len);
            try out.append(gpa, ' ');
        } else if (std.mem.startsWith(u8, text[i..], "//")) {
            i = std.mem.indexOfScalarPos(u8, text, i, '\n') orelse text.len;
        } else {
            try out.append(gpa, text[i]);
            i += 1;
        }
    }
    return out.toOwnedSlice(gpa);
}

/// Normalizes a C type: identifiers separated by one space, no space around `*`. With
/// `drop_name`, the trailing parameter name is removed.
fn normalizeType(gpa: std.mem.Allocator, raw: []const u8, drop_name: bool, typedefs: []const Prototype) ![]const u8 {
    var toks: std.ArrayList([]const u8) = .empty;
    defer toks.deinit(gpa);
    var i: usize = 0;
    while (i < raw.len) {
        const ch = raw[i];
        if (isIdent(ch)) {
            const start = i;
            while (i < raw.len and isIdent(raw[i])) i += 1;
            try toks.append(gpa, raw[start..i]);
        } else if (ch == '*') {
            try toks.append(gpa, "*");
            i += 1;
        } else if (std.ascii.isWhitespace(ch)) {
            i += 1;
        } else {
            return error.UnexpectedToken;
        }
    }
    if (drop_name and toks.items.len >= 2 and !std.mem.eql(u8, toks.items[toks.items.len - 1], "*"))
        _ = toks.pop();
    // A lone function pointer typedef name: expand it.
    if (toks.items.len == 1) {
        for (typedefs) |td| if (std.mem.eql(u8, td.name, toks.items[0])) return gpa.dupe(u8, td.sig);
    }
    var out: std.ArrayList(u8) = .empty;
    errdefer out.deinit(gpa);
    for (toks.items) |t| {
        if (!std.mem.eql(u8, t, "*") and out.items.len > 0 and isIdent(out.items[out.items.len - 1]))
            try out.append(gpa, ' ');
        try out.appendSlice(gpa, t);
    }
    return out.toOwnedSlice(gpa);
}

fn normalizeParams(gpa: std.mem.Allocator, raw: []const u8, typedefs: []const Prototype) ![]const u8 {
    var out: std.ArrayList(u8) = .empty;
    errdefer out.deinit(gpa);
    try out.append(gpa, '(');
    const trimmed = std.mem.trim(u8, raw, " \t\r\n");
    if (!std.mem.eql(u8, trimmed, "void") and trimmed.len > 0) {
        var it = std.mem.splitScalar(u8, trimmed, ',');
        var first = true;
        while (it.next()) |p| {
            if (!first) try out.append(gpa, ',');
            first = false;
            const t = try normalizeType(gpa, p, true, typedefs);
            defer gpa.free(t);
            try out.appendSlice(gpa, t);
        }
    }
    try out.append(gpa, ')');
    return out.toOwnedSlice(gpa);
}

fn parseDefineValue(v: []const u8) ?i128 {
    const t = std.mem.trim(u8, v, " \t\r()");
    if (std.mem.eql(u8, t, "UINT64_MAX")) return std.math.maxInt(u64);
    if (std.mem.eql(u8, t, "UINT32_MAX")) return std.math.maxInt(u32);
    if (std.mem.eql(u8, t, "INT32_MAX")) return std.math.maxInt(i32);
    var s = t;
    while (s.len > 0 and (s[s.len - 1] == 'u' or s[s.len - 1] == 'U' or s[s.len - 1] == 'l' or s[s.len - 1] == 'L')) s = s[0 .. s.len - 1];
    return std.fmt.parseInt(i128, s, 0) catch null;
}

/// Parses the function prototypes and `#define DK_*` constants of a C header. All memory
/// comes from `arena`.
pub fn parseHeader(arena: std.mem.Allocator, text: []const u8) !Header {
    const clean = try stripComments(arena, text);

    // Preprocessor lines: keep the DK_ defines, blank everything else out.
    var constants: std.ArrayList(Constant) = .empty;
    var body: std.ArrayList(u8) = .empty;
    var lines = std.mem.splitScalar(u8, clean, '\n');
    while (lines.next()) |line| {
        const t = std.mem.trim(u8, line, " \t\r");
        if (t.len > 0 and t[0] == '#') {
            var words = std.mem.tokenizeAny(u8, t[1..], " \t");
            const directive = words.next() orelse continue;
            if (!std.mem.eql(u8, directive, "define")) continue;
            const name = words.next() orelse continue;
            if (!std.mem.startsWith(u8, name, "DK_")) continue;
            const value = words.rest();
            try constants.append(arena, .{ .name = name, .value = parseDefineValue(value) });
            continue;
        }
        try body.appendSlice(arena, line);
        try body.append(arena, '\n');
    }

    var typedefs: std.ArrayList(Prototype) = .empty;
    var prototypes: std.ArrayList(Prototype) = .empty;
    var stmts = std.mem.splitScalar(u8, body.items, ';');
    while (stmts.next()) |raw_stmt| {
        var stmt = std.mem.trim(u8, raw_stmt, " \t\r\n");
        // `extern "C" {` and a closing `}` surround the prototypes in C++.
        while (true) {
            if (std.mem.indexOf(u8, stmt, "extern \"C\" {")) |k| {
                stmt = std.mem.trim(u8, stmt[k + "extern \"C\" {".len ..], " \t\r\n");
            } else if (stmt.len > 0 and stmt[0] == '}') {
                stmt = std.mem.trim(u8, stmt[1..], " \t\r\n");
            } else break;
        }
        if (stmt.len == 0) continue;
        const open = std.mem.indexOfScalar(u8, stmt, '(') orelse continue;
        if (std.mem.startsWith(u8, stmt, "typedef")) {
            // typedef RET (*NAME)(PARAMS)
            const star = std.mem.indexOfPos(u8, stmt, open, "*") orelse continue;
            const close = std.mem.indexOfScalarPos(u8, stmt, star, ')') orelse continue;
            const name = std.mem.trim(u8, stmt[star + 1 .. close], " \t\r\n");
            const popen = std.mem.indexOfScalarPos(u8, stmt, close, '(') orelse continue;
            const pclose = std.mem.lastIndexOfScalar(u8, stmt, ')') orelse continue;
            const ret = try normalizeType(arena, stmt["typedef".len..open], false, &.{});
            const params = try normalizeParams(arena, stmt[popen + 1 .. pclose], typedefs.items);
            try typedefs.append(arena, .{ .name = name, .sig = try std.mem.concat(arena, u8, &.{ ret, "(*)", params }) });
            continue;
        }
        const head = std.mem.trimEnd(u8, stmt[0..open], " \t\r\n");
        var k = head.len;
        while (k > 0 and isIdent(head[k - 1])) k -= 1;
        const name = head[k..];
        if (name.len == 0) continue;
        const close = std.mem.lastIndexOfScalar(u8, stmt, ')') orelse return error.UnbalancedParens;
        const ret = try normalizeType(arena, head[0..k], false, typedefs.items);
        const params = try normalizeParams(arena, stmt[open + 1 .. close], typedefs.items);
        try prototypes.append(arena, .{ .name = name, .sig = try std.mem.concat(arena, u8, &.{ ret, params }) });
    }
    return .{ .prototypes = prototypes.items, .constants = constants.items };
}

// ---------------------------------------------------------------------------------------
// Comparison

pub const Report = struct {
    /// In the header, not declared in Zig.
    missing: usize = 0,
    /// Declared in both, with a different signature or value.
    mismatched: usize = 0,
    /// Declared in Zig, not in the header.
    extra: usize = 0,
    /// Header functions checked.
    checked: usize = 0,

    pub fn ok(r: Report) bool {
        return r.missing == 0 and r.mismatched == 0 and r.extra == 0;
    }
};

fn findProto(list: []const Prototype, name: []const u8) ?Prototype {
    for (list) |p| if (std.mem.eql(u8, p.name, name)) return p;
    return null;
}

fn findConst(list: []const Constant, name: []const u8) ?Constant {
    for (list) |p| if (std.mem.eql(u8, p.name, name)) return p;
    return null;
}

/// Compares the header's prototypes and constants with the Zig ones; one line per problem
/// on `out`.
pub fn compare(header: Header, zig_fns: []const Prototype, zig_consts: []const Constant, out: *std.Io.Writer) !Report {
    var r: Report = .{};
    for (header.prototypes) |h| {
        r.checked += 1;
        const z = findProto(zig_fns, h.name) orelse {
            r.missing += 1;
            try out.print("missing: {s} has no Zig declaration (header: {s})\n", .{ h.name, h.sig });
            continue;
        };
        if (!std.mem.eql(u8, h.sig, z.sig)) {
            r.mismatched += 1;
            try out.print("mismatch: {s}: header {s}, Zig {s}\n", .{ h.name, h.sig, z.sig });
        }
    }
    for (zig_fns) |z| if (findProto(header.prototypes, z.name) == null) {
        r.extra += 1;
        try out.print("extra: {s} is declared in Zig but not in the header\n", .{z.name});
    };
    for (header.constants) |h| {
        const z = findConst(zig_consts, h.name) orelse {
            r.missing += 1;
            try out.print("missing: constant {s} has no Zig declaration\n", .{h.name});
            continue;
        };
        if (h.value == null or z.value == null or h.value.? != z.value.?) {
            r.mismatched += 1;
            try out.print("mismatch: constant {s}: header {?d}, Zig {?d}\n", .{ h.name, h.value, z.value });
        }
    }
    for (zig_consts) |z| if (findConst(header.constants, z.name) == null) {
        r.extra += 1;
        try out.print("extra: constant {s} is declared in Zig but not in the header\n", .{z.name});
    };
    return r;
}
