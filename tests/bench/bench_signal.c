/* bench_signal.c - signal delivery latency, kill() in one process to the signal being
 * returned by the reader in another, for four readers:
 *   dk   libdaemonkit: dk_signal_open + poll(fd) + dk_signal_next
 *   ld   libdaemon:    daemon_signal_init + poll(daemon_signal_fd()) + daemon_signal_next
 *   sfd  Linux signalfd (signals blocked) + poll + read
 *   sh   signal-hook 0.3 (Rust): Signals::new + blocking `for sig in signals.forever()`, in
 *        the separate program tests/bench/sighook (exec'd; given as the last argument)
 * Ping-pong: the sender stores CLOCK_MONOTONIC in shared memory just before kill(); the
 * reader, once the signal is returned to it, stores now - t0 (one-way latency) and answers
 * through a pipe; the sender waits for the answer before the next round. Each cycle of
 * rounds gives one round to every reader, in an order shuffled per cycle (fixed seed). With
 * a fixed rotation (DK_BENCH_ORDER=dk,ld,sfd,sh: round i to the (i % n)-th reader named),
 * the same-CPU medians depend on each reader's place in the rotation (see BENCHMARKS.md).
 * Each line also gives in_kill, the share of rounds in which the reader had the signal
 * before the sender's kill() returned (the scheduler switched to the woken reader at once),
 * and the medians of those rounds and of the others: the same-CPU latency depends on what
 * the scheduler does at the wake-up.
 *   bench_signal ping ROUNDS SENDER_CPU READER_CPU [SIGHOOK_READER]
 *        (each reader ROUNDS rounds; -1: unpinned)
 *   bench_signal burst COUNT MAX_SECONDS [SIGHOOK_READER]
 *        (mixed USR1/USR2/HUP; each reader in turn: dk, sh, ld, sfd)
 * Without SIGHOOK_READER the sh reader is left out.
 * The shared block is a memfd mapping, so that it survives the sh reader's exec: the reader
 * gets it as fd 3 and the answer pipe as fd 4, plus the struct's layout as an argument
 * ("size,offsets..."), which it checks against its own #[repr(C)] copy before mapping.
 * Every wait is bounded (poll timeouts; the burst stops at MAX_SECONDS); every reader is
 * killed and reaped by its pid, and dies with this process (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include <daemonkit.h>
#include <libdaemon/dsignal.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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

enum { M_DK, M_LD, M_SFD, M_SH, NMODES };
static const char *names[NMODES] = { "dk", "ld", "sfd", "sh" };
static const int kinds[3] = { SIGUSR1, SIGUSR2, SIGHUP };

#define MAX_ROUNDS 20000
/* Mirrored by `struct Shm` in tests/bench/sighook/src/main.rs (checked at run time through
 * the layout string, see layout()). */
struct shm {
    _Atomic int ready;           /* readers set up */
    _Atomic int stop;            /* sender done */
    _Atomic int64_t t0;          /* ping: time just before kill() */
    int64_t lat[NMODES][MAX_ROUNDS]; /* ping: per-reader, per-round latency (row = mode) */
    /* burst */
    _Atomic int64_t last_send_start[65]; /* time just before the last kill() of a kind */
    _Atomic int64_t last_recv[65];       /* time the reader last returned a kind */
    _Atomic long recv_count[65];
    long sent_count[65];
    _Atomic int64_t reader_busy_until;   /* reader's last activity */
};
_Static_assert(sizeof(long) == 8 && sizeof(_Atomic long) == 8 && sizeof(_Atomic int64_t) == 8,
               "the Rust side maps long and _Atomic int64_t to 8-byte atomics");
_Static_assert(offsetof(struct shm, lat) == 16, "lat right after ready, stop, t0");
_Static_assert(sizeof(struct shm) == 16 + 8 * NMODES * MAX_ROUNDS + 8 * 65 * 4 + 8,
               "no padding in struct shm");

static char layout_buf[160];
static const char *layout(void)
{
    snprintf(layout_buf, sizeof layout_buf, "%zu,%zu,%zu,%zu,%zu,%zu,%zu", sizeof(struct shm),
             offsetof(struct shm, lat), offsetof(struct shm, last_send_start),
             offsetof(struct shm, last_recv), offsetof(struct shm, recv_count),
             offsetof(struct shm, sent_count), offsetof(struct shm, reader_busy_until));
    return layout_buf;
}

static struct shm *sh;
static int shm_fd = -1;
static const char *sighook_path;
static pid_t parent_pid;

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

static void pin(int cpu)
{
    cpu_set_t set;
    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* In a freshly forked reader: die with the benchmark (nothing is left behind even if the
 * benchmark itself is killed), then pin. */
static void child_common(int cpu)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid)
        _exit(1);
    pin(cpu);
}

/* Forks and execs the signal-hook reader (pinned to cpu, inherited through exec) with the
 * shared block as fd 3 and ans_w (or /dev/null) as fd 4. Returns its pid or -1. */
