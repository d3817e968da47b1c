#include "amtacs/webapi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "amtacs/db.h"
#include "amtacs/jsoncheck.h"
#include "amtacs/webevents.h"
#include "amtacs/openapi.h"
#include "amtacs/webauth.h"
#include "amtacs/webpool.h"
#include "amtacs/webstatic.h"
#include "webint.h"

#define API "/api/v1/"
#define MAX_QUEUE 512        /* requests waiting for a worker; beyond: 503 */
#define PASSWORD_MAX 1024    /* bytes of a password in a login */
#define NAME_MAX_LEN 256     /* bytes of a user name in a login */
#define PAGE_DEFAULT 50
#define PAGE_MAX 500

/* ------------------------------------------------------------ answers */

static const char *status_title(unsigned s)
{
    switch (s) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return s >= 500 ? "Internal Server Error" : "Error";
    }
}

void json_out(struct httpserv_req *req, unsigned status, const char *ctype, cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    struct buf *b = httpserv_reply_body(req);
    buf_reset(b);
    if (!text || buf_puts(b, text) || buf_putc(b, '\n')) {
        buf_reset(b); /* an empty 500 */
        httpserv_reply(req, 500, CT_TEXT);
    } else {
        httpserv_reply(req, status, ctype);
    }
    free(text);
}

/* RFC 9457: type, title, status, detail. */
void problem(struct httpserv_req *req, unsigned status, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "type", "about:blank");
        cJSON_AddStringToObject(o, "title", status_title(status));
        cJSON_AddNumberToObject(o, "status", status);
        cJSON_AddStringToObject(o, "detail", detail);
    }
    json_out(req, status, CT_PROBLEM, o);
    if (status == 401)
        httpserv_reply_header(req, "WWW-Authenticate", "Bearer realm=\"amtacs-web\"");
}

void problemf(struct httpserv_req *req, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    problem(req, status, msg);
}

/* A JSON document PostgreSQL made, passed through. */
void raw_json(struct httpserv_req *req, unsigned status, const char *text, size_t len)
{
    struct buf *b = httpserv_reply_body(req);
    buf_reset(b);
    if (buf_append(b, text, len) || buf_putc(b, '\n')) {
        problem(req, 500, "the answer is too large");
        return;
    }
    httpserv_reply(req, status, CT_JSON);
}

/* ------------------------------------------------------------ database */

/* The answer to a statement PostgreSQL refused: its own message, with the
 * status its SQLSTATE stands for. */
void sql_problem(struct ctx *c, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!st || !msg || PQstatus(c->db) != CONNECTION_OK) {
        log_event(c->a->lg, LOG_WARN, "web.db_failed", NULL, "%s", PQerrorMessage(c->db));
        problem(c->req, 503, "the database is not reachable; try again");
        return;
    }
    unsigned status;
    if (!strcmp(st, "42501"))
        status = 403; /* insufficient_privilege: the role may not */
    else if (!strcmp(st, "P0002"))
        status = 404; /* no_data_found */
    else if (!strcmp(st, "23505") || !strcmp(st, "55000") || !strcmp(st, "55006") ||
             !strncmp(st, "40", 2))
        status = 409; /* exists already, wrong state, still in use, serialization */
    else if (!strcmp(st, "P0001") || !strncmp(st, "22", 2) || !strncmp(st, "23", 2))
        status = 400; /* what our functions say of a bad value */
    else if (!strcmp(st, "57014"))
        status = 503; /* statement_timeout */
    else
        status = 500;
    if (status == 500) {
        log_event(c->a->lg, LOG_WARN, "web.db_error", NULL, "SQLSTATE %s: %s", st, msg);
        problem(c->req, 500, "the database could not carry out the request");
    } else if (status == 503 && !strcmp(st, "57014")) {
        problem(c->req, 503, "the database did not answer in time; try again");
    } else {
        problem(c->req, status, msg);
    }
}

/* Runs a statement with text parameters; NULL (answer set) if it failed. */
PGresult *run(struct ctx *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c->db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
        return r;
    sql_problem(c, r);
    PQclear(r);
    return NULL;
}

bool run0(struct ctx *c, const char *sql)
{
    PGresult *r = run(c, sql, 0, NULL);
    PQclear(r);
    return r != NULL;
}

/* ------------------------------------------------------------ pipelines
 *
 * A request's statements go out together where they can: BEGIN with the
 * statement that finds the caller, a handler's last statement with COMMIT.
 * Each round trip to PostgreSQL costs both processes a wake-up, and a
 * submit went from five to two. The statements run on every request are
 * prepared once per connection: parsing and planning them again each time
 * cost more than running them. */

/* The statements prepared once per connection; the number is the bit in
 * webpool's prepared set and the name "s<number>". */
enum prep {
    PREP_NONE = -1,
    PREP_BEGIN,
    PREP_COMMIT,
    PREP_AUTH_TOKEN,
    PREP_AUTH_SESSION,
    PREP_SUBMIT,
    PREP_SUBMIT_MANY,
    PREP_IDEM_CLAIM,
    PREP_IDEM_RECORD,
};

struct stmt {
    enum prep prep;
    const char *sql;
    int n;
    const char *const *params;
};

static const struct stmt BEGIN_STMT = {PREP_BEGIN, "BEGIN", 0, NULL};
static const struct stmt COMMIT_STMT = {PREP_COMMIT, "COMMIT", 0, NULL};

/* The next result of a statement in the pipeline, and the NULL that ends
 * it; NULL if the connection broke. */
static PGresult *next_result(PGconn *db)
{
    PGresult *r = PQgetResult(db);
    if (r) {
        PGresult *end = PQgetResult(db);
        if (end) { /* not a pipeline's answer: the connection is unusable */
            PQclear(end);
            PQclear(r);
            return NULL;
        }
    }
    return r;
}

/* Sends n statements in one round trip and reads their results into out
 * (each a result the caller clears, or NULL). Once one fails, the rest
 * are not run (PGRES_PIPELINE_ABORTED). false if the connection failed
 * underway; then it is dropped and out holds what was read. */
static bool pipeline(struct ctx *c, const struct stmt *s, size_t n, PGresult **out)
{
    char name[8];
    bool sent_prepare[8] = {false};
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (n > sizeof sent_prepare || !PQenterPipelineMode(c->db))
        goto broken;
    for (size_t i = 0; i < n; i++) {
        int ok;
        if (s[i].prep == PREP_NONE) {
            ok = PQsendQueryParams(c->db, s[i].sql, s[i].n, NULL, s[i].params, NULL, NULL, 0);
        } else {
            snprintf(name, sizeof name, "s%d", (int)s[i].prep);
            if (!webpool_is_prepared(c->pc, (unsigned)s[i].prep)) {
                if (!PQsendPrepare(c->db, name, s[i].sql, s[i].n, NULL))
                    goto broken;
                sent_prepare[i] = true;
            }
            ok = PQsendQueryPrepared(c->db, name, s[i].n, s[i].params, NULL, NULL, 0);
        }
        if (!ok)
            goto broken;
    }
    if (!PQpipelineSync(c->db))
        goto broken;
    for (size_t i = 0; i < n; i++) {
        if (sent_prepare[i]) {
            PGresult *p = next_result(c->db);
            if (!p)
                goto broken;
            if (PQresultStatus(p) == PGRES_COMMAND_OK) {
                webpool_mark_prepared(c->pc, (unsigned)s[i].prep);
                PQclear(p);
            } else { /* its statement is aborted: the reason is the prepare's */
                out[i] = p;
                PGresult *skipped = next_result(c->db);
                PQclear(skipped);
                if (!skipped)
                    goto broken;
                continue;
            }
        }
        if (!(out[i] = next_result(c->db)))
            goto broken;
    }
    PGresult *sync = PQgetResult(c->db);
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (synced && PQexitPipelineMode(c->db))
        return true;
broken:
    log_event(c->a->lg, LOG_WARN, "web.db_failed", NULL, "%s", PQerrorMessage(c->db));
    webpool_drop(c->pc);
    c->db = NULL;
    return false;
}

static bool ok_result(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return r && (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK);
}

/* The first failure among n results as the answer (a pipeline stops at its
 * first failure: the later ones were not run). */
static void pipeline_problem(struct ctx *c, PGresult **r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ok_result(r[i]) && PQresultStatus(r[i]) != PGRES_PIPELINE_ABORTED) {
            sql_problem(c, r[i]);
            return;
        }
    problem(c->req, 503, "the database is not reachable; try again");
}

static bool lost_connection(const struct ctx *c, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return !c->db || PQstatus(c->db) == CONNECTION_BAD || !st || !strncmp(st, "57P", 3) ||
           !strncmp(st, "08", 2);
}

/* The first statements of a request. A connection the database dropped
 * (a restart, a failover) is noticed only when used: then it is made anew
 * and the statements, which changed nothing, are sent once more. true when
 * all succeeded (results in out, cleared by the caller); false with the
 * answer set and out cleared. */
static bool run_first(struct ctx *c, const struct stmt *s, size_t n, PGresult **out)
{
    for (int attempt = 0;; attempt++) {
        bool sent = pipeline(c, s, n, out);
        size_t good = 0;
        while (sent && good < n && ok_result(out[good]))
            good++;
        if (good == n)
            return true;
        PGresult *failed = sent ? out[good] : NULL;
        if (attempt == 0 && lost_connection(c, failed)) {
            char err[300];
            for (size_t i = 0; i < n; i++)
                PQclear(out[i]), out[i] = NULL;
            if (c->db)
                webpool_drop(c->pc);
            log_event(c->a->lg, LOG_INFO, "web.db_reconnect", NULL,
                      "the database connection was lost; connecting again");
            if (!(c->db = webpool_db(c->pc, err, sizeof err))) {
                problem(c->req, 503, "the database is not reachable; try again");
                return false;
            }
            continue;
        }
        if (sent)
            pipeline_problem(c, out, n);
        else
            problem(c->req, 503, "the database is not reachable; try again");
        for (size_t i = 0; i < n; i++)
            PQclear(out[i]), out[i] = NULL;
        return false;
    }
}

