/* amtacsctl comm / purge / alerts / group: what admins and operators do to connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "amtacs/ctl.h"
#include "amtacs/db.h"
#include "amtacs/jobspec.h"

static int comm_status(struct ctl *ctl, bool json)
{
    PGconn *conn = ctl_connect(ctl, "comm status");
    if (!conn)
        return 1;
    PGresult *r = ctl_exec(conn, "comm status",
                           "SELECT name, comm_state, server_ok, "
                           "to_char(server_checked_at, 'YYYY-MM-DD HH24:MI:SS') AS server_checked_at, "
                           "to_char(last_contact, 'YYYY-MM-DD HH24:MI:SS') AS last_contact, "
                           "last_error, to_char(last_error_at, 'YYYY-MM-DD HH24:MI:SS') AS last_error_at, "
                           "amt_version, url, batch_user, allow_kill, retain_log_days, queued, "
                           "in_flight, in_doubt FROM acs.connection_status ORDER BY name",
                           0, NULL);
    int rc = 1;
    if (r && json) {
        ctl_print_json(r, true);
        rc = 0;
    } else if (r) {
        printf("%-12s %-9s %-11s %-19s %6s %9s %8s  %s\n", "CONNECTION", "COMM", "SERVER",
               "LAST CONTACT", "QUEUED", "IN FLIGHT", "IN DOUBT", "LAST ERROR");
        for (int i = 0; i < PQntuples(r); i++) {
            const char *ok = PQgetisnull(r, i, 2)             ? "unchecked"
                             : !strcmp(PQgetvalue(r, i, 2), "t") ? "answers"
                                                                 : "no answer";
            ctl_print_line(stdout, "%-12s %-9s %-11s %-19s %6s %9s %8s  %s%s%s%s",
                           PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), ok,
                           PQgetisnull(r, i, 4) ? "never" : PQgetvalue(r, i, 4),
                           PQgetvalue(r, i, 12), PQgetvalue(r, i, 13), PQgetvalue(r, i, 14),
                           PQgetisnull(r, i, 5) ? "-" : PQgetvalue(r, i, 5),
                           PQgetisnull(r, i, 6) ? "" : " (",
                           PQgetisnull(r, i, 6) ? "" : PQgetvalue(r, i, 6),
                           PQgetisnull(r, i, 6) ? "" : ")");
        }
        rc = 0;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int ctl_cmd_comm(struct ctl *ctl, int argc, char **argv)
{
    static const struct {
        const char *verb, *state, *said;
    } verbs[] = {
        {"enable", "enabled", "Full Comm enabled: jobs start"},
        {"limit", "limited", "limited: no new starts; running jobs are followed to their end"},
        {"disable", "disabled", "disabled: nothing is sent to the server; queued jobs wait"},
    };
    if (argc >= 2 && !strcmp(argv[1], "status"))
        return comm_status(ctl, argc == 3 && !strcmp(argv[2], "--json"));
    for (size_t i = 0; argc == 3 && i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(argv[1], verbs[i].verb))
            continue;
        PGconn *conn = ctl_connect(ctl, "comm");
        if (!conn)
            return 1;
        const char *p[] = {argv[2], verbs[i].state};
        PGresult *r = ctl_exec(conn, "comm", "SELECT acs.set_comm($1, $2)", 2, p);
        int rc = 1;
        if (r) {
            printf("%s: %s (was %s)\n", argv[2], verbs[i].said, PQgetvalue(r, 0, 0));
            rc = 0;
        }
        PQclear(r);
        PQfinish(conn);
        return rc;
    }
    fprintf(stderr, "usage: amtacsctl comm enable|limit|disable CONNECTION\n"
                    "       amtacsctl comm status [--json]\n");
    return 2;
}

int ctl_cmd_purge(struct ctl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: amtacsctl purge\n"
                        "  deletes job logs older than their connection's Retain Log Files\n");
        return 2;
    }
    PGconn *conn = ctl_connect(ctl, "purge");
    if (!conn)
        return 1;
    long total = 0;
    int rc = 0;
    for (;;) {
        PGresult *r = ctl_exec(conn, "purge", "SELECT acs.purge_job_logs(1000)", 0, NULL);
        if (!r) {
            rc = 1;
            break;
        }
        long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        total += n;
        if (n < 1000)
            break;
    }
    if (!rc)
        printf("%ld job log(s) past their retention deleted\n", total);
    PQfinish(conn);
    return rc;
}

int ctl_cmd_alerts(struct ctl *ctl, int argc, char **argv)
{
    bool all = false, json = false;
    const char *ack = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all"))
            all = true;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "ack") && i + 1 < argc)
            ack = argv[++i];
        else {
            fprintf(stderr, "usage: amtacsctl alerts [--all] [--json]\n"
                            "       amtacsctl alerts ack ID\n");
            return 2;
        }
    }
    PGconn *conn = ctl_connect(ctl, "alerts");
    if (!conn)
        return 1;
    int rc = 1;
    if (ack) {
        const char *p[] = {ack};
        PGresult *r = ctl_exec(conn, "alerts", "SELECT acs.acknowledge_alert($1::bigint)", 1, p);
        if (r) {
            printf("alert %s %s\n", ack,
                   !strcmp(PQgetvalue(r, 0, 0), "t") ? "acknowledged" : "was acknowledged before");
            rc = 0;
        }
        PQclear(r);
        PQfinish(conn);
        return rc;
    }
    const char *p[] = {all ? "t" : "f"};
    PGresult *r = ctl_exec(conn, "alerts",
                           "SELECT id, to_char(raised_at, 'YYYY-MM-DD HH24:MI:SS') AS raised_at, "
                           "connection, job_id, code, name, message, "
                           "to_char(acknowledged_at, 'YYYY-MM-DD HH24:MI:SS') AS acknowledged_at, "
                           "acknowledged_by FROM acs.alerts "
                           "WHERE $1::boolean OR acknowledged_at IS NULL ORDER BY id",
                           1, p);
    if (r && json) {
        ctl_print_json(r, true);
        rc = 0;
    } else if (r) {
        printf("%-6s %-19s %-12s %-7s %-22s %s\n", "ID", "RAISED", "CONNECTION", "JOB", "ALERT",
               "MESSAGE");
        for (int i = 0; i < PQntuples(r); i++)
            ctl_print_line(stdout, "%-6s %-19s %-12s %-7s %-22s %s%s", PQgetvalue(r, i, 0),
                           PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                           PQgetvalue(r, i, 5), PQgetvalue(r, i, 6),
                           PQgetisnull(r, i, 7) ? "" : " [acknowledged]");
        rc = 0;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

static int group_list(struct ctl *ctl, bool json)
{
    PGconn *conn = ctl_connect(ctl, "group list");
    if (!conn)
        return 1;
    PGresult *r = ctl_exec(conn, "group list", DB_GROUPS_SQL, 0, NULL);
    int rc = 1;
    cJSON *groups = r ? cJSON_Parse(PQgetvalue(r, 0, 0)) : NULL;
    if (r && json) {
        ctl_print_text(stdout, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), TEXT_ESC_JSON);
        putchar('\n');
        rc = 0;
    } else if (groups) {
        printf("%-16s %10s  %s\n", "GROUP", "UNFINISHED", "CONNECTIONS (in order)");
        const cJSON *g, *m;
        cJSON_ArrayForEach(g, groups) {
            char members[4096] = "";
            size_t len = 0;
            cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(g, "connections")) {
                int n = snprintf(members + len, sizeof members - len, "%s%s", len ? " " : "",
                                 cJSON_GetStringValue(m) ? cJSON_GetStringValue(m) : "");
                if (n < 0 || (size_t)n >= sizeof members - len)
                    break;
                len += (size_t)n;
            }
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(g, "name"));
            ctl_print_line(stdout, "%-16s %10.0f  %s", name ? name : "",
                           cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(g, "unfinished_jobs")),
                           members);
        }
        rc = 0;
    }
    cJSON_Delete(groups);
    PQclear(r);
    PQfinish(conn);
    return rc;
}

/* group set NAME CONN...: acs.group_set checks the names and the rights. */
static int group_set(struct ctl *ctl, int argc, char **argv)
{
    char *members = jobspec_array_literal((const char *const *)argv + 3, (size_t)argc - 3);
    PGconn *conn = members ? ctl_connect(ctl, "group set") : NULL;
    int rc = 1;
    if (conn) {
        const char *p[] = {argv[2], members};
        PGresult *r = ctl_exec(conn, "group set", "SELECT acs.group_set($1, $2::text[])", 2, p);
        if (r) {
            ctl_print_line(stdout, "group %s %s", argv[2], PQgetvalue(r, 0, 0));
            rc = 0;
        }
        PQclear(r);
    }
    PQfinish(conn);
    free(members);
    return rc;
}

