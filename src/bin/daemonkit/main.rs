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
use daemonkit::rust::{
    bind_tcp, bind_unix, disable_core_dumps, event, local_addr_string, set_nofile, Event, Outcome,
    Prefork,
};
use daemonkit::{drop_privileges, Daemonize, Error, Pidfile};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
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
              already running), 1 failure (the message says what), 2 usage error
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
      --chdir DIR         working directory (default: / with -D, unchanged otherwise)
      --umask OCTAL       umask (default: unchanged)
      --log FILE          append daemonkit's and PROGRAM's stdout/stderr to FILE;
                          USR1 reopens it (after logrotate)
      --nofile N          raise the soft RLIMIT_NOFILE to N (capped at the hard limit)
      --no-core           disable core dumps (RLIMIT_CORE 0)
      --env KEY=VALUE     set a variable for PROGRAM; repeatable
      --timeout SECS      with -D: how long the launcher waits for readiness (default:
                          as long as the daemon lives)

Signals to the supervisor: HUP rolling restart (a new PROGRAM is ready before an old one is
stopped; the listeners stay open; if a new PROGRAM exits before it is ready, the restart is
abandoned and the old ones keep serving — PROGRAM must use the sockets passed as fd 3..,
LISTEN_FDS, not bind its own port, which the old copy still holds); TERM/INT/QUIT graceful stop (a second one kills);
TTIN/TTOU one more/fewer worker; USR1 reopen the log and forward USR1 (to each copy once it
is ready). PROGRAM starts with every signal disposition at its default and an empty signal
mask, except USR1, which is ignored unless PROGRAM installs its own handler.

Exit codes: 0 stopped cleanly, or (-D) the daemon is ready; 1 failure, with a message such as
'daemonkit: pid file /run/app.pid: daemon already running (PID: 4242)'; 2 usage error.";

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

