/* sim_catalog: loads and validates the simulator's YAML job catalog. */
#include "sim_catalog.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amtacs/codes.h"
#include "amtacs/yamldoc.h"

#define MAX_DURATION 1e9
#define MAX_STEPS 100000
#define MAX_POLL_INTERVAL 30.0

/* A child start waiting for its job name to be resolved once all jobs exist. */
struct pending_child {
    struct sim_job_def *parent;
    double at;
    const char *job; /* borrowed from the document */
    const char *app; /* NULL: the parent's application */
    int node;
};

struct loader {
    struct yd_doc *doc;
    struct sim_catalog *cat;
    struct pending_child *kids;
    size_t nkids, capkids;
};

static const char *const placeholders[] = {
    "BatchRequestId", "submitUser", "station", "amtUser", "application", "jobName",
    "params", "queue", "amtVersion", "taskId", "n", NULL,
};

/* ---- small readers ----------------------------------------------------- */

static char *dup_str(struct loader *ld, int id)
{
    const char *s;
    if (!yd_get_string(ld->doc, id, &s))
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        yd_errorf(ld->doc, id, "out of memory");
    return d;
}

/* Reads a required non-empty string field of a map. */
static char *req_str(struct loader *ld, int map, const char *key)
{
    int v = yd_map_get(ld->doc, map, key);
    if (v == 0) {
        yd_errorf(ld->doc, map, "missing required key '%s'", key);
        return NULL;
    }
    char *s = dup_str(ld, v);
    if (s != NULL && *s == '\0') {
        yd_errorf(ld->doc, v, "'%s' must not be empty", key);
        free(s);
        return NULL;
    }
    return s;
}

static char *opt_str(struct loader *ld, int map, const char *key)
{
    int v = yd_map_get(ld->doc, map, key);
    if (v == 0 || yd_is_null(ld->doc, v))
        return NULL;
    return dup_str(ld, v);
}

/* A duration in seconds, or `forever` when allowed. */
static bool read_duration(struct loader *ld, int id, bool allow_forever, double *out,
                          bool *forever)
{
    const char *s = yd_scalar(ld->doc, id);
    if (allow_forever && s != NULL &&
        (strcasecmp(s, "forever") == 0 || strcasecmp(s, "infinite") == 0 ||
         strcasecmp(s, "until_killed") == 0)) {
        *forever = true;
        *out = 0;
        return true;
    }
    return yd_get_double(ld->doc, id, 0, MAX_DURATION, out);
}

/* HH:MM or HH:MM:SS as seconds after midnight. */
static bool read_hms(struct loader *ld, int id, long *out)
{
    const char *s;
    if (!yd_get_string(ld->doc, id, &s))
        return false;
    unsigned h = 0, m = 0, sec = 0;
    size_t len = strlen(s);
    bool ok = (len == 5 || len == 8) && s[2] == ':' && (len == 5 || s[5] == ':');
    for (size_t i = 0; ok && i < len; i++)
        if (i != 2 && i != 5)
            ok = s[i] >= '0' && s[i] <= '9';
    if (ok) {
        h = (unsigned)((s[0] - '0') * 10 + (s[1] - '0'));
        m = (unsigned)((s[3] - '0') * 10 + (s[4] - '0'));
        if (len == 8)
            sec = (unsigned)((s[6] - '0') * 10 + (s[7] - '0'));
        ok = h < 24 && m < 60 && sec < 60;
    }
    if (!ok) {
        yd_errorf(ld->doc, id, "expected a time of day HH:MM or HH:MM:SS, got '%s'", s);
        return false;
    }
    *out = (long)(h * 3600 + m * 60 + sec);
    return true;
}

static bool read_code(struct loader *ld, int id, int *out)
{
    long v;
    if (!yd_get_long(ld->doc, id, 0, 99, &v))
        return false;
    if (!amt_code_known((int)v)) {
        yd_errorf(ld->doc, id, "%ld is not a published AMT completion code", v);
        return false;
    }
    *out = (int)v;
    return true;
}

