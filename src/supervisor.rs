//! The prefork supervisor: a master that forks N workers sharing the listeners and runs its
//! own loop on the signal fd.
//!
//! * Workers start with default signal dispositions and an empty mask, without the PID file
//!   fd, the signal pipe or the other workers' pipes, run a post-fork hook (where a language
//!   runtime rebuilds its event loop), and die with the master (`PR_SET_PDEATHSIG` plus a
//!   check that the master is still their parent).
//! * The master reaps only its own workers (`waitpid(pid)`, never `waitpid(-1)`), respawns
//!   crashed ones and throttles a crash loop (a worker dying within 1 s of its start delays the
//!   next spawn by at least 1 s, backing off); a worker that exits 0 by itself (max-requests)
//!   is replaced at once.
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

use crate::daemon::{self, Role, MAX_MESSAGE};
use crate::exec;
use crate::fds;
use crate::pidfile::PidFile;
use crate::signals;
use crate::sys::{self, Errno, Res};
use core::ffi::{c_char, c_int, c_void, CStr};

/// Worker entry: runs in the child, returns its exit status.
pub type WorkerFn = extern "C" fn(ctx: *mut c_void, index: u32) -> c_int;
/// Post-fork hook: runs in the child before the worker entry.
pub type HookFn = extern "C" fn(ctx: *mut c_void, index: u32);
/// Event callback: runs in the master's loop (never in a signal handler).
pub type EventFn = extern "C" fn(ctx: *mut c_void, kind: c_int, pid: i32, value: i32);

/// Most workers one master runs.
pub const MAX_WORKERS: usize = 256;

/// Event kinds (the `kind` argument of [`EventFn`]); see the C header for `pid`/`value`.
pub mod event {
    /// A worker was started: pid, value = worker index.
    pub const SPAWNED: i32 = 1;
    /// A worker exited: pid, value = wait status (as from waitpid).
    pub const EXITED: i32 = 2;
    /// Crash loop: the next spawn waits: pid = 0, value = delay in ms.
    pub const RESPAWN_DELAYED: i32 = 3;
    /// A worker reported ready: pid, value = index (-1 when assumed after the ready timeout).
    pub const WORKER_READY: i32 = 4;
    /// Every initial worker is ready and the master reported ready: pid = master, value = N.
    pub const READY: i32 = 5;
    /// HUP: rolling restart began: value = new generation.
    pub const RELOADING: i32 = 6;
    /// Rolling restart finished: value = generation.
    pub const RELOADED: i32 = 7;
    /// Graceful stop began: value = graceful timeout in ms.
    pub const STOPPING: i32 = 8;
    /// A worker was killed after the graceful timeout (or a second TERM): pid.
    pub const KILLED: i32 = 9;
    /// Upgrade started: pid of the new generation.
    pub const UPGRADE_STARTED: i32 = 10;
    /// The new generation is ready; the old one drains: pid of the new one.
    pub const UPGRADE_READY: i32 = 11;
    /// The upgrade was rolled back: pid, value = 1 failed, 2 exited, 3 timed out, 4 could not start (errno in the log).
    pub const UPGRADE_FAILED: i32 = 12;
    /// USR1: the log was reopened and workers were told: value = 0 or the negative errno.
    pub const LOG_REOPENED: i32 = 13;
    /// TTIN/TTOU: value = the new worker count.
    pub const WORKERS_CHANGED: i32 = 14;
    /// A worker reported a startup failure: pid, value = its code.
    pub const WORKER_FAILED: i32 = 15;
    /// A rolling restart was abandoned because a new worker exited before it was ready (a
    /// program that binds its own port gets EADDRINUSE, say): pid of that worker, value =
    /// its wait status. The old generation keeps serving.
    pub const RELOAD_FAILED: i32 = 16;
}

/// How [`Supervisor::run`] ended (in the master).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Graceful stop finished; the PID file was unlinked. Exit 0.
    Stopped = 0,
    /// A new generation took over; the PID file belongs to it. Exit 0 without removing it.
    Upgraded = 1,
}

#[derive(Clone, Copy)]
struct Slot {
    pid: i32,
    ready_fd: c_int,
    started: u64,
    ready: bool,
    stopping: bool,
    /// When a stopping worker is killed if it still runs (`u64::MAX`: no deadline).
    stop_at: u64,
    generation: u32,
    index: u32,
    /// A USR1 arrived before this worker was ready: forwarded once it is (a worker that has
    /// not installed its handler yet would die of the default action).
    usr1_held: bool,
}

