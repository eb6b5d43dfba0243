/* fd-leak check of every function of include/daemonkit.h: the fds open before and after
 * each operation (numbers AND what each points to, from /proc/self/fd) are the same, on the
 * success path and on the error paths, except for the fds the operation is documented to
 * return (closed by the test before the comparison) or to keep (checked after the matching
 * close/free). Operations that fork, daemonize or exec are checked in a forked child, in
 * the daemon / exec'd image itself (a helper mode of this program), and on the caller's
 * side. A last part fills the fd table (EMFILE) with 0..k free slots and checks that every
 * fd-creating operation fails cleanly or succeeds, never leaking one.
 *
 * The snapshots read /proc/self/fd through a directory fd opened once per process (getdents
 * + readlink), so they need no new fd, also with a full table. check_coverage.sh checks
 * that every function of the header is called here. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

/* ---- fd snapshots --------------------------------------------------------------------- */

#define MAXFD 1100
#define LINKLEN 200

struct fdset {
    int n;
    int fd[MAXFD];
    int cloexec[MAXFD];
    char link[MAXFD][LINKLEN];
};

static int procfd = -1;
static pid_t procfd_pid;
static dev_t procfd_dev;
static ino_t procfd_ino;

/* The directory fd on /proc/self/fd of this process (reopened in a child, or when a sweep
 * closed it). Its own number is left out of every snapshot. */
static int proc_dir(void)
{
    struct stat st;
    if (procfd >= 0 && procfd_pid == getpid() && fstat(procfd, &st) == 0 &&
        st.st_dev == procfd_dev && st.st_ino == procfd_ino)
        return procfd;
    if (procfd >= 0 && procfd_pid != getpid() && fstat(procfd, &st) == 0 &&
        st.st_dev == procfd_dev && st.st_ino == procfd_ino)
        close(procfd); /* the parent's, inherited by this child */
    procfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd >= 0 && procfd < 500) {
        /* out of the way of the low numbers the tests arrange */
        int high = fcntl(procfd, F_DUPFD_CLOEXEC, 500);
        if (high >= 0) {
            close(procfd);
            procfd = high;
        }
    }
    procfd_pid = getpid();
    if (procfd >= 0 && fstat(procfd, &st) == 0) {
        procfd_dev = st.st_dev;
        procfd_ino = st.st_ino;
    }
    return procfd;
}

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void fds_take(struct fdset *s)
{
    char buf[16384];
    long n;
    int dfd = proc_dir(), i, j;
    struct rlimit rl;
    long top = LONG_MAX;
    s->n = 0;
    if (dfd < 0)
        return;
    /* Under valgrind its own fds sit above the hard limit it shows the program (and
     * change in forked children): not the program's, left out. Natively no fd is there. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
        top = (long)rl.rlim_max;
    lseek(dfd, 0, SEEK_SET);
    while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        long off = 0;
        while (off < n) {
            struct dirent64_raw *e = (struct dirent64_raw *)(void *)(buf + off);
            char p[64];
            ssize_t l;
            int fd, k;
            off += e->d_reclen;
            if (e->d_name[0] == '.')
                continue;
            fd = atoi(e->d_name);
            if (fd == dfd || fd >= top || s->n >= MAXFD)
                continue;
            k = s->n++;
            s->fd[k] = fd;
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            l = readlink(p, s->link[k], LINKLEN - 1);
            s->link[k][l > 0 ? l : 0] = '\0';
            s->cloexec[k] = (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0;
        }
    }
    /* sorted by fd number */
    for (i = 1; i < s->n; i++)
        for (j = i; j > 0 && s->fd[j - 1] > s->fd[j]; j--) {
            int t = s->fd[j], c = s->cloexec[j];
            char l[LINKLEN];
            memcpy(l, s->link[j], LINKLEN);
            s->fd[j] = s->fd[j - 1];
            s->cloexec[j] = s->cloexec[j - 1];
            memcpy(s->link[j], s->link[j - 1], LINKLEN);
            s->fd[j - 1] = t;
            s->cloexec[j - 1] = c;
            memcpy(s->link[j - 1], l, LINKLEN);
        }
}

static int fds_find(const struct fdset *s, int fd)
{
    int i;
    for (i = 0; i < s->n; i++)
        if (s->fd[i] == fd)
            return i;
    return -1;
}

static const char *fds_link(const struct fdset *s, int fd)
{
    int i = fds_find(s, fd);
    return i < 0 ? NULL : s->link[i];
}

static void fds_del(struct fdset *s, int fd)
{
    int i = fds_find(s, fd);
    if (i < 0)
        return;
    for (; i + 1 < s->n; i++) {
        s->fd[i] = s->fd[i + 1];
        s->cloexec[i] = s->cloexec[i + 1];
        memcpy(s->link[i], s->link[i + 1], LINKLEN);
    }
    s->n--;
}

static void fds_put(struct fdset *s, int fd, const char *link)
{
    int i = fds_find(s, fd), j;
    if (i < 0) {
        if (s->n >= MAXFD)
            return;
        for (i = 0; i < s->n && s->fd[i] < fd; i++)
            ;
        for (j = s->n; j > i; j--) {
            s->fd[j] = s->fd[j - 1];
            s->cloexec[j] = s->cloexec[j - 1];
            memcpy(s->link[j], s->link[j - 1], LINKLEN);
        }
        s->n++;
        s->fd[i] = fd;
        s->cloexec[i] = 0;
    }
    snprintf(s->link[i], LINKLEN, "%s", link);
}

/* Compares numbers and links (not the flags); explains the first differences in why. */
static int fds_same(const struct fdset *want, const struct fdset *got, char *why, size_t len)
{
    size_t used = 0;
    int i, ok = 1;
    why[0] = '\0';
#define WHY(...)                                                                            \
    do {                                                                                    \
        if (used < len)                                                                     \
            used += (size_t)snprintf(why + used, len - used, __VA_ARGS__);                  \
    } while (0)
    for (i = 0; i < got->n; i++) {
        const char *w = fds_link(want, got->fd[i]);
        if (!w) {
            WHY(" +%d=%s", got->fd[i], got->link[i]);
            ok = 0;
        } else if (strcmp(w, got->link[i]) != 0) {
            WHY(" %d:%s->%s", got->fd[i], w, got->link[i]);
            ok = 0;
        }
    }
    for (i = 0; i < want->n; i++)
        if (fds_find(got, want->fd[i]) < 0) {
            WHY(" -%d=%s", want->fd[i], want->link[i]);
            ok = 0;
        }
#undef WHY
    return ok;
}

static int fds_check_at(const struct fdset *want, const char *what, const char *file, int line)
{
    static struct fdset got;
    char why[2048];
    int ok;
    fds_take(&got);
    ok = fds_same(want, &got, why, sizeof why);
    return dk_test_result(ok, file, line, "fds differ after %s:%s", what, why);
}
#define CHECK_FDS(want, what) fds_check_at((want), (what), __FILE__, __LINE__)

/* The fds of `after` not in `before` (at most max), returns how many. */
static int fds_new(const struct fdset *before, const struct fdset *after, int *out, int max)
{
    int i, n = 0;
    for (i = 0; i < after->n; i++)
        if (fds_find(before, after->fd[i]) < 0 && n < max)
            out[n++] = after->fd[i];
    return n;
}

/* Writes a snapshot as "fd cloexec link" lines to path (the file's own fd left out). */
static void fds_save(const char *path)
{
    static struct fdset s;
    char line[LINKLEN + 32];
    int i, fd;
    fds_take(&s);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    for (i = 0; i < s.n; i++) {
        int n = snprintf(line, sizeof line, "%d %d %s\n", s.fd[i], s.cloexec[i], s.link[i]);
        if (s.fd[i] != fd)
            dk_test_write_all(fd, line, (size_t)n);
    }
    close(fd);
}

/* Reads a file written by fds_save. Returns 0, or -1 when it is missing. */
static int fds_load(const char *path, struct fdset *s)
{
    static char buf[MAXFD * (LINKLEN + 32)];
    char *p, *nl;
    s->n = 0;
    if (dk_test_read_file(path, buf, sizeof buf) < 0)
        return -1;
    for (p = buf; *p && s->n < MAXFD; p = nl + 1) {
        int fd, c, off = 0;
        nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if (sscanf(p, "%d %d %n", &fd, &c, &off) < 2 || off == 0)
            continue;
        fds_put(s, fd, p + off);
        s->cloexec[fds_find(s, fd)] = c;
    }
    return 0;
}

/* What an exec'd image of a process with fds `pre` should hold: 0..2 as they were, the fds
 * moved to 3.. (`targets`, their links), and every other fd of `pre` without close-on-exec
 * (what exec keeps by design; the test runner may pass some). */
static void fds_after_exec(const struct fdset *pre, const char *const *targets, int ntargets,
                           struct fdset *want)
{
    int i;
    want->n = 0;
    for (i = 0; i < pre->n; i++) {
        int fd = pre->fd[i];
        if (fd <= 2 || (fd >= 3 + ntargets && !pre->cloexec[i]))
            fds_put(want, fd, pre->link[i]);
    }
    for (i = 0; i < ntargets; i++)
        fds_put(want, 3 + i, targets[i]);
}

/* Sets an AF_UNIX address (sa zeroed by the caller), truncating an over-long path. */
static void set_sun(struct sockaddr_un *sa, const char *path)
{
    size_t n = strlen(path);
    if (n >= sizeof sa->sun_path)
        n = sizeof sa->sun_path - 1;
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n);
    sa->sun_path[n] = '\0';
}

static const char *link_of(int fd, char *buf, size_t len)
{
    char p[64];
    ssize_t n;
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    n = readlink(p, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* ---- shared state --------------------------------------------------------------------- */

static const char *tmp;
static char self_exe[PATH_MAX];
static char long_path[5001];

static int closed_fd(void)
{
    close(777);
    return 777;
}

static void tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp, name);
}

/* Waits until path exists (up to ms). */
static int wait_file(const char *path, long ms)
{
    long long end = dk_test_now_ms() + ms;
    while (access(path, F_OK) != 0) {
        if (dk_test_now_ms() > end)
            return -1;
        dk_test_sleep_ms(5);
    }
    return 0;
}

/* ---- helper modes (this program exec'd by dk_reexec, dk_upgrade, the supervisor) ------ */

