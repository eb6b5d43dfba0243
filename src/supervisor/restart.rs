//! Reaping and restarting: exactly our own workers are reaped; crashed ones are respawned
//! with a crash-loop throttle; the worker count is driven toward the target, and a rolling
//! restart one worker at a time.

use super::*;

impl Supervisor {
    /// Reaps exactly our own workers.
    pub(super) fn reap(&mut self) {
        let now = sys::now_ms();
        for i in 0..MAX_WORKERS {
            let s = self.slots[i];
            if s.pid <= 0 {
                continue;
            }
            let mut st = 0;
            // SAFETY: waiting for one specific child of ours, without blocking.
            let r = unsafe { libc::waitpid(s.pid, &mut st, libc::WNOHANG) };
            if r != s.pid {
                if r < 0 && sys::get_errno() == libc::ECHILD {
                    st = 0; // somebody else reaped it: treat as gone
                } else {
                    continue;
                }
            }
            sys::close(s.ready_fd);
            self.slots[i] = EMPTY;
            self.emit(event::EXITED, s.pid, st);
            if self.stopping || s.stopping {
                continue;
            }
            if self.rolling && s.generation == self.generation && !s.ready {
                self.abandon_roll(s.pid, st);
            }
            let clean = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
            let quick = now.saturating_sub(s.started) < 1000;
            if clean && (s.ready || !quick) {
                continue; // max-requests: replaced at once, not a crash
            }
            // A failure, or a clean exit before the worker ever served: throttled below.
            if quick {
                self.crashes += 1;
                let step = ((self.crashes - 1) / 3).min(3);
                let delay = 1000u64 << step;
                self.next_spawn = now + delay;
                self.emit(event::RESPAWN_DELAYED, s.pid, delay as i32);
            } else {
                self.crashes = 0;
            }
        }
    }

    /// A new worker of a rolling restart exited before it was ready: stop the roll and keep
    /// the old generation serving (its workers become the current generation again), rather
    /// than stopping good workers for new ones that cannot start. A program that binds its
    /// own port instead of using the inherited listeners fails exactly so (`EADDRINUSE`
    /// while the old copy holds the port).
    pub(super) fn abandon_roll(&mut self, pid: i32, status: c_int) {
        self.rolling = false;
        let cur = self.generation;
        for s in self.slots.iter_mut().filter(|s| s.pid > 0 && !s.stopping) {
            s.generation = cur;
        }
        let _ = crate::notify::ready();
        self.emit(event::RELOAD_FAILED, pid, status);
    }

    /// Spawns or stops workers toward the target, and drives a rolling restart.
    pub(super) fn maintain(&mut self) {
        let now = sys::now_ms();
        let target = self.workers as usize;
        let cur = self.generation;
        let old = self
            .live()
            .filter(|s| !s.stopping && s.generation < cur)
            .count();
        let active = self.active();
        if old > 0 {
            let starting = self
                .live()
                .any(|s| !s.stopping && s.generation == cur && !s.ready);
            if starting {
                return;
            }
            if active <= target {
                if now >= self.next_spawn {
                    // A replacement takes the index of the old worker it replaces (the oldest,
                    // stopped once this one is ready); a missing worker gets a free index.
                    let index = match self.oldest(|s| s.generation < cur) {
                        Some(o) if active == target => self.slots[o].index,
                        _ => self.free_index(),
                    };
                    let _ = self.spawn(index);
                }
            } else if let Some(i) = self.oldest(|s| s.generation < cur) {
                self.stop_one(i);
            }
            return;
        }
        if active < target && now >= self.next_spawn {
            for _ in active..target {
                if self.spawn(self.free_index()).is_err() {
                    break;
                }
            }
        } else if active > target {
            for _ in target..active {
                // The highest index goes, so the others keep 0..N-1 (the newest of equals).
                if let Some(i) = self.highest() {
                    self.stop_one(i);
                }
            }
        }
    }
}
