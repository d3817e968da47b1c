/* amtacsctl setup: a server's first setup in one command, and a no-op the
 * second time.
 *
 * Everything it needs is checked before anything is changed: the database
 * rights of the login (a superuser, or CREATEROLE and the database's owner,
 * which is what migrate needs to hand schema acs to acs_owner), the system
 * user that will own the secret key, the directories it writes, and the first
 * console admin's password. The roles themselves are the migrations' (the
 * acs_* group roles, acs_owner): setup adds only the two login roles the
 * configuration names and their memberships. */
#define _DEFAULT_SOURCE /* fchown */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "amtacs/config.h"
#include "amtacs/ctl.h"
#include "amtacs/db.h"
#include "amtacs/vault.h"
#include "amtacs/webauth.h"

#define SETUP_CONFIG "/etc/amtacs/amtacs.yaml"
#define SETUP_OWNER "amtacs"
#define SETUP_WEB_ROLE "amtacs_web"
#define SETUP_ADMIN "admin"
#define SETUP_USAGE                                                                              \
    "usage: amtacsctl setup --db CONNINFO [--config FILE] [--key FILE] [--owner USER] "        \
    "[--admin NAME]"

struct setup {
    const char *conninfo; /* the admin's login: creates roles, migrates */
    const char *config;   /* the configuration file, written when missing */
    const char *key;      /* the secret key file (public key: KEY.pub) */
    const char *owner;    /* the system user the secret key belongs to */
    const char *admin;    /* the first console admin */
    char *key_buf;        /* key, when derived from the configuration's path */
    char *daemon_role;    /* the daemon's login (database.conninfo's user) */
    char *web_role;       /* amtacs-web's login (web.conninfo's user); NULL: no web */
    struct passwd pw;     /* the owner */
    bool config_exists, key_exists, need_admin;
    char hash[crypto_pwhash_STRBYTES]; /* the admin's password hash, when need_admin */
    int changes;
};

/* The user= of a conninfo, else fallback; malloc()ed, or NULL if out of memory. */
static char *conninfo_user(const char *conninfo, const char *fallback)
{
    char *user = NULL;
    PQconninfoOption *opts = conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "user") && o->val && *o->val)
            user = strdup(o->val);
    PQconninfoFree(opts);
    return user ? user : strdup(fallback);
}

/* The directory part of path, malloc()ed. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* 0 when a file can be created in path's directory, else says why. */
static int can_create(const char *what, const char *path)
{
    char *dir = dir_of(path);
    int rc = 0;
    if (!dir || access(dir, W_OK) != 0) {
        fprintf(stderr, "amtacsctl setup: cannot write %s %s: %s: %s\n", what, path,
                dir ? dir : "?", strerror(errno));
        rc = 1;
    }
    free(dir);
    return rc;
}

/* Number of UTF-8 characters. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Reads the first admin's password and keeps only its argon2id hash. */
static int read_admin_password(struct setup *s)
{
    char prompt[160];
    snprintf(prompt, sizeof prompt, "Password for the console admin %s", s->admin);
    char *pw = ctl_read_password("setup", prompt, WEBAUTH_PASSWORD_MAX_BYTES);
    if (!pw)
        return 1;
    int rc = 1;
    size_t chars = utf8_chars(pw);
    if (chars < WEBAUTH_PASSWORD_MIN_CHARS)
        fprintf(stderr, "amtacsctl setup: the password has %zu characters; at least %d are needed\n",
                chars, WEBAUTH_PASSWORD_MIN_CHARS);
    else if (crypto_pwhash_str(s->hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE))
        fprintf(stderr, "amtacsctl setup: hashing the password failed (out of memory?)\n");
    else
        rc = 0;
    sodium_free(pw);
    return rc;
}

/* One value of a query with parameters, malloc()ed; NULL after saying why. */
static char *query1(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *r = ctl_exec(conn, "setup", sql, n, params);
    char *v = NULL;
    if (r && PQntuples(r) == 1)
        v = strdup(PQgetvalue(r, 0, 0));
    else if (r)
        fprintf(stderr, "amtacsctl setup: unexpected answer to: %s\n", sql);
    PQclear(r);
    return v;
}

