/*
 * httpserv: the hardened HTTP(S) server under the daemon's endpoint (httpd)
 * and amtacs-web. libmicrohttpd runs on epoll from one thread of its own; the
 * owner supplies a handler that sees each request once its headers (and body,
 * if bodies are allowed) are in.
 *
 * What it does for every server built on it:
 * - connection_limit connections in all, of which loopback_reserve only for
 *   loopback clients (the host's own probes are never crowded out), and
 *   max_connections_per_client per client address;
 * - a request's headers must be complete header_timeout_ms after the
 *   connection opened (or its previous answer), else it is shut down: MHD's
 *   own idle timeout restarts with every byte, this one does not;
 * - a body larger than max_body is refused with 413 (by its Content-Length
 *   before it is read, else once it passes the limit; the rest is discarded);
 * - every answer carries X-Content-Type-Options: nosniff, a
 *   Content-Security-Policy that allows nothing (default-src 'none';
 *   frame-ancestors 'none'), Referrer-Policy: no-referrer and
 *   Cache-Control: no-store (a handler may set these last two itself: the
 *   reply then carries the handler's alone);
 * - with a certificate and key, HTTPS only (TLS 1.2 and 1.3); the key is read
 *   with secfile_read into locked memory and wiped once handed over.
 *
 * A handler either fills the reply and returns, or calls httpserv_defer and
 * hands the request to another thread, which fills the reply and calls
 * httpserv_finish (the connection is suspended meanwhile), or
 * httpserv_finish_stream for a body that goes on (server-sent events): the
 * status and headers go out at once, then what httpserv_stream_write adds,
 * from any thread, until httpserv_stream_close. While nothing is pending the
 * connection is suspended: an open stream costs no polling and no timer, only
 * its connection's memory. The headers, query
 * arguments, body and client address are copied when the request is complete,
 * so they may be read from any thread; header values and the body are wiped
 * when the request is freed (they may hold passwords, cookies, tokens).
 */
#ifndef AMTACS_HTTPSERV_H
#define AMTACS_HTTPSERV_H

#include <stdbool.h>
#include <stddef.h>

#include "amtacs/buf.h"
#include "amtacs/log.h"

struct httpserv;
struct httpserv_req;

/* Called on the server's thread, once per request. */
typedef void (*httpserv_handler)(void *cls, struct httpserv_req *req);

struct httpserv_options {
    const char *listen;        /* HOST:PORT; port 0 = any free port (see httpserv_port) */
    const char *setting;       /* "http" or "web": names the settings in messages */
    const char *tls_cert_file; /* PEM certificate (chain); NULL = plain HTTP */
    const char *tls_key_file;  /* its PEM key */
    unsigned connection_limit; /* connections in all; 0 = 32 */
    unsigned loopback_reserve; /* of them, kept for loopback clients; 0 = 4 */
    long max_connections_per_client; /* per client address; 0 = 8 */
    long header_timeout_ms;    /* 0 = 10 s */
    size_t max_body;           /* largest request body; 0 = the handler runs on the headers
                                  alone and any body is ignored */
    size_t max_reply;          /* largest reply body; 0 = 64 MiB */
    bool problem_json;         /* the server's own refusals (413) as RFC 9457
                                  application/problem+json, not text/plain */
    const struct logger *lg;   /* borrowed; written from the server's thread */
    httpserv_handler handler;
    void *cls;                 /* handed to handler */
};

/* Starts serving; NULL with err set (bad address, port in use, bad key...). */
struct httpserv *httpserv_start(const struct httpserv_options *o, char *err, size_t errlen);
/* The port actually bound. */
unsigned httpserv_port(const struct httpserv *s);
/* True when it speaks HTTPS. */
bool httpserv_tls(const struct httpserv *s);
/* Stops the thread, closes every connection, frees. No request may still be
 * deferred (finish them first); open streams are ended (their owners' handles
 * stay valid until released; writes to them fail). NULL is a no-op. */
void httpserv_stop(struct httpserv *s);

/* ---- one request (valid until its reply is sent) ---- */

const char *httpserv_method(const struct httpserv_req *r);
/* The path, without the query. */
const char *httpserv_path(const struct httpserv_req *r);
/* The first header of that name (case-insensitive), or NULL. */
const char *httpserv_header(const struct httpserv_req *r, const char *name);
/* The last header of that name: what the nearest proxy added, where a
 * header may be repeated (X-Forwarded-For). */
const char *httpserv_header_last(const struct httpserv_req *r, const char *name);
/* The first query argument of that name, URL-decoded, or NULL. */
const char *httpserv_query(const struct httpserv_req *r, const char *name);
/* Calls fn for each query argument; stops and returns false when fn does. */
bool httpserv_query_each(const struct httpserv_req *r,
                         bool (*fn)(void *cls, const char *name, const char *value), void *cls);
/* The body (NUL-terminated; *len bytes); "" when there was none. */
const char *httpserv_body(const struct httpserv_req *r, size_t *len);
/* The client's address, numeric ("127.0.0.1", "::1"). */
const char *httpserv_client(const struct httpserv_req *r);
/* True when the server speaks HTTPS. */
bool httpserv_req_tls(const struct httpserv_req *r);

/* The reply: status and content type (a static string), then the body. */
void httpserv_reply(struct httpserv_req *r, unsigned status, const char *ctype);
struct buf *httpserv_reply_body(struct httpserv_req *r);
/* Adds a header to the reply (both copied); false when out of room. */
bool httpserv_reply_header(struct httpserv_req *r, const char *name, const char *value);

/* In the handler: the reply will come from another thread. */
void httpserv_defer(struct httpserv_req *r);
/* From any thread, once per deferred request: the reply is complete. The
 * request must not be touched after. */
void httpserv_finish(struct httpserv_req *r);

/* ---- streamed replies ---- */

struct httpserv_stream;

/* Instead of httpserv_finish, once per deferred request: answers with the
 * status, content type and headers set so far and a body of unknown length
 * (chunked) that httpserv_stream_write fills. The reply body set so far is
 * sent first. Returns the caller's handle, which it must give back with
 * httpserv_stream_release; NULL when out of memory (the request is then
 * answered 500 and ends). The request must not be touched after. */
struct httpserv_stream *httpserv_finish_stream(struct httpserv_req *r);
/* Queues len bytes (copied) and wakes the connection. False when the stream
 * has ended: closed, the client went away, the server stops, or more than
 * HTTPSERV_STREAM_MAX_PENDING bytes wait for a client that does not read (the
 * stream is then ended: a slow client cannot make the server hold its
 * events without bound). */
bool httpserv_stream_write(struct httpserv_stream *st, const void *data, size_t len);
#define HTTPSERV_STREAM_MAX_PENDING (1u << 20)
/* False once the stream has ended (as for a failed write). A client that
 * went away while its connection waited is noticed at the next write. */
bool httpserv_stream_alive(struct httpserv_stream *st);
/* Ends the body once what is queued is sent. */
void httpserv_stream_close(struct httpserv_stream *st);
/* Gives the caller's handle back (closing the stream if it is open). NULL is
 * a no-op. */
void httpserv_stream_release(struct httpserv_stream *st);

#endif
