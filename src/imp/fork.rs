//! The one fork prelude. Every fork in the library goes through it: [`fork`] for the
//! upgrade's new generation (`exec::spawn`) and the supervisor's workers, [`detach`] for
//! daemonize's double fork. It
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
    with_prelude(in_child, || {
        // SAFETY: fork; the child runs only async-signal-safe code until it returns to a
        // caller that does the same until exec or _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            Err(Errno::last())
        } else {
            Ok(pid)
        }
    })
}

/// The prelude around `spawn` (a fork of some kind: the pid in the parent, 0 in the child):
/// C stdio flushed, every signal blocked across it, the mask restored in the parent and, in
/// the child, the signal state per `in_child`.
fn with_prelude(in_child: InChild, spawn: impl FnOnce() -> Res<libc::pid_t>) -> Res<libc::pid_t> {
    // SAFETY: fflush(NULL) flushes every C stream; harmless without any.
    unsafe { libc::fflush(core::ptr::null_mut()) };
    let mask = signals::block_all();
    match spawn() {
        Ok(0) => {
            match in_child {
                InChild::Restore => signals::set_mask(&mask),
                InChild::KeepBlocked => {}
                InChild::Reset => signals::reset_child(),
            }
            Ok(0)
        }
        r => {
            signals::set_mask(&mask);
            r
        }
    }
}

/// Daemonize's double fork: a child in a new session forks the daemon (so that the daemon is
/// not a session leader), reports the daemon's pid on `w` as a `'p'` record (or a `'f'`
/// failure) and exits. Returns that intermediate child's pid in the caller (the launcher then
/// reaps it), and 0 in the daemon; both get the caller's signal mask back. On failure before
/// any child exists, the errno.
///
/// The intermediate is a vfork child: it shares the caller's memory, so the page tables are
/// copied once (for the daemon) instead of twice, and the intermediate's exit tears nothing
/// down — launch time no longer grows twice as fast as the heap. The caller's thread waits
/// while the intermediate runs. The kernel drops the rseq registration in a vfork child, so
/// the daemon registers again as the caller was ([`rseq`](crate::imp::rseq)). The same
/// intermediate runs in a plain fork when that registration cannot be named, off x86-64, or
/// when a seccomp filter refuses vfork (ENOSYS/EPERM) but not fork.
pub(crate) fn detach(w: libc::c_int) -> Res<libc::pid_t> {
    use crate::imp::rseq::{self, State};
    let rseq = rseq::current();
    // Every signal stays blocked in the intermediate (a handler run in a vfork child would
    // run in the caller's memory) and in the daemon until the rseq registration is back.
    with_prelude(InChild::Restore, || {
        let pid = match rseq {
            State::Unknown => fork_call(intermediate, w),
            _ => match vfork_call(intermediate, w) {
                Err(Errno(e)) if e == libc::ENOSYS || e == libc::EPERM => {
                    fork_call(intermediate, w)
                }
                r => r,
            },
        };
        if pid == Ok(0) {
            // The daemon (its own memory now). Async-signal-safe: one syscall.
            rseq::restore(rseq);
        }
        pid
    })
}

/// fork; `f(arg)` in the child, returning 0 where `f` returns (as [`vfork_call`] does).
fn fork_call(f: extern "C" fn(libc::c_int), arg: libc::c_int) -> Res<libc::pid_t> {
    // SAFETY: fork; the child runs `f`, which only makes async-signal-safe calls (and the C
    // library's fork), with every signal blocked by the caller.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        f(arg);
    }
    Ok(pid)
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

/// The intermediate child (a vfork child in the caller's memory, or a plain fork): new
/// session, fork the daemon, report its pid, `_exit`. Returns only in the daemon. Async-signal-safe but for
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
        crate::imp::daemon::report_pid(w, pid);
        libc::_exit(0);
    }
}
