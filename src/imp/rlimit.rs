//! Resource limits: get/set any `RLIMIT_*`, raise NOFILE as far as allowed, disable cores.

use crate::sys::{self, Errno, Res};
use core::ffi::c_int;

/// `RLIM_INFINITY` as the library reports and accepts it.
pub const INFINITY: u64 = u64::MAX;

fn check(resource: c_int) -> Res<()> {
    // RLIMIT_CPU (0) .. RLIMIT_RTTIME (15): the resources Linux defines.
    if !(0..16).contains(&resource) {
        return Err(Errno(libc::EINVAL));
    }
    Ok(())
}

/// `(soft, hard)` of `resource`.
pub fn get(resource: c_int) -> Res<(u64, u64)> {
    check(resource)?;
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-pointer and resource is in range.
    sys::cvt(unsafe { libc::getrlimit(resource as _, &mut rl) })?;
    Ok((rl.rlim_cur, rl.rlim_max))
}

/// Sets `resource` to `(soft, hard)`. `EINVAL` when soft > hard, `EPERM` when raising the
/// hard limit without privilege.
pub fn set(resource: c_int, soft: u64, hard: u64) -> Res<()> {
    check(resource)?;
    if soft > hard {
        return Err(Errno(libc::EINVAL));
    }
    let rl = libc::rlimit {
        rlim_cur: soft as _,
        rlim_max: hard as _,
    };
    // SAFETY: rl is a valid rlimit and resource is in range.
    sys::cvt(unsafe { libc::setrlimit(resource as _, &rl) })?;
    Ok(())
}

/// Sets the soft RLIMIT_NOFILE to `wanted`, capped at the hard limit, and returns what was
/// obtained. Lowering works too.
pub fn raise_nofile(wanted: u64) -> Res<u64> {
    let (_, hard) = get(libc::RLIMIT_NOFILE as c_int)?;
    let soft = wanted.min(hard);
    set(libc::RLIMIT_NOFILE as c_int, soft, hard)?;
    Ok(get(libc::RLIMIT_NOFILE as c_int)?.0)
}

/// Sets RLIMIT_CORE to 0 (soft and hard): no core dumps.
pub fn disable_core() -> Res<()> {
    set(libc::RLIMIT_CORE as c_int, 0, 0)
}
