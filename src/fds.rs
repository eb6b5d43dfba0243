//! File descriptors (C: `dk_fd_*`): close-on-exec, closing every fd above a floor, waiting
//! on several fds at once, and passing fds over a Unix socket (`SCM_RIGHTS`).
//!
//! ```
//! use daemonkit::fds;
//! use std::os::fd::AsFd;
//! use std::os::unix::net::UnixStream;
//! let (a, b) = UnixStream::pair()?;
//! let (passed, _keep) = UnixStream::pair()?;
//! fds::set_cloexec(&passed, true)?;
//! fds::send(&a, b"take this", &[passed.as_fd()])?;
//! let ready = fds::poll_in(&[b.as_fd()], Some(std::time::Duration::from_secs(1)))?;
//! assert_eq!(ready, vec![true]);
//! let mut buf = [0u8; 64];
//! let (n, got) = fds::recv(&b, &mut buf, 4)?;
//! assert_eq!((&buf[..n], got.len()), (&b"take this"[..], 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{Error, Result};
use crate::imp::{fds as imp, listen};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Sets (`on`) or clears close-on-exec (C: `dk_fd_set_cloexec`).
pub fn set_cloexec(fd: impl AsFd, on: bool) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    imp::set_cloexec(raw, on).map_err(|e| Error::os(format!("fd {raw}: close-on-exec"), e))
}

/// Closes every fd `>= first` except `keep` and the library's own (a locked PID file, the
/// signal pipe); C: `dk_fd_close_from`. Whatever else owns one of those fds must not use it
/// afterwards.
pub fn close_from(first: i32, keep: &[BorrowedFd<'_>]) -> Result<()> {
    let keep: Vec<i32> = keep.iter().map(|f| f.as_raw_fd()).collect();
    imp::close_range_except(first, &keep)
        .map_err(|e| Error::os(format!("close fds from {first}"), e))
}

/// Sleeps until one of `fds` is readable (or hung up) or `timeout` passes (`None`: no
/// timeout); says which are. A signal handler's `EINTR` returns with none ready. For a loop
/// that waits on a listener and [`crate::signals::Signals`] together without a timer.
pub fn poll_in(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let t = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as i32);
    // SAFETY: p is a valid array of pollfds for its length.
    let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, t) };
    if n < 0 {
        let e = crate::sys::Errno::last();
        if e.0 != libc::EINTR {
            return Err(Error::os("poll", e));
        }
    }
    Ok(p.iter().map(|x| n > 0 && x.revents != 0).collect())
}

/// Sends `data` and `fds` over a Unix socket (C: `dk_fd_send`); returns the bytes sent.
pub fn send(sock: impl AsFd, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    listen::send_fds(sock.as_fd().as_raw_fd(), data, &raw).map_err(|e| Error::os("fd send", e))
}

/// Receives data into `buf` and up to `max_fds` fds (C: `dk_fd_recv`); the fds are
/// close-on-exec and owned by the caller.
pub fn recv(sock: impl AsFd, buf: &mut [u8], max_fds: usize) -> Result<(usize, Vec<OwnedFd>)> {
    let mut fds = vec![-1; max_fds.min(listen::MAX_PASS_FDS)];
    let (n, nfds) = listen::recv_fds(sock.as_fd().as_raw_fd(), buf, &mut fds)
        .map_err(|e| Error::os("fd recv", e))?;
    // SAFETY: recv_fds handed us these fds; nothing else owns them.
    let owned = fds[..nfds]
        .iter()
        .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    Ok((n, owned))
}
