/*
 * vault: Batch User passwords sealed with libsodium.
 *
 * A key pair is made once (`amtacsctl keygen`). Whoever sets a password needs
 * only the public key and can never read a password back; only the daemon,
 * holding the secret key, opens it. A sealed password is bound to its Batch
 * User name and to the key id: copied onto another user's row, or opened with
 * another key, it fails to open.
 *
 * Sealed format (version 1): 0x01 || crypto_box_seal(pk, "amtacs-v1" NUL
 * key_id NUL user NUL password). The key id is the hex of the first 8 bytes of
 * BLAKE2b(public key).
 */
#ifndef AMTACS_VAULT_H
#define AMTACS_VAULT_H

#include <stddef.h>

#define VAULT_KEY_ID_LEN 16 /* hex characters, without the NUL */
#define VAULT_MAX_PASSWORD 1024

struct vault_pub;    /* a public key: seals */
struct vault_secret; /* a key pair: opens; lives in locked, guarded memory */

/* Initialises libsodium; call once before anything else. 0 or -1. */
int vault_init(void);

/* Makes a key pair and writes the secret key file (mode 0600) and the public
 * key file (0644). Refuses to overwrite either. 0, or -1 with err set. */
int vault_keygen(const char *secret_path, const char *public_path, char *err, size_t errlen);

/* Loads a public key file. NULL with err set on failure. Free with vault_pub_free. */
struct vault_pub *vault_pub_load(const char *path, char *err, size_t errlen);
void vault_pub_free(struct vault_pub *pub);
/* The key id (borrowed, NUL-terminated). */
const char *vault_pub_id(const struct vault_pub *pub);

/* Loads a secret key file, refusing one that group or others can read (or that
 * is not a regular file). NULL with err set. Free with vault_secret_free. */
struct vault_secret *vault_secret_load(const char *path, char *err, size_t errlen);
/* Wipes and frees; NULL is a no-op. */
void vault_secret_free(struct vault_secret *sk);
const char *vault_secret_id(const struct vault_secret *sk);

/* Seals `password` (pwlen bytes, no NUL inside) for `user`. On success *out is
 * a malloc'd buffer of *outlen bytes that the caller frees. 0 or -1. */
int vault_seal(const struct vault_pub *pub, const char *user, const char *password,
               size_t pwlen, unsigned char **out, size_t *outlen, char *err, size_t errlen);

/* Opens a sealed password stored for `user` under `key_id`. On success
 * *password is a NUL-terminated string in guarded memory that the caller
 * releases with vault_password_free(). 0 or -1 (the error never contains the
 * password). */
int vault_open(const struct vault_secret *sk, const char *key_id, const char *user,
               const unsigned char *sealed, size_t sealedlen, char **password, char *err,
               size_t errlen);
/* Wipes and frees a password from vault_open(); NULL is a no-op. */
void vault_password_free(char *password);

#endif
