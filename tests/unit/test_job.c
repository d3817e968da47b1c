/* Unit tests of job: the job machine.
 *
 * The heart is a matrix written here by hand, independent of job_table: for
 * every phase x event pair, the guards (rules) that may decide it, none for
 * an impossible pair. The test checks that job_table has exactly those rows,
 * and then drives every pair through thousands of machine states and inputs:
 * every outcome must be a row of the table (its next phase and its actions),
 * every row must be reached, and an impossible pair must be refused and leave
 * the machine as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/codes.h"
#include "amtacs/job.h"

#define G(x) (1u << (x))
#define LEASE_GUARDS (G(JG_BUSY) | G(JG_IDLE))
#define COMM_GUARDS (G(JG_PARKED) | G(JG_ACTIVE))

/* phase x event -> the guards allowed (0: the pair is impossible). */
static const unsigned expected[JOB_NPHASES][JOB_NEVENTS] = {
    [JOB_NEW] = {[JEV_CLAIMED] = G(JG_QUEUED) | G(JG_RUNNING)},
    [JOB_START] =
        {
            [JEV_DUE] = G(JG_SEND) | G(JG_WAIT) | G(JG_DOUBT),
            [JEV_START_ANSWERED] = G(JG_ANY),
            [JEV_START_FAILED] = G(JG_RETRY) | G(JG_DOUBT) | G(JG_FINAL),
            [JEV_KILL_REQUESTED] = G(JG_REFUSED) | G(JG_NEVER_SENT) | G(JG_LATER) | G(JG_SEND) |
                                   G(JG_IGNORED),
            [JEV_LEASE_LOST] = LEASE_GUARDS,
            [JEV_COMM_CHANGED] = COMM_GUARDS,
        },
    [JOB_START_WRITE] =
        {
            [JEV_DUE] = G(JG_ANY),
            [JEV_WRITE_DONE] = G(JG_HELD) | G(JG_HELD_KILL) | G(JG_NOT_HELD),
            [JEV_WRITE_FAILED] = G(JG_RETRY),
            [JEV_KILL_REQUESTED] = G(JG_REFUSED) | G(JG_LATER) | G(JG_SEND) | G(JG_IGNORED),
            [JEV_LEASE_LOST] = LEASE_GUARDS,
            [JEV_COMM_CHANGED] = COMM_GUARDS,
        },
    [JOB_FOLLOW] =
        {
            [JEV_DUE] = G(JG_ANY) | G(JG_SEND),
            [JEV_MONITOR_STATE] = G(JG_RUNNING) | G(JG_MORE) | G(JG_FINAL) | G(JG_DONE),
            [JEV_MONITOR_FAILED] = G(JG_RETRY) | G(JG_FINAL),
            [JEV_MESSAGES_READ] = G(JG_MORE) | G(JG_DONE),
            [JEV_MESSAGES_FAILED] = G(JG_RETRY),
            [JEV_KILL_REQUESTED] = G(JG_REFUSED) | G(JG_LATER) | G(JG_SEND) | G(JG_IGNORED),
            [JEV_LEASE_LOST] = LEASE_GUARDS,
            [JEV_COMM_CHANGED] = COMM_GUARDS,
        },
    [JOB_MESSAGES] =
        {
            [JEV_DUE] = G(JG_ANY),
            [JEV_MESSAGES_READ] = G(JG_MORE) | G(JG_DONE),
            [JEV_MESSAGES_FAILED] = G(JG_RETRY) | G(JG_FINAL),
            [JEV_KILL_REQUESTED] = G(JG_REFUSED) | G(JG_IGNORED),
            [JEV_LEASE_LOST] = LEASE_GUARDS,
            [JEV_COMM_CHANGED] = COMM_GUARDS,
        },
    [JOB_FINISH_WRITE] =
        {
            [JEV_DUE] = G(JG_ANY),
            [JEV_WRITE_DONE] = G(JG_HELD) | G(JG_NOT_HELD),
            [JEV_WRITE_FAILED] = G(JG_RETRY),
            [JEV_KILL_REQUESTED] = G(JG_REFUSED) | G(JG_IGNORED),
            [JEV_LEASE_LOST] = LEASE_GUARDS,
            [JEV_COMM_CHANGED] = COMM_GUARDS,
        },
    [JOB_DOUBT_WRITE] =
        {
            [JEV_DUE] = G(JG_ANY),
            [JEV_WRITE_DONE] = G(JG_HELD) | G(JG_NOT_HELD),
            [JEV_WRITE_FAILED] = G(JG_RETRY),
            [JEV_KILL_REQUESTED] = G(JG_REFUSED) | G(JG_IGNORED),
            [JEV_LEASE_LOST] = LEASE_GUARDS,
            [JEV_COMM_CHANGED] = COMM_GUARDS,
        },
    [JOB_DROPPED] = {0},
};