static void check_placeholders(struct loader *ld, int id, const char *text)
{
    for (const char *p = strchr(text, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        if (close == NULL)
            return;
        size_t len = (size_t)(close - p - 1);
        bool known = false;
        for (size_t i = 0; placeholders[i] != NULL && !known; i++)
            known = strlen(placeholders[i]) == len && strncmp(p + 1, placeholders[i], len) == 0;
        if (!known)
            yd_errorf(ld->doc, id,
                      "unknown placeholder '%.*s' (known: {BatchRequestId} {submitUser} "
                      "{station} {amtUser} {application} {jobName} {params} {queue} "
                      "{amtVersion} {taskId} {n})",
                      (int)(len + 2), p);
    }
}

/* ---- jobs and scripts ------------------------------------------------- */

static bool add_step(struct loader *ld, int id, struct sim_job_def *j, struct sim_step s)
{
    if (j->nsteps >= MAX_STEPS) {
        yd_errorf(ld->doc, id, "more than %d messages and children in one job", MAX_STEPS);
        return false;
    }
    struct sim_step *n = realloc(j->steps, (j->nsteps + 1) * sizeof(*n));
    if (n == NULL) {
        yd_errorf(ld->doc, id, "out of memory");
        return false;
    }
    j->steps = n;
    j->steps[j->nsteps++] = s;
    return true;
}

static void parse_waits(struct loader *ld, int seq, struct sim_job_def *j)
{
    if (yd_type(ld->doc, seq) != YD_SEQ) {
        yd_errorf(ld->doc, seq, "'waits' must be a list of {code, duration}");
        return;
    }
    size_t n = yd_len(ld->doc, seq);
    j->waits = calloc(n ? n : 1, sizeof(*j->waits));
    if (j->waits == NULL)
        return;
    static const char *const keys[] = {"code", "duration", NULL};
    for (size_t i = 0; i < n; i++) {
        int w = yd_seq_at(ld->doc, seq, i);
        if (!yd_check_keys(ld->doc, w, keys))
            continue;
        struct sim_wait_def *wd = &j->waits[j->nwaits];
        int c = yd_map_get(ld->doc, w, "code"), d = yd_map_get(ld->doc, w, "duration");
        bool forever = false;
        if (c == 0 || d == 0) {
            yd_errorf(ld->doc, w, "a wait needs 'code' and 'duration'");
            continue;
        }
        if (!read_code(ld, c, &wd->code) || !read_duration(ld, d, false, &wd->duration, &forever))
            continue;
        if (amt_code_is_final(wd->code)) {
            yd_errorf(ld->doc, c, "a wait must use a non-final code, not %d (%s)", wd->code,
                      amt_code_name(wd->code));
            continue;
        }
        j->nwaits++;
    }
}

static void parse_messages(struct loader *ld, int seq, struct sim_job_def *j)
{
    if (yd_type(ld->doc, seq) != YD_SEQ) {
        yd_errorf(ld->doc, seq, "'messages' must be a list of {at, text}");
        return;
    }
    static const char *const keys[] = {"at", "text", "every", "count", NULL};
    for (size_t i = 0; i < yd_len(ld->doc, seq); i++) {
        int m = yd_seq_at(ld->doc, seq, i);
        if (!yd_check_keys(ld->doc, m, keys))
            continue;
        int at_n = yd_map_get(ld->doc, m, "at"), text_n = yd_map_get(ld->doc, m, "text");
        int every_n = yd_map_get(ld->doc, m, "every"), count_n = yd_map_get(ld->doc, m, "count");
        double at = 0, every = 0;
        long count = 1;
        const char *text;
        bool forever = false;
        if (text_n == 0) {
            yd_errorf(ld->doc, m, "a message needs 'text'");
            continue;
        }
        if (!yd_get_string(ld->doc, text_n, &text))
            continue;
        check_placeholders(ld, text_n, text);
        if (at_n != 0 && !read_duration(ld, at_n, false, &at, &forever))
            continue;
        if (count_n != 0 && !yd_get_long(ld->doc, count_n, 1, MAX_STEPS, &count))
            continue;
        if (every_n != 0 && !read_duration(ld, every_n, false, &every, &forever))
            continue;
        if (count > 1 && every_n == 0) {
            yd_errorf(ld->doc, m, "a repeated message ('count') needs 'every'");
            continue;
        }
        for (long k = 0; k < count; k++) {
            struct sim_step s = {.at = at + (double)k * every, .text = text, .n = k + 1};
            if (!add_step(ld, m, j, s))
                break;
        }
    }
}

static void parse_children(struct loader *ld, int seq, struct sim_job_def *j)
{
    if (yd_type(ld->doc, seq) != YD_SEQ) {
        yd_errorf(ld->doc, seq, "'children' must be a list of {at, job}");
        return;
    }
    static const char *const keys[] = {"at", "job", "application", NULL};
    for (size_t i = 0; i < yd_len(ld->doc, seq); i++) {
        int c = yd_seq_at(ld->doc, seq, i);
        if (!yd_check_keys(ld->doc, c, keys))
            continue;
        int at_n = yd_map_get(ld->doc, c, "at"), job_n = yd_map_get(ld->doc, c, "job");
        int app_n = yd_map_get(ld->doc, c, "application");
        struct pending_child pc = {.parent = j, .node = c};
        bool forever = false;
        if (job_n == 0) {
            yd_errorf(ld->doc, c, "a child needs 'job'");
            continue;
        }
        if (!yd_get_string(ld->doc, job_n, &pc.job))
            continue;
        if (app_n != 0 && !yd_get_string(ld->doc, app_n, &pc.app))
            continue;
        if (at_n != 0 && !read_duration(ld, at_n, false, &pc.at, &forever))
            continue;
        if (ld->nkids == ld->capkids) {
            size_t ncap = ld->capkids ? ld->capkids * 2 : 16;
            struct pending_child *n = realloc(ld->kids, ncap * sizeof(*n));
            if (n == NULL) {
                yd_errorf(ld->doc, c, "out of memory");
                return;
            }
            ld->kids = n;
            ld->capkids = ncap;
        }
        ld->kids[ld->nkids++] = pc;
    }
}

static const char *base_name(const char *path)
{
    const char *b = path;
    for (const char *p = path; *p; p++)
        if (*p == '\\' || *p == '/')
            b = p + 1;
    return b;
}

static void parse_job(struct loader *ld, int map, struct sim_app_def *app,
                      struct sim_job_def *j, enum sim_job_kind kind)
{
    static const char *const keys[] = {"name", "description", "waits", "run_code", "duration",
                                       "final", "messages", "children", NULL};
    j->kind = kind;
    j->app = app;
    j->run_code = AMT_RUNNING;
    j->final_code = AMT_DONE;
    j->line = yd_line(ld->doc, map);
    if (!yd_check_keys(ld->doc, map, keys) && yd_type(ld->doc, map) != YD_MAP)
        return;
    char *name = req_str(ld, map, "name");
    if (name == NULL)
        return;
    if (kind == SIM_JOB_SCRIPT && base_name(name) == name) {
        /* A bare script name lives in the application's script directory. */
        if (app->script_dir == NULL) {
            yd_errorf(ld->doc, yd_map_get(ld->doc, map, "name"),
                      "script '%s' has no directory and the application has no script_dir",
                      name);
            free(name);
            return;
        }
        size_t len = strlen(app->script_dir) + strlen(name) + 2;
        char *full = malloc(len);
        if (full == NULL) {
            free(name);
            return;
        }
        snprintf(full, len, "%s\\%s", app->script_dir, name);
        free(name);
        name = full;
    }
    j->name = name;
    j->base = strdup(base_name(name));
    int v;
    if ((v = yd_map_get(ld->doc, map, "waits")) != 0)
        parse_waits(ld, v, j);
    if ((v = yd_map_get(ld->doc, map, "run_code")) != 0 && read_code(ld, v, &j->run_code) &&
        j->run_code != AMT_RUNNING && j->run_code != AMT_RUN_MANUAL &&
        j->run_code != AMT_RUN_FORCED && j->run_code != AMT_RUN_DEBUG)
        yd_errorf(ld->doc, v, "run_code must be 2, 7, 8 or 9, not %d", j->run_code);
    if ((v = yd_map_get(ld->doc, map, "final")) != 0 && read_code(ld, v, &j->final_code) &&
        !amt_code_is_final(j->final_code))
        yd_errorf(ld->doc, v, "final must be a final code (3, 4, 6, 10, 11, 12, 19, 22, 23, "
                  "24, 99), not %d", j->final_code);
    if ((v = yd_map_get(ld->doc, map, "duration")) != 0)
        read_duration(ld, v, true, &j->duration, &j->forever);
    if ((v = yd_map_get(ld->doc, map, "messages")) != 0)
        parse_messages(ld, v, j);
    if ((v = yd_map_get(ld->doc, map, "children")) != 0)
        parse_children(ld, v, j);
    for (size_t i = 0; i < j->nsteps; i++) {
        if (!j->forever && j->steps[i].at > j->duration) {
            yd_errorf(ld->doc, map, "job '%s': a message at %gs comes after its duration %gs",
                      j->name, j->steps[i].at, j->duration);
            break;
        }
    }
}

static void parse_job_list(struct loader *ld, int seq, struct sim_app_def *app,
                           enum sim_job_kind kind)
{
    const char *what = kind == SIM_JOB_BATCH ? "jobs" : "scripts";
    if (yd_type(ld->doc, seq) != YD_SEQ) {
        yd_errorf(ld->doc, seq, "'%s' must be a list", what);
        return;
    }
    size_t n = yd_len(ld->doc, seq);
    struct sim_job_def *list = calloc(n ? n : 1, sizeof(*list));
    if (list == NULL)
        return;
    if (kind == SIM_JOB_BATCH)
        app->jobs = list;
    else
        app->scripts = list;
    for (size_t i = 0; i < n; i++) {
        int m = yd_seq_at(ld->doc, seq, i);
        struct sim_job_def *j = &list[i];
        parse_job(ld, m, app, j, kind);
        if (kind == SIM_JOB_BATCH)
            app->njobs = i + 1;
        else
            app->nscripts = i + 1;
        if (j->name == NULL)
            continue;
        for (size_t k = 0; k < i; k++) {
            bool same = kind == SIM_JOB_BATCH ? list[k].name && strcmp(list[k].name, j->name) == 0
                                              : list[k].name &&
                                                    strcasecmp(list[k].name, j->name) == 0;
            if (same)
                yd_errorf(ld->doc, m, "%s '%s' is defined twice (first on line %zu)",
                          kind == SIM_JOB_BATCH ? "job" : "script", j->name, list[k].line);
        }
    }
}

/* ---- top level ------------------------------------------------------- */

static void parse_users(struct loader *ld, int seq)
{
    struct sim_catalog *c = ld->cat;
    if (yd_type(ld->doc, seq) != YD_SEQ || yd_len(ld->doc, seq) == 0) {
        yd_errorf(ld->doc, seq, "'api_users' must be a non-empty list of {name, password}");
        return;
    }
    size_t n = yd_len(ld->doc, seq);
    c->users = calloc(n, sizeof(*c->users));
    if (c->users == NULL)
        return;
    static const char *const keys[] = {"name", "password", NULL};
    for (size_t i = 0; i < n; i++) {
        int m = yd_seq_at(ld->doc, seq, i);
        if (!yd_check_keys(ld->doc, m, keys))
            continue;
        char *name = req_str(ld, m, "name"), *pw = req_str(ld, m, "password");
        if (name == NULL || pw == NULL) {
            free(name);
            free(pw);
            continue;
        }
        for (size_t k = 0; k < c->nusers; k++)
            if (strcmp(c->users[k].name, name) == 0)
                yd_errorf(ld->doc, m, "API user '%s' is defined twice", name);
        c->users[c->nusers].name = name;
        c->users[c->nusers].password = pw;
        c->nusers++;
    }
}

static void parse_controller(struct loader *ld, int map)
{
    static const char *const keys[] = {"slots", "poll_interval", NULL};
    if (!yd_check_keys(ld->doc, map, keys))
        return;
    int v;
    if ((v = yd_map_get(ld->doc, map, "slots")) != 0)
        yd_get_long(ld->doc, v, 0, 1000000000L, &ld->cat->controller_slots);
    if ((v = yd_map_get(ld->doc, map, "poll_interval")) != 0)
        yd_get_double(ld->doc, v, 0, MAX_POLL_INTERVAL, &ld->cat->poll_interval);
}

static void parse_queues(struct loader *ld, int seq)
{
    struct sim_catalog *c = ld->cat;
    if (yd_type(ld->doc, seq) != YD_SEQ) {
        yd_errorf(ld->doc, seq, "'queues' must be a list");
        return;
    }
    size_t n = yd_len(ld->doc, seq);
    c->queues = calloc(n ? n : 1, sizeof(*c->queues));
    if (c->queues == NULL)
        return;
    static const char *const keys[] = {"name", "description", "application", "default",
                                       "start", "end", "concurrency", "priority", NULL};
    for (size_t i = 0; i < n; i++) {
        int m = yd_seq_at(ld->doc, seq, i);
        if (!yd_check_keys(ld->doc, m, keys))
            continue;
        struct sim_queue_def *q = &c->queues[c->nqueues];
        q->priority = SIM_PRIO_NORMAL;
        q->name = req_str(ld, m, "name");
        if (q->name == NULL)
            continue;
        c->nqueues++;
        for (size_t k = 0; k + 1 < c->nqueues; k++)
            if (strcmp(c->queues[k].name, q->name) == 0)
                yd_errorf(ld->doc, m, "queue '%s' is defined twice", q->name);
        q->application = opt_str(ld, m, "application");
        int v;
        if ((v = yd_map_get(ld->doc, m, "default")) != 0)
            yd_get_bool(ld->doc, v, &q->is_default);
        int s = yd_map_get(ld->doc, m, "start"), e = yd_map_get(ld->doc, m, "end");
        if ((s == 0) != (e == 0)) {
            yd_errorf(ld->doc, m, "queue '%s': 'start' and 'end' go together", q->name);
        } else if (s != 0) {
            q->windowed = read_hms(ld, s, &q->start_s) && read_hms(ld, e, &q->end_s);
        }
        if ((v = yd_map_get(ld->doc, m, "concurrency")) != 0)
            yd_get_long(ld->doc, v, 0, 1000000000L, &q->concurrency);
        if ((v = yd_map_get(ld->doc, m, "priority")) != 0) {
            const char *p;
            if (yd_get_string(ld->doc, v, &p)) {
                if (strcasecmp(p, "high") == 0)
                    q->priority = SIM_PRIO_HIGH;
                else if (strcasecmp(p, "low") == 0)
                    q->priority = SIM_PRIO_LOW;
                else if (strcasecmp(p, "normal") != 0)
                    yd_errorf(ld->doc, v, "priority must be high, normal or low, not '%s'", p);
            }
        }
    }
}

static void parse_apps(struct loader *ld, int seq)
{
    struct sim_catalog *c = ld->cat;
    if (yd_type(ld->doc, seq) != YD_SEQ || yd_len(ld->doc, seq) == 0) {
        yd_errorf(ld->doc, seq, "'applications' must be a non-empty list");
        return;
    }
    size_t n = yd_len(ld->doc, seq);
    c->apps = calloc(n, sizeof(*c->apps));
    if (c->apps == NULL)
        return;
    static const char *const keys[] = {"name", "description", "user", "users", "script_dir",
                                       "default_queue", "jobs", "scripts", NULL};
    for (size_t i = 0; i < n; i++) {
        int m = yd_seq_at(ld->doc, seq, i);
        if (!yd_check_keys(ld->doc, m, keys) && yd_type(ld->doc, m) != YD_MAP)
            continue;
        struct sim_app_def *a = &c->apps[c->napps];
        a->name = req_str(ld, m, "name");
        if (a->name == NULL)
            continue;
        c->napps++;
        for (size_t k = 0; k + 1 < c->napps; k++)
            if (strcmp(c->apps[k].name, a->name) == 0)
                yd_errorf(ld->doc, m, "application '%s' is defined twice", a->name);
        a->user = req_str(ld, m, "user");
        a->script_dir = opt_str(ld, m, "script_dir");
        a->default_queue = opt_str(ld, m, "default_queue");
        int v;
        if ((v = yd_map_get(ld->doc, m, "users")) != 0) {
            if (yd_type(ld->doc, v) != YD_SEQ) {
                yd_errorf(ld->doc, v, "'users' must be a list of AMT user names");
            } else {
                size_t nu = yd_len(ld->doc, v);
                a->users = calloc(nu ? nu : 1, sizeof(char *));
                for (size_t k = 0; a->users != NULL && k < nu; k++) {
                    char *u = dup_str(ld, yd_seq_at(ld->doc, v, k));
                    if (u != NULL)
                        a->users[a->nusers++] = u;
                }
            }
        }
        if ((v = yd_map_get(ld->doc, m, "jobs")) != 0)
            parse_job_list(ld, v, a, SIM_JOB_BATCH);
        if ((v = yd_map_get(ld->doc, m, "scripts")) != 0)
            parse_job_list(ld, v, a, SIM_JOB_SCRIPT);
        if (a->default_queue != NULL) {
            const struct sim_queue_def *q = sim_catalog_queue(c, a->default_queue);
            if (q == NULL || !sim_catalog_queue_usable(q, a))
                yd_errorf(ld->doc, yd_map_get(ld->doc, m, "default_queue"),
                          "default_queue '%s' is not a queue of application '%s'",
                          a->default_queue, a->name);
        }
    }
}

/* Checks queue-to-application links and that defaults are unique. */
static void check_queues(struct loader *ld, int seq)
{
    struct sim_catalog *c = ld->cat;
    size_t qi = 0;
    for (size_t i = 0; i < yd_len(ld->doc, seq) && qi < c->nqueues; i++) {
        int m = yd_seq_at(ld->doc, seq, i);
        if (yd_map_get(ld->doc, m, "name") == 0)
            continue;
        const struct sim_queue_def *q = &c->queues[qi++];
        if (q->application != NULL && sim_catalog_app(c, q->application) == NULL)
            yd_errorf(ld->doc, yd_map_get(ld->doc, m, "application"),
                      "queue '%s' names unknown application '%s'", q->name, q->application);
        for (size_t k = 0; k + 1 < qi; k++) {
            const struct sim_queue_def *o = &c->queues[k];
            bool same_scope = (o->application == NULL && q->application == NULL) ||
                              (o->application && q->application &&
                               strcmp(o->application, q->application) == 0);
            if (q->is_default && o->is_default && same_scope)
                yd_errorf(ld->doc, m, "queues '%s' and '%s' are both the default of %s", o->name,
                          q->name, q->application ? q->application : "all applications");
        }
    }
}

static const struct sim_job_def *find_any_job(const struct sim_app_def *a, const char *name)
{
    const struct sim_job_def *j = sim_catalog_job(a, name);
    return j ? j : sim_catalog_script(a, name);
}

/* Depth-first: a job reachable from itself would spawn children forever. */
static bool acyclic(const struct sim_job_def *j, size_t depth, size_t limit)
{
    if (depth > limit)
        return false;
    for (size_t i = 0; i < j->nsteps; i++)
        if (j->steps[i].child && !acyclic(j->steps[i].child, depth + 1, limit))
            return false;
    return true;
}

static void sort_steps(struct sim_job_def *j)
{
    /* Insertion sort: stable (catalog order on equal offsets) and the lists
     * are short and mostly sorted already. */
    for (size_t i = 1; i < j->nsteps; i++) {
        struct sim_step s = j->steps[i];
        size_t k = i;
        while (k > 0 && j->steps[k - 1].at > s.at) {
            j->steps[k] = j->steps[k - 1];
            k--;
        }
        j->steps[k] = s;
    }
}

static void resolve_children(struct loader *ld)
{
    struct sim_catalog *c = ld->cat;
    for (size_t i = 0; i < ld->nkids; i++) {
        struct pending_child *pc = &ld->kids[i];
        const struct sim_app_def *app = pc->app ? sim_catalog_app(c, pc->app) : pc->parent->app;
        if (app == NULL) {
            yd_errorf(ld->doc, pc->node, "child names unknown application '%s'", pc->app);
            continue;
        }
        const struct sim_job_def *job = find_any_job(app, pc->job);
        if (job == NULL) {
            yd_errorf(ld->doc, pc->node, "child job '%s' is not in application '%s'", pc->job,
                      app->name);
            continue;
        }
        if (!pc->parent->forever && pc->at > pc->parent->duration)
            yd_errorf(ld->doc, pc->node, "child at %gs starts after the job's duration %gs",
                      pc->at, pc->parent->duration);
        struct sim_step s = {.at = pc->at, .child = job};
        add_step(ld, pc->node, pc->parent, s);
    }
    size_t total = 0;
    for (size_t a = 0; a < c->napps; a++)
        total += c->apps[a].njobs + c->apps[a].nscripts;
    for (size_t a = 0; a < c->napps; a++) {
        struct sim_app_def *app = &c->apps[a];
        for (size_t k = 0; k < app->njobs + app->nscripts; k++) {
            struct sim_job_def *j = k < app->njobs ? &app->jobs[k] : &app->scripts[k - app->njobs];
            sort_steps(j);
        }
    }
    if (yd_error_count(ld->doc) > 0)
        return;
    for (size_t i = 0; i < ld->nkids; i++) {
        if (!acyclic(ld->kids[i].parent, 0, total)) {
            yd_errorf(ld->doc, ld->kids[i].node, "job '%s' is its own descendant",
                      ld->kids[i].parent->name);
            return;
        }
    }
}

static void parse_root(struct loader *ld)
{
    struct yd_doc *doc = ld->doc;
    struct sim_catalog *c = ld->cat;
    int root = yd_root(doc);
    if (root == 0) {
        if (yd_error_count(doc) == 0)
            yd_errorf(doc, 0, "the catalog is empty");
        return;
    }
    static const char *const keys[] = {"first_request_id", "amt_version", "api_users",
                                       "controller", "queues", "applications", NULL};
    if (!yd_check_keys(doc, root, keys) && yd_type(doc, root) != YD_MAP)
        return;
    int v;
    c->first_request_id = 1;
    if ((v = yd_map_get(doc, root, "first_request_id")) != 0)
        yd_get_long(doc, v, 1, 1000000000L, &c->first_request_id);
    c->amt_version = (v = yd_map_get(doc, root, "amt_version")) != 0 ? dup_str(ld, v)
                                                                      : strdup("8.0.24223.0");
    if ((v = yd_map_get(doc, root, "api_users")) != 0)
        parse_users(ld, v);
    else
        yd_errorf(doc, root, "missing required key 'api_users'");
    if ((v = yd_map_get(doc, root, "controller")) != 0)
        parse_controller(ld, v);
    int queues = yd_map_get(doc, root, "queues");
    if (queues != 0)
        parse_queues(ld, queues);
    if ((v = yd_map_get(doc, root, "applications")) != 0)
        parse_apps(ld, v);
    else
        yd_errorf(doc, root, "missing required key 'applications'");
    if (queues != 0 && yd_type(doc, queues) == YD_SEQ)
        check_queues(ld, queues);
    resolve_children(ld);
}

struct sim_catalog *sim_catalog_load(const char *path, FILE *err)
{
    struct loader ld = {0};
    ld.doc = yd_load_file(path);
    ld.cat = calloc(1, sizeof(*ld.cat));
    if (ld.doc == NULL || ld.cat == NULL) {
        fprintf(err, "%s: out of memory\n", path);
        goto fail;
    }
    ld.cat->path = strdup(path);
    parse_root(&ld);
    if (yd_error_count(ld.doc) > 0) {
        for (size_t i = 0; i < yd_error_count(ld.doc); i++)
            fprintf(err, "%s\n", yd_error(ld.doc, i));
        goto fail;
    }
    /* Step texts point into the document: copy them before it goes. */
    for (size_t a = 0; a < ld.cat->napps; a++) {
        struct sim_app_def *app = &ld.cat->apps[a];
        for (size_t k = 0; k < app->njobs + app->nscripts; k++) {
            struct sim_job_def *j = k < app->njobs ? &app->jobs[k] : &app->scripts[k - app->njobs];
            for (size_t s = 0; s < j->nsteps; s++) {
                if (j->steps[s].text == NULL)
                    continue;
                j->steps[s].text = strdup(j->steps[s].text);
                if (j->steps[s].text == NULL) {
                    fprintf(err, "%s: out of memory\n", path);
                    goto fail;
                }
            }
        }
    }
    free(ld.kids);
    yd_free(ld.doc);
    return ld.cat;
fail:
    /* Texts still borrowed from the document must not be freed. */
    if (ld.cat != NULL) {
        for (size_t a = 0; a < ld.cat->napps; a++) {
            struct sim_app_def *app = &ld.cat->apps[a];
            for (size_t k = 0; k < app->njobs + app->nscripts; k++) {
                struct sim_job_def *j =
                    k < app->njobs ? &app->jobs[k] : &app->scripts[k - app->njobs];
                free(j->steps);
                j->steps = NULL;
                j->nsteps = 0;
            }
        }
    }
    free(ld.kids);
    yd_free(ld.doc);
    sim_catalog_free(ld.cat);
    return NULL;
}

static void free_job(struct sim_job_def *j)
{
    free(j->name);
    free(j->base);
    free(j->waits);
    for (size_t s = 0; s < j->nsteps; s++)
        free((char *)(uintptr_t)j->steps[s].text);
    free(j->steps);
}

void sim_catalog_free(struct sim_catalog *c)
{
    if (c == NULL)
        return;
    for (size_t a = 0; a < c->napps; a++) {
        struct sim_app_def *app = &c->apps[a];
        free(app->name);
        free(app->user);
        for (size_t k = 0; k < app->nusers; k++)
            free(app->users[k]);
        free(app->users);
        free(app->script_dir);
        free(app->default_queue);
        for (size_t k = 0; k < app->njobs; k++)
            free_job(&app->jobs[k]);
        for (size_t k = 0; k < app->nscripts; k++)
            free_job(&app->scripts[k]);
        free(app->jobs);
        free(app->scripts);
    }
    free(c->apps);
    for (size_t i = 0; i < c->nqueues; i++) {
        free(c->queues[i].name);
        free(c->queues[i].application);
    }
    free(c->queues);
    for (size_t i = 0; i < c->nusers; i++) {
        free(c->users[i].name);
        free(c->users[i].password);
    }
    free(c->users);
    free(c->amt_version);
    free(c->path);
    free(c);
}

/* ---- lookups ----------------------------------------------------------- */

const struct sim_app_def *sim_catalog_app(const struct sim_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->napps; i++)
        if (c->apps[i].name && strcmp(c->apps[i].name, name) == 0)
            return &c->apps[i];
    return NULL;
}

