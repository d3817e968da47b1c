/* sim_world: requests, queues, controller, messages, users, tokens, counters. */
#include "sim_world.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "amtacs/buf.h"
#include "amtacs/codes.h"
#include "sim_util.h"

#define NO_TIME INT64_MAX
#define POLL_EVENT UINT32_MAX
#define MAX_PARAMS 20
#define MAX_MONITOR_IDS 10000
#define MSG_LIMIT_DEFAULT 100
#define MSG_LIMIT_MAX 1000
#define TOKEN_BYTES 32

enum req_phase {
    PH_PENDING,  /* waiting for admission: shows 20 (window closed) or 1 */
    PH_WAITS,    /* in the job's timed waits; step indexes them */
    PH_RUN,      /* running; step indexes the timeline */
    PH_CHILDREN, /* own run over: 15 WAIT FOR JOB until the children end */
    PH_PARKED,   /* an operator forced a non-final state: frozen there */
    PH_ENDED,    /* final code reached */
};

struct change {
    int code;
    int64_t at;
};

struct request {
    long id;
    char *task_id; /* NULL for children */
    const struct sim_app_def *app;
    const struct sim_job_def *job; /* NULL for a script that is not in the catalog */
    enum sim_job_kind kind;
    char *name;        /* jobName or scriptName as sent */
    char *amt_user;    /* as sent; NULL if absent or empty */
    char *submit_user;
    char *station;
    char *queue_sent;  /* amtQueueName as sent; NULL if absent */
    size_t queue;      /* index into world->queues (the last one = no queue) */
    char **params;
    size_t nparams;
    int code;
    enum req_phase phase;
    uint32_t gen;      /* bumped whenever pending events must be ignored */
    size_t step;
    int64_t run_start;
    int64_t created_at;
    int64_t ended_at;
    bool holds_slot;
    uint32_t parent;   /* index, or UINT32_MAX */
    uint32_t *children;
    size_t nchildren, capchildren;
    size_t live_children;
    uint32_t *msgs;    /* indices into world->msgs: own and descendants' */
    size_t nmsgs, capmsgs;
    struct change *hist; /* every code it showed, for /sim/requests */
    size_t nhist, caphist;
    long start_calls;
    int64_t start_real_us; /* real (not simulated) time the first Start arrived: */
    int64_t kill_real_us;  /* and the first Kill -- for latency benchmarks */
};

/* Real wall-clock microseconds, comparable with other processes' clocks. */
static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct msg {
    int64_t at;
    uint32_t writer;
    char *text;
};

struct queue_rt {
    const struct sim_queue_def *def; /* NULL: requests without a queue */
    uint32_t *pending;               /* FIFO of request indices; dead entries skipped */
    size_t head, len, cap;
    long running;
};

struct api_user {
    char *name;
    char *password;
};

static const char *const route_names[] = {
    "heartbeat", "logon", "start", "kill", "stop", "monitor", "monitor_jobs", "messages",
    "other",
};
#define NROUTES (sizeof(route_names) / sizeof(route_names[0]))

struct counters {
    long logons, logon_failures, token_failures;
    long start_calls, requests_created, duplicate_starts, kills, forced_states;
    long faults_injected;
    long connections;
    long routes[NROUTES];
};

struct sim_world {
    pthread_mutex_t lock;
    const struct sim_catalog *cat;
    double scale;
    int64_t real0_us;  /* monotonic clock at creation */
    double tod0;       /* simulated time of day at creation, seconds */
    int64_t epoch0_us; /* simulated wall clock at creation (Unix microseconds) */
    long token_lifetime_s;
    bool monitor_jobs;
    bool idempotent_start; /* a repeated taskId returns its request (else: a new one) */

    struct request **req;
    size_t nreq, capreq;
    struct sim_map *tasks;  /* taskId -> request index */
    struct sim_heap *heap;
    int64_t poll_at;        /* earliest controller poll pending, or NO_TIME */
    struct queue_rt *queues;
    size_t nqueues;         /* catalog queues + 1 for "no queue" */
    long running;           /* requests holding a controller slot */
    long live;

    struct msg *msgs;
    size_t nmsgs, capmsgs;

    struct api_user *users;
    size_t nusers;
    struct sim_map *tokens; /* token -> expiry (monotonic ms); secrets: wiped */
    size_t token_prune_at;

    struct counters c;
};

/* ---- replies ---------------------------------------------------------- */

void sim_reply_error(struct sim_reply *r, int status, int code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    r->status = status;
    r->body = cJSON_CreateObject();
    if (r->body != NULL) {
        cJSON_AddNumberToObject(r->body, "errorCode", code);
        cJSON_AddStringToObject(r->body, "errorDescription", text);
    }
}

void sim_reply_ok(struct sim_reply *r, cJSON *body)
{
    if (body == NULL) {
        sim_reply_error(r, 500, 500, "out of memory");
        return;
    }
    r->status = 200;
    r->body = body;
}

/* ---- time --------------------------------------------------------------- */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t sim_now(const struct sim_world *w)
{
    return (int64_t)((double)(mono_us() - w->real0_us) / w->scale);
}

static int64_t secs_to_us(double s)
{
    return (int64_t)(s * 1e6 + 0.5);
}

static double time_of_day(const struct sim_world *w, int64_t t)
{
    double tod = w->tod0 + (double)t / 1e6;
    tod -= 86400.0 * (double)(long long)(tod / 86400.0);
    return tod;
}

static bool window_open_at(const struct sim_world *w, const struct sim_queue_def *q, int64_t t)
{
    if (q == NULL || !q->windowed || q->start_s == q->end_s)
        return true;
    double tod = time_of_day(w, t);
    double s = (double)q->start_s, e = (double)q->end_s;
    if (s < e)
        return tod >= s && tod < e;
    return tod >= s || tod < e;
}

/* Simulated time at which a closed window next opens. */
static int64_t next_open(const struct sim_world *w, const struct sim_queue_def *q, int64_t t)
{
    double delta = (double)q->start_s - time_of_day(w, t);
    if (delta < 0)
        delta += 86400.0;
    return t + secs_to_us(delta);
}

static void iso_time(const struct sim_world *w, int64_t t, char *out, size_t n)
{
    int64_t us = w->epoch0_us + t;
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[32];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", day, (int)((us / 1000) % 1000));
}

/* ---- construction -------------------------------------------------------- */

static void free_request(struct request *r)
{
    if (r == NULL)
        return;
    free(r->task_id);
    free(r->name);
    free(r->amt_user);
    free(r->submit_user);
    free(r->station);
    free(r->queue_sent);
    for (size_t i = 0; i < r->nparams; i++)
        free(r->params[i]);
    free(r->params);
    free(r->children);
    free(r->msgs);
    free(r->hist);
    free(r);
}

