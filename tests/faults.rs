//! Fault injection: the failures a production daemon meets, each of which must end in a
//! clear error or a safe state — nothing hangs, no process is orphaned, no PID file lies
//! (when `check` says a daemon runs, that pid is alive and answers; otherwise nothing of
//! ours is left).
//!
//! Every process a test starts carries `DK_FAULT_TAG=<unique>` in its environment (inherited
//! by workers, daemons and upgraded generations); `Tag` finds them by that tag through
//! `/proc/PID/environ` to assert nothing is left, and kills what is left (by those pids) when
//! the test ends, pass or fail. The tests need root (tmpfs mounts, chroot, setuid to nobody):
//! they skip with a reason outside CI and fail under `CI=true` without it.

mod common;

use common::*;
use daemonkit::pidfile::{Pidfile, State as PidState};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

/// The RLIMIT_NPROC tests count nobody's processes: one at a time.
static NPROC: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A unique tag for the processes of one test; kills whatever still carries it on drop.
struct Tag(String);

impl Tag {
    fn new(name: &str) -> Tag {
        static N: AtomicUsize = AtomicUsize::new(0);
        Tag(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ))
    }

    /// Live (non-zombie) processes whose environment carries this tag.
    fn processes(&self) -> Vec<i32> {
        let needle = format!("DK_FAULT_TAG={}\0", self.0).into_bytes();
        let mut v: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&p| alive(p))
            .filter(|&p| {
                std::fs::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_slice()))
            })
            .collect();
        v.sort();
        v
    }

    /// Asserts that within `limit` no tagged process is left.
    fn assert_none_left(&self, limit: Duration, what: &str) {
        let mut left = Vec::new();
        let ok = wait_until(limit, || {
            left = self.processes();
            left.is_empty()
        });
        assert!(ok, "{what}: processes left behind: {left:?}");
    }

    /// The test program with this tag, stdin closed, output captured.
    fn testprog(&self, mode: &str) -> Command {
        let mut c = Command::new(testprog());
        c.arg(mode)
            .env("DK_FAULT_TAG", &self.0)
            .env("DK_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        for p in self.processes() {
            kill(p, libc::SIGKILL);
        }
    }
}

/// Waits for `child` at most `limit` (killing it and failing the test when it does not
/// end); returns its status and its stderr.
fn finish(mut child: Child, limit: Duration, what: &str) -> (ExitStatus, String, Duration) {
    let t0 = Instant::now();
    let err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let elapsed = t0.elapsed();
            // The daemon may keep stderr open only if it failed to redirect it; do not block.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let text = if reader.is_finished() {
                reader.join().unwrap()
            } else {
                String::from("<stderr still open>")
            };
            return (st, text, elapsed);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (hang)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The listening port the test program printed on stderr (`listening on 127.0.0.1:PORT`),
/// read line by line from a running child; the rest of stderr is drained in a thread.
fn port_of(child: &mut Child) -> u16 {
    use std::io::BufRead;
    let err = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(err).lines();
    let line = lines.next().expect("no output").expect("unreadable output");
    std::thread::spawn(move || for _ in lines {});
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// What the PID file says must be true: `Running(p)` only while p is alive.
fn assert_pidfile_truthful(path: &Path, what: &str) -> Option<i32> {
    match Pidfile::check(path) {
        Ok(PidState::Running(p)) => {
            assert!(
                p > 0 && alive(p),
                "{what}: pid file says {p} runs, it does not"
            );
            Some(p)
        }
        Ok(_) => None,
        Err(e) => panic!("{what}: check {}: {e}", path.display()),
    }
}

/// A small tmpfs, unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, opts: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "dk-faults"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    /// Fills the filesystem: data until ENOSPC, then empty files until no inode is left.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("fill")).unwrap();
        let chunk = [b'x'; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "filling: {e}");
                    break;
                }
            }
        }
        drop(f);
        // Check: not one more byte fits.
        let mut g = std::fs::OpenOptions::new()
            .append(true)
            .open(self.0.join("fill"))
            .unwrap();
        assert!(g.write_all(b"y").is_err(), "tmpfs not full");
    }

    fn exhaust_inodes(&self) {
        for i in 0.. {
            if std::fs::File::create(self.0.join(format!("inode{i}"))).is_err() {
                break;
            }
            assert!(i < 100_000, "no inode limit");
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Number of processes (threads count for RLIMIT_NPROC) of `uid`.
fn tasks_of(uid: u32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let real = s
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
        if real == Some(uid) {
            n += s
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|l| l.trim().parse::<usize>().ok())
                .unwrap_or(1);
        }
    }
    n
}

