#define _DEFAULT_SOURCE /* fchmod, O_NOFOLLOW */
#include "amtacs/vault.h"
#include "amtacs/secfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VAULT_VERSION VAULT_SEALED_VERSION
#define VAULT_VERSION_1 0x01 /* unpadded: still opens (databases sealed before 2) */
#define MAGIC_1 "amtacs-v1"
#define MAGIC "amtacs-v2"
/* Every version 2 plaintext is padded to this size (ISO/IEC 7816-4), which
 * holds the longest header, user and password, so the sealed length says
 * nothing of either. */
#define PADDED_LEN 1536
_Static_assert(VAULT_SEALED_LEN == 1 + crypto_box_SEALBYTES + PADDED_LEN, "sealed length");
_Static_assert(sizeof MAGIC + VAULT_KEY_ID_LEN + 1 + VAULT_MAX_USER + 1 + VAULT_MAX_PASSWORD <
                   PADDED_LEN,
               "the padded plaintext holds the longest user and password");
#define SECRET_HEADER "amtacs-secret-key-v1"
#define PUBLIC_HEADER "amtacs-public-key-v1"
#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL

struct vault_pub {
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    char id[VAULT_KEY_ID_LEN + 1];
};

/* One key pair, in sodium_malloc'd memory made read-only once loaded. */
struct vault_key {
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    unsigned char sk[crypto_box_SECRETKEYBYTES];
    char id[VAULT_KEY_ID_LEN + 1];
};

#define N_SLOTS 3
static const char *const slot_suffix[N_SLOTS] = {"", ".new", ".old"};
static const char *const slot_name[N_SLOTS] = {"main", "new", "old"};

/* The keys themselves live in guarded memory; this holds pointers and names. */
struct keyring {
    char *path;                             /* the main file; siblings are derived */
    char main_id[VAULT_KEY_ID_LEN + 1];     /* stable buffer for vault_secret_id() */
    struct vault_key *slot[N_SLOTS];        /* main, .new, .old; NULL when absent */
};

struct vault_secret {
    /* vault_open() gets a const keyring yet may reload it: the mutable part
     * sits behind this pointer. */
    struct keyring *kr;
};

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int vault_init(void) { return sodium_init() < 0 ? -1 : 0; }

static void key_id(const unsigned char *pk, char *out)
{
    unsigned char h[8];
    crypto_generichash(h, sizeof h, pk, crypto_box_PUBLICKEYBYTES, NULL, 0);
    sodium_bin2hex(out, VAULT_KEY_ID_LEN + 1, h, sizeof h);
}

/* fsyncs the directory holding `path`, so that a link or rename survives a
 * power cut too (a kill -9 alone would not need it). Best effort. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Writes a small file whole or not at all: into a temporary sibling first
 * (mkstemp: mode 0600, so nobody reads a secret in the making), then linked
 * into place, which refuses an existing file, or renamed over it when
 * `replace`. A crash leaves at worst a stray "path.tmp.XXXXXX", never a
 * truncated key that would stop the daemon from starting. */
