#include "amtacs/config.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amtacs/duration.h"
#include "amtacs/netaddr.h"
#include "amtacs/text.h"
#include "amtacs/yamldoc.h"

#define SEC 1000.0
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

#define G(field) offsetof(struct amtacs_config, field)
#define C(field) offsetof(struct amtacs_connection, field)

/*
 * The one table of keys (STYLE practice 7). Keys of a section must stay
 * together: the dump and the reference print a section header when the prefix
 * changes. "connections[]." keys describe one item of the connections list.
 */
static const struct config_key keys[] = {
    {.path = "database.conninfo", .type = CONFIG_T_CONNINFO, .required = true, .min = 1,
     .max = 4096, .offset = G(database.conninfo),
     .help = "libpq connection string or URI of the queue database"},
    {.path = "key_file", .type = CONFIG_T_PATH, .required = true, .offset = G(key_file),
     .help = "the daemon's secret key file (seals Batch User passwords)"},
    {.path = "log_level", .type = CONFIG_T_LOG_LEVEL, .reload = true, .def = CONFIG_LOG_INFO,
     .offset = G(log_level), .help = "least severe messages logged"},
    {.path = "daemon.id", .type = CONFIG_T_STRING, .min = 0, .max = 128, .def_s = "",
     .offset = G(daemon.id), .help = "lease owner name; empty: hostname:pid"},
    {.path = "daemon.lease_seconds", .type = CONFIG_T_INT, .reload = true, .min = 1,
     .max = 86400, .def = 30, .offset = G(daemon.lease_seconds),
     .help = "lease on claimed jobs; another daemon takes over after it expires"},
    {.path = "daemon.renew_interval", .type = CONFIG_T_DURATION, .reload = true, .min = 0,
     .max = 86400000, .def = 0, .offset = G(daemon.renew_interval_ms),
     .help = "how often the leases are renewed, less than lease_seconds; 0: a third of it"},
    {.path = "daemon.claim_batch", .type = CONFIG_T_INT, .reload = true, .min = 1, .max = 10000,
     .def = 100, .offset = G(daemon.claim_batch), .help = "jobs claimed per query at most"},
    {.path = "daemon.max_log_bytes", .type = CONFIG_T_INT, .reload = true, .min = 4096,
     .max = 268435456, .def = 4194304, .offset = G(daemon.max_log_bytes),
     .help = "a job log is cut at this size, with a marker saying what was left out"},
    {.path = "daemon.purge_interval", .type = CONFIG_T_DURATION, .reload = true, .min = 1000,
     .max = 86400000, .def = 600000, .offset = G(daemon.purge_interval_ms),
     .help = "how often job logs past their connection's retain_log_days are purged"},
    {.path = "daemon.heartbeat_interval", .type = CONFIG_T_DURATION, .reload = true, .min = 100,
     .max = 3600000, .def = 10000, .offset = G(daemon.heartbeat_interval_ms),
     .help = "how often each connection's server is asked whether it answers"},
    {.path = "daemon.alert_command", .type = CONFIG_T_STRING, .reload = true, .min = 0,
     .max = 4096, .def_s = "", .offset = G(daemon.alert_command),
     .help = "run by /bin/sh for a job ending 11, 12, 23 or 24, details in AMTACS_* variables; "
             "empty: none"},
    {.path = "daemon.alert_command_max", .type = CONFIG_T_INT, .reload = true, .min = 1,
     .max = 64, .def = 4, .offset = G(daemon.alert_command_max),
     .help = "alert commands running at once at most; the others wait in order"},
    {.path = "http.listen", .type = CONFIG_T_STRING, .min = 0, .max = 300,
     .def_s = "127.0.0.1:9470", .offset = G(http.listen),
     .help = "HOST:PORT of /healthz, /readyz and /metrics; port 0: any free port; "
             "empty: no HTTP"},
    {.path = "http.token_file", .type = CONFIG_T_FILE, .max = 4096, .def_s = NULL,
     .offset = G(http.token_file),
     .help = "file holding a bearer token that /metrics then requires; unset: none; "
             "required when http.listen is not a loopback address"},
    {.path = "http.tls_cert_file", .type = CONFIG_T_FILE, .max = 4096, .def_s = NULL,
     .offset = G(http.tls_cert_file),
     .help = "PEM certificate (chain) to serve HTTPS with, together with http.tls_key_file; "
             "unset: plain HTTP"},
    {.path = "http.tls_key_file", .type = CONFIG_T_FILE, .max = 4096, .def_s = NULL,
     .offset = G(http.tls_key_file),
     .help = "PEM private key of http.tls_cert_file; owned by the daemon's user or root, "
             "chmod 600"},
    {.path = "http.max_connections_per_client", .type = CONFIG_T_INT, .min = 1, .max = 32,
     .def = 8, .offset = G(http.max_connections_per_client),
     .help = "connections one client address may hold open at once (of 32 in all)"},
    {.path = "http.header_timeout", .type = CONFIG_T_DURATION, .min = 100, .max = 10 * MIN,
     .def = 10 * SEC, .offset = G(http.header_timeout_ms),
     .help = "a request's headers must be complete this long after the connection opened "
             "(or its previous answer); else it is closed"},
    {.path = "web.listen", .type = CONFIG_T_STRING, .min = 1, .max = 300,
     .def_s = "127.0.0.1:9480", .offset = G(web.listen),
     .help = "HOST:PORT amtacs-web serves /api/v1 on; port 0: any free port"},
    {.path = "web.conninfo", .type = CONFIG_T_CONNINFO, .min = 1, .max = 4096, .def_s = NULL,
     .offset = G(web.conninfo),
     .help = "libpq connection string of amtacs-web's authenticator login (NOINHERIT, member "
             "of acs_web); required by amtacs-web, unused by the daemon"},
    {.path = "web.tls_cert_file", .type = CONFIG_T_FILE, .max = 4096, .def_s = NULL,
     .offset = G(web.tls_cert_file),
     .help = "PEM certificate (chain) amtacs-web serves HTTPS with, together with "
             "web.tls_key_file; unset: plain HTTP"},
    {.path = "web.tls_key_file", .type = CONFIG_T_FILE, .max = 4096, .def_s = NULL,
     .offset = G(web.tls_key_file),
     .help = "PEM private key of web.tls_cert_file; owned by amtacs-web's user or root, "
             "chmod 600"},
    {.path = "web.public_key_file", .type = CONFIG_T_FILE, .max = 4096, .def_s = NULL,
     .offset = G(web.public_key_file),
     .help = "public key amtacs-web seals Batch User passwords with (PUT "
             "/api/v1/batch-users/NAME/password); unset: key_file with .pub appended, as "
             "amtacsctl batch-user set; amtacs-web never reads the secret key"},
    {.path = "web.behind_proxy", .type = CONFIG_T_BOOL, .def = 0, .offset = G(web.behind_proxy),
     .help = "a reverse proxy terminates HTTPS in front of amtacs-web; allows plain HTTP off "
             "the loopback interface, and the client address is the one the proxy forwards "
             "(X-Forwarded-For or Forwarded)"},
    {.path = "web.session_idle", .type = CONFIG_T_DURATION, .min = 60 * SEC, .max = 7 * 24 * HOUR,
     .def = 30 * MIN, .offset = G(web.session_idle_ms),
     .help = "a console session unused this long ends"},
    {.path = "web.session_lifetime", .type = CONFIG_T_DURATION, .min = 60 * SEC,
     .max = 30 * 24 * HOUR, .def = 12 * HOUR, .offset = G(web.session_lifetime_ms),
     .help = "a console session ends this long after its login, however busy"},
    {.path = "web.max_body", .type = CONFIG_T_INT, .min = 1024, .max = 67108864, .def = 1048576,
     .offset = G(web.max_body), .help = "largest request body in bytes; a larger one gets 413"},
    {.path = "web.max_connections", .type = CONFIG_T_INT, .min = 16, .max = 65536, .def = 256,
     .offset = G(web.max_connections),
     .help = "connections amtacs-web holds open at once (each event stream is one), 8 of them "
             "kept for loopback clients"},
    {.path = "web.max_connections_per_client", .type = CONFIG_T_INT, .min = 1, .max = 65536,
     .def = 16, .offset = G(web.max_connections_per_client),
     .help = "connections one client address may hold open at once (of web.max_connections)"},
    {.path = "web.header_timeout", .type = CONFIG_T_DURATION, .min = 100, .max = 10 * MIN,
     .def = 10 * SEC, .offset = G(web.header_timeout_ms),
     .help = "a request's headers must be complete this long after the connection opened "
             "(or its previous answer); else it is closed"},
    {.path = "web.db_pool", .type = CONFIG_T_INT, .min = 1, .max = 64, .def = 4,
     .offset = G(web.db_pool),
     .help = "database connections (and worker threads) of amtacs-web; requests beyond wait"},
    {.path = "connections", .type = CONFIG_T_CONNECTIONS, .required = true, .reload = true,
     .help = "the AMT Batch Servers (one item per OpCon agent)"},

    {.path = "connections[].name", .type = CONFIG_T_NAME, .required = true, .min = 1, .max = 64,
     .offset = C(name), .help = "unique connection name that jobs refer to"},
    {.path = "connections[].url", .type = CONFIG_T_URL, .required = true, .reload = true,
     .max = 2048, .offset = C(url), .help = "Batch Server base URL including the port"},
    {.path = "connections[].batch_user", .type = CONFIG_T_STRING, .required = true,
     .reload = true, .min = 1, .max = 128, .offset = C(batch_user),
     .help = "Batch User (its password is stored encrypted in the database)"},
    {.path = "connections[].retain_log_days", .type = CONFIG_T_INT, .reload = true, .min = 1,
     .max = 3650, .def = 30, .offset = C(retain_log_days), .help = "days to keep job logs"},
    {.path = "connections[].allow_kill", .type = CONFIG_T_BOOL, .reload = true, .def = 0,
     .offset = C(allow_kill), .help = "carry out kill requests (refused when false)"},
    {.path = "connections[].max_in_flight", .type = CONFIG_T_INT, .reload = true, .min = 1,
     .max = 100000, .def = 100, .offset = C(max_in_flight),
     .help = "jobs started and not yet finished, at most"},
    {.path = "connections[].failover_after", .type = CONFIG_T_DURATION, .reload = true,
     .min = 1 * SEC, .max = 24 * HOUR, .def = 60 * SEC, .offset = C(failover_after_ms),
     .help = "a queued job that lists alternates, or names a group, goes to its next "
             "connection once this one's server has not answered for this long (at least "
             "twice daemon.heartbeat_interval)"},
    {.path = "connections[].poll.initial_delay", .type = CONFIG_T_DURATION, .reload = true,
     .min = 0, .max = HOUR, .def = 10 * SEC, .offset = C(poll.initial_delay_ms),
     .help = "from a start to the first status check"},
    {.path = "connections[].poll.interval", .type = CONFIG_T_DURATION, .reload = true,
     .min = 10, .max = HOUR, .def = 5 * SEC, .offset = C(poll.interval_ms),
     .help = "between status checks"},
    {.path = "connections[].poll.backoff", .type = CONFIG_T_NUMBER, .reload = true, .min = 1,
     .max = 10, .def = 1.0, .offset = C(poll.backoff),
     .help = "interval multiplier after each check; 1.0 = fixed interval"},
    {.path = "connections[].poll.max_interval", .type = CONFIG_T_DURATION, .reload = true,
     .min = 10, .max = 24 * HOUR, .def = 60 * SEC, .offset = C(poll.max_interval_ms),
     .help = "longest interval (at least poll.interval)"},
    {.path = "connections[].start_retry.attempts", .type = CONFIG_T_INT, .reload = true,
     .min = 1, .max = 100, .def = 5, .offset = C(start_retry.attempts),
     .help = "Start tries before the job ends as WEB_SERVER_ERROR (23), or goes in doubt if a Start may have reached the server"},
    {.path = "connections[].start_retry.delay", .type = CONFIG_T_DURATION, .reload = true,
     .min = 0, .max = HOUR, .def = 1 * SEC, .offset = C(start_retry.delay_ms),
     .help = "wait before the second try"},
    {.path = "connections[].start_retry.backoff", .type = CONFIG_T_NUMBER, .reload = true,
     .min = 1, .max = 10, .def = 2.0, .offset = C(start_retry.backoff),
     .help = "delay multiplier after each try"},
    {.path = "connections[].start_retry.max_delay", .type = CONFIG_T_DURATION, .reload = true,
     .min = 0, .max = 24 * HOUR, .def = 30 * SEC, .offset = C(start_retry.max_delay_ms),
     .help = "longest wait between tries (at least start_retry.delay)"},
    {.path = "connections[].http.connect_timeout", .type = CONFIG_T_DURATION, .reload = true,
     .min = 10, .max = 10 * MIN, .def = 10 * SEC, .offset = C(http.connect_timeout_ms),
     .help = "TCP and TLS connect timeout"},
    {.path = "connections[].http.timeout", .type = CONFIG_T_DURATION, .reload = true,
     .min = 10, .max = HOUR, .def = 30 * SEC, .offset = C(http.timeout_ms),
     .help = "timeout of a whole request"},
    {.path = "connections[].http.max_body", .type = CONFIG_T_INT, .reload = true, .min = 1024,
     .max = 1073741824, .def = 1048576, .offset = C(http.max_body),
     .help = "largest reply body in bytes; a larger reply fails"},
    {.path = "connections[].http.max_connections", .type = CONFIG_T_INT, .reload = true,
     .min = 1, .max = 256, .def = 8, .offset = C(http.max_connections),
     .help = "HTTP connections kept open to the server, at most"},
    {.path = "connections[].tls.verify", .type = CONFIG_T_BOOL, .reload = true, .def = 1,
     .offset = C(tls.verify), .help = "check the server certificate and host name"},
    {.path = "connections[].tls.ca_file", .type = CONFIG_T_FILE, .reload = true, .max = 4096,
     .def_s = NULL, .offset = C(tls.ca_file),
     .help = "CA bundle to verify with; unset: the system store"},
    {.path = "connections[].proxy", .type = CONFIG_T_URL, .reload = true, .max = 2048,
     .def_s = NULL, .offset = C(proxy),
     .help = "HTTP proxy to the server (http:// or https://, no password); unset: none, "
             "whatever http_proxy or https_proxy say"},
};

