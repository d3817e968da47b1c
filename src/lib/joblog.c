#include "amtacs/joblog.h"

#include <string.h>

#include "amtacs/buf.h"
#include "amtacs/codes.h"
#include "amtacs/text.h"

#define JOBLOG_WIDTH 75
#define JOBLOG_LABEL 16

static enum buf_rc rule(struct buf *b, const char *title)
{
    enum buf_rc rc = BUF_OK;
    size_t used = 0;
    if (title) {
        rc = buf_puts(b, title);
        used = strlen(title);
    }
    for (size_t i = used; !rc && i < JOBLOG_WIDTH; i++)
        rc = buf_putc(b, '-');
    return rc ? rc : buf_putc(b, '\n');
}

/* The reference keeps the space after the colon on an empty value ("Queue
 * Name      : ") but not on an empty Parameters row; `space_if_empty` says which. */
static enum buf_rc row(struct buf *b, const char *label, const char *value, int space_if_empty)
{
    enum buf_rc rc = buf_printf(b, "%-*s:", JOBLOG_LABEL, label);
    if (rc)
        return rc;
    if (value && *value) {
        rc = buf_putc(b, ' ');
        if (!rc)
            rc = text_one_line(b, value, strlen(value));
    } else if (space_if_empty) {
        rc = buf_putc(b, ' ');
    }
    return rc ? rc : buf_putc(b, '\n');
}

char *joblog_render(const struct joblog_job *job, const char *const *messages, size_t nmessages)
{
    struct buf b, params;
    buf_init(&b, 0);
    buf_init(&params, 0);
    enum buf_rc rc = BUF_OK;

    const struct jobspec *spec = job->spec;
    for (size_t i = 0; !rc && i < spec->nvalues; i++) {
        if (i)
            rc = buf_putc(&params, ' ');
        if (!rc && spec->values[i])
            rc = buf_puts(&params, spec->values[i]);
    }
    if (!rc)
        rc = rule(&b, NULL);
    if (!rc)
        rc = rule(&b, "Job Information ");
    if (!rc)
        rc = row(&b, "Server", job->server, 1);
    if (!rc)
        rc = row(&b, "Application", spec->application, 1);
    if (!rc)
        rc = row(&b, "Submit User", JOBSPEC_SUBMIT_USER, 1);
    if (!rc)
        rc = row(&b, "Station", JOBSPEC_STATION, 1);
    if (!rc)
        rc = row(&b, "Queue Name", spec->queue_name, 1);
    if (!rc)
        rc = row(&b, spec->kind == JOBSPEC_SCRIPT ? "Script Job" : "Batch Job", spec->name, 1);
    if (!rc)
        rc = row(&b, "Parameters", params.data, 0);
    if (!rc)
        rc = rule(&b, NULL);
    if (!rc) {
        if (amt_code_known(job->completion_code))
            rc = row(&b, "Completion Code", amt_code_name(job->completion_code), 1);
        else
            rc = buf_printf(&b, "%-*s: UNKNOWN (%d)\n", JOBLOG_LABEL, "Completion Code",
                            job->completion_code);
    }
    if (!rc)
        rc = rule(&b, NULL);
    if (!rc)
        rc = rule(&b, "Job Log ");
    for (size_t i = 0; !rc && i < nmessages; i++) {
        const char *m = messages[i] ? messages[i] : "";
        rc = text_json_quote(&b, m, strlen(m));
        if (!rc)
            rc = buf_putc(&b, '\n');
    }
    if (!rc)
        rc = rule(&b, NULL);

    buf_free(&params);
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}
