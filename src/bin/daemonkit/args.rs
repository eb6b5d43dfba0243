//! The command's argument parsing: the `run` options ([`parse_run`]), those of `stop`,
//! `status` and `reload` ([`parse_ctl`]) and the `--help` scan ([`wants_help`]). Pure: it
//! depends on std only (no daemonkit, no I/O but the current directory for relative paths),
//! so the fuzz target `cli_args` includes this file as it is.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// How long `stop` waits after TERM before it sends KILL (the default graceful timeout is
/// 30 s).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(35);

/// How PROGRAM reports readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    Fd,
    Notify,
    Delay(u64),
}

/// One `--listen`.
#[derive(Clone, Debug)]
pub struct Listen {
    pub name: String,
    pub addr: String,
}

/// The `run` options.
#[derive(Clone, Debug)]
pub struct Config {
    pub daemonize: bool,
    pub pid: Option<PathBuf>,
    pub listen: Vec<Listen>,
    pub workers: u32,
    pub ready: Ready,
    pub ready_timeout: Duration,
    pub graceful: Duration,
    pub user: Option<String>,
    pub group: Option<String>,
    /// `--cap NAME`: capabilities kept across the privilege drop.
    pub caps: daemonkit::privileges::Capabilities,
    /// `--no-new-privs`, `--drop-bounding`.
    pub drop_flags: daemonkit::privileges::DropFlags,
    pub chdir: Option<PathBuf>,
    pub umask: Option<u32>,
    pub log: Option<PathBuf>,
    pub nofile: Option<u64>,
    pub no_core: bool,
    pub env: Vec<(String, String)>,
    pub launch_timeout: Option<Duration>,
    /// `restart`'s stop timeout.
    pub stop_timeout: Duration,
    /// The signal that stops a copy of PROGRAM (`--stop-signal`; default SIGTERM).
    pub stop_signal: i32,
    /// `--init`: reap every orphan (automatic as PID 1).
    pub init: bool,
    /// `--once`: run PROGRAM once, forward signals, exit with its status.
    pub once: bool,
    /// `--signal-group`: signals go to PROGRAM's whole process group.
    pub signal_group: bool,
    /// `--reuseport`: the first TCP `--listen` as one socket per worker slot.
    pub reuseport: bool,
    /// `--notify-fd N`: s6's readiness fd.
    pub notify_fd: Option<i32>,
    /// `--max-backoff`: the crash-loop backoff's cap.
    pub max_backoff: Duration,
    /// `--give-up N/SECONDS`.
    pub give_up: Option<(u32, Duration)>,
    /// `--log-timestamps`, `--log-prefix`.
    pub log_timestamps: bool,
    pub log_prefix: bool,
    pub program: Vec<OsString>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            daemonize: false,
            pid: None,
            listen: Vec::new(),
            workers: 1,
            ready: Ready::Delay(1000),
            ready_timeout: Duration::from_secs(60),
            graceful: Duration::from_secs(30),
            user: None,
            group: None,
            caps: daemonkit::privileges::Capabilities::empty(),
            drop_flags: daemonkit::privileges::DropFlags::empty(),
            chdir: None,
            umask: None,
            log: None,
            nofile: None,
            no_core: false,
            env: Vec::new(),
            launch_timeout: None,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            stop_signal: 15,
            init: false,
            once: false,
            signal_group: false,
            reuseport: false,
            notify_fd: None,
            max_backoff: Duration::from_secs(8),
            give_up: None,
            log_timestamps: false,
            log_prefix: false,
            program: Vec::new(),
        }
    }
}

/// A small `--name VALUE` / `--name=VALUE` scanner; stops at `--` or the first operand.
pub struct Args {
    rest: std::vec::IntoIter<OsString>,
}

impl Args {
    pub fn new(v: Vec<OsString>) -> Args {
        Args {
            rest: v.into_iter(),
        }
    }

