/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_loop: consume-apply-produce with Kafka transactions, as a state
 * machine. See pr_loop.h for the contract; the comments here say why.
 *
 * Transactions. Every record consumed from <prefix>.commands is applied by
 * the partition's task (partition/task.h) and what it emits is produced to
 * the same partition of <prefix>.events inside the open transaction
 * (kafka/txn.h). Every commit.interval.ms (or commit.max.records) the
 * consumer's positions are sent to the transaction and it is committed:
 * outcomes, snapshots and offsets become visible together, or not at all.
 * On an abortable error the transaction is aborted and every running
 * partition goes back to restoring: its documents are rebuilt from what
 * Kafka committed and its consumption resumes from its committed offset,
 * so the in-memory documents never hold anything that was not committed.
 * Fenced or fatal: stop at once, write nothing.
 *
 * The states of a partition, and why each exists:
 *
 *   NONE       not ours.
 *   ASSIGNED   the group gave it to us (the rebalance callback acknowledged
 *              it and paused its consumption at once): its documents are
 *              not in memory yet, so none of its records may be applied.
 *              It waits for its turn to restore: one partition restores at
 *              a time, through the one reader handle. A running partition
 *              comes back here after an abort (its documents may hold
 *              uncommitted changes) or a lost assignment of others.
 *   RESTORING  its documents are being rebuilt from the snapshots and
 *              events partitions (partition/restore.h), a bounded step per
 *              loop turn, so that the loop keeps serving rebalances,
 *              commits of the other partitions and SIGTERM however long
 *              the restore takes.
 *   RUNNING    its documents are in memory: its records are applied and its
 *              offsets committed. Entering it, consumption resumes, from the
 *              committed offset when records were fetched before it was
 *              ready (must_seek).
 *
 * The processor itself runs until asked to stop or a fatal error, then
 * DRAINS: commit what is open with a full snapshot round, leave the group
 * (the revoke commits and checkpoints what is running), flush. Partitions
 * not yet running are left to their next owner, who restores them.
 *
 * Recoveries from broker outages and readiness: see pr_loop.h.
 */
#include "pr_loop.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "flushline/clock.h"
#include "flushline/kafka.h"
#include "flushline/limits.h"
#include "flushline/log.h"
#include "flushline/probe.h"
#include "flushline/reader.h"
#include "flushline/restore.h"
#include "flushline/task.h"
#include "flushline/topics.h"
#include "flushline/txn.h"
#include "pr_group.h"
#include "pr_out.h"

/* How long one loop turn may restore before it polls the group again. */
#define RESTORE_STEP_MS 50
/* init_transactions, at start and after a rebuild, is retried this long
 * while no transaction coordinator answers (a broker just started). */
#define INIT_TIMEOUT_MS 120000
#define REBUILDS_MAX 3 /* producer rebuilds allowed a minute (pr_loop.h) */
/* The Kafka probe behind /readyz: how often, and how long each may take. */
#define PROBE_INTERVAL_MS 1000
#define PROBE_TIMEOUT_MS 1500

typedef enum slot_state_e { S_NONE, S_ASSIGNED, S_RESTORING, S_RUNNING } slot_state_t;

typedef struct slot_s {
    slot_state_t state;
    int64_t committed; /* commands offset we last committed; -1: not known */
    bool must_seek;    /* resume from the committed offset, not the fetch position */
} slot_t;

struct pr_loop_s {
    const pr_config_t *cfg;
    pr_metrics_t *m;
    char t_commands[FL_TOPIC_NAME_MAX + 1];
    char t_events[FL_TOPIC_NAME_MAX + 1];
    char t_snapshots[FL_TOPIC_NAME_MAX + 1];
    int npartitions;
    pr_group_t *group;
    rd_kafka_t *consumer; /* the group's */
    pr_out_t *out;
    rd_kafka_t *producer; /* out's */
    fl_txn_t *txn;
    rd_kafka_t *reader;   /* assign-only consumer used by restore */
    fl_part_config_t part_cfg;
    slot_t slots[FL_MAX_PARTITIONS];
    int nassigned; /* slots in S_ASSIGNED: restores waiting (the loop asks every turn) */
    /* The documents of the RUNNING partitions (NULL otherwise): pr_out
     * reads it for delivery reports. */
    fl_part_t *parts[FL_MAX_PARTITIONS];
    /* The restore in progress, if any. */
    int32_t restoring;    /* its partition, -1: none */
    fl_part_t *rpart;
    fl_restore_t *rs;
    int64_t restore_t0;
    fl_arena_t *arena;
    uint32_t txn_records;
    uint64_t txn_gen; /* numbers the transactions begun (fl_part_doc_t.txn_gen) */
    int64_t last_round_ms;
    /* Set by pr_loop_stop from any thread or a signal handler, read by the
     * apply thread: a lock-free atomic (async-signal-safe). */
    atomic_bool stopping;
    int fatal; /* the apply thread's own, like everything below */
    bool in_group;                     /* assigned since the last lost assignment */
    int64_t lost_ms;                   /* when it was last lost (0: never) */
    int64_t rebuilds, rebuilds_since_ms; /* producer rebuilds since then */
    _Atomic int healthy; /* running, every partition of the assignment RUNNING */
    fl_kprobe_t *probe;  /* Kafka answers (its own thread) */
};

