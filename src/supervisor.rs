//! The prefork supervisor (C: `dk_supervisor_*`): a master that forks N workers sharing the
//! listeners and runs its own loop on the signal fd.
//!
//! * Workers start with default signal dispositions and an empty mask, without the PID file,
//!   the signal pipe or the other workers' pipes, run the [`Supervisor::post_fork`] hook,
//!   and die with the master. Each reports [`crate::daemon::ready`] when it serves.
//! * The master reaps only its own workers, respawns crashed ones with a backoff
//!   ([`Supervisor::restart`]), and reacts to signals: `HUP` rolling restart (a new worker
//!   is ready before an old one is stopped), `TTIN`/`TTOU` one more/fewer, `TERM`/`INT`/
//!   `QUIT` graceful stop, `USR1` log reopen forwarded to ready workers, `USR2` upgrade to a
//!   new master generation ([`Supervisor::upgrade`]).
//! * Every event reaches [`Supervisor::on_event`] (default: one line on stderr), its text
//!   from the library's one description ([`Event`]'s `Display`, C `dk_event_describe`).
//!
//! With tokio (feature `tokio`), `daemonkit::tokio` runs each worker on a runtime it builds
//! after the fork.
//!
//! A worker that stops the master through its parent pid, so the run below ends by itself:
//!
//! ```
//! use daemonkit::supervisor::{Outcome, Supervisor};
//! use std::time::Duration;
//! let listener = daemonkit::listen::tcp("127.0.0.1:0")?;
//! let outcome = Supervisor::new(2)
//!     .listener(&listener)
//!     .graceful_timeout(Duration::from_secs(5))
//!     .on_event(|e| eprintln!("doc: {e}"))
//!     .run(|index| {
//!         daemonkit::daemon::ready().unwrap();
//!         if index == 0 {
//!             // SAFETY: signalling our own master.
//!             unsafe { libc::kill(libc::getppid(), libc::SIGTERM) };
//!         }
//!         std::thread::sleep(Duration::from_secs(60)); // until the master's TERM
//!         0
//!     })?;
//! assert_eq!(outcome, Outcome::Stopped);
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{c_str, Error, Result};
use crate::exec::CArgv;
use crate::imp::supervisor as imp;
use crate::pidfile::Pidfile;
use crate::sys;
use core::ffi::{c_int, c_void};
use std::ffi::{CString, OsStr};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

pub use crate::imp::supervisor::Outcome;

/// The event kinds ([`Event::kind`]; C: `DK_EVENT_*`) and what `pid`/`value` carry.
pub mod event {
    pub use crate::imp::supervisor::event::{
        EXITED, GAVE_UP, KILLED, LOG_REOPENED, READY, RELOADED, RELOADING, RELOAD_FAILED,
        RESPAWN_DELAYED, SPAWNED, STOPPING, UPGRADE_FAILED, UPGRADE_READY, UPGRADE_STARTED,
        WORKERS_CHANGED, WORKER_FAILED, WORKER_READY,
    };
}

bitflags::bitflags! {
    /// Init duties of a master ([`Supervisor::flags`]; C: `DK_SUPERVISOR_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SupervisorFlags: u32 {
        /// Reap every child, not only the workers: orphans of the workers' descendants come
        /// to the master (as PID 1, or as the child subreaper `run` makes it). What an init
        /// in a container must do.
        const REAP_ALL = imp::REAP_ALL;
        /// One worker, run once (tini's model): not respawned; HUP, INT, QUIT, USR1 and USR2
        /// are forwarded to it (TERM as the stop signal); the master stops when it exits,
        /// and [`Supervisor::run_with_status`] returns its status.
        const ONCE = imp::ONCE;
        /// Each worker leads its own process group, and what the master sends it goes to
        /// the whole group (`tini -g`).
        const SIGNAL_GROUP = imp::SIGNAL_GROUP;
    }
}

/// A supervisor event: [`event`] names the kinds and what `pid`/`value` mean for each.
/// `Display` gives the library's one description (`worker 4242 started (index 0)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// One of the [`event`] constants.
    pub kind: i32,
    /// The worker's (or new generation's) pid, 0 when none.
    pub pid: i32,
    /// Kind-specific: an index, a wait status, a delay, a count.
    pub value: i32,
}

