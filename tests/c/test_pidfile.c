/* PID files: the lock decides. Races between 32 processes, SIGKILLed owners, symlinks and
 * FIFOs at the path, garbage content, never signalling a process that does not hold the
 * lock, and removal by the owner only. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <poll.h>
#include <stdint.h>

#define RACERS 32
#define ROUNDS 50

static const char *tmp;

struct racer_rec {
    int32_t pid;
    int32_t rc;
    int32_t other;
    int32_t write_rc;
};

/* One round: RACERS children released at once try to open `path`. The owner writes its
 * pid at once and holds the file until the round ends, then removes it (even rounds) or
 * just closes it, leaving a stale file (odd rounds). Returns the number of anomalies. */
static int race_round(const char *path, int round)
{
    int start[2], res[2], end[2], i, got = 0, owners = 0, good_losers = 0, bad = 0;
    pid_t kids[RACERS], owner = 0;
    struct racer_rec recs[RACERS];
    int32_t cpid = 0;

    if (pipe2(start, O_CLOEXEC) || pipe2(res, O_CLOEXEC) || pipe2(end, O_CLOEXEC)) {
        CHECK_MSG(0, "pipe: %s", strerror(errno));
        return 1;
    }
    for (i = 0; i < RACERS; i++) {
        kids[i] = dk_test_fork();
        if (kids[i] == 0) {
            struct racer_rec r;
            dk_pidfile *pf = NULL;
            char c;
            close(start[1]);
            close(res[0]);
            close(end[1]);
            while (read(start[0], &c, 1) < 0 && errno == EINTR)
                ;
            memset(&r, 0, sizeof r);
            r.pid = getpid();
            r.rc = dk_pidfile_open(path, 0, 0, &pf, &r.other);
            r.write_rc = r.rc == 0 ? dk_pidfile_write(pf) : 0;
            dk_test_write_all(res[1], (const char *)&r, sizeof r);
            if (r.rc == 0) {
                int rr;
                while (read(end[0], &c, 1) < 0 && errno == EINTR)
                    ;
                rr = (round % 2 == 0) ? dk_pidfile_remove(pf) : dk_pidfile_close(pf);
                _exit(rr == 0 ? 0 : 10);
            }
            _exit(0);
        }
        if (kids[i] < 0) {
            CHECK_MSG(0, "fork: %s", strerror(errno));
            break;
        }
    }
    close(start[0]);
    close(res[1]);
    close(end[0]);
    close(start[1]); /* go */
    {
        long long deadline = dk_test_now_ms() + 10000;
        size_t have = 0;
        char *p = (char *)recs;
        while (have < sizeof recs && dk_test_now_ms() < deadline) {
            struct pollfd pfd;
            ssize_t n;
            pfd.fd = res[0];
            pfd.events = POLLIN;
            if (poll(&pfd, 1, 100) <= 0)
                continue;
            n = read(res[0], p + have, sizeof recs - have);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        got = (int)(have / sizeof recs[0]);
    }
    close(res[0]);
    for (i = 0; i < got; i++)
        if (recs[i].rc == 0) {
            owners++;
            owner = recs[i].pid;
            if (recs[i].write_rc != 0) {
                bad++;
                dk_test_log("round %d: owner %d: dk_pidfile_write = %d\n", round, recs[i].pid,
                            recs[i].write_rc);
            }
        }
    for (i = 0; i < got; i++) {
        if (recs[i].rc == 0)
            continue;
        if (recs[i].rc == -EEXIST && owners == 1 && recs[i].other == owner)
            good_losers++;
        else if (bad++ < 5)
            dk_test_log("round %d: racer %d: rc %d (%s), other pid %d (owner %d)\n", round,
                        recs[i].pid, recs[i].rc, strerror(-recs[i].rc), recs[i].other, owner);
    }
    if (got != RACERS || owners != 1 || good_losers != RACERS - 1) {
        dk_test_log("round %d: %d reports, %d owners, %d losers with -EEXIST and the owner's "
                    "pid\n", round, got, owners, good_losers);
        bad++;
    }
    /* while the owner holds it */
    if (owners == 1) {
        int r = dk_pidfile_check(path, &cpid);
        if (r != DK_PIDFILE_RUNNING || cpid != owner) {
            dk_test_log("round %d: check = %d pid %d, want RUNNING pid %d\n", round, r, cpid,
                        owner);
            bad++;
        }
    }
    close(end[1]); /* the round ends */
    for (i = 0; i < RACERS; i++) {
        int st = 0;
        if (kids[i] <= 0)
            continue;
        if (dk_test_wait(kids[i], 10000, &st) != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            dk_test_log("round %d: racer %d ended with status 0x%x (%s)\n", round, kids[i], st,
                        kids[i] == owner ? "owner: remove/close failed" : "loser");
            bad++;
        }
    }
    if (owners == 1) {
        int r = dk_pidfile_check(path, &cpid);
        if (round % 2 == 0 && r != -ENOENT) {
            dk_test_log("round %d: after the owner removed it: check = %d\n", round, r);
            bad++;
        }
        if (round % 2 == 1 && (r != DK_PIDFILE_STALE || cpid != owner)) {
            dk_test_log("round %d: after the owner closed it: check = %d pid %d, want STALE %d\n",
                        round, r, cpid, owner);
            bad++;
        }
    }
    return bad;
}

static void test_race(void)
{
    char path[256];
    int round, bad_rounds = 0;
    long long t0 = dk_test_now_ms();
    dk_test_set_stage("race");
    snprintf(path, sizeof path, "%s/race.pid", tmp);
    for (round = 0; round < ROUNDS; round++) {
        int bad = race_round(path, round);
        if (bad)
            bad_rounds++;
        CHECK_MSG(bad == 0, "round %d had %d anomalies (see above)", round, bad);
        if (bad_rounds >= 5) {
            dk_test_log("race: giving up after 5 bad rounds\n");
            break;
        }
    }
    dk_test_log("race: %d rounds of %d processes in %lld ms\n", round, RACERS,
                dk_test_now_ms() - t0);
    unlink(path);
}

/* A child that opens `path`, writes its pid (unless nowrite) and holds it; returns its pid
 * once it holds the lock, or -1. */
static pid_t holder(const char *path, int nowrite)
{
    int p[2];
    char c = 0;
    pid_t pid;
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid = dk_test_fork();
    if (pid == 0) {
        dk_pidfile *pf = NULL;
        int r = dk_pidfile_open(path, 0, 0, &pf, NULL);
        if (r == 0 && !nowrite)
            r = dk_pidfile_write(pf);
        c = r == 0 ? 'y' : 'n';
        dk_test_write_all(p[1], &c, 1);
        for (;;)
            pause();
    }
    close(p[1]);
    if (pid < 0 || read(p[0], &c, 1) != 1 || c != 'y') {
        close(p[0]);
        if (pid > 0) {
            kill(pid, SIGKILL);
            dk_test_wait(pid, 5000, NULL);
        }
        return -1;
    }
    close(p[0]);
    return pid;
}

static void test_kill9_owner(void)
{
    char path[256];
    dk_pidfile *pf = NULL;
    int32_t pid = 0;
    pid_t h;
    long long t0;
    int r, st = 0;

    dk_test_set_stage("owner killed with SIGKILL");
    snprintf(path, sizeof path, "%s/kill9.pid", tmp);
    h = holder(path, 0);
    CHECK(h > 0);
    if (h <= 0)
        return;
    CHECK_ERR(dk_pidfile_open(path, 0, 0, &pf, &pid), EEXIST);
    CHECK_EQ(pid, h);
    CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_RUNNING);
    CHECK_EQ(pid, h);
    kill(h, SIGKILL);
    dk_test_wait(h, 5000, &st);
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_STALE);
    CHECK_EQ(pid, h); /* the stale pid */
    t0 = dk_test_now_ms();
    r = dk_pidfile_open(path, 0, 0, &pf, &pid);
    CHECK_EQ(r, 0);
    CHECK_MSG(dk_test_now_ms() - t0 < 200, "took %lld ms", dk_test_now_ms() - t0);
    if (r == 0) {
        char txt[64], expect[64];
        CHECK_EQ(dk_pidfile_write(pf), 0);
        dk_test_read_file(path, txt, sizeof txt);
        snprintf(expect, sizeof expect, "%d\n", (int)getpid());
        CHECK_STREQ(txt, expect); /* truncated and rewritten */
        CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_RUNNING);
        CHECK_EQ(pid, getpid());
        CHECK_EQ(dk_pidfile_remove(pf), 0);
    }
}

