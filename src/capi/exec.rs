//! C ABI: re-exec and single-process upgrade (`dk_reexec`, `dk_upgrade`), over
//! [`crate::imp::exec`].

use super::{int_slice, pidfile::dk_pidfile, ret};
use crate::imp::daemon::MAX_MESSAGE;
use crate::imp::exec::{self, Spec};
use crate::sys;
use core::ffi::{c_char, c_int};

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
    let pidfile_fd = unsafe { pf.as_ref() }.map_or(-1, super::pidfile::pidfile_fd_of);
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
    let pidfile = unsafe { pf.as_mut() }.map(super::pidfile::pidfile_core);
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