const struct sim_job_def *sim_catalog_job(const struct sim_app_def *app, const char *name)
{
    for (size_t i = 0; i < app->njobs; i++)
        if (app->jobs[i].name && strcmp(app->jobs[i].name, name) == 0)
            return &app->jobs[i];
    return NULL;
}

const struct sim_job_def *sim_catalog_script(const struct sim_app_def *app, const char *name)
{
    bool bare = base_name(name) == name;
    for (size_t i = 0; i < app->nscripts; i++) {
        const struct sim_job_def *s = &app->scripts[i];
        if (s->name == NULL)
            continue;
        if (strcasecmp(s->name, name) == 0)
            return s;
        /* A bare name means "in the application's script directory". */
        if (bare && app->script_dir != NULL && strcasecmp(s->base, name) == 0) {
            size_t dl = strlen(app->script_dir);
            if (strncasecmp(s->name, app->script_dir, dl) == 0 &&
                (s->name[dl] == '\\' || s->name[dl] == '/') && strcasecmp(s->name + dl + 1, name) == 0)
                return s;
        }
    }
    return NULL;
}

const struct sim_queue_def *sim_catalog_queue(const struct sim_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nqueues; i++)
        if (strcmp(c->queues[i].name, name) == 0)
            return &c->queues[i];
    return NULL;
}

bool sim_catalog_queue_usable(const struct sim_queue_def *q, const struct sim_app_def *app)
{
    return q->application == NULL || strcmp(q->application, app->name) == 0;
}

const struct sim_queue_def *sim_catalog_default_queue(const struct sim_catalog *c,
                                                      const struct sim_app_def *app)
{
    if (app->default_queue != NULL)
        return sim_catalog_queue(c, app->default_queue);
    for (size_t i = 0; i < c->nqueues; i++)
        if (c->queues[i].is_default && c->queues[i].application &&
            strcmp(c->queues[i].application, app->name) == 0)
            return &c->queues[i];
    for (size_t i = 0; i < c->nqueues; i++)
        if (c->queues[i].is_default && c->queues[i].application == NULL)
            return &c->queues[i];
    return NULL;
}

bool sim_catalog_user_valid(const struct sim_app_def *app, const char *user)
{
    if (app->user != NULL && strcasecmp(app->user, user) == 0)
        return true;
    for (size_t i = 0; i < app->nusers; i++)
        if (strcasecmp(app->users[i], user) == 0)
            return true;
    return false;
}
