//! Helpers shared by the integration tests: the test program's path, free ports, HTTP on
//! 127.0.0.1, /proc inspection, and a guard that kills every process a test started (by pid).
#![allow(dead_code)]

pub mod cli;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `target/<profile>/examples/dk-testprog`, built by `cargo test` with the examples.
pub fn testprog() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples/dk-testprog");
    assert!(
        p.exists(),
        "{} not built (cargo test builds examples)",
        p.display()
    );
    p
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "dk-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GET `path` on 127.0.0.1:`port`; the body (the serving pid for dk-testprog).
pub fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(3),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if !out.starts_with("HTTP/1.0 200") && !out.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("bad response: {out:?}")));
    }
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// The pid that served `GET /`.
pub fn served_pid(port: u16) -> Option<i32> {
    get(port, "/").ok().and_then(|b| b.trim().parse().ok())
}

/// Polls `f` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Parses /proc/PID/stat: (state, ppid).
pub fn stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((st, _)) if st != 'Z' && st != 'X')
}

/// Live children of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| matches!(stat(p), Some((st, pp)) if pp == pid && st != 'Z'))
        .collect();
    v.sort();
    v
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill with plain integers, on pids this test started.
    unsafe { libc::kill(pid, sig) };
}

/// Kills every pid it was given (and their children) when dropped: TERM, then KILL.
#[derive(Default)]
pub struct Reaper(pub Vec<i32>);
impl Reaper {
    pub fn add(&mut self, pid: i32) {
        if pid > 0 && !self.0.contains(&pid) {
            self.0.push(pid);
        }
    }
}
impl Drop for Reaper {
    fn drop(&mut self) {
        let mut all = Vec::new();
        for &p in &self.0 {
            all.push(p);
            all.extend(children(p));
        }
        for &p in &all {
            if alive(p) {
                kill(p, libc::SIGKILL);
            }
        }
    }
}

/// A bounded client loop in a thread: sequential GETs until stopped, at most `max`
/// requests or `limit` time. Returns (ok, failed, pids seen).
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    handle: std::thread::JoinHandle<(usize, usize, Vec<i32>, Vec<String>)>,
}
impl Load {
    pub fn start(port: u16, max: usize, limit: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let (s, d) = (stop.clone(), done.clone());
        let handle = std::thread::spawn(move || {
            let end = Instant::now() + limit;
            let (mut ok, mut bad, mut pids, mut errs) = (0, 0, Vec::new(), Vec::new());
            while !s.load(Ordering::SeqCst) && ok + bad < max && Instant::now() < end {
                d.fetch_add(1, Ordering::SeqCst);
                match get(port, "/") {
                    Ok(b) => {
                        ok += 1;
                        if let Ok(p) = b.trim().parse::<i32>() {
                            if !pids.contains(&p) {
                                pids.push(p);
                            }
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        if errs.len() < 5 {
                            errs.push(e.to_string());
                        }
                    }
                }
            }
            (ok, bad, pids, errs)
        });
        Load { stop, done, handle }
    }
    /// Requests made so far.
    pub fn count(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }
    pub fn finish(self) -> (usize, usize, Vec<i32>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// Reads the pid in a PID file.
pub fn pid_in(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Fails the test when CI=true and we are not root; otherwise says why it skips.
pub fn need_root(what: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} needs root and CI=true");
    }
    eprintln!("skipping {what}: not root");
    false
}

/// A process that holds `path`'s lock (`flock -x -n PATH sleep 60`, the real util-linux
/// command), as `nobody` when `as_nobody`. Returns it once the lock is held.
pub fn foreign_locker(path: &std::path::Path, as_nobody: bool) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("flock");
    cmd.arg("-x").arg("-n").arg(path).args(["sleep", "60"]);
    if as_nobody {
        cmd.uid(65534).gid(65534);
    }
    let child = cmd.spawn().expect("flock (util-linux)");
    let locked = wait_until(Duration::from_secs(5), || {
        matches!(
            daemonkit::pidfile::Pidfile::check(path),
            Ok(daemonkit::pidfile::State::Foreign(_))
        )
    });
    assert!(locked, "flock never took the lock of {}", path.display());
    child
}

/// A program from Debian's packages (tests/setup.sh installs it) in the usual directories;
/// `None` with a printed reason when missing (under CI=true, a panic: a missing
/// prerequisite is a failure).
pub fn tool(name: &str) -> Option<PathBuf> {
    for d in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = std::path::Path::new(d).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} is not installed (CI=true: tests/setup.sh installs it)");
    }
    eprintln!("skipping: {name} is not installed");
    None
}

/// The inodes of the sockets listening on 127.0.0.1:`port`.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    let local = format!("0100007F:{port:04X}");
    let mut v: Vec<u64> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1] == local && f[3] == "0A").then(|| f[9].parse().ok())?
        })
        .collect();
    v.sort();
    v
}

/// Which of the sockets `of` process `pid` holds open.
pub fn holds(pid: i32, of: &[u64]) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let l = std::fs::read_link(e.ok()?.path()).ok()?;
                let s = l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
                s.parse().ok()
            })
            .filter(|i| of.contains(i))
            .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.dedup();
    v
}