impl Event {
    /// Writes the line the supervisor prints for an event when no [`Supervisor::on_event`]
    /// is set (`daemonkit: worker 4242 started (index 0)`) to stderr, in one `write`, so
    /// that lines from several processes sharing a log never interleave.
    pub fn log(&self) {
        imp::default_log(self.kind, self.pid, self.value);
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b = sys::Buf::<{ imp::EVENT_TEXT_MAX }>::new();
        imp::describe_event(self.kind, self.pid, self.value, &mut b);
        f.write_str(&String::from_utf8_lossy(b.as_bytes()))
    }
}

type WorkerBox<'a> = Box<dyn FnMut(u32) -> i32 + 'a>;
type HookBox<'a> = Box<dyn FnMut(u32) + 'a>;
type EventBox<'a> = Box<dyn FnMut(Event) + 'a>;
type StdioBox<'a> = Box<dyn FnMut(u32) -> Option<OwnedFd> + 'a>;

extern "C" fn worker_tramp(ctx: *mut c_void, index: u32) -> c_int {
    // SAFETY: ctx points to the WorkerBox owned by the running Supervisor (run_with_status
    // keeps it alive until the core's run returns).
    let f = unsafe { &mut *(ctx as *mut WorkerBox) };
    f(index)
}
extern "C" fn hook_tramp(ctx: *mut c_void, index: u32) {
    // SAFETY: ctx points to the HookBox owned by the running Supervisor.
    let f = unsafe { &mut *(ctx as *mut HookBox) };
    f(index)
}
extern "C" fn stdio_tramp(ctx: *mut c_void, index: u32) -> c_int {
    // SAFETY: ctx points to the StdioBox owned by the running Supervisor.
    let f = unsafe { &mut *(ctx as *mut StdioBox) };
    f(index).map_or(-1, |fd| fd.into_raw_fd())
}
extern "C" fn event_tramp(ctx: *mut c_void, kind: c_int, pid: i32, value: i32) {
    // SAFETY: ctx points to the EventBox owned by the running Supervisor.
    let f = unsafe { &mut *(ctx as *mut EventBox) };
    f(Event { kind, pid, value })
}

fn millis(t: Duration) -> u32 {
    t.as_millis().min(u32::MAX as u128) as u32
}

/// A prefork master, configured with a builder (C: `dk_supervisor_new` …
/// `dk_supervisor_run`). A configuration error is kept and returned by `run`, so the
/// builder chains without `?` at every step.
pub struct Supervisor<'a> {
    core: Box<imp::Supervisor>,
    hook: Option<Box<HookBox<'a>>>,
    events: Option<Box<EventBox<'a>>>,
    stdio: Option<Box<StdioBox<'a>>>,
    upgrade: Option<CArgv>,
    exec: Option<CArgv>,
    names: Option<CString>,
    pidfile: Option<&'a mut Pidfile>,
    error: Option<Error>,
}

impl<'a> Supervisor<'a> {
    /// A master for `workers` workers (1..=256). Defaults: 30 s graceful timeout, workers
    /// assumed ready 2 s after their start without a report, no upgrades.
    pub fn new(workers: u32) -> Self {
        let mut core = Box::new(imp::Supervisor::new());
        core.workers = workers;
        let error = (workers == 0 || workers as usize > imp::MAX_WORKERS)
            .then(|| Error::invalid(format!("supervisor: {workers} workers: 1 to 256")));
        Supervisor {
            core,
            hook: None,
            events: None,
            stdio: None,
            upgrade: None,
            exec: None,
            names: None,
            pidfile: None,
            error,
        }
    }

    fn keep(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }

    /// Graceful stop timeout (default 30 s); also what one worker stopped by TTOU or a
    /// rolling restart gets before KILL.
    pub fn graceful_timeout(mut self, t: Duration) -> Self {
        self.core.graceful_ms = millis(t);
        self
    }

    /// How long a worker may take to call [`crate::daemon::ready`] (default 2 s; then it is
    /// assumed ready).
    pub fn ready_timeout(mut self, t: Duration) -> Self {
        self.core.ready_timeout_ms = millis(t);
        self
    }

