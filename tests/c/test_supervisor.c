/* The prefork supervisor driven from C: a C worker entry (signal fd for TERM, dk_ready,
 * poll + accept on the inherited listener, answers each connection with its pid), a C
 * post-fork hook and a C event callback. The master runs in a forked child so the test
 * survives it. Checked: both workers answer over TCP, the hook ran in each, a SIGKILLed
 * worker is replaced, TTIN adds a third worker, TERM stops the master with exit 0 and the
 * events SPAWNED/EXITED/READY/WORKERS_CHANGED/STOPPING were reported; then a crash loop (a
 * worker returning 1 at once) is throttled and TERM still stops it cleanly. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#define MAX_SEEN 64

/* What the master's callbacks need (inherited by the workers through fork). */
struct sv_ctx {
    int listen_fd;
    char hook_path[256];
    char event_path[256];
};

static struct sv_ctx g_ctx;

/* Appends one line to a file (O_APPEND: one write per line, so lines do not mix). */
static void append_line(const char *path, const char *line)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    dk_test_write_all(fd, line, strlen(line));
    close(fd);
}

/* ---- the C callbacks ------------------------------------------------------------------ */

static void hook_cb(void *ctx, uint32_t index)
{
    struct sv_ctx *c = (struct sv_ctx *)ctx;
    char line[64];
    snprintf(line, sizeof line, "%d %u\n", (int)getpid(), (unsigned)index);
    append_line(c->hook_path, line);
}

static void event_cb(void *ctx, int kind, int32_t pid, int32_t value)
{
    struct sv_ctx *c = (struct sv_ctx *)ctx;
    char line[64];
    snprintf(line, sizeof line, "%d %d %d\n", kind, (int)pid, (int)value);
    append_line(c->event_path, line);
}

static int worker_cb(void *ctx, uint32_t index)
{
    struct sv_ctx *c = (struct sv_ctx *)ctx;
    static const int sigs[1] = {SIGTERM};
    int sfd = dk_signal_open(sigs, 1);
    (void)index;
    if (sfd < 0)
        return 2;
    if (dk_ready() != 0)
        return 3;
    for (;;) {
        struct pollfd p[2];
        int r;
        p[0].fd = sfd;
        p[0].events = POLLIN;
        p[0].revents = 0;
        p[1].fd = c->listen_fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        r = poll(p, 2, 1000);
        if (r < 0 && errno != EINTR)
            return 4;
        if (r > 0 && (p[0].revents & POLLIN)) {
            int s;
            while ((s = dk_signal_next()) > 0)
                if (s == SIGTERM)
                    return 0;
        }
        if (r > 0 && (p[1].revents & POLLIN)) {
            int cfd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0) {
                char buf[32];
                int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
                dk_test_write_all(cfd, buf, (size_t)n);
                close(cfd);
                /* give the other workers a turn at the next connection */
                dk_test_sleep_ms(10);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                return 5;
            }
        }
    }
}

static int crash_worker_cb(void *ctx, uint32_t index)
{
    (void)ctx;
    (void)index;
    return 1;
}

/* ---- the master (a forked child of the test) ------------------------------------------ */

/* Binds, reports the port on port_w, runs the supervisor, exits with its return code
 * (100 for a negative errno from setup). */
