/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_server: the gateway's skeleton. Builds the libwebsockets context (one
 * explicit vhost on one port, optional TLS, one "flushline" protocol that
 * takes both the HTTP requests and the WebSocket connections at /v1/ws,
 * optional static mount), the Kafka side and the metrics; runs the service
 * loop; hands Kafka events to the documents; drains on stop.
 *
 * The service thread wakes for three reasons: socket events, the 5 ms tick
 * (producer delivery reports, sync retries, idle documents, HTTP timeouts)
 * and LWS_CALLBACK_EVENT_WAIT_CANCELLED, raised by the consumer thread's
 * lws_cancel_service after it queued records (and by drain_events itself
 * while records are left).
 *
 * @locality gw_new/gw_free: main thread; gw_run: the service thread (the
 * caller); gw_stop: any thread or a signal handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flushline/config.h"
#include "flushline/keyfile.h"
#include "flushline/log.h"
#include "gw_int.h"

#define TICK_US 5000
#define GW_RX_BUFFER 2048 /* bytes lws reads per connection at once */

int32_t gw_partition(const gw_t *gw, fl_slice_t doc)
{
    int32_t p = rd_kafka_msg_partitioner_murmur2_random(NULL, doc.ptr, doc.len,
                                                        (int32_t)gw->cfg->partitions, NULL, NULL);
    return p < 0 || p >= FL_MAX_PARTITIONS ? 0 : p;
}

bool gw_tenant_minimal(const gw_t *gw, fl_slice_t doc)
{
    const char *slash = memchr(doc.ptr, '/', doc.len);
    size_t tlen = slash ? (size_t)(slash - doc.ptr) : doc.len;
    if (!gw->minimal)
        return false;
    for (char **t = gw->minimal; *t; t++)
        if (strlen(*t) == tlen && memcmp(*t, doc.ptr, tlen) == 0)
            return true;
    return false;
}

gw_origin_t *gw_origin_get(gw_t *gw, uint64_t id)
{
    id &= ~(uint64_t)GW_ORIGIN_FORM_JSON; /* a record's origin carries the form */
    return fl_hmap_get(gw->origins_map, &id, sizeof id);
}

uint64_t gw_origin_next(gw_t *gw)
{
    return gw->next_origin += 2; /* even: bit 0 is the form bit of records */
}

/* "a, b,c" -> {"a", "b", "c", NULL}; NULL for an empty list. */
static char **split_list(const char *text, int *err)
{
    char **out = NULL, *copy, *save = NULL, *tok;
    size_t n = 0;
    *err = 0;
    if (!text || !*text)
        return NULL;
    if (!(copy = strdup(text))) {
        *err = -ENOMEM;
        return NULL;
    }
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        char **grown;
        while (*tok == ' ' || *tok == '\t')
            tok++;
        end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (!*tok)
            continue;
        if (!(grown = realloc(out, (n + 2) * sizeof *out)) || !(grown[n] = strdup(tok))) {
            if (grown)
                out = grown;
            *err = -ENOMEM;
            break;
        }
        out = grown;
        out[++n] = NULL;
    }
    free(copy);
    return out;
}

