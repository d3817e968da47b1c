#include "amtacs/engine.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "amtacs/alertcmd.h"
#include "amtacs/amt.h"
#include "amtacs/buf.h"
#include "amtacs/codes.h"
#include "amtacs/conn.h"
#include "amtacs/job.h"
#include "amtacs/joblog.h"
#include "amtacs/jobspec.h"
#include "amtacs/metrics.h"
#include "amtacs/pgconn.h"
#include "amtacs/sentset.h"
#include "amtacs/store.h"
#include "amtacs/text.h"
#include "amtacs/timeutil.h"

#define NOT_IN_HEAP SIZE_MAX
#define MESSAGES_PAGE 1000   /* messages per GetMessages call */
#define CLAIM_POLL_MS 5000   /* a rescan even without a NOTIFY */
#define TAKEOVER_CHECK_MS 1000 /* how often we look for daemons whose session ended */
#define SENT_REMEMBERED 100000 /* taskIds of Starts to a non-idempotent server (sentset.h) */
#define FLUSH_BEHIND 2       /* statements waiting, below which hot writes are sent */
#define DB_RETRY_MS JOB_RETRY_MS /* a failed write is tried again after this */
#define PURGE_BATCH 500      /* job logs deleted per statement */
#define PUBLISH_MS 1000      /* connection gauges handed to the metrics this often */

struct hold;

/* One job in hand: its machine (job.h: phase, flags, counters, every rule)
 * and what the I/O needs beside it. */
struct job {
    struct hold *h;
    long long id;
    int attempt;
    struct job_machine m;
    bool gone;          /* freed while its Kill call was in flight: on_kill frees it */
    char *killed_by;    /* who asked for the kill, when the claim said (for the log) */
    char *doubt;        /* why the job is going in doubt */
    struct jobspec *spec; /* owned (jobspec_dup): the claim's, for the Start and the log */
    char task_id[40];
    char *error;        /* text for the job log and the row, or NULL */
    char *tried;        /* connections its Start never left before (claim's), or NULL */
    char **msgs;
    size_t nmsgs, capmsgs;
    size_t log_bytes;     /* bytes of the messages kept */
    bool truncated;       /* the log reached daemon.max_log_bytes */
    long after;
    int64_t lease_until; /* our lease surely holds until then (monotonic ms) */
    int64_t row_locked_since; /* a write found the row locked by someone else (0: no) */
    int64_t due;
    size_t heap_idx;
    struct job *prev, *next;
};

/* What the engine holds on one connection (conn.h: the connection's own
 * life): the jobs in hand and the claims that bring more. */
struct hold {
    struct engine *e;
    struct conn *conn;
    struct job *jobs;
    bool claiming, claim_again;
    bool take_over; /* the next claim also takes over expired leases */
    int64_t claim_sent_at;
};

/* Configurations replaced by reloads: connections removed by one still point
 * into it while their jobs run, so all are kept until the engine is freed. */
struct old_cfg {
    const struct amtacs_config *cfg;
    struct old_cfg *next;
};

struct engine {
    const struct amtacs_config *cfg; /* owned */
    struct old_cfg *old_cfgs;
    char *config_path;               /* what SIGHUP reloads; NULL: no reload */
    struct logger *lg;
    struct metrics *metrics;
    struct conn_env env; /* what the connections share with the engine */
    char *owner;
    int signal_fd;
    long grace_ms;
    int lease_s;
    CURLM *multi;
    struct pgconn *pc;     /* every statement */
    struct pgconn *listen; /* LISTEN only: a connection busy with a long statement
                              would hold notifications (a kill) back until it ends */
    struct store_batch *batch; /* started/finished writes, sent once per loop turn */
    struct hold **holds; /* one per connection; removed ones stay until the engine is freed */
    size_t nholds, capholds;
    struct job **heap;
    size_t nheap, capheap;
    struct sentset *sent; /* taskIds we sent Start for to a non-idempotent server */
    bool db_up;
    bool alive;          /* our statement session holds the lock that proves us alive */
    bool registering;    /* taking that lock is on its way */
    bool lock_busy_said; /* said that another session still holds it */
    bool checking;       /* a look for daemons whose session ended is on its way */
    bool kill_checking, kill_again; /* a kills_pending read in flight; another wanted */
    int64_t next_takeover_check;
    bool renewing;
    int64_t renew_sent_at;
    int64_t next_renew, next_claim_poll, next_purge, next_publish;
    bool purging;
    struct alertcmd *alerts; /* alert commands running and waiting */
    int stopping;        /* 0 running, 1 draining, 2 now */
    int64_t stop_deadline;
    bool releasing, released;
#ifdef AMTACS_TEST_HOOKS
    char crash_at[32];   /* tests only (AMTACS_CRASH_AT): die at this point... */
    long crash_countdown; /* ...when reached this many more times */
#endif
};

static void job_due_now(struct job *j);
static void claim(struct hold *h);
static void reload(struct engine *e);
static void send_kill(struct job *j);
static bool lease_holds(struct job *j);

/* For tests only: AMTACS_CRASH_AT=POINT[:N] makes the daemon die the way
 * kill -9 would, the Nth time (default 1st) it reaches the named point, so a
 * test can show that a crash exactly there loses and repeats nothing. Points:
 * after-claim (jobs leased to us, nothing sent), after-start-sent (the server
 * accepted Start, its BatchRequestId not yet recorded), after-start-recorded
 * (the BatchRequestId is in the database), before-final-write (the job has
 * ended on the server, its result not yet written). */
#ifdef AMTACS_TEST_HOOKS
static void crash_point(struct engine *e, const char *point)
{
    if (e->crash_at[0] && !strcmp(e->crash_at, point) && --e->crash_countdown == 0) {
        log_event(e->lg, LOG_ERROR, "daemon.crash_point", NULL, "AMTACS_CRASH_AT=%s: dying",
                  point);
        kill(getpid(), SIGKILL);
    }
}
#else
/* Only test builds (cmake -DAMTACS_TEST_HOOKS=ON) have the hook. */
static void crash_point(struct engine *e, const char *point)
{
    (void)e;
    (void)point;
}
#endif

static struct log_ctx jctx(const struct job *j)
{
    struct log_ctx x = {conn_name(j->h->conn), j->id, j->m.brid};
    return x;
}

/* ------------------------------------------------------------ timer heap */

static bool earlier(const struct job *a, const struct job *b) { return a->due < b->due; }

static void heap_swap(struct engine *e, size_t a, size_t b)
{
    struct job *t = e->heap[a];
    e->heap[a] = e->heap[b];
    e->heap[b] = t;
    e->heap[a]->heap_idx = a;
    e->heap[b]->heap_idx = b;
}

