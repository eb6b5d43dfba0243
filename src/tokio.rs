//! tokio (feature `tokio`): an async signal stream, listeners as tokio's, a supervisor whose
//! workers build their runtime after the fork, and a graceful drain.
//!
//! * [`AsyncSignals`] is [`Signals`] (the process's signal self-pipe) registered with
//!   tokio's reactor through [`AsyncFd`]: `signals.recv().await` in a `select!` next to
//!   `accept()`, no thread and no timer.
//! * [`tcp_listener`] and [`unix_listener`] turn a listener daemonkit bound or inherited
//!   ([`crate::listen::tcp`], [`crate::listen::fds`]) into tokio's, keeping the original
//!   for the supervisor and upgrades.
//! * [`Supervisor::run_tokio`] forks the workers and builds a fresh runtime in each one,
//!   after the fork.
//! * [`Graceful`] counts the requests in flight, tells the connections to stop, and waits
//!   for them with a bound: what a worker does on `TERM`.
//!
//! ## Build the runtime after the fork, never before
//!
//! `fork` copies the calling thread only. A tokio runtime built before it reaches the
//! child as memory without threads: its worker threads, its I/O driver and its timer are
//! the parent's, the child's copy of the reactor is registered with an epoll instance it
//! shares with the parent, and nothing in the child ever drives it — the child hangs in
//! the first `.await` on I/O, or wakes up on its parent's events. (That is the Rust form of
//! the PAGI FIXFORK bug, where each worker of a prefork server reused the master's event
//! loop; the Perl binding's `DaemonKit::IOAsync` hands every worker its own loop.) So, in
//! this order:
//!
//! 1. PID file, listeners, [`Daemonize::start`](crate::daemon::Daemonize::start), log,
//!    privilege drop: plain `fn main`, no `#[tokio::main]`;
//! 2. then either a runtime built by hand for a single process
//!    (`tokio::runtime::Builder::new_current_thread().enable_all().build()`), or
//!    [`Supervisor::run_tokio`], which builds one in every worker.
//!
//! The wrong order is refused rather than left to hang: `Daemonize::start` (when it forks)
//! and `Supervisor::run`/`run_tokio` fail with `EDEADLK` ("Resource deadlock avoided",
//! [`std::io::ErrorKind::Deadlock`]) and a message naming the cause when they are called
//! inside a runtime (from async code, `block_on` or `spawn_blocking`) or while a
//! multi-thread runtime's worker threads live in the process (found by tokio's default
//! thread names, `tokio-rt-worker`, or `tokio-runtime-worker` in older releases; threads
//! given a name of your own are not recognized). A current-thread runtime that merely
//! exists, outside its `block_on`, starts no thread and cannot be seen: do not keep one
//! across a fork either.
//!
//! ## Signals
//!
//! ```
//! use daemonkit::tokio::AsyncSignals;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let signals = AsyncSignals::new(&[libc::SIGUSR1, libc::SIGTERM])?;
//!     // SAFETY: raising a signal we just registered.
//!     unsafe { libc::raise(libc::SIGUSR1) };
//!     assert_eq!(signals.recv().await?, libc::SIGUSR1);
//!     assert_eq!(signals.try_recv(), None);
//!     Ok::<(), daemonkit::Error>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Listeners
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let listener = daemonkit::listen::tcp("127.0.0.1:0")?; // bound before the fork
//! let addr = listener.local_addr()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let tl = daemonkit::tokio::tcp_listener(&listener)?; // `listener` stays ours
//!     let client = tokio::spawn(async move {
//!         let mut c = tokio::net::TcpStream::connect(addr).await?;
//!         c.write_all(b"ping").await?;
//!         std::io::Result::Ok(())
//!     });
//!     let (mut conn, _) = tl.accept().await?;
//!     let mut buf = [0u8; 4];
//!     conn.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"ping");
//!     client.await??;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Graceful drain
//!
//! ```
//! use daemonkit::tokio::Graceful;
//! use std::time::Duration;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let graceful = Graceful::new();
//!     // A request in flight: counted from `track` until it finishes.
//!     let request = tokio::spawn(graceful.track(async {
//!         tokio::time::sleep(Duration::from_millis(50)).await;
//!         "done"
//!     }));
//!     assert_eq!(graceful.in_flight(), 1);
//!     // TERM: stop accepting (every `stopped()` resolves), let it finish, bounded.
//!     assert!(graceful.drain(Duration::from_secs(5)).await);
//!     graceful.stopped().await;
//!     assert_eq!(graceful.in_flight(), 0);
//!     assert_eq!(request.await.unwrap(), "done");
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## A supervisor with tokio workers
//!
//! See [`Supervisor::run_tokio`]; `examples/rust/tokio/` in the repository is a complete
//! hyper server, and `examples/rust/quickstart-tokio.rs` a short one.

