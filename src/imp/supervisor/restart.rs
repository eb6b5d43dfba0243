//! Reaping and restarting: exactly our own workers are reaped; crashed ones are respawned
//! with a crash-loop throttle (capped at [`Supervisor::max_backoff_ms`]) until
//! [`Supervisor::give_up`] says stop; the worker count is driven toward the target, and a
//! rolling restart one worker at a time.

use super::*;

/// The delay before the next start after the `crashes`-th quick crash in a row: 1 s,
/// doubling every third crash, at most `max_ms`.
pub(super) fn backoff_ms(crashes: u32, max_ms: u32) -> u64 {
    let step = (crashes.saturating_sub(1) / 3).min(30);
    (1000u64 << step).min(max_ms as u64)
}

impl Supervisor {
    /// Reaps exactly our own workers (and, with [`REAP_ALL`], every orphan too).
    pub(super) fn reap(&mut self) {
        if self.flags & REAP_ALL == 0 && self.reap_exited() {
            return;
        }
        self.reap_each();
    }

    /// The usual case of a SIGCHLD, without a `waitpid` per worker: asks the kernel which
    /// child has exited (`WNOWAIT`: asking reaps nothing) and, while it is one of ours,
    /// reaps it by pid. False when that cannot tell about every worker: nothing had exited
    /// although a SIGCHLD came (somebody else may have reaped one of ours, or it was
    /// reaped with an earlier one), or the exited child is not ours (the caller's own, an
    /// upgrade's new generation): then [`Self::reap_each`] asks for each worker.
    fn reap_exited(&mut self) -> bool {
        let mut reaped = 0;
        loop {
            // SAFETY: a zeroed siginfo_t is valid storage for waitid to fill.
            let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
            // SAFETY: waitid with a valid out-pointer; WNOWAIT leaves the child unreaped.
            let r = unsafe {
                libc::waitid(
                    libc::P_ALL,
                    0,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                )
            };
            // SAFETY: waitid filled info (or left it zeroed: si_pid 0).
            let pid = if r == 0 { unsafe { info.si_pid() } } else { 0 };
            if pid <= 0 {
                return reaped > 0;
            }
            let Some(i) = self.slots.iter().position(|s| s.pid == pid) else {
                return false;
            };
            let mut st = 0;
            // SAFETY: waiting for one specific child of ours, without blocking.
            let w = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            if w == pid {
                self.exited(i, st);
                reaped += 1;
            } else {
                return false;
            }
        }
    }

    /// Polls each worker by pid.
    fn reap_each(&mut self) {
        for i in 0..SLOTS {
            let pid = self.slots[i].pid;
            if pid <= 0 {
                continue;
            }
            let mut st = 0;
            // SAFETY: waiting for one specific child of ours, without blocking.
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            if r == pid {
                self.exited(i, st);
            } else if r < 0 && sys::get_errno() == libc::ECHILD {
                self.exited(i, 0); // somebody else reaped it: treat as gone
            }
        }
        if self.flags & REAP_ALL != 0 {
            self.reap_orphans();
        }
    }

    /// Worker `i` exited with wait status `st`: its slot is freed, and unless it was told to
    /// stop (or the master is stopping) the restart policy decides what follows.
    pub(super) fn exited(&mut self, i: usize, st: c_int) {
        let now = sys::now_ms();
        let s = self.slots[i];
        sys::close(s.ready_fd);
        self.slots[i] = EMPTY;
        self.emit(event::EXITED, s.pid, st);
        if self.flags & ONCE != 0 {
            // Run once: never respawned; its status is the master's.
            self.status = st;
            if !self.stopping {
                self.begin_stop();
            }
            return;
        }
        if self.stopping || s.stopping {
            return;
        }
        if self.rolling && s.generation == self.generation && !s.ready {
            self.abandon_roll(s.pid, st);
        }
        let clean = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
        let quick = now.saturating_sub(s.started) < 1000;
        if clean && (s.ready || !quick) {
            return; // max-requests: replaced at once, not a crash
        }
        // A failure, or a clean exit before the worker ever served.
        if self.crash_gives_up(now) {
            self.emit(event::GAVE_UP, s.pid, self.give_up.0 as i32);
            self.gave_up = true;
            self.begin_stop();
            return;
        }
        if quick {
            self.crashes += 1;
            let delay = backoff_ms(self.crashes, self.max_backoff_ms);
            self.next_spawn = now + delay;
            self.emit(event::RESPAWN_DELAYED, s.pid, delay as i32);
        } else {
            self.crashes = 0;
        }
    }

