/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_docs: the live copies of the documents this gateway has subscribers
 * (or HTTP readers) for, their subscriber sets, a window of their recent
 * outcomes (core/history), and the routing of outcomes back to the origin
 * of each flush.
 *
 * Documents know neither connections nor HTTP requests. A subscriber is a
 * gw_subscriber_t with a send callback (and a close callback for when it
 * cannot keep up); an HTTP reader waiting for a document to become live is
 * a gw_waiter_t on the document's list, called back once; the answer to a
 * flush goes to its origin through the origin registry (gw_origins.h).
 * Partitions and Kafka are reached through the small gw_docs_parts_t table
 * given at construction (the server wires gw_parts in; a test, a fake).
 *
 * A document's life: opened by its first subscriber (or an HTTP read), its
 * events partition is followed, then a sync is sent; outcomes that arrive
 * before the sync reply are already reflected in it and are ignored. The
 * reply sets the live copy (state, or deltas from version 0), every
 * waiting subscriber gets its catch-up and every waiter its call. Each
 * later applied outcome is applied to the live copy (the chain hash must
 * match, else the copy is dropped and re-synced, subscribers hearing
 * nothing until it is consistent) and fanned out as one `deltas` message
 * encoded once per form and shared by all subscribers. A document without
 * subscribers or waiters is dropped after the idle time (doc_drop: the one
 * place a document leaves memory, and so the eviction hook a memory budget
 * would call).
 *
 * Minimum-disclosure tenants get `changed {doc, version}` instead of
 * snapshots and deltas (PROTOCOL.md section 4).
 *
 * The outcome of a subscriber's own flush never overtakes the flush's
 * changes: while its catch-up is pending (the document is syncing), an
 * outcome that applied something is held on its subscription and sent
 * right after the catch-up.
 *
 * @locality lws service thread.
 */
#ifndef GW_DOCS_H
#define GW_DOCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/history.h"
#include "flushline/wire.h"
#include "gw_buf.h"
#include "gw_metrics.h"
#include "gw_origins.h"

#define GW_HOLD_MAX 1024 /* held outcomes per subscription; beyond: 4200 */

typedef struct gw_docs_s gw_docs_t;
typedef struct gw_doc_s gw_doc_t;
typedef struct gw_subscriber_s gw_subscriber_t;
typedef struct gw_waiter_s gw_waiter_t;

typedef struct gw_subscriber_ops_s {
    /* Queues a shared frame (takes a reference of its own when queued). 0,
     * or -1 when it was not queued. */
    int (*send)(gw_subscriber_t *s, gw_buf_t *buf);
    /* Closes the subscriber with a close code (it could not keep up). */
    void (*close)(gw_subscriber_t *s, uint16_t code, const char *reason);
} gw_subscriber_ops_t;

/* Embedded in whatever subscribes (a connection). */
struct gw_subscriber_s {
    const gw_subscriber_ops_t *ops;
    uint64_t origin; /* the origin id of its flushes: their outcomes wait for its catch-up */
    uint8_t form;    /* fl_wire_form_t that pushes take */
};

/* One who waits for a document to be live (an HTTP GET). */
struct gw_waiter_s {
    gw_waiter_t *next, *prev; /* on the document's list */
    gw_doc_t *doc;            /* NULL when not waiting */
    /* the document is live: the waiter is off the list already */
    void (*on_live)(gw_waiter_t *w, gw_doc_t *doc);
};

/* The partition layer as documents see it. */
typedef struct gw_docs_parts_s {
    void *ctx;
    int32_t (*partition)(void *ctx, fl_slice_t doc);
    /* true when p is followed now; else it is asked for and
     * gw_docs_on_part_ready follows */
    bool (*follow)(void *ctx, int32_t p);
    /* a document that needs p was opened (+1) or dropped (-1) */
    void (*docs)(void *ctx, int32_t p, int delta);
    /* produces a sync record keyed by doc: 0, or a Kafka error (buf stays
     * the caller's) */
    int (*send)(void *ctx, fl_slice_t doc, char *buf, size_t len);
} gw_docs_parts_t;

