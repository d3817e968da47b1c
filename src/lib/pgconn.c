#include "amtacs/pgconn.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amtacs/buf.h"
#include "amtacs/timeutil.h"

#define RECONNECT_MIN_MS 200
#define RECONNECT_MAX_MS 10000

enum pc_state {
    PC_WAIT,       /* no connection; reconnect at retry_at */
    PC_CONNECTING, /* PQconnectPoll in progress */
    PC_LISTENING,  /* LISTEN statements in flight */
    PC_READY,      /* idle or running statements */
};

struct stmt {
    char *sql;
    int nparams;
    char **params;
    pgconn_result_cb cb;
    void *ud;
    bool internal; /* our own LISTEN: no callback */
    int retries;   /* times sent again after a deadlock or serialization failure */
    struct timespec sent; /* when it went to the server, for cbs.observe */
    struct stmt *next;
};

struct pgconn {
    char *conninfo;
    char **channels;
    struct pgconn_callbacks cbs;
    const struct logger *lg;
    PGconn *conn;
    enum pc_state state;
    PostgresPollingStatusType poll_status;
    int64_t retry_at;
    long backoff_ms;
    struct stmt *head, *tail; /* queue; head is in flight when sent */
    bool head_sent;
    bool flushing;            /* PQflush reported more to send */
    size_t pending;
    bool was_up;
};

static void stmt_free(struct stmt *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nparams; i++)
        free(s->params[i]);
    free(s->params);
    free(s->sql);
    free(s);
}

static void pop_and_call(struct pgconn *pc, const PGresult *res, const char *err)
{
    struct stmt *s = pc->head;
    pc->head = s->next;
    if (!pc->head)
        pc->tail = NULL;
    if (pc->head_sent && !s->internal && pc->cbs.observe) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        pc->cbs.observe(pc->cbs.ud, (double)(now.tv_sec - s->sent.tv_sec) +
                                        (double)(now.tv_nsec - s->sent.tv_nsec) / 1e9,
                        err == NULL);
    }
    pc->head_sent = false;
    if (!s->internal)
        pc->pending--;
    if (s->cb)
        s->cb(s->ud, res, err);
    stmt_free(s);
}

static void drop_internal(struct pgconn *pc)
{
    /* LISTENs of a connection that broke are re-queued by the next connect. */
    struct stmt **pp = &pc->head;
    while (*pp) {
        if ((*pp)->internal) {
            struct stmt *dead = *pp;
            *pp = dead->next;
            stmt_free(dead);
        } else {
            pp = &(*pp)->next;
        }
    }
    pc->tail = NULL;
    for (struct stmt *s = pc->head; s; s = s->next)
        pc->tail = s;
}

static void lose(struct pgconn *pc, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", why && *why ? why : "connection lost");
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
        msg[--l] = '\0';
    if (pc->conn) {
        PQfinish(pc->conn);
        pc->conn = NULL;
    }
    /* A user statement in flight has an unknown outcome: fail it. Our own
     * LISTENs are dropped and re-queued by the next connect. */
    bool user_in_flight = pc->head && pc->head_sent && !pc->head->internal;
    pc->head_sent = false;
    if (user_in_flight)
        pop_and_call(pc, NULL, msg);
    drop_internal(pc);
    pc->flushing = false;
    pc->state = PC_WAIT;
    pc->retry_at = now_ms() + pc->backoff_ms;
    pc->backoff_ms = pc->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : pc->backoff_ms * 2;
    log_event(pc->lg, pc->was_up ? LOG_WARN : LOG_DEBUG, "db.down", NULL, "%s", msg);
    if (pc->cbs.down)
        pc->cbs.down(pc->cbs.ud, msg);
    pc->was_up = false;
}

static void start_connect(struct pgconn *pc)
{
    /* Named, so that an administrator can tell the daemon's sessions in
     * pg_stat_activity (unless the conninfo names them itself). */
    static const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {pc->conninfo, "amtacsd", NULL};
    pc->conn = PQconnectStartParams(keys, vals, 1);
    if (!pc->conn) {
        lose(pc, "out of memory");
        return;
    }
    if (PQstatus(pc->conn) == CONNECTION_BAD) {
        lose(pc, PQerrorMessage(pc->conn));
        return;
    }
    pc->state = PC_CONNECTING;
    pc->poll_status = PGRES_POLLING_WRITING;
}

