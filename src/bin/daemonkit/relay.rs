//! `--log FILE`: the supervisor's and every worker's stdout/stderr go into a pipe (fds 1
//! and 2 of the supervisor, inherited by the workers) and a thread appends what arrives to
//! FILE. USR1 reopens FILE in that thread's hands, so a program that knows nothing of log
//! rotation still writes to the new file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub struct Relay {
    path: PathBuf,
    file: Arc<Mutex<File>>,
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

impl Relay {
    /// Opens FILE, makes fds 1 and 2 the pipe and starts the relay thread.
    pub fn start(path: &Path) -> io::Result<Relay> {
        let file = Arc::new(Mutex::new(open(path)?));
        let mut fds = [0; 2];
        // SAFETY: pipe2 into a valid array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let _ = io::stdout().flush();
        for target in [1, 2] {
            // SAFETY: dup2 of a valid fd onto stdout/stderr (clears close-on-exec there).
            if unsafe { libc::dup2(w.as_raw_fd(), target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        drop(w);
        let (tx, done) = mpsc::channel();
        let f = file.clone();
        thread::Builder::new()
            .name("log-relay".into())
            .spawn(move || {
                // Signals are for the supervisor's thread.
                daemonkit::signals::block_all();
                let mut r = File::from(r);
                let mut buf = [0u8; 16384];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if let Ok(mut f) = f.lock() {
                                let _ = f.write_all(&buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = tx.send(());
            })?;
        Ok(Relay {
            path: path.to_path_buf(),
            file,
            done,
        })
    }

    /// Reopens FILE (USR1). On failure the old file is kept and the error logged into it.
    pub fn reopen(&self) {
        match open(&self.path) {
            Ok(new) => {
                if let Ok(mut f) = self.file.lock() {
                    *f = new;
                }
            }
            Err(e) => eprintln!(
                "{}: cannot reopen log {}: {e}; still writing to the old file",
                crate::NAME,
                self.path.display()
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
