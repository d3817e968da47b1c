/* amtacsctl submit / show / log / wait / list: the scheduler's and operator's view of jobs. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "amtacs/config.h"
#include "amtacs/ctl.h"
#include "amtacs/db.h"
#include "amtacs/buf.h"
#include "amtacs/jobspec.h"
#include "amtacs/joblog.h"
#include "amtacs/text.h"

#include <cjson/cJSON.h>

#define MAX_VALUES JOBSPEC_MAX_ITEMS

/* Writes rows as JSON objects named by their columns: integers and booleans
 * as such, NULL as null, the rest as strings. One object, or an array. */
void ctl_print_json(const PGresult *r, bool array)
{
    cJSON *out = array ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < PQntuples(r) && (array || i == 0); i++) {
        cJSON *o = cJSON_CreateObject();
        for (int c = 0; o && c < PQnfields(r); c++) {
            const char *name = PQfname(r, c), *v = PQgetvalue(r, i, c);
            Oid t = PQftype(r, c);
            if (PQgetisnull(r, i, c))
                cJSON_AddNullToObject(o, name);
            else if (t == 20 || t == 21 || t == 23) /* int8, int2, int4 */
                cJSON_AddNumberToObject(o, name, strtod(v, NULL));
            else if (t == 16) /* bool */
                cJSON_AddBoolToObject(o, name, !strcmp(v, "t"));
            else
                cJSON_AddStringToObject(o, name, v);
        }
        if (array)
            cJSON_AddItemToArray(out, o);
        else
            out = o;
    }
    char *text = out ? cJSON_PrintUnformatted(out) : NULL;
    const char *shown = text ? text : (array ? "[]" : "null");
    ctl_print_text(stdout, shown, strlen(shown), TEXT_ESC_JSON);
    putchar('\n');
    free(text);
    cJSON_Delete(out);
}

void ctl_print_text(FILE *out, const char *s, size_t n, enum text_escape_form form)
{
    struct buf b;
    buf_init(&b, 0);
    if (!text_escape(&b, s, n, form) && b.len)
        fwrite(b.data, 1, b.len, out);
    buf_free(&b);
}

void ctl_print_line(FILE *out, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *line = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (line) {
        vsnprintf(line, (size_t)n + 1, fmt, again);
        ctl_print_text(out, line, (size_t)n, TEXT_ESC_LINE);
    }
    va_end(again);
    fputc('\n', out);
    free(line);
}

static void submit_usage(FILE *out)
{
    fprintf(out,
            "usage: amtacsctl submit batch  -C CONNECTION [-A ALTERNATE]... | -g GROUP\n"
            "                               -a APPLICATION -j JOB_NAME\n"
            "                               [-v NAME=VALUE]... [-q QUEUE] [-u AMT_USER] [-r REF]\n"
            "       amtacsctl submit script -C CONNECTION [-A ALTERNATE]... | -g GROUP\n"
            "                               -a APPLICATION -s SCRIPT_NAME\n"
            "                               [-p NAME=VALUE]... [-q QUEUE] [-u AMT_USER] [-r REF]\n"
            "Prints the new job's id. At most %d task values or script parameters.\n"
            "A job names a connection, with up to 3 alternates (--alternate, in order), or a\n"
            "connection group (--group); amtacsctl submit --help tells more.\n",
            MAX_VALUES);
}

