//! Zero-downtime restarts that keep every listening socket open.
//!
//! * [`reexec`] replaces the running program image with a fresh one, same pid: listeners are
//!   moved to fds 3.. and described by `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`, the locked
//!   PID file fd follows in `DAEMONKIT_PIDFILE_FD` (so the lock is never released), and
//!   `DAEMONKIT_REEXEC=1` tells [`crate::imp::daemon::daemonize`] not to fork again.
//! * [`spawn`] + [`wait_ready`] start a new generation as a child (the upgrade): the same fds
//!   and variables plus a readiness pipe in `DAEMONKIT_READY_FD`; the old generation waits for
//!   `ready`, and on failure or timeout kills the new one and keeps serving (rollback).
//!
//! The environment and argument vectors are prepared before `fork`; between `fork` and
//! `execve` the child only moves fds, writes its pid into a prepared buffer and calls
//! async-signal-safe functions.

use crate::imp::daemon::{self, Verdict, MAX_MESSAGE};
use crate::sys::{self, Errno, Res};
use core::ffi::{c_char, c_int, CStr};

extern "C" {
    static environ: *const *const c_char;
}

/// Most fds passed on (listeners + PID file + readiness pipe).
pub const MAX_FDS: usize = 64;
const MAX_ARGS: usize = 4096;

/// What to execute and what to hand over.
pub struct Spec<'a> {
    /// NULL-terminated argument vector; `argv[0]` is the path executed (absolute: a daemon's
    /// cwd is `/`).
    pub argv: *const *const c_char,
    /// Listening fds, passed as fds 3.. in this order.
    pub fds: &'a [c_int],
    /// `LISTEN_FDNAMES` (colon-separated), if any.
    pub names: Option<&'a CStr>,
    /// The locked PID file fd to hand over, or -1.
    pub pidfile_fd: c_int,
}

/// Variables a worker started by the supervisor must not inherit: the master alone speaks
/// to systemd, and the Server::Starter variables are the supervisor's own for its workers.
const WORKER_SKIP: [&[u8]; 5] = [
    b"NOTIFY_SOCKET=",
    b"WATCHDOG_USEC=",
    b"WATCHDOG_PID=",
    b"SERVER_STARTER_PORT=",
    b"SERVER_STARTER_GENERATION=",
];

/// What an exec'd worker is told in Server::Starter's terms (Starman, Starlet, Gazelle and
/// every `Plack::Handler` that speaks it read them): `SERVER_STARTER_PORT`, the listeners
/// as `ADDR=FD` joined by `;` (`127.0.0.1:8080=3;/run/app.sock=4`), and
/// `SERVER_STARTER_GENERATION`, 1 for the first workers, +1 per rolling restart.
pub(crate) struct Starter<'a> {
    pub port: &'a [u8],
    pub generation: u32,
}

const SKIP: [&[u8]; 6] = [
    b"LISTEN_PID=",
    b"LISTEN_FDS=",
    b"LISTEN_FDNAMES=",
    b"DAEMONKIT_READY_FD=",
    b"DAEMONKIT_PIDFILE_FD=",
    b"DAEMONKIT_REEXEC=",
];

/// Fixed-size variable storage, malloc'd so its address is stable across fork.
#[repr(C)]
struct Vars {
    listen_pid: [u8; 32],
    listen_fds: [u8; 32],
    starter_generation: [u8; 48],
    pidfile: [u8; 48],
    ready: [u8; 48],
    reexec: [u8; 24],
}

/// A prepared environment: `envp` points into `vars`, `names` and the caller's environ.
struct Env {
    envp: *mut *const c_char,
    vars: *mut Vars,
    names: *mut c_char,
    starter_port: *mut c_char,
}

impl Drop for Env {
    fn drop(&mut self) {
        // SAFETY: all three are NULL or blocks from malloc owned by this Env.
        unsafe {
            libc::free(self.envp.cast());
            libc::free(self.vars.cast());
            libc::free(self.names.cast());
            libc::free(self.starter_port.cast());
        }
    }
}

/// `NAME=value` (NUL-terminated) in a new malloc'd block, or NULL when out of memory.
fn assign_bytes(name: &[u8], value: &[u8]) -> *mut c_char {
    // SAFETY: malloc of plain memory, checked; we copy name + value + NUL into it.
    unsafe {
        let p: *mut u8 = libc::malloc(name.len() + value.len() + 1).cast();
        if p.is_null() {
            return core::ptr::null_mut();
        }
        core::ptr::copy_nonoverlapping(name.as_ptr(), p, name.len());
        core::ptr::copy_nonoverlapping(value.as_ptr(), p.add(name.len()), value.len());
        *p.add(name.len() + value.len()) = 0;
        p.cast()
    }
}