_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "pr_loop_stop must be async-signal-safe");

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);

/* ---- building --------------------------------------------------------- */

static int topic_names(pr_loop_t *loop, char *errstr, size_t errstr_size)
{
    const char *prefix = loop->cfg->prefix;
    if (fl_topic_name(prefix, FL_TOPIC_COMMANDS, loop->t_commands, sizeof loop->t_commands) ||
        fl_topic_name(prefix, FL_TOPIC_EVENTS, loop->t_events, sizeof loop->t_events) ||
        fl_topic_name(prefix, FL_TOPIC_SNAPSHOTS, loop->t_snapshots, sizeof loop->t_snapshots)) {
        snprintf(errstr, errstr_size, "invalid topic prefix \"%s\"", prefix);
        return -1;
    }
    return 0;
}

/* Refuses to run on topics that do not match: a wrong partition count
 * would route a document to two processors. */
static int check_topics(pr_loop_t *loop, char *errstr, size_t errstr_size)
{
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    fl_topics_spec_default(&spec);
    spec.prefix = loop->cfg->prefix;
    spec.partitions = (int)loop->cfg->partitions;
    if (fl_topics_check(loop->producer, &spec, st, errstr, errstr_size) != 0)
        return -1;
    loop->npartitions = (int)loop->cfg->partitions;
    if (loop->npartitions > FL_MAX_PARTITIONS) {
        snprintf(errstr, errstr_size, "at most %d partitions are supported", FL_MAX_PARTITIONS);
        return -1;
    }
    return 0;
}

void pr_loop_free(pr_loop_t *loop)
{
    if (!loop)
        return;
    /* The group first: its close may revoke, which commits through the
     * rest. */
    fl_kprobe_stop(loop->probe);
    pr_group_free(loop->group);
    fl_restore_free(loop->rs);
    fl_part_free(loop->rpart);
    if (loop->reader)
        rd_kafka_destroy(loop->reader);
    fl_txn_free(loop->txn);
    pr_out_free(loop->out);
    for (int p = 0; p < FL_MAX_PARTITIONS; p++)
        fl_part_free(loop->parts[p]);
    fl_arena_free(loop->arena);
    free(loop);
}

