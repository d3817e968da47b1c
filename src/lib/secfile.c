#include "amtacs/secfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

static const char *kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device";
    return "not a regular file";
}

int secfile_read(const char *what, const char *path, unsigned char *out, size_t max,
                 size_t *len, char *err, size_t errlen)
{
    *len = 0;
    /* O_NOFOLLOW: a link planted in place of the file is refused rather than
     * followed to whatever it names; O_NONBLOCK: a FIFO does not hang the
     * open (or the read) before fstat has refused it. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ELOOP)
            snprintf(err, errlen, "%s %s is a symbolic link; name the file itself", what, path);
        else
            snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s is %s; it must be a regular file", what, path,
                 kind(st.st_mode));
        goto fail;
    }
    uid_t me = geteuid();
    if (st.st_uid != me && st.st_uid != 0) {
        snprintf(err, errlen,
                 "%s %s is owned by uid %lu, not by this process's user (uid %lu) or root: "
                 "another user could have written it; run chown on it",
                 what, path, (unsigned long)st.st_uid, (unsigned long)me);
        goto fail;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s %s is accessible by group or others (mode %04o); run chmod 600 on it", what,
                 path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    size_t n = 0;
    for (;;) {
        unsigned char extra;
        ssize_t r = n < max ? read(fd, out + n, max - n) : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        if (n >= max) {
            sodium_memzero(&extra, sizeof extra);
            snprintf(err, errlen, "%s %s is larger than %zu bytes", what, path, max);
            goto fail;
        }
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    sodium_memzero(out, max);
    return -1;
}