/// Writes `NAME=value` NUL-terminated into `dst`. Async-signal-safe (stack only): `set_pid`
/// uses it between fork and exec.
fn assign(dst: &mut [u8], name: &[u8], value: u64) {
    let mut b = sys::Buf::<48>::new();
    b.push(name).push_u64(value);
    let n = b.len.min(dst.len() - 1);
    dst[..n].copy_from_slice(&b.data[..n]);
    dst[n] = 0;
}

impl Env {
    /// Builds the new environment: the current one minus the variables this module owns,
    /// plus `LISTEN_*` for `nfds` fds, the PID file and readiness fd numbers, and the re-exec
    /// marker.
    fn build(
        nfds: usize,
        names: Option<&CStr>,
        pidfile_fd: Option<c_int>,
        ready_fd: Option<c_int>,
        reexec: bool,
        worker: Option<&Starter>,
    ) -> Res<Env> {
        // SAFETY: environ is the process's environment array, NULL-terminated.
        let mut count = 0usize;
        unsafe {
            let mut p = environ;
            while !p.is_null() && !(*p).is_null() {
                count += 1;
                p = p.add(1);
            }
        }
        // SAFETY: malloc of plain memory, checked below; zeroed via calloc.
        let mut env = unsafe {
            Env {
                envp: libc::calloc(count + 10, core::mem::size_of::<*const c_char>()).cast(),
                vars: libc::calloc(1, core::mem::size_of::<Vars>()).cast(),
                names: core::ptr::null_mut(),
                starter_port: core::ptr::null_mut(),
            }
        };
        if env.envp.is_null() || env.vars.is_null() {
            return Err(Errno(libc::ENOMEM));
        }
        // SAFETY: vars was just allocated and zeroed; we hold the only pointer.
        let vars = unsafe { &mut *env.vars };
        let mut k = 0usize;
        let mut push = |p: *const c_char, env: &mut Env| {
            // SAFETY: envp has count + 10 slots; at most count + 8 are pushed.
            unsafe { *env.envp.add(k) = p };
            k += 1;
        };
        // SAFETY: iterating environ as above; each entry is a valid C string.
        unsafe {
            for i in 0..count {
                let e = *environ.add(i);
                let bytes = CStr::from_ptr(e).to_bytes();
                if SKIP.iter().any(|s| bytes.starts_with(s))
                    || (worker.is_some() && WORKER_SKIP.iter().any(|s| bytes.starts_with(s)))
                {
                    continue;
                }
                push(e, &mut env);
            }
        }
        if nfds > 0 {
            assign(&mut vars.listen_pid, b"LISTEN_PID=", 0); // the child writes its pid here
            assign(&mut vars.listen_fds, b"LISTEN_FDS=", nfds as u64);
            push(vars.listen_pid.as_ptr().cast(), &mut env);
            push(vars.listen_fds.as_ptr().cast(), &mut env);
            if let Some(names) = names {
                env.names = assign_bytes(b"LISTEN_FDNAMES=", names.to_bytes());
                if env.names.is_null() {
                    return Err(Errno(libc::ENOMEM));
                }
                push(env.names, &mut env);
            }
            if let Some(st) = worker.filter(|st| !st.port.is_empty()) {
                env.starter_port = assign_bytes(b"SERVER_STARTER_PORT=", st.port);
                if env.starter_port.is_null() {
                    return Err(Errno(libc::ENOMEM));
                }
                push(env.starter_port, &mut env);
                assign(
                    &mut vars.starter_generation,
                    b"SERVER_STARTER_GENERATION=",
                    st.generation as u64,
                );
                push(vars.starter_generation.as_ptr().cast(), &mut env);
            }
        }
        if let Some(fd) = pidfile_fd {
            assign(&mut vars.pidfile, b"DAEMONKIT_PIDFILE_FD=", fd as u64);
            push(vars.pidfile.as_ptr().cast(), &mut env);
        }
        if let Some(fd) = ready_fd {
            assign(&mut vars.ready, b"DAEMONKIT_READY_FD=", fd as u64);
            push(vars.ready.as_ptr().cast(), &mut env);
        }
        if reexec {
            assign(&mut vars.reexec, b"DAEMONKIT_REEXEC=", 1);
            push(vars.reexec.as_ptr().cast(), &mut env);
        }
        Ok(env)
    }

