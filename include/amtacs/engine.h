/*
 * engine: the connector's event loop and job state machine.
 *
 * One thread: a curl multi handle carries every HTTP call of every job, and
 * the PostgreSQL socket and a signal descriptor are waited on in the same
 * poll. Jobs move queued → starting → running → finished (see docs/daemon.md).
 */
#ifndef AMTACS_ENGINE_H
#define AMTACS_ENGINE_H

#include <stddef.h>

#include "amtacs/config.h"
#include "amtacs/log.h"
#include "amtacs/metrics.h"
#include "amtacs/vault.h"

struct engine;

struct engine_options {
    const struct amtacs_config *cfg; /* the engine owns it once engine_new succeeded */
    const char *config_path;         /* what SIGHUP reloads (copied); NULL: no reload */
    struct logger *lg;               /* borrowed; a reload sets its level */
    struct metrics *metrics;         /* borrowed; NULL: none kept */
    const struct vault_secret *key;  /* borrowed: opens Batch User passwords */
    const char *owner;               /* this instance's id for leases (copied) */
    int signal_fd;                   /* signalfd delivering SIGTERM/SIGINT/SIGHUP, or -1 */
    long shutdown_grace_ms;          /* at most this long to finish writes on SIGTERM */
};

/* NULL with err set on failure. */
struct engine *engine_new(const struct engine_options *opt, char *err, size_t errlen);
/* Runs until stopped by a signal; returns the process exit status. */
int engine_run(struct engine *e);
void engine_free(struct engine *e);

#endif
