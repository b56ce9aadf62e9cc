/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's documents module (gw_docs) against a fake partition layer
 * (no broker, no lws): the test plays the partitions (follows on demand,
 * answers when told), the processor (a real engine document applies
 * flushes and makes the outcomes and sync replies), the subscribers
 * (record every frame they are sent, decoded) and the origins (record the
 * outcomes they are answered).
 * - a document waits for its partition before it syncs; the sync reply
 *   makes it live: pending subscribers get their catch-up (a snapshot),
 *   an HTTP waiter is called once;
 * - an applied outcome is fanned out as one deltas message to every live
 *   subscriber; a later subscriber's catch-up comes from the window
 *   (deltas) or is a snapshot; one that is up to date gets nothing;
 * - the outcome of a subscriber's own flush that arrives while its
 *   catch-up is pending is held and sent right after the catch-up; an
 *   outcome for an origin that is not a subscriber goes to the origin's
 *   callback in the form of its frame; one for an origin that is gone, or
 *   another gateway's, goes nowhere;
 * - an outcome that does not follow the live copy drops it and syncs again
 *   (a new request; subscribers hear nothing until the reply);
 * - speculative delivery: a processor re-run's copies of outcomes already
 *   applied (same versions, same chain hashes) reach nobody again; a re-run
 *   that differs (another chain hash at a version) is a divergence: counted,
 *   the live copy synced again, every subscriber given a snapshot even at
 *   the version it holds;
 * - a document nobody needs is dropped after the idle time and its
 *   partition is told; a waiter that gave up does not keep it.
 */
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "flushline/engine.h"
#include "gw_docs.h"
#include "gw_origins.h"

#define GWID "gw-test"
#define MAXF 64

/* ---- the fake partition layer --------------------------------------------- */

typedef struct fake_parts_s {
    bool followed;     /* the one partition (0) */
    int follow_asks;   /* follow() calls that found it not followed */
    int docs;          /* documents that need it */
    int syncs;         /* sync records sent */
    uint64_t last_req; /* of the last sync */
    fl_arena_t *arena;
} fake_parts_t;

static int32_t fp_partition(void *ctx, fl_slice_t doc)
{
    (void)ctx;
    (void)doc;
    return 0;
}

static bool fp_follow(void *ctx, int32_t p)
{
    fake_parts_t *fp = ctx;
    (void)p;
    if (!fp->followed)
        fp->follow_asks++;
    return fp->followed;
}

static void fp_docs(void *ctx, int32_t p, int delta)
{
    fake_parts_t *fp = ctx;
    (void)p;
    fp->docs += delta;
}

static int fp_send(void *ctx, fl_slice_t doc, char *buf, size_t len)
{
    fake_parts_t *fp = ctx;
    fl_wire_msg_t msg;
    char errstr[256];
    (void)doc;
    fl_arena_reset(fp->arena);
    if (fl_wire_decode(FL_WIRE_RECORD, FL_WIRE_MSGPACK, buf, len, NULL, fp->arena, &msg, errstr,
                       sizeof errstr) == 0 &&
        msg.type == FL_WT_REC_SYNC) {
        fp->syncs++;
        fp->last_req = msg.u.sync.req;
    }
    free(buf); /* accepted: ownership passed */
    return 0;
}

/* ---- subscribers and origins that record what they get ----------------------- */

typedef struct frame_s {
    int type;
    uint64_t version; /* snapshot: version; deltas: from_version; outcome: version_after */
    uint32_t nitems;  /* deltas */
    uint64_t seq;     /* outcome */
} frame_t;

typedef struct peer_s {
    gw_origin_t o; /* the origin of its flushes */
    gw_subscriber_t sub;
    frame_t frames[MAXF];
    int nframes;
    int closes;
    int outcomes;          /* through the origin callback */
    fl_wire_form_t last_form;
    fl_arena_t *arena;
} peer_t;