#define NKEYS (sizeof keys / sizeof keys[0])
#define CONN_PREFIX "connections[]."

static const char *const level_names[] = {"error", "warn", "info", "debug"};
#define NLEVELS (sizeof level_names / sizeof level_names[0])

const struct config_key *config_keys(size_t *count)
{
    if (count)
        *count = NKEYS;
    return keys;
}

const char *config_log_level_name(enum config_log_level level)
{
    if ((unsigned)level < NLEVELS)
        return level_names[level];
    return "?";
}

/* ---- errors ---- */

struct config_errors {
    size_t n;
    char **msg;
};

/* Returned when not even the error list can be allocated; never freed. */
static char oom_text[] = "out of memory while loading the configuration";
static char *oom_msgs[] = {oom_text};
static struct config_errors oom_errors = {1, oom_msgs};

size_t config_errors_count(const struct config_errors *errs) { return errs ? errs->n : 0; }

const char *config_errors_get(const struct config_errors *errs, size_t i)
{
    return errs && i < errs->n ? errs->msg[i] : NULL;
}

void config_errors_print(const struct config_errors *errs, FILE *out)
{
    for (size_t i = 0; i < config_errors_count(errs); i++)
        fprintf(out, "%s\n", errs->msg[i]);
}

void config_errors_free(struct config_errors *errs)
{
    if (!errs || errs == &oom_errors)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msg[i]);
    free(errs->msg);
    free(errs);
}

