//! Listening sockets: TCP and Unix bind helpers, systemd socket activation
//! (`LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`), and fd passing over Unix sockets
//! (`SCM_RIGHTS`).

use crate::sys::{self, Errno, Res};
use core::ffi::{c_int, CStr};
use core::mem::size_of;

/// Bind flag: set `SO_REUSEPORT` as well.
pub const REUSEPORT: u32 = 1;
/// Bind flag: leave the fd inheritable across exec (no `O_CLOEXEC`).
pub const INHERIT: u32 = 2;
/// All bind flags.
pub const ALL_FLAGS: u32 = REUSEPORT | INHERIT;

/// First fd of systemd socket activation.
pub const LISTEN_FDS_START: c_int = 3;

/// A parsed TCP address.
pub enum Addr {
    /// An IPv4 address and port.
    V4(libc::sockaddr_in),
    /// An IPv6 address and port.
    V6(libc::sockaddr_in6),
}

impl Addr {
    fn raw(&self) -> (*const libc::sockaddr, libc::socklen_t, c_int) {
        match self {
            Addr::V4(a) => (
                (a as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as _,
                libc::AF_INET,
            ),
            Addr::V6(a) => (
                (a as *const libc::sockaddr_in6).cast(),
                size_of::<libc::sockaddr_in6>() as _,
                libc::AF_INET6,
            ),
        }
    }
}

extern "C" {
    fn inet_pton(af: c_int, src: *const core::ffi::c_char, dst: *mut core::ffi::c_void) -> c_int;
    fn inet_ntop(
        af: c_int,
        src: *const core::ffi::c_void,
        dst: *mut core::ffi::c_char,
        size: libc::socklen_t,
    ) -> *const core::ffi::c_char;
}

fn pton(family: c_int, host: &[u8], out: *mut core::ffi::c_void) -> bool {
    let mut buf = [0u8; 64];
    // A NUL would end the C string early: `127.0.0.1\0junk:80` must not read as 127.0.0.1.
    if host.len() >= buf.len() || host.contains(&0) {
        return false;
    }
    buf[..host.len()].copy_from_slice(host);
    // SAFETY: buf is NUL-terminated; out points to an in_addr/in6_addr of the right family.
    unsafe { inet_pton(family, buf.as_ptr().cast(), out) == 1 }
}

/// Parses `HOST:PORT`: `127.0.0.1:8080`, `[::1]:8080`, `*:80` or `:80` (all IPv4
/// addresses), `localhost:80` (127.0.0.1). Hosts are numeric otherwise (no DNS). `EINVAL` for
/// anything else.
pub fn parse_tcp(s: &[u8]) -> Res<Addr> {
    let colon = s
        .iter()
        .rposition(|&c| c == b':')
        .ok_or(Errno(libc::EINVAL))?;
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    let port = sys::parse_u64(port)
        .filter(|&p| p <= 65535 && !port.is_empty() && port.iter().all(u8::is_ascii_digit));
    let port = port.ok_or(Errno(libc::EINVAL))? as u16;
    if host.first() == Some(&b'[') {
        if host.last() != Some(&b']') || host.len() < 3 {
            return Err(Errno(libc::EINVAL));
        }
        // SAFETY: an all-zero sockaddr_in6 is valid.
        let mut a: libc::sockaddr_in6 = unsafe { core::mem::zeroed() };
        a.sin6_family = libc::AF_INET6 as _;
        a.sin6_port = port.to_be();
        if !pton(
            libc::AF_INET6,
            &host[1..host.len() - 1],
            (&mut a.sin6_addr as *mut libc::in6_addr).cast(),
        ) {
            return Err(Errno(libc::EINVAL));
        }
        return Ok(Addr::V6(a));
    }
    // SAFETY: an all-zero sockaddr_in is valid.
    let mut a: libc::sockaddr_in = unsafe { core::mem::zeroed() };
    a.sin_family = libc::AF_INET as _;
    a.sin_port = port.to_be();
    match host {
        b"" | b"*" => a.sin_addr.s_addr = 0,
        b"localhost" => a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        h => {
            if !pton(
                libc::AF_INET,
                h,
                (&mut a.sin_addr as *mut libc::in_addr).cast(),
            ) {
                return Err(Errno(libc::EINVAL));
            }
        }
    }
    Ok(Addr::V4(a))
}

fn setopt(fd: c_int, level: c_int, name: c_int, v: c_int) -> Res<()> {
    // SAFETY: v is a valid int option value.
    sys::cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const c_int).cast(),
            size_of::<c_int>() as _,
        )
    })?;
    Ok(())
}

