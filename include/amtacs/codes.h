/*
 * codes: the AMT completion-code table (0-16, 18-24, 99) exactly as the vendor
 * publishes it, which states are final, and the success rule (DONE alone).
 */
#ifndef AMTACS_CODES_H
#define AMTACS_CODES_H

#include <stdbool.h>
#include <stddef.h>

enum amt_code {
    AMT_IDLE = 0,                  /* job is idle */
    AMT_QUEUED = 1,                /* queued for a later start in the current timeframe */
    AMT_RUNNING = 2,               /* started manually or by the scheduler */
    AMT_KILLED = 3,                /* terminated by a kill command */
    AMT_DONE = 4,                  /* completed normally: the only success */
    AMT_SUSPENDED = 5,             /* queued job has not started on time */
    AMT_SKIPPED_BY_OPS = 6,        /* suspended job skipped by control center */
    AMT_RUN_MANUAL = 7,            /* started by control center */
    AMT_RUN_FORCED = 8,            /* forced start even when the job server is halted */
    AMT_RUN_DEBUG = 9,             /* report started from Visual Studio */
    AMT_DEL_QUEUE = 10,            /* deleted from the queue */
    AMT_ERROR = 11,                /* ended in error (a missing script: "File not found") */
    AMT_ABORTED = 12,              /* aborted on purpose by business logic */
    AMT_WAIT_FOR_FILE = 13,        /* waiting for a file */
    AMT_WAIT_FOR_INPUT = 14,       /* waiting for an input request */
    AMT_WAIT_FOR_JOB = 15,         /* waiting for another job */
    AMT_WAIT_FOR_REPORT = 16,      /* waiting for a report (future use) */
    AMT_RECOVER_CP = 18,           /* request to recover from a saved critical point */
    AMT_UNDEFINED = 19,            /* state is undefined */
    AMT_WAIT_FOR_QUEUE = 20,       /* waiting for the queue's start time */
    AMT_WAIT_FOR_DEBUGGER = 21,    /* waiting for a LION debugger */
    AMT_ABORTED_WITH_RECOVER = 22, /* aborted with recover */
    AMT_WEB_SERVER_ERROR = 23,     /* connector: server unreachable */
    AMT_AUTHENTICATION_ERROR = 24, /* connector: logon refused */
    AMT_INVALID_AMT_USER = 99,     /* named AMT user does not exist */
};

/* Where a code comes from. */
enum amt_code_origin {
    AMT_ORIGIN_SERVER,    /* a state the AMT Batch Server reports */
    AMT_ORIGIN_CONNECTOR, /* produced by the connector (23, 24) */
    AMT_ORIGIN_UNKNOWN,   /* a number not in the published table */
};

struct amt_code_info {
    int code;
    const char *name;        /* exactly as published, e.g. "WAIT FOR FILE" */
    const char *description; /* the published description ("" where none is given) */
    bool final;              /* the job has ended: stop following it */
    bool success;            /* true for DONE alone */
    enum amt_code_origin origin;
};

/* The published rows in ascending order; *count receives their number. */
const struct amt_code_info *amt_codes_table(size_t *count);

/* Information on any integer. A number outside the table (17, 42, -1) gets a
 * synthesised row: name "UNKNOWN", final, failure, origin unknown; its code
 * field keeps the number. Never NULL, never reads out of bounds. */
struct amt_code_info amt_code_lookup(int code);

/* True if the number is in the published table. */
bool amt_code_known(int code);
/* The published name, or "UNKNOWN" for a number outside the table. */
const char *amt_code_name(int code);
/* Whether a reported code ends the job (unknown numbers do: a failure). */
bool amt_code_is_final(int code);
/* DONE (4) alone is success. */
bool amt_code_is_success(int code);
/* The codes that raise an alert: ERROR (11), ABORTED (12), WEB_SERVER_ERROR
 * (23) and AUTHENTICATION_ERROR (24). */
bool amt_code_raises_alert(int code);
/* Parses a published name (exact spelling) or a decimal number; false if neither. */
bool amt_code_parse(const char *text, int *out);

#endif
