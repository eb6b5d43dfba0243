/* launch_ld.c - the same with Debian's libdaemon: daemon_retval_init, daemon_fork,
 * daemon_retval_send(0) in the daemon, daemon_retval_wait in the launcher. */
#include <libdaemon/dfork.h>
#include <libdaemon/dlog.h>
#include <unistd.h>

int main(void)
{
    pid_t pid;
    daemon_log_use = 0; /* no syslog/stderr chatter */
    if (daemon_retval_init() < 0)
        return 2;
    pid = daemon_fork();
    if (pid < 0) {
        daemon_retval_done();
        return 2;
    }
    if (pid > 0) { /* launcher */
        int ret = daemon_retval_wait(5);
        return ret == 0 ? 0 : 3;
    }
    /* daemon */
    daemon_retval_send(0);
    _exit(0);
}
