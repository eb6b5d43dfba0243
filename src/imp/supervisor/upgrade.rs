//! USR2: the upgrade sub-machine — a new master generation inherits the listeners and the
//! locked PID file; when it reports ready this one drains, else it is killed (rollback).

use super::*;

impl Supervisor {
    pub(super) fn begin_upgrade(&mut self) {
        if self.upgrade.is_some() {
            return;
        }
        if self.upgrade_argv.is_null() {
            self.emit(event::UPGRADE_FAILED, 0, 4);
            return;
        }
        let pf = if self.pidfile.is_null() {
            -1
        } else {
            // SAFETY: the caller's PID file handle outlives the run.
            unsafe { &*self.pidfile }.fd()
        };
        let (fds, nfds) = self.upgrade_sockets();
        let spec = exec::Spec {
            argv: self.upgrade_argv,
            fds: &fds[..nfds],
            names: self.names(),
            pidfile_fd: pf,
        };
        match exec::spawn(&spec) {
            Ok((pid, fd)) => {
                let _ = sys::set_nonblock(fd);
                self.upgrade = Some((pid, fd, sys::now_ms() + self.upgrade_timeout_ms as u64));
                self.emit(event::UPGRADE_STARTED, pid, 0);
            }
            Err(e) => self.emit(event::UPGRADE_FAILED, 0, e.to_c()),
        }
    }

    pub(super) fn upgrade_event(&mut self) {
        let Some((pid, fd, _)) = self.upgrade.take() else {
            return;
        };
        let mut msg = [0u8; MAX_MESSAGE];
        let r = exec::wait_ready(pid, fd, 1000, &mut msg);
        self.upgrade_done(pid, r, &msg);
    }

    pub(super) fn upgrade_done(
        &mut self,
        pid: i32,
        r: Result<(), exec::Failure>,
        msg: &[u8; MAX_MESSAGE],
    ) {
        match r {
            Ok(()) => {
                self.emit(event::UPGRADE_READY, pid, 0);
                self.upgraded = true;
                if !self.pidfile.is_null() {
                    // SAFETY: the caller's PID file handle outlives the run. The new generation
                    // owns the file now; our reference must not keep its lock alive if it dies
                    // while we drain.
                    unsafe { &mut *self.pidfile }.let_go();
                }
                self.begin_stop();
            }
            Err(f) => {
                if !self.pidfile.is_null() {
                    // SAFETY: the caller's PID file handle outlives the run; rollback rewrites
                    // our pid in case the new generation wrote its own.
                    let _ = unsafe { &mut *self.pidfile }.write();
                }
                let (why, len) = match f {
                    exec::Failure::Failed(_, len) => (1, len),
                    exec::Failure::Exited => (2, 0),
                    exec::Failure::TimedOut => (3, 0),
                };
                if len > 0 {
                    let _ = sys::write_all(2, b"daemonkit: upgrade failed: ");
                    let _ = sys::write_all(2, &msg[..len]);
                    let _ = sys::write_all(2, b"\n");
                }
                self.emit(event::UPGRADE_FAILED, pid, why);
            }
        }
    }
}