/// `prlimit --nproc=N setpriv (nobody) PROGRAM`: the program runs as nobody with at most
/// N processes of nobody's.
fn as_nobody_with_nproc(c: Command, nproc: usize) -> Command {
    let mut w = Command::new("prlimit");
    // The hard limit stays as it is, so that the test can lift the soft one later as nobody
    // (root may lack CAP_SYS_RESOURCE in a sandbox: it does on this project's machines).
    w.arg(format!("--nproc={nproc}:"))
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ])
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    w.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    w
}

/// The hard RLIMIT_NPROC of this process.
fn nproc_hard() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut r) }, 0);
    r.rlim_max
}

/// A directory nobody may write (for the PID file of a program running as nobody).
fn open_dir(t: &TempDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = t.join("run");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn fork_failure_at_daemonize_is_reported() {
    if !need_root("RLIMIT_NPROC fault (setuid nobody)") {
        return;
    }
    let _one = NPROC.lock().unwrap_or_else(|e| e.into_inner());
    let tag = Tag::new("nproc-daemonize");
    let t = TempDir::new("faults");
    let pid = open_dir(&t).join("app.pid");
    let mut c = tag.testprog("single");
    c.env("DK_DAEMONIZE", "1").env("DK_PID", &pid);
    // Exactly one process of nobody's allowed: the program itself; its fork must fail.
    let limit = tasks_of(NOBODY) + 1;
    let child = as_nobody_with_nproc(c, limit).spawn().unwrap();
    let (st, err, _) = finish(
        child,
        Duration::from_secs(20),
        "daemonize under RLIMIT_NPROC",
    );
    eprintln!("stderr: {err}");
    assert!(!st.success(), "launcher exit status {st:?}");
    assert!(
        err.contains("daemonize: fork: Resource temporarily unavailable"),
        "error does not say fork failed: {err:?}"
    );
    assert_pidfile_truthful(&pid, "after a failed fork");
    assert!(
        !matches!(Pidfile::check(&pid), Ok(PidState::Running(_))),
        "nobody should hold the pid file"
    );
    tag.assert_none_left(Duration::from_secs(2), "failed daemonize");
}

#[test]
fn fork_failure_for_workers_keeps_master_serving_and_stoppable() {
    if !need_root("RLIMIT_NPROC fault (setuid nobody)") {
        return;
    }
    let _one = NPROC.lock().unwrap_or_else(|e| e.into_inner());
    let tag = Tag::new("nproc-workers");
    let t = TempDir::new("faults");
    let pid = open_dir(&t).join("app.pid");
    let events = t.join("run/events");
    let mut c = tag.testprog("supervise");
    c.env("DK_WORKERS", "3")
        .env("DK_PID", &pid)
        .env("DK_EVENTS", &events)
        .env("DK_GRACEFUL_MS", "2000");
    // The master and one worker fit; the other two forks fail (EAGAIN).
    let limit = tasks_of(NOBODY) + 2;
    let mut child = as_nobody_with_nproc(c, limit).spawn().unwrap();
    let mut reaper = Reaper::default();
    reaper.add(child.id() as i32);
    let port = port_of(&mut child);
    assert!(
        wait_until(Duration::from_secs(10), || served_pid(port).is_some()),
        "the one worker that could fork does not answer"
    );
    let master = wait_pid_in(&pid);
    // The master stays responsive while forks fail: it keeps serving and retries with a
    // delay instead of spinning.
    std::thread::sleep(Duration::from_millis(1500));
    let worker_count = children(master).len();
    assert_eq!(worker_count, 1, "workers while forks fail");
    for _ in 0..20 {
        assert!(served_pid(port).is_some(), "not serving while forks fail");
    }
    let ticks0 = cpu_ticks(master);
    std::thread::sleep(Duration::from_secs(1));
    let busy = cpu_ticks(master) - ticks0;
    assert!(
        busy < 50,
        "master spins while forks fail: {busy} ticks in 1 s"
    );
    // The limit lifted, the missing workers come back.
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "prlimit",
        ])
        .arg(format!("--pid={master}"))
        .arg(match nproc_hard() {
            libc::RLIM_INFINITY => "--nproc=unlimited".to_string(),
            n => format!("--nproc={n}"),
        })
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        wait_until(Duration::from_secs(15), || children(master).len() == 3),
        "workers not restored after the limit was lifted: {:?}",
        children(master)
    );
    kill(master, libc::SIGTERM);
    let (st, err, _) = finish(child, Duration::from_secs(15), "TERM after fork failures");
    let log = std::fs::read_to_string(&events).unwrap_or_default();
    assert!(st.success(), "exit status {st:?}: {err}\nevents:\n{log}");
    assert!(!pid.exists(), "PID file left after a clean stop");
    tag.assert_none_left(Duration::from_secs(2), "stopped master");
}

