/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_docs: the client's documents (local copies kept in step with the
 * engine by snapshots and deltas, resynced when a chain does not match)
 * and the handling of every incoming message: reassembly of fragments,
 * decode, then welcome, snapshot, deltas, outcome or nack.
 */
#include "client_int.h"

bool cl_doc_id_ok(fl_slice_t doc)
{
    return doc.ptr && doc.len >= 1 && doc.len <= FL_DOC_ID_MAX && fl_utf8_valid(doc.ptr, doc.len);
}

docinfo_t *cl_doc_find(const fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di;
    for (di = client->docs; di; di = di->next)
        if (di->idlen == doc.len && memcmp(di->id, doc.ptr, doc.len) == 0)
            return di;
    return NULL;
}

docinfo_t *cl_doc_get(fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di = cl_doc_find(client, doc);
    if (di)
        return di;
    if (!(di = calloc(1, sizeof *di)))
        return NULL;
    if (!(di->id = malloc(doc.len))) {
        free(di);
        return NULL;
    }
    memcpy(di->id, doc.ptr, doc.len);
    di->idlen = doc.len;
    di->next = client->docs;
    client->docs = di;
    return di;
}

fl_slice_t cl_doc_slice(const docinfo_t *di)
{
    return (fl_slice_t){di->id, di->idlen};
}

int cl_send_subscribe(fl_client_t *client, docinfo_t *di)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SUBSCRIBE;
    msg.u.sub.doc = cl_doc_slice(di);
    if (di->synced) {
        msg.u.sub.has_version = true;
        msg.u.sub.have_version = fl_doc_version(di->doc);
    }
    return cl_queue_ctl(client, &msg, false);
}

int cl_send_unsubscribe(fl_client_t *client, docinfo_t *di)
{
    fl_wire_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_UNSUBSCRIBE;
    msg.u.sub.doc = cl_doc_slice(di);
    return cl_queue_ctl(client, &msg, false);
}

void cl_emit_error(fl_client_t *client, int code, const char *reason)
{
    if (client->cb.on_error && !client->dead)
        client->cb.on_error(client, client->opaque, code, (fl_slice_t){reason, strlen(reason)});
}

/* The local copy no longer fits the server's history: start again from a
 * fresh copy and a subscribe without have_version. */
static void resync(fl_client_t *client, docinfo_t *di, const char *why)
{
    fl_doc_t *fresh = fl_doc_new(cl_doc_slice(di), &client->engine);
    client->stats.resyncs++;
    if (fresh) {
        fl_doc_free(di->doc);
        di->doc = fresh;
    }
    di->synced = false;
    if (client->state == FL_CLIENT_READY) {
        cl_send_unsubscribe(client, di);
        cl_send_subscribe(client, di);
    }
    cl_emit_error(client, FL_CODE_BAD_FRAME, why);
}

static void handle_snapshot(fl_client_t *client, const fl_wire_snapshot_t *snap)
{
    docinfo_t *di = cl_doc_find(client, snap->doc);
    int r;
    if (!di || !di->subscribed || !di->doc)
        return;
    r = fl_doc_restore(di->doc, &snap->state, snap->version, snap->chain);
    if (r < 0) {
        di->synced = false;
        cl_emit_error(client, FL_CODE_BAD_FRAME, "snapshot does not restore");
        return;
    }
    di->synced = true;
    if (client->cb.on_snapshot)
        client->cb.on_snapshot(client, client->opaque, snap->doc, snap->version,
                               fl_doc_state(di->doc));
}

