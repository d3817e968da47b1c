/*
 * metrics: the daemon's counters, gauges and histograms, written by the
 * engine's loop and read by the HTTP thread (/metrics, /healthz, /readyz).
 *
 * Every function is safe to call from any thread: one mutex guards the
 * registry, held for a few instructions per update, so the hot path pays an
 * uncontended lock per event and nothing else. Rendering copies nothing it
 * does not print.
 */
#ifndef AMTACS_METRICS_H
#define AMTACS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amtacs/buf.h"

struct metrics;
/* The series of one AMT connection; owned by the registry, stable until
 * metrics_free(), so the engine may keep the pointer across reloads. */
struct metrics_conn;

/* The label values of the calls to the Batch Server and of their outcomes,
 * indexed by the numbers metrics_http_call() is given: the client's enums
 * (amt.h), which the registry need not know; the daemon wires the two. An
 * outcome whose label is NULL is not counted. The arrays and strings are
 * borrowed and must outlive the registry. */
struct metrics_http_labels {
    const char *const *calls;
    size_t n_calls;
    const char *const *outcomes;
    size_t n_outcomes;
};

/* NULL when out of memory. labels may be NULL: no call series then. */
struct metrics *metrics_new(const struct metrics_http_labels *labels);
void metrics_free(struct metrics *m);

/* The series of the named connection, created on first use; NULL when out of
 * memory (every update function accepts NULL and does nothing). */
struct metrics_conn *metrics_conn_get(struct metrics *m, const char *name);

/* Connection gauges. comm is "enabled", "limited", "disabled" or "unknown";
 * server_up is 1 (the last heartbeat answered), 0 (it failed) or -1 (none
 * yet); configured is false once a reload removed the connection. */
void metrics_conn_state(struct metrics_conn *mc, const char *comm, int server_up,
                        long in_flight, bool configured);
void metrics_job_started(struct metrics_conn *mc);
/* A job came to this connection from an earlier listed one (Integration Selection). */
void metrics_job_failover(struct metrics_conn *mc);
/* A job's final result written; code is its completion code. */
void metrics_job_finished(struct metrics_conn *mc, int code);
void metrics_alert(struct metrics_conn *mc, int code);
/* One call to the Batch Server: its duration and how it ended (indexes into
 * the labels given to metrics_new; others are ignored). */
void metrics_http_call(struct metrics_conn *mc, unsigned call, double seconds,
                       unsigned outcome);

/* One database statement's round trip (queue to result). */
void metrics_db_statement(struct metrics *m, double seconds, bool ok);
void metrics_db_up(struct metrics *m, bool up);
/* The engine's loop went round (for /healthz). */
void metrics_loop_tick(struct metrics *m, int64_t now_ms);
/* A SIGHUP reload was applied (ok) or refused. */
void metrics_reload(struct metrics *m, bool ok);

/* What /healthz and /readyz look at. */
struct metrics_health {
    int64_t last_tick_ms; /* monotonic ms of the loop's last turn, 0 before the first */
    bool db_up;
    int64_t started_ms;   /* wall-clock ms at metrics_new */
};
void metrics_health(struct metrics *m, struct metrics_health *out);

/* Appends every series in the Prometheus text format (version 0.0.4).
 * Returns false when out of memory or past the buffer's cap. */
bool metrics_render(struct metrics *m, struct buf *out) __attribute__((warn_unused_result));

/* Appends `s` as a Prometheus label value (backslash, quote and newline escaped). */
bool metrics_label_value(struct buf *out, const char *s) __attribute__((warn_unused_result));

#endif
