/*
 * dk-hello.c - the daemonkit example server in C (the reference for C users).
 *
 * A small poll()-based HTTP/1.1 server. Everything outside request handling -
 * daemonizing with readiness, the PID file, privileges, signals, limits, the
 * worker supervisor, socket activation, re-exec and zero-downtime upgrades -
 * is done by libdaemonkit; this file only calls it, in the order of
 * examples/README.md ("the recipe").
 *
 *   dk-hello [--listen HOST:PORT] [-D|--daemonize] [--pid FILE] [--user USER]
 *            [--group GROUP] [-w|--workers N] [--max-requests N] [--log FILE]
 *            [--nofile N] [--graceful-timeout SECONDS] [--foreground-notify]
 *            [--notify-fd N] [--reuseport]
 *
 * --reuseport (with -w N): one SO_REUSEPORT listening socket per worker slot
 * instead of one shared socket (dk_supervisor_add_listener_slots): the N
 * sockets are bound here, held by the master, and worker slot i accepts on
 * socket i only. A new generation (USR2) inherits all N.
 *
 * --notify-fd N: s6's readiness protocol (the service directory's
 * notification-fd file names N). Stays in the foreground and hands fd N to
 * dk_notify_fd(): dk_ready() writes "\n" to it and closes it once we serve
 * (with -w N, the master does, once every worker is ready). A re-exec (HUP)
 * or a new generation (USR2) does not get the option: the fd is closed by
 * then, and fd N may well be an inherited listener in the new image.
 *
 * Endpoints: GET /  /pid  /ids  /slow?ms=N  (anything else: 404). Every
 * response carries Content-Length and "Connection: close", then the
 * connection is closed. One log line per request on stdout:
 * "METHOD PATH STATUS pid=PID".
 *
 * Build: see the Makefile next to this file (plain C99 + POSIX.1-2008, libc
 * and libdaemonkit only).
 *
 * Fault variants for the conformance suite's self-test (never for real use):
 *   -DDK_FAULT_IGNORE_HUP     single-process mode ignores HUP (no re-exec).
 *   -DDK_FAULT_PIDFILE_EARLY  writes the pid before dk_daemonize, so the PID
 *                             file holds the launcher's pid, not the daemon's.
 */
#include <daemonkit.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define LANG "c"
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define REQ_MAX 8192          /* request line + headers, at most */
#define OUT_MAX 2048          /* one whole response */
#define MAX_CONNS 1024        /* connections one process serves at once */
#define IO_TIMEOUT_MS 10000   /* a client must send its request / read ours within this */
#define SLOW_MAX_MS 600000    /* /slow?ms=N: N at most 10 minutes */
#define LINGER_MS 2000        /* after an error response: drain what the client still sends */
#define UPGRADE_TIMEOUT_MS 30000

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */

struct config {
    const char *listen;          /* --listen HOST:PORT */
    int daemonize;               /* -D */
    int foreground_notify;       /* --foreground-notify */
    const char *pid_path;        /* --pid FILE (absolute) */
    const char *log_path;        /* --log FILE (absolute) */
    const char *user, *group;    /* --user / --group */
    unsigned workers;            /* -w N; 0: single process */
    unsigned long max_requests;  /* --max-requests N; 0: unlimited */
    unsigned long long nofile;   /* --nofile N; 0: unchanged */
    unsigned graceful_ms;        /* --graceful-timeout S, in ms */
    int notify_fd;               /* --notify-fd N; -1: none */
    int reuseport;               /* --reuseport: a socket per worker slot */
};

static struct config cfg;
static char exe[PATH_MAX];       /* our own program, from /proc/self/exe */
static char **reargv;            /* what a re-exec or an upgrade runs: {exe, argv[1..], NULL} */
static int lfd = -1;             /* the listening socket */
static int slot_fds[DK_SUPERVISOR_MAX_WORKERS];   /* lfd; with --reuseport N - 1 more */
static unsigned nslot_fds;
static dk_pidfile *pf;           /* the locked PID file (NULL without --pid) */

static void usage(FILE *f)
{
    fputs("usage: dk-hello [--listen HOST:PORT] [-D|--daemonize] [--pid FILE]\n"
          "                [--user USER] [--group GROUP] [-w|--workers N]\n"
          "                [--max-requests N] [--log FILE] [--nofile N]\n"
          "                [--graceful-timeout SECONDS] [--foreground-notify]\n"
          "                [--notify-fd N] [--reuseport]\n", f);
}

