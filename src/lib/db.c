#include "amtacs/db.h"

#include "amtacs/migrations.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Type OIDs of the parameters we send (fixed in every PostgreSQL). */
#define OID_BYTEA 17
#define OID_INT4 23
#define OID_TEXT 25

/* The oldest server the schema is written for. */
#define DB_MIN_SERVER_VERSION 130000

/* The advisory lock that serialises migration runs: "amtacs" in ASCII. */
#define DB_MIGRATE_LOCK "107122731869043"

/* Created before the first migration, under the lock, if it is missing. */
static const char bootstrap_sql[] =
    "CREATE SCHEMA IF NOT EXISTS acs;"
    "CREATE TABLE acs.schema_migrations ("
    "  version    integer     PRIMARY KEY,"
    "  name       text        NOT NULL,"
    "  checksum   text        NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now(),"
    "  applied_by text        NOT NULL DEFAULT session_user);"
    "COMMENT ON TABLE acs.schema_migrations IS"
    "  'Applied amtacs migrations (sql/NNNN_*.sql); checksum is the SHA-256 of the file';";

/* Hands the schema and everything in it to DB_SCHEMA_OWNER, in the migration's
 * own transaction, so that no SECURITY DEFINER function runs as whoever ran
 * migrate (often a superuser) even for an instant. The owner is a role with
 * no login and no attribute: a function tricked into acting as its owner can
 * do what the schema's owner can, and nothing outside acs. A migrator that is
 * not a superuser must be able to create roles (the acs_* roles need that
 * anyway) and own the database: it is made a member of the owner so that it
 * can create in acs, and the owner holds CREATE on the database only for the
 * one ALTER SCHEMA that requires it. */
static const char handover_sql[] =
    "DO $handover$\n"
    "DECLARE\n"
    "    su boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);\n"
    "    o record;\n"
    "BEGIN\n"
    "    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '" DB_SCHEMA_OWNER "') THEN\n"
    "        CREATE ROLE " DB_SCHEMA_OWNER " NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE\n"
    "            NOREPLICATION NOBYPASSRLS;\n"
    "        COMMENT ON ROLE " DB_SCHEMA_OWNER " IS\n"
    "            'amtacs: owns schema acs; its SECURITY DEFINER functions run as this role';\n"
    "    END IF;\n"
    "    IF NOT su AND NOT pg_catalog.pg_has_role('" DB_SCHEMA_OWNER "', 'MEMBER') THEN\n"
    "        EXECUTE pg_catalog.format('GRANT " DB_SCHEMA_OWNER " TO %I', current_user);\n"
    "    END IF;\n"
    "    IF (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'acs')\n"
    "       <> '" DB_SCHEMA_OWNER "'::regrole THEN\n"
    "        IF NOT su THEN\n"
    "            EXECUTE pg_catalog.format('GRANT CREATE ON DATABASE %I TO " DB_SCHEMA_OWNER "',\n"
    "                                      current_database());\n"
    "        END IF;\n"
    "        ALTER SCHEMA acs OWNER TO " DB_SCHEMA_OWNER ";\n"
    "        IF NOT su THEN\n"
    "            EXECUTE pg_catalog.format('REVOKE CREATE ON DATABASE %I FROM " DB_SCHEMA_OWNER "',\n"
    "                                      current_database());\n"
    "        END IF;\n"
    "    END IF;\n"
    /* sequences owned by a column follow their table; views and tables take ALTER TABLE */
    "    FOR o IN SELECT c.oid::regclass AS name, c.relkind FROM pg_catalog.pg_class AS c\n"
    "              WHERE c.relnamespace = 'acs'::regnamespace\n"
    "                AND c.relowner <> '" DB_SCHEMA_OWNER "'::regrole\n"
    "                AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')\n"
    "                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend AS d\n"
    "                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid\n"
    "                                   AND d.deptype IN ('a', 'i') AND c.relkind = 'S')\n"
    "    LOOP\n"
    "        EXECUTE pg_catalog.format('ALTER %s %s OWNER TO " DB_SCHEMA_OWNER "',\n"
    "            CASE o.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'\n"
    "                           WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'\n"
    "                           ELSE 'TABLE' END, o.name);\n"
    "    END LOOP;\n"
    "    FOR o IN SELECT p.oid::regprocedure AS name FROM pg_catalog.pg_proc AS p\n"
    "              WHERE p.pronamespace = 'acs'::regnamespace\n"
    "                AND p.proowner <> '" DB_SCHEMA_OWNER "'::regrole\n"
    "    LOOP\n"
    "        EXECUTE pg_catalog.format('ALTER ROUTINE %s OWNER TO " DB_SCHEMA_OWNER "', o.name);\n"
    "    END LOOP;\n"
    /* composite types of tables follow their table; array types follow their element */
    "    FOR o IN SELECT t.oid::regtype AS name FROM pg_catalog.pg_type AS t\n"
    "              WHERE t.typnamespace = 'acs'::regnamespace\n"
    "                AND t.typowner <> '" DB_SCHEMA_OWNER "'::regrole\n"
    "                AND t.typtype IN ('e', 'd', 'r', 'm')\n"
    "    LOOP\n"
    "        EXECUTE pg_catalog.format('ALTER TYPE %s OWNER TO " DB_SCHEMA_OWNER "', o.name);\n"
    "    END LOOP;\n"
    "END\n"
    "$handover$";

