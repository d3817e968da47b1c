#include "amtacs/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amtacs/codes.h"

#define NCODES 101 /* 0..99, and one slot for any other code a server invents */

static const double http_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
static const double db_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS 14


struct hist {
    uint64_t le[NBOUNDS]; /* observations per bucket (not yet cumulative) */
    uint64_t count;
    double sum;
};

struct metrics_conn {
    struct metrics *owner; /* whose lock guards these series */
    struct metrics_conn *next;
    char *name;
    char comm[16];
    int server_up;
    long in_flight;
    bool configured;
    uint64_t starts;
    uint64_t failovers; /* jobs taken from an earlier listed connection */
    uint64_t finished[NCODES];
    uint64_t alerts[NCODES];
    struct hist *http;        /* [labels.n_calls] */
    uint64_t *http_outcomes; /* [call * labels.n_outcomes + outcome] */
};

struct metrics {
    pthread_mutex_t mu;
    struct metrics_http_labels labels; /* n_calls 0: none */
    struct metrics_conn *conns; /* in order of first use */
    struct metrics_conn **tail;
    struct hist db;
    uint64_t db_errors;
    bool db_up;
    uint64_t reloads_ok, reloads_failed;
    int64_t last_tick_ms, started_ms;
};

static void observe(struct hist *h, const double *bounds, double v)
{
    for (size_t i = 0; i < NBOUNDS; i++)
        if (v <= bounds[i]) {
            h->le[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

static int code_slot(int code) { return code >= 0 && code < NCODES - 1 ? code : NCODES - 1; }

struct metrics *metrics_new(const struct metrics_http_labels *labels)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (labels && labels->n_calls && labels->n_outcomes)
        m->labels = *labels;
    if (pthread_mutex_init(&m->mu, NULL)) {
        free(m);
        return NULL;
    }
    m->tail = &m->conns;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    struct metrics_conn *mc = m->conns;
    while (mc) {
        struct metrics_conn *next = mc->next;
        free(mc->name);
        free(mc->http);
        free(mc->http_outcomes);
        free(mc);
        mc = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

struct metrics_conn *metrics_conn_get(struct metrics *m, const char *name)
{
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->mu);
    struct metrics_conn *mc;
    for (mc = m->conns; mc; mc = mc->next)
        if (!strcmp(mc->name, name))
            goto out;
    mc = calloc(1, sizeof *mc);
    if (!mc)
        goto out;
    size_t nc = m->labels.n_calls;
    mc->name = strdup(name);
    mc->http = calloc(nc ? nc : 1, sizeof *mc->http);
    mc->http_outcomes = calloc(nc ? nc * m->labels.n_outcomes : 1, sizeof *mc->http_outcomes);
    if (!mc->name || !mc->http || !mc->http_outcomes) {
        free(mc->name);
        free(mc->http);
        free(mc->http_outcomes);
        free(mc);
        mc = NULL;
        goto out;
    }
    mc->owner = m;
    snprintf(mc->comm, sizeof mc->comm, "unknown");
    mc->server_up = -1;
    mc->configured = true;
    *m->tail = mc;
    m->tail = &mc->next;
out:
    pthread_mutex_unlock(&m->mu);
    return mc;
}

#define LOCKED(mc, body)                                                                      \
    do {                                                                                      \
        if (!(mc))                                                                            \
            return;                                                                           \
        struct metrics *m_ = (mc)->owner;                                                    \
        pthread_mutex_lock(&m_->mu);                                                          \
        body;                                                                                 \
        pthread_mutex_unlock(&m_->mu);                                                        \
    } while (0)

void metrics_conn_state(struct metrics_conn *mc, const char *comm, int server_up,
                        long in_flight, bool configured)
{
    LOCKED(mc, {
        snprintf(mc->comm, sizeof mc->comm, "%s", comm);
        mc->server_up = server_up;
        mc->in_flight = in_flight;
        mc->configured = configured;
    });
}

void metrics_job_started(struct metrics_conn *mc) { LOCKED(mc, mc->starts++); }
void metrics_job_failover(struct metrics_conn *mc) { LOCKED(mc, mc->failovers++); }

void metrics_job_finished(struct metrics_conn *mc, int code)
{
    LOCKED(mc, mc->finished[code_slot(code)]++);
}

void metrics_alert(struct metrics_conn *mc, int code) { LOCKED(mc, mc->alerts[code_slot(code)]++); }

void metrics_http_call(struct metrics_conn *mc, unsigned call, double seconds,
                       unsigned outcome)
{
    if (!mc)
        return;
    const struct metrics_http_labels *l = &mc->owner->labels; /* fixed at metrics_new */
    if (call >= l->n_calls || outcome >= l->n_outcomes || !l->outcomes[outcome])
        return;
    LOCKED(mc, {
        observe(&mc->http[call], http_bounds, seconds < 0 ? 0 : seconds);
        mc->http_outcomes[call * l->n_outcomes + outcome]++;
    });
}

void metrics_db_statement(struct metrics *m, double seconds, bool ok)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    observe(&m->db, db_bounds, seconds < 0 ? 0 : seconds);
    if (!ok)
        m->db_errors++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_db_up(struct metrics *m, bool up)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->db_up = up;
    pthread_mutex_unlock(&m->mu);
}

void metrics_loop_tick(struct metrics *m, int64_t now_ms)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->last_tick_ms = now_ms;
    pthread_mutex_unlock(&m->mu);
}

void metrics_reload(struct metrics *m, bool ok)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_health(struct metrics *m, struct metrics_health *out)
{
    pthread_mutex_lock(&m->mu);
    out->last_tick_ms = m->last_tick_ms;
    out->db_up = m->db_up;
    out->started_ms = m->started_ms;
    pthread_mutex_unlock(&m->mu);
}

/* ------------------------------------------------------------ rendering */

bool metrics_label_value(struct buf *out, const char *s)
{
    if (buf_putc(out, '"'))
        return false;
    for (; *s; s++) {
        enum buf_rc rc = *s == '\\'   ? buf_puts(out, "\\\\")
                         : *s == '"'  ? buf_puts(out, "\\\"")
                         : *s == '\n' ? buf_puts(out, "\\n")
                                      : buf_putc(out, *s);
        if (rc)
            return false;
    }
    return !buf_putc(out, '"');
}

static bool head(struct buf *b, const char *name, const char *type, const char *help)
{
    return !buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{connection="..."[,extra]} */
static bool series(struct buf *b, const char *name, const char *suffix,
                   const struct metrics_conn *mc, const char *extra)
{
    bool labels = mc || (extra && *extra);
    if (buf_printf(b, "%s%s%s", name, suffix, labels ? "{" : ""))
        return false;
    if (mc && (buf_puts(b, "connection=") || !metrics_label_value(b, mc->name)))
        return false;
    if (extra && *extra && buf_printf(b, "%s%s", mc ? "," : "", extra))
        return false;
    return !buf_puts(b, labels ? "} " : " ");
}

static bool hist_lines(struct buf *b, const char *name, const struct metrics_conn *mc,
                       const char *label, const struct hist *h, const double *bounds)
{
    uint64_t cum = 0;
    char extra[128];
    for (size_t i = 0; i < NBOUNDS; i++) {
        cum += h->le[i];
        snprintf(extra, sizeof extra, "%s%sle=\"%g\"", label, *label ? "," : "", bounds[i]);
        if (!series(b, name, "_bucket", mc, extra) || buf_printf(b, "%llu\n",
                                                                 (unsigned long long)cum))
            return false;
    }
    snprintf(extra, sizeof extra, "%s%sle=\"+Inf\"", label, *label ? "," : "");
    if (!series(b, name, "_bucket", mc, extra) ||
        buf_printf(b, "%llu\n", (unsigned long long)h->count))
        return false;
    if (!series(b, name, "_sum", mc, label) || buf_printf(b, "%.6f\n", h->sum))
        return false;
    return series(b, name, "_count", mc, label) &&
           !buf_printf(b, "%llu\n", (unsigned long long)h->count);
}

/* The calls to the Batch Server, under the labels metrics_new was given. */
static bool render_http(struct metrics *m, struct buf *b)
{
    const struct metrics_http_labels *l = &m->labels;
    char extra[160], help[256] = "Calls to the Batch Server by call and outcome";
    const char *sep = " (";
    for (size_t st = 0; st < l->n_outcomes; st++)
        if (l->outcomes[st]) {
            snprintf(help + strlen(help), sizeof help - strlen(help), "%s%s", sep,
                     l->outcomes[st]);
            sep = ", ";
        }
    snprintf(help + strlen(help), sizeof help - strlen(help), "%s.", *sep == ',' ? ")" : "");

    if (!head(b, "amtacs_http_request_seconds", "histogram",
              "Duration of the calls to the Batch Server, by call."))
        return false;
    for (struct metrics_conn *mc = m->conns; mc; mc = mc->next)
        for (size_t call = 0; call < l->n_calls; call++) {
            snprintf(extra, sizeof extra, "call=\"%s\"", l->calls[call]);
            if (!hist_lines(b, "amtacs_http_request_seconds", mc, extra, &mc->http[call],
                            http_bounds))
                return false;
        }
    if (!head(b, "amtacs_http_requests_total", "counter", help))
        return false;
    for (struct metrics_conn *mc = m->conns; mc; mc = mc->next)
        for (size_t call = 0; call < l->n_calls; call++)
            for (size_t st = 0; st < l->n_outcomes; st++) {
                uint64_t n = mc->http_outcomes[call * l->n_outcomes + st];
                if (!n)
                    continue;
                snprintf(extra, sizeof extra, "call=\"%s\",outcome=\"%s\"", l->calls[call],
                         l->outcomes[st]);
                if (!series(b, "amtacs_http_requests_total", "", mc, extra) ||
                    buf_printf(b, "%llu\n", (unsigned long long)n))
                    return false;
            }
    return true;
}

static bool render_locked(struct metrics *m, struct buf *b)
{
    struct metrics_conn *mc;
    char extra[160];

    if (!head(b, "amtacs_start_time_seconds", "gauge", "When the daemon started (Unix time).") ||
        buf_printf(b, "amtacs_start_time_seconds %.3f\n", (double)m->started_ms / 1000.0))
        return false;
    if (!head(b, "amtacs_database_up", "gauge",
              "1 while the daemon's statement connection to PostgreSQL is up.") ||
        buf_printf(b, "amtacs_database_up %d\n", m->db_up ? 1 : 0))
        return false;
    if (!head(b, "amtacs_database_statement_seconds", "histogram",
              "Round trip of the daemon's database statements, queued to result.") ||
        !hist_lines(b, "amtacs_database_statement_seconds", NULL, "", &m->db, db_bounds))
        return false;
    if (!head(b, "amtacs_database_errors_total", "counter",
              "Database statements that failed (and were retried).") ||
        buf_printf(b, "amtacs_database_errors_total %llu\n", (unsigned long long)m->db_errors))
        return false;
    if (!head(b, "amtacs_config_reloads_total", "counter",
              "SIGHUP reloads, applied or refused.") ||
        buf_printf(b, "amtacs_config_reloads_total{result=\"applied\"} %llu\n"
                      "amtacs_config_reloads_total{result=\"refused\"} %llu\n",
                   (unsigned long long)m->reloads_ok, (unsigned long long)m->reloads_failed))
        return false;

    if (!head(b, "amtacs_connection_configured", "gauge",
              "1 for a connection in the configuration, 0 once a reload removed it (its "
              "jobs in hand are still followed)."))
        return false;
    for (mc = m->conns; mc; mc = mc->next)
        if (!series(b, "amtacs_connection_configured", "", mc, NULL) ||
            buf_printf(b, "%d\n", mc->configured ? 1 : 0))
            return false;
    if (!head(b, "amtacs_comm_state", "gauge",
              "Full Comm state of each connection: 1 for the current state."))
        return false;
    static const char *const states[] = {"enabled", "limited", "disabled", "unknown"};
    for (mc = m->conns; mc; mc = mc->next)
        for (size_t i = 0; i < 4; i++) {
            snprintf(extra, sizeof extra, "state=\"%s\"", states[i]);
            if (!series(b, "amtacs_comm_state", "", mc, extra) ||
                buf_printf(b, "%d\n", strcmp(mc->comm, states[i]) ? 0 : 1))
                return false;
        }
    if (!head(b, "amtacs_server_up", "gauge",
              "1 if the Batch Server answered the last heartbeat, 0 if it did not (absent "
              "before the first)."))
        return false;
    for (mc = m->conns; mc; mc = mc->next)
        if (mc->server_up >= 0 && (!series(b, "amtacs_server_up", "", mc, NULL) ||
                                   buf_printf(b, "%d\n", mc->server_up)))
            return false;
    if (!head(b, "amtacs_jobs_in_flight", "gauge",
              "Jobs this daemon holds (claimed, started or being followed)."))
        return false;
    for (mc = m->conns; mc; mc = mc->next)
        if (!series(b, "amtacs_jobs_in_flight", "", mc, NULL) ||
            buf_printf(b, "%ld\n", mc->in_flight))
            return false;
    if (!head(b, "amtacs_job_starts_total", "counter",
              "Jobs the Batch Server accepted a Start for."))
        return false;
    for (mc = m->conns; mc; mc = mc->next)
        if (!series(b, "amtacs_job_starts_total", "", mc, NULL) ||
            buf_printf(b, "%llu\n", (unsigned long long)mc->starts))
            return false;
    if (!head(b, "amtacs_job_failovers_total", "counter",
              "Jobs this connection took from an earlier listed connection (disabled, silent "
              "past its failover_after, or its Start never left there)."))
        return false;
    for (mc = m->conns; mc; mc = mc->next)
        if (!series(b, "amtacs_job_failovers_total", "", mc, NULL) ||
            buf_printf(b, "%llu\n", (unsigned long long)mc->failovers))
            return false;
    if (!head(b, "amtacs_job_completions_total", "counter",
              "Jobs finished by this daemon, by completion code and result."))
        return false;
    for (mc = m->conns; mc; mc = mc->next)
        for (int code = 0; code < NCODES; code++) {
            if (!mc->finished[code])
                continue;
            if (code == NCODES - 1)
                snprintf(extra, sizeof extra, "code=\"other\",name=\"UNKNOWN\",result=\"failure\"");
            else
                snprintf(extra, sizeof extra, "code=\"%d\",name=\"%s\",result=\"%s\"", code,
                         amt_code_name(code), amt_code_is_success(code) ? "success" : "failure");
            if (!series(b, "amtacs_job_completions_total", "", mc, extra) ||
                buf_printf(b, "%llu\n", (unsigned long long)mc->finished[code]))
                return false;
        }
    if (!head(b, "amtacs_alerts_total", "counter",
              "Alerts raised (completion codes 11, 12, 23 and 24), by code."))
        return false;
    for (mc = m->conns; mc; mc = mc->next)
        for (int code = 0; code < NCODES; code++) {
            if (!mc->alerts[code])
                continue;
            snprintf(extra, sizeof extra, "code=\"%d\",name=\"%s\"", code, amt_code_name(code));
            if (!series(b, "amtacs_alerts_total", "", mc, extra) ||
                buf_printf(b, "%llu\n", (unsigned long long)mc->alerts[code]))
                return false;
        }
    return render_http(m, b);
}

bool metrics_render(struct metrics *m, struct buf *out)
{
    pthread_mutex_lock(&m->mu);
    bool ok = render_locked(m, out);
    pthread_mutex_unlock(&m->mu);
    return ok;
}
