/*
 * httpd: the daemon's own HTTP endpoint (libmicrohttpd, one internal thread):
 *
 *   GET /healthz          200 while the engine's loop goes round; 503 if it stalled
 *   GET /readyz           200 when the database is reachable too; 503 and why if not
 *   GET /metrics          the Prometheus text format (metrics.h, plus the queue's
 *                         jobs by connection and state, read from the database)
 *   GET /v1/jobs/...      404 saying where jobs are served now: amtacs-web's
 *                         /api/v1/jobs/ID and /api/v1/jobs/ID/log (one home
 *                         for JORS over HTTP)
 *
 * With a token, /metrics requires "Authorization: Bearer TOKEN";
 * the probes stay open (they reveal nothing). Without a token only a loopback
 * address is served. With a certificate and key it speaks HTTPS only.
 * The thread reads the database through a connection of its own, so a slow
 * scrape never holds the engine.
 *
 * Against clients that hold connections open: 32 connections in all, of
 * which 4 only for loopback clients; max_connections_per_client per client
 * address; and a request's headers must be complete header_timeout_ms after
 * the connection opened (or its previous answer), else it is closed.
 * Every answer carries X-Content-Type-Options: nosniff and a
 * Content-Security-Policy that allows nothing. The server itself (these
 * limits, the deadline, the headers, TLS) is httpserv's, shared with
 * amtacs-web; this module is the daemon's endpoints.
 */
#ifndef AMTACS_HTTPD_H
#define AMTACS_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "amtacs/log.h"
#include "amtacs/metrics.h"

struct httpd;

struct httpd_options {
    const char *listen;       /* HOST:PORT; port 0 = any free port (see httpd_port) */
    const char *token;        /* bearer token (copied, wiped at httpd_stop), NULL = none */
    const char *conninfo;     /* database for the queue gauges (copied) */
    struct metrics *metrics;  /* borrowed; must outlive the server */
    const struct logger *lg;  /* borrowed; written from the server's thread */
    long stall_ms;            /* /healthz fails once the loop has not turned for this long */
    const char *tls_cert_file; /* PEM certificate (chain); NULL = plain HTTP */
    const char *tls_key_file;  /* its PEM key: read with secfile_read, wiped once handed over */
    long max_connections_per_client; /* per client address; 0 = 8 */
    long header_timeout_ms;   /* 0 = 10 s */
};

/* Starts serving; NULL with err set (bad address, port in use, ...). */
struct httpd *httpd_start(const struct httpd_options *o, char *err, size_t errlen);
/* The port actually bound. */
unsigned httpd_port(const struct httpd *h);
/* True when it speaks HTTPS. */
bool httpd_tls(const struct httpd *h);
/* Stops the thread, closes everything, frees. NULL is a no-op. */
void httpd_stop(struct httpd *h);

#endif
