/* SPDX-License-Identifier: Apache-2.0 */
/* gw_config: the gateway's settings table (see config.h for sources). */
#include <stddef.h>
#include <stdint.h>

#include "flushline/config.h"
#include "flushline/topics.h"
#include "gw.h"

#define F(field) offsetof(gw_config_t, field)

static const char *const deliveries[] = {"speculative", "committed", NULL};

static const fl_config_entry_t entries[] = {
    FL_CONFIG_DEPLOYMENT_ENTRIES(gw_config_t, "the gateway"),
    {.name = "gateway.id", .type = FL_CONFIG_STRING, .def = NULL, .offset = F(gateway_id),
     .doc = "This gateway's id in flush and sync records (outcomes come back by it); unset: hostname-pid. Unique per running gateway."},
    {.name = "port", .type = FL_CONFIG_INT, .def = "8080", .offset = F(port), .min = 0, .max = 65535,
     .doc = "Port for HTTP and WebSocket (/v1/ws); 0 picks a free one (logged as \"listening on ADDR:PORT\")."},
    {.name = "bind", .type = FL_CONFIG_STRING, .def = "127.0.0.1", .offset = F(bind),
     .doc = "Address to listen on (an IPv4 or IPv6 literal; 0.0.0.0 for every IPv4 address)."},
    {.name = "tls.cert", .type = FL_CONFIG_STRING, .def = NULL, .offset = F(tls_cert),
     .doc = "PEM certificate chain: serve TLS (wss, https) on the same port."},
    {.name = "tls.key", .type = FL_CONFIG_STRING, .def = NULL, .offset = F(tls_key),
     .doc = "PEM private key for tls.cert."},
    {.name = "static.dir", .type = FL_CONFIG_STRING, .def = NULL, .offset = F(static_dir),
     .doc = "Serve the files of this folder (the demo app) at /."},
    {.name = "jwt.keys", .type = FL_CONFIG_STRING, .def = NULL, .offset = F(jwt_keys), .flags = FL_CONFIG_REQUIRED,
     .doc = "Comma-separated key files (flushline token keygen) that verify client tokens."},
    {.name = "origins", .type = FL_CONFIG_STRING, .def = "", .offset = F(origins),
     .doc = "Comma-separated Origin allow-list for WebSocket upgrades; empty allows every origin."},
    {.name = "max.frame", .type = FL_CONFIG_SIZE, .def = "1M", .offset = F(max_frame), .min = 1024, .max = 64 << 20,
     .doc = "Largest client message (after reassembling fragments); larger closes with 4000."},
    {.name = "max.commands", .type = FL_CONFIG_INT, .def = "1000", .offset = F(max_commands), .min = 1, .max = 1000,
     .doc = "Commands per flush."},
    {.name = "max.subscriptions", .type = FL_CONFIG_INT, .def = "100", .offset = F(max_subscriptions), .min = 1, .max = 100000,
     .doc = "Subscriptions per connection."},
    {.name = "rate", .type = FL_CONFIG_INT, .def = "100", .offset = F(rate), .min = 1, .max = 1000000,
     .doc = "Flushes per second per connection (token bucket refill)."},
    {.name = "burst", .type = FL_CONFIG_INT, .def = "200", .offset = F(burst), .min = 1, .max = 1000000,
     .doc = "Token bucket size of that rate limit."},
    {.name = "signal.rate", .type = FL_CONFIG_INT, .def = "50", .offset = F(signal_rate), .min = 1, .max = 1000000,
     .doc = "Signals per second per connection (a token bucket of its own; over it: nack rate_limited)."},
    {.name = "signal.burst", .type = FL_CONFIG_INT, .def = "100", .offset = F(signal_burst), .min = 1, .max = 1000000,
     .doc = "Token bucket size of the signal rate limit."},
    {.name = "send.queue.bytes", .type = FL_CONFIG_SIZE, .def = "1M", .offset = F(send_queue_bytes), .min = 4096, .max = 1 << 30,
     .doc = "Bytes queued for one client before it is closed with 4200 slow_consumer."},
    {.name = "window.deltas", .type = FL_CONFIG_INT, .def = "256", .offset = F(window_deltas), .min = 0, .max = 100000,
     .doc = "Recent deltas kept per document for catch-up; older gaps get a snapshot."},
    {.name = "http.flush.timeout.ms", .type = FL_CONFIG_DURATION_MS, .def = "10s", .offset = F(http_flush_timeout_ms), .min = 100, .max = 600000,
     .doc = "POST /v1/docs/{id}/flush and GET /v1/docs/{id} answer 504 after this long."},
    {.name = "held.max.bytes", .type = FL_CONFIG_SIZE, .def = "8M", .offset = F(held_max_bytes), .min = 4096, .max = 1 << 30,
     .doc = "Bytes of flushes held until their partition's outcomes are followed (all partitions); a flush beyond is answered unavailable with retry_after_ms at once."},
    {.name = "held.max.ms", .type = FL_CONFIG_DURATION_MS, .def = "5s", .offset = F(held_max_ms), .min = 100, .max = 600000,
     .doc = "A flush held longer than this (Kafka slow or away) is answered unavailable with retry_after_ms, never published later."},
    {.name = "hello.timeout.ms", .type = FL_CONFIG_DURATION_MS, .def = "10s", .offset = F(hello_timeout_ms), .min = 100, .max = 600000,
     .doc = "A connection without a valid hello by then is closed with 4001."},
    {.name = "doc.idle.ms", .type = FL_CONFIG_DURATION_MS, .def = "30s", .offset = F(doc_idle_ms), .min = 0, .max = 86400000,
     .doc = "A document without subscribers is dropped from memory after this long."},
    {.name = "sync.timeout.ms", .type = FL_CONFIG_DURATION_MS, .def = "10s", .offset = F(sync_timeout_ms), .min = 100, .max = 600000,
     .doc = "Ask again when a sync has no reply after this long."},
    {.name = "jwt.leeway", .type = FL_CONFIG_INT, .def = "30", .offset = F(jwt_leeway), .min = 0, .max = 3600,
     .doc = "Seconds of clock skew allowed on a token's exp and nbf, the same for hello, auth, the connection's expiry (closed with 4004 at exp + leeway) and HTTP; announced in welcome."},
    {.name = "drain.grace.ms", .type = FL_CONFIG_DURATION_MS, .def = "2s", .offset = F(drain_grace_ms), .min = 0, .max = 600000,
     .doc = "After SIGTERM: keep serving this long with /readyz answering 503 (new WebSocket upgrades get 4201), so load balancers take the gateway out; then close every client with 4201 and exit."},
    {.name = "delivery", .type = FL_CONFIG_ENUM, .def = "speculative", .choices = deliveries, .offset = F(delivery),
     .doc = "speculative: outcomes, deltas and HTTP flush answers go out as soon as the processor produced them, before its transaction commits (events read read_uncommitted; a processor's re-run after a crash is recognised by version and chain hash and never delivered twice; a divergence resyncs the document's subscribers, counted in flushline_gateway_divergences_total). committed: only what is committed (read_committed; a commit interval later). See docs/operations.md."},
    {.name = "rerun.memory", .type = FL_CONFIG_INT, .def = "20000", .offset = F(rerun_memory), .min = 16, .max = 100000000,
     .doc = "delivery = speculative: outcomes remembered per live document above its committed version (versions, chain hash and flush id: 72 bytes each) to recognise a processor re-run's copies. Only what one open processor transaction holds is kept (at 1,000 outcomes/s per document and the processor's 10 s transaction.timeout.ms, 10,000); past this cap the oldest are forgotten and a re-run reaching back to them resyncs the document."},
    {.name = "minimal.tenants", .type = FL_CONFIG_STRING, .def = "", .offset = F(minimal_tenants),
     .doc = "Comma-separated tenants in minimum-disclosure mode: subscribers get changed {doc, version} only and fetch."},
    {.name = "history.jobs", .type = FL_CONFIG_INT, .def = "2", .offset = F(history_jobs), .min = 1, .max = 64,
     .doc = "Threads that read the history endpoints' answers from Kafka when the live copy does not hold them (each with a reader consumer of its own)."},
    {.name = "history.queue", .type = FL_CONFIG_INT, .def = "16", .offset = F(history_queue), .min = 0, .max = 100000,
     .doc = "History reads waiting for a thread; beyond: 503 with Retry-After."},
    {.name = "history.timeout.ms", .type = FL_CONFIG_DURATION_MS, .def = "10s", .offset = F(history_timeout_ms), .min = 100, .max = 600000,
     .doc = "A history read (its wait in the queue included) not done by then is answered 504 (a page of changes with some items: a shorter page and `next`)."},
    {.name = "history.max.records", .type = FL_CONFIG_INT, .def = "1000000", .offset = F(history_max_records), .min = 1, .max = INT64_MAX,
     .doc = "Records (snapshots and events) one history read may scan; beyond: 413 limit (a page of changes with some items: a shorter page and `next`)."},
    {.name = "history.max.bytes", .type = FL_CONFIG_SIZE, .def = "256M", .offset = F(history_max_bytes), .min = 1024, .max = INT64_MAX,
     .doc = "Record bytes one history read may scan, the same way."},
    {.name = "history.max.limit", .type = FL_CONFIG_INT, .def = "1000", .offset = F(history_max_limit), .min = 1, .max = 100000,
     .doc = "Largest `limit` of GET /v1/docs/{id}/history (the default limit is 100, or this when lower)."},
    FL_CONFIG_LOG_LEVEL_ENTRY(gw_config_t),
};

const fl_config_table_t gw_config_table = {
    .program = "flushline-gateway",
    .summary = "Serves clients over WebSocket and HTTP on one port, publishes their flushes to "
               "<prefix>.commands and fans the outcomes of <prefix>.events out to subscribers.",
    FL_CONFIG_DAEMON_TABLE(entries),
};