const EMPTY: Slot = Slot {
    pid: 0,
    ready_fd: -1,
    started: 0,
    ready: false,
    stopping: false,
    stop_at: u64::MAX,
    generation: 0,
    index: 0,
    usr1_held: false,
};

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
    slots: [Slot; MAX_WORKERS],
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
            slots: [EMPTY; MAX_WORKERS],
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
        }
    }

    /// Adds a listener passed to workers (and to an upgrade's new generation).
    pub fn add_listener(&mut self, fd: c_int) -> Res<()> {
        if !sys::fd_valid(fd) {
            return Err(Errno(libc::EBADF));
        }
        if self.nlisteners >= exec::MAX_FDS - 2 {
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

    fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.pid > 0)
    }

    fn active(&self) -> usize {
        self.live().filter(|s| !s.stopping).count()
    }

    /// Runs the master loop until a graceful stop or a completed upgrade. Returns in workers
    /// never: a worker exits with its entry's return value.
    pub fn run(&mut self) -> Res<Outcome> {
        if self.worker.is_none() && self.exec_argv.is_null() {
            return Err(Errno(libc::EINVAL));
        }
        if self.workers == 0 || self.workers as usize > MAX_WORKERS {
            return Err(Errno(libc::EINVAL));
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
            self.reap();
            self.kill_overdue();
            if self.stopping {
                if self.live().count() == 0 {
                    break;
                }
            } else {
                self.maintain();
                self.check_ready_timeouts();
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
        Ok(Outcome::Stopped)
    }

    /// Polls the signal fd, the workers' readiness pipes and the upgrade pipe until something
    /// happens or the next deadline.
    fn wait(&mut self, sigfd: c_int) -> Res<()> {
        let mut pfds = [libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        }; MAX_WORKERS + 2];
        let mut map = [usize::MAX; MAX_WORKERS + 2];
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
        let mut deadline = now + 500;
        if !self.stopping && self.next_spawn > now {
            deadline = deadline.min(self.next_spawn);
        }
        for s in self.live().filter(|s| s.stopping) {
            deadline = deadline.min(s.stop_at.max(now));
        }
        if let Some((_, _, d)) = self.upgrade {
            deadline = deadline.min(d.max(now));
        }
        let t = deadline.saturating_sub(now) as c_int;
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
        if n > 0 && buf[0] == b'r' {
            self.mark_ready(i, self.slots[i].index as i32);
        } else if n > 0 && buf[0] == b'f' {
            let code = if n > 1 { buf[1] as i32 } else { 1 };
            self.emit(event::WORKER_FAILED, self.slots[i].pid, code);
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
        for i in 0..MAX_WORKERS {
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
            let _ = crate::notify::ready();
            self.emit(event::RELOADED, self.master, cur as i32);
        }
    }

    fn on_signal(&mut self, s: c_int) {
        match s {
            libc::SIGCHLD => {}
            libc::SIGHUP if !self.stopping => {
                self.generation += 1;
                self.rolling = true;
                let _ = crate::notify::reloading();
                self.emit(event::RELOADING, self.master, self.generation as i32);
            }
            libc::SIGTTIN if !self.stopping => {
                let n = signals::take_count(s).max(1);
                self.workers = (self.workers + n).min(MAX_WORKERS as u32);
                self.emit(event::WORKERS_CHANGED, self.master, self.workers as i32);
            }
            libc::SIGTTOU if !self.stopping => {
                let n = signals::take_count(s).max(1);
                self.workers = self.workers.saturating_sub(n).max(1);
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

    /// A new worker of a rolling restart exited before it was ready: stop the roll and keep
    /// the old generation serving (its workers become the current generation again), rather
    /// than stopping good workers for new ones that cannot start. A program that binds its
    /// own port instead of using the inherited listeners fails exactly so (`EADDRINUSE`
    /// while the old copy holds the port).
    fn abandon_roll(&mut self, pid: i32, status: c_int) {
        self.rolling = false;
        let cur = self.generation;
        for s in self.slots.iter_mut().filter(|s| s.pid > 0 && !s.stopping) {
            s.generation = cur;
        }
        let _ = crate::notify::ready();
        self.emit(event::RELOAD_FAILED, pid, status);
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        self.release_listeners();
        let _ = crate::notify::stopping();
        self.emit(event::STOPPING, self.master, self.graceful_ms as i32);
        for i in 0..MAX_WORKERS {
            if self.slots[i].pid > 0 {
                self.stop_one(i);
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
            for &fd in &self.listeners[..self.nlisteners] {
                libc::dup2(null, fd);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            sys::close(null);
        }
    }

    fn kill_all(&mut self) {
        for i in 0..MAX_WORKERS {
            let pid = self.slots[i].pid;
            if pid > 0 {
                self.slots[i].stop_at = u64::MAX;
                if signals::send(pid, libc::SIGKILL).is_ok() {
                    self.emit(event::KILLED, pid, 0);
                }
            }
        }
    }

    fn begin_upgrade(&mut self) {
        if self.upgrade.is_some() {
            return;
        }
        if self.upgrade_argv.is_null() {
            self.emit(event::UPGRADE_FAILED, 0, 4);
            return;
        }
        let pf = if self.pidfile.is_null() {
            -1
        } else {
            // SAFETY: the caller's PID file handle outlives the run.
            unsafe { &*self.pidfile }.fd()
        };
        let spec = exec::Spec {
            argv: self.upgrade_argv,
            fds: &self.listeners[..self.nlisteners],
            names: self.names(),
            pidfile_fd: pf,
        };
        match exec::spawn(&spec) {
            Ok((pid, fd)) => {
                let _ = sys::set_nonblock(fd);
                self.upgrade = Some((pid, fd, sys::now_ms() + self.upgrade_timeout_ms as u64));
                self.emit(event::UPGRADE_STARTED, pid, 0);
            }
            Err(e) => self.emit(event::UPGRADE_FAILED, 0, e.to_c()),
        }
    }

    fn upgrade_event(&mut self) {
        let Some((pid, fd, _)) = self.upgrade.take() else {
            return;
        };
        let mut msg = [0u8; MAX_MESSAGE];
        let r = exec::wait_ready(pid, fd, 1000, &mut msg);
        self.upgrade_done(pid, r, &msg);
    }

    fn upgrade_done(&mut self, pid: i32, r: Result<(), exec::Failure>, msg: &[u8; MAX_MESSAGE]) {
        match r {
            Ok(()) => {
                self.emit(event::UPGRADE_READY, pid, 0);
                self.upgraded = true;
                if !self.pidfile.is_null() {
                    // SAFETY: the caller's PID file handle outlives the run. The new generation
                    // owns the file now; our reference must not keep its lock alive if it dies
                    // while we drain.
                    unsafe { &mut *self.pidfile }.let_go();
                }
                self.begin_stop();
            }
            Err(f) => {
                if !self.pidfile.is_null() {
                    // SAFETY: the caller's PID file handle outlives the run; rollback rewrites
                    // our pid in case the new generation wrote its own.
                    let _ = unsafe { &mut *self.pidfile }.write();
                }
                let (why, len) = match f {
                    exec::Failure::Failed(_, len) => (1, len),
                    exec::Failure::Exited => (2, 0),
                    exec::Failure::TimedOut => (3, 0),
                };
                if len > 0 {
                    let _ = sys::write_all(2, b"daemonkit: upgrade failed: ");
                    let _ = sys::write_all(2, &msg[..len]);
                    let _ = sys::write_all(2, b"\n");
                }
                self.emit(event::UPGRADE_FAILED, pid, why);
            }
        }
    }

    /// Reaps exactly our own workers.
    fn reap(&mut self) {
        let now = sys::now_ms();
        for i in 0..MAX_WORKERS {
            let s = self.slots[i];
            if s.pid <= 0 {
                continue;
            }
            let mut st = 0;
            // SAFETY: waiting for one specific child of ours, without blocking.
            let r = unsafe { libc::waitpid(s.pid, &mut st, libc::WNOHANG) };
            if r != s.pid {
                if r < 0 && sys::get_errno() == libc::ECHILD {
                    st = 0; // somebody else reaped it: treat as gone
                } else {
                    continue;
                }
            }
            sys::close(s.ready_fd);
            self.slots[i] = EMPTY;
            self.emit(event::EXITED, s.pid, st);
            if self.stopping || s.stopping {
                continue;
            }
            if self.rolling && s.generation == self.generation && !s.ready {
                self.abandon_roll(s.pid, st);
            }
            let clean = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
            let quick = now.saturating_sub(s.started) < 1000;
            if clean && (s.ready || !quick) {
                continue; // max-requests: replaced at once, not a crash
            }
            // A failure, or a clean exit before the worker ever served: throttled below.
            if quick {
                self.crashes += 1;
                let step = ((self.crashes - 1) / 3).min(3);
                let delay = 1000u64 << step;
                self.next_spawn = now + delay;
                self.emit(event::RESPAWN_DELAYED, s.pid, delay as i32);
            } else {
                self.crashes = 0;
            }
        }
    }

    /// Spawns or stops workers toward the target, and drives a rolling restart.
    fn maintain(&mut self) {
        let now = sys::now_ms();
        let target = self.workers as usize;
        let cur = self.generation;
        let old = self
            .live()
            .filter(|s| !s.stopping && s.generation < cur)
            .count();
        let active = self.active();
        if old > 0 {
            let starting = self
                .live()
                .any(|s| !s.stopping && s.generation == cur && !s.ready);
            if starting {
                return;
            }
            if active <= target {
                if now >= self.next_spawn {
                    // A replacement takes the index of the old worker it replaces (the oldest,
                    // stopped once this one is ready); a missing worker gets a free index.
                    let index = match self.oldest(|s| s.generation < cur) {
                        Some(o) if active == target => self.slots[o].index,
                        _ => self.free_index(),
                    };
                    let _ = self.spawn(index);
                }
            } else if let Some(i) = self.oldest(|s| s.generation < cur) {
                self.stop_one(i);
            }
            return;
        }
        if active < target && now >= self.next_spawn {
            for _ in active..target {
                if self.spawn(self.free_index()).is_err() {
                    break;
                }
            }
        } else if active > target {
            for _ in target..active {
                // The highest index goes, so the others keep 0..N-1 (the newest of equals).
                if let Some(i) = self.highest() {
                    self.stop_one(i);
                }
            }
        }
    }

    fn oldest(&self, f: impl Fn(&Slot) -> bool) -> Option<usize> {
        (0..MAX_WORKERS)
            .filter(|&i| self.slots[i].pid > 0 && !self.slots[i].stopping && f(&self.slots[i]))
            .min_by_key(|&i| self.slots[i].started)
    }

    /// The running (not stopping) worker with the highest index, the newest of equals.
    fn highest(&self) -> Option<usize> {
        (0..MAX_WORKERS)
            .filter(|&i| self.slots[i].pid > 0 && !self.slots[i].stopping)
            .max_by_key(|&i| (self.slots[i].index, self.slots[i].started))
    }

    /// The lowest index no running worker has: the slot a new worker fills (0..N-1).
    fn free_index(&self) -> u32 {
        let mut index = 0u32;
        while self.live().any(|s| !s.stopping && s.index == index) {
            index += 1;
        }
        index
    }

    /// TERMs one worker; [`Self::kill_overdue`] kills it if it still runs after the graceful
    /// timeout (counted from the first TERM it got).
    fn stop_one(&mut self, i: usize) {
        let deadline = sys::now_ms().saturating_add(self.graceful_ms as u64);
        self.slots[i].stopping = true;
        self.slots[i].stop_at = self.slots[i].stop_at.min(deadline);
        let _ = signals::send(self.slots[i].pid, libc::SIGTERM);
    }

    /// KILLs each stopping worker that outlived its graceful timeout.
    fn kill_overdue(&mut self) {
        let now = sys::now_ms();
        for i in 0..MAX_WORKERS {
            let s = self.slots[i];
            if s.pid > 0 && s.stopping && now >= s.stop_at {
                self.slots[i].stop_at = u64::MAX;
                if signals::send(s.pid, libc::SIGKILL).is_ok() {
                    self.emit(event::KILLED, s.pid, 0);
                }
            }
        }
    }

    /// Forks a worker for slot `index` (0..N-1, see [`Self::free_index`]).
    fn spawn(&mut self, index: u32) -> Res<()> {
        let Some(slot) = self.slots.iter().position(|s| s.pid == 0) else {
            return Err(Errno(libc::EAGAIN));
        };
        let mut prepared = if self.exec_argv.is_null() {
            None
        } else {
            match exec::prepare_worker(
                self.exec_argv,
                &self.listeners[..self.nlisteners],
                self.names(),
            ) {
                Ok(p) => Some(p),
                Err(e) => {
                    // The program vanished or lost its execute bit: say so, retry in a second.
                    self.next_spawn = sys::now_ms() + 1000;
                    self.emit(event::RESPAWN_DELAYED, 0, 1000);
                    return Err(e);
                }
            }
        };
        let [r, w] = sys::pipe_cloexec(false)?;
        // Signals stay blocked across the fork: the child must not run our handler before
        // `child` resets its signal state (a TERM sent to the new worker would be swallowed
        // there and the worker would live on). The child's reset unblocks them.
        let mask = signals::block_all();
        // SAFETY: fork; the child runs async-signal-safe code until the caller's hook.
        let pid = unsafe { libc::fork() };
        if pid != 0 {
            signals::set_mask(&mask);
        }
        if pid < 0 {
            let e = Errno::last();
            sys::close(r);
            sys::close(w);
            self.next_spawn = sys::now_ms() + 1000;
            self.emit(event::RESPAWN_DELAYED, 0, 1000);
            return Err(e);
        }
        if pid == 0 {
            self.child(r, w, index, prepared.as_mut());
        }
        sys::close(w);
        let _ = sys::set_nonblock(r);
        self.slots[slot] = Slot {
            pid,
            ready_fd: r,
            started: sys::now_ms(),
            ready: false,
            stopping: false,
            stop_at: u64::MAX,
            generation: self.generation,
            index,
            usr1_held: false,
        };
        self.emit(event::SPAWNED, pid, index as i32);
        Ok(())
    }

    /// The worker side of the fork. Never returns.
    fn child(
        &mut self,
        r: c_int,
        w: c_int,
        index: u32,
        prepared: Option<&mut exec::Prepared>,
    ) -> ! {
        // Die with the master; and if it already died, do not start at all.
        // SAFETY: prctl/getppid with plain arguments.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != self.master {
                libc::_exit(1);
            }
        }
        signals::reset_child();
        fds::reset_log_lock_in_child();
        // An in-process worker is the same program: it keeps the master's ignored SIGPIPE. A
        // program a worker executes starts with every disposition at its default, as it
        // would outside.
        if self.sigpipe_ignored && prepared.is_none() {
            let _ = signals::ignore_sigpipe();
        }
        sys::close(r);
        for s in self.slots.iter() {
            sys::close(s.ready_fd);
        }
        if let Some((_, fd, _)) = self.upgrade {
            sys::close(fd);
        }
        daemon::set_channel(Role::Plain, -1);
        fds::close_private_in_child();
        daemon::set_channel(Role::Worker, w);
        if let Some(p) = prepared {
            p.exec_in_child(w);
        }
        if let Some((hook, ctx)) = self.post_fork {
            hook(ctx, index);
        }
        let code = match self.worker {
            Some((f, ctx)) => f(ctx, index),
            None => 1,
        };
        // SAFETY: flush C stdio, then leave without the master's atexit handlers.
        unsafe {
            libc::fflush(core::ptr::null_mut());
            libc::_exit(code & 0xff)
        }
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

/// Room for any event description ([`describe_event`]).
pub const EVENT_TEXT_MAX: usize = 200;

/// The one description of a supervisor event, used by the default log, the C ABI
/// (`dk_event_describe`) and through it the Perl and Zig bindings: `worker 4242 started
/// (index 0)`, `worker 4242 killed by signal 9`, `upgrade failed (the new generation exited
/// before it was ready); still serving`, … No allocation; not for a signal handler (it may
/// call `strerror_r`).
pub fn describe_event(kind: i32, pid: i32, value: i32, b: &mut sys::Buf<EVENT_TEXT_MAX>) {
    fn num(b: &mut sys::Buf<EVENT_TEXT_MAX>, v: i32) {
        if v < 0 {
            b.push(b"-").push_u64(-(v as i64) as u64);
        } else {
            b.push_u64(v as u64);
        }
    }
    fn errno_text(b: &mut sys::Buf<EVENT_TEXT_MAX>, neg: i32) {
        let mut msg = [0u8; 96];
        // SAFETY: strerror_r (XSI) writes at most msg.len() bytes, NUL-terminated, into msg.
        let ok = unsafe { libc::strerror_r(-neg, msg.as_mut_ptr().cast(), msg.len()) } == 0;
        let end = msg.iter().position(|&c| c == 0).unwrap_or(0);
        if ok && end > 0 {
            b.push(&msg[..end]);
        } else {
            b.push(b"errno ").push_u64(-(neg as i64) as u64);
        }
    }
    fn status(b: &mut sys::Buf<EVENT_TEXT_MAX>, st: i32) {
        if libc::WIFSIGNALED(st) {
            b.push(b"killed by signal ")
                .push_u64(libc::WTERMSIG(st) as u64);
        } else {
            b.push(b"exited with status ")
                .push_u64(libc::WEXITSTATUS(st) as u64);
        }
    }
    let p = pid.max(0) as u64;
    match kind {
        event::SPAWNED => {
            b.push(b"worker ").push_u64(p).push(b" started (index ");
            num(b, value);
            b.push(b")");
        }
        event::EXITED => {
            b.push(b"worker ").push_u64(p).push(b" ");
            status(b, value);
        }
        event::RESPAWN_DELAYED => {
            b.push(b"worker crashed at start; next start in ");
            num(b, value);
            b.push(b" ms");
        }
        event::WORKER_READY if value < 0 => {
            b.push(b"worker ")
                .push_u64(p)
                .push(b" assumed ready (no report within the ready timeout)");
        }
        event::WORKER_READY => {
            b.push(b"worker ").push_u64(p).push(b" ready");
        }
        event::READY if value < 0 => {
            b.push(b"master ")
                .push_u64(p)
                .push(b" ready; notification failed: ");
            errno_text(b, value);
        }
        event::READY => {
            b.push(b"master ").push_u64(p).push(b" ready with ");
            num(b, value);
            b.push(b" workers");
        }
        event::RELOADING => {
            b.push(b"HUP: rolling restart to generation ");
            num(b, value);
        }
        event::RELOADED => {
            b.push(b"rolling restart done (generation ");
            num(b, value);
            b.push(b")");
        }
        event::STOPPING => {
            b.push(b"stopping; graceful timeout ");
            num(b, value);
            b.push(b" ms");
        }
        event::KILLED => {
            b.push(b"worker ")
                .push_u64(p)
                .push(b" killed after the graceful timeout");
        }
        event::UPGRADE_STARTED => {
            b.push(b"upgrade: new generation ")
                .push_u64(p)
                .push(b" started");
        }
        event::UPGRADE_READY => {
            b.push(b"upgrade: new generation ")
                .push_u64(p)
                .push(b" ready; draining the old one");
        }
        event::UPGRADE_FAILED => {
            b.push(b"upgrade failed (");
            match value {
                1 => {
                    b.push(b"the new generation reported a failure");
                }
                2 => {
                    b.push(b"the new generation exited before it was ready");
                }
                3 => {
                    b.push(b"the new generation was not ready in time");
                }
                4 => {
                    b.push(b"no upgrade program configured");
                }
                v if v < 0 => {
                    b.push(b"could not start the new program: ");
                    errno_text(b, v);
                }
                _ => {
                    b.push(b"could not start the new program");
                }
            }
            b.push(b"); still serving");
        }
        event::LOG_REOPENED if value < 0 => {
            b.push(b"log reopen failed: ");
            errno_text(b, value);
        }
        event::LOG_REOPENED => {
            b.push(b"log reopened");
        }
        event::WORKERS_CHANGED => {
            b.push(b"worker count now ");
            num(b, value);
        }
        event::WORKER_FAILED => {
            b.push(b"worker ")
                .push_u64(p)
                .push(b" failed to start (code ");
            num(b, value);
            b.push(b")");
        }
        event::RELOAD_FAILED => {
            b.push(b"rolling restart abandoned: new worker ")
                .push_u64(p)
                .push(b" ");
            status(b, value);
            b.push(b" before it was ready; the old workers keep serving");
        }
        _ => {
            b.push(b"event ");
            num(b, kind);
            b.push(b" (pid ");
            num(b, pid);
            b.push(b", value ");
            num(b, value);
            b.push(b")");
        }
    }
}

/// The log line for an event when the caller set no callback: `daemonkit: ` and
/// [`describe_event`]'s text, one line on stderr.
pub fn default_log(kind: i32, pid: i32, value: i32) {
    let mut b = sys::Buf::<EVENT_TEXT_MAX>::new();
    describe_event(kind, pid, value, &mut b);
    let mut line = sys::Buf::<{ EVENT_TEXT_MAX + 16 }>::new();
    line.push(b"daemonkit: ").push(b.as_bytes()).push(b"\n");
    let _ = sys::write_all(2, line.as_bytes());
}

/// The Rust layer: the supervisor with closures.
#[cfg(feature = "std")]
pub mod rust {
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
        /// Receives every event (default: one line each on stderr).
        pub fn on_event(mut self, f: impl FnMut(Event) + 'a) -> Self {
            self.events = Some(Box::new(Box::new(f)));
            self
        }
        /// Runs the master until a graceful stop or a completed upgrade. `worker` runs in each
        /// forked worker; its return value is the worker's exit status.
        pub fn run(mut self, worker: impl FnMut(u32) -> i32 + 'a) -> io::Result<Outcome> {
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
            r
        }
    }
}
