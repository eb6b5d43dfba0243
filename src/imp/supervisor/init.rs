//! Init duties, for a master that is a container's PID 1 (or a child subreaper): reaping
//! every orphan ([`REAP_ALL`]), and tini's model of one program run once ([`ONCE`]), whose
//! signals are forwarded and whose status becomes the master's.

use super::*;

/// The signals a [`ONCE`] master forwards to its worker.
const FORWARDED: [c_int; 6] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

impl Supervisor {
    /// Reaps every child that is not one of our workers (orphans of their descendants come
    /// to us); a worker found this way is handed to `exited`. Only with [`REAP_ALL`].
    pub(super) fn reap_orphans(&mut self) {
        loop {
            let mut st = 0;
            // SAFETY: waitpid for any child, without blocking.
            let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if r <= 0 {
                return;
            }
            // An orphan is just reaped; a worker found this way is handed on.
            if let Some(i) = self.slots.iter().position(|s| s.pid == r) {
                self.exited(i, st);
            }
        }
    }

    /// In a [`ONCE`] run: forwards `sig` to the worker (TERM as the stop signal) and returns
    /// true, or false for a signal the master handles as usual (USR1 too: the log is
    /// reopened and USR1 reaches the worker once it is ready). TERM, INT and QUIT start the
    /// graceful stop with that signal (KILL after the graceful timeout; a second one kills).
    pub(super) fn forward(&mut self, sig: c_int) -> bool {
        if !FORWARDED.contains(&sig) || sig == libc::SIGUSR1 {
            return false;
        }
        let stop = matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT);
        let sent = if sig == libc::SIGTERM {
            self.stop_signal
        } else {
            sig
        };
        if stop && self.stopping {
            self.kill_all();
        } else if stop {
            self.begin_stop_with(sent);
        } else {
            for i in 0..SLOTS {
                let pid = self.slots[i].pid;
                if pid > 0 {
                    let _ = self.signal_worker(pid, sent);
                }
            }
        }
        true
    }
}
