#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "amtacs/sentset.h"

static void key(char *out, size_t len, int i)
{
    snprintf(out, len, "00000000-0000-4000-8000-%012d", i);
}

static void test_remembers_and_forgets_the_oldest(void **state)
{
    (void)state;
    struct sentset *s = sentset_new(100);
    assert_non_null(s);
    char k[64];
    for (int i = 0; i < 250; i++) {
        key(k, sizeof k, i);
        sentset_add(s, k);
    }
    assert_int_equal(sentset_size(s), 100);
    for (int i = 0; i < 250; i++) {
        key(k, sizeof k, i);
        if (i < 150)
            assert_false(sentset_has(s, k));
        else
            assert_true(sentset_has(s, k));
    }
    sentset_free(s);
}

static void test_adding_twice_keeps_one(void **state)
{
    (void)state;
    struct sentset *s = sentset_new(3);
    sentset_add(s, "a");
    sentset_add(s, "a");
    sentset_add(s, "b");
    assert_int_equal(sentset_size(s), 2);
    sentset_add(s, "c");
    sentset_add(s, "d"); /* a goes */
    assert_false(sentset_has(s, "a"));
    assert_true(sentset_has(s, "b") && sentset_has(s, "c") && sentset_has(s, "d"));
    assert_false(sentset_has(s, "e"));
    sentset_free(s);
}

/* Many evictions through colliding clusters: every key still present is
 * found, every evicted one is not (backward-shift deletion keeps probes whole). */
static void test_eviction_keeps_lookups_right(void **state)
{
    (void)state;
    const int cap = 37;
    struct sentset *s = sentset_new((size_t)cap);
    char k[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "%d", i * 7919 % 100003);
        sentset_add(s, k);
        if (i % 97 == 0) {
            for (int j = 0; j <= i; j++) {
                char q[64];
                snprintf(q, sizeof q, "%d", j * 7919 % 100003);
                if (j > i - cap)
                    assert_true(sentset_has(s, q));
                else
                    assert_false(sentset_has(s, q));
            }
        }
    }
    sentset_free(s);
}

static void test_bad_capacity(void **state)
{
    (void)state;
    assert_null(sentset_new(0));
    sentset_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remembers_and_forgets_the_oldest),
        cmocka_unit_test(test_adding_twice_keeps_one),
        cmocka_unit_test(test_eviction_keeps_lookups_right),
        cmocka_unit_test(test_bad_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
