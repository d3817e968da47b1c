#include "amtacs/job.h"

#include <stdio.h>
#include <string.h>

#include "amtacs/buf.h"
#include "amtacs/codes.h"

/* Actions every write phase's step and retry share. */
#define WRITE_AGAIN JA_AT

const struct job_transition job_table[] = {
    /* claimed */
    {JOB_NEW, JEV_CLAIMED, JG_QUEUED, JOB_START, JA_AT},
    {JOB_NEW, JEV_CLAIMED, JG_RUNNING, JOB_FOLLOW, JA_AT},

    /* start: Start is sent, or waits, or may not be sent again */
    {JOB_START, JEV_DUE, JG_SEND, JOB_START, JA_SEND_START},
    {JOB_START, JEV_DUE, JG_WAIT, JOB_START, JA_AT},
    {JOB_START, JEV_DUE, JG_DOUBT, JOB_DOUBT_WRITE, JA_WRITE_DOUBT},
    {JOB_START, JEV_START_ANSWERED, JG_ANY, JOB_START_WRITE, JA_WRITE_STARTED},
    {JOB_START, JEV_START_FAILED, JG_RETRY, JOB_START, JA_AT},
    {JOB_START, JEV_START_FAILED, JG_DOUBT, JOB_DOUBT_WRITE, JA_WRITE_DOUBT},
    {JOB_START, JEV_START_FAILED, JG_FINAL, JOB_FINISH_WRITE, JA_WRITE_FINISH},
    {JOB_START, JEV_KILL_REQUESTED, JG_REFUSED, JOB_START, JA_KILL_REFUSED},
    {JOB_START, JEV_KILL_REQUESTED, JG_NEVER_SENT, JOB_FINISH_WRITE, JA_WRITE_FINISH},
    {JOB_START, JEV_KILL_REQUESTED, JG_LATER, JOB_START, 0},
    {JOB_START, JEV_KILL_REQUESTED, JG_SEND, JOB_START, JA_SEND_KILL},
    {JOB_START, JEV_KILL_REQUESTED, JG_IGNORED, JOB_START, 0},
    {JOB_START, JEV_LEASE_LOST, JG_BUSY, JOB_START, 0},
    {JOB_START, JEV_LEASE_LOST, JG_IDLE, JOB_DROPPED, JA_DROP},
    {JOB_START, JEV_COMM_CHANGED, JG_PARKED, JOB_START, JA_AT},
    {JOB_START, JEV_COMM_CHANGED, JG_ACTIVE, JOB_START, 0},

    /* the BatchRequestId is recorded before anything else is sent for the job */
    {JOB_START_WRITE, JEV_DUE, JG_ANY, JOB_START_WRITE, JA_WRITE_STARTED},
    {JOB_START_WRITE, JEV_WRITE_DONE, JG_HELD, JOB_FOLLOW, JA_MONITOR_AT},
    {JOB_START_WRITE, JEV_WRITE_DONE, JG_HELD_KILL, JOB_FOLLOW, JA_MONITOR_AT | JA_SEND_KILL},
    {JOB_START_WRITE, JEV_WRITE_DONE, JG_NOT_HELD, JOB_DROPPED, JA_DROP},
    {JOB_START_WRITE, JEV_WRITE_FAILED, JG_RETRY, JOB_START_WRITE, WRITE_AGAIN},
    {JOB_START_WRITE, JEV_KILL_REQUESTED, JG_REFUSED, JOB_START_WRITE, JA_KILL_REFUSED},
    {JOB_START_WRITE, JEV_KILL_REQUESTED, JG_LATER, JOB_START_WRITE, 0},
    {JOB_START_WRITE, JEV_KILL_REQUESTED, JG_SEND, JOB_START_WRITE, JA_SEND_KILL},
    {JOB_START_WRITE, JEV_KILL_REQUESTED, JG_IGNORED, JOB_START_WRITE, 0},
    {JOB_START_WRITE, JEV_LEASE_LOST, JG_BUSY, JOB_START_WRITE, 0},
    {JOB_START_WRITE, JEV_LEASE_LOST, JG_IDLE, JOB_DROPPED, JA_DROP},
    {JOB_START_WRITE, JEV_COMM_CHANGED, JG_PARKED, JOB_START_WRITE, JA_AT},
    {JOB_START_WRITE, JEV_COMM_CHANGED, JG_ACTIVE, JOB_START_WRITE, 0},

    /* following: a check, and a Kill waiting for its retry time */
    {JOB_FOLLOW, JEV_DUE, JG_ANY, JOB_FOLLOW, JA_MONITOR},
    {JOB_FOLLOW, JEV_DUE, JG_SEND, JOB_FOLLOW, JA_MONITOR | JA_SEND_KILL},
    {JOB_FOLLOW, JEV_MONITOR_STATE, JG_RUNNING, JOB_FOLLOW, JA_MONITOR_AT},
    {JOB_FOLLOW, JEV_MONITOR_STATE, JG_MORE, JOB_FOLLOW, JA_READ_MESSAGES},
    {JOB_FOLLOW, JEV_MONITOR_STATE, JG_FINAL, JOB_MESSAGES, JA_READ_MESSAGES},
    {JOB_FOLLOW, JEV_MONITOR_STATE, JG_DONE, JOB_FINISH_WRITE, JA_WRITE_FINISH},
    {JOB_FOLLOW, JEV_MONITOR_FAILED, JG_RETRY, JOB_FOLLOW, JA_MONITOR_AT},
    {JOB_FOLLOW, JEV_MONITOR_FAILED, JG_FINAL, JOB_FINISH_WRITE, JA_WRITE_FINISH},
    {JOB_FOLLOW, JEV_MESSAGES_READ, JG_MORE, JOB_FOLLOW, JA_READ_MESSAGES},
    {JOB_FOLLOW, JEV_MESSAGES_READ, JG_DONE, JOB_FOLLOW, JA_AT},
    {JOB_FOLLOW, JEV_MESSAGES_FAILED, JG_RETRY, JOB_FOLLOW, JA_AT},
    {JOB_FOLLOW, JEV_KILL_REQUESTED, JG_REFUSED, JOB_FOLLOW, JA_KILL_REFUSED},
    {JOB_FOLLOW, JEV_KILL_REQUESTED, JG_LATER, JOB_FOLLOW, 0},
    {JOB_FOLLOW, JEV_KILL_REQUESTED, JG_SEND, JOB_FOLLOW, JA_SEND_KILL},
    {JOB_FOLLOW, JEV_KILL_REQUESTED, JG_IGNORED, JOB_FOLLOW, 0},
    {JOB_FOLLOW, JEV_LEASE_LOST, JG_BUSY, JOB_FOLLOW, 0},
    {JOB_FOLLOW, JEV_LEASE_LOST, JG_IDLE, JOB_DROPPED, JA_DROP},
    {JOB_FOLLOW, JEV_COMM_CHANGED, JG_PARKED, JOB_FOLLOW, JA_AT},
    {JOB_FOLLOW, JEV_COMM_CHANGED, JG_ACTIVE, JOB_FOLLOW, 0},

    /* the final state is known: its messages, then the finish */
    {JOB_MESSAGES, JEV_DUE, JG_ANY, JOB_MESSAGES, JA_READ_MESSAGES},
    {JOB_MESSAGES, JEV_MESSAGES_READ, JG_MORE, JOB_MESSAGES, JA_READ_MESSAGES},
    {JOB_MESSAGES, JEV_MESSAGES_READ, JG_DONE, JOB_FINISH_WRITE, JA_WRITE_FINISH},
    {JOB_MESSAGES, JEV_MESSAGES_FAILED, JG_RETRY, JOB_MESSAGES, JA_AT},
    {JOB_MESSAGES, JEV_MESSAGES_FAILED, JG_FINAL, JOB_FINISH_WRITE, JA_WRITE_FINISH},
    {JOB_MESSAGES, JEV_KILL_REQUESTED, JG_REFUSED, JOB_MESSAGES, JA_KILL_REFUSED},
    {JOB_MESSAGES, JEV_KILL_REQUESTED, JG_IGNORED, JOB_MESSAGES, 0},
    {JOB_MESSAGES, JEV_LEASE_LOST, JG_BUSY, JOB_MESSAGES, 0},
    {JOB_MESSAGES, JEV_LEASE_LOST, JG_IDLE, JOB_DROPPED, JA_DROP},
    {JOB_MESSAGES, JEV_COMM_CHANGED, JG_PARKED, JOB_MESSAGES, JA_AT},
    {JOB_MESSAGES, JEV_COMM_CHANGED, JG_ACTIVE, JOB_MESSAGES, 0},

    /* the finish: written once, whatever the write says, the job is done with */
    {JOB_FINISH_WRITE, JEV_DUE, JG_ANY, JOB_FINISH_WRITE, JA_WRITE_FINISH},
    {JOB_FINISH_WRITE, JEV_WRITE_DONE, JG_HELD, JOB_DROPPED, JA_DROP},
    {JOB_FINISH_WRITE, JEV_WRITE_DONE, JG_NOT_HELD, JOB_DROPPED, JA_DROP},
    {JOB_FINISH_WRITE, JEV_WRITE_FAILED, JG_RETRY, JOB_FINISH_WRITE, WRITE_AGAIN},
    {JOB_FINISH_WRITE, JEV_KILL_REQUESTED, JG_REFUSED, JOB_FINISH_WRITE, JA_KILL_REFUSED},
    {JOB_FINISH_WRITE, JEV_KILL_REQUESTED, JG_IGNORED, JOB_FINISH_WRITE, 0},
    {JOB_FINISH_WRITE, JEV_LEASE_LOST, JG_BUSY, JOB_FINISH_WRITE, 0},
    {JOB_FINISH_WRITE, JEV_LEASE_LOST, JG_IDLE, JOB_DROPPED, JA_DROP},
    {JOB_FINISH_WRITE, JEV_COMM_CHANGED, JG_PARKED, JOB_FINISH_WRITE, JA_AT},
    {JOB_FINISH_WRITE, JEV_COMM_CHANGED, JG_ACTIVE, JOB_FINISH_WRITE, 0},

    /* in doubt: written, then left to an operator */
    {JOB_DOUBT_WRITE, JEV_DUE, JG_ANY, JOB_DOUBT_WRITE, JA_WRITE_DOUBT},
    {JOB_DOUBT_WRITE, JEV_WRITE_DONE, JG_HELD, JOB_DROPPED, JA_DROP},
    {JOB_DOUBT_WRITE, JEV_WRITE_DONE, JG_NOT_HELD, JOB_DROPPED, JA_DROP},
    {JOB_DOUBT_WRITE, JEV_WRITE_FAILED, JG_RETRY, JOB_DOUBT_WRITE, WRITE_AGAIN},
    {JOB_DOUBT_WRITE, JEV_KILL_REQUESTED, JG_REFUSED, JOB_DOUBT_WRITE, JA_KILL_REFUSED},
    {JOB_DOUBT_WRITE, JEV_KILL_REQUESTED, JG_IGNORED, JOB_DOUBT_WRITE, 0},
    {JOB_DOUBT_WRITE, JEV_LEASE_LOST, JG_BUSY, JOB_DOUBT_WRITE, 0},
    {JOB_DOUBT_WRITE, JEV_LEASE_LOST, JG_IDLE, JOB_DROPPED, JA_DROP},
    {JOB_DOUBT_WRITE, JEV_COMM_CHANGED, JG_PARKED, JOB_DOUBT_WRITE, JA_AT},
    {JOB_DOUBT_WRITE, JEV_COMM_CHANGED, JG_ACTIVE, JOB_DOUBT_WRITE, 0},
};
const size_t job_table_len = sizeof job_table / sizeof job_table[0];