int ctl_cmd_submit(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "batch") && strcmp(argv[1], "script"))) {
        submit_usage(stderr);
        return 2;
    }
    bool script = !strcmp(argv[1], "script");
    const char *conn_name = NULL, *app = NULL, *name = NULL, *queue = NULL, *user = NULL,
               *ref = NULL, *group = NULL;
    const char *values[MAX_VALUES + 1];
    int nvalues = 0;
    /* Every --alternate goes to the database, which counts them and says
     * what is wrong (acs.check_targets): at most argc of them. */
    const char **alts = calloc((size_t)argc, sizeof *alts);
    int nalts = 0, rc = 2;
    char *arr = NULL, *alt_arr = NULL;
    PGconn *conn = NULL;
    PGresult *r = NULL;
    if (!alts) {
        fprintf(stderr, "amtacsctl submit: out of memory\n");
        return 1;
    }
    static const struct option opts[] = {
        {"connection", required_argument, NULL, 'C'}, {"application", required_argument, NULL, 'a'},
        {"job", required_argument, NULL, 'j'},        {"script", required_argument, NULL, 's'},
        {"value", required_argument, NULL, 'v'},      {"param", required_argument, NULL, 'p'},
        {"queue", required_argument, NULL, 'q'},      {"user", required_argument, NULL, 'u'},
        {"ref", required_argument, NULL, 'r'},        {"alternate", required_argument, NULL, 'A'},
        {"group", required_argument, NULL, 'g'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* argv[0] is "submit", argv[1] the kind: options start after them. */
    optind = 0;
    argc--;
    argv++;
    int ch;
    while ((ch = getopt_long(argc, argv, "+C:a:j:s:v:p:q:u:r:A:g:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'C':
            conn_name = optarg;
            break;
        case 'A':
            alts[nalts++] = optarg;
            break;
        case 'g':
            if (group) {
                fprintf(stderr, "amtacsctl submit: --group is given twice; a job names one group\n");
                goto out;
            }
            group = optarg;
            break;
        case 'a':
            app = optarg;
            break;
        case 'j':
        case 's':
            if ((ch == 's') != script) {
                fprintf(stderr, "amtacsctl submit: %s is for %s jobs\n",
                        ch == 's' ? "--script" : "--job", ch == 's' ? "script" : "batch");
                goto out;
            }
            name = optarg;
            break;
        case 'v':
        case 'p': {
            if ((ch == 'p') != script) {
                fprintf(stderr, "amtacsctl submit: %s is for %s jobs\n",
                        ch == 'p' ? "--param" : "--value", ch == 'p' ? "script" : "batch");
                goto out;
            }
            if (nvalues == MAX_VALUES) {
                fprintf(stderr, "amtacsctl submit: more than %d %s; at most %d are allowed\n",
                        MAX_VALUES, script ? "script parameters" : "task values", MAX_VALUES);
                goto out;
            }
            values[nvalues++] = optarg;
            /* Refused here, before connecting, in the words the database would use. */
            char why[8192];
            if (jobspec_check_item(optarg, script ? "script parameter" : "task value",
                                   (size_t)nvalues, why, sizeof why) != JOBSPEC_OK) {
                fprintf(stderr, "amtacsctl submit: bad %s: %s\n",
                        script ? "--param" : "--value", why);
                goto out;
            }
            break;
        }
        case 'q':
            queue = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'r':
            ref = optarg;
            break;
        case 'h':
            submit_usage(stdout);
            rc = 0;
            goto out;
        default:
            submit_usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "amtacsctl submit: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    /* Which options go together is a matter of the command line; whether the
     * names are known, distinct and few enough is the database's to say. */
    if (group && (conn_name || nalts)) {
        fprintf(stderr, "amtacsctl submit: --group cannot go with %s: a job names either a "
                        "connection (with up to 3 alternates) or a group, not both\n",
                conn_name ? "--connection" : "--alternate");
        goto out;
    }
    if (nalts && !conn_name) {
        fprintf(stderr, "amtacsctl submit: --alternate needs --connection, the primary the "
                        "alternates follow\n");
        goto out;
    }
    if ((!conn_name && !group) || !app || !name) {
        fprintf(stderr,
                "amtacsctl submit: --connection (or --group), --application and --%s are required\n",
                script ? "script" : "job");
        submit_usage(stderr);
        goto out;
    }
    rc = 1;
    arr = jobspec_array_literal(values, (size_t)nvalues);
    alt_arr = jobspec_array_literal(alts, (size_t)nalts);
    if (!arr || !alt_arr || !(conn = ctl_connect(ctl, "submit")))
        goto out;
    const char *p[] = {conn_name, app, name, arr, queue, user, ref, alt_arr, group};
    r = ctl_exec(conn, "submit",
                 script ? "SELECT acs.submit_script_job($1, $2, $3, $4::text[], $5, $6, $7, "
                          "alternates => $8::text[], conn_group => $9)"
                        : "SELECT acs.submit_batch_job($1, $2, $3, $4::text[], $5, $6, $7, "
                          "alternates => $8::text[], conn_group => $9)",
                 9, p);
    if (r) {
        printf("%s\n", PQgetvalue(r, 0, 0));
        rc = 0;
    }
out:
    PQclear(r);
    PQfinish(conn);
    free(arr);
    free(alt_arr);
    free(alts);
    return rc;
}

/* Parses a job id argument; prints why not. */
static bool job_id_arg(const char *cmd, int argc, char **argv, int at, const char **id)
{
    if (argc <= at) {
        fprintf(stderr, "amtacsctl %s: a job id is required\n", cmd);
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(argv[at], &end, 10);
    if (errno || *end || end == argv[at] || v <= 0) {
        fprintf(stderr, "amtacsctl %s: '%s' is not a job id (a positive number)\n", cmd,
                argv[at]);
        return false;
    }
    *id = argv[at];
    return true;
}

static const char show_sql[] =
    "SELECT r.id, r.external_ref, r.connection, r.kind, r.application, r.name, r.state, "
    "r.completion_code, r.completion_name, r.result, r.enqueued_at, r.started_at, r.finished_at, "
    "r.error, j.batch_request_id, j.task_id, j.queue_name, j.amt_user, "
    "array_to_string(CASE WHEN j.kind = 'batch' THEN j.task_values ELSE j.script_parameters END, ' ') "
    "AS parameters, j.last_code AS amt_code, lc.name AS amt_state, "
    "j.kill_requested_at, j.kill_sent_at, j.kill_error, "
    "array_to_string(j.listed, ', ') AS listed, j.conn_group, coalesce(j.tried, '[]')::text "
    "FROM acs.job_results r JOIN acs.jobs j ON j.id = r.id "
    "LEFT JOIN acs.completion_codes lc ON lc.code = j.last_code WHERE r.id = $1::bigint";

/* The job's Integration Selection: what it listed (or its group), and each
 * connection that was given it and could not start it. "connection" above is
 * the one that holds, ran or will run it. */
static void print_choice(const PGresult *r)
{
    if (*PQgetvalue(r, 0, 24))
        ctl_print_line(stdout, "%-17s %s", "listed", PQgetvalue(r, 0, 24));
    if (!PQgetisnull(r, 0, 25))
        ctl_print_line(stdout, "%-17s %s", "group", PQgetvalue(r, 0, 25));
    cJSON *tried = cJSON_Parse(PQgetvalue(r, 0, 26));
    const cJSON *t;
    cJSON_ArrayForEach(t, tried) {
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "connection"));
        const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "at"));
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "error"));
        ctl_print_line(stdout, "%-17s %s at %s: %s", "tried", c ? c : "?", at ? at : "?",
                       err ? err : "-");
    }
    cJSON_Delete(tried);
}

