/* SPDX-License-Identifier: Apache-2.0 */
/*
 * part: the documents of one partition in the one hash map (hmap.h), a
 * creation-order list beside it, and the restore feed. See part.h for the
 * contract; comments here say why. Each entry carries its own copy of the
 * id as the map's key, so the key stays valid whatever becomes of ent->doc
 * (a snapshot load replaces it).
 */
#include "flushline/part.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/hmap.h"
#include "part_int.h"

struct fl_part_s {
    int32_t id;
    int64_t events_next;
    bool snapshot_due;
    fl_part_config_t cfg;
    fl_hmap_t *map;        /* id -> entry_t */
    fl_part_doc_t **order; /* creation order */
    uint32_t count, cap;
    fl_engine_scratch_t *own_scratch; /* the documents' shared one, unless cfg gave one */
    part_rules_t rules;    /* the rule sets in force */
};

/* What an entry is allocated as; callers see only ent. */
typedef struct entry_s {
    fl_part_doc_t ent; /* first: (fl_part_doc_t *) and (entry_t *) are one pointer */
    size_t idlen;
    char id[]; /* the map's key */
} entry_t;

void fl_part_config_default(fl_part_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->snapshot_every_versions = UINT64_MAX;
    cfg->engine = fl_engine_config_default;
}

fl_part_t *fl_part_new(int32_t id, const fl_part_config_t *cfg)
{
    fl_part_t *part = calloc(1, sizeof *part);
    if (!part)
        return NULL;
    part->id = id;
    part->cfg = *cfg;
    if (!part->cfg.engine.scratch)
        part->cfg.engine.scratch = part->own_scratch = fl_engine_scratch_new();
    if (!part->cfg.engine.scratch || !(part->map = fl_hmap_new())) {
        fl_engine_scratch_free(part->own_scratch);
        free(part);
        return NULL;
    }
    return part;
}

static void entry_free(fl_part_t *part, fl_part_doc_t *ent)
{
    fl_window_free(&ent->window);
    fl_doc_free(ent->doc);
    if (part->cfg.free_user && ent->user)
        part->cfg.free_user(ent->user);
    free((entry_t *)ent);
}

void fl_part_clear(fl_part_t *part)
{
    for (uint32_t i = 0; i < part->count; i++) {
        entry_t *e = (entry_t *)part->order[i];
        fl_hmap_del(part->map, e->id, e->idlen);
        entry_free(part, &e->ent);
    }
    part->count = 0;
    part->snapshot_due = false;
    part_rules_clear(&part->rules);
}

void fl_part_free(fl_part_t *part)
{
    if (part) {
        fl_part_clear(part);
        free(part->order);
        fl_hmap_free(part->map);
        fl_engine_scratch_free(part->own_scratch);
    }
    free(part);
}

fl_part_doc_t *fl_part_get(fl_part_t *part, fl_slice_t id)
{
    return fl_hmap_get(part->map, id.ptr, id.len);
}

fl_part_doc_t *fl_part_get_or_create(fl_part_t *part, fl_slice_t id)
{
    fl_part_doc_t *ent = fl_hmap_get(part->map, id.ptr, id.len);
    entry_t *e;
    if (ent)
        return ent;
    if (id.len == 0 || id.len > FL_DOC_ID_MAX)
        return NULL;
    if (part->count == part->cap) {
        uint32_t cap = part->cap ? part->cap * 2 : 64;
        fl_part_doc_t **order = realloc(part->order, cap * sizeof *order);
        if (!order)
            return NULL;
        part->order = order;
        part->cap = cap;
    }
    if (!(e = calloc(1, sizeof *e + id.len)))
        return NULL;
    memcpy(e->id, id.ptr, id.len);
    e->idlen = id.len;
    fl_window_init(&e->ent.window, part->cfg.window_outcomes, part->cfg.window_bytes);
    if (!(e->ent.doc = fl_doc_new(id, &part->cfg.engine)) ||
        fl_hmap_put(part->map, e->id, e->idlen, e) != 0) {
        entry_free(part, &e->ent);
        return NULL;
    }
    part->order[part->count++] = &e->ent;
    return &e->ent;
}

