/* bench_workers.c - a prefork master with many workers (issue 17, item 2).
 *
 *   bench_workers roll  hup|ttin|usr2 NAME MASTER PORT LOG N PIDFILE
 *       hup:  HUP the master; done when none of the workers it had is left, it has N
 *             children and each has logged "worker PID ready".
 *       ttin: the master runs 1 worker; N-1 TTINs, each sent once the master has logged
 *             "worker count now K" for the one before (a TTIN sent while another is still
 *             pending is merged into it by the kernel: standard signals are not queued; a
 *             TTIN not counted within 0.5 s is sent again, at most 20 times); done when the
 *             master has N children, each ready.
 *       usr2: USR2 to the master; done when PIDFILE names another pid, the old master is
 *             gone and the new one has N children, each ready.
 *       Then one GET / must be answered. Prints the times from the signal, and the master's
 *       CPU time over the operation (schedstat: every thread; for usr2 the new master's).
 *   bench_workers idle NAME MASTER SECONDS
 *       The master's context switches (voluntary + involuntary, every thread) and CPU time
 *       over SECONDS of nothing, and the same summed over its children.
 *   bench_workers respawn ROUNDS NAME1 MASTER1 LOG1 [NAME2 MASTER2 LOG2]
 *       SIGKILL the oldest worker (at least 1.2 s old: the supervisor throttles a worker that
 *       dies within 1 s of its start) and time until the master logs a new worker "started"
 *       and that worker logs "ready"; the masters take turns, round by round.
 *
 * "Ready" comes from the log: the daemonkit supervisor's default event lines ("worker PID
 * started (index I)", "worker PID ready") and, for gunicorn, the same "worker PID ready" line
 * written by the bench's post_worker_init hook (tests/bench/hello_wsgi.py). The log is
 * watched with inotify, so a line is seen within microseconds of its write; the children are
 * read from /proc/MASTER/task/MASTER/children, at least every millisecond while waiting.
 * Every wait is bounded (TIMEOUT_S). 127.0.0.1 only. Starts no process. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXW 1024
#define TIMEOUT_S 120.0

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

/* ------------------------------------------------------------ /proc */

/* The children of MASTER's main thread (a master forks from it). */
static int children(int master, int *pids, int max)
{
    char path[64], buf[16384];
    int fd, n = 0;
    ssize_t r;
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", master, master);
    if ((fd = open(path, O_RDONLY)) < 0)
        return -1;
    r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r < 0)
        return -1;
    buf[r] = 0;
    for (char *p = buf; *p && n < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        pids[n++] = (int)v;
        p = end;
    }
    return n;
}

static int contains(const int *a, int n, int v)
{
    for (int i = 0; i < n; i++)
        if (a[i] == v)
            return 1;
    return 0;
}

/* Summed over every thread of PID: context switches, and CPU ns (schedstat) and ticks
 * (utime+stime of /proc/PID/stat). 0 when PID is gone. */
struct usage {
    unsigned long long ctxt, cpu_ns, ticks;
    int threads;
};

static int usage_of(int pid, struct usage *u)
{
    char path[320], line[256];
    DIR *d;
    struct dirent *e;
    FILE *f;
    memset(u, 0, sizeof *u);
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    if (!(d = opendir(path)))
        return 0;
    while ((e = readdir(d))) {
        unsigned long long ns;
        if (e->d_name[0] == '.')
            continue;
        u->threads++;
        snprintf(path, sizeof path, "/proc/%d/task/%s/status", pid, e->d_name);
        if ((f = fopen(path, "r"))) {
            while (fgets(line, sizeof line, f)) {
                unsigned long long v;
                if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
                    sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
                    u->ctxt += v;
            }
            fclose(f);
        }
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%llu", &ns) == 1)
                u->cpu_ns += ns;
            fclose(f);
        }
    }
    closedir(d);
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r"))) {
        char buf[1024], *p;
        unsigned long long ut, st;
        if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')) &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            u->ticks = ut + st;
        fclose(f);
    }
    return 1;
}

/* Start time of PID in clock ticks since boot (0: gone). */
static unsigned long long start_of(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long long st = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return 0;
    if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')))
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                      "%*d %llu", &st);
    fclose(f);
    return st;
}

/* A live process (not a zombie waiting for its reaper). */
static int alive(int pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    int ok = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return 0;
    if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')))
        ok = p[2] != 'Z' && p[2] != 'X';
    fclose(f);
    return ok;
}

/* ------------------------------------------------------------ the log */

static unsigned char *ready_set; /* bit per pid: "worker PID ready" seen */
static unsigned pid_max = 4194304;

struct log {
    const char *path;
    int fd, ino;
    char part[4096];
    size_t plen;
    /* the last "worker count now K", and the newest "started" pids not yet taken */
    int count_now;
    int started[MAXW];
    int nstarted;
};

