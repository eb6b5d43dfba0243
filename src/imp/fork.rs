//! The one fork prelude. Every fork in the library goes through [`fork`]: daemonize's two
//! forks, the upgrade's new generation (`exec::spawn`) and the supervisor's workers. It
//! flushes C stdio (nothing buffered is written twice) and keeps every signal blocked across
//! the fork, so that a signal arriving in the instant after it cannot run the parent's
//! handler in the child (where it would be swallowed: a TERM sent to a new worker, lost);
//! what the child does with its signal state then is the caller's choice.

use crate::imp::signals;
use crate::sys::{Errno, Res};

/// The signal state the child starts from, right after the fork.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum InChild {
    /// The parent's mask back (daemonize: its own steps reset the dispositions, or keep
    /// them with `DK_DAEMON_NO_SIGNAL_RESET`).
    Restore,
    /// Every signal still blocked: the caller resets the state itself before it unblocks
    /// (a supervisor worker, which keeps USR1 held until it is ready).
    KeepBlocked,
    /// Every disposition at its default and an empty mask (a child about to exec).
    Reset,
}

/// Forks. Returns the child's pid in the parent (its mask restored) and 0 in the child
/// (signal state per `in_child`). On failure nothing changed and the errno is returned.
/// The child side is async-signal-safe up to the return (sigprocmask and sigaction only).
pub(crate) fn fork(in_child: InChild) -> Res<libc::pid_t> {
    // SAFETY: fflush(NULL) flushes every C stream; harmless without any.
    unsafe { libc::fflush(core::ptr::null_mut()) };
    let mask = signals::block_all();
    // SAFETY: fork; the child runs only async-signal-safe code until it returns to a caller
    // that does the same until exec or _exit (or, for daemonize, a single-threaded caller).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = Errno::last();
        signals::set_mask(&mask);
        return Err(e);
    }
    if pid > 0 {
        signals::set_mask(&mask);
        return Ok(pid);
    }
    match in_child {
        InChild::Restore => signals::set_mask(&mask),
        InChild::KeepBlocked => {}
        InChild::Reset => signals::reset_child(),
    }
    Ok(0)
}
