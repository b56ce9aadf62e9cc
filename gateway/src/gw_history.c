/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_history: the history endpoints (see gw_history.h). The parameters,
 * the answers from the live copy, the job pool that reads Kafka through the
 * partition module, and the one page builder both paths share: a page is
 * a window of outcome records (core/history.h), the gateway's own or one
 * filled by a job, turned into a `deltas` message.
 */
#include "gw_history.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "flushline/clock.h"
#include "flushline/doc_at.h"
#include "flushline/errors.h"
#include "flushline/log.h"
#include "flushline/queue.h"
#include "flushline/reader.h"
#include "flushline/topics.h"
#include "gw_url.h"

#define DEFAULT_LIMIT 100
#define RETRY_AFTER_S 1

struct gw_hist_job_s {
    fl_queue_item_t item;
    gw_hist_req_t *req;     /* service thread only; NULL: cancelled */
    atomic_bool cancelled;  /* read by the job thread */
    char doc[FL_DOC_ID_MAX];
    size_t doclen;
    int32_t partition;
    gw_hist_query_t q;
    int64_t deadline_ms;
    /* the answer */
    int status;
    uint16_t code;
    uint32_t retry_after_s;
    char reason[512];
    char *body;
    size_t blen;
};

typedef struct worker_s {
    gw_history_t *h;
    pthread_t thread;
    bool started;
    rd_kafka_t *rk;
    fl_arena_t *arena;
} worker_t;

struct gw_history_s {
    const gw_config_t *cfg;
    gw_docs_t *docs;
    gw_parts_t *parts;
    struct lws_context *wake;
    fl_arena_t *arena; /* the service thread's scratch */
    char snapshots[FL_TOPIC_NAME_MAX + 1], events[FL_TOPIC_NAME_MAX + 1];
    fl_queue_t *jobs, *done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stopping;
    bool stopped;
    worker_t *workers;
    int nworkers;
    uint32_t inflight; /* submitted and not drained (service thread) */
    fl_counter_t *from_memory, *from_log, *busy, *timeouts;
};

/* ---- parameters -------------------------------------------------------------------- */

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = v;
    return true;
}

/* One name=value of the parameters into q; seen: bits of the names seen.
 * 0, or -1 with the reason. */
static int parse_param(const gw_history_t *h, const char *s, size_t n, gw_hist_query_t *q,
                       unsigned *seen, char *reason, size_t rsize)
{
    static const char *const names[] = {"from_version", "limit", "version"};
    const char *eq = memchr(s, '=', n);
    size_t nl = eq ? (size_t)(eq - s) : n;
    unsigned k;
    uint64_t v;
    for (k = 0; k < 3; k++)
        if (strlen(names[k]) == nl && memcmp(s, names[k], nl) == 0)
            break;
    if (k == 3 || (k == 2) == q->list) {
        snprintf(reason, rsize, "unknown parameter \"%.*s\": %s", (int)(nl < 64 ? nl : 64), s,
                 q->list ? "GET /v1/docs/{id}/history takes from_version and limit"
                         : "GET /v1/docs/{id} takes version");
        return -1;
    }
    if (*seen & (1u << k)) {
        snprintf(reason, rsize, "%s is given twice", names[k]);
        return -1;
    }
    *seen |= 1u << k;
    if (!eq || !parse_u64(eq + 1, n - nl - 1, &v)) {
        snprintf(reason, rsize, "%s must be a whole number from 0 to 2^63-1", names[k]);
        return -1;
    }
    if (k == 1 && (v < 1 || v > (uint64_t)h->cfg->history_max_limit)) {
        snprintf(reason, rsize, "limit must be 1 to %lld (history.max.limit)",
                 (long long)h->cfg->history_max_limit);
        return -1;
    }
    if (k == 0)
        q->from = v > 0 ? v : 1; /* no change has version 0 */
    else if (k == 1)
        q->limit = v;
    else
        q->version = v;
    return 0;
}

