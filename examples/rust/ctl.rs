//! `stop` and `status`: the PID file's lock says whether the daemon lives (never a bare
//! `kill(pid, 0)`: a stale file's pid may belong to somebody else by now), and signals go
//! through `Pidfile::kill`, which only signals a process that provably holds the lock.

use crate::{absolute, seconds, Args, NAME};
use daemonkit::{Error, PidState, Pidfile};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// How long `stop` waits after TERM before it sends KILL (the servers' default graceful
/// timeout is 30 s).
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(35);
/// How long `stop` waits for the lock to go after KILL.
const AFTER_KILL: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

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

/// `status --pid FILE`, with the LSB exit codes: 0 running, 1 dead with a stale pid file,
/// 3 not running, 4 unknown (the file cannot be read).
pub fn status(args: Vec<String>) -> u8 {
    let path = match parse("status", args, false) {
        Ok((p, _)) => p,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return 4;
        }
    };
    match Pidfile::check(&path) {
        Ok(PidState::Running(pid)) if pid > 0 => {
            println!("running (PID: {pid})");
            0
        }
        Ok(PidState::Running(_)) => {
            println!("running (PID not written yet)");
            0
        }
        Ok(PidState::Stale(pid)) => {
            let pid = pid.map_or(String::new(), |p| format!(" (PID: {p})"));
            println!("dead, but the pid file {} remains{pid}", path.display());
            1
        }
        Ok(PidState::Absent) => {
            println!("not running");
            3
        }
        Err(e) => {
            eprintln!("{NAME}: {e}");
            4
        }
    }
}

/// Signals the holder of `path`, retrying briefly while it has not written its pid yet.
fn signal(path: &Path, sig: i32) -> Result<i32, Error> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match Pidfile::kill(path, sig) {
            Err(Error::Io { source, .. })
                if source.raw_os_error() == Some(libc::EAGAIN) && Instant::now() < deadline =>
            {
                thread::sleep(POLL)
            }
            r => return r,
        }
    }
}

/// Waits up to `timeout` for nobody to hold the lock.
fn wait_released(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match Pidfile::check(path) {
            Ok(PidState::Running(_)) => {}
            Ok(_) => return true,
            Err(e) => eprintln!("{NAME}: {e}"),
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Says why nothing had to be stopped.
fn not_running(path: &Path) -> u8 {
    match Pidfile::check(path) {
        Ok(PidState::Stale(pid)) => {
            let pid = pid.map_or(String::new(), |p| {
                format!(" (stale PID: {p}, not signalled)")
            });
            println!("not running; the pid file {} is stale{pid}", path.display());
        }
        _ => println!("not running"),
    }
    0
}

/// `stop --pid FILE [--timeout SECS]`: TERM, wait for the lock to be released, KILL after
/// the timeout. Exit 0 when stopped or not running.
pub fn stop(args: Vec<String>) -> u8 {
    let (path, timeout) = match parse("stop", args, true) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return 2;
        }
    };
    let pid = match signal(&path, libc::SIGTERM) {
        Ok(pid) => pid,
        Err(Error::NotRunning { .. }) => return not_running(&path),
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return 1;
        }
    };
    println!(
        "sent TERM to PID {pid}; waiting up to {:.1}s for it to stop",
        timeout.as_secs_f64()
    );
    if wait_released(&path, timeout) {
        println!("stopped (PID: {pid})");
        return 0;
    }
    match signal(&path, libc::SIGKILL) {
        Ok(p) => println!(
            "PID {p} still running after {:.1}s; sent KILL",
            timeout.as_secs_f64()
        ),
        Err(Error::NotRunning { .. }) => {
            println!("stopped (PID: {pid})");
            return 0;
        }
        Err(e) => {
            eprintln!("{NAME}: cannot send KILL: {e}");
            return 1;
        }
    }
    if wait_released(&path, AFTER_KILL) {
        println!(
            "killed (PID: {pid}); the pid file {} is left stale (the next start takes it over)",
            path.display()
        );
        0
    } else {
        eprintln!(
            "{NAME}: PID {pid} still holds {} after KILL",
            path.display()
        );
        1
    }
}
