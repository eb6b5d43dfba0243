//! The no_std core: every syscall sequence, allocation-free, behind both the C ABI
//! ([`crate::capi`]) and the Rust layer (the crate's public modules). Nothing here is public
//! API: the Rust layer wraps it with owned fds, `Result`s and builders.
#![cfg_attr(not(feature = "std"), allow(dead_code))]

pub(crate) mod caps;
pub(crate) mod daemon;
pub(crate) mod exec;
pub(crate) mod fds;
pub(crate) mod fork;
pub(crate) mod listen;
pub(crate) mod notify;
pub(crate) mod pidfile;
pub(crate) mod privileges;
pub(crate) mod procfs;
pub(crate) mod rlimit;
pub(crate) mod rseq;
pub(crate) mod signals;
pub(crate) mod supervisor;
