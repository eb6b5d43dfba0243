/* A daemon in 40 lines: PID file, daemonize with readiness, signals as an fd.
 * cc -std=c99 quickstart.c -Iinclude -Ltarget/lib -Wl,-rpath,$PWD/target/lib -ldaemonkit */
#include <daemonkit.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/tmp/quickstart.pid";
    int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    dk_pidfile *pf;
    int32_t other = 0;
    int rc, sig;

    rc = dk_pidfile_open(path, 0, 0, &pf, &other); /* before the fork: errors reach the terminal */
    if (rc == -EEXIST) {
        fprintf(stderr, "pid file %s: daemon already running (PID: %d)\n", path, (int)other);
        return 1;
    } else if (rc < 0) {
        fprintf(stderr, "pid file %s: %s\n", path, dk_strerror(rc));
        return 1;
    }
    fflush(NULL);
    rc = dk_daemonize(0, NULL, 0, NULL, 022, 0); /* the launcher waits here for dk_ready() */
    if (rc < 0)
        return 1;
    if ((rc = dk_pidfile_write(pf)) < 0 || (rc = dk_signal_open(sigs, 3)) < 0) {
        dk_fail(1, dk_strerror(rc)); /* the launcher prints it and exits 1 */
        return 1;
    }
    dk_ready(); /* the launcher exits 0 now */
    while ((sig = dk_signal_wait(-1)) != SIGTERM && sig != SIGINT)
        ; /* SIGHUP: reload here */
    dk_pidfile_remove(pf);
    return 0;
}