    /// A listener the workers inherit and an upgrade passes on (C:
    /// `dk_supervisor_add_listener`). It must outlive the run.
    pub fn listener(mut self, fd: &'a impl AsFd) -> Self {
        let raw = fd.as_fd().as_raw_fd();
        if let Err(e) = self.core.add_listener(raw) {
            self.keep(Error::os(format!("supervisor: listener fd {raw}"), e));
        }
        self
    }

    /// A listener as a pair of `SO_REUSEPORT` sockets on one address, `a` bound first
    /// ([`crate::listen::tcp_pair`]; C: `dk_supervisor_add_listener_pair`): each worker
    /// generation accepts on one of the two, and a rolling restart steers new connections to
    /// the new generation's socket before the old workers stop, so none is lost in an old
    /// worker's backlog.
    pub fn listener_pair(mut self, a: &'a impl AsFd, b: &'a impl AsFd) -> Self {
        let (ra, rb) = (a.as_fd().as_raw_fd(), b.as_fd().as_raw_fd());
        if let Err(e) = self.core.add_listener_pair(ra, rb) {
            self.keep(Error::os(
                format!(
                    "supervisor: listener pair fds {ra}, {rb} (two listening TCP sockets with \
                     SO_REUSEPORT on one address)"
                ),
                e,
            ));
        }
        self
    }

    /// A listener as one `SO_REUSEPORT` socket per worker slot, all on one address, `fds[0]`
    /// bound first (C: `dk_supervisor_add_listener_slots`): worker slot `i` accepts on
    /// `fds[i % n]` only (an in-process worker finds it at `fds[0]`'s fd number), and the
    /// master holds every socket, so a slot's accept queue outlives its worker. The worker
    /// count never goes below `n` (TTOU stops there; fewer workers is an error at `run`). At
    /// most one such listener, not with [`Self::listener_pair`].
    pub fn listener_slots<F: AsFd>(mut self, fds: &'a [F]) -> Self {
        let raw: Vec<i32> = fds.iter().map(|f| f.as_fd().as_raw_fd()).collect();
        if let Err(e) = self.core.add_listener_slots(&raw) {
            self.keep(Error::os(
                format!(
                    "supervisor: listener slots fds {raw:?} (listening TCP sockets with \
                     SO_REUSEPORT on one address)"
                ),
                e,
            ));
        }
        self
    }

    /// `LISTEN_FDNAMES` for upgrades and exec'd workers (colon-separated, one per listener).
    pub fn listen_names(mut self, names: &str) -> Self {
        match c_str("supervisor: listener names", names) {
            Ok(n) => self.names = Some(n),
            Err(e) => self.keep(e),
        }
        self
    }

    /// The PID file: unlinked after a graceful stop, handed over on upgrade, rewritten with
    /// the master's pid when an upgrade fails.
    pub fn pidfile(mut self, pf: &'a mut Pidfile) -> Self {
        self.pidfile = Some(pf);
        self
    }

    /// Enables USR2 upgrades to `argv` (usually [`crate::exec::self_argv`]): the new master
    /// generation inherits the listeners and the locked PID file and has `timeout` to report
    /// ready (C: `dk_supervisor_set_upgrade`).
    pub fn upgrade<S: AsRef<OsStr>>(mut self, argv: &[S], timeout: Duration) -> Self {
        match CArgv::new(argv) {
            Ok(a) => self.upgrade = Some(a),
            Err(e) => self.keep(e),
        }
        self.core.upgrade_timeout_ms = millis(timeout).max(1);
        self
    }

    /// Runs `argv` in each worker instead of the closure given to `run` (C:
    /// `dk_supervisor_set_exec`): the listeners arrive as `LISTEN_FDS` and, in
    /// Server::Starter's terms, `SERVER_STARTER_PORT`.
    pub fn exec<S: AsRef<OsStr>>(mut self, argv: &[S]) -> Self {
        match CArgv::new(argv) {
            Ok(a) => self.exec = Some(a),
            Err(e) => self.keep(e),
        }
        self
    }

