/*
 * amtacsctl: the command line for admins, operators and schedulers.
 * Every command is one row of `commands[]`; it gets the arguments after its
 * name and returns the process exit status (0 ok, 1 failed, 2 usage).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "amtacs/codes.h"
#include "amtacs/config.h"
#include "amtacs/coredump.h"
#include "amtacs/ctl.h"
#include "amtacs/db.h"
#include "amtacs/jobspec.h"

struct command {
    const char *name;
    int (*run)(struct ctl *ctl, int argc, char **argv);
    const char *usage;
    const char *help;
    const char *details; /* more for `COMMAND --help`: options, exit status; may be NULL */
};

static int cmd_codes(struct ctl *ctl, int argc, char **argv);
static int cmd_migrate(struct ctl *ctl, int argc, char **argv);
static int cmd_version(struct ctl *ctl, int argc, char **argv);
static int cmd_help(struct ctl *ctl, int argc, char **argv);

#define STR_(x) #x
#define STR(x) STR_(x)

static const char wait_details[] =
    "Shows the job's messages as they arrive, then its outcome as RESULT NAME (CODE).\n"
    "  --timeout SECONDS  give up after this long (default: wait for ever)\n"
    "  --quiet            print nothing on stdout; only the exit status tells\n"
    "  --json             no messages; the outcome as one JSON object\n"
    "exit status:\n"
    "  0  the job ended DONE (4): success\n"
    "  1  the job ended with another final code: failure\n"
    "  2  usage error\n"
    "  3  there is no job with that id\n"
    "  4  --timeout passed before the job ended (it goes on)\n"
    "  5  the outcome could not be learnt (database unreachable, a statement failed)\n";

static const char user_details[] =
    "The password is asked twice without echo on a terminal, else read as one line\n"
    "from stdin; at least 12 characters. It is hashed here (argon2id,\n"
    "crypto_pwhash_str, libsodium's INTERACTIVE limits): the database never sees it.\n"
    "Needs a role that is a member of acs_admin; PostgreSQL refuses anyone else.\n";

static const char token_details[] =
    "create prints the token (amtacs_ + 43 characters) once on stdout; the database\n"
    "keeps only the SHA-256 of its 32 random bytes, so it cannot be shown again.\n"
    "Needs a role that is a member of acs_admin; PostgreSQL refuses anyone else.\n";

static const char submit_details[] =
    "  submit batch  -C CONNECTION [-A ALTERNATE]... | -g GROUP\n"
    "                -a APPLICATION -j JOB_NAME\n"
    "                [-v NAME=VALUE]... [-q QUEUE] [-u AMT_USER] [-r REF]\n"
    "  submit script -C CONNECTION [-A ALTERNATE]... | -g GROUP\n"
    "                -a APPLICATION -s SCRIPT_NAME\n"
    "                [-p NAME=VALUE]... [-q QUEUE] [-u AMT_USER] [-r REF]\n"
    "Prints the new job's id. At most " STR(JOBSPEC_MAX_ITEMS)
    " task values or script parameters.\n"
    "Integration Selection: a job names its primary connection (-C, --connection)\n"
    "with up to 3 alternates (-A, --alternate, repeated, tried in order), or a\n"
    "connection group (-g, --group; amtacsctl group list), never both. The job runs\n"
    "on the first listed connection that is enabled and whose server answers; it\n"
    "moves on only while no Start can have reached a server (docs/operations.md).\n";

static const char group_details[] =
    "A group's jobs go to its members that are up, least in flight first.\n"
    "set: defines a group, or sets its members in the order given (prints created,\n"
    "changed or unchanged); delete: refused while an unfinished job names it.\n"
    "set and delete need a role that is a member of acs_admin; PostgreSQL refuses\n"
    "anyone else. list shows each group's members and its unfinished jobs.\n";

