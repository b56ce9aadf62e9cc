/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue: see queue.h. A mutex around a singly linked list with a tail
 * pointer; the wake callback runs after the lock is released, so a wake
 * that takes a lock of its own (lws_cancel_service does) cannot deadlock
 * with the owner.
 */
#include "flushline/queue.h"

#include <pthread.h>
#include <stdlib.h>

struct fl_queue_s {
    pthread_mutex_t lock;
    fl_queue_item_t *head, *tail;
    size_t count;
    void (*on_wake)(void *arg);
    void *arg;
};

fl_queue_t *fl_queue_new(void (*on_wake)(void *arg), void *arg)
{
    fl_queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        return NULL;
    }
    q->on_wake = on_wake;
    q->arg = arg;
    return q;
}

void fl_queue_free(fl_queue_t *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q);
}

void fl_queue_push(fl_queue_t *q, fl_queue_item_t *first, fl_queue_item_t *last)
{
    bool was_empty;
    size_t n = 1;
    for (fl_queue_item_t *it = first; it != last; it = it->next)
        n++;
    last->next = NULL;
    pthread_mutex_lock(&q->lock);
    was_empty = q->head == NULL;
    if (q->tail)
        q->tail->next = first;
    else
        q->head = first;
    q->tail = last;
    q->count += n;
    pthread_mutex_unlock(&q->lock);
    if (was_empty && q->on_wake)
        q->on_wake(q->arg);
}

fl_queue_item_t *fl_queue_take(fl_queue_t *q)
{
    fl_queue_item_t *list;
    pthread_mutex_lock(&q->lock);
    list = q->head;
    q->head = q->tail = NULL;
    q->count = 0;
    pthread_mutex_unlock(&q->lock);
    return list;
}

fl_queue_item_t *fl_queue_take_some(fl_queue_t *q, size_t max_weight, bool *more)
{
    fl_queue_item_t *list, *last;
    pthread_mutex_lock(&q->lock);
    list = last = q->head;
    if (list) {
        size_t weight = list->weight, n = 1;
        while (last->next && weight + last->next->weight <= max_weight) {
            last = last->next;
            weight += last->weight;
            n++;
        }
        q->head = last->next;
        if (!q->head)
            q->tail = NULL;
        last->next = NULL;
        q->count -= n;
    }
    *more = q->head != NULL;
    pthread_mutex_unlock(&q->lock);
    return list;
}

size_t fl_queue_count(fl_queue_t *q)
{
    size_t n;
    pthread_mutex_lock(&q->lock);
    n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}
