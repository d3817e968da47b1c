#include "amtacs/httpd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>
#include <microhttpd.h>
#include <sodium.h>

#include "amtacs/buf.h"
#include "amtacs/httpserv.h"
#include "amtacs/netaddr.h"
#include "amtacs/text.h"
#include "amtacs/timeutil.h"

#define CONNECTION_LIMIT 32
/* Of CONNECTION_LIMIT, this many are kept for loopback clients: clients
 * elsewhere, however many addresses they use, cannot crowd out the probes of
 * the host's own supervisor. */
#define LOOPBACK_RESERVE 4
#define DB_TIMEOUT "5"          /* seconds to connect; statements get the same */
#define RESPONSE_MAX (64u << 20) /* a scrape grows with the connections and calls */

struct httpd {
    struct httpserv *srv;
    struct metrics *metrics;
    const struct logger *lg;
    long stall_ms;
    char *conninfo;
    unsigned char token_hash[crypto_generichash_BYTES];
    bool has_token;
    /* Touched only by the server's thread (the handler runs there). */
    PGconn *db;
};

struct reply {
    unsigned status;
    const char *ctype;
    struct buf body;
    bool challenge; /* 401: say which scheme */
};

static void json_error(struct reply *r, unsigned status, const char *msg)
{
    r->status = status;
    r->ctype = "application/json";
    buf_reset(&r->body);
    if (buf_puts(&r->body, "{\"error\":") || text_json_quote(&r->body, msg, strlen(msg)) ||
        buf_puts(&r->body, "}\n"))
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static void text_reply(struct reply *r, unsigned status, const char *text)
{
    r->status = status;
    r->ctype = "text/plain; charset=utf-8";
    buf_reset(&r->body);
    if (buf_puts(&r->body, text))
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* ------------------------------------------------------------ database */

static PGconn *db(struct httpd *h)
{
    if (h->db && PQstatus(h->db) == CONNECTION_OK)
        return h->db;
    PQfinish(h->db);
    static const char *const keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {h->conninfo, DB_TIMEOUT, "amtacsd-http", NULL};
    h->db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(h->db) != CONNECTION_OK) {
        log_event(h->lg, LOG_WARN, "http.db_unavailable", NULL, "%s", PQerrorMessage(h->db));
        PQfinish(h->db);
        h->db = NULL;
        return NULL;
    }
    /* A scrape must never hang on a lock. */
    PGresult *r = PQexec(h->db, "SET statement_timeout = '" DB_TIMEOUT "s'");
    PQclear(r);
    return h->db;
}

/* Runs a one-parameter statement; NULL (and a 503 in r) when the database
 * could not answer. */
static PGresult *query(struct httpd *h, struct reply *r, const char *sql, const char *param)
{
    PGconn *c = db(h);
    if (!c) {
        json_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the database is not reachable");
        return NULL;
    }
    const char *params[] = {param};
    PGresult *res = PQexecParams(c, sql, param ? 1 : 0, NULL, param ? params : NULL, NULL, NULL,
                                 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_event(h->lg, LOG_WARN, "http.db_failed", NULL, "%s", PQresultErrorMessage(res));
        json_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the database could not answer");
        PQclear(res);
        return NULL;
    }
    return res;
}

/* ------------------------------------------------------------ endpoints */

/* How long ago the engine's loop last turned, in ms; -1 if it never has. */
static int64_t loop_age(struct httpd *h, bool *db_up)
{
    struct metrics_health st;
    metrics_health(h->metrics, &st);
    *db_up = st.db_up;
    return st.last_tick_ms ? now_ms() - st.last_tick_ms : -1;
}

static void get_healthz(struct httpd *h, struct reply *r)
{
    bool db_up;
    int64_t age = loop_age(h, &db_up);
    if (age < 0 || age > h->stall_ms) {
        char msg[128];
        snprintf(msg, sizeof msg, "stalled: the daemon's loop has not run for %lld ms\n",
                 (long long)age);
        text_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
        return;
    }
    text_reply(r, MHD_HTTP_OK, "ok\n");
}

static void get_readyz(struct httpd *h, struct reply *r)
{
    bool db_up;
    int64_t age = loop_age(h, &db_up);
    if (age < 0 || age > h->stall_ms)
        text_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: the daemon's loop is stalled\n");
    else if (!db_up)
        text_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                   "not ready: the database is not reachable (jobs wait in the queue)\n");
    else
        text_reply(r, MHD_HTTP_OK, "ready: configuration loaded, database reachable\n");
}

static void get_metrics(struct httpd *h, struct reply *r)
{
    r->status = MHD_HTTP_OK;
    r->ctype = "text/plain; version=0.0.4; charset=utf-8";
    if (!metrics_render(h->metrics, &r->body))
        goto oom;
    /* The queue as the database sees it: jobs no daemon holds yet included. */
    struct reply scratch = {0};
    buf_init(&scratch.body, 4096);
    PGresult *res = query(h, &scratch, "SELECT connection, state, jobs FROM acs.active_job_counts()",
                          NULL);
    buf_free(&scratch.body);
    if (buf_puts(&r->body, "# HELP amtacs_queue_scrape_success 1 if the queue's counts below "
                           "were read from the database.\n"
                           "# TYPE amtacs_queue_scrape_success gauge\n") ||
        buf_printf(&r->body, "amtacs_queue_scrape_success %d\n", res ? 1 : 0) ||
        buf_puts(&r->body, "# HELP amtacs_queue_jobs Jobs not yet finished, by connection and "
                           "state (all daemons).\n# TYPE amtacs_queue_jobs gauge\n"))
        goto oom_res;
    for (int i = 0; res && i < PQntuples(res); i++) {
        if (buf_puts(&r->body, "amtacs_queue_jobs{connection=") ||
            !metrics_label_value(&r->body, PQgetvalue(res, i, 0)) ||
            buf_puts(&r->body, ",state=") ||
            !metrics_label_value(&r->body, PQgetvalue(res, i, 1)) ||
            buf_printf(&r->body, "} %s\n", PQgetvalue(res, i, 2)))
            goto oom_res;
    }
    PQclear(res);
    return;
oom_res:
    PQclear(res);
oom:
    text_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
}

