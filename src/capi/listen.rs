//! C ABI: listeners, socket activation and fd passing (`dk_listen_*`, `dk_socket_*`,
//! `dk_fd_send`/`dk_fd_recv`), over [`crate::imp::listen`].

use super::{int_slice, path_arg};
use crate::imp::listen;
use crate::sys;
use core::ffi::{c_char, c_int};

/// `dk_listen_tcp`: also set `SO_REUSEPORT`.
pub const DK_LISTEN_REUSEPORT: u32 = 1;
/// `dk_listen_tcp`/`dk_listen_unix`: leave the fd inheritable across exec (no close-on-exec).
pub const DK_LISTEN_INHERIT: u32 = 2;
/// `dk_listen_fds`: unset `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` afterwards.
pub const DK_LISTEN_FDS_UNSET: u32 = 1;
/// First fd passed by socket activation.
pub const DK_LISTEN_FDS_START: c_int = 3;

/// Binds and listens on a TCP address `"HOST:PORT"`: `127.0.0.1:8080`, `[::1]:8080`,
/// `*:80` or `:80` (any IPv4), `localhost:80`; port 0 picks a free port (read it back with
/// `dk_socket_port`). Numeric hosts only (no DNS). `SO_REUSEADDR` always; flags
/// `DK_LISTEN_REUSEPORT`, `DK_LISTEN_INHERIT`. `backlog` <= 0 means 1024. Returns the
/// listening fd (close-on-exec unless inherited). Errors: `-EINVAL` NULL or malformed
/// address, unknown flags; `-EADDRINUSE` port in use; `-EACCES` privileged port;
/// `-EADDRNOTAVAIL` not a local address; `-ENAMETOOLONG` an address of 256 bytes or more. Messages should name the address, e.g.
/// `127.0.0.1:8080: address already in use`.
#[no_mangle]
pub unsafe extern "C" fn dk_listen_tcp(addr: *const c_char, backlog: c_int, flags: u32) -> c_int {
    // SAFETY: addr is NULL or a C string.
    match unsafe { sys::cstr_arg(addr, 256) } {
        Ok(a) => match listen::tcp(a.to_bytes(), backlog, flags) {
            Ok(fd) => fd,
            Err(e) => e.to_c(),
        },
        Err(e) => e.to_c(),
    }
}

/// Binds and listens on a Unix stream socket at `path` (`@name` for the abstract
/// namespace), chmod to `mode` when non-zero. A socket file left by a dead server is
/// replaced; one that somebody still accepts on, or a non-socket file, gives `-EADDRINUSE`
/// untouched. Flags: `DK_LISTEN_INHERIT`. Returns the fd. Errors: `-EINVAL` NULL, relative or
/// empty path, unknown flags, `mode` above 07777 (not a file mode); `-ENAMETOOLONG` longer than 107 bytes; socket/bind/listen
/// errnos (`-EMFILE` also when a stale socket file is there and no fd is left to probe it).
#[no_mangle]
pub unsafe extern "C" fn dk_listen_unix(
    path: *const c_char,
    mode: u32,
    backlog: c_int,
    flags: u32,
) -> c_int {
    // SAFETY: path_ is NULL or a C string.
    match unsafe { path_arg(path) } {
        Ok(p) => match listen::unix(p, mode, backlog, flags) {
            Ok(fd) => fd,
            Err(e) => e.to_c(),
        },
        Err(e) => e.to_c(),
    }
}

/// Returns the local TCP port of socket `fd` (> 0 once bound), or `-EBADF`/`-ENOTSOCK`/
/// `-EAFNOSUPPORT` (not TCP).
#[no_mangle]
pub extern "C" fn dk_socket_port(fd: c_int) -> c_int {
    match listen::local_port(fd) {
        Ok(p) => p as c_int,
        Err(e) => e.to_c(),
    }
}

/// Writes the local address of socket `fd` as `HOST:PORT` (`[v6]:PORT`, or the Unix path)
/// into `buf` (`len` bytes, NUL-terminated) and returns its length. `-ERANGE` when `buf` is
/// too small, `-EINVAL` for NULL `buf`, `-EBADF`/`-ENOTSOCK` for a bad fd.
#[no_mangle]
pub unsafe extern "C" fn dk_socket_name(fd: c_int, buf: *mut c_char, len: usize) -> c_int {
    if buf.is_null() || len == 0 {
        return -libc::EINVAL;
    }
    // SAFETY: buf has len writable bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    match listen::local_name(fd, out) {
        Ok(n) => n as c_int,
        Err(e) => e.to_c(),
    }
}

