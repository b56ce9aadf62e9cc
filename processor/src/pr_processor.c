/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_processor: consume-apply-produce with Kafka transactions. See
 * pr_processor.h for the contract; the comments here say why.
 *
 * Transactions. Every record consumed from <prefix>.commands is applied by
 * the engine and its outcome produced to the same partition of
 * <prefix>.events inside the open transaction. Every commit.interval.ms (or
 * commit.max.records) the consumer's positions are sent to the transaction
 * and it is committed: outcomes, snapshots and offsets become visible
 * together, or not at all. On an abortable error the transaction is
 * aborted and every owned partition is restored from Kafka and rewound to
 * its committed offset, so the in-memory documents never hold anything that
 * was not committed. Fenced or fatal: stop at once, write nothing.
 *
 * Snapshots and checkpoints. A document is snapshotted when it has moved
 * snapshot.every.versions past its last snapshot, and every
 * snapshot.interval.ms all dirty documents of every owned partition are (a
 * "round"). Snapshots are produced at commit time after the producer was
 * flushed, so the offset of the next event of the partition is known
 * exactly: a snapshot records it (events_offset: every event below it is
 * reflected), and a round also writes the partition's checkpoint record
 * (every document with an event below that offset has a snapshot that
 * reflects it). Restore therefore reads the snapshots partition, then the
 * events partition from the checkpoint only.
 */
#include "pr_processor.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "flushline/clock.h"
#include "flushline/engine.h"
#include "flushline/history.h"
#include "flushline/limits.h"
#include "flushline/log.h"
#include "flushline/topics.h"
#include "flushline/wire.h"
#include "pr_docs.h"

#define PR_TXN_RETRIES 10

typedef struct part_s {
    int32_t id;
    pr_docs_t *docs;
    int64_t events_next;   /* offset of the next event in this events partition */
    bool snapshot_due;     /* some document crossed snapshot.every.versions */
    int64_t committed;     /* commands offset we last committed; -1: not known */
} part_t;

typedef struct counters_s {
    _Atomic uint64_t records_in, bad_records, flushes, syncs, cmds_applied, cmds_rejected;
    _Atomic uint64_t duplicates, commits, aborts, snapshots, checkpoints, restores;
    _Atomic uint64_t commit_us_total, restore_ms_total, events_restored;
    _Atomic int64_t docs;
    /* commands records behind the high watermark; -1: partition not owned.
     * Kept here, not in part_t, because the HTTP thread reads it. */
    _Atomic int64_t lag[FL_MAX_PARTITIONS];
} counters_t;

struct pr_processor_s {
    pr_config_t cfg;
    char t_commands[FL_TOPIC_NAME_MAX + 1];
    char t_events[FL_TOPIC_NAME_MAX + 1];
    char t_snapshots[FL_TOPIC_NAME_MAX + 1];
    int npartitions;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_t *reader; /* assign-only consumer used by restore */
    part_t *parts[FL_MAX_PARTITIONS];
    fl_arena_t *arena;
    pr_docs_limits_t docs_lim;
    bool txn_open;
    int64_t txn_start_ms;
    uint32_t txn_records;
    int64_t last_round_ms;
    /* Set by pr_processor_stop from any thread or a signal handler, read
     * by the apply thread: a lock-free atomic (async-signal-safe). */
    atomic_bool stopping;
    /* The rest is the apply thread's own: librdkafka calls on_rebalance and
     * on_delivery from within our poll, flush and close calls. */
    int fatal;
    bool subscribed;      /* the consumer has joined or may be joining the group */
    bool assigned_once;   /* an ASSIGN_PARTITIONS callback came: see keep_consumer */
    bool consumer_closed; /* rd_kafka_consumer_close was called */
    _Atomic int healthy;
    counters_t c;
};

_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "pr_processor_stop must be async-signal-safe");

/* ---- Kafka handles ---------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    pr_processor_t *pr = opaque;
    /* Only events matter: they tell where the next event of a partition
     * will land (exact after a flush, which is when snapshots read it).
     * A watermark query cannot replace this: with read_committed it
     * answers the last stable offset, before our open transaction. */
    if (msg->err) {
        fl_warn("delivery to %s [%d] failed: %s", rd_kafka_topic_name(msg->rkt), msg->partition,
                rd_kafka_err2str(msg->err));
        return;
    }
    if (msg->_private != (void *)pr)
        return;
    if (msg->partition >= 0 && msg->partition < FL_MAX_PARTITIONS && pr->parts[msg->partition] &&
        msg->offset + 1 > pr->parts[msg->partition]->events_next)
        pr->parts[msg->partition]->events_next = msg->offset + 1;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);

/* The three handles, each from the processor's defaults with the user's
 * kafka.* settings applied last (fl_kafka_new): they win over ours. */
static int make_handles(pr_processor_t *pr, char *errstr, size_t errstr_size)
{
    const pr_config_t *cfg = &pr->cfg;
    char tmo[32], stmo[32];

    /* The transactional producer. */
    snprintf(tmo, sizeof tmo, "%lld", (long long)cfg->transaction_timeout_ms);
    {
        const fl_kafka_kv_t defaults[] = {
            {"transactional.id", cfg->transactional_id},
            {"enable.idempotence", "true"},
            {"transaction.timeout.ms", tmo},
            {"linger.ms", "2"},
            {"message.max.bytes", "8388608"},
            {"compression.codec", "lz4"},
            {NULL, NULL},
        };
        fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                              .what = "processor producer",
                              .bootstrap = cfg->bootstrap,
                              .defaults = defaults,
                              .props = &cfg->kafka,
                              .opaque = pr,
                              .on_delivery = on_delivery};
        if (!(pr->producer = fl_kafka_new(&ks, errstr, errstr_size)))
            return -1;
    }

    /* The group consumer on commands. */
    snprintf(stmo, sizeof stmo, "%lld", (long long)cfg->session_timeout_ms);
    {
        const fl_kafka_kv_t defaults[] = {
            {"group.id", cfg->group_id},
            {"partition.assignment.strategy", "cooperative-sticky"},
            {"isolation.level", "read_committed"},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"auto.offset.reset", "earliest"},
            {"session.timeout.ms", stmo},
            {"group.instance.id", cfg->group_instance_id && *cfg->group_instance_id
                                      ? cfg->group_instance_id
                                      : NULL},
            {"heartbeat.interval.ms", "1000"},
            {NULL, NULL},
        };
        fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                              .what = "processor consumer",
                              .bootstrap = cfg->bootstrap,
                              .defaults = defaults,
                              .props = &cfg->kafka,
                              .opaque = pr,
                              .on_rebalance = on_rebalance};
        if (!(pr->consumer = fl_kafka_new(&ks, errstr, errstr_size)))
            return -1;
    }

    /* The restore reader: assign-only, never commits. */
    {
        static const fl_kafka_kv_t defaults[] = {
            {"group.id", "flushline-restore-reader"},
            {"isolation.level", "read_committed"},
            {"enable.auto.commit", "false"},
            {"enable.partition.eof", "true"},
            /* Reading to the end of a log that ends in aborted records or
             * markers needs fetches that return at once. */
            {"fetch.wait.max.ms", "10"},
            /* Restores read whole partitions: librdkafka's default
             * pre-fetch queue (100,000 messages) pauses fetching
             * mid-restore. */
            {"queued.min.messages", "1000000"},
            {"queued.max.messages.kbytes", "1048576"},
            {"fetch.max.bytes", "67108864"},
            {"max.partition.fetch.bytes", "16777216"},
            {NULL, NULL},
        };
        fl_kafka_spec_t ks = {.type = RD_KAFKA_CONSUMER,
                              .what = "processor restore reader",
                              .bootstrap = cfg->bootstrap,
                              .defaults = defaults,
                              .props = &cfg->kafka};
        if (!(pr->reader = fl_kafka_new(&ks, errstr, errstr_size)))
            return -1;
    }
    return 0;
}