/* Writes a formatted one-line message into err. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
                                                          const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies src into dst (size n) as one line: newlines and tabs become spaces,
 * runs of spaces collapse, and the ends are trimmed. */
static void one_line(char *dst, size_t n, const char *src)
{
    size_t o = 0;
    bool space = false;
    if (n == 0)
        return;
    for (const char *p = src ? src : ""; *p && o + 1 < n; p++) {
        if (isspace((unsigned char)*p)) {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < n)
            dst[o++] = ' ';
        space = false;
        dst[o++] = *p;
    }
    dst[o] = '\0';
}

/* The primary message of a failed result (or of the connection), one line. */
static void pg_error(char *dst, size_t n, const PGconn *conn, const PGresult *res)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    one_line(dst, n, msg ? msg : PQerrorMessage(conn));
    if (dst[0] == '\0')
        one_line(dst, n, "unknown error (connection lost?)");
}

/* Runs a statement without parameters; 0 if it returned status want. */
static int exec_simple(PGconn *conn, const char *sql, ExecStatusType want, const char *what,
                       char *err, size_t errlen)
{
    char msg[512];
    int rc = -1;
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != want) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "%s: %s", what, msg);
        goto cleanup;
    }
    rc = 0;
cleanup:
    PQclear(res);
    return rc;
}

/* Rolls back the open transaction, if any; errors are of no further interest. */
static void rollback(PGconn *conn)
{
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* Replaces every occurrence of secret in s (in place) by "***". */
static void redact(char *s, size_t cap, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0;
    if (slen == 0)
        return;
    char *p;
    while ((p = strstr(s, secret)) != NULL) {
        size_t tail = strlen(p + slen);
        if (slen >= 3) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + slen, tail + 1);
        } else if ((size_t)(p - s) + 3 + tail + 1 <= cap) {
            memmove(p + 3, p + slen, tail + 1);
            memcpy(p, "***", 3);
        } else {
            memmove(p, p + slen, tail + 1);
        }
    }
}

PGconn *db_connect(const char *conninfo, char *err, size_t errlen)
{
    char *perr = NULL;
    char *password = NULL;
    char msg[1024];
    PGconn *conn = NULL;
    PQconninfoOption *opts = NULL;

    if (!conninfo)
        conninfo = "";
    opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        /* libpq quotes pieces of a malformed string: never echo one that may hold a password. */
        if (contains_ci(conninfo, "password") || strchr(conninfo, '@'))
            set_err(err, errlen, "invalid connection string (details withheld: it may contain a password)");
        else {
            one_line(msg, sizeof msg, perr ? perr : "cannot parse it");
            set_err(err, errlen, "invalid connection string: %s", msg);
        }
        goto cleanup;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0]) {
            password = strdup(o->val);
            if (!password) {
                set_err(err, errlen, "out of memory");
                goto cleanup;
            }
        }
    }

    const char *const keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
    const char *const vals[] = {conninfo, DB_APPLICATION_NAME, "UTF8", NULL};
    conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        set_err(err, errlen, "cannot connect to PostgreSQL: out of memory");
        goto cleanup;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        one_line(msg, sizeof msg, PQerrorMessage(conn));
        redact(msg, sizeof msg, password);
        set_err(err, errlen, "cannot connect to PostgreSQL: %s", msg);
        PQfinish(conn);
        conn = NULL;
        goto cleanup;
    }
    if (PQserverVersion(conn) < DB_MIN_SERVER_VERSION) {
        set_err(err, errlen, "PostgreSQL %d or newer is required; the server is %d.%d",
                DB_MIN_SERVER_VERSION / 10000, PQserverVersion(conn) / 10000,
                PQserverVersion(conn) % 10000);
        PQfinish(conn);
        conn = NULL;
        goto cleanup;
    }
