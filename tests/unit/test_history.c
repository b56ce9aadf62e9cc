/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the one history module (core/history.c): the outcome
 * window's bounds (count, bytes, the oldest evicted first, wrap-around),
 * find by exact version only, contiguity (a hole empties it), its memory
 * accounting, window -> deltas on real outcome records (and a bad record),
 * outcome -> delta on a canned outcome, which outcomes dirty a snapshot,
 * the snapshot round trip (a document with dedup entries and evictions ->
 * record -> encode -> decode -> new document: same digest, chain, version,
 * dedup table, and the same answers to repeats, gaps and new clients), a
 * snapshot that does not restore leaving the caller's document alone, and
 * the event replay decisions (reflected, replayed, not continuing) with a
 * restore from snapshot plus events that ends where the original is.
 */
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/history.h"

static const fl_slice_t id = {"t/hist", 6};

/* A malloc'd record of n bytes filled with tag (the window owns it). */
static char *rec_of(size_t n, char tag)
{
    char *r = malloc(n ? n : 1);
    memset(r, tag, n ? n : 1);
    return r;
}

static void test_window_count_bound(void)
{
    fl_window_t w;
    fl_window_init(&w, 4, SIZE_MAX);
    ASSERT_EQ(fl_window_count(&w), 0);
    ASSERT_EQ(fl_window_mem(&w), 0); /* nothing allocated before the first push */
    ASSERT_EQ(fl_window_find(&w, 0), -1);
    for (uint64_t v = 0; v < 6; v++)
        ASSERT_EQ(fl_window_push(&w, v, v + 1, rec_of(10, (char)('a' + v)), 10), 0);
    /* 6 pushed, 4 kept: the two oldest went */
    ASSERT_EQ(fl_window_count(&w), 4);
    ASSERT_EQ(fl_window_bytes(&w), 40);
    ASSERT_EQ(fl_window_mem(&w), 40 + 4 * sizeof(fl_window_item_t));
    for (uint32_t i = 0; i < 4; i++) {
        const fl_window_item_t *item = fl_window_at(&w, i);
        ASSERT_TRUE(item != NULL);
        ASSERT_EQ(item->version_before, 2 + i);
        ASSERT_EQ(item->version_after, 3 + i);
        ASSERT_EQ(item->len, 10);
        ASSERT_EQ(item->rec[0], 'a' + 2 + i);
    }
    ASSERT_TRUE(fl_window_at(&w, 4) == NULL);
    ASSERT_EQ(fl_window_find(&w, 0), -1);
    ASSERT_EQ(fl_window_find(&w, 1), -1);
    ASSERT_EQ(fl_window_find(&w, 2), 0);
    ASSERT_EQ(fl_window_find(&w, 5), 3);
    ASSERT_EQ(fl_window_find(&w, 6), -1); /* the newest's end starts nothing yet */
    /* around the ring several times: always the newest four, in order */
    for (uint64_t v = 6; v < 23; v++)
        ASSERT_EQ(fl_window_push(&w, v, v + 1, rec_of(3, (char)v), 3), 0);
    ASSERT_EQ(fl_window_count(&w), 4);
    ASSERT_EQ(fl_window_bytes(&w), 12);
    for (uint32_t i = 0; i < 4; i++) {
        ASSERT_EQ(fl_window_at(&w, i)->version_before, 19 + i);
        ASSERT_EQ(fl_window_at(&w, i)->rec[0], (char)(19 + i));
        ASSERT_EQ(fl_window_find(&w, 19 + i), (int)i);
    }
    fl_window_clear(&w);
    ASSERT_EQ(fl_window_count(&w), 0);
    ASSERT_EQ(fl_window_bytes(&w), 0);
    ASSERT_EQ(fl_window_find(&w, 19), -1);
    /* usable again after a clear, from any version */
    ASSERT_EQ(fl_window_push(&w, 100, 101, rec_of(5, 'z'), 5), 0);
    ASSERT_EQ(fl_window_find(&w, 100), 0);
    fl_window_free(&w);
    ASSERT_EQ(fl_window_count(&w), 0);
    ASSERT_EQ(fl_window_mem(&w), 0);
    fl_window_free(&w); /* twice is safe */
}

