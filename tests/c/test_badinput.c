/* Bad input to every function of include/daemonkit.h: a negative errno (the one the header
 * documents, where it documents one), never a crash, and no side effect. Calls that would
 * change the process for good if the argument check were missing (daemonize, re-exec,
 * privilege drop, close_from, log redirection, the supervisor) run in forked children.
 * check_coverage.sh fails when a function of the header is not called here. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

static char long_path[5001];   /* 5000 bytes + NUL */
static char long_name[300];    /* a user/group name of 299 bytes */
static const char *tmp;

/* An fd number that was open a moment ago and is closed now. */
static int closed_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    close(fd);
    return fd;
}

/* An fd number that is certainly not open. */
static int free_high_fd(void)
{
    close(777);
    return 777;
}

static int disposition_is(int sig, void (*h)(int))
{
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) != 0)
        return 0;
    return sa.sa_handler == h;
}

static void dummy_handler(int sig)
{
    (void)sig;
}

static int dummy_worker(void *ctx, uint32_t index)
{
    (void)ctx;
    (void)index;
    return 0;
}

static void test_version_strerror(void)
{
    static const int codes[] = {0, -EINVAL, EINVAL, -99999, 99999, INT_MIN, INT_MAX, -1, 1};
    size_t i;
    dk_test_set_stage("version/strerror");
    CHECK_EQ(dk_version(), DK_VERSION);
    CHECK_EQ(dk_version() >> 16, DK_VERSION_MAJOR);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = dk_strerror(codes[i]);
        CHECK_MSG(s != NULL, "dk_strerror(%d) returned NULL", codes[i]);
        if (s)
            CHECK_MSG(s[0] != '\0', "dk_strerror(%d) is empty", codes[i]);
    }
    CHECK_STREQ(dk_strerror(-EINVAL), strerror(EINVAL));
    CHECK_STREQ(dk_strerror(-ENOENT), strerror(ENOENT));
    CHECK_STREQ(dk_strerror(EEXIST), strerror(EEXIST));
}

static void test_pidfile(void)
{
    char path[256], dirpath[256], missing[256];
    dk_pidfile *pf = (dk_pidfile *)0x1;
    int32_t other = 12345, pid = 12345;
    int r;

    dk_test_set_stage("pidfile");
    snprintf(path, sizeof path, "%s/bad.pid", tmp);
    snprintf(dirpath, sizeof dirpath, "%s/adir", tmp);
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.pid", tmp);
    mkdir(dirpath, 0755);

    /* dk_pidfile_open */
    CHECK_ERR(dk_pidfile_open(NULL, 0, 0, &pf, &other), EINVAL);
    CHECK_ERR(dk_pidfile_open(path, 0, 0, NULL, &other), EINVAL);
    CHECK(access(path, F_OK) != 0); /* NULL out: nothing created or locked */
    CHECK_ERR(dk_pidfile_open(path, 0, 1, &pf, &other), EINVAL);
    CHECK_ERR(dk_pidfile_open(path, 0, 0x80000000u, &pf, &other), EINVAL);
    CHECK_ERR(dk_pidfile_open(path, 0, UINT32_MAX, &pf, NULL), EINVAL);
    CHECK_ERR(dk_pidfile_open(long_path, 0, 0, &pf, &other), ENAMETOOLONG);
    CHECK_ERR(dk_pidfile_open(missing, 0, 0, &pf, &other), ENOENT);
    CHECK_ERR(dk_pidfile_open(dirpath, 0, 0, &pf, &other), EISDIR);
    CHECK(dk_pidfile_open("", 0, 0, &pf, &other) < 0);

    /* handle functions with NULL */
    CHECK_ERR(dk_pidfile_write(NULL), EINVAL);
    CHECK_ERR(dk_pidfile_fd(NULL), EINVAL);
    CHECK_EQ(dk_pidfile_close(NULL), 0);
    CHECK_ERR(dk_pidfile_remove(NULL), EINVAL);

    /* dk_pidfile_check */
    CHECK_ERR(dk_pidfile_check(NULL, &pid), EINVAL);
    CHECK_ERR(dk_pidfile_check(NULL, NULL), EINVAL);
    CHECK_ERR(dk_pidfile_check(long_path, &pid), ENAMETOOLONG);
    pid = 12345;
    CHECK_ERR(dk_pidfile_check(path, &pid), ENOENT);
    CHECK_EQ(pid, 0);
    CHECK_ERR(dk_pidfile_check(missing, NULL), ENOENT);

    /* dk_pidfile_kill: bad signals against a file this process holds (so the signal, not
     * the file, is what is wrong: a missing check would signal ourselves). */
    CHECK_ERR(dk_pidfile_kill(NULL, 0, &pid), EINVAL);
    CHECK_ERR(dk_pidfile_kill(long_path, 0, &pid), ENAMETOOLONG);
    CHECK_ERR(dk_pidfile_kill(path, 0, &pid), ENOENT);
    r = dk_pidfile_open(path, 0, 0, &pf, &other);
    CHECK_EQ(r, 0);
    if (r == 0) {
        static const int bad_sigs[] = {-1, 65, 100, 1000, INT_MIN, INT_MAX};
        size_t i;
        CHECK_EQ(dk_pidfile_write(pf), 0);
        for (i = 0; i < sizeof bad_sigs / sizeof bad_sigs[0]; i++) {
            r = dk_pidfile_kill(path, bad_sigs[i], &pid);
            CHECK_MSG(r == -EINVAL, "dk_pidfile_kill(sig %d) = %d, want -EINVAL", bad_sigs[i],
                      r);
        }
        /* probing ourselves works: the check above was about the signal */
        CHECK_EQ(dk_pidfile_kill(path, 0, &pid), 0);
        CHECK_EQ(pid, getpid());
        CHECK_EQ(dk_pidfile_kill(path, 0, NULL), 0);
        CHECK_EQ(dk_pidfile_remove(pf), 0);
    }
}