cleanup:
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    PQconninfoFree(opts);
    PQfreemem(perr);
    return conn;
}

int db_latest_version(void)
{
    return amtacs_migrations_count ? amtacs_migrations[amtacs_migrations_count - 1].version : 0;
}

/* The function files this build embeds as acs.schema_state() lists them
 * ("name sha256hex" a line, in name order), malloc()ed; NULL if out of memory. */
static char *embedded_functions(void)
{
    size_t cap = 1;
    for (size_t i = 0; i < amtacs_function_files_count; i++)
        cap += strlen(amtacs_function_files[i].name) + 1 + 2 * crypto_hash_sha256_BYTES + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < amtacs_function_files_count; i++) {
        const struct amtacs_function_file *f = &amtacs_function_files[i];
        unsigned char h[crypto_hash_sha256_BYTES];
        char hex[2 * crypto_hash_sha256_BYTES + 1];
        crypto_hash_sha256(h, (const unsigned char *)f->sql, strlen(f->sql));
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        n += (size_t)snprintf(out + n, cap - n, "%s%s %s", i ? "\n" : "", f->name, hex);
    }
    return out;
}

int db_schema_check(const char *conninfo, const char *set_role, const char *program, char *err,
                    size_t errlen)
{
    char msg[512];
    int rc = -1;
    char *want = NULL;
    PGresult *res = NULL;
    const int need = db_latest_version();
    PGconn *conn = db_connect(conninfo, err, errlen);
    if (!conn)
        return -1;
    if (set_role) {
        const char *p[1] = {set_role};
        res = PQexecParams(conn, "SELECT pg_catalog.set_config('role', $1, false)", 1, NULL, p,
                           NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            pg_error(msg, sizeof msg, conn, res);
            set_err(err, errlen, "cannot take role %s: %s", set_role, msg);
            goto cleanup;
        }
        PQclear(res);
    }
    res = PQexec(conn, "SELECT to_regnamespace('acs') IS NOT NULL,"
                       "       to_regprocedure('acs.schema_state()') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "cannot read the schema version: %s", msg);
        goto cleanup;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        set_err(err, errlen,
                "the database has no schema acs (version 0); this %s needs version %d: run "
                "amtacsctl migrate (or amtacsctl setup on a new database)",
                program, need);
        rc = 1;
        goto cleanup;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        set_err(err, errlen,
                "the database schema is older than this %s knows (it lacks acs.schema_state()); "
                "this %s needs version %d: run amtacsctl migrate",
                program, program, need);
        rc = 1;
        goto cleanup;
    }
    PQclear(res);
    res = PQexec(conn, "SELECT version, coalesce(functions, '') FROM acs.schema_state()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "cannot read the schema version: %s", msg);
        goto cleanup;
    }
    int found = atoi(PQgetvalue(res, 0, 0));
    if (found < need) {
        set_err(err, errlen,
                "the database schema is at version %d; this %s needs version %d: run "
                "amtacsctl migrate",
                found, program, need);
        rc = 1;
        goto cleanup;
    }
    if (found > need) {
        set_err(err, errlen,
                "the database schema is at version %d, newer than this %s knows (version %d): "
                "install the amtacs release that migrated it (its amtacsctl migrate made "
                "version %d), then start its %s",
                found, program, need, found, program);
        rc = 1;
        goto cleanup;
    }
    if (!(want = embedded_functions())) {
        set_err(err, errlen, "out of memory");
        goto cleanup;
    }
    if (strcmp(PQgetvalue(res, 0, 1), want) != 0) {
        set_err(err, errlen,
                "the database schema is at version %d, but its functions are not this %s's "
                "(sql/functions/ differ): run amtacsctl migrate of this release",
                found, program);
        rc = 1;
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(want);
    PQclear(res);
    PQfinish(conn);
    return rc;
}

/* The embedded migration with this version, or NULL. */
static const struct amtacs_migration *find_migration(int version)
{
    for (size_t i = 0; i < amtacs_migrations_count; i++)
        if (amtacs_migrations[i].version == version)
            return &amtacs_migrations[i];
    return NULL;
}

/* Whether the table acs.schema_migrations exists (into *exists). 0 or -1. */
static int have_migrations_table(PGconn *conn, bool *exists, char *err, size_t errlen)
{
    char msg[512];
    int rc = -1;
    PGresult *res = PQexec(conn, "SELECT to_regclass('acs.schema_migrations') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "cannot read the schema version: %s", msg);
        goto cleanup;
    }
    *exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    rc = 0;
cleanup:
    PQclear(res);
    return rc;
}

int db_schema_version(PGconn *conn, int *version, char *err, size_t errlen)
{
    char msg[512];
    bool exists = false;
    int rc = -1;
    PGresult *res = NULL;

    *version = 0;
    if (have_migrations_table(conn, &exists, err, errlen) != 0)
        goto cleanup;
    if (!exists) {
        rc = 0;
        goto cleanup;
    }
    res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM acs.schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "cannot read the schema version: %s", msg);
        goto cleanup;
    }
    *version = atoi(PQgetvalue(res, 0, 0));
    rc = 0;
