//! The output relay: daemonkit's own stdout/stderr (and, unless each worker has a pipe of its
//! own, every worker's, inherited) go into a pipe, and a thread writes what arrives to the
//! `--log` FILE (reopened on USR1, so a program that knows nothing of log rotation still
//! writes to the new file) or, without `--log`, to daemonkit's original stderr.
//!
//! With `--log-prefix` or `--log-timestamps` each worker gets a pipe of its own (the
//! supervisor's worker-output hook), so that every line can be marked with its source
//! (`[worker 2 pid 4242] `) and the time it arrived (`2026-12-07T05:13:22.123Z `). Lines are
//! kept whole: a line split across writes is joined before it is written, a last line
//! without a newline is ended when its writer goes, and only a line longer than 64 KiB is cut.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The longest line kept whole.
const MAX_LINE: usize = 64 * 1024;

/// How lines are marked.
#[derive(Clone, Copy, Default)]
pub struct Marks {
    pub timestamps: bool,
    pub prefix: bool,
}

impl Marks {
    fn any(&self) -> bool {
        self.timestamps || self.prefix
    }
}

/// Where the lines go.
enum Sink {
    File(File),
    Fd(File),
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) {
        let _ = match self {
            Sink::File(f) | Sink::Fd(f) => f.write_all(b),
        };
    }
}

/// One pipe being read: its label and the partial line read so far.
struct Source {
    fd: OwnedFd,
    label: String,
    partial: Vec<u8>,
}