static void master_main(int port_w, unsigned workers, int crash)
{
    dk_supervisor *sv = NULL;
    int lfd, port, r;

    alarm(40); /* its own bound (the workers die with it: PR_SET_PDEATHSIG) */
    unsetenv("NOTIFY_SOCKET");
    lfd = dk_listen_tcp("127.0.0.1:0", 64, 0);
    port = lfd >= 0 ? dk_socket_port(lfd) : -1;
    dk_test_write_all(port_w, (const char *)&port, sizeof port);
    close(port_w);
    if (lfd < 0 || port <= 0)
        dk_test_child_exit(101);
    /* non-blocking, so a worker that loses the race for a connection does not block in
     * accept (O_NONBLOCK is shared by every worker's copy of the listener) */
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    g_ctx.listen_fd = lfd;

    if (dk_supervisor_new(&sv) != 0)
        dk_test_child_exit(102);
    r = dk_supervisor_set_workers(sv, workers);
    r |= dk_supervisor_set_graceful_timeout(sv, 5000);
    r |= dk_supervisor_set_worker(sv, crash ? crash_worker_cb : worker_cb, &g_ctx);
    r |= dk_supervisor_set_post_fork(sv, hook_cb, &g_ctx);
    r |= dk_supervisor_set_event(sv, event_cb, &g_ctx);
    r |= dk_supervisor_add_listener(sv, lfd);
    if (crash == 2) /* give up after 3 crashes in 30 s; back off at most 100 ms */
        r |= dk_supervisor_set_restart(sv, 100, 3, 30000);
    if (r != 0)
        dk_test_child_exit(103);
    r = dk_supervisor_run(sv);
    dk_supervisor_free(sv);
    close(lfd);
    dk_test_child_exit(r >= 0 ? r : 100);
}

/* ---- the test's side ------------------------------------------------------------------ */

struct master {
    pid_t pid;
    int port;
    pid_t workers[MAX_SEEN]; /* every worker pid seen (tracked: killed on every path) */
    int nworkers;
};

static int seen(const struct master *m, pid_t pid)
{
    int i;
    for (i = 0; i < m->nworkers; i++)
        if (m->workers[i] == pid)
            return 1;
    return 0;
}

static void add_worker(struct master *m, pid_t pid)
{
    if (pid > 0 && !seen(m, pid) && m->nworkers < MAX_SEEN) {
        m->workers[m->nworkers++] = pid;
        dk_test_track(pid);
    }
}

/* The parent pid of `pid` from /proc/PID/stat, or -1. */
static pid_t ppid_of(pid_t pid)
{
    char path[64], buf[512], *p;
    int ppid = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (dk_test_read_file(path, buf, sizeof buf) <= 0)
        return -1;
    p = strrchr(buf, ')'); /* comm may contain spaces */
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/* The living (not zombie) children of `parent`, from /proc; returns how many. */
static int children_of(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], *p;
        char state = 0;
        int ppid = -1;
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if (dk_test_read_file(path, buf, sizeof buf) <= 0)
            continue;
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (ppid == parent && state != 'Z' && state != 'X') {
            if (n < max)
                out[n] = pid;
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Kills every worker pid seen that is still a child of the (unreaped) master, then the
 * master, and reaps it. For every failure path; harmless after a clean stop. */
static void kill_all(struct master *m)
{
    pid_t kids[64];
    int i, n;
    if (m->pid > 0) {
        for (i = 0; i < m->nworkers; i++)
            if (ppid_of(m->workers[i]) == m->pid)
                kill(m->workers[i], SIGKILL);
        n = children_of(m->pid, kids, 64); /* also those the test never saw */
        for (i = 0; i < n && i < 64; i++)
            kill(kids[i], SIGKILL);
        kill(m->pid, SIGKILL);
        dk_test_wait(m->pid, 5000, NULL);
        m->pid = 0;
    }
    for (i = 0; i < m->nworkers; i++)
        dk_test_untrack(m->workers[i]);
    m->nworkers = 0;
}

/* Forks the master and reads its port (bounded). Returns 0, or -1 (master killed). */
static int start_master(struct master *m, unsigned workers, int crash)
{
    int pp[2], port = -1;
    struct pollfd p;
    memset(m, 0, sizeof *m);
    if (pipe2(pp, O_CLOEXEC) != 0) {
        CHECK(0);
        return -1;
    }
    m->pid = dk_test_fork();
    if (m->pid == 0) {
        close(pp[0]);
        master_main(pp[1], workers, crash);
    }
    close(pp[1]);
    CHECK(m->pid > 0);
    if (m->pid < 0) {
        close(pp[0]);
        m->pid = 0;
        return -1;
    }
    p.fd = pp[0];
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 5000) == 1 && read(pp[0], &port, sizeof port) == (ssize_t)sizeof port)
        m->port = port;
    close(pp[0]);
    CHECK_MSG(m->port > 0, "the master reported no port (%d)", port);
    if (m->port <= 0) {
        kill_all(m);
        return -1;
    }
    return 0;
}

