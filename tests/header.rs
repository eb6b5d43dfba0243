//! The committed header must be exactly what cbindgen generates from the current source,
//! and every exported function must appear in it.
//!
//! The generator is its own package (`packaging/header-gen`, `cargo run -p daemonkit-header`)
//! so that crates depending on daemonkit never compile cbindgen; this test runs its `--check`
//! in a target dir of its own (`target/header`: the test build holds the main one's lock).
//! `DAEMONKIT_UPDATE_HEADER=1 cargo test --test header` rewrites the header instead.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn committed_header_is_fresh() {
    let mode = if std::env::var("DAEMONKIT_UPDATE_HEADER").as_deref() == Ok("1") {
        "--write"
    } else {
        "--check"
    };
    let out = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args([
            "run",
            "--quiet",
            "--locked",
            "-p",
            "daemonkit-header",
            "--",
            mode,
        ])
        .env(
            "CARGO_TARGET_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/header"),
        )
        .current_dir(ROOT)
        .output()
        .expect("cannot run cargo");
    assert!(
        out.status.success(),
        "cargo run -p daemonkit-header -- {mode} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn committed() -> String {
    std::fs::read_to_string(format!("{ROOT}/include/daemonkit.h"))
        .expect("include/daemonkit.h is missing")
}

#[test]
fn every_capi_function_is_in_the_header() {
    let header = committed();
    let dir = format!("{ROOT}/src/capi");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in src.lines() {
            let l = line.trim_start();
            if let Some(rest) = l
                .strip_prefix("pub unsafe extern \"C\" fn ")
                .or_else(|| l.strip_prefix("pub extern \"C\" fn "))
            {
                names.push(rest.split('(').next().unwrap().to_string());
            }
        }
    }
    assert!(names.len() > 40, "found only {} functions", names.len());
    for n in &names {
        assert!(n.starts_with("dk_"), "{n} lacks the dk_ prefix");
        assert!(
            header.contains(&format!(" {n}(")) || header.contains(&format!("*{n}(")),
            "{n} missing from the header"
        );
    }
}