static void handle_deltas(fl_client_t *client, const fl_wire_deltas_t *deltas)
{
    docinfo_t *di = cl_doc_find(client, deltas->doc);
    uint32_t i;
    if (!di || !di->subscribed || !di->doc)
        return;
    for (i = 0; i < deltas->nitems && !client->dead; i++) {
        const fl_wire_delta_t *d = &deltas->items[i];
        uint64_t local = fl_doc_version(di->doc), before = d->version - d->ncmds;
        int r;
        if (di->synced && d->version <= local)
            continue; /* already have it */
        if (before != local) {
            if (di->synced)
                resync(client, di, "version gap in deltas");
            return; /* not synced: stale deltas from before a resubscribe */
        }
        r = fl_doc_apply_applied(di->doc, before, d->cmds, d->ncmds, d->chain, client->arena);
        if (r < 0) {
            if (di->synced)
                resync(client, di,
                       r == FL_EERR_CHAIN ? "chain mismatch in deltas" : "delta does not apply");
            return;
        }
        di->synced = true;
        if (client->cb.on_delta)
            client->cb.on_delta(client, client->opaque, deltas->doc, d);
    }
}

static void handle_outcome(fl_client_t *client, const fl_outcome_t *outcome)
{
    pending_t *pf;
    if (memcmp(outcome->client_id, client->client_id, FL_CLIENT_ID_LEN) != 0)
        return;
    if (!(pf = cl_pending_find(client, outcome->doc, outcome->seq)))
        return; /* answered already (e.g. a resend's duplicate) */
    if (outcome->code == FL_CODE_GAP && cl_pending_has_earlier(pf)) {
        /* an earlier seq did not reach the processor: send this one again
         * once the earlier ones are on their way */
        cl_pending_set(client, pf, PF_QUEUED);
        cl_want_write(client);
        return;
    }
    cl_pending_unlink(client, pf);
    if (client->nqueued > 0)
        cl_want_write(client); /* flushes held behind a nacked one may go now */
    if (client->cb.on_outcome)
        client->cb.on_outcome(client, client->opaque, outcome);
}

static void handle_nack(fl_client_t *client, const fl_wire_nack_t *nack)
{
    fl_client_nack_t info;
    pending_t *pf = NULL;

    memset(&info, 0, sizeof info);
    info.doc = nack->doc;
    info.has_seq = nack->has_seq;
    info.seq = nack->seq;
    info.code = nack->code;
    info.retry_after_ms = nack->has_retry ? nack->retry_after_ms : 0;
    info.reason = nack->reason;
    if (nack->has_seq && nack->doc.len > 0 &&
        (!nack->has_client_id ||
         memcmp(nack->client_id, client->client_id, FL_CLIENT_ID_LEN) == 0))
        pf = cl_pending_find(client, nack->doc, nack->seq);
    if (pf) {
        if (nack->code == FL_CODE_UNAVAILABLE || nack->code == FL_CODE_RATE_LIMITED) {
            info.retrying = true;
            if (cl_pending_nacked_earlier(pf)) {
                /* held: resent in seq order once the earlier one is answered
                 * (a timer of its own would resend the whole backlog at once) */
                pf->nacked = true;
                cl_pending_set(client, pf, PF_QUEUED);
            } else {
                pf->nacked = true;
                cl_pending_set(client, pf, PF_RETRY);
                pf->deadline_ms = fl_clock_mono_ms() +
                                  (nack->has_retry ? nack->retry_after_ms : DEFAULT_RETRY_MS);
                cl_arm_timer(client, pf->deadline_ms);
            }
        } else {
            cl_pending_unlink(client, pf);
            if (client->nqueued > 0)
                cl_want_write(client);
        }
    }
    if (client->cb.on_nack)
        client->cb.on_nack(client, client->opaque, &info);
}

