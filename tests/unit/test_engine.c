/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the engine API around the vectors: constructor and restore
 * errors, the exact chain-hash bytes and create keys of ENGINE.md (computed
 * here independently), dedup export/restore and eviction order, an empty
 * create key kept through the dedup table, the seq
 * rule for unknown clients and the eviction count (apply, replay, restore),
 * delta replay failures rolling back, atomic rollback of long random
 * flushes restoring byte-identical state, and determinism of long random
 * histories.
 */
#include <sodium.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/engine.h"

static const fl_slice_t id = {"t/doc", 5};

static fl_cmd_t cmd(int op, const char *path, fl_value_t value, bool has_value)
{
    fl_cmd_t c;
    memset(&c, 0, sizeof(c));
    c.op = (uint8_t)op;
    c.path = (fl_slice_t){path, strlen(path)};
    c.from = c.key = (fl_slice_t){"", 0};
    c.value = value;
    c.has_value = has_value;
    return c;
}

static fl_flush_t flush_of(fl_cmd_t *cmds, uint32_t n, uint8_t client, uint64_t seq)
{
    fl_flush_t fl;
    memset(&fl, 0, sizeof(fl));
    fl.doc = id;
    memset(fl.client_id, client, FL_CLIENT_ID_LEN);
    fl.seq = seq;
    fl.cmds = cmds;
    fl.ncmds = n;
    return fl;
}

static void test_new_free(void)
{
    ASSERT_TRUE(fl_doc_new((fl_slice_t){"", 0}, NULL) == NULL);
    char big[300];
    memset(big, 'a', sizeof big);
    ASSERT_TRUE(fl_doc_new((fl_slice_t){big, 256}, NULL) == NULL);
    fl_doc_free(NULL);
    fl_doc_t *doc = fl_doc_new((fl_slice_t){big, 255}, NULL);
    ASSERT_TRUE(doc != NULL);
    ASSERT_EQ(fl_doc_version(doc), 0);
    ASSERT_EQ(fl_doc_state(doc)->type, FL_MAP);
    ASSERT_EQ(fl_doc_size(doc), 1);
    uint8_t zero[FL_HASH_LEN] = {0};
    ASSERT_MEM_EQ(fl_doc_chain(doc), FL_HASH_LEN, zero, FL_HASH_LEN);
    fl_doc_free(doc);
}

static void test_restore_errors(void)
{
    fl_engine_config_t cfg = fl_engine_config_default;
    cfg.max_state_bytes = 8;
    cfg.max_depth = 2;
    fl_doc_t *doc = fl_doc_new(id, &cfg);
    uint8_t chain[FL_HASH_LEN] = {9};
    fl_value_t v = fl_value_int(1), m, inner, inner2;
    ASSERT_EQ(fl_doc_restore(doc, &v, 1, chain), FL_EERR_RESTORE);
    ASSERT_EQ(fl_value_new_map(&m), 0);
    ASSERT_EQ(fl_value_new_map(&inner), 0);
    ASSERT_EQ(fl_value_new_map(&inner2), 0);
    ASSERT_EQ(fl_map_set(&inner, "y", 1, &inner2), 0);
    ASSERT_EQ(fl_map_set(&m, "x", 1, &inner), 0);
    ASSERT_EQ(fl_doc_restore(doc, &m, 1, chain), FL_EERR_RESTORE); /* depth 3 > 2 */
    fl_value_free(&m);
    ASSERT_EQ(fl_value_new_map(&m), 0);
    fl_value_t s;
    ASSERT_EQ(fl_value_new_str(&s, "0123456789", 10), 0);
    ASSERT_EQ(fl_map_set(&m, "x", 1, &s), 0);
    ASSERT_EQ(fl_doc_restore(doc, &m, 1, chain), FL_EERR_RESTORE); /* 14 bytes > 8 */
    fl_value_free(&m);
    ASSERT_EQ(fl_value_new_map(&m), 0);
    ASSERT_EQ(fl_doc_restore(doc, &m, 42, chain), 0);
    ASSERT_EQ(fl_doc_version(doc), 42);
    ASSERT_MEM_EQ(fl_doc_chain(doc), FL_HASH_LEN, chain, FL_HASH_LEN);
    fl_value_free(&m);
    ASSERT_STR_EQ(fl_engine_strerror(FL_EERR_CHAIN), "chain hash mismatch after delta");
    fl_doc_free(doc);
}

