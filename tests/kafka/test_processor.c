/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flushline-processor against the real broker, as a separate process:
 * - model equivalence: 10 clients x 500 generated flushes over 20 documents;
 *   every outcome equals an in-process replay of commands in offset order,
 *   versions are contiguous, every (client, seq) is answered once, and the
 *   snapshots written on SIGTERM carry the model's digests;
 * - a resent seq is answered from the dedup table and not applied again; a
 *   gap is refused with `gap`;
 * - bad records in commands are skipped and counted without stopping the
 *   partition.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_gen.h"
#include "fl_ktest.h"
#include "fl_model.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

#define PARTITIONS 4

static const char *bootstrap;
static char prefix[96];
static fl_proc_t proc;
static int http_port;

static int start_processor(void)
{
    char log[512], port[16], txid[160], group[160];
    snprintf(log, sizeof log, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(port, sizeof port, "%d", http_port = fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx-1", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *args[] = {"--bootstrap", bootstrap,       "--prefix",
                          prefix,        "--partitions",  "4",
                          "--group.id",  group,           "--transactional.id",
                          txid,          "--http.port",   port,
                          "--snapshot.every.versions", "200", NULL};
    return fl_proc_start(&proc, "flushline-processor", args, log);
}

typedef struct wait_ctx_s {
    long want;
} wait_ctx_t;

static int count_outcomes(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    long *n = opaque;
    /* outcome records carry "t":"outcome"; a cheap substring check is enough to count */
    if (memmem(msg->payload, msg->len, "\xa7outcome", 8))
        (*n)++;
    return 0;
}

static long outcomes_now(void)
{
    long n = 0;
    if (fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, count_outcomes, &n) < 0)
        return -1;
    return n;
}

static bool enough_outcomes(void *arg)
{
    wait_ctx_t *w = arg;
    /* stop waiting as soon as the processor is gone */
    return !fl_proc_alive(&proc) || outcomes_now() >= w->want;
}

static long produced;

static void produce_flush(rd_kafka_t *rk, const fl_flush_t *f)
{
    if (fl_ktest_produce_flush(rk, prefix, f, "user-1", "gw-test", 7) == 0)
        produced++;
}

/* Resend and gap on one document. */
static void test_resend_and_gap(void)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    fl_arena_t *arena = fl_arena_new(4096);
    uint8_t cid[FL_CLIENT_ID_LEN];
    fl_cmd_t cmd = {.op = FL_OP_INCR, .path = FL_SLICE("/n"), .has_value = true};
    fl_flush_t f = {.doc = FL_SLICE("acme/dedup"), .seq = 1, .ncmds = 1, .cmds = &cmd};
    ASSERT_TRUE(rk != NULL);
    cmd.value = fl_value_int(5);
    fl_gen_client_id(cid, 999);
    memcpy(f.client_id, cid, sizeof cid);
    produce_flush(rk, &f); /* seq 1: applied */
    produce_flush(rk, &f); /* seq 1 again: duplicate */
    f.seq = 3;
    produce_flush(rk, &f); /* seq 3: gap */
    f.seq = 2;
    produce_flush(rk, &f); /* seq 2: applied */
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    fl_arena_free(arena);
}

