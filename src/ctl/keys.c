/* amtacsctl keygen / rekey / batch-user / config: keys, sealed passwords,
 * configuration checks. */
#define _DEFAULT_SOURCE /* flock, O_DIRECTORY */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "amtacs/config.h"
#include "amtacs/ctl.h"
#include "amtacs/vault.h"

/* The public half lives next to the secret key file, with ".pub" appended. */
static char *public_path_for(const char *secret)
{
    size_t n = strlen(secret) + 5;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.pub", secret);
    return p;
}

/* The secret key file a command works on: --secret FILE, else the
 * configuration's key_file (then *cfg holds the configuration, which the
 * caller frees). Returns 0, or the exit status after saying what is wrong. */
static int secret_key_arg(struct ctl *ctl, const char *cmd, const char *usage, int argc,
                          char **argv, const struct amtacs_config **cfg, const char **secret)
{
    *cfg = NULL;
    *secret = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--secret") && i + 1 < argc) {
            *secret = argv[++i];
        } else {
            fprintf(stderr, "usage: %s\n", usage);
            return 2;
        }
    }
    if (!*secret && ctl->config_path) {
        if (!(*cfg = ctl_config(ctl)))
            return 1;
        *secret = (*cfg)->key_file;
    }
    if (!*secret) {
        fprintf(stderr, "amtacsctl %s: give --secret FILE or -c CONFIG (its key_file)\n", cmd);
        return 2;
    }
    return 0;
}

int ctl_cmd_keygen(struct ctl *ctl, int argc, char **argv)
{
    const char *secret;
    const struct amtacs_config *cfg;
    int bad = secret_key_arg(ctl, "keygen", "amtacsctl keygen [--secret FILE]", argc, argv, &cfg,
                             &secret);
    if (bad)
        return bad;
    char *pub = public_path_for(secret);
    char err[512];
    int rc = 1;
    if (!pub || vault_init()) {
        fprintf(stderr, "amtacsctl keygen: out of memory\n");
    } else if (vault_keygen(secret, pub, err, sizeof err)) {
        fprintf(stderr, "amtacsctl keygen: %s\n", err);
    } else {
        struct vault_pub *vp = vault_pub_load(pub, err, sizeof err);
        printf("secret key %s (mode 0600: give it to the daemon's user only)\n"
               "public key %s (for amtacsctl batch-user set)\nkey id %s\n",
               secret, pub, vp ? vault_pub_id(vp) : "?");
        vault_pub_free(vp);
        rc = 0;
    }
    free(pub);
    config_free(cfg);
    return rc;
}

char *ctl_read_password(const char *cmd, const char *prompt, size_t max)
{
    char *a = sodium_malloc(max + 2);
    char *b = sodium_malloc(max + 2);
    char *result = NULL;
    if (!a || !b)
        goto out;
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        if (tcgetattr(STDIN_FILENO, &old))
            goto out;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        fprintf(stderr, "%s: ", prompt);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool got = fgets(a, (int)(max + 2), stdin) != NULL;
    if (tty) {
        fprintf(stderr, "\nAgain: ");
        got = got && fgets(b, (int)(max + 2), stdin) != NULL;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!got) {
        fprintf(stderr, "amtacsctl %s: no password given\n", cmd);
        goto out;
    }
    size_t n = strlen(a);
    if (n && a[n - 1] == '\n')
        a[--n] = '\0';
    if (n && a[n - 1] == '\r')
        a[--n] = '\0';
    if (n > max) {
        fprintf(stderr, "amtacsctl %s: password longer than %zu bytes\n", cmd, max);
        goto out;
    }
    if (tty) {
        size_t m = strlen(b);
        if (m && b[m - 1] == '\n')
            b[--m] = '\0';
        if (m != n || sodium_memcmp(a, b, n)) {
            fprintf(stderr, "amtacsctl %s: the two passwords differ\n", cmd);
            goto out;
        }
    }
    if (!n) {
        fprintf(stderr, "amtacsctl %s: the password is empty\n", cmd);
        goto out;
    }
    result = a;
    a = NULL;
out:
    if (a)
        sodium_free(a);
    if (b)
        sodium_free(b);
    return result;
}

