/*
 * joblog: renders the merged job log in the vendor's reference layout, byte for
 * byte (see tests/data/joblogs/ and docs/amt-batch-api.md). Pure: no I/O.
 */
#ifndef AMTACS_JOBLOG_H
#define AMTACS_JOBLOG_H

#include <stddef.h>

enum joblog_kind {
    JOBLOG_BATCH,  /* header row "Batch Job" */
    JOBLOG_SCRIPT, /* header row "Script Job" */
};

struct joblog_job {
    const char *server;      /* the connection's Batch Server URL */
    const char *application;
    const char *submit_user; /* always BATCH in practice */
    const char *station;     /* always OPCON in practice */
    const char *queue_name;  /* NULL or "" for the server's default queue */
    enum joblog_kind kind;
    const char *name;        /* job name or script name */
    const char *const *params; /* task values (batch) or script parameters (script) */
    size_t nparams;
    int completion_code;     /* any integer; unknown ones print as "UNKNOWN (n)" */
};

/* The merged log of `job` with its messages in server order (the task's and its
 * children's). Returns a malloc'd NUL-terminated string the caller frees, or
 * NULL when out of memory. NULL header strings print as empty values. */
char *joblog_render(const struct joblog_job *job, const char *const *messages, size_t nmessages);

#endif
