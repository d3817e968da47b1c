/*
 * ctl: the pieces shared by amtacsctl's commands (src/ctl/). Each command is a
 * function that gets its own arguments and returns the exit status:
 * 0 done, 1 failed, 2 usage error; `wait` has its own (enum ctl_wait_exit).
 * `amtacsctl COMMAND --help` is answered by main.c from the command table, so
 * a command never sees --help or -h.
 */
#ifndef AMTACS_CTL_H
#define AMTACS_CTL_H

#include <libpq-fe.h>

#include "amtacs/config.h"
#include "amtacs/text.h"
#include <stdbool.h>
#include <stdio.h>

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILED = 1,
    CTL_EXIT_USAGE = 2,
};

/* `amtacsctl wait`: a scheduler acts on these, so each outcome has its own;
 * documented in README.md, docs/operations.md and `wait --help`. */
enum ctl_wait_exit {
    CTL_WAIT_SUCCESS = 0,  /* the job ended DONE (4) */
    CTL_WAIT_FAILURE = 1,  /* the job ended with any other final code */
    CTL_WAIT_USAGE = 2,    /* bad arguments */
    CTL_WAIT_NO_JOB = 3,   /* there is no job with that id */
    CTL_WAIT_TIMEOUT = 4,  /* --timeout passed before the job ended */
    CTL_WAIT_ERROR = 5,    /* the outcome could not be learnt: database unreachable, ... */
};

struct ctl {
    const char *conninfo;    /* --db, else $AMTACS_DB, else the config's, else "" */
    const char *config_path; /* -c, else $AMTACS_CONFIG; NULL if neither */
};

/* Loads ctl->config_path (which must be set) or prints every problem and
 * returns NULL. Release with config_free(). */
const struct amtacs_config *ctl_config(struct ctl *ctl);
/* Connects to the database or prints why not (prefixed with cmd) and returns NULL. */
PGconn *ctl_connect(struct ctl *ctl, const char *cmd);
/* Runs a parameterized statement; on error prints "amtacsctl CMD: message"
 * (PostgreSQL's own text) and returns NULL. Caller PQclear()s. */
PGresult *ctl_exec(PGconn *conn, const char *cmd, const char *sql, int n,
                   const char *const *params);
/* Writes rows as JSON objects named by their columns (integers, booleans and
 * NULL as such, the rest as strings): one object, or an array of them, with C1
 * and bidi controls escaped as \uXXXX (TEXT_ESC_JSON: the same strings). */
void ctl_print_json(const PGresult *r, bool array);
/* Writes n bytes of outside text as text_escape() `form` says (amtacs/text.h):
 * what reaches a terminal can never drive it. */
void ctl_print_text(FILE *out, const char *s, size_t n, enum text_escape_form form);
/* printf of one line (no newline in fmt) whose values may be outside text:
 * the line is escaped as TEXT_ESC_LINE, then ended with a newline. */
void ctl_print_line(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads a password of at most max bytes: without echo from a terminal (asked
 * twice, after "PROMPT: "), else the first line of standard input. Errors are
 * said as "amtacsctl CMD: ...". Returns sodium_malloc()ed memory the caller
 * wipes with sodium_free(), or NULL. */
char *ctl_read_password(const char *cmd, const char *prompt, size_t max);

int ctl_cmd_submit(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_show(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_log(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_wait(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_list(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_kill(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_comm(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_group(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_purge(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_alerts(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_resolve(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_rerun(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_keygen(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_rekey(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_batch_user(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_config(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_user(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_token(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_setup(struct ctl *ctl, int argc, char **argv);

#endif
