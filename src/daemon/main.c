/*
 * amtacsd: the connector daemon. A thin driver: parse the command line, load
 * the configuration and the secret key, block the signals the engine reads
 * from a signalfd, and run the engine until it stops.
 */
#define _GNU_SOURCE /* gethostname */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <yaml.h>

#include "amtacs/amt.h"
#include "amtacs/config.h"
#include "amtacs/coredump.h"
#include "amtacs/db.h"
#include "amtacs/engine.h"
#include "amtacs/httpd.h"
#include "amtacs/metrics.h"
#include "amtacs/log.h"
#include "amtacs/srvargs.h"
#include "amtacs/secfile.h"
#include "amtacs/vault.h"


/* Reads the bearer token (one line; surrounding white space dropped) into
 * tok. The token opens the job logs: the file must be one only the daemon's
 * user (or root) could have written and nobody else can read (secfile.h). */
static int read_token(const char *path, char *tok, size_t len, char *err, size_t errlen)
{
    size_t n;
    if (secfile_read("http.token_file", path, (unsigned char *)tok, len - 1, &n, err, errlen)) {
        if (strstr(err, "is larger than"))
            snprintf(err, errlen, "http.token_file %s must hold one token of 16 to %zu "
                     "characters without spaces", path, len - 2);
        return -1;
    }
    tok[n] = '\0';
    char *a = tok;
    while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r')
        a++;
    size_t l = strlen(a);
    while (l && (a[l - 1] == ' ' || a[l - 1] == '\t' || a[l - 1] == '\n' || a[l - 1] == '\r'))
        l--;
    memmove(tok, a, l);
    tok[l] = '\0';
    bool bad = l < 16 || l != strlen(tok) || strpbrk(tok, " \t\r\n") != NULL;
    if (bad) {
        sodium_memzero(tok, len);
        snprintf(err, errlen, "http.token_file %s must hold one token of 16 to %zu characters "
                 "without spaces", path, len - 2);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amtacsd [-c FILE] [-n] [-V]\n"
            "  -c, --config FILE  configuration (default $AMTACS_CONFIG or %s)\n"
            "  -n, --check        check the configuration, print it with defaults, and exit\n"
            "  -V, --version      print the version and exit\n"
            "Signals: SIGTERM/SIGINT stop gracefully (a second one stops at once);\n"
            "SIGHUP reloads the configuration (refused, with the reasons, if it is broken).\n",
            SRVARGS_DEFAULT_CONFIG);
}

/* Loads the file, or prints every problem in it and returns NULL. */
static const struct amtacs_config *load_config(const char *path)
{
    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load(path, &errs);
    if (!cfg) {
        config_errors_print(errs, stderr);
        fprintf(stderr, "amtacsd: %zu problem(s) in %s\n", config_errors_count(errs), path);
        config_errors_free(errs);
    }
    return cfg;
}

/* -n: prints the effective configuration; takes cfg. */
static int check_config(const struct amtacs_config *cfg)
{
    bool ok = config_dump(cfg, stdout);
    if (ok)
        printf("# configuration OK\n");
    config_free(cfg);
    return ok ? 0 : 1;
}

/* What the daemon holds while it runs; daemon_release() frees it in reverse. */
struct daemon {
    const struct amtacs_config *cfg; /* ours until the engine takes it */
    const char *path;
    struct logger lg; /* the httpd's and the engine's too: outlives both */
    struct vault_secret *key;
    struct metrics *metrics;
    struct httpd *http;
    struct engine *engine;
    int sfd;
    char owner[300];
    /* the client's names as the metrics' labels (they outlive the registry) */
    const char *calls[AMT_CALL_MESSAGES + 1];
    const char *outcomes[AMT_ERR_CANCELLED + 1];
};

/* The signals the engine reads from a signalfd, blocked; the fd, or -1. */
static int block_signals(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &mask, NULL))
        return -1;
    return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The lease owner: daemon.id, else hostname:pid with a random tail. */