static int helper_main(int argc, char **argv)
{
    const char *mode = argv[1];
    const char *out = argc > 2 ? argv[2] : "/dev/null";
    char path[PATH_MAX + 8];
    alarm(20);
    if (strcmp(mode, "exec-child") == 0) {
        /* dk_reexec'd image: record the fds it was born with */
        fds_save(out);
        return 0;
    }
    if (strcmp(mode, "upgrade-ready") == 0 || strcmp(mode, "sv-upgrade") == 0) {
        int r;
        fds_save(out);
        r = dk_daemonize(DK_DAEMON_NO_CLOSE_FDS | DK_DAEMON_NO_CHDIR | DK_DAEMON_KEEP_STDIO,
                         NULL, 0, NULL, -1, 0);
        snprintf(path, sizeof path, "%s.role", out);
        dk_test_append_line(path, "%d %d", r, (int)getpid());
        dk_ready();
        dk_test_sleep_ms(strcmp(mode, "sv-upgrade") == 0 ? 300 : 5000);
        return 0;
    }
    if (strcmp(mode, "upgrade-fail") == 0) {
        dk_daemonize(DK_DAEMON_NO_CLOSE_FDS | DK_DAEMON_NO_CHDIR | DK_DAEMON_KEEP_STDIO, NULL,
                     0, NULL, -1, 0);
        dk_fail(3, "fdleak: upgrade refused");
        return 3;
    }
    if (strcmp(mode, "upgrade-hang") == 0) {
        dk_test_sleep_ms(10000);
        return 0;
    }
    if (strcmp(mode, "worker-exec") == 0) {
        /* a supervisor worker in program mode: fds, then ready, then wait for TERM */
        const char *rfd = getenv("DAEMONKIT_READY_FD");
        sigset_t set;
        int sig = 0;
        fds_save(out);
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        if (rfd) {
            dk_test_write_all(atoi(rfd), "r", 1);
            close(atoi(rfd));
        }
        sigwait(&set, &sig);
        return 0;
    }
    return 64;
}

/* ---- version, strerror, limits, lookups, the supervisor's setters --------------------- */

static int dummy_worker(void *ctx, uint32_t index)
{
    (void)ctx;
    (void)index;
    return 0;
}

static void test_plain(void)
{
    static struct fdset before;
    uint64_t s = 0, h = 0, got = 0, usec = 0;
    uint32_t uid = 0, gid = 0;
    dk_supervisor *sv = NULL;
    const char *argv[] = {"/bin/true", NULL};
    int r, fd;
    pid_t pid;

    dk_test_set_stage("plain calls");
    fds_take(&before);
    CHECK_EQ(dk_version(), DK_VERSION);
    CHECK_FDS(&before, "dk_version");
    CHECK(dk_strerror(-ENOENT) != NULL);
    CHECK(dk_strerror(99999) != NULL);
    CHECK_FDS(&before, "dk_strerror");

    CHECK_EQ(dk_rlimit_get(DK_RLIMIT_NOFILE, &s, &h), 0);
    CHECK_ERR(dk_rlimit_get(99, &s, &h), EINVAL);
    CHECK_FDS(&before, "dk_rlimit_get");
    CHECK_EQ(dk_rlimit_set(DK_RLIMIT_NOFILE, s, h), 0);
    CHECK_ERR(dk_rlimit_set(DK_RLIMIT_NOFILE, h, s > 0 ? s - 1 : 0), EINVAL);
    CHECK_FDS(&before, "dk_rlimit_set");
    CHECK_EQ(dk_rlimit_nofile(s, &got), 0);
    CHECK_EQ(got, s);
    CHECK_FDS(&before, "dk_rlimit_nofile");
    pid = dk_test_fork();
    if (pid == 0) {
        CHECK_EQ(dk_rlimit_disable_core(), 0);
        CHECK_FDS(&before, "dk_rlimit_disable_core");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    unsetenv("WATCHDOG_USEC");
    CHECK_EQ(dk_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_USEC", "3000000", 1);
    CHECK_EQ(dk_watchdog_usec(&usec), 1);
    CHECK_EQ(usec, 3000000);
    unsetenv("WATCHDOG_USEC");
    CHECK_FDS(&before, "dk_watchdog_usec");

    CHECK_EQ(dk_user_lookup("nobody", &uid, &gid), 0);
    CHECK_EQ(dk_user_lookup("no-such-user-dk", &uid, &gid), DK_ERR_UNKNOWN_USER);
    /* a number without a passwd entry is unknown (no primary group to report) */
    CHECK_EQ(dk_user_lookup("4242", &uid, &gid), DK_ERR_UNKNOWN_USER);
    CHECK_FDS(&before, "dk_user_lookup");
    CHECK_EQ(dk_group_lookup("nogroup", &gid), 0);
    CHECK_EQ(dk_group_lookup("no-such-group-dk", &gid), DK_ERR_UNKNOWN_GROUP);
    CHECK_FDS(&before, "dk_group_lookup");

    fd = open("/dev/null", O_RDONLY);
    fds_take(&before);
    CHECK_EQ(dk_fd_set_cloexec(fd, 1), 0);
    CHECK_EQ(dk_fd_set_cloexec(fd, 0), 0);
    CHECK_ERR(dk_fd_set_cloexec(closed_fd(), 1), EBADF);
    CHECK_ERR(dk_fd_set_cloexec(-1, 1), EBADF);
    CHECK_FDS(&before, "dk_fd_set_cloexec");
    close(fd);

    fds_take(&before);
    CHECK_EQ(dk_signal_ignore_sigpipe(), 0);
    CHECK_FDS(&before, "dk_signal_ignore_sigpipe");

    /* the supervisor's handle and setters */
    r = dk_supervisor_new(&sv);
    CHECK_EQ(r, 0);
    if (r == 0) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        fds_take(&before);
        CHECK_EQ(dk_supervisor_set_workers(sv, 3), 0);
        CHECK_ERR(dk_supervisor_set_workers(sv, 0), EINVAL);
        CHECK_EQ(dk_supervisor_set_graceful_timeout(sv, 100), 0);
        CHECK_EQ(dk_supervisor_set_ready_timeout(sv, 100), 0);
        CHECK_EQ(dk_supervisor_set_worker(sv, dummy_worker, NULL), 0);
        CHECK_EQ(dk_supervisor_set_exec(sv, argv), 0);
        CHECK_EQ(dk_supervisor_set_post_fork(sv, NULL, NULL), 0);
        CHECK_EQ(dk_supervisor_set_event(sv, NULL, NULL), 0);
        CHECK_EQ(dk_supervisor_add_listener(sv, fd), 0);
        CHECK_ERR(dk_supervisor_add_listener(sv, closed_fd()), EBADF);
        CHECK_EQ(dk_supervisor_set_listen_names(sv, "web"), 0);
        CHECK_EQ(dk_supervisor_set_pidfile(sv, NULL), 0);
        CHECK_EQ(dk_supervisor_set_upgrade(sv, argv, 1000), 0);
        CHECK_EQ(dk_supervisor_set_stop_signal(sv, SIGQUIT), 0);
        CHECK_EQ(dk_supervisor_set_restart(sv, 100, 3, 1000), 0);
        CHECK_EQ(dk_supervisor_set_flags(sv, DK_SUPERVISOR_REAP_ALL), 0);
        CHECK_EQ(dk_supervisor_set_stdio(sv, NULL, NULL), 0);
        CHECK_EQ(dk_supervisor_exit_status(sv), 0);
        CHECK_ERR(dk_supervisor_add_listener_pair(sv, fd, fd), EINVAL);
        {
            int twice[2] = { fd, fd };
            CHECK_ERR(dk_supervisor_add_listener_slots(sv, twice, 2), EINVAL);
        }
        CHECK_FDS(&before, "the dk_supervisor_set_* calls");
        CHECK_EQ(dk_supervisor_free(sv), 0);
        CHECK_FDS(&before, "dk_supervisor_free"); /* the listener stays the caller's */
        close(fd);
    }
    /* run without a worker: -EINVAL, no fd (in a child: it would fork workers otherwise) */
    pid = dk_test_fork();
    if (pid == 0) {
        fds_take(&before);
        sv = NULL;
        CHECK_EQ(dk_supervisor_new(&sv), 0);
        CHECK_ERR(dk_supervisor_run(sv), EINVAL);
        CHECK_EQ(dk_supervisor_free(sv), 0);
        CHECK_FDS(&before, "dk_supervisor_run without a worker");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

/* ---- PID files ------------------------------------------------------------------------ */

static void test_pidfile(void)
{
    static struct fdset before, want;
    char path[256], dirpath[256], missing[256], link[256], fifo[256], sockp[256], buf[64];
    dk_pidfile *pf = NULL, *pf2 = NULL;
    int32_t other = 0, pid = 0;
    int r, fd;
    pid_t child;

    dk_test_set_stage("pidfile");
    tpath(path, sizeof path, "leak.pid");
    tpath(dirpath, sizeof dirpath, "a-dir");
    tpath(missing, sizeof missing, "missing/x.pid");
    tpath(link, sizeof link, "link.pid");
    tpath(fifo, sizeof fifo, "fifo.pid");
    tpath(sockp, sizeof sockp, "sock.pid");
    mkdir(dirpath, 0755);
    symlink(path, link);
    mkfifo(fifo, 0644);
    {
        struct sockaddr_un sa;
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        set_sun(&sa, sockp);
        bind(s, (struct sockaddr *)&sa, sizeof sa);
        close(s);
    }
    fds_take(&before);

    /* success: the handle keeps its fd until dk_pidfile_close */
    r = dk_pidfile_open(path, 0, 0, &pf, &other);
    CHECK_EQ(r, 0);
    if (r == 0) {
        fd = dk_pidfile_fd(pf);
        want = before;
        fds_put(&want, fd, path);
        CHECK_FDS(&want, "dk_pidfile_open (its fd kept)");
        CHECK_EQ(dk_pidfile_write(pf), 0);
        CHECK_FDS(&want, "dk_pidfile_write");
        CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_RUNNING);
        CHECK_EQ(pid, getpid());
        CHECK_FDS(&want, "dk_pidfile_check (running)");
        CHECK_EQ(dk_pidfile_kill(path, 0, &pid), 0);
        CHECK_FDS(&want, "dk_pidfile_kill (sig 0)");
        CHECK_ERR(dk_pidfile_kill(path, 65, &pid), EINVAL);
        CHECK_FDS(&want, "dk_pidfile_kill (bad signal)");
        /* a second open in the same process: another open file description, locked out */
        r = dk_pidfile_open(path, 0, 0, &pf2, &other);
        CHECK_ERR(r, EEXIST);
        CHECK_EQ(other, getpid());
        CHECK_FDS(&want, "dk_pidfile_open (EEXIST)");
        /* the lock holder in a forked child: same answers from there */
        child = dk_test_fork();
        if (child == 0) {
            static struct fdset cb;
            fds_take(&cb);
            CHECK_ERR(dk_pidfile_open(path, 0, 0, &pf2, &other), EEXIST);
            CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_RUNNING);
            CHECK_FDS(&cb, "dk_pidfile_open/check in a child");
            /* the child's copy: dk_pidfile_remove is not the owner (-EPERM), closes it */
            CHECK_ERR(dk_pidfile_remove(pf), EPERM);
            fds_del(&cb, fd);
            CHECK_FDS(&cb, "dk_pidfile_remove (-EPERM) in a child");
            dk_test_child_exit(0);
        }
        CHECK_CHILD_OK(child);
        CHECK_EQ(dk_pidfile_close(pf), 0);
        CHECK_FDS(&before, "dk_pidfile_close");
        /* stale now (the file stays) */
        CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_STALE);
        CHECK_FDS(&before, "dk_pidfile_check (stale)");
        CHECK_ERR(dk_pidfile_kill(path, 0, &pid), ESRCH);
        CHECK_FDS(&before, "dk_pidfile_kill (stale)");
    }

    /* dk_pidfile_remove: owner -> 0; not the owner any more -> -EPERM; both close */
    r = dk_pidfile_open(path, 0, 0, &pf, &other);
    CHECK_EQ(r, 0);
    if (r == 0) {
        CHECK_EQ(dk_pidfile_write(pf), 0);
        CHECK_EQ(dk_pidfile_remove(pf), 0);
        CHECK_FDS(&before, "dk_pidfile_remove (owner)");
    }
    r = dk_pidfile_open(path, 0, 0, &pf, &other);
    CHECK_EQ(r, 0);
    if (r == 0) {
        CHECK_EQ(dk_pidfile_write(pf), 0);
        dk_test_write_file(path, "1\n"); /* somebody else's pid now */
        CHECK_ERR(dk_pidfile_remove(pf), EPERM);
        CHECK_FDS(&before, "dk_pidfile_remove (-EPERM)");
    }
    /* held but no pid written yet: EEXIST with pid 0 after the 1 s wait, EAGAIN for kill */
    r = dk_pidfile_open(path, 0, 0, &pf, &other);
    CHECK_EQ(r, 0);
    if (r == 0) {
        want = before;
        fds_put(&want, dk_pidfile_fd(pf), path);
        CHECK_ERR(dk_pidfile_open(path, 0, 0, &pf2, &other), EEXIST);
        CHECK_EQ(other, 0);
        CHECK_ERR(dk_pidfile_kill(path, 0, &pid), EAGAIN);
        CHECK_FDS(&want, "dk_pidfile_open/kill while no pid is written");
        CHECK_EQ(dk_pidfile_remove(pf), 0); /* opener, nothing written: owner */
        CHECK_FDS(&before, "dk_pidfile_remove (empty file)");
    }

    /* adoption of a handed-over locked fd (DAEMONKIT_PIDFILE_FD): the handle takes that fd,
     * dk_pidfile_close closes it */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    fds_take(&want);
    snprintf(buf, sizeof buf, "%d", fd);
    setenv("DAEMONKIT_PIDFILE_FD", buf, 1);
    r = dk_pidfile_open(path, 0, 0, &pf, &other);
    CHECK_EQ(r, 0);
    CHECK(getenv("DAEMONKIT_PIDFILE_FD") == NULL);
    unsetenv("DAEMONKIT_PIDFILE_FD");
    if (r == 0) {
        CHECK_EQ(dk_pidfile_fd(pf), fd);
        CHECK_FDS(&want, "dk_pidfile_open (adopted fd)");
        CHECK_EQ(dk_pidfile_close(pf), 0);
        CHECK_FDS(&before, "dk_pidfile_close (adopted fd)");
    } else {
        close(fd);
    }

    /* error paths: nothing left open */
    CHECK_ERR(dk_pidfile_open(NULL, 0, 0, &pf, &other), EINVAL);
    CHECK_ERR(dk_pidfile_open(path, 0, 1, &pf, &other), EINVAL);
    CHECK_ERR(dk_pidfile_open(long_path, 0, 0, &pf, &other), ENAMETOOLONG);
    CHECK_ERR(dk_pidfile_open(missing, 0, 0, &pf, &other), ENOENT);
    CHECK_ERR(dk_pidfile_open(dirpath, 0, 0, &pf, &other), EISDIR);
    CHECK_ERR(dk_pidfile_open(link, 0, 0, &pf, &other), ELOOP);
    CHECK_ERR(dk_pidfile_open(fifo, 0, 0, &pf, &other), EINVAL);
    CHECK(dk_pidfile_open(sockp, 0, 0, &pf, &other) < 0);
    CHECK_ERR(dk_pidfile_write(NULL), EINVAL);
    CHECK_ERR(dk_pidfile_fd(NULL), EINVAL);
    CHECK_EQ(dk_pidfile_close(NULL), 0);
    CHECK_ERR(dk_pidfile_remove(NULL), EINVAL);
    CHECK_FDS(&before, "dk_pidfile_open error paths");
    CHECK_ERR(dk_pidfile_check(missing, &pid), ENOENT);
    CHECK_ERR(dk_pidfile_check(link, &pid), ELOOP);
    CHECK_ERR(dk_pidfile_check(fifo, &pid), EINVAL);
    CHECK_ERR(dk_pidfile_check(dirpath, &pid), EINVAL);
    CHECK_ERR(dk_pidfile_check(NULL, &pid), EINVAL);
    CHECK_FDS(&before, "dk_pidfile_check error paths");
    CHECK_ERR(dk_pidfile_kill(missing, 0, &pid), ENOENT);
    CHECK_ERR(dk_pidfile_kill(link, 0, &pid), ELOOP);
    CHECK_ERR(dk_pidfile_kill(fifo, 0, &pid), EINVAL);
    CHECK_ERR(dk_pidfile_kill(long_path, 0, &pid), ENAMETOOLONG);
    CHECK_FDS(&before, "dk_pidfile_kill error paths");

    /* EACCES as nobody (a directory only root may write) */
    child = dk_test_fork();
    if (child == 0) {
        static struct fdset cb;
        char ro[256];
        tpath(ro, sizeof ro, "root-only");
        mkdir(ro, 0755);
        strcat(ro, "/x.pid");
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        fds_take(&cb);
        CHECK_ERR(dk_pidfile_open(ro, 0, 0, &pf, &other), EACCES);
        CHECK_FDS(&cb, "dk_pidfile_open (EACCES)");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(child);
}

/* ---- privileges ----------------------------------------------------------------------- */

static void test_privileges(void)
{
    pid_t pid;
    dk_test_set_stage("privileges");
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset before;
        fds_take(&before);
        CHECK_EQ(dk_privileges_drop("no-such-user-dk", NULL, 0), DK_ERR_UNKNOWN_USER);
        CHECK_EQ(dk_privileges_drop("nobody", "no-such-group-dk", 0), DK_ERR_UNKNOWN_GROUP);
        CHECK_ERR(dk_privileges_drop(NULL, NULL, 0), EINVAL);
        CHECK_FDS(&before, "dk_privileges_drop error paths");
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        CHECK_EQ(getuid(), 65534);
        CHECK_FDS(&before, "dk_privileges_drop");
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0); /* already the target */
        CHECK_EQ(dk_privileges_drop("root", NULL, 0), DK_ERR_NOT_ROOT);
        CHECK_FDS(&before, "dk_privileges_drop as nobody");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    /* Keeping a capability: /proc/self/status and cap_last_cap are read and closed. */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset before;
        fds_take(&before);
        CHECK_EQ(dk_cap_from_name("NET_BIND_SERVICE"), 10);
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 0, 1ull << 7), EINVAL);
        CHECK_FDS(&before, "dk_privileges_drop_caps error paths");
        CHECK_EQ(dk_privileges_drop_caps("nobody", "nogroup", DK_PRIVILEGES_NO_NEW_PRIVS, 1ull << 10), 0);
        CHECK_FDS(&before, "dk_privileges_drop_caps");
        CHECK_EQ(dk_privileges_drop_caps("nobody", "nogroup", DK_PRIVILEGES_NO_NEW_PRIVS, 1ull << 10), 0);
        CHECK_FDS(&before, "dk_privileges_drop_caps as nobody (verified again)");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