static const struct job_limits lim_default = {
    .start_attempts = 3, .start_backoff = 2.0, .start_delay_ms = 100,
    .start_max_delay_ms = 300, .poll_interval_ms = 1000, .poll_initial_delay_ms = 500,
    .poll_max_interval_ms = 4000, .poll_backoff = 1.5, .allow_kill = true,
};

/* The variants: each bit of v sets one part of the machine or of the input. */
enum {
    V_BUSY = 1 << 0,
    V_BRID = 1 << 1,
    V_MAYBE = 1 << 2,     /* maybe_started (and sent_before) */
    V_KILL_BUSY = 1 << 3,
    V_KILL_WANTED = 1 << 4,
    V_NO_KILL = 1 << 5,   /* allow_kill false */
    V_A = 1 << 6,         /* the event's first flag (see fire) */
    V_B = 1 << 7,
    V_C = 1 << 8,
    V_D = 1 << 9,         /* counters one short of their limit */
    V_E = 1 << 10,
    V_CLASS = 3 << 11,    /* the Start failure's class */
    V_ALL = 1 << 13,
};

static void setup(struct job_machine *m, enum job_phase p, unsigned v)
{
    job_init(m);
    m->phase = p;
    m->busy = v & V_BUSY;
    m->brid = v & V_BRID ? 42 : 0;
    m->maybe_started = m->sent_before = v & V_MAYBE;
    m->kill_busy = v & V_KILL_BUSY;
    m->kill_wanted = v & V_KILL_WANTED;
    m->retry_ms = 100;
    m->interval_ms = 1000;
    if (v & V_D) {
        m->start_tries = lim_default.start_attempts - 1;
        m->unknown = JOB_UNKNOWN_LIMIT - 1;
        m->failures = 4;
    }
}

static void fire(struct job_machine *m, enum job_event ev, unsigned v, struct job_out *out)
{
    struct job_limits lim = lim_default;
    lim.allow_kill = !(v & V_NO_KILL);
    struct job_view view = {
        .lease_holds = v & V_A, .features_known = v & V_B, .idempotent = v & V_C,
        .heartbeat_failed = v & V_D, .password_loaded = v & V_E, .now_ms = 5000,
    };
    bool a = v & V_A, b = v & V_B, c = v & V_C;
    switch (ev) {
    case JEV_CLAIMED:
        job_claimed(m, &lim, a, v & V_MAYBE, v & V_MAYBE, v & V_BRID ? 42 : 0, out);
        break;
    case JEV_DUE:
        job_due(m, &view, out);
        break;
    case JEV_START_ANSWERED:
        job_start_answered(m, 42, out);
        break;
    case JEV_START_FAILED:
        job_start_failed(m, &lim, &view, (enum job_start_failure)((v & V_CLASS) >> 11), a, out);
        break;
    case JEV_MONITOR_STATE:
        /* B: a final code; C: the server says there is nothing to read */
        job_monitor_state(m, &lim, b ? AMT_DONE : AMT_RUNNING, c ? 0 : 5, 0, a, out);
        break;
    case JEV_MONITOR_FAILED:
        job_monitor_failed(m, &lim, a, out);
        break;
    case JEV_MESSAGES_READ:
        job_messages_read(m, a, out);
        break;
    case JEV_MESSAGES_FAILED:
        job_messages_failed(m, &lim, a, out);
        break;
    case JEV_WRITE_DONE:
        job_write_done(m, &lim, a, out);
        break;
    case JEV_WRITE_FAILED:
        job_write_failed(m, out);
        break;
    case JEV_KILL_REQUESTED:
        job_kill_requested(m, &lim, out);
        break;
    case JEV_LEASE_LOST:
        job_lease_lost(m, out);
        break;
    case JEV_COMM_CHANGED:
        job_comm_changed(m, a, out);
        break;
    default:
        fail_msg("event %d has no driver", ev);
    }
}