static void test_window_byte_bound(void)
{
    fl_window_t w;
    fl_window_init(&w, 100, 100);
    ASSERT_EQ(fl_window_push(&w, 0, 1, rec_of(40, 'a'), 40), 0);
    ASSERT_EQ(fl_window_push(&w, 1, 2, rec_of(40, 'b'), 40), 0);
    ASSERT_EQ(fl_window_bytes(&w), 80);
    /* 80 + 30 > 100: the oldest goes */
    ASSERT_EQ(fl_window_push(&w, 2, 3, rec_of(30, 'c'), 30), 0);
    ASSERT_EQ(fl_window_count(&w), 2);
    ASSERT_EQ(fl_window_bytes(&w), 70);
    ASSERT_EQ(fl_window_at(&w, 0)->rec[0], 'b');
    /* exactly the budget: everything else goes */
    ASSERT_EQ(fl_window_push(&w, 3, 4, rec_of(100, 'd'), 100), 0);
    ASSERT_EQ(fl_window_count(&w), 1);
    ASSERT_EQ(fl_window_bytes(&w), 100);
    ASSERT_EQ(fl_window_find(&w, 3), 0);
    /* larger than the budget: not kept, and nothing older either (the
     * window would have a hole at version 4) */
    ASSERT_EQ(fl_window_push(&w, 4, 5, rec_of(101, 'e'), 101), 0);
    ASSERT_EQ(fl_window_count(&w), 0);
    ASSERT_EQ(fl_window_bytes(&w), 0);
    ASSERT_EQ(fl_window_find(&w, 3), -1);
    ASSERT_EQ(fl_window_push(&w, 5, 6, rec_of(10, 'f'), 10), 0);
    ASSERT_EQ(fl_window_count(&w), 1);
    ASSERT_EQ(fl_window_find(&w, 5), 0);
    fl_window_free(&w);

    /* max_items 0: never keeps anything (the record is freed: ASan) */
    fl_window_init(&w, 0, SIZE_MAX);
    ASSERT_EQ(fl_window_push(&w, 0, 1, rec_of(10, 'a'), 10), 0);
    ASSERT_EQ(fl_window_count(&w), 0);
    ASSERT_EQ(fl_window_find(&w, 0), -1);
    ASSERT_EQ(fl_window_mem(&w), 0);
    fl_window_free(&w);
}

/* Outcomes spanning several versions: only their starts are found. */
static void test_window_find_exact(void)
{
    fl_window_t w;
    fl_window_init(&w, 8, SIZE_MAX);
    ASSERT_EQ(fl_window_push(&w, 0, 3, rec_of(1, 'a'), 1), 0);
    ASSERT_EQ(fl_window_push(&w, 3, 5, rec_of(1, 'b'), 1), 0);
    ASSERT_EQ(fl_window_push(&w, 5, 6, rec_of(1, 'c'), 1), 0);
    ASSERT_EQ(fl_window_push(&w, 6, 10, rec_of(1, 'd'), 1), 0);
    ASSERT_EQ(fl_window_find(&w, 0), 0);
    ASSERT_EQ(fl_window_find(&w, 1), -1);
    ASSERT_EQ(fl_window_find(&w, 2), -1);
    ASSERT_EQ(fl_window_find(&w, 3), 1);
    ASSERT_EQ(fl_window_find(&w, 4), -1);
    ASSERT_EQ(fl_window_find(&w, 5), 2);
    ASSERT_EQ(fl_window_find(&w, 6), 3);
    ASSERT_EQ(fl_window_find(&w, 7), -1);
    ASSERT_EQ(fl_window_find(&w, 10), -1);
    ASSERT_EQ(fl_window_find(&w, UINT64_MAX), -1);
    /* an outcome that does not continue the newest: the window restarts
     * with it, so what it holds always reaches the newest version */
    ASSERT_EQ(fl_window_push(&w, 12, 13, rec_of(1, 'e'), 1), 0);
    ASSERT_EQ(fl_window_count(&w), 1);
    ASSERT_EQ(fl_window_find(&w, 6), -1);
    ASSERT_EQ(fl_window_find(&w, 12), 0);
    fl_window_free(&w);
}

/* ---- real outcomes ---------------------------------------------------------- */

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

static fl_cmd_t cmd_add(const char *path, int64_t v)
{
    fl_cmd_t c = cmd_incr(path, v);
    c.op = FL_OP_ADD;
    return c;
}

static fl_flush_t flush_of(fl_cmd_t *cmds, uint32_t n, uint8_t client, uint64_t seq)
{
    fl_flush_t fl;
    memset(&fl, 0, sizeof fl);
    fl.doc = id;
    memset(fl.client_id, client, FL_CLIENT_ID_LEN);
    fl.seq = seq;
    fl.cmds = cmds;
    fl.ncmds = n;
    fl.user = (fl_slice_t){"u", 1};
    fl.ts_ms = 1000 + (int64_t)seq;
    return fl;
}