pr_processor_t *pr_processor_new(const pr_config_t *cfg, char *errstr, size_t errstr_size)
{
    pr_processor_t *pr = calloc(1, sizeof *pr);
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    rd_kafka_error_t *err;

    if (!pr) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (int p = 0; p < FL_MAX_PARTITIONS; p++)
        atomic_init(&pr->c.lag[p], -1);
    pr->cfg = *cfg;
    pr->docs_lim.window_outcomes = (uint32_t)cfg->window_outcomes;
    pr->docs_lim.window_bytes = (size_t)cfg->window_bytes;
    pr->docs_lim.engine = fl_engine_config_default;
    pr->docs_lim.engine.max_state_bytes = (size_t)cfg->max_state_bytes;
    if (fl_topic_name(cfg->prefix, FL_TOPIC_COMMANDS, pr->t_commands, sizeof pr->t_commands) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_EVENTS, pr->t_events, sizeof pr->t_events) ||
        fl_topic_name(cfg->prefix, FL_TOPIC_SNAPSHOTS, pr->t_snapshots, sizeof pr->t_snapshots)) {
        snprintf(errstr, errstr_size, "invalid topic prefix \"%s\"", cfg->prefix);
        goto fail;
    }
    if (!(pr->arena = fl_arena_new(1 << 16))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (make_handles(pr, errstr, errstr_size) != 0)
        goto fail;
    if (fl_kafka_wait_ready(pr->producer, 15000, errstr, errstr_size) != 0)
        goto fail;

    /* Refuse to run on topics that do not match: a wrong partition count
     * would route a document to two processors. */
    fl_topics_spec_default(&spec);
    spec.prefix = cfg->prefix;
    spec.partitions = (int)cfg->partitions;
    if (fl_topics_check(pr->producer, &spec, st, errstr, errstr_size) != 0)
        goto fail;
    pr->npartitions = (int)cfg->partitions;
    if (pr->npartitions > FL_MAX_PARTITIONS) {
        snprintf(errstr, errstr_size, "at most %d partitions are supported", FL_MAX_PARTITIONS);
        goto fail;
    }

    /* Fences any earlier instance with the same transactional.id and
     * aborts what it left open. */
    if ((err = rd_kafka_init_transactions(pr->producer, 60000))) {
        snprintf(errstr, errstr_size, "init_transactions: %s", rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        goto fail;
    }
    return pr;
fail:
    pr_processor_free(pr);
    return NULL;
}

static void part_free(part_t *part)
{
    if (!part)
        return;
    pr_docs_free(part->docs);
    free(part);
}

/* Drops partition p (revoked, or about to be restored again). */
static void part_drop(pr_processor_t *pr, int32_t p)
{
    if (!pr->parts[p])
        return;
    atomic_fetch_sub(&pr->c.docs, (int64_t)pr_docs_count(pr->parts[p]->docs));
    atomic_store(&pr->c.lag[p], -1);
    part_free(pr->parts[p]);
    pr->parts[p] = NULL;
}

/* ---- closing the group consumer -----------------------------------------
 *
 * librdkafka 2.0.2 aborts the process (rdkafka_sticky_assignor.c:1896:
 * "Assertion `assignor_state' failed") when it destroys a cooperative-sticky
 * group consumer in one state. rd_kafka_cgrp_destroy_final() calls the
 * assignor's destroy_state_cb whenever rkcg_assignor is set, and
 * rd_kafka_sticky_assignor_state_destroy() asserts that the state is not
 * NULL. The two are set at different moments:
 * - rkcg_assignor when a JoinGroup response is handled (the group's protocol
 *   is chosen), before any assignment;
 * - the assignor state only by the assignor's on_assignment_cb, when a
 *   SyncGroup response is handled (any assignment, even an empty one). It is
 *   never cleared afterwards (only if the group's protocol changed, which one
 *   configured strategy rules out).
 * Once a close has begun (RD_KAFKA_CGRP_F_TERMINATE, set by
 * rd_kafka_consumer_close or by rd_kafka_destroy's own close), JoinGroup
 * responses are ignored and SyncGroup responses are discarded, so neither
 * changes any more. The destroy therefore aborts exactly when, in this
 * handle's life, a JoinGroup was answered and no SyncGroup was before the
 * close began:
 * - the member joined and waits for its first assignment: the leader has
 *   not synced yet (it is computing, slow or paused, or has just died and
 *   the group waits for its session to expire);
 * - its first SyncGroup failed (REBALANCE_IN_PROGRESS because another member
 *   joined or left meanwhile, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID after a
 *   session timeout) and it is rejoining, still without state;
 * whatever happens after the close began: the SyncGroup response that
 * arrives during the close is dropped. It never aborts when no JoinGroup
 * was answered before the close (rkcg_assignor stays NULL), nor in any state
 * after the first assignment was handled: a rebalance in progress, an
 * assignment not yet acknowledged by the application, partitions just
 * revoked, a lost assignment all keep the state. Acknowledging (or not) an
 * assignment changes nothing: the state is set before the rebalance
 * callback runs. librdkafka 2.3.0 fixes it (#4312, #4381: a NULL state is
 * not destroyed).
 *
 * What the application can see: the first ASSIGN_PARTITIONS callback (any
 * list, even empty) proves the state exists, and then the consumer is
 * destroyed. Without one, whether a JoinGroup was answered cannot be told
 * from the public API (rd_kafka_rebalance_protocol() answers it only
 * until the close, and a response may land in between). Then the consumer
 * is still closed, which leaves the group, but rd_kafka_destroy() is not
 * called: the handle is kept in the list below, where it stays reachable
 * (LeakSanitizer reports only unreachable memory, so this is not a leak
 * report and nothing else is suppressed), and its idle threads end with the
 * process, which exits right after the drain. Everything else (producer,
 * restore reader, documents) is destroyed as usual. It costs a few idle
 * threads and some memory once per process, only for a processor stopped
 * before its first assignment. */

typedef struct kept_s {
    rd_kafka_t *rk;
    struct kept_s *next;
} kept_t;

static kept_t *kept; /* consumers closed but deliberately not destroyed */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_consumer(rd_kafka_t *rk)
{
    kept_t *k = malloc(sizeof *k);
    fl_info("group consumer closed but not destroyed: it never got an assignment, and "
            "librdkafka 2.0.2 may abort destroying it then");
    if (!k)
        return; /* out of memory: still not destroyed */
    k->rk = rk;
    pthread_mutex_lock(&kept_lock);
    k->next = kept;
    kept = k;
    pthread_mutex_unlock(&kept_lock);
}

/* Leaves the group, once. The revoke it brings commits and snapshots what
 * is assigned (on_rebalance), unless fatal. */
static void close_consumer(pr_processor_t *pr)
{
    rd_kafka_resp_err_t err;
    if (!pr->consumer || pr->consumer_closed)
        return;
    pr->consumer_closed = true;
    if ((err = rd_kafka_consumer_close(pr->consumer)))
        fl_warn("closing the group consumer: %s", rd_kafka_err2str(err));
}

void pr_processor_free(pr_processor_t *pr)
{
    if (!pr)
        return;
    if (pr->consumer) {
        close_consumer(pr);
        if (!pr->subscribed || pr->assigned_once)
            rd_kafka_destroy(pr->consumer);
        else
            keep_consumer(pr->consumer);
    }
    if (pr->reader)
        rd_kafka_destroy(pr->reader);
    if (pr->producer)
        rd_kafka_destroy(pr->producer);
    for (int i = 0; i < FL_MAX_PARTITIONS; i++)
        part_free(pr->parts[i]);
    fl_arena_free(pr->arena);
    free(pr);
}

void pr_processor_stop(pr_processor_t *pr)
{
    atomic_store(&pr->stopping, true);
}

int pr_processor_healthy(pr_processor_t *pr)
{
    return atomic_load(&pr->healthy);
}

/* ---- producing -------------------------------------------------------- */

/* Produces a malloc'd value (ownership passes to librdkafka on success and
 * on failure alike). Returns 0, or -1 when the transaction must abort. */
static int produce_flags(pr_processor_t *pr, const char *topic, int32_t partition,
                         fl_slice_t key, char *val, size_t len, bool is_event, int flags)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            pr->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key.ptr, key.len), RD_KAFKA_V_VALUE(val, len),
            RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_OPAQUE(is_event ? (void *)pr : NULL),
            RD_KAFKA_V_END);
        if (!err)
            return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(pr->producer, 10);
            continue;
        }
        fl_error("produce to %s [%d]: %s", topic, partition, rd_kafka_err2str(err));
        if (flags & RD_KAFKA_MSG_F_FREE)
            free(val);
        return -1;
    }
}

