/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue: the cross-thread hand-off of the process shell. Producers on any
 * thread push items; one owning thread takes them, oldest first. Work
 * crosses threads only through such a queue (STYLE.md).
 *
 * Items are intrusive: the caller embeds an fl_queue_item_t in its own
 * struct (and gets it back with fl_queue_entry), so pushing never
 * allocates and cannot fail. Each item carries a weight (bytes, say) so
 * the owner can take a bounded share per turn. The wake callback, given at
 * construction, runs on the pushing thread when the queue goes from empty
 * to non-empty (one wake-up per batch; the owner takes everything it
 * finds), outside the lock; it must be safe from that thread (e.g.
 * lws_cancel_service, a write to an eventfd).
 *
 * @locality push: any thread; take, take_some, count: the owning thread
 * (any thread is safe, but the wake is meant for one owner).
 */
#ifndef FLUSHLINE_QUEUE_H
#define FLUSHLINE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fl_queue_item_s {
    struct fl_queue_item_s *next;
    size_t weight; /* what fl_queue_take_some adds up */
} fl_queue_item_t;

/* The struct of type that holds item as member. */
#define fl_queue_entry(item, type, member) ((type *)(void *)((char *)(item) - offsetof(type, member)))

typedef struct fl_queue_s fl_queue_t;

/* An empty queue; on_wake(arg) (may be NULL) as described above. NULL on
 * OOM or when the lock cannot be made. */
fl_queue_t *fl_queue_new(void (*on_wake)(void *arg), void *arg);
/* Frees the queue; items still queued are the caller's (take them first).
 * NULL is safe. */
void fl_queue_free(fl_queue_t *q);

/* Appends the chain first..last (linked by next; last->next is ignored) in
 * one step, so a batch is never interleaved with another thread's. */
void fl_queue_push(fl_queue_t *q, fl_queue_item_t *first, fl_queue_item_t *last);
/* Takes every queued item: a chain, oldest first, or NULL. */
fl_queue_item_t *fl_queue_take(fl_queue_t *q);
/* Takes the oldest items while their weights add up to at most max_weight
 * (always one at least, whatever its weight); *more tells whether some are
 * left. NULL when empty. */
fl_queue_item_t *fl_queue_take_some(fl_queue_t *q, size_t max_weight, bool *more);
/* Items queued now. */
size_t fl_queue_count(fl_queue_t *q);

#endif
