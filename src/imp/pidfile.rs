//! PID files with BSD pidfile(3) semantics, hardened.
//!
//! * [`PidFile::open`] runs before the fork: it opens the path with
//!   `O_RDWR|O_CREAT|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC` (a symlink is refused, a FIFO cannot hang
//!   us), refuses anything but a regular file, takes `flock(LOCK_EX|LOCK_NB)` and re-checks
//!   that the path still names the locked inode (another instance may have removed and
//!   recreated it). The lock is held for the daemon's whole life; liveness is the lock, never
//!   `kill(pid, 0)`.
//! * [`PidFile::write`] runs after the fork: truncate, pid, newline, mode 0644.
//! * [`PidFile::close`] releases this process's reference without removing the file (forked
//!   workers); [`PidFile::remove`] unlinks it, but only in the process whose pid it holds.
//! * [`check`] and [`kill`] answer and signal from the lock, so a recycled pid is never
//!   signalled: `kill` pins the process with a pidfd and re-checks the lock and content first.
//!
//! A leftover file after an unclean exit, or because the directory was not writable after a
//! privilege drop, is harmless: its lock is free, so the next start takes it over.

use crate::imp::fds;
use crate::imp::procfs;
use crate::sys::{self, Errno, Res, PATH_MAX};
use core::ffi::{c_int, CStr};

/// Environment variable through which a re-exec or upgrade hands the locked PID file fd to
/// the new program image (see [`crate::imp::exec`]).
pub const ENV_FD: &CStr = c"DAEMONKIT_PIDFILE_FD";

/// `EBUSY`: the file is locked, but not by the process whose pid it holds (a stale file whose
/// lock somebody else took). Nobody is signalled or reported as running.
pub const ERR_FOREIGN: i32 = libc::EBUSY;

/// How long a starter or checker waits for a lock holder to write its pid.
const WAIT_FOR_CONTENT_MS: u64 = 1000;

/// An open, locked PID file.
pub struct PidFile {
    fd: c_int,
    dev: u64,
    ino: u64,
    /// The pid that last wrote the file from this handle (0: not written).
    writer: i32,
    /// The process that opened (created or locked) the file through this handle.
    opener: i32,
    /// Adopted from a predecessor image (re-exec or upgrade) rather than opened here.
    inherited: bool,
    path: [u8; PATH_MAX],
    path_len: usize,
}

/// Why [`PidFile::open`] failed: the errno, and for `EEXIST` the holder's pid (0 when the
/// holder has not written one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError {
    pub errno: Errno,
    pub pid: i32,
}

impl From<Errno> for OpenError {
    fn from(errno: Errno) -> Self {
        OpenError { errno, pid: 0 }
    }
}

use sys::{fstat, lstat};

fn is_regular(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// Parses PID file content: decimal digits with optional whitespace, 1..=i32::MAX.
pub fn parse_pid(content: &[u8]) -> Option<i32> {
    match sys::parse_u64(content) {
        Some(v) if v >= 1 && v <= i32::MAX as u64 => Some(v as i32),
        _ => None,
    }
}

/// True when the open file has no content.
fn file_is_empty(fd: c_int) -> bool {
    matches!(fstat(fd), Ok(st) if st.st_size == 0)
}

/// Reads and parses the pid held in an open PID file.
fn read_pid(fd: c_int) -> Option<i32> {
    let mut buf = [0u8; 32];
    // SAFETY: reading into a valid stack buffer at offset 0.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 || n as usize == buf.len() {
        return None;
    }
    parse_pid(&buf[..n as usize])
}

/// Reads the pid, waiting up to [`WAIT_FOR_CONTENT_MS`] while the file is empty or
/// unparsable and its lock is still held (the holder locked it but has not written yet).
fn read_pid_of_holder(fd: c_int) -> i32 {
    let deadline = sys::now_ms() + WAIT_FOR_CONTENT_MS;
    loop {
        if let Some(p) = read_pid(fd) {
            return p;
        }
        if sys::now_ms() >= deadline || !lock_is_held(fd) {
            return 0;
        }
        sys::sleep_ms(10);
    }
}

