//! Capabilities kept across the privilege drop, and no_new_privs (issue 16), as root dropping
//! to `nobody`: a port below 1024 binds with `NET_BIND_SERVICE` kept and is refused without
//! it; `/proc/PID/status` shows exactly the kept capability in CapPrm/CapEff/CapAmb and
//! NoNewPrivs 1 — also after a HUP re-exec and after a USR2 upgrade (the Rust test program,
//! single mode); and `daemonkit run --user nobody --cap NET_BIND_SERVICE --no-new-privs`
//! drives a real `python3` that binds port 81. 127.0.0.1 only; every process stopped by the
//! pid the test started.

mod common;
use common::cli::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `CapPrm CapEff CapAmb NoNewPrivs` of `pid`.
fn caps_of(pid: i32) -> String {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["CapPrm:", "CapEff:", "CapAmb:", "NoNewPrivs:"]
        .iter()
        .map(|k| {
            st.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap_or("?")
                .trim()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const KEPT: &str = "0000000000000400 0000000000000400 0000000000000400 1";

/// A directory nobody may write (the PID file is removed by the dropped process).
fn nobody_dir(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::os::unix::fs::chown(&d.0, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn count(log: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

#[test]
fn kept_capability_survives_reexec_and_upgrade() {
    if !need_root("the privilege drop") {
        return;
    }
    let dir = nobody_dir("caps");
    let pf = dir.join("t.pid");
    let log = dir.join("t.log");
    let port = free_port();
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(testprog())
        .arg("single")
        .env("DK_ADDR", format!("127.0.0.1:{port}"))
        .env("DK_PID", &pf)
        .env("DK_USER", "nobody")
        .env("DK_GROUP", "nogroup")
        .env("DK_CAPS", "NET_BIND_SERVICE")
        .env("DK_NNP", "1")
        .env("DK_TRY_BIND", "127.0.0.1:80")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut reaper = Reaper::default();
    reaper.add(pid);
    assert!(
        wait_until(Duration::from_secs(10), || get(port, "/").is_ok()),
        "never served: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(caps_of(pid), KEPT, "after the drop");
    assert_eq!(
        count(&log, "try-bind 127.0.0.1:80: ok"),
        1,
        "port 80 as nobody"
    );
    println!(
        "after the drop: CapPrm CapEff CapAmb NoNewPrivs = {}",
        caps_of(pid)
    );

    // HUP: the test program re-execs itself (same pid) as nobody; the capability came
    // through execve (ambient) and the drop verifies it again.
    kill(pid, libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || count(&log, "listening on") >= 2
            && count(&log, "try-bind 127.0.0.1:80: ok") >= 2
            && get(port, "/").is_ok()),
        "re-exec: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(caps_of(pid), KEPT, "after the re-exec");
    println!("after the re-exec (pid {pid}): {}", caps_of(pid));

    // USR2: a new generation (its child) takes over the listener and the PID file.
    kill(pid, libc::SIGUSR2);
    let mut new = 0;
    assert!(
        wait_until(Duration::from_secs(15), || {
            new = pid_in(&pf).unwrap_or(0);
            new > 0 && new != pid && get(port, "/").is_ok()
        }),
        "upgrade: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    reaper.add(new);
    let _ = child.wait(); // the old generation exits once the new one is ready
    assert_eq!(caps_of(new), KEPT, "after the upgrade");
    assert_eq!(
        count(&log, "try-bind 127.0.0.1:80: ok"),
        3,
        "port 80 in every image"
    );
    println!("after the upgrade (pid {new}): {}", caps_of(new));
    kill(new, libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(10), || !alive(new)));
}

/// `daemonkit run --once --user nobody [extra] -- python3 -c <bind 127.0.0.1:81>`.
fn run_python_81(extra: &[&str]) -> (Option<i32>, String) {
    let py = "import socket\n\
              s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
              s.bind(('127.0.0.1', 81)); print('bound 81')\n\
              st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n\
              print(' '.join(st[k].strip() for k in ('CapPrm', 'CapEff', 'CapAmb', 'NoNewPrivs')))\n";
    let mut args = vec!["run", "--once", "--user", "nobody", "--group", "nogroup"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "/usr/bin/python3", "-c", py]);
    let o = dk(&args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn the_command_keeps_net_bind_service_for_program() {
    if !need_root("the privilege drop") || skip_without_python() {
        return;
    }
    let (code, out) = run_python_81(&["--cap", "NET_BIND_SERVICE", "--no-new-privs"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("bound 81") && out.contains(KEPT), "{out}");
    println!(
        "--cap NET_BIND_SERVICE --no-new-privs: python3 {}",
        out.lines().take(2).collect::<Vec<_>>().join(" / ")
    );
    let (code, out) = run_python_81(&[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    println!("without --cap: exit {code:?}, PermissionError");
    // A capability that would undo the drop, and a misspelt one, are refused up front.
    let o = dk(&[
        "run",
        "--once",
        "--user",
        "nobody",
        "--cap",
        "SETUID",
        "--",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("SETUID, SETGID and SETPCAP cannot be kept"),
        "{}",
        text(&o)
    );
    let o = dk(&[
        "run",
        "--user",
        "nobody",
        "--cap",
        "NET_BIND",
        "--",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("'NET_BIND' is not a capability name"),
        "{}",
        text(&o)
    );
}