static bool add_user(struct sim_world *w, const char *name, const char *password, bool *created)
{
    for (size_t i = 0; i < w->nusers; i++) {
        if (strcmp(w->users[i].name, name) == 0) {
            char *p = strdup(password);
            if (p == NULL)
                return false;
            sodium_memzero(w->users[i].password, strlen(w->users[i].password));
            free(w->users[i].password);
            w->users[i].password = p;
            *created = false;
            return true;
        }
    }
    struct api_user *n = realloc(w->users, (w->nusers + 1) * sizeof(*n));
    if (n == NULL)
        return false;
    w->users = n;
    char *nm = strdup(name), *pw = strdup(password);
    if (nm == NULL || pw == NULL) {
        free(nm);
        free(pw);
        return false;
    }
    w->users[w->nusers].name = nm;
    w->users[w->nusers].password = pw;
    w->nusers++;
    *created = true;
    return true;
}

struct sim_world *sim_world_create(const struct sim_catalog *cat, const struct sim_world_opts *o)
{
    struct sim_world *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return NULL;
    }
    w->cat = cat;
    w->scale = o->time_scale > 0 ? o->time_scale : 1.0;
    w->token_lifetime_s = o->token_lifetime_s > 0 ? o->token_lifetime_s : 3600;
    w->monitor_jobs = true;
    w->idempotent_start = true;
    w->poll_at = NO_TIME;
    w->token_prune_at = 1024;
    w->real0_us = mono_us();

    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    time_t now = rt.tv_sec;
    struct tm lt;
    localtime_r(&now, &lt);
    if (o->clock_s >= 0) {
        lt.tm_hour = (int)(o->clock_s / 3600);
        lt.tm_min = (int)(o->clock_s / 60 % 60);
        lt.tm_sec = (int)(o->clock_s % 60);
        lt.tm_isdst = -1;
        w->epoch0_us = (int64_t)mktime(&lt) * 1000000;
        w->tod0 = (double)o->clock_s;
    } else {
        w->epoch0_us = (int64_t)rt.tv_sec * 1000000 + rt.tv_nsec / 1000;
        w->tod0 = lt.tm_hour * 3600.0 + lt.tm_min * 60.0 + lt.tm_sec + rt.tv_nsec / 1e9;
    }

    w->tasks = sim_map_create();
    w->tokens = sim_map_create();
    w->heap = sim_heap_create();
    w->nqueues = cat->nqueues + 1;
    w->queues = calloc(w->nqueues, sizeof(*w->queues));
    if (w->tasks == NULL || w->tokens == NULL || w->heap == NULL || w->queues == NULL)
        goto fail;
    for (size_t i = 0; i < cat->nqueues; i++)
        w->queues[i].def = &cat->queues[i];
    for (size_t i = 0; i < cat->nusers; i++) {
        bool created;
        if (!add_user(w, cat->users[i].name, cat->users[i].password, &created))
            goto fail;
    }
    return w;
fail:
    sim_world_free(w);
    return NULL;
}

void sim_world_free(struct sim_world *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->nreq; i++)
        free_request(w->req[i]);
    free(w->req);
    for (size_t i = 0; i < w->nmsgs; i++)
        free(w->msgs[i].text);
    free(w->msgs);
    if (w->queues != NULL) {
        for (size_t i = 0; i < w->nqueues; i++)
            free(w->queues[i].pending);
        free(w->queues);
    }
    for (size_t i = 0; i < w->nusers; i++) {
        sodium_memzero(w->users[i].password, strlen(w->users[i].password));
        free(w->users[i].password);
        free(w->users[i].name);
    }
    free(w->users);
    sim_map_free(w->tasks, false);
    sim_map_free(w->tokens, true);
    sim_heap_free(w->heap);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* ---- events ----------------------------------------------------------- */

static void push_event(struct sim_world *w, int64_t at, uint32_t req, uint32_t gen)
{
    struct sim_event ev = {.at = at, .req = req, .gen = gen};
    if (!sim_heap_push(w->heap, ev))
        fprintf(stderr, "amt-batch-sim: out of memory queueing an event; a request stalls\n");
}

static void schedule(struct sim_world *w, struct request *r, int64_t at)
{
    push_event(w, at, (uint32_t)(r->id - w->cat->first_request_id), r->gen);
}

/* The controller takes new work at its next poll tick, as the real Batch
 * Controller polls its queue at a fixed interval. */
static void schedule_poll(struct sim_world *w, int64_t t)
{
    int64_t at = t;
    int64_t tick = secs_to_us(w->cat->poll_interval);
    if (tick > 0)
        at = (t + tick - 1) / tick * tick;
    if (w->poll_at != NO_TIME && w->poll_at <= at)
        return;
    w->poll_at = at;
    push_event(w, at, POLL_EVENT, 0);
}

static uint32_t req_index(const struct sim_world *w, const struct request *r)
{
    return (uint32_t)(r->id - w->cat->first_request_id);
}

/* ---- messages --------------------------------------------------------- */

static bool u32_append(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        uint32_t *p = realloc(*v, ncap * sizeof(*p));
        if (p == NULL)
            return false;
        *v = p;
        *cap = ncap;
    }
    (*v)[(*n)++] = x;
    return true;
}

static const char *amt_user_of(const struct request *r)
{
    return r->amt_user != NULL ? r->amt_user : (r->app->user ? r->app->user : "");
}

static enum buf_rc put_params(struct buf *b, const struct request *r)
{
    for (size_t i = 0; i < r->nparams; i++) {
        enum buf_rc rc = buf_puts(b, i ? " " : "");
        if (rc == BUF_OK)
            rc = buf_puts(b, r->params[i]);
        if (rc != BUF_OK)
            return rc;
    }
    return BUF_OK;
}

/* Expands {placeholders}; unknown ones were rejected when loading the catalog
 * and are copied literally here. */
static char *expand(const struct sim_world *w, const struct request *r, const char *tmpl, long n)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    enum buf_rc rc = BUF_OK;
    for (const char *p = tmpl; *p && rc == BUF_OK;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close == NULL) {
            rc = buf_putc(&b, *p++);
            continue;
        }
        size_t len = (size_t)(close - p - 1);
        const char *k = p + 1;
#define IS(s) (len == strlen(s) && strncmp(k, s, len) == 0)
        if (IS("BatchRequestId"))
            rc = buf_printf(&b, "%ld", r->id);
        else if (IS("submitUser"))
            rc = buf_puts(&b, r->submit_user);
        else if (IS("station"))
            rc = buf_puts(&b, r->station);
        else if (IS("amtUser"))
            rc = buf_puts(&b, amt_user_of(r));
        else if (IS("application"))
            rc = buf_puts(&b, r->app->name);
        else if (IS("jobName"))
            rc = buf_puts(&b, r->name);
        else if (IS("params"))
            rc = put_params(&b, r);
        else if (IS("queue"))
            rc = buf_puts(&b, w->queues[r->queue].def ? w->queues[r->queue].def->name : "");
        else if (IS("amtVersion"))
            rc = buf_puts(&b, w->cat->amt_version);
        else if (IS("taskId"))
            rc = buf_puts(&b, r->task_id ? r->task_id : "");
        else if (IS("n"))
            rc = buf_printf(&b, "%ld", n);
        else
            rc = buf_append(&b, p, len + 2);
