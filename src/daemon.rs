//! Daemonize with readiness (daemon(7)); C: `dk_daemonize`, `dk_ready`, `dk_fail`.
//!
//! [`Daemonize::start`] closes inherited fds (except those kept and the library's own),
//! resets signal dispositions and the mask, forks, `setsid`s, forks again (on x86-64 the
//! first child is a vfork child, so a large heap's page tables are copied once), points stdio at
//! `/dev/null`, sets the umask and changes directory. The launching process stays behind
//! on a readiness pipe: it exits 0 when the daemon calls [`ready`], prints the message and
//! exits with the code given to [`fail`], and exits non-zero with an explanation when the
//! daemon dies first or a timeout expires. With [`Daemonize::foreground`] every step but the
//! forks runs, and [`ready`] also sends `READY=1` to `$NOTIFY_SOCKET` (systemd
//! `Type=notify`, containers).
//!
//! In the foreground nothing forks, so this runs as a doctest:
//!
//! ```
//! use daemonkit::daemon::{self, Daemonize, Role};
//! let role = Daemonize::new()
//!     .foreground(true)
//!     .keep_stdio()
//!     .no_close_fds()
//!     .no_chdir()
//!     .start()?;
//! assert_eq!(role, Role::Foreground);
//! daemon::ready()?; // the launcher (here: nobody) is told; READY=1 to $NOTIFY_SOCKET if set
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{c_path, Error, Result};
use crate::imp::daemon as imp;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::imp::daemon::Role;

/// Builder for daemonizing (C: `dk_daemonize`).
#[derive(Default)]
pub struct Daemonize<'a> {
    flags: u32,
    keep: Vec<BorrowedFd<'a>>,
    chdir: Option<PathBuf>,
    umask: Option<u32>,
    timeout: Option<Duration>,
}

impl<'a> Daemonize<'a> {
    /// Defaults: fork, close fds, reset signals, stdio to /dev/null, chdir `/`, umask kept.
    pub fn new() -> Self {
        Self::default()
    }

    fn flag(mut self, f: u32, on: bool) -> Self {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
        self
    }

    /// Stay in the foreground (systemd `Type=notify`, containers, s6): every step but the
    /// forks and the stdio redirection.
    pub fn foreground(self, yes: bool) -> Self {
        self.flag(imp::FOREGROUND, yes)
    }
    /// Keep stdin/stdout/stderr as they are.
    pub fn keep_stdio(self) -> Self {
        self.flag(imp::KEEP_STDIO, true)
    }
    /// Do not close inherited fds.
    pub fn no_close_fds(self) -> Self {
        self.flag(imp::NO_CLOSE_FDS, true)
    }
    /// Do not change directory.
    pub fn no_chdir(self) -> Self {
        self.flag(imp::NO_CHDIR, true)
    }
    /// Do not reset signal dispositions and the mask.
    pub fn no_signal_reset(self) -> Self {
        self.flag(imp::NO_SIGNAL_RESET, true)
    }
    /// Keep this fd open (a listener); the library's own (a PID file) are kept anyway.
    pub fn keep_fd(mut self, fd: &'a impl AsFd) -> Self {
        self.keep.push(fd.as_fd());
        self
    }
    /// Directory to change to (default `/`).
    pub fn chdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chdir = Some(dir.into());
        self
    }
    /// Umask to set (0..=0o777; default: unchanged).
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }
    /// How long the launcher waits for readiness (default: as long as the daemon lives).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Daemonizes; returns in the daemon (or, in the foreground, a re-exec'd image or an
    /// upgrade's new generation, in the calling process) with its role. The launcher never
    /// returns: it exits with the daemon's verdict. Errors name the culprit (`daemonize:
    /// fork: ...`, `daemonize: /dev/null: ...`, `daemonize: directory /srv: ...`).
    pub fn start(self) -> Result<Role> {
        // A tokio runtime must not cross the fork (see `daemonkit::tokio`): refused, EDEADLK.
        #[cfg(feature = "tokio")]
        if self.flags & imp::FOREGROUND == 0 {
            crate::tokio::refuse_runtime_before_fork("daemonize")?;
        }
        let dir = match &self.chdir {
            Some(d) => Some(c_path("daemonize: directory", d)?),
            None => None,
        };
        let keep: Vec<i32> = self.keep.iter().map(|f| f.as_raw_fd()).collect();
        let o = imp::Options {
            flags: self.flags,
            keep: &keep,
            chdir: dir.as_deref(),
            umask: self.umask.map_or(-1, |m| m.min(i32::MAX as u32) as i32),
            timeout_ms: self
                .timeout
                .map_or(0, |t| t.as_millis().clamp(1, u32::MAX as u128) as u32),
        };
        imp::daemonize(&o).map_err(|e| Error::os(format!("daemonize{}", self.culprit(e.0)), e))
    }

    /// What an errno from `daemonize` is about, as a message part (": /dev/null").
    fn culprit(&self, errno: i32) -> String {
        if errno == libc::EAGAIN || errno == libc::ENOMEM {
            return ": fork".into();
        }
        if errno == libc::EINVAL && self.umask.is_some_and(|m| m > 0o777) {
            return format!(": umask {:o}", self.umask.unwrap_or(0));
        }
        let redirect = self.flags & (imp::KEEP_STDIO | imp::FOREGROUND) == 0;
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null");
        if redirect && null.is_err() {
            return ": /dev/null".into();
        }
        if self.flags & imp::NO_CHDIR == 0 {
            let dir = self.chdir.as_deref().unwrap_or(Path::new("/"));
            if !dir.is_dir() {
                return format!(": directory {}", dir.display());
            }
        }
        String::new()
    }
}

/// Reports readiness (C: `dk_ready`): to the launcher (daemon), the old master (upgrade),
/// the master (worker); and, except in a worker, `\n` to s6's readiness fd
/// ([`crate::notify::ready_fd`]) and `READY=1` to `$NOTIFY_SOCKET` when set.
pub fn ready() -> Result<()> {
    imp::ready().map_err(|e| Error::os("ready: NOTIFY_SOCKET", e))
}

/// Reports a startup failure with an exit code (1..=255) and a message (C: `dk_fail`): the
/// launcher prints it and exits with the code. Exit afterwards.
pub fn fail(code: i32, msg: &str) -> Result<()> {
    imp::fail(code, msg.as_bytes()).map_err(|e| Error::os("fail", e))
}
