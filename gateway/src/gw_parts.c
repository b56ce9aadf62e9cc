/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_parts: the followed partitions and the flushes held for them (see
 * gw_parts.h).
 *
 * @locality lws service thread.
 */
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "flushline/clock.h"
#include "flushline/errors.h"
#include "flushline/limits.h"
#include "gw_fault.h"
#include "gw_parts.h"

/* A flush waiting for its partition to be followed. */
typedef struct held_s {
    struct held_s *next;
    char *buf;
    size_t len;
    int64_t at_us; /* when it was held */
    gw_inflight_t *inf;
} held_t;

typedef struct part_s {
    uint8_t state;      /* gw_part_state_t */
    uint32_t gen;       /* of the last (un)assignment asked for */
    uint32_t docs;      /* documents that need it */
    uint32_t await;     /* outcomes of flushes published through it, not back yet */
    int64_t used_us;    /* last flush routed through it */
    held_t *held, *held_tail; /* oldest first */
    size_t nheld, held_bytes;
} part_t;

struct gw_parts_s {
    int32_t count;
    int64_t idle_us;
    size_t held_max_bytes, held_bytes; /* over all partitions */
    int64_t held_max_us;
    gw_parts_io_t io;
    gw_parts_cbs_t cbs;
    gw_origins_t *origins;
    part_t part[]; /* count */
};

gw_parts_t *gw_parts_new(int32_t count, int64_t idle_us, const gw_parts_io_t *io,
                         const gw_parts_cbs_t *cbs, gw_origins_t *origins)
{
    gw_parts_t *parts;
    if (count < 1 || count > FL_MAX_PARTITIONS)
        return NULL;
    if (!(parts = calloc(1, sizeof *parts + (size_t)count * sizeof(part_t))))
        return NULL;
    parts->count = count;
    parts->idle_us = idle_us;
    parts->held_max_bytes = 8u << 20;
    parts->held_max_us = 5 * 1000000ll;
    parts->io = *io;
    parts->cbs = *cbs;
    parts->origins = origins;
    return parts;
}

void gw_parts_limits(gw_parts_t *parts, size_t max_bytes, int64_t max_us)
{
    parts->held_max_bytes = max_bytes;
    parts->held_max_us = max_us;
}

void gw_parts_free(gw_parts_t *parts)
{
    if (!parts)
        return;
    for (int32_t p = 0; p < parts->count; p++)
        while (parts->part[p].held) {
            held_t *h = parts->part[p].held;
            parts->part[p].held = h->next;
            free(h->buf);
            free(h->inf);
            free(h);
        }
    free(parts);
}

int32_t gw_parts_of(const gw_parts_t *parts, fl_slice_t doc)
{
    int32_t p = rd_kafka_msg_partitioner_murmur2_random(NULL, doc.ptr, doc.len, parts->count,
                                                        NULL, NULL);
    return p < 0 || p >= parts->count ? 0 : p;
}

static part_t *part(const gw_parts_t *parts, int32_t p)
{
    return p >= 0 && p < parts->count ? (part_t *)&parts->part[p] : NULL;
}

gw_part_state_t gw_parts_state(const gw_parts_t *parts, int32_t p)
{
    part_t *pt = part(parts, p);
    return pt ? (gw_part_state_t)pt->state : GW_PART_NONE;
}

bool gw_parts_follow(gw_parts_t *parts, int32_t p)
{
    part_t *pt = part(parts, p);
    if (!pt)
        return false;
    if (pt->state == GW_PART_NONE) {
        pt->state = GW_PART_ASSIGNING;
        parts->io.assign(parts->io.ctx, p, ++pt->gen, true);
    }
    return pt->state == GW_PART_ASSIGNED;
}

void gw_parts_release(gw_parts_t *parts, int32_t p)
{
    part_t *pt = part(parts, p);
    if (!pt)
        return;
    pt->await = 0;
    pt->state = GW_PART_NONE;
    parts->io.assign(parts->io.ctx, p, ++pt->gen, false);
}

void gw_parts_docs(gw_parts_t *parts, int32_t p, int delta)
{
    part_t *pt = part(parts, p);
    if (pt && (delta > 0 || pt->docs > 0))
        pt->docs += (uint32_t)delta;
}

/* Produces a held flush. Its partition is followed from an offset read
 * before this call, so its outcome cannot be missed; it counts as awaited
 * until the outcome (or a delivery failure) comes back. */
static void produce_held(gw_parts_t *parts, held_t *h, int32_t p)
{
    int rc = parts->io.produce(parts->io.ctx, (fl_slice_t){h->inf->doc, h->inf->doclen}, h->buf,
                               h->len, h->inf);
    if (rc != 0) {
        free(h->buf);
        gw_origins_delivered(parts->origins, h->inf, rc); /* nacks by the error, frees inf */
    } else {
        h->inf->partition = p;
        parts->part[p].await++;
    }
    free(h);
}

