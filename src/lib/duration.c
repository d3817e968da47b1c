#include "amtacs/duration.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/*
 * Integer arithmetic only: "0.1" must be exactly 100 ms, which a double
 * multiplication does not promise for every input.
 */
enum duration_rc duration_parse(const char *text, int64_t *ms)
{
    const char *p = text;
    bool negative = false;
    if (!p)
        return DURATION_SYNTAX;
    if (*p == '-') {
        negative = true;
        p++;
    }
    if (!is_digit(*p))
        return DURATION_SYNTAX;

    bool toobig = false;
    int64_t whole = 0;
    for (; is_digit(*p); p++) {
        int d = *p - '0';
        if (whole > (INT64_MAX - d) / 10)
            toobig = true;
        else
            whole = whole * 10 + d;
    }

    const char *frac = NULL;
    size_t nfrac = 0;
    if (*p == '.') {
        p++;
        frac = p;
        while (is_digit(*p))
            p++;
        nfrac = (size_t)(p - frac);
        if (nfrac == 0)
            return DURATION_SYNTAX;
    }

    int64_t unit;
    if (!strcmp(p, ""))
        unit = 1000;
    else if (!strcmp(p, "ms"))
        unit = 1;
    else if (!strcmp(p, "s"))
        unit = 1000;
    else if (!strcmp(p, "m"))
        unit = 60 * 1000;
    else if (!strcmp(p, "h"))
        unit = 60 * 60 * 1000;
    else
        return DURATION_SYNTAX;

    if (negative)
        return DURATION_NEGATIVE;
    if (toobig || whole > INT64_MAX / unit)
        return DURATION_TOOBIG;
    int64_t total = whole * unit;

    while (nfrac > 0 && frac[nfrac - 1] == '0')
        nfrac--;
    if (nfrac > 0) {
        /* With 8 or more significant decimals (trailing zeros gone) no unit
         * here (an hour is 2^7 * 3^2 * 5^5 ms) can make the product whole. */
        if (nfrac > 7)
            return DURATION_FRACTION;
        int64_t f = 0, scale = 1;
        for (size_t i = 0; i < nfrac; i++) {
            f = f * 10 + (frac[i] - '0');
            scale *= 10;
        }
        int64_t num = f * unit; /* < 10^7 * 3.6e6: no overflow */
        if (num % scale)
            return DURATION_FRACTION;
        if (total > INT64_MAX - num / scale)
            return DURATION_TOOBIG;
        total += num / scale;
    }
    *ms = total;
    return DURATION_OK;
}

const char *duration_format(int64_t ms, char *buf, size_t len)
{
    if (ms == 0)
        snprintf(buf, len, "0s");
    else if (ms % (60 * 60 * 1000) == 0)
        snprintf(buf, len, "%" PRId64 "h", ms / (60 * 60 * 1000));
    else if (ms % (60 * 1000) == 0)
        snprintf(buf, len, "%" PRId64 "m", ms / (60 * 1000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%" PRId64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRId64 "ms", ms);
    return buf;
}
