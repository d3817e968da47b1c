/*
 * sim_util: the two containers the simulator's world needs to stay cheap with
 * 100,000 requests: a min-heap of timed events and a string-keyed hash map.
 */
#ifndef AMTACS_SIM_UTIL_H
#define AMTACS_SIM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One timed event. Events with equal times pop in push order (seq). */
struct sim_event {
    int64_t at;   /* simulated microseconds since the simulator started */
    uint64_t seq; /* assigned by sim_heap_push: the FIFO tie-break */
    uint32_t req; /* request index, or UINT32_MAX for a controller poll */
    uint32_t gen; /* the request's generation when pushed; stale if it changed */
};

struct sim_heap;

/* Creates an empty heap; NULL when out of memory. */
struct sim_heap *sim_heap_create(void);
/* Frees the heap; NULL is a no-op. */
void sim_heap_free(struct sim_heap *h);
/* Adds an event (its seq is overwritten); false when out of memory. */
bool sim_heap_push(struct sim_heap *h, struct sim_event ev) __attribute__((warn_unused_result));
/* The earliest event, or NULL if the heap is empty (borrowed until the next push/pop). */
const struct sim_event *sim_heap_peek(const struct sim_heap *h);
/* Removes the earliest event into *out; false if the heap is empty. */
bool sim_heap_pop(struct sim_heap *h, struct sim_event *out);
/* Number of queued events. */
size_t sim_heap_len(const struct sim_heap *h);

struct sim_map;

/* Creates an empty map from NUL-terminated strings (copied) to int64 values. */
struct sim_map *sim_map_create(void);
/* Frees the map and its keys; NULL is a no-op. When wipe is true the keys are
 * zeroed first (the token map holds secrets). */
void sim_map_free(struct sim_map *m, bool wipe);
/* Inserts or replaces; false when out of memory (the map is unchanged). */
bool sim_map_put(struct sim_map *m, const char *key, int64_t value)
    __attribute__((warn_unused_result));
/* Looks a key up; true and *value set if present. */
bool sim_map_get(const struct sim_map *m, const char *key, int64_t *value);
/* Removes a key; true if it was present. */
bool sim_map_remove(struct sim_map *m, const char *key, bool wipe);
/* Removes every key. */
void sim_map_clear(struct sim_map *m, bool wipe);
/* Removes every key whose value is below min (expired tokens); returns how many. */
size_t sim_map_prune_below(struct sim_map *m, int64_t min, bool wipe);
/* Number of keys. */
size_t sim_map_len(const struct sim_map *m);
/* Iteration: *pos starts at 0; returns false at the end. Keys are borrowed.
 * The map must not change during an iteration. */
bool sim_map_next(const struct sim_map *m, size_t *pos, const char **key, int64_t *value);

#endif
