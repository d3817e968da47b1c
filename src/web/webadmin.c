/* webadmin: the operators' and admins' endpoints of /api/v1 -- resolve and
 * rerun a job, Batch Users, console users and API tokens, connection groups,
 * statistics. Each runs in the request's transaction under the caller's role
 * (webapi.c), and calls the SQL functions amtacsctl calls, so the rules and the audit live
 * in the database once. Secrets: a Batch User's password is sealed here with
 * the public key (never the secret one); a console user's password is hashed
 * here (argon2id); both are wiped once used and never logged; a new API token
 * is shown once in the answer and stored as its SHA-256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/db.h"
#include "amtacs/joblog.h"
#include "amtacs/jobspec.h"
#include "amtacs/vault.h"
#include "webint.h"

/* ------------------------------------------------------------ jobs */

/* The log a job resolved as failed gets, in the reference layout, as
 * amtacsctl resolve --fail writes it (the Batch Server from the connection's
 * recorded url): it never got a server log. NULL if the job is not there. */
static char *resolved_log(struct ctx *c, const char *id)
{
    const char *p[1] = {id};
    PGresult *r = run(c,
                      "SELECT j.application, j.kind, coalesce(j.job_name, j.script_name), "
                      "j.queue_name, array_to_json(CASE WHEN j.kind = 'batch' THEN j.task_values "
                      "ELSE j.script_parameters END), coalesce(j.error, ''), coalesce(x.url, '') "
                      "FROM acs.jobs AS j JOIN acs.connections AS x ON x.name = j.connection "
                      "WHERE j.id = $1::bigint",
                      1, p);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return NULL;
    }
    cJSON *vals = cJSON_Parse(PQgetvalue(r, 0, 4));
    const char *params[20];
    size_t np = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vals) if (cJSON_IsString(v) && np < 20) params[np++] = v->valuestring;
    char line[1200];
    snprintf(line, sizeof line, "amtacs: %s%sthe job was in doubt and %s resolved it as failed",
             PQgetvalue(r, 0, 5), *PQgetvalue(r, 0, 5) ? "; " : "", c->actor);
    const char *msgs[] = {line};
    struct jobspec spec = {
        .application = PQgetvalue(r, 0, 0),
        .queue_name = PQgetisnull(r, 0, 3) ? NULL : PQgetvalue(r, 0, 3),
        .kind = jobspec_kind_of(PQgetvalue(r, 0, 1)),
        .name = PQgetvalue(r, 0, 2), .values = params, .nvalues = np,
    };
    struct joblog_job job = {.server = PQgetvalue(r, 0, 6), .spec = &spec, .completion_code = 19};
    char *log = joblog_render(&job, msgs, 1);
    cJSON_Delete(vals);
    PQclear(r);
    return log;
}

void webadmin_resolve(struct ctx *c, const char *id)
{
    static const struct fspec spec[] = {
        {"action", F_STRING, true},
        {"batch_request_id", F_INT_OR_NULL, false},
        {"log", F_STRING_OR_NULL, false},
    };
    cJSON *o = body_object(c, false);
    PGresult *r = NULL;
    char *log = NULL;
    if (!o || !check_fields(c, o, spec, sizeof spec / sizeof spec[0]))
        goto out;
    char brid[16];
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "batch_request_id");
    if (cJSON_IsNumber(b))
        snprintf(brid, sizeof brid, "%ld", (long)b->valuedouble);
    /* No log given for a fail: the one amtacsctl resolve --fail writes. (The
     * caller may lack SELECT on connections: then the function's own line.) */
    if (!strcmp(str_field(o, "action"), "fail") && !str_field(o, "log")) {
        if (!run0(c, "SAVEPOINT resolved_log"))
            goto out;
        /* a refusal here is not the answer: the resolve's own is, below */
        if (!(log = resolved_log(c, id)) && !run0(c, "ROLLBACK TO SAVEPOINT resolved_log"))
            goto out;
    }
    const char *p[4] = {id, str_field(o, "action"), cJSON_IsNumber(b) ? brid : NULL,
                        log ? log : str_field(o, "log")};
    if (!(r = run(c, "SELECT acs.resolve_in_doubt($1::bigint, $2, $3::integer, $4)", 4, p)))
        goto out;
    PQclear(r);
    if (!(r = run(c, "SELECT state FROM acs.jobs WHERE id = $1::bigint", 1, p)))
        goto out;
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddNumberToObject(ans, "id", atof(id));
    cJSON_AddStringToObject(ans, "action", p[1]);
    cJSON_AddStringToObject(ans, "state", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    if (commit(c)) {
        json_out(c->req, 200, CT_JSON, ans);
        log_event(c->a->lg, LOG_INFO, "web.resolve", NULL, "job %s: %s by %s", id, p[1],
                  c->actor);
    } else {
        cJSON_Delete(ans);
    }
out:
    free(log);
    PQclear(r);
    cJSON_Delete(o);
}

