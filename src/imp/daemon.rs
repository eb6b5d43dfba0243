//! Daemonize with readiness (daemon(7)), and the process's readiness channel.
//!
//! [`daemonize`] closes inherited fds (except those kept and the library's own), resets signal
//! dispositions and the mask, forks, `setsid`s, forks again, points stdio at `/dev/null`
//! (stdout/stderr stay on a log opened with [`crate::imp::fds::log_open`]), sets the umask and
//! changes directory. The launching process stays behind on a readiness pipe: it exits 0 when
//! the daemon calls [`ready`], prints the message and exits with the code given to [`fail`],
//! and exits non-zero with an explanation when the daemon dies first or a timeout expires.
//!
//! The same channel serves three other roles, chosen from the environment or by the
//! supervisor: a foreground process (`ready` sends `READY=1` to `$NOTIFY_SOCKET`), a program
//! image started by a re-exec (`DAEMONKIT_REEXEC=1`: no fork, the same pid), a new generation
//! started by an upgrade (`DAEMONKIT_READY_FD`: `ready` tells the old master), and a worker
//! (`ready` tells its master).
//!
//! Wire format on the pipe: `'p'` + 4-byte pid (the daemon's pid, from the intermediate
//! child), `'r'` (ready), or `'f'` + code byte + 2-byte length + message.

use crate::imp::fds;
use crate::imp::fork;
use crate::imp::signals;
use crate::sys::{self, Errno, Res};
use core::ffi::{c_int, CStr};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

/// Stay in the foreground: everything but the forks and the stdio redirection.
pub const FOREGROUND: u32 = 1;
/// Leave stdin/stdout/stderr as they are.
pub const KEEP_STDIO: u32 = 2;
/// Do not close inherited fds.
pub const NO_CLOSE_FDS: u32 = 4;
/// Do not change directory.
pub const NO_CHDIR: u32 = 8;
/// Do not reset signal dispositions and the mask.
pub const NO_SIGNAL_RESET: u32 = 16;
/// Every daemonize flag.
pub const ALL_FLAGS: u32 = FOREGROUND | KEEP_STDIO | NO_CLOSE_FDS | NO_CHDIR | NO_SIGNAL_RESET;

/// Longest failure message carried to the launcher.
pub const MAX_MESSAGE: usize = 1024;

/// Env variable: a new generation's readiness fd (set by an upgrade).
pub const ENV_READY_FD: &CStr = c"DAEMONKIT_READY_FD";
/// Env variable: this image was started by a re-exec of the same process.
pub const ENV_REEXEC: &CStr = c"DAEMONKIT_REEXEC";

/// What this process is, for [`crate::daemon::ready`] and [`crate::daemon::fail`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Role {
    /// Never daemonized: `ready` only notifies systemd.
    Plain = 0,
    /// Forked daemon with a launcher waiting on the pipe.
    Daemon = 1,
    /// Foreground (`FOREGROUND`), or a re-exec'd image.
    Foreground = 2,
    /// A new generation started by an upgrade; the old master waits on the pipe.
    Upgrade = 3,
    /// A supervised worker; its master waits on the pipe.
    Worker = 4,
}

static ROLE: AtomicU8 = AtomicU8::new(Role::Plain as u8);
static READY_FD: AtomicI32 = AtomicI32::new(-1);
static READY_SENT: AtomicBool = AtomicBool::new(false);

/// True once [`ready`] was called in this process.
pub fn ready_sent() -> bool {
    READY_SENT.load(Ordering::SeqCst)
}

/// The current role.
pub fn role() -> Role {
    match ROLE.load(Ordering::SeqCst) {
        1 => Role::Daemon,
        2 => Role::Foreground,
        3 => Role::Upgrade,
        4 => Role::Worker,
        _ => Role::Plain,
    }
}

