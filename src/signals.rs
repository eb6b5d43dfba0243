//! Signals as a file descriptor: a process-wide self-pipe.
//!
//! Signal dispositions are process-global, so this registry is too: [`open`] registers a set
//! of signals and returns the read end of a non-blocking, close-on-exec pipe that any event
//! loop can watch (epoll, poll, IO::Async, tokio's `AsyncFd`). The handler saves errno, sets
//! the signal's pending bit, writes one byte, restores errno — nothing else. A full pipe loses
//! nothing: the pending bits remain and the reader already has a wake-up byte queued.
//! [`next`] drains the pipe and then returns each pending signal once.

use crate::fds;
use crate::sys::{self, Errno, Res};
use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Signals 1..=64 map to bits 0..=63.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// Signals registered through this module (same bit layout).
static REGISTERED: AtomicU64 = AtomicU64::new(0);
/// Deliveries per signal since the last [`take_count`] (TTIN ×5 must mean five).
static COUNTS: [AtomicU32; 65] = [const { AtomicU32::new(0) }; 65];
/// The last signal [`next`] returned: the search for the next one starts after it, so a
/// signal that keeps arriving cannot starve the others.
static CURSOR: AtomicU32 = AtomicU32::new(0);
static PIPE_R: AtomicI32 = AtomicI32::new(-1);
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
/// The process that created the pipe: a forked child that registers signals gets a pipe of
/// its own instead of sharing (and draining the wake-up bytes of) its parent's.
static PIPE_PID: AtomicI32 = AtomicI32::new(0);
/// Serializes open/add/close (not used by the handler).
static LOCK: AtomicBool = AtomicBool::new(false);

struct OldActions(UnsafeCell<[MaybeUninit<libc::sigaction>; 65]>);
// SAFETY: only accessed while LOCK is held (open/add/close), never from the handler.
unsafe impl Sync for OldActions {}
static OLD: OldActions = OldActions(UnsafeCell::new([const { MaybeUninit::uninit() }; 65]));

struct Guard;
fn lock() -> Guard {
    while LOCK
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    Guard
}
impl Drop for Guard {
    fn drop(&mut self) {
        LOCK.store(false, Ordering::Release);
    }
}

fn bit(sig: c_int) -> u64 {
    1u64 << (sig - 1)
}

/// True for a signal number that can be caught (1..=64, not KILL or STOP).
pub fn catchable(sig: c_int) -> bool {
    (1..=64).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP
}

/// The signal handler. Async-signal-safe: it touches only atomics, errno and `write(2)`.
extern "C" fn on_signal(sig: c_int) {
    let saved = sys::get_errno();
    if (1..=64).contains(&sig) {
        COUNTS[sig as usize].fetch_add(1, Ordering::SeqCst);
        PENDING.fetch_or(bit(sig), Ordering::SeqCst);
        let fd = PIPE_W.load(Ordering::SeqCst);
        if fd >= 0 {
            let b = sig as u8;
            // SAFETY: writing one byte from a stack variable; a full pipe gives EAGAIN,
            // which is fine because the pending bit is already set.
            unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
        }
    }
    sys::set_errno(saved);
}

