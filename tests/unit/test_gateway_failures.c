/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How the gateway answers a flush it cannot publish (gw_parts over a fake
 * Kafka io, the origin registry, a connection's origin callbacks; no
 * broker, no sockets: the origin is a connection already closing, whose
 * nacks are counted by code but not sent):
 * - no memory to hold the flush until its partition is followed (an
 *   injected allocation failure, gw_fault.h): nack `internal` (it used to
 *   be reported as the broker's QUEUE_FULL), retryable, later seqs of the
 *   key wait for it, nothing leaks;
 * - a produce refused as too large: nack `limit`, final, later seqs are
 *   not held back;
 * - any other Kafka error: nack `unavailable`, retryable, later seqs wait;
 * - a flush awaited on a partition stops being awaited when it fails;
 * - while the gateway is being freed, failures only release memory;
 * - what is held is bounded: a flush beyond held.max.bytes is nacked
 *   `unavailable` at once, one held longer than held.max.ms is nacked by
 *   the tick and never produced; while Kafka is unwritable (io.writable) a
 *   flush is nacked `unavailable` at once, nothing held or asked for.
 */
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "flushline/clock.h"
#include "gw_conn.h"
#include "gw_fault.h"
#include "gw_origins.h"
#include "gw_parts.h"

#ifdef GW_FAULTS_ENABLED

static const char *const codes[] = {"unavailable", "limit", "internal"};

typedef struct fixture_s {
    gw_config_t cfg;
    gw_metrics_t m;
    gw_svc_t svc;
    gw_origins_t *origins;
    gw_parts_t *parts;
    gw_conn_t conn;
    int assigns; /* asked of the fake Kafka */
} fixture_t;

/* The fake Kafka under the partitions: assignments are counted (never
 * answered), every produce is accepted (and the record dropped). */
static void fake_assign(void *ctx, int32_t p, uint32_t gen, bool on)
{
    fixture_t *f = ctx;
    (void)p;
    (void)gen;
    (void)on;
    f->assigns++;
}

static int produced; /* records the fake Kafka accepted */

static bool writable = true;

static bool fake_writable(void *ctx)
{
    (void)ctx;
    return writable;
}

static int fake_produce(void *ctx, fl_slice_t key, char *buf, size_t len, void *opaque)
{
    produced++;
    (void)ctx;
    (void)key;
    (void)len;
    (void)opaque;
    free(buf);
    return 0;
}

static int setup(fixture_t *f)
{
    gw_parts_io_t io = {f, fake_assign, fake_produce, fake_writable};
    gw_parts_cbs_t cbs = {NULL, NULL};
    memset(f, 0, sizeof *f);
    f->cfg.partitions = 4;
    f->cfg.window_deltas = 4;
    if (!(f->m.reg = fl_metrics_new()))
        return -1;
    f->m.nacks = fl_metrics_counter_vec(f->m.reg, "nacks", "n", "code", codes, 3);
    f->m.produce_errors = fl_metrics_counter(f->m.reg, "produce_errors", "p");
    if (!(f->origins = gw_origins_new(76, f->m.produce_errors)) ||
        !(f->parts = gw_parts_new(4, 1000000, &io, &cbs, f->origins)))
        return -1;
    f->svc.cfg = &f->cfg;
    f->svc.m = &f->m;
    f->svc.origins = f->origins;
    /* a connection that is closing: nacks are counted, nothing is sent */
    f->conn.svc = &f->svc;
    f->conn.closing = true;
    if (gw_origins_add(f->origins, &f->conn.o, &gw_conn_origin_ops) != 0)
        return -1;
    return f->conn.o.id == 78 ? 0 : -1; /* even: bit 0 of a record's origin is the form bit */
}

static void teardown(fixture_t *f)
{
    gw_parts_free(f->parts);
    gw_origins_free(f->origins);
    fl_metrics_free(f->m.reg);
    free(f->conn.blocks);
}

static uint64_t nacks(fixture_t *f, const char *code)
{
    long i = fl_metric_vec_index(f->m.nacks, code);
    return i < 0 ? 0 : fl_counter_value(fl_metric_vec_counter(f->m.nacks, (size_t)i));
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
    p = gw_parts_of(f.parts, doc);
    memset(cid, 5, sizeof cid);
    atomic_store(&gw_faults[GW_FAULT_HELD], 1);
    /* buf and inf pass to the gateway in every case (ASan: no leak) */
    gw_parts_publish(f.parts, doc, strdup("record"), 6, inflight("acme/held", 9));
    ASSERT_EQ(atomic_load(&gw_faults[GW_FAULT_HELD]), 0);
    ASSERT_EQ(nacks(&f, "internal"), 1);
    ASSERT_EQ(nacks(&f, "unavailable"), 0);
    ASSERT_EQ(fl_counter_value(f.m.produce_errors), 1);
    /* nothing is held or asked for: the partition is not left "assigning" */
    ASSERT_EQ(gw_parts_held(f.parts, p), 0);
    ASSERT_EQ(gw_parts_state(f.parts, p), GW_PART_NONE);
    ASSERT_EQ(f.assigns, 0);
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
    int32_t p;
    ASSERT_EQ(setup(&f), 0);
    memset(cid, 5, sizeof cid);

    /* too large: final, not held back (the client drops that flush). The
     * flush goes out through its followed partition, so it is awaited. */
    p = gw_parts_of(f.parts, big);
    ASSERT_TRUE(!gw_parts_follow(f.parts, p));
    gw_parts_on_assigned(f.parts, p, gw_parts_gen(f.parts, p));
    inf = inflight("acme/big", 3);
    gw_parts_publish(f.parts, big, strdup("record"), 6, inf);
    ASSERT_EQ(inf->partition, p);
    ASSERT_EQ(gw_parts_awaited(f.parts, p), 1);
    gw_parts_on_delivery(f.parts, inf, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    ASSERT_EQ(nacks(&f, "limit"), 1);
    ASSERT_EQ(gw_parts_awaited(f.parts, p), 0); /* no outcome will come */
    ASSERT_TRUE(!gw_conn_blocked(&f.conn, big, cid, 4));

    /* broker trouble: unavailable, retryable, held back */
    gw_parts_on_delivery(f.parts, inflight("acme/busy", 5), RD_KAFKA_RESP_ERR__QUEUE_FULL);
    gw_parts_on_delivery(f.parts, inflight("acme/busy", 6), RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    ASSERT_EQ(nacks(&f, "unavailable"), 2);
    ASSERT_EQ(nacks(&f, "internal"), 0);
    ASSERT_TRUE(gw_conn_blocked(&f.conn, busy, cid, 6));
    ASSERT_EQ(fl_counter_value(f.m.produce_errors), 3);

    /* published: nothing counted */
    gw_parts_on_delivery(f.parts, inflight("acme/other", 1), 0);
    ASSERT_EQ(fl_counter_value(f.m.produce_errors), 3);

    /* while the gateway is freed: memory only */
    gw_origins_closing(f.origins);
    gw_parts_on_delivery(f.parts, inflight("acme/busy", 7), RD_KAFKA_RESP_ERR__PURGE_QUEUE);
    ASSERT_EQ(nacks(&f, "unavailable"), 2);
    ASSERT_EQ(fl_counter_value(f.m.produce_errors), 3);
    teardown(&f);
}

static void test_held_is_bounded(void)
{
    fixture_t f;
    ASSERT_EQ(setup(&f), 0);
    fl_slice_t doc = FL_SLICE("acme/held");
    int32_t p = gw_parts_of(f.parts, doc);
    gw_parts_limits(f.parts, 100, 5000000);
    /* 60 + 40 bytes are held (the partition is asked for once) */
    gw_parts_publish(f.parts, doc, calloc(1, 60), 60, inflight("acme/held", 1));
    gw_parts_publish(f.parts, doc, calloc(1, 40), 40, inflight("acme/held", 2));
    ASSERT_EQ(gw_parts_held(f.parts, p), 2);
    ASSERT_EQ(f.assigns, 1);
    ASSERT_EQ(nacks(&f, "unavailable"), 0);
    /* one byte more is refused at once */
    gw_parts_publish(f.parts, doc, calloc(1, 1), 1, inflight("acme/held", 3));
    ASSERT_EQ(nacks(&f, "unavailable"), 1);
    ASSERT_EQ(gw_parts_held(f.parts, p), 2);
    /* before held.max.ms nothing happens; after it both are refused */
    int64_t now = fl_clock_mono_us();
    gw_parts_tick(f.parts, now + 1000000);
    ASSERT_EQ(gw_parts_held(f.parts, p), 2);
    gw_parts_tick(f.parts, now + 6000000);
    ASSERT_EQ(gw_parts_held(f.parts, p), 0);
    ASSERT_EQ(nacks(&f, "unavailable"), 3);
    /* ... and never produced when the partition comes */
    produced = 0;
    gw_parts_on_assigned(f.parts, p, gw_parts_gen(f.parts, p));
    ASSERT_EQ(produced, 0);
    /* room again: held (and produced at once on a followed partition) */
    gw_inflight_t *inf = inflight("acme/held", 4);
    gw_parts_publish(f.parts, doc, calloc(1, 90), 90, inf);
    ASSERT_EQ(produced, 1);
    gw_parts_on_delivery(f.parts, inf, 0); /* its delivery report frees it */
    teardown(&f);
}

static void test_unwritable_is_refused_at_once(void)
{
    fixture_t f;
    ASSERT_EQ(setup(&f), 0);
    fl_slice_t doc = FL_SLICE("acme/down");
    writable = false;
    gw_parts_publish(f.parts, doc, strdup("record"), 6, inflight("acme/down", 1));
    writable = true;
    ASSERT_EQ(nacks(&f, "unavailable"), 1);
    ASSERT_EQ(gw_parts_held(f.parts, gw_parts_of(f.parts, doc)), 0);
    ASSERT_EQ(f.assigns, 0);
    teardown(&f);
}

int main(void)
{
    RUN(test_oom_holding_a_flush_is_internal);
    RUN(test_delivery_errors_map_to_codes);
    RUN(test_held_is_bounded);
    RUN(test_unwritable_is_refused_at_once);
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