static void test_wrong_doc(void)
{
    fl_doc_t *doc = fl_doc_new(id, NULL);
    fl_arena_t *arena = fl_arena_new(1024);
    fl_flush_t fl = flush_of(NULL, 0, 1, 1);
    fl_outcome_t out;
    fl.doc = (fl_slice_t){"t/dog", 5};
    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), FL_EERR_ARG);
    fl.doc = id;
    fl.user = (fl_slice_t){"u1", 2};
    fl.ts_ms = 1234;
    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
    ASSERT_EQ(out.code, FL_CODE_OK);
    ASSERT_EQ(out.ts_ms, 1234);
    ASSERT_MEM_EQ(out.user.ptr, out.user.len, "u1", 2);
    ASSERT_MEM_EQ(out.doc.ptr, out.doc.len, "t/doc", 5);
    fl_arena_free(arena);
    fl_doc_free(doc);
}

/* ENGINE.md's chain bytes, built by hand: [0, 1, [{op: add, path: /x, value: 1}]]. */
static void test_chain_bytes(void)
{
    fl_doc_t *doc = fl_doc_new(id, NULL);
    fl_arena_t *arena = fl_arena_new(1024);
    fl_cmd_t c = cmd(FL_OP_ADD, "/x", fl_value_int(1), true);
    fl_flush_t fl = flush_of(&c, 1, 1, 1);
    fl_outcome_t out;
    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
    static const unsigned char m[] = {0x93, 0x00, 0x01, 0x91, 0x83, 0xa2, 'o', 'p', 0xa3, 'a',
                                      'd', 'd', 0xa4, 'p', 'a', 't', 'h', 0xa2, '/', 'x',
                                      0xa5, 'v', 'a', 'l', 'u', 'e', 0x01};
    unsigned char in[FL_HASH_LEN + sizeof m], want[FL_HASH_LEN];
    memset(in, 0, FL_HASH_LEN);
    memcpy(in + FL_HASH_LEN, m, sizeof m);
    crypto_generichash(want, FL_HASH_LEN, in, sizeof in, NULL, 0);
    ASSERT_MEM_EQ(fl_doc_chain(doc), FL_HASH_LEN, want, FL_HASH_LEN);
    ASSERT_MEM_EQ(out.chain, FL_HASH_LEN, want, FL_HASH_LEN);
    /* the same value computed by hashlib when writing ENGINE.md */
    static const uint8_t py[FL_HASH_LEN] = {
        0x58, 0x1a, 0xa4, 0x92, 0x3e, 0xf9, 0x3a, 0x96, 0x80, 0x01, 0x0e,
        0xe3, 0xf4, 0x38, 0xff, 0x04, 0xf6, 0xd5, 0x6c, 0x36, 0x72, 0xe1,
        0xd4, 0xe6, 0xd4, 0xd5, 0x1b, 0x70, 0x86, 0x03, 0xe2, 0x7f};
    ASSERT_MEM_EQ(want, FL_HASH_LEN, py, FL_HASH_LEN);
    fl_arena_free(arena);
    fl_doc_free(doc);
}

static void test_create_key(void)
{
    char k[16];
    fl_engine_create_key(id, 6, 0, k);
    ASSERT_MEM_EQ(k, 16, "lqyrowa2xsa72tu5", 16);
    fl_engine_create_key(id, 1, 0, k);
    ASSERT_MEM_EQ(k, 16, "b3etewnmw4jdk4ii", 16);
    fl_engine_create_key((fl_slice_t){"x", 1}, UINT64_MAX, UINT32_MAX, k);
    ASSERT_MEM_EQ(k, 16, "djjnjhq5f2dzmyjt", 16);
}

/* Applies one incr /n flush for client with seq; returns the outcome code. */
static int incr(fl_doc_t *doc, fl_arena_t *arena, uint8_t client, uint64_t seq, fl_outcome_t *out)
{
    fl_cmd_t c = cmd(FL_OP_INCR, "/n", fl_value_int(1), true);
    fl_flush_t fl = flush_of(&c, 1, client, seq);
    if (fl_doc_apply(doc, &fl, arena, out) != 0)
        return -1;
    return out->code;
}

