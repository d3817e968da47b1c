#include "amtacs/amt.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amtacs/buf.h"
#include "amtacs/text.h"

#define AMT_ERRLEN 512
#define AMT_MAX_ITEMS 100000 /* jobs or messages in one reply */

enum req_state {
    REQ_WAITING_TOKEN, /* queued until a logon finishes */
    REQ_IN_FLIGHT,     /* added to the multi handle */
};

struct amt_req {
    const void *magic; /* marks easy handles made here (CURLOPT_PRIVATE) */
    struct amt_client *c;
    enum amt_call call;
    enum req_state state;
    char *url;
    char *body;    /* POST body or NULL (GET); wiped on free: a logon holds a password */
    size_t bodylen;
    amt_cb cb;
    void *ud;
    CURL *easy;
    struct curl_slist *headers;
    struct buf resp;
    bool too_big;
    bool auth_retried;   /* a 401 already made us log on again once */
    bool maybe_delivered;
    bool fresh;          /* a new connection, never a reused one */
    unsigned token_gen;  /* generation of the token this request carried */
    char curl_err[CURL_ERROR_SIZE];
    struct amt_req *prev, *next; /* all requests of the client */
};

struct amt_client {
    CURLM *multi;
    char *name, *url, *user, *ca_file;
    long connect_timeout_ms, timeout_ms, max_connections;
    size_t max_body;
    bool tls_verify;
    const struct logger *lg;
    amt_observe_fn observe;
    void *observe_ud;
    amt_password_fn password;
    amt_password_release_fn release;
    void *password_ud;
    char *token;          /* sodium_malloc'd; NULL = none */
    unsigned token_gen;   /* bumped at every new token */
    bool logon_in_flight;
    struct amt_req *reqs; /* every pending request, logon included */
    size_t pending;
};

static const char req_magic = 0;

struct amt_parsed {
    cJSON *json;
    struct amt_job *jobs;
    struct amt_child *children;
    struct amt_message *messages;
    int *unknown;
    char error[AMT_ERRLEN];
};

bool amt_status_transient(enum amt_status st)
{
    return st == AMT_ERR_TRANSPORT || st == AMT_ERR_SERVER || st == AMT_ERR_PROTOCOL;
}

const char *amt_status_name(enum amt_status st)
{
    switch (st) {
    case AMT_OK:
        return "ok";
    case AMT_ERR_TRANSPORT:
        return "transport";
    case AMT_ERR_SERVER:
        return "server";
    case AMT_ERR_PROTOCOL:
        return "protocol";
    case AMT_ERR_AUTH:
        return "auth";
    case AMT_ERR_REJECTED:
        return "rejected";
    case AMT_ERR_NOPASSWORD:
        return "no-password";
    case AMT_ERR_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- parsing */

static bool get_int(const cJSON *obj, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < INT_MIN || d > INT_MAX)
        return false;
    *out = (int)d;
    return true;
}

static bool get_long(const cJSON *obj, const char *key, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < -9007199254740992.0 || d > 9007199254740992.0)
        return false;
    *out = (long)d;
    return true;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void perr(struct amt_parsed *p, struct amt_reply *r, const char *msg)
{
    snprintf(p->error, sizeof p->error, "%s", msg);
    r->status = AMT_ERR_PROTOCOL;
    r->error = p->error;
}

static bool parse_job(struct amt_parsed *p, const cJSON *o, struct amt_job *job,
                      struct amt_child **child_cursor, struct amt_reply *r)
{
    if (!cJSON_IsObject(o) || !get_int(o, "BatchRequestId", &job->id) ||
        !get_int(o, "code", &job->code)) {
        perr(p, r, "MonitorJob answer lacks an integer BatchRequestId or code");
        return false;
    }
    job->message_count = -1; /* not said: the messages must be read to know */
    get_long(o, "messageCount", &job->message_count);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "children");
    job->nchildren = 0;
    job->children = *child_cursor;
    if (ch && !cJSON_IsNull(ch)) {
        if (!cJSON_IsArray(ch)) {
            perr(p, r, "MonitorJob answer: children is not a list");
            return false;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, ch)
        {
            struct amt_child *c = &(*child_cursor)[job->nchildren];
            if (!cJSON_IsObject(it) || !get_int(it, "BatchRequestId", &c->id) ||
                !get_int(it, "code", &c->code)) {
                perr(p, r, "MonitorJob answer: a child lacks BatchRequestId or code");
                return false;
            }
            c->name = get_str(it, "name");
            if (!c->name)
                c->name = "";
            job->nchildren++;
        }
    }
    *child_cursor += job->nchildren;
    return true;
}

