//! Small syscall helpers shared by every module: errno handling, bounded C strings, integer
//! formatting and parsing without allocation, monotonic time.
//!
//! Everything here is usable without `std` and without allocation; the functions marked
//! async-signal-safe are the ones used after `fork` and in signal handlers.

use core::ffi::{c_char, c_int, CStr};

/// A positive errno value (`libc::ENOENT`, …). Every core function fails with one; the C ABI
/// returns it negated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current errno. Async-signal-safe.
    pub fn last() -> Errno {
        Errno(get_errno())
    }
    /// The negative value the C ABI returns.
    pub fn to_c(self) -> c_int {
        -self.0
    }
}

/// Result of a core operation.
pub type Res<T> = core::result::Result<T, Errno>;

/// Reads errno. Async-signal-safe.
pub fn get_errno() -> i32 {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Writes errno. Async-signal-safe (used by the signal handler to restore it).
pub fn set_errno(v: i32) {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = v }
}

/// Maps a `-1`-on-error syscall result to `Res`. Async-signal-safe.
pub fn cvt(r: c_int) -> Res<c_int> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// Like [`cvt`] for `ssize_t` results.
pub fn cvt_isize(r: isize) -> Res<usize> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as usize)
    }
}

/// Retries a syscall while it fails with `EINTR`. Async-signal-safe.
pub fn retry<F: FnMut() -> c_int>(mut f: F) -> Res<c_int> {
    loop {
        match cvt(f()) {
            Err(Errno(libc::EINTR)) => continue,
            other => return other,
        }
    }
}

/// Longest path accepted anywhere (including the NUL), as `PATH_MAX` on Linux.
pub const PATH_MAX: usize = 4096;

/// Borrows a C string argument, refusing NULL (`EINVAL`) and strings of `max` bytes or more
/// (`ENAMETOOLONG`) without reading past `max` bytes.
///
/// # Safety
/// `p` must be NULL or point to memory readable up to its NUL or `max` bytes.
pub unsafe fn cstr_arg<'a>(p: *const c_char, max: usize) -> Res<&'a CStr> {
    if p.is_null() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: the caller promises `p` is readable up to NUL or `max` bytes; strnlen reads no further.
    let n = unsafe { libc::strnlen(p, max) };
    if n >= max {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    // SAFETY: a NUL was found at offset n < max, so p..=p+n is a valid C string.
    Ok(unsafe { CStr::from_ptr(p) })
}

/// Closes an fd, ignoring errors (EINTR on close must not be retried on Linux).
/// Async-signal-safe.
pub fn close(fd: c_int) {
    if fd >= 0 {
        // SAFETY: closing an fd we own; a wrong fd only yields EBADF.
        unsafe { libc::close(fd) };
    }
}

/// True when `fd` is an open descriptor. Async-signal-safe.
pub fn fd_valid(fd: c_int) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; it fails with EBADF for a closed fd.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

/// Reads from `fd` until `buf` is full, EOF or an error (EINTR retried); how much was read.
/// For small files (`/proc` entries) read whole into a stack buffer.
pub fn read_up_to(fd: c_int, buf: &mut [u8]) -> usize {
    let mut have = 0;
    while have < buf.len() {
        // SAFETY: reading into the free tail of the caller's buffer.
        let n = unsafe { libc::read(fd, buf[have..].as_mut_ptr().cast(), buf.len() - have) };
        if n < 0 && get_errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        have += n as usize;
    }
    have
}

/// Writes the whole buffer, retrying on EINTR and short writes. Async-signal-safe.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> Res<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice for its length.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[r as usize..];
    }
    Ok(())
}

/// Formats `v` in decimal into `buf`, returning the written part. Async-signal-safe.
pub fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Parses a decimal unsigned integer with optional surrounding ASCII whitespace; no sign, no
/// overflow, at least one digit. Used for PID files, env variables and numeric user ids.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = trim(s);
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// Trims ASCII whitespace on both sides.
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// A small fixed buffer that builds strings without allocation (env assignments, notify
/// messages). Writes past the end are dropped and remembered in `overflow`.
pub struct Buf<const N: usize> {
    pub data: [u8; N],
    pub len: usize,
    pub overflow: bool,
}

