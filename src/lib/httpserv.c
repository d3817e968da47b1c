#include "amtacs/httpserv.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "amtacs/netaddr.h"
#include "amtacs/secfile.h"
#include "amtacs/timeutil.h"

#define IDLE_TIMEOUT_S 10
#define PEM_MAX (1u << 20)  /* a certificate chain */
#define KEY_MAX (64u << 10) /* a private key */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define MAX_FIELDS 128      /* headers plus query arguments kept per request */
#define MAX_REPLY_HEADERS 8

/* One open connection, from MHD's connection notice to its close. */
struct track {
    struct track *prev, *next;
    int fd;
    int64_t since_ms;  /* the connection opened or its last answer was sent */
    bool headers_done; /* the current request's headers are complete */
    bool cut;          /* shut down by the header deadline */
    bool loopback;
};

struct field {
    char *name, *value;
    size_t value_len;
    bool header; /* else a query argument */
};

enum req_state { REQ_BODY, REQ_HANDLED, REQ_DEFERRED };

/* A streamed reply. Two references: the owner's handle and the server's
 * (its MHD response, dropped when MHD frees it). mu guards the rest. */
struct httpserv_stream {
    pthread_mutex_t mu;
    unsigned refs;
    struct httpserv *s;          /* NULL once the response is freed */
    struct MHD_Connection *con;
    struct httpserv_stream *prev, *next; /* the server's list (its streams_mu) */
    char *data;                  /* pending bytes: data[off .. off+len) */
    size_t off, len, cap;
    bool suspended;              /* our reader suspended the connection */
    bool closed;                 /* no more writes; end once drained */
    bool gone;                   /* the response is freed: the stream is over */
};

struct httpserv_req {
    struct httpserv *s;
    struct MHD_Connection *con;
    enum req_state state;
    atomic_bool ready; /* a deferred reply is complete */
    char *method, *path;
    char client[64];
    struct field fields[MAX_FIELDS];
    size_t n_fields;
    char *body; /* NUL-terminated */
    size_t body_len, body_cap;
    bool too_large;
    unsigned status;
    const char *ctype;
    struct buf reply;
    struct field headers[MAX_REPLY_HEADERS];
    size_t n_headers;
    struct httpserv_stream *stream; /* a streamed reply (httpserv_finish_stream) */
};

struct httpserv {
    struct MHD_Daemon *d;
    const struct logger *lg;
    char setting[16];
    int64_t header_timeout_ms;
    unsigned connection_limit, loopback_reserve;
    size_t max_body, max_reply;
    httpserv_handler handler;
    void *cls;
    bool problem_json;
    bool tls;
    unsigned port;
    int epoll_fd; /* MHD's, borrowed */
    int wake_fd;  /* eventfd: httpserv_stop tells the thread to end */
    int kick_fd;  /* eventfd: a deferred reply is ready (MHD's own signal does not
                     reach a poll on its epoll descriptor) */
    pthread_t thread;
    bool thread_started;
    /* Touched only by the server's thread once it runs (MHD calls back from
     * inside MHD_run, on that thread). */
    struct track *tracks;
    pthread_mutex_t streams_mu; /* the open streams, ended when the server stops */
    struct httpserv_stream *streams;
    unsigned n_remote;   /* open connections from addresses off the loopback interface */
    char mhd_error[300]; /* MHD's last complaint while starting */
};

/* ------------------------------------------------------------ requests */

static void wipe_free(char *p, size_t n)
{
    if (p) {
        sodium_memzero(p, n);
        free(p);
    }
}

static void stream_freed(void *cls);

static void req_free(struct httpserv_req *r)
{
    if (!r)
        return;
    if (r->stream) /* the connection closed before the stream's reply was queued */
        stream_freed(r->stream);
    for (size_t i = 0; i < r->n_fields; i++) {
        free(r->fields[i].name);
        wipe_free(r->fields[i].value, r->fields[i].value_len);
    }
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        wipe_free(r->headers[i].value, r->headers[i].value_len);
    }
    wipe_free(r->body, r->body_cap);
    if (r->reply.data)
        sodium_memzero(r->reply.data, r->reply.cap);
    buf_free(&r->reply);
    free(r->method);
    free(r->path);
    free(r);
}