int gw_history_target(const gw_history_t *h, const char *path, size_t plen, const char *query,
                      size_t qlen, char *doc, size_t *doclen, gw_hist_query_t *q,
                      uint16_t *code, char *reason, size_t rsize)
{
    const char *p = path + 9, *why = NULL;
    size_t n = plen - 9;
    unsigned seen = 0;
    bool list = n > 8 && memcmp(p + n - 8, "/history", 8) == 0;

    if (!list && !query)
        return 0;
    memset(q, 0, sizeof *q);
    q->list = list;
    q->from = 1;
    q->limit = DEFAULT_LIMIT < h->cfg->history_max_limit ? DEFAULT_LIMIT
                                                         : (uint64_t)h->cfg->history_max_limit;
    if (list)
        n -= 8;
    if (gw_url_doc_id(p, n, doc, doclen, &why) != 0) {
        *code = FL_CODE_BAD_DOC_ID;
        snprintf(reason, rsize, "bad document id in the URL: %s", why);
        return 400;
    }
    *code = FL_CODE_BAD_FRAME;
    for (size_t i = 0; query && i < qlen;) {
        const char *amp = memchr(query + i, '&', qlen - i);
        size_t end = amp ? (size_t)(amp - query) : qlen;
        if (end > i && parse_param(h, query + i, end - i, q, &seen, reason, rsize) != 0)
            return 400;
        i = end + 1;
    }
    if (!list && !(seen & 4u)) {
        snprintf(reason, rsize, "GET /v1/docs/{id}?version=V needs version");
        return 400;
    }
    return 1;
}

/* ---- pages --------------------------------------------------------------------------- */

/* Appends ,"next":N before the closing brace of the JSON object text. */
static int add_next(char **text, size_t *len, uint64_t next)
{
    char tail[48];
    int n = snprintf(tail, sizeof tail, ",\"next\":%llu}", (unsigned long long)next);
    char *t = realloc(*text, *len + (size_t)n + 1);
    if (!t)
        return -1;
    memcpy(t + *len - 1, tail, (size_t)n + 1);
    *len += (size_t)n - 1;
    *text = t;
    return 0;
}

/* The page of changes from version `from` on held by w (contiguous, newest
 * last): at most limit of them, `next` when more are held or more_after
 * (more may follow what w holds); cur is the version an empty page is at.
 * JSON into *out (malloc'd). 0, or -1 with errstr. */
