/* SPDX-License-Identifier: Apache-2.0 */
/*
 * history: reading topics between offsets, progress, ranges, the document
 * table, snapshot seeding and the rebuild driver shared by the history
 * subcommands. See history.h for the contract; comments here say why.
 */
#include "history.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "flushline/clock.h"
#include "flushline/history.h"
#include "flushline/hmap.h"
#include "flushline/kafka.h"

volatile sig_atomic_t fl_hist_stop;

static void on_signal(int sig)
{
    (void)sig;
    fl_hist_stop = 1;
}

void fl_hist_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

const char *fl_hist_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case FL_HIST_ENOMEM:
        return "out of memory";
    case FL_HIST_EKAFKA:
        return "Kafka did not answer";
    case FL_HIST_ENOTOPIC:
        return "topic does not exist";
    case FL_HIST_ERECORD:
        return "bad record";
    case FL_HIST_EVERSION:
        return "version discontinuity";
    case FL_HIST_ECHAIN:
        return "chain hash mismatch";
    case FL_HIST_EDELTA:
        return "commands do not apply";
    case FL_HIST_ESTOPPED:
        return "interrupted";
    case FL_HIST_ECHECK:
        return "check failed";
    default:
        return "unknown error";
    }
}

/* ---- connecting --------------------------------------------------------- */

int fl_hist_open(fl_hist_t *h, const char *cmd, const fl_cli_common_t *common,
                 const char *group)
{
    char errstr[512], defgroup[64];

    memset(h, 0, sizeof *h);
    h->cmd = cmd;
    h->common = common;
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        if (fl_topic_name(common->prefix, (fl_topic_kind_t)k, h->topic[k], sizeof h->topic[k])) {
            fprintf(stderr, "flushline %s: invalid topic prefix \"%s\"\n", cmd, common->prefix);
            return FL_EXIT_USAGE;
        }
    }
    /* Assign-only: the group id is never joined nor committed to, but
     * librdkafka wants one for a consumer. */
    snprintf(defgroup, sizeof defgroup, "flushline-cli-%s", cmd);
    {
        const fl_kafka_kv_t defaults[] = {
            {"group.id", group ? group : defgroup},
            {"isolation.level", "read_committed"},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"enable.partition.eof", "true"},
            /* A log that ends in markers or aborted records is read to its
             * end only by fetches that return at once. */
            {"fetch.wait.max.ms", "10"},
            {"fetch.max.bytes", "67108864"},
            {"max.partition.fetch.bytes", "16777216"},
            {"queued.max.messages.kbytes", "262144"},
            {NULL, NULL},
        };
        /* -X settings are applied last: they win over ours */
        fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                              .what = "history reader",
                              .bootstrap = common->bootstrap,
                              .defaults = defaults,
                              .props = &common->props};
        if (!(h->rk = fl_kafka_new(&ks, errstr, sizeof errstr))) {
            fprintf(stderr, "flushline %s: %s\n", cmd, errstr);
            return FL_EXIT_USAGE;
        }
    }
    if (fl_kafka_wait_ready(h->rk, 8000, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline %s: %s\n", cmd, errstr);
        return FL_EXIT_UNREACHABLE;
    }
    return FL_EXIT_OK;
}

void fl_hist_close(fl_hist_t *h)
{
    if (h->rk) {
        rd_kafka_consumer_close(h->rk);
        rd_kafka_destroy(h->rk);
        h->rk = NULL;
    }
}

int fl_hist_partitions(fl_hist_t *h, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(h->rk, topic, NULL);
    rd_kafka_resp_err_t err;
    int n;

    if (!rkt)
        return FL_HIST_ENOMEM;
    err = rd_kafka_metadata(h->rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err)
        return FL_HIST_EKAFKA;
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        md->topics[0].partition_cnt == 0)
        n = FL_HIST_ENOTOPIC;
    else if (md->topics[0].err)
        n = FL_HIST_EKAFKA;
    else
        n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