static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* An absolute version of path (the daemon's working directory becomes "/"). */
static char *absolute(const char *path)
{
    char cwd[PATH_MAX], *abs;
    size_t n;
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
        return strdup(path);
    n = strlen(cwd) + strlen(path) + 2;
    abs = malloc(n);
    if (abs != NULL)
        snprintf(abs, n, "%s/%s", cwd, path);
    return abs;
}

/* The options that take a value. */
static int is_option(const char *name)
{
    static const char *const names[] = { "--listen", "--pid", "--log", "--user", "--group",
                                         "-w", "--workers", "--max-requests", "--nofile",
                                         "--graceful-timeout", "--notify-fd" };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* "--name=VALUE" for the rebuilt argv, when the user wrote it that way. */
static char *joined(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

/* Parses argv into cfg and builds reargv: the same arguments with --pid and
 * --log made absolute, so the re-executed image finds the same files from "/",
 * and without --notify-fd (its fd is used up once we are ready).
 * Returns 0, or the exit code for a usage error. */
static int parse_args(int argc, char **argv)
{
    int i, j;
    cfg.listen = DEFAULT_LISTEN;
    cfg.graceful_ms = 30000;
    cfg.notify_fd = -1;
    reargv = calloc((size_t)argc + 1, sizeof *reargv);
    if (reargv == NULL)
        return 1;
    reargv[0] = exe;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *v;
        size_t len = (a[0] == '-' && a[1] == '-' && eq != NULL) ? (size_t)(eq - a) : strlen(a);
        int at = i;   /* where the value sits in argv */
        int opt_at = i;   /* where the option itself sits */
        unsigned long long n;
        char name[32];

        reargv[i] = argv[i];
        if (strcmp(a, "-D") == 0 || strcmp(a, "--daemonize") == 0) {
            cfg.daemonize = 1;
            continue;
        }
        if (strcmp(a, "--foreground-notify") == 0) {
            cfg.foreground_notify = 1;
            continue;
        }
        if (strcmp(a, "--reuseport") == 0) {
            cfg.reuseport = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (len >= sizeof name) {
            fprintf(stderr, "dk-hello: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        memcpy(name, a, len);
        name[len] = '\0';
        if (!is_option(name)) {
            fprintf(stderr, "dk-hello: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (len < strlen(a)) {
            v = eq + 1;                   /* --name=VALUE */
        } else if (i + 1 < argc) {
            v = argv[++i];                /* --name VALUE */
            at = i;
            reargv[i] = argv[i];
        } else {
            fprintf(stderr, "dk-hello: option '%s' needs a value\n", a);
            return 2;
        }

        if (strcmp(name, "--listen") == 0) {
            cfg.listen = v;
        } else if (strcmp(name, "--pid") == 0 || strcmp(name, "--log") == 0) {
            char *abs = absolute(v);
            if (abs == NULL)
                return 1;
            if (name[2] == 'p')
                cfg.pid_path = abs;
            else
                cfg.log_path = abs;
            reargv[at] = (v != argv[at]) ? joined(name, abs) : abs;
            if (reargv[at] == NULL)
                return 1;
        } else if (strcmp(name, "--user") == 0) {
            cfg.user = v;
        } else if (strcmp(name, "--group") == 0) {
            cfg.group = v;
        } else if (strcmp(name, "-w") == 0 || strcmp(name, "--workers") == 0) {
            if (parse_num(v, DK_SUPERVISOR_MAX_WORKERS, &n) != 0) {
                fprintf(stderr, "dk-hello: %s: expected 0..%d, got '%s'\n", name,
                        DK_SUPERVISOR_MAX_WORKERS, v);
                return 2;
            }
            cfg.workers = (unsigned)n;
        } else if (strcmp(name, "--max-requests") == 0) {
            if (parse_num(v, ULONG_MAX, &n) != 0) {
                fprintf(stderr, "dk-hello: --max-requests: not a number: '%s'\n", v);
                return 2;
            }
            cfg.max_requests = (unsigned long)n;
        } else if (strcmp(name, "--nofile") == 0) {
            if (parse_num(v, UINT64_MAX, &n) != 0 || n == 0) {
                fprintf(stderr, "dk-hello: --nofile: not a positive number: '%s'\n", v);
                return 2;
            }
            cfg.nofile = n;
        } else if (strcmp(name, "--notify-fd") == 0) {
            if (parse_num(v, INT_MAX, &n) != 0 || n < 3) {
                fprintf(stderr, "dk-hello: --notify-fd: expected a descriptor number of 3 or "
                                "more (0..2 are stdio), got '%s'\n", v);
                return 2;
            }
            cfg.notify_fd = (int)n;
            reargv[opt_at] = NULL;       /* dropped from reargv below */
            reargv[at] = NULL;
        } else {                                   /* --graceful-timeout */
            if (parse_num(v, 86400, &n) != 0) {
                fprintf(stderr, "dk-hello: --graceful-timeout: expected 0..86400 seconds, got '%s'\n", v);
                return 2;
            }
            cfg.graceful_ms = (unsigned)n * 1000u;
        }
    }
    for (i = 1, j = 1; i < argc; i++)    /* close the gaps --notify-fd left */
        if (reargv[i] != NULL)
            reargv[j++] = reargv[i];
    reargv[j] = NULL;
    if (cfg.max_requests > 0 && cfg.workers == 0) {
        fprintf(stderr, "dk-hello: --max-requests needs workers (-w N): a single process "
                        "cannot be replaced after N requests\n");
        return 2;
    }
    if (cfg.reuseport && cfg.workers == 0) {
        fprintf(stderr, "dk-hello: --reuseport needs workers (-w N): it gives each worker "
                        "slot a socket of its own\n");
        return 2;
    }
    if (cfg.group != NULL && cfg.user == NULL) {
        fprintf(stderr, "dk-hello: --group needs --user\n");
        return 2;
    }
    return 0;
}

static int role;   /* what dk_daemonize returned */

/* Reports a startup failure after dk_daemonize: the launcher prints msg and
 * exits with code (in the foreground the message goes to stderr). */
static int fail(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Leave no PID file behind, except as a new generation: the old one
     * still runs and keeps its file. */
    if (pf != NULL && role != DK_ROLE_UPGRADE) {
        dk_pidfile_remove(pf);
        pf = NULL;
    }
    dk_fail(code, msg);
    return code;
}

/* ------------------------------------------------------------------------ */
/* HTTP: connections, requests, responses                                   */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum conn_state { C_FREE, C_READ, C_WAIT, C_WRITE, C_LINGER };

struct conn {
    int fd;
    enum conn_state state;
    int64_t deadline;            /* C_READ/C_WRITE/C_LINGER: I/O timeout; C_WAIT: when /slow answers */
    const char *method, *target; /* point into in[] once the request line is parsed */
    int head;                    /* HEAD: headers only */
    int linger;                  /* error response: the client may still be sending */
    size_t in_len, out_len, out_pos;
    char in[REQ_MAX + 1];
    char out[OUT_MAX];
};

static struct conn conns[MAX_CONNS];
static size_t nconns;
static struct pollfd pfds[MAX_CONNS + 2];
static int pfd_conn[MAX_CONNS + 2];

static void conn_close(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->state = C_FREE;
    nconns--;
}

static void conn_write(struct conn *c)
{
    while (c->out_pos < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_pos, c->out_len - c->out_pos);
        if (n > 0) {
            c->out_pos += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;                      /* the poll loop waits for POLLOUT */
        } else {
            break;                       /* the client went away */
        }
    }
    if (c->linger && c->out_pos == c->out_len) {
        /* Closing with unread input would send a reset that can destroy our
         * answer in flight: half-close, then read until EOF (or LINGER_MS). */
        shutdown(c->fd, SHUT_WR);
        c->state = C_LINGER;
        c->deadline = now_ms() + LINGER_MS;
        return;
    }
    conn_close(c);                       /* Connection: close */
}

static void conn_linger(struct conn *c)
{
    char sink[4096];
    ssize_t n;
    while ((n = read(c->fd, sink, sizeof sink)) > 0)
        ;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        conn_close(c);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default:  return "Error";
    }
}

/* Queues the response, logs the request line, and starts writing. */
static void respond(struct conn *c, int status, const char *body)
{
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %u\r\n"
                     "%s"
                     "Connection: close\r\n"
                     "\r\n"
                     "%s",
                     status, reason(status), (unsigned)strlen(body),
                     status == 405 ? "Allow: GET, HEAD\r\n" : "",
                     c->head ? "" : body);
    c->out_len = (n < 0 || (size_t)n >= sizeof c->out) ? sizeof c->out - 1 : (size_t)n;
    c->out_pos = 0;
    c->linger = status >= 400;
    c->state = C_WRITE;
    c->deadline = now_ms() + IO_TIMEOUT_MS;
    printf("%s %s %d pid=%ld\n", c->method ? c->method : "-", c->target ? c->target : "-",
           status, (long)getpid());
    fflush(stdout);
    conn_write(c);
}

/* GET /ids: uid=N gid=N euid=N egid=N groups=N,N... */
static void ids_body(char *buf, size_t len)
{
    gid_t *groups = NULL;
    int n = getgroups(0, NULL), i;
    size_t at;
    at = (size_t)snprintf(buf, len, "uid=%lu gid=%lu euid=%lu egid=%lu groups=",
                          (unsigned long)getuid(), (unsigned long)getgid(),
                          (unsigned long)geteuid(), (unsigned long)getegid());
    if (n > 0 && (groups = malloc((size_t)n * sizeof *groups)) != NULL)
        n = getgroups(n, groups);
    for (i = 0; groups != NULL && i < n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lu", i ? "," : "", (unsigned long)groups[i]);
    if (at < len)
        snprintf(buf + at, len - at, "\n");
    free(groups);
}

/* /slow?ms=N: N, or -1 when missing or malformed. */
static long slow_ms(const char *query)
{
    unsigned long long v;
    char num[16];
    const char *p = query;
    size_t n;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, "ms=", 3) == 0) {
            n = strcspn(p + 3, "&");
            if (n == 0 || n >= sizeof num)
                return -1;
            memcpy(num, p + 3, n);
            num[n] = '\0';
            return parse_num(num, SLOW_MAX_MS, &v) == 0 ? (long)v : -1;
        }
        p = strchr(p, '&');
        if (p != NULL)
            p++;
    }
    return -1;
}

static int token_ok(const char *s, int lo, int hi)
{
    for (; *s; s++)
        if (*s < lo || *s > hi)
            return 0;
    return 1;
}

/* A whole request head is in c->in: parse the request line and answer. */
static void handle(struct conn *c)
{
    char *line = c->in, *eol = strstr(line, "\r\n"), *sp1, *sp2;
    const char *query;
    size_t plen;
    char body[OUT_MAX / 2];
    int known;

    *eol = '\0';
    sp1 = strchr(line, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp1 - line > 15) {
        respond(c, 400, "bad request\n");
        return;
    }
    *sp1 = *sp2 = '\0';
    if (!token_ok(line, 'A', 'Z') || sp1[1] != '/' || !token_ok(sp1 + 1, '!', '~')
        || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond(c, 400, "bad request\n");
        return;
    }
    c->method = line;
    c->target = sp1 + 1;
    c->head = strcmp(c->method, "HEAD") == 0;

    query = strchr(c->target, '?');
    plen = query ? (size_t)(query - c->target) : strlen(c->target);
    query = query ? query + 1 : "";
#define PATH_IS(p) (plen == sizeof(p) - 1 && strncmp(c->target, p, plen) == 0)
    known = PATH_IS("/") || PATH_IS("/pid") || PATH_IS("/ids") || PATH_IS("/slow");
    if (!known) {
        respond(c, 404, "not found\n");
    } else if (strcmp(c->method, "GET") != 0 && !c->head) {
        respond(c, 405, "method not allowed\n");
    } else if (PATH_IS("/")) {
        snprintf(body, sizeof body, "hello from %s pid %ld\n", LANG, (long)getpid());
        respond(c, 200, body);
    } else if (PATH_IS("/pid")) {
        snprintf(body, sizeof body, "%ld\n", (long)getpid());
        respond(c, 200, body);
    } else if (PATH_IS("/ids")) {
        ids_body(body, sizeof body);
        respond(c, 200, body);
    } else {
        long ms = slow_ms(query);
        if (ms < 0) {
            respond(c, 400, "usage: /slow?ms=N (N <= 600000)\n");
            return;
        }
        /* No sleeping: park the connection; the poll loop answers it at the deadline. */
        c->state = C_WAIT;
        c->deadline = now_ms() + ms;
    }
#undef PATH_IS
}

static size_t find_head_end(const char *buf, size_t from, size_t len)
{
    size_t i;
    for (i = from; i + 4 <= len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return i;
    return (size_t)-1;
}

static void conn_read(struct conn *c)
{
    for (;;) {
        ssize_t n;
        size_t from;
        if (c->in_len == REQ_MAX) {
            respond(c, 431, "request head over 8 KiB\n");
            return;
        }
        n = read(c->fd, c->in + c->in_len, REQ_MAX - c->in_len);
        if (n > 0) {
            from = c->in_len > 3 ? c->in_len - 3 : 0;
            c->in_len += (size_t)n;
            c->in[c->in_len] = '\0';
            if (find_head_end(c->in, from, c->in_len) != (size_t)-1) {
                if (strlen(c->in) < c->in_len)
                    respond(c, 400, "bad request\n");   /* a NUL byte in the head */
                else
                    handle(c);
                return;
            }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            conn_close(c);               /* closed (or failed) before a whole request */
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The serving loop (single process and workers)                            */

enum phase {
    RUNNING,
    DRAIN_EXIT,      /* TERM/INT/QUIT, or --max-requests reached: exit when drained */
    DRAIN_UPGRADED,  /* USR2 succeeded: exit when drained, leave the PID file */
    DRAIN_REEXEC     /* HUP: re-exec when drained, listener kept open */
};

struct server {
    int worker;               /* 1 in a supervised worker */
    enum phase phase;
    int64_t drain_deadline;   /* graceful timeout */
    int64_t accept_pause;     /* after EMFILE: accept again from then */
    unsigned long accepted;   /* for --max-requests (one request per connection) */
};

static void begin_drain(struct server *s, enum phase p, int close_listener)
{
    s->phase = p;
    s->drain_deadline = now_ms() + cfg.graceful_ms;
    if (close_listener && lfd >= 0) {
        close(lfd);                      /* stop accepting; queued clients go to a sibling */
        lfd = -1;
    }
}

static void upgrade(struct server *s)
{
    char msg[1024];
    int pid = dk_upgrade((const char *const *)reargv, &lfd, 1, NULL, pf, UPGRADE_TIMEOUT_MS,
                         msg, sizeof msg);
    if (pid > 0) {
        fprintf(stderr, "upgrade: new generation %d is ready; draining\n", pid);
        begin_drain(s, DRAIN_UPGRADED, 1);
    } else {
        fprintf(stderr, "upgrade failed: %s%s%s; still serving\n",
                pid == -ECANCELED ? "the new generation failed or exited before it was ready"
                                  : dk_strerror(pid),
                msg[0] ? ": " : "", msg);
    }
}

static void on_signals(struct server *s)
{
    int sig;
    while ((sig = dk_signal_next()) > 0) {
        switch (sig) {
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
            if (s->phase == DRAIN_EXIT || s->phase == DRAIN_UPGRADED)
                break;
            if (!s->worker)
                dk_notify_stopping();
            fprintf(stderr, "pid %ld: stopping (graceful timeout %u s)\n", (long)getpid(),
                    cfg.graceful_ms / 1000);
            begin_drain(s, DRAIN_EXIT, 1);
            break;
        case SIGHUP:
#ifdef DK_FAULT_IGNORE_HUP
            break;                       /* FAULT: HUP is ignored */
#endif
            if (s->phase != RUNNING)
                break;
            dk_notify_reloading();
            fprintf(stderr, "pid %ld: HUP: draining, then re-executing %s\n", (long)getpid(), exe);
            begin_drain(s, DRAIN_REEXEC, 0);   /* keep the listener for the new image */
            break;
        case SIGUSR1:
            dk_log_reopen();             /* -EBADF without --log: nothing to do */
            break;
        case SIGUSR2:
            if (s->phase == RUNNING)
                upgrade(s);
            break;
        case SIGTTIN:
        case SIGTTOU:
            fprintf(stderr, "TTIN/TTOU ignored: single process (start with -w N for workers)\n");
            break;
        default:
            break;
        }
    }
}

static void accept_some(struct server *s)
{
    int k;
    for (k = 0; k < 64 && nconns < MAX_CONNS; k++) {
        struct conn *c;
        size_t i;
        int fd;
        if (cfg.max_requests > 0 && s->accepted >= cfg.max_requests)
            return;
        fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                fprintf(stderr, "accept: %s; pausing 100 ms\n", strerror(errno));
                s->accept_pause = now_ms() + 100;
            }
            return;                      /* EAGAIN: a sibling took it, or nothing left */
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        for (i = 0; conns[i].state != C_FREE; i++)
            ;
        c = &conns[i];
        c->fd = fd;
        c->state = C_READ;
        c->deadline = now_ms() + IO_TIMEOUT_MS;
        c->method = c->target = NULL;
        c->head = c->linger = 0;
        c->in_len = c->out_len = c->out_pos = 0;
        nconns++;
        s->accepted++;
    }
}

/* Serves until the phase says stop and every connection is done (or the
 * graceful timeout passed). Returns the phase that ended it. */
static enum phase serve(struct server *s, int sigfd)
{
    static int announced;
    for (;;) {
        int64_t now = now_ms(), next = -1;
        size_t i;
        int n = 0, listen_at = -1, timeout, r;

        if (s->phase != RUNNING && nconns == 0)
            return s->phase;
        if (s->phase != RUNNING && now >= s->drain_deadline) {
            fprintf(stderr, "graceful timeout: closing %lu connection(s)\n", (unsigned long)nconns);
            for (i = 0; i < MAX_CONNS; i++)
                if (conns[i].state != C_FREE)
                    conn_close(&conns[i]);
            return s->phase;
        }
        if (s->phase == RUNNING && cfg.max_requests > 0 && s->accepted >= cfg.max_requests) {
            fprintf(stderr, "max requests (%lu) reached; worker %ld exits when done\n",
                    cfg.max_requests, (long)getpid());
            begin_drain(s, DRAIN_EXIT, 1);
            continue;
        }

        /* Watch the signal fd, the listener (while accepting) and every connection. */
        pfds[n].fd = sigfd;
        pfds[n].events = POLLIN;
        pfd_conn[n++] = -1;
        if (s->phase == RUNNING && lfd >= 0 && nconns < MAX_CONNS) {
            if (now >= s->accept_pause) {
                listen_at = n;
                pfds[n].fd = lfd;
                pfds[n].events = POLLIN;
                pfd_conn[n++] = -1;
            } else {
                next = s->accept_pause;
            }
        }
        for (i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            if (c->state == C_FREE)
                continue;
            pfds[n].fd = c->fd;
            pfds[n].events = c->state == C_WRITE ? POLLOUT : c->state == C_WAIT ? 0 : POLLIN;
            pfd_conn[n++] = (int)i;
            if (next < 0 || c->deadline < next)
                next = c->deadline;
        }
        if (s->phase != RUNNING && (next < 0 || s->drain_deadline < next))
            next = s->drain_deadline;
        timeout = next < 0 ? -1 : next <= now ? 0 : (int)(next - now);

        /* Ready once we are about to poll the listener (the launcher, the old
         * generation or the master is waiting for this). */
        if (!announced) {
            announced = 1;
            dk_ready();
        }
        r = poll(pfds, (nfds_t)n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "poll: %s\n", strerror(errno));
            return DRAIN_EXIT;
        }

        if (pfds[0].revents)
            on_signals(s);
        for (r = 0; r < n; r++) {
            struct conn *c;
            if (pfd_conn[r] < 0 || pfds[r].revents == 0)
                continue;
            c = &conns[pfd_conn[r]];
            if (c->state == C_READ)
                conn_read(c);
            else if (c->state == C_WRITE)
                conn_write(c);
            else if (c->state == C_LINGER)
                conn_linger(c);
            else if (c->state == C_WAIT && (pfds[r].revents & (POLLERR | POLLHUP)))
                conn_close(c);           /* the /slow client hung up */
        }
        now = now_ms();
        for (i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            if (c->state == C_FREE || c->deadline > now)
                continue;
            if (c->state == C_WAIT)
                respond(c, 200, "done\n");
            else
                conn_close(c);           /* I/O timeout */
        }
        if (listen_at >= 0 && lfd >= 0 && s->phase == RUNNING && pfds[listen_at].revents)
            accept_some(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Single process and supervisor                                            */

static int run_single(void)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2,
                                SIGTTIN, SIGTTOU };
    struct server s;
    int sigfd, r;

    /* Signals arrive as bytes on a pipe watched by the poll loop. */
    sigfd = dk_signal_open(sigs, sizeof sigs / sizeof sigs[0]);
    if (sigfd < 0)
        return fail(1, "signals: %s", dk_strerror(sigfd));
    memset(&s, 0, sizeof s);
    for (;;) {
        switch (serve(&s, sigfd)) {
        case DRAIN_REEXEC:
            /* HUP: same pid, PID file still locked, listener kept; the new
             * image runs this same startup and calls dk_ready() (READY=1). */
            r = dk_reexec((const char *const *)reargv, &lfd, 1, NULL, pf);
            fprintf(stderr, "HUP: re-exec of %s failed: %s; still serving\n", exe, dk_strerror(r));
            dk_notify("READY=1");
            s.phase = RUNNING;
            continue;
        case DRAIN_UPGRADED:
            dk_pidfile_close(pf);        /* the file holds the new generation's pid now */
            return 0;
        default:
            if (pf != NULL) {
                r = dk_pidfile_remove(pf);
                if (r == -EACCES)
                    fprintf(stderr, "pid file %s left behind (directory not writable); "
                                    "it is harmless, its lock is free\n", cfg.pid_path);
            }
            return 0;
        }
    }
}

/* A supervised worker: runs in the child with default signal dispositions
 * (SIGPIPE included, so it is ignored again here). */
static int worker_main(void *ctx, uint32_t index)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGUSR1 };
    struct server s;
    int sigfd;
    (void)ctx;
    (void)index;
    dk_signal_ignore_sigpipe();
    sigfd = dk_signal_open(sigs, sizeof sigs / sizeof sigs[0]);
    if (sigfd < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "worker: signals: %s", dk_strerror(sigfd));
        dk_fail(1, msg);
        return 1;
    }
    memset(&s, 0, sizeof s);
    s.worker = 1;
    serve(&s, sigfd);                    /* TERM or --max-requests: drained */
    return 0;
}

static int check(int r, const char *what)
{
    if (r < 0)
        fail(1, "supervisor: %s: %s", what, dk_strerror(r));
    return r < 0;
}

static int run_supervisor(void)
{
    dk_supervisor *sv;
    int r;
    if (check(dk_supervisor_new(&sv), "new"))
        return 1;
    if (check(dk_supervisor_set_workers(sv, cfg.workers), "workers")
        || check(dk_supervisor_set_graceful_timeout(sv, cfg.graceful_ms), "graceful timeout")
        || (cfg.reuseport ? check(dk_supervisor_add_listener_slots(sv, slot_fds, nslot_fds),
                                  "listener slots")
                          : check(dk_supervisor_add_listener(sv, lfd), "listener"))
        || (pf != NULL && check(dk_supervisor_set_pidfile(sv, pf), "pid file"))
        || check(dk_supervisor_set_upgrade(sv, (const char *const *)reargv, UPGRADE_TIMEOUT_MS), "upgrade")
        || check(dk_supervisor_set_worker(sv, worker_main, &cfg), "worker"))
        return 1;
    /* The master: HUP/TTIN/TTOU/TERM/INT/QUIT/USR1/USR2, dk_ready() once the
     * workers are ready; events are logged on stderr. */
    r = dk_supervisor_run(sv);
    if (r < 0)
        return fail(1, "supervisor: %s", dk_strerror(r));
    dk_supervisor_free(sv);
    dk_pidfile_close(pf);                /* stopped: already unlinked; upgraded: the new one's */
    return 0;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    char name[128];
    uint64_t got;
    unsigned k;
    int r, flags;
    ssize_t n;

    /* 1. Parse the command line; resolve our own path for re-exec/upgrade. */
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "dk-hello: /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    exe[n] = '\0';
    r = parse_args(argc, argv);
    if (r != 0)
        return r;

    /* s6 readiness: the library owns fd N from here on (close-on-exec, kept by
     * dk_daemonize's fd sweep) and writes "\n" to it in dk_ready(). */
    if (cfg.notify_fd >= 0) {
        r = dk_notify_fd(cfg.notify_fd);
        if (r < 0) {
            fprintf(stderr, "dk-hello: --notify-fd %d: %s\n", cfg.notify_fd, dk_strerror(r));
            return 1;
        }
    }

    /* 2. PID file: opened and locked first, before binding and daemonizing, so that
     *    "already running" reaches the terminal even when the second start names the
     *    same fixed port (binding first would only say "Address already in use"). */
    if (cfg.pid_path != NULL) {
        int32_t other = 0;
        r = dk_pidfile_open(cfg.pid_path, 0, 0, &pf, &other);
        if (r == -EEXIST) {
            fprintf(stderr, "pid file %s: daemon already running (PID: %ld)\n", cfg.pid_path,
                    (long)other);
            return 1;
        }
        if (r == DK_ERR_PIDFILE_FOREIGN) {
            fprintf(stderr, "pid file %s: locked by another process, not the pid in the file "
                    "(PID %ld, not signalled)\n", cfg.pid_path, (long)other);
            return 1;
        }
        if (r < 0) {
            fprintf(stderr, "pid file %s: %s\n", cfg.pid_path, dk_strerror(r));
            return 1;
        }
#ifdef DK_FAULT_PIDFILE_EARLY
        dk_pidfile_write(pf);            /* FAULT: the launcher's pid */
#endif
    }

    /* 3. Listeners: inherited (socket activation, re-exec, upgrade) or bound. A bind
     *    error still reaches the terminal; the PID file we just locked goes with us. */
    r = dk_listen_fds(DK_LISTEN_FDS_UNSET, NULL, 0);
    if (r < 0) {
        fprintf(stderr, "LISTEN_FDS: %s\n", dk_strerror(r));
        dk_pidfile_remove(pf);
        return 1;
    }
    if (r > 0) {
        lfd = DK_LISTEN_FDS_START;       /* only the first one is used ... */
        if (cfg.reuseport)               /* ... or, from an upgrade, the slots' sockets */
            for (nslot_fds = 0; nslot_fds < (unsigned)r && nslot_fds < DK_SUPERVISOR_MAX_WORKERS;
                 nslot_fds++)
                slot_fds[nslot_fds] = DK_LISTEN_FDS_START + (int)nslot_fds;
    } else {
        lfd = dk_listen_tcp(cfg.listen, 0, cfg.reuseport ? DK_LISTEN_REUSEPORT : 0);
        if (lfd < 0) {
            fprintf(stderr, "%s: %s\n", cfg.listen, dk_strerror(lfd));
            if (pf != NULL)
                dk_pidfile_remove(pf);   /* nothing written yet: ours to unlink */
            return 1;
        }
        if (cfg.reuseport) {
            /* The other slots' sockets, on the first one's address (its port, for :0). */
            slot_fds[0] = lfd;
            nslot_fds = 1;
            r = dk_socket_name(lfd, name, sizeof name);
            while (r >= 0 && nslot_fds < cfg.workers && nslot_fds < DK_SUPERVISOR_MAX_WORKERS) {
                r = dk_listen_tcp(name, 0, DK_LISTEN_REUSEPORT);
                if (r >= 0)
                    slot_fds[nslot_fds++] = r;
            }
            if (r < 0) {
                fprintf(stderr, "%s: socket for slot %u: %s\n", cfg.listen, nslot_fds,
                        dk_strerror(r));
                if (pf != NULL)
                    dk_pidfile_remove(pf);
                return 1;
            }
        }
    }
    if (!cfg.reuseport) {
        slot_fds[0] = lfd;               /* one socket, shared by every worker */
        nslot_fds = 1;
    }
    for (k = 0; k < nslot_fds; k++)      /* workers race for accept */
        fcntl(slot_fds[k], F_SETFL, fcntl(slot_fds[k], F_GETFL) | O_NONBLOCK);
    if (dk_socket_name(lfd, name, sizeof name) < 0)
        snprintf(name, sizeof name, "fd %d", lfd);
    fprintf(stderr, "listening on %s\n", name);

    /* 4. Daemonize. With -D the launcher waits here for dk_ready()/dk_fail()
     *    and exits with the daemon's verdict; from now on failures go through
     *    dk_fail(). */
    flags = (cfg.daemonize && !cfg.foreground_notify && cfg.notify_fd < 0) ? 0
                                                                           : DK_DAEMON_FOREGROUND;
    fflush(NULL);
    role = dk_daemonize((uint32_t)flags, slot_fds, nslot_fds, NULL, 022, 0);
    if (role < 0)
        return fail(1, "daemonize: %s", dk_strerror(role));

    /* 5. Log: stdout and stderr appended to --log FILE (USR1 reopens it). */
    if (cfg.log_path != NULL) {
        r = dk_log_open(cfg.log_path, 0);
        if (r < 0)
            return fail(1, "log file %s: %s", cfg.log_path, dk_strerror(r));
        fprintf(stderr, "listening on %s\n", name);
        /* With --user, hand the file to that user: a re-exec (HUP) or a new
         * generation (USR2) opens it again after the privilege drop, and USR1
         * reopens it. (An unknown user is reported at step 8.) */
        if (cfg.user != NULL && geteuid() == 0) {
            uint32_t uid, gid;
            if (dk_user_lookup(cfg.user, &uid, &gid) == 0
                && (cfg.group == NULL || dk_group_lookup(cfg.group, &gid) == 0))
                if (fchown(STDOUT_FILENO, (uid_t)uid, (gid_t)gid) != 0)
                    fprintf(stderr, "log file %s: chown: %s\n", cfg.log_path, strerror(errno));
        }
    }

    /* 6. Write our pid (the daemon's, not the launcher's). */
#ifndef DK_FAULT_PIDFILE_EARLY
    if (pf != NULL && (r = dk_pidfile_write(pf)) < 0)
        return fail(1, "pid file %s: %s", cfg.pid_path, dk_strerror(r));
#endif

    /* 7. Limits: --nofile, and no core dumps. */
    if (cfg.nofile > 0) {
        r = dk_rlimit_nofile(cfg.nofile, &got);
        if (r < 0)
            return fail(1, "nofile limit: %s", dk_strerror(r));
        fprintf(stderr, "nofile limit set to %llu\n", (unsigned long long)got);
    }
    dk_rlimit_disable_core();

    /* 8. Privileges: for good, with the user's groups (a no-op when we already
     *    are that user, as after a re-exec). */
    if (cfg.user != NULL) {
        r = dk_privileges_drop(cfg.user, cfg.group, 0);
        if (r == DK_ERR_UNKNOWN_USER)
            return fail(1, "unknown user '%s'", cfg.user);
        if (r == DK_ERR_UNKNOWN_GROUP)
            return fail(1, "unknown group '%s'", cfg.group);
        if (r < 0)
            return fail(1, "cannot switch to user '%s': %s", cfg.user, dk_strerror(r));
    }

    /* 9. A client that hangs up gives EPIPE, not death. */
    dk_signal_ignore_sigpipe();

    /* 10. Run. */
    return cfg.workers == 0 ? run_single() : run_supervisor();
}