/// Registers `sigs` and returns the read fd. Calling it again adds signals to the same pipe
/// and returns the same fd (in a forked child: a pipe of its own). `EINVAL` for an
/// uncatchable or out-of-range signal, or one libc reserves (nothing is registered then).
pub fn open(sigs: &[c_int]) -> Res<c_int> {
    for &s in sigs {
        if !catchable(s) || !settable(s) {
            return Err(Errno(libc::EINVAL));
        }
    }
    let _g = lock();
    if PIPE_R.load(Ordering::SeqCst) >= 0 && PIPE_PID.load(Ordering::SeqCst) != sys::getpid() {
        // Inherited across fork: the parent's pipe and its pending signals are not ours.
        close_pipe();
        forget_pending();
    }
    let created = PIPE_R.load(Ordering::SeqCst) < 0;
    if created {
        let [r, w] = sys::pipe_cloexec(true)?;
        // The pipe is the library's own: an fd sweep (`dk_fd_close_from`, daemonize) keeps
        // it, so PIPE_R/PIPE_W never name an fd number that was closed and reused.
        fds::register_private(r);
        fds::register_private(w);
        PIPE_PID.store(sys::getpid(), Ordering::SeqCst);
        PIPE_W.store(w, Ordering::SeqCst);
        PIPE_R.store(r, Ordering::SeqCst);
    }
    let before = REGISTERED.load(Ordering::SeqCst);
    for &s in sigs {
        if let Err(e) = install(s) {
            // Nothing registered on error: undo this call's installs (and the pipe if this
            // call created it).
            uninstall(REGISTERED.load(Ordering::SeqCst) & !before);
            if created {
                close_pipe();
            }
            return Err(e);
        }
    }
    Ok(PIPE_R.load(Ordering::SeqCst))
}

/// True when libc lets the caller change `sig`'s action (glibc reserves 32 and 33 for its
/// own use and refuses them with EINVAL). A query only: nothing changes.
fn settable(sig: c_int) -> bool {
    // SAFETY: querying the current action into a valid out-struct.
    unsafe {
        let mut old: libc::sigaction = core::mem::zeroed();
        libc::sigaction(sig, core::ptr::null(), &mut old) == 0
    }
}

/// Restores the saved action of every signal in `bits` and clears their registration
/// (LOCK held).
fn uninstall(bits: u64) {
    for sig in 1..=64 {
        if bits & bit(sig) != 0 {
            // SAFETY: the slot was filled by sigaction when the signal was registered (its bit
            // was set only after that succeeded); LOCK is held.
            unsafe {
                let old = (*OLD.0.get())[sig as usize].as_ptr();
                libc::sigaction(sig, old, core::ptr::null_mut());
            }
        }
    }
    REGISTERED.fetch_and(!bits, Ordering::SeqCst);
}

/// Forgets every pending signal and delivery count. Async-signal-safe (atomics only).
fn forget_pending() {
    PENDING.store(0, Ordering::SeqCst);
    for c in &COUNTS {
        c.store(0, Ordering::SeqCst);
    }
}

/// Closes the pipe and forgets its fds. Async-signal-safe (atomics and close only).
fn close_pipe() {
    for fd in [
        PIPE_W.swap(-1, Ordering::SeqCst),
        PIPE_R.swap(-1, Ordering::SeqCst),
    ] {
        if fd >= 0 {
            fds::unregister_private(fd);
            sys::close(fd);
        }
    }
}

/// Installs the handler for one signal (LOCK held), saving the previous action once.
fn install(sig: c_int) -> Res<()> {
    if REGISTERED.load(Ordering::SeqCst) & bit(sig) != 0 {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction is a valid starting point; we fill handler, mask and flags.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = on_signal as *const () as usize;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: sa.sa_mask is a valid sigset_t.
    unsafe { libc::sigfillset(&mut sa.sa_mask) };
    // SAFETY: OLD is only touched under LOCK, which the caller holds.
    let slot = unsafe { &mut (*OLD.0.get())[sig as usize] };
    // SAFETY: sa is initialized; slot is valid storage for the old action.
    sys::cvt(unsafe { libc::sigaction(sig, &sa, slot.as_mut_ptr()) })?;
    REGISTERED.fetch_or(bit(sig), Ordering::SeqCst);
    // Deliver it even if the caller had it blocked.
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset/sigaddset initialize it.
    let set = unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        set
    };
    sys::thread_sigmask(libc::SIG_UNBLOCK, Some(&set), None);
    Ok(())
}

/// The read fd, or -1 when nothing is registered.
pub fn fd() -> c_int {
    PIPE_R.load(Ordering::SeqCst)
}

