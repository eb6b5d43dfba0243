/* Resource limits, log files, fd helpers, listeners, socket activation, sd_notify and fd
 * passing. Whatever changes process-wide state for good (limits, stdio, fds 3 and 4, the
 * environment) runs in a forked child. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>

static const char *tmp;

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static int is_cloexec(int fd)
{
    int f = fcntl(fd, F_GETFD);
    return f >= 0 && (f & FD_CLOEXEC);
}

static int same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* ---- rlimits ------------------------------------------------------------------------- */

/* Whether plain setrlimit can lower the hard RLIMIT_NOFILE here (tried in a child). */
static int lowering_hard_nofile_works(void)
{
    int st = 0;
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl;
        rl.rlim_cur = 100;
        rl.rlim_max = 200;
        _exit(setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : 1);
    }
    if (c < 0 || waitpid(c, &st, 0) != c)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_rlimits(void)
{
    pid_t c;
    dk_test_set_stage("rlimits");
    c = dk_test_fork();
    if (c == 0) {
        struct rlimit rl;
        uint64_t soft = 0, hard = 0, got = 0;
        CHECK_EQ(dk_rlimit_get(DK_RLIMIT_NOFILE, &soft, &hard), 0);
        CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
        CHECK_EQ(soft, rl.rlim_cur);
        CHECK_EQ(hard, rl.rlim_max);
        /* raise beyond the hard limit: capped */
        CHECK_EQ(dk_rlimit_nofile(hard + 100000, &got), 0);
        CHECK_EQ(got, hard);
        CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
        CHECK_EQ(rl.rlim_cur, hard);
        /* lower */
        CHECK_EQ(dk_rlimit_nofile(256, &got), 0);
        CHECK_EQ(got, 256);
        CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
        CHECK_EQ(rl.rlim_cur, 256);
        CHECK_EQ(rl.rlim_max, hard); /* the hard limit is left alone */
        /* set both (when this environment lets anyone lower the hard limit: valgrind
         * refuses it to every caller, as it keeps fds of its own above the limit) */
        if (lowering_hard_nofile_works()) {
            CHECK_EQ(dk_rlimit_set(DK_RLIMIT_NOFILE, 100, 200), 0);
            CHECK_EQ(dk_rlimit_get(DK_RLIMIT_NOFILE, &soft, &hard), 0);
            CHECK_EQ(soft, 100);
            CHECK_EQ(hard, 200);
            CHECK_EQ(dk_rlimit_nofile(1000, &got), 0);
            CHECK_EQ(got, 200);
        } else {
            dk_test_log("rlimits: setrlimit(NOFILE, 100/200) refused here (valgrind?): "
                        "dk_rlimit_set of the hard limit not checked\n");
        }
        /* infinity round-trips */
        CHECK_EQ(dk_rlimit_set(DK_RLIMIT_AS, DK_RLIM_INFINITY, DK_RLIM_INFINITY), 0);
        CHECK_EQ(dk_rlimit_get(DK_RLIMIT_AS, &soft, &hard), 0);
        CHECK(soft == DK_RLIM_INFINITY && hard == DK_RLIM_INFINITY);
        CHECK_EQ(getrlimit(RLIMIT_AS, &rl), 0);
        CHECK(rl.rlim_cur == RLIM_INFINITY);
        /* cores off */
        CHECK_EQ(dk_rlimit_set(DK_RLIMIT_CORE, 1000, DK_RLIM_INFINITY), 0);
        CHECK_EQ(dk_rlimit_disable_core(), 0);
        CHECK_EQ(dk_rlimit_get(DK_RLIMIT_CORE, &soft, &hard), 0);
        CHECK_EQ(soft, 0);
        CHECK_EQ(hard, 0);
        CHECK_EQ(getrlimit(RLIMIT_CORE, &rl), 0);
        CHECK(rl.rlim_cur == 0 && rl.rlim_max == 0);
        /* raising a hard limit without root */
        if (setuid(65534) == 0)
            CHECK_ERR(dk_rlimit_set(DK_RLIMIT_NOFILE, 100, 300), EPERM);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);
}

/* ---- log files ------------------------------------------------------------------------ */

