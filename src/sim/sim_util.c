/* sim_util: min-heap of timed events and an open-addressing string map. */
#include "sim_util.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct sim_heap {
    struct sim_event *ev;
    size_t len;
    size_t cap;
    uint64_t next_seq;
};

struct sim_heap *sim_heap_create(void)
{
    return calloc(1, sizeof(struct sim_heap));
}

void sim_heap_free(struct sim_heap *h)
{
    if (h == NULL)
        return;
    free(h->ev);
    free(h);
}

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    return a->seq < b->seq;
}

bool sim_heap_push(struct sim_heap *h, struct sim_event ev)
{
    if (h->len == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 256;
        struct sim_event *n = realloc(h->ev, ncap * sizeof(*n));
        if (n == NULL)
            return false;
        h->ev = n;
        h->cap = ncap;
    }
    ev.seq = h->next_seq++;
    size_t i = h->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&ev, &h->ev[parent]))
            break;
        h->ev[i] = h->ev[parent];
        i = parent;
    }
    h->ev[i] = ev;
    return true;
}

const struct sim_event *sim_heap_peek(const struct sim_heap *h)
{
    return h->len ? &h->ev[0] : NULL;
}

bool sim_heap_pop(struct sim_heap *h, struct sim_event *out)
{
    if (h->len == 0)
        return false;
    *out = h->ev[0];
    struct sim_event last = h->ev[--h->len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < h->len && ev_before(&h->ev[l], best)) {
            m = l;
            best = &h->ev[l];
        }
        if (r < h->len && ev_before(&h->ev[r], best))
            m = r;
        if (m == i)
            break;
        h->ev[i] = h->ev[m];
        i = m;
    }
    if (h->len)
        h->ev[i] = last;
    return true;
}

size_t sim_heap_len(const struct sim_heap *h)
{
    return h->len;
}

struct map_slot {
    char *key; /* NULL = empty */
    uint64_t hash;
    int64_t value;
};

struct sim_map {
    struct map_slot *slot;
    size_t cap; /* a power of two, or 0 */
    size_t len;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

struct sim_map *sim_map_create(void)
{
    return calloc(1, sizeof(struct sim_map));
}

static void free_key(char *key, bool wipe)
{
    if (key == NULL)
        return;
    if (wipe)
        sodium_memzero(key, strlen(key));
    free(key);
}

void sim_map_clear(struct sim_map *m, bool wipe)
{
    for (size_t i = 0; i < m->cap; i++) {
        free_key(m->slot[i].key, wipe);
        m->slot[i].key = NULL;
    }
    m->len = 0;
}

void sim_map_free(struct sim_map *m, bool wipe)
{
    if (m == NULL)
        return;
    sim_map_clear(m, wipe);
    free(m->slot);
    free(m);
}

static size_t find_slot(const struct sim_map *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slot[i].key != NULL) {
        if (m->slot[i].hash == h && strcmp(m->slot[i].key, key) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static bool grow(struct sim_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    struct map_slot *n = calloc(ncap, sizeof(*n));
    if (n == NULL)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slot[i].key == NULL)
            continue;
        size_t j = m->slot[i].hash & (ncap - 1);
        while (n[j].key != NULL)
            j = (j + 1) & (ncap - 1);
        n[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = n;
    m->cap = ncap;
    return true;
}

bool sim_map_put(struct sim_map *m, const char *key, int64_t value)
{
    if ((m->len + 1) * 2 > m->cap && !grow(m))
        return false;
    uint64_t h = hash_str(key);
    size_t i = find_slot(m, key, h);
    if (m->slot[i].key != NULL) {
        m->slot[i].value = value;
        return true;
    }
    char *copy = strdup(key);
    if (copy == NULL)
        return false;
    m->slot[i].key = copy;
    m->slot[i].hash = h;
    m->slot[i].value = value;
    m->len++;
    return true;
}

bool sim_map_get(const struct sim_map *m, const char *key, int64_t *value)
{
    if (m->len == 0)
        return false;
    size_t i = find_slot(m, key, hash_str(key));
    if (m->slot[i].key == NULL)
        return false;
    *value = m->slot[i].value;
    return true;
}

/* Backward-shift deletion keeps linear probing correct without tombstones. */
static void remove_at(struct sim_map *m, size_t i, bool wipe)
{
    size_t mask = m->cap - 1;
    free_key(m->slot[i].key, wipe);
    m->slot[i].key = NULL;
    m->len--;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->slot[j].key == NULL)
            break;
        size_t home = m->slot[j].hash & mask;
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        bool in_between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (in_between)
            continue;
        m->slot[i] = m->slot[j];
        m->slot[j].key = NULL;
        i = j;
    }
}

bool sim_map_remove(struct sim_map *m, const char *key, bool wipe)
{
    if (m->len == 0)
        return false;
    size_t i = find_slot(m, key, hash_str(key));
    if (m->slot[i].key == NULL)
        return false;
    remove_at(m, i, wipe);
    return true;
}

size_t sim_map_prune_below(struct sim_map *m, int64_t min, bool wipe)
{
    size_t removed = 0;
    size_t i = 0;
    while (i < m->cap) {
        /* remove_at may shift a later key into slot i: look at i again. */
        if (m->slot[i].key != NULL && m->slot[i].value < min) {
            remove_at(m, i, wipe);
            removed++;
            continue;
        }
        i++;
    }
    return removed;
}

size_t sim_map_len(const struct sim_map *m)
{
    return m->len;
}

bool sim_map_next(const struct sim_map *m, size_t *pos, const char **key, int64_t *value)
{
    while (*pos < m->cap) {
        size_t i = (*pos)++;
        if (m->slot[i].key != NULL) {
            *key = m->slot[i].key;
            *value = m->slot[i].value;
            return true;
        }
    }
    return false;
}