#undef IS
        p = close + 1;
    }
    if (rc != BUF_OK) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

static void write_msg(struct sim_world *w, struct request *r, int64_t t, char *text)
{
    if (text == NULL)
        goto oom;
    if (w->nmsgs == w->capmsgs) {
        size_t ncap = w->capmsgs ? w->capmsgs * 2 : 1024;
        struct msg *n = realloc(w->msgs, ncap * sizeof(*n));
        if (n == NULL) {
            free(text);
            goto oom;
        }
        w->msgs = n;
        w->capmsgs = ncap;
    }
    uint32_t idx = (uint32_t)w->nmsgs;
    w->msgs[w->nmsgs++] = (struct msg){.at = t, .writer = req_index(w, r), .text = text};
    /* A request's log holds its descendants' messages too, in write order. */
    for (struct request *a = r; a != NULL;
         a = a->parent == UINT32_MAX ? NULL : w->req[a->parent]) {
        if (!u32_append(&a->msgs, &a->nmsgs, &a->capmsgs, idx))
            goto oom;
    }
    return;
oom:
    fprintf(stderr, "amt-batch-sim: out of memory writing a message of request %ld\n", r->id);
}

/* ---- the state machine ------------------------------------------------- */

/* Every code change goes through here so the history stays complete. */
static void set_code(struct request *r, int code, int64_t t)
{
    r->code = code;
    if (r->nhist > 0 && r->hist[r->nhist - 1].code == code)
        return;
    if (r->nhist == r->caphist) {
        size_t ncap = r->caphist ? r->caphist * 2 : 4;
        struct change *n = realloc(r->hist, ncap * sizeof(*n));
        if (n == NULL)
            return; /* the history is a diagnostic: losing an entry is acceptable */
        r->hist = n;
        r->caphist = ncap;
    }
    r->hist[r->nhist++] = (struct change){.code = code, .at = t};
}

static void kill_tree(struct sim_world *w, struct request *r, int code, int64_t t);
static void begin_waits(struct sim_world *w, struct request *r, int64_t t);

/* The one place a request reaches its final code. */
static void finish(struct sim_world *w, struct request *r, int code, int64_t t)
{
    if (r->phase == PH_ENDED) {
        fprintf(stderr, "amt-batch-sim: BUG: request %ld ended twice\n", r->id);
        return;
    }
    set_code(r, code, t);
    r->phase = PH_ENDED;
    r->gen++;
    r->ended_at = t;
    w->live--;
    if (r->holds_slot) {
        r->holds_slot = false;
        w->running--;
        w->queues[r->queue].running--;
        schedule_poll(w, t);
    }
    if (r->parent != UINT32_MAX) {
        struct request *p = w->req[r->parent];
        p->live_children--;
        if (p->phase == PH_CHILDREN && p->live_children == 0)
            finish(w, p, p->job->final_code, t);
    }
}

/* Ends a request and every live descendant; nothing writes after this instant. */
static void kill_tree(struct sim_world *w, struct request *r, int code, int64_t t)
{
    if (r->phase != PH_ENDED)
        finish(w, r, code, t);
    for (size_t i = 0; i < r->nchildren; i++) {
        struct request *c = w->req[r->children[i]];
        if (c->phase != PH_ENDED)
            kill_tree(w, c, AMT_KILLED, t);
    }
}

static struct request *new_request(struct sim_world *w, const struct sim_app_def *app,
                                   enum sim_job_kind kind, int64_t t)
{
    if (w->nreq == w->capreq) {
        size_t ncap = w->capreq ? w->capreq * 2 : 1024;
        struct request **n = realloc(w->req, ncap * sizeof(*n));
        if (n == NULL)
            return NULL;
        w->req = n;
        w->capreq = ncap;
    }
    struct request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->id = w->cat->first_request_id + (long)w->nreq;
    r->app = app;
    r->kind = kind;
    r->parent = UINT32_MAX;
    r->created_at = t;
    r->ended_at = -1;
    r->queue = w->nqueues - 1;
    r->code = AMT_IDLE;
    r->phase = PH_PENDING;
    w->req[w->nreq++] = r;
    w->live++;
    return r;
}

static bool copy_params(struct request *dst, char *const *src, size_t n)
{
    if (n == 0)
        return true;
    dst->params = calloc(n, sizeof(char *));
    if (dst->params == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        dst->params[i] = strdup(src[i]);
        if (dst->params[i] == NULL)
            return false;
        dst->nparams++;
    }
    return true;
}

/* A child runs inside its parent's controller slot: it skips queue admission,
 * which would otherwise deadlock a parent on a concurrency-1 queue. */
static void spawn_child(struct sim_world *w, struct request *p, const struct sim_job_def *job,
                        int64_t t)
{
    struct request *c = new_request(w, job->app, job->kind, t);
    if (c == NULL)
        goto oom;
    c->job = job;
    c->parent = req_index(w, p);
    c->queue = p->queue;
    c->name = strdup(job->name);
    c->submit_user = strdup(p->submit_user);
    c->station = strdup(p->station);
    if (p->amt_user != NULL)
        c->amt_user = strdup(p->amt_user);
    if (c->name == NULL || c->submit_user == NULL || c->station == NULL ||
        (p->amt_user != NULL && c->amt_user == NULL) ||
        !copy_params(c, p->params, p->nparams) ||
        !u32_append(&p->children, &p->nchildren, &p->capchildren, req_index(w, c)))
        goto oom;
    p->live_children++;
    w->c.requests_created++;
    c->phase = PH_WAITS;
    c->step = 0;
    begin_waits(w, c, t);
    return;
oom:
    fprintf(stderr, "amt-batch-sim: out of memory starting a child of request %ld\n", p->id);
}

static void end_run(struct sim_world *w, struct request *r, int64_t t)
{
    if (r->live_children > 0) {
        r->phase = PH_CHILDREN;
        set_code(r, AMT_WAIT_FOR_JOB, t);
        r->gen++;
        return;
    }
    finish(w, r, r->job->final_code, t);
}

/* Executes every timeline step due at t, then waits for the next one or the end. */
static void run_continue(struct sim_world *w, struct request *r, int64_t t)
{
    const struct sim_job_def *j = r->job;
    while (r->step < j->nsteps && r->run_start + secs_to_us(j->steps[r->step].at) <= t) {
        const struct sim_step *s = &j->steps[r->step++];
        if (s->child != NULL)
            spawn_child(w, r, s->child, t);
        else
            write_msg(w, r, t, expand(w, r, s->text, s->n));
        if (r->phase != PH_RUN)
            return;
    }
    if (r->step < j->nsteps) {
        schedule(w, r, r->run_start + secs_to_us(j->steps[r->step].at));
        return;
    }
    if (j->forever)
        return;
    int64_t end = r->run_start + secs_to_us(j->duration);
    if (end <= t)
        end_run(w, r, t);
    else
        schedule(w, r, end);
}

