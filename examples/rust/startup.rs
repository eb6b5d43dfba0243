//! The startup both Rust example servers share (`dk-hello-rs` and `dk-hello-tokio`, which
//! includes this file): the options, then the recipe of `examples/README.md` step by step —
//! listeners (inherited ones first), PID file, daemonize, log, PID, limits, privileges,
//! SIGPIPE — up to the server's own work, which each passes in.

use crate::NAME;
use daemonkit::daemon::{Daemonize, Role};
use daemonkit::pidfile::Pidfile;
use daemonkit::{listen, privileges, rlimit, signals, Error};
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

/// The server's options, with `--pid` and `--log` already absolute.
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

/// A small `--name VALUE` / `--name=VALUE` scanner over the arguments after the command.
pub struct Args {
    rest: std::vec::IntoIter<String>,
}

impl Args {
    pub fn new(v: Vec<String>) -> Args {
        Args {
            rest: v.into_iter(),
        }
    }

    /// The next option as `(name, inline value)`, `None` at the end.
    pub fn next_opt(&mut self) -> Option<(String, Option<String>)> {
        let a = self.rest.next()?;
        match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => Some((n.to_string(), Some(v.to_string()))),
            _ => Some((a, None)),
        }
    }

    /// The value of option `name`: the inline one or the next argument.
    pub fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, String> {
        inline
            .or_else(|| self.rest.next())
            .ok_or_else(|| format!("{name} needs a value"))
    }
}

/// Parses a number option.
pub fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: '{v}' is not a valid number"))
}

/// Parses a duration given in (possibly fractional) seconds.
pub fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = number(name, v)?;
    Duration::try_from_secs_f64(s).map_err(|_| format!("{name}: '{v}' is not a valid duration"))
}

/// Makes a path absolute against the current directory (the daemon's becomes `/`).
pub fn absolute(name: &str, v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err(format!("{name} needs a non-empty path"));
    }
    std::path::absolute(v).map_err(|e| format!("{name} {v}: {e}"))
}

/// Parses the options (`-h`/`--help`: `Err` with an empty message).
pub fn parse_options(args: Vec<String>) -> Result<Config, String> {
    let mut c = Config::default();
    let mut a = Args::new(args);
    while let Some((opt, inline)) = a.next_opt() {
        match opt.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--listen" | "-l" => c.listen = a.value(&opt, inline)?,
            "-D" | "--daemonize" => c.daemonize = true,
            "--pid" | "--pidfile" => c.pid = Some(absolute(&opt, &a.value(&opt, inline)?)?),
            "--user" | "-u" => c.user = Some(a.value(&opt, inline)?),
            "--group" | "-g" => c.group = Some(a.value(&opt, inline)?),
            "-w" | "--workers" => {
                let n: u32 = number(&opt, &a.value(&opt, inline)?)?;
                if n > 256 {
                    return Err(format!("{opt}: at most 256 workers"));
                }
                c.workers = n;
            }
            "--max-requests" => {
                let n: u64 = number(&opt, &a.value(&opt, inline)?)?;
                if n == 0 {
                    return Err("--max-requests must be at least 1".into());
                }
                c.max_requests = Some(n);
            }
            "--log" => c.log = Some(absolute(&opt, &a.value(&opt, inline)?)?),
            "--nofile" => c.nofile = Some(number(&opt, &a.value(&opt, inline)?)?),
            "--graceful-timeout" => c.graceful = seconds(&opt, &a.value(&opt, inline)?)?,
            "--foreground-notify" => c.foreground_notify = true,
            "--notify-fd" => {
                let n: i32 = number(&opt, &a.value(&opt, inline)?)?;
                if n < 3 {
                    return Err(format!(
                        "{opt}: expected a descriptor number of 3 or more (0..2 are stdio), got {n}"
                    ));
                }
                c.notify_fd = Some(n);
            }
            _ => return Err(format!("unknown option '{opt}'")),
        }
    }
    if c.group.is_some() && c.user.is_none() {
        return Err("--group needs --user".into());
    }
    Ok(c)
}

