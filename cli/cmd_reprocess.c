/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline reprocess`: re-runs <prefix>.commands through this build's
 * engine into a fresh topic set <to-prefix>, exactly once. Outcomes go to
 * <to-prefix>.events (same partition, the source record's timestamp, the
 * same gw/origin) from a transactional producer; the consumed commands
 * offsets are sent to each transaction for the consumer group
 * "flushline-reprocess-<to-prefix>", so an interrupted run resumes where its
 * last transaction ended (the documents are rebuilt from <to-prefix>.events
 * first). At the end every document's snapshot and one checkpoint per
 * partition are written to <to-prefix>.snapshots. With an unchanged engine
 * the outcomes are byte-identical to the original's.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flushline/clock.h"
#include "flushline/history.h"
#include "flushline/kafka.h"
#include "flushline/restore.h"
#include "flushline/task.h"
#include "flushline/txn.h"
#include "history.h"

#define RE_BATCH_RECORDS 2000
#define RE_BATCH_MS 200

typedef struct reprocess_opts_s {
    fl_cli_common_t common;
    const char *to_prefix, *txid;
    fl_hist_range_args_t range;
    int64_t max_state_bytes;
    bool quiet;
} reprocess_opts_t;

#define F(field) offsetof(reprocess_opts_t, field)

static const fl_config_entry_t entries[] = {
    FL_CLI_COMMON_ENTRIES(reprocess_opts_t),
    {.name = "to-prefix", .type = FL_CONFIG_STRING, .offset = F(to_prefix),
     .flags = FL_CONFIG_REQUIRED, .metavar = "NEW", .check = fl_cli_check_nonempty,
     .doc = "The new topic set (not --prefix)."},
    {.name = "from-offset", .type = FL_CONFIG_STRING, .offset = F(range.from_offset), .group = 1,
     .metavar = "P:O,...",
     .doc = "Where a first run starts in commands (default: the start); documents start empty "
            "there."},
    FL_CLI_TIME_ENTRY(reprocess_opts_t, "from-time", range.from_time, 1, 0,
                      "The first commands record at or after T."),
    {.name = "transactional-id", .type = FL_CONFIG_STRING, .offset = F(txid), .metavar = "ID",
     .doc = "Default flushline-reprocess-NEW."},
    {.name = "max-state-bytes", .type = FL_CONFIG_SIZE, .def = "1048576",
     .offset = F(max_state_bytes), .min = 1024, .max = INT64_MAX, .metavar = "N",
     .doc = "The engine's state cap."},
    FL_CLI_QUIET_ENTRY(reprocess_opts_t),
};

FL_CLI_TABLE(fl_cmd_reprocess_options, "reprocess", "--to-prefix NEW", entries, true,
             "Re-runs <prefix>.commands through this engine into the topic set NEW (created "
             "with the same partition count), exactly once: outcomes to NEW.events in "
             "transactions that also commit the consumed offsets for the group "
             "flushline-reprocess-NEW, then snapshots and checkpoints to NEW.snapshots. Run it "
             "again after an interruption: it resumes where it stopped. Records written to "
             "commands after the start are left for the next run.");

typedef struct re_s {
    fl_hist_t *src;           /* source: reads commands, carries the group */
    fl_hist_t *dst;           /* destination topic names */
    rd_kafka_t *producer;     /* transactional */
    rd_kafka_consumer_group_metadata_t *cgmd;
    fl_txn_t *txn;
    fl_part_t **docs;         /* per partition */
    fl_part_config_t part_cfg;
    fl_arena_t *arena;
    int32_t partition;        /* being read */
    uint32_t txn_records;
    int64_t next_offset;      /* commands offset after the last record consumed */
    int64_t *events_next;     /* per partition: offset after the last outcome in NEW.events */
    uint64_t flushes, skipped, bad;
} re_t;

static int txn_fail(const char *errstr)
{
    fprintf(stderr, "flushline reprocess: %s\n", errstr);
    return -1;
}

static int begin(re_t *re)
{
    char errstr[512];
    if (fl_txn_is_open(re->txn))
        return 0;
    if (fl_txn_begin(re->txn, errstr, sizeof errstr) != 0)
        return txn_fail(errstr);
    re->txn_records = 0;
    return 0;
}

/* Commits the open transaction with the consumed position of the current
 * partition (none when offsets is false). */
static int commit(re_t *re, bool offsets)
{
    char errstr[512];
    if (!fl_txn_is_open(re->txn))
        return 0;
    /* Delivery reports first: they tell where the outcomes landed, which
     * the final snapshots record (the LSO lags behind a commit). */
    rd_kafka_flush(re->producer, 60000);
    if (offsets && re->next_offset >= 0) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, re->src->topic[FL_TOPIC_COMMANDS],
                                          re->partition)
            ->offset = re->next_offset;
        int rc = fl_txn_send_offsets(re->txn, parts, re->cgmd, errstr, sizeof errstr);
        rd_kafka_topic_partition_list_destroy(parts);
        if (rc != 0)
            return txn_fail(errstr);
    }
    if (fl_txn_commit(re->txn, errstr, sizeof errstr) != 0)
        return txn_fail(errstr);
    return 0;
}

static void abort_open(re_t *re)
{
    char errstr[512];
    if (fl_txn_abort(re->txn, errstr, sizeof errstr) != 0)
        txn_fail(errstr);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    re_t *re = opaque;
    /* Only outcomes carry a message opaque. */
    if (!msg->err && msg->_private && msg->partition >= 0 &&
        msg->offset + 1 > re->events_next[msg->partition])
        re->events_next[msg->partition] = msg->offset + 1;
}

/* Produces a malloc'd value (librdkafka frees it, also on failure); with
 * is_event its delivery moves events_next. */
static int produce(re_t *re, const char *topic, int32_t p, fl_slice_t key, char *val, size_t len,
                   int64_t ts, bool is_event)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            re->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
            RD_KAFKA_V_KEY(key.ptr, key.len), RD_KAFKA_V_VALUE(val, len),
            RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_OPAQUE(is_event ? (void *)re : NULL), RD_KAFKA_V_END);
        if (!err)
            return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(re->producer, 10);
            continue;
        }
        fprintf(stderr, "flushline reprocess: produce to %s [%d]: %s\n", topic, p,
                rd_kafka_err2str(err));
        free(val);
        return -1;
    }
}

/* One commands record through the processor's task (partition/task.h):
 * the same outcomes, byte for byte, with an unchanged engine. */
static int on_command(void *opaque, const rd_kafka_message_t *msg)
{
    re_t *re = opaque;
    fl_task_rec_t rec;
    fl_task_out_t out;

    /* The server stamp is the source record's timestamp, as the processor
     * took it. */
    fl_task_rec_of(msg, &rec);
    if (begin(re) != 0)
        return -1;
    re->next_offset = msg->offset + 1;
    re->txn_records++;
    if (fl_task_apply(re->docs[msg->partition], &rec, FL_TASK_NO_SYNC_REPLIES, re->arena,
                      &out) != 0) {
        fprintf(stderr, "flushline reprocess: applying %s [%d] @%lld: %s\n",
                re->src->topic[FL_TOPIC_COMMANDS], msg->partition, (long long)msg->offset,
                out.reason);
        return -1;
    }
    if (out.kind == FL_TASK_FLUSH || (out.kind == FL_TASK_RULES && !out.rules_bad)) {
        /* No window here: every emitted record is ours to hand over (a
         * rules record put in force is copied to events, as the processor
         * does). */
        for (uint32_t i = 0; i < out.nemit; i++)
            if (produce(re, re->dst->topic[FL_TOPIC_EVENTS], msg->partition, out.emit[i].key,
                        out.emit[i].rec, out.emit[i].len, rec.ts_ms, true) != 0) {
                while (++i < out.nemit)
                    free(out.emit[i].rec);
                return -1;
            }
        if (out.kind == FL_TASK_FLUSH)
            re->flushes++;
    } else if (out.kind == FL_TASK_SYNC) {
        re->skipped++; /* a gateway's request: nobody waits for the answer now */
    } else {
        /* As the processor: logged, counted, skipped. */
        re->bad++;
        fprintf(stderr, "flushline reprocess: skipped bad record %s [%d] @%lld: %s\n",
                re->src->topic[FL_TOPIC_COMMANDS], msg->partition, (long long)msg->offset,
                out.reason);
    }
    if (re->txn_records >= RE_BATCH_RECORDS ||
        fl_clock_mono_ms() - fl_txn_started_ms(re->txn) >= RE_BATCH_MS)
        return commit(re, true);
    return 0;
}

static int produce_snapshot(re_t *re, int32_t p, fl_doc_t *doc, int64_t events_offset)
{
    char *buf = NULL, errstr[256];
    size_t len;

    fl_arena_reset(re->arena);
    if (fl_history_encode_snapshot(doc, events_offset, re->arena, &buf, &len, errstr,
                                   sizeof errstr) != 0) {
        fprintf(stderr, "flushline reprocess: encoding the snapshot of %.*s: %s\n",
                (int)fl_doc_id(doc).len, fl_doc_id(doc).ptr, errstr);
        return -1;
    }
    return produce(re, re->dst->topic[FL_TOPIC_SNAPSHOTS], p, fl_doc_id(doc), buf, len, 0, false);
}

/* The checkpoint carries the rule sets in force, as the processor's. */
static int produce_checkpoint(re_t *re, int32_t p, int64_t events_offset)
{
    char *buf = NULL, errstr[256];
    size_t len;
    fl_arena_reset(re->arena);
    if (fl_part_checkpoint_record(re->docs[p], events_offset, re->arena, &buf, &len, errstr,
                                  sizeof errstr) != 0) {
        fprintf(stderr, "flushline reprocess: encoding a checkpoint: %s\n", errstr);
        return -1;
    }
    return produce(re, re->dst->topic[FL_TOPIC_SNAPSHOTS], p, FL_WIRE_CHECKPOINT_KEY, buf, len, 0,
                   false);
}

/* Restore: where the outcomes already in NEW.events end. */
static int on_restored(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
                       const rd_kafka_message_t *msg, fl_hist_pos_t *pos)
{
    re_t *re = opaque;
    if (msg->offset + 1 > re->events_next[msg->partition])
        re->events_next[msg->partition] = msg->offset + 1;
    return 0;
}

static rd_kafka_t *make_producer(re_t *re, const fl_cli_common_t *common, const char *txid,
                                 char *errstr, size_t errstr_size)
{
    /* the processor's producer settings; -X settings are applied last */
    fl_txn_producer_spec_t ps = {.what = "reprocess producer",
                                 .bootstrap = common->bootstrap,
                                 .transactional_id = txid,
                                 .linger_ms = 5,
                                 .props = &common->props,
                                 .opaque = re,
                                 .on_delivery = on_delivery};
    return fl_txn_producer_new(&ps, errstr, errstr_size);
}

/* Where the group stopped, if it ran before: into from[]. *resuming says
 * whether it did. An FL_EXIT_* code. */
static int committed_offsets(re_t *re, const char *group, int n, int64_t *from, bool *resuming)
{
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_new(n);
    rd_kafka_resp_err_t err;
    for (int32_t p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(committed, re->src->topic[FL_TOPIC_COMMANDS], p);
    if ((err = rd_kafka_committed(re->src->rk, committed, 30000))) {
        fprintf(stderr, "flushline reprocess: committed offsets of %s: %s\n", group,
                rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(committed);
        return FL_EXIT_UNREACHABLE;
    }
    *resuming = false;
    for (int i = 0; i < committed->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &committed->elems[i];
        if (!tp->err && tp->offset >= 0 && tp->partition < n) {
            from[tp->partition] = tp->offset;
            *resuming = true;
        }
    }
    rd_kafka_topic_partition_list_destroy(committed);
    return FL_EXIT_OK;
}

/* The documents as the last committed transaction left them, from
 * NEW.events. An FL_EXIT_* code. */
static int restore_dst(re_t *re, int n, bool resuming, const char *group)
{
    fl_hist_progress_begin(re->dst, n);
    for (int32_t p = 0; p < n; p++) {
        fl_hist_rebuild_t rb = {.partition = p, .start = 0, .max_version = UINT64_MAX,
                                .to = FL_HIST_END, .strict = true,
                                .hooks = {NULL, on_restored, re}};
        fl_hist_pos_t pos;
        int err;
        if (!(re->docs[p] = fl_part_new(p, &re->part_cfg))) {
            fprintf(stderr, "flushline reprocess: out of memory\n");
            return FL_EXIT_FAIL;
        }
        if ((err = fl_hist_rebuild(re->dst, &rb, re->docs[p], &pos)) < 0) {
            fprintf(stderr, "flushline reprocess: restoring from %s [%d] @%lld: %s\n", pos.topic,
                    p, (long long)pos.offset, pos.what[0] ? pos.what : fl_hist_strerror(err));
            return err == FL_HIST_EKAFKA ? FL_EXIT_UNREACHABLE : FL_EXIT_FAIL;
        }
        if (rb.outcomes > 0 && !resuming) {
            fprintf(stderr,
                    "flushline reprocess: %s is not empty but the group %s has no committed "
                    "position: choose a fresh --to-prefix\n",
                    re->dst->topic[FL_TOPIC_EVENTS], group);
            return FL_EXIT_FAIL;
        }
        fl_hist_progress_part_done(re->dst);
    }
    fl_hist_progress_end(re->dst);
    return FL_EXIT_OK;
}

/* Commands, partition by partition, in transactions. 0 or -1. */
static int run_commands(re_t *re, int n, const int64_t *from, const int64_t *to)
{
    fl_hist_t *src = re->src;
    fl_hist_progress_begin(src, n);
    for (int32_t p = 0; p < n; p++) {
        int err;
        re->partition = p;
        re->next_offset = -1;
        err = fl_hist_read(src, src->topic[FL_TOPIC_COMMANDS], p, from[p], to[p], false,
                           on_command, re);
        if (err < 0 || commit(re, true) != 0) {
            abort_open(re);
            fprintf(stderr, "flushline reprocess: %s at %s [%d]; run again to resume\n",
                    err == FL_HIST_ESTOPPED ? "interrupted" : "stopped",
                    src->topic[FL_TOPIC_COMMANDS], p);
            return -1;
        }
        fl_hist_progress_part_done(src);
    }
    fl_hist_progress_end(src);
    return 0;
}

/* Snapshots and checkpoints: every outcome written is reflected. 0 or -1. */
static int final_snapshots(re_t *re, int n, uint64_t *nsnap)
{
    if (begin(re) != 0)
        return -1;
    for (int32_t p = 0; p < n; p++) {
        int64_t hi = re->events_next[p];
        for (uint32_t i = 0; i < fl_part_count(re->docs[p]); i++) {
            fl_doc_t *doc = fl_part_at(re->docs[p], i)->doc;
            if (fl_doc_version(doc) == 0)
                continue;
            if (produce_snapshot(re, p, doc, hi) != 0)
                goto fail;
            (*nsnap)++;
        }
        if (produce_checkpoint(re, p, hi) != 0)
            goto fail;
    }
    if (commit(re, false) == 0)
        return 0;
fail:
    abort_open(re);
    return -1;
}

/* The new topic set with the source's partition count, the per-partition
 * tables, the range. An FL_EXIT_* code. */
static int prepare(re_t *re, const reprocess_opts_t *o, int n, int64_t **from, int64_t **to)
{
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    char errstr[512];
    fl_topics_spec_default(&spec);
    spec.prefix = o->to_prefix;
    spec.partitions = n;
    if (fl_topics_create(re->dst->rk, &spec, st, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline reprocess: topics of %s: %s\n", o->to_prefix, errstr);
        return FL_EXIT_FAIL;
    }
    if (!(*from = calloc((size_t)n, sizeof **from)) || !(*to = calloc((size_t)n, sizeof **to)) ||
        !(re->docs = calloc((size_t)n, sizeof *re->docs)) ||
        !(re->arena = fl_arena_new(1 << 16)) ||
        !(re->events_next = calloc((size_t)n, sizeof *re->events_next))) {
        fprintf(stderr, "flushline reprocess: out of memory\n");
        return FL_EXIT_FAIL;
    }
    return fl_hist_range_resolve(re->src, re->src->topic[FL_TOPIC_COMMANDS], n, &o->range,
                                 *from, *to);
}

/* The transactional producer: fences an earlier run with the same
 * transactional.id and aborts what it left open, so that the restore reads
 * to the end. An FL_EXIT_* code. */
static int start_producer(re_t *re, const reprocess_opts_t *o, const char *txid)
{
    char errstr[512];
    if (!(re->producer = make_producer(re, &o->common, txid, errstr, sizeof errstr))) {
        fprintf(stderr, "flushline reprocess: %s\n", errstr);
        return FL_EXIT_USAGE;
    }
    if (!(re->txn = fl_txn_new(re->producer, 60000)) ||
        fl_txn_init(re->txn, 60000, errstr, sizeof errstr) != 0) {
        txn_fail(re->txn ? errstr : "out of memory");
        return FL_EXIT_UNREACHABLE;
    }
    return FL_EXIT_OK;
}

static void re_free(re_t *re, int n)
{
    if (re->cgmd)
        rd_kafka_consumer_group_metadata_destroy(re->cgmd);
    fl_txn_free(re->txn);
    if (re->producer)
        rd_kafka_destroy(re->producer);
    for (int32_t p = 0; re->docs && p < n; p++)
        fl_part_free(re->docs[p]);
    free(re->docs);
    free(re->events_next);
    fl_arena_free(re->arena);
}

int fl_cmd_reprocess(int argc, char **argv)
{
    fl_hist_t src = {0}, dst = {0};
    re_t re = {.src = &src, .dst = &dst};
    fl_cli_common_t dcommon;
    reprocess_opts_t o = {0};
    fl_config_t *cfg;
    char txid[300], group[300];
    int64_t *from = NULL, *to = NULL;
    uint64_t nsnap = 0;
    bool resuming = false;
    int n = 0, rc = fl_cli_options(&fl_cmd_reprocess_options, &o, &o.common, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    /* Documents with this run's engine settings, no window (syncs are not
     * answered). */
    fl_part_config_default(&re.part_cfg);
    re.part_cfg.engine.max_state_bytes = (size_t)o.max_state_bytes;
    if (strcmp(o.to_prefix, o.common.prefix) == 0) {
        fl_config_free(cfg);
        return fl_cli_usage_error(&fl_cmd_reprocess_options,
                                  "--to-prefix must differ from --prefix");
    }
    if (fl_hist_range_check("reprocess", &o.range) != FL_EXIT_OK) {
        fl_config_free(cfg);
        return FL_EXIT_USAGE;
    }
    snprintf(txid, sizeof txid, "%s%s", o.txid ? "" : "flushline-reprocess-",
             o.txid ? o.txid : o.to_prefix);
    snprintf(group, sizeof group, "flushline-reprocess-%s", o.to_prefix);
    dcommon = o.common;
    dcommon.prefix = o.to_prefix;

    if ((rc = fl_hist_open(&src, "reprocess", &o.common, group)) != FL_EXIT_OK ||
        (rc = fl_hist_open(&dst, "reprocess", &dcommon, NULL)) != FL_EXIT_OK)
        goto fail;
    src.quiet = dst.quiet = o.quiet;
    if ((n = fl_hist_need_topic(&src, FL_TOPIC_COMMANDS)) < 0) {
        rc = -n;
        n = 0;
        goto fail;
    }
    if ((rc = prepare(&re, &o, n, &from, &to)) != FL_EXIT_OK ||
        (rc = committed_offsets(&re, group, n, from, &resuming)) != FL_EXIT_OK ||
        (rc = start_producer(&re, &o, txid)) != FL_EXIT_OK ||
        (rc = restore_dst(&re, n, resuming, group)) != FL_EXIT_OK)
        goto fail;
    rc = FL_EXIT_FAIL;
    if (!(re.cgmd = rd_kafka_consumer_group_metadata(src.rk))) {
        fprintf(stderr, "flushline reprocess: no consumer group metadata\n");
        goto fail;
    }
    fl_hist_catch_signals();
    if (run_commands(&re, n, from, to) != 0 || final_snapshots(&re, n, &nsnap) != 0)
        goto fail;
    if (!o.quiet)
        fprintf(stderr,
                "flushline reprocess: %llu flushes applied into %s, %llu syncs and %llu bad "
                "records skipped, %llu snapshots, %d checkpoints\n",
                (unsigned long long)re.flushes, dst.topic[FL_TOPIC_EVENTS],
                (unsigned long long)re.skipped, (unsigned long long)re.bad,
                (unsigned long long)nsnap, n);
    rc = FL_EXIT_OK;
fail:
    re_free(&re, n);
    free(from);
    free(to);
    fl_hist_close(&src);
    fl_hist_close(&dst);
    fl_config_free(cfg);
    return rc;
}