const struct job_transition *job_table_find(enum job_phase from, enum job_event event,
                                            enum job_guard guard)
{
    for (size_t i = 0; i < job_table_len; i++)
        if (job_table[i].from == from && job_table[i].event == event &&
            job_table[i].guard == guard)
            return &job_table[i];
    return NULL;
}

static const char *const phase_names[JOB_NPHASES] = {
    "new", "start", "start_write", "follow", "messages", "finish_write", "doubt_write", "dropped",
};
static const char *const event_names[JOB_NEVENTS] = {
    "claimed",       "due",          "start_answered",  "start_failed", "monitor_state",
    "monitor_failed", "messages_read", "messages_failed", "write_done", "write_failed",
    "kill_requested", "lease_lost",   "comm_changed",
};
static const char *const guard_names[JOB_NGUARDS] = {
    "any",  "queued", "running",  "wait",     "send",       "doubt",  "retry",
    "final", "more",  "done",     "held",     "held_kill",  "not_held", "refused",
    "never_sent", "later", "ignored", "busy", "idle", "parked", "active",
};
static const char *const action_names[] = {
    "send_kill",   "send_start",   "monitor",    "monitor_at",   "read_messages", "write_started",
    "write_finish", "write_doubt", "at",         "drop",         "kill_refused",  "write_progress",
};