static void print_show(const PGresult *r)
{
    static const char *const labels[] = {
        "id", "external_ref", "connection", "kind", "application", "name", "state",
        "completion_code", "completion_name", "result", "enqueued_at", "started_at",
        "finished_at", "error", "batch_request_id", "task_id", "queue_name", "amt_user",
        "parameters",
    };
    for (int i = 0; i < (int)(sizeof labels / sizeof labels[0]); i++)
        ctl_print_line(stdout, "%-17s %s", labels[i],
                       PQgetisnull(r, 0, i) ? "" : PQgetvalue(r, 0, i));
    print_choice(r);
    if (!PQgetisnull(r, 0, 19) && PQgetisnull(r, 0, 7))
        ctl_print_line(stdout, "%-17s %s (%s)", "amt_state",
                       PQgetisnull(r, 0, 20) ? "UNKNOWN" : PQgetvalue(r, 0, 20),
                       PQgetvalue(r, 0, 19));
    if (!PQgetisnull(r, 0, 21)) {
        const char *kill = !PQgetisnull(r, 0, 23) ? "failed, still running: "
                           : !PQgetisnull(r, 0, 22) ? "accepted by the server at "
                                                    : "requested at ";
        ctl_print_line(stdout, "%-17s %s%s", "kill", kill,
                       !PQgetisnull(r, 0, 23)   ? PQgetvalue(r, 0, 23)
                       : !PQgetisnull(r, 0, 22) ? PQgetvalue(r, 0, 22)
                                                : PQgetvalue(r, 0, 21));
    }
}

