/*
 * buf: a growable byte buffer with a hard size cap, so nothing fed from outside
 * (an HTTP body, a job log) can grow without bound. The struct is a value type:
 * the owner embeds it, calls buf_init() once and buf_free() once.
 */
#ifndef AMTACS_BUF_H
#define AMTACS_BUF_H

#include <stddef.h>

struct buf {
    char *data;  /* NUL-terminated when len > 0; NULL until the first append */
    size_t len;  /* bytes used, excluding the terminating NUL */
    size_t cap;  /* bytes allocated */
    size_t max;  /* appends that would exceed this many bytes fail */
};

enum buf_rc {
    BUF_OK = 0,
    BUF_NOMEM,  /* allocation failed; the buffer is unchanged */
    BUF_TOOBIG, /* the append would pass max; the buffer is unchanged */
};

/* Empties the struct and sets its cap (0 = 64 MiB). Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Releases the memory and resets the struct to empty; safe to call twice. */
void buf_free(struct buf *b);
/* Sets len to 0, keeping the allocation. */
void buf_reset(struct buf *b);
/* Appends n bytes. */
enum buf_rc buf_append(struct buf *b, const void *p, size_t n)
    __attribute__((warn_unused_result));
/* Appends a NUL-terminated string. */
enum buf_rc buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));
/* Appends one byte. */
enum buf_rc buf_putc(struct buf *b, char c) __attribute__((warn_unused_result));
/* Appends printf-style formatted text. */
enum buf_rc buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
/* Hands the data to the caller (who frees it with free()) and empties the
 * buffer; returns an empty allocated string for an empty buffer, NULL on OOM. */
char *buf_take(struct buf *b);

#endif
