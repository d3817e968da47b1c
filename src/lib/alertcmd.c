#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "amtacs/alertcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

/* One run of the command: waiting, then running. */
struct run {
    char *command;
    char **vars; /* nvars "NAME=VALUE" strings */
    size_t nvars;
    char *connection; /* for log lines; NULL if none */
    struct log_ctx ctx;
    pid_t pid;
    struct run *next;
};

struct alertcmd {
    const struct logger *lg;
    struct run *wait_head, *wait_tail; /* FIFO */
    struct run *running;               /* any order */
    size_t nrunning, nwaiting;
};

/* The daemon's own variables the command gets, when set: how to print and
 * which time zone to print in. Nothing else (no credentials, no PG*). */
static const char *const passed_on[] = {"LANG", "LC_ALL", "TZ"};

static void run_free(struct run *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nvars; i++)
        free(r->vars[i]);
    free(r->vars);
    free(r->command);
    free(r->connection);
    free(r);
}

struct alertcmd *alertcmd_new(const struct logger *lg)
{
    struct alertcmd *a = calloc(1, sizeof *a);
    if (a)
        a->lg = lg;
    return a;
}

void alertcmd_free(struct alertcmd *a)
{
    if (!a)
        return;
    struct run *r = a->wait_head;
    while (r) {
        struct run *next = r->next;
        log_event(a->lg, LOG_WARN, "alert.command_not_run", &r->ctx,
                  "the daemon stops: alert_command was waiting for its turn and is not run "
                  "(the alert stays in acs.alerts)");
        run_free(r);
        r = next;
    }
    /* Running ones are left to end on their own: reaped by whoever adopts them. */
    r = a->running;
    while (r) {
        struct run *next = r->next;
        run_free(r);
        r = next;
    }
    free(a);
}

size_t alertcmd_running(const struct alertcmd *a) { return a->nrunning; }
size_t alertcmd_waiting(const struct alertcmd *a) { return a->nwaiting; }

/* Starts r. 0, or an errno value. */
static int spawn(const struct run *r, pid_t *pid)
{
    size_t n = 0;
    const char **env = calloc(1 + sizeof passed_on / sizeof passed_on[0] + r->nvars + 1,
                              sizeof *env);
    char *kept[sizeof passed_on / sizeof passed_on[0]] = {NULL};
    int rc = 0;
    if (!env)
        return ENOMEM;
    env[n++] = "PATH=" ALERTCMD_PATH;
    for (size_t i = 0; i < sizeof passed_on / sizeof passed_on[0]; i++) {
        const char *v = getenv(passed_on[i]);
        if (!v)
            continue;
        size_t len = strlen(passed_on[i]) + 1 + strlen(v) + 1;
        if (!(kept[i] = malloc(len))) {
            rc = ENOMEM;
            goto out_env;
        }
        strcpy(kept[i], passed_on[i]);
        strcat(kept[i], "=");
        strcat(kept[i], v);
        env[n++] = kept[i];
    }
    for (size_t i = 0; i < r->nvars; i++)
        env[n++] = r->vars[i];
    env[n] = NULL;

    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    if ((rc = posix_spawnattr_init(&attr)))
        goto out_env;
    if ((rc = posix_spawn_file_actions_init(&fa))) {
        posix_spawnattr_destroy(&attr);
        goto out_env;
    }
    /* The daemon blocks SIGTERM, SIGINT and SIGHUP (it reads them from a
     * signalfd) and ignores SIGPIPE: a child would inherit both, and a script
     * that cannot be stopped or that never sees EPIPE is a surprise. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    /* Standard input from /dev/null; nothing above 2: the database, AMT
     * server and HTTP descriptors are not the command's (not all are
     * close-on-exec: libcurl's and libmicrohttpd's need not be). */
    if (!rc)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    char *argv[] = {"/bin/sh", "-c", r->command, NULL};
    if (!rc)
        rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, (char *const *)env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
out_env:
    for (size_t i = 0; i < sizeof passed_on / sizeof passed_on[0]; i++)
        free(kept[i]);
    free(env);
    return rc;
}

/* Starts waiting runs, first queued first, while fewer than max run. */
static void start_waiting(struct alertcmd *a, int max)
{
    size_t cap = max > 0 ? (size_t)max : 1;
    while (a->wait_head && a->nrunning < cap) {
        struct run *r = a->wait_head;
        a->wait_head = r->next;
        if (!a->wait_head)
            a->wait_tail = NULL;
        a->nwaiting--;
        int rc = spawn(r, &r->pid);
        if (rc) {
            log_event(a->lg, LOG_ERROR, "alert.command_failed", &r->ctx,
                      "cannot run alert_command: %s", strerror(rc));
            run_free(r);
            continue;
        }
        r->next = a->running;
        a->running = r;
        a->nrunning++;
        log_event(a->lg, LOG_INFO, "alert.command", &r->ctx,
                  "alert_command started (pid %ld; %zu running, %zu waiting)", (long)r->pid,
                  a->nrunning, a->nwaiting);
    }
}

int alertcmd_run(struct alertcmd *a, const char *command, const char *const *vars, size_t nvars,
                 int max, const struct log_ctx *ctx)
{
    struct run *r = calloc(1, sizeof *r);
    if (!r || !(r->command = strdup(command)) || !(r->vars = calloc(nvars + 1, sizeof *r->vars)))
        goto oom;
    for (; r->nvars < nvars; r->nvars++)
        if (!(r->vars[r->nvars] = strdup(vars[r->nvars])))
            goto oom;
    if (ctx) {
        r->ctx = *ctx;
        r->ctx.connection = NULL;
        if (ctx->connection && !(r->connection = strdup(ctx->connection)))
            goto oom;
        r->ctx.connection = r->connection;
    }
    if (a->wait_tail)
        a->wait_tail->next = r;
    else
        a->wait_head = r;
    a->wait_tail = r;
    a->nwaiting++;
    start_waiting(a, max);
    if (a->nwaiting)
        log_event(a->lg, LOG_INFO, "alert.command_queued", ctx,
                  "alert_command waits for its turn (%zu running, at most %d; %zu waiting)",
                  a->nrunning, max, a->nwaiting);
    return 0;
oom:
    log_event(a->lg, LOG_ERROR, "alert.command_failed", ctx,
              "cannot run alert_command: out of memory");
    run_free(r);
    return -1;
}

void alertcmd_poll(struct alertcmd *a, int max)
{
    for (struct run **p = &a->running; *p;) {
        struct run *r = *p;
        int st;
        pid_t got = waitpid(r->pid, &st, WNOHANG);
        if (got == 0 || (got < 0 && errno == EINTR)) {
            p = &r->next;
            continue;
        }
        if (got > 0 && (!WIFEXITED(st) || WEXITSTATUS(st)))
            log_event(a->lg, LOG_WARN, "alert.command_status", &r->ctx,
                      "alert_command (pid %ld) ended with status %d", (long)r->pid,
                      WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        /* got < 0 (ECHILD): reaped elsewhere; it ended all the same. */
        *p = r->next;
        a->nrunning--;
        run_free(r);
    }
    start_waiting(a, max);
}
