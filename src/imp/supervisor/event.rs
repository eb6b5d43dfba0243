//! Supervisor events: the kinds (the `kind` argument of [`super::EventFn`]; the C header
//! documents `pid`/`value` for each) and their one description.

use crate::sys;

/// A worker was started: pid, value = worker index.
pub const SPAWNED: i32 = 1;
/// A worker exited: pid, value = wait status (as from waitpid).
pub const EXITED: i32 = 2;
/// Crash loop: the next spawn waits: pid = 0, value = delay in ms.
pub const RESPAWN_DELAYED: i32 = 3;
/// A worker reported ready: pid, value = index (-1 when assumed after the ready timeout).
pub const WORKER_READY: i32 = 4;
/// Every initial worker is ready and the master reported ready: pid = master, value = N.
pub const READY: i32 = 5;
/// HUP: rolling restart began: value = new generation.
pub const RELOADING: i32 = 6;
/// Rolling restart finished: value = generation.
pub const RELOADED: i32 = 7;
/// Graceful stop began: value = graceful timeout in ms.
pub const STOPPING: i32 = 8;
/// A worker was killed after the graceful timeout (or a second TERM): pid.
pub const KILLED: i32 = 9;
/// Upgrade started: pid of the new generation.
pub const UPGRADE_STARTED: i32 = 10;
/// The new generation is ready; the old one drains: pid of the new one.
pub const UPGRADE_READY: i32 = 11;
/// The upgrade was rolled back: pid, value = 1 failed, 2 exited, 3 timed out, 4 could not start (errno in the log).
pub const UPGRADE_FAILED: i32 = 12;
/// USR1: the log was reopened and workers were told: value = 0 or the negative errno.
pub const LOG_REOPENED: i32 = 13;
/// TTIN/TTOU: value = the new worker count.
pub const WORKERS_CHANGED: i32 = 14;
/// A worker reported a startup failure: pid, value = its code.
pub const WORKER_FAILED: i32 = 15;
/// A rolling restart was abandoned because a new worker exited before it was ready (a
/// program that binds its own port gets EADDRINUSE, say): pid of that worker, value =
/// its wait status. The old generation keeps serving.
pub const RELOAD_FAILED: i32 = 16;
/// The restart policy gave up: pid of the last crashed worker, value = the crash count of
/// its window. Every worker is stopped; `run` returns `GaveUp`.
pub const GAVE_UP: i32 = 17;

/// Room for any event description ([`describe_event`]).
pub const EVENT_TEXT_MAX: usize = 200;

