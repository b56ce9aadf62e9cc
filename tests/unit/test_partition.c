/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the partition logic (partition/): no broker. The task on
 * canned commands records: a flush (outcome emitted, held by the window,
 * document dirty, snapshot due past the threshold), a duplicate (the
 * original outcome again, nothing applied), a gap, a sync answered from the
 * window (deltas) and one it cannot answer so (the state), a sync for a
 * document never written, syncs not answered (reprocess), bad records (an
 * undecodable one, a flush keyed by another document, an events record in
 * commands) that change nothing. The restore feed on canned records: the
 * outcomes the task emitted replayed into an empty partition give the same
 * digests, chains and dedup answers; a snapshot plus the events after it,
 * and a checkpoint, give the same again; the newest snapshot wins; a
 * selection passes snapshots over; a snapshot that does not restore leaves
 * the document alone; an event that does not continue its document is
 * refused.
 */
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/history.h"
#include "flushline/part.h"
#include "flushline/task.h"

static const fl_slice_t doc_a = {"t/a", 3};
static const fl_slice_t doc_b = {"t/b", 3};

/* ---- canned records ------------------------------------------------------- */

static fl_cmd_t cmd_incr(const char *path, int64_t by)
{
    fl_cmd_t c;
    memset(&c, 0, sizeof c);
    c.op = FL_OP_INCR;
    c.path = (fl_slice_t){path, strlen(path)};
    c.value = fl_value_int(by);
    c.has_value = true;
    return c;
}

/* A commands record: a flush of one incr of /n on doc by client, seq. */
static char *flush_rec(fl_slice_t doc, uint8_t client, uint64_t seq, int64_t by, size_t *len)
{
    fl_cmd_t c = cmd_incr("/n", by);
    fl_flush_t fl;
    char *buf = NULL, errstr[128];
    memset(&fl, 0, sizeof fl);
    fl.doc = doc;
    memset(fl.client_id, client, FL_CLIENT_ID_LEN);
    fl.seq = seq;
    fl.cmds = &c;
    fl.ncmds = 1;
    fl.user = (fl_slice_t){"u", 1};
    if (fl_wire_encode_flush_record(&fl, (fl_slice_t){"gw", 2}, 9, &buf, len, errstr,
                                    sizeof errstr) != 0)
        return NULL;
    return buf;
}

static char *sync_rec(fl_slice_t doc, uint64_t have, size_t *len)
{
    fl_wire_msg_t m;
    char *buf = NULL, errstr[128];
    memset(&m, 0, sizeof m);
    m.type = FL_WT_REC_SYNC;
    m.u.sync.doc = doc;
    m.u.sync.gw = (fl_slice_t){"gw", 2};
    m.u.sync.req = 5;
    m.u.sync.have_version = have;
    if (fl_wire_encode(&m, FL_WIRE_MSGPACK, &buf, len, errstr, sizeof errstr) != 0)
        return NULL;
    return buf;
}

static fl_part_t *new_part(uint32_t window, uint64_t every)
{
    fl_part_config_t cfg;
    fl_part_config_default(&cfg);
    cfg.window_outcomes = window;
    cfg.window_bytes = 1 << 20;
    cfg.snapshot_every_versions = every;
    return fl_part_new(3, &cfg);
}

/* Runs one record through the task; 0 or the task's error. */
static int run(fl_part_t *part, fl_slice_t key, char *payload, size_t len, int flags,
               fl_arena_t *arena, fl_task_out_t *out)
{
    fl_task_rec_t rec = {.key = key, .payload = payload, .len = len, .ts_ms = 4242};
    int rc = fl_task_apply(part, &rec, flags, arena, out);
    free(payload);
    return rc;
}

/* The decoded events record emitted at out->emit[i] (in arena). */
static int decode_emit(const fl_task_out_t *out, uint32_t i, fl_arena_t *arena, fl_wire_msg_t *m)
{
    char errstr[128];
    return fl_wire_decode_record(out->emit[i].rec, out->emit[i].len, arena, m, errstr,
                                 sizeof errstr);
}

/* ---- the task ------------------------------------------------------------- */

