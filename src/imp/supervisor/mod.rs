//! The prefork supervisor: a master that forks N workers sharing the listeners and runs its
//! own loop on the signal fd.
//!
//! * Workers start with default signal dispositions and an empty mask, without the PID file
//!   fd, the signal pipe or the other workers' pipes, run a post-fork hook (where a language
//!   runtime rebuilds its event loop), and die with the master (`PR_SET_PDEATHSIG` plus a
//!   check that the master is still their parent).
//! * The master reaps only its own workers (`waitpid(pid)`, never `waitpid(-1)`; on a
//!   SIGCHLD a `WNOWAIT` `waitid` names the child that exited, so that one exit does not
//!   cost a call per worker), respawns crashed ones and throttles a crash loop (a worker
//!   dying within 1 s of its start delays the next spawn by at least 1 s, backing off); a
//!   worker that exits 0 by itself (max-requests) is replaced at once.
//! * `HUP`: rolling restart — a new worker is started and has reported ready before an old
//!   one is told to stop, one at a time. `TTIN`/`TTOU`: one more / one fewer (never below 1).
//!   A worker told to stop on its own (TTOU, a rolling restart) gets the graceful timeout
//!   too, then KILL. Signals stay blocked across each worker's fork, so one sent to a new
//!   worker is never taken by the master's handler in the child.
//!   `TERM`/`INT`/`QUIT`: TERM every worker, wait up to the graceful timeout, KILL the rest,
//!   unlink the PID file; a second one skips the wait. `USR1`: reopen the log and forward it
//!   to the workers that are ready and not stopping (a worker not ready yet gets it when it
//!   reports ready: until it installed its handler, USR1 would kill it).
//!   `USR2`: upgrade — a new master generation inherits the listeners and the locked PID file;
//!   when it reports ready the old one drains and returns [`Outcome::Upgraded`]; if it fails
//!   or times out it is killed and the old one keeps serving.
//! * Events reach the caller through a callback taking plain integers (or go to stderr).

use crate::imp::daemon::Record;
use crate::imp::daemon::{self, Role, MAX_MESSAGE};
use crate::imp::exec;
use crate::imp::fds;
use crate::imp::pidfile::PidFile;
use crate::imp::signals;
use crate::sys::{self, Errno, Res};
use core::ffi::{c_char, c_int, c_void, CStr};

mod child;
pub mod event;
mod init;
mod restart;
mod reuseport;
mod slots;
mod steer;
mod upgrade;

pub use event::{default_log, describe_event, EVENT_TEXT_MAX};
use slots::{Slot, EMPTY, SLOTS};

/// Worker entry: runs in the child, returns its exit status.
pub type WorkerFn = extern "C" fn(ctx: *mut c_void, index: u32) -> c_int;
/// Post-fork hook: runs in the child before the worker entry.
pub type HookFn = extern "C" fn(ctx: *mut c_void, index: u32);
/// Event callback: runs in the master's loop (never in a signal handler).
pub type EventFn = extern "C" fn(ctx: *mut c_void, kind: c_int, pid: i32, value: i32);
/// Worker output: runs in the master just before a worker is forked; returns an fd that
/// becomes the worker's stdout and stderr (the master closes its copy after the fork), or a
/// negative value to let the worker inherit the master's.
pub type StdioFn = extern "C" fn(ctx: *mut c_void, index: u32) -> c_int;

/// [`Supervisor::flags`]: reap every child, not only our workers — orphans the workers'
/// descendants leave behind are reparented to us (as PID 1, or as a child subreaper, which
/// `run` makes the process). What an init in a container must do.
pub const REAP_ALL: u32 = 1;
/// [`Supervisor::flags`]: one worker, run once (tini's model): it is not respawned, the
/// master forwards HUP, INT, QUIT, USR1 and USR2 to it (TERM as the stop signal) and stops
/// when it exits, with its status in [`Supervisor::exit_status`].
pub const ONCE: u32 = 2;
/// [`Supervisor::flags`]: each worker leads a process group of its own, and what the master
/// sends it (stop signal, forwarded signals, KILL) goes to the whole group, like `tini -g`.
pub const SIGNAL_GROUP: u32 = 4;
/// Every flag.
pub const ALL_FLAGS: u32 = REAP_ALL | ONCE | SIGNAL_GROUP;

