/* sim_faults: run-time fault settings, their PRNG and interruptible sleeps. */
#include "sim_faults.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DELAY_MS (10L * 60 * 1000)
#define MAX_OVERSIZED (256UL << 20)
#define DEFAULT_OVERSIZED (2UL << 20)
#define MAX_ROUTES 16

static const char *const known_routes[] = {
    "heartbeat", "logon", "start", "kill", "stop", "monitor", "monitor_jobs", "messages",
    "other", NULL,
};

struct settings {
    long latency_ms;
    double error_rate;
    int error_status;
    double reset_rate;
    double reset_after_rate;
    double hang_rate;
    long hang_ms;
    double malformed_rate;
    double oversized_rate;
    size_t oversized_bytes;
    double wrong_content_type_rate;
    bool down;
    const char *routes[MAX_ROUTES]; /* pointers into known_routes; nroutes 0 = all */
    size_t nroutes;
    long count;                     /* matching requests left; -1 = unlimited */
};

struct sim_faults {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    uint64_t rng;
    struct settings s;
};

static void defaults(struct settings *s)
{
    memset(s, 0, sizeof(*s));
    s->error_status = 503;
    s->hang_ms = 30000;
    s->oversized_bytes = DEFAULT_OVERSIZED;
    s->count = -1;
}

struct sim_faults *sim_faults_create(uint64_t seed)
{
    struct sim_faults *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        pthread_condattr_destroy(&ca);
        free(f);
        return NULL;
    }
    if (pthread_cond_init(&f->wake, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    f->rng = seed ^ 0x9E3779B97F4A7C15ULL;
    defaults(&f->s);
    return f;
}

void sim_faults_free(struct sim_faults *f)
{
    if (f == NULL)
        return;
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* splitmix64: tiny, seedable and good enough for rates. */
static double draw(struct sim_faults *f)
{
    uint64_t z = (f->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0; /* [0, 1) */
}

static bool fires(struct sim_faults *f, double rate)
{
    /* Drawing even for rate 0 would make one fault's setting shift another's dice. */
    return rate > 0 && draw(f) < rate;
}

static bool route_matches(const struct settings *s, const char *route)
{
    if (s->nroutes == 0)
        return true;
    for (size_t i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i], route) == 0)
            return true;
    return false;
}

void sim_faults_plan(struct sim_faults *f, const char *route, struct sim_fault_plan *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->lock);
    struct settings *s = &f->s;
    if (s->count == 0 || !route_matches(s, route))
        goto out;
    out->latency_ms = s->latency_ms;
    out->error_status = s->error_status;
    out->hang_ms = s->hang_ms;
    out->oversized_bytes = s->oversized_bytes;
    if (s->down || fires(f, s->reset_rate))
        out->cut = SIM_CUT_RESET;
    else if (fires(f, s->hang_rate))
        out->cut = SIM_CUT_HANG;
    else if (fires(f, s->error_rate))
        out->cut = SIM_CUT_ERROR;
    if (out->cut == SIM_CUT_NONE) {
        out->reset_after = fires(f, s->reset_after_rate);
        out->malformed = fires(f, s->malformed_rate);
        out->oversized = fires(f, s->oversized_rate);
        out->wrong_content_type = fires(f, s->wrong_content_type_rate);
    }
    out->any = out->latency_ms > 0 || out->cut != SIM_CUT_NONE || out->reset_after ||
               out->malformed || out->oversized || out->wrong_content_type;
    if (s->count > 0 && --s->count == 0) {
        /* The last counted request: everything goes back to normal. */
        defaults(s);
        s->count = 0;
    }
out:
    pthread_mutex_unlock(&f->lock);
}

cJSON *sim_faults_get(struct sim_faults *f)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    pthread_mutex_lock(&f->lock);
    const struct settings *s = &f->s;
    cJSON_AddNumberToObject(o, "latency_ms", (double)s->latency_ms);
    cJSON_AddNumberToObject(o, "error_rate", s->error_rate);
    cJSON_AddNumberToObject(o, "error_status", s->error_status);
    cJSON_AddNumberToObject(o, "reset_rate", s->reset_rate);
    cJSON_AddNumberToObject(o, "reset_after_rate", s->reset_after_rate);
    cJSON_AddNumberToObject(o, "hang_rate", s->hang_rate);
    cJSON_AddNumberToObject(o, "hang_ms", (double)s->hang_ms);
    cJSON_AddNumberToObject(o, "malformed_rate", s->malformed_rate);
    cJSON_AddNumberToObject(o, "oversized_rate", s->oversized_rate);
    cJSON_AddNumberToObject(o, "oversized_bytes", (double)s->oversized_bytes);
    cJSON_AddNumberToObject(o, "wrong_content_type_rate", s->wrong_content_type_rate);
    cJSON_AddBoolToObject(o, "down", s->down);
    cJSON *routes = cJSON_AddArrayToObject(o, "routes");
    for (size_t i = 0; routes != NULL && i < s->nroutes; i++)
        cJSON_AddItemToArray(routes, cJSON_CreateString(s->routes[i]));
    if (s->count < 0)
        cJSON_AddNullToObject(o, "count");
    else
        cJSON_AddNumberToObject(o, "count", (double)s->count);
    pthread_mutex_unlock(&f->lock);
    return o;
}

