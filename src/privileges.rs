//! Privilege drop that cannot be undone (C: `dk_privileges_drop`, `dk_user_lookup`,
//! `dk_group_lookup`): the user's supplementary groups, `setresgid`, `setresuid`, in that
//! order, then verified (all three uids and gids, the exact groups, `setuid(0)` fails).
//! Malformed names, a bare uid without a passwd entry (unless a group is given) and uid 0
//! are refused. [`drop_caps`] keeps chosen capabilities across the switch (ambient, so they
//! survive `execve`) and can set `no_new_privs`, verified from `capget` and
//! `/proc/self/status`.
//!
//! ```
//! use daemonkit::privileges;
//! let (uid, gid) = privileges::user_lookup("root")?;
//! assert_eq!((uid, gid), (0, 0));
//! assert!(matches!(privileges::user_lookup("no-such-user-dk"), Err(daemonkit::Error::UnknownUser(_))));
//! assert!(privileges::drop(" nobody", None).is_err()); // malformed: nothing changes
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{c_str, Error, Result};
use crate::imp::privileges as imp;

fn user_err(user: &str, group: Option<&str>, e: crate::sys::Errno) -> Error {
    match e.0 {
        imp::ERR_UNKNOWN_USER => Error::UnknownUser(user.to_string()),
        imp::ERR_UNKNOWN_GROUP => Error::UnknownGroup(group.unwrap_or("").to_string()),
        imp::ERR_NOT_ROOT => Error::NotRoot {
            user: user.to_string(),
        },
        libc::EINVAL => Error::invalid(format!(
            "cannot switch to user '{user}'{}: malformed name, or uid 0 (not a privilege drop)",
            group.map_or(String::new(), |g| format!(" and group '{g}'"))
        )),
        _ => Error::os(format!("cannot switch to user '{user}'"), e),
    }
}

bitflags::bitflags! {
    /// A set of Linux capabilities (bit N: `CAP_*` number N), for [`drop_caps`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Capabilities: u64 {
        /// `CAP_CHOWN`.
        const CHOWN = 1 << 0;
        /// `CAP_DAC_OVERRIDE`.
        const DAC_OVERRIDE = 1 << 1;
        /// `CAP_DAC_READ_SEARCH`.
        const DAC_READ_SEARCH = 1 << 2;
        /// `CAP_FOWNER`.
        const FOWNER = 1 << 3;
        /// `CAP_FSETID`.
        const FSETID = 1 << 4;
        /// `CAP_KILL`.
        const KILL = 1 << 5;
        /// `CAP_SETGID`.
        const SETGID = 1 << 6;
        /// `CAP_SETUID`.
        const SETUID = 1 << 7;
        /// `CAP_SETPCAP`.
        const SETPCAP = 1 << 8;
        /// `CAP_LINUX_IMMUTABLE`.
        const LINUX_IMMUTABLE = 1 << 9;
        /// `CAP_NET_BIND_SERVICE`.
        const NET_BIND_SERVICE = 1 << 10;
        /// `CAP_NET_BROADCAST`.
        const NET_BROADCAST = 1 << 11;
        /// `CAP_NET_ADMIN`.
        const NET_ADMIN = 1 << 12;
        /// `CAP_NET_RAW`.
        const NET_RAW = 1 << 13;
        /// `CAP_IPC_LOCK`.
        const IPC_LOCK = 1 << 14;
        /// `CAP_IPC_OWNER`.
        const IPC_OWNER = 1 << 15;
        /// `CAP_SYS_MODULE`.
        const SYS_MODULE = 1 << 16;
        /// `CAP_SYS_RAWIO`.
        const SYS_RAWIO = 1 << 17;
        /// `CAP_SYS_CHROOT`.
        const SYS_CHROOT = 1 << 18;
        /// `CAP_SYS_PTRACE`.
        const SYS_PTRACE = 1 << 19;
        /// `CAP_SYS_PACCT`.
        const SYS_PACCT = 1 << 20;
        /// `CAP_SYS_ADMIN`.
        const SYS_ADMIN = 1 << 21;
        /// `CAP_SYS_BOOT`.
        const SYS_BOOT = 1 << 22;
        /// `CAP_SYS_NICE`.
        const SYS_NICE = 1 << 23;
        /// `CAP_SYS_RESOURCE`.
        const SYS_RESOURCE = 1 << 24;
        /// `CAP_SYS_TIME`.
        const SYS_TIME = 1 << 25;
        /// `CAP_SYS_TTY_CONFIG`.
        const SYS_TTY_CONFIG = 1 << 26;
        /// `CAP_MKNOD`.
        const MKNOD = 1 << 27;
        /// `CAP_LEASE`.
        const LEASE = 1 << 28;
        /// `CAP_AUDIT_WRITE`.
        const AUDIT_WRITE = 1 << 29;
        /// `CAP_AUDIT_CONTROL`.
        const AUDIT_CONTROL = 1 << 30;
        /// `CAP_SETFCAP`.
        const SETFCAP = 1 << 31;
        /// `CAP_MAC_OVERRIDE`.
        const MAC_OVERRIDE = 1 << 32;
        /// `CAP_MAC_ADMIN`.
        const MAC_ADMIN = 1 << 33;
        /// `CAP_SYSLOG`.
        const SYSLOG = 1 << 34;
        /// `CAP_WAKE_ALARM`.
        const WAKE_ALARM = 1 << 35;
        /// `CAP_BLOCK_SUSPEND`.
        const BLOCK_SUSPEND = 1 << 36;
        /// `CAP_AUDIT_READ`.
        const AUDIT_READ = 1 << 37;
        /// `CAP_PERFMON`.
        const PERFMON = 1 << 38;
        /// `CAP_BPF`.
        const BPF = 1 << 39;
        /// `CAP_CHECKPOINT_RESTORE`.
        const CHECKPOINT_RESTORE = 1 << 40;
    }
}