/// The one description of a supervisor event, used by the default log, the C ABI
/// (`dk_event_describe`) and through it the Perl and Zig bindings: `worker 4242 started
/// (index 0)`, `worker 4242 killed by signal 9`, `upgrade failed (the new generation exited
/// before it was ready); still serving`, … No allocation; not for a signal handler (it may
/// call `strerror_r`).
pub fn describe_event(kind: i32, pid: i32, value: i32, b: &mut sys::Buf<EVENT_TEXT_MAX>) {
    fn num(b: &mut sys::Buf<EVENT_TEXT_MAX>, v: i32) {
        if v < 0 {
            b.push(b"-").push_u64(-(v as i64) as u64);
        } else {
            b.push_u64(v as u64);
        }
    }
    fn errno_text(b: &mut sys::Buf<EVENT_TEXT_MAX>, neg: i32) {
        let mut msg = [0u8; 96];
        // SAFETY: strerror_r (XSI) writes at most msg.len() bytes, NUL-terminated, into msg.
        let ok = unsafe { libc::strerror_r(-neg, msg.as_mut_ptr().cast(), msg.len()) } == 0;
        let end = msg.iter().position(|&c| c == 0).unwrap_or(0);
        if ok && end > 0 {
            b.push(&msg[..end]);
        } else {
            b.push(b"errno ").push_u64(-(neg as i64) as u64);
        }
    }
    fn status(b: &mut sys::Buf<EVENT_TEXT_MAX>, st: i32) {
        if libc::WIFSIGNALED(st) {
            b.push(b"killed by signal ")
                .push_u64(libc::WTERMSIG(st) as u64);
        } else {
            b.push(b"exited with status ")
                .push_u64(libc::WEXITSTATUS(st) as u64);
        }
    }
    let p = pid.max(0) as u64;
    match kind {
        SPAWNED => {
            b.push(b"worker ").push_u64(p).push(b" started (index ");
            num(b, value);
            b.push(b")");
        }
        EXITED => {
            b.push(b"worker ").push_u64(p).push(b" ");
            status(b, value);
        }
        RESPAWN_DELAYED => {
            b.push(b"worker crashed at start; next start in ");
            num(b, value);
            b.push(b" ms");
        }
        WORKER_READY if value < 0 => {
            b.push(b"worker ")
                .push_u64(p)
                .push(b" assumed ready (no report within the ready timeout)");
        }
        WORKER_READY => {
            b.push(b"worker ").push_u64(p).push(b" ready");
        }
        READY if value < 0 => {
            b.push(b"master ")
                .push_u64(p)
                .push(b" ready; notification failed: ");
            errno_text(b, value);
        }
        READY => {
            b.push(b"master ").push_u64(p).push(b" ready with ");
            num(b, value);
            b.push(b" workers");
        }
        RELOADING => {
            b.push(b"HUP: rolling restart to generation ");
            num(b, value);
        }
        RELOADED => {
            b.push(b"rolling restart done (generation ");
            num(b, value);
            b.push(b")");
        }
        STOPPING => {
            b.push(b"stopping; graceful timeout ");
            num(b, value);
            b.push(b" ms");
        }
        KILLED => {
            b.push(b"worker ")
                .push_u64(p)
                .push(b" killed after the graceful timeout");
        }
        UPGRADE_STARTED => {
            b.push(b"upgrade: new generation ")
                .push_u64(p)
                .push(b" started");
        }
        UPGRADE_READY => {
            b.push(b"upgrade: new generation ")
                .push_u64(p)
                .push(b" ready; draining the old one");
        }
        UPGRADE_FAILED => {
            b.push(b"upgrade failed (");
            match value {
                1 => {
                    b.push(b"the new generation reported a failure");
                }
                2 => {
                    b.push(b"the new generation exited before it was ready");
                }
                3 => {
                    b.push(b"the new generation was not ready in time");
                }
                4 => {
                    b.push(b"no upgrade program configured");
                }
                v if v < 0 => {
                    b.push(b"could not start the new program: ");
                    errno_text(b, v);
                }
                _ => {
                    b.push(b"could not start the new program");
                }
            }
            b.push(b"); still serving");
        }
        LOG_REOPENED if value < 0 => {
            b.push(b"log reopen failed: ");
            errno_text(b, value);
        }
        LOG_REOPENED => {
            b.push(b"log reopened");
        }
        WORKERS_CHANGED => {
            b.push(b"worker count now ");
            num(b, value);
        }
        WORKER_FAILED => {
            b.push(b"worker ")
                .push_u64(p)
                .push(b" failed to start (code ");
            num(b, value);
            b.push(b")");
        }
        GAVE_UP => {
            b.push(b"giving up: ");
            num(b, value);
            b.push(b" crashes in the give-up window (last: worker ")
                .push_u64(p)
                .push(b"); stopping");
        }
        RELOAD_FAILED => {
            b.push(b"rolling restart abandoned: new worker ")
                .push_u64(p)
                .push(b" ");
            status(b, value);
            b.push(b" before it was ready; the old workers keep serving");
        }
        _ => {
            b.push(b"event ");
            num(b, kind);
            b.push(b" (pid ");
            num(b, pid);
            b.push(b", value ");
            num(b, value);
            b.push(b")");
        }
    }
}

/// The log line for an event when the caller set no callback: `daemonkit: ` and
/// [`describe_event`]'s text, one line on stderr.
pub fn default_log(kind: i32, pid: i32, value: i32) {
    let mut b = sys::Buf::<EVENT_TEXT_MAX>::new();
    describe_event(kind, pid, value, &mut b);
    let mut line = sys::Buf::<{ EVENT_TEXT_MAX + 16 }>::new();
    line.push(b"daemonkit: ").push(b.as_bytes()).push(b"\n");
    let _ = sys::write_all(2, line.as_bytes());
}