static void test_log(void)
{
    char path[256], rotated[256], sub[256], subrot[256], text[4096];
    pid_t c;
    dk_test_set_stage("log open/reopen");
    snprintf(path, sizeof path, "%s/app.log", tmp);
    snprintf(rotated, sizeof rotated, "%s/app.log.1", tmp);
    snprintf(sub, sizeof sub, "%s/logs", tmp);
    snprintf(subrot, sizeof subrot, "%s/logs/app.log.1", tmp);
    c = dk_test_fork();
    if (c == 0) {
        int rfd = fcntl(2, F_DUPFD_CLOEXEC, 100);
        struct stat st;
        dk_test_report_fd(rfd);
        umask(022);
        CHECK_EQ(chdir(tmp), 0);
        /* relative: remembered as absolute */
        CHECK_EQ(dk_log_open("app.log", 0), 0);
        CHECK_EQ(chdir("/"), 0);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
        CHECK(fcntl(1, F_GETFL) & O_APPEND);
        CHECK(fcntl(2, F_GETFL) & O_APPEND);
        dk_test_write_all(1, "first out\n", 10);
        dk_test_write_all(2, "first err\n", 10);
        CHECK_EQ(rename(path, rotated), 0);
        CHECK_EQ(dk_log_reopen(), 0);
        dk_test_write_all(1, "second out\n", 11);
        dk_test_write_all(2, "second err\n", 11);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
        CHECK(access("/app.log", F_OK) != 0); /* not created relative to the new cwd */
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);
    dk_test_read_file(rotated, text, sizeof text);
    CHECK_STREQ(text, "first out\nfirst err\n");
    dk_test_read_file(path, text, sizeof text);
    CHECK_STREQ(text, "second out\nsecond err\n");

    /* stdout only; a failed reopen leaves the old file in place */
    dk_test_set_stage("log stdout only, failed reopen");
    CHECK_EQ(mkdir(sub, 0755), 0);
    c = dk_test_fork();
    if (c == 0) {
        char lp[300];
        struct stat before, after;
        snprintf(lp, sizeof lp, "%s/app.log", sub);
        fstat(2, &before);
        CHECK_EQ(dk_log_open(lp, DK_LOG_STDOUT), 0);
        fstat(2, &after);
        CHECK(before.st_ino == after.st_ino && before.st_dev == after.st_dev);
        dk_test_write_all(1, "one\n", 4);
        CHECK_EQ(rename(lp, subrot), 0);
        /* the directory goes away: reopen fails, stdout still on the old file */
        {
            char moved[300];
            snprintf(moved, sizeof moved, "%s/moved.log", tmp);
            CHECK_EQ(rename(subrot, moved), 0);
            CHECK_EQ(rmdir(sub), 0);
            CHECK_ERR(dk_log_reopen(), ENOENT);
            dk_test_write_all(1, "two\n", 4);
        }
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);
    {
        char moved[300];
        snprintf(moved, sizeof moved, "%s/moved.log", tmp);
        dk_test_read_file(moved, text, sizeof text);
        CHECK_STREQ(text, "one\ntwo\n");
    }
}

/* ---- fds ------------------------------------------------------------------------------ */

