/*
 * webevents: amtacs-web's server-sent events hub. One thread and one database
 * connection of its own serve every open stream: it LISTENs to the hints of
 * sql/0011 and 0014 (acs_job_state, acs_alerts, acs_comm, acs_job_messages,
 * acs_job_finished), reads what changed in batches (as acs_viewer, the least
 * role every caller has) and writes each event once per stream. A
 * notification is never acted on by itself: it only makes the hub read.
 *
 * A stream is set up by a pool worker in the caller's role (webapi): it
 * subscribes (the hub queues events for it from that moment), reads what
 * the caller is owed so far, answers with httpserv_finish_stream and attaches
 * the stream; the hub then sends what it queued and goes on live. Every few
 * seconds the hub checks, in one statement, that each stream's session or
 * token is still valid and in the same role; a stream whose is not ends.
 */
#ifndef AMTACS_WEBEVENTS_H
#define AMTACS_WEBEVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amtacs/buf.h"
#include "amtacs/httpserv.h"
#include "amtacs/log.h"

struct webevents;
struct webevents_sub;

struct webevents_options {
    const char *conninfo;     /* the authenticator login (copied) */
    long heartbeat_ms;        /* a comment line this often on every stream; 0 = 15 s */
    long session_check_ms;    /* sessions and tokens checked this often; 0 = 5 s */
    const struct logger *lg;  /* borrowed */
};

/* The position in /events: every job state change with (state_xid, id) up to
 * (xid, job) and every alert with (raised_xid, id) up to (axid, alert) has
 * been sent. As an event id: "XID.JOB.AXID.ALERT". A stream from a server
 * before migration 18 sent "XID.JOB.ALERT": such an id parses with
 * alert_id_only set (the alert's raised_xid is to be looked up). */
struct webevents_pos {
    uint64_t xid;
    int64_t job;
    uint64_t axid;
    int64_t alert;
    bool alert_id_only;
};

/* Who a stream is for: the SHA-256 (hex) of its session cookie or token, the
 * role it was opened in, and what that role may read. */
struct webevents_who {
    char hash[65];
    char role[16];
    bool alerts;   /* may read acs.alerts */
    bool comm;     /* may read acs.connections */
};

/* Starts the thread; its connection is made at once (NULL with err if the
 * database refuses) and again after it broke. */
struct webevents *webevents_start(const struct webevents_options *o, char *err, size_t errlen);
/* Ends every stream, stops the thread, closes the connection. NULL: no-op. */
void webevents_stop(struct webevents *h);
void webevents_free(struct webevents *h);

/* /events: subscribes; events after *pos (the hub's position now) are
 * queued for it. NULL when the hub stops or is out of memory. */
struct webevents_sub *webevents_subscribe(struct webevents *h, const struct webevents_who *w,
                                          struct webevents_pos *pos);
/* /jobs/{id}/log/stream: subscribes to a job that has not finished, n
 * messages (the last with seq last_seq) having been read; the hub reads the
 * job again at once, so that nothing between that read and now is missed. */
struct webevents_sub *webevents_subscribe_log(struct webevents *h, const struct webevents_who *w,
                                              int64_t job, int64_t n, int64_t last_seq);
/* Hands the stream to the hub (which owns the handle from now on) and sends
 * what it queued. */
void webevents_attach(struct webevents_sub *sub, struct httpserv_stream *st);
/* Drops a subscription that got no stream (the request failed). */
void webevents_cancel(struct webevents_sub *sub);

/* ---- event text (shared by the hub and the first read) ---- */

/* "XID.JOB.ALERT" into *pos; false if malformed. */
bool webevents_parse_id(const char *s, struct webevents_pos *pos);
/* The event id of a position (WEBEVENTS_ID_MAX bytes at most). */
#define WEBEVENTS_ID_MAX 96
void webevents_pos_id(const struct webevents_pos *p, char *out, size_t len);
/* One event: "id: ID\n" (when id), "event: NAME\ndata: DATA\n\n". data must
 * be one line (JSON). 0 or -1 (out of room). */
int webevents_put(struct buf *b, const char *id, const char *name, const char *data, size_t len);
/* A message event of the log stream: id n, {"n":n,"text":TEXT}; text is raw
 * (quoted here) or already a JSON string (quoted = true). */
int webevents_put_message(struct buf *b, int64_t n, const char *text, size_t len, bool quoted);
/* The message lines of a merged job log (each a JSON string), from the
 * (after+1)-th on, as message events; *n is set to the last line's number. */
int webevents_put_log_lines(struct buf *b, const char *log, int64_t after, int64_t *n);

#endif