static int page_json(fl_slice_t doc, const fl_window_t *w, uint64_t from, uint64_t limit,
                     bool more_after, uint64_t cur, fl_arena_t *arena, char **out,
                     size_t *outlen, char *errstr, size_t errstr_size)
{
    uint32_t n = fl_window_count(w), i = 0, k;
    fl_wire_msg_t msg;
    fl_wire_delta_t *items = NULL;
    while (i < n && fl_window_at(w, i)->version_after < from)
        i++;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_DELTAS;
    msg.u.deltas.doc = doc;
    msg.u.deltas.from_version = i < n ? fl_window_at(w, i)->version_before : cur;
    if (i == n) {
        json_t *j = json_pack("{s:s,s:i,s:s#,s:I,s:[]}", "t", "deltas", "v", FL_WIRE_VERSION,
                              "doc", doc.ptr, doc.len, "from_version", (json_int_t)cur, "items");
        *out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        *outlen = *out ? strlen(*out) : 0;
        snprintf(errstr, errstr_size, "out of memory");
        return *out ? 0 : -1;
    }
    fl_arena_reset(arena);
    if (fl_window_deltas(w, msg.u.deltas.from_version, arena, &items, &k, errstr, errstr_size))
        return -1;
    msg.u.deltas.items = items;
    msg.u.deltas.nitems = k < limit ? k : (uint32_t)limit;
    if (fl_wire_encode(&msg, FL_WIRE_JSON, out, outlen, errstr, errstr_size) != 0)
        return -1;
    if ((k > limit || more_after) &&
        add_next(out, outlen, items[msg.u.deltas.nitems - 1].version + 1) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- answers from the live copy ------------------------------------------------------- */

static bool answer_json(gw_hist_req_t *r, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text) {
        r->fail(r, 500, FL_CODE_INTERNAL, "out of memory", 0);
        return true;
    }
    r->answer(r, text, strlen(text));
    free(text);
    return true;
}

static void not_yet(gw_hist_req_t *r, uint64_t asked, uint64_t cur, bool has_history)
{
    char reason[160];
    if (has_history)
        snprintf(reason, sizeof reason, "version %llu does not exist yet: the document is at %llu",
                 (unsigned long long)asked, (unsigned long long)cur);
    else
        snprintf(reason, sizeof reason, "the document has no history");
    r->fail(r, 404, FL_CODE_VERSION_MISMATCH, reason, 0);
}

/* Answers from the live copy when it holds what is asked: true when
 * answered. */
static bool served_live(gw_history_t *h, gw_hist_req_t *r, gw_doc_t *doc, fl_slice_t id)
{
    const fl_window_t *w = gw_docs_window(doc);
    uint64_t cur = gw_docs_version(doc);
    char *text = NULL, errstr[256];
    size_t len;

    if (!r->q.list) {
        if (r->q.version > cur) {
            not_yet(r, r->q.version, cur, true);
            return true;
        }
        return r->q.version == cur &&
               answer_json(r, fl_at_doc_json(id, gw_docs_live_copy(doc), NULL));
    }
    if (r->q.from > cur + 1) {
        not_yet(r, r->q.from, cur, true);
        return true;
    }
    if (r->q.from <= cur &&
        (fl_window_count(w) == 0 || fl_window_at(w, 0)->version_before >= r->q.from))
        return false; /* the window does not reach back to from */
    if (page_json(id, w, r->q.from, r->q.limit, false, cur, h->arena, &text, &len, errstr,
                  sizeof errstr) != 0) {
        free(text);
        return false; /* a window record that does not decode: read the log */
    }
    r->answer(r, text, len);
    free(text);
    return true;
}

/* ---- jobs (job threads) ------------------------------------------------------------- */

static void job_fail(gw_hist_job_t *job, int status, uint16_t code, uint32_t retry,
                     const char *reason)
{
    job->status = status;
    job->code = code;
    job->retry_after_s = retry;
    snprintf(job->reason, sizeof job->reason, "%s", reason);
}

/* A read that did not finish: the status that says why. */
static void read_failed(gw_hist_job_t *job, const fl_at_t *at, int rc)
{
    char reason[600];
    if (rc == FL_READER_ETIMEDOUT)
        job_fail(job, 504, FL_CODE_UNAVAILABLE, 0,
                 "the history read did not finish within history.timeout.ms");
    else if (rc == FL_AT_ELIMIT)
        job_fail(job, 413, FL_CODE_LIMIT, 0, at->what);
    else if (rc == FL_READER_EKAFKA || rc == FL_READER_ESTOPPED)
        job_fail(job, 503, FL_CODE_UNAVAILABLE, RETRY_AFTER_S,
                 rc == FL_READER_ESTOPPED ? "the gateway is stopping" : at->what);
    else if (rc == FL_HISTORY_ENOMEM || rc == FL_READER_ENOMEM)
        job_fail(job, 500, FL_CODE_INTERNAL, 0, "out of memory");
    else {
        snprintf(reason, sizeof reason, "the document's history does not replay: %s",
                 at->what[0] ? at->what : fl_at_strerror(rc));
        job_fail(job, 500, FL_CODE_INTERNAL, 0, reason);
    }
}

static void job_json(gw_hist_job_t *job, json_t *j)
{
    job->body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!job->body)
        job_fail(job, 500, FL_CODE_INTERNAL, 0, "out of memory");
    else {
        job->blen = strlen(job->body);
        job->status = 200;
    }
}

