#include "amtacs/httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <microhttpd.h>
#include <sodium.h>

#include "amtacs/buf.h"
#include "amtacs/netaddr.h"
#include "amtacs/secfile.h"
#include "amtacs/text.h"
#include "amtacs/timeutil.h"

#define CONNECTION_LIMIT 32
/* Of CONNECTION_LIMIT, this many are kept for loopback clients: clients
 * elsewhere, however many addresses they use, cannot crowd out the probes of
 * the host's own supervisor. */
#define LOOPBACK_RESERVE 4
#define IDLE_TIMEOUT_S 10
#define DB_TIMEOUT "5"          /* seconds to connect; statements get the same */
#define RESPONSE_MAX (64u << 20) /* a job log is capped by daemon.max_log_bytes anyway */
#define PEM_MAX (1u << 20)       /* a certificate chain */
#define KEY_MAX (64u << 10)      /* a private key */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* One open connection, from MHD's connection notice to its close. */
struct track {
    struct track *prev, *next;
    int fd;
    int64_t since_ms; /* the connection opened or its last answer was sent */
    bool headers_done; /* the current request's headers are complete */
    bool cut;          /* shut down by the header deadline */
    bool loopback;
};

struct httpd {
    struct MHD_Daemon *d;
    struct metrics *metrics;
    const struct logger *lg;
    long stall_ms;
    int64_t header_timeout_ms;
    char *conninfo;
    unsigned char token_hash[crypto_generichash_BYTES];
    bool has_token;
    bool tls;
    unsigned port;
    int epoll_fd;      /* MHD's, borrowed */
    int wake_fd;       /* eventfd: httpd_stop tells the thread to end */
    pthread_t thread;
    bool thread_started;
    /* Everything below is touched only by the server's thread once it runs
     * (MHD calls back from inside MHD_run, on that thread). */
    struct track *tracks;
    unsigned n_remote; /* open connections from addresses off the loopback interface */
    char mhd_error[300]; /* MHD's last complaint while starting */
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
    /* A scrape or a retrieval must never hang on a lock. */
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

static void get_job(struct httpd *h, struct reply *r, const char *id)
{
    PGresult *res = query(h, r, "SELECT acs.job_document($1::bigint)", id);
    if (!res)
        return;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        char msg[64];
        snprintf(msg, sizeof msg, "no job %s", id);
        json_error(r, MHD_HTTP_NOT_FOUND, msg);
    } else {
        r->status = MHD_HTTP_OK;
        r->ctype = "application/json";
        buf_reset(&r->body);
        if (buf_puts(&r->body, PQgetvalue(res, 0, 0)) || buf_putc(&r->body, '\n'))
            text_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    PQclear(res);
}

static void get_job_log(struct httpd *h, struct reply *r, const char *id)
{
    PGresult *res = query(h, r, "SELECT state, log FROM acs.job_log_text($1::bigint)", id);
    if (!res)
        return;
    char msg[160];
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        snprintf(msg, sizeof msg, "no job %s", id);
        json_error(r, MHD_HTTP_NOT_FOUND, msg);
    } else if (!PQgetisnull(res, 0, 1)) {
        r->status = MHD_HTTP_OK;
        r->ctype = "text/plain; charset=utf-8";
        buf_reset(&r->body);
        if (buf_append(&r->body, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1)))
            text_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    } else if (!strcmp(PQgetvalue(res, 0, 0), "finished")) {
        snprintf(msg, sizeof msg, "the log of job %s was purged (retention)", id);
        json_error(r, MHD_HTTP_GONE, msg);
    } else {
        snprintf(msg, sizeof msg, "job %s is %s; its log is written when it ends", id,
                 PQgetvalue(res, 0, 0));
        json_error(r, MHD_HTTP_CONFLICT, msg);
    }
    PQclear(res);
}

/* "/v1/jobs/ID" or "/v1/jobs/ID/log": the id as digits in `id`, and whether
 * the log was asked for. False for any other path. */
static bool job_path(const char *url, char *id, size_t idlen, bool *log)
{
    static const char prefix[] = "/v1/jobs/";
    if (strncmp(url, prefix, sizeof prefix - 1))
        return false;
    const char *p = url + sizeof prefix - 1, *q = p;
    while (*q >= '0' && *q <= '9')
        q++;
    size_t n = (size_t)(q - p);
    if (n == 0 || n >= idlen || n > 18 || *p == '0')
        return false;
    if (*q && strcmp(q, "/log"))
        return false;
    memcpy(id, p, n);
    id[n] = '\0';
    *log = *q != '\0';
    return true;
}

