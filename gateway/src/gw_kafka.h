/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_kafka: the gateway's Kafka side. One idempotent producer for commands
 * (flushes, syncs) and signals, served from the lws service thread
 * (gw_kafka_poll runs its delivery reports there, through the on_delivery
 * callback given at construction). One assign-only, read_committed
 * consumer on the events and signals partitions the service thread asks
 * for, run by a thread of its own: it decodes records and hands them to
 * the service thread through a queue (common/queue.h), whose wake callback
 * (on_wake) is given at construction too.
 *
 * @locality gw_kafka_new/free: main thread; produce, poll, flush, assign,
 * take: lws service thread; the consumer thread is internal; gw_kafka_ok:
 * any thread.
 */
#ifndef GW_KAFKA_H
#define GW_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/queue.h"
#include "flushline/topics.h"
#include "flushline/wire.h"
#include "gw.h"

typedef struct gw_kafka_s gw_kafka_t;

/* What the consumer thread hands over. */
enum { GW_EV_RECORD = 1, GW_EV_ASSIGNED = 2 };
typedef struct gw_event_s {
    fl_queue_item_t link; /* weight: rawlen */
    int kind;
    int topic; /* fl_topic_kind_t */
    int32_t partition;
    uint32_t gen;
    int64_t ts_ms;      /* the record's Kafka timestamp (wall clock) */
    uint64_t committed; /* its FL_EVENTS_HDR_COMMITTED header; 0: none */
    int64_t queued_us;  /* monotonic: when the consumer thread queued it */
    fl_arena_t *arena;
    fl_wire_msg_t msg;
    char *raw; /* the record value (outcomes: kept in the window) */
    size_t rawlen;
} gw_event_t;

typedef struct gw_kafka_cbs_s {
    void *ctx;
    /* A delivery report (service thread, from gw_kafka_poll): opaque as
     * given to gw_kafka_produce, err 0 when published. */
    void (*on_delivery)(void *ctx, void *opaque, int err);
    /* The consumer thread queued events on an empty queue: wake the
     * service thread (must be safe from another thread). */
    void (*on_wake)(void *ctx);
} gw_kafka_cbs_t;

/* Starts the producer, checks the topics, starts the consumer and its
 * thread. id is this gateway's id (sync replies for other gateways are
 * skipped); cfg and cbs are copied or kept by reference (cfg). NULL with
 * errstr on any problem. */
gw_kafka_t *gw_kafka_new(const gw_config_t *cfg, fl_slice_t id, const gw_kafka_cbs_t *cbs,
                         char *errstr, size_t errstr_size);
/* Stops the consumer thread, purges the producer (last delivery reports
 * run: their opaques are freed by on_delivery) and frees queued events.
 * NULL is safe. */
void gw_kafka_free(gw_kafka_t *kafka);
/* Produces buf (ownership passes to librdkafka on success; on failure the
 * caller still owns it) keyed by key. opaque comes back in on_delivery. 0
 * or the librdkafka error. */
int gw_kafka_produce(gw_kafka_t *kafka, fl_topic_kind_t topic, fl_slice_t key, char *buf,
                     size_t len, void *opaque);
/* Serves delivery reports (calls on_delivery). */
void gw_kafka_poll(gw_kafka_t *kafka);
/* Waits up to timeout_ms for every produced message. 0 when none is left. */
int gw_kafka_flush(gw_kafka_t *kafka, int timeout_ms);
/* Asks the consumer thread to assign (on) or unassign a partition of
 * events and signals; on assignment it answers GW_EV_ASSIGNED with gen.
 * Never fails and allocates nothing: the newest request per partition is
 * kept (an older one not applied yet is dropped), and one that fails in the
 * consumer thread (broker, memory) is retried until it is done. */
void gw_kafka_assign(gw_kafka_t *kafka, int32_t partition, uint32_t gen, bool on);
/* Takes every queued event (a chain, oldest first, see gw_event_next). */
gw_event_t *gw_kafka_take(gw_kafka_t *kafka);
/* Takes the oldest queued events, in order, while their records add up to
 * at most max_bytes (always one at least); *more tells whether some are
 * left. */
gw_event_t *gw_kafka_take_some(gw_kafka_t *kafka, size_t max_bytes, bool *more);
/* The event after ev in a taken chain, or NULL. */
gw_event_t *gw_event_next(const gw_event_t *ev);
void gw_event_free(gw_event_t *ev); /* NULL is safe */
/* Whether Kafka answers (kafka/probe.h: the commands topic's metadata every
 * second, every partition led; false after two failed probes, true again
 * at the first good one): /readyz. */
bool gw_kafka_ok(const gw_kafka_t *kafka);

#endif
