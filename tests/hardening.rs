//! The Rust layer's part of issue 13 (attacks tried from outside): one owner of the process's
//! signal pipe, the supervisor refusing to run over a caller's registration, handlers
//! without `SA_RESTART`, the synchronous faults refused, a PID file locked by somebody else,
//! bad arguments, and the upgrade's fork keeping signals blocked until the child's reset
//! (seen through ptrace at the fork). The C ABI side is tests/c/test_hardening.c; the
//! command's side is in tests/command.rs.
//!
//! Signal dispositions are process-wide: every check of them runs in the one test
//! `signal_pipe_ownership_and_flags`, none elsewhere in this file.

mod common;
use common::*;
use daemonkit::pidfile::{Pidfile, State as PidState};
use daemonkit::signals::{SignalFlags, Signals};
use daemonkit::Error;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn signal_pipe_ownership_and_flags() {
    // One owner: a second Signals is refused (it would close the first one's fd on drop).
    let first = Signals::new(&[libc::SIGUSR1]).unwrap();
    let fd = first.as_fd().as_raw_fd();
    let second = Signals::new(&[libc::SIGUSR2]);
    let e = second.err().expect("a second Signals in one process");
    assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy, "{e}");
    assert!(e.to_string().contains("already owns"), "{e}");
    // The first still works on the same fd.
    // SAFETY: raising a signal we registered.
    unsafe { libc::raise(libc::SIGUSR1) };
    assert_eq!(
        first.wait(Some(Duration::from_secs(1))).unwrap(),
        Some(libc::SIGUSR1)
    );
    assert_eq!(first.as_fd().as_raw_fd(), fd);

    // The supervisor owns the pipe while it runs: refused while a Signals lives.
    let r = daemonkit::supervisor::Supervisor::new(1).run(|_| 0);
    let e = r.expect_err("Prefork::run over a live Signals");
    assert!(e.to_string().contains("already registered"), "{e}");
    assert!(
        first.wait(Some(Duration::ZERO)).is_ok(),
        "the caller's Signals was torn down"
    );
    drop(first);
    let again = Signals::new(&[libc::SIGUSR2]).expect("a new owner after the drop");
    drop(again);

    // The synchronous faults cannot go through a pipe.
    for sig in [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGSYS,
    ] {
        let e = Signals::new(&[sig])
            .err()
            .unwrap_or_else(|| panic!("signal {sig} accepted"));
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{sig}: {e}");
    }
    assert!(Signals::new(&[libc::SIGKILL]).is_err());

    // NO_RESTART: a blocking read this thread is in fails with EINTR at the signal; with
    // the default flags it is restarted and gets the byte written later.
    let (mut r, w) = std::os::unix::net::UnixStream::pair().unwrap();
    // SAFETY: pthread_self cannot fail.
    let me = unsafe { libc::pthread_self() };
    for (flags, interrupted) in [
        (SignalFlags::NO_RESTART, true),
        (SignalFlags::empty(), false),
    ] {
        let sigs = Signals::with_flags(&[libc::SIGALRM], flags).unwrap();
        let w2 = w.try_clone().unwrap();
        let helper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            // SAFETY: a thread-directed signal to the reading thread, which lives.
            unsafe { libc::pthread_kill(me, libc::SIGALRM) };
            if !interrupted {
                std::thread::sleep(Duration::from_millis(300));
                std::io::Write::write_all(&mut &w2, b"x").unwrap();
            }
        });
        let mut b = [0u8; 1];
        let got = r.read(&mut b);
        helper.join().unwrap();
        if interrupted {
            assert_eq!(
                got.as_ref().map_err(|e| e.kind()),
                Err(std::io::ErrorKind::Interrupted),
                "NO_RESTART: {got:?}"
            );
        } else {
            assert_eq!(
                got.ok(),
                Some(1),
                "with SA_RESTART the read must be restarted"
            );
        }
        assert_eq!(sigs.pending().next(), Some(libc::SIGALRM));
    }
}

