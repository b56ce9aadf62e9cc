/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the apply engine. The input is a sequence of msgpack
 * values (split with fl_value_decode): the first, when it is a map, is the
 * start state; each following array is a flush
 *   [flags?, cmd, cmd, ...]   cmd = [op, path, value?, from_or_key?]
 * flags (an int first item): bit 0 atomic, bit 1 if_version (bit 2: wrong
 * by one), bits 3-4 client, bits 5-6 seq (0 next, 1 repeat, 2 gap, 3 stale).
 * After every flush it checks that versions account for the results, that
 * exactly the applied creates carry a key (an empty one too) and a repeated
 * seq answers with the same keys, that
 * the tracked size is the canonical size, that the state survives a
 * canonical round trip, and that a replica fed only the applied commands
 * (fl_doc_apply_applied, with the expected chain) stays identical. At the
 * end the dedup table is exported and restored into a fresh document that
 * must answer a repeated seq exactly like the original. A third document
 * follows by fl_doc_replay of every outcome and must end with the same
 * dedup table and eviction count; an unknown client's seq 2 is a gap
 * exactly while nothing was evicted.
 */
#include <stdlib.h>
#include <string.h>

#include "flushline/engine.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static const fl_slice_t doc_id = {"t/fuzz", 6};

#define MAX_KEPT 32 /* results of each client's last outcome kept for its repeat */

static fl_slice_t str_slice(const fl_value_t *v)
{
    if (v->type != FL_STR || v->len == 0)
        return (fl_slice_t){"", 0};
    return (fl_slice_t){v->u.str, v->len};
}

static void roundtrip(const fl_value_t *state)
{
    char *a = NULL, *b = NULL;
    size_t alen, blen;
    fl_value_t back;
    fl_arena_t *arena = fl_arena_new(1024);
    CHECK(arena);
    CHECK(fl_value_encode(state, &a, &alen) == 0);
    CHECK(fl_value_decode(a, alen, NULL, arena, &back) == (long)alen);
    CHECK(fl_value_encode(&back, &b, &blen) == 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);
    fl_arena_free(arena);
}

