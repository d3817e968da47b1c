/* Unit tests of config (and duration): the example, defaults, every key, and
 * the exact message for every kind of bad file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/config.h"
#include "amtacs/duration.h"
#include "amtacs/yamldoc.h"

#define DATA AMTACS_TESTDATA "/config"
#define EXAMPLE AMTACS_SOURCE_DIR "/config/amtacs.example.yaml"

/* Replaces every "@DIR@" in s with the data directory; caller frees. */
static char *expand(const char *s)
{
    size_t n = strlen(s) + 1, dl = strlen(DATA);
    for (const char *p = strstr(s, "@DIR@"); p; p = strstr(p + 5, "@DIR@"))
        n += dl;
    char *out = malloc(n), *o = out;
    assert_non_null(out);
    while (*s) {
        if (!strncmp(s, "@DIR@", 5)) {
            memcpy(o, DATA, dl);
            o += dl;
            s += 5;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

/* Loads a file that must be valid, printing its errors otherwise. */
static const struct amtacs_config *must_load(const char *path)
{
    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load(path, &errs);
    if (!cfg)
        config_errors_print(errs, stderr);
    assert_non_null(cfg);
    assert_null(errs);
    return cfg;
}

static void assert_connection_defaults(const struct amtacs_connection *c)
{
    assert_int_equal(c->retain_log_days, 30);
    assert_false(c->allow_kill);
    assert_int_equal(c->max_in_flight, 100);
    assert_int_equal(c->poll.initial_delay_ms, 10000);
    assert_int_equal(c->poll.interval_ms, 5000);
    assert_true(c->poll.backoff == 1.0);
    assert_int_equal(c->poll.max_interval_ms, 60000);
    assert_int_equal(c->start_retry.attempts, 5);
    assert_int_equal(c->start_retry.delay_ms, 1000);
    assert_true(c->start_retry.backoff == 2.0);
    assert_int_equal(c->start_retry.max_delay_ms, 30000);
    assert_int_equal(c->http.connect_timeout_ms, 10000);
    assert_int_equal(c->http.timeout_ms, 30000);
    assert_int_equal(c->http.max_body, 1048576);
    assert_int_equal(c->http.max_connections, 8);
    assert_true(c->tls.verify);
    assert_null(c->tls.ca_file);
    assert_null(c->proxy);
}

static void assert_global_defaults(const struct amtacs_config *cfg)
{
    assert_int_equal(cfg->log_level, CONFIG_LOG_INFO);
    assert_string_equal(cfg->daemon.id, "");
    assert_int_equal(cfg->daemon.lease_seconds, 30);
    assert_int_equal(cfg->daemon.claim_batch, 100);
}

static void test_example_loads_with_defaults(void **state)
{
    (void)state;
    const struct amtacs_config *cfg = must_load(EXAMPLE);
    assert_string_equal(cfg->source, EXAMPLE);
    assert_string_equal(cfg->database.conninfo,
                        "host=/var/run/postgresql dbname=amtacs user=acs_daemon "
                        "application_name=amtacsd");
    assert_string_equal(cfg->key_file, "/etc/amtacs/secret.key");
    assert_global_defaults(cfg);
    assert_int_equal(cfg->n_connections, 2);

    const struct amtacs_connection *a = &cfg->connections[0], *b = &cfg->connections[1];
    assert_string_equal(a->name, "AMTDEMO");
    assert_string_equal(a->url, "https://batchserver.example.com:42000");
    assert_true(a->https);
    assert_string_equal(a->batch_user, "OPCON");
    assert_connection_defaults(a); /* every key written out, at its default */

    assert_string_equal(b->name, "AMTTEST");
    assert_string_equal(b->url, "http://10.1.29.5:9001");
    assert_false(b->https);
    assert_string_equal(b->batch_user, "OPCONTEST");
    assert_connection_defaults(b); /* only the required keys: defaults filled in */
    config_free(cfg);
}

/* Every key of the table is written out in the example (so it is documented). */
static void test_example_covers_every_key(void **state)
{
    (void)state;
    struct yd_doc *doc = yd_load_file(EXAMPLE);
    assert_non_null(doc);
    assert_int_equal(yd_error_count(doc), 0);
    int root = yd_root(doc);
    int conn0 = yd_seq_at(doc, yd_map_get(doc, root, "connections"), 0);
    size_t n;
    const struct config_key *keys = config_keys(&n);
    assert_true(n > 20);
    for (size_t i = 0; i < n; i++) {
        const char *p = keys[i].path;
        int map = root;
        if (!strncmp(p, "connections[].", 14)) {
            map = conn0;
            p += 14;
        }
        char part[64];
        while (map) {
            size_t l = strcspn(p, ".");
            snprintf(part, sizeof part, "%.*s", (int)l, p);
            map = yd_map_get(doc, map, part);
            if (!p[l])
                break;
            p += l + 1;
        }
        if (!map)
            fail_msg("%s is not in the example", keys[i].path);
    }
    yd_free(doc);
}

/* The smallest valid file: every other key takes the table's default. */
static const char minimal[] = "database: {conninfo: 'dbname=x'}\n"
                              "key_file: /k\n"
                              "connections:\n"
                              "  - {name: A, url: 'http://h:1', batch_user: u}\n";

static void test_defaults_match_table(void **state)
{
    (void)state;
    struct config_errors *errs;
    const struct amtacs_config *cfg =
        config_load_string("min", minimal, sizeof minimal - 1, &errs);
    assert_non_null(cfg);
    assert_global_defaults(cfg);
    assert_connection_defaults(&cfg->connections[0]);

    size_t n;
    const struct config_key *keys = config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &keys[i];
        const char *base = (const char *)cfg;
        if (!strncmp(k->path, "connections[].", 14))
            base = (const char *)&cfg->connections[0];
        const void *f = base + k->offset;
        if (k->required || k->type == CONFIG_T_CONNECTIONS)
            continue;
        switch (k->type) {
        case CONFIG_T_INT:
            assert_true(*(const long *)f == (long)k->def);
            break;
        case CONFIG_T_NUMBER:
            assert_true(*(const double *)f == k->def);
            break;
        case CONFIG_T_BOOL:
            assert_true(*(const bool *)f == (k->def != 0));
            break;
        case CONFIG_T_DURATION:
            assert_true(*(const int64_t *)f == (int64_t)k->def);
            break;
        case CONFIG_T_LOG_LEVEL:
            assert_true(*(const enum config_log_level *)f == (enum config_log_level)k->def);
            break;
        default:
            if (k->def_s)
                assert_string_equal(*(char *const *)f, k->def_s);
            else
                assert_null(*(char *const *)f);
            break;
        }
        /* a default is inside its own range */
        if (k->type == CONFIG_T_INT || k->type == CONFIG_T_NUMBER ||
            k->type == CONFIG_T_DURATION) {
            assert_true(k->def >= k->min);
            assert_true(k->def <= k->max);
        }
    }
    config_free(cfg);
}

/* "a.b.c" and value as a YAML flow mapping: {a: {b: {c: value}}} */
static void nest(char *buf, size_t len, const char *path, const char *value)
{
    char open[256] = "", close[64] = "";
    for (const char *p = path; *p;) {
        size_t l = strcspn(p, ".");
        snprintf(open + strlen(open), sizeof open - strlen(open), "{%.*s: ", (int)l, p);
        snprintf(close + strlen(close), sizeof close - strlen(close), "}");
        p += l + (p[l] == '.');
    }
    snprintf(buf, len, "%s%s%s", open, value, close);
}

/* Every number, integer and duration key refuses one past its max, at its
 * place, with the words and the bounds of the table. */
static void test_bounds_from_table(void **state)
{
    (void)state;
    size_t n;
    const struct config_key *keys = config_keys(&n);
    int tried = 0;
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &keys[i];
        char value[48], lo[DURATION_FMT_LEN], hi[DURATION_FMT_LEN], words[96];
        switch (k->type) {
        case CONFIG_T_INT:
            snprintf(value, sizeof value, "%.0f", k->max + 1);
            snprintf(words, sizeof words, "an integer from %.0f to %.0f", k->min, k->max);
            break;
        case CONFIG_T_NUMBER:
            snprintf(value, sizeof value, "%.1f", k->max + 1);
            snprintf(words, sizeof words, "a number from %.1f to %.1f", k->min, k->max);
            break;
        case CONFIG_T_DURATION:
            snprintf(value, sizeof value, "%.0fms", k->max + 1);
            snprintf(words, sizeof words, "a duration from %s to %s",
                     duration_format((int64_t)k->min, lo, sizeof lo),
                     duration_format((int64_t)k->max, hi, sizeof hi));
            break;
        default:
            continue;
        }
        bool conn = !strncmp(k->path, "connections[].", 14);
        const char *rest = conn ? k->path + 14 : k->path;
        char item[512], text[1024], want[256];
        nest(item, sizeof item, rest, value);
        int il = (int)strlen(item) - 2; /* its outer braces off: "poll: {interval: V}" */
        if (conn)
            snprintf(text, sizeof text,
                     "database: {conninfo: 'dbname=x'}\nkey_file: /k\nconnections:\n"
                     "  - {name: A, url: 'http://h:1', batch_user: u, %.*s}\n",
                     il, item + 1);
        else
            snprintf(text, sizeof text, "%s%.*s\n", minimal, il, item + 1);
        snprintf(want, sizeof want, "%s%s: %s is out of range: expected %s",
                 conn ? "connections[0]." : "", rest, value, words);
        struct config_errors *errs = NULL;
        const struct amtacs_config *cfg = config_load_string("t", text, strlen(text), &errs);
        if (cfg)
            fail_msg("%s: %s was accepted:\n%s", k->path, value, text);
        const char *got = config_errors_get(errs, 0);
        if (config_errors_count(errs) != 1 || !strstr(got, want) || strncmp(got, "t:", 2))
            fail_msg("%s: want one error '...%s', got %zu, the first '%s', for:\n%s", k->path,
                     want, config_errors_count(errs), got ? got : "", text);
        config_errors_free(errs);
        tried++;
    }
    assert_true(tried > 20);
}

static void test_every_key_parses(void **state)
{
    (void)state;
    const struct amtacs_config *cfg = must_load(DATA "/good-all.yaml");
    assert_string_equal(cfg->database.conninfo,
                        "postgresql://acs_daemon@db.example.com:5433/amtacs?sslmode=verify-full");
    assert_string_equal(cfg->key_file, DATA "/secret.key"); /* relative to the file */
    assert_int_equal(cfg->log_level, CONFIG_LOG_DEBUG);
    assert_string_equal(cfg->daemon.id, "host-a:1");
    assert_int_equal(cfg->daemon.lease_seconds, 45);
    assert_int_equal(cfg->daemon.claim_batch, 7);
    assert_int_equal(cfg->n_connections, 2);

    const struct amtacs_connection *c = &cfg->connections[0];
    assert_string_equal(c->name, "AMT-prod.1_a");
    assert_string_equal(c->url, "https://[2001:db8::1]:9443/amt/api");
    assert_true(c->https);
    assert_string_equal(c->batch_user, "OPCON USER");
    assert_int_equal(c->retain_log_days, 3650);
    assert_true(c->allow_kill);
    assert_int_equal(c->max_in_flight, 100000);
    assert_int_equal(c->poll.initial_delay_ms, 0);
    assert_int_equal(c->poll.interval_ms, 500);
    assert_true(c->poll.backoff == 1.5);
    assert_int_equal(c->poll.max_interval_ms, 120000);
    assert_int_equal(c->start_retry.attempts, 1);
    assert_int_equal(c->start_retry.delay_ms, 250);
    assert_true(c->start_retry.backoff == 1.0);
    assert_int_equal(c->start_retry.max_delay_ms, 5400000);
    assert_int_equal(c->http.connect_timeout_ms, 3000);
    assert_int_equal(c->http.timeout_ms, 600000);
    assert_int_equal(c->http.max_body, 1024);
    assert_false(c->tls.verify);
    assert_string_equal(c->tls.ca_file, DATA "/ca.pem");
    assert_string_equal(c->proxy, "http://proxy.example:3128");
    assert_int_equal(c->line, 11);

    /* empty sections (poll: ~, start_retry:, tls: {}) leave the defaults */
    const struct amtacs_connection *d = &cfg->connections[1];
    assert_string_equal(d->name, "b");
    assert_false(d->https); /* the scheme is case-insensitive */
    assert_int_equal(d->retain_log_days, 1);
    assert_int_equal(d->max_in_flight, 1);
    assert_int_equal(d->poll.interval_ms, 5000);
    assert_int_equal(d->start_retry.attempts, 5);
    assert_true(d->tls.verify);
    config_free(cfg);
}

static void test_find_connection(void **state)
{
    (void)state;
    const struct amtacs_config *cfg = must_load(EXAMPLE);
    assert_ptr_equal(config_find_connection(cfg, "AMTTEST"), &cfg->connections[1]);
    assert_ptr_equal(config_find_connection(cfg, "AMTDEMO"), &cfg->connections[0]);
    assert_null(config_find_connection(cfg, "amtdemo")); /* names are case-sensitive */
    assert_null(config_find_connection(cfg, ""));
    assert_null(config_find_connection(cfg, NULL));
    assert_null(config_find_connection(NULL, "AMTDEMO"));
    config_free(cfg);
}

/* ---- bad files: each with every message it must produce, in order ---- */

struct bad_file {
    const char *file;
    const char *errors[10]; /* without the leading "DATA/"; @DIR@ = DATA */
};

static const struct bad_file bad_files[] = {
    {"bad-unknown-key.yaml",
     {"bad-unknown-key.yaml:9:7: connections[0].poll.intervall: unknown key (did you mean "
      "'interval'?)",
      "bad-unknown-key.yaml:10:5: connections[0].retain_log_files: unknown key",
      "bad-unknown-key.yaml:11:5: connections[0].interval: unknown key (did you mean "
      "'poll.interval'?)",
      "bad-unknown-key.yaml:12:5: connections[0].poll.interval: unknown key (write 'poll:' "
      "and nest 'interval:' below it)",
      "bad-unknown-key.yaml:13:5: connections[0].http.timeouts: unknown key"}},
    {"bad-unknown-top.yaml",
     {"bad-unknown-top.yaml:1:1: databse: unknown key (did you mean 'database'?)",
      "bad-unknown-top.yaml:1:1: database.conninfo: required key is missing",
      "bad-unknown-top.yaml:4:1: Log_Level: unknown key (did you mean 'log_level'?)"}},
    {"bad-wrong-type.yaml",
     {"bad-wrong-type.yaml:8:17: connections[0].allow_kill: expected a boolean (true/false), "
      "got 'yes please'",
      "bad-wrong-type.yaml:9:20: connections[0].max_in_flight: expected an integer from 1 to "
      "100000, got 'many'",
      "bad-wrong-type.yaml:11:16: connections[0].poll.backoff: expected a number from 1.0 to "
      "10.0, got a list"}},
    {"bad-out-of-range.yaml",
     {"bad-out-of-range.yaml:5:18: daemon.lease_seconds: 0 is out of range: expected an "
      "integer from 1 to 86400",
      "bad-out-of-range.yaml:10:22: connections[0].retain_log_days: 3651 is out of range: "
      "expected an integer from 1 to 3650",
      "bad-out-of-range.yaml:12:16: connections[0].poll.backoff: 0.5 is out of range: expected "
      "a number from 1.0 to 10.0",
      "bad-out-of-range.yaml:14:17: connections[0].start_retry.attempts: 101 is out of range: "
      "expected an integer from 1 to 100"}},
    {"bad-missing-required.yaml",
     {"bad-missing-required.yaml:1:1: database.conninfo: required key is missing",
      "bad-missing-required.yaml:1:1: key_file: required key is missing",
      "bad-missing-required.yaml:3:5: connections[0].url: required key is missing",
      "bad-missing-required.yaml:3:5: connections[0].batch_user: required key is missing"}},
    {"bad-duplicate-key.yaml",
     {"bad-duplicate-key.yaml:4:1: key_file: duplicate key (first given on line 3)",
      "bad-duplicate-key.yaml:9:5: connections[0].url: duplicate key (first given on line 7)"}},
    {"bad-duplicate-name.yaml",
     {"bad-duplicate-name.yaml:13:11: connections[2].name: duplicate connection name "
      "'AMTDEMO' (first used on line 5)"}},
    {"bad-url.yaml",
     {"bad-url.yaml:6:10: connections[0].url: 'ftp://batch:42000' is not an http:// or "
      "https:// URL",
      "bad-url.yaml:9:10: connections[1].url: 'http://' has no host",
      "bad-url.yaml:12:10: connections[2].url: 'http://***@batch:42000' must not "
      "contain a user name or password",
      "bad-url.yaml:15:10: connections[3].url: 'http://batch:99999' has an invalid port "
      "(expected 1 to 65535)",
      "bad-url.yaml:18:10: connections[4].url: 'batch:42000' is not an http:// or https:// "
      "URL"}},
    {"bad-proxy.yaml",
     {"bad-proxy.yaml:8:12: connections[0].proxy: 'socks5://proxy:1080' is not an http:// or "
      "https:// URL",
      "bad-proxy.yaml:12:12: connections[1].proxy: 'http://***@proxy:3128' must not "
      "contain a user name or password",
      "bad-proxy.yaml:16:12: connections[2].proxy: 'proxy:3128' is not an http:// or https:// "
      "URL"}},
    {"bad-empty-connections.yaml",
     {"bad-empty-connections.yaml:4:14: connections: expected a non-empty list of "
      "connections, got an empty list"}},
    {"bad-null-connections.yaml",
     {"bad-null-connections.yaml:4:13: connections: expected a non-empty list of "
      "connections, got an empty value"}},
    {"bad-syntax.yaml",
     {"bad-syntax.yaml:4:1: YAML syntax error: while scanning a quoted scalar found "
      "unexpected end of stream"}},
    {"bad-syntax-indent.yaml",
     {"bad-syntax-indent.yaml:3:2: YAML syntax error: while parsing a block mapping did not "
      "find expected key"}},
    {"bad-duration.yaml",
     {"bad-duration.yaml:9:22: connections[0].poll.initial_delay: -5s is out of range: "
      "expected a duration from 0s to 1h",
      "bad-duration.yaml:10:17: connections[0].poll.interval: 0 is out of range: expected a "
      "duration from 10ms to 1h",
      "bad-duration.yaml:11:21: connections[0].poll.max_interval: expected a duration, "
      "a number of seconds (5, 0.5) or a number with a unit ms, s, m or h (500ms, 10s, 2m, "
      "1h), got 'soon'",
      "bad-duration.yaml:13:14: connections[0].start_retry.delay: 0.0001 is not a whole "
      "number of milliseconds",
      "bad-duration.yaml:15:16: connections[0].http.timeout: 2h is out of range: expected a "
      "duration from 10ms to 1h",
      "bad-duration.yaml:16:24: connections[0].http.connect_timeout: expected a duration, "
      "a number of seconds (5, 0.5) or a number with a unit ms, s, m or h (500ms, 10s, 2m, "
      "1h), got '5 s'"}},
    {"bad-structure.yaml",
     {"bad-structure.yaml:1:11: database: expected a mapping (key: value), got a scalar",
      "bad-structure.yaml:2:11: key_file: expected a file path, got a list",
      "bad-structure.yaml:4:3: daemon: expected a mapping (key: value), got a list",
      "bad-structure.yaml:6:5: connections[0]: expected a mapping (key: value), got a scalar",
      "bad-structure.yaml:10:11: connections[1].poll: expected a mapping (key: value), got a "
      "scalar",
      "bad-structure.yaml:13:9: connections[1].tls.verify: expected a boolean (true/false), "
      "got a mapping"}},
    {"bad-empty-file.yaml",
     {"bad-empty-file.yaml: the file is empty: expected a mapping with database, key_file "
      "and connections"}},
    {"bad-comment-only.yaml",
     {"bad-comment-only.yaml: the file is empty: expected a mapping with database, key_file "
      "and connections"}},
    {"bad-top-list.yaml",
     {"bad-top-list.yaml:1:1: expected a mapping (key: value) at the top level, got a list"}},
    {"bad-cross.yaml",
     {"bad-cross.yaml:9:7: connections[0].poll.max_interval: 1m (the default) is less than "
      "poll.interval (2m)",
      "bad-cross.yaml:12:18: connections[0].start_retry.max_delay: 10s is less than "
      "start_retry.delay (1m)"}},
    {"bad-renew.yaml",
     {"bad-renew.yaml:6:19: daemon.renew_interval: 2s is not less than daemon.lease_seconds "
      "(2 s): the leases would expire between renewals"}},
    {"bad-ca-file.yaml",
     {"bad-ca-file.yaml:9:16: connections[0].tls.ca_file: cannot read '@DIR@/missing.pem': "
      "No such file or directory"}},
    {"bad-strings.yaml",
     {"bad-strings.yaml:2:13: database.conninfo: invalid libpq connection string: missing "
      "\"=\" after \"host\" in connection info string",
      "bad-strings.yaml:3:11: key_file: expected a file path, got an empty string",
      "bad-strings.yaml:4:12: log_level: expected one of error, warn, info, debug, got "
      "'verbose'",
      "bad-strings.yaml:6:7: daemon.id: must not contain control characters",
      "bad-strings.yaml:8:11: connections[0].name: expected a name of 1 to 64 characters A-Z "
      "a-z 0-9 _ . -, got 'AMT DEMO'",
      "bad-strings.yaml:10:17: connections[0].batch_user: expected a string of 1 to 128 "
      "characters, got an empty string",
      "bad-strings.yaml:11:11: connections[1].name: expected a name of 1 to 64 characters A-Z "
      "a-z 0-9 _ . -, got an empty string",
      "bad-strings.yaml:13:16: connections[1].batch_user: expected a string of 1 to 128 "
      "characters, got an empty value",
      "bad-strings.yaml:14:11: connections[2].name: longer than 64 characters"}},
    /* several independent mistakes in one file: all reported, in file order */
    {"bad-many.yaml",
     {"bad-many.yaml:2:1: key_file: required key is missing",
      "bad-many.yaml:4:12: log_level: expected one of error, warn, info, debug, got 'loud'",
      "bad-many.yaml:6:18: daemon.lease_seconds: expected an integer from 1 to 86400, got "
      "'thirty'",
      "bad-many.yaml:9:10: connections[0].url: 'ftp://batch:42000' is not an http:// or "
      "https:// URL",
      "bad-many.yaml:11:17: connections[0].allow_kill: expected a boolean (true/false), got "
      "'yes please'",
      "bad-many.yaml:12:5: connections[0].pol: unknown key (did you mean 'poll'?)",
      "bad-many.yaml:14:11: connections[1].name: duplicate connection name 'AMTDEMO' (first "
      "used on line 8)",
      "bad-many.yaml:17:22: connections[1].retain_log_days: 0 is out of range: expected an "
      "integer from 1 to 3650"}},
};

static void check_errors(const char *label, const struct config_errors *errs,
                         const char *const *want, size_t nwant)
{
    size_t got = config_errors_count(errs);
    for (size_t i = 0; i < got || i < nwant; i++) {
        const char *g = config_errors_get(errs, i);
        char *w = i < nwant ? expand(want[i]) : NULL;
        if (!g || !w || strcmp(g, w) != 0) {
            fprintf(stderr, "%s: error %zu\n  got:  %s\n  want: %s\n", label, i,
                    g ? g : "(none)", w ? w : "(none)");
            config_errors_print(errs, stderr);
            free(w);
            fail();
        }
        free(w);
    }
}

static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        const struct bad_file *b = &bad_files[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", DATA, b->file);
        const char *full[10];
        char buf[10][512];
        size_t n = 0;
        for (; n < 10 && b->errors[n]; n++) {
            snprintf(buf[n], sizeof buf[n], "%s/%s", DATA, b->errors[n]);
            full[n] = buf[n];
        }
        struct config_errors *errs = (struct config_errors *)1;
        const struct amtacs_config *cfg = config_load(path, &errs);
        assert_null(cfg);
        assert_non_null(errs);
        check_errors(b->file, errs, full, n);
        config_errors_free(errs);

        /* errs may be NULL: still NULL, nothing leaks */
        assert_null(config_load(path, NULL));
    }
}