/* Connects to the workers and reads the pid one answers with; 0 on any failure. Bounded
 * by 1 s per step. */
static pid_t ask_pid(int port)
{
    struct sockaddr_in a;
    struct pollfd p;
    char buf[32];
    size_t have = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return 0;
    }
    p.fd = fd;
    for (;;) {
        ssize_t n;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 1000) != 1)
            break;
        n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        if (have >= sizeof buf - 1)
            break;
    }
    close(fd);
    buf[have] = '\0';
    if (have == 0 || buf[have - 1] != '\n')
        return 0;
    return (pid_t)atoi(buf);
}

/* Asks until a pid not in m->workers answers (then added), up to timeout_ms. */
static pid_t wait_new_pid(struct master *m, long timeout_ms)
{
    long long deadline = dk_test_now_ms() + timeout_ms;
    while (dk_test_now_ms() < deadline) {
        pid_t pid = ask_pid(m->port);
        if (pid > 0 && !seen(m, pid)) {
            add_worker(m, pid);
            return pid;
        }
        if (pid <= 0)
            dk_test_sleep_ms(5);
    }
    return 0;
}

static int count_events(const char *text, int kind, pid_t pid, int *last_value)
{
    const char *p = text;
    int n = 0;
    while (p && *p) {
        int k, pp, v;
        if (sscanf(p, "%d %d %d", &k, &pp, &v) == 3 && k == kind &&
            (pid == 0 || (pid_t)pp == pid)) {
            n++;
            if (last_value)
                *last_value = v;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

static int hook_ran_in(const char *hooks, pid_t pid)
{
    char needle[32];
    size_t len;
    const char *p = hooks;
    len = (size_t)snprintf(needle, sizeof needle, "%d ", (int)pid);
    while (p && *p) {
        if (strncmp(p, needle, len) == 0)
            return 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

static void wait_master_exit0(struct master *m, long timeout_ms)
{
    int st = 0;
    if (dk_test_wait(m->pid, timeout_ms, &st) == 0) {
        m->pid = 0;
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "master ended with %s %d",
                  WIFEXITED(st) ? "exit status" : "signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    } else {
        m->pid = 0; /* dk_test_wait killed and reaped it */
    }
}

static void test_workers(const char *dir)
{
    struct master m;
    pid_t mpid, w1, w2, w3, victim, fresh, kids[16];
    long long t_first, deadline;
    static char events[65536], hooks[16384];
    int n, i, v = 0;

    dk_test_set_stage("supervisor: start");
    snprintf(g_ctx.hook_path, sizeof g_ctx.hook_path, "%s/hooks", dir);
    snprintf(g_ctx.event_path, sizeof g_ctx.event_path, "%s/events", dir);
    if (start_master(&m, 2, 0) != 0)
        return;
    mpid = m.pid;

    /* two distinct workers answer */
    dk_test_set_stage("supervisor: two workers answer");
    w1 = wait_new_pid(&m, 10000);
    t_first = dk_test_now_ms();
    w2 = w1 > 0 ? wait_new_pid(&m, 10000) : 0;
    CHECK_MSG(w1 > 0 && w2 > 0 && w1 != w2, "workers answering: %d %d", (int)w1, (int)w2);
    if (w1 <= 0 || w2 <= 0)
        goto out;
    CHECK_EQ(ppid_of(w1), m.pid);
    CHECK_EQ(ppid_of(w2), m.pid);

    /* the post-fork hook ran in each */
    dk_test_read_file(g_ctx.hook_path, hooks, sizeof hooks);
    CHECK_MSG(hook_ran_in(hooks, w1), "no hook line for %d in: %s", (int)w1, hooks);
    CHECK_MSG(hook_ran_in(hooks, w2), "no hook line for %d in: %s", (int)w2, hooks);

    /* SIGKILL one (more than 1 s after its start: not a crash loop) -> a new pid answers */
    dk_test_set_stage("supervisor: replace a killed worker");
    while (dk_test_now_ms() < t_first + 1100)
        dk_test_sleep_ms(20);
    victim = w1;
    CHECK_EQ(kill(victim, SIGKILL), 0);
    fresh = wait_new_pid(&m, 2000);
    CHECK_MSG(fresh > 0, "no new worker answered within 2 s after killing %d", (int)victim);
    if (fresh <= 0)
        goto out;
    CHECK_NE(fresh, victim);
    CHECK_EQ(ppid_of(fresh), m.pid);
    dk_test_read_file(g_ctx.hook_path, hooks, sizeof hooks);
    CHECK_MSG(hook_ran_in(hooks, fresh), "no hook line for %d in: %s", (int)fresh, hooks);
    /* the master has reaped the victim (EXITED, killed by SIGKILL) */
    deadline = dk_test_now_ms() + 2000;
    while (dk_test_now_ms() < deadline) {
        dk_test_read_file(g_ctx.event_path, events, sizeof events);
        if (count_events(events, DK_EVENT_EXITED, victim, &v) > 0)
            break;
        dk_test_sleep_ms(10);
    }
    CHECK_EQ(count_events(events, DK_EVENT_EXITED, victim, &v), 1);
    CHECK(WIFSIGNALED(v) && WTERMSIG(v) == SIGKILL);
    dk_test_untrack(victim); /* reaped by the master: its pid may be reused */

    /* TTIN -> three workers, children of the master */
    dk_test_set_stage("supervisor: TTIN");
    CHECK_EQ(kill(m.pid, SIGTTIN), 0);
    deadline = dk_test_now_ms() + 3000;
    n = 0;
    while (dk_test_now_ms() < deadline) {
        n = children_of(m.pid, kids, 16);
        if (n == 3)
            break;
        dk_test_sleep_ms(20);
    }
    CHECK_EQ(n, 3);
    w3 = 0;
    for (i = 0; i < n && i < 16; i++) {
        if (!seen(&m, kids[i]) || kids[i] == victim)
            w3 = kids[i];
        add_worker(&m, kids[i]);
    }
    CHECK_MSG(w3 > 0 && w3 != victim, "no new child after TTIN");
    for (i = 0; i < n && i < 16; i++)
        CHECK_NE(kids[i], victim);
    dk_test_read_file(g_ctx.event_path, events, sizeof events);
    CHECK_EQ(count_events(events, DK_EVENT_WORKERS_CHANGED, 0, &v), 1);
    CHECK_EQ(v, 3);
    if (w3 > 0) {
        /* its hook ran (it may not have reached it the instant /proc shows it) */
        deadline = dk_test_now_ms() + 2000;
        while (dk_test_now_ms() < deadline) {
            dk_test_read_file(g_ctx.hook_path, hooks, sizeof hooks);
            if (hook_ran_in(hooks, w3))
                break;
            dk_test_sleep_ms(10);
        }
        CHECK_MSG(hook_ran_in(hooks, w3), "no hook line for %d in: %s", (int)w3, hooks);
    }

    /* TERM -> the master stops the workers and exits 0 */
    dk_test_set_stage("supervisor: TERM");
    CHECK_EQ(kill(m.pid, SIGTERM), 0);
    wait_master_exit0(&m, 10000);
    for (i = 0; i < m.nworkers; i++)
        dk_test_untrack(m.workers[i]); /* all reaped by the master before it returned */
    m.nworkers = 0;

    dk_test_read_file(g_ctx.event_path, events, sizeof events);
    n = count_events(events, DK_EVENT_SPAWNED, 0, NULL);
    CHECK_MSG(n == 4, "SPAWNED events: %d (want 2 + replacement + TTIN)\n%s", n, events);
    CHECK_EQ(count_events(events, DK_EVENT_SPAWNED, w2, NULL), 1);
    CHECK_EQ(count_events(events, DK_EVENT_SPAWNED, fresh, NULL), 1);
    CHECK_EQ(count_events(events, DK_EVENT_EXITED, 0, NULL), n); /* every worker reaped */
    CHECK_EQ(count_events(events, DK_EVENT_EXITED, w2, &v), 1);
    CHECK(WIFEXITED(v) && WEXITSTATUS(v) == 0); /* returned 0 on TERM */
    CHECK_EQ(count_events(events, DK_EVENT_READY, 0, &v), 1);
    CHECK_EQ(v, 2);
    CHECK_EQ(count_events(events, DK_EVENT_READY, mpid, NULL), 1); /* the master's pid */
    CHECK_EQ(count_events(events, DK_EVENT_WORKERS_CHANGED, 0, NULL), 1);
    CHECK_EQ(count_events(events, DK_EVENT_STOPPING, 0, &v), 1);
    CHECK_EQ(v, 5000);
    CHECK_EQ(count_events(events, DK_EVENT_RESPAWN_DELAYED, 0, NULL), 0);

out:
    kill_all(&m);
}

static void test_crash_loop(const char *dir)
{
    struct master m;
    static char events[65536];
    long long t0;
    int n;

    dk_test_set_stage("supervisor: crash loop");
    snprintf(g_ctx.hook_path, sizeof g_ctx.hook_path, "%s/hooks-crash", dir);
    snprintf(g_ctx.event_path, sizeof g_ctx.event_path, "%s/events-crash", dir);
    t0 = dk_test_now_ms();
    if (start_master(&m, 1, 1) != 0)
        return;
    while (dk_test_now_ms() < t0 + 2500)
        dk_test_sleep_ms(20);
    dk_test_read_file(g_ctx.event_path, events, sizeof events);
    n = count_events(events, DK_EVENT_SPAWNED, 0, NULL);
    CHECK_MSG(n >= 2 && n <= 4, "SPAWNED events within 2.5 s of a crash loop: %d\n%s", n,
              events);
    CHECK(count_events(events, DK_EVENT_RESPAWN_DELAYED, 0, NULL) >= 1);
    CHECK_EQ(count_events(events, DK_EVENT_READY, 0, NULL), 0);

    CHECK_EQ(kill(m.pid, SIGTERM), 0);
    wait_master_exit0(&m, 10000);
    dk_test_read_file(g_ctx.event_path, events, sizeof events);
    CHECK_EQ(count_events(events, DK_EVENT_STOPPING, 0, NULL), 1);
    CHECK_EQ(count_events(events, DK_EVENT_EXITED, 0, NULL),
             count_events(events, DK_EVENT_SPAWNED, 0, NULL));
    kill_all(&m);
}

/* The restart policy through the C ABI: three crashes end the run with
 * DK_SUPERVISOR_GAVE_UP (the master exits with it), the backoff capped at 100 ms. */
static void test_give_up(const char *dir)
{
    struct master m;
    static char events[65536];
    int st = 0, last = 0;
    long long t0;

    dk_test_set_stage("supervisor: give up");
    snprintf(g_ctx.hook_path, sizeof g_ctx.hook_path, "%s/hooks-giveup", dir);
    snprintf(g_ctx.event_path, sizeof g_ctx.event_path, "%s/events-giveup", dir);
    t0 = dk_test_now_ms();
    if (start_master(&m, 1, 2) != 0)
        return;
    CHECK_EQ(dk_test_wait(m.pid, 10000, &st), 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == DK_SUPERVISOR_GAVE_UP,
              "master status 0x%x, want exit %d", st, DK_SUPERVISOR_GAVE_UP);
    CHECK_MSG(dk_test_now_ms() - t0 < 3000, "giving up took %lld ms", dk_test_now_ms() - t0);
    dk_test_read_file(g_ctx.event_path, events, sizeof events);
    CHECK_EQ(count_events(events, DK_EVENT_GAVE_UP, 0, &last), 1);
    CHECK_EQ(last, 3);
    CHECK_EQ(count_events(events, DK_EVENT_SPAWNED, 0, NULL), 3);
    count_events(events, DK_EVENT_RESPAWN_DELAYED, 0, &last);
    CHECK_MSG(last <= 100, "backoff %d ms over its 100 ms cap", last);
    m.pid = 0;
    kill_all(&m);
}

int main(void)
{
    const char *dir;
    dk_test_init("supervisor", 60);
    dir = dk_test_tmpdir();
    test_workers(dir);
    test_crash_loop(dir);
    test_give_up(dir);
    return dk_test_done();
}
