#include "amtacs/amt.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amtacs/buf.h"
#include "amtacs/jsoncheck.h"
#include "amtacs/text.h"

#define AMT_ERRLEN 512
#define AMT_MAX_ITEMS 100000 /* jobs or messages in one reply */

enum req_state {
    REQ_WAITING_TOKEN, /* queued until a logon finishes */
    REQ_QUEUED,        /* waiting for one of the client's connections */
    REQ_IN_FLIGHT,     /* launched (added to the multi handle unless launching failed) */
};

struct amt_req {
    const void *magic; /* marks easy handles made here (CURLOPT_PRIVATE) */
    struct amt_client *c;
    enum amt_call call;
    enum req_state state;
    char *url;
    char *body;    /* POST body or NULL (GET); wiped on free */
    size_t bodylen;
    bool secret;   /* a logon: body (password) and answer (token) in memory that never moves:
                      the body in sodium_malloc memory, the answer in a buffer of fixed size */
    amt_cb cb;
    void *ud;
    CURL *easy;
    struct curl_slist *headers;
    struct buf resp;
    bool too_big;        /* the body passed max_body */
    bool oom;            /* the body could not be stored */
    double seconds;      /* of the last transfer */
    bool auth_retried;   /* a 401 already made us log on again once */
    bool maybe_delivered;
    bool fresh;          /* a new connection, never a reused one */
    unsigned token_gen;  /* generation of the token this request carried */
    char curl_err[CURL_ERROR_SIZE];
    bool added;          /* on the multi handle: holds one of the client's slots */
    struct amt_req *prev, *next;   /* all requests of the client */
    struct amt_req *qprev, *qnext; /* the queue for a free connection */
};

struct amt_client {
    CURLM *multi;
    char *name, *url, *user, *ca_file;
    char *proxy;          /* "" = none: the environment's http_proxy is not used either */
    long connect_timeout_ms, timeout_ms, low_speed_s, max_connections;
    size_t max_body;
    bool tls_verify;
    const struct logger *lg;
    amt_observe_fn observe;
    void *observe_ud;
    amt_password_fn password;
    amt_password_release_fn release;
    void *password_ud;
    char *token;          /* sodium_malloc'd, read-only; NULL = none */
    unsigned token_gen;   /* bumped at every new token */
    bool logon_in_flight;
    struct amt_req *reqs; /* every pending request, logon included */
    size_t pending;
    /* Starts go to curl only while fewer than 4 x max_connections transfers
     * are on the multi handle: one per connection, and a few more each that
     * curl starts the moment a connection frees up, without waiting for our
     * loop to come round (1 x cut throughput by a quarter, 2 x by a fifth,
     * 4 x measured the same as no limit). The other Starts wait here, so a
     * Kill goes to curl behind a handful of calls, not behind thousands of
     * Starts. Other calls are never held: queueing the MonitorJobs calls of
     * a beat cost 40 % more CPU while following 100,000 jobs. */
    size_t in_flight;
    struct amt_req *qhead, *qtail; /* Starts waiting for a slot */
    bool closing;
};

static const char req_magic = 0;

