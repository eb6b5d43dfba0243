//! `--ready notify`: an sd_notify socket daemonkit provides. Each worker gets it as
//! `NOTIFY_SOCKET` (an abstract socket, so no file permissions matter after the privilege
//! drop); a `READY=1` datagram from a worker (or a descendant of one) is turned into that
//! worker's readiness report: a thread writes `r` into the worker's `$DAEMONKIT_READY_FD`
//! pipe through `/proc/PID/fd`, after checking that it is one of our own readiness pipes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;

pub struct Notify {
    /// The `NOTIFY_SOCKET` value (`@name`).
    pub address: String,
}

fn ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The worker (a child of `master`) that `pid` is or descends from.
fn worker_of(master: i32, mut pid: i32) -> Option<i32> {
    for _ in 0..64 {
        let p = ppid(pid)?;
        if p == master {
            return Some(pid);
        }
        if p <= 1 {
            return None;
        }
        pid = p;
    }
    None
}

/// Writes `r` into worker `w`'s readiness pipe, if fd `fd` there is one of ours.
fn mark_ready(w: i32, fd: i32) {
    let path = format!("/proc/{w}/fd/{fd}");
    let Ok(target) = std::fs::read_link(&path) else {
        return;
    };
    let ours = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| std::fs::read_link(e.path()).ok().as_ref() == Some(&target))
        })
        .unwrap_or(false);
    if !ours || !target.to_string_lossy().starts_with("pipe:") {
        return;
    }
    let Ok(c) = std::ffi::CString::new(path) else {
        return;
    };
    // SAFETY: open/write/close on a path we built; the pipe has a reader (us).
    unsafe {
        let f = libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        );
        if f >= 0 {
            libc::write(f, b"r".as_ptr().cast(), 1);
            libc::close(f);
        }
    }
}

impl Notify {
    /// Binds the socket and starts the thread. `ready_fd` is the fd number of
    /// `$DAEMONKIT_READY_FD` in a worker.
    pub fn start(ready_fd: i32) -> io::Result<Notify> {
        let master = std::process::id() as i32;
        let name = format!("daemonkit-notify-{master}-{:x}", rand());
        // SAFETY: socket() with constant arguments.
        let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: s was just created and is owned here.
        let sock = unsafe { OwnedFd::from_raw_fd(s) };
        // SAFETY: a zeroed sockaddr_un is valid; the abstract name fits (checked length).
        unsafe {
            let mut sa: libc::sockaddr_un = std::mem::zeroed();
            sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let b = name.as_bytes();
            for (i, &c) in b.iter().enumerate() {
                sa.sun_path[i + 1] = c as libc::c_char;
            }
            let len = std::mem::size_of::<libc::sa_family_t>() + 1 + b.len();
            if libc::bind(
                sock.as_raw_fd(),
                (&sa as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let one: libc::c_int = 1;
            if libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                // Signals are for the supervisor's thread.
                daemonkit::signals::block_all();
                loop {
                    match recv(sock.as_raw_fd()) {
                        Some((pid, msg)) => {
                            let ready = msg.split(|&b| b == b'\n').any(|l| l == b"READY=1");
                            if ready {
                                if let Some(w) = worker_of(master, pid) {
                                    mark_ready(w, ready_fd);
                                }
                            }
                        }
                        None => thread::sleep(std::time::Duration::from_millis(10)),
                    }
                }
            })?;
        Ok(Notify {
            address: format!("@{name}"),
        })
    }
}

fn rand() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom into a valid buffer (failure leaves zeros: the pid still differs).
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), 8, 0) };
    u64::from_ne_bytes(b)
}

/// One datagram and its sender's pid (from SCM_CREDENTIALS).
fn recv(fd: i32) -> Option<(i32, Vec<u8>)> {
    let mut buf = vec![0u8; 4096];
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr fields point to live buffers; CMSG macros walk our control buffer.
    unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.as_mut_ptr().cast();
        m.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(fd, &mut m, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return None;
        }
        let mut pid = 0;
        let mut c = libc::CMSG_FIRSTHDR(&m);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::ucred);
                pid = cred.pid;
            } else if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                // Passed fds are not wanted: close them.
                let data = libc::CMSG_DATA(c) as *const libc::c_int;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    libc::close(std::ptr::read_unaligned(data.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(&m, c);
        }
        buf.truncate(n as usize);
        Some((pid, buf))
    }
}