static void test_dedup_export_restore(void)
{
    fl_engine_config_t cfg = fl_engine_config_default;
    cfg.max_dedup = 3;
    fl_doc_t *doc = fl_doc_new(id, &cfg), *copy = fl_doc_new(id, &cfg);
    fl_arena_t *arena = fl_arena_new(1024);
    fl_outcome_t out, o2;
    ASSERT_EQ(incr(doc, arena, 1, 1, &out), 0);
    ASSERT_EQ(incr(doc, arena, 2, 1, &out), 0);
    ASSERT_EQ(incr(doc, arena, 3, 1, &out), 0);
    ASSERT_EQ(incr(doc, arena, 1, 2, &out), 0); /* order now 2, 3, 1 */
    fl_dedup_entry_t ents[4];
    ASSERT_EQ(fl_doc_dedup_export(doc, ents, 4), 3);
    ASSERT_EQ(ents[0].client_id[0], 2);
    ASSERT_EQ(ents[1].client_id[0], 3);
    ASSERT_EQ(ents[2].client_id[0], 1);
    ASSERT_EQ(ents[2].seq, 2);
    /* blob <-> outcome conversions agree with the stored form */
    fl_outcome_t conv;
    char *blob;
    size_t blen;
    ASSERT_EQ(fl_engine_dedup_to_outcome(ents[2].outcome, arena, &conv), 0);
    ASSERT_EQ(conv.version_after, 4);
    ASSERT_EQ(conv.nresults, 1);
    ASSERT_EQ(conv.results[0].version, 4);
    ASSERT_EQ(fl_engine_dedup_from_outcome(&conv, &blob, &blen), 0);
    ASSERT_MEM_EQ(blob, blen, ents[2].outcome.ptr, ents[2].outcome.len);
    free(blob);
    ASSERT_EQ(fl_engine_dedup_to_outcome((fl_slice_t){"\x90", 1}, arena, &conv), FL_EERR_RESTORE);
    ASSERT_EQ(fl_doc_restore(copy, fl_doc_state(doc), fl_doc_version(doc), fl_doc_chain(doc)), 0);
    ASSERT_EQ(fl_doc_dedup_restore(copy, ents, 3), 0);
    /* both answer client 1 seq 2 identically */
    ASSERT_EQ(incr(doc, arena, 1, 2, &out), 0);
    ASSERT_EQ(incr(copy, arena, 1, 2, &o2), 0);
    ASSERT_TRUE(out.duplicate && o2.duplicate);
    ASSERT_EQ(out.version_after, 4);
    ASSERT_EQ(o2.version_after, 4);
    ASSERT_EQ(o2.results[0].version, 4);
    ASSERT_MEM_EQ(out.chain, FL_HASH_LEN, o2.chain, FL_HASH_LEN);
    /* a new client evicts client 2 (oldest) in both */
    ASSERT_EQ(incr(doc, arena, 4, 1, &out), 0);
    ASSERT_EQ(incr(copy, arena, 4, 1, &o2), 0);
    ASSERT_EQ(incr(doc, arena, 2, 1, &out), 0);
    ASSERT_EQ(incr(copy, arena, 2, 1, &o2), 0);
    ASSERT_TRUE(!out.duplicate && !o2.duplicate); /* evicted: applied again */
    ASSERT_EQ(incr(doc, arena, 1, 2, &out), 0); /* 2's return evicted 3, not 1 */
    ASSERT_TRUE(out.duplicate);
    ASSERT_EQ(incr(doc, arena, 3, 1, &out), 0);
    ASSERT_TRUE(!out.duplicate); /* 3 was evicted */
    /* malformed blob */
    fl_dedup_entry_t bad = ents[0];
    bad.outcome = (fl_slice_t){"\x93\x00\x00\x00", 4};
    ASSERT_EQ(fl_doc_dedup_restore(copy, &bad, 1), FL_EERR_RESTORE);
    fl_arena_free(arena);
    fl_doc_free(doc);
    fl_doc_free(copy);
}

/* An empty create key is a key: the result says so (has_key), and the dedup
 * blob keeps it through export, restore and the outcome conversions. */
