/*
 * coredump: keeps a process that holds secrets (the Batch User's password,
 * the logon token, the secret key) out of core dumps and away from other
 * processes of its user.
 */
#ifndef AMTACS_COREDUMP_H
#define AMTACS_COREDUMP_H

#include <stddef.h>

/* Sets the core file size limit to 0 (soft and hard, so it cannot be raised
 * again) and makes the process non-dumpable (prctl PR_SET_DUMPABLE 0): no
 * core is written, and other processes of the same user can neither ptrace
 * it nor read /proc/PID/mem or environ. Call first thing in main(). 0, or -1
 * with the reason in err. */
int coredump_disable(char *err, size_t errlen);

#endif
