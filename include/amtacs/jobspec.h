/*
 * jobspec: the task values of a batch job and the script parameters of a
 * script job as they reach the database: the rules it applies to each item
 * (acs.check_pair_list and acs.is_valid_pair_list in sql/0001_init.sql),
 * so that amtacsctl can refuse a bad item before it connects, and the
 * PostgreSQL text[] literal that carries the list to acs.submit_*_job().
 *
 * The rules assume what amtacs always has: a UTF-8 database (the client
 * encoding is UTF8) whose LC_CTYPE makes `\s` the ASCII white space, as the C
 * locale does. A database with another LC_CTYPE may also count some non-ASCII
 * spaces (U+3000, ...) as white space in a NAME: then it refuses a few items
 * that pass here, with its own message. Nothing it accepts is refused here.
 */
#ifndef AMTACS_JOBSPEC_H
#define AMTACS_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>

/* What every Start carries and every job log's header shows: OpCon's batch
 * user and station (the reference logs say "Submit User : BATCH", "Station :
 * OPCON"). One definition for the Start body and the log header. */
#define JOBSPEC_SUBMIT_USER "BATCH"
#define JOBSPEC_STATION "OPCON"

#define JOBSPEC_MAX_ITEMS 20   /* items in a list, at most */
#define JOBSPEC_MAX_CHARS 1024 /* characters (not bytes) in an item, at most */

/* A job's kind: what the database calls it (acs.jobs.kind), what the Start
 * body's fields are named after and which header row its log has. */
enum jobspec_kind {
    JOBSPEC_BATCH,  /* "batch": jobName and taskValues; log row "Batch Job" */
    JOBSPEC_SCRIPT, /* "script": scriptName and scriptParameters; log row "Script Job" */
};

/* One job as the claim reads it, the Start request sends it and its log's
 * header shows it: the same fields from the queue row to the final write.
 * Who holds one says whether its strings are borrowed or owned
 * (jobspec_dup). */
struct jobspec {
    enum jobspec_kind kind;
    const char *application;
    const char *amt_user;      /* NULL or "" = the application's user */
    const char *queue_name;    /* NULL or "" = the server's default queue */
    const char *name;          /* job name (batch) or script name (script) */
    const char *const *values; /* task values (batch) or script parameters (script) */
    size_t nvalues;
};

/* The database's word for a kind: "batch" or "script". */
const char *jobspec_kind_name(enum jobspec_kind kind);
/* The word a human reads in a log line: "batch job" or "script". */
const char *jobspec_kind_noun(enum jobspec_kind kind);
/* The kind the database's word names: "script" is a script, anything else a
 * batch job (the column's CHECK allows only the two). */
enum jobspec_kind jobspec_kind_of(const char *name);

/* An owned copy of spec in one allocation (strings and the list with it):
 * release it with free(). NULL strings stay NULL, NULL items become "".
 * NULL when out of memory. */
struct jobspec *jobspec_dup(const struct jobspec *spec);

/* Why an item is refused, in the order the checks run (the database's order). */
enum jobspec_problem {
    JOBSPEC_OK = 0,
    JOBSPEC_BAD_UTF8,   /* bytes that are not UTF-8: the database refuses the whole call */
    JOBSPEC_CONTROL,    /* a control character: U+0001-U+001F, U+007F-U+009F */
    JOBSPEC_TOO_LONG,   /* more than JOBSPEC_MAX_CHARS characters */
    JOBSPEC_NO_EQUALS,  /* no '=': not NAME=VALUE */
    JOBSPEC_EMPTY_NAME, /* '=' first: the NAME is empty */
    JOBSPEC_NAME_SPACE, /* white space in the NAME */
};

/* Checks item number `index` (1-based) of a list of `label`s ("task value",
 * "script parameter"). Returns JOBSPEC_OK, or the problem with a one-line
 * message in why (when whylen > 0) in the database's words, e.g. "task value 3
 * ('FOO') is not name=value: it has no '='; ...". The message quotes the item
 * only when it is printable UTF-8. */
enum jobspec_problem jobspec_check_item(const char *item, const char *label, size_t index,
                                        char *why, size_t whylen);

/* Checks a whole list: at most JOBSPEC_MAX_ITEMS items, none NULL, each valid.
 * `what` names the list in the count message ("task_values has 21 items; ...").
 * Returns true, or false with the first problem in why. */
bool jobspec_check_list(const char *const *items, size_t n, const char *what,
                        const char *label, char *why, size_t whylen);

/* The text[] literal of n items, e.g. {"A=1","B=x \"y\""} (malloc'd; NULL when
 * out of memory). Every item is written in double quotes with `"` and `\`
 * escaped, so braces, commas, blanks, empty items and the word NULL stay text;
 * a NULL item is written as NULL. n = 0 gives {}. */
char *jobspec_array_literal(const char *const *items, size_t n);

/* Parses a one-dimensional text[] literal as PostgreSQL's array input does:
 * elements quoted or not, backslash escapes, blanks around an unquoted element
 * dropped, an unquoted NULL (any case) is a NULL item. Refused: nested braces
 * (several dimensions), a dimension prefix ("[1:2]="), a NUL byte and any
 * syntax error. On success returns true with *items (malloc'd array of *n
 * malloc'd strings, NULL for a NULL item; release with jobspec_items_free) and
 * *n set; else false with the reason in why. */
bool jobspec_array_parse(const char *text, size_t len, char ***items, size_t *n, char *why,
                         size_t whylen);

/* Releases what jobspec_array_parse returned; NULL is a no-op. */
void jobspec_items_free(char **items, size_t n);

#endif
