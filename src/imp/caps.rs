//! Capabilities kept across the privilege drop, and `no_new_privs` — verified.
//!
//! The sequence around `setresuid` (in [`crate::imp::privileges::drop_caps`]):
//! 1. before: drop every capability not kept from the bounding set (`PR_CAPBSET_DROP`, with
//!    [`DROP_BOUNDING`]), and `PR_SET_KEEPCAPS` when some are kept, so that the switch from
//!    root keeps the permitted set;
//! 2. after: `capset` permitted = effective = inheritable = the kept set, then raise each in
//!    the ambient set (`PR_CAP_AMBIENT_RAISE`) so that it survives `execve` (a re-exec, an
//!    upgrade, a worker that execs, the command's PROGRAM), `PR_SET_KEEPCAPS` off again, and
//!    `PR_SET_NO_NEW_PRIVS` with [`NO_NEW_PRIVS`];
//! 3. verify from `/proc/self/status` (`CapInh`, `CapPrm`, `CapEff`, `CapAmb`, `CapBnd`,
//!    `NoNewPrivs`) and `capget` that the process holds exactly that.
//!
//! Refused (`EINVAL`): `SETUID`, `SETGID` and `SETPCAP` (each would undo the drop), and a
//! capability the kernel does not have. No libcap: raw `capget`/`capset` and `prctl`, no
//! allocation.

use crate::sys::{self, Errno, Res};

/// Set `PR_SET_NO_NEW_PRIVS` after the drop (no setuid binary or file capability can give
/// anything back, across every later `execve`).
pub const NO_NEW_PRIVS: u32 = 1;
/// Drop every capability that is not kept from the bounding set too.
pub const DROP_BOUNDING: u32 = 2;
/// Every flag.
pub const FLAGS: u32 = NO_NEW_PRIVS | DROP_BOUNDING;

/// The capabilities' names, by number (`CAP_` prefix left out), as in `capabilities(7)`:
/// one space-separated string (a table of 41 slices would cost the library 650 bytes).
pub const NAMES: &str = "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE";

/// The capabilities that cannot be kept: each lets the process undo the drop.
const UNKEEPABLE: u64 = (1 << 6) | (1 << 7) | (1 << 8);

