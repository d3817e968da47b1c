/*
 * job: the life of one job in the daemon, as a state machine with no I/O.
 *
 * Events go in (claimed, its timer due, Start answered or failed, a monitor
 * state or failure, messages read or not, a write done or failed, a kill
 * requested, the lease lost, Full Comm changed); actions come out (send
 * Start, send Kill, monitor now or at t, read messages, write the start, the
 * finish or the doubt, drop). The engine (engine.c) does the I/O the actions
 * ask for and turns what comes back into the next event.
 *
 * Every change of phase passes through one function, driven by job_table:
 * (phase, event, guard) -> next phase + actions, where the guard names the
 * rule that decided (a failed Start is retried, goes in doubt or ends the
 * job). The table is data, so that tests, a model of the protocol and the
 * documentation read the same rules the daemon runs. An event the table has
 * no row for in the job's phase is refused: nothing changes, out.refused is
 * set and the engine logs it (job.refused); it is never silently applied.
 *
 * struct job_machine is visible so that the engine can embed it (one per
 * job, no allocation) and read it; only job.c writes its fields.
 */
#ifndef AMTACS_JOB_H
#define AMTACS_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOB_RETRY_MS 1000     /* a failed write or a step that could not run, again after this */
#define JOB_UNKNOWN_LIMIT 3   /* MonitorJob 404s in a row before the job is UNDEFINED */
#define JOB_KILL_RETRY_MS 1000 /* a failed Kill is sent again after this */

enum job_phase {
    JOB_NEW,          /* not claimed yet */
    JOB_START,        /* send Start (again only where that cannot start it twice) */
    JOB_START_WRITE,  /* record the BatchRequestId */
    JOB_FOLLOW,       /* MonitorJob until a final code */
    JOB_MESSAGES,     /* read every message of the task and its children */
    JOB_FINISH_WRITE, /* final code, result and merged log in one transaction */
    JOB_DOUBT_WRITE,  /* the Start may have reached a non-idempotent server: an operator decides */
    JOB_DROPPED,      /* done with: the engine frees it */
    JOB_NPHASES
};

enum job_event {
    JEV_CLAIMED,         /* the claim handed the job to us */
    JEV_DUE,             /* its timer fired and Full Comm and the daemon let it act */
    JEV_START_ANSWERED,  /* Start returned a BatchRequestId */
    JEV_START_FAILED,    /* Start failed, or could not even be sent */
    JEV_MONITOR_STATE,   /* MonitorJob(s) reported a state code */
    JEV_MONITOR_FAILED,  /* MonitorJob(s) failed or did not list the job */
    JEV_MESSAGES_READ,   /* a page of messages was read */
    JEV_MESSAGES_FAILED, /* reading messages failed */
    JEV_WRITE_DONE,      /* the phase's write returned (the job held or not) */
    JEV_WRITE_FAILED,    /* the phase's write failed or found the row locked */
    JEV_KILL_REQUESTED,  /* an operator asked for a kill */
    JEV_LEASE_LOST,      /* another daemon holds the job now */
    JEV_COMM_CHANGED,    /* Full Comm changed: a parked job may go on */
    JOB_NEVENTS
};

/* Which rule chose the transition: the table has one row per (phase, event,
 * guard). */