static int produce(pr_processor_t *pr, const char *topic, int32_t partition, fl_slice_t key,
                   char *val, size_t len, bool is_event)
{
    return produce_flags(pr, topic, partition, key, val, len, is_event, RD_KAFKA_MSG_F_FREE);
}

static int begin_txn(pr_processor_t *pr)
{
    rd_kafka_error_t *err;
    if (pr->txn_open)
        return 0;
    if ((err = rd_kafka_begin_transaction(pr->producer))) {
        fl_error("begin_transaction: %s", rd_kafka_error_string(err));
        if (rd_kafka_error_is_fatal(err))
            pr->fatal = 1;
        rd_kafka_error_destroy(err);
        return -1;
    }
    pr->txn_open = true;
    pr->txn_start_ms = fl_clock_mono_ms();
    pr->txn_records = 0;
    return 0;
}

/* ---- snapshots -------------------------------------------------------- */

static int produce_snapshot(pr_processor_t *pr, part_t *part, pr_doc_entry_t *ent)
{
    fl_slice_t id = fl_doc_id(ent->doc);
    char *buf = NULL, errstr[256];
    size_t len;

    /* Called between records (commit time): the arena holds nothing live. */
    fl_arena_reset(pr->arena);
    if (fl_history_encode_snapshot(ent->doc, part->events_next, pr->arena, &buf, &len, errstr,
                                   sizeof errstr) != 0) {
        fl_error("encoding the snapshot of %.*s: %s", (int)id.len, id.ptr, errstr);
        return -1;
    }
    if (produce(pr, pr->t_snapshots, part->id, id, buf, len, false) != 0)
        return -1;
    ent->dirty = false;
    ent->snapshot_version = fl_doc_version(ent->doc);
    atomic_fetch_add(&pr->c.snapshots, 1);
    return 0;
}

static int produce_checkpoint(pr_processor_t *pr, part_t *part)
{
    fl_wire_msg_t msg;
    char *buf = NULL, errstr[256];
    size_t len;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_REC_CHECKPOINT;
    msg.u.checkpoint.partition = part->id;
    msg.u.checkpoint.events_offset = part->events_next;
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) != 0) {
        fl_error("encoding a checkpoint: %s", errstr);
        return -1;
    }
    if (produce(pr, pr->t_snapshots, part->id, FL_WIRE_CHECKPOINT_KEY, buf, len, false) != 0)
        return -1;
    atomic_fetch_add(&pr->c.checkpoints, 1);
    return 0;
}

/* Snapshots what is due in one partition: with round, every dirty
 * document and then the checkpoint; else only those past the version
 * threshold. The producer has been flushed, so events_next is exact. */
static int snapshot_partition(pr_processor_t *pr, part_t *part, bool round)
{
    fl_hmap_iter_t it = FL_HMAP_ITER_INIT;
    pr_doc_entry_t *ent;
    uint64_t every = (uint64_t)pr->cfg.snapshot_every_versions;
    while ((ent = pr_docs_next(part->docs, &it))) {
        if (!ent->dirty)
            continue;
        if (!round && fl_doc_version(ent->doc) - ent->snapshot_version < every)
            continue;
        if (produce_snapshot(pr, part, ent) != 0)
            return -1;
    }
    part->snapshot_due = false;
    if (round && produce_checkpoint(pr, part) != 0)
        return -1;
    return 0;
}

/* ---- transactions ----------------------------------------------------- */

static int restore_partition(pr_processor_t *pr, int32_t p);