void gw_parts_publish(gw_parts_t *parts, fl_slice_t key, char *buf, size_t len,
                      gw_inflight_t *inf)
{
    int32_t p = gw_parts_of(parts, key);
    part_t *pt = &parts->part[p];
    held_t *h;
    if (parts->io.writable && !parts->io.writable(parts->io.ctx)) {
        free(buf);
        gw_origins_failed(parts->origins, inf, FL_CODE_UNAVAILABLE, GW_RETRY_AFTER_MS,
                          "Kafka is unreachable: retry the same seq");
        return;
    }
    if (pt->state != GW_PART_ASSIGNED && parts->held_bytes + len > parts->held_max_bytes) {
        free(buf);
        gw_origins_failed(parts->origins, inf, FL_CODE_UNAVAILABLE, GW_RETRY_AFTER_MS,
                          "too many flushes wait for their partition: retry the same seq");
        return;
    }
    h = GW_FAULT(GW_FAULT_HELD) ? NULL : malloc(sizeof *h);
    if (!h) {
        /* our resource exhaustion, not the broker's: internal (the same
         * seq may be sent again) */
        free(buf);
        gw_origins_failed(parts->origins, inf, FL_CODE_INTERNAL, GW_RETRY_AFTER_MS,
                          "out of memory in the gateway: retry the same seq");
        return;
    }
    h->next = NULL;
    h->buf = buf;
    h->len = len;
    h->inf = inf;
    h->at_us = pt->used_us = fl_clock_mono_us();
    if (pt->state == GW_PART_ASSIGNED) {
        produce_held(parts, h, p);
        return;
    }
    if (pt->held_tail)
        pt->held_tail->next = h;
    else
        pt->held = h;
    pt->held_tail = h;
    pt->nheld++;
    pt->held_bytes += len;
    parts->held_bytes += len;
    gw_parts_follow(parts, p);
}

int gw_parts_send(gw_parts_t *parts, fl_slice_t key, char *buf, size_t len)
{
    return parts->io.produce(parts->io.ctx, key, buf, len, NULL);
}

void gw_parts_on_assigned(gw_parts_t *parts, int32_t p, uint32_t gen)
{
    part_t *pt = part(parts, p);
    held_t *h;
    if (!pt || pt->gen != gen || pt->state != GW_PART_ASSIGNING)
        return; /* a stale answer: a newer request is on its way */
    pt->state = GW_PART_ASSIGNED;
    if (parts->cbs.on_ready)
        parts->cbs.on_ready(parts->cbs.ctx, p);
    /* held flushes, oldest first */
    h = pt->held;
    parts->held_bytes -= pt->held_bytes;
    pt->held = pt->held_tail = NULL;
    pt->nheld = pt->held_bytes = 0;
    while (h) {
        held_t *next = h->next;
        produce_held(parts, h, p);
        h = next;
    }
}

void gw_parts_on_outcome(gw_parts_t *parts, int32_t p)
{
    part_t *pt = part(parts, p);
    if (pt && pt->await > 0)
        pt->await--;
}

void gw_parts_on_delivery(gw_parts_t *parts, void *opaque, int err)
{
    gw_inflight_t *inf = opaque;
    if (!inf)
        return; /* a sync: its retry is the document's timer */
    if (err)
        gw_parts_on_outcome(parts, inf->partition); /* no outcome will come */
    gw_origins_delivered(parts->origins, inf, err);
}

/* Refuses p's held flushes older than held.max.ms (oldest first). */
static void expire_held(gw_parts_t *parts, part_t *pt, int64_t now_us)
{
    while (pt->held && now_us - pt->held->at_us > parts->held_max_us) {
        held_t *h = pt->held;
        if (!(pt->held = h->next))
            pt->held_tail = NULL;
        pt->nheld--;
        pt->held_bytes -= h->len;
        parts->held_bytes -= h->len;
        free(h->buf);
        gw_origins_failed(parts->origins, h->inf, FL_CODE_UNAVAILABLE, GW_RETRY_AFTER_MS,
                          "its partition is not followed yet (Kafka is slow or away): retry "
                          "the same seq");
        free(h);
    }
}

void gw_parts_tick(gw_parts_t *parts, int64_t now_us)
{
    for (int32_t p = 0; p < parts->count; p++)
        expire_held(parts, &parts->part[p], now_us);
    /* a partition nobody needs (no document, no recent flush) is let go */
    for (int32_t p = 0; p < parts->count; p++) {
        part_t *pt = &parts->part[p];
        if (pt->state == GW_PART_ASSIGNED && pt->docs == 0 &&
            now_us - pt->used_us > parts->idle_us + 60 * 1000000ll &&
            (pt->await == 0 || now_us - pt->used_us > GW_AWAIT_MAX_US))
            /* a re-assignment starts at the then end: an outcome still
             * awaited would be skipped, so awaited outcomes keep it */
            gw_parts_release(parts, p);
    }
}

uint32_t gw_parts_gen(const gw_parts_t *parts, int32_t p)
{
    part_t *pt = part(parts, p);
    return pt ? pt->gen : 0;
}

size_t gw_parts_held(const gw_parts_t *parts, int32_t p)
{
    part_t *pt = part(parts, p);
    return pt ? pt->nheld : 0;
}

uint32_t gw_parts_awaited(const gw_parts_t *parts, int32_t p)
{
    part_t *pt = part(parts, p);
    return pt ? pt->await : 0;
}
