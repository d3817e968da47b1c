/* amtacsctl user / token: the web console's users and API tokens.
 *
 * Secrets stay here: a password is hashed with crypto_pwhash_str (argon2id)
 * and wiped before the database is even connected to; a token is printed once
 * and only its SHA-256 is sent. What the caller may do is PostgreSQL's call:
 * the statements run as whoever --db connects as (acs_admin is needed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "amtacs/ctl.h"
#include "amtacs/webauth.h"

#define USER_MIN_PASSWORD WEBAUTH_PASSWORD_MIN_CHARS /* the API applies the same */
#define USER_MAX_PASSWORD WEBAUTH_PASSWORD_MAX_BYTES
#define TOKEN_BYTES 32
#define TOKEN_PREFIX "amtacs_"

static const char *const roles[] = {"viewer", "scheduler", "operator", "admin"};

static bool role_valid(const char *r)
{
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(r, roles[i]))
            return true;
    return false;
}

/* Runs a statement like ctl_exec(); a refusal by PostgreSQL's rights also says
 * which role the command needs, since "permission denied for function x"
 * alone does not tell an operator what to ask for. */
static PGresult *web_exec(PGconn *conn, const char *cmd, const char *sql, int n,
                          const char *const *params)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    ctl_print_line(stderr, "amtacsctl %s: %s", cmd, msg ? msg : PQerrorMessage(conn));
    if (state && !strcmp(state, "42501"))
        fprintf(stderr, "amtacsctl %s: console users and API tokens are managed by members of "
                        "acs_admin; --db connects as one that is not\n", cmd);
    PQclear(r);
    return NULL;
}

/* Number of UTF-8 characters (continuation bytes are not counted). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Asks for a password and returns its crypto_pwhash_str hash in out (the
 * password itself is wiped before this returns). 0 ok, else the exit status. */
static int hash_password(const char *cmd, const char *user, char out[crypto_pwhash_STRBYTES])
{
    if (sodium_init() < 0) {
        fprintf(stderr, "amtacsctl %s: libsodium failed to start\n", cmd);
        return 1;
    }
    char prompt[128];
    snprintf(prompt, sizeof prompt, "Password for console user %s", user);
    char *pw = ctl_read_password(cmd, prompt, USER_MAX_PASSWORD);
    if (!pw)
        return 1;
    int rc = 1;
    size_t chars = utf8_chars(pw);
    if (chars < USER_MIN_PASSWORD) {
        fprintf(stderr, "amtacsctl %s: the password has %zu characters; at least %d are needed\n",
                cmd, chars, USER_MIN_PASSWORD);
    } else if (crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
        fprintf(stderr, "amtacsctl %s: hashing the password failed (out of memory?)\n", cmd);
    } else {
        rc = 0;
    }
    sodium_free(pw); /* sodium_free wipes before it frees */
    return rc;
}

static int user_add(struct ctl *ctl, const char *name, const char *role)
{
    char hash[crypto_pwhash_STRBYTES];
    int rc = hash_password("user add", name, hash);
    if (rc)
        return rc;
    PGconn *conn = ctl_connect(ctl, "user add");
    if (!conn)
        return 1;
    const char *p[] = {name, role, hash};
    PGresult *r = web_exec(conn, "user add", "SELECT acs.web_user_add($1, $2, $3)", 3, p);
    if (r)
        ctl_print_line(stdout, "user %s added with role %s", name, role);
    PQclear(r);
    PQfinish(conn);
    sodium_memzero(hash, sizeof hash);
    return r ? 0 : 1;
}

