/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doc_at: one document's past from Kafka (see doc_at.h): the snapshots
 * partition read for the newest usable snapshot, the events partition read
 * from it, each outcome of the document through the restore feed.
 */
#include "flushline/doc_at.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "flushline/reader.h"

const char *fl_at_strerror(int err)
{
    if (err == FL_AT_ELIMIT)
        return "over the bound of records or bytes read";
    if (err <= FL_READER_ENOMEM && err >= FL_READER_ETIMEDOUT)
        return fl_reader_strerror(err);
    return fl_history_strerror(err);
}

void fl_at_done(fl_at_t *at)
{
    fl_part_free(at->docs);
    fl_arena_free(at->arena);
    at->docs = NULL;
    at->arena = NULL;
    at->ent = NULL;
}

/* Counts a record against the bounds: 0 or FL_AT_ELIMIT. */
static int count(fl_at_t *at, const rd_kafka_message_t *msg)
{
    at->records++;
    at->bytes += msg->len + msg->key_len;
    if ((at->max_records && at->records > at->max_records) ||
        (at->max_bytes && at->bytes > at->max_bytes)) {
        snprintf(at->what, sizeof at->what,
                 "reading %s's history needs more than %llu records or %llu bytes",
                 at->doc.len < 200 ? "the document" : "it", (unsigned long long)at->max_records,
                 (unsigned long long)at->max_bytes);
        return FL_AT_ELIMIT;
    }
    return 0;
}

static void skip(fl_at_t *at, const char *topic, const rd_kafka_message_t *msg, const char *why)
{
    if (at->on_skip)
        at->on_skip(at->opaque, topic, msg, why);
}

static int on_snapshot(void *opaque, const rd_kafka_message_t *msg)
{
    fl_at_t *at = opaque;
    fl_part_select_t sel = {at->seed_offset, at->seed_version, at->doc};
    int64_t checkpoint = -1; /* not used: one document is seeded by its own snapshot */
    char errstr[256];
    int rc = count(at, msg);
    if (rc != 0)
        return rc;
    rc = fl_part_load_snapshot_rec(at->docs, msg->payload, msg->len, &sel, at->arena,
                                   &checkpoint, errstr, sizeof errstr);
    if (rc == FL_HISTORY_ENOMEM)
        return rc;
    if (rc < 0) /* the events still rebuild the document */
        skip(at, at->snapshots, msg, errstr);
    return 0;
}

/* A failure at msg: its offset and why; returns err. */
static int fail(fl_at_t *at, const rd_kafka_message_t *msg, int err, const char *why)
{
    at->fail_offset = msg->offset;
    snprintf(at->what, sizeof at->what, "%s", why);
    return err;
}

static int replay_failed(fl_at_t *at, const rd_kafka_message_t *msg, const fl_outcome_t *o,
                         int rc)
{
    char why[400];
    int n = snprintf(why, sizeof why, "v%llu: ", (unsigned long long)o->version_after);
    fl_part_replay_why(o, rc, why + n, sizeof why - (size_t)n);
    return fail(at, msg, rc, why);
}

/* One outcome of the document: checked, hooked, replayed. */
static int on_outcome(fl_at_t *at, const rd_kafka_message_t *msg, const fl_outcome_t *o)
{
    fl_part_doc_t *ent;
    char why[256];
    int rc = fl_part_replay_check(at->docs, o, msg->offset, &ent);
    if (rc == FL_HISTORY_ENOMEM || rc == FL_HISTORY_REFLECTED)
        return rc == FL_HISTORY_REFLECTED ? 0 : rc;
    at->ent = ent;
    if (rc == FL_HISTORY_EVERSION) {
        snprintf(why, sizeof why, "outcome v%llu..v%llu does not continue the document at v%llu",
                 (unsigned long long)o->version_before, (unsigned long long)o->version_after,
                 (unsigned long long)fl_doc_version(ent->doc));
        return fail(at, msg, rc, why);
    }
    if (at->pre && (rc = at->pre(at, ent, o, msg)) != 0) {
        if (rc < 0 && at->fail_offset < 0)
            at->fail_offset = msg->offset;
        return rc;
    }
    if ((rc = fl_part_replay_apply(ent, o, at->arena)) != 0)
        return replay_failed(at, msg, o, rc);
    if (o->napplied > 0) {
        at->any = true;
        at->offset = msg->offset;
        at->ts = o->ts_ms;
    }
    if (at->post && (rc = at->post(at, ent, o, msg)) != 0 && rc < 0 && at->fail_offset < 0)
        at->fail_offset = msg->offset;
    return rc;
}

static int on_event(void *opaque, const rd_kafka_message_t *msg)
{
    fl_at_t *at = opaque;
    const fl_outcome_t *o;
    char errstr[256];
    int rc = count(at, msg);
    if (rc != 0)
        return rc;
    rc = fl_part_event_decode(msg->payload, msg->len, at->arena, &o, errstr, sizeof errstr);
    if (rc == FL_HISTORY_ERECORD)
        skip(at, at->events, msg, errstr);
    if (rc != 0)
        return rc == FL_HISTORY_ENOMEM ? rc : 0;
    if (o->doc.len != at->doc.len || memcmp(o->doc.ptr, at->doc.ptr, o->doc.len) != 0)
        return 0;
    if (msg->key_len != o->doc.len || memcmp(msg->key, o->doc.ptr, o->doc.len) != 0) {
        skip(at, at->events, msg, "the record key is not the outcome's document");
        return 0;
    }
    return on_outcome(at, msg, o);
}