int fl_hist_need_topic(fl_hist_t *h, fl_topic_kind_t kind)
{
    int n = fl_hist_partitions(h, h->topic[kind]);
    if (n == FL_HIST_ENOTOPIC) {
        fprintf(stderr, "flushline %s: topic %s does not exist (wrong --prefix?)\n", h->cmd,
                h->topic[kind]);
        return -FL_EXIT_FAIL;
    }
    if (n < 0) {
        fprintf(stderr, "flushline %s: metadata of %s: %s\n", h->cmd, h->topic[kind],
                fl_hist_strerror(n));
        return -FL_EXIT_UNREACHABLE;
    }
    if (n > FL_MAX_PARTITIONS) {
        fprintf(stderr, "flushline %s: %s has %d partitions, at most %d are supported\n", h->cmd,
                h->topic[kind], n, FL_MAX_PARTITIONS);
        return -FL_EXIT_FAIL;
    }
    return n;
}

int32_t fl_hist_doc_partition(fl_slice_t doc, int partitions)
{
    /* murmur2_random only falls back to the topic (random placement) for
     * a NULL key, and a document id is never empty. */
    return rd_kafka_msg_partitioner_murmur2_random(NULL, doc.ptr, doc.len, partitions, NULL,
                                                   NULL);
}

int fl_hist_watermarks(fl_hist_t *h, const char *topic, int32_t p, int64_t *lo, int64_t *hi)
{
    int64_t deadline = fl_clock_mono_ms() + 30000;
    rd_kafka_resp_err_t err;
    /* Right after topic creation a partition may lack a leader briefly. */
    while ((err = rd_kafka_query_watermark_offsets(h->rk, topic, p, lo, hi, 5000))) {
        if (fl_clock_mono_ms() > deadline || fl_hist_stop) {
            fprintf(stderr, "flushline %s: watermarks of %s [%d]: %s\n", h->cmd, topic, p,
                    rd_kafka_err2str(err));
            return FL_HIST_EKAFKA;
        }
        rd_kafka_poll(h->rk, 200);
    }
    return 0;
}

int fl_hist_offsets_for_time(fl_hist_t *h, const char *topic, int n, int64_t ts_ms,
                             int64_t *out)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    rd_kafka_resp_err_t err;
    int rc = 0;
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = ts_ms;
    err = rd_kafka_offsets_for_times(h->rk, parts, 15000);
    if (err) {
        fprintf(stderr, "flushline %s: offsets for time in %s: %s\n", h->cmd, topic,
                rd_kafka_err2str(err));
        rc = FL_HIST_EKAFKA;
    }
    for (int i = 0; rc == 0 && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->err) {
            fprintf(stderr, "flushline %s: offsets for time in %s [%d]: %s\n", h->cmd, topic,
                    tp->partition, rd_kafka_err2str(tp->err));
            rc = FL_HIST_EKAFKA;
        } else if (tp->partition >= 0 && tp->partition < n) {
            /* -1: no record at or after the time */
            out[tp->partition] = tp->offset < 0 ? FL_HIST_END : tp->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* ---- arguments ---------------------------------------------------------- */

int fl_hist_parse_u64(const char *arg, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (!arg || !isdigit((unsigned char)*arg))
        return -1;
    errno = 0;
    v = strtoull(arg, &end, 10);
    if (errno || *end || v > (unsigned long long)INT64_MAX)
        return -1;
    *out = v;
    return 0;
}

int fl_hist_parse_offsets(const char *arg, int n, int64_t *out, char *errstr, size_t errstr_size)
{
    const char *s = arg;
    if (!*s) {
        snprintf(errstr, errstr_size, "empty offset list");
        return -1;
    }
    while (*s) {
        char *end;
        long long part, off;
        errno = 0;
        part = strtoll(s, &end, 10);
        if (end == s || *end != ':' || errno || part < 0) {
            snprintf(errstr, errstr_size, "\"%s\": expected PARTITION:OFFSET[,...]", arg);
            return -1;
        }
        if (part >= n) {
            snprintf(errstr, errstr_size, "partition %lld does not exist (the topic has %d)",
                     part, n);
            return -1;
        }
        s = end + 1;
        errno = 0;
        off = strtoll(s, &end, 10);
        if (end == s || errno || off < 0 || (*end && *end != ',')) {
            snprintf(errstr, errstr_size, "\"%s\": offsets are integers >= 0", arg);
            return -1;
        }
        out[part] = off;
        s = *end ? end + 1 : end;
    }
    return 0;
}

static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (!isdigit((unsigned char)**s))
            return -1;
        v = v * 10 + (**s - '0');
    }
    *out = v;
    return 0;
}