    /// The next option as `(name, inline value)`; `Err(operand)` at the first operand or
    /// after `--` (`None` inside); `Ok(None)` at the end.
    #[allow(clippy::type_complexity)]
    pub fn next_opt(&mut self) -> Result<Option<(String, Option<String>)>, Option<OsString>> {
        let Some(a) = self.rest.next() else {
            return Ok(None);
        };
        if a == "--" {
            return Err(None);
        }
        if !a.as_bytes().starts_with(b"-") || a == "-" {
            return Err(Some(a));
        }
        let s = a.to_string_lossy().into_owned();
        match s.split_once('=') {
            Some((n, v)) if n.starts_with("--") => Ok(Some((n.to_string(), Some(v.to_string())))),
            _ => Ok(Some((s, None))),
        }
    }

    /// The value of option `name`: the inline one or the next argument.
    pub fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, String> {
        if let Some(v) = inline {
            return Ok(v);
        }
        match self.rest.next() {
            Some(v) => v
                .into_string()
                .map_err(|v| format!("{name}: {v:?} is not valid UTF-8")),
            None => Err(format!("{name} needs a value")),
        }
    }

    /// What is left (the program and its arguments).
    pub fn rest(self) -> Vec<OsString> {
        self.rest.collect()
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

/// Signal names the command takes (`TERM`, `SIGTERM`, or a number 1..=64).
const SIGNALS: [(&str, i32); 16] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ABRT", 6),
    ("USR1", 10),
    ("USR2", 12),
    ("ALRM", 14),
    ("TERM", 15),
    ("CHLD", 17),
    ("CONT", 18),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("WINCH", 28),
    ("PWR", 30),
    ("URG", 23),
];

/// Parses a signal name or number for `--stop-signal`: one that can be caught (not KILL,
/// STOP or a synchronous fault, which a program cannot handle gracefully).
pub fn signal(name: &str, v: &str) -> Result<i32, String> {
    let bare = v.strip_prefix("SIG").unwrap_or(v);
    let n = match SIGNALS.iter().find(|(s, _)| s.eq_ignore_ascii_case(bare)) {
        Some(&(_, n)) => n,
        None => v.parse::<i32>().map_err(|_| {
            format!("{name}: '{v}' is not a signal (TERM, QUIT, INT, HUP, USR1, ...)")
        })?,
    };
    if !(1..=64).contains(&n) || matches!(n, 4 | 5 | 7 | 8 | 9 | 11 | 19 | 31) {
        return Err(format!(
            "{name}: signal {v} cannot stop a program gracefully"
        ));
    }
    Ok(n)
}

/// Parses `--give-up N/SECONDS`: N crashes (1..=64) within SECONDS.
pub fn give_up(name: &str, v: &str) -> Result<(u32, Duration), String> {
    let (n, secs) = v
        .split_once('/')
        .ok_or_else(|| format!("{name}: '{v}' is not N/SECONDS (e.g. 5/60)"))?;
    let n: u32 = number(name, n)?;
    if !(1..=64).contains(&n) {
        return Err(format!("{name}: 1 to 64 crashes"));
    }
    let window = seconds(name, secs)?;
    if window.is_zero() {
        return Err(format!("{name}: the window must be longer than 0 s"));
    }
    Ok((n, window))
}

/// Makes a path absolute against the current directory (the daemon's becomes `/`).
pub fn absolute(name: &str, v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err(format!("{name} needs a non-empty path"));
    }
    std::path::absolute(v).map_err(|e| format!("{name} {v}: {e}"))
}

