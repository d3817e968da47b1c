/*
 * conn: one AMT connection's life, as the daemon sees it.
 *
 * A connection owns its client and the Batch User's credentials (the sealed
 * password read from the database, opened only for a logon), the heartbeat
 * and the features it reports, the Full Comm state, the settings the job
 * rules read (job_limits, job_view), the count of jobs in flight against
 * max_in_flight, and the gathering of status checks into MonitorJobs calls.
 *
 * The engine keeps the loop, the timers and the jobs; it reaches a
 * connection only through the functions below, and is told of what concerns
 * its jobs through the hooks of struct conn_env. The rules that need no I/O
 * (conn_comm_apply, conn_heartbeat_apply, conn_room, conn_heartbeat_due,
 * conn_limits, conn_view) are separate functions, so that they can be tested
 * without a server or a database.
 */
#ifndef AMTACS_CONN_H
#define AMTACS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amtacs/amt.h"
#include "amtacs/config.h"
#include "amtacs/job.h"
#include "amtacs/log.h"
#include "amtacs/metrics.h"
#include "amtacs/vault.h"

struct conn;
struct pgconn;
/* A client and the credentials its logons use, made before it is put in
 * force, so that a reload can prepare everything that may fail first. */
struct conn_client;

/* What a MonitorJobs answer says of one job of the call. */
struct conn_check {
    const struct amt_reply *r;   /* the whole answer (its status, its error) */
    const struct amt_job *found; /* the job's entry, or NULL */
    bool unknown;                /* not found: the server does not know the request */
};

/* What every connection shares with the engine, which owns it and keeps it
 * for as long as any connection lives. */
struct conn_env {
    struct logger *lg;
    struct metrics *metrics;        /* NULL: none kept */
    const struct vault_secret *key; /* opens the sealed passwords */
    CURLM *multi;                   /* the clients' (not owned) */
    struct pgconn *pc;              /* the statements; set before the first one */
    /* The engine's side. ud is given back to tearing_down; a connection's own
     * ud (conn_new) to the other hooks. */
    void *ud;
    bool (*tearing_down)(void *ud);           /* answers only let go of what they hold */
    void (*comm_changed)(void *conn_ud);      /* the Full Comm state changed */
    void (*checked)(void *job, const struct conn_check *ck); /* once per queued check */
    void (*not_sent)(void *job); /* a queued check whose call could not be queued */
};

/* A connection without a client (conn_client_install gives it one); cfg is
 * borrowed and must outlive it (or be replaced by conn_set_cfg). NULL when
 * out of memory. */
struct conn *conn_new(const struct conn_env *env, const struct amtacs_connection *cfg,
                      void *ud);
/* Frees the client (its calls end AMT_ERR_CANCELLED), the retired ones, the
 * credentials. NULL is a no-op. */
void conn_free(struct conn *c);

/* A client for settings cc. The password already read is carried over when
 * carry is true and the Batch User is the same. NULL with err set on failure. */
struct conn_client *conn_client_new(struct conn *c, const struct amtacs_connection *cc,
                                    bool carry, char *err, size_t errlen);
void conn_client_free(struct conn_client *cl);
/* Puts cl in force (taking it). A client it replaces is retired: freed once
 * its calls in flight are back (conn_sweep); the new server says again what
 * it offers (a heartbeat is due at once). user_changed: the Batch User is
 * another, so a password load on its way is for the old one. */
void conn_client_install(struct conn *c, struct conn_client *cl, bool user_changed);
/* Frees the retired clients that are idle (all: every one). */
void conn_sweep(struct conn *c, bool all);
/* Stopping: every call ends here (the jobs keep running on the server). */
void conn_stop_calls(struct conn *c);
/* Logs what the transport puts at risk (plain http, unverified TLS). */
void conn_warn_transport(const struct conn *c);