static int enqueue(struct pgconn *pc, const char *sql, int nparams, const char *const *params,
                   pgconn_result_cb cb, void *ud, bool internal, bool front)
{
    struct stmt *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->sql = strdup(sql);
    s->nparams = nparams;
    s->cb = cb;
    s->ud = ud;
    s->internal = internal;
    if (nparams > 0)
        s->params = calloc((size_t)nparams, sizeof *s->params);
    if (!s->sql || (nparams > 0 && !s->params))
        goto oom;
    for (int i = 0; i < nparams; i++)
        if (params[i] && !(s->params[i] = strdup(params[i])))
            goto oom;
    if (front && !internal) {
        /* after a statement in flight and our own LISTENs, before the rest */
        struct stmt **pp = &pc->head;
        if (*pp && pc->head_sent)
            pp = &(*pp)->next;
        while (*pp && (*pp)->internal)
            pp = &(*pp)->next;
        s->next = *pp;
        *pp = s;
        if (!s->next)
            pc->tail = s;
    } else if (front) {
        /* after a statement already in flight, before everything else */
        if (pc->head && pc->head_sent) {
            s->next = pc->head->next;
            pc->head->next = s;
            if (pc->tail == pc->head)
                pc->tail = s;
        } else {
            s->next = pc->head;
            pc->head = s;
            if (!pc->tail)
                pc->tail = s;
        }
    } else {
        if (pc->tail)
            pc->tail->next = s;
        else
            pc->head = s;
        pc->tail = s;
    }
    if (!internal)
        pc->pending++;
    return 0;
oom:
    stmt_free(s);
    return -1;
}

static void send_next(struct pgconn *pc)
{
    if (!pc->conn || pc->head_sent || !pc->head || pc->state == PC_CONNECTING ||
        pc->state == PC_WAIT)
        return;
    if (pc->state == PC_LISTENING && !pc->head->internal)
        return;
    struct stmt *s = pc->head;
    if (!PQsendQueryParams(pc->conn, s->sql, s->nparams, NULL,
                           (const char *const *)s->params, NULL, NULL, 0)) {
        lose(pc, PQerrorMessage(pc->conn));
        return;
    }
    pc->head_sent = true;
    clock_gettime(CLOCK_MONOTONIC, &s->sent);
    int f = PQflush(pc->conn);
    if (f < 0)
        lose(pc, PQerrorMessage(pc->conn));
    else
        pc->flushing = f == 1;
}

static void on_listen_done(void *ud, const PGresult *res, const char *err)
{
    struct pgconn *pc = ud;
    (void)res;
    (void)err;
    /* The last LISTEN done: the connection is ready for the caller's work. */
    bool more = false;
    for (struct stmt *s = pc->head; s; s = s->next)
        if (s->internal)
            more = true;
    if (!more && pc->state == PC_LISTENING) {
        pc->state = PC_READY;
        pc->backoff_ms = RECONNECT_MIN_MS;
        pc->was_up = true;
        log_event(pc->lg, LOG_INFO, "db.up", NULL, "connected to PostgreSQL %d",
                  PQserverVersion(pc->conn));
        if (pc->cbs.up)
            pc->cbs.up(pc->cbs.ud);
    }
}

static void connected(struct pgconn *pc)
{
    if (PQsetnonblocking(pc->conn, 1)) {
        lose(pc, PQerrorMessage(pc->conn));
        return;
    }
    pc->state = PC_LISTENING;
    /* LISTENs go first, in reverse so that they end up in channel order. */
    size_t n = 0;
    while (pc->channels[n])
        n++;
    if (n == 0) {
        pc->state = PC_LISTENING;
        on_listen_done(pc, NULL, NULL);
        send_next(pc);
        return;
    }
    for (size_t i = n; i-- > 0;) {
        char *q = PQescapeIdentifier(pc->conn, pc->channels[i], strlen(pc->channels[i]));
        struct buf b;
        buf_init(&b, 0);
        int bad = !q || buf_printf(&b, "LISTEN %s", q);
        PQfreemem(q);
        if (bad || enqueue(pc, b.data, 0, NULL, on_listen_done, pc, true, true)) {
            buf_free(&b);
            lose(pc, "out of memory");
            return;
        }
        buf_free(&b);
    }
    send_next(pc);
}

static void drive_connect(struct pgconn *pc)
{
    pc->poll_status = PQconnectPoll(pc->conn);
    switch (pc->poll_status) {
    case PGRES_POLLING_OK:
        connected(pc);
        break;
    case PGRES_POLLING_FAILED:
        lose(pc, PQerrorMessage(pc->conn));
        break;
    default:
        break;
    }
}

/* A statement that PostgreSQL rolled back to break a deadlock, or for a
 * serialization failure, did nothing: each of ours is its own transaction, so
 * it is sent again at once (and its caller never sees the failure) rather than
 * failing a write or a lease renewal. Bounded, should the cause persist. */
#define MAX_RETRIES_AT_ONCE 5

static bool retry_at_once(struct pgconn *pc, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    struct stmt *s = pc->head;
    if (!state || (strcmp(state, "40P01") && strcmp(state, "40001")) || s->internal ||
        s->retries >= MAX_RETRIES_AT_ONCE)
        return false;
    s->retries++;
    pc->head_sent = false;
    log_event(pc->lg, LOG_INFO, "db.retry", NULL, "%s (SQLSTATE %s); sent again (%d)",
              strcmp(state, "40P01") ? "serialization failure" : "deadlock", state, s->retries);
    return true;
}

