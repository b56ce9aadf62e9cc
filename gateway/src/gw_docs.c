/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_docs: the live copies of the documents this gateway has subscribers
 * for, their subscriber sets and a window of their recent outcomes.
 *
 * A document's life: opened by its first subscriber (or an HTTP read), its
 * events partition is assigned in the consumer (at the partition's end),
 * then a sync is produced to commands; outcomes that arrive before the
 * sync reply are already reflected in it and are ignored. The reply sets
 * the live copy (state, or deltas from version 0) and every waiting
 * subscriber gets its catch-up. Afterwards each applied outcome is applied
 * to the live copy (the chain hash must match, else the copy is dropped
 * and re-synced, subscribers hearing nothing until it is consistent) and
 * fanned out as one `deltas` message encoded once per form and shared by
 * all subscribers. A document without subscribers is dropped after
 * doc.idle.ms, and its partition unassigned when no document needs it and
 * no outcome of a flush this gateway published is awaited on it.
 *
 * Minimum-disclosure tenants get `changed {doc, version}` instead of
 * snapshots and deltas (PROTOCOL.md section 4).
 *
 * Outcomes go back to the connection (or HTTP request) whose flush they
 * answer, in the form of that flush's frame (the form bit of the record's
 * origin). When that connection is subscribed to the document, the
 * outcome never overtakes the flush's changes: while its catch-up is
 * pending (the document is syncing), an outcome that applied something is
 * held on its subscription and sent right after the catch-up.
 *
 * @locality lws service thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "flushline/log.h"
#include "gw_fault.h"
#include "gw_int.h"

#define NO_VERSION UINT64_MAX /* a subscriber that holds nothing yet */

static void start_sync(gw_t *gw, gw_doc_t *doc);

/* A flush waiting for its partition to be followed. */
typedef struct gw_held_s {
    struct gw_held_s *next;
    char *buf;
    size_t len;
    gw_inflight_t *inf;
} gw_held_t;

static void need_partition(gw_t *gw, int32_t p)
{
    if (gw->part_state[p] == GW_PART_NONE) {
        gw->part_state[p] = GW_PART_ASSIGNING;
        gw_kafka_assign(gw->kafka, p, ++gw->part_gen[p], true);
    }
}

/* Produces a held flush. Its partition is followed from an offset read
 * before this call, so its outcome cannot be missed; it counts as awaited
 * until the outcome (or a delivery failure) comes back. */
static void produce_held(gw_t *gw, gw_held_t *h, int32_t p)
{
    int rc = gw_kafka_produce(gw->kafka, FL_TOPIC_COMMANDS,
                              (fl_slice_t){h->inf->doc, h->inf->doclen}, h->buf, h->len, h->inf);
    if (rc != 0) {
        free(h->buf);
        gw_on_delivery(gw, h->inf, rc); /* nacks by the error (see there), frees inf */
    } else {
        h->inf->partition = p;
        gw->part_await[p]++;
    }
    free(h);
}

void gw_docs_produce_flush(gw_t *gw, fl_slice_t key, char *buf, size_t len, gw_inflight_t *inf)
{
    int32_t p = gw_partition(gw, key);
    gw_held_t *h = GW_FAULT(GW_FAULT_HELD) ? NULL : malloc(sizeof *h);
    if (!h) {
        /* our resource exhaustion, not the broker's: internal (the same
         * seq may be sent again) */
        free(buf);
        gw_flush_failed(gw, inf, FL_CODE_INTERNAL, GW_RETRY_AFTER_MS,
                        "out of memory in the gateway: retry the same seq");
        return;
    }
    h->buf = buf;
    h->len = len;
    h->inf = inf;
    gw->part_used_us[p] = fl_clock_mono_us();
    if (gw->part_state[p] == GW_PART_ASSIGNED) {
        produce_held(gw, h, p);
        return;
    }
    h->next = gw->held[p];
    gw->held[p] = h;
    need_partition(gw, p);
}

gw_doc_t *gw_docs_get(gw_t *gw, fl_slice_t id)
{
    return fl_hmap_get(gw->docs, id.ptr, id.len);
}

static void hold_clear(gw_sub_t *sub)
{
    while (sub->hold) {
        gw_hold_t *h = sub->hold;
        sub->hold = h->next;
        gw_buf_unref(h->buf);
        free(h);
    }
    sub->hold_tail = NULL;
    sub->nhold = 0;
}

