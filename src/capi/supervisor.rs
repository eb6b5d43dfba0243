//! C ABI: the prefork supervisor.
//!
//! Callbacks from Perl (FFI::Platypus closures) and Zig (`callconv(.c)` functions) work the
//! same as C ones: they are plain function pointers with a context pointer, called on the
//! main thread of the master (events) or of the worker (post-fork hook, worker entry) —
//! never from a signal handler. Keep a Perl closure referenced for the supervisor's life.

use super::pidfile::dk_pidfile;
use super::ret;
use crate::imp::supervisor::{Outcome, Supervisor};
use crate::sys;
use core::ffi::{c_char, c_int, c_void};

/// A prefork supervisor (opaque): `dk_supervisor_new`, configure, `dk_supervisor_run`,
/// `dk_supervisor_free`.
pub struct dk_supervisor {
    inner: Supervisor,
}

/// Worker entry, run in each forked worker after the post-fork hook: `ctx` as given to
/// `dk_supervisor_set_worker`, `index` the worker's slot (0..N-1, reused). Its return value
/// is the worker's exit status (0: clean exit, e.g. max-requests reached — replaced at once
/// without counting as a crash, unless it exits within a second without ever reporting
/// ready, which is throttled like a crash). It should serve on the inherited listeners, call
/// `dk_ready()` once it accepts connections, handle SIGTERM by finishing in-flight requests
/// and returning, and SIGUSR1 by `dk_log_reopen()`.
pub type dk_worker_fn = Option<extern "C" fn(ctx: *mut c_void, index: u32) -> c_int>;
/// Post-fork hook, run in each worker right after the fork with default signal dispositions
/// and an empty mask: rebuild event loops and other per-process state here.
pub type dk_hook_fn = Option<extern "C" fn(ctx: *mut c_void, index: u32)>;
/// Event callback, run in the master's loop: `kind` is a `DK_EVENT_*`, `pid` and `value` as
/// documented for each kind.
pub type dk_event_fn = Option<extern "C" fn(ctx: *mut c_void, kind: c_int, pid: i32, value: i32)>;
/// Worker output callback, run in the master just before each worker is forked: return an
/// fd that becomes the worker's stdout and stderr (the master closes it after the fork, so
/// hand over a fresh one, e.g. the write end of a pipe whose read end you keep), or -1 to
/// let the worker inherit the master's.
pub type dk_stdio_fn = Option<extern "C" fn(ctx: *mut c_void, index: u32) -> c_int>;

/// A worker started: pid, value = its index.
pub const DK_EVENT_SPAWNED: c_int = 1;
/// A worker exited: pid, value = its wait status (WIFEXITED/WEXITSTATUS/WTERMSIG apply).
pub const DK_EVENT_EXITED: c_int = 2;
/// Crash loop throttle: pid of the crashed worker, value = delay before the next start (ms).
pub const DK_EVENT_RESPAWN_DELAYED: c_int = 3;
/// A worker is ready: pid, value = index, or -1 when assumed after the ready timeout.
pub const DK_EVENT_WORKER_READY: c_int = 4;
/// Every initial worker is ready; the master called `dk_ready()`: pid = master, value = N
/// (or a negative errno from the notification).
pub const DK_EVENT_READY: c_int = 5;
/// HUP: rolling restart began: value = the new generation number.
pub const DK_EVENT_RELOADING: c_int = 6;
/// Rolling restart finished: value = generation.
pub const DK_EVENT_RELOADED: c_int = 7;
/// TERM/INT/QUIT (or a completed upgrade): graceful stop began: value = timeout in ms.
pub const DK_EVENT_STOPPING: c_int = 8;
/// A worker was killed with SIGKILL after the graceful timeout or a second TERM: pid.
pub const DK_EVENT_KILLED: c_int = 9;
/// USR2: a new generation was started: pid.
pub const DK_EVENT_UPGRADE_STARTED: c_int = 10;
/// The new generation is ready; this one drains and `dk_supervisor_run` returns
/// `DK_SUPERVISOR_UPGRADED`: pid of the new master.
pub const DK_EVENT_UPGRADE_READY: c_int = 11;
/// Upgrade rolled back, still serving: pid (0 if none started), value = 1 it reported a
/// failure, 2 it exited first, 3 timeout, 4 no upgrade program set, or a negative errno
/// from starting it.
pub const DK_EVENT_UPGRADE_FAILED: c_int = 12;
/// USR1: log reopened (value 0, or the negative errno) and forwarded to the workers that are
/// ready and not stopping; a worker that has not reported ready yet gets it once it does
/// (until it installed its handler, USR1's default action would kill it).
pub const DK_EVENT_LOG_REOPENED: c_int = 13;
/// TTIN/TTOU: value = the new worker count.
pub const DK_EVENT_WORKERS_CHANGED: c_int = 14;
/// A worker reported a startup failure with `dk_fail`: pid, value = code.
pub const DK_EVENT_WORKER_FAILED: c_int = 15;

