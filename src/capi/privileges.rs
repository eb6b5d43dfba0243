//! C ABI: privilege drop and user/group lookup (`dk_privileges_drop`, `dk_user_lookup`,
//! `dk_group_lookup`), over [`crate::imp::privileges`].

use super::ret;
use crate::imp::privileges;
use crate::sys;
use core::ffi::{c_char, c_int};

/// `dk_privileges_drop`: the user does not exist (`-ESRCH`).
pub const DK_ERR_UNKNOWN_USER: c_int = -3;
/// `dk_privileges_drop`: the group does not exist (`-ENOENT`).
pub const DK_ERR_UNKNOWN_GROUP: c_int = -2;
/// `dk_privileges_drop`: not running as root (`-EPERM`).
pub const DK_ERR_NOT_ROOT: c_int = -1;
/// `dk_privileges_drop`: ids changed but verification failed — exit at once
/// (`-ENOTRECOVERABLE`).
pub const DK_ERR_VERIFY: c_int = -131;

/// Drops root privileges for good: resolves `user` (name or number) and `group` (name or
/// number; NULL: the user's primary group), then `setgroups` to the user's supplementary
/// groups (as initgroups), `setresgid`, `setresuid`, in that order, and verifies that the
/// real, effective and saved ids are all the target, that the supplementary groups are
/// exactly the target's, and that `setuid(0)` fails. `flags`: those of
/// `dk_privileges_drop_caps` (0: none); no capability is kept.
///
/// Returns 0 (also when already running exactly as the target without root). Errors:
/// `DK_ERR_UNKNOWN_USER` (-ESRCH), `DK_ERR_UNKNOWN_GROUP` (-ENOENT), `DK_ERR_NOT_ROOT`
/// (-EPERM) — in these cases nothing was changed; a failing set*id call returns its errno
/// after the old groups and gid are restored; `DK_ERR_VERIFY` (-ENOTRECOVERABLE) means the
/// switch happened but did not verify: the caller must exit. `-EINVAL` for NULL `user` or
/// unknown flags, `-ENAMETOOLONG` for a name over 255 bytes.
///
/// Refused without changing anything: a malformed `user` or `group` (`-EINVAL`: empty of
/// content, whitespace or control characters anywhere — `" nobody"` is not `nobody` and not
/// a number —, a `:` or `,`, or a leading `-`/`+`); a numeric uid that has no passwd entry
/// when `group` is NULL (`DK_ERR_UNKNOWN_USER`: there is no primary group or group list to
/// take, and gid = uid would be a guess) — with an explicit `group` such a uid is accepted
/// and gets that group and no supplementary groups; and, as root, uid 0 as the target
/// (`-EINVAL`: not a privilege drop, and the verification that `setuid(0)` fails cannot
/// hold; without root it is `DK_ERR_NOT_ROOT` like any other user).
#[no_mangle]
pub unsafe extern "C" fn dk_privileges_drop(
    user: *const c_char,
    group: *const c_char,
    flags: u32,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { dk_privileges_drop_caps(user, group, flags, 0) }
}

/// `dk_privileges_drop_caps`: set `PR_SET_NO_NEW_PRIVS` after the drop.
pub const DK_PRIVILEGES_NO_NEW_PRIVS: u32 = 1;
/// `dk_privileges_drop_caps`: drop every capability that is not kept from the bounding set.
pub const DK_PRIVILEGES_DROP_BOUNDING: u32 = 2;