fn sock_flags(flags: u32) -> c_int {
    if flags & INHERIT != 0 {
        0
    } else {
        libc::SOCK_CLOEXEC
    }
}

/// Binds and listens on a TCP address (see [`parse_tcp`]) with `SO_REUSEADDR` (and
/// `SO_REUSEPORT` on request). `backlog <= 0` means 1024. Returns the listening fd.
pub fn tcp(addr: &[u8], backlog: c_int, flags: u32) -> Res<c_int> {
    if flags & !ALL_FLAGS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    tcp_at(&parse_tcp(addr)?, backlog, flags)
}

fn tcp_at(a: &Addr, backlog: c_int, flags: u32) -> Res<c_int> {
    let (sa, len, family) = a.raw();
    // SAFETY: plain socket creation.
    let fd = sys::cvt(unsafe { libc::socket(family, libc::SOCK_STREAM | sock_flags(flags), 0) })?;
    let r = (|| {
        setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if flags & REUSEPORT != 0 {
            setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        if family == libc::AF_INET6 {
            let _ = setopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1);
        }
        // SAFETY: sa/len describe a valid socket address of the socket's family.
        sys::cvt(unsafe { libc::bind(fd, sa, len) })?;
        // SAFETY: plain listen call.
        sys::cvt(unsafe { libc::listen(fd, if backlog <= 0 { 1024 } else { backlog }) })?;
        Ok(fd)
    })();
    if r.is_err() {
        sys::close(fd);
    }
    r
}

/// Two TCP listeners on one address, both `SO_REUSEPORT` (one reuseport group; the
/// supervisor's listener pair, see `supervisor::Supervisor::add_listener_pair`). First a
/// plain bind probes the address, so that a port somebody already listens on — with
/// `SO_REUSEPORT` or not — still gives `EADDRINUSE` instead of a silent share; port 0 gets
/// its port there. Returns `(first, second)`.
pub fn tcp_pair(addr: &[u8], backlog: c_int, flags: u32) -> Res<(c_int, c_int)> {
    if flags & !ALL_FLAGS != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let mut a = parse_tcp(addr)?;
    let (sa, len, family) = a.raw();
    // SAFETY: plain socket creation; the probe is closed below in every case.
    let probe =
        sys::cvt(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    let bound = (|| {
        setopt(probe, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if family == libc::AF_INET6 {
            let _ = setopt(probe, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1);
        }
        // SAFETY: sa/len describe a valid address of the socket's family.
        sys::cvt(unsafe { libc::bind(probe, sa, len) })?;
        local_port(probe)
    })();
    sys::close(probe);
    let port = bound?.to_be();
    match &mut a {
        Addr::V4(v) => v.sin_port = port,
        Addr::V6(v) => v.sin6_port = port,
    }
    let first = tcp_at(&a, backlog, flags | REUSEPORT)?;
    match tcp_at(&a, backlog, flags | REUSEPORT) {
        Ok(second) => Ok((first, second)),
        Err(e) => {
            sys::close(first);
            Err(e)
        }
    }
}

/// Binds and listens on a Unix socket at `path` (mode `mode`, 0 meaning 0666 minus umask;
/// bits above 07777 are not a mode: `EINVAL`).
/// A socket file left behind by a dead server is replaced; one somebody still listens on
/// gives `EADDRINUSE`; a non-socket file at the path gives `EADDRINUSE` too, untouched.
pub fn unix(path: &CStr, mode: u32, backlog: c_int, flags: u32) -> Res<c_int> {
    if flags & !INHERIT != 0 || mode > 0o7777 {
        return Err(Errno(libc::EINVAL));
    }
    let p = path.to_bytes();
    let (sa, len) = crate::imp::notify::parse_addr(p).map_err(|e| {
        if e.0 == libc::EAFNOSUPPORT {
            Errno(libc::EINVAL)
        } else {
            e
        }
    })?;
    // SAFETY: plain socket creation.
    let fd =
        sys::cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | sock_flags(flags), 0) })?;
    let r = (|| {
        let bind = || {
            // SAFETY: sa/len describe a valid sockaddr_un.
            sys::cvt(unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_un).cast(), len) })
        };
        match bind() {
            Ok(_) => {}
            Err(Errno(libc::EADDRINUSE)) if p[0] == b'/' => {
                if !stale_unix_socket(path, &sa, len)? {
                    return Err(Errno(libc::EADDRINUSE));
                }
                // SAFETY: path is a valid C string naming a dead socket file.
                unsafe { libc::unlink(path.as_ptr()) };
                bind()?;
            }
            Err(e) => return Err(e),
        }
        if mode != 0 && p[0] == b'/' {
            // SAFETY: path is a valid C string.
            sys::cvt(unsafe { libc::chmod(path.as_ptr(), mode) })?;
        }
        // SAFETY: plain listen call.
        sys::cvt(unsafe { libc::listen(fd, if backlog <= 0 { 1024 } else { backlog }) })?;
        Ok(fd)
    })();
    if r.is_err() {
        sys::close(fd);
    }
    r
}