/* ---- fds and logs --------------------------------------------------------------------- */

static void test_close_from(void)
{
    pid_t pid;
    dk_test_set_stage("close_from");
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset before, want;
        dk_pidfile *pf = NULL;
        char path[256];
        int keep[2], sigs[1] = {SIGUSR1}, sigfd, r, i, fd;
        int many[1025];

        tpath(path, sizeof path, "close-from.pid");
        r = dk_pidfile_open(path, 0, 0, &pf, NULL);
        CHECK_EQ(r, 0);
        sigfd = dk_signal_open(sigs, 1);
        CHECK(sigfd >= 0);
        for (i = 0; i < 5; i++)
            dup2(0, 300 + i);
        fds_take(&before);

        /* argument errors close nothing */
        CHECK_ERR(dk_fd_close_from(-1, NULL, 0), EINVAL);
        CHECK_ERR(dk_fd_close_from(3, NULL, 2), EINVAL);
        for (i = 0; i < 1025; i++)
            many[i] = 300;
        CHECK_ERR(dk_fd_close_from(3, many, 1025), EINVAL);
        CHECK_FDS(&before, "dk_fd_close_from error paths");

        /* 300..304 minus the kept 302 */
        keep[0] = 302;
        CHECK_EQ(dk_fd_close_from(300, keep, 1), 0);
        want = before;
        for (i = 0; i < 5; i++)
            if (300 + i != 302)
                fds_del(&want, 300 + i);
        CHECK_FDS(&want, "dk_fd_close_from(300, keep 302)");

        /* everything from 3 but the kept fd and the library's own: the PID file's fd and
         * the signal pipe (both ends) */
        fd = pf ? dk_pidfile_fd(pf) : -1;
        CHECK_EQ(dk_fd_close_from(3, keep, 1), 0);
        {
            static struct fdset got;
            int pipes = 0;
            want.n = 0;
            for (i = 0; i < before.n; i++)
                if (before.fd[i] <= 2 || before.fd[i] == 302 || before.fd[i] == fd ||
                    before.fd[i] == sigfd)
                    fds_put(&want, before.fd[i], before.link[i]);
            fds_take(&got);
            /* the pipe's write end: the other "pipe:" fd of the same inode as sigfd */
            for (i = 0; i < before.n; i++)
                if (before.fd[i] != sigfd && before.fd[i] > 2 &&
                    strcmp(before.link[i], fds_link(&before, sigfd)) == 0) {
                    fds_put(&want, before.fd[i], before.link[i]);
                    pipes++;
                }
            CHECK_EQ(pipes, 1);
            CHECK_FDS(&want, "dk_fd_close_from(3, keep 302)");
        }
        /* the signal pipe still works after the sweep */
        raise(SIGUSR1);
        CHECK_EQ(dk_signal_next(), SIGUSR1);
        CHECK_EQ(dk_signal_close(), 0);
        CHECK_EQ(dk_pidfile_remove(pf), 0);
        fds_del(&want, fd);
        fds_del(&want, sigfd);
        for (i = 0; i < before.n; i++)
            if (before.fd[i] > 2 && before.fd[i] != sigfd &&
                strcmp(before.link[i], fds_link(&before, sigfd)) == 0)
                fds_del(&want, before.fd[i]);
        CHECK_FDS(&want, "dk_signal_close + dk_pidfile_remove after the sweep");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

static void test_log(void)
{
    pid_t pid;
    dk_test_set_stage("log");
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset before, want;
        char logp[300], rotated[300], dir[256], missing[256], moved[256];
        int saved1 = dup(1), saved2 = dup(2);

        tpath(dir, sizeof dir, "logdir");
        mkdir(dir, 0755);
        snprintf(logp, sizeof logp, "%s/app.log", dir);
        snprintf(rotated, sizeof rotated, "%s/app.log.1", dir);
        tpath(missing, sizeof missing, "no-such-dir/app.log");
        tpath(moved, sizeof moved, "logdir-moved");
        fds_take(&before);

        CHECK_ERR(dk_log_reopen(), EBADF); /* nothing opened yet */
        CHECK_ERR(dk_log_open(missing, 0), ENOENT);
        CHECK_ERR(dk_log_open(dir, 0), EISDIR);
        CHECK_ERR(dk_log_open(NULL, 0), EINVAL);
        CHECK_ERR(dk_log_open(logp, 4), EINVAL);
        CHECK_FDS(&before, "dk_log_open/dk_log_reopen error paths");

        /* stderr only, then both: the numbers stay, what they point to changes */
        CHECK_EQ(dk_log_open(logp, DK_LOG_STDERR), 0);
        want = before;
        fds_put(&want, 2, logp);
        CHECK_FDS(&want, "dk_log_open(stderr)");
        CHECK_EQ(dk_log_open(logp, 0), 0);
        fds_put(&want, 1, logp);
        CHECK_FDS(&want, "dk_log_open(both)");

        /* logrotate: rename, reopen -> 1 and 2 on the new file, nothing else */
        CHECK_EQ(rename(logp, rotated), 0);
        CHECK_EQ(dk_log_reopen(), 0);
        CHECK_FDS(&want, "dk_log_reopen");
        /* reopen failing (the directory is gone): -ENOENT, 1 and 2 stay where they were */
        CHECK_EQ(rename(dir, moved), 0);
        fds_take(&want);
        CHECK_ERR(dk_log_reopen(), ENOENT);
        CHECK_FDS(&want, "dk_log_reopen (-ENOENT)");
        dup2(saved1, 1);
        dup2(saved2, 2);
        close(saved1);
        close(saved2);
        fds_del(&before, saved1);
        fds_del(&before, saved2);
        CHECK_FDS(&before, "restored stdio");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

/* ---- signals -------------------------------------------------------------------------- */

/* The other end of the signal pipe whose read end is `r` (from a snapshot), or -1. */
static int pipe_peer(const struct fdset *s, int r)
{
    const char *l = fds_link(s, r);
    int i;
    for (i = 0; l && i < s->n; i++)
        if (s->fd[i] != r && strcmp(s->link[i], l) == 0)
            return s->fd[i];
    return -1;
}

static void test_signals(void)
{
    static struct fdset before, after;
    int sigs[3] = {SIGUSR1, SIGUSR2, SIGHUP}, bad[2] = {SIGUSR1, 32}, kill_[1] = {SIGKILL};
    int fd, fd2, nnew, news[8];
    struct sigaction sa;
    pid_t pid;

    dk_test_set_stage("signals");
    fds_take(&before);
    CHECK_ERR(dk_signal_wait(0), EBADF);
    CHECK_EQ(dk_signal_next(), 0);
    CHECK_ERR(dk_signal_open(kill_, 1), EINVAL);
    CHECK_ERR(dk_signal_open(NULL, 1), EINVAL);
    /* 32 is glibc's own: refused, and nothing registered or left open */
    CHECK_ERR(dk_signal_open(bad, 2), EINVAL);
    CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
    CHECK_ERR(dk_signal_open_flags(sigs, 1, 0x80u), EINVAL);
    CHECK_FDS(&before, "dk_signal_open/wait/next error paths");
    {
        char text[64];
        CHECK(dk_event_describe(DK_EVENT_EXITED, 7, 9, text, sizeof text) > 0);
        CHECK(dk_event_describe(DK_EVENT_LOG_REOPENED, 1, -EACCES, text, sizeof text) > 0);
        CHECK_FDS(&before, "dk_event_describe");
    }

    fd = dk_signal_open(sigs, 2);
    CHECK(fd >= 0);
    fds_take(&after);
    nnew = fds_new(&before, &after, news, 8);
    CHECK_EQ(nnew, 2); /* the pipe: read end (returned) and write end */
    CHECK(fd >= 0 && pipe_peer(&after, fd) >= 0);
    CHECK(nnew == 2 && (news[0] == fd || news[1] == fd));
    fd2 = dk_signal_open(sigs + 2, 1);
    CHECK_EQ(fd2, fd);
    CHECK_FDS(&after, "dk_signal_open again (same pipe)");
    raise(SIGUSR2);
    CHECK_EQ(dk_signal_next(), SIGUSR2);
    CHECK_EQ(dk_signal_next(), 0);
    raise(SIGHUP);
    CHECK_EQ(dk_signal_wait(1000), SIGHUP);
    CHECK_EQ(dk_signal_wait(10), 0);
    CHECK_ERR(dk_signal_open(bad, 2), EINVAL); /* pipe exists: it stays, nothing added */
    CHECK_FDS(&after, "dk_signal_next/wait");

    /* dk_signal_reset_child in a child closes the pipe */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb, cw;
        fds_take(&cb);
        cw = cb;
        fds_del(&cw, fd);
        fds_del(&cw, pipe_peer(&cb, fd));
        CHECK_EQ(dk_signal_reset_child(), 0);
        CHECK_FDS(&cw, "dk_signal_reset_child");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    CHECK_EQ(dk_signal_close(), 0);
    CHECK_FDS(&before, "dk_signal_close");
    CHECK_EQ(dk_signal_close(), 0);
    CHECK_FDS(&before, "dk_signal_close twice");
}

/* ---- listeners, names, socket activation ---------------------------------------------- */

static void test_listen(void)
{
    static struct fdset before, want;
    char upath[256], stale[256], plain[256], missing[256], name[256];
    int fd, fd2, port;
    pid_t pid;

    dk_test_set_stage("listen");
    tpath(upath, sizeof upath, "l.sock");
    tpath(stale, sizeof stale, "stale.sock");
    tpath(plain, sizeof plain, "plain-file");
    tpath(missing, sizeof missing, "missing/l.sock");
    dk_test_write_file(plain, "x");
    {
        struct sockaddr_un sa;
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        set_sun(&sa, stale);
        bind(s, (struct sockaddr *)&sa, sizeof sa);
        close(s); /* a socket file nobody accepts on */
    }
    fds_take(&before);

    fd = dk_listen_tcp("127.0.0.1:0", 0, 0);
    CHECK(fd >= 0);
    port = fd >= 0 ? dk_socket_port(fd) : -1;
    CHECK(port > 0);
    CHECK(fd >= 0 && dk_socket_name(fd, name, sizeof name) > 0);
    CHECK_ERR(fd >= 0 ? dk_socket_name(fd, name, 4) : -ERANGE, ERANGE);
    want = before;
    if (fd >= 0)
        fds_put(&want, fd, link_of(fd, name, sizeof name));
    CHECK_FDS(&want, "dk_listen_tcp/dk_socket_port/dk_socket_name (fd kept)");
    {
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        CHECK_ERR(dk_listen_tcp(addr, 0, 0), EADDRINUSE);
    }
    CHECK_ERR(dk_listen_tcp("127.0.0.1", 0, 0), EINVAL);
    CHECK_ERR(dk_listen_tcp("127.0.0.1:0", 0, 8), EINVAL);
    CHECK_ERR(dk_listen_tcp("192.0.2.1:0", 0, 0), EADDRNOTAVAIL);
    CHECK_ERR(dk_listen_tcp(long_path, 0, 0), ENAMETOOLONG);
    CHECK_ERR(dk_socket_port(closed_fd()), EBADF);
    CHECK_ERR(dk_socket_port(0), ENOTSOCK);
    CHECK_ERR(dk_socket_name(closed_fd(), name, sizeof name), EBADF);
    CHECK_FDS(&want, "dk_listen_tcp/dk_socket_* error paths");
    close(fd);
    CHECK_FDS(&before, "close(listener)");

    /* privileged port as nobody */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb;
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        fds_take(&cb);
        CHECK_ERR(dk_listen_tcp("127.0.0.1:1", 0, 0), EACCES);
        CHECK_FDS(&cb, "dk_listen_tcp (EACCES)");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* unix: file, live (EADDRINUSE: the probe socket is closed), stale (replaced),
     * abstract, non-socket file, missing directory */
    fd = dk_listen_unix(upath, 0600, 0, 0);
    CHECK(fd >= 0);
    want = before;
    if (fd >= 0)
        fds_put(&want, fd, link_of(fd, name, sizeof name));
    CHECK_ERR(dk_listen_unix(upath, 0, 0, 0), EADDRINUSE);
    CHECK_FDS(&want, "dk_listen_unix (live socket: EADDRINUSE)");
    fd2 = dk_listen_unix(stale, 0, 0, 0);
    CHECK(fd2 >= 0);
    if (fd2 >= 0)
        fds_put(&want, fd2, link_of(fd2, name, sizeof name));
    CHECK_FDS(&want, "dk_listen_unix (stale socket replaced)");
    CHECK_ERR(dk_listen_unix(plain, 0, 0, 0), EADDRINUSE);
    CHECK_ERR(dk_listen_unix(missing, 0, 0, 0), ENOENT);
    CHECK_ERR(dk_listen_unix("relative.sock", 0, 0, 0), EINVAL);
    CHECK_ERR(dk_listen_unix(upath, 0, 0, 9), EINVAL);
    CHECK_FDS(&want, "dk_listen_unix error paths");
    close(fd);
    close(fd2);
    snprintf(name, sizeof name, "@dk-fdleak-%d", (int)getpid());
    fd = dk_listen_unix(name, 0, 0, 0);
    CHECK(fd >= 0);
    CHECK_ERR(dk_listen_unix(name, 0, 0, 0), EADDRINUSE);
    close(fd);
    CHECK_FDS(&before, "dk_listen_unix (abstract) + close");

    /* socket activation, in a child that owns fds 3 and 4 */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb;
        char names[64], buf[32];
        int a = dk_listen_tcp("127.0.0.1:0", 0, DK_LISTEN_INHERIT);
        int b = dk_listen_tcp("127.0.0.1:0", 0, DK_LISTEN_INHERIT);
        dup2(a, 3);
        dup2(b, 4);
        if (a > 4)
            close(a);
        if (b > 4)
            close(b);
        close(5);
        proc_dir();
        snprintf(buf, sizeof buf, "%d", (int)getpid());
        setenv("LISTEN_PID", buf, 1);
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_FDNAMES", "a:b", 1);
        fds_take(&cb);
        CHECK_EQ(dk_listen_fds(0, names, sizeof names), 2);
        CHECK_STREQ(names, "a:b");
        CHECK_ERR(dk_listen_fds(0, names, 2), ENAMETOOLONG);
        CHECK_ERR(dk_listen_fds(2, names, sizeof names), EINVAL);
        setenv("LISTEN_FDS", "3", 1); /* fd 5 is not open */
        CHECK_ERR(dk_listen_fds(0, names, sizeof names), EBADF);
        setenv("LISTEN_FDS", "2", 1);
        CHECK_EQ(dk_listen_fds(DK_LISTEN_FDS_UNSET, NULL, 0), 2);
        CHECK_EQ(dk_listen_fds(0, names, sizeof names), 0);
        CHECK_FDS(&cb, "dk_listen_fds");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

/* ---- sd_notify, ready/fail in the plain role ------------------------------------------ */

static void test_notify(void)
{
    static struct fdset before;
    char sock[256], gone[256], buf[256];
    struct sockaddr_un sa;
    int s, g;
    pid_t pid;

    dk_test_set_stage("notify");
    tpath(sock, sizeof sock, "notify.sock");
    tpath(gone, sizeof gone, "gone.sock");
    s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    set_sun(&sa, sock);
    CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    g = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    set_sun(&sa, gone);
    bind(g, (struct sockaddr *)&sa, sizeof sa);
    close(g); /* a socket file with nobody behind it */
    fds_take(&before);

    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ(dk_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", sock, 1);
    CHECK_EQ(dk_notify("STATUS=fdleak"), 1);
    CHECK_EQ(dk_notify_reloading(), 1);
    CHECK_EQ(dk_notify_stopping(), 1);
    CHECK_EQ(dk_ready(), 0); /* plain role: READY=1 to NOTIFY_SOCKET only */
    CHECK(recv(s, buf, sizeof buf, 0) > 0);
    CHECK_FDS(&before, "dk_notify/dk_notify_reloading/dk_notify_stopping/dk_ready");
    {
        /* s6's readiness fd: taken by the library, written and closed by dk_ready */
        int p[2];
        char c = 0;
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK_EQ(dk_notify_fd(p[1]), 0);
        CHECK_EQ(dk_ready(), 0);
        CHECK(read(p[0], &c, 1) == 1 && c == '\n');
        CHECK(read(p[0], &c, 1) == 0); /* the library closed the write end */
        close(p[0]);
        CHECK_FDS(&before, "dk_notify_fd + dk_ready");
    }
    setenv("NOTIFY_SOCKET", gone, 1);
    CHECK_ERR(dk_notify("READY=1"), ECONNREFUSED);
    tpath(buf, sizeof buf, "no-such.sock");
    setenv("NOTIFY_SOCKET", buf, 1);
    CHECK_ERR(dk_notify("READY=1"), ENOENT);
    CHECK_ERR(dk_notify_stopping(), ENOENT);
    setenv("NOTIFY_SOCKET", "vsock:2:3", 1);
    CHECK_ERR(dk_notify("READY=1"), EAFNOSUPPORT);
    CHECK_ERR(dk_notify(NULL), EINVAL);
    CHECK_FDS(&before, "dk_notify error paths");
    unsetenv("NOTIFY_SOCKET");

    /* dk_fail in the plain role: the message on stderr (in a child, stderr -> /dev/null) */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb;
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        close(null);
        fds_take(&cb);
        CHECK_EQ(dk_fail(3, "fdleak: plain failure"), 0);
        CHECK_EQ(dk_fail(0, NULL), 0);
        CHECK_FDS(&cb, "dk_fail (plain role)");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    close(s);
}

/* ---- SCM_RIGHTS ------------------------------------------------------------------------ */

static void test_fd_passing(void)
{
    static struct fdset before, want;
    int sv[2], sq[2], p[2], fds[4], two[2], r, i;
    size_t n;
    uint8_t buf[16];

    dk_test_set_stage("fd passing");
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sq), 0);
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    two[0] = p[0];
    two[1] = p[1];
    fds_take(&before);

    /* sending changes nothing on the sender's side */
    CHECK_EQ(dk_fd_send(sv[0], (const uint8_t *)"x", 1, two, 2), 1);
    CHECK_FDS(&before, "dk_fd_send");
    /* receiving returns the fds: the test closes them */
    n = 4;
    r = dk_fd_recv(sv[1], buf, sizeof buf, fds, &n);
    CHECK_EQ(r, 1);
    CHECK_EQ(n, 2);
    want = before;
    for (i = 0; i < (int)n && i < 4; i++) {
        char l[LINKLEN];
        fds_put(&want, fds[i], link_of(fds[i], l, sizeof l));
    }
    CHECK_FDS(&want, "dk_fd_recv (2 fds returned)");
    for (i = 0; i < (int)n && i < 4; i++)
        close(fds[i]);
    CHECK_FDS(&before, "dk_fd_recv + close");

    /* too many fds for the room: -EMSGSIZE, every fd that arrived is closed */
    CHECK_EQ(dk_fd_send(sv[0], (const uint8_t *)"y", 1, two, 2), 1);
    n = 1;
    CHECK_ERR(dk_fd_recv(sv[1], buf, sizeof buf, fds, &n), EMSGSIZE);
    CHECK_FDS(&before, "dk_fd_recv (-EMSGSIZE, room for 1 of 2)");
    CHECK_EQ(dk_fd_send(sv[0], (const uint8_t *)"z", 1, two, 2), 1);
    n = 0;
    CHECK_ERR(dk_fd_recv(sv[1], buf, sizeof buf, NULL, &n), EMSGSIZE);
    CHECK_FDS(&before, "dk_fd_recv (-EMSGSIZE, no room)");
    /* payload truncated (a SEQPACKET record longer than the buffer), with fds */
    CHECK_EQ(dk_fd_send(sq[0], (const uint8_t *)"0123456789", 10, two, 2), 10);
    n = 4;
    CHECK_ERR(dk_fd_recv(sq[1], buf, 4, fds, &n), EMSGSIZE);
    CHECK_FDS(&before, "dk_fd_recv (-EMSGSIZE, payload truncated)");

    /* send errors */
    fds[0] = closed_fd();
    CHECK_ERR(dk_fd_send(sv[0], (const uint8_t *)"x", 1, fds, 1), EBADF);
    CHECK_ERR(dk_fd_send(p[1], (const uint8_t *)"x", 1, two, 2), ENOTSOCK);
    CHECK_ERR(dk_fd_send(sv[0], NULL, 1, two, 2), EINVAL);
    CHECK_ERR(dk_fd_send(sv[0], (const uint8_t *)"x", 1, two, 254), EINVAL);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    n = 4;
    CHECK_ERR(dk_fd_recv(sv[1], buf, sizeof buf, fds, &n), EAGAIN);
    CHECK_FDS(&before, "dk_fd_send/dk_fd_recv error paths");
    close(sq[0]);
    close(sq[1]);
    close(sv[0]);
    n = 4;
    CHECK_EQ(dk_fd_recv(sv[1], buf, sizeof buf, fds, &n), 0); /* peer closed */
    signal(SIGPIPE, SIG_IGN);
    CHECK_ERR(dk_fd_send(sv[1], (const uint8_t *)"x", 1, two, 2), EPIPE);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

/* ---- daemonize --------------------------------------------------------------------------- */

/* The daemon's side: it checks its own fds (failures go to its report file, kept open
 * through the sweep), reports ready, checks again, removes the PID file, records its pid. */
static void daemon_side(const char *result, int report, int listener, dk_pidfile *pf,
                        const struct fdset *launcher)
{
    static struct fdset got, want;
    char devnull[] = "/dev/null";
    int i, nnew = 0, pfd = dk_pidfile_fd(pf);

    dk_test_report_fd(report);
    dk_test_append_line(result, "pid %d", (int)getpid());
    /* 0..2 on /dev/null, the kept fds, the PID file, and the readiness pipe (library's) */
    want.n = 0;
    fds_put(&want, 0, devnull);
    fds_put(&want, 1, devnull);
    fds_put(&want, 2, devnull);
    fds_put(&want, report, fds_link(launcher, report));
    fds_put(&want, listener, fds_link(launcher, listener));
    fds_put(&want, pfd, fds_link(launcher, pfd));
    fds_take(&got);
    for (i = 0; i < got.n; i++)
        if (fds_find(&want, got.fd[i]) < 0 && strncmp(got.link[i], "pipe:", 5) == 0) {
            fds_put(&want, got.fd[i], got.link[i]); /* the readiness pipe */
            nnew++;
        }
    CHECK_EQ(nnew, 1);
    CHECK_FDS(&want, "dk_daemonize (in the daemon)");
    CHECK_EQ(dk_pidfile_write(pf), 0);
    CHECK_EQ(dk_ready(), 0);
    for (i = 0; i < got.n; i++)
        if (fds_find(&want, got.fd[i]) >= 0 && strncmp(got.link[i], "pipe:", 5) == 0)
            fds_del(&want, got.fd[i]);
    CHECK_FDS(&want, "dk_ready (in the daemon: readiness pipe closed)");
    CHECK_EQ(dk_pidfile_remove(pf), 0);
    fds_del(&want, pfd);
    CHECK_FDS(&want, "dk_pidfile_remove (in the daemon)");
    dk_test_append_line(result, "done");
    _exit(0);
}

static void test_daemonize(void)
{
    char result[256], path[256], report[256];
    pid_t pid;
    int st = 0;

    dk_test_set_stage("daemonize");
    tpath(result, sizeof result, "daemon.result");
    tpath(path, sizeof path, "daemon.pid");
    tpath(report, sizeof report, "daemon.report");

    /* argument errors: returned in the caller before any fork, nothing opened or closed */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb;
        int bad[1] = {closed_fd()};
        pid_t me = getpid();
        int r;
        fds_take(&cb);
        CHECK_ERR(dk_daemonize(0x100, NULL, 0, NULL, -1, 0), EINVAL);
        CHECK_ERR(dk_daemonize(0, NULL, 1, NULL, -1, 0), EINVAL);
        CHECK_ERR(dk_daemonize(0, bad, 1, NULL, -1, 0), EBADF);
        CHECK_ERR(dk_daemonize(0, NULL, 0, "", -1, 0), ENOENT);
        CHECK_FDS(&cb, "dk_daemonize argument errors");
        /* a missing directory: an error in the caller (checked before the fork), or in the
         * daemon, which reports it with dk_fail so that this launcher exits 77 */
        r = dk_daemonize(0, NULL, 0, "/nonexistent/dk-dir", -1, 0);
        if (getpid() != me) {
            dk_fail(77, "fdleak: the daemon could not chdir");
            _exit(77);
        }
        CHECK(r < 0);
        CHECK_FDS(&cb, "dk_daemonize (missing directory)");
        dk_test_child_exit(0);
    }
    if (dk_test_wait(pid, 10000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77),
                  "argument-error launcher status 0x%x", st);

    /* fork failure (nobody with RLIMIT_NPROC 0): -EAGAIN, no fd, not a subreaper */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb;
        struct rlimit rl = {0, 0};
        int sub = -1;
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        setrlimit(RLIMIT_NPROC, &rl);
        fds_take(&cb);
        CHECK_ERR(dk_daemonize(0, NULL, 0, NULL, -1, 0), EAGAIN);
        CHECK_FDS(&cb, "dk_daemonize (fork fails)");
        prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0);
        CHECK_EQ(sub, 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* the real thing: launcher C -> daemon; C exits 0 once the daemon is ready */
    unlink(result);
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset lb;
        dk_pidfile *pf = NULL;
        int listener, rep, stray, sigs[2] = {SIGUSR1, SIGHUP}, keep[2], r;
        pid_t me = getpid();
        rep = open(report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        listener = dk_listen_tcp("127.0.0.1:0", 0, 0);
        if (dk_pidfile_open(path, 0, 0, &pf, NULL) != 0)
            _exit(100);
        dk_signal_open(sigs, 2); /* the library's: kept by the sweep, closed by the reset */
        stray = open("/dev/null", O_RDONLY); /* inherited, not kept: closed */
        dup2(stray, 42);
        fds_take(&lb);
        keep[0] = listener;
        keep[1] = rep;
        r = dk_daemonize(0, keep, 2, NULL, 022, 5000);
        if (getpid() == me)
            _exit(101); /* the launcher returned */
        if (r != DK_ROLE_DAEMON) {
            dk_fail(102, "fdleak: dk_daemonize failed in the daemon");
            _exit(102);
        }
        daemon_side(result, rep, listener, pf, &lb);
    }
    if (dk_test_wait(pid, 15000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "launcher status 0x%x", st);
    if (wait_file(result, 5000) == 0) {
        char buf[256];
        int dpid = 0;
        long long end = dk_test_now_ms() + 5000;
        while (dk_test_read_file(result, buf, sizeof buf) >= 0 && !strstr(buf, "done") &&
               dk_test_now_ms() < end)
            dk_test_sleep_ms(5);
        CHECK_CONTAINS(buf, "done");
        if (sscanf(buf, "pid %d", &dpid) == 1 && dpid > 0) {
            dk_test_track(dpid); /* our child now: this process is a subreaper */
            if (dk_test_wait(dpid, 5000, &st) == 0)
                CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon status 0x%x", st);
        }
    } else {
        CHECK_MSG(0, "the daemon wrote no result");
    }
    {
        char rep[4096];
        dk_test_read_file(report, rep, sizeof rep);
        CHECK_MSG(rep[0] == '\0', "the daemon reported: %s", rep);
    }

    /* foreground: every fd >= 3 closed but the kept one and the library's own */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb, want;
        dk_pidfile *pf = NULL;
        int listener, keep[1], r, i, sigs[1] = {SIGUSR1}, sigfd;
        char fpath[256];
        tpath(fpath, sizeof fpath, "fg.pid");
        listener = dk_listen_tcp("127.0.0.1:0", 0, 0);
        CHECK_EQ(dk_pidfile_open(fpath, 0, 0, &pf, NULL), 0);
        dup2(0, 43);
        fds_take(&cb);
        keep[0] = listener;
        r = dk_daemonize(DK_DAEMON_FOREGROUND | DK_DAEMON_NO_CHDIR, keep, 1, NULL, -1, 0);
        CHECK_EQ(r, DK_ROLE_FOREGROUND);
        want.n = 0;
        for (i = 0; i < cb.n; i++)
            if (cb.fd[i] <= 2 || cb.fd[i] == listener || (pf && cb.fd[i] == dk_pidfile_fd(pf)))
                fds_put(&want, cb.fd[i], cb.link[i]);
        CHECK_FDS(&want, "dk_daemonize(FOREGROUND)");
        /* NO_SIGNAL_RESET keeps the signal pipe (the library's own) open and working */
        sigfd = dk_signal_open(sigs, 1);
        fds_take(&cb);
        r = dk_daemonize(DK_DAEMON_FOREGROUND | DK_DAEMON_NO_CHDIR | DK_DAEMON_NO_SIGNAL_RESET,
                         keep, 1, NULL, -1, 0);
        CHECK_EQ(r, DK_ROLE_FOREGROUND);
        CHECK_FDS(&cb, "dk_daemonize(FOREGROUND|NO_SIGNAL_RESET) with the signal pipe open");
        raise(SIGUSR1);
        CHECK_EQ(dk_signal_next(), SIGUSR1);
        CHECK(sigfd >= 0 && fcntl(sigfd, F_GETFD) >= 0);
        CHECK_EQ(dk_ready(), 0);
        CHECK_FDS(&cb, "dk_ready (foreground)");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

/* ---- re-exec and upgrade ----------------------------------------------------------------- */

static void test_reexec(void)
{
    char result[256], path[256];
    pid_t pid;
    int st = 0;

    dk_test_set_stage("reexec");
    tpath(result, sizeof result, "reexec.result");
    tpath(path, sizeof path, "reexec.pid");

    /* failures return with every fd as it was (in a child: a missing check would exec) */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb;
        const char *argv_false[] = {"/bin/false", NULL};
        const char *argv_missing[] = {"/nonexistent/dk-prog", NULL};
        const char *argv_dir[] = {"/", NULL};
        int fds[2], many[63], i;
        dk_pidfile *pf = NULL;
        fds[0] = dk_listen_tcp("127.0.0.1:0", 0, 0);
        fds[1] = closed_fd();
        for (i = 0; i < 63; i++)
            many[i] = fds[0];
        CHECK_EQ(dk_pidfile_open(path, 0, 0, &pf, NULL), 0);
        fds_take(&cb);
        CHECK_ERR(dk_reexec(NULL, NULL, 0, NULL, NULL), EINVAL);
        CHECK_ERR(dk_reexec(argv_false, many, 63, NULL, NULL), EINVAL);
        CHECK_ERR(dk_reexec(argv_false, fds, 2, NULL, NULL), EBADF);
        CHECK_ERR(dk_reexec(argv_missing, fds, 1, "web", pf), ENOENT);
        CHECK_ERR(dk_reexec(argv_dir, fds, 1, "web", pf), EACCES);
        CHECK_FDS(&cb, "dk_reexec error paths");
        CHECK_EQ(dk_pidfile_remove(pf), 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* success: the new image holds 0..2, the listener at 3, the PID file at 4, and what
     * exec itself keeps (fds without close-on-exec) -- none of the library's temporaries */
    unlink(result);
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb, want;
        const char *argv[] = {self_exe, "exec-child", result, NULL};
        const char *targets[2];
        char pre[300], l0[LINKLEN], l1[LINKLEN];
        dk_pidfile *pf = NULL;
        int fds[1];
        fds[0] = dk_listen_tcp("127.0.0.1:0", 0, 0);
        CHECK_EQ(dk_pidfile_open(path, 0, 0, &pf, NULL), 0);
        dup2(0, 44); /* close-on-exec clear: exec keeps it */
        fds_take(&cb);
        targets[0] = link_of(fds[0], l0, sizeof l0);
        targets[1] = link_of(dk_pidfile_fd(pf), l1, sizeof l1);
        fds_after_exec(&cb, targets, 2, &want);
        snprintf(pre, sizeof pre, "%s.want", result);
        {
            /* the expectation, for the test process to compare with */
            int fd = open(pre, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), i;
            char line[LINKLEN + 32];
            for (i = 0; i < want.n; i++) {
                int n = snprintf(line, sizeof line, "%d 0 %s\n", want.fd[i], want.link[i]);
                dk_test_write_all(fd, line, (size_t)n);
            }
            close(fd);
        }
        dk_reexec(argv, fds, 1, "web", pf);
        _exit(120); /* not reached */
    }
    if (dk_test_wait(pid, 10000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "re-exec'd child status 0x%x", st);
    {
        static struct fdset got, want;
        char pre[300], why[2048];
        snprintf(pre, sizeof pre, "%s.want", result);
        CHECK_EQ(fds_load(result, &got), 0);
        CHECK_EQ(fds_load(pre, &want), 0);
        CHECK_MSG(fds_same(&want, &got, why, sizeof why), "fds of the re-exec'd image:%s",
                  why);
    }
}

static void test_upgrade(void)
{
    static struct fdset before, want, got;
    char result[256], path[256], msg[128], why[2048], l0[LINKLEN], l1[LINKLEN], pipel[LINKLEN];
    const char *targets[3];
    const char *argv_ready[] = {self_exe, "upgrade-ready", result, NULL};
    const char *argv_fail[] = {self_exe, "upgrade-fail", NULL};
    const char *argv_hang[] = {self_exe, "upgrade-hang", NULL};
    const char *argv_missing[] = {"/nonexistent/dk-prog", NULL};
    dk_pidfile *pf = NULL;
    int fds[1], r, st = 0, i;
    pid_t pid;

    dk_test_set_stage("upgrade");
    tpath(result, sizeof result, "upgrade.result");
    tpath(path, sizeof path, "upgrade.pid");
    fds[0] = dk_listen_tcp("127.0.0.1:0", 0, 0);
    CHECK(fds[0] >= 0);
    r = dk_pidfile_open(path, 0, 0, &pf, NULL);
    CHECK_EQ(r, 0);
    if (r != 0 || fds[0] < 0)
        return;
    CHECK_EQ(dk_pidfile_write(pf), 0);
    fds_take(&before);

    /* success: the caller's fds are as before (its readiness pipe closed), less the PID
     * file's: the handle let go of it (documented), the new generation alone holds it */
    targets[0] = link_of(fds[0], l0, sizeof l0);
    targets[1] = link_of(dk_pidfile_fd(pf), l1, sizeof l1);
    want = before;
    fds_del(&want, dk_pidfile_fd(pf));
    r = dk_upgrade(argv_ready, fds, 1, "web", pf, 10000, msg, sizeof msg);
    CHECK_MSG(r > 0, "dk_upgrade = %d (%s)", r, msg);
    if (r > 0) {
        CHECK_ERR(dk_pidfile_fd(pf), EBADF);
        CHECK_FDS(&want, "dk_upgrade (success, caller side)");
        CHECK_EQ(dk_pidfile_close(pf), 0);
        CHECK_FDS(&want, "dk_pidfile_close after a completed upgrade");
    } else {
        CHECK_FDS(&before, "dk_upgrade (failed, caller side)");
        dk_pidfile_close(pf);
    }
    if (r > 0) {
        char role[300], buf[32];
        kill(r, SIGKILL);
        dk_test_track(r);
        dk_test_wait(r, 5000, &st);
        snprintf(role, sizeof role, "%s.role", result);
        dk_test_read_file(role, buf, sizeof buf);
        CHECK_EQ(atoi(buf), DK_ROLE_UPGRADE);
        /* the new generation's fds: listener 3, PID file 4, readiness pipe 5, what exec
         * keeps */
        CHECK_EQ(fds_load(result, &got), 0);
        snprintf(pipel, sizeof pipel, "%s", fds_link(&got, 5) ? fds_link(&got, 5) : "?");
        CHECK(strncmp(pipel, "pipe:", 5) == 0);
        targets[2] = pipel;
        fds_after_exec(&before, targets, 3, &want);
        CHECK_MSG(fds_same(&want, &got, why, sizeof why), "fds of the new generation:%s", why);
    }
    /* the new generation is gone: this process takes the PID file again */
    pf = NULL;
    r = dk_pidfile_open(path, 0, 0, &pf, NULL);
    CHECK_EQ(r, 0);
    if (r != 0)
        return;
    CHECK_EQ(dk_pidfile_write(pf), 0);
    CHECK_FDS(&before, "dk_pidfile_open again after the upgrade");
    /* it reports a failure: -ECANCELED with its message, the PID file ours again */
    r = dk_upgrade(argv_fail, fds, 1, NULL, pf, 10000, msg, sizeof msg);
    CHECK_ERR(r, ECANCELED);
    CHECK_CONTAINS(msg, "upgrade refused");
    CHECK_FDS(&before, "dk_upgrade (failure reported)");
    /* timeout: -ETIMEDOUT, the new generation killed and reaped */
    r = dk_upgrade(argv_hang, fds, 1, NULL, pf, 300, msg, sizeof msg);
    CHECK_ERR(r, ETIMEDOUT);
    CHECK_FDS(&before, "dk_upgrade (timeout)");
    CHECK(waitpid(-1, NULL, WNOHANG) <= 0); /* nothing left to reap */
    r = dk_upgrade(argv_missing, fds, 1, NULL, pf, 1000, msg, sizeof msg);
    CHECK(r == -ENOENT || r == -ECANCELED);
    CHECK_ERR(dk_upgrade(NULL, fds, 1, NULL, pf, 1000, msg, sizeof msg), EINVAL);
    CHECK_FDS(&before, "dk_upgrade error paths");
    {
        char buf[64], me[32];
        snprintf(me, sizeof me, "%d\n", (int)getpid());
        dk_test_read_file(path, buf, sizeof buf);
        CHECK_STREQ(buf, me);
    }
    /* fork failure (nobody, RLIMIT_NPROC 0): -EAGAIN, no fd. The program is one nobody may
     * run wherever the checkout is (this test's own binary may sit in a 0700 directory):
     * the fork fails before it would start anyway. */
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset cb;
        struct rlimit rl = {0, 0};
        const char *argv_true[] = {"/bin/true", NULL};
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        setrlimit(RLIMIT_NPROC, &rl);
        fds_take(&cb);
        CHECK_ERR(dk_upgrade(argv_true, fds, 1, NULL, NULL, 1000, msg, sizeof msg), EAGAIN);
        CHECK_FDS(&cb, "dk_upgrade (fork fails)");
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    for (i = 0; i < 1; i++)
        close(fds[i]);
    CHECK_EQ(dk_pidfile_remove(pf), 0);
}

/* ---- the supervisor ----------------------------------------------------------------------- */

static struct fdset sv_master_before; /* the master's fds before dk_supervisor_run */
static int sv_pf_fd = -1;

static void sv_event(void *ctx, int kind, int32_t pid, int32_t value)
{
    int what = ctx ? *(int *)ctx : 0;
    (void)pid;
    (void)value;
    if (kind == DK_EVENT_READY)
        kill(getpid(), what == 1 ? SIGUSR2 : SIGTERM);
    if (kind == DK_EVENT_UPGRADE_FAILED)
        kill(getpid(), SIGTERM);
}

/* A worker: its fds are the master's minus the PID file plus its readiness pipe; after
 * dk_ready only the master's minus the PID file. Then it waits for TERM. */
static int sv_worker(void *ctx, uint32_t index)
{
    static struct fdset want, got;
    sigset_t set;
    int sig = 0, i, extra = 0;
    (void)ctx;
    (void)index;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    want = sv_master_before;
    fds_del(&want, sv_pf_fd);
    fds_take(&got);
    for (i = 0; i < got.n; i++)
        if (fds_find(&want, got.fd[i]) < 0 && strncmp(got.link[i], "pipe:", 5) == 0) {
            fds_put(&want, got.fd[i], got.link[i]);
            extra = got.fd[i];
        }
    CHECK_FDS(&want, "worker start (master's fds - PID file + readiness pipe)");
    CHECK_EQ(dk_ready(), 0);
    fds_del(&want, extra);
    CHECK_FDS(&want, "dk_ready in a worker");
    sigwait(&set, &sig);
    return 0;
}

/* Runs one supervisor in a forked master. mode 0: worker entry; 1: worker entry + USR2
 * upgrade to `upgrade` (a helper mode); 2: program mode (exec'd workers). */
static void sv_run(int mode, const char *upgrade, const char *result)
{
    pid_t pid;
    int st = 0;
    pid = dk_test_fork();
    if (pid == 0) {
        static struct fdset want;
        static int ctx;
        const char *argv_up[] = {self_exe, upgrade, result, NULL};
        const char *argv_exec[] = {self_exe, "worker-exec", result, NULL};
        dk_supervisor *sv = NULL;
        dk_pidfile *pf = NULL;
        char path[256];
        int lfd, r;
        alarm(30);
        unsetenv("NOTIFY_SOCKET");
        tpath(path, sizeof path, "sv.pid");
        lfd = dk_listen_tcp("127.0.0.1:0", 0, 0);
        CHECK_EQ(dk_pidfile_open(path, 0, 0, &pf, NULL), 0);
        CHECK_EQ(dk_pidfile_write(pf), 0);
        sv_pf_fd = dk_pidfile_fd(pf);
        ctx = mode;
        CHECK_EQ(dk_supervisor_new(&sv), 0);
        dk_supervisor_set_workers(sv, 2);
        dk_supervisor_set_graceful_timeout(sv, 3000);
        if (mode == 2)
            dk_supervisor_set_exec(sv, argv_exec);
        else
            dk_supervisor_set_worker(sv, sv_worker, NULL);
        dk_supervisor_set_event(sv, sv_event, &ctx);
        dk_supervisor_add_listener(sv, lfd);
        dk_supervisor_set_listen_names(sv, "web");
        dk_supervisor_set_pidfile(sv, pf);
        if (mode == 1)
            dk_supervisor_set_upgrade(sv, argv_up, 5000);
        fds_take(&sv_master_before);
        r = dk_supervisor_run(sv);
        CHECK_EQ(r, mode == 1 && strcmp(upgrade, "sv-upgrade") == 0 ? DK_SUPERVISOR_UPGRADED
                                                                       : DK_SUPERVISOR_STOPPED);
        /* as before, the listener now on /dev/null (documented), the PID file's fd open
         * (unlinked after a stop: "(deleted)") */
        want = sv_master_before;
        fds_put(&want, lfd, "/dev/null");
        if (r == DK_SUPERVISOR_UPGRADED)
            fds_del(&want, sv_pf_fd); /* let go once the new generation was ready */
        if (r == DK_SUPERVISOR_STOPPED) {
            char del[300];
            snprintf(del, sizeof del, "%s (deleted)", fds_link(&sv_master_before, sv_pf_fd));
            fds_put(&want, sv_pf_fd, del);
        }
        CHECK_FDS(&want, "dk_supervisor_run (master after it returned)");
        CHECK_EQ(dk_supervisor_free(sv), 0);
        CHECK_EQ(dk_pidfile_close(pf), 0);
        close(lfd);
        fds_del(&want, lfd);
        fds_del(&want, sv_pf_fd);
        CHECK_FDS(&want, "dk_supervisor_free + dk_pidfile_close + close(listener)");
        if (mode == 2) {
            /* an exec'd worker: 0..2, the listener at 3, its readiness pipe at 4, and what
             * exec keeps */
            static struct fdset got, wx;
            char why[2048], l0[LINKLEN], pl[LINKLEN];
            const char *targets[2];
            CHECK_EQ(fds_load(result, &got), 0);
            targets[0] = "";
            snprintf(l0, sizeof l0, "%s", fds_link(&got, 3) ? fds_link(&got, 3) : "?");
            snprintf(pl, sizeof pl, "%s", fds_link(&got, 4) ? fds_link(&got, 4) : "?");
            CHECK(strncmp(l0, "socket:", 7) == 0);
            CHECK(strncmp(pl, "pipe:", 5) == 0);
            targets[0] = l0;
            targets[1] = pl;
            fds_after_exec(&sv_master_before, targets, 2, &wx);
            CHECK_MSG(fds_same(&wx, &got, why, sizeof why), "fds of an exec'd worker:%s", why);
        }
        if (mode == 1 && strcmp(upgrade, "sv-upgrade") == 0) {
            /* the new master generation: listener 3, PID file 4, readiness pipe 5, what
             * exec keeps */
            static struct fdset got, wx;
            char why[2048], pl[LINKLEN], role[300], buf[32];
            const char *targets[3];
            CHECK_EQ(fds_load(result, &got), 0);
            snprintf(pl, sizeof pl, "%s", fds_link(&got, 5) ? fds_link(&got, 5) : "?");
            CHECK(strncmp(pl, "pipe:", 5) == 0);
            targets[0] = fds_link(&got, 3) ? fds_link(&got, 3) : "?";
            targets[1] = fds_link(&sv_master_before, sv_pf_fd);
            targets[2] = pl;
            CHECK(strncmp(targets[0], "socket:", 7) == 0);
            fds_after_exec(&sv_master_before, targets, 3, &wx);
            CHECK_MSG(fds_same(&wx, &got, why, sizeof why), "fds of the new generation:%s",
                      why);
            snprintf(role, sizeof role, "%s.role", result);
            dk_test_read_file(role, buf, sizeof buf);
            CHECK_EQ(atoi(buf), DK_ROLE_UPGRADE);
        }
        dk_test_child_exit(0);
    }
    if (dk_test_wait(pid, 30000, &st) == 0)
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "master (mode %d) status 0x%x", mode,
                  st);
}

static void test_supervisor(void)
{
    char result[256];
    dk_test_set_stage("supervisor");
    tpath(result, sizeof result, "sv.result");
    sv_run(0, NULL, result);
    unlink(result);
    sv_run(2, NULL, result);
    dk_test_set_stage("supervisor upgrade");
    unlink(result);
    sv_run(1, "sv-upgrade", result);
    {
        /* the new generation (our child now: subreaper) exits by itself after 300 ms */
        char role[300], buf[64];
        int r = 0, pid = 0, st = 0;
        snprintf(role, sizeof role, "%s.role", result);
        dk_test_read_file(role, buf, sizeof buf);
        if (sscanf(buf, "%d %d", &r, &pid) == 2 && pid > 0) {
            dk_test_track(pid);
            if (dk_test_wait(pid, 5000, &st) == 0)
                CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "new generation 0x%x", st);
        }
        unlink(role);
    }
    unlink(result);
    sv_run(1, "upgrade-fail", result);
}

/* ---- a full fd table (EMFILE) ----------------------------------------------------------- */

static char em_pid[256], em_pid2[256], em_held[256], em_sock[256], em_stale[256], em_log[256];
static int em_listener = -1, em_sv[2] = {-1, -1}, em_watch = -1;
static dk_pidfile *em_pf;
static int em_saved1 = -1, em_saved2 = -1;

/* Each op checks its own result (success, or the errno a full table gives) and closes what
 * it is documented to return. */
static void op_pidfile_open(int k)
{
    dk_pidfile *pf = NULL;
    int r = dk_pidfile_open(em_pid2, 0, 0, &pf, NULL);
    CHECK_MSG(r == 0 || r == -EMFILE, "dk_pidfile_open with %d free fds = %d", k, r);
    if (r == 0)
        dk_pidfile_close(pf);
}
static void op_pidfile_check(int k)
{
    int32_t pid = 0;
    int r = dk_pidfile_check(em_held, &pid);
    CHECK_MSG(r == DK_PIDFILE_RUNNING || r == -EMFILE, "dk_pidfile_check with %d free = %d",
              k, r);
}
static void op_pidfile_kill(int k)
{
    int r = dk_pidfile_kill(em_held, 0, NULL);
    CHECK_MSG(r == 0 || r == -EMFILE, "dk_pidfile_kill with %d free = %d", k, r);
}
static void op_signal_open(int k)
{
    int sigs[1] = {SIGUSR2}, r = dk_signal_open(sigs, 1);
    CHECK_MSG(r >= 0 || r == -EMFILE, "dk_signal_open with %d free = %d", k, r);
    dk_signal_close();
}
static void op_listen_tcp(int k)
{
    int r = dk_listen_tcp("127.0.0.1:0", 0, 0);
    CHECK_MSG(r >= 0 || r == -EMFILE, "dk_listen_tcp with %d free = %d", k, r);
    if (r >= 0)
        close(r);
}
static void op_listen_unix(int k)
{
    int r = dk_listen_unix(em_stale, 0, 0, 0);
    /* With exactly one free fd the stale-socket probe cannot be created: that is -EMFILE,
     * not -EADDRINUSE (the path is free to take; it was a finding of this test). */
    CHECK_MSG(r >= 0 || r == -EMFILE, "dk_listen_unix with %d free = %d", k, r);
    if (r >= 0) {
        close(r);
        /* make it stale again for the next round */
    }
}
static void op_notify(int k)
{
    int r = dk_notify("STATUS=emfile");
    CHECK_MSG(r == 1 || r == -EMFILE, "dk_notify with %d free = %d", k, r);
}
static void op_log_open(int k)
{
    int r = dk_log_open(em_log, 0);
    CHECK_MSG(r == 0 || r == -EMFILE, "dk_log_open with %d free = %d", k, r);
    dup2(em_saved1, 1);
    dup2(em_saved2, 2);
}
static void op_log_reopen(int k)
{
    int r = dk_log_reopen();
    CHECK_MSG(r == 0 || r == -EMFILE, "dk_log_reopen with %d free = %d", k, r);
    dup2(em_saved1, 1);
    dup2(em_saved2, 2);
}
static void op_fd_recv(int k)
{
    int fds[4], i;
    size_t n = 4;
    uint8_t b[4];
    int r = dk_fd_recv(em_sv[1], b, sizeof b, fds, &n);
    CHECK_MSG(r == 1 || r == -EMSGSIZE, "dk_fd_recv with %d free = %d", k, r);
    if (r == 1)
        for (i = 0; i < (int)n; i++)
            close(fds[i]);
}
static void op_daemonize(int k)
{
    pid_t me = getpid();
    int r = dk_daemonize(0, NULL, 0, NULL, -1, 1000);
    if (getpid() != me)
        _exit(0); /* a daemon: not expected with <= 1 free fd */
    CHECK_MSG(r == -EMFILE, "dk_daemonize with %d free = %d", k, r);
}
static void op_reexec(int k)
{
    const char *argv[] = {"/bin/false", NULL};
    int fds[1];
    int r;
    fds[0] = em_listener;
    r = dk_reexec(argv, fds, 1, "web", em_pf);
    CHECK_MSG(r == -EMFILE, "dk_reexec with %d free = %d", k, r);
}
static void op_upgrade(int k)
{
    const char *argv[] = {"/bin/false", NULL};
    char msg[256], buf[64];
    int fds[1], r;
    ssize_t n;
    fds[0] = em_listener;
    r = dk_upgrade(argv, fds, 1, "web", em_pf, 5000, msg, sizeof msg);
    CHECK_MSG(r == -EMFILE || r == -ECANCELED, "dk_upgrade with %d free = %d", k, r);
    /* fd 5 (where a readiness record would go: 3 + 1 listener + PID file) is an unrelated
     * pipe here: nothing may have been written into it */
    n = read(em_watch, buf, sizeof buf);
    CHECK_MSG(n <= 0, "dk_upgrade with %d free fds wrote %zd bytes into an unrelated fd (5)",
              k, n);
}

/* Lowers the soft fd limit to 64, fills the table, then frees the k highest fds. */
static void fill_table(int k)
{
    struct rlimit rl;
    int filled[128], n = 0, i;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &rl);
    for (;;) {
        int fd = dup(0);
        if (fd < 0)
            break;
        if (n < 128)
            filled[n++] = fd;
    }
    for (i = 0; i < k && i < n; i++)
        close(filled[n - 1 - i]);
}

static void emfile_sweep(const char *name, void (*op)(int), int kmax)
{
    int k, st = 0;
    dk_test_set_stage(name);
    for (k = 0; k <= kmax; k++) {
        pid_t pid = dk_test_fork();
        if (pid == 0) {
            static struct fdset before;
            char what[128];
            int w[2];
            /* setup with a free table: listener 3, something at 4, pipe write end at 5 */
            for (w[0] = 3; w[0] < 8; w[0]++)
                if (w[0] != procfd) {
                    int moved = fcntl(w[0], F_DUPFD, 900);
                    if (moved >= 0) {
                        close(w[0]);
                        close(moved); /* nothing of the test's own lives there */
                    }
                }
            em_listener = dk_listen_tcp("127.0.0.1:0", 0, DK_LISTEN_INHERIT);
            if (pipe2(w, O_CLOEXEC | O_NONBLOCK) == 0) {
                em_watch = fcntl(w[0], F_DUPFD_CLOEXEC, 100);
                dup3(w[1], 5, O_CLOEXEC);
                if (w[0] != 5)
                    close(w[0]);
                if (w[1] != 5)
                    close(w[1]);
            }
            dk_pidfile_open(em_pid, 0, 0, &em_pf, NULL);
            if (em_pf)
                dk_pidfile_write(em_pf);
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, em_sv);
            {
                int p[2], two[2];
                if (pipe2(p, O_CLOEXEC) == 0) {
                    two[0] = p[0];
                    two[1] = p[1];
                    dk_fd_send(em_sv[0], (const uint8_t *)"m", 1, two, 2);
                    close(p[0]);
                    close(p[1]);
                }
            }
            em_saved1 = dup(1);
            em_saved2 = dup(2);
            if (op == op_log_reopen) {
                dk_log_open(em_log, 0);
                dup2(em_saved1, 1);
                dup2(em_saved2, 2);
            }
            proc_dir();
            fill_table(k);
            fds_take(&before);
            op(k);
            snprintf(what, sizeof what, "%s with %d free fds", name, k);
            CHECK_FDS(&before, what);
            dk_test_child_exit(0);
        }
        if (dk_test_wait(pid, 10000, &st) == 0)
            CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s with %d free fds: status 0x%x",
                      name, k, st);
    }
}

