/* webauth: the credentials of amtacs-web, without HTTP or SQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "amtacs/webauth.h"

static void test_cookie(void **state)
{
    (void)state;
    char v[64];
    assert_true(webauth_cookie("amtacs_session=abc", "amtacs_session", v, sizeof v));
    assert_string_equal(v, "abc");
    assert_true(webauth_cookie("a=1; amtacs_session=xyz ; b=2", "amtacs_session", v, sizeof v));
    assert_string_equal(v, "xyz");
    /* a name that only ends or starts like it is another cookie */
    assert_true(webauth_cookie("xamtacs_session=evil;amtacs_session=good", "amtacs_session", v,
                               sizeof v));
    assert_string_equal(v, "good");
    assert_false(webauth_cookie("amtacs_session_old=1; xamtacs_session=2", "amtacs_session", v,
                                sizeof v));
    assert_false(webauth_cookie("", "amtacs_session", v, sizeof v));
    assert_false(webauth_cookie(";;; ", "amtacs_session", v, sizeof v));
    /* too long for the buffer: refused, not cut */
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big, "amtacs_session=", 15);
    big[sizeof big - 1] = '\0';
    assert_false(webauth_cookie(big, "amtacs_session", v, sizeof v));
}

static void test_secret_round_trip(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    char text[WEBAUTH_SECRET_TEXT], hash[WEBAUTH_HASH_HEX], again[WEBAUTH_HASH_HEX];
    webauth_new_secret(text, hash);
    assert_int_equal(strlen(text), 43);
    assert_int_equal(strlen(hash), 66);
    assert_memory_equal(hash, "\\x", 2);
    assert_true(webauth_secret_hash(text, strlen(text), again));
    assert_string_equal(hash, again);
    char tok[64];
    snprintf(tok, sizeof tok, "amtacs_%s", text);
    assert_true(webauth_token_hash(tok, again));
    assert_string_equal(hash, again);
    char other[WEBAUTH_SECRET_TEXT], ohash[WEBAUTH_HASH_HEX];
    webauth_new_secret(other, ohash);
    assert_string_not_equal(text, other);
    assert_string_not_equal(hash, ohash);
}

static void test_secret_refusals(void **state)
{
    (void)state;
    char h[WEBAUTH_HASH_HEX];
    const char *good = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; /* 43 */
    assert_true(webauth_secret_hash(good, strlen(good), h));
    /* SHA-256 of 32 zero bytes */
    assert_string_equal(h, "\\x66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
    assert_false(webauth_secret_hash(good, 42, h));
    assert_false(webauth_secret_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 43, h));
    assert_false(webauth_secret_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", 43, h));
    assert_false(webauth_secret_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 44, h));
    assert_false(webauth_token_hash(good, h));                 /* no prefix */
    assert_false(webauth_token_hash("amtacs_", h));
    assert_false(webauth_token_hash("Amtacs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h));
    assert_true(webauth_token_hash("amtacs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h));
}

static void test_password(void **state)
{
    (void)state;
    char dummy[crypto_pwhash_STRBYTES], hash[crypto_pwhash_STRBYTES];
    assert_true(webauth_dummy_hash(dummy));
    assert_memory_equal(dummy, "$argon2id$", 10);
    assert_int_equal(crypto_pwhash_str(hash, "correct-horse", 13,
                                       crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE),
                     0);
    assert_true(webauth_password_ok(hash, "correct-horse", 13));
    assert_false(webauth_password_ok(hash, "correct-horsE", 13));
    assert_false(webauth_password_ok(hash, "", 0));
    assert_false(webauth_password_ok("not a hash", "correct-horse", 13));
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(webauth_equal("abc", "abc"));
    assert_false(webauth_equal("abc", "abd"));
    assert_false(webauth_equal("abc", "ab"));
    assert_false(webauth_equal("", "a"));
    assert_true(webauth_equal("", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie),          cmocka_unit_test(test_secret_round_trip),
        cmocka_unit_test(test_secret_refusals), cmocka_unit_test(test_password),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