use crate::error::{Error, Result};
use crate::signals::Signals;
use crate::supervisor::{Outcome, Supervisor};
use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;
use ::tokio::runtime::{Handle, Runtime};
use ::tokio::sync::{watch, Notify};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// A runtime before the fork

/// The thread names tokio gives a multi-thread runtime's workers and its blocking pool, as
/// `/proc/self/task/*/comm` shows them (15 bytes at most): `tokio-rt-worker` in current
/// releases, `tokio-runtime-worker` in older ones.
const TOKIO_THREADS: [&[u8]; 2] = [b"tokio-rt-worker", b"tokio-runtime-w"];

/// True when a thread of this process carries tokio's default thread name.
fn tokio_threads() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read(t.path().join("comm"))
            .is_ok_and(|comm| TOKIO_THREADS.iter().any(|name| comm.starts_with(name)))
    })
}

/// Why forking now would hand the child a tokio runtime it cannot run, or `None`: the
/// caller is inside a runtime (async code, `block_on`, `spawn_blocking`), or tokio's worker
/// threads live in this process. Used by [`Supervisor::run`] and
/// [`crate::daemon::Daemonize::start`] before they fork.
pub(crate) fn runtime_before_fork() -> Option<&'static str> {
    if Handle::try_current().is_ok() {
        return Some("called inside a tokio runtime (async code, block_on or spawn_blocking)");
    }
    if tokio_threads() {
        return Some("a tokio runtime's worker threads (tokio-rt-worker) run in this process");
    }
    None
}

/// `Err` (EDEADLK) naming `what` and the cause when [`runtime_before_fork`] finds one.
pub(crate) fn refuse_runtime_before_fork(what: &str) -> Result<()> {
    match runtime_before_fork() {
        None => Ok(()),
        Some(why) => Err(Error::Io {
            context: format!(
                "{what}: {why}: a runtime created before fork reaches the child without its \
                 threads (a reactor nobody drives); build it after the fork \
                 (Supervisor::run_tokio builds one in each worker)"
            ),
            source: io::Error::from_raw_os_error(libc::EDEADLK),
        }),
    }
}

fn no_runtime(what: &str) -> Error {
    Error::Io {
        context: format!(
            "{what}: not inside a tokio runtime (call it from async code or block_on, after \
             the fork)"
        ),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    }
}

// ---------------------------------------------------------------------------------------
// Signals

/// The signal pipe as `AsRawFd`, for [`AsyncFd`].
struct Pipe(Signals);

impl AsRawFd for Pipe {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// [`Signals`] on tokio's reactor: `recv().await` yields each pending signal, sleeping in
/// the reactor (epoll) in between. The pipe is non-blocking already (the library creates it
/// so); nothing is polled on a timer.
///
/// No signal is lost or held back: the handler sets the signal's pending bit before it
/// writes its wake-up byte, and [`AsyncSignals::recv`] drains the pipe and looks at the bits
/// both before waiting and after every wake-up, clearing tokio's readiness only when both
/// found nothing (a byte written after that is a new edge for the reactor). Several
/// signals pending at once come one per `recv`, in turn; a signal delivered several times
/// before it is received comes once. `recv` is cancel safe: in a `select!` that picks
/// another branch nothing is consumed.
///
/// Like [`Signals`], one per process ([`crate::signals::Signals::new`] refuses a second with
/// `EBUSY`); a prefork worker makes its own after the fork (the master's is not inherited).
pub struct AsyncSignals {
    fd: AsyncFd<Pipe>,
}

impl AsyncSignals {
    /// Registers `sigs` ([`Signals::new`]) and the pipe with the current runtime's reactor.
    /// Call it inside the runtime (async code or `block_on`).
    pub fn new(sigs: &[i32]) -> Result<AsyncSignals> {
        if Handle::try_current().is_err() {
            return Err(no_runtime("AsyncSignals::new"));
        }
        AsyncSignals::from_signals(Signals::new(sigs)?)
    }