cleanup:
    PQclear(res);
    return rc;
}

/* The SHA-256 (hex) of a migration's text, computed by the server into out[65]. */
static int migration_checksum(PGconn *conn, const struct amtacs_migration *m, char out[65],
                              char *err, size_t errlen)
{
    char msg[512];
    int rc = -1;
    const Oid types[1] = {OID_BYTEA};
    const char *vals[1] = {m->sql};
    const int lens[1] = {(int)strlen(m->sql)};
    const int fmts[1] = {1};
    PGresult *res = PQexecParams(conn, "SELECT encode(sha256($1), 'hex')", 1, types, vals, lens,
                                 fmts, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        PQgetlength(res, 0, 0) != 64) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "cannot compute the checksum of %s: %s", m->name, msg);
        goto cleanup;
    }
    memcpy(out, PQgetvalue(res, 0, 0), 65);
    rc = 0;
cleanup:
    PQclear(res);
    return rc;
}

/* Opens a migration transaction: READ COMMITTED, no timeouts, quiet, the
 * advisory lock held, and acs.schema_migrations present. 0 or -1 (rolled back). */
static int begin_locked(PGconn *conn, char *err, size_t errlen)
{
    bool exists = false;
    if (exec_simple(conn,
                    "BEGIN ISOLATION LEVEL READ COMMITTED;"
                    "SET LOCAL statement_timeout = 0;"
                    "SET LOCAL lock_timeout = 0;"
                    "SET LOCAL idle_in_transaction_session_timeout = 0;"
                    "SET LOCAL client_min_messages = warning;"
                    "SET LOCAL search_path = pg_catalog, acs;"
                    "SELECT pg_advisory_xact_lock(" DB_MIGRATE_LOCK ")",
                    PGRES_TUPLES_OK, "cannot start the migration", err, errlen) != 0)
        goto fail;
    if (have_migrations_table(conn, &exists, err, errlen) != 0)
        goto fail;
    if (!exists && exec_simple(conn, bootstrap_sql, PGRES_COMMAND_OK,
                               "cannot create acs.schema_migrations", err, errlen) != 0)
        goto fail;
    return 0;
fail:
    rollback(conn);
    return -1;
}

/*
 * Checks the recorded migrations against the embedded ones and finds the next
 * to apply (*next = index into amtacs_migrations, or -1 when up to date);
 * *version receives the recorded version. 0 or -1.
 */