impl<const N: usize> Buf<N> {
    pub const fn new() -> Self {
        Buf {
            data: [0; N],
            len: 0,
            overflow: false,
        }
    }
    pub fn push(&mut self, s: &[u8]) -> &mut Self {
        let room = N.saturating_sub(self.len);
        let n = s.len().min(room);
        self.data[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        if n < s.len() {
            self.overflow = true;
        }
        self
    }
    pub fn push_u64(&mut self, v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        self.push(fmt_u64(v, &mut tmp))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
    /// NUL-terminates the content (in place) and returns it as a C string pointer; `None`
    /// when it does not fit or holds an interior NUL.
    pub fn as_cstr(&mut self) -> Option<&CStr> {
        if self.overflow || self.len >= N {
            return None;
        }
        self.data[self.len] = 0;
        CStr::from_bytes_with_nul(&self.data[..=self.len]).ok()
    }
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Monotonic clock in milliseconds. Async-signal-safe.
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Monotonic clock in microseconds (for `MONOTONIC_USEC`).
pub fn now_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Sleeps for `ms` milliseconds, resuming after signals.
pub fn sleep_ms(ms: u64) {
    let mut ts = libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    loop {
        let mut rem = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: both pointers are valid timespecs.
        let r = unsafe { libc::nanosleep(&ts, &mut rem) };
        if r == 0 || get_errno() != libc::EINTR {
            return;
        }
        ts = rem;
    }
}

/// Polls one fd for `events`, retrying EINTR with the remaining time. Returns the revents
/// (0 on timeout). `timeout_ms < 0` waits forever.
pub fn poll_one(fd: c_int, events: i16, timeout_ms: i64) -> Res<i16> {
    let deadline = if timeout_ms >= 0 {
        Some(now_ms() + timeout_ms as u64)
    } else {
        None
    };
    loop {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let t = match deadline {
            None => -1,
            Some(d) => d.saturating_sub(now_ms()).min(i32::MAX as u64) as c_int,
        };
        // SAFETY: p is one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, t) };
        if r < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(if r == 0 { 0 } else { p.revents });
    }
}

/// Reads an environment variable as bytes (no allocation). Not thread-safe against a
/// concurrent `setenv`, like libc's `getenv`.
pub fn getenv(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: name is a valid C string; getenv returns NULL or a pointer into environ.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: getenv returned a valid NUL-terminated string that lives in environ.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

/// Removes an environment variable.
pub fn unsetenv(name: &CStr) {
    // SAFETY: name is a valid C string.
    unsafe { libc::unsetenv(name.as_ptr()) };
}

/// Sets the close-on-exec flag of `fd` on or off. Async-signal-safe.
pub fn set_cloexec(fd: c_int, on: bool) -> Res<()> {
    // SAFETY: fcntl on an integer fd; errors are reported through errno.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, new) })?;
    }
    Ok(())
}

/// Sets `O_NONBLOCK` on `fd`. Async-signal-safe.
pub fn set_nonblock(fd: c_int) -> Res<()> {
    // SAFETY: fcntl on an integer fd; errors are reported through errno.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// Creates a close-on-exec pipe, `[read, write]`.
pub fn pipe_cloexec(nonblock: bool) -> Res<[c_int; 2]> {
    let mut fds = [-1; 2];
    let flags = libc::O_CLOEXEC | if nonblock { libc::O_NONBLOCK } else { 0 };
    // SAFETY: fds is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    Ok(fds)
}

/// Closes every fd `>= first` except those in `keep`, with `close_range` where the kernel has
/// it and a loop over the fd table otherwise. Async-signal-safe (no allocation).
pub fn close_from_except(first: c_int, keep: &[c_int]) {
    let first = first.max(0);
    // Walk the gaps between kept fds in ascending order without sorting (no allocation):
    // repeatedly find the smallest kept fd >= lo.
    let mut lo = first;
    loop {
        let mut next_keep: Option<c_int> = None;
        for &k in keep {
            if k >= lo && next_keep.is_none_or(|n| k < n) {
                next_keep = Some(k);
            }
        }
        let hi = match next_keep {
            Some(k) => k - 1,
            None => c_int::MAX,
        };
        if hi >= lo {
            close_range(lo as u32, hi as u32);
        }
        match next_keep {
            Some(k) if k < c_int::MAX => lo = k + 1,
            _ => break,
        }
    }
}

fn close_range(lo: u32, hi: u32) {
    // SAFETY: close_range takes plain integers; it only closes fds in the range.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) };
    if r == 0 {
        return;
    }
    // Old kernel: close what is open in the range, bounded by the fd table size.
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    let max = (rl.rlim_cur.min(1 << 20) as u32).max(1024);
    let mut fd = lo;
    while fd <= hi && fd < max {
        close(fd as c_int);
        fd += 1;
    }
}

/// `waitpid(pid, status, flags)` through [`retry`]: a signal handler installed without
/// `SA_RESTART` (`EINTR`) does not stop a killed child from being reaped.
/// Async-signal-safe (waitpid only).
pub fn waitpid(pid: i32, status: &mut c_int, flags: c_int) -> Res<c_int> {
    // SAFETY: status is a valid out-pointer; pid and flags are plain integers.
    retry(|| unsafe { libc::waitpid(pid, &mut *status, flags) })
}

/// The process's pid. Async-signal-safe.
pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Makes `path` absolute against the current directory (a daemon later `chdir`s to `/`, so a
/// relative PID or log path must be resolved while it still means what the user meant).
/// Writes the result into `out` without a NUL and returns its length. `ENAMETOOLONG` when it
/// does not fit.
pub fn absolutize(path: &[u8], out: &mut [u8; PATH_MAX]) -> Res<usize> {
    if path.first() == Some(&b'/') {
        if path.len() >= PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        out[..path.len()].copy_from_slice(path);
        return Ok(path.len());
    }
    // SAFETY: out is a writable buffer of PATH_MAX bytes.
    if unsafe { libc::getcwd(out.as_mut_ptr().cast(), PATH_MAX) }.is_null() {
        return Err(Errno::last());
    }
    let cwd = out.iter().position(|&c| c == 0).unwrap_or(0);
    let need = cwd + 1 + path.len();
    if need >= PATH_MAX {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    let mut n = cwd;
    if n == 0 || out[n - 1] != b'/' {
        out[n] = b'/';
        n += 1;
    }
    out[n..n + path.len()].copy_from_slice(path);
    Ok(n + path.len())
}

/// `fstatat(dirfd, path, flags)` through the raw syscall (`newfstatat`), not glibc's wrapper:
/// glibc 2.33 versioned `stat`/`fstat`/`lstat` anew, and the shipped library must load on
/// older systems (the ABI baseline is GLIBC_2.28). The kernel's `struct stat` is libc's on
/// x86_64 and aarch64. Async-signal-safe (one syscall).
pub fn stat_at(dirfd: c_int, path: &CStr, flags: c_int) -> Res<libc::stat> {
    // SAFETY: a zeroed stat is valid storage; path is a valid C string; the kernel fills st.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        let r = libc::syscall(
            libc::SYS_newfstatat,
            dirfd as libc::c_long,
            path.as_ptr(),
            &mut st as *mut libc::stat,
            flags as libc::c_long,
        );
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(st)
        }
    }
}

/// `stat(2)` (follows symlinks); see [`stat_at`]. Async-signal-safe.
pub fn stat(path: &CStr) -> Res<libc::stat> {
    stat_at(libc::AT_FDCWD, path, 0)
}

/// `lstat(2)` (does not follow a final symlink); see [`stat_at`]. Async-signal-safe.
pub fn lstat(path: &CStr) -> Res<libc::stat> {
    stat_at(libc::AT_FDCWD, path, libc::AT_SYMLINK_NOFOLLOW)
}

/// `fstat(2)` on an open fd; see [`stat_at`]. Async-signal-safe.
pub fn fstat(fd: c_int) -> Res<libc::stat> {
    stat_at(fd, c"", libc::AT_EMPTY_PATH)
}

/// `sigprocmask(how, set, old)` for the calling thread (Linux's `rt_sigprocmask` acts on the
/// calling thread only, as `pthread_sigmask` does; glibc moved that one to GLIBC_2.32).
/// Async-signal-safe.
pub fn thread_sigmask(how: c_int, set: Option<&libc::sigset_t>, old: Option<&mut libc::sigset_t>) {
    let set = set.map_or(core::ptr::null(), |s| s as *const libc::sigset_t);
    let old = old.map_or(core::ptr::null_mut(), |o| o as *mut libc::sigset_t);
    // SAFETY: set/old are NULL or valid sigsets; sigprocmask only fails for a bad `how`.
    unsafe { libc::sigprocmask(how, set, old) };
}