/* Sends the held outcomes of a subscription, oldest first. */
static void hold_release(gw_sub_t *sub)
{
    while (sub->hold) {
        gw_hold_t *h = sub->hold;
        sub->hold = h->next;
        gw_conn_send(sub->conn, h->buf);
        gw_buf_unref(h->buf);
        free(h);
    }
    sub->hold_tail = NULL;
    sub->nhold = 0;
}

static void doc_free(gw_t *gw, gw_doc_t *doc)
{
    for (uint32_t i = 0; i < doc->nsubs; i++)
        hold_clear(&doc->subs[i]);
    if (doc->state == GW_DOC_LIVE)
        fl_gauge_add_int(gw->m.docs_live, -1);
    fl_gauge_add_int(gw->m.docs, -1);
    fl_window_free(&doc->window);
    free(doc->subs);
    fl_doc_free(doc->live);
    free(doc);
}

gw_doc_t *gw_docs_open(gw_t *gw, fl_slice_t id)
{
    gw_doc_t *doc = gw_docs_get(gw, id);
    if (doc)
        return doc;
    if (id.len == 0 || id.len > FL_DOC_ID_MAX || !(doc = calloc(1, sizeof *doc)))
        return NULL;
    memcpy(doc->id, id.ptr, id.len);
    doc->idlen = id.len;
    doc->partition = gw_partition(gw, id);
    doc->minimal = gw_tenant_minimal(gw, id);
    /* window.deltas is its one bound: the gateway has no byte setting */
    fl_window_init(&doc->window, (uint32_t)gw->cfg->window_deltas, SIZE_MAX);
    if (fl_hmap_put(gw->docs, doc->id, doc->idlen, doc) != 0) {
        free(doc);
        return NULL;
    }
    fl_gauge_add_int(gw->m.docs, 1);
    gw->part_docs[doc->partition]++;
    start_sync(gw, doc);
    return doc;
}

/* ---- sync ----------------------------------------------------------------- */

static void produce_sync(gw_t *gw, gw_doc_t *doc)
{
    fl_wire_msg_t msg;
    char *buf = NULL, errstr[256];
    size_t len;
    int rc;

    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_SYNC;
    msg.u.sync.doc = (fl_slice_t){doc->id, doc->idlen};
    msg.u.sync.gw = (fl_slice_t){gw->id, gw->idlen};
    msg.u.sync.req = doc->req = ++gw->next_req;
    msg.u.sync.have_version = 0;
    doc->state = GW_DOC_SYNCING;
    doc->sync_deadline_us = fl_clock_mono_us() + gw->cfg->sync_timeout_ms * 1000;
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) != 0) {
        fl_error("encoding a sync for %.*s: %s", (int)doc->idlen, doc->id, errstr);
        return;
    }
    if ((rc = gw_kafka_produce(gw->kafka, FL_TOPIC_COMMANDS, msg.u.sync.doc, buf, len, NULL))) {
        free(buf);
        fl_counter_inc(gw->m.produce_errors);
        fl_warn("cannot produce a sync for %.*s: %s; retrying", (int)doc->idlen, doc->id,
                rd_kafka_err2str(rc));
        doc->sync_deadline_us = fl_clock_mono_us() + 1000 * 1000;
        return;
    }
    fl_counter_inc(gw->m.syncs);
    fl_debug("sync %.*s req %llu", (int)doc->idlen, doc->id, (unsigned long long)doc->req);
}

static void start_sync(gw_t *gw, gw_doc_t *doc)
{
    int32_t p = doc->partition;
    if (gw->part_state[p] == GW_PART_ASSIGNED) {
        produce_sync(gw, doc);
        return;
    }
    doc->state = GW_DOC_WAIT_PART;
    need_partition(gw, p);
}

void gw_docs_on_assigned(gw_t *gw, int32_t partition, uint32_t gen)
{
    gw_doc_t *doc;
    if (partition < 0 || partition >= FL_MAX_PARTITIONS || gw->part_gen[partition] != gen ||
        gw->part_state[partition] != GW_PART_ASSIGNING)
        return; /* a stale answer: a newer request is on its way */
    gw->part_state[partition] = GW_PART_ASSIGNED;
    FL_HMAP_FOREACH(gw->docs, it, doc)
        if (doc->partition == partition && doc->state == GW_DOC_WAIT_PART)
            produce_sync(gw, doc);
    /* held flushes, oldest first (the list is newest first) */
    gw_held_t *h = gw->held[partition], *rev = NULL;
    gw->held[partition] = NULL;
    while (h) {
        gw_held_t *next = h->next;
        h->next = rev;
        rev = h;
        h = next;
    }
    while (rev) {
        gw_held_t *next = rev->next;
        produce_held(gw, rev, partition);
        rev = next;
    }
}

