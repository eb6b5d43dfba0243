//! `daemonkit::notify::parse_addr`: `NOTIFY_SOCKET` values.
//!
//! * `Err` only with the documented errnos: `EINVAL` (shorter than 2 bytes, or a NUL inside),
//!   `EAFNOSUPPORT` (neither `/path` nor `@abstract`), `ENAMETOOLONG`; each exactly when the
//!   model says so;
//! * `Ok`: family `AF_UNIX`, length within `sockaddr_un`, `sun_path` holds the input (the
//!   leading `@` as a NUL byte) and nothing else; a path's length counts its trailing NUL, an
//!   abstract name's does not;
//! * the kernel agrees: an abstract address binds, and `getsockname` returns the same length
//!   and bytes.
#![no_main]

use daemonkit::__fuzz::notify::parse_addr;
use daemonkit_fuzz::errno_name;
use libfuzzer_sys::fuzz_target;
use std::mem::{offset_of, size_of};

fuzz_target!(|data: &[u8]| {
    let cap = 108; // sizeof(sun_path) on Linux
    let want = if data.len() < 2 || data.contains(&0) {
        Err(libc::EINVAL)
    } else if data[0] == b'@' {
        if data.len() > cap {
            Err(libc::ENAMETOOLONG)
        } else {
            Ok(offset_of!(libc::sockaddr_un, sun_path) + data.len())
        }
    } else if data[0] == b'/' {
        if data.len() >= cap {
            Err(libc::ENAMETOOLONG)
        } else {
            Ok(offset_of!(libc::sockaddr_un, sun_path) + data.len() + 1)
        }
    } else {
        Err(libc::EAFNOSUPPORT)
    };
    match parse_addr(data) {
        Err(e) => {
            assert_eq!(Err(e.0), want, "{data:?}: {}", errno_name(e.0));
        }
        Ok((sa, len)) => {
            let len = len as usize;
            assert_eq!(Ok(len), want, "{data:?}");
            assert!(len <= size_of::<libc::sockaddr_un>());
            assert_eq!(sa.sun_family, libc::AF_UNIX as libc::sa_family_t);
            let path: Vec<u8> = sa.sun_path.iter().map(|&c| c as u8).collect();
            let abstract_ = data[0] == b'@';
            let mut expect = vec![0u8; path.len()];
            expect[..data.len()].copy_from_slice(data);
            if abstract_ {
                expect[0] = 0;
            }
            assert_eq!(path, expect, "{data:?}");
            if abstract_ {
                check_with_kernel(&sa, len);
            }
        }
    }
});

/// Binds a datagram socket to the abstract address (gone with the socket) and reads it back.
fn check_with_kernel(sa: &libc::sockaddr_un, len: usize) {
    // SAFETY: plain socket calls on our own fd with valid address buffers and lengths.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let r = libc::bind(
            fd,
            (sa as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        );
        if r == 0 {
            let mut out: libc::sockaddr_un = std::mem::zeroed();
            let mut olen = size_of::<libc::sockaddr_un>() as libc::socklen_t;
            let g = libc::getsockname(fd, (&mut out as *mut libc::sockaddr_un).cast(), &mut olen);
            assert_eq!(g, 0);
            assert_eq!(olen as usize, len, "kernel length");
            let n = len - offset_of!(libc::sockaddr_un, sun_path);
            assert_eq!(out.sun_path[..n], sa.sun_path[..n], "kernel address");
        } else {
            // Someone else holds that abstract name.
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EADDRINUSE)
            );
        }
        libc::close(fd);
    }
}
