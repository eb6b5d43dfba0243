//! The `daemonkit` command for the integration tests (tests/command.rs, tests/hardening.rs):
//! built once per run, staged where `nobody` can reach it, with the wrapped Python program.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `daemonkit` binary, built once per run with `--features cli` in its own target dir
/// (`target/cli`): building it inside `cargo test` would compile the library a second time,
/// with panic=abort, over the test build's unhashed artifacts (see Cargo.toml).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let dir = root().join("target/cli");
        let ok = Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .args([
                "build",
                "--quiet",
                "--features",
                "cli",
                "--bin",
                "daemonkit",
            ])
            .env("CARGO_TARGET_DIR", &dir)
            .current_dir(root())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "cargo build --features cli --bin daemonkit failed");
        let built = dir.join("debug/daemonkit");
        // daemonkit re-executes itself (and the wrapped program reads its script) after the
        // privilege drop: stage both where `nobody` may reach them, whatever the checkout's
        // permissions (a fresh clone may be 0700).
        let stage = stage_dir();
        let exe = stage.join("daemonkit");
        std::fs::copy(&built, &exe).unwrap();
        for f in ["lfd_http.py", "command-server.sh"] {
            std::fs::copy(root().join("tests/support").join(f), stage.join(f)).unwrap();
        }
        exe.display().to_string()
    })
}

/// A world-readable directory for this test process, removed when it exits.
pub fn stage_dir() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("dk-cli-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        extern "C" fn remove_stage() {
            let d = std::env::temp_dir().join(format!("dk-cli-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(d);
        }
        // SAFETY: registering a plain extern "C" function to run at process exit.
        unsafe { libc::atexit(remove_stage) };
        d
    })
    .clone()
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python() -> Option<PathBuf> {
    ["/usr/bin/python3", "/bin/python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub fn program() -> Option<Vec<String>> {
    let py = python()?;
    Some(vec![py.display().to_string(), {
        bin(); // stages the script beside the binary
        stage_dir().join("lfd_http.py").display().to_string()
    }])
}

pub fn dk(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run daemonkit")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `daemonkit start --pid PF --listen 127.0.0.1:PORT [extra] -- python3 lfd_http.py`.
pub fn start(pf: &Path, port: u16, extra: &[&str]) -> Output {
    let prog = program().expect("python3");
    let pfs = pf.display().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "start",
        "--pid",
        &pfs,
        "--listen",
        &listen,
        "--ready",
        "delay=300",
        "--graceful-timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend(prog.iter().map(String::as_str));
    dk(&args)
}

pub fn hello_pid(port: u16) -> Option<i32> {
    get(port, "/")
        .ok()?
        .trim()
        .strip_prefix("hello from command pid ")?
        .parse()
        .ok()
}

pub fn skip_without_python() -> bool {
    if python().is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("no /usr/bin/python3 (CI=true)");
        }
        eprintln!("skipping: no /usr/bin/python3");
        return true;
    }
    false
}
