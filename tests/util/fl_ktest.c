/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka helpers for tests; see fl_ktest.h. */
#include "fl_ktest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "flushline/kafka.h"

int fl_ktest_topics(const char *bootstrap, const char *prefix, int partitions)
{
    char errstr[512];
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER, .what = "test admin", .bootstrap = bootstrap};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    int rc;
    if (!rk) {
        fprintf(stderr, "fl_ktest_topics: %s\n", errstr);
        return -1;
    }
    fl_topics_spec_default(&spec);
    spec.prefix = prefix;
    spec.partitions = partitions;
    rc = fl_topics_create(rk, &spec, st, errstr, sizeof errstr);
    if (rc != 0)
        fprintf(stderr, "fl_ktest_topics: %s\n", errstr);
    rd_kafka_destroy(rk);
    return rc;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    fl_ktest_delivery_t *dr = opaque;
    (void)rk;
    if (msg->err) {
        static const char *const status[] = {"not persisted", "possibly persisted",
                                             "persisted"};
        rd_kafka_msg_status_t st = rd_kafka_message_status(msg);
        fprintf(stderr, "test producer: delivery to %s [%d] failed: %s (%s)\n",
                rd_kafka_topic_name(msg->rkt), (int)msg->partition, rd_kafka_err2str(msg->err),
                (unsigned)st < 3 ? status[st] : "?");
    }
    if (dr)
        atomic_fetch_add(msg->err ? &dr->failed : &dr->delivered, 1);
}

rd_kafka_t *fl_ktest_producer(const char *bootstrap)
{
    return fl_ktest_producer_dr(bootstrap, NULL);
}

rd_kafka_t *fl_ktest_producer_dr(const char *bootstrap, fl_ktest_delivery_t *dr)
{
    char errstr[512];
    static const fl_kafka_kv_t defaults[] = {
        {"enable.idempotence", "true"}, {"linger.ms", "1"}, {NULL, NULL}};
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                          .what = "test producer",
                          .bootstrap = bootstrap,
                          .defaults = defaults,
                          .opaque = dr,
                          .on_delivery = on_delivery};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "fl_ktest_producer: %s\n", errstr);
    return rk;
}

int fl_ktest_produce_raw(rd_kafka_t *rk, const char *prefix, fl_topic_kind_t kind,
                         const char *key, size_t keylen, const void *val, size_t len)
{
    char topic[FL_TOPIC_NAME_MAX + 1];
    if (fl_topic_name(prefix, kind, topic, sizeof topic) != 0)
        return -1;
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
            RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        if (err)
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
        return err ? -1 : 0;
    }
}

int fl_ktest_produce_flush(rd_kafka_t *rk, const char *prefix, const fl_flush_t *flush,
                           const char *user, const char *gw, uint64_t origin)
{
    return fl_ktest_produce_flush_role(rk, prefix, flush, user, NULL, gw, origin);
}

int fl_ktest_produce_flush_role(rd_kafka_t *rk, const char *prefix, const fl_flush_t *flush,
                                const char *user, const char *role, const char *gw,
                                uint64_t origin)
{
    fl_wire_rec_flush_t rec = {*flush, {gw, strlen(gw)}, origin, {"", 0}};
    fl_flush_t f = *flush;
    char *buf = NULL, errstr[256];
    size_t len;
    int rc;
    f.user = rec.flush.user = (fl_slice_t){user, strlen(user)};
    if (role)
        rec.role = (fl_slice_t){role, strlen(role)};
    if (fl_wire_encode_rec_flush(&rec, &buf, &len, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "encode flush: %s\n", errstr);
        return -1;
    }
    rc = fl_ktest_produce_raw(rk, prefix, FL_TOPIC_COMMANDS, f.doc.ptr, f.doc.len, buf, len);
    free(buf);
    return rc;
}

long fl_ktest_read_all(const char *bootstrap, const char *prefix, fl_topic_kind_t kind,
                       fl_ktest_record_fn fn, void *opaque)
{
    char topic[FL_TOPIC_NAME_MAX + 1], errstr[512], group[128];
    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md = NULL;
    long count = 0;
    int nparts = 0;

    if (fl_topic_name(prefix, kind, topic, sizeof topic) != 0)
        return -1;
    {
        const fl_kafka_kv_t defaults[] = {
            {"group.id", fl_test_unique("reader", group, sizeof group)},
            {"isolation.level", "read_committed"},
            {"enable.auto.commit", "false"},
            {NULL, NULL},
        };
        fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                              .what = "test reader",
                              .bootstrap = bootstrap,
                              .defaults = defaults};
        if (!(rk = fl_kafka_new(&ks, errstr, sizeof errstr))) {
            fprintf(stderr, "fl_ktest_read_all: %s\n", errstr);
            return -1;
        }
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0 && md->topic_cnt == 1)
        nparts = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    for (int p = 0; p < nparts && count >= 0; p++) {
        int64_t lo, hi;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000) != 0) {
            count = -1;
        } else if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
            rd_kafka_assign(rk, parts);
            int64_t deadline = fl_test_now_ms() + 60000;
            for (;;) {
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
                if (msg && !msg->err) {
                    count++;
                    if (fn && fn(opaque, p, msg->offset, msg) != 0) {
                        rd_kafka_message_destroy(msg);
                        break;
                    }
                }
                if (msg)
                    rd_kafka_message_destroy(msg);
                rd_kafka_position(rk, parts);
                if (parts->elems[0].offset >= hi)
                    break;
                if (fl_test_now_ms() > deadline) {
                    fprintf(stderr, "fl_ktest_read_all: %s [%d] stuck at %lld of %lld\n", topic,
                            p, (long long)parts->elems[0].offset, (long long)hi);
                    count = -1;
                    break;
                }
            }
            rd_kafka_assign(rk, NULL);
        }
        rd_kafka_topic_partition_list_destroy(parts);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return count;
}

long fl_ktest_count(const char *bootstrap, const char *prefix, fl_topic_kind_t kind)
{
    return fl_ktest_read_all(bootstrap, prefix, kind, NULL, NULL);
}