static unsigned table_guards(enum job_phase p, enum job_event ev)
{
    unsigned g = 0;
    for (size_t i = 0; i < job_table_len; i++)
        if (job_table[i].from == p && job_table[i].event == ev)
            g |= G(job_table[i].guard);
    return g;
}

/* The table holds exactly the rows of the matrix, once each, and its rows
 * are consistent: dropping goes to JOB_DROPPED and only dropping does. */
static void table_matches_matrix(void **state)
{
    (void)state;
    for (size_t i = 0; i < job_table_len; i++) {
        const struct job_transition *t = &job_table[i];
        assert_true((unsigned)t->from < JOB_NPHASES && (unsigned)t->to < JOB_NPHASES);
        assert_true((unsigned)t->event < JOB_NEVENTS && (unsigned)t->guard < JOB_NGUARDS);
        assert_ptr_equal(job_table_find(t->from, t->event, t->guard), t); /* no duplicate */
        assert_int_equal(!!(t->actions & JA_DROP), t->to == JOB_DROPPED);
        assert_false(t->actions & JA_WRITE_PROGRESS); /* a side note, never a rule */
        assert_int_not_equal(t->from, JOB_DROPPED);
    }
    for (int p = 0; p < JOB_NPHASES; p++)
        for (int ev = 0; ev < JOB_NEVENTS; ev++) {
            if (table_guards(p, ev) != expected[p][ev])
                fail_msg("%s x %s: the table has guards %#x, the matrix %#x",
                         job_phase_name(p), job_event_name(ev), table_guards(p, ev),
                         expected[p][ev]);
        }
}

/* Every phase x event pair under every variant. */
static void every_pair(void **state)
{
    (void)state;
    static bool row_reached[256];
    assert_true(job_table_len <= sizeof row_reached / sizeof row_reached[0]);
    for (int p = 0; p < JOB_NPHASES; p++)
        for (int ev = 0; ev < JOB_NEVENTS; ev++) {
            unsigned reached = 0, refused = 0;
            for (unsigned v = 0; v < V_ALL; v++) {
                struct job_machine m, before;
                struct job_out out;
                setup(&m, p, v);
                memcpy(&before, &m, sizeof m);
                fire(&m, ev, v, &out);
                assert_int_equal(out.from, p);
                assert_int_equal(out.event, ev);
                if (out.refused) {
                    refused++;
                    /* refused: nothing changed, and only where no rule applies
                     * (a due step with I/O in flight never reaches the machine) */
                    assert_memory_equal(&m, &before, sizeof m);
                    assert_int_equal(out.actions, 0);
                    if (expected[p][ev] && !(ev == JEV_DUE && before.busy))
                        fail_msg("%s x %s refused under variant %#x", job_phase_name(p),
                                 job_event_name(ev), v);
                    continue;
                }
                const struct job_transition *t = job_table_find(p, ev, out.guard);
                if (!t)
                    fail_msg("%s x %s chose guard %s, which has no row", job_phase_name(p),
                             job_event_name(ev), job_guard_name(out.guard));
                reached |= G(out.guard);
                row_reached[t - job_table] = true;
                assert_int_equal(m.phase, t->to);
                assert_int_equal(out.actions & ~(unsigned)JA_WRITE_PROGRESS, t->actions);
                /* an action that starts I/O makes the job busy */
                if (t->actions & JA_IO)
                    assert_true(m.busy);
                else
                    assert_int_equal(m.busy, before.busy);
            }
            if (!expected[p][ev])
                assert_int_equal(refused, V_ALL); /* impossible: refused every time */
            if (reached != expected[p][ev])
                fail_msg("%s x %s reached guards %#x, expected %#x", job_phase_name(p),
                         job_event_name(ev), reached, expected[p][ev]);
        }
    for (size_t i = 0; i < job_table_len; i++)
        if (!row_reached[i])
            fail_msg("row %zu (%s x %s / %s) is never reached", i,
                     job_phase_name(job_table[i].from), job_event_name(job_table[i].event),
                     job_guard_name(job_table[i].guard));
}