/* The database rights setup needs, checked before anything changes. */
static int check_rights(PGconn *conn)
{
    PGresult *r = ctl_exec(conn, "setup",
                           "SELECT r.rolsuper, r.rolcreaterole, d.datdba = r.oid,"
                           "       pg_catalog.pg_get_userbyid(d.datdba), current_user::text,"
                           "       current_database()::text"
                           "  FROM pg_catalog.pg_roles AS r, pg_catalog.pg_database AS d"
                           " WHERE r.rolname = current_user AND d.datname = current_database()",
                           0, NULL);
    if (!r)
        return 1;
    int rc = 0;
    const char *me = PQgetvalue(r, 0, 4), *db = PQgetvalue(r, 0, 5);
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        if (strcmp(PQgetvalue(r, 0, 1), "t") != 0) {
            fprintf(stderr,
                    "amtacsctl setup: missing right: role %s has no CREATEROLE (setup creates the "
                    "roles acs_owner, the acs_* group roles and the daemon's and web server's "
                    "logins); run it as a superuser, or ALTER ROLE %s CREATEROLE\n",
                    me, me);
            rc = 1;
        }
        if (strcmp(PQgetvalue(r, 0, 2), "t") != 0) {
            fprintf(stderr,
                    "amtacsctl setup: missing right: role %s does not own database %s (its owner "
                    "is %s; handing schema acs to acs_owner needs the owner); run it as a "
                    "superuser, or ALTER DATABASE %s OWNER TO %s\n",
                    me, db, PQgetvalue(r, 0, 3), db, me);
            rc = 1;
        }
    }
    PQclear(r);
    return rc;
}

/* A login role the configuration names must not be an existing role that
 * cannot log in (the example's acs_daemon, a group role, for one). */
static int check_login(PGconn *conn, const char *role, const char *key)
{
    const char *p[] = {role};
    char *v = query1(conn,
                     "SELECT coalesce((SELECT rolcanlogin::text FROM pg_catalog.pg_roles"
                     " WHERE rolname = $1), 'none')",
                     1, p);
    int rc = v ? 0 : 1;
    if (v && !strcmp(v, "false")) {
        fprintf(stderr,
                "amtacsctl setup: %s logs in as %s, a role that cannot log in (a group role?); "
                "name a login there (user=%s), and setup makes it\n",
                key, role, !strcmp(key, "web.conninfo") ? SETUP_WEB_ROLE : SETUP_OWNER);
        rc = 1;
    }
    free(v);
    return rc;
}

/* Whether the first console admin is still to be made. */
static int check_admin(PGconn *conn, struct setup *s)
{
    char *v = query1(conn, "SELECT to_regclass('acs.web_users') IS NOT NULL", 0, NULL);
    if (!v)
        return 1;
    s->need_admin = true;
    if (!strcmp(v, "t")) {
        const char *p[] = {s->admin};
        free(v);
        if (!(v = query1(conn, "SELECT EXISTS (SELECT 1 FROM acs.web_users WHERE name = $1)", 1,
                         p)))
            return 1;
        s->need_admin = strcmp(v, "t") != 0;
    }
    free(v);
    return 0;
}

/* Runs one statement built around a quoted identifier: "PREFIX ident SUFFIX". */
static int exec_ident(PGconn *conn, const char *prefix, const char *ident, const char *suffix)
{
    char *q = PQescapeIdentifier(conn, ident, strlen(ident));
    if (!q) {
        fprintf(stderr, "amtacsctl setup: %s", PQerrorMessage(conn));
        return 1;
    }
    size_t n = strlen(prefix) + strlen(q) + strlen(suffix) + 3;
    char *sql = malloc(n);
    int rc = 1;
    if (sql) {
        snprintf(sql, n, "%s %s %s", prefix, q, suffix);
        PGresult *r = ctl_exec(conn, "setup", sql, 0, NULL);
        rc = r ? 0 : 1;
        PQclear(r);
    }
    free(sql);
    PQfreemem(q);
    return rc;
}

/* Makes role a login that is a member of group (NOINHERIT when asked), or
 * completes an existing one. */