/// A rolling restart was abandoned: a new worker exited before it was ready (a program that
/// binds its own port instead of using the inherited listeners gets `EADDRINUSE`, say); the
/// old workers keep serving: pid of that worker, value = its wait status.
pub const DK_EVENT_RELOAD_FAILED: c_int = 16;
/// The restart policy gave up (`dk_supervisor_set_restart`): pid of the last crashed worker,
/// value = the crash count of the window. Every worker is stopped; `dk_supervisor_run`
/// returns `DK_SUPERVISOR_GAVE_UP`.
pub const DK_EVENT_GAVE_UP: c_int = 17;

/// Writes the library's one-line description of a supervisor event (the text of its default
/// log, without the `daemonkit: ` prefix) into `buf`, NUL-terminated and truncated to
/// `len - 1` bytes, and returns the length of the whole description (as `snprintf`: a result
/// `>= len` means it was truncated; 256 bytes always suffice). `buf` may be NULL when `len`
/// is 0. Unknown kinds are described as `event K (pid P, value V)`. `-EINVAL` for NULL `buf`
/// with `len` > 0.
#[no_mangle]
pub unsafe extern "C" fn dk_event_describe(
    kind: c_int,
    pid: i32,
    value: i32,
    buf: *mut c_char,
    len: usize,
) -> c_int {
    if buf.is_null() && len > 0 {
        return -libc::EINVAL;
    }
    let mut b = sys::Buf::<{ crate::imp::supervisor::EVENT_TEXT_MAX }>::new();
    crate::imp::supervisor::describe_event(kind, pid, value, &mut b);
    let text = b.as_bytes();
    if len > 0 {
        let n = text.len().min(len - 1);
        // SAFETY: buf has room for len bytes per the contract; n + 1 <= len.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    text.len() as c_int
}

/// `dk_supervisor_run`: graceful stop finished, PID file unlinked; exit 0.
pub const DK_SUPERVISOR_STOPPED: c_int = 0;
/// `dk_supervisor_run`: a new generation took over; exit 0 without removing the PID file.
pub const DK_SUPERVISOR_UPGRADED: c_int = 1;
/// `dk_supervisor_run`: the restart policy gave up (too many crashes within its window):
/// every worker was stopped and the PID file unlinked. Exit with a distinct code.
pub const DK_SUPERVISOR_GAVE_UP: c_int = 2;

/// `dk_supervisor_set_flags`: reap every child, not only the workers — orphans of their
/// descendants are reparented to the master when it is PID 1 (a container's init) or, with
/// this flag, a child subreaper (`dk_supervisor_run` makes it one).
pub const DK_SUPERVISOR_REAP_ALL: u32 = 1;
/// `dk_supervisor_set_flags`: one worker, run once (tini's model): not respawned; HUP, INT,
/// QUIT, USR1 and USR2 are forwarded to it, TERM as the stop signal (INT, QUIT and TERM also
/// start the graceful timeout); the master stops when it exits and
/// `dk_supervisor_exit_status` gives its status. Needs 1 worker.
pub const DK_SUPERVISOR_ONCE: u32 = 2;
/// `dk_supervisor_set_flags`: each worker leads a process group of its own, and the signals
/// the master sends it (stop signal, forwarded signals, KILL) go to the whole group, like
/// `tini -g`.
pub const DK_SUPERVISOR_SIGNAL_GROUP: u32 = 4;

/// Most workers one supervisor runs.
pub const DK_SUPERVISOR_MAX_WORKERS: u32 = 256;

/// Creates a supervisor with 1 worker, a 30 s graceful timeout, a 2 s worker ready timeout
/// and a 60 s upgrade timeout; stores it in `*out`. `-EINVAL` for NULL `out`, `-ENOMEM`.
#[no_mangle]
pub unsafe extern "C" fn dk_supervisor_new(out: *mut *mut dk_supervisor) -> c_int {
    if out.is_null() {
        return -libc::EINVAL;
    }
    match super::new_handle(dk_supervisor {
        inner: Supervisor::new(),
    }) {
        Some(h) => {
            // SAFETY: out is a valid out-pointer.
            unsafe { *out = h };
            0
        }
        None => -libc::ENOMEM,
    }
}

/// Frees a supervisor (NULL is accepted). Returns 0.
#[no_mangle]
pub unsafe extern "C" fn dk_supervisor_free(sv: *mut dk_supervisor) -> c_int {
    if !sv.is_null() {
        // SAFETY: sv is a live handle, freed exactly once here.
        let _ = unsafe { super::free_handle(sv) };
    }
    0
}

fn with(sv: *mut dk_supervisor, f: impl FnOnce(&mut Supervisor) -> c_int) -> c_int {
    // SAFETY: sv is NULL or a live handle from dk_supervisor_new.
    unsafe { super::with_handle(sv, |h| f(&mut h.inner)) }
}

/// Sets the number of workers (1..=`DK_SUPERVISOR_MAX_WORKERS`), else `-EINVAL`.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_workers(sv: *mut dk_supervisor, n: u32) -> c_int {
    with(sv, |s| {
        if n == 0 || n > DK_SUPERVISOR_MAX_WORKERS {
            return -libc::EINVAL;
        }
        s.workers = n;
        0
    })
}

