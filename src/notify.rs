//! sd_notify, the watchdog and s6's readiness fd (C: `dk_notify*`, `dk_watchdog_usec`).
//! `$NOTIFY_SOCKET` may be a path or an abstract `@name`; without it nothing is sent.
//!
//! ```
//! # std::env::remove_var("NOTIFY_SOCKET");
//! use daemonkit::notify;
//! assert!(!notify::send("STATUS=starting")?); // not under a notify socket: nothing sent
//! assert!(notify::watchdog_usec().is_none());
//! // s6: daemon::ready() writes "\n" to the notification fd and closes it.
//! let (r, w) = std::os::unix::net::UnixStream::pair()?;
//! notify::ready_fd(w.into())?;
//! daemonkit::daemon::ready()?;
//! let mut got = String::new();
//! std::io::Read::read_to_string(&mut &r, &mut got)?;
//! assert_eq!(got, "\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{c_str, Error, Result};
use crate::imp::notify as imp;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

/// Sends `state` (`READY=1`, `STATUS=…`, several lines allowed) as one datagram to
/// `$NOTIFY_SOCKET` (C: `dk_notify`); `Ok(false)` when it is not set.
pub fn send(state: &str) -> Result<bool> {
    let c = c_str("notify state", state)?;
    imp::notify(c.to_bytes()).map_err(|e| Error::os("NOTIFY_SOCKET", e))
}

/// `RELOADING=1` with `MONOTONIC_USEC` (systemd `Type=notify-reload`); send `READY=1`
/// (or call [`crate::daemon::ready`]) when done. C: `dk_notify_reloading`.
pub fn reloading() -> Result<bool> {
    imp::reloading().map_err(|e| Error::os("NOTIFY_SOCKET", e))
}

/// `STOPPING=1` (C: `dk_notify_stopping`).
pub fn stopping() -> Result<bool> {
    imp::stopping().map_err(|e| Error::os("NOTIFY_SOCKET", e))
}

/// The systemd watchdog interval in microseconds when enabled for this process (send
/// `WATCHDOG=1` at about half of it); C: `dk_watchdog_usec`.
pub fn watchdog_usec() -> Option<u64> {
    imp::watchdog_usec()
}

/// s6's readiness protocol: [`crate::daemon::ready`] also writes `\n` to `fd` (the service
/// directory's `notification-fd`) and closes it (C: `dk_notify_fd`). The library owns the
/// fd from here on; workers and exec'd programs do not get it.
pub fn ready_fd(fd: OwnedFd) -> Result<()> {
    let raw = fd.into_raw_fd();
    imp::set_ready_fd(raw).map_err(|e| {
        crate::sys::close(raw);
        Error::os(format!("notification fd {raw}"), e)
    })
}

/// [`ready_fd`] for a descriptor known only by its number, as s6 hands it over: the
/// service's `notification-fd` file names it and the run script passes it on the command
/// line (`--notify-fd 3`). The descriptor must be one this process inherited and nothing
/// else in it uses (like the `LISTEN_FDS` numbers [`crate::listen::fds`] takes over): the
/// library owns it from here on. `EBADF` for 0..2 (stdio), a negative or a closed fd.
pub fn ready_fd_inherited(fd: RawFd) -> Result<()> {
    if (0..3).contains(&fd) {
        return Err(Error::os(
            format!("notification fd {fd} (0..2 are stdio)"),
            crate::sys::Errno(libc::EBADF),
        ));
    }
    imp::set_ready_fd(fd).map_err(|e| Error::os(format!("notification fd {fd}"), e))
}