/* The timeout_ms to give rd_kafka_seek_partitions for ms: librdkafka
 * before 2.1.0 (Debian 12 has 2.0.2) waits for the seeks' replies that
 * many *microseconds* (its issue #4230): 30 s became 30 ms, which a busy
 * machine's broker thread overran, and the rewind after an abort failed
 * ("Timed out waiting for 3 remaining partition seek(s)"): a fatal error. */
static int seek_timeout_ms(int ms)
{
    return rd_kafka_version() < 0x02010000 ? ms * 1000 : ms;
}

/* After an abort: drop every owned partition's documents, restore them
 * from what is committed, and seek the consumer back to committed offsets. */
static int rewind_all(pr_processor_t *pr)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err;
    int rc = -1;

    if ((err = rd_kafka_assignment(pr->consumer, &parts))) {
        fl_error("assignment: %s", rd_kafka_err2str(err));
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        part_drop(pr, p);
        if (restore_partition(pr, p) != 0)
            goto fail;
    }
    if ((err = rd_kafka_committed(pr->consumer, parts, 30000))) {
        fl_error("reading committed offsets: %s", rd_kafka_err2str(err));
        goto fail;
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_error_t *serr =
        rd_kafka_seek_partitions(pr->consumer, parts, seek_timeout_ms(30000));
    if (serr) {
        fl_error("seek: %s", rd_kafka_error_string(serr));
        rd_kafka_error_destroy(serr);
        goto fail;
    }
    rc = 0;
fail:
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* rewind_all for the callers that have just aborted. A failure is fatal,
 * except while draining (the drain interrupts restores): then every
 * partition is dropped instead, so that the drain commits no offset past
 * the aborted records (the consumer was not sought back) and their next
 * owner restores them from what is committed. */
static void rewind_after_abort(pr_processor_t *pr)
{
    if (rewind_all(pr) == 0)
        return;
    if (!atomic_load(&pr->stopping)) {
        pr->fatal = 1;
        return;
    }
    fl_info("rewind interrupted by the drain: every partition is left to its next owner");
    for (int p = 0; p < FL_MAX_PARTITIONS; p++)
        part_drop(pr, p);
}

/* Handles a failed transactional call. Returns 1 to retry the call, -1
 * when the transaction is gone (aborted and rewound, or fatal). */
static int txn_error(pr_processor_t *pr, const char *what, rd_kafka_error_t *err)
{
    int rc = -1;
    if (rd_kafka_error_is_fatal(err)) {
        fl_error("%s: fatal: %s; stopping without writing", what, rd_kafka_error_string(err));
        pr->fatal = 1;
    } else if (rd_kafka_error_txn_requires_abort(err)) {
        fl_warn("%s: %s; aborting the transaction and rewinding", what,
                rd_kafka_error_string(err));
        rd_kafka_error_t *aerr = rd_kafka_abort_transaction(pr->producer, -1);
        pr->txn_open = false;
        atomic_fetch_add(&pr->c.aborts, 1);
        if (aerr) {
            fl_error("abort_transaction: %s", rd_kafka_error_string(aerr));
            if (rd_kafka_error_is_fatal(aerr))
                pr->fatal = 1;
            rd_kafka_error_destroy(aerr);
        }
        if (!pr->fatal)
            rewind_after_abort(pr);
    } else if (rd_kafka_error_is_retriable(err)) {
        fl_warn("%s: %s; retrying", what, rd_kafka_error_string(err));
        rc = 1;
    } else {
        fl_error("%s: %s; stopping", what, rd_kafka_error_string(err));
        pr->fatal = 1;
    }
    rd_kafka_error_destroy(err);
    return rc;
}

/* Commits the open transaction with the consumer's positions (plus any
 * snapshots that are due). force_round snapshots every dirty document. */
static int commit_txn(pr_processor_t *pr, bool force_round)
{
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    rd_kafka_error_t *err;
    bool round = force_round ||
                 fl_clock_mono_ms() - pr->last_round_ms >= pr->cfg.snapshot_interval_ms;
    bool any_due = round;
    int64_t t0 = fl_clock_mono_us();
    int rc = -1, tries;

    if (!pr->txn_open && !force_round)
        return 0;
    if (begin_txn(pr) != 0)
        return -1;
    for (int p = 0; p < FL_MAX_PARTITIONS && !any_due; p++)
        any_due = pr->parts[p] && pr->parts[p]->snapshot_due;
    if (any_due) {
        /* Exact events offsets for the snapshots. */
        rd_kafka_resp_err_t ferr = rd_kafka_flush(pr->producer, (int)pr->cfg.transaction_timeout_ms);
        if (ferr) {
            fl_warn("flush before snapshots: %s", rd_kafka_err2str(ferr));
        } else {
            for (int p = 0; p < FL_MAX_PARTITIONS; p++) {
                part_t *part = pr->parts[p];
                if (part && (round || part->snapshot_due) && snapshot_partition(pr, part, round) != 0)
                    break;
            }
            if (round)
                pr->last_round_ms = fl_clock_mono_ms();
        }
    }

    if (rd_kafka_assignment(pr->consumer, &offsets) == 0 && offsets->cnt > 0) {
        rd_kafka_position(pr->consumer, offsets);
        /* Lag per partition for /metrics, from the cached high watermark
         * (cheap, and once per commit rather than per record). */
        for (int i = 0; i < offsets->cnt; i++) {
            int64_t lo, hi, pos = offsets->elems[i].offset;
            int32_t p = offsets->elems[i].partition;
            if (pos >= 0 && p < FL_MAX_PARTITIONS &&
                rd_kafka_get_watermark_offsets(pr->consumer, pr->t_commands, p, &lo, &hi) == 0 &&
                hi >= pos)
                atomic_store(&pr->c.lag[p], hi - pos);
        }
        /* Partitions with nothing consumed yet have no position to commit. */
        rd_kafka_topic_partition_list_t *valid = rd_kafka_topic_partition_list_new(offsets->cnt);
        /* Only partitions whose documents we hold: a record consumed from
         * any other (an assignment acknowledged while stopping) was not
         * applied and its offset must not be committed. And only positions
         * that moved since our last commit: the others are committed
         * already. A transaction that consumed nothing then carries no
         * offsets, only snapshots and checkpoints of committed state, and
         * does not depend on the group's generation: the broker refuses
         * offsets from a stale generation (ILLEGAL_GENERATION), which is
         * what happens to a drain's snapshot round or a revoke's
         * checkpoint while the group is rebalancing. */
        for (int i = 0; i < offsets->cnt; i++) {
            int32_t p = offsets->elems[i].partition;
            if (offsets->elems[i].offset >= 0 && p >= 0 && p < FL_MAX_PARTITIONS && pr->parts[p] &&
                offsets->elems[i].offset != pr->parts[p]->committed)
                rd_kafka_topic_partition_list_add(valid, offsets->elems[i].topic, p)->offset =
                    offsets->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(offsets);
        offsets = valid;
    }
    if (offsets && offsets->cnt > 0) {
        cgmd = rd_kafka_consumer_group_metadata(pr->consumer);
        for (tries = 0; tries < PR_TXN_RETRIES; tries++) {
            err = rd_kafka_send_offsets_to_transaction(pr->producer, offsets, cgmd, -1);
            if (!err)
                break;
            if (txn_error(pr, "send_offsets_to_transaction", err) < 0)
                goto fail;
        }
    }
    for (tries = 0; tries < PR_TXN_RETRIES; tries++) {
        err = rd_kafka_commit_transaction(pr->producer, -1);
        if (!err)
            break;
        if (txn_error(pr, "commit_transaction", err) < 0)
            goto fail;
    }
    if (tries == PR_TXN_RETRIES) {
        pr->fatal = 1;
        goto fail;
    }
    pr->txn_open = false;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        int32_t p = offsets->elems[i].partition;
        if (p >= 0 && p < FL_MAX_PARTITIONS && pr->parts[p])
            pr->parts[p]->committed = offsets->elems[i].offset;
    }
    atomic_fetch_add(&pr->c.commits, 1);
    atomic_fetch_add(&pr->c.commit_us_total, (uint64_t)(fl_clock_mono_us() - t0));
    rc = 0;
fail:
    if (cgmd)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (offsets)
        rd_kafka_topic_partition_list_destroy(offsets);
    return rc;
}

/* ---- applying --------------------------------------------------------- */

static int handle_flush(pr_processor_t *pr, part_t *part, const rd_kafka_message_t *msg,
                        fl_wire_rec_flush_t *rf)
{
    rd_kafka_timestamp_type_t tstype;
    fl_outcome_t out;
    pr_doc_entry_t *ent;
    char *buf = NULL, errstr[256];
    size_t len;
    int rc;

    /* Server stamps come from the record only. */
    rf->flush.ts_ms = rd_kafka_message_timestamp(msg, &tstype);
    uint32_t before = pr_docs_count(part->docs);
    ent = pr_docs_get_or_create(part->docs, rf->flush.doc);
    atomic_fetch_add(&pr->c.docs, (int64_t)(pr_docs_count(part->docs) - before));
    if (!ent) {
        fl_error("out of memory creating %.*s", (int)rf->flush.doc.len, rf->flush.doc.ptr);
        return -1;
    }
    rc = fl_doc_apply(ent->doc, &rf->flush, pr->arena, &out);
    if (rc != 0) {
        fl_error("applying a flush to %.*s: %s", (int)rf->flush.doc.len, rf->flush.doc.ptr,
                 fl_engine_strerror(rc));
        return -1;
    }
    if (fl_wire_encode_outcome_record(&out, rf->gw, rf->origin, &buf, &len, errstr,
                                      sizeof errstr) != 0) {
        fl_error("encoding an outcome of %.*s: %s", (int)out.doc.len, out.doc.ptr, errstr);
        return -1;
    }
    /* Outcomes that applied nothing can still change the dedup table (a
     * rejected flush consumes its seq): the next snapshot must carry it. */
    if (fl_history_outcome_recorded(&out))
        ent->dirty = true;
    if (out.napplied > 0) {
        /* librdkafka copies the record (one allocation with its message);
         * the window keeps the encoded buffer itself. */
        if (produce_flags(pr, pr->t_events, part->id, out.doc, buf, len, true,
                          RD_KAFKA_MSG_F_COPY) != 0) {
            free(buf);
            return -1;
        }
        if (fl_window_push(&ent->window, out.version_before, out.version_after, buf, len) != 0)
            return -1;
        /* A document never snapshotted is dirty and goes in the next round. */
        if (out.version_after - ent->snapshot_version >= (uint64_t)pr->cfg.snapshot_every_versions)
            part->snapshot_due = true;
    } else if (produce(pr, pr->t_events, part->id, out.doc, buf, len, true) != 0) {
        return -1;
    }
    atomic_fetch_add(&pr->c.flushes, 1);
    if (out.duplicate)
        atomic_fetch_add(&pr->c.duplicates, 1);
    atomic_fetch_add(&pr->c.cmds_applied, out.napplied);
    atomic_fetch_add(&pr->c.cmds_rejected, out.nresults - out.napplied);
    return 0;
}

static int handle_sync(pr_processor_t *pr, part_t *part, fl_wire_sync_t *sync)
{
    fl_wire_msg_t reply;
    fl_wire_sync_reply_t *r = &reply.u.reply;
    /* A document never written is not created for a sync: it is at
     * version 0 with an empty state. */
    pr_doc_entry_t *ent = pr_docs_get(part->docs, sync->doc);
    char *buf = NULL, errstr[256];
    size_t len;
    int rc;

    memset(&reply, 0, sizeof reply);
    reply.type = FL_WT_REC_SYNC_REPLY;
    r->doc = sync->doc;
    r->gw = sync->gw;
    r->req = sync->req;
    if (!ent) {
        r->version = 0; /* chain: all zero */
        r->has_state = sync->have_version != 0;
        r->state.type = FL_MAP;
    } else {
        r->version = fl_doc_version(ent->doc);
        memcpy(r->chain, fl_doc_chain(ent->doc), FL_HASH_LEN);
    }
    if (!ent) {
        /* answered above */
    } else if (sync->have_version == r->version) {
        r->nitems = 0; /* up to date */
    } else if (sync->have_version < r->version &&
               (rc = fl_window_deltas(&ent->window, sync->have_version, pr->arena, &r->items,
                                      &r->nitems, errstr, sizeof errstr)) != FL_HISTORY_EGONE) {
        /* Deltas from the window. */
        if (rc != 0) {
            fl_error("window of %.*s: %s: %s", (int)sync->doc.len, sync->doc.ptr,
                     fl_history_strerror(rc), errstr);
            return -1;
        }
    } else {
        r->has_state = true;
        r->state = *fl_doc_state(ent->doc);
    }
    if (fl_wire_encode(&reply, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) != 0) {
        fl_error("encoding a sync reply for %.*s: %s", (int)sync->doc.len, sync->doc.ptr, errstr);
        return -1;
    }
    atomic_fetch_add(&pr->c.syncs, 1);
    return produce(pr, pr->t_events, part->id, sync->doc, buf, len, false);
}

/* One commands record. Bad records are logged, counted and skipped: they
 * never stop the partition. Returns -1 only when the transaction must be
 * aborted (produce failure, out of memory). */
static int handle_record(pr_processor_t *pr, const rd_kafka_message_t *msg)
{
    part_t *part = msg->partition >= 0 && msg->partition < FL_MAX_PARTITIONS
                       ? pr->parts[msg->partition]
                       : NULL;
    fl_wire_msg_t wm;
    char errstr[256];
    int rc;
    fl_slice_t key = {(const char *)msg->key, msg->key_len};

    atomic_fetch_add(&pr->c.records_in, 1);
    if (!part) {
        /* While stopping, an assignment is acknowledged without restoring
         * it (see on_rebalance): its records are left alone and their
         * offsets never committed (commit_txn). Otherwise this cannot
         * happen; if it did, stop rather than risk skipping a record. */
        if (atomic_load(&pr->stopping))
            return 0;
        fl_error("record from partition %d, which has no documents; stopping", msg->partition);
        pr->fatal = 1;
        return -1;
    }
    if (begin_txn(pr) != 0)
        return -1;
    pr->txn_records++;
    fl_arena_reset(pr->arena);
    rc = fl_wire_decode_record(msg->payload, msg->len, pr->arena, &wm, errstr, sizeof errstr);
    if (rc == 0 && wm.type == FL_WT_REC_FLUSH) {
        if (key.len != wm.u.rflush.flush.doc.len ||
            memcmp(key.ptr, wm.u.rflush.flush.doc.ptr, key.len) != 0) {
            snprintf(errstr, sizeof errstr, "record key is not the flush's document");
            goto bad;
        }
        return handle_flush(pr, part, msg, &wm.u.rflush);
    }
    if (rc == 0 && wm.type == FL_WT_REC_SYNC)
        return handle_sync(pr, part, &wm.u.sync);
    if (rc == 0)
        snprintf(errstr, sizeof errstr, "a %s record does not belong in commands",
                 fl_wire_type_name(wm.type));
bad:
    atomic_fetch_add(&pr->c.bad_records, 1);
    fl_warn("skipped bad record %s [%d] @%lld: %s", pr->t_commands, msg->partition,
            (long long)msg->offset, errstr);
    return 0;
}

/* ---- restore ---------------------------------------------------------- */

typedef int (*record_fn)(pr_processor_t *pr, part_t *part, const rd_kafka_message_t *msg,
                         void *ctx);

/* Reads topic[p] from offset `from` up to the high watermark read at the
 * start (read_committed: waits for open transactions to resolve). */
static int read_partition(pr_processor_t *pr, const char *topic, part_t *part, int64_t from,
                          record_fn fn, void *ctx)
{
    int64_t lo = 0, hi = 0, deadline = fl_clock_mono_ms() + pr->cfg.restore_timeout_ms;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    int rc = -1;

    /* Right after topic creation or a leader change the partition may have
     * no leader for a moment: retry until the restore deadline. */
    while ((err = rd_kafka_query_watermark_offsets(pr->reader, topic, part->id, &lo, &hi, 5000))) {
        if (atomic_load(&pr->stopping))
            goto fail;
        if (fl_clock_mono_ms() > deadline) {
            fl_error("watermarks of %s [%d]: %s", topic, part->id, rd_kafka_err2str(err));
            goto fail;
        }
        fl_info("watermarks of %s [%d]: %s; retrying", topic, part->id, rd_kafka_err2str(err));
        rd_kafka_poll(pr->reader, 200);
    }
    if (from < lo)
        from = lo;
    if (from >= hi) {
        rc = 0;
        goto fail;
    }
    rd_kafka_topic_partition_list_add(parts, topic, part->id)->offset = from;
    if ((err = rd_kafka_assign(pr->reader, parts))) {
        fl_error("assign %s [%d]: %s", topic, part->id, rd_kafka_err2str(err));
        goto fail;
    }
    for (;;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(pr->reader, 200);
        if (msg) {
            if (!msg->err) {
                if (fn(pr, part, msg, ctx) != 0) {
                    rd_kafka_message_destroy(msg);
                    goto unassign;
                }
            } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fl_warn("reading %s [%d]: %s", topic, part->id, rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
        }
        rd_kafka_position(pr->reader, parts);
        if (parts->elems[0].offset >= hi)
            break;
        if (fl_clock_mono_ms() > deadline) {
            fl_error("restore of %s [%d] did not reach offset %lld within %lld ms (at %lld)", topic,
                     part->id, (long long)hi, (long long)pr->cfg.restore_timeout_ms,
                     (long long)parts->elems[0].offset);
            goto unassign;
        }
        if (atomic_load(&pr->stopping)) {
            int64_t at = parts->elems[0].offset < 0 ? from : parts->elems[0].offset; /* none yet */
            fl_info("restore of %s [%d] interrupted by the drain at offset %lld of %lld", topic,
                    part->id, (long long)at, (long long)hi);
            goto unassign;
        }
    }
    rc = 0;
unassign:
    rd_kafka_assign(pr->reader, NULL);
fail:
    rd_kafka_topic_partition_list_destroy(parts);
    if (rc == 0 && hi > part->events_next && strcmp(topic, pr->t_events) == 0)
        part->events_next = hi;
    return rc;
}

typedef struct restore_ctx_s {
    int64_t checkpoint;
    uint64_t events;
} restore_ctx_t;

static int on_snapshot_record(pr_processor_t *pr, part_t *part, const rd_kafka_message_t *msg,
                              void *opaque)
{
    restore_ctx_t *ctx = opaque;
    fl_wire_msg_t wm;
    char errstr[256];
    pr_doc_entry_t *ent;
    fl_doc_t *doc;
    int rc;

    fl_arena_reset(pr->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, pr->arena, &wm, errstr, sizeof errstr) != 0) {
        fl_warn("skipped undecodable snapshot record @%lld: %s", (long long)msg->offset, errstr);
        return 0;
    }
    if (wm.type == FL_WT_REC_CHECKPOINT) {
        ctx->checkpoint = wm.u.checkpoint.events_offset;
        return 0;
    }
    if (wm.type != FL_WT_REC_SNAPSHOT)
        return 0;
    fl_wire_snapshot_t *s = &wm.u.snapshot;
    if (!(ent = pr_docs_get_or_create(part->docs, s->doc)))
        return -1;
    /* Compaction keeps the newest per document, but before it runs older
     * ones are still there: the newest version wins. */
    if (ent->snapshot_version > s->version)
        return 0;
    if ((rc = fl_history_doc_from_snapshot(s, &pr->docs_lim.engine, &doc)) != 0) {
        fl_error("snapshot of %.*s v%llu cannot be restored: %s", (int)s->doc.len, s->doc.ptr,
                 (unsigned long long)s->version, fl_history_strerror(rc));
        return -1;
    }
    fl_doc_free(ent->doc);
    ent->doc = doc;
    ent->snapshot_version = s->version;
    ent->snapshot_offset = s->events_offset;
    ent->dirty = false;
    return 0;
}

static int on_event_record(pr_processor_t *pr, part_t *part, const rd_kafka_message_t *msg,
                           void *opaque)
{
    restore_ctx_t *ctx = opaque;
    fl_wire_msg_t wm;
    char errstr[256];
    pr_doc_entry_t *ent;
    int rc;

    fl_arena_reset(pr->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, pr->arena, &wm, errstr, sizeof errstr) != 0) {
        fl_warn("skipped undecodable event @%lld: %s", (long long)msg->offset, errstr);
        return 0;
    }
    if (wm.type != FL_WT_REC_OUTCOME)
        return 0; /* sync replies carry no state change */
    const fl_outcome_t *o = &wm.u.outcome.outcome;
    if (!(ent = pr_docs_get_or_create(part->docs, o->doc)))
        return -1;
    rc = fl_history_replay_check(ent->doc, ent->snapshot_offset, msg->offset, o);
    if (rc == FL_HISTORY_REFLECTED)
        return 0; /* reflected by the snapshot */
    if (rc == 0)
        rc = fl_history_replay(ent->doc, o, pr->arena);
    if (rc != 0) {
        fl_error("replaying %.*s v%llu..v%llu from %s [%d] @%lld failed: %s", (int)o->doc.len,
                 o->doc.ptr, (unsigned long long)o->version_before,
                 (unsigned long long)o->version_after, pr->t_events, part->id,
                 (long long)msg->offset, fl_history_strerror(rc));
        return -1;
    }
    /* The sync window starts empty after a restore (syncs it cannot answer
     * with deltas get the state): copying every replayed record into it
     * would cost a fifth of the restore for the few kept at the end. */
    if (fl_history_outcome_recorded(o))
        ent->dirty = true;
    ctx->events++;
    return 0;
}

