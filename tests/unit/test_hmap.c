/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the one hash map (common/hmap.h): get/put/del/count
 * against a plain array model through many random operations (growth,
 * backward-shift deletion), borrowed keys of every length (0 included),
 * value replacement, and iteration: every entry exactly once, also when
 * the current entry is deleted (all, some, with full tables where runs of
 * entries wrap around the end of the table).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/hmap.h"

/* An entry keyed by bytes inside it, as every user of the map does. */
typedef struct item_s {
    char key[24];
    size_t klen;
    bool live;   /* in the map, per the model */
    int visits;  /* iteration count */
} item_t;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void make_items(item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* lengths 0..23; distinct contents (the index is in the bytes) */
        items[i].klen = i == 0 ? 0 : 4 + i % 20;
        memset(items[i].key, 'k', sizeof items[i].key);
        memcpy(items[i].key, &i, sizeof(uint32_t));
        items[i].live = false;
        items[i].visits = 0;
    }
}

static void test_basics(void)
{
    fl_hmap_t *map = fl_hmap_new();
    int a = 1, b = 2;
    char k1[] = "doc/1", k1copy[] = "doc/1", k2[] = "doc/2";
    ASSERT_TRUE(map);
    ASSERT_EQ(fl_hmap_count(map), 0);
    ASSERT_TRUE(fl_hmap_get(map, k1, 5) == NULL);
    ASSERT_TRUE(fl_hmap_del(map, k1, 5) == NULL);
    ASSERT_EQ(fl_hmap_put(map, k1, 5, NULL), -EINVAL);
    ASSERT_EQ(fl_hmap_put(map, k1, 5, &a), 0);
    ASSERT_EQ(fl_hmap_put(map, k2, 5, &b), 0);
    ASSERT_EQ(fl_hmap_count(map), 2);
    /* looked up by content, not by pointer */
    ASSERT_TRUE(fl_hmap_get(map, k1copy, 5) == &a);
    ASSERT_TRUE(fl_hmap_get(map, k1, 4) == NULL); /* a prefix is another key */
    /* replacing keeps the count and takes the new key pointer */
    ASSERT_EQ(fl_hmap_put(map, k1copy, 5, &b), 0);
    ASSERT_EQ(fl_hmap_count(map), 2);
    memset(k1, 'x', 5); /* the old key bytes are no longer read */
    ASSERT_TRUE(fl_hmap_get(map, "doc/1", 5) == &b);
    ASSERT_TRUE(fl_hmap_del(map, "doc/1", 5) == &b);
    ASSERT_TRUE(fl_hmap_del(map, "doc/1", 5) == NULL);
    ASSERT_EQ(fl_hmap_count(map), 1);
    ASSERT_TRUE(fl_hmap_get(map, "doc/2", 5) == &b);
    /* the empty key is a key */
    ASSERT_EQ(fl_hmap_put(map, NULL, 0, &a), 0);
    ASSERT_TRUE(fl_hmap_get(map, "", 0) == &a);
    fl_hmap_free(map);
    fl_hmap_free(NULL);
}

static void test_random_against_model(void)
{
    enum { N = 3000, OPS = 200000 };
    static item_t items[N];
    fl_hmap_t *map = fl_hmap_new();
    size_t live = 0;
    ASSERT_TRUE(map);
    make_items(items, N);
    for (int op = 0; op < OPS; op++) {
        item_t *it = &items[rng() % N];
        switch (rng() % 3) {
        case 0:
            ASSERT_EQ(fl_hmap_put(map, it->key, it->klen, it), 0);
            live += !it->live;
            it->live = true;
            break;
        case 1:
            ASSERT_TRUE(fl_hmap_del(map, it->key, it->klen) == (it->live ? it : NULL));
            live -= it->live;
            it->live = false;
            break;
        default:
            ASSERT_TRUE(fl_hmap_get(map, it->key, it->klen) == (it->live ? it : NULL));
        }
        ASSERT_EQ(fl_hmap_count(map), live);
    }
    for (size_t i = 0; i < N; i++)
        ASSERT_TRUE(fl_hmap_get(map, items[i].key, items[i].klen) ==
                    (items[i].live ? &items[i] : NULL));
    fl_hmap_free(map);
}

