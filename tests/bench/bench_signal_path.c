/* bench_signal_path.c - where the time of libdaemonkit's signal path goes, against a raw
 * signalfd reader (issue 17, item 4; BENCHMARKS.md section 11).
 *
 *   bench_signal_path self CYCLES CPU
 *     One process (pinned to CPU; -1: unpinned) sends signals to itself and takes them back:
 *     no context switch, no wake-up, so what is left is each path's own cost. Every cycle
 *     times one batch of 200 operations of every path, in an order shuffled per cycle (fixed
 *     seed); each line gives the median and the minimum of the batch means, in ns per
 *     operation:
 *       syscall     getppid(): the price of one system call on this machine
 *       kill_ign    kill(self) of an ignored signal: the kill() every path pays
 *       sfd         kill(self) of a blocked signal + read(signalfd)
 *       sfd_poll    the same with a poll(signalfd) between (as the ping reader does)
 *       frame       kill(self) of a signal with an empty handler (full mask, SA_RESTART, as
 *                   libdaemonkit installs it): kill + signal frame + handler + sigreturn
 *       frame_mask0 the same with an empty handler mask
 *       pipe_rw     write(pipe, 1 byte) + read(pipe): the self-pipe's two calls, no signal
 *       efd_rw      write(eventfd, 8) + read(eventfd, 8): the same with an eventfd
 *       copy_pipe   kill(self) to a C copy of libdaemonkit's handler (save errno, count,
 *                   pending bit, write 1 byte to a pipe, restore errno) + read + take bit
 *       dk          kill(self) to libdaemonkit's handler (dk_signal_open) + dk_signal_next()
 *       dk_poll     the same with a poll(fd) between
 *       dk_empty    dk_signal_next() with nothing pending (what a loop calling it once more,
 *                   or before its poll, pays)
 *   bench_signal_path ping ROUNDS SENDER_CPU READER_CPU
 *     The ping-pong of bench_signal.c (kill() in one process, the signal returned in
 *     another; readers interleaved, order shuffled per cycle) with timestamps inside the
 *     readers, each as a median of (stamp - t0), t0 being the time just before kill():
 *       sfd   poll returned (P), read returned (R = the latency)
 *       copy  the C copy of libdaemonkit's handler and of dk_signal_next's loop, stamped at
 *             handler entry (H), after the handler's write (W), poll returned (P), and after
 *             the pipe read + pending-bit scan (R)
 *       floor an empty handler that only stamps (H) and sets a flag; poll returns EINTR
 *             (P = R): the least any reader that takes the signal in a handler pays, with
 *             no wake-up byte at all (not a usable reader: a signal that comes just before
 *             its poll is seen only at the poll's 20 ms timeout)
 *       dk    libdaemonkit itself, poll + dk_signal_next as in bench_signal.c (R only)
 *       dk_wait  libdaemonkit's dk_signal_wait(2000) in a loop (R only)
 *       dk_before, dk_wait_before  the same two with the libdaemonkit.so named by
 *             DK_BEFORE_LIB (dlopen'ed in their reader processes), when that is set: the
 *             library before a change, in the same run
 *     plus the medians of the per-round differences (handler_write = W - H, ...).
 *     copy_flag and copy_efd are variants of the copy: the handler writes only when no
 *     wake-up byte is queued (an atomic flag) and the reader reads only when one is; an
 *     eventfd instead of the pipe (write 8 bytes, one read of 8 bytes).
 * Every loop is bounded (counts; poll timeouts); the readers are killed and reaped by their
 * pids and die with this process (PR_SET_PDEATHSIG). Nothing is written to the file system. */
#define _GNU_SOURCE
#include <daemonkit.h>

#include <dlfcn.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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