static void set_ready(int pid)
{
    if (pid > 0 && (unsigned)pid < pid_max)
        ready_set[pid / 8] |= 1u << (pid % 8);
}

static int is_ready(int pid)
{
    return pid > 0 && (unsigned)pid < pid_max && (ready_set[pid / 8] >> (pid % 8)) & 1;
}

static void on_line(struct log *l, const char *s)
{
    const char *p = strstr(s, "worker ");
    int pid, k;
    char word[32];
    if ((p = strstr(s, "worker count now ")) && sscanf(p, "worker count now %d", &k) == 1) {
        l->count_now = k;
        return;
    }
    for (p = strstr(s, "worker "); p; p = strstr(p + 1, "worker ")) {
        if (sscanf(p, "worker %d %31s", &pid, word) != 2)
            continue;
        if (strcmp(word, "ready") == 0 || strcmp(word, "assumed") == 0)
            set_ready(pid);
        else if (strcmp(word, "started") == 0 && l->nstarted < MAXW)
            l->started[l->nstarted++] = pid;
        return;
    }
}

static int log_open(struct log *l, const char *path, int inotify_fd)
{
    memset(l, 0, sizeof *l);
    l->path = path;
    l->count_now = -1;
    if ((l->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        perror(path);
        return -1;
    }
    l->ino = inotify_add_watch(inotify_fd, path, IN_MODIFY);
    return 0;
}

/* Reads what was appended since the last call, line by line. */
static void log_read(struct log *l)
{
    char buf[65536];
    ssize_t r;
    while ((r = read(l->fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == '\n') {
                l->part[l->plen] = 0;
                on_line(l, l->part);
                l->plen = 0;
            } else if (l->plen < sizeof l->part - 1) {
                l->part[l->plen++] = buf[i];
            }
        }
    }
}

/* Waits up to ms for the log to grow (or ms to pass), then reads every log. */
static void wait_logs(int inotify_fd, struct log **ls, int nl, int ms)
{
    struct pollfd p = { .fd = inotify_fd, .events = POLLIN };
    char ev[4096];
    if (poll(&p, 1, ms) > 0)
        while (read(inotify_fd, ev, sizeof ev) > 0) {
        }
    for (int i = 0; i < nl; i++)
        log_read(ls[i]);
}

/* ------------------------------------------------------------ HTTP */

/* GET / on 127.0.0.1:port; 1 when a 200 came within 5 s. */
static int http_ok(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[512];
    size_t len = 0;
    double dl = now_s() + 5;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0)
        return 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return 0;
    }
    while (len < sizeof buf - 1 && now_s() < dl) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t r;
        if (poll(&p, 1, 100) <= 0)
            continue;
        r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += r;
    }
    buf[len] = 0;
    close(fd);
    ok = strncmp(buf, "HTTP/1.1 200", 12) == 0 || strncmp(buf, "HTTP/1.0 200", 12) == 0;
    return ok;
}

static int read_pidfile(const char *path)
{
    char buf[32] = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC), pid = 0;
    if (fd < 0)
        return 0;
    if (read(fd, buf, sizeof buf - 1) > 0)
        pid = atoi(buf);
    close(fd);
    return pid;
}

/* ------------------------------------------------------------ modes */

