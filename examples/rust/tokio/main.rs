//! `dk-hello-tokio` — the example server on tokio and hyper, built on `daemonkit::tokio`.
//!
//! ```text
//! dk-hello-tokio [--listen HOST:PORT] [-D|--daemonize] [--pid FILE] [--user USER]
//!                [--group GROUP] [-w|--workers N] [--max-requests N] [--log FILE]
//!                [--nofile N] [--graceful-timeout SECONDS] [--foreground-notify]
//!                [--notify-fd N]
//! ```
//!
//! The same command line, endpoints and process behaviour as the other example servers
//! (docs/EXAMPLE-SERVER.md; `hello from rust-tokio pid N`). HTTP is hyper 1.x's
//! `server::conn::http1` with hyper-util's `TokioIo`: what a Rust developer reaches for when
//! a server needs HTTP/1.1 done right without a framework (axum would sit on the same
//! hyper and add routing this server does not need).
//!
//! The order is the crate guide's, with one rule tokio adds: no runtime before the fork.
//! `main` is a plain `fn` (no `#[tokio::main]`): PID file, listener, daemonize, log, pid,
//! limits, privilege drop — then a current-thread runtime built here for a single process,
//! or `Supervisor::run_tokio`, which builds one in every worker after the fork
//! (`serve.rs`). Every process sleeps in epoll when idle: signals arrive through
//! `AsyncSignals` (the signal pipe on the reactor), no timer runs without a connection.

#![forbid(unsafe_code)]

mod http;
mod serve;

use daemonkit::daemon::{Daemonize, Role};
use daemonkit::pidfile::Pidfile;
use daemonkit::{listen, privileges, rlimit, signals, Error};
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The program name used in messages.
pub const NAME: &str = "dk-hello-tokio";

const USAGE: &str = "\
usage: dk-hello-tokio [--listen HOST:PORT] [-D|--daemonize] [--pid FILE]
                      [--user USER] [--group GROUP] [-w|--workers N] [--max-requests N]
                      [--log FILE] [--nofile N] [--graceful-timeout SECONDS]
                      [--foreground-notify] [--notify-fd N]";

/// The options, with `--pid` and `--log` already absolute.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    pub daemonize: bool,
    pub pid: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub workers: u32,
    pub max_requests: Option<u64>,
    pub log: Option<PathBuf>,
    pub nofile: Option<u64>,
    pub graceful: Duration,
    pub foreground_notify: bool,
    /// `--notify-fd N`: s6's readiness fd (not passed on to a re-exec or an upgrade).
    pub notify_fd: Option<i32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            daemonize: false,
            pid: None,
            user: None,
            group: None,
            workers: 0,
            max_requests: None,
            log: None,
            nofile: None,
            graceful: Duration::from_secs(30),
            foreground_notify: false,
            notify_fd: None,
        }
    }
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: '{v}' is not a valid number"))
}

fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = number(name, v)?;
    Duration::try_from_secs_f64(s).map_err(|_| format!("{name}: '{v}' is not a valid duration"))
}

/// A path made absolute against the current directory (the daemon's becomes `/`).
fn absolute(name: &str, v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err(format!("{name} needs a non-empty path"));
    }
    std::path::absolute(v).map_err(|e| format!("{name} {v}: {e}"))
}

