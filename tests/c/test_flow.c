/* The daemonize -> PID file -> ready flow, end to end. The test process forks a child C
 * that plays the launcher: C opens the PID file and calls dk_daemonize; C itself never
 * returns from it (it exits with the daemon's verdict), the daemon does. The daemon writes
 * what it observes into a result file; the test checks C's exit status and stderr, the PID
 * file, and the result file. The test process is a child subreaper, so every daemon ends
 * up as its child and is reaped (and killed if need be) by pid. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <dirent.h>
#include <poll.h>
#include <limits.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#include <sys/rseq.h>
#endif

static const char *tmp;

/* The calling thread's rseq registration as glibc made it: 1 registered where glibc says
 * (the kernel answers EBUSY to the same area, size and signature), 0 not, -1 unknowable
 * here (glibc before 2.35, rseq off). daemonize forks the daemon from a vfork child, in
 * which the kernel drops the registration: the daemon must have it back. */
static int rseq_registered(void)
{
#if defined(RSEQ_SIG) && defined(__x86_64__)
    /* glibc registers 32 bytes, or its feature size (__rseq_size: 20 on Debian 12's 2.36)
     * rounded up to 32 */
    unsigned len = (__rseq_size + 31) & ~31u;
    if (__rseq_size == 0)
        return -1;
    errno = 0;
    if (syscall(SYS_rseq, (char *)__builtin_thread_pointer() + __rseq_offset, len, 0,
                RSEQ_SIG) == 0)
        return 0; /* it was not registered: registered now */
    return errno == EBUSY;
#else
    return -1;
#endif
}

/* 1 if sched_getcpu() follows the thread onto each CPU it is pinned to in turn (a stale
 * rseq area would keep the first answer), 0 if not, -1 with fewer than 2 CPUs. */
static int cpu_follows(void)
{
    cpu_set_t old, one;
    int cpu, ok = 1, n = 0;
    if (sched_getaffinity(0, sizeof old, &old) != 0)
        return -1;
    for (cpu = 0; cpu < CPU_SETSIZE && n < 4; cpu++) {
        if (!CPU_ISSET(cpu, &old))
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0)
            break;
        if (sched_getcpu() != cpu)
            ok = 0;
        n++;
    }
    sched_setaffinity(0, sizeof old, &old);
    return n < 2 ? -1 : ok;
}
static char pidfile[256], result[256], errfile[256];

/* ---- daemon side ---------------------------------------------------------------------- */

/* Appends one line to the result file (opened each time: the daemon closed everything). */
#define rec(...) dk_test_append_line(result, __VA_ARGS__)

/* Lists the open fds except 0-2, `skip` and the directory's own fd, as
 * "N=link,cloexec;..." into buf. */
static void list_fds(int skip, char *buf, size_t len)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    struct rlimit rl;
    long top = LONG_MAX;
    size_t used = 0;
    buf[0] = '\0';
    if (!d) {
        snprintf(buf, len, "opendir-failed");
        return;
    }
    /* under valgrind, its own fds sit above the hard limit it shows the program: not ours */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
        top = (long)rl.rlim_max;
    while ((e = readdir(d)) != NULL) {
        char p[64], link[256];
        ssize_t n;
        int fd;
        if (e->d_name[0] == '.')
            continue;
        fd = atoi(e->d_name);
        if (fd <= 2 || fd == skip || fd == dirfd(d) || fd >= top)
            continue;
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        n = readlink(p, link, sizeof link - 1);
        link[n > 0 ? n : 0] = '\0';
        used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%d=%s,%d;", fd, link,
                                 (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
        if (used >= len)
            break;
    }
    closedir(d);
}