/// The number of capability `name` (`NET_BIND_SERVICE`, `cap_net_bind_service`, with or
/// without the `CAP_` prefix, any case), or `None`.
pub fn from_name(name: &[u8]) -> Option<u32> {
    let n = match name.get(..4) {
        Some(p) if p.eq_ignore_ascii_case(b"CAP_") => &name[4..],
        _ => name,
    };
    NAMES
        .split(' ')
        .position(|c| c.as_bytes().eq_ignore_ascii_case(n))
        .map(|i| i as u32)
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`;
/// 40 when it cannot be read).
fn last_cap() -> u32 {
    let mut buf = [0u8; 16];
    match read_file(c"/proc/sys/kernel/cap_last_cap", &mut buf) {
        Ok(n) => sys::parse_u64(sys::trim(&buf[..n])).map_or(40, |v| v.min(63) as u32),
        Err(_) => 40,
    }
}

/// `EINVAL` for a set that cannot be kept (see the module docs) or unknown flags.
pub fn check(keep: u64, flags: u32) -> Res<()> {
    let last = last_cap();
    let known = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    if flags & !FLAGS != 0 || keep & UNKEEPABLE != 0 || keep & !known != 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(())
}

fn prctl(op: libc::c_int, a: u64, b: u64) -> Res<()> {
    // SAFETY: prctl with integer arguments only.
    sys::cvt(unsafe { libc::prctl(op, a, b, 0u64, 0u64) }).map(|_| ())
}

/// Step 1, still root: the bounding set and `PR_SET_KEEPCAPS`.
pub fn before_setuid(keep: u64, flags: u32) -> Res<()> {
    if flags & DROP_BOUNDING != 0 {
        for cap in 0..=last_cap() {
            if keep & (1 << cap) == 0 {
                prctl(libc::PR_CAPBSET_DROP, cap as u64, 0)?;
            }
        }
    }
    if keep != 0 {
        prctl(libc::PR_SET_KEEPCAPS, 1, 0)?;
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// `(effective, permitted, inheritable)` of this thread, from `capget`.
fn capget() -> Res<(u64, u64, u64)> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: a v3 header and two data structs, as capget(2) requires.
    sys::cvt(unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } as libc::c_int)?;
    let join = |lo: u32, hi: u32| (lo as u64) | ((hi as u64) << 32);
    Ok((
        join(d[0].effective, d[1].effective),
        join(d[0].permitted, d[1].permitted),
        join(d[0].inheritable, d[1].inheritable),
    ))
}

/// Step 2, after `setresuid`: the kept set in permitted, effective, inheritable and ambient,
/// `PR_SET_KEEPCAPS` off, `no_new_privs`.
pub fn after_setuid(keep: u64, flags: u32) -> Res<()> {
    if keep != 0 {
        let mut h = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        let part = |shift: u32| {
            let v = (keep >> shift) as u32;
            CapData {
                effective: v,
                permitted: v,
                inheritable: v,
            }
        };
        let d = [part(0), part(32)];
        // SAFETY: a v3 header and two data structs, as capset(2) requires.
        sys::cvt(unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } as libc::c_int)?;
        for cap in 0..64u64 {
            if keep & (1 << cap) != 0 {
                prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as u64, cap)?;
            }
        }
        prctl(libc::PR_SET_KEEPCAPS, 0, 0)?;
    }
    if flags & NO_NEW_PRIVS != 0 {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)?;
    }
    Ok(())
}

/// Reads a small file into `buf`; the length read.
fn read_file(path: &core::ffi::CStr, buf: &mut [u8]) -> Res<usize> {
    // SAFETY: a valid C string and plain flags.
    let fd = sys::retry(|| unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    let have = sys::read_up_to(fd, buf);
    sys::close(fd);
    Ok(have)
}

/// The hex or decimal value of the `/proc/self/status` line starting with `key`.
fn status_field(status: &[u8], key: &[u8], hex: bool) -> Option<u64> {
    let line = status.split(|&c| c == b'\n').find(|l| l.starts_with(key))?;
    let v = sys::trim(&line[key.len()..]);
    if !hex {
        return sys::parse_u64(v);
    }
    if v.is_empty() || v.len() > 16 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | d as u64)
    })
}

/// Step 3: the process holds exactly `keep` (permitted, effective, ambient; inheritable
/// when some are kept; the bounding set with [`DROP_BOUNDING`]) and `no_new_privs` when
/// asked — from `capget` and, when anything was asked, `/proc/self/status` (which must then
/// be readable). `ENOTRECOVERABLE` otherwise.
pub fn verify(keep: u64, flags: u32) -> Res<()> {
    let bad = Errno(crate::imp::privileges::ERR_VERIFY);
    let (g_eff, g_prm, g_inh) = capget().map_err(|_| bad)?;
    if g_eff != keep || g_prm != keep || (keep != 0 && g_inh != keep) {
        return Err(bad);
    }
    if keep == 0 && flags == 0 {
        // A plain drop: capget says it all, and /proc may not be there (a chroot).
        return Ok(());
    }
    let mut buf = [0u8; 4096];
    let n = read_file(c"/proc/self/status", &mut buf).map_err(|_| bad)?;
    let st = &buf[..n];
    let field = |k: &[u8]| status_field(st, k, true).ok_or(bad);
    let exact =
        field(b"CapPrm:")? == keep && field(b"CapEff:")? == keep && field(b"CapAmb:")? == keep;
    let inherit = keep == 0 || field(b"CapInh:")? == keep;
    let bounding = flags & DROP_BOUNDING == 0 || field(b"CapBnd:")? == keep;
    let no_new = flags & NO_NEW_PRIVS == 0 || status_field(st, b"NoNewPrivs:", false) == Some(1);
    if exact && inherit && bounding && no_new {
        Ok(())
    } else {
        Err(bad)
    }
}
