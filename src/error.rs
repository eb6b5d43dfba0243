//! The one error type of the Rust layer: each variant names the object at fault, and every
//! one converts into [`std::io::Error`] (with the same message), so `?` works in functions
//! that return `io::Result` too.
//!
//! ```
//! use daemonkit::{pidfile::Pidfile, Error};
//! let path = std::env::temp_dir().join(format!("doc-err-{}.pid", std::process::id()));
//! let mut first = Pidfile::open(&path)?;
//! first.write()?;
//! match Pidfile::open(&path) {
//!     Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
//!     other => panic!("{:?}", other.err()),
//! }
//! // The same error as an io::Error, with the same text (it names the file).
//! let e: std::io::Error = Pidfile::open(&path).err().unwrap().into();
//! assert!(e.to_string().contains("daemon already running"));
//! first.remove()?;
//! # Ok::<(), daemonkit::Error>(())
//! ```

use crate::sys::Errno;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the Rust layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another live instance holds the PID file: its pid (0 when it has not written one).
    AlreadyRunning {
        /// The PID file.
        path: PathBuf,
        /// The running instance's pid.
        pid: u32,
    },
    /// Nobody holds the PID file's lock (for `kill`/`stop`; a stale pid is never signalled).
    NotRunning {
        /// The PID file.
        path: PathBuf,
    },
    /// The PID file is locked, but not by the process whose pid it holds (a stale file whose
    /// lock another process took); that pid (if any) was not signalled.
    LockedByOther {
        /// The PID file.
        path: PathBuf,
        /// The pid the file names.
        pid: Option<u32>,
    },
    /// The user does not exist.
    UnknownUser(String),
    /// The group does not exist.
    UnknownGroup(String),
    /// Changing user needs root.
    NotRoot {
        /// The user asked for.
        user: String,
    },
    /// Any other system error, with what it was about (`log file /var/log/app.log`,
    /// `127.0.0.1:80`, `supervisor`, …).
    Io {
        /// What failed.
        context: String,
        /// The system error.
        source: io::Error,
    },
}

impl Error {
    /// An I/O error about `context` (a path, an address, a step): for programs that want
    /// their own failures in the same type (`Error::from_io("accept", e)`).
    pub fn from_io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An error from an errno, about `context`.
    pub(crate) fn os(context: impl Into<String>, e: Errno) -> Error {
        Error::Io {
            context: context.into(),
            source: io::Error::from_raw_os_error(e.0),
        }
    }

    /// An invalid argument, explained.
    pub(crate) fn invalid(context: impl Into<String>) -> Error {
        Error::Io {
            context: context.into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        }
    }

    /// The [`io::ErrorKind`] this error converts to (`AlreadyExists` for
    /// [`Error::AlreadyRunning`], `ResourceBusy` for a second `Signals`, …).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Io { source, .. } => source.kind(),
            other => io::Error::from_raw_os_error(other.errno().unwrap_or(libc::EIO)).kind(),
        }
    }

    /// The errno behind the error, when there is one (`EEXIST` for [`Error::AlreadyRunning`],
    /// `ESRCH` for an unknown user, …).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::AlreadyRunning { .. } => Some(libc::EEXIST),
            Error::NotRunning { .. } => Some(libc::ESRCH),
            Error::LockedByOther { .. } => Some(libc::EBUSY),
            Error::UnknownUser(_) => Some(libc::ESRCH),
            Error::UnknownGroup(_) => Some(libc::ENOENT),
            Error::NotRoot { .. } => Some(libc::EPERM),
            Error::Io { source, .. } => source.raw_os_error(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRunning { path, pid } => write!(
                f,
                "pid file {}: daemon already running (PID: {pid})",
                path.display()
            ),
            Error::NotRunning { path } => write!(f, "pid file {}: not running", path.display()),
            Error::LockedByOther { path, pid } => {
                f.write_str(&crate::pidfile::foreign_text(path, pid.map(|p| p as i32)))
            }
            Error::UnknownUser(u) => write!(f, "unknown user '{u}'"),
            Error::UnknownGroup(g) => write!(f, "unknown group '{g}'"),
            Error::NotRoot { user } => {
                write!(f, "cannot switch to user '{user}': not running as root")
            }
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e.to_string())
    }
}

/// `path` as a C string for the core, or an error naming it (`what PATH: ...`).
pub(crate) fn c_path(what: &str, path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::invalid(format!(
            "{what} {}: the path holds a NUL byte",
            path.display()
        ))
    })
}

/// `s` as a C string for the core, or an error naming it.
pub(crate) fn c_str(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{what} {s:?}: holds a NUL byte")))
}