static int write_file(const char *path, mode_t mode, const char *text, int replace, char *err,
                      size_t errlen)
{
    int rc = -1, renamed = 0;
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(n);
    if (!tmp) {
        fail(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fail(err, errlen, "%s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t len = strlen(text), done = 0;
    int bad = fchmod(fd, mode); /* the umask must not widen or narrow the intent */
    while (!bad && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bad = -1;
            break;
        }
        done += (size_t)w;
    }
    if (!bad)
        bad = fsync(fd);
    if (close(fd) && !bad)
        bad = -1;
    if (bad) {
        fail(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (replace ? rename(tmp, path) : link(tmp, path)) {
        if (errno == EEXIST)
            fail(err, errlen, "%s: already exists; not overwriting a key", path);
        else
            fail(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    renamed = replace;
    sync_dir(path);
    rc = 0;
out:
    if (!renamed)
        unlink(tmp);
    free(tmp);
    return rc;
}

int vault_keygen(const char *secret_path, const char *public_path, char *err, size_t errlen)
{
    int rc = -1;
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    unsigned char *sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    size_t b64sk_len = sodium_base64_encoded_len(crypto_box_SECRETKEYBYTES, B64_VARIANT);
    size_t b64pk_len = sodium_base64_encoded_len(crypto_box_PUBLICKEYBYTES, B64_VARIANT);
    size_t text_len = sizeof SECRET_HEADER + VAULT_KEY_ID_LEN + b64sk_len + b64pk_len + 8;
    char *text = sodium_malloc(text_len);
    char b64pk[128], id[VAULT_KEY_ID_LEN + 1], pubtext[256];
    if (!sk || !text) {
        fail(err, errlen, "out of memory");
        goto out;
    }
    crypto_box_keypair(pk, sk);
    key_id(pk, id);
    sodium_bin2base64(b64pk, sizeof b64pk, pk, sizeof pk, B64_VARIANT);
    char *b64sk = sodium_malloc(b64sk_len);
    if (!b64sk) {
        fail(err, errlen, "out of memory");
        goto out;
    }
    sodium_bin2base64(b64sk, b64sk_len, sk, crypto_box_SECRETKEYBYTES, B64_VARIANT);
    snprintf(text, text_len, "%s %s %s %s\n", SECRET_HEADER, id, b64sk, b64pk);
    sodium_free(b64sk);
    snprintf(pubtext, sizeof pubtext, "%s %s %s\n", PUBLIC_HEADER, id, b64pk);
    if (access(public_path, F_OK) == 0) {
        fail(err, errlen, "%s: already exists; not overwriting a key", public_path);
        goto out;
    }
    if (write_file(secret_path, 0600, text, 0, err, errlen))
        goto out;
    if (write_file(public_path, 0644, pubtext, 0, err, errlen)) {
        unlink(secret_path);
        goto out;
    }
    rc = 0;
out:
    sodium_free(sk);
    sodium_free(text);
    return rc;
}

/* The largest key file: a header, a key id and a hex key or two. */
#define KEY_FILE_MAX 1024

/* Reads a small key file into guarded memory, never through a symbolic link.
 * A secret key (`private`) is read by secfile_read, which holds the one rule
 * for secret files: owned by our effective user or root (another user's file,
 * even 0600, could have been swapped for a key of theirs) and closed to group
 * and others. When `missing` is given, a file that does not exist sets it
 * (no error). */
static char *read_key_file(const char *path, int private, int *missing, char *err,
                           size_t errlen)
{
    struct stat st;
    if (missing && lstat(path, &st) && errno == ENOENT) {
        *missing = 1;
        return NULL;
    }
    char *text = sodium_malloc(KEY_FILE_MAX + 1);
    if (!text) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    size_t len = 0;
    if (private) {
        if (secfile_read("secret key file", path, (unsigned char *)text, KEY_FILE_MAX, &len, err,
                         errlen))
            goto fail;
    } else {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st)) {
            fail(err, errlen, "%s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
            fail(err, errlen, "%s: not a regular file", path);
            close(fd);
            goto fail;
        }
        for (;;) {
            ssize_t n = read(fd, text + len, KEY_FILE_MAX + 1 - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                fail(err, errlen, "%s: read error", path);
                close(fd);
                goto fail;
            }
            if (n == 0)
                break;
            len += (size_t)n;
            if (len > KEY_FILE_MAX)
                break;
        }
        close(fd);
    }
    if (len == 0 || len > KEY_FILE_MAX) {
        fail(err, errlen, "%s: not an amtacs key file (size %s)", path,
             len == 0 ? "0" : "over 1024 bytes");
        goto fail;
    }
    text[len] = '\0';
    return text;
fail:
    sodium_free(text);
    return NULL;
}

/* Splits "HEADER ID FIELD [FIELD]\n" in place; returns the number of fields. */
static int split(char *text, char **f, int max)
{
    int n = 0;
    char *p = text;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\n')
            p++;
        if (!*p)
            break;
        f[n++] = p;
        while (*p && *p != ' ' && *p != '\n')
            p++;
        if (*p)
            *p++ = '\0';
    }
    while (*p == ' ' || *p == '\n')
        p++;
    return *p ? -1 : n;
}

static int decode(const char *b64, unsigned char *out, size_t outlen)
{
    size_t got;
    if (sodium_base642bin(out, outlen, b64, strlen(b64), NULL, &got, NULL, B64_VARIANT) ||
        got != outlen)
        return -1;
    return 0;
}

struct vault_pub *vault_pub_load(const char *path, char *err, size_t errlen)
{
    char *text = read_key_file(path, 0, NULL, err, errlen);
    if (!text)
        return NULL;
    struct vault_pub *pub = calloc(1, sizeof *pub);
    char *f[4];
    if (!pub) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    if (split(text, f, 4) != 3 || strcmp(f[0], PUBLIC_HEADER) ||
        decode(f[2], pub->pk, sizeof pub->pk)) {
        fail(err, errlen, "%s: not an amtacs public key file", path);
        goto bad;
    }
    key_id(pub->pk, pub->id);
    if (strcmp(pub->id, f[1])) {
        fail(err, errlen, "%s: key id does not match the key (file damaged?)", path);
        goto bad;
    }
    sodium_free(text);
    return pub;
bad:
    free(pub);
    sodium_free(text);
    return NULL;
}

void vault_pub_free(struct vault_pub *pub) { free(pub); }

const char *vault_pub_id(const struct vault_pub *pub) { return pub->id; }

/* Loads one secret key file into *out. With `optional`, a missing file gives
 * 0 and *out NULL. 0 or -1 with err set. */
static int load_key(const char *path, int optional, struct vault_key **out, char *err,
                    size_t errlen)
{
    int missing = 0;
    *out = NULL;
    char *text = read_key_file(path, 1, optional ? &missing : NULL, err, errlen);
    if (!text)
        return missing ? 0 : -1;
    struct vault_key *k = sodium_malloc(sizeof *k);
    char *f[5];
    unsigned char check[crypto_box_PUBLICKEYBYTES];
    if (!k) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    if (split(text, f, 5) != 4 || strcmp(f[0], SECRET_HEADER) ||
        decode(f[2], k->sk, sizeof k->sk) || decode(f[3], k->pk, sizeof k->pk)) {
        fail(err, errlen, "%s: not an amtacs secret key file", path);
        goto bad;
    }
    crypto_scalarmult_base(check, k->sk);
    key_id(k->pk, k->id);
    if (sodium_memcmp(check, k->pk, sizeof check) || strcmp(k->id, f[1])) {
        fail(err, errlen, "%s: secret and public halves do not match (file damaged?)", path);
        goto bad;
    }
    sodium_free(text);
    sodium_mprotect_readonly(k);
    *out = k;
    return 0;
bad:
    if (k)
        sodium_free(k);
    sodium_free(text);
    return -1;
}

static void free_slots(struct vault_key **slot)
{
    for (int i = 0; i < N_SLOTS; i++) {
        if (slot[i])
            sodium_free(slot[i]); /* sodium_free wipes before releasing */
        slot[i] = NULL;
    }
}

/* Loads path, path.new and path.old into slot[]: all of them or none. */
static int load_slots(const char *path, struct vault_key **slot, char *err, size_t errlen)
{
    size_t n = strlen(path) + 8;
    char *name = malloc(n);
    if (!name) {
        fail(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < N_SLOTS && !rc; i++) {
        snprintf(name, n, "%s%s", path, slot_suffix[i]);
        rc = load_key(name, i > 0, &slot[i], err, errlen);
    }
    free(name);
    if (rc)
        free_slots(slot);
    return rc;
}

struct vault_secret *vault_secret_load(const char *path, char *err, size_t errlen)
{
    struct vault_secret *sk = calloc(1, sizeof *sk);
    struct keyring *kr = calloc(1, sizeof *kr);
    if (!sk || !kr || !(kr->path = strdup(path))) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    if (load_slots(path, kr->slot, err, errlen))
        goto bad;
    memcpy(kr->main_id, kr->slot[VAULT_SLOT_MAIN]->id, sizeof kr->main_id);
    sk->kr = kr;
    return sk;
bad:
    if (kr)
        free(kr->path);
    free(kr);
    free(sk);
    return NULL;
}

/* Replaces the keyring with what the files hold now; keeps it on failure. */
static int reload(struct keyring *kr, char *err, size_t errlen)
{
    struct vault_key *fresh[N_SLOTS] = {NULL};
    if (load_slots(kr->path, fresh, err, errlen))
        return -1;
    free_slots(kr->slot);
    memcpy(kr->slot, fresh, sizeof fresh);
    memcpy(kr->main_id, kr->slot[VAULT_SLOT_MAIN]->id, sizeof kr->main_id);
    return 0;
}

void vault_secret_free(struct vault_secret *sk)
{
    if (!sk)
        return;
    free_slots(sk->kr->slot);
    free(sk->kr->path);
    free(sk->kr);
    free(sk);
}

const char *vault_secret_id(const struct vault_secret *sk) { return sk->kr->main_id; }

const char *vault_secret_slot_id(const struct vault_secret *sk, enum vault_slot slot)
{
    if ((int)slot < 0 || slot >= N_SLOTS || !sk->kr->slot[slot])
        return NULL;
    return sk->kr->slot[slot]->id;
}

void vault_secret_ids(const struct vault_secret *sk, char *out, size_t outlen)
{
    size_t used = 0;
    if (outlen)
        out[0] = '\0';
    for (int i = 0; i < N_SLOTS; i++) {
        if (!sk->kr->slot[i] || used >= outlen)
            continue;
        int w = snprintf(out + used, outlen - used, "%s%s (%s)", used ? ", " : "",
                         sk->kr->slot[i]->id, slot_name[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

static const struct vault_key *find_key(const struct keyring *kr, const char *id)
{
    for (int i = 0; i < N_SLOTS; i++)
        if (kr->slot[i] && !strcmp(kr->slot[i]->id, id))
            return kr->slot[i];
    return NULL;
}

struct vault_pub *vault_secret_pub(const struct vault_secret *sk, const char *key_id, char *err,
                                   size_t errlen)
{
    const struct vault_key *k = find_key(sk->kr, key_id);
    if (!k) {
        fail(err, errlen, "key %s is not loaded", key_id);
        return NULL;
    }
    struct vault_pub *pub = calloc(1, sizeof *pub);
    if (!pub) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(pub->pk, k->pk, sizeof pub->pk);
    memcpy(pub->id, k->id, sizeof pub->id);
    return pub;
}

int vault_pub_save(const struct vault_pub *pub, const char *path, int replace, char *err,
                   size_t errlen)
{
    char b64pk[128], text[256];
    sodium_bin2base64(b64pk, sizeof b64pk, pub->pk, sizeof pub->pk, B64_VARIANT);
    snprintf(text, sizeof text, "%s %s %s\n", PUBLIC_HEADER, pub->id, b64pk);
    return write_file(path, 0644, text, replace, err, errlen);
}

static int valid_text(const char *s, size_t n)
{
    return memchr(s, '\0', n) == NULL;
}

int vault_seal(const struct vault_pub *pub, const char *user, const char *password,
               size_t pwlen, unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    size_t ulen = strlen(user);
    if (!ulen || ulen > VAULT_MAX_USER) {
        fail(err, errlen, "Batch User name must have 1 to %d bytes", VAULT_MAX_USER);
        return -1;
    }
    if (!pwlen || pwlen > VAULT_MAX_PASSWORD || !valid_text(password, pwlen)) {
        fail(err, errlen, "password must have 1 to %d bytes and no NUL byte (this one has %zu)",
             VAULT_MAX_PASSWORD, pwlen);
        return -1;
    }
    size_t used = sizeof MAGIC + VAULT_KEY_ID_LEN + 1 + ulen + 1 + pwlen, mlen = 0;
    unsigned char *m = sodium_malloc(PADDED_LEN);
    unsigned char *c = malloc(VAULT_SEALED_LEN);
    if (!m || !c) {
        sodium_free(m);
        free(c);
        fail(err, errlen, "out of memory");
        return -1;
    }
    unsigned char *p = m;
    memcpy(p, MAGIC, sizeof MAGIC);
    p += sizeof MAGIC;
    memcpy(p, pub->id, VAULT_KEY_ID_LEN + 1);
    p += VAULT_KEY_ID_LEN + 1;
    memcpy(p, user, ulen + 1);
    p += ulen + 1;
    memcpy(p, password, pwlen);
    c[0] = VAULT_VERSION;
    int rc = sodium_pad(&mlen, m, used, PADDED_LEN, PADDED_LEN);
    if (!rc && mlen != PADDED_LEN)
        rc = -1;
    if (!rc)
        rc = crypto_box_seal(c + 1, m, mlen, pub->pk);
    sodium_free(m);
    if (rc) {
        free(c);
        fail(err, errlen, "sealing failed");
        return -1;
    }
    *out = c;
    *outlen = VAULT_SEALED_LEN;
    return 0;
}

int vault_open(const struct vault_secret *sk, const char *key_id, const char *user,
               const unsigned char *sealed, size_t sealedlen, char **password, char *err,
               size_t errlen)
{
    const struct vault_key *k = find_key(sk->kr, key_id);
    char why[256] = "";
    if (!k) {
        /* Rotated since we loaded (amtacsctl rekey re-seals, then renames): the
         * files on disk hold the key that the row now names. */
        if (reload(sk->kr, why, sizeof why) == 0)
            k = find_key(sk->kr, key_id);
    }
    if (!k) {
        char ids[160];
        vault_secret_ids(sk, ids, sizeof ids);
        fail(err, errlen,
             "password of Batch User '%s' is sealed with key %s, which is not among the keys "
             "loaded from %s: %s%s%s",
             user, key_id, sk->kr->path, ids, *why ? "; re-reading the key files failed: " : "",
             why);
        return -1;
    }
    int v2 = sealedlen && sealed[0] == VAULT_VERSION;
    if (sealedlen < 1 + crypto_box_SEALBYTES + sizeof MAGIC ||
        (sealed[0] != VAULT_VERSION && sealed[0] != VAULT_VERSION_1) ||
        sealedlen > 1 + crypto_box_SEALBYTES + 4096 || (v2 && sealedlen != VAULT_SEALED_LEN)) {
        fail(err, errlen, "password of Batch User '%s' is not a sealed amtacs password", user);
        return -1;
    }
    size_t mlen = sealedlen - 1 - crypto_box_SEALBYTES;
    unsigned char *m = sodium_malloc(mlen + 1);
    if (!m) {
        fail(err, errlen, "out of memory");
        return -1;
    }
    if (crypto_box_seal_open(m, sealed + 1, sealedlen - 1, k->pk, k->sk)) {
        fail(err, errlen, "password of Batch User '%s' does not open with key %s", user, k->id);
        goto bad;
    }
    if (v2) {
        size_t unpadded;
        if (sodium_unpad(&unpadded, m, mlen, PADDED_LEN)) {
            fail(err, errlen, "password of Batch User '%s' is not a sealed amtacs password "
                              "(bad padding)", user);
            goto bad;
        }
        mlen = unpadded;
    }
    m[mlen] = '\0';
    size_t ulen = strlen(user);
    size_t head = sizeof MAGIC + VAULT_KEY_ID_LEN + 1 + ulen + 1;
    if (mlen <= head || memcmp(m, v2 ? MAGIC : MAGIC_1, sizeof MAGIC) ||
        memcmp(m + sizeof MAGIC, key_id, VAULT_KEY_ID_LEN + 1) ||
        memcmp(m + sizeof MAGIC + VAULT_KEY_ID_LEN + 1, user, ulen + 1)) {
        fail(err, errlen, "password stored for Batch User '%s' was sealed for another user or key",
             user);
        goto bad;
    }
    size_t pwlen = mlen - head;
    char *pw = sodium_malloc(pwlen + 1);
    if (!pw) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    memcpy(pw, m + head, pwlen);
    pw[pwlen] = '\0';
    sodium_free(m);
    *password = pw;
    return 0;
bad:
    sodium_free(m);
    return -1;
}

void vault_password_free(char *password)
{
    if (password)
        sodium_free(password);
}
