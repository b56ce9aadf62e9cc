/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lru: the in-memory side of a memory budget. An exact least-recently-used
 * order over entries with byte accounting: touch (now the hottest), pin
 * (in use: never chosen for eviction, still counted), pop the coldest
 * unpinned entry to evict it. Every operation is O(1).
 *
 * Intrusive: the caller embeds an fl_lru_node_t in its own entry (a
 * processor's document entry) and finds the entry by document id through
 * the index it already has (the partition's hash map of documents), so the
 * order costs 32 bytes per document and no allocation. Recover the entry
 * from a node with FL_LRU_ENTRY. An exact list rather than CLOCK: a touch
 * is two pointer swaps, cheap next to applying a flush, and eviction then
 * takes the truly coldest document.
 *
 *   typedef struct { fl_doc_t *doc; fl_lru_node_t lru; } entry_t;
 *   fl_lru_add(&lru, &ent->lru, bytes);        // loaded or created
 *   fl_lru_touch(&lru, &ent->lru);             // used
 *   while (fl_lru_bytes(&lru) > budget && (node = fl_lru_pop(&lru)))
 *       evict(FL_LRU_ENTRY(node, entry_t, lru));
 *
 * @locality one thread (the partition's, or whoever owns the budget).
 */
#ifndef FLUSHLINE_LRU_H
#define FLUSHLINE_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_lru_node_s {
    struct fl_lru_node_s *prev, *next; /* private */
    size_t bytes;                      /* what it counts for; set through the functions */
    uint32_t pins;                     /* private: > 0 keeps it off the eviction list */
    bool linked;                       /* private: in the lru */
} fl_lru_node_t;

typedef struct fl_lru_s {
    fl_lru_node_t cold; /* sentinel of the eviction list: cold.next is the coldest */
    fl_lru_node_t pinned; /* sentinel of the pinned list */
    size_t bytes, count, npinned;
} fl_lru_t;

#define FL_LRU_ENTRY(node, type, member) ((type *)((char *)(node) - offsetof(type, member)))

void fl_lru_init(fl_lru_t *lru);

/* Adds node (not in any lru) as the hottest, counting bytes. */
void fl_lru_add(fl_lru_t *lru, fl_lru_node_t *node, size_t bytes);
/* Removes node (in lru, pinned or not) and uncounts it. */
void fl_lru_remove(fl_lru_t *lru, fl_lru_node_t *node);
/* Makes node the hottest (a pinned node becomes the hottest when unpinned). */
void fl_lru_touch(fl_lru_t *lru, fl_lru_node_t *node);
/* Changes what node counts for (a document grew or shrank). */
void fl_lru_resize(fl_lru_t *lru, fl_lru_node_t *node, size_t bytes);
/* Pins nest: a node is evictable again after as many unpins. Unpinning
 * makes it the hottest. */
void fl_lru_pin(fl_lru_t *lru, fl_lru_node_t *node);
void fl_lru_unpin(fl_lru_t *lru, fl_lru_node_t *node);
bool fl_lru_pinned(const fl_lru_node_t *node);
bool fl_lru_linked(const fl_lru_node_t *node);

/* The coldest unpinned node, or NULL (empty, or all pinned). */
fl_lru_node_t *fl_lru_coldest(const fl_lru_t *lru);
/* The same, removed from the lru (uncounted). */
fl_lru_node_t *fl_lru_pop(fl_lru_t *lru);

/* Bytes of every node, pinned ones included. */
size_t fl_lru_bytes(const fl_lru_t *lru);
size_t fl_lru_count(const fl_lru_t *lru);
size_t fl_lru_pinned_count(const fl_lru_t *lru);

#endif
