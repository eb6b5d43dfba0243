//! The two ways of running: a single process (signals handled here, HUP re-exec, USR2
//! upgrade) and a prefork master whose workers run [`worker`].
//!
//! Both loops are the same shape: accept every pending connection on the non-blocking
//! listener (one thread per connection, so `/slow` blocks nobody), then wait up to a few
//! milliseconds on the signal pipe with `Signals::wait`, which returns at once when a signal
//! arrives.

use crate::{http, Config, NAME};
use daemonkit::rust::{reexec, reopen_output, sd_notify, upgrade, Event, Outcome, Prefork};
use daemonkit::{Pidfile, Signals};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long one wait on the signal pipe lasts between two accept rounds.
const TICK: Duration = Duration::from_millis(5);
/// How long a new generation may take to report ready on USR2.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// The connections in flight in this process.
#[derive(Clone, Default)]
struct Conns {
    inflight: Arc<AtomicUsize>,
}

/// Decrements the in-flight count when a connection thread ends, however it ends.
struct InflightGuard(Arc<AtomicUsize>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Conns {
    /// Accepts every pending connection (at most `budget` when given) and serves each on its
    /// own thread. Returns how many were accepted.
    fn accept_pending(&self, listener: &TcpListener, budget: Option<u64>) -> u64 {
        let mut n = 0;
        while budget.map_or(true, |b| n < b) {
            match listener.accept() {
                Ok((stream, _)) => {
                    n += 1;
                    self.inflight.fetch_add(1, Ordering::SeqCst);
                    let guard = InflightGuard(self.inflight.clone());
                    let spawned = thread::Builder::new().spawn(move || {
                        let _guard = guard;
                        http::serve_connection(stream);
                    });
                    if let Err(e) = spawned {
                        // The closure (stream and guard) was dropped: the client sees a close.
                        eprintln!("{NAME}: cannot start a connection thread: {e}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: say so and let the next round retry.
                    eprintln!("{NAME}: accept: {e}");
                    break;
                }
            }
        }
        n
    }

    fn busy(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Waits for the in-flight connections to finish, at most `timeout`. Signals arriving
    /// meanwhile go to `on_signal`; when it returns true the wait ends early. Returns whether
    /// everything finished.
    fn drain(
        &self,
        timeout: Duration,
        sigs: &Signals,
        mut on_signal: impl FnMut(i32) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.busy() == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                eprintln!(
                    "{NAME}: pid {}: {} request(s) still running after the graceful timeout",
                    std::process::id(),
                    self.busy()
                );
                return false;
            }
            match sigs.wait(Some(TICK.min(deadline - now))) {
                Ok(Some(s)) if on_signal(s) => return false,
                Ok(_) => {}
                Err(_) => thread::sleep(TICK),
            }
        }
    }
}

/// Makes the listener non-blocking so one thread can interleave accepts and signal waits.
fn nonblocking(listener: &TcpListener) -> Result<(), String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: cannot make it non-blocking: {e}"))
}

fn reopen_log(cfg: &Config) {
    if cfg.log.is_some() {
        match reopen_output() {
            Ok(()) => eprintln!("{NAME}: pid {}: log reopened", std::process::id()),
            Err(e) => eprintln!(
                "{NAME}: pid {}: cannot reopen the log: {e}",
                std::process::id()
            ),
        }
    }
}

/// Single-process mode (no `-w`, or `-w 0`).
pub fn single(
    cfg: &Config,
    listener: TcpListener,
    pidfile: &mut Option<Pidfile>,
    argv: &[OsString],
) -> Result<(), String> {
    let sigs = Signals::new(&[
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ])
    .map_err(|e| e.to_string())?;
    nonblocking(&listener)?;
    let conns = Conns::default();
    let mut listener = Some(listener);
    // READY: tells the launcher (-D), the old generation (upgrade) and $NOTIFY_SOCKET.
    if let Err(e) = daemonkit::ready() {
        eprintln!("{NAME}: ready: {e}");
    }

    loop {
        if let Some(l) = &listener {
            conns.accept_pending(l, None);
        }
        let sig = match sigs.wait(Some(TICK)) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("{NAME}: signals: {e}");
                thread::sleep(TICK);
                continue;
            }
        };
        match sig {
            s if is_stop(s) => break,
            libc::SIGUSR1 => reopen_log(cfg),
            libc::SIGHUP => {
                // Re-exec in place: stop accepting (the listener stays open, connections
                // queue in its backlog), finish what is in flight, exec the same program.
                let _ = daemonkit::notify::reloading();
                eprintln!(
                    "{NAME}: pid {}: HUP: draining, then re-executing",
                    std::process::id()
                );
                let mut stop = false;
                conns.drain(cfg.graceful, &sigs, |s| {
                    if is_stop(s) {
                        stop = true;
                    } else if s == libc::SIGUSR1 {
                        reopen_log(cfg);
                    }
                    stop
                });
                if stop {
                    break;
                }
                let Some(l) = &listener else { continue };
                let err = reexec(argv, &[l.as_raw_fd()], None, pidfile.as_ref());
                eprintln!("{NAME}: {err}; still serving");
                let _ = sd_notify("READY=1");
            }
            libc::SIGUSR2 => {
                let Some(l) = &listener else { continue };
                eprintln!(
                    "{NAME}: pid {}: USR2: starting a new generation",
                    std::process::id()
                );
                match upgrade(
                    argv,
                    &[l.as_raw_fd()],
                    None,
                    pidfile.as_mut(),
                    UPGRADE_TIMEOUT,
                ) {
                    Ok(pid) => {
                        eprintln!(
                            "{NAME}: upgrade: new generation {pid} ready; draining the old one"
                        );
                        drop(listener.take());
                        conns.drain(cfg.graceful, &sigs, is_stop);
                        // Not removed: the file holds the new generation's pid now.
                        if let Some(pf) = pidfile.take() {
                            pf.close();
                        }
                        eprintln!("{NAME}: pid {}: upgraded; exiting", std::process::id());
                        return Ok(());
                    }
                    Err(e) => eprintln!("{NAME}: upgrade failed, still serving: {e}"),
                }
            }
            _ => {}
        }
    }

    // TERM/INT/QUIT: stop accepting, finish in-flight requests, remove the PID file.
    let _ = daemonkit::notify::stopping();
    eprintln!("{NAME}: pid {}: stopping", std::process::id());
    drop(listener);
    // A second stop signal skips the rest of the wait.
    conns.drain(cfg.graceful, &sigs, is_stop);
    if let Some(pf) = pidfile.take() {
        if let Err(e) = pf.remove() {
            eprintln!("{NAME}: {e}");
        }
    }
    eprintln!("{NAME}: pid {}: stopped", std::process::id());
    Ok(())
}