/// The default cap of the crash-loop backoff.
pub const DEFAULT_MAX_BACKOFF_MS: u32 = 8_000;
/// Most crashes a give-up window counts.
pub const MAX_GIVE_UP: u32 = 64;

/// Most workers one master runs.
pub const MAX_WORKERS: usize = 256;

/// How [`crate::supervisor::Supervisor::run`] ended (in the master).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Graceful stop finished; the PID file was unlinked. Exit 0.
    Stopped = 0,
    /// A new generation took over; the PID file belongs to it. Exit 0 without removing it.
    Upgraded = 1,
    /// The restart policy gave up (N crashes within its window: [`crate::supervisor::Supervisor::restart`]): every
    /// worker was stopped and the PID file unlinked. Exit with a distinct code.
    GaveUp = 2,
}

/// A supervisor's configuration and state. Create with [`Supervisor::new`], configure, then
/// [`Supervisor::run`].
pub struct Supervisor {
    pub workers: u32,
    pub graceful_ms: u32,
    pub ready_timeout_ms: u32,
    pub upgrade_timeout_ms: u32,
    pub worker: Option<(WorkerFn, *mut c_void)>,
    pub exec_argv: *const *const c_char,
    pub post_fork: Option<(HookFn, *mut c_void)>,
    pub on_event: Option<(EventFn, *mut c_void)>,
    pub listeners: [c_int; exec::MAX_FDS],
    pub nlisteners: usize,
    pub names: *const c_char,
    pub pidfile: *mut PidFile,
    pub upgrade_argv: *const *const c_char,
    /// The signal that stops a worker (TTOU, a rolling restart's old worker, a graceful
    /// stop): SIGTERM by default; Starman's graceful stop is SIGQUIT.
    pub stop_signal: c_int,
    /// Cap of the crash-loop backoff (1 s, doubling every third quick crash).
    pub max_backoff_ms: u32,
    /// Give up after `.0` crashes within `.1` ms (0 crashes: never): [`Outcome::GaveUp`].
    pub give_up: (u32, u32),
    /// [`REAP_ALL`], [`ONCE`], [`SIGNAL_GROUP`].
    pub flags: u32,
    /// Where each worker's stdout and stderr go ([`StdioFn`]).
    pub stdio: Option<(StdioFn, *mut c_void)>,
    /// The second socket of each listener given as a pair (-1: none; see `steer`).
    pairs: [c_int; exec::MAX_FDS],
    /// The side (0 or 1) of the pairs the current generation runs on.
    side: u8,
    /// The per-slot listener's sockets (`slot_fds[0]` is `listeners[slot_listener]`) and
    /// how many (0: none; see `reuseport`).
    slot_fds: [c_int; exec::MAX_FDS],
    nslots: usize,
    slot_listener: usize,
    /// During a rolling restart of paired listeners: when new connections were switched to
    /// the new generation's sockets (0: not yet).
    steered_at: u64,
    /// When to retry a step that failed for a transient reason (0: nothing to retry).
    retry_at: u64,
    slots: [Slot; SLOTS],
    generation: u32,
    crashes: u32,
    next_spawn: u64,
    stopping: bool,
    upgraded: bool,
    announced: bool,
    rolling: bool,
    upgrade: Option<(i32, c_int, u64)>,
    master: i32,
    sigpipe_ignored: bool,
    /// When the last [`MAX_GIVE_UP`] crashes happened (a ring).
    crash_times: [u64; MAX_GIVE_UP as usize],
    ncrash: usize,
    gave_up: bool,
    /// The wait status of the worker of a [`ONCE`] run.
    status: c_int,
    /// A SIGCHLD came since the last [`Self::reap`] (or none has run yet): only then are
    /// the workers polled with `waitpid`, one call per worker, rather than on every turn
    /// of the loop (256 calls for each ready report or signal at 256 workers).
    reap_due: bool,
}

