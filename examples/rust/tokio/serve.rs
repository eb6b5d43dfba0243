//! The two ways of running, both on tokio: a single process (its runtime built in `main`
//! after daemonizing; HUP re-exec, USR2 upgrade, TERM drain) and a prefork master whose
//! workers each run [`worker`] on a runtime `Supervisor::run_tokio` builds after the fork.
//!
//! Every loop is one `select!` over `accept()` and `AsyncSignals::recv()`: the process
//! sleeps in epoll until a connection or a signal arrives. Connections are spawned tasks
//! counted by a `Graceful`; a stop ends the accept loop and drains them, bounded by
//! `--graceful-timeout`.

use crate::{http, Config, NAME};
use daemonkit::exec::{reexec, upgrade};
use daemonkit::pidfile::Pidfile;
use daemonkit::supervisor::{Outcome, Supervisor};
use daemonkit::tokio::{tcp_listener, AsyncSignals, Graceful};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The `<lang>` of `hello from <lang> pid N`.
pub const LANG: &str = "rust-tokio";

/// How long a new generation may take to report ready on USR2.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

fn pid() -> u32 {
    std::process::id()
}

fn reopen_log(cfg: &Config) {
    if cfg.log.is_some() {
        match daemonkit::log::reopen() {
            Ok(()) => eprintln!("{NAME}: pid {}: log reopened", pid()),
            Err(e) => eprintln!("{NAME}: pid {}: cannot reopen the log: {e}", pid()),
        }
    }
}

/// Serves an accepted connection on its own task, counted by `graceful`.
fn spawn_connection(stream: tokio::net::TcpStream, graceful: &Graceful) {
    tokio::spawn(graceful.track(http::connection(stream, graceful.clone())));
}

/// An accept error: a connection the peer already aborted is nothing; anything else
/// (EMFILE, ENFILE, ENOBUFS) is said, and the next accept waits a moment, so that a full
/// fd table does not turn the loop into a busy one.
async fn accept_failed(e: std::io::Error) {
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::Interrupted | ErrorKind::WouldBlock
    ) {
        return;
    }
    eprintln!("{NAME}: pid {}: accept: {e}", pid());
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Drains the connections in flight (at most `cfg.graceful`) while handling signals: USR1
/// reopens the log, a stop signal ends the wait at once. Returns whether one did.
async fn drain(graceful: &Graceful, cfg: &Config, sigs: &AsyncSignals) -> bool {
    let done = graceful.drain(cfg.graceful);
    let mut done = std::pin::pin!(done);
    loop {
        tokio::select! {
            all = &mut done => {
                if !all {
                    eprintln!(
                        "{NAME}: pid {}: {} request(s) still running after the graceful timeout",
                        pid(),
                        graceful.in_flight()
                    );
                }
                return false;
            }
            sig = sigs.recv() => match sig {
                Ok(s) if is_stop(s) => return true,
                Ok(libc::SIGUSR1) => reopen_log(cfg),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("{NAME}: pid {}: {e}", pid());
                    return false;
                }
            },
        }
    }
}

/// A USR2 upgrade in progress: `exec::upgrade` blocks until the new generation is ready
/// (or fails), so it runs on tokio's blocking pool while this process goes on serving. The
/// PID file travels with it and comes back.
type Upgrading = JoinHandle<(daemonkit::Result<u32>, Option<Pidfile>)>;

fn start_upgrade(
    argv: &[OsString],
    listener: &TcpListener,
    pidfile: &mut Option<Pidfile>,
) -> Result<Upgrading, String> {
    let l = listener
        .try_clone()
        .map_err(|e| format!("upgrade: listener: {e}"))?;
    let argv = argv.to_vec();
    let mut pf = pidfile.take();
    Ok(tokio::task::spawn_blocking(move || {
        let r = upgrade(&argv, &[l.as_fd()], None, pf.as_mut(), UPGRADE_TIMEOUT);
        (r, pf)
    }))
}