const char *job_phase_name(enum job_phase p)
{
    return (unsigned)p < JOB_NPHASES ? phase_names[p] : "?";
}

const char *job_event_name(enum job_event ev)
{
    return (unsigned)ev < JOB_NEVENTS ? event_names[ev] : "?";
}

const char *job_guard_name(enum job_guard g)
{
    return (unsigned)g < JOB_NGUARDS ? guard_names[g] : "?";
}

void job_actions_str(unsigned actions, char *s, size_t len)
{
    size_t at = 0;
    if (len)
        s[0] = '\0';
    for (size_t i = 0; i < sizeof action_names / sizeof action_names[0]; i++) {
        if (!(actions & (1u << i)) || at >= len)
            continue;
        int w = snprintf(s + at, len - at, "%s%s", at ? "|" : "", action_names[i]);
        at = w < 0 ? len : at + (size_t)w;
    }
}

/* The one place a job's phase changes: the row for (phase, event, guard)
 * gives the next phase and the actions; an event without a row is refused
 * and changes nothing. Actions that start I/O make the job busy until
 * job_settle(). */
static bool transition(struct job_machine *m, enum job_event ev, enum job_guard g,
                       struct job_out *out)
{
    out->from = m->phase;
    out->event = ev;
    out->guard = g;
    const struct job_transition *t = job_table_find(m->phase, ev, g);
    if (!t) {
        out->refused = true;
        out->actions = 0;
        return false;
    }
    m->phase = t->to;
    out->actions |= t->actions;
    if (t->actions & JA_IO)
        m->busy = true;
    return true;
}

