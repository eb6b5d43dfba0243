/* Signal storm: the library's signal handling is installed for eleven signals (USR1, USR2,
 * HUP, CHLD, WINCH, URG, TTIN, TTOU, PWR and two realtime ones, SIGRTMIN+4 and SIGRTMAX-1) and this program has a handler
 * of its own, without SA_RESTART, for VTALRM (as an application might). A separate storm
 * process (this program exec'd in "storm" mode, so that it runs at full speed also when the
 * test runs under valgrind) sends those twelve signals to the test process as fast as it can
 * -- and to the child the test is working with at that moment when that child keeps the
 * inherited handlers (the privilege-drop child, the daemonize launcher) -- until the test
 * has done at least three full rounds under it, for at least 1 s and 100 000 signals (at
 * most 60 s).
 *
 * A round calls every function of include/daemonkit.h and checks each returns exactly what
 * it returns without the storm: round 0 runs before the storm and must pass the same checks.
 * No spurious EINTR, no short read or write (pipe data passed with SCM_RIGHTS intact, log
 * lines, PID file content), errno preserved across the handler, listeners bound and
 * accepting, names right, privileges dropped in a child, a daemonized child still reports
 * ready (or its failure), a re-exec'd image and an upgrade's new generation get their fds,
 * a supervisor starts, reports ready and stops. After the storm the signal fd still reports
 * each kind that was sent (none lost), every kind raised once more is reported exactly once,
 * and the fds are back to what they were. check_coverage.sh checks that every function of
 * the header is called here. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#define MIN_SIGNALS 100000L
#define MIN_MS 1000
#define MAX_MS 60000
#define MIN_ROUNDS 3
#define RATE 100000L

/* The library's signals, and one the test handles itself (no SA_RESTART). */
#define NLIB 11
static int lib_sigs[NLIB];
#define FOREIGN SIGVTALRM

/* Shared with the storm process (a memfd mapped by both). */
struct ctl {
    volatile int stop;          /* set by the test: finish now */
    volatile int extra;         /* a child of the test to storm too, or 0 */
    volatile int done;          /* set by the storm when it ended */
    volatile long total;        /* signals sent (kill succeeded), all targets */
    volatile long to_main;      /* ... of which to the test process */
    volatile long to_extra;     /* ... to the extra child */
    volatile long elapsed_ms;   /* how long it ran */
    volatile long sent[65];     /* per signal, to the test process */
    volatile long progress;     /* library calls made by the test and its children */
    volatile long backoffs;     /* pauses the storm made for lack of progress */
};

static struct ctl *ctl;
static const char *tmp;
static char self_exe[PATH_MAX];
static volatile sig_atomic_t foreign_count;
static long calls;            /* library calls made */
static long seen[65];         /* kinds dk_signal_next/wait returned, per signal */
static int sigfd = -1;
static int reserved3 = -1;    /* /dev/null held on fd 3, lent to the LISTEN_FDS check */
static int devnull = -1;      /* /dev/null, to put back on fd 3 */

/* Counts a library call (also in the shared block: the storm watches it). */
#define C(x) (calls++, ctl ? ctl->progress++ : 0, (x))
static int debug;

static void on_foreign(int sig)
{
    (void)sig;
    foreign_count++;
}

static int is_lib_sig(int s)
{
    int i;
    for (i = 0; i < NLIB; i++)
        if (lib_sigs[i] == s)
            return 1;
    return 0;
}

/* Records a kind returned by dk_signal_next/wait; checks it is one of ours (or 0). */
static void saw(int s)
{
    CHECK_MSG(s == 0 || is_lib_sig(s), "signal fd returned %d, not a registered signal", s);
    if (s > 0 && s <= 64)
        seen[s]++;
}

static void tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp, name);
}

static void set_sun(struct sockaddr_un *sa, const char *path)
{
    size_t n = strlen(path);
    memset(sa, 0, sizeof *sa);
    if (n >= sizeof sa->sun_path)
        n = sizeof sa->sun_path - 1;
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    struct rlimit rl;
    int n = 0;
    long top = LONG_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
        top = (long)rl.rlim_max; /* valgrind's own fds live above */
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atol(e->d_name) < top && atoi(e->d_name) != dirfd(d))
            n++;
    closedir(d);
    return n;
}

/* "fd link;..." of every fd (valgrind's left out), for comparing before/after. */
static void fd_list(char *buf, size_t len)
{
    int fd, used = 0;
    struct rlimit rl;
    long top = 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < 4096)
        top = (long)rl.rlim_max;
    buf[0] = '\0';
    for (fd = 0; fd < top; fd++) {
        char p[64], l[256];
        ssize_t n;
        if (fcntl(fd, F_GETFD) < 0)
            continue;
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        n = readlink(p, l, sizeof l - 1);
        l[n > 0 ? n : 0] = '\0';
        if ((size_t)used < len)
            used += snprintf(buf + used, len - (size_t)used, "%d=%s;", fd, l);
    }
}

/* read/write that retry EINTR (the test's own code under the foreign handler). */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t have = 0;
    while (have < len) {
        ssize_t n = read(fd, (char *)buf + have, len - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    return (ssize_t)have;
}

static int recv_retry(int fd, char *buf, size_t len)
{
    long long end = dk_test_now_ms() + 5000;
    for (;;) {
        ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);
        if (n >= 0) {
            buf[n] = '\0';
            return (int)n;
        }
        if (errno != EINTR && errno != EAGAIN)
            return -1;
        if (dk_test_now_ms() > end)
            return -1;
        if (errno == EAGAIN)
            dk_test_sleep_ms(1);
    }
}

