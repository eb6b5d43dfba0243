//! The C ABI (`include/daemonkit.h`): every `extern "C"` function, thin — check the
//! arguments, call the core, map the result to `>= 0` or a negative errno. No panic crosses
//! this boundary (the shipped libraries are built with `panic = "abort"`, and extern "C"
//! functions abort on a panic in any build); NULL, bad fds, over-long paths and unknown flag
//! bits are rejected with `-EINVAL`/`-EBADF`/`-ENAMETOOLONG`.
//!
//! Conventions: prefix `dk_`, constants `DK_`, opaque handles `dk_<thing>` with
//! `dk_<thing>_<verb>`; outputs last; a buffer is followed by its `size_t` length; integers,
//! not enums, cross the boundary.
#![allow(non_camel_case_types)]
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::sys::{self, Errno, Res};
use core::ffi::{c_char, c_int};

// One file per area, named after the core module it wraps (and the header's section).
mod daemon;
mod exec;
mod fds;
mod listen;
mod notify;
mod pidfile;
mod privileges;
mod rlimit;
mod signals;
mod supervisor;

pub use self::daemon::*;
pub use self::exec::*;
pub use self::fds::*;
pub use self::listen::*;
pub use self::notify::*;
pub use self::pidfile::*;
pub use self::privileges::*;
pub use self::rlimit::*;
pub use self::signals::*;
pub use self::supervisor::*;

/// The library version as `(major << 16) | (minor << 8) | patch`.
pub const DK_VERSION: u32 = 0x000100;
/// Major version (the soname is `libdaemonkit.so.<major>` for 1.0 and later; `.so.0` now).
pub const DK_VERSION_MAJOR: u32 = 0;

/// Returns the version of the loaded library, `(major << 16) | (minor << 8) | patch`; compare
/// with `DK_VERSION` from the header you compiled against.
#[no_mangle]
pub extern "C" fn dk_version() -> u32 {
    DK_VERSION
}

/// Returns a static, human-readable description of an error code (negative or positive
/// errno), never NULL. The text is libc's (`strerror`) and must not be freed or modified;
/// it may be overwritten by a later call on another thread only for unknown codes.
#[no_mangle]
pub extern "C" fn dk_strerror(err: c_int) -> *const c_char {
    let e = err.checked_abs().unwrap_or(0);
    // SAFETY: strerror returns a pointer to a static (or thread-local) NUL-terminated string.
    let p = unsafe { libc::strerror(e) };
    if p.is_null() {
        c"Unknown error".as_ptr()
    } else {
        p
    }
}

/// Maps a unit result to the C convention.
pub(crate) fn ret(r: Res<()>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_c(),
    }
}

/// Borrows a path argument (NULL: EINVAL, too long: ENAMETOOLONG).
///
/// # Safety
/// `p` must be NULL or a readable C string.
pub(crate) unsafe fn path_arg<'a>(p: *const c_char) -> Res<&'a ::core::ffi::CStr> {
    // SAFETY: forwarded contract.
    unsafe { sys::cstr_arg(p, sys::PATH_MAX) }
}

/// Borrows an fd array argument; NULL is allowed only with `n == 0`.
///
/// # Safety
/// `p` must be NULL or point to `n` readable ints.
pub(crate) unsafe fn int_slice<'a>(p: *const c_int, n: usize) -> Res<&'a [c_int]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() || n > 1024 {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: the caller promises n readable ints at p.
    Ok(unsafe { ::core::slice::from_raw_parts(p, n) })
}

/// Writes `v` through an optional out-pointer (NULL: the caller does not want the value) —
/// the check every export with an out-parameter repeats.
///
/// # Safety
/// `out` must be NULL or valid for a write of a `T`.
pub(crate) unsafe fn put<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: non-NULL, and valid for a write per the contract.
        unsafe { out.write(v) };
    }
}

/// Runs `f` on the handle `h` points to; `-EINVAL` for NULL — the check every export taking
/// a handle repeats.
///
/// # Safety
/// `h` must be NULL or a live handle from its `dk_<thing>_new`/`_open`, not used elsewhere
/// during the call.
pub(crate) unsafe fn with_handle<T>(h: *mut T, f: impl FnOnce(&mut T) -> c_int) -> c_int {
    // SAFETY: NULL or a live, unaliased handle per the contract.
    match unsafe { h.as_mut() } {
        Some(h) => f(h),
        None => -libc::EINVAL,
    }
}

/// Allocates a C-owned handle holding `v` (malloc, freed with [`free_handle`]).
pub(crate) fn new_handle<T>(v: T) -> Option<*mut T> {
    // SAFETY: malloc of size_of::<T>() bytes (suitably aligned for any fundamental type;
    // our handle types need at most 8-byte alignment), written before use.
    unsafe {
        let p = libc::malloc(::core::mem::size_of::<T>()).cast::<T>();
        if p.is_null() {
            return None;
        }
        p.write(v);
        Some(p)
    }
}

/// Takes back a handle from [`new_handle`], freeing its memory.
///
/// # Safety
/// `p` must come from [`new_handle`] and not have been freed.
pub(crate) unsafe fn free_handle<T>(p: *mut T) -> T {
    // SAFETY: p is a live handle per the contract; read moves the value out before free.
    unsafe {
        let v = p.read();
        libc::free(p.cast());
        v
    }
}