static void free_list(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

/* ---- delivery reports and Kafka events ----------------------------------------- */

void gw_flush_failed(gw_t *gw, gw_inflight_t *inf, uint16_t code, uint32_t retry_after_ms,
                     const char *reason)
{
    gw_origin_t *org;
    if (!inf)
        return;
    if (gw->freeing) {
        free(inf);
        return;
    }
    org = gw_origin_get(gw, inf->origin);
    fl_counter_inc(gw->m.produce_errors);
    if (inf->partition >= 0 && gw->part_await[inf->partition] > 0)
        gw->part_await[inf->partition]--; /* no outcome will come */
    if (org && org->kind == GW_ORIGIN_WS) {
        gw_conn_t *conn = (gw_conn_t *)org;
        fl_flush_t f;
        /* a retryable failure holds later seqs back until this one is
         * published; a final one (the client drops the flush) does not */
        if (retry_after_ms > 0)
            gw_conn_on_published(conn, inf, RD_KAFKA_RESP_ERR__FAIL);
        memset(&f, 0, sizeof f);
        memcpy(f.client_id, inf->client_id, FL_CLIENT_ID_LEN);
        f.seq = inf->seq;
        /* an answer to the flush: in the form of its frame */
        gw_conn_nack(conn, gw_origin_form(inf->origin), &f, (fl_slice_t){inf->doc, inf->doclen}, code,
                     retry_after_ms, reason);
    } else if (org && org->kind == GW_ORIGIN_HTTP) {
        gw_http_on_failed(gw, (gw_http_t *)org, code, reason);
    }
    free(inf);
}

void gw_on_delivery(gw_t *gw, void *opaque, int err)
{
    gw_inflight_t *inf = opaque;
    char reason[256];
    if (!inf)
        return;
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        /* resending the same bytes can never succeed */
        gw_flush_failed(gw, inf, FL_CODE_LIMIT, 0,
                        "the flush is larger than the broker or producer accepts "
                        "(message.max.bytes)");
    } else if (err) {
        snprintf(reason, sizeof reason, "broker unavailable (%s): retry the same seq",
                 rd_kafka_err2name((rd_kafka_resp_err_t)err));
        gw_flush_failed(gw, inf, FL_CODE_UNAVAILABLE, GW_RETRY_AFTER_MS, reason);
    } else {
        gw_origin_t *org = gw->freeing ? NULL : gw_origin_get(gw, inf->origin);
        if (org && org->kind == GW_ORIGIN_WS)
            gw_conn_on_published((gw_conn_t *)org, inf, 0);
        free(inf);
    }
}

/* Hands queued Kafka events to the documents, a bounded share per turn of
 * the service loop. Fanning out a whole backlog at once (a committed
 * transaction of thousands of outcomes becomes visible at once) would queue
 * it for every subscriber before any socket is written, and close readers
 * that keep up as slow consumers: each turn takes at most a quarter of
 * send.queue.bytes of records, and the sockets are written before the
 * next share (lws_cancel_service wakes the loop for it). */
static void drain_events(gw_t *gw)
{
    bool more = false;
    gw_event_t *ev =
        gw_kafka_take_some(gw->kafka, (size_t)gw->cfg->send_queue_bytes / 4, &more);
    if (more)
        lws_cancel_service(gw->context);
    while (ev) {
        gw_event_t *next = ev->next;
        if (ev->kind == GW_EV_RECORD) {
            gw_docs_on_record(gw, ev->topic, ev->partition, ev->ts_ms, &ev->msg, ev->raw,
                              ev->rawlen);
            ev->raw = NULL; /* passed on */
        } else if (ev->kind == GW_EV_ASSIGNED) {
            gw_docs_on_assigned(gw, ev->partition, ev->gen);
        }
        gw_event_free(ev);
        ev = next;
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    gw_t *gw = lws_container_of(sul, gw_t, sul_tick);
    int64_t now = fl_clock_mono_us();
    gw_kafka_poll(gw->kafka);
    if (now - gw->last_tick_us >= 100000) {
        gw->last_tick_us = now;
        gw_docs_tick(gw, now);
        gw_http_tick(gw, now);
    }
    lws_sul_schedule(gw->context, 0, &gw->sul_tick, on_tick, TICK_US);
}

/* The one protocol's callback: WebSocket reasons to gw_conn, the rest to
 * gw_http (which falls back to lws's defaults). */
static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    gw_t *gw;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        gw = lws_context_user(lws_get_context(wsi));
        if (gw && gw->kafka)
            drain_events(gw);
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* a new connection: its request line is read before lws's */
        gw = lws_context_user(lws_get_context(wsi));
        return gw ? gw_http_on_accept(gw, (int)(lws_intptr_t)in) : 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
        return gw_conn_callback(wsi, reason, user, in, len);
    default:
        return gw_http_callback(wsi, reason, user, in, len);
    }
}

/* ---- metrics ------------------------------------------------------------------------- */