static void out_init(struct job_out *out)
{
    memset(out, 0, sizeof *out);
}

/* Events that only make sense in some phases are refused in the others
 * before any field is touched. */
static bool refuse(struct job_machine *m, enum job_event ev, struct job_out *out)
{
    out->from = m->phase;
    out->event = ev;
    out->refused = true;
    return false;
}

void job_init(struct job_machine *m)
{
    memset(m, 0, sizeof *m);
    m->phase = JOB_NEW;
    m->last_code = -1;
}

void job_claimed(struct job_machine *m, const struct job_limits *lim, bool running,
                 bool maybe_started, bool sent_before, int brid, struct job_out *out)
{
    out_init(out);
    if (m->phase != JOB_NEW) {
        refuse(m, JEV_CLAIMED, out);
        return;
    }
    m->brid = brid;
    m->retry_ms = lim->start_delay_ms;
    if (running) {
        /* Taken over: followed again from its BatchRequestId, never restarted. */
        m->interval_ms = lim->poll_interval_ms;
    } else {
        m->sent_before = sent_before;
        m->maybe_started = maybe_started || sent_before;
    }
    out->delay_ms = 0;
    transition(m, JEV_CLAIMED, running ? JG_RUNNING : JG_QUEUED, out);
}

/* Whether Start may go out now, and how. */
static enum job_guard start_guard(const struct job_machine *m, const struct job_view *v,
                                  struct job_out *out)
{
    if (!v->lease_holds) {
        out->note = JN_WAIT_LEASE;
        out->delay_ms = JOB_RETRY_MS;
        return JG_WAIT;
    }
    if (!v->features_known && !v->heartbeat_failed) {
        /* The first heartbeat is on its way: whether Start is idempotent
         * decides how it is sent (a kept-alive connection or a fresh one). */
        out->note = JN_WAIT_FEATURES;
        out->delay_ms = 20;
        return JG_WAIT;
    }
    if (!v->password_loaded) {
        /* A logon now would fail for want of the password, and fail the job. */
        out->note = JN_WAIT_PASSWORD;
        out->delay_ms = 50;
        return JG_WAIT;
    }
    if (m->maybe_started) {
        /* Sending Start again is safe only where the server says so. */
        if (!v->features_known) {
            out->note = JN_WAIT_IDEMPOTENCE;
            out->delay_ms = 200;
            return JG_WAIT;
        }
        if (!v->idempotent) {
            out->note = m->sent_before ? JN_DOUBT_SENT_BEFORE : JN_DOUBT_EARLIER_HOLDER;
            return JG_DOUBT;
        }
    }
    return JG_SEND;
}

