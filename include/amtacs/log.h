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
    enum log_level level;  /* lines above this level are skipped at no cost; set it, once
                              others may be logging, with log_set_level() */
};

/* Optional context of a line; zero/NULL fields are left out. */
struct log_ctx {
    const char *connection;
    long long job;
    int request; /* BatchRequestId */
};

/* True if a line at `level` would be written. The level is read without a
 * lock (a relaxed atomic load: a plain load on the targets we build for): a
 * reload may change it while another thread logs. */
static inline int log_on(const struct logger *lg, enum log_level level)
{
    return lg && level <= __atomic_load_n(&lg->level, __ATOMIC_RELAXED);
}

/* Changes the level of a logger other threads may be using (a reload). */
void log_set_level(struct logger *lg, enum log_level level);

/* Writes one line: event is a dotted word, msg a printf format. */
void log_event(const struct logger *lg, enum log_level level, const char *event,
               const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Parses "error" | "warn" | "info" | "debug"; -1 if none. */
int log_level_parse(const char *s);

#endif
