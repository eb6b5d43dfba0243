//! The Rust layer: the supervisor with closures.

use super::*;
use crate::exec::rust::CArgv;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// A supervisor event (see [`event`] for the kinds and the meaning of `pid`/`value`).
/// `Display` gives the library's one description ([`describe_event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: i32,
    pub pid: i32,
    pub value: i32,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut b = sys::Buf::<EVENT_TEXT_MAX>::new();
        describe_event(self.kind, self.pid, self.value, &mut b);
        f.write_str(&String::from_utf8_lossy(b.as_bytes()))
    }
}

type WorkerBox<'a> = Box<dyn FnMut(u32) -> i32 + 'a>;
type HookBox<'a> = Box<dyn FnMut(u32) + 'a>;
type EventBox<'a> = Box<dyn FnMut(Event) + 'a>;
type StdioBox<'a> = Box<dyn FnMut(u32) -> Option<std::os::fd::OwnedFd> + 'a>;

extern "C" fn worker_tramp(ctx: *mut c_void, index: u32) -> c_int {
    // SAFETY: ctx points to the WorkerBox owned by the Prefork that is running.
    let f = unsafe { &mut *(ctx as *mut WorkerBox) };
    f(index)
}
extern "C" fn hook_tramp(ctx: *mut c_void, index: u32) {
    // SAFETY: ctx points to the HookBox owned by the running Prefork.
    let f = unsafe { &mut *(ctx as *mut HookBox) };
    f(index)
}
extern "C" fn stdio_tramp(ctx: *mut c_void, index: u32) -> c_int {
    use std::os::fd::IntoRawFd;
    // SAFETY: ctx points to the StdioBox owned by the running Prefork.
    let f = unsafe { &mut *(ctx as *mut StdioBox) };
    f(index).map_or(-1, |fd| fd.into_raw_fd())
}
extern "C" fn event_tramp(ctx: *mut c_void, kind: c_int, pid: i32, value: i32) {
    // SAFETY: ctx points to the EventBox owned by the running Prefork.
    let f = unsafe { &mut *(ctx as *mut EventBox) };
    f(Event { kind, pid, value })
}

/// A prefork master built from closures.
///
/// ```no_run
/// use daemonkit::supervisor::rust::Prefork;
/// let listener = daemonkit::rust::bind_tcp("127.0.0.1:0", false).unwrap();
/// let outcome = Prefork::new(4)
///     .listener(&listener)
///     .run(|_index| { /* serve on `listener`, call daemonkit::ready() */ 0 })
///     .unwrap();
/// # let _ = outcome;
/// ```
pub struct Prefork<'a> {
    core: Box<Supervisor>,
    hook: Option<Box<HookBox<'a>>>,
    events: Option<Box<EventBox<'a>>>,
    stdio: Option<Box<StdioBox<'a>>>,
    upgrade: Option<CArgv>,
    exec: Option<CArgv>,
    names: Option<CString>,
    pidfile: Option<&'a mut crate::Pidfile>,
    error: Option<io::Error>,
}

