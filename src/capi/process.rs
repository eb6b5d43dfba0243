//! C ABI: daemonize with readiness, ready/fail, re-exec and upgrade.

use super::{base::dk_pidfile, int_slice, path_arg, ret};
use crate::daemon::{self, Options, MAX_MESSAGE};
use crate::exec::{self, Spec};
use crate::sys;
use core::ffi::{c_char, c_int};

/// `dk_daemonize`: stay in the foreground (no fork, stdio kept); `dk_ready` then sends
/// `READY=1` to `$NOTIFY_SOCKET`.
pub const DK_DAEMON_FOREGROUND: u32 = 1;
/// `dk_daemonize`: keep stdin/stdout/stderr (do not point them at /dev/null).
pub const DK_DAEMON_KEEP_STDIO: u32 = 2;
/// `dk_daemonize`: do not close inherited fds.
pub const DK_DAEMON_NO_CLOSE_FDS: u32 = 4;
/// `dk_daemonize`: do not change directory.
pub const DK_DAEMON_NO_CHDIR: u32 = 8;
/// `dk_daemonize`: do not reset signal dispositions and the mask.
pub const DK_DAEMON_NO_SIGNAL_RESET: u32 = 16;

/// `dk_daemonize` returned in a forked daemon (a launcher waits for `dk_ready`/`dk_fail`).
pub const DK_ROLE_DAEMON: c_int = 1;
/// `dk_daemonize` returned in the foreground, or in an image started by `dk_reexec`.
pub const DK_ROLE_FOREGROUND: c_int = 2;
/// `dk_daemonize` returned in a new generation started by an upgrade (the old master waits
/// for `dk_ready`).
pub const DK_ROLE_UPGRADE: c_int = 3;

/// Turns the calling process into a daemon (daemon(7)): closes inherited fds above 2 except
/// the `n_keep` in `keep` and the library's own (a locked PID file), resets signal
/// dispositions and the mask, forks, `setsid`s, forks again (the daemon is not a session
/// leader and has no controlling terminal), points stdio at /dev/null (stdout/stderr stay on
/// a log opened with `dk_log_open`), sets the umask to `umask_value` (negative: unchanged;
/// 022 is a good choice; above 0777 is not a umask: `-EINVAL`) and changes directory to `chdir_path` (NULL: "/").
///
/// The launching process never returns from this call: it waits on a readiness pipe and
/// exits 0 when the daemon calls `dk_ready`; prints the message and exits with the code
/// given to `dk_fail`; exits non-zero with a message naming the daemon's pid and exit status
/// when it dies before reporting; and, if `timeout_ms` > 0, kills it and exits 1 when it is
/// not ready in time. Flush your own stdio buffers before calling.
///
/// In the daemon it returns `DK_ROLE_DAEMON`. With `DK_DAEMON_FOREGROUND`, or in a program
/// image started by `dk_reexec`, it does every step but the forks and the stdio change and
/// returns `DK_ROLE_FOREGROUND`; in a new generation started by an upgrade it returns
/// `DK_ROLE_UPGRADE`. Errors (returned before the fork, in the launcher; after it, in the
/// daemon, which should report them with `dk_fail`): `-EINVAL` unknown flags, NULL `keep`
/// with `n_keep` > 0 or a umask above 0777, `-EBADF` a kept fd is not open, `-ENOENT` empty or missing directory,
/// fork/setsid/open errnos (`-ENOENT` when /dev/null is missing).
#[no_mangle]
pub unsafe extern "C" fn dk_daemonize(
    flags: u32,
    keep: *const c_int,
    n_keep: usize,
    chdir_path: *const c_char,
    umask_value: c_int,
    timeout_ms: u32,
) -> c_int {
    // SAFETY: keep is NULL or n_keep readable ints.
    let keep = match unsafe { int_slice(keep, n_keep) } {
        Ok(k) => k,
        Err(e) => return e.to_c(),
    };
    let chdir = if chdir_path.is_null() {
        None
    } else {
        // SAFETY: chdir_path is a C string.
        match unsafe { path_arg(chdir_path) } {
            Ok(p) => Some(p),
            Err(e) => return e.to_c(),
        }
    };
    let o = Options {
        flags,
        keep,
        chdir,
        umask: umask_value,
        timeout_ms,
    };
    match daemon::daemonize(&o) {
        Ok(role) => role as c_int,
        Err(e) => e.to_c(),
    }
}

/// Reports that startup succeeded: the launcher (after `dk_daemonize`) exits 0, an old
/// master (upgrade) starts draining, a supervisor's master counts this worker as ready. Except
/// in a worker it also sends `READY=1` to `$NOTIFY_SOCKET` when that is set. Call it once
/// the server accepts connections and the PID file holds its pid. Returns 0, or a negative
/// errno from sending the notification.
#[no_mangle]
pub extern "C" fn dk_ready() -> c_int {
    ret(daemon::ready())
}