static enum MHD_Result keep_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct httpserv_req *r = cls;
    if (r->n_fields == MAX_FIELDS)
        return MHD_NO;
    struct field *f = &r->fields[r->n_fields];
    f->name = strdup(key);
    f->value = strdup(value ? value : "");
    if (!f->name || !f->value) {
        free(f->name);
        free(f->value);
        return MHD_NO;
    }
    f->value_len = strlen(f->value) + 1;
    f->header = kind == MHD_HEADER_KIND;
    r->n_fields++;
    return MHD_YES;
}

static struct httpserv_req *req_new(struct httpserv *s, struct MHD_Connection *con,
                                    const char *url, const char *method)
{
    struct httpserv_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->s = s;
    r->con = con;
    r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    buf_init(&r->reply, s->max_reply);
    r->method = strdup(method);
    r->path = strdup(url);
    r->body = calloc(1, 1);
    r->body_cap = 1;
    if (!r->method || !r->path || !r->body) {
        req_free(r);
        return NULL;
    }
    MHD_get_connection_values(con, MHD_HEADER_KIND, keep_field, r);
    MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, keep_field, r);
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ai || getnameinfo(ai->client_addr,
                           ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                  : sizeof(struct sockaddr_in),
                           r->client, sizeof r->client, NULL, 0, NI_NUMERICHOST))
        snprintf(r->client, sizeof r->client, "unknown");
    return r;
}

static const char *field(const struct httpserv_req *r, const char *name, bool header)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (r->fields[i].header == header &&
            (header ? !strcasecmp(r->fields[i].name, name) : !strcmp(r->fields[i].name, name)))
            return r->fields[i].value;
    return NULL;
}

const char *httpserv_method(const struct httpserv_req *r) { return r->method; }
const char *httpserv_path(const struct httpserv_req *r) { return r->path; }
const char *httpserv_header(const struct httpserv_req *r, const char *name)
{
    return field(r, name, true);
}
const char *httpserv_header_last(const struct httpserv_req *r, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < r->n_fields; i++)
        if (r->fields[i].header && !strcasecmp(r->fields[i].name, name))
            v = r->fields[i].value;
    return v;
}
const char *httpserv_query(const struct httpserv_req *r, const char *name)
{
    return field(r, name, false);
}

bool httpserv_query_each(const struct httpserv_req *r,
                         bool (*fn)(void *cls, const char *name, const char *value), void *cls)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (!r->fields[i].header && !fn(cls, r->fields[i].name, r->fields[i].value))
            return false;
    return true;
}

const char *httpserv_body(const struct httpserv_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body;
}

const char *httpserv_client(const struct httpserv_req *r) { return r->client; }
bool httpserv_req_tls(const struct httpserv_req *r) { return r->s->tls; }

void httpserv_reply(struct httpserv_req *r, unsigned status, const char *ctype)
{
    r->status = status;
    r->ctype = ctype;
}

struct buf *httpserv_reply_body(struct httpserv_req *r) { return &r->reply; }

bool httpserv_reply_header(struct httpserv_req *r, const char *name, const char *value)
{
    if (r->n_headers == MAX_REPLY_HEADERS)
        return false;
    struct field *f = &r->headers[r->n_headers];
    f->name = strdup(name);
    f->value = strdup(value);
    if (!f->name || !f->value) {
        free(f->name);
        free(f->value);
        return false;
    }
    f->value_len = strlen(value) + 1;
    r->n_headers++;
    return true;
}

void httpserv_defer(struct httpserv_req *r)
{
    r->state = REQ_DEFERRED;
    MHD_suspend_connection(r->con);
}