/// True when `path` is a socket file nobody accepts on. The probe socket's own error
/// (`EMFILE` with a full fd table) is returned: it says nothing about the path.
fn stale_unix_socket(path: &CStr, sa: &libc::sockaddr_un, len: libc::socklen_t) -> Res<bool> {
    let is_sock = matches!(sys::lstat(path), Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFSOCK);
    if !is_sock {
        return Ok(false);
    }
    // SAFETY: plain socket creation and connect with a valid address.
    unsafe {
        let probe = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if probe < 0 {
            return Err(Errno::last());
        }
        let r = libc::connect(probe, (sa as *const libc::sockaddr_un).cast(), len);
        let e = sys::get_errno();
        sys::close(probe);
        Ok(r != 0 && e == libc::ECONNREFUSED)
    }
}

/// The local port of a bound TCP socket.
pub fn local_port(fd: c_int) -> Res<u16> {
    // SAFETY: storage is large enough for any address; len is its size.
    unsafe {
        let mut ss: libc::sockaddr_storage = core::mem::zeroed();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        sys::cvt(libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ))?;
        match ss.ss_family as c_int {
            libc::AF_INET => Ok(u16::from_be(
                (*(&ss as *const _ as *const libc::sockaddr_in)).sin_port,
            )),
            libc::AF_INET6 => Ok(u16::from_be(
                (*(&ss as *const _ as *const libc::sockaddr_in6)).sin6_port,
            )),
            _ => Err(Errno(libc::EAFNOSUPPORT)),
        }
    }
}