static void run_version(gw_hist_job_t *job, fl_at_t *at)
{
    int rc;
    at->version = job->q.version;
    if ((rc = fl_at_doc(at)) < 0)
        read_failed(job, at, rc);
    else if (!at->ent || fl_doc_version(at->ent->doc) < job->q.version) {
        char reason[160];
        snprintf(reason, sizeof reason, "version %llu does not exist yet: the document is at %llu",
                 (unsigned long long)job->q.version,
                 (unsigned long long)(at->ent ? fl_doc_version(at->ent->doc) : 0));
        job_fail(job, 404, FL_CODE_VERSION_MISMATCH, 0,
                 at->ent ? reason : "the document has no history");
    } else
        job_json(job, fl_at_json(at));
}

/* A job's context for the read's callbacks (fl_at_t's opaque). */
typedef struct job_ctx_s {
    worker_t *wk;
    gw_hist_job_t *job;
    fl_window_t w; /* list: the page's changes */
} job_ctx_t;

/* Keeps each change from `from` on (its record, as the gateway's window
 * does) until the page is full. */
static int list_post(fl_at_t *at, fl_part_doc_t *ent, const fl_outcome_t *o,
                     const rd_kafka_message_t *msg)
{
    job_ctx_t *c = at->opaque;
    char *rec;
    (void)ent;
    if (o->napplied == 0 || o->version_after < c->job->q.from)
        return 0;
    if (!(rec = malloc(msg->len ? msg->len : 1)))
        return FL_HISTORY_ENOMEM;
    memcpy(rec, msg->payload, msg->len);
    if (fl_window_push(&c->w, o->version_before, o->version_after, rec, msg->len) != 0)
        return FL_HISTORY_ENOMEM;
    return fl_window_count(&c->w) >= c->job->q.limit ? 1 : 0;
}

static void run_list(job_ctx_t *c, fl_at_t *at)
{
    gw_hist_job_t *job = c->job;
    char errstr[256];
    uint64_t cur;
    int rc;

    fl_window_init(&c->w, (uint32_t)job->q.limit, SIZE_MAX);
    at->seed_version = job->q.from - 1;
    at->post = list_post;
    rc = fl_at_read(at);
    cur = at->ent ? fl_doc_version(at->ent->doc) : 0;
    if (rc < 0 && (fl_window_count(&c->w) == 0 || rc == FL_HISTORY_ENOMEM))
        read_failed(job, at, rc);
    else if (rc == 0 && job->q.from > cur + 1)
        job_fail(job, 404, FL_CODE_VERSION_MISMATCH, 0,
                 at->ent ? "that version does not exist yet" : "the document has no history");
    else if (page_json((fl_slice_t){job->doc, job->doclen}, &c->w, job->q.from, job->q.limit,
                       rc != 0, cur, c->wk->arena, &job->body, &job->blen, errstr,
                       sizeof errstr) != 0)
        job_fail(job, 500, FL_CODE_INTERNAL, 0, errstr);
    else
        job->status = 200;
    fl_window_free(&c->w);
}

static bool job_should_stop(void *opaque)
{
    job_ctx_t *c = opaque;
    return atomic_load(&c->wk->h->stopping) || atomic_load(&c->job->cancelled);
}

static void run_job(worker_t *wk, gw_hist_job_t *job)
{
    gw_history_t *h = wk->h;
    job_ctx_t c = {wk, job, {0}};
    fl_at_t at;
    if (atomic_load(&job->cancelled))
        return;
    memset(&at, 0, sizeof at);
    if (fl_clock_mono_ms() >= job->deadline_ms) {
        read_failed(job, &at, FL_READER_ETIMEDOUT);
        return;
    }
    at.rk = wk->rk;
    at.snapshots = h->snapshots;
    at.events = h->events;
    at.partition = job->partition;
    at.doc = (fl_slice_t){job->doc, job->doclen};
    at.seed_version = UINT64_MAX;
    at.seed_offset = INT64_MAX;
    at.deadline_ms = job->deadline_ms;
    at.max_records = (uint64_t)h->cfg->history_max_records;
    at.max_bytes = (uint64_t)h->cfg->history_max_bytes;
    at.should_stop = job_should_stop;
    at.opaque = &c;
    if (job->q.list)
        run_list(&c, &at);
    else
        run_version(job, &at);
    fl_debug("history of %.*s: %d after %llu records (%llu bytes)", (int)job->doclen, job->doc,
             job->status, (unsigned long long)at.records, (unsigned long long)at.bytes);
    fl_at_done(&at);
}

