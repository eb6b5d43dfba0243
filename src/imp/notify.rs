//! sd_notify without libsystemd: state strings sent as one datagram to `$NOTIFY_SOCKET`
//! (a path, or an abstract `@name` whose address length is `offsetof(sun_path) + len`), and
//! the watchdog interval from `WATCHDOG_USEC`/`WATCHDOG_PID`.

use crate::sys::{self, Errno, Res};
use core::ffi::{c_int, CStr};

const SUN_PATH_OFFSET: usize = 2; // offsetof(struct sockaddr_un, sun_path) on Linux

/// Parses a `NOTIFY_SOCKET` value into a socket address and its length. `@name` is abstract
/// (the `@` becomes a NUL byte, no trailing NUL counted); `/path` is a filesystem socket.
/// `EAFNOSUPPORT` for other forms (relative paths, `vsock:`), `ENAMETOOLONG` when too long,
/// `EINVAL` when empty.
pub fn parse_addr(v: &[u8]) -> Res<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut sa: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if v.len() < 2 {
        return Err(Errno(libc::EINVAL));
    }
    if v.contains(&0) {
        return Err(Errno(libc::EINVAL));
    }
    let abstract_ = match v[0] {
        b'@' => true,
        b'/' => false,
        _ => return Err(Errno(libc::EAFNOSUPPORT)),
    };
    let cap = sa.sun_path.len();
    if abstract_ {
        if v.len() > cap {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        for (i, &b) in v.iter().enumerate().skip(1) {
            sa.sun_path[i] = b as libc::c_char;
        }
        Ok((sa, (SUN_PATH_OFFSET + v.len()) as libc::socklen_t))
    } else {
        if v.len() >= cap {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        for (i, &b) in v.iter().enumerate() {
            sa.sun_path[i] = b as libc::c_char;
        }
        Ok((sa, (SUN_PATH_OFFSET + v.len() + 1) as libc::socklen_t))
    }
}

/// Sends `state` (e.g. `READY=1`, several lines allowed) to `$NOTIFY_SOCKET`. Returns
/// `Ok(false)` when the variable is unset (nothing to do), `Ok(true)` when sent.
pub fn notify(state: &[u8]) -> Res<bool> {
    let Some(v) = sys::getenv(c"NOTIFY_SOCKET") else {
        return Ok(false);
    };
    if v.is_empty() {
        return Ok(false);
    }
    send_to(v, state).map(|_| true)
}

/// Sends one datagram to the notify address `addr`.
pub fn send_to(addr: &[u8], state: &[u8]) -> Res<()> {
    let (sa, len) = parse_addr(addr)?;
    // SAFETY: plain socket creation.
    let fd =
        sys::cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: state is a valid buffer; sa is a valid sockaddr_un of length len.
    let r = unsafe {
        libc::sendto(
            fd,
            state.as_ptr().cast(),
            state.len(),
            libc::MSG_NOSIGNAL,
            (&sa as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    let e = Errno::last();
    sys::close(fd);
    if r < 0 {
        return Err(e);
    }
    Ok(())
}

/// `READY=1`.
pub fn ready() -> Res<bool> {
    notify(b"READY=1")
}

/// `RELOADING=1` with `MONOTONIC_USEC=<now>` as systemd's `Type=notify-reload` wants.
pub fn reloading() -> Res<bool> {
    let mut b = sys::Buf::<64>::new();
    b.push(b"RELOADING=1\nMONOTONIC_USEC=")
        .push_u64(sys::now_us());
    notify(b.as_bytes())
}

/// `STOPPING=1`.
pub fn stopping() -> Res<bool> {
    notify(b"STOPPING=1")
}

/// The watchdog interval in microseconds when systemd asks this process for keep-alives
/// (`WATCHDOG_USEC` set and `WATCHDOG_PID` absent or equal to our pid); `None` otherwise.
pub fn watchdog_usec() -> Option<u64> {
    let usec = sys::parse_u64(sys::getenv(c"WATCHDOG_USEC")?)?;
    if usec == 0 {
        return None;
    }
    if let Some(p) = sys::getenv(c"WATCHDOG_PID") {
        if sys::parse_u64(p) != Some(sys::getpid() as u64) {
            return None;
        }
    }
    Some(usec)
}

/// s6's readiness fd (the service's `notification-fd`): written and closed by [`ready`]'s
/// caller, `daemon::ready` (-1: none).
static READY_FD: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(-1);

/// Makes `daemon::ready` also write `\n` to `fd` and close it — s6's readiness protocol
/// (`notification-fd` in the service directory names the fd). The fd becomes close-on-exec
/// and the library's own (a daemonize or an fd sweep keeps it; workers do not get it).
/// `EBADF` for a negative or closed fd.
pub fn set_ready_fd(fd: c_int) -> Res<()> {
    if !sys::fd_valid(fd) {
        return Err(Errno(libc::EBADF));
    }
    sys::set_cloexec(fd, true)?;
    crate::imp::fds::register_private(fd);
    let old = READY_FD.swap(fd, core::sync::atomic::Ordering::SeqCst);
    if old >= 0 && old != fd {
        crate::imp::fds::unregister_private(old);
        sys::close(old);
    }
    Ok(())
}

/// Writes `\n` to the fd given to [`set_ready_fd`] and closes it (once). Async-signal-safe.
pub(crate) fn ready_fd_write() {
    let fd = READY_FD.swap(-1, core::sync::atomic::Ordering::SeqCst);
    if fd >= 0 {
        let _ = sys::write_all(fd, b"\n");
        crate::imp::fds::unregister_private(fd);
        sys::close(fd);
    }
}

/// In a forked worker: the readiness fd is the master's (closed with the library's other
/// fds); forget it. Async-signal-safe.
pub(crate) fn forget_ready_fd_in_child() {
    READY_FD.store(-1, core::sync::atomic::Ordering::SeqCst);
}

/// Sends a C string state.
pub fn notify_cstr(state: &CStr) -> Res<c_int> {
    notify(state.to_bytes()).map(|s| s as c_int)
}
