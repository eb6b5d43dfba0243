//! Privilege drop that cannot be undone (C: `dk_privileges_drop`, `dk_user_lookup`,
//! `dk_group_lookup`): the user's supplementary groups, `setresgid`, `setresuid`, in that
//! order, then verified (all three uids and gids, the exact groups, `setuid(0)` fails).
//! Malformed names, a bare uid without a passwd entry (unless a group is given) and uid 0
//! are refused.
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

/// Drops privileges to `user` (name or number) and `group` (default: the user's primary
/// group) for good, then verifies. `ENOTRECOVERABLE` (in [`Error::Io`]) means the switch
/// happened but did not verify: exit at once. Also succeeds when already exactly that user.
pub fn drop(user: &str, group: Option<&str>) -> Result<()> {
    let cu =
        c_str("user", user).map_err(|_| user_err(user, group, crate::sys::Errno(libc::EINVAL)))?;
    let cg = match group {
        Some(g) => Some(
            c_str("group", g)
                .map_err(|_| user_err(user, group, crate::sys::Errno(libc::EINVAL)))?,
        ),
        None => None,
    };
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