static void test_symlink_fifo_dir(void)
{
    char path[256], target[256], fifo[256], dir[256], dangling[256];
    dk_pidfile *pf = NULL;
    int32_t pid = 7;
    long long t0;
    struct stat st;

    dk_test_set_stage("symlink");
    snprintf(path, sizeof path, "%s/link.pid", tmp);
    snprintf(target, sizeof target, "%s/target.pid", tmp);
    snprintf(dangling, sizeof dangling, "%s/dangling.pid", tmp);
    snprintf(fifo, sizeof fifo, "%s/fifo.pid", tmp);
    snprintf(dir, sizeof dir, "%s/dir.pid", tmp);
    dk_test_write_file(target, "1\n");
    CHECK_EQ(symlink(target, path), 0);
    CHECK_EQ(symlink("/nonexistent/dk-target", dangling), 0);
    alarm(5);
    t0 = dk_test_now_ms();
    CHECK_ERR(dk_pidfile_open(path, 0, 0, &pf, &pid), ELOOP);
    CHECK(pf == NULL);
    CHECK_ERR(dk_pidfile_open(dangling, 0, 0, &pf, &pid), ELOOP);
    CHECK_ERR(dk_pidfile_check(path, &pid), ELOOP);
    CHECK_ERR(dk_pidfile_kill(path, 0, &pid), ELOOP);
    CHECK(dk_test_now_ms() - t0 < 2000);
    {
        char txt[16];
        dk_test_read_file(target, txt, sizeof txt);
        CHECK_STREQ(txt, "1\n"); /* the target was not truncated */
        CHECK(stat("/nonexistent/dk-target", &st) != 0);
    }

    dk_test_set_stage("fifo (must not hang)");
    CHECK_EQ(mkfifo(fifo, 0644), 0);
    t0 = dk_test_now_ms();
    CHECK_ERR(dk_pidfile_open(fifo, 0, 0, &pf, &pid), EINVAL);
    CHECK_ERR(dk_pidfile_check(fifo, &pid), EINVAL);
    CHECK_ERR(dk_pidfile_kill(fifo, SIGTERM, &pid), EINVAL);
    CHECK(dk_test_now_ms() - t0 < 2000);
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));

    dk_test_set_stage("directory");
    CHECK_EQ(mkdir(dir, 0755), 0);
    CHECK_ERR(dk_pidfile_open(dir, 0, 0, &pf, &pid), EISDIR);
    alarm(60);
    unlink(path);
    unlink(dangling);
    unlink(fifo);
    unlink(target);
    rmdir(dir);
}

