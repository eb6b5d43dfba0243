//! C ABI: signals as a file descriptor (`dk_signal_*`), over [`crate::imp::signals`].

use super::{int_slice, ret};
use crate::imp::signals;
use core::ffi::c_int;

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