/* Connects to addr (non-blocking + poll, EINTR-proof) and accepts on lfd: proof that the
 * listener is bound and listening. */
static int connect_accept(int lfd, const struct sockaddr *sa, socklen_t len)
{
    int c = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), a = -1, ok = 0;
    long long end = dk_test_now_ms() + 5000;
    if (c < 0)
        return 0;
    if (connect(c, sa, len) == 0 || errno == EINPROGRESS || errno == EINTR) {
        struct pollfd p;
        p.fd = lfd;
        p.events = POLLIN;
        while (dk_test_now_ms() < end) {
            int r = poll(&p, 1, 100);
            if (r > 0)
                break;
        }
        a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        ok = a >= 0;
    }
    if (a >= 0)
        close(a);
    close(c);
    return ok;
}

/* ---- helper modes (the storm itself, and images exec'd by re-exec and upgrade) ---------- */

static int storm_main(int argc, char **argv)
{
    pid_t target;
    int fd, i, sigs[NLIB + 1], n = 0;
    long pass, last_progress, pause_ms = 2;
    long long last_change;
    struct ctl *c;
    long long start;
    if (argc < 4)
        return 64;
    target = (pid_t)atoi(argv[2]);
    fd = atoi(argv[3]);
    c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (c == MAP_FAILED)
        return 65;
    for (i = 0; i < NLIB; i++)
        sigs[n++] = lib_sigs[i];
    sigs[n++] = FOREIGN;
    start = dk_test_now_ms();
    last_change = start;
    last_progress = c->progress;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (pass = 0;; pass++) {
        long long el;
        for (i = 0; i < n; i++) {
            pid_t extra = c->extra;
            /* realtime signals queue (one handler run each, and the kernel walks the queue
             * on every delivery): a few, not a flood */
            if (sigs[i] >= SIGRTMIN && pass % 1024 != 0)
                continue;
            if (kill(target, sigs[i]) == 0) {
                c->sent[sigs[i]]++;
                c->to_main++;
                c->total++;
            } else if (errno == ESRCH) {
                goto out; /* the test is gone */
            }
            if (extra > 0 && kill(extra, sigs[i]) == 0) {
                c->to_extra++;
                c->total++;
            }
        }
        el = dk_test_now_ms() - start;
        if (c->stop || el >= MAX_MS)
            break;
        /* paced at RATE signals a second to the test process. Flat out (millions a
         * second), or even at 60 000 a second now and then on this 2-core VM, a process
         * that sleeps (nanosleep, poll) livelocks: every wake-up runs a handler and the next
         * signal is pending before it is back in user mode, so it issues no system call
         * at all (seen with strace; a round took 75-150 s instead of 50 ms), whatever the
         * library does. test_signals floods at full speed against a reader instead. */
        if (c->to_main > (el + 1) * (RATE / 1000)) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        /* and when the test and its children made no library call for 20 ms, a pause
         * (2 ms, doubling up to 64 ms while there is still none): a process that only runs
         * handlers (see above) gets back to its own code. The storm goes on at its rate as
         * long as they make progress. */
        if (c->progress != last_progress) {
            last_progress = c->progress;
            last_change = dk_test_now_ms();
            pause_ms = 2;
        } else if (dk_test_now_ms() - last_change >= 20) {
            struct timespec ts;
            ts.tv_sec = 0;
            ts.tv_nsec = pause_ms * 1000000L;
            nanosleep(&ts, NULL);
            c->backoffs++;
            if (pause_ms < 64)
                pause_ms *= 2;
            last_change = dk_test_now_ms();
        }
    }
out:
    c->elapsed_ms = (long)(dk_test_now_ms() - start);
    c->done = 1;
    return 0;
}

static int helper_main(int argc, char **argv)
{
    const char *mode = argv[1];
    if (strcmp(mode, "storm") == 0) {
        alarm(MAX_MS / 1000 + 30);
        return storm_main(argc, argv);
    }
    alarm(20);
    if (strcmp(mode, "exec-child") == 0 && argc > 2) {
        /* re-exec'd image: LISTEN_* right, the listener at fd 3 still listening */
        const char *lp = getenv("LISTEN_PID"), *lf = getenv("LISTEN_FDS");
        const char *ln = getenv("LISTEN_FDNAMES");
        int acc = 0;
        socklen_t sl = sizeof acc;
        int ok = lp && atoi(lp) == (int)getpid() && lf && strcmp(lf, "1") == 0 && ln &&
                 strcmp(ln, "web") == 0 && getenv("DAEMONKIT_REEXEC") &&
                 getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) == 0 && acc == 1;
        dk_test_write_file(argv[2], ok ? "ok\n" : "bad\n");
        return ok ? 0 : 1;
    }
    if (strcmp(mode, "upgrade-ready") == 0) {
        int r = dk_daemonize(DK_DAEMON_NO_CLOSE_FDS | DK_DAEMON_NO_CHDIR | DK_DAEMON_KEEP_STDIO,
                             NULL, 0, NULL, -1, 0);
        if (r != DK_ROLE_UPGRADE) {
            dk_fail(9, "storm: not an upgrade role");
            return 9;
        }
        dk_ready();
        dk_test_sleep_ms(5000);
        return 0;
    }
    if (strcmp(mode, "upgrade-fail") == 0) {
        dk_daemonize(DK_DAEMON_NO_CLOSE_FDS | DK_DAEMON_NO_CHDIR | DK_DAEMON_KEEP_STDIO, NULL,
                     0, NULL, -1, 0);
        dk_fail(3, "storm: upgrade refused");
        return 3;
    }
    return 64;
}