static int batch_user_set(struct ctl *ctl, const char *name, const char *pubfile)
{
    const struct amtacs_config *cfg = NULL;
    char *derived = NULL;
    if (!pubfile && ctl->config_path) {
        if (!(cfg = ctl_config(ctl)))
            return 1;
        pubfile = derived = public_path_for(cfg->key_file);
    }
    if (!pubfile)
        pubfile = getenv("AMTACS_PUBLIC_KEY");
    if (!pubfile) {
        fprintf(stderr, "amtacsctl batch-user set: give --public-key FILE, $AMTACS_PUBLIC_KEY "
                        "or -c CONFIG (its key_file + .pub)\n");
        config_free(cfg);
        return 2;
    }
    int rc = 1;
    char err[512];
    char *pw = NULL;
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    PGconn *conn = NULL;
    struct vault_pub *pub = NULL;
    if (vault_init() || !(pub = vault_pub_load(pubfile, err, sizeof err))) {
        fprintf(stderr, "amtacsctl batch-user set: %s\n", pub ? "libsodium failed" : err);
        goto out;
    }
    char prompt[300];
    snprintf(prompt, sizeof prompt, "Password for Batch User %s", name);
    if (!(pw = ctl_read_password("batch-user", prompt, VAULT_MAX_PASSWORD)))
        goto out;
    /* Sealed here: PostgreSQL never sees the password, not even as a parameter. */
    if (vault_seal(pub, name, pw, strlen(pw), &sealed, &sealed_len, err, sizeof err)) {
        fprintf(stderr, "amtacsctl batch-user set: %s\n", err);
        goto out;
    }
    sodium_free(pw);
    pw = NULL;
    if (!(conn = ctl_connect(ctl, "batch-user set")))
        goto out;
    const char *p[] = {name, vault_pub_id(pub), (const char *)sealed};
    int lens[] = {0, 0, (int)sealed_len};
    int fmts[] = {0, 0, 1};
    PGresult *r = PQexecParams(conn,
                               "INSERT INTO acs.batch_users (name, key_id, sealed_password) "
                               "VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE "
                               "SET key_id = excluded.key_id, "
                               "sealed_password = excluded.sealed_password",
                               3, NULL, p, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "amtacsctl batch-user set: %s", PQresultErrorMessage(r));
    } else {
        printf("password of Batch User %s stored, sealed with key %s\n", name, vault_pub_id(pub));
        rc = 0;
    }
    PQclear(r);
out:
    if (pw)
        sodium_free(pw);
    free(sealed);
    vault_pub_free(pub);
    PQfinish(conn);
    free(derived);
    config_free(cfg);
    return rc;
}