static int check_recorded(PGconn *conn, int *version, long *next, char *err, size_t errlen)
{
    char msg[512];
    char sum[65];
    int rc = -1;
    int latest = db_latest_version();
    PGresult *res = PQexec(conn, "SELECT version, name, checksum FROM acs.schema_migrations "
                                 "ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "cannot read acs.schema_migrations: %s", msg);
        goto cleanup;
    }
    int rows = PQntuples(res);
    *version = rows ? atoi(PQgetvalue(res, rows - 1, 0)) : 0;
    if (*version > latest) {
        set_err(err, errlen,
                "the database schema is at version %d, newer than this build of amtacs knows "
                "(latest %d); use the amtacs release that migrated it, or a newer one",
                *version, latest);
        goto cleanup;
    }
    for (int i = 0; i < rows; i++) {
        int v = atoi(PQgetvalue(res, i, 0));
        const char *name = PQgetvalue(res, i, 1);
        const char *recorded = PQgetvalue(res, i, 2);
        const struct amtacs_migration *m = find_migration(v);
        if (!m) {
            set_err(err, errlen,
                    "acs.schema_migrations records version %d (%s), which this build of amtacs "
                    "does not contain; use the amtacs release that applied it",
                    v, name);
            goto cleanup;
        }
        if (migration_checksum(conn, m, sum, err, errlen) != 0)
            goto cleanup;
        if (strcmp(sum, recorded) != 0) {
            set_err(err, errlen,
                    "migration %s (version %d) has changed since it was applied: the database "
                    "records checksum %.12s..., this build has %.12s...; applied migrations must "
                    "never be edited (restore the file and put the change in a new migration)",
                    m->name, v, recorded, sum);
            goto cleanup;
        }
    }
    *next = -1;
    for (size_t k = 0, i = 0; k < amtacs_migrations_count; k++) {
        while (i < (size_t)rows && atoi(PQgetvalue(res, (int)i, 0)) < amtacs_migrations[k].version)
            i++;
        if (i < (size_t)rows && atoi(PQgetvalue(res, (int)i, 0)) == amtacs_migrations[k].version)
            continue;
        if (amtacs_migrations[k].version < *version) {
            set_err(err, errlen,
                    "migration %s (version %d) is not applied, but the database is already at "
                    "version %d; migrations cannot be applied out of order",
                    amtacs_migrations[k].name, amtacs_migrations[k].version, *version);
            goto cleanup;
        }
        *next = (long)k;
        break;
    }
    rc = 0;
cleanup:
    PQclear(res);
    return rc;
}

/* The 1-based line of a 1-based character position in text (UTF-8). */
static int line_of(const char *text, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        if (++chars >= pos)
            break;
        if (*p == '\n')
            line++;
    }
    return line;
}

/* Runs one migration's SQL and records it; the transaction is open. 0 or -1. */
static int apply_one(PGconn *conn, const struct amtacs_migration *m, char *err, size_t errlen)
{
    char msg[512];
    char ver[16];
    int rc = -1;
    PGresult *res = PQexec(conn, m->sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
        pg_error(msg, sizeof msg, conn, res);
        if (pos)
            set_err(err, errlen, "migration %s failed at line %d: %s", m->name,
                    line_of(m->sql, strtol(pos, NULL, 10)), msg);
        else
            set_err(err, errlen, "migration %s failed: %s", m->name, msg);
        goto cleanup;
    }
    PQclear(res);

    snprintf(ver, sizeof ver, "%d", m->version);
    const Oid types[3] = {OID_INT4, OID_TEXT, OID_BYTEA};
    const char *vals[3] = {ver, m->name, m->sql};
    const int lens[3] = {0, 0, (int)strlen(m->sql)};
    const int fmts[3] = {0, 0, 1};
    res = PQexecParams(conn,
                       "INSERT INTO acs.schema_migrations (version, name, checksum) "
                       "VALUES ($1, $2, encode(sha256($3), 'hex'))",
                       3, types, vals, lens, fmts, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen, "cannot record migration %s: %s", m->name, msg);
        goto cleanup;
    }
    rc = 0;
cleanup:
    PQclear(res);
    return rc;
}

/* The owner's rights are what every SECURITY DEFINER function can do: say so
 * when someone gave it more than it was made with. */
