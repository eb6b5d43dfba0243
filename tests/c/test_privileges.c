/* Privilege drop, as root, each case in a forked child: the result is read back from
 * /proc/self/status (all four uids and gids, the supplementary groups) and by trying to
 * get root back. Failures must leave the process exactly as it was. */
#define _GNU_SOURCE
#include "dk_test.h"

#include <daemonkit.h>

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdint.h>

/* The value of a /proc/self/status line ("Uid:" ...), tabs/spaces normalised to one
 * space, trimmed. */
static const char *status_line(const char *key, char *out, size_t len)
{
    char buf[8192];
    const char *p;
    size_t k = strlen(key), n = 0;
    int space = 0;
    out[0] = '\0';
    if (dk_test_read_file("/proc/self/status", buf, sizeof buf) < 0)
        return out;
    for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, k) != 0)
            continue;
        p += k;
        while (*p == ' ' || *p == '\t')
            p++;
        for (; *p && *p != '\n' && n + 1 < len; p++) {
            if (*p == ' ' || *p == '\t') {
                space = 1;
                continue;
            }
            if (space && n > 0)
                out[n++] = ' ';
            space = 0;
            out[n++] = *p;
        }
        out[n] = '\0';
        break;
    }
    return out;
}

/* Starts a case: a child with a few supplementary groups of its own, so that "the
 * groups did not change" and "the groups were replaced" mean something. */
static pid_t start_case(const char *stage)
{
    pid_t pid;
    dk_test_set_stage(stage);
    pid = dk_test_fork();
    if (pid == 0) {
        gid_t groups[3] = {4, 24, 27};
        if (setgroups(3, groups) != 0) {
            dk_test_log("setgroups: %s\n", strerror(errno));
            _exit(2);
        }
    }
    return pid;
}

static void check_is_nobody(void)
{
    char v[256];
    CHECK_STREQ(status_line("Uid:", v, sizeof v), "65534 65534 65534 65534");
    CHECK_STREQ(status_line("Gid:", v, sizeof v), "65534 65534 65534 65534");
    CHECK_STREQ(status_line("Groups:", v, sizeof v), "65534");
    errno = 0;
    CHECK(setuid(0) != 0 && errno == EPERM);
    CHECK(seteuid(0) != 0);
    CHECK(setgid(0) != 0);
    CHECK(setgroups(0, NULL) != 0);
    CHECK_EQ(getuid(), 65534);
    CHECK_EQ(geteuid(), 65534);
}

static void check_unchanged(void)
{
    char v[256];
    CHECK_STREQ(status_line("Uid:", v, sizeof v), "0 0 0 0");
    CHECK_STREQ(status_line("Gid:", v, sizeof v), "0 0 0 0");
    CHECK_STREQ(status_line("Groups:", v, sizeof v), "4 24 27");
}

