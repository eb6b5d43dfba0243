//! The slot table: one entry per live worker, and the queries over it.

use super::*;

/// Room in the slot table: twice [`MAX_WORKERS`]. A rolling restart starts a new worker
/// before it stops an old one, old workers hold their slots while they drain, and on
/// listener pairs the whole new generation comes up beside the old one: with only
/// `MAX_WORKERS` slots a HUP at `MAX_WORKERS` workers found no free slot and never took
/// its first step. If even these are full (more than `MAX_WORKERS` workers still draining),
/// the next spawn waits for a slot: one frees when a worker exits, and its SIGCHLD runs the
/// loop again.
pub(super) const SLOTS: usize = 2 * MAX_WORKERS;

#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) pid: i32,
    pub(super) ready_fd: c_int,
    pub(super) started: u64,
    pub(super) ready: bool,
    pub(super) stopping: bool,
    /// When a stopping worker is killed if it still runs (`u64::MAX`: no deadline).
    pub(super) stop_at: u64,
    pub(super) generation: u32,
    pub(super) index: u32,
    /// A USR1 arrived before this worker was ready: forwarded once it is (a worker that has
    /// not installed its handler yet would die of the default action).
    pub(super) usr1_held: bool,
}

pub(super) const EMPTY: Slot = Slot {
    pid: 0,
    ready_fd: -1,
    started: 0,
    ready: false,
    stopping: false,
    stop_at: u64::MAX,
    generation: 0,
    index: 0,
    usr1_held: false,
};

impl Supervisor {
    pub(super) fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.pid > 0)
    }

    pub(super) fn active(&self) -> usize {
        self.live().filter(|s| !s.stopping).count()
    }

    pub(super) fn oldest(&self, f: impl Fn(&Slot) -> bool) -> Option<usize> {
        (0..SLOTS)
            .filter(|&i| self.slots[i].pid > 0 && !self.slots[i].stopping && f(&self.slots[i]))
            .min_by_key(|&i| self.slots[i].started)
    }

    /// The running (not stopping) worker with the highest index, the newest of equals.
    pub(super) fn highest(&self) -> Option<usize> {
        (0..SLOTS)
            .filter(|&i| self.slots[i].pid > 0 && !self.slots[i].stopping)
            .max_by_key(|&i| (self.slots[i].index, self.slots[i].started))
    }

    /// The lowest index no running worker has: the slot a new worker fills (0..N-1).
    pub(super) fn free_index(&self) -> u32 {
        self.free_index_in(None)
    }

    /// The lowest index no running worker (of generation `gen`, when given) has.
    pub(super) fn free_index_in(&self, gen: Option<u32>) -> u32 {
        let mut index = 0u32;
        while self
            .live()
            .any(|s| !s.stopping && s.index == index && gen.is_none_or(|g| s.generation == g))
        {
            index += 1;
        }
        index
    }
}