static bool iterate_ok; /* the last iterate_deleting passed */

/* Fills a map with n items, iterates once deleting the current entry when
 * (rng() % 100) < pct, and checks every entry was visited exactly once and
 * the map holds exactly the ones kept. */
static void iterate_deleting(size_t n, unsigned pct)
{
    static item_t items[5000];
    fl_hmap_t *map = fl_hmap_new();
    item_t *val;
    size_t visited = 0, kept = 0;
    iterate_ok = false;
    ASSERT_TRUE(map && n <= 5000);
    make_items(items, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(fl_hmap_put(map, items[i].key, items[i].klen, &items[i]), 0);
        items[i].live = true;
    }
    FL_HMAP_FOREACH(map, it, val) {
        ASSERT_TRUE(it.key == val->key && it.klen == val->klen);
        val->visits++;
        visited++;
        if (rng() % 100 < pct) {
            ASSERT_TRUE(fl_hmap_del(map, it.key, it.klen) == val);
            val->live = false;
            memset(val->key, 0, sizeof val->key); /* as if freed */
        }
    }
    ASSERT_EQ(visited, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(items[i].visits, 1);
        kept += items[i].live;
    }
    ASSERT_EQ(fl_hmap_count(map), kept);
    for (size_t i = 0; i < n; i++)
        if (items[i].live)
            ASSERT_TRUE(fl_hmap_get(map, items[i].key, items[i].klen) == &items[i]);
    fl_hmap_free(map);
    iterate_ok = true;
}

static void test_iterate(void)
{
    fl_hmap_t *map = fl_hmap_new();
    void *val;
    int n = 0;
    ASSERT_TRUE(map);
    FL_HMAP_FOREACH(map, it, val)
        n++;
    ASSERT_EQ(n, 0);
    fl_hmap_free(map);
    for (unsigned pct = 0; pct <= 100 && (pct == 0 || iterate_ok); pct += 25)
        iterate_deleting(5000, pct);
}

static void test_iterate_full_tables(void)
{
    /* 12 entries in 16 slots (the most before the table grows) and 24 in
     * 32: with random hash keys, runs wrap around the table's end in most
     * rounds, the case the iterator's start position exists for. */
    for (int round = 0; round < 2000; round++) {
        iterate_deleting(round % 2 ? 12 : 24, (unsigned)(rng() % 101));
        if (!iterate_ok)
            return;
    }
}

static void test_iterate_replacing_value(void)
{
    static item_t items[100], other[100];
    fl_hmap_t *map = fl_hmap_new();
    item_t *val;
    size_t visited = 0;
    ASSERT_TRUE(map);
    make_items(items, 100);
    make_items(other, 100);
    for (size_t i = 0; i < 100; i++)
        ASSERT_EQ(fl_hmap_put(map, items[i].key, items[i].klen, &items[i]), 0);
    FL_HMAP_FOREACH(map, it, val) {
        visited++;
        ASSERT_TRUE(val >= items && val < items + 100);
        /* same key bytes, another object (and key pointer) */
        ASSERT_EQ(fl_hmap_put(map, other[val - items].key, val->klen, &other[val - items]), 0);
    }
    ASSERT_EQ(visited, 100);
    ASSERT_EQ(fl_hmap_count(map), 100);
    for (size_t i = 0; i < 100; i++)
        ASSERT_TRUE(fl_hmap_get(map, items[i].key, items[i].klen) == &other[i]);
    fl_hmap_free(map);
}

int main(void)
{
    RUN(test_basics);
    RUN(test_random_against_model);
    RUN(test_iterate);
    RUN(test_iterate_full_tables);
    RUN(test_iterate_replacing_value);
    return fl_test_done();
}