/// Returns the next pending signal, or 0 when none is pending. Pending signals are taken in
/// turn, starting after the one returned last, so none is held back by another that keeps
/// arriving.
/// Drains the wake-up bytes first, so a poller is woken again only by new signals.
pub fn next() -> c_int {
    let r = PIPE_R.load(Ordering::SeqCst);
    if r >= 0 {
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reading into a valid stack buffer from a non-blocking fd.
            let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                if n < 0 && sys::get_errno() == libc::EINTR {
                    continue;
                }
                break;
            }
            if (n as usize) < buf.len() {
                // A short read emptied the pipe: no second read(2) just to see EAGAIN.
                break;
            }
        }
    }
    loop {
        let p = PENDING.load(Ordering::SeqCst);
        if p == 0 {
            return 0;
        }
        // Round-robin: the first pending bit after the last one returned, wrapping around.
        let start = CURSOR.load(Ordering::SeqCst) % 64;
        let rotated = p.rotate_right(start);
        let idx = (rotated.trailing_zeros() + start) % 64;
        let b = 1u64 << idx;
        if PENDING.fetch_and(!b, Ordering::SeqCst) & b != 0 {
            CURSOR.store(idx + 1, Ordering::SeqCst);
            return idx as c_int + 1;
        }
    }
}

/// How many times `sig` was delivered since the last call (at least the once [`next`]
/// reported). [`next`] reports a kind once however often it arrived; a caller that must act
/// on each delivery (TTIN/TTOU) asks here.
pub fn take_count(sig: c_int) -> u32 {
    if !(1..=64).contains(&sig) {
        return 0;
    }
    COUNTS[sig as usize].swap(0, Ordering::SeqCst)
}

/// Waits up to `timeout_ms` (negative: forever) for a signal and returns it, or 0 on timeout.
/// `EBADF` when no signal is registered.
pub fn wait(timeout_ms: i64) -> Res<c_int> {
    let fd = PIPE_R.load(Ordering::SeqCst);
    if fd < 0 {
        return Err(Errno(libc::EBADF));
    }
    let deadline = if timeout_ms >= 0 {
        Some(sys::now_ms() + timeout_ms as u64)
    } else {
        None
    };
    loop {
        let s = next();
        if s != 0 {
            return Ok(s);
        }
        let left = match deadline {
            None => -1,
            Some(d) => {
                let now = sys::now_ms();
                if now >= d {
                    return Ok(0);
                }
                (d - now) as i64
            }
        };
        sys::poll_one(fd, libc::POLLIN, left)?;
    }
}

/// Restores the dispositions saved when each signal was registered, closes the pipe and
/// forgets pending signals.
pub fn close() {
    let _g = lock();
    uninstall(REGISTERED.load(Ordering::SeqCst));
    close_pipe();
    forget_pending();
}

/// For a freshly forked child: every disposition back to `SIG_DFL`, the signal mask emptied,
/// the pipe closed, pending bits cleared. Async-signal-safe (sigaction, sigemptyset,
/// sigprocmask, close and lock-free atomics only), so it may run between `fork` and `exec`.
pub fn reset_child() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a zeroed sigaction with SIG_DFL (0) is valid; errors (reserved realtime
        // signals used by libc) are ignored on purpose.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
    // SAFETY: an empty sigset is valid for SIG_SETMASK.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, core::ptr::null_mut());
    }
    REGISTERED.store(0, Ordering::SeqCst);
    forget_pending();
    close_pipe();
    // A child forked while another thread held LOCK must not inherit it held.
    LOCK.store(false, Ordering::SeqCst);
}

/// Blocks every signal in the calling thread and returns the previous mask: for a helper
/// thread that leaves every signal to the thread running the signal loop, and around a
/// `fork` whose child resets its signal state ([`reset_child`] empties the mask at its end).
/// There it keeps the parent's handler from running in the child before the reset: such a
/// signal (a worker's TERM from a TTOU, say) would be swallowed there. Blocked, it stays
/// pending in the child and meets the default action once the reset unblocks it.
/// Async-signal-safe.
pub fn block_all() -> libc::sigset_t {
    // SAFETY: zeroed sigsets are valid storage; sigfillset initializes `all`.
    let (all, mut old) = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        (all, core::mem::zeroed::<libc::sigset_t>())
    };
    sys::thread_sigmask(libc::SIG_BLOCK, Some(&all), Some(&mut old));
    old
}