int fl_hist_parse_time(const char *arg, int64_t *ms)
{
    const char *s = arg;
    struct tm tm;
    int v, frac_ms = 0, tz_min = 0;
    bool all_digits = *s != '\0';

    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c))
            all_digits = false;
    if (all_digits) {
        uint64_t u;
        if (fl_hist_parse_u64(arg, &u) != 0)
            return -1;
        *ms = (int64_t)u;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    if (digits(&s, 4, &v) || *s++ != '-')
        return -1;
    tm.tm_year = v - 1900;
    if (digits(&s, 2, &v) || v < 1 || v > 12 || *s++ != '-')
        return -1;
    tm.tm_mon = v - 1;
    if (digits(&s, 2, &v) || v < 1 || v > 31)
        return -1;
    tm.tm_mday = v;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (digits(&s, 2, &v) || v > 23 || *s++ != ':')
            return -1;
        tm.tm_hour = v;
        if (digits(&s, 2, &v) || v > 59)
            return -1;
        tm.tm_min = v;
        if (*s == ':') {
            s++;
            if (digits(&s, 2, &v) || v > 60)
                return -1;
            tm.tm_sec = v;
            if (*s == '.' || *s == ',') {
                int scale = 100, nd = 0;
                s++;
                while (isdigit((unsigned char)*s)) {
                    frac_ms += scale * (*s - '0');
                    scale /= 10;
                    s++;
                    nd++;
                }
                if (nd == 0)
                    return -1;
            }
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s++ == '-' ? -1 : 1, hh, mm = 0;
            if (digits(&s, 2, &hh))
                return -1;
            if (*s == ':')
                s++;
            if (*s && digits(&s, 2, &mm))
                return -1;
            tz_min = sign * (hh * 60 + mm);
        }
    }
    if (*s)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = ((int64_t)t - (int64_t)tz_min * 60) * 1000 + frac_ms;
    return 0;
}

void fl_hist_format_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    gmtime_r(&t, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", base, (int)(ms % 1000));
}

int fl_hist_range_check(const char *cmd, const fl_hist_range_args_t *args)
{
    int64_t a = 0, b = 0;
    if (args->from_offset && args->from_time) {
        fprintf(stderr, "flushline %s: --from-offset and --from-time exclude each other\n", cmd);
        return FL_EXIT_USAGE;
    }
    if (args->to_offset && args->to_time) {
        fprintf(stderr, "flushline %s: --to-offset and --to-time exclude each other\n", cmd);
        return FL_EXIT_USAGE;
    }
    if (args->from_time && fl_hist_parse_time(args->from_time, &a) != 0) {
        fprintf(stderr, "flushline %s: --from-time \"%s\": expected ISO-8601 or epoch ms\n", cmd,
                args->from_time);
        return FL_EXIT_USAGE;
    }
    if (args->to_time && fl_hist_parse_time(args->to_time, &b) != 0) {
        fprintf(stderr, "flushline %s: --to-time \"%s\": expected ISO-8601 or epoch ms\n", cmd,
                args->to_time);
        return FL_EXIT_USAGE;
    }
    if (args->from_time && args->to_time && a > b) {
        fprintf(stderr, "flushline %s: bad range: --from-time is after --to-time\n", cmd);
        return FL_EXIT_USAGE;
    }
    return FL_EXIT_OK;
}