fn parse(args: Vec<String>) -> Result<Config, String> {
    let mut c = Config::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{opt} needs a value"))
        };
        match opt.as_str() {
            "--listen" | "-l" => c.listen = value()?,
            "-D" | "--daemonize" => c.daemonize = true,
            "--pid" | "--pidfile" => c.pid = Some(absolute(&opt, &value()?)?),
            "--user" | "-u" => c.user = Some(value()?),
            "--group" | "-g" => c.group = Some(value()?),
            "-w" | "--workers" => {
                let n: u32 = number(&opt, &value()?)?;
                if n > 256 {
                    return Err(format!("{opt}: at most 256 workers"));
                }
                c.workers = n;
            }
            "--max-requests" => {
                let n: u64 = number(&opt, &value()?)?;
                if n == 0 {
                    return Err("--max-requests must be at least 1".into());
                }
                c.max_requests = Some(n);
            }
            "--log" => c.log = Some(absolute(&opt, &value()?)?),
            "--nofile" => c.nofile = Some(number(&opt, &value()?)?),
            "--graceful-timeout" => c.graceful = seconds(&opt, &value()?)?,
            "--foreground-notify" => c.foreground_notify = true,
            "--notify-fd" => {
                let n: i32 = number(&opt, &value()?)?;
                if n < 3 {
                    return Err(format!(
                        "{opt}: expected a descriptor number of 3 or more (0..2 are stdio), got {n}"
                    ));
                }
                c.notify_fd = Some(n);
            }
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown option '{opt}'")),
        }
    }
    if c.group.is_some() && c.user.is_none() {
        return Err("--group needs --user".into());
    }
    Ok(c)
}

impl Config {
    /// What a re-exec (HUP, single process) or an upgrade (USR2) runs: this program's
    /// absolute path, resolved now, and these options with the absolute paths. Never
    /// `--notify-fd`: its fd is used up once we are ready.
    fn exec_argv(&self) -> daemonkit::Result<Vec<OsString>> {
        let exe = daemonkit::exec::self_argv()?.swap_remove(0);
        let mut v: Vec<OsString> = vec![exe, "--listen".into(), (&self.listen).into()];
        let mut opt = |name: &str, val: Option<OsString>| {
            v.push(name.into());
            v.extend(val);
        };
        if self.daemonize {
            opt("--daemonize", None);
        }
        if let Some(p) = &self.pid {
            opt("--pid", Some(p.into()));
        }
        if let Some(u) = &self.user {
            opt("--user", Some(u.into()));
        }
        if let Some(g) = &self.group {
            opt("--group", Some(g.into()));
        }
        if self.workers > 0 {
            opt("--workers", Some(self.workers.to_string().into()));
        }
        if let Some(n) = self.max_requests {
            opt("--max-requests", Some(n.to_string().into()));
        }
        if let Some(p) = &self.log {
            opt("--log", Some(p.into()));
        }
        if let Some(n) = self.nofile {
            opt("--nofile", Some(n.to_string().into()));
        }
        opt(
            "--graceful-timeout",
            Some(self.graceful.as_secs_f64().to_string().into()),
        );
        if self.foreground_notify {
            opt("--foreground-notify", None);
        }
        Ok(v)
    }
}

/// The socket systemd (or our own re-exec/upgrade) passed, else `--listen`.
fn listener(cfg: &Config) -> Result<TcpListener, String> {
    let inherited = listen::fds(true).map_err(|e| e.to_string())?;
    if let Some((fd, _name)) = inherited.into_iter().next() {
        return Ok(TcpListener::from(fd));
    }
    listen::tcp(&cfg.listen).map_err(|e| e.to_string())
}

/// Gives up the PID file on a failed start: a new generation of an upgrade only closes it
/// (it is the old generation's); otherwise it is removed (written first: `remove` unlinks
/// only a file holding our pid).
fn abandon(pidfile: Option<Pidfile>, role: Option<Role>) {
    if let Some(mut pf) = pidfile {
        if role == Some(Role::Upgrade) {
            pf.close();
        } else {
            let _ = pf.write();
            let _ = pf.remove();
        }
    }
}