static void fd_link(int fd, char *buf, size_t len)
{
    char p[64];
    ssize_t n;
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    n = readlink(p, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
}

/* Redirects C's stderr (the launcher's messages) to errfile. */
static void stderr_to_errfile(void)
{
    int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}

/* C of the main case. */
static void launcher_main(void)
{
    dk_pidfile *pf = NULL;
    int32_t other = 0;
    pid_t launcher = getpid();
    sigset_t block;
    int r, stray;

    stderr_to_errfile();
    /* state the daemon must not inherit: a stray fd without close-on-exec, an ignored
     * signal, a blocked signal */
    stray = open("/dev/null", O_RDONLY);
    dup2(stray, 42);
    signal(SIGUSR1, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, NULL);
    umask(077);

    r = dk_pidfile_open(pidfile, 0, 0, &pf, &other);
    if (r != 0) {
        fprintf(stderr, "dk_pidfile_open: %d\n", r);
        _exit(100);
    }
    {
        int rseq_before = rseq_registered();
        static int heap_mark = 0; /* written before, read after: the daemon's copy */
        heap_mark = 4242;
        r = dk_daemonize(0, NULL, 0, NULL, 022, 0);
        /* only the daemon gets here */
        alarm(20); /* self-limit, whatever happens to the test */
        rec("rseq_before=%d", rseq_before);
        rec("heap_mark=%d", heap_mark);
    }
    rec("role=%d", r);
    rec("pid=%d", (int)getpid());
    rec("not_launcher=%d", getpid() != launcher);
    if (r < 0) {
        dk_fail(101, "dk_daemonize failed in the daemon");
        _exit(101);
    }
    rec("write=%d", dk_pidfile_write(pf));
    {
        int pffd = dk_pidfile_fd(pf);
        char buf[2048], l0[256], l1[256], l2[256], cwd[512];
        struct sigaction sa;
        sigset_t mask;
        int tty, tty_errno, sig, empty = 1;
        mode_t old;

        rec("session_leader=%d", getsid(0) == getpid());
        rec("sid=%d", (int)getsid(0));
        tty = open("/dev/tty", O_RDWR | O_NOCTTY);
        tty_errno = tty < 0 ? errno : 0;
        rec("tty_errno=%d", tty_errno);
        if (tty >= 0)
            close(tty);
        rec("cwd=%s", getcwd(cwd, sizeof cwd) ? cwd : "(getcwd failed)");
        fd_link(0, l0, sizeof l0);
        fd_link(1, l1, sizeof l1);
        fd_link(2, l2, sizeof l2);
        rec("fd0=%s", l0);
        rec("fd1=%s", l1);
        rec("fd2=%s", l2);
        rec("pffd=%d", pffd);
        rec("pffd_cloexec=%d", pffd >= 0 && (fcntl(pffd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
        list_fds(pffd, buf, sizeof buf);
        rec("fds_before=%s", buf);
        old = umask(022);
        rec("umask=%o", (unsigned)old);
        sigaction(SIGUSR1, NULL, &sa);
        rec("usr1_default=%d", sa.sa_handler == SIG_DFL);
        sigprocmask(SIG_SETMASK, NULL, &mask);
        for (sig = 1; sig < 65; sig++)
            if (sigismember(&mask, sig) == 1)
                empty = 0;
        rec("mask_empty=%d", empty);
        rec("cpu_follows=%d", cpu_follows());
        rec("rseq_after=%d", rseq_registered());
        rec("ready=%d", dk_ready());
        /* after dk_ready the readiness channel is closed too */
        list_fds(pffd, buf, sizeof buf);
        rec("fds_after=%s", buf);
    }
    {
        int term = SIGTERM, sfd, got;
        sfd = dk_signal_open(&term, 1);
        rec("sigfd=%d", sfd);
        rec("END");
        got = dk_signal_wait(15000);
        rec("got=%d", got);
        rec("remove=%d", dk_pidfile_remove(pf));
        rec("EXIT");
        _exit(0);
    }
}

/* C of the failure cases: mode 'f' dk_fail(3, "bad config"), 'l' a 2000-byte message,
 * 'h' a 70000-byte message, 'x' _exit(7), 't' ready too late (timeout 300 ms). */
static void launcher_failing(int mode)
{
    int r;
    stderr_to_errfile();
    r = dk_daemonize(0, NULL, 0, NULL, 022, mode == 't' ? 300 : 0);
    alarm(20);
    rec("role=%d", r);
    rec("pid=%d", (int)getpid());
    if (mode == 'f') {
        rec("fail=%d", dk_fail(3, "bad config"));
        _exit(9); /* the verdict (3) counts, not the exit status */
    } else if (mode == 'l' || mode == 'h') {
        static char msg[70001];
        size_t n = mode == 'l' ? 2000 : 70000;
        memset(msg, 'x', n);
        msg[n] = '\0';
        rec("fail=%d", dk_fail(mode == 'l' ? 5 : 6, msg));
        _exit(9);
    } else if (mode == 'x') {
        _exit(7);
    } else {
        dk_test_sleep_ms(5000);
        rec("late");
        dk_ready();
        _exit(0);
    }
}

/* C of the keep/chdir/KEEP_STDIO case: the kept pipe carries a line to the test. */
static void launcher_keep(int wfd)
{
    int r;
    char cwd[512], l2[256], line[600];
    stderr_to_errfile();
    r = dk_daemonize(DK_DAEMON_KEEP_STDIO, &wfd, 1, tmp, -1, 0);
    alarm(20);
    rec("role=%d", r);
    rec("pid=%d", (int)getpid());
    rec("cwd=%s", getcwd(cwd, sizeof cwd) ? cwd : "(getcwd failed)");
    fd_link(2, l2, sizeof l2);
    rec("fd2=%s", l2);
    snprintf(line, sizeof line, "kept %d\n", (int)getpid());
    rec("kept_write=%d", (int)write(wfd, line, strlen(line)));
    rec("ready=%d", dk_ready());
    rec("EXIT");
    _exit(0);
}

/* C of the log case: stdout/stderr stay on the log opened before daemonizing. */
static void launcher_log(const char *log)
{
    int r;
    char l0[256];
    stderr_to_errfile();
    if (dk_log_open(log, 0) != 0)
        _exit(100);
    r = dk_daemonize(0, NULL, 0, NULL, 022, 0);
    alarm(20);
    rec("role=%d", r);
    rec("pid=%d", (int)getpid());
    fd_link(0, l0, sizeof l0);
    rec("fd0=%s", l0);
    dk_test_write_all(1, "daemon stdout line\n", 19);
    dk_test_write_all(2, "daemon stderr line\n", 19);
    rec("ready=%d", dk_ready());
    rec("EXIT");
    _exit(0);
}

/* ---- test side ------------------------------------------------------------------------ */

/* Value of "key=" in the result file (empty string when missing). */
static const char *field(const char *res, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    const char *p = res;
    out[0] = '\0';
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1, *end = strchr(v, '\n');
            size_t n = end ? (size_t)(end - v) : strlen(v);
            if (n >= len)
                n = len - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return out;
}

static int ifield(const char *res, const char *key)
{
    char v[64];
    field(res, key, v, sizeof v);
    return v[0] ? atoi(v) : -9999;
}

static int has_line(const char *res, const char *line)
{
    size_t n = strlen(line);
    const char *p = res;
    while (p && *p) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

/* Waits (bounded) until the result file holds `line`. */
static int wait_line(const char *line, long ms, char *res, size_t len)
{
    long long end = dk_test_now_ms() + ms;
    do {
        dk_test_read_file(result, res, len);
        if (has_line(res, line))
            return 1;
        dk_test_sleep_ms(5);
    } while (dk_test_now_ms() < end);
    return 0;
}

static void reset_files(void)
{
    unlink(pidfile);
    unlink(result);
    unlink(errfile);
}

/* Reaps (or, if the launcher reaped it already, waits out) the daemon whose pid the result
 * file names: we are its subreaper once the launcher has gone. */
static void reap_daemon(const char *res, int *status)
{
    int dpid = ifield(res, "pid");
    long long end = dk_test_now_ms() + 5000;
    if (dpid <= 1 || dpid == getpid())
        return;
    for (;;) {
        pid_t r = waitpid(dpid, status, WNOHANG);
        if (r == dpid)
            return;
        if (r < 0 && errno == ECHILD && kill(dpid, 0) < 0 && errno == ESRCH)
            return;
        if (dk_test_now_ms() > end) {
            kill(dpid, SIGKILL);
            waitpid(dpid, status, 0);
            CHECK_MSG(0, "daemon %d still running 5 s after its launcher exited (killed)", dpid);
            return;
        }
        dk_test_sleep_ms(2);
    }
}

/* True when the fd list (fd=link,cloexec;...) is empty or only the readiness channel: one
 * pipe, close-on-exec. */
static int only_channel(const char *v)
{
    const char *eq = strchr(v, '=');
    if (v[0] == '\0')
        return 1;
    return eq && strncmp(eq + 1, "pipe:", 5) == 0 && strchr(v, ';') == strrchr(v, ';') &&
           strstr(v, ",1;") != NULL;
}

static void test_main_flow(void)
{
    char res[8192], pidtxt[64], v[2048], expect[64];
    int status = -1, dpid, filepid = -1, r;
    int32_t cpid = -1, kpid = -1;
    pid_t c;

    dk_test_set_stage("main flow");
    reset_files();
    c = dk_test_fork();
    if (c == 0)
        launcher_main();
    if (dk_test_wait(c, 10000, &status) != 0)
        return;
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "launcher status 0x%x", status);

    /* at the moment the launcher exited: the PID file holds the daemon's pid */
    dk_test_read_file(pidfile, pidtxt, sizeof pidtxt);
    dk_test_read_file(result, res, sizeof res);
    dpid = ifield(res, "pid");
    if (sscanf(pidtxt, "%d", &filepid) != 1)
        filepid = -1;
    CHECK(dpid > 1);
    CHECK_EQ(filepid, dpid);
    snprintf(expect, sizeof expect, "%d\n", dpid);
    CHECK_STREQ(pidtxt, expect);
    CHECK_NE(dpid, c);
    if (dpid <= 1)
        return;
    dk_test_track(dpid);
    CHECK_EQ(dk_pidfile_check(pidfile, &cpid), DK_PIDFILE_RUNNING);
    CHECK_EQ(cpid, dpid);
    CHECK_EQ(kill(dpid, 0), 0);
    {
        char statp[64], st[512];
        const char *rp;
        snprintf(statp, sizeof statp, "/proc/%d/stat", dpid);
        dk_test_read_file(statp, st, sizeof st);
        rp = strrchr(st, ')');
        CHECK(rp != NULL && rp[1] == ' ' && rp[2] != 'Z'); /* alive, not a zombie */
    }

    CHECK(wait_line("END", 5000, res, sizeof res));
    CHECK_EQ(ifield(res, "role"), DK_ROLE_DAEMON);
    CHECK_EQ(ifield(res, "not_launcher"), 1);
    CHECK_EQ(ifield(res, "write"), 0);
    CHECK_EQ(ifield(res, "session_leader"), 0);
    CHECK_NE(ifield(res, "sid"), dpid);
    CHECK_EQ(ifield(res, "tty_errno"), ENXIO);
    CHECK_STREQ(field(res, "cwd", v, sizeof v), "/");
    CHECK_STREQ(field(res, "fd0", v, sizeof v), "/dev/null");
    CHECK_STREQ(field(res, "fd1", v, sizeof v), "/dev/null");
    CHECK_STREQ(field(res, "fd2", v, sizeof v), "/dev/null");
    CHECK_EQ(ifield(res, "pffd_cloexec"), 1);
    /* before dk_ready: nothing but the PID file, except the readiness channel (one pipe,
     * close-on-exec); the stray fd 42 of the launcher is gone */
    field(res, "fds_before", v, sizeof v);
    CHECK_MSG(only_channel(v), "open fds in the daemon before dk_ready (fd=link,cloexec): %s", v);
    CHECK(strstr(v, "42=") == NULL);
    /* after dk_ready: nothing but the PID file */
    field(res, "fds_after", v, sizeof v);
    CHECK_MSG(v[0] == '\0', "open fds in the daemon after dk_ready: %s", v);
    CHECK_STREQ(field(res, "umask", v, sizeof v), "22");
    CHECK_EQ(ifield(res, "usr1_default"), 1);
    CHECK_EQ(ifield(res, "mask_empty"), 1);
    CHECK_EQ(ifield(res, "heap_mark"), 4242);
    /* the thread's rseq registration as before the fork (the vfork'd intermediate loses it;
     * the daemon registers again), and sched_getcpu() not stale */
    CHECK_EQ(ifield(res, "rseq_after"), ifield(res, "rseq_before"));
    printf("rseq registered before daemonize %d, in the daemon %d; sched_getcpu follows %d\n",
           ifield(res, "rseq_before"), ifield(res, "rseq_after"), ifield(res, "cpu_follows"));
    CHECK(ifield(res, "cpu_follows") != 0);
    CHECK_EQ(ifield(res, "ready"), 0);
    CHECK(ifield(res, "sigfd") >= 0);

    /* stop it through the PID file */
    r = dk_pidfile_kill(pidfile, SIGTERM, &kpid);
    CHECK_EQ(r, 0);
    CHECK_EQ(kpid, dpid);
    status = -1;
    if (dk_test_wait(dpid, 5000, &status) == 0) {
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "daemon status 0x%x", status);
        dk_test_read_file(result, res, sizeof res);
        CHECK_EQ(ifield(res, "got"), SIGTERM);
        CHECK_EQ(ifield(res, "remove"), 0);
        CHECK(has_line(res, "EXIT"));
        CHECK(access(pidfile, F_OK) != 0 && errno == ENOENT); /* its owner removed it */
        CHECK_ERR(dk_pidfile_check(pidfile, NULL), ENOENT);
    }
}

static void run_failing(int mode, int *status, char *res, size_t rlen, char *err, size_t elen,
                        long long *elapsed)
{
    long long t0;
    pid_t c;
    reset_files();
    *status = -1;
    t0 = dk_test_now_ms();
    c = dk_test_fork();
    if (c == 0)
        launcher_failing(mode);
    dk_test_wait(c, 10000, status);
    *elapsed = dk_test_now_ms() - t0;
    dk_test_read_file(result, res, rlen);
    dk_test_read_file(errfile, err, elen);
}

/* Longest run of 'x' in s. */
static int x_run(const char *s)
{
    int best = 0, cur = 0;
    for (; *s; s++) {
        cur = *s == 'x' ? cur + 1 : 0;
        if (cur > best)
            best = cur;
    }
    return best;
}

static void test_fail(void)
{
    char res[4096], err[80000], pidstr[32];
    int status, dst = -1, nx;
    long long ms;

    dk_test_set_stage("dk_fail");
    run_failing('f', &status, res, sizeof res, err, sizeof err, &ms);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 3, "launcher status 0x%x", status);
    CHECK_CONTAINS(err, "bad config");
    CHECK_EQ(ifield(res, "role"), DK_ROLE_DAEMON);
    reap_daemon(res, &dst);
    /* read again once the daemon is gone: it records dk_fail's result after the launcher
     * may already have exited */
    dk_test_read_file(result, res, sizeof res);
    CHECK_EQ(ifield(res, "fail"), 0);

    dk_test_set_stage("dk_fail long message");
    run_failing('l', &status, res, sizeof res, err, sizeof err, &ms);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 5, "launcher status 0x%x", status);
    nx = x_run(err);
    CHECK_MSG(nx >= 1000 && nx <= 1024, "%d bytes of a 2000-byte message printed", nx);
    reap_daemon(res, &dst);
    /* read again once the daemon is gone: it records dk_fail's result after the launcher
     * may already have exited */
    dk_test_read_file(result, res, sizeof res);
    CHECK_EQ(ifield(res, "fail"), 0);

    dk_test_set_stage("dk_fail 70000-byte message");
    run_failing('h', &status, res, sizeof res, err, sizeof err, &ms);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 6, "launcher status 0x%x, stderr: %.200s",
              status, err);
    nx = x_run(err);
    CHECK_MSG(nx >= 1000 && nx <= 1024, "%d bytes of a 70000-byte message printed", nx);
    reap_daemon(res, &dst);
    /* read again once the daemon is gone: it records dk_fail's result after the launcher
     * may already have exited */
    dk_test_read_file(result, res, sizeof res);
    CHECK_EQ(ifield(res, "fail"), 0);

    dk_test_set_stage("daemon exits 7 before reporting");
    run_failing('x', &status, res, sizeof res, err, sizeof err, &ms);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) != 0, "launcher status 0x%x", status);
    snprintf(pidstr, sizeof pidstr, "%d", ifield(res, "pid"));
    CHECK(ifield(res, "pid") > 1);
    CHECK_CONTAINS(err, pidstr);
    CHECK_CONTAINS(err, "status 7");
    reap_daemon(res, &dst); /* the launcher reaped it already: nothing left, or this */
}

