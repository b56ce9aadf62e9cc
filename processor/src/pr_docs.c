/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_docs: the documents of one partition in the one hash map (hmap.h),
 * plus each document's outcome window (history.h). Each entry carries its
 * own copy of the id as the map's key, so the key stays valid whatever
 * becomes of ent->doc.
 */
#include "pr_docs.h"

#include <stdlib.h>
#include <string.h>

#include "flushline/hmap.h"

struct pr_docs_s {
    pr_docs_limits_t lim;
    fl_hmap_t *map; /* id -> pr_doc_entry_t (an entry_t) */
};

/* What an entry is allocated as; callers see only ent. */
typedef struct entry_s {
    pr_doc_entry_t ent; /* first: (pr_doc_entry_t *) and (entry_t *) are one pointer */
    size_t idlen;
    char id[]; /* the map's key */
} entry_t;

pr_docs_t *pr_docs_new(const pr_docs_limits_t *lim)
{
    pr_docs_t *docs = calloc(1, sizeof *docs);
    if (!docs)
        return NULL;
    docs->lim = *lim;
    if (!(docs->map = fl_hmap_new())) {
        free(docs);
        return NULL;
    }
    return docs;
}

static void entry_free(pr_doc_entry_t *ent)
{
    fl_window_free(&ent->window);
    fl_doc_free(ent->doc);
    free((entry_t *)ent);
}

void pr_docs_free(pr_docs_t *docs)
{
    pr_doc_entry_t *ent;
    if (!docs)
        return;
    FL_HMAP_FOREACH(docs->map, it, ent)
        entry_free(ent); /* the map is freed next, unread */
    fl_hmap_free(docs->map);
    free(docs);
}

pr_doc_entry_t *pr_docs_get(pr_docs_t *docs, fl_slice_t id)
{
    return fl_hmap_get(docs->map, id.ptr, id.len);
}

pr_doc_entry_t *pr_docs_get_or_create(pr_docs_t *docs, fl_slice_t id)
{
    pr_doc_entry_t *ent = fl_hmap_get(docs->map, id.ptr, id.len);
    entry_t *e;
    if (ent)
        return ent;
    if (!(e = calloc(1, sizeof *e + id.len)))
        return NULL;
    memcpy(e->id, id.ptr, id.len);
    e->idlen = id.len;
    fl_window_init(&e->ent.window, docs->lim.window_outcomes, docs->lim.window_bytes);
    if (!(e->ent.doc = fl_doc_new(id, &docs->lim.engine)) ||
        fl_hmap_put(docs->map, e->id, e->idlen, e) != 0) {
        entry_free(&e->ent);
        return NULL;
    }
    return &e->ent;
}

uint32_t pr_docs_count(const pr_docs_t *docs)
{
    return (uint32_t)fl_hmap_count(docs->map);
}

pr_doc_entry_t *pr_docs_next(pr_docs_t *docs, fl_hmap_iter_t *it)
{
    return fl_hmap_next(docs->map, it);
}
