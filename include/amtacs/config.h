/*
 * config: one YAML file -> a validated, immutable struct amtacs_config. The
 * struct is built only when the whole file is valid; otherwise every problem is
 * listed as "file:line:column: key: problem". All keys, their types, defaults and
 * ranges live in one table in config.c (config_keys()), and what each type
 * means (how it is read, kept, compared, written and worded in messages) in a
 * second one beside it; validation, defaults, messages, the dump and the
 * references in docs/configuration.md are all made from the two.
 *
 * Relative paths in the file (key_file, tls.ca_file) are taken relative to the
 * directory of the configuration file and stored resolved.
 */
#ifndef AMTACS_CONFIG_H
#define AMTACS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_log_level {
    CONFIG_LOG_ERROR = 0, /* errors only */
    CONFIG_LOG_WARN,      /* and warnings */
    CONFIG_LOG_INFO,      /* and one line per job event (the default) */
    CONFIG_LOG_DEBUG,     /* and every request and statement */
};

/* One AMT Batch Server connection (an "agent" in OpCon terms). */
struct amtacs_connection {
    char *name;           /* unique, [A-Za-z0-9_.-]{1,64} */
    char *url;            /* http:// or https:// base URL, as written */
    bool https;           /* url is https:// */
    char *batch_user;     /* Batch User whose (encrypted) password is in the database */
    long retain_log_days; /* days to keep job logs, 1..3650 */
    bool allow_kill;      /* kill requests are carried out (else refused) */
    long max_in_flight;   /* jobs started and not finished, at most */
    int64_t failover_after_ms; /* server silent this long: queued jobs go to their next
                                  listed connection (Integration Selection) */
    struct {
        int64_t initial_delay_ms; /* from start to the first status check */
        int64_t interval_ms;      /* between status checks */
        double backoff;           /* interval multiplier per check, 1.0 = fixed */
        int64_t max_interval_ms;  /* backoff stops growing here */
    } poll;
    struct {
        long attempts;        /* Start tries before WEB_SERVER_ERROR (23) */
        int64_t delay_ms;     /* before the second try */
        double backoff;       /* delay multiplier per try */
        int64_t max_delay_ms; /* delay stops growing here */
    } start_retry;
    struct {
        int64_t connect_timeout_ms; /* TCP + TLS connect */
        int64_t timeout_ms;         /* whole request */
        long max_body;              /* reply bodies larger than this many bytes fail */
        long max_connections;       /* HTTP connections to the server, at most */
    } http;
    struct {
        bool verify;   /* check the server certificate and host name */
        char *ca_file; /* CA bundle (resolved path), NULL = the system store */
    } tls;
    char *proxy; /* HTTP proxy URL, NULL = none (the environment's is ignored too) */
    size_t line; /* line of the connection in the file, for messages */
};

struct amtacs_config {
    char *source; /* the file name it was loaded from */
    struct {
        char *conninfo; /* libpq connection string or URI */
    } database;
    char *key_file; /* resolved path of the secret key file (not opened here) */
    enum config_log_level log_level;
    struct {
        char *id;           /* "" = hostname:pid, filled in by the daemon */
        long lease_seconds; /* a claimed job's lease, renewed while the daemon lives */
        int64_t renew_interval_ms; /* between lease renewals; 0 = a third of the lease */
        long claim_batch;   /* jobs claimed per query at most */
        long max_log_bytes; /* a stored job log is cut at this size */
        int64_t purge_interval_ms; /* between purges of expired job logs */
        int64_t heartbeat_interval_ms; /* between heartbeats of each connection */
        char *alert_command;       /* run for jobs ending 11/12/23/24; "" = none */
        long alert_command_max;    /* alert commands running at once at most */
    } daemon;
    struct {
        char *listen;     /* HOST:PORT of the daemon's HTTP endpoint; "" = none */
        char *token_file; /* resolved path of the bearer token file, NULL = no token */
        char *tls_cert_file; /* resolved path of the PEM certificate, NULL = plain HTTP */
        char *tls_key_file;  /* resolved path of its PEM private key (both or neither) */
        long max_connections_per_client; /* open connections per client address */
        int64_t header_timeout_ms; /* from a connection's start (or previous answer) to the
                                      end of a request's headers */
    } http;
    struct {
        char *listen;        /* HOST:PORT amtacs-web serves on */
        char *conninfo;      /* its authenticator login; NULL = unset (amtacs-web refuses) */
        char *tls_cert_file; /* resolved path of the PEM certificate, NULL = plain HTTP */
        char *tls_key_file;  /* resolved path of its PEM private key (both or neither) */
        char *public_key_file; /* resolved path of the public key that seals Batch User
                                  passwords; NULL = key_file + ".pub" */
        bool behind_proxy;   /* a proxy in front speaks HTTPS: plain HTTP off loopback is fine */
        int64_t session_idle_ms;     /* a session unused this long ends */
        int64_t session_lifetime_ms; /* a session ends this long after its login */
        long max_body;               /* largest request body in bytes */
        long max_connections;        /* open connections in all (streams included) */
        long max_connections_per_client; /* open connections per client address */
        int64_t header_timeout_ms;   /* as http.header_timeout */
        long db_pool;                /* database connections and worker threads */
    } web;
    struct amtacs_connection *connections; /* in file order */
    size_t n_connections;                  /* >= 1 */
};