/// True when another open file description holds a lock on the file behind `fd`.
fn lock_is_held(fd: c_int) -> bool {
    // SAFETY: flock on an fd; a shared non-blocking probe that we release at once.
    unsafe {
        if libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB) == 0 {
            libc::flock(fd, libc::LOCK_UN);
            false
        } else {
            sys::get_errno() == libc::EWOULDBLOCK
        }
    }
}

/// `flock(LOCK_EX|LOCK_NB)`, tried a few times over ~10 ms so that a concurrent [`check`]'s
/// momentary shared probe of a stale file is not mistaken for a live holder.
fn lock_ex_nb(fd: c_int) -> Res<()> {
    let mut tries = 0;
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = Errno::last();
        tries += 1;
        if e.0 != libc::EWOULDBLOCK || tries >= 4 {
            return Err(e);
        }
        sys::sleep_ms(3);
    }
}

fn open_nofollow(path: &CStr, flags: c_int, mode: u32) -> Res<c_int> {
    sys::retry(|| {
        // SAFETY: path is a valid C string; flags and mode are plain integers.
        unsafe {
            libc::open(
                path.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        }
    })
}

impl PidFile {
    /// Opens and locks `path` (mode `mode`, 0 meaning 0644; above 07777: `EINVAL`).
    ///
    /// Errors: `EEXIST` with the holder's pid when a live instance holds the lock; `ELOOP` for
    /// a symlink; `EINVAL` for something that is not a regular file (FIFO, socket, device);
    /// `EISDIR`; `ENAMETOOLONG`; any error of open(2), flock(2) or ftruncate(2).
    pub fn open(path: &CStr, mode: u32) -> Result<PidFile, OpenError> {
        let bytes = path.to_bytes();
        if bytes.is_empty() {
            return Err(Errno(libc::ENOENT).into());
        }
        if bytes.len() >= PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG).into());
        }
        if mode > 0o7777 {
            return Err(Errno(libc::EINVAL).into());
        }
        let mode = if mode == 0 { 0o644 } else { mode };
        let mut pf = PidFile {
            fd: -1,
            dev: 0,
            ino: 0,
            writer: 0,
            opener: sys::getpid(),
            inherited: false,
            path: [0; PATH_MAX],
            path_len: 0,
        };
        // Remember the absolute path: remove() runs after the daemon's chdir("/").
        pf.path_len = sys::absolutize(bytes, &mut pf.path)?;

        if let Some(fd) = Self::inherited(path) {
            let st = fstat(fd)?;
            pf.fd = fd;
            pf.dev = st.st_dev;
            pf.ino = st.st_ino;
            pf.inherited = true;
            fds::register_private(fd);
            return Ok(pf);
        }

        // A few rounds: the path may be replaced between open and lock, and a stale file's
        // lock may be probed for a moment by a concurrent `check`.
        for _round in 0..100 {
            let fd = open_nofollow(path, libc::O_RDWR | libc::O_CREAT, mode)?;
            let st = match fstat(fd) {
                Ok(st) => st,
                Err(e) => {
                    sys::close(fd);
                    return Err(e.into());
                }
            };
            if !is_regular(&st) {
                sys::close(fd);
                return Err(Errno(libc::EINVAL).into());
            }
            if let Err(e) = lock_ex_nb(fd) {
                if e.0 != libc::EWOULDBLOCK {
                    sys::close(fd);
                    return Err(e.into());
                }
                let pid = read_pid_of_holder(fd);
                // "Already running (PID: N)" only when N provably holds the lock; a lock
                // taken by somebody else on a stale file is reported as such (EBUSY). When
                // N's fds cannot be inspected (another user's daemon) EEXIST stays: the lock
                // is held either way, and nothing is signalled here.
                let foreign = matches!(procfs::holds_flock(pid, st.st_dev, st.st_ino), Ok(false));
                let held = lock_is_held(fd);
                sys::close(fd);
                if !held || !Self::path_names(path, &st) {
                    continue; // the holder went away or the file was replaced: look again
                }
                return Err(OpenError {
                    errno: Errno(if foreign && pid > 0 {
                        ERR_FOREIGN
                    } else {
                        libc::EEXIST
                    }),
                    pid,
                });
            }
            // Locked: make sure the path still names this inode.
            if !Self::path_names(path, &st) {
                sys::close(fd);
                continue;
            }
            // Clear stale content now, so nobody reads a dead instance's pid while we hold
            // the lock and have not written ours yet.
            // SAFETY: ftruncate/fchmod on our own fd.
            unsafe {
                if libc::ftruncate(fd, 0) != 0 {
                    let e = Errno::last();
                    sys::close(fd);
                    return Err(e.into());
                }
                libc::fchmod(fd, mode);
            }
            pf.fd = fd;
            pf.dev = st.st_dev;
            pf.ino = st.st_ino;
            fds::register_private(fd);
            return Ok(pf);
        }
        Err(Errno(libc::EAGAIN).into())
    }

    /// True when `path` currently names the inode described by `st`.
    fn path_names(path: &CStr, st: &libc::stat) -> bool {
        matches!(lstat(path), Ok(now) if now.st_dev == st.st_dev && now.st_ino == st.st_ino)
    }

    /// Adopts a locked PID file fd handed over by a re-exec or an upgrade
    /// (`DAEMONKIT_PIDFILE_FD`), if it refers to `path` and its lock is ours.
    fn inherited(path: &CStr) -> Option<c_int> {
        let v = sys::getenv(ENV_FD)?;
        let fd = sys::parse_u64(v).filter(|&n| n <= c_int::MAX as u64)? as c_int;
        sys::unsetenv(ENV_FD);
        let st = fstat(fd).ok()?;
        if !is_regular(&st) || !Self::path_names(path, &st) {
            // Handed over for another path (the new image moved its PID file): release it,
            // so the old file's lock does not outlive its use.
            if is_regular(&st) {
                fds::unregister_private(fd);
                sys::close(fd);
            }
            return None;
        }
        // Converting a lock our own open file description holds always succeeds; a different
        // description's lock would make this fail.
        // SAFETY: flock on an fd handed to us.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return None;
        }
        sys::set_cloexec(fd, true).ok()?;
        Some(fd)
    }

    /// Writes this process's pid (truncate, pid, newline).
    pub fn write(&mut self) -> Res<()> {
        let pid = sys::getpid();
        let mut b = sys::Buf::<24>::new();
        b.push_u64(pid as u64).push(b"\n");
        // SAFETY: ftruncate and pwrite on our own fd with a valid buffer.
        unsafe {
            sys::cvt(libc::ftruncate(self.fd, 0))?;
            let n = libc::pwrite(self.fd, b.data.as_ptr().cast(), b.len, 0);
            if n < 0 {
                return Err(Errno::last());
            }
            if n as usize != b.len {
                return Err(Errno(libc::ENOSPC));
            }
        }
        self.writer = pid;
        Ok(())
    }

    /// The locked fd (close-on-exec).
    pub fn fd(&self) -> c_int {
        self.fd
    }

    /// The path as given to [`PidFile::open`].
    pub fn path(&self) -> &[u8] {
        &self.path[..self.path_len]
    }

    fn path_cstr<'a>(&self, buf: &'a mut [u8; PATH_MAX + 1]) -> &'a CStr {
        buf[..self.path_len].copy_from_slice(self.path());
        buf[self.path_len] = 0;
        CStr::from_bytes_with_nul(&buf[..=self.path_len]).unwrap_or(c"")
    }

    /// True when this process may unlink the file: the path still names the locked inode,
    /// and either the file holds this process's pid, or this process opened (locked) it itself
    /// and nothing was written yet (a start that failed before writing its pid). A generation
    /// started by an upgrade owns the adopted file only once it has reported ready: before
    /// that, the old generation may still roll back to it.
    pub fn is_owner(&self) -> bool {
        let me = sys::getpid();
        if self.fd < 0 {
            return false;
        }
        if self.inherited
            && crate::imp::daemon::role() == crate::imp::daemon::Role::Upgrade
            && !crate::imp::daemon::ready_sent()
        {
            return false;
        }
        let mut buf = [0u8; PATH_MAX + 1];
        let same = matches!(lstat(self.path_cstr(&mut buf)), Ok(st) if st.st_dev == self.dev && st.st_ino == self.ino);
        if !same {
            return false;
        }
        match read_pid(self.fd) {
            Some(p) => p == me,
            None => self.opener == me && !self.inherited && file_is_empty(self.fd),
        }
    }

    /// Closes this process's reference without removing the file. The lock stays held as
    /// long as another process (the daemon, when a worker calls this) keeps its reference.
    pub fn close(mut self) {
        self.release();
    }

    /// Lets go of this process's reference to the file and its lock without unlinking it,
    /// keeping the handle valid: [`PidFile::fd`] is -1 afterwards, closing it does nothing
    /// more and removing it gives `EPERM`. Used once an upgrade completed, so that the new
    /// generation alone holds the lock and its death shows at once as a stale file (an old
    /// generation still draining would otherwise keep the lock of a dead pid).
    pub fn let_go(&mut self) {
        self.release();
    }

    fn release(&mut self) {
        if self.fd >= 0 {
            fds::unregister_private(self.fd);
            sys::close(self.fd);
            self.fd = -1;
        }
    }

    /// Unlinks the file if this process owns it (see [`PidFile::is_owner`]), then closes.
    /// `EPERM` when not the owner: nothing is unlinked (a forked child, or an old master
    /// whose successor rewrote the file). Removal failing because the directory is not
    /// writable (after a privilege drop) gives that errno; the file left behind is harmless.
    pub fn remove(mut self) -> Res<()> {
        let r = self.unlink();
        self.release();
        r
    }

    /// Unlinks the file if this process owns it, keeping the handle (and lock) open; `EPERM`
    /// when not the owner. Used by the supervisor at the end of a graceful stop.
    pub fn unlink(&self) -> Res<()> {
        if !self.is_owner() {
            return Err(Errno(libc::EPERM));
        }
        let mut buf = [0u8; PATH_MAX + 1];
        let p = self.path_cstr(&mut buf);
        // SAFETY: p is a valid C string.
        sys::cvt(unsafe { libc::unlink(p.as_ptr()) }).map(|_| ())
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        self.release();
    }
}

