//! The `tokio` feature for real: `examples/rust/quickstart-tokio.rs` (a program written from
//! the crate docs) daemonized as root, dropping to nobody, through HUP, USR2 and TERM; the
//! refusals that keep a tokio runtime from crossing a fork; the async signal stream under
//! a burst. (`tests/conformance.rs` runs the conformance suite against `dk-hello-tokio`.)
//!
//! Under `CI=true` a missing prerequisite (root, python3, the nobody user) fails; otherwise
//! the test is skipped with the reason printed. Every process a test starts is killed by
//! pid (identity-checked) when the test ends, also on a panic; only 127.0.0.1 is used.

#[cfg(feature = "tokio")]
mod with_tokio {
    use daemonkit::supervisor::Supervisor;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn ci() -> bool {
        std::env::var("CI").as_deref() == Ok("true")
    }

    /// Skips (with a reason) outside CI, fails under CI.
    fn missing(what: &str) {
        if ci() {
            panic!("{what} (CI=true: a missing prerequisite is a failure)");
        }
        eprintln!("skipping: {what}");
    }

    /// The target dir this test binary runs from (`<target>/<profile>/deps/tokio-…`) and the
    /// profile's name.
    fn target_and_profile() -> (PathBuf, String) {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let profile = profile_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        (profile_dir.parent().unwrap().to_path_buf(), profile)
    }