static void claim(struct job_machine *m, bool running)
{
    struct job_out out;
    job_init(m);
    job_claimed(m, &lim_default, running, false, false, running ? 7 : 0, &out);
    assert_false(out.refused);
    assert_int_equal(out.actions, JA_AT);
    assert_int_equal(out.delay_ms, 0);
}

static const struct job_view ready = {
    .lease_holds = true, .features_known = true, .idempotent = true, .password_loaded = true,
    .now_ms = 1000,
};

/* Start failing before it was sent: retried with a growing, capped delay,
 * then WEB_SERVER_ERROR (23) once start_retry.attempts are used. */
static void start_retries_then_23(void **state)
{
    (void)state;
    struct job_machine m;
    struct job_out out;
    claim(&m, false);
    int64_t delays[] = {100, 200};
    for (int i = 0; i < 2; i++) {
        job_due(&m, &ready, &out);
        assert_int_equal(out.actions, JA_SEND_START);
        assert_true(job_settle(&m));
        job_start_failed(&m, &lim_default, &ready, JOB_START_TRANSIENT, false, &out);
        assert_int_equal(out.guard, JG_RETRY);
        assert_int_equal(out.note, JN_RETRY);
        assert_int_equal(out.delay_ms, delays[i]);
        assert_int_equal(m.phase, JOB_START);
    }
    assert_int_equal(m.retry_ms, 300); /* capped at start_max_delay_ms */
    job_due(&m, &ready, &out);
    job_settle(&m);
    job_start_failed(&m, &lim_default, &ready, JOB_START_TRANSIENT, false, &out);
    assert_int_equal(out.guard, JG_FINAL);
    assert_int_equal(out.note, JN_UNREACHABLE);
    assert_int_equal(m.final_code, AMT_WEB_SERVER_ERROR);
    assert_true(m.never_left); /* may go to its next listed connection */
    assert_int_equal(m.phase, JOB_FINISH_WRITE);
    assert_int_equal(out.actions, JA_WRITE_FINISH);
}

/* A Start that may have been delivered: in doubt on a server without
 * idempotent Start; before any heartbeat answered, neither in doubt nor
 * ended, and then in doubt once the heartbeat says it is not idempotent. */
static void maybe_delivered_start(void **state)
{
    (void)state;
    struct job_machine m;
    struct job_out out;
    struct job_view plain = ready;
    plain.idempotent = false;
    claim(&m, false);
    job_due(&m, &plain, &out);
    job_settle(&m);
    job_start_failed(&m, &lim_default, &plain, JOB_START_TRANSIENT, true, &out);
    assert_int_equal(out.guard, JG_DOUBT);
    assert_int_equal(m.phase, JOB_DOUBT_WRITE);

    struct job_view unknown = {.lease_holds = true, .heartbeat_failed = true,
                               .password_loaded = true};
    claim(&m, false);
    job_due(&m, &unknown, &out);
    assert_int_equal(out.guard, JG_SEND);
    job_settle(&m);
    job_start_failed(&m, &lim_default, &unknown, JOB_START_TRANSIENT, true, &out);
    assert_int_equal(out.guard, JG_RETRY);
    assert_int_equal(out.note, JN_RETRY_UNSURE);
    assert_true(m.maybe_started);
    job_due(&m, &unknown, &out);
    assert_int_equal(out.guard, JG_WAIT);
    assert_int_equal(out.note, JN_WAIT_IDEMPOTENCE);
    job_due(&m, &plain, &out);
    assert_int_equal(out.guard, JG_DOUBT);
    assert_int_equal(out.note, JN_DOUBT_EARLIER_HOLDER);
}

