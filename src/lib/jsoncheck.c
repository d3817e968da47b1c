#include "amtacs/jsoncheck.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Keys of all open objects together, for the duplicate check. A fixed stack:
 * the checker allocates nothing, and AMT objects hold a handful of keys. */
#define KEYS_CAP 1024u
/* Characters of one number: more than 17 significant digits fail anyway. */
#define MAX_NUMBER_TEXT 40u

struct span {
    size_t off, len; /* the raw text between the quotes */
    bool escaped;    /* holds a backslash: compare decoded */
};

struct scan {
    const unsigned char *p;
    size_t n, i;
    struct jsoncheck_limits lim;
    unsigned depth;
    size_t nkeys;
    size_t where;
    struct span keys[KEYS_CAP];
};

static const struct {
    const char *name, *text;
} info[] = {
    [JSONCHECK_OK] = {"ok", "valid"},
    [JSONCHECK_EMPTY] = {"json.empty", "empty body"},
    [JSONCHECK_BOM] = {"json.bom", "starts with a byte order mark"},
    [JSONCHECK_NUL_BYTE] = {"json.nul_byte", "raw NUL byte"},
    [JSONCHECK_UTF8_INVALID] = {"utf8.invalid", "invalid UTF-8 byte"},
    [JSONCHECK_UTF8_TRUNCATED] = {"utf8.truncated", "truncated UTF-8 sequence"},
    [JSONCHECK_UTF8_OVERLONG] = {"utf8.overlong", "overlong UTF-8 sequence"},
    [JSONCHECK_UTF8_SURROGATE] = {"utf8.surrogate", "surrogate encoded in UTF-8"},
    [JSONCHECK_UTF8_TOO_BIG] = {"utf8.too_big", "code point beyond U+10FFFF"},
    [JSONCHECK_CONTROL_CHAR] = {"json.control_char", "raw control character"},
    [JSONCHECK_NUL_ESCAPE] = {"json.nul_escape", "\\u0000 in a string"},
    [JSONCHECK_BAD_ESCAPE] = {"json.bad_escape", "invalid escape in a string"},
    [JSONCHECK_LONE_SURROGATE] = {"json.lone_surrogate", "unpaired surrogate escape"},
    [JSONCHECK_STRING_TOO_LONG] = {"json.string_too_long", "string too long"},
    [JSONCHECK_KEY_TOO_LONG] = {"json.key_too_long", "object key too long"},
    [JSONCHECK_NUMBER_SYNTAX] = {"json.number_syntax", "malformed number"},
    [JSONCHECK_NUMBER_RANGE] = {"json.number_range", "number out of range"},
    [JSONCHECK_NUMBER_PRECISION] = {"json.number_precision", "number with too many digits"},
    [JSONCHECK_LITERAL] = {"json.literal", "unknown literal"},
    [JSONCHECK_DEPTH] = {"json.depth", "nested too deep"},
    [JSONCHECK_DUPLICATE_KEY] = {"json.duplicate_key", "duplicate key"},
    [JSONCHECK_TOO_MANY_MEMBERS] = {"json.too_many_members", "object with too many members"},
    [JSONCHECK_NOT_OBJECT] = {"json.not_object", "top level is not an object"},
    [JSONCHECK_TRUNCATED] = {"json.truncated", "text ends inside a value"},
    [JSONCHECK_TRAILING_DATA] = {"json.trailing_data", "data after the object"},
    [JSONCHECK_SYNTAX] = {"json.syntax", "syntax error"},
};

const char *jsoncheck_name(enum jsoncheck_err e)
{
    return (size_t)e < sizeof info / sizeof info[0] ? info[e].name : "json.unknown";
}

const char *jsoncheck_describe(enum jsoncheck_err e)
{
    return (size_t)e < sizeof info / sizeof info[0] ? info[e].text : "unknown fault";
}

/* ---------------------------------------------------------------- UTF-8 */

/* The whole text first, so that every later step may assume valid UTF-8
 * without NULs, and a bad byte is named the same wherever it stands. */
