//! Listeners and socket activation (C: `dk_listen_*`, `dk_socket_*`): bind TCP and Unix
//! listeners with errors that name the address, bind a listener *pair* for zero-loss rolling
//! restarts, and take the sockets systemd (or a re-exec/upgrade) passed in `LISTEN_FDS`.
//!
//! ```
//! use daemonkit::listen;
//! let l = listen::tcp("127.0.0.1:0")?;
//! let name = listen::socket_name(&l)?;
//! assert!(name.starts_with("127.0.0.1:"));
//! assert_eq!(listen::socket_port(&l)?, l.local_addr().unwrap().port());
//! let taken = listen::tcp(&name).unwrap_err();
//! assert!(taken.to_string().starts_with(&format!("{name}: Address already in use")));
//! assert!(listen::fds(false)?.is_empty()); // no LISTEN_FDS here
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{c_str, Error, Result};
use crate::imp::listen as imp;
use crate::sys::Errno;
use core::ffi::CStr;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

bitflags::bitflags! {
    /// How [`tcp_with`] binds (C: `DK_LISTEN_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ListenFlags: u32 {
        /// Also set `SO_REUSEPORT`.
        const REUSEPORT = imp::REUSEPORT;
        /// Leave the fd inheritable across exec (no close-on-exec).
        const INHERIT = imp::INHERIT;
    }
}

/// The error of a bind, naming the address: `127.0.0.1:8080: Address already in use (os
/// error 98)` (the system's text says what happened; only EINVAL gets an explanation).
fn named(addr: &str, e: Errno) -> Error {
    if e.0 == libc::EINVAL {
        return Error::invalid(format!("{addr}: invalid listen address (want HOST:PORT)"));
    }
    Error::os(addr, e)
}

/// Binds and listens on `HOST:PORT` (`127.0.0.1:8080`, `[::1]:8080`, `:80`; port 0 picks
/// one), backlog 1024, `SO_REUSEADDR`, close-on-exec (C: `dk_listen_tcp`). Errors name the
/// address: `127.0.0.1:8080: Address already in use (os error 98)`.
pub fn tcp(addr: &str) -> Result<TcpListener> {
    tcp_with(addr, 0, ListenFlags::empty())
}

/// [`tcp`] with a backlog (`<= 0`: 1024) and flags.
pub fn tcp_with(addr: &str, backlog: i32, flags: ListenFlags) -> Result<TcpListener> {
    let fd = imp::tcp(addr.as_bytes(), backlog, flags.bits()).map_err(|e| named(addr, e))?;
    // SAFETY: fd is a fresh listening socket we own.
    Ok(unsafe { TcpListener::from_raw_fd(fd) })
}

/// Two `SO_REUSEPORT` listeners on `HOST:PORT` — one reuseport group, for
/// [`crate::supervisor::Supervisor::listener_pair`] (rolling restarts that lose no freshly
/// accepted connection). A plain bind probes the address first, so a port somebody already
/// listens on is refused as by [`tcp`]; port 0 picks one for both.
pub fn tcp_pair(addr: &str) -> Result<(TcpListener, TcpListener)> {
    let (a, b) = imp::tcp_pair(addr.as_bytes(), 0, 0).map_err(|e| named(addr, e))?;
    // SAFETY: both are fresh listening sockets we own.
    Ok(unsafe { (TcpListener::from_raw_fd(a), TcpListener::from_raw_fd(b)) })
}

/// Binds a Unix stream listener at `path` (`@name`: abstract), chmod to `mode` when
/// non-zero; a socket file left by a dead server is replaced (C: `dk_listen_unix`).
pub fn unix(path: &str, mode: u32) -> Result<UnixListener> {
    let c = c_str("unix socket", path)?;
    let fd = imp::unix(&c, mode, 0, 0).map_err(|e| named(path, e))?;
    // SAFETY: fd is a fresh listening socket we own.
    Ok(unsafe { UnixListener::from_raw_fd(fd) })
}

/// The sockets systemd (or a re-exec/upgrade) passed (`LISTEN_PID`/`LISTEN_FDS`, fds 3..)
/// with their `LISTEN_FDNAMES` names (empty when none were given); unsets the variables
/// when `unset_env` (C: `dk_listen_fds`). Empty when nothing was passed to this process.
pub fn fds(unset_env: bool) -> Result<Vec<(OwnedFd, String)>> {
    let mut names = vec![0u8; 65536];
    let n = imp::listen_fds(if unset_env { imp::UNSET_ENV } else { 0 }, &mut names)
        .map_err(|e| Error::os("LISTEN_FDS", e))?;
    let names = CStr::from_bytes_until_nul(&names)
        .map(CStr::to_bytes)
        .unwrap_or_default();
    Ok(fd_names(names, n)
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            // SAFETY: listen_fds verified these fds are open and ours.
            let fd = unsafe { OwnedFd::from_raw_fd(imp::LISTEN_FDS_START + i as i32) };
            (fd, name)
        })
        .collect())
}

/// The names of `n` passed fds from a `LISTEN_FDNAMES` value: split on ':', invalid UTF-8
/// replaced, extra names dropped, missing ones empty.
pub fn fd_names(names: &[u8], n: usize) -> Vec<String> {
    let names = String::from_utf8_lossy(names);
    let mut split = names.split(':');
    (0..n)
        .map(|_| split.next().unwrap_or("").to_string())
        .collect()
}

/// A bound socket's local address: `127.0.0.1:8080`, `[::1]:80`, `/run/app.sock`, `@name`
/// (C: `dk_socket_name`).
pub fn socket_name(fd: impl AsFd) -> Result<String> {
    let mut b = [0u8; 160];
    let raw = fd.as_fd().as_raw_fd();
    let n = imp::local_name(raw, &mut b).map_err(|e| Error::os(format!("fd {raw}"), e))?;
    Ok(String::from_utf8_lossy(&b[..n]).into_owned())
}

/// A bound TCP socket's local port (C: `dk_socket_port`).
pub fn socket_port(fd: impl AsFd) -> Result<u16> {
    let raw = fd.as_fd().as_raw_fd();
    imp::local_port(raw).map_err(|e| Error::os(format!("fd {raw}"), e))
}
