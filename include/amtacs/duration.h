/*
 * duration: the one textual form of a time span in amtacs files and output.
 * Accepted: a number of seconds ("5", "0.5") or a number with a unit
 * ("500ms", "10s", "2m", "1.5h"). Values are whole milliseconds (int64).
 */
#ifndef AMTACS_DURATION_H
#define AMTACS_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* The accepted forms, for error messages. */
#define DURATION_FORMS                                                                        \
    "a number of seconds (5, 0.5) or a number with a unit ms, s, m or h (500ms, 10s, 2m, 1h)"

/* Longest text duration_format() writes, NUL included. */
#define DURATION_FMT_LEN 24

enum duration_rc {
    DURATION_OK = 0,   /* *ms holds the value */
    DURATION_SYNTAX,   /* not one of the accepted forms */
    DURATION_NEGATIVE, /* a well-formed negative value */
    DURATION_FRACTION, /* not a whole number of milliseconds, e.g. "0.0005" or "1.5ms" */
    DURATION_TOOBIG,   /* does not fit in int64 milliseconds */
};

/* Parses text into milliseconds; on any error *ms is left unchanged. */
enum duration_rc duration_parse(const char *text, int64_t *ms)
    __attribute__((warn_unused_result));
/* Writes ms (>= 0) in the largest unit that is exact ("1h", "2m", "10s", "1500ms")
 * into buf, which needs DURATION_FMT_LEN bytes; returns buf. Parses back to ms. */
const char *duration_format(int64_t ms, char *buf, size_t len);

#endif