static void record(peer_t *peer, const char *data, size_t len, fl_wire_form_t form)
{
    fl_wire_msg_t msg;
    char errstr[256];
    frame_t *f = &peer->frames[peer->nframes < MAXF ? peer->nframes : MAXF - 1];
    fl_arena_reset(peer->arena);
    memset(f, 0, sizeof *f);
    if (fl_wire_decode(FL_WIRE_S2C, form, data, len, NULL, peer->arena, &msg, errstr,
                       sizeof errstr) != 0) {
        f->type = -1;
    } else {
        f->type = msg.type;
        if (msg.type == FL_WT_SNAPSHOT)
            f->version = msg.u.snapshot.version;
        else if (msg.type == FL_WT_DELTAS) {
            f->version = msg.u.deltas.from_version;
            f->nitems = msg.u.deltas.nitems;
        } else if (msg.type == FL_WT_OUTCOME) {
            f->version = msg.u.outcome.outcome.version_after;
            f->seq = msg.u.outcome.outcome.seq;
        }
    }
    if (peer->nframes < MAXF)
        peer->nframes++;
}

static int sub_send(gw_subscriber_t *s, gw_buf_t *buf)
{
    peer_t *peer = (peer_t *)((char *)s - offsetof(peer_t, sub));
    record(peer, (const char *)buf->data + LWS_PRE, buf->len,
           buf->text ? FL_WIRE_JSON : FL_WIRE_MSGPACK);
    return 0;
}

static void sub_close(gw_subscriber_t *s, uint16_t code, const char *reason)
{
    peer_t *peer = (peer_t *)((char *)s - offsetof(peer_t, sub));
    (void)code;
    (void)reason;
    peer->closes++;
}

static const gw_subscriber_ops_t sub_ops = {sub_send, sub_close};

static void org_outcome(gw_origin_t *o, const fl_outcome_t *out, fl_wire_form_t form)
{
    peer_t *peer = (peer_t *)o;
    frame_t *f = &peer->frames[peer->nframes < MAXF ? peer->nframes++ : MAXF - 1];
    memset(f, 0, sizeof *f);
    f->type = FL_WT_OUTCOME;
    f->version = out->version_after;
    f->seq = out->seq;
    peer->outcomes++;
    peer->last_form = form;
}

static void org_failed(gw_origin_t *o, const gw_inflight_t *inf, uint16_t code, uint32_t retry,
                       const char *reason)
{
    (void)o;
    (void)inf;
    (void)code;
    (void)retry;
    (void)reason;
}

static const gw_origin_ops_t org_ops = {.on_outcome = org_outcome, .on_failed = org_failed};

/* ---- the fixture: documents, the fake layer, a processor ------------------------- */

typedef struct fixture_s {
    fake_parts_t fp;
    gw_metrics_t m;
    gw_origins_t *origins;
    gw_docs_t *docs;
    fl_doc_t *proc;   /* the processor's copy of "acme/d" */
    fl_arena_t *arena;
    uint64_t seq;
    peer_t peers[3];
} fixture_t;

static void setup(fixture_t *f)
{
    gw_docs_parts_t parts = {&f->fp, fp_partition, fp_follow, fp_docs, fp_send};
    gw_docs_conf_t conf = {.id = FL_SLICE(GWID),
                           .window_deltas = 4,
                           .idle_us = 1000000,
                           .sync_timeout_us = 10000000,
                           .minimal = NULL,
                           .req_base = 1000,
                           .rerun_max = 1000};
    memset(f, 0, sizeof *f);
    f->fp.arena = fl_arena_new(4096);
    f->arena = fl_arena_new(4096);
    ASSERT_EQ(gw_metrics_init(&f->m), 0);
    ASSERT_TRUE((f->origins = gw_origins_new(100, f->m.produce_errors)) != NULL);
    ASSERT_TRUE((f->docs = gw_docs_new(&conf, &parts, f->origins, &f->m)) != NULL);
    ASSERT_TRUE((f->proc = fl_doc_new(FL_SLICE("acme/d"), NULL)) != NULL);
    for (int i = 0; i < 3; i++) {
        peer_t *p = &f->peers[i];
        p->arena = fl_arena_new(4096);
        ASSERT_EQ(gw_origins_add(f->origins, &p->o, &org_ops), 0);
        p->sub.ops = &sub_ops;
        p->sub.origin = p->o.id;
        p->sub.form = FL_WIRE_MSGPACK;
    }
}

static void teardown(fixture_t *f)
{
    gw_docs_free(f->docs);
    gw_origins_free(f->origins);
    gw_metrics_free(&f->m);
    fl_doc_free(f->proc);
    fl_arena_free(f->fp.arena);
    fl_arena_free(f->arena);
    for (int i = 0; i < 3; i++)
        fl_arena_free(f->peers[i].arena);
}