/// Socket activation: returns how many listening fds systemd (or `systemd-socket-activate`,
/// or a `dk_reexec`/upgrade) passed to this process, starting at fd 3
/// (`DK_LISTEN_FDS_START`); 0 when none or when `LISTEN_PID` names another process. Marks
/// them close-on-exec. Copies `LISTEN_FDNAMES` (colon-separated) into `names` when it is
/// not NULL (`names_len` bytes, NUL-terminated; empty when unset). Flags:
/// `DK_LISTEN_FDS_UNSET`. Errors: `-EINVAL` malformed variables or unknown flags,
/// `-EBADF` a passed fd is not open, `-ENAMETOOLONG` names do not fit.
#[no_mangle]
pub unsafe extern "C" fn dk_listen_fds(flags: u32, names: *mut c_char, names_len: usize) -> c_int {
    let out: &mut [u8] = if names.is_null() || names_len == 0 {
        &mut []
    } else {
        // SAFETY: names has names_len writable bytes.
        unsafe { core::slice::from_raw_parts_mut(names.cast::<u8>(), names_len) }
    };
    match listen::listen_fds(flags, out) {
        Ok(n) => n as c_int,
        Err(e) => e.to_c(),
    }
}

/// Sends `len` bytes of `data` (at least 1) together with the `n_fds` fds in `fds` (at most
/// 253) over the connected Unix socket `sock` (`SCM_RIGHTS`). Returns the bytes sent, or
/// `-EINVAL` (NULL data, len 0, too many fds), `-EBADF`, `-ENOTSOCK`, `-EPIPE`.
#[no_mangle]
pub unsafe extern "C" fn dk_fd_send(
    sock: c_int,
    data: *const u8,
    len: usize,
    fds: *const c_int,
    n_fds: usize,
) -> c_int {
    if data.is_null() || len == 0 || n_fds > listen::MAX_PASS_FDS {
        return -libc::EINVAL;
    }
    // SAFETY: data has len readable bytes; fds is NULL or n_fds ints (checked by int_slice).
    let d = unsafe { core::slice::from_raw_parts(data, len.min(1 << 20)) };
    // SAFETY: as above.
    let f = match unsafe { int_slice(fds, n_fds) } {
        Ok(f) => f,
        Err(e) => return e.to_c(),
    };
    match listen::send_fds(sock, d, f) {
        Ok(n) => n as c_int,
        Err(e) => e.to_c(),
    }
}

/// Receives one message from Unix socket `sock` into `buf` (`len` bytes) and up to
/// `*n_fds` fds into `fds` (close-on-exec); on return `*n_fds` holds how many arrived.
/// Returns the payload length (0: the peer closed). `-EMSGSIZE` when the payload or the fds
/// were truncated (the fds that did arrive are closed); `-EINVAL` NULL arguments; `-EAGAIN`
/// on a non-blocking socket with nothing to read.
#[no_mangle]
pub unsafe extern "C" fn dk_fd_recv(
    sock: c_int,
    buf: *mut u8,
    len: usize,
    fds: *mut c_int,
    n_fds: *mut usize,
) -> c_int {
    if buf.is_null() || len == 0 || n_fds.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: n_fds is non-NULL.
    let cap = unsafe { *n_fds };
    if cap > listen::MAX_PASS_FDS || (cap > 0 && fds.is_null()) {
        return -libc::EINVAL;
    }
    // SAFETY: buf has len writable bytes; fds has cap writable ints.
    let (b, f) = unsafe {
        (
            core::slice::from_raw_parts_mut(buf, len.min(1 << 20)),
            if cap == 0 {
                &mut [][..]
            } else {
                core::slice::from_raw_parts_mut(fds, cap)
            },
        )
    };
    // SAFETY: n_fds is non-NULL.
    unsafe { *n_fds = 0 };
    match listen::recv_fds(sock, b, f) {
        Ok((n, nf)) => {
            // SAFETY: n_fds is non-NULL.
            unsafe { *n_fds = nf };
            n as c_int
        }
        Err(e) => e.to_c(),
    }
}
