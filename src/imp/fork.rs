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

/// Daemonize's double fork: a child in a new session forks the daemon (so that the daemon is
/// not a session leader), reports the daemon's pid on `w` as a `'p'` record (or a `'f'`
/// failure) and exits. Returns that intermediate child's pid in the caller, once it has
/// exited or exec'd nothing (the launcher then reaps it), and 0 in the daemon, whose signal
/// mask is the caller's. On failure before any child exists, the errno.
///
/// The intermediate is a vfork child: it shares the caller's memory, so the page tables are
/// copied once (for the daemon) instead of twice, and the intermediate's exit tears nothing
/// down — launch time no longer grows twice as fast as the heap. The caller's thread waits
/// while the intermediate runs. The kernel drops the rseq registration in a vfork child, so
/// the daemon registers again as the caller was ([`rseq`](crate::imp::rseq)); when that
/// registration cannot be named, two plain forks are used instead.
pub(crate) fn detach(w: libc::c_int) -> Res<libc::pid_t> {
    let rseq = crate::imp::rseq::current();
    if !cfg!(target_arch = "x86_64") || rseq == crate::imp::rseq::State::Unknown {
        return detach_two_forks(w);
    }
    // SAFETY: fflush(NULL) flushes every C stream; harmless without any.
    unsafe { libc::fflush(core::ptr::null_mut()) };
    // Every signal stays blocked in the intermediate: a handler run there would run in the
    // caller's memory.
    let mask = signals::block_all();
    let pid = vfork_call(intermediate, w);
    if let Err(e) = pid {
        signals::set_mask(&mask);
        // A seccomp filter that refuses vfork (ENOSYS/EPERM) but not fork: two forks.
        if e.0 == libc::ENOSYS || e.0 == libc::EPERM {
            return detach_two_forks(w);
        }
        return Err(e);
    }
    if pid == Ok(0) {
        // The daemon (its own memory now). Async-signal-safe: one syscall, sigprocmask.
        crate::imp::rseq::restore(rseq);
    }
    signals::set_mask(&mask);
    pid
}

// vfork without the compiler ever seeing a function that returns twice (Rust has no
// `returns_twice`, which is why libc deprecated `vfork`): `daemonkit_vfork_call(f, arg)`
// makes the vfork syscall and, in the child, calls `f(arg)` below its own frame, then
// returns 0 if `f` returns. To the caller it is one ordinary call that returns once per
// process: the pid (or -errno) in the parent, after the child has exited; 0 in whatever
// process `f` returns in (the daemon, forked by `f`). The child touches nothing at or
// above the stack pointer it was called with, so the caller's frames, the saved rbx and
// this call's return address are intact when the parent resumes. Hidden, and made local
// by packaging/link-capi.sh: not part of the ABI.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.daemonkit_vfork_call,\"ax\",@progbits",
    ".globl daemonkit_vfork_call",
    ".hidden daemonkit_vfork_call",
    ".type daemonkit_vfork_call,@function",
    ".p2align 4",
    "daemonkit_vfork_call:",
    ".cfi_startproc",
    "push rbx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rbx, -16",
    "mov rbx, rdi",
    "mov eax, 58", // SYS_vfork
    "syscall",
    "test rax, rax",
    "jnz .Ldaemonkit_vfork_parent",
    "mov rdi, rsi", // the syscall keeps rsi (it clobbers rax, rcx, r11)
    "call rbx",
    "xor eax, eax",
    ".Ldaemonkit_vfork_parent:",
    "pop rbx",
    ".cfi_adjust_cfa_offset -8",
    "ret",
    ".cfi_endproc",
    ".size daemonkit_vfork_call, .-daemonkit_vfork_call",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn daemonkit_vfork_call(f: extern "C" fn(libc::c_int), arg: libc::c_int) -> isize;
}

/// vfork; `f(arg)` in the child (see `daemonkit_vfork_call`). Returns the child's pid in
/// the parent once the child has exited, 0 where `f` returned.
#[cfg(target_arch = "x86_64")]
fn vfork_call(f: extern "C" fn(libc::c_int), arg: libc::c_int) -> Res<libc::pid_t> {
    // SAFETY: `f` only makes async-signal-safe calls (and the C library's fork) and either
    // _exits or returns in a forked process; signals are blocked by the caller.
    let r = unsafe { daemonkit_vfork_call(f, arg) };
    if r < 0 {
        Err(Errno(-r as libc::c_int))
    } else {
        Ok(r as libc::pid_t)
    }
}
#[cfg(not(target_arch = "x86_64"))]
fn vfork_call(_f: extern "C" fn(libc::c_int), _arg: libc::c_int) -> Res<libc::pid_t> {
    Err(Errno(libc::ENOSYS))
}

/// The intermediate child, in the caller's memory (a vfork child): new session, fork the
/// daemon, report its pid, `_exit`. Returns only in the daemon. Async-signal-safe but for
/// the C library's fork, whose parent side in here takes and releases the same locks the
/// caller's own fork would.
extern "C" fn intermediate(w: libc::c_int) {
    // SAFETY: prctl/setsid with plain arguments; fork (the daemon gets a copy of the memory
    // as the caller left it, its signals still blocked); _exit leaves without running
    // anything of the caller's.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        libc::setsid();
        let pid = libc::fork();
        if pid == 0 {
            return;
        }
        if pid < 0 {
            crate::imp::daemon::report(w, b'f', 1, b"daemonize: second fork failed");
            libc::_exit(1);
        }
        report_pid(w, pid);
        libc::_exit(0);
    }
}

/// The `'p'` record: the daemon's pid, from the intermediate child. Async-signal-safe.
fn report_pid(w: libc::c_int, pid: libc::pid_t) {
    let mut rec = [b'p', 0, 0, 0, 0];
    rec[1..].copy_from_slice(&pid.to_le_bytes());
    let _ = crate::sys::write_all(w, &rec);
}

/// [`detach`] with two plain forks (each copies the page tables), for a thread whose rseq
/// registration could not be named.
fn detach_two_forks(w: libc::c_int) -> Res<libc::pid_t> {
    let pid = fork(InChild::Restore)?;
    if pid > 0 {
        return Ok(pid);
    }
    // SAFETY: prctl/setsid with plain arguments in the child.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        libc::setsid();
    }
    match fork(InChild::Restore) {
        Ok(0) => Ok(0),
        Ok(pid) => {
            report_pid(w, pid);
            // SAFETY: the intermediate child leaves at once.
            unsafe { libc::_exit(0) }
        }
        Err(_) => {
            crate::imp::daemon::report(w, b'f', 1, b"daemonize: second fork failed");
            // SAFETY: leaving the intermediate child.
            unsafe { libc::_exit(1) }
        }
    }
}