void job_due(struct job_machine *m, const struct job_view *v, struct job_out *out)
{
    out_init(out);
    if (m->busy) {
        refuse(m, JEV_DUE, out); /* its I/O is still out: the engine never asks then */
        return;
    }
    enum job_guard g = JG_ANY;
    switch (m->phase) {
    case JOB_START:
        g = start_guard(m, v, out);
        break;
    case JOB_FOLLOW:
        if (m->kill_wanted && !m->kill_busy && m->brid && v->now_ms >= m->kill_retry_at)
            g = JG_SEND;
        break;
    default:
        break;
    }
    transition(m, JEV_DUE, g, out);
}

void job_start_answered(struct job_machine *m, int brid, struct job_out *out)
{
    out_init(out);
    if (m->phase != JOB_START) {
        refuse(m, JEV_START_ANSWERED, out);
        return;
    }
    m->brid = brid;
    transition(m, JEV_START_ANSWERED, JG_ANY, out);
}

void job_start_failed(struct job_machine *m, const struct job_limits *lim,
                      const struct job_view *v, enum job_start_failure why,
                      bool maybe_delivered, struct job_out *out)
{
    out_init(out);
    if (m->phase != JOB_START) {
        refuse(m, JEV_START_FAILED, out);
        return;
    }
    switch (why) {
    case JOB_START_AUTH:
        m->final_code = AMT_AUTHENTICATION_ERROR;
        out->note = JN_AUTH;
        transition(m, JEV_START_FAILED, JG_FINAL, out);
        return;
    case JOB_START_REJECTED:
        m->final_code = AMT_ERROR;
        out->note = JN_START_REFUSED;
        transition(m, JEV_START_FAILED, JG_FINAL, out);
        return;
    case JOB_START_UNSENDABLE:
        m->final_code = AMT_ERROR;
        out->note = JN_BAD_REQUEST;
        transition(m, JEV_START_FAILED, JG_FINAL, out);
        return;
    case JOB_START_TRANSIENT:
        break;
    }
    m->start_tries++;
    if (maybe_delivered && !v->features_known) {
        /* No heartbeat has answered yet (the first one failed), so whether
         * Start may be sent again is not known: the job used to go in doubt
         * here even on a server with idempotent Start (found by the fault
         * matrix). Decided once a heartbeat answers, as for a job taken over
         * from a holder that may have sent Start (JEV_DUE in JOB_START);
         * until then it neither ends 23 nor goes in doubt. */
        m->maybe_started = true;
        out->note = JN_RETRY_UNSURE;
        out->delay_ms = m->retry_ms;
        transition(m, JEV_START_FAILED, JG_RETRY, out);
        return;
    }
    if (maybe_delivered && !v->idempotent) {
        out->note = JN_DOUBT_START_FAILED;
        transition(m, JEV_START_FAILED, JG_DOUBT, out);
        return;
    }
    if (maybe_delivered)
        m->maybe_started = true;
    if (m->start_tries >= lim->start_attempts && m->maybe_started) {
        /* An idempotent server may be running the job under its taskId
         * (a Start that may have arrived, here or at an earlier holder):
         * ending it 23 would leave that request unfollowed and a kill
         * unable to reach it, and a rerun would start it twice. An
         * operator decides, as on a server without idempotent Start (found
         * by the protocol model, tests/model: FINDING_23). */
        out->note = JN_DOUBT_RETRIES_OUT;
        transition(m, JEV_START_FAILED, JG_DOUBT, out);
        return;
    }
    if (m->start_tries >= lim->start_attempts) {
        m->final_code = AMT_WEB_SERVER_ERROR;
        m->never_left = true;
        out->note = JN_UNREACHABLE;
        transition(m, JEV_START_FAILED, JG_FINAL, out);
        return;
    }
    out->note = JN_RETRY;
    out->delay_ms = m->retry_ms;
    transition(m, JEV_START_FAILED, JG_RETRY, out);
    int64_t next = (int64_t)((double)m->retry_ms * lim->start_backoff);
    m->retry_ms = next > lim->start_max_delay_ms ? lim->start_max_delay_ms : next;
}