static void heap_up(struct engine *e, size_t i)
{
    while (i > 0 && earlier(e->heap[i], e->heap[(i - 1) / 2])) {
        heap_swap(e, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct engine *e, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < e->nheap && earlier(e->heap[l], e->heap[m]))
            m = l;
        if (r < e->nheap && earlier(e->heap[r], e->heap[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(e, i, m);
        i = m;
    }
}

static void heap_remove(struct engine *e, struct job *j)
{
    size_t i = j->heap_idx;
    if (i == NOT_IN_HEAP)
        return;
    e->nheap--;
    if (i != e->nheap) {
        e->heap[i] = e->heap[e->nheap];
        e->heap[i]->heap_idx = i;
        heap_down(e, i);
        heap_up(e, i);
    }
    j->heap_idx = NOT_IN_HEAP;
}

/* Runs the job's next step after delay_ms. */
static void schedule(struct job *j, int64_t delay_ms)
{
    struct engine *e = j->h->e;
    heap_remove(e, j);
    if (e->nheap == e->capheap) {
        size_t ncap = e->capheap ? e->capheap * 2 : 256;
        struct job **n = realloc(e->heap, ncap * sizeof *n);
        if (!n) {
            log_event(e->lg, LOG_ERROR, "engine.oom", NULL, "cannot schedule job %lld", j->id);
            return;
        }
        e->heap = n;
        e->capheap = ncap;
    }
    j->due = now_ms() + (delay_ms > 0 ? delay_ms : 0);
    j->heap_idx = e->nheap;
    e->heap[e->nheap++] = j;
    heap_up(e, j->heap_idx);
}

/* The next status check of a running job. Checks are gathered on a common
 * beat (a quarter of the poll interval, at most 250 ms) so that each loop
 * turn sends one MonitorJobs call for many jobs rather than one for a few:
 * what keeps following 100,000 jobs cheap. */
static void schedule_check(struct job *j, int64_t delay_ms)
{
    int64_t beat = conn_cfg(j->h->conn)->poll.interval_ms / 4;
    if (beat > 250)
        beat = 250;
    if (beat < 1 || !conn_monitor_jobs(j->h->conn)) {
        schedule(j, delay_ms);
        return;
    }
    int64_t due = now_ms() + delay_ms;
    due += beat - due % beat;
    schedule(j, due - now_ms());
}

/* ------------------------------------------------------------ jobs */

static void job_memory_free(struct job *j)
{
    free(j->spec);
    for (size_t i = 0; i < j->nmsgs; i++)
        free(j->msgs[i]);
    free(j->msgs);
    free(j->error);
    free(j->tried);
    free(j->doubt);
    free(j->killed_by);
    free(j);
}

/* The job is done with: it leaves the connection (its slot is free at once).
 * A Kill call still in flight holds the job as its callback's argument, so
 * the memory goes when that call returns (on_kill), not before. */
static void job_free(struct job *j)
{
    struct hold *h = j->h;
    heap_remove(h->e, j);
    if (j->prev)
        j->prev->next = j->next;
    else
        h->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    conn_job_removed(h->conn);
    if (j->m.kill_busy)
        j->gone = true;
    else
        job_memory_free(j);
    claim(h); /* a slot is free */
}

static void set_error(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The text for the job log and the row (NULL: none). */
static void set_error(struct job *j, const char *fmt, ...)
{
    free(j->error);
    j->error = NULL;
    if (fmt) {
        char text[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        j->error = strdup(text);
    }
}

static void set_doubt(struct job *j, const char *reason)
{
    free(j->doubt);
    j->doubt = strdup(reason); /* NULL: write_doubt says less */
}

/* Words what the machine decided: the texts for the row and the log, and the
 * log lines, with the server's error where there is one (err). */
static void explain(struct job *j, const struct job_out *o, const char *err)
{
    struct engine *en = j->h->e;
    struct log_ctx x = jctx(j);
    const char *e = err ? err : "";
    if (o->refused)
        return;
    if ((o->actions & JA_WRITE_FINISH) && o->from != JOB_FINISH_WRITE)
        set_error(j, NULL); /* the notes below that end the job say why */
    switch (o->note) {
    case JN_NONE:
    case JN_WAIT_LEASE:       /* lease_holds() said so */
    case JN_WAIT_FEATURES:
    case JN_WAIT_IDEMPOTENCE:
    case JN_FOLLOW_RETRY_QUIET:
        break;
    case JN_WAIT_PASSWORD:
        if (en->db_up)
            conn_need_secret(j->h->conn);
        break;
    case JN_DOUBT_SENT_BEFORE:
        set_doubt(j, "this daemon sent Start for the job's taskId before the database lost the "
                     "claim (a failover?), and the server does not promise an idempotent Start");
        break;
    case JN_DOUBT_EARLIER_HOLDER:
        set_doubt(j, "an earlier holder of the job may have sent Start, and the server does not "
                     "promise an idempotent Start");
        break;
    case JN_DOUBT_START_FAILED: {
        char why[700];
        snprintf(why, sizeof why,
                 "the Start call failed after it was sent (%s) and the server does not promise "
                 "an idempotent Start: it may have started the job",
                 e);
        set_doubt(j, why);
        break;
    }
    case JN_DOUBT_RETRIES_OUT: {
        char why[700];
        snprintf(why, sizeof why,
                 "start_retry.attempts (%ld) are used up and a Start may have reached the server "
                 "(last: %s): it may be running the job under its taskId",
                 j->m.start_tries, e);
        set_doubt(j, why);
        break;
    }
    case JN_AUTH:
        set_error(j, "%s", e);
        break;
    case JN_START_REFUSED:
        set_error(j, "the Batch Server refused the start: %s", e);
        break;
    case JN_UNREACHABLE:
        set_error(j, "the Batch Server could not be reached to start the job (%ld attempts): %s",
                  j->m.start_tries, e);
        break;
    case JN_BAD_REQUEST:
        set_error(j, "the job could not be turned into a Start request");
        break;
    case JN_RETRY_UNSURE:
        log_event(en->lg, LOG_WARN, "job.start_retry", &x,
                  "attempt %ld failed after it was sent: %s; sent again only if the server's "
                  "heartbeat says its Start is idempotent", j->m.start_tries, e);
        break;
    case JN_RETRY:
        log_event(en->lg, LOG_WARN, "job.start_retry", &x, "attempt %ld failed: %s",
                  j->m.start_tries, e);
        break;
    case JN_UNDEFINED:
        set_error(j, "the Batch Server does not know BatchRequestId %d (%s)", j->m.brid,
                  *e ? e : "not listed");
        break;
    case JN_FOLLOW_RESUMED:
        log_event(en->lg, LOG_INFO, "job.follow_resumed", &x, "the server answers again after "
                  "%ld failed check(s)", o->failures);
        break;
    case JN_FOLLOW_RETRY:
        log_event(en->lg, LOG_WARN, "job.follow_retry", &x, "check %ld failed: %s",
                  o->failures, err ? err : "unknown request");
        break;
    case JN_MESSAGES_RETRY:
        log_event(en->lg, LOG_WARN, "job.messages_retry", &x, "%s", e);
        break;
    case JN_MESSAGES_LOST:
        set_error(j, "the job's messages could not be read: %s", e);
        break;
    case JN_KILLED_QUEUED:
        set_error(j, "killed by %s while queued; it never reached the AMT server",
                  j->killed_by ? j->killed_by : "an operator");
        break;
    }
    if (o->state_changed)
        log_event(en->lg, LOG_DEBUG, "job.state", &x, "%s (%d)", amt_code_name(j->m.last_code),
                  j->m.last_code);
}

static void send_start(struct job *j);
static void monitor(struct job *j);
static void fetch_messages(struct job *j);
static void write_started(struct job *j);
static void write_finish(struct job *j);
static void write_doubt(struct job *j);
static void on_progress_written(void *ud, bool held, const char *err);

/* Does what the machine asked for, in the order of enum job_action. The job
 * is freed when the actions include JA_DROP. */
static void act(struct job *j, const struct job_out *o)
{
    struct engine *e = j->h->e;
    if (o->refused) {
        struct log_ctx x = jctx(j);
        log_event(e->lg, LOG_ERROR, "job.refused", &x,
                  "event %s refused in phase %s: the job's machine has no such transition",
                  job_event_name(o->event), job_phase_name(o->from));
        return;
    }
    unsigned a = o->actions;
    if (a & JA_WRITE_PROGRESS)
        store_batch_progress(e->batch, j->id, j->attempt, j->m.last_code, on_progress_written,
                             NULL);
    if (a & JA_KILL_REFUSED) {
        struct log_ctx x = jctx(j);
        char why[160];
        snprintf(why, sizeof why, "kill refused: allow_kill is false for connection %s",
                 conn_name(j->h->conn));
        log_event(e->lg, LOG_WARN, "job.kill_refused", &x, "%s", why);
        store_kill_outcome(e->pc, j->id, e->owner, j->attempt, why, on_progress_written,
                           NULL);
    }
    if (a & JA_SEND_KILL)
        send_kill(j);
    if (a & JA_SEND_START)
        send_start(j);
    if (a & JA_MONITOR)
        monitor(j);
    if (a & JA_MONITOR_AT)
        schedule_check(j, o->delay_ms);
    if (a & JA_READ_MESSAGES)
        fetch_messages(j);
    if (a & JA_WRITE_STARTED)
        write_started(j);
    if (a & JA_WRITE_FINISH)
        write_finish(j);
    if (a & JA_WRITE_DOUBT)
        write_doubt(j);
    if (a & JA_AT)
        schedule(j, o->delay_ms);
    if (a & JA_DROP)
        job_free(j);
}

/* The I/O a job's action started could not even be queued: the step is
 * tried again shortly. */
static void io_not_queued(struct job *j)
{
    job_settle(&j->m);
    schedule(j, DB_RETRY_MS);
}

/* Another daemon holds the job now: dropped at once, or when its I/O is back. */
static void lose(struct job *j)
{
    struct job_out o;
    job_lease_lost(&j->m, &o);
    if (!o.refused && (o.actions & JA_DROP))
        log_event(j->h->e->lg, LOG_WARN, "job.lease_lost", &(struct log_ctx){conn_name(j->h->conn),
                  j->id, j->m.brid}, "another daemon holds the job now; dropping it");
    act(j, &o);
}

/* The job's callback came back: true if the job is still ours to move on. */
static bool settle(struct job *j)
{
    if (job_settle(&j->m))
        return true;
    lose(j);
    return false;
}

static struct job *job_new(struct hold *h, const struct store_job *sj)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->h = h;
    j->id = sj->id;
    j->attempt = sj->attempt;
    job_init(&j->m);
    j->heap_idx = NOT_IN_HEAP;
    j->spec = jobspec_dup(&sj->spec);
    snprintf(j->task_id, sizeof j->task_id, "%s", sj->task_id ? sj->task_id : "");
    j->tried = sj->tried ? strdup(sj->tried) : NULL;
    bool oom = !j->spec || (sj->tried && !j->tried);
    j->next = h->jobs;
    if (h->jobs)
        h->jobs->prev = j;
    h->jobs = j;
    conn_job_added(h->conn);
    if (oom) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* A write for the job came back. False when the caller has nothing more to
 * do: the daemon is tearing down, the job was dropped, or the write failed
 * and is tried again shortly. */
static bool write_returned(struct job *j, const char *err, const char *what)
{
    if (j->h->e->stopping == 2) {
        job_settle(&j->m); /* tearing down: the lease hands the job over */
        return false;
    }
    if (!settle(j))
        return false;
    struct log_ctx x = jctx(j);
    if (err == store_row_busy) {
        /* Someone's transaction holds the row (an operator's open kill, a
         * long SELECT ... FOR UPDATE): said once, written when it lets go. */
        if (!j->row_locked_since) {
            j->row_locked_since = now_ms();
            log_event(j->h->e->lg, LOG_WARN, "job.row_locked", &x,
                      "%s waits: another session holds the job's row locked", what);
        }
    } else if (err) {
        log_event(j->h->e->lg, LOG_WARN, "job.write_retry", &x, "%s failed, trying again: %s",
                  what, err);
    }
    if (err) {
        struct job_out o;
        job_write_failed(&j->m, &o);
        act(j, &o);
        return false;
    }
    if (j->row_locked_since) {
        log_event(j->h->e->lg, LOG_INFO, "job.row_unlocked", &x,
                  "%s done after the row was locked by another session for %.1f s", what,
                  (double)(now_ms() - j->row_locked_since) / 1000.0);
        j->row_locked_since = 0;
    }
    return true;
}

/* An HTTP call for the job came back. False when the caller has nothing more
 * to do: the call was cancelled (the daemon is stopping) or the job dropped. */
static bool call_returned(struct job *j, const struct amt_reply *r)
{
    if (r->status == AMT_ERR_CANCELLED) {
        job_settle(&j->m);
        return false;
    }
    return settle(j);
}

/* ------------------------------------------------------------ alerts */

/* Runs daemon.alert_command for a job that ended 11, 12, 23 or 24, its details
 * in the environment (alertcmd: a clean child, at most alert_command_max at
 * once, the rest in order; the loop reaps them, reap_children). */
static void run_alert_command(struct job *j)
{
    struct engine *e = j->h->e;
    const char *cmd = e->cfg->daemon.alert_command;
    int code = j->m.final_code;
    if (!cmd || !*cmd || !amt_code_raises_alert(code) || !e->alerts)
        return;
    char v[10][1200];
    snprintf(v[0], sizeof v[0], "AMTACS_JOB_ID=%lld", j->id);
    snprintf(v[1], sizeof v[1], "AMTACS_CONNECTION=%s", conn_name(j->h->conn));
    snprintf(v[2], sizeof v[2], "AMTACS_CODE=%d", code);
    snprintf(v[3], sizeof v[3], "AMTACS_CODE_NAME=%s", amt_code_name(code));
    snprintf(v[4], sizeof v[4], "AMTACS_JOB_KIND=%s", jobspec_kind_name(j->spec->kind));
    snprintf(v[5], sizeof v[5], "AMTACS_JOB_NAME=%s", j->spec->name);
    snprintf(v[6], sizeof v[6], "AMTACS_APPLICATION=%s", j->spec->application);
    snprintf(v[7], sizeof v[7], "AMTACS_BATCH_REQUEST_ID=%d", j->m.brid);
    snprintf(v[8], sizeof v[8], "AMTACS_ERROR=%s", j->error ? j->error : "");
    snprintf(v[9], sizeof v[9], "AMTACS_SERVER=%s", conn_cfg(j->h->conn)->url);
    const char *vars[10];
    for (size_t i = 0; i < 10; i++)
        vars[i] = v[i];
    struct log_ctx x = jctx(j);
    alertcmd_run(e->alerts, cmd, vars, 10, (int)e->cfg->daemon.alert_command_max, &x);
}

static void reap_children(struct engine *e)
{
    if (e->alerts)
        alertcmd_poll(e->alerts, (int)e->cfg->daemon.alert_command_max);
}

/* ------------------------------------------------------------ finishing */

static void on_finish_written(void *ud, const char *outcome, const char *err)
{
    struct job *j = ud;
    if (!write_returned(j, err, "writing the result"))
        return;
    struct log_ctx x = jctx(j);
    bool held = strcmp(outcome, "lost") != 0;
    int code = j->m.final_code;
    if (!strcmp(outcome, "requeued")) {
        /* Its Start never left: the database gave it to the next connection
         * it lists (acs.jobs_fail_over), which takes it from the queue. */
        log_event(j->h->e->lg, LOG_WARN, "job.failover", &x,
                  "not reached here (%s); given to its next listed connection",
                  j->error ? j->error : "Start never left");
    } else if (!held) {
        log_event(j->h->e->lg, LOG_WARN, "job.lease_lost", &x,
                  "another daemon finished or holds the job; nothing written");
    } else {
        log_event(j->h->e->lg, LOG_INFO, "job.finished", &x, "%s (%d), %s", amt_code_name(code),
                  code, amt_code_is_success(code) ? "success" : "failure");
        if (!strcmp(outcome, "finished")) {
            metrics_job_finished(conn_metrics(j->h->conn), code);
            if (amt_code_raises_alert(code))
                metrics_alert(conn_metrics(j->h->conn), code);
            run_alert_command(j);
        }
    }
    struct job_limits lim = conn_limits(j->h->conn);
    struct job_out o;
    job_write_done(&j->m, &lim, held, &o);
    act(j, &o);
}

static void write_finish(struct job *j)
{
    struct engine *e = j->h->e;
    size_t n = j->nmsgs + (j->error ? 1 : 0) + (j->truncated ? 1 : 0);
    const char **lines = calloc(n ? n : 1, sizeof *lines);
    char *errline = NULL;
    char cut[200];
    size_t at = 0;
    if (!lines)
        goto retry;
    for (size_t i = 0; i < j->nmsgs; i++)
        lines[at++] = j->msgs[i];
    if (j->truncated) {
        if (j->m.message_count > (long)j->nmsgs)
            snprintf(cut, sizeof cut,
                     "amtacs: log cut at %ld bytes (daemon.max_log_bytes): %zu of %ld messages "
                     "kept",
                     e->cfg->daemon.max_log_bytes, j->nmsgs, j->m.message_count);
        else
            snprintf(cut, sizeof cut,
                     "amtacs: log cut at %ld bytes (daemon.max_log_bytes): %zu messages kept, "
                     "the rest left out",
                     e->cfg->daemon.max_log_bytes, j->nmsgs);
        lines[at++] = cut;
    }
    if (j->error) {
        /* A job that lists alternates and reached none of them: the last
         * line names each server tried, in order, and why (the claim's
         * record of the earlier ones, then this one). */
        const struct amtacs_connection *cc = conn_cfg(j->h->conn);
        bool all = j->m.never_left && j->tried;
        size_t len = strlen(j->error) + (all ? strlen(j->tried) + strlen(cc->name) +
                                                   strlen(cc->url) + 64
                                             : 16);
        errline = malloc(len);
        if (!errline)
            goto retry;
        if (all)
            snprintf(errline, len, "amtacs: no listed connection could be reached: %s; %s (%s): %s",
                     j->tried, cc->name, cc->url, j->error);
        else
            snprintf(errline, len, "amtacs: %s", j->error);
        lines[at++] = errline;
    }
    struct joblog_job hdr = {.server = conn_cfg(j->h->conn)->url, .spec = j->spec,
                             .completion_code = j->m.final_code};
    char *log = joblog_render(&hdr, lines, n);
    if (!log)
        goto retry;
    crash_point(e, "before-final-write");
    int rc = store_batch_finish(e->batch, j->id, j->attempt, j->m.final_code, j->error, log,
                                j->m.never_left, on_finish_written, j);
    free(log);
    free(lines);
    free(errline);
    if (rc)
        io_not_queued(j);
    return;
retry:
    free(lines);
    free(errline);
    io_not_queued(j);
}

/* ------------------------------------------------------------ messages */

static void on_messages_published(void *ud, const char *err)
{
    (void)ud;
    (void)err; /* best effort: the merged log holds every message anyway */
}

/* Shares the messages that arrived while the job runs (amtacsctl wait shows them). */
static void publish_messages(struct job *j, const struct amt_reply *r, size_t first_new)
{
    if (first_new >= j->nmsgs)
        return;
    struct buf b;
    buf_init(&b, 0);
    bool bad = buf_putc(&b, '[');
    for (size_t i = first_new, k = 0; !bad && i < j->nmsgs && k < r->nmessages; i++, k++) {
        const struct amt_message *m = &r->messages[k];
        bad = buf_printf(&b, "%s{\"seq\":%ld,\"id\":%d,\"text\":", k ? "," : "", m->seq, m->id) ||
              text_json_quote(&b, j->msgs[i], strlen(j->msgs[i])) || buf_putc(&b, '}');
    }
    if (!bad)
        bad = buf_putc(&b, ']');
    if (!bad)
        store_add_messages(j->h->e->pc, j->id, j->h->e->owner, j->attempt, b.data,
                           on_messages_published, NULL);
    buf_free(&b);
}

static void on_messages(void *ud, const struct amt_reply *r)
{
    struct job *j = ud;
    if (!call_returned(j, r))
        return;
    struct job_out o;
    if (r->status != AMT_OK) {
        struct job_limits lim = conn_limits(j->h->conn);
        bool transient = amt_status_transient(r->status) || r->status == AMT_ERR_AUTH ||
                         r->status == AMT_ERR_NOPASSWORD;
        job_messages_failed(&j->m, &lim, transient, &o);
        explain(j, &o, r->error);
        act(j, &o);
        return;
    }
    size_t first_new = j->nmsgs;
    /* Room for the header and the closing lines of the log. */
    size_t cap = (size_t)j->h->e->cfg->daemon.max_log_bytes;
    cap = cap > 4096 ? cap - 2048 : cap / 2;
    for (size_t i = 0; i < r->nmessages; i++) {
        size_t need = strlen(r->messages[i].text) + 3;
        if (j->log_bytes + need > cap) {
            j->truncated = true; /* the rest is not even fetched */
            break;
        }
        j->log_bytes += need;
        if (j->nmsgs == j->capmsgs) {
            size_t ncap = j->capmsgs ? j->capmsgs * 2 : 16;
            char **n = realloc(j->msgs, ncap * sizeof *n);
            if (!n)
                goto oom;
            j->msgs = n;
            j->capmsgs = ncap;
        }
        if (!(j->msgs[j->nmsgs] = strdup(r->messages[i].text)))
            goto oom;
        j->nmsgs++;
    }
    j->after = r->next;
    if (j->m.phase == JOB_FOLLOW)
        publish_messages(j, r, first_new);
    job_messages_read(&j->m, r->more && !j->truncated, &o);
    explain(j, &o, NULL);
    act(j, &o);
    return;
oom:
    schedule(j, DB_RETRY_MS);
}

static void fetch_messages(struct job *j)
{
    if (amt_messages(conn_amt(j->h->conn), j->m.brid, j->after, MESSAGES_PAGE, on_messages, j))
        io_not_queued(j);
}

/* ------------------------------------------------------------ following */

static void on_progress_written(void *ud, bool held, const char *err)
{
    (void)ud;
    (void)held;
    (void)err; /* informative only: the lease renewal finds lost jobs */
}

/* A code MonitorJob reported for the job. */
static void observe(struct job *j, int code, long message_count)
{
    struct job_limits lim = conn_limits(j->h->conn);
    struct job_out o;
    job_monitor_state(&j->m, &lim, code, message_count, j->nmsgs, j->truncated, &o);
    explain(j, &o, NULL);
    act(j, &o);
}

/* A failed MonitorJob: following goes on; only a request the server no longer
 * knows, several times in a row, ends the job. */
static void monitor_failed(struct job *j, const struct amt_reply *r, bool unknown)
{
    struct job_limits lim = conn_limits(j->h->conn);
    struct job_out o;
    job_monitor_failed(&j->m, &lim, unknown, &o);
    explain(j, &o, r ? r->error : NULL);
    act(j, &o);
}

static void on_monitor(void *ud, const struct amt_reply *r)
{
    struct job *j = ud;
    if (!call_returned(j, r))
        return;
    if (r->status == AMT_OK && r->njobs == 1)
        observe(j, r->jobs[0].code, r->jobs[0].message_count);
    else
        monitor_failed(j, r, r->status == AMT_ERR_REJECTED && r->http_status == 404);
}

/* One job's part of a MonitorJobs answer (conn.c gathers the checks and
 * reads the answer for each). */
static void on_checked(void *ud, const struct conn_check *ck)
{
    struct job *j = ud;
    if (!call_returned(j, ck->r))
        return;
    if (ck->found)
        observe(j, ck->found->code, ck->found->message_count);
    else
        monitor_failed(j, ck->r, ck->unknown);
}

/* A check conn.c could not send: tried again shortly. */
static void on_check_not_sent(void *ud) { io_not_queued(ud); }

/* A check now: a place in the connection's next MonitorJobs call, or a
 * MonitorJob of its own where the server offers no MonitorJobs. */
static void monitor(struct job *j)
{
    struct conn *c = j->h->conn;
    if (conn_monitor_jobs(c)) {
        if (conn_queue_check(c, j->m.brid, j))
            io_not_queued(j);
        return;
    }
    if (amt_monitor(conn_amt(c), j->m.brid, on_monitor, j))
        io_not_queued(j);
}

/* ------------------------------------------------------------ in doubt */

static void on_doubt_written(void *ud, bool held, const char *err)
{
    struct job *j = ud;
    if (!write_returned(j, err, "recording the doubt"))
        return;
    struct log_ctx x = jctx(j);
    if (held)
        log_event(j->h->e->lg, LOG_ERROR, "job.in_doubt", &x,
                  "not started again; an operator decides (amtacsctl resolve %lld): %s", j->id,
                  j->doubt ? j->doubt : "the Start may have reached the server");
    struct job_limits lim = conn_limits(j->h->conn);
    struct job_out o;
    job_write_done(&j->m, &lim, held, &o);
    act(j, &o);
}

static void write_doubt(struct job *j)
{
    /* Out of memory for the reason: the doubt is still written, in fewer words. */
    const char *why = j->doubt ? j->doubt : "the Start may have reached the server";
    if (store_in_doubt(j->h->e->pc, j->id, j->h->e->owner, j->attempt, why, on_doubt_written, j))
        io_not_queued(j);
}

/* ------------------------------------------------------------ starting */

static void on_started_written(void *ud, bool held, const char *err)
{
    struct job *j = ud;
    if (!write_returned(j, err, "recording the BatchRequestId"))
        return;
    struct log_ctx x = jctx(j);
    if (!held) {
        log_event(j->h->e->lg, LOG_WARN, "job.lease_lost", &x,
                  "another daemon holds the job now; dropping it");
    } else {
        log_event(j->h->e->lg, LOG_INFO, "job.started", &x, "%s %s started",
                  jobspec_kind_noun(j->spec->kind), j->spec->name);
        metrics_job_started(conn_metrics(j->h->conn));
        crash_point(j->h->e, "after-start-recorded");
    }
    struct job_limits lim = conn_limits(j->h->conn);
    struct job_out o;
    job_write_done(&j->m, &lim, held, &o);
    act(j, &o);
}

static void write_started(struct job *j)
{
    if (store_batch_started(j->h->e->batch, j->id, j->attempt, j->m.brid, on_started_written, j))
        io_not_queued(j);
}

static void on_start(void *ud, const struct amt_reply *r)
{
    struct job *j = ud;
    if (!call_returned(j, r))
        return;
    struct conn *c = j->h->conn;
    struct job_out o;
    if (r->status == AMT_OK) {
        job_start_answered(&j->m, r->batch_request_id, &o);
        crash_point(j->h->e, "after-start-sent");
        act(j, &o);
        return;
    }
    enum job_start_failure why = r->status == AMT_ERR_AUTH || r->status == AMT_ERR_NOPASSWORD
                                     ? JOB_START_AUTH
                                 : r->status == AMT_ERR_REJECTED ? JOB_START_REJECTED
                                                                 : JOB_START_TRANSIENT;
    struct job_limits lim = conn_limits(c);
    struct job_view v = conn_view(c, now_ms());
    job_start_failed(&j->m, &lim, &v, why, r->maybe_delivered, &o);
    explain(j, &o, r->error);
    act(j, &o);
}

static void send_start(struct job *j)
{
    struct conn *c = j->h->conn;
    struct engine *e = j->h->e;
    bool idempotent = conn_start_idempotent(c);
    struct amt_start s = {.task_id = j->task_id, .spec = j->spec,
                          .fresh_connection = !idempotent};
    if (!idempotent && e->sent)
        sentset_add(e->sent, j->task_id);
    if (amt_start_job(conn_amt(j->h->conn), &s, on_start, j)) {
        job_settle(&j->m);
        struct job_limits lim = conn_limits(c);
        struct job_view v = conn_view(c, now_ms());
        struct job_out o;
        job_start_failed(&j->m, &lim, &v, JOB_START_UNSENDABLE, false, &o);
        explain(j, &o, NULL);
        act(j, &o);
    }
}

/* A daemon that could not renew its lease must not act for the job on the
 * server any more: another daemon may hold it by now. */
static bool lease_holds(struct job *j)
{
    /* Only while the session that proves us alive is up (docs/takeover.md);
     * the database's absence is logged once, as db.down. */
    if (!j->h->e->db_up)
        return false;
    if (now_ms() < j->lease_until)
        return true;
    struct log_ctx x = jctx(j);
    log_event(j->h->e->lg, LOG_WARN, "job.lease_unsure", &x,
              "the lease could not be renewed in time; no Start or Kill until it is");
    return false;
}

/* ------------------------------------------------------------ killing */

/* The Kill call runs beside the job's phases (the job may be following, or
 * reading its last messages, when it returns): its flags are the machine's
 * (job_kill_*), its outcome only logged and recorded. */
static void on_kill(void *ud, const struct amt_reply *r)
{
    struct job *j = ud;
    job_kill_returned(&j->m);
    if (j->gone) {
        job_memory_free(j); /* it ended while the call was out; nothing else to do */
        return;
    }
    if (r->status == AMT_ERR_CANCELLED)
        return;
    if (j->m.lost && !j->m.busy) {
        settle(j);
        return;
    }
    struct log_ctx x = jctx(j);
    if (r->status == AMT_OK) {
        log_event(j->h->e->lg, LOG_INFO, "job.kill_sent", &x, "the server accepted the kill");
        store_kill_outcome(j->h->e->pc, j->id, j->h->e->owner, j->attempt, NULL,
                           on_progress_written, NULL);
        /* Look at once rather than at the next poll: the job should now be KILLED. */
        if (!j->m.busy && j->m.phase == JOB_FOLLOW)
            schedule(j, 0);
        return;
    }
    if (r->status == AMT_ERR_REJECTED && r->http_status == 409) {
        log_event(j->h->e->lg, LOG_INFO, "job.kill_late", &x, "the job had already ended: %s",
                  r->error);
        return;
    }
    log_event(j->h->e->lg, LOG_WARN, "job.kill_failed", &x, "kill failed, still running: %s",
              r->error);
    store_kill_outcome(j->h->e->pc, j->id, j->h->e->owner, j->attempt, r->error,
                       on_progress_written, NULL);
    job_kill_failed(&j->m, now_ms()); /* tried again by a check after JOB_KILL_RETRY_MS */
    if (!j->m.busy && j->heap_idx == NOT_IN_HEAP)
        schedule(j, conn_cfg(j->h->conn)->poll.interval_ms);
}

static void send_kill(struct job *j)
{
    if (conn_comm(j->h->conn) == JOB_COMM_DISABLED || conn_comm(j->h->conn) == JOB_COMM_UNKNOWN) {
        job_kill_deferred(&j->m); /* nothing goes to the server now; sent when comm allows */
        return;
    }
    if (!lease_holds(j)) {
        job_kill_deferred(&j->m); /* sent once the lease is renewed */
        return;
    }
    job_kill_sending(&j->m);
    if (amt_kill(conn_amt(j->h->conn), j->m.brid, on_kill, j)) {
        job_kill_returned(&j->m);
        job_kill_deferred(&j->m);
    }
}

/* An operator's kill request for a job this daemon holds. */
static void kill_job(struct job *j)
{
    struct job_limits lim = conn_limits(j->h->conn);
    struct job_out o;
    job_kill_requested(&j->m, &lim, &o);
    if (!o.refused && o.guard == JG_NEVER_SENT)
        heap_remove(j->h->e, j); /* its Start was due: it never goes now */
    explain(j, &o, NULL);
    act(j, &o);
}

/* The job's timer fired. A job Full Comm does not let act is parked (left
 * out of the timer heap) until the state changes (on_comm). */
static void job_due_now(struct job *j)
{
    struct conn *c = j->h->conn;
    if (!job_may_act(&j->m, conn_comm(c), j->h->e->stopping != 0))
        return;
    struct job_view v = conn_view(c, now_ms());
    if (j->m.phase == JOB_START)
        v.lease_holds = lease_holds(j);
    struct job_out o;
    job_due(&j->m, &v, &o);
    explain(j, &o, NULL);
    act(j, &o);
}

/* ------------------------------------------------------------ claiming */

static void on_claimed(void *ud, const struct store_job *jobs, size_t n, const char *err)
{
    struct hold *h = ud;
    struct engine *e = h->e;
    h->claiming = false;
    if (e->stopping == 2)
        return;
    if (err) {
        h->take_over = true;
        log_event(e->lg, LOG_WARN, "claim.failed", &(struct log_ctx){conn_name(h->conn), 0, 0},
                  "%s", err);
        return; /* the periodic rescan tries again */
    }
    struct job_limits lim = conn_limits(h->conn);
    for (size_t i = 0; i < n; i++) {
        struct job *j = job_new(h, &jobs[i]);
        if (!j) {
            log_event(e->lg, LOG_ERROR, "claim.oom", NULL, "job %lld left to its lease",
                      jobs[i].id);
            continue;
        }
        j->lease_until = h->claim_sent_at + e->lease_s * 1000L;
        bool running = jobs[i].running;
        if (jobs[i].failover)
            metrics_job_failover(conn_metrics(h->conn));
        /* A claim the database lost (an asynchronous failover) makes a job
         * we started look queued and new again: we remember. */
        bool sent_before = !running && e->sent && sentset_has(e->sent, j->task_id);
        struct job_out o;
        job_claimed(&j->m, &lim, running, jobs[i].taken_over, sent_before,
                    jobs[i].batch_request_id, &o);
        struct log_ctx x = jctx(j);
        if (running)
            log_event(e->lg, LOG_INFO, "job.resumed", &x, "following again (attempt %d)",
                      j->attempt);
        else
            log_event(e->lg, LOG_INFO, "job.claimed", &x, "%s %s (attempt %d)",
                      jobspec_kind_noun(j->spec->kind), j->spec->name, j->attempt);
        act(j, &o);
        if (jobs[i].kill_requested) {
            if (jobs[i].kill_requested_by)
                j->killed_by = strdup(jobs[i].kill_requested_by); /* NULL: said without */
            kill_job(j);
        }
    }
    if (n > 0)
        crash_point(e, "after-claim");
    if (h->claim_again || (n > 0 && conn_room(h->conn, 1) > 0)) {
        h->claim_again = false;
        claim(h);
    }
}

static void claim(struct hold *h)
{
    struct engine *e = h->e;
    if (e->stopping || !e->db_up || conn_removed(h->conn))
        return;
    if (h->claiming) {
        h->claim_again = true;
        return;
    }
    long room = conn_room(h->conn, e->cfg->daemon.claim_batch);
    if (room <= 0)
        return;
    h->claiming = true;
    h->claim_sent_at = now_ms();
    if (store_claim(e->pc, e->owner, conn_name(h->conn), (int)room, e->lease_s, h->take_over,
                    conn_server_answers(h->conn), on_claimed, h))
        h->claiming = false;
    else
        h->take_over = false;
}

/* ------------------------------------------------------------ leases */

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* A sorted copy of n ids (NULL when n is 0 or out of memory). */
static long long *sorted_ids(const long long *ids, size_t n)
{
    long long *v = n ? malloc(n * sizeof *v) : NULL;
    if (v) {
        memcpy(v, ids, n * sizeof *v);
        qsort(v, n, sizeof *v, cmp_ll);
    }
    return v;
}

static bool in_ids(long long id, const long long *sorted, size_t n)
{
    return sorted && bsearch(&id, sorted, n, sizeof *sorted, cmp_ll);
}

static void on_renewed(void *ud, const long long *lost, size_t nlost, const long long *busy,
                       size_t nbusy, const char *err)
{
    struct engine *e = ud;
    e->renewing = false;
    if (e->stopping == 2)
        return;
    if (err) {
        log_event(e->lg, LOG_WARN, "lease.renew_failed", NULL, "%s", err);
        return;
    }
    /* Sorted lists keep this linear in the jobs held. A job whose row
     * someone else had locked was not renewed: its lease stays as it was.
     * Jobs that finished while the renewal was on its way come back as lost
     * too. */
    long long *slost = sorted_ids(lost, nlost), *sbusy = sorted_ids(busy, nbusy);
    if ((nlost && !slost) || (nbusy && !sbusy)) {
        log_event(e->lg, LOG_WARN, "lease.renew_failed", NULL, "out of memory");
        goto done;
    }
    int64_t until = e->renew_sent_at + e->lease_s * 1000L;
    for (size_t k = 0; k < e->nholds; k++) {
        struct job *j = e->holds[k]->jobs;
        while (j) {
            struct job *next = j->next; /* settle() may free j */
            if (in_ids(j->id, slost, nlost)) {
                lose(j); /* dropped now, or when its I/O is back */
            } else if (!in_ids(j->id, sbusy, nbusy) && j->lease_until < until) {
                j->lease_until = until; /* jobs claimed later hold a newer lease already */
            }
            j = next;
        }
    }
done:
    free(slost);
    free(sbusy);
}

/* Renewals come often enough that two can fail before a lease runs out. */
static int64_t renew_interval_ms(const struct engine *e)
{
    int64_t ms = e->cfg->daemon.renew_interval_ms;
    return ms > 0 && ms < e->lease_s * 1000L ? ms : e->lease_s * 1000L / 3;
}

static void renew(struct engine *e)
{
    if (e->renewing || !e->db_up)
        return;
    size_t total = 0;
    for (size_t k = 0; k < e->nholds; k++)
        total += conn_in_flight(e->holds[k]->conn);
    if (!total)
        return;
    long long *ids = malloc(total * sizeof *ids);
    int *att = malloc(total * sizeof *att);
    size_t n = 0;
    if (ids && att) {
        for (size_t k = 0; k < e->nholds; k++)
            for (struct job *j = e->holds[k]->jobs; j; j = j->next)
                if (!j->m.lost) {
                    ids[n] = j->id;
                    att[n++] = j->attempt;
                }
        e->renew_sent_at = now_ms();
        if (n && !store_renew(e->pc, e->owner, ids, att, n, e->lease_s, on_renewed, e))
            e->renewing = true;
    }
    free(ids);
    free(att);
}

/* ------------------------------------------------------------ connection events */

/* Full Comm changed (conn.c read it): the jobs it parked wake, and what the
 * old state held back may be claimable now. */
static void on_comm_changed(void *ud)
{
    struct hold *h = ud;
    for (struct job *j = h->jobs; j; j = j->next) {
        struct job_out o;
        job_comm_changed(&j->m, j->heap_idx == NOT_IN_HEAP, &o); /* parked ones wake */
        act(j, &o);
    }
    h->take_over = true;
    claim(h);
}

/* Tells the database of the connection and reads what it holds for it. */
static void conn_register(struct hold *h, bool fresh)
{
    conn_configure(h->conn, fresh);
    claim(h);
}

/* ------------------------------------------------------------ liveness */

static void on_daemon_registered(void *ud, bool held, const char *err)
{
    struct engine *e = ud;
    e->registering = false;
    if (e->stopping == 2)
        return;
    if (err) {
        log_event(e->lg, LOG_WARN, "daemon.register_failed", NULL,
                  "could not take the lock that proves this daemon alive: %s", err);
        return;
    }
    e->alive = held;
    if (held && e->lock_busy_said) {
        log_event(e->lg, LOG_INFO, "daemon.lock_taken", NULL,
                  "this daemon's liveness lock is ours again");
        e->lock_busy_said = false;
    } else if (!held && !e->lock_busy_said) {
        log_event(e->lg, LOG_WARN, "daemon.lock_busy", NULL,
                  "another session still holds this daemon's liveness lock (an earlier "
                  "session the server has not seen end); until it goes, only the leases guard "
                  "our jobs");
        e->lock_busy_said = true;
    }
}

/* Takes the session-level lock that tells other daemons we are alive: after
 * every connect, and again while another session holds it. */
static void register_daemon(struct engine *e)
{
    if (e->registering || !e->db_up || e->stopping)
        return;
    e->registering = !store_register(e->pc, e->owner, on_daemon_registered, e);
}

static void on_takeover_due(void *ud, bool due, const char *err)
{
    struct engine *e = ud;
    e->checking = false;
    if (err || !due || e->stopping)
        return;
    for (size_t k = 0; k < e->nholds; k++) {
        if (conn_removed(e->holds[k]->conn))
            continue;
        e->holds[k]->take_over = true;
        claim(e->holds[k]);
    }
}

/* A daemon whose session ended (kill -9, a crash, a lost machine whose
 * connections the server closed) leaves its jobs to whoever looks first. */
static void check_takeover(struct engine *e)
{
    if (!e->db_up || e->checking)
        return;
    if (!e->alive)
        register_daemon(e);
    const char **names = calloc(e->nholds ? e->nholds : 1, sizeof *names);
    size_t n = 0;
    if (!names)
        return;
    for (size_t k = 0; k < e->nholds; k++)
        if (!conn_removed(e->holds[k]->conn))
            names[n++] = conn_name(e->holds[k]->conn);
    if (n)
        e->checking = !store_takeover_due(e->pc, e->owner, names, n, on_takeover_due, e);
    free(names);
}

static void on_db_up(void *ud)
{
    struct engine *e = ud;
    e->db_up = true;
    metrics_db_up(e->metrics, true);
    register_daemon(e); /* first: the claims below may take over others' jobs */
    /* Notifications sent while we were away are lost: rescan everything. A
     * removed connection's jobs in hand still need its comm state and password. */
    for (size_t k = 0; k < e->nholds; k++) {
        struct hold *h = e->holds[k];
        if (conn_removed(h->conn)) {
            conn_load_comm(h->conn);
            conn_load_secret(h->conn);
        } else {
            conn_register(h, true);
        }
    }
    renew(e);
}

/* Which of our jobs an operator wants killed, as the database says: only
 * kill_requested_at, set by acs.request_kill after its role and Allow Kill
 * Job checks, makes the daemon kill a job. A notification on acs_kill only
 * makes it ask (anyone may send one, with any payload). Asked too whenever a
 * kill may have been missed: a notification sent while the listener was down
 * is lost, and the job it was for ran on (a job that runs until killed:
 * forever; found by the fault matrix, tests/integration/test_faults_database.sh).
 * Coalesced: one read in flight and one more pending, so that a storm of
 * notifications costs a read per round trip, not one each. */
static void on_kills_pending(void *ud, const long long *ids, size_t n, const char *err)
{
    struct engine *e = ud;
    e->kill_checking = false;
    if (e->stopping == 2)
        return;
    if (e->kill_again) {
        /* This answer may predate the kill asked about: read again, at the
         * back of the queue, so that a storm of notifications cannot keep
         * every other statement waiting. */
        e->kill_again = false;
        e->kill_checking = !store_kills_pending(e->pc, e->owner, false, on_kills_pending, e);
    }
    if (err)
        return; /* asked again at the next reconnect or kill notification */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < e->nholds; k++)
            for (struct job *j = e->holds[k]->jobs; j; j = j->next)
                if (j->id == ids[i]) {
                    if (!j->m.lost && !j->m.kill_seen)
                        kill_job(j);
                    break;
                }
}

/* Ahead of the statements waiting, as a Kill call goes ahead of the waiting
 * Starts; after one in flight, so a claim in flight answers first, and a claim
 * still waiting runs after the kill request and reports it itself. */
static void check_kills(struct engine *e)
{
    if (e->kill_checking) {
        e->kill_again = true;
        return;
    }
    e->kill_checking = !store_kills_pending(e->pc, e->owner, true, on_kills_pending, e);
}

/* The listener (re)connected: whatever was notified meanwhile is lost, so
 * look again at the queue, Full Comm, the Batch Users and the kills. */
static void on_listen_up(void *ud)
{
    struct engine *e = ud;
    for (size_t k = 0; k < e->nholds; k++) {
        conn_load_comm(e->holds[k]->conn);
        conn_load_secret(e->holds[k]->conn);
        e->holds[k]->take_over = true;
        claim(e->holds[k]);
    }
    check_kills(e); /* the jobs held; a claim reports its own jobs' kill requests */
}

static void on_db_down(void *ud, const char *why)
{
    struct engine *e = ud;
    (void)why;
    e->db_up = false;
    metrics_db_up(e->metrics, false);
    e->renewing = false;
    /* Our liveness lock went with the session: another daemon may take our
     * jobs over from now on. Nothing is sent for them until a renewal after
     * the reconnect says which are still ours. */
    e->alive = false;
    e->registering = false;
    e->checking = false;
    for (size_t k = 0; k < e->nholds; k++)
        for (struct job *j = e->holds[k]->jobs; j; j = j->next)
            j->lease_until = 0;
    for (size_t k = 0; k < e->nholds; k++)
        e->holds[k]->claiming = false;
}

/* Notifications are hints to read, never orders: any role that can connect
 * may NOTIFY on any channel with any payload, so the payload is not even
 * looked at. Each channel only wakes a (coalesced) read of what it concerns,
 * and the daemon acts on what the database answers. */
static void on_notify(void *ud, const char *channel, const char *payload)
{
    struct engine *e = ud;
    (void)payload;
    bool jobs = !strcmp(channel, "acs_jobs"), kill = !strcmp(channel, "acs_kill");
    bool comm = !strcmp(channel, "acs_comm"), users = !strcmp(channel, "acs_batch_users");
    for (size_t k = 0; k < e->nholds; k++) {
        struct hold *h = e->holds[k];
        if (jobs || kill)
            claim(h); /* a queued job to kill is claimed and ended without a Start */
        else if (comm)
            conn_load_comm(h->conn);
        else if (users)
            conn_load_secret(h->conn); /* used from the next logon on */
    }
    /* A job held or being claimed right now: the read goes after a claim
     * in flight, and a claim that runs later sees the kill request itself. */
    if (kill)
        check_kills(e);
}

/* ------------------------------------------------------------ retention */

static void on_purged(void *ud, long n, const char *err)
{
    struct engine *e = ud;
    e->purging = false;
    if (e->stopping == 2)
        return;
    if (err) {
        log_event(e->lg, LOG_WARN, "purge.failed", NULL, "%s", err);
        return;
    }
    if (n > 0)
        log_event(e->lg, LOG_INFO, "purge.done", NULL, "%ld expired job log(s) deleted", n);
    /* A full batch: more are waiting; take them now, a batch at a time. */
    if (n >= PURGE_BATCH)
        e->next_purge = now_ms();
}

static void purge(struct engine *e)
{
    if (e->purging || !e->db_up)
        return;
    e->purging = !store_purge(e->pc, PURGE_BATCH, on_purged, e);
}

/* ------------------------------------------------------------ loop */

static void handle_signals(struct engine *e)
{
    struct signalfd_siginfo si;
    while (read(e->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            if (!e->stopping)
                reload(e);
            continue;
        }
        if (e->stopping) {
            log_event(e->lg, LOG_WARN, "daemon.stop_now", NULL,
                      "second signal: stopping now; leases hand the jobs over");
            e->stopping = 2;
            return;
        }
        log_event(e->lg, LOG_INFO, "daemon.stopping", NULL,
                  "no new claims; finishing the writes in hand");
        e->stopping = 1;
        e->stop_deadline = now_ms() + e->grace_ms;
        /* HTTP calls end here: jobs on the server keep running and are
         * followed again by whoever holds them next. */
        for (size_t k = 0; k < e->nholds; k++)
            conn_stop_calls(e->holds[k]->conn);
    }
}

static void on_released(void *ud, const char *err)
{
    struct engine *e = ud;
    if (err)
        log_event(e->lg, LOG_WARN, "daemon.release_failed", NULL,
                  "leases were not handed back (%s); they expire by themselves", err);
    e->released = true;
}

/* Draining is done when no write is in hand and the leases are handed back. */
static bool drained(struct engine *e)
{
    bool writes = false;
    for (size_t k = 0; k < e->nholds && !writes; k++)
        for (struct job *j = e->holds[k]->jobs; j; j = j->next)
            if (j->m.busy && job_phase_writes(j->m.phase)) {
                writes = true;
                break;
            }
    if (writes || (e->db_up && pgconn_pending(e->pc) && !e->releasing))
        return false;
    if (!e->releasing) {
        e->releasing = true;
        if (!e->db_up || store_release(e->pc, e->owner, on_released, e))
            e->released = true;
    }
    return e->released;
}

/* The connections' gauges, for /metrics: conn.c publishes at once on a
 * change of state; this, every PUBLISH_MS, for the jobs in flight. */
static void publish(struct engine *e)
{
    for (size_t k = 0; k < e->nholds; k++)
        conn_publish(e->holds[k]->conn);
}

static void run_timers(struct engine *e, int64_t now)
{
    while (e->nheap && e->heap[0]->due <= now) {
        struct job *j = e->heap[0];
        heap_remove(e, j);
        if (!j->m.busy)
            job_due_now(j);
    }
    if (e->stopping)
        return;
    if (now >= e->next_renew) {
        renew(e);
        e->next_renew = now + renew_interval_ms(e);
    }
    if (now >= e->next_takeover_check) {
        check_takeover(e);
        e->next_takeover_check = now + TAKEOVER_CHECK_MS;
    }
    if (now >= e->next_purge) {
        purge(e);
        e->next_purge = now + e->cfg->daemon.purge_interval_ms;
    }
    if (now >= e->next_claim_poll) {
        for (size_t k = 0; k < e->nholds; k++) {
            e->holds[k]->take_over = true;
            claim(e->holds[k]);
        }
        e->next_claim_poll = now + CLAIM_POLL_MS;
    }
    if (now >= e->next_publish) {
        publish(e);
        e->next_publish = now + PUBLISH_MS;
    }
    for (size_t k = 0; k < e->nholds; k++)
        conn_heartbeat(e->holds[k]->conn, now, e->cfg->daemon.heartbeat_interval_ms);
}

static long next_timeout(struct engine *e, int64_t now)
{
    int64_t t = now + 1000;
    if (e->nheap && e->heap[0]->due < t)
        t = e->heap[0]->due;
    if (!e->stopping) {
        if (e->next_renew < t)
            t = e->next_renew;
        if (e->next_claim_poll < t)
            t = e->next_claim_poll;
        if (e->next_takeover_check < t)
            t = e->next_takeover_check;
        if (e->next_purge < t)
            t = e->next_purge;
        if (e->next_publish < t)
            t = e->next_publish;
        for (size_t k = 0; k < e->nholds; k++)
            if (conn_next_heartbeat(e->holds[k]->conn) < t)
                t = conn_next_heartbeat(e->holds[k]->conn);
    }
    long pt = pgconn_timeout_ms(e->pc, now);
    if (pt >= 0 && now + pt < t)
        t = now + pt;
    pt = pgconn_timeout_ms(e->listen, now);
    if (pt >= 0 && now + pt < t)
        t = now + pt;
    return t > now ? (long)(t - now) : 0;
}

int engine_run(struct engine *e)
{
    log_event(e->lg, LOG_INFO, "daemon.running", NULL, "owner %s, %zu connection(s), lease %d s",
              e->owner, e->nholds, e->lease_s);
    for (;;) {
        int64_t now = now_ms();
        metrics_loop_tick(e->metrics, now);
        for (size_t k = 0; k < e->nholds; k++)
            conn_sweep(e->holds[k]->conn, false);
        pgconn_tick(e->pc, now);
        pgconn_tick(e->listen, now);
        run_timers(e, now);
        for (size_t k = 0; k < e->nholds; k++)
            conn_flush_checks(e->holds[k]->conn);
        /* Hot writes gather while the database is busy: sent once fewer
         * than FLUSH_BEHIND statements wait, they go as few large statements
         * rather than one small one per loop turn, and the next is already
         * queued when one ends, so the backend never idles between them. */
        if (store_batch_pending(e->batch) && pgconn_pending(e->pc) < FLUSH_BEHIND)
            store_batch_flush(e->batch, e->pc);
        if (e->stopping == 2)
            break;
        if (e->stopping == 1) {
            if (drained(e))
                break;
            if (now >= e->stop_deadline) {
                log_event(e->lg, LOG_WARN, "daemon.stop_timeout", NULL,
                          "writes still in hand after %ld ms; leases hand the jobs over",
                          e->grace_ms);
                break;
            }
        }
        struct curl_waitfd fds[3];
        unsigned n = 0;
        struct pgconn *pcs[2] = {e->pc, e->listen};
        int pgfds[2], pgslots[2] = {-1, -1}, sigslot = -1;
        for (int i = 0; i < 2; i++) {
            pgfds[i] = pgconn_fd(pcs[i]);
            if (pgfds[i] < 0)
                continue;
            short ev = pgconn_events(pcs[i]);
            fds[n].fd = pgfds[i];
            fds[n].events = (short)(((ev & POLLIN) ? CURL_WAIT_POLLIN : 0) |
                                    ((ev & POLLOUT) ? CURL_WAIT_POLLOUT : 0));
            fds[n].revents = 0;
            pgslots[i] = (int)n++;
        }
        if (e->signal_fd >= 0) {
            fds[n].fd = e->signal_fd;
            fds[n].events = CURL_WAIT_POLLIN;
            fds[n].revents = 0;
            sigslot = (int)n++;
        }
        long timeout = next_timeout(e, now);
        if (e->stopping && timeout > 50)
            timeout = 50;
        CURLMcode mc = curl_multi_poll(e->multi, fds, n, (int)timeout, NULL);
        if (mc != CURLM_OK) {
            log_event(e->lg, LOG_ERROR, "loop.poll_failed", NULL, "%s", curl_multi_strerror(mc));
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
        int running = 0;
        curl_multi_perform(e->multi, &running);
        amt_multi_dispatch(e->multi);
        for (int i = 0; i < 2; i++) {
            if (pgslots[i] < 0)
                continue;
            short rev = fds[pgslots[i]].revents;
            short pev = (short)(((rev & CURL_WAIT_POLLIN) ? POLLIN : 0) |
                                ((rev & CURL_WAIT_POLLOUT) ? POLLOUT : 0) |
                                ((rev & CURL_WAIT_POLLPRI) ? POLLIN : 0));
            if (pev || pgconn_fd(pcs[i]) != pgfds[i])
                pgconn_io(pcs[i], pev);
        }
        if (sigslot >= 0 && fds[sigslot].revents)
            handle_signals(e);
        reap_children(e);
    }
    log_event(e->lg, LOG_INFO, "daemon.stopped", NULL, "bye");
    return 0;
}

/* ------------------------------------------------------------ setup */

static void observe_statement(void *ud, double seconds, bool ok)
{
    struct engine *e = ud;
    metrics_db_statement(e->metrics, seconds, ok);
}

/* The connections' answers only let go of what they hold once the engine is
 * tearing down: nothing they would start could run. */
static bool tearing_down(void *ud)
{
    const struct engine *e = ud;
    return e->stopping == 2;
}

/* Room for `more` connections in e->holds, so that adding them cannot fail. */
static int reserve_holds(struct engine *e, size_t more)
{
    if (e->nholds + more <= e->capholds)
        return 0;
    size_t cap = e->nholds + more + 4;
    struct hold **n = realloc(e->holds, cap * sizeof *n);
    if (!n)
        return -1;
    e->holds = n;
    e->capholds = cap;
    return 0;
}

/* A connection (without its client yet) and the engine's record of it. */
static struct hold *hold_new(struct engine *e, const struct amtacs_connection *cc)
{
    struct hold *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->e = e;
    h->take_over = true;
    if (!(h->conn = conn_new(&e->env, cc, h))) {
        free(h);
        return NULL;
    }
    return h;
}

static void hold_free(struct hold *h)
{
    if (!h)
        return;
    conn_free(h->conn);
    free(h);
}

static struct hold *find_hold(struct engine *e, const char *name)
{
    for (size_t k = 0; k < e->nholds; k++)
        if (!strcmp(conn_name(e->holds[k]->conn), name))
            return e->holds[k];
    return NULL;
}

/* Whether the client must be made anew for the new settings of a connection. */
static bool client_changes(const struct amtacs_connection *a, const struct amtacs_connection *b)
{
    return !config_connection_same(a, b, "url") || !config_connection_same(a, b, "batch_user") ||
           !config_connection_same(a, b, "http.") || !config_connection_same(a, b, "tls.");
}

/* A reload checked and prepared, not yet in force: the new configuration and,
 * per connection in it, a new connection (an added one) and a new client
 * with its credentials (an added one, or one whose client settings changed). */
struct reload_plan {
    const struct amtacs_config *next;
    size_t n;
    struct hold **made;
    struct conn_client **clients;
};

/* Releases what a plan holds that was not handed over to the engine. */
static void reload_abandon(struct reload_plan *p)
{
    for (size_t i = 0; p->made && i < p->n; i++) {
        conn_client_free(p->clients[i]);
        hold_free(p->made[i]);
    }
    free(p->made);
    free(p->clients);
    config_free(p->next);
    memset(p, 0, sizeof *p);
}

/* Everything that can fail: the file, the settings that take a restart, the
 * memory and the new clients. Changes nothing in the engine (but room in
 * e->holds); -1 with the reason in err, the plan abandoned. */
static int reload_prepare(struct engine *e, struct reload_plan *p, char *err, size_t errlen)
{
    struct config_errors *errs = NULL;
    memset(p, 0, sizeof *p);
    p->next = config_load(e->config_path, &errs);
    if (!p->next) {
        for (size_t i = 0; i < config_errors_count(errs); i++)
            log_event(e->lg, LOG_ERROR, "config.reload_refused", NULL, "%s",
                      config_errors_get(errs, i));
        snprintf(err, errlen, "%zu problem(s) in %s", config_errors_count(errs),
                 e->config_path);
        config_errors_free(errs);
        return -1;
    }
    const char *fixed[16];
    size_t nfixed = config_restart_keys(e->cfg, p->next, fixed, 16);
    if (nfixed) {
        for (size_t i = 0; i < nfixed && i < 16; i++)
            log_event(e->lg, LOG_ERROR, "config.reload_refused", NULL,
                      "%s changed: that takes a restart", fixed[i]);
        snprintf(err, errlen, "%zu setting(s) that take a restart changed", nfixed);
        goto fail;
    }
    p->n = p->next->n_connections;
    p->made = calloc(p->n, sizeof *p->made);
    p->clients = calloc(p->n, sizeof *p->clients);
    if (!p->made || !p->clients || reserve_holds(e, p->n)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct amtacs_connection *cc = &p->next->connections[i];
        struct hold *h = find_hold(e, cc->name);
        if (!h && !(h = p->made[i] = hold_new(e, cc))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if ((p->made[i] || client_changes(conn_cfg(h->conn), cc)) &&
            !(p->clients[i] = conn_client_new(h->conn, cc, !p->made[i], err, errlen)))
            goto fail;
    }
    return 0;
fail:
    reload_abandon(p);
    return -1;
}

/* Puts a prepared plan in force; nothing here fails. */
static void reload_commit(struct engine *e, struct reload_plan *p)
{
    size_t added = 0, changed = 0, removed = 0;
    const struct amtacs_config *next = p->next;
    for (size_t k = 0; k < e->nholds; k++) {
        struct conn *c = e->holds[k]->conn;
        if (conn_removed(c) || config_find_connection(next, conn_name(c)))
            continue;
        conn_set_removed(c, true);
        removed++;
        log_event(e->lg, LOG_INFO, "config.connection_removed", &(struct log_ctx){conn_name(c),
                  0, 0}, "no new claims; the %zu job(s) in hand are followed to their end",
                  conn_in_flight(c));
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct amtacs_connection *cc = &next->connections[i];
        struct hold *h = p->made[i] ? p->made[i] : find_hold(e, cc->name);
        struct conn *c = h->conn;
        struct log_ctx x = {cc->name, 0, 0};
        if (p->made[i]) {
            conn_client_install(c, p->clients[i], false);
            e->holds[e->nholds++] = h;
            p->made[i] = NULL;
            p->clients[i] = NULL;
            added++;
            conn_set_cfg(c, cc);
            conn_warn_transport(c);
            log_event(e->lg, LOG_INFO, "config.connection_added", &x, "%s as Batch User %s",
                      cc->url, cc->batch_user);
            if (e->db_up)
                conn_register(h, true);
            continue;
        }
        bool was_removed = conn_removed(c);
        bool user = strcmp(conn_cfg(c)->batch_user, cc->batch_user) != 0;
        bool same = config_connection_same(conn_cfg(c), cc, NULL);
        bool fresh_client = p->clients[i] != NULL;
        conn_set_cfg(c, cc);
        if (fresh_client) {
            conn_client_install(c, p->clients[i], user);
            p->clients[i] = NULL;
            conn_warn_transport(c);
        }
        conn_set_removed(c, false);
        if (was_removed || !same) {
            changed++;
            log_event(e->lg, LOG_INFO, "config.connection_changed", &x,
                      "%s%s; %zu job(s) in hand go on with the new settings",
                      was_removed ? "back in the configuration" : "settings changed",
                      fresh_client ? " (new client)" : "", conn_in_flight(c));
        }
        if (e->db_up)
            conn_register(h, user);
    }
    struct old_cfg *old = malloc(sizeof *old);
    if (old) {
        old->cfg = e->cfg;
        old->next = e->old_cfgs;
        e->old_cfgs = old;
    } else {
        /* Keeping it is only for removed connections' names: leak rather than dangle. */
        log_event(e->lg, LOG_WARN, "engine.oom", NULL, "the old configuration is kept unlisted");
    }
    e->cfg = next;
    p->next = NULL; /* the engine's now */
    e->lease_s = (int)next->daemon.lease_seconds;
    log_set_level(e->lg, (enum log_level)next->log_level);
    for (size_t k = 0; k < e->nholds; k++)
        claim(e->holds[k]); /* max_in_flight may have grown */
    metrics_reload(e->metrics, true);
    publish(e);
    log_event(e->lg, LOG_INFO, "config.reloaded", NULL,
              "%s: %zu connection(s) added, %zu changed, %zu removed; no job dropped",
              e->config_path, added, changed, removed);
    reload_abandon(p); /* only the arrays are left */
}

/* SIGHUP: the configuration file again, in two steps: reload_prepare checks
 * and prepares everything that can fail, reload_commit puts it in force and
 * cannot fail, so a refused reload changes nothing. Jobs in hand are never
 * dropped: a changed connection's jobs go on with the new settings (calls in
 * flight finish on the old client), a removed connection's jobs are followed
 * to their end without new claims. */
static void reload(struct engine *e)
{
    struct reload_plan plan;
    char err[512];
    if (!e->config_path) {
        log_event(e->lg, LOG_WARN, "config.reload_refused", NULL,
                  "no configuration file to reload");
        return;
    }
    if (reload_prepare(e, &plan, err, sizeof err)) {
        metrics_reload(e->metrics, false);
        log_event(e->lg, LOG_ERROR, "config.reload_refused", NULL,
                  "%s; the running configuration stays in force", err);
        return;
    }
    reload_commit(e, &plan);
}

struct engine *engine_new(const struct engine_options *opt, char *err, size_t errlen)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->lg = opt->lg;
    e->metrics = opt->metrics;
    e->env = (struct conn_env){
        .lg = opt->lg, .metrics = opt->metrics, .key = opt->key, .ud = e,
        .tearing_down = tearing_down, .comm_changed = on_comm_changed, .checked = on_checked,
        .not_sent = on_check_not_sent,
    };
    e->signal_fd = opt->signal_fd;
    e->grace_ms = opt->shutdown_grace_ms > 0 ? opt->shutdown_grace_ms : 5000;
    e->lease_s = (int)opt->cfg->daemon.lease_seconds;
    e->owner = strdup(opt->owner);
#ifdef AMTACS_TEST_HOOKS
    const char *crash = getenv("AMTACS_CRASH_AT");
    if (crash && *crash) {
        const char *colon = strchr(crash, ':');
        size_t len = colon ? (size_t)(colon - crash) : strlen(crash);
        snprintf(e->crash_at, sizeof e->crash_at, "%.*s", (int)len, crash);
        e->crash_countdown = colon ? strtol(colon + 1, NULL, 10) : 1;
        if (e->crash_countdown < 1)
            e->crash_countdown = 1;
        log_event(e->lg, LOG_WARN, "daemon.crash_armed", NULL,
                  "AMTACS_CRASH_AT=%s: this daemon will kill itself (tests only)", crash);
    }
#endif
    e->multi = e->env.multi = curl_multi_init();
    if (!e->owner || !e->multi || reserve_holds(e, opt->cfg->n_connections) ||
        (opt->config_path && !(e->config_path = strdup(opt->config_path)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int64_t now = now_ms();
    for (size_t k = 0; k < opt->cfg->n_connections; k++) {
        const struct amtacs_connection *cc = &opt->cfg->connections[k];
        struct hold *h = hold_new(e, cc);
        if (!h) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        e->holds[e->nholds++] = h;
        struct conn_client *cl = conn_client_new(h->conn, cc, false, err, errlen);
        if (!cl)
            goto fail;
        conn_client_install(h->conn, cl, false);
        conn_warn_transport(h->conn);
    }
    /* Keep every connection the clients may open in the cache, so that
     * kept-alive connections are reused rather than closed and reopened. */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)(8 * e->nholds + 8));
    static const char *const channels[] = {"acs_jobs", "acs_comm", "acs_batch_users",
                                           "acs_kill", NULL};
    static const char *const none[] = {NULL};
    struct pgconn_callbacks cbs = {NULL, on_db_up, on_db_down, e, observe_statement};
    struct pgconn_callbacks lcbs = {on_notify, on_listen_up, NULL, e, NULL};
    e->pc = pgconn_new(opt->cfg->database.conninfo, none, &cbs, e->lg);
    e->listen = pgconn_new(opt->cfg->database.conninfo, channels, &lcbs, e->lg);
    e->env.pc = e->pc;
    e->batch = store_batch_new(e->owner);
    e->sent = sentset_new(SENT_REMEMBERED);
    e->alerts = alertcmd_new(e->lg);
    if (!e->pc || !e->listen || !e->batch || !e->sent || !e->alerts) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    e->cfg = opt->cfg; /* owned from here on */
    e->next_renew = now + renew_interval_ms(e);
    e->next_claim_poll = now + CLAIM_POLL_MS;
    e->next_takeover_check = now + TAKEOVER_CHECK_MS;
    e->next_purge = now + 1000; /* soon after start, then every purge_interval */
    return e;
fail:
    engine_free(e);
    return NULL;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    for (size_t k = 0; k < e->nholds; k++)
        conn_stop_calls(e->holds[k]->conn); /* callbacks see AMT_ERR_CANCELLED */
    e->stopping = 2;    /* callbacks below only let go of their jobs */
    store_batch_free(e->batch);
    sentset_free(e->sent);
    pgconn_free(e->listen);
    pgconn_free(e->pc); /* write callbacks see "shutting down" */
    e->pc = e->env.pc = NULL;
    for (size_t k = 0; k < e->nholds; k++) {
        struct hold *h = e->holds[k];
        e->stopping = 2; /* job_free must not claim */
        while (h->jobs)
            job_free(h->jobs);
        hold_free(h);
    }
    alertcmd_free(e->alerts); /* last: a callback above may still raise an alert */
    e->alerts = NULL;
    free(e->holds);
    free(e->heap);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    config_free(e->cfg);
    while (e->old_cfgs) {
        struct old_cfg *o = e->old_cfgs;
        e->old_cfgs = o->next;
        config_free(o->cfg);
        free(o);
    }
    free(e->config_path);
    free(e->owner);
    free(e);
}
