/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_server: the gateway's top. Builds the modules and wires them together
 * (Kafka <- partitions <- documents, each told about the one above only
 * through callbacks given at construction), the libwebsockets context (one
 * explicit vhost on one port, optional TLS, one "flushline" protocol that
 * takes both the HTTP requests and the WebSocket connections at /v1/ws,
 * optional static mount) and the metrics; runs the service loop; routes
 * Kafka events (assignments to the partitions, records to the documents);
 * drains on stop.
 *
 * The service thread wakes for three reasons: socket events, the 5 ms tick
 * (producer delivery reports; every 100 ms sync retries, idle documents and
 * partitions, stale request lines)
 * and LWS_CALLBACK_EVENT_WAIT_CANCELLED, raised by the consumer thread's
 * lws_cancel_service after it queued records (and by drain_events itself
 * while records are left).
 *
 * @locality gw_new/gw_free: main thread; gw_run: the service thread (the
 * caller); gw_stop: any thread or a signal handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flushline/config.h"
#include "flushline/keyfile.h"
#include "flushline/clock.h"
#include "flushline/log.h"
#include "gw_conn.h"
#include "gw_heads.h"
#include "gw_http.h"
#include "gw_svc.h"

struct gw_s {
    gw_svc_t svc; /* first: the lws context's user pointer is &gw->svc */
    char id[256]; /* gateway.id, the "gw" of records */
    char **minimal; /* tenants in minimum-disclosure mode, NULL-terminated */
    gw_metrics_t m;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[3]; /* flushline, flushline-head, end */
    struct lws_http_mount mounts[6];
    int port;
    lws_sorted_usec_list_t sul_tick;
    atomic_bool stop;
    int64_t last_tick_us;
};

#define TICK_US 5000
#define GW_RX_BUFFER 2048 /* bytes lws reads per connection at once */

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

/* ---- wiring: the callbacks and io tables of the modules ------------------------ */

static void on_kafka_delivery(void *ctx, void *opaque, int err)
{
    gw_t *gw = ctx;
    if (gw->svc.parts)
        gw_parts_on_delivery(gw->svc.parts, opaque, err);
}

/* The consumer thread queued events: wake the service thread. */
static void on_kafka_wake(void *ctx)
{
    gw_t *gw = ctx;
    if (gw->svc.context)
        lws_cancel_service(gw->svc.context);
}

static void io_assign(void *ctx, int32_t partition, uint32_t gen, bool on)
{
    gw_kafka_assign(ctx, partition, gen, on);
}

static bool io_writable(void *ctx)
{
    return gw_kafka_ok(ctx);
}

static int io_produce(void *ctx, fl_slice_t key, char *buf, size_t len, void *opaque)
{
    return gw_kafka_produce(ctx, FL_TOPIC_COMMANDS, key, buf, len, opaque);
}

static void on_part_ready(void *ctx, int32_t partition)
{
    gw_t *gw = ctx;
    gw_docs_on_part_ready(gw->svc.docs, partition);
}

static int32_t docs_partition(void *ctx, fl_slice_t doc)
{
    return gw_parts_of(ctx, doc);
}

static bool docs_follow(void *ctx, int32_t p)
{
    return gw_parts_follow(ctx, p);
}

static void docs_count(void *ctx, int32_t p, int delta)
{
    gw_parts_docs(ctx, p, delta);
}

static int docs_send(void *ctx, fl_slice_t doc, char *buf, size_t len)
{
    return gw_parts_send(ctx, doc, buf, len);
}