fn wait_pid_in(path: &Path) -> i32 {
    let mut p = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            p = pid_in(path);
            p.is_some()
        }),
        "no pid in {}",
        path.display()
    );
    p.unwrap()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn pid_file_on_a_full_filesystem_fails_clearly() {
    if !need_root("full tmpfs fault (mount)") {
        return;
    }
    let t = TempDir::new("faults");
    // No data block left: the PID file can be created and locked, not written.
    {
        let tag = Tag::new("pidfile-enospc");
        let fs = Tmpfs::mount(&t.join("full"), "size=8k,mode=0755");
        fs.fill();
        let pid = fs.0.join("app.pid");
        let mut c = tag.testprog("single");
        c.env("DK_DAEMONIZE", "1").env("DK_PID", &pid);
        let (st, err, _) = finish(c.spawn().unwrap(), Duration::from_secs(20), "full fs");
        eprintln!("stderr (no space): {err}");
        assert!(!st.success(), "launcher exit status {st:?}");
        assert!(
            err.contains(pid.to_str().unwrap()) && err.contains("No space left on device"),
            "the error does not name the file and the cause: {err:?}"
        );
        assert!(
            !matches!(Pidfile::check(&pid), Ok(PidState::Running(_))),
            "nobody should hold the pid file"
        );
        tag.assert_none_left(Duration::from_secs(2), "failed start (no space)");
    }
    // No inode left: the PID file cannot even be created.
    {
        let tag = Tag::new("pidfile-noinode");
        let fs = Tmpfs::mount(&t.join("noinode"), "size=64k,nr_inodes=8,mode=0755");
        fs.exhaust_inodes();
        let pid = fs.0.join("app.pid");
        let mut c = tag.testprog("single");
        c.env("DK_DAEMONIZE", "1").env("DK_PID", &pid);
        let (st, err, _) = finish(c.spawn().unwrap(), Duration::from_secs(20), "no inode");
        eprintln!("stderr (no inode): {err}");
        assert!(!st.success(), "exit status {st:?}");
        assert!(
            err.contains(pid.to_str().unwrap()) && err.contains("No space left on device"),
            "the error does not name the file and the cause: {err:?}"
        );
        assert!(!pid.exists());
        tag.assert_none_left(Duration::from_secs(2), "failed start (no inode)");
    }
}

#[test]
fn log_disk_full_does_not_stop_serving() {
    if !need_root("full tmpfs fault (mount)") {
        return;
    }
    let t = TempDir::new("faults");
    let tag = Tag::new("log-enospc");
    let fs = Tmpfs::mount(&t.join("logs"), "size=8k,nr_inodes=16,mode=0755");
    let log = fs.0.join("app.log");
    std::fs::write(&log, b"").unwrap();
    fs.fill();
    let pid = t.join("app.pid");
    let mut c = tag.testprog("supervise");
    c.env("DK_DAEMONIZE", "1")
        .env("DK_PID", &pid)
        .env("DK_LOG", &log)
        .env("DK_WORKERS", "2")
        .env("DK_GRACEFUL_MS", "2000");
    let mut child = c.spawn().unwrap();
    let port = port_of(&mut child);
    let (st, err, _) = finish(child, Duration::from_secs(20), "start with a full log disk");
    assert!(st.success(), "launcher exit status {st:?}: {err}");
    let master = wait_pid_in(&pid);
    let mut reaper = Reaper::default();
    reaper.add(master);
    // Every request writes a log line that cannot be stored; serving goes on.
    for i in 0..200 {
        assert!(
            served_pid(port).is_some(),
            "request {i} failed with the log disk full"
        );
    }
    // USR1 (logrotate) reopens the log on the full disk: still serving.
    kill(master, libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..50 {
        assert!(served_pid(port).is_some(), "request {i} failed after USR1");
    }
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "the full disk took data?"
    );
    assert_eq!(assert_pidfile_truthful(&pid, "serving"), Some(master));
    kill(master, libc::SIGTERM);
    assert!(
        wait_until(Duration::from_secs(10), || !alive(master)),
        "master did not stop"
    );
    assert!(!pid.exists(), "PID file left after a clean stop");
    tag.assert_none_left(Duration::from_secs(2), "stopped daemon");
    // A log that cannot be created at all is an error naming the file.
    let log2 = fs.0.join("new.log");
    fs.exhaust_inodes();
    let mut c = tag.testprog("supervise");
    c.env("DK_DAEMONIZE", "1").env("DK_LOG", &log2);
    let (st, err, _) = finish(c.spawn().unwrap(), Duration::from_secs(20), "log create");
    assert!(!st.success());
    assert!(
        err.contains(log2.to_str().unwrap()) && err.contains("No space left on device"),
        "the error does not name the log and the cause: {err:?}"
    );
    tag.assert_none_left(Duration::from_secs(2), "failed log open");
}

