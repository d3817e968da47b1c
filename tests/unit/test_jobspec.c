/* Unit tests of jobspec: the database's rules for task values and script
 * parameters (tests/integration/test_jobspec_sql.sh holds them against
 * PostgreSQL itself), the text[] literal and its parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/jobspec.h"

/* s repeated n times after prefix (malloc'd). */
static char *repeat(const char *prefix, const char *s, size_t n)
{
    size_t pl = strlen(prefix), sl = strlen(s);
    char *out = malloc(pl + sl * n + 1);
    assert_non_null(out);
    memcpy(out, prefix, pl);
    for (size_t i = 0; i < n; i++)
        memcpy(out + pl + i * sl, s, sl);
    out[pl + sl * n] = '\0';
    return out;
}

static enum jobspec_problem check(const char *item)
{
    char why[4096];
    enum jobspec_problem p = jobspec_check_item(item, "task value", 1, why, sizeof why);
    /* A message exactly when refused. */
    assert_int_equal(why[0] != '\0', p != JOBSPEC_OK);
    return p;
}

static void good_items(void **state)
{
    (void)state;
    static const char *const good[] = {
        "A=1", "A=", "A==", "A=b=c", "PATH=C:\\x y", "A= leading", "A=trailing ",
        "A=NULL", "NULL=NULL", "A={}", "{=}", "A=\"q\"", "\"=\"", "A=\\", "A=,", "A=~",
        "N=\xc3\xa9",                 /* é */
        "\xe5\x90\x8d=\xe5\x80\xa4", /* 名=値 */
        "A=\xc2\xa0",                 /* a no-break space in the value */
        "A\xc2\xa0" "B=1",            /* and in the name: not \s under LC_CTYPE C */
        "A\xe3\x80\x80" "B=1",        /* U+3000, the same */
        "A=\xc2\xa0\xc2\xa1",         /* U+00A0, U+00A1: just past the C1 controls */
        "A=\xf0\x9f\x98\x80",         /* an emoji: four bytes, one character */
        "A=\xef\xbf\xbf",             /* U+FFFF: a noncharacter, still valid UTF-8 */
        "A=\xe2\x80\xa8",             /* U+2028 LINE SEPARATOR is no control character */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (check(good[i]) != JOBSPEC_OK)
            fail_msg("refused: %s", good[i]);
    }
    /* The limit is 1024 characters, not bytes. */
    char *s = repeat("A=", "x", 1022);
    assert_int_equal(check(s), JOBSPEC_OK);
    free(s);
    s = repeat("A=", "\xc3\xa9", 1022);
    assert_int_equal(check(s), JOBSPEC_OK);
    free(s);
    s = repeat("A=", "\xf0\x9f\x98\x80", 1022);
    assert_int_equal(check(s), JOBSPEC_OK);
    free(s);
}

static void bad_items(void **state)
{
    (void)state;
    static const struct {
        const char *item;
        enum jobspec_problem problem;
    } bad[] = {
        {"", JOBSPEC_NO_EQUALS},
        {"justtext", JOBSPEC_NO_EQUALS},
        {"=25", JOBSPEC_EMPTY_NAME},
        {"=", JOBSPEC_EMPTY_NAME},
        {"A B=1", JOBSPEC_NAME_SPACE},
        {" A=1", JOBSPEC_NAME_SPACE},
        {"A =1", JOBSPEC_NAME_SPACE},
        {"A=1\n", JOBSPEC_CONTROL},
        {"A\t=1", JOBSPEC_CONTROL},
        {"\x01", JOBSPEC_CONTROL},
        {"A=\x1f", JOBSPEC_CONTROL},
        {"A=\x7f", JOBSPEC_CONTROL},
        {"A=\xc2\x80", JOBSPEC_CONTROL}, /* U+0080 */
        {"A=\xc2\x85", JOBSPEC_CONTROL}, /* U+0085 NEL */
        {"A=\xc2\x9f", JOBSPEC_CONTROL}, /* U+009F */
        {"A=\xff", JOBSPEC_BAD_UTF8},
        {"A=\xc3", JOBSPEC_BAD_UTF8},             /* cut short */
        {"A=\xc0\xaf", JOBSPEC_BAD_UTF8},         /* overlong */
        {"A=\xe0\x80\xaf", JOBSPEC_BAD_UTF8},     /* overlong */
        {"A=\xed\xa0\x80", JOBSPEC_BAD_UTF8},     /* a surrogate */
        {"A=\xf4\x90\x80\x80", JOBSPEC_BAD_UTF8}, /* past U+10FFFF */
        {"\x01\xff", JOBSPEC_BAD_UTF8},           /* the encoding is checked first */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum jobspec_problem p = check(bad[i].item);
        if (p != bad[i].problem)
            fail_msg("item %zu: problem %d, expected %d", i, (int)p, (int)bad[i].problem);
    }
    char *s = repeat("A=", "x", 1023);
    assert_int_equal(check(s), JOBSPEC_TOO_LONG);
    free(s);
    s = repeat("A=", "\xc3\xa9", 1023);
    assert_int_equal(check(s), JOBSPEC_TOO_LONG);
    free(s);
    /* The database's order: control characters before the length, the length
     * before NAME=VALUE. */
    s = repeat("\t", "x", 2000);
    assert_int_equal(check(s), JOBSPEC_CONTROL);
    free(s);
    s = repeat("", "x", 2000);
    assert_int_equal(check(s), JOBSPEC_TOO_LONG);
    free(s);
}