static void begin_run(struct sim_world *w, struct request *r, int64_t t)
{
    r->phase = PH_RUN;
    set_code(r, r->job->run_code, t);
    r->run_start = t;
    r->step = 0;
    run_continue(w, r, t);
}

static void begin_waits(struct sim_world *w, struct request *r, int64_t t)
{
    if (r->step < r->job->nwaits) {
        const struct sim_wait_def *wd = &r->job->waits[r->step];
        set_code(r, wd->code, t);
        schedule(w, r, t + secs_to_us(wd->duration));
        return;
    }
    begin_run(w, r, t);
}

static void admit(struct sim_world *w, struct request *r, int64_t t)
{
    if (r->code == AMT_WAIT_FOR_QUEUE)
        set_code(r, AMT_QUEUED, t); /* the window opened; shown for no time if a slot is free */
    r->holds_slot = true;
    w->running++;
    w->queues[r->queue].running++;
    r->phase = PH_WAITS;
    r->step = 0;
    begin_waits(w, r, t);
}

static uint32_t queue_head(struct sim_world *w, struct queue_rt *q)
{
    while (q->len > 0) {
        uint32_t i = q->pending[q->head];
        if (w->req[i]->phase == PH_PENDING)
            return i;
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    return UINT32_MAX;
}

static void queue_pop(struct queue_rt *q)
{
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

static bool queue_push(struct queue_rt *q, uint32_t idx)
{
    if (q->len == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64;
        uint32_t *n = malloc(ncap * sizeof(*n));
        if (n == NULL)
            return false;
        for (size_t i = 0; i < q->len; i++)
            n[i] = q->pending[(q->head + i) % q->cap];
        free(q->pending);
        q->pending = n;
        q->cap = ncap;
        q->head = 0;
    }
    q->pending[(q->head + q->len) % q->cap] = idx;
    q->len++;
    return true;
}

static int queue_prio(const struct queue_rt *q)
{
    return q->def ? (int)q->def->priority : (int)SIM_PRIO_NORMAL;
}

/* The batch controller: fills free slots from open queues, higher priority
 * first, then by arrival. */
static void controller_poll(struct sim_world *w, int64_t t)
{
    long slots = w->cat->controller_slots;
    for (;;) {
        if (slots > 0 && w->running >= slots)
            return;
        size_t best = SIZE_MAX;
        uint32_t best_idx = 0;
        for (size_t qi = 0; qi < w->nqueues; qi++) {
            struct queue_rt *q = &w->queues[qi];
            uint32_t idx = queue_head(w, q);
            if (idx == UINT32_MAX)
                continue;
            if (!window_open_at(w, q->def, t)) {
                schedule_poll(w, next_open(w, q->def, t));
                continue;
            }
            if (q->def && q->def->concurrency > 0 && q->running >= q->def->concurrency)
                continue;
            if (best == SIZE_MAX || queue_prio(q) > queue_prio(&w->queues[best]) ||
                (queue_prio(q) == queue_prio(&w->queues[best]) && idx < best_idx)) {
                best = qi;
                best_idx = idx;
            }
        }
        if (best == SIZE_MAX)
            return;
        queue_pop(&w->queues[best]);
        admit(w, w->req[best_idx], t);
    }
}

static void step(struct sim_world *w, struct request *r, int64_t t)
{
    switch (r->phase) {
    case PH_WAITS:
        r->step++;
        begin_waits(w, r, t);
        break;
    case PH_RUN:
        run_continue(w, r, t);
        break;
    case PH_PENDING:
    case PH_CHILDREN:
    case PH_PARKED:
    case PH_ENDED:
        fprintf(stderr, "amt-batch-sim: BUG: timed event for request %ld in phase %d\n", r->id,
                (int)r->phase);
        break;
    }
}

static void advance(struct sim_world *w, int64_t now)
{
    const struct sim_event *top;
    while ((top = sim_heap_peek(w->heap)) != NULL && top->at <= now) {
        struct sim_event ev;
        sim_heap_pop(w->heap, &ev);
        if (ev.req == POLL_EVENT) {
            if (ev.at == w->poll_at)
                w->poll_at = NO_TIME;
            controller_poll(w, ev.at);
            continue;
        }
        struct request *r = w->req[ev.req];
        if (r->gen == ev.gen)
            step(w, r, ev.at);
    }
}

/* Locks and brings the world up to the present; returns "now". */
static int64_t enter(struct sim_world *w)
{
    pthread_mutex_lock(&w->lock);
    int64_t now = sim_now(w);
    advance(w, now);
    return now;
}

static void leave(struct sim_world *w)
{
    pthread_mutex_unlock(&w->lock);
}

static int shown_code(const struct sim_world *w, const struct request *r, int64_t now)
{
    if (r->phase == PH_PENDING)
        return window_open_at(w, w->queues[r->queue].def, now) ? AMT_QUEUED : AMT_WAIT_FOR_QUEUE;
    return r->code;
}

static struct request *find(struct sim_world *w, long id)
{
    if (id < w->cat->first_request_id || id - w->cat->first_request_id >= (long)w->nreq)
        return NULL;
    return w->req[id - w->cat->first_request_id];
}

/* ---- JSON helpers ---------------------------------------------------- */

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An integral JSON number within [min, max]. */
static bool get_long(const cJSON *v, long min, long max, long *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (d != (double)(long long)d || d < (double)min || d > (double)max)
        return false;
    *out = (long)d;
    return true;
}

static bool parse_query_long(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool is_uuid(const char *s)
{
    static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(s) != sizeof(pattern) - 1)
        return false;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static cJSON *monitor_json(const struct sim_world *w, const struct request *r, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    int code = shown_code(w, r, now);
    struct amt_code_info info = amt_code_lookup(code);
    cJSON_AddNumberToObject(o, "BatchRequestId", (double)r->id);
    cJSON_AddNumberToObject(o, "code", code);
    cJSON_AddStringToObject(o, "status", info.name);
    cJSON_AddStringToObject(o, "description", info.description);
    cJSON *kids = cJSON_AddArrayToObject(o, "children");
    for (size_t i = 0; kids != NULL && i < r->nchildren; i++) {
        const struct request *c = w->req[r->children[i]];
        cJSON *k = cJSON_CreateObject();
        if (k == NULL)
            break;
        int cc = shown_code(w, c, now);
        cJSON_AddNumberToObject(k, "BatchRequestId", (double)c->id);
        cJSON_AddStringToObject(k, "name", c->name);
        cJSON_AddNumberToObject(k, "code", cc);
        cJSON_AddStringToObject(k, "status", amt_code_name(cc));
        cJSON_AddItemToArray(kids, k);
    }
    cJSON_AddNumberToObject(o, "messageCount", (double)r->nmsgs);
    return o;
}

/* ---- /api ------------------------------------------------------------ */

void sim_world_count_route(struct sim_world *w, const char *route)
{
    pthread_mutex_lock(&w->lock);
    size_t i;
    for (i = 0; i < NROUTES - 1; i++)
        if (strcmp(route_names[i], route) == 0)
            break;
    w->c.routes[i]++;
    pthread_mutex_unlock(&w->lock);
}

void sim_world_count_connection(struct sim_world *w)
{
    pthread_mutex_lock(&w->lock);
    w->c.connections++;
    pthread_mutex_unlock(&w->lock);
}

void sim_world_count_fault(struct sim_world *w)
{
    pthread_mutex_lock(&w->lock);
    w->c.faults_injected++;
    pthread_mutex_unlock(&w->lock);
}

static cJSON *features_json(const struct sim_world *w)
{
    cJSON *a = cJSON_CreateArray();
    if (a != NULL && w->monitor_jobs)
        cJSON_AddItemToArray(a, cJSON_CreateString("MonitorJobs"));
    if (a != NULL && w->idempotent_start)
        cJSON_AddItemToArray(a, cJSON_CreateString("IdempotentStart"));
    return a;
}

void sim_world_heartbeat(struct sim_world *w, struct sim_reply *r)
{
    enter(w);
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON_AddStringToObject(o, "amtVersion", w->cat->amt_version);
        cJSON_AddItemToObject(o, "features", features_json(w));
    }
    leave(w);
    sim_reply_ok(r, o);
}

static bool password_ok(const struct api_user *u, const char *password)
{
    size_t a = strlen(u->password), b = strlen(password);
    return a == b && sodium_memcmp(u->password, password, a) == 0;
}

void sim_world_logon(struct sim_world *w, const cJSON *body, struct sim_reply *r)
{
    const char *user = get_str(body, "user"), *password = get_str(body, "password");
    if (user == NULL || password == NULL) {
        sim_reply_error(r, 400, 400, "logon needs string fields \"user\" and \"password\"");
        return;
    }
    enter(w);
    const struct api_user *u = NULL;
    for (size_t i = 0; i < w->nusers; i++)
        if (strcmp(w->users[i].name, user) == 0)
            u = &w->users[i];
    if (u == NULL || !password_ok(u, password)) {
        w->c.logon_failures++;
        leave(w);
        sim_reply_error(r, 401, SIM_ERR_AUTH, "Authentication failed: invalid user or password");
        return;
    }
    unsigned char raw[TOKEN_BYTES];
    char token[TOKEN_BYTES * 2 + 1];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    int64_t now_ms = mono_us() / 1000;
    if (sim_map_len(w->tokens) >= w->token_prune_at) {
        sim_map_prune_below(w->tokens, now_ms, true);
        w->token_prune_at = 2 * sim_map_len(w->tokens) + 1024;
    }
    long lifetime = w->token_lifetime_s;
    bool stored = sim_map_put(w->tokens, token, now_ms + (int64_t)lifetime * 1000);
    if (stored)
        w->c.logons++;
    leave(w);
    cJSON *o = stored ? cJSON_CreateObject() : NULL;
    if (o != NULL) {
        cJSON_AddStringToObject(o, "AmtLogonToken", token);
        cJSON_AddNumberToObject(o, "expiresIn", (double)lifetime);
    }
    sodium_memzero(token, sizeof(token));
    sim_reply_ok(r, o);
}

bool sim_world_token_ok(struct sim_world *w, const char *token)
{
    pthread_mutex_lock(&w->lock);
    int64_t expiry;
    bool ok = token != NULL && sim_map_get(w->tokens, token, &expiry) &&
              expiry > mono_us() / 1000;
    if (!ok)
        w->c.token_failures++;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

bool sim_world_has_monitor_jobs(struct sim_world *w)
{
    pthread_mutex_lock(&w->lock);
    bool on = w->monitor_jobs;
    pthread_mutex_unlock(&w->lock);
    return on;
}

/* Reads an optional array of at most MAX_PARAMS strings. */
static bool get_params(const cJSON *body, const char *key, char ***out, size_t *n,
                       struct sim_reply *r)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = NULL;
    *n = 0;
    if (a == NULL || cJSON_IsNull(a))
        return true;
    if (!cJSON_IsArray(a)) {
        sim_reply_error(r, 400, 400, "\"%s\" must be an array of strings", key);
        return false;
    }
    int count = cJSON_GetArraySize(a);
    if (count > MAX_PARAMS) {
        sim_reply_error(r, 400, 400, "\"%s\" has %d entries; at most %d are allowed", key,
                        count, MAX_PARAMS);
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it)) {
            sim_reply_error(r, 400, 400, "\"%s\" must be an array of strings", key);
            return false;
        }
    }
    /* Borrowed from the request body; copied into the request later. */
    *out = calloc((size_t)count + 1, sizeof(char *));
    if (*out == NULL) {
        sim_reply_error(r, 500, 500, "out of memory");
        return false;
    }
    cJSON_ArrayForEach(it, a)
    {
        (*out)[(*n)++] = it->valuestring;
    }
    return true;
}

