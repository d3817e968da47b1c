/* Unit tests of metrics: what /metrics prints for what the engine reported,
 * histograms cumulative, label values escaped, the connection series kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/metrics.h"

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
    struct metrics *m = metrics_new();
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
    struct metrics *m = metrics_new();
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
    struct metrics *m = metrics_new();
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
    struct metrics *m = metrics_new();
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_and_codes),
        cmocka_unit_test(histograms_are_cumulative),
        cmocka_unit_test(labels_escaped),
        cmocka_unit_test(health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