/// `dk_privileges_drop`, keeping the capabilities in `keep` (bit N = capability N, the
/// `CAP_*` numbers of `<linux/capability.h>`; see `dk_cap_from_name`) across the switch:
/// `PR_SET_KEEPCAPS` before `setresuid`, then `capset` (permitted = effective = inheritable
/// = `keep`) and each raised in the ambient set, so they survive `execve` (`dk_reexec`,
/// `dk_upgrade`, a worker that execs). `flags`: `DK_PRIVILEGES_NO_NEW_PRIVS` (then
/// `PR_SET_NO_NEW_PRIVS`), `DK_PRIVILEGES_DROP_BOUNDING` (every other capability leaves the
/// bounding set too, before the switch). Then verified: besides `dk_privileges_drop`'s
/// checks, `capget` and `/proc/self/status` (`CapPrm`, `CapEff`, `CapAmb`, `CapInh`,
/// `CapBnd` with DROP_BOUNDING, `NoNewPrivs`) must show exactly that, else
/// `DK_ERR_VERIFY` (exit!).
///
/// `-EINVAL`, nothing changed: unknown flags, a capability the kernel does not have, or
/// `SETUID`, `SETGID`, `SETPCAP` in `keep` (each would undo the drop). Already running as
/// exactly the target without root (a re-exec'd or upgraded image): `no_new_privs` is set
/// again if asked and the capabilities are verified to be exactly `keep`, else
/// `DK_ERR_NOT_ROOT` (capabilities cannot be gained). With `keep` 0 and `flags` 0 this is
/// `dk_privileges_drop`.
#[no_mangle]
pub unsafe extern "C" fn dk_privileges_drop_caps(
    user: *const c_char,
    group: *const c_char,
    flags: u32,
    keep: u64,
) -> c_int {
    // SAFETY: user/group are NULL or C strings.
    let u = match unsafe { sys::cstr_arg(user, 256) } {
        Ok(u) => u,
        Err(e) => return e.to_c(),
    };
    let g = if group.is_null() {
        None
    } else {
        // SAFETY: group is a C string.
        match unsafe { sys::cstr_arg(group, 256) } {
            Ok(g) => Some(g),
            Err(e) => return e.to_c(),
        }
    };
    ret(privileges::drop_caps(u, g, keep, flags))
}

/// The number of the capability named `name` (`"NET_BIND_SERVICE"`, `"cap_net_raw"`: the
/// `CAP_` prefix optional, any case), for `dk_privileges_drop_caps`'s `keep` (`1ULL << n`).
/// `-EINVAL` for NULL or an unknown name.
#[no_mangle]
pub unsafe extern "C" fn dk_cap_from_name(name: *const c_char) -> c_int {
    // SAFETY: name is NULL or a C string.
    match unsafe { sys::cstr_arg(name, 64) } {
        Ok(n) => crate::imp::caps::from_name(n.to_bytes()).map_or(-libc::EINVAL, |c| c as c_int),
        Err(e) => e.to_c(),
    }
}

/// Resolves a user name or number to its uid and primary gid (either out-pointer may be
/// NULL). Returns 0, `DK_ERR_UNKNOWN_USER` (-ESRCH; also for a number with no passwd
/// entry), `-EINVAL` for NULL or a malformed `user` (see `dk_privileges_drop`).
#[no_mangle]
pub unsafe extern "C" fn dk_user_lookup(
    user: *const c_char,
    uid_out: *mut u32,
    gid_out: *mut u32,
) -> c_int {
    // SAFETY: user is NULL or a C string.
    let u = match unsafe { sys::cstr_arg(user, 256) } {
        Ok(u) => u,
        Err(e) => return e.to_c(),
    };
    match privileges::lookup_user(u) {
        Ok(u) => {
            // SAFETY: each out-pointer is NULL or valid.
            unsafe {
                if !uid_out.is_null() {
                    *uid_out = u.uid;
                }
                if !gid_out.is_null() {
                    *gid_out = u.gid;
                }
            }
            0
        }
        Err(e) => e.to_c(),
    }
}

/// Resolves a group name or number to its gid (`gid_out` may be NULL; a number needs no
/// group entry). Returns 0, `DK_ERR_UNKNOWN_GROUP` (-ENOENT), `-EINVAL` for NULL or a
/// malformed `group` (see `dk_privileges_drop`).
#[no_mangle]
pub unsafe extern "C" fn dk_group_lookup(group: *const c_char, gid_out: *mut u32) -> c_int {
    // SAFETY: group is NULL or a C string.
    let g = match unsafe { sys::cstr_arg(group, 256) } {
        Ok(g) => g,
        Err(e) => return e.to_c(),
    };
    match privileges::lookup_group(g) {
        Ok(gid) => {
            // SAFETY: gid_out is NULL or a writable out-pointer (the header's contract).
            unsafe { super::put(gid_out, gid) };
            0
        }
        Err(e) => e.to_c(),
    }
}
