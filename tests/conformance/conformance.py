#!/usr/bin/env python3
"""Black-box conformance suite for the daemonkit example servers.

Runs one server command (C, Rust, Perl or Zig example) through the rows of the
example-server contract and prints one line per row:

    PASS <lang> <row>: <what was seen>
    FAIL <lang> <row>: <why, with what was seen>
    SKIP <lang> <row>: <reason>            (prerequisite missing, CI != "true")

followed by a summary line "N passed, N failed" (", N skipped" when any were
skipped).  Exit status is 1 when any row failed, 0 otherwise, 2 on bad usage.

Python 3.11 standard library only.  See README.md next to this file.
"""

import argparse
import collections
import fcntl
import grp
import os
import pwd
import re
import resource
import secrets
import shlex
import shutil
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CI = os.environ.get("CI") == "true"

LAUNCH_TIMEOUT = 10.0      # a -D launcher must exit within this
HTTP_TIMEOUT = 3.0         # default per-request bound
DEFAULT_ROW_BOUND = 30.0   # default overall bound of one row

# Environment variables that would change how a server starts; never inherit them.
SCRUB_ENV = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
             "WATCHDOG_USEC", "WATCHDOG_PID")

HELLO_RE = re.compile(rb"hello from (\S+) pid (\d+)\n")
IDS_RE = re.compile(rb"uid=(\d+) gid=(\d+) euid=(\d+) egid=(\d+) groups=([0-9,]*)\n?")


# --------------------------------------------------------------------------
# outcomes


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class RowTimeout(BaseException):
    """Raised from SIGALRM when a row exceeds its overall bound."""