static pid_t spawn_sighook(const char *what, int rounds, int cpu, int ans_w)
{
    pid_t pid = fork();
    if (pid == 0) {
        char rs[16], row[16];
        int m, a;
        child_common(cpu);
        if (ans_w < 0)
            ans_w = open("/dev/null", O_WRONLY);
        /* Move both above 4 first, so neither dup2 below overwrites the other. */
        m = fcntl(shm_fd, F_DUPFD_CLOEXEC, 10);
        a = fcntl(ans_w, F_DUPFD_CLOEXEC, 10);
        if (m < 0 || a < 0 || dup2(m, 3) != 3 || dup2(a, 4) != 4)
            _exit(126);
        snprintf(rs, sizeof rs, "%d", rounds);
        snprintf(row, sizeof row, "%d", M_SH);
        execl(sighook_path, sighook_path, what, rs, row, layout(), (char *)NULL);
        perror(sighook_path);
        _exit(127);
    }
    return pid;
}

/* Kills and reaps one reader by its pid; reports an early exit that was not ours. */
static void reap_reader(pid_t pid, const char *name)
{
    int st;
    if (pid <= 0)
        return;
    if (waitpid(pid, &st, WNOHANG) == pid) {
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "reader %s ended early: status 0x%x\n", name, st);
        return;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int64_t kill_ret[NMODES][MAX_ROUNDS]; /* sender: kill() returned, ns after t0 */

/* All readers run at once (one process each); every cycle of n rounds gives one round to
 * each reader, so they are measured interleaved under the same conditions. */
static int ping(int rounds, int send_cpu, int read_cpu)
{
    int n = sighook_path ? 4 : 3;
    int ans[NMODES][2], got[NMODES] = { 0 }, r, i, bad = 0, order[NMODES];
    int fixed = 0, fixed_order[NMODES];
    const char *env = getenv("DK_BENCH_ORDER");
    unsigned x = 4242;
    pid_t pid[NMODES] = { 0 };
    if (env && *env) { /* a fixed rotation: every reader of this run named once */
        char buf[64], *t, *save = NULL;
        int seen = 0;
        snprintf(buf, sizeof buf, "%s", env);
        for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            for (r = 0; r < n && strcmp(t, names[r]) != 0; r++)
                ;
            if (r == n || fixed == n || (seen & (1 << r))) {
                fprintf(stderr, "DK_BENCH_ORDER must name each of the %d readers once\n", n);
                return 2;
            }
            seen |= 1 << r;
            fixed_order[fixed++] = r;
        }
        if (fixed != n) {
            fprintf(stderr, "DK_BENCH_ORDER must name each of the %d readers once\n", n);
            return 2;
        }
    }
    for (r = 0; r < n; r++) {
        if (pipe2(ans[r], O_CLOEXEC) < 0)
            return 1;
        if (r == M_SH) {
            pid[r] = spawn_sighook("ping", rounds, read_cpu, ans[r][1]);
        } else if ((pid[r] = fork()) == 0) {
            int k = 0;
            close(ans[r][0]);
            mode = r;
            child_common(read_cpu);
            reader_setup();
            atomic_fetch_add(&sh->ready, 1);
            while (k < rounds && !atomic_load(&sh->stop)) {
                int s = reader_next(2000);
                if (s <= 0)
                    continue;
                sh->lat[r][k++] = now_ns() - atomic_load(&sh->t0);
                if (write(ans[r][1], "x", 1) != 1)
                    _exit(1);
            }
            _exit(0);
        }
        close(ans[r][1]);
        if (pid[r] < 0)
            return 1;
    }
    pin(send_cpu);
    for (i = 0; i < 5000 && atomic_load(&sh->ready) < n; i++)
        usleep(1000);
    if (atomic_load(&sh->ready) < n)
        fprintf(stderr, "only %d of %d readers ready after 5 s\n", atomic_load(&sh->ready), n);
    for (i = 0; i < n * rounds; i++) {
        int k, j;
        int64_t t0;
        struct pollfd p;
        char c;
        if (i % n == 0) { /* new cycle: the order of the readers in it */
            for (j = 0; j < n; j++)
                order[j] = fixed ? fixed_order[j] : j;
            for (j = n - 1; j > 0 && !fixed; j--) {
                int q, t;
                x = x * 1103515245u + 12345u;
                q = (int)((x >> 16) % (unsigned)(j + 1));
                t = order[j], order[j] = order[q], order[q] = t;
            }
        }
        k = order[i % n];
        p = (struct pollfd){ .fd = ans[k][0], .events = POLLIN };
        if (got[k] < i / n)
            continue; /* this reader stopped answering */
        t0 = now_ns();
        atomic_store(&sh->t0, t0);
        kill(pid[k], kinds[(i / n) % 3]);
        kill_ret[k][got[k]] = now_ns() - t0;
        if (poll(&p, 1, 2000) <= 0 || read(ans[k][0], &c, 1) != 1)
            continue; /* lost or reader died: bounded, reported below */
        got[k]++;
    }
    atomic_store(&sh->stop, 1);
    for (r = 0; r < n; r++) {
        reap_reader(pid[r], names[r]);
        close(ans[r][0]);
    }
    for (r = 0; r < n; r++) {
        static int64_t a[MAX_ROUNDS], b[MAX_ROUNDS]; /* in kill() / after it returned */
        int g = got[r], na = 0, nb = 0;
        int64_t *l = sh->lat[r];
        for (i = 0; i < g; i++) { /* sample i of a reader is its i-th answered round */
            if (l[i] < kill_ret[r][i])
                a[na++] = l[i];
            else
                b[nb++] = l[i];
        }
        qsort(l, g, sizeof *l, cmpl);
        qsort(a, na, sizeof *a, cmpl);
        qsort(b, nb, sizeof *b, cmpl);
        printf("signal %-4s cpus=%d,%d rounds=%d answered=%d median_us=%.2f p99_us=%.2f "
               "min_us=%.2f in_kill=%.1f%% median_in_kill/after_us=%.2f/%.2f\n", names[r],
               send_cpu, read_cpu, rounds, g, g ? l[g / 2] / 1e3 : -1.0,
               g ? l[(int)(g * 0.99)] / 1e3 : -1.0, g ? l[0] / 1e3 : -1.0,
               g ? 100.0 * na / g : 0.0, na ? a[na / 2] / 1e3 : -1.0, nb ? b[nb / 2] / 1e3 : -1.0);
        if (g != rounds)
            bad = 1;
    }
    return bad;
}

