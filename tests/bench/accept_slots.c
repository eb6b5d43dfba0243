/*
 * accept_slots.c - the C example server, dk-hello, with one SO_REUSEPORT
 * listening socket per worker slot instead of one shared socket (bench only;
 * tests/bench/bench_accept.sh, BENCHMARKS.md section 10).
 *
 * The per-slot mode the issue asks about, built on the supervisor's public API
 * without changing dk-hello.c or the library: this file includes dk-hello.c
 * whole and wraps three of its calls.
 *   - dk_listen_tcp: the first socket also gets SO_REUSEPORT;
 *   - dk_supervisor_add_listener: the master binds N-1 more SO_REUSEPORT
 *     sockets on the same address (N = -w), non-blocking like the first, and
 *     holds all N for its life: slot i's socket and its backlog outlive
 *     every worker of slot i;
 *   - dk_supervisor_set_worker: worker slot i (the supervisor's index, which a
 *     rolling restart's replacement takes over from the worker it replaces)
 *     puts socket i % N at dk-hello's listener fd number and closes the
 *     others, then runs dk-hello's worker as is.
 * The kernel then spreads new connections over the N sockets by a hash of the
 * 4-tuple (the reuseport group), whatever each worker is doing.
 *
 * What a library version would do the same way: the sockets, who holds them,
 * which worker accepts from which. What it would do differently, none of it
 * exercised by the benchmark: bind the N sockets before the privilege drop
 * (here they are bound after dk_daemonize, whose fd sweep keeps only the
 * first), release them at a graceful stop, hand all N to a USR2 generation,
 * and keep a slot without a worker (TTOU, or a crashed worker's respawn
 * delay) from being given new connections.
 */
#include <daemonkit.h>

static int slots_wrap_add_listener(dk_supervisor *sv, int fd);
static int slots_wrap_set_worker(dk_supervisor *sv, dk_worker_fn f, void *ctx);

/* daemonkit.h is included above, so its declarations are not rewritten. */
#define dk_listen_tcp(addr, backlog, flags) dk_listen_tcp(addr, backlog, (flags) | DK_LISTEN_REUSEPORT)
#define dk_supervisor_add_listener slots_wrap_add_listener
#define dk_supervisor_set_worker slots_wrap_set_worker
#include "../../examples/c/dk-hello.c"
#undef dk_listen_tcp
#undef dk_supervisor_add_listener
#undef dk_supervisor_set_worker

#define SLOTS_MAX DK_SUPERVISOR_MAX_WORKERS

static int slot_fd[SLOTS_MAX];
static unsigned nslots;
static dk_worker_fn slot_worker;

static int slots_wrap_add_listener(dk_supervisor *sv, int fd)
{
    char addr[128];
    unsigned i;
    int r = dk_socket_name(fd, addr, sizeof addr);
    if (r < 0)
        return r;
    slot_fd[0] = fd;
    nslots = 1;
    for (i = 1; i < cfg.workers && i < SLOTS_MAX; i++) {
        int s = dk_listen_tcp(addr, 0, DK_LISTEN_REUSEPORT);
        if (s < 0) {
            fprintf(stderr, "slot %u: %s: %s\n", i, addr, dk_strerror(s));
            return s;
        }
        fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
        slot_fd[nslots++] = s;
    }
    fprintf(stderr, "per-slot listeners: %u SO_REUSEPORT sockets on %s\n", nslots, addr);
    return dk_supervisor_add_listener(sv, fd);
}

static int slots_worker(void *ctx, uint32_t index)
{
    unsigned i, mine = index % nslots;
    if (mine != 0 && dup2(slot_fd[mine], lfd) < 0) {
        dk_fail(1, "slot socket: dup2 failed");
        return 1;
    }
    for (i = 1; i < nslots; i++)
        close(slot_fd[i]);
    return slot_worker(ctx, index);
}

static int slots_wrap_set_worker(dk_supervisor *sv, dk_worker_fn f, void *ctx)
{
    slot_worker = f;
    return dk_supervisor_set_worker(sv, slots_worker, ctx);
}
