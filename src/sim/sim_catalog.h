/*
 * sim_catalog: the simulator's job catalog (YAML, read with yamldoc) as an
 * immutable tree: API users, the batch controller, queues, applications and
 * their batch jobs and scripts with timed states, messages and children.
 *
 * The structs are public because the catalog never changes after loading; the
 * world reads it and keeps pointers into it for the simulator's lifetime.
 * Durations and offsets are simulated seconds.
 */
#ifndef AMTACS_SIM_CATALOG_H
#define AMTACS_SIM_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum sim_priority {
    SIM_PRIO_LOW = 0,    /* served after normal and high */
    SIM_PRIO_NORMAL = 1, /* the default */
    SIM_PRIO_HIGH = 2,   /* served first */
};

struct sim_user_def {
    char *name;
    char *password;
};

struct sim_queue_def {
    char *name;
    char *application;  /* NULL: a general queue usable by every application */
    bool is_default;    /* default queue of its application (or the general default) */
    bool windowed;      /* false: open around the clock */
    long start_s;       /* window start, seconds after midnight */
    long end_s;         /* window end; end < start wraps past midnight */
    long concurrency;   /* parallel jobs; 0 = unlimited */
    enum sim_priority priority;
};

struct sim_wait_def {
    int code;        /* a non-final AMT state shown before the run */
    double duration; /* simulated seconds */
};

struct sim_job_def;

/* One entry of a job's run timeline, sorted by `at` (catalog order on ties). */
struct sim_step {
    double at;                       /* offset from the start of the run */
    const char *text;                /* message template, or NULL for a child start */
    long n;                          /* value of {n} for repeated messages (1-based) */
    const struct sim_job_def *child; /* the job a child start runs, or NULL */
};

enum sim_job_kind {
    SIM_JOB_BATCH,  /* started with jobName */
    SIM_JOB_SCRIPT, /* started with scriptName */
};

struct sim_app_def;

struct sim_job_def {
    char *name;      /* job name, or a script's full path */
    char *base;      /* a script's file name without directory (== name for jobs) */
    enum sim_job_kind kind;
    const struct sim_app_def *app;
    struct sim_wait_def *waits;
    size_t nwaits;
    int run_code;    /* state while running: 2, 7, 8 or 9 */
    bool forever;    /* runs until killed */
    double duration; /* run length when not forever */
    int final_code;  /* code at the end of the run */
    struct sim_step *steps;
    size_t nsteps;
    size_t line;     /* where it is defined, for diagnostics */
};

struct sim_app_def {
    char *name;
    char *user;       /* the application's RunAs user */
    char **users;     /* further valid amtUser names */
    size_t nusers;
    char *script_dir; /* resolves bare script names, e.g. F:\Amt\Scripts\DEMO2 */
    char *default_queue; /* NULL: the general default queue */
    struct sim_job_def *jobs;
    size_t njobs;
    struct sim_job_def *scripts;
    size_t nscripts;
};

struct sim_catalog {
    char *path;
    long first_request_id;
    char *amt_version;
    struct sim_user_def *users;
    size_t nusers;
    long controller_slots;       /* jobs running at once over all queues; 0 = unlimited */
    double poll_interval;        /* seconds between controller polls; 0 = immediate */
    struct sim_queue_def *queues;
    size_t nqueues;
    struct sim_app_def *apps;
    size_t napps;
};

/* Loads and validates a catalog. On failure returns NULL and prints every
 * error as "file:line:column: message" to err (one per line). */
struct sim_catalog *sim_catalog_load(const char *path, FILE *err);
/* Frees the catalog; NULL is a no-op. */
void sim_catalog_free(struct sim_catalog *c);

/* Application by exact name, or NULL. */
const struct sim_app_def *sim_catalog_app(const struct sim_catalog *c, const char *name);
/* Batch job of an application by exact name, or NULL. */
const struct sim_job_def *sim_catalog_job(const struct sim_app_def *app, const char *name);
/* Script by name: a path compares case-insensitively with the scripts' full
 * paths, a bare name resolves against the application's script directory. */
const struct sim_job_def *sim_catalog_script(const struct sim_app_def *app, const char *name);
/* Queue by exact name, or NULL. */
const struct sim_queue_def *sim_catalog_queue(const struct sim_catalog *c, const char *name);
/* The queue a request of `app` lands in without amtQueueName: the
 * application's default_queue, its default queue, else the general default;
 * NULL when there is none (no window, no limit). */
const struct sim_queue_def *sim_catalog_default_queue(const struct sim_catalog *c,
                                                      const struct sim_app_def *app);
/* True if the queue may run requests of the application. */
bool sim_catalog_queue_usable(const struct sim_queue_def *q, const struct sim_app_def *app);
/* True if `user` (case-insensitive) is the application's user or in its users. */
bool sim_catalog_user_valid(const struct sim_app_def *app, const char *user);

#endif