int ctl_cmd_show(struct ctl *ctl, int argc, char **argv)
{
    const char *id;
    bool json = argc == 3 && !strcmp(argv[2], "--json");
    if ((argc != 2 && !json) || !job_id_arg("show", argc, argv, 1, &id)) {
        fprintf(stderr, "usage: amtacsctl show ID [--json]\n");
        return 2;
    }
    PGconn *conn = ctl_connect(ctl, "show");
    if (!conn)
        return 1;
    const char *p[] = {id};
    /* --json prints the document amtacs-web serves at GET /api/v1/jobs/ID: one shape for both. */
    PGresult *r = ctl_exec(conn, "show", json ? DB_JOB_DOCUMENT_SQL : show_sql, 1, p);
    int rc = 1;
    if (r && (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)))
        fprintf(stderr, "amtacsctl show: no job %s\n", id);
    else if (r) {
        if (json) {
            ctl_print_text(stdout, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0),
                           TEXT_ESC_JSON);
            putchar('\n');
        } else
            print_show(r);
        rc = 0;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int ctl_cmd_log(struct ctl *ctl, int argc, char **argv)
{
    const char *id;
    if (!job_id_arg("log", argc, argv, 1, &id))
        return 2;
    PGconn *conn = ctl_connect(ctl, "log");
    if (!conn)
        return 1;
    const char *p[] = {id};
    PGresult *r = ctl_exec(conn, "log",
                           "SELECT j.state, l.log, l.job_id IS NOT NULL FROM acs.jobs j "
                           "LEFT JOIN acs.job_logs l ON l.job_id = j.id WHERE j.id = $1::bigint",
                           1, p);
    int rc = 1;
    if (r && PQntuples(r) == 0) {
        fprintf(stderr, "amtacsctl log: no job %s\n", id);
    } else if (r && !strcmp(PQgetvalue(r, 0, 2), "f")) {
        if (!strcmp(PQgetvalue(r, 0, 0), "finished"))
            fprintf(stderr, "amtacsctl log: the log of job %s was purged (retention)\n", id);
        else
            fprintf(stderr, "amtacsctl log: job %s is %s; its log is written when it ends\n", id,
                    PQgetvalue(r, 0, 0));
    } else if (r) {
        /* To a file or a pipe the log is the document, byte for byte; on a
         * terminal what the server wrote must not drive the terminal. */
        if (isatty(STDOUT_FILENO))
            ctl_print_text(stdout, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1),
                           TEXT_ESC_LINES);
        else
            fputs(PQgetvalue(r, 0, 1), stdout);
        rc = 0;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

/* Prints one message as the job log shows it, C1 and bidi controls escaped too. */
static void print_message(const char *text)
{
    struct buf b;
    buf_init(&b, 0);
    if (!text_escape(&b, text, strlen(text), TEXT_ESC_QUOTED))
        printf("%s\n", b.data);
    buf_free(&b);
    fflush(stdout);
}

/* The message lines of a finished job's log, from the (skip+1)-th on. */
static void print_log_tail(const char *log, long skip)
{
    const char *p = strstr(log, "\nJob Log ---");
    p = p ? strchr(p + 1, '\n') : NULL;
    long n = 0;
    while (p && p[1] == '"') {
        const char *eol = strchr(p + 1, '\n');
        if (!eol)
            break;
        if (n++ >= skip) {
            ctl_print_text(stdout, p + 1, (size_t)(eol - p - 1), TEXT_ESC_LINE);
            putchar('\n');
        }
        p = eol;
    }
}

static const char wait_usage[] =
    "usage: amtacsctl wait ID [--timeout SECONDS] [--quiet | --json] (amtacsctl wait --help)\n";

/* Parses wait's arguments; prints why not and returns false on a usage error. */
static bool wait_args(int argc, char **argv, const char **id, double *timeout, bool *json,
                      bool *quiet)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout")) {
            char *end = NULL;
            if (i + 1 < argc)
                *timeout = strtod(argv[++i], &end);
            if (!end || end == argv[i] || *end || !(*timeout >= 0)) {
                fprintf(stderr, "amtacsctl wait: --timeout takes a number of seconds (>= 0)%s%s%s\n",
                        end ? ", not '" : "", end ? argv[i] : "", end ? "'" : "");
                return false;
            }
        } else if (!strcmp(argv[i], "--json")) {
            *json = true;
        } else if (!strcmp(argv[i], "--quiet")) {
            *quiet = true;
        } else if (!*id) {
            if (!job_id_arg("wait", argc, argv, i, id))
                return false;
        } else {
            fprintf(stderr, "amtacsctl wait: unexpected argument '%s'\n", argv[i]);
            return false;
        }
    }
    if (*json && *quiet) {
        fprintf(stderr, "amtacsctl wait: --quiet prints nothing and --json prints the outcome; "
                        "choose one\n");
        return false;
    }
    if (!*id) {
        fprintf(stderr, "amtacsctl wait: a job id is required\n");
        return false;
    }
    return true;
}