static void test_fds(void)
{
    pid_t c;
    int fd;
    dk_test_set_stage("cloexec");
    fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(!is_cloexec(fd));
    CHECK_EQ(dk_fd_set_cloexec(fd, 1), 0);
    CHECK(is_cloexec(fd));
    CHECK_EQ(dk_fd_set_cloexec(fd, 1), 0);
    CHECK(is_cloexec(fd));
    CHECK_EQ(dk_fd_set_cloexec(fd, 0), 0);
    CHECK(!is_cloexec(fd));
    CHECK_EQ(dk_fd_set_cloexec(fd, 42), 0); /* any non-zero */
    CHECK(is_cloexec(fd));
    close(fd);

    dk_test_set_stage("close_from");
    c = dk_test_fork();
    if (c == 0) {
        char pidpath[300];
        dk_pidfile *pf = NULL;
        int keep[3] = {12, 15, 500};
        int i, low, pffd, r;
        int32_t pid;
        low = open("/dev/null", O_RDONLY);
        dup2(low, 9);
        for (i = 10; i <= 20; i++)
            dup2(low, i);
        dup2(low, 500);
        snprintf(pidpath, sizeof pidpath, "%s/close_from.pid", tmp);
        r = dk_pidfile_open(pidpath, 0, 0, &pf, NULL);
        CHECK_EQ(r, 0);
        pffd = r == 0 ? dk_pidfile_fd(pf) : -1;
        if (r == 0)
            CHECK_EQ(dk_pidfile_write(pf), 0);
        /* the pid file's fd is the library's own: kept although not listed */
        CHECK_EQ(dk_fd_close_from(10, keep, 3), 0);
        CHECK(fcntl(9, F_GETFD) >= 0);
        for (i = 10; i <= 20; i++) {
            int open_now = fcntl(i, F_GETFD) >= 0;
            if (i == 12 || i == 15 || i == pffd)
                CHECK_MSG(open_now, "fd %d was closed (kept)", i);
            else
                CHECK_MSG(!open_now, "fd %d still open", i);
        }
        CHECK(fcntl(500, F_GETFD) >= 0);
        if (pffd >= 0) {
            CHECK(fcntl(pffd, F_GETFD) >= 0);
            CHECK_EQ(dk_pidfile_check(pidpath, &pid), DK_PIDFILE_RUNNING);
            CHECK_EQ(pid, getpid());
        }
        CHECK(fcntl(0, F_GETFD) >= 0 && fcntl(low, F_GETFD) >= 0);
        CHECK_EQ(dk_fd_close_from(10, NULL, 0), 0);
        CHECK(fcntl(12, F_GETFD) < 0 && fcntl(500, F_GETFD) < 0);
        if (pffd >= 10)
            CHECK(fcntl(pffd, F_GETFD) >= 0);
        if (pf)
            CHECK_EQ(dk_pidfile_remove(pf), 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);
}

/* ---- listeners ------------------------------------------------------------------------ */

static int connect_tcp(int port)
{
    struct sockaddr_in a;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return -1;
    }
    return s;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a;
    socklen_t len;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (path[0] == '@') {
        memcpy(a.sun_path + 1, path + 1, strlen(path + 1));
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    } else {
        strcpy(a.sun_path, path);
        len = sizeof a;
    }
    if (connect(s, (struct sockaddr *)&a, len) != 0) {
        close(s);
        return -1;
    }
    return s;
}

static void test_tcp(void)
{
    char name[64], expect[64];
    int fd, fd2, port, c, a, r;

    dk_test_set_stage("listen tcp");
    fd = dk_listen_tcp("127.0.0.1:0", 0, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(is_cloexec(fd));
    port = dk_socket_port(fd);
    CHECK(port > 0 && port < 65536);
    snprintf(expect, sizeof expect, "127.0.0.1:%d", port);
    r = dk_socket_name(fd, name, sizeof name);
    CHECK_STREQ(name, expect);
    CHECK_EQ(r, (int)strlen(expect));
    CHECK_ERR(dk_socket_name(fd, name, strlen(expect)), ERANGE); /* no room for the NUL */
    CHECK_EQ(dk_socket_name(fd, name, strlen(expect) + 1), (int)strlen(expect));
    {
        int acc = 0;
        socklen_t l = sizeof acc;
        CHECK(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc == 1);
    }
    c = connect_tcp(port);
    CHECK(c >= 0);
    a = accept(fd, NULL, NULL);
    CHECK(a >= 0);
    if (c >= 0)
        close(c);
    if (a >= 0)
        close(a);

    /* port in use */
    snprintf(expect, sizeof expect, "127.0.0.1:%d", port);
    fd2 = dk_listen_tcp(expect, 16, 0);
    CHECK_ERR(fd2, EADDRINUSE);
    if (fd2 >= 0)
        close(fd2);
    fd2 = dk_listen_tcp(expect, 16, DK_LISTEN_REUSEPORT);
    CHECK_ERR(fd2, EADDRINUSE); /* the first one did not ask for SO_REUSEPORT */
    if (fd2 >= 0)
        close(fd2);
    close(fd);

    /* SO_REUSEPORT on both: allowed; inherit flag */
    fd = dk_listen_tcp("127.0.0.1:0", 0, DK_LISTEN_REUSEPORT | DK_LISTEN_INHERIT);
    CHECK(fd >= 0);
    if (fd >= 0) {
        int on = 0;
        socklen_t l = sizeof on;
        CHECK(!is_cloexec(fd));
        CHECK(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &l) == 0 && on);
        snprintf(expect, sizeof expect, "127.0.0.1:%d", dk_socket_port(fd));
        fd2 = dk_listen_tcp(expect, 0, DK_LISTEN_REUSEPORT);
        CHECK(fd2 >= 0);
        if (fd2 >= 0)
            close(fd2);
        close(fd);
    }

    /* other address forms */
    fd = dk_listen_tcp("*:0", 0, 0);
    CHECK(fd >= 0);
    if (fd >= 0) {
        snprintf(expect, sizeof expect, "0.0.0.0:%d", dk_socket_port(fd));
        CHECK(dk_socket_name(fd, name, sizeof name) > 0);
        CHECK_STREQ(name, expect);
        close(fd);
    }
    fd = dk_listen_tcp(":0", 0, 0);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    fd = dk_listen_tcp("localhost:0", 0, 0);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(dk_socket_name(fd, name, sizeof name) > 0);
        CHECK(strncmp(name, "127.0.0.1:", 10) == 0 || strncmp(name, "[::1]:", 6) == 0);
        close(fd);
    }
    fd = dk_listen_tcp("[::1]:0", 0, 0);
    if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT) {
        dk_test_log("listen tcp: no IPv6 loopback here, [::1] skipped\n");
    } else {
        CHECK(fd >= 0);
        if (fd >= 0) {
            snprintf(expect, sizeof expect, "[::1]:%d", dk_socket_port(fd));
            CHECK(dk_socket_name(fd, name, sizeof name) > 0);
            CHECK_STREQ(name, expect);
            close(fd);
        }
    }
    /* not a local address */
    CHECK_ERR(dk_listen_tcp("192.0.2.1:0", 0, 0), EADDRNOTAVAIL);

    /* privileged port without root */
    {
        char buf[32];
        dk_test_read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", buf, sizeof buf);
        if (atoi(buf) > 80) {
            pid_t ch = dk_test_fork();
            if (ch == 0) {
                if (setuid(65534) == 0)
                    CHECK_ERR(dk_listen_tcp("127.0.0.1:80", 0, 0), EACCES);
                dk_test_child_exit(0);
            }
            CHECK_CHILD_OK(ch);
        }
    }
}