static gw_hist_job_t *next_job(gw_history_t *h)
{
    fl_queue_item_t *it = NULL;
    bool more = false;
    pthread_mutex_lock(&h->mu);
    while (!atomic_load(&h->stopping) && fl_queue_count(h->jobs) == 0)
        pthread_cond_wait(&h->cv, &h->mu);
    /* one job (each weighs 1) */
    if (!atomic_load(&h->stopping) && (it = fl_queue_take_some(h->jobs, 1, &more)) && more)
        pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return it ? fl_queue_entry(it, gw_hist_job_t, item) : NULL;
}

static void *worker_main(void *arg)
{
    worker_t *wk = arg;
    gw_hist_job_t *job;
    while ((job = next_job(wk->h))) {
        run_job(wk, job);
        fl_queue_push(wk->h->done, &job->item, &job->item);
    }
    return NULL;
}

/* ---- the service thread -------------------------------------------------------------- */

static void submit(gw_history_t *h, gw_hist_req_t *r, fl_slice_t id)
{
    gw_hist_job_t *job;
    if (h->inflight >= (uint32_t)(h->cfg->history_jobs + h->cfg->history_queue)) {
        fl_counter_inc(h->busy);
        r->fail(r, 503, FL_CODE_UNAVAILABLE,
                "every history job is busy (history.jobs, history.queue): retry later",
                RETRY_AFTER_S);
        return;
    }
    if (!(job = calloc(1, sizeof *job))) {
        r->fail(r, 500, FL_CODE_INTERNAL, "out of memory", 0);
        return;
    }
    memcpy(job->doc, id.ptr, id.len);
    job->doclen = id.len;
    job->partition = gw_parts_of(h->parts, id);
    job->q = r->q;
    job->deadline_ms = fl_clock_mono_ms() + h->cfg->history_timeout_ms;
    atomic_init(&job->cancelled, false);
    job->item.weight = 1;
    job->req = r;
    r->job = job;
    h->inflight++;
    fl_counter_inc(h->from_log);
    fl_queue_push(h->jobs, &job->item, &job->item);
}

void gw_history_serve(gw_history_t *h, gw_hist_req_t *r, fl_slice_t doc)
{
    gw_doc_t *d = gw_docs_get(h->docs, doc);
    r->job = NULL;
    if (d && gw_docs_live(d) && served_live(h, r, d, doc)) {
        fl_counter_inc(h->from_memory);
        return;
    }
    submit(h, r, doc);
}

void gw_history_cancel(gw_history_t *h, gw_hist_req_t *r)
{
    (void)h;
    if (r->job) {
        atomic_store(&r->job->cancelled, true);
        r->job->req = NULL;
        r->job = NULL;
    }
}

static void free_jobs(fl_queue_item_t *it)
{
    while (it) {
        gw_hist_job_t *job = fl_queue_entry(it, gw_hist_job_t, item);
        it = it->next;
        if (job->req)
            job->req->job = NULL;
        free(job->body);
        free(job);
    }
}

void gw_history_drain(gw_history_t *h)
{
    fl_queue_item_t *it = fl_queue_take(h->done), *next;
    for (; it; it = next) {
        gw_hist_job_t *job = fl_queue_entry(it, gw_hist_job_t, item);
        gw_hist_req_t *r = job->req;
        next = it->next;
        h->inflight--;
        if (job->status == 504)
            fl_counter_inc(h->timeouts);
        if (r) {
            r->job = NULL;
            if (job->status == 200)
                r->answer(r, job->body, job->blen);
            else
                r->fail(r, job->status ? job->status : 500, job->code, job->reason,
                        job->retry_after_s);
        }
        free(job->body);
        free(job);
    }
}

/* ---- life ------------------------------------------------------------------------------ */