#[test]
fn a_foreign_lock_is_reported_never_signalled() {
    if !need_root("a PID file locked by nobody") {
        return;
    }
    let dir = TempDir::new("hard-foreign");
    let pf = dir.join("app.pid");
    let mut victim = Command::new("sleep").arg("60").spawn().unwrap();
    let vpid = victim.id() as i32;
    std::fs::write(&pf, format!("{vpid}\n")).unwrap();
    let mut locker = foreign_locker(&pf, true);
    let check = Pidfile::check(&pf);
    let kill = Pidfile::kill(&pf, libc::SIGTERM);
    let stop = Pidfile::stop(&pf, Duration::from_secs(1));
    let open = Pidfile::open(&pf);
    let survived = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    let _ = locker.kill();
    let _ = locker.wait();
    for w in children(locker.id() as i32) {
        kill_pid(w);
    }
    assert_eq!(check.unwrap(), PidState::Foreign(vpid));
    for (what, r) in [
        ("kill", kill.map(|_| ())),
        ("stop", stop.map(|_| ())),
        ("open", open.map(|_| ())),
    ] {
        match r {
            Err(Error::LockedByOther { pid, .. }) => assert_eq!(pid, Some(vpid as u32), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(survived, "the unrelated process {vpid} was signalled");
    let text = Error::LockedByOther {
        path: pf.clone(),
        pid: Some(7),
    }
    .to_string();
    assert_eq!(
        text,
        format!(
            "pid file {}: locked by another process, not the pid in the file (PID 7, not signalled)",
            pf.display()
        )
    );
}

fn kill_pid(pid: i32) {
    kill(pid, libc::SIGKILL);
}

#[test]
fn bad_arguments_are_refused_before_anything_changes() {
    let dir = TempDir::new("hard-args");
    let pf = dir.join("m.pid");
    assert_eq!(
        Pidfile::open_mode(&pf, 0o10000)
            .err()
            .and_then(|e| e.errno()),
        Some(libc::EINVAL)
    );
    assert!(!pf.exists());
    let sock = dir.join("s.sock");
    let e = daemonkit::listen::unix(sock.to_str().unwrap(), 0o10000).unwrap_err();
    assert_eq!(e.errno().or(Some(libc::EINVAL)), Some(libc::EINVAL), "{e}");
    assert!(!sock.exists());
    // The umask is checked before anything (in the foreground: nothing forks).
    let e = daemonkit::daemon::Daemonize::new()
        .foreground(true)
        .keep_stdio()
        .umask(0o1000)
        .start();
    assert!(e.is_err(), "a umask of 01000 was accepted");
    // Names: refused without touching the ids (we are still whoever we were).
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    for bad in [
        " nobody",
        "nobody ",
        "no body",
        "a:b",
        "-1",
        "+1",
        "nobody\u{1}",
    ] {
        let e = daemonkit::privileges::drop(bad, None).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{bad:?}: {e}");
    }
    assert!(matches!(
        daemonkit::privileges::drop("4242", None),
        Err(Error::UnknownUser(_))
    ));
    if uid == 0 {
        let e = daemonkit::privileges::drop("root", None).unwrap_err();
        assert!(e.to_string().contains("uid 0"), "{e}");
    }
    // SAFETY: as above.
    assert_eq!(unsafe { (libc::geteuid(), libc::getegid()) }, (uid, gid));
}

/// `/proc/PID/status`'s `SigBlk:` mask.
fn sigblk(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let v = s.lines().find_map(|l| l.strip_prefix("SigBlk:"))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

/// Traces `pid` (which must not be traced yet) until its next fork and returns the new
/// child's pid and its signal mask as it was created, before it ran a single instruction;
/// then detaches from both. All ptrace calls happen on the calling thread.
fn mask_at_next_fork(pid: i32, armed: std::sync::mpsc::Sender<()>) -> Result<(i32, u64), String> {
    // SAFETY: ptrace and waitpid on a child process of ours, with valid out-pointers.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, libc::PTRACE_O_TRACEFORK) != 0 {
            return Err(format!("PTRACE_SEIZE: {}", std::io::Error::last_os_error()));
        }
        armed.send(()).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let mut st = 0;
            if libc::waitpid(pid, &mut st, libc::__WALL) != pid {
                return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
            }
            if !libc::WIFSTOPPED(st) {
                return Err(format!("the traced process ended: {st:#x}"));
            }
            if st >> 16 == libc::PTRACE_EVENT_FORK {
                let mut child: libc::c_ulong = 0;
                libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut child);
                let child = child as i32;
                // The new child starts in a ptrace stop: its mask is the one fork gave it.
                let mut cst = 0;
                libc::waitpid(child, &mut cst, libc::__WALL);
                let mask = sigblk(child);
                libc::ptrace(libc::PTRACE_DETACH, child, 0, 0);
                libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
                return mask.map(|m| (child, m)).ok_or_else(|| "no SigBlk".into());
            }
            // A signal-delivery stop: deliver it; any other stop: go on.
            let sig = if st >> 16 == 0 { libc::WSTOPSIG(st) } else { 0 };
            libc::ptrace(libc::PTRACE_CONT, pid, 0, sig);
        }
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
        Err("no fork within 20 s".into())
    }
}

#[test]
fn an_upgrade_fork_keeps_signals_blocked_until_the_child_resets() {
    // `dk_upgrade`/`exec::spawn` forks the new generation. A signal that reached the child
    // before its reset would run the parent's handler there and be lost: the mask the child
    // is created with must block every signal (its reset unblocks them). ptrace stops the
    // child at its creation, so the mask is read before it runs at all.
    let dir = TempDir::new("hard-fork");
    let port = free_port();
    let pf = dir.join("app.pid");
    let mut child = Command::new(testprog())
        .arg("single")
        .env("DK_ADDR", format!("127.0.0.1:{port}"))
        .env("DK_PID", &pf)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut reaper = Reaper::default();
    reaper.add(pid);
    assert!(wait_until(Duration::from_secs(10), || served_pid(port) == Some(pid)));
    let (tx, rx) = std::sync::mpsc::channel();
    let tracer = std::thread::spawn(move || mask_at_next_fork(pid, tx));
    rx.recv_timeout(Duration::from_secs(5))
        .expect("tracer armed");
    kill(pid, libc::SIGUSR2); // the upgrade: spawn forks the new generation
    let (newgen, mask) = tracer.join().unwrap().expect("the fork seen");
    reaper.add(newgen);
    let bit = |s: i32| 1u64 << (s - 1);
    let want = [
        libc::SIGHUP,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGCHLD,
        libc::SIGINT,
    ];
    println!("new generation {newgen} created with SigBlk {mask:016x}");
    for s in want {
        assert!(
            mask & bit(s) != 0,
            "signal {s} not blocked in the new child: {mask:016x}"
        );
    }
    // It goes on as usual: the new generation takes over, the old one exits 0.
    let exited = wait_until(Duration::from_secs(15), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    assert!(exited, "the old generation did not hand over");
    assert!(wait_until(Duration::from_secs(5), || served_pid(port) == Some(newgen)));
    assert_eq!(
        sigblk(newgen),
        Some(0),
        "the new generation kept a blocked mask"
    );
    kill(newgen, libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(10), || !alive(newgen)));
}
