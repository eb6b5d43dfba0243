//! Log files (C: `dk_log_open`, `dk_log_reopen`): stdout and stderr appended to a file,
//! reopened after logrotate renamed it (USR1) with `dup2`, so no line written by another
//! thread in between is lost.
//!
//! ```
//! let path = std::env::temp_dir().join(format!("doc-{}.log", std::process::id()));
//! # // SAFETY: dup of our own stdout/stderr, restored below.
//! # let saved = unsafe { (libc::dup(1), libc::dup(2)) }; // the doctest's own stdout/stderr
//! daemonkit::log::open(&path)?;
//! println!("to the log");
//! daemonkit::log::reopen()?; // after a rename, a new file
//! # // SAFETY: putting the saved descriptors back.
//! # unsafe { libc::dup2(saved.0, 1); libc::dup2(saved.1, 2); }
//! assert!(std::fs::read_to_string(&path)?.contains("to the log"));
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{c_path, Error, Result};
use crate::imp::fds as imp;
use std::path::Path;

/// Sends stdout and stderr to `path` (appended, created 0640); the absolute path is kept for
/// [`reopen`]. Errors name the file (`log file /var/log/app.log: Permission denied`).
pub fn open(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let c = c_path("log file", path)?;
    imp::log_open(&c, 0).map_err(|e| Error::os(format!("log file {}", path.display()), e))
}

/// Reopens the log file [`open`] opened (after logrotate renamed it); the old file stays in
/// place on failure.
pub fn reopen() -> Result<()> {
    imp::log_reopen().map_err(|e| Error::os("log reopen", e))
}
