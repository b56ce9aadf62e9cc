/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_docs: the gateway's documents (see gw_docs.h for their life, the
 * catch-up rules and who gets what).
 *
 * @locality lws service thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include <librdkafka/rdkafka.h>

#include "flushline/clock.h"
#include "flushline/engine.h"
#include "flushline/hmap.h"
#include "flushline/history.h"
#include "flushline/log.h"
#include "gw_docs.h"
#include "gw_rerun.h"

#define NO_VERSION UINT64_MAX /* a subscriber that holds nothing yet */

/* An outcome of the subscriber's own flush held until its catch-up has
 * gone out. */
typedef struct hold_s {
    struct hold_s *next;
    gw_buf_t *buf;
} hold_t;

typedef struct sub_s {
    gw_subscriber_t *s;
    uint64_t version; /* what this subscriber holds (after the catch-up) */
    bool pending;     /* waiting for the doc to be live */
    uint32_t nhold;
    hold_t *hold, *hold_tail; /* outcomes waiting for the catch-up, oldest first */
} sub_t;

typedef enum doc_state_e {
    DOC_WAIT_PART = 0, /* its events partition is being followed */
    DOC_SYNCING,       /* sync sent, waiting for the reply */
    DOC_LIVE,
} doc_state_t;

struct gw_doc_s {
    char id[FL_DOC_ID_MAX];
    size_t idlen;
    int32_t partition;
    uint8_t state;
    bool minimal;
    uint64_t req;
    int64_t sync_deadline_us;
    fl_doc_t *live;
    sub_t *subs;
    uint32_t nsubs, capsubs;
    fl_window_t window; /* the last window.deltas outcome records (history.h) */
    gw_rerun_t rerun;   /* what was applied above the committed version */
    gw_waiter_t *waiters; /* HTTP reads waiting for the live copy */
    int64_t idle_since_us; /* 0 while it has subscribers or waiters */
};

struct gw_docs_s {
    gw_docs_conf_t conf;
    gw_docs_parts_t parts;
    gw_origins_t *origins;
    gw_metrics_t *m;
    fl_hmap_t *map;    /* doc id -> gw_doc_t */
    fl_arena_t *arena; /* scratch, reset per use */
    fl_engine_config_t engine; /* the live copies': one shared scratch */
    uint64_t next_req;
};

static void start_sync(gw_docs_t *docs, gw_doc_t *doc);

gw_doc_t *gw_docs_get(gw_docs_t *docs, fl_slice_t id)
{
    return fl_hmap_get(docs->map, id.ptr, id.len);
}

size_t gw_docs_count(const gw_docs_t *docs)
{
    return fl_hmap_count(docs->map);
}

bool gw_docs_live(const gw_doc_t *doc)
{
    return doc->state == DOC_LIVE;
}

uint64_t gw_docs_version(const gw_doc_t *doc)
{
    return doc->live ? fl_doc_version(doc->live) : 0;
}

const fl_doc_t *gw_docs_live_copy(const gw_doc_t *doc)
{
    return doc->live;
}

const fl_window_t *gw_docs_window(const gw_doc_t *doc)
{
    return &doc->window;
}

/* True when the doc's tenant is in minimum-disclosure mode. */
static bool tenant_minimal(const gw_docs_t *docs, fl_slice_t doc)
{
    const char *slash = memchr(doc.ptr, '/', doc.len);
    size_t tlen = slash ? (size_t)(slash - doc.ptr) : doc.len;
    if (!docs->conf.minimal)
        return false;
    for (char *const *t = docs->conf.minimal; *t; t++)
        if (strlen(*t) == tlen && memcmp(*t, doc.ptr, tlen) == 0)
            return true;
    return false;
}

static void hold_clear(sub_t *sub)
{
    while (sub->hold) {
        hold_t *h = sub->hold;
        sub->hold = h->next;
        gw_buf_unref(h->buf);
        free(h);
    }
    sub->hold_tail = NULL;
    sub->nhold = 0;
}

