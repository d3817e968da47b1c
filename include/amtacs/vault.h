/*
 * vault: Batch User passwords sealed with libsodium.
 *
 * A key pair is made once (`amtacsctl keygen`). Whoever sets a password needs
 * only the public key and can never read a password back; only the daemon,
 * holding the secret key, opens it. A sealed password is bound to its Batch
 * User name and to the key id: copied onto another user's row, or opened with
 * another key, it fails to open.
 *
 * The daemon holds a keyring, not one key: during a rotation (`amtacsctl
 * rekey`, docs/keys.md) the rows are sealed under the old or the new key, and
 * both files are on disk, so every password opens at every moment.
 *
 * Sealed format (version 2): 0x02 || crypto_box_seal(pk, pad("amtacs-v2" NUL
 * key_id NUL user NUL password)), where pad() is ISO/IEC 7816-4 padding
 * (sodium_pad) to 1536 bytes: every sealed password is VAULT_SEALED_LEN bytes
 * long, whatever the lengths of user and password. Version 1 (0x01 ||
 * crypto_box_seal(pk, "amtacs-v1" NUL key_id NUL user NUL password), unpadded,
 * its length giving the password's away) still opens; `amtacsctl rekey`
 * re-seals it as version 2. The key id is the hex of the first 8 bytes of
 * BLAKE2b(public key).
 */
#ifndef AMTACS_VAULT_H
#define AMTACS_VAULT_H

#include <stddef.h>

#define VAULT_KEY_ID_LEN 16 /* hex characters, without the NUL */
#define VAULT_MAX_PASSWORD 1024 /* bytes */
#define VAULT_MAX_USER 256      /* bytes */
#define VAULT_SEALED_VERSION 0x02 /* the first byte of what vault_seal() makes */
#define VAULT_SEALED_LEN (1 + 48 + 1536) /* version, crypto_box_SEALBYTES, padded text */

struct vault_pub;    /* a public key: seals */
struct vault_secret; /* a keyring of key pairs: opens; keys live in locked, guarded memory */

/* Initialises libsodium; call once before anything else. 0 or -1. */
int vault_init(void);

/* Makes a key pair and writes the secret key file (mode 0600) and the public
 * key file (0644). Refuses to overwrite either. Each file appears whole or not
 * at all (written aside, then linked into place), so a crash never leaves a
 * truncated key for the daemon to trip over. 0, or -1 with err set. */
int vault_keygen(const char *secret_path, const char *public_path, char *err, size_t errlen);

/* Loads a public key file. NULL with err set on failure. Free with vault_pub_free. */
struct vault_pub *vault_pub_load(const char *path, char *err, size_t errlen);
void vault_pub_free(struct vault_pub *pub);
/* The key id (borrowed, NUL-terminated). */
const char *vault_pub_id(const struct vault_pub *pub);

/* Loads the daemon's keyring: the secret key file `path` and, when they exist,
 * its siblings `path.new` and `path.old` (the key being rotated in and the one
 * being retired: see `amtacsctl rekey` and docs/keys.md). Each file must be a
 * regular file (not a symbolic link), owned by the process's effective user
 * or root, that group and others cannot read, in the secret key format;
 * one that fails a check fails the whole load, so that a damaged key is seen
 * at start and not at the first logon. `path` itself must exist. NULL with err
 * set. Free with vault_secret_free. */
struct vault_secret *vault_secret_load(const char *path, char *err, size_t errlen);
/* Wipes and frees; NULL is a no-op. */
void vault_secret_free(struct vault_secret *sk);
/* The key id of the main file (borrowed; the buffer stays valid until
 * vault_secret_free, its content follows a reload, see vault_open). */
const char *vault_secret_id(const struct vault_secret *sk);

/* The three files of a keyring. */
enum vault_slot { VAULT_SLOT_MAIN, VAULT_SLOT_NEW, VAULT_SLOT_OLD };
/* The key id loaded from that file, or NULL when the file did not exist. */
const char *vault_secret_slot_id(const struct vault_secret *sk, enum vault_slot slot);
/* Writes the loaded key ids for messages ("a1b2... (main), c3d4... (new)"). */
void vault_secret_ids(const struct vault_secret *sk, char *out, size_t outlen);
/* The public half of the loaded key with this id, so that a tool can seal for
 * a key whose .pub file is missing. NULL with err set. Free with vault_pub_free. */
struct vault_pub *vault_secret_pub(const struct vault_secret *sk, const char *key_id, char *err,
                                   size_t errlen);
/* Writes a public key file (0644), atomically: readers see the old file or the
 * complete new one. Replaces an existing file only when `replace`. 0 or -1. */
int vault_pub_save(const struct vault_pub *pub, const char *path, int replace, char *err,
                   size_t errlen);

/* Seals `password` (pwlen bytes, no NUL inside) for `user`. On success *out is
 * a malloc'd buffer of *outlen bytes that the caller frees. 0 or -1. */
int vault_seal(const struct vault_pub *pub, const char *user, const char *password,
               size_t pwlen, unsigned char **out, size_t *outlen, char *err, size_t errlen);

/* Opens a sealed password stored for `user` under `key_id`, with whichever
 * loaded key has that id. When none has it, the key files are read again once
 * (a running daemon thus follows `amtacsctl rekey` without a restart; the
 * keyring then holds what is on disk) before giving up with an error naming
 * the key id and the loaded ones. Not thread-safe for one keyring.
 * On success *password is a NUL-terminated string in guarded memory that the
 * caller releases with vault_password_free(). 0 or -1 (the error never
 * contains the password). */
int vault_open(const struct vault_secret *sk, const char *key_id, const char *user,
               const unsigned char *sealed, size_t sealedlen, char **password, char *err,
               size_t errlen);
/* Wipes and frees a password from vault_open(); NULL is a no-op. */
void vault_password_free(char *password);

#endif
