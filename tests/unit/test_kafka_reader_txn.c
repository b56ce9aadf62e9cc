/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka/reader and kafka/txn against librdkafka's in-process mock cluster
 * (no broker). The mock cluster writes no transaction markers and drops
 * transactional offset commits, so nothing here is about exactly-once
 * (that is tests/kafka and tests/e2e, on the real broker); what it can show:
 *
 * reader: a read from an offset to the high watermark taken at its start
 * sees every record once, in order, and none past the end (records
 * produced after the start are not read); an upper bound; a callback that
 * ends the read; a stop request; an empty partition; a stepped read that
 * needs several steps; a partition that does not exist runs into the
 * deadline.
 *
 * txn: init, begin, commit and abort on a healthy cluster; a retriable
 * EndTxn error is retried and the commit succeeds; a produce that fails for
 * good makes the commit come back FL_TXN_EABORTED with the transaction
 * aborted (closed), after which a new transaction begins; a fenced EndTxn
 * is FL_TXN_EFENCED.
 */
#include <stdlib.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "fl_test.h"
#include "flushline/clock.h"
#include "flushline/log.h"
#include "flushline/reader.h"
#include "flushline/txn.h"

/* Kafka protocol API keys the mock cluster injects errors into. */
#define API_PRODUCE 0
#define API_END_TXN 26

static rd_kafka_t *mock_rk;                 /* owns the mock cluster */
static rd_kafka_mock_cluster_t *mcluster;
static const char *bootstrap;

static int setup_cluster(void)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof errstr) ||
        !(mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        fprintf(stderr, "mock cluster: %s\n", errstr);
        return -1;
    }
    mcluster = rd_kafka_handle_mock_cluster(mock_rk);
    bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
    return mcluster && bootstrap ? 0 : -1;
}

static rd_kafka_t *plain_producer(void)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof errstr);
    return rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
}

