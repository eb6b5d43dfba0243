/* bench_heap.c - launch-to-ready with a large heap: daemonkit vs libdaemon vs the bare floor
 * (two plain forks and a pipe). For each size and round, and each variant in turn (the order
 * rotates every round), a child L of this process allocates SIZE MiB, touches every page,
 * notes the time t0 and daemonizes; its daemon reports ready and then stays up (as a daemon
 * does) until this process closes the pipe it waits on. The figure is t0 -> L has exited
 * (its verdict: ready), which includes L's exit (unmapping its heap), as a shell waiting for
 * a launcher sees it. This process is a child subreaper: every daemon is stopped and reaped
 * here after the measurement and before the next launch, so no teardown overlaps one.
 *   bench_heap ROUNDS SIZE_MIB [SIZE_MIB ...]     (sizes 1..8192, rounds 1..1000) */
#define _GNU_SOURCE
#include <daemonkit.h>
#include <libdaemon/dfork.h>
#include <libdaemon/dlog.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { DK, LIBDAEMON, FLOOR, NVAR };
static const char *name[NVAR] = {"daemonkit", "libdaemon", "floor"};
static volatile double *t0; /* shared with the launchers */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The daemon's life after ready: until EOF on `hold` (this process closes the other end). */
static void stay_up(int hold, int code)
{
    char c;
    while (read(hold, &c, 1) < 0 && errno == EINTR)
        ;
    _exit(code);
}

/* The launcher: a touched heap, then one variant's daemonize; exits 0 once ready. */
static void launcher(int var, size_t mib, int hold)
{
    size_t len = mib << 20;
    char *heap = malloc(len);
    if (!heap)
        _exit(3);
    memset(heap, 1, len);
    *t0 = now_ms();
    if (var == DK) {
        if (dk_daemonize(0, &hold, 1, NULL, 022, 10000) < 0)
            _exit(2);
        dk_ready();
        stay_up(hold, heap[len - 1] == 1 ? 0 : 4);
    } else if (var == LIBDAEMON) {
        pid_t pid;
        daemon_log_use = 0;
        if (daemon_retval_init() < 0)
            _exit(2);
        pid = daemon_fork();
        if (pid < 0)
            _exit(2);
        if (pid > 0)
            _exit(daemon_retval_wait(10) == 0 ? 0 : 3);
        daemon_retval_send(0);
        stay_up(hold, 0);
    } else {
        int p[2];
        char c;
        pid_t i;
        if (pipe(p) != 0)
            _exit(2);
        i = fork();
        if (i == 0) {
            setsid();
            if (fork() == 0) {
                ssize_t w = write(p[1], "r", 1);
                stay_up(hold, w == 1 ? 0 : 5);
            }
            _exit(0);
        }
        close(p[1]);
        if (i < 0 || read(p[0], &c, 1) != 1)
            _exit(3);
        waitpid(i, NULL, 0);
        _exit(0);
    }
}

/* Reaps every child (the daemons, re-parented here), waiting at most 30 s. */
static void reap_all(void)
{
    double end = now_ms() + 30000;
    for (;;) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p > 0)
            continue;
        if ((p < 0 && errno == ECHILD) || now_ms() > end)
            return;
        usleep(500);
    }
}

int main(int argc, char **argv)
{
    int rounds, s, r, k, fails = 0;
    if (argc < 3 || (rounds = atoi(argv[1])) < 1 || rounds > 1000) {
        fprintf(stderr, "usage: bench_heap ROUNDS SIZE_MIB...\n");
        return 2;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    t0 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t0 == MAP_FAILED)
        return 2;
    printf("%-10s %-10s %9s %9s %9s   (ms, t0 after the heap is touched -> launcher exit 0)\n",
           "heap", "variant", "median", "p90", "min");
    fflush(stdout); /* nothing buffered for the launchers to print again */
    for (s = 2; s < argc; s++) {
        long mib = atol(argv[s]);
        double t[NVAR][1000], med[NVAR];
        if (mib < 1 || mib > 8192)
            return 2;
        for (r = 0; r < rounds; r++) {
            for (k = 0; k < NVAR; k++) {
                int var = (k + r) % NVAR, st = -1, hold[2];
                pid_t c;
                if (pipe(hold) != 0)
                    return 2;
                c = fork();
                if (c == 0) {
                    close(hold[1]);
                    launcher(var, (size_t)mib, hold[0]);
                }
                close(hold[0]);
                if (c < 0 || waitpid(c, &st, 0) != c) {
                    close(hold[1]);
                    fails++;
                    continue;
                }
                t[var][r] = now_ms() - *t0;
                close(hold[1]); /* the daemon's EOF: it exits */
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                    fprintf(stderr, "%s %ld MiB: launcher status 0x%x\n", name[var], mib, st);
                    fails++;
                }
                reap_all();
            }
        }
        for (k = 0; k < NVAR; k++) {
            qsort(t[k], rounds, sizeof t[k][0], cmpd);
            med[k] = t[k][rounds / 2];
            printf("%6ld MiB %-10s %9.2f %9.2f %9.2f\n", mib, name[k], med[k],
                   t[k][(rounds * 9) / 10 < rounds ? (rounds * 9) / 10 : rounds - 1], t[k][0]);
        }
        printf("%6ld MiB ratio daemonkit/libdaemon %.2f, daemonkit/floor %.2f, libdaemon/floor "
               "%.2f (medians, %d rounds)\n",
               mib, med[DK] / med[LIBDAEMON], med[DK] / med[FLOOR], med[LIBDAEMON] / med[FLOOR],
               rounds);
        fflush(stdout);
    }
    if (fails)
        printf("FAILED launches: %d\n", fails);
    return fails ? 1 : 0;
}
