/*
 * secfile: reads a small secret file (a bearer token, a TLS private key, a
 * secret key) only if nobody but its owner could have put it there or read
 * it: a regular file, not reached through a symbolic link, owned by the
 * process's effective user or by root, with no permission bits for group or
 * others. A FIFO or device cannot block the caller (the file is opened
 * non-blocking and checked before a byte is read).
 */
#ifndef AMTACS_SECFILE_H
#define AMTACS_SECFILE_H

#include <stddef.h>

/* Reads all of path into out (at most max bytes; a larger file is refused)
 * and stores the length in *len. Returns 0, or -1 with a message naming path
 * and the reason in err; out (all max bytes) is wiped on failure. The
 * caller wipes out when done. `what` names the setting in messages, e.g.
 * "http.token_file". */
int secfile_read(const char *what, const char *path, unsigned char *out, size_t max,
                 size_t *len, char *err, size_t errlen);

#endif