static void test_emfile(void)
{
    dk_pidfile *held = NULL;
    int st;
    dk_test_set_stage("emfile");
    tpath(em_pid, sizeof em_pid, "em.pid");
    tpath(em_pid2, sizeof em_pid2, "em2.pid");
    tpath(em_held, sizeof em_held, "em-held.pid");
    tpath(em_sock, sizeof em_sock, "em-notify.sock");
    tpath(em_stale, sizeof em_stale, "em-stale.sock");
    tpath(em_log, sizeof em_log, "em.log");
    CHECK_EQ(dk_pidfile_open(em_held, 0, 0, &held, NULL), 0);
    if (held)
        dk_pidfile_write(held);
    {
        struct sockaddr_un sa;
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        set_sun(&sa, em_sock);
        bind(s, (struct sockaddr *)&sa, sizeof sa);
        setenv("NOTIFY_SOCKET", em_sock, 1);
        emfile_sweep("dk_notify", op_notify, 2);
        unsetenv("NOTIFY_SOCKET");
        close(s);
    }
    emfile_sweep("dk_pidfile_open", op_pidfile_open, 2);
    emfile_sweep("dk_pidfile_check", op_pidfile_check, 2);
    emfile_sweep("dk_pidfile_kill", op_pidfile_kill, 3);
    emfile_sweep("dk_signal_open", op_signal_open, 3);
    emfile_sweep("dk_listen_tcp", op_listen_tcp, 1);
    {
        struct sockaddr_un sa;
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        set_sun(&sa, em_stale);
        bind(s, (struct sockaddr *)&sa, sizeof sa);
        close(s);
        /* every round runs in its own child on the same stale file: the first success
         * replaces it with a live one that the child closes, so it stays stale */
        emfile_sweep("dk_listen_unix", op_listen_unix, 2);
    }
    emfile_sweep("dk_log_open", op_log_open, 1);
    emfile_sweep("dk_log_reopen", op_log_reopen, 1);
    emfile_sweep("dk_fd_recv", op_fd_recv, 3);
    emfile_sweep("dk_daemonize", op_daemonize, 1);
    emfile_sweep("dk_reexec", op_reexec, 3); /* 4 free fds are enough to exec */
    emfile_sweep("dk_upgrade", op_upgrade, 6);
    dk_pidfile_remove(held);
    (void)st;
}