/* BEGIN, then stmt, in one round trip; stmt's result (the caller clears
 * it), or NULL with the answer set. */
static PGresult *begin_with(struct ctx *c, const struct stmt *stmt)
{
    const struct stmt s[2] = {BEGIN_STMT, *stmt};
    PGresult *r[2];
    if (!run_first(c, s, 2, r))
        return NULL;
    PQclear(r[0]);
    c->in_tx = true;
    return r[1];
}

static bool begin(struct ctx *c)
{
    PGresult *r = run(c, "BEGIN", 0, NULL);
    PQclear(r);
    c->in_tx = r != NULL;
    return r != NULL;
}

/* The request's last statement and COMMIT in one round trip: the
 * statement's result (the caller clears it), or NULL with the answer set to
 * the database's refusal of either. */
static PGresult *run_commit(struct ctx *c, enum prep prep, const char *sql, int n,
                            const char *const *params)
{
    const struct stmt s[2] = {{prep, sql, n, params}, COMMIT_STMT};
    PGresult *r[2];
    if (!pipeline(c, s, 2, r)) {
        PQclear(r[0]);
        PQclear(r[1]);
        problem(c->req, 503, "the database is not reachable; try again");
        return NULL;
    }
    if (ok_result(r[0]) && ok_result(r[1])) {
        c->in_tx = false;
        PQclear(r[1]);
        return r[0];
    }
    pipeline_problem(c, r, 2);
    PQclear(r[0]);
    PQclear(r[1]);
    return NULL;
}

/* Commits; on failure the answer becomes the database's refusal. */
/* Commits, then answers o (taken) as JSON; o is dropped if the commit
 * failed (its answer is set). */
void commit_json(struct ctx *c, unsigned status, cJSON *o)
{
    if (commit(c))
        json_out(c->req, status, CT_JSON, o);
    else
        cJSON_Delete(o);
}

bool commit(struct ctx *c)
{
    c->in_tx = false;
    return run0(c, "COMMIT");
}

/* A statement prepared once per connection; as run(). */
static PGresult *run_prep(struct ctx *c, enum prep prep, const char *sql, int n,
                          const char *const *params)
{
    const struct stmt st = {prep, sql, n, params};
    PGresult *r;
    if (!pipeline(c, &st, 1, &r)) {
        PQclear(r);
        problem(c->req, 503, "the database is not reachable; try again");
        return NULL;
    }
    if (ok_result(r))
        return r;
    sql_problem(c, r);
    PQclear(r);
    return NULL;
}

/* ------------------------------------------------------------ who asks */

/* An address as a proxy writes it ("192.0.2.7", "2001:db8::1",
 * "[2001:db8::1]:4711", "192.0.2.7:4711", quoted in Forwarded) into out in
 * its numeric form; false if it is not one. */
static bool parse_address(const char *s, size_t len, char *out, size_t outlen)
{
    char t[WEB_ADDR_MAX];
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
        s++, len -= 2;
    if (!len || len >= sizeof t)
        return false;
    memcpy(t, s, len);
    t[len] = '\0';
    char *a = t;
    if (*a == '[') { /* [v6] or [v6]:port */
        char *close = strchr(a, ']');
        if (!close || (close[1] && (close[1] != ':' || !close[2] ||
                                    strspn(close + 2, "0123456789") != strlen(close + 2))))
            return false;
        *close = '\0';
        a++;
    } else if (strchr(a, ':') && strchr(a, ':') == strrchr(a, ':')) { /* v4:port */
        char *colon = strchr(a, ':');
        if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
            return false;
        *colon = '\0';
    }
    unsigned char bin[16];
    int af = strchr(a, ':') ? AF_INET6 : AF_INET;
    return inet_pton(af, a, bin) == 1 && inet_ntop(af, bin, out, (socklen_t)outlen);
}

/* The client's address. Behind a proxy (web.behind_proxy) it is the one the
 * proxy forwards: the rightmost entry of the last X-Forwarded-For (what the
 * proxy next to us saw; entries to its left were sent by the client and may
 * be anything), else the for= of the last element of Forwarded (RFC 7239);
 * without either, the proxy's own. Otherwise both headers are ignored: any
 * client could send them. false (400 answered) for a forwarded value that is
 * not an address. */
static bool client_address(struct ctx *c)
{
    snprintf(c->addr, sizeof c->addr, "%s", httpserv_client(c->req));
    if (!c->a->behind_proxy)
        return true;
    const char *xff = httpserv_header_last(c->req, "X-Forwarded-For");
    const char *fwd = httpserv_header_last(c->req, "Forwarded");
    const char *v, *name;
    size_t len;
    if (xff) {
        name = "X-Forwarded-For";
        v = strrchr(xff, ',') ? strrchr(xff, ',') + 1 : xff;
        len = strlen(v);
    } else if (fwd) {
        name = "Forwarded";
        const char *el = strrchr(fwd, ',') ? strrchr(fwd, ',') + 1 : fwd;
        v = NULL;
        len = 0;
        for (const char *p = el; *p;) {
            while (*p == ' ' || *p == '\t' || *p == ';')
                p++;
            size_t l = strcspn(p, ";");
            if (l > 4 && !strncasecmp(p, "for=", 4)) {
                v = p + 4;
                len = l - 4;
            }
            p += l;
        }
        if (!v) {
            problem(c->req, 400, "the Forwarded header's last element has no for= (the "
                                 "proxy must forward the client's address)");
            return false;
        }
    } else {
        return true;
    }
    char a[WEB_ADDR_MAX];
    if (!parse_address(v, len, a, sizeof a)) {
        problemf(c->req, 400, "the %s header does not end with a client address (its last "
                              "entry is '%.*s'); the proxy must forward the address it saw",
                 name, (int)(len > 64 ? 64 : len), v);
        return false;
    }
    snprintf(c->addr, sizeof c->addr, "%s", a);
    return true;
}

static bool unsafe_method(const char *m)
{
    return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH") ||
           !strcmp(m, "DELETE");
}

/* The PostgreSQL role of a role the database named; NULL for anything else
 * (only these names are ever set). */
static const char *pg_role(const char *role)
{
    static const char *const map[][2] = {
        {"viewer", "acs_viewer"},
        {"scheduler", "acs_scheduler"},
        {"operator", "acs_operator"},
        {"admin", "acs_admin"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(role, map[i][0]))
            return map[i][1];
    return NULL;
}

/* Opens the request's transaction and finds the caller by its API token or
 * session cookie (as acs_web); in the same statement takes the caller's
 * role (set_config('role', R, true) is SET LOCAL ROLE R, PostgreSQL's
 * membership check included) and names it for the audit. Then checks the
 * CSRF token of a session's unsafe request: on a refusal the transaction,
 * role and all, is rolled back before anything ran in it. */
static bool authenticate(struct ctx *c)
{
    /* the role's PostgreSQL name is acs_<role>: the roles of 0004_roles.sql */
#define TAKE_ROLE(ROLE, ACTOR)                                                                  \
    "set_config('role', 'acs_' || " ROLE ", true), set_config('acs.actor', " ACTOR ", true), " \
    "set_config('acs.actor_address', $2, true)"
    static const char token_sql[] =
        "SELECT t.name, t.role, " TAKE_ROLE("t.role", "'token:' || t.name")
        " FROM acs.api_token_get($1::bytea) AS t";
    static const char session_sql[] =
        "SELECT s.user_name, s.role, " TAKE_ROLE("s.role", "s.user_name") ", s.csrf_token"
        " FROM acs.web_session_get($1::bytea) AS s";
#undef TAKE_ROLE
    const char *auth = httpserv_header(c->req, "Authorization");
    char hash[WEBAUTH_HASH_HEX];
    const char *params[2] = {hash, c->addr};
    PGresult *r = NULL;
    bool ok = false;
    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7)) {
            problem(c->req, 401, "the Authorization header must be \"Bearer amtacs_...\" "
                                 "(an API token from amtacsctl token create)");
            return false;
        }
        const char *tok = auth + 7;
        while (*tok == ' ')
            tok++;
        if (!webauth_token_hash(tok, hash)) {
            problem(c->req, 401, "the bearer token is not an amtacs API token "
                                 "(amtacs_ and 43 characters of base64url)");
            return false;
        }
        const struct stmt st = {PREP_AUTH_TOKEN, token_sql, 2, params};
        if (!(r = begin_with(c, &st)))
            return false;
        if (PQntuples(r) != 1) {
            problem(c->req, 401, "unknown or revoked API token");
            goto out;
        }
        snprintf(c->actor, sizeof c->actor, "token:%s", PQgetvalue(r, 0, 0));
        memcpy(c->cred_hash, hash, sizeof hash);
    } else {
        const char *cookies = httpserv_header(c->req, "Cookie");
        char secret[WEBAUTH_SECRET_TEXT + 8];
        bool have = cookies && webauth_cookie(cookies, WEBAUTH_COOKIE, secret, sizeof secret);
        bool valid = have && webauth_secret_hash(secret, strlen(secret), hash);
        sodium_memzero(secret, sizeof secret);
        if (!valid) {
            problem(c->req, 401, "not logged in: log in with POST /api/v1/login, or send an "
                                 "API token (Authorization: Bearer amtacs_...)");
            return false;
        }
        const struct stmt st = {PREP_AUTH_SESSION, session_sql, 2, params};
        if (!(r = begin_with(c, &st)))
            return false;
        if (PQntuples(r) != 1) {
            problem(c->req, 401, "the session has ended (logged out, idle or past its "
                                 "lifetime, or the user was disabled): log in again");
            goto out;
        }
        snprintf(c->actor, sizeof c->actor, "%s", PQgetvalue(r, 0, 0));
        snprintf(c->csrf, sizeof c->csrf, "%s", PQgetvalue(r, 0, 5));
        memcpy(c->session_hash, hash, sizeof hash);
        memcpy(c->cred_hash, hash, sizeof hash);
        c->by_session = true;
        /* A cookie rides along with any request the browser makes, a forged
         * one from another site's page too; the CSRF token does not. */
        if (c->unsafe) {
            const char *got = httpserv_header(c->req, "X-CSRF-Token");
            if (!got || !webauth_equal(got, c->csrf)) {
                problem(c->req, 403, "the X-CSRF-Token header is missing or does not match "
                                     "this session's token (csrf_token of the login's answer "
                                     "or of GET /api/v1/me)");
                goto out;
            }
        }
    }
    snprintf(c->role, sizeof c->role, "%s", PQgetvalue(r, 0, 1));
    /* Only the four roles are ever taken (the tables' CHECKs say so too). */
    const char *role = pg_role(c->role);
    if (!role || strcmp(PQgetvalue(r, 0, 2), role)) {
        problemf(c->req, 403, "the role '%s' is not one amtacs-web knows", c->role);
        goto out;
    }
    ok = true;
