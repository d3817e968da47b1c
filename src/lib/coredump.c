#include "amtacs/coredump.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int coredump_disable(char *err, size_t errlen)
{
    struct rlimit rl;
    /* Left alone when already 0 (systemd's LimitCORE=0): the unit's seccomp
     * filter need not allow setrlimit then. */
    if (getrlimit(RLIMIT_CORE, &rl) || rl.rlim_cur != 0 || rl.rlim_max != 0) {
        rl.rlim_cur = rl.rlim_max = 0;
        if (setrlimit(RLIMIT_CORE, &rl)) {
            snprintf(err, errlen, "cannot set the core file size limit to 0: %s",
                     strerror(errno));
            return -1;
        }
    }
    if (prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L)) {
        snprintf(err, errlen, "cannot make the process non-dumpable: %s", strerror(errno));
        return -1;
    }
    return 0;
}