static int restore_partition(pr_processor_t *pr, int32_t p)
{
    int64_t t0 = fl_clock_mono_ms();
    restore_ctx_t ctx = {.checkpoint = 0};
    part_t *part = calloc(1, sizeof *part);
    if (!part || !(part->docs = pr_docs_new(&pr->docs_lim))) {
        part_free(part);
        return -1;
    }
    part->id = p;
    part->committed = -1;
    fl_info("restoring partition %d", p);
    if (read_partition(pr, pr->t_snapshots, part, 0, on_snapshot_record, &ctx) != 0 ||
        read_partition(pr, pr->t_events, part, ctx.checkpoint, on_event_record, &ctx) != 0) {
        if (atomic_load(&pr->stopping))
            fl_info("restore of partition %d abandoned: draining", p);
        else
            fl_error("restore of partition %d failed", p);
        part_free(part);
        return -1;
    }
    pr->parts[p] = part;
    atomic_fetch_add(&pr->c.docs, (int64_t)pr_docs_count(part->docs));
    atomic_store(&pr->c.lag[p], 0);
    atomic_fetch_add(&pr->c.restores, 1);
    atomic_fetch_add(&pr->c.events_restored, ctx.events);
    atomic_fetch_add(&pr->c.restore_ms_total, (uint64_t)(fl_clock_mono_ms() - t0));
    fl_info("partition %d restored: %u documents, %llu events from offset %lld in %lld ms", p,
            pr_docs_count(part->docs), (unsigned long long)ctx.events, (long long)ctx.checkpoint,
            (long long)(fl_clock_mono_ms() - t0));
    return 0;
}

