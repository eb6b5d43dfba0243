//! quickstart-tokio: a daemonized tokio server under daemonkit's supervisor, written from the
//! crate docs. HUP replaces the workers one by one, USR2 upgrades to a new master on the
//! same socket, TERM drains and stops.
//!
//!     quickstart-tokio --listen 127.0.0.1:8080 --pid /run/qs.pid [-w 2]
//!                      [--user nobody --group nogroup]
#![forbid(unsafe_code)]

use daemonkit::daemon::{self, Daemonize};
use daemonkit::supervisor::Supervisor;
use daemonkit::tokio::{tcp_listener, AsyncSignals, Graceful};
use daemonkit::{exec, listen, pidfile::Pidfile, privileges, signals};
use std::net::TcpListener;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Args {
    listen: String,
    pid: std::path::PathBuf,
    workers: u32,
    user: Option<String>,
    group: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        listen: "127.0.0.1:8080".into(),
        workers: 2,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(opt) = it.next() {
        let val = it.next().ok_or(format!("{opt} needs a value"))?;
        match opt.as_str() {
            "--listen" => a.listen = val,
            "--pid" => a.pid = std::path::absolute(val).map_err(|e| e.to_string())?,
            "-w" => a.workers = val.parse().map_err(|_| "-w: a number")?,
            "--user" => a.user = Some(val),
            "--group" => a.group = Some(val),
            _ => return Err(format!("unknown option {opt}")),
        }
    }
    if a.pid.as_os_str().is_empty() {
        return Err("--pid FILE is required".into());
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    // What USR2 runs: this program again, resolved before the daemon changes directory.
    let argv = exec::self_argv()?;
    // The guide's order: PID file, listener (inherited after an upgrade), daemonize.
    let mut pidfile = Pidfile::open(&args.pid)?;
    let listener = match listen::fds(true)?.pop() {
        Some((fd, _name)) => TcpListener::from(fd),
        None => listen::tcp(&args.listen)?,
    };
    // No tokio runtime exists yet: it is built in each worker, after the fork.
    Daemonize::new().keep_fd(&listener).start()?;
    // From here on, a failure is reported to the launcher, which prints it and exits 1.
    let mut serve = || -> daemonkit::Result<()> {
        pidfile.write()?;
        if let Some(user) = &args.user {
            privileges::drop(user, args.group.as_deref())?;
        }
        signals::ignore_sigpipe()?;
        // The master: HUP, USR2, TERM, TTIN/TTOU are the library's. It reports ready (the
        // launcher exits 0) once every worker has.
        Supervisor::new(args.workers)
            .listener(&listener)
            .pidfile(&mut pidfile)
            .upgrade(&argv, Duration::from_secs(30))
            .graceful_timeout(Duration::from_secs(10))
            .run_tokio(|_index| worker(&listener))?;
        Ok(())
    };
    if let Err(e) = serve() {
        daemon::fail(1, &e.to_string())?;
        std::process::exit(1);
    }
    Ok(())
}

/// One worker, on the runtime `run_tokio` built for it after the fork.
async fn worker(listener: &TcpListener) -> i32 {
    let (signals, accepting) = match (AsyncSignals::new(&[libc::SIGTERM]), tcp_listener(listener)) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => {
            let _ = daemon::fail(1, &e.to_string());
            return 1;
        }
    };
    let graceful = Graceful::new();
    let _ = daemon::ready();
    loop {
        tokio::select! {
            r = accepting.accept() => if let Ok((conn, _)) = r {
                tokio::spawn(graceful.track(answer(conn)));
            },
            _ = signals.recv() => break, // TERM from the master: stop accepting, drain
        }
    }
    drop(accepting);
    graceful.drain(Duration::from_secs(10)).await;
    0
}

/// Reads the request head, answers `hello from quickstart-tokio pid N`, closes.
async fn answer(mut conn: tokio::net::TcpStream) {
    let (mut buf, mut n) = (vec![0u8; 4096], 0);
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf[n..]).await {
            Ok(0) | Err(_) => return,
            Ok(k) => n += k,
        }
    }
    let body = format!("hello from quickstart-tokio pid {}\n", std::process::id());
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", body.len());
    let _ = conn
        .write_all(format!("{head}Connection: close\r\n\r\n{body}").as_bytes())
        .await;
}
