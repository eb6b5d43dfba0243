//! `daemonkit` — run any program as a supervised daemon, and the init-script verbs.
//!
//! ```text
//! daemonkit run [options] -- PROGRAM [ARGS...]
//! daemonkit start --pid FILE [options] -- PROGRAM [ARGS...]
//! daemonkit stop|restart|reload|status --pid FILE ...
//! ```
//!
//! `run` binds the listeners itself (so a privileged port works for an unprivileged program),
//! locks the PID file, daemonizes with readiness, redirects the output to a log it can
//! reopen, sets limits, drops privileges and then runs a prefork supervisor whose workers
//! execute PROGRAM with the sockets as `LISTEN_FDS`. HUP is a rolling restart of the program
//! generation that never closes the listeners.
//!
//! `start`/`stop`/`status`/`reload` look at the PID file's lock, never at a bare pid: a stale
//! file's pid may belong to an unrelated process by now, and it is never signalled.

mod args;
mod ctl;
mod notify;
mod relay;

use args::{parse_run, seconds, wants_help, Config, Ready};
use daemonkit::daemon::Daemonize;
use daemonkit::pidfile::Pidfile;
use daemonkit::supervisor::{event, Event, Outcome, Supervisor, SupervisorFlags};
use daemonkit::{listen, privileges, rlimit, Error};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The program name used in messages.
pub const NAME: &str = "daemonkit";

/// Exit code: a usage error (bad option, missing value).
pub const EXIT_USAGE: u8 = 2;

const HELP: &str = "\
usage: daemonkit run [options] -- PROGRAM [ARGS...]
       daemonkit start --pid FILE [options] -- PROGRAM [ARGS...]
       daemonkit stop --pid FILE [--timeout SECONDS]
       daemonkit restart --pid FILE [--timeout SECONDS] [options] -- PROGRAM [ARGS...]
       daemonkit reload --pid FILE
       daemonkit status --pid FILE
       daemonkit help [COMMAND]

Runs PROGRAM as a supervised daemon: daemonkit binds the listeners and passes them as
LISTEN_FDS (fds 3..), runs N copies of PROGRAM (respawned, crash-throttled), and restarts
them without closing the listeners on HUP.

Exit codes:
  run/start   0 stopped cleanly (run) or the daemon is ready (-D/start; start also when
              already running), 1 failure (the message says what), 2 usage error,
              3 gave up (--give-up); with --once, PROGRAM's status
  stop        0 stopped or not running, 1 could not stop it, 2 usage error
  reload      0 HUP sent, 7 not running, 1 other error, 2 usage error
  status      0 running, 1 dead but the pid file remains, 3 not running, 4 unknown (the
              file cannot be read, or it is locked by a process other than its pid)

`daemonkit help COMMAND` or `daemonkit COMMAND --help` describes one command.";

