/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hmap: see hmap.h.
 *
 * Why deleting the current entry is safe during iteration: the iteration
 * starts just after an empty slot and goes round the table once. A run of
 * occupied slots never crosses that empty slot, and backward-shift
 * deletion only moves an entry towards its home slot within its run. So
 * deleting the entry at the iterator's slot can only move entries that come
 * later in the iteration into that slot or later slots: the iterator, which
 * sees the map's deletion count change, looks at the same slot again (it
 * may hold a moved entry) and misses nothing. (It compares counts, not key
 * pointers: the deleted entry's memory may be gone by then.)
 */
#include "flushline/hmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define FIRST_CAP 16

typedef struct slot_s {
    uint64_t hash; /* 0: empty */
    const void *key;
    size_t klen;
    void *val;
} slot_t;

struct fl_hmap_s {
    slot_t *slots;
    size_t cap, count; /* cap: 0 or a power of two */
    uint64_t dels;     /* deletions so far: tells an iterator its entry went */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
};

fl_hmap_t *fl_hmap_new(void)
{
    fl_hmap_t *map;
    if (sodium_init() < 0 || !(map = calloc(1, sizeof *map)))
        return NULL;
    randombytes_buf(map->hkey, sizeof map->hkey);
    return map;
}

void fl_hmap_free(fl_hmap_t *map)
{
    if (!map)
        return;
    free(map->slots);
    free(map);
}

static uint64_t hash_key(const fl_hmap_t *map, const void *key, size_t klen)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, key, klen, map->hkey);
    return h ? h : 1;
}

static bool same(const slot_t *s, uint64_t h, const void *key, size_t klen)
{
    return s->hash == h && s->klen == klen && (klen == 0 || memcmp(s->key, key, klen) == 0);
}

/* The slot holding key, or the empty slot where it would go. cap > 0. */
static slot_t *find(const fl_hmap_t *map, const void *key, size_t klen, uint64_t h)
{
    size_t mask = map->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot_t *s = &map->slots[i];
        if (s->hash == 0 || same(s, h, key, klen))
            return s;
    }
}

void *fl_hmap_get(const fl_hmap_t *map, const void *key, size_t klen)
{
    slot_t *s;
    if (map->count == 0)
        return NULL;
    s = find(map, key, klen, hash_key(map, key, klen));
    return s->hash ? s->val : NULL;
}

static int grow(fl_hmap_t *map)
{
    size_t oldcap = map->cap, cap = oldcap ? oldcap * 2 : FIRST_CAP;
    slot_t *old = map->slots, *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    map->slots = slots;
    map->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].hash)
            *find(map, old[i].key, old[i].klen, old[i].hash) = old[i];
    free(old);
    return 0;
}

int fl_hmap_put(fl_hmap_t *map, const void *key, size_t klen, void *val)
{
    uint64_t h;
    slot_t *s;
    if (!val)
        return -EINVAL;
    h = hash_key(map, key, klen);
    if (map->cap && (s = find(map, key, klen, h))->hash) {
        s->key = key;
        s->val = val;
        return 0;
    }
    if ((map->count + 1) * 4 > map->cap * 3 && grow(map) != 0)
        return -ENOMEM;
    s = find(map, key, klen, h);
    *s = (slot_t){h, key, klen, val};
    map->count++;
    return 0;
}

void *fl_hmap_del(fl_hmap_t *map, const void *key, size_t klen)
{
    size_t mask, i, j;
    slot_t *s;
    void *val;
    if (map->count == 0)
        return NULL;
    s = find(map, key, klen, hash_key(map, key, klen));
    if (!s->hash)
        return NULL;
    val = s->val;
    mask = map->cap - 1;
    i = (size_t)(s - map->slots);
    /* Backward shift: move each later entry of the run into the hole when
     * the hole lies between its home slot and where it sits. */
    for (j = (i + 1) & mask; map->slots[j].hash; j = (j + 1) & mask) {
        size_t home = map->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            map->slots[i] = map->slots[j];
            i = j;
        }
    }
    map->slots[i] = (slot_t){0};
    map->count--;
    map->dels++;
    return val;
}

size_t fl_hmap_count(const fl_hmap_t *map)
{
    return map->count;
}

void *fl_hmap_next(fl_hmap_t *map, fl_hmap_iter_t *it)
{
    size_t mask;
    if (!it->started) {
        it->started = true;
        it->have = false;
        it->left = map->count ? map->cap : 0;
        /* start just after an empty slot (there is one: load <= 3/4) */
        for (it->pos = 0; it->left && map->slots[it->pos].hash; it->pos++)
            ;
        it->pos++;
    }
    /* A put that grew the table changed cap: stay within it (the order is
     * then undefined, as documented, but memory-safe). */
    mask = map->cap ? map->cap - 1 : 0;
    while (it->left > 0) {
        slot_t *s = &map->slots[it->pos & mask];
        if (it->have) {
            it->have = false;
            /* Nothing deleted since: the entry returned last is still in
             * this slot, move past it. Else it was (only it may be) and a
             * later entry may have moved into its slot: look again. */
            if (map->dels == it->dels) {
                it->pos++;
                it->left--;
                continue;
            }
        }
        if (!s->hash) {
            it->pos++;
            it->left--;
            continue;
        }
        it->key = s->key;
        it->klen = s->klen;
        it->dels = map->dels;
        it->have = true;
        return s->val;
    }
    return NULL;
}