/* The sync reply the processor gives to the last sync: its state now. */
static void reply_sync(fixture_t *f)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_SYNC_REPLY;
    msg.u.reply.doc = FL_SLICE("acme/d");
    msg.u.reply.gw = FL_SLICE(GWID);
    msg.u.reply.req = f->fp.last_req;
    msg.u.reply.version = fl_doc_version(f->proc);
    memcpy(msg.u.reply.chain, fl_doc_chain(f->proc), FL_HASH_LEN);
    msg.u.reply.has_state = true;
    msg.u.reply.state = *fl_doc_state(f->proc);
    gw_docs_on_record(f->docs, &msg, 0, 0, NULL, 0);
}

/* The processor applies one incr of /n from origin (gw: gwid) and the
 * outcome record reaches the documents. apply false: the processor's copy
 * is not advanced (the record is made up from a copy), to make an outcome
 * that does not follow. */
static void outcome(fixture_t *f, const char *gwid, uint64_t origin, bool deliver)
{
    fl_cmd_t cmd;
    fl_flush_t flush;
    fl_outcome_t out;
    fl_wire_msg_t msg;
    char *raw = NULL, errstr[256];
    size_t rawlen = 0;

    memset(&cmd, 0, sizeof cmd);
    cmd.op = FL_OP_INCR;
    cmd.path = FL_SLICE("/n");
    cmd.has_value = true;
    cmd.value = fl_value_int(1);
    memset(&flush, 0, sizeof flush);
    flush.doc = FL_SLICE("acme/d");
    memset(flush.client_id, 7, sizeof flush.client_id);
    flush.seq = ++f->seq;
    flush.ncmds = 1;
    flush.cmds = &cmd;
    flush.user = FL_SLICE("tester");
    fl_arena_reset(f->arena);
    ASSERT_EQ(fl_doc_apply(f->proc, &flush, f->arena, &out), 0);
    if (!deliver)
        return;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_OUTCOME;
    msg.u.outcome.outcome = out;
    msg.u.outcome.gw = (fl_slice_t){gwid, strlen(gwid)};
    msg.u.outcome.origin = origin;
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &raw, &rawlen, errstr, sizeof errstr), 0);
    gw_docs_on_record(f->docs, &msg, 0, 0, raw, rawlen); /* raw passes */
}

/* Applies an incr of /n by `by` as flush seq of client 7 to doc (a run of
 * the processor) and hands the outcome record to the documents, from gw
 * GWID and origin, with the fl-committed header committed. */
static void run_incr(fixture_t *f, fl_doc_t *doc, uint64_t seq, int64_t by, uint64_t origin,
                     uint64_t committed)
{
    fl_cmd_t cmd = {.op = FL_OP_INCR, .path = FL_SLICE("/n"), .has_value = true};
    fl_flush_t flush;
    fl_outcome_t out;
    fl_wire_msg_t msg;
    char *raw = NULL, errstr[256];
    size_t rawlen = 0;

    cmd.value = fl_value_int(by);
    memset(&flush, 0, sizeof flush);
    flush.doc = FL_SLICE("acme/d");
    memset(flush.client_id, 7, sizeof flush.client_id);
    flush.seq = seq;
    flush.ncmds = 1;
    flush.cmds = &cmd;
    flush.user = FL_SLICE("tester");
    fl_arena_reset(f->arena);
    ASSERT_EQ(fl_doc_apply(doc, &flush, f->arena, &out), 0);
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_OUTCOME;
    msg.u.outcome.outcome = out;
    msg.u.outcome.gw = FL_SLICE(GWID);
    msg.u.outcome.origin = origin;
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &raw, &rawlen, errstr, sizeof errstr), 0);
    gw_docs_on_record(f->docs, &msg, 0, committed, raw, rawlen);
}