static void on_job(void *arg)
{
    gw_history_t *h = arg;
    pthread_mutex_lock(&h->mu);
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void on_done(void *arg)
{
    gw_history_t *h = arg;
    lws_cancel_service(h->wake);
}

static int start_workers(gw_history_t *h, char *errstr, size_t errstr_size)
{
    const gw_config_t *cfg = h->cfg;
    if (!(h->workers = calloc((size_t)cfg->history_jobs, sizeof *h->workers)))
        return -1;
    for (h->nworkers = 0; h->nworkers < (int)cfg->history_jobs; h->nworkers++) {
        worker_t *wk = &h->workers[h->nworkers];
        wk->h = h;
        if (!(wk->arena = fl_arena_new(1 << 14)) ||
            !(wk->rk = fl_reader_consumer_new("history reader", cfg->bootstrap,
                                              "flushline-gateway-history", &cfg->kafka, errstr,
                                              errstr_size))) {
            fl_arena_free(wk->arena);
            return -1;
        }
        if (pthread_create(&wk->thread, NULL, worker_main, wk) != 0) {
            snprintf(errstr, errstr_size, "cannot start a history job thread");
            return -1;
        }
        wk->started = true;
    }
    return 0;
}

static fl_counter_t *counter(gw_metrics_t *m, const char *name, const char *help)
{
    return fl_metrics_counter(m->reg, name, help);
}

gw_history_t *gw_history_new(const gw_config_t *cfg, gw_docs_t *docs, gw_parts_t *parts,
                             gw_metrics_t *m, struct lws_context *wake, char *errstr,
                             size_t errstr_size)
{
    gw_history_t *h = calloc(1, sizeof *h);
    snprintf(errstr, errstr_size, "out of memory");
    if (!h)
        return NULL;
    h->cfg = cfg;
    h->docs = docs;
    h->parts = parts;
    h->wake = wake;
    atomic_init(&h->stopping, false);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->from_memory = counter(m, "flushline_gateway_history_memory_total",
                             "History requests answered from the live copy and its window.");
    h->from_log = counter(m, "flushline_gateway_history_jobs_total",
                          "History requests read from Kafka by a job.");
    h->busy = counter(m, "flushline_gateway_history_busy_total",
                      "History requests refused with 503: every job busy.");
    h->timeouts = counter(m, "flushline_gateway_history_timeouts_total",
                          "History jobs over history.timeout.ms (504).");
    if (!h->from_memory || !h->from_log || !h->busy || !h->timeouts ||
        fl_topic_name(cfg->prefix, FL_TOPIC_SNAPSHOTS, h->snapshots, sizeof h->snapshots) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_EVENTS, h->events, sizeof h->events) ||
        !(h->arena = fl_arena_new(1 << 14)) || !(h->jobs = fl_queue_new(on_job, h)) ||
        !(h->done = fl_queue_new(on_done, h)) || start_workers(h, errstr, errstr_size) != 0) {
        gw_history_free(h);
        return NULL;
    }
    return h;
}

void gw_history_stop(gw_history_t *h)
{
    if (!h || h->stopped)
        return;
    h->stopped = true;
    pthread_mutex_lock(&h->mu);
    atomic_store(&h->stopping, true);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->nworkers; i++)
        if (h->workers[i].started)
            pthread_join(h->workers[i].thread, NULL);
    for (int i = 0; h->workers && i < h->nworkers; i++) {
        if (h->workers[i].rk) {
            rd_kafka_consumer_close(h->workers[i].rk);
            rd_kafka_destroy(h->workers[i].rk);
        }
        fl_arena_free(h->workers[i].arena);
    }
    free(h->workers);
    h->workers = NULL;
    h->nworkers = 0;
}

void gw_history_free(gw_history_t *h)
{
    if (!h)
        return;
    gw_history_stop(h);
    if (h->jobs)
        free_jobs(fl_queue_take(h->jobs));
    if (h->done)
        free_jobs(fl_queue_take(h->done));
    fl_queue_free(h->jobs);
    fl_queue_free(h->done);
    fl_arena_free(h->arena);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