enum job_guard {
    JG_ANY,        /* the only outcome */
    JG_QUEUED,     /* claimed queued: to be started */
    JG_RUNNING,    /* claimed running (taken over): followed, never started again;
                      monitor state: not final, checked again later */
    JG_WAIT,       /* not yet (lease, features, password): the step again later */
    JG_SEND,       /* the call goes out */
    JG_DOUBT,      /* the Start may have reached a server that does not promise idempotence */
    JG_RETRY,      /* failed: tried again later */
    JG_FINAL,      /* the job ends with a code / the final state is known: its messages next */
    JG_MORE,       /* messages to read (another page, or new ones while it runs) */
    JG_DONE,       /* nothing more to read: on to the next step */
    JG_HELD,       /* the write was made: still ours */
    JG_HELD_KILL,  /* held, and a kill waited for the BatchRequestId */
    JG_NOT_HELD,   /* the write found the job no longer ours */
    JG_REFUSED,    /* kill: allow_kill is false for the connection */
    JG_NEVER_SENT, /* kill: Start was never sent; the job ends KILLED without it */
    JG_LATER,      /* kill: sent as soon as Start has answered */
    JG_IGNORED,    /* kill: the job has ended already, or a Kill is on its way */
    JG_BUSY,       /* lease lost with I/O in flight: dropped when it returns */
    JG_IDLE,       /* lease lost, nothing in flight: dropped now */
    JG_PARKED,     /* comm changed for a parked job: woken */
    JG_ACTIVE,     /* comm changed for a job with a timer or I/O: nothing to do */
    JOB_NGUARDS
};

/* What the engine is to do (bits of job_out.actions), in this order. */
enum job_action {
    JA_SEND_KILL = 1u << 0,      /* Kill its BatchRequestId (deferred while comm or lease forbid) */
    JA_SEND_START = 1u << 1,     /* Start with the job's taskId */
    JA_MONITOR = 1u << 2,        /* check now (MonitorJob, or a place in the next MonitorJobs) */
    JA_MONITOR_AT = 1u << 3,     /* check after delay_ms, on the connection's beat */
    JA_READ_MESSAGES = 1u << 4,  /* the next page of messages */
    JA_WRITE_STARTED = 1u << 5,  /* record the BatchRequestId */
    JA_WRITE_FINISH = 1u << 6,   /* the final code, result and merged log */
    JA_WRITE_DOUBT = 1u << 7,    /* starting -> in_doubt with an alert */
    JA_AT = 1u << 8,             /* this phase's step again after delay_ms */
    JA_DROP = 1u << 9,           /* free the job */
    JA_KILL_REFUSED = 1u << 10,  /* record that the kill is refused */
    JA_WRITE_PROGRESS = 1u << 11,/* (not in the table) a new state to record, best effort */
};
/* The actions that start I/O the job waits for (the job is busy until it returns). */
#define JA_IO (JA_SEND_START | JA_MONITOR | JA_READ_MESSAGES | JA_WRITE_STARTED | \
               JA_WRITE_FINISH | JA_WRITE_DOUBT)

struct job_transition {
    enum job_phase from;
    enum job_event event;
    enum job_guard guard;
    enum job_phase to;
    unsigned actions; /* JA_* */
};

/* Every allowed transition, once per (from, event, guard). */
extern const struct job_transition job_table[];
extern const size_t job_table_len;

/* The row for (from, event, guard), or NULL: the event is refused. */
const struct job_transition *job_table_find(enum job_phase from, enum job_event event,
                                            enum job_guard guard);

/* The table as a Mermaid state diagram (malloc'd; NULL when out of memory):
 * one arrow per row that changes the phase or asks for an action, labelled
 * "event [guard] / actions". docs/architecture.md shows it; test_job checks
 * that the copy there is this output. */
char *job_table_mermaid(void);

const char *job_phase_name(enum job_phase p);
const char *job_event_name(enum job_event ev);
const char *job_guard_name(enum job_guard g);
/* "send_start|monitor_at": the names of the actions, for logs and documents. */
void job_actions_str(unsigned actions, char *s, size_t len);

/* Full Comm, as OpCon has it. Unknown until the database has told us: then
 * nothing is sent, as under disabled. */
enum job_comm {
    JOB_COMM_UNKNOWN,
    JOB_COMM_ENABLED,  /* jobs start and are followed */
    JOB_COMM_LIMITED,  /* no new starts; running jobs are followed to their end */
    JOB_COMM_DISABLED, /* nothing is sent to the server; jobs wait */
};

