/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's Kafka side (gw_kafka.c) under its partitions (gw_parts.c)
 * against the real broker, when allocations fail (injected, gw_fault.h).
 * The test thread plays the lws service thread: it takes the consumer
 * thread's events and hands assignments to the partitions, as gw_server.c
 * does.
 * - A flush for a partition not followed yet is held; the assignment's
 *   allocations fail three times; the assignment is retried, announced,
 *   and the held flush is published (in the commands topic), so the
 *   partition ends ASSIGNED with nothing held (it used to stay
 *   "assigning" forever, the flush neither sent nor refused).
 * - A record that finds no memory to be decoded is decoded again, not
 *   dropped: it reaches the service thread once memory is back.
 * - An unassignment followed at once by an assignment of the same
 *   partition ends assigned, announced with the newest generation.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"
#include "gw_fault.h"
#include "gw_kafka.h"
#include "gw_metrics.h"
#include "gw_origins.h"
#include "gw_parts.h"

#ifdef GW_FAULTS_ENABLED

#define PARTITIONS 4

static const char *bootstrap;
static char prefix[96], gwid[128];
static gw_config_t cfg;
static gw_metrics_t m;
static gw_kafka_t *kafka;
static gw_origins_t *origins;
static gw_parts_t *parts;

static void on_delivery(void *ctx, void *opaque, int err)
{
    (void)ctx;
    if (parts)
        gw_parts_on_delivery(parts, opaque, err);
}

static void io_assign(void *ctx, int32_t p, uint32_t gen, bool on)
{
    gw_kafka_assign(ctx, p, gen, on);
}

static int io_produce(void *ctx, fl_slice_t key, char *buf, size_t len, void *opaque)
{
    return gw_kafka_produce(ctx, FL_TOPIC_COMMANDS, key, buf, len, opaque);
}

static int start_gateway_kafka(void)
{
    char errstr[512];
    gw_kafka_cbs_t kcbs = {NULL, on_delivery, NULL};
    gw_parts_cbs_t pcbs = {NULL, NULL};
    fl_test_unique("gwassign", prefix, sizeof prefix);
    snprintf(gwid, sizeof gwid, "%s-gw", prefix);
    if (fl_ktest_topics(bootstrap, prefix, PARTITIONS) != 0)
        return -1;
    cfg.bootstrap = bootstrap;
    cfg.prefix = prefix;
    cfg.partitions = PARTITIONS;
    cfg.window_deltas = 4;
    cfg.sync_timeout_ms = 10000;
    if (!(m.reg = fl_metrics_new()))
        return -1;
    m.produce_errors = fl_metrics_counter(m.reg, "produce_errors", "p");
    if (!(origins = gw_origins_new(2, m.produce_errors)))
        return -1;
    if (!(kafka = gw_kafka_new(&cfg, (fl_slice_t){gwid, strlen(gwid)}, &kcbs, errstr,
                               sizeof errstr))) {
        fprintf(stderr, "gw_kafka_new: %s\n", errstr);
        return -1;
    }
    gw_parts_io_t io = {.ctx = kafka, .assign = io_assign, .produce = io_produce};
    if (!(parts = gw_parts_new(PARTITIONS, 30000000, &io, &pcbs, origins)))
        return -1;
    return 0;
}

static void stop_gateway_kafka(void)
{
    if (origins)
        gw_origins_closing(origins);
    gw_kafka_free(kafka);
    kafka = NULL;
    gw_parts_free(parts);
    parts = NULL;
    gw_origins_free(origins);
    fl_metrics_free(m.reg);
}

/* What the service thread saw while serving events. */
typedef struct seen_s {
    int32_t partition;
    uint32_t last_gen;  /* of the last GW_EV_ASSIGNED of that partition */
    int signals;        /* signal records with body `want_body` */
    int64_t want_body;
} seen_t;

/* One turn of the service thread: delivery reports, then the events. */
static void serve(seen_t *seen)
{
    gw_event_t *ev;
    gw_kafka_poll(kafka);
    ev = gw_kafka_take(kafka);
    while (ev) {
        gw_event_t *next = gw_event_next(ev);
        if (ev->kind == GW_EV_ASSIGNED) {
            if (ev->partition == seen->partition)
                seen->last_gen = ev->gen;
            gw_parts_on_assigned(parts, ev->partition, ev->gen);
        } else if (ev->kind == GW_EV_RECORD && ev->msg.type == FL_WT_REC_SIGNAL &&
                   ev->msg.u.signal.body.type == FL_INT &&
                   ev->msg.u.signal.body.u.i == seen->want_body) {
            seen->signals++;
        }
        gw_event_free(ev);
        ev = next;
    }
}

typedef bool (*cond_fn)(const seen_t *seen);

/* Serves until cond holds or the deadline passes. */
static bool serve_until(seen_t *seen, cond_fn cond, int timeout_ms)
{
    int64_t deadline = fl_test_now_ms() + timeout_ms;
    while (!cond(seen)) {
        if (fl_test_now_ms() > deadline)
            return false;
        serve(seen);
        struct timespec ts = {0, 5 * 1000 * 1000}; /* the service loop's tick */
        nanosleep(&ts, NULL);
    }
    return true;
}

static bool is_assigned(const seen_t *seen)
{
    return gw_parts_state(parts, seen->partition) == GW_PART_ASSIGNED;
}

static bool got_signal(const seen_t *seen)
{
    return seen->signals > 0;
}

