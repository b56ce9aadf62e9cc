/* SPDX-License-Identifier: Apache-2.0 */
/*
 * history: the outcome window, outcome -> delta, document <-> snapshot
 * record and the event replay decision. See history.h for the contract;
 * comments here say why.
 */
#include "flushline/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fl_history_strerror(int err)
{
    /* by -err */
    static const char *const text[] = {
        "success",
        "out of memory",
        "a record is undecodable or not of the kind expected there",
        "the window does not reach back to that version",
        "malformed snapshot data",
        "the outcome does not start at the document's version",
        "the outcome's commands do not apply to the document",
        "chain hash mismatch",
    };
    return FL_NAME_AT(text, -(long)err, "unknown history error");
}

/* ---- the outcome window --------------------------------------------------- */

void fl_window_init(fl_window_t *w, uint32_t max_items, size_t max_bytes)
{
    memset(w, 0, sizeof *w);
    w->max_items = max_items;
    w->max_bytes = max_bytes;
}

static fl_window_item_t *item_at(const fl_window_t *w, uint32_t i)
{
    return &w->ring[(w->head + i) % w->max_items];
}

static void drop_oldest(fl_window_t *w)
{
    fl_window_item_t *item = &w->ring[w->head];
    w->bytes -= item->len;
    free(item->rec);
    item->rec = NULL;
    w->head = (w->head + 1) % w->max_items;
    w->count--;
}

void fl_window_clear(fl_window_t *w)
{
    while (w->count > 0)
        drop_oldest(w);
    w->head = 0;
}

void fl_window_free(fl_window_t *w)
{
    fl_window_clear(w);
    free(w->ring);
    w->ring = NULL;
}

int fl_window_push(fl_window_t *w, uint64_t version_before, uint64_t version_after, char *rec,
                   size_t len)
{
    fl_window_item_t *item;
    if (w->count > 0 && item_at(w, w->count - 1)->version_after != version_before)
        fl_window_clear(w); /* a hole: what is held no longer reaches the newest */
    if (w->max_items == 0 || len > w->max_bytes) {
        /* Not kept; the next item would follow a hole. */
        fl_window_clear(w);
        free(rec);
        return 0;
    }
    if (!w->ring && !(w->ring = calloc(w->max_items, sizeof *w->ring))) {
        free(rec);
        return FL_HISTORY_ENOMEM;
    }
    while (w->count > 0 && (w->count == w->max_items || w->bytes + len > w->max_bytes))
        drop_oldest(w);
    item = item_at(w, w->count);
    item->version_before = version_before;
    item->version_after = version_after;
    item->rec = rec;
    item->len = len;
    w->count++;
    w->bytes += len;
    return 0;
}

uint32_t fl_window_count(const fl_window_t *w)
{
    return w->count;
}

const fl_window_item_t *fl_window_at(const fl_window_t *w, uint32_t i)
{
    return i < w->count ? item_at(w, i) : NULL;
}

