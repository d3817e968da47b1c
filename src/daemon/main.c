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

    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load(path, &errs);
    if (!cfg) {
        config_errors_print(errs, stderr);
        fprintf(stderr, "amtacsd: %zu problem(s) in %s\n", config_errors_count(errs), path);
        config_errors_free(errs);
        return 2;
    }
    if (check) {
        bool ok = config_dump(cfg, stdout);
        if (ok)
            printf("# configuration OK\n");
        config_free(cfg);
        return ok ? 0 : 1;
    }

    int rc = 1;
    struct logger lg = {stderr, (enum log_level)cfg->log_level};
    struct vault_secret *key = NULL;
    struct engine *engine = NULL;
    struct metrics *metrics = NULL;
    struct httpd *http = NULL;
    int sfd = -1;
    char err[512];

    if (vault_init() || amt_global_init()) {
        log_event(&lg, LOG_ERROR, "daemon.init_failed", NULL, "libsodium or libcurl failed");
        goto out;
    }
    key = vault_secret_load(cfg->key_file, err, sizeof err);
    if (!key) {
        log_event(&lg, LOG_ERROR, "daemon.key_refused", NULL, "%s", err);
        goto out;
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) ||
        (sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        log_event(&lg, LOG_ERROR, "daemon.signals", NULL, "signalfd: %s", strerror(errno));
        goto out;
    }

    char owner[300];
    if (cfg->daemon.id && *cfg->daemon.id) {
        snprintf(owner, sizeof owner, "%s", cfg->daemon.id);
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        unsigned char rnd[3];
        randombytes_buf(rnd, sizeof rnd);
        snprintf(owner, sizeof owner, "%s:%ld:%02x%02x%02x", host, (long)getpid(), rnd[0],
                 rnd[1], rnd[2]);
    }
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    char key_ids[256];
    vault_secret_ids(key, key_ids, sizeof key_ids);
    log_event(&lg, LOG_INFO, "daemon.start", NULL,
              "amtacsd %s; libcurl %s (%s), libpq %d, cJSON %s, libsodium %s, libyaml %s; "
              "config %s; keys %s",
              AMTACS_VERSION, cv->version, cv->ssl_version ? cv->ssl_version : "no TLS",
              PQlibVersion(), cJSON_Version(), sodium_version_string(), yaml_get_version_string(),
              cfg->source, key_ids);

    if (!(metrics = metrics_new())) {
        log_event(&lg, LOG_ERROR, "daemon.init_failed", NULL, "out of memory");
        goto out;
    }
    if (cfg->http.listen && *cfg->http.listen) {
        char token[258] = "";
        if (cfg->http.token_file && read_token(cfg->http.token_file, token, sizeof token, err,
                                               sizeof err)) {
            log_event(&lg, LOG_ERROR, "daemon.init_failed", NULL, "%s", err);
            goto out;
        }
        struct httpd_options ho = {
            .listen = cfg->http.listen, .token = token, .conninfo = cfg->database.conninfo,
            .metrics = metrics, .lg = &lg, .stall_ms = 30000,
            .tls_cert_file = cfg->http.tls_cert_file, .tls_key_file = cfg->http.tls_key_file,
            .max_connections_per_client = cfg->http.max_connections_per_client,
            .header_timeout_ms = (long)cfg->http.header_timeout_ms,
        };
        http = httpd_start(&ho, err, sizeof err);
        sodium_memzero(token, sizeof token);
        if (!http) {
            log_event(&lg, LOG_ERROR, "daemon.init_failed", NULL, "%s", err);
            goto out;
        }
        log_event(&lg, LOG_INFO, "http.listening", NULL,
                  "serving /healthz /readyz /metrics on %s (port %u) over %s%s",
                  cfg->http.listen, httpd_port(http), httpd_tls(http) ? "HTTPS" : "HTTP",
                  cfg->http.token_file ? ", bearer token required" : "");
        if (!cfg->http.token_file)
            log_event(&lg, LOG_WARN, "http.no_token", NULL,
                      "http.token_file is not set: /metrics (the queue by connection) "
                      "answers anyone who can connect to %s; set a token",
                      cfg->http.listen);
    }

    struct engine_options eo = {
        .cfg = cfg, .config_path = path, .lg = &lg, .metrics = metrics, .key = key,
        .owner = owner, .signal_fd = sfd, .shutdown_grace_ms = 5000,
    };
    engine = engine_new(&eo, err, sizeof err);
    if (!engine) {
        log_event(&lg, LOG_ERROR, "daemon.init_failed", NULL, "%s", err);
        goto out;
    }
    cfg = NULL; /* the engine's now: a reload replaces it */
    rc = engine_run(engine);
out:
    httpd_stop(http); /* first: it reads the metrics */
    engine_free(engine);
    metrics_free(metrics);
    vault_secret_free(key);
    if (sfd >= 0)
        close(sfd);
    amt_global_cleanup();
    config_free(cfg);
    return rc;
}
