/*
 * Fuzzes jobspec: the check of task values / script parameters and the
 * text[] literal. The input is a list of items separated by NUL bytes (an
 * item, like an argv string, never holds one).
 *
 * - Every item's verdict must equal that of an independent model of the
 *   database's rules below (its own UTF-8 decoder after the Unicode standard's
 *   table 3-7, and the regular expressions of sql/0001_init.sql taken
 *   literally), and there is a message exactly when an item is refused.
 * - The literal of the items, accepted or not, must parse back to the same
 *   items.
 * - The whole input, read as a literal, must parse without a crash; when it
 *   parses, its items must go through the literal and back unchanged.
 * Any difference abort()s.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/jobspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FUZZ_ITEMS 64

/* The database's verdict on one item, spelled out from the SQL. */
static enum jobspec_problem model(const unsigned char *s, size_t len)
{
    uint32_t *cp = malloc((len ? len : 1) * sizeof *cp);
    if (!cp)
        abort();
    size_t n = 0;
    enum jobspec_problem verdict = JOBSPEC_OK;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        size_t more;
        uint32_t v;
        if (c <= 0x7F) {
            more = 0;
            v = c;
        } else if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
            v = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            v = c & 0x0F;
            lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong form */
            hi = c == 0xED ? 0x9F : 0xBF; /* no surrogate */
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            v = c & 0x07;
            lo = c == 0xF0 ? 0x90 : 0x80; /* no overlong form */
            hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
        } else {
            verdict = JOBSPEC_BAD_UTF8;
            goto done;
        }
        for (size_t k = 1; k <= more; k++) {
            if (i + k >= len) {
                verdict = JOBSPEC_BAD_UTF8;
                goto done;
            }
            unsigned t = s[i + k];
            if (t < (k == 1 ? lo : 0x80) || t > (k == 1 ? hi : 0xBF)) {
                verdict = JOBSPEC_BAD_UTF8;
                goto done;
            }
            v = (v << 6) | (t & 0x3F);
        }
        cp[n++] = v;
        i += more + 1;
    }
    /* t !~ '[\x01-\x1f\x7f-\x9f]' */
    for (size_t i = 0; i < n; i++) {
        if ((cp[i] >= 0x01 && cp[i] <= 0x1F) || (cp[i] >= 0x7F && cp[i] <= 0x9F)) {
            verdict = JOBSPEC_CONTROL;
            goto done;
        }
    }
    /* length(v) <= 1024 */
    if (n > 1024) {
        verdict = JOBSPEC_TOO_LONG;
        goto done;
    }
    /* t ~ '^[^=\s]+=' with \s the ASCII white space (LC_CTYPE C) */
    size_t k = 0;
    while (k < n && cp[k] != '=' && !(cp[k] == ' ' || (cp[k] >= 0x09 && cp[k] <= 0x0D)))
        k++;
    if (k == n)
        verdict = JOBSPEC_NO_EQUALS;
    else if (cp[k] == '=')
        verdict = k == 0 ? JOBSPEC_EMPTY_NAME : JOBSPEC_OK;
    else
        verdict = memchr(s, '=', len) ? JOBSPEC_NAME_SPACE : JOBSPEC_NO_EQUALS;
done:
    free(cp);
    return verdict;
}

static bool same_items(char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (!a[i] != !b[i] || (a[i] && strcmp(a[i], b[i])))
            return false;
    }
    return true;
}

/* The literal of items parses back to them. */
static void round_trip(const char *const *items, size_t n)
{
    char *lit = jobspec_array_literal(items, n), why[256], **back;
    size_t nback;
    if (!lit)
        return;
    if (!jobspec_array_parse(lit, strlen(lit), &back, &nback, why, sizeof why)) {
        fprintf(stderr, "the literal %s does not parse: %s\n", lit, why);
        abort();
    }
    if (!same_items(back, nback, items, n)) {
        fprintf(stderr, "the literal %s parses to other items\n", lit);
        abort();
    }
    jobspec_items_free(back, nback);
    free(lit);
}

static void items_of_input(const uint8_t *data, size_t size)
{
    /* NUL-separated copies, so each item is a C string of its own. */
    char *copy = malloc(size + 1);
    const char *items[MAX_FUZZ_ITEMS];
    size_t n = 0;
    if (!copy)
        return;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t at = 0; at <= size && n < MAX_FUZZ_ITEMS;) {
        items[n++] = copy + at;
        at += strlen(copy + at) + 1;
    }
    bool all_ok = true;
    for (size_t i = 0; i < n; i++) {
        char why[4096];
        enum jobspec_problem got = jobspec_check_item(items[i], "task value", i + 1, why, sizeof why);
        enum jobspec_problem want = model((const unsigned char *)items[i], strlen(items[i]));
        if (got != want) {
            fprintf(stderr, "item %zu: jobspec says %d, the model %d (%s)\n", i + 1, (int)got,
                    (int)want, why);
            abort();
        }
        if ((got == JOBSPEC_OK) != (why[0] == '\0'))
            abort();
        all_ok = all_ok && got == JOBSPEC_OK;
    }
    char why[4096];
    if (jobspec_check_list(items, n, "task_values", "task value", why, sizeof why) !=
        (all_ok && n <= JOBSPEC_MAX_ITEMS))
        abort();
    round_trip(items, n);
    free(copy);
}

static void input_as_literal(const uint8_t *data, size_t size)
{
    char why[256], **items;
    size_t n;
    if (!jobspec_array_parse((const char *)data, size, &items, &n, why, sizeof why)) {
        if (!why[0])
            abort();
        return;
    }
    round_trip((const char *const *)items, n);
    jobspec_items_free(items, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    items_of_input(data, size);
    input_as_literal(data, size);
    return 0;
}