static const struct command commands[] = {
    {"codes", cmd_codes, "codes [--tsv]", "print the AMT completion-code table",
     "  --tsv  tab-separated: code, name, final (t/f), success (t/f), description\n"},
    {"migrate", cmd_migrate, "migrate", "create or upgrade the database schema (idempotent)",
     NULL},
    {"submit", ctl_cmd_submit, "submit batch|script ...", "enqueue a Batch Job or Script Job",
     submit_details},
    {"show", ctl_cmd_show, "show ID [--json]", "a job's state and outcome",
     "  --json  the document amtacs-web serves at GET /api/v1/jobs/ID\n"
     "connection is the one that holds, ran or will run the job; listed (the primary\n"
     "and its alternates) or group, and one tried line per connection that could not\n"
     "start it (when, and why), show the Integration Selection.\n"},
    {"log", ctl_cmd_log, "log ID", "a finished job's merged job log", NULL},
    {"wait", ctl_cmd_wait, "wait ID [--timeout S] [--quiet|--json]",
     "wait until the job ends (exit 0 success, 1 failure, 3 no such job, 4 timeout)",
     wait_details},
    {"comm", ctl_cmd_comm, "comm enable|limit|disable C", "Full Comm of a connection", NULL},
    {"comm", ctl_cmd_comm, "comm status [--json]", "comm state, server answers, jobs queued/in flight",
     NULL},
    {"group", ctl_cmd_group, "group set NAME CONN...", "define a connection group (admin)",
     group_details},
    {"group", ctl_cmd_group, "group list [--json]", "groups, members in order, unfinished jobs",
     NULL},
    {"group", ctl_cmd_group, "group delete NAME", "delete a group no unfinished job names (admin)",
     NULL},
    {"purge", ctl_cmd_purge, "purge", "delete job logs past their connection's retention", NULL},
    {"alerts", ctl_cmd_alerts, "alerts [--all] [--json]",
     "alerts for jobs that ended 11, 12, 23, 24 and more", NULL},
    {"alerts", ctl_cmd_alerts, "alerts ack ID", "acknowledge an alert", NULL},
    {"kill", ctl_cmd_kill, "kill ID", "send a running job an immediate Kill (it ends KILLED)", NULL},
    {"resolve", ctl_cmd_resolve, "resolve ID --restart|--fail|--follow N",
     "decide about a job in doubt",
     "  --restart  queue it again (you checked the AMT server did not start it)\n"
     "  --fail     end it as a failure\n"
     "  --follow N follow BatchRequestId N, which you found on the server\n"},
    {"rerun", ctl_cmd_rerun, "rerun ID",
     "enqueue an ended job again: same spec, new taskId (prints the new id)", NULL},
    {"status", ctl_cmd_show, "status ID [--json]", "the same as show", NULL},
    {"list", ctl_cmd_list, "list [--state S] ...", "the latest jobs",
     "  list [--state S] [--connection C] [--group G] [--limit N] [--json]   (50 by default)\n"
     "  --connection C: the jobs C holds, ran or will run; --group G: the jobs submitted to G\n"},
    {"keygen", ctl_cmd_keygen, "keygen [--secret FILE]",
     "make the key pair that seals Batch User passwords", NULL},
    {"rekey", ctl_cmd_rekey, "rekey [--secret FILE]",
     "re-seal every Batch User password under a new key pair", NULL},
    {"batch-user", ctl_cmd_batch_user, "batch-user set NAME", "store a Batch User's password, sealed",
     "  batch-user set NAME [--public-key FILE]   asks twice on a terminal, else reads stdin\n"},
    {"batch-user", ctl_cmd_batch_user, "batch-user list [--json]",
     "Batch Users and their key ids (never a password)", NULL},
    {"batch-user", ctl_cmd_batch_user, "batch-user delete NAME",
     "delete a Batch User no connection uses", NULL},
    {"user", ctl_cmd_user, "user add NAME --role ROLE",
     "add a web console user (ROLE: viewer, scheduler, operator, admin)", user_details},
    {"user", ctl_cmd_user, "user passwd NAME", "set a console user's password; ends its sessions",
     NULL},
    {"user", ctl_cmd_user, "user role NAME ROLE", "change a console user's role", NULL},
    {"user", ctl_cmd_user, "user disable NAME", "stop a console user logging in; ends its sessions",
     NULL},
    {"user", ctl_cmd_user, "user enable NAME", "let a disabled console user log in again", NULL},
    {"user", ctl_cmd_user, "user list [--json]", "console users and roles (never a hash)", NULL},
    {"token", ctl_cmd_token, "token create --name N --role R",
     "make an API token; printed once, stored as its SHA-256", token_details},
    {"token", ctl_cmd_token, "token list [--json]", "API tokens and roles (never a hash)", NULL},
    {"token", ctl_cmd_token, "token revoke NAME", "revoke an API token for good", NULL},
    {"setup", ctl_cmd_setup, "setup --db CONNINFO [...]",
     "first setup: roles, schema, key pair, configuration, console admin (idempotent)",
     "  --db CONNINFO   a superuser, or a role with CREATEROLE that owns the database\n"
     "  --config FILE   written when missing (default /etc/amtacs/amtacs.yaml)\n"
     "  --key FILE      the secret key (default: the configuration's key_file)\n"
     "  --owner USER    the system user the secret key belongs to (default amtacs)\n"
     "  --admin NAME    the first console admin (default admin); its password is asked\n"
     "                  twice without echo on a terminal, else read from stdin\n"
     "Checks every right it needs before it changes anything; a second run changes nothing.\n"},
    {"config", ctl_cmd_config, "config check [FILE]", "check a configuration file", NULL},
    {"version", cmd_version, "version", "print the version", NULL},
    {"help", cmd_help, "help", "this text", NULL},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: amtacsctl [-c CONFIG] [--db CONNINFO] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-24s %s\n", commands[i].usage, commands[i].help);
    fprintf(out, "\nThe database is --db CONNINFO, else $AMTACS_DB, else the configuration's\n"
                 "database.conninfo (-c FILE or $AMTACS_CONFIG), else libpq's PG* variables.\n"
                 "amtacsctl COMMAND --help tells more about a command.\n");
}

