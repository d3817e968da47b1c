/*
 * webint: what the modules of amtacs-web's API share inside src/web (not a
 * library header). webapi.c routes a request, authenticates the caller and
 * serves the jobs, connections and alerts; webadmin.c serves the operators'
 * and admins' endpoints (resolve, rerun, Batch Users, users, tokens, connection groups, stats).
 * Both answer through the helpers below, which webapi.c defines.
 */
#ifndef AMTACS_WEB_WEBINT_H
#define AMTACS_WEB_WEBINT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "amtacs/buf.h"
#include "amtacs/httpserv.h"
#include "amtacs/log.h"
#include "amtacs/webauth.h"
#include "amtacs/webpool.h"

#define CT_JSON "application/json"
#define CT_PROBLEM "application/problem+json"
#define CT_TEXT "text/plain; charset=utf-8"
#define WEB_ADDR_MAX 64 /* a numeric IPv4 or IPv6 address, with room */

struct webapi {
    struct webpool *pool;
    struct webevents *events; /* the hub of the event streams */
    const struct logger *lg;
    long idle_s, lifetime_s;
    bool secure_cookie;
    bool behind_proxy;      /* the client address is the one the proxy forwards */
    char *public_key_file;  /* seals Batch User passwords; NULL: none configured */
    char dummy_hash[crypto_pwhash_STRBYTES];
};

/* One request on a worker. */
struct ctx {
    struct webapi *a;
    struct httpserv_req *req;
    struct webpool_conn *pc;
    PGconn *db;
    const char *method;
    bool unsafe;      /* POST, PUT, PATCH, DELETE */
    bool in_tx;
    char addr[WEB_ADDR_MAX]; /* the client: the peer, or the address the proxy forwards */
    char actor[80];   /* the user, or "token:NAME" */
    char role[16];    /* viewer, scheduler, operator, admin */
    char csrf[WEBAUTH_SECRET_TEXT + 16];
    bool by_session;
    char session_hash[WEBAUTH_HASH_HEX];
    char cred_hash[WEBAUTH_HASH_HEX]; /* the session's or the token's */
    bool streamed;    /* the answer went out as a stream (httpserv_finish_stream) */
};

/* Answers: o (taken) as JSON; an RFC 9457 problem; a JSON text as is. */
void json_out(struct httpserv_req *req, unsigned status, const char *ctype, cJSON *o);
void problem(struct httpserv_req *req, unsigned status, const char *detail);
__attribute__((format(printf, 3, 4)))
void problemf(struct httpserv_req *req, unsigned status, const char *fmt, ...);
void raw_json(struct httpserv_req *req, unsigned status, const char *text, size_t len);

/* Statements in the request's transaction: NULL/false with the answer set
 * to the database's refusal. commit() ends the transaction. */
PGresult *run(struct ctx *c, const char *sql, int n, const char *const *params);
bool run0(struct ctx *c, const char *sql);
bool commit(struct ctx *c);
void commit_json(struct ctx *c, unsigned status, cJSON *o);
/* The answer to a statement PostgreSQL refused (its message, the status its
 * SQLSTATE stands for). */
void sql_problem(struct ctx *c, const PGresult *r);

/* Bodies: a strict JSON object (NULL, answer set, if not); its fields
 * checked against a spec (unknown fields and wrong types refused, naming the
 * field); a body that must be empty or {}. */
cJSON *body_object(struct ctx *c, bool empty_ok);
enum ftype { F_STRING, F_STRING_OR_NULL, F_STRINGS, F_INT_OR_NULL };
struct fspec {
    const char *name;
    enum ftype type;
    bool required;
};
bool check_fields(struct ctx *c, const cJSON *o, const struct fspec *spec, size_t n);
const char *str_field(const cJSON *o, const char *name);
bool no_fields(struct ctx *c);

/* Query strings: only the NULL-terminated names are taken. */
struct list_query {
    struct ctx *c;
    const char *const *names;
    bool ok;
};
bool known_arg(void *cls, const char *name, const char *value);
bool is_id(const char *s);
/* before and limit of a keyset page; false (answer set) if malformed */
bool page_args(struct ctx *c, const char **before, char *limit, size_t limlen);
/* the since and until of a time range (NULL when not given); false (answer
 * set) if one is not an RFC 3339 date-time such as 2026-11-30T02:15:00Z */
bool time_args(struct ctx *c, const char **since, const char **until);

/* webadmin.c */
void webadmin_resolve(struct ctx *c, const char *id);
void webadmin_rerun(struct ctx *c, const char *id);
void webadmin_batch_users(struct ctx *c);
void webadmin_batch_user_password(struct ctx *c, const char *name);
void webadmin_users(struct ctx *c);
void webadmin_user_add(struct ctx *c);
void webadmin_user_role(struct ctx *c, const char *name);
void webadmin_user_password(struct ctx *c, const char *name);
void webadmin_user_disable(struct ctx *c, const char *name, bool disable);
void webadmin_tokens(struct ctx *c);
void webadmin_token_create(struct ctx *c);
void webadmin_token_revoke(struct ctx *c, const char *name);
void webadmin_stats(struct ctx *c);
void webadmin_audit(struct ctx *c);
void webadmin_groups(struct ctx *c);
void webadmin_group_set(struct ctx *c, const char *name);
void webadmin_group_delete(struct ctx *c, const char *name);

#endif