static void test_timeout(void)
{
    char res[4096], err[4096], pidstr[32];
    int status, dst = -1, dpid;
    long long ms;

    dk_test_set_stage("timeout");
    run_failing('t', &status, res, sizeof res, err, sizeof err, &ms);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 1, "launcher status 0x%x", status);
    CHECK_MSG(ms >= 290 && ms <= 1000, "launcher gave up after %lld ms (timeout 300 ms)", ms);
    dpid = ifield(res, "pid");
    CHECK(dpid > 1);
    snprintf(pidstr, sizeof pidstr, "%d", dpid);
    CHECK_CONTAINS(err, pidstr);
    if (dpid > 1) {
        dk_test_track(dpid);
        if (dk_test_wait(dpid, 2000, &dst) == 0)
            CHECK_MSG(WIFSIGNALED(dst) && WTERMSIG(dst) == SIGKILL,
                      "daemon status 0x%x, want killed by SIGKILL", dst);
    }
    dk_test_read_file(result, res, sizeof res);
    CHECK(!has_line(res, "late"));
}

static void test_keep_chdir_stdio(void)
{
    char res[4096], v[512], line[64], expect[64];
    int p[2], status = -1, dst = -1;
    ssize_t n;
    pid_t c;

    dk_test_set_stage("keep fds, chdir, KEEP_STDIO");
    reset_files();
    CHECK_EQ(pipe(p), 0); /* not close-on-exec: kept across the daemonize */
    c = dk_test_fork();
    if (c == 0) {
        close(p[0]);
        launcher_keep(p[1]);
    }
    close(p[1]);
    dk_test_wait(c, 10000, &status);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "launcher status 0x%x", status);
    n = read(p[0], line, sizeof line - 1);
    line[n > 0 ? n : 0] = '\0';
    close(p[0]);
    CHECK(wait_line("EXIT", 5000, res, sizeof res));
    snprintf(expect, sizeof expect, "kept %d\n", ifield(res, "pid"));
    CHECK_STREQ(line, expect);
    CHECK_EQ(ifield(res, "role"), DK_ROLE_DAEMON);
    CHECK_STREQ(field(res, "cwd", v, sizeof v), tmp);
    CHECK_STREQ(field(res, "fd2", v, sizeof v), errfile);
    CHECK_EQ(ifield(res, "ready"), 0);
    reap_daemon(res, &dst);
}