#[test]
fn dev_null_missing_in_chroot_fails_clearly() {
    if !need_root("chroot fault") {
        return;
    }
    let t = TempDir::new("faults");
    let root = t.join("jail");
    std::fs::create_dir(&root).unwrap();
    {
        let what = "daemonize in a chroot without /dev/null";
        let tag = Tag::new("chroot");
        let mut c = tag.testprog("single");
        c.env("DK_CHROOT", &root).env("DK_DAEMONIZE", "1");
        let (st, err, _) = finish(c.spawn().unwrap(), Duration::from_secs(20), what);
        eprintln!("stderr ({what}): {err}");
        assert!(!st.success(), "{what}: exit status {st:?}");
        assert!(
            err.contains("/dev/null: No such file or directory"),
            "{what}: the error does not name /dev/null: {err:?}"
        );
        // Found before the fork: the launcher itself reports it, no daemon ever ran.
        assert!(!err.contains("before it was ready"), "{what}: {err:?}");
        tag.assert_none_left(Duration::from_secs(2), what);
    }
}

#[test]
fn readiness_timeout_kills_the_daemon_and_says_so() {
    if !need_root("readiness timeout (pid file checks)") {
        return;
    }
    let tag = Tag::new("ready-timeout");
    let t = TempDir::new("faults");
    let pid = t.join("app.pid");
    let mut c = tag.testprog("single");
    c.env("DK_DAEMONIZE", "1")
        .env("DK_PID", &pid)
        .env("DK_TIMEOUT_MS", "700")
        .env("DK_START_DELAY_MS", "60000");
    let (st, err, took) = finish(c.spawn().unwrap(), Duration::from_secs(20), "timeout");
    eprintln!("stderr: {err} (after {took:?})");
    assert!(!st.success(), "exit status {st:?}");
    assert!(
        took >= Duration::from_millis(650),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "gave up late: {took:?}");
    assert!(
        err.contains("700 ms") && err.contains("killed"),
        "the error does not say it timed out and killed the daemon: {err:?}"
    );
    tag.assert_none_left(Duration::from_secs(3), "timed-out daemon");
    assert!(
        !matches!(Pidfile::check(&pid), Ok(PidState::Running(_))),
        "the killed daemon's pid file says it runs"
    );
}