/* Applies a flush and returns its encoded outcome record (malloc'd), as the
 * processor produces it to events. */
static char *apply_rec(fl_doc_t *doc, fl_flush_t *fl, fl_arena_t *arena, size_t *len,
                       fl_outcome_t *out)
{
    char *buf = NULL, errstr[128];
    fl_arena_reset(arena);
    if (fl_doc_apply(doc, fl, arena, out) != 0)
        return NULL;
    if (fl_wire_encode_outcome_record(out, (fl_slice_t){"gw", 2}, 7, &buf, len, errstr,
                                      sizeof errstr) != 0)
        return NULL;
    return buf;
}

static void test_window_deltas(void)
{
    fl_doc_t *doc = fl_doc_new(id, NULL);
    fl_arena_t *arena = fl_arena_new(4096), *out_arena = fl_arena_new(4096);
    fl_window_t w;
    fl_wire_delta_t *items = NULL;
    uint32_t n = 0;
    char errstr[256];
    uint8_t chains[4][FL_HASH_LEN];

    fl_window_init(&w, 16, SIZE_MAX);
    fl_cmd_t c0[2] = {cmd_add("/a", 1), cmd_add("/b", 2)};
    fl_cmd_t c1[1] = {cmd_incr("/a", 5)};
    fl_cmd_t c2[3] = {cmd_incr("/a", 1), cmd_incr("/b", 1), cmd_incr("/a", 1)};
    fl_cmd_t *cs[3] = {c0, c1, c2};
    uint32_t ns[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++) {
        fl_flush_t fl = flush_of(cs[i], ns[i], 1, (uint64_t)i + 1);
        fl_outcome_t out;
        size_t len;
        char *rec = apply_rec(doc, &fl, arena, &len, &out);
        ASSERT_TRUE(rec != NULL);
        ASSERT_EQ(out.napplied, ns[i]);
        memcpy(chains[i], out.chain, FL_HASH_LEN);
        ASSERT_EQ(fl_window_push(&w, out.version_before, out.version_after, rec, len), 0);
    }
    ASSERT_EQ(fl_doc_version(doc), 6);

    /* from 0: all three, as deltas */
    ASSERT_EQ(fl_window_deltas(&w, 0, out_arena, &items, &n, errstr, sizeof errstr), 0);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(items[0].version, 2);
    ASSERT_EQ(items[0].ncmds, 2);
    ASSERT_EQ(items[0].seq, 1);
    ASSERT_EQ(items[0].ts_ms, 1001);
    ASSERT_MEM_EQ(items[0].user.ptr, items[0].user.len, "u", 1);
    ASSERT_MEM_EQ(items[0].cmds[1].path.ptr, items[0].cmds[1].path.len, "/b", 2);
    ASSERT_EQ(items[1].version, 3);
    ASSERT_EQ(items[1].cmds[0].op, FL_OP_INCR);
    ASSERT_EQ(items[2].version, 6);
    ASSERT_EQ(items[2].ncmds, 3);
    for (uint32_t i = 0; i < 3; i++)
        ASSERT_MEM_EQ(items[i].chain, FL_HASH_LEN, chains[i], FL_HASH_LEN);
    ASSERT_MEM_EQ(items[2].chain, FL_HASH_LEN, fl_doc_chain(doc), FL_HASH_LEN);

    /* from 2: the last two */
    fl_arena_reset(out_arena);
    ASSERT_EQ(fl_window_deltas(&w, 2, out_arena, &items, &n, errstr, sizeof errstr), 0);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(items[0].version, 3);

    /* inside an outcome, at the newest version, before the first: gone */
    ASSERT_EQ(fl_window_deltas(&w, 1, out_arena, &items, &n, errstr, sizeof errstr),
              FL_HISTORY_EGONE);
    ASSERT_EQ(fl_window_deltas(&w, 6, out_arena, &items, &n, errstr, sizeof errstr),
              FL_HISTORY_EGONE);
    ASSERT_EQ(fl_window_deltas(&w, 4, out_arena, &items, &n, errstr, sizeof errstr),
              FL_HISTORY_EGONE);

    /* a record that is not an outcome record: an error, not a crash */
    ASSERT_EQ(fl_window_push(&w, 6, 7, rec_of(9, '\xc1'), 9), 0);
    errstr[0] = '\0';
    ASSERT_EQ(fl_window_deltas(&w, 0, out_arena, &items, &n, errstr, sizeof errstr),
              FL_HISTORY_ERECORD);
    ASSERT_TRUE(errstr[0] != '\0');
    ASSERT_STR_EQ(fl_history_strerror(FL_HISTORY_EGONE),
                  "the window does not reach back to that version");

    fl_window_free(&w);
    fl_arena_free(arena);
    fl_arena_free(out_arena);
    fl_doc_free(doc);
}

