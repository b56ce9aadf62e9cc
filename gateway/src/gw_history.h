/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_history: the gateway's history endpoints (docs/gateway.md).
 *   GET /v1/docs/{id}/history?from_version=V&limit=N  the applied changes
 *       from version V on, oldest first, at most N: a `deltas` message
 *       (PROTOCOL.md section 4) plus `next` when more may follow;
 *   GET /v1/docs/{id}?version=V  the document as it was at V: {doc,
 *       version, chain, digest, [partition, offset, ts, partial,] state},
 *       the form of `flushline at` (flushline/doc_at.h).
 *
 * Answered on the service thread from the live copy when it holds what is
 * asked (its version, or a window reaching back to V), else by a job: a
 * pool of history.jobs threads, each with a reader consumer of its own,
 * reads the snapshots and events partitions through the partition module
 * (flushline/doc_at.h), bounded by history.timeout.ms, history.max.records
 * and history.max.bytes. Jobs come in through a queue (common/queue.h)
 * bounded by history.queue (beyond: 503 with Retry-After) and their
 * answers go back to the service thread through another one, whose wake is
 * lws_cancel_service; gw_history_drain answers them.
 *
 * The caller (gw_http) checks the token and the read grant first: the same
 * auth as reading the document.
 *
 * @locality gw_history_new, _stop, _free: the main thread; the rest: the
 * lws service thread. Job threads touch only their job.
 */
#ifndef GW_HISTORY_H
#define GW_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "flushline/flush.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_metrics.h"
#include "gw_parts.h"

typedef struct gw_history_s gw_history_t;
typedef struct gw_hist_job_s gw_hist_job_t;
typedef struct gw_hist_req_s gw_hist_req_t;

typedef struct gw_hist_query_s {
    bool list;         /* /history; else ?version= */
    uint64_t from;     /* list: from_version (default 1) */
    uint64_t limit;    /* list: at most this many changes (default 100) */
    uint64_t version;  /* ?version= */
} gw_hist_query_t;

/* Embedded in an HTTP request. Exactly one of answer and fail is called,
 * once, on the service thread (maybe before gw_history_serve returns). */
struct gw_hist_req_s {
    void (*answer)(gw_hist_req_t *r, const char *json, size_t len);
    /* retry_after_s: 0 or the Retry-After header's seconds */
    void (*fail)(gw_hist_req_t *r, int status, uint16_t code, const char *reason,
                 uint32_t retry_after_s);
    gw_hist_query_t q;
    gw_hist_job_t *job; /* in flight (the module's) */
};

/*
 * Whether a GET /v1/docs/... (path/plen without the query; query/qlen after
 * the '?', query NULL when none) is a history request: a path ending in
 * "/history", or any query. 0: it is not (route it as before); 1: it is,
 * with the id in doc (FL_DOC_ID_MAX bytes) and *q filled; else the HTTP
 * status of its refusal (400) with its code and reason.
 */
int gw_history_target(const gw_history_t *h, const char *path, size_t plen, const char *query,
                      size_t qlen, char *doc, size_t *doclen, gw_hist_query_t *q,
                      uint16_t *code, char *reason, size_t rsize);

/* The job threads and their consumers (cfg, docs, parts and m are kept;
 * wake: the service thread's lws context). NULL with errstr. */
gw_history_t *gw_history_new(const gw_config_t *cfg, gw_docs_t *docs, gw_parts_t *parts,
                             gw_metrics_t *m, struct lws_context *wake, char *errstr,
                             size_t errstr_size);
/* Ends the job threads (their reads stop; nothing more is answered). Before
 * the lws context goes; cancels stay safe after it. */
void gw_history_stop(gw_history_t *h);
/* Frees it (stopped first when not yet); jobs not answered are dropped.
 * NULL is safe. */
void gw_history_free(gw_history_t *h);

/* Serves r (r->q as gw_history_target filled it) for doc. */
void gw_history_serve(gw_history_t *h, gw_hist_req_t *r, fl_slice_t doc);
/* r goes away unanswered (its connection closed): its job's answer is
 * dropped and its read stopped. */
void gw_history_cancel(gw_history_t *h, gw_hist_req_t *r);
/* Answers the jobs that are done (the service thread's wake). */
void gw_history_drain(gw_history_t *h);

#endif