struct amt_parsed {
    enum amt_call call;
    cJSON *json;
    struct amt_job *jobs;
    struct amt_child *children;
    struct amt_message *messages;
    int *unknown;
    const char *token;  /* logon: the AmtLogonToken, checked, inside json */
    char detail[256];   /* non-2xx: ": <excerpt of errorDescription>" or "" */
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

/* Limits of single fields, beyond the checker's general ones. */
#define AMT_MAX_TOKEN 4096   /* bytes of AmtLogonToken: it goes into every request */
#define AMT_MAX_VERSION 64   /* bytes of amtVersion: it is stored and logged */
#define AMT_MAX_NAME 256     /* bytes of a name, status or time string */
#define AMT_MAX_FEATURES 64  /* entries of the heartbeat's features */
#define AMT_MAX_CODE 999     /* AMT codes are small; an unknown one means "keep following" */
#define AMT_MAX_EXACT 9007199254740991.0 /* 2^53 - 1: a double counts exactly up to here */
#define AMT_EXCERPT 160      /* bytes of a server's errorDescription quoted in a message */
#define AMT_LOGON_MAX_BODY 16384 /* bytes of a logon answer: the token and a little more */

const char *amt_call_name(enum amt_call call)
{
    switch (call) {
    case AMT_CALL_HEARTBEAT:
        return "heartbeat";
    case AMT_CALL_LOGON:
        return "logon";
    case AMT_CALL_START:
        return "start";
    case AMT_CALL_KILL:
        return "kill";
    case AMT_CALL_MONITOR:
        return "monitor";
    case AMT_CALL_MONITOR_MANY:
        return "monitor_jobs";
    case AMT_CALL_MESSAGES:
        return "messages";
    }
    return "unknown";
}

/* The call as the contract names it, for messages. */
static const char *call_title(enum amt_call call)
{
    switch (call) {
    case AMT_CALL_HEARTBEAT:
        return "heartbeat";
    case AMT_CALL_LOGON:
        return "logon";
    case AMT_CALL_START:
        return "Start";
    case AMT_CALL_KILL:
        return "Kill";
    case AMT_CALL_MONITOR:
        return "MonitorJob";
    case AMT_CALL_MONITOR_MANY:
        return "MonitorJobs";
    case AMT_CALL_MESSAGES:
        return "GetMessages";
    }
    return "unknown";
}

/* One parse: the reply being filled and where in the answer we are, so that a
 * message can name the field ("jobs[3].children[0].code") without quoting
 * anything the server sent. */
struct pctx {
    struct amt_parsed *p;
    struct amt_reply *r;
    char path[64]; /* prefix of the current object's fields, "" at the top */
};

static void perr(struct pctx *x, enum amt_status st, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr(struct pctx *x, enum amt_status st, const char *name, const char *fmt, ...)
{
    struct amt_parsed *p = x->p;
    int n = snprintf(p->error, sizeof p->error, "%s answer: ", call_title(p->call));
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof p->error)
        vsnprintf(p->error + n, sizeof p->error - (size_t)n, fmt, ap);
    va_end(ap);
    x->r->status = st;
    x->r->error = p->error;
    x->r->error_name = name;
}

/* A member; JSON null counts as absent. */
static const cJSON *member(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* The readers return 1 with the value, 0 when an optional field is absent,
 * -1 after reporting why the field is unusable. This one finds the member and
 * checks its JSON type (`what` names the type in the message). */
static int field(struct pctx *x, const cJSON *o, const char *key, bool required,
                 cJSON_bool (*is)(const cJSON *), const char *what, const cJSON **out)
{
    const cJSON *v = member(o, key);
    if (!v) {
        if (required)
            perr(x, AMT_ERR_PROTOCOL, "field.missing", "%s%s is missing", x->path, key);
        return required ? -1 : 0;
    }
    if (!is(v)) {
        perr(x, AMT_ERR_PROTOCOL, "field.type", "%s%s is not %s", x->path, key, what);
        return -1;
    }
    *out = v;
    return 1;
}

static int read_number(struct pctx *x, const cJSON *o, const char *key, bool required, double lo,
                       double hi, double *out)
{
    const cJSON *v;
    int rc = field(x, o, key, required, cJSON_IsNumber, "an integer", &v);
    if (rc < 1)
        return rc;
    double d = v->valuedouble;
    if (d != floor(d)) {
        perr(x, AMT_ERR_PROTOCOL, "field.type", "%s%s is not an integer", x->path, key);
        return -1;
    }
    if (d < lo || d > hi) {
        perr(x, AMT_ERR_PROTOCOL, "field.range", "%s%s is out of range (%.0f..%.0f)", x->path,
             key, lo, hi);
        return -1;
    }
    *out = d;
    return 1;
}

static int read_int(struct pctx *x, const cJSON *o, const char *key, bool required, int lo,
                    int hi, int *out)
{
    double d;
    int rc = read_number(x, o, key, required, lo, hi, &d);
    if (rc == 1)
        *out = (int)d;
    return rc;
}

static int read_long(struct pctx *x, const cJSON *o, const char *key, bool required, double lo,
                     long *out)
{
    double d;
    int rc = read_number(x, o, key, required, lo, AMT_MAX_EXACT, &d);
    if (rc == 1)
        *out = (long)d;
    return rc;
}

enum str_rule {
    STR_ANY,       /* any text the checker let through */
    STR_PRINTABLE, /* no control characters: it is logged or stored as one line */
    STR_TOKEN,     /* visible ASCII only: it goes into an HTTP header */
};

static int read_str(struct pctx *x, const cJSON *o, const char *key, bool required, size_t max,
                    enum str_rule rule, const char **out)
{
    const cJSON *v;
    int rc = field(x, o, key, required, cJSON_IsString, "a string", &v);
    if (rc < 1)
        return rc;
    const unsigned char *s = (const unsigned char *)v->valuestring;
    size_t len = strlen(v->valuestring); /* exact: the checker refused \u0000 */
    if (required && len == 0) {
        perr(x, AMT_ERR_PROTOCOL, "field.empty", "%s%s is empty", x->path, key);
        return -1;
    }
    if (len > max) {
        perr(x, AMT_ERR_PROTOCOL, "field.too_long", "%s%s is longer than %zu bytes", x->path,
             key, max);
        return -1;
    }
    for (size_t i = 0; rule != STR_ANY && i < len; i++) {
        bool bad = rule == STR_TOKEN ? s[i] <= 0x20 || s[i] >= 0x7F : s[i] < 0x20 || s[i] == 0x7F;
        if (bad) {
            perr(x, AMT_ERR_PROTOCOL, "field.format", "%s%s holds a %s at offset %zu", x->path,
                 key, s[i] < 0x20 || s[i] == 0x7F ? "control character" : "forbidden character",
                 i);
            return -1;
        }
    }
    *out = v->valuestring;
    return 1;
}

static int read_bool(struct pctx *x, const cJSON *o, const char *key, bool *out)
{
    const cJSON *v;
    int rc = field(x, o, key, false, cJSON_IsBool, "a boolean", &v);
    if (rc < 1)
        return rc;
    *out = cJSON_IsTrue(v);
    return 1;
}

static int read_array(struct pctx *x, const cJSON *o, const char *key, bool required,
                      size_t max, const cJSON **out, size_t *n)
{
    const cJSON *v;
    int rc = field(x, o, key, required, cJSON_IsArray, "a list", &v);
    if (rc < 1)
        return rc;
    size_t len = (size_t)cJSON_GetArraySize(v);
    if (len > max) {
        perr(x, AMT_ERR_PROTOCOL, "list.too_long", "%s%s lists more than %zu entries", x->path,
             key, max);
        return -1;
    }
    *out = v;
    *n = len;
    return 1;
}

static bool need_object(struct pctx *x, const cJSON *v, const char *what)
{
    if (cJSON_IsObject(v))
        return true;
    perr(x, AMT_ERR_PROTOCOL, "field.type", "%s is not an object", what);
    return false;
}

/* One monitor answer (the whole body of MonitorJob, an entry of MonitorJobs'
 * jobs); x->path names it. Its children go to *cursor onwards. */
static bool parse_job(struct pctx *x, const cJSON *o, struct amt_job *job,
                      struct amt_child **cursor)
{
    const char *ignored;
    if (read_int(x, o, "BatchRequestId", true, 1, INT_MAX, &job->id) < 0 ||
        read_int(x, o, "code", true, 0, AMT_MAX_CODE, &job->code) < 0)
        return false;
    job->message_count = -1; /* not said: the messages must be read to know */
    if (read_long(x, o, "messageCount", false, 0, &job->message_count) < 0 ||
        read_str(x, o, "status", false, AMT_MAX_NAME, STR_ANY, &ignored) < 0 ||
        read_str(x, o, "description", false, 65536, STR_ANY, &ignored) < 0)
        return false;
    const cJSON *ch = NULL;
    size_t n = 0;
    job->nchildren = 0;
    job->children = *cursor;
    if (read_array(x, o, "children", false, AMT_MAX_ITEMS, &ch, &n) < 0)
        return false;
    if (!n)
        return true;
    char base[sizeof x->path];
    memcpy(base, x->path, sizeof base);
    const cJSON *it;
    cJSON_ArrayForEach(it, ch)
    {
        struct amt_child *c = &(*cursor)[job->nchildren];
        snprintf(x->path, sizeof x->path, "%schildren[%zu]", base, job->nchildren);
        if (!need_object(x, it, x->path))
            return false;
        snprintf(x->path, sizeof x->path, "%schildren[%zu].", base, job->nchildren);
        c->name = "";
        if (read_int(x, it, "BatchRequestId", true, 1, INT_MAX, &c->id) < 0 ||
            read_int(x, it, "code", true, 0, AMT_MAX_CODE, &c->code) < 0 ||
            read_str(x, it, "name", false, AMT_MAX_NAME, STR_ANY, &c->name) < 0 ||
            read_str(x, it, "status", false, AMT_MAX_NAME, STR_ANY, &ignored) < 0)
            return false;
        job->nchildren++;
    }
    memcpy(x->path, base, sizeof base);
    *cursor += job->nchildren;
    return true;
}

/* Children across all jobs of a reply, so they can live in one array; what
 * is not a list is counted as none (parse_job reports it). */
static size_t count_children(const cJSON *jobs, bool many)
{
    if (!many) {
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(jobs, "children");
        return cJSON_IsArray(ch) ? (size_t)cJSON_GetArraySize(ch) : 0;
    }
    size_t n = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "children");
        if (cJSON_IsArray(ch))
            n += (size_t)cJSON_GetArraySize(ch);
    }
    return n;
}

