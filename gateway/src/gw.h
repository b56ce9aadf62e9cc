/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw: the flushline-gateway daemon's core. One port serves HTTP (/healthz,
 * /readyz, /metrics, /v1/docs/...) and the "flushline" WebSocket protocol
 * at /v1/ws. Clients authenticate with a JWT, subscribe to documents and
 * send flushes; the gateway publishes flushes and syncs to
 * <prefix>.commands, follows the <prefix>.events partitions of the
 * documents it has subscribers for, keeps a live copy of each such
 * document and fans every applied outcome out to its subscribers.
 *
 * Threads: the caller of gw_run is the libwebsockets service thread and
 * owns every connection, document and subscription. A Kafka consumer thread
 * decodes records and hands them over through a queue (gw_kafka.c).
 *
 * @locality gw_new, gw_run, gw_free: the main thread; gw_stop: any thread or
 * a signal handler.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>

#include "flushline/kafka.h"

#define GW_SERVER_NAME "flushline/0.1.0" /* the Server header */

/* delivery: outcomes as soon as produced, or once committed. */
enum { GW_DELIVERY_SPECULATIVE = 0, GW_DELIVERY_COMMITTED = 1 };

typedef struct gw_config_s {
    const char *bootstrap;
    const char *prefix;
    int64_t partitions;
    const char *gateway_id; /* NULL/"": hostname-pid */
    int64_t port;           /* 0: a free port */
    const char *bind;
    const char *tls_cert, *tls_key;
    const char *static_dir;
    const char *jwt_keys; /* comma-separated key files */
    const char *origins;  /* comma-separated allow-list; empty: any */
    int64_t max_frame;
    int64_t max_commands;
    int64_t max_subscriptions;
    int64_t rate, burst;
    int64_t signal_rate, signal_burst;
    int64_t send_queue_bytes;
    int64_t window_deltas;
    int64_t http_flush_timeout_ms;
    int64_t held_max_bytes; /* flushes waiting for their partition, all partitions */
    int64_t held_max_ms;    /* and the longest one waits */
    int64_t hello_timeout_ms;
    int64_t doc_idle_ms;
    int64_t sync_timeout_ms;
    int64_t jwt_leeway;     /* seconds of clock skew allowed on exp and nbf */
    int64_t drain_grace_ms; /* SIGTERM: /readyz 503 this long before clients go */
    const char *minimal_tenants; /* comma-separated */
    int delivery;                /* GW_DELIVERY_* (an enum setting) */
    int64_t rerun_memory;        /* re-run memory entries per document (gw_rerun.h) */
    const char *log_level;
    /* history.*: the history endpoints (gw_history.h) */
    int64_t history_jobs, history_queue, history_timeout_ms;
    int64_t history_max_records, history_max_bytes, history_max_limit;
    fl_kafka_props_t kafka; /* kafka.* pass-through */
} gw_config_t;

/* The gateway's settings: one table for loading, --help and the docs. */
extern const struct fl_config_table_s gw_config_table;

typedef struct gw_s gw_t;

/* Loads the keys, builds the Kafka handles, checks the topics, binds the
 * port and starts the consumer thread. cfg is kept by reference. NULL with
 * errstr on any problem. */
gw_t *gw_new(const gw_config_t *cfg, char *errstr, size_t errstr_size);

/* The port listened on (after gw_new). */
int gw_port(const gw_t *gw);

/* Serves until gw_stop; then drains: for drain.grace.ms it keeps serving
 * (the port stays open, /readyz answers 503, new WebSocket upgrades are
 * closed with 4201), then closes every client with 4201 going_away,
 * flushes the producer and returns 0 (1 on a fatal error). */
int gw_run(gw_t *gw);

/* Asks gw_run to drain and return. Async-signal-safe. */
void gw_stop(gw_t *gw);

void gw_free(gw_t *gw); /* NULL is safe */

#endif
