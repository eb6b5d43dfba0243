//! C ABI: fds and logs (`dk_fd_*`, `dk_log_*`), over [`crate::imp::fds`] (fd passing is
//! with the sockets, in `listen.rs`).

use super::{int_slice, path_arg, ret};
use crate::imp::fds;
use core::ffi::{c_char, c_int};

/// Sets (`on` != 0) or clears close-on-exec on `fd`. `-EBADF` for a negative or closed fd.
#[no_mangle]
pub extern "C" fn dk_fd_set_cloexec(fd: c_int, on: c_int) -> c_int {
    ret(fds::set_cloexec(fd, on != 0))
}

/// Closes every fd `>= first` except the `n_keep` fds in `keep` (and the library's own, such
/// as a locked PID file), with close_range(2) where available. `keep` may be NULL when
/// `n_keep` is 0. `-EINVAL` for a negative `first`, NULL `keep` with `n_keep` > 0, or more
/// than 1024 kept fds.
#[no_mangle]
pub unsafe extern "C" fn dk_fd_close_from(
    first: c_int,
    keep: *const c_int,
    n_keep: usize,
) -> c_int {
    // SAFETY: keep is NULL or n_keep readable ints.
    match unsafe { int_slice(keep, n_keep) } {
        Ok(k) => ret(fds::close_range_except(first, k)),
        Err(e) => e.to_c(),
    }
}

/// `dk_log_open`: replace stdout.
pub const DK_LOG_STDOUT: u32 = 1;
/// `dk_log_open`: replace stderr.
pub const DK_LOG_STDERR: u32 = 2;

/// Opens `path` append-only (created 0640) and `dup2`s it onto stdout and/or stderr
/// (`which`: `DK_LOG_STDOUT|DK_LOG_STDERR`; 0 means both). The absolute path is remembered
/// for `dk_log_reopen`. Errors: `-EINVAL` NULL path or unknown bits, `-ENAMETOOLONG`,
/// `-EACCES`, `-ENOENT` (directory missing), or another errno of open(2).
#[no_mangle]
pub unsafe extern "C" fn dk_log_open(path: *const c_char, which: u32) -> c_int {
    // SAFETY: path_ is NULL or a C string.
    match unsafe { path_arg(path) } {
        Ok(p) => ret(fds::log_open(p, which)),
        Err(e) => e.to_c(),
    }
}

/// Reopens the log file opened by `dk_log_open` (after logrotate renamed it) and moves
/// stdout/stderr onto the new file with `dup2`, so no line written by another thread or
/// runtime in between is lost. `-EBADF` when no log was opened; open(2)'s errno otherwise
/// (the old file then stays in place).
#[no_mangle]
pub extern "C" fn dk_log_reopen() -> c_int {
    ret(fds::log_reopen())
}
