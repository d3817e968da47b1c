/* amtacsctl keygen / batch-user / config: keys, sealed passwords, configuration checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int ctl_cmd_keygen(struct ctl *ctl, int argc, char **argv)
{
    const char *secret = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--secret") && i + 1 < argc)
            secret = argv[++i];
        else {
            fprintf(stderr, "usage: amtacsctl keygen [--secret FILE]\n");
            return 2;
        }
    }
    const struct amtacs_config *cfg = NULL;
    if (!secret && ctl->config_path) {
        if (!(cfg = ctl_config(ctl)))
            return 1;
        secret = cfg->key_file;
    }
    if (!secret) {
        fprintf(stderr, "amtacsctl keygen: give --secret FILE or -c CONFIG (its key_file)\n");
        return 2;
    }
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

/* Reads a password: without echo from a terminal (asked twice), else the first
 * line of standard input. Returns sodium-guarded memory or NULL. */
static char *read_password(const char *user)
{
    char *a = sodium_malloc(VAULT_MAX_PASSWORD + 2);
    char *b = sodium_malloc(VAULT_MAX_PASSWORD + 2);
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
        fprintf(stderr, "Password for Batch User %s: ", user);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool got = fgets(a, VAULT_MAX_PASSWORD + 2, stdin) != NULL;
    if (tty) {
        fprintf(stderr, "\nAgain: ");
        got = got && fgets(b, VAULT_MAX_PASSWORD + 2, stdin) != NULL;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!got) {
        fprintf(stderr, "amtacsctl batch-user: no password given\n");
        goto out;
    }
    size_t n = strlen(a);
    if (n && a[n - 1] == '\n')
        a[--n] = '\0';
    if (n && a[n - 1] == '\r')
        a[--n] = '\0';
    if (n > VAULT_MAX_PASSWORD) {
        fprintf(stderr, "amtacsctl batch-user: password longer than %d bytes\n",
                VAULT_MAX_PASSWORD);
        goto out;
    }
    if (tty) {
        size_t m = strlen(b);
        if (m && b[m - 1] == '\n')
            b[--m] = '\0';
        if (m != n || sodium_memcmp(a, b, n)) {
            fprintf(stderr, "amtacsctl batch-user: the two passwords differ\n");
            goto out;
        }
    }
    if (!n) {
        fprintf(stderr, "amtacsctl batch-user: the password is empty\n");
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
    if (!(pw = read_password(name)))
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
    fprintf(stderr, "usage: amtacsctl batch-user set NAME [--public-key FILE]\n"
                    "  reads the password without echo from a terminal, else from stdin\n");
    return 2;
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
