//! The two ways of running: a single process (signals handled here, HUP re-exec, USR2
//! upgrade) and a prefork master whose workers run [`worker`].
//!
//! Both loops are the same shape and sleep in the kernel when idle: one `poll` on the
//! listener and the signal pipe together (`daemonkit::fds::poll_in`); a readable listener
//! means accept every pending connection (one thread each, so `/slow` blocks nobody), a
//! readable signal pipe means handle what `Signals::pending` yields. While draining, the
//! poll watches the signal pipe and a wake-up socket each connection thread writes to when
//! it ends — no timer, no tick.

use crate::{http, Config, NAME};
use daemonkit::exec::{reexec, upgrade};
use daemonkit::fds::poll_in;
use daemonkit::pidfile::Pidfile;
use daemonkit::signals::Signals;
use daemonkit::supervisor::{Event, Outcome, Supervisor};
use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a new generation may take to report ready on USR2.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// The connections in flight in this process, and the socket pair their threads use to
/// wake a drain when they end.
struct Conns {
    inflight: Arc<AtomicUsize>,
    wake_tx: Arc<UnixStream>,
    wake_rx: UnixStream,
}

/// Decrements the in-flight count when a connection thread ends, however it ends, and wakes
/// a drain waiting in poll.
struct InflightGuard(Arc<AtomicUsize>, Arc<UnixStream>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        // Non-blocking: a full socket already holds a wake-up.
        let _ = (&*self.1).write(&[1]);
    }
}

impl Conns {
    fn new() -> Result<Conns, String> {
        let (tx, rx) = UnixStream::pair().map_err(|e| format!("wake-up socket pair: {e}"))?;
        for s in [&tx, &rx] {
            s.set_nonblocking(true)
                .map_err(|e| format!("wake-up socket pair: {e}"))?;
        }
        Ok(Conns {
            inflight: Arc::default(),
            wake_tx: Arc::new(tx),
            wake_rx: rx,
        })
    }

    /// Accepts every pending connection (at most `budget` when given) and serves each on its
    /// own thread. Returns how many were accepted.
    fn accept_pending(&self, listener: &TcpListener, budget: Option<u64>) -> u64 {
        let mut n = 0;
        while budget.is_none_or(|b| n < b) {
            match listener.accept() {
                Ok((stream, _)) => {
                    n += 1;
                    self.inflight.fetch_add(1, Ordering::SeqCst);
                    let guard = InflightGuard(self.inflight.clone(), self.wake_tx.clone());
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

    /// Waits for the in-flight connections to finish, at most `timeout`, sleeping in poll on
    /// the wake-up socket and the signal pipe. Signals arriving meanwhile go to `on_signal`;
    /// when it returns true the wait ends early. Returns whether everything finished.
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
            let fds = [self.wake_rx.as_fd(), sigs.as_fd()];
            if let Err(e) = poll_in(&fds, Some(deadline - now)) {
                eprintln!("{NAME}: {e}");
                return false;
            }
            let mut buf = [0u8; 64];
            while matches!((&self.wake_rx).read(&mut buf), Ok(1..)) {}
            for s in sigs.pending() {
                if on_signal(s) {
                    return false;
                }
            }
        }
    }
}

/// Sleeps until the listener (when there is one) or the signal pipe is readable; says
/// whether the listener is.
fn wait_for(listener: Option<&TcpListener>, sigs: &Signals) -> Result<bool, String> {
    let r = match listener {
        Some(l) => poll_in(&[l.as_fd(), sigs.as_fd()], None),
        None => poll_in(&[sigs.as_fd()], None).map(|_| vec![false]),
    };
    r.map(|ready| ready[0]).map_err(|e| e.to_string())
}

/// Makes the listener non-blocking so one thread can interleave accepts and signal waits.
fn nonblocking(listener: &TcpListener) -> Result<(), String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: cannot make it non-blocking: {e}"))
}

fn reopen_log(cfg: &Config) {
    if cfg.log.is_some() {
        match daemonkit::log::reopen() {
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
    let conns = Conns::new()?;
    let mut listener = Some(listener);
    // READY: tells the launcher (-D), the old generation (upgrade) and $NOTIFY_SOCKET.
    if let Err(e) = daemonkit::daemon::ready() {
        eprintln!("{NAME}: ready: {e}");
    }

    'serve: loop {
        if wait_for(listener.as_ref(), &sigs)? {
            if let Some(l) = &listener {
                conns.accept_pending(l, None);
            }
        }
        for sig in sigs.pending() {
            match sig {
                s if is_stop(s) => break 'serve,
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
                        break 'serve;
                    }
                    let Some(l) = &listener else { continue };
                    let err = reexec(argv, &[l.as_fd()], None, pidfile.as_ref());
                    eprintln!("{NAME}: {err}; still serving");
                    let _ = daemonkit::notify::send("READY=1");
                }
                libc::SIGUSR2 => {
                    let Some(l) = &listener else { continue };
                    eprintln!(
                        "{NAME}: pid {}: USR2: starting a new generation",
                        std::process::id()
                    );
                    match upgrade(argv, &[l.as_fd()], None, pidfile.as_mut(), UPGRADE_TIMEOUT) {
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
    let mut master = Supervisor::new(cfg.workers)
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
            let _ = daemonkit::daemon::fail(1, &format!("worker: {e}"));
            return 1;
        }
    };
    let conns = match Conns::new() {
        Ok(c) => c,
        Err(e) => {
            let _ = daemonkit::daemon::fail(1, &format!("worker: {e}"));
            return 1;
        }
    };
    let mut left = cfg.max_requests;
    // Tells the master this worker is serving.
    if let Err(e) = daemonkit::daemon::ready() {
        eprintln!("{NAME}: worker {}: ready: {e}", std::process::id());
    }
    'serve: loop {
        match wait_for(Some(listener), &sigs) {
            Ok(true) => {
                let n = conns.accept_pending(listener, left);
                if let Some(l) = left.as_mut() {
                    *l -= n;
                    if *l == 0 {
                        eprintln!(
                            "{NAME}: worker {}: served {} requests; exiting to be replaced",
                            std::process::id(),
                            cfg.max_requests.unwrap_or(0)
                        );
                        break 'serve;
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                eprintln!("{NAME}: worker {}: {e}", std::process::id());
                break 'serve;
            }
        }
        for s in sigs.pending() {
            if is_stop(s) {
                break 'serve;
            }
            if s == libc::SIGUSR1 {
                reopen_log(cfg);
            }
        }
    }
    // Stop accepting (the listener stays with the master and the other workers) and finish
    // what is in flight; a second stop signal skips the wait.
    conns.drain(cfg.graceful, &sigs, is_stop);
    0
}