/* ---- end: nothing orphaned --------------------------------------------------------------- */

static void check_no_children(void)
{
    long long end = dk_test_now_ms() + 3000;
    int left = 0;
    for (;;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0 && errno == ECHILD)
            break;
        if (r == 0) {
            if (dk_test_now_ms() > end) {
                left = 1;
                break;
            }
            dk_test_sleep_ms(10);
        }
    }
    CHECK_MSG(!left, "processes left behind (children of the test still running)");
}

int main(int argc, char **argv)
{
    ssize_t n;
    if (argc > 1)
        return helper_main(argc, argv);
    dk_test_init("fdleak", 240);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    tmp = dk_test_tmpdir();
    n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    self_exe[n > 0 ? n : 0] = '\0';
    memset(long_path, 'a', sizeof long_path - 1);
    memcpy(long_path, "/tmp/", 5);
    long_path[sizeof long_path - 1] = '\0';
    unsetenv("NOTIFY_SOCKET");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    proc_dir();

    test_plain();
    test_pidfile();
    test_privileges();
    test_close_from();
    test_log();
    test_signals();
    test_listen();
    test_notify();
    test_fd_passing();
    test_daemonize();
    test_reexec();
    test_upgrade();
    test_supervisor();
    test_emfile();
    check_no_children();
    return dk_test_done();
}