/* Prints a finished job's outcome as --json or as "RESULT NAME (CODE)", after
 * the messages not shown yet. r is the row of the loop's statement. */
static bool print_outcome(PGconn *conn, const PGresult *r, const char *id, bool json, long shown)
{
    if (!json) {
        if (!PQgetisnull(r, 0, 6))
            print_log_tail(PQgetvalue(r, 0, 6), shown);
        ctl_print_line(stdout, "%s %s (%s)", PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 4),
                       PQgetvalue(r, 0, 3));
        return true;
    }
    /* the log itself is `amtacsctl log`'s business */
    const char *p[] = {id};
    PGresult *o = ctl_exec(conn, "wait",
                           "SELECT id, state, result, completion_code, completion_name, error "
                           "FROM acs.job_results WHERE id = $1::bigint",
                           1, p);
    if (o)
        ctl_print_json(o, false);
    PQclear(o);
    return o != NULL;
}

int ctl_cmd_wait(struct ctl *ctl, int argc, char **argv)
{
    const char *id = NULL;
    double timeout = -1;
    bool json = false, quiet = false;
    if (!wait_args(argc, argv, &id, &timeout, &json, &quiet)) {
        fputs(wait_usage, stderr);
        return CTL_WAIT_USAGE;
    }
    /* Messages go to stdout only in the plain form. */
    bool messages = !json && !quiet;
    PGconn *conn = ctl_connect(ctl, "wait");
    if (!conn)
        return CTL_WAIT_ERROR;
    int rc = CTL_WAIT_ERROR;
    long shown = 0;
    char last[32] = "0";
    bool doubt_told = false;
    PGresult *r = ctl_exec(conn, "wait", "LISTEN acs_job_finished", 0, NULL);
    if (!r)
        goto out;
    PQclear(r);
    if (!(r = ctl_exec(conn, "wait", "LISTEN acs_job_messages", 0, NULL)))
        goto out;
    PQclear(r);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        /* Checked after LISTEN, so nothing that happens in between is missed. */
        if (messages) {
            const char *mp[] = {id, last};
            r = ctl_exec(conn, "wait",
                         "SELECT seq, text FROM acs.job_messages WHERE job_id = $1::bigint "
                         "AND seq > $2::bigint ORDER BY seq",
                         2, mp);
            if (!r)
                goto out;
            for (int i = 0; i < PQntuples(r); i++) {
                print_message(PQgetvalue(r, i, 1));
                snprintf(last, sizeof last, "%s", PQgetvalue(r, i, 0));
                shown++;
            }
            PQclear(r);
        }
        const char *p[] = {id};
        r = ctl_exec(conn, "wait",
                     "SELECT r.id, r.state, r.result, r.completion_code, r.completion_name, "
                     "r.error, l.log FROM acs.job_results r "
                     "LEFT JOIN acs.job_logs l ON l.job_id = r.id WHERE r.id = $1::bigint",
                     1, p);
        if (!r)
            goto out;
        if (PQntuples(r) == 0) {
            fprintf(stderr, "amtacsctl wait: no job %s (exit status %d)\n", id, CTL_WAIT_NO_JOB);
            PQclear(r);
            rc = CTL_WAIT_NO_JOB;
            goto out;
        }
        if (!strcmp(PQgetvalue(r, 0, 1), "finished")) {
            bool success = !strcmp(PQgetvalue(r, 0, 2), "success");
            if (!quiet && !print_outcome(conn, r, id, json, shown)) {
                PQclear(r);
                goto out;
            }
            rc = success ? CTL_WAIT_SUCCESS : CTL_WAIT_FAILURE;
            PQclear(r);
            goto out;
        }
        if (!strcmp(PQgetvalue(r, 0, 1), "in_doubt") && !doubt_told) {
            doubt_told = true;
            ctl_print_line(stderr,
                           "amtacsctl wait: job %s is in doubt: %s (amtacsctl resolve %s)", id,
                           PQgetvalue(r, 0, 5), id);
        }
        PQclear(r);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double spent = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (timeout >= 0 && spent >= timeout) {
            fprintf(stderr, "amtacsctl wait: job %s did not finish within %g s\n", id, timeout);
            rc = CTL_WAIT_TIMEOUT;
            goto out;
        }
        /* Wake on a notification, or look again every second in case one was missed. */
        double slice = timeout >= 0 && timeout - spent < 1.0 ? timeout - spent : 1.0;
        struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
        poll(&pfd, 1, (int)(slice * 1000) + 1);
        if (!PQconsumeInput(conn)) {
            fprintf(stderr, "amtacsctl wait: lost the database connection: %s",
                    PQerrorMessage(conn));
            goto out;
        }
        PGnotify *n;
        while ((n = PQnotifies(conn)))
            PQfreemem(n);
    }