/* Children across all jobs of a reply, so they can live in one array. */
static size_t count_children(const cJSON *jobs, bool many)
{
    size_t n = 0;
    const cJSON *j;
    if (!many) {
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(jobs, "children");
        return cJSON_IsArray(ch) ? (size_t)cJSON_GetArraySize(ch) : 0;
    }
    cJSON_ArrayForEach(j, jobs)
    {
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "children");
        if (cJSON_IsArray(ch))
            n += (size_t)cJSON_GetArraySize(ch);
    }
    return n;
}

struct amt_parsed *amt_parse_reply(enum amt_call call, long http_status, const char *body,
                                   size_t len, struct amt_reply *r)
{
    struct amt_parsed *p = calloc(1, sizeof *p);
    memset(r, 0, sizeof *r);
    r->http_status = http_status;
    r->error = "";
    if (!p) {
        r->status = AMT_ERR_PROTOCOL;
        r->error = "out of memory";
        return NULL;
    }
    r->status = AMT_OK;
    if (!text_utf8_valid(body, len) || memchr(body, '\0', len)) {
        perr(p, r, "answer is not valid UTF-8 text");
        return p;
    }
    const char *end = NULL;
    p->json = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!p->json || !cJSON_IsObject(p->json)) {
        perr(p, r, "answer is not a JSON object");
        return p;
    }
    for (const char *q = end; q && q < body + len; q++) {
        if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') {
            perr(p, r, "answer has data after the JSON object");
            return p;
        }
    }
    const cJSON *o = p->json;
    switch (call) {
    case AMT_CALL_HEARTBEAT: {
        r->amt_version = get_str(o, "amtVersion");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "features"), *it;
        if (cJSON_IsArray(f)) {
            cJSON_ArrayForEach(it, f)
            {
                if (cJSON_IsString(it) && !strcmp(it->valuestring, "MonitorJobs"))
                    r->monitor_jobs = true;
                if (cJSON_IsString(it) && !strcmp(it->valuestring, "IdempotentStart"))
                    r->idempotent_start = true;
            }
        }
        break;
    }
    case AMT_CALL_LOGON: {
        const char *t = get_str(o, "AmtLogonToken");
        if (!t || !*t || strlen(t) > 4096) {
            perr(p, r, "logon answer lacks AmtLogonToken");
            return p;
        }
        break;
    }
    case AMT_CALL_START:
    case AMT_CALL_KILL:
        if (!get_int(o, "BatchRequestId", &r->batch_request_id)) {
            perr(p, r, "answer lacks an integer BatchRequestId");
            return p;
        }
        if (call == AMT_CALL_START && r->batch_request_id <= 0) {
            snprintf(p->error, sizeof p->error, "server answered BatchRequestId %d: not started",
                     r->batch_request_id);
            r->status = AMT_ERR_REJECTED;
            r->error = p->error;
            return p;
        }
        break;
    case AMT_CALL_MONITOR:
    case AMT_CALL_MONITOR_MANY: {
        bool many = call == AMT_CALL_MONITOR_MANY;
        const cJSON *jobs = many ? cJSON_GetObjectItemCaseSensitive(o, "jobs") : o;
        if (many && !cJSON_IsArray(jobs)) {
            perr(p, r, "MonitorJobs answer lacks the jobs list");
            return p;
        }
        size_t nj = many ? (size_t)cJSON_GetArraySize(jobs) : 1;
        size_t nc = count_children(jobs, many);
        if (nj > AMT_MAX_ITEMS || nc > AMT_MAX_ITEMS) {
            perr(p, r, "answer lists too many jobs");
            return p;
        }
        p->jobs = calloc(nj ? nj : 1, sizeof *p->jobs);
        p->children = calloc(nc ? nc : 1, sizeof *p->children);
        if (!p->jobs || !p->children) {
            perr(p, r, "out of memory");
            return p;
        }
        struct amt_child *cursor = p->children;
        if (!many) {
            if (!parse_job(p, o, &p->jobs[0], &cursor, r))
                return p;
        } else {
            size_t i = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, jobs)
            {
                if (!parse_job(p, it, &p->jobs[i++], &cursor, r))
                    return p;
            }
            const cJSON *unk = cJSON_GetObjectItemCaseSensitive(o, "unknown");
            if (cJSON_IsArray(unk) && cJSON_GetArraySize(unk) > 0) {
                size_t nu = (size_t)cJSON_GetArraySize(unk);
                if (nu > AMT_MAX_ITEMS || !(p->unknown = calloc(nu, sizeof *p->unknown))) {
                    perr(p, r, "answer lists too many unknown ids");
                    return p;
                }
                size_t k = 0;
                cJSON_ArrayForEach(it, unk)
                {
                    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
                    if (!isfinite(d) || d != floor(d) || d < INT_MIN || d > INT_MAX) {
                        perr(p, r, "MonitorJobs answer: unknown holds a non-integer");
                        return p;
                    }
                    p->unknown[k++] = (int)d;
                }
                r->unknown = p->unknown;
                r->nunknown = k;
            }
        }
        r->jobs = p->jobs;
        r->njobs = nj;
        break;
    }
    case AMT_CALL_MESSAGES: {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "messages"), *it;
        if (!cJSON_IsArray(ms)) {
            perr(p, r, "GetMessages answer lacks the messages list");
            return p;
        }
        size_t n = (size_t)cJSON_GetArraySize(ms);
        if (n > AMT_MAX_ITEMS || !(p->messages = calloc(n ? n : 1, sizeof *p->messages))) {
            perr(p, r, "GetMessages answer has too many messages");
            return p;
        }
        size_t i = 0;
        long prev = LONG_MIN;
        cJSON_ArrayForEach(it, ms)
        {
            struct amt_message *m = &p->messages[i];
            if (!cJSON_IsObject(it) || !get_long(it, "seq", &m->seq) ||
                !(m->text = get_str(it, "text"))) {
                perr(p, r, "GetMessages answer: a message lacks seq or text");
                return p;
            }
            if (m->seq <= prev) {
                perr(p, r, "GetMessages answer: seq does not increase");
                return p;
            }
            prev = m->seq;
            if (!get_int(it, "BatchRequestId", &m->id))
                m->id = 0;
            i++;
        }
        r->messages = p->messages;
        r->nmessages = n;
        const cJSON *more = cJSON_GetObjectItemCaseSensitive(o, "more");
        r->more = cJSON_IsTrue(more);
        if (!get_long(o, "next", &r->next))
            r->next = n ? p->messages[n - 1].seq : 0;
        if (r->more && n == 0) {
            perr(p, r, "GetMessages answer: more=true on an empty page");
            return p;
        }
        break;
    }
    }
    return p;
}

