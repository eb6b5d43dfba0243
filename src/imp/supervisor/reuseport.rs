//! Per-slot listeners: one listener given as a group of N `SO_REUSEPORT` sockets bound to the
//! same address (one reuseport group), held open by the master for its whole life. Worker
//! slot `i` (the index a rolling restart's replacement takes over) accepts on socket
//! `i % N` only; the kernel spreads new connections over the N sockets by a hash of the
//! 4-tuple. So each worker polls a socket of its own (no wake-up of every worker for every
//! connection, as with one shared socket), and a slot's accept queue outlives its worker:
//! what was queued when a worker stopped or crashed waits for the slot's next worker.
//!
//! A socket nobody accepts on would still get its share of connections, so the worker count
//! never goes below N (TTOU stops there; [`Supervisor::run`] refuses fewer workers). The
//! sockets are bound by the caller, before any privilege drop; nothing is bound later. An
//! upgrade's new generation gets the whole group: the first socket in the listener's place,
//! the other N - 1 after the last listener, in order.

use super::*;

impl Supervisor {
    /// Adds a listener as `fds.len()` listening TCP sockets with `SO_REUSEPORT` on one
    /// address, one per worker slot (see the module docs). At most one such listener, not
    /// with listener pairs. `EBADF` a closed fd, `EINVAL` not such sockets (or a duplicate,
    /// or pairs in use), `EBUSY` slots given already, `ENOSPC` more fds than an upgrade
    /// can pass.
    pub fn add_listener_slots(&mut self, fds: &[c_int]) -> Res<()> {
        if fds.is_empty() {
            return Err(Errno(libc::EINVAL));
        }
        if fds.iter().any(|&fd| !sys::fd_valid(fd)) {
            return Err(Errno(libc::EBADF));
        }
        if self.nslots > 0 {
            return Err(Errno(libc::EBUSY));
        }
        if self.paired() {
            return Err(Errno(libc::EINVAL));
        }
        for (j, &fd) in fds.iter().enumerate().skip(1) {
            // Each of the others on the first one's address (and all of them reuseport TCP
            // listeners), none given twice.
            if fds[..j].contains(&fd) || !super::steer::is_pair(fds[0], fd) {
                return Err(Errno(libc::EINVAL));
            }
        }
        // The listener itself and the group's other sockets, all passed on an upgrade.
        if self.nlisteners + fds.len() > exec::MAX_FDS - 2 {
            return Err(Errno(libc::ENOSPC));
        }
        self.add_listener(fds[0])?;
        self.slot_listener = self.nlisteners - 1;
        self.slot_fds[..fds.len()].copy_from_slice(fds);
        self.nslots = fds.len();
        Ok(())
    }

    /// The socket worker slot `index` accepts on, for the per-slot listener.
    fn slot_socket(&self, index: u32) -> c_int {
        self.slot_fds[index as usize % self.nslots]
    }

    /// The listeners as a worker of slot `index` gets them: `side`'s sockets, with the
    /// per-slot listener's place taken by the slot's own socket.
    pub(super) fn worker_sockets(&self, index: u32) -> [c_int; exec::MAX_FDS] {
        let mut fds = self.sockets(self.side);
        if self.nslots > 0 {
            fds[self.slot_listener] = self.slot_socket(index);
        }
        fds
    }

    /// The fds an upgrade passes and how many: the listeners, then the per-slot listener's
    /// other sockets in order.
    pub(super) fn upgrade_sockets(&self) -> ([c_int; exec::MAX_FDS], usize) {
        let mut fds = self.sockets(self.side);
        let mut n = self.nlisteners;
        for &fd in self.slot_fds.iter().take(self.nslots).skip(1) {
            fds[n] = fd;
            n += 1;
        }
        (fds, n)
    }

    /// In an in-process worker of slot `index`: its own socket at the per-slot listener's fd
    /// number, and no other socket of the group (it must not keep them open after the master
    /// released them). Async-signal-safe (dup2 and close only).
    pub(super) fn enter_slot_in_child(&self, index: u32) {
        if self.nslots < 2 {
            return;
        }
        let mine = self.slot_socket(index);
        let at = self.listeners[self.slot_listener];
        if mine != at {
            // SAFETY: dup2 of one of our sockets over another of ours.
            unsafe { libc::dup2(mine, at) };
        }
        for &fd in self.slot_fds.iter().take(self.nslots).skip(1) {
            sys::close(fd);
        }
    }

    /// The fewest workers there may be: one per socket of the per-slot listener (a socket
    /// nobody accepts on would still get new connections), else 1.
    pub(super) fn min_workers(&self) -> u32 {
        self.nslots.max(1) as u32
    }
}
