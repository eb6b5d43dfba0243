//! # daemonkit
//!
//! Process plumbing for long-running Linux servers, written once: daemonize with readiness,
//! PID files that cannot lie, privilege drop that cannot be undone, signals as a file
//! descriptor, resource limits, prefork supervision, systemd sockets and notification, and
//! zero-downtime restarts. The same library is `libdaemonkit.so` for C, Perl and Zig
//! (`include/daemonkit.h`), and every module here is named after its C area: `dk_pidfile_*`
//! is [`pidfile`], `dk_listen_*` is [`listen`], `dk_supervisor_*` is [`supervisor`].
//!
//! * Every fd goes in as `impl AsFd`/[`BorrowedFd`](std::os::fd::BorrowedFd) and comes out
//!   as [`OwnedFd`](std::os::fd::OwnedFd) or a std type that owns one
//!   ([`TcpListener`](std::net::TcpListener)); [`pidfile::Pidfile`] and
//!   [`signals::Signals`] are `AsFd`.
//! * One error type, [`Error`]: each variant names the file, user or address at fault, and
//!   it converts into [`std::io::Error`], so `?` works in an `io::Result` function too.
//! * Flags are [`bitflags`] types ([`signals::SignalFlags`], [`listen::ListenFlags`],
//!   [`supervisor::SupervisorFlags`]).
//! * With the `tokio` feature, the `daemonkit::tokio` module adds an async signal stream,
//!   listeners as tokio's, and a supervisor whose workers build their runtime after the fork.
//!
//! ## The startup order
//!
//! Every step has a reason to be where it is: the PID file is locked before anything else
//! (a second instance fails before touching the port), listeners are bound while still
//! root (ports below 1024) and before the fork (the error reaches the terminal), the pid is
//! written after the fork (it is the daemon's), privileges are dropped after everything
//! that needs root, and readiness is reported only when the server serves — the launcher
//! then exits 0, or with the daemon's message and code when startup failed.
//!
//! ```
//! use daemonkit::{daemon::{self, Daemonize}, listen, pidfile::Pidfile, privileges, signals::Signals};
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! # let dir = std::env::temp_dir().join(format!("guide-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # // SAFETY: geteuid cannot fail.
//! # let root = unsafe { libc::geteuid() } == 0;
//! # if root { std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap(); } // nobody's
//! # let pid_path = dir.join("app.pid");
//! // 1. Configuration is parsed (not shown). 2. Lock the PID file.
//! let mut pidfile = Pidfile::open(&pid_path)?;
//! // 3. Bind the listeners.
//! let listener = listen::tcp("127.0.0.1:0")?;
//! // 4. Daemonize, keeping the listener (the PID file is kept anyway). A real daemon leaves
//! //    out `.foreground(true)` (and the options this doctest needs to stay a doctest).
//! Daemonize::new()
//!     .foreground(true)
//!     .keep_stdio()
//!     .no_close_fds()
//!     .keep_fd(&listener)
//!     .timeout(Duration::from_secs(10))
//!     .start()?;
//! // 5. Write the pid. 6. Drop privileges (as root; `nogroup` is Debian's).
//! pidfile.write()?;
//! # if root {
//! privileges::drop("nobody", Some("nogroup"))?;
//! # }
//! // 7. Signals as an fd, for the event loop.
//! let signals = Signals::new(&[libc::SIGTERM, libc::SIGHUP])?;
//! // 8. Start serving, 9. report readiness: the launcher exits 0.
//! daemon::ready()?;
//! # let addr = listener.local_addr().unwrap();
//! # let mut c = std::net::TcpStream::connect(addr).unwrap();
//! let (mut conn, _) = listener.accept().map_err(|e| daemonkit::Error::from_io("accept", e))?;
//! # c.write_all(b"hi").unwrap();
//! let mut buf = [0u8; 2];
//! conn.read_exact(&mut buf).unwrap();
//! # drop(c);
//! // ... until TERM arrives on `signals` (poll it with the listener: `fds::poll_in`).
//! # // SAFETY: raising a signal registered just above.
//! # unsafe { libc::raise(libc::SIGTERM) };
//! assert_eq!(signals.wait(Some(Duration::from_secs(5)))?, Some(libc::SIGTERM));
//! drop(signals);
//! pidfile.remove()?; // the pid is ours: unlinked (its directory is writable by nobody)
//! # std::fs::remove_dir(&dir).unwrap();
//! # Ok::<(), daemonkit::Error>(())
//! ```
//!
//! A prefork server hands the listener to [`supervisor::Supervisor`] instead of serving
//! itself; `examples/rust/` in the repository has a complete server for each shape.
//!
//! ## Features
//!
//! * `std` (default): this Rust layer. Without it the crate is the `no_std` core that the
//!   C libraries are built from (`cargo build --release --no-default-features`).
//! * `tokio`: the `daemonkit::tokio` module (an async signal stream over `AsyncFd`, tokio listeners, `Supervisor::run_tokio`, a graceful drain).
//! * `cli`: kept for compatibility; the `daemonkit` command needs only `std`.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(feature = "std", warn(missing_docs))]
#![allow(clippy::missing_safety_doc)]

