/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_svc: what the protocol handlers (gw_conn for WebSocket, gw_http for
 * HTTP) are given by the server that wires them: the settings, the
 * modules they call down into, and the service thread's scratch. It is the
 * lws context's user pointer. Only the handlers and the server read it;
 * documents, partitions, origins and Kafka are given what they need at
 * construction and never see it.
 *
 * @locality lws service thread (built and freed by gw_server on the main
 * thread).
 */
#ifndef GW_SVC_H
#define GW_SVC_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "flushline/hmap.h"
#include "flushline/jwt.h"
#include "flushline/value.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_heads.h"
#include "gw_history.h"
#include "gw_kafka.h"
#include "gw_metrics.h"
#include "gw_origins.h"
#include "gw_parts.h"

typedef struct gw_svc_s {
    const gw_config_t *cfg;
    fl_slice_t id;           /* gateway.id, the "gw" of records */
    gw_metrics_t *m;
    fl_jwt_keys_t *keys;
    fl_claims_t *claims;     /* scratch for token checks (16.7 KB, one per gateway) */
    fl_hmap_t *grants;       /* interned grants (gw_grants.h) */
    char **allow;            /* Origin allow-list, NULL-terminated; NULL = any */
    gw_origins_t *origins;
    gw_docs_t *docs;
    gw_parts_t *parts;
    gw_kafka_t *kafka;
    gw_heads_t *heads;       /* raw request lines (NULL over TLS) */
    gw_history_t *history;   /* the history endpoints' jobs */
    struct lws_context *context;
    fl_arena_t *arena;       /* decoding scratch, reset per use */
    unsigned char *wbatch;   /* LWS_PRE + GW_WBATCH: frames coalesced for one write */
    bool draining;           /* SIGTERM seen: /readyz 503, new upgrades get 4201 */
    uint32_t nconns;
} gw_svc_t;

#endif
