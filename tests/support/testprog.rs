//! The program `tests/supervisor.rs` and `tests/process.rs` drive: a tiny HTTP/1.0 server on
//! daemonkit's Rust layer, configured through environment variables so the tests can start
//! it, its re-exec'd image and its upgraded generation with the same command line.
//!
//! Modes (first argument):
//! - `supervise`: prefork master with `DK_WORKERS` workers (default 2).
//! - `single`: one process; HUP re-execs it, USR2 upgrades it, TERM drains and exits.
//!
//! Variables: `DK_ADDR` (listen address; ignored when sockets are inherited), `DK_PID` (PID
//! file), `DK_GRACEFUL_MS`, `DK_CRASH=1` (workers exit 1 at once), `DK_EVENTS=FILE` (append
//! supervisor events), `DK_REAPER=FILE` (run a helper child reaped by our own thread and
//! record its status there), `DK_UPGRADE_FAIL=1` (a generation started by an upgrade fails),
//! `DK_DAEMONIZE=1` (fork into the background instead of staying in the foreground).
//!
//! Fault injection (tests/faults.rs): `DK_TIMEOUT_MS` (the launcher's readiness timeout),
//! `DK_START_DELAY_MS` (sleep after startup, before serving and reporting ready),
//! `DK_UPGRADE_DELAY_MS` (the same, only in a generation started by an upgrade),
//! `DK_CHROOT=DIR` (chroot there before daemonizing), `DK_LOG=FILE` (stdout/stderr to FILE,
//! a line per request), `DK_IGNORE_TERM=1` (workers ignore TERM).
//!
//! Hardening (tests/hardening.rs): `DK_SIGNAL_DELAY_MS` (a worker sleeps that long before it
//! registers its signals: a wide window in which it still has the default actions),
//! `DK_USR1_FILE=FILE` (a worker appends `usr1 PID` there for each USR1 it handles),
//! `DK_CRASH_IF_EXISTS=FILE` (a worker exits 1 at once while FILE exists).
//!
//! Restart policy (tests/supervisor.rs): `DK_CRASH_AFTER_MS` (a worker serves, then exits 1
//! that long after its start), `DK_GIVE_UP=N/MS` and `DK_MAX_BACKOFF_MS` (the policy; the
//! master exits 3 when it gave up).
//!
//! Listener pairs: `DK_PAIR=1` (the listener is a pair of SO_REUSEPORT sockets, see
//! `Prefork::listener_pair`), `DK_DROP_ON_TERM=1` (a worker told to stop drops, unanswered,
//! whatever it can still accept — as Starman's children and uvicorn do).
//! Per-slot listeners: `DK_SLOTS=N` (the listener is N SO_REUSEPORT sockets, one per worker
//! slot, see `Supervisor::listener_slots`; an upgrade's new generation inherits all N).
//!
//! Every response is `200` with the serving pid as body; `/slow?ms=N` waits first.