static void test_log(void)
{
    char res[4096], v[512], log[300], text[4096];
    int status = -1, dst = -1;
    pid_t c;

    dk_test_set_stage("log stays");
    reset_files();
    snprintf(log, sizeof log, "%s/daemon.log", tmp);
    c = dk_test_fork();
    if (c == 0)
        launcher_log(log);
    dk_test_wait(c, 10000, &status);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "launcher status 0x%x", status);
    /* the daemon records dk_ready's result after the launcher may have exited */
    CHECK(wait_line("EXIT", 5000, res, sizeof res));
    CHECK_EQ(ifield(res, "ready"), 0);
    CHECK_STREQ(field(res, "fd0", v, sizeof v), "/dev/null");
    reap_daemon(res, &dst);
    dk_test_read_file(log, text, sizeof text);
    CHECK_CONTAINS(text, "daemon stdout line\n");
    CHECK_CONTAINS(text, "daemon stderr line\n");
}

static void test_foreground(void)
{
    struct sockaddr_un a;
    char sockpath[300], buf[256];
    int s;
    ssize_t n;
    pid_t c;

    dk_test_set_stage("foreground");
    reset_files();
    snprintf(sockpath, sizeof sockpath, "%s/notify.sock", tmp);
    s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, sockpath);
    CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    c = dk_test_fork();
    if (c == 0) {
        pid_t self = getpid();
        int stray = open("/dev/null", O_RDONLY);
        int r;
        char cwd[512];
        dup2(stray, 43);
        setenv("NOTIFY_SOCKET", sockpath, 1);
        r = dk_daemonize(DK_DAEMON_FOREGROUND, NULL, 0, NULL, 027, 0);
        CHECK_EQ(r, DK_ROLE_FOREGROUND);
        CHECK_EQ(getpid(), self);
        CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, "/") == 0);
        CHECK_EQ(umask(022), 027);
        CHECK(fcntl(43, F_GETFD) < 0); /* inherited fds closed */
        CHECK(fcntl(1, F_GETFD) >= 0); /* stdio kept */
        CHECK_EQ(dk_ready(), 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);
    fcntl(s, F_SETFL, O_NONBLOCK);
    n = recv(s, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    CHECK_CONTAINS(buf, "READY=1");
    close(s);
}

