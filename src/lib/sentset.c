#include "amtacs/sentset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 64

/* A ring of the keys in the order they came (the oldest is evicted first)
 * and an open-addressing table of ring positions, linear probing, deleted
 * by backward shifting so that no tombstones pile up. */
struct sentset {
    char (*ring)[KEY_MAX];
    size_t cap, n, head; /* head: the oldest */
    size_t *slots;       /* ring position + 1; 0 = empty */
    size_t nslots;       /* a power of two, at least 2 x cap */
};

static uint64_t hash(const char *k)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h;
}

struct sentset *sentset_new(size_t capacity)
{
    if (capacity == 0 || capacity > SIZE_MAX / 4)
        return NULL;
    struct sentset *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = capacity;
    s->nslots = 1;
    while (s->nslots < 2 * capacity)
        s->nslots *= 2;
    s->ring = calloc(capacity, sizeof *s->ring);
    s->slots = calloc(s->nslots, sizeof *s->slots);
    if (!s->ring || !s->slots) {
        sentset_free(s);
        return NULL;
    }
    return s;
}

void sentset_free(struct sentset *s)
{
    if (!s)
        return;
    free(s->ring);
    free(s->slots);
    free(s);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const struct sentset *s, const char *key)
{
    size_t mask = s->nslots - 1, i = (size_t)hash(key) & mask;
    while (s->slots[i] && strcmp(s->ring[s->slots[i] - 1], key))
        i = (i + 1) & mask;
    return i;
}

static void remove_slot(struct sentset *s, size_t i)
{
    size_t mask = s->nslots - 1, j = i;
    s->slots[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!s->slots[j])
            return;
        size_t home = (size_t)hash(s->ring[s->slots[j] - 1]) & mask;
        /* j's entry may move back to i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            s->slots[j] = 0;
            i = j;
        }
    }
}

void sentset_add(struct sentset *s, const char *task_id)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%s", task_id);
    if (s->slots[find(s, key)])
        return;
    size_t pos;
    if (s->n == s->cap) {
        pos = s->head; /* the oldest makes room */
        remove_slot(s, find(s, s->ring[pos]));
        s->head = (s->head + 1) % s->cap;
    } else {
        pos = (s->head + s->n) % s->cap;
        s->n++;
    }
    memcpy(s->ring[pos], key, sizeof key);
    s->slots[find(s, key)] = pos + 1;
}

bool sentset_has(const struct sentset *s, const char *task_id)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%s", task_id);
    return s->slots[find(s, key)] != 0;
}

size_t sentset_size(const struct sentset *s) { return s->n; }
