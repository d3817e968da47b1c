/*
 * alertcmd: runs daemon.alert_command, a few at a time.
 *
 * Each run is `/bin/sh -c COMMAND` with a clean start whatever the daemon's
 * state: no signal blocked, every signal at its default disposition, standard
 * input from /dev/null, standard output and error the daemon's, no other
 * descriptor (not the database's, the AMT server's or the HTTP endpoint's),
 * and a minimal environment: PATH=/usr/local/bin:/usr/bin:/bin, LANG, LC_ALL
 * and TZ when the daemon has them, and the caller's AMTACS_* variables. At
 * most `max` run at once; the others wait in order and start as running ones
 * end (alertcmd_poll reaps them).
 */
#ifndef AMTACS_ALERTCMD_H
#define AMTACS_ALERTCMD_H

#include <stddef.h>

#include "amtacs/log.h"

#define ALERTCMD_PATH "/usr/local/bin:/usr/bin:/bin"

struct alertcmd;

/* A runner that logs to lg (not owned; may be NULL). NULL when out of memory. */
struct alertcmd *alertcmd_new(const struct logger *lg);
/* Runs of commands still waiting are not made and each is logged
 * (alert.command_not_run); running ones go on and are not waited for. NULL is
 * a no-op. */
void alertcmd_free(struct alertcmd *a);

/* Queues one run of `command` with the environment variables vars[0..nvars)
 * ("NAME=VALUE", copied) and starts it at once when fewer than `max` run.
 * `ctx` names the job in log lines (copied). 0, or -1 when out of memory
 * (logged). */
int alertcmd_run(struct alertcmd *a, const char *command, const char *const *vars, size_t nvars,
                 int max, const struct log_ctx *ctx);
/* Reaps the runs that ended (a failure status is logged) and starts waiting
 * ones, first queued first, while fewer than `max` run. Call it often: from
 * the event loop. */
void alertcmd_poll(struct alertcmd *a, int max);

/* How many run now, and how many wait. */
size_t alertcmd_running(const struct alertcmd *a);
size_t alertcmd_waiting(const struct alertcmd *a);

#endif
