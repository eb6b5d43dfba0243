//! Socket activation: `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`.
//!
//! * `listen::parse_listen_env` (pure) against a model: `Ok(None)` when `LISTEN_PID` is unset
//!   or another pid or `LISTEN_FDS` unset, `Some(n)` with n <= 4096 for a matching pid and a
//!   decimal count, `EINVAL` otherwise and nothing else;
//! * `listen::fd_names` (the Rust layer's `LISTEN_FDNAMES` split): exactly n names, none with
//!   ':', the i-th equal to the i-th ':'-separated field (missing ones empty);
//! * the real `listen::listen_fds` with the fuzzed values in the environment: its result is
//!   the pure parser's, `EBADF` exactly when one of fds 3..3+n is not open, `ENAMETOOLONG`
//!   when the names do not fit the buffer, the names copied NUL-terminated otherwise, and
//!   `UNSET_ENV` removes the three variables.
//!
//! Input: a flags byte, a names-buffer size byte, then `LISTEN_PID\0LISTEN_FDS\0LISTEN_FDNAMES`.
#![no_main]

use daemonkit::__fuzz::listen::{
    fd_names, listen_fds, parse_listen_env, MAX_LISTEN_FDS, UNSET_ENV,
};
use daemonkit_fuzz::{decimal, errno_name, split_nul};
use libfuzzer_sys::fuzz_target;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Once;

const VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Opens a few fds so that both the open and the `EBADF` paths are reachable.
fn open_some_fds() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for _ in 0..6 {
            // SAFETY: opening /dev/null with a valid C string; the fd is leaked on purpose.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        }
    });
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD on any number is harmless.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// The model of `parse_listen_env`.
fn model(pid: Option<&[u8]>, fds: Option<&[u8]>, my_pid: u64) -> Result<Option<usize>, i32> {
    let Some(pid) = pid else { return Ok(None) };
    let pid = decimal(pid).ok_or(libc::EINVAL)?;
    if pid != my_pid {
        return Ok(None);
    }
    let Some(fds) = fds else { return Ok(None) };
    match decimal(fds) {
        Some(n) if n <= MAX_LISTEN_FDS as u64 => Ok(Some(n as usize)),
        _ => Err(libc::EINVAL),
    }
}

fn check_fd_names(names: &[u8], n: usize) {
    let got = fd_names(names, n);
    assert_eq!(got.len(), n);
    let fields: Vec<&[u8]> = if names.is_empty() {
        vec![b""]
    } else {
        names.split(|&c| c == b':').collect()
    };
    for (i, name) in got.iter().enumerate() {
        assert!(!name.contains(':'), "{name:?}");
        let want = fields
            .get(i)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        assert_eq!(*name, want, "name {i} of {names:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    open_some_fds();
    let (flags, bufsize, rest) = (data[0], data[1] as usize, &data[2..]);
    let parts = split_nul(rest);
    let my_pid = std::process::id() as u64;

    // Which variables are set (flag bits 0..2); bit 3 puts our own pid (with the fuzzed
    // bytes' whitespace/zeros kept around it when they are such) into LISTEN_PID.
    let pid_value: Vec<u8> = if flags & 8 != 0 {
        let mut v = parts[0]
            .iter()
            .copied()
            .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'0'))
            .collect::<Vec<u8>>();
        v.extend_from_slice(my_pid.to_string().as_bytes());
        v
    } else {
        parts[0].to_vec()
    };
    let get = |i: usize| -> Option<&[u8]> {
        if flags & (1 << i) == 0 {
            return None;
        }
        match i {
            0 => Some(&pid_value),
            _ => Some(parts.get(i).copied().unwrap_or(b"")),
        }
    };
    let (pid, fds, names) = (get(0), get(1), get(2));

    // The pure parsers.
    let pure = parse_listen_env(pid, fds, my_pid).map_err(|e| e.0);
    assert_eq!(pure, model(pid, fds, my_pid), "pid {pid:?} fds {fds:?}");
    // fd_names: the count from the fuzzed LISTEN_FDS byte-wise, kept small.
    check_fd_names(names.unwrap_or(b""), fds.map_or(0, |f| f.len() % 8));
    if let Ok(Some(n)) = pure {
        check_fd_names(names.unwrap_or(b""), n.min(64));
    }

    // The real thing, through the environment (the fuzz process is single-threaded).
    for (i, var) in VARS.iter().enumerate() {
        match get(i) {
            Some(v) => std::env::set_var(var, OsStr::from_bytes(v)),
            None => std::env::remove_var(var),
        }
    }
    let call_flags =
        if flags & 16 != 0 { UNSET_ENV } else { 0 } | if flags & 32 != 0 { 4 } else { 0 };
    let mut buf = vec![0xffu8; bufsize % 48];
    let got = listen_fds(call_flags, &mut buf).map_err(|e| e.0);
    let want = if call_flags & !UNSET_ENV != 0 {
        Err(libc::EINVAL)
    } else {
        match pure {
            Err(e) => Err(e),
            Ok(None) => Ok(0),
            Ok(Some(n)) => {
                if !(3..3 + n as i32).all(is_open) {
                    Err(libc::EBADF)
                } else {
                    match names {
                        Some(v) if !buf.is_empty() && v.len() >= buf.len() => {
                            Err(libc::ENAMETOOLONG)
                        }
                        _ => Ok(n),
                    }
                }
            }
        }
    };
    assert_eq!(
        got,
        want,
        "listen_fds: {:?} vs {:?}",
        got.map_err(errno_name),
        want.map_err(errno_name)
    );
    if call_flags & !UNSET_ENV == 0 {
        if let Some(&first) = buf.first() {
            match (got, names) {
                (Ok(n), Some(v)) if pure == Ok(Some(n)) => {
                    assert_eq!(&buf[..v.len()], v);
                    assert_eq!(buf[v.len()], 0);
                }
                (Ok(_), _) => assert_eq!(first, 0, "names not emptied"),
                _ => {}
            }
        }
        if call_flags & UNSET_ENV != 0 {
            for var in VARS {
                assert!(std::env::var_os(var).is_none(), "{var} still set");
            }
        }
    }
    for var in VARS {
        std::env::remove_var(var);
    }
});