impl Supervisor {
    /// Defaults: 1 worker, 30 s graceful timeout, workers assumed ready after 2 s without a
    /// report, 60 s upgrade timeout.
    pub fn new() -> Self {
        Supervisor {
            workers: 1,
            graceful_ms: 30_000,
            ready_timeout_ms: 2_000,
            upgrade_timeout_ms: 60_000,
            worker: None,
            exec_argv: core::ptr::null(),
            post_fork: None,
            on_event: None,
            listeners: [-1; exec::MAX_FDS],
            nlisteners: 0,
            names: core::ptr::null(),
            pidfile: core::ptr::null_mut(),
            upgrade_argv: core::ptr::null(),
            slots: [EMPTY; SLOTS],
            generation: 0,
            crashes: 0,
            next_spawn: 0,
            stopping: false,
            upgraded: false,
            announced: false,
            rolling: false,
            upgrade: None,
            master: 0,
            sigpipe_ignored: false,
            stop_signal: libc::SIGTERM,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            give_up: (0, 0),
            flags: 0,
            stdio: None,
            pairs: [-1; exec::MAX_FDS],
            side: 0,
            slot_fds: [-1; exec::MAX_FDS],
            nslots: 0,
            slot_listener: 0,
            steered_at: 0,
            retry_at: 0,
            crash_times: [0; MAX_GIVE_UP as usize],
            ncrash: 0,
            gave_up: false,
            status: 0,
            reap_due: true,
        }
    }

    /// Adds a listener passed to workers (and to an upgrade's new generation).
    pub fn add_listener(&mut self, fd: c_int) -> Res<()> {
        if !sys::fd_valid(fd) {
            return Err(Errno(libc::EBADF));
        }
        // An upgrade also passes the per-slot listener's other sockets.
        if self.nlisteners + self.nslots.saturating_sub(1) >= exec::MAX_FDS - 2 {
            return Err(Errno(libc::ENOSPC));
        }
        self.listeners[self.nlisteners] = fd;
        self.nlisteners += 1;
        Ok(())
    }

    fn names(&self) -> Option<&CStr> {
        if self.names.is_null() {
            None
        } else {
            // SAFETY: the caller set a valid C string that outlives the supervisor.
            Some(unsafe { CStr::from_ptr(self.names) })
        }
    }

    fn emit(&self, kind: i32, pid: i32, value: i32) {
        match self.on_event {
            Some((f, ctx)) => f(ctx, kind, pid, value),
            None => default_log(kind, pid, value),
        }
    }