/* C under a seccomp filter that refuses vfork with EPERM (as a strict container policy may)
 * but allows fork: daemonize must still work, with two plain forks. */
static void launcher_no_vfork(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_vfork, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    char st[4096];
    int r;
    stderr_to_errfile();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        _exit(100);
    dk_test_read_file("/proc/self/status", st, sizeof st);
    r = dk_daemonize(0, NULL, 0, NULL, 022, 5000);
    alarm(20);
    rec("role=%d", r);
    rec("pid=%d", (int)getpid());
    rec("filtered=%d", strstr(st, "Seccomp:\t2") != NULL);
    rec("session_leader=%d", getsid(0) == getpid());
    rec("ready=%d", dk_ready());
    rec("EXIT");
    _exit(0);
}

static void test_vfork_refused(void)
{
    char res[4096];
    int status = -1, dst = -1;
    pid_t c;

    dk_test_set_stage("vfork refused by seccomp: two forks");
    reset_files();
    c = dk_test_fork();
    if (c == 0)
        launcher_no_vfork();
    dk_test_wait(c, 10000, &status);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "launcher status 0x%x", status);
    CHECK(wait_line("EXIT", 5000, res, sizeof res));
    CHECK_EQ(ifield(res, "filtered"), 1);
    CHECK_EQ(ifield(res, "role"), DK_ROLE_DAEMON);
    CHECK_EQ(ifield(res, "session_leader"), 0);
    CHECK_EQ(ifield(res, "ready"), 0);
    reap_daemon(res, &dst);
}

int main(void)
{
    dk_test_init("flow", 90);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    tmp = dk_test_tmpdir();
    snprintf(pidfile, sizeof pidfile, "%s/app.pid", tmp);
    snprintf(result, sizeof result, "%s/result", tmp);
    snprintf(errfile, sizeof errfile, "%s/launcher.err", tmp);

    test_main_flow();
    test_fail();
    test_timeout();
    test_keep_chdir_stdio();
    test_log();
    test_foreground();
    test_vfork_refused();
    return dk_test_done();
}