int fl_hist_range_resolve(fl_hist_t *h, const char *topic, int n,
                          const fl_hist_range_args_t *args, int64_t *from, int64_t *to)
{
    char errstr[256];
    int64_t ts;
    for (int p = 0; p < n; p++) {
        from[p] = 0;
        to[p] = FL_HIST_END;
    }
    if (args->from_offset &&
        fl_hist_parse_offsets(args->from_offset, n, from, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline %s: --from-offset: %s\n", h->cmd, errstr);
        return FL_EXIT_USAGE;
    }
    if (args->to_offset &&
        fl_hist_parse_offsets(args->to_offset, n, to, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline %s: --to-offset: %s\n", h->cmd, errstr);
        return FL_EXIT_USAGE;
    }
    if (args->from_time && (fl_hist_parse_time(args->from_time, &ts) != 0 ||
                            fl_hist_offsets_for_time(h, topic, n, ts, from) != 0))
        return FL_EXIT_UNREACHABLE;
    if (args->to_time && (fl_hist_parse_time(args->to_time, &ts) != 0 ||
                          fl_hist_offsets_for_time(h, topic, n, ts + 1, to) != 0))
        return FL_EXIT_UNREACHABLE;
    for (int p = 0; p < n; p++) {
        if (from[p] > to[p] && from[p] != FL_HIST_END) {
            fprintf(stderr, "flushline %s: bad range: partition %d from offset %lld to %lld\n",
                    h->cmd, p, (long long)from[p], (long long)to[p]);
            return FL_EXIT_USAGE;
        }
    }
    return FL_EXIT_OK;
}

/* ---- progress ----------------------------------------------------------- */

void fl_hist_progress_begin(fl_hist_t *h, int parts)
{
    h->records = 0;
    h->parts_done = 0;
    h->parts_total = parts;
    h->t_start = h->t_last = fl_clock_mono_ms();
}

static void progress_line(fl_hist_t *h, int64_t now, bool final)
{
    double secs = (double)(now - h->t_start) / 1000.0;
    fprintf(stderr, "flushline %s: %s%llu records, %.0f records/s, %d/%d partitions done\n",
            h->cmd, final ? "done: " : "", (unsigned long long)h->records,
            secs > 0 ? (double)h->records / secs : 0.0, h->parts_done, h->parts_total);
}

static void progress_tick(fl_hist_t *h)
{
    int64_t now;
    if (h->quiet)
        return;
    now = fl_clock_mono_ms();
    if (now - h->t_last >= 1000 && now - h->t_start >= 1000) {
        h->t_last = now;
        progress_line(h, now, false);
    }
}

void fl_hist_progress_part_done(fl_hist_t *h)
{
    h->parts_done++;
    progress_tick(h);
}

void fl_hist_progress_end(fl_hist_t *h)
{
    int64_t now = fl_clock_mono_ms();
    /* A summary only when progress lines were shown. */
    if (!h->quiet && now - h->t_start >= 1000)
        progress_line(h, now, true);
}

/* ---- reading ------------------------------------------------------------ */

int fl_hist_read(fl_hist_t *h, const char *topic, int32_t p, int64_t from, int64_t to,
                 bool follow, fl_hist_record_fn fn, void *opaque)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err;
    int64_t lo, hi, end;
    int rc;

    if ((rc = fl_hist_watermarks(h, topic, p, &lo, &hi)) != 0)
        return rc;
    if (from < lo)
        from = lo;
    if (from > hi)
        from = hi;
    end = follow ? FL_HIST_END : (to < hi ? to : hi);
    if (from >= end)
        return 0;
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, p)->offset = from;
    if ((err = rd_kafka_assign(h->rk, parts))) {
        fprintf(stderr, "flushline %s: assign %s [%d]: %s\n", h->cmd, topic, p,
                rd_kafka_err2str(err));
        rc = FL_HIST_EKAFKA;
        goto fail;
    }
    rc = 0;
    for (;;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(h->rk, 100);
        if (msg) {
            if (!msg->err && msg->offset >= end) {
                rd_kafka_message_destroy(msg);
                break;
            }
            if (!msg->err) {
                h->records++;
                rc = fn(opaque, msg);
            } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "flushline %s: reading %s [%d]: %s\n", h->cmd, topic, p,
                        rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
            if (rc != 0)
                break;
        }
        progress_tick(h);
        if (fl_hist_stop) {
            rc = FL_HIST_ESTOPPED;
            break;
        }
        if (!follow) {
            /* The position moves past transaction markers too, which
             * no message reports. */
            rd_kafka_position(h->rk, parts);
            if (parts->elems[0].offset >= end)
                break;
        }
    }
    rd_kafka_assign(h->rk, NULL);
fail:
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* ---- documents ---------------------------------------------------------- */

struct fl_hist_docs_s {
    fl_hist_doc_t **ents; /* creation order */
    uint32_t count, cap;
    fl_hmap_t *index;     /* id -> entry (a hist_ent_t) */
    void (*free_user)(void *user);
};

/* What an entry is allocated as: with its own copy of the id, the index's
 * key, which stays valid when a command replaces ent->doc (reprocess). */
typedef struct hist_ent_s {
    fl_hist_doc_t ent; /* first: one pointer for both */
    size_t idlen;
    char id[];
} hist_ent_t;

fl_hist_docs_t *fl_hist_docs_new(void (*free_user)(void *user))
{
    fl_hist_docs_t *docs = calloc(1, sizeof *docs);
    if (!docs)
        return NULL;
    if (!(docs->index = fl_hmap_new())) {
        free(docs);
        return NULL;
    }
    docs->free_user = free_user;
    return docs;
}

void fl_hist_docs_clear(fl_hist_docs_t *docs)
{
    for (uint32_t i = 0; i < docs->count; i++) {
        hist_ent_t *e = (hist_ent_t *)docs->ents[i];
        fl_hmap_del(docs->index, e->id, e->idlen);
        fl_doc_free(docs->ents[i]->doc);
        if (docs->free_user && docs->ents[i]->user)
            docs->free_user(docs->ents[i]->user);
        free(e);
    }
    docs->count = 0;
}

void fl_hist_docs_free(fl_hist_docs_t *docs)
{
    if (!docs)
        return;
    fl_hist_docs_clear(docs);
    free(docs->ents);
    fl_hmap_free(docs->index);
    free(docs);
}

fl_hist_doc_t *fl_hist_docs_get(fl_hist_docs_t *docs, fl_slice_t id, bool create)
{
    fl_hist_doc_t *ent = fl_hmap_get(docs->index, id.ptr, id.len);
    hist_ent_t *e;
    if (ent || !create || id.len == 0 || id.len > FL_DOC_ID_MAX)
        return ent;
    if (docs->count == docs->cap) {
        uint32_t cap = docs->cap ? docs->cap * 2 : 64;
        fl_hist_doc_t **ents = realloc(docs->ents, cap * sizeof *ents);
        if (!ents)
            return NULL;
        docs->ents = ents;
        docs->cap = cap;
    }
    if (!(e = calloc(1, sizeof *e + id.len)))
        return NULL;
    memcpy(e->id, id.ptr, id.len);
    e->idlen = id.len;
    if (!(e->ent.doc = fl_doc_new(id, NULL)) || fl_hmap_put(docs->index, e->id, e->idlen, e) != 0) {
        fl_doc_free(e->ent.doc);
        free(e);
        return NULL;
    }
    docs->ents[docs->count++] = &e->ent;
    return &e->ent;
}

uint32_t fl_hist_docs_count(const fl_hist_docs_t *docs)
{
    return docs->count;
}

fl_hist_doc_t *fl_hist_docs_at(fl_hist_docs_t *docs, uint32_t i)
{
    return i < docs->count ? docs->ents[i] : NULL;
}

/* ---- snapshots ---------------------------------------------------------- */

typedef struct seed_ctx_s {
    fl_hist_t *h;
    int32_t p;
    const fl_hist_seed_t *sel;
    fl_hist_docs_t *docs;
    fl_arena_t *arena;
    int64_t checkpoint;
} seed_ctx_t;

static int on_seed_record(void *opaque, const rd_kafka_message_t *msg)
{
    seed_ctx_t *sc = opaque;
    fl_wire_msg_t wm;
    char errstr[256];
    fl_hist_doc_t *ent;
    fl_doc_t *doc;
    int rc;

    fl_arena_reset(sc->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, sc->arena, &wm, errstr, sizeof errstr)) {
        fprintf(stderr, "flushline %s: skipped undecodable record %s [%d] @%lld: %s\n",
                sc->h->cmd, sc->h->topic[FL_TOPIC_SNAPSHOTS], sc->p, (long long)msg->offset,
                errstr);
        return 0;
    }
    if (wm.type == FL_WT_REC_CHECKPOINT) {
        int64_t off = (int64_t)wm.u.checkpoint.events_offset;
        if (off <= sc->sel->max_offset && off > sc->checkpoint)
            sc->checkpoint = off;
        return 0;
    }
    if (wm.type != FL_WT_REC_SNAPSHOT)
        return 0;
    const fl_wire_snapshot_t *s = &wm.u.snapshot;
    if (sc->sel->only.len &&
        (s->doc.len != sc->sel->only.len || memcmp(s->doc.ptr, sc->sel->only.ptr, s->doc.len)))
        return 0;
    if (s->events_offset > sc->sel->max_offset || s->version > sc->sel->max_version)
        return 0;
    if (!(ent = fl_hist_docs_get(sc->docs, s->doc, true)))
        return FL_HIST_ENOMEM;
    /* Before compaction older snapshots are still there: the newest
     * usable version wins. */
    if (ent->seeded && ent->seed_version >= s->version)
        return 0;
    /* All or nothing: a snapshot that does not restore leaves the
     * document as it was. */
    if ((rc = fl_history_doc_from_snapshot(s, NULL, &doc)) != 0) {
        if (rc == FL_HISTORY_ENOMEM)
            return FL_HIST_ENOMEM;
        fprintf(stderr, "flushline %s: skipped snapshot %s [%d] @%lld of %.*s v%llu: %s\n",
                sc->h->cmd, sc->h->topic[FL_TOPIC_SNAPSHOTS], sc->p, (long long)msg->offset,
                (int)s->doc.len, s->doc.ptr, (unsigned long long)s->version,
                fl_history_strerror(rc));
        return 0;
    }
    fl_doc_free(ent->doc);
    ent->doc = doc;
    ent->seeded = true;
    ent->seed_offset = s->events_offset;
    ent->seed_version = s->version;
    return 0;
}

