//! `stop`, `status` and `reload`: the PID file's lock says whether the daemon lives (never a
//! bare `kill(pid, 0)`: a stale file's pid may belong to somebody else by now), and signals
//! go through `Pidfile::kill`, which only signals a process that provably holds the lock.

use crate::args::parse_ctl;
use crate::{EXIT_USAGE, NAME};
use daemonkit::pidfile::{Pidfile, Stopped};
use daemonkit::Error;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// LSB: "program is not running" for an action.
const EXIT_NOT_RUNNING: u8 = 7;

/// `status --pid FILE`, with the LSB exit codes: 0 running, 1 dead with a stale pid file,
/// 3 not running, 4 unknown (the file cannot be read).
pub fn status(args: Vec<OsString>) -> u8 {
    let path = match parse_ctl("status", args, false) {
        Ok((p, _)) => p,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return 4;
        }
    };
    match Pidfile::check(&path) {
        Ok(st) => {
            println!("{}", st.describe(&path));
            st.lsb_status()
        }
        Err(e) => {
            eprintln!("{NAME}: {e}");
            4
        }
    }
}

/// Says why nothing had to be signalled.
fn not_running(path: &Path) {
    println!(
        "{}",
        Stopped::not_running(path).describe(path, Duration::ZERO)
    );
}

/// `stop --pid FILE [--timeout SECS]`.
pub fn stop(args: Vec<OsString>) -> u8 {
    match parse_ctl("stop", args, true) {
        Ok((path, timeout)) => stop_path(&path, timeout),
        Err(e) => {
            eprintln!("{NAME}: {e}");
            EXIT_USAGE
        }
    }
}

/// TERM, wait for the lock to be released and the daemon to exit, KILL after the timeout
/// (`Pidfile::stop`, which never signals a pid whose lock is free). 0 when stopped or not
/// running.
pub fn stop_path(path: &Path, timeout: Duration) -> u8 {
    match Pidfile::stop(path, timeout) {
        Ok(stopped) => {
            println!("{}", stopped.describe(path, timeout));
            0
        }
        Err(e) => {
            eprintln!("{NAME}: {e}");
            1
        }
    }
}

/// `reload --pid FILE`: HUP (a rolling restart of the program).
pub fn reload(args: Vec<OsString>) -> u8 {
    let path = match parse_ctl("reload", args, false) {
        Ok((p, _)) => p,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return EXIT_USAGE;
        }
    };
    match Pidfile::signal_holder(&path, libc::SIGHUP, Duration::from_secs(2)) {
        Ok(pid) => {
            println!("sent HUP to PID {pid} (rolling restart)");
            0
        }
        Err(Error::NotRunning { .. }) => {
            not_running(&path);
            EXIT_NOT_RUNNING
        }
        Err(e) => {
            eprintln!("{NAME}: {e}");
            1
        }
    }
}