#[test]
fn worker_ignoring_term_is_killed_after_the_graceful_timeout() {
    let tag = Tag::new("ignore-term");
    let t = TempDir::new("faults");
    let pid = t.join("app.pid");
    let events = t.join("events");
    let mut c = tag.testprog("supervise");
    c.env("DK_WORKERS", "2")
        .env("DK_PID", &pid)
        .env("DK_EVENTS", &events)
        .env("DK_IGNORE_TERM", "1")
        .env("DK_GRACEFUL_MS", "800");
    let mut child = c.spawn().unwrap();
    let mut reaper = Reaper::default();
    reaper.add(child.id() as i32);
    let port = port_of(&mut child);
    assert!(wait_until(Duration::from_secs(10), || served_pid(port).is_some()));
    let master = child.id() as i32;
    assert!(wait_until(Duration::from_secs(10), || children(master)
        .len()
        == 2));
    let workers = children(master);
    let t0 = Instant::now();
    kill(master, libc::SIGTERM);
    let (st, err, _) = finish(child, Duration::from_secs(20), "graceful stop");
    let took = t0.elapsed();
    eprintln!("stopped in {took:?}");
    assert!(
        took >= Duration::from_millis(700),
        "workers ignoring TERM were gone early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    assert!(st.success(), "exit status {st:?}: {err}");
    for w in workers {
        assert!(!alive(w), "worker {w} survived");
    }
    let log = std::fs::read_to_string(&events).unwrap();
    let killed = log.lines().filter(|l| l.starts_with("9 ")).count();
    assert_eq!(killed, 2, "KILLED events: {log}");
    assert!(!pid.exists());
    tag.assert_none_left(Duration::from_secs(2), "stopped master");
}

/// The new generation's pid from the events file (`10 PID 0`: upgrade started).
fn upgrade_pid(events: &Path) -> i32 {
    let mut p = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            p = std::fs::read_to_string(events).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("10 "))
                    .and_then(|r| r.split_whitespace().next()?.parse().ok())
            });
            p.is_some()
        }),
        "no upgrade started"
    );
    p.unwrap()
}

fn upgrade_ready(events: &Path) -> bool {
    std::fs::read_to_string(events).is_ok_and(|s| s.lines().any(|l| l.starts_with("11 ")))
}

/// Where an upgrade is interrupted by a kill -9.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The old master, while the new generation starts (not ready yet).
    OldBeforeReady,
    /// The old master, after the new generation is ready, while the old one drains.
    OldWhileDraining,
    /// The new generation, before it is ready.
    NewBeforeReady,
    /// The new generation, after it is ready, while the old one drains.
    NewWhileOldDrains,
}

