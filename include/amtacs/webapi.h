/*
 * webapi: amtacs-web's /api/v1 (JSON; errors as RFC 9457
 * application/problem+json). Each request is handed to a worker of the
 * pool (webpool) and runs in a transaction of its own:
 *   BEGIN;
 *   (as acs_web) who is asking: acs.web_session_get or acs.api_token_get;
 *   set_config('role', 'acs_<the caller's role>', true) (SET LOCAL ROLE),
 *   set_config('acs.actor', NAME, true), set_config('acs.actor_address', ADDRESS, true);
 *   the endpoint's statements;
 *   COMMIT;
 * so PostgreSQL itself refuses what the caller's role may not do (SQLSTATE
 * 42501 becomes 403 with PostgreSQL's message) and every audited action
 * names the caller and its address. Endpoints: docs/web.md.
 */
#ifndef AMTACS_WEBAPI_H
#define AMTACS_WEBAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "amtacs/httpserv.h"
#include "amtacs/log.h"

struct webapi;

struct webapi_options {
    const char *conninfo;    /* the authenticator login (copied) */
    unsigned db_pool;        /* workers and connections */
    long session_idle_s;     /* a session unused this long ends */
    long session_lifetime_s; /* a session ends this long after its login */
    bool secure_cookie;      /* mark the cookie Secure (HTTPS here or at the proxy) */
    bool behind_proxy;       /* take the client address the proxy forwards */
    const char *public_key_file; /* seals Batch User passwords (copied); NULL: none */
    long heartbeat_ms;       /* event streams: a comment line this often; 0 = 15 s */
    long session_check_ms;   /* event streams: their session checked this often; 0 = 5 s */
    const struct logger *lg; /* borrowed */
};

struct webapi *webapi_new(const struct webapi_options *o, char *err, size_t errlen);
/* The httpserv handler; cls is the webapi. */
void webapi_handle(void *cls, struct httpserv_req *req);
/* Answers the requests queued and stops the workers; requests after get
 * 503; then ends every event stream. Call before httpserv_stop (no request
 * may stay deferred). */
void webapi_stop(struct webapi *a);
/* Stops (if not yet) and frees, after httpserv_stop. NULL is a no-op. */
void webapi_free(struct webapi *a);

/* The routes served, as METHOD and a path under /api/v1 with {id} and {name}
 * for its arguments ("/jobs/{id}/log"): fills up to max of each and returns
 * how many there are. The OpenAPI document is checked against this list. */
size_t webapi_routes(const char **methods, const char **paths, size_t max);

#endif
