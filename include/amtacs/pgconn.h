/*
 * pgconn: one asynchronous PostgreSQL connection for an event loop.
 *
 * Connects without blocking (PQconnectStart/Poll), LISTENs to the given
 * channels after every (re)connect, runs queued statements one after another
 * with PQsendQueryParams, and reconnects with backoff when the server goes
 * away. The loop polls pgconn_fd() for pgconn_events() and calls pgconn_io();
 * it also calls pgconn_tick() when pgconn_timeout_ms() says so.
 *
 * A statement queued while the connection is down waits for the reconnect. A
 * statement that was in flight when the connection broke fails with an error:
 * it may or may not have committed, so every write of the daemon is fenced and
 * idempotent.
 */
#ifndef AMTACS_PGCONN_H
#define AMTACS_PGCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "amtacs/log.h"

struct pgconn;

/* The result of one statement: res is NULL and err set on failure. res is
 * owned by pgconn and valid only during the callback. */
typedef void (*pgconn_result_cb)(void *ud, const PGresult *res, const char *err);

struct pgconn_callbacks {
    void (*notify)(void *ud, const char *channel, const char *payload);
    void (*up)(void *ud);   /* connected and listening (after each reconnect) */
    void (*down)(void *ud, const char *why); /* lost or failed to connect */
    void *ud;
    /* A statement's round trip, sent to result (NULL = not wanted). */
    void (*observe)(void *ud, double seconds, bool ok);
};

/* Creates the connection object and starts connecting. `channels` is a
 * NULL-terminated list (copied). NULL when out of memory. */
struct pgconn *pgconn_new(const char *conninfo, const char *const *channels,
                          const struct pgconn_callbacks *cbs, const struct logger *lg);
/* Fails pending statements ("shutting down"), closes, frees. NULL is a no-op. */
void pgconn_free(struct pgconn *pc);

/* The socket to poll, or -1 while there is none (waiting to reconnect). */
int pgconn_fd(const struct pgconn *pc);
/* POLLIN and/or POLLOUT, as the connection needs. */
short pgconn_events(const struct pgconn *pc);
/* Drives the connection after poll() reported `revents` on its socket. */
void pgconn_io(struct pgconn *pc, short revents);
/* Milliseconds until pgconn_tick() is due (reconnect), -1 if never. */
long pgconn_timeout_ms(const struct pgconn *pc, int64_t now_ms);
void pgconn_tick(struct pgconn *pc, int64_t now_ms);

bool pgconn_is_up(const struct pgconn *pc);
/* Statements queued or in flight. */
size_t pgconn_pending(const struct pgconn *pc);

/* Queues a statement with text parameters (copied; NULL = SQL NULL). The
 * callback runs exactly once, from pgconn_io/tick/free. -1 if out of memory. */
int pgconn_query(struct pgconn *pc, const char *sql, int nparams, const char *const *params,
                 pgconn_result_cb cb, void *ud);
/* The same, queued ahead of every statement still waiting (behind the one in
 * flight): for a lease renewal, which must not wait behind a backlog of big
 * batches on a loaded machine. */
int pgconn_query_urgent(struct pgconn *pc, const char *sql, int nparams,
                        const char *const *params, pgconn_result_cb cb, void *ud);

#endif
