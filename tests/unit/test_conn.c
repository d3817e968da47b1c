/* Unit tests of conn: one connection's rules, without a server or a database.
 *
 * Covered: the room a claim may ask for under max_in_flight; the settings and
 * the view the job rules read; Full Comm transitions (every value, and what a
 * change makes due); the features a heartbeat answer sets, and what a failed
 * one does before and after the first answer; when a heartbeat is due; a
 * replaced client making the features unknown again; the reading of a
 * MonitorJobs answer (found, unknown, not listed, nothing at all, refused,
 * cancelled); the gathering of checks into calls of at most 1,000, each job
 * answered exactly once.
 *
 * Not covered here (they need the database or a server; the integration
 * tests reach them): the password's load and its coalescing (on_secret), the
 * Full Comm read's coalescing, the status written after a heartbeat, the
 * heartbeat call itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/conn.h"
#include "amtacs/timeutil.h"

#define NJOBS 2500

/* What the hooks saw. */
struct seen {
    int comm_changed;
    int checked[NJOBS];
    int not_sent[NJOBS];
    struct conn_check last[NJOBS]; /* found points into the answer: only NULL or not */
    struct amt_job found[NJOBS];   /* a copy of the entry found, taken in the hook */
    enum amt_status status[NJOBS];
};

static struct seen seen;
static int jobs[NJOBS]; /* the hooks' job pointers point here */

static bool never_down(void *ud)
{
    (void)ud;
    return false;
}

static void on_comm_changed(void *ud)
{
    (void)ud;
    seen.comm_changed++;
}

static void on_checked(void *job, const struct conn_check *ck)
{
    int i = (int)((int *)job - jobs);
    seen.checked[i]++;
    seen.last[i] = *ck;
    if (ck->found)
        seen.found[i] = *ck->found;
    seen.status[i] = ck->r->status;
}

static void on_not_sent(void *job)
{
    int i = (int)((int *)job - jobs);
    seen.not_sent[i]++;
}

struct fixture {
    struct amtacs_connection cfg;
    struct conn_env env;
    struct conn *c;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    memset(&seen, 0, sizeof seen);
    f->cfg = (struct amtacs_connection){
        .name = "main", .url = "http://127.0.0.1:9", .batch_user = "batch",
        .retain_log_days = 30, .allow_kill = true, .max_in_flight = 5,
        .poll = {.initial_delay_ms = 100, .interval_ms = 1000, .backoff = 1.5,
                 .max_interval_ms = 8000},
        .start_retry = {.attempts = 3, .delay_ms = 200, .backoff = 2.0, .max_delay_ms = 4000},
        .http = {.connect_timeout_ms = 1000, .timeout_ms = 2000, .max_body = 1 << 20,
                 .max_connections = 4},
        .tls = {.verify = true},
    };
    f->env = (struct conn_env){
        .multi = curl_multi_init(), .tearing_down = never_down, .comm_changed = on_comm_changed,
        .checked = on_checked, .not_sent = on_not_sent,
    };
    f->c = conn_new(&f->env, &f->cfg, NULL);
    if (!f->env.multi || !f->c)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    conn_free(f->c);
    curl_multi_cleanup(f->env.multi);
    free(f);
    return 0;
}

static void install_client(struct fixture *f)
{
    char err[256] = "";
    struct conn_client *cl = conn_client_new(f->c, &f->cfg, true, err, sizeof err);
    assert_non_null(cl);
    conn_client_install(f->c, cl, false);
}

static struct amt_reply heartbeat_ok(bool monitor_jobs, bool idempotent)
{
    struct amt_reply r = {.status = AMT_OK, .call = AMT_CALL_HEARTBEAT, .error = "",
                          .monitor_jobs = monitor_jobs, .idempotent_start = idempotent,
                          .amt_version = "9.0"};
    return r;
}

static struct amt_reply heartbeat_failed(void)
{
    struct amt_reply r = {.status = AMT_ERR_TRANSPORT, .call = AMT_CALL_HEARTBEAT,
                          .error = "connection refused"};
    return r;
}

/* ------------------------------------------------------------ in flight */

static void room_under_max_in_flight(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    assert_int_equal(conn_in_flight(c), 0);
    assert_int_equal(conn_room(c, 100), 5);
    assert_int_equal(conn_room(c, 2), 2); /* at most a claim batch */
    for (int i = 0; i < 3; i++)
        conn_job_added(c);
    assert_int_equal(conn_in_flight(c), 3);
    assert_int_equal(conn_room(c, 100), 2);
    assert_int_equal(conn_room(c, 1), 1);
    conn_job_added(c);
    conn_job_added(c);
    assert_int_equal(conn_room(c, 100), 0);
    /* A reload that lowers max_in_flight below the jobs in hand: no room, never negative. */
    f->cfg.max_in_flight = 2;
    assert_int_equal(conn_room(c, 100), 0);
    f->cfg.max_in_flight = 5;
    conn_job_removed(c);
    assert_int_equal(conn_in_flight(c), 4);
    assert_int_equal(conn_room(c, 100), 1);
    for (int i = 0; i < 10; i++)
        conn_job_removed(c); /* more than were added: the count stays at 0 */
    assert_int_equal(conn_in_flight(c), 0);
}