void amt_parsed_free(struct amt_parsed *p)
{
    if (!p)
        return;
    cJSON_Delete(p->json);
    free(p->jobs);
    free(p->children);
    free(p->messages);
    free(p->unknown);
    free(p);
}

/* ---------------------------------------------------------------- requests */

/* Header lines can hold the token: wipe them before they are freed. */
static void free_headers(struct curl_slist *h)
{
    for (struct curl_slist *l = h; l; l = l->next)
        sodium_memzero(l->data, strlen(l->data));
    curl_slist_free_all(h);
}

static void req_free(struct amt_req *q)
{
    if (!q)
        return;
    if (q->body) {
        sodium_memzero(q->body, q->bodylen);
        free(q->body);
    }
    if (q->easy)
        curl_easy_cleanup(q->easy); /* first: curl may still point at the headers */
    free_headers(q->headers);
    if (q->resp.data)
        sodium_memzero(q->resp.data, q->resp.cap); /* a logon answer holds a token */
    buf_free(&q->resp);
    free(q->url);
    free(q);
}

static void unlink_req(struct amt_req *q)
{
    struct amt_client *c = q->c;
    if (q->prev)
        q->prev->next = q->next;
    else
        c->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    c->pending--;
}

/* Runs the callback once and frees the request. */
static void finish(struct amt_req *q, const struct amt_reply *r)
{
    if (q->state == REQ_IN_FLIGHT && q->easy) {
        if (q->c->observe) {
            curl_off_t us = 0;
            curl_easy_getinfo(q->easy, CURLINFO_TOTAL_TIME_T, &us);
            q->c->observe(q->c->observe_ud, q->call, (double)us / 1e6, r->status);
        }
        curl_multi_remove_handle(q->c->multi, q->easy);
    }
    unlink_req(q);
    amt_cb cb = q->cb;
    void *ud = q->ud;
    req_free(q);
    if (cb)
        cb(ud, r);
}

