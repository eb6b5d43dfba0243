//! Single-process restarts and systemd integration, from outside: re-exec keeps the listener,
//! single-process upgrade, `systemd-socket-activate`, and `NOTIFY_SOCKET` (path and
//! abstract) receiving READY/RELOADING/READY/STOPPING in order.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn single(tag: &str, env: &[(&str, &str)]) -> (std::process::Child, u16, TempDir) {
    let dir = TempDir::new(tag);
    let port = free_port();
    let mut cmd = Command::new(testprog());
    cmd.arg("single")
        .env("DK_ADDR", format!("127.0.0.1:{port}"))
        .env("DK_PID", dir.join("app.pid"))
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), port, dir)
}

#[test]
fn reexec_keeps_the_listener_and_the_lock() {
    let (mut child, port, dir) = single("reexec", &[]);
    let mut reaper = Reaper::default();
    reaper.add(child.id() as i32);
    let pid = child.id() as i32;
    let pidfile = dir.join("app.pid");
    assert!(
        wait_until(Duration::from_secs(10), || served_pid(port) == Some(pid)),
        "never served"
    );
    let exe_before = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let load = Load::start(port, 100_000, Duration::from_secs(20));
    wait_until(Duration::from_secs(5), || load.count() >= 200);
    kill(pid, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    wait_until(Duration::from_secs(10), || load.count() >= 1500);
    let (ok_n, bad, pids, errs) = load.finish();
    println!("re-exec under load: {ok_n} ok, {bad} failed, served by {pids:?}");
    assert_eq!(bad, 0, "{errs:?}");
    assert_eq!(pids, vec![pid], "served by another pid");
    assert!(alive(pid));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        exe_before
    );
    // The lock never dropped: the PID file still says running, with the same pid.
    let st = daemonkit::pidfile::Pidfile::check(&pidfile).unwrap();
    assert_eq!(st, daemonkit::pidfile::State::Running(pid));
    // The image really was replaced: its environment carries the re-exec hand-over.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ.windows(11).any(|w| w == b"LISTEN_FDS="),
        "no LISTEN_FDS in the new image"
    );
    kill(pid, libc::SIGTERM);
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    assert!(!pidfile.exists());
}

#[test]
fn single_process_upgrade_under_load() {
    let (mut child, port, dir) = single("upg1", &[]);
    let mut reaper = Reaper::default();
    let old = child.id() as i32;
    reaper.add(old);
    let pidfile = dir.join("app.pid");
    assert!(wait_until(Duration::from_secs(10), || served_pid(port) == Some(old)));
    let load = Load::start(port, 100_000, Duration::from_secs(20));
    wait_until(Duration::from_secs(5), || load.count() >= 100);
    kill(old, libc::SIGUSR2);
    let mut newpid = 0;
    let moved = wait_until(Duration::from_secs(10), || {
        newpid = pid_in(&pidfile).unwrap_or(0);
        newpid > 0 && newpid != old
    });
    if moved {
        reaper.add(newpid);
    }
    let code = child.wait().unwrap().code();
    wait_until(Duration::from_secs(5), || load.count() >= 1000);
    let (ok_n, bad, pids, errs) = load.finish();
    println!("single upgrade: {old} -> {newpid}, old exit {code:?}, {ok_n} ok, {bad} failed, pids {pids:?}");
    assert!(moved);
    assert_eq!(code, Some(0));
    assert_eq!(bad, 0, "{errs:?}");
    assert_eq!(served_pid(port), Some(newpid));
    kill(newpid, libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(10), || !alive(newpid)));
}