/* ------------------------------------------------------------ the rules' view */

static void limits_are_the_settings(void **state)
{
    struct fixture *f = *state;
    struct job_limits l = conn_limits(f->c);
    assert_int_equal(l.start_attempts, 3);
    assert_int_equal(l.start_delay_ms, 200);
    assert_int_equal(l.start_max_delay_ms, 4000);
    assert_true(l.start_backoff == 2.0);
    assert_int_equal(l.poll_interval_ms, 1000);
    assert_int_equal(l.poll_initial_delay_ms, 100);
    assert_int_equal(l.poll_max_interval_ms, 8000);
    assert_true(l.poll_backoff == 1.5);
    assert_true(l.allow_kill);
    /* A reload's settings are read from then on. */
    struct amtacs_connection next = f->cfg;
    next.allow_kill = false;
    next.start_retry.attempts = 7;
    conn_set_cfg(f->c, &next);
    l = conn_limits(f->c);
    assert_false(l.allow_kill);
    assert_int_equal(l.start_attempts, 7);
    conn_set_cfg(f->c, &f->cfg);
}

static void view_before_anything_is_known(void **state)
{
    struct fixture *f = *state;
    struct job_view v = conn_view(f->c, 12345);
    assert_true(v.lease_holds); /* the engine asks the lease itself */
    assert_false(v.features_known);
    assert_false(v.heartbeat_failed);
    assert_false(v.idempotent);
    assert_false(v.password_loaded); /* no client, no credentials */
    assert_int_equal(v.now_ms, 12345);
    assert_false(conn_start_idempotent(f->c));
    assert_false(conn_monitor_jobs(f->c));
    assert_int_equal(conn_comm(f->c), JOB_COMM_UNKNOWN);
    install_client(f);
    v = conn_view(f->c, 1);
    assert_false(v.password_loaded); /* the database has not answered yet */
}

/* ------------------------------------------------------------ Full Comm */

static void comm_transitions(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    int64_t before = conn_next_heartbeat(c);
    /* No row: unknown, which it already was. */
    assert_false(conn_comm_apply(c, NULL, before + 1000));
    assert_int_equal(conn_comm(c), JOB_COMM_UNKNOWN);
    assert_int_equal(conn_next_heartbeat(c), before);

    /* Enabled: a change, and a heartbeat at once (features before anything relies on them). */
    assert_true(conn_comm_apply(c, "enabled", before + 1000));
    assert_int_equal(conn_comm(c), JOB_COMM_ENABLED);
    assert_int_equal(conn_next_heartbeat(c), before + 1000);
    assert_false(conn_comm_apply(c, "enabled", before + 2000)); /* the same: no change */
    assert_int_equal(conn_next_heartbeat(c), before + 1000);

    assert_true(conn_comm_apply(c, "limited", before + 3000));
    assert_int_equal(conn_comm(c), JOB_COMM_LIMITED);
    assert_int_equal(conn_next_heartbeat(c), before + 3000);

    /* Disabled: nothing goes to the server, so no heartbeat is made due. */
    assert_true(conn_comm_apply(c, "disabled", before + 4000));
    assert_int_equal(conn_comm(c), JOB_COMM_DISABLED);
    assert_int_equal(conn_next_heartbeat(c), before + 3000);

    /* A value it does not know is read as disabled: the safe side. */
    assert_true(conn_comm_apply(c, "enabled", before + 5000));
    assert_true(conn_comm_apply(c, "Enabled", before + 6000));
    assert_int_equal(conn_comm(c), JOB_COMM_DISABLED);
    assert_false(conn_comm_apply(c, "", before + 7000));
    assert_int_equal(conn_comm(c), JOB_COMM_DISABLED);

    /* And the row gone: unknown again. */
    assert_true(conn_comm_apply(c, NULL, before + 8000));
    assert_int_equal(conn_comm(c), JOB_COMM_UNKNOWN);
    assert_int_equal(conn_next_heartbeat(c), before + 8000);

    assert_string_equal(conn_comm_name(JOB_COMM_ENABLED), "enabled");
    assert_string_equal(conn_comm_name(JOB_COMM_LIMITED), "limited");
    assert_string_equal(conn_comm_name(JOB_COMM_DISABLED), "disabled");
    assert_string_equal(conn_comm_name(JOB_COMM_UNKNOWN), "unknown");
    assert_int_equal(seen.comm_changed, 0); /* the hook is the read's, not the rule's */
}

