//! Privilege drop that cannot be undone.
//!
//! Order: resolve user and group (`getpwnam_r`/`getgrnam_r`, or numeric ids), then
//! `initgroups` (supplementary groups — the classic forgotten step, CERT POS36-C), `setresgid`,
//! `setresuid`; then verify that real, effective and saved ids are all the target, that the
//! supplementary groups are exactly the target's, and that `setuid(0)` fails. A failure before
//! `setresuid` puts the groups and gid back, so the process is never left half-dropped.
//!
//! What is refused, and why (`EINVAL` unless said otherwise):
//! * a malformed name: empty, longer than 255 bytes, with whitespace or control characters,
//!   a `:` or `,`, or a leading `-` or `+` (`" nobody"` would otherwise pass as a number, and
//!   no account database accepts such names);
//! * a numeric uid with no passwd entry unless a group is given too (`ESRCH`, as an unknown
//!   user): without an entry there is no primary group and no group list, and guessing
//!   gid = uid would hand out a group nobody chose; with an explicit group the process gets
//!   that group and no supplementary groups;
//! * uid 0 as the target: not a privilege drop, and the verification (`setuid(0)` must
//!   fail) cannot hold.

use crate::imp::caps;
use crate::sys::{self, Errno, Res};
use core::ffi::{c_char, c_int, CStr};

/// `ESRCH`: the user does not exist.
pub const ERR_UNKNOWN_USER: i32 = libc::ESRCH;
/// `ENOENT`: the group does not exist.
pub const ERR_UNKNOWN_GROUP: i32 = libc::ENOENT;
/// `EPERM`: not root (and not already the target).
pub const ERR_NOT_ROOT: i32 = libc::EPERM;
/// `ENOTRECOVERABLE`: the ids were changed but verification failed; the process must exit.
pub const ERR_VERIFY: i32 = libc::ENOTRECOVERABLE;

/// A buffer for the `*_r` lookups: 16 KiB on the stack, grown on the heap (malloc) on ERANGE.
struct LookupBuf {
    stack: [u8; 16384],
    heap: *mut u8,
    size: usize,
}

impl LookupBuf {
    fn new() -> Self {
        LookupBuf {
            stack: [0; 16384],
            heap: core::ptr::null_mut(),
            size: 16384,
        }
    }
    fn ptr(&mut self) -> *mut c_char {
        if self.heap.is_null() {
            self.stack.as_mut_ptr().cast()
        } else {
            self.heap.cast()
        }
    }
    fn grow(&mut self) -> bool {
        let n = self.size * 4;
        if n > 16 << 20 {
            return false;
        }
        // SAFETY: realloc of our own malloc'd block (or NULL); checked for failure.
        let p = unsafe { libc::realloc(self.heap.cast(), n) };
        if p.is_null() {
            return false;
        }
        self.heap = p.cast();
        self.size = n;
        true
    }
}

impl Drop for LookupBuf {
    fn drop(&mut self) {
        // SAFETY: heap is NULL or a block from realloc.
        unsafe { libc::free(self.heap.cast()) };
    }
}

/// A resolved user.
#[derive(Clone, Copy, Debug)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The account name (for `initgroups`), NUL-terminated; empty for a numeric id without a
    /// passwd entry.
    pub name: [u8; 256],
}

impl User {
    fn name_cstr(&self) -> Option<&CStr> {
        CStr::from_bytes_until_nul(&self.name)
            .ok()
            .filter(|c| !c.is_empty())
    }
}

/// A decimal id, digits only (no sign, no whitespace), below `u32::MAX` (which is `-1`).
fn numeric(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    sys::parse_u64(s)
        .filter(|&v| v < u32::MAX as u64)
        .map(|v| v as u32)
}

/// True for a user or group name (or number) worth looking up; see the module docs.
pub fn well_formed(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() < 256
        && !matches!(s[0], b'-' | b'+')
        && s.iter()
            .all(|&c| c > b' ' && c != 0x7f && c != b':' && c != b',')
}

/// Resolves a user name or number. `ESRCH` when unknown (a number without a passwd entry
/// too), `EINVAL` for a malformed name.
pub fn lookup_user(spec: &CStr) -> Res<User> {
    lookup_user_or_id(spec)?.ok_or(Errno(ERR_UNKNOWN_USER))
}