/* n records "0".."n-1" to topic[p]. */
static int produce_n(const char *topic, int32_t p, int from, int n)
{
    rd_kafka_t *rk = plain_producer();
    char buf[16];
    if (!rk)
        return -1;
    for (int i = from; i < from + n; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                              RD_KAFKA_V_VALUE(buf, strlen(buf)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
            return -1;
    }
    int rc = rd_kafka_flush(rk, 10000) == 0 ? 0 : -1;
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- reader --------------------------------------------------------------- */

typedef struct seen_s {
    int64_t first, last;
    int count;
    int stop_at;      /* on_record returns 1 at this count (0: never) */
    bool in_order;
    bool stop;        /* should_stop answers this */
    int extra_at;     /* produce more records to the partition at this count (0: no) */
    const char *topic;
} seen_t;

static int on_record(void *opaque, const rd_kafka_message_t *msg)
{
    seen_t *s = opaque;
    if (s->count == 0)
        s->first = msg->offset;
    else if (msg->offset != s->last + 1)
        s->in_order = false;
    s->last = msg->offset;
    s->count++;
    if (s->extra_at && s->count == s->extra_at)
        produce_n(s->topic, 0, 1000, 20); /* after the start: beyond the end */
    return s->stop_at && s->count == s->stop_at ? 1 : 0;
}

static bool should_stop(void *opaque)
{
    return ((seen_t *)opaque)->stop;
}

static rd_kafka_t *reader(void)
{
    char errstr[512];
    rd_kafka_t *rk = fl_reader_consumer_new("test reader", bootstrap, "test-reader", NULL, errstr,
                                            sizeof errstr);
    if (!rk)
        fprintf(stderr, "%s\n", errstr);
    return rk;
}

static fl_read_spec_t spec_of(seen_t *s, const char *topic, int32_t p, int64_t from, int64_t to)
{
    *s = (seen_t){.first = -1, .last = -1, .in_order = true, .topic = topic};
    return (fl_read_spec_t){.topic = topic, .partition = p, .from = from, .to = to,
                            .deadline_ms = fl_clock_mono_ms() + 20000,
                            .should_stop = should_stop, .on_record = on_record, .opaque = s,
                            .what = "test read"};
}

static void test_reader_ranges(void)
{
    rd_kafka_t *rk = reader();
    seen_t s;
    fl_read_spec_t spec;
    char errstr[512];
    int64_t hi = 0;

    ASSERT_TRUE(rk != NULL);
    ASSERT_EQ(rd_kafka_mock_topic_create(mcluster, "rd", 2, 1), 0);
    ASSERT_EQ(produce_n("rd", 0, 0, 100), 0);
    /* from 10 to the end; 20 more records land mid-read: not read */
    spec = spec_of(&s, "rd", 0, 10, FL_READER_END);
    s.extra_at = 5;
    ASSERT_EQ(fl_reader_run(rk, &spec, &hi, errstr, sizeof errstr), 0);
    ASSERT_EQ(hi, 100);
    ASSERT_EQ(s.count, 90);
    ASSERT_EQ(s.first, 10);
    ASSERT_EQ(s.last, 99);
    ASSERT_TRUE(s.in_order);
    /* an upper bound, exclusive */
    spec = spec_of(&s, "rd", 0, 0, 50);
    ASSERT_EQ(fl_reader_run(rk, &spec, NULL, errstr, sizeof errstr), 0);
    ASSERT_EQ(s.count, 50);
    ASSERT_EQ(s.last, 49);
    /* now the end is where the extra records end */
    spec = spec_of(&s, "rd", 0, 95, FL_READER_END);
    ASSERT_EQ(fl_reader_run(rk, &spec, &hi, errstr, sizeof errstr), 0);
    ASSERT_EQ(hi, 120);
    ASSERT_EQ(s.count, 25);
    /* the callback ends it */
    spec = spec_of(&s, "rd", 0, 0, FL_READER_END);
    s.stop_at = 7;
    ASSERT_EQ(fl_reader_run(rk, &spec, NULL, errstr, sizeof errstr), 1);
    ASSERT_EQ(s.count, 7);
    /* a stop request */
    spec = spec_of(&s, "rd", 0, 0, FL_READER_END);
    s.stop = true;
    ASSERT_EQ(fl_reader_run(rk, &spec, NULL, errstr, sizeof errstr), FL_READER_ESTOPPED);
    /* an empty partition: done at once, nothing read */
    spec = spec_of(&s, "rd", 1, 0, FL_READER_END);
    ASSERT_EQ(fl_reader_run(rk, &spec, &hi, errstr, sizeof errstr), 0);
    ASSERT_EQ(hi, 0);
    ASSERT_EQ(s.count, 0);
    rd_kafka_destroy(rk);
}

static void test_reader_steps(void)
{
    rd_kafka_t *rk = reader();
    seen_t s;
    fl_read_spec_t spec;
    char errstr[512];
    int rc, steps = 0;

    ASSERT_TRUE(rk != NULL);
    ASSERT_EQ(rd_kafka_mock_topic_create(mcluster, "st", 1, 1), 0);
    ASSERT_EQ(produce_n("st", 0, 0, 3000), 0);
    spec = spec_of(&s, "st", 0, 0, FL_READER_END);
    fl_reader_t *rd = fl_reader_open(rk, &spec, &rc, errstr, sizeof errstr);
    ASSERT_TRUE(rd != NULL);
    ASSERT_EQ(fl_reader_high(rd), 3000);
    /* 1 ms steps: at least one poll each, several before the end */
    while ((rc = fl_reader_step(rd, 1, errstr, sizeof errstr)) == FL_READER_MORE)
        steps++;
    ASSERT_EQ(rc, 0);
    ASSERT_GT(steps, 0);
    ASSERT_EQ(s.count, 3000);
    ASSERT_TRUE(s.in_order);
    ASSERT_EQ(fl_reader_position(rd), 3000);
    fl_reader_close(rd);
    rd_kafka_destroy(rk);
}

static void test_reader_deadline(void)
{
    rd_kafka_t *rk = reader();
    seen_t s;
    fl_read_spec_t spec;
    char errstr[512] = "";
    int64_t t0 = fl_clock_mono_ms();

    ASSERT_TRUE(rk != NULL);
    /* (the mock cluster creates a topic it is asked about: a partition
     * beyond the count of one it has) */
    ASSERT_EQ(rd_kafka_mock_topic_create(mcluster, "dl", 1, 1), 0);
    spec = spec_of(&s, "dl", 5, 0, FL_READER_END);
    spec.deadline_ms = t0 + 1500;
    ASSERT_EQ(fl_reader_run(rk, &spec, NULL, errstr, sizeof errstr), FL_READER_ETIMEDOUT);
    ASSERT_TRUE(strstr(errstr, "dl [5]") != NULL);
    ASSERT_GE(fl_clock_mono_ms() - t0, 1500);
    ASSERT_STR_EQ(fl_reader_strerror(FL_READER_ETIMEDOUT), "timed out");
    rd_kafka_destroy(rk);
}

/* ---- txn ------------------------------------------------------------------ */

static rd_kafka_t *txn_producer(const char *txid)
{
    char errstr[512];
    fl_txn_producer_spec_t ps = {.what = "test producer", .bootstrap = bootstrap,
                                 .transactional_id = txid, .transaction_timeout_ms = 10000,
                                 .linger_ms = 0};
    rd_kafka_t *rk = fl_txn_producer_new(&ps, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "%s\n", errstr);
    return rk;
}

static int produce_one(rd_kafka_t *rk, const char *topic)
{
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == 0
               ? 0
               : -1;
}

static void test_txn_commit_abort_retry(void)
{
    rd_kafka_t *rk = txn_producer("txn-ok");
    char errstr[512] = "";
    ASSERT_TRUE(rk != NULL);
    ASSERT_EQ(rd_kafka_mock_topic_create(mcluster, "tx", 1, 1), 0);
    fl_txn_t *txn = fl_txn_new(rk, 10000);
    ASSERT_TRUE(txn != NULL);
    ASSERT_EQ(fl_txn_init(txn, 10000, errstr, sizeof errstr), 0);
    ASSERT_TRUE(!fl_txn_is_open(txn));
    ASSERT_EQ(fl_txn_commit(txn, errstr, sizeof errstr), 0); /* none open: nothing */
    ASSERT_EQ(fl_txn_begin(txn, errstr, sizeof errstr), 0);
    ASSERT_TRUE(fl_txn_is_open(txn));
    ASSERT_EQ(produce_one(rk, "tx"), 0);
    ASSERT_EQ(fl_txn_commit(txn, errstr, sizeof errstr), 0);
    ASSERT_TRUE(!fl_txn_is_open(txn));
    ASSERT_EQ(fl_txn_begin(txn, errstr, sizeof errstr), 0);
    ASSERT_EQ(produce_one(rk, "tx"), 0);
    ASSERT_EQ(fl_txn_abort(txn, errstr, sizeof errstr), 0);
    ASSERT_TRUE(!fl_txn_is_open(txn));
    /* a retriable EndTxn error: retried, committed */
    ASSERT_EQ(fl_txn_begin(txn, errstr, sizeof errstr), 0);
    ASSERT_EQ(produce_one(rk, "tx"), 0);
    rd_kafka_mock_push_request_errors(mcluster, API_END_TXN, 1,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    ASSERT_EQ(fl_txn_commit(txn, errstr, sizeof errstr), 0);
    ASSERT_TRUE(!fl_txn_is_open(txn));
    fl_txn_free(txn);
    rd_kafka_destroy(rk);
}

static void test_txn_abortable(void)
{
    rd_kafka_t *rk = txn_producer("txn-abortable");
    char errstr[512] = "";
    ASSERT_TRUE(rk != NULL);
    fl_txn_t *txn = fl_txn_new(rk, 10000);
    ASSERT_EQ(fl_txn_init(txn, 10000, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_txn_begin(txn, errstr, sizeof errstr), 0);
    /* the produce fails for good: the transaction can only be aborted */
    rd_kafka_mock_push_request_errors(mcluster, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    ASSERT_EQ(produce_one(rk, "tx"), 0);
    rd_kafka_flush(rk, 5000);
    ASSERT_EQ(fl_txn_commit(txn, errstr, sizeof errstr), FL_TXN_EABORTED);
    ASSERT_TRUE(!fl_txn_is_open(txn)); /* aborted here */
    ASSERT_TRUE(errstr[0] != '\0');
    /* and the producer is usable: a new transaction begins (committing
     * after an epoch bump is beyond the mock cluster's idempotence
     * bookkeeping: it answers "skipped sequence numbers") */
    ASSERT_EQ(fl_txn_begin(txn, errstr, sizeof errstr), 0);
    ASSERT_TRUE(fl_txn_is_open(txn));
    ASSERT_EQ(fl_txn_abort(txn, errstr, sizeof errstr), 0);
    fl_txn_free(txn);
    rd_kafka_destroy(rk);
}

static void test_txn_fenced(void)
{
    rd_kafka_t *rk = txn_producer("txn-fenced");
    char errstr[512] = "";
    ASSERT_TRUE(rk != NULL);
    fl_txn_t *txn = fl_txn_new(rk, 10000);
    ASSERT_EQ(fl_txn_init(txn, 10000, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_txn_begin(txn, errstr, sizeof errstr), 0);
    ASSERT_EQ(produce_one(rk, "tx"), 0);
    rd_kafka_mock_push_request_errors(mcluster, API_END_TXN, 1,
                                      RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    ASSERT_EQ(fl_txn_commit(txn, errstr, sizeof errstr), FL_TXN_EFENCED);
    ASSERT_STR_EQ(fl_txn_strerror(FL_TXN_EFENCED), "fenced");
    fl_txn_free(txn);
    rd_kafka_destroy(rk);
}

int main(void)
{
    fl_log_init("test", FL_LOG_ERROR);
    if (setup_cluster() != 0)
        return 1;
    RUN(test_reader_ranges);
    RUN(test_reader_steps);
    RUN(test_reader_deadline);
    RUN(test_txn_commit_abort_retry);
    RUN(test_txn_abortable);
    RUN(test_txn_fenced);
    rd_kafka_destroy(mock_rk);
    return fl_test_done();
}