const HELP_RUN: &str = "\
usage: daemonkit run [options] -- PROGRAM [ARGS...]

  -D, --daemonize         run in the background; the launcher exits 0 once PROGRAM is
                          ready, or prints the error and exits with its code
      --pid FILE          lock FILE and write the supervisor's pid into it
      --listen [NAME=]ADDR  bind HOST:PORT, [V6]:PORT or unix:/PATH before dropping
                          privileges and pass it to PROGRAM (LISTEN_FDS/LISTEN_FDNAMES,
                          fds 3.. in order; NAME defaults to 'unknown'); repeatable
  -w, --workers N         run N copies of PROGRAM sharing the listeners (default 1);
                          TTIN/TTOU add/remove one
      --ready MODE        how a new PROGRAM tells it is ready (default delay=1000):
                            fd        it writes 'r' to the fd in $DAEMONKIT_READY_FD
                                      (assumed ready after --ready-timeout)
                            notify    it sends READY=1 to $NOTIFY_SOCKET (sd_notify),
                                      a socket daemonkit provides (assumed ready after
                                      --ready-timeout)
                            delay=MS  assumed ready after MS milliseconds (or earlier
                                      through $DAEMONKIT_READY_FD)
      --ready-timeout SECS  with fd/notify: when it is assumed ready anyway (default 60)
      --graceful-timeout SECS  on TERM, how long PROGRAM may drain before KILL (default 30)
      --user USER         drop privileges to USER (and its groups) before starting PROGRAM
      --group GROUP       the primary group (default: USER's)
      --cap NAME[,NAME]   with --user: keep these capabilities (NET_BIND_SERVICE,
                          NET_RAW, ...; repeatable) for daemonkit and PROGRAM (ambient:
                          they survive exec); verified after the drop
      --no-new-privs      with --user: PR_SET_NO_NEW_PRIVS (no setuid binary or file
                          capability gives anything back)
      --drop-bounding     with --user: every capability not kept leaves the bounding set
      --chdir DIR         working directory (default: / with -D, unchanged otherwise)
      --umask OCTAL       umask (default: unchanged)
      --log FILE          append daemonkit's and PROGRAM's stdout/stderr to FILE;
                          USR1 reopens it (after logrotate)
      --nofile N          raise the soft RLIMIT_NOFILE to N (capped at the hard limit)
      --no-core           disable core dumps (RLIMIT_CORE 0)
      --env KEY=VALUE     set a variable for PROGRAM; repeatable
      --timeout SECS      with -D: how long the launcher waits for readiness (default:
                          as long as the daemon lives)
      --stop-signal SIG   the signal that stops a copy of PROGRAM (an old one after HUP,
                          TTOU, a graceful stop; default TERM; Starman: QUIT)
      --max-backoff SECS  cap of the crash-loop delay (1 s, doubling every third crash at
                          start; default 8)
      --give-up N/SECS    stop for good, exit code 3, after N crashes within SECS
      --notify-fd N       s6 readiness: write a newline to fd N and close it once PROGRAM
                          is ready (the service's notification-fd; foreground only)
      --init              reap every orphan (a child subreaper), as tini; automatic when
                          daemonkit is PID 1 (a container's entrypoint)
      --once              run PROGRAM once, not respawned (tini's model): HUP, INT, QUIT,
                          USR1, USR2 are forwarded to it, TERM as --stop-signal; daemonkit
                          exits with its status (128 + N when killed by signal N)
      --signal-group      PROGRAM leads its own process group and signals go to the whole
                          group (like tini -g)
      --reuseport         the first TCP --listen as one SO_REUSEPORT socket per worker
                          (-w N sockets, held by daemonkit): copy i accepts on socket i
                          only, and what its socket queued outlives it; TTOU stops at N
      --log-timestamps    start each line of output with its time (UTC, RFC 3339, ms)
      --log-prefix        start each line with its source: [worker INDEX pid PID] or
                          [daemonkit pid PID] (lines are kept whole; without --log the
                          lines go to daemonkit's stderr)

Signals to the supervisor: HUP rolling restart (a new PROGRAM is ready before an old one is
stopped; the listeners stay open; if a new PROGRAM exits before it is ready, the restart is
abandoned and the old ones keep serving — PROGRAM must use the sockets passed as fd 3..,
LISTEN_FDS, not bind its own port, which the old copy still holds; each copy also gets
SERVER_STARTER_PORT=ADDR=FD;... and SERVER_STARTER_GENERATION, Server::Starter's protocol,
so Starman, Starlet and Gazelle serve on the inherited sockets); TERM/INT/QUIT graceful stop (a second one kills);
TTIN/TTOU one more/fewer worker; USR1 reopen the log and forward USR1 (to each copy once it
is ready). PROGRAM starts with every signal disposition at its default and an empty signal
mask, except USR1, which is ignored unless PROGRAM installs its own handler.

Exit codes: 0 stopped cleanly, or (-D) the daemon is ready; 1 failure, with a message such as
'daemonkit: pid file /run/app.pid: daemon already running (PID: 4242)'; 2 usage error;
3 gave up (--give-up); with --once, PROGRAM's own status (128 + N for signal N).";

const HELP_START: &str = "\
usage: daemonkit start --pid FILE [run options] -- PROGRAM [ARGS...]

`daemonkit run --daemonize`, with --pid required. When a daemon already holds FILE it says so
and exits 0 (LSB). Exit codes: 0 ready or already running, 1 failure, 2 usage error.";

const HELP_STOP: &str = "\
usage: daemonkit stop --pid FILE [--timeout SECONDS]

Sends TERM to the daemon holding FILE's lock, waits up to --timeout (default 35 s) for the
lock to be released and that process to exit, then sends KILL. A pid file whose lock is
free is stale: its pid is never signalled. Neither is the pid of a file whose lock is held
by some other process ('locked by another process, not the pid in the file': the kernel
says which process holds the lock, /proc/PID/fdinfo). Exit codes: 0 stopped or not
running, 1 could not stop it (or the file is locked by another process), 2 usage error.";

const HELP_RESTART: &str = "\
usage: daemonkit restart --pid FILE [--timeout SECONDS] [run options] -- PROGRAM [ARGS...]

`stop` then `start`. For a restart without downtime use `reload` (HUP) instead.
Exit codes: those of start, or 1 when the old daemon could not be stopped.";

const HELP_RELOAD: &str = "\
usage: daemonkit reload --pid FILE

Sends HUP to the daemon holding FILE's lock: a rolling restart of PROGRAM with the listeners
kept open. Exit codes: 0 sent, 7 not running, 1 other error, 2 usage error.";

const HELP_STATUS: &str = "\
usage: daemonkit status --pid FILE

Exit codes (LSB): 0 running, 1 dead but the pid file remains (stale), 3 not running,
4 unknown (the pid file cannot be read, or it is locked by a process other than the pid
written in it — nobody is signalled, and that pid is not reported as running).";

/// Finds PROGRAM like a shell would (a name without '/' through `$PATH`), as an absolute
/// path: the daemon's working directory is `/`.
fn resolve(program: &OsStr) -> Result<PathBuf, String> {
    let show = program.to_string_lossy();
    let executable = |p: &Path| -> bool {
        CString::new(p.as_os_str().as_bytes()).is_ok_and(|c| {
            // SAFETY: access() on a valid C string.
            let ok = unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 };
            ok && p.is_file()
        })
    };
    if program.as_bytes().contains(&b'/') {
        let p = std::path::absolute(program).map_err(|e| format!("{show}: {e}"))?;
        if !p.exists() {
            return Err(format!("{show}: no such file"));
        }
        if !executable(&p) {
            return Err(format!("{show}: not an executable file"));
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let p = dir.join(program);
        if executable(&p) {
            return std::path::absolute(&p).map_err(|e| format!("{show}: {e}"));
        }
    }
    Err(format!("{show}: command not found in PATH"))
}

/// Whether this process (after the privilege drop) may execute `p`.
fn executable_now(p: &Path) -> std::io::Result<()> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: access() on a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// One bound `--listen`: a TCP address is a pair of `SO_REUSEPORT` sockets, so that a
/// rolling restart switches new connections to the new generation before the old one is
/// told to stop (see `Supervisor::listener_pair`); a Unix socket is one. With
/// `--reuseport`, the first TCP address is one socket per worker instead: `fd` and `slots`
/// (see `Supervisor::listener_slots`).
struct Listener {
    fd: OwnedFd,
    pair: Option<OwnedFd>,
    slots: Vec<OwnedFd>,
}

/// `--reuseport`: `n` (>= 2) `SO_REUSEPORT` sockets on `addr`, one per worker slot. The
/// first two are bound as a pair (its probe refuses an address somebody already listens
/// on), the others on the first one's port.
fn bind_slots(addr: &str, n: u32) -> Result<Listener, String> {
    let (a, b) = listen::tcp_pair(addr).map_err(|e| bind_error(addr, e))?;
    let name = listen::socket_name(&a).map_err(|e| bind_error(addr, e))?;
    let mut slots: Vec<OwnedFd> = vec![b.into()];
    for _ in 2..n {
        let s = listen::tcp_with(&name, 0, listen::ListenFlags::REUSEPORT)
            .map_err(|e| bind_error(addr, e))?;
        slots.push(s.into());
    }
    Ok(Listener {
        fd: a.into(),
        pair: None,
        slots,
    })
}

/// A bind error, naming the address once.
fn bind_error(addr: &str, e: impl std::fmt::Display) -> String {
    let s = e.to_string();
    if s.contains(addr) {
        format!("listen: {s}")
    } else {
        format!("listen {addr}: {s}")
    }
}

/// Binds one `--listen` address.
fn bind(addr: &str) -> Result<Listener, String> {
    let r = match addr.strip_prefix("unix:") {
        Some(path) => listen::unix(path, 0o666).map(|l| Listener {
            fd: l.into(),
            pair: None,
            slots: Vec::new(),
        }),
        None => listen::tcp_pair(addr).map(|(a, b)| Listener {
            fd: a.into(),
            pair: Some(b.into()),
            slots: Vec::new(),
        }),
    };
    r.map_err(|e| bind_error(addr, e))
}

/// What the supervisor's workers execute: this binary's `__exec` trampoline (which ignores
/// USR1 so a program that knows nothing of it survives log reopening), then PROGRAM.
fn worker_argv(
    exe: &Path,
    notify: Option<&str>,
    program: &Path,
    args: &[OsString],
) -> Vec<OsString> {
    let mut v = vec![exe.as_os_str().to_owned(), "__exec".into()];
    if let Some(n) = notify {
        v.push("--notify".into());
        v.push(n.into());
    }
    v.push("--".into());
    v.push(program.as_os_str().to_owned());
    v.extend(args.iter().cloned());
    v
}

/// `daemonkit __exec [--notify ADDR] -- PROGRAM ARGS`: runs in a fresh worker (same pid),
/// execs PROGRAM with USR1 ignored (and `NOTIFY_SOCKET=ADDR`). The fds and the rest of the
/// environment are already in place.
fn trampoline(args: Vec<OsString>) -> u8 {
    if args.first().is_some_and(|a| a == "--notify") {
        if let Some(addr) = args.get(1) {
            std::env::set_var("NOTIFY_SOCKET", addr);
        }
    }
    let argv: Vec<CString> = args
        .iter()
        .skip_while(|a| *a != "--")
        .skip(1)
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    if argv.is_empty() {
        eprintln!("{NAME}: __exec: no program");
        return 127;
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // PROGRAM starts with the signal state it would have outside: every disposition at its
    // default and an empty mask — not this Rust binary's ignored SIGPIPE (Rust ignores it
    // before main, and execve keeps SIG_IGN: `yes | head -1` would then report "Broken
    // pipe"). The one documented exception: USR1 stays ignored, so a program that knows
    // nothing of log reopening survives the USR1 the supervisor forwards.
    daemonkit::signals::reset_child();
    // SAFETY: setting a signal disposition; execv with valid NULL-terminated arrays.
    unsafe {
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        libc::execv(ptrs[0], ptrs.as_ptr());
    }
    let e = std::io::Error::last_os_error();
    eprintln!("{NAME}: cannot execute {}: {e}", argv[0].to_string_lossy());
    127
}

/// Gives up a PID file on a failed start (write first: `remove` only unlinks our own pid).
fn abandon(pidfile: Option<Pidfile>) {
    if let Some(mut pf) = pidfile {
        let _ = pf.write();
        let _ = pf.remove();
    }
}

/// Exit code of `run` when the restart policy gave up (`--give-up N/SECONDS`).
pub const EXIT_GAVE_UP: u8 = 3;

/// What `run` resolved before forking: the program and our own path (for the workers'
/// trampoline), both absolute.
struct Resolved {
    program: PathBuf,
    exe: PathBuf,
}

/// Step 1: everything that can be checked on the terminal, before the PID file and the
/// sockets: PROGRAM, our own path, `--chdir`, `--notify-fd`.
fn resolve_all(cfg: &Config) -> Result<Resolved, String> {
    let program = resolve(&cfg.program[0])?;
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| format!("cannot resolve /proc/self/exe: {e}"))?;
    if let Some(d) = &cfg.chdir {
        if !d.is_dir() {
            return Err(format!("--chdir {}: not a directory", d.display()));
        }
    }
    if let Some(fd) = cfg.notify_fd {
        // SAFETY: F_GETFD on any integer is harmless.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(format!(
                "--notify-fd {fd}: not an open file descriptor (s6-supervise opens the one \
                 the service's notification-fd file names)"
            ));
        }
    }
    Ok(Resolved { program, exe })
}

/// Step 2: the PID file, locked before binding, so that a second start on the same fixed
/// port is told "already running (PID: N)", not "Address already in use". `Err(code)`: the
/// message is printed (`start` of a running daemon is success, LSB).
fn lock_pidfile(cfg: &Config, lsb_start: bool) -> Result<Option<Pidfile>, u8> {
    let Some(path) = &cfg.pid else {
        return Ok(None);
    };
    match Pidfile::open(path) {
        Ok(pf) => Ok(Some(pf)),
        Err(Error::AlreadyRunning { pid, .. }) => {
            eprintln!(
                "{NAME}: pid file {}: daemon already running (PID: {pid})",
                path.display()
            );
            Err(if lsb_start { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("{NAME}: {e}");
            Err(1)
        }
    }
}

/// Step 3: the listeners, with the names they print as (`listening on …`).
fn bind_all(cfg: &Config) -> Result<(Vec<Listener>, Vec<String>), String> {
    let mut listeners = Vec::new();
    let mut shown = Vec::new();
    // --reuseport: the first TCP address, with more than one worker.
    let slots_at = cfg
        .listen
        .iter()
        .position(|l| !l.addr.starts_with("unix:"))
        .filter(|_| cfg.reuseport && cfg.workers > 1);
    for (i, l) in cfg.listen.iter().enumerate() {
        let fd = if Some(i) == slots_at {
            bind_slots(&l.addr, cfg.workers)?
        } else {
            bind(&l.addr)?
        };
        let name = listen::socket_name(&fd.fd).unwrap_or_else(|_| l.addr.clone());
        eprintln!("{NAME}: listening on {name}");
        shown.push(name);
        listeners.push(fd);
    }
    Ok((listeners, shown))
}

/// Step 4: into the background (`-D`, keeping the listeners) or, in the foreground, the
/// working directory and umask.
fn detach(cfg: &Config, listeners: &[Listener]) -> Result<(), String> {
    if cfg.daemonize {
        let mut d = Daemonize::new();
        for l in listeners {
            d = d.keep_fd(&l.fd);
            if let Some(b) = &l.pair {
                d = d.keep_fd(b);
            }
            for s in &l.slots {
                d = d.keep_fd(s);
            }
        }
        if let Some(dir) = &cfg.chdir {
            d = d.chdir(dir);
        }
        if let Some(m) = cfg.umask {
            d = d.umask(m);
        }
        if let Some(t) = cfg.launch_timeout {
            d = d.timeout(t);
        }
        return d.start().map(|_| ()).map_err(|e| e.to_string());
    }
    if let Some(dir) = &cfg.chdir {
        std::env::set_current_dir(dir).map_err(|e| format!("--chdir {}: {e}", dir.display()))?;
    }
    if let Some(m) = cfg.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(m as libc::mode_t) };
    }
    Ok(())
}

/// Step 5 (after the fork): environment, output relay, pid, limits, privileges, s6's
/// readiness fd. Returns the relay when there is one.
fn settle(
    cfg: &Config,
    r: &Resolved,
    shown: &[String],
    pidfile: &mut Option<Pidfile>,
) -> Result<Option<relay::Relay>, String> {
    for (k, v) in &cfg.env {
        std::env::set_var(k, v);
    }
    let marks = relay::Marks {
        timestamps: cfg.log_timestamps,
        prefix: cfg.log_prefix,
    };
    let log = if cfg.log.is_some() || cfg.log_timestamps || cfg.log_prefix {
        let what = cfg
            .log
            .as_ref()
            .map_or("stderr".to_string(), |p| format!("log {}", p.display()));
        let relay =
            relay::Relay::start(cfg.log.as_deref(), marks).map_err(|e| format!("{what}: {e}"))?;
        if cfg.log.is_some() {
            for name in shown {
                eprintln!("{NAME}: listening on {name}");
            }
        }
        Some(relay)
    } else {
        None
    };
    if let Some(pf) = pidfile.as_mut() {
        pf.write().map_err(|e| e.to_string())?;
    }
    if let Some(n) = cfg.nofile {
        rlimit::nofile(n).map_err(|e| e.to_string())?;
    }
    if cfg.no_core {
        rlimit::disable_core().map_err(|e| e.to_string())?;
    }
    if let Some(user) = &cfg.user {
        privileges::drop_caps(user, cfg.group.as_deref(), cfg.caps, cfg.drop_flags)
            .map_err(|e| format!("--user {user}: {e}"))?;
        // What the workers execute must be reachable by that user.
        for p in [r.exe.as_path(), r.program.as_path()] {
            executable_now(p)
                .map_err(|e| format!("{}: cannot be executed as user {user}: {e}", p.display()))?;
        }
    }
    if let Some(fd) = cfg.notify_fd {
        // SAFETY: the fd was checked open in step 1; from here on the library owns it.
        daemonkit::notify::ready_fd(unsafe { OwnedFd::from_raw_fd(fd) })
            .map_err(|e| format!("--notify-fd: {e}"))?;
    }
    Ok(log)
}

/// The supervisor's flags for `--init`/`--once`/`--signal-group` (init duties are automatic
/// as PID 1: a container's entrypoint).
fn init_flags(cfg: &Config) -> SupervisorFlags {
    let mut flags = SupervisorFlags::empty();
    flags.set(
        SupervisorFlags::REAP_ALL,
        cfg.init || std::process::id() == 1,
    );
    flags.set(SupervisorFlags::ONCE, cfg.once);
    flags.set(SupervisorFlags::SIGNAL_GROUP, cfg.signal_group);
    flags
}

/// Step 6: the supervisor, running PROGRAM through the `__exec` trampoline. Returns the
/// exit code.
fn supervise(
    cfg: &Config,
    r: &Resolved,
    listeners: &[Listener],
    pidfile: &mut Option<Pidfile>,
    log: Option<&relay::Relay>,
) -> u8 {
    let daemonized = cfg.daemonize;
    // After the fork: the socket name carries the supervisor's pid.
    let notify = match cfg.ready {
        Ready::Notify => match notify::Notify::start(3 + listeners.len() as i32) {
            Ok(n) => Some(n.address),
            Err(e) => return report(daemonized, format!("--ready notify: socket: {e}")),
        },
        _ => None,
    };
    let argv = worker_argv(&r.exe, notify.as_deref(), &r.program, &cfg.program[1..]);
    let names: Vec<&str> = cfg.listen.iter().map(|l| l.name.as_str()).collect();
    let ready_ms = match cfg.ready {
        Ready::Fd | Ready::Notify => cfg.ready_timeout,
        Ready::Delay(ms) => Duration::from_millis(ms.max(1)),
    };
    let prog_name = r.program.display().to_string();
    let once = cfg.once;
    let mut announced = false;
    let mut failed_early = false;
    let on_event = |e: Event| {
        match e.kind {
            event::READY | event::STOPPING => announced = true,
            event::SPAWNED => {
                if let Some(l) = log {
                    l.worker_started(e.value.max(0) as u32, e.pid);
                }
            }
            event::LOG_REOPENED => {
                if let Some(l) = log {
                    l.reopen();
                }
            }
            event::RELOAD_FAILED => {
                e.log();
                eprintln!(
                    "{NAME}: HUP: the new {prog_name} could not start while the old one runs, \
                     so the old copy keeps serving. A program under daemonkit must serve on \
                     the sockets it is given (fd 3.., LISTEN_FDS; bind them with --listen) \
                     instead of binding its own port, which the old copy still holds \
                     (EADDRINUSE)."
                );
                return;
            }
            event::EXITED if !announced && !failed_early && !once => {
                // PROGRAM died before it was ever ready: report it instead of looping.
                failed_early = true;
                let msg = format!(
                    "{NAME}: {prog_name} {} before it was ready{}",
                    how_it_ended(e.value),
                    if daemonized && log.is_none() {
                        " (use --log FILE to see its output)"
                    } else {
                        ""
                    }
                );
                if daemonized {
                    let _ = daemonkit::daemon::fail(1, &msg);
                }
                eprintln!("{msg}");
                // SAFETY: signalling ourselves; the supervisor stops gracefully.
                unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            }
            event::EXITED if !announced && once && daemonized => {
                let code = exit_code(e.value);
                let _ = daemonkit::daemon::fail(
                    code.into(),
                    &format!(
                        "{NAME}: {prog_name} {} before it was ready",
                        how_it_ended(e.value)
                    ),
                );
            }
            _ => {}
        }
        e.log();
    };
    // Each listener's sockets in order (used for the per-slot one only).
    let groups: Vec<Vec<BorrowedFd>> = listeners
        .iter()
        .map(|l| {
            std::iter::once(l.fd.as_fd())
                .chain(l.slots.iter().map(|s| s.as_fd()))
                .collect()
        })
        .collect();
    let mut p = Supervisor::new(cfg.workers)
        .exec(&argv)
        .graceful_timeout(cfg.graceful)
        .ready_timeout(ready_ms)
        .stop_signal(cfg.stop_signal)
        .restart(cfg.max_backoff, cfg.give_up)
        .flags(init_flags(cfg))
        .on_event(on_event);
    if let Some(l) = log.filter(|l| l.per_worker()) {
        p = p.worker_output(move |index| l.worker_pipe(index));
    }
    for (l, g) in listeners.iter().zip(&groups) {
        p = match &l.pair {
            Some(b) => p.listener_pair(&l.fd, b),
            None if !l.slots.is_empty() => p.listener_slots(g),
            None => p.listener(&l.fd),
        };
    }
    if !names.is_empty() {
        p = p.listen_names(&names.join(":"));
    }
    if let Some(pf) = pidfile.as_mut() {
        p = p.pidfile(pf);
    }
    match p.run_with_status(|_| 1) {
        Ok((Outcome::GaveUp, _)) => EXIT_GAVE_UP,
        Ok((_, status)) if once => status.clamp(0, 255) as u8,
        Ok(_) if failed_early => 1,
        Ok(_) => 0,
        Err(e) => report(daemonized, e.to_string()),
    }
}

/// `exited with status N` / `was killed by signal N`, from a wait status.
fn how_it_ended(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("was killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    }
}

/// A wait status as an exit code: the status, or 128 + the signal.
fn exit_code(status: i32) -> u8 {
    if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)).min(255) as u8
    } else {
        libc::WEXITSTATUS(status) as u8
    }
}