static void finish_error(struct amt_req *q, enum amt_status st, long http, int code,
                         const char *msg)
{
    struct amt_reply r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.maybe_delivered = q->maybe_delivered && (st == AMT_ERR_TRANSPORT || st == AMT_ERR_SERVER ||
                                               st == AMT_ERR_PROTOCOL);
    r.http_status = http;
    r.error_code = code;
    r.error = msg;
    finish(q, &r);
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct amt_req *q = ud;
    size_t len = size * n;
    if (buf_append(&q->resp, data, len) != BUF_OK) {
        q->too_big = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

/* curl's exchange at debug level: what went out and came back, but never a
 * token (its header is redacted) nor a body (a logon carries the password in
 * one and gets the token back in another): bodies are shown by size only. */
static int on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *ud)
{
    struct amt_req *q = ud;
    (void)e;
    const char *dir = type == CURLINFO_HEADER_OUT  ? ">"
                      : type == CURLINFO_HEADER_IN ? "<"
                      : type == CURLINFO_TEXT      ? "*"
                                                   : NULL;
    struct log_ctx x = {q->c->name, 0, 0};
    if (!dir) {
        if (type == CURLINFO_DATA_OUT || type == CURLINFO_DATA_IN)
            log_event(q->c->lg, LOG_DEBUG, "http.debug", &x, "%s %zu bytes of body (not shown)",
                      type == CURLINFO_DATA_OUT ? ">" : "<", size);
        return 0;
    }
    const char *p = data, *end = data + size;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((eol ? eol : end) - p);
        if (len && p[len - 1] == '\r')
            len--;
        static const char tok[] = "x-amt-logontoken:";
        if (len >= sizeof tok - 1 && !strncasecmp(p, tok, sizeof tok - 1))
            log_event(q->c->lg, LOG_DEBUG, "http.debug", &x, "%s %.*s [redacted]", dir,
                      (int)(sizeof tok - 1), p);
        else if (len)
            log_event(q->c->lg, LOG_DEBUG, "http.debug", &x, "%s %.*s", dir, (int)len, p);
        p = eol ? eol + 1 : end;
    }
    return 0;
}

static int add_header(struct amt_req *q, const char *h)
{
    struct curl_slist *n = curl_slist_append(q->headers, h);
    if (!n)
        return -1;
    q->headers = n;
    return 0;
}

static int launch(struct amt_req *q);
static void start_logon(struct amt_client *c);

static bool needs_token(enum amt_call call)
{
    return call != AMT_CALL_HEARTBEAT && call != AMT_CALL_LOGON;
}

/* Sends the request now if it can, else parks it until the logon is done. */
static void submit(struct amt_req *q)
{
    struct amt_client *c = q->c;
    if (needs_token(q->call) && !c->token) {
        q->state = REQ_WAITING_TOKEN;
        if (!c->logon_in_flight)
            start_logon(c);
        return;
    }
    if (launch(q))
        finish_error(q, AMT_ERR_TRANSPORT, 0, 0, "could not set up the HTTP request");
}