/* On an idempotent server a Start that may have arrived is sent again, and
 * when start_retry.attempts are used up the job goes in doubt, not 23: the
 * server may be running it under its taskId (found by the protocol model,
 * tests/model, BUG_23_AFTER_MAYBE). One such try among failures that never
 * left is enough. */
static void maybe_delivered_then_retries_out(void **state)
{
    (void)state;
    struct job_machine m;
    struct job_out out;
    claim(&m, false);
    for (int i = 0; i < 2; i++) {
        job_due(&m, &ready, &out);
        assert_int_equal(out.guard, JG_SEND);
        job_settle(&m);
        job_start_failed(&m, &lim_default, &ready, JOB_START_TRANSIENT, i == 0, &out);
        assert_int_equal(out.guard, JG_RETRY);
        assert_int_equal(m.phase, JOB_START);
    }
    assert_true(m.maybe_started);
    job_due(&m, &ready, &out);
    assert_int_equal(out.guard, JG_SEND); /* idempotent: sent again */
    job_settle(&m);
    job_start_failed(&m, &lim_default, &ready, JOB_START_TRANSIENT, false, &out);
    assert_int_equal(out.guard, JG_DOUBT);
    assert_int_equal(out.note, JN_DOUBT_RETRIES_OUT);
    assert_int_equal(m.phase, JOB_DOUBT_WRITE);
    assert_int_equal(out.actions, JA_WRITE_DOUBT);
    assert_false(m.never_left); /* never given to another connection */
    assert_int_not_equal(m.final_code, AMT_WEB_SERVER_ERROR);
}

/* A job followed to its end: states, messages, the finish, the drop. */
static void follow_to_the_end(void **state)
{
    (void)state;
    struct job_machine m;
    struct job_out out;
    claim(&m, false);
    job_due(&m, &ready, &out);
    job_settle(&m);
    job_start_answered(&m, 9, &out);
    assert_int_equal(out.actions, JA_WRITE_STARTED);
    job_settle(&m);
    job_write_done(&m, &lim_default, true, &out);
    assert_int_equal(m.phase, JOB_FOLLOW);
    assert_int_equal(out.actions, JA_MONITOR_AT);
    assert_int_equal(out.delay_ms, 500); /* poll.initial_delay */
    job_due(&m, &ready, &out);
    assert_int_equal(out.actions, JA_MONITOR);
    job_settle(&m);
    job_monitor_state(&m, &lim_default, AMT_RUNNING, 0, 0, false, &out);
    assert_int_equal(out.actions, JA_MONITOR_AT | JA_WRITE_PROGRESS);
    assert_int_equal(out.delay_ms, 1500); /* backoff 1.5 */
    assert_true(out.state_changed);
    job_due(&m, &ready, &out);
    job_settle(&m);
    job_monitor_state(&m, &lim_default, AMT_RUNNING, 2, 0, false, &out);
    assert_int_equal(out.actions, JA_READ_MESSAGES); /* no new state: nothing to record */
    job_settle(&m);
    job_messages_read(&m, false, &out);
    assert_int_equal(out.actions, JA_AT);
    job_due(&m, &ready, &out);
    job_settle(&m);
    job_monitor_state(&m, &lim_default, AMT_DONE, 3, 2, false, &out);
    assert_int_equal(m.phase, JOB_MESSAGES);
    assert_int_equal(m.final_code, AMT_DONE);
    job_settle(&m);
    job_messages_read(&m, false, &out);
    assert_int_equal(m.phase, JOB_FINISH_WRITE);
    assert_int_equal(out.actions, JA_WRITE_FINISH);
    job_settle(&m);
    job_write_failed(&m, &out);
    assert_int_equal(out.actions, JA_AT);
    assert_int_equal(out.delay_ms, JOB_RETRY_MS);
    job_due(&m, &ready, &out);
    assert_int_equal(out.actions, JA_WRITE_FINISH);
    job_settle(&m);
    job_write_done(&m, &lim_default, true, &out);
    assert_int_equal(m.phase, JOB_DROPPED);
    assert_int_equal(out.actions, JA_DROP);
    /* nothing happens to a dropped job */
    job_kill_requested(&m, &lim_default, &out);
    assert_true(out.refused);
    job_monitor_state(&m, &lim_default, AMT_DONE, 0, 0, false, &out);
    assert_true(out.refused);
}