    /// Builds both tokio examples into this test's target dir (once per run) and returns the
    /// examples directory. A failed build fails the test: the examples are part of the crate.
    fn examples() -> PathBuf {
        static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        DONE.get_or_init(|| {
            let (target, profile) = target_and_profile();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--quiet", "--features", "tokio"])
                .args([
                    "--example",
                    "quickstart-tokio",
                    "--example",
                    "dk-hello-tokio",
                ])
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(root());
            if profile == "release" {
                cmd.arg("--release");
            }
            let mut child = cmd.spawn().map_err(|e| format!("cargo: {e}"))?;
            let t0 = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                    break s;
                }
                if t0.elapsed() > Duration::from_secs(900) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("cargo build of the tokio examples took over 15 minutes".into());
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if !status.success() {
                return Err(format!(
                    "cargo build of the tokio examples failed: {status}"
                ));
            }
            Ok(target.join(profile).join("examples"))
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
    }

    // ---------------------------------------------------------------------------------------
    // /proc and processes

    fn proc_status(pid: i32, field: &str) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| v.trim().to_string())
    }

    /// (ppid, start time, state) from `/proc/PID/stat`.
    fn stat(pid: i32) -> Option<(i32, u64, char)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &text[text.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some((
            f[1].parse().ok()?,
            f[19].parse().ok()?,
            f[0].chars().next()?,
        ))
    }

    fn alive(pid: i32) -> bool {
        stat(pid).is_some_and(|(_, _, st)| st != 'Z' && st != 'X')
    }

    fn children(pid: i32) -> Vec<i32> {
        let mut v: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|&p| stat(p).is_some_and(|(pp, _, st)| pp == pid && st != 'Z'))
            .collect();
        v.sort();
        v
    }

    fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let t0 = Instant::now();
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if t0.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(pid: i32, sig: i32) {
        // SAFETY: kill takes plain integers; `pid` is a process this test started.
        unsafe { libc::kill(pid, sig) };
    }

    /// Every process the test started (by pid and start time); whatever still lives when the
    /// test ends (or panics) is killed, but never a pid recycled since.
    #[derive(Default)]
    struct Procs(Mutex<Vec<(i32, u64)>>);

    impl Procs {
        fn learn(&self, pid: i32) {
            if let Some((_, start, _)) = stat(pid) {
                let mut v = self.0.lock().unwrap();
                if !v.iter().any(|&(p, _)| p == pid) {
                    v.push((pid, start));
                }
            }
        }
    }

    impl Drop for Procs {
        fn drop(&mut self) {
            let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for &(pid, start) in v.iter() {
                if stat(pid).is_some_and(|(_, s, st)| s == start && st != 'Z') {
                    signal(pid, libc::SIGKILL);
                }
            }
        }
    }

    /// A temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("dk-tokio-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// GET / on 127.0.0.1:port: the pid in `hello from quickstart-tokio pid N`.
    fn hello(port: u16) -> Result<i32, String> {
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        match body.strip_prefix("hello from quickstart-tokio pid ") {
            Some(p) if out.starts_with("HTTP/1.1 200") => {
                p.trim().parse().map_err(|_| format!("bad answer {out:?}"))
            }
            _ => Err(format!("bad answer {out:?}")),
        }
    }

    fn read_pid(path: &Path) -> Option<i32> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Fresh-connection GETs from two threads until stopped (at most 20 s or 5000 requests).
    struct ClientLoop {
        stop: Arc<AtomicBool>,
        ok: Arc<AtomicUsize>,
        errors: Arc<Mutex<Vec<String>>>,
        threads: Vec<std::thread::JoinHandle<()>>,
    }

    impl ClientLoop {
        fn start(port: u16) -> ClientLoop {
            let stop = Arc::new(AtomicBool::new(false));
            let ok = Arc::new(AtomicUsize::new(0));
            let errors = Arc::new(Mutex::new(Vec::new()));
            let n = Arc::new(AtomicUsize::new(0));
            let threads = (0..2)
                .map(|_| {
                    let (stop, ok, errors, n) =
                        (stop.clone(), ok.clone(), errors.clone(), n.clone());
                    std::thread::spawn(move || {
                        let t0 = Instant::now();
                        while !stop.load(Ordering::SeqCst)
                            && t0.elapsed() < Duration::from_secs(20)
                            && n.fetch_add(1, Ordering::SeqCst) < 5000
                        {
                            match hello(port) {
                                Ok(_) => {
                                    ok.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(e) => errors.lock().unwrap().push(e),
                            }
                            std::thread::sleep(Duration::from_millis(4));
                        }
                    })
                })
                .collect();
            ClientLoop {
                stop,
                ok,
                errors,
                threads,
            }
        }

        /// Stops the loop; (requests answered, failures).
        fn finish(mut self) -> (usize, Vec<String>) {
            self.stop.store(true, Ordering::SeqCst);
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
            (
                self.ok.load(Ordering::SeqCst),
                std::mem::take(&mut *self.errors.lock().unwrap()),
            )
        }
    }

    impl Drop for ClientLoop {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn workers_of(procs: &Procs, master: i32, n: usize, what: &str) -> Vec<i32> {
        let ws = wait_until(Duration::from_secs(5), || {
            let k = children(master);
            (k.len() == n).then_some(k)
        })
        .unwrap_or_else(|| {
            panic!(
                "{what}: expected {n} workers under {master}: {:?}",
                children(master)
            )
        });
        for &w in &ws {
            procs.learn(w);
        }
        ws
    }

    // ---------------------------------------------------------------------------------------
    // The quickstart, for real

    #[test]
    fn quickstart_tokio_daemon_hup_usr2_term() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return missing("not root: the quickstart test drops privileges to nobody");
        }
        let Ok((nobody_uid, nobody_gid)) = daemonkit::privileges::user_lookup("nobody") else {
            return missing("no user 'nobody'");
        };
        let group = ["nogroup", "nobody"]
            .into_iter()
            .find(|g| daemonkit::privileges::group_lookup(g).is_ok());
        let Some(group) = group else {
            return missing("no group 'nogroup' or 'nobody'");
        };
        let bin = examples().join("quickstart-tokio");
        let procs = Procs::default();
        let dir = TempDir::new("quickstart");
        // The daemon runs as nobody when it removes its PID file: the directory is nobody's.
        std::os::unix::fs::chown(&dir.0, Some(nobody_uid), Some(nobody_gid)).unwrap();
        let pidfile = dir.0.join("qs.pid");
        let port = free_port();

        // Start: the launcher exits 0 only once the master (and so every worker) serves.
        let t0 = Instant::now();
        let mut launcher = Command::new(&bin)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--pid"])
            .arg(&pidfile)
            .args(["-w", "2", "--user", "nobody", "--group", group])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        procs.learn(launcher.id() as i32);
        let status = wait_until(Duration::from_secs(20), || launcher.try_wait().unwrap())
            .expect("launcher did not exit within 20 s");
        let first = hello(port); // at once, before anything else
        let mut err = String::new();
        let _ = launcher.stderr.take().unwrap().read_to_string(&mut err);
        assert!(status.success(), "launcher: {status}, stderr {err:?}");
        let master = read_pid(&pidfile).expect("pid file holds a pid after the launcher's exit 0");
        procs.learn(master);
        let served_by =
            first.unwrap_or_else(|e| panic!("GET / right after the launcher exited: {e}"));
        println!(
            "launcher exit 0 after {:?}; master {master}; GET / served by {served_by}",
            t0.elapsed()
        );
        let ws = workers_of(&procs, master, 2, "start");
        assert!(
            ws.contains(&served_by),
            "GET / served by {served_by}, not a worker of {ws:?}"
        );
        for &p in std::iter::once(&master).chain(&ws) {
            let uid = proc_status(p, "Uid:").unwrap();
            assert!(
                uid.split_whitespace().all(|u| u == nobody_uid.to_string()),
                "pid {p} Uid: {uid} (want {nobody_uid})"
            );
            let gid = proc_status(p, "Gid:").unwrap();
            assert!(
                gid.split_whitespace().all(|g| g == nobody_gid.to_string()),
                "pid {p} Gid: {gid}"
            );
        }

        // HUP: every worker replaced, one at a time, no failed request.
        let load = ClientLoop::start(port);
        std::thread::sleep(Duration::from_millis(300));
        signal(master, libc::SIGHUP);
        let rolled = wait_until(Duration::from_secs(15), || {
            let k = children(master);
            for &w in &k {
                procs.learn(w);
            }
            (k.len() == 2 && !k.iter().any(|w| ws.contains(w)) && !ws.iter().any(|&w| alive(w)))
                .then_some(k)
        });
        std::thread::sleep(Duration::from_millis(300));
        let (ok, errors) = load.finish();
        let new_ws = rolled
            .unwrap_or_else(|| panic!("HUP: workers {ws:?} not replaced: {:?}", children(master)));
        println!(
            "HUP: workers {ws:?} -> {new_ws:?}; {ok} requests, {} failed",
            errors.len()
        );
        assert!(
            errors.is_empty(),
            "requests failed across HUP: {:?}",
            &errors[..errors.len().min(3)]
        );
        assert!(ok > 0, "no request answered across HUP");
        assert_eq!(read_pid(&pidfile), Some(master), "HUP changed the pid file");

        // USR2: a new master on the same socket, the PID file updated, the old one gone.
        let load = ClientLoop::start(port);
        std::thread::sleep(Duration::from_millis(300));
        signal(master, libc::SIGUSR2);
        let new_master = wait_until(Duration::from_secs(15), || {
            for k in children(master) {
                procs.learn(k);
            }
            match read_pid(&pidfile) {
                Some(p) if p != master => {
                    procs.learn(p);
                    for k in children(p) {
                        procs.learn(k);
                    }
                    (!alive(master)).then_some(p)
                }
                _ => None,
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let (ok, errors) = load.finish();
        let new_master = new_master.unwrap_or_else(|| {
            panic!(
                "USR2: pid file {:?}, old master alive {}",
                read_pid(&pidfile),
                alive(master)
            )
        });
        let new_ws = workers_of(&procs, new_master, 2, "after USR2");
        let by = hello(port).expect("GET / after USR2");
        assert!(
            new_ws.contains(&by),
            "GET / after USR2 served by {by}, not by {new_ws:?}"
        );
        println!(
            "USR2: master {master} -> {new_master} (workers {new_ws:?}); {ok} requests, {} failed",
            errors.len()
        );
        assert!(
            errors.is_empty(),
            "requests failed across USR2: {:?}",
            &errors[..errors.len().min(3)]
        );
        assert!(ok > 0, "no request answered across USR2");

        // TERM: everything stops, the PID file is removed, the port closes.
        signal(new_master, libc::SIGTERM);
        let everyone: Vec<i32> = std::iter::once(new_master)
            .chain(new_ws.iter().copied())
            .collect();
        let gone = wait_until(Duration::from_secs(15), || {
            (!everyone.iter().any(|&p| alive(p))).then_some(())
        });
        assert!(
            gone.is_some(),
            "still alive 15 s after TERM: {:?}",
            everyone.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        assert!(
            wait_until(Duration::from_secs(2), || (!pidfile.exists()).then_some(())).is_some(),
            "the PID file was not removed"
        );
        assert!(
            hello(port).is_err(),
            "something still serves on {port} after TERM"
        );
        println!("TERM: {everyone:?} gone, PID file removed");
    }

    // ---------------------------------------------------------------------------------------
    // The wrong order is refused

    #[test]
    fn run_tokio_inside_a_runtime_is_refused() {
        let listener = daemonkit::listen::tcp("127.0.0.1:0").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(async {
                Supervisor::new(1)
                    .listener(&listener)
                    .run_tokio(|_| async { 0 })
            })
            .expect_err("run_tokio inside a runtime must be refused");
        println!("inside a runtime: {err}");
        assert_eq!(err.errno(), Some(libc::EDEADLK), "{err}");
        assert_eq!(err.kind(), std::io::ErrorKind::Deadlock);
        assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
        assert!(err.to_string().contains("after the fork"), "{err}");
        // The plain `run` too, and from spawn_blocking.
        let err = rt
            .block_on(async {
                tokio::task::spawn_blocking(|| Supervisor::new(1).run(|_| 0).map(|_| ()))
                    .await
                    .unwrap()
            })
            .expect_err("run from spawn_blocking must be refused");
        assert_eq!(err.errno(), Some(libc::EDEADLK), "{err}");
    }

    #[test]
    fn a_multi_thread_runtime_alive_refuses_forks() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Make sure the worker threads run (they are started lazily by some versions).
        rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
        // Outside block_on: no runtime context, but its threads live in this process.
        // Were it not refused, the worker stops its master at once (and the test fails).
        let err = Supervisor::new(1)
            .run_tokio(|_| async {
                // SAFETY: signalling our own master (this test process).
                unsafe { libc::kill(libc::getppid(), libc::SIGTERM) };
                0
            })
            .expect_err("run_tokio with tokio worker threads alive must be refused");
        println!("threads alive: {err}");
        assert_eq!(err.errno(), Some(libc::EDEADLK), "{err}");
        assert!(err.to_string().contains("worker threads"), "{err}");
        // The same check guards daemonize (reached only when the supervisor's refusal above
        // held, so this never forks the test process).
        let err = daemonkit::daemon::Daemonize::new()
            .keep_stdio()
            .no_close_fds()
            .no_chdir()
            .start()
            .expect_err("daemonize with tokio worker threads alive must be refused");
        assert_eq!(err.errno(), Some(libc::EDEADLK), "{err}");
        assert!(err.to_string().starts_with("daemonize: "), "{err}");
        drop(rt);
    }

    // ---------------------------------------------------------------------------------------
    // AsyncSignals: nothing lost, nothing late

    #[test]
    fn async_signals_lose_nothing() {
        use daemonkit::tokio::AsyncSignals;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sigs = AsyncSignals::new(&[libc::SIGUSR1, libc::SIGUSR2]).unwrap();
            let within = |d| tokio::time::timeout(Duration::from_secs(d), sigs.recv());
            // One at a time, alternating: each arrives promptly.
            for i in 0..300 {
                let sig = if i % 2 == 0 {
                    libc::SIGUSR1
                } else {
                    libc::SIGUSR2
                };
                // SAFETY: raising a signal registered above.
                unsafe { libc::raise(sig) };
                assert_eq!(within(2).await.expect("late").unwrap(), sig, "round {i}");
            }
            // Both pending at once (the pipe drained by the first recv): both come.
            // SAFETY: as above.
            unsafe {
                libc::raise(libc::SIGUSR1);
                libc::raise(libc::SIGUSR2);
            }
            let mut got = vec![
                within(2).await.expect("late").unwrap(),
                within(2).await.expect("late").unwrap(),
            ];
            got.sort();
            assert_eq!(got, vec![libc::SIGUSR1, libc::SIGUSR2]);
            // From another thread while this one waits in the reactor.
            let me = std::process::id() as i32;
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                signal(me, libc::SIGUSR2);
            });
            assert_eq!(within(5).await.expect("late").unwrap(), libc::SIGUSR2);
            t.join().unwrap();
            assert_eq!(sigs.try_recv(), None);
        });
    }
}