static void test_outcome_to_delta(void)
{
    static fl_cmd_t applied[2];
    fl_outcome_t o;
    fl_wire_delta_t d;
    memset(&o, 0, sizeof o);
    memset(&d, 0xee, sizeof d);
    o.doc = id;
    for (int i = 0; i < FL_CLIENT_ID_LEN; i++)
        o.client_id[i] = (uint8_t)(i + 1);
    o.seq = 42;
    o.code = FL_CODE_OK;
    o.version_before = 10;
    o.version_after = 12;
    o.napplied = 2;
    o.applied = applied;
    o.nresults = 3;
    for (int i = 0; i < FL_HASH_LEN; i++)
        o.chain[i] = (uint8_t)(0xa0 + i);
    o.user = (fl_slice_t){"alice", 5};
    o.ts_ms = 1700000000123;

    fl_history_outcome_to_delta(&o, &d);
    ASSERT_EQ(d.version, 12);
    ASSERT_MEM_EQ(d.client_id, FL_CLIENT_ID_LEN, o.client_id, FL_CLIENT_ID_LEN);
    ASSERT_EQ(d.seq, 42);
    ASSERT_TRUE(d.user.ptr == o.user.ptr);
    ASSERT_EQ(d.user.len, 5);
    ASSERT_EQ(d.ts_ms, 1700000000123);
    ASSERT_EQ(d.ncmds, 2);
    ASSERT_TRUE(d.cmds == applied);
    ASSERT_MEM_EQ(d.chain, FL_HASH_LEN, o.chain, FL_HASH_LEN);
    /* version - ncmds is the version before (wire.h) */
    ASSERT_EQ(d.version - d.ncmds, o.version_before);

    /* which outcomes a snapshot must carry */
    ASSERT_TRUE(fl_history_outcome_recorded(&o));
    o.napplied = 0;
    o.code = FL_CODE_VERSION_MISMATCH; /* applied nothing, seq used up */
    ASSERT_TRUE(fl_history_outcome_recorded(&o));
    o.code = FL_CODE_GAP;
    ASSERT_TRUE(!fl_history_outcome_recorded(&o));
    o.code = FL_CODE_OK;
    o.duplicate = true;
    ASSERT_TRUE(!fl_history_outcome_recorded(&o));
    o.duplicate = false;
    o.seq = 0;
    ASSERT_TRUE(!fl_history_outcome_recorded(&o));
}

/* ---- snapshots -------------------------------------------------------------- */

/* Applies fl to both documents and checks they answer alike. */
static void same_answer(fl_doc_t *a, fl_doc_t *b, fl_flush_t *fl, fl_arena_t *arena,
                        uint16_t want_code, bool want_dup)
{
    fl_outcome_t oa, ob;
    fl_arena_reset(arena);
    ASSERT_EQ(fl_doc_apply(a, fl, arena, &oa), 0);
    ASSERT_EQ(fl_doc_apply(b, fl, arena, &ob), 0);
    ASSERT_EQ(oa.code, want_code);
    ASSERT_EQ(oa.duplicate, want_dup);
    ASSERT_EQ(ob.code, oa.code);
    ASSERT_EQ(ob.duplicate, oa.duplicate);
    ASSERT_EQ(ob.version_before, oa.version_before);
    ASSERT_EQ(ob.version_after, oa.version_after);
    ASSERT_EQ(ob.nresults, oa.nresults);
    ASSERT_MEM_EQ(ob.chain, FL_HASH_LEN, oa.chain, FL_HASH_LEN);
    ASSERT_EQ(fl_doc_version(b), fl_doc_version(a));
}