out:
    PQclear(r);
    return ok;
}

/* ------------------------------------------------------------ bodies */

/* The body as a JSON object; NULL (answer set) if there is none or it is
 * not strict JSON. An empty body is an empty object when empty_ok. */
cJSON *body_object(struct ctx *c, bool empty_ok)
{
    size_t len;
    const char *body = httpserv_body(c->req, &len);
    if (!len && empty_ok)
        return cJSON_CreateObject();
    size_t where = 0;
    enum jsoncheck_err e = jsoncheck(body, len, NULL, &where);
    if (e) {
        problemf(c->req, 400, "the body is not a JSON object: %s (%s) at byte %zu",
                 jsoncheck_describe(e), jsoncheck_name(e), where);
        return NULL;
    }
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        problem(c->req, 400, "the body is not a JSON object");
        return NULL;
    }
    return o;
}

/* Checks every member of o against spec: unknown fields and wrong types are
 * refused, naming the field. */
bool check_fields(struct ctx *c, const cJSON *o, const struct fspec *spec, size_t n)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, o) {
        const struct fspec *f = NULL;
        for (size_t i = 0; i < n && !f; i++)
            if (!strcmp(spec[i].name, m->string))
                f = &spec[i];
        if (!f && !n) {
            problemf(c->req, 400, "unknown field '%.64s'; this request takes no fields",
                     m->string);
            return false;
        }
        if (!f) {
            char known[256] = "";
            for (size_t i = 0; i < n; i++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                         i ? ", " : "", spec[i].name);
            problemf(c->req, 400, "unknown field '%.64s'; the fields are %s", m->string, known);
            return false;
        }
        bool ok = f->type == F_STRINGS ? cJSON_IsArray(m) || cJSON_IsNull(m)
                  : f->type == F_STRING_OR_NULL ? cJSON_IsString(m) || cJSON_IsNull(m)
                  : f->type == F_INT_OR_NULL
                      ? cJSON_IsNull(m) || (cJSON_IsNumber(m) && m->valuedouble >= -2147483648.0 &&
                                            m->valuedouble <= 2147483647.0 &&
                                            m->valuedouble == (double)(long)m->valuedouble)
                      : cJSON_IsString(m);
        if (ok && f->type == F_STRINGS && cJSON_IsArray(m)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, m) if (!cJSON_IsString(e)) ok = false;
        }
        if (!ok) {
            problemf(c->req, 400, "field '%s' must be %s", f->name,
                     f->type == F_STRINGS ? "an array of strings"
                     : f->type == F_STRING_OR_NULL ? "a string or null"
                     : f->type == F_INT_OR_NULL ? "an integer (32 bits) or null"
                                                : "a string");
            return false;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (spec[i].required && !cJSON_GetObjectItemCaseSensitive(o, spec[i].name)) {
            problemf(c->req, 400, "field '%s' is required", spec[i].name);
            return false;
        }
    return true;
}

const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* ------------------------------------------------------------ login */

static void set_cookie(struct ctx *c, const char *value, long max_age)
{
    char h[256];
    snprintf(h, sizeof h, "%s=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%ld%s",
             WEBAUTH_COOKIE, value, max_age, c->a->secure_cookie ? "; Secure" : "");
    httpserv_reply_header(c->req, "Set-Cookie", h);
    sodium_memzero(h, sizeof h);
}

static void login(struct ctx *c)
{
    static const struct fspec spec[] = {{"user", F_STRING, true}, {"password", F_STRING, true}};
    cJSON *o = body_object(c, false);
    char *pw = NULL;
    size_t pwlen = 0;
    PGresult *r = NULL;
    if (!o || !check_fields(c, o, spec, 2))
        goto out;
    const char *user = str_field(o, "user");
    cJSON *pwj = cJSON_GetObjectItemCaseSensitive(o, "password");
    pw = pwj->valuestring;
    pwlen = strlen(pw);
    if (!*user || strlen(user) > NAME_MAX_LEN || pwlen > PASSWORD_MAX) {
        problemf(c->req, 400, "user must be 1 to %d bytes and password at most %d",
                 NAME_MAX_LEN, PASSWORD_MAX);
        goto out;
    }
    const char *addr = c->addr;
    const char *p2[2] = {user, addr};
    const struct stmt wait_stmt = {PREP_NONE, "SELECT acs.web_login_wait($1, $2)", 2, p2};
    if (!run_first(c, &wait_stmt, 1, &r))
        goto out;
    long wait = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    if (wait > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%ld", wait);
        problemf(c->req, 429,
                 "too many failed logins for this user name or from this address: try again "
                 "in %ld second%s",
                 wait, wait == 1 ? "" : "s");
        httpserv_reply_header(c->req, "Retry-After", ra);
        goto out;
    }
    if (!(r = run(c, "SELECT password_hash, role, disabled FROM acs.web_user_for_login($1)", 1,
                  p2)))
        goto out;
    bool known = PQntuples(r) == 1;
    /* The same work for an unknown name as for a known one. */
    bool ok = webauth_password_ok(known ? PQgetvalue(r, 0, 0) : c->a->dummy_hash, pw, pwlen);
    ok = ok && known && strcmp(PQgetvalue(r, 0, 2), "t") != 0;
    char role[16];
    snprintf(role, sizeof role, "%s", known ? PQgetvalue(r, 0, 1) : "");
    PQclear(r);
    r = NULL;
    const char *p3[3] = {user, addr, ok ? "true" : "false"};
    if (!(r = run(c, "SELECT acs.web_login_record($1, $2, $3::boolean)", 3, p3)))
        goto out;
    PQclear(r);
    r = NULL;
    if (!ok) {
        log_event(c->a->lg, LOG_INFO, "web.login_failed", NULL, "address %s", addr);
        problem(c->req, 401, "wrong user name or password");
        goto out;
    }
    char secret[WEBAUTH_SECRET_TEXT], hash[WEBAUTH_HASH_HEX];
    char csrf[WEBAUTH_SECRET_TEXT], csrf_hash[WEBAUTH_HASH_HEX];
    webauth_new_secret(secret, hash);
    webauth_new_secret(csrf, csrf_hash);
    char idle[24], life[24];
    snprintf(idle, sizeof idle, "%ld", c->a->idle_s);
    snprintf(life, sizeof life, "%ld", c->a->lifetime_s);
    const char *ps[6] = {user, hash, csrf, addr, idle, life};
    const char *pa[2] = {user, addr};
    bool done = begin(c) &&
                (r = run(c, "SELECT set_config('acs.actor', $1, true), "
                            "set_config('acs.actor_address', $2, true)", 2, pa)) != NULL;
    PQclear(r);
    r = NULL;
    /* to_json: the time in ISO 8601 (2026-01-01T12:00:00.5+00:00), as in
     * every other answer, not libpq's text form */
    done = done && (r = run(c, "SELECT to_json(acs.web_session_start($1, $2::bytea, $3, $4, "
                               "$5::integer, $6::integer)) #>> '{}'",
                            6, ps)) != NULL;
    done = done && commit(c);
    if (done) {
        cJSON *ans = cJSON_CreateObject();
        if (ans) {
            cJSON_AddStringToObject(ans, "user", user);
            cJSON_AddStringToObject(ans, "role", role);
            cJSON_AddStringToObject(ans, "csrf_token", csrf);
            cJSON_AddStringToObject(ans, "expires_at", PQgetvalue(r, 0, 0));
        }
        json_out(c->req, 200, CT_JSON, ans);
        set_cookie(c, secret, c->a->lifetime_s);
        log_event(c->a->lg, LOG_INFO, "web.login", NULL, "user %s from %s", user, addr);
    }
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(csrf, sizeof csrf);
out:
    PQclear(r);
    if (pw)
        sodium_memzero(pw, pwlen);
    cJSON_Delete(o);
}

