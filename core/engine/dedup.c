/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dedup: the per-document table client_id -> (last seq, outcome blob).
 * A chained hash table over a slab of entries, with the entries also on a
 * doubly linked list in recording order. Every recorded outcome has the
 * highest version_after of the table when it is recorded, so "evict the
 * entry whose last flush is oldest" is "evict the head of the list". The
 * table grows lazily (a document with three clients costs three entries),
 * bounded by max entries. The table counts its evictions: while it has
 * never dropped an entry, a client it does not know has never written (the
 * engine's gap rule for unknown clients rests on that).
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

struct fl_dedup_s {
    dd_ent_t *ents;
    uint32_t n, cap, max;
    uint32_t *buckets;
    uint32_t nbuckets; /* power of two, or 0 */
    uint32_t head, tail; /* oldest, newest */
    uint64_t evicted;    /* entries dropped because the table was full */
};

static uint32_t hash_cid(const uint8_t cid[FL_CLIENT_ID_LEN])
{
    /* client ids are chosen by clients, so mix all 16 bytes */
    uint64_t a, b;
    memcpy(&a, cid, 8);
    memcpy(&b, cid + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    return (uint32_t)(h ^ (h >> 32));
}

fl_dedup_t *fl_dedup_new(uint32_t max)
{
    fl_dedup_t *dd = calloc(1, sizeof(*dd));
    if (!dd)
        return NULL;
    dd->max = max ? max : 1;
    dd->head = dd->tail = FL_NONE;
    return dd;
}

void fl_dedup_clear(fl_dedup_t *dd)
{
    for (uint32_t i = 0; i < dd->n; i++)
        free(dd->ents[i].blob);
    dd->n = 0;
    dd->head = dd->tail = FL_NONE;
    for (uint32_t i = 0; i < dd->nbuckets; i++)
        dd->buckets[i] = FL_NONE;
}

void fl_dedup_free(fl_dedup_t *dd)
{
    if (!dd)
        return;
    fl_dedup_clear(dd);
    free(dd->ents);
    free(dd->buckets);
    free(dd);
}

uint32_t fl_dedup_count(const fl_dedup_t *dd)
{
    return dd->n;
}

uint64_t fl_dedup_evictions(const fl_dedup_t *dd)
{
    return dd->evicted;
}

void fl_dedup_set_evictions(fl_dedup_t *dd, uint64_t n)
{
    dd->evicted = n;
}

dd_ent_t *fl_dedup_find(fl_dedup_t *dd, const uint8_t cid[FL_CLIENT_ID_LEN])
{
    if (!dd->nbuckets)
        return NULL;
    for (uint32_t i = dd->buckets[hash_cid(cid) & (dd->nbuckets - 1)]; i != FL_NONE;
         i = dd->ents[i].hnext)
        if (memcmp(dd->ents[i].cid, cid, FL_CLIENT_ID_LEN) == 0)
            return &dd->ents[i];
    return NULL;
}

static void list_unlink(fl_dedup_t *dd, uint32_t i)
{
    dd_ent_t *e = &dd->ents[i];
    if (e->prev != FL_NONE)
        dd->ents[e->prev].next = e->next;
    else
        dd->head = e->next;
    if (e->next != FL_NONE)
        dd->ents[e->next].prev = e->prev;
    else
        dd->tail = e->prev;
}

static void list_append(fl_dedup_t *dd, uint32_t i)
{
    dd_ent_t *e = &dd->ents[i];
    e->prev = dd->tail;
    e->next = FL_NONE;
    if (dd->tail != FL_NONE)
        dd->ents[dd->tail].next = i;
    else
        dd->head = i;
    dd->tail = i;
}

static void hash_unlink(fl_dedup_t *dd, uint32_t i)
{
    uint32_t *pp = &dd->buckets[hash_cid(dd->ents[i].cid) & (dd->nbuckets - 1)];
    while (*pp != i)
        pp = &dd->ents[*pp].hnext;
    *pp = dd->ents[i].hnext;
}

static void hash_link(fl_dedup_t *dd, uint32_t i)
{
    uint32_t b = hash_cid(dd->ents[i].cid) & (dd->nbuckets - 1);
    dd->ents[i].hnext = dd->buckets[b];
    dd->buckets[b] = i;
}

/* Makes room for one more entry (slab and buckets). */
static int grow(fl_dedup_t *dd)
{
    if (dd->n == dd->cap) {
        uint32_t ncap = dd->cap ? dd->cap * 2 : 4;
        if (ncap > dd->max)
            ncap = dd->max;
        dd_ent_t *ents = realloc(dd->ents, (size_t)ncap * sizeof(*ents));
        if (!ents)
            return FL_EERR_NOMEM;
        dd->ents = ents;
        dd->cap = ncap;
    }
    if (dd->n + 1 > dd->nbuckets) {
        uint32_t nb = dd->nbuckets ? dd->nbuckets * 2 : 8;
        uint32_t *b = malloc((size_t)nb * sizeof(*b));
        if (!b)
            return FL_EERR_NOMEM;
        free(dd->buckets);
        dd->buckets = b;
        dd->nbuckets = nb;
        for (uint32_t i = 0; i < nb; i++)
            b[i] = FL_NONE;
        for (uint32_t i = 0; i < dd->n; i++)
            hash_link(dd, i);
    }
    return 0;
}

static int set_blob(dd_ent_t *e, const char *blob, size_t blen)
{
    if (blen > e->bcap) {
        char *nb = realloc(e->blob, blen);
        if (!nb)
            return FL_EERR_NOMEM;
        e->blob = nb;
        e->bcap = blen;
    }
    memcpy(e->blob, blob, blen);
    e->blen = blen;
    return 0;
}

int fl_dedup_record(fl_dedup_t *dd, const uint8_t cid[FL_CLIENT_ID_LEN], uint64_t seq,
                    const char *blob, size_t blen)
{
    dd_ent_t *e = fl_dedup_find(dd, cid);
    uint32_t i;
    if (e) {
        i = (uint32_t)(e - dd->ents);
        if (set_blob(e, blob, blen) < 0)
            return FL_EERR_NOMEM;
        list_unlink(dd, i);
    } else if (dd->n == dd->max) {
        /* evict the oldest; reuse its slot and blob buffer */
        i = dd->head;
        e = &dd->ents[i];
        if (set_blob(e, blob, blen) < 0)
            return FL_EERR_NOMEM;
        list_unlink(dd, i);
        hash_unlink(dd, i);
        memcpy(e->cid, cid, FL_CLIENT_ID_LEN);
        hash_link(dd, i);
        dd->evicted++;
    } else {
        if (grow(dd) < 0)
            return FL_EERR_NOMEM;
        i = dd->n;
        e = &dd->ents[i];
        memset(e, 0, sizeof(*e));
        if (set_blob(e, blob, blen) < 0)
            return FL_EERR_NOMEM;
        dd->n++;
        memcpy(e->cid, cid, FL_CLIENT_ID_LEN);
        hash_link(dd, i);
    }
    e->seq = seq;
    list_append(dd, i);
    return 0;
}

uint32_t fl_dedup_export(const fl_dedup_t *dd, fl_dedup_entry_t *out, uint32_t cap)
{
    uint32_t k = 0;
    for (uint32_t i = dd->head; i != FL_NONE && k < cap; i = dd->ents[i].next, k++) {
        memcpy(out[k].client_id, dd->ents[i].cid, FL_CLIENT_ID_LEN);
        out[k].seq = dd->ents[i].seq;
        out[k].outcome = (fl_slice_t){dd->ents[i].blob, dd->ents[i].blen};
    }
    return k;
}

/* A block grown by realloc in place may keep up to 16 bytes more than asked
 * (glibc does not split off a remainder smaller than its 32-byte minimum). */
#define REALLOC_SLACK 16

size_t fl_dedup_mem(const fl_dedup_t *dd, size_t (*alloc_size)(size_t))
{
    size_t n = alloc_size(sizeof *dd);
    if (dd->cap)
        n += alloc_size((size_t)dd->cap * sizeof *dd->ents) + REALLOC_SLACK;
    if (dd->nbuckets)
        n += alloc_size((size_t)dd->nbuckets * sizeof *dd->buckets);
    for (uint32_t i = 0; i < dd->n; i++)
        if (dd->ents[i].blob)
            n += alloc_size(dd->ents[i].bcap) + REALLOC_SLACK;
    return n;
}
