//! The `daemonkit` command's argument parsing (src/bin/daemonkit/args.rs, included as is):
//! the fuzzed bytes split on NUL are the arguments after the command name.
//!
//! `parse_run` (run/start, and restart with its `--timeout` hook) on success:
//! * PROGRAM is non-empty and is the tail of the arguments, right after `--` or starting at
//!   the first operand (an argument not starting with '-', or "-");
//! * workers in 1..=256, umask <= 0o777, `--pid`/`--chdir`/`--log` absolute, `--group` only
//!   with `--user`, listen names 1..=255 bytes without ':', env keys non-empty without '=';
//! * `run`'s stop timeout is the default (only `restart` sets it).
//!
//! `parse_ctl` (stop/status/reload): the pid file is absolute and the timeout is the default
//! unless `--timeout` is accepted. Every stop timeout parsed (`stop --timeout`, `restart
//! --timeout`) is usable by the library: `Pidfile::wait_released` on a missing file returns
//! at once. `wants_help` is true only when `--help`/`-h` (or
//! `--help=X`) is an argument.
//! Errors are non-empty messages.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/bin/daemonkit/args.rs"]
mod args;

use args::{parse_ctl, parse_run, seconds, wants_help, Config, DEFAULT_STOP_TIMEOUT};
use daemonkit::pidfile::Pidfile;
use daemonkit_fuzz::split_nul;
use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

/// What `stop`/`restart` do with their timeout once TERM is sent, on a file nobody holds.
fn usable_stop_timeout(t: Duration) {
    let none = std::env::temp_dir().join("daemonkit-fuzz-no-such-dir/none.pid");
    assert!(
        matches!(Pidfile::wait_released(&none, t), Ok(true)),
        "{t:?}"
    );
}

fn check_run(args: &[OsString], c: &Config) {
    assert!(!c.program.is_empty());
    let k = args.len() - c.program.len();
    assert_eq!(&args[k..], &c.program[..], "PROGRAM is not the tail");
    let first = c.program[0].as_bytes();
    let after_dashes = k > 0 && args[k - 1] == "--";
    let operand = !first.starts_with(b"-") || first == b"-";
    assert!(
        after_dashes || operand,
        "PROGRAM {first:?} starts at an option"
    );
    assert!((1..=256).contains(&c.workers), "workers {}", c.workers);
    if let Some(m) = c.umask {
        assert!(m <= 0o777);
    }
    for p in [&c.pid, &c.chdir, &c.log].into_iter().flatten() {
        assert!(p.is_absolute(), "{p:?}");
    }
    assert!(c.group.is_none() || c.user.is_some());
    for l in &c.listen {
        assert!(!l.name.is_empty() && l.name.len() <= 255 && !l.name.contains(':'));
    }
    for (k, _) in &c.env {
        assert!(!k.is_empty() && !k.contains('='), "env key {k:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = split_nul(data)
        .into_iter()
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();

    match parse_run(args.clone(), |_, _, _, _| Ok(false)) {
        Ok(c) => {
            check_run(&args, &c);
            assert_eq!(c.stop_timeout, DEFAULT_STOP_TIMEOUT);
        }
        Err(e) => assert!(!e.is_empty()),
    }
    // restart: --timeout is the stop timeout.
    let restart = parse_run(args.clone(), |c, opt, a, inline| {
        if opt == "--timeout" {
            c.stop_timeout = seconds(opt, &a.value(opt, inline)?)?;
            return Ok(true);
        }
        Ok(false)
    });
    match restart {
        Ok(c) => {
            check_run(&args, &c);
            assert!(c.launch_timeout.is_none());
            usable_stop_timeout(c.stop_timeout);
        }
        Err(e) => assert!(!e.is_empty()),
    }

    for (cmd, with_timeout) in [("stop", true), ("status", false)] {
        match parse_ctl(cmd, args.clone(), with_timeout) {
            Ok((pid, timeout)) => {
                assert!(pid.is_absolute(), "{pid:?}");
                if !with_timeout {
                    assert_eq!(timeout, DEFAULT_STOP_TIMEOUT);
                }
                usable_stop_timeout(timeout);
                assert!(args.iter().any(|a| a.as_bytes().starts_with(b"--pid")));
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }

    if wants_help(&args) {
        // `--help=X` counts too: every long option takes the `--name=VALUE` form.
        assert!(args
            .iter()
            .any(|a| a == "--help" || a == "-h" || a.as_bytes().starts_with(b"--help=")));
    }
});