    /// A hook run in each worker right after the fork, before the worker closure (where a
    /// runtime that must not cross a fork is built).
    pub fn post_fork(mut self, f: impl FnMut(u32) + 'a) -> Self {
        self.hook = Some(Box::new(Box::new(f)));
        self
    }

    /// The signal that stops a worker (default `SIGTERM`; Starman's graceful stop is
    /// `SIGQUIT`); C: `dk_supervisor_set_stop_signal`.
    pub fn stop_signal(mut self, sig: i32) -> Self {
        if crate::imp::signals::pipeable(sig) {
            self.core.stop_signal = sig;
        } else {
            self.keep(Error::invalid(format!(
                "supervisor: stop signal {sig}: not a signal a worker can handle"
            )));
        }
        self
    }

    /// The restart policy (C: `dk_supervisor_set_restart`): the crash-loop backoff's cap
    /// (default 8 s), and whether to give up after `n` crashes within `window` (`run` then
    /// returns [`Outcome::GaveUp`]).
    pub fn restart(mut self, max_backoff: Duration, give_up: Option<(u32, Duration)>) -> Self {
        self.core.max_backoff_ms = millis(max_backoff).max(1);
        match give_up {
            Some((n, w)) if n > imp::MAX_GIVE_UP || n == 0 || w.is_zero() => {
                self.keep(Error::invalid(format!(
                    "supervisor: give up after {n} crashes in {w:?}: 1 to 64 crashes, a \
                     window > 0"
                )))
            }
            Some((n, w)) => self.core.give_up = (n, millis(w)),
            None => self.core.give_up = (0, 0),
        }
        self
    }

    /// Init duties ([`SupervisorFlags`]; C: `dk_supervisor_set_flags`).
    pub fn flags(mut self, flags: SupervisorFlags) -> Self {
        self.core.flags = flags.bits();
        self
    }

    /// Gives each worker its own stdout/stderr: `f(index)` runs in the master before each
    /// fork and returns the fd (a pipe's write end, say), or `None` to inherit (C:
    /// `dk_supervisor_set_stdio`).
    pub fn worker_output(mut self, f: impl FnMut(u32) -> Option<OwnedFd> + 'a) -> Self {
        self.stdio = Some(Box::new(Box::new(f)));
        self
    }

    /// Receives every event in the master's loop (default: one line each on stderr).
    pub fn on_event(mut self, f: impl FnMut(Event) + 'a) -> Self {
        self.events = Some(Box::new(Box::new(f)));
        self
    }

    /// Runs the master until a graceful stop, a completed upgrade or giving up. `worker`
    /// runs in each forked worker; its return value is the worker's exit status. `EBUSY`
    /// while a [`crate::signals::Signals`] lives: the master owns the signal pipe. With the
    /// `tokio` feature, `EDEADLK` inside a tokio runtime or while one's worker threads live
    /// (in-process workers only: a runtime must not cross the fork; see `daemonkit::tokio`).
    pub fn run(self, worker: impl FnMut(u32) -> i32 + 'a) -> Result<Outcome> {
        self.run_with_status(worker).map(|(o, _)| o)
    }

    /// [`Supervisor::run`], also returning the exit code the master should leave with (the
    /// worker's status, or 128 + its signal, in a [`SupervisorFlags::ONCE`] run; else 0).
    pub fn run_with_status(
        mut self,
        worker: impl FnMut(u32) -> i32 + 'a,
    ) -> Result<(Outcome, i32)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        // A tokio runtime must not cross the fork into in-process workers (see
        // `daemonkit::tokio`): refused, EDEADLK. Exec'd workers replace their image at once.
        #[cfg(feature = "tokio")]
        if self.exec.is_none() {
            crate::tokio::refuse_runtime_before_fork("supervisor")?;
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
            if e.0 == libc::EBUSY {
                return Error::os(
                    "supervisor: signals are already registered in this process (a live \
                     Signals): the supervisor owns the signal pipe while it runs; drop it first",
                    e,
                );
            }
            Error::os("supervisor", e)
        });
        drop(w);
        r.map(|o| (o, self.core.exit_status()))
    }
}