static bool should_stop(void *opaque)
{
    fl_at_t *at = opaque;
    return at->should_stop && at->should_stop(at->opaque);
}

static void on_progress(void *opaque)
{
    fl_at_t *at = opaque;
    if (at->on_progress)
        at->on_progress(at->opaque, at->records);
}

/* Reads topic[partition] from `from` to its end through fn. */
static int read_topic(fl_at_t *at, const char *topic, int64_t from, fl_reader_record_fn fn)
{
    fl_read_spec_t spec = {.topic = topic, .partition = at->partition, .from = from,
                           .to = FL_READER_END, .deadline_ms = at->deadline_ms,
                           .should_stop = should_stop, .on_record = fn,
                           .on_progress = on_progress, .opaque = at, .what = "history"};
    char errstr[256] = "";
    int rc = fl_reader_run(at->rk, &spec, NULL, errstr, sizeof errstr);
    if (rc <= FL_READER_ENOMEM && rc >= FL_READER_ETIMEDOUT && errstr[0])
        snprintf(at->what, sizeof at->what, "%s", errstr);
    return rc;
}

int fl_at_read(fl_at_t *at)
{
    fl_part_config_t cfg;
    fl_part_doc_t *ent;
    int64_t from = 0;
    int rc;

    fl_at_done(at);
    at->partial = at->any = false;
    at->offset = at->ts = 0;
    at->records = at->bytes = 0;
    at->fail_offset = -1;
    at->what[0] = '\0';
    fl_part_config_default(&cfg);
    if (!(at->docs = fl_part_new(-1, &cfg)) || !(at->arena = fl_arena_new(1 << 16)))
        return FL_HISTORY_ENOMEM;
    /* no snapshot is older than version 0: the events from the start */
    if (at->seed_version > 0 && (rc = read_topic(at, at->snapshots, 0, on_snapshot)) < 0)
        return rc;
    if ((ent = fl_part_get(at->docs, at->doc)) && ent->loaded) {
        at->ent = ent;
        from = ent->snapshot_offset;
    }
    return read_topic(at, at->events, from, on_event);
}

/* ---- the target of `at` ------------------------------------------------------- */

static int at_pre(fl_at_t *at, fl_part_doc_t *ent, const fl_outcome_t *o,
                  const rd_kafka_message_t *msg)
{
    if (at->by_time)
        return o->ts_ms > at->time_ms ? 1 : 0;
    if (fl_doc_version(ent->doc) >= at->version)
        return 1;
    if (o->duplicate || o->version_after <= at->version)
        return 0;
    /* The target lies inside this outcome: its first commands only. */
    uint32_t k = (uint32_t)(at->version - o->version_before);
    int rc = fl_doc_apply_applied(ent->doc, o->version_before, o->applied, k, NULL, at->arena);
    if (rc != 0) {
        snprintf(at->what, sizeof at->what,
                 "the first %u commands of the outcome do not apply: %s", k,
                 fl_engine_strerror(rc));
        return FL_HISTORY_EDELTA;
    }
    at->partial = true;
    at->any = true;
    at->offset = msg->offset;
    at->ts = o->ts_ms;
    return 1;
}

static int at_post(fl_at_t *at, fl_part_doc_t *ent, const fl_outcome_t *o,
                   const rd_kafka_message_t *msg)
{
    (void)o;
    (void)msg;
    return !at->by_time && fl_doc_version(ent->doc) >= at->version ? 1 : 0;
}

int fl_at_doc(fl_at_t *at)
{
    int rc;
    at->pre = at_pre;
    at->post = at_post;
    if (!at->by_time)
        at->seed_version = at->version;
    rc = fl_at_read(at);
    return rc == 1 ? 0 : rc;
}

static json_t *hex(const uint8_t *p, size_t n)
{
    char buf[2 * FL_HASH_LEN + 1];
    fl_wire_hex(p, n < FL_HASH_LEN ? n : FL_HASH_LEN, buf);
    return json_string(buf);
}

json_t *fl_at_doc_json(fl_slice_t id, const fl_doc_t *doc, const fl_at_t *at)
{
    uint8_t digest[FL_HASH_LEN];
    bool partial = at && at->partial;
    json_t *obj = json_object(), *st = doc ? fl_value_to_json(fl_doc_state(doc)) : NULL;
    if (!obj || !st) {
        json_decref(obj);
        json_decref(st);
        return NULL;
    }
    fl_doc_digest(doc, digest);
    json_object_set_new(obj, "doc", json_stringn(id.ptr, id.len));
    json_object_set_new(obj, "version", json_integer((json_int_t)fl_doc_version(doc)));
    json_object_set_new(obj, "chain", partial ? json_null() : hex(fl_doc_chain(doc), FL_HASH_LEN));
    json_object_set_new(obj, "digest", hex(digest, FL_HASH_LEN));
    if (at && at->any) {
        json_object_set_new(obj, "partition", json_integer(at->partition));
        json_object_set_new(obj, "offset", json_integer(at->offset));
        json_object_set_new(obj, "ts", json_integer(at->ts));
    }
    if (partial)
        json_object_set_new(obj, "partial", json_true());
    json_object_set_new(obj, "state", st);
    return obj;
}

json_t *fl_at_json(const fl_at_t *at)
{
    return fl_at_doc_json(at->doc, at->ent ? at->ent->doc : NULL, at);
}