static void logout(struct ctx *c)
{
    if (!c->by_session) {
        problem(c->req, 400, "an API token has no session to end (amtacsctl token revoke "
                             "ends a token)");
        return;
    }
    /* acs_web's function: back from the caller's role for it */
    const char *p[1] = {c->session_hash};
    if (!run0(c, "SET LOCAL ROLE acs_web"))
        return;
    PGresult *r = run(c, "SELECT acs.web_session_end($1::bytea)", 1, p);
    if (!r)
        return;
    PQclear(r);
    if (!commit(c))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "logged_out", true);
    json_out(c->req, 200, CT_JSON, o);
    set_cookie(c, "", 0);
}

static void me(struct ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "user", c->actor);
        cJSON_AddStringToObject(o, "role", c->role);
        cJSON_AddStringToObject(o, "by", c->by_session ? "session" : "token");
        if (c->by_session)
            cJSON_AddStringToObject(o, "csrf_token", c->csrf);
        cJSON_AddStringToObject(o, "address", c->addr);
    }
    commit_json(c, 200, o);
}

/* ------------------------------------------------------------ jobs */

/* A positive decimal of 1 to 18 digits (a bigint without overflow). */
bool is_id(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= 18 && !s[n] && s[0] != '0';
}

bool known_arg(void *cls, const char *name, const char *value)
{
    struct list_query *q = cls;
    (void)value;
    for (const char *const *n = q->names; *n; n++)
        if (!strcmp(*n, name))
            return true;
    char known[200] = "";
    for (const char *const *n = q->names; *n; n++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                 n == q->names ? "" : ", ", *n);
    problemf(q->c->req, 400, "unknown query parameter '%.64s'; there are %s", name, known);
    q->ok = false;
    return false;
}

/* before and limit of a keyset page; false (answer set) if malformed. */
bool page_args(struct ctx *c, const char **before, char *limit, size_t limlen)
{
    *before = httpserv_query(c->req, "before");
    if (*before && !is_id(*before)) {
        problem(c->req, 400, "before must be a job, alert or audit id (a positive integer)");
        return false;
    }
    const char *l = httpserv_query(c->req, "limit");
    long n = PAGE_DEFAULT;
    if (l) {
        char *end;
        n = strtol(l, &end, 10);
        if (!*l || *end || n < 1 || n > PAGE_MAX) {
            problemf(c->req, 400, "limit must be an integer from 1 to %d", PAGE_MAX);
            return false;
        }
    }
    snprintf(limit, limlen, "%ld", n);
    return true;
}

/* n digits at s, as a number within [lo, hi]; -1 if not. */
static int digits(const char *s, int n, int lo, int hi)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

/* An RFC 3339 date-time: 2026-11-30T02:15:00Z, with optional fractions of
 * a second and a Z or +HH:MM / -HH:MM offset. */
static bool is_rfc3339(const char *s)
{
    if (strlen(s) < 20 || digits(s, 4, 0, 9999) < 0 || s[4] != '-' ||
        digits(s + 5, 2, 1, 12) < 0 || s[7] != '-' || digits(s + 8, 2, 1, 31) < 0 ||
        (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, 0, 23) < 0 || s[13] != ':' ||
        digits(s + 14, 2, 0, 59) < 0 || s[16] != ':' || digits(s + 17, 2, 0, 60) < 0)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        size_t n = strspn(p + 1, "0123456789");
        if (!n || n > 9)
            return false;
        p += 1 + n;
    }
    if ((*p == 'Z' || *p == 'z') && !p[1])
        return true;
    return (*p == '+' || *p == '-') && digits(p + 1, 2, 0, 23) >= 0 && p[3] == ':' &&
           digits(p + 4, 2, 0, 59) >= 0 && !p[6];
}

bool time_args(struct ctx *c, const char **since, const char **until)
{
    *since = httpserv_query(c->req, "since");
    *until = httpserv_query(c->req, "until");
    bool bad_since = *since && !is_rfc3339(*since);
    if (bad_since || (*until && !is_rfc3339(*until))) {
        problemf(c->req, 400, "%s must be an RFC 3339 time such as 2026-11-30T02:15:00Z or "
                              "2026-11-30T03:15:00+01:00 (got '%.40s')",
                 bad_since ? "since" : "until", bad_since ? *since : *until);
        return false;
    }
    return true;
}