/* `amtacsctl NAME --help`: every row of the table with that name. */
static void command_usage(const char *name, FILE *out)
{
    size_t rows = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name))
            continue;
        fprintf(out, "%s amtacsctl %s\n", rows++ ? "      " : "usage:", commands[i].usage);
    }
    /* With several forms, each description says which form it is about. */
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name))
            continue;
        if (rows > 1)
            fprintf(out, "  %-30s %s\n", commands[i].usage, commands[i].help);
        else
            fprintf(out, "  %s\n", commands[i].help);
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name) && commands[i].details)
            fputs(commands[i].details, out);
}

/* Whether the arguments ask for help. Answered here, not by each command, so
 * that no command can forget it and no --help is ever taken for a job id. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
}

static int cmd_help(struct ctl *ctl, int argc, char **argv)
{
    (void)ctl;
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
}

static int cmd_version(struct ctl *ctl, int argc, char **argv)
{
    (void)ctl;
    (void)argc;
    (void)argv;
    printf("amtacsctl %s (libpq %d)\n", AMTACS_VERSION, PQlibVersion());
    return 0;
}

static int cmd_codes(struct ctl *ctl, int argc, char **argv)
{
    (void)ctl;
    int tsv = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tsv")) {
            tsv = 1;
        } else {
            fprintf(stderr, "amtacsctl codes: unknown argument '%s' (usage: codes [--tsv])\n",
                    argv[i]);
            return 2;
        }
    }
    size_t n;
    const struct amt_code_info *t = amt_codes_table(&n);
    if (!tsv)
        printf("%-4s  %-22s  %-5s  %-7s  %s\n", "CODE", "NAME", "FINAL", "RESULT", "DESCRIPTION");
    for (size_t i = 0; i < n; i++) {
        if (tsv)
            printf("%d\t%s\t%s\t%s\t%s\n", t[i].code, t[i].name, t[i].final ? "t" : "f",
                   t[i].success ? "t" : "f", t[i].description);
        else
            printf("%-4d  %-22s  %-5s  %-7s  %s\n", t[i].code, t[i].name,
                   t[i].final ? "yes" : "no",
                   !t[i].final ? "-" : t[i].success ? "success" : "failure",
                   *t[i].description ? t[i].description : "-");
    }
    if (!tsv)
        printf("\nSuccess is DONE (4) alone; every other final code is a failure. A number\n"
               "outside this table is treated as a final failure and keeps its number.\n");
    return 0;
}

static int cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "amtacsctl migrate: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    char err[1024] = "";
    PGconn *conn = ctl_connect(ctl, "migrate");
    if (!conn)
        return 1;
    int rc = db_migrate(conn, stdout, err, sizeof err);
    if (rc)
        fprintf(stderr, "amtacsctl migrate: %s\n", err);
    PQfinish(conn);
    return rc ? 1 : 0;
}

const struct amtacs_config *ctl_config(struct ctl *ctl)
{
    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load(ctl->config_path, &errs);
    if (!cfg) {
        config_errors_print(errs, stderr);
        config_errors_free(errs);
    }
    return cfg;
}

PGconn *ctl_connect(struct ctl *ctl, const char *cmd)
{
    char err[1024] = "";
    const struct amtacs_config *cfg = NULL;
    const char *conninfo = ctl->conninfo;
    if (!conninfo && ctl->config_path) {
        if (!(cfg = ctl_config(ctl)))
            return NULL;
        conninfo = cfg->database.conninfo;
    }
    PGconn *conn = db_connect(conninfo ? conninfo : "", err, sizeof err);
    if (!conn)
        fprintf(stderr, "amtacsctl %s: %s\n", cmd, err);
    config_free(cfg);
    return conn;
}

PGresult *ctl_exec(PGconn *conn, const char *cmd, const char *sql, int n,
                   const char *const *params)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    fprintf(stderr, "amtacsctl %s: %s\n", cmd, msg ? msg : PQerrorMessage(conn));
    PQclear(r);
    return NULL;
}

int main(int argc, char **argv)
{
    char cderr[256];
    if (coredump_disable(cderr, sizeof cderr)) { /* batch-user set holds a clear password */
        fprintf(stderr, "amtacsctl: %s\n", cderr);
        return 1;
    }
    struct ctl ctl = {.conninfo = getenv("AMTACS_DB"), .config_path = getenv("AMTACS_CONFIG")};
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "+d:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            ctl.conninfo = optarg;
            break;
        case 'c':
            ctl.config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[optind];
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name))
            continue;
        if (wants_help(argc - optind, argv + optind)) {
            command_usage(name, stdout);
            return CTL_EXIT_OK;
        }
        return commands[i].run(&ctl, argc - optind, argv + optind);
    }
    fprintf(stderr, "amtacsctl: unknown command '%s'; 'amtacsctl help' lists them\n", name);
    return 2;
}
