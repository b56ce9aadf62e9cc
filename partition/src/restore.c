/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore: snapshots then events into a partition, a step at a time. See
 * restore.h for the contract; comments here say why.
 */
#include "flushline/restore.h"

#include <stdio.h>
#include <stdlib.h>

#include "flushline/log.h"

typedef enum phase_e { SNAPSHOTS, EVENTS, DONE } phase_t;

struct fl_restore_s {
    fl_part_t *part;
    fl_restore_spec_t spec;
    phase_t phase;
    fl_reader_t *rd;       /* the read of the current phase; NULL: not opened */
    fl_arena_t *arena;
    int64_t checkpoint;    /* -1: none seen */
    uint64_t events;
    int err;               /* a callback's error, with its text: */
    char errstr[256];
};

void fl_task_rec_of(const rd_kafka_message_t *msg, fl_task_rec_t *rec)
{
    rd_kafka_timestamp_type_t tstype;
    rec->key = (fl_slice_t){(const char *)msg->key, msg->key_len};
    rec->payload = msg->payload;
    rec->len = msg->len;
    rec->ts_ms = rd_kafka_message_timestamp(msg, &tstype);
}

void fl_restore_free(fl_restore_t *rs)
{
    if (rs) {
        fl_reader_close(rs->rd);
        fl_arena_free(rs->arena);
    }
    free(rs);
}

fl_restore_t *fl_restore_new(fl_part_t *part, const fl_restore_spec_t *spec)
{
    fl_restore_t *rs = calloc(1, sizeof *rs);
    if (!rs || !(rs->arena = fl_arena_new(1 << 16))) {
        free(rs);
        return NULL;
    }
    rs->part = part;
    rs->spec = *spec;
    rs->checkpoint = -1;
    return rs;
}

static int on_snapshot(void *opaque, const rd_kafka_message_t *msg)
{
    fl_restore_t *rs = opaque;
    int rc = fl_part_load_snapshot_rec(rs->part, msg->payload, msg->len, NULL, rs->arena,
                                       &rs->checkpoint, rs->errstr, sizeof rs->errstr);
    if (rc == FL_HISTORY_ERECORD) {
        fl_warn("skipped undecodable snapshot record %s [%d] @%lld: %s", rs->spec.snapshots,
                msg->partition, (long long)msg->offset, rs->errstr);
        return 0;
    }
    return rc < 0 ? rc : 0;
}

static int on_event(void *opaque, const rd_kafka_message_t *msg)
{
    fl_restore_t *rs = opaque;
    const fl_outcome_t *o;
    int rc = fl_part_replay_event_rec(rs->part, msg->payload, msg->len, msg->offset, rs->arena,
                                      &o, rs->errstr, sizeof rs->errstr);
    if (rc == FL_HISTORY_ERECORD) {
        fl_warn("skipped event %s [%d] @%lld: %s", rs->spec.events, msg->partition,
                (long long)msg->offset, rs->errstr);
        return 0;
    }
    if (rc == 0)
        rs->events++;
    if (rc >= 0)
        return 0;
    if (o)
        snprintf(rs->errstr, sizeof rs->errstr,
                 "replaying %.*s v%llu..v%llu from %s [%d] @%lld failed: %s", (int)o->doc.len,
                 o->doc.ptr, (unsigned long long)o->version_before,
                 (unsigned long long)o->version_after, rs->spec.events, msg->partition,
                 (long long)msg->offset, fl_history_strerror(rc));
    return rc;
}

static bool should_stop(void *opaque)
{
    fl_restore_t *rs = opaque;
    return rs->spec.should_stop && rs->spec.should_stop(rs->spec.opaque);
}

/* Opens the read of the current phase. 0 or an error. */
static int open_phase(fl_restore_t *rs, char *errstr, size_t errstr_size)
{
    bool snaps = rs->phase == SNAPSHOTS;
    fl_read_spec_t spec = {
        .topic = snaps ? rs->spec.snapshots : rs->spec.events,
        .partition = fl_part_id(rs->part),
        .from = snaps || rs->checkpoint < 0 ? 0 : rs->checkpoint,
        .to = FL_READER_END,
        .deadline_ms = rs->spec.deadline_ms,
        .should_stop = should_stop,
        .on_record = snaps ? on_snapshot : on_event,
        .opaque = rs,
        .what = "restore",
    };
    int rc;
    rs->rd = fl_reader_open(rs->spec.rk, &spec, &rc, errstr, errstr_size);
    return rs->rd ? 0 : rc;
}

int fl_restore_step(fl_restore_t *rs, int max_ms, char *errstr, size_t errstr_size)
{
    int rc;
    if (rs->phase == DONE)
        return 0;
    if (!rs->rd && (rc = open_phase(rs, errstr, errstr_size)) != 0)
        return rc;
    rc = fl_reader_step(rs->rd, max_ms, errstr, errstr_size);
    if (rc == FL_READER_MORE)
        return rc;
    if (rc < 0 && rs->errstr[0] && rc != FL_READER_ESTOPPED && rc != FL_READER_ETIMEDOUT &&
        rc != FL_READER_EKAFKA)
        snprintf(errstr, errstr_size, "%s", rs->errstr); /* the feed's reason */
    if (rc != 0)
        return rc < 0 ? rc : FL_HISTORY_ERECORD;
    if (rs->phase == EVENTS)
        fl_part_events_reach(rs->part, fl_reader_high(rs->rd));
    fl_reader_close(rs->rd);
    rs->rd = NULL;
    rs->phase = rs->phase == SNAPSHOTS ? EVENTS : DONE;
    return rs->phase == DONE ? 0 : FL_READER_MORE;
}

int64_t fl_restore_checkpoint(const fl_restore_t *rs)
{
    return rs->checkpoint < 0 ? 0 : rs->checkpoint;
}

uint64_t fl_restore_events(const fl_restore_t *rs)
{
    return rs->events;
}