/// Restores a mask returned by [`block_all`]. Async-signal-safe.
pub fn set_mask(mask: &libc::sigset_t) {
    sys::thread_sigmask(libc::SIG_SETMASK, Some(mask), None);
}

/// Ignores SIGPIPE (so a closed peer gives `EPIPE` instead of killing the process).
/// Async-signal-safe (sigaction only): a forked worker calls it before its hook.
pub fn ignore_sigpipe() -> Res<()> {
    // SAFETY: a zeroed sigaction with SIG_IGN is valid.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_IGN;
        sys::cvt(libc::sigaction(libc::SIGPIPE, &sa, core::ptr::null_mut()))?;
    }
    Ok(())
}

/// Sends `sig` to `pid`.
pub fn send(pid: i32, sig: c_int) -> Res<()> {
    // SAFETY: kill takes plain integers.
    sys::cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

#[cfg(feature = "std")]
mod rust {
    use super::*;
    use std::io;
    use std::os::fd::BorrowedFd;
    use std::time::Duration;

    /// The process's signal pipe for a set of signals. Dropping it restores the previous
    /// dispositions and closes the pipe.
    ///
    /// ```no_run
    /// let sigs = daemonkit::Signals::new(&[libc::SIGHUP, libc::SIGTERM]).unwrap();
    /// for sig in sigs.pending() { println!("got {sig}"); }
    /// ```
    pub struct Signals {
        fd: c_int,
    }

    impl Signals {
        /// Registers `sigs` (any catchable signal; KILL/STOP are refused).
        pub fn new(sigs: &[c_int]) -> io::Result<Signals> {
            let fd = open(sigs).map_err(|e| {
                io::Error::new(
                    io::Error::from_raw_os_error(e.0).kind(),
                    format!(
                        "cannot register signals {sigs:?}: {}",
                        io::Error::from_raw_os_error(e.0)
                    ),
                )
            })?;
            Ok(Signals { fd })
        }
        /// Adds more signals to the same pipe.
        pub fn add(&self, sigs: &[c_int]) -> io::Result<()> {
            open(sigs)
                .map(|_| ())
                .map_err(|e| io::Error::from_raw_os_error(e.0))
        }
        /// The readable fd to watch in an event loop.
        pub fn as_fd(&self) -> BorrowedFd<'_> {
            // SAFETY: the fd stays open for as long as self exists (closed only in Drop).
            unsafe { BorrowedFd::borrow_raw(self.fd) }
        }
        /// Iterates over the signals pending now (each once), without blocking.
        pub fn pending(&self) -> impl Iterator<Item = c_int> + '_ {
            core::iter::from_fn(|| match next() {
                0 => None,
                s => Some(s),
            })
        }
        /// Blocks until a signal arrives or `timeout` passes (`None`: forever).
        pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<c_int>> {
            let t = timeout.map_or(-1, |d| d.as_millis().min(i64::MAX as u128) as i64);
            match wait(t) {
                Ok(0) => Ok(None),
                Ok(s) => Ok(Some(s)),
                Err(e) => Err(io::Error::from_raw_os_error(e.0)),
            }
        }
    }

    impl Drop for Signals {
        fn drop(&mut self) {
            close();
        }
    }

    /// Ignores SIGPIPE.
    pub fn ignore_sigpipe() -> io::Result<()> {
        super::ignore_sigpipe().map_err(|e| io::Error::from_raw_os_error(e.0))
    }
}
#[cfg(feature = "std")]
pub use rust::{ignore_sigpipe as rust_ignore_sigpipe, Signals};
