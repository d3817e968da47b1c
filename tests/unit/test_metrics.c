/* Unit tests of metrics: what /metrics prints for what the engine reported,
 * histograms cumulative, label values escaped, the connection series kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/amt.h"
#include "amtacs/metrics.h"

/* As the daemon wires them: the client's names, a cancelled call not counted. */
static const char *const calls[] = {"heartbeat", "logon", "start", "kill",
                                    "monitor", "monitor_jobs", "messages"};
static const char *const outcomes[] = {"ok", "transport", "server", "protocol", "auth",
                                       "rejected", "no-password", NULL};
static const struct metrics_http_labels labels = {calls, 7, outcomes, 8};

static struct metrics *new_metrics(void) { return metrics_new(&labels); }

static char *render(struct metrics *m)
{
    struct buf b;
    buf_init(&b, 0);
    assert_true(metrics_render(m, &b));
    return buf_take(&b);
}

static void has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("missing line: %s\n--- in:\n%s", line, text);
}

static void counts_and_codes(void **state)
{
    (void)state;
    struct metrics *m = new_metrics();
    assert_non_null(m);
    struct metrics_conn *a = metrics_conn_get(m, "AMTDEMO");
    assert_ptr_equal(a, metrics_conn_get(m, "AMTDEMO")); /* one series per name */
    metrics_job_started(a);
    metrics_job_started(a);
    metrics_job_finished(a, 4);
    metrics_job_finished(a, 11);
    metrics_job_finished(a, 420); /* beyond any code a server may have */
    metrics_alert(a, 11);
    metrics_conn_state(a, "limited", 1, 7, true);
    metrics_db_up(m, true);
    metrics_reload(m, true);
    metrics_reload(m, false);
    metrics_reload(m, false);
    char *t = render(m);
    has_line(t, "amtacs_job_starts_total{connection=\"AMTDEMO\"} 2");
    has_line(t, "amtacs_job_completions_total{connection=\"AMTDEMO\",code=\"4\",name=\"DONE\","
                "result=\"success\"} 1");
    has_line(t, "amtacs_job_completions_total{connection=\"AMTDEMO\",code=\"11\",name=\"ERROR\","
                "result=\"failure\"} 1");
    has_line(t, "amtacs_job_completions_total{connection=\"AMTDEMO\",code=\"other\","
                "name=\"UNKNOWN\",result=\"failure\"} 1");
    has_line(t, "amtacs_alerts_total{connection=\"AMTDEMO\",code=\"11\",name=\"ERROR\"} 1");
    has_line(t, "amtacs_comm_state{connection=\"AMTDEMO\",state=\"limited\"} 1");
    has_line(t, "amtacs_comm_state{connection=\"AMTDEMO\",state=\"enabled\"} 0");
    has_line(t, "amtacs_server_up{connection=\"AMTDEMO\"} 1");
    has_line(t, "amtacs_jobs_in_flight{connection=\"AMTDEMO\"} 7");
    has_line(t, "amtacs_database_up 1");
    has_line(t, "amtacs_config_reloads_total{result=\"applied\"} 1");
    has_line(t, "amtacs_config_reloads_total{result=\"refused\"} 2");
    assert_null(strstr(t, "code=\"12\"")); /* nothing printed for codes never seen */
    free(t);
    metrics_free(m);
}

