//! `daemonkit run` as a container's init and its restart policy and output relay (issue 14
//! items 3, 6, 7): PID 1 in a fresh PID namespace (`unshare --pid --fork --mount-proc`, what
//! `docker run` gives an entrypoint), orphans reaped within 100 ms, `kill -TERM 1` from
//! inside the namespace (`nsenter`) stopping the service gracefully, exit codes propagated
//! (`--once`), signals forwarded (to the process group with `--signal-group`), `--init`
//! as a child subreaper outside a namespace, `--give-up`/`--max-backoff`, and
//! `--log-timestamps`/`--log-prefix` keeping lines whole. Every process is stopped by the
//! pid the test started (the namespace dies with its init).

mod common;
use common::cli::*;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn need_unshare() -> bool {
    need_root("PID namespaces (unshare --pid)")
}

/// `unshare --pid --fork --mount-proc daemonkit run ARGS`; returns the unshare child and
/// the host pid of the namespace's PID 1 (daemonkit).
fn pid1(args: &[&str]) -> (Child, i32) {
    let child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin())
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux)");
    let up = child.id() as i32;
    let mut init = 0;
    assert!(
        wait_until(Duration::from_secs(5), || {
            init = children(up).first().copied().unwrap_or(0);
            init > 0 && nspid(init) == Some(1)
        }),
        "no PID 1 under unshare"
    );
    (child, init)
}

/// A process's pid in its own PID namespace (the last `NSpid:` field).
fn nspid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Zombie children of `pid`.
fn zombies(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| matches!(stat(p), Some(('Z', pp)) if pp == pid))
        .collect()
}

fn finish(mut child: Child, t: Duration) -> (Option<i32>, String) {
    let end = Instant::now() + t;
    while Instant::now() < end {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (st.code(), err);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    (None, "did not exit".into())
}

#[test]
fn as_pid_1_orphans_are_reaped_within_100_ms_and_the_status_propagates() {
    if !need_unshare() {
        return;
    }
    // Five orphans per second for 1.5 s: each `sleep 0.1` outlives its subshell, is
    // reparented to PID 1, and must be reaped the moment it exits.
    let script =
        "for r in 1 2 3; do for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 0.5; done; exit 7";
    let (child, init) = pid1(&["--once", "--", "/bin/sh", "-c", script]);
    let mut first_seen: std::collections::HashMap<i32, Instant> = Default::default();
    let mut longest = Duration::ZERO;
    let mut seen = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) && alive(init) {
        let now = Instant::now();
        let z = zombies(init);
        for &p in &z {
            let t = *first_seen.entry(p).or_insert_with(|| {
                seen += 1;
                now
            });
            longest = longest.max(now - t);
        }
        first_seen.retain(|p, _| z.contains(p));
        std::thread::sleep(Duration::from_millis(2));
    }
    let (code, err) = finish(child, Duration::from_secs(10));
    println!(
        "PID 1: 15 orphans, {seen} seen as zombies, the longest for {longest:?}; exit {code:?}"
    );
    assert!(
        longest <= Duration::from_millis(100),
        "a zombie lived {longest:?}"
    );
    assert_eq!(code, Some(7), "PROGRAM's exit status: {err}");
}

#[test]
fn kill_term_1_in_the_namespace_stops_the_service_gracefully() {
    if !need_unshare() || skip_without_python() {
        return;
    }
    let prog = program().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    for once in [true, false] {
        let mut args = vec!["--listen", &listen, "--ready", "delay=300"];
        if once {
            args.push("--once");
        } else {
            args.extend(["-w", "2"]);
        }
        args.push("--");
        args.extend(prog.iter().map(String::as_str));
        let (child, init) = pid1(&args);
        let mut reaper = Reaper::default();
        reaper.add(init);
        assert!(
            wait_until(Duration::from_secs(10), || hello_pid(port).is_some()),
            "does not serve"
        );
        if !once {
            // Without --once the supervisor's restart rules hold, PID 1 or not.
            let w = children(init)[0];
            std::thread::sleep(Duration::from_millis(1100));
            kill(w, libc::SIGKILL);
            assert!(
                wait_until(Duration::from_secs(3), || {
                    let now = children(init);
                    now.len() == 2 && !now.contains(&w)
                }),
                "a killed worker was not respawned under PID 1"
            );
        }
        let port2 = port;
        let slow = std::thread::spawn(move || get(port2, "/slow?ms=1200"));
        std::thread::sleep(Duration::from_millis(300));
        let o = Command::new("nsenter")
            .args(["-t", &init.to_string(), "-p", "-m", "kill", "-TERM", "1"])
            .output()
            .expect("nsenter");
        assert!(o.status.success(), "nsenter kill: {o:?}");
        let r = slow.join().unwrap();
        let (code, err) = finish(child, Duration::from_secs(15));
        println!(
            "kill -TERM 1 (once={once}): in-flight {:?}, exit {code:?}",
            r.is_ok()
        );
        assert!(r.is_ok(), "the in-flight request was cut: {r:?}");
        assert_eq!(code, Some(0), "graceful stop: {err}");
        assert!(get(port, "/").is_err(), "still serving after TERM");
    }
}