uint64_t fl_part_txn_base(fl_part_t *part, fl_slice_t id, uint64_t txn_gen)
{
    fl_part_doc_t *ent = fl_part_get(part, id);
    if (!ent)
        return 0;
    if (ent->txn_gen != txn_gen) {
        ent->txn_gen = txn_gen;
        ent->txn_base = fl_doc_version(ent->doc);
    }
    return ent->txn_base;
}

void fl_part_txn_created(fl_part_t *part, fl_slice_t id, uint64_t txn_gen)
{
    fl_part_doc_t *ent = fl_part_get(part, id);
    if (ent) {
        ent->txn_gen = txn_gen;
        ent->txn_base = 0;
    }
}

uint32_t fl_part_count(const fl_part_t *part)
{
    return part->count;
}

fl_part_doc_t *fl_part_at(const fl_part_t *part, uint32_t i)
{
    return i < part->count ? part->order[i] : NULL;
}

bool fl_part_dirty(const fl_part_t *part)
{
    for (uint32_t i = 0; i < part->count; i++)
        if (part->order[i]->dirty)
            return true;
    return false;
}

int32_t fl_part_id(const fl_part_t *part)
{
    return part->id;
}

int64_t fl_part_events_next(const fl_part_t *part)
{
    return part->events_next;
}

void fl_part_events_reach(fl_part_t *part, int64_t offset)
{
    if (offset > part->events_next)
        part->events_next = offset;
}

bool fl_part_snapshot_due(const fl_part_t *part)
{
    return part->snapshot_due;
}

void fl_part_snapshot_done(fl_part_t *part)
{
    part->snapshot_due = false;
}

void fl_part_doc_snapshotted(fl_part_doc_t *ent)
{
    ent->dirty = false;
    ent->snapshot_version = fl_doc_version(ent->doc);
}

bool fl_part_windowed(const fl_part_t *part)
{
    return part->cfg.window_outcomes > 0;
}

void fl_part_note_applied(fl_part_t *part, const fl_part_doc_t *ent)
{
    /* A document never snapshotted is dirty and goes in the next round. */
    if (fl_doc_version(ent->doc) - ent->snapshot_version >= part->cfg.snapshot_every_versions)
        part->snapshot_due = true;
}

/* ---- the restore feed ------------------------------------------------------ */

static bool selected(const fl_wire_snapshot_t *s, const fl_part_select_t *sel)
{
    if (!sel)
        return true;
    if (sel->only.len &&
        (s->doc.len != sel->only.len || memcmp(s->doc.ptr, sel->only.ptr, s->doc.len) != 0))
        return false;
    return (int64_t)s->events_offset <= sel->max_offset && s->version <= sel->max_version;
}

int fl_part_load_snapshot(fl_part_t *part, const fl_wire_snapshot_t *s,
                          const fl_part_select_t *sel)
{
    fl_part_doc_t *ent;
    fl_doc_t *doc;
    int rc;

    if (!selected(s, sel))
        return FL_PART_SKIPPED;
    if (!(ent = fl_part_get_or_create(part, s->doc)))
        return FL_HISTORY_ENOMEM;
    /* Compaction keeps the newest per document, but before it runs older
     * ones are still there: the newest version wins, and of one version
     * the later record (a rejected flush moves the dedup table, not the
     * version). */
    if (ent->loaded && ent->snapshot_version > s->version)
        return FL_PART_SKIPPED;
    /* All or nothing: a snapshot that does not restore leaves the
     * document as it was. */
    if ((rc = fl_history_doc_from_snapshot(s, &part->cfg.engine, &doc)) != 0)
        return rc == FL_HISTORY_ENOMEM ? rc : FL_HISTORY_ESNAPSHOT;
    fl_doc_free(ent->doc);
    ent->doc = doc;
    ent->loaded = true;
    ent->dirty = false;
    ent->snapshot_version = s->version;
    ent->snapshot_offset = (int64_t)s->events_offset;
    fl_window_clear(&ent->window);
    return 0;
}

