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
