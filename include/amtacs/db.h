/*
 * db: the PostgreSQL side of amtacs -- connecting, and the versioned schema
 * migrations of sql/ (compiled into the library, see migrations.h).
 *
 * The schema lives in the PostgreSQL schema "acs"; docs/schema.md describes it.
 * Every function writes a one-line error into err (errlen bytes, always
 * NUL-terminated when errlen > 0) and never prints anything else.
 */
#ifndef AMTACS_DB_H
#define AMTACS_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

/* The application_name amtacs connections use unless the conninfo (or
 * PGAPPNAME) names one. */
#define DB_APPLICATION_NAME "amtacs"

/* The role that owns schema acs and everything in it, so that its SECURITY
 * DEFINER functions run as this role: no login, no attributes, no rights
 * outside acs (docs/schema.md). db_migrate creates it and hands everything to
 * it in the migration's transaction. */
#define DB_SCHEMA_OWNER "acs_owner"

/* A job as one JSON document (acs.job_document, with its Integration
 * Selection after "connection": "listed", "group", "tried"). NULL for no such
 * job; $1 is its id. GET /api/v1/jobs/ID serves it and amtacsctl show --json
 * prints it: one shape for both. */
#define DB_JOB_DOCUMENT_SQL "SELECT acs.job_document($1::bigint)"

/* The connection groups as a JSON array, by name: each with its member
 * connections in order and how many unfinished jobs name it (those keep it
 * from being deleted). GET /api/v1/groups serves it as "groups" and
 * amtacsctl group list --json prints it. */
#define DB_GROUPS_SQL                                                                           \
    "WITH u AS (SELECT j.conn_group, count(*) AS n FROM acs.jobs AS j"                       \
    "            WHERE j.conn_group IS NOT NULL"                                             \
    "              AND j.state IN ('queued', 'starting', 'running', 'in_doubt')"             \
    "            GROUP BY j.conn_group)"                                                     \
    "SELECT coalesce(json_agg(json_build_object("                                            \
    "  'name', g.name,"                                                                      \
    "  'connections', ARRAY(SELECT m.connection FROM acs.connection_group_members AS m"      \
    "                        WHERE m.group_name = g.name ORDER BY m.position),"              \
    "  'unfinished_jobs', coalesce((SELECT u.n FROM u WHERE u.conn_group = g.name), 0),"     \
    "  'changed_at', g.changed_at, 'changed_by', g.changed_by) ORDER BY g.name), '[]'::json)" \
    "  FROM acs.connection_groups AS g"

/* Connects (blocking) with a libpq conninfo string or URI, in UTF-8, with
 * application_name DB_APPLICATION_NAME unless the caller sets one; NULL on
 * failure with a message in err that never contains the conninfo's password. */
PGconn *db_connect(const char *conninfo, char *err, size_t errlen);

/* Applies the pending migrations and then, if one was applied or a function
 * file changed, every function file (sql/functions/), all in one transaction
 * under an advisory lock (concurrent runs are safe); refuses a database with a
 * newer or an unknown recorded version or a changed checksum. One line per
 * applied file and a closing line go to report (may be NULL). 0 or -1. */
int db_migrate(PGconn *conn, FILE *report, char *err, size_t errlen);

/* The highest applied migration version into *version (0 for a database that
 * has never been migrated). 0 or -1. */
int db_schema_version(PGconn *conn, int *version, char *err, size_t errlen);

/* The highest migration version this build knows (0 if it embeds none). */
int db_latest_version(void);

/* Whether the schema at conninfo is the one this build knows: the same
 * migration version and the same function files (acs.schema_state()). The
 * login takes role set_role first when that is not NULL (amtacs-web's
 * NOINHERIT login: acs_web). 0 when it is; 1 when it is not, with err saying
 * which version `program` found, which it needs and the command that fixes
 * it; -1 when it could not be told (database unreachable, no right), err set. */
int db_schema_check(const char *conninfo, const char *set_role, const char *program, char *err,
                    size_t errlen);

#endif
