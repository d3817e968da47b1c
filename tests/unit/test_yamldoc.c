#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "amtacs/yamldoc.h"

static struct yd_doc *load(const char *text)
{
    struct yd_doc *d = yd_load_string("t.yaml", text, strlen(text));
    assert_non_null(d);
    return d;
}

static void tree_and_positions(void **state)
{
    (void)state;
    struct yd_doc *d = load("a: 1\nlist:\n  - x\n  - 'y'\nmap: {k: v}\nnul: ~\n");
    int root = yd_root(d);
    assert_int_equal(yd_type(d, root), YD_MAP);
    assert_int_equal(yd_len(d, root), 4);
    int list = yd_map_get(d, root, "list");
    assert_int_equal(yd_type(d, list), YD_SEQ);
    assert_int_equal(yd_len(d, list), 2);
    assert_string_equal(yd_scalar(d, yd_seq_at(d, list, 1)), "y");
    assert_false(yd_is_plain(d, yd_seq_at(d, list, 1)));
    assert_int_equal(yd_line(d, yd_seq_at(d, list, 1)), 4);
    assert_int_equal(yd_column(d, yd_seq_at(d, list, 1)), 5);
    assert_true(yd_is_null(d, yd_map_get(d, root, "nul")));
    assert_int_equal(yd_map_get(d, root, "absent"), 0);
    assert_int_equal(yd_seq_at(d, list, 2), 0);
    assert_int_equal(yd_type(d, 0), YD_NONE);
    assert_int_equal(yd_type(d, 9999), YD_NONE);
    assert_int_equal(yd_error_count(d), 0);
    yd_free(d);
}

static void typed_getters(void **state)
{
    (void)state;
    struct yd_doc *d = load("i: 42\nbig: 99999999999999999999\nf: 0.5\nb: true\nbad: yes\n"
                            "s: [1]\nnul: \"a\\0b\"\n");
    int r = yd_root(d);
    long l = 0;
    double f = 0;
    bool b = false;
    const char *s = NULL;
    assert_true(yd_get_long(d, yd_map_get(d, r, "i"), 0, 100, &l));
    assert_int_equal(l, 42);
    assert_false(yd_get_long(d, yd_map_get(d, r, "i"), 0, 10, &l));
    assert_false(yd_get_long(d, yd_map_get(d, r, "big"), 0, 10, &l));
    assert_true(yd_get_double(d, yd_map_get(d, r, "f"), 0, 1, &f));
    assert_true(yd_get_bool(d, yd_map_get(d, r, "b"), &b));
    assert_true(b);
    assert_false(yd_get_bool(d, yd_map_get(d, r, "bad"), &b));
    assert_false(yd_get_string(d, yd_map_get(d, r, "s"), &s));
    assert_false(yd_get_string(d, yd_map_get(d, r, "nul"), &s));
    assert_int_equal(yd_error_count(d), 5);
    assert_string_equal(yd_error(d, 0),
                        "t.yaml:1:4: 42 is out of range: expected an integer from 0 to 10");
    assert_string_equal(yd_error(d, 1), "t.yaml:2:6: 99999999999999999999 is out of range: "
                                       "expected an integer from 0 to 10");
    assert_string_equal(yd_error(d, 2), "t.yaml:5:6: expected a boolean (true/false), got 'yes'");
    assert_string_equal(yd_error(d, 3), "t.yaml:6:4: expected a string, got a list");
    assert_string_equal(yd_error(d, 4),
                        "t.yaml:7:6: expected a string, got a string with an embedded NUL byte");
    assert_null(yd_error(d, 5));
    yd_free(d);
}

static void keys(void **state)
{
    (void)state;
    struct yd_doc *d = load("a: 1\nb: 2\na: 3\nzz: 4\n");
    static const char *const allowed[] = {"a", "b", NULL};
    assert_false(yd_check_keys(d, yd_root(d), allowed));
    assert_int_equal(yd_error_count(d), 2);
    assert_string_equal(yd_error(d, 0), "t.yaml:3:1: duplicate key 'a' (first given on line 1)");
    assert_string_equal(yd_error(d, 1), "t.yaml:4:1: unknown key 'zz'");
    yd_free(d);
}

static void bad_files(void **state)
{
    (void)state;
    struct yd_doc *d = load("a: [1, 2\n");
    assert_int_equal(yd_root(d), 0);
    assert_int_equal(yd_error_count(d), 1);
    assert_non_null(strstr(yd_error(d, 0), "t.yaml:2:1: YAML syntax error"));
    yd_free(d);

    d = load("a: 1\n---\nb: 2\n");
    assert_int_equal(yd_error_count(d), 1);
    assert_string_equal(yd_error(d, 0), "t.yaml:3:1: only one YAML document is allowed in this file");
    yd_free(d);

    d = yd_load_file("/");
    assert_string_equal(yd_error(d, 0), "/: is a directory, not a YAML file");
    yd_free(d);

    d = yd_load_file("/nonexistent.yaml");
    assert_string_equal(yd_error(d, 0), "/nonexistent.yaml: cannot open: No such file or directory");
    yd_free(d);

    d = load("");
    assert_int_equal(yd_root(d), 0);
    assert_int_equal(yd_error_count(d), 0);
    yd_free(d);
    yd_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_and_positions),
        cmocka_unit_test(typed_getters),
        cmocka_unit_test(keys),
        cmocka_unit_test(bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