static void messages(void **state)
{
    (void)state;
    char why[4096];
    assert_int_equal(jobspec_check_item("FOO", "task value", 3, why, sizeof why),
                     JOBSPEC_NO_EQUALS);
    assert_string_equal(why, "task value 3 ('FOO') is not name=value: it has no '='; each item "
                             "must be NAME=VALUE with a non-empty NAME without spaces");
    jobspec_check_item("=25", "script parameter", 1, why, sizeof why);
    assert_string_equal(why, "script parameter 1 ('=25') is not name=value: the NAME before '=' "
                             "is empty; each item must be NAME=VALUE with a non-empty NAME "
                             "without spaces");
    jobspec_check_item("it's A=1", "task value", 2, why, sizeof why);
    assert_string_equal(why, "task value 2 ('it''s A=1') is not name=value: the NAME has a space "
                             "at position 5; each item must be NAME=VALUE with a non-empty NAME "
                             "without spaces");
    jobspec_check_item("\xc3\xa9=\n", "task value", 1, why, sizeof why);
    assert_string_equal(why, "task value 1 contains a control character (U+000A) at position 3; "
                             "only printable characters are allowed");
    jobspec_check_item("A=\xc2\x85", "task value", 1, why, sizeof why);
    assert_string_equal(why, "task value 1 contains a control character (U+0085) at position 3; "
                             "only printable characters are allowed");
    jobspec_check_item("A=\xe9t\xe9", "task value", 4, why, sizeof why);
    assert_string_equal(why, "task value 4 is not valid UTF-8 (byte 3); only UTF-8 text is allowed");
    char *s = repeat("A=", "\xc3\xa9", 1100);
    jobspec_check_item(s, "task value", 1, why, sizeof why);
    assert_string_equal(why, "task value 1 is 1102 characters long; at most 1024 are allowed");
    free(s);
    /* A short buffer cuts the message; none at all is allowed. */
    char tiny[8];
    assert_int_equal(jobspec_check_item("FOO", "task value", 3, tiny, sizeof tiny),
                     JOBSPEC_NO_EQUALS);
    assert_string_equal(tiny, "task va");
    assert_int_equal(jobspec_check_item("FOO", "task value", 3, NULL, 0), JOBSPEC_NO_EQUALS);
}

static void lists(void **state)
{
    (void)state;
    char why[4096];
    const char *items[JOBSPEC_MAX_ITEMS + 1];
    for (size_t i = 0; i < JOBSPEC_MAX_ITEMS + 1; i++)
        items[i] = "K=v";
    assert_true(jobspec_check_list(items, 0, "task_values", "task value", why, sizeof why));
    assert_true(jobspec_check_list(items, JOBSPEC_MAX_ITEMS, "task_values", "task value", why,
                                   sizeof why));
    assert_false(jobspec_check_list(items, JOBSPEC_MAX_ITEMS + 1, "task_values", "task value",
                                    why, sizeof why));
    assert_string_equal(why, "task_values has 21 items; at most 20 are allowed");
    items[1] = NULL;
    assert_false(jobspec_check_list(items, 3, "task_values", "task value", why, sizeof why));
    assert_string_equal(why, "task value 2 is NULL; each item must be NAME=VALUE");
    items[1] = "K=v";
    items[2] = "FOO";
    assert_false(jobspec_check_list(items, 3, "script_parameters", "script parameter", why,
                                    sizeof why));
    assert_string_equal(why, "script parameter 3 ('FOO') is not name=value: it has no '='; each "
                             "item must be NAME=VALUE with a non-empty NAME without spaces");
}