/// Sets the graceful stop timeout in ms: after TERM, workers still running then are killed.
/// A single worker told to stop (TTOU, a rolling restart) gets the same time before KILL.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_graceful_timeout(sv: *mut dk_supervisor, ms: u32) -> c_int {
    with(sv, |s| {
        s.graceful_ms = ms;
        0
    })
}

/// Sets how long a new worker may take to call `dk_ready()` before the master assumes it is
/// ready anyway (ms; default 2000).
#[no_mangle]
pub extern "C" fn dk_supervisor_set_ready_timeout(sv: *mut dk_supervisor, ms: u32) -> c_int {
    with(sv, |s| {
        s.ready_timeout_ms = ms;
        0
    })
}

/// Sets the worker entry `f` with its context. `-EINVAL` for a NULL `f` or handle.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_worker(
    sv: *mut dk_supervisor,
    f: dk_worker_fn,
    ctx: *mut c_void,
) -> c_int {
    with(sv, |s| match f {
        Some(f) => {
            s.worker = Some((f, ctx));
            0
        }
        None => -libc::EINVAL,
    })
}

/// Makes each worker exec `argv` (NULL-terminated, `argv[0]` an absolute path; the array
/// must stay valid for the supervisor's life) with the listeners as fds 3.. and
/// `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`, and its readiness pipe in
/// `DAEMONKIT_READY_FD` (write one byte `r` to it, then close it, when ready), instead of
/// calling a worker entry. `NOTIFY_SOCKET`/`WATCHDOG_*` are not passed on (the master speaks
/// to systemd), and the master forwards USR1 to workers, so a program that does not handle
/// USR1 should ignore it. `-EINVAL` for NULL.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_exec(
    sv: *mut dk_supervisor,
    argv: *const *const c_char,
) -> c_int {
    with(sv, |s| {
        if argv.is_null() {
            return -libc::EINVAL;
        }
        s.exec_argv = argv;
        0
    })
}

/// Sets the post-fork hook (NULL `f` clears it).
#[no_mangle]
pub extern "C" fn dk_supervisor_set_post_fork(
    sv: *mut dk_supervisor,
    f: dk_hook_fn,
    ctx: *mut c_void,
) -> c_int {
    with(sv, |s| {
        s.post_fork = f.map(|f| (f, ctx));
        0
    })
}

/// Sets the event callback (NULL `f`: events are logged as one line each on stderr).
#[no_mangle]
pub extern "C" fn dk_supervisor_set_event(
    sv: *mut dk_supervisor,
    f: dk_event_fn,
    ctx: *mut c_void,
) -> c_int {
    with(sv, |s| {
        s.on_event = f.map(|f| (f, ctx));
        0
    })
}

/// Adds a listening fd that workers inherit and an upgrade passes on (at most 62).
/// `-EBADF` for a closed fd, `-ENOSPC` when full.
#[no_mangle]
pub extern "C" fn dk_supervisor_add_listener(sv: *mut dk_supervisor, fd: c_int) -> c_int {
    with(sv, |s| ret(s.add_listener(fd)))
}