/* Three "unknown" answers in a row end the job UNDEFINED; a state between
 * them starts the count again. */
static void unknown_three_times(void **state)
{
    (void)state;
    struct job_machine m;
    struct job_out out;
    claim(&m, true);
    job_monitor_failed(&m, &lim_default, true, &out);
    job_monitor_failed(&m, &lim_default, true, &out);
    assert_int_equal(out.guard, JG_RETRY);
    job_monitor_state(&m, &lim_default, AMT_RUNNING, -1, 0, false, &out);
    assert_int_equal(out.note, JN_FOLLOW_RESUMED);
    assert_int_equal(out.failures, 2);
    for (int i = 0; i < 2; i++) {
        job_monitor_failed(&m, &lim_default, true, &out);
        assert_int_equal(out.guard, JG_RETRY);
    }
    job_monitor_failed(&m, &lim_default, true, &out);
    assert_int_equal(out.guard, JG_FINAL);
    assert_int_equal(m.final_code, AMT_UNDEFINED);
    assert_int_equal(m.phase, JOB_FINISH_WRITE);
}

/* A kill before Start was ever sent ends the job KILLED without a Start; one
 * while Start is out waits for the BatchRequestId and goes with the write. */
static void kill_before_and_during_start(void **state)
{
    (void)state;
    struct job_machine m;
    struct job_out out;
    claim(&m, false);
    job_kill_requested(&m, &lim_default, &out);
    assert_int_equal(out.guard, JG_NEVER_SENT);
    assert_int_equal(m.final_code, AMT_KILLED);
    assert_int_equal(m.phase, JOB_FINISH_WRITE);

    claim(&m, false);
    job_due(&m, &ready, &out);
    job_kill_requested(&m, &lim_default, &out);
    assert_int_equal(out.guard, JG_LATER);
    assert_true(m.kill_wanted && m.kill_seen);
    job_settle(&m);
    job_start_answered(&m, 5, &out);
    job_settle(&m);
    job_write_done(&m, &lim_default, true, &out);
    assert_int_equal(out.guard, JG_HELD_KILL);
    assert_int_equal(out.actions, JA_SEND_KILL | JA_MONITOR_AT);
    job_kill_sending(&m);
    job_kill_requested(&m, &lim_default, &out);
    assert_int_equal(out.guard, JG_IGNORED); /* a Kill is on its way */
    job_kill_returned(&m);
    job_kill_failed(&m, 1000);
    struct job_view early = ready, later = ready;
    early.now_ms = 1500;
    later.now_ms = 1000 + JOB_KILL_RETRY_MS;
    job_due(&m, &early, &out);
    assert_int_equal(out.actions, JA_MONITOR); /* not yet */
    job_settle(&m);
    job_monitor_state(&m, &lim_default, AMT_RUNNING, 0, 0, false, &out);
    job_due(&m, &later, &out);
    assert_int_equal(out.actions, JA_MONITOR | JA_SEND_KILL);
}

