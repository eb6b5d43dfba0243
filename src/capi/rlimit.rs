//! C ABI: resource limits (`dk_rlimit_*`), over [`crate::imp::rlimit`].

use super::ret;
use crate::imp::rlimit;
use core::ffi::c_int;

/// `RLIM_INFINITY` as `dk_rlimit_*` report and accept it.
pub const DK_RLIM_INFINITY: u64 = u64::MAX;
/// `RLIMIT_CORE` (Linux numbering).
pub const DK_RLIMIT_CORE: c_int = 4;
/// `RLIMIT_NPROC`.
pub const DK_RLIMIT_NPROC: c_int = 6;
/// `RLIMIT_NOFILE`.
pub const DK_RLIMIT_NOFILE: c_int = 7;
/// `RLIMIT_AS`.
pub const DK_RLIMIT_AS: c_int = 9;

/// Reads resource limit `resource` (an `RLIMIT_*` number, e.g. `DK_RLIMIT_NOFILE`) into
/// `*soft` and `*hard` (either may be NULL). `-EINVAL` for an unknown resource.
#[no_mangle]
pub unsafe extern "C" fn dk_rlimit_get(resource: c_int, soft: *mut u64, hard: *mut u64) -> c_int {
    match rlimit::get(resource) {
        Ok((s, h)) => {
            // SAFETY: each out-pointer is NULL or valid.
            unsafe {
                if !soft.is_null() {
                    *soft = s;
                }
                if !hard.is_null() {
                    *hard = h;
                }
            }
            0
        }
        Err(e) => e.to_c(),
    }
}

/// Sets resource limit `resource` to `soft`/`hard` (`DK_RLIM_INFINITY` for unlimited).
/// `-EINVAL` unknown resource or soft > hard; `-EPERM` raising the hard limit without root.
#[no_mangle]
pub extern "C" fn dk_rlimit_set(resource: c_int, soft: u64, hard: u64) -> c_int {
    ret(rlimit::set(resource, soft, hard))
}

/// Sets the soft `RLIMIT_NOFILE` to `wanted`, capped at the hard limit, and stores what was
/// obtained in `*obtained` (may be NULL). Returns 0 or a negative errno.
#[no_mangle]
pub unsafe extern "C" fn dk_rlimit_nofile(wanted: u64, obtained: *mut u64) -> c_int {
    match rlimit::raise_nofile(wanted) {
        Ok(v) => {
            // SAFETY: obtained is NULL or a writable out-pointer (the header's contract).
            unsafe { super::put(obtained, v) };
            0
        }
        Err(e) => e.to_c(),
    }
}

/// Disables core dumps (`RLIMIT_CORE` soft and hard 0). Returns 0 or a negative errno.
#[no_mangle]
pub extern "C" fn dk_rlimit_disable_core() -> c_int {
    ret(rlimit::disable_core())
}
