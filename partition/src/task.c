/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task: one commands record in, the records to emit out. See task.h for the
 * contract; comments here say why.
 */
#include "flushline/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/history.h"
#include "part_int.h"

void fl_task_out_release(fl_task_out_t *out)
{
    for (uint32_t i = 0; i < out->nemit; i++)
        if (!out->emit[i].held)
            free(out->emit[i].rec);
    out->nemit = 0;
}

static void emit(fl_task_out_t *out, fl_slice_t key, char *rec, size_t len, bool held)
{
    out->emit[out->nemit++] = (fl_task_emit_t){key, rec, len, held};
}

static int apply_flush(fl_part_t *part, fl_wire_rec_flush_t *rf, int64_t ts_ms,
                       fl_arena_t *arena, fl_task_out_t *out)
{
    fl_outcome_t o;
    fl_part_doc_t *ent;
    uint32_t before = fl_part_count(part);
    char *buf = NULL;
    size_t len;
    int rc;

    /* Server stamps come from the record only. */
    rf->flush.ts_ms = ts_ms;
    /* The rule set in force for the document, with the record's role
     * (empty: the set's default role). */
    const fl_rules_t *rules = part_rules_find(fl_part_rules_of(part), rf->flush.doc);
    fl_rules_ctx_t rctx = {.role = rf->role};

    if (!(ent = fl_part_get_or_create(part, rf->flush.doc))) {
        snprintf(out->reason, sizeof out->reason, "out of memory creating %.*s",
                 (int)rf->flush.doc.len, rf->flush.doc.ptr);
        return FL_TASK_ENOMEM;
    }
    out->created = fl_part_count(part) != before;
    if ((rc = fl_doc_apply_rules(ent->doc, &rf->flush, rules, &rctx, arena, &o)) != 0) {
        snprintf(out->reason, sizeof out->reason, "applying a flush to %.*s: %s",
                 (int)rf->flush.doc.len, rf->flush.doc.ptr, fl_engine_strerror(rc));
        return FL_TASK_EENGINE;
    }
    if (fl_wire_encode_outcome_record(&o, rf->gw, rf->origin, &buf, &len, out->reason,
                                      sizeof out->reason) != 0)
        return FL_TASK_EENCODE;
    /* Outcomes that applied nothing can still change the dedup table (a
     * rejected flush consumes its seq): the next snapshot must carry it. */
    if (fl_history_outcome_recorded(&o))
        ent->dirty = true;
    out->duplicate = o.duplicate;
    out->napplied = o.napplied;
    out->nrejected = o.nresults - o.napplied;
    if (o.napplied == 0 || !fl_part_windowed(part)) {
        emit(out, fl_doc_id(ent->doc), buf, len, false);
        if (o.napplied > 0)
            fl_part_note_applied(part, ent);
        return 0;
    }
    /* The window keeps the encoded record itself; the caller copies it. */
    if (fl_window_push(&ent->window, o.version_before, o.version_after, buf, len) != 0) {
        snprintf(out->reason, sizeof out->reason, "out of memory in the window of %.*s",
                 (int)o.doc.len, o.doc.ptr);
        return FL_TASK_ENOMEM;
    }
    if (fl_window_count(&ent->window) > 0) {
        const fl_window_item_t *it = fl_window_at(&ent->window, fl_window_count(&ent->window) - 1);
        if (it->rec == buf) {
            emit(out, fl_doc_id(ent->doc), buf, len, true);
            fl_part_note_applied(part, ent);
            return 0;
        }
    }
    /* Not kept (no window, or larger than its byte bound): freed by the
     * push; encode again for the caller. */
    if (fl_wire_encode_outcome_record(&o, rf->gw, rf->origin, &buf, &len, out->reason,
                                      sizeof out->reason) != 0)
        return FL_TASK_EENCODE;
    emit(out, fl_doc_id(ent->doc), buf, len, false);
    fl_part_note_applied(part, ent);
    return 0;
}

