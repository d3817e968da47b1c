#include "amtacs/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/store.h"
#include "amtacs/timeutil.h"

#define MONITOR_BATCH 1000 /* ids per MonitorJobs call */
#define FEATURES_RETRY_MS 2000 /* a heartbeat again this soon while the features are unknown */

/* What a client's logons use: the Batch User's sealed password. Each client
 * has its own, so a client retired by a reload keeps logging on as the user
 * it was made for until its last call has come back. */
struct cred {
    const struct conn_env *env;
    char *user;
    bool loaded;           /* the database has answered (the password may be missing) */
    char key_id[64];
    unsigned char *sealed; /* NULL if none is stored */
    size_t sealed_len;
};

struct conn_client {
    struct amt_client *amt;   /* NULL once stopping */
    struct cred *cred;
    struct conn_client *next; /* the retired list */
};

/* A job waiting for the next MonitorJobs call. */
struct check {
    void *job;
    int brid;
};

struct conn {
    const struct conn_env *env;
    const struct amtacs_connection *cfg;
    void *ud;                 /* the engine's, for the hooks */
    struct conn_client *cl;   /* the current client; NULL before one is installed */
    struct conn_client *retired; /* replaced by a reload, freed once their calls are back */
    unsigned cred_gen;        /* bumped when the Batch User changes */
    bool secret_pending;      /* a load of the password is on its way */
    unsigned secret_gen;      /* the cred_gen that load is for */
    bool secret_again;        /* and another was asked for meanwhile */
    bool comm_loading, comm_again; /* a read of Full Comm in flight; another wanted */
    struct metrics_conn *mc;
    bool removed;             /* a reload took it out: no claims; jobs in hand go on */
    int server_up;            /* the last heartbeat: 1 answered, 0 failed, -1 none yet */
    size_t njobs;             /* jobs in flight (the engine holds them) */
    bool monitor_jobs;   /* the server offers MonitorJobs */
    bool features_known; /* a heartbeat has answered */
    bool heartbeat_failed; /* and before one did, one failed */
    enum job_comm comm;  /* Full Comm state, from acs.connections */
    bool idempotent;     /* the server's Start is idempotent per taskId */
    bool heartbeat_busy;
    int64_t next_heartbeat;
    struct check *checks; /* waiting for the next MonitorJobs call */
    size_t nchecks, capchecks;
};

static bool tearing_down(const struct conn *c)
{
    return c->env->tearing_down && c->env->tearing_down(c->env->ud);
}

static struct log_ctx cctx(const struct conn *c)
{
    struct log_ctx x = {c->cfg->name, 0, 0};
    return x;
}

/* ------------------------------------------------------------ life */

struct conn *conn_new(const struct conn_env *env, const struct amtacs_connection *cfg, void *ud)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->env = env;
    c->cfg = cfg;
    c->ud = ud;
    c->server_up = -1;
    c->next_heartbeat = now_ms();
    c->mc = metrics_conn_get(env->metrics, cfg->name);
    return c;
}

static void cred_free(struct cred *cr)
{
    if (!cr)
        return;
    free(cr->sealed);
    free(cr->user);
    free(cr);
}

void conn_client_free(struct conn_client *cl)
{
    if (!cl)
        return;
    amt_client_free(cl->amt); /* first: its logons may still read the credentials */
    cred_free(cl->cred);
    free(cl);
}

void conn_free(struct conn *c)
{
    if (!c)
        return;
    conn_client_free(c->cl);
    conn_sweep(c, true);
    free(c->checks);
    free(c);
}

const struct amtacs_connection *conn_cfg(const struct conn *c) { return c->cfg; }
void conn_set_cfg(struct conn *c, const struct amtacs_connection *cfg) { c->cfg = cfg; }
const char *conn_name(const struct conn *c) { return c->cfg->name; }
struct amt_client *conn_amt(const struct conn *c) { return c->cl ? c->cl->amt : NULL; }
struct metrics_conn *conn_metrics(const struct conn *c) { return c->mc; }
bool conn_removed(const struct conn *c) { return c->removed; }
void conn_set_removed(struct conn *c, bool removed) { c->removed = removed; }