/// Adds a listener as a pair of TCP sockets bound to the same address with `SO_REUSEPORT`
/// (`dk_listen_tcp(addr, 0, DK_LISTEN_REUSEPORT)` twice, `a` first, both before any
/// privilege drop): rolling restarts then lose no freshly accepted connection. Generations
/// alternate between the two sockets; a one-instruction classic BPF program on the
/// reuseport group (`SO_ATTACH_REUSEPORT_CBPF`) sends new connections to the active
/// generation's socket only. A HUP brings the whole new generation up on the other socket,
/// switches new connections to it, waits until the old socket's accept queue is empty (at
/// most a second), and only then sends the old workers the stop signal — so a server that
/// drops connections it has just accepted when told to stop (Starman, uvicorn) loses none.
/// In-process workers find their generation's socket at `a`'s fd number; exec'd workers
/// get it as their fd 3 + i. Counts as one listener. `-EBADF` for a closed fd, `-EINVAL`
/// unless both are listening TCP sockets with `SO_REUSEPORT` on the same address,
/// `-ENOSPC` when full. (Any process of the same user may join a reuseport group: keep
/// the sockets root's, bound before the drop.)
#[no_mangle]
pub extern "C" fn dk_supervisor_add_listener_pair(
    sv: *mut dk_supervisor,
    a: c_int,
    b: c_int,
) -> c_int {
    with(sv, |s| ret(s.add_listener_pair(a, b)))
}

/// Adds a listener as `n` TCP sockets bound to the same address with `SO_REUSEPORT` (one
/// reuseport group; `dk_listen_tcp(addr, 0, DK_LISTEN_REUSEPORT)` `n` times, `fds[0]`
/// first, all before any privilege drop), one per worker slot: worker slot `i` (the
/// `index` its entry gets, which a rolling restart's replacement takes over) accepts on
/// `fds[i % n]` only, and the kernel spreads new connections over the `n` sockets. The
/// master holds all `n` for its life, so a slot's accept queue outlives its worker: what was
/// queued when a worker stopped (a rolling restart) or crashed waits for the slot's next
/// worker (after a crash, the respawn delay included). With many workers this also spares
/// every worker a wake-up for every new connection on one shared socket. In-process workers
/// find their slot's socket at `fds[0]`'s fd number (the others are closed in them);
/// exec'd workers get it as their fd 3 + the listener's position. The worker count never
/// goes below `n` (TTOU stops there; `dk_supervisor_run` gives `-EINVAL` for fewer
/// workers): a socket nobody accepts on would still get connections. An upgrade's new
/// generation gets the whole group: `fds[0]` in the listener's place, `fds[1..n]` after
/// the last listener. Counts as one listener; at most one per supervisor, not with
/// `dk_supervisor_add_listener_pair`. `-EINVAL` for NULL `fds`, `n` 0, sockets that are not
/// listening TCP sockets with `SO_REUSEPORT` on one address, a duplicate, or pairs in use;
/// `-EBADF` for a closed fd; `-EBUSY` when given already; `-ENOSPC` when the listeners and
/// the group's sockets would be more than an upgrade passes (62).
#[no_mangle]
pub unsafe extern "C" fn dk_supervisor_add_listener_slots(
    sv: *mut dk_supervisor,
    fds: *const c_int,
    n: u32,
) -> c_int {
    if fds.is_null() || n == 0 || n > DK_SUPERVISOR_MAX_WORKERS {
        return -libc::EINVAL;
    }
    // SAFETY: fds points to n ints per the contract.
    let fds = unsafe { core::slice::from_raw_parts(fds, n as usize) };
    with(sv, |s| ret(s.add_listener_slots(fds)))
}

/// Sets `LISTEN_FDNAMES` for exec'd workers and upgrades (colon-separated; must stay valid
/// for the supervisor's life; NULL clears).
#[no_mangle]
pub unsafe extern "C" fn dk_supervisor_set_listen_names(
    sv: *mut dk_supervisor,
    names: *const c_char,
) -> c_int {
    if !names.is_null() {
        // SAFETY: names is a C string.
        if let Err(e) = unsafe { sys::cstr_arg(names, 65536) } {
            return e.to_c();
        }
    }
    with(sv, |s| {
        s.names = names;
        0
    })
}