static int answer_sync(fl_part_t *part, const fl_wire_sync_t *sync, fl_arena_t *arena,
                       fl_task_out_t *out)
{
    fl_wire_msg_t reply;
    fl_wire_sync_reply_t *r = &reply.u.reply;
    /* A document never written is not created for a sync: it is at
     * version 0 with an empty state. */
    fl_part_doc_t *ent = fl_part_get(part, sync->doc);
    char *buf = NULL, errstr[256];
    size_t len;
    int rc;

    memset(&reply, 0, sizeof reply);
    reply.type = FL_WT_REC_SYNC_REPLY;
    r->doc = sync->doc;
    r->gw = sync->gw;
    r->req = sync->req;
    if (!ent) {
        r->version = 0; /* chain: all zero */
        r->has_state = sync->have_version != 0;
        r->state.type = FL_MAP;
    } else {
        r->version = fl_doc_version(ent->doc);
        memcpy(r->chain, fl_doc_chain(ent->doc), FL_HASH_LEN);
        if (sync->have_version == r->version) {
            r->nitems = 0; /* up to date */
        } else if (sync->have_version < r->version &&
                   (rc = fl_window_deltas(&ent->window, sync->have_version, arena, &r->items,
                                          &r->nitems, errstr, sizeof errstr)) !=
                       FL_HISTORY_EGONE) {
            /* Deltas from the window. */
            if (rc != 0) {
                snprintf(out->reason, sizeof out->reason, "window of %.*s: %s: %s",
                         (int)sync->doc.len, sync->doc.ptr, fl_history_strerror(rc), errstr);
                return rc == FL_HISTORY_ENOMEM ? FL_TASK_ENOMEM : FL_TASK_EENCODE;
            }
        } else {
            r->has_state = true;
            r->state = *fl_doc_state(ent->doc);
        }
    }
    if (fl_wire_encode(&reply, FL_WIRE_MSGPACK, &buf, &len, out->reason, sizeof out->reason) != 0)
        return FL_TASK_EENCODE;
    emit(out, sync->doc, buf, len, false);
    return 0;
}

static bool is_rules_key(fl_slice_t key)
{
    return key.len == FL_WIRE_RULES_KEY.len &&
           memcmp(key.ptr, FL_WIRE_RULES_KEY.ptr, key.len) == 0;
}

/* A rules record: in force from here on, and copied to events (the
 * restore feed meets it there). Not a valid rule set: skipped, the sets
 * in force stay. */
static int put_rules(fl_part_t *part, const fl_task_rec_t *rec, const fl_wire_rules_t *r,
                     fl_task_out_t *out)
{
    char *copy;
    int rc;

    out->kind = FL_TASK_RULES;
    if (!(copy = malloc(rec->len ? rec->len : 1))) {
        snprintf(out->reason, sizeof out->reason, "out of memory copying a rules record");
        return FL_TASK_ENOMEM;
    }
    rc = fl_part_rules_apply(part, r, out->reason, sizeof out->reason);
    if (rc != 0) {
        free(copy);
        if (rc == FL_HISTORY_ENOMEM)
            return FL_TASK_ENOMEM;
        out->rules_bad = true;
        return 0;
    }
    memcpy(copy, rec->payload, rec->len);
    emit(out, FL_WIRE_RULES_KEY, copy, rec->len, false);
    return 0;
}

int fl_task_apply(fl_part_t *part, const fl_task_rec_t *rec, int flags, fl_arena_t *arena,
                  fl_task_out_t *out)
{
    fl_wire_msg_t wm;
    int rc;

    memset(out, 0, sizeof *out);
    fl_arena_reset(arena);
    rc = fl_wire_decode_record(rec->payload, rec->len, arena, &wm, out->reason,
                               sizeof out->reason);
    out->kind = FL_TASK_BAD;
    if (rc != 0) {
        /* An undecodable record under the rules key is a bad rules record. */
        if (is_rules_key(rec->key)) {
            out->kind = FL_TASK_RULES;
            out->rules_bad = true;
        }
        return 0;
    }
    switch (wm.type) {
    case FL_WT_REC_FLUSH:
        if (rec->key.len != wm.u.rflush.flush.doc.len ||
            memcmp(rec->key.ptr, wm.u.rflush.flush.doc.ptr, rec->key.len) != 0) {
            snprintf(out->reason, sizeof out->reason, "record key is not the flush's document");
            return 0;
        }
        out->kind = FL_TASK_FLUSH;
        rc = apply_flush(part, &wm.u.rflush, rec->ts_ms, arena, out);
        break;
    case FL_WT_REC_SYNC:
        out->kind = FL_TASK_SYNC;
        rc = flags & FL_TASK_NO_SYNC_REPLIES ? 0 : answer_sync(part, &wm.u.sync, arena, out);
        break;
    case FL_WT_REC_RULES:
        rc = put_rules(part, rec, &wm.u.rules, out);
        break;
    default:
        snprintf(out->reason, sizeof out->reason, "a %s record does not belong in commands",
                 fl_wire_type_name(wm.type));
        return 0;
    }
    if (rc != 0)
        fl_task_out_release(out);
    return rc;
}