out:
    fflush(stdout);
    PQfinish(conn);
    return rc;
}

int ctl_cmd_list(struct ctl *ctl, int argc, char **argv)
{
    const char *state = NULL, *connection = NULL, *group = NULL, *limit = "50";
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--state") && i + 1 < argc)
            state = argv[++i];
        else if (!strcmp(argv[i], "--connection") && i + 1 < argc)
            connection = argv[++i];
        else if (!strcmp(argv[i], "--group") && i + 1 < argc)
            group = argv[++i];
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
            limit = argv[++i];
        else {
            fprintf(stderr, "usage: amtacsctl list [--state S] [--connection C] [--group G] "
                            "[--limit N] [--json]\n");
            return 2;
        }
    }
    PGconn *conn = ctl_connect(ctl, "list");
    if (!conn)
        return 1;
    const char *p[] = {state, connection, limit, group};
    PGresult *r = ctl_exec(conn, "list",
                           "SELECT r.id, r.connection, r.kind, r.name, r.state, r.completion_code, "
                           "r.completion_name, r.result, r.external_ref "
                           "FROM acs.job_results AS r WHERE ($1::text IS NULL OR r.state = $1) "
                           "AND ($2::text IS NULL OR r.connection = $2) "
                           "AND ($4::text IS NULL OR r.id IN (SELECT j.id FROM acs.jobs AS j "
                           "WHERE j.conn_group = $4)) "
                           "ORDER BY r.id DESC LIMIT $3::int",
                           4, p);
    int rc = 1;
    if (r && json) {
        ctl_print_json(r, true);
        rc = 0;
    } else if (r) {
        printf("%-8s %-12s %-6s %-32s %-9s %-22s %s\n", "ID", "CONNECTION", "KIND", "NAME",
               "STATE", "COMPLETION", "RESULT");
        for (int i = 0; i < PQntuples(r); i++)
            ctl_print_line(stdout, "%-8s %-12s %-6s %-32s %-9s %-22s %s", PQgetvalue(r, i, 0),
                           PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                           PQgetvalue(r, i, 4), PQgetvalue(r, i, 6), PQgetvalue(r, i, 7));
        rc = 0;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int ctl_cmd_kill(struct ctl *ctl, int argc, char **argv)
{
    const char *id;
    if (argc != 2) {
        fprintf(stderr, "usage: amtacsctl kill ID\n");
        return 2;
    }
    if (!job_id_arg("kill", argc, argv, 1, &id))
        return 2;
    PGconn *conn = ctl_connect(ctl, "kill");
    if (!conn)
        return 1;
    const char *p[] = {id};
    PGresult *r = ctl_exec(conn, "kill", "SELECT acs.request_kill($1::bigint)", 1, p);
    if (!r) {
        PQfinish(conn);
        return 1;
    }
    PQclear(r);
    /* The daemon acts within a second; say what happened rather than just "requested". */
    int rc = 0;
    const char *said = NULL;
    for (int i = 0; i < 40 && !said; i++) {
        r = ctl_exec(conn, "kill",
                     "SELECT j.state, coalesce(r.completion_name, ''), j.kill_sent_at IS NOT NULL, "
                     "coalesce(j.kill_error, '') FROM acs.jobs j LEFT JOIN acs.job_results r "
                     "USING (id) WHERE id = $1::bigint",
                     1, p);
        if (!r) {
            rc = 1;
            break;
        }
        if (!strcmp(PQgetvalue(r, 0, 0), "finished")) {
            printf("job %s ended %s\n", id, PQgetvalue(r, 0, 1));
            said = "";
        } else if (*PQgetvalue(r, 0, 3)) {
            ctl_print_line(stdout, "job %s: kill failed, still running: %s (the daemon tries "
                           "again; amtacsctl show %s follows it)", id, PQgetvalue(r, 0, 3), id);
            said = "";
        } else if (!strcmp(PQgetvalue(r, 0, 2), "t")) {
            printf("job %s: the AMT server accepted the kill; the job ends KILLED as soon as "
                   "the server confirms (amtacsctl wait %s)\n", id, id);
            said = "";
        }
        PQclear(r);
        if (!said)
            nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    if (!said && !rc)
        printf("job %s: kill requested; no daemon has acted on it yet (is amtacsd running and "
               "is the connection's comm enabled?)\n", id);
    PQfinish(conn);
    return rc;
}

/* The reference layout for a job that never got a server log (resolved as failed). */
static char *render_resolved_log(struct ctl *ctl, PGconn *conn, const char *id)
{
    const char *p[] = {id};
    PGresult *r = ctl_exec(conn, "resolve",
                           "SELECT connection, application, kind, coalesce(job_name, script_name), "
                           "queue_name, CASE WHEN kind = 'batch' THEN task_values "
                           "ELSE script_parameters END, coalesce(error, ''), session_user "
                           "FROM acs.jobs WHERE id = $1::bigint",
                           1, p);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return NULL;
    }
    const struct amtacs_config *cfg = NULL;
    const char *server = "";
    if (ctl->config_path) {
        struct config_errors *errs = NULL;
        cfg = config_load(ctl->config_path, &errs);
        config_errors_free(errs);
        const struct amtacs_connection *c = cfg ? config_find_connection(cfg, PQgetvalue(r, 0, 0))
                                                : NULL;
        if (c)
            server = c->url;
    }
    /* The values come as a text[] literal; one that does not parse (it always
     * does: PostgreSQL wrote it) leaves the Parameters row empty. */
    char **values = NULL;
    size_t nvalues = 0;
    char why[128];
    const char *lit = PQgetvalue(r, 0, 5);
    if (!jobspec_array_parse(lit, strlen(lit), &values, &nvalues, why, sizeof why))
        nvalues = 0;
    char line[1200];
    snprintf(line, sizeof line, "amtacs: %s%sthe job was in doubt and %s resolved it as failed",
             PQgetvalue(r, 0, 6), *PQgetvalue(r, 0, 6) ? "; " : "", PQgetvalue(r, 0, 7));
    const char *msgs[] = {line};
    struct jobspec spec = {
        .application = PQgetvalue(r, 0, 1),
        .queue_name = PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4),
        .kind = jobspec_kind_of(PQgetvalue(r, 0, 2)), .name = PQgetvalue(r, 0, 3),
        .values = (const char *const *)values, .nvalues = nvalues,
    };
    struct joblog_job job = {.server = server, .spec = &spec, .completion_code = 19};
    char *log = joblog_render(&job, msgs, 1);
    jobspec_items_free(values, nvalues);
    config_free(cfg);
    PQclear(r);
    return log;
}