/* The connection's settings the rules read (its configuration). */
struct job_limits {
    long start_attempts;
    double start_backoff;
    int64_t start_delay_ms, start_max_delay_ms;
    int64_t poll_interval_ms, poll_initial_delay_ms, poll_max_interval_ms;
    double poll_backoff;
    bool allow_kill;
};

/* What the connection knows when a Start is due or has failed. */
struct job_view {
    bool lease_holds;     /* our lease surely holds (and the database is up) */
    bool features_known;  /* a heartbeat has answered */
    bool heartbeat_failed;/* before one answered, one failed */
    bool idempotent;      /* the server's Start is idempotent per taskId */
    bool password_loaded; /* the database has answered for the Batch User's password */
    int64_t now_ms;
};

/* Why a step waits, goes in doubt or ends: the engine words it (with the
 * server's error where there is one). */
enum job_note {
    JN_NONE,
    JN_WAIT_LEASE,           /* the lease could not be renewed in time */
    JN_WAIT_FEATURES,        /* the first heartbeat is on its way */
    JN_WAIT_PASSWORD,        /* the password has not been read yet */
    JN_WAIT_IDEMPOTENCE,     /* Start may have been sent: waits for a heartbeat to say more */
    JN_DOUBT_SENT_BEFORE,    /* we sent Start under a claim the database lost */
    JN_DOUBT_EARLIER_HOLDER, /* an earlier holder may have sent Start */
    JN_DOUBT_START_FAILED,   /* Start failed after it was sent */
    JN_DOUBT_RETRIES_OUT,    /* start_retry.attempts used up after a Start that may have arrived */
    JN_AUTH,                 /* logon refused or no password: 24 */
    JN_START_REFUSED,        /* the server refused the Start: 11 */
    JN_UNREACHABLE,          /* start_retry.attempts used up: 23 */
    JN_BAD_REQUEST,          /* the Start request could not be made: 11 */
    JN_RETRY_UNSURE,         /* Start failed after it was sent; sent again only if idempotent */
    JN_RETRY,                /* Start failed before it was sent: tried again */
    JN_UNDEFINED,            /* the server no longer knows the BatchRequestId: 19 */
    JN_FOLLOW_RESUMED,       /* the server answers again after failed checks */
    JN_FOLLOW_RETRY,         /* a check failed (said on the first and every tenth) */
    JN_FOLLOW_RETRY_QUIET,   /* a check failed, not said */
    JN_MESSAGES_RETRY,       /* reading the final messages failed: again later */
    JN_MESSAGES_LOST,        /* reading the messages failed for good: finished without them */
    JN_KILLED_QUEUED,        /* killed before Start was ever sent */
};

/* What failed on a Start. */
enum job_start_failure {
    JOB_START_TRANSIENT, /* may succeed later (transport, 5xx, protocol) */
    JOB_START_AUTH,      /* logon refused, or no password */
    JOB_START_REJECTED,  /* the server refused the request */
    JOB_START_UNSENDABLE,/* the request could not even be made */
};

/* One job's state. Only job.c writes it. */
struct job_machine {
    enum job_phase phase;
    bool busy;            /* I/O is in flight for the job (JA_IO) */
    bool lost;            /* the lease is gone: dropped once not busy */
    bool maybe_started;   /* an earlier holder (or this process) may have sent Start */
    bool sent_before;     /* this process sent Start for the taskId under an earlier claim */
    bool kill_wanted;     /* a kill is to be sent */
    bool kill_seen;       /* the operator's kill request reached the machine */
    bool kill_busy;       /* a Kill call is in flight (independent of busy) */
    int64_t kill_retry_at;/* a failed Kill is sent again from then on */
    int brid;             /* BatchRequestId, 0 until Start answered */
    long start_tries;
    int64_t retry_ms;     /* the next Start retry's delay */
    int64_t interval_ms;  /* the next check's delay */
    int last_code;        /* the last state reported, -1 none */
    int unknown;          /* MonitorJob 404s in a row */
    long failures;        /* checks in a row that failed */
    int final_code;
    long message_count;   /* messages the server says the job has */
    bool count_known;     /* the last check said how many */
    bool never_left;      /* ends 23 with no Start that can have arrived anywhere: it may
                             go to its next listed connection (Integration Selection) */
};