/// Sets the readiness channel (the supervisor uses it in workers). Async-signal-safe.
pub fn set_channel(role: Role, fd: c_int) {
    let old = READY_FD.swap(fd, Ordering::SeqCst);
    if old >= 0 && old != fd {
        fds::unregister_private(old);
        sys::close(old);
    }
    if fd >= 0 {
        fds::register_private(fd);
    }
    READY_SENT.store(false, Ordering::SeqCst);
    ROLE.store(role as u8, Ordering::SeqCst);
}

/// Options for [`daemonize`].
pub struct Options<'a> {
    pub flags: u32,
    /// Fds to keep open (listeners); the library's own (PID file) are kept anyway.
    pub keep: &'a [c_int],
    /// Directory to change to (`None`: `/`), unless `NO_CHDIR`.
    pub chdir: Option<&'a CStr>,
    /// New umask (0..=0o777; above: `EINVAL`), or negative to leave it.
    pub umask: i32,
    /// Launcher timeout in ms; 0 waits as long as the daemon lives.
    pub timeout_ms: u32,
}

/// Daemonizes. Returns in the daemon (or, in foreground / re-exec / upgrade roles, in the
/// calling process); the launcher never returns (it exits with the daemon's verdict).
/// Errors: `EINVAL` unknown flags, `EBADF` a kept fd that is not open, fork/setsid/open errors
/// (before the fork they are returned to the caller in the launcher; after it, in the daemon,
/// which should pass them on with [`fail`]).
pub fn daemonize(o: &Options) -> Res<Role> {
    if o.flags & !ALL_FLAGS != 0 || o.keep.len() > 1024 || o.umask > 0o777 {
        return Err(Errno(libc::EINVAL));
    }
    for &fd in o.keep {
        if !sys::fd_valid(fd) {
            return Err(Errno(libc::EBADF));
        }
    }
    if let Some(d) = o.chdir {
        if d.to_bytes().is_empty() {
            return Err(Errno(libc::ENOENT));
        }
    }

    // A program image started by an upgrade or a re-exec: same process tree, no fork.
    let inherited_ready = sys::getenv(ENV_READY_FD)
        .and_then(sys::parse_u64)
        .map(|v| v as c_int);
    let reexec = sys::getenv(ENV_REEXEC).is_some();
    sys::unsetenv(ENV_READY_FD);
    sys::unsetenv(ENV_REEXEC);
    if let Some(fd) = inherited_ready.filter(|&fd| sys::fd_valid(fd)) {
        sys::set_cloexec(fd, true)?;
        set_channel(Role::Upgrade, fd);
        common_steps(o, false)?;
        return Ok(Role::Upgrade);
    }
    if reexec || o.flags & FOREGROUND != 0 {
        set_channel(Role::Foreground, -1);
        common_steps(o, false)?;
        return Ok(Role::Foreground);
    }

    // What would fail after the fork is checked now, so that the caller (the launcher, still
    // on the terminal) gets the error: /dev/null missing (a chroot without /dev), and a
    // directory that is not there.
    preflight(o)?;
    let [r, w] = sys::pipe_cloexec(false)?;
    // Become the subreaper of the daemon-to-be, to learn its exit status if it dies before
    // it is ready; undone if the fork fails.
    // SAFETY: prctl with plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // The daemon-to-be only runs async-signal-safe code until it returns to the caller as
    // the daemon (single-threaded callers, as daemon(7) requires).
    let pid = match fork::detach(w) {
        Ok(pid) => pid,
        Err(e) => {
            // SAFETY: prctl with plain integer arguments.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
            sys::close(r);
            sys::close(w);
            return Err(e);
        }
    };
    if pid > 0 {
        sys::close(w);
        launcher_wait(r, pid, o.timeout_ms);
    }
    sys::close(r);
    // The daemon.
    fds::reset_log_lock_in_child();
    set_channel(Role::Daemon, w);
    common_steps(o, o.flags & KEEP_STDIO == 0)?;
    Ok(Role::Daemon)
}