static void parse_heartbeat(struct pctx *x, const cJSON *o)
{
    struct amt_reply *r = x->r;
    const char *ignored;
    const cJSON *f = NULL, *it;
    size_t n = 0, i = 0;
    if (read_str(x, o, "status", false, AMT_MAX_NAME, STR_ANY, &ignored) < 0 ||
        read_str(x, o, "amtVersion", false, AMT_MAX_VERSION, STR_PRINTABLE, &r->amt_version) < 0 ||
        read_array(x, o, "features", false, AMT_MAX_FEATURES, &f, &n) < 0)
        return;
    cJSON_ArrayForEach(it, f)
    {
        if (!cJSON_IsString(it)) {
            perr(x, AMT_ERR_PROTOCOL, "field.type", "features[%zu] is not a string", i);
            return;
        }
        if (!strcmp(it->valuestring, "MonitorJobs"))
            r->monitor_jobs = true;
        if (!strcmp(it->valuestring, "IdempotentStart"))
            r->idempotent_start = true;
        i++;
    }
}

static void parse_logon(struct pctx *x, const cJSON *o)
{
    double ignored;
    if (read_str(x, o, "AmtLogonToken", true, AMT_MAX_TOKEN, STR_TOKEN, &x->p->token) < 0)
        return;
    read_number(x, o, "expiresIn", false, 0, AMT_MAX_EXACT, &ignored);
}

static void parse_start_kill(struct pctx *x, const cJSON *o)
{
    struct amt_reply *r = x->r;
    bool ignored;
    if (x->p->call == AMT_CALL_KILL) {
        if (read_int(x, o, "BatchRequestId", true, 1, INT_MAX, &r->batch_request_id) < 0)
            return;
        read_bool(x, o, "accepted", &ignored);
        return;
    }
    if (read_int(x, o, "BatchRequestId", true, INT_MIN, INT_MAX, &r->batch_request_id) < 0)
        return;
    if (r->batch_request_id <= 0)
        perr(x, AMT_ERR_REJECTED, "start.not_started",
             "server answered BatchRequestId %d: not started", r->batch_request_id);
}