int main(void)
{
    pid_t pid;
    uint32_t uid = 1, gid = 1;

    dk_test_init("privileges", 30);
    if (getuid() != 0) {
        dk_test_log("test_privileges must run as root\n");
        CHECK_EQ(getuid(), 0);
        return dk_test_done();
    }

    pid = start_case("drop to nobody/nogroup");
    if (pid == 0) {
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        check_is_nobody();
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* Capabilities kept across the drop (issue 16): NET_BIND_SERVICE in permitted,
     * effective, inheritable and ambient, no_new_privs, the bounding set cut down to it. */
    pid = start_case("keep NET_BIND_SERVICE, no_new_privs, bounding");
    if (pid == 0) {
        char v[256];
        int cap = dk_cap_from_name("NET_BIND_SERVICE");
        struct sockaddr_in a;
        int s;
        CHECK_EQ(cap, 10);
        CHECK_EQ(dk_cap_from_name("cap_net_bind_service"), 10);
        CHECK_EQ(dk_privileges_drop_caps("nobody", "nogroup",
                                         DK_PRIVILEGES_NO_NEW_PRIVS | DK_PRIVILEGES_DROP_BOUNDING,
                                         1ull << cap), 0);
        check_is_nobody();
        CHECK_STREQ(status_line("CapPrm:", v, sizeof v), "0000000000000400");
        CHECK_STREQ(status_line("CapEff:", v, sizeof v), "0000000000000400");
        CHECK_STREQ(status_line("CapInh:", v, sizeof v), "0000000000000400");
        CHECK_STREQ(status_line("CapAmb:", v, sizeof v), "0000000000000400");
        CHECK_STREQ(status_line("CapBnd:", v, sizeof v), "0000000000000400");
        CHECK_STREQ(status_line("NoNewPrivs:", v, sizeof v), "1");
        /* Port 80 on 127.0.0.1 binds (nobody, with the capability). */
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons(80);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
        close(s);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    pid = start_case("no capability kept: port 80 refused");
    if (pid == 0) {
        char v[256];
        struct sockaddr_in a;
        int s;
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        check_is_nobody();
        CHECK_STREQ(status_line("CapEff:", v, sizeof v), "0000000000000000");
        CHECK_STREQ(status_line("CapAmb:", v, sizeof v), "0000000000000000");
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons(80);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        errno = 0;
        CHECK(bind(s, (struct sockaddr *)&a, sizeof a) != 0 && errno == EACCES);
        close(s);
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    pid = start_case("capabilities that undo the drop are refused");
    if (pid == 0) {
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 0, 1ull << 7), EINVAL); /* SETUID */
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 0, 1ull << 6), EINVAL); /* SETGID */
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 0, 1ull << 8), EINVAL); /* SETPCAP */
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 0, 1ull << 63), EINVAL);
        CHECK_ERR(dk_privileges_drop_caps("nobody", NULL, 4, 0), EINVAL);
        CHECK_ERR(dk_cap_from_name("NO_SUCH_CAP"), EINVAL);
        CHECK_ERR(dk_cap_from_name(NULL), EINVAL);
        check_unchanged();
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    pid = start_case("drop to nobody, primary group");
    if (pid == 0) {
        CHECK_EQ(dk_privileges_drop("nobody", NULL, 0), 0);
        check_is_nobody();
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    pid = start_case("numeric 65534/65534");
    if (pid == 0) {
        CHECK_EQ(dk_privileges_drop("65534", "65534", 0), 0);
        check_is_nobody();
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    pid = start_case("unknown user");
    if (pid == 0) {
        CHECK_EQ(dk_privileges_drop("no-such-user-dk", NULL, 0), DK_ERR_UNKNOWN_USER);
        CHECK_EQ(dk_privileges_drop("no-such-user-dk", "nogroup", 0), DK_ERR_UNKNOWN_USER);
        CHECK_EQ(DK_ERR_UNKNOWN_USER, -ESRCH);
        check_unchanged();
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    pid = start_case("unknown group");
    if (pid == 0) {
        CHECK_EQ(dk_privileges_drop("nobody", "no-such-group-dk", 0), DK_ERR_UNKNOWN_GROUP);
        CHECK_EQ(DK_ERR_UNKNOWN_GROUP, -ENOENT);
        check_unchanged();
        CHECK_EQ(setuid(0), 0); /* still root */
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    pid = start_case("not root");
    if (pid == 0) {
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        /* already exactly the target without root: fine */
        CHECK_EQ(dk_privileges_drop("nobody", "nogroup", 0), 0);
        /* another user: not possible any more */
        CHECK_EQ(dk_privileges_drop("daemon", NULL, 0), DK_ERR_NOT_ROOT);
        CHECK_EQ(dk_privileges_drop("root", NULL, 0), DK_ERR_NOT_ROOT);
        CHECK_EQ(dk_privileges_drop("nobody", "root", 0), DK_ERR_NOT_ROOT);
        CHECK_EQ(DK_ERR_NOT_ROOT, -EPERM);
        check_is_nobody();
        dk_test_child_exit(0);
    }
    CHECK_CHILD_OK(pid);

    /* lookups */
    dk_test_set_stage("lookups");
    CHECK_EQ(dk_user_lookup("nobody", &uid, &gid), 0);
    CHECK_EQ(uid, 65534);
    CHECK_EQ(gid, 65534);
    CHECK_EQ(dk_user_lookup("root", &uid, &gid), 0);
    CHECK_EQ(uid, 0);
    CHECK_EQ(gid, 0);
    uid = gid = 1;
    CHECK_EQ(dk_user_lookup("65534", &uid, &gid), 0);
    CHECK_EQ(uid, 65534);
    CHECK_EQ(gid, 65534);
    CHECK_EQ(dk_user_lookup("no-such-user-dk", &uid, NULL), DK_ERR_UNKNOWN_USER);
    CHECK_EQ(dk_group_lookup("nogroup", &gid), 0);
    CHECK_EQ(gid, 65534);
    gid = 1;
    CHECK_EQ(dk_group_lookup("65534", &gid), 0);
    CHECK_EQ(gid, 65534);
    CHECK_EQ(dk_group_lookup("root", &gid), 0);
    CHECK_EQ(gid, 0);
    CHECK_EQ(dk_group_lookup("no-such-group-dk", &gid), DK_ERR_UNKNOWN_GROUP);
    /* the test process itself is untouched */
    CHECK_EQ(getuid(), 0);
    CHECK_EQ(geteuid(), 0);
    return dk_test_done();
}
