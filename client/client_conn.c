/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_conn: connection life (connect with back-off over the gateway
 * list, disconnect, pacing of flushes, the WRITEABLE step) and the lws
 * context the clients share (service, reaping clients freed in a
 * callback).
 */
#include "client_int.h"

static void on_connect_timer(lws_sorted_usec_list_t *sul);

/* Delay before attempt number `attempt` (1-based) of a back-off: the
 * exponential step with "equal jitter" (half fixed, half random), capped. */
static uint32_t backoff_ms(const fl_client_t *client, uint32_t attempt)
{
    uint64_t step = client->backoff_initial_ms;
    uint32_t i;
    for (i = 1; i < attempt && step < client->backoff_max_ms; i++)
        step *= 2;
    if (step > client->backoff_max_ms)
        step = client->backoff_max_ms;
    if (step < 2)
        return (uint32_t)step;
    return (uint32_t)(step / 2 + randombytes_uniform((uint32_t)(step - step / 2) + 1));
}

void cl_schedule_connect(fl_client_t *client, uint32_t delay_ms)
{
    lws_sul_schedule(client->ctx->context, 0, &client->sul_connect, on_connect_timer,
                     (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

/* The connection (or the attempt) ended: decide between stop, reconnect now
 * and back-off. Acts once per connection. */
static void on_disconnect(fl_client_t *client, int close_code)
{
    pending_t *pf;
    uint32_t delay;

    if (!client->live)
        return;
    client->live = false;
    if (client->wsi)
        lws_set_opaque_user_data(client->wsi, NULL);
    client->wsi = NULL;
    client->rxlen = 0;
    client->rx_overflow = false;
    cl_ctl_clear(client);
    TAILQ_FOREACH(pf, &client->pend, link) {
        pf->nacked = false; /* the next gateway's bucket is fresh */
        if (pf->st != PF_QUEUED)
            cl_pending_set(client, pf, PF_QUEUED);
    }
    lws_sul_cancel(&client->sul_retry);
    client->timer_at = INT64_MAX;
    lws_sul_cancel(&client->sul_pace);
    if (client->dead)
        return;

    if (client->closing || (close_code >= 4000 && close_code <= 4099)) {
        client->app_closed = client->closing;
        client->closing = false;
        cl_set_state(client, FL_CLIENT_STOPPED, close_code);
        return;
    }
    if ((close_code >= 4100 && close_code <= 4199) || client->proto_err)
        delay = backoff_ms(client, ++client->attempts);
    else if (++client->attempts <= client->ngws)
        delay = 0; /* 4200-4299, other codes, network errors: each address at once */
    else
        delay = backoff_ms(client, client->attempts - client->ngws);
    client->proto_err = false;
    if (client->ngws > 1) {
        /* failover: the next attempt goes to the next address */
        client->gw_cur = (client->gw_cur + 1) % client->ngws;
        client->stats.failovers++;
    }
    cl_set_state(client, FL_CLIENT_BACKOFF, close_code);
    if (!client->dead && client->state == FL_CLIENT_BACKOFF)
        cl_schedule_connect(client, delay);
}

static void on_connect_timer(lws_sorted_usec_list_t *sul)
{
    fl_client_t *client = lws_container_of(sul, fl_client_t, sul_connect);
    struct lws_client_connect_info info;

    if (client->dead || client->live || client->state == FL_CLIENT_STOPPED)
        return;
    memset(&info, 0, sizeof info);
    info.context = client->ctx->context;
    info.address = client->gws[client->gw_cur].host;
    info.port = client->gws[client->gw_cur].port;
    info.path = client->path;
    info.host = client->gws[client->gw_cur].host;
    info.local_protocol_name = PROTOCOL_NAME;
    info.opaque_user_data = client;
    info.pwsi = &client->wsi;
    client->close_code = 0;
    client->proto_err = false;
    client->live = true;
    client->stats.connects++;
    cl_set_state(client, FL_CLIENT_CONNECTING, 0);
    if (client->dead || client->state != FL_CLIENT_CONNECTING)
        return;
    /* A synchronous failure may already have run on_disconnect through
     * CLIENT_CONNECTION_ERROR; otherwise it is handled here. */
    if (!lws_client_connect_via_info(&info)) {
        client->wsi = NULL;
        on_disconnect(client, 0);
    }
}

static void on_pace_timer(lws_sorted_usec_list_t *sul)
{
    cl_want_write(lws_container_of(sul, fl_client_t, sul_pace));
}

/* One token of the pacing bucket, or false with a wake-up scheduled for
 * when the next one is due. */
static bool pace_take(fl_client_t *client)
{
    int64_t now;
    double wait_us;
    if (client->pace_rate <= 0)
        return true;
    now = fl_clock_mono_us();
    client->pace_tokens += (double)(now - client->pace_last_us) * client->pace_rate;
    if (client->pace_tokens > client->pace_burst)
        client->pace_tokens = client->pace_burst;
    client->pace_last_us = now;
    if (client->pace_tokens >= 1.0) {
        client->pace_tokens -= 1.0;
        return true;
    }
    wait_us = (1.0 - client->pace_tokens) / client->pace_rate;
    lws_sul_schedule(client->ctx->context, 0, &client->sul_pace, on_pace_timer,
                     (lws_usec_t)wait_us + 1);
    return false;
}

static int on_writeable(fl_client_t *client, struct lws *wsi)
{
    frame_t *frame = NULL;
    pending_t *pf = NULL;
    size_t len;
    int n;

    if (client->closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    if (client->ctl_head) {
        frame = client->ctl_head;
        if (!(client->ctl_head = frame->next))
            client->ctl_tail = NULL;
    } else if (client->state == FL_CLIENT_READY && (pf = cl_pending_next(client))) {
        if (!pace_take(client))
            return 0; /* on_pace_timer asks for WRITEABLE again */
        frame = pf->frame;
    } else {
        return 0;
    }
    len = frame->len;
    if (pf) {
        /* lws masks client frames in place: a pending flush is kept intact
         * for resends, so it is written from a scratch copy */
        fl_client_ctx_t *ctx = client->ctx;
        if (ctx->scratch_cap < LWS_PRE + len) {
            unsigned char *p = realloc(ctx->scratch, LWS_PRE + len);
            if (!p)
                return -1;
            ctx->scratch = p;
            ctx->scratch_cap = LWS_PRE + len;
        }
        memcpy(ctx->scratch + LWS_PRE, frame->buf + LWS_PRE, len);
        n = lws_write(wsi, ctx->scratch + LWS_PRE, len,
                      frame->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
    } else {
        n = lws_write(wsi, frame->buf + LWS_PRE, len,
                      frame->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
    }
    if (pf) {
        cl_pending_set(client, pf, PF_INFLIGHT);
        pf->deadline_ms = fl_clock_mono_ms() + client->ack_timeout_ms;
        cl_arm_timer(client, pf->deadline_ms);
        if (pf->sent_once)
            client->stats.resent++;
        pf->sent_once = true;
    } else {
        cl_frame_free(frame);
    }
    if (n < 0 || (size_t)n < len)
        return -1;
    client->stats.sent++;
    if (client->ctl_head || (client->state == FL_CLIENT_READY && client->nqueued > 0))
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    fl_client_t *client = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    fl_wire_msg_t msg;

    if (!client)
        return 0;
    if (client->dead) {
        /* freed from a callback, reaped at the end of this turn: let the
         * connection go, and forget it once lws does */
        if (reason == LWS_CALLBACK_CLIENT_CLOSED ||
            reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR) {
            lws_set_opaque_user_data(wsi, NULL);
            if (client->wsi == wsi)
                client->wsi = NULL;
            client->live = false;
            return 0;
        }
        return reason == LWS_CALLBACK_CLIENT_RECEIVE || reason == LWS_CALLBACK_CLIENT_WRITEABLE
                   ? -1
                   : 0;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        client->wsi = wsi;
        cl_set_state(client, FL_CLIENT_HELLO, 0);
        if (client->dead || client->state != FL_CLIENT_HELLO)
            return client->dead ? -1 : 0;
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_HELLO;
        msg.u.hello.token = (fl_slice_t){client->token, strlen(client->token)};
        msg.u.hello.client = (fl_slice_t){client->name, strlen(client->name)};
        /* the hello goes first, before anything queued while connecting */
        {
            frame_t *frame;
            if (cl_encode(client, &msg, true, &frame) < 0)
                return -1;
            cl_ctl_clear(client);
            client->ctl_head = client->ctl_tail = frame;
        }
        lws_callback_on_writable(wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        return cl_on_receive(client, wsi, in, len);

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(client, wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (in && len >= 2)
            client->close_code = ((const unsigned char *)in)[0] << 8 |
                                 ((const unsigned char *)in)[1];
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (in && len > 0)
            cl_emit_error(client, FL_CODE_UNAVAILABLE, "connection failed");
        on_disconnect(client, 0);
        return 0;

    case LWS_CALLBACK_CLIENT_CLOSED:
        on_disconnect(client, client->close_code);
        return 0;

    default:
        return 0;
    }
}

fl_client_ctx_t *fl_client_ctx_new(char *errstr, size_t errstr_size)
{
    struct lws_context_creation_info info;
    fl_client_ctx_t *ctx;

    if (sodium_init() < 0) {
        snprintf(errstr, errstr_size, "client: libsodium does not initialise");
        return NULL;
    }
    if (!(ctx = calloc(1, sizeof *ctx))) {
        snprintf(errstr, errstr_size, "client: out of memory");
        return NULL;
    }
    LIST_INIT(&ctx->clients);
    LIST_INIT(&ctx->dead);
    ctx->protocols[0].name = PROTOCOL_NAME;
    ctx->protocols[0].callback = on_lws;
    ctx->protocols[0].rx_buffer_size = 65536;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ctx->protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = ctx;
    info.timeout_secs = 10; /* connect and handshake */
    ctx->context = lws_create_context(&info);
    if (!ctx->context) {
        snprintf(errstr, errstr_size, "client: cannot create the libwebsockets context");
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void on_wake(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only ends the poll wait */
}

/* context_going: the whole lws context is about to be destroyed, which
 * closes every connection itself; asking lws to kill one asynchronously then
 * is not only useless but crashes lws 4.1.6 for a connection still being
 * set up (its timeout list is not there yet). */
void cl_client_destroy_ex(fl_client_t *client, bool context_going)
{
    docinfo_t *di, *dnext;
    lws_sul_cancel(&client->sul_connect);
    lws_sul_cancel(&client->sul_retry);
    lws_sul_cancel(&client->sul_pace);
    if (client->wsi) {
        lws_set_opaque_user_data(client->wsi, NULL);
        if (!context_going)
            lws_set_timeout(client->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        client->wsi = NULL;
    }
    cl_ctl_clear(client);
    while (!TAILQ_EMPTY(&client->pend))
        cl_pending_unlink(client, TAILQ_FIRST(&client->pend));
    for (di = client->docs; di; di = dnext) {
        dnext = di->next;
        fl_doc_free(di->doc);
        free(di->id);
        free(di);
    }
    if (client->token) {
        size_t n = strlen(client->token);
        if (client->token_sodium) {
            sodium_free(client->token);
        } else {
            sodium_memzero(client->token, n);
            free(client->token);
        }
    }
    if (client->gws)
        for (uint32_t i = 0; i < client->ngws; i++)
            free(client->gws[i].host);
    free(client->gws);
    free(client->path);
    free(client->name);
    free(client->rx);
    fl_arena_free(client->arena);
    free(client);
}

void cl_client_destroy(fl_client_t *client)
{
    cl_client_destroy_ex(client, false);
}

static void reap_ex(fl_client_ctx_t *ctx, bool context_going)
{
    while (!LIST_EMPTY(&ctx->dead)) {
        fl_client_t *client = LIST_FIRST(&ctx->dead);
        LIST_REMOVE(client, link);
        cl_client_destroy_ex(client, context_going);
    }
}

static void reap(fl_client_ctx_t *ctx)
{
    reap_ex(ctx, false);
}

int fl_client_service(fl_client_ctx_t *ctx, int timeout_ms)
{
    int r;
    ctx->depth++;
    if (timeout_ms > 0) {
        lws_sul_schedule(ctx->context, 0, &ctx->sul_wake, on_wake,
                         (lws_usec_t)timeout_ms * LWS_US_PER_MS);
        r = lws_service(ctx->context, 0);
        lws_sul_cancel(&ctx->sul_wake);
    } else {
        r = lws_service(ctx->context, -1);
    }
    ctx->depth--;
    if (ctx->depth == 0)
        reap(ctx);
    return r < 0 ? -1 : 0;
}

void fl_client_ctx_free(fl_client_ctx_t *ctx)
{
    if (!ctx)
        return;
    while (!LIST_EMPTY(&ctx->clients)) {
        fl_client_t *client = LIST_FIRST(&ctx->clients);
        LIST_REMOVE(client, link);
        client->dead = true;
        cl_client_destroy_ex(client, true);
    }
    reap_ex(ctx, true);
    lws_sul_cancel(&ctx->sul_wake);
    lws_context_destroy(ctx->context);
    free(ctx->scratch);
    free(ctx);
}