/* Builds an fl_flush_t from a fuzz array; cmds in arena. */
static int make_flush(const fl_value_t *v, fl_arena_t *arena, uint64_t *seqs, uint64_t version,
                      fl_flush_t *fl)
{
    uint32_t first = 0;
    int64_t flags = 0;
    memset(fl, 0, sizeof(*fl));
    if (v->len && v->u.items[0].type == FL_INT) {
        flags = v->u.items[0].u.i;
        first = 1;
    }
    int client = (int)((flags >> 3) & 3);
    fl->doc = doc_id;
    memset(fl->client_id, 0xc0 + client, FL_CLIENT_ID_LEN);
    switch ((flags >> 5) & 3) {
    case 0:
        fl->seq = ++seqs[client];
        break;
    case 1:
        fl->seq = seqs[client] ? seqs[client] : ++seqs[client];
        break;
    case 2:
        fl->seq = seqs[client] + 2;
        break;
    default:
        fl->seq = seqs[client] > 1 ? seqs[client] - 1 : 1;
        break;
    }
    fl->atomic = flags & 1;
    if (flags & 2) {
        fl->has_if_version = true;
        fl->if_version = version + ((flags & 4) ? 1 : 0);
    }
    fl->ncmds = v->len - first;
    fl->cmds = fl_arena_alloc(arena, (fl->ncmds + 1) * sizeof(fl_cmd_t));
    if (!fl->cmds)
        return -1;
    for (uint32_t i = 0; i < fl->ncmds; i++) {
        const fl_value_t *c = &v->u.items[first + i];
        fl_cmd_t *cmd = &fl->cmds[i];
        memset(cmd, 0, sizeof(*cmd));
        cmd->path = cmd->from = cmd->key = (fl_slice_t){"", 0};
        if (c->type != FL_ARRAY || c->len == 0)
            continue; /* op 0: invalid */
        const fl_value_t *it = c->u.items;
        cmd->op = it[0].type == FL_INT ? (uint8_t)(it[0].u.i & 0x0f) : 0;
        if (c->len > 1)
            cmd->path = str_slice(&it[1]);
        if (c->len > 2) {
            cmd->has_value = true;
            cmd->value = it[2];
        }
        if (c->len > 3) {
            cmd->from = str_slice(&it[3]);
            cmd->key = cmd->from;
            cmd->has_key = it[3].type == FL_STR;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_engine_config_t cfg = fl_engine_config_default;
    cfg.max_state_bytes = 64 * 1024;
    cfg.max_depth = 16;
    cfg.max_dedup = 3;
    fl_arena_t *arena = fl_arena_new(4096);
    fl_doc_t *doc = fl_doc_new(doc_id, &cfg), *replica = fl_doc_new(doc_id, &cfg), *restored = NULL;
    fl_doc_t *replayed = fl_doc_new(doc_id, &cfg);
    fl_dedup_entry_t ents[8], ents2[8];
    uint64_t seqs[4] = {0};
    struct {
        uint64_t seq;
        uint32_t nresults;
        bool has_key[MAX_KEPT];
        size_t keylen[MAX_KEPT];
    } last[4];
    memset(last, 0, sizeof last);
    const char *p = (const char *)data;
    size_t left = size;
    int nflush = 0;
    uint32_t nd;
    CHECK(arena && doc && replica && replayed);

    fl_value_t v;
    long n = fl_value_decode(p, left, NULL, arena, &v);
    if (n > 0 && v.type == FL_MAP) {
        uint8_t chain[FL_HASH_LEN] = {1};
        int rc = fl_doc_restore(doc, &v, 7, chain);
        CHECK(rc == 0 || rc == FL_EERR_RESTORE);
        if (rc == 0) {
            CHECK(fl_doc_restore(replica, &v, 7, chain) == 0);
            CHECK(fl_doc_restore(replayed, &v, 7, chain) == 0);
        }
        p += n;
        left -= (size_t)n;
    }
    while (left && nflush < 64) {
        fl_arena_t *step = fl_arena_new(4096);
        CHECK(step);
        n = fl_value_decode(p, left, NULL, step, &v);
        if (n <= 0) {
            fl_arena_free(step);
            break;
        }
        p += n;
        left -= (size_t)n;
        if (v.type != FL_ARRAY) {
            fl_arena_free(step);
            continue;
        }
        fl_flush_t fl;
        fl_outcome_t out;
        CHECK(make_flush(&v, step, seqs, fl_doc_version(doc), &fl) == 0);
        uint64_t before = fl_doc_version(doc);
        bool known = false;
        nd = fl_doc_dedup_export(doc, ents, 8);
        for (uint32_t i = 0; i < nd; i++)
            known |= memcmp(ents[i].client_id, fl.client_id, FL_CLIENT_ID_LEN) == 0;
        bool unknown_gap = !known && fl.seq > 1 && fl_doc_dedup_evictions(doc) == 0;
        CHECK(fl_doc_apply(doc, &fl, step, &out) == 0);
        nflush++;
        /* a repeated seq answers with the keys of the first answer */
        int client = fl.client_id[0] - 0xc0;
        if (out.duplicate && out.nresults && fl.seq == last[client].seq) {
            CHECK(out.nresults == last[client].nresults);
            for (uint32_t i = 0; i < out.nresults && i < MAX_KEPT; i++)
                CHECK(out.results[i].has_key == last[client].has_key[i] &&
                      out.results[i].key.len == last[client].keylen[i]);
        } else if (!out.duplicate && out.code != FL_CODE_GAP && fl.seq) {
            last[client].seq = fl.seq;
            last[client].nresults = out.nresults;
            for (uint32_t i = 0; i < out.nresults && i < MAX_KEPT; i++) {
                last[client].has_key[i] = out.results[i].has_key;
                last[client].keylen[i] = out.results[i].key.len;
            }
        }
        if (unknown_gap)
            CHECK(out.code == FL_CODE_GAP && !out.duplicate && out.nresults == 0);
        else if (!known && fl.seq > 0)
            CHECK(out.code != FL_CODE_GAP && !out.duplicate);
        CHECK(fl_doc_replay(replayed, &out, step) == 0);
        CHECK(fl_doc_dedup_evictions(replayed) == fl_doc_dedup_evictions(doc));
        uint32_t ok = 0;
        for (uint32_t i = 0; i < out.nresults; i++) {
            ok += out.results[i].code == FL_CODE_OK;
            CHECK(out.results[i].code < FL_CODE__COUNT);
            /* exactly an applied create has a key, an empty one included */
            if (!out.duplicate)
                CHECK(out.results[i].has_key == (out.results[i].code == FL_CODE_OK &&
                                                 fl.cmds[i].op == FL_OP_CREATE));
        }
        if (!out.duplicate) {
            CHECK(out.version_before == before);
            CHECK(out.version_after - out.version_before == ok);
            CHECK(out.napplied == (out.code == FL_CODE_ABORTED ? 0 : ok));
            if (out.code == FL_CODE_ABORTED)
                CHECK(ok == 0);
        }
        CHECK(fl_doc_version(doc) == (out.duplicate ? before : out.version_after));
        CHECK(fl_doc_size(doc) == fl_value_encoded_size(fl_doc_state(doc)));
        CHECK(fl_doc_size(doc) <= cfg.max_state_bytes);
        CHECK(fl_doc_state(doc)->type == FL_MAP);
        roundtrip(fl_doc_state(doc));
        if (out.napplied)
            CHECK(fl_doc_apply_applied(replica, out.version_before, out.applied, out.napplied,
                                       out.chain, step) == 0);
        CHECK(fl_doc_version(replica) == fl_doc_version(doc));
        CHECK(memcmp(fl_doc_chain(replica), fl_doc_chain(doc), FL_HASH_LEN) == 0);
        fl_arena_free(step);
    }
    CHECK(fl_value_equal(fl_doc_state(replica), fl_doc_state(doc)));
    CHECK(fl_value_equal(fl_doc_state(replayed), fl_doc_state(doc)));

    /* the dedup table survives export/restore: a repeated seq answers alike */
    nd = fl_doc_dedup_export(doc, ents, 8);
    CHECK(nd == fl_doc_dedup_count(doc) && nd <= cfg.max_dedup);
    CHECK(fl_doc_dedup_export(replayed, ents2, 8) == nd);
    for (uint32_t i = 0; i < nd; i++)
        CHECK(memcmp(ents[i].client_id, ents2[i].client_id, FL_CLIENT_ID_LEN) == 0 &&
              ents[i].seq == ents2[i].seq && ents[i].outcome.len == ents2[i].outcome.len &&
              memcmp(ents[i].outcome.ptr, ents2[i].outcome.ptr, ents[i].outcome.len) == 0);
    restored = fl_doc_new(doc_id, &cfg);
    CHECK(restored);
    CHECK(fl_doc_restore(restored, fl_doc_state(doc), fl_doc_version(doc), fl_doc_chain(doc)) == 0);
    CHECK(fl_doc_dedup_restore(restored, ents, nd) == 0);
    CHECK(fl_doc_dedup_evictions(restored) == 0);
    fl_doc_dedup_set_evictions(restored, fl_doc_dedup_evictions(doc));
    for (uint32_t i = 0; i < nd; i++) {
        fl_flush_t fl = {0};
        fl_outcome_t a, b;
        fl.doc = doc_id;
        memcpy(fl.client_id, ents[i].client_id, FL_CLIENT_ID_LEN);
        fl.seq = ents[i].seq;
        fl_arena_reset(arena);
        CHECK(fl_doc_apply(doc, &fl, arena, &a) == 0);
        CHECK(fl_doc_apply(restored, &fl, arena, &b) == 0);
        CHECK(a.duplicate && b.duplicate && a.code == b.code && a.nresults == b.nresults);
        CHECK(a.version_before == b.version_before && a.version_after == b.version_after);
        CHECK(memcmp(a.chain, b.chain, FL_HASH_LEN) == 0);
        for (uint32_t k = 0; k < a.nresults; k++)
            CHECK(a.results[k].code == b.results[k].code &&
                  a.results[k].version == b.results[k].version &&
                  a.results[k].has_key == b.results[k].has_key &&
                  a.results[k].key.len == b.results[k].key.len &&
                  (!a.results[k].key.len ||
                   memcmp(a.results[k].key.ptr, b.results[k].key.ptr, a.results[k].key.len) == 0));
    }
    /* a client neither table knows, at seq 2: answered alike */
    {
        fl_flush_t fl = {0};
        fl_outcome_t a, b;
        fl.doc = doc_id;
        memset(fl.client_id, 0x5a, FL_CLIENT_ID_LEN);
        fl.seq = 2;
        fl_arena_reset(arena);
        CHECK(fl_doc_apply(doc, &fl, arena, &a) == 0);
        CHECK(fl_doc_apply(restored, &fl, arena, &b) == 0);
        CHECK(a.code == b.code && a.duplicate == b.duplicate);
        CHECK(a.code == (fl_doc_dedup_evictions(doc) ? FL_CODE_OK : FL_CODE_GAP));
        CHECK(fl_doc_dedup_evictions(doc) == fl_doc_dedup_evictions(restored));
    }
    fl_doc_free(restored);
    fl_doc_free(replayed);
    fl_doc_free(doc);
    fl_doc_free(replica);
    fl_arena_free(arena);
    return 0;
}
