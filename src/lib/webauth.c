#include "amtacs/webauth.h"

#include <string.h>

static void hash_hex(const unsigned char raw[WEBAUTH_SECRET_BYTES], char out[WEBAUTH_HASH_HEX])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, raw, WEBAUTH_SECRET_BYTES);
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, WEBAUTH_HASH_HEX - 2, d, sizeof d);
    sodium_memzero(d, sizeof d);
}

void webauth_new_secret(char text[WEBAUTH_SECRET_TEXT], char out[WEBAUTH_HASH_HEX])
{
    unsigned char raw[WEBAUTH_SECRET_BYTES];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(text, WEBAUTH_SECRET_TEXT, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    hash_hex(raw, out);
    sodium_memzero(raw, sizeof raw);
}

bool webauth_secret_hash(const char *text, size_t len, char out[WEBAUTH_HASH_HEX])
{
    unsigned char raw[WEBAUTH_SECRET_BYTES];
    size_t n = 0;
    const char *end = NULL;
    if (len != WEBAUTH_SECRET_TEXT - 1 ||
        sodium_base642bin(raw, sizeof raw, text, len, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        n != sizeof raw || end != text + len) {
        sodium_memzero(raw, sizeof raw);
        return false;
    }
    hash_hex(raw, out);
    sodium_memzero(raw, sizeof raw);
    return true;
}

bool webauth_token_hash(const char *token, char out[WEBAUTH_HASH_HEX])
{
    size_t pl = strlen(WEBAUTH_TOKEN_PREFIX);
    if (strncmp(token, WEBAUTH_TOKEN_PREFIX, pl))
        return false;
    return webauth_secret_hash(token + pl, strlen(token + pl), out);
}

bool webauth_cookie(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = header; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        size_t l = strcspn(p, ";");
        if (l > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            size_t vl = l - nl - 1;
            while (vl && (p[nl + 1 + vl - 1] == ' ' || p[nl + 1 + vl - 1] == '\t'))
                vl--;
            if (vl >= outlen)
                return false;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        p += l;
    }
    return false;
}

bool webauth_dummy_hash(char out[crypto_pwhash_STRBYTES])
{
    unsigned char pw[16];
    randombytes_buf(pw, sizeof pw);
    /* the parameters amtacsctl user add uses: a dummy check costs what a real one does */
    int rc = crypto_pwhash_str(out, (const char *)pw, sizeof pw,
                               crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
    sodium_memzero(pw, sizeof pw);
    return rc == 0;
}

size_t webauth_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

bool webauth_password_hash(const char *pw, size_t pwlen, char out[crypto_pwhash_STRBYTES])
{
    return crypto_pwhash_str(out, pw, pwlen, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
}

bool webauth_password_ok(const char *hash, const char *pw, size_t pwlen)
{
    return crypto_pwhash_str_verify(hash, pw, pwlen) == 0;
}

bool webauth_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return sodium_memcmp(a, b, la) == 0;
}