static int register_metrics(gw_t *gw)
{
    static const double lat[] = {FL_METRICS_LATENCY_MS_BUCKETS};
    static const char *const codes[] = {"bad_frame",     "unknown_type",   "unsupported_version",
                                        "unauthorized",  "token_expired",  "doc_forbidden",
                                        "rate_limited",  "unavailable",    "limit",
                                        "not_subscribed", "bad_doc_id",    "internal"};
    static const char *const closes[] = {"4000", "4001", "4002", "4003", "4004",
                                         "4100", "4101", "4102", "4200", "4201"};
    gw_metrics_t *m = &gw->m;
    fl_metrics_t *r;
#define NC sizeof codes / sizeof codes[0]
    if (!(m->reg = r = fl_metrics_new()))
        return -1;
    m->connections = fl_metrics_gauge(r, "flushline_gateway_connections", "Open WebSocket connections.");
    m->subscriptions = fl_metrics_gauge(r, "flushline_gateway_subscriptions", "Subscriptions of all connections.");
    m->docs = fl_metrics_gauge(r, "flushline_gateway_docs", "Documents held (live or syncing).");
    m->docs_live = fl_metrics_gauge(r, "flushline_gateway_docs_live", "Documents with a live copy.");
    m->frames_in = fl_metrics_counter(r, "flushline_gateway_frames_in_total", "WebSocket messages received.");
    m->bytes_in = fl_metrics_counter(r, "flushline_gateway_bytes_in_total", "Bytes of WebSocket messages received.");
    m->frames_out = fl_metrics_counter(r, "flushline_gateway_frames_out_total", "WebSocket messages sent.");
    m->bytes_out = fl_metrics_counter(r, "flushline_gateway_bytes_out_total", "Bytes of WebSocket messages sent.");
    m->nacks = fl_metrics_counter_vec(r, "flushline_gateway_nacks_total", "Nacks sent, by code.", "code", codes, NC);
    m->errors = fl_metrics_counter_vec(r, "flushline_gateway_errors_total", "Error messages sent, by code.", "code", codes, NC);
    m->closes = fl_metrics_counter_vec(r, "flushline_gateway_closes_total", "Connections closed by the gateway, by close code.", "code", closes, sizeof closes / sizeof closes[0]);
    m->slow_consumers = fl_metrics_counter(r, "flushline_gateway_slow_consumer_closes_total", "Connections closed because their send queue was full.");
    m->origin_rejects = fl_metrics_counter(r, "flushline_gateway_origin_rejects_total", "WebSocket upgrades refused for their Origin.");
    m->auth_failures = fl_metrics_counter(r, "flushline_gateway_auth_failures_total", "Tokens refused.");
    m->deltas_out = fl_metrics_counter(r, "flushline_gateway_deltas_total", "Applied outcomes fanned out.");
    m->syncs = fl_metrics_counter(r, "flushline_gateway_syncs_total", "Sync requests produced.");
    m->resyncs = fl_metrics_counter(r, "flushline_gateway_resyncs_total", "Live copies dropped and synced again.");
    m->produce_errors = fl_metrics_counter(r, "flushline_gateway_produce_errors_total", "Records that could not be produced.");
    m->signals_in = fl_metrics_counter(r, "flushline_gateway_signals_in_total", "Signals published.");
    m->signals_out = fl_metrics_counter(r, "flushline_gateway_signals_out_total", "Signals fanned out.");
    m->http_requests = fl_metrics_counter(r, "flushline_gateway_http_requests_total", "HTTP requests.");
    m->fanout_ms = fl_metrics_histogram(r, "flushline_gateway_fanout_latency_ms", "From the outcome's Kafka timestamp to its fan-out, ms.", lat, sizeof lat / sizeof lat[0]);
#undef NC
    return m->connections && m->fanout_ms && m->nacks && m->closes ? 0 : -1;
}

/* ---- life cycle ------------------------------------------------------------------------ */

