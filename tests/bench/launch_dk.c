/* launch_dk.c - daemonize with libdaemonkit, report ready, exit at once.
 * The launcher (this process before the fork) exits 0 when the daemon calls dk_ready(). */
#include <daemonkit.h>
#include <unistd.h>

int main(void)
{
    int rc = dk_daemonize(0, NULL, 0, NULL, 022, 5000);
    if (rc < 0)
        return 2;
    dk_ready();
    _exit(0);
}