/// Checks, before any fork, that `/dev/null` opens (when stdio is redirected) and that the
/// directory to change to is one: `ENOENT`/`EACCES`/`ENOTDIR` otherwise.
fn preflight(o: &Options) -> Res<()> {
    if o.flags & KEEP_STDIO == 0 {
        // SAFETY: opening /dev/null (close-on-exec), closed at once.
        let null = sys::retry(|| unsafe {
            libc::open(
                c"/dev/null".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        })?;
        sys::close(null);
    }
    if o.flags & NO_CHDIR == 0 {
        let dir = o.chdir.unwrap_or(c"/");
        let st = sys::stat(dir)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(Errno(libc::ENOTDIR));
        }
    }
    Ok(())
}

/// The steps shared by every role: close fds, reset signals, stdio, umask, chdir.
/// Async-signal-safe (close_range/close, sigaction, sigprocmask, open, dup2, umask, chdir,
/// atomics): in the daemon it runs between the fork and the return to the caller.
fn common_steps(o: &Options, stdio_to_null: bool) -> Res<()> {
    if o.flags & NO_CLOSE_FDS == 0 {
        fds::close_range_except(3, o.keep)?;
    }
    if o.flags & NO_SIGNAL_RESET == 0 {
        signals::reset_child();
    }
    if stdio_to_null {
        // SAFETY: opening /dev/null; errors (a chroot without it) are returned.
        let null = sys::retry(|| unsafe {
            libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_NOCTTY)
        })?;
        let log = fds::log_active();
        for target in 0..3 {
            if target > 0 && log {
                continue; // stdout/stderr already go to the log file
            }
            // SAFETY: dup2 onto a standard stream.
            sys::retry(|| unsafe { libc::dup2(null, target) })?;
        }
        if null > 2 {
            sys::close(null);
        }
    }
    if o.umask >= 0 {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(o.umask as libc::mode_t) };
    }
    if o.flags & NO_CHDIR == 0 {
        let dir = o.chdir.unwrap_or(c"/");
        // SAFETY: dir is a valid C string.
        sys::cvt(unsafe { libc::chdir(dir.as_ptr()) })?;
    }
    Ok(())
}

/// Writes one record to a readiness pipe. Async-signal-safe (stack buffer, write(2)): the
/// intermediate child uses it after fork.
pub(crate) fn report(fd: c_int, kind: u8, code: u8, msg: &[u8]) {
    let msg = &msg[..msg.len().min(MAX_MESSAGE)];
    let mut rec = [0u8; 4 + MAX_MESSAGE];
    rec[0] = kind;
    rec[1] = code;
    rec[2..4].copy_from_slice(&(msg.len() as u16).to_le_bytes());
    rec[4..4 + msg.len()].copy_from_slice(msg);
    let n = if kind == b'f' { 4 + msg.len() } else { 1 };
    let _ = sys::write_all(fd, &rec[..n]);
}

/// The `'p'` record: the daemon's pid, from the intermediate child. Async-signal-safe.
pub(crate) fn report_pid(fd: c_int, pid: libc::pid_t) {
    let mut rec = [b'p', 0, 0, 0, 0];
    rec[1..].copy_from_slice(&pid.to_le_bytes());
    let _ = sys::write_all(fd, &rec);
}

fn stderr(parts: &[&[u8]]) {
    for p in parts {
        let _ = sys::write_all(2, p);
    }
}

/// One record at the start of a readiness pipe's bytes — the one decoder of the readiness
/// protocol, used by the launcher, the upgrade and the supervisor. Records: `'r'` ready;
/// `'f' code len_lo len_hi message` failed; `'p' pid_le32` (the daemon's pid, from the
/// intermediate child of daemonize).
pub(crate) enum Record<'a> {
    Ready,
    Failed {
        code: u8,
        msg: &'a [u8],
    },
    Pid(i32),
    /// The start of a record: read more.
    Incomplete,
    /// Not a record: a broken channel.
    Garbage,
}