/// Whether stdout already is the file at `path` (an image started by a re-exec or an
/// upgrade, running unprivileged, inherits the log it may not reopen).
fn stdout_is(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        std::fs::metadata("/proc/self/fd/1"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn start(cfg: Config) -> u8 {
    if cfg.max_requests.is_some() && cfg.workers == 0 {
        eprintln!(
            "{NAME}: --max-requests needs workers (-w N): a single process cannot be replaced \
             after N requests"
        );
        return 2;
    }
    let argv = match cfg.exec_argv() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{NAME}: cannot resolve the program path: {e}");
            return 1;
        }
    };
    if let Some(fd) = cfg.notify_fd {
        if let Err(e) = daemonkit::notify::ready_fd_inherited(fd) {
            eprintln!("{NAME}: --notify-fd {fd}: {e}");
            return 1;
        }
    }
    // The PID file, locked before binding: a second start is "already running", not
    // "address already in use".
    let mut pidfile = match &cfg.pid {
        None => None,
        Some(path) => match Pidfile::open(path) {
            Ok(pf) => Some(pf),
            Err(e @ Error::AlreadyRunning { .. }) => {
                eprintln!("{e}");
                return 1;
            }
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        },
    };
    // The listener, bound before the fork: a bind error reaches the terminal.
    let listener = match listener(&cfg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            abandon(pidfile, None);
            return 1;
        }
    };
    let name = listen::socket_name(&listener).unwrap_or_else(|_| cfg.listen.clone());
    eprintln!("listening on {name}");

    // Daemonize — before any tokio runtime exists (daemonkit refuses the other order).
    let background = cfg.daemonize && !cfg.foreground_notify && cfg.notify_fd.is_none();
    let role = match Daemonize::new()
        .foreground(!background)
        .keep_fd(&listener)
        .umask(0o022)
        .start()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            abandon(pidfile, None);
            return 1;
        }
    };
    // From here on a startup failure goes to the launcher through daemon::fail.
    let fail = |code: u8, msg: String, pidfile: Option<Pidfile>| {
        let _ = daemonkit::daemon::fail(code.into(), &msg);
        abandon(pidfile, Some(role));
        code
    };
    if let Some(log) = &cfg.log {
        match daemonkit::log::open(log) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EACCES) && stdout_is(log) => {
                eprintln!(
                    "{NAME}: {e}: keeping the inherited log descriptors (USR1 cannot reopen it)"
                );
            }
            Err(e) => return fail(1, e.to_string(), pidfile),
        }
        eprintln!("listening on {name}");
    }
    if let Some(pf) = pidfile.as_mut() {
        if let Err(e) = pf.write() {
            return fail(1, e.to_string(), pidfile);
        }
    }
    if let Some(n) = cfg.nofile {
        match rlimit::nofile(n) {
            Ok(got) => eprintln!("nofile limit set to {got}"),
            Err(e) => return fail(1, e.to_string(), pidfile),
        }
    }
    if let Err(e) = rlimit::disable_core() {
        return fail(1, e.to_string(), pidfile);
    }
    if let Some(user) = &cfg.user {
        if let Err(e) = privileges::drop(user, cfg.group.as_deref()) {
            return fail(1, e.to_string(), pidfile);
        }
    }
    if let Err(e) = signals::ignore_sigpipe() {
        return fail(1, format!("SIGPIPE: {e}"), pidfile);
    }
    let r = if cfg.workers == 0 {
        // A single process: its runtime, built now that every fork is behind us.
        match daemonkit::tokio::worker_runtime() {
            Ok(rt) => {
                let r = rt.block_on(serve::single(&cfg, listener, &mut pidfile, &argv));
                rt.shutdown_background();
                r
            }
            Err(e) => Err(format!("tokio runtime: {e}")),
        }
    } else {
        serve::supervisor(&cfg, listener, &mut pidfile, &argv)
    };
    match r {
        Ok(()) => 0,
        Err(msg) => fail(1, msg, pidfile),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(v) => v,
        Err(a) => {
            eprintln!("{NAME}: argument {a:?} is not valid UTF-8");
            return ExitCode::from(2);
        }
    };
    match parse(args) {
        Ok(cfg) => ExitCode::from(start(cfg)),
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{NAME}: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