static void test_unix(void)
{
    char path[256], live[256], plain[256], name[256], abs_name[64], text[64];
    struct sockaddr_un a;
    struct stat st;
    int s, fd, c, acc;

    dk_test_set_stage("listen unix");
    snprintf(path, sizeof path, "%s/stale.sock", tmp);
    snprintf(live, sizeof live, "%s/live.sock", tmp);
    snprintf(plain, sizeof plain, "%s/plain.sock", tmp);

    /* a stale socket file (bound, then closed: nobody accepts) is replaced */
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, path);
    CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(s, 1), 0);
    close(s);
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    fd = dk_listen_unix(path, 0600, 0, 0);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(is_cloexec(fd));
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(dk_socket_name(fd, name, sizeof name) > 0);
        CHECK_STREQ(name, path);
        c = connect_unix(path);
        CHECK(c >= 0);
        acc = accept(fd, NULL, NULL);
        CHECK(acc >= 0);
        if (c >= 0)
            close(c);
        if (acc >= 0)
            close(acc);
        CHECK_ERR(dk_socket_port(fd), EAFNOSUPPORT);
    }

    /* a live one is refused, and keeps working */
    s = dk_listen_unix(live, 0, 0, DK_LISTEN_INHERIT);
    CHECK(s >= 0);
    if (s >= 0) {
        int fd2;
        CHECK(!is_cloexec(s));
        fd2 = dk_listen_unix(live, 0, 0, 0);
        CHECK_ERR(fd2, EADDRINUSE);
        if (fd2 >= 0)
            close(fd2);
        c = connect_unix(live);
        CHECK(c >= 0);
        acc = accept(s, NULL, NULL);
        CHECK(acc >= 0); /* the original listener got it: its file was not replaced */
        if (c >= 0)
            close(c);
        if (acc >= 0)
            close(acc);
        close(s);
    }
    /* a non-socket file is left alone */
    dk_test_write_file(plain, "precious\n");
    CHECK_ERR(dk_listen_unix(plain, 0, 0, 0), EADDRINUSE);
    dk_test_read_file(plain, text, sizeof text);
    CHECK_STREQ(text, "precious\n");

    /* 107 bytes is the longest path */
    {
        char p107[200];
        snprintf(p107, sizeof p107, "%s/", tmp);
        while (strlen(p107) < 107)
            strcat(p107, "x");
        s = dk_listen_unix(p107, 0, 0, 0);
        CHECK(s >= 0);
        if (s >= 0) {
            CHECK(dk_socket_name(s, name, sizeof name) > 0);
            CHECK_STREQ(name, p107);
            close(s);
            unlink(p107);
        }
    }

    /* abstract */
    snprintf(abs_name, sizeof abs_name, "@dk-ctest-%d", (int)getpid());
    s = dk_listen_unix(abs_name, 0, 0, 0);
    CHECK(s >= 0);
    if (s >= 0) {
        CHECK(dk_socket_name(s, name, sizeof name) > 0);
        CHECK_STREQ(name, abs_name);
        c = connect_unix(abs_name);
        CHECK(c >= 0);
        if (c >= 0)
            close(c);
        close(s);
    }
    if (fd >= 0)
        close(fd);
}