static void histograms_are_cumulative(void **state)
{
    (void)state;
    struct metrics *m = new_metrics();
    struct metrics_conn *a = metrics_conn_get(m, "A");
    metrics_http_call(a, AMT_CALL_START, 0.0004, AMT_OK);
    metrics_http_call(a, AMT_CALL_START, 0.003, AMT_OK);
    metrics_http_call(a, AMT_CALL_START, 0.2, AMT_ERR_SERVER);
    metrics_http_call(a, AMT_CALL_START, 99, AMT_ERR_TRANSPORT); /* beyond the last bound */
    metrics_http_call(a, AMT_CALL_START, 1, AMT_ERR_CANCELLED);  /* not counted */
    metrics_db_statement(m, 0.002, true);
    metrics_db_statement(m, 0.002, false);
    char *t = render(m);
    has_line(t, "amtacs_http_request_seconds_bucket{connection=\"A\",call=\"start\",le=\"0.001\"} 1");
    has_line(t, "amtacs_http_request_seconds_bucket{connection=\"A\",call=\"start\",le=\"0.005\"} 2");
    has_line(t, "amtacs_http_request_seconds_bucket{connection=\"A\",call=\"start\",le=\"0.25\"} 3");
    has_line(t, "amtacs_http_request_seconds_bucket{connection=\"A\",call=\"start\",le=\"30\"} 3");
    has_line(t, "amtacs_http_request_seconds_bucket{connection=\"A\",call=\"start\",le=\"+Inf\"} 4");
    has_line(t, "amtacs_http_request_seconds_count{connection=\"A\",call=\"start\"} 4");
    has_line(t, "amtacs_http_request_seconds_sum{connection=\"A\",call=\"start\"} 99.203400");
    has_line(t, "amtacs_http_request_seconds_count{connection=\"A\",call=\"logon\"} 0");
    has_line(t, "amtacs_http_requests_total{connection=\"A\",call=\"start\",outcome=\"ok\"} 2");
    has_line(t, "amtacs_http_requests_total{connection=\"A\",call=\"start\",outcome=\"server\"} 1");
    has_line(t, "amtacs_http_requests_total{connection=\"A\",call=\"start\",outcome=\"transport\"} 1");
    /* the outcomes in the HELP line come from the labels, the unlabelled left out */
    has_line(t, "# HELP amtacs_http_requests_total Calls to the Batch Server by call and outcome "
                "(ok, transport, server, protocol, auth, rejected, no-password).");
    has_line(t, "amtacs_database_statement_seconds_count 2");
    has_line(t, "amtacs_database_errors_total 1");
    free(t);
    metrics_free(m);
}

static void labels_escaped(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_true(metrics_label_value(&b, "a\"b\\c\nd"));
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\"");
    buf_free(&b);
    struct metrics *m = new_metrics();
    metrics_conn_state(metrics_conn_get(m, "we\"ird"), "enabled", -1, 0, false);
    char *t = render(m);
    has_line(t, "amtacs_connection_configured{connection=\"we\\\"ird\"} 0");
    assert_null(strstr(t, "amtacs_server_up{")); /* unknown until a heartbeat */
    free(t);
    metrics_free(m);
}

static void health(void **state)
{
    (void)state;
    struct metrics *m = new_metrics();
    struct metrics_health h;
    metrics_health(m, &h);
    assert_int_equal(h.last_tick_ms, 0);
    assert_false(h.db_up);
    assert_true(h.started_ms > 0);
    metrics_loop_tick(m, 1234);
    metrics_db_up(m, true);
    metrics_health(m, &h);
    assert_int_equal(h.last_tick_ms, 1234);
    assert_true(h.db_up);
    metrics_free(m);
    /* NULL series are accepted everywhere: a failed allocation costs only figures. */
    metrics_job_started(NULL);
    metrics_http_call(NULL, AMT_CALL_KILL, 1, AMT_OK);
    metrics_free(NULL);
}

/* The labels above are the client's own names, in its enums' order. */
static void labels_are_the_clients(void **state)
{
    (void)state;
    assert_int_equal(sizeof calls / sizeof calls[0], AMT_CALL_MESSAGES + 1);
    for (unsigned i = 0; i <= AMT_CALL_MESSAGES; i++)
        assert_string_equal(calls[i], amt_call_name((enum amt_call)i));
    assert_int_equal(sizeof outcomes / sizeof outcomes[0], AMT_ERR_CANCELLED + 1);
    for (unsigned i = 0; i < AMT_ERR_CANCELLED; i++)
        assert_string_equal(outcomes[i], amt_status_name((enum amt_status)i));
    /* out of the labels' range: ignored, not a crash */
    struct metrics *m = new_metrics();
    struct metrics_conn *a = metrics_conn_get(m, "A");
    metrics_http_call(a, 7, 1, 0);
    metrics_http_call(a, 0, 1, 8);
    char *t = render(m);
    assert_null(strstr(t, "amtacs_http_requests_total{"));
    free(t);
    metrics_free(m);
    /* without labels: no call series at all */
    m = metrics_new(NULL);
    a = metrics_conn_get(m, "A");
    metrics_http_call(a, 0, 1, 0);
    t = render(m);
    assert_null(strstr(t, "amtacs_http_request_seconds_count{"));
    free(t);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_are_the_clients),
        cmocka_unit_test(counts_and_codes),
        cmocka_unit_test(histograms_are_cumulative),
        cmocka_unit_test(labels_escaped),
        cmocka_unit_test(health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
