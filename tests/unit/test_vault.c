#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amtacs/vault.h"

struct keys {
    char dir[64];
    char secret[128];
    char public_[128];
    struct vault_pub *pub;
    struct vault_secret *sk;
};

static int setup(void **state)
{
    struct keys *k = calloc(1, sizeof *k);
    char err[256];
    snprintf(k->dir, sizeof k->dir, "/tmp/amtacs-vault.XXXXXX");
    if (!mkdtemp(k->dir) || vault_init())
        return -1;
    snprintf(k->secret, sizeof k->secret, "%s/secret.key", k->dir);
    snprintf(k->public_, sizeof k->public_, "%s/public.key", k->dir);
    if (vault_keygen(k->secret, k->public_, err, sizeof err))
        return -1;
    k->pub = vault_pub_load(k->public_, err, sizeof err);
    k->sk = vault_secret_load(k->secret, err, sizeof err);
    *state = k;
    return k->pub && k->sk ? 0 : -1;
}

static int teardown(void **state)
{
    struct keys *k = *state;
    vault_pub_free(k->pub);
    vault_secret_free(k->sk);
    unlink(k->secret);
    unlink(k->public_);
    rmdir(k->dir);
    free(k);
    return 0;
}

static void seal_and_open(void **state)
{
    struct keys *k = *state;
    char err[256];
    unsigned char *ct;
    size_t ctlen;
    const char *pw = "s3cr\xc3\xa9t p@ss";
    assert_int_equal(vault_seal(k->pub, "amtopcon", pw, strlen(pw), &ct, &ctlen, err, sizeof err), 0);
    assert_null(memmem(ct, ctlen, "s3cr", 4)); /* no clear text in the sealed form */
    char *out = NULL;
    assert_int_equal(vault_open(k->sk, vault_pub_id(k->pub), "amtopcon", ct, ctlen, &out, err,
                                sizeof err), 0);
    assert_string_equal(out, pw);
    vault_password_free(out);
    assert_string_equal(vault_pub_id(k->pub), vault_secret_id(k->sk));
    assert_int_equal(strlen(vault_pub_id(k->pub)), VAULT_KEY_ID_LEN);
    free(ct);
}

static void bound_to_user_and_key(void **state)
{
    struct keys *k = *state;
    char err[256];
    unsigned char *ct;
    size_t ctlen;
    assert_int_equal(vault_seal(k->pub, "alice", "pw-alice", 8, &ct, &ctlen, err, sizeof err), 0);
    char *out = NULL;
    /* copied onto another user's row */
    assert_int_equal(vault_open(k->sk, vault_pub_id(k->pub), "bob", ct, ctlen, &out, err,
                                sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "sealed for another user or key"));
    assert_null(strstr(err, "pw-alice"));
    /* recorded under another key id */
    assert_int_equal(vault_open(k->sk, "0123456789abcdef", "alice", ct, ctlen, &out, err,
                                sizeof err), -1);
    assert_non_null(strstr(err, "sealed with key 0123456789abcdef"));
    /* tampered */
    ct[ctlen - 1] ^= 1;
    assert_int_equal(vault_open(k->sk, vault_pub_id(k->pub), "alice", ct, ctlen, &out, err,
                                sizeof err), -1);
    assert_non_null(strstr(err, "does not open"));
    /* truncated and garbage */
    assert_int_equal(vault_open(k->sk, vault_pub_id(k->pub), "alice", ct, 10, &out, err,
                                sizeof err), -1);
    free(ct);
}

static void another_key_pair_cannot_open(void **state)
{
    struct keys *k = *state;
    char err[256], s2[160], p2[160];
    snprintf(s2, sizeof s2, "%s/s2", k->dir);
    snprintf(p2, sizeof p2, "%s/p2", k->dir);
    assert_int_equal(vault_keygen(s2, p2, err, sizeof err), 0);
    struct vault_secret *other = vault_secret_load(s2, err, sizeof err);
    assert_non_null(other);
    unsigned char *ct;
    size_t ctlen;
    assert_int_equal(vault_seal(k->pub, "u", "pw", 2, &ct, &ctlen, err, sizeof err), 0);
    char *out = NULL;
    assert_int_equal(vault_open(other, vault_pub_id(k->pub), "u", ct, ctlen, &out, err,
                                sizeof err), -1);
    vault_secret_free(other);
    free(ct);
    unlink(s2);
    unlink(p2);
}

static void key_files(void **state)
{
    struct keys *k = *state;
    char err[256];
    struct stat st;
    assert_int_equal(stat(k->secret, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* never overwrites */
    assert_int_equal(vault_keygen(k->secret, k->public_, err, sizeof err), -1);
    assert_non_null(strstr(err, "exists"));
    /* a secret key others can read is refused */
    assert_int_equal(chmod(k->secret, 0644), 0);
    assert_null(vault_secret_load(k->secret, err, sizeof err));
    assert_non_null(strstr(err, "accessible by group or others"));
    assert_int_equal(chmod(k->secret, 0600), 0);
    /* a public key is not a secret key and vice versa */
    assert_null(vault_secret_load(k->public_, err, sizeof err)); /* 0644 → refused by mode */
    assert_null(vault_pub_load(k->secret, err, sizeof err));
    assert_non_null(strstr(err, "not an amtacs public key file"));
    assert_null(vault_pub_load("/nonexistent/key", err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
}

static void bad_inputs(void **state)
{
    struct keys *k = *state;
    char err[256];
    unsigned char *ct = NULL;
    size_t ctlen;
    assert_int_equal(vault_seal(k->pub, "", "pw", 2, &ct, &ctlen, err, sizeof err), -1);
    assert_int_equal(vault_seal(k->pub, "u", "", 0, &ct, &ctlen, err, sizeof err), -1);
    assert_int_equal(vault_seal(k->pub, "u", "a\0b", 3, &ct, &ctlen, err, sizeof err), -1);
    assert_null(ct);
    vault_secret_free(NULL);
    vault_pub_free(NULL);
    vault_password_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seal_and_open),
        cmocka_unit_test(bound_to_user_and_key),
        cmocka_unit_test(another_key_pair_cannot_open),
        cmocka_unit_test(key_files),
        cmocka_unit_test(bad_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