static void test_garbage(void)
{
    static const char *garbage[] = {"hello\n", "-5", "-5\n", "99999999999", "99999999999\n",
                                    "", "\n", "0\n", "12abc\n", " \n", "4294967297\n"};
    char path[256];
    size_t i;
    int32_t pid;
    pid_t h;

    dk_test_set_stage("garbage");
    snprintf(path, sizeof path, "%s/garbage.pid", tmp);
    for (i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        int r;
        dk_test_write_file(path, garbage[i]);
        pid = 12345;
        r = dk_pidfile_check(path, &pid);
        CHECK_MSG(r == DK_PIDFILE_STALE && pid == 0, "content \"%s\": check = %d, pid %d",
                  garbage[i], r, pid);
    }
    /* a well-formed stale pid is reported */
    dk_test_write_file(path, "4242\n");
    CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_STALE);
    CHECK_EQ(pid, 4242);
    CHECK_EQ(dk_pidfile_check(path, NULL), DK_PIDFILE_STALE);

    /* garbage while a holder has the lock: still RUNNING */
    unlink(path);
    h = holder(path, 0);
    CHECK(h > 0);
    if (h > 0) {
        /* (2 cases: each check may wait up to a second for a pid to appear) */
        for (i = 0; i < 2; i++) {
            int fd = open(path, O_WRONLY | O_TRUNC);
            int r;
            dk_test_write_all(fd, garbage[i], strlen(garbage[i]));
            close(fd);
            pid = 12345;
            r = dk_pidfile_check(path, &pid);
            CHECK_MSG(r == DK_PIDFILE_RUNNING, "content \"%s\" with a holder: check = %d",
                      garbage[i], r);
            CHECK_MSG(pid == 0 || pid == h, "content \"%s\" with a holder: pid %d", garbage[i],
                      pid);
        }
        kill(h, SIGKILL);
        dk_test_wait(h, 5000, NULL);
    }
    unlink(path);
}

static void test_kill_never_unrelated(void)
{
    char path[256], txt[32];
    int32_t pid = 0;
    pid_t victim, h;
    int st = 0, r;

    dk_test_set_stage("kill: lock free, live pid in the file");
    snprintf(path, sizeof path, "%s/unrelated.pid", tmp);
    victim = dk_test_fork();
    if (victim == 0) {
        for (;;)
            pause(); /* SIGTERM would kill it */
    }
    snprintf(txt, sizeof txt, "%d\n", (int)victim);
    dk_test_write_file(path, txt);
    CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_STALE);
    CHECK_EQ(pid, victim);
    r = dk_pidfile_kill(path, SIGTERM, &pid);
    CHECK_ERR(r, ESRCH);
    CHECK_ERR(dk_pidfile_kill(path, 0, NULL), ESRCH);
    dk_test_sleep_ms(200);
    CHECK_MSG(waitpid(victim, &st, WNOHANG) == 0, "the unrelated process got the signal");
    kill(victim, SIGKILL);
    dk_test_wait(victim, 5000, NULL);

    dk_test_set_stage("kill: no file");
    unlink(path);
    CHECK_ERR(dk_pidfile_kill(path, SIGTERM, &pid), ENOENT);

    dk_test_set_stage("kill: holder has not written its pid");
    h = holder(path, 1);
    CHECK(h > 0);
    if (h > 0) {
        CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_RUNNING);
        CHECK_EQ(pid, 0);
        CHECK_ERR(dk_pidfile_kill(path, SIGTERM, &pid), EAGAIN);
        dk_test_sleep_ms(50);
        CHECK_EQ(waitpid(h, &st, WNOHANG), 0); /* not signalled */
        kill(h, SIGKILL);
        dk_test_wait(h, 5000, NULL);
    }

    dk_test_set_stage("kill: the holder");
    unlink(path);
    h = holder(path, 0);
    CHECK(h > 0);
    if (h > 0) {
        pid = 0;
        CHECK_EQ(dk_pidfile_kill(path, 0, &pid), 0); /* probe */
        CHECK_EQ(pid, h);
        CHECK_EQ(waitpid(h, &st, WNOHANG), 0);
        pid = 0;
        CHECK_EQ(dk_pidfile_kill(path, SIGTERM, &pid), 0);
        CHECK_EQ(pid, h);
        if (dk_test_wait(h, 5000, &st) == 0)
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    }
    unlink(path);
}

