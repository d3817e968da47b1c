/*
 * amtacsctl: the command line for admins, operators and schedulers.
 * Every command is one row of `commands[]`; it gets the arguments after its
 * name and returns the process exit status (0 ok, 1 failed, 2 usage).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "amtacs/codes.h"
#include "amtacs/db.h"

struct ctl {
    const char *conninfo; /* --db, else $AMTACS_DB, else libpq's PG* defaults */
};

struct command {
    const char *name;
    int (*run)(struct ctl *ctl, int argc, char **argv);
    const char *usage;
    const char *help;
};

static int cmd_codes(struct ctl *ctl, int argc, char **argv);
static int cmd_migrate(struct ctl *ctl, int argc, char **argv);
static int cmd_version(struct ctl *ctl, int argc, char **argv);
static int cmd_help(struct ctl *ctl, int argc, char **argv);

static const struct command commands[] = {
    {"codes", cmd_codes, "codes [--tsv]", "print the AMT completion-code table"},
    {"migrate", cmd_migrate, "migrate", "create or upgrade the database schema (idempotent)"},
    {"version", cmd_version, "version", "print the version"},
    {"help", cmd_help, "help", "this text"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: amtacsctl [--db CONNINFO] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-24s %s\n", commands[i].usage, commands[i].help);
    fprintf(out, "\nThe database is --db CONNINFO, else $AMTACS_DB, else libpq's PG* variables.\n");
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
    PGconn *conn = db_connect(ctl->conninfo, err, sizeof err);
    if (!conn) {
        fprintf(stderr, "amtacsctl migrate: %s\n", err);
        return 1;
    }
    int rc = db_migrate(conn, stdout, err, sizeof err);
    if (rc)
        fprintf(stderr, "amtacsctl migrate: %s\n", err);
    PQfinish(conn);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct ctl ctl = {.conninfo = getenv("AMTACS_DB")};
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "+d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            ctl.conninfo = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!ctl.conninfo)
        ctl.conninfo = "";
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].run(&ctl, argc - optind, argv + optind);
    fprintf(stderr, "amtacsctl: unknown command '%s'; 'amtacsctl help' lists them\n", name);
    return 2;
}