/* The keys a reload may not change (those without .reload) whose values
 * differ between old and cur: up to max of their paths into changed (static
 * strings); returns how many differ. */
size_t config_restart_keys(const struct amtacs_config *old, const struct amtacs_config *cur,
                           const char **changed, size_t max);
/* True if every "connections[]." key whose path continues with prefix
 * ("" or NULL: every key; "http." the HTTP settings) is the same in a and b. */
bool config_connection_same(const struct amtacs_connection *a,
                            const struct amtacs_connection *b, const char *prefix);

/* The list of problems of a file that did not load. */
struct config_errors;

/* Loads and validates a file. Returns a config the caller releases with
 * config_free(), or NULL with *errs set to every problem found (release with
 * config_errors_free()); *errs is NULL on success. errs may be NULL. */
const struct amtacs_config *config_load(const char *path, struct config_errors **errs)
    __attribute__((warn_unused_result));
/* As config_load, from memory; name is used in messages; relative paths stay
 * relative to the working directory. */
const struct amtacs_config *config_load_string(const char *name, const char *text, size_t len,
                                               struct config_errors **errs)
    __attribute__((warn_unused_result));
/* Releases a config; NULL is a no-op. */
void config_free(const struct amtacs_config *cfg);

/* The connection with that exact name (borrowed from cfg), or NULL. */
const struct amtacs_connection *config_find_connection(const struct amtacs_config *cfg,
                                                       const char *name);
/* "error", "warn", "info" or "debug". */
const char *config_log_level_name(enum config_log_level level);

/* Number of problems (>= 1 for a list returned by config_load). */
size_t config_errors_count(const struct config_errors *errs);
/* The i-th problem, "file:line:column: key: problem" (borrowed), or NULL past the end. */
const char *config_errors_get(const struct config_errors *errs, size_t i);
/* Writes every problem, one per line. */
void config_errors_print(const struct config_errors *errs, FILE *out);
/* Releases the list; NULL is a no-op. */
void config_errors_free(struct config_errors *errs);

/* Writes the effective configuration, every key with defaults filled in, as
 * YAML that config_load accepts again. A password inside database.conninfo is
 * written as "********". Returns false if writing failed. */
bool config_dump(const struct amtacs_config *cfg, FILE *out) __attribute__((warn_unused_result));

/* ---- the key table, for documentation and tools ---- */

enum config_key_type {
    CONFIG_T_STRING = 0, /* text, no control characters; min..max is its length */
    CONFIG_T_CONNINFO,   /* libpq connection string, checked with PQconninfoParse */
    CONFIG_T_PATH,       /* a file path, not opened */
    CONFIG_T_FILE,       /* a file path that must be readable */
    CONFIG_T_NAME,       /* [A-Za-z0-9_.-], min..max characters */
    CONFIG_T_URL,        /* http:// or https://, host, optional port and path */
    CONFIG_T_LOG_LEVEL,  /* error | warn | info | debug */
    CONFIG_T_INT,        /* decimal integer in min..max */
    CONFIG_T_NUMBER,     /* decimal number in min..max */
    CONFIG_T_BOOL,       /* true | false */
    CONFIG_T_DURATION,   /* see duration.h; min..max in milliseconds */
    CONFIG_T_CONNECTIONS, /* the non-empty list of connections */
};

struct config_key {
    const char *path;          /* "daemon.lease_seconds", "connections[].poll.interval" */
    enum config_key_type type;
    bool required;             /* no default: the file must give it */
    bool reload;               /* a reload may change it; false: takes a restart */
    double min, max;           /* see the type */
    double def;                /* default of INT, NUMBER, BOOL (0/1), DURATION (ms), LOG_LEVEL */
    const char *def_s;         /* default of the text types; NULL = unset */
    const char *help;          /* one line for humans */
    size_t offset;             /* of the value in amtacs_config, or in amtacs_connection for
                                  "connections[]." keys */
};

/* The table, in file order; *count receives its length. */
const struct config_key *config_keys(size_t *count);
/* A short name for the type: "string", "duration", ... */
const char *config_key_type_name(enum config_key_type type);
/* Writes the Markdown table of all keys (as in docs/configuration.md). Returns
 * false if writing failed. */
bool config_write_reference(FILE *out) __attribute__((warn_unused_result));
/* Writes the Markdown table of the value types, how each is written (as in
 * docs/configuration.md). Returns false if writing failed. */
bool config_write_types(FILE *out) __attribute__((warn_unused_result));

#endif