void job_monitor_state(struct job_machine *m, const struct job_limits *lim, int code,
                       long message_count, size_t kept, bool truncated, struct job_out *out)
{
    out_init(out);
    if (m->phase != JOB_FOLLOW) {
        refuse(m, JEV_MONITOR_STATE, out);
        return;
    }
    m->count_known = message_count >= 0;
    if (message_count > m->message_count)
        m->message_count = message_count;
    m->unknown = 0;
    if (m->failures) {
        out->note = JN_FOLLOW_RESUMED;
        out->failures = m->failures;
        m->failures = 0;
        m->interval_ms = lim->poll_interval_ms;
    }
    bool final = amt_code_is_final(code);
    if (code != m->last_code) {
        out->state_changed = true;
        m->last_code = code;
        if (!final)
            out->actions |= JA_WRITE_PROGRESS;
    }
    if (final) {
        /* Messages read while it ran are kept: reading goes on after them.
         * Nothing (more) to read: a zero-length job costs no GetMessages call. */
        m->final_code = code;
        bool nothing = truncated || (m->count_known && m->message_count <= (long)kept);
        transition(m, JEV_MONITOR_STATE, nothing ? JG_DONE : JG_FINAL, out);
        return;
    }
    int64_t next = (int64_t)((double)m->interval_ms * lim->poll_backoff);
    m->interval_ms = next > lim->poll_max_interval_ms ? lim->poll_max_interval_ms : next;
    if (m->interval_ms < 1)
        m->interval_ms = 1;
    out->delay_ms = m->interval_ms;
    /* New messages while it runs are read now; the next check follows. */
    transition(m, JEV_MONITOR_STATE,
               m->message_count > (long)kept && !truncated ? JG_MORE : JG_RUNNING, out);
}