/* Optional string field; true if absent/null (then *out = NULL) or a string. */
static bool opt_str(const cJSON *body, const char *key, const char **out, struct sim_reply *r)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsString(v)) {
        sim_reply_error(r, 400, 400, "\"%s\" must be a string", key);
        return false;
    }
    *out = v->valuestring;
    return true;
}

static char *dup_nonempty(const char *s)
{
    return (s != NULL && *s) ? strdup(s) : NULL;
}

static void start(struct sim_world *w, const cJSON *body, struct sim_reply *r)
{
    char **params = NULL;
    size_t nparams = 0;
    const char *task_id = get_str(body, "taskId");
    int64_t now = enter(w);
    w->c.start_calls++;

    if (task_id == NULL || !is_uuid(task_id)) {
        sim_reply_error(r, 400, 400, "\"taskId\" must be a UUID string");
        goto out;
    }
    int64_t known;
    bool repeated = sim_map_get(w->tasks, task_id, &known);
    if (repeated && !w->idempotent_start) {
        /* A server without idempotent Start: the same taskId starts the job again. */
        w->req[known]->start_calls++;
        w->c.duplicate_starts++;
    } else if (repeated) {
        struct request *q = w->req[known];
        q->start_calls++;
        w->c.duplicate_starts++;
        cJSON *o = cJSON_CreateObject();
        if (o != NULL)
            cJSON_AddNumberToObject(o, "BatchRequestId", (double)q->id);
        sim_reply_ok(r, o);
        goto out;
    }
    const char *app_name = get_str(body, "applicationName");
    const char *submit = get_str(body, "amtSubmitUser"), *station = get_str(body, "amtStation");
    const char *job_name, *script_name, *amt_user, *queue_name;
    if (app_name == NULL || *app_name == '\0') {
        sim_reply_error(r, 400, 400, "\"applicationName\" is required");
        goto out;
    }
    if (submit == NULL || strcmp(submit, "BATCH") != 0) {
        sim_reply_error(r, 400, 400, "\"amtSubmitUser\" must be BATCH");
        goto out;
    }
    if (station == NULL || strcmp(station, "OPCON") != 0) {
        sim_reply_error(r, 400, 400, "\"amtStation\" must be OPCON");
        goto out;
    }
    if (!opt_str(body, "jobName", &job_name, r) || !opt_str(body, "scriptName", &script_name, r) ||
        !opt_str(body, "amtUser", &amt_user, r) || !opt_str(body, "amtQueueName", &queue_name, r))
        goto out;
    if (job_name != NULL && *job_name == '\0')
        job_name = NULL;
    if (script_name != NULL && *script_name == '\0')
        script_name = NULL;
    if ((job_name == NULL) == (script_name == NULL)) {
        sim_reply_error(r, 400, 400, "exactly one of \"jobName\" and \"scriptName\" is required");
        goto out;
    }
    const char *pkey = job_name ? "taskValues" : "scriptParameters";
    const char *other = job_name ? "scriptParameters" : "taskValues";
    const cJSON *wrong = cJSON_GetObjectItemCaseSensitive(body, other);
    if (wrong != NULL && !cJSON_IsNull(wrong) &&
        !(cJSON_IsArray(wrong) && cJSON_GetArraySize(wrong) == 0)) {
        sim_reply_error(r, 400, 400, "\"%s\" does not apply to a %s", other,
                        job_name ? "batch job" : "script");
        goto out;
    }
    if (!get_params(body, pkey, &params, &nparams, r))
        goto out;
    const struct sim_app_def *app = sim_catalog_app(w->cat, app_name);
    if (app == NULL) {
        sim_reply_error(r, 404, 404, "unknown application '%s'", app_name);
        goto out;
    }
    const struct sim_queue_def *queue;
    if (queue_name != NULL && *queue_name) {
        queue = sim_catalog_queue(w->cat, queue_name);
        if (queue == NULL || !sim_catalog_queue_usable(queue, app)) {
            sim_reply_error(r, 404, 404, "queue '%s' does not exist for application '%s'",
                            queue_name, app->name);
            goto out;
        }
    } else {
        queue = sim_catalog_default_queue(w->cat, app);
    }
    const struct sim_job_def *job = NULL;
    if (job_name != NULL) {
        job = sim_catalog_job(app, job_name);
        if (job == NULL) {
            sim_reply_error(r, 404, 404, "unknown job '%s' in application '%s'", job_name,
                            app->name);
            goto out;
        }
    } else {
        job = sim_catalog_script(app, script_name);
    }

    struct request *q = new_request(w, app, job_name ? SIM_JOB_BATCH : SIM_JOB_SCRIPT, now);
    if (q == NULL) {
        sim_reply_error(r, 500, 500, "out of memory");
        goto out;
    }
    q->job = job;
    q->task_id = strdup(task_id);
    q->name = strdup(job_name ? job_name : script_name);
    q->submit_user = strdup(submit);
    q->station = strdup(station);
    q->amt_user = dup_nonempty(amt_user);
    q->queue_sent = queue_name ? strdup(queue_name) : NULL;
    q->queue = queue ? (size_t)(queue - w->cat->queues) : w->nqueues - 1;
    q->start_calls = 1;
    q->start_real_us = real_us();
    w->c.requests_created++;
    if (q->task_id == NULL || q->name == NULL || q->submit_user == NULL || q->station == NULL ||
        !copy_params(q, params, nparams) ||
        (!repeated && !sim_map_put(w->tasks, task_id, (int64_t)req_index(w, q)))) {
        /* The request exists and is visible by id; end it rather than leave a husk. */
        fprintf(stderr, "amt-batch-sim: out of memory creating request %ld\n", q->id);
        finish(w, q, AMT_ERROR, now);
        sim_reply_error(r, 500, 500, "out of memory");
        goto out;
    }
    if (q->amt_user != NULL && !sim_catalog_user_valid(app, q->amt_user)) {
        finish(w, q, AMT_INVALID_AMT_USER, now);
    } else if (job == NULL) {
        write_msg(w, q, now, strdup("File not found"));
        finish(w, q, AMT_ERROR, now);
    } else if (!queue_push(&w->queues[q->queue], req_index(w, q))) {
        finish(w, q, AMT_ERROR, now);
    } else {
        set_code(q, shown_code(w, q, now), now);
        schedule_poll(w, now);
        advance(w, now);
    }
    cJSON *o = cJSON_CreateObject();
    if (o != NULL)
        cJSON_AddNumberToObject(o, "BatchRequestId", (double)q->id);
    sim_reply_ok(r, o);
out:
    leave(w);
    free(params);
}

