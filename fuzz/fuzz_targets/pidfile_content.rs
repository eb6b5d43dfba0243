//! `daemonkit::pidfile::parse_pid`: PID file content (what `stop`/`status`/`check` read).
//!
//! * the result is `None` or a pid in 1..=i32::MAX;
//! * it is `Some(p)` exactly when the input, trimmed of ASCII whitespace, is 1 to 20 decimal
//!   digits (leading zeros allowed) whose value is p (an independent model);
//! * what `PidFile::write` writes (`sys::Buf::push_u64` then `\n`) parses back to the pid, and
//!   any u64 formatted by `push_u64` parses back through `sys::parse_u64`.
#![no_main]

use daemonkit::__fuzz::pidfile::parse_pid;
use daemonkit::sys::{self, Buf};
use daemonkit_fuzz::{decimal, trim};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let got = parse_pid(data);
    if let Some(p) = got {
        assert!(p >= 1, "pid {p} out of range for {data:?}");
        // The trimmed input is p's digits, possibly after leading zeros.
        let t = trim(data);
        let digits = p.to_string();
        let zeros = t
            .len()
            .checked_sub(digits.len())
            .expect("fewer digits than the pid");
        assert!(t[..zeros].iter().all(|&c| c == b'0'), "{data:?} -> {p}");
        assert_eq!(&t[zeros..], digits.as_bytes(), "{data:?} -> {p}");
        assert!(t.len() <= 20);
    }
    let want = decimal(data)
        .filter(|&v| (1..=i32::MAX as u64).contains(&v))
        .map(|v| v as i32);
    assert_eq!(got, want, "parse_pid({data:?})");
    assert_eq!(sys::parse_u64(data), decimal(data), "parse_u64({data:?})");

    // Round trips through the library's own formatter.
    if data.len() >= 8 {
        let v = u64::from_le_bytes(data[..8].try_into().unwrap());
        let mut b = Buf::<24>::new();
        b.push_u64(v).push(b"\n");
        assert!(!b.overflow);
        assert_eq!(b.as_bytes(), format!("{v}\n").as_bytes());
        assert_eq!(sys::parse_u64(b.as_bytes()), Some(v));
        let pid = v as i32;
        let mut b = Buf::<24>::new();
        b.push_u64(pid as u64).push(b"\n");
        if pid >= 1 {
            assert_eq!(parse_pid(b.as_bytes()), Some(pid));
        } else {
            // 0, or a negative pid seen as a huge u64: never a valid pid.
            assert_eq!(parse_pid(b.as_bytes()), None);
        }
    }
});
