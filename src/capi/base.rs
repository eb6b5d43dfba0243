//! C ABI: PID files, privileges, resource limits, fds and logs, signals.

use super::{free_handle, int_slice, new_handle, path_arg, ret};
use crate::pidfile::{self, OpenError, PidFile, State};
use crate::sys::{self, Errno};
use crate::{fds, privileges, rlimit, signals};
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
    if !other_pid.is_null() {
        // SAFETY: non-NULL out-pointer supplied by the caller.
        unsafe { *other_pid = 0 };
    }
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
            if !other_pid.is_null() {
                // SAFETY: non-NULL out-pointer.
                unsafe { *other_pid = pid };
            }
            errno.to_c()
        }
    }
}

/// Writes this process's pid to the PID file (truncate, pid, newline). Call it in the daemon,
/// after `dk_daemonize`. Errors: `-EINVAL` NULL handle; `-ENOSPC`/`-EIO` etc. from the write.
#[no_mangle]
pub unsafe extern "C" fn dk_pidfile_write(pf: *mut dk_pidfile) -> c_int {
    // SAFETY: pf is NULL or a live handle from dk_pidfile_open.
    match unsafe { pf.as_mut() } {
        Some(h) => ret(h.inner.write()),
        None => -libc::EINVAL,
    }
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
    if !pid_out.is_null() {
        // SAFETY: non-NULL out-pointer.
        unsafe { *pid_out = 0 };
    }
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
    if !pid_out.is_null() {
        // SAFETY: non-NULL out-pointer.
        unsafe { *pid_out = pid };
    }
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
    if !pid_out.is_null() {
        // SAFETY: non-NULL out-pointer.
        unsafe { *pid_out = 0 };
    }
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
    if !pid_out.is_null() {
        // SAFETY: non-NULL out-pointer.
        unsafe { *pid_out = pid };
    }
    r
}

/// `dk_privileges_drop`: the user does not exist (`-ESRCH`).
pub const DK_ERR_UNKNOWN_USER: c_int = -3;
/// `dk_privileges_drop`: the group does not exist (`-ENOENT`).
pub const DK_ERR_UNKNOWN_GROUP: c_int = -2;
/// `dk_privileges_drop`: not running as root (`-EPERM`).
pub const DK_ERR_NOT_ROOT: c_int = -1;
/// `dk_privileges_drop`: ids changed but verification failed — exit at once
/// (`-ENOTRECOVERABLE`).
pub const DK_ERR_VERIFY: c_int = -131;

/// Drops root privileges for good: resolves `user` (name or number) and `group` (name or
/// number; NULL: the user's primary group), then `setgroups` to the user's supplementary
/// groups (as initgroups), `setresgid`, `setresuid`, in that order, and verifies that the
/// real, effective and saved ids are all the target, that the supplementary groups are
/// exactly the target's, and that `setuid(0)` fails. `flags` must be 0.
///
/// Returns 0 (also when already running exactly as the target without root). Errors:
/// `DK_ERR_UNKNOWN_USER` (-ESRCH), `DK_ERR_UNKNOWN_GROUP` (-ENOENT), `DK_ERR_NOT_ROOT`
/// (-EPERM) — in these cases nothing was changed; a failing set*id call returns its errno
/// after the old groups and gid are restored; `DK_ERR_VERIFY` (-ENOTRECOVERABLE) means the
/// switch happened but did not verify: the caller must exit. `-EINVAL` for NULL `user` or
/// unknown flags, `-ENAMETOOLONG` for a name over 255 bytes.
///
/// Refused without changing anything: a malformed `user` or `group` (`-EINVAL`: empty of
/// content, whitespace or control characters anywhere — `" nobody"` is not `nobody` and not
/// a number —, a `:` or `,`, or a leading `-`/`+`); a numeric uid that has no passwd entry
/// when `group` is NULL (`DK_ERR_UNKNOWN_USER`: there is no primary group or group list to
/// take, and gid = uid would be a guess) — with an explicit `group` such a uid is accepted
/// and gets that group and no supplementary groups; and, as root, uid 0 as the target
/// (`-EINVAL`: not a privilege drop, and the verification that `setuid(0)` fails cannot
/// hold; without root it is `DK_ERR_NOT_ROOT` like any other user).
#[no_mangle]
pub unsafe extern "C" fn dk_privileges_drop(
    user: *const c_char,
    group: *const c_char,
    flags: u32,
) -> c_int {
    if flags != 0 {
        return -libc::EINVAL;
    }
    // SAFETY: user/group are NULL or C strings.
    let u = match unsafe { sys::cstr_arg(user, 256) } {
        Ok(u) => u,
        Err(e) => return e.to_c(),
    };
    let g = if group.is_null() {
        None
    } else {
        // SAFETY: group is a C string.
        match unsafe { sys::cstr_arg(group, 256) } {
            Ok(g) => Some(g),
            Err(e) => return e.to_c(),
        }
    };
    ret(privileges::drop_to(u, g))
}

