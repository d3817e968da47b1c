/*
 * joblog: renders the merged job log in the vendor's reference layout, byte for
 * byte (see tests/data/joblogs/ and docs/amt-batch-api.md). Pure: no I/O.
 */
#ifndef AMTACS_JOBLOG_H
#define AMTACS_JOBLOG_H

#include <stddef.h>

#include "amtacs/jobspec.h"

/* The header of a job's log: Submit User and Station are always
 * JOBSPEC_SUBMIT_USER and JOBSPEC_STATION, as in every Start. */
struct joblog_job {
    const char *server;          /* the connection's Batch Server URL */
    const struct jobspec *spec;  /* the job; its kind names the row ("Batch Job",
                                    "Script Job"), its values are the Parameters */
    int completion_code;         /* any integer; unknown ones print as "UNKNOWN (n)" */
};

/* The merged log of `job` with its messages in server order (the task's and its
 * children's). Returns a malloc'd NUL-terminated string the caller frees, or
 * NULL when out of memory. NULL header strings print as empty values. */
char *joblog_render(const struct joblog_job *job, const char *const *messages, size_t nmessages);

#endif