fn upgrade_killed_at(step: Step) {
    let tag = Tag::new("upgrade-kill");
    let t = TempDir::new("faults");
    let pid = t.join("app.pid");
    let events = t.join("events");
    let mut c = tag.testprog("supervise");
    c.env("DK_WORKERS", "2")
        .env("DK_PID", &pid)
        .env("DK_EVENTS", &events)
        .env("DK_GRACEFUL_MS", "5000");
    let delay = match step {
        Step::OldBeforeReady | Step::NewBeforeReady => "2000",
        _ => "0",
    };
    c.env("DK_UPGRADE_DELAY_MS", delay);
    let mut child = c.spawn().unwrap();
    let old = child.id() as i32;
    let port = port_of(&mut child);
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    assert!(wait_until(Duration::from_secs(10), || served_pid(port).is_some()));
    assert_eq!(wait_pid_in(&pid), old);
    let old_workers = children(old);
    // A slow request keeps an old worker draining after the switch.
    let slow = std::thread::spawn(move || get(port, "/slow?ms=2500"));
    std::thread::sleep(Duration::from_millis(200));
    kill(old, libc::SIGUSR2);
    let new = upgrade_pid(&events);
    match step {
        Step::OldBeforeReady => {
            std::thread::sleep(Duration::from_millis(300));
            assert!(!upgrade_ready(&events));
            kill(old, libc::SIGKILL);
        }
        Step::NewBeforeReady => {
            std::thread::sleep(Duration::from_millis(300));
            assert!(!upgrade_ready(&events));
            kill(new, libc::SIGKILL);
        }
        Step::OldWhileDraining | Step::NewWhileOldDrains => {
            assert!(
                wait_until(Duration::from_secs(10), || upgrade_ready(&events)),
                "new generation not ready"
            );
            assert!(
                alive(old),
                "the old master should still drain its slow request"
            );
            kill(
                if matches!(step, Step::OldWhileDraining) {
                    old
                } else {
                    new
                },
                libc::SIGKILL,
            );
        }
    }
    // At no moment after the kill may the file name a dead process as running.
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        assert_pidfile_truthful(
            &pid,
            &format!("{step:?}, {:?} after the kill", t0.elapsed()),
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = slow.join();
    // Let the dust settle: a rollback, a drain, a generation finishing its start.
    std::thread::sleep(Duration::from_millis(3500));
    // The old master's workers never outlive it.
    if !alive(old) {
        for w in &old_workers {
            assert!(
                wait_until(Duration::from_secs(2), || !alive(*w)),
                "{step:?}: old worker {w} orphaned"
            );
        }
    }
    match assert_pidfile_truthful(&pid, &format!("{step:?}")) {
        Some(p) => {
            // Whoever the file names serves, through its workers.
            let served = served_pid(port);
            assert!(
                served.is_some_and(|s| stat(s).is_some_and(|(_, pp)| pp == p)),
                "{step:?}: pid file names {p}, but {served:?} answered"
            );
            let expect = match step {
                Step::NewBeforeReady => old,
                Step::OldWhileDraining => new,
                _ => p,
            };
            assert_eq!(p, expect, "{step:?}: the wrong generation holds the file");
            eprintln!("{step:?}: safe state: {p} serves and holds the pid file");
            kill(p, libc::SIGTERM);
            assert!(
                wait_until(Duration::from_secs(10), || !alive(p)),
                "{step:?}: survivor does not stop on TERM"
            );
        }
        None => {
            assert!(
                !matches!(step, Step::NewBeforeReady),
                "{step:?}: the old master should have rolled back and kept the file"
            );
            eprintln!("{step:?}: safe state: nothing serves, the pid file is not held");
        }
    }
    tag.assert_none_left(Duration::from_secs(8), &format!("{step:?}"));
    assert!(
        !matches!(Pidfile::check(&pid), Ok(PidState::Running(_))),
        "{step:?}: pid file held with no process left"
    );
}

#[test]
fn upgrade_old_master_killed_before_new_generation_is_ready() {
    upgrade_killed_at(Step::OldBeforeReady);
}

#[test]
fn upgrade_old_master_killed_while_draining() {
    upgrade_killed_at(Step::OldWhileDraining);
}

#[test]
fn upgrade_new_generation_killed_before_ready() {
    upgrade_killed_at(Step::NewBeforeReady);
}

#[test]
fn upgrade_new_generation_killed_while_old_drains() {
    upgrade_killed_at(Step::NewWhileOldDrains);
}

/// The single-process upgrade (`dk_upgrade`), interrupted while the new image starts: by
/// killing the old process (the new one must carry on alone, holding the file) or the new
/// one (the old one must roll back, rewrite its pid and serve again).
fn single_upgrade_killed(kill_old: bool) {
    let what = if kill_old {
        "single, old killed"
    } else {
        "single, new killed"
    };
    let tag = Tag::new("single-upgrade-kill");
    let t = TempDir::new("faults");
    let pid = t.join("app.pid");
    let mut c = tag.testprog("single");
    c.env("DK_PID", &pid).env("DK_UPGRADE_DELAY_MS", "2000");
    let mut child = c.spawn().unwrap();
    let old = child.id() as i32;
    let port = port_of(&mut child);
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    assert_eq!(served_pid_retry(port), Some(old));
    assert_eq!(wait_pid_in(&pid), old);
    kill(old, libc::SIGUSR2);
    let mut new = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            new = children(old);
            new.len() == 1
        }),
        "{what}: no new generation"
    );
    let new = new[0];
    std::thread::sleep(Duration::from_millis(300));
    kill(if kill_old { old } else { new }, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        assert_pidfile_truthful(&pid, what);
        std::thread::sleep(Duration::from_millis(25));
    }
    // The survivor finishes starting (new) or rolls back (old), then serves and holds the file.
    let survivor = if kill_old { new } else { old };
    assert!(
        wait_until(Duration::from_secs(5), || served_pid(port)
            == Some(survivor)),
        "{what}: {survivor} does not serve"
    );
    assert_eq!(assert_pidfile_truthful(&pid, what), Some(survivor));
    assert_eq!(pid_in(&pid), Some(survivor), "{what}: pid file content");
    kill(survivor, libc::SIGTERM);
    tag.assert_none_left(Duration::from_secs(8), what);
    assert!(
        !pid.exists(),
        "{what}: the survivor's clean stop leaves its PID file"
    );
}

fn served_pid_retry(port: u16) -> Option<i32> {
    let mut p = None;
    wait_until(Duration::from_secs(10), || {
        p = served_pid(port);
        p.is_some()
    });
    p
}

#[test]
fn single_upgrade_old_process_killed_before_new_is_ready() {
    single_upgrade_killed(true);
}

#[test]
fn single_upgrade_new_image_killed_before_ready() {
    single_upgrade_killed(false);
}