#[test]
fn once_forwards_signals_and_exits_with_the_programs_status() {
    let dir = TempDir::new("init-once");
    let log = dir.join("got");
    // The program records the signals it receives; its child too (--signal-group).
    let script = format!(
        "trap 'echo HUP >> {l}' HUP; trap 'echo USR2 >> {l}' USR2; trap 'echo QUIT >> {l}; exit 9' QUIT; \
         (trap 'echo CHILD-HUP >> {l}' HUP; while :; do sleep 0.05; done) & \
         echo started >> {l}; while :; do sleep 0.05; done",
        l = log.display()
    );
    let child = Command::new(bin())
        .args([
            "run",
            "--once",
            "--signal-group",
            "--ready",
            "delay=100",
            "--",
        ])
        .args(["/bin/sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dk_pid = child.id() as i32;
    let mut reaper = Reaper::default();
    reaper.add(dk_pid);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(5), || read().contains("started")));
    std::thread::sleep(Duration::from_millis(200));
    for sig in [libc::SIGHUP, libc::SIGUSR2] {
        kill(dk_pid, sig);
        std::thread::sleep(Duration::from_millis(300));
    }
    kill(dk_pid, libc::SIGQUIT);
    let (code, err) = finish(child, Duration::from_secs(10));
    let got = read();
    println!("--once --signal-group: the program saw {got:?}, exit {code:?}");
    assert!(got.contains("HUP\n") && got.contains("USR2\n"), "{got:?}");
    assert!(
        got.contains("CHILD-HUP"),
        "not forwarded to the group: {got:?}"
    );
    assert!(got.contains("QUIT"), "{got:?}");
    assert_eq!(code, Some(9), "PROGRAM's status: {err}");

    // A signal death is 128 + N.
    let o = dk(&["run", "--once", "--", "/bin/sh", "-c", "kill -KILL $$"]);
    assert_eq!(o.status.code(), Some(137), "{}", text(&o));
    let o = dk(&["run", "--once", "--", "/bin/sh", "-c", "exit 0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn init_outside_a_namespace_reaps_orphans_as_a_subreaper() {
    let dir = TempDir::new("init-sub");
    let mark = dir.join("orphans");
    let script = format!(
        "for i in 1 2 3; do (sleep 0.2 & echo $! >> {}); done; sleep 1.2",
        mark.display()
    );
    let child = Command::new(bin())
        .args(["run", "--init", "--once", "--", "/bin/sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dk_pid = child.id() as i32;
    let mut reaper = Reaper::default();
    reaper.add(dk_pid);
    std::thread::sleep(Duration::from_millis(150));
    let orphans: Vec<i32> = std::fs::read_to_string(&mark)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let adopted = orphans
        .iter()
        .filter(|&&p| matches!(stat(p), Some((_, pp)) if pp == dk_pid))
        .count();
    std::thread::sleep(Duration::from_millis(400));
    let left = zombies(dk_pid);
    let (code, _) = finish(child, Duration::from_secs(10));
    println!(
        "--init: {} orphans, {adopted} adopted by daemonkit, zombies left {left:?}",
        orphans.len()
    );
    assert_eq!(orphans.len(), 3);
    assert_eq!(adopted, 3, "daemonkit is not their subreaper");
    assert!(left.is_empty(), "zombies left: {left:?}");
    assert_eq!(code, Some(0));
}

#[test]
fn give_up_stops_after_n_crashes_with_a_distinct_code() {
    // A program that never gets ready ends `run` at its first exit (a failed start, exit 1):
    // the restart policy is for a program that served and then crashes.
    let o = dk(&["run", "--give-up", "3/30", "--", "/bin/sh", "-c", "exit 1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exited with status 1 before it was ready"),
        "{}",
        text(&o)
    );

    let dir = TempDir::new("init-giveup");
    let count = dir.join("n");
    // Serves (ready after 100 ms) for 300 ms, then crashes; four starts fit in the window.
    let script = format!("echo x >> {}; sleep 0.3; exit 2", count.display());
    let t0 = Instant::now();
    let o = dk(&[
        "run",
        "--give-up",
        "4/30",
        "--max-backoff",
        "0.3",
        "--ready",
        "delay=100",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let took = t0.elapsed();
    let starts = std::fs::read_to_string(&count)
        .unwrap_or_default()
        .lines()
        .count();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    println!(
        "--give-up 4/30: exit {:?} after {took:?}, {starts} starts",
        o.status.code()
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(starts, 4, "{err}");
    assert!(err.contains("giving up: 4 crashes"), "{err}");
    assert!(
        took < Duration::from_secs(10),
        "the backoff cap did not hold: {took:?}"
    );
}

#[test]
fn log_prefix_and_timestamps_keep_lines_whole() {
    let dir = TempDir::new("init-relay");
    let log = dir.join("log");
    let logs = log.display().to_string();
    // Two workers write lines in pieces; the relay must join each line and mark its source.
    let script = "i=0; while [ $i -lt 5 ]; do printf 'line-%s-' $$; sleep 0.01; printf 'part2\\n'; i=$((i+1)); done; printf 'tail-no-newline'; sleep 30";
    let child = Command::new(bin())
        .args([
            "run",
            "-w",
            "2",
            "--log",
            &logs,
            "--log-prefix",
            "--log-timestamps",
        ])
        .args(["--ready", "delay=100", "--graceful-timeout", "2", "--"])
        .args(["/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let dk_pid = child.id() as i32;
    let mut reaper = Reaper::default();
    reaper.add(dk_pid);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(5), || read()
        .matches("part2")
        .count()
        == 10));
    kill(dk_pid, libc::SIGTERM);
    let (code, _) = finish(child, Duration::from_secs(10));
    let text = read();
    println!("{text}");
    assert_eq!(code, Some(0));
    let workers: Vec<&str> = text.lines().filter(|l| l.contains("] line-")).collect();
    assert_eq!(workers.len(), 10, "{text}");
    for l in &workers {
        // 2026-12-07T05:13:22.123Z [worker 1 pid 4242] line-4242-part2
        let (ts, rest) = l.split_once(' ').unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
            "{l}"
        );
        let pid: &str = rest
            .strip_prefix("[worker ")
            .and_then(|r| r.split_once(" pid "))
            .map(|(_, r)| r.split(']').next().unwrap())
            .unwrap_or_else(|| panic!("no prefix: {l}"));
        assert!(
            rest.ends_with(&format!("line-{pid}-part2")),
            "split or foreign line: {l}"
        );
    }
    assert_eq!(text.matches("tail-no-newline\n").count(), 2, "{text}");
    assert!(text.contains("[daemonkit pid "), "{text}");
}

#[test]
fn notify_fd_gets_a_newline_once_ready() {
    // s6's protocol on a plain pipe: nothing before PROGRAM is ready, "\n" then EOF.
    let mut fds = [0; 2];
    // SAFETY: pipe2 into a valid array; both ends are ours.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (r, w) = (fds[0], fds[1]);
    let mut cmd = Command::new(bin());
    cmd.args([
        "run",
        "--notify-fd",
        "5",
        "--ready",
        "delay=700",
        "--once",
        "--",
    ])
    .args(["/bin/sh", "-c", "sleep 3"])
    .stdin(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: only dup2 between fork and exec (async-signal-safe).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(w, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let t0 = Instant::now();
    let child = cmd.spawn().unwrap();
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(w) };
    let mut reaper = Reaper::default();
    reaper.add(child.id() as i32);
    // SAFETY: taking ownership of the read end.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(r) };
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap(); // EOF once daemonkit closed it (and nobody else has it)
    let took = t0.elapsed();
    println!("--notify-fd 5: {got:?} after {took:?}");
    assert_eq!(got, b"\n");
    assert!(
        took >= Duration::from_millis(650),
        "notified before ready: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "the fd leaked into PROGRAM: {took:?}"
    );
    let _ = finish(child, Duration::from_secs(10));
}