/* batch-user list [--json]: names, key ids and dates; never the sealed bytes. */
static int batch_user_list(struct ctl *ctl, bool json)
{
    PGconn *conn = ctl_connect(ctl, "batch-user list");
    if (!conn)
        return 1;
    int rc = 1;
    PGresult *r = NULL;
    if (json) {
        r = ctl_exec(conn, "batch-user list",
                     "SELECT coalesce(json_agg(json_build_object('name', name, 'key_id', key_id, "
                     "'created_at', created_at, 'updated_at', updated_at) ORDER BY name), "
                     "'[]')::text FROM acs.batch_users",
                     0, NULL);
        if (r) {
            printf("%s\n", PQgetvalue(r, 0, 0));
            rc = 0;
        }
    } else {
        r = ctl_exec(conn, "batch-user list",
                     "SELECT name, key_id, date_trunc('second', created_at)::text, "
                     "date_trunc('second', updated_at)::text FROM acs.batch_users ORDER BY name",
                     0, NULL);
        if (r) {
            printf("%-24s %-16s %-25s %s\n", "NAME", "KEY ID", "CREATED", "UPDATED");
            for (int i = 0; i < PQntuples(r); i++)
                printf("%-24s %-16s %-25s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                       PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
            rc = 0;
        }
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

/* batch-user delete NAME: refused while a connection logs on with that user
 * (acs.connections.batch_user, which the daemon records from its configuration),
 * since its next job would end AUTHENTICATION_ERROR. */
static int batch_user_delete(struct ctl *ctl, const char *name)
{
    PGconn *conn = ctl_connect(ctl, "batch-user delete");
    if (!conn)
        return 1;
    const char *p[] = {name};
    /* One statement: the check and the delete see the same connections. */
    PGresult *r = ctl_exec(conn, "batch-user delete",
                           "WITH d AS (DELETE FROM acs.batch_users WHERE name = $1 "
                           "AND NOT EXISTS (SELECT 1 FROM acs.connections c "
                           "WHERE c.batch_user = $1) RETURNING name) "
                           "SELECT (SELECT count(*) FROM d), "
                           "(SELECT string_agg(c.name, ', ' ORDER BY c.name) "
                           "FROM acs.connections c WHERE c.batch_user = $1), "
                           "EXISTS (SELECT 1 FROM acs.batch_users b WHERE b.name = $1)",
                           1, p);
    int rc = 1;
    if (!r)
        goto out;
    if (strcmp(PQgetvalue(r, 0, 0), "0")) {
        printf("Batch User %s deleted\n", name);
        rc = 0;
    } else if (!PQgetisnull(r, 0, 1)) {
        fprintf(stderr,
                "amtacsctl batch-user delete: Batch User %s is used by connection(s) %s; "
                "give them another batch_user in the daemon's configuration first\n",
                name, PQgetvalue(r, 0, 1));
    } else {
        fprintf(stderr, "amtacsctl batch-user delete: no Batch User %s\n", name);
    }
out:
    PQclear(r);
    PQfinish(conn);
    return rc;
}

static void batch_user_usage(void)
{
    fprintf(stderr,
            "usage: amtacsctl batch-user set NAME [--public-key FILE]\n"
            "         reads the password without echo from a terminal, else from stdin\n"
            "       amtacsctl batch-user list [--json]\n"
            "       amtacsctl batch-user delete NAME\n");
}

int ctl_cmd_batch_user(struct ctl *ctl, int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "set")) {
        const char *pub = NULL;
        for (int i = 3; i < argc; i++) {
            if (!strcmp(argv[i], "--public-key") && i + 1 < argc) {
                pub = argv[++i];
            } else {
                fprintf(stderr, "amtacsctl batch-user set: unexpected argument '%s'\n", argv[i]);
                return 2;
            }
        }
        return batch_user_set(ctl, argv[2], pub);
    }
    if (argc >= 2 && !strcmp(argv[1], "list")) {
        if (argc == 2 || (argc == 3 && !strcmp(argv[2], "--json")))
            return batch_user_list(ctl, argc == 3);
    } else if (argc == 3 && !strcmp(argv[1], "delete")) {
        return batch_user_delete(ctl, argv[2]);
    }
    batch_user_usage();
    return 2;
}

/* ------------------------------------------------------------ rekey */

/*
 * rekey re-seals every Batch User password under a new key pair. The files
 * (KEY is the configured key_file):
 *   KEY.new (+ .pub)  the key being rotated in; made first
 *   KEY.old           the key being retired; removed last
 * The daemon loads all three (vault_secret_load), so at every step the key
 * that a row names is on disk, and a kill -9 anywhere leaves every password
 * openable. Running rekey again resumes: with KEY.new present it re-seals
 * under KEY.new; with only KEY.old present the rotation reached its renames
 * and is finished (rows still on other keys re-sealed under KEY, KEY.old
 * removed). See docs/keys.md.
 */

struct rekey_paths {
    char *key, *pub, *key_new, *pub_new, *key_old, *key_old_tmp, *dir;
};

static char *concat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

static void rekey_paths_free(struct rekey_paths *p)
{
    free(p->key);
    free(p->pub);
    free(p->key_new);
    free(p->pub_new);
    free(p->key_old);
    free(p->key_old_tmp);
    free(p->dir);
}

static int rekey_paths_make(struct rekey_paths *p, const char *key)
{
    memset(p, 0, sizeof *p);
    p->key = strdup(key);
    p->pub = concat(key, ".pub");
    p->key_new = concat(key, ".new");
    p->pub_new = concat(key, ".new.pub");
    p->key_old = concat(key, ".old");
    p->key_old_tmp = concat(key, ".old.tmp");
    const char *slash = strrchr(key, '/');
    p->dir = slash ? strndup(key, slash == key ? 1 : (size_t)(slash - key)) : strdup(".");
    return p->key && p->pub && p->key_new && p->pub_new && p->key_old && p->key_old_tmp &&
                   p->dir
               ? 0
               : -1;
}

/* For tests only: AMTACS_CRASH_AT=POINT makes rekey die at that point the way
 * kill -9 would (no cleanup, exit status 137), so that a test can show every
 * state in between is safe. Nothing else reads this variable. */
#ifdef AMTACS_TEST_HOOKS
static void crash_point(const char *point)
{
    const char *at = getenv("AMTACS_CRASH_AT");
    if (at && !strcmp(at, point)) {
        fflush(stdout); /* only what was printed; files and database as they are */
        _exit(137);
    }
}
#else
/* Only test builds (cmake -DAMTACS_TEST_HOOKS=ON) have the hook. */
static void crash_point(const char *point) { (void)point; }
#endif

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Makes renames and links durable across a power cut as well. Best effort. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* In one transaction, re-seals under `pub` every row not already sealed with
 * its key in the current format: opened with the keyring, sealed for the same user and the new key
 * id, written as a binary parameter (PostgreSQL sees sealed bytes only). Any
 * row that does not open stops the whole pass before anything is written.
 * Adds the count to *moved. 0 or -1. */
static int reseal_all(PGconn *conn, const struct vault_secret *ring, const struct vault_pub *pub,
                      int *moved)
{
    const char *target = vault_pub_id(pub);
    int rc = -1, failed = 0, n = 0;
    char err[512];
    PGresult *rows = NULL;
    PGresult *r = ctl_exec(conn, "rekey", "BEGIN", 0, NULL);
    if (!r)
        return -1;
    PQclear(r);
    char version[8];
    snprintf(version, sizeof version, "%d", VAULT_SEALED_VERSION);
    const char *p[] = {target, version};
    /* Binary results: the sealed bytes as they are (text columns arrive as
     * their bytes, NUL-terminated by libpq). FOR UPDATE: a concurrent
     * batch-user set of the same user waits for us rather than being lost.
     * A row in an older format (version 1: unpadded, its length telling the
     * password's) is re-sealed even when its key is the target already. */
    rows = PQexecParams(conn,
                        "SELECT name, key_id, sealed_password FROM acs.batch_users "
                        "WHERE key_id <> $1 OR get_byte(sealed_password, 0) <> $2::int "
                        "ORDER BY name FOR UPDATE",
                        2, NULL, p, NULL, NULL, 1);
    if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
        fprintf(stderr, "amtacsctl rekey: %s", PQresultErrorMessage(rows));
        goto out;
    }
    n = PQntuples(rows);
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(rows, i, 0), *from = PQgetvalue(rows, i, 1);
        char *pw = NULL;
        unsigned char *sealed = NULL;
        size_t sealed_len = 0;
        if (vault_open(ring, from, name, (const unsigned char *)PQgetvalue(rows, i, 2),
                       (size_t)PQgetlength(rows, i, 2), &pw, err, sizeof err) ||
            vault_seal(pub, name, pw, strlen(pw), &sealed, &sealed_len, err, sizeof err)) {
            fprintf(stderr, "amtacsctl rekey: %s\n", err);
            failed++;
            vault_password_free(pw);
            continue;
        }
        vault_password_free(pw); /* wiped at once: only the sealed form goes on */
        const char *up[] = {name, target, (const char *)sealed};
        int lens[] = {0, 0, (int)sealed_len};
        int fmts[] = {0, 0, 1};
        r = PQexecParams(conn,
                         "UPDATE acs.batch_users SET key_id = $2, sealed_password = $3 "
                         "WHERE name = $1",
                         3, NULL, up, lens, fmts, 0);
        free(sealed);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "amtacsctl rekey: %s", PQresultErrorMessage(r));
            PQclear(r);
            goto out;
        }
        PQclear(r);
        printf("rekey: %s re-sealed: key %s -> %s\n", name, from, target);
    }
    if (failed) {
        fprintf(stderr,
                "amtacsctl rekey: %d password(s) do not open with the keys on disk; nothing "
                "was changed in the database. Store them again (batch-user set NAME) or delete "
                "them (batch-user delete NAME), then run rekey again.\n",
                failed);
        goto out;
    }
    if (!(r = ctl_exec(conn, "rekey", "COMMIT", 0, NULL)))
        goto out;
    PQclear(r);
    *moved += n;
    rc = 0;
