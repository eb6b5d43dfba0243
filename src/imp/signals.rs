//! Signals as a file descriptor: a process-wide self-pipe.
//!
//! Signal dispositions are process-global, so this registry is too: [`open`] registers a set
//! of signals and returns the read end of a non-blocking, close-on-exec pipe that any event
//! loop can watch (epoll, poll, IO::Async, tokio's `AsyncFd`). The handler saves errno, sets
//! the signal's pending bit, writes one byte, restores errno — nothing else. A full pipe loses
//! nothing: the pending bits remain and the reader already has a wake-up byte queued.
//! [`next`] drains the pipe and then returns each pending signal once.

use crate::imp::fds;
use crate::sys::{self, Errno, Res};
use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Signals 1..=64 map to bits 0..=63.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// Signals registered through this module (same bit layout).
static REGISTERED: AtomicU64 = AtomicU64::new(0);
/// Registered signals whose handler was installed without `SA_RESTART` ([`NO_RESTART`]).
static NO_RESTART_SET: AtomicU64 = AtomicU64::new(0);
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

/// [`open_flags`]: install the handlers without `SA_RESTART`, so that a blocking call the
/// signal interrupts fails with `EINTR` instead of being restarted (for programs whose
/// blocking reads or waits must notice a signal).
pub const NO_RESTART: u32 = 1;
/// Every [`open_flags`] flag.
pub const ALL_FLAGS: u32 = NO_RESTART;

/// True for a signal number that can be caught (1..=64, not KILL or STOP).
pub fn catchable(sig: c_int) -> bool {
    (1..=64).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP
}

/// True for a signal the self-pipe can carry: catchable, and not one the kernel raises
/// synchronously for a fault of the interrupted instruction (SEGV, BUS, FPE, ILL, TRAP, SYS).
/// A handler that only writes a byte returns to the faulting instruction, which faults again
/// for ever: such a fault must crash (or be handled in place), never be queued.
pub fn pipeable(sig: c_int) -> bool {
    catchable(sig)
        && !matches!(
            sig,
            libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGFPE
                | libc::SIGILL
                | libc::SIGTRAP
                | libc::SIGSYS
        )
}

