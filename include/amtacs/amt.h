/*
 * amt: the asynchronous client of the AMT Batch Server REST interface
 * (docs/amt-batch-api.md), on a curl multi handle owned by the caller.
 *
 * One `struct amt_client` per AMT connection. Calls return at once; the
 * callback runs later from amt_multi_dispatch(), once, with the reply. The
 * client logs on by itself when it has no token, reuses the token for every
 * call, and on a 401 logs on again once and repeats the call; only a refused
 * logon is AMT_ERR_AUTH. Reply bodies are capped and strictly checked.
 */
#ifndef AMTACS_AMT_H
#define AMTACS_AMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "amtacs/jobspec.h"
#include "amtacs/log.h"

struct amt_client;

enum amt_status {
    AMT_OK = 0,
    AMT_ERR_TRANSPORT, /* could not connect, reset, timed out: try again later */
    AMT_ERR_SERVER,    /* 5xx: the server is in trouble: try again later */
    AMT_ERR_PROTOCOL,  /* the answer broke the contract (JSON, size, type): try again later */
    AMT_ERR_AUTH,      /* logon refused (24 AUTHENTICATION_ERROR) */
    AMT_ERR_REJECTED,  /* the server refused the request (4xx other than 401) */
    AMT_ERR_NOPASSWORD,/* no usable password for the Batch User */
    AMT_ERR_CANCELLED, /* amt_client_free() while the call was pending */
};

/* The calls of the interface (a logon included: the client makes it itself). */
enum amt_call {
    AMT_CALL_HEARTBEAT,
    AMT_CALL_LOGON,
    AMT_CALL_START,
    AMT_CALL_KILL,
    AMT_CALL_MONITOR,
    AMT_CALL_MONITOR_MANY,
    AMT_CALL_MESSAGES,
};

/* True for the statuses where repeating the same call later may succeed. */
bool amt_status_transient(enum amt_status st);
/* A short name, "transport", "auth", ... */
const char *amt_status_name(enum amt_status st);
/* The call's name in the contract: "heartbeat", "logon", "start", "kill",
 * "monitor", "monitor_jobs", "messages" (labels for metrics). */
const char *amt_call_name(enum amt_call call);


/* Told of every call that went over the network, once it ended. */
typedef void (*amt_observe_fn)(void *ud, enum amt_call call, double seconds,
                               enum amt_status status);

/* The settings of one connection (copied by amt_client_new). */
struct amt_settings {
    const char *name;        /* connection name, for messages */
    const char *url;         /* base URL, e.g. http://10.1.29.5:9001 */
    const char *user;        /* Batch User (API user) */
    long connect_timeout_ms;
    long timeout_ms;
    long low_speed_ms;       /* a transfer moving under 1 byte/s for this long fails
                                (transport.stalled); 0 = min(timeout_ms, 30 s) */
    size_t max_body;         /* reply bodies larger than this fail (AMT_ERR_PROTOCOL) */
    bool tls_verify;         /* TLS 1.2 or later is required either way */
    const char *ca_file;     /* NULL = system store */
    const char *proxy;       /* proxy URL; NULL or "" = none, whatever the environment
                                (http_proxy, https_proxy) says */
    long max_connections;    /* keep-alive connections to this server at most */
    const struct logger *lg; /* at debug level, curl's exchange is logged: headers with the
                                token redacted, bodies by size only (may be NULL) */
    amt_observe_fn observe;  /* may be NULL */
    void *observe_ud;
};

/* Supplies the Batch User's password for a logon: returns a NUL-terminated
 * string the client wipes and releases with `release` right after the logon
 * request is built, or NULL with a reason in err. */
typedef char *(*amt_password_fn)(void *ud, const char *user, char *err, size_t errlen);
typedef void (*amt_password_release_fn)(char *password);

struct amt_child {
    int id;
    int code;
    const char *name;
};

struct amt_job {
    int id;        /* BatchRequestId */
    int code;      /* the AMT state */
    long message_count;  /* -1 when the server does not say */
    size_t nchildren;
    const struct amt_child *children;
};

struct amt_message {
    long seq;
    int id;           /* the BatchRequestId that wrote it (the task or a child) */
    const char *text; /* valid UTF-8 without NULs, at most 64 KiB */
};