static void test_remove(void)
{
    char path[256], rel_dir[256];
    dk_pidfile *pf = NULL;
    int32_t pid = 0;
    pid_t c;
    int r;

    dk_test_set_stage("remove");
    snprintf(path, sizeof path, "%s/remove.pid", tmp);
    r = dk_pidfile_open(path, 0, 0, &pf, &pid);
    CHECK_EQ(r, 0);
    if (r != 0)
        return;
    CHECK_EQ(dk_pidfile_write(pf), 0);
    {
        int fd = dk_pidfile_fd(pf);
        struct stat st;
        CHECK(fd >= 0);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == (0644 & ~(mode_t)022));
    }
    /* a second open in the same process: the lock is held by the first */
    {
        dk_pidfile *pf2 = NULL;
        pid = 0;
        CHECK_ERR(dk_pidfile_open(path, 0, 0, &pf2, &pid), EEXIST);
        CHECK_EQ(pid, getpid());
    }
    c = dk_test_fork();
    if (c == 0) {
        CHECK_ERR(dk_pidfile_remove(pf), EPERM); /* not the owner: a forked child */
        CHECK_EQ(access(path, F_OK), 0);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(c);
    CHECK_EQ(access(path, F_OK), 0);
    CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_RUNNING); /* lock still held */
    CHECK_EQ(pid, getpid());
    CHECK_EQ(dk_pidfile_remove(pf), 0);
    CHECK(access(path, F_OK) != 0 && errno == ENOENT);

    /* the file rewritten by someone else (a successor): not ours any more */
    r = dk_pidfile_open(path, 0, 0, &pf, &pid);
    CHECK_EQ(r, 0);
    if (r == 0) {
        int fd;
        CHECK_EQ(dk_pidfile_write(pf), 0);
        fd = open(path, O_WRONLY | O_TRUNC);
        dk_test_write_all(fd, "1\n", 2);
        close(fd);
        CHECK_ERR(dk_pidfile_remove(pf), EPERM);
        CHECK_EQ(access(path, F_OK), 0);
        unlink(path);
    }

    /* close keeps the file; mode is honoured */
    r = dk_pidfile_open(path, 0600, 0, &pf, &pid);
    CHECK_EQ(r, 0);
    if (r == 0) {
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK_EQ(dk_pidfile_write(pf), 0);
        CHECK_EQ(dk_pidfile_close(pf), 0);
        CHECK_EQ(access(path, F_OK), 0);
        CHECK_EQ(dk_pidfile_check(path, &pid), DK_PIDFILE_STALE);
        CHECK_EQ(pid, getpid());
        unlink(path);
    }

    /* a relative path is made absolute: removal works after a chdir */
    snprintf(rel_dir, sizeof rel_dir, "%s", tmp);
    if (chdir(rel_dir) == 0) {
        r = dk_pidfile_open("rel.pid", 0, 0, &pf, &pid);
        CHECK_EQ(r, 0);
        CHECK_EQ(chdir("/"), 0);
        if (r == 0) {
            char abs[300];
            snprintf(abs, sizeof abs, "%s/rel.pid", tmp);
            CHECK_EQ(dk_pidfile_write(pf), 0);
            CHECK_EQ(dk_pidfile_check(abs, &pid), DK_PIDFILE_RUNNING);
            CHECK_EQ(dk_pidfile_remove(pf), 0);
            CHECK(access(abs, F_OK) != 0);
        }
    }
}

int main(void)
{
    dk_test_init("pidfile", 60);
    umask(022);
    tmp = dk_test_tmpdir();
    test_kill9_owner();
    test_symlink_fifo_dir();
    test_garbage();
    test_kill_never_unrelated();
    test_remove();
    test_race();
    return dk_test_done();
}