static void test_unreadable_file(void **state)
{
    (void)state;
    struct config_errors *errs;
    assert_null(config_load(DATA "/no-such-file.yaml", &errs));
    const char *want1[] = {DATA "/no-such-file.yaml: cannot open: No such file or directory"};
    check_errors("missing", errs, want1, 1);
    config_errors_free(errs);

    assert_null(config_load(DATA, &errs));
    const char *want2[] = {DATA ": cannot read: Is a directory"};
    check_errors("directory", errs, want2, 1);
    config_errors_free(errs);
}

static void test_errors_print(void **state)
{
    (void)state;
    struct config_errors *errs;
    assert_null(config_load(DATA "/bad-cross.yaml", &errs));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    config_errors_print(errs, mem);
    fclose(mem);
    char *want = expand("@DIR@/bad-cross.yaml:9:7: connections[0].poll.max_interval: 1m (the "
                        "default) is less than poll.interval (2m)\n@DIR@/bad-cross.yaml:12:18: "
                        "connections[0].start_retry.max_delay: 10s is less than "
                        "start_retry.delay (1m)\n");
    assert_string_equal(text, want);
    assert_null(config_errors_get(errs, 2));
    free(want);
    free(text);
    config_errors_free(errs);
}

/* ---- one connection's url / key, inline ---- */