/* What an event produced. */
struct job_out {
    bool refused;          /* no row for the event in the job's phase: nothing changed */
    enum job_phase from;
    enum job_event event;
    enum job_guard guard;
    unsigned actions;      /* JA_* */
    int64_t delay_ms;      /* for JA_AT and JA_MONITOR_AT */
    enum job_note note;
    long failures;         /* JN_FOLLOW_RESUMED: failed checks before it; JN_FOLLOW_RETRY: count */
    bool state_changed;    /* monitor state: a new code (last_code) */
};

/* A zeroed machine in JOB_NEW. */
void job_init(struct job_machine *m);

/* The events. Each fills *out; out->refused says the event was impossible in
 * the job's phase (and nothing changed). */

/* running: the claim says it runs (taken over); maybe_started: another holder had it, or
 * sent_before: this process sent its Start under an earlier claim. */
void job_claimed(struct job_machine *m, const struct job_limits *lim, bool running,
                 bool maybe_started, bool sent_before, int brid, struct job_out *out);
/* The timer fired (the engine calls it only for a job that is not busy). */
void job_due(struct job_machine *m, const struct job_view *v, struct job_out *out);
void job_start_answered(struct job_machine *m, int brid, struct job_out *out);
void job_start_failed(struct job_machine *m, const struct job_limits *lim,
                      const struct job_view *v, enum job_start_failure why,
                      bool maybe_delivered, struct job_out *out);
/* kept: messages the engine holds; truncated: the log reached its cap. */
void job_monitor_state(struct job_machine *m, const struct job_limits *lim, int code,
                       long message_count, size_t kept, bool truncated, struct job_out *out);
/* unknown: the server said it does not know the BatchRequestId. */
void job_monitor_failed(struct job_machine *m, const struct job_limits *lim, bool unknown,
                        struct job_out *out);
/* more: another page follows (and the log is not cut). */
void job_messages_read(struct job_machine *m, bool more, struct job_out *out);
/* transient: the same read may succeed later. */
void job_messages_failed(struct job_machine *m, const struct job_limits *lim, bool transient,
                         struct job_out *out);
void job_write_done(struct job_machine *m, const struct job_limits *lim, bool held,
                    struct job_out *out);
void job_write_failed(struct job_machine *m, struct job_out *out);
void job_kill_requested(struct job_machine *m, const struct job_limits *lim, struct job_out *out);
void job_lease_lost(struct job_machine *m, struct job_out *out);
/* parked: no timer and no I/O (left aside by job_may_act). */
void job_comm_changed(struct job_machine *m, bool parked, struct job_out *out);

/* The I/O an action started has returned (or could not be queued): the job is
 * no longer busy. Returns true when the job is still ours (not lost). */
bool job_settle(struct job_machine *m);

/* The Kill call, beside the phases: deferred (comm, lease), sent, returned,
 * failed (sent again from now + JOB_KILL_RETRY_MS). */
void job_kill_deferred(struct job_machine *m);
void job_kill_sending(struct job_machine *m);
void job_kill_returned(struct job_machine *m);
void job_kill_failed(struct job_machine *m, int64_t now_ms);

/* Whether the job's due step may run now: while stopping only writes in hand
 * are completed; otherwise Full Comm decides (limited: no new starts). */
bool job_may_act(const struct job_machine *m, enum job_comm comm, bool stopping);
/* The phases whose step is a write to the database. */
bool job_phase_writes(enum job_phase p);

#endif