int fl_hist_seed(fl_hist_t *h, int32_t p, const fl_hist_seed_t *sel, fl_hist_docs_t *docs,
                 int64_t *checkpoint)
{
    seed_ctx_t sc = {h, p, sel, docs, fl_arena_new(1 << 16), -1};
    int rc;
    if (!sc.arena)
        return FL_HIST_ENOMEM;
    rc = fl_hist_read(h, h->topic[FL_TOPIC_SNAPSHOTS], p, 0, FL_HIST_END, false, on_seed_record,
                      &sc);
    fl_arena_free(sc.arena);
    *checkpoint = sc.checkpoint;
    return rc < 0 ? rc : 0;
}

/* ---- rebuilding --------------------------------------------------------- */

typedef struct rebuild_ctx_s {
    fl_hist_t *h;
    fl_hist_rebuild_t *rb;
    fl_hist_docs_t *docs;
    fl_hist_pos_t *pos;
    fl_arena_t *arena;
    int partitions;
    bool from_checkpoint; /* reading from the checkpoint, not the log start */
    bool restart;         /* the checkpoint did not cover a document: read from the start */
} rebuild_ctx_t;

static void set_pos(rebuild_ctx_t *c, const rd_kafka_message_t *msg, fl_slice_t doc,
                    uint64_t version)
{
    fl_hist_pos_t *pos = c->pos;
    snprintf(pos->topic, sizeof pos->topic, "%s", c->h->topic[FL_TOPIC_EVENTS]);
    pos->partition = msg->partition;
    pos->offset = msg->offset;
    snprintf(pos->doc, sizeof pos->doc, "%.*s", (int)doc.len, doc.ptr);
    pos->version = version;
}