static int group_delete(struct ctl *ctl, const char *name)
{
    PGconn *conn = ctl_connect(ctl, "group delete");
    if (!conn)
        return 1;
    const char *p[] = {name};
    PGresult *r = ctl_exec(conn, "group delete", "SELECT acs.group_delete($1)", 1, p);
    int rc = 1;
    if (r && !strcmp(PQgetvalue(r, 0, 0), "t")) {
        ctl_print_line(stdout, "group %s deleted", name);
        rc = 0;
    } else if (r) {
        ctl_print_line(stderr, "amtacsctl group delete: no group %s", name);
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int ctl_cmd_group(struct ctl *ctl, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "list") &&
        (argc == 2 || (argc == 3 && !strcmp(argv[2], "--json"))))
        return group_list(ctl, argc == 3);
    if (argc >= 4 && !strcmp(argv[1], "set"))
        return group_set(ctl, argc, argv);
    if (argc == 3 && !strcmp(argv[1], "delete"))
        return group_delete(ctl, argv[2]);
    if (argc == 3 && !strcmp(argv[1], "set"))
        fprintf(stderr, "amtacsctl group set: name the group's connections after its name\n");
    fprintf(stderr, "usage: amtacsctl group set NAME CONNECTION...\n"
                    "       amtacsctl group list [--json]\n"
                    "       amtacsctl group delete NAME\n");
    return 2;
}