/* ---- socket activation ---------------------------------------------------------------- */

static void test_listen_fds(void)
{
    pid_t c;
    dk_test_set_stage("listen_fds");
    c = dk_test_fork();
    if (c == 0) {
        char names[64], pidbuf[32];
        int a = dk_listen_tcp("127.0.0.1:0", 0, 0);
        int b = dk_listen_tcp("127.0.0.1:0", 0, 0);
        int pa = dk_socket_port(a), pb = dk_socket_port(b);
        int ha = fcntl(a, F_DUPFD_CLOEXEC, 100), hb = fcntl(b, F_DUPFD_CLOEXEC, 100);
        close(a);
        close(b);
        dup2(ha, 3); /* dup2: not close-on-exec */
        dup2(hb, 4);
        close(ha);
        close(hb);
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());

        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        strcpy(names, "junk");
        CHECK_EQ(dk_listen_fds(0, names, sizeof names), 0);
        CHECK_STREQ(names, "");

        setenv("LISTEN_PID", "1", 1); /* another process */
        setenv("LISTEN_FDS", "2", 1);
        CHECK_EQ(dk_listen_fds(0, names, sizeof names), 0);
        CHECK(!is_cloexec(3));

        setenv("LISTEN_PID", pidbuf, 1);
        setenv("LISTEN_FDNAMES", "web:admin", 1);
        CHECK_EQ(dk_listen_fds(0, names, sizeof names), 2);
        CHECK_STREQ(names, "web:admin");
        CHECK(is_cloexec(3));
        CHECK(is_cloexec(4));
        CHECK_EQ(dk_socket_port(3), pa);
        CHECK_EQ(dk_socket_port(4), pb);
        CHECK(getenv("LISTEN_FDS") != NULL); /* kept without DK_LISTEN_FDS_UNSET */
        CHECK_EQ(dk_listen_fds(0, NULL, 0), 2);

        unsetenv("LISTEN_FDNAMES");
        CHECK_EQ(dk_listen_fds(DK_LISTEN_FDS_UNSET, names, sizeof names), 2);
        CHECK_STREQ(names, "");
        CHECK(getenv("LISTEN_PID") == NULL);
        CHECK(getenv("LISTEN_FDS") == NULL);
        CHECK(getenv("LISTEN_FDNAMES") == NULL);
        CHECK_EQ(dk_listen_fds(0, names, sizeof names), 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);
}

/* ---- sd_notify ------------------------------------------------------------------------ */

static int dgram_bind(const char *path)
{
    struct sockaddr_un a;
    socklen_t len;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (path[0] == '@') {
        memcpy(a.sun_path + 1, path + 1, strlen(path + 1));
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    } else {
        strcpy(a.sun_path, path);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    }
    if (bind(s, (struct sockaddr *)&a, len) != 0) {
        close(s);
        return -1;
    }
    return s;
}

