/*
 * amtacsd: the connector daemon. A thin driver: parse the command line, load
 * the configuration and the secret key, block the signals the engine reads
 * from a signalfd, and run the engine until it stops.
 */
#define _GNU_SOURCE /* gethostname */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <yaml.h>

#include "amtacs/config.h"
#include "amtacs/engine.h"
#include "amtacs/log.h"
#include "amtacs/vault.h"

#define DEFAULT_CONFIG "/etc/amtacs/amtacs.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amtacsd [-c FILE] [-n] [-V]\n"
            "  -c, --config FILE  configuration (default $AMTACS_CONFIG or %s)\n"
            "  -n, --check        check the configuration, print it with defaults, and exit\n"
            "  -V, --version      print the version and exit\n"
            "Signals: SIGTERM/SIGINT stop gracefully (a second one stops at once).\n",
            DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
    const char *path = getenv("AMTACS_CONFIG");
    int check = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'n'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:nVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            check = 1;
            break;
        case 'V':
            printf("amtacsd %s\n", AMTACS_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "amtacsd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!path)
        path = DEFAULT_CONFIG;

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
    int sfd = -1;
    char err[512];

    if (vault_init() || curl_global_init(CURL_GLOBAL_DEFAULT)) {
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

    struct engine_options eo = {
        .cfg = cfg, .lg = &lg, .key = key, .owner = owner, .signal_fd = sfd,
        .shutdown_grace_ms = 5000,
    };
    engine = engine_new(&eo, err, sizeof err);
    if (!engine) {
        log_event(&lg, LOG_ERROR, "daemon.init_failed", NULL, "%s", err);
        goto out;
    }
    rc = engine_run(engine);
out:
    engine_free(engine);
    vault_secret_free(key);
    if (sfd >= 0)
        close(sfd);
    curl_global_cleanup();
    config_free(cfg);
    return rc;
}