static int roll(int argc, char **argv)
{
    const char *mode, *name, *logpath, *pidfile;
    int master, port, n, old[MAXW], nold, kids[MAXW], nk = 0, ino, sent = 0, topups = 0;
    int cur, done = 0, last_count = -1;
    double t0, t_done = 0, t_answer = 0, last_change;
    struct log lg, *lp = &lg;
    struct usage u0, u1;
    if (argc != 9)
        return 2;
    mode = argv[2];
    name = argv[3];
    master = atoi(argv[4]);
    port = atoi(argv[5]);
    logpath = argv[6];
    n = atoi(argv[7]);
    pidfile = argv[8];
    if (master <= 1 || port <= 0 || n <= 0 || n > MAXW)
        return 2;
    if ((ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 || log_open(&lg, logpath, ino) < 0)
        return 1;
    log_read(&lg); /* what is ready already */
    nold = children(master, old, MAXW);
    if (nold < 0) {
        fprintf(stderr, "roll: master %d is gone\n", master);
        return 1;
    }
    usage_of(master, &u0);
    cur = master;
    t0 = now_s();
    if (strcmp(mode, "hup") == 0) {
        kill(master, SIGHUP);
    } else if (strcmp(mode, "usr2") == 0) {
        kill(master, SIGUSR2);
    } else if (strcmp(mode, "ttin") == 0) {
        if (n > 1)
            sent += kill(master, SIGTTIN) == 0;
    } else {
        return 2;
    }
    last_change = now_s();
    while (now_s() < t0 + TIMEOUT_S) {
        int ok;
        wait_logs(ino, &lp, 1, 1);
        if (strcmp(mode, "usr2") == 0) {
            int p = read_pidfile(pidfile);
            if (p <= 0 || p == master || alive(master))
                continue;
            cur = p;
        }
        /* The last TTIN was counted: the next one (paced, so that none is merged). */
        if (strcmp(mode, "ttin") == 0 && lg.count_now != last_count) {
            last_count = lg.count_now;
            last_change = now_s();
            if (lg.count_now < n)
                sent += kill(master, SIGTTIN) == 0;
        }
        if (strcmp(mode, "ttin") == 0 && (lg.count_now < 0 || lg.count_now < n) &&
            now_s() - last_change > 0.5 && topups < 20) {
            sent += kill(master, SIGTTIN) == 0; /* not counted: sent again (bounded) */
            topups++;
            last_change = now_s();
        }
        nk = children(cur, kids, MAXW);
        if (nk != n)
            continue;
        ok = 1;
        for (int i = 0; i < nk && ok; i++)
            ok = is_ready(kids[i]) && !(strcmp(mode, "hup") == 0 && contains(old, nold, kids[i]));
        if (ok) {
            done = 1;
            break;
        }
    }
    t_done = now_s() - t0;
    usage_of(cur, &u1);
    if (cur != master)
        memset(&u0, 0, sizeof u0); /* the new master: all of its life */
    if (done && http_ok(port))
        t_answer = now_s() - t0;
    printf("workers %-4s %-9s n=%-3d %s done_ms=%.1f answered_ms=%.1f master_cpu_ms=%.1f "
           "master_ticks=%llu",
           mode, name, n, done ? "complete" : "INCOMPLETE", t_done * 1e3,
           t_answer > 0 ? t_answer * 1e3 : -1.0, (u1.cpu_ns - u0.cpu_ns) / 1e6,
           u1.ticks - u0.ticks);
    if (strcmp(mode, "ttin") == 0)
        printf(" ttin_sent=%d (needed %d, sent again %d)", sent, n - 1, topups);
    if (strcmp(mode, "usr2") == 0)
        printf(" new_master=%d", cur);
    if (!done)
        printf(" children=%d", nk);
    printf("\n");
    return done && t_answer > 0 ? 0 : 1;
}

static int idle(int argc, char **argv)
{
    const char *name;
    int master, secs, kids[MAXW], nk;
    struct usage m0, m1, k0 = { 0 }, k1 = { 0 }, u;
    if (argc != 5)
        return 2;
    name = argv[2];
    master = atoi(argv[3]);
    secs = atoi(argv[4]);
    if (master <= 1 || secs <= 0 || secs > 60)
        return 2;
    nk = children(master, kids, MAXW);
    if (nk < 0)
        return 1;
    usage_of(master, &m0);
    for (int i = 0; i < nk; i++)
        if (usage_of(kids[i], &u)) {
            k0.ctxt += u.ctxt;
            k0.cpu_ns += u.cpu_ns;
        }
    sleep((unsigned)secs);
    if (!usage_of(master, &m1)) {
        fprintf(stderr, "idle: master %d is gone\n", master);
        return 1;
    }
    for (int i = 0; i < nk; i++)
        if (usage_of(kids[i], &u)) {
            k1.ctxt += u.ctxt;
            k1.cpu_ns += u.cpu_ns;
        }
    printf("idle %-9s workers=%-3d seconds=%d master: threads=%d ctxt_switches=%llu "
           "wakeups_per_s=%.2f cpu_ms=%.3f ticks=%llu | workers: ctxt_switches=%llu cpu_ms=%.3f\n",
           name, nk, secs, m1.threads, m1.ctxt - m0.ctxt, (double)(m1.ctxt - m0.ctxt) / secs,
           (m1.cpu_ns - m0.cpu_ns) / 1e6, m1.ticks - m0.ticks, k1.ctxt - k0.ctxt,
           (k1.cpu_ns - k0.cpu_ns) / 1e6);
    return 0;
}

static int respawn(int argc, char **argv)
{
    int rounds, ns, ino, bad = 0;
    const char *names[2];
    int masters[2];
    struct log lgs[2], *lps[2];
    double *tsp[2], *trd[2], *mcpu[2];
    int got[2] = { 0, 0 };
    double tick = (double)sysconf(_SC_CLK_TCK);
    if (argc != 6 && argc != 9)
        return 2;
    rounds = atoi(argv[2]);
    ns = argc == 9 ? 2 : 1;
    if (rounds <= 0 || rounds > 1000)
        return 2;
    if ((ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        return 1;
    for (int s = 0; s < ns; s++) {
        names[s] = argv[3 + 3 * s];
        masters[s] = atoi(argv[4 + 3 * s]);
        if (masters[s] <= 1 || log_open(&lgs[s], argv[5 + 3 * s], ino) < 0)
            return 2;
        lps[s] = &lgs[s];
        log_read(&lgs[s]);
        lgs[s].nstarted = 0;
        tsp[s] = calloc(rounds, sizeof(double));
        trd[s] = calloc(rounds, sizeof(double));
        mcpu[s] = calloc(rounds, sizeof(double));
    }
    double end = now_s() + 3.0 * rounds * ns;
    for (int r = 0; r < rounds * ns && now_s() < end; r++) {
        int s = r % ns, kids[MAXW], nk, victim = -1, newpid = 0;
        unsigned long long st, vst = 0;
        double up, t0, t_sp = 0, t_rd = 0, dl;
        struct usage m0, m1;
        FILE *f;
        nk = children(masters[s], kids, MAXW);
        if (nk <= 0) {
            fprintf(stderr, "respawn: master %d has no workers\n", masters[s]);
            return 1;
        }
        for (int i = 0; i < nk; i++) {
            st = start_of(kids[i]);
            if (st && (victim < 0 || st < vst)) {
                victim = kids[i];
                vst = st;
            }
        }
        f = fopen("/proc/uptime", "r");
        if (!f || fscanf(f, "%lf", &up) != 1)
            return 1;
        fclose(f);
        if (victim < 0 || up - vst / tick < 1.2) {
            usleep(300000);
            r--;
            continue;
        }
        wait_logs(ino, lps, ns, 0);
        lgs[s].nstarted = 0;
        usage_of(masters[s], &m0);
        t0 = now_s();
        kill(victim, SIGKILL);
        dl = t0 + 5;
        while (now_s() < dl) {
            wait_logs(ino, lps, ns, 5);
            if (!newpid) {
                for (int i = 0; i < lgs[s].nstarted && !newpid; i++)
                    if (lgs[s].started[i] != victim && !contains(kids, nk, lgs[s].started[i]))
                        newpid = lgs[s].started[i];
                if (newpid)
                    t_sp = now_s() - t0;
            }
            if (newpid && is_ready(newpid)) {
                t_rd = now_s() - t0;
                break;
            }
        }
        usage_of(masters[s], &m1);
        if (t_rd > 0) {
            mcpu[s][got[s]] = (m1.cpu_ns - m0.cpu_ns) / 1e3;
            tsp[s][got[s]] = t_sp;
            trd[s][got[s]++] = t_rd;
        } else {
            bad++;
        }
        usleep(100000);
    }
    double med[2] = { 0, 0 };
    for (int s = 0; s < ns; s++) {
        int g = got[s];
        qsort(tsp[s], g, sizeof(double), cmpd);
        qsort(trd[s], g, sizeof(double), cmpd);
        qsort(mcpu[s], g, sizeof(double), cmpd);
        med[s] = g ? trd[s][g / 2] * 1e3 : -1;
        printf("respawn %-9s samples=%d/%d kill->started: median_ms=%.2f p90_ms=%.2f | "
               "kill->ready: median_ms=%.2f p90_ms=%.2f min_ms=%.2f max_ms=%.2f | "
               "master cpu per respawn: median_us=%.0f\n",
               names[s], g, rounds, g ? tsp[s][g / 2] * 1e3 : -1,
               g ? tsp[s][(int)(g * 0.9)] * 1e3 : -1, med[s],
               g ? trd[s][(int)(g * 0.9)] * 1e3 : -1, g ? trd[s][0] * 1e3 : -1,
               g ? trd[s][g - 1] * 1e3 : -1, g ? mcpu[s][g / 2] : -1);
    }
    if (ns == 2 && med[0] > 0)
        printf("respawn ratio %s/%s kill->ready median: %.2f\n", names[1], names[0],
               med[1] / med[0]);
    return bad == 0 && got[0] == rounds && (ns == 1 || got[1] == rounds) ? 0 : 1;
}

int main(int argc, char **argv)
{
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    if (f) {
        if (fscanf(f, "%u", &pid_max) != 1 || pid_max > (1u << 22))
            pid_max = 1u << 22;
        fclose(f);
    }
    ready_set = calloc(pid_max / 8 + 1, 1);
    if (argc < 2 || !ready_set)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "roll") == 0)
        return roll(argc, argv);
    if (strcmp(argv[1], "idle") == 0)
        return idle(argc, argv);
    if (strcmp(argv[1], "respawn") == 0)
        return respawn(argc, argv);
    fprintf(stderr, "usage: bench_workers roll|idle|respawn ...\n");
    return 2;
}