/// Single-process mode (no `-w`, or `-w 0`), inside the runtime `main` built.
pub async fn single(
    cfg: &Config,
    listener: TcpListener,
    pidfile: &mut Option<Pidfile>,
    argv: &[OsString],
) -> Result<(), String> {
    let sigs = AsyncSignals::new(&[
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ])
    .map_err(|e| e.to_string())?;
    // `listener` stays ours for a re-exec or an upgrade; tokio accepts on a duplicate.
    let accepting = tcp_listener(&listener).map_err(|e| e.to_string())?;
    let mut graceful = Graceful::new();
    let mut upgrading: Option<Upgrading> = None;
    // READY: tells the launcher (-D), the old generation (upgrade) and $NOTIFY_SOCKET.
    if let Err(e) = daemonkit::daemon::ready() {
        eprintln!("{NAME}: ready: {e}");
    }
    let upgraded = loop {
        tokio::select! {
            r = accepting.accept() => match r {
                Ok((stream, _)) => spawn_connection(stream, &graceful),
                Err(e) => accept_failed(e).await,
            },
            sig = sigs.recv() => match sig.map_err(|e| e.to_string())? {
                s if is_stop(s) => break false,
                libc::SIGUSR1 => reopen_log(cfg),
                libc::SIGHUP if upgrading.is_some() => {
                    eprintln!("{NAME}: pid {}: HUP during an upgrade: ignored", pid());
                }
                libc::SIGHUP => {
                    // Re-exec in place: stop accepting (new connections wait in the backlog
                    // of the listener, which stays open), finish what is in flight, exec.
                    let _ = daemonkit::notify::reloading();
                    eprintln!("{NAME}: pid {}: HUP: draining, then re-executing", pid());
                    if drain(&graceful, cfg, &sigs).await {
                        break false;
                    }
                    let err = reexec(argv, &[listener.as_fd()], None, pidfile.as_ref());
                    eprintln!("{NAME}: {err}; still serving");
                    let _ = daemonkit::notify::send("READY=1");
                    graceful = Graceful::new();
                }
                libc::SIGUSR2 if upgrading.is_some() => {
                    eprintln!("{NAME}: pid {}: USR2: an upgrade is in progress already", pid());
                }
                libc::SIGUSR2 => {
                    eprintln!("{NAME}: pid {}: USR2: starting a new generation", pid());
                    match start_upgrade(argv, &listener, pidfile) {
                        Ok(u) => upgrading = Some(u),
                        Err(e) => eprintln!("{NAME}: upgrade failed, still serving: {e}"),
                    }
                }
                _ => {}
            },
            done = async { upgrading.as_mut().expect("guarded").await }, if upgrading.is_some() => {
                upgrading = None;
                let (r, pf) = done.map_err(|e| format!("upgrade task: {e}"))?;
                *pidfile = pf;
                match r {
                    Ok(new) => {
                        eprintln!("{NAME}: upgrade: new generation {new} ready; draining the old one");
                        break true;
                    }
                    Err(e) => eprintln!("{NAME}: upgrade failed, still serving: {e}"),
                }
            }
        }
    };
    // Stop accepting: close both descriptors of the listener, so a client that comes now
    // is refused here (after an upgrade the new generation has its own copy).
    drop(accepting);
    drop(listener);
    if upgraded {
        drain(&graceful, cfg, &sigs).await;
        // Not removed: the file holds the new generation's pid now.
        if let Some(pf) = pidfile.take() {
            pf.close();
        }
        eprintln!("{NAME}: pid {}: upgraded; exiting", pid());
        return Ok(());
    }
    // TERM/INT/QUIT: finish in-flight requests (a second stop signal skips the rest of the
    // wait), remove the PID file.
    let _ = daemonkit::notify::stopping();
    eprintln!("{NAME}: pid {}: stopping", pid());
    drain(&graceful, cfg, &sigs).await;
    let mut handed_over = false;
    if let Some(u) = upgrading.take() {
        // A stop during an upgrade: the PID file is with it until it ends (bounded).
        if let Ok((r, pf)) = u.await {
            handed_over = r.is_ok();
            *pidfile = pf;
        }
    }
    if let Some(pf) = pidfile.take() {
        if handed_over {
            pf.close();
        } else if let Err(e) = pf.remove() {
            eprintln!("{NAME}: {e}");
        }
    }
    eprintln!("{NAME}: pid {}: stopped", pid());
    Ok(())
}

/// Supervisor mode (`-w N`): the library's prefork master, each worker on its own runtime.
pub fn supervisor(
    cfg: &Config,
    listener: TcpListener,
    pidfile: &mut Option<Pidfile>,
    argv: &[OsString],
) -> Result<(), String> {
    let mut master = Supervisor::new(cfg.workers)
        .graceful_timeout(cfg.graceful)
        .listener(&listener)
        .upgrade(argv, UPGRADE_TIMEOUT)
        .on_event(|e| eprintln!("{NAME}: {e}"));
    if let Some(pf) = pidfile.as_mut() {
        master = master.pidfile(pf);
    }
    let shared = &listener;
    let outcome = master.run_tokio(move |index| worker(cfg, shared, index));
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
            eprintln!("{NAME}: master {}: {how}", pid());
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A prefork worker, in the forked child on its own runtime, with default signal
/// dispositions. Returns its exit status (0: stopped, or done after --max-requests and
/// replaced by the master at once).
async fn worker(cfg: &Config, listener: &TcpListener, _index: u32) -> i32 {
    let start = || -> daemonkit::Result<_> {
        // Before `ready`: the master forwards USR1 to ready workers only.
        let sigs = AsyncSignals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1])?;
        Ok((sigs, tcp_listener(listener)?))
    };
    let (sigs, accepting) = match start() {
        Ok(v) => v,
        Err(e) => {
            let _ = daemonkit::daemon::fail(1, &format!("worker: {e}"));
            return 1;
        }
    };
    let graceful = Graceful::new();
    let mut left = cfg.max_requests;
    // Tells the master this worker is serving.
    if let Err(e) = daemonkit::daemon::ready() {
        eprintln!("{NAME}: worker {}: ready: {e}", pid());
    }
    loop {
        tokio::select! {
            r = accepting.accept() => match r {
                Ok((stream, _)) => {
                    spawn_connection(stream, &graceful);
                    if let Some(n) = left.as_mut() {
                        *n -= 1;
                        if *n == 0 {
                            eprintln!(
                                "{NAME}: worker {}: served {} requests; exiting to be replaced",
                                pid(),
                                cfg.max_requests.unwrap_or(0)
                            );
                            break;
                        }
                    }
                }
                Err(e) => accept_failed(e).await,
            },
            sig = sigs.recv() => match sig {
                Ok(s) if is_stop(s) => break,
                Ok(libc::SIGUSR1) => reopen_log(cfg),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("{NAME}: worker {}: {e}", pid());
                    break;
                }
            },
        }
    }
    // Stop accepting (the listener stays with the master and the other workers) and finish
    // what is in flight; a second stop signal skips the wait.
    drop(accepting);
    drain(&graceful, cfg, &sigs).await;
    0
}
