//! The `daemonkit` command against real processes: `run`/`start` wrapping a plain
//! LISTEN_FDS program (tests/support/lfd_http.py), `stop`/`status`/`reload` with their LSB
//! exit codes (including a stale PID file and a recycled pid that must not be signalled),
//! port 80 served as nobody, and the conformance rows that apply to a wrapped program.
//! 127.0.0.1 only, bounded loops, every process stopped by its pid.

mod common;

use common::cli::*;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn start_status_reload_stop() {
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-life");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let port = free_port();
    let mut reaper = Reaper::default();
    let o = start(&pf, port, &["--workers", "2"]);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "start: {}", text(&o));
    assert!(
        master > 0,
        "pid file after start: {:?}",
        std::fs::read_to_string(&pf)
    );
    assert!(hello_pid(port).is_some(), "GET / right after start");

    let o = dk(&["status", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(0), "status: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("running (PID: {master})")));

    // start again (same port): LSB says success, and nothing changes.
    let o = start(&pf, port, &[]);
    assert_eq!(o.status.code(), Some(0), "second start: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "daemonkit: pid file {pfs}: daemon already running (PID: {master})"
        )),
        "second start: {}",
        text(&o)
    );

    // HUP under a client loop: every worker replaced, no request fails.
    let before = children(master);
    assert_eq!(before.len(), 2, "workers {before:?}");
    let load = Load::start(port, 3000, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(200));
    let o = dk(&["reload", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(0), "reload: {}", text(&o));
    let rolled = wait_until(Duration::from_secs(10), || {
        let now = children(master);
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    std::thread::sleep(Duration::from_millis(200));
    let (ok, bad, _, errs) = load.finish();
    assert!(
        rolled,
        "workers not replaced: {before:?} -> {:?}",
        children(master)
    );
    assert_eq!(bad, 0, "failed requests across HUP ({ok} ok): {errs:?}");
    assert!(ok > 0);
    assert_eq!(pid_in(&pf), Some(master));

    let o = dk(&["stop", "--pid", &pfs, "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    assert!(!alive(master), "master still alive after stop");
    assert!(!pf.exists(), "pid file left after a clean stop");
    let o = dk(&["status", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(3), "status after stop: {}", text(&o));
    let o = dk(&["stop", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(0), "stop when stopped: {}", text(&o));
    let o = dk(&["reload", "--pid", &pfs]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "reload when stopped: {}",
        text(&o)
    );
}

#[test]
fn run_already_running_is_an_error() {
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-already");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let mut reaper = Reaper::default();
    let o = start(&pf, free_port(), &[]);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "start: {}", text(&o));
    let prog = program().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let o = dk(&[
        "run", "-D", "--pid", &pfs, "--listen", &listen, "--", &prog[0], &prog[1],
    ]);
    assert_eq!(o.status.code(), Some(1), "run -D twice: {}", text(&o));
    let want = format!("daemonkit: pid file {pfs}: daemon already running (PID: {master})");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&want),
        "{}",
        text(&o)
    );
    assert_eq!(pid_in(&pf), Some(master));
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
}

#[test]
fn stale_pid_file_after_kill_9() {
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-stale");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let mut reaper = Reaper::default();
    let o = start(&pf, free_port(), &[]);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "start: {}", text(&o));
    let victims: Vec<i32> = std::iter::once(master).chain(children(master)).collect();
    for &v in &victims {
        kill(v, libc::SIGKILL);
    }
    assert!(wait_until(Duration::from_secs(3), || victims
        .iter()
        .all(|&v| !alive(v))));
    let o = dk(&["status", "--pid", &pfs]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "status of a stale file: {}",
        text(&o)
    );
    let o = dk(&["stop", "--pid", &pfs]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stop of a stale file: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("stale"),
        "{}",
        text(&o)
    );
    // The next start takes the stale file over.
    let port = free_port();
    let o = start(&pf, port, &[]);
    let second = pid_in(&pf).unwrap_or(0);
    reaper.add(second);
    assert!(o.status.success(), "start over a stale file: {}", text(&o));
    assert!(second > 0 && second != master);
    assert!(hello_pid(port).is_some());
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
}

#[test]
fn recycled_pid_is_never_signalled() {
    let dir = TempDir::new("cmd-recycled");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    // A live, unrelated process whose pid sits in an unlocked pid file.
    let mut other = Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = other.id() as i32;
    std::fs::write(&pf, format!("{pid}\n")).unwrap();
    let o = dk(&["status", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(1), "status: {}", text(&o));
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("not signalled"),
        "{}",
        text(&o)
    );
    let o = dk(&["reload", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(7), "reload: {}", text(&o));
    std::thread::sleep(Duration::from_millis(300));
    let still = other.try_wait().unwrap().is_none();
    let _ = other.kill();
    let _ = other.wait();
    assert!(still, "the unrelated process {pid} was signalled");
}

/// A PID file holder that, on TERM, removes its file and releases the lock at once, then
/// exits `linger` seconds later (as a daemon does between dropping its PID file and its last
/// cleanup). Returns the child once it holds the lock.
fn lingering_holder(pf: &Path, linger: &str) -> std::process::Child {
    let script = r#"
import fcntl, os, signal, sys, time
path, linger = sys.argv[1], float(sys.argv[2])
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, b"%d\n" % os.getpid())
def term(*_):
    os.unlink(path)
    os.close(fd)
    time.sleep(linger)
    os._exit(0)
signal.signal(signal.SIGTERM, term)
print("locked", flush=True)
while True:
    time.sleep(1)
"#;
    let mut child = Command::new(python().unwrap())
        .args(["-c", script, &pf.display().to_string(), linger])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let out = child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

/// Whether `child` had exited by now; kills it if not, reaps it, and returns its status too.
fn end_child(child: &mut std::process::Child) -> (bool, std::process::ExitStatus) {
    let exited = child.try_wait().unwrap().is_some();
    if !exited {
        let _ = child.kill();
    }
    (exited, child.wait().unwrap())
}

#[test]
fn stop_waits_for_the_process_not_only_its_lock() {
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-linger");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();

    // Releases the lock at once, exits 1.5 s later: stop returns only after the exit.
    let mut holder = lingering_holder(&pf, "1.5");
    let pid = holder.id() as i32;
    let t0 = Instant::now();
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "20"]);
    let took = t0.elapsed();
    let running = alive(pid);
    let (exited, _) = end_child(&mut holder);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("stopped (PID: {pid})")),
        "{}",
        text(&o)
    );
    assert!(
        !running,
        "stop returned after {took:?} while PID {pid} still ran"
    );
    assert!(exited, "PID {pid} not exited when stop returned");
    assert!(
        took >= Duration::from_millis(1400),
        "stop took only {took:?}"
    );

    // Lingers past the timeout: the very process TERM went to is killed through its pidfd,
    // although the lock is free by then.
    let mut holder = lingering_holder(&pf, "60");
    let pid = holder.id() as i32;
    let t0 = Instant::now();
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "1"]);
    let took = t0.elapsed();
    let (_, status) = end_child(&mut holder);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("PID {pid} still running")),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "holder {pid}: {status:?}"
    );
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert!(!pf.exists());
}