static void parse_monitor(struct pctx *x, const cJSON *o, bool many)
{
    struct amt_parsed *p = x->p;
    struct amt_reply *r = x->r;
    const cJSON *jobs = o, *unk = NULL, *it;
    size_t nj = 1, nu = 0;
    if (many && read_array(x, o, "jobs", true, AMT_MAX_ITEMS, &jobs, &nj) < 0)
        return;
    if (many && read_array(x, o, "unknown", false, AMT_MAX_ITEMS, &unk, &nu) < 0)
        return;
    size_t nc = count_children(jobs, many);
    if (nc > AMT_MAX_ITEMS) {
        perr(x, AMT_ERR_PROTOCOL, "list.too_long", "more than %d children in all",
             AMT_MAX_ITEMS);
        return;
    }
    p->jobs = calloc(nj ? nj : 1, sizeof *p->jobs);
    p->children = calloc(nc ? nc : 1, sizeof *p->children);
    p->unknown = nu ? calloc(nu, sizeof *p->unknown) : NULL;
    if (!p->jobs || !p->children || (nu && !p->unknown)) {
        perr(x, AMT_ERR_PROTOCOL, "client.oom", "out of memory");
        return;
    }
    struct amt_child *cursor = p->children;
    if (!many) {
        if (!parse_job(x, o, &p->jobs[0], &cursor))
            return;
    } else {
        size_t i = 0;
        cJSON_ArrayForEach(it, jobs)
        {
            snprintf(x->path, sizeof x->path, "jobs[%zu]", i);
            if (!need_object(x, it, x->path))
                return;
            snprintf(x->path, sizeof x->path, "jobs[%zu].", i);
            if (!parse_job(x, it, &p->jobs[i], &cursor))
                return;
            i++;
        }
        x->path[0] = '\0';
        size_t k = 0;
        cJSON_ArrayForEach(it, unk)
        {
            double d = it->valuedouble;
            if (!cJSON_IsNumber(it) || d != floor(d)) {
                perr(x, AMT_ERR_PROTOCOL, "field.type", "unknown[%zu] is not an integer", k);
                return;
            }
            if (d < 1 || d > INT_MAX) {
                perr(x, AMT_ERR_PROTOCOL, "field.range", "unknown[%zu] is out of range", k);
                return;
            }
            p->unknown[k++] = (int)d;
        }
        r->unknown = p->unknown;
        r->nunknown = k;
    }
    r->jobs = p->jobs;
    r->njobs = nj;
}

static void parse_messages(struct pctx *x, const cJSON *o)
{
    struct amt_parsed *p = x->p;
    struct amt_reply *r = x->r;
    const cJSON *ms = NULL, *it;
    size_t n = 0, i = 0;
    if (read_array(x, o, "messages", true, AMT_MAX_ITEMS, &ms, &n) < 0)
        return;
    if (!(p->messages = calloc(n ? n : 1, sizeof *p->messages))) {
        perr(x, AMT_ERR_PROTOCOL, "client.oom", "out of memory");
        return;
    }
    cJSON_ArrayForEach(it, ms)
    {
        struct amt_message *m = &p->messages[i];
        const char *ignored;
        snprintf(x->path, sizeof x->path, "messages[%zu]", i);
        if (!need_object(x, it, x->path))
            return;
        snprintf(x->path, sizeof x->path, "messages[%zu].", i);
        if (read_long(x, it, "seq", true, 1, &m->seq) < 0 ||
            read_str(x, it, "text", false, SIZE_MAX, STR_ANY, &m->text) < 0 ||
            read_int(x, it, "BatchRequestId", false, 1, INT_MAX, &m->id) < 0 ||
            read_str(x, it, "time", false, AMT_MAX_NAME, STR_ANY, &ignored) < 0)
            return;
        if (!m->text) {
            perr(x, AMT_ERR_PROTOCOL, "field.missing", "%stext is missing", x->path);
            return;
        }
        if (i && m->seq <= p->messages[i - 1].seq) {
            perr(x, AMT_ERR_PROTOCOL, "seq.order", "%sseq does not increase", x->path);
            return;
        }
        i++;
    }
    x->path[0] = '\0';
    r->messages = p->messages;
    r->nmessages = n;
    int rc = read_long(x, o, "next", false, 0, &r->next);
    if (rc < 0 || read_bool(x, o, "more", &r->more) < 0)
        return;
    if (rc == 0)
        r->next = n ? p->messages[n - 1].seq : 0;
    else if (n && r->next < p->messages[n - 1].seq) {
        perr(x, AMT_ERR_PROTOCOL, "seq.next", "next is below the last seq returned");
        return;
    }
    if (r->more && n == 0)
        perr(x, AMT_ERR_PROTOCOL, "seq.more_empty", "more=true on an empty page");
}

/* A non-2xx status: the error it stands for, with the errorCode and a short
 * one-line excerpt of errorDescription when the body is a clean error object. */
static void parse_http_error(struct pctx *x, long http, const char *body, size_t len)
{
    struct amt_parsed *p = x->p;
    struct amt_reply *r = x->r;
    enum amt_status st;
    const char *name;
    if (http >= 500 && http <= 599) {
        st = AMT_ERR_SERVER;
        name = "http.5xx";
    } else if (http == 401) {
        st = AMT_ERR_AUTH;
        name = "http.auth";
    } else if (http == 408 || http == 429) {
        st = AMT_ERR_SERVER; /* the server asks to come back later */
        name = "http.busy";
    } else if (http >= 400 && http <= 499) {
        st = AMT_ERR_REJECTED;
        name = "http.4xx";
    } else {
        st = AMT_ERR_REJECTED; /* 1xx, 3xx (redirects are not followed), nonsense */
        name = "http.unexpected";
    }
    p->detail[0] = '\0';
    if (jsoncheck(body, len, NULL, NULL) == JSONCHECK_OK &&
        (p->json = cJSON_ParseWithLengthOpts(body, len, NULL, false))) {
        const cJSON *code = member(p->json, "errorCode");
        if (cJSON_IsNumber(code) && code->valuedouble == floor(code->valuedouble) &&
            code->valuedouble >= INT_MIN && code->valuedouble <= INT_MAX)
            r->error_code = (int)code->valuedouble;
        const cJSON *desc = member(p->json, "errorDescription");
        if (cJSON_IsString(desc) && desc->valuestring[0]) {
            const char *d = desc->valuestring;
            size_t dl = strlen(d), cut = dl;
            if (cut > AMT_EXCERPT) {
                cut = AMT_EXCERPT;
                while (cut > 0 && ((unsigned char)d[cut] & 0xC0) == 0x80)
                    cut--; /* not inside a UTF-8 sequence */
            }
            struct buf one;
            buf_init(&one, sizeof p->detail);
            if (!buf_puts(&one, ": ") && !text_one_line(&one, d, cut) &&
                !(cut < dl && buf_puts(&one, "...")))
                snprintf(p->detail, sizeof p->detail, "%s", one.data);
            buf_free(&one);
        }
    }
    snprintf(p->error, sizeof p->error, "HTTP %ld%s", http, p->detail);
    r->status = st;
    r->error = p->error;
    r->error_name = name;
}