    /// Counts a crash at `now`; true when it makes [`Supervisor::give_up`]'s count within
    /// its window.
    fn crash_gives_up(&mut self, now: u64) -> bool {
        let (n, window) = self.give_up;
        if n == 0 {
            return false;
        }
        let cap = self.crash_times.len();
        self.crash_times[self.ncrash % cap] = now;
        self.ncrash += 1;
        let recent = self.crash_times[..self.ncrash.min(cap)]
            .iter()
            .filter(|&&t| now.saturating_sub(t) <= window as u64)
            .count();
        recent >= n as usize
    }

    /// A new worker of a rolling restart exited before it was ready: stop the roll and keep
    /// the old generation serving (its workers become the current generation again), rather
    /// than stopping good workers for new ones that cannot start. A program that binds its
    /// own port instead of using the inherited listeners fails exactly so (`EADDRINUSE`
    /// while the old copy holds the port).
    pub(super) fn abandon_roll(&mut self, pid: i32, status: c_int) {
        self.rolling = false;
        let cur = self.generation;
        if self.paired() {
            // The new generation's other workers are on sockets nobody steers to: they go,
            // and the old generation stays on its own (still the steered ones).
            for i in 0..SLOTS {
                let s = self.slots[i];
                if s.pid > 0 && !s.stopping && s.generation == cur {
                    self.stop_one(i);
                }
            }
            self.side ^= 1;
            self.steered_at = 0;
            let _ = self.steer_to(self.side); // in case the switch had happened already
        }
        for s in self.slots.iter_mut().filter(|s| s.pid > 0 && !s.stopping) {
            s.generation = cur;
        }
        let _ = crate::imp::notify::ready();
        self.emit(event::RELOAD_FAILED, pid, status);
    }

    /// A rolling restart on listener pairs (see `steer`): the whole new generation comes up
    /// on the other sockets, new connections are switched to them, the old sockets' accept
    /// queues drain (at most a second), and only then are the old workers told to stop.
    fn roll_paired(&mut self, now: u64, target: usize, cur: u32) {
        let new_gen = |s: &Slot| !s.stopping && s.generation == cur;
        let up = self.live().filter(|s| new_gen(s)).count();
        if up < target {
            if now >= self.next_spawn {
                let _ = self.spawn(self.free_index_in(Some(cur)));
            }
            return;
        }
        if self.live().any(|s| new_gen(s) && !s.ready) {
            return;
        }
        if self.steered_at == 0 {
            if self.steer_to(self.side).is_err() {
                self.retry_at = now + 100; // tried again then
                return;
            }
            self.retry_at = 0;
            self.steered_at = now.max(1);
            return;
        }
        if self.queued_on(self.side ^ 1) > 0 && now < self.steered_at + 1000 {
            return;
        }
        self.steered_at = 0;
        for i in 0..SLOTS {
            let s = self.slots[i];
            if s.pid > 0 && !s.stopping && s.generation < cur {
                self.stop_one(i);
            }
        }
    }

    /// Spawns or stops workers toward the target, and drives a rolling restart.
    pub(super) fn maintain(&mut self) {
        let now = sys::now_ms();
        if self.retry_at <= now {
            self.retry_at = 0; // due: whatever failed is tried again in this turn
        }
        let target = self.workers as usize;
        let cur = self.generation;
        let old = self
            .live()
            .filter(|s| !s.stopping && s.generation < cur)
            .count();
        let active = self.active();
        if old > 0 && self.paired() {
            self.roll_paired(now, target, cur);
            return;
        }
        if old > 0 {
            let starting = self
                .live()
                .any(|s| !s.stopping && s.generation == cur && !s.ready);
            if starting {
                return;
            }
            let (mut active, mut old) = (active, old);
            if active > target {
                if let Some(i) = self.oldest(|s| s.generation < cur) {
                    self.stop_one(i);
                    active -= 1;
                    old -= 1;
                }
            }
            // The next replacement starts in the same turn: not once the old worker just
            // told to stop has exited (that exit is the next event the loop would sleep
            // for; with busy old workers the roll would take N drains).
            if now >= self.next_spawn && (active < target || (active == target && old > 0)) {
                // A replacement takes the index of the old worker it replaces (the oldest,
                // stopped once this one is ready); a missing worker gets a free index.
                let index = match self.oldest(|s| s.generation < cur) {
                    Some(o) if active == target => self.slots[o].index,
                    _ => self.free_index(),
                };
                let _ = self.spawn(index);
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

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_every_third_crash_up_to_the_cap() {
        let d: Vec<u64> = (1..=13).map(|c| backoff_ms(c, 8_000)).collect();
        assert_eq!(
            d,
            [1000, 1000, 1000, 2000, 2000, 2000, 4000, 4000, 4000, 8000, 8000, 8000, 8000]
        );
        assert_eq!(backoff_ms(100, 60_000), 60_000);
        assert_eq!(backoff_ms(1, 200), 200);
        assert_eq!(backoff_ms(u32::MAX, u32::MAX), u32::MAX as u64);
    }
}
