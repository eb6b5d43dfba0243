//! C ABI: daemonize with readiness (`dk_daemonize`, `dk_ready`, `dk_fail`), over
//! [`crate::imp::daemon`].

use super::{int_slice, path_arg, ret};
use crate::imp::daemon::{self, Options, MAX_MESSAGE};
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
/// leader and has no controlling terminal; on x86-64 the first child is a vfork child, so
/// the page tables are copied once, however large the heap), points stdio at /dev/null (stdout/stderr stay on
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
