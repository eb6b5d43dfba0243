//! C ABI: PID files (`dk_pidfile_*`), over [`crate::imp::pidfile`].

use super::{free_handle, new_handle, path_arg, ret};
use crate::imp::pidfile::{self, OpenError, PidFile, State};
use crate::sys::Errno;
use core::ffi::{c_char, c_int};

/// An open, locked PID file (opaque). Created by `dk_pidfile_open`, released by
/// `dk_pidfile_close` or `dk_pidfile_remove`.
pub struct dk_pidfile {
    inner: PidFile,
}

/// `dk_pidfile_check`: a live process holds the lock.
pub const DK_PIDFILE_RUNNING: c_int = 1;
/// `dk_pidfile_check`: the file exists but nobody holds its lock (stale).
pub const DK_PIDFILE_STALE: c_int = 0;
/// `dk_pidfile_check`: the file is locked, but not by the process whose pid it holds (a stale
/// file whose lock another process took). That pid is never signalled.
pub const DK_PIDFILE_FOREIGN: c_int = 2;
/// `dk_pidfile_open`/`dk_pidfile_kill`: the file is locked by a process other than the pid
/// written in it (`-EBUSY`); nobody was signalled or reported as running.
pub const DK_ERR_PIDFILE_FOREIGN: c_int = -16;

/// Opens and locks the PID file at `path` before the fork (BSD pidfile(3) semantics,
/// hardened): `O_RDWR|O_CREAT|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`, `flock(LOCK_EX|LOCK_NB)` held
/// for the handle's life, regular files only, the path re-checked after locking. Stale
/// content is truncated; write the pid with `dk_pidfile_write` after daemonizing. `mode` is
/// the file mode (0: 0644; bits above 07777 are refused with `-EINVAL`). `flags` must be 0. A relative path is made absolute first (the
/// daemon later changes directory). After a re-exec or upgrade, the locked fd handed over in
/// `DAEMONKIT_PIDFILE_FD` is adopted instead of opening anew.
///
/// On success stores the handle in `*out` and returns 0. Errors:
/// - `-EEXIST`: a live instance holds the lock; its pid is stored in `*other_pid` (when not
///   NULL; 0 if it has not written one within a second). The pid is the holder's as proven by
///   the kernel (see `dk_pidfile_check`), except when that process's fds may not be inspected
///   (another user's daemon, as non-root): then it is the pid the file names.
/// - `DK_ERR_PIDFILE_FOREIGN` (-EBUSY): the file is locked, but not by the pid written in it
///   (stored in `*other_pid`): another process took a stale file's lock. Say so; do not claim
///   that pid is running.
/// - `-ELOOP`: the path is a symlink. `-EINVAL`: not a regular file (FIFO, socket, device),
///   or NULL `path`/`out`, unknown flags, or `mode` above 07777. `-EISDIR`, `-ENAMETOOLONG`, `-EACCES`,
///   `-ENOENT` (directory missing), `-ENOMEM`, or another errno from open/flock/ftruncate.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_open(
    path: *const c_char,
    mode: u32,
    flags: u32,
    out: *mut *mut dk_pidfile,
    other_pid: *mut i32,
) -> c_int {
    if out.is_null() || flags != 0 {
        return -libc::EINVAL;
    }
    // SAFETY: out is non-NULL; initialize it for every path.
    unsafe { *out = core::ptr::null_mut() };
    // SAFETY: other_pid is NULL or a writable out-pointer (the header's contract).
    unsafe { super::put(other_pid, 0) };
    // SAFETY: path_ is NULL or a C string per the C contract.
    let p = match unsafe { path_arg(path) } {
        Ok(p) => p,
        Err(e) => return e.to_c(),
    };
    match PidFile::open(p, mode) {
        Ok(inner) => match new_handle(dk_pidfile { inner }) {
            Some(h) => {
                // SAFETY: out is a valid out-pointer.
                unsafe { *out = h };
                0
            }
            None => -libc::ENOMEM,
        },
        Err(OpenError { errno, pid }) => {
            // SAFETY: other_pid is NULL or a writable out-pointer (the header's contract).
            unsafe { super::put(other_pid, pid) };
            errno.to_c()
        }
    }
}