/* ---- the round ------------------------------------------------------------------------- */

static char notify_path[256], pid_path[256];
static int notify_sock = -1;

static void round_basics(void)
{
    uint64_t s = 0, h = 0, s2 = 0, h2 = 0, got = 0, usec = 0;
    uint32_t uid = 0, gid = 0;
    int fd, i, e;
    volatile unsigned long spin = 0;
    struct sigaction sa;

    CHECK_EQ(C(dk_version()), DK_VERSION);
    CHECK_STREQ(C(dk_strerror(-EINVAL)), strerror(EINVAL));
    CHECK_STREQ(C(dk_strerror(ENOENT)), strerror(ENOENT));

    CHECK_EQ(C(dk_rlimit_get(DK_RLIMIT_NOFILE, &s, &h)), 0);
    CHECK_EQ(C(dk_rlimit_set(DK_RLIMIT_NOFILE, s, h)), 0);
    CHECK_EQ(C(dk_rlimit_nofile(s, &got)), 0);
    CHECK_EQ(got, s);
    CHECK_EQ(C(dk_rlimit_get(DK_RLIMIT_NOFILE, &s2, &h2)), 0);
    CHECK_EQ(s2, s);
    CHECK_EQ(h2, h);
    CHECK_ERR(C(dk_rlimit_get(99, &s, &h)), EINVAL);

    CHECK_EQ(C(dk_user_lookup("nobody", &uid, &gid)), 0);
    CHECK_EQ(uid, 65534);
    CHECK_EQ(gid, 65534);
    CHECK_EQ(C(dk_user_lookup("no-such-user-dk", &uid, &gid)), DK_ERR_UNKNOWN_USER);
    CHECK_EQ(C(dk_group_lookup("nogroup", &gid)), 0);
    CHECK_EQ(gid, 65534);
    CHECK_EQ(C(dk_group_lookup("no-such-group-dk", &gid)), DK_ERR_UNKNOWN_GROUP);
    CHECK_EQ(C(dk_cap_from_name("NET_BIND_SERVICE")), 10);
    CHECK_ERR(C(dk_privileges_drop_caps("nobody", NULL, 0, 1ull << 7)), EINVAL);

    fd = open("/dev/null", O_RDONLY);
    CHECK_EQ(C(dk_fd_set_cloexec(fd, 1)), 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(C(dk_fd_set_cloexec(fd, 0)), 0);
    CHECK(!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
    close(fd);
    CHECK_ERR(C(dk_fd_set_cloexec(fd, 1)), EBADF);

    /* close_from on a range of our own: 900..903, keeping 901 */
    for (i = 900; i < 904; i++)
        dup2(devnull, i);
    {
        int keep[1] = {901};
        CHECK_EQ(C(dk_fd_close_from(900, keep, 1)), 0);
        CHECK(fcntl(900, F_GETFD) < 0 && fcntl(902, F_GETFD) < 0 && fcntl(903, F_GETFD) < 0);
        CHECK(fcntl(901, F_GETFD) >= 0);
        CHECK_ERR(C(dk_fd_close_from(-1, NULL, 0)), EINVAL);
        close(901);
    }

    CHECK_EQ(C(dk_signal_ignore_sigpipe()), 0);
    CHECK(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);

    setenv("WATCHDOG_USEC", "2000000", 1);
    CHECK_EQ(C(dk_watchdog_usec(&usec)), 1);
    CHECK_EQ(usec, 2000000);
    unsetenv("WATCHDOG_USEC");
    CHECK_EQ(C(dk_watchdog_usec(&usec)), 0);

    /* errno survives the handler: set, spin while signals land, unchanged */
    for (i = 0; i < 20; i++) {
        errno = 1000 + i;
        for (spin = 0; spin < 20000; spin++)
            ;
        e = errno;
        CHECK_EQ(e, 1000 + i);
    }
}

static void round_signals(void)
{
    int kill_[1] = {SIGKILL}, bad[2] = {SIGUSR1, 32}, s, i;
    struct sigaction sa;
    pid_t pid;

    /* registering again: the same fd; errors change nothing */
    CHECK_EQ(C(dk_signal_open(lib_sigs, NLIB)), sigfd);
    CHECK_ERR(C(dk_signal_open(kill_, 1)), EINVAL);
    CHECK_ERR(C(dk_signal_open(bad, 2)), EINVAL);
    CHECK_ERR(C(dk_signal_open_flags(lib_sigs, NLIB, 0x80u)), EINVAL);
    CHECK_EQ(C(dk_signal_open_flags(lib_sigs, NLIB, 0)), sigfd);
    {
        char text[64];
        CHECK(C(dk_event_describe(DK_EVENT_SPAWNED, 7, 1, text, sizeof text)) > 0);
        CHECK_STREQ(text, "worker 7 started (index 1)");
    }
    CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
          sa.sa_handler != SIG_IGN);
    /* take what is pending: only registered kinds */
    for (i = 0; i < 64 && (s = C(dk_signal_next())) != 0; i++)
        saw(s);
    saw(C(dk_signal_wait(0)));
    saw(C(dk_signal_wait(1)));

    /* close and reset in children (not stormed: their dispositions go back to default) */
    pid = dk_test_fork();
    if (pid == 0) {
        CHECK_EQ(C(dk_signal_close()), 0);
        CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
        CHECK_ERR(C(dk_signal_wait(0)), EBADF);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    pid = dk_test_fork();
    if (pid == 0) {
        CHECK_EQ(C(dk_signal_reset_child()), 0);
        CHECK(sigaction(SIGHUP, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
        CHECK(fcntl(sigfd, F_GETFD) < 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

static void round_pidfile(void)
{
    dk_pidfile *pf = NULL, *pf2 = NULL;
    int32_t other = 0, pid = 0;
    char buf[64], me[32];
    int r;

    snprintf(me, sizeof me, "%d\n", (int)getpid());
    r = C(dk_pidfile_open(pid_path, 0, 0, &pf, &other));
    CHECK_EQ(r, 0);
    if (r != 0)
        return;
    CHECK(C(dk_pidfile_fd(pf)) >= 0);
    CHECK_EQ(C(dk_pidfile_write(pf)), 0);
    dk_test_read_file(pid_path, buf, sizeof buf);
    CHECK_STREQ(buf, me);
    CHECK_EQ(C(dk_pidfile_check(pid_path, &pid)), DK_PIDFILE_RUNNING);
    CHECK_EQ(pid, getpid());
    CHECK_EQ(C(dk_pidfile_kill(pid_path, 0, &pid)), 0);
    CHECK_EQ(pid, getpid());
    CHECK_ERR(C(dk_pidfile_open(pid_path, 0, 0, &pf2, &other)), EEXIST);
    CHECK_EQ(other, getpid());
    CHECK_EQ(C(dk_pidfile_close(pf)), 0);
    CHECK_EQ(C(dk_pidfile_check(pid_path, &pid)), DK_PIDFILE_STALE);
    CHECK_EQ(pid, getpid());
    CHECK_ERR(C(dk_pidfile_kill(pid_path, 0, &pid)), ESRCH);
    r = C(dk_pidfile_open(pid_path, 0, 0, &pf, &other));
    CHECK_EQ(r, 0);
    if (r == 0) {
        CHECK_EQ(C(dk_pidfile_write(pf)), 0);
        CHECK_EQ(C(dk_pidfile_remove(pf)), 0);
    }
    CHECK_ERR(C(dk_pidfile_check(pid_path, &pid)), ENOENT);
    CHECK_ERR(C(dk_pidfile_kill(pid_path, 0, &pid)), ENOENT);
}

static void round_net(void)
{
    char name[256], upath[256], want[300], names[64];
    struct sockaddr_in in;
    struct sockaddr_un un;
    int fd, port, r, sv[2], p[2], two[2], got[4];
    size_t n;
    uint8_t b[16];

    /* TCP */
    fd = C(dk_listen_tcp("127.0.0.1:0", 0, 0));
    CHECK(fd >= 0);
    if (fd >= 0) {
        port = C(dk_socket_port(fd));
        CHECK(port > 0);
        r = C(dk_socket_name(fd, name, sizeof name));
        snprintf(want, sizeof want, "127.0.0.1:%d", port);
        CHECK_STREQ(name, want);
        CHECK_EQ(r, (int)strlen(want));
        memset(&in, 0, sizeof in);
        in.sin_family = AF_INET;
        in.sin_port = htons((uint16_t)port);
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK_MSG(connect_accept(fd, (struct sockaddr *)&in, sizeof in),
                  "the TCP listener does not accept");
        CHECK_ERR(C(dk_listen_tcp(want, 0, 0)), EADDRINUSE);
        /* socket activation: lent fd 3 */
        dup2(fd, 3);
        snprintf(name, sizeof name, "%d", (int)getpid());
        setenv("LISTEN_PID", name, 1);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_FDNAMES", "web", 1);
        CHECK_EQ(C(dk_listen_fds(DK_LISTEN_FDS_UNSET, names, sizeof names)), 1);
        CHECK_STREQ(names, "web");
        CHECK(getenv("LISTEN_FDS") == NULL);
        CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
        dup3(devnull, 3, O_CLOEXEC);
        close(fd);
    }
    CHECK_ERR(C(dk_listen_tcp("127.0.0.1:x", 0, 0)), EINVAL);
    CHECK_ERR(C(dk_socket_port(0)), ENOTSOCK);
    CHECK_EQ(C(dk_listen_fds(0, names, sizeof names)), 0);

    /* Unix */
    tpath(upath, sizeof upath, "storm.sock");
    fd = C(dk_listen_unix(upath, 0600, 0, 0));
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(C(dk_socket_name(fd, name, sizeof name)) > 0);
        CHECK_STREQ(name, upath);
        set_sun(&un, upath);
        CHECK_MSG(connect_accept(fd, (struct sockaddr *)&un, sizeof un),
                  "the Unix listener does not accept");
        CHECK_ERR(C(dk_listen_unix(upath, 0, 0, 0)), EADDRINUSE);
        close(fd);
        /* left behind by a dead server: replaced */
        fd = C(dk_listen_unix(upath, 0, 0, 0));
        CHECK(fd >= 0);
        if (fd >= 0)
            close(fd);
    }
    unlink(upath);

    /* sd_notify: every datagram arrives whole */
    setenv("NOTIFY_SOCKET", notify_path, 1);
    CHECK_EQ(C(dk_notify("STATUS=storm\nX=1")), 1);
    CHECK(recv_retry(notify_sock, name, sizeof name) > 0);
    CHECK_STREQ(name, "STATUS=storm\nX=1");
    CHECK_EQ(C(dk_notify_reloading()), 1);
    CHECK(recv_retry(notify_sock, name, sizeof name) > 0);
    CHECK(strncmp(name, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
    CHECK_EQ(C(dk_notify_stopping()), 1);
    CHECK(recv_retry(notify_sock, name, sizeof name) > 0);
    CHECK_STREQ(name, "STOPPING=1");
    CHECK_ERR(C(dk_notify_fd(-1)), EBADF);
    CHECK_EQ(C(dk_ready()), 0); /* plain role: READY=1 to NOTIFY_SOCKET */
    CHECK(recv_retry(notify_sock, name, sizeof name) > 0);
    CHECK_STREQ(name, "READY=1");
    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ(C(dk_notify("READY=1")), 0);

    /* SCM_RIGHTS: the pipe passed along carries its data intact */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 && pipe2(p, O_CLOEXEC) == 0) {
        static char blk[4096], back[4096];
        int i;
        two[0] = p[0];
        two[1] = p[1];
        CHECK_EQ(C(dk_fd_send(sv[0], (const uint8_t *)"hello", 5, two, 2)), 5);
        n = 4;
        r = C(dk_fd_recv(sv[1], b, sizeof b, got, &n));
        CHECK_EQ(r, 5);
        CHECK_EQ(n, 2);
        CHECK(memcmp(b, "hello", 5) == 0);
        if (r == 5 && n == 2) {
            for (i = 0; i < (int)sizeof blk; i++)
                blk[i] = (char)(i * 7 + 3);
            dk_test_write_all(got[1], blk, sizeof blk);
            CHECK_EQ(read_full(p[0], back, sizeof back), (ssize_t)sizeof back);
            CHECK(memcmp(blk, back, sizeof blk) == 0);
            close(got[0]);
            close(got[1]);
        }
        CHECK_ERR(C(dk_fd_send(p[1], (const uint8_t *)"x", 1, NULL, 0)), ENOTSOCK);
        close(sv[0]);
        close(sv[1]);
        close(p[0]);
        close(p[1]);
    }
}

/* In a child that keeps the inherited handlers and is stormed too: log, privileges, core. */
static void round_child(void)
{
    pid_t pid = dk_test_fork();
    if (pid == 0) {
        char logp[256], rot[300], buf[256];
        int saved1 = dup(1), saved2 = dup(2);
        gid_t groups[8];
        uint64_t s = 1, h = 1;
        tpath(logp, sizeof logp, "storm.log");
        snprintf(rot, sizeof rot, "%s.1", logp);
        unlink(logp);
        unlink(rot);
        CHECK_ERR(C(dk_log_reopen()), EBADF);
        CHECK_EQ(C(dk_log_open(logp, DK_LOG_STDOUT)), 0);
        dk_test_write_all(1, "one\n", 4);
        CHECK_EQ(rename(logp, rot), 0);
        CHECK_EQ(C(dk_log_reopen()), 0);
        dk_test_write_all(1, "two\n", 4);
        dup2(saved1, 1);
        dup2(saved2, 2);
        close(saved1);
        close(saved2);
        dk_test_read_file(rot, buf, sizeof buf);
        CHECK_STREQ(buf, "one\n");
        dk_test_read_file(logp, buf, sizeof buf);
        CHECK_STREQ(buf, "two\n");

        CHECK_EQ(C(dk_rlimit_disable_core()), 0);
        CHECK_EQ(C(dk_rlimit_get(DK_RLIMIT_CORE, &s, &h)), 0);
        CHECK_EQ(s, 0);
        CHECK_EQ(h, 0);
        CHECK_EQ(C(dk_privileges_drop("nobody", "nogroup", 0)), 0);
        CHECK_EQ(getuid(), 65534);
        CHECK_EQ(geteuid(), 65534);
        CHECK_EQ(getgid(), 65534);
        CHECK_EQ(getegid(), 65534);
        CHECK_EQ(getgroups(8, groups), 1);
        CHECK_EQ(groups[0], 65534);
        CHECK(setuid(0) != 0);
        CHECK_EQ(C(dk_privileges_drop("nobody", "nogroup", 0)), 0);
        CHECK_EQ(C(dk_privileges_drop("root", NULL, 0)), DK_ERR_NOT_ROOT);
        dk_test_child_exit(0);
    }
    ctl->extra = pid;
    CHECK_CHILD_OK(pid);
    ctl->extra = 0;
}

/* No child of ours is a zombie now (one would be a child the library forked and did not
 * reap, e.g. after a waitpid interrupted by the foreign handler). Reaps it if there is. */
static void check_no_zombie(const char *after)
{
    siginfo_t si;
    char stat[256] = "";
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid > 0) {
        char sp[64];
        snprintf(sp, sizeof sp, "/proc/%d/stat", (int)si.si_pid);
        dk_test_read_file(sp, stat, sizeof stat);
        waitpid(si.si_pid, NULL, 0);
    }
    CHECK_MSG(si.si_pid == 0, "a child was left unreaped after %s: %s", after, stat);
}

/* A launcher child (stormed) daemonizes; the daemon reports ready, or a failure (odd
 * rounds). The launcher's exit status and stderr say what the daemon reported. */
static void round_daemonize(int round)
{
    char errp[256], resp[256], buf[512];
    int fail = round % 2, st = 0, dpid = 0;
    pid_t pid;
    tpath(errp, sizeof errp, "launcher.err");
    tpath(resp, sizeof resp, "daemon.pid");
    unlink(resp);
    pid = dk_test_fork();
    if (pid == 0) {
        pid_t me = getpid();
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), r;
        dup2(e, 2);
        close(e);
        r = C(dk_daemonize(0, NULL, 0, NULL, 022, 10000));
        if (getpid() == me)
            _exit(100); /* the launcher must not return */
        snprintf(buf, sizeof buf, "%d\n", (int)getpid());
        dk_test_write_file(resp, buf);
        if (r != DK_ROLE_DAEMON) {
            dk_fail(101, "storm: daemonize failed in the daemon");
            _exit(101);
        }
        if (fail)
            dk_fail(42, "storm: daemon refused");
        else
            dk_ready();
        _exit(0);
    }
    ctl->extra = pid;
    if (dk_test_wait(pid, 15000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == (fail ? 42 : 0),
                  "launcher status 0x%x (round %d)", st, round);
    ctl->extra = 0;
    dk_test_read_file(errp, buf, sizeof buf);
    if (fail)
        CHECK_CONTAINS(buf, "storm: daemon refused");
    else
        CHECK_STREQ(buf, "");
    /* the daemon is our child (subreaper): reap it */
    {
        long long end = dk_test_now_ms() + 5000;
        while (dk_test_read_file(resp, buf, sizeof buf) <= 0 && dk_test_now_ms() < end)
            dk_test_sleep_ms(2);
        dpid = atoi(buf);
        CHECK(dpid > 0);
        if (dpid > 0) {
            dk_test_track(dpid);
            if (dk_test_wait(dpid, 5000, &st) == 0)
                CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon status 0x%x", st);
        }
    }
    calls += 2; /* dk_ready or dk_fail, in the daemon */
    check_no_zombie("dk_daemonize (the intermediate child)");
}

static void round_exec(void)
{
    char res[256], msg[128], buf[64], me[32], ppath[256];
    const char *argv_exec[] = {self_exe, "exec-child", res, NULL};
    const char *argv_up[] = {self_exe, "upgrade-ready", NULL};
    const char *argv_fail[] = {self_exe, "upgrade-fail", NULL};
    const char *argv_missing[] = {"/nonexistent/dk-prog", NULL};
    dk_pidfile *pf = NULL;
    int l, fds[1], r, st = 0;
    pid_t pid;

    tpath(res, sizeof res, "exec.result");
    tpath(ppath, sizeof ppath, "upgrade.pid");
    unlink(res);
    l = dk_listen_tcp("127.0.0.1:0", 0, 0);
    fds[0] = l;
    CHECK_ERR(C(dk_reexec(argv_missing, fds, 1, "web", NULL)), ENOENT);
    CHECK(fcntl(l, F_GETFD) & FD_CLOEXEC); /* as it was */
    /* a child becomes the new image (not stormed: exec resets caught signals) */
    pid = dk_test_fork();
    if (pid == 0) {
        C(dk_reexec(argv_exec, fds, 1, "web", NULL));
        _exit(120);
    }
    if (dk_test_wait(pid, 10000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "re-exec'd image status 0x%x", st);
    dk_test_read_file(res, buf, sizeof buf);
    CHECK_STREQ(buf, "ok\n");

    /* upgrade from this (stormed) process */
    r = C(dk_pidfile_open(ppath, 0, 0, &pf, NULL));
    CHECK_EQ(r, 0);
    if (r == 0) {
        CHECK_EQ(C(dk_pidfile_write(pf)), 0);
        r = C(dk_upgrade(argv_fail, fds, 1, "web", pf, 10000, msg, sizeof msg));
        CHECK_ERR(r, ECANCELED);
        CHECK_STREQ(msg, "storm: upgrade refused");
        snprintf(me, sizeof me, "%d\n", (int)getpid());
        dk_test_read_file(ppath, buf, sizeof buf);
        CHECK_STREQ(buf, me);
        /* the failed generation was killed and reaped: no zombie left to us */
        check_no_zombie("a failed dk_upgrade");
        r = C(dk_upgrade(argv_up, fds, 1, "web", pf, 10000, msg, sizeof msg));
        CHECK_MSG(r > 0, "dk_upgrade = %d (%s)", r, msg);
        if (r > 0) {
            CHECK_ERR(C(dk_pidfile_fd(pf)), EBADF); /* let go: the new generation has it */
            kill(r, SIGKILL);
            dk_test_track(r);
            dk_test_wait(r, 5000, &st);
        }
        CHECK_EQ(C(dk_pidfile_close(pf)), 0);
        unlink(ppath);
    }
    close(l);
}

static int sv_worker(void *ctx, uint32_t index)
{
    sigset_t set;
    int sig = 0;
    (void)ctx;
    (void)index;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    dk_ready();
    sigwait(&set, &sig);
    return 0;
}

static void sv_event(void *ctx, int kind, int32_t pid, int32_t value)
{
    (void)ctx;
    (void)pid;
    (void)value;
    if (kind == DK_EVENT_READY)
        kill(getpid(), SIGTERM);
}

static void round_supervisor(void)
{
    dk_supervisor *sv = NULL;
    const char *argv[] = {"/bin/true", NULL};
    int r, l, st = 0;
    pid_t pid;

    r = C(dk_supervisor_new(&sv));
    CHECK_EQ(r, 0);
    if (r != 0)
        return;
    l = dk_listen_tcp("127.0.0.1:0", 0, 0);
    CHECK_EQ(C(dk_supervisor_set_workers(sv, 2)), 0);
    CHECK_ERR(C(dk_supervisor_set_workers(sv, 0)), EINVAL);
    CHECK_EQ(C(dk_supervisor_set_graceful_timeout(sv, 3000)), 0);
    CHECK_EQ(C(dk_supervisor_set_ready_timeout(sv, 3000)), 0);
    CHECK_EQ(C(dk_supervisor_set_exec(sv, argv)), 0);
    CHECK_EQ(C(dk_supervisor_set_worker(sv, sv_worker, NULL)), 0);
    CHECK_EQ(C(dk_supervisor_set_post_fork(sv, NULL, NULL)), 0);
    CHECK_EQ(C(dk_supervisor_set_event(sv, sv_event, NULL)), 0);
    CHECK_EQ(C(dk_supervisor_add_listener(sv, l)), 0);
    CHECK_EQ(C(dk_supervisor_set_listen_names(sv, "web")), 0);
    CHECK_EQ(C(dk_supervisor_set_pidfile(sv, NULL)), 0);
    CHECK_EQ(C(dk_supervisor_set_upgrade(sv, argv, 1000)), 0);
    CHECK_EQ(C(dk_supervisor_set_exec(sv, argv)), 0);
    CHECK_EQ(C(dk_supervisor_set_stop_signal(sv, SIGQUIT)), 0);
    CHECK_EQ(C(dk_supervisor_set_restart(sv, 100, 3, 1000)), 0);
    CHECK_EQ(C(dk_supervisor_set_flags(sv, 0)), 0);
    CHECK_EQ(C(dk_supervisor_set_stdio(sv, NULL, NULL)), 0);
    CHECK_EQ(C(dk_supervisor_exit_status(sv)), 0);
    CHECK_ERR(C(dk_supervisor_add_listener_pair(sv, l, l)), EINVAL);
    {
        int twice[2] = { l, l };
        CHECK_ERR(C(dk_supervisor_add_listener_slots(sv, twice, 2)), EINVAL);
    }
    /* run in a child (the master is not stormed: USR1/HUP/TTIN... mean things to it) */
    pid = dk_test_fork();
    if (pid == 0) {
        dk_supervisor *m = NULL;
        alarm(20);
        unsetenv("NOTIFY_SOCKET");
        CHECK_EQ(dk_supervisor_new(&m), 0);
        dk_supervisor_set_workers(m, 2);
        dk_supervisor_set_graceful_timeout(m, 3000);
        dk_supervisor_set_worker(m, sv_worker, NULL);
        dk_supervisor_set_event(m, sv_event, NULL);
        dk_supervisor_add_listener(m, l);
        r = dk_supervisor_run(m);
        CHECK_EQ(r, DK_SUPERVISOR_STOPPED);
        dk_supervisor_free(m);
        dk_test_child_exit(r == DK_SUPERVISOR_STOPPED ? 0 : 1);
    }
    if (dk_test_wait(pid, 20000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "master status 0x%x", st);
    calls += 1; /* dk_supervisor_run */
    CHECK_EQ(C(dk_supervisor_free(sv)), 0);
    close(l);
}

#define PART(call)                                                                          \
    do {                                                                                    \
        long long p0_ = dk_test_now_ms();                                                   \
        dk_test_set_stage(#call);                                                           \
        call;                                                                               \
        if (debug && dk_test_now_ms() - p0_ > 500)                                          \
            dk_test_log("  %s took %lld ms\n", #call, dk_test_now_ms() - p0_);              \
    } while (0)

static void one_round(int round)
{
    PART(round_basics());
    PART(round_signals());
    PART(round_pidfile());
    PART(round_net());
    PART(round_child());
    PART(round_daemonize(round));
    PART(round_exec());
    PART(round_supervisor());
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static char fds_start[8192], fds_now[8192];
    struct sigaction sa;
    struct sockaddr_un un;
    long seen_during[65];
    int mfd, i, round = 0, nfd_start, lost = 0, st = 0, s;
    long long t0, storm_ms;
    pid_t storm;
    ssize_t n;

    lib_sigs[0] = SIGUSR1;
    lib_sigs[1] = SIGUSR2;
    lib_sigs[2] = SIGHUP;
    lib_sigs[3] = SIGCHLD;
    lib_sigs[4] = SIGWINCH;
    lib_sigs[5] = SIGURG;
    lib_sigs[6] = SIGTTIN;
    lib_sigs[7] = SIGTTOU;
    lib_sigs[8] = SIGPWR;
    lib_sigs[9] = SIGRTMIN + 4;
    lib_sigs[10] = SIGRTMAX - 1; /* valgrind keeps SIGRTMAX for itself */
    if (argc > 1)
        return helper_main(argc, argv);

    dk_test_init("storm", 280);
    debug = getenv("DK_STORM_DEBUG") != NULL;
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    reserved3 = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (reserved3 != 3) {
        dup2(reserved3, 3);
        close(reserved3);
        reserved3 = 3;
        fcntl(3, F_SETFD, FD_CLOEXEC);
    }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    tmp = dk_test_tmpdir();
    n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    self_exe[n > 0 ? n : 0] = '\0';
    tpath(notify_path, sizeof notify_path, "notify.sock");
    tpath(pid_path, sizeof pid_path, "storm.pid");
    unsetenv("NOTIFY_SOCKET");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    notify_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    set_sun(&un, notify_path);
    CHECK_EQ(bind(notify_sock, (struct sockaddr *)&un, sizeof un), 0);

    /* the test's own handler, without SA_RESTART: any call it interrupts sees EINTR */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_foreign;
    sigemptyset(&sa.sa_mask);
    sigaction(FOREIGN, &sa, NULL);

    /* the control block shared with the storm process */
    mfd = memfd_create("dk-storm", 0);
    CHECK(mfd >= 0);
    if (mfd < 0 || ftruncate(mfd, sizeof *ctl) != 0)
        return dk_test_done();
    ctl = mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (ctl == MAP_FAILED)
        return dk_test_done();
    memset((void *)ctl, 0, sizeof *ctl);

    nfd_start = count_fds();
    sigfd = C(dk_signal_open(lib_sigs, NLIB));
    CHECK(sigfd >= 0);
    CHECK_EQ(count_fds(), nfd_start + 2);
    fd_list(fds_start, sizeof fds_start);

    /* round 0, without the storm: the same checks must hold */
    dk_test_set_stage("round 0 (no storm)");
    one_round(round++);
    {
        fd_list(fds_now, sizeof fds_now);
        CHECK_STREQ(fds_now, fds_start);
    }
    for (i = 0; i <= 64; i++)
        seen[i] = 0;

    /* the storm */
    dk_test_set_stage("storm");
    storm = dk_test_fork();
    if (storm == 0) {
        char target[32], fdarg[32];
        snprintf(target, sizeof target, "%d", (int)getppid());
        snprintf(fdarg, sizeof fdarg, "%d", mfd);
        execl(self_exe, self_exe, "storm", target, fdarg, (char *)NULL);
        _exit(127);
    }
    t0 = dk_test_now_ms();
    while (ctl->to_main < 1000 && !ctl->done && dk_test_now_ms() - t0 < 10000)
        dk_test_sleep_ms(1); /* it is running */
    if (getenv("DK_STORM_DEBUG"))
        dk_test_log("storm started after %lld ms\n", dk_test_now_ms() - t0);
    t0 = dk_test_now_ms();
    for (;;) {
        char stage[64];
        snprintf(stage, sizeof stage, "storm round %d", round);
        dk_test_set_stage(stage);
        {
            long long r0 = dk_test_now_ms();
            one_round(round++);
            if (getenv("DK_STORM_DEBUG"))
                dk_test_log("round %d: %lld ms, %ld signals so far\n", round - 1,
                            dk_test_now_ms() - r0, ctl->to_main);
        }
        if (ctl->done)
            break;
        if (round - 1 >= MIN_ROUNDS && ctl->to_main >= MIN_SIGNALS &&
            dk_test_now_ms() - t0 >= MIN_MS)
            break;
    }
    CHECK_MSG(!ctl->done, "the storm ended (%ld ms) before the rounds did", ctl->elapsed_ms);
    ctl->stop = 1;
    if (dk_test_wait(storm, 10000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "storm process status 0x%x", st);
    storm_ms = dk_test_now_ms() - t0;
    dk_test_set_stage("after the storm");

    /* every kind that was sent was reported at some point: during the rounds or now */
    for (i = 0; i < 64 && (s = C(dk_signal_next())) != 0; i++)
        saw(s);
    for (i = 0; i <= 64; i++)
        seen_during[i] = seen[i];
    for (i = 0; i < NLIB; i++) {
        int sig = lib_sigs[i];
        if (ctl->sent[sig] > 0 && seen_during[sig] == 0) {
            lost++;
            CHECK_MSG(0, "signal %d sent %ld times, never reported", sig, ctl->sent[sig]);
        }
    }
    CHECK_EQ(lost, 0);
    CHECK(foreign_count > 0);
    CHECK_EQ(C(dk_signal_next()), 0);
    {
        struct pollfd p;
        p.fd = sigfd;
        p.events = POLLIN;
        CHECK_EQ(poll(&p, 1, 0), 0); /* drained: nothing left to read */
    }
    /* each kind raised once more: each reported exactly once, then nothing */
    for (i = 0; i <= 64; i++)
        seen[i] = 0;
    for (i = 0; i < NLIB; i++)
        raise(lib_sigs[i]);
    for (i = 0; i < 2 * NLIB && (s = C(dk_signal_next())) != 0; i++)
        saw(s);
    for (i = 0; i < NLIB; i++)
        CHECK_MSG(seen[lib_sigs[i]] == 1, "signal %d reported %ld times after one raise",
                  lib_sigs[i], seen[lib_sigs[i]]);
    CHECK_EQ(C(dk_signal_wait(0)), 0);
    /* fds as at the start (the signal pipe still open), then as before dk_signal_open */
    fd_list(fds_now, sizeof fds_now);
    CHECK_STREQ(fds_now, fds_start);
    CHECK_EQ(C(dk_signal_close()), 0);
    CHECK_EQ(count_fds(), nfd_start);

    dk_test_log("storm: %ld signals in %lld ms (%ld to the test process, %ld to its stormed "
                "children, %d foreign handler runs, %ld pauses), %d rounds under the "
                "storm + 1 before, %ld library calls (%ld with the children's), kinds "
                "reported during the storm:",
                ctl->total, storm_ms, ctl->to_main, ctl->to_extra, (int)foreign_count,
                ctl->backoffs, round - 1, calls, ctl->progress);
    for (i = 0; i < NLIB; i++)
        dk_test_log(" %d:%ld/%ld", lib_sigs[i], seen_during[lib_sigs[i]], ctl->sent[lib_sigs[i]]);
    dk_test_log(" (reported/sent)\n");
    /* nothing orphaned */
    {
        long long end = dk_test_now_ms() + 3000;
        pid_t w;
        while ((w = waitpid(-1, NULL, WNOHANG)) >= 0 && dk_test_now_ms() < end)
            if (w == 0)
                dk_test_sleep_ms(10);
        CHECK(w < 0 && errno == ECHILD);
    }
    return dk_test_done();
}