/* Position of a message "name:line:column: ..." for sorting; 0 when it has none. */
static void error_position(const char *msg, size_t namelen, unsigned long *line,
                           unsigned long *col)
{
    char *end;
    *line = *col = 0;
    if (strlen(msg) <= namelen || msg[namelen] != ':' || !isdigit((unsigned char)msg[namelen + 1]))
        return;
    *line = strtoul(msg + namelen + 1, &end, 10);
    if (*end == ':' && isdigit((unsigned char)end[1]))
        *col = strtoul(end + 1, NULL, 10);
}

/*
 * Copies the document's errors in file order (stable, so a position's errors
 * keep the order found): the walk finds a mapping's missing keys after its
 * contents, but a reader wants them where the mapping starts.
 */
static struct config_errors *errors_from_doc(const struct yd_doc *doc, bool oom)
{
    size_t n = yd_error_count(doc), namelen = strlen(yd_name(doc));
    struct config_errors *e = calloc(1, sizeof *e);
    if (!e)
        return &oom_errors;
    e->msg = calloc(n + 1, sizeof *e->msg);
    if (!e->msg) {
        free(e);
        return &oom_errors;
    }
    for (size_t i = 0; i < n; i++) {
        char *m = strdup(yd_error(doc, i));
        if (!m) {
            config_errors_free(e);
            return &oom_errors;
        }
        unsigned long line, col, pl, pc;
        error_position(m, namelen, &line, &col);
        size_t j = e->n;
        for (; j > 0; j--) {
            error_position(e->msg[j - 1], namelen, &pl, &pc);
            if (pl < line || (pl == line && pc <= col))
                break;
            e->msg[j] = e->msg[j - 1];
        }
        e->msg[j] = m;
        e->n++;
    }
    if (oom || n == 0) {
        e->msg[e->n] = strdup(oom_text);
        if (!e->msg[e->n]) {
            config_errors_free(e);
            return &oom_errors;
        }
        e->n++;
    }
    return e;
}

/* ---- loading ---- */

struct loader {
    struct yd_doc *doc;
    char *dir; /* directory of the file for relative paths; NULL: leave them */
    bool oom;
};