static bool get_rate(const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1)
        return false;
    *out = v->valuedouble;
    return true;
}

static bool get_int(const cJSON *v, long min, long max, long *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (d != (double)(long long)d || d < (double)min || d > (double)max)
        return false;
    *out = (long)d;
    return true;
}

static bool set_routes(struct settings *s, const cJSON *v)
{
    if (cJSON_IsNull(v))
        return true;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > MAX_ROUTES)
        return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it))
            return false;
        size_t k;
        for (k = 0; known_routes[k] != NULL; k++)
            if (strcmp(known_routes[k], it->valuestring) == 0)
                break;
        if (known_routes[k] == NULL)
            return false;
        s->routes[s->nroutes++] = known_routes[k];
    }
    return true;
}

bool sim_faults_set(struct sim_faults *f, const cJSON *o, char *err, size_t errlen)
{
    struct settings s;
    defaults(&s);
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "the body must be a JSON object");
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        const char *k = it->string;
        long n;
        bool ok = true;
        if (strcmp(k, "latency_ms") == 0)
            ok = get_int(it, 0, MAX_DELAY_MS, &s.latency_ms);
        else if (strcmp(k, "error_rate") == 0)
            ok = get_rate(it, &s.error_rate);
        else if (strcmp(k, "error_status") == 0) {
            ok = get_int(it, 400, 599, &n);
            s.error_status = (int)n;
        } else if (strcmp(k, "reset_rate") == 0)
            ok = get_rate(it, &s.reset_rate);
        else if (strcmp(k, "reset_after_rate") == 0)
            ok = get_rate(it, &s.reset_after_rate);
        else if (strcmp(k, "hang_rate") == 0)
            ok = get_rate(it, &s.hang_rate);
        else if (strcmp(k, "hang_ms") == 0)
            ok = get_int(it, 0, MAX_DELAY_MS, &s.hang_ms);
        else if (strcmp(k, "malformed_rate") == 0)
            ok = get_rate(it, &s.malformed_rate);
        else if (strcmp(k, "oversized_rate") == 0)
            ok = get_rate(it, &s.oversized_rate);
        else if (strcmp(k, "oversized_bytes") == 0) {
            ok = get_int(it, 1, (long)MAX_OVERSIZED, &n);
            s.oversized_bytes = (size_t)n;
        } else if (strcmp(k, "wrong_content_type_rate") == 0)
            ok = get_rate(it, &s.wrong_content_type_rate);
        else if (strcmp(k, "down") == 0) {
            ok = cJSON_IsBool(it);
            s.down = cJSON_IsTrue(it);
        } else if (strcmp(k, "routes") == 0)
            ok = set_routes(&s, it);
        else if (strcmp(k, "count") == 0)
            ok = cJSON_IsNull(it) || get_int(it, 1, 1000000000L, &s.count);
        else {
            snprintf(err, errlen, "unknown fault field '%.64s'", k);
            return false;
        }
        if (!ok) {
            snprintf(err, errlen, "bad value for '%s' (rates 0..1, times in ms, routes from: "
                     "heartbeat logon start kill stop monitor monitor_jobs messages other)", k);
            return false;
        }
    }
    pthread_mutex_lock(&f->lock);
    f->s = s;
    pthread_mutex_unlock(&f->lock);
    return true;
}

void sim_faults_clear(struct sim_faults *f)
{
    pthread_mutex_lock(&f->lock);
    defaults(&f->s);
    pthread_mutex_unlock(&f->lock);
}

bool sim_faults_sleep(struct sim_faults *f, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    int rc = 0;
    while (!f->stopping && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&f->wake, &f->lock, &until);
    bool slept = !f->stopping;
    pthread_mutex_unlock(&f->lock);
    return slept;
}

void sim_faults_shutdown(struct sim_faults *f)
{
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
}
