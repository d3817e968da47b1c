#include "amtacs/store.h"

#include "amtacs/buf.h"
#include "amtacs/text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char store_row_busy[] = "the job's row is locked by another session";

/* Each statement's context: the typed callback and its argument. */
struct call {
    void (*fn)(void);
    void *ud;
};

static struct call *call_new(void (*fn)(void), void *ud)
{
    struct call *c = malloc(sizeof *c);
    if (c) {
        c->fn = fn;
        c->ud = ud;
    }
    return c;
}

static int run_queued(struct pgconn *pc, bool urgent, const char *sql, int n,
                      const char *const *params, pgconn_result_cb on_result, void (*fn)(void),
                      void *ud)
{
    struct call *c = call_new(fn, ud);
    if (!c)
        return -1;
    if ((urgent ? pgconn_query_urgent : pgconn_query)(pc, sql, n, params, on_result, c)) {
        free(c);
        return -1;
    }
    return 0;
}

static int run(struct pgconn *pc, const char *sql, int n, const char *const *params,
               pgconn_result_cb on_result, void (*fn)(void), void *ud)
{
    return run_queued(pc, false, sql, n, params, on_result, fn, ud);
}

static const char *val(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* ------------------------------------------------------------ done */

static void on_done(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    (void)res;
    ((store_done_cb)c->fn)(c->ud, err);
    free(c);
}

int store_configure_connection(struct pgconn *pc, const char *name, const char *url,
                               const char *batch_user, bool allow_kill, long retain_log_days,
                               long failover_after_ms, store_done_cb cb, void *ud)
{
    char days[24], failover[24];
    snprintf(days, sizeof days, "%ld", retain_log_days);
    snprintf(failover, sizeof failover, "%ld", failover_after_ms);
    const char *p[] = {name, url, batch_user, allow_kill ? "t" : "f", days, failover};
    return run(pc, "SELECT acs.configure_connection($1, $2, $3, $4::boolean, $5::int, $6::int)",
               6, p, on_done, (void (*)(void))cb, ud);
}

static void on_text(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    const char *v = !err && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0)
                                                                            : NULL;
    ((store_text_cb)c->fn)(c->ud, v, err);
    free(c);
}

int store_comm_state(struct pgconn *pc, const char *name, store_text_cb cb, void *ud)
{
    const char *p[] = {name};
    return run(pc, "SELECT comm_state FROM acs.connections WHERE name = $1", 1, p, on_text,
               (void (*)(void))cb, ud);
}

int store_connection_checked(struct pgconn *pc, const char *name, bool ok,
                             const char *amt_version, const char *error, store_done_cb cb,
                             void *ud)
{
    const char *p[] = {name, ok ? "t" : "f", amt_version, error};
    return run(pc, "SELECT acs.connection_checked($1, $2::boolean, $3, $4)", 4, p, on_done,
               (void (*)(void))cb, ud);
}

static void on_count(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    long n = !err && PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    ((store_count_cb)c->fn)(c->ud, n, err);
    free(c);
}

int store_purge(struct pgconn *pc, int max_rows, store_count_cb cb, void *ud)
{
    char n[16];
    snprintf(n, sizeof n, "%d", max_rows);
    const char *p[] = {n};
    return run(pc, "SELECT acs.purge_job_logs($1::int)", 1, p, on_count, (void (*)(void))cb, ud);
}

int store_release(struct pgconn *pc, const char *owner, store_done_cb cb, void *ud)
{
    const char *p[] = {owner};
    return run(pc, "SELECT acs.release_jobs($1)", 1, p, on_done, (void (*)(void))cb, ud);
}

/* ------------------------------------------------------------ claim */