/* ------------------------------------------------------------ clients */

static char *get_password(void *ud, const char *user, char *err, size_t errlen)
{
    struct cred *cr = ud;
    if (!cr->sealed) {
        snprintf(err, errlen,
                 "no password is stored for Batch User '%s' (amtacsctl batch-user set %s)", user,
                 user);
        return NULL;
    }
    char *pw = NULL;
    if (vault_open(cr->env->key, cr->key_id, user, cr->sealed, cr->sealed_len, &pw, err,
                   errlen))
        return NULL;
    return pw;
}

static void release_password(char *pw) { vault_password_free(pw); }

static void observe_call(void *ud, enum amt_call call, double seconds, enum amt_status status)
{
    struct conn *c = ud;
    metrics_http_call(c->mc, call, seconds, status);
}

struct conn_client *conn_client_new(struct conn *c, const struct amtacs_connection *cc,
                                    bool carry, char *err, size_t errlen)
{
    const struct cred *from = carry && c->cl ? c->cl->cred : NULL;
    struct conn_client *cl = calloc(1, sizeof *cl);
    struct cred *cr = calloc(1, sizeof *cr);
    if (!cl || !cr || !(cr->user = strdup(cc->batch_user)))
        goto oom;
    cr->env = c->env;
    if (from && !strcmp(from->user, cc->batch_user) && from->loaded) {
        cr->loaded = true;
        snprintf(cr->key_id, sizeof cr->key_id, "%s", from->key_id);
        if (from->sealed) {
            if (!(cr->sealed = malloc(from->sealed_len ? from->sealed_len : 1)))
                goto oom;
            memcpy(cr->sealed, from->sealed, from->sealed_len);
            cr->sealed_len = from->sealed_len;
        }
    }
    struct amt_settings st = {
        .name = cc->name, .url = cc->url, .user = cc->batch_user,
        .connect_timeout_ms = (long)cc->http.connect_timeout_ms,
        .timeout_ms = (long)cc->http.timeout_ms, .max_body = (size_t)cc->http.max_body,
        .tls_verify = cc->tls.verify, .ca_file = cc->tls.ca_file, .proxy = cc->proxy,
        .max_connections = cc->http.max_connections,
        .lg = c->env->lg, .observe = observe_call, .observe_ud = c,
    };
    char aerr[256];
    cl->amt = amt_client_new(c->env->multi, &st, get_password, release_password, cr, aerr,
                             sizeof aerr);
    if (!cl->amt) {
        snprintf(err, errlen, "connection %s: %s", cc->name, aerr);
        cred_free(cr);
        free(cl);
        return NULL;
    }
    cl->cred = cr;
    return cl;
oom:
    cred_free(cr);
    free(cl);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

/* Hands a client over to the retired list; it is freed once idle. */
static void retire(struct conn *c, struct conn_client *cl)
{
    if (!cl)
        return;
    if (!cl->amt || !amt_client_pending(cl->amt)) {
        /* Nothing in flight: free now. A call in flight then ends cancelled
         * and its job is scheduled again. */
        conn_client_free(cl);
        return;
    }
    cl->next = c->retired;
    c->retired = cl;
}

void conn_client_install(struct conn *c, struct conn_client *cl, bool user_changed)
{
    if (c->cl) {
        retire(c, c->cl);
        /* The new server (or route to it) says again what it offers. */
        c->features_known = false;
        c->heartbeat_failed = false;
        c->server_up = -1;
        c->next_heartbeat = now_ms();
    }
    c->cl = cl;
    if (user_changed)
        c->cred_gen++;
}

void conn_sweep(struct conn *c, bool all)
{
    struct conn_client **pp = &c->retired;
    while (*pp) {
        struct conn_client *r = *pp;
        if (all || !amt_client_pending(r->amt)) {
            *pp = r->next;
            conn_client_free(r);
        } else {
            pp = &r->next;
        }
    }
}

void conn_stop_calls(struct conn *c)
{
    /* The credentials stay: a password read still on its way lands there. */
    if (c->cl) {
        amt_client_free(c->cl->amt);
        c->cl->amt = NULL;
    }
    conn_sweep(c, true);
}

void conn_warn_transport(const struct conn *c)
{
    const struct amtacs_connection *cc = c->cfg;
    struct log_ctx x = cctx(c);
    if (cc->https && !cc->tls.verify)
        log_event(c->env->lg, LOG_WARN, "conn.tls_unverified", &x,
                  "tls.verify is false: the server's certificate is not checked and the Batch "
                  "User password can go to an impostor; for tests only");
    if (!cc->https)
        log_event(c->env->lg, LOG_WARN, "conn.plain_http", &x,
                  "%s is plain http: task values and the Batch User password travel "
                  "unencrypted; use https in production",
                  cc->url);
}

/* ------------------------------------------------------------ the password */

/* A load of the Batch User's secret, for the user the connection had then. */
struct secret_req {
    struct conn *c;
    unsigned gen;
};

static void on_secret(void *ud, const char *key_id, const unsigned char *sealed, size_t len,
                      const char *err)
{
    struct secret_req *rq = ud;
    struct conn *c = rq->c;
    bool stale = rq->gen != c->cred_gen; /* the connection's user changed since */
    free(rq);
    if (tearing_down(c) || stale)
        return; /* a stale answer leaves the flags to the current user's load */
    c->secret_pending = false;
    if (c->secret_again) {
        /* Asked again while this one was on its way: this answer may predate
         * the change. One more read covers any number of notifications. */
        c->secret_again = false;
        conn_load_secret(c);
    }
    struct log_ctx x = cctx(c);
    if (err) {
        log_event(c->env->lg, LOG_WARN, "secret.load_failed", &x, "%s", err);
        return;
    }
    if (!c->cl)
        return; /* no client was ever installed: nothing logs on */
    struct cred *cr = c->cl->cred;
    free(cr->sealed);
    cr->sealed = NULL;
    cr->sealed_len = 0;
    cr->loaded = true;
    if (!key_id) {
        log_event(c->env->lg, LOG_WARN, "secret.missing", &x,
                  "no password stored for Batch User '%s'", c->cfg->batch_user);
        return;
    }
    cr->sealed = malloc(len ? len : 1);
    if (!cr->sealed)
        return;
    memcpy(cr->sealed, sealed, len);
    cr->sealed_len = len;
    snprintf(cr->key_id, sizeof cr->key_id, "%s", key_id);
}

/* Coalesced: at most one load for the current user in flight and one more
 * pending, however many notifications ask (anyone may send them). */
void conn_load_secret(struct conn *c)
{
    if (c->secret_pending && c->secret_gen == c->cred_gen) {
        c->secret_again = true;
        return;
    }
    struct secret_req *rq = malloc(sizeof *rq);
    if (!rq)
        return; /* the next reconnect or change notice loads it */
    rq->c = c;
    rq->gen = c->cred_gen;
    if (store_batch_user_secret(c->env->pc, c->cfg->batch_user, on_secret, rq)) {
        free(rq);
    } else {
        c->secret_pending = true;
        c->secret_gen = c->cred_gen;
        c->secret_again = false;
    }
}

void conn_need_secret(struct conn *c)
{
    if (!c->secret_pending)
        conn_load_secret(c);
}

/* ------------------------------------------------------------ Full Comm */

const char *conn_comm_name(enum job_comm comm)
{
    switch (comm) {
    case JOB_COMM_ENABLED:
        return "enabled";
    case JOB_COMM_LIMITED:
        return "limited";
    case JOB_COMM_DISABLED:
        return "disabled";
    default:
        return "unknown";
    }
}

enum job_comm conn_comm(const struct conn *c) { return c->comm; }

bool conn_comm_apply(struct conn *c, const char *value, int64_t now)
{
    enum job_comm before = c->comm;
    /* Any value but the two that let calls go stops them: the safe reading. */
    c->comm = !value                      ? JOB_COMM_UNKNOWN
              : !strcmp(value, "enabled") ? JOB_COMM_ENABLED
              : !strcmp(value, "limited") ? JOB_COMM_LIMITED
                                          : JOB_COMM_DISABLED;
    if (c->comm == before)
        return false;
    /* The server may have been silent for as long as comm was off: what it
     * offers is asked again before anything relies on it. */
    if (c->comm != JOB_COMM_DISABLED)
        c->next_heartbeat = now;
    return true;
}

/* Full Comm changed (or became known): the engine wakes the jobs it parked. */
static void on_comm(void *ud, const char *value, const char *err)
{
    struct conn *c = ud;
    c->comm_loading = false;
    if (tearing_down(c))
        return;
    if (c->comm_again) {
        c->comm_again = false;
        conn_load_comm(c); /* this answer may predate the change asked about */
    }
    if (err)
        return; /* the next reconnect reads it again */
    if (!conn_comm_apply(c, value, now_ms()))
        return;
    conn_publish(c);
    struct log_ctx x = cctx(c);
    log_event(c->env->lg, LOG_INFO, "conn.comm", &x, "%s",
              c->comm == JOB_COMM_ENABLED   ? "Full Comm enabled: jobs start"
              : c->comm == JOB_COMM_LIMITED ? "limited: no new starts, running jobs are followed"
                                            : "disabled: nothing is sent to the server");
    if (c->env->comm_changed)
        c->env->comm_changed(c->ud);
}

/* Coalesced like conn_load_secret(): one read in flight, one more pending. */
void conn_load_comm(struct conn *c)
{
    if (c->comm_loading) {
        c->comm_again = true;
        return;
    }
    c->comm_loading = !store_comm_state(c->env->pc, c->cfg->name, on_comm, c);
}

/* ------------------------------------------------------------ heartbeat */

bool conn_heartbeat_due(const struct conn *c, int64_t now)
{
    return now >= c->next_heartbeat && !c->heartbeat_busy && conn_amt(c) &&
           c->comm != JOB_COMM_DISABLED && c->comm != JOB_COMM_UNKNOWN &&
           !(c->removed && !c->njobs);
}

int64_t conn_next_heartbeat(const struct conn *c) { return c->next_heartbeat; }

bool conn_heartbeat_apply(struct conn *c, const struct amt_reply *r, int64_t now)
{
    if (r->status == AMT_OK) {
        bool news = !c->features_known || c->monitor_jobs != r->monitor_jobs ||
                    c->idempotent != r->idempotent_start;
        c->monitor_jobs = r->monitor_jobs;
        c->idempotent = r->idempotent_start;
        c->features_known = true;
        c->server_up = 1;
        return news;
    }
    c->server_up = 0;
    if (!c->features_known) {
        c->heartbeat_failed = true;
        c->next_heartbeat = now + FEATURES_RETRY_MS; /* features are needed soon */
    }
    return false;
}

static void on_status_written(void *ud, const char *err)
{
    (void)ud;
    (void)err; /* informative: written again at the next heartbeat */
}

static void on_heartbeat(void *ud, const struct amt_reply *r)
{
    struct conn *c = ud;
    c->heartbeat_busy = false;
    if (r->status == AMT_ERR_CANCELLED)
        return;
    struct log_ctx x = cctx(c);
    bool news = conn_heartbeat_apply(c, r, now_ms());
    if (news)
        log_event(c->env->lg, LOG_INFO, "conn.features", &x, "AMT %s; MonitorJobs %s; Start %s",
                  r->amt_version ? r->amt_version : "?",
                  r->monitor_jobs ? "offered (jobs are followed in bulk)" : "not offered",
                  r->idempotent_start ? "idempotent per taskId"
                                      : "NOT idempotent (a Start in doubt is never repeated)");
    conn_publish(c);
    if (r->status == AMT_OK) {
        store_connection_checked(c->env->pc, c->cfg->name, true, r->amt_version, NULL,
                                 on_status_written, NULL);
    } else {
        store_connection_checked(c->env->pc, c->cfg->name, false, NULL, r->error,
                                 on_status_written, NULL);
        log_event(c->env->lg, LOG_WARN, "conn.heartbeat_failed", &x, "%s", r->error);
    }
}

void conn_heartbeat(struct conn *c, int64_t now, int64_t interval_ms)
{
    if (!conn_heartbeat_due(c, now))
        return;
    c->heartbeat_busy = !amt_heartbeat(c->cl->amt, on_heartbeat, c);
    c->next_heartbeat = now + interval_ms;
}

bool conn_server_answers(const struct conn *c) { return c->server_up != 0; }

bool conn_start_idempotent(const struct conn *c) { return c->features_known && c->idempotent; }
bool conn_monitor_jobs(const struct conn *c) { return c->monitor_jobs; }

/* ------------------------------------------------------------ the rules' view */

struct job_limits conn_limits(const struct conn *c)
{
    const struct amtacs_connection *cc = c->cfg;
    struct job_limits l = {
        .start_attempts = cc->start_retry.attempts, .start_backoff = cc->start_retry.backoff,
        .start_delay_ms = cc->start_retry.delay_ms,
        .start_max_delay_ms = cc->start_retry.max_delay_ms,
        .poll_interval_ms = cc->poll.interval_ms,
        .poll_initial_delay_ms = cc->poll.initial_delay_ms,
        .poll_max_interval_ms = cc->poll.max_interval_ms, .poll_backoff = cc->poll.backoff,
        .allow_kill = cc->allow_kill,
    };
    return l;
}

struct job_view conn_view(const struct conn *c, int64_t now)
{
    struct job_view v = {
        .lease_holds = true, .features_known = c->features_known,
        .heartbeat_failed = c->heartbeat_failed, .idempotent = c->idempotent,
        .password_loaded = c->cl && c->cl->cred->loaded, .now_ms = now,
    };
    return v;
}

/* ------------------------------------------------------------ jobs in flight */

void conn_job_added(struct conn *c) { c->njobs++; }
void conn_job_removed(struct conn *c)
{
    if (c->njobs)
        c->njobs--;
}
size_t conn_in_flight(const struct conn *c) { return c->njobs; }

long conn_room(const struct conn *c, long batch)
{
    long room = c->cfg->max_in_flight - (long)c->njobs;
    if (room <= 0)
        return 0;
    return room > batch ? batch : room;
}

/* ------------------------------------------------------------ status checks */

/* One MonitorJobs call in flight: the jobs it asks about, and their ids
 * (the call's body is made from them). */
struct batch {
    struct conn *c;
    size_t n;
    int *brids;   /* n, after jobs[] in the same block */
    void *jobs[];
};

static int cmp_job_id(const void *a, const void *b)
{
    const struct amt_job *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

void conn_checks_answered(struct conn *c, void *const *jobs, const int *brids, size_t n,
                          const struct amt_reply *r)
{
    /* A sorted copy keeps matching linear-logarithmic in the jobs of a call. */
    struct amt_job *sorted = NULL;
    if (r->status == AMT_OK && r->njobs) {
        sorted = malloc(r->njobs * sizeof *sorted);
        if (sorted) {
            memcpy(sorted, r->jobs, r->njobs * sizeof *sorted);
            qsort(sorted, r->njobs, sizeof *sorted, cmp_job_id);
        }
    }
    if (r->status == AMT_ERR_REJECTED && (r->http_status == 404 || r->http_status == 405))
        c->monitor_jobs = false; /* the server stopped offering it: one call per job */
    for (size_t i = 0; i < n; i++) {
        struct conn_check ck = {.r = r};
        if (r->status == AMT_OK) {
            struct amt_job key = {.id = brids[i]};
            ck.found = sorted ? bsearch(&key, sorted, r->njobs, sizeof *sorted, cmp_job_id)
                              : NULL;
            if (!ck.found) {
                /* Not in the answer: unknown when the server says so, or when it
                 * answered nothing at all (or no memory was left to look). */
                bool listed = false;
                for (size_t k = 0; k < r->nunknown; k++)
                    if (r->unknown[k] == brids[i])
                        listed = true;
                ck.unknown = listed || !sorted;
            }
        }
        c->env->checked(jobs[i], &ck);
    }
    free(sorted);
}

static void on_monitor_many(void *ud, const struct amt_reply *r)
{
    struct batch *b = ud;
    conn_checks_answered(b->c, b->jobs, b->brids, b->n, r);
    free(b);
}

int conn_queue_check(struct conn *c, int brid, void *job)
{
    if (c->nchecks == c->capchecks) {
        size_t ncap = c->capchecks ? c->capchecks * 2 : 64;
        struct check *n = realloc(c->checks, ncap * sizeof *n);
        if (!n)
            return -1;
        c->checks = n;
        c->capchecks = ncap;
    }
    c->checks[c->nchecks].job = job;
    c->checks[c->nchecks].brid = brid;
    c->nchecks++;
    return 0;
}

void conn_flush_checks(struct conn *c)
{
    if (!c->nchecks || !conn_amt(c))
        return;
    size_t done = 0;
    while (done < c->nchecks) {
        size_t n = c->nchecks - done > MONITOR_BATCH ? MONITOR_BATCH : c->nchecks - done;
        struct batch *b = malloc(sizeof *b + n * (sizeof b->jobs[0] + sizeof b->brids[0]));
        if (!b)
            break;
        b->c = c;
        b->n = n;
        b->brids = (int *)(void *)(b->jobs + n);
        for (size_t i = 0; i < n; i++) {
            b->jobs[i] = c->checks[done + i].job;
            b->brids[i] = c->checks[done + i].brid;
        }
        /* The ids are copied into the body at once; the callback may run
         * (and free b) before this returns. */
        if (amt_monitor_many(c->cl->amt, b->brids, n, on_monitor_many, b)) {
            free(b);
            break;
        }
        done += n;
    }
    /* Whatever could not be sent is tried again shortly. */
    for (size_t i = done; i < c->nchecks; i++)
        c->env->not_sent(c->checks[i].job);
    c->nchecks = 0;
}

/* ------------------------------------------------------------ the gauges, the database */

/* At once on a change of state, and every so often for the jobs in flight. */
void conn_publish(const struct conn *c)
{
    metrics_conn_state(c->mc, conn_comm_name(c->comm), c->server_up, (long)c->njobs,
                       !c->removed);
}

static void on_registered(void *ud, const char *err)
{
    struct conn *c = ud;
    if (err && !tearing_down(c)) {
        struct log_ctx x = cctx(c);
        log_event(c->env->lg, LOG_ERROR, "conn.register_failed", &x, "%s", err);
    }
}

void conn_configure(struct conn *c, bool fresh)
{
    const struct amtacs_connection *cc = c->cfg;
    store_configure_connection(c->env->pc, cc->name, cc->url, cc->batch_user, cc->allow_kill,
                               cc->retain_log_days, cc->failover_after_ms, on_registered, c);
    if (fresh) {
        conn_load_comm(c);
        conn_load_secret(c);
    }
}