static void test_snapshot_round_trip(void)
{
    fl_engine_config_t cfg = fl_engine_config_default;
    cfg.max_dedup = 3; /* five clients: two evictions */
    fl_doc_t *doc = fl_doc_new(id, &cfg), *back = NULL;
    fl_arena_t *arena = fl_arena_new(4096), *dec = fl_arena_new(4096);
    fl_wire_msg_t msg, wm;
    char *buf = NULL, errstr[256];
    size_t len;
    fl_cmd_t c = cmd_incr("/n", 1), a = cmd_add("/n", 0);

    /* client 1 seq 1 creates /n; clients 1..5 then incr it */
    {
        fl_flush_t fl = flush_of(&a, 1, 1, 1);
        fl_outcome_t out;
        ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
        ASSERT_EQ(out.napplied, 1);
    }
    for (uint8_t cl = 1; cl <= 5; cl++) {
        fl_flush_t fl = flush_of(&c, 1, cl, cl == 1 ? 2 : 1);
        fl_outcome_t out;
        fl_arena_reset(arena);
        ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
        ASSERT_EQ(out.napplied, 1);
    }
    ASSERT_EQ(fl_doc_version(doc), 6);
    ASSERT_EQ(fl_doc_dedup_count(doc), 3);
    ASSERT_EQ(fl_doc_dedup_evictions(doc), 2); /* clients 4 and 5 evicted 1 and 2 */

    /* the record */
    fl_arena_reset(arena);
    ASSERT_EQ(fl_history_snapshot_record(doc, 4242, arena, &msg), 0);
    ASSERT_EQ(msg.type, FL_WT_REC_SNAPSHOT);
    ASSERT_MEM_EQ(msg.u.snapshot.doc.ptr, msg.u.snapshot.doc.len, id.ptr, id.len);
    ASSERT_EQ(msg.u.snapshot.version, 6);
    ASSERT_EQ(msg.u.snapshot.events_offset, 4242);
    ASSERT_EQ(msg.u.snapshot.ndedup, 3);
    ASSERT_EQ(msg.u.snapshot.dedup_evicted, fl_doc_dedup_evictions(doc));
    /* oldest first: clients 3, 4, 5 */
    for (uint32_t i = 0; i < 3; i++) {
        ASSERT_EQ(msg.u.snapshot.dedup[i].client_id[0], 3 + i);
        ASSERT_EQ(msg.u.snapshot.dedup[i].seq, 1);
        ASSERT_EQ(msg.u.snapshot.dedup[i].outcome.version_after, 4 + i);
    }

    /* encode -> decode -> new document */
    fl_arena_reset(arena);
    ASSERT_EQ(fl_history_encode_snapshot(doc, 4242, arena, &buf, &len, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_wire_decode_record(buf, len, dec, &wm, errstr, sizeof errstr), 0);
    ASSERT_EQ(wm.type, FL_WT_REC_SNAPSHOT);
    ASSERT_EQ(wm.u.snapshot.events_offset, 4242);
    ASSERT_EQ(fl_history_doc_from_snapshot(&wm.u.snapshot, &cfg, &back), 0);
    ASSERT_TRUE(back != NULL);

    uint8_t d1[FL_HASH_LEN], d2[FL_HASH_LEN];
    fl_doc_digest(doc, d1);
    fl_doc_digest(back, d2);
    ASSERT_MEM_EQ(d2, FL_HASH_LEN, d1, FL_HASH_LEN);
    ASSERT_MEM_EQ(wm.u.snapshot.digest, FL_HASH_LEN, d1, FL_HASH_LEN);
    ASSERT_MEM_EQ(fl_doc_chain(back), FL_HASH_LEN, fl_doc_chain(doc), FL_HASH_LEN);
    ASSERT_EQ(fl_doc_version(back), 6);
    ASSERT_MEM_EQ(fl_doc_id(back).ptr, fl_doc_id(back).len, id.ptr, id.len);
    ASSERT_EQ(fl_doc_dedup_count(back), 3);
    ASSERT_EQ(fl_doc_dedup_evictions(back), fl_doc_dedup_evictions(doc));
    {
        fl_dedup_entry_t ea[3], eb[3];
        ASSERT_EQ(fl_doc_dedup_export(doc, ea, 3), 3);
        ASSERT_EQ(fl_doc_dedup_export(back, eb, 3), 3);
        for (int i = 0; i < 3; i++) {
            ASSERT_MEM_EQ(eb[i].client_id, FL_CLIENT_ID_LEN, ea[i].client_id, FL_CLIENT_ID_LEN);
            ASSERT_EQ(eb[i].seq, ea[i].seq);
            ASSERT_MEM_EQ(eb[i].outcome.ptr, eb[i].outcome.len, ea[i].outcome.ptr,
                          ea[i].outcome.len);
        }
    }

    /* both answer alike: a repeat, a gap, an evicted client coming back,
     * and, recorded into the full table, the same eviction next */
    {
        fl_flush_t rep = flush_of(&c, 1, 5, 1);
        same_answer(doc, back, &rep, arena, FL_CODE_OK, true);
        fl_flush_t gap = flush_of(&c, 1, 4, 3);
        same_answer(doc, back, &gap, arena, FL_CODE_GAP, false);
        /* evictions happened: an unknown client's seq 7 is processed */
        fl_flush_t unknown = flush_of(&c, 1, 9, 7);
        same_answer(doc, back, &unknown, arena, FL_CODE_OK, false);
        /* which evicted client 3: unknown now, its seq 2 is processed */
        fl_flush_t again = flush_of(&c, 1, 3, 2);
        same_answer(doc, back, &again, arena, FL_CODE_OK, false);
        fl_flush_t rep4 = flush_of(&c, 1, 4, 1);
        same_answer(doc, back, &rep4, arena, FL_CODE_OK, false); /* 4 was evicted by 3 */
    }
    fl_doc_digest(doc, d1);
    fl_doc_digest(back, d2);
    ASSERT_MEM_EQ(d2, FL_HASH_LEN, d1, FL_HASH_LEN);
    ASSERT_EQ(fl_doc_dedup_evictions(back), fl_doc_dedup_evictions(doc));

    free(buf);
    fl_doc_free(back);
    fl_doc_free(doc);
    fl_arena_free(arena);
    fl_arena_free(dec);
}

/* Nothing evicted: an unknown client's seq 2 is a gap in both, which only
 * holds when the count (0) made it through the snapshot. */
static void test_snapshot_no_evictions(void)
{
    fl_doc_t *doc = fl_doc_new(id, NULL), *back = NULL;
    fl_arena_t *arena = fl_arena_new(4096), *dec = fl_arena_new(4096);
    fl_wire_msg_t wm;
    char *buf = NULL, errstr[256];
    size_t len;
    fl_cmd_t a = cmd_add("/x", 1);
    fl_flush_t fl = flush_of(&a, 1, 1, 1);
    fl_outcome_t out;

    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
    fl_arena_reset(arena);
    ASSERT_EQ(fl_history_encode_snapshot(doc, 1, arena, &buf, &len, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_wire_decode_record(buf, len, dec, &wm, errstr, sizeof errstr), 0);
    ASSERT_EQ(wm.u.snapshot.dedup_evicted, 0);
    ASSERT_EQ(fl_history_doc_from_snapshot(&wm.u.snapshot, NULL, &back), 0);
    fl_cmd_t c = cmd_incr("/x", 1);
    fl_flush_t unknown = flush_of(&c, 1, 2, 2);
    same_answer(doc, back, &unknown, arena, FL_CODE_GAP, false);
    fl_flush_t rep = flush_of(&a, 1, 1, 1);
    same_answer(doc, back, &rep, arena, FL_CODE_OK, true);
    fl_flush_t next = flush_of(&c, 1, 1, 2);
    same_answer(doc, back, &next, arena, FL_CODE_OK, false);
    ASSERT_EQ(fl_doc_version(back), 2);
    free(buf);
    fl_doc_free(back);
    fl_doc_free(doc);
    fl_arena_free(arena);
    fl_arena_free(dec);
}

/* A snapshot that does not restore: an error, and *out untouched. */
static void test_snapshot_refused(void)
{
    static char sentinel;
    fl_doc_t *doc = fl_doc_new(id, NULL), *keep = (fl_doc_t *)(void *)&sentinel, *out = keep;
    fl_arena_t *arena = fl_arena_new(4096);
    fl_wire_msg_t msg;
    fl_cmd_t a = cmd_add("/x", 1);
    fl_flush_t fl = flush_of(&a, 1, 1, 1);
    fl_outcome_t o;

    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &o), 0);
    fl_arena_reset(arena);
    ASSERT_EQ(fl_history_snapshot_record(doc, 0, arena, &msg), 0);
    ASSERT_EQ(msg.u.snapshot.ndedup, 1);

    /* a state over the caps of the document's config */
    fl_engine_config_t tiny = fl_engine_config_default;
    tiny.max_state_bytes = 2;
    ASSERT_EQ(fl_history_doc_from_snapshot(&msg.u.snapshot, &tiny, &out), FL_HISTORY_ESNAPSHOT);
    ASSERT_TRUE(out == keep);
    /* a state that is not a map */
    fl_wire_snapshot_t s = msg.u.snapshot;
    s.state = fl_value_int(3);
    ASSERT_EQ(fl_history_doc_from_snapshot(&s, NULL, &out), FL_HISTORY_ESNAPSHOT);
    ASSERT_TRUE(out == keep);
    /* a dedup entry with seq 0 (the engine never records one) */
    fl_wire_dedup_t bad = msg.u.snapshot.dedup[0];
    bad.seq = 0;
    s = msg.u.snapshot;
    s.dedup = &bad;
    ASSERT_EQ(fl_history_doc_from_snapshot(&s, NULL, &out), FL_HISTORY_ESNAPSHOT);
    ASSERT_TRUE(out == keep);
    /* and the original still restores */
    ASSERT_EQ(fl_history_doc_from_snapshot(&msg.u.snapshot, NULL, &out), 0);
    ASSERT_TRUE(out != keep);
    ASSERT_EQ(fl_doc_version(out), 1);
    fl_doc_free(out);
    fl_doc_free(doc);
    fl_arena_free(arena);
}