static void read_results(struct pgconn *pc)
{
    if (!PQconsumeInput(pc->conn)) {
        lose(pc, PQerrorMessage(pc->conn));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(pc->conn))) {
        if (pc->cbs.notify)
            pc->cbs.notify(pc->cbs.ud, n->relname, n->extra);
        PQfreemem(n);
        if (!pc->conn)
            return;
    }
    while (pc->conn && pc->head_sent && !PQisBusy(pc->conn)) {
        /* One statement may yield several results; the last non-NULL counts. */
        PGresult *res, *last = NULL;
        while ((res = PQgetResult(pc->conn))) {
            PQclear(last);
            last = res;
        }
        ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            pop_and_call(pc, last, NULL);
        } else if (retry_at_once(pc, last)) {
            PQclear(last);
            send_next(pc);
            continue;
        } else {
            char msg[1024];
            const char *e = last ? PQresultErrorMessage(last) : PQerrorMessage(pc->conn);
            snprintf(msg, sizeof msg, "%s", e && *e ? e : "statement failed");
            size_t l = strlen(msg);
            while (l && msg[l - 1] == '\n')
                msg[--l] = '\0';
            pop_and_call(pc, NULL, msg);
        }
        PQclear(last);
        if (pc->conn && PQstatus(pc->conn) == CONNECTION_BAD) {
            lose(pc, PQerrorMessage(pc->conn));
            return;
        }
        send_next(pc);
    }
}

void pgconn_io(struct pgconn *pc, short revents)
{
    if (!pc->conn)
        return;
    if (pc->state == PC_CONNECTING) {
        drive_connect(pc);
        return;
    }
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
        /* Let libpq find out what happened: it may still read a last error. */
        revents |= POLLIN;
    }
    if (pc->flushing && (revents & POLLOUT)) {
        int f = PQflush(pc->conn);
        if (f < 0) {
            lose(pc, PQerrorMessage(pc->conn));
            return;
        }
        pc->flushing = f == 1;
    }
    if (revents & POLLIN)
        read_results(pc);
    if (pc->conn && !pc->head_sent)
        send_next(pc);
}

int pgconn_fd(const struct pgconn *pc) { return pc->conn ? PQsocket(pc->conn) : -1; }

short pgconn_events(const struct pgconn *pc)
{
    if (!pc->conn)
        return 0;
    if (pc->state == PC_CONNECTING)
        return pc->poll_status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    return (short)(POLLIN | (pc->flushing ? POLLOUT : 0));
}

long pgconn_timeout_ms(const struct pgconn *pc, int64_t now)
{
    if (pc->state != PC_WAIT)
        return -1;
    return pc->retry_at > now ? (long)(pc->retry_at - now) : 0;
}

void pgconn_tick(struct pgconn *pc, int64_t now)
{
    if (pc->state == PC_WAIT && now >= pc->retry_at)
        start_connect(pc);
    else if (pc->state == PC_READY && pc->head && !pc->head_sent)
        send_next(pc);
}

bool pgconn_is_up(const struct pgconn *pc) { return pc->state == PC_READY; }

size_t pgconn_pending(const struct pgconn *pc) { return pc->pending; }

static int query(struct pgconn *pc, const char *sql, int nparams, const char *const *params,
                 pgconn_result_cb cb, void *ud, bool urgent)
{
    if (enqueue(pc, sql, nparams, params, cb, ud, false, urgent))
        return -1;
    if (pc->state == PC_READY && !pc->head_sent)
        send_next(pc);
    return 0;
}

int pgconn_query(struct pgconn *pc, const char *sql, int nparams, const char *const *params,
                 pgconn_result_cb cb, void *ud)
{
    return query(pc, sql, nparams, params, cb, ud, false);
}

int pgconn_query_urgent(struct pgconn *pc, const char *sql, int nparams,
                        const char *const *params, pgconn_result_cb cb, void *ud)
{
    return query(pc, sql, nparams, params, cb, ud, true);
}

struct pgconn *pgconn_new(const char *conninfo, const char *const *channels,
                          const struct pgconn_callbacks *cbs, const struct logger *lg)
{
    struct pgconn *pc = calloc(1, sizeof *pc);
    if (!pc)
        return NULL;
    size_t n = 0;
    while (channels && channels[n])
        n++;
    pc->channels = calloc(n + 1, sizeof *pc->channels);
    pc->conninfo = strdup(conninfo ? conninfo : "");
    if (!pc->channels || !pc->conninfo)
        goto oom;
    for (size_t i = 0; i < n; i++)
        if (!(pc->channels[i] = strdup(channels[i])))
            goto oom;
    if (cbs)
        pc->cbs = *cbs;
    pc->lg = lg;
    pc->backoff_ms = RECONNECT_MIN_MS;
    start_connect(pc);
    return pc;
oom:
    pgconn_free(pc);
    return NULL;
}

void pgconn_free(struct pgconn *pc)
{
    if (!pc)
        return;
    while (pc->head)
        pop_and_call(pc, NULL, "shutting down");
    if (pc->conn)
        PQfinish(pc->conn);
    for (size_t i = 0; pc->channels && pc->channels[i]; i++)
        free(pc->channels[i]);
    free(pc->channels);
    free(pc->conninfo);
    free(pc);
}
