#include "amtacs/webevents.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "amtacs/db.h"
#include "amtacs/text.h"
#include "amtacs/timeutil.h"

#define JOB_BATCH 1000     /* job state changes read per statement */
#define ALERT_BATCH 500
#define RETRY_MS 10        /* a change notified but below the horizon: read again */
#define RECONNECT_MS 1000
#define MAX_CONNECTIONS 4096 /* Full Comm states remembered */

enum sub_kind { SUB_EVENTS, SUB_LOG };

struct webevents_sub {
    struct webevents *h;
    struct webevents_sub *prev, *next;
    enum sub_kind kind;
    struct webevents_who who;
    struct httpserv_stream *st; /* NULL until attached */
    struct buf queued;          /* events before attach */
    bool failed;                /* a write before attach did not fit */
    bool ended;                 /* the log stream's end was queued before attach */
    /* SUB_LOG */
    int64_t job, n, last_seq;
    bool check;                 /* read this job at the next turn */
};

struct comm {
    char *name;
    char *state;
};

struct webevents {
    char *conninfo;
    const struct logger *lg;
    long heartbeat_ms, session_check_ms;
    pthread_mutex_t mu; /* guards everything below but db */
    struct webevents_sub *subs;
    size_t n_subs;
    struct webevents_pos pos;
    bool stopping;
    bool log_check; /* some SUB_LOG wants a read */
    int wake_fd;
    pthread_t thread;
    bool started;
    /* the hub's thread alone */
    PGconn *db;
    struct comm *comms;
    size_t n_comms;
    bool comm_known;
};

/* ------------------------------------------------------------ event text */

bool webevents_parse_id(const char *s, struct webevents_pos *pos)
{
    if (!s || !*s || strspn(s, "0123456789.") != strlen(s) || strlen(s) > 80)
        return false;
    unsigned long long v[4];
    size_t n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (n == 4 || !(*p >= '0' && *p <= '9'))
            return false;
        errno = 0;
        v[n++] = strtoull(p, &end, 10);
        if (errno)
            return false;
        if (!*end)
            break;
        p = end + 1; /* a '.' */
    }
    if (n < 3 || v[1] > INT64_MAX || v[n - 1] > INT64_MAX)
        return false;
    *pos = (struct webevents_pos){.xid = v[0], .job = (int64_t)v[1],
                                  .axid = n == 4 ? v[2] : 0, .alert = (int64_t)v[n - 1],
                                  .alert_id_only = n == 3};
    return true;
}

void webevents_pos_id(const struct webevents_pos *p, char *out, size_t len)
{
    snprintf(out, len, "%" PRIu64 ".%" PRId64 ".%" PRIu64 ".%" PRId64, p->xid, p->job, p->axid,
             p->alert);
}

int webevents_put(struct buf *b, const char *id, const char *name, const char *data, size_t len)
{
    if (id && buf_printf(b, "id: %s\n", id))
        return -1;
    if (buf_printf(b, "event: %s\ndata: ", name) || buf_append(b, data, len) ||
        buf_puts(b, "\n\n"))
        return -1;
    return 0;
}

int webevents_put_message(struct buf *b, int64_t n, const char *text, size_t len, bool quoted)
{
    if (buf_printf(b, "id: %" PRId64 "\nevent: message\ndata: {\"n\":%" PRId64 ",\"text\":", n,
                   n))
        return -1;
    if (quoted ? buf_append(b, text, len) != BUF_OK : text_json_quote(b, text, len) != BUF_OK)
        return -1;
    return buf_puts(b, "}\n\n") ? -1 : 0;
}

int webevents_put_log_lines(struct buf *b, const char *log, int64_t after, int64_t *n)
{
    /* as amtacsctl wait reads it: after the "Job Log ---" rule, one JSON
     * string per line until the closing rule */
    const char *p = strstr(log, "\nJob Log ---");
    p = p ? strchr(p + 1, '\n') : NULL;
    int64_t k = 0;
    while (p && p[1] == '"') {
        const char *eol = strchr(p + 1, '\n');
        if (!eol)
            break;
        if (++k > after) {
            if (webevents_put_message(b, k, p + 1, (size_t)(eol - p - 1), true))
                return -1;
            *n = k;
        }
        p = eol;
    }
    return 0;
}