/* Drops the live copy and syncs again; subscribers wait (hearing nothing)
 * and get a catch-up from what they hold when the copy is live again. */
static void resync(gw_t *gw, gw_doc_t *doc, const char *why)
{
    fl_warn("document %.*s: %s; re-syncing", (int)doc->idlen, doc->id, why);
    fl_counter_inc(gw->m.resyncs);
    if (doc->state == GW_DOC_LIVE)
        fl_gauge_add_int(gw->m.docs_live, -1);
    fl_doc_free(doc->live);
    doc->live = NULL;
    fl_window_clear(&doc->window);
    for (uint32_t i = 0; i < doc->nsubs; i++)
        doc->subs[i].pending = true;
    start_sync(gw, doc);
}

/* ---- messages to subscribers ------------------------------------------------ */

/* `changed {doc, version}` for minimum-disclosure tenants. */
static gw_buf_t *encode_changed(const gw_doc_t *doc, uint64_t version, fl_wire_form_t form)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_CHANGED;
    msg.u.changed.doc = (fl_slice_t){doc->id, doc->idlen};
    msg.u.changed.version = version;
    return gw_buf_encode(&msg, form);
}

gw_buf_t *gw_docs_snapshot(gw_t *gw, gw_doc_t *doc, fl_wire_form_t form)
{
    fl_wire_msg_t msg;
    (void)gw;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SNAPSHOT;
    msg.u.snapshot.doc = (fl_slice_t){doc->id, doc->idlen};
    msg.u.snapshot.version = fl_doc_version(doc->live);
    memcpy(msg.u.snapshot.chain, fl_doc_chain(doc->live), FL_HASH_LEN);
    msg.u.snapshot.state = *fl_doc_state(doc->live);
    return gw_buf_encode(&msg, form);
}

/* The window's deltas from version `from` to the live version as one
 * `deltas` message, or NULL when the window does not reach back that far. */
static gw_buf_t *window_deltas(gw_t *gw, gw_doc_t *doc, uint64_t from, fl_wire_form_t form)
{
    fl_wire_msg_t msg;
    char errstr[256];
    int rc;

    fl_arena_reset(gw->arena);
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_DELTAS;
    msg.u.deltas.doc = (fl_slice_t){doc->id, doc->idlen};
    msg.u.deltas.from_version = from;
    rc = fl_window_deltas(&doc->window, from, gw->arena, &msg.u.deltas.items,
                          &msg.u.deltas.nitems, errstr, sizeof errstr);
    if (rc == FL_HISTORY_ERECORD)
        fl_error("window record of %.*s undecodable: %s", (int)doc->idlen, doc->id, errstr);
    if (rc != 0)
        return NULL;
    return gw_buf_encode(&msg, form);
}

/* Queues the catch-up of one subscriber of a live doc: nothing when it is
 * up to date, the missing deltas when the window has them, else a
 * snapshot. */
static void catch_up(gw_t *gw, gw_doc_t *doc, gw_sub_t *sub)
{
    uint64_t v = fl_doc_version(doc->live);
    gw_conn_t *conn = sub->conn;
    gw_buf_t *buf = NULL;

    sub->pending = false;
    if (doc->minimal) {
        if (sub->version != v)
            buf = encode_changed(doc, v, conn->form);
    } else if (sub->version == v) {
        /* up to date: later deltas follow */
    } else {
        if (sub->version < v)
            buf = window_deltas(gw, doc, sub->version, conn->form);
        if (!buf)
            buf = gw_docs_snapshot(gw, doc, conn->form);
    }
    sub->version = v;
    if (buf) {
        gw_conn_send(conn, buf);
        gw_buf_unref(buf);
    }
    hold_release(sub); /* the connection's own outcomes, after their changes */
}

/* ---- subscriptions ---------------------------------------------------------- */