/* ---- event replay ----------------------------------------------------------- */

/* A canned history: 8 outcomes of one document (two clients, one rejected
 * flush, one duplicate, one gap), encoded as events records at offsets 0..7,
 * and a snapshot taken after offset 3 (events_offset 4). */
typedef struct history_s {
    char *recs[8];
    size_t lens[8];
    char *snap;
    size_t snaplen;
    fl_doc_t *doc; /* the original, at the end */
} history_t;

static int make_history(history_t *h, fl_arena_t *arena)
{
    fl_cmd_t add = cmd_add("/n", 1), inc = cmd_incr("/n", 2), bad = cmd_add("/missing/x", 1);
    struct {
        fl_cmd_t *c;
        uint8_t client;
        uint64_t seq;
    } steps[8] = {{&add, 1, 1}, {&inc, 2, 1}, {&bad, 1, 2}, {&inc, 1, 3},
                  {&inc, 2, 2}, {&inc, 2, 2}, {&inc, 1, 9}, {&inc, 1, 4}};
    char errstr[128];
    memset(h, 0, sizeof *h);
    if (!(h->doc = fl_doc_new(id, NULL)))
        return -1;
    for (int i = 0; i < 8; i++) {
        fl_flush_t fl = flush_of(steps[i].c, 1, steps[i].client, steps[i].seq);
        fl_outcome_t out;
        if (!(h->recs[i] = apply_rec(h->doc, &fl, arena, &h->lens[i], &out)))
            return -1;
        if (i == 3) {
            fl_arena_reset(arena);
            if (fl_history_encode_snapshot(h->doc, 4, arena, &h->snap, &h->snaplen, errstr,
                                           sizeof errstr) != 0)
                return -1;
        }
    }
    return 0;
}