/* A value quoted for a message: at most 60 bytes, control characters as '?'. */
static const char *shown(const char *s, char *buf, size_t len)
{
    size_t j = 0, max = len - 4;
    for (size_t i = 0; s[i] && j < max; i++)
        buf[j++] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
    if (strlen(s) > max) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

#define SHOWN_LEN 64

static const char *type_word(const struct yd_doc *doc, int id)
{
    switch (yd_type(doc, id)) {
    case YD_SCALAR:
        return yd_is_null(doc, id) ? "an empty value" : "a scalar";
    case YD_SEQ:
        return "a list";
    case YD_MAP:
        return "a mapping";
    default:
        return "nothing";
    }
}

static char *resolve_path(struct loader *ld, const char *p)
{
    if (p[0] == '/' || !ld->dir)
        return strdup(p);
    size_t dl = strlen(ld->dir), pl = strlen(p);
    bool slash = dl > 0 && ld->dir[dl - 1] == '/';
    char *out = malloc(dl + pl + 2);
    if (out) {
        memcpy(out, ld->dir, dl);
        if (!slash)
            out[dl++] = '/';
        memcpy(out + dl, p, pl + 1);
    }
    return out;
}

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* A URL refused for carrying a user name and password must not carry them into
 * the error (which goes to the terminal, the journal, CI logs): the part before
 * the authority's last '@' becomes "***". */
static void hide_userinfo(char *url)
{
    char *p = strstr(url, "://");
    if (!p)
        return;
    p += 3;
    size_t alen = strcspn(p, "/?#");
    char *at = NULL;
    for (char *q = p; q < p + alen; q++)
        if (*q == '@')
            at = q;
    if (!at)
        return;
    if (at - p < 3) { /* never longer than it was: url is a bounded buffer */
        memset(p, '*', (size_t)(at - p));
        return;
    }
    memmove(p + 3, at, strlen(at) + 1);
    memcpy(p, "***", 3);
}

/* NULL if s is a usable Batch Server URL, else what is wrong with it. */
static const char *url_problem(const char *s, bool *https)
{
    const char *p;
    if (!strncasecmp(s, "http://", 7)) {
        *https = false;
        p = s + 7;
    } else if (!strncasecmp(s, "https://", 8)) {
        *https = true;
        p = s + 8;
    } else {
        return "is not an http:// or https:// URL";
    }
    for (const char *q = s; *q; q++)
        if (iscntrl((unsigned char)*q) || *q == ' ')
            return "contains spaces or control characters";
    size_t alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen))
        return "must not contain a user name or password";
    const char *host = p, *end = p + alen;
    if (*host == '[') {
        const char *close = memchr(host, ']', alen);
        if (!close || close == host + 1)
            return "has an invalid IPv6 address";
        for (const char *q = host + 1; q < close; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return "has an invalid IPv6 address";
        p = close + 1;
    } else {
        while (p < end && (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
            p++;
        if (p == host)
            return "has no host";
    }
    if (p < end && *p == ':') {
        p++;
        long port = 0;
        const char *digits = p;
        while (p < end && isdigit((unsigned char)*p) && p - digits < 6)
            port = port * 10 + (*p++ - '0');
        if (p == digits || p != end || port < 1 || port > 65535)
            return "has an invalid port (expected 1 to 65535)";
    }
    if (p != end)
        return "has an invalid host";
    if (strpbrk(end, "?#"))
        return "must not have a query or fragment";
    return NULL;
}

/* Decimal integer, optional '-', nothing else. */
static bool parse_integer(const char *s, long long *out)
{
    const char *p = s + (*s == '-');
    if (!isdigit((unsigned char)*p))
        return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        v = *s == '-' ? LLONG_MIN : LLONG_MAX; /* reported as out of range */
    *out = v;
    return true;
}

/* Decimal number ("1", "1.5", "-2", "1e1"); no hex, inf or nan. */
static bool parse_number(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
        return false;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool set_text(struct loader *ld, void *field, char *value)
{
    char **slot = field;
    if (!value) {
        ld->oom = true;
        return false;
    }
    free(*slot);
    *slot = value;
    return true;
}

/* ---- the types of keys ---- */

/* How a key's value is kept at its offset. */
enum store {
    ST_NONE = 0, /* not a value (the connections list) */
    ST_TEXT,     /* char *, malloc'd; NULL = unset */
    ST_LONG,     /* long */
    ST_DOUBLE,   /* double */
    ST_BOOL,     /* bool */
    ST_MS,       /* int64_t milliseconds */
    ST_LEVEL,    /* enum config_log_level, one of level_names */
};

/* One value being read: what messages about it need. */
struct leaf {
    struct loader *ld;
    const struct config_key *k;
    const char *path; /* as written, "connections[0].poll.interval" */
    int node;
    void *field;             /* where the value goes */
    char want[160];          /* the key's expectation, "an integer from 1 to 3650" */
    char shown[SHOWN_LEN];   /* the value as a message may quote it */
};

/* Records "path: message" at the value's position. */
__attribute__((format(printf, 2, 3))) static void leaf_error(const struct leaf *lf,
                                                            const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yd_errorf(lf->ld->doc, lf->node, "%s: %s", lf->path, msg);
}

static void leaf_bad(const struct leaf *lf)
{
    leaf_error(lf, "expected %s, got '%s'", lf->want, lf->shown);
}

static void leaf_out_of_range(const struct leaf *lf)
{
    leaf_error(lf, "%s is out of range: expected %s", lf->shown, lf->want);
}

static bool leaf_in_range(const struct leaf *lf, double v)
{
    if (v < lf->k->min || v > lf->k->max) {
        leaf_out_of_range(lf);
        return false;
    }
    return true;
}

static void parse_level(struct leaf *lf, const char *s)
{
    for (size_t i = 0; i < NLEVELS; i++)
        if (!strcmp(s, level_names[i])) {
            *(enum config_log_level *)lf->field = (enum config_log_level)i;
            return;
        }
    leaf_bad(lf);
}

static void parse_int(struct leaf *lf, const char *s)
{
    long long v;
    if (!parse_integer(s, &v))
        leaf_bad(lf);
    else if (leaf_in_range(lf, (double)v))
        *(long *)lf->field = (long)v;
}

static void parse_num(struct leaf *lf, const char *s)
{
    double v;
    if (!parse_number(s, &v))
        leaf_bad(lf);
    else if (leaf_in_range(lf, v))
        *(double *)lf->field = v;
}

static void parse_bool(struct leaf *lf, const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        *(bool *)lf->field = true;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        *(bool *)lf->field = false;
    else
        leaf_bad(lf);
}

static void parse_duration(struct leaf *lf, const char *s)
{
    int64_t ms = 0;
    switch (duration_parse(s, &ms)) {
    case DURATION_OK:
        if (leaf_in_range(lf, (double)ms))
            *(int64_t *)lf->field = ms;
        return;
    case DURATION_SYNTAX:
        leaf_error(lf, "expected a duration, %s, got '%s'", DURATION_FORMS, lf->shown);
        return;
    case DURATION_NEGATIVE:
    case DURATION_TOOBIG:
        leaf_out_of_range(lf);
        return;
    case DURATION_FRACTION:
        leaf_error(lf, "%s is not a whole number of milliseconds", lf->shown);
        return;
    }
}

static void parse_string(struct leaf *lf, const char *s) { set_text(lf->ld, lf->field, strdup(s)); }

static void parse_name(struct leaf *lf, const char *s)
{
    for (const char *q = s; *q; q++)
        if (!name_char(*q)) {
            leaf_bad(lf);
            return;
        }
    set_text(lf->ld, lf->field, strdup(s));
}

static void parse_url(struct leaf *lf, const char *s)
{
    bool https = false;
    const char *why = url_problem(s, &https);
    if (why) {
        hide_userinfo(lf->shown);
        leaf_error(lf, "'%s' %s", lf->shown, why);
        return;
    }
    set_text(lf->ld, lf->field, strdup(s));
}

static void parse_conninfo(struct leaf *lf, const char *s)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(s, &err);
    if (!opts) {
        if (!err) {
            lf->ld->oom = true;
            return;
        }
        size_t el = strlen(err);
        while (el > 0 && (err[el - 1] == '\n' || err[el - 1] == ' '))
            err[--el] = '\0';
        leaf_error(lf, "invalid libpq connection string: %s", err);
        PQfreemem(err);
        return;
    }
    /* A URI's %XX escapes can decode to bytes that are not UTF-8, or to
     * control characters: the same rules as for the text itself, else such
     * a value could not be logged, shown or written back (config dump). */
    const char *bad = NULL, *why = NULL;
    for (PQconninfoOption *o = opts; o->keyword && !bad; o++) {
        if (!o->val)
            continue;
        if (!text_utf8_valid(o->val, strlen(o->val)))
            bad = o->keyword, why = "is not valid UTF-8";
        for (const char *q = o->val; *q && !bad; q++)
            if (iscntrl((unsigned char)*q))
                bad = o->keyword, why = "contains control characters";
    }
    if (bad)
        leaf_error(lf, "the value of %s %s (after %%-decoding)", bad, why);
    else
        set_text(lf->ld, lf->field, strdup(s));
    PQconninfoFree(opts);
}

/* A path, resolved against the file's directory; readable if must_read. */
static void store_path(struct leaf *lf, const char *s, bool must_read)
{
    if (!*s) {
        leaf_error(lf, "expected %s, got an empty string", lf->want);
        return;
    }
    char *full = resolve_path(lf->ld, s);
    if (!full) {
        lf->ld->oom = true;
        return;
    }
    if (must_read && access(full, R_OK) != 0) {
        leaf_error(lf, "cannot read '%s': %s", full, strerror(errno));
        free(full);
        return;
    }
    set_text(lf->ld, lf->field, full);
}

static void parse_path(struct leaf *lf, const char *s) { store_path(lf, s, false); }
static void parse_file(struct leaf *lf, const char *s) { store_path(lf, s, true); }

/*
 * The one table of types: how a value is kept and read, what a message says
 * the key expects, what the reference says of its range, and how a value is
 * written (the "Value types" table of docs/configuration.md). In expect and
 * range, {lo} and {hi} stand for the key's min and max (a duration's as a
 * duration), {levels} for the level names. Every text type first passes
 * text_ok().
 */
static const struct type_def {
    const char *name;
    enum store store;
    void (*parse)(struct leaf *lf, const char *s);
    const char *expect;
    const char *range;
    const char *doc;
} types[] = {
    [CONFIG_T_STRING] = {"string", ST_TEXT, parse_string,
                         "a string of {lo} to {hi} characters", "{lo} .. {hi} chars",
                         "text without control characters, as long as the key's range says"},
    [CONFIG_T_CONNINFO] = {"conninfo", ST_TEXT, parse_conninfo, "a libpq connection string", "-",
                           "a libpq connection string (`host=... dbname=...`) or URI "
                           "(`postgresql://...`), see the PostgreSQL manual, \"Connection "
                           "Strings\""},
    [CONFIG_T_PATH] = {"path", ST_TEXT, parse_path, "a file path", "-",
                       "a file path; a relative path is relative to the directory of the "
                       "configuration file"},
    [CONFIG_T_FILE] = {"readable file", ST_TEXT, parse_file, "a file path", "-",
                       "a path as above that must be readable when the file is loaded"},
    [CONFIG_T_NAME] = {"name", ST_TEXT, parse_name,
                       "a name of {lo} to {hi} characters A-Z a-z 0-9 _ . -",
                       "{lo} .. {hi} chars",
                       "characters of `A-Z a-z 0-9 _ . -`, as many as the key's range says; "
                       "case-sensitive"},
    [CONFIG_T_URL] = {"URL", ST_TEXT, parse_url, "an http:// or https:// URL",
                      "http:// or https://",
                      "`http://` or `https://`, a host name, IPv4 or `[IPv6]` address, an "
                      "optional `:port` (1-65535) and path; no user name, password, query or "
                      "fragment. `http://` works but the daemon warns about it"},
    [CONFIG_T_LOG_LEVEL] = {"level", ST_LEVEL, parse_level, "one of {levels}", "{levels}",
                            "one of the words in the key's range"},
    [CONFIG_T_INT] = {"integer", ST_LONG, parse_int, "an integer from {lo} to {hi}",
                      "{lo} .. {hi}", "decimal digits (`30`)"},
    [CONFIG_T_NUMBER] = {"number", ST_DOUBLE, parse_num, "a number from {lo} to {hi}",
                         "{lo} .. {hi}", "a decimal number (`1.0`, `2.5`)"},
    [CONFIG_T_BOOL] = {"boolean", ST_BOOL, parse_bool, "a boolean (true/false)", "true, false",
                       "`true` or `false`"},
    [CONFIG_T_DURATION] = {"duration", ST_MS, parse_duration, "a duration from {lo} to {hi}",
                           "{lo} .. {hi}",
                           "a number of seconds (`5`, `0.5`) or a number with a unit `ms`, `s`, "
                           "`m`, `h` (`500ms`, `10s`, `2m`, `1.5h`); whole milliseconds; no "
                           "spaces, no negative values"},
    [CONFIG_T_CONNECTIONS] = {"list", ST_NONE, NULL, "a non-empty list of connections",
                              "1 or more", "a YAML list (`connections`: one mapping per item)"},
};
#define NTYPES (sizeof types / sizeof types[0])
_Static_assert(NTYPES == CONFIG_T_CONNECTIONS + 1, "a row in types[] for every config_key_type");

static const struct type_def *type_of(const struct config_key *k)
{
    static const struct type_def none = {"?", ST_NONE, NULL, "?", "?", "?"};
    return (unsigned)k->type < NTYPES && types[k->type].name ? &types[k->type] : &none;
}

const char *config_key_type_name(enum config_key_type type)
{
    return (unsigned)type < NTYPES && types[type].name ? types[type].name : "?";
}

static void fmt_range_value(const struct config_key *k, double v, char *buf, size_t len)
{
    if (k->type == CONFIG_T_DURATION)
        duration_format((int64_t)v, buf, len);
    else if (k->type == CONFIG_T_NUMBER)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.0f", v);
}

/* A text of the type table with {lo}, {hi} and {levels} filled in for k. */
static void fill(const struct config_key *k, const char *tmpl, char *buf, size_t len)
{
    char lo[32], hi[32], levels[64] = "";
    fmt_range_value(k, k->min, lo, sizeof lo);
    fmt_range_value(k, k->max, hi, sizeof hi);
    for (size_t i = 0; i < NLEVELS; i++)
        snprintf(levels + strlen(levels), sizeof levels - strlen(levels), "%s%s",
                 i ? ", " : "", level_names[i]);
    size_t j = 0;
    for (const char *p = tmpl; *p && j + 1 < len;) {
        const char *put = NULL;
        size_t skip = 0;
        if (!strncmp(p, "{lo}", 4))
            put = lo, skip = 4;
        else if (!strncmp(p, "{hi}", 4))
            put = hi, skip = 4;
        else if (!strncmp(p, "{levels}", 8))
            put = levels, skip = 8;
        if (!put) {
            buf[j++] = *p++;
            continue;
        }
        for (; *put && j + 1 < len; put++)
            buf[j++] = *put;
        p += skip;
    }
    buf[j] = '\0';
}

/* What a key expects, for messages: "an integer from 1 to 3650". */
static void expectation(const struct config_key *k, char *buf, size_t len)
{
    fill(k, type_of(k)->expect, buf, len);
}

/* The checks every text passes before its type's own. */
static bool text_ok(const struct leaf *lf, const char *s)
{
    for (const char *q = s; *q; q++)
        if (iscntrl((unsigned char)*q)) {
            leaf_error(lf, "must not contain control characters");
            return false;
        }
    size_t len = strlen(s);
    if (lf->k->max > 0 && (double)len > lf->k->max) {
        leaf_error(lf, "longer than %.0f characters", lf->k->max);
        return false;
    }
    if (len == 0 && lf->k->min > 0) {
        leaf_error(lf, "expected %s, got an empty string", lf->want);
        return false;
    }
    return true;
}

/* Reads one leaf value into base + k->offset, recording an error if it is bad. */
static void parse_leaf(struct loader *ld, const struct config_key *k, const char *path, int val,
                       void *base)
{
    struct yd_doc *doc = ld->doc;
    const struct type_def *t = type_of(k);
    struct leaf lf = {.ld = ld, .k = k, .path = path, .node = val,
                      .field = (char *)base + k->offset};
    expectation(k, lf.want, sizeof lf.want);

    if (yd_is_null(doc, val)) {
        if (k->required)
            leaf_error(&lf, "expected %s, got an empty value", lf.want);
        return; /* optional: empty means the default */
    }
    if (yd_type(doc, val) != YD_SCALAR) {
        leaf_error(&lf, "expected %s, got %s", lf.want, type_word(doc, val));
        return;
    }
    const char *s;
    if (!yd_get_string(doc, val, &s))
        return; /* an embedded NUL; yamldoc said so */
    shown(s, lf.shown, sizeof lf.shown);
    if (!t->parse || (t->store == ST_TEXT && !text_ok(&lf, s)))
        return;
    t->parse(&lf, s);
}

/* Levenshtein distance of two short lowercase-compared strings. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The part of k's path below tprefix, or NULL if k is not in that scope. */
static const char *in_scope(const struct config_key *k, const char *tprefix)
{
    size_t n = strlen(tprefix);
    if (strncmp(k->path, tprefix, n) != 0)
        return NULL;
    const char *rest = k->path + n;
    if (!*rest || strstr(rest, "[]."))
        return NULL;
    return rest;
}

static size_t first_len(const char *rest) { return strcspn(rest, "."); }

/* Suggests the closest key of the scope: a sibling within 2 edits, or a unique
 * key of that name one level down ("interval" -> "poll.interval"). */
static void report_unknown(struct loader *ld, int kid, const char *tprefix, const char *dprefix,
                           const char *name)
{
    char best[80] = "";
    size_t bestd = 3;
    const char *deeper = NULL;
    int ndeeper = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *rest = in_scope(&keys[i], tprefix);
        if (!rest)
            continue;
        size_t fl = first_len(rest);
        char child[80];
        snprintf(child, sizeof child, "%.*s", (int)fl, rest);
        size_t d = edit_distance(name, child);
        if (d < bestd && 3 * d <= strlen(child)) {
            bestd = d;
            snprintf(best, sizeof best, "%s", child);
        }
        if (rest[fl] == '.' && !strcmp(rest + fl + 1, name)) {
            deeper = rest;
            ndeeper++;
        }
    }
    char sh[SHOWN_LEN];
    shown(name, sh, sizeof sh);
    const char *dot = strchr(name, '.');
    if (dot) {
        char top[64];
        snprintf(top, sizeof top, "%.*s", (int)(dot - name), name);
        for (size_t i = 0; i < NKEYS; i++) {
            const char *rest = in_scope(&keys[i], tprefix);
            if (rest && !strcmp(rest, name)) {
                yd_errorf(ld->doc, kid, "%s%s: unknown key (write '%s:' and nest '%s:' below it)",
                          dprefix, sh, top, dot + 1);
                return;
            }
        }
    }
    if (best[0])
        yd_errorf(ld->doc, kid, "%s%s: unknown key (did you mean '%s'?)", dprefix, sh, best);
    else if (ndeeper == 1)
        yd_errorf(ld->doc, kid, "%s%s: unknown key (did you mean '%s'?)", dprefix, sh, deeper);
    else
        yd_errorf(ld->doc, kid, "%s%s: unknown key", dprefix, sh);
}

static void walk_connections(struct loader *ld, const struct config_key *k, int val,
                             struct amtacs_config *cfg);

/* True (and said so) if the i-th key of map repeats an earlier one. */
static bool duplicate_key(struct yd_doc *doc, int map, size_t i, const char *dprefix,
                          const char *name)
{
    for (size_t j = 0; j < i; j++) {
        int pk = yd_map_key(doc, map, j);
        const char *prev = yd_scalar(doc, pk);
        if (prev && !strcmp(prev, name)) {
            char sh[SHOWN_LEN];
            yd_errorf(doc, yd_map_key(doc, map, i),
                      "%s%s: duplicate key (first given on line %zu)", dprefix,
                      shown(name, sh, sizeof sh), yd_line(doc, pk));
            return true;
        }
    }
    return false;
}

/* The key `name` of the scope tprefix: the leaf of that name, or NULL with
 * *section set if it names a section of keys below. */
static const struct config_key *find_key(const char *tprefix, const char *name, bool *section)
{
    size_t nl = strlen(name);
    *section = false;
    if (strchr(name, '.')) /* "poll.interval: 5s" is not a spelling of poll: {interval: 5s} */
        return NULL;
    for (size_t j = 0; j < NKEYS; j++) {
        const char *rest = in_scope(&keys[j], tprefix);
        if (!rest || strncmp(rest, name, nl) != 0)
            continue;
        if (rest[nl] == '\0')
            return &keys[j];
        if (rest[nl] == '.')
            *section = true;
    }
    return NULL;
}

/* Required keys of the scope absent from map (0: none given), and from
 * absent sections below it; reported at `at`. */
static void report_missing(struct yd_doc *doc, const char *tprefix, const char *dprefix, int map,
                           int at)
{
    for (size_t j = 0; j < NKEYS; j++) {
        const char *rest = in_scope(&keys[j], tprefix);
        if (!rest || !keys[j].required)
            continue;
        char child[80];
        snprintf(child, sizeof child, "%.*s", (int)first_len(rest), rest);
        if (!map || !yd_map_get(doc, map, child))
            yd_errorf(doc, at, "%s%s: required key is missing", dprefix, rest);
    }
}

/* Reads the mapping `map` holding the keys of the table below tprefix into base. */
static void walk_map(struct loader *ld, const char *tprefix, const char *dprefix, int map,
                     void *base, struct amtacs_config *cfg)
{
    struct yd_doc *doc = ld->doc;
    bool empty = yd_is_null(doc, map);
    if (!empty && yd_type(doc, map) != YD_MAP) {
        size_t dl = strlen(dprefix);
        if (dl)
            yd_errorf(doc, map, "%.*s: expected a mapping (key: value), got %s",
                      (int)(dl - 1), dprefix, type_word(doc, map));
        else
            yd_errorf(doc, map, "expected a mapping (key: value) at the top level, got %s",
                      type_word(doc, map));
        return;
    }

    size_t n = empty ? 0 : yd_len(doc, map);
    for (size_t i = 0; i < n; i++) {
        int kid = yd_map_key(doc, map, i), val = yd_map_value(doc, map, i);
        const char *name = yd_scalar(doc, kid);
        if (!name) {
            yd_errorf(doc, kid, "%sa key must be a plain string, got %s", dprefix,
                      type_word(doc, kid));
            continue;
        }
        if (duplicate_key(doc, map, i, dprefix, name))
            continue;
        bool section = false;
        const struct config_key *leaf = find_key(tprefix, name, &section);
        char path[192], sub_t[96], sub_d[192];
        snprintf(path, sizeof path, "%s%s", dprefix, name);
        if (leaf && leaf->type == CONFIG_T_CONNECTIONS) {
            walk_connections(ld, leaf, val, cfg);
        } else if (leaf) {
            parse_leaf(ld, leaf, path, val, base);
        } else if (section) {
            snprintf(sub_t, sizeof sub_t, "%s%s.", tprefix, name);
            snprintf(sub_d, sizeof sub_d, "%s%s.", dprefix, name);
            walk_map(ld, sub_t, sub_d, val, base, cfg);
        } else {
            report_unknown(ld, kid, tprefix, dprefix, name);
        }
    }

    report_missing(doc, tprefix, dprefix, empty ? 0 : map, map);
}

/* The node at a dotted path below map, or the deepest mapping on the way. */
static int node_at(const struct yd_doc *doc, int map, const char *dotted)
{
    char part[64];
    const char *p = dotted;
    while (*p) {
        size_t l = strcspn(p, ".");
        snprintf(part, sizeof part, "%.*s", (int)l, p);
        int next = yd_map_get(doc, map, part);
        if (!next)
            return map;
        map = next;
        p += l + (p[l] == '.');
    }
    return map;
}

static void check_connection(struct loader *ld, const struct amtacs_connection *c, int item,
                             const char *dprefix)
{
    const struct yd_doc *doc = ld->doc;
    char a[DURATION_FMT_LEN], b[DURATION_FMT_LEN];
    if (c->poll.max_interval_ms < c->poll.interval_ms) {
        int at = node_at(doc, item, "poll.max_interval");
        bool given = yd_map_get(doc, yd_map_get(doc, item, "poll"), "max_interval") != 0;
        yd_errorf(ld->doc, at, "%spoll.max_interval: %s%s is less than poll.interval (%s)",
                  dprefix, duration_format(c->poll.max_interval_ms, a, sizeof a),
                  given ? "" : " (the default)", duration_format(c->poll.interval_ms, b, sizeof b));
    }
    if (c->start_retry.max_delay_ms < c->start_retry.delay_ms) {
        int at = node_at(doc, item, "start_retry.max_delay");
        bool given = yd_map_get(doc, yd_map_get(doc, item, "start_retry"), "max_delay") != 0;
        yd_errorf(ld->doc, at, "%sstart_retry.max_delay: %s%s is less than start_retry.delay (%s)",
                  dprefix, duration_format(c->start_retry.max_delay_ms, a, sizeof a),
                  given ? "" : " (the default)",
                  duration_format(c->start_retry.delay_ms, b, sizeof b));
    }
}

static void set_defaults(struct loader *ld, const char *tprefix, void *base)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &keys[i];
        if (!in_scope(k, tprefix))
            continue;
        void *field = (char *)base + k->offset;
        switch (type_of(k)->store) {
        case ST_LEVEL:
            *(enum config_log_level *)field = (enum config_log_level)k->def;
            break;
        case ST_LONG:
            *(long *)field = (long)k->def;
            break;
        case ST_DOUBLE:
            *(double *)field = k->def;
            break;
        case ST_BOOL:
            *(bool *)field = k->def != 0;
            break;
        case ST_MS:
            *(int64_t *)field = (int64_t)k->def;
            break;
        case ST_TEXT:
            if (k->def_s)
                set_text(ld, field, strdup(k->def_s));
            break;
        case ST_NONE:
            break;
        }
    }
}