    /// Puts an existing [`Signals`] on the current runtime's reactor (also
    /// `AsyncSignals::try_from(signals)`).
    pub fn from_signals(signals: Signals) -> Result<AsyncSignals> {
        if Handle::try_current().is_err() {
            return Err(no_runtime("AsyncSignals::from_signals"));
        }
        // `with_interest` is deprecated from tokio 1.54 on for the I/O safety it cannot
        // check (the fd must stay open and the same while registered); its replacement,
        // `register_with_interest`, does not exist in the 1.38 this crate accepts. Here the
        // invariant holds: `Pipe` owns the `Signals`, whose fd is closed only by its drop,
        // after `AsyncFd` deregistered it.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(Pipe(signals), Interest::READABLE);
        fd.map(|fd| AsyncSignals { fd })
            .map_err(|e| Error::from_io("signals: register with the tokio reactor", e))
    }

    /// Waits for the next signal and returns it. Cancel safe.
    pub async fn recv(&self) -> Result<i32> {
        loop {
            if let Some(sig) = self.try_recv() {
                return Ok(sig);
            }
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| Error::from_io("signals: wait", e))?;
            // Readiness stays set when this finds a signal: the next recv looks again.
            if let Some(sig) = self.try_recv() {
                return Ok(sig);
            }
            // The pipe is drained and no bit is set: clear the readiness this wake-up saw
            // (a byte written since is a new event, which tokio does not clear here).
            guard.clear_ready();
        }
    }

    /// The next pending signal without waiting, if any (drains the pipe).
    pub fn try_recv(&self) -> Option<i32> {
        self.fd.get_ref().0.pending().next()
    }

    /// The [`Signals`] underneath (to [`Signals::add`] more signals).
    pub fn signals(&self) -> &Signals {
        &self.fd.get_ref().0
    }

    /// Takes the pipe off the reactor and returns the [`Signals`].
    pub fn into_signals(self) -> Signals {
        self.fd.into_inner().0
    }
}

impl TryFrom<Signals> for AsyncSignals {
    type Error = Error;
    /// [`AsyncSignals::from_signals`].
    fn try_from(signals: Signals) -> Result<AsyncSignals> {
        AsyncSignals::from_signals(signals)
    }
}

impl AsFd for AsyncSignals {
    /// The signal pipe's read end.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().0.as_fd()
    }
}

// ---------------------------------------------------------------------------------------
// Listeners

