/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Proves the broker is real (not librdkafka's mock cluster, which writes no
 * transaction markers): an idempotent transactional producer commits one
 * transaction and aborts another, and a read_committed consumer sees only
 * the committed records while a read_uncommitted one sees both.
 */
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "flushline/kafka.h"
#include "flushline/log.h"
#include "flushline/topics.h"

static const char *bootstrap;
static char topic[128];

static rd_kafka_t *make(rd_kafka_type_t type, const fl_kafka_kv_t *kv)
{
    char errstr[512];
    fl_kafka_spec_t ks = {.type = type, .bootstrap = bootstrap, .defaults = kv};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "%s\n", errstr);
    return rk;
}

static int create_topic(rd_kafka_t *rk, const char *name, int partitions)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, NULL, 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = -1;
    if (ev && !rd_kafka_event_error(ev)) {
        size_t n;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rc = (n == 1 && !rd_kafka_topic_result_error(tr[0])) ? 0 : -1;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    return rc;
}

static int produce(rd_kafka_t *rk, const char *value)
{
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("doc", 3),
                             RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
}

/* Reads the topic from the start until the high watermark (which includes
 * aborted records and markers), collecting record values in order. */
static int read_all(const char *isolation, char out[][32], int max)
{
    char group[128];
    const fl_kafka_kv_t kv[] = {{"group.id", fl_test_unique("tx-reader", group, sizeof group)},
                                {"isolation.level", isolation},
                                {"auto.offset.reset", "earliest"},
                                {"enable.auto.commit", "false"},
                                {NULL, NULL}};
    rd_kafka_t *rk = make(RD_KAFKA_CONSUMER, kv);
    rd_kafka_topic_partition_list_t *parts;
    int64_t lo = 0, hi = 0;
    int n = 0;
    if (!rk)
        return -1;
    parts = rd_kafka_topic_partition_list_new(1);
    if (rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000) != 0)
        goto done;
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    int64_t deadline = fl_test_now_ms() + 30000;
    for (;;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        int64_t pos = 0;
        if (msg) {
            if (!msg->err && n < max) {
                snprintf(out[n++], 32, "%.*s", (int)msg->len, (const char *)msg->payload);
            }
            rd_kafka_message_destroy(msg);
        }
        rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(p, topic, 0);
        if (rd_kafka_position(rk, p) == 0)
            pos = p->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(p);
        if (pos >= hi || fl_test_now_ms() > deadline)
            break;
    }
done:
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

static void test_commit_and_abort(void)
{
    char txid[128];
    const fl_kafka_kv_t kv[] = {{"transactional.id", fl_test_unique("tx-test", txid, sizeof txid)},
                                {"enable.idempotence", "true"},
                                {NULL, NULL}};
    rd_kafka_t *rk = make(RD_KAFKA_PRODUCER, kv);
    rd_kafka_error_t *err;
    ASSERT_TRUE(rk != NULL);
    ASSERT_EQ(create_topic(rk, topic, 1), 0);

    err = rd_kafka_init_transactions(rk, 30000);
    ASSERT_TRUE(err == NULL);

    ASSERT_TRUE(rd_kafka_begin_transaction(rk) == NULL);
    ASSERT_EQ(produce(rk, "committed-1"), 0);
    ASSERT_EQ(produce(rk, "committed-2"), 0);
    err = rd_kafka_commit_transaction(rk, 30000);
    ASSERT_TRUE(err == NULL);

    ASSERT_TRUE(rd_kafka_begin_transaction(rk) == NULL);
    ASSERT_EQ(produce(rk, "aborted-1"), 0);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0); /* really on the broker before the abort */
    err = rd_kafka_abort_transaction(rk, 30000);
    ASSERT_TRUE(err == NULL);

    ASSERT_TRUE(rd_kafka_begin_transaction(rk) == NULL);
    ASSERT_EQ(produce(rk, "committed-3"), 0);
    err = rd_kafka_commit_transaction(rk, 30000);
    ASSERT_TRUE(err == NULL);
    rd_kafka_destroy(rk);

    char seen[16][32];
    int n = read_all("read_committed", seen, 16);
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(seen[0], "committed-1");
    ASSERT_STR_EQ(seen[1], "committed-2");
    ASSERT_STR_EQ(seen[2], "committed-3");

    /* The aborted record is in the log: a read_uncommitted reader sees it. */
    n = read_all("read_uncommitted", seen, 16);
    ASSERT_EQ(n, 4);
    ASSERT_STR_EQ(seen[2], "aborted-1");
}

int main(void)
{
    char stem[96];
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    snprintf(topic, sizeof topic, "%s.tx", fl_test_unique("fltest", stem, sizeof stem));
    RUN(test_commit_and_abort);
    return fl_test_done();
}