/* Sends the held outcomes of a subscription, oldest first. */
static void hold_release(sub_t *sub)
{
    while (sub->hold) {
        hold_t *h = sub->hold;
        sub->hold = h->next;
        sub->s->ops->send(sub->s, h->buf);
        gw_buf_unref(h->buf);
        free(h);
    }
    sub->hold_tail = NULL;
    sub->nhold = 0;
}

/* Frees a document that is out of the map (nobody is called). */
static void doc_free(gw_docs_t *docs, gw_doc_t *doc)
{
    for (uint32_t i = 0; i < doc->nsubs; i++)
        hold_clear(&doc->subs[i]);
    if (doc->state == DOC_LIVE)
        fl_gauge_add_int(docs->m->docs_live, -1);
    fl_gauge_add_int(docs->m->docs, -1);
    fl_window_free(&doc->window);
    gw_rerun_free(&doc->rerun);
    free(doc->subs);
    fl_doc_free(doc->live);
    free(doc);
}

/* The one place a document leaves memory (idle today; a memory budget's
 * eviction would come here too): out of the map, its partition told. */
static void doc_drop(gw_docs_t *docs, gw_doc_t *doc)
{
    fl_hmap_del(docs->map, doc->id, doc->idlen);
    docs->parts.docs(docs->parts.ctx, doc->partition, -1);
    doc_free(docs, doc);
}

gw_doc_t *gw_docs_open(gw_docs_t *docs, fl_slice_t id)
{
    gw_doc_t *doc = gw_docs_get(docs, id);
    if (doc)
        return doc;
    if (id.len == 0 || id.len > FL_DOC_ID_MAX || !(doc = calloc(1, sizeof *doc)))
        return NULL;
    memcpy(doc->id, id.ptr, id.len);
    doc->idlen = id.len;
    doc->partition = docs->parts.partition(docs->parts.ctx, id);
    doc->minimal = tenant_minimal(docs, id);
    /* window.deltas is its one bound: the gateway has no byte setting */
    fl_window_init(&doc->window, docs->conf.window_deltas, SIZE_MAX);
    if (fl_hmap_put(docs->map, doc->id, doc->idlen, doc) != 0) {
        free(doc);
        return NULL;
    }
    fl_gauge_add_int(docs->m->docs, 1);
    docs->parts.docs(docs->parts.ctx, doc->partition, 1);
    start_sync(docs, doc);
    return doc;
}

/* ---- sync ----------------------------------------------------------------- */

static void send_sync(gw_docs_t *docs, gw_doc_t *doc)
{
    fl_wire_msg_t msg;
    char *buf = NULL, errstr[256];
    size_t len;
    int rc;

    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_SYNC;
    msg.u.sync.doc = (fl_slice_t){doc->id, doc->idlen};
    msg.u.sync.gw = docs->conf.id;
    msg.u.sync.req = doc->req = ++docs->next_req;
    msg.u.sync.have_version = 0;
    doc->state = DOC_SYNCING;
    doc->sync_deadline_us = fl_clock_mono_us() + docs->conf.sync_timeout_us;
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) != 0) {
        fl_error("encoding a sync for %.*s: %s", (int)doc->idlen, doc->id, errstr);
        return;
    }
    if ((rc = docs->parts.send(docs->parts.ctx, msg.u.sync.doc, buf, len))) {
        free(buf);
        fl_counter_inc(docs->m->produce_errors);
        fl_warn("cannot produce a sync for %.*s: %s; retrying", (int)doc->idlen, doc->id,
                rd_kafka_err2str(rc));
        doc->sync_deadline_us = fl_clock_mono_us() + 1000 * 1000;
        return;
    }
    fl_counter_inc(docs->m->syncs);
    fl_debug("sync %.*s req %llu", (int)doc->idlen, doc->id, (unsigned long long)doc->req);
}

static void start_sync(gw_docs_t *docs, gw_doc_t *doc)
{
    doc->state = DOC_WAIT_PART;
    if (docs->parts.follow(docs->parts.ctx, doc->partition))
        send_sync(docs, doc);
}