/// What [`crate::pidfile::Pidfile::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A live process holds the lock: its pid, proven to be the holder (the kernel's lock
    /// table in `/proc/PID/fdinfo`); 0 if it has not written one yet.
    Running(i32),
    /// The file is locked, but not by the process whose pid it names (a stale file whose lock
    /// another process took): that pid, which is never signalled.
    Foreign(i32),
    /// The file exists but nobody holds its lock; the pid it names, if readable (stale).
    Stale(Option<i32>),
    /// There is no file.
    Absent,
}

/// Answers whether a daemon holds the PID file at `path`, from its lock and from the kernel's
/// word that the pid in the file is the one holding it. `EACCES`/`EPERM` when the file is
/// locked but the pid's fds may not be inspected (another user's process): nothing can be
/// said about that pid then.
pub fn check(path: &CStr) -> Res<State> {
    let fd = match open_nofollow(path, libc::O_RDONLY, 0) {
        Ok(fd) => fd,
        Err(Errno(libc::ENOENT)) => return Ok(State::Absent),
        Err(e) => return Err(e),
    };
    let r = (|| {
        let st = fstat(fd)?;
        if !is_regular(&st) {
            return Err(Errno(libc::EINVAL));
        }
        if !lock_is_held(fd) {
            return Ok(State::Stale(read_pid(fd)));
        }
        let pid = read_pid_of_holder(fd);
        if pid <= 0 {
            return Ok(State::Running(0));
        }
        match procfs::holds_flock(pid, st.st_dev, st.st_ino) {
            Ok(true) => Ok(State::Running(pid)),
            // Released meanwhile: a stale file after all.
            Ok(false) if !lock_is_held(fd) => Ok(State::Stale(read_pid(fd))),
            Ok(false) => Ok(State::Foreign(pid)),
            Err(e) => Err(e),
        }
    })();
    sys::close(fd);
    r
}