/// Decodes the record at the start of `buf` (see [`Record`]); a failure's message is at
/// most `MAX_MESSAGE` bytes. Allocation-free.
pub(crate) fn decode(buf: &[u8]) -> Record<'_> {
    match buf.first() {
        None => Record::Incomplete,
        Some(b'r') => Record::Ready,
        Some(b'p') if buf.len() >= 5 => {
            Record::Pid(i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]))
        }
        Some(b'f') if buf.len() >= 4 => {
            let len = (u16::from_le_bytes([buf[2], buf[3]]) as usize).min(MAX_MESSAGE);
            if buf.len() >= 4 + len {
                Record::Failed {
                    code: buf[1],
                    msg: &buf[4..4 + len],
                }
            } else {
                Record::Incomplete
            }
        }
        Some(b'p') | Some(b'f') => Record::Incomplete,
        Some(_) => Record::Garbage,
    }
}

/// What a readiness pipe said.
pub enum Verdict {
    Ready,
    Failed {
        code: u8,
        len: usize,
    },
    /// EOF without a verdict.
    Closed,
    TimedOut,
}

/// Reads a readiness pipe until a verdict, EOF or the deadline. `daemon_pid` receives a
/// `'p'` record's pid; `msg` a failure message.
pub fn read_verdict(
    fd: c_int,
    timeout_ms: u32,
    daemon_pid: &mut i32,
    msg: &mut [u8; MAX_MESSAGE],
) -> Verdict {
    let deadline = if timeout_ms > 0 {
        Some(sys::now_ms() + timeout_ms as u64)
    } else {
        None
    };
    let mut buf = [0u8; 4 + MAX_MESSAGE + 8];
    let mut have = 0usize;
    loop {
        // Parse what we have.
        loop {
            match decode(&buf[..have]) {
                Record::Pid(pid) => {
                    *daemon_pid = pid;
                    buf.copy_within(5..have, 0);
                    have -= 5;
                }
                Record::Ready => return Verdict::Ready,
                Record::Failed { code, msg: m } => {
                    msg[..m.len()].copy_from_slice(m);
                    return Verdict::Failed { code, len: m.len() };
                }
                Record::Incomplete => break,
                Record::Garbage => return Verdict::Closed, // a broken channel
            }
        }
        let left = match deadline {
            None => -1,
            Some(d) => {
                let now = sys::now_ms();
                if now >= d {
                    return Verdict::TimedOut;
                }
                (d - now) as i64
            }
        };
        match sys::poll_one(fd, libc::POLLIN, left) {
            Ok(0) => return Verdict::TimedOut,
            Ok(_) => {}
            Err(_) => return Verdict::Closed,
        }
        if have == buf.len() {
            return Verdict::Closed;
        }
        // SAFETY: reading into the free tail of buf.
        let n = unsafe { libc::read(fd, buf[have..].as_mut_ptr().cast(), buf.len() - have) };
        if n < 0 && sys::get_errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return Verdict::Closed;
        }
        have += n as usize;
    }
}