static const char *recv_text(int s, char *buf, size_t len)
{
    ssize_t n = recv(s, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_notify(void)
{
    char path[256], abs_name[64], buf[512];
    uint64_t usec = 0;
    int s, r;

    dk_test_set_stage("notify path");
    snprintf(path, sizeof path, "%s/notify.sock", tmp);
    s = dgram_bind(path);
    CHECK(s >= 0);
    if (s >= 0) {
        setenv("NOTIFY_SOCKET", path, 1);
        CHECK_EQ(dk_notify("READY=1"), 1);
        CHECK_STREQ(recv_text(s, buf, sizeof buf), "READY=1");
        CHECK_EQ(dk_notify("STATUS=serving\nREADY=1"), 1);
        CHECK_STREQ(recv_text(s, buf, sizeof buf), "STATUS=serving\nREADY=1");
        CHECK_EQ(dk_notify_stopping(), 1);
        CHECK_STREQ(recv_text(s, buf, sizeof buf), "STOPPING=1");
        CHECK_EQ(dk_notify_reloading(), 1);
        recv_text(s, buf, sizeof buf);
        {
            unsigned long long mono = 0;
            struct timespec ts;
            const char *m = strstr(buf, "MONOTONIC_USEC=");
            long long now;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            now = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
            CHECK_CONTAINS(buf, "RELOADING=1");
            CHECK(m != NULL && sscanf(m, "MONOTONIC_USEC=%llu", &mono) == 1);
            CHECK_MSG(mono > 0 && (long long)mono <= now && now - (long long)mono < 5000000,
                      "MONOTONIC_USEC=%llu, now %lld", mono, now);
        }
        /* dk_ready outside a daemon: READY=1 to NOTIFY_SOCKET */
        CHECK_EQ(dk_ready(), 0);
        CHECK_STREQ(recv_text(s, buf, sizeof buf), "READY=1");
        close(s);
        unlink(path);
        r = dk_notify("READY=1");
        CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED, "nobody listening: %d", r);
    }

    dk_test_set_stage("notify abstract");
    snprintf(abs_name, sizeof abs_name, "@dk-ctest-notify-%d", (int)getpid());
    s = dgram_bind(abs_name);
    CHECK(s >= 0);
    if (s >= 0) {
        setenv("NOTIFY_SOCKET", abs_name, 1);
        CHECK_EQ(dk_notify("READY=1"), 1);
        CHECK_STREQ(recv_text(s, buf, sizeof buf), "READY=1");
        close(s);
        r = dk_notify("READY=1");
        CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED, "nobody listening (abstract): %d", r);
    }
    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ(dk_notify("READY=1"), 0);

    dk_test_set_stage("watchdog");
    {
        char pidbuf[32];
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
        setenv("WATCHDOG_USEC", "5000000", 1);
        unsetenv("WATCHDOG_PID");
        CHECK_EQ(dk_watchdog_usec(&usec), 1);
        CHECK_EQ(usec, 5000000);
        setenv("WATCHDOG_PID", pidbuf, 1);
        usec = 0;
        CHECK_EQ(dk_watchdog_usec(&usec), 1);
        CHECK_EQ(usec, 5000000);
        setenv("WATCHDOG_PID", "1", 1);
        CHECK_EQ(dk_watchdog_usec(&usec), 0);
        unsetenv("WATCHDOG_PID");
        unsetenv("WATCHDOG_USEC");
        CHECK_EQ(dk_watchdog_usec(&usec), 0);
    }
}

/* ---- fd passing ----------------------------------------------------------------------- */

