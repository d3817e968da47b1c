#include "amtacs/jobspec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amtacs/buf.h"
#include "amtacs/text.h"

/* The database's control characters: [\x01-\x1f\x7f-\x9f] (code points). */
static bool is_control(uint32_t cp) { return (cp >= 0x01 && cp <= 0x1F) || (cp >= 0x7F && cp <= 0x9F); }

/* `\s` of PostgreSQL's regular expressions under LC_CTYPE C (see jobspec.h). */
static bool is_regex_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\v' || cp == '\f' || cp == '\r';
}

/* The code point of a sequence text_utf8_seq() accepted as `len` bytes long. */
static uint32_t decode(const unsigned char *p, size_t len)
{
    static const unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = p[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (p[i] & 0x3Fu);
    return cp;
}

static const char pair_rule[] =
    "each item must be NAME=VALUE with a non-empty NAME without spaces";

/* Writes "LABEL N ('ITEM') is not name=value: DETAIL; RULE", the item quoted
 * as quote_literal() would (single quotes doubled). */
static void pair_message(char *why, size_t whylen, const char *label, size_t index,
                         const char *item, const char *detail)
{
    struct buf q;
    buf_init(&q, 0);
    bool ok = buf_putc(&q, '\'') == BUF_OK;
    for (const char *p = item; ok && *p; p++)
        ok = buf_putc(&q, *p) == BUF_OK && (*p != '\'' || buf_putc(&q, '\'') == BUF_OK);
    ok = ok && buf_putc(&q, '\'') == BUF_OK;
    /* Out of memory only loses the quoted text, not the message. */
    snprintf(why, whylen, "%s %zu (%s) is not name=value: %s; %s", label, index,
             ok ? q.data : "...", detail, pair_rule);
    buf_free(&q);
}

enum jobspec_problem jobspec_check_item(const char *item, const char *label, size_t index,
                                        char *why, size_t whylen)
{
    const unsigned char *u = (const unsigned char *)item;
    size_t len = strlen(item);
    char detail[96];
    if (whylen)
        why[0] = '\0';

    /* PostgreSQL refuses bytes that are not UTF-8 before any check runs. */
    for (size_t i = 0; i < len;) {
        size_t l = text_utf8_seq(u + i, len - i);
        if (!l) {
            if (whylen)
                snprintf(why, whylen,
                         "%s %zu is not valid UTF-8 (byte %zu); only UTF-8 text is allowed",
                         label, index, i + 1);
            return JOBSPEC_BAD_UTF8;
        }
        i += l;
    }

    /* One pass for the three things the later checks need; the checks then
     * report in acs.check_pair_list's order: control, length, NAME=VALUE. */
    size_t chars = 0, control_at = 0, equals_at = 0, space_at = 0;
    uint32_t control_cp = 0;
    for (size_t i = 0; i < len;) {
        size_t l = text_utf8_seq(u + i, len - i);
        uint32_t cp = decode(u + i, l);
        chars++;
        if (!control_at && is_control(cp)) {
            control_at = chars;
            control_cp = cp;
        }
        if (!equals_at && cp == '=')
            equals_at = chars;
        if (!equals_at && !space_at && is_regex_space(cp))
            space_at = chars;
        i += l;
    }
    if (control_at) {
        if (whylen)
            snprintf(why, whylen,
                     "%s %zu contains a control character (U+%04X) at position %zu; only "
                     "printable characters are allowed",
                     label, index, (unsigned)control_cp, control_at);
        return JOBSPEC_CONTROL;
    }
    if (chars > JOBSPEC_MAX_CHARS) {
        if (whylen)
            snprintf(why, whylen, "%s %zu is %zu characters long; at most %d are allowed", label,
                     index, chars, JOBSPEC_MAX_CHARS);
        return JOBSPEC_TOO_LONG;
    }
    enum jobspec_problem pb = JOBSPEC_OK;
    if (!equals_at) {
        pb = JOBSPEC_NO_EQUALS;
        snprintf(detail, sizeof detail, "it has no '='");
    } else if (equals_at == 1) {
        pb = JOBSPEC_EMPTY_NAME;
        snprintf(detail, sizeof detail, "the NAME before '=' is empty");
    } else if (space_at) {
        pb = JOBSPEC_NAME_SPACE;
        snprintf(detail, sizeof detail, "the NAME has a space at position %zu", space_at);
    }
    if (pb != JOBSPEC_OK && whylen)
        pair_message(why, whylen, label, index, item, detail);
    return pb;
}

bool jobspec_check_list(const char *const *items, size_t n, const char *what,
                        const char *label, char *why, size_t whylen)
{
    if (n > JOBSPEC_MAX_ITEMS) {
        if (whylen)
            snprintf(why, whylen, "%s has %zu items; at most %d are allowed", what, n,
                     JOBSPEC_MAX_ITEMS);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!items[i]) {
            if (whylen)
                snprintf(why, whylen, "%s %zu is NULL; each item must be NAME=VALUE", label,
                         i + 1);
            return false;
        }
        if (jobspec_check_item(items[i], label, i + 1, why, whylen) != JOBSPEC_OK)
            return false;
    }
    return true;
}