/// Supervisor mode (`-w N`): the library's prefork master; each worker runs [`worker`].
pub fn supervisor(
    cfg: &Config,
    listener: TcpListener,
    pidfile: &mut Option<Pidfile>,
    argv: &[OsString],
) -> Result<(), String> {
    nonblocking(&listener)?;
    let mut master = Prefork::new(cfg.workers)
        .graceful_timeout(cfg.graceful)
        .listener(&listener)
        .upgrade(argv, UPGRADE_TIMEOUT)
        .on_event(log_event);
    if let Some(pf) = pidfile.as_mut() {
        master = master.pidfile(pf);
    }
    let outcome = master.run(|index| worker(cfg, &listener, index));
    match outcome {
        Ok(o) => {
            // Stopped: the master already unlinked the file. Upgraded: it is the new
            // generation's. Either way only close it.
            if let Some(pf) = pidfile.take() {
                pf.close();
            }
            let how = if o == Outcome::Upgraded {
                "upgraded"
            } else {
                "stopped"
            };
            eprintln!("{NAME}: master {}: {how}", std::process::id());
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The supervisor's events, one line each on stderr: the library's description, our name.
fn log_event(e: Event) {
    eprintln!("{NAME}: {e}");
}

/// A prefork worker: runs in the forked child with default signal dispositions. Returns its
/// exit status (0: stopped or done with --max-requests, replaced by the master at once).
fn worker(cfg: &Config, listener: &TcpListener, _index: u32) -> i32 {
    let sigs = match Signals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1]) {
        Ok(s) => s,
        Err(e) => {
            let _ = daemonkit::fail(1, &format!("worker: {e}"));
            return 1;
        }
    };
    let conns = Conns::default();
    let mut left = cfg.max_requests;
    // Tells the master this worker is serving.
    if let Err(e) = daemonkit::ready() {
        eprintln!("{NAME}: worker {}: ready: {e}", std::process::id());
    }
    loop {
        let n = conns.accept_pending(listener, left);
        if let Some(l) = left.as_mut() {
            *l -= n;
            if *l == 0 {
                eprintln!(
                    "{NAME}: worker {}: served {} requests; exiting to be replaced",
                    std::process::id(),
                    cfg.max_requests.unwrap_or(0)
                );
                break;
            }
        }
        match sigs.wait(Some(TICK)) {
            Ok(Some(s)) if is_stop(s) => break,
            Ok(Some(libc::SIGUSR1)) => reopen_log(cfg),
            Ok(_) => {}
            Err(_) => thread::sleep(TICK),
        }
    }
    // Stop accepting (the listener stays with the master and the other workers) and finish
    // what is in flight; a second stop signal skips the wait.
    conns.drain(cfg.graceful, &sigs, is_stop);
    0
}