pr_loop_t *pr_loop_new(const pr_config_t *cfg, pr_metrics_t *m, char *errstr,
                       size_t errstr_size)
{
    pr_loop_t *loop = calloc(1, sizeof *loop);
    if (!loop) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    loop->cfg = cfg;
    loop->m = m;
    loop->restoring = -1;
    fl_part_config_default(&loop->part_cfg);
    loop->part_cfg.window_outcomes = (uint32_t)cfg->window_outcomes;
    loop->part_cfg.window_bytes = (size_t)cfg->window_bytes;
    loop->part_cfg.snapshot_every_versions = (uint64_t)cfg->snapshot_every_versions;
    loop->part_cfg.engine.max_state_bytes = (size_t)cfg->max_state_bytes;
    if (topic_names(loop, errstr, errstr_size) != 0)
        goto fail;
    if (!(loop->arena = fl_arena_new(1 << 16))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    /* Each handle from the processor's defaults with the user's kafka.*
     * settings applied last: they win over ours. */
    if (!(loop->out = pr_out_new(cfg, loop->parts, m, errstr, errstr_size)))
        goto fail;
    loop->producer = pr_out_producer(loop->out);
    if (!(loop->group = pr_group_new(cfg, on_rebalance, loop, errstr, errstr_size)))
        goto fail;
    loop->consumer = pr_group_rk(loop->group);
    if (!(loop->reader = fl_reader_consumer_new("processor restore reader", cfg->bootstrap,
                                                "flushline-restore-reader", &cfg->kafka, errstr,
                                                errstr_size)))
        goto fail;
    if (fl_kafka_wait_ready(loop->producer, 15000, errstr, errstr_size) != 0 ||
        check_topics(loop, errstr, errstr_size) != 0)
        goto fail;
    /* Fences any earlier instance with the same transactional.id and
     * aborts what it left open. */
    if (!(loop->txn = fl_txn_new(loop->producer, -1)) ||
        fl_txn_init(loop->txn, INIT_TIMEOUT_MS, errstr, errstr_size) != 0)
        goto fail;
    return loop;
fail:
    pr_loop_free(loop);
    return NULL;
}

void pr_loop_stop(pr_loop_t *loop)
{
    atomic_store(&loop->stopping, true);
}

int pr_loop_healthy(pr_loop_t *loop)
{
    return atomic_load(&loop->healthy) && fl_kprobe_ok(loop->probe);
}

static bool stopping(pr_loop_t *loop)
{
    return atomic_load(&loop->stopping);
}

/* ---- partition states ------------------------------------------------- */

static bool valid_partition(int32_t p)
{
    return p >= 0 && p < FL_MAX_PARTITIONS;
}

/* Every state change goes through here: it keeps nassigned. */
static void set_state(pr_loop_t *loop, int32_t p, slot_state_t state)
{
    loop->nassigned += (state == S_ASSIGNED) - (loop->slots[p].state == S_ASSIGNED);
    loop->slots[p].state = state;
}

/* Pauses or resumes the consumption of partition p of commands. */
static void pause_resume(pr_loop_t *loop, int32_t p, bool pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_add(l, loop->t_commands, p);
    err = pause ? rd_kafka_pause_partitions(loop->consumer, l)
                : rd_kafka_resume_partitions(loop->consumer, l);
    if (err)
        fl_warn("%s %s [%d]: %s", pause ? "pause" : "resume", loop->t_commands, p,
                rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Drops the documents of a running partition. */
static void drop_running(pr_loop_t *loop, int32_t p)
{
    if (!loop->parts[p])
        return;
    fl_gauge_add_int(loop->m->docs, -(int64_t)fl_part_count(loop->parts[p]));
    fl_gauge_clear(pr_metrics_lag(loop->m, p));
    fl_part_free(loop->parts[p]);
    loop->parts[p] = NULL;
}

/* Ends the restore in progress, unfinished. */
static void cancel_restore(pr_loop_t *loop)
{
    fl_restore_free(loop->rs);
    fl_part_free(loop->rpart);
    loop->rs = NULL;
    loop->rpart = NULL;
    loop->restoring = -1;
}

/* Partition p is no longer ours (revoked or lost). */
static void slot_drop(pr_loop_t *loop, int32_t p)
{
    if (!valid_partition(p))
        return;
    if (loop->restoring == p) {
        if (stopping(loop))
            fl_info("restore of partition %d abandoned: draining", p);
        cancel_restore(loop);
    }
    drop_running(loop, p);
    set_state(loop, p, S_NONE);
    loop->slots[p] = (slot_t){.state = S_NONE, .committed = -1};
}

/* After an abort: the documents of every running partition may hold what
 * was not committed. Each goes back to ASSIGNED (paused): it is restored
 * from what Kafka committed and resumes from its committed offset. A
 * restore in progress reads only committed records: it goes on. */
static void rewind_running(pr_loop_t *loop)
{
    for (int32_t p = 0; p < FL_MAX_PARTITIONS; p++) {
        if (loop->slots[p].state != S_RUNNING)
            continue;
        drop_running(loop, p);
        pause_resume(loop, p, true);
        set_state(loop, p, S_ASSIGNED);
        loop->slots[p].must_seek = true;
    }
}

/* ---- transactions ----------------------------------------------------- */

/* The group consumer's fatal error, if any, is our own rejoin after a
 * session timeout (the assignment was lost just before), not another
 * instance with our group.instance.id (pr_loop.h). */
static bool own_rejoin(pr_loop_t *loop, rd_kafka_resp_err_t err)
{
    bool lost = rd_kafka_assignment_lost(loop->consumer) ||
                (loop->lost_ms > 0 &&
                 fl_clock_mono_ms() - loop->lost_ms <= loop->cfg->session_timeout_ms);
    return err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID && lost;
}

/* Whether a fenced (rc FL_TXN_EFENCED) or fatal error is no other
 * instance (pr_loop.h): not a fence when the transaction outlived
 * transaction.timeout.ms (the broker aborted it), any other fatal error of
 * the producer alone (e.g. a sequence out of order after an outage), at
 * most REBUILDS_MAX times a minute; and never with a fatal error of the
 * group consumer other than our own rejoin. */
static bool recoverable(pr_loop_t *loop, int rc)
{
    char why[256];
    int64_t now = fl_clock_mono_ms();
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(loop->consumer, why, sizeof why);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && !own_rejoin(loop, err)) {
        fl_error("group consumer: %s: another instance took our place", why);
        return false;
    }
    if (rc == FL_TXN_EFENCED && !fl_txn_expired(loop->txn, loop->cfg->transaction_timeout_ms))
        return false;
    if (now - loop->rebuilds_since_ms > 60000) {
        loop->rebuilds_since_ms = now;
        loop->rebuilds = 0;
    }
    return ++loop->rebuilds <= REBUILDS_MAX;
}

/* A new producer with the same transactional.id, initialised; every
 * running partition back to ASSIGNED. Fatal when it cannot be done. */
static void rebuild_producer(pr_loop_t *loop, const char *errstr)
{
    char err2[512];
    atomic_store(&loop->healthy, 0);
    fl_warn("%s: the transaction (open %lld ms, transaction.timeout.ms %lld) failed with the "
            "broker away, not by another instance: rebuilding the producer and restoring every "
            "partition from what Kafka committed",
            errstr, (long long)(fl_clock_mono_ms() - fl_txn_started_ms(loop->txn)),
            (long long)loop->cfg->transaction_timeout_ms);
    fl_counter_inc(loop->m->aborts);
    rewind_running(loop);
    fl_txn_free(loop->txn);
    loop->txn = NULL;
    if (pr_out_renew(loop->out, err2, sizeof err2) == 0) {
        loop->producer = pr_out_producer(loop->out);
        loop->txn = fl_txn_new(loop->producer, -1);
    }
    if (!loop->txn || fl_txn_init(loop->txn, INIT_TIMEOUT_MS, err2, sizeof err2) != 0) {
        fl_error("rebuilding the producer: %s; stopping without writing",
                 loop->txn ? err2 : "out of memory");
        loop->fatal = 1;
        return;
    }
    fl_info("producer rebuilt (transactional.id %s); restoring", loop->cfg->transactional_id);
}

/* A failed transactional call: an abort rewinds, a timed-out transaction
 * rebuilds the producer, anything else fenced or fatal stops. */
static void txn_failed(pr_loop_t *loop, int rc, const char *errstr)
{
    if (rc == FL_TXN_EABORTED) {
        fl_warn("%s; transaction aborted, rewinding", errstr);
        fl_counter_inc(loop->m->aborts);
        rewind_running(loop);
    } else if (recoverable(loop, rc)) {
        rebuild_producer(loop, errstr);
    } else {
        fl_error("%s: %s; stopping without writing", errstr, fl_txn_strerror(rc));
        loop->fatal = 1;
    }
}

static int begin_txn(pr_loop_t *loop)
{
    char errstr[512];
    int rc;
    if (fl_txn_is_open(loop->txn))
        return 0;
    if ((rc = fl_txn_begin(loop->txn, errstr, sizeof errstr)) != 0) {
        txn_failed(loop, rc, errstr);
        return -1;
    }
    loop->txn_records = 0;
    loop->txn_gen++;
    return 0;
}

/* Aborts the open transaction after a failed record or a lost assignment. */
static void abort_txn(pr_loop_t *loop)
{
    char errstr[512];
    int rc = fl_txn_abort(loop->txn, errstr, sizeof errstr);
    fl_counter_inc(loop->m->aborts);
    if (rc != 0)
        txn_failed(loop, rc, errstr);
}

/* Snapshots what is due in the running partitions (producer flushed
 * first: exact events offsets). */
static void snapshot_due(pr_loop_t *loop, bool round)
{
    bool any = round;
    for (int p = 0; p < FL_MAX_PARTITIONS && !any; p++)
        any = loop->parts[p] && fl_part_snapshot_due(loop->parts[p]);
    if (!any)
        return;
    rd_kafka_resp_err_t ferr =
        rd_kafka_flush(loop->producer, (int)loop->cfg->transaction_timeout_ms);
    if (ferr) {
        fl_warn("flush before snapshots: %s", rd_kafka_err2str(ferr));
        return;
    }
    for (int p = 0; p < FL_MAX_PARTITIONS; p++) {
        fl_part_t *part = loop->parts[p];
        if (part && (round || fl_part_snapshot_due(part)) &&
            pr_out_snapshots(loop->out, part, round) != 0)
            break;
    }
    if (round)
        loop->last_round_ms = fl_clock_mono_ms();
}

/* The positions to commit: only running partitions (a record of any other
 * was not applied and its offset must not be committed), and only those
 * that moved since our last commit. A transaction that consumed nothing
 * then carries no offsets, only snapshots and checkpoints of committed
 * state, and does not depend on the group's generation: the broker refuses
 * offsets from a stale generation (ILLEGAL_GENERATION), which is what
 * happens to a drain's snapshot round or a revoke's checkpoint while the
 * group is rebalancing. Updates the lag gauges on the way. NULL: none. */
static rd_kafka_topic_partition_list_t *offsets_to_commit(pr_loop_t *loop)
{
    rd_kafka_topic_partition_list_t *all = NULL, *valid;
    if (rd_kafka_assignment(loop->consumer, &all) != 0)
        return NULL;
    rd_kafka_position(loop->consumer, all);
    valid = rd_kafka_topic_partition_list_new(all->cnt > 0 ? all->cnt : 1);
    for (int i = 0; i < all->cnt; i++) {
        int64_t lo, hi, pos = all->elems[i].offset;
        int32_t p = all->elems[i].partition;
        if (pos < 0 || !valid_partition(p) || !loop->parts[p])
            continue;
        /* Lag for /metrics from the cached high watermark (cheap, and once
         * per commit rather than per record). */
        if (rd_kafka_get_watermark_offsets(loop->consumer, loop->t_commands, p, &lo, &hi) == 0 &&
            hi >= pos)
            fl_gauge_set_int(pr_metrics_lag(loop->m, p), hi - pos);
        if (pos != loop->slots[p].committed)
            rd_kafka_topic_partition_list_add(valid, all->elems[i].topic, p)->offset = pos;
    }
    rd_kafka_topic_partition_list_destroy(all);
    return valid;
}

static int send_offsets(pr_loop_t *loop, const rd_kafka_topic_partition_list_t *offsets,
                        char *errstr, size_t errstr_size)
{
    rd_kafka_consumer_group_metadata_t *cgmd;
    int rc;
    if (!offsets || offsets->cnt == 0)
        return 0;
    cgmd = rd_kafka_consumer_group_metadata(loop->consumer);
    rc = fl_txn_send_offsets(loop->txn, offsets, cgmd, errstr, errstr_size);
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    return rc;
}

/* Commits the open transaction with the consumer's positions, plus the
 * snapshots that are due; force_round snapshots every dirty document (and
 * opens a transaction for it when none is). 0 or -1 (aborted and
 * rewinding, or fatal). */
static int commit_txn(pr_loop_t *loop, bool force_round)
{
    rd_kafka_topic_partition_list_t *offsets;
    char errstr[512];
    bool round = force_round ||
                 fl_clock_mono_ms() - loop->last_round_ms >= loop->cfg->snapshot_interval_ms;
    int64_t t0 = fl_clock_mono_us();
    int rc;

    if (!fl_txn_is_open(loop->txn) && !force_round)
        return 0;
    if (begin_txn(loop) != 0)
        return -1;
    snapshot_due(loop, round);
    offsets = offsets_to_commit(loop);
    rc = send_offsets(loop, offsets, errstr, sizeof errstr);
    if (rc == 0)
        rc = fl_txn_commit(loop->txn, errstr, sizeof errstr);
    if (rc == 0) {
        for (int i = 0; offsets && i < offsets->cnt; i++)
            loop->slots[offsets->elems[i].partition].committed = offsets->elems[i].offset;
        fl_counter_inc(loop->m->commits);
        fl_counter_add(loop->m->commit_us, (uint64_t)(fl_clock_mono_us() - t0));
    } else {
        txn_failed(loop, rc, errstr);
    }
    if (offsets)
        rd_kafka_topic_partition_list_destroy(offsets);
    return rc == 0 ? 0 : -1;
}

/* ---- applying --------------------------------------------------------- */

/* Produces what the task emitted, each with the document's committed
 * version in a header. 0 or -1 (abort). */
static int produce_emitted(pr_loop_t *loop, int32_t p, fl_task_out_t *out, uint64_t committed)
{
    int rc = 0;
    for (uint32_t i = 0; i < out->nemit; i++) {
        fl_task_emit_t *e = &out->emit[i];
        /* A held record stays the window's: librdkafka copies it. Else it
         * takes the record, also when it fails. */
        if (rc == 0)
            rc = pr_out_event(loop->out, p, e->key, e->rec, e->len, e->held,
                              out->kind == FL_TASK_FLUSH || out->kind == FL_TASK_RULES,
                              committed);
        else if (!e->held)
            free(e->rec);
    }
    out->nemit = 0;
    return rc;
}

/* A rules record the task put in force (produced to events like an
 * outcome) or skipped (counted and logged; the rule sets in force stay). */
static int put_rules(pr_loop_t *loop, const rd_kafka_message_t *msg, fl_task_out_t *out)
{
    if (out->rules_bad) {
        fl_counter_inc(loop->m->rules_bad);
        fl_warn("skipped bad rules record %s [%d] @%lld: %s; the rules in force stay",
                loop->t_commands, msg->partition, (long long)msg->offset, out->reason);
        return 0;
    }
    fl_counter_inc(loop->m->rules_records);
    fl_info("rules record %s [%d] @%lld in force", loop->t_commands, msg->partition,
            (long long)msg->offset);
    /* not a document's record: no committed version to carry */
    return produce_emitted(loop, msg->partition, out, 0);
}

/* One commands record of a running partition. Bad records are logged,
 * counted and skipped: they never stop the partition. -1 when the
 * transaction must be aborted (produce failure, out of memory). */
static int apply_record(pr_loop_t *loop, fl_part_t *part, const rd_kafka_message_t *msg)
{
    fl_task_rec_t rec;
    fl_task_out_t out;
    uint64_t committed;
    int rc;

    fl_task_rec_of(msg, &rec);
    if (begin_txn(loop) != 0)
        return -1;
    loop->txn_records++;
    committed = fl_part_txn_base(part, rec.key, loop->txn_gen);
    if ((rc = fl_task_apply(part, &rec, 0, loop->arena, &out)) != 0) {
        fl_error("%s [%d] @%lld: %s", loop->t_commands, msg->partition, (long long)msg->offset,
                 out.reason);
        return -1;
    }
    if (out.kind == FL_TASK_BAD) {
        fl_counter_inc(loop->m->bad_records);
        fl_warn("skipped bad record %s [%d] @%lld: %s", loop->t_commands, msg->partition,
                (long long)msg->offset, out.reason);
        return 0;
    }
    if (out.kind == FL_TASK_RULES)
        return put_rules(loop, msg, &out);
    if (out.created) {
        fl_gauge_add_int(loop->m->docs, 1);
        fl_part_txn_created(part, rec.key, loop->txn_gen);
    }
    if (produce_emitted(loop, msg->partition, &out, committed) != 0)
        return -1;
    if (out.kind == FL_TASK_FLUSH && rec.ts_ms > 0)
        fl_histogram_observe(loop->m->record_to_outcome_ms,
                             (double)(fl_clock_wall_ms() - rec.ts_ms));
    pr_metrics_count_task(loop->m, &out);
    return 0;
}

static void on_message(pr_loop_t *loop, const rd_kafka_message_t *msg)
{
    int32_t p = msg->partition;
    fl_part_t *part = valid_partition(p) ? loop->parts[p] : NULL;

    fl_counter_inc(loop->m->records_in);
    if (!part) {
        /* Fetched before the partition was paused, or after an abort sent
         * it back to restoring: not applied, its offset never committed,
         * and the partition resumes from its committed offset. */
        if (valid_partition(p) && loop->slots[p].state != S_NONE)
            loop->slots[p].must_seek = true;
        return;
    }
    if (apply_record(loop, part, msg) != 0 && fl_txn_is_open(loop->txn) && !loop->fatal) {
        /* The record may be half-produced: abort, rewind, redo. */
        abort_txn(loop);
        if (!loop->fatal)
            rewind_running(loop);
    }
}

/* ---- restoring -------------------------------------------------------- */

static bool restore_should_stop(void *opaque)
{
    return stopping(opaque);
}

/* Starts restoring the first ASSIGNED partition, if any. */
static void restore_next(pr_loop_t *loop)
{
    fl_restore_spec_t spec = {.rk = loop->reader,
                              .snapshots = loop->t_snapshots,
                              .events = loop->t_events,
                              .should_stop = restore_should_stop,
                              .opaque = loop};
    int32_t p = 0;
    if (loop->nassigned == 0)
        return;
    while (p < FL_MAX_PARTITIONS && loop->slots[p].state != S_ASSIGNED)
        p++;
    if (p == FL_MAX_PARTITIONS)
        return;
    loop->restore_t0 = fl_clock_mono_ms();
    spec.deadline_ms = loop->restore_t0 + loop->cfg->restore_timeout_ms;
    if (!(loop->rpart = fl_part_new(p, &loop->part_cfg)) ||
        !(loop->rs = fl_restore_new(loop->rpart, &spec))) {
        fl_error("restore of partition %d: out of memory", p);
        cancel_restore(loop);
        loop->fatal = 1;
        return;
    }
    loop->restoring = p;
    set_state(loop, p, S_RESTORING);
    fl_info("restoring partition %d", p);
}

/* Consumption of a restored partition resumes, from its committed offset
 * when records were fetched meanwhile. 0 or -1 (fatal). */
static int resume(pr_loop_t *loop, int32_t p)
{
    char errstr[512];
    if (loop->slots[p].must_seek &&
        fl_kafka_seek_committed(loop->consumer, loop->t_commands, p, 30000, errstr,
                                sizeof errstr) != 0) {
        fl_error("%s", errstr);
        return -1;
    }
    loop->slots[p].must_seek = false;
    pause_resume(loop, p, false);
    return 0;
}

static void restore_done(pr_loop_t *loop)
{
    int32_t p = loop->restoring;
    fl_part_t *part = loop->rpart;
    int64_t ms = fl_clock_mono_ms() - loop->restore_t0;
    uint64_t events = fl_restore_events(loop->rs);

    fl_info("partition %d restored: %u documents, %llu events from offset %lld in %lld ms", p,
            fl_part_count(part), (unsigned long long)events,
            (long long)fl_restore_checkpoint(loop->rs), (long long)ms);
    fl_restore_free(loop->rs);
    loop->rs = NULL;
    loop->rpart = NULL;
    loop->restoring = -1;
    loop->parts[p] = part;
    set_state(loop, p, S_RUNNING);
    fl_gauge_add_int(loop->m->docs, (int64_t)fl_part_count(part));
    fl_gauge_set_int(pr_metrics_lag(loop->m, p), 0);
    fl_counter_inc(loop->m->restores);
    fl_counter_add(loop->m->events_restored, events);
    fl_counter_add(loop->m->restore_ms, (uint64_t)ms);
    if (resume(loop, p) != 0)
        loop->fatal = 1;
}

/* One bounded step of restoring (starting the next one when none runs). */
static void restore_turn(pr_loop_t *loop)
{
    char errstr[512] = "";
    int rc;
    if (!loop->rs)
        restore_next(loop);
    if (!loop->rs)
        return;
    rc = fl_restore_step(loop->rs, RESTORE_STEP_MS, errstr, sizeof errstr);
    if (rc == FL_READER_MORE)
        return;
    if (rc == 0) {
        restore_done(loop);
        return;
    }
    if (rc == FL_READER_ESTOPPED) {
        /* Interrupted by SIGTERM: not an error, the drain follows. */
        fl_info("restore of partition %d abandoned: draining", loop->restoring);
        set_state(loop, loop->restoring, S_ASSIGNED);
        cancel_restore(loop);
        return;
    }
    fl_error("restore of partition %d failed: %s", loop->restoring,
             errstr[0] ? errstr : fl_history_strerror(rc));
    set_state(loop, loop->restoring, S_ASSIGNED);
    cancel_restore(loop);
    loop->fatal = 1;
}

static bool restore_pending(const pr_loop_t *loop)
{
    return loop->rs || loop->nassigned > 0;
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

/* Records an assignment: each partition ASSIGNED and paused until it is
 * restored (in the loop). Acknowledged in every case, also while draining
 * or after a fatal error: a close waits for the acknowledgement before it
 * can leave the group, and then revokes what was not restored at once. */
static rd_kafka_error_t *on_assign(pr_loop_t *loop, rd_kafka_t *rk,
                                   rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *rerr;
    char list[256];
    /* The assignor state exists from now on: the consumer can be destroyed
     * safely (see pr_group.c). */
    pr_group_assigned(loop->group);
    loop->in_group = true;
    fl_info("rebalance: assigned %d partition(s) [%s]%s", parts->cnt,
            parts_str(parts, list, sizeof list),
            stopping(loop) ? " while draining: not restored" : "");
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (!valid_partition(p)) {
            fl_error("partition %d is beyond the %d supported", p, FL_MAX_PARTITIONS);
            loop->fatal = 1;
            continue;
        }
        set_state(loop, p, S_ASSIGNED);
        loop->slots[p].committed = -1;
        loop->slots[p].must_seek = false;
    }
    rerr = rd_kafka_incremental_assign(rk, parts);
    if (!rerr && rd_kafka_pause_partitions(rk, parts) != 0)
        fl_warn("rebalance: pausing the assigned partitions failed");
    return rerr;
}

/* The revoke-time commit: snapshot the revoked running partitions' dirty
 * documents with a checkpoint, and commit with their offsets. */
static void handover(pr_loop_t *loop, const rd_kafka_topic_partition_list_t *parts)
{
    if (loop->fatal || begin_txn(loop) != 0)
        return;
    rd_kafka_resp_err_t ferr = rd_kafka_flush(loop->producer, 30000);
    for (int i = 0; i < parts->cnt && !ferr; i++) {
        int32_t p = parts->elems[i].partition;
        if (valid_partition(p) && loop->parts[p])
            pr_out_snapshots(loop->out, loop->parts[p], true);
    }
    commit_txn(loop, false);
}

static rd_kafka_error_t *on_revoke(pr_loop_t *loop, rd_kafka_t *rk,
                                   rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(rk);
    rd_kafka_error_t *rerr;
    char list[256];
    fl_info("rebalance: %s %d partition(s) [%s]", lost ? "lost" : "revoking", parts->cnt,
            parts_str(parts, list, sizeof list));
    if (lost) {
        loop->in_group = false; /* until the group assigns again */
        loop->lost_ms = fl_clock_mono_ms();
    }
    if (lost && fl_txn_is_open(loop->txn))
        abort_txn(loop); /* someone else may own them already: write nothing for them */
    else if (!lost)
        handover(loop, parts);
    for (int i = 0; i < parts->cnt; i++)
        slot_drop(loop, parts->elems[i].partition);
    rerr = rd_kafka_incremental_unassign(rk, parts);
    /* After a lost assignment the abort dropped every partition's
     * uncommitted work, not just the lost ones': rewind the rest. */
    if (lost && !loop->fatal)
        rewind_running(loop);
    return rerr;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pr_loop_t *loop = opaque;
    rd_kafka_error_t *rerr = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rerr = on_assign(loop, rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        rerr = on_revoke(loop, rk, parts);
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

/* The group consumer failed fatally: our own rejoin (pr_loop.h) rebuilds it. */
static void consumer_fatal(pr_loop_t *loop)
{
    char why[512];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(loop->consumer, why, sizeof why);
    if (!own_rejoin(loop, err)) {
        fl_error("group consumer: %s; stopping without writing", why);
        loop->fatal = 1;
        return;
    }
    fl_warn("group consumer: %s: our own rejoin after a session timeout; rebuilding it", why);
    if (fl_txn_is_open(loop->txn))
        abort_txn(loop);
    for (int32_t p = 0; p < FL_MAX_PARTITIONS; p++)
        if (loop->slots[p].state != S_NONE)
            slot_drop(loop, p);
    loop->in_group = false;
    loop->lost_ms = 0;
    if (pr_group_renew(loop->group, loop->t_commands, why, sizeof why) != 0) {
        fl_error("rebuilding the group consumer: %s; stopping", why);
        loop->fatal = 1;
        return;
    }
    loop->consumer = pr_group_rk(loop->group);
}

/* Quiet (no transaction open): snapshot what changed since the last round. */
static void quiet_round(pr_loop_t *loop)
{
    bool dirty = false;
    for (int p = 0; p < FL_MAX_PARTITIONS && !dirty; p++)
        dirty = loop->parts[p] && fl_part_dirty(loop->parts[p]);
    if (dirty)
        commit_txn(loop, true);
    else
        loop->last_round_ms = fl_clock_mono_ms();
}

/* One turn: a record (or the rebalance callbacks), a restore step, a
 * commit or a snapshot round when due. */
static void turn(pr_loop_t *loop)
{
    bool restoring = restore_pending(loop);
    int64_t now;
    int wait = restoring ? 0 : 100;
    if (fl_txn_is_open(loop->txn) && !restoring) {
        int64_t left =
            fl_txn_started_ms(loop->txn) + loop->cfg->commit_interval_ms - fl_clock_mono_ms();
        wait = left < 0 ? 0 : (int)left;
    }
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(loop->consumer, wait);
    if (msg) {
        rd_kafka_resp_err_t err = msg->err;
        if (!err)
            on_message(loop, msg);
        else if (err != RD_KAFKA_RESP_ERR__PARTITION_EOF && err != RD_KAFKA_RESP_ERR__FATAL)
            fl_warn("consumer: %s", rd_kafka_message_errstr(msg));
        rd_kafka_message_destroy(msg);
        if (err == RD_KAFKA_RESP_ERR__FATAL)
            consumer_fatal(loop);
    }
    if (loop->fatal)
        return;
    rd_kafka_poll(loop->producer, 0);
    if (restoring && !loop->fatal && !stopping(loop))
        restore_turn(loop);
    now = fl_clock_mono_ms();
    if (fl_txn_is_open(loop->txn) &&
        (now - fl_txn_started_ms(loop->txn) >= loop->cfg->commit_interval_ms ||
         loop->txn_records >= (uint32_t)loop->cfg->commit_max_records))
        commit_txn(loop, false);
    else if (!fl_txn_is_open(loop->txn) &&
             now - loop->last_round_ms >= loop->cfg->snapshot_interval_ms)
        quiet_round(loop);
    /* ready: the group gave us an assignment and all of it runs */
    atomic_store(&loop->healthy,
                 loop->in_group && !restore_pending(loop) && !loop->fatal && !stopping(loop));
}

/* Commit what is open with a full snapshot round, then leave the group
 * (the revoke finds nothing dirty and checkpoints). Whatever the rebalance
 * state, this ends in exit 0 unless Kafka says fatal (fenced): a
 * transaction that had to be aborted on the way leaves its records to the
 * next owner of their partitions, which is no error. */
static int drain(pr_loop_t *loop)
{
    fl_info("draining");
    if (commit_txn(loop, true) != 0 && !loop->fatal)
        fl_warn("draining: the last transaction was aborted; the next owner of its partitions "
                "applies its records");
    if (!loop->fatal)
        pr_group_close(loop->group);
    if (loop->fatal) {
        fl_error("fatal error while draining; nothing more was written");
        return 1;
    }
    rd_kafka_flush(loop->producer, 10000);
    fl_info("stopped cleanly");
    return 0;
}

int pr_loop_run(pr_loop_t *loop)
{
    if (stopping(loop)) {
        /* Stopped while starting: nothing joined, nothing to drain. */
        fl_info("stopped before processing anything");
        return 0;
    }
    if (pr_group_subscribe(loop->group, loop->t_commands) != 0)
        return 1;
    loop->last_round_ms = fl_clock_mono_ms();
    /* ready once the assignment runs (turn) and while Kafka answers */
    if (!(loop->probe = fl_kprobe_start(loop->reader, loop->t_commands, "the processor",
                                        PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS))) {
        fl_error("starting the Kafka probe: out of memory");
        return 1;
    }
    fl_info("processing %s as %s (group %s)", loop->t_commands, loop->cfg->transactional_id,
            loop->cfg->group_id);
    while (!stopping(loop) && !loop->fatal)
        turn(loop);
    atomic_store(&loop->healthy, 0);
    if (loop->fatal) {
        fl_error("stopped on a fatal error; nothing more was written");
        return 1;
    }
    return drain(loop);
}