int gw_docs_subscribe(gw_t *gw, gw_doc_t *doc, gw_conn_t *conn, bool has, uint64_t have)
{
    gw_sub_t *sub = NULL;
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (doc->subs[i].conn == conn) {
            sub = &doc->subs[i]; /* a repeated subscribe restarts the catch-up */
            break;
        }
    if (!sub) {
        if (doc->nsubs == doc->capsubs) {
            uint32_t cap = doc->capsubs ? doc->capsubs * 2 : 4;
            gw_sub_t *s = realloc(doc->subs, cap * sizeof *s);
            if (!s)
                return -FL_CODE_INTERNAL;
            doc->subs = s;
            doc->capsubs = cap;
        }
        sub = &doc->subs[doc->nsubs++];
        memset(sub, 0, sizeof *sub);
        sub->conn = conn;
        fl_gauge_add_int(gw->m.subscriptions, 1);
    }
    sub->version = has ? have : NO_VERSION;
    sub->pending = true;
    doc->idle_since_us = 0;
    if (doc->state == GW_DOC_LIVE)
        catch_up(gw, doc, sub);
    return 0;
}

void gw_docs_unsubscribe(gw_t *gw, gw_doc_t *doc, gw_conn_t *conn)
{
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (doc->subs[i].conn == conn) {
            /* no catch-up will come: held outcomes go now (dropped when
             * the connection is closing) */
            hold_release(&doc->subs[i]);
            doc->subs[i] = doc->subs[--doc->nsubs];
            fl_gauge_add_int(gw->m.subscriptions, -1);
            break;
        }
    if (doc->nsubs == 0 && doc->http_waiters == 0)
        doc->idle_since_us = fl_clock_mono_us();
}

/* ---- records ------------------------------------------------------------------ */

static void on_sync_reply(gw_t *gw, const fl_wire_sync_reply_t *r)
{
    gw_doc_t *doc = gw_docs_get(gw, r->doc);
    fl_doc_t *live;
    int rc = 0;

    if (!doc || doc->state != GW_DOC_SYNCING || r->req != doc->req)
        return; /* an old request's answer */
    if (!(live = fl_doc_new(r->doc, NULL))) {
        resync(gw, doc, "out of memory");
        return;
    }
    if (r->has_state) {
        rc = fl_doc_restore(live, &r->state, r->version, r->chain);
    } else {
        fl_arena_reset(gw->arena);
        for (uint32_t i = 0; i < r->nitems && rc == 0; i++) {
            const fl_wire_delta_t *d = &r->items[i];
            rc = fl_doc_apply_applied(live, d->version - d->ncmds, d->cmds, d->ncmds, d->chain,
                                      gw->arena);
        }
        if (rc == 0 && fl_doc_version(live) != r->version)
            rc = FL_EERR_DELTA;
    }
    if (rc != 0) {
        fl_doc_free(live);
        resync(gw, doc, fl_engine_strerror(rc));
        return;
    }
    doc->live = live;
    doc->state = GW_DOC_LIVE;
    fl_gauge_add_int(gw->m.docs_live, 1);
    fl_debug("document %.*s live at version %llu", (int)doc->idlen, doc->id,
             (unsigned long long)r->version);
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (doc->subs[i].pending)
            catch_up(gw, doc, &doc->subs[i]);
    gw_http_on_doc_live(gw, doc);
}

/* Sends buf (msgpack) or its JSON twin, encoded on first need, to every
 * subscriber that is not waiting for its catch-up. */
static void fan_out(gw_t *gw, gw_doc_t *doc, gw_buf_t *bin, gw_buf_t *(*json)(void *), void *arg,
                    uint64_t version)
{
    gw_buf_t *text = NULL;
    bool tried = false;
    for (uint32_t i = 0; i < doc->nsubs; i++) {
        gw_sub_t *sub = &doc->subs[i];
        if (sub->pending)
            continue;
        if (version)
            sub->version = version;
        if (sub->conn->form == FL_WIRE_JSON) {
            if (!tried) {
                text = json(arg);
                tried = true;
            }
            if (text)
                gw_conn_send(sub->conn, text);
        } else if (bin) {
            gw_conn_send(sub->conn, bin);
        }
    }
    gw_buf_unref(text);
}

typedef struct lazy_s {
    const fl_wire_msg_t *msg;
    const gw_doc_t *doc;
    uint64_t version;
} lazy_t;

static gw_buf_t *lazy_json(void *arg)
{
    lazy_t *l = arg;
    return gw_buf_encode(l->msg, FL_WIRE_JSON);
}