/* A bad or misplaced record: an error when strict, else a warning. */
static int bad_record(rebuild_ctx_t *c, const rd_kafka_message_t *msg, fl_slice_t doc,
                      uint64_t version, const char *what)
{
    set_pos(c, msg, doc, version);
    snprintf(c->pos->what, sizeof c->pos->what, "%s", what);
    if (c->rb->strict)
        return FL_HIST_ERECORD;
    fprintf(stderr, "flushline %s: skipped record %s [%d] @%lld: %s\n", c->h->cmd,
            c->pos->topic, msg->partition, (long long)msg->offset, what);
    memset(c->pos, 0, sizeof *c->pos);
    c->rb->bad++;
    return 0;
}

static int on_event(void *opaque, const rd_kafka_message_t *msg)
{
    rebuild_ctx_t *c = opaque;
    fl_hist_rebuild_t *rb = c->rb;
    fl_wire_msg_t wm;
    char errstr[256], what[400];
    fl_hist_doc_t *ent;
    int rc;

    fl_arena_reset(c->arena);
    if ((rc = fl_wire_decode_record(msg->payload, msg->len, c->arena, &wm, errstr,
                                    sizeof errstr))) {
        snprintf(what, sizeof what, "undecodable record: %s", errstr);
        return bad_record(c, msg, (fl_slice_t){"", 0}, 0, what);
    }
    if (wm.type == FL_WT_REC_SYNC_REPLY)
        return 0; /* answers to gateways, no state change */
    if (wm.type != FL_WT_REC_OUTCOME) {
        snprintf(what, sizeof what, "a %s record does not belong in events",
                 fl_wire_type_name(wm.type));
        return bad_record(c, msg, (fl_slice_t){"", 0}, 0, what);
    }
    const fl_outcome_t *o = &wm.u.outcome.outcome;
    if (rb->only.len && (o->doc.len != rb->only.len || memcmp(o->doc.ptr, rb->only.ptr, o->doc.len)))
        return 0;
    if (msg->key_len != o->doc.len || memcmp(msg->key, o->doc.ptr, o->doc.len) != 0)
        return bad_record(c, msg, o->doc, o->version_after,
                          "the record key is not the outcome's document");
    if (fl_hist_doc_partition(o->doc, c->partitions) != msg->partition) {
        snprintf(what, sizeof what, "the document belongs in partition %d",
                 fl_hist_doc_partition(o->doc, c->partitions));
        return bad_record(c, msg, o->doc, o->version_after, what);
    }
    if (!(ent = fl_hist_docs_get(c->docs, o->doc, true)))
        return FL_HIST_ENOMEM;
    rc = fl_history_replay_check(ent->doc, ent->seeded ? ent->seed_offset : 0, msg->offset, o);
    if (rc == FL_HISTORY_REFLECTED)
        return 0; /* reflected by the snapshot it was seeded from */
    if (rc == FL_HISTORY_EVERSION) {
        if (c->from_checkpoint && !ent->seen) {
            /* Its snapshot from the checkpoint's time is gone (compacted
             * away by a newer one): read the partition from its start. */
            c->restart = true;
            return 1;
        }
        set_pos(c, msg, o->doc, o->version_after);
        snprintf(c->pos->what, sizeof c->pos->what,
                 "outcome v%llu..v%llu does not continue the document at v%llu",
                 (unsigned long long)o->version_before, (unsigned long long)o->version_after,
                 (unsigned long long)fl_doc_version(ent->doc));
        return FL_HIST_EVERSION;
    }
    if (rb->hooks.pre && (rc = rb->hooks.pre(rb->hooks.opaque, ent, o, msg, c->pos)) != 0) {
        if (rc < 0 && !c->pos->topic[0]) /* a hook may name another record */
            set_pos(c, msg, o->doc, o->version_after);
        return rc;
    }
    rc = fl_history_replay(ent->doc, o, c->arena);
    if (rc != 0) {
        set_pos(c, msg, o->doc, o->version_after);
        if (rc == FL_HISTORY_ECHAIN) {
            char want[2 * FL_HASH_LEN + 1];
            fl_wire_hex(o->chain, FL_HASH_LEN, want);
            snprintf(c->pos->what, sizeof c->pos->what,
                     "chain hash differs: the record says %s, replaying its commands on v%llu "
                     "gives another",
                     want, (unsigned long long)o->version_before);
            return FL_HIST_ECHAIN;
        }
        if (rc == FL_HISTORY_EDELTA) {
            snprintf(c->pos->what, sizeof c->pos->what,
                     "the outcome's commands do not apply to the document at v%llu",
                     (unsigned long long)o->version_before);
            return FL_HIST_EDELTA;
        }
        snprintf(c->pos->what, sizeof c->pos->what, "replay: %s", fl_history_strerror(rc));
        return FL_HIST_ENOMEM;
    }
    ent->seen = true;
    rb->outcomes++;
    if (rb->hooks.post && (rc = rb->hooks.post(rb->hooks.opaque, ent, o, msg, c->pos)) != 0) {
        if (rc < 0 && !c->pos->topic[0])
            set_pos(c, msg, o->doc, o->version_after);
        return rc;
    }
    return 0;
}

