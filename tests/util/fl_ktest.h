/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka helpers for tests against the real broker: a fresh topic set under
 * a unique prefix, producing flush records the way a gateway does, and
 * reading a whole topic back (read_committed) in offset order.
 */
#ifndef FL_KTEST_H
#define FL_KTEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "flushline/flush.h"
#include "flushline/topics.h"
#include "flushline/wire.h"

/* Creates the four topics for prefix with n partitions. 0 or -1. */
int fl_ktest_topics(const char *bootstrap, const char *prefix, int partitions);

/* Delivery reports of a test producer: records the broker acknowledged and
 * records librdkafka gave up on (each failure is also printed). A record is
 * in the topic only once delivered: count what a topic must hold from here,
 * not from produce calls. */
typedef struct fl_ktest_delivery_s {
    _Atomic long delivered;
    _Atomic long failed;
} fl_ktest_delivery_t;

/* An idempotent producer (murmur2_random partitioner). Failed deliveries
 * are printed to stderr; with dr (caller-owned, outliving the handle) they
 * are also counted, as are successful ones. */
rd_kafka_t *fl_ktest_producer(const char *bootstrap);
rd_kafka_t *fl_ktest_producer_dr(const char *bootstrap, fl_ktest_delivery_t *dr);

/* Produces a flush record (gateway form: user, gw, origin) keyed by doc to
 * <prefix>.commands; raw variants produce arbitrary bytes. 0 or -1. */
int fl_ktest_produce_flush(rd_kafka_t *rk, const char *prefix, const fl_flush_t *flush,
                           const char *user, const char *gw, uint64_t origin);
/* As fl_ktest_produce_flush, with the connection's role in the record
 * (NULL: none). */
int fl_ktest_produce_flush_role(rd_kafka_t *rk, const char *prefix, const fl_flush_t *flush,
                                const char *user, const char *role, const char *gw,
                                uint64_t origin);
int fl_ktest_produce_raw(rd_kafka_t *rk, const char *prefix, fl_topic_kind_t kind,
                         const char *key, size_t keylen, const void *val, size_t len);

/* Called for every record read, in offset order per partition. Return
 * non-zero to stop. */
typedef int (*fl_ktest_record_fn)(void *opaque, int32_t partition, int64_t offset,
                                  const rd_kafka_message_t *msg);

/* Reads every partition of <prefix>.<kind> from the beginning up to the
 * high watermark (read_committed). Returns records read, or -1. */
long fl_ktest_read_all(const char *bootstrap, const char *prefix, fl_topic_kind_t kind,
                       fl_ktest_record_fn fn, void *opaque);

/* Counts committed records of <prefix>.<kind> (all partitions). */
long fl_ktest_count(const char *bootstrap, const char *prefix, fl_topic_kind_t kind);

#endif