/* Bad records interleaved with good ones on one document. */
static void test_bad_records(void)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    const char *doc = "acme/bad";
    uint8_t cid[FL_CLIENT_ID_LEN];
    fl_cmd_t cmd = {.op = FL_OP_INCR, .path = FL_SLICE("/n"), .has_value = true};
    fl_flush_t f = {.doc = {doc, strlen(doc)}, .seq = 1, .ncmds = 1, .cmds = &cmd};
    ASSERT_TRUE(rk != NULL);
    cmd.value = fl_value_int(1);
    fl_gen_client_id(cid, 998);
    memcpy(f.client_id, cid, sizeof cid);
    produce_flush(rk, &f);
    /* garbage bytes */
    ASSERT_EQ(fl_ktest_produce_raw(rk, prefix, FL_TOPIC_COMMANDS, doc, strlen(doc), "\xc1\xff\x00", 3), 0);
    /* unknown schema version: {"t":"flush","v":99} */
    ASSERT_EQ(fl_ktest_produce_raw(rk, prefix, FL_TOPIC_COMMANDS, doc, strlen(doc),
                                   "\x82\xa1t\xa5" "flush\xa1v\x63", 12), 0);
    /* oversize: a flush of 1001 commands, over the 1000-command limit */
    {
        static fl_cmd_t many[1001];
        fl_flush_t big = f;
        char *buf = NULL, errstr[128];
        size_t len;
        for (int i = 0; i < 1001; i++)
            many[i] = cmd;
        big.ncmds = 1001;
        big.cmds = many;
        ASSERT_EQ(fl_wire_encode_flush_record(&big, FL_SLICE("gw"), 1, &buf, &len, errstr, sizeof errstr), 0);
        ASSERT_EQ(fl_ktest_produce_raw(rk, prefix, FL_TOPIC_COMMANDS, doc, strlen(doc), buf, len), 0);
        free(buf);
    }
    /* another record type: a checkpoint does not belong in commands */
    ASSERT_EQ(fl_ktest_produce_raw(rk, prefix, FL_TOPIC_COMMANDS, doc, strlen(doc),
                                   "\x84\xa1t\xaa" "checkpoint\xa1v\x01\xa9partition\x00"
                                   "\xad" "events_offset\x00", 43), 0);
    /* a flush whose key is another document */
    f.seq = 2;
    {
        char *buf = NULL, errstr[128];
        size_t len;
        ASSERT_EQ(fl_wire_encode_flush_record(&f, FL_SLICE("gw"), 1, &buf, &len, errstr, sizeof errstr), 0);
        ASSERT_EQ(fl_ktest_produce_raw(rk, prefix, FL_TOPIC_COMMANDS, "acme/other", 10, buf, len), 0);
        free(buf);
    }
    /* then a good one: the partition goes on */
    produce_flush(rk, &f);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
}

static void test_generated_load(void)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    fl_gen_t g;
    char docs[20][32];
    uint8_t cids[10][FL_CLIENT_ID_LEN];
    ASSERT_TRUE(rk != NULL);
    fl_gen_seed(&g, 42);
    for (int d = 0; d < 20; d++)
        snprintf(docs[d], sizeof docs[d], "acme/doc-%d", d);
    for (int c = 0; c < 10; c++)
        fl_gen_client_id(cids[c], (uint32_t)c);
    /* Clients interleave; each spreads its flushes over the documents and
     * numbers them per document (seq is per client and document). */
    static uint64_t seqs[10][20];
    for (int s = 1; s <= 500; s++) {
        for (int c = 0; c < 10; c++) {
            fl_flush_t f;
            int d = (int)(fl_gen_next(&g) % 20);
            fl_arena_reset(arena);
            fl_gen_flush(&g, arena, docs[d], cids[c], ++seqs[c][d], 6, &f);
            produce_flush(rk, &f);
        }
    }
    ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
    rd_kafka_destroy(rk);
    fl_arena_free(arena);
}

typedef struct replies_s {
    int n;
    fl_arena_t *arena;
    uint64_t version[4];
    uint32_t nitems[4];
    bool has_state[4];
} replies_t;

static int on_reply(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    replies_t *r = opaque;
    fl_wire_msg_t wm;
    char errstr[128];
    if (fl_wire_decode_record(msg->payload, msg->len, r->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_SYNC_REPLY || wm.u.reply.req < 1 || wm.u.reply.req > 3)
        return 0;
    uint64_t i = wm.u.reply.req;
    r->version[i] = wm.u.reply.version;
    r->nitems[i] = wm.u.reply.nitems;
    r->has_state[i] = wm.u.reply.has_state;
    r->n++;
    return 0;
}

static bool three_replies(void *arg)
{
    replies_t *r = arg;
    r->n = 0;
    return fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, on_reply, r) >= 0 && r->n >= 3;
}

/* Syncs (what a gateway sends for a document's first subscriber) are
 * answered in events: deltas from the window, nothing when up to date, and
 * version 0 for a document never written. */