static void owner_name(const struct amtacs_config *cfg, char *owner, size_t len)
{
    if (cfg->daemon.id && *cfg->daemon.id) {
        snprintf(owner, len, "%s", cfg->daemon.id);
        return;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    unsigned char rnd[3];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(owner, len, "%s:%ld:%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2]);
}

static void log_start(struct daemon *d)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    char key_ids[256];
    vault_secret_ids(d->key, key_ids, sizeof key_ids);
    log_event(&d->lg, LOG_INFO, "daemon.start", NULL,
              "amtacsd %s; libcurl %s (%s), libpq %d, cJSON %s, libsodium %s, libyaml %s; "
              "config %s; keys %s",
              AMTACS_VERSION, cv->version, cv->ssl_version ? cv->ssl_version : "no TLS",
              PQlibVersion(), cJSON_Version(), sodium_version_string(), yaml_get_version_string(),
              d->cfg->source, key_ids);
}

/* The registry, its call series labelled with the client's names; a
 * cancelled call says nothing about the server, so it is not counted. */
static struct metrics *new_metrics(struct daemon *d)
{
    for (size_t i = 0; i < sizeof d->calls / sizeof d->calls[0]; i++)
        d->calls[i] = amt_call_name((enum amt_call)i);
    for (size_t i = 0; i < sizeof d->outcomes / sizeof d->outcomes[0]; i++)
        d->outcomes[i] = i == AMT_ERR_CANCELLED ? NULL : amt_status_name((enum amt_status)i);
    struct metrics_http_labels labels = {
        .calls = d->calls, .n_calls = sizeof d->calls / sizeof d->calls[0],
        .outcomes = d->outcomes, .n_outcomes = sizeof d->outcomes / sizeof d->outcomes[0],
    };
    return metrics_new(&labels);
}

/* Serves /healthz, /readyz and /metrics when http.listen is set. */
static int start_http(struct daemon *d, char *err, size_t errlen)
{
    const struct amtacs_config *cfg = d->cfg;
    if (!cfg->http.listen || !*cfg->http.listen)
        return 0;
    char token[258] = "";
    if (cfg->http.token_file &&
        read_token(cfg->http.token_file, token, sizeof token, err, errlen))
        return -1;
    struct httpd_options ho = {
        .listen = cfg->http.listen, .token = token, .conninfo = cfg->database.conninfo,
        .metrics = d->metrics, .lg = &d->lg, .stall_ms = 30000,
        .tls_cert_file = cfg->http.tls_cert_file, .tls_key_file = cfg->http.tls_key_file,
        .max_connections_per_client = cfg->http.max_connections_per_client,
        .header_timeout_ms = (long)cfg->http.header_timeout_ms,
    };
    d->http = httpd_start(&ho, err, errlen);
    sodium_memzero(token, sizeof token);
    if (!d->http)
        return -1;
    log_event(&d->lg, LOG_INFO, "http.listening", NULL,
              "serving /healthz /readyz /metrics on %s (port %u) over %s%s", cfg->http.listen,
              httpd_port(d->http), httpd_tls(d->http) ? "HTTPS" : "HTTP",
              cfg->http.token_file ? ", bearer token required" : "");
    if (!cfg->http.token_file)
        log_event(&d->lg, LOG_WARN, "http.no_token", NULL,
                  "http.token_file is not set: /metrics (the queue by connection) "
                  "answers anyone who can connect to %s; set a token",
                  cfg->http.listen);
    return 0;
}

static void daemon_release(struct daemon *d)
{
    httpd_stop(d->http); /* first: it reads the metrics */
    engine_free(d->engine);
    metrics_free(d->metrics);
    vault_secret_free(d->key);
    if (d->sfd >= 0)
        close(d->sfd);
    amt_global_cleanup();
    config_free(d->cfg);
}

/* Runs the daemon on cfg (taken) until it stops; the exit status. */
static int run(const char *path, const struct amtacs_config *cfg)
{
    int rc = 1;
    struct daemon d = {.cfg = cfg, .path = path, .lg = {stderr, (enum log_level)cfg->log_level},
                       .sfd = -1};
    char err[512];

    if (vault_init() || amt_global_init()) {
        log_event(&d.lg, LOG_ERROR, "daemon.init_failed", NULL, "libsodium or libcurl failed");
        goto out;
    }
    /* A schema it was not built for: refuse (exit 2, as for a broken
     * configuration: restarting cannot help). Unreachable: the engine waits. */
    if (db_schema_check(cfg->database.conninfo, NULL, "amtacsd", err, sizeof err) == 1) {
        log_event(&d.lg, LOG_ERROR, "daemon.schema_refused", NULL, "%s", err);
        rc = 2;
        goto out;
    }
    d.key = vault_secret_load(cfg->key_file, err, sizeof err);
    if (!d.key) {
        log_event(&d.lg, LOG_ERROR, "daemon.key_refused", NULL, "%s", err);
        goto out;
    }
    if ((d.sfd = block_signals()) < 0) {
        log_event(&d.lg, LOG_ERROR, "daemon.signals", NULL, "signalfd: %s", strerror(errno));
        goto out;
    }
    owner_name(cfg, d.owner, sizeof d.owner);
    log_start(&d);
    if (!(d.metrics = new_metrics(&d))) {
        log_event(&d.lg, LOG_ERROR, "daemon.init_failed", NULL, "out of memory");
        goto out;
    }
    if (start_http(&d, err, sizeof err)) {
        log_event(&d.lg, LOG_ERROR, "daemon.init_failed", NULL, "%s", err);
        goto out;
    }
    struct engine_options eo = {
        .cfg = cfg, .config_path = path, .lg = &d.lg, .metrics = d.metrics, .key = d.key,
        .owner = d.owner, .signal_fd = d.sfd, .shutdown_grace_ms = 5000,
    };
    d.engine = engine_new(&eo, err, sizeof err);
    if (!d.engine) {
        log_event(&d.lg, LOG_ERROR, "daemon.init_failed", NULL, "%s", err);
        goto out;
    }
    d.cfg = NULL; /* the engine's now: a reload replaces it */
    rc = engine_run(d.engine);
out:
    daemon_release(&d);
    return rc;
}

int main(int argc, char **argv)
{
    char cderr[256];
    if (coredump_disable(cderr, sizeof cderr)) { /* it will hold the password and the token */
        fprintf(stderr, "amtacsd: %s\n", cderr);
        return 1;
    }
    const char *path;
    int check;
    int done = srvargs_parse("amtacsd", argc, argv, usage, &path, &check);
    if (done >= 0)
        return done;
    const struct amtacs_config *cfg = load_config(path);
    if (!cfg)
        return 2;
    return check ? check_config(cfg) : run(path, cfg);
}
