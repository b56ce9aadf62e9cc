/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the in-memory side of a memory budget: the LRU order
 * (common/lru.h) against a plain array model through many random
 * operations (add, touch, resize, pin, unpin, remove, pop), pins that nest
 * and keep nodes from eviction, and a budget loop keyed by document id
 * (through fl_hmap, as a partition would) that never holds more than its
 * budget; and the engine's footprint estimate (fl_doc_mem) against what
 * the allocator really handed out for documents restored from snapshot
 * records.
 */
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "fl_gen.h"
#include "fl_test.h"
#include "flushline/engine.h"
#include "flushline/history.h"
#include "flushline/hmap.h"
#include "flushline/lru.h"
#include "flushline/wire.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/allocator_interface.h>
#endif

static size_t heap_bytes(void)
{
#ifdef HAVE_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

typedef struct ent_s {
    char id[24];
    size_t idlen;
    fl_lru_node_t lru;
    /* the model */
    bool in;
    uint64_t stamp; /* last use; the coldest unpinned has the smallest */
    uint32_t pins;
    size_t bytes;
} ent_t;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void test_basics(void)
{
    fl_lru_t lru;
    ent_t e[5];
    fl_lru_init(&lru);
    ASSERT_TRUE(fl_lru_coldest(&lru) == NULL);
    ASSERT_TRUE(fl_lru_pop(&lru) == NULL);
    for (int i = 0; i < 5; i++)
        fl_lru_add(&lru, &e[i].lru, 100 * (size_t)(i + 1));
    ASSERT_EQ(fl_lru_count(&lru), 5);
    ASSERT_EQ(fl_lru_bytes(&lru), 1500);
    ASSERT_TRUE(fl_lru_coldest(&lru) == &e[0].lru);
    fl_lru_touch(&lru, &e[0].lru); /* 1 2 3 4 0 */
    ASSERT_TRUE(fl_lru_coldest(&lru) == &e[1].lru);
    fl_lru_resize(&lru, &e[1].lru, 1000);
    ASSERT_EQ(fl_lru_bytes(&lru), 2300);
    fl_lru_pin(&lru, &e[1].lru);
    fl_lru_pin(&lru, &e[1].lru); /* nested */
    ASSERT_TRUE(fl_lru_pinned(&e[1].lru));
    ASSERT_EQ(fl_lru_pinned_count(&lru), 1);
    ASSERT_EQ(fl_lru_bytes(&lru), 2300); /* pinned still counts */
    ASSERT_TRUE(fl_lru_pop(&lru) == &e[2].lru); /* the pinned coldest is skipped */
    ASSERT_TRUE(!fl_lru_linked(&e[2].lru));
    ASSERT_EQ(fl_lru_bytes(&lru), 2000);
    fl_lru_unpin(&lru, &e[1].lru);
    ASSERT_TRUE(fl_lru_pinned(&e[1].lru));
    fl_lru_unpin(&lru, &e[1].lru); /* now the hottest: 3 4 0 1 */
    ASSERT_TRUE(!fl_lru_pinned(&e[1].lru));
    ASSERT_EQ(fl_lru_pinned_count(&lru), 0);
    ASSERT_TRUE(fl_lru_pop(&lru) == &e[3].lru);
    ASSERT_TRUE(fl_lru_pop(&lru) == &e[4].lru);
    ASSERT_TRUE(fl_lru_pop(&lru) == &e[0].lru);
    /* all pinned: nothing to evict */
    fl_lru_pin(&lru, &e[1].lru);
    ASSERT_TRUE(fl_lru_pop(&lru) == NULL);
    fl_lru_remove(&lru, &e[1].lru); /* removing a pinned node */
    ASSERT_EQ(fl_lru_count(&lru), 0);
    ASSERT_EQ(fl_lru_bytes(&lru), 0);
    ASSERT_EQ(fl_lru_pinned_count(&lru), 0);
    fl_lru_remove(&lru, &e[1].lru); /* twice: no-op */
    ASSERT_EQ(fl_lru_count(&lru), 0);
}

#define NENT 200

static ent_t *model_coldest(ent_t *e)
{
    ent_t *best = NULL;
    for (int i = 0; i < NENT; i++)
        if (e[i].in && !e[i].pins && (!best || e[i].stamp < best->stamp))
            best = &e[i];
    return best;
}

static void test_random_against_model(void)
{
    static ent_t e[NENT];
    fl_lru_t lru;
    uint64_t clock = 0;
    size_t bytes = 0, count = 0;
    memset(e, 0, sizeof e);
    fl_lru_init(&lru);
    for (int step = 0; step < 200000; step++) {
        ent_t *x = &e[rng() % NENT];
        switch (rng() % 8) {
        case 0: /* add when out */
        case 1:
            if (x->in)
                break;
            x->bytes = rng() % 5000;
            fl_lru_add(&lru, &x->lru, x->bytes);
            x->in = true;
            x->pins = 0;
            x->stamp = ++clock;
            bytes += x->bytes;
            count++;
            break;
        case 2: /* touch */
            if (!x->in)
                break;
            fl_lru_touch(&lru, &x->lru);
            if (!x->pins)
                x->stamp = ++clock;
            break;
        case 3: /* resize */
            if (!x->in)
                break;
            bytes -= x->bytes;
            x->bytes = rng() % 5000;
            bytes += x->bytes;
            fl_lru_resize(&lru, &x->lru, x->bytes);
            break;
        case 4: /* pin */
            if (!x->in || x->pins > 2)
                break;
            fl_lru_pin(&lru, &x->lru);
            x->pins++;
            break;
        case 5: /* unpin: the hottest once free */
            if (!x->in || !x->pins)
                break;
            fl_lru_unpin(&lru, &x->lru);
            if (--x->pins == 0)
                x->stamp = ++clock;
            break;
        case 6: /* remove */
            if (!x->in)
                break;
            fl_lru_remove(&lru, &x->lru);
            x->in = false;
            bytes -= x->bytes;
            count--;
            break;
        case 7: { /* pop the coldest */
            ent_t *want = model_coldest(e);
            fl_lru_node_t *got = fl_lru_pop(&lru);
            if (!want) {
                ASSERT_TRUE(got == NULL);
                break;
            }
            ASSERT_TRUE(got == &want->lru);
            ASSERT_TRUE(FL_LRU_ENTRY(got, ent_t, lru) == want);
            want->in = false;
            bytes -= want->bytes;
            count--;
            break;
        }
        }
        ASSERT_EQ(fl_lru_bytes(&lru), bytes);
        ASSERT_EQ(fl_lru_count(&lru), count);
        ent_t *c = model_coldest(e);
        ASSERT_TRUE(fl_lru_coldest(&lru) == (c ? &c->lru : NULL));
    }
}

/* A partition-like budget: documents by id in a hash map, the LRU for
 * their order; every use loads the document when absent (pinned while in
 * use), then evicts the coldest until the budget holds. */
static void test_budget_by_id(void)
{
    enum { NDOCS = 5000, BUDGET = 200000 };
    static ent_t docs[NDOCS];
    fl_hmap_t *map = fl_hmap_new();
    fl_lru_t lru;
    uint64_t loads = 0, evictions = 0, hits = 0;
    ASSERT_TRUE(map);
    fl_lru_init(&lru);
    memset(docs, 0, sizeof docs);
    for (int i = 0; i < NDOCS; i++)
        docs[i].idlen = (size_t)snprintf(docs[i].id, sizeof docs[i].id, "acme/%d", i);
    for (int step = 0; step < 100000; step++) {
        /* skewed: a few hot documents, a long cold tail */
        uint64_t r = rng();
        int i = (int)(r % 8 ? (r >> 8) % 64 : (r >> 8) % NDOCS);
        ent_t *d = fl_hmap_get(map, docs[i].id, docs[i].idlen);
        if (d) {
            hits++;
            fl_lru_touch(&lru, &d->lru);
        } else {
            d = &docs[i];
            ASSERT_EQ(fl_hmap_put(map, d->id, d->idlen, d), 0);
            fl_lru_add(&lru, &d->lru, 500 + (size_t)(r >> 40) % 1500);
            loads++;
        }
        fl_lru_pin(&lru, &d->lru); /* in use: the eviction below must not take it */
        fl_lru_node_t *node;
        while (fl_lru_bytes(&lru) > BUDGET && (node = fl_lru_pop(&lru))) {
            ent_t *v = FL_LRU_ENTRY(node, ent_t, lru);
            ASSERT_TRUE(v != d);
            ASSERT_TRUE(fl_hmap_del(map, v->id, v->idlen) == v);
            evictions++;
        }
        ASSERT_LE(fl_lru_bytes(&lru), BUDGET);
        ASSERT_TRUE(fl_lru_linked(&d->lru));
        fl_lru_unpin(&lru, &d->lru);
        ASSERT_EQ(fl_hmap_count(map), fl_lru_count(&lru));
    }
    printf("# budget: %llu hits, %llu loads, %llu evictions, %zu documents in memory\n",
           (unsigned long long)hits, (unsigned long long)loads, (unsigned long long)evictions,
           fl_lru_count(&lru));
    ASSERT_GT(evictions, 1000);
    ASSERT_GT(hits, loads); /* the hot set stays in */
    fl_hmap_free(map);
}

/* ---- fl_doc_mem ------------------------------------------------------------ */

/* A document after `flushes` generated flushes from `clients` clients,
 * restored from its snapshot record: returns what the restore allocated
 * (measured) and the estimate. */
static int restored_mem(uint32_t flushes, uint32_t clients, uint64_t seed, size_t *measured,
                        size_t *estimate, size_t *encoded)
{
    fl_doc_t *doc = fl_doc_new(FL_SLICE("acme/mem"), NULL), *back = NULL;
    fl_arena_t *arena = fl_arena_new(4096), *dec = fl_arena_new(4096);
    uint64_t seqs[64] = {0};
    fl_gen_t g;
    char *buf = NULL, errstr[256];
    size_t len;
    fl_wire_msg_t wm;
    int rc = -1;

    fl_gen_seed(&g, seed);
    for (uint32_t i = 0; i < flushes; i++) {
        uint8_t cid[FL_CLIENT_ID_LEN];
        uint32_t c = i % clients;
        fl_flush_t fl;
        fl_outcome_t out;
        fl_gen_client_id(cid, c);
        fl_arena_reset(arena);
        fl_gen_flush(&g, arena, "acme/mem", cid, ++seqs[c], 4, &fl);
        fl_flush_t *f = &fl;
        if (fl_doc_apply(doc, f, arena, &out) != 0)
            goto fail;
    }
    fl_arena_reset(arena);
    if (fl_history_encode_snapshot(doc, 0, arena, &buf, &len, errstr, sizeof errstr) != 0 ||
        fl_wire_decode_record(buf, len, dec, &wm, errstr, sizeof errstr) != 0)
        goto fail;
    size_t h0 = heap_bytes();
    if (fl_history_doc_from_snapshot(&wm.u.snapshot, NULL, &back) != 0)
        goto fail;
    *measured = heap_bytes() - h0;
    *estimate = fl_doc_mem(back);
    *encoded = len;
    rc = 0;
fail:
    fl_doc_free(back);
    fl_doc_free(doc);
    free(buf);
    fl_arena_free(arena);
    fl_arena_free(dec);
    return rc;
}

static void test_doc_mem(void)
{
    struct { uint32_t flushes, clients; } cases[] = {{0, 1}, {5, 1}, {50, 3}, {400, 20}, {2000, 60}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t measured = 0, estimate = 0, encoded = 0;
        ASSERT_EQ(restored_mem(cases[i].flushes, cases[i].clients, 7 + i, &measured, &estimate,
                               &encoded),
                  0);
        printf("# %u flushes, %u clients: snapshot %zu bytes, allocated %zu, estimate %zu "
               "(%.2fx)\n",
               cases[i].flushes, cases[i].clients, encoded, measured, estimate,
               (double)estimate / (double)measured);
        /* The estimate counts what was asked for plus glibc's chunk
         * overhead (at most 24 bytes and a 32-byte minimum per block), so
         * it is never below the bytes handed out and not far above. */
        ASSERT_GE(estimate, measured);
        ASSERT_LE(estimate, measured * 2);
    }
    /* it follows the state: a 100 KB string adds at least that */
    fl_doc_t *doc = fl_doc_new(FL_SLICE("acme/big"), NULL);
    fl_arena_t *arena = fl_arena_new(4096);
    char *big = malloc(100000);
    ASSERT_TRUE(doc && arena && big);
    memset(big, 'x', 100000);
    size_t before = fl_doc_mem(doc);
    fl_cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.op = FL_OP_ADD;
    cmd.has_value = true;
    cmd.path = FL_SLICE("/s");
    cmd.value.type = FL_STR;
    cmd.value.len = 100000;
    cmd.value.u.str = big;
    fl_flush_t fl;
    memset(&fl, 0, sizeof fl);
    fl.doc = FL_SLICE("acme/big");
    fl.seq = 1;
    fl.client_id[0] = 1;
    fl.cmds = &cmd;
    fl.ncmds = 1;
    fl_outcome_t out;
    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &out), 0);
    ASSERT_EQ(out.napplied, 1);
    /* the string, and the document's scratch buffer for the chain input,
     * which keeps the size of the largest flush it hashed (128 KiB here) */
    ASSERT_GE(fl_doc_mem(doc), before + 100000 + 100000);
    ASSERT_LE(fl_doc_mem(doc), before + 100000 + 131072 + 8192);
    free(big);
    fl_arena_free(arena);
    fl_doc_free(doc);
}

int main(int argc, char **argv)
{
#ifndef HAVE_ASAN
    /* glibc counts the chunks its per-thread cache keeps after free() as
     * in use, so what a restore freed would count as what it kept: measure
     * without that cache (the setting is read at start, hence the exec). */
    if (argc > 0 && !getenv("FL_TEST_LRU_EXEC")) {
        setenv("FL_TEST_LRU_EXEC", "1", 1);
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
        execv("/proc/self/exe", argv);
    }
#else
    (void)argc;
    (void)argv;
#endif
    RUN(test_basics);
    RUN(test_random_against_model);
    RUN(test_budget_by_id);
    RUN(test_doc_mem);
    return fl_test_done();
}