static void walk_connections(struct loader *ld, const struct config_key *k, int val,
                             struct amtacs_config *cfg)
{
    struct yd_doc *doc = ld->doc;
    size_t n = yd_type(doc, val) == YD_SEQ ? yd_len(doc, val) : 0;
    if (n == 0) {
        const char *got = yd_type(doc, val) == YD_SEQ ? "an empty list" : type_word(doc, val);
        yd_errorf(doc, val, "%s: expected %s, got %s", k->path, type_of(k)->expect, got);
        return;
    }
    cfg->connections = calloc(n, sizeof *cfg->connections);
    if (!cfg->connections) {
        ld->oom = true;
        return;
    }
    cfg->n_connections = n;
    for (size_t i = 0; i < n; i++) {
        struct amtacs_connection *c = &cfg->connections[i];
        int item = yd_seq_at(doc, val, i);
        char dprefix[48];
        snprintf(dprefix, sizeof dprefix, "connections[%zu].", i);
        size_t before = yd_error_count(doc);
        c->line = yd_line(doc, item);
        set_defaults(ld, CONN_PREFIX, c);
        walk_map(ld, CONN_PREFIX, dprefix, item, c, cfg);
        if (c->url)
            url_problem(c->url, &c->https);
        if (yd_error_count(doc) == before)
            check_connection(ld, c, item, dprefix);
        for (size_t j = 0; j < i && c->name; j++) {
            if (cfg->connections[j].name && !strcmp(cfg->connections[j].name, c->name)) {
                int first = yd_map_get(doc, yd_seq_at(doc, val, j), "name");
                yd_errorf(doc, yd_map_get(doc, item, "name"),
                          "%sname: duplicate connection name '%s' (first used on line %zu)",
                          dprefix, c->name, yd_line(doc, first));
                break;
            }
        }
    }
}

