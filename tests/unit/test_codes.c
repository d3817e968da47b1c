#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "amtacs/codes.h"

/* The published table, row by row, as the vendor prints it. */
static const struct {
    int code;
    const char *name;
    bool final;
} expected[] = {
    {0, "IDLE", false},          {1, "QUEUED", false},
    {2, "RUNNING", false},       {3, "KILLED", true},
    {4, "DONE", true},           {5, "SUSPENDED", false},
    {6, "SKIPPED_BY_OPS", true}, {7, "RUN_MANUAL", false},
    {8, "RUN_FORCED", false},    {9, "RUN_DEBUG", false},
    {10, "DEL_QUEUE", true},     {11, "ERROR", true},
    {12, "ABORTED", true},       {13, "WAIT FOR FILE", false},
    {14, "WAIT FOR INPUT REQUEST", false},
    {15, "WAIT FOR JOB", false}, {16, "WAIT FOR REPORT", false},
    {18, "RECOVER_CP", false},   {19, "UNDEFINED", true},
    {20, "WAIT_FOR QUEUE", false},
    {21, "WAIT_FOR_DEBUGGER", false},
    {22, "ABORTED_WITH_RECOVER", true},
    {23, "WEB_SERVER_ERROR", true},
    {24, "AUTHENTICATION_ERROR", true},
    {99, "INVALID AMT USER", true},
};

static void every_row(void **state)
{
    (void)state;
    size_t n;
    const struct amt_code_info *t = amt_codes_table(&n);
    assert_int_equal(n, sizeof expected / sizeof expected[0]);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].code, expected[i].code);
        assert_string_equal(t[i].name, expected[i].name);
        assert_string_equal(amt_code_name(expected[i].code), expected[i].name);
        assert_int_equal(amt_code_is_final(expected[i].code), expected[i].final);
        assert_true(amt_code_known(expected[i].code));
        assert_int_equal(amt_code_is_success(expected[i].code), expected[i].code == 4);
        assert_int_equal(t[i].success, expected[i].code == 4);
        assert_non_null(t[i].description);
        /* 23 and 24 are the only rows the vendor leaves without a description. */
        assert_int_equal(t[i].description[0] == '\0', t[i].code == 23 || t[i].code == 24);
        assert_int_equal(t[i].origin == AMT_ORIGIN_CONNECTOR, t[i].code == 23 || t[i].code == 24);
    }
}

static void descriptions(void **state)
{
    (void)state;
    assert_string_equal(amt_code_lookup(11).description,
                        "Job ended in error. When executing a script and the script does not "
                        "exist, an error code of 11 is returned with a description of 'File not "
                        "found'");
    assert_string_equal(amt_code_lookup(99).description,
                        "When executing an AMT script with a named AMT user and the user is invalid");
    assert_string_equal(amt_code_lookup(3).description, "Job was terminated by a 'kill' command");
}

static void only_done_succeeds(void **state)
{
    (void)state;
    for (int c = -5; c <= 200; c++)
        assert_int_equal(amt_code_is_success(c), c == 4);
}

static void unknown_numbers(void **state)
{
    (void)state;
    const int unknown[] = {17, 42, -1, 25, 98, 100, 2147483647, -2147483647 - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        int c = unknown[i];
        struct amt_code_info info = amt_code_lookup(c);
        assert_int_equal(info.code, c);
        assert_string_equal(info.name, "UNKNOWN");
        assert_true(info.final);
        assert_false(info.success);
        assert_int_equal(info.origin, AMT_ORIGIN_UNKNOWN);
        assert_false(amt_code_known(c));
        assert_true(amt_code_is_final(c));
        assert_string_equal(amt_code_name(c), "UNKNOWN");
    }
}

static void parse(void **state)
{
    (void)state;
    int v = -7;
    assert_true(amt_code_parse("WAIT_FOR QUEUE", &v));
    assert_int_equal(v, 20);
    assert_true(amt_code_parse("INVALID AMT USER", &v));
    assert_int_equal(v, 99);
    assert_true(amt_code_parse("17", &v));
    assert_int_equal(v, 17);
    assert_true(amt_code_parse("-1", &v));
    assert_int_equal(v, -1);
    v = -7;
    assert_false(amt_code_parse("WAIT FOR QUEUE", &v)); /* the vendor spells it WAIT_FOR QUEUE */
    assert_false(amt_code_parse("done", &v));
    assert_false(amt_code_parse("", &v));
    assert_false(amt_code_parse(NULL, &v));
    assert_false(amt_code_parse("4x", &v));
    assert_false(amt_code_parse("99999999999", &v));
    assert_int_equal(v, -7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row),        cmocka_unit_test(descriptions),
        cmocka_unit_test(only_done_succeeds), cmocka_unit_test(unknown_numbers),
        cmocka_unit_test(parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