/* ---- rebalancing ------------------------------------------------------ */

/* "0,3,5" into buf, for the log. */
static const char *parts_str(const rd_kafka_topic_partition_list_t *parts, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && n + 16 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%d", i ? "," : "", parts->elems[i].partition);
    return buf;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pr_processor_t *pr = opaque;
    rd_kafka_error_t *rerr = NULL;
    char list[256];

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* The assignor state exists from now on: the consumer can be
         * destroyed safely (see keep_consumer). */
        pr->assigned_once = true;
        fl_info("rebalance: assigned %d partition(s) [%s]%s", parts->cnt,
                parts_str(parts, list, sizeof list),
                atomic_load(&pr->stopping) ? " while draining: not restored" : "");
        /* Commit what is open first: restoring can take a while and the
         * transaction must stay far below its timeout. */
        if (!pr->fatal && pr->txn_open)
            commit_txn(pr, false);
        for (int i = 0; i < parts->cnt && !pr->fatal && !atomic_load(&pr->stopping); i++) {
            int32_t p = parts->elems[i].partition;
            if (p >= FL_MAX_PARTITIONS || restore_partition(pr, p) != 0) {
                /* Interrupted by SIGTERM: not an error, the drain follows. */
                if (!atomic_load(&pr->stopping))
                    pr->fatal = 1;
                break;
            }
        }
        if (pr->fatal || atomic_load(&pr->stopping)) {
            /* Consume nothing of these: without their documents a record
             * would be lost (handle_record skips their records while
             * draining, and commit_txn never commits their offsets).
             * Another processor will own them. */
            for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].partition < FL_MAX_PARTITIONS)
                    part_drop(pr, parts->elems[i].partition);
        }
        /* Acknowledged in every case: a close (the drain's, or the one in
         * pr_processor_free after a fatal error) waits for the
         * acknowledgement before it can leave the group, and then revokes
         * what was not restored at once. */
        rerr = rd_kafka_incremental_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);
        fl_info("rebalance: %s %d partition(s) [%s]", lost ? "lost" : "revoking", parts->cnt,
                parts_str(parts, list, sizeof list));
        if (lost) {
            /* Someone else may own them already: write nothing for them. */
            if (pr->txn_open) {
                rd_kafka_error_t *aerr = rd_kafka_abort_transaction(pr->producer, -1);
                if (aerr)
                    rd_kafka_error_destroy(aerr);
                pr->txn_open = false;
                atomic_fetch_add(&pr->c.aborts, 1);
            }
        } else if (!pr->fatal) {
            /* Hand over cleanly: snapshot the revoked partitions' dirty
             * documents with a checkpoint, and commit with their offsets. */
            if (begin_txn(pr) == 0) {
                rd_kafka_resp_err_t ferr = rd_kafka_flush(pr->producer, 30000);
                for (int i = 0; i < parts->cnt && !ferr; i++) {
                    int32_t p = parts->elems[i].partition;
                    part_t *part = p >= 0 && p < FL_MAX_PARTITIONS ? pr->parts[p] : NULL;
                    if (part)
                        snapshot_partition(pr, part, true);
                }
                commit_txn(pr, false);
            }
        }
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            if (p < FL_MAX_PARTITIONS)
                part_drop(pr, p);
        }
        rerr = rd_kafka_incremental_unassign(rk, parts);
        /* After a lost assignment the abort above dropped every partition's
         * uncommitted work, not just the revoked ones': rewind the rest. */
        if (lost && !pr->fatal) {
            if (rerr) {
                rd_kafka_error_destroy(rerr);
                rerr = NULL;
            }
            rewind_after_abort(pr);
            return;
        }
    } else {
        fl_error("rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
    if (rerr) {
        fl_error("rebalance: %s", rd_kafka_error_string(rerr));
        rd_kafka_error_destroy(rerr);
    }
}

/* ---- the loop --------------------------------------------------------- */

int pr_processor_run(pr_processor_t *pr)
{
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t err;

    if (atomic_load(&pr->stopping)) {
        /* Stopped while starting: nothing joined, nothing to drain. */
        fl_info("stopped before processing anything");
        return 0;
    }
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, pr->t_commands, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(pr->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        fl_error("subscribe to %s: %s", pr->t_commands, rd_kafka_err2str(err));
        return 1;
    }
    pr->subscribed = true;
    pr->last_round_ms = fl_clock_mono_ms();
    /* Ready: Kafka answers, the topics match and the producer is
     * initialised; partitions come and go with rebalances. */
    atomic_store(&pr->healthy, 1);
    fl_info("processing %s as %s (group %s)", pr->t_commands, pr->cfg.transactional_id,
            pr->cfg.group_id);

    while (!atomic_load(&pr->stopping) && !pr->fatal) {
        int wait = 100;
        if (pr->txn_open) {
            int64_t left = pr->txn_start_ms + pr->cfg.commit_interval_ms - fl_clock_mono_ms();
            wait = left < 0 ? 0 : (int)left;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(pr->consumer, wait);
        if (msg) {
            if (!msg->err) {
                if (handle_record(pr, msg) != 0 && pr->txn_open && !pr->fatal) {
                    /* The record may be half-produced: abort, rewind, redo. */
                    rd_kafka_message_destroy(msg);
                    msg = NULL;
                    rd_kafka_error_t *aerr = rd_kafka_abort_transaction(pr->producer, -1);
                    if (aerr) {
                        if (rd_kafka_error_is_fatal(aerr))
                            pr->fatal = 1;
                        rd_kafka_error_destroy(aerr);
                    }
                    pr->txn_open = false;
                    atomic_fetch_add(&pr->c.aborts, 1);
                    if (!pr->fatal)
                        rewind_after_abort(pr);
                }
            } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fl_warn("consumer: %s", rd_kafka_message_errstr(msg));
            }
            if (msg)
                rd_kafka_message_destroy(msg);
        }
        rd_kafka_poll(pr->producer, 0);
        if (pr->txn_open && (fl_clock_mono_ms() - pr->txn_start_ms >= pr->cfg.commit_interval_ms ||
                             pr->txn_records >= (uint32_t)pr->cfg.commit_max_records))
            commit_txn(pr, false);
        else if (!pr->txn_open &&
                 fl_clock_mono_ms() - pr->last_round_ms >= pr->cfg.snapshot_interval_ms) {
            /* Quiet: snapshot what changed since the last round. */
            bool dirty = false;
            for (int p = 0; p < FL_MAX_PARTITIONS && !dirty; p++) {
                fl_hmap_iter_t it = FL_HMAP_ITER_INIT;
                pr_doc_entry_t *ent;
                while (pr->parts[p] && (ent = pr_docs_next(pr->parts[p]->docs, &it)))
                    if (ent->dirty) {
                        dirty = true;
                        break;
                    }
            }
            if (dirty)
                commit_txn(pr, true);
            else
                pr->last_round_ms = fl_clock_mono_ms();
        }
    }
    atomic_store(&pr->healthy, 0);
    if (pr->fatal) {
        fl_error("stopped on a fatal error; nothing more was written");
        return 1;
    }
    /* Drain: commit what is open with a full snapshot round, then leave
     * the group (the revoke finds nothing dirty and checkpoints). Whatever
     * the rebalance state, this ends in exit 0 unless Kafka says fatal
     * (fenced): a transaction that had to be aborted on the way leaves its
     * records to the next owner of their partitions, which is no error. */
    fl_info("draining");
    if (commit_txn(pr, true) != 0 && !pr->fatal)
        fl_warn("draining: the last transaction was aborted; the next owner of its partitions "
                "applies its records");
    if (!pr->fatal)
        close_consumer(pr);
    if (pr->fatal) {
        fl_error("fatal error while draining; nothing more was written");
        return 1;
    }
    rd_kafka_flush(pr->producer, 10000);
    fl_info("stopped cleanly");
    return 0;
}

/* ---- metrics ---------------------------------------------------------- */

char *pr_processor_metrics(pr_processor_t *pr, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
#define COUNTER(name, help, field)                                                                 \
    fprintf(f, "# HELP flushline_processor_" name " " help "\n# TYPE flushline_processor_" name    \
               " counter\nflushline_processor_" name " %llu\n",                                    \
            (unsigned long long)atomic_load(&pr->c.field))
    COUNTER("records_in_total", "Records consumed from commands.", records_in);
    COUNTER("bad_records_total", "Records skipped as undecodable or misplaced.", bad_records);
    COUNTER("flushes_total", "Flushes answered with an outcome.", flushes);
    COUNTER("duplicates_total", "Flushes answered from the dedup table.", duplicates);
    COUNTER("syncs_total", "Sync requests answered.", syncs);
    COUNTER("commands_applied_total", "Commands applied.", cmds_applied);
    COUNTER("commands_rejected_total", "Commands rejected.", cmds_rejected);
    COUNTER("commits_total", "Transactions committed.", commits);
    COUNTER("aborts_total", "Transactions aborted.", aborts);
    COUNTER("snapshots_total", "Snapshots written.", snapshots);
    COUNTER("checkpoints_total", "Partition checkpoints written.", checkpoints);
    COUNTER("restores_total", "Partitions restored.", restores);
    COUNTER("restored_events_total", "Events replayed by restores.", events_restored);
    COUNTER("commit_microseconds_total", "Time spent committing transactions.", commit_us_total);
    COUNTER("restore_milliseconds_total", "Time spent restoring partitions.", restore_ms_total);
#undef COUNTER
    fprintf(f, "# HELP flushline_processor_lag Commands records behind the high watermark.\n"
               "# TYPE flushline_processor_lag gauge\n");
    for (int p = 0; p < FL_MAX_PARTITIONS; p++) {
        int64_t lag = atomic_load(&pr->c.lag[p]);
        if (lag >= 0)
            fprintf(f, "flushline_processor_lag{partition=\"%d\"} %lld\n", p, (long long)lag);
    }
    fprintf(f, "# HELP flushline_processor_documents Documents in memory.\n"
               "# TYPE flushline_processor_documents gauge\nflushline_processor_documents %lld\n",
            (long long)atomic_load(&pr->c.docs));
    fclose(f);
    *len = size;
    return buf;
}