static void test_sync_replies(void)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    replies_t r = {.arena = fl_arena_new(1 << 16)};
    const struct {
        const char *doc;
        uint64_t have;
    } syncs[3] = {{"acme/dedup", 0}, {"acme/dedup", 2}, {"acme/never-written", 0}};
    ASSERT_TRUE(rk != NULL);
    for (int i = 0; i < 3; i++) {
        fl_wire_msg_t wm = {.type = FL_WT_REC_SYNC};
        char *buf = NULL, errstr[128];
        size_t len;
        wm.u.sync.doc = (fl_slice_t){syncs[i].doc, strlen(syncs[i].doc)};
        wm.u.sync.gw = FL_SLICE("gw-test");
        wm.u.sync.req = (uint64_t)i + 1;
        wm.u.sync.have_version = syncs[i].have;
        ASSERT_EQ(fl_wire_encode(&wm, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr), 0);
        ASSERT_EQ(fl_ktest_produce_raw(rk, prefix, FL_TOPIC_COMMANDS, syncs[i].doc,
                                       strlen(syncs[i].doc), buf, len), 0);
        free(buf);
    }
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    ASSERT_TRUE(fl_wait_until(three_replies, &r, 60000));
    ASSERT_EQ(r.version[1], 2);
    ASSERT_EQ(r.nitems[1], 2); /* the two applied outcomes, from version 0 */
    ASSERT_EQ(r.has_state[1], 0);
    ASSERT_EQ(r.version[2], 2);
    ASSERT_EQ(r.nitems[2], 0);
    ASSERT_EQ(r.version[3], 0);
    fl_arena_free(r.arena);
}

static void test_model_equivalence(void)
{
    wait_ctx_t w = {.want = produced};
    fl_model_report_t rep;
    char *body = NULL;

    if (!fl_wait_until(enough_outcomes, &w, 180000) || !fl_proc_alive(&proc)) {
        fl_proc_dump_log(&proc, 40);
        FL_FAIL_("only %ld of %ld outcomes appeared", outcomes_now(), produced);
    }
    test_sync_replies();
    /* metrics: the bad records were counted */
    ASSERT_EQ(fl_http_get(http_port, "/metrics", &body), 200);
    ASSERT_TRUE(strstr(body, "flushline_processor_bad_records_total 5\n") != NULL);
    free(body);

    /* Drain: SIGTERM commits and snapshots every dirty document. */
    ASSERT_EQ(fl_proc_signal(&proc, SIGTERM), 0);
    int st = fl_proc_wait(&proc, 60000);
    if (st != 0)
        fl_proc_dump_log(&proc, 40);
    ASSERT_EQ(st, 0);

    fl_model_t *m = fl_model_check(bootstrap, prefix, &rep);
    ASSERT_TRUE(m != NULL);
    printf("commands %ld, outcomes %ld, applied commands %ld, docs %ld\n", rep.commands,
           rep.outcomes, rep.applied_cmds, rep.docs);
    ASSERT_EQ(rep.commands, produced); /* (the misrouted flush was not counted) */
    ASSERT_EQ(rep.outcomes, rep.commands);
    ASSERT_EQ(rep.mismatches, 0);
    ASSERT_EQ(rep.missing, 0);
    ASSERT_EQ(rep.extra, 0);
    ASSERT_EQ(rep.gaps, 0);
    ASSERT_GT(rep.applied_cmds, 5000);
    ASSERT_EQ(fl_model_check_snapshots(m, bootstrap, prefix), 0);

    /* dedup: 5 applied once (seq 1), the repeat and the gap applied nothing, seq 2 applied */
    fl_doc_t *dd = fl_model_doc(m, "acme/dedup");
    ASSERT_TRUE(dd != NULL);
    ASSERT_EQ(fl_doc_version(dd), 2);
    const fl_value_t *n = fl_map_get(fl_doc_state(dd), "n", 1);
    ASSERT_TRUE(n != NULL);
    ASSERT_EQ(n->u.i, 10);
    /* bad records: the two good flushes both applied */
    fl_doc_t *bd = fl_model_doc(m, "acme/bad");
    ASSERT_TRUE(bd != NULL);
    ASSERT_EQ(fl_doc_version(bd), 2);
    fl_model_free(m);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-proc", prefix, sizeof prefix);
    if (fl_ktest_topics(bootstrap, prefix, PARTITIONS) != 0 || start_processor() != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(test_resend_and_gap);
    RUN(test_bad_records);
    RUN(test_generated_load);
    RUN(test_model_equivalence);
    fl_proc_kill(&proc);
    return fl_test_done();
}
