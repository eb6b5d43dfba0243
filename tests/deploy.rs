//! The deployment recipes in `docs/deploy/`, run under the real supervisors from Debian's
//! packages (issue 14 items 4 and 5): s6 (`s6-svscan`, `notification-fd`, `s6-svwait -U`,
//! `s6-svc -h/-d`), runit (`runsv`, `sv hup/down/exit`) and supervisord (`supervisorctl
//! signal HUP`, `stop`, `shutdown`), each with `daemonkit run` (the recipe as shipped, its
//! port and paths substituted) and with the C example server; the systemd units through
//! `systemd-socket-activate` and a notify socket of our own (systemd is not PID 1 here);
//! the Dockerfile's ENTRYPOINT as PID 1 of a fresh PID namespace; the Kubernetes pod spec
//! checked against the Dockerfile. Every process is found by pid from the supervisor we
//! started and killed by pid at the end, also on a panic; only 127.0.0.1 is used.

mod common;
use common::cli::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The C example server (`make lib` and `make -C examples/c`), built once per run.
fn c_server() -> PathBuf {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        let make = |dir: &Path, what: &str| {
            Command::new("make")
                .args(["-s", what])
                .current_dir(dir)
                .status()
                .is_ok_and(|s| s.success())
        };
        make(&root(), "lib") && make(&root().join("examples/c"), "all")
    });
    assert!(
        ok,
        "cannot build the C example server (make lib; make -C examples/c)"
    );
    root().join("examples/c/build/dk-hello")
}

/// A recipe from docs/deploy with the documented placeholders made real: the daemonkit
/// binary, PROGRAM (tests/support/lfd_http.py), the C server and the port.
fn recipe(rel: &str, port: u16) -> String {
    let text = std::fs::read_to_string(root().join("docs/deploy").join(rel)).unwrap();
    let program = program().expect("python3").join(" ");
    text.replace("/usr/bin/daemonkit", bin())
        .replace("exec daemonkit run", &format!("exec {} run", bin()))
        .replace("command=daemonkit run", &format!("command={} run", bin()))
        .replace("/usr/local/bin/myapp", &program)
        .replace("/usr/local/bin/dk-hello", &c_server().display().to_string())
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("0.0.0.0:8080", &format!("127.0.0.1:{port}"))
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs a control command; (exit code, stdout + stderr).
fn ctl(cmd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd.display()));
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code(), text.trim().to_string())
}

/// The number after `marker` in `text` (`(pid 42)`, `pid 42,`).
fn number_after(text: &str, marker: &str) -> Option<i32> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Spawns a supervisor in the foreground, its output in `log`.
fn spawn(cmd: &Path, args: &[&str], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd.display()))
}

/// Kills, by pid, a supervisor we started and everything found under it (down to the
/// workers), then reaps it.
struct Tree {
    child: Option<Child>,
    pids: Vec<i32>,
}