struct url_case {
    const char *url;
    const char *error; /* NULL: accepted */
    bool https;
};

static const struct url_case url_cases[] = {
    {"http://batch:42000", NULL, false},
    {"https://batch.example.com", NULL, true},
    {"HTTPS://Batch.Example.COM:443/", NULL, true},
    {"http://10.1.29.5:9001/amt/opcon", NULL, false},
    {"https://[::1]:8443", NULL, true},
    {"http://batch:1", NULL, false},
    {"http://batch:65535", NULL, false},
    {"ftp://batch", "'ftp://batch' is not an http:// or https:// URL", false},
    {"batch:42000", "'batch:42000' is not an http:// or https:// URL", false},
    {"http:/batch", "'http:/batch' is not an http:// or https:// URL", false},
    {"http://", "'http://' has no host", false},
    {"http://:80", "'http://:80' has no host", false},
    {"http:///path", "'http:///path' has no host", false},
    {"http://batch:0", "'http://batch:0' has an invalid port (expected 1 to 65535)", false},
    {"http://batch:", "'http://batch:' has an invalid port (expected 1 to 65535)", false},
    {"http://batch:80x", "'http://batch:80x' has an invalid port (expected 1 to 65535)", false},
    {"http://batch:0000080", "'http://batch:0000080' has an invalid port (expected 1 to 65535)",
     false},
    {"http://u@batch", "'http://*@batch' must not contain a user name or password", false},
    /* the refused password is not repeated in the error */
    {"http://opcon:s3cret@batch:8080/x",
     "'http://***@batch:8080/x' must not contain a user name or password", false},
    {"https://a:b@c@batch", "'https://***@batch' must not contain a user name or password",
     false},
    {"http://batch/x?a=1", "'http://batch/x?a=1' must not have a query or fragment", false},
    {"http://batch#top", "'http://batch#top' must not have a query or fragment", false},
    {"http://bat ch", "'http://bat ch' contains spaces or control characters", false},
    {"http://bat!ch", "'http://bat!ch' has an invalid host", false},
    {"http://[::1", "'http://[::1' has an invalid IPv6 address", false},
    {"http://[]:80", "'http://[]:80' has an invalid IPv6 address", false},
};