static int launch(struct amt_req *q)
{
    struct amt_client *c = q->c;
    buf_reset(&q->resp);
    q->too_big = false;
    q->curl_err[0] = '\0';
    if (!q->easy && !(q->easy = curl_easy_init()))
        return -1;
    CURL *e = q->easy;
    curl_easy_reset(e);
    free_headers(q->headers);
    q->headers = NULL;
    if (add_header(q, "Accept: application/json") ||
        (q->body && add_header(q, "Content-Type: application/json")))
        return -1;
    if (needs_token(q->call)) {
        struct buf h;
        buf_init(&h, 8192);
        int bad = buf_printf(&h, "X-AMT-LogonToken: %s", c->token) != BUF_OK ||
                  add_header(q, h.data);
        if (h.data)
            sodium_memzero(h.data, h.len);
        buf_free(&h);
        if (bad)
            return -1;
        q->token_gen = c->token_gen;
    }
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, q);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (log_on(c->lg, LOG_DEBUG)) {
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(e, CURLOPT_DEBUGDATA, q);
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }
    if (q->fresh)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    if (q->body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)q->bodylen);
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return -1;
    q->state = REQ_IN_FLIGHT;
    return 0;
}

static struct amt_req *req_new(struct amt_client *c, enum amt_call call, const char *path,
                               struct buf *body, amt_cb cb, void *ud)
{
    struct amt_req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->magic = &req_magic;
    q->c = c;
    q->call = call;
    q->cb = cb;
    q->ud = ud;
    buf_init(&q->resp, c->max_body);
    size_t ulen = strlen(c->url) + strlen(path) + 1;
    q->url = malloc(ulen);
    if (!q->url) {
        free(q);
        return NULL;
    }
    snprintf(q->url, ulen, "%s%s", c->url, path);
    if (body) {
        q->bodylen = body->len;
        q->body = buf_take(body);
        if (!q->body) {
            free(q->url);
            free(q);
            return NULL;
        }
    }
    q->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = q;
    c->reqs = q;
    c->pending++;
    return q;
}

static void on_logon(void *ud, const struct amt_reply *r);

static void start_logon(struct amt_client *c)
{
    char err[256] = "";
    char *pw = c->password(c->password_ud, c->user, err, sizeof err);
    struct amt_reply fail;
    memset(&fail, 0, sizeof fail);
    if (!pw) {
        fail.status = AMT_ERR_NOPASSWORD;
        fail.error = err[0] ? err : "no password for the Batch User";
        on_logon(c, &fail);
        return;
    }
    struct buf body;
    buf_init(&body, 0);
    bool bad = buf_puts(&body, "{\"user\":") || text_json_quote(&body, c->user, strlen(c->user)) ||
               buf_puts(&body, ",\"password\":") || text_json_quote(&body, pw, strlen(pw)) ||
               buf_puts(&body, "}");
    c->release(pw);
    struct amt_req *q = bad ? NULL : req_new(c, AMT_CALL_LOGON, "/api/logon", &body, on_logon, c);
    if (body.data)
        sodium_memzero(body.data, body.cap);
    buf_free(&body);
    if (!q) {
        fail.status = AMT_ERR_TRANSPORT;
        fail.error = "out of memory building the logon request";
        on_logon(c, &fail);
        return;
    }
    c->logon_in_flight = true;
    if (launch(q)) {
        c->logon_in_flight = false;
        finish_error(q, AMT_ERR_TRANSPORT, 0, 0, "could not set up the logon request");
    }
}

/* The logon's outcome releases every parked request: with a token they go out,
 * without one they fail with the logon's reason. */