/// Formats the local address of a socket as `HOST:PORT` (`[v6]:PORT`, or the path of a Unix
/// socket) into `out`, NUL-terminated; returns the length without the NUL. `ERANGE` when
/// `out` is too small.
pub fn local_name(fd: c_int, out: &mut [u8]) -> Res<usize> {
    let mut b = sys::Buf::<160>::new();
    // SAFETY: storage is large enough for any address; len is its size.
    unsafe {
        let mut ss: libc::sockaddr_storage = core::mem::zeroed();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        sys::cvt(libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ))?;
        let mut host = [0u8; 64];
        match ss.ss_family as c_int {
            libc::AF_INET => {
                let a = &*(&ss as *const _ as *const libc::sockaddr_in);
                inet_ntop(
                    libc::AF_INET,
                    (&a.sin_addr as *const libc::in_addr).cast(),
                    host.as_mut_ptr().cast(),
                    64,
                );
                let h = CStr::from_bytes_until_nul(&host).map_err(|_| Errno(libc::EINVAL))?;
                b.push(h.to_bytes())
                    .push(b":")
                    .push_u64(u16::from_be(a.sin_port) as u64);
            }
            libc::AF_INET6 => {
                let a = &*(&ss as *const _ as *const libc::sockaddr_in6);
                inet_ntop(
                    libc::AF_INET6,
                    (&a.sin6_addr as *const libc::in6_addr).cast(),
                    host.as_mut_ptr().cast(),
                    64,
                );
                let h = CStr::from_bytes_until_nul(&host).map_err(|_| Errno(libc::EINVAL))?;
                b.push(b"[")
                    .push(h.to_bytes())
                    .push(b"]:")
                    .push_u64(u16::from_be(a.sin6_port) as u64);
            }
            libc::AF_UNIX => {
                let a = &*(&ss as *const _ as *const libc::sockaddr_un);
                let n = (len as usize).saturating_sub(2).min(a.sun_path.len());
                let raw = core::slice::from_raw_parts(a.sun_path.as_ptr().cast::<u8>(), n);
                if raw.first() == Some(&0) {
                    b.push(b"@").push(&raw[1..]);
                } else {
                    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
                    b.push(&raw[..end]);
                }
            }
            _ => return Err(Errno(libc::EAFNOSUPPORT)),
        }
    }
    if b.overflow || b.len >= out.len() {
        return Err(Errno(libc::ERANGE));
    }
    out[..b.len].copy_from_slice(b.as_bytes());
    out[b.len] = 0;
    Ok(b.len)
}

/// Flag for [`listen_fds`]: unset `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` afterwards.
pub const UNSET_ENV: u32 = 1;

/// Most fds [`listen_fds`] accepts in `LISTEN_FDS`.
pub const MAX_LISTEN_FDS: usize = 4096;

/// The pure part of [`listen_fds`]: how many fds the values of `LISTEN_PID` and `LISTEN_FDS`
/// (`None` when unset) pass to the process `my_pid`. `Ok(None)` when they are not for it
/// (`LISTEN_PID` unset or naming another process, or `LISTEN_FDS` unset); `EINVAL` when
/// `LISTEN_PID` is not a number or `LISTEN_FDS` is not a number up to [`MAX_LISTEN_FDS`] (the
/// count is only looked at once the pid matched).
pub fn parse_listen_env(pid: Option<&[u8]>, fds: Option<&[u8]>, my_pid: u64) -> Res<Option<usize>> {
    let Some(pid) = pid else {
        return Ok(None);
    };
    let pid = sys::parse_u64(pid).ok_or(Errno(libc::EINVAL))?;
    if pid != my_pid {
        return Ok(None);
    }
    let Some(n) = fds else {
        return Ok(None);
    };
    sys::parse_u64(n)
        .filter(|&n| n <= MAX_LISTEN_FDS as u64)
        .map(|n| Some(n as usize))
        .ok_or(Errno(libc::EINVAL))
}

/// Parses the socket-activation variables: returns how many fds (from 3) were passed to
/// this process (0 when none, or when `LISTEN_PID` names another process), marks each
/// close-on-exec, and copies `LISTEN_FDNAMES` into `names` (NUL-terminated, empty when
/// absent; `ENAMETOOLONG` when it does not fit). `EBADF` when a passed fd is not open,
/// `EINVAL` for malformed values.
pub fn listen_fds(flags: u32, names: &mut [u8]) -> Res<usize> {
    if flags & !UNSET_ENV != 0 {
        return Err(Errno(libc::EINVAL));
    }
    if let Some(first) = names.first_mut() {
        *first = 0;
    }
    let r = (|| {
        let Some(n) = parse_listen_env(
            sys::getenv(c"LISTEN_PID"),
            sys::getenv(c"LISTEN_FDS"),
            sys::getpid() as u64,
        )?
        else {
            return Ok(0);
        };
        let n = n as c_int;
        for fd in LISTEN_FDS_START..LISTEN_FDS_START + n {
            sys::set_cloexec(fd, true).map_err(|_| Errno(libc::EBADF))?;
        }
        if let Some(v) = sys::getenv(c"LISTEN_FDNAMES") {
            if !names.is_empty() {
                if v.len() >= names.len() {
                    return Err(Errno(libc::ENAMETOOLONG));
                }
                names[..v.len()].copy_from_slice(v);
                names[v.len()] = 0;
            }
        }
        Ok(n as usize)
    })();
    if flags & UNSET_ENV != 0 {
        sys::unsetenv(c"LISTEN_PID");
        sys::unsetenv(c"LISTEN_FDS");
        sys::unsetenv(c"LISTEN_FDNAMES");
    }
    r
}

