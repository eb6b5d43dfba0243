//! What `/proc` tells about another process: whether it holds a file's `flock` itself.
//!
//! A PID file's lock proves only that *some* open file description holds it; the pid written
//! in the file may be stale and may by now name an unrelated process, while any local user who
//! can read the file can take the lock (`flock -x FILE sleep 1000`). Before the library reports
//! a pid as the holder or signals it, [`holds_flock`] proves it from the kernel: one of that
//! process's fds (`/proc/PID/fd/N`) names the file's inode, and that fd's open file description
//! holds the exclusive lock (`/proc/PID/fdinfo/N` lists the locks held through exactly that
//! description as `lock:` lines, e.g. `lock:\t1: FLOCK  ADVISORY  WRITE 4242 fe:00:123 0 EOF`).
//! The pid column of `/proc/locks` is not used: it names the process that *took* the lock,
//! which for a daemon that locked its PID file before forking is the long-gone launcher.
//!
//! Reading another user's `/proc/PID/fd` needs the right to ptrace it (root, or the same user
//! and a dumpable process); without it the answer is `EACCES` and callers refuse to signal.
//! No allocation: a stack buffer for `getdents64` and for each fdinfo file.

use crate::sys::{self, Errno, Res};
use core::ffi::{c_int, CStr};

/// Opens `/proc/PID/<what>` (`what` ends with the part after the pid, e.g. `b"/fd"`).
fn open_proc(pid: i32, what: &[u8], flags: c_int) -> Res<c_int> {
    let mut b = sys::Buf::<64>::new();
    b.push(b"/proc/").push_u64(pid as u64).push(what);
    let path = b.as_cstr().ok_or(Errno(libc::ENAMETOOLONG))?;
    // SAFETY: path is a valid C string; flags are plain open(2) flags.
    sys::retry(|| unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })
}

/// True when `/proc/PID/fdinfo/FD` has a `lock:` line for an exclusive `flock` — a lock held
/// through exactly that fd's open file description.
fn fd_holds_exclusive_flock(pid: i32, fd_name: &[u8]) -> Res<bool> {
    let mut what = sys::Buf::<32>::new();
    what.push(b"/fdinfo/").push(fd_name);
    let f = open_proc(pid, what.as_bytes(), libc::O_RDONLY)?;
    let mut buf = [0u8; 4096];
    let have = sys::read_up_to(f, &mut buf);
    sys::close(f);
    Ok(buf[..have].split(|&c| c == b'\n').any(|line| {
        line.starts_with(b"lock:") && contains(line, b" FLOCK ") && contains(line, b" WRITE ")
    }))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether process `pid` holds the exclusive `flock` of the file `(dev, ino)` through one of
/// its own open fds. `Ok(false)` when it does not, or when there is no such process;
/// `EACCES`/`EPERM` when its fds may not be inspected (another user's process, as non-root).
pub fn holds_flock(pid: i32, dev: u64, ino: u64) -> Res<bool> {
    if pid <= 0 {
        return Ok(false);
    }
    let dir = match open_proc(pid, b"/fd", libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(d) => d,
        Err(Errno(libc::ENOENT | libc::ESRCH)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let r = scan_fds(dir, pid, dev, ino);
    sys::close(dir);
    r
}

/// Walks the entries of an open `/proc/PID/fd` directory.
fn scan_fds(dir: c_int, pid: i32, dev: u64, ino: u64) -> Res<bool> {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: getdents64 fills at most buf.len() bytes of our stack buffer.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir as libc::c_long,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = Errno::last();
            // A process that exits while we read shows as ENOENT: it holds nothing any more.
            return if e.0 == libc::ENOENT {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(false);
        }
        let mut off = 0usize;
        while off + 19 < n as usize {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name (NUL-ended).
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n as usize {
                return Err(Errno(libc::EIO));
            }
            let name_area = &buf[off + 19..off + reclen];
            let len = name_area
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(name_area.len());
            let name = &name_area[..len];
            off += reclen;
            if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
                continue; // "." and ".."
            }
            let mut cname = [0u8; 24];
            if name.len() >= cname.len() {
                continue;
            }
            cname[..name.len()].copy_from_slice(name);
            let Ok(c) = CStr::from_bytes_until_nul(&cname) else {
                continue;
            };
            // stat through the magic link: the file the fd refers to (even if unlinked).
            match sys::stat_at(dir, c, 0) {
                Ok(st) if st.st_dev == dev && st.st_ino == ino => {
                    match fd_holds_exclusive_flock(pid, name) {
                        Ok(true) => return Ok(true),
                        Ok(false) | Err(Errno(libc::ENOENT)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(_) | Err(Errno(libc::ENOENT)) => {}
                Err(e) if e.0 == libc::EACCES || e.0 == libc::EPERM => return Err(e),
                Err(_) => {} // an fd closed meanwhile, or one that cannot be followed
            }
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn dev_ino(f: &std::fs::File) -> (u64, u64) {
        let st = sys::fstat(f.as_raw_fd()).unwrap();
        (st.st_dev, st.st_ino)
    }

    #[test]
    fn own_lock_is_seen_and_only_while_held() {
        let p = std::env::temp_dir().join(format!("dk-procfs-{}", std::process::id()));
        let f = std::fs::File::create(&p).unwrap();
        let (dev, ino) = dev_ino(&f);
        let me = sys::getpid();
        assert_eq!(holds_flock(me, dev, ino), Ok(false), "no lock yet");
        // SAFETY: flock on our own fd.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
        assert_eq!(holds_flock(me, dev, ino), Ok(true));
        // A second description of the same file without the lock proves nothing by itself,
        // but the first still holds it.
        let g = std::fs::File::open(&p).unwrap();
        assert_eq!(holds_flock(me, dev, ino), Ok(true));
        drop(f);
        assert_eq!(holds_flock(me, dev, ino), Ok(false), "released with its fd");
        drop(g);
        assert_eq!(
            holds_flock(i32::MAX, dev, ino),
            Ok(false),
            "no such process"
        );
        let _ = std::fs::remove_file(&p);
    }
}
