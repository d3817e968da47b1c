/*
 * amt-batch-sim: a stand-in for the AMT Batch Server (Asysco's AmtOpConService)
 * for tests, demos and benchmarks. This file is the thin driver: arguments,
 * catalog, the port file, signals; the work is in sim_world, sim_http,
 * sim_faults and sim_catalog.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "amtacs/netaddr.h"
#include "sim_catalog.h"
#include "sim_faults.h"
#include "sim_http.h"
#include "sim_world.h"

#define EXIT_USAGE 2
#define PEM_MAX (1024 * 1024)

struct args {
    const char *listen;
    const char *catalog;
    const char *port_file;
    const char *tls_cert;
    const char *tls_key;
    double time_scale;
    unsigned long long seed;
    long clock_s;
    long token_lifetime;
    bool check;
    bool verbose;
};

static void usage(FILE *out)
{
    fputs("usage: amt-batch-sim --listen HOST:PORT --catalog FILE [options]\n"
          "\n"
          "Simulates an AMT Batch Server (the AmtOpConService REST interface).\n"
          "\n"
          "  --listen HOST:PORT        address to serve on; port 0 picks a free port\n"
          "  --catalog FILE            job catalog (YAML)\n"
          "  --time-scale F            simulated seconds = real seconds / F (default 1)\n"
          "  --port-file FILE          write the bound port here (atomically)\n"
          "  --seed N                  seed of the fault-injection PRNG (default 1)\n"
          "  --clock HH:MM:SS          simulated time of day at start (default: local time)\n"
          "  --token-lifetime SECONDS  logon token lifetime in real seconds (default 3600)\n"
          "  --tls-cert FILE --tls-key FILE   serve HTTPS with this PEM certificate and key\n"
          "  --check                   validate the catalog, print \"catalog OK\" and exit\n"
          "  --verbose                 log every request on stderr\n"
          "  --help                    show this help\n"
          "\n"
          "Exit status: 0 on a clean stop (SIGTERM/SIGINT), 1 on errors, 2 on bad arguments.\n",
          out);
}

static int bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_arg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("amt-batch-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'amt-batch-sim --help'.\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_clock(const char *s, long *out)
{
    unsigned h, m, sec;
    char extra;
    if (strlen(s) != 8 || sscanf(s, "%2u:%2u:%2u%c", &h, &m, &sec, &extra) != 3 || h > 23 ||
        m > 59 || sec > 59)
        return false;
    *out = (long)(h * 3600 + m * 60 + sec);
    return true;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    enum { O_LISTEN = 256, O_CATALOG, O_SCALE, O_PORTFILE, O_SEED, O_CLOCK, O_TOKEN, O_CERT,
           O_KEY, O_CHECK, O_VERBOSE, O_HELP };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"catalog", required_argument, NULL, O_CATALOG},
        {"time-scale", required_argument, NULL, O_SCALE},
        {"port-file", required_argument, NULL, O_PORTFILE},
        {"seed", required_argument, NULL, O_SEED},
        {"clock", required_argument, NULL, O_CLOCK},
        {"token-lifetime", required_argument, NULL, O_TOKEN},
        {"tls-cert", required_argument, NULL, O_CERT},
        {"tls-key", required_argument, NULL, O_KEY},
        {"check", no_argument, NULL, O_CHECK},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    a->time_scale = 1.0;
    a->seed = 1;
    a->clock_s = -1;
    a->token_lifetime = 3600;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long n;
        switch (c) {
        case O_LISTEN:
            a->listen = optarg;
            break;
        case O_CATALOG:
            a->catalog = optarg;
            break;
        case O_SCALE:
            if (!parse_double(optarg, &a->time_scale) || !(a->time_scale > 0) ||
                a->time_scale > 1e6)
                return bad_arg("--time-scale needs a positive number, not '%s'", optarg);
            break;
        case O_PORTFILE:
            a->port_file = optarg;
            break;
        case O_SEED:
            if (!parse_long(optarg, 0, LONG_MAX, &n))
                return bad_arg("--seed needs a non-negative integer, not '%s'", optarg);
            a->seed = (unsigned long long)n;
            break;
        case O_CLOCK:
            if (!parse_clock(optarg, &a->clock_s))
                return bad_arg("--clock needs HH:MM:SS, not '%s'", optarg);
            break;
        case O_TOKEN:
            if (!parse_long(optarg, 1, 10L * 365 * 86400, &a->token_lifetime))
                return bad_arg("--token-lifetime needs a positive number of seconds, not '%s'",
                               optarg);
            break;
        case O_CERT:
            a->tls_cert = optarg;
            break;
        case O_KEY:
            a->tls_key = optarg;
            break;
        case O_CHECK:
            a->check = true;
            break;
        case O_VERBOSE:
            a->verbose = true;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        case ':':
            return bad_arg("option %s needs a value", argv[optind - 1]);
        default:
            return bad_arg("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_arg("unexpected argument '%s'", argv[optind]);
    if (a->catalog == NULL)
        return bad_arg("%s", "--catalog FILE is required");
    if (!a->check && a->listen == NULL)
        return bad_arg("%s", "--listen HOST:PORT is required");
    if ((a->tls_cert == NULL) != (a->tls_key == NULL))
        return bad_arg("%s", "--tls-cert and --tls-key go together");
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    if (f == NULL)
        goto fail;
    data = malloc(PEM_MAX + 1);
    if (data == NULL)
        goto fail;
    size_t n = fread(data, 1, PEM_MAX, f);
    if (ferror(f) || !feof(f))
        goto fail;
    data[n] = '\0';
    fclose(f);
    return data;
fail:
    fprintf(stderr, "amt-batch-sim: cannot read %s: %s\n", path,
            f && !ferror(f) ? "larger than 1 MiB" : strerror(errno));
    free(data);
    if (f != NULL)
        fclose(f);
    return NULL;
}

/* Readers poll for the file: write a temporary one and rename it into place
 * so they never see it half-written. */
