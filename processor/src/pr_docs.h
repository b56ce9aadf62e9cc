/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_docs: the documents of one partition held by a processor: each
 * document's engine state (fl_doc_t), its window of recent outcome records
 * (to answer syncs with deltas) and its snapshot bookkeeping. Pure apart
 * from memory: no Kafka calls; the processor loop feeds it records.
 *
 * @locality the processor's apply thread (one thread owns all partitions'
 * tables; a partition is only ever applied by that thread, in offset order).
 */
#ifndef PR_DOCS_H
#define PR_DOCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/engine.h"
#include "flushline/flush.h"
#include "flushline/hmap.h"

typedef struct pr_docs_s pr_docs_t;

/* One outcome record kept for sync replies: the encoded events record. */
typedef struct pr_window_item_s {
    uint64_t version_before;
    uint64_t version_after;
    char *rec;
    size_t len;
} pr_window_item_t;

typedef struct pr_doc_entry_s {
    fl_doc_t *doc;
    bool dirty;                    /* changed since its last snapshot */
    uint64_t snapshot_version;     /* version of its last snapshot (0: none) */
    int64_t snapshot_offset;       /* events below this offset are in that snapshot */
    /* ring of recent outcomes, oldest first from head */
    pr_window_item_t *window;
    uint32_t wcap, whead, wcount;
    size_t wbytes;
} pr_doc_entry_t;

typedef struct pr_docs_limits_s {
    uint32_t window_outcomes; /* outcomes kept per document for syncs */
    size_t window_bytes;      /* and at most these many bytes of them */
    fl_engine_config_t engine;
} pr_docs_limits_t;

pr_docs_t *pr_docs_new(const pr_docs_limits_t *lim);
void pr_docs_free(pr_docs_t *docs); /* frees every document; NULL safe */

/* The entry for doc id, or NULL. */
pr_doc_entry_t *pr_docs_get(pr_docs_t *docs, fl_slice_t id);
/* The entry for doc id, created empty (version 0) when absent; NULL on OOM
 * or an id the engine refuses. */
pr_doc_entry_t *pr_docs_get_or_create(pr_docs_t *docs, fl_slice_t id);
uint32_t pr_docs_count(const pr_docs_t *docs);

/* Iteration: *it starts as FL_HMAP_ITER_INIT; returns NULL at the end. Do
 * not insert while iterating. */
pr_doc_entry_t *pr_docs_next(pr_docs_t *docs, fl_hmap_iter_t *it);

/* Appends an encoded outcome record (copied) to the entry's window,
 * dropping the oldest beyond the limits. 0 or -1 on OOM. */
int pr_docs_window_push(pr_docs_t *docs, pr_doc_entry_t *ent, uint64_t version_before,
                        uint64_t version_after, const char *rec, size_t len);
/* The same, taking ownership of a malloc'd rec (freed here also when it is
 * not kept). */
int pr_docs_window_push_owned(pr_docs_t *docs, pr_doc_entry_t *ent, uint64_t version_before,
                              uint64_t version_after, char *rec, size_t len);
/* The window item at position i (0 = oldest), or NULL. */
const pr_window_item_t *pr_docs_window_at(const pr_doc_entry_t *ent, uint32_t i);
/* Index of the oldest item with version_before == from, or -1 when the
 * window does not reach back exactly to that version. */
int pr_docs_window_find(const pr_doc_entry_t *ent, uint64_t from);

#endif