static void on_claim(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    store_claim_cb cb = (store_claim_cb)c->fn;
    if (err) {
        cb(c->ud, NULL, 0, err);
        free(c);
        return;
    }
    int n = PQntuples(res);
    struct store_job *jobs = calloc(n > 0 ? (size_t)n : 1, sizeof *jobs);
    cJSON **parsed = calloc(n > 0 ? (size_t)n : 1, sizeof *parsed);
    const char ***values = calloc(n > 0 ? (size_t)n : 1, sizeof *values);
    const char *bad = NULL;
    if (!jobs || !parsed || !values)
        bad = "out of memory";
    for (int i = 0; !bad && i < n; i++) {
        struct store_job *j = &jobs[i];
        j->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        j->attempt = (int)strtol(PQgetvalue(res, i, 1), NULL, 10);
        j->running = !strcmp(PQgetvalue(res, i, 2), "running");
        j->spec.kind = jobspec_kind_of(PQgetvalue(res, i, 3));
        j->spec.application = val(res, i, 4);
        j->spec.amt_user = val(res, i, 5);
        j->spec.queue_name = val(res, i, 6);
        j->spec.name = val(res, i, j->spec.kind == JOBSPEC_SCRIPT ? 8 : 7);
        j->task_id = val(res, i, 10);
        j->batch_request_id = val(res, i, 11) ? (int)strtol(val(res, i, 11), NULL, 10) : 0;
        j->kill_requested = !strcmp(PQgetvalue(res, i, 12), "t");
        j->taken_over = !strcmp(PQgetvalue(res, i, 13), "t");
        j->kill_requested_by = PQnfields(res) > 14 ? val(res, i, 14) : NULL;
        j->tried = PQnfields(res) > 15 ? val(res, i, 15) : NULL;
        j->failover = PQnfields(res) > 16 && !strcmp(PQgetvalue(res, i, 16), "t");
        const char *pj = val(res, i, 9);
        parsed[i] = cJSON_Parse(pj ? pj : "[]");
        if (!cJSON_IsArray(parsed[i]) && !cJSON_IsNull(parsed[i])) {
            bad = "claim returned unreadable parameters";
            break;
        }
        int nv = cJSON_IsArray(parsed[i]) ? cJSON_GetArraySize(parsed[i]) : 0;
        values[i] = calloc(nv > 0 ? (size_t)nv : 1, sizeof *values[i]);
        if (!values[i]) {
            bad = "out of memory";
            break;
        }
        const cJSON *it;
        size_t k = 0;
        if (nv > 0) {
            cJSON_ArrayForEach(it, parsed[i])
            {
                values[i][k++] = cJSON_IsString(it) ? it->valuestring : "";
            }
        }
        j->spec.values = values[i];
        j->spec.nvalues = k;
    }
    cb(c->ud, bad ? NULL : jobs, bad ? 0 : (size_t)n, bad);
    for (int i = 0; i < n; i++) {
        if (parsed)
            cJSON_Delete(parsed[i]);
        if (values)
            free(values[i]);
    }
    free(parsed);
    free(values);
    free(jobs);
    free(c);
}

int store_claim(struct pgconn *pc, const char *owner, const char *connection, int max_jobs,
                int lease_seconds, bool take_over, bool server_answers, store_claim_cb cb,
                void *ud)
{
    char max[16], lease[16];
    snprintf(max, sizeof max, "%d", max_jobs);
    snprintf(lease, sizeof lease, "%d", lease_seconds);
    const char *p[] = {owner, connection, max, lease, take_over ? "true" : "false",
                       server_answers ? "true" : "false"};
    return run(pc,
               "SELECT id, attempt, state, kind, application, amt_user, queue_name, job_name, "
               "script_name, params, task_id, batch_request_id, kill_requested, taken_over, "
               "kill_requested_by, tried, failover "
               "FROM acs.claim_jobs($1, $2, $3::int, $4::int, $5::boolean, $6::boolean)",
               6, p, on_claim, (void (*)(void))cb, ud);
}

/* ------------------------------------------------------------ renew */

/* A list of ids (kills_pending). */
static void on_ids(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    store_lost_cb cb = (store_lost_cb)c->fn;
    if (err) {
        cb(c->ud, NULL, 0, err);
        free(c);
        return;
    }
    int n = PQntuples(res);
    long long *ids = calloc(n > 0 ? (size_t)n : 1, sizeof *ids);
    if (!ids) {
        cb(c->ud, NULL, 0, "out of memory");
        free(c);
        return;
    }
    for (int i = 0; i < n; i++)
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    cb(c->ud, ids, (size_t)n, NULL);
    free(ids);
    free(c);
}

/* (id, busy) rows: the jobs not renewed, split into lost and busy. */
static void on_renew(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    store_renew_cb cb = (store_renew_cb)c->fn;
    if (err) {
        cb(c->ud, NULL, 0, NULL, 0, err);
        free(c);
        return;
    }
    int n = PQntuples(res);
    long long *v = calloc(n > 0 ? (size_t)n : 1, sizeof *v);
    if (!v) {
        cb(c->ud, NULL, 0, NULL, 0, "out of memory");
        free(c);
        return;
    }
    /* lost ones fill v from the front, busy ones from the back */
    size_t nlost = 0, nbusy = 0;
    for (int i = 0; i < n; i++) {
        long long id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (!strcmp(PQgetvalue(res, i, 1), "t"))
            v[(size_t)n - ++nbusy] = id;
        else
            v[nlost++] = id;
    }
    cb(c->ud, v, nlost, v + (size_t)n - nbusy, nbusy, NULL);
    free(v);
    free(c);
}