gw_t *gw_new(const gw_config_t *cfg, char *errstr, size_t errstr_size)
{
    struct lws_context_creation_info info;
    gw_t *gw = calloc(1, sizeof *gw);
    const char *iface = cfg->bind;
    char host[200];
    int err;

    if (!gw) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    gw->cfg = cfg;
    atomic_init(&gw->stop, false);
    atomic_init(&gw->kafka_ok, false);
    if (cfg->gateway_id && *cfg->gateway_id) {
        snprintf(gw->id, sizeof gw->id, "%s", cfg->gateway_id);
    } else {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "gateway");
        host[sizeof host - 1] = '\0';
        snprintf(gw->id, sizeof gw->id, "%s-%ld", host, (long)getpid());
    }
    gw->idlen = strlen(gw->id);
    /* Origin and sync request ids start at a per-instance base (wall-clock
     * microseconds, shifted): a restarted gateway with the same gateway.id
     * never takes an outcome or a sync reply meant for its predecessor. */
    gw->next_origin = gw->next_req = (uint64_t)fl_clock_wall_us() << 12; /* even */
    gw->origins = split_list(cfg->origins, &err);
    if (!err)
        gw->minimal = split_list(cfg->minimal_tenants, &err);
    if (err || register_metrics(gw) != 0 || !(gw->docs = fl_hmap_new()) ||
        !(gw->origins_map = fl_hmap_new()) || !(gw->grants = fl_hmap_new()) ||
        !(gw->heads = fl_hmap_new()) || !(gw->headbuf = malloc(GW_HEAD_MAX)) ||
        !(gw->claims = malloc(sizeof *gw->claims)) || !(gw->arena = fl_arena_new(1 << 16)) ||
        !(gw->wbatch = malloc(LWS_PRE + GW_WBATCH))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (!(gw->keys = fl_jwt_keys_new())) {
        snprintf(errstr, errstr_size, "cannot create the key set");
        goto fail;
    }
    if (fl_jwt_keys_load_list(gw->keys, cfg->jwt_keys, errstr, errstr_size) != 0)
        goto fail;
    /* one leeway for every check: hello, auth, the expiry timer, HTTP */
    if (fl_jwt_keys_set_leeway(gw->keys, cfg->jwt_leeway) != 0) {
        snprintf(errstr, errstr_size, "jwt.leeway out of range");
        goto fail;
    }

    fl_log_lws_bridge();
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (cfg->tls_cert && *cfg->tls_cert)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.gid = -1;
    info.uid = -1;
    info.user = gw;
    if (!(gw->context = lws_create_context(&info))) {
        snprintf(errstr, errstr_size, "cannot create the libwebsockets context");
        goto fail;
    }

    /* Kafka before the port opens: a client must never reach a gateway that
     * cannot publish. The consumer wakes the context created above. */
    if (!(gw->kafka = gw_kafka_new(gw, errstr, errstr_size)))
        goto fail;

    gw->protocols[0].name = "flushline";
    gw->protocols[0].callback = on_lws;
    gw->protocols[0].per_session_data_size =
        sizeof(gw_conn_t) > gw_http_session_size() ? sizeof(gw_conn_t) : gw_http_session_size();
    /* lws allocates rx_buffer_size per connection at the upgrade: keep it
     * small (an idle connection pays it); gw_conn reassembles bigger
     * messages. Sends go out in chunks of up to tx_packet_size. */
    gw->protocols[0].rx_buffer_size = GW_RX_BUFFER;
    gw->protocols[0].tx_packet_size = 65536;
    /* the request line of each connection is read raw, before lws
     * normalises it (gw_http.c); over the gateway's own TLS it is
     * encrypted at that point, and only lws's copy is left */
    gw->raw_heads = !(cfg->tls_cert && *cfg->tls_cert);
    gw->protocols[1].name = "flushline-head";
    gw->protocols[1].callback = gw_http_head_callback;
    gw->protocols[1].per_session_data_size = gw_http_head_size();
    if (iface && (!*iface || strcmp(iface, "0.0.0.0") == 0 || strcmp(iface, "::") == 0)) {
        if (strcmp(iface, "0.0.0.0") == 0)
            info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
        iface = NULL;
    } else if (iface && !strchr(iface, ':')) {
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info.port = (int)cfg->port;
    info.iface = iface;
    info.protocols = gw->protocols;
    info.vhost_name = "flushline";
    info.server_string = GW_SERVER_NAME;
    if (cfg->tls_cert && *cfg->tls_cert) {
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    if (cfg->static_dir && *cfg->static_dir) {
        /* the API paths stay with the protocol; everything else is a file */
        static const char *const api[] = {"/v1", "/healthz", "/readyz", "/metrics"};
        struct lws_http_mount *mt = gw->mounts;
        for (size_t i = 0; i < 4; i++) {
            mt[i].mountpoint = api[i];
            mt[i].mountpoint_len = (unsigned char)strlen(api[i]);
            mt[i].origin = "flushline";
            mt[i].origin_protocol = LWSMPRO_CALLBACK;
            mt[i].mount_next = &mt[i + 1];
        }
        mt[4].mountpoint = "/";
        mt[4].mountpoint_len = 1;
        mt[4].origin = cfg->static_dir;
        mt[4].def = "index.html";
        mt[4].protocol = "flushline"; /* ADD_HEADERS: connection: close */
        mt[4].origin_protocol = LWSMPRO_FILE;
        info.mounts = mt;
    }
    if (!(gw->vhost = lws_create_vhost(gw->context, &info))) {
        snprintf(errstr, errstr_size, "cannot listen on %s:%lld (address in use, not local, or bad TLS files)",
                 cfg->bind && *cfg->bind ? cfg->bind : "*", (long long)cfg->port);
        goto fail;
    }
    gw->port = lws_get_vhost_listen_port(gw->vhost);
    fl_info("gateway %s listening on %s:%d (WebSocket /v1/ws%s)", gw->id,
            cfg->bind && *cfg->bind ? cfg->bind : "*", gw->port,
            cfg->tls_cert && *cfg->tls_cert ? ", TLS" : "");
    gw->last_tick_us = fl_clock_mono_us();
    lws_sul_schedule(gw->context, 0, &gw->sul_tick, on_tick, TICK_US);
    return gw;
fail:
    gw_free(gw);
    return NULL;
}

int gw_port(const gw_t *gw)
{
    return gw->port;
}

void gw_stop(gw_t *gw)
{
    atomic_store(&gw->stop, true);
    if (gw->context)
        lws_cancel_service(gw->context);
}

int gw_run(gw_t *gw)
{
    int rc = 0;
    int64_t deadline;

    while (!atomic_load(&gw->stop))
        if (lws_service(gw->context, 0) < 0) {
            fl_error("the service loop failed");
            rc = 1;
            break;
        }
    /* Draining. First the grace: the port stays open and everything is
     * served as before, except that /readyz answers 503 and new WebSocket
     * upgrades are closed with 4201, so that load balancers see the
     * gateway leave before its clients are sent elsewhere. */
    gw->draining = true;
    if (rc == 0 && gw->cfg->drain_grace_ms > 0) {
        fl_info("draining: /readyz answers 503 for %lld ms, then %u connections get %d "
                "going_away", (long long)gw->cfg->drain_grace_ms, gw->nconns,
                FL_CLOSE_GOING_AWAY);
        deadline = fl_clock_mono_us() + gw->cfg->drain_grace_ms * 1000;
        while (fl_clock_mono_us() < deadline)
            if (lws_service(gw->context, 0) < 0)
                break;
    }
    fl_info("draining: closing %u connections with %d going_away", gw->nconns,
            FL_CLOSE_GOING_AWAY);
    gw_conn_close_all(gw, FL_CLOSE_GOING_AWAY, "going away: reconnect now");
    deadline = fl_clock_mono_us() + 3 * 1000000;
    while (gw->nconns > 0 && fl_clock_mono_us() < deadline)
        if (lws_service(gw->context, 0) < 0)
            break;
    /* the producer is flushed while the loop still turns (HTTP answers,
     * delivery reports), not in one blocking call */
    deadline = fl_clock_mono_us() + 5 * 1000000;
    while (gw_kafka_flush(gw->kafka, 0) != 0 && fl_clock_mono_us() < deadline)
        if (lws_service(gw->context, 0) < 0)
            break;
    if (gw_kafka_flush(gw->kafka, 0) != 0)
        fl_warn("some records were still unsent after 5 s");
    fl_info("drained");
    return rc;
}

void gw_free(gw_t *gw)
{
    if (!gw)
        return;
    gw->freeing = true;
    gw->draining = true;
    /* the consumer thread stops before the context it wakes goes away */
    gw_kafka_free(gw->kafka);
    gw->kafka = NULL;
    if (gw->context) {
        lws_sul_cancel(&gw->sul_tick);
        lws_sul_cancel(&gw->sul_handoff);
        lws_context_destroy(gw->context);
    }
    gw_http_heads_free(gw);
    if (gw->docs) {
        gw_docs_free_all(gw);
        fl_hmap_free(gw->docs);
    }
    fl_hmap_free(gw->origins_map);
    fl_hmap_free(gw->grants); /* empty: every connection dropped its reference */
    free(gw->claims);
    free(gw->wbatch);
    free(gw->headbuf);
    fl_arena_free(gw->arena);
    fl_jwt_keys_free(gw->keys);
    free_list(gw->origins);
    free_list(gw->minimal);
    fl_metrics_free(gw->m.reg);
    free(gw);
}