void httpserv_finish(struct httpserv_req *r)
{
    int kick = r->s->kick_fd;
    atomic_store(&r->ready, true);
    MHD_resume_connection(r->con); /* r may be freed from here on */
    uint64_t one = 1;
    while (write(kick, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ streams */

static void plain(struct httpserv_req *r, unsigned status, const char *msg);

static void kick(struct httpserv *s)
{
    uint64_t one = 1;
    while (write(s->kick_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void stream_unref(struct httpserv_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool last = --st->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (!last)
        return;
    if (st->data)
        sodium_memzero(st->data, st->cap);
    free(st->data);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* Wakes a connection our reader suspended; called with st->mu held. True
 * when the server's thread must be kicked. */
static bool stream_wake(struct httpserv_stream *st)
{
    if (!st->suspended || st->gone)
        return false;
    st->suspended = false;
    MHD_resume_connection(st->con);
    return true;
}

/* MHD wants bytes: the pending ones, the end once closed and drained, or
 * nothing yet, and then the connection waits suspended (MHD allows suspending
 * from a content reader) until a write or close resumes it. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct httpserv_stream *st = cls;
    ssize_t n;
    pthread_mutex_lock(&st->mu);
    if (st->len) {
        size_t k = st->len < max ? st->len : max;
        memcpy(out, st->data + st->off, k);
        sodium_memzero(st->data + st->off, k);
        st->off += k;
        st->len -= k;
        if (!st->len) {
            st->off = 0;
            if (st->cap > 4096) { /* an idle stream keeps no large buffer */
                free(st->data);
                st->data = NULL;
                st->cap = 0;
            }
        }
        n = (ssize_t)k;
    } else if (st->closed) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        st->suspended = true;
        MHD_suspend_connection(st->con);
        n = 0;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* MHD is done with the response (sent, or the connection closed): the
 * stream is over; the server's reference goes. */
static void stream_freed(void *cls)
{
    struct httpserv_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    struct httpserv *s = st->s;
    st->gone = true;
    st->suspended = false;
    st->s = NULL;
    pthread_mutex_unlock(&st->mu);
    if (s) {
        pthread_mutex_lock(&s->streams_mu);
        if (st->prev)
            st->prev->next = st->next;
        else if (s->streams == st)
            s->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        st->prev = st->next = NULL;
        pthread_mutex_unlock(&s->streams_mu);
    }
    stream_unref(st);
}

struct httpserv_stream *httpserv_finish_stream(struct httpserv_req *r)
{
    struct httpserv *s = r->s;
    struct httpserv_stream *st = calloc(1, sizeof *st);
    if (!st) {
        plain(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        httpserv_finish(r);
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->refs = 2;
    st->s = s;
    st->con = r->con;
    /* the body set so far goes first */
    if (r->reply.len) {
        st->len = st->cap = r->reply.len;
        st->data = buf_take(&r->reply);
        if (!st->data)
            st->len = st->cap = 0;
    }
    pthread_mutex_lock(&s->streams_mu);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    pthread_mutex_unlock(&s->streams_mu);
    r->stream = st;
    httpserv_finish(r);
    return st;
}

bool httpserv_stream_write(struct httpserv_stream *st, const void *data, size_t len)
{
    bool ok = true, wake = false;
    struct httpserv *s;
    pthread_mutex_lock(&st->mu);
    s = st->s;
    if (st->gone || st->closed) {
        ok = false;
    } else if (st->len + len > HTTPSERV_STREAM_MAX_PENDING) {
        st->closed = true; /* a client that does not read: end it */
        ok = false;
        wake = stream_wake(st);
    } else {
        if (st->off + st->len + len > st->cap) {
            if (st->off) {
                memmove(st->data, st->data + st->off, st->len);
                st->off = 0;
            }
            if (st->len + len > st->cap) {
                size_t cap = st->cap ? st->cap : 256;
                while (cap < st->len + len)
                    cap *= 2;
                char *nd = malloc(cap);
                if (!nd) {
                    ok = false;
                    goto out;
                }
                if (st->len)
                    memcpy(nd, st->data, st->len);
                if (st->data)
                    sodium_memzero(st->data, st->cap);
                free(st->data);
                st->data = nd;
                st->cap = cap;
            }
        }
        memcpy(st->data + st->off + st->len, data, len);
        st->len += len;
        wake = stream_wake(st);
    }
out:
    pthread_mutex_unlock(&st->mu);
    if (wake && s)
        kick(s);
    return ok;
}

bool httpserv_stream_alive(struct httpserv_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool alive = !st->gone && !st->closed;
    pthread_mutex_unlock(&st->mu);
    return alive;
}

void httpserv_stream_close(struct httpserv_stream *st)
{
    pthread_mutex_lock(&st->mu);
    struct httpserv *s = st->s;
    st->closed = true;
    bool wake = stream_wake(st);
    pthread_mutex_unlock(&st->mu);
    if (wake && s)
        kick(s);
}

void httpserv_stream_release(struct httpserv_stream *st)
{
    if (!st)
        return;
    httpserv_stream_close(st);
    stream_unref(st);
}

/* The server stops: every stream ends, and no connection may stay
 * suspended when MHD stops. On the server's thread. */
static void close_streams(struct httpserv *s)
{
    pthread_mutex_lock(&s->streams_mu);
    for (struct httpserv_stream *st = s->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        st->closed = true;
        stream_wake(st);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&s->streams_mu);
}

static void plain(struct httpserv_req *r, unsigned status, const char *msg)
{
    r->status = status;
    r->ctype = "text/plain; charset=utf-8";
    buf_reset(&r->reply);
    if (buf_puts(&r->reply, msg))
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* A reply body MHD frees when it is sent: wiped first (a CSRF token, a job
 * log). */
struct owned {
    char *p;
    size_t n;
};

static void owned_free(void *cls)
{
    struct owned *o = cls;
    wipe_free(o->p, o->n);
    free(o);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max);
static void stream_freed(void *cls);

/* Did the handler set this reply header? */
static bool reply_has(const struct httpserv_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (!strcasecmp(r->headers[i].name, name))
            return true;
    return false;
}

static enum MHD_Result send_reply(struct httpserv_req *r)
{
    size_t len = r->reply.len, cap = r->reply.cap;
    struct MHD_Response *resp = NULL;
    if (r->stream) {
        struct httpserv_stream *st = r->stream;
        r->stream = NULL; /* the response holds the server's reference now */
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_read, st,
                                                 stream_freed);
        if (!resp) {
            stream_freed(st);
            return MHD_NO;
        }
        goto headers;
    }
    char *data = buf_take(&r->reply);
    struct owned *o = data ? malloc(sizeof *o) : NULL;
    if (o) {
        *o = (struct owned){data, cap};
        resp = MHD_create_response_from_buffer_with_free_callback_cls(len, data, owned_free, o);
    } else if (!data) {
        resp = MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        if (o)
            owned_free(o);
        else
            wipe_free(data, cap);
        return MHD_NO;
    }
headers:
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->ctype ? r->ctype : "text/plain; charset=utf-8");
    /* The handler may set these two itself (amtacs-web's console pages: their
     * own policy, cached until they change); a second header would not
     * replace the first, the browser would enforce both. */
    if (!reply_has(r, MHD_HTTP_HEADER_CACHE_CONTROL))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* Nothing served here is a page: a browser must not sniff an answer into
     * HTML, run anything in it, frame it or tell another site where it was. */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!reply_has(r, "Content-Security-Policy"))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    for (size_t i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->con, r->status, resp);
    MHD_destroy_response(resp);
    if (log_on(r->s->lg, LOG_DEBUG)) {
        char ev[32];
        snprintf(ev, sizeof ev, "%s.request", r->s->setting);
        log_event(r->s->lg, LOG_DEBUG, ev, NULL, "%s %s -> %u", r->method, r->path, r->status);
    }
    return ret;
}

static struct track *track_of(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static bool body_append(struct httpserv_req *r, const char *p, size_t n)
{
    if (r->too_large || n > r->s->max_body - r->body_len) {
        r->too_large = true;
        return true;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap * 2;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > r->s->max_body + 1)
            cap = r->s->max_body + 1;
        /* Not realloc: the old copy may hold a password and must be wiped. */
        char *nb = malloc(cap);
        if (!nb)
            return false;
        memcpy(nb, r->body, r->body_len + 1);
        wipe_free(r->body, r->body_cap);
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

static void too_large(struct httpserv_req *r)
{
    char msg[256];
    if (r->s->problem_json) {
        /* setting is "http" or "web": nothing to escape */
        snprintf(msg, sizeof msg,
                 "{\"type\":\"about:blank\",\"title\":\"Content Too Large\",\"status\":413,"
                 "\"detail\":\"the request body is larger than %zu bytes (%s.max_body)\"}\n",
                 r->s->max_body, r->s->setting);
        plain(r, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        r->ctype = "application/problem+json";
        return;
    }
    snprintf(msg, sizeof msg, "the request body is larger than %zu bytes (%s.max_body)\n",
             r->s->max_body, r->s->setting);
    plain(r, MHD_HTTP_CONTENT_TOO_LARGE, msg);
}

/* Runs the handler; queues its reply unless it deferred it. */
static enum MHD_Result handle(struct httpserv_req *r)
{
    r->state = REQ_HANDLED;
    r->s->handler(r->s->cls, r);
    if (r->state == REQ_DEFERRED)
        return MHD_YES;
    return send_reply(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct httpserv *s = cls;
    struct httpserv_req *r = *con_cls;
    if (!r) {
        struct track *t = track_of(con);
        if (t)
            t->headers_done = true; /* MHD calls once the request's headers are all in */
        if (!(r = req_new(s, con, url, method)))
            return MHD_NO;
        *con_cls = r;
        if (!s->max_body) {
            *upload_data_size = 0;
            return handle(r);
        }
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > s->max_body) {
                /* Refused before a byte of it is read; MHD then closes. */
                too_large(r);
                r->state = REQ_HANDLED;
                return send_reply(r);
            }
        }
        return MHD_YES;
    }
    if (r->state == REQ_BODY) {
        if (*upload_data_size) {
            bool ok = body_append(r, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return ok ? MHD_YES : MHD_NO;
        }
        if (r->too_large) {
            too_large(r);
            r->state = REQ_HANDLED;
            return send_reply(r);
        }
        return handle(r);
    }
    *upload_data_size = 0;
    if (r->state == REQ_DEFERRED && atomic_load(&r->ready)) {
        r->state = REQ_HANDLED;
        return send_reply(r);
    }
    return MHD_YES;
}

/* ------------------------------------------------------------ connections */

static void on_connection(void *cls, struct MHD_Connection *con, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    struct httpserv *s = cls;
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
        t->next = s->tracks;
        if (s->tracks)
            s->tracks->prev = t;
        s->tracks = t;
        if (!t->loopback)
            s->n_remote++;
        *ctx = t;
        return;
    }
    struct track *t = *ctx;
    if (!t)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        s->tracks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (!t->loopback)
        s->n_remote--;
    free(t);
    *ctx = NULL;
}

/* An answer went out (or the request was dropped): the request is freed and
 * the next request on the connection (keep-alive) gets a deadline of its own,
 * counted from now. */
static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    req_free(*con_cls);
    *con_cls = NULL;
    struct track *t = track_of(con);
    if (t) {
        t->headers_done = false;
        t->since_ms = now_ms();
    }
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct httpserv *s = cls;
    (void)len;
    if (netaddr_sockaddr_is_loopback(addr))
        return MHD_YES;
    return s->n_remote < s->connection_limit - s->loopback_reserve ? MHD_YES : MHD_NO;
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct httpserv *s = cls;
    char msg[sizeof s->mhd_error];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '.'))
        msg[--l] = '\0';
    if (!s->d) { /* still starting: the reason MHD_start_daemon fails */
        memcpy(s->mhd_error, msg, sizeof msg);
    } else {
        char ev[32];
        snprintf(ev, sizeof ev, "%s.mhd", s->setting);
        log_event(s->lg, LOG_DEBUG, ev, NULL, "%s", msg);
    }
}

/* MHD's idle timeout starts again with every byte, so a client sending one
 * header line every few seconds would hold its connection for ever. Here a
 * request's headers get a deadline from the start of the connection (or the
 * previous answer): a connection past it is shut down, which MHD then sees
 * as a close. Returns the ms until the next deadline, or -1 if none. */
static long sweep(struct httpserv *s, int64_t now)
{
    long next = -1;
    unsigned cut = 0;
    for (struct track *t = s->tracks; t; t = t->next) {
        if (t->headers_done || t->cut || t->fd < 0)
            continue;
        int64_t left = t->since_ms + s->header_timeout_ms - now;
        if (left <= 0) {
            shutdown(t->fd, SHUT_RDWR);
            t->cut = true;
            cut++;
        } else if (next < 0 || left < next) {
            next = (long)left;
        }
    }
    if (cut) {
        char ev[32];
        snprintf(ev, sizeof ev, "%s.header_timeout", s->setting);
        log_event(s->lg, LOG_INFO, ev, NULL,
                  "closed %u connection(s) whose request headers were not complete within "
                  "%lld ms",
                  cut, (long long)s->header_timeout_ms);
    }
    return next;
}

/* The server's thread: MHD runs here (no thread of its own), so the sweep
 * and MHD's callbacks never race over a connection. */
static void *serve(void *arg)
{
    struct httpserv *s = arg;
    for (;;) {
        long wait = sweep(s, now_ms());
        MHD_UNSIGNED_LONG_LONG mt;
        if (MHD_get_timeout(s->d, &mt) == MHD_YES && (wait < 0 || mt < (unsigned long long)wait))
            wait = (long)mt;
        if (wait < 0 || wait > 1000)
            wait = 1000;
        struct pollfd p[3] = {{.fd = s->epoll_fd, .events = POLLIN},
                              {.fd = s->wake_fd, .events = POLLIN},
                              {.fd = s->kick_fd, .events = POLLIN}};
        if (poll(p, 3, (int)wait) < 0 && errno != EINTR) {
            char ev[32];
            snprintf(ev, sizeof ev, "%s.poll", s->setting);
            log_event(s->lg, LOG_ERROR, ev, NULL, "%s", strerror(errno));
            break;
        }
        if (p[1].revents) {
            /* Streams end, and their suspended connections are resumed and
             * run once: MHD must not stop with a connection suspended. */
            close_streams(s);
            MHD_run(s->d);
            MHD_run(s->d);
            break;
        }
        if (p[2].revents) {
            uint64_t n;
            while (read(s->kick_fd, &n, sizeof n) < 0 && errno == EINTR)
                ;
        }
        MHD_run(s->d);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* The certificate chain (public): a regular file of at most PEM_MAX bytes,
 * NUL-terminated for MHD. */
static char *read_cert(const char *setting, const char *path, char *err, size_t errlen)
{
    char *pem = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(err, errlen, "%s.tls_cert_file %s: %s", setting, path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (off_t)PEM_MAX) {
        snprintf(err, errlen, "%s.tls_cert_file %s must be a regular file of 1 to %u bytes",
                 setting, path, PEM_MAX);
        goto done;
    }
    pem = malloc(PEM_MAX + 1);
    size_t n = 0;
    while (pem && n < PEM_MAX) {
        ssize_t r = read(fd, pem + n, PEM_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s.tls_cert_file %s: %s", setting, path, strerror(errno));
            free(pem);
            pem = NULL;
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (!pem && !*err)
        snprintf(err, errlen, "out of memory");
    else if (pem)
        pem[n] = '\0';
done:
    if (fd >= 0)
        close(fd);
    return pem;
}

struct httpserv *httpserv_start(const struct httpserv_options *o, char *err, size_t errlen)
{
    struct netaddr na = {0};
    char *cert = NULL;
    char *key = NULL; /* sodium_malloc: locked, kept out of core dumps, wiped when freed */
    char kwhat[48];
    *err = '\0';
    struct httpserv *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->wake_fd = -1;
    s->kick_fd = -1;
    pthread_mutex_init(&s->streams_mu, NULL);
    s->lg = o->lg;
    snprintf(s->setting, sizeof s->setting, "%s", o->setting ? o->setting : "http");
    s->header_timeout_ms = o->header_timeout_ms > 0 ? o->header_timeout_ms : 10000;
    s->connection_limit = o->connection_limit ? o->connection_limit : 32;
    s->loopback_reserve = o->loopback_reserve ? o->loopback_reserve : 4;
    if (s->loopback_reserve >= s->connection_limit)
        s->loopback_reserve = s->connection_limit / 2;
    s->max_body = o->max_body;
    s->max_reply = o->max_reply ? o->max_reply : (64u << 20);
    s->handler = o->handler;
    s->cls = o->cls;
    s->problem_json = o->problem_json;
    long per_client = o->max_connections_per_client > 0 ? o->max_connections_per_client : 8;
    char aerr[300];
    if (netaddr_resolve(o->listen, &na, aerr, sizeof aerr)) {
        snprintf(err, errlen, "%s.listen %s", s->setting, aerr);
        goto fail;
    }
    if (!MHD_is_feature_supported(MHD_FEATURE_EPOLL)) {
        snprintf(err, errlen, "this libmicrohttpd was built without epoll support");
        goto fail;
    }
    struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (o->tls_cert_file || o->tls_key_file) {
        if (!o->tls_cert_file || !o->tls_key_file) {
            snprintf(err, errlen, "HTTPS needs both %s.tls_cert_file and %s.tls_key_file",
                     s->setting, s->setting);
            goto fail;
        }
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "%s.tls_cert_file is set, but this libmicrohttpd was built "
                                  "without TLS support: HTTPS cannot be served",
                     s->setting);
            goto fail;
        }
        if (!(cert = read_cert(s->setting, o->tls_cert_file, err, errlen)))
            goto fail;
        if (!(key = sodium_malloc(KEY_MAX + 1))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        size_t klen;
        snprintf(kwhat, sizeof kwhat, "%s.tls_key_file", s->setting);
        if (secfile_read(kwhat, o->tls_key_file, (unsigned char *)key, KEY_MAX, &klen, err,
                         errlen))
            goto fail;
        key[klen] = '\0';
        flags |= MHD_USE_TLS;
        s->tls = true;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              (void *)TLS_PRIORITIES};
    }
    if (na.ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, on_accept, s, on_request, s, MHD_OPTION_SOCK_ADDR, na.ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, s->connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_client,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    /* GnuTLS has parsed the key into its own structures by now. */
    sodium_free(key);
    key = NULL;
    free(cert);
    cert = NULL;
    if (!s->d) {
        snprintf(err, errlen, "cannot serve HTTP%s on %s: %s%s", s->tls ? "S" : "", o->listen,
                 *s->mhd_error ? s->mhd_error : "address in use or not available",
                 s->tls ? " (are the tls_cert_file a PEM certificate and the tls_key_file "
                          "its PEM key?)"
                        : "");
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    s->epoll_fd = info ? info->epoll_fd : -1;
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->epoll_fd < 0 || s->wake_fd < 0 || s->kick_fd < 0) {
        snprintf(err, errlen, "cannot serve HTTP on %s: %s", o->listen,
                 s->epoll_fd < 0 ? "no epoll descriptor" : strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&s->thread, NULL, serve, s);
    if (rc) {
        snprintf(err, errlen, "cannot start the HTTP thread: %s", strerror(rc));
        goto fail;
    }
    s->thread_started = true;
    netaddr_free(&na);
    return s;
fail:
    sodium_free(key);
    free(cert);
    netaddr_free(&na);
    httpserv_stop(s);
    return NULL;
}

unsigned httpserv_port(const struct httpserv *s) { return s->port; }

bool httpserv_tls(const struct httpserv *s) { return s->tls; }

void httpserv_stop(struct httpserv *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        uint64_t one = 1;
        while (write(s->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_join(s->thread, NULL);
    }
    if (s->d)
        MHD_stop_daemon(s->d); /* closes every connection: tracks and requests are freed */
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->kick_fd >= 0)
        close(s->kick_fd);
    pthread_mutex_destroy(&s->streams_mu);
    free(s);
}