static void test_rerun_copies_and_divergence(void)
{
    fixture_t f;
    peer_t *a;
    gw_doc_t *doc;
    fl_doc_t *rerun = NULL, *other = NULL;

    setup(&f);
    a = &f.peers[0];
    f.fp.followed = true;
    ASSERT_TRUE((doc = gw_docs_open(f.docs, FL_SLICE("acme/d"))) != NULL);
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &a->sub, false, 0), 0);
    reply_sync(&f);
    ASSERT_EQ(a->nframes, 1); /* the snapshot at 0 */
    /* the first run: three flushes of a, delivered before any commit */
    for (uint64_t seq = 1; seq <= 3; seq++)
        run_incr(&f, f.proc, seq, 1, a->o.id, 0);
    ASSERT_EQ(a->nframes, 7); /* delta then outcome, three times */
    ASSERT_EQ(a->outcomes, 3);
    /* the run aborts; the next owner applies the same records again from
     * the committed state (0): identical outcomes, which nobody hears of */
    ASSERT_TRUE((rerun = fl_doc_new(FL_SLICE("acme/d"), NULL)) != NULL);
    for (uint64_t seq = 1; seq <= 3; seq++)
        run_incr(&f, rerun, seq, 1, a->o.id, 0);
    ASSERT_EQ(a->nframes, 7);
    ASSERT_EQ(a->outcomes, 3);
    ASSERT_TRUE(gw_docs_live(doc));
    ASSERT_EQ(fl_counter_value(f.m.divergences), 0);
    ASSERT_EQ(fl_counter_value(f.m.resyncs), 0);
    /* a third run that differs from version 2 on (another increment):
     * version 1 is a copy, version 2 diverges */
    ASSERT_TRUE((other = fl_doc_new(FL_SLICE("acme/d"), NULL)) != NULL);
    run_incr(&f, other, 1, 1, a->o.id, 0);
    ASSERT_TRUE(gw_docs_live(doc));
    run_incr(&f, other, 2, 5, a->o.id, 0);
    ASSERT_TRUE(!gw_docs_live(doc));
    ASSERT_EQ(fl_counter_value(f.m.divergences), 1);
    ASSERT_EQ(a->nframes, 7); /* nothing of the divergent run */
    /* synced again at the same version number the subscriber holds (3):
     * it gets a snapshot all the same */
    run_incr(&f, other, 3, 1, a->o.id, 1);
    ASSERT_EQ(fl_doc_version(other), 3);
    fl_doc_free(f.proc);
    f.proc = other;
    other = NULL;
    reply_sync(&f);
    ASSERT_EQ(a->nframes, 9);
    ASSERT_EQ(a->frames[7].type, FL_WT_SNAPSHOT);
    ASSERT_EQ(a->frames[7].version, 3);
    /* the new run's answer to seq 3, which came while syncing, after it
     * (the client drops an answer to a seq it no longer waits for) */
    ASSERT_EQ(a->frames[8].type, FL_WT_OUTCOME);
    ASSERT_EQ(a->frames[8].seq, 3);
    fl_doc_free(rerun);
    teardown(&f);
}

static bool waiter_called;
static gw_doc_t *waiter_doc;

static void on_live(gw_waiter_t *w, gw_doc_t *doc)
{
    waiter_called = true;
    waiter_doc = doc;
    ASSERT_TRUE(w->doc == NULL); /* off the list before the call */
}