static void test_empty_create_key(void)
{
    fl_doc_t *doc = fl_doc_new(id, NULL), *copy = fl_doc_new(id, NULL);
    fl_arena_t *arena = fl_arena_new(1024);
    fl_cmd_t c[2] = {cmd(FL_OP_CREATE, "", fl_value_int(1), true),
                     cmd(FL_OP_REMOVE, "/q", fl_value_nil(), false)};
    c[0].has_key = true;
    c[0].key = (fl_slice_t){NULL, 0}; /* a decoder may leave an empty slice without storage */
    fl_flush_t fl = flush_of(c, 2, 1, 1);
    fl_outcome_t out, o2;
    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
    ASSERT_EQ(out.results[0].code, FL_CODE_OK);
    ASSERT_TRUE(out.results[0].has_key);
    ASSERT_EQ(out.results[0].key.len, 0);
    ASSERT_TRUE(out.results[0].key.ptr != NULL);
    ASSERT_TRUE(!out.results[1].has_key);
    ASSERT_TRUE(fl_value_equal(fl_map_get(fl_doc_state(doc), "", 0), &c[0].value));
    fl_dedup_entry_t ent;
    ASSERT_EQ(fl_doc_dedup_export(doc, &ent, 1), 1);
    ASSERT_EQ(fl_doc_restore(copy, fl_doc_state(doc), fl_doc_version(doc), fl_doc_chain(doc)), 0);
    ASSERT_EQ(fl_doc_dedup_restore(copy, &ent, 1), 0);
    ASSERT_EQ(fl_doc_apply(copy, &fl, arena, &o2), 0);
    ASSERT_TRUE(o2.duplicate);
    ASSERT_TRUE(o2.results[0].has_key && o2.results[0].key.len == 0);
    ASSERT_TRUE(!o2.results[1].has_key);
    /* outcome -> blob -> outcome keeps it; a decoder that predates has_key
     * still gets its non-empty keys stored */
    char *blob;
    size_t blen;
    ASSERT_EQ(fl_engine_dedup_from_outcome(&o2, &blob, &blen), 0);
    ASSERT_MEM_EQ(blob, blen, ent.outcome.ptr, ent.outcome.len);
    free(blob);
    o2.results[0].has_key = false;
    o2.results[0].key = (fl_slice_t){"k", 1};
    ASSERT_EQ(fl_engine_dedup_from_outcome(&o2, &blob, &blen), 0);
    fl_outcome_t conv;
    ASSERT_EQ(fl_engine_dedup_to_outcome((fl_slice_t){blob, blen}, arena, &conv), 0);
    ASSERT_TRUE(conv.results[0].has_key);
    ASSERT_MEM_EQ(conv.results[0].key.ptr, conv.results[0].key.len, "k", 1);
    ASSERT_TRUE(!conv.results[1].has_key);
    free(blob);
    fl_arena_free(arena);
    fl_doc_free(doc);
    fl_doc_free(copy);
}

/* Applies client/seq to doc and replays the outcome into replica; both
 * must count the same evictions and hold the same table. */
static int incr_replay(fl_doc_t *doc, fl_doc_t *replica, fl_arena_t *arena, uint8_t client,
                       uint64_t seq, fl_outcome_t *out)
{
    fl_dedup_entry_t a[4], b[4];
    uint32_t na, nb;
    int code = incr(doc, arena, client, seq, out);
    if (code < 0 || fl_doc_replay(replica, out, arena) != 0)
        return -1;
    na = fl_doc_dedup_export(doc, a, 4);
    nb = fl_doc_dedup_export(replica, b, 4);
    if (fl_doc_dedup_evictions(doc) != fl_doc_dedup_evictions(replica) || na != nb)
        return -1;
    for (uint32_t i = 0; i < na; i++)
        if (memcmp(a[i].client_id, b[i].client_id, FL_CLIENT_ID_LEN) != 0 ||
            a[i].seq != b[i].seq || a[i].outcome.len != b[i].outcome.len ||
            memcmp(a[i].outcome.ptr, b[i].outcome.ptr, a[i].outcome.len) != 0)
            return -1;
    return code;
}

/* Unknown clients start at seq 1 until the table has evicted (ENGINE.md,
 * Dedup); the eviction count survives export/restore through
 * fl_doc_dedup_set_evictions and fl_doc_replay counts as fl_doc_apply. */