char *jobspec_array_literal(const char *const *items, size_t n)
{
    /* Worst case: every byte escaped, two quotes and a comma per item. */
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) {
        size_t l = items[i] ? strlen(items[i]) : 4;
        if (l > (SIZE_MAX - cap - 3) / 2)
            return NULL;
        cap += 2 * l + 3;
    }
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        if (!items[i]) {
            memcpy(p, "NULL", 4);
            p += 4;
            continue;
        }
        *p++ = '"';
        for (const char *q = items[i]; *q; q++) {
            if (*q == '"' || *q == '\\')
                *p++ = '\\';
            *p++ = *q;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return s;
}

/* The white space of PostgreSQL's array input (array_isspace). */
static bool array_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

struct parser {
    const char *s;
    size_t len, pos;
    char **items;
    size_t n, cap;
    char *why;
    size_t whylen;
};

static bool parse_fail(struct parser *ps, const char *msg)
{
    if (ps->whylen)
        snprintf(ps->why, ps->whylen, "%s at byte %zu", msg, ps->pos + 1);
    return false;
}

static void skip_space(struct parser *ps)
{
    while (ps->pos < ps->len && array_space(ps->s[ps->pos]))
        ps->pos++;
}

/* Takes ownership of item (NULL is a NULL item, not a failure). */
static bool push_item(struct parser *ps, char *item)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 8;
        char **grown = cap > SIZE_MAX / sizeof *grown ? NULL
                                                       : realloc(ps->items, cap * sizeof *grown);
        if (!grown) {
            free(item);
            return parse_fail(ps, "out of memory");
        }
        ps->items = grown;
        ps->cap = cap;
    }
    ps->items[ps->n++] = item;
    return true;
}

/* One element at ps->pos (blanks skipped): quoted or not. */
static bool parse_element(struct parser *ps)
{
    struct buf b;
    buf_init(&b, 0);
    bool quoted = ps->s[ps->pos] == '"', escaped = false;
    size_t keep = 0; /* unquoted: bytes up to the last one that is not trailing blank */
    if (quoted)
        ps->pos++;
    for (;;) {
        if (ps->pos >= ps->len) {
            buf_free(&b);
            return parse_fail(ps, quoted ? "unterminated quoted element" : "missing '}'");
        }
        char c = ps->s[ps->pos];
        if (c == '\\') {
            if (++ps->pos >= ps->len) {
                buf_free(&b);
                return parse_fail(ps, "backslash at the end");
            }
            if (buf_putc(&b, ps->s[ps->pos++]) != BUF_OK)
                goto nomem;
            keep = b.len;
            escaped = true;
            continue;
        }
        if (quoted && c == '"') {
            ps->pos++;
            break;
        }
        if (!quoted) {
            if (c == ',' || c == '}')
                break;
            if (c == '"' || c == '{') {
                buf_free(&b);
                return parse_fail(ps, c == '"' ? "unexpected '\"' in an unquoted element"
                                               : "unexpected '{' (several dimensions)");
            }
        }
        if (buf_putc(&b, c) != BUF_OK)
            goto nomem;
        ps->pos++;
        if (!quoted && !array_space(c))
            keep = b.len;
    }
    if (!quoted)
        b.len = keep;
    if (!quoted && !escaped && b.len == 4 && !strncasecmp(b.data, "NULL", 4)) {
        buf_free(&b);
        return push_item(ps, NULL);
    }
    /* buf_take gives "" for an empty buffer and stops at b.len. */
    if (b.data)
        b.data[b.len] = '\0';
    char *item = buf_take(&b);
    if (!item)
        goto nomem;
    return push_item(ps, item);
nomem:
    buf_free(&b);
    return parse_fail(ps, "out of memory");
}