static void warn_owner(PGconn *conn, FILE *report)
{
    PGresult *res = PQexec(conn,
                           "SELECT concat_ws(', ',"
                           "  CASE WHEN r.rolsuper THEN 'SUPERUSER' END,"
                           "  CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,"
                           "  CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,"
                           "  CASE WHEN r.rolcanlogin THEN 'LOGIN' END,"
                           "  CASE WHEN r.rolreplication THEN 'REPLICATION' END,"
                           "  CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END,"
                           "  (SELECT 'member of ' || string_agg(g.rolname, ' ')"
                           "     FROM pg_catalog.pg_auth_members AS m"
                           "     JOIN pg_catalog.pg_roles AS g ON g.oid = m.roleid"
                           "    WHERE m.member = r.oid))"
                           "  FROM pg_catalog.pg_roles AS r WHERE r.rolname = '" DB_SCHEMA_OWNER "'");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        *PQgetvalue(res, 0, 0)) {
        fprintf(report,
                "warning: role " DB_SCHEMA_OWNER " has %s; every SECURITY DEFINER function of "
                "schema acs runs with that (remove it: ALTER ROLE / REVOKE)\n",
                PQgetvalue(res, 0, 0));
        fflush(report);
    }
    PQclear(res);
}

/* Runs handover_sql in the open migration transaction. 0 or -1. */
static int hand_over(PGconn *conn, char *err, size_t errlen)
{
    char msg[512];
    PGresult *res = PQexec(conn, handover_sql);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_error(msg, sizeof msg, conn, res);
        set_err(err, errlen,
                "cannot hand schema acs to its owner role " DB_SCHEMA_OWNER
                " (migrate needs a superuser, or a role with CREATEROLE that owns the "
                "database): %s",
                msg);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* Checks that the embedded migrations are usable: versions positive and
 * increasing, and at least one function file. */
static int check_embedded(char *err, size_t errlen)
{
    for (size_t i = 0; i < amtacs_migrations_count; i++) {
        const struct amtacs_migration *m = &amtacs_migrations[i];
        if (m->version <= 0 || (i > 0 && m->version <= amtacs_migrations[i - 1].version)) {
            set_err(err, errlen,
                    "this build embeds a bad migration list: %s has version %d (versions must "
                    "be positive and strictly increasing)",
                    m->name, m->version);
            return -1;
        }
    }
    if (amtacs_function_files_count == 0) {
        set_err(err, errlen, "this build embeds no function file (sql/functions/*.sql)");
        return -1;
    }
    return 0;
}

/*
 * Whether acs.schema_functions records exactly the embedded function files,
 * each with its checksum (into *current). A database without the table (a
 * migration that creates it is pending) is not current. 0 or -1.
 */
static int functions_current(PGconn *conn, bool *current, char *err, size_t errlen)
{
    char msg[512];
    char count[32];
    int rc = -1;
    PGresult *res = PQexec(conn, "SELECT to_regclass('acs.schema_functions') IS NOT NULL");
    *current = false;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        goto failed;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rc = 0;
        goto cleanup;
    }
    PQclear(res);
    res = PQexec(conn, "SELECT count(*) FROM acs.schema_functions");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        goto failed;
    snprintf(count, sizeof count, "%zu", amtacs_function_files_count);
    if (strcmp(PQgetvalue(res, 0, 0), count) != 0) {
        rc = 0;
        goto cleanup;
    }
    for (size_t i = 0; i < amtacs_function_files_count; i++) {
        const struct amtacs_function_file *f = &amtacs_function_files[i];
        const Oid types[2] = {OID_TEXT, OID_BYTEA};
        const char *vals[2] = {f->name, f->sql};
        const int lens[2] = {0, (int)strlen(f->sql)};
        const int fmts[2] = {0, 1};
        PQclear(res);
        res = PQexecParams(conn,
                           "SELECT EXISTS (SELECT 1 FROM acs.schema_functions "
                           "WHERE name = $1 AND checksum = encode(sha256($2), 'hex'))",
                           2, types, vals, lens, fmts, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
            goto failed;
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
            rc = 0;
            goto cleanup;
        }
    }
    *current = true;
    rc = 0;
    goto cleanup;
failed:
    pg_error(msg, sizeof msg, conn, res);
    set_err(err, errlen, "cannot read acs.schema_functions: %s", msg);
cleanup:
    PQclear(res);
    return rc;
}

/* Runs every function file, in name order, and records them in
 * acs.schema_functions (replacing what it held); the transaction is open.
 * 0 or -1. */