static void test_dedup_unknown_client(void)
{
    fl_engine_config_t cfg = fl_engine_config_default;
    cfg.max_dedup = 2;
    fl_doc_t *doc = fl_doc_new(id, &cfg), *copy = fl_doc_new(id, &cfg),
             *replayed = fl_doc_new(id, &cfg);
    fl_arena_t *arena = fl_arena_new(1024);
    fl_outcome_t out, o2;
    fl_dedup_entry_t ents[4];
    ASSERT_TRUE(doc && copy && replayed && arena);

    /* the lost-flush scenario: seq 2 arrives, seq 1 did not */
    ASSERT_EQ(incr_replay(doc, replayed, arena, 1, 2, &out), FL_CODE_GAP);
    ASSERT_TRUE(!out.duplicate && out.nresults == 0 && out.napplied == 0);
    ASSERT_EQ(out.version_before, 0);
    ASSERT_EQ(out.version_after, 0);
    ASSERT_EQ(fl_doc_version(doc), 0);
    ASSERT_EQ(fl_doc_dedup_count(doc), 0); /* not recorded */
    ASSERT_EQ(incr_replay(doc, replayed, arena, 1, 1, &out), FL_CODE_OK);
    ASSERT_TRUE(!out.duplicate && out.napplied == 1);
    ASSERT_EQ(incr_replay(doc, replayed, arena, 1, 2, &out), FL_CODE_OK);
    ASSERT_TRUE(!out.duplicate && out.napplied == 1);
    ASSERT_EQ(fl_doc_version(doc), 2);
    ASSERT_EQ(incr_replay(doc, replayed, arena, 2, 3, &out), FL_CODE_GAP);
    ASSERT_EQ(incr_replay(doc, replayed, arena, 2, 1, &out), FL_CODE_OK);
    ASSERT_EQ(fl_doc_dedup_evictions(doc), 0);
    /* the table is full: client 3 evicts client 1 */
    ASSERT_EQ(incr_replay(doc, replayed, arena, 3, 1, &out), FL_CODE_OK);
    ASSERT_EQ(fl_doc_dedup_evictions(doc), 1);
    ASSERT_EQ(fl_doc_dedup_evictions(replayed), 1);
    /* now an unknown client may be an evicted one: any seq is accepted */
    ASSERT_EQ(incr_replay(doc, replayed, arena, 1, 3, &out), FL_CODE_OK);
    ASSERT_TRUE(!out.duplicate && out.napplied == 1);
    ASSERT_EQ(incr_replay(doc, replayed, arena, 4, 7, &out), FL_CODE_OK);
    ASSERT_EQ(fl_doc_dedup_evictions(doc), 3);
    ASSERT_EQ(fl_doc_version(replayed), fl_doc_version(doc));

    /* export/restore: loading never counts; the snapshot's count is set */
    uint32_t nd = fl_doc_dedup_export(doc, ents, 4);
    ASSERT_EQ(nd, 2);
    ASSERT_EQ(fl_doc_restore(copy, fl_doc_state(doc), fl_doc_version(doc), fl_doc_chain(doc)), 0);
    fl_doc_dedup_set_evictions(copy, 99);
    ASSERT_EQ(fl_doc_dedup_restore(copy, ents, nd), 0);
    ASSERT_EQ(fl_doc_dedup_evictions(copy), 0);
    ASSERT_EQ(incr(copy, arena, 5, 2, &o2), FL_CODE_GAP); /* as if never evicted */
    fl_doc_dedup_set_evictions(copy, fl_doc_dedup_evictions(doc));
    ASSERT_EQ(fl_doc_dedup_evictions(copy), 3);
    ASSERT_EQ(incr(doc, arena, 5, 2, &out), FL_CODE_OK);
    ASSERT_EQ(incr(copy, arena, 5, 2, &o2), FL_CODE_OK);
    ASSERT_EQ(out.version_after, o2.version_after);
    ASSERT_MEM_EQ(out.chain, FL_HASH_LEN, o2.chain, FL_HASH_LEN);
    ASSERT_EQ(fl_doc_dedup_evictions(copy), 4);

    /* loading more entries than max_dedup drops the oldest, uncounted */
    fl_engine_config_t one = cfg;
    one.max_dedup = 1;
    fl_doc_t *small = fl_doc_new(id, &one);
    ASSERT_TRUE(small != NULL);
    ASSERT_EQ(fl_doc_dedup_restore(small, ents, nd), 0);
    ASSERT_EQ(fl_doc_dedup_count(small), 1);
    ASSERT_EQ(fl_doc_dedup_evictions(small), 0);
    fl_doc_free(small);

    fl_doc_free(doc);
    fl_doc_free(copy);
    fl_doc_free(replayed);
    fl_arena_free(arena);
}

