/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How the gateway answers a flush it cannot publish (gw_int.h; no broker,
 * no sockets: the origin is a connection already closing, whose nacks are
 * counted by code but not sent):
 * - no memory to hold the flush until its partition is followed (an
 *   injected allocation failure, gw_fault.h): nack `internal` (it used to
 *   be reported as the broker's QUEUE_FULL), retryable, later seqs of the
 *   key wait for it, nothing leaks;
 * - a produce refused as too large: nack `limit`, final, later seqs are
 *   not held back;
 * - any other Kafka error: nack `unavailable`, retryable, later seqs wait;
 * - a flush awaited on a partition stops being awaited when it fails;
 * - while the gateway is being freed, failures only release memory.
 */
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "gw_fault.h"
#include "gw_int.h"

#ifdef GW_FAULTS_ENABLED

static const char *const codes[] = {"unavailable", "limit", "internal"};

typedef struct fixture_s {
    gw_config_t cfg;
    gw_t *gw;
    gw_conn_t conn;
} fixture_t;

static int setup(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    f->cfg.partitions = 4;
    f->cfg.window_deltas = 4;
    if (!(f->gw = calloc(1, sizeof *f->gw)))
        return -1;
    f->gw->cfg = &f->cfg;
    f->gw->origins_map = fl_hmap_new();
    f->gw->docs = fl_hmap_new();
    f->gw->m.reg = fl_metrics_new();
    if (!f->gw->origins_map || !f->gw->docs || !f->gw->m.reg)
        return -1;
    f->gw->m.nacks = fl_metrics_counter_vec(f->gw->m.reg, "nacks", "n", "code", codes, 3);
    f->gw->m.produce_errors = fl_metrics_counter(f->gw->m.reg, "produce_errors", "p");
    /* a connection that is closing: nacks are counted, nothing is sent */
    f->conn.o.id = 78; /* even: bit 0 of a record's origin is the form bit */
    f->conn.o.kind = GW_ORIGIN_WS;
    f->conn.gw = f->gw;
    f->conn.closing = true;
    return fl_hmap_put(f->gw->origins_map, &f->conn.o.id, sizeof f->conn.o.id, &f->conn.o);
}

static void teardown(fixture_t *f)
{
    gw_docs_free_all(f->gw);
    fl_hmap_free(f->gw->docs);
    fl_hmap_free(f->gw->origins_map);
    fl_metrics_free(f->gw->m.reg);
    free(f->conn.blocks);
    free(f->gw);
}

static uint64_t nacks(fixture_t *f, const char *code)
{
    long i = fl_metric_vec_index(f->gw->m.nacks, code);
    return i < 0 ? 0 : fl_counter_value(fl_metric_vec_counter(f->gw->m.nacks, (size_t)i));
}

static gw_inflight_t *inflight(const char *doc, uint64_t seq)
{
    gw_inflight_t *inf = calloc(1, sizeof *inf);
    inf->origin = 78;
    inf->partition = -1;
    memset(inf->client_id, 5, sizeof inf->client_id);
    inf->seq = seq;
    inf->doclen = strlen(doc);
    memcpy(inf->doc, doc, inf->doclen);
    return inf;
}

static void test_oom_holding_a_flush_is_internal(void)
{
    fixture_t f;
    fl_slice_t doc = FL_SLICE("acme/held");
    uint8_t cid[FL_CLIENT_ID_LEN];
    int32_t p;
    ASSERT_EQ(setup(&f), 0);
    p = gw_partition(f.gw, doc);
    memset(cid, 5, sizeof cid);
    atomic_store(&gw_faults[GW_FAULT_HELD], 1);
    /* buf and inf pass to the gateway in every case (ASan: no leak) */
    gw_docs_produce_flush(f.gw, doc, strdup("record"), 6, inflight("acme/held", 9));
    ASSERT_EQ(atomic_load(&gw_faults[GW_FAULT_HELD]), 0);
    ASSERT_EQ(nacks(&f, "internal"), 1);
    ASSERT_EQ(nacks(&f, "unavailable"), 0);
    ASSERT_EQ(fl_counter_value(f.gw->m.produce_errors), 1);
    /* nothing is held or asked for: the partition is not left "assigning" */
    ASSERT_TRUE(f.gw->held[p] == NULL);
    ASSERT_EQ(f.gw->part_state[p], GW_PART_NONE);
    /* the same seq may come again; later ones wait for it */
    ASSERT_TRUE(gw_conn_blocked(&f.conn, doc, cid, 10));
    ASSERT_TRUE(!gw_conn_blocked(&f.conn, doc, cid, 9));
    teardown(&f);
}

static void test_delivery_errors_map_to_codes(void)
{
    fixture_t f;
    fl_slice_t big = FL_SLICE("acme/big"), busy = FL_SLICE("acme/busy");
    uint8_t cid[FL_CLIENT_ID_LEN];
    gw_inflight_t *inf;
    ASSERT_EQ(setup(&f), 0);
    memset(cid, 5, sizeof cid);

    /* too large: final, not held back (the client drops that flush) */
    inf = inflight("acme/big", 3);
    inf->partition = 2;
    f.gw->part_await[2] = 1;
    gw_on_delivery(f.gw, inf, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    ASSERT_EQ(nacks(&f, "limit"), 1);
    ASSERT_EQ(f.gw->part_await[2], 0); /* no outcome will come */
    ASSERT_TRUE(!gw_conn_blocked(&f.conn, big, cid, 4));

    /* broker trouble: unavailable, retryable, held back */
    gw_on_delivery(f.gw, inflight("acme/busy", 5), RD_KAFKA_RESP_ERR__QUEUE_FULL);
    gw_on_delivery(f.gw, inflight("acme/busy", 6), RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    ASSERT_EQ(nacks(&f, "unavailable"), 2);
    ASSERT_EQ(nacks(&f, "internal"), 0);
    ASSERT_TRUE(gw_conn_blocked(&f.conn, busy, cid, 6));
    ASSERT_EQ(fl_counter_value(f.gw->m.produce_errors), 3);

    /* published: nothing counted */
    gw_on_delivery(f.gw, inflight("acme/other", 1), 0);
    ASSERT_EQ(fl_counter_value(f.gw->m.produce_errors), 3);

    /* while the gateway is freed: memory only */
    f.gw->freeing = true;
    gw_on_delivery(f.gw, inflight("acme/busy", 7), RD_KAFKA_RESP_ERR__PURGE_QUEUE);
    ASSERT_EQ(nacks(&f, "unavailable"), 2);
    ASSERT_EQ(fl_counter_value(f.gw->m.produce_errors), 3);
    teardown(&f);
}

int main(void)
{
    RUN(test_oom_holding_a_flush_is_internal);
    RUN(test_delivery_errors_map_to_codes);
    return fl_test_done();
}

#else

int main(void)
{
    fprintf(stderr, "this test needs the fault injection of a build without NDEBUG "
                    "(scripts/build test)\n");
    return 1;
}

#endif