static int ensure_login(PGconn *conn, struct setup *s, const char *role, const char *group,
                        bool noinherit)
{
    const char *p[] = {role, group};
    PGresult *r = ctl_exec(conn, "setup",
                           "SELECT r.rolinherit, EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members"
                           " AS m WHERE m.member = r.oid AND m.roleid = $2::regrole)"
                           "  FROM pg_catalog.pg_roles AS r WHERE r.rolname = $1",
                           2, p);
    if (!r)
        return 1;
    int rc = 0;
    int before = s->changes;
    if (PQntuples(r) == 0) {
        char suffix[128];
        snprintf(suffix, sizeof suffix, "LOGIN%s IN ROLE %s", noinherit ? " NOINHERIT" : "",
                 group);
        if (!(rc = exec_ident(conn, "CREATE ROLE", role, suffix))) {
            ctl_print_line(stdout, "created login role %s%s, member of %s", role,
                           noinherit ? " (NOINHERIT)" : "", group);
            s->changes++;
        }
        goto out;
    }
    if (noinherit && !strcmp(PQgetvalue(r, 0, 0), "t")) {
        if ((rc = exec_ident(conn, "ALTER ROLE", role, "NOINHERIT")))
            goto out;
        ctl_print_line(stdout, "made login role %s NOINHERIT", role);
        s->changes++;
    }
    if (strcmp(PQgetvalue(r, 0, 1), "t") != 0) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "GRANT %s TO", group);
        if ((rc = exec_ident(conn, prefix, role, "")))
            goto out;
        ctl_print_line(stdout, "granted %s to login role %s", group, role);
        s->changes++;
    }
    if (s->changes == before)
        ctl_print_line(stdout, "login role %s: in place, member of %s", role, group);
out:
    PQclear(r);
    return rc;
}

/* Appends " key=value" to a conninfo in buf, the value quoted when needed. */
static void conninfo_add(char *buf, size_t n, const char *key, const char *val)
{
    if (!val || !*val)
        return;
    size_t len = strlen(buf);
    bool quote = strpbrk(val, " '\\") != NULL;
    len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "%s%s=%s", len ? " " : "", key,
                            quote ? "'" : "");
    for (const char *c = val; *c && len + 3 < n; c++) {
        if (*c == '\'' || *c == '\\')
            buf[len++] = '\\';
        buf[len++] = *c;
    }
    buf[len] = '\0';
    if (quote && len + 2 < n) {
        buf[len++] = '\'';
        buf[len] = '\0';
    }
}

/* Writes s as a YAML single-quoted scalar. */
static void yaml_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The starting configuration: the database the admin connected to, as the two
 * logins; the key; one connection to edit. 0640, readable by the owner's group. */
static int write_config(PGconn *conn, struct setup *s)
{
    char daemon[1024] = "", web[1024] = "";
    const char *host = PQhost(conn), *port = PQport(conn), *db = PQdb(conn);
    conninfo_add(daemon, sizeof daemon, "host", host);
    conninfo_add(daemon, sizeof daemon, "port", port);
    conninfo_add(daemon, sizeof daemon, "dbname", db);
    memcpy(web, daemon, sizeof web);
    conninfo_add(daemon, sizeof daemon, "user", s->daemon_role);
    conninfo_add(daemon, sizeof daemon, "application_name", "amtacsd");
    conninfo_add(web, sizeof web, "user", s->web_role);
    conninfo_add(web, sizeof web, "application_name", "amtacs-web");

    int fd = open(s->config, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "amtacsctl setup: cannot write %s: %s\n", s->config, strerror(errno));
        return 1;
    }
    if (geteuid() == 0 && fchown(fd, 0, s->pw.pw_gid) != 0) {
        fprintf(stderr, "amtacsctl setup: cannot give %s to group %u: %s\n", s->config,
                (unsigned)s->pw.pw_gid, strerror(errno));
        close(fd);
        return 1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return 1;
    }
    fprintf(f, "# amtacs configuration, written by amtacsctl setup. Every key, its meaning\n"
               "# and its default: amtacs.example.yaml (docs/configuration.md).\n"
               "database:\n  conninfo: ");
    yaml_quoted(f, daemon);
    fprintf(f, "\nkey_file: ");
    yaml_quoted(f, s->key);
    fprintf(f, "\nweb:\n  conninfo: ");
    yaml_quoted(f, web);
    fprintf(f, "\n# The AMT Batch Servers: make this one yours, then store its Batch User's\n"
               "# password: amtacsctl -c THIS_FILE batch-user set OPCON\n"
               "connections:\n"
               "  - name: AMTDEMO\n"
               "    url: \"https://batchserver.example.com:42000\"\n"
               "    batch_user: OPCON\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "amtacsctl setup: cannot write %s: %s\n", s->config, strerror(errno));
        return 1;
    }
    ctl_print_line(stdout, "wrote the starting configuration %s (edit its connections)", s->config);
    s->changes++;
    return 0;
}

/* Migrates; its report is printed, and counts as a change unless up to date. */
static int migrate(PGconn *conn, struct setup *s)
{
    char err[1024] = "";
    char *text = NULL;
    size_t len = 0;
    FILE *report = open_memstream(&text, &len);
    if (!report) {
        fprintf(stderr, "amtacsctl setup: out of memory\n");
        return 1;
    }
    int rc = db_migrate(conn, report, err, sizeof err);
    fclose(report);
    if (rc) {
        fprintf(stderr, "amtacsctl setup: migrate: %s\n", err);
    } else {
        fputs(text, stdout);
        if (!strstr(text, "schema is up to date"))
            s->changes++;
    }
    free(text);
    return rc ? 1 : 0;
}