static void test_task_flush(void)
{
    fl_part_t *part = new_part(8, 3);
    fl_arena_t *arena = fl_arena_new(4096), *dec = fl_arena_new(4096);
    fl_task_out_t out;
    fl_wire_msg_t m;
    size_t len;
    char *rec = flush_rec(doc_a, 1, 1, 5, &len);

    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_FLUSH);
    ASSERT_EQ(out.nemit, 1);
    ASSERT_TRUE(out.emit[0].held); /* the window keeps it: the caller copies */
    ASSERT_TRUE(out.created);
    ASSERT_EQ(out.napplied, 1);
    ASSERT_EQ(out.nrejected, 0);
    ASSERT_MEM_EQ(out.emit[0].key.ptr, out.emit[0].key.len, doc_a.ptr, doc_a.len);
    ASSERT_EQ(decode_emit(&out, 0, dec, &m), 0);
    ASSERT_EQ(m.type, FL_WT_REC_OUTCOME);
    ASSERT_EQ(m.u.outcome.outcome.version_before, 0);
    ASSERT_EQ(m.u.outcome.outcome.version_after, 1);
    ASSERT_EQ(m.u.outcome.outcome.ts_ms, 4242); /* the record's timestamp */
    ASSERT_EQ(m.u.outcome.origin, 9);

    fl_part_doc_t *ent = fl_part_get(part, doc_a);
    ASSERT_TRUE(ent != NULL);
    ASSERT_TRUE(ent->dirty);
    ASSERT_EQ(fl_doc_version(ent->doc), 1);
    ASSERT_EQ(fl_window_count(&ent->window), 1);
    ASSERT_TRUE(!fl_part_snapshot_due(part)); /* 1 < 3 versions */
    rec = flush_rec(doc_a, 1, 2, 1, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_TRUE(!out.created);
    rec = flush_rec(doc_a, 1, 3, 1, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_TRUE(fl_part_snapshot_due(part)); /* 3 versions past the last snapshot (none) */
    fl_part_doc_snapshotted(ent);
    fl_part_snapshot_done(part);
    ASSERT_TRUE(!ent->dirty);
    ASSERT_EQ(ent->snapshot_version, 3);
    ASSERT_TRUE(!fl_part_dirty(part));
    fl_arena_free(arena);
    fl_arena_free(dec);
    fl_part_free(part);
}

static void test_task_duplicate_and_gap(void)
{
    fl_part_t *part = new_part(8, 1000);
    fl_arena_t *arena = fl_arena_new(4096), *dec = fl_arena_new(4096);
    fl_task_out_t out;
    fl_wire_msg_t m;
    size_t len;
    char *first, *rec = flush_rec(doc_a, 1, 1, 5, &len);
    size_t first_len;

    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    first_len = out.emit[0].len;
    first = malloc(first_len);
    memcpy(first, out.emit[0].rec, first_len);
    /* the same seq again: the original outcome, nothing applied */
    rec = flush_rec(doc_a, 1, 1, 5, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_FLUSH);
    ASSERT_TRUE(out.duplicate);
    ASSERT_EQ(out.napplied, 0);
    ASSERT_EQ(out.nemit, 1);
    ASSERT_TRUE(!out.emit[0].held); /* not windowed: the caller owns it */
    ASSERT_EQ(decode_emit(&out, 0, dec, &m), 0);
    ASSERT_TRUE(m.u.outcome.outcome.duplicate);
    ASSERT_EQ(m.u.outcome.outcome.version_after, 1);
    fl_task_out_release(&out);
    ASSERT_EQ(fl_doc_version(fl_part_get(part, doc_a)->doc), 1);
    /* seq 3 after 1: a gap, refused whole */
    rec = flush_rec(doc_a, 1, 3, 5, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(out.napplied, 0);
    ASSERT_EQ(decode_emit(&out, 0, dec, &m), 0);
    ASSERT_EQ(m.u.outcome.outcome.code, FL_CODE_GAP);
    fl_task_out_release(&out);
    ASSERT_EQ(fl_doc_version(fl_part_get(part, doc_a)->doc), 1);
    free(first);
    fl_arena_free(arena);
    fl_arena_free(dec);
    fl_part_free(part);
}

static void test_task_sync(void)
{
    fl_part_t *part = new_part(2, 1000);
    fl_arena_t *arena = fl_arena_new(4096), *dec = fl_arena_new(4096);
    fl_task_out_t out;
    fl_wire_msg_t m;
    size_t len;
    char *rec;

    for (uint64_t s = 1; s <= 4; s++) {
        rec = flush_rec(doc_a, 1, s, 1, &len);
        ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    }
    /* from v2: the window (2 outcomes) holds v2..v4: deltas */
    rec = sync_rec(doc_a, 2, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_SYNC);
    ASSERT_EQ(out.nemit, 1);
    ASSERT_EQ(decode_emit(&out, 0, dec, &m), 0);
    ASSERT_EQ(m.type, FL_WT_REC_SYNC_REPLY);
    ASSERT_EQ(m.u.reply.version, 4);
    ASSERT_EQ(m.u.reply.req, 5);
    ASSERT_TRUE(!m.u.reply.has_state);
    ASSERT_EQ(m.u.reply.nitems, 2);
    fl_task_out_release(&out);
    /* from v1: gone from the window: the state */
    rec = sync_rec(doc_a, 1, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(decode_emit(&out, 0, dec, &m), 0);
    ASSERT_TRUE(m.u.reply.has_state);
    ASSERT_EQ(m.u.reply.nitems, 0);
    ASSERT_EQ(m.u.reply.state.type, FL_MAP);
    fl_task_out_release(&out);
    /* up to date: no items, no state */
    rec = sync_rec(doc_a, 4, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(decode_emit(&out, 0, dec, &m), 0);
    ASSERT_TRUE(!m.u.reply.has_state);
    ASSERT_EQ(m.u.reply.nitems, 0);
    fl_task_out_release(&out);
    /* a document never written is not created */
    rec = sync_rec(doc_b, 0, &len);
    ASSERT_EQ(run(part, doc_b, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(decode_emit(&out, 0, dec, &m), 0);
    ASSERT_EQ(m.u.reply.version, 0);
    fl_task_out_release(&out);
    ASSERT_TRUE(fl_part_get(part, doc_b) == NULL);
    /* not answered at all (reprocess) */
    rec = sync_rec(doc_a, 1, &len);
    ASSERT_EQ(run(part, doc_a, rec, len, FL_TASK_NO_SYNC_REPLIES, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_SYNC);
    ASSERT_EQ(out.nemit, 0);
    fl_arena_free(arena);
    fl_arena_free(dec);
    fl_part_free(part);
}

static void test_task_bad_records(void)
{
    fl_part_t *part = new_part(8, 1000);
    fl_arena_t *arena = fl_arena_new(4096);
    fl_task_out_t out;
    size_t len;
    char *rec = malloc(4);

    memcpy(rec, "\xc1zz!", 4); /* not msgpack */
    ASSERT_EQ(run(part, doc_a, rec, 4, 0, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_BAD);
    ASSERT_EQ(out.nemit, 0);
    ASSERT_TRUE(out.reason[0] != '\0');
    /* a flush keyed by another document */
    rec = flush_rec(doc_a, 1, 1, 1, &len);
    ASSERT_EQ(run(part, doc_b, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_BAD);
    ASSERT_TRUE(strstr(out.reason, "key") != NULL);
    ASSERT_TRUE(fl_part_get(part, doc_a) == NULL);
    /* an events record in commands */
    fl_wire_msg_t m;
    char errstr[128];
    memset(&m, 0, sizeof m);
    m.type = FL_WT_REC_CHECKPOINT;
    m.u.checkpoint.partition = 3;
    ASSERT_EQ(fl_wire_encode(&m, FL_WIRE_MSGPACK, &rec, &len, errstr, sizeof errstr), 0);
    ASSERT_EQ(run(part, doc_a, rec, len, 0, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_BAD);
    ASSERT_TRUE(strstr(out.reason, "does not belong in commands") != NULL);
    ASSERT_EQ(fl_part_count(part), 0);
    fl_arena_free(arena);
    fl_part_free(part);
}

/* ---- the restore feed ----------------------------------------------------- */

/* The events a task run of n flushes on two documents (a few duplicates and
 * a gap among them) emits, as (record, offset) in offset order; the
 * partition that ran them in *orig. */
typedef struct events_s {
    char *rec[64];
    size_t len[64];
    uint32_t n;
} events_t;

static void emit_events(fl_part_t *orig, events_t *ev, fl_arena_t *arena)
{
    static const struct {
        int doc;
        uint8_t client;
        uint64_t seq;
    } steps[] = {{0, 1, 1}, {1, 1, 1}, {0, 1, 2}, {0, 2, 1}, {0, 1, 2}, {1, 1, 2},
                 {1, 1, 4}, {0, 2, 2}, {1, 2, 1}, {0, 1, 3}, {1, 1, 3}, {0, 2, 3}};
    ev->n = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        fl_slice_t d = steps[i].doc ? doc_b : doc_a;
        fl_task_out_t out;
        size_t len;
        char *rec = flush_rec(d, steps[i].client, steps[i].seq, (int64_t)i + 1, &len);
        if (run(orig, d, rec, len, 0, arena, &out) != 0 || out.nemit != 1)
            return;
        ev->len[ev->n] = out.emit[0].len;
        ev->rec[ev->n] = malloc(out.emit[0].len);
        memcpy(ev->rec[ev->n], out.emit[0].rec, out.emit[0].len);
        ev->n++;
        fl_task_out_release(&out);
    }
}

static void events_free(events_t *ev)
{
    for (uint32_t i = 0; i < ev->n; i++)
        free(ev->rec[i]);
}

/* Same digest, chain and version for doc in both partitions. */
static bool same_doc(fl_part_t *a, fl_part_t *b, fl_slice_t d)
{
    fl_part_doc_t *x = fl_part_get(a, d), *y = fl_part_get(b, d);
    uint8_t dx[FL_HASH_LEN], dy[FL_HASH_LEN];
    if (!x || !y || fl_doc_version(x->doc) != fl_doc_version(y->doc))
        return false;
    fl_doc_digest(x->doc, dx);
    fl_doc_digest(y->doc, dy);
    return memcmp(dx, dy, FL_HASH_LEN) == 0 &&
           memcmp(fl_doc_chain(x->doc), fl_doc_chain(y->doc), FL_HASH_LEN) == 0;
}

static char *snapshot_of(fl_part_t *part, fl_slice_t d, int64_t events_offset, fl_arena_t *arena,
                         size_t *len)
{
    char *buf = NULL, errstr[128];
    if (fl_history_encode_snapshot(fl_part_get(part, d)->doc, events_offset, arena, &buf, len,
                                   errstr, sizeof errstr) != 0)
        return NULL;
    return buf;
}

static char *checkpoint_of(int64_t events_offset, size_t *len)
{
    fl_wire_msg_t m;
    char *buf = NULL, errstr[128];
    memset(&m, 0, sizeof m);
    m.type = FL_WT_REC_CHECKPOINT;
    m.u.checkpoint.partition = 3;
    m.u.checkpoint.events_offset = (uint64_t)events_offset;
    return fl_wire_encode(&m, FL_WIRE_MSGPACK, &buf, len, errstr, sizeof errstr) == 0 ? buf : NULL;
}

static void test_restore_events_only(void)
{
    fl_part_t *orig = new_part(8, 1000), *back = new_part(8, 1000);
    fl_arena_t *arena = fl_arena_new(4096);
    events_t ev;
    char errstr[256];

    emit_events(orig, &ev, arena);
    ASSERT_EQ(ev.n, 12);
    for (uint32_t i = 0; i < ev.n; i++)
        ASSERT_EQ(fl_part_replay_event_rec(back, ev.rec[i], ev.len[i], i, arena, NULL, errstr,
                                           sizeof errstr),
                  0);
    ASSERT_TRUE(same_doc(orig, back, doc_a));
    ASSERT_TRUE(same_doc(orig, back, doc_b));
    ASSERT_TRUE(fl_part_get(back, doc_a)->dirty);
    ASSERT_TRUE(fl_part_get(back, doc_a)->replayed);
    /* the window starts empty after a restore */
    ASSERT_EQ(fl_window_count(&fl_part_get(back, doc_a)->window), 0);
    /* and the dedup table answers as the original's: a repeat of the last
     * seq is a duplicate, the next one applies */
    fl_task_out_t o1, o2;
    size_t len;
    ASSERT_EQ(run(orig, doc_a, flush_rec(doc_a, 2, 3, 7, &len), len, 0, arena, &o1), 0);
    ASSERT_EQ(run(back, doc_a, flush_rec(doc_a, 2, 3, 7, &len), len, 0, arena, &o2), 0);
    ASSERT_TRUE(o1.duplicate && o2.duplicate);
    fl_task_out_release(&o1);
    fl_task_out_release(&o2);
    ASSERT_EQ(run(orig, doc_a, flush_rec(doc_a, 2, 4, 7, &len), len, 0, arena, &o1), 0);
    ASSERT_EQ(run(back, doc_a, flush_rec(doc_a, 2, 4, 7, &len), len, 0, arena, &o2), 0);
    ASSERT_MEM_EQ(o1.emit[0].rec, o1.emit[0].len, o2.emit[0].rec, o2.emit[0].len);
    ASSERT_TRUE(same_doc(orig, back, doc_a));
    events_free(&ev);
    fl_arena_free(arena);
    fl_part_free(orig);
    fl_part_free(back);
}

static void test_restore_snapshot_checkpoint_events(void)
{
    fl_part_t *orig = new_part(8, 1000), *mid = new_part(8, 1000), *back = new_part(8, 1000);
    fl_arena_t *arena = fl_arena_new(4096);
    events_t ev;
    char errstr[256], *rec;
    size_t len;
    int64_t checkpoint = -1;
    const uint32_t cut = 6; /* snapshots and a checkpoint reflect events [0, 6) */

    emit_events(orig, &ev, arena);
    for (uint32_t i = 0; i < cut; i++)
        ASSERT_EQ(fl_part_replay_event_rec(mid, ev.rec[i], ev.len[i], i, arena, NULL, errstr,
                                           sizeof errstr),
                  0);
    /* the snapshots partition: an older snapshot of a, the ones at the cut,
     * the checkpoint */
    char *old_a = NULL;
    size_t old_len = 0;
    {
        fl_part_t *early = new_part(8, 1000);
        ASSERT_EQ(fl_part_replay_event_rec(early, ev.rec[0], ev.len[0], 0, arena, NULL, errstr,
                                           sizeof errstr),
                  0);
        old_a = snapshot_of(early, doc_a, 1, arena, &old_len);
        fl_part_free(early);
    }
    ASSERT_TRUE(old_a != NULL);
    ASSERT_EQ(fl_part_load_snapshot_rec(back, old_a, old_len, NULL, arena, &checkpoint, errstr,
                                        sizeof errstr),
              0);
    rec = snapshot_of(mid, doc_a, cut, arena, &len);
    ASSERT_EQ(fl_part_load_snapshot_rec(back, rec, len, NULL, arena, &checkpoint, errstr,
                                        sizeof errstr),
              0);
    free(rec);
    /* the older one again (before compaction): passed over */
    ASSERT_EQ(fl_part_load_snapshot_rec(back, old_a, old_len, NULL, arena, &checkpoint, errstr,
                                        sizeof errstr),
              FL_PART_SKIPPED);
    rec = snapshot_of(mid, doc_b, cut, arena, &len);
    ASSERT_EQ(fl_part_load_snapshot_rec(back, rec, len, NULL, arena, &checkpoint, errstr,
                                        sizeof errstr),
              0);
    free(rec);
    rec = checkpoint_of(cut, &len);
    ASSERT_EQ(fl_part_load_snapshot_rec(back, rec, len, NULL, arena, &checkpoint, errstr,
                                        sizeof errstr),
              FL_PART_SKIPPED);
    free(rec);
    ASSERT_EQ(checkpoint, cut);
    ASSERT_TRUE(fl_part_get(back, doc_a)->loaded);
    ASSERT_TRUE(!fl_part_get(back, doc_a)->dirty);
    ASSERT_EQ(fl_part_get(back, doc_a)->snapshot_offset, cut);
    /* events from a point before the checkpoint: the reflected ones are
     * left alone, the rest replayed */
    for (uint32_t i = 2; i < ev.n; i++) {
        int rc = fl_part_replay_event_rec(back, ev.rec[i], ev.len[i], i, arena, NULL, errstr,
                                          sizeof errstr);
        ASSERT_EQ(rc, i < cut ? FL_HISTORY_REFLECTED : 0);
    }
    ASSERT_TRUE(same_doc(orig, back, doc_a));
    ASSERT_TRUE(same_doc(orig, back, doc_b));
    /* a selection: only snapshots at or below events offset 1 of doc a */
    fl_part_t *sel_part = new_part(0, 1000);
    fl_part_select_t sel = {.max_offset = 1, .max_version = UINT64_MAX, .only = doc_a};
    rec = snapshot_of(mid, doc_a, cut, arena, &len);
    ASSERT_EQ(fl_part_load_snapshot_rec(sel_part, rec, len, &sel, arena, &checkpoint, errstr,
                                        sizeof errstr),
              FL_PART_SKIPPED);
    free(rec);
    ASSERT_EQ(fl_part_load_snapshot_rec(sel_part, old_a, old_len, &sel, arena, &checkpoint, errstr,
                                        sizeof errstr),
              0);
    ASSERT_EQ(fl_part_count(sel_part), 1);
    fl_part_free(sel_part);
    free(old_a);
    events_free(&ev);
    fl_arena_free(arena);
    fl_part_free(orig);
    fl_part_free(mid);
    fl_part_free(back);
}

static void test_restore_refusals(void)
{
    fl_part_t *orig = new_part(8, 1000), *back = new_part(8, 1000);
    fl_arena_t *arena = fl_arena_new(4096);
    events_t ev;
    char errstr[256];
    const fl_outcome_t *o = NULL;

    emit_events(orig, &ev, arena);
    /* an event that does not start at its document's version */
    ASSERT_EQ(fl_part_replay_event_rec(back, ev.rec[2], ev.len[2], 2, arena, &o, errstr,
                                       sizeof errstr),
              FL_HISTORY_EVERSION);
    ASSERT_TRUE(o != NULL);
    ASSERT_EQ(fl_doc_version(fl_part_get(back, doc_a)->doc), 0);
    /* undecodable */
    ASSERT_EQ(fl_part_replay_event_rec(back, "\xc1", 1, 3, arena, NULL, errstr, sizeof errstr),
              FL_HISTORY_ERECORD);
    /* a snapshot whose state is not a map does not restore: the document
     * stays as it was */
    ASSERT_EQ(fl_part_replay_event_rec(back, ev.rec[0], ev.len[0], 0, arena, NULL, errstr,
                                       sizeof errstr),
              0);
    fl_wire_snapshot_t snap;
    memset(&snap, 0, sizeof snap);
    snap.doc = doc_a;
    snap.version = 9;
    snap.state = fl_value_int(3);
    ASSERT_EQ(fl_part_load_snapshot(back, &snap, NULL), FL_HISTORY_ESNAPSHOT);
    ASSERT_EQ(fl_doc_version(fl_part_get(back, doc_a)->doc), 1);
    ASSERT_TRUE(!fl_part_get(back, doc_a)->loaded);
    events_free(&ev);
    fl_arena_free(arena);
    fl_part_free(orig);
    fl_part_free(back);
}

static void test_part_table(void)
{
    fl_part_t *part = new_part(0, 1000);
    char id[16];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "t/%d", i);
        ASSERT_TRUE(fl_part_get_or_create(part, (fl_slice_t){id, strlen(id)}) != NULL);
    }
    ASSERT_EQ(fl_part_count(part), 200);
    /* creation order */
    for (uint32_t i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "t/%u", i);
        fl_slice_t got = fl_doc_id(fl_part_at(part, i)->doc);
        ASSERT_MEM_EQ(got.ptr, got.len, id, strlen(id));
    }
    ASSERT_TRUE(fl_part_at(part, 200) == NULL);
    ASSERT_TRUE(fl_part_get_or_create(part, (fl_slice_t){"", 0}) == NULL);
    fl_part_events_reach(part, 10);
    fl_part_events_reach(part, 4);
    ASSERT_EQ(fl_part_events_next(part), 10);
    fl_part_clear(part);
    ASSERT_EQ(fl_part_count(part), 0);
    ASSERT_TRUE(fl_part_get(part, (fl_slice_t){"t/1", 3}) == NULL);
    ASSERT_EQ(fl_part_id(part), 3);
    fl_part_free(part);
    fl_part_free(NULL);
}

int main(void)
{
    RUN(test_task_flush);
    RUN(test_task_duplicate_and_gap);
    RUN(test_task_sync);
    RUN(test_task_bad_records);
    RUN(test_restore_events_only);
    RUN(test_restore_snapshot_checkpoint_events);
    RUN(test_restore_refusals);
    RUN(test_part_table);
    return fl_test_done();
}