/// Resolves a user name or number to its uid and primary gid (either out-pointer may be
/// NULL). Returns 0, `DK_ERR_UNKNOWN_USER` (-ESRCH; also for a number with no passwd
/// entry), `-EINVAL` for NULL or a malformed `user` (see `dk_privileges_drop`).
#[no_mangle]
pub unsafe extern "C" fn dk_user_lookup(
    user: *const c_char,
    uid_out: *mut u32,
    gid_out: *mut u32,
) -> c_int {
    // SAFETY: user is NULL or a C string.
    let u = match unsafe { sys::cstr_arg(user, 256) } {
        Ok(u) => u,
        Err(e) => return e.to_c(),
    };
    match privileges::lookup_user(u) {
        Ok(u) => {
            // SAFETY: each out-pointer is NULL or valid.
            unsafe {
                if !uid_out.is_null() {
                    *uid_out = u.uid;
                }
                if !gid_out.is_null() {
                    *gid_out = u.gid;
                }
            }
            0
        }
        Err(e) => e.to_c(),
    }
}

/// Resolves a group name or number to its gid (`gid_out` may be NULL; a number needs no
/// group entry). Returns 0, `DK_ERR_UNKNOWN_GROUP` (-ENOENT), `-EINVAL` for NULL or a
/// malformed `group` (see `dk_privileges_drop`).
#[no_mangle]
pub unsafe extern "C" fn dk_group_lookup(group: *const c_char, gid_out: *mut u32) -> c_int {
    // SAFETY: group is NULL or a C string.
    let g = match unsafe { sys::cstr_arg(group, 256) } {
        Ok(g) => g,
        Err(e) => return e.to_c(),
    };
    match privileges::lookup_group(g) {
        Ok(gid) => {
            if !gid_out.is_null() {
                // SAFETY: non-NULL out-pointer.
                unsafe { *gid_out = gid };
            }
            0
        }
        Err(e) => e.to_c(),
    }
}

/// `RLIM_INFINITY` as `dk_rlimit_*` report and accept it.
pub const DK_RLIM_INFINITY: u64 = u64::MAX;
/// `RLIMIT_CORE` (Linux numbering).
pub const DK_RLIMIT_CORE: c_int = 4;
/// `RLIMIT_NPROC`.
pub const DK_RLIMIT_NPROC: c_int = 6;
/// `RLIMIT_NOFILE`.
pub const DK_RLIMIT_NOFILE: c_int = 7;
/// `RLIMIT_AS`.
pub const DK_RLIMIT_AS: c_int = 9;

/// Reads resource limit `resource` (an `RLIMIT_*` number, e.g. `DK_RLIMIT_NOFILE`) into
/// `*soft` and `*hard` (either may be NULL). `-EINVAL` for an unknown resource.
#[no_mangle]
pub unsafe extern "C" fn dk_rlimit_get(resource: c_int, soft: *mut u64, hard: *mut u64) -> c_int {
    match rlimit::get(resource) {
        Ok((s, h)) => {
            // SAFETY: each out-pointer is NULL or valid.
            unsafe {
                if !soft.is_null() {
                    *soft = s;
                }
                if !hard.is_null() {
                    *hard = h;
                }
            }
            0
        }
        Err(e) => e.to_c(),
    }
}

/// Sets resource limit `resource` to `soft`/`hard` (`DK_RLIM_INFINITY` for unlimited).
/// `-EINVAL` unknown resource or soft > hard; `-EPERM` raising the hard limit without root.
#[no_mangle]
pub extern "C" fn dk_rlimit_set(resource: c_int, soft: u64, hard: u64) -> c_int {
    ret(rlimit::set(resource, soft, hard))
}

