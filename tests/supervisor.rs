//! The prefork supervisor, driven from outside with real processes, signals and TCP on
//! 127.0.0.1 (issue: supervision and sockets). The program under test is
//! `tests/support/testprog.rs` (Rust worker callbacks on the Rust layer); the C callback path
//! is covered by `tests/c/test_supervisor.c` and the C example.

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Master {
    child: Child,
    port: u16,
    pidfile: std::path::PathBuf,
    events: std::path::PathBuf,
    reaper: Reaper,
    _dir: TempDir,
}

impl Master {
    fn start(tag: &str, workers: u32, env: &[(&str, &str)]) -> Master {
        let dir = TempDir::new(tag);
        let port = free_port();
        let pidfile = dir.join("app.pid");
        let events = dir.join("events");
        let mut cmd = Command::new(testprog());
        cmd.arg("supervise")
            .env("DK_ADDR", format!("127.0.0.1:{port}"))
            .env("DK_PID", &pidfile)
            .env("DK_WORKERS", workers.to_string())
            .env("DK_EVENTS", &events)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut reaper = Reaper::default();
        reaper.add(child.id() as i32);
        Master {
            child,
            port,
            pidfile,
            events,
            reaper,
            _dir: dir,
        }
    }
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    fn wait_workers(&self, n: usize, t: Duration) -> Vec<i32> {
        let mut last = Vec::new();
        wait_until(t, || {
            last = children(self.pid());
            last.len() == n
        });
        last
    }
    fn wait_serving(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || pid_in(&self.pidfile)
                == Some(self.pid())
                && served_pid(self.port).is_some()),
            "master never served"
        );
    }
    fn events(&self) -> Vec<(i32, i32, i32)> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let v: Vec<i32> = l.split(' ').filter_map(|x| x.parse().ok()).collect();
                (v.len() == 3).then(|| (v[0], v[1], v[2]))
            })
            .collect()
    }
    fn exit_code(&mut self, t: Duration) -> Option<i32> {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

const SPAWNED: i32 = 1;
const UPGRADE_FAILED: i32 = 12;

#[test]
fn respawn_ttin_ttou_hup_and_graceful_term() {
    let mut m = Master::start("sup", 4, &[]);
    m.wait_serving();
    let first = m.wait_workers(4, Duration::from_secs(5));
    assert_eq!(first.len(), 4, "workers: {first:?}");
    println!("master {} workers {:?}", m.pid(), first);

    // kill -9 of a worker that has run for over a second: a new worker answers quickly.
    std::thread::sleep(Duration::from_millis(1100));
    let victim = first[0];
    let t0 = Instant::now();
    kill(victim, libc::SIGKILL);
    let mut newcomer = 0;
    let ok = wait_until(Duration::from_secs(2), || {
        let now = children(m.pid());
        match now.iter().find(|p| !first.contains(p)) {
            Some(&p) if now.len() == 4 => {
                newcomer = p;
                true
            }
            _ => false,
        }
    });
    assert!(ok, "no replacement for {victim}");
    // The newcomer answers: keep asking until it is the one serving (4 workers share).
    let mut answered = false;
    for _ in 0..200 {
        if served_pid(m.port) == Some(newcomer) {
            answered = true;
            break;
        }
    }
    let took = t0.elapsed();
    println!("worker {victim} killed; {newcomer} answering after {took:?}");
    assert!(answered, "replacement {newcomer} never answered");
    assert!(took < Duration::from_millis(500), "respawn took {took:?}");

    // TTIN → 5; TTOU ×10 → 1 (never 0).
    kill(m.pid(), libc::SIGTTIN);
    assert_eq!(m.wait_workers(5, Duration::from_secs(3)).len(), 5, "TTIN");
    for _ in 0..10 {
        kill(m.pid(), libc::SIGTTOU);
        std::thread::sleep(Duration::from_millis(5));
    }
    let one = m.wait_workers(1, Duration::from_secs(5));
    assert_eq!(one.len(), 1, "TTOU x10 left {one:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(children(m.pid()).len(), 1, "never below 1");
    println!("TTIN -> 5 workers, TTOU x10 -> 1 worker");
    for _ in 0..3 {
        kill(m.pid(), libc::SIGTTIN);
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = m.wait_workers(4, Duration::from_secs(3));
    assert_eq!(before.len(), 4);
    std::thread::sleep(Duration::from_millis(300));

    // HUP: every worker replaced under a client loop of at least 2000 requests, no failure.
    let load = Load::start(m.port, 100_000, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(m.pid(), libc::SIGHUP);
    let replaced = wait_until(Duration::from_secs(15), || {
        let now = children(m.pid());
        now.len() == 4 && now.iter().all(|p| !before.contains(p))
    });
    // Keep the loop going until it has made at least 2000 requests in all.
    wait_until(Duration::from_secs(20), || load.count() >= 2000);
    let (ok_n, bad, pids, errs) = load.finish();
    println!(
        "HUP: {ok_n} ok, {bad} failed, pids seen {pids:?}, workers now {:?}",
        children(m.pid())
    );
    assert!(
        replaced,
        "not every worker was replaced: before {before:?}, now {:?}",
        children(m.pid())
    );
    assert_eq!(bad, 0, "failed requests across HUP: {errs:?}");
    assert!(ok_n >= 2000, "only {ok_n} requests ran across the HUP");

    // TERM with a request in flight: it completes, the master exits 0, the PID file is gone.
    let port = m.port;
    let slow = std::thread::spawn(move || get(port, "/slow?ms=1500"));
    std::thread::sleep(Duration::from_millis(300));
    kill(m.pid(), libc::SIGTERM);
    let r = slow.join().unwrap();
    assert!(r.is_ok(), "in-flight request failed: {r:?}");
    assert_eq!(
        m.exit_code(Duration::from_secs(10)),
        Some(0),
        "master exit status"
    );
    assert!(!m.pidfile.exists(), "PID file left behind");
    println!("TERM: in-flight request completed, master exited 0, PID file removed");
}

#[test]
fn master_killed_leaves_no_workers() {
    let mut m = Master::start("kill9", 3, &[]);
    m.wait_serving();
    let workers = m.wait_workers(3, Duration::from_secs(5));
    assert_eq!(workers.len(), 3);
    for &w in &workers {
        m.reaper.add(w);
    }
    kill(m.pid(), libc::SIGKILL);
    let _ = m.child.wait();
    let gone = wait_until(Duration::from_secs(2), || {
        workers.iter().all(|&w| !alive(w))
    });
    println!(
        "master killed; workers alive after: {:?}",
        workers.iter().filter(|&&w| alive(w)).collect::<Vec<_>>()
    );
    assert!(gone, "orphaned workers remain");
}

#[test]
fn crash_loop_is_throttled_and_term_still_works() {
    let mut m = Master::start("crash", 2, &[("DK_CRASH", "1")]);
    std::thread::sleep(Duration::from_millis(3500));
    let spawns = m.events().iter().filter(|e| e.0 == SPAWNED).count();
    println!("crash loop: {spawns} forks in 3.5 s");
    assert!(spawns >= 2, "workers were never started");
    assert!(spawns <= 10, "fork storm: {spawns} forks in 3.5 s");
    let t = Instant::now();
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(3)), Some(0));
    println!("TERM answered in {:?}", t.elapsed());
}

#[test]
fn another_reaper_in_the_same_process_keeps_its_child() {
    let dir = TempDir::new("reaper");
    let out = dir.join("reaped");
    let mut m = Master::start("reaper2", 2, &[("DK_REAPER", out.to_str().unwrap())]);
    m.wait_serving();
    assert!(
        wait_until(Duration::from_secs(5), || out.exists()),
        "the other reaper never reaped its child"
    );
    let line = std::fs::read_to_string(&out).unwrap();
    println!("other reaper: {line:?}");
    assert!(
        line.starts_with("reaped ") && line.trim().ends_with(" 0"),
        "other reaper saw {line:?}"
    );
    // And the supervisor still reaps and respawns its own.
    let w = m.wait_workers(2, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(1100));
    kill(w[0], libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(2), || {
        let now = children(m.pid());
        now.len() == 2 && !now.contains(&w[0])
    }));
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

#[test]
fn upgrade_under_load_and_rollback() {
    // Successful upgrade.
    let mut m = Master::start("upg", 2, &[]);
    m.wait_serving();
    let old = m.pid();
    let load = Load::start(m.port, 100_000, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(old, libc::SIGUSR2);
    let mut newpid = 0;
    let moved = wait_until(Duration::from_secs(15), || {
        newpid = pid_in(&m.pidfile).unwrap_or(0);
        newpid != old && newpid > 0
    });
    if newpid > 0 && newpid != old {
        m.reaper.add(newpid);
    }
    assert!(moved, "PID file still holds {old}");
    let code = m.exit_code(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let (ok_n, bad, pids, errs) = load.finish();
    println!("USR2: old {old} exit {code:?}, new master {newpid}, {ok_n} ok, {bad} failed, pids {pids:?}");
    assert_eq!(code, Some(0), "old master exit");
    assert!(alive(newpid), "new master not running");
    assert_eq!(bad, 0, "failed requests across the upgrade: {errs:?}");
    let served = served_pid(m.port).unwrap();
    assert_eq!(
        stat(served).map(|s| s.1),
        Some(newpid),
        "served by {served}, not a worker of {newpid}"
    );
    kill(newpid, libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(10), || !alive(newpid)));
    assert!(!m.pidfile.exists(), "new master left its PID file");

    // A new generation that exits at once: rollback, still serving, no failures.
    let mut m = Master::start("upgfail", 2, &[("DK_UPGRADE_FAIL", "1")]);
    m.wait_serving();
    let old = m.pid();
    let load = Load::start(m.port, 100_000, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(old, libc::SIGUSR2);
    let failed = wait_until(Duration::from_secs(15), || {
        m.events().iter().any(|e| e.0 == UPGRADE_FAILED)
    });
    std::thread::sleep(Duration::from_millis(500));
    let (ok_n, bad, _, errs) = load.finish();
    println!(
        "USR2 rollback: {ok_n} ok, {bad} failed; PID file {:?}",
        pid_in(&m.pidfile)
    );
    assert!(failed, "no rollback event");
    assert!(alive(old), "old master died");
    assert_eq!(pid_in(&m.pidfile), Some(old), "PID file after rollback");
    assert_eq!(bad, 0, "failed requests across the rollback: {errs:?}");
    assert!(served_pid(m.port).is_some());
    kill(old, libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

const KILLED: i32 = 9;

/// The master's children from /proc/PID/task/PID/children (one read, so a test can react
/// within microseconds of a fork), or the /proc scan where the kernel lacks that file.
fn children_fast(pid: i32) -> Vec<i32> {
    match std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        Ok(s) => s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => children(pid),
    }
}

#[test]
fn a_worker_told_to_stop_is_killed_after_the_graceful_timeout() {
    // Workers ignore TERM: a TTOU, then a rolling restart, must end in KILL after 800 ms
    // (not leave the worker running forever, nor kill it early).
    let mut m = Master::start(
        "stop-one",
        2,
        &[("DK_IGNORE_TERM", "1"), ("DK_GRACEFUL_MS", "800")],
    );
    m.wait_serving();
    let two = m.wait_workers(2, Duration::from_secs(5));
    assert_eq!(two.len(), 2, "workers {two:?}");
    for &w in &two {
        m.reaper.add(w);
    }
    let t0 = Instant::now();
    kill(m.pid(), libc::SIGTTOU);
    std::thread::sleep(Duration::from_millis(400));
    let early = children(m.pid());
    let one = m.wait_workers(1, Duration::from_secs(10));
    let took = t0.elapsed();
    println!("TTOU with TERM ignored: {two:?} -> {one:?} after {took:?} (at 400 ms: {early:?})");
    assert_eq!(
        early.len(),
        2,
        "the TERM-ignoring worker was gone early: {early:?}"
    );
    assert_eq!(one.len(), 1, "TTOU never took effect: {one:?}");
    let victim = *two.iter().find(|p| !one.contains(p)).unwrap();
    assert!(
        m.events().contains(&(KILLED, victim, 0)),
        "no KILLED event for {victim}: {:?}",
        m.events()
    );

    // HUP: the new worker comes up, the old one ignores TERM and is killed.
    let old = one[0];
    kill(m.pid(), libc::SIGHUP);
    let rolled = wait_until(Duration::from_secs(10), || {
        let now = children(m.pid());
        now.len() == 1 && now[0] != old
    });
    for w in children(m.pid()) {
        m.reaper.add(w);
    }
    assert!(rolled, "rolling restart stuck: {:?}", children(m.pid()));
    assert!(m.events().contains(&(KILLED, old, 0)), "{:?}", m.events());
    assert!(served_pid(m.port).is_some());

    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_worker_signalled_right_after_its_fork_still_gets_the_signal() {
    // TTIN, then TTOU the moment the new worker exists: the master TERMs that worker (the
    // newest, not ready yet) while it may still be between fork and its signal reset. The
    // TERM must end it then and there; the graceful timeout is 60 s, so a TERM swallowed in
    // the child shows as a worker that does not go. Two spinning threads keep both CPUs busy
    // so that the new child often waits to run.
    let mut m = Master::start("fork-race", 1, &[("DK_GRACEFUL_MS", "60000")]);
    m.wait_serving();
    assert_eq!(m.wait_workers(1, Duration::from_secs(5)).len(), 1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && t.elapsed() < Duration::from_secs(120)
                {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut stuck = None;
    let rounds = 150;
    for round in 0..rounds {
        let before = children_fast(m.pid());
        kill(m.pid(), libc::SIGTTIN);
        let appeared = wait_until(Duration::from_secs(5), || {
            children_fast(m.pid()).len() > before.len()
        });
        kill(m.pid(), libc::SIGTTOU);
        assert!(appeared, "round {round}: TTIN started no worker");
        for w in children_fast(m.pid()) {
            m.reaper.add(w);
        }
        let back = wait_until(Duration::from_secs(10), || {
            children_fast(m.pid()).len() == before.len()
        });
        if !back {
            stuck = Some((round, before, children_fast(m.pid())));
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    assert!(
        stuck.is_none(),
        "a TERMed new worker lived on (round, before, now): {stuck:?}"
    );
    println!("{rounds} rounds of TTIN + TTOU at the fork: every new worker went at once");
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

const EXITED: i32 = 2;
const RELOADED: i32 = 7;
const RELOAD_FAILED: i32 = 16;

/// The pids a SPAWNED event named, in order.
fn spawned(events: &[(i32, i32, i32)]) -> Vec<(i32, i32)> {
    events
        .iter()
        .filter(|e| e.0 == SPAWNED)
        .map(|e| (e.1, e.2))
        .collect()
}

#[test]
fn usr1_reaches_a_new_worker_only_once_it_is_ready() {
    // Each worker sleeps 400 ms before it registers its signals (until then USR1 has its
    // default action: death). A USR1 sent to the master while a rolling restart's new worker
    // is in that window must not kill it, and must reach it once it reported ready.
    let dir = TempDir::new("usr1-held");
    let usr1 = dir.join("usr1");
    let usr1s = usr1.display().to_string();
    let mut m = Master::start(
        "usr1-held",
        2,
        &[("DK_SIGNAL_DELAY_MS", "400"), ("DK_USR1_FILE", &usr1s)],
    );
    m.wait_serving();
    let before = m.wait_workers(2, Duration::from_secs(5));
    assert_eq!(before.len(), 2, "workers {before:?}");
    let n0 = spawned(&m.events()).len();
    kill(m.pid(), libc::SIGHUP);
    let mut fresh = 0;
    assert!(
        wait_until(Duration::from_secs(5), || {
            match spawned(&m.events()).get(n0) {
                Some(&(pid, _)) => {
                    fresh = pid;
                    true
                }
                None => false,
            }
        }),
        "HUP started no worker"
    );
    m.reaper.add(fresh);
    kill(m.pid(), libc::SIGUSR1); // the new worker is still in its 400 ms without handlers
    let rolled = wait_until(Duration::from_secs(15), || {
        m.events().iter().any(|e| e.0 == RELOADED)
    });
    let deaths: Vec<_> = m
        .events()
        .into_iter()
        .filter(|e| e.0 == EXITED && libc::WIFSIGNALED(e.2) && libc::WTERMSIG(e.2) == 10)
        .collect();
    println!("HUP, USR1 at once: new worker {fresh}; deaths by USR1 {deaths:?}");
    assert!(deaths.is_empty(), "workers killed by USR1: {deaths:?}");
    assert!(rolled, "rolling restart did not finish: {:?}", m.events());
    let got = |pid: i32| {
        std::fs::read_to_string(&usr1)
            .unwrap_or_default()
            .lines()
            .any(|l| l == format!("usr1 {pid}"))
    };
    assert!(
        wait_until(Duration::from_secs(3), || got(fresh)),
        "the held USR1 never reached {fresh} after it was ready: {:?}",
        std::fs::read_to_string(&usr1)
    );
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_new_worker_that_cannot_start_abandons_the_rolling_restart() {
    // Workers exit 1 at once while FLAG exists (as a program that binds its own port gets
    // EADDRINUSE while the old copy holds it). HUP must not crash-loop or stop the old
    // workers: the roll is abandoned, the old generation keeps serving.
    let dir = TempDir::new("roll-abandon");
    let flag = dir.join("flag");
    let flags = flag.display().to_string();
    let mut m = Master::start("roll-abandon", 2, &[("DK_CRASH_IF_EXISTS", &flags)]);
    m.wait_serving();
    let before = m.wait_workers(2, Duration::from_secs(5));
    assert_eq!(before.len(), 2);
    let n0 = spawned(&m.events()).len();
    std::fs::write(&flag, "").unwrap();
    kill(m.pid(), libc::SIGHUP);
    let abandoned = wait_until(Duration::from_secs(5), || {
        m.events().iter().any(|e| e.0 == RELOAD_FAILED)
    });
    std::thread::sleep(Duration::from_millis(2500));
    let tries = spawned(&m.events()).len() - n0;
    let now = children(m.pid());
    println!("HUP with a failing new worker: {tries} spawn(s), workers {before:?} -> {now:?}");
    assert!(abandoned, "no RELOAD_FAILED event: {:?}", m.events());
    assert_eq!(tries, 1, "the failing worker was retried: {:?}", m.events());
    assert_eq!(now, before, "the old workers did not stay");
    assert!(matches!(served_pid(m.port), Some(p) if before.contains(&p)));

    // The cause gone, the next HUP rolls as usual.
    std::fs::remove_file(&flag).unwrap();
    kill(m.pid(), libc::SIGHUP);
    let rolled = wait_until(Duration::from_secs(10), || {
        let now = children(m.pid());
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    assert!(rolled, "second HUP did not roll: {:?}", children(m.pid()));
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_rolling_restart_at_the_most_workers_replaces_every_one() {
    // A rolling restart starts each new worker before it stops an old one: at the most
    // workers a master runs (256) the slot table must still have room for it.
    const N: usize = 256;
    let mut m = Master::start("max-workers", N as u32, &[]);
    m.wait_serving();
    let before = m.wait_workers(N, Duration::from_secs(30));
    assert_eq!(before.len(), N, "workers at start");
    kill(m.pid(), libc::SIGHUP);
    let rolled = wait_until(Duration::from_secs(60), || {
        let now = children(m.pid());
        now.len() == N && now.iter().all(|p| !before.contains(p))
    });
    let now = children(m.pid());
    let left = now.iter().filter(|p| before.contains(p)).count();
    println!(
        "HUP at {N} workers: {} workers, {left} of the old ones left",
        now.len()
    );
    assert!(rolled, "HUP at {N} workers: {} now, {left} old", now.len());
    assert!(served_pid(m.port).is_some(), "not serving after the roll");
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(20)), Some(0));
}

#[test]
fn a_rolling_restart_does_not_wait_for_busy_old_workers_to_drain() {
    // Both old workers are busy with 4 s requests when the HUP comes: every replacement
    // must be up long before they have drained (each step used to wait for the old worker
    // it had just stopped to exit).
    let mut m = Master::start("roll-busy", 2, &[]);
    m.wait_serving();
    let before = m.wait_workers(2, Duration::from_secs(5));
    assert_eq!(before.len(), 2);
    let port = m.port;
    let slow: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || get(port, "/slow?ms=4000")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    kill(m.pid(), libc::SIGHUP);
    let mut fresh = Vec::new();
    let up = wait_until(Duration::from_millis(2500), || {
        fresh = children(m.pid())
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        fresh.len() == 2
    });
    println!(
        "HUP with busy old workers: new {fresh:?} after {:?}",
        t0.elapsed()
    );
    assert!(
        up,
        "replacements after 2.5 s: {fresh:?} (old still draining)"
    );
    for t in slow {
        assert!(t.join().unwrap().is_ok(), "a request in flight failed");
    }
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

#[test]
fn worker_indices_are_the_slots_0_to_n_minus_1() {
    let mut m = Master::start("indices", 4, &[]);
    m.wait_serving();
    assert_eq!(m.wait_workers(4, Duration::from_secs(5)).len(), 4);
    for round in 1..=2 {
        let before = children(m.pid());
        kill(m.pid(), libc::SIGHUP);
        let rolled = wait_until(Duration::from_secs(15), || {
            let now = children(m.pid());
            now.len() == 4 && now.iter().all(|p| !before.contains(p))
        });
        assert!(rolled, "HUP {round} did not roll");
    }
    let rolls = spawned(&m.events());
    assert!(
        rolls.iter().all(|&(_, i)| (0..4).contains(&i)),
        "-w 4 across two HUPs: indices {rolls:?}"
    );
    let live = |m: &Master| -> Vec<i32> {
        let ev = spawned(&m.events());
        let mut v: Vec<i32> = children(m.pid())
            .iter()
            .filter_map(|p| ev.iter().rev().find(|e| e.0 == *p).map(|e| e.1))
            .collect();
        v.sort();
        v
    };
    assert_eq!(live(&m), vec![0, 1, 2, 3]);
    kill(m.pid(), libc::SIGTTIN);
    assert_eq!(m.wait_workers(5, Duration::from_secs(5)).len(), 5);
    assert_eq!(live(&m), vec![0, 1, 2, 3, 4]);
    kill(m.pid(), libc::SIGTTOU);
    assert_eq!(m.wait_workers(4, Duration::from_secs(10)).len(), 4);
    println!("indices after 2 HUPs, TTIN, TTOU: {:?}", live(&m));
    assert_eq!(
        live(&m),
        vec![0, 1, 2, 3],
        "TTOU must stop the highest slot"
    );
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
}

const GAVE_UP: i32 = 17;
const RESPAWN_DELAYED: i32 = 3;

#[test]
fn the_restart_policy_gives_up_after_n_crashes_and_caps_its_backoff() {
    // Each worker serves for 300 ms, then crashes: four crashes within 30 s end the run
    // (exit 3 from testprog for Outcome::GaveUp); quick crashes back off at most 200 ms.
    let mut m = Master::start(
        "give-up",
        1,
        &[
            ("DK_CRASH_AFTER_MS", "300"),
            ("DK_GIVE_UP", "4/30000"),
            ("DK_MAX_BACKOFF_MS", "200"),
        ],
    );
    let t0 = Instant::now();
    let code = m.exit_code(Duration::from_secs(20));
    let took = t0.elapsed();
    let ev = m.events();
    let crashes = ev.iter().filter(|e| e.0 == EXITED).count();
    let delays: Vec<i32> = ev
        .iter()
        .filter(|e| e.0 == RESPAWN_DELAYED)
        .map(|e| e.2)
        .collect();
    println!(
        "give up after 4 crashes: exit {code:?} after {took:?}, {crashes} exits, delays {delays:?}"
    );
    assert_eq!(code, Some(3), "{ev:?}");
    assert!(ev.iter().any(|e| e.0 == GAVE_UP && e.2 == 4), "{ev:?}");
    assert_eq!(crashes, 4, "{ev:?}");
    assert!(
        delays.iter().all(|&d| d <= 200),
        "backoff over its cap: {delays:?}"
    );
    assert!(!m.pidfile.exists(), "pid file left after giving up");
}

/// Load across three HUPs of a master whose workers drop what they accept once told to stop
/// (as Starman's children do); returns (ok, failed).
/// Three rolling restarts (HUP) of `m`'s `workers` workers, each waited for until every
/// worker is new, under three clients; the clients' requests served, failed and errors.
fn three_hups_under_load(m: &Master, workers: usize, what: &str) -> (usize, usize, Vec<String>) {
    let loads: Vec<Load> = (0..3)
        .map(|_| Load::start(m.port, 100_000, Duration::from_secs(20)))
        .collect();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        let before = children(m.pid());
        kill(m.pid(), libc::SIGHUP);
        let rolled = wait_until(Duration::from_secs(10), || {
            let now = children(m.pid());
            now.len() == workers && now.iter().all(|p| !before.contains(p))
        });
        assert!(rolled, "round {round}: HUP did not roll ({what})");
    }
    std::thread::sleep(Duration::from_millis(300));
    let (mut ok, mut bad, mut errs) = (0, 0, Vec::new());
    for l in loads {
        let (o, b, _, e) = l.finish();
        ok += o;
        bad += b;
        errs.extend(e);
    }
    (ok, bad, errs)
}

fn rolls_under_load(paired: bool) -> (usize, usize) {
    let mut env = vec![("DK_DROP_ON_TERM", "1"), ("DK_GRACEFUL_MS", "3000")];
    if paired {
        env.push(("DK_PAIR", "1"));
    }
    let mut m = Master::start(if paired { "pair" } else { "shared" }, 2, &env);
    m.wait_serving();
    assert_eq!(m.wait_workers(2, Duration::from_secs(5)).len(), 2);
    let (ok, bad, _) = three_hups_under_load(&m, 2, &format!("paired {paired}"));
    kill(m.pid(), libc::SIGTERM);
    assert_eq!(m.exit_code(Duration::from_secs(10)), Some(0));
    (ok, bad)
}

#[test]
fn listener_pairs_switch_connections_before_the_old_workers_stop() {
    let (ok_p, bad_p) = rolls_under_load(true);
    let (ok_s, bad_s) = rolls_under_load(false);
    println!(
        "3 HUPs, 3 clients, workers that drop what they accept once stopped: listener pair \
         {ok_p} ok / {bad_p} failed; one shared socket {ok_s} ok / {bad_s} failed"
    );
    assert!(ok_p > 300, "too few requests ran: {ok_p}");
    assert_eq!(bad_p, 0, "a listener pair lost requests");
}

/// Each worker's one socket of `group`, sorted (asserting it holds exactly one).
fn worker_sockets(workers: &[i32], group: &[u64]) -> Vec<u64> {
    let mut v: Vec<u64> = workers
        .iter()
        .map(|&w| {
            let h = holds(w, group);
            assert_eq!(h.len(), 1, "worker {w} holds {h:?} of the group {group:?}");
            h[0]
        })
        .collect();
    v.sort();
    v
}

#[test]
fn listener_slots_give_each_worker_a_socket_of_its_own_that_outlives_it() {
    let mut m = Master::start("slots", 4, &[("DK_SLOTS", "4")]);
    m.wait_serving();
    let workers = m.wait_workers(4, Duration::from_secs(5));
    assert_eq!(workers.len(), 4, "workers: {workers:?}");
    let group = listening_inodes(m.port);
    assert_eq!(group.len(), 4, "one listening socket per slot: {group:?}");
    assert_eq!(
        holds(m.pid(), &group),
        group,
        "the master holds every slot's socket"
    );
    assert_eq!(
        worker_sockets(&workers, &group),
        group,
        "one socket per worker"
    );

    let (ok, bad, errs) = three_hups_under_load(&m, 4, "per-slot listeners");
    println!("3 HUPs, 3 clients, per-slot listeners: {ok} ok / {bad} failed {errs:?}");
    assert!(ok > 300, "too few requests ran: {ok}");
    assert_eq!(bad, 0, "requests failed during rolling restarts: {errs:?}");
    // The very same sockets, now each in one of the new workers.
    assert_eq!(
        listening_inodes(m.port),
        group,
        "the slots' sockets were replaced"
    );
    let now = children(m.pid());
    assert_eq!(
        worker_sockets(&now, &group),
        group,
        "one socket per new worker"
    );

    // Below one worker per socket a socket would get connections nobody accepts: TTOU stops.
    kill(m.pid(), libc::SIGTTOU);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(children(m.pid()).len(), 4, "TTOU went below the slot count");
    assert!(served_pid(m.port).is_some());

    // USR2: the new generation inherits the whole group, and its workers one socket each.
    kill(m.pid(), libc::SIGUSR2);
    assert_eq!(
        m.exit_code(Duration::from_secs(15)),
        Some(0),
        "old master after USR2"
    );
    let next = pid_in(&m.pidfile).unwrap_or(0);
    assert!(
        next > 0 && next != m.pid(),
        "no new generation in the pid file"
    );
    m.reaper.add(next);
    assert_eq!(
        listening_inodes(m.port),
        group,
        "the group changed across the upgrade"
    );
    assert_eq!(
        holds(next, &group),
        group,
        "the new master holds every slot's socket"
    );
    let mut now = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        now = children(next);
        now.len() == 4
    }));
    assert_eq!(
        worker_sockets(&now, &group),
        group,
        "one socket per upgraded worker"
    );
    assert!(served_pid(m.port).is_some());
    kill(next, libc::SIGTERM);
    assert!(
        wait_until(Duration::from_secs(10), || !alive(next)),
        "new master did not stop"
    );
}