static void on_logon(void *ud, const struct amt_reply *r)
{
    struct amt_client *c = ud;
    c->logon_in_flight = false;
    char why[AMT_ERRLEN];
    enum amt_status st = r->status;
    if (st == AMT_OK && !c->token)
        st = AMT_ERR_PROTOCOL;
    if (st == AMT_ERR_REJECTED && r->http_status == 401)
        st = AMT_ERR_AUTH;
    if (st == AMT_ERR_AUTH)
        snprintf(why, sizeof why, "logon of Batch User '%s' refused by the server: %s", c->user,
                 r->error && *r->error ? r->error : "invalid user or password");
    else
        snprintf(why, sizeof why, "logon failed: %s", r->error ? r->error : "");
    bool again = true;
    while (again) {
        again = false;
        for (struct amt_req *q = c->reqs; q; q = q->next) {
            if (q->state != REQ_WAITING_TOKEN || q->call == AMT_CALL_LOGON)
                continue;
            if (c->token) {
                q->state = REQ_IN_FLIGHT; /* launch() may fail and finish it */
                if (launch(q)) {
                    finish_error(q, AMT_ERR_TRANSPORT, 0, 0, "could not set up the HTTP request");
                    again = true;
                    break;
                }
            } else {
                finish_error(q, st, r->http_status, r->error_code, why);
                again = true; /* the list changed under us */
                break;
            }
        }
    }
}

static void set_token(struct amt_client *c, const char *t)
{
    if (c->token)
        sodium_free(c->token);
    size_t n = strlen(t);
    c->token = sodium_malloc(n + 1);
    if (c->token) {
        memcpy(c->token, t, n + 1);
        c->token_gen++;
    }
}

static void complete(struct amt_req *q, CURLcode cc)
{
    struct amt_client *c = q->c;
    long http = 0;
    char msg[AMT_ERRLEN];
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &http);
    /* Whether the server may have acted on a call that failed: some of the
     * request went out (a connect failure sends nothing), or it answered 5xx. */
    curl_off_t sent_body = 0;
    long sent_head = 0;
    curl_easy_getinfo(q->easy, CURLINFO_REQUEST_SIZE, &sent_head);
    curl_easy_getinfo(q->easy, CURLINFO_SIZE_UPLOAD_T, &sent_body);
    q->maybe_delivered = sent_head > 0 || sent_body > 0;
    if (cc != CURLE_OK) {
        if (q->too_big || cc == CURLE_FILESIZE_EXCEEDED)
            snprintf(msg, sizeof msg, "answer larger than %zu bytes", c->max_body);
        else
            snprintf(msg, sizeof msg, "cannot reach %s: %s", c->url,
                     q->curl_err[0] ? q->curl_err : curl_easy_strerror(cc));
        finish_error(q, q->too_big || cc == CURLE_FILESIZE_EXCEEDED ? AMT_ERR_PROTOCOL
                                                                     : AMT_ERR_TRANSPORT,
                     http, 0, msg);
        return;
    }
    if (http == 401 && q->call != AMT_CALL_LOGON) {
        if (!q->auth_retried) {
            q->auth_retried = true;
            curl_multi_remove_handle(c->multi, q->easy);
            /* A token newer than the one this call carried is already good. */
            if (c->token && c->token_gen == q->token_gen) {
                sodium_free(c->token);
                c->token = NULL;
            }
            q->state = REQ_WAITING_TOKEN;
            submit(q);
            return;
        }
        finish_error(q, AMT_ERR_AUTH, http, 24, "token refused right after a fresh logon");
        return;
    }
    if (http < 200 || http >= 300) {
        struct amt_reply r;
        struct amt_parsed *p = amt_parse_reply(q->call, http, q->resp.data ? q->resp.data : "",
                                               q->resp.len, &r);
        int code = 0;
        const char *desc = NULL;
        if (p && p->json) {
            get_int(p->json, "errorCode", &code);
            desc = get_str(p->json, "errorDescription");
        }
        struct buf one;
        buf_init(&one, 300);
        if (desc && text_one_line(&one, desc, strlen(desc) > 240 ? 240 : strlen(desc)))
            buf_reset(&one);
        snprintf(msg, sizeof msg, "HTTP %ld from %s%s%s", http, c->url, one.len ? ": " : "",
                 one.len ? one.data : "");
        buf_free(&one);
        amt_parsed_free(p);
        enum amt_status st = http >= 500               ? AMT_ERR_SERVER
                             : http == 401             ? AMT_ERR_AUTH
                             : http == 408 || http == 429 ? AMT_ERR_SERVER
                                                       : AMT_ERR_REJECTED;
        finish_error(q, st, http, code, msg);
        return;
    }
    char *ct = NULL;
    curl_easy_getinfo(q->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (!ct || strncmp(ct, "application/json", 16)) {
        snprintf(msg, sizeof msg, "answer from %s has content type '%s', not application/json",
                 c->url, ct ? ct : "none");
        finish_error(q, AMT_ERR_PROTOCOL, http, 0, msg);
        return;
    }
    struct amt_reply r;
    struct amt_parsed *p =
        amt_parse_reply(q->call, http, q->resp.data ? q->resp.data : "", q->resp.len, &r);
    r.maybe_delivered = r.status != AMT_OK; /* a 2xx came back: the server did act */
    if (p && r.status == AMT_OK && q->call == AMT_CALL_LOGON) {
        set_token(c, get_str(p->json, "AmtLogonToken"));
        if (!c->token) {
            r.status = AMT_ERR_PROTOCOL;
            r.error = "out of memory storing the token";
        }
    }
    finish(q, &r);
    amt_parsed_free(p);
}