static void test_assignment_retried_after_oom(void)
{
    const char *docid = "acme/assign-oom";
    fl_slice_t doc = {docid, strlen(docid)};
    fl_flush_t flush;
    fl_cmd_t cmd;
    char *buf = NULL, errstr[256];
    size_t len;
    gw_inflight_t *inf;
    seen_t seen = {0};

    seen.partition = gw_parts_of(parts, doc);
    memset(&flush, 0, sizeof flush);
    memset(&cmd, 0, sizeof cmd);
    cmd.op = FL_OP_INCR;
    cmd.path = FL_SLICE("/n");
    cmd.has_value = true;
    cmd.value = fl_value_int(1);
    flush.doc = doc;
    memset(flush.client_id, 3, sizeof flush.client_id);
    flush.seq = 1;
    flush.ncmds = 1;
    flush.cmds = &cmd;
    flush.user = FL_SLICE("tester");
    ASSERT_EQ(fl_wire_encode_flush_record(&flush, (fl_slice_t){gwid, strlen(gwid)}, 1, &buf, &len,
                                          errstr, sizeof errstr),
              0);
    ASSERT_TRUE((inf = calloc(1, sizeof *inf)) != NULL);
    inf->origin = 1; /* no such origin: the report only frees it */
    inf->partition = -1;
    inf->seq = 1;
    inf->doclen = doc.len;
    memcpy(inf->doc, doc.ptr, doc.len);

    /* the assignment's allocations fail three times */
    atomic_store(&gw_faults[GW_FAULT_ASSIGN], 3);
    gw_parts_publish(parts, doc, buf, len, inf);
    ASSERT_EQ(gw_parts_state(parts, seen.partition), GW_PART_ASSIGNING);
    ASSERT_TRUE(gw_parts_held(parts, seen.partition) != 0);

    if (!serve_until(&seen, is_assigned, 60000))
        FL_FAIL_("partition %d still %d after 60 s (faults left %d)", seen.partition,
                 gw_parts_state(parts, seen.partition), atomic_load(&gw_faults[GW_FAULT_ASSIGN]));
    ASSERT_EQ(atomic_load(&gw_faults[GW_FAULT_ASSIGN]), 0); /* every failure was met */
    ASSERT_TRUE(gw_parts_held(parts, seen.partition) == 0);
    ASSERT_EQ(gw_parts_awaited(parts, seen.partition), 1);
    ASSERT_EQ(gw_kafka_flush(kafka, 30000), 0);
    ASSERT_EQ(fl_ktest_count(bootstrap, prefix, FL_TOPIC_COMMANDS), 1);
    ASSERT_EQ(fl_counter_value(m.produce_errors), 0);
}

static void test_record_decoded_again_after_oom(void)
{
    const char *docid = "acme/assign-oom";
    fl_slice_t doc = {docid, strlen(docid)};
    fl_wire_msg_t msg;
    char *buf = NULL, errstr[256];
    size_t len;
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    seen_t seen = {0};

    ASSERT_TRUE(rk != NULL);
    seen.partition = gw_parts_of(parts, doc);
    seen.want_body = 4242;
    ASSERT_EQ(gw_parts_state(parts, seen.partition), GW_PART_ASSIGNED); /* by the test above */
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_SIGNAL;
    msg.u.signal.doc = doc;
    msg.u.signal.gw = FL_SLICE("another-gw");
    msg.u.signal.user = FL_SLICE("tester");
    msg.u.signal.body = fl_value_int(seen.want_body);
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr), 0);

    atomic_store(&gw_faults[GW_FAULT_DECODE], 2);
    ASSERT_EQ(fl_ktest_produce_raw(rk, prefix, FL_TOPIC_SIGNALS, docid, doc.len, buf, len), 0);
    free(buf);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    if (!serve_until(&seen, got_signal, 60000))
        FL_FAIL_("the signal never reached the service thread (faults left %d)",
                 atomic_load(&gw_faults[GW_FAULT_DECODE]));
    ASSERT_EQ(atomic_load(&gw_faults[GW_FAULT_DECODE]), 0);
    ASSERT_EQ(seen.signals, 1);
}

typedef struct gen_cond_s {
    seen_t seen;
    uint32_t want;
} gen_cond_t;

static bool got_gen(const seen_t *seen)
{
    const gen_cond_t *c = (const gen_cond_t *)seen;
    return seen->last_gen == c->want &&
           gw_parts_state(parts, seen->partition) == GW_PART_ASSIGNED;
}

static void test_unassign_then_assign(void)
{
    gen_cond_t c = {{0}, 0};
    int32_t p = gw_parts_of(parts, FL_SLICE("acme/assign-oom"));
    c.seen.partition = p;
    ASSERT_EQ(gw_parts_state(parts, p), GW_PART_ASSIGNED);
    /* what gw_parts does when it lets a partition go, then needs it again */
    gw_parts_release(parts, p);
    ASSERT_EQ(gw_parts_state(parts, p), GW_PART_NONE);
    ASSERT_TRUE(!gw_parts_follow(parts, p));
    ASSERT_EQ(gw_parts_state(parts, p), GW_PART_ASSIGNING);
    c.want = gw_parts_gen(parts, p);
    if (!serve_until(&c.seen, got_gen, 60000))
        FL_FAIL_("partition %d: state %d, last generation announced %u, want %u", p,
                 gw_parts_state(parts, p), c.seen.last_gen, c.want);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    if (start_gateway_kafka() != 0) {
        fprintf(stderr, "cannot start the gateway's Kafka side\n");
        stop_gateway_kafka();
        return 1;
    }
    RUN(test_assignment_retried_after_oom);
    RUN(test_record_decoded_again_after_oom);
    RUN(test_unassign_then_assign);
    stop_gateway_kafka();
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
