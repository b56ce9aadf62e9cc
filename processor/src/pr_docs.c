/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_docs: an open-addressing hash table of documents keyed by id (siphash
 * via libsodium's crypto_shorthash with a fixed key: the table is private
 * to the process and ids are bounded, but a keyed hash keeps adversarial
 * ids from clustering), plus each document's outcome window.
 */
#include "pr_docs.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct pr_docs_s {
    pr_docs_limits_t lim;
    pr_doc_entry_t **slots; /* NULL = empty; no deletions, so no tombstones */
    uint32_t cap, count;
    unsigned char hkey[crypto_shorthash_KEYBYTES];
};

pr_docs_t *pr_docs_new(const pr_docs_limits_t *lim)
{
    pr_docs_t *docs = calloc(1, sizeof *docs);
    if (!docs)
        return NULL;
    docs->lim = *lim;
    docs->cap = 64;
    docs->slots = calloc(docs->cap, sizeof *docs->slots);
    if (!docs->slots) {
        free(docs);
        return NULL;
    }
    randombytes_buf(docs->hkey, sizeof docs->hkey);
    return docs;
}

static void entry_free(pr_doc_entry_t *ent)
{
    for (uint32_t i = 0; i < ent->wcount; i++)
        free(ent->window[(ent->whead + i) % ent->wcap].rec);
    free(ent->window);
    fl_doc_free(ent->doc);
    free(ent);
}

void pr_docs_free(pr_docs_t *docs)
{
    if (!docs)
        return;
    for (uint32_t i = 0; i < docs->cap; i++)
        if (docs->slots[i])
            entry_free(docs->slots[i]);
    free(docs->slots);
    free(docs);
}

static uint64_t hash_id(const pr_docs_t *docs, fl_slice_t id)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)id.ptr, id.len, docs->hkey);
    return h;
}

static uint32_t probe(const pr_docs_t *docs, fl_slice_t id, bool *found)
{
    uint32_t mask = docs->cap - 1, i = (uint32_t)hash_id(docs, id) & mask;
    for (;;) {
        pr_doc_entry_t *ent = docs->slots[i];
        if (!ent) {
            *found = false;
            return i;
        }
        fl_slice_t eid = fl_doc_id(ent->doc);
        if (eid.len == id.len && memcmp(eid.ptr, id.ptr, id.len) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

pr_doc_entry_t *pr_docs_get(pr_docs_t *docs, fl_slice_t id)
{
    bool found;
    uint32_t i = probe(docs, id, &found);
    return found ? docs->slots[i] : NULL;
}

static int grow(pr_docs_t *docs)
{
    uint32_t ocap = docs->cap;
    pr_doc_entry_t **old = docs->slots;
    pr_doc_entry_t **slots = calloc((size_t)ocap * 2, sizeof *slots);
    if (!slots)
        return -1;
    docs->slots = slots;
    docs->cap = ocap * 2;
    for (uint32_t i = 0; i < ocap; i++) {
        bool found;
        if (!old[i])
            continue;
        slots[probe(docs, fl_doc_id(old[i]->doc), &found)] = old[i];
    }
    free(old);
    return 0;
}

pr_doc_entry_t *pr_docs_get_or_create(pr_docs_t *docs, fl_slice_t id)
{
    bool found;
    uint32_t i;
    pr_doc_entry_t *ent;
    if ((docs->count + 1) * 4 > docs->cap * 3 && grow(docs) != 0)
        return NULL;
    i = probe(docs, id, &found);
    if (found)
        return docs->slots[i];
    ent = calloc(1, sizeof *ent);
    if (!ent)
        return NULL;
    ent->doc = fl_doc_new(id, &docs->lim.engine);
    if (!ent->doc) {
        free(ent);
        return NULL;
    }
    docs->slots[i] = ent;
    docs->count++;
    return ent;
}

uint32_t pr_docs_count(const pr_docs_t *docs)
{
    return docs->count;
}

pr_doc_entry_t *pr_docs_next(pr_docs_t *docs, uint32_t *it)
{
    while (*it < docs->cap) {
        pr_doc_entry_t *ent = docs->slots[(*it)++];
        if (ent)
            return ent;
    }
    return NULL;
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
