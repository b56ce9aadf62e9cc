/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_out: the processor's producer: events, snapshots, checkpoints. See
 * pr_out.h for the contract; comments here say why.
 */
#include "pr_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/history.h"
#include "flushline/topics.h"
#include "flushline/txn.h"
#include "flushline/log.h"
#include "flushline/wire.h"

struct pr_out_s {
    rd_kafka_t *producer;
    const pr_config_t *cfg;
    fl_part_t *const *parts;
    pr_metrics_t *m;
    fl_arena_t *arena;
    uint64_t snapshot_every;
    char t_events[FL_TOPIC_NAME_MAX + 1];
    char t_snapshots[FL_TOPIC_NAME_MAX + 1];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    pr_out_t *out = opaque;
    if (msg->err) {
        fl_warn("delivery to %s [%d] failed: %s", rd_kafka_topic_name(msg->rkt), msg->partition,
                rd_kafka_err2str(msg->err));
        return;
    }
    /* Only outcomes carry the opaque: they tell where the next event of a
     * partition will land (exact after a flush, when snapshots read it). */
    if (msg->_private != (void *)out)
        return;
    if (msg->partition >= 0 && msg->partition < FL_MAX_PARTITIONS && out->parts[msg->partition])
        fl_part_events_reach(out->parts[msg->partition], msg->offset + 1);
}

static rd_kafka_t *new_producer(pr_out_t *out, char *errstr, size_t errstr_size)
{
    const pr_config_t *cfg = out->cfg;
    fl_txn_producer_spec_t ps = {.what = "processor producer",
                                 .bootstrap = cfg->bootstrap,
                                 .transactional_id = cfg->transactional_id,
                                 .transaction_timeout_ms = cfg->transaction_timeout_ms,
                                 .linger_ms = 2,
                                 .props = &cfg->kafka,
                                 .opaque = out,
                                 .on_delivery = on_delivery};
    return fl_txn_producer_new(&ps, errstr, errstr_size);
}

/* Drops what the producer still holds (it belongs to an aborted
 * transaction) and destroys it. */
static void destroy_producer(rd_kafka_t *rk)
{
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk, 0);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

int pr_out_renew(pr_out_t *out, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = new_producer(out, errstr, errstr_size);
    if (!rk)
        return -1;
    destroy_producer(out->producer);
    out->producer = rk;
    return 0;
}

void pr_out_free(pr_out_t *out)
{
    if (out && out->producer)
        rd_kafka_destroy(out->producer);
    if (out)
        fl_arena_free(out->arena);
    free(out);
}

pr_out_t *pr_out_new(const pr_config_t *cfg, fl_part_t *const *parts, pr_metrics_t *m,
                     char *errstr, size_t errstr_size)
{
    pr_out_t *out = calloc(1, sizeof *out);

    if (!out || !(out->arena = fl_arena_new(1 << 16))) {
        free(out);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    out->parts = parts;
    out->m = m;
    out->snapshot_every = (uint64_t)cfg->snapshot_every_versions;
    if (fl_topic_name(cfg->prefix, FL_TOPIC_EVENTS, out->t_events, sizeof out->t_events) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_SNAPSHOTS, out->t_snapshots,
                      sizeof out->t_snapshots)) {
        snprintf(errstr, errstr_size, "invalid topic prefix \"%s\"", cfg->prefix);
        goto fail;
    }
    out->cfg = cfg;
    if (!(out->producer = new_producer(out, errstr, errstr_size)))
        goto fail;
    return out;
fail:
    pr_out_free(out);
    return NULL;
}

rd_kafka_t *pr_out_producer(const pr_out_t *out)
{
    return out->producer;
}