/* The request an operator or a Kill acts on: one that has not ended. Else
 * NULL, with the 404 or 409 already in the reply. */
static struct request *find_live(struct sim_world *w, long id, struct sim_reply *r)
{
    struct request *q = find(w, id);
    if (q == NULL)
        sim_reply_error(r, 404, 404, "unknown BatchRequestId %ld", id);
    else if (q->phase == PH_ENDED)
        sim_reply_error(r, 409, 409, "request %ld has already ended (%s)", id,
                        amt_code_name(q->code));
    else
        return q;
    return NULL;
}

static void kill_action(struct sim_world *w, const cJSON *body, struct sim_reply *r)
{
    long id;
    if (!get_long(cJSON_GetObjectItemCaseSensitive(body, "BatchRequestId"), 1, LONG_MAX, &id)) {
        sim_reply_error(r, 400, 400, "\"BatchRequestId\" must be a positive integer");
        return;
    }
    int64_t now = enter(w);
    struct request *q = find_live(w, id, r);
    if (q != NULL) {
        w->c.kills++;
        if (!q->kill_real_us)
            q->kill_real_us = real_us();
        kill_tree(w, q, AMT_KILLED, now);
        cJSON *o = cJSON_CreateObject();
        if (o != NULL) {
            cJSON_AddNumberToObject(o, "BatchRequestId", (double)id);
            cJSON_AddBoolToObject(o, "accepted", true);
        }
        sim_reply_ok(r, o);
    }
    leave(w);
}

void sim_world_job_action(struct sim_world *w, const cJSON *body, struct sim_reply *r)
{
    const char *action = get_str(body, "action");
    if (action == NULL) {
        sim_reply_error(r, 400, 400, "\"action\" (Start, Kill or Stop) is required");
    } else if (strcmp(action, "Start") == 0) {
        start(w, body, r);
    } else if (strcmp(action, "Kill") == 0 || strcmp(action, "Stop") == 0) {
        kill_action(w, body, r);
    } else {
        sim_reply_error(r, 400, 400, "unknown action '%.64s' (Start, Kill or Stop)", action);
    }
}

void sim_world_monitor(struct sim_world *w, long id, struct sim_reply *r)
{
    int64_t now = enter(w);
    struct request *q = find(w, id);
    if (q == NULL)
        sim_reply_error(r, 404, 404, "unknown BatchRequestId %ld", id);
    else
        sim_reply_ok(r, monitor_json(w, q, now));
    leave(w);
}