static void test_urls(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof url_cases / sizeof url_cases[0]; i++) {
        const struct url_case *u = &url_cases[i];
        char text[512];
        int n = snprintf(text, sizeof text,
                         "database: {conninfo: 'dbname=x'}\nkey_file: /k\nconnections:\n"
                         "  - name: A\n    batch_user: u\n    url: \"%s\"\n",
                         u->url);
        struct config_errors *errs;
        const struct amtacs_config *cfg = config_load_string("t", text, (size_t)n, &errs);
        if (!u->error) {
            if (!cfg)
                config_errors_print(errs, stderr);
            assert_non_null(cfg);
            assert_string_equal(cfg->connections[0].url, u->url);
            assert_int_equal(cfg->connections[0].https, u->https);
            config_free(cfg);
            continue;
        }
        assert_null(cfg);
        char want[512];
        snprintf(want, sizeof want, "t:6:10: connections[0].url: %s", u->error);
        const char *w = want;
        check_errors(u->url, errs, &w, 1);
        config_errors_free(errs);
    }
}

/* A minimal configuration with the given conninfo, loaded. */
static const struct amtacs_config *load_conninfo(const char *conninfo,
                                                 struct config_errors **errs)
{
    char text[512];
    int n = snprintf(text, sizeof text,
                     "database: {conninfo: \"%s\"}\nkey_file: /k\nconnections:\n"
                     "  - name: A\n    batch_user: u\n    url: \"http://h:1\"\n",
                     conninfo);
    assert_true(n > 0 && (size_t)n < sizeof text);
    return config_load_string("t", text, (size_t)n, errs);
}