#[test]
fn systemd_socket_activate_passes_the_listener() {
    let tool = "/usr/bin/systemd-socket-activate";
    if !std::path::Path::new(tool).exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("systemd-socket-activate missing under CI");
        }
        eprintln!("skipping: {tool} missing");
        return;
    }
    let port = free_port();
    let mut child = Command::new(tool)
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg(testprog())
        .arg("single")
        .env("DK_ADDR", "127.0.0.1:1") // must be ignored: the inherited socket wins
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reaper = Reaper::default();
    let pid = child.id() as i32;
    reaper.add(pid);
    assert!(
        wait_until(Duration::from_secs(10), || served_pid(port) == Some(pid)),
        "not serving on the activated socket"
    );
    println!("socket activation: pid {pid} serves on 127.0.0.1:{port}");
    kill(pid, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

fn notify_sequence(addr: &str, bind: impl FnOnce() -> UnixDatagram) {
    let sock = bind();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut child, port, _dir) = single("notify", &[("NOTIFY_SOCKET", addr)]);
    let mut reaper = Reaper::default();
    let pid = child.id() as i32;
    reaper.add(pid);
    let mut got: Vec<String> = Vec::new();
    let recv = |want: &str, got: &mut Vec<String>| {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            let mut buf = [0u8; 512];
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(_) => break,
            };
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            got.push(msg.clone());
            if msg.lines().any(|l| l == want) {
                return true;
            }
        }
        false
    };
    assert!(recv("READY=1", &mut got), "no READY=1: {got:?}");
    assert!(served_pid(port).is_some());
    kill(pid, libc::SIGHUP);
    assert!(recv("RELOADING=1", &mut got), "no RELOADING=1: {got:?}");
    assert!(
        got.last().unwrap().contains("MONOTONIC_USEC="),
        "RELOADING without MONOTONIC_USEC: {got:?}"
    );
    assert!(
        recv("READY=1", &mut got),
        "no READY=1 after reload: {got:?}"
    );
    kill(pid, libc::SIGTERM);
    assert!(recv("STOPPING=1", &mut got), "no STOPPING=1: {got:?}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    println!("{addr}: {got:?}");
}

#[test]
fn notify_socket_path_and_abstract() {
    let dir = TempDir::new("nsock");
    let path = dir.join("notify.sock");
    let p2 = path.clone();
    notify_sequence(path.to_str().unwrap(), move || {
        UnixDatagram::bind(&p2).unwrap()
    });
    let name = format!("dk-test-notify-{}", std::process::id());
    let n2 = name.clone();
    notify_sequence(&format!("@{name}"), move || {
        use std::os::linux::net::SocketAddrExt;
        let a = std::os::unix::net::SocketAddr::from_abstract_name(n2.as_bytes()).unwrap();
        UnixDatagram::bind_addr(&a).unwrap()
    });
}

#[test]
fn daemonized_launcher_waits_for_ready() {
    let dir = TempDir::new("daemon");
    let port = free_port();
    let pidfile = dir.join("d.pid");
    let out = Command::new(testprog())
        .arg("single")
        .env("DK_ADDR", format!("127.0.0.1:{port}"))
        .env("DK_PID", &pidfile)
        .env("DK_DAEMONIZE", "1")
        .stdin(Stdio::null())
        .output() // the daemon's stdio is /dev/null, so this returns when the launcher exits
        .unwrap();
    let pid = pid_in(&pidfile).unwrap_or(0);
    let mut reaper = Reaper::default();
    reaper.add(pid);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // At the moment the launcher exited, the daemon already served and the file held its pid.
    assert!(pid > 0);
    assert_eq!(served_pid(port), Some(pid));
    let sid = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = sid[sid.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    assert_ne!(fields[3], pid.to_string(), "daemon is a session leader");
    assert_eq!(fields[4], "0", "daemon has a controlling tty");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::path::PathBuf::from("/")
    );
    // A second instance is refused and names the first.
    let second = Command::new(testprog())
        .arg("single")
        .env("DK_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DK_PID", &pidfile)
        .env("DK_DAEMONIZE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    println!("second instance: {err}");
    assert_ne!(second.status.code(), Some(0));
    assert!(
        err.contains(&format!(
            "pid file {}: daemon already running (PID: {pid})",
            pidfile.display()
        )),
        "{err}"
    );
    assert_eq!(
        daemonkit::pidfile::Pidfile::kill(&pidfile, libc::SIGTERM).unwrap(),
        pid
    );
    assert!(wait_until(Duration::from_secs(10), || !alive(pid)));
    assert!(!pidfile.exists());
}
