/* timeutil: the monotonic clock every timer of the daemon runs on. */
#ifndef AMTACS_TIMEUTIL_H
#define AMTACS_TIMEUTIL_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t now_ms(void);

#endif
