/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client: see client.h. The public calls: creating and freeing clients,
 * their options (token, gateway list), subscriptions, flushes and signals.
 * The machinery behind them is described in client_int.h.
 */
#include "client_int.h"

const char *fl_client_strerror(int err)
{
    /* by -err */
    static const char *const text[] = {"success",       "out of memory",
                                       "invalid argument", "not connected",
                                       "client closed", "message cannot be encoded",
                                       "not subscribed"};
    return FL_NAME_AT(text, -(long)err, "unknown error");
}

const char *fl_client_state_name(int state)
{
    static const char *const names[] = {NULL,    "connecting", "hello",
                                        "ready", "backoff",    "stopped"};
    return FL_NAME_AT(names, state, "unknown");
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

static int set_token(fl_client_t *client, const char *token)
{
    size_t n = strlen(token);
    bool sodium = true;
    char *p = sodium_malloc(n + 1);
    if (!p) {
        /* guarded pages can run out with many clients (map count): plain
         * memory, still wiped on release */
        sodium = false;
        if (!(p = malloc(n + 1)))
            return FL_CLIENT_ENOMEM;
    }
    memcpy(p, token, n + 1);
    if (client->token) {
        if (client->token_sodium) {
            sodium_free(client->token);
        } else {
            sodium_memzero(client->token, strlen(client->token));
            free(client->token);
        }
    }
    client->token = p;
    client->token_sodium = sodium;
    return 0;
}

/* Parses "host:port" or "[v6addr]:port" into a new gwaddr_t. 0, or
 * FL_CLIENT_EINVAL / ENOMEM. */
static int parse_gateway(const char *s, gwaddr_t *out)
{
    const char *h = s, *colon;
    size_t hlen;
    char *p, *end;
    long port;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return FL_CLIENT_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        if (!(colon = strrchr(s, ':')) || memchr(s, ':', (size_t)(colon - s)))
            return FL_CLIENT_EINVAL; /* none, or a bare IPv6 address */
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || colon[1] < '0' || colon[1] > '9')
        return FL_CLIENT_EINVAL;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || port <= 0 || port > 65535)
        return FL_CLIENT_EINVAL;
    if (!(p = malloc(hlen + 1)))
        return FL_CLIENT_ENOMEM;
    memcpy(p, h, hlen);
    p[hlen] = '\0';
    out->host = p;
    out->port = (int)port;
    return 0;
}

/* Fills client->gws from opts: the gateways list, or host and port. */
static int set_gateways(fl_client_t *client, const fl_client_opts_t *opts)
{
    uint32_t n = 0;
    int r;

    if (opts->gateways)
        while (opts->gateways[n] && n <= FL_CLIENT_MAX_GATEWAYS)
            n++;
    if (n > FL_CLIENT_MAX_GATEWAYS)
        return FL_CLIENT_EINVAL;
    if (n == 0) {
        if (!opts->host || !*opts->host || opts->port <= 0 || opts->port > 65535)
            return FL_CLIENT_EINVAL;
        if (!(client->gws = calloc(1, sizeof *client->gws)))
            return FL_CLIENT_ENOMEM;
        client->ngws = 1;
        if (!(client->gws[0].host = dup_str(opts->host)))
            return FL_CLIENT_ENOMEM;
        client->gws[0].port = opts->port;
        return 0;
    }
    if (!(client->gws = calloc(n, sizeof *client->gws)))
        return FL_CLIENT_ENOMEM;
    client->ngws = n;
    for (uint32_t i = 0; i < n; i++)
        if ((r = parse_gateway(opts->gateways[i], &client->gws[i])) < 0)
            return r;
    return 0;
}