/* A conninfo URI whose %XX escapes decode to bytes that are not UTF-8 is
 * refused (found by fuzz_config: the dump could not be loaded again). */
static void test_conninfo_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *conninfo, *error;
    } cases[] = {
        {"postgresql://u@db/amtacs?sslmode=v%eafy", "the value of sslmode is not valid UTF-8"},
        {"postgresql://u:s%ff3cret@db/amtacs", "the value of password is not valid UTF-8"},
        {"postgresql://u%01x@db/amtacs", "the value of user contains control characters"},
        {"postgresql://u@db/caf%c3%a9", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config_errors *errs = NULL;
        const struct amtacs_config *cfg = load_conninfo(cases[i].conninfo, &errs);
        if (!cases[i].error) {
            assert_non_null(cfg);
            assert_string_equal(cfg->database.conninfo, cases[i].conninfo);
            config_free(cfg);
            continue;
        }
        assert_null(cfg);
        char want[256];
        snprintf(want, sizeof want, "t:1:22: database.conninfo: %s (after %%-decoding)",
                 cases[i].error);
        const char *w = want;
        check_errors(cases[i].conninfo, errs, &w, 1);
        config_errors_free(errs);
    }
}

/* ---- durations ---- */

struct duration_case {
    const char *text;
    enum duration_rc rc;
    int64_t ms;
};

