//! Zero-downtime restarts of a single process (C: `dk_reexec`, `dk_upgrade`).
//!
//! * [`reexec`] replaces the program image, same pid: the listeners move to fds 3.. and are
//!   described by `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`, the locked PID file follows (its
//!   lock is never released), and [`crate::daemon::Daemonize::start`] in the new image does
//!   not fork again ([`crate::daemon::Role::Foreground`]).
//! * [`upgrade`] starts the new program as a child generation with the same fds and waits
//!   for its [`crate::daemon::ready`]: on success the caller drains and exits; on failure or
//!   timeout the new generation is killed, the PID file names the caller again, and it keeps
//!   serving.
//!
//! A prefork master does both through [`crate::supervisor::Supervisor::upgrade`] (USR2).
//!
//! An upgrade to a program that fails its startup comes back with that program's message,
//! and the caller goes on:
//!
//! ```
//! use daemonkit::exec;
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//! let listener = daemonkit::listen::tcp("127.0.0.1:0")?;
//! let err = exec::upgrade(&["/bin/false"], &[listener.as_fd()], None, None, Duration::from_secs(5))
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("upgrade"), "{err}");
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{c_str, Error, Result};
use crate::imp::daemon::MAX_MESSAGE;
use crate::imp::exec as imp;
use crate::pidfile::Pidfile;
use core::ffi::c_char;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// An owned, NULL-terminated C argument vector (for the core, which takes `char *const[]`).
pub(crate) struct CArgv {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CArgv {
    /// Builds one from `args` (`args[0]` is the path executed); an error for an interior NUL
    /// or an empty list.
    pub(crate) fn new<S: AsRef<OsStr>>(args: &[S]) -> Result<CArgv> {
        if args.is_empty() {
            return Err(Error::invalid("empty argument vector"));
        }
        let strings = args
            .iter()
            .map(|a| {
                CString::new(a.as_ref().as_bytes()).map_err(|_| {
                    Error::invalid(format!(
                        "argument {:?}: holds a NUL byte",
                        a.as_ref().to_string_lossy()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(core::ptr::null());
        Ok(CArgv {
            _strings: strings,
            ptrs,
        })
    }

    /// The `char *const argv[]` pointer, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// This program's absolute path (from `/proc/self/exe`) followed by its original
/// arguments: what a re-exec or an upgrade should run (C has no counterpart: a C program
/// keeps its `argv`). Resolve it at start, before the daemon changes directory.
pub fn self_argv() -> Result<Vec<OsString>> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|source| Error::Io {
        context: "/proc/self/exe".into(),
        source,
    })?;
    let mut v = vec![exe.into_os_string()];
    v.extend(std::env::args_os().skip(1));
    Ok(v)
}

/// The raw fds of `fds`, for the core (which checks each is open).
fn raw_fds(fds: &[BorrowedFd<'_>]) -> Vec<i32> {
    fds.iter().map(|f| f.as_raw_fd()).collect()
}

/// Re-executes this process (same pid) with `argv`, passing `listeners` as fds 3.. (named
/// by `names`, colon-separated, for `LISTEN_FDNAMES`) and the locked PID file (C:
/// `dk_reexec`). Returns only on failure, with every fd as it was.
pub fn reexec<S: AsRef<OsStr>>(
    argv: &[S],
    listeners: &[BorrowedFd<'_>],
    names: Option<&str>,
    pidfile: Option<&Pidfile>,
) -> Error {
    let a = match CArgv::new(argv) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let names = match names.map(|n| c_str("listener names", n)).transpose() {
        Ok(n) => n,
        Err(e) => return e,
    };
    let fds = raw_fds(listeners);
    let spec = imp::Spec {
        argv: a.as_ptr(),
        fds: &fds,
        names: names.as_deref(),
        pidfile_fd: pidfile.map_or(-1, |p| p.as_fd().as_raw_fd()),
    };
    let what = format!("re-exec {}", argv[0].as_ref().to_string_lossy());
    match imp::reexec(&spec) {
        Ok(()) => Error::invalid(format!("{what}: returned")),
        Err(e) => Error::os(what, e),
    }
}

/// Single-process upgrade (C: `dk_upgrade`): starts `argv` as a new generation with the
/// listeners and the PID file and waits up to `timeout` for its readiness; returns its pid
/// (drain, then exit 0 without removing the PID file: it is the new generation's). On
/// failure it was killed, the PID file names this process again, and the error carries the
/// new generation's own message when it sent one (`upgrade: config: bad port`).
pub fn upgrade<S: AsRef<OsStr>>(
    argv: &[S],
    listeners: &[BorrowedFd<'_>],
    names: Option<&str>,
    pidfile: Option<&mut Pidfile>,
    timeout: Duration,
) -> Result<u32> {
    let a = CArgv::new(argv)?;
    let names = names.map(|n| c_str("listener names", n)).transpose()?;
    let fds = raw_fds(listeners);
    let pf = pidfile.map(|p| p.core_mut());
    let spec = imp::Spec {
        argv: a.as_ptr(),
        fds: &fds,
        names: names.as_deref(),
        pidfile_fd: pf.as_ref().map_or(-1, |p| p.fd()),
    };
    let mut msg = [0u8; MAX_MESSAGE];
    let mut len = 0;
    let t = timeout.as_millis().clamp(1, u32::MAX as u128) as u32;
    match imp::upgrade(&spec, pf, t, &mut msg, &mut len) {
        Ok(pid) => Ok(pid as u32),
        Err(e) if len > 0 => Err(Error::os(
            format!("upgrade: {}", String::from_utf8_lossy(&msg[..len])),
            e,
        )),
        Err(e) => Err(Error::os(
            format!(
                "upgrade: {}: the new generation was not ready",
                argv[0].as_ref().to_string_lossy()
            ),
            e,
        )),
    }
}