size_t amt_multi_dispatch(CURLM *multi)
{
    size_t n = 0;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct amt_req *q = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        if (!q || q->magic != &req_magic)
            continue;
        complete(q, m->data.result);
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- client */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

struct amt_client *amt_client_new(CURLM *multi, const struct amt_settings *s,
                                  amt_password_fn password, amt_password_release_fn release,
                                  void *password_ud, char *err, size_t errlen)
{
    if (!s->url || (strncmp(s->url, "http://", 7) && strncmp(s->url, "https://", 8))) {
        snprintf(err, errlen, "Batch Server URL must start with http:// or https://");
        return NULL;
    }
    if (!s->user || !*s->user || !password || !release) {
        snprintf(err, errlen, "a Batch User and a password source are required");
        return NULL;
    }
    struct amt_client *c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->multi = multi;
    c->name = strdup(s->name ? s->name : s->url);
    c->url = strdup(s->url);
    c->user = strdup(s->user);
    c->ca_file = dup_or_null(s->ca_file);
    if (!c->name || !c->url || !c->user || (s->ca_file && !c->ca_file))
        goto oom;
    size_t ul = strlen(c->url);
    while (ul > 0 && c->url[ul - 1] == '/')
        c->url[--ul] = '\0'; /* paths are appended with their own leading slash */
    c->connect_timeout_ms = s->connect_timeout_ms > 0 ? s->connect_timeout_ms : 10000;
    c->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 30000;
    c->max_body = s->max_body ? s->max_body : 1048576;
    c->max_connections = s->max_connections > 0 ? s->max_connections : 8;
    c->tls_verify = s->tls_verify;
    c->lg = s->lg;
    c->observe = s->observe;
    c->observe_ud = s->observe_ud;
    c->password = password;
    c->release = release;
    c->password_ud = password_ud;
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->max_connections);
    return c;
oom:
    snprintf(err, errlen, "out of memory");
    amt_client_free(c);
    return NULL;
}

void amt_client_free(struct amt_client *c)
{
    if (!c)
        return;
    while (c->reqs)
        finish_error(c->reqs, AMT_ERR_CANCELLED, 0, 0, "cancelled");
    if (c->token)
        sodium_free(c->token);
    free(c->name);
    free(c->url);
    free(c->user);
    free(c->ca_file);
    free(c);
}

void amt_client_forget_token(struct amt_client *c)
{
    if (c->token) {
        sodium_free(c->token);
        c->token = NULL;
    }
}

size_t amt_client_pending(const struct amt_client *c) { return c->pending; }

