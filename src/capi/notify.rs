//! C ABI: service-manager notification (`dk_notify*`, `dk_watchdog_usec`), over
//! [`crate::imp::notify`].

use super::ret;
use crate::imp::notify;
use crate::sys;
use core::ffi::{c_char, c_int};

/// Sends `state` (e.g. `"READY=1"`, `"STATUS=serving"`, several lines allowed) as one
/// datagram to `$NOTIFY_SOCKET` (a path, or `@name` abstract). Returns 1 when sent, 0 when
/// `NOTIFY_SOCKET` is unset, or a negative errno (`-EINVAL` NULL state, `-EAFNOSUPPORT`
/// unsupported address, `-ECONNREFUSED`/`-ENOENT` nobody listening).
#[no_mangle]
pub unsafe extern "C" fn dk_notify(state: *const c_char) -> c_int {
    // SAFETY: state is NULL or a C string.
    match unsafe { sys::cstr_arg(state, 65536) } {
        Ok(s) => match notify::notify_cstr(s) {
            Ok(n) => n,
            Err(e) => e.to_c(),
        },
        Err(e) => e.to_c(),
    }
}

/// s6's readiness protocol: makes `dk_ready()` also write a newline to `fd` and close it
/// (the fd a service directory's `notification-fd` file names; s6-supervise opens it for
/// the daemon, and `s6-svwait -U` returns once the newline arrives). The fd becomes
/// close-on-exec and the library's own: `dk_daemonize`'s fd sweep keeps it, workers and
/// exec'd programs do not get it, and a worker's `dk_ready()` does not write it (the
/// supervisor's master writes it once every initial worker is ready). Returns 0, `-EBADF`
/// for a negative or closed fd.
#[no_mangle]
pub extern "C" fn dk_notify_fd(fd: c_int) -> c_int {
    ret(notify::set_ready_fd(fd))
}

/// Sends `RELOADING=1` with `MONOTONIC_USEC=<now>` (systemd `Type=notify-reload`); send
/// `READY=1` when the reload is done. Returns as `dk_notify`.
#[no_mangle]
pub extern "C" fn dk_notify_reloading() -> c_int {
    match notify::reloading() {
        Ok(b) => b as c_int,
        Err(e) => e.to_c(),
    }
}

/// Sends `STOPPING=1`. Returns as `dk_notify`.
#[no_mangle]
pub extern "C" fn dk_notify_stopping() -> c_int {
    match notify::stopping() {
        Ok(b) => b as c_int,
        Err(e) => e.to_c(),
    }
}

/// When systemd's watchdog is enabled for this process (`WATCHDOG_USEC` set and
/// `WATCHDOG_PID` absent or ours), stores the interval in microseconds in `*usec` and returns
/// 1 (send `"WATCHDOG=1"` with `dk_notify` at about half that interval); returns 0 when not.
/// `usec` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn dk_watchdog_usec(usec: *mut u64) -> c_int {
    match notify::watchdog_usec() {
        Some(v) => {
            // SAFETY: usec is NULL or a writable out-pointer (the header's contract).
            unsafe { super::put(usec, v) };
            1
        }
        None => 0,
    }
}