/// Parses the `run` options (`extra` handles command-specific ones; it returns false for an
/// unknown option).
pub fn parse_run(
    args: Vec<OsString>,
    mut extra: impl FnMut(&mut Config, &str, &mut Args, Option<String>) -> Result<bool, String>,
) -> Result<Config, String> {
    let mut c = Config::default();
    let mut a = Args::new(args);
    let first = loop {
        let (opt, inline) = match a.next_opt() {
            Ok(Some(o)) => o,
            Ok(None) => break None,
            Err(operand) => break operand,
        };
        if extra(&mut c, &opt, &mut a, inline.clone())? {
            continue;
        }
        match opt.as_str() {
            "-D" | "--daemonize" => c.daemonize = true,
            "--pid" | "--pidfile" => c.pid = Some(absolute(&opt, &a.value(&opt, inline)?)?),
            "--listen" | "-l" => {
                let v = a.value(&opt, inline)?;
                let (name, addr) = match v.split_once('=') {
                    Some((n, addr)) => (n.to_string(), addr.to_string()),
                    None => ("unknown".to_string(), v),
                };
                if name.is_empty() || name.contains(':') || name.len() > 255 {
                    return Err(format!("{opt}: bad name '{name}' (1..255 chars, no ':')"));
                }
                c.listen.push(Listen { name, addr });
            }
            "-w" | "--workers" => {
                let n: u32 = number(&opt, &a.value(&opt, inline)?)?;
                if !(1..=256).contains(&n) {
                    return Err(format!("{opt}: 1 to 256 workers"));
                }
                c.workers = n;
            }
            "--ready" => {
                let v = a.value(&opt, inline)?;
                c.ready = match v.as_str() {
                    "fd" => Ready::Fd,
                    "notify" => Ready::Notify,
                    d => match d.strip_prefix("delay=") {
                        Some(ms) => Ready::Delay(number(&opt, ms)?),
                        None => return Err(format!("{opt}: '{v}' is not fd or delay=MS")),
                    },
                };
            }
            "--ready-timeout" => c.ready_timeout = seconds(&opt, &a.value(&opt, inline)?)?,
            "--graceful-timeout" => c.graceful = seconds(&opt, &a.value(&opt, inline)?)?,
            "--user" | "-u" => c.user = Some(a.value(&opt, inline)?),
            "--group" | "-g" => c.group = Some(a.value(&opt, inline)?),
            "--cap" => {
                let v = a.value(&opt, inline)?;
                for name in v.split(',') {
                    match daemonkit::privileges::Capabilities::parse_name(name.trim()) {
                        Some(cap) => c.caps |= cap,
                        None => {
                            return Err(format!(
                                "{opt}: '{name}' is not a capability name (NET_BIND_SERVICE, \
                                 NET_RAW, ...: capabilities(7) without CAP_)"
                            ))
                        }
                    }
                }
            }
            "--no-new-privs" => c.drop_flags |= daemonkit::privileges::DropFlags::NO_NEW_PRIVS,
            "--drop-bounding" => c.drop_flags |= daemonkit::privileges::DropFlags::DROP_BOUNDING,
            "--chdir" => c.chdir = Some(absolute(&opt, &a.value(&opt, inline)?)?),
            "--umask" => {
                let v = a.value(&opt, inline)?;
                match u32::from_str_radix(&v, 8) {
                    Ok(m) if m <= 0o777 => c.umask = Some(m),
                    _ => return Err(format!("{opt}: '{v}' is not an octal mask")),
                }
            }
            "--log" => c.log = Some(absolute(&opt, &a.value(&opt, inline)?)?),
            "--nofile" => c.nofile = Some(number(&opt, &a.value(&opt, inline)?)?),
            "--no-core" => c.no_core = true,
            "--env" | "-e" => {
                let v = a.value(&opt, inline)?;
                match v.split_once('=') {
                    Some((k, val)) if !k.is_empty() => c.env.push((k.into(), val.into())),
                    _ => return Err(format!("{opt}: '{v}' is not KEY=VALUE")),
                }
            }
            "--timeout" => c.launch_timeout = Some(seconds(&opt, &a.value(&opt, inline)?)?),
            "--stop-signal" => c.stop_signal = signal(&opt, &a.value(&opt, inline)?)?,
            "--init" => c.init = true,
            "--once" => c.once = true,
            "--signal-group" => c.signal_group = true,
            "--reuseport" => c.reuseport = true,
            "--notify-fd" => {
                let n: i32 = number(&opt, &a.value(&opt, inline)?)?;
                if n < 3 {
                    return Err(format!(
                        "{opt}: {n} is stdin/stdout/stderr; s6 uses 3 or more"
                    ));
                }
                c.notify_fd = Some(n);
            }
            "--max-backoff" => {
                c.max_backoff = seconds(&opt, &a.value(&opt, inline)?)?;
                if c.max_backoff.is_zero() {
                    return Err(format!("{opt}: must be longer than 0 s"));
                }
            }
            "--give-up" => c.give_up = Some(give_up(&opt, &a.value(&opt, inline)?)?),
            "--log-timestamps" => c.log_timestamps = true,
            "--log-prefix" => c.log_prefix = true,
            _ => return Err(format!("unknown option '{opt}'")),
        }
    };
    c.program = first.into_iter().chain(a.rest()).collect();
    if c.program.is_empty() {
        return Err("no PROGRAM given (daemonkit run [options] -- PROGRAM [ARGS...])".into());
    }
    if c.group.is_some() && c.user.is_none() {
        return Err("--group needs --user".into());
    }
    if (!c.caps.is_empty() || !c.drop_flags.is_empty()) && c.user.is_none() {
        return Err("--cap, --no-new-privs and --drop-bounding go with --user".into());
    }
    if c.once && c.workers != 1 {
        return Err("--once runs one copy of PROGRAM: no -w N".into());
    }
    if c.reuseport && !c.listen.iter().any(|l| !l.addr.starts_with("unix:")) {
        return Err("--reuseport needs a TCP --listen (it gives it one socket per worker)".into());
    }
    if c.notify_fd.is_some() && c.daemonize {
        return Err(
            "--notify-fd is for a supervisor that runs daemonkit in the foreground (s6): \
                    not with -D"
                .into(),
        );
    }
    Ok(c)
}

