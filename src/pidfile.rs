//! PID files that cannot lie (C: `dk_pidfile_*`): BSD pidfile(3) semantics, hardened.
//!
//! [`Pidfile::open`] runs before the fork: `O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`, regular files
//! only, `flock(LOCK_EX|LOCK_NB)` held for the daemon's whole life, the path re-checked
//! after locking. [`Pidfile::write`] runs after it. Liveness is the lock, never
//! `kill(pid, 0)`: [`Pidfile::check`], [`Pidfile::kill`] and [`Pidfile::stop`] report or
//! signal a pid only when the kernel shows it holds the lock (one of its fds has the file
//! open with the exclusive flock, `/proc/PID/fdinfo`), and signal it through a pidfd, so
//! neither a recycled pid nor a pid named in a file whose lock somebody else took is ever
//! signalled. A leftover file (an unclean exit, a directory not writable after a privilege
//! drop) is harmless: its lock is free, the next start takes it over.
//!
//! ```
//! use daemonkit::pidfile::{Pidfile, State};
//! let path = std::env::temp_dir().join(format!("doc-{}.pid", std::process::id()));
//! let mut pf = Pidfile::open(&path)?;
//! pf.write()?;
//! assert_eq!(Pidfile::check(&path)?, State::Running(std::process::id() as i32));
//! // A second open is refused, naming the holder:
//! match Pidfile::open(&path) {
//!     Err(daemonkit::Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
//!     other => panic!("{:?}", other.map(|_| ())),
//! }
//! pf.remove()?; // ours: unlinked
//! assert_eq!(Pidfile::check(&path)?, State::Absent);
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::imp::pidfile::{check, kill_pinned, pidfd_signal, OpenError, PidFile, ERR_FOREIGN};
use crate::sys::{self, Errno};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub use crate::imp::pidfile::State;

fn c_path(path: &Path) -> Result<CString> {
    crate::error::c_path("pid file", path)
}

/// `EACCES`/`EPERM` from the holder check: the pid's fds could not be inspected.
fn unverifiable(path: &Path, e: Errno) -> Error {
    if e.0 == libc::EACCES || e.0 == libc::EPERM {
        return Error::Io {
            context: format!(
                "pid file {}: locked, but whether the pid in it holds the lock cannot be \
                 verified (its /proc entries are not readable: run as root or as the \
                 daemon's user); nobody signalled",
                path.display()
            ),
            source: std::io::Error::from_raw_os_error(e.0),
        };
    }
    ctx(path, e)
}

fn ctx(path: &Path, e: Errno) -> Error {
    Error::Io {
        context: format!("pid file {}", path.display()),
        source: std::io::Error::from_raw_os_error(e.0),
    }
}

/// The default PID file location for a program `name`: `$XDG_RUNTIME_DIR/NAME.pid` when that
/// is set, `/run/NAME.pid` as root, else `/tmp/NAME.pid`.
pub fn default_path(name: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&d).join(format!("{name}.pid"));
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        PathBuf::from(format!("/run/{name}.pid"))
    } else {
        PathBuf::from(format!("/tmp/{name}.pid"))
    }
}

/// A locked PID file (the Rust layer). Dropping it removes the file when this process
/// owns it (wrote its pid), and otherwise just closes it.
pub struct Pidfile {
    inner: Option<PidFile>,
    path: PathBuf,
}

impl Pidfile {
    /// Opens and locks `path` (created with mode 0644). `Error::AlreadyRunning { pid }` when
    /// a live instance holds it.
    pub fn open(path: impl AsRef<Path>) -> Result<Pidfile> {
        Pidfile::open_mode(path, 0o644)
    }