/* ------------------------------------------------------------ heartbeat and features */

static void features_from_heartbeats(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    int64_t t = conn_next_heartbeat(c);
    struct amt_reply r = heartbeat_ok(true, true);
    assert_true(conn_heartbeat_apply(c, &r, t)); /* the first answer is news */
    assert_true(conn_monitor_jobs(c));
    assert_true(conn_start_idempotent(c));
    struct job_view v = conn_view(c, t);
    assert_true(v.features_known);
    assert_true(v.idempotent);
    assert_false(v.heartbeat_failed);
    assert_false(conn_heartbeat_apply(c, &r, t)); /* the same again: not news */

    r = heartbeat_ok(true, false); /* the server no longer promises an idempotent Start */
    assert_true(conn_heartbeat_apply(c, &r, t));
    assert_false(conn_start_idempotent(c));
    r = heartbeat_ok(false, false);
    assert_true(conn_heartbeat_apply(c, &r, t));
    assert_false(conn_monitor_jobs(c));

    /* A failure after an answer keeps what is known and the schedule. */
    r = heartbeat_ok(true, true);
    conn_heartbeat_apply(c, &r, t);
    int64_t next = conn_next_heartbeat(c);
    r = heartbeat_failed();
    assert_false(conn_heartbeat_apply(c, &r, t + 50));
    assert_true(conn_start_idempotent(c));
    assert_true(conn_monitor_jobs(c));
    v = conn_view(c, t);
    assert_true(v.features_known);
    assert_false(v.heartbeat_failed);
    assert_int_equal(conn_next_heartbeat(c), next);
}

static void first_heartbeat_failed(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    struct amt_reply r = heartbeat_failed();
    assert_false(conn_heartbeat_apply(c, &r, 1000));
    struct job_view v = conn_view(c, 1000);
    assert_false(v.features_known);
    assert_true(v.heartbeat_failed); /* the Start rules wait rather than guess */
    assert_false(conn_start_idempotent(c));
    assert_int_equal(conn_next_heartbeat(c), 3000); /* features are needed soon */
    /* The next answer makes them known; the failure is history. */
    r = heartbeat_ok(true, true);
    assert_true(conn_heartbeat_apply(c, &r, 3000));
    v = conn_view(c, 3000);
    assert_true(v.features_known);
    assert_true(conn_start_idempotent(c));
}

static void when_a_heartbeat_is_due(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    int64_t now = conn_next_heartbeat(c);
    conn_comm_apply(c, "enabled", now);
    assert_false(conn_heartbeat_due(c, now)); /* no client yet */
    install_client(f);
    assert_true(conn_heartbeat_due(c, now));
    assert_false(conn_heartbeat_due(c, now - 1)); /* not yet */
    conn_comm_apply(c, "limited", now);
    assert_true(conn_heartbeat_due(c, now)); /* running jobs are still followed */
    conn_comm_apply(c, "disabled", now);
    assert_false(conn_heartbeat_due(c, now));
    conn_comm_apply(c, NULL, now);
    assert_false(conn_heartbeat_due(c, now));
    conn_comm_apply(c, "enabled", now);
    /* Removed by a reload: only while it still has jobs to follow. */
    conn_set_removed(c, true);
    assert_false(conn_heartbeat_due(c, now));
    conn_job_added(c);
    assert_true(conn_heartbeat_due(c, now));
    conn_job_removed(c);
    conn_set_removed(c, false);
    assert_true(conn_heartbeat_due(c, now));
    /* Stopping: no calls any more. */
    conn_stop_calls(c);
    assert_null(conn_amt(c));
    assert_false(conn_heartbeat_due(c, now));
}

static void a_new_client_asks_the_features_again(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    install_client(f);
    struct amt_reply r = heartbeat_ok(true, true);
    conn_heartbeat_apply(c, &r, 0);
    assert_true(conn_start_idempotent(c));
    int64_t t0 = now_ms();
    install_client(f); /* a reload changed the url, say */
    assert_false(conn_start_idempotent(c));
    struct job_view v = conn_view(c, 0);
    assert_false(v.features_known);
    assert_false(v.heartbeat_failed);
    assert_true(conn_next_heartbeat(c) >= t0); /* due at once */
    assert_true(conn_next_heartbeat(c) <= now_ms());
}

/* ------------------------------------------------------------ status checks */