pub struct Relay {
    path: Option<PathBuf>,
    sink: Arc<Mutex<Sink>>,
    marks: Marks,
    /// Pipes made for workers about to be forked, by index, until their SPAWNED event names
    /// the pid (their data waits in the pipe meanwhile).
    pending: Mutex<HashMap<u32, OwnedFd>>,
    add: mpsc::Sender<Source>,
    wake: OwnedFd,
    done: mpsc::Receiver<()>,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 into a valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `2026-12-07T05:13:22.123Z ` for the current time (UTC, from the days-to-civil algorithm).
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z ",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Writes the complete lines of `src.partial` (all of it when `eof`), each marked.
fn flush_lines(src: &mut Source, marks: Marks, sink: &Mutex<Sink>, eof: bool) {
    let mut out = Vec::new();
    loop {
        let cut = match src.partial.iter().position(|&c| c == b'\n') {
            Some(i) => i + 1,
            None if src.partial.len() >= MAX_LINE || (eof && !src.partial.is_empty()) => {
                src.partial.len()
            }
            None => break,
        };
        if marks.timestamps {
            out.extend_from_slice(timestamp().as_bytes());
        }
        if marks.prefix {
            out.extend_from_slice(src.label.as_bytes());
        }
        out.extend(src.partial.drain(..cut));
        if out.last() != Some(&b'\n') {
            out.push(b'\n');
        }
    }
    if !out.is_empty() {
        if let Ok(mut s) = sink.lock() {
            s.write_all(&out);
        }
    }
}

/// The relay thread: polls the wake pipe and every source, writes what they send.
fn run(
    wake: OwnedFd,
    add: mpsc::Receiver<Source>,
    master: Source,
    marks: Marks,
    sink: Arc<Mutex<Sink>>,
) {
    let mut sources = vec![master];
    let mut buf = vec![0u8; 16384];
    loop {
        let mut pfds: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
            .chain(sources.iter().map(|s| s.fd.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: pfds is a valid array of pollfds for its length.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if r < 0 {
            continue; // EINTR (signals are blocked here, but to be sure)
        }
        if pfds[0].revents != 0 {
            // SAFETY: draining our non-blocking wake pipe into a stack buffer.
            unsafe { libc::read(wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            while let Ok(s) = add.try_recv() {
                sources.push(s);
            }
        }
        let mut gone = Vec::new();
        for (i, p) in pfds.iter().enumerate().skip(1) {
            if p.revents == 0 {
                continue;
            }
            let src = &mut sources[i - 1];
            // SAFETY: reading into our buffer from a pipe we own.
            let n = unsafe { libc::read(src.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let data = &buf[..n as usize];
                if marks.any() {
                    src.partial.extend_from_slice(data);
                    flush_lines(src, marks, &sink, false);
                } else if let Ok(mut s) = sink.lock() {
                    s.write_all(data);
                }
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                flush_lines(src, marks, &sink, true);
                gone.push(i - 1);
            }
        }
        for i in gone.into_iter().rev() {
            let s = sources.remove(i);
            if i == 0 && s.label.starts_with("[daemonkit") {
                // daemonkit's own output ended (finish): the workers' pipes are done too.
                for mut w in sources.drain(..) {
                    flush_lines(&mut w, marks, &sink, true);
                }
                return;
            }
        }
    }
}

impl Relay {
    /// Opens `path` (or, without one, keeps daemonkit's stderr as the sink), makes fds 1 and
    /// 2 a pipe and starts the relay thread.
    pub fn start(path: Option<&Path>, marks: Marks) -> io::Result<Relay> {
        let sink = match path {
            Some(p) => Sink::File(open(p)?),
            // SAFETY: F_DUPFD_CLOEXEC of our stderr; the duplicate is owned by the File.
            None => Sink::Fd(unsafe {
                let fd = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                File::from_raw_fd(fd)
            }),
        };
        let sink = Arc::new(Mutex::new(sink));
        let (r, w) = pipe()?;
        let _ = io::stdout().flush();
        for target in [1, 2] {
            // SAFETY: dup2 of a valid fd onto stdout/stderr (clears close-on-exec there).
            if unsafe { libc::dup2(w.as_raw_fd(), target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        drop(w);
        let (wake_r, wake_w) = pipe()?;
        // SAFETY: setting O_NONBLOCK on the wake pipe's ends we own.
        unsafe {
            for fd in [wake_r.as_raw_fd(), wake_w.as_raw_fd()] {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
            }
        }
        let (add, added) = mpsc::channel();
        let (tx, done) = mpsc::channel();
        let master = Source {
            fd: r,
            label: format!("[daemonkit pid {}] ", std::process::id()),
            partial: Vec::new(),
        };
        let s = sink.clone();
        thread::Builder::new()
            .name("log-relay".into())
            .spawn(move || {
                // Signals are for the supervisor's thread.
                daemonkit::signals::block_all();
                run(wake_r, added, master, marks, s);
                let _ = tx.send(());
            })?;
        Ok(Relay {
            path: path.map(Path::to_path_buf),
            sink,
            marks,
            pending: Mutex::new(HashMap::new()),
            add,
            wake: wake_w,
            done,
        })
    }

    /// Whether each worker needs a pipe of its own (its lines are marked).
    pub fn per_worker(&self) -> bool {
        self.marks.any()
    }

    /// For the supervisor's worker-output hook: a pipe for the worker about to be forked in
    /// slot `index`; its write end is the worker's stdout/stderr.
    pub fn worker_pipe(&self, index: u32) -> Option<OwnedFd> {
        let (r, w) = pipe().ok()?;
        self.pending.lock().ok()?.insert(index, r);
        Some(w)
    }

    /// The worker in slot `index` was forked as `pid`: its pipe joins the relay.
    pub fn worker_started(&self, index: u32, pid: i32) {
        let Some(fd) = self.pending.lock().ok().and_then(|mut p| p.remove(&index)) else {
            return;
        };
        let src = Source {
            fd,
            label: format!("[worker {index} pid {pid}] "),
            partial: Vec::new(),
        };
        if self.add.send(src).is_ok() {
            // SAFETY: one byte into our own non-blocking wake pipe.
            unsafe { libc::write(self.wake.as_raw_fd(), b"w".as_ptr().cast(), 1) };
        }
    }

    /// Reopens the log FILE (USR1). On failure the old file is kept and the error logged.
    pub fn reopen(&self) {
        let Some(path) = &self.path else {
            return;
        };
        match open(path) {
            Ok(new) => {
                if let Ok(mut f) = self.sink.lock() {
                    *f = Sink::File(new);
                }
            }
            Err(e) => eprintln!(
                "{}: cannot reopen log {}: {e}; still writing to the old file",
                crate::NAME,
                path.display()
            ),
        }
    }

    /// Closes our ends of the pipe and lets the thread drain it (bounded).
    pub fn finish(self) {
        // SAFETY: opening /dev/null and dup2 onto stdout/stderr.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if null >= 0 {
                libc::dup2(null, 1);
                libc::dup2(null, 2);
                libc::close(null);
            }
        }
        let _ = self.done.recv_timeout(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay_lines(chunks: &[&[u8]], marks: Marks) -> String {
        let dir = std::env::temp_dir().join(format!("dk-relay-{}", std::process::id()));
        let sink = Arc::new(Mutex::new(Sink::File(File::create(&dir).unwrap())));
        let (r, _w) = pipe().unwrap();
        let mut src = Source {
            fd: r,
            label: "[worker 1 pid 7] ".into(),
            partial: Vec::new(),
        };
        for c in chunks {
            src.partial.extend_from_slice(c);
            flush_lines(&mut src, marks, &sink, false);
        }
        flush_lines(&mut src, marks, &sink, true);
        let text = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        text
    }

    #[test]
    fn partial_lines_are_kept_whole_and_marked() {
        let marks = Marks {
            timestamps: false,
            prefix: true,
        };
        let t = relay_lines(&[b"hel", b"lo\nwor", b"ld\n", b"tail"], marks);
        assert_eq!(
            t,
            "[worker 1 pid 7] hello\n[worker 1 pid 7] world\n[worker 1 pid 7] tail\n"
        );
        let t = relay_lines(
            &[b"a\n"],
            Marks {
                timestamps: true,
                prefix: false,
            },
        );
        assert_eq!(t.len(), "2026-12-07T05:13:22.123Z a\n".len(), "{t:?}");
        assert!(t.ends_with("Z a\n") && t.as_bytes()[10] == b'T', "{t:?}");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = timestamp();
        let year: i32 = t[..4].parse().unwrap();
        assert!((2024..3000).contains(&year), "{t}");
        let month: u32 = t[5..7].parse().unwrap();
        let day: u32 = t[8..10].parse().unwrap();
        assert!((1..=12).contains(&month) && (1..=31).contains(&day), "{t}");
    }
}