/// Sets the PID file the master unlinks after a graceful stop, hands over on upgrade (letting
/// go of its own reference to the lock as soon as the new generation is ready) and
/// rewrites on rollback; workers close their copy of its fd at start. `pf` must stay open
/// for the supervisor's life (free it after `dk_supervisor_run` returns). NULL clears.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_pidfile(sv: *mut dk_supervisor, pf: *mut dk_pidfile) -> c_int {
    with(sv, |s| {
        // SAFETY: pf is NULL or a live handle.
        s.pidfile = match unsafe { pf.as_mut() } {
            Some(h) => super::pidfile::pidfile_core(h),
            None => core::ptr::null_mut(),
        };
        0
    })
}

/// Enables USR2 upgrades: the new generation runs `argv` (NULL-terminated, `argv[0]` an
/// absolute path such as the resolved `/proc/self/exe`; must stay valid for the supervisor's
/// life) and must report `dk_ready()` within `timeout_ms` (0: 60 s). `-EINVAL` for NULL.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_upgrade(
    sv: *mut dk_supervisor,
    argv: *const *const c_char,
    timeout_ms: u32,
) -> c_int {
    with(sv, |s| {
        if argv.is_null() {
            return -libc::EINVAL;
        }
        s.upgrade_argv = argv;
        s.upgrade_timeout_ms = if timeout_ms == 0 { 60_000 } else { timeout_ms };
        0
    })
}

/// Sets the signal that stops a worker — a rolling restart's old worker, TTOU, a graceful
/// stop (default SIGTERM; Starman, for one, stops gracefully on SIGQUIT). `-EINVAL` for a
/// signal that cannot be caught or handled through a pipe (KILL, STOP, the synchronous
/// faults) or 0.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_stop_signal(sv: *mut dk_supervisor, sig: c_int) -> c_int {
    with(sv, |s| {
        if !crate::imp::signals::pipeable(sig) {
            return -libc::EINVAL;
        }
        s.stop_signal = sig;
        0
    })
}

/// Sets the restart policy. A worker that dies within a second of its start delays the next
/// start by 1 s, doubling every third such crash in a row, at most `max_backoff_ms` (0: the
/// default, 8000). After `give_up` crashes (any exit the master did not ask for, other than
/// a clean one after the worker was ready) within `window_ms`, the master stops every
/// worker, emits `DK_EVENT_GAVE_UP` and `dk_supervisor_run` returns
/// `DK_SUPERVISOR_GAVE_UP`; `give_up` 0 never gives up (the default). `-EINVAL` for
/// `give_up` above 64, or a `give_up` with a 0 window.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_restart(
    sv: *mut dk_supervisor,
    max_backoff_ms: u32,
    give_up: u32,
    window_ms: u32,
) -> c_int {
    with(sv, |s| {
        if give_up > crate::imp::supervisor::MAX_GIVE_UP || (give_up > 0 && window_ms == 0) {
            return -libc::EINVAL;
        }
        s.max_backoff_ms = if max_backoff_ms == 0 {
            crate::imp::supervisor::DEFAULT_MAX_BACKOFF_MS
        } else {
            max_backoff_ms
        };
        s.give_up = (give_up, window_ms);
        0
    })
}

/// Sets `DK_SUPERVISOR_REAP_ALL`, `DK_SUPERVISOR_ONCE`, `DK_SUPERVISOR_SIGNAL_GROUP` (0
/// clears them). `-EINVAL` for unknown bits.
#[no_mangle]
pub extern "C" fn dk_supervisor_set_flags(sv: *mut dk_supervisor, flags: u32) -> c_int {
    with(sv, |s| {
        if flags & !crate::imp::supervisor::ALL_FLAGS != 0 {
            return -libc::EINVAL;
        }
        s.flags = flags;
        0
    })
}

/// Sets the worker output callback (NULL `f`: workers inherit the master's stdout and
/// stderr). Use it to tell the workers' lines apart (a pipe per worker).
#[no_mangle]
pub extern "C" fn dk_supervisor_set_stdio(
    sv: *mut dk_supervisor,
    f: dk_stdio_fn,
    ctx: *mut c_void,
) -> c_int {
    with(sv, |s| {
        s.stdio = f.map(|f| (f, ctx));
        0
    })
}