static void test_delta_failures(void)
{
    fl_doc_t *doc = fl_doc_new(id, NULL), *live = fl_doc_new(id, NULL);
    fl_arena_t *arena = fl_arena_new(1024);
    fl_outcome_t out;
    fl_cmd_t cs[3] = {cmd(FL_OP_ADD, "/x", fl_value_int(1), true),
                      cmd(FL_OP_CREATE, "", fl_value_int(2), true),
                      cmd(FL_OP_INCR, "/x", fl_value_int(5), true)};
    fl_flush_t fl = flush_of(cs, 3, 1, 1);
    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
    ASSERT_EQ(out.napplied, 3);
    ASSERT_TRUE(out.applied[1].has_key && out.applied[1].key.len == 16);
    /* wrong base version */
    ASSERT_EQ(fl_doc_apply_applied(live, 1, out.applied, 3, out.chain, arena), FL_EERR_DELTA);
    /* wrong chain: rolled back */
    uint8_t bad[FL_HASH_LEN] = {0};
    ASSERT_EQ(fl_doc_apply_applied(live, 0, out.applied, 3, bad, arena), FL_EERR_CHAIN);
    ASSERT_EQ(fl_doc_version(live), 0);
    ASSERT_EQ(fl_doc_state(live)->len, 0);
    ASSERT_EQ(fl_doc_size(live), 1);
    /* create without its key */
    fl_cmd_t nokey[3] = {out.applied[0], out.applied[1], out.applied[2]};
    nokey[1].has_key = false;
    ASSERT_EQ(fl_doc_apply_applied(live, 0, nokey, 3, NULL, arena), FL_EERR_DELTA);
    ASSERT_EQ(fl_doc_state(live)->len, 0);
    /* a command that does not apply: rolled back */
    fl_cmd_t broken[2] = {out.applied[0], cmd(FL_OP_REMOVE, "/nope", fl_value_nil(), false)};
    ASSERT_EQ(fl_doc_apply_applied(live, 0, broken, 2, NULL, arena), FL_EERR_DELTA);
    ASSERT_EQ(fl_doc_state(live)->len, 0);
    ASSERT_EQ(fl_doc_version(live), 0);
    /* the real thing */
    ASSERT_EQ(fl_doc_apply_applied(live, 0, out.applied, 3, out.chain, arena), 0);
    ASSERT_EQ(fl_doc_version(live), 3);
    ASSERT_TRUE(fl_value_equal(fl_doc_state(live), fl_doc_state(doc)));
    /* a create whose key is taken no longer applies */
    ASSERT_EQ(fl_doc_apply_applied(live, 3, &out.applied[1], 1, NULL, arena), FL_EERR_DELTA);
    ASSERT_EQ(fl_doc_version(live), 3);
    fl_arena_free(arena);
    fl_doc_free(doc);
    fl_doc_free(live);
}

/* ---- random histories ---- */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const paths[] = {"/a", "/b", "/a/x", "/a/y", "/l", "/l/0", "/l/1", "/l/-",
                                    "/a/l", "/a/l/-", "/a/l/0", "/c", "", "/m", "/m/k"};

static fl_cmd_t random_cmd(void)
{
    fl_cmd_t c = cmd(1 + (int)rnd(9), paths[rnd(15)], fl_value_int((int64_t)rnd(100)), true);
    c.from = (fl_slice_t){paths[rnd(15)], 0};
    c.from.len = strlen(c.from.ptr);
    switch (rnd(6)) {
    case 0:
        fl_value_new_map(&c.value);
        break;
    case 1:
        fl_value_new_array(&c.value);
        break;
    case 2:
        c.value.type = FL_FLOAT;
        c.value.u.f = 0.5;
        break;
    default:
        break;
    }
    return c;
}

static void free_cmds(fl_cmd_t *cs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        fl_value_free(&cs[i].value);
}

