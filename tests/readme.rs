//! The README's quick starts compile and run as written: each code block is a verbatim copy
//! of `examples/c/quickstart.c` / `examples/quickstart.rs`, the C one is compiled here with
//! `cc` against the header and the shipped library, the Rust one by cargo as an example; both
//! are started, must daemonize and report ready, and stop on TERM.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme_has(file: &str) {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let code = std::fs::read_to_string(root().join(file)).unwrap();
    assert!(
        readme.contains(code.trim_end()),
        "README.md does not contain {file} verbatim"
    );
}

fn exercise(bin: &std::path::Path) {
    let dir = TempDir::new("quick");
    let pidfile = dir.join("q.pid");
    let out = Command::new(bin).arg(&pidfile).output().unwrap();
    let pid = pid_in(&pidfile).unwrap_or(0);
    let mut reaper = Reaper::default();
    reaper.add(pid);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pid > 0 && alive(pid), "daemon not running");
    let second = Command::new(bin).arg(&pidfile).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("already running (PID: {pid})")),
        "{err}"
    );
    daemonkit::pidfile::Pidfile::kill(&pidfile, libc::SIGTERM).unwrap();
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    assert!(!pidfile.exists());
}

#[test]
fn c_quickstart() {
    readme_has("examples/c/quickstart.c");
    if !Command::new("make")
        .args(["-s", "lib"])
        .current_dir(root())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("make lib failed");
        }
        eprintln!("skipping: make lib failed");
        return;
    }
    let dir = TempDir::new("qc");
    let bin = dir.join("quickstart");
    let lib = root().join("target/lib");
    let st = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .arg(root().join("examples/c/quickstart.c"))
        .arg(format!("-I{}", root().join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-ldaemonkit")
        .arg("-o")
        .arg(&bin)
        .status()
        .unwrap();
    assert!(st.success(), "the C quick start does not compile");
    exercise(&bin);
}

#[test]
fn rust_quickstart() {
    readme_has("examples/quickstart.rs");
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/quickstart");
    assert!(bin.exists(), "cargo test builds the quickstart example");
    exercise(&bin);
}

/// All `.rs` (or other) files under `dir`, concatenated.
fn sources(dir: &str, ext: &str) -> String {
    fn walk(p: &std::path::Path, ext: &str, out: &mut String) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, ext, out);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut s = String::new();
    walk(&root().join(dir), ext, &mut s);
    s
}

/// The last name of a table cell: `daemon::Daemonize::start` -> `start`, `$pf->write` ->
/// `write`, `dk.signal.next` -> `next`.
fn last_name(cell: &str) -> String {
    let code = cell.split('`').nth(1).unwrap_or(cell);
    code.rsplit([':', '.', '>']).next().unwrap().to_string()
}

#[test]
fn naming_table_names_exist_in_every_language() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let header = std::fs::read_to_string(root().join("include/daemonkit.h")).unwrap();
    let perl = sources("bindings/perl/lib", "pm");
    let zig = std::fs::read_to_string(root().join("bindings/zig/src/daemonkit.zig")).unwrap();
    let rust = sources("src", "rs");
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| concept | C | Perl | Zig | Rust |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        rows.len() >= 40,
        "naming table not found or short: {} rows",
        rows.len()
    );
    let mut missing = Vec::new();
    for row in &rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let [concept, c, pl, z, r] = cells[..] else {
            panic!("row without 5 cells: {row}");
        };
        let c = last_name(c);
        if !header.contains(&format!("{c}(")) {
            missing.push(format!("{concept}: C {c}"));
        }
        let p = last_name(pl);
        if !(perl.contains(&format!("sub {p} ")) || perl.contains(&format!("::{p}'"))) {
            missing.push(format!("{concept}: Perl {p}"));
        }
        let zn = last_name(z);
        if !(zig.contains(&format!("pub fn {zn}(")) || zig.contains(&format!("pub const {zn} ="))) {
            missing.push(format!("{concept}: Zig {zn}"));
        }
        let rn = last_name(r);
        if !(rust.contains(&format!("pub fn {rn}("))
            || rust.contains(&format!("pub fn {rn}<"))
            || rust.contains(&format!("pub struct {rn} ")))
        {
            missing.push(format!("{concept}: Rust {rn}"));
        }
    }
    assert!(
        missing.is_empty(),
        "names in the README table that do not exist: {missing:?}"
    );
    println!(
        "naming table: {} rows, every name found in C, Perl, Zig and Rust",
        rows.len()
    );
}