static void free_history(history_t *h)
{
    for (int i = 0; i < 8; i++)
        free(h->recs[i]);
    free(h->snap);
    fl_doc_free(h->doc);
}

/* Restores as the processor and the CLI do: the snapshot, then every
 * event, each decided by fl_history_replay_check. */
static void test_replay_restore(void)
{
    fl_arena_t *arena = fl_arena_new(4096), *snap_arena = fl_arena_new(4096);
    history_t h;
    fl_wire_msg_t wm, sm;
    fl_doc_t *doc = NULL;
    char errstr[256];
    int reflected = 0, replayed = 0;

    ASSERT_EQ(make_history(&h, arena), 0);
    ASSERT_EQ(fl_doc_version(h.doc), 5); /* add, inc, inc, inc, inc: bad, dup, gap apply nothing */
    ASSERT_EQ(fl_wire_decode_record(h.snap, h.snaplen, snap_arena, &sm, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_history_doc_from_snapshot(&sm.u.snapshot, NULL, &doc), 0);
    ASSERT_EQ(fl_doc_version(doc), 3);
    for (int64_t off = 0; off < 8; off++) {
        fl_arena_reset(arena);
        ASSERT_EQ(fl_wire_decode_record(h.recs[off], h.lens[off], arena, &wm, errstr,
                                        sizeof errstr),
                  0);
        const fl_outcome_t *o = &wm.u.outcome.outcome;
        int rc = fl_history_replay_check(doc, sm.u.snapshot.events_offset, off, o);
        if (off < 4) {
            ASSERT_EQ(rc, FL_HISTORY_REFLECTED);
            reflected++;
            continue;
        }
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(fl_history_replay(doc, o, arena), 0);
        replayed++;
    }
    ASSERT_EQ(reflected, 4);
    ASSERT_EQ(replayed, 4);
    uint8_t d1[FL_HASH_LEN], d2[FL_HASH_LEN];
    fl_doc_digest(h.doc, d1);
    fl_doc_digest(doc, d2);
    ASSERT_MEM_EQ(d2, FL_HASH_LEN, d1, FL_HASH_LEN);
    ASSERT_MEM_EQ(fl_doc_chain(doc), FL_HASH_LEN, fl_doc_chain(h.doc), FL_HASH_LEN);
    ASSERT_EQ(fl_doc_version(doc), fl_doc_version(h.doc));
    /* the dedup table came along: client 1's seq 4 is a repeat, 6 a gap */
    {
        fl_cmd_t inc = cmd_incr("/n", 2);
        fl_flush_t rep = flush_of(&inc, 1, 1, 4);
        same_answer(h.doc, doc, &rep, arena, FL_CODE_OK, true);
        fl_flush_t gap = flush_of(&inc, 1, 1, 6);
        same_answer(h.doc, doc, &gap, arena, FL_CODE_GAP, false);
    }
    fl_doc_free(doc);

    /* From nothing (no snapshot: reflected_below 0) every event replays. */
    doc = fl_doc_new(id, NULL);
    for (int64_t off = 0; off < 8; off++) {
        fl_arena_reset(arena);
        ASSERT_EQ(fl_wire_decode_record(h.recs[off], h.lens[off], arena, &wm, errstr,
                                        sizeof errstr),
                  0);
        ASSERT_EQ(fl_history_replay_check(doc, 0, off, &wm.u.outcome.outcome), 0);
        ASSERT_EQ(fl_history_replay(doc, &wm.u.outcome.outcome, arena), 0);
    }
    ASSERT_MEM_EQ(fl_doc_chain(doc), FL_HASH_LEN, fl_doc_chain(h.doc), FL_HASH_LEN);
    fl_doc_free(doc);
    free_history(&h);
    fl_arena_free(arena);
    fl_arena_free(snap_arena);
}

static void test_replay_refusals(void)
{
    fl_arena_t *arena = fl_arena_new(4096);
    history_t h;
    fl_wire_msg_t wm;
    char errstr[256];
    fl_doc_t *doc = fl_doc_new(id, NULL);

    ASSERT_EQ(make_history(&h, arena), 0);
    /* the second outcome (v1..v2) on an empty document: it does not continue it */
    fl_arena_reset(arena);
    ASSERT_EQ(fl_wire_decode_record(h.recs[1], h.lens[1], arena, &wm, errstr, sizeof errstr), 0);
    fl_outcome_t o = wm.u.outcome.outcome;
    ASSERT_EQ(fl_history_replay_check(doc, 0, 1, &o), FL_HISTORY_EVERSION);
    /* reflected wins over everything else */
    ASSERT_EQ(fl_history_replay_check(doc, 2, 1, &o), FL_HISTORY_REFLECTED);
    /* a duplicate carries the versions of what it repeats: never EVERSION */
    o.duplicate = true;
    ASSERT_EQ(fl_history_replay_check(doc, 0, 1, &o), 0);
    ASSERT_EQ(fl_history_replay(doc, &o, arena), 0);
    ASSERT_EQ(fl_doc_version(doc), 0); /* duplicates change nothing */
    o.duplicate = false;
    /* replayed anyway: the commands do not apply at v0, the doc is unchanged */
    ASSERT_EQ(fl_history_replay(doc, &o, arena), FL_HISTORY_EDELTA);
    ASSERT_EQ(fl_doc_version(doc), 0);

    /* the first outcome with a wrong chain */
    fl_arena_reset(arena);
    ASSERT_EQ(fl_wire_decode_record(h.recs[0], h.lens[0], arena, &wm, errstr, sizeof errstr), 0);
    o = wm.u.outcome.outcome;
    ASSERT_EQ(fl_history_replay_check(doc, 0, 0, &o), 0);
    o.chain[0] ^= 1;
    ASSERT_EQ(fl_history_replay(doc, &o, arena), FL_HISTORY_ECHAIN);
    ASSERT_EQ(fl_doc_version(doc), 0);
    ASSERT_EQ(fl_doc_dedup_count(doc), 0);
    o.chain[0] ^= 1;
    ASSERT_EQ(fl_history_replay(doc, &o, arena), 0);
    ASSERT_EQ(fl_doc_version(doc), 1);
    ASSERT_EQ(fl_doc_dedup_count(doc), 1);
    ASSERT_STR_EQ(fl_history_strerror(FL_HISTORY_ECHAIN), "chain hash mismatch");

    fl_doc_free(doc);
    free_history(&h);
    fl_arena_free(arena);
}

int main(void)
{
    RUN(test_window_count_bound);
    RUN(test_window_byte_bound);
    RUN(test_window_find_exact);
    RUN(test_window_deltas);
    RUN(test_outcome_to_delta);
    RUN(test_snapshot_round_trip);
    RUN(test_snapshot_no_evictions);
    RUN(test_snapshot_refused);
    RUN(test_replay_restore);
    RUN(test_replay_refusals);
    return fl_test_done();
}
