/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_origins: the origin registry (see gw_origins.h). A hash map from the
 * 8 bytes of the id (inside the origin, so keys cost nothing) to the
 * origin.
 *
 * @locality lws service thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>

#include "flushline/hmap.h"
#include "gw_origins.h"

struct gw_origins_s {
    fl_hmap_t *map; /* id (8 bytes) -> gw_origin_t */
    uint64_t next;
    fl_counter_t *produce_errors;
    bool closing;
};

gw_origins_t *gw_origins_new(uint64_t base, fl_counter_t *produce_errors)
{
    gw_origins_t *reg = calloc(1, sizeof *reg);
    if (!reg || !(reg->map = fl_hmap_new())) {
        free(reg);
        return NULL;
    }
    reg->next = base & ~(uint64_t)GW_ORIGIN_FORM_JSON;
    reg->produce_errors = produce_errors;
    return reg;
}

void gw_origins_free(gw_origins_t *reg)
{
    if (!reg)
        return;
    fl_hmap_free(reg->map);
    free(reg);
}

int gw_origins_add(gw_origins_t *reg, gw_origin_t *o, const gw_origin_ops_t *ops)
{
    o->id = reg->next += 2; /* even: bit 0 is the form bit of records */
    o->ops = ops;
    return fl_hmap_put(reg->map, &o->id, sizeof o->id, o) == 0 ? 0 : -ENOMEM;
}

void gw_origins_del(gw_origins_t *reg, gw_origin_t *o)
{
    if (fl_hmap_get(reg->map, &o->id, sizeof o->id) == o)
        fl_hmap_del(reg->map, &o->id, sizeof o->id);
}

gw_origin_t *gw_origins_get(gw_origins_t *reg, uint64_t id)
{
    id &= ~(uint64_t)GW_ORIGIN_FORM_JSON; /* a record's origin carries the form */
    return fl_hmap_get(reg->map, &id, sizeof id);
}

size_t gw_origins_count(const gw_origins_t *reg)
{
    return fl_hmap_count(reg->map);
}

void gw_origins_failed(gw_origins_t *reg, gw_inflight_t *inf, uint16_t code,
                       uint32_t retry_after_ms, const char *reason)
{
    gw_origin_t *o;
    if (!inf)
        return;
    if (!reg->closing) {
        if (reg->produce_errors)
            fl_counter_inc(reg->produce_errors);
        if ((o = gw_origins_get(reg, inf->origin)))
            o->ops->on_failed(o, inf, code, retry_after_ms, reason);
    }
    free(inf);
}

void gw_origins_delivered(gw_origins_t *reg, gw_inflight_t *inf, int err)
{
    char reason[256];
    gw_origin_t *o;
    if (!inf)
        return;
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        /* resending the same bytes can never succeed */
        gw_origins_failed(reg, inf, FL_CODE_LIMIT, 0,
                          "the flush is larger than the broker or producer accepts "
                          "(message.max.bytes)");
    } else if (err) {
        snprintf(reason, sizeof reason, "broker unavailable (%s): retry the same seq",
                 rd_kafka_err2name((rd_kafka_resp_err_t)err));
        gw_origins_failed(reg, inf, FL_CODE_UNAVAILABLE, GW_RETRY_AFTER_MS, reason);
    } else {
        o = reg->closing ? NULL : gw_origins_get(reg, inf->origin);
        if (o && o->ops->on_published)
            o->ops->on_published(o, inf);
        free(inf);
    }
}

/* Draining closes connections, which unregisters them: deleting the
 * current entry while iterating is allowed (hmap.h). */
void gw_origins_drain(gw_origins_t *reg, uint16_t code, const char *reason)
{
    gw_origin_t *o;
    FL_HMAP_FOREACH(reg->map, it, o)
        if (o->ops->on_drain)
            o->ops->on_drain(o, code, reason);
}

void gw_origins_closing(gw_origins_t *reg)
{
    reg->closing = true;
}