/// Sets the soft `RLIMIT_NOFILE` to `wanted`, capped at the hard limit, and stores what was
/// obtained in `*obtained` (may be NULL). Returns 0 or a negative errno.
#[no_mangle]
pub unsafe extern "C" fn dk_rlimit_nofile(wanted: u64, obtained: *mut u64) -> c_int {
    match rlimit::raise_nofile(wanted) {
        Ok(v) => {
            if !obtained.is_null() {
                // SAFETY: non-NULL out-pointer.
                unsafe { *obtained = v };
            }
            0
        }
        Err(e) => e.to_c(),
    }
}

/// Disables core dumps (`RLIMIT_CORE` soft and hard 0). Returns 0 or a negative errno.
#[no_mangle]
pub extern "C" fn dk_rlimit_disable_core() -> c_int {
    ret(rlimit::disable_core())
}

/// Sets (`on` != 0) or clears close-on-exec on `fd`. `-EBADF` for a negative or closed fd.
#[no_mangle]
pub extern "C" fn dk_fd_set_cloexec(fd: c_int, on: c_int) -> c_int {
    ret(fds::set_cloexec(fd, on != 0))
}

/// Closes every fd `>= first` except the `n_keep` fds in `keep` (and the library's own, such
/// as a locked PID file), with close_range(2) where available. `keep` may be NULL when
/// `n_keep` is 0. `-EINVAL` for a negative `first`, NULL `keep` with `n_keep` > 0, or more
/// than 1024 kept fds.
#[no_mangle]
pub unsafe extern "C" fn dk_fd_close_from(
    first: c_int,
    keep: *const c_int,
    n_keep: usize,
) -> c_int {
    // SAFETY: keep is NULL or n_keep readable ints.
    match unsafe { int_slice(keep, n_keep) } {
        Ok(k) => ret(fds::close_range_except(first, k)),
        Err(e) => e.to_c(),
    }
}

/// `dk_log_open`: replace stdout.
pub const DK_LOG_STDOUT: u32 = 1;
/// `dk_log_open`: replace stderr.
pub const DK_LOG_STDERR: u32 = 2;

/// Opens `path` append-only (created 0640) and `dup2`s it onto stdout and/or stderr
/// (`which`: `DK_LOG_STDOUT|DK_LOG_STDERR`; 0 means both). The absolute path is remembered
/// for `dk_log_reopen`. Errors: `-EINVAL` NULL path or unknown bits, `-ENAMETOOLONG`,
/// `-EACCES`, `-ENOENT` (directory missing), or another errno of open(2).
#[no_mangle]
pub unsafe extern "C" fn dk_log_open(path: *const c_char, which: u32) -> c_int {
    // SAFETY: path_ is NULL or a C string.
    match unsafe { path_arg(path) } {
        Ok(p) => ret(fds::log_open(p, which)),
        Err(e) => e.to_c(),
    }
}

/// Reopens the log file opened by `dk_log_open` (after logrotate renamed it) and moves
/// stdout/stderr onto the new file with `dup2`, so no line written by another thread or
/// runtime in between is lost. `-EBADF` when no log was opened; open(2)'s errno otherwise
/// (the old file then stays in place).
#[no_mangle]
pub extern "C" fn dk_log_reopen() -> c_int {
    ret(fds::log_reopen())
}

/// Registers the `n` signals in `sigs` with the process's signal pipe and returns its read
/// fd (non-blocking, close-on-exec): watch it for readability in any event loop, then call
/// `dk_signal_next`. Calling it again adds signals and returns the same fd; in a child forked
/// after an earlier call, the first call gets a pipe of its own (the parent's pipe and pending
/// signals are dropped). The handler only saves errno, sets a pending bit and writes one byte;
/// a flood never loses a kind. The pipe's fds are the library's own: `dk_fd_close_from` and
/// daemonize keep them. Errors: `-EINVAL` NULL `sigs` with `n` > 0, or an uncatchable,
/// out-of-range or libc-reserved signal (glibc's 32 and 33); pipe/sigaction errnos. On any
/// error nothing of this call stays registered. `-EINVAL` also for the signals the kernel
/// raises synchronously for a fault of the interrupted instruction — SIGSEGV, SIGBUS, SIGFPE,
/// SIGILL, SIGTRAP, SIGSYS — besides SIGKILL and SIGSTOP: a handler that only queues a byte
/// returns to the faulting instruction, which faults again for ever; such a fault must crash.
/// The handlers are installed with `SA_RESTART` (an interrupted blocking call is restarted);
/// `dk_signal_open_flags` with `DK_SIGNAL_NO_RESTART` installs them without it.
#[no_mangle]
pub unsafe extern "C" fn dk_signal_open(sigs: *const c_int, n: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { dk_signal_open_flags(sigs, n, 0) }
}