fl_client_t *fl_client_new(fl_client_ctx_t *ctx, const fl_client_opts_t *opts)
{
    static const uint8_t zero[FL_CLIENT_ID_LEN];
    fl_client_t *client;

    if (!ctx || !opts)
        return NULL;
    if (!(client = calloc(1, sizeof *client)))
        return NULL;
    TAILQ_INIT(&client->pend);
    client->ctx = ctx;
    if (set_gateways(client, opts) < 0)
        goto fail;
    client->path = dup_str(opts->path ? opts->path : DEFAULT_PATH);
    client->name = dup_str(opts->name ? opts->name : DEFAULT_NAME);
    client->arena = fl_arena_new(16384);
    if (!client->path || !client->name || !client->arena ||
        set_token(client, opts->token ? opts->token : "") < 0)
        goto fail;
    client->json = opts->json;
    client->no_pacing = opts->no_pacing;
    if (memcmp(opts->client_id, zero, FL_CLIENT_ID_LEN) == 0)
        randombytes_buf(client->client_id, FL_CLIENT_ID_LEN);
    else
        memcpy(client->client_id, opts->client_id, FL_CLIENT_ID_LEN);
    client->backoff_initial_ms =
        opts->backoff_initial_ms ? opts->backoff_initial_ms : DEFAULT_BACKOFF_INITIAL_MS;
    client->backoff_max_ms = opts->backoff_max_ms ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (client->backoff_max_ms < client->backoff_initial_ms)
        client->backoff_max_ms = client->backoff_initial_ms;
    client->max_frame = opts->max_frame ? opts->max_frame : DEFAULT_MAX_FRAME;
    client->ack_timeout_ms = opts->ack_timeout_ms ? opts->ack_timeout_ms : DEFAULT_ACK_TIMEOUT_MS;
    client->timer_at = INT64_MAX;
    client->engine = opts->engine ? *opts->engine : fl_engine_config_default;
    client->cb = opts->cb;
    client->opaque = opts->opaque;
    client->state = FL_CLIENT_BACKOFF;

    LIST_INSERT_HEAD(&ctx->clients, client, link);
    cl_schedule_connect(client, 0);
    return client;
fail:
    cl_client_destroy(client);
    return NULL;
}

void fl_client_free(fl_client_t *client)
{
    fl_client_ctx_t *ctx;
    if (!client || client->dead)
        return;
    ctx = client->ctx;
    client->dead = true;
    LIST_REMOVE(client, link);
    lws_sul_cancel(&client->sul_connect);
    lws_sul_cancel(&client->sul_retry);
    lws_sul_cancel(&client->sul_pace);
    if (ctx->depth > 0)
        LIST_INSERT_HEAD(&ctx->dead, client, link);
    else
        cl_client_destroy(client);
}

