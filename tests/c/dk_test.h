/* dk_test.h — the tiny test harness of daemonkit's C tests.
 *
 *   CHECK(expr)            expr is true
 *   CHECK_EQ(a, b)         integers equal (both printed on failure)
 *   CHECK_NE(a, b)         integers differ
 *   CHECK_STREQ(a, b)      C strings equal (NULL-safe)
 *   CHECK_CONTAINS(h, n)   string h contains n
 *
 * A failed check prints `file:line: CHECK(...) failed ...` on the report fd (stderr unless
 * changed with dk_test_report_fd). Passes and failures are counted in a shared anonymous
 * mapping, so checks made in forked children count too. dk_test_done() (main process only)
 * kills and reaps every child still tracked, removes the temp dirs, prints the summary
 * line `N passed, N failed` on stdout and returns the exit status (1 on any failure, also
 * when no check ran at all).
 *
 * Processes: fork with dk_test_fork() (flushes stdio, tracks the pid, and the child gets
 * SIGKILL when the test process dies; its SIGTERM/SIGINT/SIGALRM go back to default), leave
 * a child with dk_test_child_exit() (never exit(): that would run the parent's atexit
 * handlers), and reap with dk_test_wait() (bounded: kills the child after the timeout and
 * counts a failure).
 *
 * dk_test_init() starts a watchdog (alarm): on a hang, and on SIGTERM/SIGINT, the test
 * kills its tracked children, removes its temp dirs and exits 3.
 *
 * Include after `#define _GNU_SOURCE` (the harness uses mmap, nftw and prctl). */
#ifndef DK_TEST_H
#define DK_TEST_H

#if !defined(_GNU_SOURCE)
#error "define _GNU_SOURCE before including dk_test.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DK_TEST_MAX_PIDS 512
#define DK_TEST_MAX_DIRS 8

struct dk_test_counts {
    long pass;
    long fail;
};

static struct dk_test_counts dk_test_local_counts;
static struct dk_test_counts *dk_test_counts_p = &dk_test_local_counts;
static int dk_test_rfd = 2;
static pid_t dk_test_main_pid;
static pid_t dk_test_pids[DK_TEST_MAX_PIDS];
static int dk_test_npids;
static char dk_test_dirs[DK_TEST_MAX_DIRS][64];
static int dk_test_ndirs;
static const char *volatile dk_test_stage = "start";
static const char *dk_test_prog = "test";

/* Writes a whole buffer to fd (async-signal-safe). */
static inline void dk_test_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* printf-style line on the report fd. */
static inline void dk_test_log(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = (int)sizeof buf - 1;
    dk_test_write_all(dk_test_rfd, buf, (size_t)n);
}

static inline void dk_test_report_fd(int fd)
{
    dk_test_rfd = fd;
}

/* Names the part of the test running now (shown when the watchdog fires). */
static inline void dk_test_set_stage(const char *s)
{
    dk_test_stage = s;
}

static inline int dk_test_result(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        __atomic_fetch_add(&dk_test_counts_p->pass, 1, __ATOMIC_SEQ_CST);
    } else {
        char buf[2048];
        int n = snprintf(buf, sizeof buf, "%s:%d: ", file, line);
        va_list ap;
        __atomic_fetch_add(&dk_test_counts_p->fail, 1, __ATOMIC_SEQ_CST);
        if (n < 0)
            n = 0;
        va_start(ap, fmt);
        if ((size_t)n < sizeof buf)
            vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
        va_end(ap);
        buf[sizeof buf - 2] = '\0';
        n = (int)strlen(buf);
        buf[n++] = '\n';
        dk_test_write_all(dk_test_rfd, buf, (size_t)n);
    }
    return ok;
}