void sim_world_monitor_many(struct sim_world *w, const cJSON *body, struct sim_reply *r)
{
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "ids");
    if (!cJSON_IsArray(ids)) {
        sim_reply_error(r, 400, 400, "\"ids\" must be an array of BatchRequestIds");
        return;
    }
    int n = cJSON_GetArraySize(ids);
    if (n > MAX_MONITOR_IDS) {
        sim_reply_error(r, 400, 400, "%d ids; at most %d per call", n, MAX_MONITOR_IDS);
        return;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        long id;
        if (!get_long(it, LONG_MIN, LONG_MAX, &id)) {
            sim_reply_error(r, 400, 400, "\"ids\" must contain integers only");
            return;
        }
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *jobs = cJSON_AddArrayToObject(o, "jobs");
    cJSON *unknown = cJSON_AddArrayToObject(o, "unknown");
    if (o == NULL || jobs == NULL || unknown == NULL) {
        cJSON_Delete(o);
        sim_reply_error(r, 500, 500, "out of memory");
        return;
    }
    int64_t now = enter(w);
    cJSON_ArrayForEach(it, ids)
    {
        long id = (long)it->valuedouble;
        struct request *q = find(w, id);
        if (q == NULL)
            cJSON_AddItemToArray(unknown, cJSON_CreateNumber((double)id));
        else
            cJSON_AddItemToArray(jobs, monitor_json(w, q, now));
    }
    leave(w);
    sim_reply_ok(r, o);
}

void sim_world_messages(struct sim_world *w, long id, const char *after_s, const char *limit_s,
                        struct sim_reply *r)
{
    long after = 0, limit = MSG_LIMIT_DEFAULT;
    if (after_s != NULL && !parse_query_long(after_s, 0, LONG_MAX, &after)) {
        sim_reply_error(r, 400, 400, "\"after\" must be a non-negative integer");
        return;
    }
    if (limit_s != NULL && !parse_query_long(limit_s, 1, LONG_MAX, &limit)) {
        sim_reply_error(r, 400, 400, "\"limit\" must be a positive integer");
        return;
    }
    if (limit > MSG_LIMIT_MAX)
        limit = MSG_LIMIT_MAX;
    enter(w);
    struct request *q = find(w, id);
    if (q == NULL) {
        leave(w);
        sim_reply_error(r, 404, 404, "unknown BatchRequestId %ld", id);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "messages");
    size_t next = (size_t)after;
    for (size_t i = (size_t)after; arr != NULL && i < q->nmsgs && i < (size_t)after + (size_t)limit;
         i++) {
        const struct msg *m = &w->msgs[q->msgs[i]];
        char when[48];
        iso_time(w, m->at, when, sizeof(when));
        cJSON *e = cJSON_CreateObject();
        if (e == NULL)
            break;
        cJSON_AddNumberToObject(e, "seq", (double)(i + 1));
        cJSON_AddNumberToObject(e, "BatchRequestId", (double)w->req[m->writer]->id);
        cJSON_AddStringToObject(e, "time", when);
        cJSON_AddStringToObject(e, "text", m->text);
        cJSON_AddItemToArray(arr, e);
        next = i + 1;
    }
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "next", (double)next);
        cJSON_AddBoolToObject(o, "more", next < q->nmsgs);
    }
    leave(w);
    if (arr == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sim_reply_ok(r, o);
}

/* ---- /sim ------------------------------------------------------------ */

void sim_world_counters(struct sim_world *w, struct sim_reply *r)
{
    enter(w);
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "logons", (double)w->c.logons);
        cJSON_AddNumberToObject(o, "logon_failures", (double)w->c.logon_failures);
        cJSON_AddNumberToObject(o, "token_failures", (double)w->c.token_failures);
        cJSON_AddNumberToObject(o, "start_calls", (double)w->c.start_calls);
        cJSON_AddNumberToObject(o, "requests_created", (double)w->c.requests_created);
        cJSON_AddNumberToObject(o, "duplicate_starts", (double)w->c.duplicate_starts);
        cJSON_AddNumberToObject(o, "kills", (double)w->c.kills);
        cJSON_AddNumberToObject(o, "forced_states", (double)w->c.forced_states);
        cJSON_AddNumberToObject(o, "faults_injected", (double)w->c.faults_injected);
        cJSON_AddNumberToObject(o, "connections", (double)w->c.connections);
        cJSON_AddNumberToObject(o, "live_requests", (double)w->live);
        cJSON_AddNumberToObject(o, "running_requests", (double)w->running);
        cJSON_AddNumberToObject(o, "total_requests", (double)w->nreq);
        cJSON_AddNumberToObject(o, "messages", (double)w->nmsgs);
        cJSON *routes = cJSON_AddObjectToObject(o, "routes");
        for (size_t i = 0; routes != NULL && i < NROUTES; i++)
            cJSON_AddNumberToObject(routes, route_names[i], (double)w->c.routes[i]);
    }
    leave(w);
    sim_reply_ok(r, o);
}

void sim_world_tasks(struct sim_world *w, struct sim_reply *r)
{
    enter(w);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "tasks");
    for (size_t i = 0; arr != NULL && i < w->nreq; i++) {
        const struct request *q = w->req[i];
        if (q->task_id == NULL)
            continue;
        cJSON *e = cJSON_CreateObject();
        if (e == NULL)
            break;
        cJSON_AddStringToObject(e, "taskId", q->task_id);
        cJSON_AddNumberToObject(e, "BatchRequestId", (double)q->id);
        cJSON_AddNumberToObject(e, "startCalls", (double)q->start_calls);
        cJSON_AddNumberToObject(e, "startedAtUs", (double)q->start_real_us);
        if (q->kill_real_us)
            cJSON_AddNumberToObject(e, "killedAtUs", (double)q->kill_real_us);
        cJSON_AddItemToArray(arr, e);
    }
    leave(w);
    if (arr == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sim_reply_ok(r, o);
}

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