#[test]
fn port_80_as_nobody() {
    if skip_without_python() || !need_root("port 80 as nobody") {
        return;
    }
    if std::net::TcpListener::bind("127.0.0.1:80").is_err() {
        eprintln!("skipping: 127.0.0.1:80 is in use");
        return;
    }
    let dir = TempDir::new("cmd-port80");
    // SAFETY: chmod on our own fresh directory (nobody may then remove its pid file).
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let mut reaper = Reaper::default();
    let prog = program().unwrap();
    let o = dk(&[
        "run",
        "--daemonize",
        "--pid",
        &pfs,
        "--listen",
        "127.0.0.1:80",
        "--user",
        "nobody",
        "--ready",
        "delay=300",
        "--",
        &prog[0],
        &prog[1],
    ]);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "run on port 80 as nobody: {}", text(&o));
    let ids = get(80, "/ids").expect("GET /ids on port 80");
    assert!(ids.starts_with("uid=65534 gid="), "ids {ids:?}");
    assert!(ids.contains("euid=65534"), "ids {ids:?}");
    for p in std::iter::once(master).chain(children(master)) {
        let st = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
        assert_eq!(
            uid.split_whitespace().skip(1).collect::<Vec<_>>(),
            ["65534"; 4],
            "{p}: {uid}"
        );
    }
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    assert!(!alive(master));
}

