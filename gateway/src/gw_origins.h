/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_origins: the registry of what waits for the answers to flushes (a
 * WebSocket connection, an HTTP request), by origin id, with a small table
 * of callbacks each. Whoever learns something about a flush (its delivery
 * report, its outcome) looks its origin up here and calls the origin's
 * callbacks: no module below the connections names a connection or an HTTP
 * request, and nothing switches on what kind of origin it is.
 *
 * An origin id is even. The "origin" of a flush record is the id with bit 0
 * set when the flush came in a JSON frame: its outcome (an answer) then
 * takes the form of the frame it answers, however the connection said
 * hello, with nothing kept per flush.
 *
 * Delivery reports: gw_origins_delivered maps a Kafka error to the nack
 * that answers the flush (MSG_SIZE_TOO_LARGE: `limit`, final; any other:
 * `unavailable` with retry_after_ms) and counts produce errors.
 *
 * @locality lws service thread.
 */
#ifndef GW_ORIGINS_H
#define GW_ORIGINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/flush.h"
#include "flushline/metrics.h"
#include "flushline/wire.h"

#define GW_RETRY_AFTER_MS 500 /* suggested retry delay when the broker is in trouble */
#define GW_ORIGIN_FORM_JSON 1u

typedef struct gw_origin_s gw_origin_t;
typedef struct gw_origins_s gw_origins_t;

/* A produced flush waiting for its delivery report (the message opaque). */
typedef struct gw_inflight_s {
    uint64_t origin;   /* tagged with the flush's form (gw_origin_tag) */
    int32_t partition; /* of the doc; -1 until produced (outcome awaited) */
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    size_t doclen;
    char doc[FL_DOC_ID_MAX];
} gw_inflight_t;

/* What an origin does with news of its flushes. on_outcome and on_failed
 * are required; on_published and on_drain may be NULL. */
typedef struct gw_origin_ops_s {
    /* The outcome of a flush of this origin; form: that of the flush's frame. */
    void (*on_outcome)(gw_origin_t *o, const fl_outcome_t *out, fl_wire_form_t form);
    /* A flush that will not be published: answer it with code and reason;
     * retry_after_ms > 0: the same seq may be resent (later seqs of its
     * key must wait for it), 0: final. */
    void (*on_failed)(gw_origin_t *o, const gw_inflight_t *inf, uint16_t code,
                      uint32_t retry_after_ms, const char *reason);
    /* A flush of this origin is in the log. */
    void (*on_published)(gw_origin_t *o, const gw_inflight_t *inf);
    /* The gateway drains: close with code (gw_origins_drain). */
    void (*on_drain)(gw_origin_t *o, uint16_t code, const char *reason);
} gw_origin_ops_t;

/* Embedded in the origin's own struct; set by gw_origins_add. */
struct gw_origin_s {
    uint64_t id; /* even */
    const gw_origin_ops_t *ops;
};

/* The record origin of a flush from origin id in form. */
static inline uint64_t gw_origin_tag(uint64_t id, fl_wire_form_t form)
{
    return id | (form == FL_WIRE_JSON ? GW_ORIGIN_FORM_JSON : 0);
}
/* The form of the flush a record origin (or an inflight's) stands for. */
static inline fl_wire_form_t gw_origin_form(uint64_t origin)
{
    return (origin & GW_ORIGIN_FORM_JSON) ? FL_WIRE_JSON : FL_WIRE_MSGPACK;
}

/* An empty registry. Ids start at base (made even): a per-instance base
 * keeps a restarted gateway with the same gateway.id from taking answers
 * meant for its predecessor. produce_errors (may be NULL) counts flushes
 * that could not be published. NULL on OOM. */
gw_origins_t *gw_origins_new(uint64_t base, fl_counter_t *produce_errors);
/* NULL is safe; the origins are their owners'. */
void gw_origins_free(gw_origins_t *reg);

/* Gives o a fresh id and registers it with ops. 0, or -ENOMEM (o is not
 * registered; its id is still set). */
int gw_origins_add(gw_origins_t *reg, gw_origin_t *o, const gw_origin_ops_t *ops);
/* Forgets o (registered or not). */
void gw_origins_del(gw_origins_t *reg, gw_origin_t *o);
/* An origin by id or by a record's tagged origin; NULL when gone. */
gw_origin_t *gw_origins_get(gw_origins_t *reg, uint64_t id);
size_t gw_origins_count(const gw_origins_t *reg);

/* A delivery report (err 0: published), or the error of a produce call
 * that failed: answers the flush's origin as described above and frees
 * inf. NULL is safe. */
void gw_origins_delivered(gw_origins_t *reg, gw_inflight_t *inf, int err);
/* A flush that will not be published: its origin's on_failed with code,
 * retry_after_ms and reason; counted; inf freed. NULL is safe. */
void gw_origins_failed(gw_origins_t *reg, gw_inflight_t *inf, uint16_t code,
                       uint32_t retry_after_ms, const char *reason);
/* Calls on_drain of every origin that has one. */
void gw_origins_drain(gw_origins_t *reg, uint16_t code, const char *reason);
/* From now on reports only free memory (the gateway is being freed). */
void gw_origins_closing(gw_origins_t *reg);

#endif