static void free_texts(const char *tprefix, void *base)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (in_scope(&keys[i], tprefix) && type_of(&keys[i])->store == ST_TEXT)
            free(*(char **)((char *)base + keys[i].offset));
}

void config_free(const struct amtacs_config *ccfg)
{
    struct amtacs_config *cfg = (struct amtacs_config *)ccfg;
    if (!cfg)
        return;
    free_texts("", cfg);
    for (size_t i = 0; i < cfg->n_connections; i++)
        free_texts(CONN_PREFIX, &cfg->connections[i]);
    free(cfg->connections);
    free(cfg->source);
    free(cfg);
}

/* The HTTP settings that only make sense together. */
/* A connection is up while its server answered within failover_after
 * (acs.connection_up), and it only learns so at each heartbeat: a shorter
 * failover_after would send its jobs elsewhere between two good heartbeats. */
static void check_failover(struct loader *ld, const struct amtacs_config *cfg)
{
    struct yd_doc *doc = ld->doc;
    int conns = yd_map_get(doc, yd_root(doc), "connections");
    char a[DURATION_FMT_LEN], b[DURATION_FMT_LEN];
    for (size_t i = 0; i < cfg->n_connections; i++) {
        const struct amtacs_connection *c = &cfg->connections[i];
        if (c->failover_after_ms >= 2 * cfg->daemon.heartbeat_interval_ms)
            continue;
        int item = yd_seq_at(doc, conns, i);
        bool given = yd_map_get(doc, item, "failover_after") != 0;
        yd_errorf(doc, node_at(doc, item, "failover_after"),
                  "connections[%zu].failover_after: %s%s is less than twice "
                  "daemon.heartbeat_interval (%s): a server that answers would look down between "
                  "two heartbeats",
                  i, duration_format(c->failover_after_ms, a, sizeof a),
                  given ? "" : " (the default)",
                  duration_format(cfg->daemon.heartbeat_interval_ms, b, sizeof b));
    }
}