void sim_world_request_info(struct sim_world *w, long id, struct sim_reply *r)
{
    int64_t now = enter(w);
    struct request *q = find(w, id);
    if (q == NULL) {
        leave(w);
        sim_reply_error(r, 404, 404, "unknown BatchRequestId %ld", id);
        return;
    }
    cJSON *o = monitor_json(w, q, now);
    if (o != NULL) {
        bool batch = q->kind == SIM_JOB_BATCH;
        cJSON_AddBoolToObject(o, "final", q->phase == PH_ENDED);
        cJSON_AddItemToObject(o, "taskId", str_or_null(q->task_id));
        cJSON_AddStringToObject(o, "applicationName", q->app->name);
        cJSON_AddItemToObject(o, "jobName", str_or_null(batch ? q->name : NULL));
        cJSON_AddItemToObject(o, "scriptName", str_or_null(batch ? NULL : q->name));
        cJSON_AddBoolToObject(o, "inCatalog", q->job != NULL);
        cJSON_AddItemToObject(o, "amtUser", str_or_null(q->amt_user));
        cJSON_AddStringToObject(o, "amtSubmitUser", q->submit_user);
        cJSON_AddStringToObject(o, "amtStation", q->station);
        cJSON_AddItemToObject(o, "amtQueueName", str_or_null(q->queue_sent));
        const struct sim_queue_def *qd = w->queues[q->queue].def;
        cJSON_AddItemToObject(o, "queue", str_or_null(qd ? qd->name : NULL));
        cJSON *p = cJSON_AddArrayToObject(o, batch ? "taskValues" : "scriptParameters");
        for (size_t i = 0; p != NULL && i < q->nparams; i++)
            cJSON_AddItemToArray(p, cJSON_CreateString(q->params[i]));
        cJSON_AddItemToObject(o, "parent", q->parent == UINT32_MAX
                                               ? cJSON_CreateNull()
                                               : cJSON_CreateNumber((double)w->req[q->parent]->id));
        cJSON_AddNumberToObject(o, "startCalls", (double)q->start_calls);
        cJSON *h = cJSON_AddArrayToObject(o, "history");
        for (size_t i = 0; h != NULL && i < q->nhist; i++) {
            cJSON *e = cJSON_CreateObject();
            if (e == NULL)
                break;
            cJSON_AddNumberToObject(e, "code", q->hist[i].code);
            cJSON_AddStringToObject(e, "status", amt_code_name(q->hist[i].code));
            cJSON_AddNumberToObject(e, "at", (double)q->hist[i].at / 1e6);
            cJSON_AddItemToArray(h, e);
        }
        char when[48];
        iso_time(w, q->created_at, when, sizeof(when));
        cJSON_AddStringToObject(o, "created", when);
        if (q->ended_at >= 0) {
            iso_time(w, q->ended_at, when, sizeof(when));
            cJSON_AddStringToObject(o, "ended", when);
        } else {
            cJSON_AddNullToObject(o, "ended");
        }
    }
    leave(w);
    sim_reply_ok(r, o);
}

void sim_world_force_state(struct sim_world *w, long id, const cJSON *body, struct sim_reply *r)
{
    long code;
    if (!get_long(cJSON_GetObjectItemCaseSensitive(body, "code"), 0, 99, &code) ||
        !amt_code_known((int)code)) {
        sim_reply_error(r, 400, 400, "\"code\" must be a published AMT completion code");
        return;
    }
    int64_t now = enter(w);
    struct request *q = find_live(w, id, r);
    if (q != NULL) {
        w->c.forced_states++;
        if (amt_code_is_final((int)code)) {
            kill_tree(w, q, (int)code, now);
        } else {
            /* Frozen: the operator holds the request here until the next force. */
            q->phase = PH_PARKED;
            set_code(q, (int)code, now);
            q->gen++;
        }
        sim_reply_ok(r, monitor_json(w, q, now));
    }
    leave(w);
}

void sim_world_expire_tokens(struct sim_world *w, struct sim_reply *r)
{
    pthread_mutex_lock(&w->lock);
    size_t n = sim_map_len(w->tokens);
    sim_map_clear(w->tokens, true);
    pthread_mutex_unlock(&w->lock);
    cJSON *o = cJSON_CreateObject();
    if (o != NULL)
        cJSON_AddNumberToObject(o, "expired", (double)n);
    sim_reply_ok(r, o);
}

void sim_world_tokens(struct sim_world *w, struct sim_reply *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = o ? cJSON_AddArrayToObject(o, "tokens") : NULL;
    pthread_mutex_lock(&w->lock);
    size_t pos = 0;
    const char *key;
    int64_t expires;
    while (a != NULL && sim_map_next(w->tokens, &pos, &key, &expires))
        cJSON_AddItemToArray(a, cJSON_CreateString(key));
    pthread_mutex_unlock(&w->lock);
    sim_reply_ok(r, o);
}

void sim_world_config(struct sim_world *w, const cJSON *body, struct sim_reply *r)
{
    long lifetime = -1;
    int monitor_jobs = -1, idempotent = -1;
    if (body != NULL) {
        const cJSON *it;
        cJSON_ArrayForEach(it, body)
        {
            if (strcmp(it->string, "token_lifetime") == 0) {
                if (!get_long(it, 1, 10L * 365 * 86400, &lifetime)) {
                    sim_reply_error(r, 400, 400, "\"token_lifetime\" must be a positive integer");
                    return;
                }
            } else if (strcmp(it->string, "features") == 0) {
                if (!cJSON_IsArray(it)) {
                    sim_reply_error(r, 400, 400, "\"features\" must be an array of strings");
                    return;
                }
                monitor_jobs = 0;
                idempotent = 0;
                const cJSON *f;
                cJSON_ArrayForEach(f, it)
                {
                    if (cJSON_IsString(f) && strcmp(f->valuestring, "MonitorJobs") == 0) {
                        monitor_jobs = 1;
                    } else if (cJSON_IsString(f) && strcmp(f->valuestring, "IdempotentStart") == 0) {
                        idempotent = 1;
                    } else {
                        sim_reply_error(r, 400, 400,
                                        "unknown feature (known: MonitorJobs, IdempotentStart)");
                        return;
                    }
                }
            } else {
                sim_reply_error(r, 400, 400, "unknown config field '%.64s'", it->string);
                return;
            }
        }
    }
    enter(w);
    if (lifetime > 0)
        w->token_lifetime_s = lifetime;
    if (monitor_jobs >= 0)
        w->monitor_jobs = monitor_jobs == 1;
    if (idempotent >= 0)
        w->idempotent_start = idempotent == 1;
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "token_lifetime", (double)w->token_lifetime_s);
        cJSON_AddItemToObject(o, "features", features_json(w));
        cJSON_AddNumberToObject(o, "time_scale", w->scale);
        cJSON_AddNumberToObject(o, "first_request_id", (double)w->cat->first_request_id);
        cJSON_AddStringToObject(o, "amt_version", w->cat->amt_version);
        cJSON_AddStringToObject(o, "catalog", w->cat->path);
    }
    leave(w);
    sim_reply_ok(r, o);
}

void sim_world_add_user(struct sim_world *w, const cJSON *body, struct sim_reply *r)
{
    const char *name = get_str(body, "name"), *password = get_str(body, "password");
    if (name == NULL || *name == '\0' || password == NULL || *password == '\0') {
        sim_reply_error(r, 400, 400, "\"name\" and \"password\" must be non-empty strings");
        return;
    }
    bool created = false;
    pthread_mutex_lock(&w->lock);
    bool ok = add_user(w, name, password, &created);
    pthread_mutex_unlock(&w->lock);
    if (!ok) {
        sim_reply_error(r, 500, 500, "out of memory");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddBoolToObject(o, "created", created);
    }
    sim_reply_ok(r, o);
}

void sim_world_clock(struct sim_world *w, struct sim_reply *r)
{
    int64_t now = enter(w);
    leave(w);
    double tod = time_of_day(w, now);
    int s = (int)tod % 86400;
    char hms[32], when[48];
    snprintf(hms, sizeof(hms), "%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    iso_time(w, now, when, sizeof(when));
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "elapsed", (double)now / 1e6);
        cJSON_AddStringToObject(o, "timeOfDay", hms);
        cJSON_AddStringToObject(o, "time", when);
        cJSON_AddNumberToObject(o, "time_scale", w->scale);
    }
    sim_reply_ok(r, o);
}