static gw_buf_t *lazy_changed(void *arg)
{
    lazy_t *l = arg;
    return encode_changed(l->doc, l->version, FL_WIRE_JSON);
}

static bool any_form(const gw_doc_t *doc, fl_wire_form_t form)
{
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (!doc->subs[i].pending && doc->subs[i].conn->form == form)
            return true;
    return false;
}

/* The outcome of conn's own flush, in the form of the flush's frame. Live
 * subscriptions have already been sent the delta (fan-out comes first); a
 * subscription still waiting for its catch-up holds an outcome that
 * applied something until the catch-up is out. */
static void answer_outcome(gw_t *gw, gw_doc_t *doc, gw_conn_t *conn, const fl_outcome_t *o,
                           fl_wire_form_t form)
{
    fl_wire_msg_t msg;
    gw_buf_t *buf;
    gw_sub_t *sub = NULL;
    gw_hold_t *h;

    (void)gw;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_OUTCOME;
    msg.u.outcome.outcome = *o;
    if (!(buf = gw_buf_encode(&msg, form)))
        return;
    /* pending subscriptions exist only while the document is not live */
    if (doc && doc->state != GW_DOC_LIVE && o->version_after > o->version_before)
        for (uint32_t i = 0; i < doc->nsubs; i++)
            if (doc->subs[i].conn == conn) {
                sub = doc->subs[i].pending ? &doc->subs[i] : NULL;
                break;
            }
    if (!sub) {
        gw_conn_send(conn, buf);
        gw_buf_unref(buf);
        return;
    }
    if (sub->nhold >= GW_HOLD_MAX || !(h = malloc(sizeof *h))) {
        gw_buf_unref(buf);
        gw_conn_close(conn, FL_CLOSE_SLOW_CONSUMER, "too many outcomes waiting: resync", false);
        return;
    }
    h->next = NULL;
    h->buf = buf; /* the reference passes to the hold */
    if (sub->hold_tail)
        sub->hold_tail->next = h;
    else
        sub->hold = h;
    sub->hold_tail = h;
    sub->nhold++;
}

static void on_outcome(gw_t *gw, const fl_wire_outcome_t *wo, int64_t ts_ms, char *raw,
                       size_t rawlen)
{
    const fl_outcome_t *o = &wo->outcome;
    gw_doc_t *doc = gw_docs_get(gw, o->doc);
    int rc;

    if (doc && doc->state == GW_DOC_LIVE && o->napplied > 0 && !o->duplicate) {
        uint64_t v = fl_doc_version(doc->live);
        if (o->version_after <= v) {
            /* already in the live copy */
        } else if (o->version_before != v) {
            resync(gw, doc, "an outcome does not follow the live copy");
        } else if (fl_arena_reset(gw->arena), (rc = fl_doc_apply_applied(doc->live, o->version_before, o->applied,
                                              o->napplied, o->chain, gw->arena)) != 0) {
            resync(gw, doc, fl_engine_strerror(rc));
        } else {
            fl_wire_msg_t msg;
            fl_wire_delta_t d;
            lazy_t l = {&msg, doc, o->version_after};
            gw_buf_t *bin = NULL;

            memset(&msg, 0, sizeof msg);
            fl_history_outcome_to_delta(o, &d);
            msg.type = FL_WT_DELTAS;
            msg.u.deltas.doc = o->doc;
            msg.u.deltas.from_version = o->version_before;
            msg.u.deltas.nitems = 1;
            msg.u.deltas.items = &d;
            if (any_form(doc, FL_WIRE_MSGPACK))
                bin = doc->minimal ? encode_changed(doc, o->version_after, FL_WIRE_MSGPACK)
                                   : gw_buf_encode(&msg, FL_WIRE_MSGPACK);
            fan_out(gw, doc, bin, doc->minimal ? lazy_changed : lazy_json, &l, o->version_after);
            gw_buf_unref(bin);
            fl_counter_inc(gw->m.deltas_out);
            if (ts_ms > 0)
                fl_histogram_observe(gw->m.fanout_ms,
                                     (double)lws_now_usecs() / 1000.0 - (double)ts_ms);
            /* out of memory only empties the window: catch-ups get snapshots */
            fl_window_push(&doc->window, o->version_before, o->version_after, raw, rawlen);
            raw = NULL;
        }
    }
    free(raw);

    /* The originating connection (or HTTP request) gets its outcome. */
    if (wo->gw.len == gw->idlen && memcmp(wo->gw.ptr, gw->id, gw->idlen) == 0) {
        gw_origin_t *org = gw_origin_get(gw, wo->origin);
        int32_t p = gw_partition(gw, o->doc);
        if (gw->part_await[p] > 0)
            gw->part_await[p]--;
        if (org && org->kind == GW_ORIGIN_WS)
            answer_outcome(gw, doc, (gw_conn_t *)org, o, gw_origin_form(wo->origin));
        else if (org && org->kind == GW_ORIGIN_HTTP)
            gw_http_on_outcome(gw, (gw_http_t *)org, wo);
    }
}