static int user_passwd(struct ctl *ctl, const char *name)
{
    char hash[crypto_pwhash_STRBYTES];
    int rc = hash_password("user passwd", name, hash);
    if (rc)
        return rc;
    PGconn *conn = ctl_connect(ctl, "user passwd");
    if (!conn)
        return 1;
    const char *p[] = {name, hash};
    PGresult *r = web_exec(conn, "user passwd", "SELECT acs.web_user_set_password($1, $2)", 2, p);
    if (r)
        ctl_print_line(stdout, "password of user %s changed; %s open session(s) ended", name,
                       PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(conn);
    sodium_memzero(hash, sizeof hash);
    return r ? 0 : 1;
}

/* user role / disable / enable / token revoke: one call whose one value is
 * returned (malloc()ed; "" for void), or NULL after saying why not. */
static char *call1(struct ctl *ctl, const char *cmd, const char *sql, int n, const char *const *p)
{
    PGconn *conn = ctl_connect(ctl, cmd);
    if (!conn)
        return NULL;
    PGresult *r = web_exec(conn, cmd, sql, n, p);
    char *v = r ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (r && !v)
        fprintf(stderr, "amtacsctl %s: out of memory\n", cmd);
    PQclear(r);
    PQfinish(conn);
    return v;
}

/* user list / token list: a view without the hashes, as a table or JSON. */
static int list_view(struct ctl *ctl, const char *cmd, const char *view, bool json)
{
    PGconn *conn = ctl_connect(ctl, cmd);
    if (!conn)
        return 1;
    char sql[512];
    /* view is one of two constants: never outside text */
    snprintf(sql, sizeof sql, "SELECT * FROM acs.%s ORDER BY name", view);
    PGresult *r = web_exec(conn, cmd, sql, 0, NULL);
    if (r && json) {
        ctl_print_json(r, true);
    } else if (r) {
        bool users = !strcmp(view, "web_user_list");
        /* columns: name, role, created_at, created_by, then
         * users: password_changed_at, disabled_at; tokens: revoked_at, last_used_at */
        printf("%-24s %-9s %-8s %-19s %-16s %s\n", "NAME", "ROLE", "STATE", "CREATED",
               "CREATED BY", users ? "PASSWORD CHANGED" : "LAST USED");
        for (int i = 0; i < PQntuples(r); i++) {
            const char *state = users ? (PQgetisnull(r, i, 5) ? "enabled" : "disabled")
                                      : (PQgetisnull(r, i, 4) ? "active" : "revoked");
            int last = users ? 4 : 5;
            ctl_print_line(stdout, "%-24s %-9s %-8s %-19.19s %-16s %.19s", PQgetvalue(r, i, 0),
                           PQgetvalue(r, i, 1), state, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                           PQgetisnull(r, i, last) ? "never" : PQgetvalue(r, i, last));
        }
    }
    int rc = r ? 0 : 1;
    PQclear(r);
    PQfinish(conn);
    return rc;
}

static int user_usage(void)
{
    fprintf(stderr, "usage: amtacsctl user add NAME --role viewer|scheduler|operator|admin\n"
                    "       amtacsctl user passwd NAME\n"
                    "       amtacsctl user role NAME ROLE\n"
                    "       amtacsctl user disable NAME\n"
                    "       amtacsctl user enable NAME\n"
                    "       amtacsctl user list [--json]\n");
    return 2;
}

static int bad_role(const char *cmd, const char *role)
{
    ctl_print_line(stderr, "amtacsctl %s: role '%s' is not one of viewer, scheduler, operator, admin",
                   cmd, role);
    return 2;
}

int ctl_cmd_user(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (!strcmp(sub, "add") && argc == 5 && !strcmp(argv[3], "--role")) {
        if (!role_valid(argv[4]))
            return bad_role("user add", argv[4]);
        return user_add(ctl, argv[2], argv[4]);
    }
    if (!strcmp(sub, "add") && argc == 5 && !strcmp(argv[2], "--role")) {
        if (!role_valid(argv[3]))
            return bad_role("user add", argv[3]);
        return user_add(ctl, argv[4], argv[3]);
    }
    if (!strcmp(sub, "passwd") && argc == 3)
        return user_passwd(ctl, argv[2]);
    char *v = NULL;
    if (!strcmp(sub, "role") && argc == 4) {
        if (!role_valid(argv[3]))
            return bad_role("user role", argv[3]);
        const char *p[] = {argv[2], argv[3]};
        if ((v = call1(ctl, "user role", "SELECT acs.web_user_set_role($1, $2)", 2, p)))
            ctl_print_line(stdout, "user %s: role %s, was %s", argv[2], argv[3], v);
    } else if (!strcmp(sub, "disable") && argc == 3) {
        const char *p[] = {argv[2]};
        if ((v = call1(ctl, "user disable", "SELECT acs.web_user_disable($1)", 1, p)))
            ctl_print_line(stdout, "user %s disabled; %s open session(s) ended", argv[2], v);
    } else if (!strcmp(sub, "enable") && argc == 3) {
        const char *p[] = {argv[2]};
        if ((v = call1(ctl, "user enable", "SELECT acs.web_user_enable($1)::text", 1, p)))
            ctl_print_line(stdout, "user %s enabled", argv[2]);
    } else if (!strcmp(sub, "list") && (argc == 2 || (argc == 3 && !strcmp(argv[2], "--json")))) {
        return list_view(ctl, "user list", "web_user_list", argc == 3);
    } else {
        return user_usage();
    }
    int rc = v ? 0 : 1;
    free(v);
    return rc;
}

/* token create: 32 random bytes, shown once as amtacs_ + base64url; the
 * database gets their SHA-256 (of the bytes, not of the text). */
static int token_create(struct ctl *ctl, const char *name, const char *role)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "amtacsctl token create: libsodium failed to start\n");
        return 1;
    }
    unsigned char raw[TOKEN_BYTES], digest[crypto_hash_sha256_BYTES];
    char text[sodium_base64_ENCODED_LEN(TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char hex[2 + crypto_hash_sha256_BYTES * 2 + 1] = "\\x";
    randombytes_buf(raw, sizeof raw);
    crypto_hash_sha256(digest, raw, sizeof raw);
    sodium_bin2hex(hex + 2, sizeof hex - 2, digest, sizeof digest);
    int rc = 1;
    PGconn *conn = ctl_connect(ctl, "token create");
    if (conn) {
        const char *p[] = {name, role, hex};
        PGresult *r = web_exec(conn, "token create", "SELECT acs.api_token_create($1, $2, $3)", 3, p);
        if (r) {
            /* printed only once stored: a token the database does not know is no use */
            sodium_bin2base64(text, sizeof text, raw, sizeof raw,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING);
            printf("%s%s\n", TOKEN_PREFIX, text);
            fflush(stdout);
            ctl_print_line(stderr, "token %s created with role %s; it is shown this once and "
                                   "stored only as its SHA-256", name, role);
            rc = 0;
        }
        PQclear(r);
        PQfinish(conn);
    }
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(text, sizeof text);
    return rc;
}

static int token_usage(void)
{
    fprintf(stderr, "usage: amtacsctl token create --name NAME --role viewer|scheduler|operator|admin\n"
                    "       amtacsctl token list [--json]\n"
                    "       amtacsctl token revoke NAME\n");
    return 2;
}

int ctl_cmd_token(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (!strcmp(sub, "create")) {
        const char *name = NULL, *role = NULL;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--name") && i + 1 < argc) {
                name = argv[++i];
            } else if (!strcmp(argv[i], "--role") && i + 1 < argc) {
                role = argv[++i];
            } else {
                ctl_print_line(stderr, "amtacsctl token create: unexpected argument '%s'", argv[i]);
                return token_usage();
            }
        }
        if (!name || !role)
            return token_usage();
        if (!role_valid(role))
            return bad_role("token create", role);
        return token_create(ctl, name, role);
    }
    if (!strcmp(sub, "list") && (argc == 2 || (argc == 3 && !strcmp(argv[2], "--json"))))
        return list_view(ctl, "token list", "api_token_list", argc == 3);
    if (!strcmp(sub, "revoke") && argc == 3) {
        const char *p[] = {argv[2]};
        char *v = call1(ctl, "token revoke", "SELECT acs.api_token_revoke($1)", 1, p);
        if (v)
            ctl_print_line(stdout, "token %s %s", argv[2],
                           !strcmp(v, "t") ? "revoked" : "was revoked already");
        int rc = v ? 0 : 1;
        free(v);
        return rc;
    }
    return token_usage();
}