const struct amtacs_connection *conn_cfg(const struct conn *c);
void conn_set_cfg(struct conn *c, const struct amtacs_connection *cfg);
const char *conn_name(const struct conn *c);
/* NULL while stopping. */
struct amt_client *conn_amt(const struct conn *c);
struct metrics_conn *conn_metrics(const struct conn *c);
/* A reload took it out: no claims, its jobs in hand go on. */
bool conn_removed(const struct conn *c);
void conn_set_removed(struct conn *c, bool removed);

/* ---- Full Comm */
enum job_comm conn_comm(const struct conn *c);
/* Reads the state from the database: coalesced, one read in flight and one
 * more pending however many notifications ask. */
void conn_load_comm(struct conn *c);
/* The state read (value NULL: none): true if it changed. A change that lets
 * anything go to the server makes a heartbeat due at `now`. */
bool conn_comm_apply(struct conn *c, const char *value, int64_t now);
/* "enabled", "limited", "disabled" or "unknown" (the metrics' label). */
const char *conn_comm_name(enum job_comm comm);

/* ---- the Batch User's password */
/* Coalesced like conn_load_comm, per Batch User. */
void conn_load_secret(struct conn *c);
/* A Start waits for the password: read it unless a read is on its way. */
void conn_need_secret(struct conn *c);

/* ---- heartbeat and features */
/* Whether a heartbeat is due: its time has come, none is in flight, there is
 * a client, Full Comm lets calls go, and the connection still has a reason
 * to live (configured, or jobs in hand). */
bool conn_heartbeat_due(const struct conn *c, int64_t now);
/* Sends the heartbeat when it is due; the next one is due interval_ms later. */
void conn_heartbeat(struct conn *c, int64_t now, int64_t interval_ms);
int64_t conn_next_heartbeat(const struct conn *c);
/* A heartbeat answer (not a cancelled one): true when the features are
 * news worth logging (the first answer, or a change). */
bool conn_heartbeat_apply(struct conn *c, const struct amt_reply *r, int64_t now);
/* A heartbeat has answered and says that Start is idempotent per taskId. */
/* The last heartbeat answered, or none has come back yet (claims leave jobs
 * with another listed connection that is up to it while this is false). */
bool conn_server_answers(const struct conn *c);
bool conn_start_idempotent(const struct conn *c);
/* The server offers MonitorJobs (checks are gathered into bulk calls). */
bool conn_monitor_jobs(const struct conn *c);

/* ---- the rules' view */
struct job_limits conn_limits(const struct conn *c);
/* What the connection knows now; lease_holds is true (the engine asks the
 * lease separately: asking logs when it does not hold). */
struct job_view conn_view(const struct conn *c, int64_t now);

/* ---- jobs in flight */
void conn_job_added(struct conn *c);
void conn_job_removed(struct conn *c);
size_t conn_in_flight(const struct conn *c);
/* How many jobs a claim may ask for: the room under max_in_flight, at most
 * batch; 0 when full. */
long conn_room(const struct conn *c, long batch);

/* ---- status checks */
/* A place for the request brid in the next MonitorJobs call; the answer goes
 * to env->checked(job, ...). -1 when out of memory (nothing queued). */
int conn_queue_check(struct conn *c, int brid, void *job);
/* Sends the queued checks, up to 1,000 per call; those that could not be
 * sent go to env->not_sent. Nothing happens without a client. */
void conn_flush_checks(struct conn *c);

/* A MonitorJobs answer r for the requests brids[0..n) of jobs[0..n): each
 * job's part goes to env->checked (a 404 or 405 also says the server no
 * longer offers MonitorJobs). The reading of the answer, apart from the call. */
void conn_checks_answered(struct conn *c, void *const *jobs, const int *brids, size_t n,
                          const struct amt_reply *r);

/* ---- the gauges and the database */
/* The connection's gauges, for /metrics. */
void conn_publish(const struct conn *c);
/* Tells the database of the connection's settings; fresh: also reads its
 * Full Comm state and password (a new connection, a new Batch User, a
 * reconnect). */
void conn_configure(struct conn *c, bool fresh);

#endif
