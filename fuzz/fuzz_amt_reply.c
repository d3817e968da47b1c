/*
 * Fuzzes amt_parse_reply(), the parser of every answer of the AMT Batch
 * Server. The first byte picks the call and the HTTP status; the rest is the
 * body. So that the seeds stay readable, the letters H L S K M J G pick
 * heartbeat, logon, start, kill, monitor, monitor many (MonitorJobs) and get
 * messages with status 200; their lower case picks the same call with an
 * error status; any other byte picks both from its bits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/amt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char calls[] = "HLSKMJG"; /* in the order of enum amt_call */
static const long error_statuses[] = {400, 401, 404, 409, 413, 500, 503};
static const long any_statuses[] = {200, 201, 204, 299, 400, 401, 500, 0};

/* Reads every byte a reply points at, so that the sanitizers see a pointer
 * into freed or foreign memory, and checks what the parser promises. */
static void walk(const struct amt_reply *r)
{
    volatile size_t sink = strlen(r->error);
    if (r->status == AMT_OK && r->error[0])
        abort();
    if (r->status != AMT_OK && !r->error[0])
        abort();
    if (r->amt_version)
        sink += strlen(r->amt_version);
    for (size_t i = 0; i < r->njobs; i++) {
        const struct amt_job *j = &r->jobs[i];
        for (size_t k = 0; k < j->nchildren; k++)
            sink += strlen(j->children[k].name) + (size_t)j->children[k].code;
    }
    for (size_t i = 0; i < r->nunknown; i++)
        sink += (size_t)r->unknown[i];
    for (size_t i = 0; i < r->nmessages; i++) {
        sink += strlen(r->messages[i].text);
        if (i && r->messages[i].seq <= r->messages[i - 1].seq)
            abort(); /* the parser refuses a seq that does not increase */
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned b = data[0];
    const char *upper = b >= 'A' && b <= 'Z' ? memchr(calls, (int)b, sizeof calls - 1) : NULL;
    const char *lower = b >= 'a' && b <= 'z' ? memchr(calls, (int)b - 'a' + 'A', sizeof calls - 1)
                                             : NULL;
    enum amt_call call;
    long status;
    if (upper) {
        call = (enum amt_call)(upper - calls);
        status = 200;
    } else if (lower) {
        call = (enum amt_call)(lower - calls);
        status = error_statuses[(b >> 3) % (sizeof error_statuses / sizeof error_statuses[0])];
    } else {
        call = (enum amt_call)(b % 7);
        status = any_statuses[(b >> 5) % (sizeof any_statuses / sizeof any_statuses[0])];
    }
    /* An exact-size copy without a terminating NUL: reading past the body
     * (which the real buffer would hide) is caught. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + 1, len);
    struct amt_reply r;
    struct amt_parsed *p = amt_parse_reply(call, status, body, len, &r);
    if (p)
        walk(&r);
    amt_parsed_free(p);
    free(body);
    return 0;
}
