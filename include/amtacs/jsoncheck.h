/*
 * jsoncheck: a strict validator for JSON that came from outside, run over the
 * raw bytes before cJSON sees them.
 *
 * cJSON is lenient where leniency hides an attack or a bug: it stops at a raw
 * NUL, truncates a string at an escaped \u0000, takes the first of two equal
 * keys, turns 1e999 into infinity, rounds 2^53+1 silently and nests a
 * thousand levels deep. The checker accepts RFC 8259 JSON restricted to the
 * I-JSON profile (RFC 7493: valid Unicode, unique keys, numbers a double holds)
 * plus size limits, and names the first fault it finds. It allocates nothing,
 * keeps no state between calls and reads each byte a bounded number of times.
 */
#ifndef AMTACS_JSONCHECK_H
#define AMTACS_JSONCHECK_H

#include <stddef.h>

/* Faults, in no particular order; the names (jsoncheck_name) are stable and
 * documented in docs/amt-batch-api.md, "Hostile answers". */
enum jsoncheck_err {
    JSONCHECK_OK = 0,
    JSONCHECK_EMPTY,            /* json.empty: no bytes, or only whitespace */
    JSONCHECK_BOM,              /* json.bom: starts with a UTF-8 byte order mark */
    JSONCHECK_NUL_BYTE,         /* json.nul_byte: a raw 0x00 byte anywhere */
    JSONCHECK_UTF8_INVALID,     /* utf8.invalid: a stray continuation or impossible byte */
    JSONCHECK_UTF8_TRUNCATED,   /* utf8.truncated: a sequence cut short */
    JSONCHECK_UTF8_OVERLONG,    /* utf8.overlong: a code point in more bytes than needed */
    JSONCHECK_UTF8_SURROGATE,   /* utf8.surrogate: U+D800..U+DFFF encoded in UTF-8 */
    JSONCHECK_UTF8_TOO_BIG,     /* utf8.too_big: a code point past U+10FFFF */
    JSONCHECK_CONTROL_CHAR,     /* json.control_char: a raw U+0000..U+001F in a string,
                                   or a control byte where JSON allows only whitespace */
    JSONCHECK_NUL_ESCAPE,       /* json.nul_escape: \u0000 in a string */
    JSONCHECK_BAD_ESCAPE,       /* json.bad_escape: \x, \', \u12G4, ... */
    JSONCHECK_LONE_SURROGATE,   /* json.lone_surrogate: \uD800 without its low half, or
                                   a low half alone */
    JSONCHECK_STRING_TOO_LONG,  /* json.string_too_long: a string value over max_string */
    JSONCHECK_KEY_TOO_LONG,     /* json.key_too_long: an object key over max_key */
    JSONCHECK_NUMBER_SYNTAX,    /* json.number_syntax: 01, +1, .5, 1., 1e, 0x10, -Infinity */
    JSONCHECK_NUMBER_RANGE,     /* json.number_range: beyond a double (1e999, 1e-999), or an
                                   integer literal beyond +-(2^53-1) */
    JSONCHECK_NUMBER_PRECISION, /* json.number_precision: more than 17 significant digits,
                                   or over 40 characters in all */
    JSONCHECK_LITERAL,          /* json.literal: a bare word other than true, false, null
                                   (NaN, Infinity, True, undefined, ...) */
    JSONCHECK_DEPTH,            /* json.depth: objects and arrays nested past max_depth */
    JSONCHECK_DUPLICATE_KEY,    /* json.duplicate_key: one object names a key twice (after
                                   unescaping: "a" and "\u0061" are the same key) */
    JSONCHECK_TOO_MANY_MEMBERS, /* json.too_many_members: an object with over max_members */
    JSONCHECK_NOT_OBJECT,       /* json.not_object: the top level is an array or a scalar */
    JSONCHECK_TRUNCATED,        /* json.truncated: the text ends inside a value */
    JSONCHECK_TRAILING_DATA,    /* json.trailing_data: bytes after the top-level object */
    JSONCHECK_SYNTAX,           /* json.syntax: anything else that is not JSON (a missing
                                   comma or colon, a trailing comma, single quotes,
                                   comments, an unquoted key, a wrong closing bracket) */
};

struct jsoncheck_limits {
    unsigned max_depth;  /* the top-level object is depth 1; at most JSONCHECK_DEPTH_CAP */
    size_t max_string;   /* bytes of a string value, after unescaping */
    size_t max_key;      /* bytes of an object key, after unescaping */
    size_t max_members;  /* members of one object */
};

#define JSONCHECK_DEPTH_CAP 64u

/* The limits used when none are given: depth 32, strings 64 KiB, keys 256
 * bytes, 128 members per object. */
#define JSONCHECK_DEFAULT_LIMITS {32u, 65536u, 256u, 128u}

/* Checks the n bytes at text (NULs included: the length rules, not a
 * terminator). Returns JSONCHECK_OK or the first fault, with its byte offset
 * in *where (may be NULL). lim may be NULL for the defaults. */
enum jsoncheck_err jsoncheck(const char *text, size_t n, const struct jsoncheck_limits *lim,
                             size_t *where);

/* The stable short name, "json.depth", ...; "ok" for JSONCHECK_OK. */
const char *jsoncheck_name(enum jsoncheck_err e);
/* A short human description ("nesting too deep"), no trailing period. */
const char *jsoncheck_describe(enum jsoncheck_err e);

#endif