static void literal(void **state)
{
    (void)state;
    char *s = jobspec_array_literal(NULL, 0);
    assert_string_equal(s, "{}");
    free(s);
    const char *items[] = {"A=1", "B=x \"y\"", "C=\\", "", "NULL", "{,}", " ", NULL};
    s = jobspec_array_literal(items, sizeof items / sizeof items[0]);
    assert_string_equal(s, "{\"A=1\",\"B=x \\\"y\\\"\",\"C=\\\\\",\"\",\"NULL\",\"{,}\",\" \",NULL}");
    free(s);
}

/* Parses text, which must give exactly the n items of want. */
static void parses_to(const char *text, const char *const *want, size_t n)
{
    char why[256], **items;
    size_t got;
    if (!jobspec_array_parse(text, strlen(text), &items, &got, why, sizeof why))
        fail_msg("'%s' refused: %s", text, why);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        if (!want[i])
            assert_null(items[i]);
        else
            assert_string_equal(items[i], want[i]);
    }
    jobspec_items_free(items, got);
}

static void parse_literals(void **state)
{
    (void)state;
    parses_to("{}", NULL, 0);
    parses_to("  { \t}\n", NULL, 0);
    parses_to("{a,b}", (const char *[]){"a", "b"}, 2);
    parses_to(" { a b , \"c d\" , NULL, null, \"NULL\", N\\ULL } ",
              (const char *[]){"a b", "c d", NULL, NULL, "NULL", "NULL"}, 6);
    parses_to("{\"a\\\"b\",\"c\\\\d\",\"\"}", (const char *[]){"a\"b", "c\\d", ""}, 3);
    parses_to("{a\\ ,\\,}", (const char *[]){"a ", ","}, 2);
    parses_to("{\"{x}\",A=1}", (const char *[]){"{x}", "A=1"}, 2);
    parses_to("{\xc3\xa9=\xe2\x82\xac}", (const char *[]){"\xc3\xa9=\xe2\x82\xac"}, 1);
}

static void parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "a", "\"\"", "{", "{a", "{a,", "{a,,b}", "{,}", "{a,}", "{{a}}", "{a{b}}",
        "[1:1]={a}", "{a\"b\"}", "{\"a\"b}", "{a} x", "{\"a}", "{a\\", "{\"a\\",
    };
    char why[256], **items = (char **)1;
    size_t n = 99;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (jobspec_array_parse(bad[i], strlen(bad[i]), &items, &n, why, sizeof why))
            fail_msg("'%s' accepted", bad[i]);
        assert_null(items);
        assert_int_equal(n, 0);
        assert_true(why[0] != '\0');
    }
    assert_false(jobspec_array_parse("{a\0b}", 5, &items, &n, why, sizeof why));
    assert_string_equal(why, "a NUL byte at byte 3");
    assert_false(jobspec_array_parse("{a,,b}", 6, &items, &n, why, sizeof why));
    assert_string_equal(why, "an empty element (write \"\" for empty text) at byte 4");
    assert_false(jobspec_array_parse("{{a}}", 5, &items, &n, why, sizeof why));
    assert_string_equal(why, "unexpected '{' (several dimensions) at byte 2");
}