    /// Writes `pid` into the prepared `LISTEN_PID=` slot. Async-signal-safe.
    fn set_pid(&mut self, pid: i32) {
        // SAFETY: vars is a live allocation owned by self.
        let vars = unsafe { &mut *self.vars };
        if vars.listen_pid[0] == 0 {
            return;
        }
        assign(&mut vars.listen_pid, b"LISTEN_PID=", pid as u64);
    }
}

/// Checks the argument vector: non-NULL, `argv[0]` present and executable, bounded.
fn check_argv(argv: *const *const c_char) -> Res<()> {
    if argv.is_null() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: argv is a NULL-terminated array per the contract; we read at most MAX_ARGS.
    unsafe {
        if (*argv).is_null() {
            return Err(Errno(libc::EINVAL));
        }
        let mut i = 0;
        while !(*argv.add(i)).is_null() {
            sys::cstr_arg(*argv.add(i), 1 << 17)?;
            i += 1;
            if i > MAX_ARGS {
                return Err(Errno(libc::E2BIG));
            }
        }
        sys::cvt(libc::access(*argv, libc::X_OK))?;
    }
    Ok(())
}

fn check_fds(fds: &[c_int]) -> Res<()> {
    // Room is always kept for the PID file and the readiness pipe.
    if fds.len() > MAX_FDS - 2 {
        return Err(Errno(libc::EINVAL));
    }
    for &fd in fds {
        if !sys::fd_valid(fd) {
            return Err(Errno(libc::EBADF));
        }
    }
    Ok(())
}

/// Moves `src[i]` to fd `3 + i` for every i, clearing close-on-exec on the targets; `high`
/// receives the intermediate duplicates (close-on-exec). With `saved`, first duplicates
/// whatever occupied the target fds so [`restore`] can undo it; a target that cannot be
/// saved (`EMFILE`) stops it before any target is touched. `high` and `saved` are filled as
/// it goes, so after an error [`restore`] puts everything back and closes every duplicate.
/// Async-signal-safe (fcntl and dup2 only).
fn arrange(
    src: &[c_int],
    high: &mut [c_int; MAX_FDS],
    saved: Option<&mut [c_int; MAX_FDS]>,
) -> Res<()> {
    let n = src.len();
    let base = 3 + n as c_int;
    if let Some(saved) = saved {
        for (i, slot) in saved.iter_mut().enumerate().take(n) {
            // SAFETY: F_DUPFD_CLOEXEC on a possibly-closed fd just fails with EBADF.
            let r = unsafe { libc::fcntl(3 + i as c_int, libc::F_DUPFD_CLOEXEC, base) };
            if r < 0 && sys::get_errno() != libc::EBADF {
                return Err(Errno::last());
            }
            *slot = r;
        }
    }
    for (h, &fd) in high.iter_mut().zip(src) {
        // SAFETY: duplicating a valid fd above the target range.
        *h = sys::cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base) })?;
    }
    for (i, &h) in high.iter().enumerate().take(n) {
        // SAFETY: dup2 onto the target; it clears FD_CLOEXEC on the new descriptor.
        sys::retry(|| unsafe { libc::dup2(h, 3 + i as c_int) })?;
    }
    Ok(())
}

/// Undoes [`arrange`] (complete or stopped by an error) in the same process: each target
/// gets its saved descriptor back with its original flags (`flags[i]`, negative when the
/// target was closed: then whatever arrange put there is closed), and every duplicate is
/// closed.
fn restore(n: usize, high: &[c_int; MAX_FDS], saved: &[c_int; MAX_FDS], flags: &[c_int; MAX_FDS]) {
    for i in 0..n {
        let t = 3 + i as c_int;
        if saved[i] >= 0 {
            // SAFETY: putting the original descriptor back, with its original flags.
            unsafe {
                libc::dup2(saved[i], t);
                libc::fcntl(t, libc::F_SETFD, flags[i]);
            }
        } else if flags[i] < 0 {
            sys::close(t);
        }
        // else: open but not saved, so arrange stopped before touching any target.
        sys::close(saved[i]);
        sys::close(high[i]);
    }
}