/* What a call produced; valid only during the callback. */
struct amt_reply {
    enum amt_status status;
    enum amt_call call;
    double seconds;     /* wall-clock time of the HTTP transfer (the last one, after a
                           repeat on 401); 0 when nothing was sent */
    long http_status;   /* 0 when no HTTP answer arrived */
    int error_code;     /* the server's errorCode, 0 if none */
    const char *error;  /* human text for a failure ("" on success); never a secret, never
                           more of the answer than a short sanitized excerpt */
    const char *error_name; /* a stable short name of the failure ("" on success), e.g.
                               "json.depth", "field.missing", "http.5xx", "body.too_large":
                               the list is in docs/amt-batch-api.md, "Hostile answers" */
    bool maybe_delivered; /* a failed call may still have reached the server (bytes of the
                             request went out, or a 5xx came back) */
    int batch_request_id;           /* start, kill */
    const struct amt_job *jobs;     /* monitor (1), monitor many (n) */
    size_t njobs;
    const int *unknown;             /* monitor many: ids the server did not know */
    size_t nunknown;
    const struct amt_message *messages; /* messages */
    size_t nmessages;
    long next;                      /* messages: the `after` of the next page */
    bool more;                      /* messages: another page follows */
    bool monitor_jobs;              /* heartbeat: the server offers MonitorJobs */
    bool idempotent_start;          /* heartbeat: Start is idempotent per taskId */
    const char *amt_version;        /* heartbeat */
};

typedef void (*amt_cb)(void *ud, const struct amt_reply *reply);

/* What to start. Strings are copied into the request body at once. */
struct amt_start {
    const char *task_id; /* UUID recorded before the call: makes Start idempotent */
    const struct jobspec *spec; /* the job: jobName/taskValues or scriptName/scriptParameters
                                   by its kind */
    bool fresh_connection; /* never reuse a kept-alive connection: libcurl re-sends a
                              request whose reused connection died, which a server
                              without idempotent Start would take as a second Start */
};

/* Initialises libcurl (instead of curl_global_init) so that every block it
 * frees is wiped first: its copies of requests and answers hold the password
 * and the token. Call once before any other curl function; 0 on success.
 * amt_global_cleanup() undoes it. */
int amt_global_init(void);
void amt_global_cleanup(void);

/* Creates a client on `multi` (not owned). NULL on bad settings (err set). */
struct amt_client *amt_client_new(CURLM *multi, const struct amt_settings *s,
                                  amt_password_fn password, amt_password_release_fn release,
                                  void *password_ud, char *err, size_t errlen);
/* Cancels pending calls (their callbacks run with AMT_ERR_CANCELLED), wipes the
 * token, frees. NULL is a no-op. */
void amt_client_free(struct amt_client *c);
/* Forgets the token so the next call logs on again (e.g. after a password change). */
void amt_client_forget_token(struct amt_client *c);
/* Calls in flight on this client. */
size_t amt_client_pending(const struct amt_client *c);

/* The calls. Each returns 0 when queued: the callback will run exactly once,
 * usually from amt_multi_dispatch(), but before the call returns when the
 * failure is immediate (no password for the logon). It returns
 * -1 when it could not even be queued (out of memory, bad argument): then the
 * callback does not run. */
int amt_heartbeat(struct amt_client *c, amt_cb cb, void *ud);
int amt_start_job(struct amt_client *c, const struct amt_start *job, amt_cb cb, void *ud);
int amt_kill(struct amt_client *c, int batch_request_id, amt_cb cb, void *ud);
int amt_monitor(struct amt_client *c, int batch_request_id, amt_cb cb, void *ud);
int amt_monitor_many(struct amt_client *c, const int *ids, size_t n, amt_cb cb, void *ud);
int amt_messages(struct amt_client *c, int batch_request_id, long after, int limit, amt_cb cb,
                 void *ud);

/* Reads finished transfers off `multi` and runs their callbacks. Call after
 * curl_multi_perform()/curl_multi_socket_action(). Transfers not made by this
 * module are left alone (returned count excludes them). */
size_t amt_multi_dispatch(CURLM *multi);

/* The parser of every answer, exposed for tests and fuzzing: fills `reply`
 * (whose pointers stay valid until amt_parsed_free) from the HTTP status and
 * the raw body, which may hold anything, NULs included. A 2xx body must pass
 * jsoncheck (include/amtacs/jsoncheck.h) and the call's field rules, else
 * AMT_ERR_PROTOCOL with a named error; any other status is the matching error
 * with the server's errorCode and a sanitized excerpt of its description.
 * Returns NULL only when out of memory (the reply says so). */
struct amt_parsed;
struct amt_parsed *amt_parse_reply(enum amt_call call, long http_status, const char *body,
                                   size_t len, struct amt_reply *reply);
void amt_parsed_free(struct amt_parsed *p);
/* True for a Content-Type a JSON answer may carry: application/json, any
 * case, with no parameter but charset=utf-8. */
bool amt_content_type_ok(const char *content_type);

#endif