out:
    if (rc)
        PQclear(PQexec(conn, "ROLLBACK"));
    PQclear(rows);
    return rc;
}

/* Makes KEY.pub the public half of the current key (target): after a crash
 * between the renames it may still be the old one, or missing. */
static int fix_public_file(const struct rekey_paths *p, const struct vault_pub *target)
{
    char err[512];
    if (exists(p->pub_new) && rename(p->pub_new, p->pub)) {
        fprintf(stderr, "amtacsctl rekey: %s -> %s: %s\n", p->pub_new, p->pub, strerror(errno));
        return -1;
    }
    struct vault_pub *cur = vault_pub_load(p->pub, err, sizeof err);
    bool ok = cur && !strcmp(vault_pub_id(cur), vault_pub_id(target));
    vault_pub_free(cur);
    if (ok)
        return 0;
    if (vault_pub_save(target, p->pub, 1, err, sizeof err)) {
        fprintf(stderr, "amtacsctl rekey: %s\n", err);
        return -1;
    }
    printf("rekey: wrote %s (key %s)\n", p->pub, vault_pub_id(target));
    return 0;
}

static int count_not_on(PGconn *conn, const char *key_id, long *n)
{
    const char *p[] = {key_id};
    PGresult *r = ctl_exec(conn, "rekey",
                           "SELECT count(*) FROM acs.batch_users WHERE key_id <> $1", 1, p);
    if (!r)
        return -1;
    *n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int ctl_cmd_rekey(struct ctl *ctl, int argc, char **argv)
{
    const char *secret;
    const struct amtacs_config *cfg;
    int bad = secret_key_arg(ctl, "rekey",
                             "amtacsctl [-c CONFIG | --db CONNINFO] rekey [--secret FILE]", argc,
                             argv, &cfg, &secret);
    if (bad)
        return bad;
    int rc = 1, lock_fd = -1, moved = 0;
    char err[512], ids[200];
    struct rekey_paths p;
    PGconn *conn = NULL;
    struct vault_secret *ring = NULL;
    struct vault_pub *target = NULL;
    if (rekey_paths_make(&p, secret) || vault_init()) {
        fprintf(stderr, "amtacsctl rekey: out of memory or libsodium failed\n");
        goto out;
    }
    /* One rekey at a time per key directory; the lock goes with the process,
     * so a killed rekey never leaves it held. */
    lock_fd = open(p.dir, O_RDONLY | O_DIRECTORY);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "amtacsctl rekey: %s: %s\n", p.dir,
                errno == EWOULDBLOCK ? "another amtacsctl rekey is running on this key"
                                     : strerror(errno));
        goto out;
    }
    /* Check everything before changing anything: the key files and the database. */
    if (!(ring = vault_secret_load(p.key, err, sizeof err))) {
        fprintf(stderr, "amtacsctl rekey: %s\n", err);
        goto out;
    }
    if (!(conn = ctl_connect(ctl, "rekey")))
        goto out;
    if (!exists(p.key_new) && !exists(p.key_old)) {
        if (vault_keygen(p.key_new, p.pub_new, err, sizeof err)) {
            fprintf(stderr, "amtacsctl rekey: %s\n", err);
            goto out;
        }
        crash_point("rekey-after-keygen");
        vault_secret_free(ring);
        if (!(ring = vault_secret_load(p.key, err, sizeof err))) {
            fprintf(stderr, "amtacsctl rekey: %s\n", err);
            goto out;
        }
        printf("rekey: new key pair %s in %s (+ .pub)\n",
               vault_secret_slot_id(ring, VAULT_SLOT_NEW), p.key_new);
    }
    /* Decided now: vault_open() may reload the keyring, and borrowed ids with it. */
    const char *new_id = vault_secret_slot_id(ring, VAULT_SLOT_NEW);
    bool rotating = new_id != NULL;
    /* Without KEY.new, an earlier rekey got past its renames: KEY is the target. */
    char target_id[VAULT_KEY_ID_LEN + 1];
    snprintf(target_id, sizeof target_id, "%s", rotating ? new_id : vault_secret_id(ring));
    vault_secret_ids(ring, ids, sizeof ids);
    printf("rekey: keys on disk: %s; target key %s\n", ids, target_id);
    if (!(target = vault_secret_pub(ring, target_id, err, sizeof err))) {
        fprintf(stderr, "amtacsctl rekey: %s\n", err);
        goto out;
    }
    /* A crash inside keygen can leave KEY.new without its .pub. */
    if (rotating && !exists(p.pub_new) && vault_pub_save(target, p.pub_new, 0, err, sizeof err)) {
        fprintf(stderr, "amtacsctl rekey: %s\n", err);
        goto out;
    }
    if (reseal_all(conn, ring, target, &moved))
        goto out;
    crash_point("rekey-after-commit");

    if (rotating) {
        /* KEY -> KEY.old as a second name (a link: KEY never goes missing),
         * replacing an earlier KEY.old whose rows the pass above moved. */
        unlink(p.key_old_tmp);
        bool linked = !link(p.key, p.key_old_tmp) && !rename(p.key_old_tmp, p.key_old);
        int saved = errno;
        /* Also on success: when KEY.old already is KEY (a rekey killed after
         * this step), rename() leaves both names in place. */
        unlink(p.key_old_tmp);
        if (!linked) {
            fprintf(stderr, "amtacsctl rekey: %s -> %s: %s\n", p.key, p.key_old, strerror(saved));
            goto out;
        }
        sync_dir(p.dir);
        crash_point("rekey-after-link");
        if (rename(p.key_new, p.key)) {
            fprintf(stderr, "amtacsctl rekey: %s -> %s: %s\n", p.key_new, p.key, strerror(errno));
            goto out;
        }
        if (rename(p.pub_new, p.pub)) {
            fprintf(stderr, "amtacsctl rekey: %s -> %s: %s\n", p.pub_new, p.pub, strerror(errno));
            goto out;
        }
        sync_dir(p.dir);
        crash_point("rekey-after-rename");
        printf("rekey: key %s is now current in %s (previous key kept as %s until no password "
               "needs it)\n",
               target_id, p.key, p.key_old);
    }
    if (fix_public_file(&p, target))
        goto out;
    /* Again, now that KEY.pub seals for the new key: catches a password set
     * with the old public key while the first pass ran. */
    if (reseal_all(conn, ring, target, &moved))
        goto out;
    long left = 0;
    if (count_not_on(conn, target_id, &left))
        goto out;
    if (left) {
        fprintf(stderr,
                "amtacsctl rekey: %ld password(s) were stored under another key meanwhile; "
                "%s is kept; run rekey again\n",
                left, p.key_old);
        goto out;
    }
    if (exists(p.key_old)) {
        if (unlink(p.key_old)) {
            fprintf(stderr, "amtacsctl rekey: %s: %s\n", p.key_old, strerror(errno));
            goto out;
        }
        sync_dir(p.dir);
        printf("rekey: removed %s: no password is sealed with another key\n", p.key_old);
    }
    printf("rekey: done: %d password(s) re-sealed; every password is sealed with key %s\n", moved,
           target_id);
    rc = 0;
out:
    vault_pub_free(target);
    vault_secret_free(ring);
    PQfinish(conn);
    if (lock_fd >= 0)
        close(lock_fd);
    rekey_paths_free(&p);
    config_free(cfg);
    return rc;
}

int ctl_cmd_config(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "check") || argc > 3) {
        fprintf(stderr, "usage: amtacsctl config check [FILE]\n");
        return 2;
    }
    const char *path = argc == 3 ? argv[2] : ctl->config_path;
    if (!path) {
        fprintf(stderr, "amtacsctl config check: give FILE or -c FILE\n");
        return 2;
    }
    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load(path, &errs);
    if (!cfg) {
        config_errors_print(errs, stderr);
        fprintf(stderr, "%zu problem(s) in %s\n", config_errors_count(errs), path);
        config_errors_free(errs);
        return 1;
    }
    printf("%s: configuration OK (%zu connection(s))\n", path, cfg->n_connections);
    config_free(cfg);
    return 0;
}
