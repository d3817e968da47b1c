/* Unit tests of secfile (reading a secret file only if it is the owner's
 * alone) and of netaddr's loopback checks, which decide whether the HTTP
 * endpoint may run without a token. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amtacs/netaddr.h"
#include "amtacs/secfile.h"

struct dir {
    char path[64];
};

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "/tmp/amtacs-secfile.XXXXXX");
    if (!mkdtemp(d->path))
        return -1;
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    int rc = system(cmd);
    free(d);
    return rc == 0 ? 0 : -1;
}

static char *file(struct dir *d, const char *name, const char *text, mode_t mode)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", d->path, name);
    if (text) {
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        assert_int_equal(chmod(p, mode), 0);
    }
    return p;
}

/* Reads path into a 64-byte buffer; returns the result, the error in err. */
static int rd(const char *path, unsigned char *buf, size_t *len, char *err)
{
    memset(buf, 'x', 64);
    return secfile_read("test.file", path, buf, 64, len, err, 300);
}

static bool wiped(const unsigned char *buf)
{
    for (size_t i = 0; i < 64; i++)
        if (buf[i])
            return false;
    return true;
}

static void reads_an_owners_file(void **state)
{
    unsigned char buf[64];
    size_t len;
    char err[300];
    assert_int_equal(rd(file(*state, "ok", "secret-value\n", 0600), buf, &len, err), 0);
    assert_int_equal(len, 13);
    assert_memory_equal(buf, "secret-value\n", 13);
    assert_int_equal(rd(file(*state, "ro", "x", 0400), buf, &len, err), 0);
}

static void refuses_what_others_could_touch(void **state)
{
    struct dir *d = *state;
    unsigned char buf[64];
    size_t len = 99;
    char err[300];

    assert_int_equal(rd(file(d, "g", "secret", 0640), buf, &len, err), -1);
    assert_non_null(strstr(err, "test.file"));
    assert_non_null(strstr(err, "is accessible by group or others (mode 0640); run chmod 600"));
    assert_true(wiped(buf));
    assert_int_equal(len, 0);
    assert_int_equal(rd(file(d, "w", "secret", 0620), buf, &len, err), -1);
    assert_non_null(strstr(err, "accessible by group or others"));

    char target[128];
    snprintf(target, sizeof target, "%s", file(d, "target", "secret", 0600));
    char *link = file(d, "link", NULL, 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(rd(link, buf, &len, err), -1);
    assert_non_null(strstr(err, "is a symbolic link"));
    assert_true(wiped(buf));

    char *fifo = file(d, "fifo", NULL, 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(rd(fifo, buf, &len, err), -1); /* and does not block */
    assert_non_null(strstr(err, "is a FIFO; it must be a regular file"));

    assert_int_equal(rd(d->path, buf, &len, err), -1);
    assert_non_null(strstr(err, "is a directory"));

    assert_int_equal(rd(file(d, "missing-not-created", NULL, 0), buf, &len, err), -1);
    assert_non_null(strstr(err, "No such file"));

    char big[100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(rd(file(d, "big", big, 0600), buf, &len, err), -1);
    assert_non_null(strstr(err, "is larger than 64 bytes"));
    assert_true(wiped(buf));

    struct passwd *nobody = getpwnam("nobody");
    if (geteuid() == 0 && nobody) {
        char *p = file(d, "theirs", "secret", 0600);
        assert_int_equal(chown(p, nobody->pw_uid, (gid_t)-1), 0);
        assert_int_equal(rd(p, buf, &len, err), -1);
        assert_non_null(strstr(err, "not by this process's user"));
        assert_true(wiped(buf));
    }
}

static void loopback(void **state)
{
    (void)state;
    assert_true(netaddr_listen_is_loopback("127.0.0.1:9470"));
    assert_true(netaddr_listen_is_loopback("127.1.2.3:0"));
    assert_true(netaddr_listen_is_loopback("localhost:9470"));
    assert_true(netaddr_listen_is_loopback("LocalHost:1"));
    assert_true(netaddr_listen_is_loopback("[::1]:9470"));
    assert_true(netaddr_listen_is_loopback("[::ffff:127.0.0.1]:9470"));
    assert_false(netaddr_listen_is_loopback("0.0.0.0:9470"));
    assert_false(netaddr_listen_is_loopback("[::]:9470"));
    assert_false(netaddr_listen_is_loopback("128.0.0.1:9470"));
    assert_false(netaddr_listen_is_loopback("10.0.0.1:9470"));
    assert_false(netaddr_listen_is_loopback("localhost.example.com:9470"));
    assert_false(netaddr_listen_is_loopback("myhost:9470"));
    assert_false(netaddr_listen_is_loopback(":9470"));
    assert_false(netaddr_listen_is_loopback("127.0.0.1"));

    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002)};
    assert_true(netaddr_sockaddr_is_loopback((struct sockaddr *)&a4));
    a4.sin_addr.s_addr = htonl(0x0a000001);
    assert_false(netaddr_sockaddr_is_loopback((struct sockaddr *)&a4));
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    assert_true(netaddr_sockaddr_is_loopback((struct sockaddr *)&a6));
    a6.sin6_addr = (struct in6_addr)IN6ADDR_ANY_INIT;
    assert_false(netaddr_sockaddr_is_loopback((struct sockaddr *)&a6));
    assert_false(netaddr_sockaddr_is_loopback(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reads_an_owners_file, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_what_others_could_touch, setup, teardown),
        cmocka_unit_test(loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