impl Tree {
    fn new(child: Child) -> Tree {
        Tree {
            pids: vec![child.id() as i32],
            child: Some(child),
        }
    }
    /// Remembers `pid` and its children, its grandchildren and theirs.
    fn learn(&mut self, pid: i32) {
        let mut todo = vec![pid];
        while let Some(p) = todo.pop() {
            if p > 0 && !self.pids.contains(&p) {
                self.pids.push(p);
            }
            todo.extend(children(p).into_iter().filter(|c| !self.pids.contains(c)));
        }
    }
    fn learn_all(&mut self) {
        for p in self.pids.clone() {
            self.learn(p);
        }
    }
    fn alive(&self) -> Vec<i32> {
        self.pids.iter().copied().filter(|&p| alive(p)).collect()
    }
    /// Waits for the supervisor itself to exit; its exit code.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(st) = child.try_wait().ok()? {
                self.child = None;
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.learn_all();
        for &p in &self.pids {
            if alive(p) {
                kill(p, libc::SIGKILL);
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

/// Waits for `master` to have `n` workers none of which is in `not`; returns them.
fn workers(master: i32, n: usize, not: &[i32]) -> Vec<i32> {
    let mut w = Vec::new();
    let ok = wait_until(Duration::from_secs(20), || {
        w = children(master);
        w.len() == n && w.iter().all(|p| !not.contains(p)) && not.iter().all(|&p| !alive(p))
    });
    assert!(
        ok,
        "master {master}: workers {w:?} (wanted {n}, none of {not:?})"
    );
    w
}

/// HUP through the supervisor's own command under a bounded client loop: every worker
/// replaced, no request failed. Returns a line for the log.
fn hup_rolls(master: i32, port: u16, send_hup: impl FnOnce()) -> String {
    let before = workers(master, 2, &[]);
    let load = Load::start(port, 50_000, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    send_hup();
    let after = workers(master, 2, &before);
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let (ok, bad, _, errs) = load.finish();
    assert_eq!(bad, 0, "requests failed across HUP ({ok} ok): {errs:?}");
    assert!(ok > 0, "no request succeeded during the HUP");
    format!("HUP: workers {before:?} -> {after:?} in {took:.0?}, {ok} requests, 0 failed")
}

/// Waits until GET / answers 200 on `port`.
fn serving(port: u16, limit: Duration) -> bool {
    wait_until(limit, || get(port, "/").is_ok())
}

/// s6: `s6-svscan` over a scan directory holding one service (`run` and
/// `notification-fd`); `s6-svwait -U` must return only once the server answers, `s6-svc -h`
/// rolls the workers, `s6-svc -d` stops it gracefully (`s6-svwait -D`, `s6-svstat` down).
fn under_s6(what: &str, run: &str, port: u16) {
    let (Some(svscan), Some(svwait), Some(svc), Some(svstat), Some(scanctl)) = (
        tool("s6-svscan"),
        tool("s6-svwait"),
        tool("s6-svc"),
        tool("s6-svstat"),
        tool("s6-svscanctl"),
    ) else {
        return;
    };
    let dir = TempDir::new("s6");
    let scan = dir.join("scan");
    let service = scan.join("myapp");
    std::fs::create_dir_all(&service).unwrap();
    write_exec(&service.join("run"), run);
    std::fs::copy(
        root().join("docs/deploy/s6/myapp/notification-fd"),
        service.join("notification-fd"),
    )
    .unwrap();
    let svc_dir = service.display().to_string();
    let mut tree = Tree::new(spawn(
        &svscan,
        &[&scan.display().to_string()],
        &dir.join("svscan.log"),
    ));

    // s6-svwait subscribes to the service's event fifodir, which s6-supervise creates.
    assert!(
        wait_until(Duration::from_secs(10), || service.join("event").is_dir()
            && service.join("supervise/control").exists()),
        "{what}: s6-supervise never set up {}",
        service.display()
    );
    // Readiness: s6-svwait -U returns once the server wrote its newline; GET / at once.
    let t0 = Instant::now();
    let (code, out) = ctl(&svwait, &["-U", "-t", "20000", &svc_dir]);
    let waited = t0.elapsed();
    let answer = get(port, "/");
    tree.learn_all();
    assert_eq!(code, Some(0), "{what}: s6-svwait -U: {out}");
    assert!(
        answer.is_ok(),
        "{what}: s6-svwait -U returned after {waited:?} but GET / failed: {answer:?}"
    );
    let (_, st) = ctl(&svstat, &[&svc_dir]);
    assert!(
        st.starts_with("up") && st.contains("ready"),
        "{what}: s6-svstat: {st}"
    );
    let master = number_after(&st, "(pid ").expect("s6-svstat pid");
    tree.learn(master);
    println!("{what} under s6: s6-svwait -U returned after {waited:.0?}, GET / 200 at once; {st}");

    // s6-svc -h: HUP to the service, a rolling restart.
    let line = hup_rolls(master, port, || {
        let (c, o) = ctl(&svc, &["-h", &svc_dir]);
        assert_eq!(c, Some(0), "s6-svc -h: {o}");
    });
    tree.learn(master);
    println!("{what} under s6: s6-svc -h: {line}");

    // s6-svc -d: TERM (and s6's CONT), a graceful stop; the service stays down.
    let service_pids = service_pids(master);
    let t0 = Instant::now();
    let (c, o) = ctl(&svc, &["-d", &svc_dir]);
    assert_eq!(c, Some(0), "s6-svc -d: {o}");
    let (code, out) = ctl(&svwait, &["-D", "-t", "20000", &svc_dir]);
    assert_eq!(code, Some(0), "{what}: s6-svwait -D: {out}");
    let gone = wait_until(Duration::from_secs(10), || {
        service_pids.iter().all(|&p| !alive(p))
    });
    let (_, st) = ctl(&svstat, &[&svc_dir]);
    assert!(
        gone,
        "{what}: still running after s6-svc -d: {service_pids:?}"
    );
    assert!(st.starts_with("down"), "{what}: s6-svstat after -d: {st}");
    assert!(
        get(port, "/").is_err(),
        "{what}: port {port} still answers after s6-svc -d"
    );
    println!(
        "{what} under s6: s6-svc -d: gone in {:.0?}; {st}",
        t0.elapsed()
    );

    // Shut the scanner down (it takes its s6-supervise with it).
    let (c, o) = ctl(&scanctl, &["-t", &scan.display().to_string()]);
    assert_eq!(c, Some(0), "s6-svscanctl -t: {o}");
    assert!(
        tree.wait_exit(Duration::from_secs(10)).is_some(),
        "s6-svscan did not exit"
    );
    assert!(
        wait_until(Duration::from_secs(5), || tree.alive().is_empty()),
        "left behind: {:?}",
        tree.alive()
    );
}

/// The service's processes: its master and the master's workers.
fn service_pids(master: i32) -> Vec<i32> {
    let mut v = vec![master];
    v.extend(children(master));
    v
}

#[test]
fn s6_daemonkit_run_recipe() {
    if skip_without_python() {
        return;
    }
    let port = free_port();
    let run = recipe("s6/myapp/run", port);
    assert!(
        run.contains("--notify-fd 3"),
        "the s6 recipe names the notification fd"
    );
    under_s6("daemonkit run", &run, port);
}

#[test]
fn s6_c_server_with_notify_fd() {
    let port = free_port();
    let run = format!(
        "#!/bin/sh\nexec 2>&1\nexec {} --notify-fd 3 --listen 127.0.0.1:{port} -w 2 --graceful-timeout 10\n",
        c_server().display()
    );
    under_s6("C server", &run, port);
}

/// runit: `runsv` on a service directory; `sv hup` rolls, `sv down` stops gracefully, `sv
/// exit` ends runsv; nothing is left.
fn under_runit(what: &str, run: &str, port: u16) {
    let (Some(runsv), Some(sv)) = (tool("runsv"), tool("sv")) else {
        return;
    };
    let dir = TempDir::new("runit");
    let service = dir.join("myapp");
    std::fs::create_dir_all(&service).unwrap();
    write_exec(&service.join("run"), run);
    let svc_dir = service.display().to_string();
    let mut tree = Tree::new(spawn(&runsv, &[&svc_dir], &dir.join("runsv.log")));
    assert!(
        serving(port, Duration::from_secs(20)),
        "{what}: never served under runsv"
    );
    let (_, st) = ctl(&sv, &["status", &svc_dir]);
    assert!(st.starts_with("run: "), "{what}: sv status: {st}");
    let master = number_after(&st, "(pid ").expect("sv status pid");
    tree.learn(master);
    println!("{what} under runit: {st}");

    let line = hup_rolls(master, port, || {
        let (c, o) = ctl(&sv, &["hup", &svc_dir]);
        assert_eq!(c, Some(0), "sv hup: {o}");
    });
    tree.learn(master);
    println!("{what} under runit: sv hup: {line}");

    let service = service_pids(master);
    let t0 = Instant::now();
    let (c, o) = ctl(&sv, &["-v", "-w", "20", "down", &svc_dir]);
    assert_eq!(c, Some(0), "{what}: sv down: {o}");
    let gone = wait_until(Duration::from_secs(10), || {
        service.iter().all(|&p| !alive(p))
    });
    assert!(gone, "{what}: still running after sv down: {service:?}");
    let (_, st) = ctl(&sv, &["status", &svc_dir]);
    assert!(
        st.starts_with("down: "),
        "{what}: sv status after down: {st}"
    );
    println!(
        "{what} under runit: sv down: {o} ({:.0?}); {st}",
        t0.elapsed()
    );

    let (c, o) = ctl(&sv, &["exit", &svc_dir]);
    assert_eq!(c, Some(0), "sv exit: {o}");
    assert!(
        tree.wait_exit(Duration::from_secs(10)).is_some(),
        "runsv did not exit"
    );
    assert!(tree.alive().is_empty(), "left behind: {:?}", tree.alive());
}

#[test]
fn runit_daemonkit_run_recipe() {
    if skip_without_python() {
        return;
    }
    let port = free_port();
    under_runit("daemonkit run", &recipe("runit/myapp/run", port), port);
}

#[test]
fn runit_c_server() {
    let port = free_port();
    let run = format!(
        "#!/bin/sh\nexec 2>&1\nexec {} --listen 127.0.0.1:{port} -w 2 --graceful-timeout 10\n",
        c_server().display()
    );
    under_runit("C server", &run, port);
}

/// supervisord in the foreground with the shipped `[program:]` section; `supervisorctl
/// signal HUP` rolls, `stop` stops gracefully, `shutdown` ends supervisord.
fn under_supervisord(what: &str, program: &str, port: u16) {
    let (Some(supervisord), Some(supervisorctl)) = (tool("supervisord"), tool("supervisorctl"))
    else {
        return;
    };
    let dir = TempDir::new("supervisord");
    let d = dir.0.display().to_string();
    let conf = dir.join("supervisord.conf");
    std::fs::write(
        &conf,
        format!(
            "[unix_http_server]\nfile={d}/supervisor.sock\n\n\
             [supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\
             childlogdir={d}\n\n\
             [rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\n{program}\n"
        ),
    )
    .unwrap();
    let c = conf.display().to_string();
    let mut tree = Tree::new(spawn(&supervisord, &["-n", "-c", &c], &dir.join("out.log")));
    let mut st = String::new();
    let running = wait_until(Duration::from_secs(20), || {
        st = ctl(&supervisorctl, &["-c", &c, "status", "myapp"]).1;
        st.contains("RUNNING") && get(port, "/").is_ok()
    });
    assert!(running, "{what}: supervisorctl status: {st}");
    let master = number_after(&st, "pid ").expect("supervisorctl status pid");
    tree.learn(master);
    println!("{what} under supervisord: {st}");

    let line = hup_rolls(master, port, || {
        let (code, o) = ctl(&supervisorctl, &["-c", &c, "signal", "HUP", "myapp"]);
        assert_eq!(code, Some(0), "supervisorctl signal HUP: {o}");
    });
    tree.learn(master);
    println!("{what} under supervisord: signal HUP: {line}");

    let service = service_pids(master);
    let t0 = Instant::now();
    let (code, o) = ctl(&supervisorctl, &["-c", &c, "stop", "myapp"]);
    assert_eq!(code, Some(0), "{what}: supervisorctl stop: {o}");
    assert!(o.contains("stopped"), "{what}: supervisorctl stop: {o}");
    let gone = wait_until(Duration::from_secs(10), || {
        service.iter().all(|&p| !alive(p))
    });
    assert!(
        gone,
        "{what}: still running after supervisorctl stop: {service:?}"
    );
    let (_, st) = ctl(&supervisorctl, &["-c", &c, "status", "myapp"]);
    assert!(st.contains("STOPPED"), "{what}: status after stop: {st}");
    println!("{what} under supervisord: stop: {o} ({:.0?})", t0.elapsed());
    // Graceful: daemonkit/the server logged its stop, not a KILL from supervisord.
    let log = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("myapp"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        !log.contains("killed by signal 9") && !st.contains("FATAL"),
        "{what}: not a graceful stop: {log}"
    );

    let (code, o) = ctl(&supervisorctl, &["-c", &c, "shutdown"]);
    assert_eq!(code, Some(0), "supervisorctl shutdown: {o}");
    assert!(
        tree.wait_exit(Duration::from_secs(15)).is_some(),
        "supervisord did not exit"
    );
    assert!(tree.alive().is_empty(), "left behind: {:?}", tree.alive());
}

#[test]
fn supervisord_daemonkit_run_recipe() {
    if skip_without_python() {
        return;
    }
    let port = free_port();
    let program = recipe("supervisord/myapp.conf", port);
    let stopwait: u64 = program
        .lines()
        .find_map(|l| l.strip_prefix("stopwaitsecs="))
        .and_then(|v| v.trim().parse().ok())
        .expect("stopwaitsecs in the recipe");
    let graceful =
        number_after(&program, "--graceful-timeout ").expect("--graceful-timeout") as u64;
    assert!(
        stopwait > graceful,
        "the recipe's stopwaitsecs ({stopwait}) must exceed --graceful-timeout ({graceful})"
    );
    under_supervisord("daemonkit run", &program, port);
}

#[test]
fn supervisord_c_server() {
    let port = free_port();
    let program = format!(
        "[program:myapp]\ncommand={} --listen 127.0.0.1:{port} -w 2 --graceful-timeout 10\n\
         stopsignal=TERM\nstopwaitsecs=20\nstartsecs=1\nredirect_stderr=true\n",
        c_server().display()
    );
    under_supervisord("C server", &program, port);
}

/// The `ExecStart=` line of a unit, split like systemd does for these simple lines.
fn exec_start(unit: &str) -> Vec<String> {
    unit.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Starts `argv` with `NOTIFY_SOCKET` pointing at a datagram socket of ours (what systemd
/// gives a `Type=notify` service) and waits for `READY=1`; the time it took.
fn notify_ready(argv: &[String], extra: &[&str], dir: &TempDir) -> (Tree, Duration) {
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut all: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    all.extend_from_slice(argv);
    let out = std::fs::File::create(dir.join("unit.log")).unwrap();
    let child = Command::new(&all[0])
        .args(&all[1..])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let tree = Tree::new(child);
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    let mut seen = String::new();
    while t0.elapsed() < Duration::from_secs(20) {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('|');
            if seen.lines().any(|l| l.starts_with("READY=1")) || seen.contains("READY=1") {
                return (tree, t0.elapsed());
            }
        }
    }
    panic!(
        "no READY=1 within 20 s (got {seen:?}); output: {}",
        std::fs::read_to_string(dir.join("unit.log")).unwrap_or_default()
    );
}

#[test]
fn systemd_units_notify_and_socket_activation() {
    let Some(activate) = tool("systemd-socket-activate") else {
        return;
    };
    // dk-hello.socket + dk-hello.service: the socket the unit names, passed as LISTEN_FDS;
    // READY=1 once the server serves on it.
    let port = free_port();
    let socket_unit = recipe("systemd/dk-hello.socket", port);
    let listen = socket_unit
        .lines()
        .find_map(|l| l.strip_prefix("ListenStream="))
        .expect("ListenStream=")
        .to_string();
    let argv = exec_start(&recipe("systemd/dk-hello.service", port));
    let dir = TempDir::new("systemd");
    let act = activate.display().to_string();
    // systemd-socket-activate passes on only the variables named with -E, and (like a
    // .socket unit) starts the service at the first connection: that one must be served.
    let env = format!("NOTIFY_SOCKET={}", dir.join("notify.sock").display());
    let first = std::thread::spawn(move || {
        let t0 = Instant::now();
        loop {
            match get(port, "/") {
                Ok(b) => return Ok(b),
                Err(e) if t0.elapsed() > Duration::from_secs(20) => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    let (mut tree, took) = notify_ready(&argv, &[&act, "-l", &listen, "-E", &env], &dir);
    let pid = tree.pids[0];
    let first = first.join().unwrap();
    assert!(
        first
            .as_deref()
            .is_ok_and(|b| b.starts_with("hello from c pid")),
        "socket-activated dk-hello: the connection that started it: {first:?}"
    );
    tree.learn(pid);
    println!(
        "systemd dk-hello.socket/.service: READY=1 after {took:.0?} on the activated {listen}"
    );
    kill(pid, libc::SIGTERM);
    assert_eq!(
        tree.wait_exit(Duration::from_secs(15)),
        Some(0),
        "exit after TERM"
    );

    // myapp.service: daemonkit run, Type=notify.
    if skip_without_python() {
        return;
    }
    let port = free_port();
    let argv = exec_start(&recipe("systemd/myapp.service", port));
    let dir = TempDir::new("systemd-run");
    let (mut tree, took) = notify_ready(&argv, &[], &dir);
    assert!(
        get(port, "/").is_ok(),
        "daemonkit run: READY=1 but GET / failed"
    );
    let master = tree.pids[0];
    tree.learn(master);
    println!("systemd myapp.service (daemonkit run, Type=notify): READY=1 after {took:.0?}");
    kill(master, libc::SIGTERM);
    assert_eq!(
        tree.wait_exit(Duration::from_secs(30)),
        Some(0),
        "daemonkit run exit after TERM"
    );
    assert!(
        wait_until(Duration::from_secs(5), || tree.alive().is_empty()),
        "left behind: {:?}",
        tree.alive()
    );
}

/// The JSON array after `key` on one line (`ENTRYPOINT [...]`, `command: [...]`).
fn json_array(text: &str, key: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no {key} line"));
    let inner = &line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()];
    inner
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect()
}

#[test]
fn dockerfile_entrypoint_as_pid_1_and_the_pod_spec() {
    let docker = std::fs::read_to_string(root().join("docs/deploy/docker/Dockerfile")).unwrap();
    let pod = std::fs::read_to_string(root().join("docs/deploy/kubernetes/pod.yaml")).unwrap();
    let entry = json_array(&docker, "ENTRYPOINT");
    // The pod runs the image's command line, and gives the drain time to finish.
    assert_eq!(
        json_array(&pod, "command:"),
        entry,
        "pod.yaml command != Dockerfile ENTRYPOINT"
    );
    let grace: u64 = pod
        .lines()
        .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("terminationGracePeriodSeconds");
    let graceful: u64 = entry[entry
        .iter()
        .position(|a| a == "--graceful-timeout")
        .unwrap()
        + 1]
    .parse()
    .unwrap();
    let pre_stop = 5; // the preStop sleep
    assert!(
        pod.contains("\"/bin/sleep\", \"5\"") && grace > graceful + pre_stop,
        "terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} s + --graceful-timeout {graceful} s"
    );
    println!("pod.yaml: command == ENTRYPOINT; grace {grace} s > preStop {pre_stop} s + drain {graceful} s");

    // The ENTRYPOINT as PID 1 of a fresh PID namespace (what docker run gives it).
    if !need_root("PID namespaces (unshare --pid)") || skip_without_python() {
        return;
    }
    let port = free_port();
    let program = program().expect("python3");
    let mut argv: Vec<String> = Vec::new();
    for a in &entry {
        match a.as_str() {
            "/usr/bin/daemonkit" => argv.push(bin().to_string()),
            "/usr/local/bin/myapp" => argv.extend(program.iter().cloned()),
            "0.0.0.0:8080" => argv.push(format!("127.0.0.1:{port}")),
            other => argv.push(other.to_string()),
        }
    }
    let dir = TempDir::new("docker");
    let out = std::fs::File::create(dir.join("pid1.log")).unwrap();
    let child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("unshare (util-linux)");
    let mut tree = Tree::new(child);
    assert!(
        serving(port, Duration::from_secs(20)),
        "ENTRYPOINT never served"
    );
    tree.learn_all();
    let unshare = tree.pids[0];
    let init = children(unshare)
        .first()
        .copied()
        .expect("PID 1 under unshare");
    let nspid = std::fs::read_to_string(format!("/proc/{init}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:").map(str::to_string))
        .unwrap_or_default();
    assert!(
        nspid.split_whitespace().last() == Some("1"),
        "daemonkit is not PID 1: NSpid {nspid}"
    );
    // `docker stop`: TERM to PID 1, a graceful stop, exit 0.
    kill(init, libc::SIGTERM);
    let code = tree.wait_exit(Duration::from_secs(20));
    assert_eq!(
        code,
        Some(0),
        "ENTRYPOINT exit after TERM: {code:?}: {}",
        std::fs::read_to_string(dir.join("pid1.log")).unwrap_or_default()
    );
    println!(
        "Dockerfile ENTRYPOINT as PID 1 (NSpid {}): served, TERM -> exit 0",
        nspid.trim()
    );
}
