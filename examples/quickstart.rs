//! A daemon with the Rust layer: PID file, daemonize with readiness, signals.
//! `cargo run --example quickstart -- /tmp/quickstart.pid`
use daemonkit::{Daemonize, Pidfile, Signals};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/quickstart.pid".into());
    // Before the fork, so "already running" reaches the terminal.
    let mut pidfile = Pidfile::open(&path).map_err(|e| format!("pid file {path}: {e}"))?;
    Daemonize::new().umask(0o022).start()?; // the launcher waits for ready()
    pidfile.write()?;
    let signals = Signals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])?;
    daemonkit::ready()?; // the launcher exits 0 now
    while let Some(sig) = signals.wait(None)? {
        if sig == libc::SIGTERM || sig == libc::SIGINT {
            break; // SIGHUP: reload here
        }
    }
    pidfile.remove()?;
    Ok(())
}