static bool parse_list(struct parser *ps)
{
    skip_space(ps);
    if (ps->pos < ps->len && ps->s[ps->pos] == '[')
        return parse_fail(ps, "a dimension prefix ([lower:upper]=) is not supported");
    if (ps->pos >= ps->len || ps->s[ps->pos] != '{')
        return parse_fail(ps, "an array literal starts with '{'");
    ps->pos++;
    skip_space(ps);
    if (ps->pos < ps->len && ps->s[ps->pos] == '}') {
        ps->pos++;
    } else {
        for (;;) {
            skip_space(ps);
            if (ps->pos >= ps->len)
                return parse_fail(ps, "missing '}'");
            char c = ps->s[ps->pos];
            if (c == '{')
                return parse_fail(ps, "unexpected '{' (several dimensions)");
            if (c == ',' || c == '}')
                return parse_fail(ps, "an empty element (write \"\" for empty text)");
            if (!parse_element(ps))
                return false;
            skip_space(ps);
            if (ps->pos >= ps->len)
                return parse_fail(ps, "missing '}'");
            c = ps->s[ps->pos++];
            if (c == '}')
                break;
            if (c != ',') {
                ps->pos--;
                return parse_fail(ps, "expected ',' or '}' after an element");
            }
        }
    }
    skip_space(ps);
    if (ps->pos < ps->len)
        return parse_fail(ps, "junk after the closing '}'");
    return true;
}

bool jobspec_array_parse(const char *text, size_t len, char ***items, size_t *n, char *why,
                         size_t whylen)
{
    struct parser ps = {.s = text, .len = len, .why = why, .whylen = whylen};
    *items = NULL;
    *n = 0;
    if (whylen)
        why[0] = '\0';
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        ps.pos = (size_t)(nul - text);
        return parse_fail(&ps, "a NUL byte");
    }
    if (!parse_list(&ps)) {
        jobspec_items_free(ps.items, ps.n);
        return false;
    }
    *items = ps.items;
    *n = ps.n;
    return true;
}

void jobspec_items_free(char **items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

const char *jobspec_kind_name(enum jobspec_kind kind)
{
    return kind == JOBSPEC_SCRIPT ? "script" : "batch";
}

const char *jobspec_kind_noun(enum jobspec_kind kind)
{
    return kind == JOBSPEC_SCRIPT ? "script" : "batch job";
}

enum jobspec_kind jobspec_kind_of(const char *name)
{
    return name && !strcmp(name, "script") ? JOBSPEC_SCRIPT : JOBSPEC_BATCH;
}

/* Adds len(s)+1 to *total unless it would overflow. */
static bool add_size(size_t *total, const char *s)
{
    size_t l = s ? strlen(s) + 1 : 0;
    if (l > SIZE_MAX - *total)
        return false;
    *total += l;
    return true;
}

/* Copies s to *at and moves *at past it; NULL stays NULL. */
static const char *put_str(char **at, const char *s)
{
    if (!s)
        return NULL;
    size_t l = strlen(s) + 1;
    char *d = memcpy(*at, s, l);
    *at += l;
    return d;
}

struct jobspec *jobspec_dup(const struct jobspec *spec)
{
    /* One block: the struct, the list of pointers, then every string. */
    if (spec->nvalues > (SIZE_MAX - sizeof(struct jobspec)) / sizeof(char *))
        return NULL;
    size_t total = sizeof(struct jobspec) + spec->nvalues * sizeof(char *);
    bool ok = add_size(&total, spec->application) && add_size(&total, spec->amt_user) &&
              add_size(&total, spec->queue_name) && add_size(&total, spec->name);
    for (size_t i = 0; ok && i < spec->nvalues; i++)
        ok = add_size(&total, spec->values[i] ? spec->values[i] : "");
    struct jobspec *d = ok ? malloc(total) : NULL;
    if (!d)
        return NULL;
    const char **list = (const char **)(d + 1);
    char *at = (char *)(list + spec->nvalues);
    d->kind = spec->kind;
    d->application = put_str(&at, spec->application);
    d->amt_user = put_str(&at, spec->amt_user);
    d->queue_name = put_str(&at, spec->queue_name);
    d->name = put_str(&at, spec->name);
    for (size_t i = 0; i < spec->nvalues; i++)
        list[i] = put_str(&at, spec->values[i] ? spec->values[i] : "");
    d->values = list;
    d->nvalues = spec->nvalues;
    return d;
}