    /// [`Pidfile::open`] with the mode a new file gets (before the umask; C:
    /// `dk_pidfile_open`'s `mode`). A mode above 0o7777 is refused (`EINVAL`).
    pub fn open_mode(path: impl AsRef<Path>, mode: u32) -> Result<Pidfile> {
        let path = path.as_ref().to_path_buf();
        if mode > 0o7777 {
            return Err(Error::invalid(format!(
                "pid file {}: mode {mode:#o} is not a permission mode (at most 0o7777)",
                path.display()
            )));
        }
        let c = c_path(&path)?;
        match PidFile::open(&c, mode) {
            Ok(inner) => Ok(Pidfile {
                inner: Some(inner),
                path,
            }),
            Err(OpenError {
                errno: Errno(libc::EEXIST),
                pid,
            }) => Err(Error::AlreadyRunning {
                path,
                pid: pid.max(0) as u32,
            }),
            Err(OpenError {
                errno: Errno(ERR_FOREIGN),
                pid,
            }) => Err(Error::LockedByOther {
                path,
                pid: (pid > 0).then_some(pid as u32),
            }),
            Err(OpenError {
                errno: Errno(libc::EINVAL),
                ..
            }) => Err(Error::Io {
                context: format!("pid file {}: not a regular file", path.display()),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            }),
            Err(e) => Err(ctx(&path, e.errno)),
        }
    }
    /// Writes this process's pid.
    pub fn write(&mut self) -> Result<()> {
        let path = self.path.clone();
        self.inner
            .as_mut()
            .expect("open")
            .write()
            .map_err(|e| ctx(&path, e))
    }
    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The core handle (for the supervisor and upgrades).
    pub(crate) fn core(&self) -> &PidFile {
        self.inner
            .as_ref()
            .expect("a Pidfile is open for its whole life")
    }
    /// The core handle, mutably (the supervisor rewrites it on rollback).
    pub(crate) fn core_mut(&mut self) -> &mut PidFile {
        self.inner
            .as_mut()
            .expect("a Pidfile is open for its whole life")
    }
    /// Closes without removing (in a forked child).
    pub fn close(mut self) {
        if let Some(p) = self.inner.take() {
            p.close();
        }
    }
    /// Removes the file if this process owns it, then closes.
    pub fn remove(mut self) -> Result<()> {
        let path = self.path.clone();
        match self.inner.take() {
            Some(p) => p.remove().map_err(|e| ctx(&path, e)),
            None => Ok(()),
        }
    }
    /// Whether a daemon holds `path` (from the lock).
    pub fn check(path: impl AsRef<Path>) -> Result<State> {
        let path = path.as_ref();
        check(&c_path(path)?).map_err(|e| unverifiable(path, e))
    }
    /// Signals the holder of `path` while it provably holds the lock; returns its pid.
    pub fn kill(path: impl AsRef<Path>, sig: i32) -> Result<i32> {
        let (pid, _pinned) = Pidfile::kill_pinned(path.as_ref(), sig)?;
        Ok(pid)
    }
    /// [`Pidfile::kill`], keeping the pidfd that pinned the signalled process (`None` on
    /// a kernel without pidfds).
    fn kill_pinned(path: &Path, sig: i32) -> Result<(i32, Option<OwnedFd>)> {
        match kill_pinned(&c_path(path)?, sig) {
            // SAFETY: kill_pinned hands over a pidfd of its own; nothing else closes it.
            Ok((pid, pfd)) => Ok((
                pid,
                (pfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pfd) }),
            )),
            Err(Errno(libc::ESRCH | libc::ENOENT)) => Err(Error::NotRunning {
                path: path.to_path_buf(),
            }),
            Err(Errno(ERR_FOREIGN)) => Err(Error::LockedByOther {
                path: path.to_path_buf(),
                pid: match Pidfile::check(path) {
                    Ok(State::Foreign(p)) => Some(p as u32),
                    _ => None,
                },
            }),
            Err(e) => Err(unverifiable(path, e)),
        }
    }
}

/// What [`Pidfile::stop`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Nobody held the lock; the stale pid in the file (if any) was not signalled.
    NotRunning {
        /// The pid the file named, if any.
        stale: Option<i32>,
    },
    /// After TERM the holder released the lock and exited.
    Terminated(i32),
    /// The holder outlived the timeout and was killed; its file is left stale.
    Killed(i32),
}

impl Stopped {
    /// `NotRunning`, with the pid a stale file at `path` still names (not signalled).
    pub fn not_running(path: &Path) -> Stopped {
        let stale = match Pidfile::check(path) {
            Ok(State::Stale(p)) => p,
            _ => None,
        };
        Stopped::NotRunning { stale }
    }