void gw_docs_on_part_ready(gw_docs_t *docs, int32_t p)
{
    gw_doc_t *doc;
    FL_HMAP_FOREACH(docs->map, it, doc)
        if (doc->partition == p && doc->state == DOC_WAIT_PART)
            send_sync(docs, doc);
}

/* Drops the live copy and syncs again; subscribers wait (hearing nothing)
 * and get a catch-up from what they hold when the copy is live again. */
static void resync(gw_docs_t *docs, gw_doc_t *doc, const char *why)
{
    fl_warn("document %.*s: %s; re-syncing", (int)doc->idlen, doc->id, why);
    fl_counter_inc(docs->m->resyncs);
    if (doc->state == DOC_LIVE)
        fl_gauge_add_int(docs->m->docs_live, -1);
    fl_doc_free(doc->live);
    doc->live = NULL;
    fl_window_clear(&doc->window);
    for (uint32_t i = 0; i < doc->nsubs; i++)
        doc->subs[i].pending = true;
    start_sync(docs, doc);
}

/* The live copy may hold what the log will not (a divergence, or a re-run
 * that cannot be checked): resync, and every subscriber gets a snapshot,
 * whatever version it holds. */
static void resync_all(gw_docs_t *docs, gw_doc_t *doc, const char *why, bool diverged)
{
    if (diverged)
        fl_counter_inc(docs->m->divergences);
    for (uint32_t i = 0; i < doc->nsubs; i++)
        doc->subs[i].version = NO_VERSION;
    resync(docs, doc, why);
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

gw_buf_t *gw_docs_snapshot(gw_docs_t *docs, gw_doc_t *doc, fl_wire_form_t form)
{
    fl_wire_msg_t msg;
    (void)docs;
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
static gw_buf_t *window_deltas(gw_docs_t *docs, gw_doc_t *doc, uint64_t from,
                               fl_wire_form_t form)
{
    fl_wire_msg_t msg;
    char errstr[256];
    int rc;

    fl_arena_reset(docs->arena);
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_DELTAS;
    msg.u.deltas.doc = (fl_slice_t){doc->id, doc->idlen};
    msg.u.deltas.from_version = from;
    rc = fl_window_deltas(&doc->window, from, docs->arena, &msg.u.deltas.items,
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
static void catch_up(gw_docs_t *docs, gw_doc_t *doc, sub_t *sub)
{
    uint64_t v = fl_doc_version(doc->live);
    fl_wire_form_t form = (fl_wire_form_t)sub->s->form;
    gw_buf_t *buf = NULL;

    sub->pending = false;
    if (doc->minimal) {
        if (sub->version != v)
            buf = encode_changed(doc, v, form);
    } else if (sub->version == v) {
        /* up to date: later deltas follow */
    } else {
        if (sub->version < v)
            buf = window_deltas(docs, doc, sub->version, form);
        if (!buf)
            buf = gw_docs_snapshot(docs, doc, form);
    }
    sub->version = v;
    if (buf) {
        sub->s->ops->send(sub->s, buf);
        gw_buf_unref(buf);
    }
    hold_release(sub); /* the subscriber's own outcomes, after their changes */
}

/* ---- subscriptions ---------------------------------------------------------- */

int gw_docs_subscribe(gw_docs_t *docs, gw_doc_t *doc, gw_subscriber_t *s, bool has,
                      uint64_t have)
{
    sub_t *sub = NULL;
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (doc->subs[i].s == s) {
            sub = &doc->subs[i]; /* a repeated subscribe restarts the catch-up */
            break;
        }
    if (!sub) {
        if (doc->nsubs == doc->capsubs) {
            uint32_t cap = doc->capsubs ? doc->capsubs * 2 : 4;
            sub_t *subs = realloc(doc->subs, cap * sizeof *subs);
            if (!subs)
                return -FL_CODE_INTERNAL;
            doc->subs = subs;
            doc->capsubs = cap;
        }
        sub = &doc->subs[doc->nsubs++];
        memset(sub, 0, sizeof *sub);
        sub->s = s;
        fl_gauge_add_int(docs->m->subscriptions, 1);
    }
    sub->version = has ? have : NO_VERSION;
    sub->pending = true;
    doc->idle_since_us = 0;
    if (doc->state == DOC_LIVE)
        catch_up(docs, doc, sub);
    return 0;
}

void gw_docs_unsubscribe(gw_docs_t *docs, gw_doc_t *doc, gw_subscriber_t *s)
{
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (doc->subs[i].s == s) {
            /* no catch-up will come: held outcomes go now (dropped when
             * the subscriber is closing) */
            hold_release(&doc->subs[i]);
            doc->subs[i] = doc->subs[--doc->nsubs];
            fl_gauge_add_int(docs->m->subscriptions, -1);
            break;
        }
    if (doc->nsubs == 0 && !doc->waiters)
        doc->idle_since_us = fl_clock_mono_us();
}

void gw_docs_wait(gw_docs_t *docs, gw_doc_t *doc, gw_waiter_t *w)
{
    (void)docs;
    w->doc = doc;
    w->prev = NULL;
    w->next = doc->waiters;
    if (doc->waiters)
        doc->waiters->prev = w;
    doc->waiters = w;
    doc->idle_since_us = 0;
}

void gw_docs_unwait(gw_docs_t *docs, gw_waiter_t *w)
{
    gw_doc_t *doc = w->doc;
    (void)docs;
    if (!doc)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        doc->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->doc = NULL;
    if (doc->nsubs == 0 && !doc->waiters)
        doc->idle_since_us = fl_clock_mono_us();
}

/* The doc is live: every waiter is taken off and called, once. */
static void wake_waiters(gw_docs_t *docs, gw_doc_t *doc)
{
    while (doc->waiters) {
        gw_waiter_t *w = doc->waiters;
        gw_docs_unwait(docs, w);
        w->on_live(w, doc);
    }
}

/* ---- records ------------------------------------------------------------------ */

static void on_sync_reply(gw_docs_t *docs, const fl_wire_sync_reply_t *r, uint64_t committed)
{
    gw_doc_t *doc = gw_docs_get(docs, r->doc);
    fl_doc_t *live;
    int rc = 0;

    if (doc)
        gw_rerun_committed(&doc->rerun, committed);
    if (!doc || doc->state != DOC_SYNCING || r->req != doc->req)
        return; /* an old request's answer */
    if (!(live = fl_doc_new(r->doc, &docs->engine))) {
        resync(docs, doc, "out of memory");
        return;
    }
    if (r->has_state) {
        rc = fl_doc_restore(live, &r->state, r->version, r->chain);
    } else {
        fl_arena_reset(docs->arena);
        for (uint32_t i = 0; i < r->nitems && rc == 0; i++) {
            const fl_wire_delta_t *d = &r->items[i];
            rc = fl_doc_apply_applied(live, d->version - d->ncmds, d->cmds, d->ncmds, d->chain,
                                      docs->arena);
        }
        if (rc == 0 && fl_doc_version(live) != r->version)
            rc = FL_EERR_DELTA;
    }
    if (rc != 0) {
        fl_doc_free(live);
        resync(docs, doc, fl_engine_strerror(rc));
        return;
    }
    doc->live = live;
    doc->state = DOC_LIVE;
    gw_rerun_reset(&doc->rerun, r->version, fl_doc_chain(live));
    fl_gauge_add_int(docs->m->docs_live, 1);
    fl_debug("document %.*s live at version %llu", (int)doc->idlen, doc->id,
             (unsigned long long)r->version);
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (doc->subs[i].pending)
            catch_up(docs, doc, &doc->subs[i]);
    wake_waiters(docs, doc);
}

/* Sends buf (msgpack) or its JSON twin, encoded on first need, to every
 * subscriber that is not waiting for its catch-up. */
static void fan_out(gw_doc_t *doc, gw_buf_t *bin, gw_buf_t *(*json)(void *), void *arg,
                    uint64_t version)
{
    gw_buf_t *text = NULL;
    bool tried = false;
    for (uint32_t i = 0; i < doc->nsubs; i++) {
        sub_t *sub = &doc->subs[i];
        if (sub->pending)
            continue;
        if (version)
            sub->version = version;
        if (sub->s->form == FL_WIRE_JSON) {
            if (!tried) {
                text = json(arg);
                tried = true;
            }
            if (text)
                sub->s->ops->send(sub->s, text);
        } else if (bin) {
            sub->s->ops->send(sub->s, bin);
        }
    }
    gw_buf_unref(text);
}

typedef struct lazy_s {
    const fl_wire_msg_t *msg;
    const gw_doc_t *doc;
    uint64_t version;
    int64_t src_ms; /* gw_buf_t.src_ms of what is encoded */
} lazy_t;

static gw_buf_t *stamp(gw_buf_t *buf, int64_t src_ms)
{
    if (buf)
        buf->src_ms = src_ms;
    return buf;
}

static gw_buf_t *lazy_json(void *arg)
{
    lazy_t *l = arg;
    return stamp(gw_buf_encode(l->msg, FL_WIRE_JSON), l->src_ms);
}

static gw_buf_t *lazy_changed(void *arg)
{
    lazy_t *l = arg;
    return stamp(encode_changed(l->doc, l->version, FL_WIRE_JSON), l->src_ms);
}

static bool any_form(const gw_doc_t *doc, fl_wire_form_t form)
{
    for (uint32_t i = 0; i < doc->nsubs; i++)
        if (!doc->subs[i].pending && doc->subs[i].s->form == form)
            return true;
    return false;
}

/* Holds buf on sub until its catch-up is out (the reference passes);
 * past GW_HOLD_MAX the subscriber is closed. */
static void hold(sub_t *sub, gw_buf_t *buf)
{
    hold_t *h;
    if (sub->nhold >= GW_HOLD_MAX || !(h = malloc(sizeof *h))) {
        gw_buf_unref(buf);
        sub->s->ops->close(sub->s, FL_CLOSE_SLOW_CONSUMER, "too many outcomes waiting: resync");
        return;
    }
    h->next = NULL;
    h->buf = buf;
    if (sub->hold_tail)
        sub->hold_tail->next = h;
    else
        sub->hold = h;
    sub->hold_tail = h;
    sub->nhold++;
}

/* The outcome of a flush this gateway published goes to its origin, in the
 * form of the flush's frame. Live subscriptions have already been sent the
 * delta (fan-out comes first); when the origin is a subscriber of doc
 * still waiting for its catch-up, an outcome that applied something is
 * held until the catch-up is out. */
static void answer_outcome(gw_docs_t *docs, gw_doc_t *doc, const fl_wire_outcome_t *wo)
{
    const fl_outcome_t *o = &wo->outcome;
    fl_wire_form_t form = gw_origin_form(wo->origin);
    gw_origin_t *org = gw_origins_get(docs->origins, wo->origin);
    uint64_t id = wo->origin & ~(uint64_t)GW_ORIGIN_FORM_JSON;
    fl_wire_msg_t msg;
    gw_buf_t *buf;

    if (!org)
        return; /* gone */
    /* pending subscriptions exist only while the document is not live */
    if (doc && doc->state != DOC_LIVE && o->version_after > o->version_before)
        for (uint32_t i = 0; i < doc->nsubs; i++)
            if (doc->subs[i].s->origin == id) {
                if (!doc->subs[i].pending)
                    break;
                memset(&msg, 0, sizeof msg);
                msg.type = FL_WT_OUTCOME;
                msg.u.outcome.outcome = *o;
                if ((buf = gw_buf_encode(&msg, form)))
                    hold(&doc->subs[i], buf);
                return;
            }
    org->ops->on_outcome(org, o, form);
}

/* Fans out an outcome that continues the live copy, which has applied it. */
static void fan_out_outcome(gw_docs_t *docs, gw_doc_t *doc, const fl_outcome_t *o, int64_t ts_ms)
{
    fl_wire_msg_t msg;
    fl_wire_delta_t d;
    lazy_t l = {&msg, doc, o->version_after, ts_ms};
    gw_buf_t *bin = NULL;

    memset(&msg, 0, sizeof msg);
    fl_history_outcome_to_delta(o, &d);
    msg.type = FL_WT_DELTAS;
    msg.u.deltas.doc = o->doc;
    msg.u.deltas.from_version = o->version_before;
    msg.u.deltas.nitems = 1;
    msg.u.deltas.items = &d;
    if (any_form(doc, FL_WIRE_MSGPACK))
        bin = stamp(doc->minimal ? encode_changed(doc, o->version_after, FL_WIRE_MSGPACK)
                                 : gw_buf_encode(&msg, FL_WIRE_MSGPACK),
                    ts_ms);
    fan_out(doc, bin, doc->minimal ? lazy_changed : lazy_json, &l, o->version_after);
    gw_buf_unref(bin);
    fl_counter_inc(docs->m->deltas_out);
    /* the Kafka timestamp is the wall clock of the processor's host */
    if (ts_ms > 0)
        fl_histogram_observe(docs->m->fanout_ms, (double)(fl_clock_wall_ms() - ts_ms));
}

/* A verdict of the re-run memory on outcome o: a copy is dropped, a
 * divergence (or what cannot be checked) resyncs with snapshots for
 * everyone. */
static void on_verdict(gw_docs_t *docs, gw_doc_t *doc, const fl_outcome_t *o,
                       gw_rerun_verdict_t verdict)
{
    char why[160];
    switch (verdict) {
    case GW_RERUN_COPY:
        return;
    case GW_RERUN_DIVERGED:
        snprintf(why, sizeof why,
                 "diverged: a re-run's outcome of seq %llu at version %llu differs from the one "
                 "delivered",
                 (unsigned long long)o->seq, (unsigned long long)o->version_after);
        resync_all(docs, doc, why, true);
        return;
    default:
        snprintf(why, sizeof why,
                 "a re-run's outcome at version %llu is older than what is remembered",
                 (unsigned long long)o->version_after);
        resync_all(docs, doc, why, false);
        return;
    }
}

/* An outcome that applied commands, for a live doc. Takes raw (kept in the
 * window). False when the record must not be answered (a re-run's copy or
 * a divergence: the origin was answered by the first run). */
static bool on_applied(gw_docs_t *docs, gw_doc_t *doc, const fl_outcome_t *o, int64_t ts_ms,
                       char *raw, size_t rawlen)
{
    uint64_t v = fl_doc_version(doc->live);
    int rc;

    if (o->version_after <= v) {
        free(raw);
        if (docs->conf.rerun_max) /* speculative: a re-run may repeat it */
            on_verdict(docs, doc, o, gw_rerun_check(&doc->rerun, o));
        return false;
    }
    if (o->version_before < v) {
        /* a re-run that cut its versions otherwise than the first run */
        free(raw);
        resync_all(docs, doc, "diverged: a re-run's outcome straddles the live version", true);
        return false;
    }
    if (o->version_before != v) {
        free(raw);
        resync(docs, doc, "an outcome does not follow the live copy");
        return true;
    }
    fl_arena_reset(docs->arena);
    rc = fl_doc_apply_applied(doc->live, o->version_before, o->applied, o->napplied, o->chain,
                              docs->arena);
    if (rc != 0) {
        free(raw);
        if (rc == FL_EERR_CHAIN)
            resync_all(docs, doc, "diverged: an outcome's chain hash does not follow", true);
        else
            resync(docs, doc, fl_engine_strerror(rc));
        return true;
    }
    if (docs->conf.rerun_max)
        gw_rerun_push(&doc->rerun, o, docs->conf.rerun_max);
    fan_out_outcome(docs, doc, o, ts_ms);
    /* out of memory only empties the window: catch-ups get snapshots */
    fl_window_push(&doc->window, o->version_before, o->version_after, raw, rawlen);
    return true;
}

static void on_outcome(gw_docs_t *docs, const fl_wire_outcome_t *wo, int64_t ts_ms,
                       uint64_t committed, char *raw, size_t rawlen)
{
    const fl_outcome_t *o = &wo->outcome;
    gw_doc_t *doc = gw_docs_get(docs, o->doc);
    bool answer = true;

    if (doc)
        gw_rerun_committed(&doc->rerun, committed);
    if (doc && doc->state == DOC_LIVE && o->napplied > 0 && !o->duplicate) {
        answer = on_applied(docs, doc, o, ts_ms, raw, rawlen);
    } else {
        free(raw);
        /* a refusal below the live version: only a re-run writes one there */
        if (doc && doc->state == DOC_LIVE && !o->duplicate && docs->conf.rerun_max &&
            o->version_after < fl_doc_version(doc->live)) {
            on_verdict(docs, doc, o, gw_rerun_check_refusal(&doc->rerun, o));
            answer = false;
        }
    }

    /* The originating connection (or HTTP request) gets its outcome. */
    if (answer && wo->gw.len == docs->conf.id.len &&
        memcmp(wo->gw.ptr, docs->conf.id.ptr, docs->conf.id.len) == 0)
        answer_outcome(docs, doc, wo);
}

static void on_signal(gw_docs_t *docs, const fl_wire_signal_t *s)
{
    gw_doc_t *doc = gw_docs_get(docs, s->doc);
    fl_wire_msg_t msg;
    lazy_t l = {&msg, NULL, 0, 0};
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
    fan_out(doc, bin, lazy_json, &l, 0);
    gw_buf_unref(bin);
    fl_counter_inc(docs->m->signals_out);
}

void gw_docs_on_record(gw_docs_t *docs, const fl_wire_msg_t *msg, int64_t ts_ms,
                       uint64_t committed, char *raw, size_t rawlen)
{
    switch (msg->type) {
    case FL_WT_REC_OUTCOME:
        on_outcome(docs, &msg->u.outcome, ts_ms, committed, raw, rawlen);
        return;
    case FL_WT_REC_SYNC_REPLY:
        on_sync_reply(docs, &msg->u.reply, committed);
        break;
    case FL_WT_REC_SIGNAL:
        on_signal(docs, &msg->u.signal);
        break;
    default:
        break;
    }
    free(raw);
}

/* ---- timers ---------------------------------------------------------------------- */

void gw_docs_tick(gw_docs_t *docs, int64_t now_us)
{
    gw_doc_t *doc;
    FL_HMAP_FOREACH(docs->map, it, doc) {
        if (doc->state == DOC_SYNCING && now_us > doc->sync_deadline_us) {
            fl_warn("no sync reply for %.*s yet; asking again", (int)doc->idlen, doc->id);
            send_sync(docs, doc);
        }
        if (doc->nsubs == 0 && !doc->waiters && doc->idle_since_us &&
            now_us - doc->idle_since_us > docs->conf.idle_us) {
            /* the current entry: the iteration goes on with the next */
            fl_debug("dropping idle document %.*s", (int)doc->idlen, doc->id);
            doc_drop(docs, doc);
        }
    }
}

gw_docs_t *gw_docs_new(const gw_docs_conf_t *conf, const gw_docs_parts_t *parts,
                       gw_origins_t *origins, gw_metrics_t *m)
{
    gw_docs_t *docs = calloc(1, sizeof *docs);
    if (!docs)
        return NULL;
    docs->conf = *conf;
    docs->parts = *parts;
    docs->origins = origins;
    docs->m = m;
    docs->next_req = conf->req_base;
    docs->engine = fl_engine_config_default;
    if (!(docs->map = fl_hmap_new()) || !(docs->arena = fl_arena_new(1 << 16)) ||
        !(docs->engine.scratch = fl_engine_scratch_new())) {
        gw_docs_free(docs);
        return NULL;
    }
    return docs;
}

void gw_docs_free(gw_docs_t *docs)
{
    gw_doc_t *doc;
    if (!docs)
        return;
    if (docs->map) {
        FL_HMAP_FOREACH(docs->map, it, doc)
            doc_free(docs, doc); /* the map is freed next, unread */
        fl_hmap_free(docs->map);
    }
    fl_arena_free(docs->arena);
    fl_engine_scratch_free(docs->engine.scratch);
    free(docs);
}