static const struct duration_case duration_cases[] = {
    {"0", DURATION_OK, 0},
    {"5", DURATION_OK, 5000},
    {"0.5", DURATION_OK, 500},
    {"0.1", DURATION_OK, 100},
    {"0.001", DURATION_OK, 1},
    {"1.25", DURATION_OK, 1250},
    {"2.50000000000", DURATION_OK, 2500},
    {"500ms", DURATION_OK, 500},
    {"0ms", DURATION_OK, 0},
    {"10s", DURATION_OK, 10000},
    {"1.5s", DURATION_OK, 1500},
    {"2m", DURATION_OK, 120000},
    {"0.5m", DURATION_OK, 30000},
    {"1h", DURATION_OK, 3600000},
    {"1.5h", DURATION_OK, 5400000},
    {"0.0001h", DURATION_OK, 360},
    {"007s", DURATION_OK, 7000},
    {"9223372036854775807ms", DURATION_OK, INT64_MAX},
    {"9223372036854775808ms", DURATION_TOOBIG, 0},
    {"9223372036854775s", DURATION_OK, INT64_C(9223372036854775000)},
    {"9223372036854776s", DURATION_TOOBIG, 0},
    {"9223372036854775.808s", DURATION_TOOBIG, 0},
    {"2562047788015h", DURATION_OK, INT64_C(9223372036854000000)},
    {"2562047788016h", DURATION_TOOBIG, 0},
    {"99999999999999999999999", DURATION_TOOBIG, 0},
    {"-5", DURATION_NEGATIVE, 0},
    {"-5s", DURATION_NEGATIVE, 0},
    {"-0.5h", DURATION_NEGATIVE, 0},
    {"0.0005", DURATION_FRACTION, 0},
    {"1.5ms", DURATION_FRACTION, 0},
    {"0.00001m", DURATION_FRACTION, 0},
    {"0.000000001h", DURATION_FRACTION, 0},
    {"", DURATION_SYNTAX, 0},
    {"s", DURATION_SYNTAX, 0},
    {"ms", DURATION_SYNTAX, 0},
    {"soon", DURATION_SYNTAX, 0},
    {"5 s", DURATION_SYNTAX, 0},
    {" 5s", DURATION_SYNTAX, 0},
    {"5s ", DURATION_SYNTAX, 0},
    {"5S", DURATION_SYNTAX, 0},
    {"5sec", DURATION_SYNTAX, 0},
    {"5d", DURATION_SYNTAX, 0},
    {"1m30s", DURATION_SYNTAX, 0},
    {".5", DURATION_SYNTAX, 0},
    {"5.", DURATION_SYNTAX, 0},
    {"5.s", DURATION_SYNTAX, 0},
    {"+5", DURATION_SYNTAX, 0},
    {"--5", DURATION_SYNTAX, 0},
    {"-", DURATION_SYNTAX, 0},
    {"1e3", DURATION_SYNTAX, 0},
    {"0x10", DURATION_SYNTAX, 0},
    {"inf", DURATION_SYNTAX, 0},
    {"nan", DURATION_SYNTAX, 0},
    {"1,5", DURATION_SYNTAX, 0},
};

static void test_duration_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof duration_cases / sizeof duration_cases[0]; i++) {
        const struct duration_case *d = &duration_cases[i];
        int64_t ms = -42;
        enum duration_rc rc = duration_parse(d->text, &ms);
        if (rc != d->rc || ms != (d->rc == DURATION_OK ? d->ms : -42))
            fail_msg("'%s': rc %d ms %lld, want rc %d ms %lld", d->text, (int)rc,
                     (long long)ms, (int)d->rc, (long long)d->ms);
    }
    int64_t ms = -42;
    assert_int_equal(duration_parse(NULL, &ms), DURATION_SYNTAX);
    assert_true(ms == -42);
}