// Linux only (pidfd, close_range, prctl, SCM_RIGHTS, abstract sockets): say so up front
// rather than with a page of unresolved libc items.
#[cfg(not(target_os = "linux"))]
compile_error!("daemonkit supports Linux only");

pub(crate) mod imp;
#[doc(hidden)]
pub mod sys;

/// The C ABI (`include/daemonkit.h`): what `libdaemonkit.so`/`.a` export. Not for Rust
/// callers: use the modules above.
#[doc(hidden)]
pub mod capi;

#[cfg(feature = "std")]
pub mod daemon;
#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
pub mod exec;
#[cfg(feature = "std")]
pub mod fds;
#[cfg(feature = "std")]
pub mod listen;
#[cfg(feature = "std")]
pub mod log;
#[cfg(feature = "std")]
pub mod notify;
#[cfg(feature = "std")]
pub mod pidfile;
#[cfg(feature = "std")]
pub mod privileges;
#[cfg(feature = "std")]
pub mod rlimit;
#[cfg(feature = "std")]
pub mod signals;
#[cfg(feature = "std")]
pub mod supervisor;
#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(feature = "std")]
pub use error::{Error, Result};

/// The parsers the fuzz targets drive (`fuzz/`), reached without making them API.
#[doc(hidden)]
pub mod __fuzz {
    /// Listen addresses and `LISTEN_*`.
    pub mod listen {
        pub use crate::imp::listen::{
            listen_fds, parse_listen_env, parse_tcp, Addr, MAX_LISTEN_FDS, UNSET_ENV,
        };
        #[cfg(feature = "std")]
        pub use crate::listen::fd_names;
    }
    /// `NOTIFY_SOCKET`.
    pub mod notify {
        pub use crate::imp::notify::parse_addr;
    }
    /// PID file content.
    pub mod pidfile {
        pub use crate::imp::pidfile::parse_pid;
    }
    /// User and group names.
    pub mod privileges {
        pub use crate::imp::privileges::{
            lookup_group, lookup_user, well_formed, ERR_UNKNOWN_GROUP, ERR_UNKNOWN_USER,
        };
    }
}

#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort is always safe to call; no panic may unwind across the C boundary.
    unsafe { libc::abort() }
}

// libcore's and compiler_builtins' precompiled objects carry unwind tables that name
// `rust_eh_personality`; with panic = "abort" nothing ever unwinds, but a linker that pulls
// those archive members (Zig's does) still needs the symbol. A weak definition satisfies it,
// loses to a real one (a std Rust library linked into the same program), and is not exported
// from the shared library (cdylib exports only the dk_ functions).
#[cfg(all(not(feature = "std"), target_arch = "x86_64"))]
core::arch::global_asm!(
    ".weak rust_eh_personality",
    ".type rust_eh_personality,@function",
    "rust_eh_personality:",
    "ud2"
);
#[cfg(all(not(feature = "std"), target_arch = "aarch64"))]
core::arch::global_asm!(
    ".weak rust_eh_personality",
    ".type rust_eh_personality,%function",
    "rust_eh_personality:",
    "brk #0"
);