impl Config {
    /// The argument vector a re-exec or an upgrade runs: this program's absolute path
    /// (resolved now, before the daemon changes directory) and these options, with the
    /// absolute `--pid`/`--log` paths rather than what was typed. Never `--notify-fd`: its fd
    /// is used up once we are ready, and in the new image fd N may be an inherited listener.
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

/// Step 2: the sockets systemd (or our own re-exec/upgrade) passed, else `--listen`.
fn listener(cfg: &Config) -> Result<TcpListener, String> {
    let inherited = listen::fds(true).map_err(|e| e.to_string())?;
    if let Some((fd, _name)) = inherited.into_iter().next() {
        // Extra inherited fds (a second socket unit) are closed by dropping them.
        return Ok(TcpListener::from(fd));
    }
    listen::tcp(&cfg.listen).map_err(|e| e.to_string())
}

/// Gives up a PID file on a failed start. A new generation started by an upgrade only closes
/// it: the file belongs to the old generation, which rewrites its pid when the upgrade fails.
/// Otherwise the file is removed, even before the pid was written (see
/// /tmp/dk-bugs/rust-example-pidfile-unwritten.md: `remove` only unlinks a file holding
/// our pid, so write it first).
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

/// Whether stdout already is the file at `path` (same device and inode).
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

/// The server's work after the startup: the listener, the PID file (when there is one) and
/// what a re-exec or an upgrade runs. `Err`: the message the launcher prints.
pub type Serve<'a> = &'a mut dyn FnMut(
    &Config,
    TcpListener,
    &mut Option<Pidfile>,
    &[OsString],
) -> Result<(), String>;

/// Steps 3..=10 of the recipe, step 10 being `serve`. Returns the exit code; every handle is
/// dropped on return.
pub fn start(cfg: Config, serve: Serve<'_>) -> u8 {
    if cfg.max_requests.is_some() && cfg.workers == 0 {
        eprintln!(
            "{NAME}: --max-requests needs workers (-w N): a single process cannot be replaced \
             after N requests"
        );
        return 2;
    }
    // Step 1 (end): what re-exec and upgrade will run.
    let argv = match cfg.exec_argv() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{NAME}: cannot resolve the program path: {e}");
            return 1;
        }
    };
    // s6 readiness: the library owns fd N from here on (close-on-exec, kept by the
    // daemonize fd sweep) and `daemon::ready()` writes "\n" to it. The number comes from
    // the command line, so `notify::ready_fd_inherited` (an fd we inherited and nothing
    // else here uses; the library checks that it is open).
    if let Some(fd) = cfg.notify_fd {
        if let Err(e) = daemonkit::notify::ready_fd_inherited(fd) {
            eprintln!("{NAME}: --notify-fd {fd}: {e}");
            return 1;
        }
    }
    // Step 2: PID file, locked before binding (adopts the inherited locked fd after a
    // re-exec or an upgrade): a second start on the same fixed port is told "already
    // running", not "Address already in use".
    let mut pidfile = match &cfg.pid {
        None => None,
        Some(path) => match Pidfile::open(path) {
            Ok(pf) => Some(pf),
            Err(Error::AlreadyRunning { pid, .. }) => {
                eprintln!(
                    "pid file {}: daemon already running (PID: {pid})",
                    path.display()
                );
                return 1;
            }
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        },
    };

    // Step 3: listeners. A bind error reaches the terminal; the PID file goes with us.
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

    // Step 4: daemonize. The launcher exits inside with the daemon's verdict.
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
    // From here on every failure goes through daemonkit::fail().
    let fail = |code: u8, msg: String, pidfile: Option<Pidfile>| {
        let _ = daemonkit::daemon::fail(code.into(), &msg);
        abandon(pidfile, Some(role));
        code
    };

    // Step 5: log.
    if let Some(log) = &cfg.log {
        match daemonkit::log::open(log) {
            Ok(()) => {}
            // Workaround (see /tmp/dk-bugs/rust-example-log-after-privdrop.md): an image
            // started by a re-exec or an upgrade runs as the unprivileged user already and
            // may not be allowed to open the log root created; its stdout/stderr were
            // inherited and already are that log, so keep them.
            Err(e) if e.errno() == Some(libc::EACCES) && stdout_is(log) => {
                eprintln!(
                    "{NAME}: {e}: keeping the inherited log descriptors (USR1 cannot reopen it)"
                );
            }
            Err(e) => return fail(1, e.to_string(), pidfile),
        }
        eprintln!("listening on {name}");
    }
    // Step 6: the pid.
    if let Some(pf) = pidfile.as_mut() {
        if let Err(e) = pf.write() {
            return fail(1, e.to_string(), pidfile);
        }
    }
    // Step 7: limits.
    if let Some(n) = cfg.nofile {
        match rlimit::nofile(n) {
            Ok(got) => eprintln!("nofile limit set to {got}"),
            Err(e) => return fail(1, e.to_string(), pidfile),
        }
    }
    if let Err(e) = rlimit::disable_core() {
        return fail(1, e.to_string(), pidfile);
    }
    // Step 8: privileges (a no-op when already that user, as after a re-exec).
    if let Some(user) = &cfg.user {
        if let Err(e) = privileges::drop(user, cfg.group.as_deref()) {
            return fail(1, e.to_string(), pidfile);
        }
    }
    // Step 9.
    if let Err(e) = signals::ignore_sigpipe() {
        return fail(1, format!("SIGPIPE: {e}"), pidfile);
    }
    // Step 10.
    let r = serve(&cfg, listener, &mut pidfile, &argv);
    match r {
        Ok(()) => 0,
        Err(msg) => fail(1, msg, pidfile),
    }
}