/// Re-executes this process (same pid) with `spec`. Returns only on failure, with every fd
/// put back as it was: `EINVAL`/`EBADF` for bad arguments, `EACCES`/`ENOENT` when `argv[0]`
/// cannot be executed, or execve's error.
pub fn reexec(spec: &Spec) -> Res<()> {
    check_argv(spec.argv)?;
    let has_pf = spec.pidfile_fd >= 0;
    check_fds(spec.fds)?;
    if has_pf && !sys::fd_valid(spec.pidfile_fd) {
        return Err(Errno(libc::EBADF));
    }
    let n = spec.fds.len();
    let pf_target = if has_pf { Some(3 + n as c_int) } else { None };
    let mut env = Env::build(n, spec.names, pf_target, None, true, None)?;
    env.set_pid(sys::getpid());
    let mut src = [-1; MAX_FDS];
    src[..n].copy_from_slice(spec.fds);
    if has_pf {
        src[n] = spec.pidfile_fd;
    }
    let total = n + has_pf as usize;
    let mut saved = [-1; MAX_FDS];
    let mut high = [-1; MAX_FDS];
    let mut flags = [-1; MAX_FDS];
    for (i, f) in flags.iter_mut().enumerate().take(total) {
        // SAFETY: F_GETFD on any integer is harmless (-1 for a closed fd).
        *f = unsafe { libc::fcntl(3 + i as c_int, libc::F_GETFD) };
    }
    if let Err(e) = arrange(&src[..total], &mut high, Some(&mut saved)) {
        // Every fd as it was, also when the fd table is full (EMFILE).
        restore(total, &high, &saved, &flags);
        return Err(e);
    }
    // SAFETY: ensure C stdio output is not lost across the exec.
    unsafe { libc::fflush(core::ptr::null_mut()) };
    // The new image starts with the signal state a program has when started from outside:
    // ignored signals back to their default (execve keeps SIG_IGN; handlers reset by
    // themselves) and an empty mask (execve keeps the mask). Put back if execve fails.
    let signals = crate::imp::signals::ExecState::reset();
    // SAFETY: argv and envp are valid NULL-terminated arrays of C strings.
    unsafe { libc::execve(*spec.argv, spec.argv, env.envp) };
    let e = Errno::last();
    signals.restore();
    restore(total, &high, &saved, &flags);
    Err(e)
}

/// Starts a new generation as a child: fork, reset signals, hand over the listeners, the PID
/// file fd and a readiness pipe, `execve`. Returns `(pid, readiness read fd)`.
pub fn spawn(spec: &Spec) -> Res<(i32, c_int)> {
    check_argv(spec.argv)?;
    let has_pf = spec.pidfile_fd >= 0;
    check_fds(spec.fds)?;
    if has_pf && !sys::fd_valid(spec.pidfile_fd) {
        return Err(Errno(libc::EBADF));
    }
    let n = spec.fds.len();
    let pf_target = if has_pf { Some(3 + n as c_int) } else { None };
    let ready_target = 3 + n as c_int + has_pf as c_int;
    let mut env = Env::build(n, spec.names, pf_target, Some(ready_target), false, None)?;
    let [r, w] = sys::pipe_cloexec(false)?;
    let mut src = [-1; MAX_FDS];
    src[..n].copy_from_slice(spec.fds);
    if has_pf {
        src[n] = spec.pidfile_fd;
    }
    src[n + has_pf as usize] = w;
    let total = n + has_pf as usize + 1;
    // The child starts with default dispositions and an empty mask (signals blocked across
    // the fork: see `fork`), and runs only async-signal-safe code until execve or _exit.
    let pid = match crate::imp::fork::fork(crate::imp::fork::InChild::Reset) {
        Ok(pid) => pid,
        Err(e) => {
            sys::close(r);
            sys::close(w);
            return Err(e);
        }
    };
    if pid == 0 {
        env.set_pid(sys::getpid());
        let mut high = [-1; MAX_FDS];
        if arrange(&src[..total], &mut high, None).is_ok() {
            // SAFETY: argv and envp are valid NULL-terminated arrays of C strings.
            unsafe { libc::execve(*spec.argv, spec.argv, env.envp) };
        }
        let mut b = sys::Buf::<128>::new();
        b.push(b"upgrade: cannot execute the new program (errno ")
            .push_u64(sys::get_errno() as u64)
            .push(b")");

        // The readiness pipe is at `ready_target` only if arrange got that far: its
        // duplicate `high[total - 1]` exists once every duplicate was made, and before that
        // no target was touched, so `w` still is the pipe. (Writing to `ready_target` after
        // a failed arrange, EMFILE, put the record into whatever fd had that number.)
        let pipe = if high[total - 1] >= 0 {
            high[total - 1]
        } else {
            w
        };
        crate::imp::daemon::report(pipe, b'f', 127, b.as_bytes());
        // SAFETY: leaving the failed child without running the parent's handlers.
        unsafe { libc::_exit(127) };
    }
    sys::close(w);
    drop(env);
    Ok((pid, r))
}