static void reading_a_monitor_jobs_answer(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    struct amt_reply hb = heartbeat_ok(true, true);
    conn_heartbeat_apply(c, &hb, 0);
    void *const js[4] = {&jobs[0], &jobs[1], &jobs[2], &jobs[3]};
    const int brids[4] = {30, 10, 20, 40};
    const struct amt_job answer[2] = {{.id = 20, .code = 4, .message_count = 3},
                                      {.id = 30, .code = 1, .message_count = -1}};
    const int unknown[1] = {40};
    struct amt_reply r = {.status = AMT_OK, .call = AMT_CALL_MONITOR_MANY, .error = "",
                          .jobs = answer, .njobs = 2, .unknown = unknown, .nunknown = 1};
    conn_checks_answered(c, js, brids, 4, &r);
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen.checked[i], 1);
    assert_non_null(seen.last[0].found); /* 30 */
    assert_int_equal(seen.found[0].id, 30);
    assert_int_equal(seen.found[0].code, 1);
    assert_int_equal(seen.found[0].message_count, -1);
    assert_non_null(seen.last[2].found); /* 20 */
    assert_int_equal(seen.found[2].id, 20);
    assert_int_equal(seen.found[2].code, 4);
    assert_int_equal(seen.found[2].message_count, 3);
    assert_null(seen.last[1].found); /* 10: neither listed nor known */
    assert_false(seen.last[1].unknown);
    assert_null(seen.last[3].found); /* 40: the server says it does not know it */
    assert_true(seen.last[3].unknown);

    /* An answer with no job at all: none of them is known. */
    memset(&seen, 0, sizeof seen);
    struct amt_reply empty = {.status = AMT_OK, .call = AMT_CALL_MONITOR_MANY, .error = ""};
    conn_checks_answered(c, js, brids, 4, &empty);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(seen.checked[i], 1);
        assert_null(seen.last[i].found);
        assert_true(seen.last[i].unknown);
    }

    /* A failure: nobody is unknown, following goes on. */
    memset(&seen, 0, sizeof seen);
    struct amt_reply bad = {.status = AMT_ERR_SERVER, .call = AMT_CALL_MONITOR_MANY,
                            .http_status = 503, .error = "http 503"};
    conn_checks_answered(c, js, brids, 4, &bad);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(seen.checked[i], 1);
        assert_null(seen.last[i].found);
        assert_false(seen.last[i].unknown);
    }
    assert_true(conn_monitor_jobs(c));

    /* 404 or 405: the server no longer offers MonitorJobs; one call per job from now on. */
    struct amt_reply gone = {.status = AMT_ERR_REJECTED, .call = AMT_CALL_MONITOR_MANY,
                             .http_status = 405, .error = "http 405"};
    conn_checks_answered(c, js, brids, 4, &gone);
    assert_false(conn_monitor_jobs(c));
    conn_heartbeat_apply(c, &hb, 0);
    assert_true(conn_monitor_jobs(c)); /* until a heartbeat says it again */
    gone.http_status = 404;
    conn_checks_answered(c, js, brids, 4, &gone);
    assert_false(conn_monitor_jobs(c));
    conn_heartbeat_apply(c, &hb, 0);
    gone.http_status = 400; /* a refused body is not a missing call */
    conn_checks_answered(c, js, brids, 4, &gone);
    assert_true(conn_monitor_jobs(c));
}

static void checks_are_gathered_and_each_answered_once(void **state)
{
    struct fixture *f = *state;
    struct conn *c = f->c;
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(conn_queue_check(c, 1000 + i, &jobs[i]), 0);
    conn_flush_checks(c); /* no client: they wait */
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(seen.checked[i] + seen.not_sent[i], 0);
    /* With a client (and no password: the logon the calls need fails at
     * once, or the calls end cancelled when the client is freed below),
     * every job hears exactly once, whatever becomes of its call. */
    install_client(f);
    conn_flush_checks(c);
    conn_stop_calls(c);
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(seen.checked[i] + seen.not_sent[i], 1);
        if (seen.checked[i])
            assert_int_not_equal(seen.status[i], AMT_OK);
    }
    /* Sent once: a flush again has nothing to send. */
    memset(&seen, 0, sizeof seen);
    conn_flush_checks(c);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(seen.checked[i] + seen.not_sent[i], 0);
}

int main(void)
{
    if (amt_global_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(room_under_max_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_are_the_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(view_before_anything_is_known, setup, teardown),
        cmocka_unit_test_setup_teardown(comm_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(features_from_heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(first_heartbeat_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(when_a_heartbeat_is_due, setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_client_asks_the_features_again, setup, teardown),
        cmocka_unit_test_setup_teardown(reading_a_monitor_jobs_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(checks_are_gathered_and_each_answered_once, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    amt_global_cleanup();
    return rc;
}