/* "{1,2,3}" for n numbers; NULL when out of memory. */
static char *array_literal(const long long *ll, const int *ii, size_t n)
{
    size_t cap = 2 + n * 22;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, i ? ",%lld" : "%lld",
                                ll ? ll[i] : (long long)ii[i]);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

int store_renew(struct pgconn *pc, const char *owner, const long long *ids, const int *attempts,
                size_t n, int lease_seconds, store_renew_cb cb, void *ud)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%d", lease_seconds);
    char *a = array_literal(ids, NULL, n), *b = array_literal(NULL, attempts, n);
    int rc = -1;
    if (a && b) {
        const char *p[] = {owner, a, b, lease};
        /* ahead of the statements waiting: a backlog of big batches on a
         * loaded machine must not let our own leases run out */
        rc = run_queued(pc, true,
                        "SELECT id, busy FROM acs.leases_renew($1, $2::bigint[], $3::int[], $4::int)",
                        4, p, on_renew, (void (*)(void))cb, ud);
    }
    free(a);
    free(b);
    return rc;
}

int store_kills_pending(struct pgconn *pc, const char *owner, bool urgent, store_lost_cb cb,
                        void *ud)
{
    const char *p[] = {owner};
    return run_queued(pc, urgent, "SELECT acs.kills_pending($1)", 1, p, on_ids,
                      (void (*)(void))cb, ud);
}

/* ------------------------------------------------------------ bool */

static void on_bool(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    bool held = !err && PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
    ((store_bool_cb)c->fn)(c->ud, held, err);
    free(c);
}

int store_register(struct pgconn *pc, const char *owner, store_bool_cb cb, void *ud)
{
    const char *p[] = {owner};
    return run(pc, "SELECT acs.daemon_register($1)", 1, p, on_bool, (void (*)(void))cb, ud);
}

int store_takeover_due(struct pgconn *pc, const char *owner, const char *const *connections,
                       size_t n, store_bool_cb cb, void *ud)
{
    struct buf b;
    buf_init(&b, 0);
    bool bad = buf_putc(&b, '[');
    for (size_t i = 0; !bad && i < n; i++)
        bad = (i && buf_putc(&b, ',')) ||
              text_json_quote(&b, connections[i], strlen(connections[i]));
    if (!bad)
        bad = buf_putc(&b, ']');
    int rc = -1;
    if (!bad) {
        const char *p[] = {owner, b.data};
        rc = run(pc, "SELECT acs.takeover_due($1, ARRAY(SELECT json_array_elements_text($2::json)))",
                 2, p, on_bool, (void (*)(void))cb, ud);
    }
    buf_free(&b);
    return rc;
}

int store_in_doubt(struct pgconn *pc, long long id, const char *owner, int attempt,
                   const char *reason, store_bool_cb cb, void *ud)
{
    char sid[24], sat[16];
    snprintf(sid, sizeof sid, "%lld", id);
    snprintf(sat, sizeof sat, "%d", attempt);
    const char *p[] = {sid, owner, sat, reason};
    return run(pc, "SELECT acs.job_in_doubt($1::bigint, $2, $3::int, $4)", 4, p, on_bool,
               (void (*)(void))cb, ud);
}

int store_add_messages(struct pgconn *pc, long long id, const char *owner, int attempt,
                       const char *json, store_done_cb cb, void *ud)
{
    char sid[24], sat[16];
    snprintf(sid, sizeof sid, "%lld", id);
    snprintf(sat, sizeof sat, "%d", attempt);
    const char *p[] = {sid, owner, sat, json};
    return run(pc, "SELECT acs.job_add_messages($1::bigint, $2, $3::int, $4::json)", 4, p,
               on_done, (void (*)(void))cb, ud);
}

int store_kill_outcome(struct pgconn *pc, long long id, const char *owner, int attempt,
                       const char *error, store_bool_cb cb, void *ud)
{
    char sid[24], sat[16];
    snprintf(sid, sizeof sid, "%lld", id);
    snprintf(sat, sizeof sat, "%d", attempt);
    const char *p[] = {sid, owner, sat, error};
    return run(pc, "SELECT acs.job_kill_outcome($1::bigint, $2, $3::int, $4)", 4, p, on_bool,
               (void (*)(void))cb, ud);
}

/* ------------------------------------------------------------ secrets */