/// [`lookup_user`], except that a number without a passwd entry gives `Ok(None)`.
fn lookup_user_or_id(spec: &CStr) -> Res<Option<User>> {
    let bytes = spec.to_bytes();
    if bytes.is_empty() {
        return Err(Errno(ERR_UNKNOWN_USER));
    }
    if !well_formed(bytes) {
        return Err(Errno(libc::EINVAL));
    }
    let mut buf = LookupBuf::new();
    loop {
        // SAFETY: pw/result are valid out-pointers and buf holds `size` writable bytes.
        let (rc, found, pw) = unsafe {
            let mut pw: libc::passwd = core::mem::zeroed();
            let mut result: *mut libc::passwd = core::ptr::null_mut();
            let rc = match numeric(bytes) {
                Some(uid) => libc::getpwuid_r(uid, &mut pw, buf.ptr(), buf.size, &mut result),
                None => libc::getpwnam_r(spec.as_ptr(), &mut pw, buf.ptr(), buf.size, &mut result),
            };
            (rc, !result.is_null(), pw)
        };
        if rc == libc::ERANGE && buf.grow() {
            continue;
        }
        if found {
            let mut u = User {
                uid: pw.pw_uid,
                gid: pw.pw_gid,
                name: [0; 256],
            };
            // SAFETY: pw_name points into buf, NUL-terminated, valid until buf is dropped.
            let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_bytes();
            if name.len() < u.name.len() {
                u.name[..name.len()].copy_from_slice(name);
            }
            return Ok(Some(u));
        }
        if rc != 0
            && rc != libc::ENOENT
            && rc != libc::ESRCH
            && rc != libc::EBADF
            && rc != libc::EPERM
        {
            return Err(Errno(rc));
        }
        // Not found: a number may still be a target, with an explicit group (see drop_to).
        return match numeric(bytes) {
            Some(_) => Ok(None),
            None => Err(Errno(ERR_UNKNOWN_USER)),
        };
    }
}

/// Resolves a group name or number (a number needs no group entry). `ENOENT` when unknown,
/// `EINVAL` for a malformed name.
pub fn lookup_group(spec: &CStr) -> Res<u32> {
    let bytes = spec.to_bytes();
    if bytes.is_empty() {
        return Err(Errno(ERR_UNKNOWN_GROUP));
    }
    if !well_formed(bytes) {
        return Err(Errno(libc::EINVAL));
    }
    if let Some(gid) = numeric(bytes) {
        return Ok(gid);
    }
    let mut buf = LookupBuf::new();
    loop {
        // SAFETY: gr/result are valid out-pointers and buf holds `size` writable bytes.
        let (rc, found, gid) = unsafe {
            let mut gr: libc::group = core::mem::zeroed();
            let mut result: *mut libc::group = core::ptr::null_mut();
            let rc = libc::getgrnam_r(spec.as_ptr(), &mut gr, buf.ptr(), buf.size, &mut result);
            (rc, !result.is_null(), gr.gr_gid)
        };
        if rc == libc::ERANGE && buf.grow() {
            continue;
        }
        if found {
            return Ok(gid);
        }
        if rc != 0
            && rc != libc::ENOENT
            && rc != libc::ESRCH
            && rc != libc::EBADF
            && rc != libc::EPERM
        {
            return Err(Errno(rc));
        }
        return Err(Errno(ERR_UNKNOWN_GROUP));
    }
}

const MAX_GROUPS: usize = 1024;

/// The current supplementary groups (at most MAX_GROUPS).
fn current_groups(out: &mut [libc::gid_t; MAX_GROUPS]) -> Res<usize> {
    // SAFETY: out has MAX_GROUPS slots.
    let n = sys::cvt(unsafe { libc::getgroups(MAX_GROUPS as c_int, out.as_mut_ptr()) })?;
    Ok(n as usize)
}

/// The groups the target should end up with.
fn target_groups(user: &User, gid: u32, out: &mut [libc::gid_t; MAX_GROUPS]) -> usize {
    match user.name_cstr() {
        Some(name) => {
            let mut n: c_int = MAX_GROUPS as c_int;
            // SAFETY: name is a valid C string, out has n slots.
            let r = unsafe { libc::getgrouplist(name.as_ptr(), gid, out.as_mut_ptr(), &mut n) };
            if r < 0 {
                out[0] = gid;
                1
            } else {
                n as usize
            }
        }
        None => {
            out[0] = gid;
            1
        }
    }
}

fn same_set(a: &[libc::gid_t], b: &[libc::gid_t]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

fn ids() -> ([libc::uid_t; 3], [libc::gid_t; 3]) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    let (mut gr, mut ge, mut gs) = (0, 0, 0);
    // SAFETY: all six are valid out-pointers.
    unsafe {
        libc::getresuid(&mut r, &mut e, &mut s);
        libc::getresgid(&mut gr, &mut ge, &mut gs);
    }
    ([r, e, s], [gr, ge, gs])
}

/// Drops to `user` (name or number) and `group` (name or number; `None`: the user's primary
/// group), with the user's supplementary groups. See the module docs for the order and the
/// checks. Errors: `ESRCH` unknown user (or a number without a passwd entry and no group),
/// `ENOENT` unknown group, `EINVAL` a malformed name or uid 0 as the target, `EPERM` not root
/// (when not already exactly the target), `ENOTRECOVERABLE` verification failed after the
/// switch (exit!).
pub fn drop_to(user: &CStr, group: Option<&CStr>) -> Res<()> {
    drop_caps(user, group, 0, 0)
}

