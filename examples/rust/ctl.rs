//! `stop` and `status`: the PID file's lock says whether the daemon lives (never a bare
//! `kill(pid, 0)`: a stale file's pid may belong to somebody else by now), and signals go
//! through `Pidfile::kill`, which only signals a process that provably holds the lock.

use crate::{absolute, seconds, Args, NAME};
use daemonkit::pidfile::Pidfile;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `stop` waits after TERM before it sends KILL (the servers' default graceful
/// timeout is 30 s).
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(35);

fn parse(cmd: &str, args: Vec<String>, with_timeout: bool) -> Result<(PathBuf, Duration), String> {
    let mut pid = None;
    let mut timeout = DEFAULT_STOP_TIMEOUT;
    let mut a = Args::new(args);
    while let Some((opt, inline)) = a.next_opt() {
        match opt.as_str() {
            "--pid" | "--pidfile" => pid = Some(absolute(&opt, &a.value(&opt, inline)?)?),
            "--timeout" if with_timeout => timeout = seconds(&opt, &a.value(&opt, inline)?)?,
            _ => return Err(format!("{cmd}: unknown option '{opt}'")),
        }
    }
    let pid = pid.ok_or_else(|| format!("{cmd}: --pid FILE is required"))?;
    Ok((pid, timeout))
}

/// Prints what a PID file says; returns the LSB status code (4 when unreadable).
pub fn report(path: &Path) -> u8 {
    match Pidfile::check(path) {
        Ok(st) => {
            println!("{}", st.describe(path));
            st.lsb_status()
        }
        Err(e) => {
            eprintln!("{NAME}: {e}");
            4
        }
    }
}

/// `status --pid FILE`, with the LSB exit codes: 0 running, 1 dead with a stale pid file,
/// 3 not running, 4 unknown (the file cannot be read).
pub fn status(args: Vec<String>) -> u8 {
    match parse("status", args, false) {
        Ok((path, _)) => report(&path),
        Err(e) => {
            eprintln!("{NAME}: {e}");
            4
        }
    }
}

/// `stop --pid FILE [--timeout SECS]`: TERM, wait for the lock to be released and the daemon
/// to exit, KILL after the timeout (all in `Pidfile::stop`, which never signals a pid whose
/// lock is free). Exit 0 when stopped or not running.
pub fn stop(args: Vec<String>) -> u8 {
    let (path, timeout) = match parse("stop", args, true) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return 2;
        }
    };
    match Pidfile::stop(&path, timeout) {
        Ok(stopped) => {
            println!("{}", stopped.describe(&path, timeout));
            0
        }
        Err(e) => {
            eprintln!("{NAME}: {e}");
            1
        }
    }
}