/// `dk_signal_open_flags`: install the handlers without `SA_RESTART`, so that a blocking call
/// (read, accept, wait, …) the signal interrupts fails with `EINTR` instead of being
/// restarted.
pub const DK_SIGNAL_NO_RESTART: u32 = 1;

/// `dk_signal_open` with `flags`: 0 (the same as `dk_signal_open`) or `DK_SIGNAL_NO_RESTART`.
/// The flags apply to the signals of this call; naming an already registered signal again
/// switches it to these flags (the disposition restored by `dk_signal_close` stays the one
/// from before its first registration). Errors: those of `dk_signal_open`, and `-EINVAL` for
/// unknown flag bits.
#[no_mangle]
pub unsafe extern "C" fn dk_signal_open_flags(sigs: *const c_int, n: usize, flags: u32) -> c_int {
    // SAFETY: sigs is NULL or n readable ints.
    match unsafe { int_slice(sigs, n) } {
        Ok(s) => match signals::open_flags(s, flags) {
            Ok(fd) => fd,
            Err(e) => e.to_c(),
        },
        Err(e) => e.to_c(),
    }
}

/// Returns the next pending signal, each kind once however often it arrived, or 0 when none
/// is pending. Pending kinds are taken in turn (round-robin from the one returned last), so a
/// signal that keeps arriving cannot hold back another. Drains the pipe's wake-up bytes first. Never blocks.
#[no_mangle]
pub extern "C" fn dk_signal_next() -> c_int {
    signals::next()
}

/// Waits up to `timeout_ms` milliseconds (negative: forever) for a registered signal and
/// returns it, or 0 on timeout. `-EBADF` when no signal is registered.
#[no_mangle]
pub extern "C" fn dk_signal_wait(timeout_ms: c_int) -> c_int {
    match signals::wait(timeout_ms as i64) {
        Ok(s) => s,
        Err(e) => e.to_c(),
    }
}

/// Restores the dispositions the registered signals had before `dk_signal_open`, closes the
/// pipe and forgets pending signals. Returns 0.
#[no_mangle]
pub extern "C" fn dk_signal_close() -> c_int {
    signals::close();
    0
}

/// For a freshly forked child: every signal disposition back to default, the mask emptied,
/// the signal pipe closed. Async-signal-safe (may be called between fork and exec). Returns 0.
#[no_mangle]
pub extern "C" fn dk_signal_reset_child() -> c_int {
    signals::reset_child();
    0
}

/// Ignores SIGPIPE, so writing to a closed socket gives `EPIPE` instead of killing the
/// process. Returns 0 or a negative errno.
#[no_mangle]
pub extern "C" fn dk_signal_ignore_sigpipe() -> c_int {
    ret(signals::ignore_sigpipe())
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
    use super::*;
    #[test]
    fn error_constants_match_libc() {
        assert_eq!(DK_ERR_UNKNOWN_USER, -crate::privileges::ERR_UNKNOWN_USER);
        assert_eq!(DK_ERR_UNKNOWN_GROUP, -crate::privileges::ERR_UNKNOWN_GROUP);
        assert_eq!(DK_ERR_NOT_ROOT, -crate::privileges::ERR_NOT_ROOT);
        assert_eq!(DK_ERR_VERIFY, -crate::privileges::ERR_VERIFY);
        assert_eq!(DK_ERR_PIDFILE_FOREIGN, -crate::pidfile::ERR_FOREIGN);
        assert_eq!(DK_SIGNAL_NO_RESTART, crate::signals::NO_RESTART);
        assert_eq!(DK_RLIMIT_CORE, libc::RLIMIT_CORE as c_int);
        assert_eq!(DK_RLIMIT_NPROC, libc::RLIMIT_NPROC as c_int);
        assert_eq!(DK_RLIMIT_NOFILE, libc::RLIMIT_NOFILE as c_int);
        assert_eq!(DK_RLIMIT_AS, libc::RLIMIT_AS as c_int);
    }
}