static void list_jobs(struct ctx *c)
{
    static const char *const names[] = {"state", "connection", "result", "code", "q",
                                        "since", "until", "before", "limit", NULL};
    struct list_query q = {c, names, true};
    if (!httpserv_query_each(c->req, known_arg, &q))
        return;
    const char *before;
    char limit[16];
    if (!page_args(c, &before, limit, sizeof limit))
        return;
    const char *code = httpserv_query(c->req, "code");
    if (code && (strspn(code, "0123456789") != strlen(code) || !*code || strlen(code) > 9)) {
        problem(c->req, 400, "code must be a completion code (a non-negative integer)");
        return;
    }
    const char *since, *until;
    if (!time_args(c, &since, &until))
        return;
    const char *p[9] = {httpserv_query(c->req, "state"), httpserv_query(c->req, "connection"),
                        httpserv_query(c->req, "result"), code, httpserv_query(c->req, "q"),
                        before, limit, since, until};
    /* With a time filter the page is in (enqueued_at, id) order, on the
     * index of both: in id order PostgreSQL would walk the ids down from the
     * newest and filter, which past a day of traffic reads every job enqueued
     * after `until`. (Ids and enqueued_at nearly agree, but only nearly:
     * enqueued_at is the start of the submitting transaction.) */
    bool by_time = since || until;
#define JOBS_PAGE(CURSOR, ORDER, ORDER_SHOWN, ORDER_AGG, LAST)                                  \
    "WITH page AS ("                                                                         \
    " SELECT j.id, j.connection, j.kind, j.application,"                                     \
    "        coalesce(j.job_name, j.script_name) AS name, j.external_ref, j.state,"          \
    "        j.completion_code, j.result, j.error, j.batch_request_id,"                      \
    "        j.kill_requested_at, j.enqueued_at, j.started_at, j.finished_at,"               \
    "        coalesce(j.listed, '{}') AS listed, j.conn_group AS \"group\","                   \
    "        coalesce(j.tried, '[]') AS tried"                                               \
    "   FROM acs.jobs AS j"                                                                  \
    "  WHERE ($1::text IS NULL OR j.state = $1)"                                             \
    "    AND ($2::text IS NULL OR j.connection = $2)"                                        \
    "    AND ($3::text IS NULL OR j.result = $3)"                                            \
    "    AND ($4::integer IS NULL OR j.completion_code = $4::integer)"                       \
    "    AND ($5::text IS NULL"                                                              \
    "         OR strpos(lower(coalesce(j.job_name, j.script_name, '')), lower($5)) > 0"      \
    "         OR strpos(lower(coalesce(j.external_ref, '')), lower($5)) > 0)"                \
    "    AND ($6::bigint IS NULL OR " CURSOR ")"                                             \
    "    AND ($8::timestamptz IS NULL OR j.enqueued_at >= $8::timestamptz)"                  \
    "    AND ($9::timestamptz IS NULL OR j.enqueued_at < $9::timestamptz)"                   \
    "  ORDER BY " ORDER " LIMIT $7::integer + 1),"                                           \
    " shown AS (SELECT * FROM page ORDER BY " ORDER_SHOWN " LIMIT $7::integer)"              \
    "SELECT json_build_object("                                                              \
    " 'jobs', coalesce((SELECT json_agg(s ORDER BY " ORDER_AGG ") FROM shown AS s),"         \
    "                  '[]'::json),"                                                         \
    " 'next', CASE WHEN (SELECT count(*) FROM page) > $7::integer THEN " LAST " END)"
    static const char by_id_sql[] =
        JOBS_PAGE("j.id < $6::bigint", "j.id DESC", "id DESC", "s.id DESC",
                  "(SELECT min(id) FROM shown)");
    static const char by_time_sql[] =
        JOBS_PAGE("(j.enqueued_at, j.id) < (SELECT b.enqueued_at, b.id FROM acs.jobs AS b"
                  " WHERE b.id = $6::bigint)",
                  "j.enqueued_at DESC, j.id DESC", "enqueued_at DESC, id DESC",
                  "s.enqueued_at DESC, s.id DESC",
                  "(SELECT s.id FROM shown AS s ORDER BY s.enqueued_at, s.id LIMIT 1)");
#undef JOBS_PAGE
    PGresult *r = run_commit(c, PREP_NONE, by_time ? by_time_sql : by_id_sql, 9, p);
    if (!r)
        return;
    raw_json(c->req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

static void get_job(struct ctx *c, const char *id)
{
    const char *p[1] = {id};
    PGresult *r = run_commit(c, PREP_NONE, DB_JOB_DOCUMENT_SQL, 1, p);
    if (!r)
        return;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
        problemf(c->req, 404, "no job %s", id);
    else
        raw_json(c->req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

static void get_job_log(struct ctx *c, const char *id)
{
    const char *p[1] = {id};
    PGresult *r = run(c, "SELECT state, log FROM acs.job_log_text($1::bigint)", 1, p);
    if (!r)
        return;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        problemf(c->req, 404, "no job %s", id);
    } else if (!PQgetisnull(r, 0, 1)) {
        if (commit(c)) {
            struct buf *b = httpserv_reply_body(c->req);
            buf_reset(b);
            if (buf_append(b, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1)))
                problem(c->req, 500, "the log is too large to serve");
            else
                httpserv_reply(c->req, 200, CT_TEXT);
        }
    } else if (!strcmp(PQgetvalue(r, 0, 0), "finished")) {
        problemf(c->req, 410, "the log of job %s was purged (retention)", id);
    } else {
        problemf(c->req, 409, "job %s is %s; its log is written when it ends", id,
                 PQgetvalue(r, 0, 0));
    }
    PQclear(r);
}

#define SUBMIT_SQL "SELECT n, id FROM acs.submit_jobs(jsonb_build_array($1::jsonb))"

/* A submit's body, checked (fields, types, kind); false with the answer
 * set if it is not one. */
static bool submit_body_ok(struct ctx *c)
{
    /* A job names "connection" (with "alternates") or "group": which of
     * them, and whether the names are known, acs.check_targets says. */
    static const struct fspec spec[] = {
        {"kind", F_STRING, true},           {"connection", F_STRING_OR_NULL, false},
        {"alternates", F_STRINGS, false},   {"group", F_STRING_OR_NULL, false},
        {"application", F_STRING, true},    {"name", F_STRING, true},
        {"parameters", F_STRINGS, false},   {"queue_name", F_STRING_OR_NULL, false},
        {"amt_user", F_STRING_OR_NULL, false}, {"external_ref", F_STRING_OR_NULL, false},
    };
    cJSON *o = body_object(c, false);
    bool ok = o && check_fields(c, o, spec, sizeof spec / sizeof spec[0]);
    if (ok && strcmp(str_field(o, "kind"), "batch") && strcmp(str_field(o, "kind"), "script")) {
        problem(c->req, 400, "field 'kind' must be \"batch\" or \"script\"");
        ok = false;
    }
    cJSON_Delete(o);
    return ok;
}

/* 201 with the new job's id. */
static void submitted(struct ctx *c, const char *id)
{
    char loc[64];
    snprintf(loc, sizeof loc, "/api/v1/jobs/%s", id);
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddNumberToObject(ans, "id", atof(id));
    cJSON_AddBoolToObject(ans, "repeated", false);
    json_out(c->req, 201, CT_JSON, ans);
    httpserv_reply_header(c->req, "Location", loc);
    log_event(c->a->lg, LOG_INFO, "web.submit", NULL, "job %s by %s", id, c->actor);
}

static void submit(struct ctx *c)
{
    PGresult *r = NULL;
    if (!submit_body_ok(c))
        return;
    /* The key's body is the request's bytes: a retry sends the same. */
    const char *key = httpserv_header(c->req, "Idempotency-Key");
    char bhash[WEBAUTH_HASH_HEX];
    size_t blen;
    const char *body = httpserv_body(c->req, &blen);
    if (key) {
        unsigned char d[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(d, (const unsigned char *)body, blen);
        bhash[0] = '\\';
        bhash[1] = 'x';
        sodium_bin2hex(bhash + 2, sizeof bhash - 2, d, sizeof d);
        const char *pk[2] = {key, bhash};
        if (!(r = run_prep(c, PREP_IDEM_CLAIM,
                           "SELECT job_id, same_body FROM acs.web_idempotency_claim($1, "
                           "$2::bytea)",
                           2, pk)))
            goto out;
        if (PQntuples(r) == 1) {
            if (strcmp(PQgetvalue(r, 0, 1), "t")) {
                problemf(c->req, 409,
                         "Idempotency-Key '%.64s' was used for job %s with a different body; "
                         "a new submission needs a new key",
                         key, PQgetvalue(r, 0, 0));
                goto out;
            }
            char loc[64];
            snprintf(loc, sizeof loc, "/api/v1/jobs/%s", PQgetvalue(r, 0, 0));
            cJSON *ans = cJSON_CreateObject();
            cJSON_AddNumberToObject(ans, "id", atof(PQgetvalue(r, 0, 0)));
            cJSON_AddBoolToObject(ans, "repeated", true);
            if (commit(c)) {
                json_out(c->req, 200, CT_JSON, ans);
                httpserv_reply_header(c->req, "Location", loc);
            } else {
                cJSON_Delete(ans);
            }
            goto out;
        }
        PQclear(r);
        r = NULL;
    }
    /* The body, checked above, is the job as acs.submit_jobs takes it. */
    const char *ps[1] = {body};
    /* Without a key the submit is the last statement: it goes with COMMIT. */
    if (!(r = key ? run_prep(c, PREP_SUBMIT, SUBMIT_SQL, 1, ps)
                  : run_commit(c, PREP_SUBMIT, SUBMIT_SQL, 1, ps)))
        goto out;
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    r = NULL;
    if (key) {
        const char *pr[3] = {key, bhash, id};
        if (!(r = run_commit(c, PREP_IDEM_RECORD,
                             "SELECT acs.web_idempotency_record($1, $2::bytea, $3::bigint)", 3,
                             pr)))
            goto out;
    }
    submitted(c, id);
out:
    PQclear(r);
}

/* A body that must be empty or {}. */
bool no_fields(struct ctx *c)
{
    cJSON *o = body_object(c, true);
    bool ok = o && check_fields(c, o, NULL, 0);
    cJSON_Delete(o);
    return ok;
}

static void kill_job(struct ctx *c, const char *id)
{
    if (!no_fields(c))
        return;
    const char *p[1] = {id};
    PGresult *r = run(c, "SELECT acs.request_kill($1::bigint)", 1, p);
    if (!r)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", atof(id));
    cJSON_AddStringToObject(o, "state", PQgetvalue(r, 0, 0));
    cJSON_AddBoolToObject(o, "kill_requested", true);
    PQclear(r);
    commit_json(c, 202, o);
}

/* ------------------------------------------------------------ connections, alerts */

/* A connection, Batch User, console user or token name in a path: the
 * characters of all of them (@ for user names), which no path needs
 * escaped; the database checks the rest. */
static bool is_name(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-@");
    return n >= 1 && n <= 128 && !s[n];
}

static void list_connections(struct ctx *c)
{
    static const char *const names[] = {NULL};
    struct list_query q = {c, names, true};
    if (!httpserv_query_each(c->req, known_arg, &q))
        return;
    PGresult *r = run(c,
        "WITH n AS (SELECT a.connection, a.state, a.jobs FROM acs.active_job_counts() AS a)"
        "SELECT json_build_object('connections', coalesce(json_agg(x ORDER BY x.name), '[]'))"
        "  FROM (SELECT c.name, c.comm_state, c.comm_changed_at, c.comm_changed_by,"
        "               c.last_contact, c.server_ok, c.server_checked_at, c.amt_version,"
        "               c.last_error, c.last_error_at, c.url, c.batch_user, c.allow_kill,"
        "               c.retain_log_days, c.configured_at,"
        "               coalesce((SELECT sum(n.jobs) FROM n WHERE n.connection = c.name"
        "                          AND n.state = 'queued'), 0)::bigint AS queued,"
        "               coalesce((SELECT sum(n.jobs) FROM n WHERE n.connection = c.name"
        "                          AND n.state IN ('starting', 'running')), 0)::bigint AS in_flight,"
        "               coalesce((SELECT sum(n.jobs) FROM n WHERE n.connection = c.name"
        "                          AND n.state = 'in_doubt'), 0)::bigint AS in_doubt"
        "          FROM acs.connections AS c) AS x",
        0, NULL);
    if (!r)
        return;
    if (commit(c))
        raw_json(c->req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

static void set_comm(struct ctx *c, const char *name)
{
    static const struct fspec spec[] = {{"state", F_STRING, true}};
    cJSON *o = body_object(c, false);
    if (!o || !check_fields(c, o, spec, 1)) {
        cJSON_Delete(o);
        return;
    }
    const char *p[2] = {name, str_field(o, "state")};
    PGresult *r = run(c, "SELECT acs.set_comm($1, $2)", 2, p);
    if (r) {
        cJSON *ans = cJSON_CreateObject();
        cJSON_AddStringToObject(ans, "connection", name);
        cJSON_AddStringToObject(ans, "from", PQgetvalue(r, 0, 0));
        cJSON_AddStringToObject(ans, "to", p[1]);
        commit_json(c, 200, ans);
    }
    PQclear(r);
    cJSON_Delete(o);
}

static void list_alerts(struct ctx *c)
{
    static const char *const names[] = {"before", "limit", "open", NULL};
    struct list_query q = {c, names, true};
    if (!httpserv_query_each(c->req, known_arg, &q))
        return;
    const char *before;
    char limit[16];
    if (!page_args(c, &before, limit, sizeof limit))
        return;
    /* open=true: only the unacknowledged (the console lists them first) */
    const char *open = httpserv_query(c->req, "open");
    if (open && strcmp(open, "true") && strcmp(open, "false")) {
        problem(c->req, 400, "open must be true (unacknowledged alerts) or false (acknowledged)");
        return;
    }
    const char *p[3] = {before, limit, open};
    PGresult *r = run(c,
        "WITH page AS (SELECT a.id, a.job_id, a.connection, a.code, a.name, a.raised_at,"
        "                     a.message, a.acknowledged_at, a.acknowledged_by"
        "                FROM acs.alerts AS a WHERE ($1::bigint IS NULL OR a.id < $1::bigint)"
        "                 AND ($3::boolean IS NULL OR (a.acknowledged_at IS NULL) = $3::boolean)"
        "               ORDER BY a.id DESC LIMIT $2::integer + 1),"
        " shown AS (SELECT * FROM page ORDER BY id DESC LIMIT $2::integer)"
        "SELECT json_build_object("
        " 'alerts', coalesce((SELECT json_agg(s ORDER BY s.id DESC) FROM shown AS s), '[]'::json),"
        " 'next', CASE WHEN (SELECT count(*) FROM page) > $2::integer"
        "              THEN (SELECT min(id) FROM shown) END)",
        3, p);
    if (!r)
        return;
    if (commit(c))
        raw_json(c->req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

static void ack_alert(struct ctx *c, const char *id)
{
    if (!no_fields(c))
        return;
    const char *p[1] = {id};
    PGresult *r = run(c, "SELECT acs.acknowledge_alert($1::bigint)", 1, p);
    if (!r)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", atof(id));
    cJSON_AddBoolToObject(o, "acknowledged", true);
    cJSON_AddBoolToObject(o, "already", strcmp(PQgetvalue(r, 0, 0), "t") != 0);
    PQclear(r);
    commit_json(c, 200, o);
}

/* ------------------------------------------------------------ event streams */

#define CT_SSE "text/event-stream"
#define CATCH_UP_MAX 1000 /* changes replayed after Last-Event-ID; more: a reset event */

static void who_of(const struct ctx *c, struct webevents_who *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->hash, sizeof w->hash, "%s", c->cred_hash + 2); /* without "\x" */
    snprintf(w->role, sizeof w->role, "%s", c->role);
}

/* The answer becomes a stream; sub gets it. */
static void go_live(struct ctx *c, struct webevents_sub *sub)
{
    httpserv_reply(c->req, 200, CT_SSE);
    httpserv_reply_header(c->req, "X-Accel-Buffering", "no"); /* a proxy must not hold events */
    c->streamed = true;
    struct httpserv_stream *st = httpserv_finish_stream(c->req);
    if (!st) {
        webevents_cancel(sub);
        return;
    }
    if (sub)
        webevents_attach(sub, st);
    else
        httpserv_stream_release(st); /* a finished job's log: all of it is queued */
}

/* What changed between a resumed stream's position (from) and the hub's
 * (to), into b: every row in that range is final, below the horizon the hub
 * read. Job state changes, then alerts, then the Full Comm state of every
 * connection: a console shows states, and a state sent again is harmless,
 * while a change missed would leave a wrong one on screen. false (answer
 * set) if the database refused. */
static bool replay(struct ctx *c, const struct webevents_pos *from, const struct webevents_pos *to,
                   const struct webevents_who *who, struct buf *b)
{
    char fx[24], fj[24], tx[24], tj[24], fax[24], fa[24], tax[24], ta[24];
    char id[WEBEVENTS_ID_MAX];
    bool bad = false;
    snprintf(fx, sizeof fx, "%llu", (unsigned long long)from->xid);
    snprintf(fj, sizeof fj, "%lld", (long long)from->job);
    snprintf(tx, sizeof tx, "%llu", (unsigned long long)to->xid);
    snprintf(tj, sizeof tj, "%lld", (long long)to->job);
    snprintf(fax, sizeof fax, "%llu", (unsigned long long)from->axid);
    snprintf(fa, sizeof fa, "%lld", (long long)from->alert);
    snprintf(tax, sizeof tax, "%llu", (unsigned long long)to->axid);
    snprintf(ta, sizeof ta, "%lld", (long long)to->alert);
    const char *pj[4] = {fx, fj, tx, tj};
    PGresult *r = run(c,
            "SELECT j.state_xid::text, j.id, json_build_object('id', j.id, 'state', j.state,"
            " 'connection', j.connection, 'kind', j.kind,"
            " 'name', coalesce(j.job_name, j.script_name), 'external_ref', j.external_ref,"
            " 'completion_code', j.completion_code, 'result', j.result,"
            " 'at', CASE j.state WHEN 'queued' THEN j.enqueued_at"
            "  WHEN 'starting' THEN j.claimed_at WHEN 'running' THEN j.started_at"
            "  WHEN 'finished' THEN j.finished_at END)::text"
            "  FROM acs.jobs AS j"
            " WHERE (j.state_xid, j.id) > ($1::xid8, $2::bigint)"
            "   AND (j.state_xid, j.id) <= ($3::xid8, $4::bigint)"
            " ORDER BY j.state_xid, j.id LIMIT 1001",
            4, pj);
    if (!r)
        return false;
    if (PQntuples(r) > CATCH_UP_MAX) {
        static const char reset[] = "{\"reason\":\"more changes happened since "
                                    "Last-Event-ID than are replayed; read the lists "
                                    "again\"}";
        webevents_pos_id(to, id, sizeof id);
        bad = webevents_put(b, id, "reset", reset, sizeof reset - 1);
        PQclear(r);
        return bad ? (problem(c->req, 500, "out of memory"), false) : true;
    }
    struct webevents_pos at = *from;
    for (int i = 0; i < PQntuples(r); i++) {
        at.xid = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        at.job = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        webevents_pos_id(&at, id, sizeof id);
        bad = bad || webevents_put(b, id, "job", PQgetvalue(r, i, 2),
                                   (size_t)PQgetlength(r, i, 2));
    }
    PQclear(r);
    at.xid = to->xid;
    at.job = to->job;
    if (who->alerts) {
        /* an id from before migration 18 holds the alert's id alone: its
         * transaction is looked up (none: the alerts are where the hub is) */
        const char *pa[5] = {from->alert_id_only ? NULL : fax, fa, tax, ta, tax};
        r = run(c,
                "SELECT a.raised_xid::text, a.id, json_build_object('id', a.id,"
                " 'job_id', a.job_id, 'connection', a.connection, 'code', a.code,"
                " 'name', a.name, 'raised_at', a.raised_at, 'message', a.message)::text"
                "  FROM acs.alerts AS a"
                " WHERE (a.raised_xid, a.id) > (coalesce($1::xid8, (SELECT f.raised_xid"
                "          FROM acs.alerts AS f WHERE f.id = $2::bigint), $5::xid8), $2::bigint)"
                "   AND (a.raised_xid, a.id) <= ($3::xid8, $4::bigint)"
                " ORDER BY a.raised_xid, a.id LIMIT 1000",
                5, pa);
        if (!r)
            return false;
        for (int i = 0; i < PQntuples(r); i++) {
            at.axid = strtoull(PQgetvalue(r, i, 0), NULL, 10);
            at.alert = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            webevents_pos_id(&at, id, sizeof id);
            bad = bad || webevents_put(b, id, "alert", PQgetvalue(r, i, 2),
                                       (size_t)PQgetlength(r, i, 2));
        }
        PQclear(r);
    }
    if (who->comm) {
        r = run(c,
                "SELECT json_build_object('connection', c.name, 'comm_state', c.comm_state,"
                " 'changed_at', c.comm_changed_at, 'changed_by', c.comm_changed_by)::text"
                "  FROM acs.connections AS c ORDER BY c.name",
                0, NULL);
        if (!r)
            return false;
        webevents_pos_id(to, id, sizeof id);
        for (int i = 0; i < PQntuples(r); i++)
            bad = bad || webevents_put(b, id, "comm", PQgetvalue(r, i, 0),
                                       (size_t)PQgetlength(r, i, 0));
        PQclear(r);
    }
    if (bad)
        problem(c->req, 500, "out of memory");
    return !bad;
}

static void events(struct ctx *c)
{
    struct webevents_who who;
    who_of(c, &who);
    /* what the caller's role may read, as PostgreSQL says */
    PGresult *r = run(c, "SELECT has_table_privilege('acs.jobs', 'SELECT'), "
                         "has_table_privilege('acs.alerts', 'SELECT'), "
                         "has_table_privilege('acs.connections', 'SELECT')",
                      0, NULL);
    if (!r)
        return;
    bool jobs = !strcmp(PQgetvalue(r, 0, 0), "t");
    who.alerts = !strcmp(PQgetvalue(r, 0, 1), "t");
    who.comm = !strcmp(PQgetvalue(r, 0, 2), "t");
    PQclear(r);
    if (!jobs) {
        problemf(c->req, 403, "the role %s may not read jobs", c->role);
        return;
    }
    const char *lei = httpserv_header(c->req, "Last-Event-ID");
    struct webevents_pos from, pos;
    if (lei && !webevents_parse_id(lei, &from)) {
        problem(c->req, 400, "Last-Event-ID must be the id of an event of this stream "
                             "(XID.JOB.AXID.ALERT)");
        return;
    }
    struct webevents_sub *sub = webevents_subscribe(c->a->events, &who, &pos);
    if (!sub) {
        problem(c->req, 503, "the server is stopping; try again");
        return;
    }
    struct buf *b = httpserv_reply_body(c->req);
    buf_reset(b);
    bool bad = buf_puts(b, "retry: 3000\n\n") != BUF_OK;
    char id[WEBEVENTS_ID_MAX];
    if (lei && !replay(c, &from, &pos, &who, b)) {
        webevents_cancel(sub);
        return;
    }
    webevents_pos_id(&pos, id, sizeof id);
    char ready[128];
    int rl = snprintf(ready, sizeof ready, "{\"role\":\"%s\",\"alerts\":%s,\"comm\":%s}", c->role,
                      who.alerts ? "true" : "false", who.comm ? "true" : "false");
    bad = bad || webevents_put(b, id, "ready", ready, (size_t)rl);
    if (bad) {
        webevents_cancel(sub);
        problem(c->req, 500, "out of memory");
        return;
    }
    if (!commit(c)) {
        webevents_cancel(sub);
        return;
    }
    go_live(c, sub);
}

static void log_stream(struct ctx *c, const char *id)
{
    const char *lei = httpserv_header(c->req, "Last-Event-ID");
    long long after = 0;
    if (lei) {
        char *end;
        after = strtoll(lei, &end, 10);
        if (!*lei || *end || after < 0 || strlen(lei) > 18) {
            problem(c->req, 400, "Last-Event-ID must be the id of a message event of this "
                                 "stream (its number)");
            return;
        }
    }
    const char *p[1] = {id};
    PGresult *r = run(c,
                      "SELECT j.state, json_build_object('id', j.id, 'state', j.state,"
                      " 'completion_code', j.completion_code, 'result', j.result,"
                      " 'error', j.error, 'log_purged', l.job_id IS NULL)::text, l.log"
                      "  FROM acs.jobs AS j LEFT JOIN acs.job_logs AS l ON l.job_id = j.id"
                      " WHERE j.id = $1::bigint",
                      1, p);
    if (!r)
        return;
    if (PQntuples(r) != 1) {
        PQclear(r);
        problemf(c->req, 404, "no job %s", id);
        return;
    }
    struct buf *b = httpserv_reply_body(c->req);
    buf_reset(b);
    bool bad = buf_puts(b, "retry: 3000\n\n") != BUF_OK;
    struct webevents_sub *sub = NULL;
    if (!strcmp(PQgetvalue(r, 0, 0), "finished")) {
        int64_t n = 0;
        if (!PQgetisnull(r, 0, 2))
            bad = bad || webevents_put_log_lines(b, PQgetvalue(r, 0, 2), after, &n);
        bad = bad || webevents_put(b, NULL, "end", PQgetvalue(r, 0, 1),
                                   (size_t)PQgetlength(r, 0, 1));
        PQclear(r);
    } else {
        PQclear(r);
        if (!(r = run(c, "SELECT m.seq, m.text FROM acs.job_messages AS m "
                         "WHERE m.job_id = $1::bigint ORDER BY m.seq",
                      1, p)))
            return;
        int64_t n = 0, last_seq = 0;
        for (int i = 0; i < PQntuples(r); i++) {
            n = i + 1;
            last_seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
            if (n > after)
                bad = bad || webevents_put_message(b, n, PQgetvalue(r, i, 1),
                                                   (size_t)PQgetlength(r, i, 1), false);
        }
        PQclear(r);
        struct webevents_who who;
        who_of(c, &who);
        /* from here on the hub queues what the daemon stores; it reads the
         * job at once, so nothing after the read above is missed */
        if (!bad)
            sub = webevents_subscribe_log(c->a->events, &who, strtoll(id, NULL, 10), n,
                                          last_seq);
        if (!bad && !sub) {
            problem(c->req, 503, "the server is stopping; try again");
            return;
        }
    }
    if (bad) {
        webevents_cancel(sub);
        problem(c->req, 500, "out of memory");
        return;
    }
    if (!commit(c)) {
        webevents_cancel(sub);
        return;
    }
    go_live(c, sub);
}

/* ------------------------------------------------------------ the description */

/* The OpenAPI document, to anyone: it describes the API and holds no data,
 * so it needs neither a login nor the database. */
static void openapi(struct httpserv_req *req)
{
    struct buf *b = httpserv_reply_body(req);
    buf_reset(b);
    if (buf_append(b, amtacs_openapi_json, amtacs_openapi_json_len))
        problem(req, 500, "the answer is too large");
    else
        httpserv_reply(req, 200, CT_JSON);
}

/* ------------------------------------------------------------ routing */

enum route {
    R_NONE, R_LOGIN, R_LOGOUT, R_ME, R_JOBS, R_SUBMIT, R_JOB, R_JOB_LOG, R_JOB_KILL,
    R_CONNECTIONS, R_COMM, R_ALERTS, R_ACK, R_EVENTS, R_LOG_STREAM, R_OPENAPI,
    R_JOB_RESOLVE, R_JOB_RERUN,
    R_BATCH_USERS, R_BATCH_USER_PASSWORD, R_USERS, R_USER_ADD, R_USER_ROLE, R_USER_PASSWORD,
    R_USER_DISABLE, R_USER_ENABLE, R_TOKENS, R_TOKEN_CREATE, R_TOKEN_REVOKE, R_STATS,
    R_AUDIT, R_GROUPS, R_GROUP_SET, R_GROUP_DELETE,
};

/* Every route the API serves: the OpenAPI document (webapi_routes) and the
 * router read this one table. A path segment {id} is a positive integer,
 * {name} a connection, group, Batch User, console user or token name. HEAD is served wherever GET is. */
static const struct {
    const char *method, *path;
    enum route route;
} ROUTES[] = {
    {"POST", "/login", R_LOGIN},
    {"POST", "/logout", R_LOGOUT},
    {"GET", "/me", R_ME},
    {"GET", "/jobs", R_JOBS},
    {"POST", "/jobs", R_SUBMIT},
    {"GET", "/jobs/{id}", R_JOB},
    {"GET", "/jobs/{id}/log", R_JOB_LOG},
    {"POST", "/jobs/{id}/kill", R_JOB_KILL},
    {"GET", "/connections", R_CONNECTIONS},
    {"PUT", "/connections/{name}/comm", R_COMM},
    {"GET", "/alerts", R_ALERTS},
    {"POST", "/alerts/{id}/ack", R_ACK},
    {"GET", "/events", R_EVENTS},
    {"GET", "/jobs/{id}/log/stream", R_LOG_STREAM},
    {"GET", "/openapi.json", R_OPENAPI},
    {"POST", "/jobs/{id}/resolve", R_JOB_RESOLVE},
    {"POST", "/jobs/{id}/rerun", R_JOB_RERUN},
    {"GET", "/batch-users", R_BATCH_USERS},
    {"PUT", "/batch-users/{name}/password", R_BATCH_USER_PASSWORD},
    {"GET", "/users", R_USERS},
    {"POST", "/users", R_USER_ADD},
    {"PUT", "/users/{name}/role", R_USER_ROLE},
    {"PUT", "/users/{name}/password", R_USER_PASSWORD},
    {"POST", "/users/{name}/disable", R_USER_DISABLE},
    {"POST", "/users/{name}/enable", R_USER_ENABLE},
    {"GET", "/tokens", R_TOKENS},
    {"POST", "/tokens", R_TOKEN_CREATE},
    {"DELETE", "/tokens/{name}", R_TOKEN_REVOKE},
    {"GET", "/stats", R_STATS},
    {"GET", "/audit", R_AUDIT},
    {"GET", "/groups", R_GROUPS},
    {"PUT", "/groups/{name}", R_GROUP_SET},
    {"DELETE", "/groups/{name}", R_GROUP_DELETE},
};
#define NROUTES (sizeof ROUTES / sizeof ROUTES[0])

size_t webapi_routes(const char **methods, const char **paths, size_t max)
{
    for (size_t i = 0; i < NROUTES && i < max; i++) {
        methods[i] = ROUTES[i].method;
        paths[i] = ROUTES[i].path;
    }
    return NROUTES;
}

/* Does path (under /api/v1) fit pattern? The {id} or {name} it holds is
 * copied to arg. */
static bool fits(const char *pattern, const char *path, char *arg, size_t arglen)
{
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            size_t l = strcspn(path, "/");
            char seg[136];
            if (!close || l == 0 || l >= sizeof seg)
                return false;
            memcpy(seg, path, l);
            seg[l] = '\0';
            bool ok = !strncmp(pattern, "{id}", 4) ? is_id(seg) : is_name(seg);
            if (!ok)
                return false;
            snprintf(arg, arglen, "%s", seg);
            pattern = close + 1;
            path += l;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

/* The route of a path and method. *allow lists the methods the path takes
 * (for 405), empty when no route has the path. */
static enum route match(const char *path, const char *method, char *arg, size_t arglen,
                        char *allow, size_t allowlen)
{
    allow[0] = '\0';
    if (strncmp(path, API, strlen(API)))
        return R_NONE;
    const char *p = path + strlen(API) - 1; /* from its slash */
    enum route found = R_NONE;
    for (size_t i = 0; i < NROUTES; i++) {
        char a[136];
        if (!fits(ROUTES[i].path, p, a, sizeof a))
            continue;
        bool get = !strcmp(ROUTES[i].method, "GET");
        snprintf(allow + strlen(allow), allowlen - strlen(allow), "%s%s%s", *allow ? ", " : "",
                 ROUTES[i].method, get ? ", HEAD" : "");
        if (!strcmp(method, ROUTES[i].method) || (get && !strcmp(method, "HEAD"))) {
            found = ROUTES[i].route;
            snprintf(arg, arglen, "%s", a);
        }
    }
    return found;
}

/* Answers the request; true when it was answered as a stream (then the
 * request is no longer the caller's). */
static bool process(struct webapi *a, struct webpool_conn *pc, struct httpserv_req *req)
{
    struct ctx c = {.a = a, .req = req, .pc = pc, .method = httpserv_method(req)};
    c.unsafe = unsafe_method(c.method);
    char arg[136] = "";
    char allow[64];
    enum route rt = match(httpserv_path(req), c.method, arg, sizeof arg, allow, sizeof allow);
    if (!*allow) {
        problemf(req, 404, "no such resource: %.200s (the API is described at "
                             "/api/v1/openapi.json)",
                 httpserv_path(req));
        return false;
    }
    if (rt == R_NONE) {
        problemf(req, 405, "%.16s is not allowed here; use %s", c.method, allow);
        httpserv_reply_header(req, "Allow", allow);
        return false;
    }
    const char *ct = httpserv_header(req, "Content-Type");
    size_t blen;
    httpserv_body(req, &blen);
    if (blen && (!ct || strncasecmp(ct, "application/json", 16) ||
                 (ct[16] && ct[16] != ';' && ct[16] != ' '))) {
        problem(req, 415, "a request body must be JSON (Content-Type: application/json)");
        return false;
    }
    if (rt == R_OPENAPI) {
        openapi(req);
        return false;
    }
    if (!client_address(&c))
        return false;
    char err[300];
    if (!(c.db = webpool_db(pc, err, sizeof err))) {
        problem(req, 503, "the database is not reachable; try again");
        return false;
    }
    if (rt == R_LOGIN) {
        login(&c);
        return false;
    }
    if (!authenticate(&c))
        return false;
    switch (rt) {
    case R_LOGOUT: logout(&c); break;
    case R_ME: me(&c); break;
    case R_JOBS: list_jobs(&c); break;
    case R_SUBMIT: submit(&c); break;
    case R_JOB: get_job(&c, arg); break;
    case R_JOB_LOG: get_job_log(&c, arg); break;
    case R_JOB_KILL: kill_job(&c, arg); break;
    case R_CONNECTIONS: list_connections(&c); break;
    case R_COMM: set_comm(&c, arg); break;
    case R_ALERTS: list_alerts(&c); break;
    case R_ACK: ack_alert(&c, arg); break;
    case R_JOB_RESOLVE: webadmin_resolve(&c, arg); break;
    case R_JOB_RERUN: webadmin_rerun(&c, arg); break;
    case R_BATCH_USERS: webadmin_batch_users(&c); break;
    case R_BATCH_USER_PASSWORD: webadmin_batch_user_password(&c, arg); break;
    case R_USERS: webadmin_users(&c); break;
    case R_USER_ADD: webadmin_user_add(&c); break;
    case R_USER_ROLE: webadmin_user_role(&c, arg); break;
    case R_USER_PASSWORD: webadmin_user_password(&c, arg); break;
    case R_USER_DISABLE: webadmin_user_disable(&c, arg, true); break;
    case R_USER_ENABLE: webadmin_user_disable(&c, arg, false); break;
    case R_TOKENS: webadmin_tokens(&c); break;
    case R_TOKEN_CREATE: webadmin_token_create(&c); break;
    case R_TOKEN_REVOKE: webadmin_token_revoke(&c, arg); break;
    case R_STATS: webadmin_stats(&c); break;
    case R_AUDIT: webadmin_audit(&c); break;
    case R_GROUPS: webadmin_groups(&c); break;
    case R_GROUP_SET: webadmin_group_set(&c, arg); break;
    case R_GROUP_DELETE: webadmin_group_delete(&c, arg); break;
    case R_EVENTS: events(&c); break;
    case R_LOG_STREAM: log_stream(&c, arg); break;
    default: problem(req, 404, "no such resource"); break;
    }
    /* whatever failed left the transaction open: the pool rolls it back */
    return c.streamed;
}

/* ------------------------------------------------------------ submits together
 *
 * Submits queued at the same time by one token from one address are carried
 * out together: one transaction, one lookup of the token, one call of
 * acs.submit_jobs with all their bodies, so that PostgreSQL sets up one
 * INSERT for all of them (0020). Each still gets its own answer, and the
 * audit names the same token and address it would have alone. A body that
 * is not a submit is answered on its own before; if the database refuses
 * the call (one of the jobs fails its checks), nothing of it is kept and
 * each request is carried out alone, so that each gets its own answer. */

#define GROUP_MAX 64

static bool same_header(const struct httpserv_req *a, const struct httpserv_req *b,
                        const char *name)
{
    const char *x = httpserv_header(a, name), *y = httpserv_header(b, name);
    return x == y || (x && y && !strcmp(x, y));
}

/* A plain submit by an API token: POST /api/v1/jobs without an
 * Idempotency-Key (a keyed submit has statements of its own). */
static bool groupable(const struct httpserv_req *r)
{
    const char *auth = httpserv_header(r, "Authorization");
    return !strcmp(httpserv_method(r), "POST") && !strcmp(httpserv_path(r), API "jobs") &&
           auth && !strncasecmp(auth, "Bearer ", 7) && !httpserv_header(r, "Idempotency-Key");
}

/* job is a submit by the same token from the same address as cls. */
static bool same_caller(void *cls, void *job)
{
    const struct httpserv_req *a = cls, *b = job;
    return groupable(b) && !strcmp(httpserv_client(a), httpserv_client(b)) &&
           same_header(a, b, "Authorization") && same_header(a, b, "X-Forwarded-For") &&
           same_header(a, b, "Forwarded") && same_header(a, b, "Content-Type");
}

static void alone(struct webapi *a, struct webpool_conn *pc, struct httpserv_req *req)
{
    if (!process(a, pc, req))
        httpserv_finish(req);
}

static void submit_group(struct webapi *a, struct webpool_conn *pc, struct httpserv_req **reqs,
                         size_t n)
{
    struct httpserv_req *good[GROUP_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct ctx t = {.a = a, .req = reqs[i], .pc = pc, .method = "POST", .unsafe = true};
        if (submit_body_ok(&t))
            good[k++] = reqs[i];
        else
            httpserv_finish(reqs[i]);
    }
    if (k < 2) {
        for (size_t i = 0; i < k; i++)
            alone(a, pc, good[i]);
        return;
    }
    struct ctx c = {.a = a, .req = good[0], .pc = pc, .method = "POST", .unsafe = true};
    char err[300];
    /* a refusal of the caller is the same for all: the first has its answer,
     * the others get theirs alone */
    bool addressed = client_address(&c);
    if (addressed && !(c.db = webpool_db(pc, err, sizeof err)))
        problem(good[0], 503, "the database is not reachable; try again");
    if (!addressed || !c.db || !authenticate(&c)) {
        if (c.db && c.in_tx)
            PQclear(PQexec(c.db, "ROLLBACK"));
        httpserv_finish(good[0]);
        for (size_t i = 1; i < k; i++)
            alone(a, pc, good[i]);
        return;
    }
    struct buf all;
    buf_init(&all, 0);
    bool built = buf_putc(&all, '[') == BUF_OK;
    for (size_t i = 0; i < k && built; i++) {
        size_t len;
        const char *body = httpserv_body(good[i], &len);
        built = (!i || buf_putc(&all, ',') == BUF_OK) && buf_append(&all, body, len) == BUF_OK;
    }
    built = built && buf_putc(&all, ']') == BUF_OK;
    PGresult *r[2] = {NULL, NULL};
    bool done = false;
    if (built) {
        const char *ps[1] = {all.data};
        const struct stmt s[2] = {
            {PREP_SUBMIT_MANY, "SELECT n, id FROM acs.submit_jobs($1::jsonb) ORDER BY n", 1, ps},
            COMMIT_STMT};
        done = pipeline(&c, s, 2, r) && ok_result(r[0]) && ok_result(r[1]) &&
               PQntuples(r[0]) == (int)k;
    }
    if (done) {
        log_event(a->lg, LOG_DEBUG, "web.submit_group", NULL,
                  "%zu submits by %s in one transaction", k, c.actor);
        for (size_t i = 0; i < k; i++) {
            struct ctx t = c;
            t.req = good[i];
            submitted(&t, PQgetvalue(r[0], (int)i, 1));
            httpserv_finish(good[i]);
        }
    } else {
        if (c.db && PQtransactionStatus(c.db) != PQTRANS_IDLE)
            PQclear(PQexec(c.db, "ROLLBACK"));
        for (size_t i = 0; i < k; i++)
            alone(a, pc, good[i]);
    }
    PQclear(r[0]);
    PQclear(r[1]);
    buf_free(&all);
}

static void work(void *cls, struct webpool_conn *pc, void *job)
{
    struct httpserv_req *req = job;
    struct webapi *a = cls;
    if (groupable(req)) {
        struct httpserv_req *reqs[GROUP_MAX] = {req};
        size_t n = 1 + webpool_take(pc, same_caller, req, (void **)reqs + 1, GROUP_MAX - 1);
        if (n > 1) {
            submit_group(a, pc, reqs, n);
            return;
        }
    }
    alone(a, pc, req);
}

void webapi_handle(void *cls, struct httpserv_req *req)
{
    struct webapi *a = cls;
    if (webstatic_owns(httpserv_path(req))) {
        webstatic_serve(req); /* memory only: answered on the server's thread */
        return;
    }
    httpserv_defer(req);
    if (!webpool_submit(a->pool, req)) {
        problem(req, 503, "the server is busy or stopping; try again");
        httpserv_reply_header(req, "Retry-After", "1");
        httpserv_finish(req);
    } else if (log_on(a->lg, LOG_DEBUG)) {
        log_event(a->lg, LOG_DEBUG, "web.queued", NULL, "%s %s", httpserv_method(req),
                  httpserv_path(req));
    }
}

struct webapi *webapi_new(const struct webapi_options *o, char *err, size_t errlen)
{
    struct webapi *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->lg = o->lg;
    a->idle_s = o->session_idle_s;
    a->lifetime_s = o->session_lifetime_s;
    a->secure_cookie = o->secure_cookie;
    a->behind_proxy = o->behind_proxy;
    if (o->public_key_file && !(a->public_key_file = strdup(o->public_key_file))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!webauth_dummy_hash(a->dummy_hash)) {
        snprintf(err, errlen, "cannot hash a password (out of memory?)");
        goto fail;
    }
    struct webevents_options eo = {
        .conninfo = o->conninfo, .heartbeat_ms = o->heartbeat_ms,
        .session_check_ms = o->session_check_ms, .lg = o->lg,
    };
    if (!(a->events = webevents_start(&eo, err, errlen)))
        goto fail;
    struct webpool_options po = {
        .conninfo = o->conninfo, .workers = o->db_pool, .max_queue = MAX_QUEUE, .lg = o->lg,
        .work = work, .cls = a,
    };
    if (!(a->pool = webpool_start(&po, err, errlen)))
        goto fail;
    return a;
fail:
    webapi_free(a);
    return NULL;
}

void webapi_stop(struct webapi *a)
{
    if (!a)
        return;
    webpool_stop(a->pool);     /* no stream is being set up after this */
    webevents_stop(a->events); /* every stream ends */
}

void webapi_free(struct webapi *a)
{
    if (!a)
        return;
    webpool_free(a->pool);
    webevents_free(a->events);
    sodium_memzero(a->dummy_hash, sizeof a->dummy_hash);
    free(a->public_key_file);
    free(a);
}
