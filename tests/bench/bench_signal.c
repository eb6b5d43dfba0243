/* bench_signal.c - signal delivery latency, kill() in one process to the signal being
 * returned by the reader in another, for three readers:
 *   dk   libdaemonkit: dk_signal_open + poll(fd) + dk_signal_next
 *   ld   libdaemon:    daemon_signal_init + poll(daemon_signal_fd()) + daemon_signal_next
 *   sfd  Linux signalfd (signals blocked) + poll + read
 * Ping-pong: the sender stores CLOCK_MONOTONIC in shared memory just before kill(); the
 * reader, once the signal is returned to it, stores now - t0 (one-way latency) and answers
 * through a pipe; the sender waits for the answer before the next round.
 *   bench_signal ping ROUNDS SENDER_CPU READER_CPU   (each reader ROUNDS rounds; -1: unpinned)
 *   bench_signal burst COUNT MAX_SECONDS      (libdaemonkit reader, mixed USR1/USR2/HUP)
 * Every wait is bounded (poll timeouts; the burst stops at MAX_SECONDS). */
#define _GNU_SOURCE
#include <daemonkit.h>
#include <libdaemon/dsignal.h>

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmpl(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

enum { M_DK, M_LD, M_SFD };
static const int kinds[3] = { SIGUSR1, SIGUSR2, SIGHUP };

struct shm {
    _Atomic int ready;           /* reader set up */
    _Atomic int stop;            /* sender done */
    _Atomic int64_t t0;          /* ping: time just before kill() */
    int64_t lat[3][20000];       /* ping: per-reader, per-round latency */
    /* burst */
    _Atomic int64_t last_send_start[65]; /* time just before the last kill() of a kind */
    _Atomic int64_t last_recv[65];       /* time the reader last returned a kind */
    _Atomic long recv_count[65];
    long sent_count[65];
    _Atomic int64_t reader_busy_until;   /* reader's last activity */
};

static int reader_fd = -1;
static int mode;

static void reader_setup(void)
{
    sigset_t set;
    switch (mode) {
    case M_DK:
        reader_fd = dk_signal_open(kinds, 3);
        break;
    case M_LD:
        if (daemon_signal_init(SIGUSR1, SIGUSR2, SIGHUP, 0) < 0)
            reader_fd = -1;
        else
            reader_fd = daemon_signal_fd();
        break;
    case M_SFD:
        sigemptyset(&set);
        for (int i = 0; i < 3; i++)
            sigaddset(&set, kinds[i]);
        sigprocmask(SIG_BLOCK, &set, NULL);
        reader_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        break;
    }
    if (reader_fd < 0) {
        fprintf(stderr, "reader setup failed\n");
        _exit(1);
    }
}

/* Waits up to timeout_ms, returns one signal (0: none). */
static int reader_next(int timeout_ms)
{
    struct pollfd p = { .fd = reader_fd, .events = POLLIN };
    int s;
    if (mode == M_DK && (s = dk_signal_next()) > 0)
        return s;
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    switch (mode) {
    case M_DK:
        return dk_signal_next();
    case M_LD:
        s = daemon_signal_next();
        return s > 0 ? s : 0;
    default: {
        struct signalfd_siginfo si;
        if (read(reader_fd, &si, sizeof si) != (ssize_t)sizeof si)
            return 0;
        return (int)si.ssi_signo;
    }
    }
}

static struct shm *sh;

static void pin(int cpu)
{
    cpu_set_t set;
    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* All three readers run at once (one process each); round i goes to reader i % 3, so the
 * three are measured interleaved under the same conditions. */
static int ping(int rounds, int send_cpu, int read_cpu)
{
    int ans[3][2], got[3] = { 0, 0, 0 }, r, i, bad = 0;
    pid_t pid[3];
    static const char *names[3] = { "dk", "ld", "sfd" };
    for (r = 0; r < 3; r++) {
        if (pipe(ans[r]) < 0)
            return 1;
        pid[r] = fork();
        if (pid[r] == 0) {
            int n = 0;
            close(ans[r][0]);
            mode = r;
            pin(read_cpu);
            reader_setup();
            atomic_fetch_add(&sh->ready, 1);
            while (n < rounds && !atomic_load(&sh->stop)) {
                int s = reader_next(2000);
                if (s <= 0)
                    continue;
                sh->lat[r][n++] = now_ns() - atomic_load(&sh->t0);
                if (write(ans[r][1], "x", 1) != 1)
                    _exit(1);
            }
            _exit(0);
        }
        close(ans[r][1]);
    }
    pin(send_cpu);
    for (i = 0; i < 5000 && atomic_load(&sh->ready) < 3; i++)
        usleep(1000);
    for (i = 0; i < 3 * rounds; i++) {
        int k = i % 3;
        struct pollfd p = { .fd = ans[k][0], .events = POLLIN };
        char c;
        if (got[k] < i / 3)
            continue; /* this reader stopped answering */
        atomic_store(&sh->t0, now_ns());
        kill(pid[k], kinds[(i / 3) % 3]);
        if (poll(&p, 1, 2000) <= 0 || read(ans[k][0], &c, 1) != 1)
            continue; /* lost or reader died: bounded, reported below */
        got[k]++;
    }
    atomic_store(&sh->stop, 1);
    for (r = 0; r < 3; r++) {
        kill(pid[r], SIGKILL);
        waitpid(pid[r], NULL, 0);
    }
    for (r = 0; r < 3; r++) {
        int g = got[r];
        int64_t *l = sh->lat[r];
        qsort(l, g, sizeof *l, cmpl);
        printf("signal %-4s cpus=%d,%d rounds=%d answered=%d median_us=%.2f p99_us=%.2f "
               "min_us=%.2f\n", names[r], send_cpu, read_cpu, rounds, g,
               g ? l[g / 2] / 1e3 : -1.0, g ? l[(int)(g * 0.99)] / 1e3 : -1.0,
               g ? l[0] / 1e3 : -1.0);
        if (g != rounds)
            bad = 1;
    }
    return bad;
}

static int burst(long count, int max_s)
{
    pid_t pid;
    long i;
    int lost = 0, k;
    int64_t t0, t1, deadline;
    mode = M_DK;
    pid = fork();
    if (pid == 0) {
        reader_setup();
        atomic_store(&sh->ready, 1);
        /* Runs until the sender says stop and nothing arrived for 300 ms (bounded). */
        for (;;) {
            int s = reader_next(100);
            int64_t t = now_ns();
            if (s > 0 && s < 65) {
                atomic_store(&sh->last_recv[s], t);
                atomic_fetch_add(&sh->recv_count[s], 1);
                atomic_store(&sh->reader_busy_until, t);
            } else if (atomic_load(&sh->stop) &&
                       t - atomic_load(&sh->reader_busy_until) > 300000000) {
                _exit(0);
            }
        }
    }
    for (i = 0; i < 5000 && !atomic_load(&sh->ready); i++)
        usleep(1000);
    atomic_store(&sh->reader_busy_until, now_ns());
    t0 = now_ns();
    deadline = t0 + (int64_t)max_s * 1000000000;
    unsigned x = 12345; /* mixed kinds, pseudo-random order */
    for (i = 0; i < count; i++) {
        int s;
        x = x * 1103515245u + 12345u;
        s = kinds[(x >> 16) % 3];
        atomic_store(&sh->last_send_start[s], now_ns());
        if (kill(pid, s) < 0)
            break;
        sh->sent_count[s]++;
        if ((i & 1023) == 0 && now_ns() > deadline)
            break;
    }
    t1 = now_ns();
    atomic_store(&sh->reader_busy_until, t1);
    atomic_store(&sh->stop, 1);
    for (k = 0; k < 100; k++) { /* reader exits 300 ms after the last signal; at most 10 s */
        if (waitpid(pid, NULL, WNOHANG) == pid)
            break;
        usleep(100000);
    }
    if (k == 100) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    for (k = 0; k < 3; k++) {
        int s = kinds[k];
        /* lost: the reader never returned this kind after the sender began its last kill() */
        if (sh->sent_count[s] > 0 && atomic_load(&sh->last_recv[s]) < sh->last_send_start[s])
            lost++;
    }
    printf("burst dk sent=%ld (USR1=%ld USR2=%ld HUP=%ld) in %.3f s (%.0f signals/s); "
           "returned USR1=%ld USR2=%ld HUP=%ld; kinds_lost=%d\n",
           i, sh->sent_count[SIGUSR1], sh->sent_count[SIGUSR2], sh->sent_count[SIGHUP],
           (t1 - t0) / 1e9, i / ((t1 - t0) / 1e9), atomic_load(&sh->recv_count[SIGUSR1]),
           atomic_load(&sh->recv_count[SIGUSR2]), atomic_load(&sh->recv_count[SIGHUP]), lost);
    return lost == 0 && i == count ? 0 : 1;
}

int main(int argc, char **argv)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    if (argc == 5 && strcmp(argv[1], "ping") == 0) {
        int rounds = atoi(argv[2]);
        if (rounds <= 0 || rounds > 20000)
            return 2;
        return ping(rounds, atoi(argv[3]), atoi(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "burst") == 0)
        return burst(atol(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: bench_signal ping ROUNDS SENDER_CPU READER_CPU (-1: unpinned) | burst COUNT MAX_SECONDS\n");
    return 2;
}