static void pin(int cpu)
{
    cpu_set_t set;
    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void on(int sig, void (*h)(int), int full_mask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = SA_RESTART;
    if (full_mask)
        sigfillset(&sa.sa_mask);
    else
        sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* ---- the C copy of libdaemonkit's handler (src/imp/signals.rs on_signal) and reader ---- */
static _Atomic uint64_t c_pending;
static _Atomic uint32_t c_counts[65];
static int c_pipe[2] = { -1, -1 };
static int64_t *c_stamp_h, *c_stamp_w; /* ping: where the handler stores its stamps */
/* variants: c_flag: a wake-up byte is queued (the handler writes only when it is not, the
 * reader reads only when it is); c_efd: c_pipe[0] == c_pipe[1] is an eventfd */
static int c_use_flag, c_efd;
static _Atomic int c_queued;

static void copy_handler(int sig) /* async-signal-safe: atomics, clock_gettime, write */
{
    int saved = errno;
    char b = (char)sig;
    if (c_stamp_h)
        *c_stamp_h = now_ns();
    atomic_fetch_add(&c_counts[sig], 1);
    atomic_fetch_or(&c_pending, 1ull << (sig - 1));
    if (!c_use_flag || !atomic_exchange(&c_queued, 1)) {
        if (c_efd) {
            uint64_t one = 1;
            (void)!write(c_pipe[1], &one, 8);
        } else {
            (void)!write(c_pipe[1], &b, 1);
        }
    }
    if (c_stamp_w)
        *c_stamp_w = now_ns();
    errno = saved;
}

/* dk_signal_next's work: one read of up to 256 bytes (a short read ends the drain), then
 * take the lowest pending bit. */
static int copy_next(void)
{
    char buf[256];
    uint64_t p, b;
    ssize_t n;
    if (!c_use_flag || atomic_load(&c_queued)) {
        do
            n = read(c_pipe[0], buf, c_efd ? 8 : sizeof buf);
        while (n < 0 && errno == EINTR);
        if (n > 0 && c_use_flag)
            atomic_store(&c_queued, 0);
    }
    for (;;) {
        p = atomic_load(&c_pending);
        if (!p)
            return 0;
        b = p & -p;
        if (atomic_fetch_and(&c_pending, ~b) & b)
            return __builtin_ctzll(b) + 1;
    }
}

static void empty_handler(int sig) { (void)sig; }
static _Atomic int c_floor_hit;
static void floor_handler(int sig) /* async-signal-safe: clock_gettime only */
{
    int saved = errno;
    (void)sig;
    *c_stamp_h = now_ns();
    atomic_store(&c_floor_hit, 1);
    errno = saved;
}

/* ---------------------------------------------------------------- self */
enum { S_SYSCALL, S_KILL_IGN, S_SFD, S_SFD_POLL, S_FRAME, S_FRAME0, S_PIPE, S_EFD, S_COPY,
       S_DK, S_DK_POLL, S_DK_EMPTY, NS };
static const char *snames[NS] = { "syscall", "kill_ign", "sfd", "sfd_poll", "frame",
                                  "frame_mask0", "pipe_rw", "efd_rw", "copy_pipe", "dk",
                                  "dk_poll", "dk_empty" };
#define BATCH 200
#define MAX_CYCLES 5000

static int sfd_fd = -1, p_rw[2] = { -1, -1 }, efd = -1, dk_fd = -1;
static pid_t me;
static volatile long sink;

static void op(int k)
{
    struct signalfd_siginfo si;
    struct pollfd p;
    uint64_t v = 1;
    char c = 1;
    switch (k) {
    case S_SYSCALL: sink += getppid(); break;
    case S_KILL_IGN: kill(me, SIGWINCH); break;
    case S_SFD:
        kill(me, SIGUSR2);
        sink += read(sfd_fd, &si, sizeof si);
        break;
    case S_SFD_POLL:
        kill(me, SIGUSR2);
        p = (struct pollfd){ .fd = sfd_fd, .events = POLLIN };
        sink += poll(&p, 1, 1000);
        sink += read(sfd_fd, &si, sizeof si);
        break;
    case S_FRAME: kill(me, SIGHUP); break;
    case S_FRAME0: kill(me, SIGURG); break;
    case S_PIPE:
        sink += write(p_rw[1], &c, 1);
        sink += read(p_rw[0], &c, 1);
        break;
    case S_EFD:
        sink += write(efd, &v, 8);
        sink += read(efd, &v, 8);
        break;
    case S_COPY:
        kill(me, SIGALRM);
        sink += copy_next();
        break;
    case S_DK:
        kill(me, SIGUSR1);
        sink += dk_signal_next();
        break;
    case S_DK_POLL:
        kill(me, SIGUSR1);
        p = (struct pollfd){ .fd = dk_fd, .events = POLLIN };
        sink += poll(&p, 1, 1000);
        sink += dk_signal_next();
        break;
    case S_DK_EMPTY: sink += dk_signal_next(); break;
    }
}

static int self(int cycles, int cpu)
{
    static int64_t t[NS][MAX_CYCLES];
    int order[NS], i, j, k;
    unsigned x = 4242;
    sigset_t set;
    int dksig = SIGUSR1;
    pin(cpu);
    me = getpid();
    signal(SIGWINCH, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sfd_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    on(SIGHUP, empty_handler, 1);
    on(SIGURG, empty_handler, 0);
    on(SIGALRM, copy_handler, 1);
    if (sfd_fd < 0 || pipe2(p_rw, O_NONBLOCK | O_CLOEXEC) < 0 ||
        pipe2(c_pipe, O_NONBLOCK | O_CLOEXEC) < 0 ||
        (efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        (dk_fd = dk_signal_open(&dksig, 1)) < 0) {
        perror("setup");
        return 1;
    }
    for (j = 0; j < NS; j++) /* warm-up */
        for (i = 0; i < BATCH; i++)
            op(j);
    for (i = 0; i < cycles; i++) {
        for (j = 0; j < NS; j++)
            order[j] = j;
        for (j = NS - 1; j > 0; j--) {
            int q, s;
            x = x * 1103515245u + 12345u;
            q = (int)((x >> 16) % (unsigned)(j + 1));
            s = order[j], order[j] = order[q], order[q] = s;
        }
        for (j = 0; j < NS; j++) {
            int64_t t0;
            k = order[j];
            t0 = now_ns();
            for (int n = 0; n < BATCH; n++)
                op(k);
            t[k][i] = (now_ns() - t0) / BATCH;
        }
    }
    for (k = 0; k < NS; k++) {
        qsort(t[k], cycles, sizeof t[k][0], cmpl);
        printf("self %-11s cpu=%d cycles=%d batch=%d median_ns=%lld min_ns=%lld\n", snames[k], cpu,
               cycles, BATCH, (long long)t[k][cycles / 2], (long long)t[k][0]);
    }
    return 0;
}

/* ---------------------------------------------------------------- ping */
enum { R_SFD, R_FLOOR, R_COPY, R_COPY_FLAG, R_COPY_EFD, R_DK, R_DKW, R_DK0, R_DKW0, NR };
static const char *rnames[NR] = { "sfd",  "floor",   "copy",      "copy_flag",      "copy_efd",
                                  "dk",   "dk_wait", "dk_before", "dk_wait_before" };
#define IS_COPY(r) ((r) == R_COPY || (r) == R_COPY_FLAG || (r) == R_COPY_EFD)
#define IS_DK(r) ((r) == R_DK || (r) == R_DK0 || IS_WAIT(r))
#define IS_WAIT(r) ((r) == R_DKW || (r) == R_DKW0)
enum { T_H, T_W, T_P, T_R, NT };
#define MAX_ROUNDS 20000
struct shm {
    _Atomic int ready, stop;
    _Atomic int64_t t0;
    int64_t st[NR][NT][MAX_ROUNDS];
};
static struct shm *sh;
static const int kinds[3] = { SIGUSR1, SIGUSR2, SIGHUP };
static const char *before_lib; /* DK_BEFORE_LIB: another libdaemonkit.so for dk_before */

static pid_t parent_pid;

static void reader(int r, int rounds, int cpu, int ans)
{
    sigset_t set;
    int fd = -1, k = 0, i;
    int64_t h = 0, w = 0;
    int (*d_open)(const int *, size_t) = dk_signal_open;
    int (*d_next)(void) = dk_signal_next;
    int (*d_wait)(int) = dk_signal_wait;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid) /* the benchmark died before the prctl */
        _exit(1);
    pin(cpu);
    sigemptyset(&set);
    for (i = 0; i < 3; i++)
        sigaddset(&set, kinds[i]);
    c_stamp_h = &h;
    if (r == R_SFD) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    } else if (r == R_FLOOR) {
        /* the least any handler-based reader pays: the handler only stamps; poll returns
         * EINTR and that is the end (no wake-up byte: not usable as a real reader) */
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        for (i = 0; i < 3; i++)
            on(kinds[i], floor_handler, 1);
    } else if (IS_COPY(r)) {
        c_use_flag = r == R_COPY_FLAG;
        c_efd = r == R_COPY_EFD;
        if (c_efd)
            fd = c_pipe[0] = c_pipe[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        else if (pipe2(c_pipe, O_NONBLOCK | O_CLOEXEC) == 0)
            fd = c_pipe[0];
        for (i = 0; i < 3; i++)
            on(kinds[i], copy_handler, 1);
        c_stamp_w = &w;
    } else {
        if (r == R_DK0 || r == R_DKW0) { /* a private copy of the other library */
            void *l = dlopen(before_lib, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
            if (!l || !(d_open = (int (*)(const int *, size_t))dlsym(l, "dk_signal_open")) ||
                !(d_next = (int (*)(void))dlsym(l, "dk_signal_next")) ||
                !(d_wait = (int (*)(int))dlsym(l, "dk_signal_wait"))) {
                fprintf(stderr, "dk_before: %s: %s\n", before_lib, dlerror());
                _exit(1);
            }
        }
        fd = d_open(kinds, 3);
    }
    if (fd < 0)
        _exit(1);
    atomic_fetch_add(&sh->ready, 1);
    while (k < rounds && !atomic_load(&sh->stop)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        struct signalfd_siginfo si;
        int s = 0;
        int64_t tp;
        if (IS_WAIT(r)) { /* dk_signal_wait does it all */
            s = d_wait(2000);
            tp = now_ns();
            if (s <= 0)
                continue;
        }
        /* bench_signal.c's dk reader: next, then poll, then next */
        else if (IS_COPY(r))
            s = copy_next();
        else if (IS_DK(r))
            s = d_next();
        else if (r == R_FLOOR) /* arrived before the poll (no byte to wake it) */
            s = atomic_exchange(&c_floor_hit, 0);
        if (s == 0) {
            int n = poll(&p, 1, r == R_FLOOR ? 20 : 2000);
            tp = now_ns();
            if (r == R_FLOOR)
                s = atomic_exchange(&c_floor_hit, 0);
            else if (n < 0 && errno != EINTR)
                continue;
            else if (r == R_SFD)
                s = read(fd, &si, sizeof si) == (ssize_t)sizeof si ? (int)si.ssi_signo : 0;
            else if (IS_COPY(r))
                s = copy_next();
            else
                s = d_next();
        } else {
            tp = now_ns();
        }
        if (s <= 0)
            continue;
        sh->st[r][T_R][k] = now_ns() - atomic_load(&sh->t0);
        sh->st[r][T_P][k] = tp - atomic_load(&sh->t0);
        sh->st[r][T_H][k] = h - atomic_load(&sh->t0);
        sh->st[r][T_W][k] = w - atomic_load(&sh->t0);
        k++;
        if (write(ans, "x", 1) != 1)
            _exit(1);
    }
    _exit(0);
}

static double med(int64_t *v, int n)
{
    qsort(v, n, sizeof *v, cmpl);
    return n ? v[n / 2] / 1e3 : -1.0;
}

/* median over the rounds of st[b] - st[a] */
static double med_diff(int64_t (*st)[MAX_ROUNDS], int a, int b, int n)
{
    static int64_t d[MAX_ROUNDS];
    for (int i = 0; i < n; i++)
        d[i] = st[b][i] - st[a][i];
    return med(d, n);
}

static int ping(int rounds, int send_cpu, int read_cpu)
{
    int ans[NR][2], got[NR] = { 0 }, order[NR], use[NR], n = 0, r, i, j, bad = 0;
    pid_t pid[NR];
    unsigned x = 4242;
    static int64_t sorted[MAX_ROUNDS];
    parent_pid = getpid();
    for (r = 0; r < NR; r++)
        if ((r != R_DK0 && r != R_DKW0) || before_lib)
            use[n++] = r;
    for (j = 0; j < n; j++) {
        r = use[j];
        if (pipe2(ans[r], O_CLOEXEC) < 0)
            return 1;
        if ((pid[r] = fork()) == 0) {
            close(ans[r][0]);
            reader(r, rounds, read_cpu, ans[r][1]);
        }
        close(ans[r][1]);
        if (pid[r] < 0)
            return 1;
    }
    pin(send_cpu);
    for (i = 0; i < 5000 && atomic_load(&sh->ready) < n; i++)
        usleep(1000);
    for (i = 0; i < n * rounds; i++) {
        struct pollfd p;
        char c;
        int k;
        if (i % n == 0) { /* a new cycle: one round per reader, order shuffled */
            for (j = 0; j < n; j++)
                order[j] = use[j];
            for (j = n - 1; j > 0; j--) {
                int q, t;
                x = x * 1103515245u + 12345u;
                q = (int)((x >> 16) % (unsigned)(j + 1));
                t = order[j], order[j] = order[q], order[q] = t;
            }
        }
        k = order[i % n];
        if (got[k] < i / n)
            continue; /* stopped answering */
        p = (struct pollfd){ .fd = ans[k][0], .events = POLLIN };
        atomic_store(&sh->t0, now_ns());
        kill(pid[k], kinds[(i / n) % 3]);
        if (poll(&p, 1, 2000) <= 0 || read(ans[k][0], &c, 1) != 1)
            continue; /* bounded; reported as answered < rounds */
        got[k]++;
    }
    atomic_store(&sh->stop, 1);
    for (j = 0; j < n; j++) {
        r = use[j];
        kill(pid[r], SIGKILL);
        waitpid(pid[r], NULL, 0);
        close(ans[r][0]);
    }
    for (j = 0; j < n; j++) {
        int g;
        int64_t (*s)[MAX_ROUNDS];
        r = use[j];
        g = got[r];
        s = sh->st[r];
        printf("path %-13s cpus=%d,%d rounds=%d answered=%d", rnames[r], send_cpu, read_cpu,
               rounds, g);
        if (r != R_SFD && !IS_DK(r)) {
            memcpy(sorted, s[T_H], g * sizeof *sorted);
            printf(" handler_at_us=%.2f", med(sorted, g));
        }
        if (IS_COPY(r))
            printf(" handler_write_us=%.2f write_to_poll_return_us=%.2f",
                   med_diff(s, T_H, T_W, g), med_diff(s, T_W, T_P, g));
        if (r == R_FLOOR)
            printf(" handler_to_poll_return_us=%.2f", med_diff(s, T_H, T_P, g));
        if (!IS_DK(r)) {
            memcpy(sorted, s[T_P], g * sizeof *sorted);
            printf(" poll_return_at_us=%.2f poll_return_to_end_us=%.2f", med(sorted, g),
                   med_diff(s, T_P, T_R, g));
        }
        memcpy(sorted, s[T_R], g * sizeof *sorted);
        printf(" median_us=%.2f", med(sorted, g));
        printf(" p99_us=%.2f\n", g ? sorted[(int)(g * 0.99)] / 1e3 : -1.0);
        if (g != rounds)
            bad = 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "self") == 0) {
        int c = atoi(argv[2]);
        if (c <= 0 || c > MAX_CYCLES)
            return 2;
        return self(c, atoi(argv[3]));
    }
    if (argc == 5 && strcmp(argv[1], "ping") == 0) {
        int n = atoi(argv[2]);
        if (n <= 0 || n > MAX_ROUNDS)
            return 2;
        sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED)
            return 1;
        before_lib = getenv("DK_BEFORE_LIB");
        if (before_lib && !*before_lib)
            before_lib = NULL;
        return ping(n, atoi(argv[3]), atoi(argv[4]));
    }
    fprintf(stderr, "usage: bench_signal_path self CYCLES CPU | ping ROUNDS SENDER_CPU "
                    "READER_CPU (-1: unpinned)\n");
    return 2;
}
