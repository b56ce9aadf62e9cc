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
#include "flushline/reader.h"

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
    /* by -err */
    static const char *const text[] = {
        "success",           "out of memory",          "Kafka did not answer",
        "topic does not exist", "bad record",          "version discontinuity",
        "chain hash mismatch",  "commands do not apply", "interrupted",
        "check failed",
    };
    return FL_NAME_AT(text, -(long)err, "unknown error");
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
     * librdkafka wants one for a consumer. -X settings are applied last. */
    snprintf(defgroup, sizeof defgroup, "flushline-cli-%s", cmd);
    if (!(h->rk = fl_reader_consumer_new("history reader", common->bootstrap,
                                         group ? group : defgroup, &common->props, errstr,
                                         sizeof errstr))) {
        fprintf(stderr, "flushline %s: %s\n", cmd, errstr);
        return FL_EXIT_USAGE;
    }
    if (fl_kafka_wait_ready(h->rk, 8000, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline %s: %s\n", cmd, errstr);
        return FL_EXIT_UNREACHABLE;
    }
    return FL_EXIT_OK;
}

int fl_hist_open_history(fl_hist_t *h, const char *cmd, const fl_cli_common_t *common,
                         bool quiet, int *n, int *nsnap)
{
    int rc = fl_hist_open(h, cmd, common, NULL), ns;
    if (rc != FL_EXIT_OK)
        return rc;
    h->quiet = quiet;
    if ((*n = fl_hist_need_topic(h, FL_TOPIC_EVENTS)) < 0)
        return -*n;
    if ((ns = fl_hist_need_topic(h, FL_TOPIC_SNAPSHOTS)) < 0)
        return -ns;
    if (nsnap)
        *nsnap = ns;
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

static bool should_stop(void *opaque)
{
    (void)opaque;
    return fl_hist_stop != 0;
}

int fl_hist_watermarks(fl_hist_t *h, const char *topic, int32_t p, int64_t *lo, int64_t *hi)
{
    fl_read_spec_t spec = {.topic = topic, .partition = p, .should_stop = should_stop};
    char errstr[512];
    if (fl_reader_watermarks(h->rk, &spec, lo, hi, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline %s: %s\n", h->cmd, errstr);
        return FL_HIST_EKAFKA;
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

void fl_hist_progress_records(fl_hist_t *h, uint64_t records)
{
    h->records = records;
    progress_tick(h);
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

typedef struct read_ctx_s {
    fl_hist_t *h;
    fl_hist_record_fn fn;
    void *opaque;
} read_ctx_t;

static int on_read_record(void *opaque, const rd_kafka_message_t *msg)
{
    read_ctx_t *rc = opaque;
    rc->h->records++;
    return rc->fn(rc->opaque, msg);
}

static void on_read_progress(void *opaque)
{
    progress_tick(((read_ctx_t *)opaque)->h);
}

static bool read_should_stop(void *opaque)
{
    return should_stop(opaque);
}

int fl_hist_read(fl_hist_t *h, const char *topic, int32_t p, int64_t from, int64_t to,
                 bool follow, fl_hist_record_fn fn, void *opaque)
{
    read_ctx_t ctx = {h, fn, opaque};
    fl_read_spec_t spec = {.topic = topic, .partition = p, .from = from, .to = to,
                           .follow = follow, .should_stop = read_should_stop,
                           .on_record = on_read_record, .on_progress = on_read_progress,
                           .opaque = &ctx};
    char errstr[512] = "";
    int rc = fl_reader_run(h->rk, &spec, NULL, errstr, sizeof errstr);
    switch (rc) {
    case FL_READER_ESTOPPED:
        return FL_HIST_ESTOPPED;
    case FL_READER_ENOMEM:
        return FL_HIST_ENOMEM;
    case FL_READER_EKAFKA:
    case FL_READER_ETIMEDOUT:
        fprintf(stderr, "flushline %s: %s\n", h->cmd, errstr);
        return FL_HIST_EKAFKA;
    default:
        return rc; /* 0, 1 or fn's */
    }
}

/* ---- documents ---------------------------------------------------------- */

fl_part_t *fl_hist_docs_new(void (*free_user)(void *user))
{
    fl_part_config_t cfg;
    fl_part_config_default(&cfg);
    cfg.free_user = free_user;
    return fl_part_new(-1, &cfg); /* a table, not one partition */
}

/* ---- snapshots ---------------------------------------------------------- */

typedef struct seed_ctx_s {
    fl_hist_t *h;
    int32_t p;
    const fl_part_select_t *sel;
    fl_part_t *docs;
    fl_arena_t *arena;
    int64_t checkpoint;
} seed_ctx_t;

static int on_seed_record(void *opaque, const rd_kafka_message_t *msg)
{
    seed_ctx_t *sc = opaque;
    char errstr[256];
    int rc = fl_part_load_snapshot_rec(sc->docs, msg->payload, msg->len, sc->sel, sc->arena,
                                       &sc->checkpoint, errstr, sizeof errstr);
    if (rc == FL_HISTORY_ENOMEM)
        return FL_HIST_ENOMEM;
    /* Bad snapshot records are reported and skipped: the events still
     * rebuild the document. */
    if (rc < 0)
        fprintf(stderr, "flushline %s: skipped %s %s [%d] @%lld: %s\n", sc->h->cmd,
                rc == FL_HISTORY_ERECORD ? "undecodable record" : "snapshot",
                sc->h->topic[FL_TOPIC_SNAPSHOTS], sc->p, (long long)msg->offset, errstr);
    return 0;
}

int fl_hist_seed(fl_hist_t *h, int32_t p, const fl_part_select_t *sel, fl_part_t *docs,
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
    fl_part_t *docs;
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

/* Fills the position of an outcome that did not replay; the error. */
static int replay_failed(rebuild_ctx_t *c, const rd_kafka_message_t *msg, const fl_outcome_t *o,
                         int rc)
{
    set_pos(c, msg, o->doc, o->version_after);
    fl_part_replay_why(o, rc, c->pos->what, sizeof c->pos->what);
    return rc == FL_HISTORY_ECHAIN   ? FL_HIST_ECHAIN
           : rc == FL_HISTORY_EDELTA ? FL_HIST_EDELTA
                                     : FL_HIST_ENOMEM;
}

static int on_event(void *opaque, const rd_kafka_message_t *msg)
{
    rebuild_ctx_t *c = opaque;
    fl_hist_rebuild_t *rb = c->rb;
    const fl_outcome_t *o;
    const fl_wire_rules_t *rules = NULL;
    char errstr[256], what[400];
    fl_part_doc_t *ent;
    int rc = fl_part_event_decode_rules(msg->payload, msg->len, c->arena, &o, &rules, errstr,
                                        sizeof errstr);

    if (rc == FL_PART_RULES) {
        /* The rule sets in force from here on (a resumed reprocess goes on
         * with them). */
        if (fl_part_rules_apply(c->docs, rules, errstr, sizeof errstr) == 0)
            return 0;
        snprintf(what, sizeof what, "a rules record that is not a valid rule set: %s", errstr);
        return bad_record(c, msg, (fl_slice_t){"", 0}, 0, what);
    }
    if (rc == FL_HISTORY_ENOMEM)
        return FL_HIST_ENOMEM;
    if (rc == FL_HISTORY_ERECORD)
        return bad_record(c, msg, (fl_slice_t){"", 0}, 0, errstr);
    if (rc != 0)
        return 0; /* a sync reply: answers to gateways, no state change */
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
    rc = fl_part_replay_check(c->docs, o, msg->offset, &ent);
    if (rc == FL_HISTORY_ENOMEM)
        return FL_HIST_ENOMEM;
    if (rc == FL_HISTORY_REFLECTED)
        return 0; /* reflected by the snapshot it was seeded from */
    if (rc == FL_HISTORY_EVERSION) {
        if (c->from_checkpoint && !ent->replayed) {
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
    if ((rc = fl_part_replay_apply(ent, o, c->arena)) != 0)
        return replay_failed(c, msg, o, rc);
    rb->outcomes++;
    if (rb->hooks.post && (rc = rb->hooks.post(rb->hooks.opaque, ent, o, msg, c->pos)) != 0) {
        if (rc < 0 && !c->pos->topic[0])
            set_pos(c, msg, o->doc, o->version_after);
        return rc;
    }
    return 0;
}

int fl_hist_rebuild(fl_hist_t *h, fl_hist_rebuild_t *rb, fl_part_t *docs,
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
        fl_part_clear(docs);
        from = lo;
        c.from_checkpoint = false;
        c.restart = false;
        if (start > 0 || rb->max_version != UINT64_MAX) {
            fl_part_select_t sel = {start, rb->max_version, rb->only};
            if ((rc = fl_hist_seed(h, rb->partition, &sel, docs, &checkpoint)) != 0)
                goto done;
            if (rb->only.len) {
                fl_part_doc_t *ent = fl_part_get(docs, rb->only);
                if (ent && ent->loaded && ent->snapshot_offset > from)
                    from = ent->snapshot_offset;
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

int fl_hist_rebuild_failed(const fl_hist_t *h, int32_t p, int err, const fl_hist_pos_t *pos)
{
    fflush(stdout);
    if (pos->what[0])
        fprintf(stderr, "flushline %s: %s [%d] @%lld: document %s v%llu: %s\n", h->cmd,
                pos->topic, pos->partition, (long long)pos->offset, pos->doc,
                (unsigned long long)pos->version, pos->what);
    else
        fprintf(stderr, "flushline %s: partition %d: %s\n", h->cmd, p, fl_hist_strerror(err));
    return err == FL_HIST_EKAFKA ? FL_EXIT_UNREACHABLE : FL_EXIT_FAIL;
}

json_t *fl_hist_json_hex(const uint8_t *p, size_t n)
{
    char buf[2 * 64 + 1];
    if (n > 64)
        n = 64;
    fl_wire_hex(p, n, buf);
    return json_string(buf);
}