void job_monitor_failed(struct job_machine *m, const struct job_limits *lim, bool unknown,
                        struct job_out *out)
{
    out_init(out);
    if (m->phase != JOB_FOLLOW) {
        refuse(m, JEV_MONITOR_FAILED, out);
        return;
    }
    /* Only a request the server no longer knows, several times in a row,
     * ends the job; anything else is followed on. */
    if (unknown && ++m->unknown >= JOB_UNKNOWN_LIMIT) {
        m->final_code = AMT_UNDEFINED;
        out->note = JN_UNDEFINED;
        transition(m, JEV_MONITOR_FAILED, JG_FINAL, out);
        return;
    }
    /* Back off while the server is in trouble; said on the first failure
     * and then every tenth, not on every check. */
    m->failures++;
    out->failures = m->failures;
    out->note = m->failures == 1 || m->failures % 10 == 0 ? JN_FOLLOW_RETRY
                                                          : JN_FOLLOW_RETRY_QUIET;
    int64_t next = m->interval_ms * 2;
    m->interval_ms = next > lim->poll_max_interval_ms ? lim->poll_max_interval_ms : next;
    out->delay_ms = m->interval_ms;
    transition(m, JEV_MONITOR_FAILED, JG_RETRY, out);
}

void job_messages_read(struct job_machine *m, bool more, struct job_out *out)
{
    out_init(out);
    if (m->phase != JOB_FOLLOW && m->phase != JOB_MESSAGES) {
        refuse(m, JEV_MESSAGES_READ, out);
        return;
    }
    out->delay_ms = m->interval_ms; /* running: the next check */
    transition(m, JEV_MESSAGES_READ, more ? JG_MORE : JG_DONE, out);
}

void job_messages_failed(struct job_machine *m, const struct job_limits *lim, bool transient,
                         struct job_out *out)
{
    out_init(out);
    if (m->phase == JOB_FOLLOW) {
        out->delay_ms = m->interval_ms; /* the final read gets them */
        transition(m, JEV_MESSAGES_FAILED, JG_RETRY, out);
        return;
    }
    if (m->phase != JOB_MESSAGES) {
        refuse(m, JEV_MESSAGES_FAILED, out);
        return;
    }
    if (transient) {
        out->note = JN_MESSAGES_RETRY;
        out->delay_ms = lim->poll_interval_ms;
        transition(m, JEV_MESSAGES_FAILED, JG_RETRY, out);
        return;
    }
    out->note = JN_MESSAGES_LOST;
    transition(m, JEV_MESSAGES_FAILED, JG_FINAL, out);
}

void job_write_done(struct job_machine *m, const struct job_limits *lim, bool held,
                    struct job_out *out)
{
    out_init(out);
    if (!held) {
        transition(m, JEV_WRITE_DONE, JG_NOT_HELD, out);
        return;
    }
    if (m->phase == JOB_START_WRITE) {
        m->interval_ms = lim->poll_interval_ms;
        out->delay_ms = lim->poll_initial_delay_ms;
        transition(m, JEV_WRITE_DONE, m->kill_wanted ? JG_HELD_KILL : JG_HELD, out);
        return;
    }
    transition(m, JEV_WRITE_DONE, JG_HELD, out);
}

void job_write_failed(struct job_machine *m, struct job_out *out)
{
    out_init(out);
    out->delay_ms = JOB_RETRY_MS;
    transition(m, JEV_WRITE_FAILED, JG_RETRY, out);
}

