/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_docs: the documents of one partition held by a processor: each
 * document's engine state (fl_doc_t), its window of recent outcome records
 * (history.h, to answer syncs with deltas) and its snapshot bookkeeping. Pure apart
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
#include "flushline/history.h"
#include "flushline/hmap.h"

typedef struct pr_docs_s pr_docs_t;

typedef struct pr_doc_entry_s {
    fl_doc_t *doc;
    bool dirty;                    /* changed since its last snapshot */
    uint64_t snapshot_version;     /* version of its last snapshot (0: none) */
    int64_t snapshot_offset;       /* events below this offset are in that snapshot */
    fl_window_t window;            /* recent outcomes, for syncs (limits below) */
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

#endif