/// Parses the options of `stop`, `status` and `reload` (`--timeout` only when `with_timeout`):
/// the PID file and the stop timeout. `cmd` names the command in messages.
pub fn parse_ctl(
    cmd: &str,
    args: Vec<OsString>,
    with_timeout: bool,
) -> Result<(PathBuf, Duration), String> {
    let mut pid = None;
    let mut timeout = DEFAULT_STOP_TIMEOUT;
    let mut a = Args::new(args);
    loop {
        let (opt, inline) = match a.next_opt() {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(Some(x)) => return Err(format!("{cmd}: unexpected argument {x:?}")),
            Err(None) => return Err(format!("{cmd}: unexpected '--'")),
        };
        match opt.as_str() {
            "--pid" | "--pidfile" => pid = Some(absolute(&opt, &a.value(&opt, inline)?)?),
            "--timeout" if with_timeout => timeout = seconds(&opt, &a.value(&opt, inline)?)?,
            _ => return Err(format!("{cmd}: unknown option '{opt}'")),
        }
    }
    let pid = pid.ok_or_else(|| format!("{cmd}: --pid FILE is required"))?;
    Ok((pid, timeout))
}

/// Whether `--help`/`-h` is among the options (before `--` and PROGRAM; option values are
/// skipped by a trial parse).
pub fn wants_help(args: &[OsString]) -> bool {
    let mut a = Args::new(args.to_vec());
    while let Ok(Some((opt, inline))) = a.next_opt() {
        if opt == "--help" || opt == "-h" {
            return true;
        }
        if inline.is_none() && TAKES_VALUE.contains(&opt.as_str()) {
            let _ = a.value(&opt, None);
        }
    }
    false
}

/// Options that take a value (for [`wants_help`]).
const TAKES_VALUE: &[&str] = &[
    "--pid",
    "--pidfile",
    "--listen",
    "-l",
    "-w",
    "--workers",
    "--ready",
    "--ready-timeout",
    "--graceful-timeout",
    "--user",
    "-u",
    "--group",
    "-g",
    "--cap",
    "--chdir",
    "--umask",
    "--log",
    "--nofile",
    "--env",
    "-e",
    "--timeout",
    "--stop-signal",
    "--notify-fd",
    "--max-backoff",
    "--give-up",
];
