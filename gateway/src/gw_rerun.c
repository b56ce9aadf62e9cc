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

void gw_rerun_reset(gw_rerun_t *r, uint64_t version, const uint8_t chain[FL_HASH_LEN])
{
    r->head = r->n = 0;
    r->known_from = version;
    if (version > r->committed)
        gw_rerun_push(r, version, chain, UINT32_MAX);
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

void gw_rerun_push(gw_rerun_t *r, uint64_t version, const uint8_t chain[FL_HASH_LEN],
                   uint32_t max)
{
    gw_rerun_entry_t *e;
    if (version <= r->committed)
        return;
    while (r->n > 0 && r->n >= max)
        forget_oldest(r);
    if (!make_room(r)) {
        r->head = r->n = 0;
        r->known_from = version + 1;
        return;
    }
    e = &r->e[r->head + r->n++];
    e->version = version;
    memcpy(e->chain, chain, FL_HASH_LEN);
}

gw_rerun_verdict_t gw_rerun_check(const gw_rerun_t *r, uint64_t version,
                                  const uint8_t chain[FL_HASH_LEN])
{
    uint32_t lo = 0, hi = r->n;
    if (version <= r->committed)
        return GW_RERUN_COPY; /* committed: the run that committed it was checked */
    if (version < r->known_from)
        return GW_RERUN_UNKNOWN;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const gw_rerun_entry_t *e = &r->e[r->head + mid];
        if (e->version == version)
            return memcmp(e->chain, chain, FL_HASH_LEN) == 0 ? GW_RERUN_COPY : GW_RERUN_DIVERGED;
        if (e->version < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* every boundary from known_from on is held: this run cut differently */
    return GW_RERUN_DIVERGED;
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