#[test]
fn failures_have_clear_messages_and_codes() {
    let o = dk(&["run", "--bogus", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown option '--bogus'"));
    let o = dk(&["run", "--listen", "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = dk(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = dk(&["start", "--", "true"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "start without --pid: {}",
        text(&o)
    );
    let o = dk(&["run", "--", "no-such-program-dk"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-program-dk: command not found"));
    for cmd in ["run", "start", "stop", "restart", "reload", "status"] {
        let o = dk(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{cmd} --help: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("daemonkit {cmd}")));
        let o = dk(&["help", cmd]);
        assert_eq!(o.status.code(), Some(0));
    }
    let o = dk(&["--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit codes"));

    // A program that dies before it is ready: the launcher says so and exits 1.
    let dir = TempDir::new("cmd-false");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let t0 = Instant::now();
    let o = dk(&["run", "-D", "--pid", &pfs, "--", "false"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exited with status 1 before it was ready"),
        "{}",
        text(&o)
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(3), || !pf.exists()));
}

/// The conformance rows that apply to a program that knows only LISTEN_FDS, through
/// tests/support/command-server.sh (hup-single, usr2-upgrade, notify, socket-activation,
/// max-requests and endpoints' "served by the launched pid" assume the server itself).
#[test]
fn conformance_rows_for_a_wrapped_program() {
    if skip_without_python() {
        return;
    }
    let mut rows = vec![
        "daemonize-ready",
        "port-in-use",
        "already-running",
        "already-running-same-port",
        "stale-pidfile",
        "fail-after-fork",
        "term-graceful",
        "term-graceful-workers",
        "hup-workers",
        "ttin-ttou",
        "worker-respawn",
        "master-kill",
        "usr1-reopen",
        "usr1-reopen-workers",
        "nofile",
        "listen-port0",
        "usr1-during-hup",
    ];
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        rows.push("user-group");
        rows.push("pidfile-foreign-lock");
    }
    let o = Command::new(python().unwrap())
        .arg(root().join("tests/conformance/conformance.py"))
        .arg("--server")
        .arg({
            bin();
            stage_dir().join("command-server.sh")
        })
        .args(["--lang", "command", "--only", &rows.join(",")])
        .env("DAEMONKIT_BIN", bin())
        .stdin(Stdio::null())
        .output()
        .expect("conformance.py");
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "conformance rows failed:\n{out}");
    assert!(
        out.contains(&format!("{} passed, 0 failed", rows.len())),
        "{out}"
    );
}

/// `--ready fd` and `--ready notify` with a program that does report (LFD_READY, set with
/// `--env`): the launcher returns long before the 30 s fallback, and HUP rolls on the
/// reports too (one worker: a rolling restart of the single program, no request fails under
/// a client loop). Then `restart` replaces the supervisor.
#[test]
fn ready_fd_and_notify_env_and_restart() {
    if skip_without_python() {
        return;
    }
    for mode in ["fd", "notify"] {
        let dir = TempDir::new("cmd-ready");
        let pf = dir.join("app.pid");
        let pfs = pf.display().to_string();
        let port = free_port();
        let mut reaper = Reaper::default();
        let env = format!("LFD_READY={mode}");
        let t0 = Instant::now();
        let o = start(
            &pf,
            port,
            &[
                "--ready",
                mode,
                "--ready-timeout",
                "30",
                "--env",
                &env,
                "--env",
                "DK_TEST=hello env",
            ],
        );
        let master = pid_in(&pf).unwrap_or(0);
        reaper.add(master);
        assert!(o.status.success(), "start --ready {mode}: {}", text(&o));
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "--ready {mode}: the launcher waited {:?} (the report was not seen)",
            t0.elapsed()
        );
        assert_eq!(get(port, "/env?k=DK_TEST").unwrap().trim(), "hello env");
        let before = children(master);
        let t1 = Instant::now();
        let load = Load::start(port, 3000, Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(200));
        let o = dk(&["reload", "--pid", &pfs]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            wait_until(Duration::from_secs(10), || {
                let now = children(master);
                now.len() == 1 && !before.contains(&now[0])
            }),
            "--ready {mode}: HUP did not replace {before:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
        let (ok, bad, _, errs) = load.finish();
        assert_eq!(bad, 0, "single worker HUP: {ok} ok, failures {errs:?}");
        assert!(ok > 0);
        assert!(t1.elapsed() < Duration::from_secs(10));

        let prog = program().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let o = dk(&[
            "restart",
            "--pid",
            &pfs,
            "--timeout",
            "10",
            "--listen",
            &listen,
            "--ready",
            mode,
            "--env",
            &env,
            "--",
            &prog[0],
            &prog[1],
        ]);
        let second = pid_in(&pf).unwrap_or(0);
        reaper.add(second);
        assert_eq!(o.status.code(), Some(0), "restart: {}", text(&o));
        assert!(second > 0 && second != master, "restart: pid {second}");
        assert!(!alive(master));
        assert!(hello_pid(port).is_some());
        let o = dk(&["stop", "--pid", &pfs, "--timeout", "10"]);
        assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    }
}

/// `--listen NAME=ADDR` twice (TCP and a unix socket): both reach the program in order, with
/// LISTEN_FDNAMES; the unix socket file is removed after a clean stop. `--chdir`/`--umask`
/// apply to the supervisor and the program.
#[test]
fn two_listeners_with_names_chdir_umask() {
    use std::io::{Read, Write};
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-unix");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let sock = dir.join("s.sock");
    let unix = format!("admin=unix:{}", sock.display());
    let port = free_port();
    let mut reaper = Reaper::default();
    let dirs = dir.0.display().to_string();
    let o = start(
        &pf,
        port,
        &["--listen", &unix, "--chdir", &dirs, "--umask", "027"],
    );
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "start: {}", text(&o));
    for p in std::iter::once(master).chain(children(master)) {
        let cwd = std::fs::read_link(format!("/proc/{p}/cwd")).unwrap();
        assert_eq!(cwd, dir.0, "--chdir: cwd of {p}");
        let st = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
        assert!(st.contains("Umask:\t0027"), "--umask 027: {p}");
    }
    assert_eq!(
        get(port, "/env?k=LISTEN_FDNAMES").unwrap().trim(),
        "unknown:admin"
    );
    let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("unix listener");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /env?k=LISTEN_FDS HTTP/1.0\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.0 200"), "{out:?}");
    assert!(out.ends_with("\r\n\r\n2\n"), "{out:?}");
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    assert!(!sock.exists(), "unix socket file left behind");
}

// ------------------------------------------------------------------------------------
// Attacks tried from outside (issue 13; RELIABILITY.md, "Attacks tried from outside").

#[test]
fn a_foreign_lock_on_a_stale_pid_file_signals_nobody() {
    // A daemon killed with -9 left its pid file; the pid in it now belongs to an unrelated
    // live process; another user took the file's lock. status/stop/reload/start must signal
    // nobody and say the file is locked by another process.
    if skip_without_python() || !need_root("a foreign lock held by nobody") {
        return;
    }
    for as_nobody in [true, false] {
        let dir = TempDir::new("cmd-foreign");
        let pf = dir.join("app.pid");
        let pfs = pf.display().to_string();
        let mut victim = Command::new("sleep").arg("60").spawn().expect("sleep");
        let vpid = victim.id() as i32;
        std::fs::write(&pf, format!("{vpid}\n")).unwrap();
        let mut locker = foreign_locker(&pf, as_nobody);
        let who = if as_nobody { "nobody" } else { "root" };
        let want = format!("pid file {pfs}: locked by another process, not the pid in the file");

        let status = dk(&["status", "--pid", &pfs]);
        let stop = dk(&["stop", "--pid", &pfs, "--timeout", "1"]);
        let reload = dk(&["reload", "--pid", &pfs]);
        let port = free_port();
        let start = start(&pf, port, &[]);
        std::thread::sleep(Duration::from_millis(300));
        let victim_alive = victim.try_wait().unwrap().is_none();
        let locker_alive = locker.try_wait().unwrap().is_none();
        let content = std::fs::read_to_string(&pf).unwrap_or_default();
        let _ = victim.kill();
        let _ = victim.wait();
        let _ = locker.kill();
        let _ = locker.wait();
        for w in children(locker.id() as i32) {
            kill(w, libc::SIGKILL);
        }
        println!(
            "lock held by {who}: status {:?}, stop {:?}, reload {:?}, start {:?}",
            status.status.code(),
            stop.status.code(),
            reload.status.code(),
            start.status.code()
        );
        assert_eq!(
            status.status.code(),
            Some(4),
            "status ({who}): {}",
            text(&status)
        );
        assert!(
            String::from_utf8_lossy(&status.stdout).contains(&want),
            "{}",
            text(&status)
        );
        assert_eq!(stop.status.code(), Some(1), "stop ({who}): {}", text(&stop));
        assert!(
            String::from_utf8_lossy(&stop.stderr).contains(&want),
            "{}",
            text(&stop)
        );
        assert_eq!(
            reload.status.code(),
            Some(1),
            "reload ({who}): {}",
            text(&reload)
        );
        assert!(
            String::from_utf8_lossy(&reload.stderr).contains(&want),
            "{}",
            text(&reload)
        );
        assert_eq!(
            start.status.code(),
            Some(1),
            "start ({who}): {}",
            text(&start)
        );
        assert!(
            String::from_utf8_lossy(&start.stderr).contains(&want),
            "{}",
            text(&start)
        );
        assert!(
            victim_alive,
            "the unrelated process {vpid} was signalled (lock: {who})"
        );
        assert!(locker_alive, "the lock holder was signalled (lock: {who})");
        assert_eq!(
            content.trim(),
            vpid.to_string(),
            "the pid file was rewritten"
        );
        assert!(get(port, "/").is_err(), "start served although it failed");
    }
}

#[test]
fn usr1_during_rolling_restarts_kills_no_worker() {
    // -w 4, ten rounds of HUP with USR1 every 2 ms while the new copies start: none may die
    // of USR1 (SIGUSR1's default action) before it is ready.
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-usr1-hup");
    let pf = dir.join("app.pid");
    let log = dir.join("log");
    let (pfs, logs) = (pf.display().to_string(), log.display().to_string());
    let port = free_port();
    let mut reaper = Reaper::default();
    let o = start(
        &pf,
        port,
        &["-w", "4", "--log", &logs, "--ready", "delay=100"],
    );
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "start: {}", text(&o));
    for round in 0..10 {
        let before = children(master);
        kill(master, libc::SIGHUP);
        let t0 = Instant::now();
        let mut rolled = false;
        while t0.elapsed() < Duration::from_secs(10) {
            kill(master, libc::SIGUSR1);
            std::thread::sleep(Duration::from_millis(2));
            let now = children(master);
            if now.len() == 4 && now.iter().all(|p| !before.contains(p)) {
                rolled = true;
                break;
            }
        }
        assert!(
            rolled,
            "round {round}: HUP did not roll: {before:?} -> {:?}",
            children(master)
        );
    }
    let text_log = std::fs::read_to_string(&log).unwrap_or_default();
    let deaths: Vec<&str> = text_log
        .lines()
        .filter(|l| l.contains("killed by signal 10") || l.contains("crashed at start"))
        .collect();
    println!(
        "10 rounds of HUP + USR1 storms with -w 4: {} lines of deaths",
        deaths.len()
    );
    assert!(deaths.is_empty(), "workers died of USR1: {deaths:?}");
    assert!(hello_pid(port).is_some());
    let o = dk(&["stop", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
}

#[test]
fn program_starts_with_default_signal_dispositions() {
    // Rust ignores SIGPIPE before main; execve keeps SIG_IGN. PROGRAM must not inherit it
    // (`yes | head -1` would print "Broken pipe"), nor a blocked mask: only the documented
    // ignored USR1.
    let dir = TempDir::new("cmd-sigpipe");
    let out = dir.join("status");
    let script = format!(
        "yes | head -1; grep -E '^Sig(Ign|Blk)' /proc/self/status > {}",
        out.display()
    );
    let o = dk(&[
        "run",
        "--ready",
        "delay=100",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let status = std::fs::read_to_string(&out).unwrap_or_default();
    println!(
        "PROGRAM's signal state: {status:?}; stderr {:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("Broken pipe"),
        "SIGPIPE leaked into PROGRAM: {}",
        text(&o)
    );
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    assert_eq!(
        mask("SigBlk:"),
        Some(0),
        "a blocked mask leaked: {status:?}"
    );
    // Signals 32 and 33 are glibc's own (libc refuses to change them): this test starts
    // daemonkit through posix_spawn, which leaves them ignored; they are not daemonkit's.
    let glibc_own = (1u64 << 31) | (1u64 << 32);
    assert_eq!(
        mask("SigIgn:").map(|m| m & !glibc_own),
        Some(1 << (libc::SIGUSR1 - 1)),
        "only USR1 may be ignored: {status:?}"
    );
}

#[test]
fn a_second_start_on_the_same_fixed_port_says_already_running() {
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-same-port");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let port = free_port();
    let mut reaper = Reaper::default();
    let o = start(&pf, port, &[]);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "start: {}", text(&o));
    let prog = program().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let o = dk(&[
        "run", "-D", "--pid", &pfs, "--listen", &listen, "--", &prog[0], &prog[1],
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    println!("second run on the same port: {:?} {err:?}", o.status.code());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains(&format!("daemon already running (PID: {master})")),
        "{}",
        text(&o)
    );
    assert!(!err.contains("Address already in use"), "{}", text(&o));
    assert_eq!(pid_in(&pf), Some(master), "the pid file changed");
    assert!(hello_pid(port).is_some(), "the first one stopped serving");
    let o = dk(&["stop", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
}

#[test]
fn a_program_that_binds_its_own_port_keeps_serving_across_hup() {
    // No --listen: the program binds 127.0.0.1:PORT itself. On HUP its new copy cannot bind
    // (the old one holds the port): the rolling restart must be abandoned, saying what the
    // program must do, with the old copy still serving and no crash loop.
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-own-port");
    let pf = dir.join("app.pid");
    let log = dir.join("log");
    let (pfs, logs) = (pf.display().to_string(), log.display().to_string());
    let port = free_port();
    let script = format!(
        r#"
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from command pid %d\n" % os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
"#
    );
    let py = python().unwrap().display().to_string();
    let mut reaper = Reaper::default();
    let o = dk(&[
        "run",
        "-D",
        "--pid",
        &pfs,
        "--log",
        &logs,
        "--ready",
        "delay=300",
        "--",
        &py,
        "-c",
        &script,
    ]);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "run: {}", text(&o));
    let first = hello_pid(port).expect("the program serves");
    kill(master, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(3000));
    let after = hello_pid(port);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let spawns = log_text.matches(" started (index ").count();
    println!("HUP with a program binding its own port: served by {first} then {after:?}, {spawns} spawns");
    assert_eq!(after, Some(first), "the old copy stopped serving");
    assert!(log_text.contains("rolling restart abandoned"), "{log_text}");
    assert!(
        log_text.contains("LISTEN_FDS"),
        "no hint what to do: {log_text}"
    );
    assert_eq!(
        spawns, 2,
        "the new copy was retried (crash loop): {log_text}"
    );
    let o = dk(&["stop", "--pid", &pfs]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
}

/// The listening sockets on 127.0.0.1:`port` that process `pid` holds (their inodes).
fn listeners_held(pid: i32, port: u16) -> Vec<u64> {
    holds(pid, &listening_inodes(port))
}

#[test]
fn reuseport_gives_each_copy_a_socket_of_its_own() {
    if skip_without_python() {
        return;
    }
    let dir = TempDir::new("cmd-reuseport");
    let pf = dir.join("app.pid");
    let pfs = pf.display().to_string();
    let port = free_port();
    let mut reaper = Reaper::default();
    let o = start(&pf, port, &["-w", "3", "--reuseport"]);
    let master = pid_in(&pf).unwrap_or(0);
    reaper.add(master);
    assert!(o.status.success(), "start: {}", text(&o));
    let all = listeners_held(master, port);
    assert_eq!(all.len(), 3, "daemonkit holds one socket per copy: {all:?}");
    let copies = |want: usize| {
        let mut seen = Vec::new();
        let ok = wait_until(Duration::from_secs(10), || {
            let c = children(master);
            seen = c.iter().flat_map(|&p| listeners_held(p, port)).collect();
            seen.sort();
            c.len() == want && seen == all
        });
        assert!(
            ok,
            "each copy holds one of {all:?}, all different: {seen:?}"
        );
    };
    copies(3);
    assert!(hello_pid(port).is_some());
    let before = children(master);
    kill(master, libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(15), || {
        let now = children(master);
        now.len() == 3 && now.iter().all(|p| !before.contains(p))
    }));
    copies(3); // the same sockets, in the new copies
    assert_eq!(listeners_held(master, port), all);
    let o = dk(&["stop", "--pid", &pfs, "--timeout", "10"]);
    assert_eq!(o.status.code(), Some(0), "stop: {}", text(&o));
    // Without a TCP address there is nothing to give a socket per copy.
    let o = dk(&[
        "run",
        "--listen",
        "unix:/nonexistent/x.sock",
        "--reuseport",
        "--",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--reuseport needs a TCP --listen"),
        "{}",
        text(&o)
    );
}
