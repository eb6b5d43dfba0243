//! The Rust layer's error type: each variant names the object at fault.

use std::fmt;
use std::io;

/// An error from the Rust layer.
#[derive(Debug)]
pub enum Error {
    /// Another live instance holds the PID file.
    AlreadyRunning { pid: u32 },
    /// Nobody holds the PID file (for `kill`/`stop`).
    NotRunning { path: std::path::PathBuf },
    /// The PID file is locked, but not by the process whose pid it holds (a stale file whose
    /// lock another process took); that pid (if any) was not signalled.
    LockedByOther {
        path: std::path::PathBuf,
        pid: Option<u32>,
    },
    /// The user does not exist.
    UnknownUser(String),
    /// The group does not exist.
    UnknownGroup(String),
    /// Changing user needs root.
    NotRoot { user: String },
    /// Any other system error, with what it was about.
    Io { context: String, source: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRunning { pid } => write!(f, "Daemon already running (PID: {pid})"),
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
        let kind = match &e {
            Error::AlreadyRunning { .. } => io::ErrorKind::AlreadyExists,
            Error::NotRunning { .. } => io::ErrorKind::NotFound,
            Error::LockedByOther { .. } => io::Error::from_raw_os_error(libc::EBUSY).kind(),
            Error::UnknownUser(_) | Error::UnknownGroup(_) => io::ErrorKind::NotFound,
            Error::NotRoot { .. } => io::ErrorKind::PermissionDenied,
            Error::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e.to_string())
    }
}