/* The key pair, the secret key the owner's alone (0600). */
static int ensure_key(struct setup *s)
{
    char err[512];
    char *pub = malloc(strlen(s->key) + 5);
    int rc = 1;
    if (!pub)
        return 1;
    sprintf(pub, "%s.pub", s->key);
    if (!s->key_exists) {
        if (vault_init() || vault_keygen(s->key, pub, err, sizeof err)) {
            fprintf(stderr, "amtacsctl setup: keygen: %s\n", vault_init() ? "libsodium" : err);
            goto out;
        }
        ctl_print_line(stdout, "made the key pair %s (secret) and %s", s->key, pub);
        s->changes++;
    }
    struct stat st;
    if (stat(s->key, &st) != 0) {
        fprintf(stderr, "amtacsctl setup: %s: %s\n", s->key, strerror(errno));
        goto out;
    }
    if (st.st_uid != s->pw.pw_uid || st.st_gid != s->pw.pw_gid) {
        if (chown(s->key, s->pw.pw_uid, s->pw.pw_gid) != 0) {
            fprintf(stderr, "amtacsctl setup: cannot give %s to %s: %s\n", s->key, s->owner,
                    strerror(errno));
            goto out;
        }
        ctl_print_line(stdout, "gave the secret key %s to %s", s->key, s->owner);
        s->changes++;
    }
    if ((st.st_mode & 07777) != 0600) {
        if (chmod(s->key, 0600) != 0) {
            fprintf(stderr, "amtacsctl setup: chmod %s: %s\n", s->key, strerror(errno));
            goto out;
        }
        ctl_print_line(stdout, "made the secret key %s mode 0600", s->key);
        s->changes++;
    }
    rc = 0;
out:
    free(pub);
    return rc;
}

static int parse_args(struct setup *s, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char **to = !strcmp(argv[i], "--db")       ? &s->conninfo
                          : !strcmp(argv[i], "--config") ? &s->config
                          : !strcmp(argv[i], "--key")    ? &s->key
                          : !strcmp(argv[i], "--owner")  ? &s->owner
                          : !strcmp(argv[i], "--admin")  ? &s->admin
                                                         : NULL;
        if (!to || i + 1 >= argc) {
            fprintf(stderr, "amtacsctl setup: %s '%s'\n%s\n",
                    to ? "missing value after" : "unknown argument", argv[i], SETUP_USAGE);
            return 2;
        }
        *to = argv[++i];
    }
    if (!s->conninfo) {
        fprintf(stderr, "amtacsctl setup: give --db CONNINFO: a login that may create roles "
                        "(a superuser, or CREATEROLE and the database's owner)\n%s\n",
                SETUP_USAGE);
        return 2;
    }
    return 0;
}

/* What is there already, and whether everything setup needs is at hand.
 * Changes nothing. */
static int plan(struct setup *s, const struct amtacs_config *cfg)
{
    const struct passwd *pw = getpwnam(s->owner);
    if (!pw) {
        fprintf(stderr,
                "amtacsctl setup: there is no system user %s to own the secret key (the "
                "amtacs package makes it; else: useradd --system %s, or --owner USER)\n",
                s->owner, s->owner);
        return 1;
    }
    s->pw = *pw;
    if (!s->key && cfg) {
        s->key = cfg->key_file;
    } else if (!s->key) {
        char *dir = dir_of(s->config);
        if (!dir || !(s->key_buf = malloc(strlen(dir) + 12))) {
            free(dir);
            return 1;
        }
        sprintf(s->key_buf, "%s/secret.key", dir);
        free(dir);
        s->key = s->key_buf;
    }
    s->daemon_role = conninfo_user(cfg ? cfg->database.conninfo : NULL, s->owner);
    if (!cfg || cfg->web.conninfo)
        s->web_role = conninfo_user(cfg ? cfg->web.conninfo : NULL, SETUP_WEB_ROLE);
    if (!s->daemon_role || (!s->web_role && (!cfg || cfg->web.conninfo)))
        return 1;
    struct stat st;
    s->key_exists = stat(s->key, &st) == 0;
    int rc = 0;
    if (!s->config_exists)
        rc |= can_create("the configuration", s->config);
    if (!s->key_exists)
        rc |= can_create("the secret key", s->key);
    bool chown_needed = !s->key_exists || st.st_uid != pw->pw_uid || st.st_gid != pw->pw_gid;
    if (chown_needed && geteuid() != 0 && geteuid() != pw->pw_uid) {
        fprintf(stderr,
                "amtacsctl setup: missing right: giving the secret key %s to %s needs root "
                "(run setup as root, or --owner %s)\n",
                s->key, s->owner, getpwuid(geteuid()) ? getpwuid(geteuid())->pw_name : "YOU");
        rc = 1;
    }
    return rc;
}

