//! The rest of the Rust layer, gathered for `use daemonkit::rust::*`: listeners, socket
//! activation, notification, fds, logs, rlimits and signals helpers.
pub use crate::fds::{close_fds_from, redirect_output, reopen_output};
pub use crate::listen::{
    bind_tcp, bind_tcp_pair, bind_unix, inherited_listeners, local_addr_string,
};
pub use crate::notify::sd_notify;
pub use crate::signals::rust_ignore_sigpipe as ignore_sigpipe;

use std::io;

fn io_err(what: &str, e: crate::sys::Errno) -> io::Error {
    let os = io::Error::from_raw_os_error(e.0);
    io::Error::new(os.kind(), format!("{what}: {os}"))
}

/// Sets the soft RLIMIT_NOFILE to `wanted` (capped at the hard limit); returns what was
/// obtained.
pub fn set_nofile(wanted: u64) -> io::Result<u64> {
    crate::rlimit::raise_nofile(wanted).map_err(|e| io_err("RLIMIT_NOFILE", e))
}

/// Disables core dumps.
pub fn disable_core_dumps() -> io::Result<()> {
    crate::rlimit::disable_core().map_err(|e| io_err("RLIMIT_CORE", e))
}

/// `(soft, hard)` of an `RLIMIT_*` resource.
pub fn get_rlimit(resource: i32) -> io::Result<(u64, u64)> {
    crate::rlimit::get(resource).map_err(|e| io_err("getrlimit", e))
}

/// Sets or clears close-on-exec.
pub fn set_cloexec(fd: impl std::os::fd::AsRawFd, on: bool) -> io::Result<()> {
    crate::fds::set_cloexec(fd.as_raw_fd(), on).map_err(|e| io_err("fcntl", e))
}
pub use crate::exec::rust::{reexec, self_argv, upgrade, CArgv};
pub use crate::supervisor::rust::{Event, Prefork};
pub use crate::supervisor::{event, Outcome};
