/* test_hardening.c — the attacks and bad arguments of issue 13, through the C ABI, as root
 * (RELIABILITY.md, "Attacks tried from outside"):
 *
 *  1. a stale PID file whose lock somebody else took (nobody, or a root process that is not
 *     the pid in the file): check says FOREIGN, kill and open say -EBUSY, nobody signalled;
 *     checked as nobody against root's processes: -EACCES, nobody signalled;
 *  3. programs the library starts (re-exec, upgrade, a supervisor's exec'd worker) begin
 *     with default dispositions and an empty mask, whatever the caller ignored or blocked;
 *  4. the synchronous faults are refused, and a real fault then crashes instead of spinning;
 *  6. modes above 07777, umasks above 0777, malformed names, a bare uid without a group,
 *     uid 0 as the target;
 *  7. DK_SIGNAL_NO_RESTART: a blocking read fails with EINTR; without it, it is restarted.
 *
 * Every process is forked by the test and reaped by pid. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>
#include <grp.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/resource.h>

static const char *dir;

/* A child that sleeps (an unrelated live process). */
static pid_t sleeper(void)
{
    pid_t pid = dk_test_fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

/* A child that takes path's exclusive flock (as uid/gid when uid >= 0) and holds it. */
static pid_t locker(const char *path, int uid)
{
    int ready[2];
    char c = 0;
    pid_t pid;
    if (pipe(ready) != 0)
        return -1;
    pid = dk_test_fork();
    if (pid == 0) {
        int fd;
        close(ready[0]);
        if (uid >= 0 && (setgroups(0, NULL) != 0 || setgid((gid_t)uid) != 0 ||
                         setuid((uid_t)uid) != 0))
            dk_test_child_exit(2);
        fd = open(path, O_RDONLY);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
            dk_test_child_exit(3);
        c = 1;
        if (write(ready[1], &c, 1) != 1)
            dk_test_child_exit(4);
        for (;;)
            pause();
    }
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1 || c != 1) {
        close(ready[0]);
        return -1;
    }
    close(ready[0]);
    return pid;
}

static int alive(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

static void end(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    dk_test_wait(pid, 5000, &st);
}

static void test_foreign_lock(void)
{
    char path[256], content[64];
    int uids[2] = {65534, -1}, i;

    dk_test_set_stage("foreign lock");
    snprintf(path, sizeof path, "%s/app.pid", dir);
    for (i = 0; i < 2; i++) {
        pid_t victim = sleeper(), holder;
        int32_t pid = 0;
        dk_pidfile *pf = NULL;
        char want[32];

        snprintf(want, sizeof want, "%d\n", (int)victim);
        CHECK_EQ(dk_test_write_file(path, want), 0);
        holder = locker(path, uids[i]);
        CHECK(holder > 0);

        CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_FOREIGN);
        CHECK_EQ(pid, victim);
        pid = 0;
        CHECK_EQ(dk_pidfile_kill(path, SIGTERM, &pid), DK_ERR_PIDFILE_FOREIGN);
        CHECK_EQ(pid, victim);
        CHECK_EQ(dk_pidfile_kill(path, SIGKILL, NULL), DK_ERR_PIDFILE_FOREIGN);
        CHECK_EQ(dk_pidfile_kill(path, 0, NULL), DK_ERR_PIDFILE_FOREIGN);
        pid = 0;
        CHECK_EQ(dk_pidfile_open(path, 0, 0, &pf, &pid), DK_ERR_PIDFILE_FOREIGN);
        CHECK(pf == NULL);
        CHECK_EQ(pid, victim);
        dk_test_sleep_ms(100);
        CHECK_MSG(alive(victim), "the unrelated process %d was signalled (lock held by %s)",
                  (int)victim, uids[i] >= 0 ? "nobody" : "root");
        CHECK(alive(holder));
        CHECK(dk_test_read_file(path, content, sizeof content) > 0);
        CHECK_STREQ(content, want);

        /* The holder gone: a stale file again, and a new start takes it over. */
        end(holder);
        CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_STALE);
        CHECK_ERR(dk_pidfile_kill(path, SIGTERM, NULL), ESRCH);
        CHECK_EQ(dk_pidfile_open(path, 0, 0, &pf, NULL), 0);
        CHECK(alive(victim));
        dk_pidfile_close(pf);
        unlink(path);
        end(victim);
    }
}