int fl_window_find(const fl_window_t *w, uint64_t version)
{
    /* Contiguous, so version_before grows with the position: bisect. */
    uint32_t lo = 0, hi = w->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t v = item_at(w, mid)->version_before;
        if (v == version)
            return (int)mid;
        if (v < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

size_t fl_window_bytes(const fl_window_t *w)
{
    return w->bytes;
}

size_t fl_window_mem(const fl_window_t *w)
{
    return w->bytes + (w->ring ? (size_t)w->max_items * sizeof *w->ring : 0);
}

int fl_window_deltas(const fl_window_t *w, uint64_t from, fl_arena_t *arena,
                     fl_wire_delta_t **items, uint32_t *n, char *errstr, size_t errstr_size)
{
    int idx = fl_window_find(w, from);
    fl_wire_delta_t *d;
    fl_wire_msg_t rec;
    uint32_t count;

    if (idx < 0)
        return FL_HISTORY_EGONE;
    count = w->count - (uint32_t)idx;
    if (!(d = fl_arena_alloc(arena, count * sizeof *d)))
        return FL_HISTORY_ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        const fl_window_item_t *item = item_at(w, (uint32_t)idx + i);
        if (fl_wire_decode_record(item->rec, item->len, arena, &rec, errstr, errstr_size) != 0)
            return FL_HISTORY_ERECORD;
        if (rec.type != FL_WT_REC_OUTCOME) {
            snprintf(errstr, errstr_size, "a %s record in the window", fl_wire_type_name(rec.type));
            return FL_HISTORY_ERECORD;
        }
        fl_history_outcome_to_delta(&rec.u.outcome.outcome, &d[i]);
    }
    *items = d;
    *n = count;
    return 0;
}

/* ---- outcomes ----------------------------------------------------------- */

void fl_history_outcome_to_delta(const fl_outcome_t *o, fl_wire_delta_t *d)
{
    d->version = o->version_after;
    memcpy(d->client_id, o->client_id, FL_CLIENT_ID_LEN);
    d->seq = o->seq;
    d->user = o->user;
    d->ts_ms = o->ts_ms;
    d->ncmds = o->napplied;
    d->cmds = o->applied;
    memcpy(d->chain, o->chain, FL_HASH_LEN);
}

bool fl_history_outcome_recorded(const fl_outcome_t *o)
{
    return !o->duplicate && o->code != FL_CODE_GAP && o->seq != 0;
}

/* ---- snapshots ------------------------------------------------------------ */

int fl_history_snapshot_record(const fl_doc_t *doc, int64_t events_offset, fl_arena_t *arena,
                               fl_wire_msg_t *msg)
{
    fl_wire_snapshot_t *snap = &msg->u.snapshot;
    uint32_t n = fl_doc_dedup_count(doc);

    memset(msg, 0, sizeof *msg);
    msg->type = FL_WT_REC_SNAPSHOT;
    snap->doc = fl_doc_id(doc);
    snap->version = fl_doc_version(doc);
    memcpy(snap->chain, fl_doc_chain(doc), FL_HASH_LEN);
    snap->state = *fl_doc_state(doc);
    fl_doc_digest(doc, snap->digest);
    snap->events_offset = events_offset;
    snap->dedup_evicted = fl_doc_dedup_evictions(doc);
    if (n == 0)
        return 0;
    fl_dedup_entry_t *ents = fl_arena_alloc(arena, n * sizeof *ents);
    fl_wire_dedup_t *wd = fl_arena_alloc(arena, n * sizeof *wd);
    if (!ents || !wd)
        return FL_HISTORY_ENOMEM;
    /* Oldest first: restoring in this order rebuilds the eviction order. */
    n = fl_doc_dedup_export(doc, ents, n);
    for (uint32_t i = 0; i < n; i++) {
        int rc;
        memcpy(wd[i].client_id, ents[i].client_id, FL_CLIENT_ID_LEN);
        wd[i].seq = ents[i].seq;
        if ((rc = fl_engine_dedup_to_outcome(ents[i].outcome, arena, &wd[i].outcome)) != 0)
            return rc == FL_EERR_NOMEM ? FL_HISTORY_ENOMEM : FL_HISTORY_ESNAPSHOT;
    }
    snap->ndedup = n;
    snap->dedup = wd;
    return 0;
}

int fl_history_encode_snapshot(const fl_doc_t *doc, int64_t events_offset, fl_arena_t *arena,
                               char **out, size_t *outlen, char *errstr, size_t errstr_size)
{
    fl_wire_msg_t msg;
    int rc = fl_history_snapshot_record(doc, events_offset, arena, &msg);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "%s", fl_history_strerror(rc));
        return rc;
    }
    rc = fl_wire_encode(&msg, FL_WIRE_MSGPACK, out, outlen, errstr, errstr_size);
    if (rc == -FL_CODE_INTERNAL)
        return FL_HISTORY_ENOMEM;
    return rc != 0 ? FL_HISTORY_ESNAPSHOT : 0;
}

int fl_history_doc_from_snapshot(const fl_wire_snapshot_t *snap, const fl_engine_config_t *cfg,
                                 fl_doc_t **out)
{
    fl_dedup_entry_t *ents = NULL;
    fl_doc_t *doc;
    uint32_t made = 0;
    int rc;

    if (!(doc = fl_doc_new(snap->doc, cfg)))
        return snap->doc.len == 0 || snap->doc.len > FL_DOC_ID_MAX ? FL_HISTORY_ESNAPSHOT
                                                                    : FL_HISTORY_ENOMEM;
    rc = fl_doc_restore(doc, &snap->state, snap->version, snap->chain);
    if (rc == 0 && snap->ndedup && !(ents = calloc(snap->ndedup, sizeof *ents)))
        rc = FL_EERR_NOMEM;
    /* The engine keeps dedup entries as blobs: each one's outcome back into
     * its blob form (malloc'd by the engine), then the table in one go. */
    for (; rc == 0 && made < snap->ndedup; made++) {
        char *blob = NULL;
        size_t blen = 0;
        memcpy(ents[made].client_id, snap->dedup[made].client_id, FL_CLIENT_ID_LEN);
        ents[made].seq = snap->dedup[made].seq;
        rc = fl_engine_dedup_from_outcome(&snap->dedup[made].outcome, &blob, &blen);
        ents[made].outcome = (fl_slice_t){blob, blen};
    }
    if (rc == 0)
        rc = fl_doc_dedup_restore(doc, ents, snap->ndedup);
    if (rc == 0)
        fl_doc_dedup_set_evictions(doc, snap->dedup_evicted);
    for (uint32_t i = 0; i < made; i++)
        free((char *)ents[i].outcome.ptr);
    free(ents);
    if (rc != 0) {
        fl_doc_free(doc);
        return rc == FL_EERR_NOMEM ? FL_HISTORY_ENOMEM : FL_HISTORY_ESNAPSHOT;
    }
    *out = doc;
    return 0;
}

/* ---- event replay --------------------------------------------------------- */

int fl_history_replay_check(const fl_doc_t *doc, int64_t reflected_below, int64_t offset,
                            const fl_outcome_t *o)
{
    if (offset < reflected_below)
        return FL_HISTORY_REFLECTED;
    /* Duplicates carry the versions of the outcome they repeat. */
    if (!o->duplicate && o->version_before != fl_doc_version(doc))
        return FL_HISTORY_EVERSION;
    return 0;
}

int fl_history_replay(fl_doc_t *doc, const fl_outcome_t *o, fl_arena_t *arena)
{
    switch (fl_doc_replay(doc, o, arena)) {
    case 0:
        return 0;
    case FL_EERR_NOMEM:
        return FL_HISTORY_ENOMEM;
    case FL_EERR_CHAIN:
        return FL_HISTORY_ECHAIN;
    default:
        return FL_HISTORY_EDELTA;
    }
}