static void check_http(struct loader *ld, const struct amtacs_config *cfg)
{
    struct yd_doc *doc = ld->doc;
    int root = yd_root(doc);
    if (!cfg->http.tls_cert_file != !cfg->http.tls_key_file)
        yd_errorf(doc, node_at(doc, root, cfg->http.tls_cert_file ? "http.tls_cert_file"
                                                                  : "http.tls_key_file"),
                  "http.%s: is set without http.%s; HTTPS needs both",
                  cfg->http.tls_cert_file ? "tls_cert_file" : "tls_key_file",
                  cfg->http.tls_cert_file ? "tls_key_file" : "tls_cert_file");
    /* The metrics name the connections and the queue's size: off the
     * loopback interface they are served only to token holders. */
    if (cfg->http.listen && *cfg->http.listen && !cfg->http.token_file &&
        !netaddr_listen_is_loopback(cfg->http.listen))
        yd_errorf(doc, node_at(doc, root, "http.listen"),
                  "http.listen: '%s' is not a loopback address (127.0.0.0/8, ::1, localhost) "
                  "and http.token_file is not set: the metrics would be open to the "
                  "network; set http.token_file (and http.tls_cert_file/http.tls_key_file for "
                  "HTTPS), or listen on 127.0.0.1",
                  cfg->http.listen);
}

/* amtacs-web's settings that only make sense together. A session cookie,
 * a password or a bearer token sent in plain HTTP off the loopback interface
 * could be read on the way: there, HTTPS is required, or a proxy in front
 * that speaks it (web.behind_proxy, the operator's word). */
static void check_web(struct loader *ld, const struct amtacs_config *cfg)
{
    struct yd_doc *doc = ld->doc;
    int root = yd_root(doc);
    if (!cfg->web.tls_cert_file != !cfg->web.tls_key_file)
        yd_errorf(doc, node_at(doc, root, cfg->web.tls_cert_file ? "web.tls_cert_file"
                                                                 : "web.tls_key_file"),
                  "web.%s: is set without web.%s; HTTPS needs both",
                  cfg->web.tls_cert_file ? "tls_cert_file" : "tls_key_file",
                  cfg->web.tls_cert_file ? "tls_key_file" : "tls_cert_file");
    if (cfg->web.listen && !cfg->web.tls_cert_file && !cfg->web.behind_proxy &&
        !netaddr_listen_is_loopback(cfg->web.listen))
        yd_errorf(doc, node_at(doc, root, "web.listen"),
                  "web.listen: '%s' is not a loopback address (127.0.0.0/8, ::1, localhost) "
                  "and neither HTTPS (web.tls_cert_file, web.tls_key_file) nor "
                  "web.behind_proxy: true is set: passwords, session cookies and tokens "
                  "would cross the network in clear text",
                  cfg->web.listen);
}

/* Builds the config from a parsed document; takes over nothing. */
static const struct amtacs_config *build(struct yd_doc *doc, char *dir,
                                         struct config_errors **errs)
{
    struct loader ld = {.doc = doc, .dir = dir, .oom = false};
    struct amtacs_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        ld.oom = true;
    } else {
        cfg->source = strdup(yd_name(doc));
        if (!cfg->source)
            ld.oom = true;
        set_defaults(&ld, "", cfg);
    }
    if (cfg && !ld.oom && yd_error_count(doc) == 0) {
        int root = yd_root(doc);
        if (!root)
            yd_errorf(doc, 0, "the file is empty: expected a mapping with database, key_file "
                              "and connections");
        else
            walk_map(&ld, "", "", root, cfg, cfg);
        if (yd_error_count(doc) == 0 &&
            cfg->daemon.renew_interval_ms >= cfg->daemon.lease_seconds * 1000) {
            char a[32];
            yd_errorf(doc, node_at(doc, root, "daemon.renew_interval"),
                      "daemon.renew_interval: %s is not less than daemon.lease_seconds (%ld s): "
                      "the leases would expire between renewals",
                      duration_format(cfg->daemon.renew_interval_ms, a, sizeof a),
                      cfg->daemon.lease_seconds);
        }
    }
    if (cfg && !ld.oom && yd_error_count(doc) == 0) {
        check_failover(&ld, cfg);
        check_http(&ld, cfg);
        check_web(&ld, cfg);
    }
    if (ld.oom || yd_error_count(doc) > 0) {
        config_free(cfg);
        if (errs)
            *errs = errors_from_doc(doc, ld.oom);
        return NULL;
    }
    return cfg;
}

/* The directory of path, made absolute with the working directory so that a
 * later chdir() does not change what relative paths in the file name. */
static char *file_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 0;
    if (path[0] == '/')
        return strndup(path, dl);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return dl ? strndup(path, dl) : strdup(".");
    size_t cl = strlen(cwd);
    char *out = malloc(cl + 1 + dl + 1);
    if (!out)
        return NULL;
    memcpy(out, cwd, cl);
    if (dl) {
        out[cl] = '/';
        memcpy(out + cl + 1, path, dl);
        out[cl + 1 + dl] = '\0';
    } else {
        out[cl] = '\0';
    }
    return out;
}

const struct amtacs_config *config_load(const char *path, struct config_errors **errs)
{
    if (errs)
        *errs = NULL;
    struct stat st;
    struct yd_doc *doc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* libyaml would report a directory twice and obscurely */
        doc = yd_load_string(path, "", 0);
        if (doc)
            yd_errorf(doc, 0, "cannot read: %s", strerror(EISDIR));
    } else {
        doc = yd_load_file(path);
    }
    char *dir = doc ? file_dir(path) : NULL;
    if (!dir) {
        yd_free(doc);
        if (errs)
            *errs = &oom_errors;
        return NULL;
    }
    const struct amtacs_config *cfg = build(doc, dir, errs);
    free(dir);
    yd_free(doc);
    return cfg;
}

const struct amtacs_config *config_load_string(const char *name, const char *text, size_t len,
                                               struct config_errors **errs)
{
    if (errs)
        *errs = NULL;
    struct yd_doc *doc = yd_load_string(name, text, len);
    if (!doc) {
        if (errs)
            *errs = &oom_errors;
        return NULL;
    }
    const struct amtacs_config *cfg = build(doc, NULL, errs);
    yd_free(doc);
    return cfg;
}

const struct amtacs_connection *config_find_connection(const struct amtacs_config *cfg,
                                                       const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_connections; i++)
        if (!strcmp(cfg->connections[i].name, name))
            return &cfg->connections[i];
    return NULL;
}

/* ---- output ---- */

/* True for the characters a YAML reader takes as a line break (NEL, LS, PS:
 * inside quotes they fold into a space) or refuses when written as they are
 * (C1 controls, U+FFFE, U+FFFF), and the invisible BOM: the dump escapes them. */
static bool yaml_needs_escape(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
           cp == 0xFFFE || cp == 0xFFFF;
}

static void put_quoted(FILE *out, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t l = c >= 0x80 ? text_utf8_seq(u + i, n - i) : 1;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\x%02x", c);
        } else if (l >= 2) {
            uint32_t cp = c & (l == 2 ? 0x1Fu : l == 3 ? 0x0Fu : 0x07u);
            for (size_t k = 1; k < l; k++)
                cp = (cp << 6) | (u[i + k] & 0x3Fu);
            if (yaml_needs_escape(cp))
                fprintf(out, "\\u%04x", (unsigned)cp);
            else
                fwrite(u + i, 1, l, out);
        } else {
            /* ASCII, or a byte that is not UTF-8 (libyaml yields none): as it is */
            fputc(c, out);
            l = 1;
        }
        i += l;
    }
    fputc('"', out);
}