/// Outcome of [`wait_ready`] when the new generation did not become ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// It reported a failure (code, message length in the buffer).
    Failed(u8, usize),
    /// It exited or closed the channel first.
    Exited,
    /// The timeout expired.
    TimedOut,
}

/// Waits up to `timeout_ms` (0: forever) for the generation `pid` to report ready on `rfd`
/// (closed in every case). On failure the child is killed (SIGKILL) and reaped.
pub fn wait_ready(
    pid: i32,
    rfd: c_int,
    timeout_ms: u32,
    msg: &mut [u8; MAX_MESSAGE],
) -> Result<(), Failure> {
    let mut dummy = 0;
    let v = daemon::read_verdict(rfd, timeout_ms, &mut dummy, msg);
    sys::close(rfd);
    let f = match v {
        Verdict::Ready => return Ok(()),
        Verdict::Failed { code, len } => Failure::Failed(code, len),
        Verdict::Closed => Failure::Exited,
        Verdict::TimedOut => Failure::TimedOut,
    };
    let _ = crate::imp::signals::send(pid, libc::SIGKILL);
    let mut st = 0;
    // Reaping our own child (EINTR retried: no zombie left behind).
    let _ = sys::waitpid(pid, &mut st, 0);
    Err(f)
}

/// A whole single-process upgrade: spawn, wait, and on failure rewrite the PID file with our
/// pid (the new generation may have written its own before failing). `ECANCELED` (it failed
/// or exited) or `ETIMEDOUT`; the message, if any, lands in `msg` with its length returned
/// through `msg_len`.
pub fn upgrade(
    spec: &Spec,
    pidfile: Option<&mut crate::imp::pidfile::PidFile>,
    timeout_ms: u32,
    msg: &mut [u8; MAX_MESSAGE],
    msg_len: &mut usize,
) -> Res<i32> {
    *msg_len = 0;
    let (pid, r) = spawn(spec)?;
    match wait_ready(pid, r, timeout_ms, msg) {
        Ok(()) => {
            // The new generation owns the file: do not keep its lock alive while draining.
            if let Some(pf) = pidfile {
                pf.let_go();
            }
            Ok(pid)
        }
        Err(f) => {
            if let Some(pf) = pidfile {
                let _ = pf.write();
            }
            match f {
                Failure::Failed(_, len) => {
                    *msg_len = len;
                    Err(Errno(libc::ECANCELED))
                }
                Failure::Exited => Err(Errno(libc::ECANCELED)),
                Failure::TimedOut => Err(Errno(libc::ETIMEDOUT)),
            }
        }
    }
}

/// An exec prepared in the parent for a worker child (the supervisor's program mode).
pub(crate) struct Prepared {
    env: Env,
    argv: *const *const c_char,
    src: [c_int; MAX_FDS],
    total: usize,
}

/// Prepares the environment for executing `argv` as a worker that receives `fds` as fds 3..
/// (`LISTEN_FDS`, and in Server::Starter's terms `starter`) and its readiness pipe after
/// them (`DAEMONKIT_READY_FD`).
pub(crate) fn prepare_worker(
    argv: *const *const c_char,
    fds: &[c_int],
    names: Option<&CStr>,
    starter: &Starter,
) -> Res<Prepared> {
    check_argv(argv)?;
    check_fds(fds)?;
    let n = fds.len();
    let env = Env::build(n, names, None, Some(3 + n as c_int), false, Some(starter))?;
    let mut src = [-1; MAX_FDS];
    src[..n].copy_from_slice(fds);
    Ok(Prepared {
        env,
        argv,
        src,
        total: n + 1,
    })
}

impl Prepared {
    /// In the forked child: put the fds in place and exec. Async-signal-safe; never returns.
    pub(crate) fn exec_in_child(&mut self, ready_w: c_int) -> ! {
        self.src[self.total - 1] = ready_w;
        self.env.set_pid(sys::getpid());
        let mut high = [-1; MAX_FDS];
        if arrange(&self.src[..self.total], &mut high, None).is_ok() {
            // SAFETY: argv and envp are valid NULL-terminated arrays of C strings.
            unsafe { libc::execve(*self.argv, self.argv, self.env.envp) };
        }
        let mut b = sys::Buf::<96>::new();
        b.push(b"daemonkit: worker: cannot execute program (errno ")
            .push_u64(sys::get_errno() as u64)
            .push(b")\n");
        let _ = sys::write_all(2, b.as_bytes());
        // SAFETY: leaving the failed child.
        unsafe { libc::_exit(127) }
    }
}
