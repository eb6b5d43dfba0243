//! File descriptors and logs: close-on-exec, closing ranges with a keep-list, the registry of
//! the library's private fds, and stdout/stderr redirection to a log file that can be
//! reopened after logrotate.

use crate::sys::{self, Errno, Res, PATH_MAX};
use core::cell::UnsafeCell;
use core::ffi::{c_int, CStr};
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

const SLOTS: usize = 16;

/// Fds the library owns privately (locked PID files, readiness pipes): kept open by
/// daemonize's fd sweep, closed in forked workers. Lock-free so workers can read it after fork.
static PRIVATE: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// Records `fd` as library-private. Async-signal-safe (lock-free atomics only).
pub fn register_private(fd: c_int) {
    for s in &PRIVATE {
        if s.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

/// Forgets `fd`. Async-signal-safe (lock-free atomics only).
pub fn unregister_private(fd: c_int) {
    for s in &PRIVATE {
        let _ = s.compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Copies the private fds into `out`, returning how many. Async-signal-safe.
pub fn private_fds(out: &mut [c_int; SLOTS]) -> usize {
    let mut n = 0;
    for s in &PRIVATE {
        let fd = s.load(Ordering::SeqCst);
        if fd >= 0 {
            out[n] = fd;
            n += 1;
        }
    }
    n
}

/// In a forked worker: closes every private fd (the PID file's among them) and forgets
/// them. Async-signal-safe.
pub fn close_private_in_child() {
    for s in &PRIVATE {
        let fd = s.swap(-1, Ordering::SeqCst);
        sys::close(fd);
    }
}

/// Closes every fd `>= first` except those in `keep` and the library's private fds.
/// Async-signal-safe (no allocation).
pub fn close_range_except(first: c_int, keep: &[c_int]) -> Res<()> {
    if first < 0 || keep.len() > 1024 {
        return Err(Errno(libc::EINVAL));
    }
    let mut all = [-1; 1024 + SLOTS];
    all[..keep.len()].copy_from_slice(keep);
    let mut p = [-1; SLOTS];
    let n = private_fds(&mut p);
    all[keep.len()..keep.len() + n].copy_from_slice(&p[..n]);
    sys::close_from_except(first, &all[..keep.len() + n]);
    Ok(())
}

/// Sets or clears `FD_CLOEXEC`.
pub fn set_cloexec(fd: c_int, on: bool) -> Res<()> {
    if fd < 0 {
        return Err(Errno(libc::EBADF));
    }
    sys::set_cloexec(fd, on)
}

/// Which standard streams a log file replaces.
pub const LOG_STDOUT: u32 = 1;
/// See [`LOG_STDOUT`].
pub const LOG_STDERR: u32 = 2;

struct LogState {
    path: [u8; PATH_MAX],
    len: usize,
    which: u32,
}
struct LogCell(UnsafeCell<LogState>);
// SAFETY: accessed only under LOG_LOCK.
unsafe impl Sync for LogCell {}
static LOG: LogCell = LogCell(UnsafeCell::new(LogState {
    path: [0; PATH_MAX],
    len: 0,
    which: 0,
}));
static LOG_LOCK: AtomicBool = AtomicBool::new(false);
/// Set once a log was opened: read without LOG_LOCK, so [`log_active`] is lock-free and
/// safe in a child forked while another thread held LOG_LOCK (daemonize asks it after fork).
static LOG_SET: AtomicBool = AtomicBool::new(false);

fn with_log<R>(f: impl FnOnce(&mut LogState) -> R) -> R {
    while LOG_LOCK
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    // SAFETY: LOG_LOCK is held, so this is the only reference.
    let r = f(unsafe { &mut *LOG.0.get() });
    LOG_LOCK.store(false, Ordering::Release);
    r
}

/// In a freshly forked child: releases the log lock, which a thread of the parent may have
/// held at the fork (that thread does not exist in the child, so `dk_log_reopen` there would
/// spin forever). Async-signal-safe (one atomic store).
pub fn reset_log_lock_in_child() {
    LOG_LOCK.store(false, Ordering::Release);
}

fn open_log(path: &CStr) -> Res<c_int> {
    sys::retry(|| {
        // SAFETY: path is a valid C string.
        unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOCTTY,
                0o640 as libc::c_uint,
            )
        }
    })
}

fn dup_onto(fd: c_int, which: u32) -> Res<()> {
    for (bit, target) in [(LOG_STDOUT, 1), (LOG_STDERR, 2)] {
        if which & bit != 0 {
            // SAFETY: dup2 of our fd onto a standard stream; atomic replacement, so a write
            // from another thread lands in either the old or the new file, never nowhere.
            sys::retry(|| unsafe { libc::dup2(fd, target) })?;
        }
    }
    Ok(())
}

/// Opens `path` for appending (created 0640) and puts it on stdout and/or stderr (`which`,
/// default both). The path is remembered for [`log_reopen`].
pub fn log_open(path: &CStr, which: u32) -> Res<()> {
    let which = if which == 0 {
        LOG_STDOUT | LOG_STDERR
    } else {
        which
    };
    if which & !(LOG_STDOUT | LOG_STDERR) != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let b = path.to_bytes();
    if b.is_empty() {
        return Err(Errno(libc::ENOENT));
    }
    if b.len() >= PATH_MAX {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    let mut abs = [0u8; PATH_MAX];
    let n = sys::absolutize(b, &mut abs)?;
    match open_log(path) {
        Ok(fd) => {
            let r = dup_onto(fd, which);
            sys::close(fd);
            r?;
        }
        // A re-exec'd image or a new generation that already dropped privileges cannot open
        // a log root created; it inherited it on stdout/stderr, so keep that one.
        Err(e) if (e.0 == libc::EACCES || e.0 == libc::EPERM) && already_on_std(path, which) => {}
        Err(e) => return Err(e),
    }
    with_log(|s| {
        s.path[..n].copy_from_slice(&abs[..n]);
        s.len = n;
        s.which = which;
    });
    LOG_SET.store(true, Ordering::SeqCst);
    Ok(())
}

/// True when the standard streams in `which` already write to the file at `path`.
fn already_on_std(path: &CStr, which: u32) -> bool {
    let Ok(want) = sys::stat(path) else {
        return false;
    };
    [(LOG_STDOUT, 1), (LOG_STDERR, 2)]
        .iter()
        .filter(|(bit, _)| which & bit != 0)
        .all(|&(_, fd)| {
            matches!(sys::fstat(fd), Ok(st) if st.st_dev == want.st_dev && st.st_ino == want.st_ino)
        })
}

/// Reopens the remembered log path (after logrotate renamed it) and moves stdout/stderr onto
/// the new file with `dup2`, so no line written meanwhile is lost. `ENOENT`... `EBADF` when
/// no log was opened.
pub fn log_reopen() -> Res<()> {
    let mut buf = [0u8; PATH_MAX + 1];
    let (len, which) = with_log(|s| {
        buf[..s.len].copy_from_slice(&s.path[..s.len]);
        (s.len, s.which)
    });
    if len == 0 {
        return Err(Errno(libc::EBADF));
    }
    let p = CStr::from_bytes_with_nul(&buf[..=len]).map_err(|_| Errno(libc::EINVAL))?;
    let fd = open_log(p)?;
    let r = dup_onto(fd, which);
    sys::close(fd);
    r
}

/// True when a log file was opened with [`log_open`]. Async-signal-safe (one atomic load,
/// no lock), so the daemon may ask it between `fork` and its return.
pub fn log_active() -> bool {
    LOG_SET.load(Ordering::SeqCst)
}