/* Builds Kafka, the origin registry, the partitions and the documents. */
static int build_modules(gw_t *gw, char *errstr, size_t errstr_size)
{
    const gw_config_t *cfg = gw->svc.cfg;
    /* Origin and sync request ids start at a per-instance base (wall-clock
     * microseconds, shifted): a restarted gateway with the same gateway.id
     * never takes an outcome or a sync reply meant for its predecessor. */
    uint64_t base = (uint64_t)fl_clock_wall_us() << 12; /* even */
    gw_kafka_cbs_t kcbs = {gw, on_kafka_delivery, on_kafka_wake};
    gw_parts_cbs_t pcbs = {gw, on_part_ready};
    gw_docs_conf_t dconf = {
        .id = gw->svc.id,
        .window_deltas = (uint32_t)cfg->window_deltas,
        .idle_us = cfg->doc_idle_ms * 1000,
        .sync_timeout_us = cfg->sync_timeout_ms * 1000,
        .minimal = gw->minimal,
        .req_base = base,
        .rerun_max = cfg->delivery == GW_DELIVERY_COMMITTED ? 0 : (uint32_t)cfg->rerun_memory,
    };

    if (!(gw->svc.origins = gw_origins_new(base, gw->m.produce_errors))) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    /* Kafka before the port opens: a client must never reach a gateway that
     * cannot publish. The consumer wakes the context created before. */
    if (!(gw->svc.kafka = gw_kafka_new(cfg, gw->svc.id, &kcbs, errstr, errstr_size)))
        return -1;
    gw_parts_io_t io = {gw->svc.kafka, io_assign, io_produce, io_writable};
    if (!(gw->svc.parts = gw_parts_new((int32_t)cfg->partitions, cfg->doc_idle_ms * 1000, &io,
                                       &pcbs, gw->svc.origins))) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    gw_parts_limits(gw->svc.parts, (size_t)cfg->held_max_bytes, cfg->held_max_ms * 1000);
    gw_docs_parts_t dparts = {gw->svc.parts, docs_partition, docs_follow, docs_count, docs_send};
    if (!(gw->svc.docs = gw_docs_new(&dconf, &dparts, gw->svc.origins, &gw->m))) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (!(gw->svc.history = gw_history_new(cfg, gw->svc.docs, gw->svc.parts, &gw->m,
                                           gw->svc.context, errstr, errstr_size)))
        return -1;
    return 0;
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
    gw_svc_t *svc = &gw->svc;
    bool more = false;
    gw_event_t *ev =
        gw_kafka_take_some(svc->kafka, (size_t)svc->cfg->send_queue_bytes / 4, &more);
    if (more)
        lws_cancel_service(svc->context);
    while (ev) {
        gw_event_t *next = gw_event_next(ev);
        if (ev->kind == GW_EV_RECORD) {
            const fl_wire_msg_t *msg = &ev->msg;
            /* an outcome of a flush this gateway published: no longer awaited */
            if (msg->type == FL_WT_REC_OUTCOME && msg->u.outcome.gw.len == svc->id.len &&
                memcmp(msg->u.outcome.gw.ptr, svc->id.ptr, svc->id.len) == 0)
                gw_parts_on_outcome(svc->parts, ev->partition);
            fl_histogram_observe(gw->m.handoff_ms,
                                 (double)(fl_clock_mono_us() - ev->queued_us) / 1000.0);
            gw_docs_on_record(svc->docs, msg, ev->ts_ms, ev->committed, ev->raw, ev->rawlen);
            ev->raw = NULL; /* passed on */
        } else if (ev->kind == GW_EV_ASSIGNED) {
            gw_parts_on_assigned(svc->parts, ev->partition, ev->gen);
        }
        gw_event_free(ev);
        ev = next;
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    gw_t *gw = lws_container_of(sul, gw_t, sul_tick);
    int64_t now = fl_clock_mono_us();
    gw_kafka_poll(gw->svc.kafka);
    if (now - gw->last_tick_us >= 100000) {
        gw->last_tick_us = now;
        gw_docs_tick(gw->svc.docs, now);
        gw_parts_tick(gw->svc.parts, now);
        gw_heads_sweep(gw->svc.heads, now);
    }
    lws_sul_schedule(gw->svc.context, 0, &gw->sul_tick, on_tick, TICK_US);
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
        if (gw && gw->svc.history)
            gw_history_drain(gw->svc.history);
        if (gw && gw->svc.kafka && gw->svc.docs)
            drain_events(gw);
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* a new connection: its request line is read before lws's */
        gw = lws_context_user(lws_get_context(wsi));
        return gw ? gw_heads_on_accept(gw->svc.heads, (int)(lws_intptr_t)in) : 0;
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

/* ---- life cycle ------------------------------------------------------------------------ */

/* gateway.id (hostname-pid when unset), the lists, metrics, keys and the
 * service thread's scratch. */
static int build_shell(gw_t *gw, char *errstr, size_t errstr_size)
{
    const gw_config_t *cfg = gw->svc.cfg;
    char host[200];
    int err;

    if (cfg->gateway_id && *cfg->gateway_id) {
        snprintf(gw->id, sizeof gw->id, "%s", cfg->gateway_id);
    } else {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "gateway");
        host[sizeof host - 1] = '\0';
        snprintf(gw->id, sizeof gw->id, "%s-%ld", host, (long)getpid());
    }
    gw->svc.id = (fl_slice_t){gw->id, strlen(gw->id)};
    gw->svc.m = &gw->m;
    gw->svc.allow = split_list(cfg->origins, &err);
    if (!err)
        gw->minimal = split_list(cfg->minimal_tenants, &err);
    /* the request line of each connection is read raw, before lws
     * normalises it (gw_heads.h); over the gateway's own TLS it is
     * encrypted at that point, and only lws's copy is left */
    if (err || gw_metrics_init(&gw->m) != 0 || !(gw->svc.grants = fl_hmap_new()) ||
        !(gw->svc.heads = gw_heads_new(!(cfg->tls_cert && *cfg->tls_cert), gw->m.http_requests)) ||
        !(gw->svc.claims = malloc(sizeof *gw->svc.claims)) ||
        !(gw->svc.arena = fl_arena_new(1 << 16)) ||
        !(gw->svc.wbatch = malloc(LWS_PRE + GW_WBATCH))) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (!(gw->svc.keys = fl_jwt_keys_new())) {
        snprintf(errstr, errstr_size, "cannot create the key set");
        return -1;
    }
    if (fl_jwt_keys_load_list(gw->svc.keys, cfg->jwt_keys, errstr, errstr_size) != 0)
        return -1;
    /* one leeway for every check: hello, auth, the expiry timer, HTTP */
    if (fl_jwt_keys_set_leeway(gw->svc.keys, cfg->jwt_leeway) != 0) {
        snprintf(errstr, errstr_size, "jwt.leeway out of range");
        return -1;
    }
    return 0;
}

/* The two protocols and, with static.dir, the mounts: the API paths stay
 * with the protocol, everything else is a file. */
static void set_protocols(gw_t *gw, struct lws_context_creation_info *info)
{
    const gw_config_t *cfg = gw->svc.cfg;
    gw->protocols[0].name = "flushline";
    gw->protocols[0].callback = on_lws;
    gw->protocols[0].per_session_data_size =
        sizeof(gw_conn_t) > gw_http_session_size() ? sizeof(gw_conn_t) : gw_http_session_size();
    /* lws allocates rx_buffer_size per connection at the upgrade: keep it
     * small (an idle connection pays it); gw_conn reassembles bigger
     * messages. Sends go out in chunks of up to tx_packet_size. */
    gw->protocols[0].rx_buffer_size = GW_RX_BUFFER;
    gw->protocols[0].tx_packet_size = 65536;
    gw->protocols[1].name = "flushline-head";
    gw->protocols[1].callback = gw_heads_callback;
    gw->protocols[1].per_session_data_size = gw_heads_session_size();
    gw->protocols[1].user = gw->svc.heads;
    info->protocols = gw->protocols;
    if (cfg->static_dir && *cfg->static_dir) {
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
        info->mounts = mt;
    }
}

/* The one vhost: bind address, port, TLS, protocols. */
static int open_port(gw_t *gw, struct lws_context_creation_info *info, char *errstr,
                     size_t errstr_size)
{
    const gw_config_t *cfg = gw->svc.cfg;
    const char *iface = cfg->bind;
    if (iface && (!*iface || strcmp(iface, "0.0.0.0") == 0 || strcmp(iface, "::") == 0)) {
        if (strcmp(iface, "0.0.0.0") == 0)
            info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
        iface = NULL;
    } else if (iface && !strchr(iface, ':')) {
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info->port = (int)cfg->port;
    info->iface = iface;
    info->vhost_name = "flushline";
    info->server_string = GW_SERVER_NAME;
    if (cfg->tls_cert && *cfg->tls_cert) {
        info->ssl_cert_filepath = cfg->tls_cert;
        info->ssl_private_key_filepath = cfg->tls_key;
    }
    set_protocols(gw, info);
    if (!(gw->vhost = lws_create_vhost(gw->svc.context, info))) {
        snprintf(errstr, errstr_size,
                 "cannot listen on %s:%lld (address in use, not local, or bad TLS files)",
                 cfg->bind && *cfg->bind ? cfg->bind : "*", (long long)cfg->port);
        return -1;
    }
    gw_heads_attach(gw->svc.heads, gw->svc.context, gw->vhost);
    gw->port = lws_get_vhost_listen_port(gw->vhost);
    fl_info("gateway %s listening on %s:%d (WebSocket /v1/ws%s)", gw->id,
            cfg->bind && *cfg->bind ? cfg->bind : "*", gw->port,
            cfg->tls_cert && *cfg->tls_cert ? ", TLS" : "");
    return 0;
}

gw_t *gw_new(const gw_config_t *cfg, char *errstr, size_t errstr_size)
{
    struct lws_context_creation_info info;
    gw_t *gw = calloc(1, sizeof *gw);

    if (!gw) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    gw->svc.cfg = cfg;
    atomic_init(&gw->stop, false);
    if (build_shell(gw, errstr, errstr_size) != 0)
        goto fail;
    fl_log_lws_bridge();
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (cfg->tls_cert && *cfg->tls_cert)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.gid = -1;
    info.uid = -1;
    info.user = &gw->svc;
    if (!(gw->svc.context = lws_create_context(&info))) {
        snprintf(errstr, errstr_size, "cannot create the libwebsockets context");
        goto fail;
    }
    if (build_modules(gw, errstr, errstr_size) != 0 || open_port(gw, &info, errstr, errstr_size) != 0)
        goto fail;
    gw->last_tick_us = fl_clock_mono_us();
    lws_sul_schedule(gw->svc.context, 0, &gw->sul_tick, on_tick, TICK_US);
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
    if (gw->svc.context)
        lws_cancel_service(gw->svc.context);
}

int gw_run(gw_t *gw)
{
    int rc = 0;
    int64_t deadline;

    while (!atomic_load(&gw->stop))
        if (lws_service(gw->svc.context, 0) < 0) {
            fl_error("the service loop failed");
            rc = 1;
            break;
        }
    /* Draining. First the grace: the port stays open and everything is
     * served as before, except that /readyz answers 503 and new WebSocket
     * upgrades are closed with 4201, so that load balancers see the
     * gateway leave before its clients are sent elsewhere. */
    gw->svc.draining = true;
    if (rc == 0 && gw->svc.cfg->drain_grace_ms > 0) {
        fl_info("draining: /readyz answers 503 for %lld ms, then %u connections get %d "
                "going_away", (long long)gw->svc.cfg->drain_grace_ms, gw->svc.nconns,
                FL_CLOSE_GOING_AWAY);
        deadline = fl_clock_mono_us() + gw->svc.cfg->drain_grace_ms * 1000;
        while (fl_clock_mono_us() < deadline)
            if (lws_service(gw->svc.context, 0) < 0)
                break;
    }
    fl_info("draining: closing %u connections with %d going_away", gw->svc.nconns,
            FL_CLOSE_GOING_AWAY);
    gw_origins_drain(gw->svc.origins, FL_CLOSE_GOING_AWAY, "going away: reconnect now");
    deadline = fl_clock_mono_us() + 3 * 1000000;
    while (gw->svc.nconns > 0 && fl_clock_mono_us() < deadline)
        if (lws_service(gw->svc.context, 0) < 0)
            break;
    /* the producer is flushed while the loop still turns (HTTP answers,
     * delivery reports), not in one blocking call */
    deadline = fl_clock_mono_us() + 5 * 1000000;
    while (gw_kafka_flush(gw->svc.kafka, 0) != 0 && fl_clock_mono_us() < deadline)
        if (lws_service(gw->svc.context, 0) < 0)
            break;
    if (gw_kafka_flush(gw->svc.kafka, 0) != 0)
        fl_warn("some records were still unsent after 5 s");
    fl_info("drained");
    return rc;
}

void gw_free(gw_t *gw)
{
    gw_svc_t *svc;
    if (!gw)
        return;
    svc = &gw->svc;
    svc->draining = true;
    /* delivery reports from here on only release memory */
    if (svc->origins)
        gw_origins_closing(svc->origins);
    /* the consumer thread stops before the context it wakes goes away */
    gw_kafka_free(svc->kafka);
    svc->kafka = NULL;
    gw_history_stop(svc->history); /* its threads wake the context too */
    if (svc->context) {
        lws_sul_cancel(&gw->sul_tick);
        gw_heads_free(svc->heads); /* cancels its timer: before the context goes */
        svc->heads = NULL;
        lws_context_destroy(svc->context);
    }
    gw_heads_free(svc->heads);
    gw_history_free(svc->history);
    gw_docs_free(svc->docs);
    gw_parts_free(svc->parts);
    gw_origins_free(svc->origins);
    fl_hmap_free(svc->grants); /* empty: every connection dropped its reference */
    free(svc->claims);
    free(svc->wbatch);
    fl_arena_free(svc->arena);
    fl_jwt_keys_free(svc->keys);
    free_list(svc->allow);
    free_list(gw->minimal);
    gw_metrics_free(&gw->m);
    free(gw);
}
