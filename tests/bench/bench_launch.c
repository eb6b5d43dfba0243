/* bench_launch.c - launch-to-ready: fork+exec a launcher, wait for it to exit 0
 * (= the daemon reported ready). Programs given on the command line are run
 * interleaved (A B A B ...), N times each. This process is a child subreaper so the
 * daemons (double-forked) are re-parented to it and reaped here, never left behind.
 *   bench_launch N PROG_A [PROG_B ...] */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reap every exited child (launchers already waited for; daemons re-parented to us). */
static void reap_all(double deadline_us)
{
    for (;;) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p > 0)
            continue;
        if (p < 0 && errno == ECHILD)
            return;
        if (now_us() > deadline_us)
            return;
        usleep(200);
    }
}

int main(int argc, char **argv)
{
    int n, np, i, j, fails = 0;
    double **t;
    if (argc < 3) {
        fprintf(stderr, "usage: bench_launch N PROG...\n");
        return 2;
    }
    n = atoi(argv[1]);
    np = argc - 2;
    if (n <= 0 || n > 100000)
        return 2;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    t = calloc(np, sizeof *t);
    for (j = 0; j < np; j++)
        t[j] = calloc(n, sizeof **t);
    for (i = 0; i < n; i++) {
        for (j = 0; j < np; j++) {
            int st = 0;
            double t0 = now_us(), t1;
            pid_t p = fork();
            if (p == 0) {
                execl(argv[2 + j], argv[2 + j], (char *)NULL);
                _exit(127);
            }
            if (p < 0) {
                perror("fork");
                return 1;
            }
            while (waitpid(p, &st, 0) < 0 && errno == EINTR)
                ;
            t1 = now_us();
            t[j][i] = t1 - t0;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fails++;
            reap_all(now_us() + 2e6); /* the daemon exits right after ready: reap it */
        }
    }
    reap_all(now_us() + 5e6);
    for (j = 0; j < np; j++) {
        const char *name = strrchr(argv[2 + j], '/');
        qsort(t[j], n, sizeof **t, cmpd);
        printf("launch %-12s n=%d median_us=%.1f p99_us=%.1f min_us=%.1f max_us=%.1f\n",
               name ? name + 1 : argv[2 + j], n, t[j][n / 2], t[j][(int)(n * 0.99)], t[j][0],
               t[j][n - 1]);
    }
    printf("launch failures=%d\n", fails);
    return fails ? 1 : 0;
}