/* In a child: dk_privileges_drop with bad arguments changes nothing (still root). */
static void test_privileges(void)
{
    pid_t pid;
    uint32_t uid = 777, gid = 777;
    dk_test_set_stage("privileges");
    pid = dk_test_fork();
    if (pid == 0) {
        CHECK_ERR(dk_privileges_drop(NULL, NULL, 0), EINVAL);
        CHECK_ERR(dk_privileges_drop(NULL, "nogroup", 0), EINVAL);
        CHECK_ERR(dk_privileges_drop("nobody", "nogroup", 4), EINVAL); /* unknown flag */
        CHECK_ERR(dk_privileges_drop_caps(NULL, NULL, 0, 0), EINVAL);
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 0x80000000u, 0), EINVAL);
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 0, ~0ull), EINVAL);
        CHECK_ERR(dk_privileges_drop_caps(long_name, NULL, 0, 0), ENAMETOOLONG);
        CHECK_ERR(dk_cap_from_name(NULL), EINVAL);
        CHECK_ERR(dk_cap_from_name(""), EINVAL);
        CHECK_ERR(dk_cap_from_name(long_path), ENAMETOOLONG);
        CHECK_ERR(dk_privileges_drop("nobody", NULL, 0x80000000u), EINVAL);
        CHECK_ERR(dk_privileges_drop(long_name, NULL, 0), ENAMETOOLONG);
        CHECK_ERR(dk_privileges_drop("nobody", long_name, 0), ENAMETOOLONG);
        CHECK_ERR(dk_privileges_drop(long_path, NULL, 0), ENAMETOOLONG);
        CHECK_EQ(dk_privileges_drop("no-such-user-dk", NULL, 0), DK_ERR_UNKNOWN_USER);
        CHECK_EQ(dk_privileges_drop("nobody", "no-such-group-dk", 0), DK_ERR_UNKNOWN_GROUP);
        CHECK_EQ(dk_privileges_drop("", NULL, 0), DK_ERR_UNKNOWN_USER);
        CHECK_EQ(getuid(), 0);
        CHECK_EQ(geteuid(), 0);
        CHECK_EQ(getgid(), 0);
        CHECK_EQ(getegid(), 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    CHECK_ERR(dk_user_lookup(NULL, &uid, &gid), EINVAL);
    CHECK_ERR(dk_user_lookup(NULL, NULL, NULL), EINVAL);
    CHECK_EQ(uid, 777);
    CHECK_EQ(dk_user_lookup("no-such-user-dk", &uid, &gid), DK_ERR_UNKNOWN_USER);
    CHECK(dk_user_lookup(long_path, &uid, &gid) < 0);
    CHECK(dk_user_lookup("", &uid, &gid) < 0);
    CHECK_EQ(dk_user_lookup("nobody", NULL, NULL), 0);

    CHECK_ERR(dk_group_lookup(NULL, &gid), EINVAL);
    CHECK_ERR(dk_group_lookup(NULL, NULL), EINVAL);
    CHECK_EQ(dk_group_lookup("no-such-group-dk", &gid), DK_ERR_UNKNOWN_GROUP);
    CHECK(dk_group_lookup(long_path, &gid) < 0);
    CHECK(dk_group_lookup("", &gid) < 0);
    CHECK_EQ(dk_group_lookup("nogroup", NULL), 0);
}