static void on_secret(void *ud, const PGresult *res, const char *err)
{
    struct call *c = ud;
    store_secret_cb cb = (store_secret_cb)c->fn;
    if (err || PQntuples(res) == 0) {
        cb(c->ud, NULL, NULL, 0, err);
        free(c);
        return;
    }
    size_t len = 0;
    unsigned char *sealed = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1), &len);
    if (!sealed)
        cb(c->ud, NULL, NULL, 0, "out of memory");
    else
        cb(c->ud, PQgetvalue(res, 0, 0), sealed, len, NULL);
    PQfreemem(sealed);
    free(c);
}

int store_batch_user_secret(struct pgconn *pc, const char *name, store_secret_cb cb, void *ud)
{
    const char *p[] = {name};
    return run(pc, "SELECT key_id, sealed_password FROM acs.batch_user_secret($1)", 1, p,
               on_secret, (void (*)(void))cb, ud);
}

/* ------------------------------------------------------------ batches */

#define BATCH_MAX_BYTES ((size_t)32 << 20)

struct item {
    long long id;
    void (*fn)(void);
    void *ud;
};

/* Items of one kind: those collected, or those of one statement in flight. */
struct items {
    struct item *v;
    size_t n, cap;
    struct buf json; /* the items as a JSON array, without the closing bracket */
};

/* The kinds of hot write, in the order a flush sends them: a job's start
 * and progress are written before its end when all three fall in one turn. */
/* K_UNREACHABLE: the finish of a job whose Start never left (Integration
 * Selection: it may go to its next listed connection), in a statement of its own. */
enum kind { K_STARTED, K_PROGRESS, K_FINISH, K_UNREACHABLE, K_COUNT };

static const struct {
    const char *num_key; /* the item's number: "batch_request_id" or "code" */
    const char *sql;
} kinds[K_COUNT] = {
    [K_STARTED] = {"batch_request_id", "SELECT id, held FROM acs.jobs_started($1, $2::json)"},
    [K_PROGRESS] = {"code", "SELECT id, held FROM acs.jobs_progress($1, $2::json)"},
    [K_FINISH] = {"code", "SELECT id, outcome FROM acs.jobs_finish($1, $2::json)"},
    [K_UNREACHABLE] = {"code", "SELECT id, outcome FROM acs.jobs_finish_unreachable($1, $2::json)"},
};

struct store_batch {
    char *owner;
    struct items items[K_COUNT];
};

struct flight {
    struct items items;
    enum kind kind;
};

static void items_free(struct items *it)
{
    free(it->v);
    buf_free(&it->json);
    memset(it, 0, sizeof *it);
}

static int items_add(struct items *it, long long id, void (*fn)(void), void *ud)
{
    if (it->n == it->cap) {
        size_t ncap = it->cap ? it->cap * 2 : 64;
        struct item *v = realloc(it->v, ncap * sizeof *v);
        if (!v)
            return -1;
        it->v = v;
        it->cap = ncap;
    }
    it->v[it->n++] = (struct item){id, fn, ud};
    return 0;
}

struct store_batch *store_batch_new(const char *owner)
{
    struct store_batch *b = calloc(1, sizeof *b);
    if (!b || !(b->owner = strdup(owner))) {
        free(b);
        return NULL;
    }
    buf_init(&b->items[K_STARTED].json, BATCH_MAX_BYTES + 1024);
    buf_init(&b->items[K_PROGRESS].json, BATCH_MAX_BYTES + 1024);
    buf_init(&b->items[K_FINISH].json, BATCH_MAX_BYTES + ((size_t)300 << 20));
    buf_init(&b->items[K_UNREACHABLE].json, BATCH_MAX_BYTES + ((size_t)300 << 20));
    return b;
}

/* One item's outcome: for a finish, outcome or error; else held or error. */
static void item_done(const struct item *v, enum kind kind, bool held, const char *outcome,
                      const char *err)
{
    if (kind == K_FINISH || kind == K_UNREACHABLE)
        ((store_finish_cb)v->fn)(v->ud, err ? NULL : outcome, err);
    else
        ((store_bool_cb)v->fn)(v->ud, !err && held, err);
}

static void fail_items(struct items *it, enum kind kind, const char *why)
{
    for (size_t i = 0; i < it->n; i++)
        item_done(&it->v[i], kind, false, NULL, why);
}

void store_batch_free(struct store_batch *b)
{
    if (!b)
        return;
    for (int k = 0; k < K_COUNT; k++) {
        fail_items(&b->items[k], (enum kind)k, "shutting down");
        items_free(&b->items[k]);
    }
    free(b->owner);
    free(b);
}

size_t store_batch_pending(const struct store_batch *b)
{
    size_t n = 0;
    for (int k = 0; k < K_COUNT; k++)
        n += b->items[k].n;
    return n;
}

