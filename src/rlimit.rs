//! Resource limits (C: `dk_rlimit_*`): read and set any limit, raise the open-file limit as
//! far as allowed, disable core dumps.
//!
//! ```
//! use daemonkit::rlimit::{self, Resource};
//! let (soft, hard) = rlimit::get(Resource::NOFILE)?;
//! assert!(soft <= hard);
//! assert_eq!(rlimit::nofile(soft)?, soft);
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::imp::rlimit as imp;

/// `RLIM_INFINITY` as [`get`] reports and [`set`] accepts it.
pub const INFINITY: u64 = imp::INFINITY;

/// An `RLIMIT_*` resource (Linux numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource(pub i32);

impl Resource {
    /// `RLIMIT_CORE`.
    pub const CORE: Resource = Resource(libc::RLIMIT_CORE as i32);
    /// `RLIMIT_NPROC`.
    pub const NPROC: Resource = Resource(libc::RLIMIT_NPROC as i32);
    /// `RLIMIT_NOFILE`.
    pub const NOFILE: Resource = Resource(libc::RLIMIT_NOFILE as i32);
    /// `RLIMIT_AS`.
    pub const AS: Resource = Resource(libc::RLIMIT_AS as i32);
}

/// `(soft, hard)` of `resource` (C: `dk_rlimit_get`).
pub fn get(resource: Resource) -> Result<(u64, u64)> {
    imp::get(resource.0).map_err(|e| Error::os(format!("getrlimit({})", resource.0), e))
}

/// Sets `resource` to `(soft, hard)` (C: `dk_rlimit_set`).
pub fn set(resource: Resource, soft: u64, hard: u64) -> Result<()> {
    imp::set(resource.0, soft, hard).map_err(|e| Error::os(format!("setrlimit({})", resource.0), e))
}

/// Sets the soft `RLIMIT_NOFILE` to `wanted`, capped at the hard limit; returns what was
/// obtained (C: `dk_rlimit_nofile`).
pub fn nofile(wanted: u64) -> Result<u64> {
    imp::raise_nofile(wanted).map_err(|e| Error::os("RLIMIT_NOFILE", e))
}

/// Disables core dumps (`RLIMIT_CORE` soft and hard 0; C: `dk_rlimit_disable_core`).
pub fn disable_core() -> Result<()> {
    imp::disable_core().map_err(|e| Error::os("RLIMIT_CORE", e))
}
