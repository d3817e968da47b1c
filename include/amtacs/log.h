/*
 * log: one logfmt line per event on a stream (stderr by default):
 *   time=... level=info event=job.started connection=AMTDEMO job=42 request=4280 msg="..."
 * Values are quoted and escaped as needed (text_escape: C0, DEL, C1 and bidi
 * controls as \uXXXX), so a hostile string from a server can neither forge
 * lines nor drive the terminal of whoever reads the log. Never pass a secret.
 */
#ifndef AMTACS_LOG_H
#define AMTACS_LOG_H

#include <stdio.h>

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG,
};

struct logger {
    FILE *out;             /* not owned */
    enum log_level level;  /* lines above this level are skipped at no cost */
};

/* Optional context of a line; zero/NULL fields are left out. */
struct log_ctx {
    const char *connection;
    long long job;
    int request; /* BatchRequestId */
};

/* True if a line at `level` would be written. */
static inline int log_on(const struct logger *lg, enum log_level level)
{
    return lg && level <= lg->level;
}

/* Writes one line: event is a dotted word, msg a printf format. */
void log_event(const struct logger *lg, enum log_level level, const char *event,
               const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Parses "error" | "warn" | "info" | "debug"; -1 if none. */
int log_level_parse(const char *s);

#endif