fn pidfd_open(pid: i32) -> Res<c_int> {
    // SAFETY: pidfd_open takes plain integers and returns a new fd (close-on-exec).
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as c_int)
    }
}

/// Sends `sig` through a pidfd. Async-signal-safe (one syscall).
pub(crate) fn pidfd_signal(pfd: c_int, sig: c_int) -> Res<()> {
    // SAFETY: pidfd_send_signal with a pidfd we own, a null siginfo and no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pfd,
            sig,
            core::ptr::null::<u8>(),
            0,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Sends `sig` to the process holding the PID file at `path` and returns its pid — only while
/// it provably holds the lock. `ESRCH` when nobody holds it (a stale file's pid is never
/// signalled), `ENOENT` when there is no file, `EAGAIN` when the holder has not written its
/// pid yet, [`ERR_FOREIGN`] (`EBUSY`) when the lock is held by a process other than the pid
/// in the file, `EACCES`/`EPERM` when that cannot be told (another user's process). The target
/// is pinned with a pidfd, then the kernel is asked whether that very process holds the lock
/// through one of its fds ([`crate::imp::procfs::holds_flock`]) and the content is read again, so
/// neither a recycled pid nor a process named in a file whose lock somebody else took is
/// signalled.
pub fn kill(path: &CStr, sig: c_int) -> Res<i32> {
    let (pid, pfd) = kill_pinned(path, sig)?;
    if pfd >= 0 {
        sys::close(pfd);
    }
    Ok(pid)
}

/// [`kill`], handing back the pidfd that pinned the signalled process (the caller closes it),
/// so that the caller can wait for that very process to exit; -1 when the kernel has no
/// pidfds (the signal then went by pid, after the same lock re-check).
pub(crate) fn kill_pinned(path: &CStr, sig: c_int) -> Res<(i32, c_int)> {
    if !(0..=64).contains(&sig) {
        return Err(Errno(libc::EINVAL));
    }
    let fd = open_nofollow(path, libc::O_RDONLY, 0)?;
    let r = (|| {
        let st = fstat(fd)?;
        if !is_regular(&st) {
            return Err(Errno(libc::EINVAL));
        }
        if !lock_is_held(fd) {
            return Err(Errno(libc::ESRCH));
        }
        let pid = read_pid_of_holder(fd);
        if pid <= 0 {
            return Err(Errno(libc::EAGAIN));
        }
        // Is the pid in the file the holder? Asked with the process pinned (below), so the
        // answer is about the process that would be signalled.
        let proven = |fd: c_int| -> Res<()> {
            match procfs::holds_flock(pid, st.st_dev, st.st_ino)? {
                true if read_pid(fd) == Some(pid) => Ok(()),
                _ if lock_is_held(fd) && read_pid(fd) == Some(pid) => Err(Errno(ERR_FOREIGN)),
                _ => Err(Errno(libc::ESRCH)), // released or rewritten meanwhile
            }
        };
        match pidfd_open(pid) {
            Ok(pfd) => {
                let res = proven(fd).and_then(|()| pidfd_signal(pfd, sig));
                match res {
                    Ok(()) => Ok((pid, pfd)),
                    Err(e) => {
                        sys::close(pfd);
                        Err(e)
                    }
                }
            }
            // No such process: the pid in the file is dead, yet the lock is held — by
            // somebody else, unless it was released or rewritten meanwhile.
            Err(Errno(libc::ESRCH)) if lock_is_held(fd) && read_pid(fd) == Some(pid) => {
                Err(Errno(ERR_FOREIGN))
            }
            Err(Errno(libc::ENOSYS)) => {
                // No pidfd on this kernel: the same proof, then the pid; the window between
                // them is as narrow as the kernel allows.
                proven(fd).and_then(|()| crate::imp::signals::send(pid, sig).map(|_| (pid, -1)))
            }
            Err(e) => Err(e),
        }
    })();
    sys::close(fd);
    r
}