static void test_fd_passing(void)
{
    int sp[2], p[2], f, s, fds[8], i, before;
    uint8_t buf[64];
    size_t n;
    char path[256];
    pid_t c;

    dk_test_set_stage("fd passing");
    CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    snprintf(path, sizeof path, "%s/passed.txt", tmp);
    dk_test_write_file(path, "file content\n");
    f = open(path, O_RDONLY | O_CLOEXEC);
    s = dk_listen_tcp("127.0.0.1:0", 0, 0);
    fds[0] = p[0];
    fds[1] = f;
    fds[2] = s;

    CHECK_EQ(dk_fd_send(sp[0], (const uint8_t *)"hello", 5, fds, 3), 5);
    memset(fds, -1, sizeof fds);
    n = 8;
    CHECK_EQ(dk_fd_recv(sp[1], buf, sizeof buf, fds, &n), 5);
    CHECK_EQ(n, 3);
    CHECK(memcmp(buf, "hello", 5) == 0);
    if (n == 3) {
        char txt[32];
        ssize_t r;
        for (i = 0; i < 3; i++)
            CHECK_MSG(is_cloexec(fds[i]), "received fd %d not close-on-exec", fds[i]);
        CHECK(same_file(fds[0], p[0]));
        CHECK(same_file(fds[1], f));
        CHECK(same_file(fds[2], s));
        dk_test_write_all(p[1], "via pipe", 8);
        r = read(fds[0], txt, sizeof txt - 1);
        txt[r > 0 ? r : 0] = '\0';
        CHECK_STREQ(txt, "via pipe");
        CHECK_EQ(dk_socket_port(fds[2]), dk_socket_port(s));
        for (i = 0; i < 3; i++)
            close(fds[i]);
    }

    /* no fds */
    CHECK_EQ(dk_fd_send(sp[0], (const uint8_t *)"x", 1, NULL, 0), 1);
    n = 8;
    CHECK_EQ(dk_fd_recv(sp[1], buf, sizeof buf, fds, &n), 1);
    CHECK_EQ(n, 0);

    /* fd truncation: 3 sent, room for 2: -EMSGSIZE, and the ones that arrived are closed */
    fds[0] = p[0];
    fds[1] = f;
    fds[2] = s;
    CHECK_EQ(dk_fd_send(sp[0], (const uint8_t *)"abc", 3, fds, 3), 3);
    before = count_fds();
    n = 2;
    CHECK_ERR(dk_fd_recv(sp[1], buf, sizeof buf, fds + 4, &n), EMSGSIZE);
    CHECK_EQ(count_fds(), before);
    /* 2 sent, room for 1 (the control buffer's alignment padding has room for a second) */
    fds[0] = p[0];
    fds[1] = f;
    CHECK_EQ(dk_fd_send(sp[0], (const uint8_t *)"abc", 3, fds, 2), 3);
    n = 1;
    {
        int r = dk_fd_recv(sp[1], buf, sizeof buf, fds + 4, &n);
        CHECK_ERR(r, EMSGSIZE);
        if (r >= 0 && n == 1)
            close(fds[4]); /* (what arrived, when it claims success) */
    }
    CHECK_EQ(count_fds(), before);
    /* and with room for none */
    fds[0] = p[0];
    CHECK_EQ(dk_fd_send(sp[0], (const uint8_t *)"abc", 3, fds, 1), 3);
    n = 0;
    CHECK_ERR(dk_fd_recv(sp[1], buf, sizeof buf, NULL, &n), EMSGSIZE);
    CHECK_EQ(count_fds(), before);

    /* payload truncation */
    fds[0] = p[0];
    CHECK_EQ(dk_fd_send(sp[0], (const uint8_t *)"0123456789abcdef", 16, fds, 1), 16);
    n = 4;
    CHECK_ERR(dk_fd_recv(sp[1], buf, 8, fds + 4, &n), EMSGSIZE);
    CHECK_EQ(count_fds(), before);

    /* nothing to read (non-blocking), then the peer closes */
    fcntl(sp[1], F_SETFL, O_NONBLOCK);
    n = 4;
    CHECK_ERR(dk_fd_recv(sp[1], buf, sizeof buf, fds, &n), EAGAIN);
    close(sp[0]);
    n = 4;
    CHECK_EQ(dk_fd_recv(sp[1], buf, sizeof buf, fds, &n), 0);
    CHECK_EQ(n, 0);

    /* sending to a closed peer: -EPIPE, not a SIGPIPE death (in a child, to see) */
    c = dk_test_fork();
    if (c == 0) {
        int q[2];
        signal(SIGPIPE, SIG_DFL);
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, q), 0);
        close(q[1]);
        CHECK_ERR(dk_fd_send(q[0], (const uint8_t *)"x", 1, NULL, 0), EPIPE);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);

    /* the most fds at once: 253 */
    {
        static int many[253], got[253];
        int sp2[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp2), 0);
        for (i = 0; i < 253; i++)
            many[i] = p[1];
        CHECK_EQ(dk_fd_send(sp2[0], (const uint8_t *)"m", 1, many, 253), 1);
        n = 253;
        CHECK_EQ(dk_fd_recv(sp2[1], buf, sizeof buf, got, &n), 1);
        CHECK_EQ(n, 253);
        for (i = 0; i < (int)n; i++)
            close(got[i]);
        close(sp2[0]);
        close(sp2[1]);
    }
    close(sp[1]);
    close(p[0]);
    close(p[1]);
    close(f);
    close(s);
}

int main(void)
{
    dk_test_init("misc", 60);
    tmp = dk_test_tmpdir();
    test_rlimits();
    test_log();
    test_fds();
    test_tcp();
    test_unix();
    test_listen_fds();
    test_notify();
    test_fd_passing();
    return dk_test_done();
}