/// Writes this process's pid to the PID file (truncate, pid, newline). Call it in the daemon,
/// after `dk_daemonize`. Errors: `-EINVAL` NULL handle; `-ENOSPC`/`-EIO` etc. from the write.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_write(pf: *mut dk_pidfile) -> c_int {
    // SAFETY: pf is NULL or a live handle from dk_pidfile_open.
    unsafe { super::with_handle(pf, |h| ret(h.inner.write())) }
}

/// Returns the PID file's locked fd (close-on-exec; keep it in `dk_daemonize`'s keep-list
/// is not needed — the library keeps its own fds), `-EBADF` once the handle let go of the
/// file (after a completed upgrade), or `-EINVAL` for a NULL handle.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_fd(pf: *const dk_pidfile) -> c_int {
    // SAFETY: pf is NULL or a live handle.
    match unsafe { pf.as_ref() } {
        Some(h) if h.inner.fd() >= 0 => h.inner.fd(),
        Some(_) => -libc::EBADF,
        None => -libc::EINVAL,
    }
}

/// Closes this process's reference and frees the handle without removing the file (in a
/// forked child; the daemon's lock stays held). NULL is accepted (no-op). Returns 0.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_close(pf: *mut dk_pidfile) -> c_int {
    if !pf.is_null() {
        // SAFETY: pf is a live handle from dk_pidfile_open, freed exactly once here.
        unsafe { free_handle(pf) }.inner.close();
    }
    0
}

/// Unlinks the PID file if this process owns it (wrote its pid and the file still holds
/// it), then closes and frees the handle in every case. Returns 0 when unlinked; `-EPERM`
/// when not the owner (nothing unlinked: a forked child, or an old master whose successor
/// rewrote the file); `-EACCES` when the directory is not writable (after a privilege drop:
/// the file left behind is harmless, its lock is free); `-EINVAL` for NULL.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_remove(pf: *mut dk_pidfile) -> c_int {
    if pf.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: pf is a live handle, freed exactly once here.
    ret(unsafe { free_handle(pf) }.inner.remove())
}

/// Tells whether a daemon holds the PID file at `path`, from its lock (never from
/// `kill(pid, 0)`), and whether the pid written in the file is the lock's holder: a lock only
/// proves that *some* process holds it, and any user who can read a stale file can lock it.
/// The proof comes from the kernel: one of that pid's fds (`/proc/PID/fd/N`) names the file
/// and its open file description holds the exclusive flock (a `lock:` line in
/// `/proc/PID/fdinfo/N`). (The pid column of `/proc/locks` names the process that took the
/// lock — for a daemon that locked before forking, the launcher — so it is not used.)
///
/// Returns `DK_PIDFILE_RUNNING` (1) with the holder's pid in `*pid_out` (0 if it has not
/// written one), `DK_PIDFILE_STALE` (0) when the file exists but its lock is free (`*pid_out` =
/// the stale pid, or 0 for unreadable content), `DK_PIDFILE_FOREIGN` (2) when the lock is held
/// by a process other than the pid in the file (`*pid_out` = that pid, which must not be
/// signalled), or `-ENOENT` when there is no file. Other errors: `-EINVAL` (NULL path, not a
/// regular file), `-ELOOP` (symlink), `-ENAMETOOLONG`, `-EACCES` (the file is unreadable, or
/// it is locked and the pid's `/proc` entries are not readable: another user's process, as
/// non-root — nothing can be said about that pid). `pid_out` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_check(path: *const c_char, pid_out: *mut i32) -> c_int {
    // SAFETY: pid_out is NULL or a writable out-pointer (the header's contract).
    unsafe { super::put(pid_out, 0) };
    // SAFETY: path_ is NULL or a C string.
    let p = match unsafe { path_arg(path) } {
        Ok(p) => p,
        Err(e) => return e.to_c(),
    };
    let (r, pid) = match pidfile::check(p) {
        Ok(State::Running(pid)) => (DK_PIDFILE_RUNNING, pid),
        Ok(State::Stale(pid)) => (DK_PIDFILE_STALE, pid.unwrap_or(0)),
        Ok(State::Foreign(pid)) => (DK_PIDFILE_FOREIGN, pid),
        Ok(State::Absent) => (-libc::ENOENT, 0),
        Err(e) => (e.to_c(), 0),
    };
    // SAFETY: pid_out is NULL or a writable out-pointer (the header's contract).
    unsafe { super::put(pid_out, pid) };
    r
}

