//! Runs the black-box conformance suite (`tests/conformance/conformance.py`) against every
//! example server whose toolchain is present, and proves the suite catches broken servers
//! (the C example's deliberately faulty variants). Under `CI=true` a missing example or
//! toolchain fails instead of skipping.

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn run(cmd: &mut Command) -> bool {
    match cmd.status() {
        Ok(s) => s.success(),
        Err(_) => false,
    }
}

/// The shipped C libraries (`make lib`, its own cargo target dir), built once per run.
fn build_lib() -> bool {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DONE.get_or_init(|| {
        run(Command::new("make")
            .arg("-s")
            .arg("lib")
            .current_dir(root()))
    })
}

/// The library and the C example, built once per run.
fn build_c() -> bool {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DONE.get_or_init(|| {
        build_lib()
            && run(Command::new("make")
                .arg("-s")
                .current_dir(root().join("examples/c")))
    })
}

/// Runs the suite; returns (exit success, output).
fn suite(server: &str, lang: &str, only: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/conformance/conformance.py"))
        .arg("--server")
        .arg(server)
        .arg("--lang")
        .arg(lang);
    if let Some(o) = only {
        cmd.arg("--only").arg(o);
    }
    if lang == "perl" {
        cmd.env("DAEMONKIT_LIB", root().join("target/lib/libdaemonkit.so"));
    }
    let out = cmd.current_dir(root()).output().expect("python3");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    print!("{text}");
    (out.status.success(), text)
}

fn check(server: &str, lang: &str) {
    let (ok, text) = suite(server, lang, None);
    assert!(ok, "conformance suite failed for {lang}");
    assert!(!text.contains("SKIP ") || !ci(), "rows skipped under CI");
}

#[test]
fn c_example_shared_and_static() {
    if !build_c() {
        return missing("cannot build the C example (make, cc)");
    }
    check("examples/c/build/dk-hello", "c");
    check("examples/c/build/dk-hello-static", "c");
}

#[test]
fn suite_catches_broken_servers() {
    if !build_c() {
        return missing("cannot build the C example (make, cc)");
    }
    let (ok, text) = suite(
        "examples/c/build/dk-hello-faulty-hup",
        "c",
        Some("hup-single"),
    );
    assert!(
        !ok && text.contains("FAIL c hup-single"),
        "a server ignoring HUP passed hup-single"
    );
    let (ok, text) = suite(
        "examples/c/build/dk-hello-faulty-pidfile",
        "c",
        Some("daemonize-ready"),
    );
    assert!(
        !ok && text.contains("FAIL c daemonize-ready"),
        "a server writing its PID file before the fork passed"
    );
}

#[test]
fn rust_example() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/dk-hello-rs");
    if !bin.exists() {
        return missing("dk-hello-rs not built (cargo test builds examples)");
    }
    check(bin.to_str().unwrap(), "rust");
}

/// The tokio example (hyper 1.x), built here with the `tokio` feature into this test's own
/// target dir (`cargo test` builds only the examples without required features).
#[test]
fn tokio_example() {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let target = profile_dir.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "--quiet",
        "--features",
        "tokio",
        "--example",
        "dk-hello-tokio",
    ])
    .env("CARGO_TARGET_DIR", target)
    .current_dir(root());
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    if !run(&mut cmd) {
        return missing("cargo build --features tokio --example dk-hello-tokio failed");
    }
    let bin = profile_dir.join("examples/dk-hello-tokio");
    check(bin.to_str().unwrap(), "rust-tokio");
}

#[test]
fn perl_example() {
    let have = run(Command::new("perl").args([
        "-MFFI::Platypus",
        "-MIO::Async::Loop",
        "-MHTTP::Parser::XS",
        "-e1",
    ]));
    if !have {
        return missing("perl with FFI::Platypus, IO::Async and HTTP::Parser::XS (tests/setup.sh installs them)");
    }
    if !build_lib() {
        return missing("cannot build libdaemonkit (make lib)");
    }
    check("perl examples/perl/dk-hello.pl", "perl");
}

#[test]
fn zig_example() {
    if !run(Command::new("python3").args(["-m", "ziglang", "version"])) {
        return missing("zig (pip install ziglang; tests/setup.sh installs it)");
    }
    if !build_lib() {
        return missing("cannot build libdaemonkit (make lib)");
    }
    let dir = root().join("examples/zig");
    assert!(
        run(Command::new("python3")
            .args(["-m", "ziglang", "build"])
            .current_dir(&dir)),
        "zig build failed"
    );
    let bin = dir.join("zig-out/bin/dk-hello");
    assert!(Path::new(&bin).exists());
    check(bin.to_str().unwrap(), "zig");
}

/// The example servers do no daemon plumbing of their own: fork, setsid, PID file locking,
/// setuid, sigaction and waitpid happen only inside libdaemonkit.
#[test]
fn examples_have_no_hand_rolled_plumbing() {
    let calls = [
        "fork(",
        "setsid(",
        "flock(",
        "setuid(",
        "seteuid(",
        "setresuid(",
        "setgid(",
        "setgroups(",
        "sigaction(",
        "waitpid(",
    ];
    let mut files = vec![
        root().join("examples/c/dk-hello.c"),
        root().join("examples/perl/dk-hello.pl"),
    ];
    for dir in ["examples/rust", "examples/zig/src"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            // plumbing_test.zig is the Zig example's own version of this check (it names them).
            if matches!(p.extension().and_then(|x| x.to_str()), Some("rs" | "zig"))
                && !p.ends_with("plumbing_test.zig")
            {
                files.push(p);
            }
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            for c in calls {
                // a call, not a longer identifier ending in the same letters (dk_..., ignore_sigpipe...)
                let hit = code.match_indices(c).any(|(i, _)| {
                    i == 0
                        || !code.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && code.as_bytes()[i - 1] != b'_'
                });
                assert!(!hit, "{}:{}: direct call {c}: {line}", f.display(), n + 1);
            }
        }
        // Perl spells them differently.
        if f.extension().and_then(|x| x.to_str()) == Some("pl") {
            for bad in [
                "POSIX::setsid",
                "POSIX::setuid",
                "POSIX::setgid",
                "$SIG{CHLD}",
                "flock ",
                "waitpid ",
                " fork;",
                "fork()",
            ] {
                assert!(!text.contains(bad), "{}: uses {bad}", f.display());
            }
        }
    }
    println!("checked {} example sources", files.len());
}