static void on_signal(gw_t *gw, const fl_wire_signal_t *s)
{
    gw_doc_t *doc = gw_docs_get(gw, s->doc);
    fl_wire_msg_t msg;
    lazy_t l = {&msg, NULL, 0};
    gw_buf_t *bin = NULL;

    if (!doc || doc->nsubs == 0)
        return;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SIGNAL_OUT;
    msg.u.signal.doc = s->doc;
    msg.u.signal.user = s->user;
    msg.u.signal.body = s->body;
    if (any_form(doc, FL_WIRE_MSGPACK))
        bin = gw_buf_encode(&msg, FL_WIRE_MSGPACK);
    fan_out(gw, doc, bin, lazy_json, &l, 0);
    gw_buf_unref(bin);
    fl_counter_inc(gw->m.signals_out);
}

void gw_docs_on_record(gw_t *gw, int topic, int32_t partition, int64_t ts_ms,
                       const fl_wire_msg_t *msg, char *raw, size_t rawlen)
{
    (void)partition;
    (void)topic;
    switch (msg->type) {
    case FL_WT_REC_OUTCOME:
        on_outcome(gw, &msg->u.outcome, ts_ms, raw, rawlen);
        return;
    case FL_WT_REC_SYNC_REPLY:
        on_sync_reply(gw, &msg->u.reply);
        break;
    case FL_WT_REC_SIGNAL:
        on_signal(gw, &msg->u.signal);
        break;
    default:
        break;
    }
    free(raw);
}

/* ---- timers ---------------------------------------------------------------------- */

void gw_docs_tick(gw_t *gw, int64_t now_us)
{
    gw_doc_t *doc;
    FL_HMAP_FOREACH(gw->docs, it, doc) {
        if (doc->state == GW_DOC_SYNCING && now_us > doc->sync_deadline_us) {
            fl_warn("no sync reply for %.*s yet; asking again", (int)doc->idlen, doc->id);
            produce_sync(gw, doc);
        }
        if (doc->nsubs == 0 && doc->http_waiters == 0 && doc->idle_since_us &&
            now_us - doc->idle_since_us > gw->cfg->doc_idle_ms * 1000) {
            /* the current entry: the iteration goes on with the next */
            fl_debug("dropping idle document %.*s", (int)doc->idlen, doc->id);
            fl_hmap_del(gw->docs, doc->id, doc->idlen);
            gw->part_docs[doc->partition]--;
            doc_free(gw, doc);
        }
    }
    /* a partition nobody needs (no document, no recent flush) is let go */
    for (int32_t p = 0; p < (int32_t)gw->cfg->partitions && p < FL_MAX_PARTITIONS; p++)
        if (gw->part_state[p] == GW_PART_ASSIGNED && gw->part_docs[p] == 0 &&
            now_us - gw->part_used_us[p] > gw->cfg->doc_idle_ms * 1000 + 60 * 1000000ll &&
            (gw->part_await[p] == 0 || now_us - gw->part_used_us[p] > GW_AWAIT_MAX_US)) {
            /* a re-assignment starts at the then end: an outcome still
             * awaited would be skipped, so awaited outcomes keep it */
            gw->part_await[p] = 0;
            gw->part_state[p] = GW_PART_NONE;
            gw_kafka_assign(gw->kafka, p, ++gw->part_gen[p], false);
        }
}

void gw_docs_free_all(gw_t *gw)
{
    gw_doc_t *doc;
    for (int p = 0; p < FL_MAX_PARTITIONS; p++)
        while (gw->held[p]) {
            gw_held_t *h = gw->held[p];
            gw->held[p] = h->next;
            free(h->buf);
            free(h->inf);
            free(h);
        }
    FL_HMAP_FOREACH(gw->docs, it, doc)
        doc_free(gw, doc); /* the map is freed next, unread */
}
