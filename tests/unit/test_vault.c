#define _GNU_SOURCE /* memmem */
#include <dirent.h>
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

#include <sodium.h>

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
    assert_non_null(strstr(err, vault_pub_id(k->pub))); /* and which key it has */
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


/* Every sealed password has the same length, whatever the lengths of user
 * and password: the stored bytes say nothing of either. */
static void sealed_length_hides_password(void **state)
{
    struct keys *k = *state;
    char err[1024]; /* room for an error naming a 256-byte user */
    char *pw = malloc(VAULT_MAX_PASSWORD + 2), *user = malloc(VAULT_MAX_USER + 2);
    assert_non_null(pw);
    assert_non_null(user);
    memset(pw, 'p', VAULT_MAX_PASSWORD + 1);
    pw[VAULT_MAX_PASSWORD + 1] = '\0';
    memset(user, 'u', VAULT_MAX_USER + 1);
    user[VAULT_MAX_USER + 1] = '\0';
    static const size_t pwlens[] = {1, 2, 17, 100, VAULT_MAX_PASSWORD};
    static const size_t ulens[] = {1, 8, VAULT_MAX_USER};
    for (size_t u = 0; u < sizeof ulens / sizeof ulens[0]; u++) {
        char name[VAULT_MAX_USER + 1];
        memcpy(name, user, ulens[u]);
        name[ulens[u]] = '\0';
        for (size_t i = 0; i < sizeof pwlens / sizeof pwlens[0]; i++) {
            unsigned char *ct;
            size_t ctlen;
            assert_int_equal(vault_seal(k->pub, name, pw, pwlens[i], &ct, &ctlen, err,
                                        sizeof err), 0);
            assert_int_equal(ctlen, VAULT_SEALED_LEN);
            assert_int_equal(ct[0], VAULT_SEALED_VERSION);
            char *out = NULL;
            assert_int_equal(vault_open(k->sk, vault_pub_id(k->pub), name, ct, ctlen, &out, err,
                                        sizeof err), 0);
            assert_int_equal(strlen(out), pwlens[i]);
            assert_memory_equal(out, pw, pwlens[i]);
            vault_password_free(out);
            /* one byte short or long is not a sealed password */
            assert_int_equal(vault_open(k->sk, vault_pub_id(k->pub), name, ct, ctlen - 1, &out,
                                        err, sizeof err), -1);
            assert_non_null(strstr(err, "not a sealed amtacs password"));
            free(ct);
        }
    }
    /* one byte past the maximum: a clear error, nothing sealed */
    unsigned char *ct = NULL;
    size_t ctlen = 0;
    assert_int_equal(vault_seal(k->pub, "u", pw, VAULT_MAX_PASSWORD + 1, &ct, &ctlen, err,
                                sizeof err), -1);
    assert_null(ct);
    assert_non_null(strstr(err, "password must have 1 to 1024 bytes"));
    assert_non_null(strstr(err, "this one has 1025"));
    assert_int_equal(vault_seal(k->pub, user, "pw", 2, &ct, &ctlen, err, sizeof err), -1);
    assert_null(ct);
    assert_non_null(strstr(err, "Batch User name must have 1 to 256 bytes"));
    free(pw);
    free(user);
}