struct amt_parsed *amt_parse_reply(enum amt_call call, long http_status, const char *body,
                                   size_t len, struct amt_reply *r)
{
    struct amt_parsed *p = calloc(1, sizeof *p);
    memset(r, 0, sizeof *r);
    r->call = call;
    r->http_status = http_status;
    r->error = "";
    r->error_name = "";
    if (!p) {
        r->status = AMT_ERR_PROTOCOL;
        r->error = "out of memory";
        r->error_name = "client.oom";
        return NULL;
    }
    p->call = call;
    r->status = AMT_OK;
    struct pctx x = {p, r, ""};
    if (http_status < 200 || http_status > 299) {
        parse_http_error(&x, http_status, body, len);
        return p;
    }
    size_t at = 0;
    enum jsoncheck_err je = jsoncheck(body, len, NULL, &at);
    if (je != JSONCHECK_OK) {
        perr(&x, AMT_ERR_PROTOCOL, jsoncheck_name(je), "%s at byte %zu of %zu",
             jsoncheck_describe(je), at, len);
        return p;
    }
    p->json = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (!p->json) {
        /* The checker passed it, so this is cJSON running out of memory. */
        perr(&x, AMT_ERR_PROTOCOL, "client.oom", "out of memory parsing %zu bytes", len);
        return p;
    }
    const cJSON *o = p->json;
    switch (call) {
    case AMT_CALL_HEARTBEAT:
        parse_heartbeat(&x, o);
        break;
    case AMT_CALL_LOGON:
        parse_logon(&x, o);
        break;
    case AMT_CALL_START:
    case AMT_CALL_KILL:
        parse_start_kill(&x, o);
        break;
    case AMT_CALL_MONITOR:
    case AMT_CALL_MONITOR_MANY:
        parse_monitor(&x, o, call == AMT_CALL_MONITOR_MANY);
        break;
    case AMT_CALL_MESSAGES:
        parse_messages(&x, o);
        break;
    }
    if (r->status != AMT_OK) {
        /* No half-filled answer reaches a caller that forgets to look at status. */
        struct amt_reply keep = *r;
        memset(r, 0, sizeof *r);
        r->status = keep.status;
        r->call = keep.call;
        r->http_status = keep.http_status;
        r->error = keep.error;
        r->error_name = keep.error_name;
        r->batch_request_id = keep.batch_request_id; /* start.not_started says which */
    }
    return p;
}

/* cJSON frees its strings without wiping them: a logon answer holds the token. */
static void wipe_strings(cJSON *j)
{
    for (; j; j = j->next) {
        if (j->valuestring)
            sodium_memzero(j->valuestring, strlen(j->valuestring));
        wipe_strings(j->child);
    }
}

void amt_parsed_free(struct amt_parsed *p)
{
    if (!p)
        return;
    if (p->call == AMT_CALL_LOGON)
        wipe_strings(p->json);
    cJSON_Delete(p->json);
    free(p->jobs);
    free(p->children);
    free(p->messages);
    free(p->unknown);
    free(p);
}

/* Media types compare without regard to case; a charset other than UTF-8 would
 * make the body something else than what the checker reads. */