    /// One line for a `stop` command, `timeout` being the one given to [`Pidfile::stop`]:
    /// `stopped (PID: N)`, `not running`, `not running; the pid file P is stale (stale
    /// PID: N, not signalled)`, or `PID N still running after T s: killed` (adding that
    /// the file is left stale when the killed daemon could not remove it).
    pub fn describe(&self, path: &Path, timeout: std::time::Duration) -> String {
        match *self {
            Stopped::NotRunning { stale: Some(p) } => format!(
                "not running; the pid file {} is stale (stale PID: {p}, not signalled)",
                path.display()
            ),
            Stopped::NotRunning { stale: None } => "not running".into(),
            Stopped::Terminated(pid) => format!("stopped (PID: {pid})"),
            Stopped::Killed(pid) => {
                let mut s = format!(
                    "PID {pid} still running after {:.1}s: killed",
                    timeout.as_secs_f64()
                );
                if path.exists() {
                    s += &format!(
                        "; the pid file {} is left stale (the next start takes it over)",
                        path.display()
                    );
                }
                s
            }
        }
    }
}

const POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether less than `wait` has passed since `start`. (Not `Instant::now() + wait`: that
/// panics for a `wait` beyond what an `Instant` holds, as `daemonkit stop --timeout 1e19`
/// gave; such a wait simply never ends.)
fn within(start: std::time::Instant, wait: std::time::Duration) -> bool {
    start.elapsed() < wait
}

/// Whether the process behind `pidfd` has exited (its pidfd polls readable), waiting up
/// to `wait` for it. Without a pidfd the answer is yes: only the lock can tell then.
fn exited(pidfd: Option<&OwnedFd>, wait: std::time::Duration) -> bool {
    match pidfd {
        Some(fd) => matches!(
            sys::poll_one(fd.as_raw_fd(), libc::POLLIN, wait.as_millis() as i64),
            Ok(r) if r != 0
        ),
        None => true,
    }
}

impl Pidfile {
    /// [`Pidfile::kill`], retrying for up to `wait` while the holder has locked the file
    /// but not written its pid yet.
    pub fn signal_holder(
        path: impl AsRef<Path>,
        sig: i32,
        wait: std::time::Duration,
    ) -> Result<i32> {
        Ok(Pidfile::signal_holder_pinned(path.as_ref(), sig, wait)?.0)
    }

    fn signal_holder_pinned(
        path: &Path,
        sig: i32,
        wait: std::time::Duration,
    ) -> Result<(i32, Option<OwnedFd>)> {
        let start = std::time::Instant::now();
        loop {
            match Pidfile::kill_pinned(path, sig) {
                Err(Error::Io { source, .. })
                    if source.raw_os_error() == Some(libc::EAGAIN) && within(start, wait) =>
                {
                    std::thread::sleep(POLL)
                }
                r => return r,
            }
        }
    }

    /// Waits up to `timeout` for nobody to hold the lock at `path`; true when released.
    pub fn wait_released(path: impl AsRef<Path>, timeout: std::time::Duration) -> Result<bool> {
        Pidfile::wait_gone(path.as_ref(), None, timeout)
    }

    /// Waits up to `timeout` until nobody holds the lock at `path` and the process pinned
    /// by `pidfd` (if any) has exited; true when both hold.
    fn wait_gone(
        path: &Path,
        pidfd: Option<&OwnedFd>,
        timeout: std::time::Duration,
    ) -> Result<bool> {
        let start = std::time::Instant::now();
        loop {
            let released = !matches!(Pidfile::check(path)?, State::Running(_));
            if released && exited(pidfd, std::time::Duration::ZERO) {
                return Ok(true);
            }
            if !within(start, timeout) {
                return Ok(false);
            }
            if released {
                exited(pidfd, POLL); // released but not exited: wait on the pidfd
            } else {
                std::thread::sleep(POLL);
            }
        }
    }

    /// Stops the daemon holding `path`: TERM, wait up to `timeout` until the lock is
    /// released and the signalled process has exited, then KILL and wait up to 5 s more.
    /// Never signals a pid whose lock is free: the process is pinned with a pidfd when it
    /// is signalled while holding the lock, and only that pidfd is used to KILL it later.
    /// (Waiting for the exit too matters: a daemon releases its lock a moment before it
    /// exits, and a caller that starts it again right away may still meet its sockets.)
    /// Errors when the signal cannot be sent or the holder survives KILL.
    pub fn stop(path: impl AsRef<Path>, timeout: std::time::Duration) -> Result<Stopped> {
        let path = path.as_ref();
        let wait = std::time::Duration::from_secs(2);
        let (pid, pidfd) = match Pidfile::signal_holder_pinned(path, libc::SIGTERM, wait) {
            Ok(p) => p,
            Err(Error::NotRunning { .. }) => return Ok(Stopped::not_running(path)),
            Err(e) => return Err(e),
        };
        if Pidfile::wait_gone(path, pidfd.as_ref(), timeout)? {
            return Ok(Stopped::Terminated(pid));
        }
        // KILL whoever holds the lock now (checked again), and the process TERM went to.
        let mut killed = match Pidfile::signal_holder(path, libc::SIGKILL, wait) {
            Ok(_) => true,
            // Somebody else holds the lock now: only the pinned process is killed.
            Err(Error::NotRunning { .. } | Error::LockedByOther { .. }) => false,
            Err(e) => return Err(e),
        };
        if let Some(fd) = &pidfd {
            if !exited(pidfd.as_ref(), std::time::Duration::ZERO) {
                killed |= pidfd_signal(fd.as_raw_fd(), libc::SIGKILL).is_ok();
            }
        }
        if Pidfile::wait_gone(path, pidfd.as_ref(), std::time::Duration::from_secs(5))? {
            return Ok(if killed {
                Stopped::Killed(pid)
            } else {
                Stopped::Terminated(pid)
            });
        }
        let context = match Pidfile::check(path)? {
            State::Running(holder) => format!(
                "pid file {}: PID {holder} still holds it after KILL",
                path.display()
            ),
            _ => format!(
                "pid file {}: PID {pid} released it but has not exited 5 s after KILL",
                path.display()
            ),
        };
        Err(Error::Io {
            context,
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        })
    }
}

/// `pid file P: locked by another process, not the pid in the file (PID N, not
/// signalled)` — the one text for [`State::Foreign`] and [`Error::LockedByOther`].
pub fn foreign_text(path: &Path, pid: Option<i32>) -> String {
    let pid = pid.map_or(String::new(), |p| format!(" (PID {p}, not signalled)"));
    format!(
        "pid file {}: locked by another process, not the pid in the file{pid}",
        path.display()
    )
}

impl State {
    /// One line for a `status` command: `running (PID: N)`, `dead, but the pid file P
    /// remains (stale PID: N)`, `not running`, or the [`foreign_text`].
    pub fn describe(&self, path: &Path) -> String {
        match self {
            State::Running(pid) if *pid > 0 => format!("running (PID: {pid})"),
            State::Running(_) => "running (PID not written yet)".into(),
            State::Stale(pid) => {
                let pid = pid.map_or(String::new(), |p| format!(" (stale PID: {p})"));
                format!("dead, but the pid file {} remains{pid}", path.display())
            }
            State::Foreign(pid) => foreign_text(path, Some(*pid)),
            State::Absent => "not running".into(),
        }
    }

    /// The LSB `status` exit code: 0 running, 1 dead with a stale PID file, 3 not running,
    /// 4 unknown (locked by a process other than the pid in the file).
    pub fn lsb_status(&self) -> u8 {
        match self {
            State::Running(_) => 0,
            State::Stale(_) => 1,
            State::Absent => 3,
            State::Foreign(_) => 4,
        }
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        if let Some(p) = self.inner.take() {
            if p.is_owner() {
                let _ = p.remove();
            } else {
                p.close();
            }
        }
    }
}
impl AsFd for Pidfile {
    /// The locked fd (close-on-exec).
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open as long as the Pidfile (closed only by close/remove/drop,
        // which consume it).
        unsafe { BorrowedFd::borrow_raw(self.core().fd()) }
    }
}

#[cfg(test)]
mod tests {
    use super::Pidfile;
    use std::time::Duration;

    /// Found by fuzz/fuzz_targets/cli_args.rs: `daemonkit stop --timeout=010350159644575050410`
    /// panicked with "overflow when adding duration to instant".
    #[test]
    fn a_wait_beyond_instant_does_not_panic() {
        let none = "/nonexistent-daemonkit-test/app.pid";
        assert!(matches!(
            Pidfile::wait_released(none, Duration::MAX),
            Ok(true)
        ));
        assert!(Pidfile::signal_holder(none, 0, Duration::MAX).is_err());
    }
}