/// True when this process (not a parent it was forked from) has signals registered: the
/// pipe is in use. The supervisor refuses to run then (`EBUSY`): its loop would drain the
/// caller's signals and its end would tear the caller's registration down.
pub fn registered_here() -> bool {
    REGISTERED.load(Ordering::SeqCst) != 0
        && PIPE_R.load(Ordering::SeqCst) >= 0
        && PIPE_PID.load(Ordering::SeqCst) == sys::getpid()
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
/// and returns the same fd (in a forked child: a pipe of its own). `EINVAL` for a signal the
/// pipe cannot carry (KILL, STOP, the synchronous faults: see [`pipeable`]), an
/// out-of-range one, or one libc reserves (nothing is registered then). The handlers are
/// installed with `SA_RESTART`; see [`open_flags`] for the other choice.
pub fn open(sigs: &[c_int]) -> Res<c_int> {
    open_flags(sigs, 0)
}

/// [`open`] with `flags` ([`NO_RESTART`]; unknown bits: `EINVAL`). The flags apply to the
/// signals of this call; naming an already registered signal again switches it to these
/// flags (its saved previous disposition stays the one from before the first registration).
pub fn open_flags(sigs: &[c_int], flags: u32) -> Res<c_int> {
    if flags & !ALL_FLAGS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    for &s in sigs {
        if !pipeable(s) || !settable(s) {
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
    let restart = flags & NO_RESTART == 0;
    for &s in sigs {
        if let Err(e) = install(s, restart) {
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
    NO_RESTART_SET.fetch_and(!bits, Ordering::SeqCst);
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

/// Installs the handler for one signal (LOCK held), with or without `SA_RESTART`, saving the
/// previous action the first time.
fn install(sig: c_int, restart: bool) -> Res<()> {
    let registered = REGISTERED.load(Ordering::SeqCst) & bit(sig) != 0;
    let was_restart = NO_RESTART_SET.load(Ordering::SeqCst) & bit(sig) == 0;
    if registered && was_restart == restart {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction is a valid starting point; we fill handler, mask and flags.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = on_signal as *const () as usize;
    sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
    // SAFETY: sa.sa_mask is a valid sigset_t.
    unsafe { libc::sigfillset(&mut sa.sa_mask) };
    if registered {
        // Only the flags change; the saved previous action stays.
        // SAFETY: sa is initialized.
        sys::cvt(unsafe { libc::sigaction(sig, &sa, core::ptr::null_mut()) })?;
    } else {
        // SAFETY: OLD is only touched under LOCK, which the caller holds.
        let slot = unsafe { &mut (*OLD.0.get())[sig as usize] };
        // SAFETY: sa is initialized; slot is valid storage for the old action.
        sys::cvt(unsafe { libc::sigaction(sig, &sa, slot.as_mut_ptr()) })?;
    }
    if restart {
        NO_RESTART_SET.fetch_and(!bit(sig), Ordering::SeqCst);
    } else {
        NO_RESTART_SET.fetch_or(bit(sig), Ordering::SeqCst);
    }
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
///
/// Two system calls per signal, not four: with no pending bit set there is nothing to return
/// yet, so the first [`next`] (whose `read` would only fail with `EAGAIN`) is skipped and the
/// wait goes straight to `poll` (a wake-up byte left from a signal already returned makes that
/// `poll` return at once; the [`next`] after it drains the byte). A `poll` that fails with
/// `EINTR` goes back to [`next`] instead of polling again: the signal that interrupted it is
/// most likely one of ours, its pending bit already set.
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
    let mut check = PENDING.load(Ordering::SeqCst) != 0;
    loop {
        if check {
            let s = next();
            if s != 0 {
                return Ok(s);
            }
        }
        check = true;
        let left = match deadline {
            None => -1,
            Some(d) => {
                let now = sys::now_ms();
                if now >= d {
                    return Ok(0);
                }
                (d - now).min(i32::MAX as u64) as c_int
            }
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: p is one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, left) } < 0 {
            let e = Errno::last();
            if e.0 != libc::EINTR {
                return Err(e);
            }
        }
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
    NO_RESTART_SET.store(0, Ordering::SeqCst);
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

/// The signal state an `execve` in this same process would pass on, set aside so that the new
/// image starts as a program does from outside (every ignored disposition back to `SIG_DFL`,
/// an empty mask), and put back by [`ExecState::restore`] when the exec fails. Used by the
/// re-exec in place; a forked child uses [`reset_child`] instead.
pub struct ExecState {
    ignored: u64,
    mask: libc::sigset_t,
}

impl ExecState {
    /// Blocks every signal while the ignored ones are set to `SIG_DFL` (so none of them can
    /// meet its default action meanwhile), then empties the mask for the exec. In the instant
    /// between that and the exec a signal reaching a formerly ignored disposition takes its
    /// default action; a handled one runs its handler as before.
    pub fn reset() -> ExecState {
        let mask = block_all();
        let mut ignored = 0u64;
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: querying and setting plain dispositions with zeroed (valid) structs.
            unsafe {
                let mut old: libc::sigaction = core::mem::zeroed();
                if libc::sigaction(sig, core::ptr::null(), &mut old) == 0
                    && old.sa_sigaction == libc::SIG_IGN
                {
                    let mut sa: libc::sigaction = core::mem::zeroed();
                    sa.sa_sigaction = libc::SIG_DFL;
                    if libc::sigaction(sig, &sa, core::ptr::null_mut()) == 0 {
                        ignored |= bit(sig);
                    }
                }
            }
        }
        // SAFETY: a zeroed sigset_t is valid storage; sigemptyset initializes it.
        let empty = unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            set
        };
        sys::thread_sigmask(libc::SIG_SETMASK, Some(&empty), None);
        ExecState { ignored, mask }
    }

    /// Puts back the ignored dispositions and the mask (the exec failed).
    pub fn restore(self) {
        block_all();
        for sig in 1..=64 {
            if self.ignored & bit(sig) != 0 {
                // SAFETY: a zeroed sigaction with SIG_IGN is valid.
                unsafe {
                    let mut sa: libc::sigaction = core::mem::zeroed();
                    sa.sa_sigaction = libc::SIG_IGN;
                    libc::sigaction(sig, &sa, core::ptr::null_mut());
                }
            }
        }
        set_mask(&self.mask);
    }
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