impl Capabilities {
    /// The capability named `name` (`"NET_BIND_SERVICE"`, `"cap_net_raw"`: the `CAP_` prefix
    /// optional, any case); C: `dk_cap_from_name`.
    pub fn parse_name(name: &str) -> Option<Capabilities> {
        crate::imp::caps::from_name(name.as_bytes()).map(|n| Capabilities::from_bits_retain(1 << n))
    }
}

bitflags::bitflags! {
    /// How [`drop_caps`] drops (C: `DK_PRIVILEGES_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DropFlags: u32 {
        /// `PR_SET_NO_NEW_PRIVS` after the drop: no setuid binary or file capability gives
        /// anything back, across every later `execve`.
        const NO_NEW_PRIVS = crate::imp::caps::NO_NEW_PRIVS;
        /// Every capability not kept leaves the bounding set too.
        const DROP_BOUNDING = crate::imp::caps::DROP_BOUNDING;
    }
}

/// [`drop`], keeping `keep` across the switch (permitted, effective, inheritable and
/// ambient: they survive `execve`, so a re-exec, an upgrade or an exec'd program has them),
/// with `flags`; then verified that the process holds exactly `keep` (C:
/// `dk_privileges_drop_caps`). `SETUID`, `SETGID` and `SETPCAP` cannot be kept (`EINVAL`:
/// each would undo the drop). Already exactly that user without root (after a re-exec),
/// it checks that the capabilities came through ([`Error::NotRoot`] otherwise).
///
/// ```no_run
/// use daemonkit::privileges::{self, Capabilities, DropFlags};
/// // As root: become www-data, still able to bind port 443 after a reload or an upgrade.
/// privileges::drop_caps("www-data", None, Capabilities::NET_BIND_SERVICE, DropFlags::NO_NEW_PRIVS)?;
/// let l = std::net::TcpListener::bind("127.0.0.1:443"); // allowed: CAP_NET_BIND_SERVICE
/// # Ok::<(), daemonkit::Error>(())
/// ```
pub fn drop_caps(
    user: &str,
    group: Option<&str>,
    keep: Capabilities,
    flags: DropFlags,
) -> Result<()> {
    let (cu, cg) = names(user, group)?;
    imp::drop_caps(&cu, cg.as_deref(), keep.bits(), flags.bits()).map_err(|e| match e.0 {
        libc::EINVAL if !keep.is_empty() => Error::invalid(format!(
            "cannot switch to user '{user}' keeping {keep:?}: SETUID, SETGID and SETPCAP \
             cannot be kept (they undo the drop), or a capability this kernel lacks"
        )),
        imp::ERR_NOT_ROOT if !keep.is_empty() || !flags.is_empty() => Error::NotRoot {
            user: format!("{user}' keeping {keep:?} (capabilities cannot be gained: not root, and not already holding exactly them)"),
        },
        _ => user_err(user, group, e),
    })
}

fn names(
    user: &str,
    group: Option<&str>,
) -> Result<(std::ffi::CString, Option<std::ffi::CString>)> {
    let cu =
        c_str("user", user).map_err(|_| user_err(user, group, crate::sys::Errno(libc::EINVAL)))?;
    let cg = match group {
        Some(g) => Some(
            c_str("group", g)
                .map_err(|_| user_err(user, group, crate::sys::Errno(libc::EINVAL)))?,
        ),
        None => None,
    };
    Ok((cu, cg))
}

/// Drops privileges to `user` (name or number) and `group` (default: the user's primary
/// group) for good, then verifies. `ENOTRECOVERABLE` (in [`Error::Io`]) means the switch
/// happened but did not verify: exit at once. Also succeeds when already exactly that user.
pub fn drop(user: &str, group: Option<&str>) -> Result<()> {
    let (cu, cg) = names(user, group)?;
    imp::drop_to(&cu, cg.as_deref()).map_err(|e| user_err(user, group, e))
}

/// A user name or number as `(uid, primary gid)`; [`Error::UnknownUser`] when unknown.
pub fn user_lookup(user: &str) -> Result<(u32, u32)> {
    let c = c_str("user", user)?;
    imp::lookup_user(&c)
        .map(|u| (u.uid, u.gid))
        .map_err(|e| user_err(user, None, e))
}

/// A group name or number as its gid; [`Error::UnknownGroup`] when unknown.
pub fn group_lookup(group: &str) -> Result<u32> {
    let c = c_str("group", group)?;
    imp::lookup_group(&c).map_err(|e| match e.0 {
        imp::ERR_UNKNOWN_GROUP => Error::UnknownGroup(group.to_string()),
        _ => Error::os(format!("group '{group}'"), e),
    })
}