/* One burst of COUNT mixed signals to a reader of kind m. Returns 0 if all were sent and
 * no kind was lost. */
static int burst_one(int m, long count, int max_s)
{
    pid_t pid;
    long i;
    int lost = 0, k;
    int64_t t0, t1, deadline;
    /* Fresh burst state (the sender is the only process touching it now). */
    memset((char *)sh + offsetof(struct shm, last_send_start), 0,
           sizeof(struct shm) - offsetof(struct shm, last_send_start));
    atomic_store(&sh->ready, 0);
    atomic_store(&sh->stop, 0);
    if (m == M_SH) {
        pid = spawn_sighook("burst", 0, -1, -1);
    } else if ((pid = fork()) == 0) {
        mode = m;
        child_common(-1);
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
    if (pid < 0)
        return 1;
    for (i = 0; i < 5000 && !atomic_load(&sh->ready); i++)
        usleep(1000);
    atomic_store(&sh->reader_busy_until, now_ns());
    t0 = now_ns();
    deadline = t0 + (int64_t)max_s * 1000000000;
    unsigned x = 12345; /* mixed kinds, pseudo-random order (the same for every reader) */
    for (i = 0; atomic_load(&sh->ready) && i < count; i++) {
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
    if (k == 100)
        reap_reader(pid, names[m]);
    for (k = 0; k < 3; k++) {
        int s = kinds[k];
        /* lost: the reader never returned this kind after the sender began its last kill() */
        if (sh->sent_count[s] > 0 && atomic_load(&sh->last_recv[s]) < sh->last_send_start[s])
            lost++;
    }
    printf("burst %s sent=%ld (USR1=%ld USR2=%ld HUP=%ld) in %.3f s (%.0f signals/s); "
           "returned USR1=%ld USR2=%ld HUP=%ld; kinds_lost=%d\n", names[m],
           i, sh->sent_count[SIGUSR1], sh->sent_count[SIGUSR2], sh->sent_count[SIGHUP],
           (t1 - t0) / 1e9, i / ((t1 - t0) / 1e9), atomic_load(&sh->recv_count[SIGUSR1]),
           atomic_load(&sh->recv_count[SIGUSR2]), atomic_load(&sh->recv_count[SIGHUP]), lost);
    fflush(stdout);
    return lost == 0 && i == count ? 0 : 1;
}

static int burst(long count, int max_s)
{
    static const int order[NMODES] = { M_DK, M_SH, M_LD, M_SFD };
    int j, bad = 0;
    for (j = 0; j < NMODES; j++)
        if (order[j] != M_SH || sighook_path)
            bad |= burst_one(order[j], count, max_s);
    return bad;
}

int main(int argc, char **argv)
{
    parent_pid = getpid();
    shm_fd = memfd_create("dk-bench-signal", MFD_CLOEXEC);
    if (shm_fd < 0 || ftruncate(shm_fd, sizeof *sh) < 0)
        return 1;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    if (sh == MAP_FAILED)
        return 1;
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "ping") == 0) {
        int rounds = atoi(argv[2]);
        if (rounds <= 0 || rounds > MAX_ROUNDS)
            return 2;
        sighook_path = argc == 6 ? argv[5] : NULL;
        return ping(rounds, atoi(argv[3]), atoi(argv[4]));
    }
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "burst") == 0) {
        sighook_path = argc == 5 ? argv[4] : NULL;
        return burst(atol(argv[2]), atoi(argv[3]));
    }
    fprintf(stderr, "usage: bench_signal ping ROUNDS SENDER_CPU READER_CPU [SIGHOOK_READER]"
                    " (-1: unpinned) | burst COUNT MAX_SECONDS [SIGHOOK_READER]\n");
    return 2;
}