static struct track *track_of(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static bool authorized(struct httpd *h, struct MHD_Connection *con)
{
    if (!h->has_token)
        return true;
    const char *v = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
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

static void route(struct httpd *h, struct MHD_Connection *con, const char *url,
                  struct reply *r)
{
    char id[24];
    bool log = false;
    if (!strcmp(url, "/healthz")) {
        get_healthz(h, r);
        return;
    }
    if (!strcmp(url, "/readyz")) {
        get_readyz(h, r);
        return;
    }
    bool jobs = job_path(url, id, sizeof id, &log);
    if (strcmp(url, "/metrics") && !jobs) {
        if (!strncmp(url, "/v1/jobs/", 9))
            json_error(r, MHD_HTTP_NOT_FOUND,
                       "not a job path: /v1/jobs/ID or /v1/jobs/ID/log, ID a positive number");
        else
            json_error(r, MHD_HTTP_NOT_FOUND,
                       "no such path; there are /healthz, /readyz, /metrics, /v1/jobs/ID and "
                       "/v1/jobs/ID/log");
        return;
    }
    if (!authorized(h, con)) {
        json_error(r, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required");
        r->challenge = true;
        return;
    }
    if (!jobs)
        get_metrics(h, r);
    else if (log)
        get_job_log(h, r, id);
    else
        get_job(h, r, id);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    struct httpd *h = cls;
    struct track *t = track_of(con);
    if (t)
        t->headers_done = true; /* MHD calls once the request's headers are all in */
    struct reply r = {.status = MHD_HTTP_OK};
    buf_init(&r.body, RESPONSE_MAX);
    bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (strcmp(method, MHD_HTTP_METHOD_GET) && !head)
        json_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served");
    else if (*upload_data_size)
        json_error(&r, MHD_HTTP_BAD_REQUEST, "a GET has no body");
    else
        route(h, con, url, &r);
    *upload_data_size = 0;
    log_event(h->lg, LOG_DEBUG, "http.request", NULL, "%s %s -> %u", method, url, r.status);
    size_t len = r.body.len;
    char *data = buf_take(&r.body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, data ? data : (char *)"", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r.ctype ? r.ctype : "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* Nothing served here is a page: a browser must not sniff a job log into
     * HTML, run anything in an answer, or frame it. */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; frame-ancestors 'none'");
    if (r.status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (r.challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"amtacsd\"");
    enum MHD_Result ret = MHD_queue_response(con, r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ------------------------------------------------------------ connections */

static void on_connection(void *cls, struct MHD_Connection *con, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    struct httpd *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        struct track *t = calloc(1, sizeof *t);
        if (!t) {
            /* Untracked, it would escape the header deadline: drop it. */
            if (fi)
                shutdown(fi->connect_fd, SHUT_RDWR);
            return;
        }
        t->fd = fi ? fi->connect_fd : -1;
        t->loopback = ai && netaddr_sockaddr_is_loopback(ai->client_addr);
        t->since_ms = now_ms();
        t->next = h->tracks;
        if (h->tracks)
            h->tracks->prev = t;
        h->tracks = t;
        if (!t->loopback)
            h->n_remote++;
        *ctx = t;
        return;
    }
    struct track *t = *ctx;
    if (!t)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        h->tracks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (!t->loopback)
        h->n_remote--;
    free(t);
    *ctx = NULL;
}

/* An answer went out: the next request on the connection (keep-alive) gets
 * a deadline of its own, counted from now. */
static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con_cls;
    (void)toe;
    struct track *t = track_of(con);
    if (t) {
        t->headers_done = false;
        t->since_ms = now_ms();
    }
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct httpd *h = cls;
    (void)len;
    if (netaddr_sockaddr_is_loopback(addr))
        return MHD_YES;
    return h->n_remote < CONNECTION_LIMIT - LOOPBACK_RESERVE ? MHD_YES : MHD_NO;
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct httpd *h = cls;
    char msg[sizeof h->mhd_error];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '.'))
        msg[--l] = '\0';
    if (!h->d) /* still starting: the reason MHD_start_daemon fails */
        memcpy(h->mhd_error, msg, sizeof msg);
    else
        log_event(h->lg, LOG_DEBUG, "http.mhd", NULL, "%s", msg);
}

/* MHD's idle timeout starts again with every byte, so a client sending one
 * header line every few seconds would hold its connection for ever. Here a
 * request's headers get a deadline from the start of the connection (or the
 * previous answer): a connection past it is shut down, which MHD then sees
 * as a close. Returns the ms until the next deadline, or -1 if none. */
static long sweep(struct httpd *h, int64_t now)
{
    long next = -1;
    unsigned cut = 0;
    for (struct track *t = h->tracks; t; t = t->next) {
        if (t->headers_done || t->cut || t->fd < 0)
            continue;
        int64_t left = t->since_ms + h->header_timeout_ms - now;
        if (left <= 0) {
            shutdown(t->fd, SHUT_RDWR);
            t->cut = true;
            cut++;
        } else if (next < 0 || left < next) {
            next = (long)left;
        }
    }
    if (cut)
        log_event(h->lg, LOG_INFO, "http.header_timeout", NULL,
                  "closed %u connection(s) whose request headers were not complete within "
                  "%lld ms",
                  cut, (long long)h->header_timeout_ms);
    return next;
}

/* The server's thread: MHD runs here (no thread of its own), so the sweep
 * and MHD's callbacks never race over a connection. */
static void *serve(void *arg)
{
    struct httpd *h = arg;
    for (;;) {
        long wait = sweep(h, now_ms());
        MHD_UNSIGNED_LONG_LONG mt;
        if (MHD_get_timeout(h->d, &mt) == MHD_YES && (wait < 0 || mt < (unsigned long long)wait))
            wait = (long)mt;
        if (wait < 0 || wait > 1000)
            wait = 1000;
        struct pollfd p[2] = {{.fd = h->epoll_fd, .events = POLLIN},
                              {.fd = h->wake_fd, .events = POLLIN}};
        if (poll(p, 2, (int)wait) < 0 && errno != EINTR) {
            log_event(h->lg, LOG_ERROR, "http.poll", NULL, "%s", strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        MHD_run(h->d);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* The certificate chain (public): a regular file of at most PEM_MAX bytes,
 * NUL-terminated for MHD. */
static char *read_cert(const char *path, char *err, size_t errlen)
{
    char *pem = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(err, errlen, "http.tls_cert_file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (off_t)PEM_MAX) {
        snprintf(err, errlen, "http.tls_cert_file %s must be a regular file of 1 to %u bytes",
                 path, PEM_MAX);
        goto done;
    }
    pem = malloc(PEM_MAX + 1);
    size_t n = 0;
    while (pem && n < PEM_MAX) {
        ssize_t r = read(fd, pem + n, PEM_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "http.tls_cert_file %s: %s", path, strerror(errno));
            free(pem);
            pem = NULL;
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (!pem)
        snprintf(err, errlen, "out of memory");
    else
        pem[n] = '\0';
done:
    if (fd >= 0)
        close(fd);
    return pem;
}

struct httpd *httpd_start(const struct httpd_options *o, char *err, size_t errlen)
{
    struct netaddr na = {0};
    char *cert = NULL;
    char *key = NULL; /* sodium_malloc: locked, kept out of core dumps, wiped when freed */
    struct httpd *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->wake_fd = -1;
    h->metrics = o->metrics;
    h->lg = o->lg;
    h->stall_ms = o->stall_ms > 0 ? o->stall_ms : 30000;
    h->header_timeout_ms = o->header_timeout_ms > 0 ? o->header_timeout_ms : 10000;
    long per_client = o->max_connections_per_client > 0 ? o->max_connections_per_client : 8;
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
                 "job logs would be open to the network",
                 o->listen);
        goto fail;
    }
    if (!MHD_is_feature_supported(MHD_FEATURE_EPOLL)) {
        snprintf(err, errlen, "this libmicrohttpd was built without epoll support");
        goto fail;
    }
    struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (o->tls_cert_file || o->tls_key_file) {
        if (!o->tls_cert_file || !o->tls_key_file) {
            snprintf(err, errlen, "HTTPS needs both http.tls_cert_file and http.tls_key_file");
            goto fail;
        }
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "http.tls_cert_file is set, but this libmicrohttpd was built "
                                  "without TLS support: HTTPS cannot be served");
            goto fail;
        }
        if (!(cert = read_cert(o->tls_cert_file, err, errlen)))
            goto fail;
        if (!(key = sodium_malloc(KEY_MAX + 1))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        size_t klen;
        if (secfile_read("http.tls_key_file", o->tls_key_file, (unsigned char *)key, KEY_MAX,
                         &klen, err, errlen))
            goto fail;
        key[klen] = '\0';
        flags |= MHD_USE_TLS;
        h->tls = true;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              (void *)TLS_PRIORITIES};
    }
    if (na.ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, on_accept, h, on_request, h, MHD_OPTION_SOCK_ADDR, na.ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_client,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    /* GnuTLS has parsed the key into its own structures by now. */
    sodium_free(key);
    key = NULL;
    free(cert);
    cert = NULL;
    if (!h->d) {
        snprintf(err, errlen, "cannot serve HTTP%s on %s: %s%s", h->tls ? "S" : "", o->listen,
                 *h->mhd_error ? h->mhd_error : "address in use or not available",
                 h->tls ? " (are http.tls_cert_file a PEM certificate and http.tls_key_file "
                          "its PEM key?)"
                        : "");
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    h->epoll_fd = info ? info->epoll_fd : -1;
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->epoll_fd < 0 || h->wake_fd < 0) {
        snprintf(err, errlen, "cannot serve HTTP on %s: %s", o->listen,
                 h->epoll_fd < 0 ? "no epoll descriptor" : strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&h->thread, NULL, serve, h);
    if (rc) {
        snprintf(err, errlen, "cannot start the HTTP thread: %s", strerror(rc));
        goto fail;
    }
    h->thread_started = true;
    netaddr_free(&na);
    return h;
fail:
    sodium_free(key);
    free(cert);
    netaddr_free(&na);
    httpd_stop(h);
    return NULL;
}

unsigned httpd_port(const struct httpd *h) { return h->port; }

bool httpd_tls(const struct httpd *h) { return h->tls; }

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    if (h->thread_started) {
        uint64_t one = 1;
        while (write(h->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_join(h->thread, NULL);
    }
    if (h->d)
        MHD_stop_daemon(h->d); /* closes every connection: their tracks are freed */
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    PQfinish(h->db);
    sodium_memzero(h->token_hash, sizeof h->token_hash);
    free(h->conninfo);
    free(h);
}