/* One produce call; hdr (may be NULL) is the FL_EVENTS_HDR_COMMITTED value. */
static rd_kafka_resp_err_t produce_once(pr_out_t *out, const char *topic, int32_t p,
                                        fl_slice_t key, char *val, size_t len, int flags,
                                        void *opaque, const char *hdr)
{
    if (!hdr)
        return rd_kafka_producev(out->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                 RD_KAFKA_V_KEY(key.ptr, key.len), RD_KAFKA_V_VALUE(val, len),
                                 RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_OPAQUE(opaque),
                                 RD_KAFKA_V_END);
    return rd_kafka_producev(out->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                             RD_KAFKA_V_KEY(key.ptr, key.len), RD_KAFKA_V_VALUE(val, len),
                             RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_OPAQUE(opaque),
                             RD_KAFKA_V_HEADER(FL_EVENTS_HDR_COMMITTED, hdr, (ssize_t)strlen(hdr)),
                             RD_KAFKA_V_END);
}

/* Produces val (ownership per flags); retries while the queue is full. */
static int produce(pr_out_t *out, const char *topic, int32_t p, fl_slice_t key, char *val,
                   size_t len, int flags, void *opaque, const char *hdr)
{
    for (;;) {
        rd_kafka_resp_err_t err = produce_once(out, topic, p, key, val, len, flags, opaque, hdr);
        if (!err)
            return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(out->producer, 10);
            continue;
        }
        fl_error("produce to %s [%d]: %s", topic, p, rd_kafka_err2str(err));
        if (flags & RD_KAFKA_MSG_F_FREE)
            free(val);
        return -1;
    }
}

int pr_out_event(pr_out_t *out, int32_t p, fl_slice_t key, char *rec, size_t len, bool copy,
                 bool outcome, uint64_t committed)
{
    char hdr[24];
    fl_events_committed_format(committed, hdr, sizeof hdr);
    return produce(out, out->t_events, p, key, rec, len,
                   copy ? RD_KAFKA_MSG_F_COPY : RD_KAFKA_MSG_F_FREE, outcome ? out : NULL, hdr);
}

static int snapshot_doc(pr_out_t *out, fl_part_t *part, fl_part_doc_t *ent)
{
    fl_slice_t id = fl_doc_id(ent->doc);
    char *buf = NULL, errstr[256];
    size_t len;

    /* Called between records (commit time): the arena holds nothing live. */
    fl_arena_reset(out->arena);
    if (fl_history_encode_snapshot(ent->doc, fl_part_events_next(part), out->arena, &buf, &len,
                                   errstr, sizeof errstr) != 0) {
        fl_error("encoding the snapshot of %.*s: %s", (int)id.len, id.ptr, errstr);
        return -1;
    }
    if (produce(out, out->t_snapshots, fl_part_id(part), id, buf, len, RD_KAFKA_MSG_F_FREE,
                NULL, NULL) != 0)
        return -1;
    fl_part_doc_snapshotted(ent);
    fl_counter_inc(out->m->snapshots);
    return 0;
}

/* The checkpoint carries the rule sets in force (part.h). */
static int checkpoint(pr_out_t *out, fl_part_t *part)
{
    char *buf = NULL, errstr[256];
    size_t len;
    fl_arena_reset(out->arena);
    if (fl_part_checkpoint_record(part, fl_part_events_next(part), out->arena, &buf, &len,
                                  errstr, sizeof errstr) != 0) {
        fl_error("encoding a checkpoint: %s", errstr);
        return -1;
    }
    if (produce(out, out->t_snapshots, fl_part_id(part), FL_WIRE_CHECKPOINT_KEY, buf, len,
                RD_KAFKA_MSG_F_FREE, NULL, NULL) != 0)
        return -1;
    fl_counter_inc(out->m->checkpoints);
    return 0;
}

int pr_out_snapshots(pr_out_t *out, fl_part_t *part, bool round)
{
    for (uint32_t i = 0; i < fl_part_count(part); i++) {
        fl_part_doc_t *ent = fl_part_at(part, i);
        if (!ent->dirty)
            continue;
        if (!round && fl_doc_version(ent->doc) - ent->snapshot_version < out->snapshot_every)
            continue;
        if (snapshot_doc(out, part, ent) != 0)
            return -1;
    }
    fl_part_snapshot_done(part);
    if (round && checkpoint(out, part) != 0)
        return -1;
    return 0;
}
