//! The servers people already have, unchanged, under `daemonkit run` (issue 14 items 1, 2):
//! Debian's Starman (Server::Starter's protocol: `SERVER_STARTER_PORT`,
//! `SERVER_STARTER_GENERATION`), gunicorn (LISTEN_FDS) and uvicorn (`--fd 3`), each under
//! wrk (16 connections, two HUPs) on 127.0.0.1. With clients that close each connection no
//! request may fail: daemonkit switches new connections to the new generation's socket
//! before the old one is told to stop (listener pairs). Keep-alive figures are printed:
//! a server that closes its idle keep-alive connections when it stops (uvicorn) makes wrk
//! count read errors, which no supervisor can prevent. BENCHMARKS.md has the comparison with
//! Server::Starter's own `start_server`.

mod common;
use common::cli::*;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn app(name: &str) -> String {
    root()
        .join("tests/support/apps")
        .join(name)
        .display()
        .to_string()
}

/// What wrk said.
#[derive(Debug, Default)]
struct Wrk {
    requests: u64,
    rps: f64,
    socket_errors: u64,
    non_2xx: u64,
    text: String,
}

/// wrk -t2 -c16 for `secs` seconds (Connection: close when `close`), sending HUP to
/// `master` at each of `hups` (seconds after the start).
fn wrk(port: u16, secs: u64, close: bool, master: i32, hups: &[f64]) -> Wrk {
    let wrk = tool("wrk").expect("wrk");
    let mut cmd = Command::new(wrk);
    cmd.args(["-t2", "-c16", "--timeout", "5s"])
        .arg(format!("-d{secs}s"))
        .arg(format!("http://127.0.0.1:{port}/"));
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wrk");
    let t0 = std::time::Instant::now();
    for &h in hups {
        let at = Duration::from_secs_f64(h);
        if let Some(d) = at.checked_sub(t0.elapsed()) {
            std::thread::sleep(d);
        }
        kill(master, libc::SIGHUP);
    }
    let out = child.wait_with_output().expect("wrk output");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut w = Wrk {
        text: text.clone(),
        ..Default::default()
    };
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            w.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            w.non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            w.socket_errors = v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if l.contains(" requests in ") {
            w.requests = l
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    w
}

/// A `daemonkit run -D` of `program` on a fresh port; returns (port, pid file, log, master).
fn start_wrapped(
    dir: &TempDir,
    extra: &[&str],
    program: &[&str],
    reaper: &mut Reaper,
) -> (u16, PathBuf, PathBuf, i32) {
    let port = free_port();
    let pf = dir.join("app.pid");
    let log = dir.join("app.log");
    let (pfs, logs) = (pf.display().to_string(), log.display().to_string());
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "run",
        "-D",
        "--pid",
        &pfs,
        "--log",
        &logs,
        "--listen",
        &listen,
        "-w",
        "1",
        "--graceful-timeout",
        "10",
    ];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(program);
    let o = dk(&args);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(
        o.status.success(),
        "{}: {}\nlog: {}",
        program[0],
        text(&o),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    (port, pf, log, master)
}

fn body(port: u16, path: &str) -> String {
    get(port, path).unwrap_or_default().trim().to_string()
}

fn stop(pf: &Path, master: i32) {
    let o = dk(&[
        "stop",
        "--pid",
        &pf.display().to_string(),
        "--timeout",
        "15",
    ]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    assert!(wait_until(Duration::from_secs(5), || !alive(master)));
}

#[test]
fn starman_speaks_server_starter_and_hup_rolls_a_generation() {
    let Some(starman) = tool("starman") else {
        return;
    };
    if tool("wrk").is_none() {
        return;
    }
    let dir = TempDir::new("srv-starman");
    let mut reaper = Reaper::default();
    let starman = starman.display().to_string();
    let psgi = app("starter.psgi");
    let (port, pf, log, master) = start_wrapped(
        &dir,
        &["--stop-signal", "QUIT"],
        &[&starman, "--workers", "2", &psgi],
        &mut reaper,
    );
    // Starman serves on the socket daemonkit bound (its own would be :5000), told so in
    // Server::Starter's terms.
    assert!(
        wait_until(Duration::from_secs(10), || body(port, "/")
            .ends_with("gen 1")),
        "starman does not serve: {:?}",
        body(port, "/")
    );
    assert_eq!(body(port, "/port"), format!("127.0.0.1:{port}=3"));
    let first_starman = children(master);
    assert_eq!(
        first_starman.len(),
        1,
        "one Starman master: {first_starman:?}"
    );

    let close = wrk(port, 7, true, master, &[1.5, 4.0]);
    std::thread::sleep(Duration::from_millis(1500));
    let after = body(port, "/");
    let keep = wrk(port, 7, false, master, &[1.5, 4.0]);
    std::thread::sleep(Duration::from_millis(1500));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    println!(
        "starman -w 1 --stop-signal QUIT, two HUPs each: close {} req {:.0} req/s {} socket \
         errors {} non-2xx; keep-alive {} req {:.0} req/s {} socket errors; then {after:?}",
        close.requests,
        close.rps,
        close.socket_errors,
        close.non_2xx,
        keep.requests,
        keep.rps,
        keep.socket_errors
    );
    assert!(close.requests > 1000, "{}", close.text);
    assert_eq!(close.socket_errors + close.non_2xx, 0, "{}", close.text);
    assert!(
        after.ends_with("gen 3"),
        "two HUPs: generation 3 serves: {after:?}"
    );
    assert!(
        !first_starman.iter().any(|&p| alive(p)),
        "the first Starman lives on"
    );
    assert!(
        log_text.matches("Received QUIT").count() >= 2,
        "the old generations were not stopped with QUIT: {log_text}"
    );
    assert!(body(port, "/").ends_with("gen 5"), "{:?}", body(port, "/"));
    stop(&pf, master);
}

#[test]
fn gunicorn_takes_listen_fds_and_hup_fails_no_request() {
    let Some(gunicorn) = tool("gunicorn") else {
        return;
    };
    if tool("wrk").is_none() {
        return;
    }
    let dir = TempDir::new("srv-gunicorn");
    let mut reaper = Reaper::default();
    let g = gunicorn.display().to_string();
    let apps = root().join("tests/support/apps").display().to_string();
    let (port, pf, _log, master) = start_wrapped(
        &dir,
        &["--ready", "delay=1500"],
        &[&g, "--workers", "2", "--chdir", &apps, "wsgi_app:app"],
        &mut reaper,
    );
    assert!(
        wait_until(Duration::from_secs(10), || body(port, "/")
            .starts_with("hello from gunicorn")),
        "gunicorn does not serve on the inherited socket"
    );
    let before = children(master);
    let close = wrk(port, 8, true, master, &[1.5, 4.5]);
    std::thread::sleep(Duration::from_millis(2000));
    let keep = wrk(port, 8, false, master, &[1.5, 4.5]);
    println!(
        "gunicorn --workers 2, two HUPs each: close {} req {:.0} req/s {} errors; keep-alive \
         {} req {:.0} req/s {} errors",
        close.requests,
        close.rps,
        close.socket_errors + close.non_2xx,
        keep.requests,
        keep.rps,
        keep.socket_errors + keep.non_2xx
    );
    assert!(close.requests > 1000 && keep.requests > 1000);
    assert_eq!(close.socket_errors + close.non_2xx, 0, "{}", close.text);
    // gunicorn's sync workers answer HTTP/1.0-style (Connection: close) anyway.
    assert_eq!(keep.socket_errors + keep.non_2xx, 0, "{}", keep.text);
    assert!(
        before.iter().all(|&p| !alive(p)),
        "HUP did not replace gunicorn"
    );
    stop(&pf, master);
}

#[test]
fn uvicorn_takes_fd_3_and_hup_fails_no_request_that_closes() {
    let Some(uvicorn) = tool("uvicorn") else {
        return;
    };
    if tool("wrk").is_none() {
        return;
    }
    let dir = TempDir::new("srv-uvicorn");
    let mut reaper = Reaper::default();
    let u = uvicorn.display().to_string();
    let apps = root().join("tests/support/apps").display().to_string();
    let (port, pf, _log, master) = start_wrapped(
        &dir,
        &["--ready", "delay=1500"],
        &[&u, "--fd", "3", "--app-dir", &apps, "asgi_app:app"],
        &mut reaper,
    );
    assert!(
        wait_until(Duration::from_secs(10), || body(port, "/")
            .starts_with("hello from uvicorn")),
        "uvicorn does not serve on fd 3"
    );
    let before = children(master);
    let close = wrk(port, 8, true, master, &[1.5, 4.5]);
    std::thread::sleep(Duration::from_millis(2000));
    let keep = wrk(port, 6, false, master, &[1.5]);
    println!(
        "uvicorn --fd 3, HUPs: close {} req {:.0} req/s {} errors; keep-alive {} req {:.0} \
         req/s {} read errors (uvicorn closes idle keep-alive connections when it stops)",
        close.requests,
        close.rps,
        close.socket_errors + close.non_2xx,
        keep.requests,
        keep.rps,
        keep.socket_errors
    );
    assert!(close.requests > 1000, "{}", close.text);
    assert_eq!(close.socket_errors + close.non_2xx, 0, "{}", close.text);
    assert_eq!(keep.non_2xx, 0, "{}", keep.text);
    assert!(
        before.iter().all(|&p| !alive(p)),
        "HUP did not replace uvicorn"
    );
    stop(&pf, master);
}
