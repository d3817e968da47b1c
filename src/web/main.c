/*
 * amtacs-web: the console's HTTP API. A thin driver: parse the command line,
 * load the configuration (its web: section), check the database login, start
 * the workers (webapi) and the server (httpserv), and wait for SIGTERM or
 * SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <microhttpd.h>
#include <sodium.h>

#include "amtacs/config.h"
#include "amtacs/coredump.h"
#include "amtacs/db.h"
#include "amtacs/httpserv.h"
#include "amtacs/log.h"
#include "amtacs/srvargs.h"
#include "amtacs/netaddr.h"
#include "amtacs/webapi.h"
#include "amtacs/webpool.h"

/* The newest function amtacs-web calls (migration 0020). */
#define NEEDS_FUNCTION "acs.submit_jobs(jsonb)"
#define LOOPBACK_RESERVE 8
#define SPARE_FDS 64 /* descriptors besides the connections: database, log, epoll */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amtacs-web [-c FILE] [-n] [-V]\n"
            "  -c, --config FILE  configuration (default $AMTACS_CONFIG or %s);\n"
            "                     amtacs-web reads its web: section and log_level\n"
            "  -n, --check        check the configuration, print it with defaults, and exit\n"
            "  -V, --version      print the version and exit\n"
            "Signals: SIGTERM/SIGINT stop (requests in progress are answered first).\n",
            SRVARGS_DEFAULT_CONFIG);
}

/* What the configuration must hold for amtacs-web beyond what config_load
 * checks for everyone; 0 or -1 with the reason in err. */
