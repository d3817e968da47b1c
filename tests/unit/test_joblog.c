#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/joblog.h"

static char *slurp(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/joblogs/%s", AMTACS_TESTDATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[65536];
    size_t n = fread(data, 1, sizeof data - 1, f);
    fclose(f);
    data[n] = '\0';
    return data;
}

static void reference_done(void **state)
{
    (void)state;
    const char *msgs[] = {
        "Started Rev: 1.3 AMT: 8.0.24223.0. Params: LOADINBATCHCONTROLLER /R:4280 /USEWORKINGDIR",
        "Report test 01 is started",
        "Report test 01 user BATCH",
        "Report test 01 Value param []",
        "Report test 01 is running 0 seconds",
        "Report test 01 is running 10 seconds",
        "Report test 01 is running 20 seconds",
        "Report test 01 test is ended",
        "Report execution time: 00:00:30:229",
        "Done",
    };
    struct jobspec spec = {.application = "DEMO2", .queue_name = NULL, .kind = JOBSPEC_BATCH,
                           .name = "REPORTTEST01"};
    struct joblog_job job = {.server = "http://10.1.29.5:9001", .completion_code = 4,
                             .spec = &spec};
    char *log = joblog_render(&job, msgs, 10);
    assert_non_null(log);
    assert_string_equal(log, slurp("REPORTTEST01.DONE.log"));
    free(log);
}

static void reference_script_error(void **state)
{
    (void)state;
    /* The server's text has single backslashes; the log shows them JSON-escaped. */
    const char *msgs[] = {
        "Error starting job []",
        "[An error occurred trying to start process 'pwsh' with working directory "
        "'F:\\AMT\\SCRIPTS\\DEMO2'. The system cannot find the file specified.]",
    };
    struct jobspec spec = {.application = "DEMO2", .queue_name = "", .kind = JOBSPEC_SCRIPT,
                           .name = "F:\\Amt\\Scripts\\DEMO2\\RUN_FILENAMETEST.ps1"};
    struct joblog_job job = {.server = "http://10.1.29.5:9001", .completion_code = 11,
                             .spec = &spec};
    char *log = joblog_render(&job, msgs, 2);
    assert_non_null(log);
    assert_string_equal(log, slurp("RUN_FILENAMETEST.ERROR.log"));
    free(log);
}

static void reference_killed(void **state)
{
    (void)state;
    struct jobspec spec = {.application = "DEMO2", .kind = JOBSPEC_BATCH,
                           .name = "LONGRUNNINGREPORT"};
    struct joblog_job job = {.server = "http://10.1.29.5:9001", .completion_code = 3,
                             .spec = &spec};
    char *log = joblog_render(&job, NULL, 0);
    assert_non_null(log);
    assert_string_equal(log, slurp("LONGRUNNINGREPORT.KILLED.log"));
    free(log);
}

static const char *line_of(const char *log, const char *prefix)
{
    const char *p = strstr(log, prefix);
    assert_non_null(p);
    return p;
}

static void parameters_queue_and_escapes(void **state)
{
    (void)state;
    const char *params[] = {"A=1", "B=two words"};
    const char *msgs[] = {"tab\there \"quoted\" back\\slash", "bad \xff byte", "nl\nend"};
    struct jobspec spec = {.application = "APP", .queue_name = "NIGHT", .kind = JOBSPEC_BATCH,
                           .name = "J", .values = params, .nvalues = 2};
    struct joblog_job job = {.server = "https://amt.example:9443", .completion_code = 12,
                             .spec = &spec};
    char *log = joblog_render(&job, msgs, 3);
    assert_non_null(log);
    assert_memory_equal(line_of(log, "Queue Name"), "Queue Name      : NIGHT\n", 23);
    assert_memory_equal(line_of(log, "Parameters"), "Parameters      : A=1 B=two words\n", 34);
    assert_memory_equal(line_of(log, "Completion Code"), "Completion Code : ABORTED\n", 26);
    assert_non_null(strstr(log, "\"tab\\there \\\"quoted\\\" back\\\\slash\"\n"));
    assert_non_null(strstr(log, "\"bad \\ufffd byte\"\n"));
    assert_non_null(strstr(log, "\"nl\\nend\"\n"));
    free(log);
}

static void unknown_code_keeps_number(void **state)
{
    (void)state;
    struct jobspec spec = {.kind = JOBSPEC_SCRIPT, .name = "S"};
    struct joblog_job job = {.completion_code = 17, .spec = &spec};
    char *log = joblog_render(&job, NULL, 0);
    assert_non_null(log);
    assert_non_null(strstr(log, "Completion Code : UNKNOWN (17)\n"));
    assert_non_null(strstr(log, "Server          : \n")); /* NULL prints as empty */
    free(log);
}

static void header_values_stay_on_one_line(void **state)
{
    (void)state;
    struct jobspec spec = {.application = "A\nB", .kind = JOBSPEC_BATCH, .name = "J\r"};
    struct joblog_job job = {.completion_code = 4, .spec = &spec};
    char *log = joblog_render(&job, NULL, 0);
    assert_non_null(log);
    assert_non_null(strstr(log, "Application     : A B\n"));
    assert_non_null(strstr(log, "Batch Job       : J \n"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_done),
        cmocka_unit_test(reference_script_error),
        cmocka_unit_test(reference_killed),
        cmocka_unit_test(parameters_queue_and_escapes),
        cmocka_unit_test(unknown_code_keeps_number),
        cmocka_unit_test(header_values_stay_on_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
