/* SPDX-License-Identifier: Apache-2.0 */
/* gw_rerun: see gw_rerun.h. */
#include "gw_rerun.h"

#include <stdlib.h>
#include <string.h>

static void forget_oldest(gw_rerun_t *r)
{
    r->known_from = r->e[r->head].version + 1;
    r->head++;
    r->n--;
    if (r->n == 0)
        r->head = 0;
}

/* Appends an entry (versions > committed only). */
static void push(gw_rerun_t *r, const gw_rerun_entry_t *ent, uint32_t max);

void gw_rerun_reset(gw_rerun_t *r, uint64_t version, const uint8_t chain[FL_HASH_LEN])
{
    gw_rerun_entry_t ent;
    memset(&ent, 0, sizeof ent);
    ent.before = ent.version = version;
    memcpy(ent.chain, chain, FL_HASH_LEN);
    r->head = r->n = 0;
    r->known_from = version;
    push(r, &ent, UINT32_MAX);
}

void gw_rerun_committed(gw_rerun_t *r, uint64_t version)
{
    if (version <= r->committed)
        return;
    r->committed = version;
    while (r->n > 0 && r->e[r->head].version <= version)
        forget_oldest(r);
    if (r->known_from <= version)
        r->known_from = version + 1;
}

/* Room for one more at the end: slide to the front, or grow. */
static bool make_room(gw_rerun_t *r)
{
    gw_rerun_entry_t *e;
    uint32_t cap;
    if (r->head + r->n < r->cap)
        return true;
    if (r->head > 0) {
        memmove(r->e, r->e + r->head, (size_t)r->n * sizeof *r->e);
        r->head = 0;
        return true;
    }
    cap = r->cap ? r->cap * 2 : 16;
    if (!(e = realloc(r->e, (size_t)cap * sizeof *e)))
        return false;
    r->e = e;
    r->cap = cap;
    return true;
}

static void push(gw_rerun_t *r, const gw_rerun_entry_t *ent, uint32_t max)
{
    if (ent->version <= r->committed)
        return;
    while (r->n > 0 && r->n >= max)
        forget_oldest(r);
    if (!make_room(r)) {
        r->head = r->n = 0;
        r->known_from = ent->version + 1;
        return;
    }
    r->e[r->head + r->n++] = *ent;
}

void gw_rerun_push(gw_rerun_t *r, const fl_outcome_t *o, uint32_t max)
{
    gw_rerun_entry_t ent;
    ent.before = o->version_before;
    ent.version = o->version_after;
    memcpy(ent.chain, o->chain, FL_HASH_LEN);
    memcpy(ent.client_id, o->client_id, FL_CLIENT_ID_LEN);
    ent.seq = o->seq;
    push(r, &ent, max);
}

/* The index (from head) of the first entry ending above version. */
static uint32_t first_above(const gw_rerun_t *r, uint64_t version)
{
    uint32_t lo = 0, hi = r->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->e[r->head + mid].version <= version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

gw_rerun_verdict_t gw_rerun_check(const gw_rerun_t *r, const fl_outcome_t *o)
{
    uint32_t i;
    const gw_rerun_entry_t *e;
    if (o->version_after <= r->committed)
        return GW_RERUN_COPY; /* committed: the run that committed it was checked */
    if (o->version_after < r->known_from)
        return GW_RERUN_UNKNOWN;
    i = first_above(r, o->version_after);
    if (i == 0)
        return GW_RERUN_DIVERGED; /* every boundary from known_from on is held */
    e = &r->e[r->head + i - 1];
    if (e->version != o->version_after || e->before != o->version_before)
        return GW_RERUN_DIVERGED; /* this run cut its versions differently */
    return memcmp(e->chain, o->chain, FL_HASH_LEN) == 0 ? GW_RERUN_COPY : GW_RERUN_DIVERGED;
}

gw_rerun_verdict_t gw_rerun_check_refusal(const gw_rerun_t *r, const fl_outcome_t *o)
{
    uint32_t i;
    const gw_rerun_entry_t *e;
    if (o->version_after < r->committed)
        return GW_RERUN_COPY;
    if (o->version_after < r->known_from)
        return GW_RERUN_UNKNOWN;
    i = first_above(r, o->version_after);
    if (i == r->n)
        return GW_RERUN_COPY;
    e = &r->e[r->head + i];
    /* the first run applied this very flush from here */
    if (e->before == o->version_after && e->seq == o->seq &&
        memcmp(e->client_id, o->client_id, FL_CLIENT_ID_LEN) == 0)
        return GW_RERUN_DIVERGED;
    return GW_RERUN_COPY;
}

uint32_t gw_rerun_count(const gw_rerun_t *r)
{
    return r->n;
}

void gw_rerun_free(gw_rerun_t *r)
{
    free(r->e);
    memset(r, 0, sizeof *r);
}
