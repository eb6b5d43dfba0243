//! Forking a worker: the parent side (slot, events) and the child side, which runs only
//! async-signal-safe code until the post-fork hook, then the worker entry or the exec.

use super::*;
use crate::imp::fork::{self, InChild};

/// Room for `SERVER_STARTER_PORT`'s value; more listeners than fit leave it unset.
const STARTER_PORT_MAX: usize = 4096;

impl Supervisor {
    /// `SERVER_STARTER_PORT`'s value for our listeners: `ADDR=FD` joined by `;`, the fds
    /// as an exec'd worker receives them (3..).
    fn starter_port(&self, out: &mut sys::Buf<STARTER_PORT_MAX>) {
        for (i, &fd) in self.listeners[..self.nlisteners].iter().enumerate() {
            let mut name = [0u8; 128];
            let Ok(n) = crate::imp::listen::local_name(fd, &mut name) else {
                continue;
            };
            if out.len > 0 {
                out.push(b";");
            }
            out.push(&name[..n]).push(b"=").push_u64(3 + i as u64);
        }
    }

    /// Forks a worker for slot `index` (0..N-1, see [`Self::free_index`]).
    pub(super) fn spawn(&mut self, index: u32) -> Res<()> {
        let Some(slot) = self.slots.iter().position(|s| s.pid == 0) else {
            return Err(Errno(libc::EAGAIN));
        };
        let mut prepared = if self.exec_argv.is_null() {
            None
        } else {
            let mut port = sys::Buf::<STARTER_PORT_MAX>::new();
            self.starter_port(&mut port);
            let starter = exec::Starter {
                port: if port.overflow { b"" } else { port.as_bytes() },
                generation: self.generation + 1,
            };
            let fds = self.worker_sockets(index);
            match exec::prepare_worker(
                self.exec_argv,
                &fds[..self.nlisteners],
                self.names(),
                &starter,
            ) {
                Ok(p) => Some(p),
                Err(e) => {
                    // The program vanished or lost its execute bit: say so, retry in a second.
                    self.next_spawn = sys::now_ms() + 1000;
                    self.emit(event::RESPAWN_DELAYED, 0, 1000);
                    return Err(e);
                }
            }
        };
        let [r, w] = sys::pipe_cloexec(false)?;
        // Where the worker's stdout and stderr go (the caller's fd, ours to close).
        let out = match self.stdio {
            Some((f, ctx)) => f(ctx, index),
            None => -1,
        };
        // Signals stay blocked in the child: it must not run our handler before `child`
        // resets its signal state (a TERM sent to the new worker would be swallowed there
        // and the worker would live on). The child's reset unblocks them. The child runs
        // async-signal-safe code until the caller's hook.
        let forked = fork::fork(InChild::KeepBlocked);
        if forked != Ok(0) {
            sys::close(out);
        }
        let pid = match forked {
            Ok(pid) => pid,
            Err(e) => {
                sys::close(r);
                sys::close(w);
                self.next_spawn = sys::now_ms() + 1000;
                self.emit(event::RESPAWN_DELAYED, 0, 1000);
                return Err(e);
            }
        };
        if pid == 0 {
            self.child(r, w, index, out, prepared.as_mut());
        }
        if self.flags & SIGNAL_GROUP != 0 {
            // Also here, so that no signal to the group can come before the child's own
            // setpgid (EACCES once it has exec'd: then it did it itself).
            // SAFETY: setpgid on our own child with plain integers.
            unsafe { libc::setpgid(pid, pid) };
        }
        sys::close(w);
        let _ = sys::set_nonblock(r);
        self.slots[slot] = Slot {
            pid,
            ready_fd: r,
            started: sys::now_ms(),
            ready: false,
            stopping: false,
            stop_at: u64::MAX,
            generation: self.generation,
            index,
            usr1_held: false,
        };
        self.emit(event::SPAWNED, pid, index as i32);
        Ok(())
    }

    /// The worker side of the fork. Never returns.
    pub(super) fn child(
        &mut self,
        r: c_int,
        w: c_int,
        index: u32,
        out: c_int,
        prepared: Option<&mut exec::Prepared>,
    ) -> ! {
        // Die with the master; and if it already died, do not start at all.
        // SAFETY: prctl/getppid with plain arguments.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != self.master {
                libc::_exit(1);
            }
        }
        if self.flags & SIGNAL_GROUP != 0 {
            // SAFETY: setpgid on ourselves; a process group of our own.
            unsafe { libc::setpgid(0, 0) };
        }
        if self.side == 1 && prepared.is_none() {
            // An in-process worker of a generation on the second sockets: its code uses the
            // listeners' fd numbers, which now name those sockets.
            for i in 0..self.nlisteners {
                if self.pairs[i] >= 0 {
                    // SAFETY: dup2 of one of our sockets over another of ours.
                    unsafe { libc::dup2(self.pairs[i], self.listeners[i]) };
                }
            }
        }
        if prepared.is_none() {
            // An in-process worker of the per-slot listener: its slot's socket only.
            self.enter_slot_in_child(index);
        }
        if out >= 0 {
            // SAFETY: dup2 onto stdout/stderr (clearing close-on-exec there).
            unsafe {
                libc::dup2(out, 1);
                libc::dup2(out, 2);
            }
            if out > 2 {
                sys::close(out);
            }
        }
        signals::reset_child();
        fds::reset_log_lock_in_child();
        // An in-process worker is the same program: it keeps the master's ignored SIGPIPE. A
        // program a worker executes starts with every disposition at its default, as it
        // would outside.
        if self.sigpipe_ignored && prepared.is_none() {
            let _ = signals::ignore_sigpipe();
        }
        sys::close(r);
        for s in self.slots.iter() {
            sys::close(s.ready_fd);
        }
        if let Some((_, fd, _)) = self.upgrade {
            sys::close(fd);
        }
        daemon::set_channel(Role::Plain, -1);
        fds::close_private_in_child();
        crate::imp::notify::forget_ready_fd_in_child();
        daemon::set_channel(Role::Worker, w);
        if let Some(p) = prepared {
            p.exec_in_child(w);
        }
        if let Some((hook, ctx)) = self.post_fork {
            hook(ctx, index);
        }
        let code = match self.worker {
            Some((f, ctx)) => f(ctx, index),
            None => 1,
        };
        // SAFETY: flush C stdio, then leave without the master's atexit handlers.
        unsafe {
            libc::fflush(core::ptr::null_mut());
            libc::_exit(code & 0xff)
        }
    }
}