/// Most fds one message may carry (the kernel's `SCM_MAX_FD`).
pub const MAX_PASS_FDS: usize = 253;
const CMSG_BUF: usize = 1064; // >= CMSG_SPACE(253 * 4)

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF]);

/// Sends `data` (at least one byte) with `fds` over a connected Unix socket. Returns the
/// bytes sent.
pub fn send_fds(sock: c_int, data: &[u8], fds: &[c_int]) -> Res<usize> {
    if data.is_empty() || fds.len() > MAX_PASS_FDS {
        return Err(Errno(libc::EINVAL));
    }
    let mut cbuf = CmsgBuf([0; CMSG_BUF]);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    // SAFETY: msg points to a valid iovec and control buffer; CMSG macros stay inside cbuf
    // because CMSG_SPACE(fds.len()*4) <= CMSG_BUF.
    unsafe {
        let mut msg: libc::msghdr = core::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let bytes = core::mem::size_of_val(fds) as u32;
            msg.msg_control = cbuf.0.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(bytes) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as _;
            core::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(c).cast::<c_int>(),
                fds.len(),
            );
        }
        loop {
            let r = libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL);
            if r < 0 && sys::get_errno() == libc::EINTR {
                continue;
            }
            return sys::cvt_isize(r);
        }
    }
}

/// Receives a message into `buf` and up to `fds.len()` fds (close-on-exec). Returns
/// `(bytes, nfds)`. `EMSGSIZE` when the payload or the fds were truncated (every fd that did
/// arrive is closed then); bytes = 0 means the peer closed.
pub fn recv_fds(sock: c_int, buf: &mut [u8], fds: &mut [c_int]) -> Res<(usize, usize)> {
    if buf.is_empty() || fds.len() > MAX_PASS_FDS {
        return Err(Errno(libc::EINVAL));
    }
    let mut cbuf = CmsgBuf([0; CMSG_BUF]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msg points to valid buffers; we walk the control messages with the CMSG macros
    // within msg_controllen, and copy at most fds.len() ints out.
    unsafe {
        let mut msg: libc::msghdr = core::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        // Room for exactly what the caller can take, so that more is reported as truncated.
        let room = libc::CMSG_SPACE((fds.len().max(1) * size_of::<c_int>()) as u32) as usize;
        msg.msg_controllen = room.min(CMSG_BUF) as _;
        let r = loop {
            let r = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if r < 0 && sys::get_errno() == libc::EINTR {
                continue;
            }
            break sys::cvt_isize(r)?;
        };
        let mut n = 0usize;
        let mut dropped = false;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<c_int>();
                let count =
                    ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<c_int>();
                for i in 0..count {
                    let fd = core::ptr::read_unaligned(data.add(i));
                    if n < fds.len() {
                        fds[n] = fd;
                        n += 1;
                    } else {
                        // Room rounded up by CMSG_SPACE let more in than the caller wanted.
                        sys::close(fd);
                        dropped = true;
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        if dropped || msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            for &fd in &fds[..n] {
                sys::close(fd);
            }
            return Err(Errno(libc::EMSGSIZE));
        }
        Ok((r, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzz/fuzz_targets/listen_addr.rs: `[::\0]:0` parsed as `[::]:0` (inet_pton
    /// stopped at the NUL).
    #[test]
    fn a_nul_in_the_host_is_refused() {
        assert!(parse_tcp(b"127.0.0.1:80").is_ok());
        assert!(parse_tcp(b"[::]:0").is_ok());
        assert_eq!(parse_tcp(b"[::\0]:0").err(), Some(Errno(libc::EINVAL)));
        assert_eq!(
            parse_tcp(b"127.0.0.1\0junk:80").err(),
            Some(Errno(libc::EINVAL))
        );
    }
}
