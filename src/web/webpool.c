#include "amtacs/webpool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/db.h"

/* A statement that runs longer is cancelled: a request never holds a worker
 * (and locks) for ever. */
#define STATEMENT_TIMEOUT "30s"

struct webpool_conn {
    struct webpool *p;
    PGconn *db;
    pthread_t thread;
    bool started;
    uint64_t prepared; /* bit i: statement i is prepared on db */
};

struct webpool {
    char *conninfo;
    const struct logger *lg;
    webpool_work work;
    void *cls;
    size_t max_queue;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **queue; /* ring of max_queue */
    size_t head, count;
    bool stopping;
    unsigned n;
    struct webpool_conn *conns;
};

static int setup(PGconn *db, char *err, size_t errlen)
{
    static const char *const stmts[] = {
        "SET ROLE acs_web",
        "SET statement_timeout = '" STATEMENT_TIMEOUT "'",
        "SET idle_in_transaction_session_timeout = '60s'",
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *r = PQexec(db, stmts[i]);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            snprintf(err, errlen, "%s: %s%s", stmts[i], m ? m : PQerrorMessage(db),
                     i == 0 ? " (web.conninfo must log in as a role that is a member of "
                              "acs_web: CREATE ROLE ... LOGIN NOINHERIT IN ROLE acs_web)"
                            : "");
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

/* PostgreSQL's notices (a WARNING before a shutdown) go to the log at debug
 * level, not to stderr. */
static void on_notice(void *arg, const char *msg)
{
    struct webpool *p = arg;
    log_event(p->lg, LOG_DEBUG, "web.db_notice", NULL, "%s", msg);
}

void webpool_drop(struct webpool_conn *c)
{
    PQfinish(c->db);
    c->db = NULL;
    c->prepared = 0;
}

bool webpool_is_prepared(const struct webpool_conn *c, unsigned id)
{
    return id < 64 && (c->prepared >> id & 1);
}

void webpool_mark_prepared(struct webpool_conn *c, unsigned id)
{
    if (id < 64)
        c->prepared |= UINT64_C(1) << id;
}

PGconn *webpool_db(struct webpool_conn *c, char *err, size_t errlen)
{
    if (c->db && PQstatus(c->db) == CONNECTION_OK &&
        PQtransactionStatus(c->db) == PQTRANS_IDLE)
        return c->db;
    PQfinish(c->db);
    c->prepared = 0;
    c->db = db_connect(c->p->conninfo, err, errlen);
    if (c->db)
        PQsetNoticeProcessor(c->db, on_notice, c->p);
    if (c->db && setup(c->db, err, errlen)) {
        PQfinish(c->db);
        c->db = NULL;
    }
    if (!c->db)
        log_event(c->p->lg, LOG_WARN, "web.db_unavailable", NULL, "%s", err);
    return c->db;
}

static void *worker(void *arg)
{
    struct webpool_conn *c = arg;
    struct webpool *p = c->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->count && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->count) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        void *job = p->queue[p->head];
        p->head = (p->head + 1) % p->max_queue;
        p->count--;
        pthread_mutex_unlock(&p->mu);
        p->work(p->cls, c, job);
        /* A request that failed half-way must not leave its transaction
         * (and its role) to the next one. */
        if (c->db && PQtransactionStatus(c->db) != PQTRANS_IDLE) {
            PGresult *r = PQexec(c->db, "ROLLBACK");
            PQclear(r);
            if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
                webpool_drop(c);
        }
    }
    return NULL;
}

struct webpool *webpool_start(const struct webpool_options *o, char *err, size_t errlen)
{
    struct webpool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->lg = o->lg;
    p->work = o->work;
    p->cls = o->cls;
    p->max_queue = o->max_queue ? o->max_queue : 256;
    p->n = o->workers ? o->workers : 1;
    p->conninfo = strdup(o->conninfo);
    p->queue = calloc(p->max_queue, sizeof *p->queue);
    p->conns = calloc(p->n, sizeof *p->conns);
    if (!p->conninfo || !p->queue || !p->conns) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < p->n; i++) {
        p->conns[i].p = p;
        int rc = pthread_create(&p->conns[i].thread, NULL, worker, &p->conns[i]);
        if (rc) {
            snprintf(err, errlen, "cannot start a worker thread: %s", strerror(rc));
            goto fail;
        }
        p->conns[i].started = true;
    }
    return p;
fail:
    webpool_free(p);
    return NULL;
}

bool webpool_submit(struct webpool *p, void *job)
{
    bool ok = false;
    pthread_mutex_lock(&p->mu);
    if (!p->stopping && p->count < p->max_queue) {
        p->queue[(p->head + p->count) % p->max_queue] = job;
        p->count++;
        ok = true;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void webpool_stop(struct webpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; p->conns && i < p->n; i++) {
        if (p->conns[i].started)
            pthread_join(p->conns[i].thread, NULL);
        p->conns[i].started = false;
        webpool_drop(&p->conns[i]);
    }
}

void webpool_free(struct webpool *p)
{
    if (!p)
        return;
    webpool_stop(p);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->conns);
    free(p->queue);
    free(p->conninfo);
    free(p);
}

int webpool_probe(const char *conninfo, const char *min_function, char *err, size_t errlen, char *warn,
                  size_t warnlen)
{
    int rc = -1;
    *warn = '\0';
    PGconn *db = db_connect(conninfo, err, errlen);
    if (!db)
        return -1;
    PGresult *r = PQexec(db, "SELECT r.rolsuper, r.rolinherit, session_user::text "
                             "FROM pg_catalog.pg_roles AS r WHERE r.rolname = session_user");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        snprintf(err, errlen, "cannot read the login's role: %s", PQerrorMessage(db));
        goto out;
    }
    /* A superuser passes every check: PostgreSQL would refuse nothing. */
    if (!strcmp(PQgetvalue(r, 0, 0), "t")) {
        snprintf(err, errlen,
                 "web.conninfo logs in as %s, a superuser: PostgreSQL would refuse nothing to "
                 "any web user; make a login of its own: CREATE ROLE amtacs_web LOGIN "
                 "NOINHERIT IN ROLE acs_web",
                 PQgetvalue(r, 0, 2));
        goto out;
    }
    if (!strcmp(PQgetvalue(r, 0, 1), "t"))
        snprintf(warn, warnlen,
                 "the login %s of web.conninfo inherits the rights of its roles; make it "
                 "NOINHERIT (ALTER ROLE %s NOINHERIT) so that it holds none of its own",
                 PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 2));
    if (setup(db, err, errlen))
        goto out;
    /* acs_web may read no table of acs: the catalog tells whether the
     * schema has what this server calls. */
    PQclear(r);
    const char *fn[] = {min_function};
    r = PQexecParams(db, "SELECT to_regprocedure($1) IS NOT NULL", 1, NULL, fn, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "t")) {
        snprintf(err, errlen,
                 "the database schema lacks %s: it is older than this amtacs-web (run "
                 "amtacsctl migrate)",
                 min_function);
        goto out;
    }
    rc = 0;
out:
    PQclear(r);
    PQfinish(db);
    return rc;
}