/// Reports that startup failed with exit code `code` (1..255; other values become 1) and
/// the message `msg` (may be NULL; only its first 1024 bytes are carried, a longer one is
/// truncated): the launcher prints the
/// message on its stderr and exits with `code`. In the foreground (no launcher) and in a
/// worker the message goes to stderr. The caller should exit afterwards. Returns 0.
#[no_mangle]
pub unsafe extern "C" fn dk_fail(code: c_int, msg: *const c_char) -> c_int {
    let m: &[u8] = if msg.is_null() {
        b"daemon failed to start"
    } else {
        // SAFETY: msg is a C string; strnlen reads at most MAX_MESSAGE bytes of it, and a
        // longer message is carried truncated.
        unsafe {
            let n = libc::strnlen(msg, MAX_MESSAGE);
            core::slice::from_raw_parts(msg.cast::<u8>(), n)
        }
    };
    ret(daemon::fail(code, m))
}

/// Borrows an argv/fds/names triple for exec.
unsafe fn spec<'a>(
    argv: *const *const c_char,
    fds: *const c_int,
    n_fds: usize,
    names: *const c_char,
    pf: *const dk_pidfile,
) -> Result<Spec<'a>, c_int> {
    if argv.is_null() {
        return Err(-libc::EINVAL);
    }
    // SAFETY: fds is NULL or n_fds readable ints.
    let fds = unsafe { int_slice(fds, n_fds) }.map_err(|e| e.to_c())?;
    let names = if names.is_null() {
        None
    } else {
        // SAFETY: names is a C string.
        Some(unsafe { sys::cstr_arg(names, 65536) }.map_err(|e| e.to_c())?)
    };
    // SAFETY: pf is NULL or a live handle.
    let pidfile_fd = unsafe { pf.as_ref() }.map_or(-1, super::base::pidfile_fd_of);
    Ok(Spec {
        argv,
        fds,
        names,
        pidfile_fd,
    })
}

/// Replaces the running program with a fresh image of `argv` (NULL-terminated; `argv[0]` is
/// the absolute path executed), same pid, keeping the listening sockets open: the `n_fds`
/// fds in `fds` become fds 3.. with `LISTEN_FDS`/`LISTEN_PID` (and `LISTEN_FDNAMES` =
/// `names`, colon-separated, when not NULL); the PID file `pf` (may be NULL) stays locked and
/// is handed over in `DAEMONKIT_PIDFILE_FD` for `dk_pidfile_open` to adopt; the new image's
/// `dk_daemonize` does not fork. Returns only on failure, with every fd as it was:
/// `-EINVAL` (NULL argv, more than 62 fds), `-EBADF` (a closed fd), `-EACCES`/`-ENOENT`
/// (`argv[0]` not executable), or execve's errno.
#[no_mangle]
pub unsafe extern "C" fn dk_reexec(
    argv: *const *const c_char,
    fds: *const c_int,
    n_fds: usize,
    names: *const c_char,
    pf: *const dk_pidfile,
) -> c_int {
    // SAFETY: arguments per this function's contract.
    match unsafe { spec(argv, fds, n_fds, names, pf) } {
        Ok(s) => ret(exec::reexec(&s)),
        Err(e) => e,
    }
}

/// Zero-downtime upgrade for a single process: fork+exec `argv` as a new generation with the
/// listening fds (as `dk_reexec`), the locked PID file `pf` (may be NULL) and a readiness
/// pipe; wait up to `timeout_ms` (0: forever) for it to call `dk_ready`. While waiting this
/// process does not serve, but connections queue in the listen backlog, so none fails.
///
/// Returns the new generation's pid (> 0): stop accepting, finish in-flight requests and
/// exit 0 without removing the PID file (it now holds the new pid; `pf` has already let go
/// of its lock, so the new generation alone holds it: `dk_pidfile_fd(pf)` gives `-EBADF`, and
/// `dk_pidfile_close(pf)` only frees the handle). On failure the new
/// generation is killed, the PID file is rewritten with this process's pid, the failure
/// message (if any) is copied into `msg` (NUL-terminated, may be NULL with `msg_len` 0) and
/// a negative errno returned: `-ECANCELED` (it failed or exited first), `-ETIMEDOUT`, or the
/// `dk_reexec` argument errors.
#[no_mangle]
pub unsafe extern "C" fn dk_upgrade(
    argv: *const *const c_char,
    fds: *const c_int,
    n_fds: usize,
    names: *const c_char,
    pf: *mut dk_pidfile,
    timeout_ms: u32,
    msg: *mut c_char,
    msg_len: usize,
) -> c_int {
    if msg.is_null() && msg_len > 0 {
        return -libc::EINVAL;
    }
    if !msg.is_null() && msg_len > 0 {
        // SAFETY: msg has msg_len writable bytes.
        unsafe { *msg = 0 };
    }
    // SAFETY: arguments per this function's contract.
    let s = match unsafe { spec(argv, fds, n_fds, names, pf) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut buf = [0u8; MAX_MESSAGE];
    let mut len = 0usize;
    // SAFETY: pf is NULL or a live handle.
    let pidfile = unsafe { pf.as_mut() }.map(super::base::pidfile_core);
    match exec::upgrade(&s, pidfile, timeout_ms, &mut buf, &mut len) {
        Ok(pid) => pid,
        Err(e) => {
            if !msg.is_null() && msg_len > 0 {
                let n = len.min(msg_len - 1);
                // SAFETY: msg has msg_len >= n + 1 writable bytes.
                unsafe {
                    core::ptr::copy_nonoverlapping(buf.as_ptr(), msg.cast::<u8>(), n);
                    *msg.add(n) = 0;
                }
            }
            e.to_c()
        }
    }
}