static void test_sync_then_catch_up(void)
{
    fixture_t f;
    gw_waiter_t w = {.on_live = on_live};
    peer_t *a, *b;
    gw_doc_t *doc;

    setup(&f);
    a = &f.peers[0];
    b = &f.peers[1];
    outcome(&f, "other-gw", 0, false); /* the document is at version 1 */
    ASSERT_TRUE((doc = gw_docs_open(f.docs, FL_SLICE("acme/d"))) != NULL);
    ASSERT_EQ(f.fp.follow_asks, 1);
    ASSERT_EQ(f.fp.docs, 1);
    ASSERT_EQ(f.fp.syncs, 0); /* not before the partition is followed */
    ASSERT_TRUE(gw_docs_open(f.docs, FL_SLICE("acme/d")) == doc);
    ASSERT_EQ(gw_docs_count(f.docs), 1);
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &a->sub, false, 0), 0);
    waiter_called = false;
    gw_docs_wait(f.docs, doc, &w);
    ASSERT_EQ(a->nframes, 0);

    f.fp.followed = true;
    gw_docs_on_part_ready(f.docs, 0);
    ASSERT_EQ(f.fp.syncs, 1);
    ASSERT_GT(f.fp.last_req, 1000);
    ASSERT_TRUE(!gw_docs_live(doc));
    reply_sync(&f);
    ASSERT_TRUE(gw_docs_live(doc));
    ASSERT_EQ(gw_docs_version(doc), 1);
    ASSERT_EQ(a->nframes, 1);
    ASSERT_EQ(a->frames[0].type, FL_WT_SNAPSHOT);
    ASSERT_EQ(a->frames[0].version, 1);
    ASSERT_TRUE(waiter_called && waiter_doc == doc);
    /* a late or repeated reply changes nothing */
    reply_sync(&f);
    ASSERT_EQ(a->nframes, 1);

    /* fan-out: one deltas item from version 1 */
    outcome(&f, "other-gw", 0, true);
    ASSERT_EQ(gw_docs_version(doc), 2);
    ASSERT_EQ(a->nframes, 2);
    ASSERT_EQ(a->frames[1].type, FL_WT_DELTAS);
    ASSERT_EQ(a->frames[1].version, 1);
    ASSERT_EQ(a->frames[1].nitems, 1);
    ASSERT_EQ(a->outcomes, 0);
    outcome(&f, "other-gw", 0, true); /* version 3 */

    /* catch-ups: from the window, nothing when up to date, else a snapshot */
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &b->sub, true, 1), 0);
    ASSERT_EQ(b->nframes, 1);
    ASSERT_EQ(b->frames[0].type, FL_WT_DELTAS);
    ASSERT_EQ(b->frames[0].version, 1);
    ASSERT_EQ(b->frames[0].nitems, 2);
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &b->sub, true, 3), 0); /* a repeated subscribe */
    ASSERT_EQ(b->nframes, 1);
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &b->sub, true, 0), 0); /* before the window */
    ASSERT_EQ(b->nframes, 2);
    ASSERT_EQ(b->frames[1].type, FL_WT_SNAPSHOT);
    ASSERT_EQ(b->frames[1].version, 3);
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &b->sub, true, 9), 0); /* ahead: a snapshot */
    ASSERT_EQ(b->frames[2].type, FL_WT_SNAPSHOT);
    ASSERT_EQ(a->nframes, 3);
    teardown(&f);
}

static void test_own_outcome_waits_for_catch_up(void)
{
    fixture_t f;
    peer_t *a, *c;
    gw_doc_t *doc;

    setup(&f);
    a = &f.peers[0];
    c = &f.peers[2];
    f.fp.followed = true;
    ASSERT_TRUE((doc = gw_docs_open(f.docs, FL_SLICE("acme/d"))) != NULL);
    ASSERT_EQ(f.fp.syncs, 1); /* followed already: the sync goes at once */
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &a->sub, false, 0), 0);
    /* a's flush is applied before the sync reply is read: its outcome is
     * held (the reply reflects it) ... */
    outcome(&f, GWID, gw_origin_tag(a->o.id, FL_WIRE_JSON), true);
    ASSERT_EQ(a->nframes, 0);
    ASSERT_EQ(a->outcomes, 0);
    /* ... as is not c's, which is no subscriber: answered at once, in its
     * frame's form */
    outcome(&f, GWID, gw_origin_tag(c->o.id, FL_WIRE_JSON), true);
    ASSERT_EQ(c->outcomes, 1);
    ASSERT_EQ(c->last_form, FL_WIRE_JSON);
    ASSERT_EQ(c->frames[0].seq, 2);
    /* another gateway's origin, an origin that is gone: nobody */
    outcome(&f, "other-gw", gw_origin_tag(c->o.id, FL_WIRE_MSGPACK), true);
    gw_origins_del(f.origins, &f.peers[1].o);
    outcome(&f, GWID, f.peers[1].o.id, true);
    ASSERT_EQ(c->outcomes, 1);
    ASSERT_EQ(f.peers[1].outcomes, 0);

    reply_sync(&f); /* at version 4 */
    ASSERT_EQ(a->nframes, 2);
    ASSERT_EQ(a->frames[0].type, FL_WT_SNAPSHOT); /* the changes first */
    ASSERT_EQ(a->frames[0].version, 4);
    ASSERT_EQ(a->frames[1].type, FL_WT_OUTCOME); /* then the held outcome, as JSON */
    ASSERT_EQ(a->frames[1].seq, 1);
    ASSERT_EQ(a->outcomes, 0);
    /* live now: a's next outcome follows its delta through the origin */
    outcome(&f, GWID, gw_origin_tag(a->o.id, FL_WIRE_MSGPACK), true);
    ASSERT_EQ(a->nframes, 4);
    ASSERT_EQ(a->frames[2].type, FL_WT_DELTAS);
    ASSERT_EQ(a->frames[3].type, FL_WT_OUTCOME);
    ASSERT_EQ(a->outcomes, 1);
    ASSERT_EQ(a->last_form, FL_WIRE_MSGPACK);
    teardown(&f);
}