/// After `dk_supervisor_run`: the exit code the master should leave with — with
/// `DK_SUPERVISOR_ONCE` the worker's (its exit status, or 128 + the signal that killed it),
/// otherwise 0. `-EINVAL` for a NULL handle.
#[no_mangle]
pub extern "C" fn dk_supervisor_exit_status(sv: *mut dk_supervisor) -> c_int {
    with(sv, |s| s.exit_status())
}

/// Runs the master: forks the workers and handles HUP (rolling restart), TTIN/TTOU,
/// TERM/INT/QUIT (graceful stop; a second one kills at once), USR1 (log reopen, forwarded),
/// USR2 (upgrade) and CHLD (reaping only its own workers, respawning, crash throttle) on the
/// library's signal fd. Calls `dk_ready()` once every initial worker is ready. Returns
/// `DK_SUPERVISOR_STOPPED` after a graceful stop (PID file unlinked) or
/// `DK_SUPERVISOR_UPGRADED` after a successful upgrade (leave the PID file alone); exit 0
/// in both cases; `DK_SUPERVISOR_GAVE_UP` when the restart policy gave up. Never returns
/// in a worker (it exits with the entry's return value).
/// When the graceful stop begins the master releases its references to the listening
/// sockets (the fds given to `dk_supervisor_add_listener` then refer to /dev/null; close them
/// as usual), so new connections are refused once the workers have closed theirs.
/// Each exec'd worker also gets `SERVER_STARTER_PORT` (the listeners as `ADDR=FD` joined by
/// `;`) and `SERVER_STARTER_GENERATION` (1, then +1 per rolling restart): Server::Starter's
/// protocol, which Starman, Starlet and Gazelle speak.
/// Errors: `-EINVAL` no worker entry or program set, NULL handle, `DK_SUPERVISOR_ONCE` with
/// more than one worker; `-EBUSY` signals are already registered in this process (the
/// master owns the signal pipe while it runs: `dk_signal_close` first); signal setup
/// errnos.
#[no_mangle]
pub extern "C" fn dk_supervisor_run(sv: *mut dk_supervisor) -> c_int {
    with(sv, |s| match s.run() {
        Ok(Outcome::Stopped) => DK_SUPERVISOR_STOPPED,
        Ok(Outcome::Upgraded) => DK_SUPERVISOR_UPGRADED,
        Ok(Outcome::GaveUp) => DK_SUPERVISOR_GAVE_UP,
        Err(e) => e.to_c(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imp::supervisor::{self, event as ev};
    #[test]
    fn event_constants_match_the_core() {
        let pairs = [
            (DK_EVENT_SPAWNED, ev::SPAWNED),
            (DK_EVENT_EXITED, ev::EXITED),
            (DK_EVENT_RESPAWN_DELAYED, ev::RESPAWN_DELAYED),
            (DK_EVENT_WORKER_READY, ev::WORKER_READY),
            (DK_EVENT_READY, ev::READY),
            (DK_EVENT_RELOADING, ev::RELOADING),
            (DK_EVENT_RELOADED, ev::RELOADED),
            (DK_EVENT_STOPPING, ev::STOPPING),
            (DK_EVENT_KILLED, ev::KILLED),
            (DK_EVENT_UPGRADE_STARTED, ev::UPGRADE_STARTED),
            (DK_EVENT_UPGRADE_READY, ev::UPGRADE_READY),
            (DK_EVENT_UPGRADE_FAILED, ev::UPGRADE_FAILED),
            (DK_EVENT_LOG_REOPENED, ev::LOG_REOPENED),
            (DK_EVENT_WORKERS_CHANGED, ev::WORKERS_CHANGED),
            (DK_EVENT_WORKER_FAILED, ev::WORKER_FAILED),
            (DK_EVENT_RELOAD_FAILED, ev::RELOAD_FAILED),
            (DK_EVENT_GAVE_UP, ev::GAVE_UP),
            (DK_SUPERVISOR_GAVE_UP, supervisor::Outcome::GaveUp as i32),
        ];
        for (c, r) in pairs {
            assert_eq!(c, r);
        }
        assert_eq!(DK_SUPERVISOR_MAX_WORKERS as usize, supervisor::MAX_WORKERS);
        assert_eq!(DK_SUPERVISOR_REAP_ALL, supervisor::REAP_ALL);
        assert_eq!(DK_SUPERVISOR_ONCE, supervisor::ONCE);
        assert_eq!(DK_SUPERVISOR_SIGNAL_GROUP, supervisor::SIGNAL_GROUP);
    }
}
