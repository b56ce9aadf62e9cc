/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_queue: what goes out on a client's connection. Frames are
 * encoded once with LWS_PRE headroom; the control queue (hello, auth,
 * subscribe, signal ...) goes first, then pending flushes, each QUEUED,
 * INFLIGHT or RETRY, with the one timer that resends them.
 */
#include "client_int.h"

bool cl_established(const fl_client_t *client)
{
    return client->wsi && (client->state == FL_CLIENT_HELLO || client->state == FL_CLIENT_READY);
}

void cl_want_write(fl_client_t *client)
{
    if (cl_established(client))
        lws_callback_on_writable(client->wsi);
}

void cl_set_state(fl_client_t *client, fl_client_state_t state, int close_code)
{
    if (client->state == state)
        return;
    client->state = state;
    if (client->cb.on_status && !client->dead)
        client->cb.on_status(client, client->opaque, state, close_code);
}

static frame_t *frame_new(const char *data, size_t len, bool text)
{
    frame_t *frame = malloc(sizeof *frame + LWS_PRE + len);
    if (!frame)
        return NULL;
    frame->next = NULL;
    frame->len = len;
    frame->text = text;
    frame->secret = false;
    memcpy(frame->buf + LWS_PRE, data, len);
    return frame;
}

void cl_frame_free(frame_t *frame)
{
    if (!frame)
        return;
    if (frame->secret)
        sodium_memzero(frame->buf + LWS_PRE, frame->len);
    free(frame);
}

/* Encodes msg in the client's form into a new frame. */
int cl_encode(fl_client_t *client, const fl_wire_msg_t *msg, bool secret, frame_t **out)
{
    char errstr[128], *buf = NULL;
    size_t len = 0;
    int r = fl_wire_encode(msg, client->json ? FL_WIRE_JSON : FL_WIRE_MSGPACK, &buf, &len, errstr,
                           sizeof errstr);
    if (r < 0)
        return r == -FL_CODE_INTERNAL ? FL_CLIENT_ENOMEM : FL_CLIENT_EENCODE;
    *out = frame_new(buf, len, client->json);
    if (secret)
        sodium_memzero(buf, len);
    free(buf);
    if (!*out)
        return FL_CLIENT_ENOMEM;
    (*out)->secret = secret;
    return 0;
}

int cl_queue_ctl(fl_client_t *client, const fl_wire_msg_t *msg, bool secret)
{
    frame_t *frame;
    int r = cl_encode(client, msg, secret, &frame);
    if (r < 0)
        return r;
    if (client->ctl_tail)
        client->ctl_tail->next = frame;
    else
        client->ctl_head = frame;
    client->ctl_tail = frame;
    cl_want_write(client);
    return 0;
}

void cl_ctl_clear(fl_client_t *client)
{
    frame_t *frame = client->ctl_head, *next;
    for (; frame; frame = next) {
        next = frame->next;
        cl_frame_free(frame);
    }
    client->ctl_head = client->ctl_tail = NULL;
}

void cl_pending_unlink(fl_client_t *client, pending_t *pf)
{
    TAILQ_REMOVE(&client->pend, pf, link);
    if (pf->st == PF_QUEUED)
        client->nqueued--;
    client->npending--;
    cl_frame_free(pf->frame);
    free(pf);
}

void cl_pending_set(fl_client_t *client, pending_t *pf, int st)
{
    if (pf->st == PF_QUEUED)
        client->nqueued--;
    if (st == PF_QUEUED)
        client->nqueued++;
    pf->st = st;
}

pending_t *cl_pending_find(const fl_client_t *client, fl_slice_t doc, uint64_t seq)
{
    pending_t *pf;
    TAILQ_FOREACH(pf, &client->pend, link)
        if (pf->seq == seq && pf->di->idlen == doc.len &&
            memcmp(pf->di->id, doc.ptr, doc.len) == 0)
            return pf;
    return NULL;
}

/* The first QUEUED flush whose earlier siblings (same doc) are all in
 * flight, none of them a nacked flush still waiting for its answer. */
pending_t *cl_pending_next(fl_client_t *client)
{
    pending_t *pf;
    uint64_t epoch;
    if (client->nqueued == 0)
        return NULL;
    epoch = ++client->scan_epoch;
    TAILQ_FOREACH(pf, &client->pend, link) {
        if (pf->di->scan == epoch)
            continue;
        if (pf->st == PF_INFLIGHT) {
            if (pf->nacked)
                pf->di->scan = epoch; /* the refused backlog goes one at a time */
            continue;
        }
        if (pf->st == PF_QUEUED)
            return pf;
        pf->di->scan = epoch; /* a RETRY blocks the rest of its document */
    }
    return NULL;
}

/* An earlier flush of pf's document had a retryable nack and is not
 * answered yet: pf waits behind it instead of retrying on its own. */
bool cl_pending_nacked_earlier(const pending_t *pf)
{
    const pending_t *p;
    for (p = TAILQ_PREV(pf, pending_list, link); p; p = TAILQ_PREV(p, pending_list, link))
        if (p->di == pf->di && p->nacked)
            return true;
    return false;
}

bool cl_pending_has_earlier(const pending_t *pf)
{
    const pending_t *p;
    for (p = TAILQ_PREV(pf, pending_list, link); p; p = TAILQ_PREV(p, pending_list, link))
        if (p->di == pf->di)
            return true;
    return false;
}

static void on_retry_timer(lws_sorted_usec_list_t *sul);

/* One timer serves both RETRY deadlines (nack retry_after) and INFLIGHT
 * deadlines (no outcome within ack_timeout: resend, safe by dedup); it is
 * armed for the earliest deadline known, and rescans when it fires. */
void cl_arm_timer(fl_client_t *client, int64_t at)
{
    int64_t now;
    if (at >= client->timer_at)
        return;
    now = fl_clock_mono_ms();
    client->timer_at = at;
    lws_sul_schedule(client->ctx->context, 0, &client->sul_retry, on_retry_timer,
                     (lws_usec_t)(at > now ? at - now : 0) * LWS_US_PER_MS);
}

static void on_retry_timer(lws_sorted_usec_list_t *sul)
{
    fl_client_t *client = lws_container_of(sul, fl_client_t, sul_retry);
    int64_t now = fl_clock_mono_ms(), next = INT64_MAX;
    pending_t *pf;
    client->timer_at = INT64_MAX;
    TAILQ_FOREACH(pf, &client->pend, link) {
        if (pf->st == PF_QUEUED)
            continue;
        if (pf->deadline_ms <= now) {
            if (pf->st == PF_INFLIGHT)
                client->stats.timeouts++;
            cl_pending_set(client, pf, PF_QUEUED);
        } else if (pf->deadline_ms < next) {
            next = pf->deadline_ms;
        }
    }
    if (next != INT64_MAX)
        cl_arm_timer(client, next);
    cl_want_write(client);
}
