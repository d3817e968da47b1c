/*
 * webauth: amtacs-web's credentials, without HTTP or SQL. Session cookies and
 * API tokens are 32 random bytes written as base64url; only their SHA-256
 * reaches the database, as a bytea literal "\x<64 hex digits>". Passwords
 * are checked against libsodium's crypto_pwhash_str (argon2id) hashes; an
 * unknown user is checked against a dummy hash, so the time a login takes
 * does not tell whether the name exists.
 */
#ifndef AMTACS_WEBAUTH_H
#define AMTACS_WEBAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <sodium.h>

#define WEBAUTH_SECRET_BYTES 32
/* base64url (no padding) of 32 bytes, plus NUL */
#define WEBAUTH_SECRET_TEXT 44
/* "\x" + 64 hex digits + NUL */
#define WEBAUTH_HASH_HEX 67
#define WEBAUTH_TOKEN_PREFIX "amtacs_"
#define WEBAUTH_COOKIE "amtacs_session"

/* A new secret: its text (for the cookie, or a CSRF token) and the bytea
 * literal of its SHA-256. */
void webauth_new_secret(char text[WEBAUTH_SECRET_TEXT], char hash_hex[WEBAUTH_HASH_HEX]);
/* The SHA-256 of a secret presented as text (base64url of exactly 32
 * bytes); false if it is not one. */
bool webauth_secret_hash(const char *text, size_t len, char hash_hex[WEBAUTH_HASH_HEX]);
/* The same for an API token "amtacs_<base64url>". */
bool webauth_token_hash(const char *token, char hash_hex[WEBAUTH_HASH_HEX]);
/* The value of cookie `name` in a Cookie header into out (NUL-terminated);
 * false if absent or longer than outlen - 1. */
bool webauth_cookie(const char *header, const char *name, char *out, size_t outlen);
/* A hash of a random password, to verify unknown users against. */
bool webauth_dummy_hash(char out[crypto_pwhash_STRBYTES]);
/* A console user's password: at least this many characters (UTF-8), at
 * most this many bytes; amtacsctl user and the API both apply it. */
#define WEBAUTH_PASSWORD_MIN_CHARS 12
#define WEBAUTH_PASSWORD_MAX_BYTES 1024
/* The characters of a UTF-8 text. */
size_t webauth_utf8_chars(const char *s);
/* The crypto_pwhash_str (argon2id) hash of a new password, with the
 * parameters of every hash amtacs makes; false (out of memory) otherwise.
 * The length rule above is the caller's to check first. */
bool webauth_password_hash(const char *pw, size_t pwlen, char out[crypto_pwhash_STRBYTES]);
/* True if pw matches hash (a crypto_pwhash_str string). */
bool webauth_password_ok(const char *hash, const char *pw, size_t pwlen);
/* Compares two texts in time that depends on their lengths only. */
bool webauth_equal(const char *a, const char *b);

#endif