static void test_duration_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "0s"},           {1, "1ms"},        {999, "999ms"},      {1000, "1s"},
        {1500, "1500ms"},    {59000, "59s"},    {60000, "1m"},       {90000, "90s"},
        {3600000, "1h"},     {5400000, "90m"},  {86400000, "24h"},   {3601000, "3601s"},
        {INT64_MAX, "9223372036854775807ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[DURATION_FMT_LEN];
        assert_string_equal(duration_format(cases[i].ms, buf, sizeof buf), cases[i].text);
        int64_t back = -1;
        assert_int_equal(duration_parse(buf, &back), DURATION_OK);
        assert_true(back == cases[i].ms);
    }
}

/* ---- dump ---- */

static char *dump_to_string(const struct amtacs_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    assert_true(config_dump(cfg, mem));
    fclose(mem);
    return text;
}

/* The dump lists every key and loads back to the same configuration. */
static void test_dump_round_trip(void **state)
{
    (void)state;
    const char *files[] = {EXAMPLE, DATA "/good-all.yaml"};
    for (size_t f = 0; f < 2; f++) {
        const struct amtacs_config *cfg = must_load(files[f]);
        char *a = dump_to_string(cfg);
        struct config_errors *errs;
        const struct amtacs_config *again =
            config_load_string(cfg->source, a, strlen(a), &errs);
        if (!again) {
            fputs(a, stderr);
            config_errors_print(errs, stderr);
        }
        assert_non_null(again);
        char *b = dump_to_string(again);
        assert_string_equal(a, b);
        free(a);
        free(b);
        config_free(again);
        config_free(cfg);
    }

    const struct amtacs_config *cfg = must_load(EXAMPLE);
    char *text = dump_to_string(cfg);
    static const char *const lines[] = {
        "\nlog_level: info\n",
        "\ndaemon:\n  id: \"\"\n  lease_seconds: 30\n  renew_interval: 0s\n  claim_batch: 100\n",
        "\n  - name: \"AMTTEST\"\n    url: \"http://10.1.29.5:9001\"\n"
        "    batch_user: \"OPCONTEST\"\n    retain_log_days: 30\n    allow_kill: false\n"
        "    max_in_flight: 100\n    failover_after: 1m\n    poll:\n      initial_delay: 10s\n      interval: 5s\n"
        "      backoff: 1.0\n      max_interval: 1m\n    start_retry:\n      attempts: 5\n"
        "      delay: 1s\n      backoff: 2.0\n      max_delay: 30s\n    http:\n"
        "      connect_timeout: 10s\n      timeout: 30s\n      max_body: 1048576\n"
        "      max_connections: 8\n"
        "    tls:\n      verify: true\n      ca_file: ~\n    proxy: ~\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(text, lines[i]))
            fail_msg("dump lacks:\n%s\nin:\n%s", lines[i], text);
    free(text);
    config_free(cfg);
}

/* Characters that YAML reads as a line break (NEL, LS, PS) or refuses raw
 * (C1 controls, U+FFFE) can only come in escaped; the dump must escape them
 * too, or they come back as a space or not at all (found by fuzz_config). */
static void test_dump_escapes_yaml_breaks(void **state)
{
    (void)state;
    static const char text[] =
        "database: {conninfo: \"host=db password=p application_name='a\\Nb'\"}\n"
        "key_file: \"/k\\L\"\n"
        "daemon: {id: \"a\\NB\\LC\\PD\\x80E\\x9FG\\uFEFFH\\uFFFEI\\u00A0J\"}\n"
        "connections:\n  - {name: A, url: 'http://h:1', batch_user: \"u\\N\"}\n";
    struct config_errors *errs;
    const struct amtacs_config *cfg = config_load_string("t", text, sizeof text - 1, &errs);
    if (!cfg)
        config_errors_print(errs, stderr);
    assert_non_null(cfg);
    assert_string_equal(cfg->daemon.id, "a\xc2\x85" "B\xe2\x80\xa8" "C\xe2\x80\xa9" "D\xc2\x80"
                                        "E\xc2\x9f" "G\xef\xbb\xbf" "H\xef\xbf\xbe" "I\xc2\xa0J");
    char *a = dump_to_string(cfg);
    const struct amtacs_config *again = config_load_string("t", a, strlen(a), &errs);
    if (!again) {
        fputs(a, stderr);
        config_errors_print(errs, stderr);
    }
    assert_non_null(again);
    assert_string_equal(again->daemon.id, cfg->daemon.id);
    assert_string_equal(again->key_file, cfg->key_file);
    assert_string_equal(again->connections[0].batch_user, "u\xc2\x85");
    assert_non_null(strstr(again->database.conninfo, "application_name='a\xc2\x85" "b'"));
    /* a no-break space is printable: written as it is */
    assert_non_null(strstr(a, "I\xc2\xa0J"));
    char *b = dump_to_string(again);
    assert_string_equal(a, b);
    free(a);
    free(b);
    config_free(again);
    config_free(cfg);
}

static void test_dump_hides_password(void **state)
{
    (void)state;
    static const struct {
        const char *conninfo;
        const char *shown;
    } cases[] = {
        {"host=db user=acs password=s3cret dbname=amtacs",
         "conninfo: \"user='acs' password='********' dbname='amtacs' host='db'\""},
        {"postgresql://acs:s3cret@db:5433/amtacs",
         "conninfo: \"user='acs' password='********' dbname='amtacs' host='db' port='5433'\""},
        {"host=db password", NULL}, /* invalid: reported, nothing dumped */
        {"host=db dbname=amtacs", "conninfo: \"host=db dbname=amtacs\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config_errors *errs;
        const struct amtacs_config *cfg = load_conninfo(cases[i].conninfo, &errs);
        if (!cases[i].shown) {
            assert_null(cfg);
            assert_int_equal(config_errors_count(errs), 1);
            assert_null(strstr(config_errors_get(errs, 0), "s3cret"));
            config_errors_free(errs);
            continue;
        }
        assert_non_null(cfg);
        char *d = dump_to_string(cfg);
        assert_null(strstr(d, "s3cret"));
        if (!strstr(d, cases[i].shown))
            fail_msg("want %s in:\n%s", cases[i].shown, d);
        free(d);
        config_free(cfg);
    }
}

/* docs/configuration.md carries the table write() makes. */
static void doc_carries(bool (*write)(FILE *out), const char *what)
{
    char *ref = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&ref, &len);
    assert_non_null(mem);
    assert_true(write(mem));
    fclose(mem);

    FILE *f = fopen(AMTACS_SOURCE_DIR "/docs/configuration.md", "r");
    assert_non_null(f);
    char *doc = NULL;
    size_t cap = 0;
    ssize_t got = getdelim(&doc, &cap, '\0', f);
    fclose(f);
    assert_true(got > 0);
    if (!strstr(doc, ref))
        fail_msg("docs/configuration.md is out of date; its %s table must read:\n%s", what, ref);
    free(doc);
    free(ref);
}

static void test_reference_matches_docs(void **state)
{
    (void)state;
    doc_carries(config_write_reference, "key");
    doc_carries(config_write_types, "value type");
}

/* Every type a key has is described in that table. */
static void test_types_described(void **state)
{
    (void)state;
    char *ref = NULL;
    size_t len = 0, n;
    FILE *mem = open_memstream(&ref, &len);
    assert_non_null(mem);
    assert_true(config_write_types(mem));
    fclose(mem);
    const struct config_key *keys = config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char row[64];
        snprintf(row, sizeof row, "\n| %s | ", config_key_type_name(keys[i].type));
        if (!strstr(ref, row))
            fail_msg("%s: its type is not in the value types table", keys[i].path);
    }
    free(ref);
}

