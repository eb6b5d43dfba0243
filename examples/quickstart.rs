//! A daemon with the Rust layer: PID file, daemonize with readiness, signals.
//! `cargo run --example quickstart -- /tmp/quickstart.pid`
use daemonkit::daemon::{self, Daemonize};
use daemonkit::pidfile::Pidfile;
use daemonkit::signals::Signals;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}"); // names the file, user or address at fault
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> daemonkit::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/quickstart.pid".into());
    // Before the fork, so "pid file …: daemon already running (PID: N)" reaches the terminal.
    let mut pidfile = Pidfile::open(&path)?;
    Daemonize::new().umask(0o022).start()?; // the launcher waits for ready()
    pidfile.write()?;
    let signals = Signals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])?;
    daemon::ready()?; // the launcher exits 0 now
    while let Some(sig) = signals.wait(None)? {
        if sig == libc::SIGTERM || sig == libc::SIGINT {
            break; // SIGHUP: reload here
        }
    }
    pidfile.remove()
}