int fl_hist_rebuild(fl_hist_t *h, fl_hist_rebuild_t *rb, fl_hist_docs_t *docs,
                    fl_hist_pos_t *pos)
{
    const char *events = h->topic[FL_TOPIC_EVENTS];
    rebuild_ctx_t c = {h, rb, docs, pos, NULL, 0, false, false};
    int64_t lo, hi, start, from, checkpoint = -1;
    int rc;

    memset(pos, 0, sizeof *pos);
    rb->outcomes = 0;
    rb->bad = 0;
    if ((c.partitions = fl_hist_partitions(h, events)) < 0)
        return c.partitions;
    if ((rc = fl_hist_watermarks(h, events, rb->partition, &lo, &hi)) != 0)
        return rc;
    if (!(c.arena = fl_arena_new(1 << 16)))
        return FL_HIST_ENOMEM;
    start = rb->start > lo ? rb->start : lo;
    for (int attempt = 0; attempt < 2; attempt++) {
        fl_hist_docs_clear(docs);
        from = lo;
        c.from_checkpoint = false;
        c.restart = false;
        if (start > 0 || rb->max_version != UINT64_MAX) {
            fl_hist_seed_t sel = {start, rb->max_version, rb->only};
            if ((rc = fl_hist_seed(h, rb->partition, &sel, docs, &checkpoint)) != 0)
                goto done;
            if (rb->only.len) {
                fl_hist_doc_t *ent = fl_hist_docs_get(docs, rb->only, false);
                if (ent && ent->seeded && ent->seed_offset > from)
                    from = ent->seed_offset;
            } else if (attempt == 0 && checkpoint > from) {
                from = checkpoint;
                c.from_checkpoint = true;
            }
        }
        rc = fl_hist_read(h, events, rb->partition, from, rb->to, false, on_event, &c);
        if (!c.restart)
            break;
        rc = 0;
    }
done:
    fl_arena_free(c.arena);
    return rc;
}

json_t *fl_hist_json_hex(const uint8_t *p, size_t n)
{
    char buf[2 * 64 + 1];
    if (n > 64)
        n = 64;
    fl_wire_hex(p, n, buf);
    return json_string(buf);
}