int fl_part_load_snapshot_rec(fl_part_t *part, const void *payload, size_t len,
                              const fl_part_select_t *sel, fl_arena_t *arena, int64_t *checkpoint,
                              char *errstr, size_t errstr_size)
{
    fl_wire_msg_t wm;
    int rc;

    fl_arena_reset(arena);
    if (fl_wire_decode_record(payload, len, arena, &wm, errstr, errstr_size) != 0)
        return FL_HISTORY_ERECORD;
    if (wm.type == FL_WT_REC_CHECKPOINT) {
        int64_t off = (int64_t)wm.u.checkpoint.events_offset;
        if ((sel && off > sel->max_offset) || off <= *checkpoint)
            return FL_PART_SKIPPED;
        /* The rule sets in force at the checkpoint: the events from it on
         * carry every later change. */
        *checkpoint = off;
        rc = part_rules_load(&part->rules, &wm.u.checkpoint, errstr, errstr_size);
        return rc == 0 ? FL_PART_SKIPPED : rc;
    }
    if (wm.type != FL_WT_REC_SNAPSHOT)
        return FL_PART_SKIPPED;
    rc = fl_part_load_snapshot(part, &wm.u.snapshot, sel);
    if (rc == FL_HISTORY_ESNAPSHOT)
        snprintf(errstr, errstr_size, "snapshot of %.*s v%llu does not restore",
                 (int)wm.u.snapshot.doc.len, wm.u.snapshot.doc.ptr,
                 (unsigned long long)wm.u.snapshot.version);
    return rc;
}

int fl_part_replay_check(fl_part_t *part, const fl_outcome_t *o, int64_t offset,
                         fl_part_doc_t **entp)
{
    fl_part_doc_t *ent = fl_part_get_or_create(part, o->doc);
    if (entp)
        *entp = ent;
    if (!ent)
        return FL_HISTORY_ENOMEM;
    return fl_history_replay_check(ent->doc, ent->loaded ? ent->snapshot_offset : 0, offset, o);
}

int fl_part_replay_apply(fl_part_doc_t *ent, const fl_outcome_t *o, fl_arena_t *arena)
{
    int rc = fl_history_replay(ent->doc, o, arena);
    if (rc != 0)
        return rc;
    /* The sync window starts empty after a restore: see part.h. */
    if (fl_history_outcome_recorded(o))
        ent->dirty = true;
    ent->replayed = true;
    return 0;
}

int fl_part_replay_outcome(fl_part_t *part, const fl_outcome_t *o, int64_t offset,
                           fl_arena_t *arena, fl_part_doc_t **entp)
{
    fl_part_doc_t *ent;
    int rc = fl_part_replay_check(part, o, offset, &ent);
    if (entp)
        *entp = ent;
    return rc != 0 ? rc : fl_part_replay_apply(ent, o, arena);
}

int fl_part_event_decode(const void *payload, size_t len, fl_arena_t *arena,
                         const fl_outcome_t **op, char *errstr, size_t errstr_size)
{
    return fl_part_event_decode_rules(payload, len, arena, op, NULL, errstr, errstr_size);
}