static void next_steps(const struct setup *s)
{
    printf("\nNext steps:\n"
           "  1. Make the connections in %s yours, and store each Batch User's password:\n"
           "       amtacsctl -c %s batch-user set NAME\n"
           "  2. PostgreSQL must let the system user %s log in as %s%s%s (pg_hba.conf,\n"
           "     pg_ident.conf: peer authentication with a map, or a password in ~/.pgpass).\n"
           "  3. systemctl enable --now amtacsd amtacs-web\n"
           "  4. Open the console (web.listen; http://127.0.0.1:9480/ by default) and log in\n"
           "     as %s.\n",
           s->config, s->config, s->owner, s->daemon_role, s->web_role ? " and " : "",
           s->web_role ? s->web_role : "", s->admin);
}

int ctl_cmd_setup(struct ctl *ctl, int argc, char **argv)
{
    struct setup s = {.conninfo = ctl->conninfo,
                      .config = ctl->config_path ? ctl->config_path : SETUP_CONFIG,
                      .owner = SETUP_OWNER,
                      .admin = SETUP_ADMIN};
    const struct amtacs_config *cfg = NULL;
    PGconn *conn = NULL;
    int rc = parse_args(&s, argc, argv);
    if (rc)
        return rc;
    rc = 1;
    if (sodium_init() < 0) {
        fprintf(stderr, "amtacsctl setup: libsodium failed to start\n");
        return 1;
    }
    s.config_exists = access(s.config, F_OK) == 0;
    if (s.config_exists) {
        struct ctl c = {.config_path = s.config};
        if (!(cfg = ctl_config(&c)))
            goto out;
    }
    if (plan(&s, cfg))
        goto out;
    char err[1024];
    if (!(conn = db_connect(s.conninfo, err, sizeof err))) {
        fprintf(stderr, "amtacsctl setup: %s\n", err);
        goto out;
    }
    int version = 0;
    if (check_rights(conn))
        goto out;
    if (db_schema_version(conn, &version, err, sizeof err)) {
        fprintf(stderr, "amtacsctl setup: %s\n", err);
        goto out;
    }
    if (version > db_latest_version()) {
        fprintf(stderr,
                "amtacsctl setup: the database schema is at version %d, newer than this "
                "amtacsctl knows (%d): install the release that made it\n",
                version, db_latest_version());
        goto out;
    }
    if (check_login(conn, s.daemon_role, "database.conninfo") ||
        (s.web_role && check_login(conn, s.web_role, "web.conninfo")) || check_admin(conn, &s))
        goto out;
    if (s.need_admin && read_admin_password(&s))
        goto out;

    /* Everything is at hand: from here on, each step says what it changed. */
    if (!s.config_exists && write_config(conn, &s))
        goto out;
    if (migrate(conn, &s))
        goto out;
    if (ensure_login(conn, &s, s.daemon_role, "acs_daemon", false))
        goto out;
    if (s.web_role && ensure_login(conn, &s, s.web_role, "acs_web", true))
        goto out;
    if (ensure_key(&s))
        goto out;
    if (s.need_admin) {
        const char *p[] = {s.admin, "admin", s.hash};
        PGresult *r = ctl_exec(conn, "setup", "SELECT acs.web_user_add($1, $2, $3)", 3, p);
        if (!r)
            goto out;
        PQclear(r);
        ctl_print_line(stdout, "added the console user %s with role admin", s.admin);
        s.changes++;
    } else {
        ctl_print_line(stdout, "console user %s: in place", s.admin);
    }
    if (s.changes == 0) {
        printf("amtacsctl setup: nothing changed; everything was set up already\n");
    } else {
        printf("amtacsctl setup: done (%d change%s)\n", s.changes, s.changes == 1 ? "" : "s");
        next_steps(&s);
    }
    rc = 0;
out:
    sodium_memzero(s.hash, sizeof s.hash);
    PQfinish(conn);
    config_free(cfg);
    free(s.key_buf);
    free(s.daemon_role);
    free(s.web_role);
    return rc;
}
