/* bench_respawn.c - respawn time: SIGKILL one worker of a dk-hello master (-w N), then time
 * until a request is answered by a worker that did not exist before the kill (GET /pid names
 * the answering worker). Requests go in batches of BATCH concurrent connections so the new
 * worker competes for accept() alongside the survivors. The victim is always the oldest
 * worker and at least 1.2 s old (the supervisor throttles workers that die within 1 s of
 * their start: that would measure the throttle, not the respawn).
 *   bench_respawn MASTER_PID PORT SAMPLES
 * Bounded: at most 5 s per sample, at most SAMPLES * 3 s in all. 127.0.0.1 only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXW 64
#define BATCH 8

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

/* Children of master with their start times (clock ticks since boot). */
static int children(int master, int *pids, unsigned long long *start)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) && n < MAXW) {
        char path[64], buf[1024], *p;
        FILE *f;
        int pid = atoi(e->d_name), ppid;
        unsigned long long st;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (!(f = fopen(path, "r")))
            continue;
        if (!fgets(buf, sizeof buf, f)) {
            fclose(f);
            continue;
        }
        fclose(f);
        p = strrchr(buf, ')');
        if (!p)
            continue;
        /* fields after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime */
        if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                          "%*d %*d %llu", &ppid, &st) != 2)
            continue;
        if (ppid == master) {
            pids[n] = pid;
            start[n++] = st;
        }
    }
    closedir(d);
    return n;
}

/* One batch of BATCH concurrent GET /pid; returns 1 if any reply names a pid not in old[]. */
static int batch(int port, const int *old, int nold, double deadline)
{
    int fds[BATCH], i, found = 0;
    char bufs[BATCH][512];
    size_t lens[BATCH];
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    static const char req[] = "GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (i = 0; i < BATCH; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        lens[i] = 0;
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof a) < 0 ||
            write(fds[i], req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
            if (fds[i] >= 0)
                close(fds[i]);
            fds[i] = -1;
        }
    }
    for (;;) {
        struct pollfd p[BATCH];
        int open = 0;
        for (i = 0; i < BATCH; i++) {
            p[i].fd = fds[i];
            p[i].events = POLLIN;
            open += fds[i] >= 0;
        }
        if (!open || now_s() > deadline)
            break;
        if (poll(p, BATCH, 100) <= 0)
            continue;
        for (i = 0; i < BATCH; i++) {
            ssize_t r;
            if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            r = read(fds[i], bufs[i] + lens[i], sizeof bufs[i] - 1 - lens[i]);
            if (r > 0) {
                lens[i] += r;
                continue;
            }
            bufs[i][lens[i]] = 0;
            close(fds[i]);
            fds[i] = -1;
            char *body = strstr(bufs[i], "\r\n\r\n");
            if (body && strncmp(bufs[i], "HTTP/1.1 200", 12) == 0) {
                int pid = atoi(body + 4), k, known = 0;
                for (k = 0; k < nold; k++)
                    known |= old[k] == pid;
                if (!known && pid > 0)
                    found = 1;
            }
        }
    }
    for (i = 0; i < BATCH; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return found;
}

int main(int argc, char **argv)
{
    int master, port, n, s, got = 0, batches_total = 0;
    double *t, tick = (double)sysconf(_SC_CLK_TCK), end;
    if (argc != 4)
        return 2;
    master = atoi(argv[1]);
    port = atoi(argv[2]);
    n = atoi(argv[3]);
    if (master <= 1 || port <= 0 || n <= 0 || n > 1000)
        return 2;
    t = calloc(n, sizeof *t);
    end = now_s() + 3.0 * n;
    for (s = 0; s < n && now_s() < end; s++) {
        int pids[MAXW], nw, i, oldest = -1, ok = 0;
        unsigned long long st[MAXW];
        double up, t0, dl;
        FILE *f = fopen("/proc/uptime", "r");
        if (!f || fscanf(f, "%lf", &up) != 1)
            return 1;
        fclose(f);
        nw = children(master, pids, st);
        for (i = 0; i < nw; i++)
            if (oldest < 0 || st[i] < st[oldest])
                oldest = i;
        if (oldest < 0) {
            fprintf(stderr, "respawn: master %d has no workers\n", master);
            return 1;
        }
        if (up - st[oldest] / tick < 1.2) { /* too young: wait, do not count */
            usleep((useconds_t)((1.25 - (up - st[oldest] / tick)) * 1e6));
            s--;
            continue;
        }
        t0 = now_s();
        kill(pids[oldest], SIGKILL);
        dl = t0 + 5;
        while (now_s() < dl) {
            batches_total++;
            if (batch(port, pids, nw, dl)) {
                ok = 1;
                break;
            }
        }
        if (ok)
            t[got++] = now_s() - t0;
        usleep(250000); /* spread the kills over the workers */
    }
    qsort(t, got, sizeof *t, cmpd);
    printf("respawn samples=%d/%d median_ms=%.2f p90_ms=%.2f min_ms=%.2f max_ms=%.2f "
           "(batches of %d requests: %d)\n", got, n, got ? t[got / 2] * 1e3 : -1.0,
           got ? t[(int)(got * 0.9)] * 1e3 : -1.0, got ? t[0] * 1e3 : -1.0,
           got ? t[got - 1] * 1e3 : -1.0, BATCH, batches_total);
    return got == n ? 0 : 1;
}