/// Binds one `--listen` address.
fn bind(addr: &str) -> Result<OwnedFd, String> {
    let r = match addr.strip_prefix("unix:") {
        Some(path) => bind_unix(path, 0o666).map(OwnedFd::from),
        None => bind_tcp(addr, false).map(OwnedFd::from),
    };
    r.map_err(|e| {
        let s = e.to_string();
        if s.contains(addr) {
            format!("listen: {s}")
        } else {
            format!("listen {addr}: {s}")
        }
    })
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

/// Runs the supervisor. `lsb_start`: an already running daemon is success (`start`).
pub fn run(cfg: Config, lsb_start: bool) -> u8 {
    // Everything that can fail on the terminal is checked before the fork.
    let program = match resolve(&cfg.program[0]) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return 1;
        }
    };
    let exe = match std::fs::read_link("/proc/self/exe") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{NAME}: cannot resolve /proc/self/exe: {e}");
            return 1;
        }
    };
    if let Some(d) = &cfg.chdir {
        if !d.is_dir() {
            eprintln!("{NAME}: --chdir {}: not a directory", d.display());
            return 1;
        }
    }
    // The PID file is locked before the listeners are bound: a second start on the same
    // fixed port is told "already running (PID: N)", not "Address already in use" (and
    // `start` of a running daemon is success, LSB).
    let mut pidfile = match &cfg.pid {
        None => None,
        Some(path) => match Pidfile::open(path) {
            Ok(pf) => Some(pf),
            Err(Error::AlreadyRunning { pid }) => {
                eprintln!(
                    "{NAME}: pid file {}: daemon already running (PID: {pid})",
                    path.display()
                );
                return if lsb_start { 0 } else { 1 };
            }
            Err(e) => {
                eprintln!("{NAME}: {e}");
                return 1;
            }
        },
    };

    let mut listeners: Vec<OwnedFd> = Vec::new();
    let mut shown = Vec::new();
    for l in &cfg.listen {
        match bind(&l.addr) {
            Ok(fd) => {
                let name = local_addr_string(fd.as_raw_fd()).unwrap_or_else(|_| l.addr.clone());
                eprintln!("{NAME}: listening on {name}");
                shown.push(name);
                listeners.push(fd);
            }
            Err(e) => {
                eprintln!("{NAME}: {e}");
                abandon(pidfile);
                return 1;
            }
        }
    }
    if cfg.daemonize {
        let mut d = Daemonize::new();
        for l in &listeners {
            d = d.keep_fd(l);
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
        if let Err(e) = d.start() {
            eprintln!("{NAME}: {e}");
            abandon(pidfile);
            return 1;
        }
    } else {
        if let Some(dir) = &cfg.chdir {
            if let Err(e) = std::env::set_current_dir(dir) {
                eprintln!("{NAME}: --chdir {}: {e}", dir.display());
                abandon(pidfile);
                return 1;
            }
        }
        if let Some(m) = cfg.umask {
            // SAFETY: umask cannot fail.
            unsafe { libc::umask(m as libc::mode_t) };
        }
    }
    // From here on a failure reaches a waiting launcher through daemonkit::fail().
    let daemonized = cfg.daemonize;
    let fail = move |msg: String, pidfile: Option<Pidfile>| -> u8 {
        let msg = format!("{NAME}: {msg}");
        if daemonized {
            let _ = daemonkit::fail(1, &msg);
        }
        eprintln!("{msg}");
        abandon(pidfile);
        1
    };

    for (k, v) in &cfg.env {
        std::env::set_var(k, v);
    }
    let log = match &cfg.log {
        None => None,
        Some(path) => match relay::Relay::start(path) {
            Ok(r) => {
                for name in &shown {
                    eprintln!("{NAME}: listening on {name}");
                }
                Some(r)
            }
            Err(e) => return fail(format!("log {}: {e}", path.display()), pidfile),
        },
    };
    if let Some(pf) = pidfile.as_mut() {
        if let Err(e) = pf.write() {
            return fail(e.to_string(), pidfile);
        }
    }
    if let Some(n) = cfg.nofile {
        if let Err(e) = set_nofile(n) {
            return fail(e.to_string(), pidfile);
        }
    }
    if cfg.no_core {
        if let Err(e) = disable_core_dumps() {
            return fail(e.to_string(), pidfile);
        }
    }
    if let Some(user) = &cfg.user {
        if let Err(e) = drop_privileges(user, cfg.group.as_deref()) {
            return fail(format!("--user {user}: {e}"), pidfile);
        }
        // What the workers execute must be reachable by that user.
        for p in [exe.as_path(), program.as_path()] {
            if let Err(e) = executable_now(p) {
                return fail(
                    format!("{}: cannot be executed as user {user}: {e}", p.display()),
                    pidfile,
                );
            }
        }
    }

    // After the fork: the socket name carries the supervisor's pid.
    let notify = match cfg.ready {
        Ready::Notify => match notify::Notify::start(3 + listeners.len() as i32) {
            Ok(n) => Some(n.address),
            Err(e) => return fail(format!("--ready notify: socket: {e}"), pidfile),
        },
        _ => None,
    };
    let argv = worker_argv(&exe, notify.as_deref(), &program, &cfg.program[1..]);
    let names: Vec<&str> = cfg.listen.iter().map(|l| l.name.as_str()).collect();
    let ready_ms = match cfg.ready {
        Ready::Fd | Ready::Notify => cfg.ready_timeout,
        Ready::Delay(ms) => Duration::from_millis(ms.max(1)),
    };
    let prog_name = program.display().to_string();
    let mut announced = false;
    let mut failed_early = false;
    let on_event = |e: Event| {
        match e.kind {
            event::READY | event::STOPPING => announced = true,
            event::LOG_REOPENED => {
                if let Some(l) = &log {
                    l.reopen();
                }
            }
            event::RELOAD_FAILED => {
                daemonkit::supervisor::default_log(e.kind, e.pid, e.value);
                eprintln!(
                    "{NAME}: HUP: the new {prog_name} could not start while the old one runs, \
                     so the old copy keeps serving. A program under daemonkit must serve on \
                     the sockets it is given (fd 3.., LISTEN_FDS; bind them with --listen) \
                     instead of binding its own port, which the old copy still holds \
                     (EADDRINUSE)."
                );
                return;
            }
            event::EXITED if !announced && !failed_early => {
                // PROGRAM died before it was ever ready: report it instead of looping.
                failed_early = true;
                let how = if libc::WIFSIGNALED(e.value) {
                    format!("was killed by signal {}", libc::WTERMSIG(e.value))
                } else {
                    format!("exited with status {}", libc::WEXITSTATUS(e.value))
                };
                let msg = format!(
                    "{NAME}: {prog_name} {how} before it was ready{}",
                    if daemonized && log.is_none() {
                        " (use --log FILE to see its output)"
                    } else {
                        ""
                    }
                );
                if daemonized {
                    let _ = daemonkit::fail(1, &msg);
                }
                eprintln!("{msg}");
                // SAFETY: signalling ourselves; the supervisor stops gracefully.
                unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            }
            _ => {}
        }
        daemonkit::supervisor::default_log(e.kind, e.pid, e.value);
    };
    let mut p = Prefork::new(cfg.workers)
        .exec(&argv)
        .graceful_timeout(cfg.graceful)
        .ready_timeout(ready_ms)
        .on_event(on_event);
    for l in &listeners {
        p = p.listener(l);
    }
    if !names.is_empty() {
        p = p.listen_names(&names.join(":"));
    }
    if let Some(pf) = pidfile.as_mut() {
        p = p.pidfile(pf);
    }
    let r = p.run(|_| 1);
    let code = match r {
        Ok(Outcome::Stopped) | Ok(Outcome::Upgraded) => {
            if failed_early {
                1
            } else {
                0
            }
        }
        Err(e) => {
            let msg = format!("{NAME}: {e}");
            if daemonized {
                let _ = daemonkit::fail(1, &msg);
            }
            eprintln!("{msg}");
            1
        }
    };
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