/// The launcher's side: wait for the verdict and exit with it. Never returns.
fn launcher_wait(r: c_int, intermediate: i32, timeout_ms: u32) -> ! {
    let mut daemon_pid = 0;
    let mut msg = [0u8; MAX_MESSAGE];
    let verdict = read_verdict(r, timeout_ms, &mut daemon_pid, &mut msg);
    let mut status = 0;
    // Reaping our own intermediate child (it exits right after the second fork); EINTR
    // retried, or a handler without SA_RESTART leaves it to our parent as a zombie.
    let _ = sys::waitpid(intermediate, &mut status, 0);
    let code = match verdict {
        Verdict::Ready => 0,
        Verdict::Failed { code, len } => {
            stderr(&[&msg[..len], b"\n"]);
            if code == 0 {
                1
            } else {
                code as c_int
            }
        }
        Verdict::TimedOut => {
            let mut b = sys::Buf::<160>::new();
            b.push(b"daemonkit: daemon");
            if daemon_pid > 0 {
                b.push(b" (pid ").push_u64(daemon_pid as u64).push(b")");
                let _ = signals::send(daemon_pid, libc::SIGKILL);
            }
            b.push(b" not ready after ")
                .push_u64(timeout_ms as u64)
                .push(b" ms; killed\n");
            stderr(&[b.as_bytes()]);
            1
        }
        Verdict::Closed => {
            // We are the daemon's subreaper: learn how it ended.
            let mut b = sys::Buf::<200>::new();
            b.push(b"daemonkit: daemon");
            let mut code = 1;
            if daemon_pid > 0 {
                b.push(b" (pid ").push_u64(daemon_pid as u64).push(b")");
                let mut st = 0;
                let mut got = 0;
                for _ in 0..100 {
                    // SAFETY: waiting for our adopted child, non-blocking.
                    got = unsafe { libc::waitpid(daemon_pid, &mut st, libc::WNOHANG) };
                    if got != 0 {
                        break;
                    }
                    sys::sleep_ms(10);
                }
                if got == daemon_pid && libc::WIFEXITED(st) {
                    b.push(b" exited with status ")
                        .push_u64(libc::WEXITSTATUS(st) as u64);
                    code = libc::WEXITSTATUS(st).max(1);
                } else if got == daemon_pid && libc::WIFSIGNALED(st) {
                    b.push(b" was killed by signal ")
                        .push_u64(libc::WTERMSIG(st) as u64);
                    code = 128 + libc::WTERMSIG(st);
                } else {
                    b.push(b" closed its readiness channel");
                }
            } else {
                b.push(b" exited");
            }
            b.push(b" before it was ready\n");
            stderr(&[b.as_bytes()]);
            code
        }
    };
    // SAFETY: the launcher leaves without running the caller's atexit handlers or
    // destructors (they belong to the daemon now).
    unsafe { libc::_exit(code) }
}

/// Reports readiness: to the launcher (daemon), the old master (upgrade), the master
/// (worker); and, except in a worker, `\n` to s6's readiness fd when one was set
/// ([`crate::imp::notify::set_ready_fd`]) and `READY=1` to `$NOTIFY_SOCKET` when set (with
/// `MAINPID` for a new generation). Calling it again only re-notifies.
pub fn ready() -> Res<()> {
    let role = role();
    READY_SENT.store(true, Ordering::SeqCst);
    let fd = READY_FD.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        report(fd, b'r', 0, b"");
        fds::unregister_private(fd);
        sys::close(fd);
    }
    if role != Role::Worker {
        crate::imp::notify::ready_fd_write();
        let r = if role == Role::Upgrade {
            let mut b = sys::Buf::<64>::new();
            b.push(b"MAINPID=")
                .push_u64(sys::getpid() as u64)
                .push(b"\nREADY=1");
            crate::imp::notify::notify(b.as_bytes())
        } else {
            crate::imp::notify::ready()
        };
        r?;
    }
    Ok(())
}

/// Reports a startup failure with an exit code (1..=255; 0 becomes 1) and a message: the
/// launcher (or old master, or master) prints it and exits with the code. In the foreground
/// and in a worker the message also goes to stderr. The caller should exit afterwards.
pub fn fail(code: c_int, msg: &[u8]) -> Res<()> {
    let code = if (1..=255).contains(&code) {
        code as u8
    } else {
        1
    };
    let role = role();
    let fd = READY_FD.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        report(fd, b'f', code, msg);
        fds::unregister_private(fd);
        sys::close(fd);
    }
    if fd < 0 || role == Role::Worker {
        stderr(&[msg, b"\n"]);
    }
    if role != Role::Worker {
        let mut b = sys::Buf::<{ MAX_MESSAGE + 16 }>::new();
        b.push(b"STATUS=").push(&msg[..msg.len().min(MAX_MESSAGE)]);
        let _ = crate::imp::notify::notify(b.as_bytes());
    }
    Ok(())
}