/// Prints a failure (and tells a waiting launcher); exit code 1.
fn report(daemonized: bool, msg: String) -> u8 {
    let msg = format!("{NAME}: {msg}");
    if daemonized {
        let _ = daemonkit::daemon::fail(1, &msg);
    }
    eprintln!("{msg}");
    1
}

/// Runs the supervisor. `lsb_start`: an already running daemon is success (`start`).
/// The steps, in the canonical order: resolve, lock the PID file, bind, detach, settle
/// (relay, pid, limits, privileges), supervise, clean up.
pub fn run(cfg: Config, lsb_start: bool) -> u8 {
    let resolved = match resolve_all(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return 1;
        }
    };
    let mut pidfile = match lock_pidfile(&cfg, lsb_start) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (listeners, shown) = match bind_all(&cfg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            abandon(pidfile);
            return 1;
        }
    };
    if let Err(e) = detach(&cfg, &listeners) {
        eprintln!("{NAME}: {e}");
        abandon(pidfile);
        return 1;
    }
    // From here on a failure reaches a waiting launcher through daemonkit::daemon::fail().
    let log = match settle(&cfg, &resolved, &shown, &mut pidfile) {
        Ok(l) => l,
        Err(e) => {
            let code = report(cfg.daemonize, e);
            abandon(pidfile);
            return code;
        }
    };
    let code = supervise(&cfg, &resolved, &listeners, &mut pidfile, log.as_ref());
    drop(pidfile); // unlinked by the supervisor after a stop; a leftover of ours goes now
    drop(listeners);
    if code == 0 {
        // Unix socket files we created go with us (best effort: after a privilege drop the
        // directory may not be ours to write).
        for l in &cfg.listen {
            if let Some(path) = l.addr.strip_prefix("unix:") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    if let Some(l) = log {
        l.finish();
    }
    code
}

fn help(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "run" => HELP_RUN,
        "start" => HELP_START,
        "stop" => HELP_STOP,
        "restart" => HELP_RESTART,
        "reload" => HELP_RELOAD,
        "status" => HELP_STATUS,
        "" | "help" => HELP,
        _ => return None,
    })
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        eprintln!("{HELP}");
        return ExitCode::from(EXIT_USAGE);
    }
    let cmd = args.remove(0).to_string_lossy().into_owned();
    if cmd == "__exec" {
        return ExitCode::from(trampoline(args));
    }
    if cmd == "help" || cmd == "--help" || cmd == "-h" {
        let which = args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        return match help(&which) {
            Some(h) => {
                println!("{h}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("{NAME}: unknown command '{which}'\n{HELP}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    if cmd == "--version" || cmd == "-V" {
        println!("daemonkit {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(h) = help(&cmd) else {
        eprintln!("{NAME}: unknown command '{cmd}'\n{HELP}");
        return ExitCode::from(EXIT_USAGE);
    };
    if wants_help(&args) {
        println!("{h}");
        return ExitCode::SUCCESS;
    }
    let usage = |e: String| {
        eprintln!("{NAME}: {cmd}: {e}\n(see 'daemonkit help {cmd}')");
        EXIT_USAGE
    };
    let code = match cmd.as_str() {
        "run" => match parse_run(args, |_, _, _, _| Ok(false)) {
            Ok(c) => run(c, false),
            Err(e) => usage(e),
        },
        "start" => match parse_run(args, |_, _, _, _| Ok(false)) {
            Ok(c) if c.pid.is_none() => usage("--pid FILE is required".into()),
            Ok(mut c) => {
                c.daemonize = true;
                run(c, true)
            }
            Err(e) => usage(e),
        },
        "restart" => {
            let parsed = parse_run(args, |c, opt, a, inline| {
                if opt == "--timeout" {
                    c.stop_timeout = seconds(opt, &a.value(opt, inline)?)?;
                    return Ok(true);
                }
                Ok(false)
            });
            match parsed {
                Ok(c) if c.pid.is_none() => usage("--pid FILE is required".into()),
                Ok(mut c) => {
                    let path = c.pid.clone().unwrap_or_default();
                    match ctl::stop_path(&path, c.stop_timeout) {
                        0 => {
                            c.daemonize = true;
                            run(c, false)
                        }
                        n => n,
                    }
                }
                Err(e) => usage(e),
            }
        }
        "stop" => ctl::stop(args),
        "status" => ctl::status(args),
        "reload" => ctl::reload(args),
        _ => unreachable!(),
    };
    ExitCode::from(code)
}