/// Sends `sig` (0..64; 0 only probes) to the process holding the PID file at `path`, only
/// while it provably holds the lock: the target is pinned with a pidfd, the kernel is asked
/// whether that very process holds the lock through one of its fds (as `dk_pidfile_check`
/// describes) and the content is read again, so neither a recycled pid nor a pid named in a
/// file whose lock somebody else took is ever signalled. Stores the pid in `*pid_out` (may be
/// NULL; with `DK_ERR_PIDFILE_FOREIGN` the pid the file names, not signalled) and returns 0. Errors: `-ESRCH` nobody holds the lock (stale file: nobody is
/// signalled); `DK_ERR_PIDFILE_FOREIGN` (-EBUSY) the lock is held by a process other than the
/// pid in the file (nobody signalled); `-ENOENT` no file; `-EAGAIN` the holder has not written
/// its pid; `-EINVAL` NULL path, bad signal, not a regular file; `-EACCES` the holder cannot
/// be verified (another user's process, as non-root: nobody signalled); `-EPERM` not allowed
/// to signal.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_kill(
    path: *const c_char,
    sig: c_int,
    pid_out: *mut i32,
) -> c_int {
    // SAFETY: pid_out is NULL or a writable out-pointer (the header's contract).
    unsafe { super::put(pid_out, 0) };
    // SAFETY: path_ is NULL or a C string.
    let p = match unsafe { path_arg(path) } {
        Ok(p) => p,
        Err(e) => return e.to_c(),
    };
    let (r, pid) = match pidfile::kill(p, sig) {
        Ok(pid) => (0, pid),
        Err(e @ Errno(pidfile::ERR_FOREIGN)) => match pidfile::check(p) {
            Ok(State::Foreign(pid)) => (e.to_c(), pid),
            _ => (e.to_c(), 0),
        },
        Err(e) => (e.to_c(), 0),
    };
    // SAFETY: pid_out is NULL or a writable out-pointer (the header's contract).
    unsafe { super::put(pid_out, pid) };
    r
}

/// The fd of a handle (for the other C ABI files).
pub(crate) fn pidfile_fd_of(h: &dk_pidfile) -> c_int {
    h.inner.fd()
}

/// The core PID file of a handle (for the other C ABI files).
pub(crate) fn pidfile_core(h: &mut dk_pidfile) -> &mut PidFile {
    &mut h.inner
}

#[cfg(test)]
mod tests {
    use crate::capi::*;
    use core::ffi::c_int;
    #[test]
    fn error_constants_match_libc() {
        assert_eq!(
            DK_ERR_UNKNOWN_USER,
            -crate::imp::privileges::ERR_UNKNOWN_USER
        );
        assert_eq!(
            DK_ERR_UNKNOWN_GROUP,
            -crate::imp::privileges::ERR_UNKNOWN_GROUP
        );
        assert_eq!(DK_ERR_NOT_ROOT, -crate::imp::privileges::ERR_NOT_ROOT);
        assert_eq!(DK_ERR_VERIFY, -crate::imp::privileges::ERR_VERIFY);
        assert_eq!(DK_ERR_PIDFILE_FOREIGN, -crate::imp::pidfile::ERR_FOREIGN);
        assert_eq!(DK_SIGNAL_NO_RESTART, crate::imp::signals::NO_RESTART);
        assert_eq!(DK_RLIMIT_CORE, libc::RLIMIT_CORE as c_int);
        assert_eq!(DK_RLIMIT_NPROC, libc::RLIMIT_NPROC as c_int);
        assert_eq!(DK_RLIMIT_NOFILE, libc::RLIMIT_NOFILE as c_int);
        assert_eq!(DK_RLIMIT_AS, libc::RLIMIT_AS as c_int);
    }
}