/// [`drop_to`], keeping the capabilities in `keep` (bit N: capability N) in the permitted,
/// effective, inheritable and ambient sets, with `flags` (`caps::NO_NEW_PRIVS`,
/// `caps::DROP_BOUNDING`); see [`crate::imp::caps`]. Verified: the process then holds
/// exactly `keep`. `EINVAL` for a set that cannot be kept or unknown flags (nothing
/// changed). Already running as exactly the target without root (after a re-exec), the
/// capabilities must already be exactly `keep` (`EPERM` otherwise: they cannot be gained).
pub fn drop_caps(user: &CStr, group: Option<&CStr>, keep: u64, flags: u32) -> Res<()> {
    caps::check(keep, flags)?;
    let gid = match group {
        Some(g) => Some(lookup_group(g)?),
        None => None,
    };
    let u = match (lookup_user_or_id(user)?, gid) {
        (Some(u), _) => u,
        // A bare uid with an explicit group: that group alone (no entry, no group list).
        (None, Some(gid)) => User {
            uid: numeric(user.to_bytes()).ok_or(Errno(ERR_UNKNOWN_USER))?,
            gid,
            name: [0; 256],
        },
        (None, None) => return Err(Errno(ERR_UNKNOWN_USER)),
    };
    let gid = gid.unwrap_or(u.gid);
    let mut want = [0 as libc::gid_t; MAX_GROUPS];
    let nwant = target_groups(&u, gid, &mut want);

    let (uids, gids) = ids();
    if uids[1] != 0 {
        let mut have = [0 as libc::gid_t; MAX_GROUPS];
        let nhave = current_groups(&mut have)?;
        let already = uids.iter().all(|&x| x == u.uid)
            && gids.iter().all(|&x| x == gid)
            && same_set(&have[..nhave], &want[..nwant]);
        if !already {
            return Err(Errno(ERR_NOT_ROOT));
        }
        // After a re-exec or an upgrade: the capabilities came through execve (ambient);
        // no_new_privs may be set again; what cannot be gained is not claimed.
        caps::after_setuid(0, flags)?;
        return caps::verify(keep, flags).map_err(|_| Errno(ERR_NOT_ROOT));
    }

    // As root, uid 0 as the target would "succeed" with nothing dropped, and setuid(0)
    // would not fail afterwards: refused. (Without root the branch above says EPERM.)
    if u.uid == 0 {
        return Err(Errno(libc::EINVAL));
    }

    let mut saved = [0 as libc::gid_t; MAX_GROUPS];
    let nsaved = current_groups(&mut saved)?;
    let restore = |saved: &[libc::gid_t]| {
        // SAFETY: restoring our previous ids while still root; saved is a valid array.
        unsafe {
            libc::setgroups(saved.len(), saved.as_ptr());
            libc::setresgid(gids[0], gids[1], gids[2]);
        }
    };

    // The bounding set and KEEPCAPS (undone below if a later step fails before the switch).
    let undo_keepcaps = || {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0u64, 0u64, 0u64, 0u64) };
    };
    if let Err(e) = caps::before_setuid(keep, flags) {
        undo_keepcaps();
        return Err(e);
    }
    // SAFETY: want holds nwant valid gids.
    if let Err(e) = sys::cvt(unsafe { libc::setgroups(nwant, want.as_ptr()) }) {
        undo_keepcaps();
        restore(&saved[..nsaved]);
        return Err(e);
    }
    // SAFETY: plain integer arguments.
    if let Err(e) = sys::cvt(unsafe { libc::setresgid(gid, gid, gid) }) {
        undo_keepcaps();
        restore(&saved[..nsaved]);
        return Err(e);
    }
    // SAFETY: plain integer arguments.
    if let Err(e) = sys::cvt(unsafe { libc::setresuid(u.uid, u.uid, u.uid) }) {
        undo_keepcaps();
        restore(&saved[..nsaved]);
        return Err(e);
    }
    // The ids changed: from here on a failure is a failed verification (exit!).
    caps::after_setuid(keep, flags).map_err(|_| Errno(ERR_VERIFY))?;

    // Verify.
    let (uids, gids) = ids();
    let mut have = [0 as libc::gid_t; MAX_GROUPS];
    let nhave = current_groups(&mut have).map_err(|_| Errno(ERR_VERIFY))?;
    if !uids.iter().all(|&x| x == u.uid)
        || !gids.iter().all(|&x| x == gid)
        || !same_set(&have[..nhave], &want[..nwant])
    {
        return Err(Errno(ERR_VERIFY));
    }
    // SAFETY: setuid(0) must fail now; if it succeeds we are root again and say so.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(Errno(ERR_VERIFY));
    }
    caps::verify(keep, flags)
}
