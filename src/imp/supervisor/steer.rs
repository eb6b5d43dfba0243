//! Generation sockets: zero-downtime rolling restarts for programs that drop connections
//! they have just accepted when told to stop (Starman's prefork children exit between
//! `accept` and serving on HUP; uvicorn closes connections that have not sent a request).
//!
//! A listener can be given as a pair of `SO_REUSEPORT` sockets bound to the same address
//! (`A`, bound first, and `B`): one reuseport group of two, held open by the master for its
//! whole life. Generations alternate between them: the first runs on `A`, the one a HUP
//! starts on `B`, the next on `A` again. A classic BPF program attached to the group
//! (`SO_ATTACH_REUSEPORT_CBPF`, one instruction: return the active index) sends every new
//! connection to the active generation's socket. A rolling restart brings the whole new
//! generation up on the other socket, switches the program to it, waits until the old
//! socket's accept queue is empty (its workers still serve what was queued), and only then
//! tells the old workers to stop: they get no connection after that, so none can be lost
//! in their shutdown. Both sockets are bound before the privilege drop; nothing is bound
//! later (port 80 keeps working for `nobody`).

use super::*;

/// The BPF `ret #k` instruction, as `struct sock_filter`.
#[repr(C)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// `BPF_RET | BPF_K`.
const BPF_RET_K: u16 = 0x06;

/// Sends every new connection of `fd`'s reuseport group to the socket at `index` (the
/// order in which the group's sockets were bound).
pub(super) fn attach(fd: c_int, index: u32) -> Res<()> {
    let insn = SockFilter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: index,
    };
    let prog = SockFprog {
        len: 1,
        filter: &insn,
    };
    // SAFETY: prog points to one valid instruction for the duration of the call.
    sys::cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&prog as *const SockFprog).cast(),
            core::mem::size_of::<SockFprog>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Connections waiting in a listening TCP socket's accept queue (0 when it cannot say).
pub(super) fn queued(fd: c_int) -> u32 {
    // SAFETY: a zeroed tcp_info is valid storage; getsockopt fills at most len bytes.
    unsafe {
        let mut info: libc::tcp_info = core::mem::zeroed();
        let mut len = core::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        if libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        ) != 0
        {
            return 0;
        }
        info.tcpi_unacked
    }
}

fn int_opt(fd: c_int, level: c_int, name: c_int) -> Res<c_int> {
    let mut v: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid out-pointers for an int option.
    sys::cvt(unsafe {
        libc::getsockopt(fd, level, name, (&mut v as *mut c_int).cast(), &mut len)
    })?;
    Ok(v)
}

/// True when `a` and `b` are listening TCP sockets with `SO_REUSEPORT` bound to the same
/// address: a pair for [`Supervisor::add_listener_pair`].
pub(super) fn is_pair(a: c_int, b: c_int) -> bool {
    let ok = |fd| {
        matches!(int_opt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN), Ok(1))
            && matches!(int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT), Ok(1))
            && matches!(int_opt(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL), Ok(p) if p == libc::IPPROTO_TCP)
    };
    if a == b || !ok(a) || !ok(b) {
        return false;
    }
    let mut na = [0u8; 128];
    let mut nb = [0u8; 128];
    match (
        crate::imp::listen::local_name(a, &mut na),
        crate::imp::listen::local_name(b, &mut nb),
    ) {
        (Ok(la), Ok(lb)) => na[..la] == nb[..lb],
        _ => false,
    }
}

impl Supervisor {
    /// Adds a listener as a pair of `SO_REUSEPORT` sockets bound to the same address, `a`
    /// first (see the module docs): rolling restarts then lose no freshly accepted
    /// connection. `EINVAL` unless both are such listening TCP sockets.
    pub fn add_listener_pair(&mut self, a: c_int, b: c_int) -> Res<()> {
        if !sys::fd_valid(a) || !sys::fd_valid(b) {
            return Err(Errno(libc::EBADF));
        }
        if !is_pair(a, b) || self.nslots > 0 {
            return Err(Errno(libc::EINVAL));
        }
        self.add_listener(a)?;
        self.pairs[self.nlisteners - 1] = b;
        Ok(())
    }

    /// Whether any listener is a pair (generation sockets in use; a listener without a pair
    /// is shared by every generation as usual).
    pub(super) fn paired(&self) -> bool {
        self.pairs[..self.nlisteners].iter().any(|&b| b >= 0)
    }

    /// The socket listener `i` has on `side` (0: the first of the pair, 1: the second).
    pub(super) fn socket_of(&self, i: usize, side: u8) -> c_int {
        if side == 1 && self.pairs[i] >= 0 {
            self.pairs[i]
        } else {
            self.listeners[i]
        }
    }

    /// The listeners as `side`'s sockets, for an exec'd worker or an upgrade.
    pub(super) fn sockets(&self, side: u8) -> [c_int; exec::MAX_FDS] {
        let mut out = [-1; exec::MAX_FDS];
        for (i, o) in out.iter_mut().enumerate().take(self.nlisteners) {
            *o = self.socket_of(i, side);
        }
        out
    }

    /// Sends every listener's new connections to `side`'s sockets.
    pub(super) fn steer_to(&self, side: u8) -> Res<()> {
        for i in 0..self.nlisteners {
            if self.pairs[i] >= 0 {
                attach(self.listeners[i], side as u32)?;
            }
        }
        Ok(())
    }

    /// Connections still queued on `side`'s sockets.
    pub(super) fn queued_on(&self, side: u8) -> u32 {
        (0..self.nlisteners)
            .filter(|&i| self.pairs[i] >= 0)
            .map(|i| queued(self.socket_of(i, side)))
            .sum()
    }
}