static void test_rlimit(void)
{
    static const int bad_res[] = {-1, 16, 17, 100, INT_MIN, INT_MAX};
    uint64_t soft = 7, hard = 7, obtained = 0, s0 = 0, h0 = 0;
    size_t i;
    pid_t pid;

    dk_test_set_stage("rlimit");
    for (i = 0; i < sizeof bad_res / sizeof bad_res[0]; i++) {
        int r = dk_rlimit_get(bad_res[i], &soft, &hard);
        CHECK_MSG(r == -EINVAL, "dk_rlimit_get(%d) = %d", bad_res[i], r);
        r = dk_rlimit_set(bad_res[i], 1, 1);
        CHECK_MSG(r == -EINVAL, "dk_rlimit_set(%d) = %d", bad_res[i], r);
    }
    CHECK_EQ(soft, 7);
    CHECK_EQ(dk_rlimit_get(DK_RLIMIT_NOFILE, NULL, NULL), 0);
    CHECK_EQ(dk_rlimit_get(DK_RLIMIT_NOFILE, &s0, &h0), 0);
    /* soft > hard */
    CHECK_ERR(dk_rlimit_set(DK_RLIMIT_NOFILE, h0 + 1, h0), EINVAL);
    CHECK_ERR(dk_rlimit_set(DK_RLIMIT_CORE, DK_RLIM_INFINITY, 0), EINVAL);
    CHECK_EQ(dk_rlimit_get(DK_RLIMIT_NOFILE, &soft, &hard), 0);
    CHECK_EQ(soft, s0);
    CHECK_EQ(hard, h0);

    /* dk_rlimit_nofile has no invalid argument: huge is capped, NULL out allowed */
    CHECK_EQ(dk_rlimit_nofile(DK_RLIM_INFINITY, &obtained), 0);
    CHECK_EQ(obtained, h0);
    CHECK_EQ(dk_rlimit_nofile(s0, NULL), 0);
    CHECK_EQ(dk_rlimit_get(DK_RLIMIT_NOFILE, &soft, NULL), 0);
    CHECK_EQ(soft, s0);

    pid = dk_test_fork();
    if (pid == 0) {
        CHECK_EQ(dk_rlimit_disable_core(), 0);
        CHECK_EQ(dk_rlimit_disable_core(), 0); /* idempotent */
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

static void test_fds(void)
{
    pid_t pid;
    dk_test_set_stage("fds");
    CHECK_ERR(dk_fd_set_cloexec(-1, 1), EBADF);
    CHECK_ERR(dk_fd_set_cloexec(-1, 0), EBADF);
    CHECK_ERR(dk_fd_set_cloexec(closed_fd(), 1), EBADF);
    CHECK_ERR(dk_fd_set_cloexec(99999, 1), EBADF);
    CHECK_ERR(dk_fd_set_cloexec(INT_MIN, 0), EBADF);
    CHECK_ERR(dk_fd_set_cloexec(free_high_fd(), 0), EBADF);

    /* close_from: a missing check would close this process's fds: in a child */
    pid = dk_test_fork();
    if (pid == 0) {
        static int many[1025];
        int canary = open("/dev/null", O_RDONLY); /* no cloexec needed */
        int keep[1] = {0};
        size_t i;
        for (i = 0; i < 1025; i++)
            many[i] = canary;
        CHECK_ERR(dk_fd_close_from(-1, NULL, 0), EINVAL);
        CHECK_ERR(dk_fd_close_from(INT_MIN, keep, 1), EINVAL);
        CHECK_ERR(dk_fd_close_from(3, NULL, 2), EINVAL);
        CHECK_ERR(dk_fd_close_from(3, many, 1025), EINVAL);
        CHECK(fcntl(canary, F_GETFD) >= 0); /* nothing was closed */
        CHECK_EQ(dk_fd_close_from(99999, NULL, 0), 0);
        CHECK_EQ(dk_fd_close_from(INT_MAX, NULL, 0), 0);
        CHECK(fcntl(canary, F_GETFD) >= 0);
        CHECK_EQ(dk_fd_close_from(3, many, 1024), 0); /* 1024 kept fds are allowed */
        CHECK(fcntl(canary, F_GETFD) >= 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

static void test_log(void)
{
    pid_t pid;
    char path[256], missing[256];
    dk_test_set_stage("log");
    snprintf(path, sizeof path, "%s/bad.log", tmp);
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.log", tmp);
    /* a missing check would replace this process's stdout/stderr: in a child */
    pid = dk_test_fork();
    if (pid == 0) {
        struct stat before1, before2, after1, after2;
        int rfd = fcntl(2, F_DUPFD_CLOEXEC, 100);
        dk_test_report_fd(rfd);
        fstat(1, &before1);
        fstat(2, &before2);
        CHECK_ERR(dk_log_reopen(), EBADF); /* nothing opened yet */
        CHECK_ERR(dk_log_open(NULL, 0), EINVAL);
        CHECK_ERR(dk_log_open(NULL, DK_LOG_STDOUT), EINVAL);
        CHECK_ERR(dk_log_open(path, 4), EINVAL);
        CHECK_ERR(dk_log_open(path, 0x80000000u), EINVAL);
        CHECK_ERR(dk_log_open(path, UINT32_MAX), EINVAL);
        CHECK_ERR(dk_log_open(long_path, 0), ENAMETOOLONG);
        CHECK_ERR(dk_log_open(missing, 0), ENOENT);
        CHECK(dk_log_open("", 0) < 0);
        CHECK_ERR(dk_log_reopen(), EBADF); /* still nothing opened */
        fstat(1, &after1);
        fstat(2, &after2);
        CHECK(before1.st_ino == after1.st_ino && before1.st_dev == after1.st_dev);
        CHECK(before2.st_ino == after2.st_ino && before2.st_dev == after2.st_dev);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    CHECK_ERR(dk_log_reopen(), EBADF);
}

static void test_signals(void)
{
    static const int bad[] = {0, -1, 65, 1000, SIGKILL, SIGSTOP, INT_MIN, INT_MAX};
    struct sigaction sa;
    size_t i;
    pid_t pid;
    int sigs[2];

    dk_test_set_stage("signals");
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dummy_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    CHECK_EQ(dk_signal_next(), 0);         /* nothing registered */
    CHECK_ERR(dk_signal_wait(0), EBADF);   /* nothing registered */
    CHECK_ERR(dk_signal_wait(10), EBADF);
    CHECK_EQ(dk_signal_close(), 0);        /* nothing open: harmless */
    CHECK_ERR(dk_signal_open(NULL, 1), EINVAL);
    CHECK_ERR(dk_signal_open(NULL, 3), EINVAL);
    CHECK_ERR(dk_signal_open_flags(NULL, 1, 0), EINVAL);
    CHECK_ERR(dk_notify_fd(-1), EBADF);
    CHECK_ERR(dk_notify_fd(INT_MIN), EBADF);
    CHECK_ERR(dk_notify_fd(closed_fd()), EBADF);
    CHECK_ERR(dk_signal_open_flags(NULL, 0, 2), EINVAL);      /* unknown flag */
    CHECK_ERR(dk_signal_open_flags(NULL, 0, 0x80000000u), EINVAL);
    {
        static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGKILL,
                                     SIGSTOP};
        for (i = 0; i < sizeof faults / sizeof faults[0]; i++) {
            int r = dk_signal_open_flags(&faults[i], 1, DK_SIGNAL_NO_RESTART);
            CHECK_MSG(r == -EINVAL, "dk_signal_open_flags({%d}) = %d, want -EINVAL", faults[i], r);
        }
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = dk_signal_open(&bad[i], 1);
        CHECK_MSG(r == -EINVAL, "dk_signal_open({%d}) = %d, want -EINVAL", bad[i], r);
    }
    /* a bad one in the list: nothing registered, not even the good one */
    sigs[0] = SIGUSR1;
    sigs[1] = SIGKILL;
    CHECK_ERR(dk_signal_open(sigs, 2), EINVAL);
    CHECK(disposition_is(SIGUSR1, dummy_handler));
    sigs[1] = 65;
    CHECK_ERR(dk_signal_open(sigs, 2), EINVAL);
    CHECK(disposition_is(SIGUSR1, dummy_handler));
    CHECK_ERR(dk_signal_wait(0), EBADF);
    CHECK_EQ(dk_signal_next(), 0);
    signal(SIGUSR1, SIG_DFL);

    pid = dk_test_fork();
    if (pid == 0) {
        signal(SIGHUP, SIG_IGN);
        CHECK_EQ(dk_signal_reset_child(), 0);
        CHECK(disposition_is(SIGHUP, SIG_DFL));
        CHECK_EQ(dk_signal_ignore_sigpipe(), 0);
        CHECK(disposition_is(SIGPIPE, SIG_IGN));
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

static void test_listen(void)
{
    static const char *bad_addrs[] = {
        "", "127.0.0.1", "127.0.0.1:", ":", "127.0.0.1:99999", "127.0.0.1:-1",
        "127.0.0.1:abc", "1.2.3.4.5:80", "256.1.1.1:80", "[::1:80", "::1:80", "host name:80",
        "127.0.0.1:80x", "127.0.0.1:0:0",
    };
    char unix_long[200], rel[] = "relative.sock", buf[128];
    size_t i;
    int pfd[2], ufd, sp[2];

    dk_test_set_stage("listen");
    CHECK_ERR(dk_listen_tcp(NULL, 0, 0), EINVAL);
    for (i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        int r = dk_listen_tcp(bad_addrs[i], 0, 0);
        CHECK_MSG(r == -EINVAL, "dk_listen_tcp(\"%s\") = %d, want -EINVAL", bad_addrs[i], r);
        if (r >= 0)
            close(r);
    }
    /* an over-long address is refused like an over-long path (documented -ENAMETOOLONG) */
    CHECK_ERR(dk_listen_tcp(long_path, 0, 0), ENAMETOOLONG);
    CHECK_ERR(dk_listen_tcp("127.0.0.1:0", 0, 4), EINVAL);
    CHECK_ERR(dk_listen_tcp("127.0.0.1:0", 0, 0x80000000u), EINVAL);
    CHECK_ERR(dk_listen_tcp("127.0.0.1:0", 0, UINT32_MAX), EINVAL);

    CHECK_ERR(dk_listen_unix(NULL, 0, 0, 0), EINVAL);
    CHECK_ERR(dk_listen_unix("", 0, 0, 0), EINVAL);
    CHECK_ERR(dk_listen_unix(rel, 0, 0, 0), EINVAL);
    CHECK(access(rel, F_OK) != 0);
    CHECK_ERR(dk_listen_unix(long_path, 0, 0, 0), ENAMETOOLONG);
    snprintf(unix_long, sizeof unix_long, "%s/", tmp);
    while (strlen(unix_long) < 108)
        strcat(unix_long, "u"); /* 108 bytes: one too many */
    CHECK_ERR(dk_listen_unix(unix_long, 0, 0, 0), ENAMETOOLONG);
    CHECK(access(unix_long, F_OK) != 0);
    snprintf(buf, sizeof buf, "%s/flags.sock", tmp);
    CHECK_ERR(dk_listen_unix(buf, 0, 0, DK_LISTEN_REUSEPORT), EINVAL);
    CHECK_ERR(dk_listen_unix(buf, 0, 0, 4), EINVAL);
    CHECK_ERR(dk_listen_unix(buf, 0, 0, 0x80000000u), EINVAL);
    CHECK(access(buf, F_OK) != 0);

    /* dk_socket_port / dk_socket_name */
    CHECK_EQ(pipe2(pfd, O_CLOEXEC), 0);
    CHECK_ERR(dk_socket_port(-1), EBADF);
    CHECK_ERR(dk_socket_port(closed_fd()), EBADF);
    CHECK_ERR(dk_socket_port(99999), EBADF);
    CHECK_ERR(dk_socket_port(INT_MIN), EBADF);
    CHECK_ERR(dk_socket_port(pfd[0]), ENOTSOCK);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    CHECK_ERR(dk_socket_port(sp[0]), EAFNOSUPPORT);
    CHECK_ERR(dk_socket_name(-1, buf, sizeof buf), EBADF);
    CHECK_ERR(dk_socket_name(closed_fd(), buf, sizeof buf), EBADF);
    CHECK_ERR(dk_socket_name(99999, buf, sizeof buf), EBADF);
    CHECK_ERR(dk_socket_name(pfd[0], buf, sizeof buf), ENOTSOCK);
    ufd = dk_listen_tcp("127.0.0.1:0", 0, 0);
    CHECK(ufd >= 0);
    if (ufd >= 0) {
        CHECK_ERR(dk_socket_name(ufd, NULL, 64), EINVAL);
        CHECK_ERR(dk_socket_name(ufd, buf, 3), ERANGE);
        CHECK(dk_socket_name(ufd, buf, 0) < 0);
        CHECK(dk_socket_name(ufd, buf, sizeof buf) > 0);
        close(ufd);
    }
    close(pfd[0]);
    close(pfd[1]);
    close(sp[0]);
    close(sp[1]);
}

/* dk_listen_fds with bad flags and malformed variables, in a child (it changes fd flags
 * and the environment). */
static void test_listen_fds(void)
{
    pid_t pid;
    dk_test_set_stage("listen_fds");
    pid = dk_test_fork();
    if (pid == 0) {
        char names[64], pidbuf[32];
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        dup2(s, 3);
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        CHECK_ERR(dk_listen_fds(2, names, sizeof names), EINVAL);
        CHECK_ERR(dk_listen_fds(0x80000000u, NULL, 0), EINVAL);
        CHECK_EQ(dk_listen_fds(0, NULL, 0), 0);
        CHECK_EQ(dk_listen_fds(0, NULL, 12345), 0); /* NULL names: length ignored */
        setenv("LISTEN_PID", pidbuf, 1);
        setenv("LISTEN_FDS", "abc", 1);
        CHECK_ERR(dk_listen_fds(0, names, sizeof names), EINVAL);
        setenv("LISTEN_FDS", "-1", 1);
        CHECK_ERR(dk_listen_fds(0, names, sizeof names), EINVAL);
        setenv("LISTEN_FDS", "1x", 1);
        CHECK_ERR(dk_listen_fds(0, names, sizeof names), EINVAL);
        setenv("LISTEN_FDS", "99999999999999999999", 1);
        CHECK(dk_listen_fds(0, names, sizeof names) < 0);
        setenv("LISTEN_FDS", "5", 1); /* 4..7 are not open */
        close(4);
        close(5);
        close(6);
        close(7);
        CHECK_ERR(dk_listen_fds(0, names, sizeof names), EBADF);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_PID", "garbage", 1);
        CHECK_ERR(dk_listen_fds(0, names, sizeof names), EINVAL);
        setenv("LISTEN_PID", pidbuf, 1);
        setenv("LISTEN_FDNAMES", "a-rather-long-name-that-does-not-fit", 1);
        CHECK_ERR(dk_listen_fds(0, names, 8), ENAMETOOLONG);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

static void test_notify(void)
{
    uint64_t usec = 42;
    char sock[256];
    dk_test_set_stage("notify");
    unsetenv("NOTIFY_SOCKET");
    CHECK_ERR(dk_notify(NULL), EINVAL);
    CHECK_EQ(dk_notify("READY=1"), 0);
    CHECK_EQ(dk_notify_reloading(), 0);
    CHECK_EQ(dk_notify_stopping(), 0);
    snprintf(sock, sizeof sock, "%s/nobody-listens.sock", tmp);
    setenv("NOTIFY_SOCKET", sock, 1);
    CHECK_ERR(dk_notify(NULL), EINVAL);
    {
        int r = dk_notify("READY=1");
        CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED, "dk_notify to a missing socket = %d", r);
        r = dk_notify_reloading();
        CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED, "dk_notify_reloading = %d", r);
        r = dk_notify_stopping();
        CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED, "dk_notify_stopping = %d", r);
    }
    setenv("NOTIFY_SOCKET", long_path, 1);
    CHECK(dk_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");

    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    CHECK_EQ(dk_watchdog_usec(NULL), 0);
    CHECK_EQ(dk_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_USEC", "abc", 1);
    CHECK_EQ(dk_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_USEC", "-5", 1);
    CHECK_EQ(dk_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_USEC", "0", 1);
    CHECK_EQ(dk_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_USEC", "1000000", 1);
    setenv("WATCHDOG_PID", "garbage", 1);
    CHECK_EQ(dk_watchdog_usec(&usec), 0);
    unsetenv("WATCHDOG_PID");
    CHECK_EQ(dk_watchdog_usec(NULL), 1);
    unsetenv("WATCHDOG_USEC");
}

static void test_fd_passing(void)
{
    int sp[2], pfd[2], fds[256], bad_fds[2];
    uint8_t data[8] = "abc", buf[16];
    size_t n;

    dk_test_set_stage("fd passing");
    CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    CHECK_EQ(pipe2(pfd, O_CLOEXEC), 0);
    fds[0] = pfd[0];
    fds[1] = pfd[1];

    CHECK_ERR(dk_fd_send(-1, data, 3, NULL, 0), EBADF);
    CHECK_ERR(dk_fd_send(closed_fd(), data, 3, NULL, 0), EBADF);
    CHECK_ERR(dk_fd_send(99999, data, 3, NULL, 0), EBADF);
    CHECK_ERR(dk_fd_send(pfd[1], data, 3, NULL, 0), ENOTSOCK);
    CHECK_ERR(dk_fd_send(sp[0], NULL, 3, NULL, 0), EINVAL);
    CHECK_ERR(dk_fd_send(sp[0], data, 0, NULL, 0), EINVAL);
    CHECK_ERR(dk_fd_send(sp[0], data, 3, NULL, 2), EINVAL);
    CHECK_ERR(dk_fd_send(sp[0], data, 3, fds, 254), EINVAL);
    bad_fds[0] = pfd[0];
    bad_fds[1] = -1;
    CHECK_ERR(dk_fd_send(sp[0], data, 3, bad_fds, 2), EBADF);
    bad_fds[1] = closed_fd();
    CHECK_ERR(dk_fd_send(sp[0], data, 3, bad_fds, 2), EBADF);

    n = 4;
    CHECK_ERR(dk_fd_recv(sp[1], NULL, sizeof buf, fds, &n), EINVAL);
    n = 4;
    CHECK_ERR(dk_fd_recv(sp[1], buf, 0, fds, &n), EINVAL);
    CHECK_ERR(dk_fd_recv(sp[1], buf, sizeof buf, fds, NULL), EINVAL);
    n = 4;
    CHECK_ERR(dk_fd_recv(sp[1], buf, sizeof buf, NULL, &n), EINVAL);
    n = 4;
    CHECK_ERR(dk_fd_recv(-1, buf, sizeof buf, fds, &n), EBADF);
    n = 4;
    CHECK_ERR(dk_fd_recv(closed_fd(), buf, sizeof buf, fds, &n), EBADF);
    n = 4;
    CHECK_ERR(dk_fd_recv(99999, buf, sizeof buf, fds, &n), EBADF);
    n = 4;
    CHECK(dk_fd_recv(pfd[0], buf, sizeof buf, fds, &n) < 0);
    /* nothing was sent by the failed calls: a non-blocking receive finds nothing */
    fcntl(sp[1], F_SETFL, fcntl(sp[1], F_GETFL) | O_NONBLOCK);
    n = 4;
    CHECK_ERR(dk_fd_recv(sp[1], buf, sizeof buf, fds, &n), EAGAIN);
    CHECK_EQ(n, 0);
    n = 0;
    CHECK_ERR(dk_fd_recv(sp[1], buf, sizeof buf, NULL, &n), EAGAIN);
    close(sp[0]);
    close(sp[1]);
    close(pfd[0]);
    close(pfd[1]);
}

/* dk_daemonize: argument errors come back in the calling process before any fork. A
 * missing check would fork and turn the caller into a launcher: run it in a child, whose
 * only way to exit 0 is to get every expected error back and stay the same process. */
static void test_daemonize(void)
{
    pid_t pid;
    int status = 0;
    dk_test_set_stage("daemonize");
    pid = dk_test_fork();
    if (pid == 0) {
        pid_t self = getpid();
        int keep[2];
        int cfd;
        CHECK_ERR(dk_daemonize(32, NULL, 0, NULL, 022, 0), EINVAL);
        CHECK_ERR(dk_daemonize(0x80000000u, NULL, 0, NULL, 022, 0), EINVAL);
        CHECK_ERR(dk_daemonize(UINT32_MAX, NULL, 0, NULL, -1, 0), EINVAL);
        CHECK_ERR(dk_daemonize(0, NULL, 2, NULL, 022, 0), EINVAL);
        keep[0] = 0;
        keep[1] = -1;
        CHECK_ERR(dk_daemonize(0, keep, 2, NULL, 022, 0), EBADF);
        keep[1] = 99999;
        CHECK_ERR(dk_daemonize(0, keep, 2, NULL, 022, 0), EBADF);
        cfd = closed_fd();
        keep[1] = cfd;
        CHECK_ERR(dk_daemonize(0, keep, 2, NULL, 022, 0), EBADF);
        CHECK_ERR(dk_daemonize(0, NULL, 0, "", 022, 0), ENOENT);
        CHECK_ERR(dk_daemonize(0, NULL, 0, long_path, 022, 0), ENAMETOOLONG);
        CHECK_ERR(dk_daemonize(DK_DAEMON_FOREGROUND, NULL, 2, NULL, 022, 0), EINVAL);
        CHECK_EQ(getpid(), self);
        dk_test_child_exit(getpid() == self ? 0 : 1);
    }
    CHECK_CHILD_OK(pid);

    /* a missing directory: reported as -ENOENT either by the call itself or, after the
     * fork, in the daemon (which passes it on with dk_fail: the launcher exits 42). */
    pid = dk_test_fork();
    if (pid == 0) {
        char dir[300];
        int fd = open("/dev/null", O_WRONLY);
        int r;
        dup2(fd, 2); /* the launcher prints the message */
        snprintf(dir, sizeof dir, "%s/no/such/dir", tmp);
        r = dk_daemonize(0, NULL, 0, dir, 022, 5000);
        if (r == -ENOENT) {
            dk_fail(42, "chdir: no such directory");
            _exit(42);
        }
        if (r >= 0) {
            dk_ready(); /* wrong: it changed into a missing directory */
            _exit(0);
        }
        dk_fail(43, "unexpected error");
        _exit(43);
    }
    if (dk_test_wait(pid, 10000, &status) == 0) {
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), 42);
    }
    /* a daemon child may linger for a moment: it exits right after dk_fail */
}

static void test_ready_fail(void)
{
    pid_t pid;
    char errpath[256], out[4096];
    dk_test_set_stage("ready/fail");
    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ(dk_ready(), 0); /* not a daemon, no NOTIFY_SOCKET: nothing to do */
    CHECK_EQ(dk_ready(), 0);
    snprintf(errpath, sizeof errpath, "%s/fail.err", tmp);
    pid = dk_test_fork();
    if (pid == 0) {
        static char huge[70000];
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int rfd = fcntl(2, F_DUPFD_CLOEXEC, 100);
        dk_test_report_fd(rfd);
        dup2(fd, 2);
        close(fd);
        /* no launcher: the message goes to stderr; every code is accepted */
        CHECK_EQ(dk_fail(0, NULL), 0);
        CHECK_EQ(dk_fail(-1, "negative code"), 0);
        CHECK_EQ(dk_fail(256, "code 256"), 0);
        CHECK_EQ(dk_fail(INT_MIN, "code INT_MIN"), 0);
        memset(huge, 'h', sizeof huge - 1);
        CHECK_EQ(dk_fail(3, huge), 0); /* a long message is cut, not refused */
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    dk_test_read_file(errpath, out, sizeof out);
    CHECK_CONTAINS(out, "negative code");
    CHECK_CONTAINS(out, "code 256");
    CHECK_CONTAINS(out, "code INT_MIN");
    CHECK_CONTAINS(out, "hhhhhhhh");
}

/* dk_reexec / dk_upgrade with bad arguments: they must fail and leave every fd as it was.
 * If a check were missing the child would exec `sh -c 'exit 99'`. */
static void test_exec(void)
{
    pid_t pid;
    dk_test_set_stage("reexec/upgrade");
    pid = dk_test_fork();
    if (pid == 0) {
        const char *argv_sh[] = {"/bin/sh", "-c", "exit 99", NULL};
        const char *argv_missing[] = {"/nonexistent/dk-prog", NULL};
        char noexec[300];
        const char *argv_noexec[] = {noexec, NULL};
        const char *argv_long[] = {long_path, NULL};
        const char *argv_empty[] = {NULL};
        int one[2], s, flags_before, flags_after;
        char msg[64];
        snprintf(noexec, sizeof noexec, "%s/not-executable", tmp);
        dk_test_write_file(noexec, "#!/bin/sh\nexit 99\n");
        chmod(noexec, 0644);
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        flags_before = fcntl(s, F_GETFD);
        one[0] = s;

        CHECK_ERR(dk_reexec(NULL, NULL, 0, NULL, NULL), EINVAL);
        CHECK_ERR(dk_reexec(argv_sh, NULL, 2, NULL, NULL), EINVAL);
        one[1] = -1;
        CHECK_ERR(dk_reexec(argv_sh, one, 2, NULL, NULL), EBADF);
        one[1] = closed_fd();
        CHECK_ERR(dk_reexec(argv_sh, one, 2, NULL, NULL), EBADF);
        one[1] = 99999;
        CHECK_ERR(dk_reexec(argv_sh, one, 2, NULL, NULL), EBADF);
        CHECK(dk_reexec(argv_empty, NULL, 0, NULL, NULL) < 0);
        CHECK_ERR(dk_reexec(argv_missing, one, 1, "web", NULL), ENOENT);
        CHECK_ERR(dk_reexec(argv_noexec, one, 1, NULL, NULL), EACCES);
        CHECK_ERR(dk_reexec(argv_long, NULL, 0, NULL, NULL), ENAMETOOLONG);
        flags_after = fcntl(s, F_GETFD);
        CHECK_EQ(flags_after, flags_before);
        CHECK(getenv("LISTEN_FDS") == NULL);
        CHECK(getenv("LISTEN_PID") == NULL);

        CHECK_ERR(dk_upgrade(NULL, NULL, 0, NULL, NULL, 1000, msg, sizeof msg), EINVAL);
        CHECK_ERR(dk_upgrade(argv_sh, NULL, 0, NULL, NULL, 1000, NULL, 10), EINVAL);
        CHECK_ERR(dk_upgrade(argv_sh, NULL, 2, NULL, NULL, 1000, msg, sizeof msg), EINVAL);
        one[1] = -1;
        CHECK_ERR(dk_upgrade(argv_sh, one, 2, NULL, NULL, 1000, msg, sizeof msg), EBADF);
        one[1] = closed_fd();
        CHECK_ERR(dk_upgrade(argv_sh, one, 2, NULL, NULL, 1000, msg, sizeof msg), EBADF);
        one[1] = 99999;
        CHECK_ERR(dk_upgrade(argv_sh, one, 2, NULL, NULL, 1000, msg, 0), EBADF);
        {
            int r = dk_upgrade(argv_missing, NULL, 0, NULL, NULL, 2000, msg, sizeof msg);
            CHECK_MSG(r == -ENOENT || r == -ECANCELED, "dk_upgrade(missing program) = %d", r);
        }
        CHECK_EQ(fcntl(s, F_GETFD), flags_before);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* More than 62 fds, each in a child of its own: if the limit is not enforced the child
     * becomes `sh -c 'exit 99'` (re-exec) or starts it as a new generation (upgrade). */
    {
        static const size_t counts[] = {63, 64};
        size_t i;
        for (i = 0; i < 2; i++) {
            int st = 0;
            pid = dk_test_fork();
            if (pid == 0) {
                const char *argv_sh[] = {"/bin/sh", "-c", "exit 99", NULL};
                int fds[64], k, s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                char msg[64];
                for (k = 0; k < 64; k++)
                    fds[k] = s;
                CHECK_ERR(dk_upgrade(argv_sh, fds, counts[i], NULL, NULL, 2000, msg, sizeof msg),
                          EINVAL);
                CHECK_ERR(dk_reexec(argv_sh, fds, counts[i], NULL, NULL), EINVAL);
                dk_test_child_exit(0);
            }
            if (dk_test_wait(pid, 10000, &st) == 0)
                CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                          "dk_reexec with %zu fds: the child ended with status %d (99: it "
                          "exec'd the program instead of returning -EINVAL)",
                          counts[i], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
    }
}

static void test_supervisor(void)
{
    dk_supervisor *sv = NULL;
    const char *argv[] = {"/bin/true", NULL};
    int s, i, r, fds[63];
    pid_t pid;

    dk_test_set_stage("supervisor");
    {
        char text[8];
        /* NULL buffer: only with length 0, which gives the length the text needs */
        CHECK_ERR(dk_event_describe(DK_EVENT_SPAWNED, 1, 0, NULL, 8), EINVAL);
        CHECK_EQ(dk_event_describe(DK_EVENT_SPAWNED, 1, 0, NULL, 0),
                 (int)strlen("worker 1 started (index 0)"));
        /* truncated, NUL-terminated, the full length returned (as snprintf) */
        CHECK_EQ(dk_event_describe(DK_EVENT_SPAWNED, 1, 0, text, sizeof text),
                 (int)strlen("worker 1 started (index 0)"));
        CHECK_STREQ(text, "worker ");
        /* garbage kinds and values are described, never a crash */
        CHECK(dk_event_describe(INT32_MIN, INT32_MIN, INT32_MIN, text, sizeof text) > 0);
        CHECK(dk_event_describe(DK_EVENT_EXITED, -1, INT32_MIN, text, 1) > 0);
        CHECK_STREQ(text, "");
    }
    CHECK_ERR(dk_supervisor_new(NULL), EINVAL);
    CHECK_EQ(dk_supervisor_free(NULL), 0);
    CHECK_ERR(dk_supervisor_set_workers(NULL, 1), EINVAL);
    CHECK_ERR(dk_supervisor_set_graceful_timeout(NULL, 1), EINVAL);
    CHECK_ERR(dk_supervisor_set_ready_timeout(NULL, 1), EINVAL);
    CHECK_ERR(dk_supervisor_set_worker(NULL, dummy_worker, NULL), EINVAL);
    CHECK_ERR(dk_supervisor_set_exec(NULL, argv), EINVAL);
    CHECK_ERR(dk_supervisor_set_post_fork(NULL, NULL, NULL), EINVAL);
    CHECK_ERR(dk_supervisor_set_event(NULL, NULL, NULL), EINVAL);
    CHECK_ERR(dk_supervisor_add_listener(NULL, 0), EINVAL);
    CHECK_ERR(dk_supervisor_set_listen_names(NULL, "web"), EINVAL);
    CHECK_ERR(dk_supervisor_set_pidfile(NULL, NULL), EINVAL);
    CHECK_ERR(dk_supervisor_set_upgrade(NULL, argv, 0), EINVAL);
    CHECK_ERR(dk_supervisor_run(NULL), EINVAL);

    r = dk_supervisor_new(&sv);
    CHECK_EQ(r, 0);
    CHECK(sv != NULL);
    if (r != 0 || !sv)
        return;
    CHECK_ERR(dk_supervisor_set_workers(sv, 0), EINVAL);
    CHECK_ERR(dk_supervisor_set_workers(sv, DK_SUPERVISOR_MAX_WORKERS + 1), EINVAL);
    CHECK_ERR(dk_supervisor_set_workers(sv, UINT32_MAX), EINVAL);
    CHECK_EQ(dk_supervisor_set_workers(sv, DK_SUPERVISOR_MAX_WORKERS), 0);
    CHECK_EQ(dk_supervisor_set_workers(sv, 1), 0);
    CHECK_EQ(dk_supervisor_set_graceful_timeout(sv, 0), 0);
    CHECK_EQ(dk_supervisor_set_ready_timeout(sv, UINT32_MAX), 0);
    CHECK_ERR(dk_supervisor_set_worker(sv, NULL, NULL), EINVAL);
    CHECK_ERR(dk_supervisor_set_exec(sv, NULL), EINVAL);
    CHECK_ERR(dk_supervisor_set_upgrade(sv, NULL, 0), EINVAL);
    CHECK_EQ(dk_supervisor_set_post_fork(sv, NULL, NULL), 0);
    CHECK_EQ(dk_supervisor_set_event(sv, NULL, NULL), 0);
    CHECK_EQ(dk_supervisor_set_listen_names(sv, NULL), 0);
    CHECK_EQ(dk_supervisor_set_pidfile(sv, NULL), 0);
    CHECK_ERR(dk_supervisor_add_listener(sv, -1), EBADF);
    CHECK_ERR(dk_supervisor_add_listener(sv, closed_fd()), EBADF);
    CHECK_ERR(dk_supervisor_add_listener(sv, 99999), EBADF);
    CHECK_ERR(dk_supervisor_add_listener(sv, INT_MIN), EBADF);
    /* listener pairs: two listening TCP sockets with SO_REUSEPORT on one address */
    CHECK_ERR(dk_supervisor_add_listener_pair(NULL, 0, 1), EINVAL);
    CHECK_ERR(dk_supervisor_add_listener_pair(sv, -1, -1), EBADF);
    CHECK_ERR(dk_supervisor_add_listener_pair(sv, 0, 1), EINVAL); /* not sockets */
    {
        int a = dk_listen_tcp("127.0.0.1:0", 0, DK_LISTEN_REUSEPORT), b, c, port;
        char addr[64];
        CHECK(a >= 0);
        port = dk_socket_port(a);
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        b = dk_listen_tcp(addr, 0, DK_LISTEN_REUSEPORT);
        c = dk_listen_tcp("127.0.0.1:0", 0, DK_LISTEN_REUSEPORT); /* another address */
        CHECK(b >= 0 && c >= 0);
        dk_supervisor *sv2 = NULL;
        CHECK_EQ(dk_supervisor_new(&sv2), 0); /* the 62-listener check below needs sv's room */
        CHECK_ERR(dk_supervisor_add_listener_pair(sv2, a, a), EINVAL);
        CHECK_ERR(dk_supervisor_add_listener_pair(sv2, a, c), EINVAL);
        CHECK_EQ(dk_supervisor_add_listener_pair(sv2, a, b), 0);
        CHECK_EQ(dk_supervisor_free(sv2), 0);
        /* per-slot listeners: n such sockets, one per worker slot; not with pairs */
        {
            int ab[2] = { a, b }, aa[2] = { a, a }, ac[2] = { a, c }, bad[2] = { a, -1 };
            CHECK_ERR(dk_supervisor_add_listener_slots(NULL, ab, 2), EINVAL);
            CHECK_EQ(dk_supervisor_new(&sv2), 0);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, NULL, 2), EINVAL);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, ab, 0), EINVAL);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, ab, DK_SUPERVISOR_MAX_WORKERS + 1), EINVAL);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, bad, 2), EBADF);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, aa, 2), EINVAL);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, ac, 2), EINVAL);
            CHECK_EQ(dk_supervisor_add_listener_slots(sv2, ab, 2), 0);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, ab, 2), EBUSY);
            CHECK_ERR(dk_supervisor_add_listener_pair(sv2, a, b), EINVAL);
            CHECK_EQ(dk_supervisor_set_worker(sv2, dummy_worker, NULL), 0);
            CHECK_ERR(dk_supervisor_run(sv2), EINVAL); /* 1 worker, 2 sockets */
            CHECK_EQ(dk_supervisor_free(sv2), 0);
            CHECK_EQ(dk_supervisor_new(&sv2), 0);
            CHECK_EQ(dk_supervisor_add_listener_pair(sv2, a, b), 0);
            CHECK_ERR(dk_supervisor_add_listener_slots(sv2, ab, 2), EINVAL);
            CHECK_EQ(dk_supervisor_free(sv2), 0);
        }
        close(a);
        close(b);
        close(c);
    }
    /* stop signal, restart policy, flags, stdio, exit status */
    CHECK_ERR(dk_supervisor_set_stop_signal(NULL, SIGTERM), EINVAL);
    CHECK_ERR(dk_supervisor_set_stop_signal(sv, 0), EINVAL);
    CHECK_ERR(dk_supervisor_set_stop_signal(sv, SIGKILL), EINVAL);
    CHECK_ERR(dk_supervisor_set_stop_signal(sv, SIGSEGV), EINVAL);
    CHECK_ERR(dk_supervisor_set_stop_signal(sv, 65), EINVAL);
    CHECK_EQ(dk_supervisor_set_stop_signal(sv, SIGQUIT), 0);
    CHECK_ERR(dk_supervisor_set_restart(NULL, 0, 0, 0), EINVAL);
    CHECK_ERR(dk_supervisor_set_restart(sv, 0, 65, 1000), EINVAL);
    CHECK_ERR(dk_supervisor_set_restart(sv, 0, 3, 0), EINVAL);
    CHECK_EQ(dk_supervisor_set_restart(sv, 0, 0, 0), 0);
    CHECK_EQ(dk_supervisor_set_restart(sv, UINT32_MAX, 64, UINT32_MAX), 0);
    CHECK_ERR(dk_supervisor_set_flags(NULL, 0), EINVAL);
    CHECK_ERR(dk_supervisor_set_flags(sv, 8), EINVAL);
    CHECK_ERR(dk_supervisor_set_flags(sv, 0x80000000u), EINVAL);
    CHECK_EQ(dk_supervisor_set_flags(sv, DK_SUPERVISOR_REAP_ALL | DK_SUPERVISOR_SIGNAL_GROUP), 0);
    CHECK_EQ(dk_supervisor_set_flags(sv, 0), 0);
    CHECK_ERR(dk_supervisor_set_stdio(NULL, NULL, NULL), EINVAL);
    CHECK_EQ(dk_supervisor_set_stdio(sv, NULL, NULL), 0);
    CHECK_ERR(dk_supervisor_exit_status(NULL), EINVAL);
    CHECK_EQ(dk_supervisor_exit_status(sv), 0);

    /* run without a worker entry or program: -EINVAL, nothing forked (in a child in case
     * it would start supervising) */
    pid = dk_test_fork();
    if (pid == 0) {
        CHECK_ERR(dk_supervisor_run(sv), EINVAL);
        CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1); /* no child was started */
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* at most 62 listeners */
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    for (i = 0; i < 63; i++)
        fds[i] = fcntl(s, F_DUPFD_CLOEXEC, 0);
    for (i = 0; i < 62; i++) {
        r = dk_supervisor_add_listener(sv, fds[i]);
        if (r != 0) {
            CHECK_MSG(r == 0, "add_listener #%d = %d", i + 1, r);
            break;
        }
    }
    CHECK_ERR(dk_supervisor_add_listener(sv, fds[62]), ENOSPC);
    CHECK_EQ(dk_supervisor_free(sv), 0);
    for (i = 0; i < 63; i++)
        close(fds[i]);
    close(s);
}

int main(void)
{
    dk_test_init("badinput", 60);
    tmp = dk_test_tmpdir();
    memset(long_path, 'a', sizeof long_path - 1);
    memcpy(long_path, "/tmp/", 5);
    long_path[sizeof long_path - 1] = '\0';
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    test_version_strerror();
    test_pidfile();
    test_privileges();
    test_rlimit();
    test_fds();
    test_log();
    test_signals();
    test_listen();
    test_listen_fds();
    test_notify();
    test_fd_passing();
    test_daemonize();
    test_ready_fail();
    test_exec();
    test_supervisor();
    return dk_test_done();
}