bool amt_content_type_ok(const char *ct)
{
    static const char type[] = "application/json";
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, type, sizeof type - 1))
        return false;
    const char *s = ct + sizeof type - 1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return true;
    if (*s != ';')
        return false;
    s++;
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncasecmp(s, "charset=", 8))
        return false;
    s += 8;
    bool quoted = *s == '"';
    if (quoted)
        s++;
    if (strncasecmp(s, "utf-8", 5))
        return false;
    s += 5;
    if (quoted && *s++ != '"')
        return false;
    while (*s == ' ' || *s == '\t')
        s++;
    return !*s;
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
    if (q->body && q->secret) {
        sodium_free(q->body);
    } else if (q->body) {
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

static int transfer(struct amt_req *q);

static size_t slots(const struct amt_client *c) { return 4 * (size_t)c->max_connections; }

static void enqueue(struct amt_req *q)
{
    struct amt_client *c = q->c;
    q->qprev = c->qtail;
    q->qnext = NULL;
    if (c->qtail)
        c->qtail->qnext = q;
    else
        c->qhead = q;
    c->qtail = q;
    q->state = REQ_QUEUED;
}

static void unqueue(struct amt_req *q)
{
    struct amt_client *c = q->c;
    if (q->qprev)
        q->qprev->qnext = q->qnext;
    else
        c->qhead = q->qnext;
    if (q->qnext)
        q->qnext->qprev = q->qprev;
    else
        c->qtail = q->qprev;
    q->qprev = q->qnext = NULL;
}

/* Takes the transfer off the multi handle and frees its slot. */
static void release_slot(struct amt_req *q)
{
    if (!q->added)
        return;
    curl_multi_remove_handle(q->c->multi, q->easy);
    q->added = false;
    q->c->in_flight--;
}

static void finish_error(struct amt_req *q, enum amt_status st, const char *name, long http,
                         int code, const char *msg);

/* Starts the transfer if a connection is free and nothing that should go
 * first is waiting; else queues it. -1 if it could not be set up. */
static int launch(struct amt_req *q)
{
    struct amt_client *c = q->c;
    /* Starts come in bursts of thousands; every other call is one of a few
     * (a MonitorJobs call carries a thousand jobs) and goes to curl at once. */
    if (q->call == AMT_CALL_START && (c->in_flight >= slots(c) || c->qhead)) {
        enqueue(q);
        return 0;
    }
    q->state = REQ_IN_FLIGHT;
    if (transfer(q))
        return -1;
    q->added = true;
    c->in_flight++;
    return 0;
}

static void start_logon(struct amt_client *c);
static bool needs_token(enum amt_call call);

/* Parks a request until the logon under way (started here if none is) gives
 * a token: the logon's outcome releases it. */
static void park_for_token(struct amt_req *q)
{
    q->state = REQ_WAITING_TOKEN;
    if (!q->c->logon_in_flight)
        start_logon(q->c);
}

/* Launches what waits, while connections are free. */
static void pump(struct amt_client *c)
{
    while (!c->closing && c->qhead && c->in_flight < slots(c)) {
        struct amt_req *q = c->qhead;
        unqueue(q);
        if (needs_token(q->call) && !c->token) {
            /* the token went (a 401) while it waited for a slot */
            park_for_token(q);
            continue;
        }
        q->state = REQ_IN_FLIGHT;
        if (transfer(q)) {
            finish_error(q, AMT_ERR_TRANSPORT, "client.setup", 0, 0,
                         "could not set up the HTTP request");
            continue;
        }
        q->added = true;
        c->in_flight++;
    }
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
static void finish(struct amt_req *q, struct amt_reply *r)
{
    r->call = q->call;
    r->seconds = q->seconds;
    if (!r->error_name)
        r->error_name = "";
    struct amt_client *c = q->c;
    if (q->added && c->observe)
        c->observe(c->observe_ud, q->call, q->seconds, r->status);
    release_slot(q);
    if (q->state == REQ_QUEUED)
        unqueue(q);
    unlink_req(q);
    amt_cb cb = q->cb;
    void *ud = q->ud;
    req_free(q);
    pump(c); /* before the callback: what it asks for queues behind what waits */
    if (cb)
        cb(ud, r);
}

static void finish_error(struct amt_req *q, enum amt_status st, const char *name, long http,
                         int code, const char *msg)
{
    struct amt_reply r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.error_name = name;
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
    /* The cap holds here, whatever the headers said: a chunked answer has no
     * Content-Length for CURLOPT_MAXFILESIZE to refuse early. */
    enum buf_rc rc = buf_append(&q->resp, data, len);
    if (rc != BUF_OK) {
        q->too_big = rc == BUF_TOOBIG;
        q->oom = rc == BUF_NOMEM;
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


static bool needs_token(enum amt_call call)
{
    return call != AMT_CALL_HEARTBEAT && call != AMT_CALL_LOGON;
}

/* Sends the request now if it can, else parks it until the logon is done. */
static void submit(struct amt_req *q)
{
    struct amt_client *c = q->c;
    if (needs_token(q->call) && !c->token) {
        park_for_token(q);
        return;
    }
    if (launch(q))
        finish_error(q, AMT_ERR_TRANSPORT, "client.setup", 0, 0,
                     "could not set up the HTTP request");
}

/* Sets the transfer up and adds it to the multi handle. */
static int transfer(struct amt_req *q)
{
    struct amt_client *c = q->c;
    if (q->secret && !q->resp.data) {
        /* A growing buffer would leave pieces of the token behind in the
         * blocks realloc gives up: this one is never reallocated, as an
         * append past max fails before it would grow (buf.h). */
        size_t cap = AMT_LOGON_MAX_BODY + 1;
        if (!(q->resp.data = malloc(cap)))
            return -1;
        q->resp.cap = cap;
        q->resp.max = cap - 1;
    }
    buf_reset(&q->resp);
    q->too_big = false;
    q->oom = false;
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
    if (needs_token(q->call) && !c->token)
        return -1; /* launch and pump park such a request; never sent without */
    if (needs_token(q->call)) {
        /* Built in guarded memory; curl's copy (curl_slist_append) is wiped
         * by free_headers, and curl's own buffers by the wiping allocator. */
        static const char name[] = "X-AMT-LogonToken: ";
        size_t n = sizeof name + strlen(c->token);
        char *h = sodium_malloc(n);
        if (!h)
            return -1;
        snprintf(h, n, "%s%s", name, c->token);
        int bad = add_header(q, h);
        sodium_free(h);
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
    /* A server that trickles (or stops) sending is dropped long before the
     * whole-call timeout when that one is set high for big answers. */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->low_speed_s);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Only the configured proxy: "" also keeps curl from taking one from the
     * environment (http_proxy, https_proxy, ALL_PROXY). */
    curl_easy_setopt(e, CURLOPT_PROXY, c->proxy);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_PROXY_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
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
        fail.error_name = "auth.no_password";
        fail.error = err[0] ? err : "no password for the Batch User";
        on_logon(c, &fail);
        return;
    }
    /* The body goes straight into guarded memory large enough for the worst
     * case of quoting (6 bytes per byte, "\u001f"): with max below the
     * capacity, an append fails before the buffer would be reallocated, so
     * no copy of the password is left behind (buf.h). Released with
     * sodium_free (req_free), never with buf_free. */
    size_t cap = 32 + 6 * (strlen(c->user) + strlen(pw));
    struct buf body = {sodium_malloc(cap), 0, cap, cap - 1};
    bool bad = !body.data || buf_puts(&body, "{\"user\":") ||
               text_json_quote(&body, c->user, strlen(c->user)) ||
               buf_puts(&body, ",\"password\":") || text_json_quote(&body, pw, strlen(pw)) ||
               buf_puts(&body, "}");
    c->release(pw);
    struct amt_req *q = bad ? NULL : req_new(c, AMT_CALL_LOGON, "/api/logon", NULL, on_logon, c);
    if (q) {
        q->secret = true;
        q->body = body.data;
        q->bodylen = body.len;
    } else if (body.data) {
        sodium_free(body.data);
    }
    if (!q) {
        fail.status = AMT_ERR_TRANSPORT;
        fail.error_name = "client.oom";
        fail.error = "out of memory building the logon request";
        on_logon(c, &fail);
        return;
    }
    c->logon_in_flight = true;
    if (launch(q)) {
        c->logon_in_flight = false;
        finish_error(q, AMT_ERR_TRANSPORT, "client.setup", 0, 0,
                     "could not set up the logon request");
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
    const char *name = r->error_name && *r->error_name ? r->error_name : "auth.no_token";
    if (st == AMT_OK && !c->token)
        st = AMT_ERR_PROTOCOL;
    if (st == AMT_ERR_REJECTED && r->http_status == 401)
        st = AMT_ERR_AUTH;
    if (st == AMT_ERR_AUTH)
        name = "auth.refused";
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
                if (launch(q)) { /* it is no longer waiting for the token either way */
                    finish_error(q, AMT_ERR_TRANSPORT, "client.setup", 0, 0,
                                 "could not set up the HTTP request");
                    again = true;
                    break;
                }
            } else {
                finish_error(q, st, name, r->http_status, r->error_code, why);
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
        sodium_mprotect_readonly(c->token);
        c->token_gen++;
    }
}

/* A name for a failed transfer; q->seconds is already set. */
static const char *transport_name(const struct amt_req *q, CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return "transport.connect";
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t connected = 0;
        curl_easy_getinfo(q->easy, CURLINFO_CONNECT_TIME_T, &connected);
        if (connected <= 0)
            return "transport.connect";
        /* curl reports the low-speed limit and the total timeout alike: only
         * the first can strike before the total time is up. */
        return q->seconds * 1000.0 < (double)q->c->timeout_ms ? "transport.stalled"
                                                               : "transport.timeout";
    }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return "transport.tls";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return "transport.reset";
    default:
        return "transport.error";
    }
}

static void complete(struct amt_req *q, CURLcode cc)
{
    struct amt_client *c = q->c;
    long http = 0;
    char msg[AMT_ERRLEN];
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &http);
    curl_off_t us = 0;
    curl_easy_getinfo(q->easy, CURLINFO_TOTAL_TIME_T, &us);
    q->seconds = (double)us / 1e6;
    /* Whether the server may have acted on a call that failed: some of the
     * request went out (a connect failure sends nothing), or it answered 5xx. */
    curl_off_t sent_body = 0;
    long sent_head = 0;
    curl_easy_getinfo(q->easy, CURLINFO_REQUEST_SIZE, &sent_head);
    curl_easy_getinfo(q->easy, CURLINFO_SIZE_UPLOAD_T, &sent_body);
    q->maybe_delivered = sent_head > 0 || sent_body > 0;
    if (cc != CURLE_OK) {
        if (q->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            snprintf(msg, sizeof msg, "answer from %s larger than %zu bytes", c->url,
                     q->resp.max < c->max_body ? q->resp.max : c->max_body);
            finish_error(q, AMT_ERR_PROTOCOL, "body.too_large", http, 0, msg);
        } else if (q->oom) {
            snprintf(msg, sizeof msg, "out of memory storing the answer from %s", c->url);
            finish_error(q, AMT_ERR_PROTOCOL, "client.oom", http, 0, msg);
        } else {
            /* The proxy's URL is not quoted: it may carry a user and password. */
            snprintf(msg, sizeof msg, "cannot reach %s%s: %s", c->url,
                     c->proxy[0] ? " through the configured proxy" : "",
                     q->curl_err[0] ? q->curl_err : curl_easy_strerror(cc));
            finish_error(q, AMT_ERR_TRANSPORT, transport_name(q, cc), http, 0, msg);
        }
        return;
    }
    if (http == 401 && q->call != AMT_CALL_LOGON) {
        if (!q->auth_retried) {
            q->auth_retried = true;
            release_slot(q);
            pump(c);
            /* A token newer than the one this call carried is already good. */
            if (c->token && c->token_gen == q->token_gen) {
                sodium_free(c->token);
                c->token = NULL;
            }
            q->state = REQ_WAITING_TOKEN;
            submit(q);
            return;
        }
        /* The logon itself succeeded: the password is good, so this is the
         * server's trouble (a token expired or lost in between), not a
         * reason to fail the job with 24. Tried again like a 5xx. */
        finish_error(q, AMT_ERR_SERVER, "auth.token_refused", http, 0,
                     "token refused right after a fresh logon");
        return;
    }
    bool ok_status = http >= 200 && http <= 299;
    char *ct = NULL;
    curl_easy_getinfo(q->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (ok_status && !amt_content_type_ok(ct)) {
        /* The header is the server's text: a short one-line excerpt only. */
        struct buf one;
        buf_init(&one, 128);
        if (ct && text_one_line(&one, ct, strlen(ct) > 60 ? 60 : strlen(ct)))
            buf_reset(&one);
        snprintf(msg, sizeof msg, "answer from %s has content type '%s', not application/json",
                 c->url, one.len ? one.data : "none");
        buf_free(&one);
        finish_error(q, AMT_ERR_PROTOCOL, "http.content_type", http, 0, msg);
        return;
    }
    struct amt_reply r;
    struct amt_parsed *p =
        amt_parse_reply(q->call, http, q->resp.data ? q->resp.data : "", q->resp.len, &r);
    if (!ok_status) {
        /* The same error as amt_parse_reply's, said with the server's URL. */
        snprintf(msg, sizeof msg, "HTTP %ld from %s%s", http, c->url, p ? p->detail : "");
        finish_error(q, r.status, r.error_name, http, r.error_code, msg);
        amt_parsed_free(p);
        return;
    }
    r.maybe_delivered = r.status != AMT_OK; /* a 2xx came back: the server did act */
    if (p && r.status == AMT_OK && q->call == AMT_CALL_LOGON) {
        set_token(c, p->token);
        if (!c->token) {
            r.status = AMT_ERR_PROTOCOL;
            r.error = "out of memory storing the token";
            r.error_name = "client.oom";
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
    c->proxy = strdup(s->proxy ? s->proxy : "");
    if (!c->name || !c->url || !c->user || !c->proxy || (s->ca_file && !c->ca_file))
        goto oom;
    size_t ul = strlen(c->url);
    while (ul > 0 && c->url[ul - 1] == '/')
        c->url[--ul] = '\0'; /* paths are appended with their own leading slash */
    c->connect_timeout_ms = s->connect_timeout_ms > 0 ? s->connect_timeout_ms : 10000;
    c->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 30000;
    long low = s->low_speed_ms > 0    ? s->low_speed_ms
               : c->timeout_ms < 30000 ? c->timeout_ms
                                       : 30000;
    c->low_speed_s = (low + 999) / 1000; /* curl counts whole seconds */
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
    c->closing = true; /* nothing is launched any more */
    while (c->reqs)
        finish_error(c->reqs, AMT_ERR_CANCELLED, "cancelled", 0, 0, "cancelled");
    if (c->token)
        sodium_free(c->token);
    free(c->name);
    free(c->url);
    free(c->user);
    free(c->ca_file);
    free(c->proxy);
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
    const struct jobspec *spec = job->spec;
    if (!job->task_id || !spec || !spec->application || !spec->name)
        return -1;
    bool script = spec->kind == JOBSPEC_SCRIPT;
    struct buf b;
    buf_init(&b, 0);
    bool bad = buf_puts(&b, "{\"action\":\"Start\"") || put_field(&b, "taskId", job->task_id) ||
               put_field(&b, "applicationName", spec->application) ||
               put_field(&b, "amtSubmitUser", JOBSPEC_SUBMIT_USER) ||
               put_field(&b, "amtStation", JOBSPEC_STATION);
    if (!bad && spec->amt_user && *spec->amt_user)
        bad = put_field(&b, "amtUser", spec->amt_user);
    if (!bad && spec->queue_name && *spec->queue_name)
        bad = put_field(&b, "amtQueueName", spec->queue_name);
    if (!bad)
        bad = put_field(&b, script ? "scriptName" : "jobName", spec->name);
    if (!bad)
        bad = buf_printf(&b, ",\"%s\":[", script ? "scriptParameters" : "taskValues");
    for (size_t i = 0; !bad && i < spec->nvalues; i++)
        bad = (i && buf_putc(&b, ',')) ||
              text_json_quote(&b, spec->values[i], strlen(spec->values[i]));
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

/* ---------------------------------------------------------------- libcurl's memory */

/* libcurl copies what it sends and receives into buffers of its own: the
 * request with its X-AMT-LogonToken header (and a small body with it, the
 * logon's password), the answer with the token, the strdup of each header
 * line. It frees them without wiping, so they would linger in the heap. Its
 * allocations all go through these functions, which wipe every block before
 * handing it back; each block carries its size in front. */
union wipe_head {
    size_t size;
    max_align_t align; /* what malloc guarantees, the block after it keeps */
};

static void *wipe_malloc(size_t size)
{
    if (size > SIZE_MAX - sizeof(union wipe_head))
        return NULL;
    union wipe_head *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

static void wipe_free(void *p)
{
    if (!p)
        return;
    union wipe_head *h = (union wipe_head *)p - 1;
    sodium_memzero(p, h->size);
    free(h);
}

static void *wipe_realloc(void *p, size_t size)
{
    if (!p)
        return wipe_malloc(size);
    size_t old = ((union wipe_head *)p - 1)->size;
    void *n = wipe_malloc(size ? size : 1);
    if (!n)
        return NULL;
    memcpy(n, p, old < size ? old : size);
    wipe_free(p);
    return n;
}

static char *wipe_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = wipe_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void *wipe_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = wipe_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

int amt_global_init(void)
{
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free, wipe_realloc,
                                wipe_strdup, wipe_calloc) == CURLE_OK
               ? 0
               : -1;
}

void amt_global_cleanup(void) { curl_global_cleanup(); }