#define CHECK(expr) \
    dk_test_result(!!(expr), __FILE__, __LINE__, "CHECK(%s) failed", #expr)

#define CHECK_MSG(expr, ...) \
    (dk_test_result(!!(expr), __FILE__, __LINE__, "CHECK(%s) failed", #expr) || \
     (dk_test_log("    " __VA_ARGS__), dk_test_log("\n"), 0))

#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        long long dk_a_ = (long long)(a), dk_b_ = (long long)(b);                           \
        dk_test_result(dk_a_ == dk_b_, __FILE__, __LINE__,                                  \
                       "CHECK_EQ(%s, %s) failed: %lld != %lld", #a, #b, dk_a_, dk_b_);      \
    } while (0)

#define CHECK_NE(a, b)                                                                      \
    do {                                                                                    \
        long long dk_a_ = (long long)(a), dk_b_ = (long long)(b);                           \
        dk_test_result(dk_a_ != dk_b_, __FILE__, __LINE__,                                  \
                       "CHECK_NE(%s, %s) failed: both %lld", #a, #b, dk_a_);                \
    } while (0)

/* A negative-errno result: r must be exactly -e. Prints errno names' texts on failure. */
#define CHECK_ERR(r, e)                                                                     \
    do {                                                                                    \
        long long dk_r_ = (long long)(r), dk_e_ = (long long)(e);                           \
        dk_test_result(dk_r_ == -dk_e_, __FILE__, __LINE__,                                 \
                       "CHECK_ERR(%s, %s) failed: got %lld (%s), want %lld (%s)", #r, #e,   \
                       dk_r_, dk_r_ < 0 ? strerror((int)-dk_r_) : "not an error", -dk_e_,   \
                       strerror((int)dk_e_));                                               \
    } while (0)

#define CHECK_STREQ(a, b)                                                                   \
    do {                                                                                    \
        const char *dk_a_ = (a), *dk_b_ = (b);                                              \
        dk_test_result(dk_a_ && dk_b_ && strcmp(dk_a_, dk_b_) == 0, __FILE__, __LINE__,     \
                       "CHECK_STREQ(%s, %s) failed: \"%s\" != \"%s\"", #a, #b,              \
                       dk_a_ ? dk_a_ : "(null)", dk_b_ ? dk_b_ : "(null)");                 \
    } while (0)

#define CHECK_CONTAINS(h, n)                                                                \
    do {                                                                                    \
        const char *dk_h_ = (h), *dk_n_ = (n);                                              \
        dk_test_result(dk_h_ && dk_n_ && strstr(dk_h_, dk_n_) != NULL, __FILE__, __LINE__,  \
                       "CHECK_CONTAINS(%s, %s) failed: \"%s\" does not contain \"%s\"", #h, \
                       #n, dk_h_ ? dk_h_ : "(null)", dk_n_ ? dk_n_ : "(null)");             \
    } while (0)

/* ---- processes ------------------------------------------------------------------------ */

static inline void dk_test_track(pid_t pid)
{
    if (pid > 0 && dk_test_npids < DK_TEST_MAX_PIDS)
        dk_test_pids[dk_test_npids++] = pid;
}

static inline void dk_test_untrack(pid_t pid)
{
    int i;
    for (i = 0; i < dk_test_npids; i++) {
        if (dk_test_pids[i] == pid) {
            dk_test_pids[i] = dk_test_pids[--dk_test_npids];
            return;
        }
    }
}

/* Kills (SIGKILL) every tracked pid (async-signal-safe part of the cleanup). */
static inline void dk_test_kill_tracked(void)
{
    int i;
    for (i = 0; i < dk_test_npids; i++)
        if (dk_test_pids[i] > 0)
            kill(dk_test_pids[i], SIGKILL);
}

/* fork(): flushes stdio first; the child loses the parent's tracked pids and is killed
 * when the forking process dies. */
static inline pid_t dk_test_fork(void)
{
    pid_t parent = getpid();
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid > 0) {
        dk_test_track(pid);
    } else if (pid == 0) {
        dk_test_npids = 0;
        dk_test_ndirs = 0; /* the parent removes its temp dirs */
        signal(SIGTERM, SIG_DFL); /* the parent's fatal-signal handler is not for children */
        signal(SIGINT, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent)
            _exit(99);
    }
    return pid;
}

/* Leaves a forked child (never runs atexit handlers). */
static inline void dk_test_child_exit(int code)
{
    _exit(code);
}

static inline long long dk_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void dk_test_sleep_ms(long ms)
{
    struct timespec ts, rem;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
        ts = rem;
}

/* Waits up to timeout_ms for child pid. Returns 0 and stores the status, or -1 after
 * killing it on timeout (counted as a failure) or when it cannot be waited for. */
static inline int dk_test_wait(pid_t pid, long timeout_ms, int *status)
{
    long long deadline = dk_test_now_ms() + timeout_ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            dk_test_untrack(pid);
            if (status)
                *status = st;
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            dk_test_untrack(pid);
            dk_test_result(0, __FILE__, __LINE__, "waitpid(%d): %s", (int)pid,
                           strerror(errno));
            return -1;
        }
        if (dk_test_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            dk_test_untrack(pid);
            dk_test_result(0, __FILE__, __LINE__,
                           "process %d still running after %ld ms (killed) [stage %s]",
                           (int)pid, timeout_ms, dk_test_stage);
            return -1;
        }
        dk_test_sleep_ms(2);
    }
}

/* Waits for a child that should exit with status 0 (checks made in it already counted). */
#define CHECK_CHILD_OK(pid)                                                                 \
    do {                                                                                    \
        int dk_st_ = 0;                                                                     \
        if (dk_test_wait((pid), 10000, &dk_st_) == 0)                                       \
            dk_test_result(WIFEXITED(dk_st_) && WEXITSTATUS(dk_st_) == 0, __FILE__,         \
                           __LINE__, "child %d ended badly: %s %d", (int)(pid),             \
                           WIFEXITED(dk_st_) ? "exit status" : "killed by signal",          \
                           WIFEXITED(dk_st_) ? WEXITSTATUS(dk_st_) : WTERMSIG(dk_st_));     \
    } while (0)

/* ---- temp dirs and files -------------------------------------------------------------- */

static inline int dk_test_rm_cb(const char *path, const struct stat *sb, int flag,
                                struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static inline void dk_test_rmtree(const char *dir)
{
    nftw(dir, dk_test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under /tmp, removed by dk_test_done(). Aborts the test if impossible. */
static inline const char *dk_test_tmpdir(void)
{
    char *d;
    if (dk_test_ndirs >= DK_TEST_MAX_DIRS) {
        dk_test_log("dk_test_tmpdir: too many temp dirs\n");
        _exit(2);
    }
    d = dk_test_dirs[dk_test_ndirs];
    snprintf(d, sizeof dk_test_dirs[0], "/tmp/dk-ctest-%s-XXXXXX", dk_test_prog);
    if (!mkdtemp(d)) {
        dk_test_log("mkdtemp: %s\n", strerror(errno));
        _exit(2);
    }
    dk_test_ndirs++;
    return d;
}

/* Writes a file (O_TRUNC, 0644). Returns 0 or -1. */
static inline int dk_test_write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    dk_test_write_all(fd, data, strlen(data));
    close(fd);
    return 0;
}

/* Appends one formatted line (a newline added, truncated at 1 KiB) to path with a single
 * write, opening it each time: usable by a daemon that closed everything. */
static inline void dk_test_append_line(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void dk_test_append_line(const char *path, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n, fd;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    dk_test_write_all(fd, line, (size_t)n);
    close(fd);
}

/* Reads a whole (small) file into buf, NUL-terminated. Returns its length or -1. */
static inline ssize_t dk_test_read_file(const char *path, char *buf, size_t len)
{
    size_t have = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (len)
            buf[0] = '\0';
        return -1;
    }
    while (have + 1 < len) {
        ssize_t n = read(fd, buf + have, len - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    buf[have] = '\0';
    return (ssize_t)have;
}

/* ---- start and end -------------------------------------------------------------------- */

/* Fatal paths (watchdog, SIGTERM from `timeout`, ^C): kill the children, remove the temp
 * dirs with rm(1) (fork/execve/waitpid are async-signal-safe, nftw is not), leave. */
static inline void dk_test_emergency_cleanup(void)
{
    int i;
    dk_test_kill_tracked();
    for (i = 0; i < dk_test_ndirs; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/rm", "rm", "-rf", dk_test_dirs[i], (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
    }
}

static inline void dk_test_on_fatal(int sig)
{
    const char *s = dk_test_stage;
    if (getpid() != dk_test_main_pid)
        _exit(3); /* a child inherited the handler: just leave */
    dk_test_write_all(2, dk_test_prog, strlen(dk_test_prog));
    if (sig == SIGALRM)
        dk_test_write_all(2, ": watchdog: hang in stage: ", 27);
    else
        dk_test_write_all(2, ": interrupted in stage: ", 24);
    dk_test_write_all(2, s, strlen(s));
    dk_test_write_all(2, "\n", 1);
    dk_test_emergency_cleanup();
    _exit(3);
}

/* Starts a test program: shared counters, the watchdog (whole-program time limit). */
static inline void dk_test_init(const char *prog, unsigned watchdog_s)
{
    void *m = mmap(NULL, sizeof(struct dk_test_counts), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct sigaction sa;
    if (m != MAP_FAILED)
        dk_test_counts_p = (struct dk_test_counts *)m;
    dk_test_prog = prog;
    dk_test_main_pid = getpid();
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dk_test_on_fatal;
    sigfillset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    alarm(watchdog_s);
}

/* Ends the main process: cleanup, summary line, exit status. */
static inline int dk_test_done(void)
{
    int i;
    long pass, fail;
    if (getpid() != dk_test_main_pid)
        _exit(98); /* a child must use dk_test_child_exit */
    alarm(0);
    for (i = 0; i < dk_test_npids; i++) {
        kill(dk_test_pids[i], SIGKILL);
        waitpid(dk_test_pids[i], NULL, 0);
    }
    dk_test_npids = 0;
    for (i = 0; i < dk_test_ndirs; i++)
        dk_test_rmtree(dk_test_dirs[i]);
    dk_test_ndirs = 0;
    pass = __atomic_load_n(&dk_test_counts_p->pass, __ATOMIC_SEQ_CST);
    fail = __atomic_load_n(&dk_test_counts_p->fail, __ATOMIC_SEQ_CST);
    fflush(stderr);
    printf("%ld passed, %ld failed\n", pass, fail);
    fflush(stdout);
    return (fail == 0 && pass > 0) ? 0 : 1;
}

#endif /* DK_TEST_H */
