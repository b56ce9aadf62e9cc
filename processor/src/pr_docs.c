/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_docs: the documents of one partition in the one hash map (hmap.h),
 * plus each document's outcome window. Each entry carries its own copy of
 * the id as the map's key, so the key stays valid whatever becomes of
 * ent->doc.
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
    for (uint32_t i = 0; i < ent->wcount; i++)
        free(ent->window[(ent->whead + i) % ent->wcap].rec);
    free(ent->window);
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

static void window_drop_oldest(pr_doc_entry_t *ent)
{
    pr_window_item_t *item = &ent->window[ent->whead];
    ent->wbytes -= item->len;
    free(item->rec);
    item->rec = NULL;
    ent->whead = (ent->whead + 1) % ent->wcap;
    ent->wcount--;
}

int pr_docs_window_push_owned(pr_docs_t *docs, pr_doc_entry_t *ent, uint64_t version_before,
                              uint64_t version_after, char *rec, size_t len)
{
    uint32_t max = docs->lim.window_outcomes;
    if (max == 0 || len > docs->lim.window_bytes) {
        free(rec);
        return 0;
    }
    if (!ent->window) {
        ent->window = calloc(max, sizeof *ent->window);
        if (!ent->window) {
            free(rec);
            return -1;
        }
        ent->wcap = max;
    }
    while (ent->wcount > 0 &&
           (ent->wcount == ent->wcap || ent->wbytes + len > docs->lim.window_bytes))
        window_drop_oldest(ent);
    pr_window_item_t *item = &ent->window[(ent->whead + ent->wcount) % ent->wcap];
    item->version_before = version_before;
    item->version_after = version_after;
    item->rec = rec;
    item->len = len;
    ent->wcount++;
    ent->wbytes += len;
    return 0;
}

int pr_docs_window_push(pr_docs_t *docs, pr_doc_entry_t *ent, uint64_t version_before,
                        uint64_t version_after, const char *rec, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, rec, len);
    return pr_docs_window_push_owned(docs, ent, version_before, version_after, copy, len);
}

const pr_window_item_t *pr_docs_window_at(const pr_doc_entry_t *ent, uint32_t i)
{
    if (i >= ent->wcount)
        return NULL;
    return &ent->window[(ent->whead + i) % ent->wcap];
}

int pr_docs_window_find(const pr_doc_entry_t *ent, uint64_t from)
{
    for (uint32_t i = 0; i < ent->wcount; i++) {
        const pr_window_item_t *item = pr_docs_window_at(ent, i);
        if (item->version_before == from)
            return (int)i;
        if (item->version_before > from)
            return -1;
    }
    return -1;
}