/* ------------------------------------------------------------ subscribers */

static void kick(struct webevents *h)
{
    uint64_t one = 1;
    while (write(h->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Writes to one subscriber (queued before attach); false when it is over. */
static bool sub_write(struct webevents_sub *s, const char *p, size_t n)
{
    if (s->st)
        return httpserv_stream_write(s->st, p, n);
    if (s->failed)
        return false;
    if (buf_append(&s->queued, p, n)) {
        s->failed = true;
        return false;
    }
    return true;
}

/* Unlinks and frees; with h->mu held. */
static void sub_drop(struct webevents_sub *s)
{
    struct webevents *h = s->h;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->n_subs--;
    httpserv_stream_release(s->st);
    buf_free(&s->queued);
    free(s);
}

static struct webevents_sub *sub_new(struct webevents *h, const struct webevents_who *w,
                                     enum sub_kind kind)
{
    struct webevents_sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->h = h;
    s->kind = kind;
    s->who = *w;
    buf_init(&s->queued, HTTPSERV_STREAM_MAX_PENDING);
    return s;
}

static bool sub_link(struct webevents *h, struct webevents_sub *s)
{
    if (h->stopping)
        return false;
    s->next = h->subs;
    if (h->subs)
        h->subs->prev = s;
    h->subs = s;
    h->n_subs++;
    return true;
}

struct webevents_sub *webevents_subscribe(struct webevents *h, const struct webevents_who *w,
                                          struct webevents_pos *pos)
{
    struct webevents_sub *s = sub_new(h, w, SUB_EVENTS);
    if (!s)
        return NULL;
    pthread_mutex_lock(&h->mu);
    bool ok = sub_link(h, s);
    *pos = h->pos;
    pthread_mutex_unlock(&h->mu);
    if (!ok) {
        buf_free(&s->queued);
        free(s);
        return NULL;
    }
    return s;
}

struct webevents_sub *webevents_subscribe_log(struct webevents *h, const struct webevents_who *w,
                                              int64_t job, int64_t n, int64_t last_seq)
{
    struct webevents_sub *s = sub_new(h, w, SUB_LOG);
    if (!s)
        return NULL;
    s->job = job;
    s->n = n;
    s->last_seq = last_seq;
    s->check = true;
    pthread_mutex_lock(&h->mu);
    bool ok = sub_link(h, s);
    if (ok)
        h->log_check = true;
    pthread_mutex_unlock(&h->mu);
    if (!ok) {
        buf_free(&s->queued);
        free(s);
        return NULL;
    }
    kick(h);
    return s;
}

void webevents_attach(struct webevents_sub *s, struct httpserv_stream *st)
{
    struct webevents *h = s->h;
    pthread_mutex_lock(&h->mu);
    s->st = st;
    bool ok = !s->failed && (!s->queued.len ||
                             httpserv_stream_write(st, s->queued.data, s->queued.len));
    buf_free(&s->queued);
    if (!ok || s->ended || h->stopping)
        sub_drop(s); /* closes the stream after what it was given */
    pthread_mutex_unlock(&h->mu);
}

void webevents_cancel(struct webevents_sub *s)
{
    if (!s)
        return;
    struct webevents *h = s->h;
    pthread_mutex_lock(&h->mu);
    sub_drop(s);
    pthread_mutex_unlock(&h->mu);
}

/* Writes an event to every subscriber of /events that may see it; with h->mu
 * held. */
static void fan_out(struct webevents *h, const char *text, size_t len, bool alerts, bool comm)
{
    struct webevents_sub *s = h->subs, *next;
    for (; s; s = next) {
        next = s->next;
        if (s->kind != SUB_EVENTS || (alerts && !s->who.alerts) || (comm && !s->who.comm))
            continue;
        if (!sub_write(s, text, len) && s->st)
            sub_drop(s);
    }
}

/* ------------------------------------------------------------ database */

static PGresult *q(struct webevents *h, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(h->db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    log_event(h->lg, LOG_WARN, "web.events_db", NULL, "%s",
              r ? PQresultErrorMessage(r) : PQerrorMessage(h->db));
    PQclear(r);
    return NULL;
}

static bool q0(struct webevents *h, const char *sql)
{
    PGresult *r = q(h, sql, 0, NULL);
    PQclear(r);
    return r != NULL;
}

static void comms_free(struct webevents *h)
{
    for (size_t i = 0; i < h->n_comms; i++) {
        free(h->comms[i].name);
        free(h->comms[i].state);
    }
    free(h->comms);
    h->comms = NULL;
    h->n_comms = 0;
    h->comm_known = false;
}

/* Full Comm: the states now against those remembered; a change is an event. */
static bool read_comm(struct webevents *h)
{
    PGresult *r = q(h,
                    "SELECT c.name, c.comm_state, json_build_object('connection', c.name, "
                    "'comm_state', c.comm_state, 'changed_at', c.comm_changed_at, "
                    "'changed_by', c.comm_changed_by)::text FROM acs.connections AS c "
                    "ORDER BY c.name LIMIT " "4096",
                    0, NULL);
    if (!r)
        return false;
    int n = PQntuples(r);
    struct comm *now = calloc((size_t)n + 1, sizeof *now);
    struct buf b;
    buf_init(&b, 0);
    bool ok = now != NULL;
    for (int i = 0; ok && i < n; i++) {
        now[i].name = strdup(PQgetvalue(r, i, 0));
        now[i].state = strdup(PQgetvalue(r, i, 1));
        ok = now[i].name && now[i].state;
        if (!ok || !h->comm_known)
            continue;
        const char *was = NULL;
        for (size_t k = 0; k < h->n_comms && !was; k++)
            if (!strcmp(h->comms[k].name, now[i].name))
                was = h->comms[k].state;
        if (was && !strcmp(was, now[i].state))
            continue;
        buf_reset(&b);
        char id[WEBEVENTS_ID_MAX];
        pthread_mutex_lock(&h->mu);
        webevents_pos_id(&h->pos, id, sizeof id);
        if (!webevents_put(&b, id, "comm", PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2)))
            fan_out(h, b.data, b.len, false, true);
        pthread_mutex_unlock(&h->mu);
    }
    buf_free(&b);
    PQclear(r);
    if (!ok) {
        for (int i = 0; now && i < n; i++) {
            free(now[i].name);
            free(now[i].state);
        }
        free(now);
        return false;
    }
    comms_free(h);
    h->comms = now;
    h->n_comms = (size_t)n;
    h->comm_known = true;
    return true;
}

/* The job state changes past the cursor and below the horizon, in batches.
 * *behind is set when a change notified may still be below it (a read again
 * soon finds it): target is the xmax of the first read after a notice. */
static bool read_jobs(struct webevents *h, uint64_t *target, bool notified, bool *behind)
{
    struct buf b;
    buf_init(&b, 0);
    bool ok = true;
    *behind = false;
    for (;;) {
        char x[24], j[24];
        pthread_mutex_lock(&h->mu);
        snprintf(x, sizeof x, "%" PRIu64, h->pos.xid);
        snprintf(j, sizeof j, "%" PRId64, h->pos.job);
        pthread_mutex_unlock(&h->mu);
        const char *p[2] = {x, j};
        PGresult *r = q(
            h,
            "SELECT pg_snapshot_xmin(s.s)::text, pg_snapshot_xmax(s.s)::text, c.id, c.xid, c.doc"
            "  FROM (SELECT pg_current_snapshot() AS s) AS s"
            "  LEFT JOIN LATERAL ("
            "   SELECT j.id, j.state_xid::text AS xid,"
            "          json_build_object('id', j.id, 'state', j.state, 'connection', j.connection,"
            "            'kind', j.kind, 'name', coalesce(j.job_name, j.script_name),"
            "            'external_ref', j.external_ref, 'completion_code', j.completion_code,"
            "            'result', j.result, 'at', CASE j.state WHEN 'queued' THEN j.enqueued_at"
            "              WHEN 'starting' THEN j.claimed_at WHEN 'running' THEN j.started_at"
            "              WHEN 'finished' THEN j.finished_at END)::text AS doc"
            "     FROM acs.jobs AS j"
            "    WHERE (j.state_xid, j.id) > ($1::xid8, $2::bigint)"
            "      AND j.state_xid < pg_snapshot_xmin(s.s)"
            "    ORDER BY j.state_xid, j.id LIMIT " "1000"
            "  ) AS c ON true ORDER BY c.xid::xid8, c.id",
            2, p);
        if (!r) {
            ok = false;
            break;
        }
        int n = PQntuples(r);
        uint64_t horizon = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        uint64_t xmax = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        if (notified && xmax > *target)
            *target = xmax;
        notified = false;
        int rows = PQgetisnull(r, 0, 2) ? 0 : n;
        pthread_mutex_lock(&h->mu);
        for (int i = 0; i < rows; i++) {
            h->pos.xid = strtoull(PQgetvalue(r, i, 3), NULL, 10);
            h->pos.job = strtoll(PQgetvalue(r, i, 2), NULL, 10);
            char id[WEBEVENTS_ID_MAX];
            webevents_pos_id(&h->pos, id, sizeof id);
            buf_reset(&b);
            if (!webevents_put(&b, id, "job", PQgetvalue(r, i, 4), (size_t)PQgetlength(r, i, 4)))
                fan_out(h, b.data, b.len, false, false);
        }
        if (rows < JOB_BATCH && horizon > h->pos.xid) {
            h->pos.xid = horizon; /* everything below has been read */
            h->pos.job = 0;
        }
        pthread_mutex_unlock(&h->mu);
        PQclear(r);
        if (rows < JOB_BATCH) {
            *behind = horizon < *target;
            break;
        }
    }
    buf_free(&b);
    return ok;
}

/* The alerts past the cursor and below the horizon, as read_jobs reads
 * the job state changes (0018: an alert's id is not the order in which it
 * commits). */
static bool read_alerts(struct webevents *h, uint64_t target, bool *behind)
{
    struct buf b;
    buf_init(&b, 0);
    bool ok = true;
    *behind = false;
    for (;;) {
        char x[24], a[24];
        pthread_mutex_lock(&h->mu);
        snprintf(x, sizeof x, "%" PRIu64, h->pos.axid);
        snprintf(a, sizeof a, "%" PRId64, h->pos.alert);
        pthread_mutex_unlock(&h->mu);
        const char *p[2] = {x, a};
        PGresult *r = q(h,
                        "SELECT pg_snapshot_xmin(s.s)::text, c.id, c.xid, c.doc"
                        "  FROM (SELECT pg_current_snapshot() AS s) AS s"
                        "  LEFT JOIN LATERAL ("
                        "   SELECT a.id, a.raised_xid::text AS xid,"
                        "          json_build_object('id', a.id, 'job_id', a.job_id,"
                        "            'connection', a.connection, 'code', a.code, 'name', a.name,"
                        "            'raised_at', a.raised_at, 'message', a.message)::text AS doc"
                        "     FROM acs.alerts AS a"
                        "    WHERE (a.raised_xid, a.id) > ($1::xid8, $2::bigint)"
                        "      AND a.raised_xid < pg_snapshot_xmin(s.s)"
                        "    ORDER BY a.raised_xid, a.id LIMIT 500"
                        "  ) AS c ON true ORDER BY c.xid::xid8, c.id",
                        2, p);
        if (!r) {
            ok = false;
            break;
        }
        uint64_t horizon = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        int rows = PQgetisnull(r, 0, 1) ? 0 : PQntuples(r);
        pthread_mutex_lock(&h->mu);
        for (int i = 0; i < rows; i++) {
            h->pos.axid = strtoull(PQgetvalue(r, i, 2), NULL, 10);
            h->pos.alert = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            char id[WEBEVENTS_ID_MAX];
            webevents_pos_id(&h->pos, id, sizeof id);
            buf_reset(&b);
            if (!webevents_put(&b, id, "alert", PQgetvalue(r, i, 3), (size_t)PQgetlength(r, i, 3)))
                fan_out(h, b.data, b.len, true, false);
        }
        if (rows < ALERT_BATCH && horizon > h->pos.axid) {
            h->pos.axid = horizon; /* every alert below has been read */
            h->pos.alert = 0;
        }
        pthread_mutex_unlock(&h->mu);
        PQclear(r);
        if (rows < ALERT_BATCH) {
            *behind = horizon < target;
            break;
        }
    }
    buf_free(&b);
    return ok;
}

/* The end of a log stream: the job's outcome. */
static int put_end(struct buf *b, const char *doc, size_t len)
{
    return webevents_put(b, NULL, "end", doc, len);
}

/* The log streams whose job was notified (or just subscribed): new messages
 * to each, then, for a finished job, the log lines not sent yet and the end. */
static bool read_logs(struct webevents *h)
{
    struct buf jobs, afters, b;
    buf_init(&jobs, 0);
    buf_init(&afters, 0);
    buf_init(&b, 0);
    bool any = false, ok = true;
    pthread_mutex_lock(&h->mu);
    h->log_check = false;
    bool bad = buf_putc(&jobs, '{') || buf_putc(&afters, '{');
    for (struct webevents_sub *s = h->subs; s && !bad; s = s->next) {
        if (s->kind != SUB_LOG || !s->check)
            continue;
        s->check = false;
        bad = buf_printf(&jobs, "%s%" PRId64, any ? "," : "", s->job) ||
              buf_printf(&afters, "%s%" PRId64, any ? "," : "", s->last_seq);
        any = true;
    }
    pthread_mutex_unlock(&h->mu);
    if (bad || buf_putc(&jobs, '}') || buf_putc(&afters, '}')) {
        ok = false;
        goto out;
    }
    if (!any)
        goto out;
    const char *p[2] = {jobs.data, afters.data};
    PGresult *m = q(h,
                    "SELECT w.job, m.seq, m.text FROM (SELECT job, min(after) AS after FROM"
                    " unnest($1::bigint[], $2::bigint[]) AS u(job, after) GROUP BY job) AS w"
                    " JOIN acs.job_messages AS m ON m.job_id = w.job AND m.seq > w.after"
                    " ORDER BY w.job, m.seq",
                    2, p);
    PGresult *f = m ? q(h,
                        "SELECT j.id, l.log, json_build_object('id', j.id, 'state', j.state,"
                        " 'completion_code', j.completion_code, 'result', j.result,"
                        " 'error', j.error, 'log_purged', l.job_id IS NULL)::text"
                        "  FROM acs.jobs AS j LEFT JOIN acs.job_logs AS l ON l.job_id = j.id"
                        " WHERE j.id = ANY ($1::bigint[]) AND j.state = 'finished'",
                        1, p)
                      : NULL;
    if (!m || !f) {
        PQclear(m);
        ok = false;
        goto out;
    }
    pthread_mutex_lock(&h->mu);
    struct webevents_sub *s = h->subs, *next;
    for (; s; s = next) {
        next = s->next;
        if (s->kind != SUB_LOG)
            continue;
        bool alive = true;
        for (int i = 0; alive && i < PQntuples(m); i++) {
            if (strtoll(PQgetvalue(m, i, 0), NULL, 10) != s->job)
                continue;
            int64_t seq = strtoll(PQgetvalue(m, i, 1), NULL, 10);
            if (seq <= s->last_seq)
                continue;
            buf_reset(&b);
            if (webevents_put_message(&b, s->n + 1, PQgetvalue(m, i, 2),
                                      (size_t)PQgetlength(m, i, 2), false))
                continue;
            alive = sub_write(s, b.data, b.len);
            s->n++;
            s->last_seq = seq;
        }
        for (int i = 0; alive && i < PQntuples(f); i++) {
            if (strtoll(PQgetvalue(f, i, 0), NULL, 10) != s->job)
                continue;
            buf_reset(&b);
            int64_t n = s->n;
            if (!PQgetisnull(f, i, 1) && webevents_put_log_lines(&b, PQgetvalue(f, i, 1), s->n, &n))
                buf_reset(&b);
            s->n = n;
            if (!put_end(&b, PQgetvalue(f, i, 2), (size_t)PQgetlength(f, i, 2)))
                sub_write(s, b.data, b.len);
            alive = false;
            if (s->st)
                httpserv_stream_close(s->st);
            else
                s->ended = true; /* attach sends the queued bytes, then closes */
        }
        if (!alive && s->st)
            sub_drop(s);
    }
    pthread_mutex_unlock(&h->mu);
    PQclear(m);
    PQclear(f);
out:
    buf_free(&jobs);
    buf_free(&afters);
    buf_free(&b);
    return ok;
}

/* Every stream's session or token, in one statement; those no longer valid,
 * or in another role, end. */
static bool check_sessions(struct webevents *h)
{
    struct buf arr;
    buf_init(&arr, 0);
    pthread_mutex_lock(&h->mu);
    bool bad = buf_putc(&arr, '{');
    bool any = false;
    for (struct webevents_sub *s = h->subs; s && !bad; s = s->next) {
        bad = buf_printf(&arr, "%s\"\\\\x%s\"", any ? "," : "", s->who.hash);
        any = true;
    }
    pthread_mutex_unlock(&h->mu);
    if (bad || buf_putc(&arr, '}')) {
        buf_free(&arr);
        return false;
    }
    if (!any) {
        buf_free(&arr);
        return true;
    }
    const char *p[1] = {arr.data};
    bool ok = q0(h, "SET ROLE acs_web");
    PGresult *r = ok ? q(h, "SELECT encode(token_hash, 'hex'), role "
                            "FROM acs.web_credentials_alive($1::bytea[])",
                         1, p)
                     : NULL;
    ok = q0(h, "SET ROLE acs_viewer") && ok && r;
    if (r && ok) {
        static const char bye[] = "event: end\ndata: {\"reason\":\"the session or token has "
                                  "ended, or its role changed\"}\n\n";
        pthread_mutex_lock(&h->mu);
        struct webevents_sub *s = h->subs, *next;
        for (; s; s = next) {
            next = s->next;
            bool alive = false;
            for (int i = 0; i < PQntuples(r) && !alive; i++)
                alive = !strcmp(PQgetvalue(r, i, 0), s->who.hash) &&
                        !strcmp(PQgetvalue(r, i, 1), s->who.role);
            if (alive || !s->st)
                continue;
            httpserv_stream_write(s->st, bye, sizeof bye - 1);
            sub_drop(s);
        }
        pthread_mutex_unlock(&h->mu);
    }
    PQclear(r);
    buf_free(&arr);
    return ok;
}

/* A comment line on every stream, so that proxies keep it open; streams
 * whose client went away are noticed here. */
static void heartbeat(struct webevents *h)
{
    static const char beat[] = ":\n\n";
    pthread_mutex_lock(&h->mu);
    struct webevents_sub *s = h->subs, *next;
    for (; s; s = next) {
        next = s->next;
        if (s->st && !httpserv_stream_write(s->st, beat, sizeof beat - 1))
            sub_drop(s);
    }
    pthread_mutex_unlock(&h->mu);
}

static bool connect_db(struct webevents *h, char *err, size_t errlen)
{
    PQfinish(h->db);
    h->db = db_connect(h->conninfo, err, errlen);
    if (!h->db)
        return false;
    static const char *const setup[] = {
        "SET ROLE acs_web", "SET statement_timeout = '30s'",
        /* told apart from the pool's in pg_stat_activity */
        "SET application_name = 'amtacs-web events'", "LISTEN acs_job_state",
        "LISTEN acs_alerts", "LISTEN acs_comm", "LISTEN acs_job_messages",
        "LISTEN acs_job_finished", "SET ROLE acs_viewer",
    };
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        PGresult *r = PQexec(h->db, setup[i]);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "%s: %s", setup[i], PQerrorMessage(h->db));
            PQclear(r);
            PQfinish(h->db);
            h->db = NULL;
            return false;
        }
        PQclear(r);
    }
    return true;
}