static void test_table_is_sound(void **state)
{
    (void)state;
    size_t n;
    const struct config_key *keys = config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &keys[i];
        assert_non_null(k->help);
        assert_true(k->min <= k->max || k->max == 0);
        assert_string_not_equal(config_key_type_name(k->type), "?");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(keys[j].path, k->path);
    }
    assert_string_equal(config_log_level_name(CONFIG_LOG_WARN), "warn");
    assert_string_equal(config_log_level_name((enum config_log_level)42), "?");
}

static void test_free_null(void **state)
{
    (void)state;
    config_free(NULL);
    config_errors_free(NULL);
    assert_int_equal(config_errors_count(NULL), 0);
    assert_null(config_errors_get(NULL, 0));
}

/* What a SIGHUP may change, and what takes a restart. */
static const struct amtacs_config *load_text(const char *text)
{
    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load_string("t.yaml", text, strlen(text), &errs);
    if (!cfg)
        config_errors_print(errs, stderr);
    assert_non_null(cfg);
    return cfg;
}

static void test_reload_rules(void **state)
{
    (void)state;
    const char *base = "database: {conninfo: \"dbname=a\"}\nkey_file: k\n"
                       "connections:\n  - {name: A, url: \"http://h:1\", batch_user: u}\n";
    const struct amtacs_config *a = load_text(base);
    const char *changed[8];
    assert_int_equal(config_restart_keys(a, a, changed, 8), 0);

    /* Connections, limits, poll timing, log level: a reload applies them. */
    const struct amtacs_config *b = load_text(
        "database: {conninfo: \"dbname=a\"}\nkey_file: k\nlog_level: debug\n"
        "daemon: {lease_seconds: 9}\n"
        "connections:\n  - {name: A, url: \"http://h:2\", batch_user: v, max_in_flight: 3,"
        " poll: {interval: 1s}}\n  - {name: B, url: \"http://h:1\", batch_user: u}\n");
    assert_int_equal(config_restart_keys(a, b, changed, 8), 0);
    assert_false(config_connection_same(&a->connections[0], &b->connections[0], NULL));
    assert_false(config_connection_same(&a->connections[0], &b->connections[0], "url"));
    assert_false(config_connection_same(&a->connections[0], &b->connections[0], "poll."));
    assert_true(config_connection_same(&a->connections[0], &b->connections[0], "http."));
    assert_true(config_connection_same(&a->connections[0], &b->connections[0], "tls."));
    assert_true(config_connection_same(&a->connections[0], &b->connections[1], "url"));

    /* The database, the key, the owner name and the HTTP endpoint take a restart. */
    const struct amtacs_config *c = load_text(
        "database: {conninfo: \"dbname=b\"}\nkey_file: other\n"
        "daemon: {id: x}\nhttp: {listen: \"127.0.0.1:1\"}\n"
        "connections:\n  - {name: A, url: \"http://h:1\", batch_user: u}\n");
    size_t n = config_restart_keys(a, c, changed, 8);
    assert_int_equal(n, 4);
    assert_string_equal(changed[0], "database.conninfo");
    assert_string_equal(changed[1], "key_file");
    assert_string_equal(changed[2], "daemon.id");
    assert_string_equal(changed[3], "http.listen");
    assert_int_equal(config_restart_keys(a, c, changed, 2), 4); /* counted past max */
    config_free(a);
    config_free(b);
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads_with_defaults),
        cmocka_unit_test(test_example_covers_every_key),
        cmocka_unit_test(test_defaults_match_table),
        cmocka_unit_test(test_bounds_from_table),
        cmocka_unit_test(test_every_key_parses),
        cmocka_unit_test(test_find_connection),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_errors_print),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_conninfo_utf8),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_dump_escapes_yaml_breaks),
        cmocka_unit_test(test_dump_hides_password),
        cmocka_unit_test(test_reference_matches_docs),
        cmocka_unit_test(test_types_described),
        cmocka_unit_test(test_table_is_sound),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_reload_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