fn sockopt(fd: BorrowedFd<'_>, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid out-parameters of the sizes getsockopt is told.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// A close-on-exec duplicate of the listening socket `fd` of one of `domains`, with
/// `O_NONBLOCK` set (on the open file description, shared with `fd`).
fn dup_listener(fd: BorrowedFd<'_>, domains: &[libc::c_int], what: &str) -> Result<OwnedFd> {
    let raw = fd.as_raw_fd();
    let ctx = |why: &str| format!("{what}: fd {raw}{why}");
    if Handle::try_current().is_err() {
        return Err(no_runtime(what));
    }
    let domain = sockopt(fd, libc::SO_DOMAIN).map_err(|e| Error::from_io(ctx(""), e))?;
    let listening = sockopt(fd, libc::SO_ACCEPTCONN).map_err(|e| Error::from_io(ctx(""), e))?;
    if !domains.contains(&domain) || listening == 0 {
        return Err(Error::Io {
            context: ctx(": not a listening socket of that kind"),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    // F_DUPFD_CLOEXEC: the duplicate never leaks into an exec'd program.
    let dup = fd
        .try_clone_to_owned()
        .map_err(|e| Error::from_io(ctx(": dup"), e))?;
    // SAFETY: F_GETFL/F_SETFL on an fd we own.
    let r = unsafe {
        let flags = libc::fcntl(dup.as_raw_fd(), libc::F_GETFL);
        if flags < 0 {
            flags
        } else {
            libc::fcntl(dup.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK)
        }
    };
    if r < 0 {
        return Err(Error::from_io(
            ctx(": O_NONBLOCK"),
            io::Error::last_os_error(),
        ));
    }
    Ok(dup)
}

/// A listening TCP socket (a [`std::net::TcpListener`] from [`crate::listen::tcp`], an
/// inherited `LISTEN_FDS` fd, …) as a [`tokio::net::TcpListener`]
/// on the current runtime. Call it inside the runtime, in the process that serves (a
/// worker, after the fork).
///
/// The fd is duplicated (close-on-exec), so `listener` stays usable and yours: pass a
/// reference to keep it for [`Supervisor::listener`] or an upgrade, pass it by value to be
/// done with it. `O_NONBLOCK` is set on the duplicate, which shares its open file
/// description with the original — and with every process holding the same socket (the
/// master, the other workers, an upgrade's new generation): they all see a non-blocking
/// listener from then on. For accepting that is fine (a blocking `accept` on it returns
/// `WouldBlock` instead of sleeping; poll first), and every daemonkit example server makes
/// its listener non-blocking anyway. `EINVAL` for an fd that is not a listening TCP socket.
pub fn tcp_listener(listener: impl AsFd) -> Result<::tokio::net::TcpListener> {
    let what = "tokio TcpListener";
    let fd = dup_listener(listener.as_fd(), &[libc::AF_INET, libc::AF_INET6], what)?;
    ::tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
        .map_err(|e| Error::from_io(what, e))
}

/// [`tcp_listener`] for a listening Unix stream socket ([`crate::listen::unix`]), as a
/// [`tokio::net::UnixListener`]. The same duplication and the
/// same shared `O_NONBLOCK`.
pub fn unix_listener(listener: impl AsFd) -> Result<::tokio::net::UnixListener> {
    let what = "tokio UnixListener";
    let fd = dup_listener(listener.as_fd(), &[libc::AF_UNIX], what)?;
    ::tokio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
        .map_err(|e| Error::from_io(what, e))
}

// ---------------------------------------------------------------------------------------
// The supervisor with tokio workers

/// The runtime [`Supervisor::run_tokio`] builds in each worker: current-thread, I/O and
/// time enabled.
pub fn worker_runtime() -> io::Result<Runtime> {
    ::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

impl<'a> Supervisor<'a> {
    /// [`Supervisor::run`] with async workers: in each forked worker, after the fork, a
    /// fresh current-thread runtime ([`worker_runtime`]) runs `worker(index)` to completion;
    /// its output is the worker's exit status. Everything else is `run`'s: the master's loop
    /// (HUP rolling restart, USR2 upgrade, TERM graceful stop, TTIN/TTOU, USR1) is the
    /// library's, and a worker starts with default signal dispositions, so it makes its own
    /// [`AsyncSignals`] (before it reports [`crate::daemon::ready`]: the master forwards
    /// USR1 to ready workers) and drains on TERM ([`Graceful`]).
    ///
    /// Refused with `EDEADLK` when called inside a tokio runtime or while tokio's worker
    /// threads live in this process (see the [module docs](self)): the master must not
    /// have a runtime of its own.
    ///
    /// ```
    /// use daemonkit::supervisor::{Outcome, Supervisor};
    /// use daemonkit::tokio::AsyncSignals;
    /// use std::time::Duration;
    /// let listener = daemonkit::listen::tcp("127.0.0.1:0")?;
    /// let shared = &listener;
    /// let outcome = Supervisor::new(2)
    ///     .listener(&listener)
    ///     .graceful_timeout(Duration::from_secs(5))
    ///     .on_event(|e| eprintln!("doc: {e}"))
    ///     .run_tokio(|index| async move {
    ///         // In the worker, on its own runtime.
    ///         let signals = AsyncSignals::new(&[libc::SIGTERM]).unwrap();
    ///         let _accepting = daemonkit::tokio::tcp_listener(shared).unwrap();
    ///         daemonkit::daemon::ready().unwrap();
    ///         if index == 0 {
    ///             // SAFETY: signalling our own master, so that this example ends.
    ///             unsafe { libc::kill(libc::getppid(), libc::SIGTERM) };
    ///         }
    ///         assert_eq!(signals.recv().await.unwrap(), libc::SIGTERM); // the master's
    ///         0
    ///     })?;
    /// assert_eq!(outcome, Outcome::Stopped);
    ///
    /// // The wrong order: a supervisor started from inside a runtime is refused.
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let err = rt
    ///     .block_on(async { Supervisor::new(1).run_tokio(|_| async { 0 }) })
    ///     .unwrap_err();
    /// assert_eq!(err.errno(), Some(libc::EDEADLK));
    /// assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_tokio<F, Fut>(self, worker: F) -> Result<Outcome>
    where
        F: FnMut(u32) -> Fut + 'a,
        Fut: Future<Output = i32>,
    {
        self.run_tokio_with(|_| worker_runtime(), worker)
    }

    /// [`Supervisor::run_tokio`] with the runtime `build(index)` makes in each worker,
    /// after the fork — a multi-thread one, say:
    /// `|_| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()`.
    /// (Each worker is a process already, so the default current-thread runtime is usually
    /// the right one: a multi-thread runtime per worker multiplies the threads.) A `build`
    /// error fails the worker's startup ([`crate::daemon::fail`], exit 1).
    pub fn run_tokio_with<B, F, Fut>(self, mut build: B, mut worker: F) -> Result<Outcome>
    where
        B: FnMut(u32) -> io::Result<Runtime> + 'a,
        F: FnMut(u32) -> Fut + 'a,
        Fut: Future<Output = i32>,
    {
        refuse_runtime_before_fork("supervisor")?;
        self.run(move |index| {
            let rt = match build(index) {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = crate::daemon::fail(1, &format!("worker {index}: tokio runtime: {e}"));
                    return 1;
                }
            };
            // The worker's own synchronous part runs inside the runtime too.
            let code = rt.block_on(async { worker(index).await });
            // The process exits right after: do not wait for blocking-pool threads.
            rt.shutdown_background();
            code
        })
    }
}

// ---------------------------------------------------------------------------------------
// Graceful drain

struct Shared {
    in_flight: AtomicUsize,
    idle: Notify,
    stop: watch::Sender<bool>,
}

/// A graceful drain: counts the work in flight ([`Graceful::track`]), tells every
/// connection to finish up ([`Graceful::shutdown`], seen as [`Graceful::stopped`]), and
/// waits for the count to reach zero with a bound ([`Graceful::drain`]). Cheap to clone;
/// the clones share one state. Needs a runtime with time enabled for `drain`'s timeout.
///
/// The usual worker: an accept loop in a `select!` with [`AsyncSignals::recv`]; each
/// connection spawned as `tokio::spawn(graceful.track(conn))`, its own `select!` calling
/// hyper's `graceful_shutdown()` once `stopped()` resolves; on TERM the loop ends (the
/// listener stops being accepted on) and `graceful.drain(timeout).await` finishes the
/// requests in flight.
#[derive(Clone)]
pub struct Graceful {
    shared: Arc<Shared>,
}

impl Default for Graceful {
    fn default() -> Self {
        Graceful::new()
    }
}

impl std::fmt::Debug for Graceful {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graceful")
            .field("in_flight", &self.in_flight())
            .field("stopping", &self.is_stopping())
            .finish()
    }
}

/// Counts one tracked future while it lives.
struct Tracked(Arc<Shared>);

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Graceful {
    /// Nothing in flight, not stopping.
    pub fn new() -> Graceful {
        Graceful {
            shared: Arc::new(Shared {
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                stop: watch::channel(false).0,
            }),
        }
    }

    /// `fut`, counted as in flight from this call (not from its first poll, so a spawned
    /// connection counts at once) until it completes or is dropped.
    pub fn track<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let token = Tracked(self.shared.clone());
        async move {
            let _token = token;
            fut.await
        }
    }

    /// How many tracked futures are in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Tells everyone waiting in [`Graceful::stopped`] to finish up. Idempotent.
    pub fn shutdown(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Whether [`Graceful::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.shared.stop.borrow()
    }

    /// Resolves once [`Graceful::shutdown`] was called (at once if it was already).
    pub async fn stopped(&self) {
        let mut rx = self.shared.stop.subscribe();
        // The sender lives in `self`: wait_for cannot see it closed.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// [`Graceful::shutdown`], then waits up to `timeout` for every tracked future to
    /// finish; true when all did in time (false: some are still running, and the caller
    /// usually exits anyway).
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.shutdown();
        let idle = async {
            loop {
                let notified = self.shared.idle.notified();
                let mut notified = std::pin::pin!(notified);
                // Registered before the count is read: a last drop in between still wakes it.
                notified.as_mut().enable();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        ::tokio::time::timeout(timeout, idle).await.is_ok()
    }
}
