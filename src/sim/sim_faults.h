/*
 * sim_faults: fault injection for /api/... switched at run time through
 * /sim/faults — added latency, error statuses, connection resets (before or
 * after the call took effect), hangs, malformed, oversized or mislabelled
 * bodies, and "server down". Rates are drawn from a PRNG seeded by --seed so a
 * run is repeatable; a rate of 1.0 always fires.
 *
 * Also owns the interruptible sleep used for latency and hangs, so that a
 * shutdown wakes every sleeping connection at once.
 */
#ifndef AMTACS_SIM_FAULTS_H
#define AMTACS_SIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* How a request is cut short before it takes effect (at most one). */
enum sim_fault_cut {
    SIM_CUT_NONE,  /* handled normally */
    SIM_CUT_RESET, /* connection closed without an answer */
    SIM_CUT_HANG,  /* held for hang_ms, then closed without an answer */
    SIM_CUT_ERROR, /* answered with error_status and a JSON error body */
};

/* What to do to one request; decided once per request. */
struct sim_fault_plan {
    bool any;                 /* at least one fault fires (counted as injected) */
    long latency_ms;          /* delay before answering */
    enum sim_fault_cut cut;
    long hang_ms;
    int error_status;
    bool reset_after;         /* call takes effect, then the answer is lost */
    bool malformed;           /* body truncated to invalid JSON */
    bool oversized;           /* body padded to oversized_bytes */
    size_t oversized_bytes;
    bool wrong_content_type;  /* text/html instead of application/json */
};

struct sim_faults;

/* Creates an inactive fault set whose PRNG starts from seed. */
struct sim_faults *sim_faults_create(uint64_t seed);
/* Frees it; NULL is a no-op. No thread may be sleeping in it. */
void sim_faults_free(struct sim_faults *f);

/* Decides the faults for one /api request on `route` (heartbeat, logon,
 * start, kill, stop, monitor, monitor_jobs, messages, other). */
void sim_faults_plan(struct sim_faults *f, const char *route, struct sim_fault_plan *out);

/* The current settings as JSON (caller frees). */
cJSON *sim_faults_get(struct sim_faults *f);
/* Replaces the settings from a JSON object (PUT); on a bad field returns false
 * with a reason in err and changes nothing. */
bool sim_faults_set(struct sim_faults *f, const cJSON *o, char *err, size_t errlen);
/* Switches every fault off (DELETE). */
void sim_faults_clear(struct sim_faults *f);

/* Sleeps ms milliseconds; returns false early once shutdown was called. */
bool sim_faults_sleep(struct sim_faults *f, long ms);
/* Wakes all sleepers and makes further sleeps return at once. */
void sim_faults_shutdown(struct sim_faults *f);

#endif