int fl_client_close(fl_client_t *client)
{
    if (!client || client->dead)
        return FL_CLIENT_EINVAL;
    lws_sul_cancel(&client->sul_connect);
    if (client->live) {
        client->closing = true;
        if (client->wsi && cl_established(client))
            lws_callback_on_writable(client->wsi);
        else if (client->wsi)
            lws_set_timeout(client->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return 0;
    }
    client->app_closed = true;
    cl_set_state(client, FL_CLIENT_STOPPED, 0);
    return 0;
}

int fl_client_subscribe(fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di;
    if (!client || client->dead || !cl_doc_id_ok(doc))
        return FL_CLIENT_EINVAL;
    if (!(di = cl_doc_get(client, doc)))
        return FL_CLIENT_ENOMEM;
    if (di->subscribed)
        return 0;
    if (!(di->doc = fl_doc_new(doc, &client->engine)))
        return FL_CLIENT_ENOMEM;
    di->subscribed = true;
    di->synced = false;
    if (client->state == FL_CLIENT_READY)
        return cl_send_subscribe(client, di);
    return 0;
}

int fl_client_unsubscribe(fl_client_t *client, fl_slice_t doc)
{
    docinfo_t *di;
    if (!client || client->dead || !cl_doc_id_ok(doc))
        return FL_CLIENT_EINVAL;
    if (!(di = cl_doc_find(client, doc)) || !di->subscribed)
        return FL_CLIENT_ENOSUB;
    di->subscribed = false;
    di->synced = false;
    fl_doc_free(di->doc);
    di->doc = NULL;
    if (client->state == FL_CLIENT_READY)
        return cl_send_unsubscribe(client, di);
    return 0;
}

const fl_doc_t *fl_client_doc(const fl_client_t *client, fl_slice_t doc)
{
    const docinfo_t *di = client ? cl_doc_find(client, doc) : NULL;
    return di && di->subscribed && di->synced ? di->doc : NULL;
}

static int flush_common(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                        unsigned flags, bool has_if, uint64_t if_version, uint64_t *seq_out)
{
    fl_wire_msg_t msg;
    docinfo_t *di;
    pending_t *pf;
    int r;

    if (!client || client->dead || !cl_doc_id_ok(doc) || (n > 0 && !cmds) ||
        n > fl_wire_limits_frame.max_commands)
        return FL_CLIENT_EINVAL;
    if (client->state == FL_CLIENT_STOPPED && !client->live)
        return FL_CLIENT_ECLOSED;
    if (!(di = cl_doc_get(client, doc)))
        return FL_CLIENT_ENOMEM;
    if (!(pf = calloc(1, sizeof *pf)))
        return FL_CLIENT_ENOMEM;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_FLUSH;
    msg.u.flush.doc = cl_doc_slice(di);
    memcpy(msg.u.flush.client_id, client->client_id, FL_CLIENT_ID_LEN);
    msg.u.flush.seq = di->last_seq + 1;
    msg.u.flush.base_version = di->subscribed && di->doc ? fl_doc_version(di->doc) : 0;
    msg.u.flush.has_if_version = has_if;
    msg.u.flush.if_version = if_version;
    msg.u.flush.atomic = (flags & FL_CLIENT_FLUSH_ATOMIC) != 0;
    msg.u.flush.ncmds = n;
    msg.u.flush.cmds = (fl_cmd_t *)cmds;
    if ((r = cl_encode(client, &msg, false, &pf->frame)) < 0) {
        free(pf);
        return r;
    }
    di->last_seq++;
    pf->di = di;
    pf->seq = di->last_seq;
    pf->st = PF_QUEUED;
    TAILQ_INSERT_TAIL(&client->pend, pf, link);
    client->npending++;
    client->nqueued++;
    if (client->state == FL_CLIENT_READY)
        cl_want_write(client);
    if (seq_out)
        *seq_out = pf->seq;
    return 0;
}

int fl_client_flush(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                    unsigned flags, uint64_t *seq_out)
{
    return flush_common(client, doc, cmds, n, flags, false, 0, seq_out);
}

int fl_client_flush_if(fl_client_t *client, fl_slice_t doc, const fl_cmd_t *cmds, uint32_t n,
                       unsigned flags, uint64_t if_version, uint64_t *seq_out)
{
    return flush_common(client, doc, cmds, n, flags, true, if_version, seq_out);
}

uint32_t fl_client_pending(const fl_client_t *client)
{
    return client ? client->npending : 0;
}

int fl_client_signal(fl_client_t *client, fl_slice_t doc, const fl_value_t *body)
{
    fl_wire_msg_t msg;
    if (!client || client->dead || !cl_doc_id_ok(doc) || !body)
        return FL_CLIENT_EINVAL;
    if (client->state != FL_CLIENT_READY)
        return FL_CLIENT_ENOTCONN;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SIGNAL;
    msg.u.signal.doc = doc;
    msg.u.signal.body = *body;
    return cl_queue_ctl(client, &msg, false);
}

int fl_client_refresh_token(fl_client_t *client, const char *token)
{
    fl_wire_msg_t msg;
    int r;
    if (!client || client->dead || !token)
        return FL_CLIENT_EINVAL;
    if ((r = set_token(client, token)) < 0)
        return r;
    if (cl_established(client)) {
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_AUTH;
        msg.u.hello.token = (fl_slice_t){client->token, strlen(client->token)};
        return cl_queue_ctl(client, &msg, true);
    }
    if (client->state == FL_CLIENT_STOPPED && !client->live && !client->app_closed) {
        /* stopped by 4001/4004 (or closed): a new token is a reason to try again */
        client->attempts = 0;
        client->state = FL_CLIENT_BACKOFF;
        cl_schedule_connect(client, 0);
    }
    return 0;
}

fl_client_state_t fl_client_state(const fl_client_t *client)
{
    return client->state;
}

const uint8_t *fl_client_id(const fl_client_t *client)
{
    return client->client_id;
}

void fl_client_get_stats(const fl_client_t *client, fl_client_stats_t *out)
{
    *out = client->stats;
}

void *fl_client_opaque(const fl_client_t *client)
{
    return client->opaque;
}

const char *fl_client_gateway(const fl_client_t *client, int *port_out)
{
    if (port_out)
        *port_out = client->gws[client->gw_cur].port;
    return client->gws[client->gw_cur].host;
}