static int apply_functions(PGconn *conn, char *err, size_t errlen)
{
    char msg[512];
    int rc = -1;
    PGresult *res = NULL;
    for (size_t i = 0; i < amtacs_function_files_count; i++) {
        const struct amtacs_function_file *f = &amtacs_function_files[i];
        res = PQexec(conn, f->sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
            pg_error(msg, sizeof msg, conn, res);
            if (pos)
                set_err(err, errlen, "function file %s failed at line %d: %s", f->name,
                        line_of(f->sql, strtol(pos, NULL, 10)), msg);
            else
                set_err(err, errlen, "function file %s failed: %s", f->name, msg);
            goto cleanup;
        }
        PQclear(res);
        res = NULL;
    }
    if (exec_simple(conn, "DELETE FROM acs.schema_functions", PGRES_COMMAND_OK,
                    "cannot record the function files", err, errlen) != 0)
        goto cleanup;
    for (size_t i = 0; i < amtacs_function_files_count; i++) {
        const struct amtacs_function_file *f = &amtacs_function_files[i];
        const Oid types[2] = {OID_TEXT, OID_BYTEA};
        const char *vals[2] = {f->name, f->sql};
        const int lens[2] = {0, (int)strlen(f->sql)};
        const int fmts[2] = {0, 1};
        res = PQexecParams(conn,
                           "INSERT INTO acs.schema_functions (name, checksum) "
                           "VALUES ($1, encode(sha256($2), 'hex'))",
                           2, types, vals, lens, fmts, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            pg_error(msg, sizeof msg, conn, res);
            set_err(err, errlen, "cannot record function file %s: %s", f->name, msg);
            goto cleanup;
        }
        PQclear(res);
        res = NULL;
    }
    rc = 0;
cleanup:
    PQclear(res);
    return rc;
}

/*
 * One transaction: every pending migration in version order, then, when a
 * migration was applied or a function file differs from what the database
 * records, every function file (the versioned files of a fresh install or an
 * upgrade replay old function bodies; the function files supersede them).
 * Nothing is visible to others until it all commits, and a failure anywhere
 * leaves the database as it was.
 */
int db_migrate(PGconn *conn, FILE *report, char *err, size_t errlen)
{
    int applied = 0;
    int version = 0;
    long next = -1;
    bool current = false;

    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        set_err(err, errlen, "not connected to PostgreSQL");
        return -1;
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        set_err(err, errlen, "db_migrate needs a connection that is not inside a transaction");
        return -1;
    }
    if (check_embedded(err, errlen) != 0)
        return -1;

    if (begin_locked(conn, err, errlen) != 0)
        goto fail;
    if (check_recorded(conn, &version, &next, err, errlen) != 0)
        goto fail;
    /* First, so that a migrator that is not a superuser is a member of the
     * owner (it must be, to replace the owner's functions) or is told at once
     * what it lacks; a schema migrated before the owner role existed is handed
     * over here too. What the run creates is handed over at its end. */
    if (hand_over(conn, err, errlen) != 0)
        goto fail;
    for (long k = next; k >= 0 && (size_t)k < amtacs_migrations_count; k++) {
        if (apply_one(conn, &amtacs_migrations[k], err, errlen) != 0)
            goto fail;
        applied++;
        version = amtacs_migrations[k].version;
    }
    if (applied == 0 && functions_current(conn, &current, err, errlen) != 0)
        goto fail;
    if (!current && apply_functions(conn, err, errlen) != 0)
        goto fail;
    if ((applied > 0 || !current) && hand_over(conn, err, errlen) != 0)
        goto fail;
    if (exec_simple(conn, "COMMIT", PGRES_COMMAND_OK, "cannot commit", err, errlen) != 0)
        goto fail;

    if (report) {
        for (long k = next; applied > 0 && k < next + applied; k++)
            fprintf(report, "applied migration %s (version %d)\n", amtacs_migrations[k].name,
                    amtacs_migrations[k].version);
        for (size_t i = 0; !current && i < amtacs_function_files_count; i++)
            fprintf(report, "applied %s\n", amtacs_function_files[i].name);
        warn_owner(conn, report);
        if (applied > 0)
            fprintf(report, "schema is now at version %d (%d migration%s applied)\n", version,
                    applied, applied == 1 ? "" : "s");
        else if (!current)
            fprintf(report, "schema is at version %d; its functions are now current\n", version);
        else
            fprintf(report, "schema is up to date at version %d\n", version);
        fflush(report);
    }
    return 0;
fail:
    rollback(conn);
    return -1;
}