static bool authorized(struct httpd *h, struct httpserv_req *req)
{
    if (!h->has_token)
        return true;
    const char *v = httpserv_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!v || strncasecmp(v, "Bearer ", 7))
        return false;
    v += 7;
    while (*v == ' ')
        v++;
    /* Hashes of equal length compare in constant time, whatever was sent. */
    unsigned char got[crypto_generichash_BYTES];
    crypto_generichash(got, sizeof got, (const unsigned char *)v, strlen(v), NULL, 0);
    return sodium_memcmp(got, h->token_hash, sizeof got) == 0;
}

static void route(struct httpd *h, struct httpserv_req *req, const char *url,
                  struct reply *r)
{
    if (!strcmp(url, "/healthz")) {
        get_healthz(h, r);
        return;
    }
    if (!strcmp(url, "/readyz")) {
        get_readyz(h, r);
        return;
    }
    /* One home for JORS over HTTP: a client of the old routes is told where
     * they went (this reveals nothing, so no token is asked for). */
    if (!strcmp(url, "/v1/jobs") || !strncmp(url, "/v1/jobs/", 9)) {
        json_error(r, MHD_HTTP_NOT_FOUND,
                   "the daemon no longer serves jobs: amtacs-web does, at GET /api/v1/jobs/ID "
                   "and GET /api/v1/jobs/ID/log (with a user's session or an API token; "
                   "docs/web.md)");
        return;
    }
    if (strcmp(url, "/metrics")) {
        json_error(r, MHD_HTTP_NOT_FOUND,
                   "no such path; there are /healthz, /readyz and /metrics (jobs: amtacs-web's "
                   "/api/v1/jobs)");
        return;
    }
    if (!authorized(h, req)) {
        json_error(r, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required");
        r->challenge = true;
        return;
    }
    get_metrics(h, r);
}

static void on_request(void *cls, struct httpserv_req *req)
{
    struct httpd *h = cls;
    const char *method = httpserv_method(req);
    struct reply r = {.status = MHD_HTTP_OK};
    buf_init(&r.body, RESPONSE_MAX);
    bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (strcmp(method, MHD_HTTP_METHOD_GET) && !head)
        json_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served");
    else
        route(h, req, httpserv_path(req), &r);
    httpserv_reply(req, r.status, r.ctype ? r.ctype : "text/plain; charset=utf-8");
    struct buf *out = httpserv_reply_body(req);
    if (r.body.len && buf_append(out, r.body.data, r.body.len))
        httpserv_reply(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8");
    buf_free(&r.body);
    if (r.status == MHD_HTTP_METHOD_NOT_ALLOWED)
        httpserv_reply_header(req, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (r.challenge)
        httpserv_reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"amtacsd\"");
}

/* ------------------------------------------------------------ lifecycle */

struct httpd *httpd_start(const struct httpd_options *o, char *err, size_t errlen)
{
    struct netaddr na = {0};
    struct httpd *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->metrics = o->metrics;
    h->lg = o->lg;
    h->stall_ms = o->stall_ms > 0 ? o->stall_ms : 30000;
    h->conninfo = strdup(o->conninfo ? o->conninfo : "");
    if (!h->conninfo) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (o->token && *o->token) {
        crypto_generichash(h->token_hash, sizeof h->token_hash, (const unsigned char *)o->token,
                           strlen(o->token), NULL, 0);
        h->has_token = true;
    }
    char aerr[300];
    if (netaddr_resolve(o->listen, &na, aerr, sizeof aerr)) {
        snprintf(err, errlen, "http.listen %s", aerr);
        goto fail;
    }
    /* The configuration refuses such an address by its text; this catches a
     * name (even "localhost") that resolves off the loopback interface. */
    if (!h->has_token && !netaddr_sockaddr_is_loopback(na.ai->ai_addr)) {
        snprintf(err, errlen,
                 "http.listen %s is not a loopback address and http.token_file is not set: "
                 "the metrics would be open to the network",
                 o->listen);
        goto fail;
    }
    netaddr_free(&na);
    struct httpserv_options so = {
        .listen = o->listen,
        .setting = "http",
        .tls_cert_file = o->tls_cert_file,
        .tls_key_file = o->tls_key_file,
        .connection_limit = CONNECTION_LIMIT,
        .loopback_reserve = LOOPBACK_RESERVE,
        .max_connections_per_client = o->max_connections_per_client,
        .header_timeout_ms = o->header_timeout_ms,
        .max_body = 0,
        .max_reply = RESPONSE_MAX,
        .lg = o->lg,
        .handler = on_request,
        .cls = h,
    };
    if (!(h->srv = httpserv_start(&so, err, errlen)))
        goto fail;
    return h;
fail:
    netaddr_free(&na);
    httpd_stop(h);
    return NULL;
}

unsigned httpd_port(const struct httpd *h) { return httpserv_port(h->srv); }

bool httpd_tls(const struct httpd *h) { return httpserv_tls(h->srv); }

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    httpserv_stop(h->srv); /* joins the thread: the handler runs no more */
    PQfinish(h->db);
    sodium_memzero(h->token_hash, sizeof h->token_hash);
    free(h->conninfo);
    free(h);
}
