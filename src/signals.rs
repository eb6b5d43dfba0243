//! Signals as a file descriptor (C: `dk_signal_*`): a process-wide self-pipe whose read end
//! any event loop can watch (poll, epoll, tokio's `AsyncFd`: see the `tokio` module).
//!
//! The handler saves errno, sets the signal's pending bit and writes one byte — nothing
//! else; a full pipe loses nothing. [`Signals::pending`] drains the pipe and yields each
//! pending signal once (round-robin: one that keeps arriving cannot starve another). One
//! [`Signals`] per process owns the pipe; dropping it restores the previous dispositions.
//! KILL, STOP and the synchronous faults (SEGV, BUS, FPE, ILL, TRAP, SYS) are refused.
//!
//! ```
//! use daemonkit::signals::Signals;
//! use std::time::Duration;
//! let sigs = Signals::new(&[libc::SIGUSR1, libc::SIGHUP])?;
//! // SAFETY: raising a signal we just registered.
//! unsafe { libc::raise(libc::SIGUSR1) };
//! assert_eq!(sigs.wait(Some(Duration::from_secs(1)))?, Some(libc::SIGUSR1));
//! assert_eq!(sigs.pending().next(), None);
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::imp::signals as imp;
use crate::sys::{self, Errno};
use core::sync::atomic::{AtomicI32, Ordering};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

bitflags::bitflags! {
    /// How [`Signals::with_flags`] installs its handlers (C: `DK_SIGNAL_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SignalFlags: u32 {
        /// Without `SA_RESTART`: a blocking call the signal interrupts fails with
        /// `EINTR` (`io::ErrorKind::Interrupted`) instead of being restarted.
        const NO_RESTART = imp::NO_RESTART;
    }
}

/// The process that holds the one live [`Signals`] (0: none). Signal dispositions are
/// process-wide, so there is one owner: a second `Signals::new` is refused (`EBUSY`)
/// instead of handing out a second owner of the same pipe, whose drop would close the fd
/// the first still returns. A forked child is not the owner and may make its own.
static OWNER: AtomicI32 = AtomicI32::new(0);

/// The process's signal pipe for a set of signals — one per process (C: `dk_signal_open`
/// … `dk_signal_close`). Dropping it restores the previous dispositions and closes the pipe.
pub struct Signals {
    fd: i32,
}

fn err(sigs: &[i32], e: Errno) -> Error {
    let what = match e.0 {
        libc::EBUSY => {
            " (a Signals already owns this process's signal pipe: one per process; \
                        add signals to it, or drop it first)"
        }
        libc::EINVAL => {
            " (KILL, STOP and the synchronous faults SEGV, BUS, FPE, ILL, TRAP, SYS \
                         cannot go through a pipe)"
        }
        _ => "",
    };
    Error::os(format!("cannot register signals {sigs:?}{what}"), e)
}

impl Signals {
    /// Registers `sigs` with `SA_RESTART`. `EBUSY` while another `Signals` of this process
    /// lives, `EINVAL` for a signal the pipe cannot carry.
    pub fn new(sigs: &[i32]) -> Result<Signals> {
        Signals::with_flags(sigs, SignalFlags::empty())
    }

    /// [`Signals::new`] with `flags` (e.g. [`SignalFlags::NO_RESTART`]; C:
    /// `dk_signal_open_flags`).
    pub fn with_flags(sigs: &[i32], flags: SignalFlags) -> Result<Signals> {
        let me = sys::getpid();
        let prev = OWNER.load(Ordering::SeqCst);
        if prev == me
            || OWNER
                .compare_exchange(prev, me, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return Err(err(sigs, Errno(libc::EBUSY)));
        }
        match imp::open_flags(sigs, flags.bits()) {
            Ok(fd) => Ok(Signals { fd }),
            Err(e) => {
                OWNER.store(0, Ordering::SeqCst);
                Err(err(sigs, e))
            }
        }
    }

    /// Adds more signals to the same pipe (with `SA_RESTART`).
    pub fn add(&self, sigs: &[i32]) -> Result<()> {
        self.add_with_flags(sigs, SignalFlags::empty())
    }

    /// Adds more signals to the same pipe with `flags`.
    pub fn add_with_flags(&self, sigs: &[i32], flags: SignalFlags) -> Result<()> {
        imp::open_flags(sigs, flags.bits())
            .map(|_| ())
            .map_err(|e| err(sigs, e))
    }

    /// The signals pending now, each once, without blocking (C: `dk_signal_next` until 0).
    pub fn pending(&self) -> impl Iterator<Item = i32> + '_ {
        core::iter::from_fn(|| match imp::next() {
            0 => None,
            s => Some(s),
        })
    }

    /// Blocks until a signal arrives or `timeout` passes (`None`: forever); C:
    /// `dk_signal_wait`.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<i32>> {
        let t = timeout.map_or(-1, |d| d.as_millis().min(i64::MAX as u128) as i64);
        match imp::wait(t) {
            Ok(0) => Ok(None),
            Ok(s) => Ok(Some(s)),
            Err(e) => Err(Error::os("signals: wait", e)),
        }
    }
}

impl AsFd for Signals {
    /// The readable fd to watch in an event loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open for as long as self exists (closed only in Drop).
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        imp::close();
        let me = sys::getpid();
        let _ = OWNER.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Ignores SIGPIPE, so writing to a closed socket gives `EPIPE` (C:
/// `dk_signal_ignore_sigpipe`).
pub fn ignore_sigpipe() -> Result<()> {
    imp::ignore_sigpipe().map_err(|e| Error::os("SIGPIPE", e))
}

/// In a freshly forked child: every disposition back to default, the mask emptied, the
/// parent's signal pipe closed (C: `dk_signal_reset_child`). Async-signal-safe.
pub fn reset_child() {
    imp::reset_child();
}

/// Blocks every signal in the calling thread (a helper thread that leaves every signal to
/// the thread running the signal loop); returns the previous mask's guard, which restores it
/// when dropped.
pub fn block_all() -> MaskGuard {
    MaskGuard(imp::block_all())
}

/// The signal mask [`block_all`] replaced; restored on drop (or kept with
/// [`MaskGuard::forget`]).
pub struct MaskGuard(libc::sigset_t);

impl MaskGuard {
    /// Keeps every signal blocked in this thread for good.
    pub fn forget(self) {
        core::mem::forget(self);
    }
}

impl Drop for MaskGuard {
    fn drop(&mut self) {
        imp::set_mask(&self.0);
    }
}