void job_kill_requested(struct job_machine *m, const struct job_limits *lim, struct job_out *out)
{
    out_init(out);
    if (m->phase == JOB_NEW || m->phase == JOB_DROPPED) {
        refuse(m, JEV_KILL_REQUESTED, out);
        return;
    }
    m->kill_seen = true;
    enum job_guard g;
    if (!lim->allow_kill) {
        g = JG_REFUSED;
    } else if (m->phase == JOB_START && !m->busy && !m->brid && !m->maybe_started &&
               !m->start_tries) {
        /* Start was never sent (not by us, not by an earlier holder): the
         * job ends without ever starting. Otherwise Start is (re)sent
         * first, which is idempotent, and the Kill follows its
         * BatchRequestId. */
        m->final_code = AMT_KILLED;
        out->note = JN_KILLED_QUEUED;
        g = JG_NEVER_SENT;
    } else if (m->phase >= JOB_MESSAGES || m->kill_busy) {
        g = JG_IGNORED; /* it has ended already, or a Kill is on its way */
    } else if (!m->brid) {
        m->kill_wanted = true; /* sent as soon as Start has answered */
        g = JG_LATER;
    } else {
        g = JG_SEND;
    }
    transition(m, JEV_KILL_REQUESTED, g, out);
}

void job_lease_lost(struct job_machine *m, struct job_out *out)
{
    out_init(out);
    if (m->phase == JOB_NEW || m->phase == JOB_DROPPED) {
        refuse(m, JEV_LEASE_LOST, out);
        return;
    }
    m->lost = true;
    transition(m, JEV_LEASE_LOST, m->busy ? JG_BUSY : JG_IDLE, out);
}

void job_comm_changed(struct job_machine *m, bool parked, struct job_out *out)
{
    out_init(out);
    out->delay_ms = 0;
    transition(m, JEV_COMM_CHANGED, parked && !m->busy ? JG_PARKED : JG_ACTIVE, out);
}

bool job_settle(struct job_machine *m)
{
    m->busy = false;
    return !m->lost;
}

void job_kill_deferred(struct job_machine *m) { m->kill_wanted = true; }

void job_kill_sending(struct job_machine *m)
{
    m->kill_wanted = false;
    m->kill_busy = true;
}

void job_kill_returned(struct job_machine *m) { m->kill_busy = false; }

void job_kill_failed(struct job_machine *m, int64_t now_ms)
{
    m->kill_wanted = true;
    m->kill_retry_at = now_ms + JOB_KILL_RETRY_MS;
}

bool job_phase_writes(enum job_phase p)
{
    return p == JOB_START_WRITE || p == JOB_FINISH_WRITE || p == JOB_DOUBT_WRITE;
}

bool job_may_act(const struct job_machine *m, enum job_comm comm, bool stopping)
{
    if (job_phase_writes(m->phase))
        return true; /* a write in hand is completed, whatever comm says */
    if (stopping)
        return false; /* draining: only writes in hand are completed */
    switch (comm) {
    case JOB_COMM_ENABLED:
        return true;
    case JOB_COMM_LIMITED:
        return m->phase != JOB_START;
    default:
        return false;
    }
}

char *job_table_mermaid(void)
{
    struct buf b;
    buf_init(&b, 0);
    enum buf_rc rc = buf_puts(&b, "stateDiagram-v2\n    [*] --> new\n");
    for (size_t i = 0; !rc && i < job_table_len; i++) {
        const struct job_transition *t = &job_table[i];
        if (t->from == t->to && !t->actions)
            continue; /* a rule that only notes something (a kill for later, ...) */
        char acts[160];
        job_actions_str(t->actions, acts, sizeof acts);
        rc = buf_printf(&b, "    %s --> %s: %s", job_phase_name(t->from), job_phase_name(t->to),
                        job_event_name(t->event));
        if (!rc && t->guard != JG_ANY)
            rc = buf_printf(&b, " [%s]", job_guard_name(t->guard));
        if (!rc && *acts)
            rc = buf_printf(&b, " / %s", acts);
        if (!rc)
            rc = buf_putc(&b, '\n');
    }
    if (!rc)
        rc = buf_puts(&b, "    dropped --> [*]\n");
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}
