//! # daemonkit
//!
//! Process plumbing for long-running servers, written once: daemonize with readiness, PID
//! files that cannot lie, privilege drop that cannot be undone, signals as a file descriptor,
//! resource limits, prefork supervision, systemd sockets and notification, and zero-downtime
//! restarts.
//!
//! The syscall core (every module's non-`std` part) is `#![no_std]` without allocation and is
//! what `libdaemonkit.so`/`.a` export through the C ABI in [`capi`] (`include/daemonkit.h`).
//! The default `std` feature adds the idiomatic Rust layer re-exported here: `io::Result` or
//! [`Error`], `OwnedFd`/`BorrowedFd`, RAII and builders.
//!
//! The canonical startup order (see `DESIGN.md`):
//! parse config → open+lock PID file → bind listeners → daemonize (readiness kept) → write
//! PID → drop privileges → signals → start app/workers → ready → launcher exits 0.
#![cfg_attr(not(feature = "std"), no_std)]
#![allow(clippy::missing_safety_doc)]

// Linux only (pidfd, close_range, prctl, SCM_RIGHTS, abstract sockets): say so up front
// rather than with a page of unresolved libc items.
#[cfg(not(target_os = "linux"))]
compile_error!("daemonkit supports Linux only");

pub mod sys;

pub mod daemon;
pub mod exec;
pub mod fds;
pub mod listen;
pub mod notify;
pub mod pidfile;
pub mod privileges;
mod procfs;
pub mod rlimit;
pub mod signals;
pub mod supervisor;

pub mod capi;

#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
pub mod rust;

#[cfg(feature = "std")]
pub use daemon::rust::{fail, ready};
#[cfg(feature = "std")]
pub use daemon::Daemonize;
#[cfg(feature = "std")]
pub use error::Error;
#[cfg(feature = "std")]
pub use pidfile::{default_path, Pidfile, State as PidState, Stopped};
#[cfg(feature = "std")]
pub use privileges::drop_privileges;
#[cfg(feature = "std")]
pub use signals::{SignalFlags, Signals};

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