static void test_atomic_rollback_random(void)
{
    fl_doc_t *doc = fl_doc_new(id, NULL);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    uint64_t seq = 0;
    for (int round = 0; round < 300; round++) {
        fl_cmd_t cs[41];
        uint32_t n = 1 + rnd(40);
        for (uint32_t i = 0; i < n; i++)
            cs[i] = random_cmd();
        bool atomic = rnd(2);
        if (atomic) /* a failing test at the end */
            cs[n++] = cmd(FL_OP_TEST, "", fl_value_int(0), true);
        char *before, *after;
        size_t blen, alen;
        ASSERT_EQ(fl_value_encode(fl_doc_state(doc), &before, &blen), 0);
        uint64_t v0 = fl_doc_version(doc);
        fl_flush_t fl = flush_of(cs, n, 7, ++seq);
        fl.atomic = atomic;
        fl_outcome_t out;
        fl_arena_reset(arena);
        ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
        ASSERT_EQ(fl_doc_size(doc), fl_value_encoded_size(fl_doc_state(doc)));
        ASSERT_EQ(fl_value_encode(fl_doc_state(doc), &after, &alen), 0);
        if (atomic) {
            ASSERT_EQ(out.code, FL_CODE_ABORTED);
            ASSERT_EQ(fl_doc_version(doc), v0);
            ASSERT_MEM_EQ(after, alen, before, blen);
        }
        free(before);
        free(after);
        free_cmds(cs, n);
    }
    fl_arena_free(arena);
    fl_doc_free(doc);
}

/* The same random history on two documents: identical bytes and chains;
 * and a third fed by deltas only. */
static void test_determinism_random(void)
{
    fl_doc_t *a = fl_doc_new(id, NULL), *b = fl_doc_new(id, NULL), *live = fl_doc_new(id, NULL);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    for (uint64_t seq = 1; seq <= 500; seq++) {
        fl_cmd_t cs[20];
        uint32_t n = 1 + rnd(20);
        for (uint32_t i = 0; i < n; i++)
            cs[i] = random_cmd();
        fl_flush_t fl = flush_of(cs, n, (uint8_t)(seq % 5), seq / 5 + 1);
        fl.atomic = rnd(4) == 0;
        fl_outcome_t oa, ob;
        fl_arena_reset(arena);
        ASSERT_EQ(fl_doc_apply(a, &fl, arena, &oa), 0);
        ASSERT_EQ(fl_doc_apply(b, &fl, arena, &ob), 0);
        ASSERT_EQ(oa.version_after, ob.version_after);
        ASSERT_EQ(oa.nresults, ob.nresults);
        for (uint32_t i = 0; i < oa.nresults; i++)
            ASSERT_EQ(oa.results[i].code, ob.results[i].code);
        if (oa.napplied)
            ASSERT_EQ(fl_doc_apply_applied(live, oa.version_before, oa.applied, oa.napplied,
                                           oa.chain, arena), 0);
        free_cmds(cs, n);
    }
    char *x, *y, *z;
    size_t xl, yl, zl;
    ASSERT_EQ(fl_value_encode(fl_doc_state(a), &x, &xl), 0);
    ASSERT_EQ(fl_value_encode(fl_doc_state(b), &y, &yl), 0);
    ASSERT_EQ(fl_value_encode(fl_doc_state(live), &z, &zl), 0);
    ASSERT_MEM_EQ(x, xl, y, yl);
    ASSERT_MEM_EQ(x, xl, z, zl);
    free(x);
    free(y);
    free(z);
    ASSERT_GT(fl_doc_version(a), 100);
    ASSERT_MEM_EQ(fl_doc_chain(a), FL_HASH_LEN, fl_doc_chain(b), FL_HASH_LEN);
    ASSERT_MEM_EQ(fl_doc_chain(a), FL_HASH_LEN, fl_doc_chain(live), FL_HASH_LEN);
    fl_arena_free(arena);
    fl_doc_free(a);
    fl_doc_free(b);
    fl_doc_free(live);
}

int main(void)
{
    RUN(test_new_free);
    RUN(test_restore_errors);
    RUN(test_wrong_doc);
    RUN(test_chain_bytes);
    RUN(test_create_key);
    RUN(test_dedup_export_restore);
    RUN(test_empty_create_key);
    RUN(test_dedup_unknown_client);
    RUN(test_delta_failures);
    RUN(test_atomic_rollback_random);
    RUN(test_determinism_random);
    return fl_test_done();
}
