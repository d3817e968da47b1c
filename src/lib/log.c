#include "amtacs/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "amtacs/buf.h"
#include "amtacs/text.h"

static const char *const names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

void log_set_level(struct logger *lg, enum log_level level)
{
    __atomic_store_n(&lg->level, level, __ATOMIC_RELAXED);
}

/* A logfmt value: bare when it is a simple word, else a JSON-style quoted string
 * in which C1 and bidi controls are escaped too (text_escape). */
static enum buf_rc value(struct buf *b, const char *v)
{
    size_t n = strlen(v);
    int bare = n > 0;
    for (size_t i = 0; bare && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7F)
            bare = 0;
    }
    return bare ? buf_append(b, v, n) : text_escape(b, v, n, TEXT_ESC_QUOTED);
}

void log_event(const struct logger *lg, enum log_level level, const char *event,
               const struct log_ctx *ctx, const char *fmt, ...)
{
    if (!log_on(lg, level))
        return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    struct buf line;
    buf_init(&line, 32768);
    va_list ap;
    va_start(ap, fmt);
    char tmp[4096];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    enum buf_rc rc = buf_printf(&line, "time=%s.%03ldZ level=%s event=", when,
                                ts.tv_nsec / 1000000, names[level]);
    if (!rc)
        rc = value(&line, event);
    if (!rc && ctx && ctx->connection) {
        rc = buf_puts(&line, " connection=");
        if (!rc)
            rc = value(&line, ctx->connection);
    }
    if (!rc && ctx && ctx->job)
        rc = buf_printf(&line, " job=%lld", ctx->job);
    if (!rc && ctx && ctx->request)
        rc = buf_printf(&line, " request=%d", ctx->request);
    if (!rc && tmp[0]) {
        rc = buf_puts(&line, " msg=");
        if (!rc)
            rc = text_escape(&line, tmp, strlen(tmp), TEXT_ESC_QUOTED);
    }
    if (!rc)
        rc = buf_putc(&line, '\n');
    if (!rc) {
        fwrite(line.data, 1, line.len, lg->out);
        fflush(lg->out);
    }
    buf_free(&line);
}