    /// Runs the master loop until a graceful stop or a completed upgrade. Returns in workers
    /// never: a worker exits with its entry's return value.
    pub fn run(&mut self) -> Res<Outcome> {
        if self.worker.is_none() && self.exec_argv.is_null() {
            return Err(Errno(libc::EINVAL));
        }
        if self.workers < self.min_workers() || self.workers as usize > MAX_WORKERS {
            return Err(Errno(libc::EINVAL));
        }
        if self.flags & !ALL_FLAGS != 0
            || (self.flags & ONCE != 0 && self.workers != 1)
            || !signals::pipeable(self.stop_signal)
            || self.give_up.0 > MAX_GIVE_UP
        {
            return Err(Errno(libc::EINVAL));
        }
        if self.flags & REAP_ALL != 0 && sys::getpid() != 1 {
            // Orphans of our workers' descendants come to us, not to init.
            // SAFETY: prctl with plain integer arguments.
            sys::cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })?;
        }
        self.master = sys::getpid();
        // Workers keep an ignored SIGPIPE (as exec would); every other disposition is reset.
        // SAFETY: querying the current SIGPIPE action into a valid struct.
        self.sigpipe_ignored = unsafe {
            let mut old: libc::sigaction = core::mem::zeroed();
            libc::sigaction(libc::SIGPIPE, core::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        };
        // The supervisor owns the process's signal pipe for the run and closes it at the end:
        // a registration the caller made would be drained by this loop and torn down after.
        if signals::registered_here() {
            return Err(Errno(libc::EBUSY));
        }
        if self.paired() {
            // Generation 0 runs on the first socket of each pair; nothing reaches the second
            // until a rolling restart switches to it.
            self.steer_to(0)?;
        }
        let sigfd = signals::open(&[
            libc::SIGHUP,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGCHLD,
        ])?;
        loop {
            // Every exit of a child raises SIGCHLD (it sets `reap_due`); one that comes
            // after this reap wakes the poll below, and the next turn reaps it.
            if core::mem::take(&mut self.reap_due) {
                self.reap();
            }
            self.kill_overdue();
            if self.stopping {
                if self.live().count() == 0 {
                    break;
                }
            } else {
                // Ready timeouts first: a worker assumed ready now lets `maintain` take the
                // next rolling-restart step in this turn (there is no tick to take it later).
                self.check_ready_timeouts();
                self.maintain();
                self.check_announce();
            }
            self.wait(sigfd)?;
            while let s @ 1.. = signals::next() {
                self.on_signal(s);
            }
        }
        signals::close();
        if let Some((pid, fd, _)) = self.upgrade.take() {
            sys::close(fd);
            let _ = signals::send(pid, libc::SIGKILL);
            // Reaping our own child (EINTR retried: no zombie left behind).
            let _ = sys::waitpid(pid, &mut 0, 0);
        }
        if self.upgraded {
            return Ok(Outcome::Upgraded);
        }
        if !self.pidfile.is_null() {
            // SAFETY: the caller's PID file handle outlives the supervisor run.
            let _ = unsafe { &*self.pidfile }.unlink();
        }
        Ok(if self.gave_up {
            Outcome::GaveUp
        } else {
            Outcome::Stopped
        })
    }

    /// The exit code a master should leave with after [`Self::run`]: in a [`ONCE`] run the
    /// worker's (its exit status, or 128 + the signal that killed it), otherwise 0.
    pub fn exit_status(&self) -> c_int {
        if self.flags & ONCE == 0 {
            0
        } else if libc::WIFSIGNALED(self.status) {
            128 + libc::WTERMSIG(self.status)
        } else {
            libc::WEXITSTATUS(self.status)
        }
    }

    /// Polls the signal fd, the workers' readiness pipes and the upgrade pipe until something
    /// happens or the next deadline.
    fn wait(&mut self, sigfd: c_int) -> Res<()> {
        let mut pfds = [libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        }; SLOTS + 2];
        let mut map = [usize::MAX; SLOTS + 2];
        pfds[0] = libc::pollfd {
            fd: sigfd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut n = 1;
        for (i, s) in self.slots.iter().enumerate() {
            if s.pid > 0 && s.ready_fd >= 0 {
                pfds[n] = libc::pollfd {
                    fd: s.ready_fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                map[n] = i;
                n += 1;
            }
        }
        let up = n;
        if let Some((_, fd, _)) = self.upgrade {
            pfds[n] = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            n += 1;
        }
        let now = sys::now_ms();
        // No tick: with nothing due the master sleeps in poll until a signal or a worker's
        // message (0 wake-ups a second when idle, at any worker count).
        let mut deadline = u64::MAX;
        if self.steered_at > 0 {
            deadline = now + 10; // draining the old sockets' accept queues
        }
        if !self.stopping && self.next_spawn > now {
            deadline = deadline.min(self.next_spawn);
        }
        if !self.stopping && self.retry_at > 0 {
            deadline = deadline.min(self.retry_at.max(now));
        }
        for s in self.live().filter(|s| s.stopping) {
            deadline = deadline.min(s.stop_at.max(now));
        }
        for s in self.live().filter(|s| !s.stopping && !s.ready) {
            // A worker is assumed ready at its ready timeout: wake up then, not later.
            deadline = deadline.min((s.started + self.ready_timeout_ms as u64).max(now));
        }
        if let Some((_, _, d)) = self.upgrade {
            deadline = deadline.min(d.max(now));
        }
        let t = if deadline == u64::MAX {
            -1
        } else {
            deadline.saturating_sub(now).min(c_int::MAX as u64) as c_int
        };
        // SAFETY: pfds holds n initialized pollfds.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, t) };
        if r < 0 {
            let e = Errno::last();
            return if e.0 == libc::EINTR { Ok(()) } else { Err(e) };
        }
        for i in 1..n {
            if pfds[i].revents == 0 {
                continue;
            }
            if i == up && self.upgrade.is_some() {
                self.upgrade_event();
            } else if map[i] != usize::MAX {
                self.worker_message(map[i]);
            }
        }
        if let Some((pid, fd, d)) = self.upgrade {
            if sys::now_ms() >= d {
                self.upgrade = None;
                let mut msg = [0u8; MAX_MESSAGE];
                // Deadline passed: wait_ready with a tiny timeout kills and reaps it.
                let r = exec::wait_ready(pid, fd, 1, &mut msg);
                self.upgrade_done(pid, r, &msg);
            }
        }
        Ok(())
    }

    fn worker_message(&mut self, i: usize) {
        let fd = self.slots[i].ready_fd;
        let mut buf = [0u8; 4 + MAX_MESSAGE];
        // SAFETY: reading into a valid buffer from our non-blocking pipe.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && sys::get_errno() == libc::EAGAIN {
            return;
        }
        let got = if n > 0 { &buf[..n as usize] } else { &[][..] };
        match crate::imp::daemon::decode(got) {
            Record::Ready => self.mark_ready(i, self.slots[i].index as i32),
            Record::Failed { code, .. } => {
                self.emit(event::WORKER_FAILED, self.slots[i].pid, code as i32)
            }
            // A failure cut short still is one (its message did not fit in one read).
            Record::Incomplete if got.first() == Some(&b'f') => {
                let code = got.get(1).map_or(1, |&c| c as i32);
                self.emit(event::WORKER_FAILED, self.slots[i].pid, code);
            }
            _ => {}
        }
        // One message per pipe: done with it either way.
        sys::close(fd);
        self.slots[i].ready_fd = -1;
    }

    fn mark_ready(&mut self, i: usize, value: i32) {
        if !self.slots[i].ready {
            self.slots[i].ready = true;
            self.crashes = 0;
            self.emit(event::WORKER_READY, self.slots[i].pid, value);
            if core::mem::take(&mut self.slots[i].usr1_held) && !self.slots[i].stopping {
                let _ = signals::send(self.slots[i].pid, libc::SIGUSR1);
            }
        }
    }

    fn check_ready_timeouts(&mut self) {
        let now = sys::now_ms();
        for i in 0..SLOTS {
            let s = self.slots[i];
            if s.pid > 0
                && !s.ready
                && !s.stopping
                && now >= s.started + self.ready_timeout_ms as u64
            {
                self.mark_ready(i, -1);
            }
        }
    }

    fn check_announce(&mut self) {
        let cur = self.generation;
        let ready_now = self
            .live()
            .filter(|s| !s.stopping && s.ready && s.generation == cur)
            .count();
        let old = self
            .live()
            .filter(|s| !s.stopping && s.generation < cur)
            .count();
        if !self.announced && ready_now >= self.workers as usize {
            self.announced = true;
            if let Err(e) = daemon::ready() {
                self.emit(event::READY, self.master, e.to_c());
            } else {
                self.emit(event::READY, self.master, self.workers as i32);
            }
        }
        if self.rolling && old == 0 && ready_now >= self.active().min(self.workers as usize) {
            self.rolling = false;
            let _ = crate::imp::notify::ready();
            self.emit(event::RELOADED, self.master, cur as i32);
        }
    }

    fn on_signal(&mut self, s: c_int) {
        if self.flags & ONCE != 0 && self.forward(s) {
            return;
        }
        match s {
            libc::SIGCHLD => self.reap_due = true,
            libc::SIGHUP if !self.stopping => {
                self.generation += 1;
                self.rolling = true;
                if self.paired() {
                    self.side ^= 1; // the new generation runs on the other sockets
                    self.steered_at = 0;
                }
                let _ = crate::imp::notify::reloading();
                self.emit(event::RELOADING, self.master, self.generation as i32);
            }
            libc::SIGTTIN if !self.stopping => {
                let n = signals::take_count(s).max(1);
                self.workers = (self.workers + n).min(MAX_WORKERS as u32);
                self.emit(event::WORKERS_CHANGED, self.master, self.workers as i32);
            }
            libc::SIGTTOU if !self.stopping => {
                let n = signals::take_count(s).max(1);
                self.workers = self.workers.saturating_sub(n).max(self.min_workers());
                self.emit(event::WORKERS_CHANGED, self.master, self.workers as i32);
            }
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => {
                if self.stopping {
                    self.kill_all();
                } else {
                    self.begin_stop();
                }
            }
            libc::SIGUSR1 => {
                let r = if fds::log_active() {
                    fds::log_reopen().map_or_else(|e| e.to_c(), |_| 0)
                } else {
                    0
                };
                // Only to workers that are ready: a new one may still have the default action
                // (death) for USR1; it gets it once it reports ready. Nor to workers told to
                // stop: one that has finished draining restores the default action as it
                // leaves (its remaining lines go to the renamed file, none is lost).
                for s in self.slots.iter_mut().filter(|s| s.pid > 0 && !s.stopping) {
                    if s.ready {
                        let _ = signals::send(s.pid, libc::SIGUSR1);
                    } else {
                        s.usr1_held = true;
                    }
                }
                self.emit(event::LOG_REOPENED, self.master, r);
            }
            libc::SIGUSR2 if !self.stopping => self.begin_upgrade(),
            _ => {}
        }
    }

    fn begin_stop(&mut self) {
        self.begin_stop_with(self.stop_signal);
    }

    /// Graceful stop, each worker told with `sig`.
    fn begin_stop_with(&mut self, sig: c_int) {
        self.stopping = true;
        self.release_listeners();
        let _ = crate::imp::notify::stopping();
        self.emit(event::STOPPING, self.master, self.graceful_ms as i32);
        for i in 0..SLOTS {
            if self.slots[i].pid > 0 {
                self.stop_one_with(i, sig);
            }
        }
    }

    /// Drops the master's reference to each listening socket (the fd number now refers to
    /// /dev/null, so the caller's later close stays valid): once the draining workers have
    /// closed theirs, new connections are refused instead of waiting unanswered in the
    /// backlog. A successor generation holds its own references.
    fn release_listeners(&mut self) {
        // SAFETY: opening /dev/null and dup2 onto fds the caller handed us.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if null < 0 {
                return;
            }
            let slots = self.slot_fds.iter().take(self.nslots).skip(1);
            for &fd in self.listeners[..self.nlisteners]
                .iter()
                .chain(self.pairs[..self.nlisteners].iter())
                .chain(slots)
            {
                if fd >= 0 {
                    libc::dup2(null, fd);
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            sys::close(null);
        }
    }

    fn kill_all(&mut self) {
        for i in 0..SLOTS {
            let pid = self.slots[i].pid;
            if pid > 0 {
                self.slots[i].stop_at = u64::MAX;
                if self.signal_worker(pid, libc::SIGKILL).is_ok() {
                    self.emit(event::KILLED, pid, 0);
                }
            }
        }
    }

    /// Sends `sig` to a worker, or with [`SIGNAL_GROUP`] to its process group.
    fn signal_worker(&self, pid: i32, sig: c_int) -> Res<()> {
        if self.flags & SIGNAL_GROUP != 0 {
            signals::send(-pid, sig)
        } else {
            signals::send(pid, sig)
        }
    }

    /// Tells one worker to stop with the stop signal; [`Self::kill_overdue`] kills it if it
    /// still runs after the graceful timeout (counted from the first signal it got).
    fn stop_one(&mut self, i: usize) {
        self.stop_one_with(i, self.stop_signal);
    }

    fn stop_one_with(&mut self, i: usize, sig: c_int) {
        let deadline = sys::now_ms().saturating_add(self.graceful_ms as u64);
        self.slots[i].stopping = true;
        self.slots[i].stop_at = self.slots[i].stop_at.min(deadline);
        let _ = self.signal_worker(self.slots[i].pid, sig);
    }

    /// KILLs each stopping worker that outlived its graceful timeout.
    fn kill_overdue(&mut self) {
        let now = sys::now_ms();
        for i in 0..SLOTS {
            let s = self.slots[i];
            if s.pid > 0 && s.stopping && now >= s.stop_at {
                self.slots[i].stop_at = u64::MAX;
                if self.signal_worker(s.pid, libc::SIGKILL).is_ok() {
                    self.emit(event::KILLED, s.pid, 0);
                }
            }
        }
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}