use daemonkit::daemon::{Daemonize, Role};
use daemonkit::listen::ListenFlags;
use daemonkit::pidfile::Pidfile;
use daemonkit::signals::Signals;
use daemonkit::supervisor::{Outcome, Supervisor};
use daemonkit::{exec, listen};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// An event callback that appends "kind pid value" to `path` and logs the event.
fn event_logger(path: String) -> impl FnMut(daemonkit::supervisor::Event) {
    move |e| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let _ = writeln!(f, "{} {} {}", e.kind, e.pid, e.value);
        e.log();
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn handle(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let req = String::from_utf8_lossy(&buf);
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
    if let Some(ms) = path
        .strip_prefix("/slow?ms=")
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let body = format!("{}\n", std::process::id());
    if env("DK_LOG").is_some() {
        // Not eprintln!: it panics when the log disk is full.
        let _ = writeln!(std::io::stderr(), "{} GET {path}", std::process::id());
    }
    let _ = write!(
        s,
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        body
    );
}

/// Serves until TERM/INT/QUIT (drain, return true) or, with `reload`, HUP/USR2 (drain,
/// return false with the signal in `last`). Calls `daemonkit::daemon::ready()` once serving.
fn serve(listener: &TcpListener, sigs: &Signals, last: &mut i32) -> bool {
    listener.set_nonblocking(true).unwrap();
    daemonkit::daemon::ready().unwrap();
    let mut threads = Vec::new();
    let stop = loop {
        let mut pfds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigs.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        unsafe { libc::poll(pfds.as_mut_ptr(), 2, 1000) };
        let mut verdict = None;
        for sig in sigs.pending() {
            match sig {
                libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => verdict = Some(true),
                libc::SIGHUP | libc::SIGUSR2 => {
                    *last = sig;
                    verdict = Some(false)
                }
                libc::SIGUSR1 => {
                    let _ = daemonkit::log::reopen();
                    if let Some(f) = env("DK_USR1_FILE") {
                        let mut f = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(f)
                            .unwrap();
                        let _ = writeln!(f, "usr1 {}", std::process::id());
                    }
                }
                _ => {}
            }
        }
        if let Some(v) = verdict {
            if env("DK_DROP_ON_TERM").is_some() {
                while let Ok((s, _)) = listener.accept() {
                    drop(s); // accepted, never answered
                }
            }
            break v;
        }
        while let Ok((s, _)) = listener.accept() {
            let _ = s.set_nonblocking(false);
            // Under RLIMIT_NPROC a thread may not be available: serve inline then.
            let cell = std::sync::Arc::new(std::sync::Mutex::new(Some(s)));
            let c2 = cell.clone();
            match std::thread::Builder::new().spawn(move || {
                if let Some(s) = c2.lock().unwrap().take() {
                    handle(s)
                }
            }) {
                Ok(t) => threads.push(t),
                Err(_) => {
                    if let Some(s) = cell.lock().unwrap().take() {
                        handle(s)
                    }
                }
            }
        }
        threads.retain(|t| !t.is_finished());
    };
    for t in threads {
        let _ = t.join();
    }
    stop
}

/// With `DK_SLOTS=N`: the N sockets of the per-slot listener (inherited from an upgrade, or
/// bound on `DK_ADDR`, the others on the first one's port).
fn slot_listeners(n: usize) -> Vec<TcpListener> {
    let inherited = listen::fds(true).expect("LISTEN_FDS");
    if !inherited.is_empty() {
        return inherited.into_iter().map(|(fd, _)| fd.into()).collect();
    }
    let addr = env("DK_ADDR").unwrap_or_else(|| "127.0.0.1:0".into());
    let first = listen::tcp_with(&addr, 0, ListenFlags::REUSEPORT).unwrap();
    let name = listen::socket_name(&first).unwrap();
    let mut all = vec![first];
    for _ in 1..n {
        all.push(listen::tcp_with(&name, 0, ListenFlags::REUSEPORT).unwrap());
    }
    all
}

/// The listener, and with `DK_PAIR` the second socket of its pair.
fn listener() -> (TcpListener, Option<TcpListener>) {
    let mut inherited = listen::fds(true).expect("LISTEN_FDS");
    if let Some((fd, _)) = inherited.pop() {
        return (TcpListener::from(fd), None);
    }
    let addr = env("DK_ADDR").unwrap_or_else(|| "127.0.0.1:0".into());
    let r = if env("DK_PAIR").is_some() {
        listen::tcp_pair(&addr).map(|(a, b)| (a, Some(b)))
    } else {
        listen::tcp(&addr).map(|l| (l, None))
    };
    match r {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let argv = exec::self_argv().unwrap();
    let slots: usize = env("DK_SLOTS").and_then(|v| v.parse().ok()).unwrap_or(0);
    if slots > 0 {
        let all = slot_listeners(slots);
        eprintln!(
            "listening on {} ({} slot sockets)",
            listen::socket_name(&all[0]).unwrap(),
            all.len()
        );
        let mut pidfile = env("DK_PID").map(|p| Pidfile::open(&p).unwrap());
        let mut d = Daemonize::new().foreground(true).keep_stdio();
        for l in &all {
            d = d.keep_fd(l);
        }
        d.start().unwrap();
        if let Some(pf) = pidfile.as_mut() {
            pf.write().unwrap();
        }
        daemonkit::signals::ignore_sigpipe().unwrap();
        return supervise_slots(all, pidfile, &argv);
    }
    let (listener, second) = listener();
    eprintln!("listening on {}", listen::socket_name(&listener).unwrap());
    let mut pidfile = env("DK_PID").map(|p| match Pidfile::open(&p) {
        Ok(pf) => pf,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    });
    if let Some(log) = env("DK_LOG") {
        if let Err(e) = daemonkit::log::open(&log) {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    if let Some(dir) = env("DK_CHROOT") {
        let c = std::ffi::CString::new(dir).unwrap();
        // SAFETY: chroot and chdir on valid C strings.
        if unsafe { libc::chroot(c.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 } {
            eprintln!("chroot: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
    }
    let daemonize = env("DK_DAEMONIZE").is_some();
    let mut d = Daemonize::new().foreground(!daemonize).keep_fd(&listener);
    if let Some(b) = &second {
        d = d.keep_fd(b);
    }
    if !daemonize {
        d = d.keep_stdio();
    }
    if let Some(ms) = env("DK_TIMEOUT_MS").and_then(|v| v.parse().ok()) {
        d = d.timeout(Duration::from_millis(ms));
    }
    let role = match d.start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if role == Role::Upgrade && env("DK_UPGRADE_FAIL").is_some() {
        daemonkit::daemon::fail(4, "new generation refuses to start (DK_UPGRADE_FAIL)").unwrap();
        std::process::exit(4);
    }
    if let Some(pf) = pidfile.as_mut() {
        if let Err(e) = pf.write() {
            let msg = format!("{e}");
            let _ = daemonkit::daemon::fail(1, &msg);
            eprintln!("{msg}");
            std::process::exit(1);
        }
    }
    // DK_USER (DK_GROUP, DK_CAPS=NAME,NAME, DK_NNP): the privilege drop, keeping those
    // capabilities; again in a re-exec'd or upgraded image (then it verifies they came
    // through). DK_TRY_BIND=ADDR: then try to bind ADDR and say how it went.
    if let Some(user) = env("DK_USER") {
        use daemonkit::privileges::{drop_caps, Capabilities, DropFlags};
        let caps = env("DK_CAPS")
            .unwrap_or_default()
            .split(',')
            .filter(|n| !n.is_empty())
            .map(|n| Capabilities::parse_name(n).expect("DK_CAPS: a capability name"))
            .fold(Capabilities::empty(), |a, b| a | b);
        let mut flags = DropFlags::empty();
        flags.set(DropFlags::NO_NEW_PRIVS, env("DK_NNP").is_some());
        if let Err(e) = drop_caps(&user, env("DK_GROUP").as_deref(), caps, flags) {
            let msg = format!("{e}");
            let _ = daemonkit::daemon::fail(1, &msg);
            eprintln!("{msg}");
            std::process::exit(1);
        }
        if let Some(addr) = env("DK_TRY_BIND") {
            match TcpListener::bind(&addr) {
                Ok(_) => eprintln!("try-bind {addr}: ok"),
                Err(e) => eprintln!("try-bind {addr}: {e}"),
            }
        }
    }
    let delay = match role {
        Role::Upgrade => env("DK_UPGRADE_DELAY_MS"),
        _ => env("DK_START_DELAY_MS"),
    };
    if let Some(ms) = delay.and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    daemonkit::signals::ignore_sigpipe().unwrap();
    match mode.as_str() {
        "supervise" => supervise(listener, second, pidfile, &argv),
        "single" => single(listener, pidfile, &argv),
        _ => {
            eprintln!("usage: dk-testprog supervise|single");
            std::process::exit(2);
        }
    }
}

fn supervise(
    listener: TcpListener,
    second: Option<TcpListener>,
    mut pidfile: Option<Pidfile>,
    argv: &[std::ffi::OsString],
) {
    let workers: u32 = env("DK_WORKERS").and_then(|v| v.parse().ok()).unwrap_or(2);
    let graceful: u64 = env("DK_GRACEFUL_MS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let crash = env("DK_CRASH").is_some();
    let crash_if = env("DK_CRASH_IF_EXISTS");
    let signal_delay: u64 = env("DK_SIGNAL_DELAY_MS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ignore_term = env("DK_IGNORE_TERM").is_some();
    let events = env("DK_EVENTS");
    if let Some(path) = env("DK_REAPER") {
        // Another reaper in the same process: our own child, waited for by pid.
        let mut child = std::process::Command::new("sleep")
            .arg("1")
            .spawn()
            .unwrap();
        std::thread::spawn(move || {
            let st = child.wait();
            let line = match st {
                Ok(s) => format!("reaped {} {}\n", child.id(), s.code().unwrap_or(-1)),
                Err(e) => format!("error {e}\n"),
            };
            std::fs::write(path, line).unwrap();
        });
    }
    let crash_after: Option<u64> = env("DK_CRASH_AFTER_MS").and_then(|v| v.parse().ok());
    let give_up = env("DK_GIVE_UP").and_then(|v| {
        let (n, ms) = v.split_once('/')?;
        Some((n.parse().ok()?, Duration::from_millis(ms.parse().ok()?)))
    });
    let max_backoff = env("DK_MAX_BACKOFF_MS")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(8), Duration::from_millis);
    let mut p = Supervisor::new(workers).restart(max_backoff, give_up);
    p = match &second {
        Some(b) => p.listener_pair(&listener, b),
        None => p.listener(&listener),
    };
    let mut p = p
        .graceful_timeout(Duration::from_millis(graceful))
        .upgrade(argv, Duration::from_secs(10));
    if let Some(pf) = pidfile.as_mut() {
        p = p.pidfile(pf);
    }
    if let Some(path) = events {
        p = p.on_event(event_logger(path));
    }
    let l = &listener;
    let outcome = p
        .run(move |_index| {
            if crash
                || crash_if
                    .as_ref()
                    .is_some_and(|f| std::path::Path::new(f).exists())
            {
                return 1;
            }
            std::thread::sleep(Duration::from_millis(signal_delay));
            if let Some(ms) = crash_after {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    std::process::exit(1);
                });
            }
            let sigs = if ignore_term {
                // SAFETY: ignoring a signal; no handler runs.
                unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
                Signals::new(&[libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1]).unwrap()
            } else {
                Signals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1]).unwrap()
            };
            let mut last = 0;
            serve(l, &sigs, &mut last);
            0
        })
        .unwrap();
    if let Some(pf) = pidfile {
        pf.close(); // the supervisor unlinked it (stopped) or it belongs to the new generation
    }
    eprintln!("master {} done: {:?}", std::process::id(), outcome);
    std::process::exit(match outcome {
        Outcome::Stopped | Outcome::Upgraded => 0,
        Outcome::GaveUp => 3,
    });
}

fn single(listener: TcpListener, mut pidfile: Option<Pidfile>, argv: &[std::ffi::OsString]) {
    let sigs = Signals::new(&[
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ])
    .unwrap();
    loop {
        let mut last = 0;
        if serve(&listener, &sigs, &mut last) {
            let _ = daemonkit::notify::stopping();
            if let Some(pf) = pidfile.take() {
                pf.remove().unwrap();
            }
            std::process::exit(0);
        }
        if last == libc::SIGHUP {
            let _ = daemonkit::notify::reloading();
            let err = exec::reexec(argv, &[listener.as_fd()], None, pidfile.as_ref());
            eprintln!("re-exec failed: {err}");
        } else {
            let started = Instant::now();
            match exec::upgrade(
                argv,
                &[listener.as_fd()],
                None,
                pidfile.as_mut(),
                Duration::from_secs(10),
            ) {
                Ok(pid) => {
                    eprintln!("upgraded to {pid} in {:?}", started.elapsed());
                    if let Some(pf) = pidfile.take() {
                        pf.close();
                    }
                    std::process::exit(0);
                }
                Err(e) => eprintln!("{e}"),
            }
        }
    }
}

/// `supervise` with `DK_SLOTS`: the listener is one socket per worker slot; each worker
/// serves on the first socket's fd number, where the supervisor put its slot's socket.
fn supervise_slots(
    all: Vec<TcpListener>,
    mut pidfile: Option<Pidfile>,
    argv: &[std::ffi::OsString],
) {
    let workers: u32 = env("DK_WORKERS").and_then(|v| v.parse().ok()).unwrap_or(2);
    let mut p = Supervisor::new(workers)
        .listener_slots(&all)
        .graceful_timeout(Duration::from_secs(10))
        .upgrade(argv, Duration::from_secs(10));
    if let Some(pf) = pidfile.as_mut() {
        p = p.pidfile(pf);
    }
    if let Some(path) = env("DK_EVENTS") {
        p = p.on_event(event_logger(path));
    }
    let l = &all[0];
    let outcome = p.run(move |_index| {
        let sigs =
            Signals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1]).unwrap();
        let mut last = 0;
        serve(l, &sigs, &mut last);
        0
    });
    if let Some(pf) = pidfile {
        pf.close();
    }
    eprintln!("master {} done: {:?}", std::process::id(), outcome);
    std::process::exit(match outcome {
        Ok(Outcome::Stopped | Outcome::Upgraded) => 0,
        Ok(Outcome::GaveUp) => 3,
        Err(_) => 4,
    });
}