def oneline(text, limit=None):
    text = str(text).replace("\r", "").strip()
    text = re.sub(r"\s*\n\s*", " | ", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def tail(text, limit=240):
    """Last part of some program output, on one line."""
    text = (text or "").strip()
    if len(text) > limit:
        text = "..." + text[-limit:]
    return repr(oneline(text)) if text else "(empty)"


# --------------------------------------------------------------------------
# /proc helpers


def proc_stat(pid):
    """Parsed /proc/PID/stat, or None.  comm is in parentheses and may contain
    spaces or ')' so split at the last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    lp, rp = data.find("("), data.rfind(")")
    if lp < 0 or rp < lp:
        return None
    rest = data[rp + 2:].split()
    try:
        return {
            "pid": int(data[:lp]),
            "comm": data[lp + 1:rp],
            "state": rest[0],
            "ppid": int(rest[1]),
            "pgrp": int(rest[2]),
            "session": int(rest[3]),
            "tty_nr": int(rest[4]),
            "starttime": int(rest[19]),
        }
    except (IndexError, ValueError):
        return None


def is_live(st):
    return st is not None and st["state"] not in ("Z", "X", "x")


def alive(pid):
    """True while PID exists and is not a zombie (zombies count as gone)."""
    return is_live(proc_stat(pid))


def all_stats():
    out = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                out[st["pid"]] = st
    return out


def children_of(pid):
    return sorted(p for p, st in all_stats().items() if st["ppid"] == pid and is_live(st))


def exec_layout(pid):
    """Per-execve memory layout from /proc/PID/stat (start_code, end_code,
    start_stack, arg_start, arg_end, env_start, env_end).  Under ASLR every
    execve gets new values, so a change with the same pid and starttime proves
    a re-exec.  None when unreadable or masked (zeros without ptrace access)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
        rest = data[data.rfind(")") + 2:].split()
        vals = tuple(int(rest[i - 3]) for i in (26, 27, 28, 48, 49, 50, 51))
    except (OSError, IndexError, ValueError):
        return None
    return vals if any(vals) else None


def aslr_active(pid):
    """False when address randomisation is off system-wide or for PID."""
    try:
        with open("/proc/sys/kernel/randomize_va_space") as f:
            if f.read().strip() == "0":
                return False
        with open(f"/proc/{pid}/personality") as f:
            return not int(f.read().strip(), 16) & 0x0040000   # ADDR_NO_RANDOMIZE
    except (OSError, ValueError):
        return True


def proc_status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        return None
    return fields


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def proc_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return set(x for x in f.read().split(b"\0") if x)
    except OSError:
        return None


def readlink(path):
    try:
        return os.readlink(path)
    except OSError as e:
        return f"<{e.strerror}>"


def proc_limits(pid):
    """{'Max open files': (soft, hard), ...} from /proc/PID/limits."""
    out = {}
    try:
        with open(f"/proc/{pid}/limits") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines[1:]:
        m = re.match(r"(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


# --------------------------------------------------------------------------
# small utilities


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def ms_since(t0):
    return int((time.monotonic() - t0) * 1000)


def port_accepting(port, timeout=1.0):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def read_pidfile(path):
    """(pid or None, raw content or None when missing)."""
    try:
        with open(path, "rb") as f:
            raw = f.read().decode("latin-1")
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"<{e.strerror}>"
    m = re.fullmatch(r"\s*(\d+)\s*", raw)
    return (int(m.group(1)) if m else None), raw


def lock_state(path):
    """'held' when someone holds a flock or POSIX lock on PATH, 'free', or
    'missing'.  Our own probe lock is released at once."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    writable = True
    try:
        fd = os.open(path, os.O_RDWR | flags)
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        writable = False
        try:
            fd = os.open(path, os.O_RDONLY | flags)
        except OSError as e:
            return f"unopenable ({e.strerror})"
    except OSError as e:
        return f"unopenable ({e.strerror})"
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "held"
        fcntl.flock(fd, fcntl.LOCK_UN)
        if not writable:
            return "free"
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            return "held"
        except OSError:
            return "free"
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return "free"
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# HTTP over raw sockets


class HttpError(Exception):
    pass


class Resp:
    def __init__(self, status, headers, body, eof):
        self.status, self.headers, self.body, self.eof = status, headers, body, eof

    def short(self):
        return f"{self.status} {self.body[:80]!r}"


def _split_response(buf):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head, body = buf[:end].decode("latin-1"), buf[end + 4:]
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise HttpError(f"bad status line {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body


def _dechunk(body):
    out, pos = b"", 0
    while True:
        nl = body.find(b"\r\n", pos)
        if nl < 0:
            return None
        size = int(body[pos:nl].split(b";")[0] or b"0", 16)
        if size == 0:
            return out
        start = nl + 2
        if len(body) < start + size + 2:
            return None
        out += body[start:start + size]
        pos = start + size + 2


def _body_if_complete(status, headers, body):
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _dechunk(body)
    if "content-length" in headers:
        n = int(headers["content-length"])
        return body[:n] if len(body) >= n else None
    if status in (204, 304):
        return b""
    return None  # delimited by EOF


def http_get(port, path, timeout=HTTP_TIMEOUT, require_eof=False):
    """GET with 'Connection: close' on a fresh connection.  Returns a Resp;
    raises OSError/HttpError.  With require_eof the server must close the
    connection within the timeout (Connection: close honoured)."""
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Connection: close\r\n\r\n".encode())
        buf, eof = b"", False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = _split_response(buf)
                if require_eof and got and _body_if_complete(*got) is not None:
                    raise HttpError(f"complete response ({got[0]}) but connection not "
                                    f"closed within {timeout:g} s despite Connection: close")
                raise HttpError(f"no complete response within {timeout:g} s "
                                f"(got {len(buf)} bytes)")
            s.settimeout(remaining)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                eof = True
                break
            buf += chunk
            if not require_eof:
                got = _split_response(buf)
                if got and _body_if_complete(*got) is not None:
                    break
    finally:
        s.close()
    got = _split_response(buf)
    if got is None:
        raise HttpError(f"connection closed after {len(buf)} bytes without a complete "
                        f"response {buf[:60]!r}")
    status, headers, body = got
    complete = _body_if_complete(status, headers, body)
    if complete is None:
        if eof and "content-length" not in headers and "transfer-encoding" not in headers:
            complete = body
        else:
            raise HttpError(f"truncated body ({len(body)} bytes)")
    return Resp(status, headers, complete, eof)


def get_or_fail(port, path, timeout=HTTP_TIMEOUT):
    try:
        return http_get(port, path, timeout=timeout)
    except Exception as e:
        raise Fail(f"GET {path} failed: {type(e).__name__}: {e}")


def hello_pid(resp, lang):
    """pid from a valid 'hello from <lang> pid N\\n' 200 response, else None."""
    if resp.status != 200:
        return None
    m = HELLO_RE.fullmatch(resp.body)
    if not m or m.group(1).decode("latin-1") != lang:
        return None
    return int(m.group(2))


# --------------------------------------------------------------------------
# per-row context: temp dir, process tracking, cleanup


class Launch:
    def __init__(self, rc, out, err, pid, secs):
        self.rc, self.out, self.err, self.pid, self.secs = rc, out, err, pid, secs

    def describe(self):
        if self.rc is None:
            return (f"launcher did not exit within {LAUNCH_TIMEOUT:g} s; "
                    f"stderr {tail(self.err)}")
        return f"launcher exit {self.rc} after {self.secs:.2f} s; stderr {tail(self.err)}"


class Daemon:
    def __init__(self, pid, port, pidfile, launch):
        self.pid, self.port, self.pidfile, self.launch = pid, port, pidfile, launch


class Ctx:
    def __init__(self, suite, row):
        self.suite = suite
        self.row = row
        self.lang = suite.lang
        self.cmd = suite.cmd
        self.tmp = tempfile.mkdtemp(prefix="dkconf-")
        self.known = {}          # pid -> starttime (identity guard against pid reuse)
        self.popens = []
        self.loops = []
        self.closers = []
        self.nrun = 0
        self.where = "starting"

    # -- bookkeeping
    def log(self, msg):
        if self.suite.verbose:
            print(f"    [{self.row}] {oneline(msg)}", file=sys.stderr, flush=True)

    def step(self, what):
        self.where = what
        self.log(what)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def learn(self, pid):
        if pid is None or pid <= 1 or pid == os.getpid():
            return
        st = proc_stat(pid)
        if st is not None:
            self.known[pid] = st["starttime"]

    def kids(self, pid):
        kids = children_of(pid)
        for k in kids:
            self.learn(k)
        return kids

    def signal(self, pid, sig):
        """Signal a pid we learned, but never one that was recycled since."""
        st = proc_stat(pid)
        if st is None:
            return False
        if pid in self.known and self.known[pid] != st["starttime"]:
            self.log(f"not signalling {pid}: pid was reused")
            return False
        self.known.setdefault(pid, st["starttime"])
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    # -- running things
    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
        if extra:
            env.update(extra)
        return env

    def spawn(self, argv, env_extra=None, user=None, pass_fds=()):
        """Start ARGV as our child, stdout/stderr to files (as USER, a uid, when
        given: root only).  Returns the Popen with .out_path/.err_path."""
        self.nrun += 1
        out_path = self.path(f"run{self.nrun}.out")
        err_path = self.path(f"run{self.nrun}.err")
        with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
            self.log(f"spawn: {shlex.join(argv)}")
            ids = {} if user is None else {"user": user, "group": user, "extra_groups": []}
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                 env=self.env(env_extra), close_fds=True,
                                 pass_fds=pass_fds, **ids)
        p.out_path, p.err_path = out_path, err_path
        self.popens.append(p)
        self.learn(p.pid)
        return p

    def launch(self, args, timeout=LAUNCH_TIMEOUT):
        """Run the server with ARGS (a launcher, normally with -D) and wait for
        it to exit.  Output goes to files, so a daemon keeping them open
        cannot hang us."""
        t0 = time.monotonic()
        p = self.spawn(self.cmd + list(args))
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        secs = time.monotonic() - t0
        r = Launch(rc, read_text(p.out_path), read_text(p.err_path), p.pid, secs)
        self.log(f"launcher pid {p.pid} rc={rc} in {secs:.2f}s stderr={tail(r.err, 400)}")
        return r

    def daemon_args(self, port, pidfile, extra=()):
        return ["-D", "--pid", pidfile, "--listen", f"127.0.0.1:{port}"] + list(extra)

    def start_daemon(self, extra=(), port=None, pidfile=None):
        port = port or free_port()
        pidfile = pidfile or self.path("dk.pid")
        self.step(f"starting daemon on port {port} {' '.join(extra)}")
        r = self.launch(self.daemon_args(port, pidfile, extra))
        if r.rc != 0:
            raise Fail(f"daemon start ({' '.join(extra) or 'single process'}) failed: "
                       f"{r.describe()}")
        pid, raw = read_pidfile(pidfile)
        if pid is None:
            raise Fail(f"launcher exited 0 but pid file holds {raw!r}")
        self.learn(pid)
        self.kids(pid)
        if not alive(pid):
            raise Fail(f"launcher exited 0 but pid {pid} from the pid file is not running")
        return Daemon(pid, port, pidfile, r)

    def wait_workers(self, master, n, timeout=3.0):
        kids = wait_until(lambda: (lambda k: k if len(k) == n else None)(self.kids(master)),
                          timeout, 0.05)
        if not kids:
            raise Fail(f"expected {n} worker(s) under master {master}, "
                       f"saw {self.kids(master)} after {timeout:g} s")
        return kids

    def defer(self, fn):
        self.closers.append(fn)

    # -- cleanup
    def _reap(self):
        for p in self.popens:
            if p.returncode is None:
                p.poll()

    def _targets(self):
        """Live processes to stop: known pids (same identity), anything whose
        command line holds our unique temp dir, and all their descendants."""
        stats = all_stats()
        me = os.getpid()
        token = self.tmp.encode()
        roots = set()
        for pid, start in list(self.known.items()):
            st = stats.get(pid)
            if st is not None and st["starttime"] == start:
                roots.add(pid)
        for pid in stats:
            if pid not in (me, 1) and token in proc_cmdline(pid):
                roots.add(pid)
        by_parent = collections.defaultdict(list)
        for pid, st in stats.items():
            by_parent[st["ppid"]].append(pid)
        found, todo = set(), list(roots)
        while todo:
            pid = todo.pop()
            if pid in found or pid in (me, 1):
                continue
            found.add(pid)
            todo.extend(by_parent.get(pid, ()))
        live = set()
        for pid in found:
            st = stats[pid]
            self.known.setdefault(pid, st["starttime"])
            if is_live(st):
                live.add(pid)
        return live, stats

    def cleanup(self):
        """Stop everything this row started: TERM the roots, wait ~3 s, KILL
        what is left (by pid, identity-checked), reap, remove temp files."""
        killed = []
        for loop in self.loops:
            loop.stop_event.set()
        for loop in self.loops:
            loop.join(6.0)
        for fn in self.closers:
            try:
                fn()
            except Exception:
                pass
        self._reap()
        live, stats = self._targets()
        if live:
            roots = [p for p in live if stats[p]["ppid"] not in live]
            self.log(f"cleanup: TERM {sorted(roots)} (live: {sorted(live)})")
            for pid in roots:
                self.signal(pid, signal.SIGTERM)

            def settled():
                self._reap()
                return not self._targets()[0]
            if not wait_until(settled, 3.0, 0.05):
                live, _ = self._targets()
                self.log(f"cleanup: KILL {sorted(live)}")
                for pid in live:
                    if self.signal(pid, signal.SIGKILL):
                        killed.append(pid)
                wait_until(settled, 2.0, 0.05)
        for p in self.popens:
            if p.returncode is None:
                try:
                    p.wait(1.0)
                except subprocess.TimeoutExpired:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        return killed


# --------------------------------------------------------------------------
# a bounded client loop (fresh connection per request)


class ClientLoop:
    def __init__(self, ctx, port, max_secs=20.0, max_reqs=4000, threads=2, pace=0.004):
        self.ctx, self.port, self.lang = ctx, port, ctx.lang
        self.max_secs, self.max_reqs, self.pace = max_secs, max_reqs, pace
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.n = self.ok = self.failed = 0
        self.errors = []
        self.pids = collections.Counter()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        ctx.loops.append(self)

    def start(self):
        self.deadline = time.monotonic() + self.max_secs
        for t in self.threads:
            t.start()
        return self

    def _run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.n >= self.max_reqs:
                    return
                self.n += 1
            err, pid = None, None
            try:
                r = http_get(self.port, "/", timeout=5.0)
                pid = hello_pid(r, self.lang)
                if pid is None:
                    err = f"unexpected answer {r.short()}"
            except Exception as e:
                err = f"{type(e).__name__}: {e}"
            with self.lock:
                if err:
                    self.failed += 1
                    if len(self.errors) < 3:
                        self.errors.append(err)
                else:
                    self.ok += 1
                    self.pids[pid] += 1
            time.sleep(self.pace)

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))

    def stop(self):
        self.stop_event.set()
        self.join(6.0)

    def summary(self):
        s = f"{self.n} requests, {self.failed} failed"
        if self.errors:
            s += f" (first: {'; '.join(self.errors)})"
        return s


class InFlight:
    """One GET /slow?ms=N in a thread: proves a drain finishes in-flight work."""

    def __init__(self, port, ms, timeout=15.0):
        self.port, self.ms, self.timeout = port, ms, timeout
        self.resp = self.err = None
        self.secs = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        t0 = time.monotonic()
        try:
            self.resp = http_get(self.port, f"/slow?ms={self.ms}", timeout=self.timeout)
        except Exception as e:
            self.err = f"{type(e).__name__}: {e}"
        self.secs = time.monotonic() - t0

    def finish(self, problems, what):
        """Join, add a problem unless it answered 200 'done\n'; short description."""
        self.thread.join(self.timeout + 1.0)
        if self.thread.is_alive():
            problems.append(f"in-flight /slow?ms={self.ms} across {what}: no answer")
            return "no answer"
        if self.resp is None:
            problems.append(f"in-flight /slow?ms={self.ms} across {what} failed: {self.err}")
            return "failed"
        if not (self.resp.status == 200 and self.resp.body == b"done\n"):
            problems.append(f"in-flight /slow?ms={self.ms} across {what} -> {self.resp.short()}")
        return f"{self.resp.status} {self.resp.body!r} after {self.secs:.2f} s"


# --------------------------------------------------------------------------
# sd_notify receiver


class NotifyListener:
    def __init__(self, ctx, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        ctx.defer(self.sock.close)
        self.seen = []          # assignments in arrival order, e.g. "READY=1"

    def wait_for(self, item, start, timeout, proc):
        """Index of ITEM at or after START, receiving datagrams for at most
        TIMEOUT; None if not seen (or the process exited first)."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.seen)):
                if self.seen[i] == item:
                    return i
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(min(remaining, 0.2))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if proc.poll() is not None:
                    # drain anything already queued, then give up
                    self.sock.settimeout(0.05)
                    try:
                        data = self.sock.recv(65536)
                    except (socket.timeout, BlockingIOError):
                        return None
                else:
                    continue
            for line in data.decode("utf-8", "replace").split("\n"):
                if line.strip():
                    self.seen.append(line.strip())


# --------------------------------------------------------------------------
# row registry

ROWS = []


def row(rid, bound=DEFAULT_ROW_BOUND):
    def deco(fn):
        ROWS.append((rid, fn, bound))
        return fn
    return deco


def prereq(ok, reason):
    if not ok:
        if CI:
            raise Fail(f"prerequisite missing under CI=true: {reason}")
        raise Skip(reason)


def need(ok, problems, text):
    if not ok:
        problems.append(text)


def verdict(problems, seen):
    if problems:
        raise Fail("; ".join(problems) + f" [seen: {seen}]")
    return seen


def term_and_wait_gone(c, pids, timeout=10.0):
    """TERM pids[0] (the master), wait until all PIDS are gone; ms or None."""
    t0 = time.monotonic()
    c.signal(pids[0], signal.SIGTERM)
    if wait_until(lambda: not any(alive(p) for p in pids), timeout):
        return ms_since(t0)
    return None


# --------------------------------------------------------------------------
# rows


@row("daemonize-ready")
def row_daemonize_ready(c):
    port, pf = free_port(), c.path("dk.pid")
    c.step("launching -D")
    r = c.launch(c.daemon_args(port, pf))
    # "at that moment": pid file and GET / right after the launcher exit
    pid, raw = read_pidfile(pf)
    get_err, resp = None, None
    if r.rc == 0:
        try:
            resp = http_get(port, "/")
        except Exception as e:
            get_err = f"{type(e).__name__}: {e}"
    if pid:
        c.learn(pid)
    if r.rc != 0:
        raise Fail(r.describe())
    problems = []
    if pid is None:
        raise Fail(f"launcher exited 0 but pid file holds {raw!r} at that moment")
    need(get_err is None, problems, f"GET / right after the launcher exit failed: {get_err}")
    if resp is not None:
        need(resp.status == 200, problems, f"GET / answered {resp.short()}")
    need(pid != r.pid, problems, f"pid file holds the launcher's own pid {pid}")
    st = proc_stat(pid)
    if not is_live(st):
        raise Fail(f"pid {pid} from the pid file is not running; " + "; ".join(problems))
    need(st["tty_nr"] == 0, problems, f"has a controlling tty (tty_nr={st['tty_nr']})")
    need(st["session"] != pid, problems, f"is a session leader (sid={st['session']})")
    need(st["session"] != os.getsid(0), problems,
         f"still in the launcher's session {st['session']} (no setsid)")
    cwd = readlink(f"/proc/{pid}/cwd")
    need(cwd == "/", problems, f"cwd is {cwd!r}, not '/'")
    c.step("TERM")
    gone_ms = term_and_wait_gone(c, [pid] + c.kids(pid), 10.0)
    need(gone_ms is not None, problems, "still running 10 s after TERM")
    removed = wait_until(lambda: not os.path.exists(pf), 2.0)
    need(removed, problems, "pid file not removed after TERM")
    seen = (f"launcher {r.pid} exit 0 in {r.secs:.2f} s; pid file {pid} at that moment; "
            f"GET / {resp.status if resp else 'failed'} at once; tty_nr={st['tty_nr']} "
            f"sid={st['session']} cwd={cwd}; TERM: gone in {gone_ms} ms, pid file "
            f"{'removed' if removed else 'left'} (daemon exit code not observable: not our child)")
    return verdict(problems, seen)


@row("port-in-use")
def row_port_in_use(c):
    occ = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.defer(occ.close)
    occ.bind(("127.0.0.1", 0))
    occ.listen(16)
    port = occ.getsockname()[1]
    pf = c.path("dk.pid")
    addr = f"127.0.0.1:{port}"
    c.step(f"launching -D on occupied {addr}")
    r = c.launch(c.daemon_args(port, pf))
    leftover, raw = read_pidfile(pf)
    if leftover:
        c.learn(leftover)
    problems = []
    need(r.rc not in (0, None), problems, r.describe())
    if addr not in r.err:
        where = " (it is on stdout, not stderr)" if addr in r.out else ""
        problems.append(f"stderr does not name {addr}{where}")
    need(raw is None, problems, f"pid file left behind (content {raw!r})")
    return verdict(problems, f"launcher exit {r.rc}, stderr {tail(r.err)}, "
                             f"pid file {'absent' if raw is None else 'present'}")


@row("already-running")
def row_already_running(c):
    a = c.start_daemon()
    port2 = free_port()
    c.step("second launch with the same pid file")
    r = c.launch(c.daemon_args(port2, a.pidfile))
    problems = []
    need(r.rc not in (0, None), problems, r.describe())
    want = f"already running (PID: {a.pid})"
    if want not in r.err:
        where = " (it is on stdout)" if want in r.out else ""
        problems.append(f"stderr lacks {want!r}{where}")
    need(alive(a.pid), problems, f"first daemon {a.pid} no longer running")
    try:
        resp = http_get(a.port, "/")
        need(resp.status == 200, problems, f"first daemon answers {resp.short()}")
        first = f"first still serves ({resp.status})"
    except Exception as e:
        problems.append(f"first daemon does not answer: {e}")
        first = "first does not serve"
    pid_now, raw = read_pidfile(a.pidfile)
    need(pid_now == a.pid, problems, f"pid file now holds {raw!r}, not {a.pid}")
    closed = wait_until(lambda: not port_accepting(port2), 2.0)
    need(closed, problems, f"something still accepts on the second port {port2}")
    return verdict(problems, f"second launcher exit {r.rc}, stderr {tail(r.err)}; {first}; "
                             f"pid file still {pid_now}")


@row("already-running-same-port")
def row_already_running_same_port(c):
    a = c.start_daemon()
    c.step("second launch with the same pid file and the same fixed port")
    r = c.launch(c.daemon_args(a.port, a.pidfile))
    problems = []
    need(r.rc not in (0, None), problems, r.describe())
    want = f"already running (PID: {a.pid})"
    if want not in r.err:
        where = " (it is on stdout)" if want in r.out else ""
        problems.append(f"stderr lacks {want!r}{where} (the PID file must be locked "
                        f"before binding)")
    need("already in use" not in r.err.lower(), problems,
         "stderr speaks of the port, not of the running instance")
    need(alive(a.pid), problems, f"first daemon {a.pid} no longer running")
    try:
        resp = http_get(a.port, "/")
        need(resp.status == 200, problems, f"first daemon answers {resp.short()}")
    except Exception as e:
        problems.append(f"first daemon does not answer: {e}")
    pid_now, raw = read_pidfile(a.pidfile)
    need(pid_now == a.pid, problems, f"pid file now holds {raw!r}, not {a.pid}")
    return verdict(problems, f"second launcher exit {r.rc}, stderr {tail(r.err)}; "
                             f"pid file still {pid_now}")


@row("pidfile-foreign-lock")
def row_pidfile_foreign_lock(c):
    """A stale pid file names an unrelated live process, and another user (nobody)
    holds its lock: a start must refuse, say the file is locked by another process,
    and signal nobody."""
    prereq(os.geteuid() == 0, "not running as root")
    prereq(shutil.which("flock") is not None, "no flock(1) (util-linux)")
    os.chmod(c.tmp, 0o755)
    pf = c.path("dk.pid")
    victim = c.spawn(["sleep", "60"])
    with open(pf, "w") as f:
        f.write(f"{victim.pid}\n")
    os.chmod(pf, 0o644)
    locker = c.spawn(["flock", "-x", "-n", pf, "sleep", "60"],
                     user=pwd.getpwnam("nobody").pw_uid)
    if not wait_until(lambda: lock_state(pf) == "held", 5.0):
        raise Fail(f"flock as nobody never took the lock ({read_text(locker.err_path)!r})")
    port = free_port()
    c.step("launch with the foreign-locked pid file")
    r = c.launch(c.daemon_args(port, pf))
    time.sleep(0.3)
    problems = []
    need(r.rc not in (0, None), problems, r.describe())
    want = "locked by another process"
    need(want in r.err, problems, f"stderr lacks {want!r}")
    need(f"already running (PID: {victim.pid})" not in r.err, problems,
         f"claims the unrelated {victim.pid} is the running daemon")
    need(victim.poll() is None, problems, f"the unrelated process {victim.pid} was signalled")
    need(locker.poll() is None, problems, "the lock holder was signalled")
    pid_now, raw = read_pidfile(pf)
    need(pid_now == victim.pid, problems, f"pid file rewritten: {raw!r}")
    need(not port_accepting(port, 0.3), problems, "the refused start listens anyway")
    return verdict(problems, f"launcher exit {r.rc}, stderr {tail(r.err)}; "
                             f"{victim.pid} and the locker untouched")


@row("stale-pidfile")
def row_stale_pidfile(c):
    a = c.start_daemon()
    victims = [a.pid] + c.kids(a.pid)
    c.step(f"kill -9 {victims}")
    for v in victims:
        c.signal(v, signal.SIGKILL)
    if not wait_until(lambda: not any(alive(v) for v in victims), 3.0):
        raise Fail(f"{victims} still alive 3 s after SIGKILL")
    left = os.path.exists(a.pidfile)
    port2 = free_port()
    c.step("restart with the stale pid file")
    r = c.launch(c.daemon_args(port2, a.pidfile))
    pid2, raw = read_pidfile(a.pidfile)
    c.learn(pid2)
    problems = []
    need(r.rc == 0, problems, r.describe())
    need(pid2 is not None and pid2 != a.pid, problems, f"pid file holds {raw!r} after restart")
    if pid2 and pid2 != a.pid:
        need(alive(pid2), problems, f"new pid {pid2} not running")
        try:
            resp = http_get(port2, "/")
            need(resp.status == 200, problems, f"new daemon answers {resp.short()}")
        except Exception as e:
            problems.append(f"new daemon does not answer: {e}")
    return verdict(problems, f"old {a.pid} killed -9 (stale pid file {'left' if left else 'gone'}); "
                             f"restart exit {r.rc}; pid file now {pid2}")


@row("user-group")
def row_user_group(c):
    prereq(os.geteuid() == 0, "not running as root")
    try:
        uid = pwd.getpwnam("nobody").pw_uid
        gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        prereq(False, "user 'nobody' or group 'nogroup' does not exist")
    want_groups = sorted(set(os.getgrouplist("nobody", gid)))
    os.chmod(c.tmp, 0o777)        # fresh dir: the unprivileged daemon may unlink its pid file
    a = c.start_daemon(["--user", "nobody", "--group", "nogroup", "-w", "2"])
    workers = c.wait_workers(a.pid, 2)
    problems = []
    for pid in [a.pid] + workers:
        st = proc_status(pid)
        if st is None:
            problems.append(f"{pid} vanished")
            continue
        uids, gids = st.get("Uid", "").split(), st.get("Gid", "").split()
        groups = sorted(int(g) for g in st.get("Groups", "").split())
        need(uids == [str(uid)] * 4, problems, f"{pid} Uid: {uids}")
        need(gids == [str(gid)] * 4, problems, f"{pid} Gid: {gids}")
        need(groups == want_groups, problems, f"{pid} Groups: {groups} (want {want_groups})")
    try:
        resp = http_get(a.port, "/ids")
        m = IDS_RE.fullmatch(resp.body) if resp.status == 200 else None
        if not m:
            problems.append(f"GET /ids answered {resp.short()}")
            ids = resp.body
        else:
            ids = resp.body.decode().strip()
            nums = [int(x) for x in m.groups()[:4]]
            got_groups = sorted(int(g) for g in m.group(5).decode().split(",") if g)
            need(nums == [uid, gid, uid, gid], problems, f"GET /ids says {ids!r}")
            need(got_groups == want_groups, problems, f"GET /ids groups {got_groups}")
    except Exception as e:
        problems.append(f"GET /ids failed: {e}")
        ids = None
    return verdict(problems, f"master {a.pid} + workers {workers} all uid/gid {uid}/{gid} "
                             f"groups {want_groups}; /ids {ids!r}")


@row("fail-after-fork")
def row_fail_after_fork(c):
    user = "no-such-user-dk"
    try:
        pwd.getpwnam(user)
        prereq(False, f"user {user!r} unexpectedly exists")
    except KeyError:
        pass
    port, pf = free_port(), c.path("dk.pid")
    c.step("launching with a bad user")
    r = c.launch(c.daemon_args(port, pf, ["--user", user]))
    pid, raw = read_pidfile(pf)
    c.learn(pid)
    problems = []
    need(r.rc not in (0, None), problems, r.describe())
    if user not in r.err:
        where = " (it is on stdout)" if user in r.out else ""
        problems.append(f"stderr does not name {user!r}{where}")
    closed = wait_until(lambda: not port_accepting(port), 2.0)
    need(closed, problems, f"a process still accepts on port {port}")
    lk = lock_state(pf)
    need(lk in ("missing", "free"), problems, f"pid file is {lk}")
    if pid and alive(pid):
        problems.append(f"pid {pid} from the pid file is still running")
    left, _ = c._targets()
    left.discard(r.pid)
    need(not left, problems, f"leftover processes {sorted(left)}")
    return verdict(problems, f"launcher exit {r.rc}, stderr {tail(r.err)}; pid file {lk}; "
                             f"port {'closed' if closed else 'open'}")


def term_graceful(c, workers):
    extra = ["-w", "2"] if workers else []
    a = c.start_daemon(extra)
    ws = c.wait_workers(a.pid, 2) if workers else []
    slow = InFlight(a.port, 1500, timeout=12.0).start()
    time.sleep(0.3)
    c.step("TERM during /slow")
    t0 = time.monotonic()
    c.signal(a.pid, signal.SIGTERM)
    time.sleep(0.3)
    # stop accepting: a request made during the drain must not be served
    try:
        late = http_get(a.port, "/", timeout=1.0)
        late_seen = f"served {late.status}"
    except ConnectionRefusedError:
        late, late_seen = None, "refused"
    except Exception as e:
        late, late_seen = None, f"not served ({type(e).__name__})"
    problems = []
    slow_seen = slow.finish(problems, "TERM")
    need(late is None or late.status != 200, problems,
         "a new request made during the drain was served (did not stop accepting)")
    everyone = [a.pid] + ws
    gone = wait_until(lambda: not any(alive(p) for p in everyone), 10.0)
    gone_ms = ms_since(t0)
    need(gone, problems, f"still running 10 s after TERM: "
                         f"{[p for p in everyone if alive(p)]}")
    removed = wait_until(lambda: not os.path.exists(a.pidfile), 2.0)
    need(removed, problems, "pid file not removed")
    closed = wait_until(lambda: not port_accepting(a.port), 2.0)
    need(closed, problems, f"port {a.port} still accepting")
    who = f"master {a.pid} + workers {ws}" if workers else f"pid {a.pid}"
    return verdict(problems, f"in-flight /slow: {slow_seen}; new request during drain "
                             f"{late_seen}; {who} gone {gone_ms} ms after TERM "
                             f"(exit code not observable: daemon is not our child); "
                             f"pid file {'removed' if removed else 'left'}; "
                             f"port {'closed' if closed else 'open'}")


@row("term-graceful")
def row_term_graceful(c):
    return term_graceful(c, workers=False)


@row("term-graceful-workers")
def row_term_graceful_workers(c):
    return term_graceful(c, workers=True)


@row("hup-workers", bound=40.0)
def row_hup_workers(c):
    a = c.start_daemon(["-w", "2"])
    before = c.wait_workers(a.pid, 2)
    loop = ClientLoop(c, a.port).start()
    slow = InFlight(a.port, 1000).start()
    time.sleep(0.3)
    c.step("HUP")
    t0 = time.monotonic()
    c.signal(a.pid, signal.SIGHUP)
    peak = [0]

    def rolled():
        kids = c.kids(a.pid)
        peak[0] = max(peak[0], len(kids))
        return (len(kids) == 2 and not set(kids) & set(before)
                and not any(alive(p) for p in before))
    done = wait_until(rolled, 15.0, 0.05)
    roll_ms = ms_since(t0)
    time.sleep(0.3)
    loop.stop()
    after = c.kids(a.pid)
    problems = []
    slow_seen = slow.finish(problems, "HUP")
    need(done, problems, f"workers not all replaced within 15 s "
                         f"(old still alive: {[p for p in before if alive(p)]})")
    need(loop.failed == 0, problems, "requests failed across HUP")
    need(loop.ok > 0, problems, "no request succeeded")
    need(alive(a.pid), problems, "master gone")
    pid_now, raw = read_pidfile(a.pidfile)
    need(pid_now == a.pid, problems, f"pid file holds {raw!r}")
    return verdict(problems, f"workers {before} -> {after} in {roll_ms} ms (peak {peak[0]} "
                             f"children); master {a.pid} unchanged; {loop.summary()}; "
                             f"in-flight /slow {slow_seen}")


@row("hup-single", bound=40.0)
def row_hup_single(c):
    log = c.path("server.log")
    a = c.start_daemon(["--log", log])
    st0 = proc_stat(a.pid)
    exe0 = readlink(f"/proc/{a.pid}/exe")
    env0 = proc_environ(a.pid)
    layout0 = exec_layout(a.pid)
    n_listen0 = read_text(log).count("listening on")
    loop = ClientLoop(c, a.port).start()
    slow = InFlight(a.port, 800).start()
    time.sleep(0.3)
    c.step("HUP")
    c.signal(a.pid, signal.SIGHUP)
    problems = []
    slow_seen = slow.finish(problems, "HUP")
    time.sleep(1.2)
    loop.stop()
    st1 = proc_stat(a.pid)
    need(is_live(st1), problems, f"pid {a.pid} gone after HUP")
    if is_live(st1):
        need(st1["starttime"] == st0["starttime"], problems, "pid was reused by a new process")
    exe1 = readlink(f"/proc/{a.pid}/exe")
    need(exe1 == exe0, problems, f"/proc/PID/exe changed {exe0} -> {exe1}")
    pid_now, raw = read_pidfile(a.pidfile)
    need(pid_now == a.pid, problems, f"pid file holds {raw!r}")
    try:
        resp = http_get(a.port, "/pid")
        need(resp.status == 200 and resp.body.strip() == str(a.pid).encode(), problems,
             f"GET /pid answered {resp.short()}")
    except Exception as e:
        problems.append(f"GET /pid failed after HUP: {e}")
    lk = lock_state(a.pidfile)
    need(lk == "held", problems, f"pid file lock is {lk}")
    need(loop.failed == 0, problems, "requests failed across HUP")
    need(loop.ok > 0, problems, "no request succeeded")
    evidence = []
    layout1 = exec_layout(a.pid)
    if layout0 and layout1 and layout0 != layout1:
        evidence.append("new exec memory layout in /proc/PID/stat")
    env1 = proc_environ(a.pid)
    if env0 is not None and env1 is not None and env0 != env1:
        added = sorted(x.split(b"=")[0].decode("latin-1") for x in env1 - env0)
        evidence.append(f"environ changed (+{','.join(added) or 'values'})")
    n_listen1 = read_text(log).count("listening on")
    if n_listen1 > n_listen0:
        evidence.append(f"log 'listening on' lines {n_listen0}->{n_listen1}")
    if evidence:
        ev = "; re-exec evidence: " + ", ".join(evidence)
    elif layout0 and aslr_active(a.pid):
        ev = ""
        problems.append("no sign of a re-exec: exec memory layout (ASLR on), environment and "
                        "'listening on' log lines all unchanged after HUP")
    else:
        ev = "; re-exec not verifiable here (ASLR off or /proc/PID/stat masked)"
    return verdict(problems, f"same pid {a.pid} (exe {exe1}) serves after HUP, pid file "
                             f"unchanged and {lk}; {loop.summary()}; in-flight /slow "
                             f"{slow_seen}{ev}")


@row("ttin-ttou")
def row_ttin_ttou(c):
    a = c.start_daemon(["-w", "2"])
    c.wait_workers(a.pid, 2)
    c.step("TTIN")
    t0 = time.monotonic()
    c.signal(a.pid, signal.SIGTTIN)
    if not wait_until(lambda: len(c.kids(a.pid)) == 3, 3.0, 0.05):
        raise Fail(f"TTIN: expected 3 workers within 3 s, saw {c.kids(a.pid)}")
    ttin_ms = ms_since(t0)
    counts, low = [], [3]

    def count():
        n = len(c.kids(a.pid))
        low[0] = min(low[0], n)
        return n
    for _ in range(5):
        # one at a time: standard signals sent back to back may coalesce
        n0 = count()
        c.signal(a.pid, signal.SIGTTOU)
        if n0 > 1:
            wait_until(lambda: count() < n0, 2.0, 0.02)
        else:
            wait_until(lambda: count() < 1, 0.4, 0.02)
        counts.append(count())
    settled = wait_until(lambda: count() == 1, 3.0, 0.05)
    wait_until(lambda: count() != 1, 0.5, 0.05)     # stays at one for half a second
    final = c.kids(a.pid)
    problems = []
    need(settled and len(final) == 1, problems, f"after TTOU x5: workers {final}")
    need(low[0] >= 1, problems, f"worker count dropped to {low[0]}")
    try:
        resp = http_get(a.port, "/")
        pid = hello_pid(resp, c.lang)
        need(pid is not None, problems, f"GET / answered {resp.short()}")
    except Exception as e:
        problems.append(f"GET / failed: {e}")
        pid = None
    return verdict(problems, f"TTIN: 2->3 workers in {ttin_ms} ms; TTOU x5: counts {counts}, "
                             f"min seen {low[0]}, final {final}; GET / served by {pid}")


@row("worker-respawn")
def row_worker_respawn(c):
    a = c.start_daemon(["-w", "2"])
    ws = c.wait_workers(a.pid, 2)
    time.sleep(1.3)          # older than the crash-loop window
    ws = c.kids(a.pid)
    victim = ws[0]
    c.step(f"kill -9 worker {victim}")
    t0 = time.monotonic()
    c.signal(victim, signal.SIGKILL)
    new = wait_until(lambda: sorted(set(c.kids(a.pid)) - set(ws)), 1.5, 0.01)
    appear_ms = ms_since(t0) if new else None
    served_ms, served_by, answers = None, None, collections.Counter()
    if new:
        # The kernel picks which worker accepts, and with one request at a time the worker
        # that just answered (first in the listener's wait queue again) can win every race.
        # Probing with small concurrent bursts lets connections arrive while it is busy, so
        # an idle new worker that accepts gets a real chance; the check itself is unchanged.
        def probe():
            try:
                return hello_pid(http_get(a.port, "/", timeout=1.0), c.lang)
            except Exception:
                return None
        deadline = t0 + 2.0
        while time.monotonic() < deadline and served_ms is None:
            results = []
            burst = [threading.Thread(target=lambda: results.append(probe())) for _ in range(4)]
            for t in burst:
                t.start()
            for t in burst:
                t.join(3.0)
            for pid in results:
                answers[pid] += 1
                if pid in new and served_ms is None:
                    served_ms, served_by = ms_since(t0), pid
            time.sleep(0.005)
    problems = []
    need(new, problems, f"no new worker within 1.5 s (children {c.kids(a.pid)})")
    if new:
        need(appear_ms <= 1000, problems, f"new worker appeared only after {appear_ms} ms")
        need(served_ms is not None and served_ms <= 1500, problems,
             f"new worker {new} did not serve GET / within 1.5 s (answers {dict(answers)})")
    return verdict(problems, f"killed {victim}; new worker {new} appeared after {appear_ms} ms, "
                             f"served GET / after {served_ms} ms")


@row("master-kill")
def row_master_kill(c):
    a = c.start_daemon(["-w", "2"])
    c.wait_workers(a.pid, 2)
    ws = c.kids(a.pid)
    c.step(f"kill -9 master {a.pid}")
    t0 = time.monotonic()
    c.signal(a.pid, signal.SIGKILL)
    gone = wait_until(lambda: not any(alive(p) for p in ws), 2.0, 0.02)
    ms = ms_since(t0)
    if not gone:
        raise Fail(f"workers still alive 2 s after the master was killed: "
                   f"{[p for p in ws if alive(p)]} (cleaned up by pid)")
    return f"master {a.pid} killed -9; workers {ws} gone after {ms} ms"


def usr1_reopen(c, workers):
    log, rotated = c.path("server.log"), c.path("server.log.1")
    a = c.start_daemon(["--log", log] + (["-w", "2"] if workers else []))
    if workers:
        c.wait_workers(a.pid, 2)
    tag = secrets.token_hex(4)
    before = [f"/dk-before-{tag}-{i}" for i in range(4)]
    for p in before:
        get_or_fail(a.port, p)
    if not wait_until(lambda: all(p in read_text(log) for p in before), 2.0):
        raise Fail(f"request lines not logged to --log file (content {tail(read_text(log))})")
    c.step("rename + USR1")
    os.rename(log, rotated)
    c.signal(a.pid, signal.SIGUSR1)
    time.sleep(0.5)
    after = [f"/dk-after-{tag}-{i}" for i in range(2)]
    served = collections.Counter()
    for i in range(12):
        try:
            r = http_get(a.port, "/pid")
            if r.status == 200 and r.body.strip().isdigit():
                served[int(r.body.strip())] += 1
        except Exception:
            pass
        if i < len(after):
            get_or_fail(a.port, after[i])
        if workers and len(served) >= 2 and i >= 3:
            break
        if not workers and i >= 3:
            break

    def new_lines_ok():
        text = read_text(log)
        if not all(p in text for p in after):
            return False
        for pid in served:
            if not any("/pid" in ln and re.search(rf"\b{pid}\b", ln) for ln in text.splitlines()):
                return False
        return True
    ok = wait_until(new_lines_ok, 3.0)
    new_text, old_text = read_text(log), read_text(rotated)
    problems = []
    need(os.path.exists(log), problems, "no new log file after USR1")
    need(ok, problems, "new requests missing from the new log file")
    misplaced = [p for p in after if p in old_text]
    need(not misplaced, problems, f"{misplaced} went to the rotated file")
    need(all(p in old_text for p in before), problems, "rotated file lost the old lines")
    stale = [pid for pid in served
             if any("/pid" in ln and re.search(rf"\b{pid}\b", ln) for ln in old_text.splitlines())]
    need(not stale, problems, f"process(es) {stale} still write to the rotated file")
    n_new = len([ln for ln in new_text.splitlines() if ln.strip()])
    return verdict(problems, f"after rename+USR1: {n_new} line(s) in the new file incl. lines of "
                             f"serving pid(s) {sorted(served)}; old lines stay in .1")


@row("usr1-reopen")
def row_usr1_reopen(c):
    return usr1_reopen(c, workers=False)


@row("usr1-reopen-workers")
def row_usr1_reopen_workers(c):
    return usr1_reopen(c, workers=True)


@row("usr1-during-hup", bound=60.0)
def row_usr1_during_hup(c):
    """-w 4: rounds of HUP with USR1 every 2 ms while the new workers start. None may die
    of USR1's default action before it installed its handler (seen as an extra worker
    pid in a round, a "killed by signal 10" line, or a roll that stalls)."""
    log = c.path("server.log")
    a = c.start_daemon(["-w", "4", "--log", log])
    c.wait_workers(a.pid, 4, timeout=5.0)
    problems, extra, rounds = [], [], 8
    for rnd in range(rounds):
        before = set(c.kids(a.pid))
        seen = set()
        c.step(f"round {rnd}: HUP + USR1 storm")
        c.signal(a.pid, signal.SIGHUP)
        t0 = time.monotonic()
        rolled = False
        while time.monotonic() - t0 < 10.0:
            c.signal(a.pid, signal.SIGUSR1)
            time.sleep(0.002)
            kids = set(children_of(a.pid))
            seen |= kids - before
            if len(kids) == 4 and not kids & before:
                rolled = True
                break
        if not rolled:
            problems.append(f"round {rnd}: roll not done in 10 s ({sorted(c.kids(a.pid))})")
            break
        if len(seen) > 4:
            extra.append((rnd, len(seen)))
        time.sleep(0.05)
    need(not extra, problems, f"rounds with more than 4 new workers (respawns): {extra}")
    text = read_text(log)
    need("signal 10" not in text, problems,
         "the log shows a worker killed by signal 10: "
         + tail("\n".join(l for l in text.splitlines() if "signal 10" in l)))
    need(alive(a.pid), problems, "master gone")
    try:
        need(http_get(a.port, "/").status == 200, problems, "does not serve afterwards")
    except Exception as e:
        problems.append(f"does not serve afterwards: {e}")
    return verdict(problems, f"{rounds} rounds of HUP + USR1 storms with -w 4, 4 new workers "
                             f"each, no death by USR1")


SIG_PIPE_BIT = 1 << (signal.SIGPIPE - 1)
GLIBC_OWN = (1 << 31) | (1 << 32)    # signals 32 and 33: glibc's own, nobody can change them


def signal_masks(pid):
    st = proc_status(pid) or {}
    return (int(st.get("SigBlk", "0"), 16) & ~GLIBC_OWN,
            int(st.get("SigIgn", "0"), 16) & ~GLIBC_OWN)


@row("signal-state", bound=60.0)
def row_signal_state(c):
    """Every server process, single and with workers, at start, after HUP and after USR2:
    no signal left blocked, none ignored but SIGPIPE (what a server asks for itself) —
    no state leaked from the library's forks, re-execs and upgrades."""
    problems, seen = [], []

    def look(when, pids):
        for pid in pids:
            blk, ign = signal_masks(pid)
            need(blk == 0, problems, f"{when}: {pid} SigBlk {blk:016x}")
            need(ign & ~SIG_PIPE_BIT == 0, problems, f"{when}: {pid} SigIgn {ign:016x}")
        seen.append(f"{when}: {len(pids)} process(es) clean")

    for extra in ([], ["-w", "2"]):
        what = "single" if not extra else "-w 2"
        a = c.start_daemon(extra)
        if extra:
            c.wait_workers(a.pid, 2)
        look(f"{what} start", [a.pid] + c.kids(a.pid))
        before = set(c.kids(a.pid))
        c.signal(a.pid, signal.SIGHUP)
        if extra:
            wait_until(lambda: (lambda k: len(k) == 2 and not k & before)(set(c.kids(a.pid))),
                       10.0)
        else:
            time.sleep(1.0)
        wait_until(lambda: port_accepting(a.port, 0.3), 5.0)
        look(f"{what} after HUP", [a.pid] + c.kids(a.pid))
        c.signal(a.pid, signal.SIGUSR2)
        moved = wait_until(lambda: (read_pidfile(a.pidfile)[0] or a.pid) != a.pid
                           and not alive(a.pid), 15.0)
        new, _ = read_pidfile(a.pidfile)
        if not moved or not new:
            problems.append(f"{what}: USR2 did not hand over to a new generation")
            continue
        c.learn(new)
        if extra:
            c.wait_workers(new, 2, timeout=5.0)
        look(f"{what} after USR2", [new] + c.kids(new))
        c.signal(new, signal.SIGTERM)
        wait_until(lambda: not alive(new), 10.0)
    return verdict(problems, "; ".join(seen))


def usr2_upgrade(c, workers):
    a = c.start_daemon(["-w", "2"] if workers else [])
    old_ws = c.wait_workers(a.pid, 2) if workers else []
    loop = ClientLoop(c, a.port).start()
    slow = InFlight(a.port, 1000).start()
    time.sleep(0.3)
    c.step("USR2")
    t0 = time.monotonic()
    c.signal(a.pid, signal.SIGUSR2)
    state = {}

    def upgraded():
        c.kids(a.pid)                      # learn the new generation while it is a child
        pid, _ = read_pidfile(a.pidfile)
        if pid and pid != a.pid:
            c.learn(pid)
            c.kids(pid)
            state["new"] = pid
            return not alive(a.pid)
        return False
    done = wait_until(upgraded, 10.0, 0.05)
    up_ms = ms_since(t0)
    new = state.get("new")
    problems = []
    need(new is not None, problems, f"pid file still holds the old master {a.pid} after 10 s")
    need(not alive(a.pid), problems, f"old master {a.pid} still alive after 10 s")
    new_ws, served = [], None
    if new:
        need(alive(new), problems, f"new master {new} not running")
        if workers:
            try:
                new_ws = c.wait_workers(new, 2, 5.0)
            except Fail as e:
                problems.append(str(e))

        def serving():
            try:
                r = http_get(a.port, "/pid")
                return int(r.body.strip()) if r.status == 200 and r.body.strip().isdigit() else None
            except Exception:
                return None
        served = wait_until(lambda: (lambda p: p if p and (
            (workers and proc_stat(p) and proc_stat(p)["ppid"] == new) or
            (not workers and p == new)) else None)(serving()), 3.0, 0.05)
        need(served, problems, f"GET /pid never answered by the new generation ({serving()})")
    slow_seen = slow.finish(problems, "USR2")
    time.sleep(0.3)
    loop.stop()
    need(loop.failed == 0, problems, "requests failed across USR2")
    need(loop.ok > 0, problems, "no request succeeded")
    left = [p for p in old_ws if alive(p)]
    need(not left, problems, f"old workers {left} still alive")
    lk = lock_state(a.pidfile)
    need(lk == "held", problems, f"pid file lock is {lk} after the upgrade")
    return verdict(problems, f"master {a.pid} -> {new} in {up_ms} ms (pid file, old gone: "
                             f"{bool(done)}); new workers {new_ws}; GET /pid -> {served}; "
                             f"pid file {lk}; {loop.summary()}; in-flight /slow {slow_seen}")


@row("usr2-upgrade", bound=40.0)
def row_usr2_upgrade(c):
    return usr2_upgrade(c, workers=True)


@row("usr2-upgrade-single", bound=40.0)
def row_usr2_upgrade_single(c):
    return usr2_upgrade(c, workers=False)


@row("socket-activation")
def row_socket_activation(c):
    tool = shutil.which("systemd-socket-activate")
    prereq(tool, "systemd-socket-activate not installed")
    port = free_port()
    p = c.spawn([tool, "-l", f"127.0.0.1:{port}"] + c.cmd)
    c.step("GET / through the activated socket")
    resp, err, t0 = None, None, time.monotonic()
    while time.monotonic() - t0 < 8.0:
        try:
            resp = http_get(port, "/", timeout=8.0)
            break
        except ConnectionRefusedError as e:      # activator not listening yet
            err = e
            if p.poll() is not None:
                break
            time.sleep(0.05)
        except Exception as e:
            err = e
            break
    if resp is None:
        raise Fail(f"GET / via socket activation failed: {err}; stderr {tail(read_text(p.err_path))}")
    problems = []
    pid = hello_pid(resp, c.lang)
    need(pid is not None, problems, f"GET / answered {resp.short()}")
    c.step("TERM")
    c.signal(p.pid, signal.SIGTERM)
    try:
        rc = p.wait(10.0)
    except subprocess.TimeoutExpired:
        rc = None
    need(rc == 0, problems, f"exit status {rc} after TERM (want 0)")
    return verdict(problems, f"GET / via inherited socket -> {resp.short()} (activator/server pid "
                             f"{p.pid}); TERM -> exit {rc}")


def notify(c, abstract):
    port = free_port()
    if abstract:
        name = f"dkconf-{os.getpid()}-{secrets.token_hex(4)}"
        address, env_value = "\0" + name, "@" + name
    else:
        address = env_value = c.path("notify.sock")
    n = NotifyListener(c, address)
    p = c.spawn(c.cmd + ["--foreground-notify", "--listen", f"127.0.0.1:{port}"],
                {"NOTIFY_SOCKET": env_value})

    def died(what):
        rc = p.poll()
        state = f"exited {rc}" if rc is not None else "still running"
        return Fail(f"{what} (server {state}; got {n.seen}; stderr {tail(read_text(p.err_path))})")
    c.step("waiting for READY=1")
    t0 = time.monotonic()
    i = n.wait_for("READY=1", 0, 10.0, p)
    if i is None:
        raise died("READY=1 not received (waited up to 10 s)")
    ready_ms = ms_since(t0)
    problems = []
    try:
        r = http_get(port, "/pid")
        need(r.status == 200 and r.body.strip() == str(p.pid).encode(), problems,
             f"GET /pid after READY=1 -> {r.short()}, want {p.pid} (foreground: no fork)")
    except Exception as e:
        problems.append(f"GET /pid after READY=1 failed: {e}")
    c.step("HUP")
    mark = len(n.seen)
    c.signal(p.pid, signal.SIGHUP)
    j = n.wait_for("RELOADING=1", mark, 10.0, p)
    if j is None:
        raise died("RELOADING=1 not received after HUP (waited up to 10 s)")
    k = n.wait_for("READY=1", j + 1, 10.0, p)
    if k is None:
        raise died("RELOADING=1 but no READY=1 after it (waited up to 10 s)")
    try:
        need(http_get(port, "/").status == 200, problems, "GET / after reload not 200")
    except Exception as e:
        problems.append(f"GET / after reload failed: {e}")
    c.step("TERM")
    mark = len(n.seen)
    c.signal(p.pid, signal.SIGTERM)
    s = n.wait_for("STOPPING=1", mark, 10.0, p)
    need(s is not None, problems, "no STOPPING=1 after TERM")
    try:
        rc = p.wait(10.0)
    except subprocess.TimeoutExpired:
        rc = None
    need(rc == 0, problems, f"exit status {rc} after TERM (want 0)")
    return verdict(problems, f"NOTIFY_SOCKET={env_value[:40]}: READY=1 after {ready_ms} ms; "
                             f"HUP -> RELOADING=1, READY=1; TERM -> STOPPING=1, exit {rc}; "
                             f"all: {n.seen}")


@row("notify")
def row_notify(c):
    return notify(c, abstract=False)


@row("notify-abstract")
def row_notify_abstract(c):
    return notify(c, abstract=True)


@row("max-requests")
def row_max_requests(c):
    a = c.start_daemon(["-w", "1", "--max-requests", "5"])
    c.wait_workers(a.pid, 1)
    served, errors = [], []
    for _ in range(12):
        try:
            r = http_get(a.port, "/", timeout=5.0)
            pid = hello_pid(r, c.lang)
            if pid is None:
                errors.append(f"answer {r.short()}")
            served.append(pid)
            if pid:
                c.learn(pid)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
    distinct = list(dict.fromkeys(p for p in served if p))
    problems = []
    need(not errors, problems, f"{len(errors)} failed: {errors[:3]}")
    need(len(distinct) >= 2, problems, f"only worker pid(s) {distinct} seen")
    counts = collections.Counter(served)
    return verdict(problems, f"12 requests, {len(errors)} failed; served by "
                             f"{', '.join(f'{p} x{counts[p]}' for p in distinct)}")


@row("max-requests-single")
def row_max_requests_single(c):
    port, pf = free_port(), c.path("dk.pid")
    r = c.launch(c.daemon_args(port, pf, ["--max-requests", "5"]))
    pid, _ = read_pidfile(pf)
    c.learn(pid)
    problems = []
    need(r.rc not in (0, None), problems, f"not refused: {r.describe()}")
    need(r.err.strip(), problems, "no message on stderr")
    closed = wait_until(lambda: not port_accepting(port), 1.0)
    need(closed, problems, f"something accepts on port {port}")
    return verdict(problems, f"exit {r.rc}, stderr {tail(r.err)}")


@row("nofile")
def row_nofile(c):
    a = c.start_daemon(["--nofile", "512"])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 512 if hard == resource.RLIM_INFINITY else min(512, hard)
    lim = proc_limits(a.pid)
    if lim is None:
        raise Fail(f"cannot read /proc/{a.pid}/limits")
    nofile = lim.get("Max open files", ("?", "?"))
    core = lim.get("Max core file size", ("?", "?"))
    problems = []
    need(nofile[0] == str(want), problems, f"soft RLIMIT_NOFILE {nofile[0]} (want {want})")
    need(core[0] == "0", problems, f"soft RLIMIT_CORE {core[0]} (want 0)")
    return verdict(problems, f"pid {a.pid}: Max open files soft {nofile[0]} hard {nofile[1]}; "
                             f"Max core file size soft {core[0]}")


@row("listen-port0")
def row_listen_port0(c):
    p = c.spawn(c.cmd + ["--listen", "127.0.0.1:0"])
    rx = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
    c.step("waiting for 'listening on'")
    m = wait_until(lambda: rx.search(read_text(p.err_path)) or rx.search(read_text(p.out_path))
                   or (p.poll() is not None and "exited"), 8.0, 0.05)
    if not m or m == "exited":
        raise Fail(f"no 'listening on 127.0.0.1:N' within 8 s (exit {p.poll()}); "
                   f"stderr {tail(read_text(p.err_path))}")
    port = int(m.group(1))
    problems = []
    need(port > 0, problems, f"reported port {port}")
    on_stderr = bool(rx.search(read_text(p.err_path)))
    resp = None
    if port > 0:
        try:
            resp = wait_until(lambda: _try_get(port), 3.0, 0.05)
            need(resp and resp.status == 200, problems,
                 f"GET / on {port}: {resp.short() if resp else 'no answer'}")
        except Exception as e:
            problems.append(f"GET / on {port} failed: {e}")
    c.signal(p.pid, signal.SIGTERM)
    try:
        rc = p.wait(10.0)
    except subprocess.TimeoutExpired:
        rc = None
    return verdict(problems, f"'listening on 127.0.0.1:{port}' on {'stderr' if on_stderr else 'stdout'}; "
                             f"GET / {resp.status if resp else '-'}; TERM -> exit {rc}")


@row("notify-fd", bound=30.0)
def row_notify_fd(c):
    """s6's readiness protocol (--notify-fd N): nothing on fd N until the server answers
    HTTP, then one newline and the fd closed (EOF). With 2 workers: after all are ready."""
    r, w = os.pipe()
    c.defer(lambda: os.close(r))
    port = free_port()
    c.step(f"starting with --notify-fd {w}")
    p = c.spawn(c.cmd + ["--notify-fd", str(w), "--listen", f"127.0.0.1:{port}", "-w", "2"],
                pass_fds=(w,))
    os.close(w)
    c.learn(p.pid)
    got, t0, early = b"", time.monotonic(), None
    while time.monotonic() - t0 < 15.0:
        ready, _, _ = select.select([r], [], [], 0.05)
        if not ready:
            if p.poll() is not None:
                break
            continue
        chunk = os.read(r, 64)
        if not chunk:
            break  # EOF: every copy of fd N closed
        if not got:
            # The newline arrived: the server must answer now.
            try:
                resp = http_get(port, "/", timeout=2.0)
                early = None if resp.status == 200 else f"GET / answered {resp.short()}"
            except Exception as e:
                early = f"GET / right after the newline failed: {type(e).__name__}: {e}"
        got += chunk
    took = ms_since(t0)
    problems = []
    need(got == b"\n", problems, f"fd {w} got {got!r} (want one newline, then EOF)")
    need(early is None, problems, early or "")
    kids = c.kids(p.pid)
    need(len(kids) == 2, problems, f"workers {kids} (want 2)")
    c.signal(p.pid, signal.SIGTERM)
    try:
        rc = p.wait(10.0)
    except subprocess.TimeoutExpired:
        rc = None
    need(rc == 0, problems, f"exit status {rc} after TERM (want 0)")
    return verdict(problems, f"--notify-fd {w}: {got!r} then EOF after {took} ms, GET / 200 at "
                             f"that moment; workers {kids}; TERM -> exit {rc}")


def voluntary_switches(pid):
    """Sum of voluntary_ctxt_switches over every thread of PID (each time a thread went
    to sleep in the kernel: an idle loop with a timer shows up here), or None."""
    total, seen = 0, False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
                        seen = True
        except OSError:
            pass  # the thread ended meanwhile
    return total if seen else None


IDLE_SECS = 5.0
IDLE_MAX_PER_SEC = 2.0


@row("idle-wakeups", bound=40.0)
def row_idle_wakeups(c):
    """Idle servers sleep in the kernel: over IDLE_SECS with no traffic, no process (all
    its threads together) wakes more than IDLE_MAX_PER_SEC times a second. A single
    process and a master with 2 workers are measured over the same window."""
    single = c.start_daemon([], pidfile=c.path("single.pid"))
    multi = c.start_daemon(["-w", "2"], pidfile=c.path("multi.pid"))
    ws = c.wait_workers(multi.pid, 2)
    for a in (single, multi):
        get_or_fail(a.port, "/")
    time.sleep(1.0)  # let the first request's threads end and the workers settle
    procs = [("single", single.pid), ("master", multi.pid)] + [("worker", w) for w in ws]
    c.step(f"sampling voluntary_ctxt_switches over {IDLE_SECS:g} s")
    t0 = time.monotonic()
    before = {pid: voluntary_switches(pid) for _, pid in procs}
    time.sleep(IDLE_SECS)
    after = {pid: voluntary_switches(pid) for _, pid in procs}
    secs = time.monotonic() - t0
    problems, parts = [], []
    for what, pid in procs:
        b, a = before[pid], after[pid]
        if b is None or a is None:
            problems.append(f"{what} {pid} gone during the idle window")
            continue
        rate = (a - b) / secs
        parts.append(f"{what} {pid}: {a - b} in {secs:.1f} s ({rate:.1f}/s)")
        need(rate <= IDLE_MAX_PER_SEC, problems,
             f"{what} {pid} woke {rate:.1f} times a second while idle "
             f"(limit {IDLE_MAX_PER_SEC:g}: a timer or busy loop)")
    for a in (single, multi):
        term_and_wait_gone(c, [a.pid] + c.kids(a.pid), 10.0)
    return verdict(problems, "; ".join(parts))


def _try_get(port):
    try:
        return http_get(port, "/")
    except Exception:
        return None


@row("endpoints")
def row_endpoints(c):
    a = c.start_daemon()
    problems, seen = [], []

    def get(path, **kw):
        try:
            return http_get(a.port, path, **kw)
        except Exception as e:
            problems.append(f"GET {path} failed: {type(e).__name__}: {e}")
            return None
    r = get("/")
    if r:
        m = HELLO_RE.fullmatch(r.body)
        want = f"hello from {c.lang} pid {a.pid}\n".encode()
        need(r.status == 200 and r.body == want, problems,
             f"GET / -> {r.short()}, want 200 {want!r}" + ("" if m else " (format)"))
        seen.append(f"/ {r.status} {r.body!r}")
    r = get("/pid")
    if r:
        need(r.status == 200 and re.fullmatch(rb"\d+\n?", r.body)
             and int(r.body) == a.pid, problems, f"GET /pid -> {r.short()}, want {a.pid}")
        seen.append(f"/pid {r.status} {r.body!r}")
    r = get("/ids")
    if r:
        m = IDS_RE.fullmatch(r.body) if r.status == 200 else None
        if not m:
            problems.append(f"GET /ids -> {r.short()}, want 'uid=N gid=N euid=N egid=N groups=N,...'")
        else:
            st = proc_status(a.pid) or {}
            uids, gids = st.get("Uid", "").split(), st.get("Gid", "").split()
            pgroups = set(int(g) for g in st.get("Groups", "").split())
            nums = [int(x) for x in m.groups()[:4]]
            groups = set(int(g) for g in m.group(5).decode().split(",") if g)
            expect = [int(uids[0]), int(gids[0]), int(uids[1]), int(gids[1])] if uids else None
            need(nums == expect, problems, f"GET /ids {r.body!r} vs /proc {uids} {gids}")
            need(groups in (pgroups, pgroups | {nums[3]}), problems,
                 f"GET /ids groups {sorted(groups)} vs /proc Groups {sorted(pgroups)}")
        seen.append(f"/ids {r.body.strip()!r}")
    r = get("/nope")
    if r:
        need(r.status == 404, problems, f"GET /nope -> {r.status}, want 404")
        seen.append(f"/nope {r.status}")
    r = get("/slow?ms=100")
    if r:
        need(r.status == 200 and r.body == b"done\n", problems, f"GET /slow?ms=100 -> {r.short()}")
        seen.append(f"/slow {r.status} {r.body!r}")
    r = get("/", require_eof=True)
    if r:
        need(r.headers.get("connection", "close").lower() != "keep-alive", problems,
             "answered 'Connection: keep-alive' to Connection: close")
        seen.append("Connection: close -> closed")
    return verdict(problems, "; ".join(seen))


# --------------------------------------------------------------------------
# driver


class Suite:
    def __init__(self, cmd, lang, verbose):
        self.cmd, self.lang, self.verbose = cmd, lang, verbose
        self.missing = server_missing(cmd)


INTERPRETERS = {"perl", "python", "python3", "ruby", "node", "sh", "bash"}


def server_missing(cmd):
    """Reason why the server command cannot be found, or None."""
    if not cmd:
        return "empty server command"
    if shutil.which(cmd[0]) is None:
        return f"server command not found: {cmd[0]}"
    if os.path.basename(cmd[0]) in INTERPRETERS:
        script = next((a for a in cmd[1:] if not a.startswith("-")), None)
        if script and ("/" in script or "." in script) and not os.path.exists(script):
            return f"server script not found: {script}"
    return None


# SIGINT/SIGTERM to the suite: raise only inside a row body (so the row's
# cleanup always runs), otherwise just note it; the driver stops after the row.
STOP = {"armed": False, "hit": False}


def on_stop_signal(signum, frame):
    STOP["hit"] = True
    if STOP["armed"]:
        STOP["armed"] = False
        raise KeyboardInterrupt()


def run_row(suite, rid, fn, bound):
    c = Ctx(suite, rid)
    status, msg = "FAIL", "?"

    def on_alarm(signum, frame):
        raise RowTimeout()
    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, bound)
            STOP["armed"] = not STOP["hit"]
            try:
                if STOP["hit"]:
                    raise KeyboardInterrupt()
                if suite.missing:
                    prereq(False, suite.missing)
                msg = fn(c)
                status = "PASS"
            finally:
                STOP["armed"] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        except Skip as e:
            status, msg = "SKIP", str(e)
        except Fail as e:
            status, msg = "FAIL", str(e)
        except RowTimeout:
            status, msg = "FAIL", f"row exceeded its {bound:g} s bound (while: {c.where})"
        except KeyboardInterrupt:
            status, msg = "FAIL", f"interrupted (while: {c.where})"
        except Exception as e:
            status, msg = "FAIL", f"suite error {type(e).__name__}: {e} (while: {c.where})"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        try:
            killed = c.cleanup()
            if killed:
                c.log(f"cleanup had to SIGKILL {killed}")
        except Exception as e:
            c.log(f"cleanup error: {e}")
    print(f"{status} {suite.lang} {rid}: {oneline(msg, 1500)}", flush=True)
    return status


def main(argv=None):
    ids = [r[0] for r in ROWS]
    ap = argparse.ArgumentParser(
        description="Black-box conformance suite for the daemonkit example servers.",
        epilog="rows: " + ", ".join(ids) + ".  Under CI=true a missing prerequisite "
               "is a FAIL instead of a SKIP.")
    ap.add_argument("--server", required=True,
                    help='command that starts the server, split with shlex, e.g. '
                         '"perl examples/perl/server.pl"')
    ap.add_argument("--lang", required=True, help="expected <lang> in 'hello from <lang> pid N'")
    ap.add_argument("--only", help="comma-separated row ids to run (default: all, in order)")
    ap.add_argument("--verbose", action="store_true", help="trace steps on stderr")
    args = ap.parse_args(argv)
    try:
        cmd = shlex.split(args.server)
    except ValueError as e:
        ap.error(f"--server: {e}")
    rows = ROWS
    if args.only:
        wanted = [x.strip() for x in args.only.split(",") if x.strip()]
        unknown = [x for x in wanted if x not in ids]
        if unknown:
            ap.error(f"unknown row id(s) {', '.join(unknown)}; known: {', '.join(ids)}")
        rows = [r for r in ROWS if r[0] in wanted]
    suite = Suite(cmd, args.lang, args.verbose)
    counts = collections.Counter()
    signal.signal(signal.SIGINT, on_stop_signal)
    signal.signal(signal.SIGTERM, on_stop_signal)
    for rid, fn, bound in rows:
        counts[run_row(suite, rid, fn, bound)] += 1
        if STOP["hit"]:
            break
    line = f"{counts['PASS']} passed, {counts['FAIL']} failed"
    if counts["SKIP"]:
        line += f", {counts['SKIP']} skipped"
    print(line, flush=True)
    if STOP["hit"]:
        return 130
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
