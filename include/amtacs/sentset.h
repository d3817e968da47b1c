/*
 * sentset: the taskIds this process sent a Start for, to a server without
 * idempotent Start, bounded: the oldest are forgotten first.
 *
 * Why: with asynchronous replication, a failover can lose the commit of a
 * claim after the daemon sent Start. The job is queued again on the new
 * primary, and claimed again as if nobody had ever started it; on such a
 * server a second Start makes a second request. The process that sent the
 * first Start still knows: a claimed job whose taskId is here may have been
 * started, and goes in doubt instead (docs/takeover.md).
 */
#ifndef AMTACS_SENTSET_H
#define AMTACS_SENTSET_H

#include <stdbool.h>
#include <stddef.h>

struct sentset;

/* A set that remembers at most `capacity` taskIds (> 0). NULL when out of memory. */
struct sentset *sentset_new(size_t capacity);
void sentset_free(struct sentset *s);
/* Remembers a taskId (at most 63 bytes are kept); forgets the oldest when full. */
void sentset_add(struct sentset *s, const char *task_id);
bool sentset_has(const struct sentset *s, const char *task_id);
size_t sentset_size(const struct sentset *s);

#endif