/* The lease lost with I/O in flight: kept until the I/O is back, then dropped. */
static void lease_lost_while_busy(void **state)
{
    (void)state;
    struct job_machine m;
    struct job_out out;
    claim(&m, true);
    job_due(&m, &ready, &out);
    job_lease_lost(&m, &out);
    assert_int_equal(out.guard, JG_BUSY);
    assert_int_equal(m.phase, JOB_FOLLOW);
    assert_false(job_settle(&m)); /* no longer ours */
    job_lease_lost(&m, &out);
    assert_int_equal(out.guard, JG_IDLE);
    assert_int_equal(out.actions, JA_DROP);
}

/* Which steps Full Comm and a stopping daemon let run. */
static void may_act(void **state)
{
    (void)state;
    struct job_machine m;
    job_init(&m);
    for (int p = JOB_START; p < JOB_DROPPED; p++) {
        m.phase = p;
        bool writes = job_phase_writes(p);
        assert_int_equal(writes, p == JOB_START_WRITE || p == JOB_FINISH_WRITE ||
                                     p == JOB_DOUBT_WRITE);
        assert_int_equal(job_may_act(&m, JOB_COMM_ENABLED, false), true);
        assert_int_equal(job_may_act(&m, JOB_COMM_LIMITED, false), p != JOB_START);
        assert_int_equal(job_may_act(&m, JOB_COMM_DISABLED, false), writes);
        assert_int_equal(job_may_act(&m, JOB_COMM_UNKNOWN, false), writes);
        assert_int_equal(job_may_act(&m, JOB_COMM_ENABLED, true), writes);
    }
}

static void names(void **state)
{
    (void)state;
    for (int p = 0; p < JOB_NPHASES; p++)
        assert_string_not_equal(job_phase_name(p), "?");
    for (int ev = 0; ev < JOB_NEVENTS; ev++)
        assert_string_not_equal(job_event_name(ev), "?");
    for (int g = 0; g < JOB_NGUARDS; g++)
        assert_string_not_equal(job_guard_name(g), "?");
    assert_string_equal(job_phase_name(JOB_NPHASES), "?");
    char s[128];
    job_actions_str(JA_SEND_KILL | JA_MONITOR_AT, s, sizeof s);
    assert_string_equal(s, "send_kill|monitor_at");
    job_actions_str(0, s, sizeof s);
    assert_string_equal(s, "");
}

/* The diagram in docs/architecture.md is the table's (job_table_mermaid):
 * regenerate it with `test_job --mermaid` when the table changes. */
static void diagram_in_docs(void **state)
{
    (void)state;
    FILE *f = fopen(AMTACS_SOURCE_DIR "/docs/architecture.md", "rb");
    assert_non_null(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    const char *marker = strstr(doc, "<!-- generated from job_table");
    assert_non_null(marker);
    const char *start = strstr(marker, "```mermaid\n");
    assert_non_null(start);
    start += strlen("```mermaid\n");
    const char *end = strstr(start, "```");
    assert_non_null(end);
    char *want = job_table_mermaid();
    assert_non_null(want);
    if (strlen(want) != (size_t)(end - start) || memcmp(want, start, strlen(want)))
        fail_msg("docs/architecture.md's diagram is not job_table's; regenerate it with "
                 "test_job --mermaid");
    free(want);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--mermaid")) {
        char *d = job_table_mermaid();
        if (!d)
            return 1;
        fputs(d, stdout);
        free(d);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_matches_matrix),
        cmocka_unit_test(every_pair),
        cmocka_unit_test(start_retries_then_23),
        cmocka_unit_test(maybe_delivered_start),
        cmocka_unit_test(maybe_delivered_then_retries_out),
        cmocka_unit_test(follow_to_the_end),
        cmocka_unit_test(unknown_three_times),
        cmocka_unit_test(kill_before_and_during_start),
        cmocka_unit_test(lease_lost_while_busy),
        cmocka_unit_test(may_act),
        cmocka_unit_test(names),
        cmocka_unit_test(diagram_in_docs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
