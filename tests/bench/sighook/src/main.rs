//! The signal-hook reader of `tests/bench/bench_signal.c` (reader `sh`).
//!
//! It uses signal-hook the way its documentation shows for a server: `Signals::new` for the
//! signals, then a blocking `for sig in signals.forever()` loop, stopped through a `Handle`
//! from another thread. signal-hook's handler marks the signal pending and `send()`s a byte
//! into a socketpair (its self-pipe); `forever()` blocks in `read()` on the other end and
//! then drains it and returns the pending kinds.
//!
//! The loop runs on the main thread, like the C readers, so the kernel delivers the signal to
//! the very thread that waits. A watcher thread (the three signals blocked in it, so it never
//! takes one) closes the iterator when the sender sets `stop` (ping) or when `stop` is set and
//! nothing arrived for 300 ms (burst), exactly the C readers' rules.
//!
//! Invocation (by bench_signal only): `sighook-reader ping|burst ROUNDS ROW LAYOUT`, with the
//! shared block (a memfd) as fd 3 and the answer pipe as fd 4. LAYOUT is the C struct's
//! "size,offsets..."; the reader refuses to run unless its `#[repr(C)]` copy matches.

use std::mem::{offset_of, size_of};
use std::process::exit;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

const NMODES: usize = 4;
const MAX_ROUNDS: usize = 20000;
const SHM_FD: libc::c_int = 3;
const ANSWER_FD: libc::c_int = 4;

/// `struct shm` of bench_signal.c, field for field. C's `int64_t`, `long` and their
/// `_Atomic` forms are all 8 bytes, 8-aligned on x86_64/aarch64 Linux, like `AtomicI64`.
#[repr(C)]
struct Shm {
    ready: AtomicI32,
    stop: AtomicI32,
    t0: AtomicI64,
    lat: [[AtomicI64; MAX_ROUNDS]; NMODES],
    last_send_start: [AtomicI64; 65],
    last_recv: [AtomicI64; 65],
    recv_count: [AtomicI64; 65],
    sent_count: [AtomicI64; 65],
    reader_busy_until: AtomicI64,
}

const _: () = assert!(size_of::<libc::c_long>() == 8);
const _: () = assert!(offset_of!(Shm, lat) == 16);
const _: () = assert!(size_of::<Shm>() == 16 + 8 * NMODES * MAX_ROUNDS + 8 * 65 * 4 + 8);

fn layout() -> String {
    format!(
        "{},{},{},{},{},{},{}",
        size_of::<Shm>(),
        offset_of!(Shm, lat),
        offset_of!(Shm, last_send_start),
        offset_of!(Shm, last_recv),
        offset_of!(Shm, recv_count),
        offset_of!(Shm, sent_count),
        offset_of!(Shm, reader_busy_until)
    )
}

/// CLOCK_MONOTONIC in ns, as bench_signal.c's now_ns().
fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn die(code: i32, msg: &str) -> ! {
    eprintln!("sighook-reader: {msg}");
    exit(code)
}

fn map_shm() -> &'static Shm {
    let size = size_of::<Shm>();
    // SAFETY: fstat into a zeroed out-struct; mmap of an fd we were handed; the mapping is
    // never unmapped, so a 'static reference is sound. Shm holds only atomics, so shared
    // access from several processes is fine.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(SHM_FD, &mut st) != 0 || (st.st_size as usize) < size {
            die(3, "fd 3 is not the shared block (or is too small)");
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            SHM_FD,
            0,
        );
        if p == libc::MAP_FAILED {
            die(3, "mmap of fd 3 failed");
        }
        &*(p as *const Shm)
    }
}

/// Blocks or unblocks the three signals in the calling thread.
fn mask(how: libc::c_int) {
    // SAFETY: a sigset built with sigemptyset/sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [SIGUSR1, SIGUSR2, SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        die(
            2,
            "usage: sighook-reader ping|burst ROUNDS ROW LAYOUT (fds 3 and 4 set)",
        );
    }
    let burst = match args[1].as_str() {
        "ping" => false,
        "burst" => true,
        _ => die(2, "mode must be ping or burst"),
    };
    let rounds: usize = args[2].parse().unwrap_or(usize::MAX);
    let row: usize = args[3].parse().unwrap_or(usize::MAX);
    if rounds > MAX_ROUNDS || row >= NMODES {
        die(2, "ROUNDS or ROW out of range");
    }
    if args[4] != layout() {
        die(
            3,
            &format!(
                "struct shm layout differs: C {} vs Rust {}",
                args[4],
                layout()
            ),
        );
    }
    let sh = map_shm();

    let mut signals = Signals::new([SIGUSR1, SIGUSR2, SIGHUP])
        .unwrap_or_else(|e| die(1, &format!("Signals::new: {e}")));
    let handle = signals.handle();

    // The watcher inherits the blocked mask, so only the main thread takes the signals.
    mask(libc::SIG_BLOCK);
    let watcher = thread::spawn(move || loop {
        thread::sleep(Duration::from_millis(20));
        let stop = sh.stop.load(SeqCst) != 0;
        let quiet = now_ns() - sh.reader_busy_until.load(SeqCst) > 300_000_000;
        // SAFETY: getppid has no preconditions. 1 or another reaper: the sender is gone.
        let orphan = unsafe { libc::getppid() } == 1;
        if (stop && (!burst || quiet)) || orphan {
            handle.close();
            return;
        }
    });
    mask(libc::SIG_UNBLOCK);

    sh.ready.fetch_add(1, SeqCst);
    let mut n = 0;
    for sig in signals.forever() {
        let t = now_ns();
        if burst {
            if (1..65).contains(&sig) {
                sh.last_recv[sig as usize].store(t, SeqCst);
                sh.recv_count[sig as usize].fetch_add(1, SeqCst);
                sh.reader_busy_until.store(t, SeqCst);
            }
            continue;
        }
        sh.lat[row][n].store(t - sh.t0.load(SeqCst), SeqCst);
        n += 1;
        // SAFETY: one byte from a static buffer to the answer fd we were handed.
        if unsafe { libc::write(ANSWER_FD, b"x".as_ptr().cast(), 1) } != 1 {
            exit(1);
        }
        if n == rounds {
            break;
        }
    }
    drop(watcher); // detached; exit ends it
    exit(0)
}