static void handle_welcome(fl_client_t *client, const fl_wire_welcome_t *welcome)
{
    docinfo_t *di;
    client->stats.welcomes++;
    client->attempts = 0;
    client->pace_rate = 0;
    if (!client->no_pacing && welcome->rate > 0) {
        /* The gateway's bucket starts full on a new connection. Pacing at
         * exactly its rate and burst lost about one flush in a thousand to
         * rate_limited: a timer that fires early by a rounding, or frames
         * that leave spaced and arrive bunched, spend a token the gateway
         * has not refilled yet. A bucket one token smaller refilled 5%
         * slower absorbs both. */
        client->pace_rate = (double)welcome->rate * (FL_CLIENT_PACE_RATE_PCT / 100.0) / 1e6;
        client->pace_burst = welcome->burst > 1 ? (double)welcome->burst - 1 : 1;
        client->pace_tokens = client->pace_burst;
        client->pace_last_us = fl_clock_mono_us();
    }
    cl_set_state(client, FL_CLIENT_READY, 0);
    if (client->dead || client->state != FL_CLIENT_READY)
        return;
    for (di = client->docs; di; di = di->next)
        if (di->subscribed)
            cl_send_subscribe(client, di);
    cl_want_write(client);
    if (client->cb.on_welcome)
        client->cb.on_welcome(client, client->opaque, welcome);
}

/* One whole server message. Non-zero: close the connection (bad frame). */
static int handle_message(fl_client_t *client, const char *buf, size_t len, bool text)
{
    fl_wire_limits_t lim = fl_wire_limits_frame;
    fl_wire_msg_t msg;
    char errstr[256];
    int r;

    lim.max_frame = client->max_frame;
    fl_arena_reset(client->arena);
    client->stats.received++;
    r = fl_wire_decode(FL_WIRE_S2C, text ? FL_WIRE_JSON : FL_WIRE_MSGPACK, buf, len, &lim,
                       client->arena, &msg, errstr, sizeof errstr);
    if (r == -FL_CODE_UNKNOWN_TYPE)
        return 0; /* a newer server's message: ignored (PROTOCOL.md section 2) */
    if (r < 0) {
        client->stats.bad_frames++;
        cl_emit_error(client, -r, errstr);
        return -1;
    }
    if (client->state != FL_CLIENT_READY && msg.type != FL_WT_WELCOME &&
        msg.type != FL_WT_ERROR && msg.type != FL_WT_PONG) {
        client->stats.bad_frames++;
        cl_emit_error(client, FL_CODE_BAD_FRAME, "message before welcome");
        return -1;
    }
    switch (msg.type) {
    case FL_WT_WELCOME:
        handle_welcome(client, &msg.u.welcome);
        break;
    case FL_WT_SNAPSHOT:
        handle_snapshot(client, &msg.u.snapshot);
        break;
    case FL_WT_DELTAS:
        handle_deltas(client, &msg.u.deltas);
        break;
    case FL_WT_OUTCOME:
        handle_outcome(client, &msg.u.outcome.outcome);
        break;
    case FL_WT_NACK:
        handle_nack(client, &msg.u.nack);
        break;
    case FL_WT_SIGNAL_OUT:
        if (client->cb.on_signal)
            client->cb.on_signal(client, client->opaque, msg.u.signal.doc, msg.u.signal.user,
                                 &msg.u.signal.body);
        break;
    case FL_WT_ERROR:
        if (client->cb.on_error)
            client->cb.on_error(client, client->opaque, msg.u.error.code, msg.u.error.reason);
        break;
    default: /* pong */
        break;
    }
    return 0;
}

int cl_on_receive(fl_client_t *client, struct lws *wsi, const char *in, size_t len)
{
    if (client->rxlen == 0 && !client->rx_overflow)
        client->rx_text = !lws_frame_is_binary(wsi);
    if (!client->rx_overflow) {
        int r = fl_frag_append(&client->rx, &client->rxlen, &client->rxcap, in, len,
                               client->max_frame);
        if (r < 0)
            return -1;
        client->rx_overflow = r > 0;
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    if (client->rx_overflow) {
        client->rx_overflow = false;
        client->rxlen = 0;
        client->stats.bad_frames++;
        cl_emit_error(client, FL_CODE_LIMIT, "server message above max_frame");
        client->proto_err = true;
        return -1;
    }
    len = client->rxlen;
    client->rxlen = 0;
    if (handle_message(client, client->rx, len, client->rx_text) < 0) {
        client->proto_err = true;
        return -1;
    }
    return 0;
}