/* Starts or continues the JSON array; rolls back on failure. */
static int json_item(struct items *it, enum kind kind, long long id, int attempt, int num,
                     const char *error, const char *log)
{
    size_t mark = it->json.len;
    bool bad = buf_puts(&it->json, it->n ? "," : "[") ||
               buf_printf(&it->json, "{\"id\":%lld,\"attempt\":%d,\"%s\":%d", id, attempt,
                          kinds[kind].num_key, num);
    if (!bad && (kind == K_FINISH || kind == K_UNREACHABLE)) {
        bad = buf_puts(&it->json, ",\"error\":");
        if (!bad)
            bad = error ? text_json_quote(&it->json, error, strlen(error))
                        : buf_puts(&it->json, "null");
        if (!bad)
            bad = buf_puts(&it->json, ",\"log\":") || text_json_quote(&it->json, log, strlen(log));
    }
    if (!bad)
        bad = buf_putc(&it->json, '}');
    if (bad) {
        it->json.len = mark;
        if (it->json.data)
            it->json.data[mark] = '\0';
        return -1;
    }
    return 0;
}

static int batch_add(struct store_batch *b, enum kind kind, long long id, int attempt, int num,
                     const char *error, const char *log, void (*fn)(void), void *ud)
{
    struct items *it = &b->items[kind];
    if (json_item(it, kind, id, attempt, num, error, log))
        return -1;
    return items_add(it, id, fn, ud);
}

int store_batch_started(struct store_batch *b, long long id, int attempt, int batch_request_id,
                        store_bool_cb cb, void *ud)
{
    return batch_add(b, K_STARTED, id, attempt, batch_request_id, NULL, NULL,
                     (void (*)(void))cb, ud);
}

int store_batch_progress(struct store_batch *b, long long id, int attempt, int code,
                         store_bool_cb cb, void *ud)
{
    return batch_add(b, K_PROGRESS, id, attempt, code, NULL, NULL, (void (*)(void))cb, ud);
}

int store_batch_finish(struct store_batch *b, long long id, int attempt, int code,
                       const char *error, const char *log, bool unreachable, store_finish_cb cb,
                       void *ud)
{
    return batch_add(b, unreachable ? K_UNREACHABLE : K_FINISH, id, attempt, code, error, log,
                     (void (*)(void))cb, ud);
}

static void on_flight(void *ud, const PGresult *res, const char *err)
{
    struct flight *f = ud;
    struct items *it = &f->items;
    if (err || (size_t)PQntuples(res) != it->n) {
        fail_items(it, f->kind, err ? err : "batch answer does not match its items");
    } else {
        /* The functions answer item by item, in the order given. */
        for (size_t i = 0; i < it->n; i++) {
            const char *v = PQgetvalue(res, (int)i, 1);
            if (strtoll(PQgetvalue(res, (int)i, 0), NULL, 10) != it->v[i].id)
                item_done(&it->v[i], f->kind, false, NULL, "batch answer out of order");
            else if (f->kind >= K_FINISH && !strncmp(v, "error: ", 7))
                item_done(&it->v[i], f->kind, false, NULL, v);
            else if (f->kind >= K_FINISH ? !strcmp(v, "busy") : PQgetisnull(res, (int)i, 1))
                item_done(&it->v[i], f->kind, false, NULL, store_row_busy);
            else
                item_done(&it->v[i], f->kind, !strcmp(v, "t"), v, NULL);
        }
    }
    items_free(it);
    free(f);
}

static int flush_kind(struct store_batch *b, struct pgconn *pc, enum kind kind)
{
    struct items *it = &b->items[kind];
    if (!it->n)
        return 0;
    if (buf_putc(&it->json, ']'))
        return -1;
    struct flight *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->items = *it;
    f->kind = kind;
    const char *p[] = {b->owner, f->items.json.data};
    if (pgconn_query(pc, kinds[kind].sql, 2, p, on_flight, f)) {
        *it = f->items;
        it->json.len--; /* the closing bracket again */
        it->json.data[it->json.len] = '\0';
        free(f);
        return -1;
    }
    /* The items now belong to the flight; start a fresh collection. */
    size_t max = it->json.max;
    memset(it, 0, sizeof *it);
    buf_init(&it->json, max);
    return 0;
}

int store_batch_flush(struct store_batch *b, struct pgconn *pc)
{
    int rc = 0;
    for (int k = 0; k < K_COUNT; k++)
        if (flush_kind(b, pc, (enum kind)k))
            rc = -1;
    return rc;
}
