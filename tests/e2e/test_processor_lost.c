/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A processor that loses its whole assignment survives it (issue 15: it
 * used to seek on an empty partition list and stop as fatal). A lone
 * processor with dynamic membership is paused (SIGSTOP) until the broker
 * has expired its session (the group is seen empty from outside), then
 * resumed: librdkafka reports the assignment lost, the processor drops its
 * partitions, rejoins, restores them and applies new flushes. Then every
 * flush has exactly one outcome, equal to the sequential model, and a
 * SIGTERM drains it with exit 0.
 *
 * The transaction timeout is longer than the pause, and the processor is
 * idle while paused: a transaction that times out during the pause is
 * another recovery (fenced-looking errors), not this one.
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
#include "flushline/kafka.h"
#include "flushline/log.h"

#define PARTITIONS 4
#define DOCS 8

static const char *bootstrap;

typedef struct wait_ctx_s {
    const char *prefix;
    const char *group;
    fl_proc_t *proc;
    long want;
    rd_kafka_t *admin;
} wait_ctx_t;

static int count_outcome(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    long *n = opaque;
    if (memmem(msg->payload, msg->len, "\xa7outcome", 8))
        (*n)++;
    return 0;
}

static bool answered(void *arg)
{
    wait_ctx_t *w = arg;
    long n = 0;
    if (!fl_proc_alive(w->proc))
        return true; /* the caller fails */
    if (fl_ktest_read_all(bootstrap, w->prefix, FL_TOPIC_EVENTS, count_outcome, &n) < 0)
        return false;
    return n >= w->want;
}

/* The group has no member left: the broker expired the paused one. */
static bool group_empty(void *arg)
{
    wait_ctx_t *w = arg;
    const struct rd_kafka_group_list *gl = NULL;
    bool empty = false;
    if (rd_kafka_list_groups(w->admin, w->group, &gl, 5000) != 0)
        return false;
    for (int i = 0; i < gl->group_cnt; i++)
        if (strcmp(gl->groups[i].group, w->group) == 0)
            empty = gl->groups[i].member_cnt == 0;
    rd_kafka_group_list_destroy(gl);
    return empty;
}

static bool log_has_lost(void *arg)
{
    return fl_proc_log_contains(((wait_ctx_t *)arg)->proc, "rebalance: lost");
}

static int produce(const char *prefix, fl_gen_t *g, uint64_t seqs[DOCS], int n)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    uint8_t cid[FL_CLIENT_ID_LEN];
    char doc[32];
    int rc = rk && arena ? 0 : -1;
    fl_gen_client_id(cid, 77);
    for (int i = 0; i < n && rc == 0; i++) {
        fl_flush_t f;
        int d = (int)(fl_gen_next(g) % DOCS);
        snprintf(doc, sizeof doc, "acme/lost-%d", d);
        fl_arena_reset(arena);
        fl_gen_flush(g, arena, doc, cid, ++seqs[d], 4, &f);
        rc = fl_ktest_produce_flush(rk, prefix, &f, "u", "gw-lost", 1);
    }
    if (rk && rd_kafka_flush(rk, 30000) != 0)
        rc = -1;
    if (rk)
        rd_kafka_destroy(rk);
    fl_arena_free(arena);
    return rc;
}

static void test_lost_assignment(void)
{
    char prefix[96], group[160], txid[160], log[512], errstr[512];
    static fl_proc_t proc;
    uint64_t seqs[DOCS] = {0};
    fl_gen_t g;
    fl_model_report_t rep;

    fl_test_unique("fltest-lost", prefix, sizeof prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    snprintf(txid, sizeof txid, "%s-p1", prefix);
    snprintf(log, sizeof log, "%s/tests/%s-p1.log", getenv("FL_BINARY_DIR"), prefix);
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, PARTITIONS), 0);
    /* dynamic membership (no group.instance.id): the session expires */
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", txid, "--http.port", "-1",
                          "--session.timeout.ms", "6000", "--transaction.timeout.ms", "120000",
                          "--snapshot.interval.ms", "500", NULL};
    ASSERT_EQ(fl_proc_start(&proc, "flushline-processor", args, log), 0);

    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER, .what = "test admin", .bootstrap = bootstrap};
    wait_ctx_t w = {.prefix = prefix, .group = group, .proc = &proc, .want = 40};
    ASSERT_TRUE((w.admin = fl_kafka_new(&ks, errstr, sizeof errstr)) != NULL);
    fl_gen_seed(&g, 13);
    ASSERT_EQ(produce(prefix, &g, seqs, 40), 0);
    ASSERT_TRUE(fl_wait_until(answered, &w, 120000));
    ASSERT_TRUE(fl_proc_alive(&proc));

    /* Paused until the broker has dropped it from the group. */
    ASSERT_EQ(fl_proc_signal(&proc, SIGSTOP), 0);
    bool expired = fl_wait_until(group_empty, &w, 60000);
    ASSERT_EQ(fl_proc_signal(&proc, SIGCONT), 0);
    ASSERT_TRUE(expired);
    ASSERT_TRUE(fl_wait_until(log_has_lost, &w, 60000));

    /* It rejoins, restores and applies what comes next. */
    ASSERT_EQ(produce(prefix, &g, seqs, 40), 0);
    w.want = 80;
    ASSERT_TRUE(fl_wait_until(answered, &w, 120000));
    if (!fl_proc_alive(&proc)) {
        fl_proc_dump_log(&proc, 40);
        ASSERT_TRUE(false);
    }
    ASSERT_EQ(fl_proc_signal(&proc, SIGTERM), 0);
    ASSERT_EQ(fl_proc_wait(&proc, 90000), 0);
    rd_kafka_destroy(w.admin);

    fl_model_t *m = fl_model_check(bootstrap, prefix, &rep);
    ASSERT_TRUE(m != NULL);
    fl_model_free(m);
    printf("commands %ld, outcomes %ld; mismatches %ld missing %ld extra %ld gaps %ld\n",
           rep.commands, rep.outcomes, rep.mismatches, rep.missing, rep.extra, rep.gaps);
    ASSERT_EQ(rep.commands, 80);
    ASSERT_EQ(rep.outcomes, 80);
    ASSERT_EQ(rep.mismatches, 0);
    ASSERT_EQ(rep.missing, 0);
    ASSERT_EQ(rep.extra, 0);
    ASSERT_EQ(rep.gaps, 0);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    RUN(test_lost_assignment);
    return fl_test_done();
}