int fl_part_event_decode_rules(const void *payload, size_t len, fl_arena_t *arena,
                               const fl_outcome_t **op, const fl_wire_rules_t **rulesp,
                               char *errstr, size_t errstr_size)
{
    fl_wire_msg_t wm;
    fl_outcome_t *copy;
    fl_wire_rules_t *rcopy;
    char why[256];

    *op = NULL;
    fl_arena_reset(arena);
    if (fl_wire_decode_record(payload, len, arena, &wm, why, sizeof why) != 0) {
        snprintf(errstr, errstr_size, "undecodable record: %s", why);
        return FL_HISTORY_ERECORD;
    }
    if (wm.type == FL_WT_REC_SYNC_REPLY)
        return FL_PART_SKIPPED; /* answers to gateways: no state change */
    if (wm.type == FL_WT_REC_RULES) {
        /* a copy of a rules record the processor put in force: readers of
         * outcomes pass over it */
        if (!rulesp)
            return FL_PART_SKIPPED;
        if (!(rcopy = fl_arena_alloc(arena, sizeof *rcopy)))
            return FL_HISTORY_ENOMEM;
        *rcopy = wm.u.rules;
        *rulesp = rcopy;
        return FL_PART_RULES;
    }
    if (wm.type != FL_WT_REC_OUTCOME) {
        snprintf(errstr, errstr_size, "a %s record does not belong in events",
                 fl_wire_type_name(wm.type));
        return FL_HISTORY_ERECORD;
    }
    /* The outcome lives in arena: copy it out for the caller. */
    if (!(copy = fl_arena_alloc(arena, sizeof *copy)))
        return FL_HISTORY_ENOMEM;
    *copy = wm.u.outcome.outcome;
    *op = copy;
    return 0;
}

void fl_part_replay_why(const fl_outcome_t *o, int err, char *why, size_t why_size)
{
    char want[2 * FL_HASH_LEN + 1];
    if (err == FL_HISTORY_ECHAIN) {
        fl_wire_hex(o->chain, FL_HASH_LEN, want);
        snprintf(why, why_size,
                 "chain hash differs: the record says %s, replaying its commands on v%llu "
                 "gives another",
                 want, (unsigned long long)o->version_before);
    } else if (err == FL_HISTORY_EDELTA) {
        snprintf(why, why_size, "the outcome's commands do not apply to the document at v%llu",
                 (unsigned long long)o->version_before);
    } else {
        snprintf(why, why_size, "replay: %s", fl_history_strerror(err));
    }
}

int fl_part_replay_event_rec(fl_part_t *part, const void *payload, size_t len, int64_t offset,
                             fl_arena_t *arena, const fl_outcome_t **op, char *errstr,
                             size_t errstr_size)
{
    const fl_outcome_t *o;
    const fl_wire_rules_t *rules;
    int rc = fl_part_event_decode_rules(payload, len, arena, &o, &rules, errstr, errstr_size);

    if (op)
        *op = o;
    if (rc == FL_PART_RULES) {
        rc = fl_part_rules_apply(part, rules, errstr, errstr_size);
        return rc == 0 ? FL_PART_SKIPPED : rc;
    }
    if (rc != 0)
        return rc;
    rc = fl_part_replay_outcome(part, o, offset, arena, NULL);
    if (rc < 0)
        snprintf(errstr, errstr_size, "%s", fl_history_strerror(rc));
    return rc;
}

/* ---- rules ---------------------------------------------------------------- */

part_rules_t *fl_part_rules_of(fl_part_t *part)
{
    return &part->rules;
}

uint32_t fl_part_rules_count(const fl_part_t *part)
{
    return part->rules.n;
}

int fl_part_rules_apply(fl_part_t *part, const fl_wire_rules_t *r, char *errstr,
                        size_t errstr_size)
{
    return part_rules_put(&part->rules, r->prefix, r->has_rules ? &r->rules : NULL, errstr,
                          errstr_size);
}

int fl_part_checkpoint_record(fl_part_t *part, int64_t events_offset, fl_arena_t *arena,
                              char **buf, size_t *len, char *errstr, size_t errstr_size)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_CHECKPOINT;
    msg.u.checkpoint.partition = (uint32_t)part->id;
    msg.u.checkpoint.events_offset = (uint64_t)events_offset;
    if (part_rules_export(&part->rules, arena, &msg.u.checkpoint.rules,
                          &msg.u.checkpoint.nrules) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return FL_HISTORY_ENOMEM;
    }
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, buf, len, errstr, errstr_size) != 0)
        return FL_HISTORY_ERECORD;
    return 0;
}