static void test_gap_resyncs(void)
{
    fixture_t f;
    peer_t *a;
    gw_doc_t *doc;
    uint64_t req;

    setup(&f);
    a = &f.peers[0];
    f.fp.followed = true;
    ASSERT_TRUE((doc = gw_docs_open(f.docs, FL_SLICE("acme/d"))) != NULL);
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &a->sub, false, 0), 0);
    reply_sync(&f);
    ASSERT_EQ(a->nframes, 1);
    req = f.fp.last_req;
    outcome(&f, "other-gw", 0, false); /* version 1 never reaches the gateway */
    outcome(&f, "other-gw", 0, true);  /* 1 -> 2 does not follow 0 */
    ASSERT_TRUE(!gw_docs_live(doc));
    ASSERT_EQ(f.fp.syncs, 2);
    ASSERT_GT(f.fp.last_req, req);
    ASSERT_EQ(fl_counter_value(f.m.resyncs), 1);
    ASSERT_EQ(a->nframes, 1); /* nothing while it is not consistent */
    outcome(&f, "other-gw", 0, true); /* version 3, before the reply: reflected in it */
    ASSERT_EQ(a->nframes, 1);
    reply_sync(&f);
    ASSERT_EQ(gw_docs_version(doc), 3);
    ASSERT_EQ(a->nframes, 2); /* the catch-up from what it holds (0): a snapshot */
    ASSERT_EQ(a->frames[1].type, FL_WT_SNAPSHOT);
    ASSERT_EQ(a->frames[1].version, 3);
    teardown(&f);
}

static void test_idle_documents_are_dropped(void)
{
    fixture_t f;
    gw_waiter_t w = {.on_live = on_live};
    peer_t *a;
    gw_doc_t *doc;
    int64_t now;

    setup(&f);
    a = &f.peers[0];
    ASSERT_TRUE((doc = gw_docs_open(f.docs, FL_SLICE("acme/d"))) != NULL);
    ASSERT_EQ(gw_docs_subscribe(f.docs, doc, &a->sub, false, 0), 0);
    gw_docs_wait(f.docs, doc, &w);
    now = fl_test_now_ms() * 1000 + 3600 * 1000000ll;
    gw_docs_tick(f.docs, now); /* subscribed and waited for: kept */
    ASSERT_EQ(gw_docs_count(f.docs), 1);
    gw_docs_unsubscribe(f.docs, doc, &a->sub);
    gw_docs_tick(f.docs, now); /* the waiter keeps it */
    ASSERT_EQ(gw_docs_count(f.docs), 1);
    gw_docs_unwait(f.docs, &w); /* it gave up (its own timer) */
    ASSERT_TRUE(w.doc == NULL);
    gw_docs_unwait(f.docs, &w); /* twice is nothing */
    gw_docs_tick(f.docs, fl_test_now_ms() * 1000); /* not idle long enough */
    ASSERT_EQ(gw_docs_count(f.docs), 1);
    gw_docs_tick(f.docs, now);
    ASSERT_EQ(gw_docs_count(f.docs), 0);
    ASSERT_EQ(f.fp.docs, 0);
    ASSERT_TRUE(gw_docs_get(f.docs, FL_SLICE("acme/d")) == NULL);
    teardown(&f);
}

int main(void)
{
    RUN(test_sync_then_catch_up);
    RUN(test_own_outcome_waits_for_catch_up);
    RUN(test_gap_resyncs);
    RUN(test_rerun_copies_and_divergence);
    RUN(test_idle_documents_are_dropped);
    return fl_test_done();
}