/* As nobody, nothing can be proven about root's processes: -EACCES, nobody signalled. */
static void test_unverifiable(void)
{
    char path[256], want[32];
    pid_t victim, holder, pid;

    dk_test_set_stage("unverifiable holder");
    snprintf(path, sizeof path, "%s/root.pid", dir);
    victim = sleeper();
    snprintf(want, sizeof want, "%d\n", (int)victim);
    CHECK_EQ(dk_test_write_file(path, want), 0);
    holder = locker(path, -1); /* root holds it; the file names another root process */
    CHECK(holder > 0);
    pid = dk_test_fork();
    if (pid == 0) {
        int32_t p = 0;
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            dk_test_child_exit(2);
        CHECK_ERR(dk_pidfile_check(path, &p), EACCES);
        CHECK_ERR(dk_pidfile_kill(path, SIGTERM, &p), EACCES);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    CHECK(alive(victim));
    end(holder);
    end(victim);
    unlink(path);
}

/* The SigIgn and SigBlk lines a program wrote (via /bin/sh) into file, with glibc's own
 * signals 32 and 33 left out (libc does not let anyone change them). */
static void signal_state(const char *file, unsigned long long *ign, unsigned long long *blk)
{
    char buf[512], *p;
    *ign = *blk = ~0ULL;
    if (dk_test_read_file(file, buf, sizeof buf) <= 0)
        return;
    if ((p = strstr(buf, "SigIgn:")) != NULL)
        *ign = strtoull(p + 7, NULL, 16) & ~((1ULL << 31) | (1ULL << 32));
    if ((p = strstr(buf, "SigBlk:")) != NULL)
        *blk = strtoull(p + 7, NULL, 16) & ~((1ULL << 31) | (1ULL << 32));
}

/* Ignores PIPE and HUP, blocks USR2 and TERM: what the caller of the library may have. */
static void dirty_signal_state(void)
{
    sigset_t set;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

static void test_started_programs(void)
{
    char out[128], script[1024];
    const char *argv[4] = {"/bin/sh", "-c", script, NULL};
    unsigned long long ign, blk;
    pid_t pid;
    int st;

    dk_test_set_stage("signal state of started programs");
    /* re-exec in place */
    snprintf(out, sizeof out, "%s/reexec", dir);
    snprintf(script, sizeof script, "grep -E '^Sig(Ign|Blk)' /proc/self/status > %s", out);
    pid = dk_test_fork();
    if (pid == 0) {
        dirty_signal_state();
        dk_reexec(argv, NULL, 0, NULL, NULL);
        dk_test_child_exit(9); /* only on failure */
    }
    CHECK_EQ(dk_test_wait(pid, 10000, &st), 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    signal_state(out, &ign, &blk);
    CHECK_MSG(ign == 0, "re-exec: SigIgn %llx (PIPE/HUP ignored by the caller leaked)", ign);
    CHECK_MSG(blk == 0, "re-exec: SigBlk %llx (the caller's mask leaked)", blk);

    /* a failed re-exec puts the caller's signal state back */
    pid = dk_test_fork();
    if (pid == 0) {
        const char *nope[] = {"/nonexistent-dk/prog", NULL};
        sigset_t now;
        struct sigaction sa;
        dirty_signal_state();
        CHECK(dk_reexec(nope, NULL, 0, NULL, NULL) < 0);
        sigprocmask(SIG_SETMASK, NULL, &now);
        CHECK(sigismember(&now, SIGUSR2) && sigismember(&now, SIGTERM));
        CHECK(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
        CHECK(sigaction(SIGHUP, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* an upgrade's new generation */
    snprintf(out, sizeof out, "%s/upgrade", dir);
    snprintf(script, sizeof script, "grep -E '^Sig(Ign|Blk)' /proc/self/status > %s", out);
    pid = dk_test_fork();
    if (pid == 0) {
        char msg[128];
        dirty_signal_state();
        /* it never reports ready: the upgrade fails (exited), which is fine here */
        CHECK(dk_upgrade(argv, NULL, 0, NULL, NULL, 5000, msg, sizeof msg) < 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
    signal_state(out, &ign, &blk);
    CHECK_MSG(ign == 0, "upgrade: SigIgn %llx", ign);
    CHECK_MSG(blk == 0, "upgrade: SigBlk %llx", blk);

    /* a supervisor's exec'd worker: the master ignores SIGPIPE (as servers do) */
    snprintf(out, sizeof out, "%s/worker", dir);
    snprintf(script, sizeof script,
             "grep -E '^Sig(Ign|Blk)' /proc/self/status > %s.tmp; mv %s.tmp %s; sleep 30", out,
             out, out);
    pid = dk_test_fork();
    if (pid == 0) {
        dk_supervisor *sv = NULL;
        signal(SIGPIPE, SIG_IGN);
        CHECK_EQ(dk_supervisor_new(&sv), 0);
        CHECK_EQ(dk_supervisor_set_exec(sv, argv), 0);
        CHECK_EQ(dk_supervisor_set_graceful_timeout(sv, 500), 0);
        dk_supervisor_run(sv);
        dk_supervisor_free(sv);
        dk_test_child_exit(0);
    }
    {
        long long t0 = dk_test_now_ms();
        while (access(out, F_OK) != 0 && dk_test_now_ms() - t0 < 10000)
            dk_test_sleep_ms(20);
    }
    signal_state(out, &ign, &blk);
    CHECK_MSG(ign == 0, "exec'd worker: SigIgn %llx (the master's ignored SIGPIPE leaked)", ign);
    CHECK_MSG(blk == 0, "exec'd worker: SigBlk %llx", blk);
    kill(pid, SIGTERM);
    CHECK_CHILD_OK(pid);
}

static void test_fault_signals(void)
{
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    size_t i;
    pid_t pid;
    int st;

    dk_test_set_stage("fault signals");
    for (i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        int sigs[2] = {SIGUSR1, faults[i]};
        CHECK_ERR(dk_signal_open(&faults[i], 1), EINVAL);
        CHECK_ERR(dk_signal_open(sigs, 2), EINVAL); /* nothing registered, USR1 neither */
        CHECK_ERR(dk_signal_wait(0), EBADF);
    }
    /* A real fault after an attempt to queue it: the process must crash, not spin. (Under
     * valgrind this prints its SIGSEGV report for the child: expected.) */
    pid = dk_test_fork();
    if (pid == 0) {
        int segv = SIGSEGV;
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        (void)dk_signal_open(&segv, 1);
        *(volatile int *)(uintptr_t)8 = 1;
        dk_test_child_exit(0);
    }
    CHECK_EQ(dk_test_wait(pid, 5000, &st), 0);
    CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "a real SIGSEGV: status %#x", st);
}

static void test_bad_arguments(void)
{
    static const char *malformed[] = {" nobody", "nobody ", "no body", "nobody\n", "-1",
                                      "+65534", " 65534", "65534 ", "a:b", "a,b", "\t"};
    char path[256], sock[256];
    dk_pidfile *pf = NULL;
    size_t i;
    uint32_t uid, gid;
    pid_t pid;

    dk_test_set_stage("bad arguments");
    snprintf(path, sizeof path, "%s/mode.pid", dir);
    CHECK_ERR(dk_pidfile_open(path, 010000, 0, &pf, NULL), EINVAL);
    CHECK_ERR(dk_pidfile_open(path, 0xffffffffu, 0, &pf, NULL), EINVAL);
    CHECK(access(path, F_OK) != 0); /* nothing created */
    CHECK_EQ(dk_pidfile_open(path, 0600, 0, &pf, NULL), 0);
    dk_pidfile_close(pf);
    unlink(path);
    snprintf(sock, sizeof sock, "%s/s.sock", dir);
    CHECK_ERR(dk_listen_unix(sock, 010000, 0, 0), EINVAL);
    CHECK_ERR(dk_listen_unix(sock, 0x80000000u, 0, 0), EINVAL);
    CHECK(access(sock, F_OK) != 0);
    CHECK_ERR(dk_daemonize(DK_DAEMON_FOREGROUND | DK_DAEMON_NO_CLOSE_FDS | DK_DAEMON_NO_CHDIR |
                               DK_DAEMON_KEEP_STDIO | DK_DAEMON_NO_SIGNAL_RESET,
                           NULL, 0, NULL, 01000, 0),
              EINVAL);
    CHECK_ERR(dk_daemonize(DK_DAEMON_FOREGROUND, NULL, 0, NULL, 0x7fffffff, 0), EINVAL);

    for (i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        int r = dk_user_lookup(malformed[i], &uid, &gid);
        CHECK_MSG(r == -EINVAL, "dk_user_lookup(\"%s\") = %d, want -EINVAL", malformed[i], r);
        r = dk_group_lookup(malformed[i], &gid);
        CHECK_MSG(r == -EINVAL, "dk_group_lookup(\"%s\") = %d, want -EINVAL", malformed[i], r);
    }
    CHECK_EQ(dk_user_lookup("4242", &uid, &gid), DK_ERR_UNKNOWN_USER); /* no passwd entry */
    CHECK_EQ(dk_user_lookup("65534", &uid, &gid), 0);
    CHECK_EQ(uid, 65534);
    CHECK_EQ(dk_group_lookup("4242", &gid), 0); /* a gid needs no entry */
    CHECK_EQ(gid, 4242);

    /* Refused drops change nothing; each runs in a child (a success would stick). */
    pid = dk_test_fork();
    if (pid == 0) {
        for (i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
            int r = dk_privileges_drop(malformed[i], NULL, 0);
            CHECK_MSG(r == -EINVAL, "drop(\"%s\") = %d", malformed[i], r);
            r = dk_privileges_drop("nobody", malformed[i], 0);
            CHECK_MSG(r == -EINVAL, "drop(nobody, \"%s\") = %d", malformed[i], r);
        }
        CHECK_EQ(dk_privileges_drop("4242", NULL, 0), DK_ERR_UNKNOWN_USER);
        CHECK_ERR(dk_privileges_drop("root", NULL, 0), EINVAL);
        CHECK_ERR(dk_privileges_drop("0", "nogroup", 0), EINVAL);
        CHECK_EQ(geteuid(), 0);
        CHECK_EQ(getegid(), 0);
        /* A bare uid with an explicit group: that group alone, verified. */
        CHECK_EQ(dk_privileges_drop("4242", "nogroup", 0), 0);
        {
            uid_t r, e, s;
            gid_t gr, ge, gs, groups[4];
            CHECK(getresuid(&r, &e, &s) == 0 && r == 4242 && e == 4242 && s == 4242);
            CHECK(getresgid(&gr, &ge, &gs) == 0 && gr == 65534 && ge == 65534 && gs == 65534);
            CHECK_EQ(getgroups(4, groups), 1);
            CHECK_EQ(groups[0], 65534);
            CHECK(setuid(0) != 0);
        }
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

/* Sends SIGALRM to parent after ms, then writes one byte to fd after more_ms (if >= 0). */
static pid_t alarm_then_write(pid_t parent, long ms, int fd, long more_ms)
{
    pid_t pid = dk_test_fork();
    if (pid == 0) {
        dk_test_sleep_ms(ms);
        kill(parent, SIGALRM);
        if (more_ms >= 0) {
            dk_test_sleep_ms(more_ms);
            if (write(fd, "x", 1) != 1)
                dk_test_child_exit(1);
        }
        dk_test_child_exit(0);
    }
    return pid;
}

static void test_no_restart(void)
{
    pid_t pid;
    dk_test_set_stage("SA_RESTART or not");
    pid = dk_test_fork();
    if (pid == 0) {
        int alrm = SIGALRM, p[2];
        char c;
        ssize_t n;
        pid_t helper;
        signal(SIGALRM, SIG_IGN);
        CHECK(pipe(p) == 0);
        /* without SA_RESTART: the read fails with EINTR at the signal */
        CHECK(dk_signal_open_flags(&alrm, 1, DK_SIGNAL_NO_RESTART) >= 0);
        helper = alarm_then_write(getpid(), 200, p[1], -1);
        n = read(p[0], &c, 1);
        CHECK_MSG(n < 0 && errno == EINTR, "read = %zd (errno %d), want EINTR", n, errno);
        CHECK_EQ(dk_signal_next(), SIGALRM);
        CHECK_CHILD_OK(helper);
        /* registered again with flags 0: SA_RESTART, the read is restarted and gets data */
        CHECK(dk_signal_open_flags(&alrm, 1, 0) >= 0);
        helper = alarm_then_write(getpid(), 200, p[1], 300);
        n = read(p[0], &c, 1);
        CHECK_MSG(n == 1, "read = %zd (errno %d), want the byte after a restart", n, errno);
        CHECK_EQ(dk_signal_next(), SIGALRM);
        CHECK_CHILD_OK(helper);
        /* closing restores what was there before the first registration */
        CHECK_EQ(dk_signal_close(), 0);
        {
            struct sigaction sa;
            CHECK(sigaction(SIGALRM, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
        }
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);
}

int main(void)
{
    dk_test_init("test_hardening", 90);
    if (geteuid() != 0) {
        if (getenv("CI") != NULL && strcmp(getenv("CI"), "true") == 0) {
            dk_test_log("test_hardening: needs root (CI=true)\n");
            return 1;
        }
        printf("skipping test_hardening: not root\n");
        return 0;
    }
    dir = dk_test_tmpdir();
    chmod(dir, 0755); /* nobody opens the PID files in it */
    test_foreign_lock();
    test_unverifiable();
    test_started_programs();
    test_fault_signals();
    test_bad_arguments();
    test_no_restart();
    return dk_test_done();
}