static int check_web(const struct amtacs_config *cfg, char *err, size_t errlen)
{
    if (!cfg->web.conninfo) {
        snprintf(err, errlen,
                 "%s: web.conninfo is not set: amtacs-web needs a login of its own (CREATE "
                 "ROLE amtacs_web LOGIN NOINHERIT IN ROLE acs_web), never the daemon's",
                 cfg->source);
        return -1;
    }
    /* The configuration judged web.listen by its text; a name (even
     * "localhost") may resolve off the loopback interface. */
    if (cfg->web.tls_cert_file || cfg->web.behind_proxy)
        return 0;
    struct netaddr na = {0};
    char aerr[300];
    if (netaddr_resolve(cfg->web.listen, &na, aerr, sizeof aerr)) {
        snprintf(err, errlen, "web.listen %s", aerr);
        return -1;
    }
    bool loop = netaddr_sockaddr_is_loopback(na.ai->ai_addr);
    netaddr_free(&na);
    if (!loop) {
        snprintf(err, errlen,
                 "web.listen %s does not resolve to a loopback address and neither HTTPS nor "
                 "web.behind_proxy is set: passwords, session cookies and tokens would cross "
                 "the network in clear text",
                 cfg->web.listen);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char cderr[256];
    if (coredump_disable(cderr, sizeof cderr)) { /* passwords, cookies and tokens pass here */
        fprintf(stderr, "amtacs-web: %s\n", cderr);
        return 1;
    }
    const char *path;
    int check;
    int done = srvargs_parse("amtacs-web", argc, argv, usage, &path, &check);
    if (done >= 0)
        return done;

    char err[512];
    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load(path, &errs);
    if (!cfg) {
        config_errors_print(errs, stderr);
        fprintf(stderr, "amtacs-web: %zu problem(s) in %s\n", config_errors_count(errs), path);
        config_errors_free(errs);
        return 2;
    }
    if (check_web(cfg, err, sizeof err)) {
        fprintf(stderr, "%s\namtacs-web: 1 problem(s) in %s\n", err, path);
        config_free(cfg);
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
    struct webapi *api = NULL;
    struct httpserv *srv = NULL;
    int sfd = -1;
    char warn[300];
    char *pubkey = NULL;

    if (sodium_init() < 0) {
        log_event(&lg, LOG_ERROR, "web.init_failed", NULL, "libsodium failed to start");
        goto out;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    /* blocked before any thread starts: they all inherit the mask */
    if (sigprocmask(SIG_BLOCK, &mask, NULL) ||
        (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        log_event(&lg, LOG_ERROR, "web.signals", NULL, "signalfd: %s", strerror(errno));
        goto out;
    }
    /* A schema it was not built for: refuse (exit 2, like a broken configuration). */
    if (db_schema_check(cfg->web.conninfo, "acs_web", "amtacs-web", err, sizeof err) == 1) {
        log_event(&lg, LOG_ERROR, "web.schema_refused", NULL, "%s", err);
        rc = 2;
        goto out;
    }
    if (webpool_probe(cfg->web.conninfo, NEEDS_FUNCTION, err, sizeof err, warn, sizeof warn)) {
        log_event(&lg, LOG_ERROR, "web.init_failed", NULL, "web.conninfo: %s", err);
        goto out;
    }
    if (*warn)
        log_event(&lg, LOG_WARN, "web.login_inherits", NULL, "%s", warn);
    /* each connection (an event stream too) is a descriptor: the soft limit
     * is raised as far as the hard one allows, else starting is refused */
    struct rlimit rl;
    rlim_t need = (rlim_t)cfg->web.max_connections + (rlim_t)cfg->web.db_pool + SPARE_FDS;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < need) {
            log_event(&lg, LOG_ERROR, "web.init_failed", NULL,
                      "web.max_connections %ld needs %llu file descriptors, but the hard limit "
                      "(ulimit -Hn, LimitNOFILE=) is %llu",
                      cfg->web.max_connections, (unsigned long long)need,
                      (unsigned long long)rl.rlim_max);
            goto out;
        }
    }

    bool tls = cfg->web.tls_cert_file != NULL;
    /* As amtacsctl batch-user set finds it: the public half next to the
     * daemon's secret key file, which amtacs-web never opens. */
    if (!cfg->web.public_key_file && cfg->key_file) {
        size_t n = strlen(cfg->key_file) + 5;
        if (!(pubkey = malloc(n))) {
            log_event(&lg, LOG_ERROR, "web.init_failed", NULL, "out of memory");
            goto out;
        }
        snprintf(pubkey, n, "%s.pub", cfg->key_file);
    }
    const char *pubfile = cfg->web.public_key_file ? cfg->web.public_key_file : pubkey;
    if (pubfile && access(pubfile, R_OK))
        log_event(&lg, LOG_WARN, "web.public_key", NULL,
                  "cannot read %s (%s): PUT /api/v1/batch-users/NAME/password will answer 503 "
                  "until it can (set web.public_key_file)", pubfile, strerror(errno));
    struct webapi_options ao = {
        .conninfo = cfg->web.conninfo,
        .db_pool = (unsigned)cfg->web.db_pool,
        .session_idle_s = (long)(cfg->web.session_idle_ms / 1000),
        .session_lifetime_s = (long)(cfg->web.session_lifetime_ms / 1000),
        .secure_cookie = tls || cfg->web.behind_proxy,
        .behind_proxy = cfg->web.behind_proxy,
        .public_key_file = pubfile,
        .lg = &lg,
    };
    if (!(api = webapi_new(&ao, err, sizeof err))) {
        log_event(&lg, LOG_ERROR, "web.init_failed", NULL, "%s", err);
        goto out;
    }
    struct httpserv_options so = {
        .listen = cfg->web.listen,
        .setting = "web",
        .tls_cert_file = cfg->web.tls_cert_file,
        .tls_key_file = cfg->web.tls_key_file,
        .connection_limit = (unsigned)cfg->web.max_connections,
        .loopback_reserve = LOOPBACK_RESERVE,
        .max_connections_per_client = cfg->web.max_connections_per_client,
        .header_timeout_ms = (long)cfg->web.header_timeout_ms,
        .max_body = (size_t)cfg->web.max_body,
        .problem_json = true,
        .lg = &lg,
        .handler = webapi_handle,
        .cls = api,
    };
    if (!(srv = httpserv_start(&so, err, sizeof err))) {
        log_event(&lg, LOG_ERROR, "web.init_failed", NULL, "%s", err);
        goto out;
    }
    log_event(&lg, LOG_INFO, "web.listening", NULL,
              "amtacs-web %s serving /api/v1 on %s (port %u) over %s%s; %ld database "
              "connection(s); libpq %d, libmicrohttpd %s, libsodium %s",
              AMTACS_VERSION, cfg->web.listen, httpserv_port(srv), tls ? "HTTPS" : "HTTP",
              !tls && cfg->web.behind_proxy ? " behind a proxy (web.behind_proxy)" : "",
              cfg->web.db_pool, PQlibVersion(), MHD_get_version(), sodium_version_string());

    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof si) {
            log_event(&lg, LOG_ERROR, "web.signals", NULL, "signalfd: %s", strerror(errno));
            break;
        }
        log_event(&lg, LOG_INFO, "web.stop", NULL, "signal %u: stopping", si.ssi_signo);
        rc = 0;
        break;
    }
out:
    /* The workers first: every request they hold is answered and resumed
     * before the server closes its connections. */
    webapi_stop(api);
    httpserv_stop(srv);
    webapi_free(api);
    if (sfd >= 0)
        close(sfd);
    free(pubkey);
    config_free(cfg);
    return rc;
}