/* A password sealed by an earlier release (version 1: unpadded) still opens. */
static void version_1_still_opens(void **state)
{
    struct keys *k = *state;
    char err[256], text[256], header[64], id[32], b64[128];
    FILE *f = fopen(k->public_, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_int_equal(sscanf(text, "%63s %31s %127s", header, id, b64), 3);
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    size_t got;
    assert_int_equal(sodium_base642bin(pk, sizeof pk, b64, strlen(b64), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    const char *user = "amtopcon", *pw = "old-s3cret";
    unsigned char m[128];
    size_t mlen = 0;
    memcpy(m, "amtacs-v1", 10);
    mlen += 10;
    memcpy(m + mlen, id, strlen(id) + 1);
    mlen += strlen(id) + 1;
    memcpy(m + mlen, user, strlen(user) + 1);
    mlen += strlen(user) + 1;
    memcpy(m + mlen, pw, strlen(pw));
    mlen += strlen(pw);
    unsigned char ct[1 + crypto_box_SEALBYTES + sizeof m];
    ct[0] = 0x01;
    assert_int_equal(crypto_box_seal(ct + 1, m, mlen, pk), 0);
    size_t ctlen = 1 + crypto_box_SEALBYTES + mlen;
    assert_int_equal(ctlen, 77 + strlen(user) + strlen(pw)); /* what version 1 gave away */
    char *out = NULL;
    assert_int_equal(vault_open(k->sk, id, user, ct, ctlen, &out, err, sizeof err), 0);
    assert_string_equal(out, pw);
    vault_password_free(out);
    /* still bound to its user */
    assert_int_equal(vault_open(k->sk, id, "bob", ct, ctlen, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "sealed for another user or key"));
    /* a version 2 header on version 1 contents does not open */
    ct[0] = VAULT_SEALED_VERSION;
    assert_int_equal(vault_open(k->sk, id, user, ct, ctlen, &out, err, sizeof err), -1);
}

/* A secret key file of another user is refused, even at mode 0600. */
static void secret_key_owner(void **state)
{
    struct keys *k = *state;
    char err[256];
    if (geteuid() != 0) {
        print_message("skipped: changing a file's owner takes root (the CI runs as root)\n");
        skip();
    }
    assert_int_equal(chown(k->secret, 65534, 65534), 0); /* nobody */
    assert_null(vault_secret_load(k->secret, err, sizeof err));
    assert_non_null(strstr(err, "owned by uid 65534, not by this process's user (uid 0)"));
    assert_int_equal(chown(k->secret, 0, 0), 0);
    struct vault_secret *sk = vault_secret_load(k->secret, err, sizeof err);
    assert_non_null(sk);
    vault_secret_free(sk);
    /* a symbolic link to it is refused too */
    char link_path[160];
    snprintf(link_path, sizeof link_path, "%s/link.key", k->dir);
    assert_int_equal(symlink(k->secret, link_path), 0);
    assert_null(vault_secret_load(link_path, err, sizeof err));
    unlink(link_path);
}

/* ------------------------------------------------------------ keyring */

/* A directory with key pairs made by vault_keygen: NAME and NAME.pub. */
struct ring_dir {
    char dir[64];
    char key[128]; /* the main secret key file; siblings are key.new, key.old */
};

static void ring_dir_make(struct ring_dir *d)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/amtacs-ring.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->key, sizeof d->key, "%s/secret.key", d->dir);
}

/* Makes key pair `suffix` ("" main, ".new", ".old") and returns its public key. */
static struct vault_pub *ring_keygen(const struct ring_dir *d, const char *suffix)
{
    char s[160], p[170], err[256];
    snprintf(s, sizeof s, "%s%s", d->key, suffix);
    snprintf(p, sizeof p, "%s.pub", s);
    assert_int_equal(vault_keygen(s, p, err, sizeof err), 0);
    struct vault_pub *pub = vault_pub_load(p, err, sizeof err);
    assert_non_null(pub);
    return pub;
}

static void ring_dir_remove(struct ring_dir *d)
{
    DIR *dir = opendir(d->dir);
    struct dirent *e;
    char path[400];
    while (dir && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", d->dir, e->d_name);
        if (unlink(path))
            rmdir(path);
    }
    if (dir)
        closedir(dir);
    rmdir(d->dir);
}

/* Seals "pw-USER" for USER under pub and opens it with the keyring: 0 or -1. */
static int seal_then_open(const struct vault_pub *pub, const struct vault_secret *sk,
                          const char *user, char *err, size_t errlen)
{
    unsigned char *ct;
    size_t ctlen;
    char pw[64];
    snprintf(pw, sizeof pw, "pw-%s", user);
    assert_int_equal(vault_seal(pub, user, pw, strlen(pw), &ct, &ctlen, err, errlen), 0);
    char *out = NULL;
    int rc = vault_open(sk, vault_pub_id(pub), user, ct, ctlen, &out, err, errlen);
    if (rc == 0)
        assert_string_equal(out, pw);
    else
        assert_null(strstr(err, pw)); /* the error never shows the password */
    vault_password_free(out);
    free(ct);
    return rc;
}

static void keyring_loads_new_and_old(void **state)
{
    (void)state;
    struct ring_dir d;
    char err[512];
    ring_dir_make(&d);
    struct vault_pub *main_pub = ring_keygen(&d, "");
    struct vault_pub *new_pub = ring_keygen(&d, ".new");
    struct vault_pub *old_pub = ring_keygen(&d, ".old");
    struct vault_secret *sk = vault_secret_load(d.key, err, sizeof err);
    assert_non_null(sk);
    assert_string_equal(vault_secret_id(sk), vault_pub_id(main_pub));
    assert_string_equal(vault_secret_slot_id(sk, VAULT_SLOT_MAIN), vault_pub_id(main_pub));
    assert_string_equal(vault_secret_slot_id(sk, VAULT_SLOT_NEW), vault_pub_id(new_pub));
    assert_string_equal(vault_secret_slot_id(sk, VAULT_SLOT_OLD), vault_pub_id(old_pub));
    /* every loaded key opens what was sealed for it */
    assert_int_equal(seal_then_open(main_pub, sk, "alice", err, sizeof err), 0);
    assert_int_equal(seal_then_open(new_pub, sk, "bob", err, sizeof err), 0);
    assert_int_equal(seal_then_open(old_pub, sk, "carol", err, sizeof err), 0);
    char ids[200];
    vault_secret_ids(sk, ids, sizeof ids);
    assert_non_null(strstr(ids, vault_pub_id(new_pub)));
    assert_non_null(strstr(ids, "(old)"));
    vault_secret_free(sk);

    /* siblings are optional: the main file alone is a keyring of one */
    char path[200];
    snprintf(path, sizeof path, "%s.old", d.key);
    assert_int_equal(unlink(path), 0);
    sk = vault_secret_load(d.key, err, sizeof err);
    assert_non_null(sk);
    assert_null(vault_secret_slot_id(sk, VAULT_SLOT_OLD));
    assert_non_null(vault_secret_slot_id(sk, VAULT_SLOT_NEW));
    vault_secret_free(sk);
    vault_pub_free(main_pub);
    vault_pub_free(new_pub);
    vault_pub_free(old_pub);
    ring_dir_remove(&d);
}

static void keyring_siblings_are_checked(void **state)
{
    (void)state;
    struct ring_dir d;
    char err[512], path[200];
    ring_dir_make(&d);
    struct vault_pub *main_pub = ring_keygen(&d, "");
    struct vault_pub *new_pub = ring_keygen(&d, ".new");
    snprintf(path, sizeof path, "%s.new", d.key);
    /* readable by others: refused, and the file is named */
    assert_int_equal(chmod(path, 0640), 0);
    assert_null(vault_secret_load(d.key, err, sizeof err));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "accessible by group or others"));
    assert_int_equal(chmod(path, 0600), 0);
    /* not in the secret key format */
    snprintf(path, sizeof path, "%s.old", d.key);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("amtacs-secret-key-v1 0123456789abcdef garbage\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    assert_null(vault_secret_load(d.key, err, sizeof err));
    assert_non_null(strstr(err, "not an amtacs secret key file"));
    assert_non_null(strstr(err, ".old"));
    /* not a regular file */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_null(vault_secret_load(d.key, err, sizeof err));
    assert_non_null(strstr(err, ".old"));
    assert_int_equal(rmdir(path), 0);
    /* a symbolic link is not followed */
    assert_int_equal(symlink(d.key, path), 0);
    assert_null(vault_secret_load(d.key, err, sizeof err));
    assert_int_equal(unlink(path), 0);
    /* the main file is required */
    char moved[200];
    snprintf(moved, sizeof moved, "%s.moved", d.key);
    assert_int_equal(rename(d.key, moved), 0);
    assert_null(vault_secret_load(d.key, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(rename(moved, d.key), 0);
    struct vault_secret *sk = vault_secret_load(d.key, err, sizeof err);
    assert_non_null(sk);
    vault_secret_free(sk);
    vault_pub_free(main_pub);
    vault_pub_free(new_pub);
    ring_dir_remove(&d);
}

static void keyring_unknown_key_id(void **state)
{
    (void)state;
    struct ring_dir d, other;
    char err[512];
    ring_dir_make(&d);
    ring_dir_make(&other);
    struct vault_pub *main_pub = ring_keygen(&d, "");
    struct vault_pub *new_pub = ring_keygen(&d, ".new");
    struct vault_pub *stranger = ring_keygen(&other, "");
    struct vault_secret *sk = vault_secret_load(d.key, err, sizeof err);
    assert_non_null(sk);
    assert_int_equal(seal_then_open(stranger, sk, "alice", err, sizeof err), -1);
    /* names the key id it needed and every one it has */
    assert_non_null(strstr(err, vault_pub_id(stranger)));
    assert_non_null(strstr(err, vault_pub_id(main_pub)));
    assert_non_null(strstr(err, vault_pub_id(new_pub)));
    assert_non_null(strstr(err, "not among the keys loaded"));
    vault_secret_free(sk);
    vault_pub_free(main_pub);
    vault_pub_free(new_pub);
    vault_pub_free(stranger);
    ring_dir_remove(&d);
    ring_dir_remove(&other);
}

/* A daemon loaded before a rotation follows it: a key id it does not hold
 * makes it read the key files again. */
static void keyring_follows_rotation(void **state)
{
    (void)state;
    struct ring_dir d;
    char err[512], key_new[200], key_old[200];
    ring_dir_make(&d);
    struct vault_pub *a = ring_keygen(&d, "");
    struct vault_secret *sk = vault_secret_load(d.key, err, sizeof err);
    assert_non_null(sk);
    const char *id = vault_secret_id(sk);
    assert_string_equal(id, vault_pub_id(a));
    assert_null(vault_secret_slot_id(sk, VAULT_SLOT_NEW));

    struct vault_pub *b = ring_keygen(&d, ".new"); /* rekey: a new pair appears */
    assert_int_equal(seal_then_open(b, sk, "bob", err, sizeof err), 0);
    assert_string_equal(vault_secret_slot_id(sk, VAULT_SLOT_NEW), vault_pub_id(b));
    assert_int_equal(seal_then_open(a, sk, "alice", err, sizeof err), 0);

    /* rekey: KEY -> KEY.old, KEY.new -> KEY */
    snprintf(key_new, sizeof key_new, "%s.new", d.key);
    snprintf(key_old, sizeof key_old, "%s.old", d.key);
    assert_int_equal(link(d.key, key_old), 0);
    assert_int_equal(rename(key_new, d.key), 0);
    char pub_new[220], pub[220];
    snprintf(pub_new, sizeof pub_new, "%s.pub", key_new);
    snprintf(pub, sizeof pub, "%s.pub", d.key);
    assert_int_equal(rename(pub_new, pub), 0);
    assert_int_equal(unlink(key_old), 0);
    /* still the loaded keys: no reload while every id is known */
    assert_int_equal(seal_then_open(a, sk, "alice", err, sizeof err), 0);
    struct vault_pub *c = ring_keygen(&d, ".new"); /* and the next rotation */
    assert_int_equal(seal_then_open(c, sk, "carol", err, sizeof err), 0);
    /* the reload replaced the keyring with the files: A is gone, B is main */
    assert_string_equal(id, vault_pub_id(b)); /* the same buffer, now B */
    assert_int_equal(seal_then_open(a, sk, "alice", err, sizeof err), -1);
    assert_non_null(strstr(err, vault_pub_id(a)));
    assert_int_equal(seal_then_open(b, sk, "bob", err, sizeof err), 0);

    /* a damaged file on disk: the keyring stays as it was, the error says why */
    struct vault_pub *stranger_pub = NULL;
    {
        struct ring_dir o;
        ring_dir_make(&o);
        stranger_pub = ring_keygen(&o, "");
        ring_dir_remove(&o);
    }
    assert_int_equal(chmod(key_new, 0644), 0);
    assert_int_equal(seal_then_open(stranger_pub, sk, "dave", err, sizeof err), -1);
    assert_non_null(strstr(err, "re-reading the key files failed"));
    assert_non_null(strstr(err, "accessible by group or others"));
    assert_int_equal(seal_then_open(c, sk, "carol", err, sizeof err), 0);
    vault_secret_free(sk);
    vault_pub_free(a);
    vault_pub_free(b);
    vault_pub_free(c);
    vault_pub_free(stranger_pub);
    ring_dir_remove(&d);
}

static void keyring_public_half(void **state)
{
    (void)state;
    struct ring_dir d;
    char err[512], path[200];
    ring_dir_make(&d);
    struct vault_pub *a = ring_keygen(&d, "");
    struct vault_pub *b = ring_keygen(&d, ".new");
    struct vault_secret *sk = vault_secret_load(d.key, err, sizeof err);
    assert_non_null(sk);
    /* the public half of KEY.new, without its .pub file */
    snprintf(path, sizeof path, "%s.new.pub", d.key);
    assert_int_equal(unlink(path), 0);
    struct vault_pub *b2 = vault_secret_pub(sk, vault_pub_id(b), err, sizeof err);
    assert_non_null(b2);
    assert_string_equal(vault_pub_id(b2), vault_pub_id(b));
    assert_int_equal(seal_then_open(b2, sk, "bob", err, sizeof err), 0);
    assert_null(vault_secret_pub(sk, "0123456789abcdef", err, sizeof err));
    assert_non_null(strstr(err, "0123456789abcdef"));
    /* written back: mode 0644, loadable, not overwritten unless asked */
    assert_int_equal(vault_pub_save(b2, path, 0, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    struct vault_pub *b3 = vault_pub_load(path, err, sizeof err);
    assert_non_null(b3);
    assert_string_equal(vault_pub_id(b3), vault_pub_id(b));
    snprintf(path, sizeof path, "%s.pub", d.key);
    assert_int_equal(vault_pub_save(b2, path, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(vault_pub_save(b2, path, 1, err, sizeof err), 0);
    struct vault_pub *replaced = vault_pub_load(path, err, sizeof err);
    assert_non_null(replaced);
    assert_string_equal(vault_pub_id(replaced), vault_pub_id(b));
    /* no temporary file is left behind */
    DIR *dir = opendir(d.dir);
    struct dirent *e;
    while ((e = readdir(dir)))
        assert_null(strstr(e->d_name, ".tmp."));
    closedir(dir);
    vault_secret_free(sk);
    vault_pub_free(a);
    vault_pub_free(b);
    vault_pub_free(b2);
    vault_pub_free(b3);
    vault_pub_free(replaced);
    ring_dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seal_and_open),
        cmocka_unit_test(bound_to_user_and_key),
        cmocka_unit_test(another_key_pair_cannot_open),
        cmocka_unit_test(key_files),
        cmocka_unit_test(bad_inputs),
        cmocka_unit_test(sealed_length_hides_password),
        cmocka_unit_test(version_1_still_opens),
        cmocka_unit_test(secret_key_owner),
        cmocka_unit_test(keyring_loads_new_and_old),
        cmocka_unit_test(keyring_siblings_are_checked),
        cmocka_unit_test(keyring_unknown_key_id),
        cmocka_unit_test(keyring_follows_rotation),
        cmocka_unit_test(keyring_public_half),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