/* The starting position: now (what happened before is the catch-up's). */
static bool start_position(struct webevents *h)
{
    PGresult *r = q(h, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text", 0, NULL);
    if (!r)
        return false;
    pthread_mutex_lock(&h->mu);
    uint64_t x = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    if (x > h->pos.xid) {
        h->pos.xid = x;
        h->pos.job = 0;
    }
    if (x > h->pos.axid) {
        h->pos.axid = x;
        h->pos.alert = 0;
    }
    pthread_mutex_unlock(&h->mu);
    PQclear(r);
    return true;
}

/* Reads what the server sent and notes what the notices hint at; false when
 * the connection is lost. */
static bool drain(struct webevents *h, bool *jobs, bool *alerts, bool *comm, bool *notified)
{
    if (!PQconsumeInput(h->db)) {
        log_event(h->lg, LOG_WARN, "web.events_db", NULL, "lost the connection: %s",
                  PQerrorMessage(h->db));
        return false;
    }
    PGnotify *nt;
    while ((nt = PQnotifies(h->db))) {
        if (!strcmp(nt->relname, "acs_job_state")) {
            *jobs = *notified = true;
        } else if (!strcmp(nt->relname, "acs_alerts")) {
            *alerts = *notified = true;
        } else if (!strcmp(nt->relname, "acs_comm")) {
            *comm = true;
        } else {
            /* acs_job_messages, acs_job_finished: a job id (only a hint) */
            int64_t id = strtoll(nt->extra, NULL, 10);
            pthread_mutex_lock(&h->mu);
            for (struct webevents_sub *s = h->subs; s; s = s->next)
                if (s->kind == SUB_LOG && s->job == id) {
                    s->check = true;
                    h->log_check = true;
                }
            pthread_mutex_unlock(&h->mu);
        }
        PQfreemem(nt);
    }
    return true;
}

static void *hub(void *arg)
{
    struct webevents *h = arg;
    int64_t now = now_ms();
    int64_t next_beat = now + h->heartbeat_ms, next_check = now + h->session_check_ms;
    int64_t retry_at = 0;
    bool jobs = false, alerts = false, comm = false, notified = false;
    bool unreachable = false; /* said so already */
    uint64_t target = 0;
    for (;;) {
        now = now_ms();
        pthread_mutex_lock(&h->mu);
        bool stop = h->stopping, logs = h->log_check;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        /* without its connection the hub tries again every RECONNECT_MS,
         * not at every turn of the loop (it spun, logging a line each time) */
        if (!h->db && now >= retry_at) {
            char err[300] = "cannot read the connections";
            /* the cursor stays: what changed while the connection was down
             * is read from where the hub was */
            if (connect_db(h, err, sizeof err) && read_comm(h)) {
                log_event(h->lg, LOG_INFO, "web.events_listening", NULL,
                          "the event hub listens on its database connection");
                unreachable = false;
                jobs = alerts = true;
                pthread_mutex_lock(&h->mu);
                for (struct webevents_sub *s = h->subs; s; s = s->next)
                    s->check = s->kind == SUB_LOG;
                pthread_mutex_unlock(&h->mu);
                logs = true;
            } else {
                /* said once until it is reached again, then at debug level */
                log_event(h->lg, unreachable ? LOG_DEBUG : LOG_WARN, "web.events_db", NULL,
                          "the event hub cannot reach the database: %s; trying again every "
                          "%d ms",
                          err, RECONNECT_MS);
                unreachable = true;
                PQfinish(h->db);
                h->db = NULL;
                retry_at = now + RECONNECT_MS;
            }
        }
        bool failed = false;
        if (h->db) {
            /* jobs and alerts share the horizon, and a notice of either may
             * be for a change still below it */
            if (jobs || alerts || (retry_at && now >= retry_at)) {
                bool jobs_behind = false, alerts_behind = false;
                retry_at = 0;
                failed |= !read_jobs(h, &target, notified, &jobs_behind);
                failed = failed || !read_alerts(h, target, &alerts_behind);
                notified = false;
                jobs = alerts = false;
                if (jobs_behind || alerts_behind)
                    retry_at = now_ms() + RETRY_MS;
                else
                    target = 0;
            }
            if (comm && !failed) {
                failed |= !read_comm(h);
                comm = false;
            }
            if (logs && !failed)
                failed |= !read_logs(h);
            now = now_ms();
            if (now >= next_check && !failed) {
                failed |= !check_sessions(h);
                next_check = now + h->session_check_ms;
            }
            if (failed && PQstatus(h->db) != CONNECTION_OK) {
                PQfinish(h->db);
                h->db = NULL;
                retry_at = now + RECONNECT_MS;
                continue;
            }
        }
        if (now >= next_beat) {
            heartbeat(h);
            next_beat = now + h->heartbeat_ms;
        }
        /* notices that came in while the statements ran wait in libpq */
        if (h->db && !drain(h, &jobs, &alerts, &comm, &notified)) {
            PQfinish(h->db);
            h->db = NULL;
            retry_at = now_ms() + RECONNECT_MS;
            continue;
        }
        pthread_mutex_lock(&h->mu);
        /* what waits to be read waits for the connection, too */
        bool more = (h->db && (jobs || alerts || comm || h->log_check)) || h->stopping;
        pthread_mutex_unlock(&h->mu);
        int64_t until = next_beat < next_check ? next_beat : next_check;
        if (retry_at && retry_at < until)
            until = retry_at;
        int wait = more ? 0 : until > now ? (int)(until - now) : 0;
        struct pollfd p[2] = {{.fd = h->wake_fd, .events = POLLIN},
                              {.fd = h->db ? PQsocket(h->db) : -1, .events = POLLIN}};
        if (poll(p, 2, wait) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            uint64_t v;
            while (read(h->wake_fd, &v, sizeof v) < 0 && errno == EINTR)
                ;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

struct webevents *webevents_start(const struct webevents_options *o, char *err, size_t errlen)
{
    struct webevents *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->wake_fd = -1;
    h->lg = o->lg;
    h->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : 15000;
    h->session_check_ms = o->session_check_ms > 0 ? o->session_check_ms : 5000;
    h->conninfo = strdup(o->conninfo);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!h->conninfo || h->wake_fd < 0) {
        snprintf(err, errlen, "cannot start the event hub: %s", strerror(errno));
        goto fail;
    }
    if (!connect_db(h, err, errlen) || !start_position(h) || !read_comm(h)) {
        if (!*err)
            snprintf(err, errlen, "the event hub cannot read its starting position");
        goto fail;
    }
    int rc = pthread_create(&h->thread, NULL, hub, h);
    if (rc) {
        snprintf(err, errlen, "cannot start the event hub's thread: %s", strerror(rc));
        goto fail;
    }
    h->started = true;
    return h;
fail:
    webevents_free(h);
    return NULL;
}

void webevents_stop(struct webevents *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_mutex_unlock(&h->mu);
    if (h->started) {
        kick(h);
        pthread_join(h->thread, NULL);
        h->started = false;
    }
    pthread_mutex_lock(&h->mu);
    while (h->subs)
        sub_drop(h->subs); /* closes each stream */
    pthread_mutex_unlock(&h->mu);
    PQfinish(h->db);
    h->db = NULL;
}

void webevents_free(struct webevents *h)
{
    if (!h)
        return;
    webevents_stop(h);
    comms_free(h);
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    free(h->conninfo);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
