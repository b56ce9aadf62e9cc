/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the cross-thread queue (common/queue.h): order is kept,
 * a batch is one wake-up, take_some takes a bounded share (at least one
 * item), and items pushed by several threads all arrive, each thread's in
 * its own order.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/queue.h"

typedef struct item_s {
    int thread, n;
    fl_queue_item_t link;
} item_t;

static atomic_int wakes;

static void on_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

static item_t *mk(int thread, int n, size_t weight)
{
    item_t *it = calloc(1, sizeof *it);
    it->thread = thread;
    it->n = n;
    it->link.weight = weight;
    return it;
}

static int free_chain(fl_queue_item_t *l)
{
    int n = 0;
    while (l) {
        fl_queue_item_t *next = l->next;
        free(fl_queue_entry(l, item_t, link));
        l = next;
        n++;
    }
    return n;
}

static void test_order_and_wake(void)
{
    fl_queue_t *q = fl_queue_new(on_wake, NULL);
    item_t *a = mk(0, 1, 1), *b = mk(0, 2, 1), *c = mk(0, 3, 1);
    fl_queue_item_t *l;
    ASSERT_TRUE(q != NULL);
    atomic_store(&wakes, 0);
    ASSERT_TRUE(fl_queue_take(q) == NULL);
    a->link.next = &b->link; /* a batch of two */
    fl_queue_push(q, &a->link, &b->link);
    fl_queue_push(q, &c->link, &c->link); /* not empty: no second wake */
    ASSERT_EQ(atomic_load(&wakes), 1);
    ASSERT_EQ(fl_queue_count(q), 3);
    l = fl_queue_take(q);
    ASSERT_EQ(fl_queue_entry(l, item_t, link)->n, 1);
    ASSERT_EQ(fl_queue_entry(l->next, item_t, link)->n, 2);
    ASSERT_EQ(fl_queue_entry(l->next->next, item_t, link)->n, 3);
    ASSERT_TRUE(l->next->next->next == NULL);
    ASSERT_EQ(fl_queue_count(q), 0);
    ASSERT_EQ(free_chain(l), 3);
    /* empty again: the next push wakes again */
    c = mk(0, 4, 1);
    fl_queue_push(q, &c->link, &c->link);
    ASSERT_EQ(atomic_load(&wakes), 2);
    ASSERT_EQ(free_chain(fl_queue_take(q)), 1);
    fl_queue_free(q);
}

static void test_take_some(void)
{
    fl_queue_t *q = fl_queue_new(NULL, NULL);
    fl_queue_item_t *l;
    bool more = true;
    ASSERT_TRUE(fl_queue_take_some(q, 100, &more) == NULL);
    ASSERT_TRUE(!more);
    /* weights 60, 30, 20, 500, 5 */
    static const size_t w[] = {60, 30, 20, 500, 5};
    for (int i = 0; i < 5; i++) {
        item_t *it = mk(0, i, w[i]);
        fl_queue_push(q, &it->link, &it->link);
    }
    l = fl_queue_take_some(q, 100, &more); /* 60 + 30; + 20 would pass 100 */
    ASSERT_TRUE(more);
    ASSERT_EQ(fl_queue_entry(l, item_t, link)->n, 0);
    ASSERT_EQ(free_chain(l), 2);
    ASSERT_EQ(fl_queue_count(q), 3);
    l = fl_queue_take_some(q, 100, &more); /* 20; 500 does not fit */
    ASSERT_EQ(fl_queue_entry(l, item_t, link)->n, 2);
    ASSERT_EQ(free_chain(l), 1);
    l = fl_queue_take_some(q, 100, &more); /* 500 alone: one at least */
    ASSERT_EQ(fl_queue_entry(l, item_t, link)->n, 3);
    ASSERT_EQ(free_chain(l), 1);
    ASSERT_TRUE(more);
    l = fl_queue_take_some(q, 100, &more);
    ASSERT_EQ(fl_queue_entry(l, item_t, link)->n, 4);
    ASSERT_EQ(free_chain(l), 1);
    ASSERT_TRUE(!more);
    ASSERT_EQ(fl_queue_count(q), 0);
    /* a new push after a take_some that emptied it lands first */
    item_t *it = mk(0, 9, 1);
    fl_queue_push(q, &it->link, &it->link);
    l = fl_queue_take(q);
    ASSERT_EQ(fl_queue_entry(l, item_t, link)->n, 9);
    ASSERT_EQ(free_chain(l), 1);
    fl_queue_free(q);
}

#define THREADS 4
#define PER_THREAD 20000

typedef struct prod_s {
    fl_queue_t *q;
    int thread;
} prod_t;

static void *producer(void *arg)
{
    prod_t *p = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        item_t *it = mk(p->thread, i, 1);
        fl_queue_push(p->q, &it->link, &it->link);
    }
    return NULL;
}

static void test_threads(void)
{
    fl_queue_t *q = fl_queue_new(on_wake, NULL);
    pthread_t th[THREADS];
    prod_t args[THREADS];
    int next[THREADS] = {0}, total = 0;
    bool ordered = true;
    int64_t deadline = fl_test_now_ms() + 60000;
    for (int t = 0; t < THREADS; t++) {
        args[t] = (prod_t){q, t};
        ASSERT_EQ(pthread_create(&th[t], NULL, producer, &args[t]), 0);
    }
    /* the owner takes while they push, until everything came */
    while (total < THREADS * PER_THREAD && fl_test_now_ms() < deadline) {
        fl_queue_item_t *l = fl_queue_take(q);
        while (l) {
            item_t *it = fl_queue_entry(l, item_t, link);
            fl_queue_item_t *n = l->next;
            if (it->n != next[it->thread])
                ordered = false;
            next[it->thread] = it->n + 1;
            total++;
            free(it);
            l = n;
        }
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    ASSERT_TRUE(ordered);
    ASSERT_EQ(total, THREADS * PER_THREAD);
    ASSERT_EQ(fl_queue_count(q), 0);
    ASSERT_GE(atomic_load(&wakes), 1);
    fl_queue_free(q);
}

int main(void)
{
    RUN(test_order_and_wake);
    RUN(test_take_some);
    RUN(test_threads);
    return fl_test_done();
}