/* The literal of any items parses back to the same items. */
static void round_trip(void **state)
{
    (void)state;
    static const char *const tricky[] = {
        "A=1", "", " ", "  lead", "trail  ", "NULL", "null", "a,b", "{a}", "}", "{", "\"",
        "\\", "\\\"", "x\\y\"z", "A=\t\n", "\xc3\xa9", "\xff\xfe", ",,,", "\"\"", "N\\ULL",
    };
    size_t n = sizeof tricky / sizeof tricky[0];
    char why[256], **items;
    size_t got;
    char *lit = jobspec_array_literal(tricky, n);
    assert_non_null(lit);
    assert_true(jobspec_array_parse(lit, strlen(lit), &items, &got, why, sizeof why));
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(items[i], tricky[i]);
    jobspec_items_free(items, got);
    free(lit);

    /* And pseudo-random bytes (a fixed LCG, so a failure repeats). */
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; round++) {
        char buf[5][24];
        const char *ptr[5];
        size_t k = (size_t)(round % 6);
        for (size_t i = 0; i < k; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t len = (seed >> 16) % sizeof buf[i];
            for (size_t j = 0; j < len; j++) {
                seed = seed * 1103515245u + 12345u;
                /* Bias towards the characters the syntax cares about. */
                static const char special[] = "{}\",\\ \tNUL=a";
                unsigned r = (seed >> 16) & 0xFF;
                buf[i][j] = r < 128 ? special[r % (sizeof special - 1)] : (char)(r | 1);
            }
            buf[i][len] = '\0';
            ptr[i] = buf[i];
        }
        lit = jobspec_array_literal(ptr, k);
        assert_non_null(lit);
        if (!jobspec_array_parse(lit, strlen(lit), &items, &got, why, sizeof why))
            fail_msg("%s: %s", lit, why);
        assert_int_equal(got, k);
        for (size_t i = 0; i < k; i++)
            assert_string_equal(items[i], ptr[i]);
        jobspec_items_free(items, got);
        free(lit);
    }
}

/* One owned copy of a job: every string and item copied (none shared with
 * the source), NULL kept NULL, a NULL item made "", in one block free()
 * releases (ASan's leak check says so). */
static void dup_copies_everything(void **state)
{
    (void)state;
    char app[] = "APP", name[] = "RUN.ps1", v0[] = "A=1", v1[] = "B=x y";
    const char *values[] = {v0, v1, NULL};
    struct jobspec src = {.kind = JOBSPEC_SCRIPT, .application = app, .amt_user = NULL,
                          .queue_name = "", .name = name, .values = values, .nvalues = 3};
    struct jobspec *d = jobspec_dup(&src);
    assert_non_null(d);
    app[0] = name[0] = v0[0] = v1[0] = 'Z'; /* the copy does not see the source change */
    assert_int_equal(d->kind, JOBSPEC_SCRIPT);
    assert_string_equal(d->application, "APP");
    assert_null(d->amt_user);
    assert_string_equal(d->queue_name, "");
    assert_string_equal(d->name, "RUN.ps1");
    assert_int_equal(d->nvalues, 3);
    assert_string_equal(d->values[0], "A=1");
    assert_string_equal(d->values[1], "B=x y");
    assert_string_equal(d->values[2], "");
    free(d);

    struct jobspec empty = {.kind = JOBSPEC_BATCH};
    d = jobspec_dup(&empty);
    assert_non_null(d);
    assert_null(d->application);
    assert_int_equal(d->nvalues, 0);
    free(d);
}

/* The kind's one encoding: the database's word, the log's noun, and back. */
static void kinds(void **state)
{
    (void)state;
    assert_string_equal(jobspec_kind_name(JOBSPEC_BATCH), "batch");
    assert_string_equal(jobspec_kind_name(JOBSPEC_SCRIPT), "script");
    assert_string_equal(jobspec_kind_noun(JOBSPEC_BATCH), "batch job");
    assert_string_equal(jobspec_kind_noun(JOBSPEC_SCRIPT), "script");
    assert_int_equal(jobspec_kind_of("script"), JOBSPEC_SCRIPT);
    assert_int_equal(jobspec_kind_of("batch"), JOBSPEC_BATCH);
    assert_int_equal(jobspec_kind_of(NULL), JOBSPEC_BATCH);
    assert_int_equal(jobspec_kind_of(jobspec_kind_name(JOBSPEC_SCRIPT)), JOBSPEC_SCRIPT);
    assert_string_equal(JOBSPEC_SUBMIT_USER, "BATCH");
    assert_string_equal(JOBSPEC_STATION, "OPCON");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_items),     cmocka_unit_test(bad_items),
        cmocka_unit_test(messages),       cmocka_unit_test(lists),
        cmocka_unit_test(literal),        cmocka_unit_test(parse_literals),
        cmocka_unit_test(parse_errors),   cmocka_unit_test(round_trip),
        cmocka_unit_test(dup_copies_everything), cmocka_unit_test(kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