static bool write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return false;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return false;
    bool ok = fprintf(f, "%u\n", port) > 0;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    return false;
}

static size_t count_jobs(const struct sim_catalog *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->napps; i++)
        n += c->apps[i].njobs + c->apps[i].nscripts;
    return n;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc;

    struct sim_catalog *cat = NULL;
    struct sim_world *world = NULL;
    struct sim_faults *faults = NULL;
    struct sim_http *http = NULL;
    struct netaddr na = {0};
    char *cert = NULL, *key = NULL;
    char err[256];
    rc = 1;

    if (sodium_init() < 0) {
        fprintf(stderr, "amt-batch-sim: libsodium failed to initialise\n");
        goto out;
    }
    cat = sim_catalog_load(a.catalog, stderr);
    if (cat == NULL)
        goto out;
    if (a.check) {
        printf("catalog OK: %zu applications, %zu jobs and scripts, %zu queues\n", cat->napps,
               count_jobs(cat), cat->nqueues);
        rc = 0;
        goto out;
    }
    if (netaddr_resolve(a.listen, &na, err, sizeof err)) {
        rc = bad_arg("--listen %s", err);
        goto out;
    }
    rc = 1;
    if (a.tls_cert != NULL) {
        cert = read_file(a.tls_cert);
        key = cert ? read_file(a.tls_key) : NULL;
        if (key == NULL)
            goto out;
    }

    /* Block the stop signals before any thread exists so that every thread
     * inherits the mask and only sigwait() below ever sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sim_world_opts wo = {.time_scale = a.time_scale, .clock_s = a.clock_s,
                                .token_lifetime_s = a.token_lifetime};
    world = sim_world_create(cat, &wo);
    faults = sim_faults_create(a.seed);
    if (world == NULL || faults == NULL) {
        fprintf(stderr, "amt-batch-sim: out of memory\n");
        goto out;
    }
    struct sim_http_opts ho = {.addr = na.ai->ai_addr, .addrlen = na.ai->ai_addrlen,
                               .tls_cert_pem = cert, .tls_key_pem = key, .verbose = a.verbose};
    http = sim_http_start(world, faults, &ho, err, sizeof(err));
    if (http == NULL) {
        fprintf(stderr, "amt-batch-sim: %s:%s: %s\n", na.host, na.port, err);
        goto out;
    }
    unsigned bound = sim_http_port(http);
    if (a.port_file != NULL && !write_port_file(a.port_file, bound)) {
        fprintf(stderr, "amt-batch-sim: cannot write port file %s: %s\n", a.port_file,
                strerror(errno));
        goto out;
    }
    bool v6 = strchr(na.host, ':') != NULL;
    fprintf(stderr, "amt-batch-sim %s (libmicrohttpd %s, cJSON %s, libsodium %s): catalog %s, "
            "%zu applications, %zu jobs and scripts, time scale %g\n",
            AMTACS_VERSION, MHD_get_version(), cJSON_Version(), sodium_version_string(),
            a.catalog, cat->napps, count_jobs(cat), a.time_scale);
    printf("amt-batch-sim listening on %s://%s%s%s:%u\n", cert ? "https" : "http", v6 ? "[" : "",
           na.host, v6 ? "]" : "", bound);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    fprintf(stderr, "amt-batch-sim: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    sim_http_stop(http);
    sim_world_free(world);
    sim_faults_free(faults);
    sim_catalog_free(cat);
    netaddr_free(&na);
    if (key != NULL) {
        sodium_memzero(key, strlen(key));
        free(key);
    }
    free(cert);
    return rc;
}