typedef struct gw_docs_conf_s {
    fl_slice_t id;            /* this gateway's id (sync records; our outcomes) */
    uint32_t window_deltas;   /* outcomes kept per document for catch-ups */
    int64_t idle_us;          /* a document nobody needs is dropped after */
    int64_t sync_timeout_us;  /* a sync without reply is sent again after */
    char *const *minimal;     /* minimum-disclosure tenants, NULL-terminated; NULL: none */
    uint64_t req_base;        /* sync request ids start after it (per instance) */
    uint32_t rerun_max;       /* re-run memory entries per document (gw_rerun.h); 0: off
                               * (delivery = committed: no re-run is ever read) */
} gw_docs_conf_t;

/* conf (its strings and list are kept by reference), parts (copied),
 * origins and m are kept. NULL on OOM. */
gw_docs_t *gw_docs_new(const gw_docs_conf_t *conf, const gw_docs_parts_t *parts,
                       gw_origins_t *origins, gw_metrics_t *m);
/* Frees every document; subscribers and waiters are not called. NULL is safe. */
void gw_docs_free(gw_docs_t *docs);

gw_doc_t *gw_docs_get(gw_docs_t *docs, fl_slice_t id);
/* The doc, created (and its sync started) when missing. NULL on OOM or a
 * bad id. */
gw_doc_t *gw_docs_open(gw_docs_t *docs, fl_slice_t id);
size_t gw_docs_count(const gw_docs_t *docs);
bool gw_docs_live(const gw_doc_t *doc);
uint64_t gw_docs_version(const gw_doc_t *doc); /* of the live copy; 0 when not live */
/* The live copy (NULL when not live) and the window of its recent
 * outcomes, for the history endpoints (gw_history.h); read-only. */
const fl_doc_t *gw_docs_live_copy(const gw_doc_t *doc);
const fl_window_t *gw_docs_window(const gw_doc_t *doc);

/* Adds s holding have (has false: nothing). The catch-up is queued now
 * when the doc is live, else when it becomes live; a repeated subscribe
 * restarts it. 0, or -FL_CODE_INTERNAL. */
int gw_docs_subscribe(gw_docs_t *docs, gw_doc_t *doc, gw_subscriber_t *s, bool has,
                      uint64_t have);
/* Removes s; outcomes held for it are sent now (the subscriber drops them
 * when it is closing). */
void gw_docs_unsubscribe(gw_docs_t *docs, gw_doc_t *doc, gw_subscriber_t *s);
/* Puts w on doc's list (doc not live): w->on_live when it is. */
void gw_docs_wait(gw_docs_t *docs, gw_doc_t *doc, gw_waiter_t *w);
/* Takes w off its document's list (not waiting: nothing). */
void gw_docs_unwait(gw_docs_t *docs, gw_waiter_t *w);
/* A snapshot of a live doc, encoded in form. */
gw_buf_t *gw_docs_snapshot(gw_docs_t *docs, gw_doc_t *doc, fl_wire_form_t form);

/* Partition p is followed: documents waiting for it send their sync. */
void gw_docs_on_part_ready(gw_docs_t *docs, int32_t p);
/* A decoded events or signals record; ts_ms: its Kafka timestamp (wall
 * clock); committed: its FL_EVENTS_HDR_COMMITTED header (0: none); raw (the
 * record value, may be NULL) passes to the documents. An outcome at or
 * below the live copy's version is a processor re-run's copy: dropped when
 * its chain hash is the one remembered for its version (gw_rerun.h), else
 * the document diverged: its live copy is dropped and every subscriber
 * gets a fresh snapshot once it is synced again. */
void gw_docs_on_record(gw_docs_t *docs, const fl_wire_msg_t *msg, int64_t ts_ms,
                       uint64_t committed, char *raw, size_t rawlen);
/* Timers: sync retries, idle documents. */
void gw_docs_tick(gw_docs_t *docs, int64_t now_us);

#endif