static void put_conninfo_value(FILE *out, const char *v)
{
    fputc('\'', out);
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            fputc('\\', out);
        fputc(*v, out);
    }
    fputc('\'', out);
}

/* The conninfo with a password replaced by ********; as written if it has none. */
static void put_conninfo(FILE *out, const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    bool secret = false;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val && !strcmp(o->keyword, "password"))
            secret = true;
    if (!secret) {
        PQconninfoFree(opts);
        put_quoted(out, conninfo);
        return;
    }
    char *tmp = NULL;
    size_t tlen = 0;
    FILE *mem = open_memstream(&tmp, &tlen);
    if (!mem) {
        PQconninfoFree(opts);
        put_quoted(out, "********");
        return;
    }
    bool first = true;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        fprintf(mem, "%s%s=", first ? "" : " ", o->keyword);
        put_conninfo_value(mem, strcmp(o->keyword, "password") ? o->val : "********");
        first = false;
    }
    fclose(mem);
    PQconninfoFree(opts);
    put_quoted(out, tmp ? tmp : "********");
    free(tmp);
}

static void put_number(FILE *out, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        fprintf(out, "%.1f", v);
    else
        fprintf(out, "%.17g", v);
}

static void put_value(FILE *out, const struct config_key *k, const void *base)
{
    const void *field = (const char *)base + k->offset;
    char buf[DURATION_FMT_LEN];
    switch (type_of(k)->store) {
    case ST_LEVEL:
        fputs(config_log_level_name(*(const enum config_log_level *)field), out);
        break;
    case ST_LONG:
        fprintf(out, "%ld", *(const long *)field);
        break;
    case ST_DOUBLE:
        put_number(out, *(const double *)field);
        break;
    case ST_BOOL:
        fputs(*(const bool *)field ? "true" : "false", out);
        break;
    case ST_MS:
        fputs(duration_format(*(const int64_t *)field, buf, sizeof buf), out);
        break;
    case ST_TEXT: {
        const char *v = *(char *const *)field;
        if (!v)
            fputs("~", out);
        else if (k->type == CONFIG_T_CONNINFO)
            put_conninfo(out, v); /* its password hidden */
        else
            put_quoted(out, v);
        break;
    }
    case ST_NONE:
        break;
    }
}

static bool same_value(const struct config_key *k, const void *a, const void *b)
{
    const void *x = (const char *)a + k->offset, *y = (const char *)b + k->offset;
    switch (type_of(k)->store) {
    case ST_LEVEL:
        return *(const enum config_log_level *)x == *(const enum config_log_level *)y;
    case ST_LONG:
        return *(const long *)x == *(const long *)y;
    case ST_DOUBLE:
        return *(const double *)x == *(const double *)y;
    case ST_BOOL:
        return *(const bool *)x == *(const bool *)y;
    case ST_MS:
        return *(const int64_t *)x == *(const int64_t *)y;
    case ST_TEXT: {
        const char *p = *(char *const *)x, *q = *(char *const *)y;
        return p == q || (p && q && !strcmp(p, q));
    }
    case ST_NONE:
        return true;
    }
    return false;
}

size_t config_restart_keys(const struct amtacs_config *old, const struct amtacs_config *cur,
                           const char **changed, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &keys[i];
        /* A connection's name is what identifies it: a new name is a new connection. */
        if (k->reload || !strncmp(k->path, CONN_PREFIX, strlen(CONN_PREFIX)))
            continue;
        /* amtacs-web's settings: the daemon never uses them. */
        if (!strncmp(k->path, "web.", 4))
            continue;
        if (!same_value(k, old, cur)) {
            if (n < max)
                changed[n] = k->path;
            n++;
        }
    }
    return n;
}

bool config_connection_same(const struct amtacs_connection *a,
                            const struct amtacs_connection *b, const char *prefix)
{
    size_t plen = strlen(CONN_PREFIX), flen = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &keys[i];
        if (strncmp(k->path, CONN_PREFIX, plen) || (flen && strncmp(k->path + plen, prefix, flen)))
            continue;
        if (!same_value(k, a, b))
            return false;
    }
    return true;
}

static const char *lead(bool list_item, bool *first)
{
    if (!list_item)
        return "";
    if (*first) {
        *first = false;
        return "- ";
    }
    return "  ";
}

/* Writes the keys of one scope at indent; a list item starts with "- ". */
static void dump_scope(FILE *out, const char *tprefix, const void *base, const char *indent,
                       bool list_item, const struct amtacs_config *cfg)
{
    char section[64] = "";
    bool first = true;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &keys[i];
        const char *rest = in_scope(k, tprefix);
        if (!rest)
            continue;
        size_t fl = first_len(rest);
        const char *leaf = rest, *pad = "";
        if (rest[fl] == '.') {
            if (strlen(section) != fl || strncmp(section, rest, fl) != 0) {
                snprintf(section, sizeof section, "%.*s", (int)fl, rest);
                fprintf(out, "%s%s%s:\n", indent, lead(list_item, &first), section);
            }
            leaf = rest + fl + 1;
            pad = "  ";
        } else {
            section[0] = '\0';
        }
        fprintf(out, "%s%s%s%s:", indent, lead(list_item, &first), pad, leaf);
        if (k->type == CONFIG_T_CONNECTIONS) {
            fputc('\n', out);
            for (size_t c = 0; c < cfg->n_connections; c++)
                dump_scope(out, CONN_PREFIX, &cfg->connections[c], "  ", true, cfg);
            continue;
        }
        fputc(' ', out);
        put_value(out, k, base);
        fputc('\n', out);
    }
}

bool config_dump(const struct amtacs_config *cfg, FILE *out)
{
    fprintf(out, "# effective configuration from %s (defaults included)\n", cfg->source);
    dump_scope(out, "", cfg, "", false, cfg);
    return !ferror(out) && fflush(out) == 0;
}

static void default_text(const struct config_key *k, char *buf, size_t len)
{
    if (k->required) {
        snprintf(buf, len, "*required*");
        return;
    }
    switch (type_of(k)->store) {
    case ST_LEVEL:
        snprintf(buf, len, "`%s`", config_log_level_name((enum config_log_level)k->def));
        break;
    case ST_LONG:
        snprintf(buf, len, "`%.0f`", k->def);
        break;
    case ST_DOUBLE:
        snprintf(buf, len, "`%.1f`", k->def);
        break;
    case ST_BOOL:
        snprintf(buf, len, "`%s`", k->def != 0 ? "true" : "false");
        break;
    case ST_MS: {
        char d[DURATION_FMT_LEN];
        snprintf(buf, len, "`%s`", duration_format((int64_t)k->def, d, sizeof d));
        break;
    }
    case ST_TEXT:
    case ST_NONE:
        if (k->def_s)
            snprintf(buf, len, "`\"%s\"`", k->def_s);
        else
            snprintf(buf, len, "unset");
        break;
    }
}

bool config_write_reference(FILE *out)
{
    fprintf(out, "| key | type | default | range | reload | meaning |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &keys[i];
        char def[64], range[96];
        default_text(k, def, sizeof def);
        fill(k, type_of(k)->range, range, sizeof range);
        fprintf(out, "| `%s` | %s | %s | %s | %s | %s |\n", k->path,
                config_key_type_name(k->type), def, range, k->reload ? "yes" : "restart",
                k->help);
    }
    return !ferror(out) && fflush(out) == 0;
}

bool config_write_types(FILE *out)
{
    fprintf(out, "| type | written as |\n");
    fprintf(out, "|---|---|\n");
    for (size_t i = 0; i < NTYPES; i++)
        fprintf(out, "| %s | %s |\n", types[i].name, types[i].doc);
    return !ferror(out) && fflush(out) == 0;
}
