/*
 * webpool: amtacs-web's workers. n threads, each with a blocking libpq
 * connection of its own, take requests from one queue in order. A
 * connection logs in with the authenticator's conninfo and at once does
 * SET ROLE acs_web (the login, NOINHERIT, holds no right of its own); it is
 * made when first needed and again after it broke, so a database restart
 * costs the requests in flight, not the server.
 */
#ifndef AMTACS_WEBPOOL_H
#define AMTACS_WEBPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "amtacs/log.h"

struct webpool;
struct webpool_conn; /* one worker's database connection */

/* Runs on a worker thread for each job submitted. */
typedef void (*webpool_work)(void *cls, struct webpool_conn *c, void *job);

struct webpool_options {
    const char *conninfo;    /* copied; its password is never logged */
    unsigned workers;        /* threads (and connections), >= 1 */
    size_t max_queue;        /* jobs waiting at most; webpool_submit refuses beyond */
    const struct logger *lg; /* borrowed */
    webpool_work work;
    void *cls;
};

/* Starts the workers (their connections are made on first use). */
struct webpool *webpool_start(const struct webpool_options *o, char *err, size_t errlen);
/* Queues a job; false when the queue is full or the pool stops (the caller
 * answers it). */
bool webpool_submit(struct webpool *p, void *job);
/* Runs the jobs queued, then joins the workers and closes the connections;
 * webpool_submit refuses from then on. NULL is a no-op. */
void webpool_stop(struct webpool *p);
/* Stops (if not yet) and frees. NULL is a no-op. */
void webpool_free(struct webpool *p);

/* The worker's connection, (re)made if needed; NULL (message in err) when
 * the database cannot be reached. The connection is outside any transaction
 * and in role acs_web. */
PGconn *webpool_db(struct webpool_conn *c, char *err, size_t errlen);

/* The statements (numbered 0..63 by the caller) this connection has
 * prepared: a connection made anew has none. */
bool webpool_is_prepared(const struct webpool_conn *c, unsigned id);
void webpool_mark_prepared(struct webpool_conn *c, unsigned id);

/* Closes the worker's connection (one that failed in a way that may have
 * left it unusable); webpool_db makes a new one. */
void webpool_drop(struct webpool_conn *c);

/* Connects once with conninfo as amtacs-web will and checks what it needs:
 * the login is not a superuser, may SET ROLE acs_web, and the schema has
 * min_function (a regprocedure text of the newest migration it needs). 0, or -1 with the reason in err; a login that
 * inherits rights is reported in warn (else warn is ""). */
int webpool_probe(const char *conninfo, const char *min_function, char *err, size_t errlen, char *warn,
                  size_t warnlen);

#endif