static enum jsoncheck_err utf8_pass(const unsigned char *p, size_t n, size_t *where)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        *where = i;
        if (c < 0x80) {
            if (c == 0)
                return JSONCHECK_NUL_BYTE;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c < 0xC0 || c >= 0xF8)
            return JSONCHECK_UTF8_INVALID;
        if (c < 0xE0) {
            len = 2;
            cp = c & 0x1Fu;
        } else if (c < 0xF0) {
            len = 3;
            cp = c & 0x0Fu;
        } else {
            len = 4;
            cp = c & 0x07u;
        }
        for (size_t k = 1; k < len; k++) {
            if (i + k >= n || (p[i + k] & 0xC0) != 0x80)
                return JSONCHECK_UTF8_TRUNCATED;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return JSONCHECK_UTF8_OVERLONG;
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return JSONCHECK_UTF8_SURROGATE;
        if (cp > 0x10FFFF)
            return JSONCHECK_UTF8_TOO_BIG;
        i += len;
    }
    return JSONCHECK_OK;
}

/* ---------------------------------------------------------------- helpers */

static enum jsoncheck_err fail(struct scan *s, size_t at, enum jsoncheck_err e)
{
    s->where = at;
    return e;
}

static void skip_ws(struct scan *s)
{
    while (s->i < s->n) {
        unsigned char c = s->p[s->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        s->i++;
    }
}

/* What is wrong with the byte at s->i, where none of the expected ones came. */
static enum jsoncheck_err unexpected(struct scan *s)
{
    if (s->i >= s->n)
        return fail(s, s->n, JSONCHECK_TRUNCATED);
    unsigned char c = s->p[s->i];
    if (c < 0x20 || c == 0x7F)
        return fail(s, s->i, JSONCHECK_CONTROL_CHAR);
    return fail(s, s->i, JSONCHECK_SYNTAX);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at p[i..]; -1 when cut short (-2) or not hex (-1). */
static long hex4(const unsigned char *p, size_t n, size_t i)
{
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        if (i + k >= n)
            return -2;
        int h = hexval(p[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t utf8_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

/* ---------------------------------------------------------------- strings */

/* The string at s->i (on its opening quote); leaves s->i past the closing one
 * and the raw span in *out. */
static enum jsoncheck_err scan_string(struct scan *s, bool key, struct span *out)
{
    const unsigned char *p = s->p;
    size_t start = ++s->i, decoded = 0, max = key ? s->lim.max_key : s->lim.max_string;
    bool escaped = false;
    for (;;) {
        if (s->i >= s->n)
            return fail(s, s->n, JSONCHECK_TRUNCATED);
        unsigned char c = p[s->i];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(s, s->i, JSONCHECK_CONTROL_CHAR);
        if (c != '\\') {
            decoded++; /* a UTF-8 byte is one decoded byte as well */
            s->i++;
        } else {
            size_t at = s->i;
            escaped = true;
            if (at + 1 >= s->n)
                return fail(s, s->n, JSONCHECK_TRUNCATED);
            unsigned char e = p[at + 1];
            if (e != 'u') {
                if (!strchr("\"\\/bfnrt", e) || e == '\0')
                    return fail(s, at, JSONCHECK_BAD_ESCAPE);
                decoded++;
                s->i += 2;
            } else {
                long hi = hex4(p, s->n, at + 2);
                if (hi == -2)
                    return fail(s, s->n, JSONCHECK_TRUNCATED);
                if (hi < 0)
                    return fail(s, at, JSONCHECK_BAD_ESCAPE);
                uint32_t cp = (uint32_t)hi;
                s->i += 6;
                if (cp == 0)
                    return fail(s, at, JSONCHECK_NUL_ESCAPE);
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(s, at, JSONCHECK_LONE_SURROGATE);
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (s->i < s->n && p[s->i] == '\\' && s->i + 1 >= s->n)
                        return fail(s, s->n, JSONCHECK_TRUNCATED);
                    if (s->i >= s->n)
                        return fail(s, s->n, JSONCHECK_TRUNCATED);
                    if (p[s->i] != '\\' || p[s->i + 1] != 'u')
                        return fail(s, at, JSONCHECK_LONE_SURROGATE);
                    long lo = hex4(p, s->n, s->i + 2);
                    if (lo == -2)
                        return fail(s, s->n, JSONCHECK_TRUNCATED);
                    if (lo == -1)
                        return fail(s, s->i, JSONCHECK_BAD_ESCAPE);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail(s, at, JSONCHECK_LONE_SURROGATE);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    s->i += 6;
                }
                decoded += utf8_len(cp);
            }
        }
        if (decoded > max)
            return fail(s, start - 1, key ? JSONCHECK_KEY_TOO_LONG : JSONCHECK_STRING_TOO_LONG);
    }
    out->off = start;
    out->len = s->i - start;
    out->escaped = escaped;
    s->i++;
    return JSONCHECK_OK;
}

/* The next code point of an already checked raw string span. */
static uint32_t next_cp(const unsigned char *p, size_t *i)
{
    unsigned char c = p[*i];
    if (c == '\\') {
        unsigned char e = p[*i + 1];
        if (e != 'u') {
            *i += 2;
            switch (e) {
            case 'b':
                return '\b';
            case 'f':
                return '\f';
            case 'n':
                return '\n';
            case 'r':
                return '\r';
            case 't':
                return '\t';
            default:
                return e; /* ", \ and / stand for themselves */
            }
        }
        uint32_t cp = 0;
        for (size_t k = 2; k < 6; k++)
            cp = cp * 16 + (uint32_t)hexval(p[*i + k]);
        *i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            for (size_t k = 2; k < 6; k++)
                lo = lo * 16 + (uint32_t)hexval(p[*i + k]);
            *i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        return cp;
    }
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    size_t len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = c & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
    for (size_t k = 1; k < len; k++)
        cp = (cp << 6) | (p[*i + k] & 0x3Fu);
    *i += len;
    return cp;
}

static bool same_key(const unsigned char *p, const struct span *a, const struct span *b)
{
    if (!a->escaped && !b->escaped)
        return a->len == b->len && !memcmp(p + a->off, p + b->off, a->len);
    size_t i = a->off, j = b->off, ea = a->off + a->len, eb = b->off + b->len;
    while (i < ea && j < eb)
        if (next_cp(p, &i) != next_cp(p, &j))
            return false;
    return i == ea && j == eb;
}

/* ---------------------------------------------------------------- numbers */

/* The digits of a number, as text: the rules are about the written value, and
 * strtod would depend on the locale. */
static enum jsoncheck_err scan_number(struct scan *s)
{
    const unsigned char *p = s->p;
    size_t start = s->i, n = s->n;
    if (p[s->i] == '-')
        s->i++;
    if (s->i >= n)
        return fail(s, n, JSONCHECK_TRUNCATED);
    if (p[s->i] < '0' || p[s->i] > '9')
        return fail(s, start, JSONCHECK_NUMBER_SYNTAX);
    size_t int_start = s->i;
    if (p[s->i] == '0') {
        s->i++;
    } else {
        while (s->i < n && p[s->i] >= '0' && p[s->i] <= '9')
            s->i++;
    }
    size_t int_end = s->i, frac_start = s->i, frac_end = s->i;
    bool is_int = true;
    if (s->i < n && p[s->i] == '.') {
        is_int = false;
        frac_start = ++s->i;
        while (s->i < n && p[s->i] >= '0' && p[s->i] <= '9')
            s->i++;
        frac_end = s->i;
        if (frac_end == frac_start)
            return s->i >= n ? fail(s, n, JSONCHECK_TRUNCATED)
                             : fail(s, start, JSONCHECK_NUMBER_SYNTAX);
    }
    long long exp = 0;
    if (s->i < n && (p[s->i] == 'e' || p[s->i] == 'E')) {
        is_int = false;
        s->i++;
        bool neg = false;
        if (s->i < n && (p[s->i] == '+' || p[s->i] == '-'))
            neg = p[s->i++] == '-';
        size_t exp_start = s->i;
        while (s->i < n && p[s->i] >= '0' && p[s->i] <= '9') {
            if (exp < 1000000000LL) /* far past any double: the verdict is the same */
                exp = exp * 10 + (p[s->i] - '0');
            s->i++;
        }
        if (s->i == exp_start)
            return s->i >= n ? fail(s, n, JSONCHECK_TRUNCATED)
                             : fail(s, start, JSONCHECK_NUMBER_SYNTAX);
        if (neg)
            exp = -exp;
    }
    /* A number ends where a structural character or whitespace comes: "01",
     * "0x10", "1.2.3" and "1e5e" end elsewhere. */
    if (s->i < n && !strchr(" \t\r\n,]}", p[s->i]))
        return fail(s, start, JSONCHECK_NUMBER_SYNTAX);

    /* Significant digits: the mantissa without leading and trailing zeros. */
    size_t ndig = (int_end - int_start) + (frac_end - frac_start);
#define DIGIT(k)                                                                                \
    (p[(k) < int_end - int_start ? int_start + (k) : frac_start + (k) - (int_end - int_start)])
    size_t first = 0, last = 0;
    bool zero = true;
    for (size_t k = 0; k < ndig; k++) {
        if (DIGIT(k) != '0') {
            if (zero)
                first = k;
            zero = false;
            last = k;
        }
    }
    /* I-JSON: integers only where a double holds them exactly. */
    static const char max_int[] = "9007199254740991"; /* 2^53 - 1 */
    if (is_int) {
        size_t len = int_end - int_start;
        if (len > sizeof max_int - 1 ||
            (len == sizeof max_int - 1 && memcmp(p + int_start, max_int, len) > 0))
            return fail(s, start, JSONCHECK_NUMBER_RANGE);
        return JSONCHECK_OK;
    }
    /* cJSON reads at most 63 characters of a number and would misread the rest. */
    if (s->i - start > MAX_NUMBER_TEXT)
        return fail(s, start, JSONCHECK_NUMBER_PRECISION);
    if (zero)
        return JSONCHECK_OK; /* 0.0, -0e5, 0.000e999: exactly zero */
    size_t sig = last - first + 1;
    if (sig > 17)
        return fail(s, start, JSONCHECK_NUMBER_PRECISION);
    /* The decimal exponent of the first significant digit. */
    long long e10 = (long long)(int_end - int_start) - 1 - (long long)first + exp;
    if (e10 < -308)
        return fail(s, start, JSONCHECK_NUMBER_RANGE);
    if (e10 > 308)
        return fail(s, start, JSONCHECK_NUMBER_RANGE);
    if (e10 == 308) {
        static const char dbl_max[] = "17976931348623157"; /* DBL_MAX's 17 digits */
        for (size_t k = 0; k < sizeof dbl_max - 1; k++) {
            unsigned char d = k < sig ? DIGIT(first + k) : '0';
            if (d != (unsigned char)dbl_max[k]) {
                if (d > (unsigned char)dbl_max[k])
                    return fail(s, start, JSONCHECK_NUMBER_RANGE);
                break;
            }
        }
    }
#undef DIGIT
    return JSONCHECK_OK;
}

/* ---------------------------------------------------------------- values */

static bool word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static enum jsoncheck_err scan_literal(struct scan *s)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t start = s->i;
    while (s->i < s->n && word_char(s->p[s->i]))
        s->i++;
    size_t len = s->i - start;
    for (size_t k = 0; k < 3; k++) {
        size_t wl = strlen(words[k]);
        if (len == wl && !memcmp(s->p + start, words[k], wl))
            return JSONCHECK_OK;
        /* "tru" at the very end: an answer cut short, not a strange word */
        if (s->i == s->n && len < wl && !memcmp(s->p + start, words[k], len))
            return fail(s, s->n, JSONCHECK_TRUNCATED);
    }
    return fail(s, start, JSONCHECK_LITERAL);
}

static enum jsoncheck_err scan_value(struct scan *s);

static enum jsoncheck_err enter(struct scan *s)
{
    if (s->depth >= s->lim.max_depth)
        return fail(s, s->i, JSONCHECK_DEPTH);
    s->depth++;
    s->i++;
    return JSONCHECK_OK;
}

/* After a member or an element: a ',' (*more: another follows) or the
 * closing bracket (*more false), past it; anything else is unexpected. */
static enum jsoncheck_err after_item(struct scan *s, char close, bool *more)
{
    skip_ws(s);
    if (s->i < s->n && (s->p[s->i] == ',' || s->p[s->i] == close)) {
        *more = s->p[s->i] == ',';
        if (*more)
            s->i++;
        return JSONCHECK_OK;
    }
    return unexpected(s);
}

static enum jsoncheck_err scan_object(struct scan *s)
{
    enum jsoncheck_err e = enter(s);
    if (e)
        return e;
    bool more;
    size_t base = s->nkeys, members = 0;
    skip_ws(s);
    if (s->i < s->n && s->p[s->i] == '}')
        goto done;
    for (;;) {
        skip_ws(s);
        if (s->i >= s->n || s->p[s->i] != '"')
            return unexpected(s);
        size_t at = s->i;
        struct span k;
        if ((e = scan_string(s, true, &k)))
            return e;
        if (++members > s->lim.max_members || s->nkeys >= KEYS_CAP)
            return fail(s, at, JSONCHECK_TOO_MANY_MEMBERS);
        for (size_t j = base; j < s->nkeys; j++)
            if (same_key(s->p, &s->keys[j], &k))
                return fail(s, at, JSONCHECK_DUPLICATE_KEY);
        s->keys[s->nkeys++] = k;
        skip_ws(s);
        if (s->i >= s->n || s->p[s->i] != ':')
            return unexpected(s);
        s->i++;
        if ((e = scan_value(s)) || (e = after_item(s, '}', &more)))
            return e;
        if (!more)
            break;
    }
done:
    s->i++;
    s->nkeys = base; /* the keys of a closed object are no longer compared */
    s->depth--;
    return JSONCHECK_OK;
}

static enum jsoncheck_err scan_array(struct scan *s)
{
    enum jsoncheck_err e = enter(s);
    if (e)
        return e;
    bool more;
    skip_ws(s);
    if (s->i < s->n && s->p[s->i] == ']')
        goto done;
    for (;;) {
        if ((e = scan_value(s)) || (e = after_item(s, ']', &more)))
            return e;
        if (!more)
            break;
    }
done:
    s->i++;
    s->depth--;
    return JSONCHECK_OK;
}

/* Recursion is bounded by max_depth (at most JSONCHECK_DEPTH_CAP). */
static enum jsoncheck_err scan_value(struct scan *s)
{
    skip_ws(s);
    if (s->i >= s->n)
        return fail(s, s->n, JSONCHECK_TRUNCATED);
    unsigned char c = s->p[s->i];
    struct span ignored;
    switch (c) {
    case '{':
        return scan_object(s);
    case '[':
        return scan_array(s);
    case '"':
        return scan_string(s, false, &ignored);
    case '+':
    case '.':
        return fail(s, s->i, JSONCHECK_NUMBER_SYNTAX);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return scan_number(s);
        if (word_char(c))
            return scan_literal(s);
        return unexpected(s);
    }
}

enum jsoncheck_err jsoncheck(const char *text, size_t n, const struct jsoncheck_limits *lim,
                             size_t *where)
{
    static const struct jsoncheck_limits defaults = JSONCHECK_DEFAULT_LIMITS;
    struct scan s;
    s.p = (const unsigned char *)text;
    s.n = n;
    s.i = 0;
    s.lim = lim ? *lim : defaults;
    if (s.lim.max_depth > JSONCHECK_DEPTH_CAP)
        s.lim.max_depth = JSONCHECK_DEPTH_CAP;
    s.depth = 0;
    s.nkeys = 0;
    s.where = 0;
    enum jsoncheck_err e = JSONCHECK_OK;
    if (n >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        e = JSONCHECK_BOM;
        goto out;
    }
    if ((e = utf8_pass(s.p, n, &s.where)))
        goto out;
    skip_ws(&s);
    if (s.i >= n) {
        e = fail(&s, s.i, JSONCHECK_EMPTY);
        goto out;
    }
    unsigned char c = s.p[s.i];
    if (c != '{') {
        e = c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || word_char(c)
                ? fail(&s, s.i, JSONCHECK_NOT_OBJECT)
                : unexpected(&s);
        goto out;
    }
    if ((e = scan_object(&s)))
        goto out;
    skip_ws(&s);
    if (s.i < n)
        e = fail(&s, s.i, JSONCHECK_TRAILING_DATA);
out:
    if (where)
        *where = e ? s.where : 0;
    return e;
}