void webadmin_rerun(struct ctx *c, const char *id)
{
    if (!no_fields(c))
        return;
    const char *p[1] = {id};
    PGresult *r = run(c, "SELECT acs.rerun_job($1::bigint)", 1, p);
    if (!r)
        return;
    char nid[24], loc[64];
    snprintf(nid, sizeof nid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddNumberToObject(ans, "id", atof(nid));
    cJSON_AddNumberToObject(ans, "rerun_of", atof(id));
    if (!commit(c)) {
        cJSON_Delete(ans);
        return;
    }
    snprintf(loc, sizeof loc, "/api/v1/jobs/%s", nid);
    json_out(c->req, 201, CT_JSON, ans);
    httpserv_reply_header(c->req, "Location", loc);
    log_event(c->a->lg, LOG_INFO, "web.rerun", NULL, "job %s reruns job %s, by %s", nid, id,
              c->actor);
}

/* ------------------------------------------------------------ lists */

/* A list that takes no query parameter, made by PostgreSQL as one JSON text. */
static void list(struct ctx *c, const char *sql)
{
    static const char *const names[] = {NULL};
    struct list_query q = {c, names, true};
    if (!httpserv_query_each(c->req, known_arg, &q))
        return;
    PGresult *r = run(c, sql, 0, NULL);
    if (!r)
        return;
    if (commit(c))
        raw_json(c->req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

void webadmin_stats(struct ctx *c)
{
    list(c, "SELECT acs.job_stats()");
}

/* Names, key ids and dates; the sealed bytes are never selected. */
void webadmin_batch_users(struct ctx *c)
{
    list(c, "SELECT json_build_object('batch_users', coalesce(json_agg(json_build_object("
            " 'name', b.name, 'key_id', b.key_id, 'created_at', b.created_at,"
            " 'updated_at', b.updated_at,"
            " 'connections', ARRAY(SELECT x.name FROM acs.connections AS x"
            "                       WHERE x.batch_user = b.name ORDER BY x.name))"
            " ORDER BY b.name), '[]'::json)) FROM acs.batch_users AS b");
}

void webadmin_users(struct ctx *c)
{
    list(c, "SELECT json_build_object('users', coalesce(json_agg(u ORDER BY u.name), '[]'::json))"
            "  FROM acs.web_user_list AS u");
}

void webadmin_tokens(struct ctx *c)
{
    list(c, "SELECT json_build_object('tokens', coalesce(json_agg(t ORDER BY t.name),"
            " '[]'::json)) FROM acs.api_token_list AS t");
}

/* The audit log, a page at a time. acs.audit_page is granted to acs_admin
 * alone: for any other role PostgreSQL refuses the call (403, its message). */
void webadmin_audit(struct ctx *c)
{
    static const char *const names[] = {"before", "limit", "actor", "action", "since", "until",
                                        NULL};
    struct list_query q = {c, names, true};
    if (!httpserv_query_each(c->req, known_arg, &q))
        return;
    const char *before;
    char limit[16];
    if (!page_args(c, &before, limit, sizeof limit))
        return;
    const char *since, *until;
    if (!time_args(c, &since, &until))
        return;
    const char *p[6] = {before, limit, httpserv_query(c->req, "actor"),
                        httpserv_query(c->req, "action"), since, until};
    PGresult *r = run(c, "SELECT acs.audit_page($1::bigint, $2::integer, $3, $4, "
                         "$5::timestamptz, $6::timestamptz)",
                      6, p);
    if (!r)
        return;
    if (commit(c))
        raw_json(c->req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

/* ------------------------------------------------------------ Batch Users */

/* The password is sealed with the public key, exactly as amtacsctl
 * batch-user set does, and stored with the same statement (the audit row
 * comes from the table's trigger). PostgreSQL never sees it in clear. */
void webadmin_batch_user_password(struct ctx *c, const char *name)
{
    static const struct fspec spec[] = {{"password", F_STRING, true}};
    cJSON *o = body_object(c, false);
    char *pw = NULL;
    size_t pwlen = 0;
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    struct vault_pub *pub = NULL;
    PGresult *r = NULL;
    char err[512];
    if (!o || !check_fields(c, o, spec, 1))
        goto out;
    pw = cJSON_GetObjectItemCaseSensitive(o, "password")->valuestring;
    pwlen = strlen(pw);
    if (!pwlen || pwlen > VAULT_MAX_PASSWORD) {
        problemf(c->req, 400, "field 'password' must be 1 to %d bytes", VAULT_MAX_PASSWORD);
        goto out;
    }
    if (!c->a->public_key_file) {
        problem(c->req, 503, "amtacs-web has no public key to seal with (web.public_key_file)");
        goto out;
    }
    /* Read per request: after amtacsctl rekey the new public key is used. */
    if (!(pub = vault_pub_load(c->a->public_key_file, err, sizeof err))) {
        log_event(c->a->lg, LOG_ERROR, "web.public_key", NULL, "%s", err);
        problem(c->req, 503, "amtacs-web cannot read its public key (web.public_key_file); "
                             "see its log");
        goto out;
    }
    if (vault_seal(pub, name, pw, pwlen, &sealed, &sealed_len, err, sizeof err)) {
        problemf(c->req, 400, "the password cannot be sealed: %s", err);
        goto out;
    }
    sodium_memzero(pw, pwlen);
    const char *p[3] = {name, vault_pub_id(pub), (const char *)sealed};
    int lens[3] = {0, 0, (int)sealed_len};
    int fmts[3] = {0, 0, 1};
    r = PQexecParams(c->db,
                     "INSERT INTO acs.batch_users (name, key_id, sealed_password) "
                     "VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE "
                     "SET key_id = excluded.key_id, sealed_password = excluded.sealed_password "
                     "RETURNING (xmax = 0)",
                     3, NULL, p, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        sql_problem(c, r);
        goto out;
    }
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", name);
    cJSON_AddStringToObject(ans, "key_id", vault_pub_id(pub));
    cJSON_AddBoolToObject(ans, "created", !strcmp(PQgetvalue(r, 0, 0), "t"));
    if (commit(c)) {
        json_out(c->req, 200, CT_JSON, ans);
        log_event(c->a->lg, LOG_INFO, "web.batch_user", NULL,
                  "password of Batch User %s sealed with key %s, by %s", name,
                  vault_pub_id(pub), c->actor);
    } else {
        cJSON_Delete(ans);
    }
out:
    if (pw)
        sodium_memzero(pw, pwlen);
    PQclear(r);
    free(sealed);
    vault_pub_free(pub);
    cJSON_Delete(o);
}

/* ------------------------------------------------------------ console users */

/* The hash of the body's "password" (wiped in the body once hashed); false
 * (answer set) if it breaks the rule amtacsctl user applies too. */
static bool new_password(struct ctx *c, cJSON *o, char hash[crypto_pwhash_STRBYTES])
{
    char *pw = cJSON_GetObjectItemCaseSensitive(o, "password")->valuestring;
    size_t len = strlen(pw);
    bool ok = false;
    size_t chars = webauth_utf8_chars(pw);
    if (chars < WEBAUTH_PASSWORD_MIN_CHARS || len > WEBAUTH_PASSWORD_MAX_BYTES)
        problemf(c->req, 400, "the password has %zu characters; %d to %d bytes' worth are "
                              "needed (at least %d characters)",
                 chars, WEBAUTH_PASSWORD_MIN_CHARS, WEBAUTH_PASSWORD_MAX_BYTES,
                 WEBAUTH_PASSWORD_MIN_CHARS);
    else if (!(ok = webauth_password_hash(pw, len, hash)))
        problem(c->req, 503, "hashing the password failed (out of memory?); try again");
    sodium_memzero(pw, len);
    return ok;
}

void webadmin_user_add(struct ctx *c)
{
    static const struct fspec spec[] = {
        {"name", F_STRING, true}, {"role", F_STRING, true}, {"password", F_STRING, true}};
    cJSON *o = body_object(c, false);
    char hash[crypto_pwhash_STRBYTES];
    PGresult *r = NULL;
    if (!o || !check_fields(c, o, spec, 3) || !new_password(c, o, hash))
        goto out;
    const char *p[3] = {str_field(o, "name"), str_field(o, "role"), hash};
    if (!(r = run(c, "SELECT acs.web_user_add($1, $2, $3)", 3, p)))
        goto out;
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", p[0]);
    cJSON_AddStringToObject(ans, "role", p[1]);
    if (commit(c)) {
        char loc[128];
        snprintf(loc, sizeof loc, "/api/v1/users/%s", p[0]);
        json_out(c->req, 201, CT_JSON, ans);
        httpserv_reply_header(c->req, "Location", loc);
    } else {
        cJSON_Delete(ans);
    }
out:
    sodium_memzero(hash, sizeof hash);
    PQclear(r);
    cJSON_Delete(o);
}

void webadmin_user_role(struct ctx *c, const char *name)
{
    static const struct fspec spec[] = {{"role", F_STRING, true}};
    cJSON *o = body_object(c, false);
    PGresult *r = NULL;
    if (!o || !check_fields(c, o, spec, 1))
        goto out;
    const char *p[2] = {name, str_field(o, "role")};
    if (!(r = run(c, "SELECT acs.web_user_set_role($1, $2)", 2, p)))
        goto out;
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", name);
    cJSON_AddStringToObject(ans, "from", PQgetvalue(r, 0, 0));
    cJSON_AddStringToObject(ans, "to", p[1]);
    commit_json(c, 200, ans);
out:
    PQclear(r);
    cJSON_Delete(o);
}

void webadmin_user_password(struct ctx *c, const char *name)
{
    static const struct fspec spec[] = {{"password", F_STRING, true}};
    cJSON *o = body_object(c, false);
    char hash[crypto_pwhash_STRBYTES];
    PGresult *r = NULL;
    if (!o || !check_fields(c, o, spec, 1) || !new_password(c, o, hash))
        goto out;
    const char *p[2] = {name, hash};
    if (!(r = run(c, "SELECT acs.web_user_set_password($1, $2)", 2, p)))
        goto out;
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", name);
    cJSON_AddNumberToObject(ans, "sessions_ended", atof(PQgetvalue(r, 0, 0)));
    commit_json(c, 200, ans);
out:
    sodium_memzero(hash, sizeof hash);
    PQclear(r);
    cJSON_Delete(o);
}

void webadmin_user_disable(struct ctx *c, const char *name, bool disable)
{
    if (!no_fields(c))
        return;
    const char *p[1] = {name};
    PGresult *r = run(c, disable ? "SELECT acs.web_user_disable($1)"
                                 : "SELECT 0 FROM acs.web_user_enable($1)", 1, p);
    if (!r)
        return;
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", name);
    cJSON_AddBoolToObject(ans, "disabled", disable);
    cJSON_AddNumberToObject(ans, "sessions_ended", atof(PQgetvalue(r, 0, 0)));
    PQclear(r);
    commit_json(c, 200, ans);
}

/* ------------------------------------------------------------ API tokens */

/* 32 random bytes, shown once as amtacs_ + base64url, as amtacsctl token
 * create makes them; the database gets their SHA-256. The answer is written
 * straight into the reply (wiped when sent), not through cJSON's buffers. */
void webadmin_token_create(struct ctx *c)
{
    static const struct fspec spec[] = {{"name", F_STRING, true}, {"role", F_STRING, true}};
    cJSON *o = body_object(c, false);
    char text[WEBAUTH_SECRET_TEXT], hash[WEBAUTH_HASH_HEX];
    PGresult *r = NULL;
    webauth_new_secret(text, hash);
    if (!o || !check_fields(c, o, spec, 2))
        goto out;
    const char *p[3] = {str_field(o, "name"), str_field(o, "role"), hash};
    if (!(r = run(c, "SELECT acs.api_token_create($1, $2, $3::bytea)", 3, p)))
        goto out;
    /* the name and role passed the database's checks: letters, digits, . _ @ - */
    char loc[128];
    snprintf(loc, sizeof loc, "/api/v1/tokens/%s", p[0]);
    if (!commit(c))
        goto out;
    struct buf *b = httpserv_reply_body(c->req);
    buf_reset(b);
    if (buf_puts(b, "{\"name\":\"") || buf_puts(b, p[0]) || buf_puts(b, "\",\"role\":\"") ||
        buf_puts(b, p[1]) || buf_puts(b, "\",\"token\":\"" WEBAUTH_TOKEN_PREFIX) ||
        buf_puts(b, text) || buf_puts(b, "\"}\n")) {
        problem(c->req, 500, "out of memory");
        goto out;
    }
    httpserv_reply(c->req, 201, CT_JSON);
    httpserv_reply_header(c->req, "Location", loc);
    log_event(c->a->lg, LOG_INFO, "web.token_create", NULL, "token %s (%s) by %s", p[0], p[1],
              c->actor);
out:
    sodium_memzero(text, sizeof text);
    PQclear(r);
    cJSON_Delete(o);
}

void webadmin_token_revoke(struct ctx *c, const char *name)
{
    if (!no_fields(c))
        return;
    const char *p[1] = {name};
    PGresult *r = run(c, "SELECT acs.api_token_revoke($1)", 1, p);
    if (!r)
        return;
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", name);
    cJSON_AddBoolToObject(ans, "revoked", true);
    cJSON_AddBoolToObject(ans, "already", strcmp(PQgetvalue(r, 0, 0), "t") != 0);
    PQclear(r);
    commit_json(c, 200, ans);
}

/* ------------------------------------------------------------ connection groups */

/* Every role but the daemon's may read the groups (a scheduler submits to
 * them); acs.group_set and acs.group_delete are granted to acs_admin alone,
 * so for anyone else PostgreSQL refuses the call (403, its message). */
void webadmin_groups(struct ctx *c)
{
    list(c, "SELECT json_build_object('groups', (" DB_GROUPS_SQL "))");
}

void webadmin_group_set(struct ctx *c, const char *name)
{
    static const struct fspec spec[] = {{"connections", F_STRINGS, true}};
    cJSON *o = body_object(c, false);
    const char **members = NULL;
    char *lit = NULL;
    PGresult *r = NULL;
    if (!o || !check_fields(c, o, spec, 1))
        goto out;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "connections"), *m;
    size_t n = 0;
    if (cJSON_IsArray(a) && !(members = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof *members))) {
        problem(c->req, 500, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(m, a) members[n++] = m->valuestring;
    /* null is no member at all: acs.group_set says what a group needs */
    if (!(lit = jobspec_array_literal(members, n))) {
        problem(c->req, 500, "out of memory");
        goto out;
    }
    const char *p[2] = {name, lit};
    if (!(r = run(c, "SELECT acs.group_set($1, $2::text[])", 2, p)))
        goto out;
    bool created = !strcmp(PQgetvalue(r, 0, 0), "created");
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", name);
    cJSON_AddStringToObject(ans, "result", PQgetvalue(r, 0, 0));
    cJSON_AddItemToObject(ans, "connections", cJSON_Duplicate(a, true));
    if (commit(c)) {
        json_out(c->req, created ? 201 : 200, CT_JSON, ans);
        log_event(c->a->lg, LOG_INFO, "web.group_set", NULL, "group %s %s by %s", name,
                  PQgetvalue(r, 0, 0), c->actor);
    } else {
        cJSON_Delete(ans);
    }
out:
    PQclear(r);
    free(lit);
    free(members);
    cJSON_Delete(o);
}

void webadmin_group_delete(struct ctx *c, const char *name)
{
    if (!no_fields(c))
        return;
    const char *p[1] = {name};
    PGresult *r = run(c, "SELECT acs.group_delete($1)", 1, p);
    if (!r)
        return;
    bool deleted = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!deleted) {
        problemf(c->req, 404, "no group %s", name);
        return;
    }
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "name", name);
    cJSON_AddBoolToObject(ans, "deleted", true);
    if (commit(c)) {
        json_out(c->req, 200, CT_JSON, ans);
        log_event(c->a->lg, LOG_INFO, "web.group_delete", NULL, "group %s by %s", name,
                  c->actor);
    } else {
        cJSON_Delete(ans);
    }
}