int ctl_cmd_resolve(struct ctl *ctl, int argc, char **argv)
{
    const char *id = NULL, *action = NULL, *brid = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--restart") || !strcmp(argv[i], "--fail")) {
            action = argv[i] + 2;
        } else if (!strcmp(argv[i], "--follow") && i + 1 < argc) {
            action = "follow";
            brid = argv[++i];
        } else if (!id && job_id_arg("resolve", argc, argv, i, &id)) {
            continue;
        } else {
            id = NULL;
            break;
        }
    }
    if (!id || !action) {
        fprintf(stderr,
                "usage: amtacsctl resolve ID --restart | --fail | --follow BATCHREQUESTID\n"
                "  for a job in doubt: --restart queues it again (you checked the AMT server\n"
                "  did not start it), --fail ends it as a failure, --follow follows the request\n"
                "  you found on the server\n");
        return 2;
    }
    PGconn *conn = ctl_connect(ctl, "resolve");
    if (!conn)
        return 1;
    char *log = !strcmp(action, "fail") ? render_resolved_log(ctl, conn, id) : NULL;
    const char *p[] = {id, action, brid, log};
    PGresult *r = ctl_exec(conn, "resolve",
                           "SELECT acs.resolve_in_doubt($1::bigint, $2, $3::int, $4)", 4, p);
    int rc = 1;
    if (r) {
        printf("job %s: %s\n", id,
               !strcmp(action, "restart") ? "queued again"
               : !strcmp(action, "fail")  ? "finished as a failure (UNDEFINED)"
                                          : "running; the daemon follows it");
        rc = 0;
    }
    PQclear(r);
    free(log);
    PQfinish(conn);
    return rc;
}

/* rerun ID: a new job with the spec of an ended one (acs.rerun_job); prints
 * its id, as submit does. */
int ctl_cmd_rerun(struct ctl *ctl, int argc, char **argv)
{
    const char *id = NULL;
    if (argc != 2 || !job_id_arg("rerun", argc, argv, 1, &id) || !id) {
        fprintf(stderr, "usage: amtacsctl rerun ID\n"
                        "  enqueue a new job with the same spec as job ID, which has ended, and a\n"
                        "  new taskId; the new job names ID as the job it reruns\n");
        return 2;
    }
    PGconn *conn = ctl_connect(ctl, "rerun");
    if (!conn)
        return 1;
    const char *p[] = {id};
    PGresult *r = ctl_exec(conn, "rerun", "SELECT acs.rerun_job($1::bigint)", 1, p);
    int rc = 1;
    if (r) {
        printf("%s\n", PQgetvalue(r, 0, 0));
        rc = 0;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}
