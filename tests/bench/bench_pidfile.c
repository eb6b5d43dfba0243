/* bench_pidfile.c - PID file contention: per round, STARTERS processes are forked, held at
 * a barrier (a pipe's EOF), then all call dk_pidfile_open on the same path at once. Exactly one must win
 * (it writes its pid and holds the lock until every starter has tried); the losers must get
 * -EEXIST naming the winner's pid. The winner then removes the file (the next round creates
 * it again) or, on odd rounds, only closes it (the next round takes over a stale file).
 *   bench_pidfile DIR STARTERS ROUNDS
 * Bounded: every wait has a timeout; a stuck child is killed by pid. */
#define _GNU_SOURCE
#include <daemonkit.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXS 256

struct shm {
    _Atomic int go;
    _Atomic int tried;
    _Atomic int winners;
    _Atomic int other_errors;
    _Atomic int wrong_pid;     /* a loser was told a pid other than the winner's */
    _Atomic int winner_pid;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char path[4096];
    int n, rounds, r, i, bad_rounds = 0, total_other = 0, total_wrong = 0;
    int minw = 1 << 30, maxw = 0;
    double *t;
    struct shm *sh;
    if (argc != 4)
        return 2;
    n = atoi(argv[2]);
    rounds = atoi(argv[3]);
    if (n < 1 || n > MAXS || rounds < 1 || rounds > 100000)
        return 2;
    snprintf(path, sizeof path, "%s/contention.pid", argv[1]);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    t = calloc(rounds, sizeof *t);
    for (r = 0; r < rounds; r++) {
        pid_t pids[MAXS];
        double t0;
        int gate[2];
        if (pipe(gate) < 0)
            return 1;
        atomic_store(&sh->go, 0);
        atomic_store(&sh->tried, 0);
        atomic_store(&sh->winners, 0);
        atomic_store(&sh->other_errors, 0);
        atomic_store(&sh->wrong_pid, 0);
        atomic_store(&sh->winner_pid, 0);
        for (i = 0; i < n; i++) {
            pids[i] = fork();
            if (pids[i] == 0) {
                dk_pidfile *pf = NULL;
                int32_t other = 0;
                double dl = now_s() + 10;
                int rc;
                char c;
                close(gate[1]);
                alarm(20); /* a stuck starter dies */
                /* barrier: blocks until the parent closes the write end (EOF wakes all) */
                while (read(gate[0], &c, 1) < 0 && errno == EINTR)
                    ;
                rc = dk_pidfile_open(path, 0, 0, &pf, &other);
                if (rc == 0) {
                    atomic_fetch_add(&sh->winners, 1);
                    dk_pidfile_write(pf);
                    atomic_store(&sh->winner_pid, getpid());
                    atomic_fetch_add(&sh->tried, 1);
                    while (atomic_load(&sh->tried) < n && now_s() < dl)
                        usleep(50);
                    if (r & 1)
                        dk_pidfile_close(pf);
                    else
                        dk_pidfile_remove(pf);
                } else {
                    if (rc != -EEXIST)
                        atomic_fetch_add(&sh->other_errors, 1);
                    atomic_fetch_add(&sh->tried, 1);
                    /* the winner may have stored its pid just after we read the file */
                    while (atomic_load(&sh->winner_pid) == 0 && now_s() < dl)
                        usleep(50);
                    if (rc == -EEXIST && other != atomic_load(&sh->winner_pid))
                        atomic_fetch_add(&sh->wrong_pid, 1);
                }
                _exit(0);
            }
        }
        close(gate[0]);
        usleep(2000); /* let the starters reach the barrier */
        t0 = now_s();
        close(gate[1]); /* go */
        for (i = 0; i < n; i++) {
            int k;
            for (k = 0; k < 2000; k++) { /* at most 20 s per starter */
                if (waitpid(pids[i], NULL, WNOHANG) == pids[i])
                    break;
                usleep(k < 100 ? 100 : 10000);
            }
            if (k == 2000) {
                kill(pids[i], SIGKILL);
                waitpid(pids[i], NULL, 0);
            }
        }
        t[r] = now_s() - t0;
        int w = atomic_load(&sh->winners);
        if (w != 1 || atomic_load(&sh->other_errors))
            bad_rounds++;
        if (w < minw)
            minw = w;
        if (w > maxw)
            maxw = w;
        total_other += atomic_load(&sh->other_errors);
        total_wrong += atomic_load(&sh->wrong_pid);
    }
    unlink(path);
    qsort(t, rounds, sizeof *t, cmpd);
    printf("pidfile starters=%d rounds=%d winners_per_round min=%d max=%d rounds_not_1=%d "
           "other_errors=%d losers_told_wrong_pid=%d round_ms median=%.2f p99=%.2f max=%.2f\n",
           n, rounds, minw, maxw, bad_rounds, total_other, total_wrong, t[rounds / 2] * 1e3,
           t[(int)(rounds * 0.99)] * 1e3, t[rounds - 1] * 1e3);
    return bad_rounds ? 1 : 0;
}