static int queue_call(struct amt_client *c, enum amt_call call, const char *path,
                      struct buf *body, amt_cb cb, void *ud)
{
    struct amt_req *q = req_new(c, call, path, body, cb, ud);
    if (body)
        buf_free(body);
    if (!q)
        return -1;
    submit(q);
    return 0;
}

int amt_heartbeat(struct amt_client *c, amt_cb cb, void *ud)
{
    return queue_call(c, AMT_CALL_HEARTBEAT, "/api/heartbeat", NULL, cb, ud);
}

static bool put_field(struct buf *b, const char *key, const char *value)
{
    return buf_printf(b, ",\"%s\":", key) || text_json_quote(b, value, strlen(value));
}

int amt_start_job(struct amt_client *c, const struct amt_start *job, amt_cb cb, void *ud)
{
    if (!job->task_id || !job->application || (!job->job_name == !job->script_name))
        return -1;
    struct buf b;
    buf_init(&b, 0);
    bool bad = buf_puts(&b, "{\"action\":\"Start\"") || put_field(&b, "taskId", job->task_id) ||
               put_field(&b, "applicationName", job->application) ||
               buf_puts(&b, ",\"amtSubmitUser\":\"BATCH\",\"amtStation\":\"OPCON\"");
    if (!bad && job->amt_user && *job->amt_user)
        bad = put_field(&b, "amtUser", job->amt_user);
    if (!bad && job->queue_name && *job->queue_name)
        bad = put_field(&b, "amtQueueName", job->queue_name);
    if (!bad)
        bad = job->job_name ? put_field(&b, "jobName", job->job_name)
                            : put_field(&b, "scriptName", job->script_name);
    if (!bad)
        bad = buf_printf(&b, ",\"%s\":[", job->job_name ? "taskValues" : "scriptParameters");
    for (size_t i = 0; !bad && i < job->nvalues; i++)
        bad = (i && buf_putc(&b, ',')) ||
              text_json_quote(&b, job->values[i], strlen(job->values[i]));
    if (!bad)
        bad = buf_puts(&b, "]}");
    if (bad) {
        buf_free(&b);
        return -1;
    }
    struct amt_req *q = req_new(c, AMT_CALL_START, "/api/OpConJobAction", &b, cb, ud);
    buf_free(&b);
    if (!q)
        return -1;
    q->fresh = job->fresh_connection;
    submit(q);
    return 0;
}

int amt_kill(struct amt_client *c, int id, amt_cb cb, void *ud)
{
    struct buf b;
    buf_init(&b, 0);
    if (buf_printf(&b, "{\"action\":\"Kill\",\"BatchRequestId\":%d}", id)) {
        buf_free(&b);
        return -1;
    }
    return queue_call(c, AMT_CALL_KILL, "/api/OpConJobAction", &b, cb, ud);
}

int amt_monitor(struct amt_client *c, int id, amt_cb cb, void *ud)
{
    char path[64];
    snprintf(path, sizeof path, "/api/MonitorJob/%d", id);
    return queue_call(c, AMT_CALL_MONITOR, path, NULL, cb, ud);
}

int amt_monitor_many(struct amt_client *c, const int *ids, size_t n, amt_cb cb, void *ud)
{
    struct buf b;
    buf_init(&b, 0);
    bool bad = buf_puts(&b, "{\"ids\":[");
    for (size_t i = 0; !bad && i < n; i++)
        bad = buf_printf(&b, i ? ",%d" : "%d", ids[i]);
    if (!bad)
        bad = buf_puts(&b, "]}");
    if (bad) {
        buf_free(&b);
        return -1;
    }
    return queue_call(c, AMT_CALL_MONITOR_MANY, "/api/MonitorJobs", &b, cb, ud);
}

int amt_messages(struct amt_client *c, int id, long after, int limit, amt_cb cb, void *ud)
{
    char path[128];
    snprintf(path, sizeof path, "/api/GetMessages/%d?after=%ld&limit=%d", id, after, limit);
    return queue_call(c, AMT_CALL_MESSAGES, path, NULL, cb, ud);
}
