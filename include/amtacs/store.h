/*
 * store: the daemon's statements, typed. Each call queues one statement on a
 * pgconn (every one a function of sql/0002_daemon.sql, fenced by owner and
 * attempt) and calls back once with the parsed outcome. `err` is NULL on
 * success; on failure nothing is known about the outcome of a write (the
 * connection may have broken after the commit), which every function below
 * tolerates when simply called again.
 */
#ifndef AMTACS_STORE_H
#define AMTACS_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "amtacs/jobspec.h"
#include "amtacs/pgconn.h"

/* A claimed job. Strings are borrowed for the duration of the callback. */
struct store_job {
    long long id;
    int attempt;
    bool running;            /* state running: follow it, never start it again */
    struct jobspec spec;     /* what to start (amt_user, queue_name NULL for the defaults) */
    const char *task_id;
    int batch_request_id;    /* 0 while not started */
    bool kill_requested;
    const char *kill_requested_by; /* the role that asked for the kill, or NULL */
    bool taken_over;         /* another holder had it: its Start may have been sent */
    const char *tried;       /* the connections its Start never left before, with URL and
                                error ("A (URL): error; ..."), or NULL */
    bool failover;           /* it came here from an earlier listed connection */
};

typedef void (*store_claim_cb)(void *ud, const struct store_job *jobs, size_t n, const char *err);
typedef void (*store_bool_cb)(void *ud, bool held, const char *err);
typedef void (*store_finish_cb)(void *ud, const char *outcome, const char *err);
typedef void (*store_lost_cb)(void *ud, const long long *lost, size_t n, const char *err);
/* A renewal's outcome: the jobs no longer held (drop them) and the jobs whose
 * row another session had locked (still held, lease not renewed this time). */
typedef void (*store_renew_cb)(void *ud, const long long *lost, size_t nlost,
                               const long long *busy, size_t nbusy, const char *err);

/* The error a write reports (the same pointer) when the job's row was locked
 * by another session: the daemon never waits for someone else's row lock
 * (sql/0009_lock_order.sql), so the write is to be made again shortly. */
extern const char store_row_busy[];
typedef void (*store_secret_cb)(void *ud, const char *key_id, const unsigned char *sealed,
                                size_t len, const char *err);
typedef void (*store_done_cb)(void *ud, const char *err);

/* Records a configured connection's settings (new ones start with Full Comm enabled). */
int store_configure_connection(struct pgconn *pc, const char *name, const char *url,
                               const char *batch_user, bool allow_kill, long retain_log_days,
                               long failover_after_ms, store_done_cb cb, void *ud);
/* The comm state of a connection: "enabled", "limited", "disabled" (NULL if unknown). */
typedef void (*store_text_cb)(void *ud, const char *value, const char *err);
int store_comm_state(struct pgconn *pc, const char *name, store_text_cb cb, void *ud);
/* A heartbeat's outcome (error NULL when ok). */
int store_connection_checked(struct pgconn *pc, const char *name, bool ok,
                             const char *amt_version, const char *error, store_done_cb cb,
                             void *ud);
/* A Kill call's outcome: error NULL when the server accepted it. */
int store_kill_outcome(struct pgconn *pc, long long id, const char *owner, int attempt,
                       const char *error, store_bool_cb cb, void *ud);
/* Purges up to max_rows expired job logs; n is how many went. */
typedef void (*store_count_cb)(void *ud, long n, const char *err);
int store_purge(struct pgconn *pc, int max_rows, store_count_cb cb, void *ud);
/* Claims up to max_jobs queued jobs of a connection; with take_over, jobs
 * whose lease expired (their daemon died) first. Looking for expired leases
 * scans every job the connection has in hand: ask for it on a rescan, not on
 * every claim. */
/* server_answers: this daemon's view of the connection's server. While it
 * does not answer, jobs that can go to another listed connection that is up
 * are left to it (Integration Selection, acs.claim_jobs). */
int store_claim(struct pgconn *pc, const char *owner, const char *connection, int max_jobs,
                int lease_seconds, bool take_over, bool server_answers, store_claim_cb cb,
                void *ud);
/* Renews the leases of held jobs, in id order, skipping rows others have locked. */
int store_renew(struct pgconn *pc, const char *owner, const long long *ids, const int *attempts,
                size_t n, int lease_seconds, store_renew_cb cb, void *ud);
/* Takes the session-level advisory lock that proves this daemon alive
 * (sql/0010_liveness.sql); held false when another session has it (an earlier
 * session of ours the server has not yet seen die). */
int store_register(struct pgconn *pc, const char *owner, store_bool_cb cb, void *ud);
/* held true when a daemon whose session ended holds jobs of these connections. */
int store_takeover_due(struct pgconn *pc, const char *owner, const char *const *connections,
                       size_t n, store_bool_cb cb, void *ud);
/* The jobs owner holds that an operator wants killed (acs.request_kill set
 * kill_requested_at): the only source of kills, asked on NOTIFY acs_kill and
 * whenever one may have been lost. urgent: ahead of the statements waiting. */
int store_kills_pending(struct pgconn *pc, const char *owner, bool urgent, store_lost_cb cb,
                        void *ud);
/* starting -> in_doubt with an alert; held false when the caller no longer held it. */
int store_in_doubt(struct pgconn *pc, long long id, const char *owner, int attempt,
                   const char *reason, store_bool_cb cb, void *ud);
/* Records messages of a running job (json: [{"seq","id","text"}]); best effort. */
int store_add_messages(struct pgconn *pc, long long id, const char *owner, int attempt,
                       const char *json, store_done_cb cb, void *ud);
int store_release(struct pgconn *pc, const char *owner, store_done_cb cb, void *ud);
/* key_id NULL (and no error) when the Batch User does not exist. */
int store_batch_user_secret(struct pgconn *pc, const char *name, store_secret_cb cb, void *ud);

/* ---- batches: many jobs' writes in one statement ----
 * The hot writes (a job started, its state changed, it finished) are collected while the loop
 * runs and sent together by store_batch_flush(), one statement per kind, so
 * that throughput is not bounded by one round trip and one commit per job.
 * Each item's callback runs once, with that item's own outcome. */
struct store_batch;

/* A batch for the daemon instance `owner` (copied). NULL when out of memory. */
struct store_batch *store_batch_new(const char *owner);
/* Calls every pending item's callback with "shutting down" and frees. */
void store_batch_free(struct store_batch *b);
/* Items not yet sent. */
size_t store_batch_pending(const struct store_batch *b);
/* Queue a write; -1 when out of memory (then the callback will not run). */
int store_batch_started(struct store_batch *b, long long id, int attempt, int batch_request_id,
                        store_bool_cb cb, void *ud);
int store_batch_progress(struct store_batch *b, long long id, int attempt, int code,
                         store_bool_cb cb, void *ud);
/* unreachable: the job's Start never left (start_retry.attempts used up, no
 * try may have arrived). The database then gives it to its next listed
 * connection not yet tried, if any (outcome "requeued"), else ends it. */
int store_batch_finish(struct store_batch *b, long long id, int attempt, int code,
                       const char *error, const char *log, bool unreachable, store_finish_cb cb,
                       void *ud);
/* Sends what is pending (at most one statement per kind); -1 if it could not. */
int store_batch_flush(struct store_batch *b, struct pgconn *pc);

#endif
