/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hmap: the one hash map of Flushline, from byte strings to pointers
 * (documents by id, connections by origin id, grants by claims, requests by
 * socket). Open addressing with linear probing and backward-shift deletion
 * (no tombstones), SipHash-2-4 keyed with random bytes per map (libsodium's
 * crypto_shorthash), so that ids chosen by a peer cannot be made to collide.
 * Load factor at most 3/4; the table doubles and never shrinks. 32 bytes
 * per slot. Named hmap because fl_map_* are the value model's maps
 * (flushline/value.h).
 *
 * Keys are BORROWED: the map keeps the pointer given to fl_hmap_put and
 * reads the bytes on every lookup, so they must stay unchanged until the
 * entry is deleted or the map freed. Every user keys an object by bytes
 * inside it (a document by its id, a connection by its origin id), which
 * costs no allocation. Values are non-NULL pointers, never owned by the
 * map.
 *
 * Iteration visits every entry once, in no particular order. Deleting the
 * entry just returned (fl_hmap_del of its key, then freeing the value) is
 * safe and the iteration goes on with the next one; so is giving it a new
 * value with fl_hmap_put. Any other change while iterating (a put of a new
 * key, deleting another entry) is memory-safe but leaves the rest of that
 * iteration undefined: entries may be missed or seen twice.
 *
 *   gw_doc_t *doc;
 *   FL_HMAP_FOREACH(docs, it, doc)
 *       if (idle(doc)) {
 *           fl_hmap_del(docs, it.key, it.klen);
 *           doc_free(doc);
 *       }
 *
 * @locality one thread at a time (no locking).
 */
#ifndef FLUSHLINE_HMAP_H
#define FLUSHLINE_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_hmap_s fl_hmap_t;

/* An empty map (its table is allocated by the first put). NULL on OOM. */
fl_hmap_t *fl_hmap_new(void);
/* Frees the table; the values are the caller's. NULL is safe. */
void fl_hmap_free(fl_hmap_t *map);

/* The value of key, or NULL. */
void *fl_hmap_get(const fl_hmap_t *map, const void *key, size_t klen);
/* Sets key to val (a new entry, or a new value and key pointer for an
 * existing one). 0, -EINVAL for a NULL val, -ENOMEM (the map is unchanged).
 * Replacing an existing key never grows the table. */
int fl_hmap_put(fl_hmap_t *map, const void *key, size_t klen, void *val);
/* Removes key; returns its value, or NULL when absent. */
void *fl_hmap_del(fl_hmap_t *map, const void *key, size_t klen);
size_t fl_hmap_count(const fl_hmap_t *map);

/* Iteration state; zero-initialise (FL_HMAP_ITER_INIT) to start. key and
 * klen name the entry fl_hmap_next last returned. */
typedef struct fl_hmap_iter_s {
    const void *key;
    size_t klen;
    /* private */
    size_t pos, left;
    uint64_t dels;
    bool started, have;
} fl_hmap_iter_t;

#define FL_HMAP_ITER_INIT {0}

/* The next entry's value (its key in it->key, it->klen), NULL at the end. */
void *fl_hmap_next(fl_hmap_t *map, fl_hmap_iter_t *it);

/* for (each value val of map), with the iterator named it in scope. */
#define FL_HMAP_FOREACH(map, it, val)                                                              \
    for (fl_hmap_iter_t it = FL_HMAP_ITER_INIT; ((val) = fl_hmap_next((map), &it)) != NULL;)

#endif
