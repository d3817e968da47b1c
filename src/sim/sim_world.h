/*
 * sim_world: everything the simulated AMT Batch Server knows — requests and
 * their state machine, queues and the batch controller, messages, API users,
 * logon tokens and counters — behind one mutex.
 *
 * Time is lazy: timed events wait in a heap and are applied whenever a call
 * arrives, in time order, so idle requests cost nothing. Every entry point
 * takes the lock, advances the world to "now", then answers.
 *
 * Entry points answer with a struct sim_reply: an HTTP status and a JSON body
 * (on errors {"errorCode","errorDescription"}). The caller owns reply->body.
 */
#ifndef AMTACS_SIM_WORLD_H
#define AMTACS_SIM_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sim_catalog.h"

/* errorCode of every authentication failure (AMT's AUTHENTICATION_ERROR). */
#define SIM_ERR_AUTH 24

struct sim_reply {
    int status;  /* HTTP status */
    cJSON *body; /* owned by the receiver; NULL only when out of memory */
};

/* Fills an error reply: errorCode = code (the HTTP status, or 24 for auth). */
void sim_reply_error(struct sim_reply *r, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fills a 200 reply that takes ownership of body (a NULL body becomes a 500). */
void sim_reply_ok(struct sim_reply *r, cJSON *body);

struct sim_world_opts {
    double time_scale;     /* simulated seconds = real seconds / time_scale */
    long clock_s;          /* simulated time of day at start in seconds; < 0: real local time */
    long token_lifetime_s; /* real seconds a logon token stays valid */
};

struct sim_world;

/* Creates the world over a loaded catalog (borrowed; must outlive the world). */
struct sim_world *sim_world_create(const struct sim_catalog *cat, const struct sim_world_opts *o);
/* Frees the world; NULL is a no-op. Token memory is wiped. */
void sim_world_free(struct sim_world *w);

/* Per-route request counting (route names as in the fault filter). */
void sim_world_count_route(struct sim_world *w, const char *route);
/* Counts one injected fault. */
void sim_world_count_fault(struct sim_world *w);
/* Counts a TCP connection accepted by the HTTP server. */
void sim_world_count_connection(struct sim_world *w);

/* GET /api/heartbeat. */
void sim_world_heartbeat(struct sim_world *w, struct sim_reply *r);
/* POST /api/logon {"user","password"}. */
void sim_world_logon(struct sim_world *w, const cJSON *body, struct sim_reply *r);
/* True if the token is known and not expired. */
bool sim_world_token_ok(struct sim_world *w, const char *token);
/* True while the MonitorJobs feature is switched on. */
bool sim_world_has_monitor_jobs(struct sim_world *w);
/* POST /api/OpConJobAction: Start, Kill or Stop. */
void sim_world_job_action(struct sim_world *w, const cJSON *body, struct sim_reply *r);
/* GET /api/MonitorJob/<id>. */
void sim_world_monitor(struct sim_world *w, long id, struct sim_reply *r);
/* POST /api/MonitorJobs {"ids":[...]}. */
void sim_world_monitor_many(struct sim_world *w, const cJSON *body, struct sim_reply *r);
/* GET /api/GetMessages/<id>?after=&limit= (the raw query values, NULL if absent). */
void sim_world_messages(struct sim_world *w, long id, const char *after, const char *limit,
                        struct sim_reply *r);

/* GET /sim/counters. */
void sim_world_counters(struct sim_world *w, struct sim_reply *r);
/* GET /sim/tasks. */
void sim_world_tasks(struct sim_world *w, struct sim_reply *r);
/* GET /sim/requests/<id>. */
void sim_world_request_info(struct sim_world *w, long id, struct sim_reply *r);
/* POST /sim/requests/<id>/state {"code":N}. */
void sim_world_force_state(struct sim_world *w, long id, const cJSON *body, struct sim_reply *r);
/* POST /sim/tokens/expire. */
void sim_world_expire_tokens(struct sim_world *w, struct sim_reply *r);
/* GET /sim/tokens: the live tokens themselves, so that tests can search a
 * client's outputs for them (a test control; a real server has no such call). */
void sim_world_tokens(struct sim_world *w, struct sim_reply *r);
/* GET /sim/config and PUT /sim/config {"token_lifetime","features"}. */
void sim_world_config(struct sim_world *w, const cJSON *body, struct sim_reply *r);
/* POST /sim/users {"name","password"}. */
void sim_world_add_user(struct sim_world *w, const cJSON *body, struct sim_reply *r);
/* GET /sim/clock: simulated time and time of day. */
void sim_world_clock(struct sim_world *w, struct sim_reply *r);

#endif