impl<'a> Prefork<'a> {
    /// A master for `workers` workers (1..=256).
    pub fn new(workers: u32) -> Self {
        let mut core = Box::new(Supervisor::new());
        core.workers = workers;
        Prefork {
            core,
            hook: None,
            events: None,
            stdio: None,
            upgrade: None,
            exec: None,
            names: None,
            pidfile: None,
            error: None,
        }
    }
    /// Graceful stop timeout (default 30 s); also what one worker stopped by TTOU or a
    /// rolling restart gets before KILL.
    pub fn graceful_timeout(mut self, t: Duration) -> Self {
        self.core.graceful_ms = t.as_millis().min(u32::MAX as u128) as u32;
        self
    }
    /// How long a worker may take to call `daemonkit::ready()` (default 2 s).
    pub fn ready_timeout(mut self, t: Duration) -> Self {
        self.core.ready_timeout_ms = t.as_millis().min(u32::MAX as u128) as u32;
        self
    }
    /// A listener the workers inherit and an upgrade passes on.
    pub fn listener(mut self, fd: &impl AsRawFd) -> Self {
        if let Err(e) = self.core.add_listener(fd.as_raw_fd()) {
            self.error = Some(io::Error::from_raw_os_error(e.0));
        }
        self
    }
    /// A listener as a pair of `SO_REUSEPORT` sockets on one address (`a` bound first):
    /// rolling restarts that lose no freshly accepted connection (see
    /// [`super::Supervisor::add_listener_pair`]).
    pub fn listener_pair(mut self, a: &impl AsRawFd, b: &impl AsRawFd) -> Self {
        if let Err(e) = self.core.add_listener_pair(a.as_raw_fd(), b.as_raw_fd()) {
            self.error = Some(io::Error::new(
                io::Error::from_raw_os_error(e.0).kind(),
                format!(
                    "listener pair: {} (two listening TCP sockets with SO_REUSEPORT on one \
                     address)",
                    io::Error::from_raw_os_error(e.0)
                ),
            ));
        }
        self
    }
    /// `LISTEN_FDNAMES` for upgrades and exec'd workers.
    pub fn listen_names(mut self, names: &str) -> Self {
        self.names = CString::new(names).ok();
        self
    }
    /// The PID file: unlinked after a graceful stop, handed over on upgrade.
    pub fn pidfile(mut self, pf: &'a mut crate::Pidfile) -> Self {
        self.pidfile = Some(pf);
        self
    }
    /// Enables USR2 upgrades to `argv` (see [`crate::exec::rust::self_argv`]).
    pub fn upgrade<S: AsRef<OsStr>>(mut self, argv: &[S], timeout: Duration) -> Self {
        match CArgv::new(argv) {
            Ok(a) => self.upgrade = Some(a),
            Err(e) => self.error = Some(e),
        }
        self.core.upgrade_timeout_ms = timeout.as_millis().clamp(1, u32::MAX as u128) as u32;
        self
    }
    /// Runs `argv` in each worker instead of a closure (listeners as `LISTEN_FDS`).
    pub fn exec<S: AsRef<OsStr>>(mut self, argv: &[S]) -> Self {
        match CArgv::new(argv) {
            Ok(a) => self.exec = Some(a),
            Err(e) => self.error = Some(e),
        }
        self
    }
    /// A hook run in each worker right after the fork.
    pub fn post_fork(mut self, f: impl FnMut(u32) + 'a) -> Self {
        self.hook = Some(Box::new(Box::new(f)));
        self
    }
    /// The signal that stops a worker (default SIGTERM; Starman's graceful stop is SIGQUIT).
    pub fn stop_signal(mut self, sig: c_int) -> Self {
        if crate::signals::pipeable(sig) {
            self.core.stop_signal = sig;
        } else {
            self.error = Some(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("stop signal {sig}: not a signal a worker can handle"),
            ));
        }
        self
    }
    /// The restart policy: the crash-loop backoff's cap (default 8 s), and whether to give
    /// up after `n` crashes within `window` (`run` then returns [`Outcome::GaveUp`]).
    pub fn restart(mut self, max_backoff: Duration, give_up: Option<(u32, Duration)>) -> Self {
        self.core.max_backoff_ms = max_backoff.as_millis().clamp(1, u32::MAX as u128) as u32;
        match give_up {
            Some((n, w)) if n > super::MAX_GIVE_UP || n == 0 || w.is_zero() => {
                self.error = Some(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("give up after {n} crashes in {w:?}: 1 to 64 crashes, a window > 0"),
                ))
            }
            Some((n, w)) => self.core.give_up = (n, w.as_millis().min(u32::MAX as u128) as u32),
            None => self.core.give_up = (0, 0),
        }
        self
    }
    /// Init duties ([`super::REAP_ALL`], [`super::ONCE`], [`super::SIGNAL_GROUP`]).
    pub fn flags(mut self, flags: u32) -> Self {
        self.core.flags = flags;
        self
    }
    /// Gives each worker its own stdout/stderr: `f(index)` runs in the master before each
    /// fork and returns the fd (e.g. a pipe's write end), or `None` to inherit.
    pub fn worker_output(
        mut self,
        f: impl FnMut(u32) -> Option<std::os::fd::OwnedFd> + 'a,
    ) -> Self {
        self.stdio = Some(Box::new(Box::new(f)));
        self
    }
    /// Receives every event (default: one line each on stderr).
    pub fn on_event(mut self, f: impl FnMut(Event) + 'a) -> Self {
        self.events = Some(Box::new(Box::new(f)));
        self
    }
    /// Runs the master until a graceful stop or a completed upgrade. `worker` runs in each
    /// forked worker; its return value is the worker's exit status.
    pub fn run(self, worker: impl FnMut(u32) -> i32 + 'a) -> io::Result<Outcome> {
        self.run_with_status(worker).map(|(o, _)| o)
    }

    /// [`Prefork::run`], also returning the exit code the master should leave with (the
    /// worker's status in a [`super::ONCE`] run, else 0).
    pub fn run_with_status(
        mut self,
        worker: impl FnMut(u32) -> i32 + 'a,
    ) -> io::Result<(Outcome, i32)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut w: Box<WorkerBox> = Box::new(Box::new(worker));
        if self.exec.is_none() {
            self.core.worker = Some((worker_tramp, (&mut *w as *mut WorkerBox).cast()));
        }
        if let Some(h) = self.hook.as_mut() {
            self.core.post_fork = Some((hook_tramp, (&mut **h as *mut HookBox).cast()));
        }
        if let Some(f) = self.stdio.as_mut() {
            self.core.stdio = Some((stdio_tramp, (&mut **f as *mut StdioBox).cast()));
        }
        if let Some(e) = self.events.as_mut() {
            self.core.on_event = Some((event_tramp, (&mut **e as *mut EventBox).cast()));
        }
        if let Some(a) = &self.upgrade {
            self.core.upgrade_argv = a.as_ptr();
        }
        if let Some(a) = &self.exec {
            self.core.exec_argv = a.as_ptr();
        }
        if let Some(n) = &self.names {
            self.core.names = n.as_ptr();
        }
        if let Some(pf) = self.pidfile.as_mut() {
            self.core.pidfile = pf.core_mut();
        }
        let r = self.core.run().map_err(|e| {
            let os = io::Error::from_raw_os_error(e.0);
            if e.0 == libc::EBUSY {
                return io::Error::new(
                    os.kind(),
                    "supervisor: signals are already registered in this process (a live \
                     Signals): the supervisor owns the signal pipe while it runs; drop it \
                     first",
                );
            }
            io::Error::new(os.kind(), format!("supervisor: {os}"))
        });
        drop(w);
        r.map(|o| (o, self.core.exit_status()))
    }
}
