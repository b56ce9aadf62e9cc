/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_parts: the events partitions this gateway follows. Per partition: its
 * state (not followed, being assigned, followed), the generation of the
 * last (un)assignment asked for, how many documents need it, when a flush
 * last went through it, how many outcomes of flushes published through it
 * are still awaited, and the flushes held until it is followed.
 *
 * Why flushes are held: an outcome can only be received if the partition
 * it lands in was followed before the flush was produced (a partition is
 * assigned at its end). So a flush is produced only once its document's
 * partition is followed; until then it waits here, in order. A partition
 * stays followed while a document needs it, a flush went through it
 * recently, or an outcome is awaited on it (up to GW_AWAIT_MAX_US).
 *
 * Below it, Kafka is reached through a small io table (assign, produce)
 * given at construction: the server wires gw_kafka in, tests a fake.
 * Above it, the documents learn that a partition became followed through
 * the on_ready callback (called before the held flushes go, so a sync
 * produced then precedes them); failed flushes are answered through the
 * origin registry.
 *
 * Holding is bounded (gw_parts_limits): in bytes over all partitions (a
 * flush beyond is refused at once) and in time (a flush held longer is
 * refused by the tick), both with `unavailable` and retry_after_ms through
 * the origin registry, so memory stays bounded through an outage and no
 * flush is published long after its sender gave up. While io.writable says
 * Kafka cannot be written to (the gateway's probe, gw_kafka_ok), a flush is
 * refused at once the same way rather than after the producer's
 * message.timeout.ms.
 *
 * @locality lws service thread.
 */
#ifndef GW_PARTS_H
#define GW_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/value.h"
#include "gw_origins.h"

#define GW_AWAIT_MAX_US (15ll * 60 * 1000000) /* longest a partition is kept for outcomes */

typedef struct gw_parts_s gw_parts_t;

typedef enum gw_part_state_e {
    GW_PART_NONE = 0,
    GW_PART_ASSIGNING, /* requested, waiting for the consumer thread */
    GW_PART_ASSIGNED,
} gw_part_state_t;

/* Kafka as the partitions need it (gw_kafka_assign, gw_kafka_produce to
 * commands). produce: 0, or an error with buf still the caller's. */
typedef struct gw_parts_io_s {
    void *ctx;
    void (*assign)(void *ctx, int32_t partition, uint32_t gen, bool on);
    int (*produce)(void *ctx, fl_slice_t key, char *buf, size_t len, void *opaque);
    bool (*writable)(void *ctx); /* optional: false while Kafka is unreachable */
} gw_parts_io_t;

typedef struct gw_parts_cbs_s {
    void *ctx;
    /* partition p is followed now (documents waiting for it may sync) */
    void (*on_ready)(void *ctx, int32_t partition);
} gw_parts_cbs_t;

/* count partitions (1..FL_MAX_PARTITIONS); a partition nobody needs is let
 * go idle_us after its last flush. io and cbs are copied; origins answers
 * failed flushes. NULL on OOM. */
gw_parts_t *gw_parts_new(int32_t count, int64_t idle_us, const gw_parts_io_t *io,
                         const gw_parts_cbs_t *cbs, gw_origins_t *origins);
/* Bounds what is held: max_bytes over all partitions, each flush at most
 * max_us (defaults 8 MiB and 5 s; held.max.bytes, held.max.ms). */
void gw_parts_limits(gw_parts_t *parts, size_t max_bytes, int64_t max_us);
/* Frees held flushes without answering them. NULL is safe. */
void gw_parts_free(gw_parts_t *parts);

/* The events partition of a doc (murmur2, like every producer). */
int32_t gw_parts_of(const gw_parts_t *parts, fl_slice_t doc);
gw_part_state_t gw_parts_state(const gw_parts_t *parts, int32_t p);
/* True when p is followed; else asks for it (once) and on_ready follows. */
bool gw_parts_follow(gw_parts_t *parts, int32_t p);
/* Lets p go now (unassigned), whatever needs it; tests and shutdown. */
void gw_parts_release(gw_parts_t *parts, int32_t p);
/* A document that needs p appeared (+1) or went (-1). */
void gw_parts_docs(gw_parts_t *parts, int32_t p, int delta);

/* Publishes a flush record (buf, len; ownership passes in every case)
 * keyed by key once key's partition is followed, so that its outcome
 * cannot be missed; until then it is held. inf is the delivery opaque: a
 * failure, now or later, is answered through the origin registry. */
void gw_parts_publish(gw_parts_t *parts, fl_slice_t key, char *buf, size_t len,
                      gw_inflight_t *inf);
/* Produces a record that awaits nothing (a sync) keyed by key: 0, or the
 * Kafka error (buf is still the caller's). */
int gw_parts_send(gw_parts_t *parts, fl_slice_t key, char *buf, size_t len);

/* The consumer followed p (generation gen): stale answers are ignored;
 * else on_ready, then the held flushes are produced, oldest first. */
void gw_parts_on_assigned(gw_parts_t *parts, int32_t p, uint32_t gen);
/* An outcome of a flush this gateway published came back on p. */
void gw_parts_on_outcome(gw_parts_t *parts, int32_t p);
/* A delivery report (opaque: a gw_inflight_t, or NULL for a sync): a
 * failed flush is no longer awaited, then its origin is answered. */
void gw_parts_on_delivery(gw_parts_t *parts, void *opaque, int err);
/* Refuses held flushes past their time; lets go of partitions nobody
 * needs. */
void gw_parts_tick(gw_parts_t *parts, int64_t now_us);

/* For tests and metrics: the generation last asked for, flushes held,
 * outcomes awaited. */
uint32_t gw_parts_gen(const gw_parts_t *parts, int32_t p);
size_t gw_parts_held(const gw_parts_t *parts, int32_t p);
uint32_t gw_parts_awaited(const gw_parts_t *parts, int32_t p);

#endif
