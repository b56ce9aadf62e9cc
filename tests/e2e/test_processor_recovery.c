/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Processor recovery against the real broker, with the daemon as separate
 * processes:
 * - crash: kill -9 the processor at random moments (10 times) during a
 *   stream of flushes that lasts until the last kill, restarting it each
 *   time, each kill after progress since the previous restart;
 * - rebalance: two processors share the partitions; one is stopped with
 *   SIGTERM mid-stream and the other takes its partitions over, then it
 *   comes back.
 * Afterwards every flush has exactly one outcome in read_committed events,
 * equal to an in-process replay of commands in offset order (so nothing was
 * applied twice or lost), versions are contiguous, and the snapshots
 * written on the final SIGTERM carry the model's digests.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fl_gen.h"
#include "fl_ktest.h"
#include "fl_model.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

#define PARTITIONS 4
#define CLIENTS 10
#define DOCS 12

static const char *bootstrap;

typedef struct stream_s {
    const char *prefix;
    int flushes_per_client; /* 0: until stop */
    int pace_us;            /* between rounds of CLIENTS flushes */
    _Atomic long produced;
    _Atomic int done;
    _Atomic int stop;
    int failed;
} stream_t;

static void *stream_main(void *arg)
{
    stream_t *st = arg;
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    static uint64_t seqs[CLIENTS][DOCS];
    uint8_t cids[CLIENTS][FL_CLIENT_ID_LEN];
    char docs[DOCS][32];
    fl_gen_t g;
    memset(seqs, 0, sizeof seqs);
    fl_gen_seed(&g, 7);
    for (int d = 0; d < DOCS; d++)
        snprintf(docs[d], sizeof docs[d], "acme/r-%d", d);
    for (int c = 0; c < CLIENTS; c++)
        fl_gen_client_id(cids[c], (uint32_t)(100 + c));
    for (int s = 0; (!st->flushes_per_client || s < st->flushes_per_client) &&
                    !atomic_load(&st->stop) && rk;
         s++) {
        for (int c = 0; c < CLIENTS; c++) {
            fl_flush_t f;
            int d = (int)(fl_gen_next(&g) % DOCS);
            fl_arena_reset(arena);
            fl_gen_flush(&g, arena, docs[d], cids[c], ++seqs[c][d], 5, &f);
            if (fl_ktest_produce_flush(rk, st->prefix, &f, "u", "gw-e2e", (uint64_t)c) != 0)
                st->failed = 1;
            else
                atomic_fetch_add(&st->produced, 1);
        }
        rd_kafka_poll(rk, 0);
        struct timespec ts = {0, (long)st->pace_us * 1000};
        nanosleep(&ts, NULL);
    }
    if (!rk || rd_kafka_flush(rk, 60000) != 0)
        st->failed = 1;
    if (rk)
        rd_kafka_destroy(rk);
    fl_arena_free(arena);
    atomic_store(&st->done, 1);
    return NULL;
}

static int start(fl_proc_t *proc, const char *prefix, const char *name)
{
    char log[512], txid[160], group[160], inst[200];
    snprintf(log, sizeof log, "%s/tests/%s-%s.log", getenv("FL_BINARY_DIR"), prefix, name);
    snprintf(txid, sizeof txid, "%s-%s", prefix, name);
    snprintf(group, sizeof group, "%s-processors", prefix);
    /* Static membership: a restarted instance takes its partitions back at
     * once instead of waiting for the session of the killed one to expire. */
    snprintf(inst, sizeof inst, "%s", txid);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", txid, "--http.port", "-1",
                          "--snapshot.every.versions", "50", "--snapshot.interval.ms", "500",
                          "--group.instance.id", inst, "--session.timeout.ms", "6000", NULL};
    return fl_proc_start(proc, "flushline-processor", args, log);
}

typedef struct outcomes_ctx_s {
    const char *prefix;
    long want;
    fl_proc_t *procs[2];
} outcomes_ctx_t;

static int count_outcome(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    long *n = opaque;
    if (memmem(msg->payload, msg->len, "\xa7outcome", 8))
        (*n)++;
    return 0;
}

static bool all_answered(void *arg)
{
    outcomes_ctx_t *w = arg;
    long n = 0;
    for (int i = 0; i < 2; i++)
        if (w->procs[i] && !fl_proc_alive(w->procs[i]))
            return true; /* a processor died: stop waiting, the test fails */
    if (fl_ktest_read_all(bootstrap, w->prefix, FL_TOPIC_EVENTS, count_outcome, &n) < 0)
        return false;
    return n >= w->want;
}

/* Waits for every flush to be answered, drains the processors with SIGTERM
 * and checks the history against the model. */
static int finish_and_check(const char *prefix, stream_t *st, fl_proc_t **procs, int nprocs)
{
    outcomes_ctx_t w = {.prefix = prefix, .want = atomic_load(&st->produced)};
    fl_model_report_t rep;
    int rc = -1;
    for (int i = 0; i < nprocs; i++)
        w.procs[i] = procs[i];
    if (!fl_wait_until(all_answered, &w, 240000)) {
        fprintf(stderr, "not every flush was answered in time\n");
        goto dump;
    }
    for (int i = 0; i < nprocs; i++) {
        if (!fl_proc_alive(procs[i])) {
            fprintf(stderr, "processor %d died\n", i);
            goto dump;
        }
        fl_proc_signal(procs[i], SIGTERM);
    }
    for (int i = 0; i < nprocs; i++) {
        int s = fl_proc_wait(procs[i], 90000);
        if (s != 0) {
            fprintf(stderr, "processor %d exited with %d after SIGTERM\n", i, s);
            goto dump;
        }
    }
    fl_model_t *m = fl_model_check(bootstrap, prefix, &rep);
    if (!m)
        goto dump;
    printf("produced %ld, commands %ld, outcomes %ld, applied commands %ld, docs %ld; "
           "mismatches %ld missing %ld extra %ld gaps %ld\n",
           atomic_load(&st->produced), rep.commands, rep.outcomes, rep.applied_cmds, rep.docs,
           rep.mismatches, rep.missing, rep.extra, rep.gaps);
    long badsnap = fl_model_check_snapshots(m, bootstrap, prefix);
    fl_model_free(m);
    if (rep.commands == atomic_load(&st->produced) && rep.outcomes == rep.commands &&
        rep.mismatches == 0 && rep.missing == 0 && rep.extra == 0 && rep.gaps == 0 &&
        badsnap == 0 && rep.applied_cmds > 0)
        return 0;
    fprintf(stderr, "model check failed (bad snapshots %ld)\n", badsnap);
dump:
    for (int i = 0; i < nprocs; i++)
        fl_proc_dump_log(procs[i], 30);
    return rc;
}

typedef struct progress_ctx_s {
    const char *prefix;
    fl_proc_t *proc;
    long above, seen;
} progress_ctx_t;

static bool made_progress(void *arg)
{
    progress_ctx_t *pc = arg;
    long n = 0;
    if (!fl_proc_alive(pc->proc))
        return true;
    if (fl_ktest_read_all(bootstrap, pc->prefix, FL_TOPIC_EVENTS, count_outcome, &n) < 0)
        return false;
    pc->seen = n;
    return n >= pc->above;
}

static void test_kill9_ten_times(void)
{
    static char prefix[96]; /* the stream thread reads it */
    static fl_proc_t proc;
    /* static: a failed assert returns while the stream thread still runs.
     * The stream goes on until the tenth kill is done (however long the
     * restarts take on a busy machine): each kill waits for progress, and
     * a stream that had ended could give none. */
    static stream_t st = {.flushes_per_client = 0, .pace_us = 25000};
    pthread_t th;
    fl_gen_t g;
    unsigned seed = (unsigned)time(NULL);
    fl_proc_t *procs[1] = {&proc};

    fl_test_unique("fltest-crash", prefix, sizeof prefix);
    st.prefix = prefix;
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, PARTITIONS), 0);
    ASSERT_EQ(start(&proc, prefix, "p1"), 0);
    ASSERT_EQ(pthread_create(&th, NULL, stream_main, &st), 0);
    fl_gen_seed(&g, seed);
    printf("kill seed %u\n", seed);
    long answered = 0;
    for (int k = 0; k < 10; k++) {
        /* Let the processor commit some progress first, so that every
         * restart has committed state to restore and an open transaction
         * to abort; then kill it at a random moment 0..800 ms later. */
        progress_ctx_t pc = {.prefix = prefix, .proc = &proc, .above = answered + 40};
        if (!fl_wait_until(made_progress, &pc, 60000) || !fl_proc_alive(&proc)) {
            atomic_store(&st.stop, 1);
            fl_proc_dump_log(&proc, 30);
            FL_FAIL_("no progress before kill %d (answered %ld, produced %ld)", k, pc.seen,
                     atomic_load(&st.produced));
        }
        answered = pc.seen;
        long ms = (long)(fl_gen_next(&g) % 800);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* the moment itself is what is random, not a wait for a condition */
        fl_proc_kill(&proc);
        if (start(&proc, prefix, "p1") != 0) {
            atomic_store(&st.stop, 1);
            FL_FAIL_("restart %d", k);
        }
    }
    printf("killed 10 times; %ld flushes answered before the last kill\n", answered);
    atomic_store(&st.stop, 1);
    pthread_join(th, NULL);
    ASSERT_EQ(st.failed, 0);
    ASSERT_EQ(finish_and_check(prefix, &st, procs, 1), 0);
}

static void test_rebalance(void)
{
    static char prefix[96]; /* the stream thread reads it */
    static fl_proc_t a, b;
    static stream_t st = {.flushes_per_client = 400, .pace_us = 15000};
    pthread_t th;
    fl_proc_t *procs[2] = {&a, &b};

    fl_test_unique("fltest-rebal", prefix, sizeof prefix);
    st.prefix = prefix;
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, PARTITIONS), 0);
    ASSERT_EQ(start(&a, prefix, "a"), 0);
    ASSERT_EQ(start(&b, prefix, "b"), 0);
    ASSERT_EQ(pthread_create(&th, NULL, stream_main, &st), 0);
    /* Mid-stream: stop a cleanly; b must take over its partitions. */
    while (atomic_load(&st.produced) < 1200 && !atomic_load(&st.done)) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ASSERT_EQ(fl_proc_signal(&a, SIGTERM), 0);
    ASSERT_EQ(fl_proc_wait(&a, 60000), 0);
    /* Later: a comes back and the partitions are shared again. */
    while (atomic_load(&st.produced) < 2800 && !atomic_load(&st.done)) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ASSERT_EQ(start(&a, prefix, "a"), 0);
    pthread_join(th, NULL);
    ASSERT_EQ(st.failed, 0);
    ASSERT_EQ(finish_and_check(prefix, &st, procs, 2), 0);
    ASSERT_TRUE(fl_proc_log_contains(&b, "restored"));
}

typedef struct find_ctx_s {
    const char *prefix;
    fl_arena_t *arena;
    uint64_t seq;
    int found, dup;
    fl_proc_t *proc;
} find_ctx_t;

static int on_find(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    find_ctx_t *fc = opaque;
    fl_wire_msg_t wm;
    char errstr[128];
    fl_arena_reset(fc->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, fc->arena, &wm, errstr, sizeof errstr) == 0 &&
        wm.type == FL_WT_REC_OUTCOME && wm.u.outcome.outcome.seq == fc->seq &&
        wm.u.outcome.outcome.doc.len == 11 && memcmp(wm.u.outcome.outcome.doc.ptr, "acme/dd-doc", 11) == 0) {
        fc->found++;
        fc->dup += wm.u.outcome.outcome.duplicate;
    }
    return 0;
}

static bool outcome_count(void *arg)
{
    find_ctx_t *fc = arg;
    fc->found = fc->dup = 0;
    return fl_ktest_read_all(bootstrap, fc->prefix, FL_TOPIC_EVENTS, on_find, fc) >= 0 &&
           fc->found >= 1;
}

/* The highest events offset of any outcome in partition `part`, and of
 * any checkpoint for it. */
typedef struct cp_ctx_s {
    const char *prefix;
    int32_t part;
    fl_arena_t *arena;
    int64_t last_outcome, checkpoint;
    long outcomes;
} cp_ctx_t;

static int on_cp_event(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    cp_ctx_t *c = opaque;
    if (p == c->part && memmem(msg->payload, msg->len, "\xa7outcome", 8)) {
        c->outcomes++;
        if (off > c->last_outcome)
            c->last_outcome = off;
    }
    return 0;
}

static int on_cp_snapshot(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    cp_ctx_t *c = opaque;
    fl_wire_msg_t wm;
    char errstr[128];
    fl_arena_reset(c->arena);
    if (p == c->part &&
        fl_wire_decode_record(msg->payload, msg->len, c->arena, &wm, errstr, sizeof errstr) == 0 &&
        wm.type == FL_WT_REC_CHECKPOINT && (int64_t)wm.u.checkpoint.events_offset > c->checkpoint)
        c->checkpoint = (int64_t)wm.u.checkpoint.events_offset;
    return 0;
}

static bool two_outcomes(void *arg)
{
    cp_ctx_t *c = arg;
    c->outcomes = 0;
    return fl_ktest_read_all(bootstrap, c->prefix, FL_TOPIC_EVENTS, on_cp_event, c) >= 0 &&
           c->outcomes >= 2;
}

static bool checkpoint_past_outcomes(void *arg)
{
    cp_ctx_t *c = arg;
    return fl_ktest_read_all(bootstrap, c->prefix, FL_TOPIC_SNAPSHOTS, on_cp_snapshot, c) >= 0 &&
           c->checkpoint > c->last_outcome;
}

/* A rejected flush consumes its seq. After a checkpoint has moved past its
 * outcome and the processor is killed, the restored dedup table must still
 * answer a resend of that seq as a duplicate instead of applying it. */
static void test_dedup_survives_restore(void)
{
    char prefix[96];
    fl_proc_t proc = {0};
    rd_kafka_t *rk;
    uint8_t c1[FL_CLIENT_ID_LEN], c2[FL_CLIENT_ID_LEN];
    fl_cmd_t rm = {.op = FL_OP_REMOVE, .path = FL_SLICE("/a")};
    fl_cmd_t add = {.op = FL_OP_ADD, .path = FL_SLICE("/a"), .has_value = true};
    fl_flush_t f1 = {.doc = FL_SLICE("acme/dd-doc"), .seq = 1, .ncmds = 1, .cmds = &rm};
    fl_flush_t f2 = {.doc = FL_SLICE("acme/dd-doc"), .seq = 1, .ncmds = 1, .cmds = &add};
    find_ctx_t fc = {.arena = fl_arena_new(1 << 14), .seq = 1};
    fl_model_report_t rep;

    add.value = fl_value_int(1);
    fl_gen_client_id(c1, 501);
    fl_gen_client_id(c2, 502);
    memcpy(f1.client_id, c1, sizeof c1);
    memcpy(f2.client_id, c2, sizeof c2);
    fl_test_unique("fltest-dd", prefix, sizeof prefix);
    fc.prefix = prefix;
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, PARTITIONS), 0);
    ASSERT_EQ(start(&proc, prefix, "p1"), 0);
    ASSERT_TRUE((rk = fl_ktest_producer(bootstrap)) != NULL);
    /* seq 1 of c1: remove /a fails (path_not_found) but is recorded */
    ASSERT_EQ(fl_ktest_produce_flush(rk, prefix, &f1, "u", "gw", 1), 0);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    ASSERT_TRUE(fl_wait_until(outcome_count, &fc, 60000));
    /* Activity on another document of the same partition makes the next
     * snapshot round write a checkpoint past the rejected flush's outcome. */
    char other[64];
    int32_t part = rd_kafka_msg_partitioner_murmur2_random(NULL, "acme/dd-doc", 11, PARTITIONS,
                                                           NULL, NULL);
    for (int i = 0;; i++) {
        snprintf(other, sizeof other, "acme/dd-other-%d", i);
        if (rd_kafka_msg_partitioner_murmur2_random(NULL, other, strlen(other), PARTITIONS, NULL,
                                                    NULL) == part)
            break;
    }
    fl_flush_t f3 = {.doc = {other, strlen(other)}, .seq = 1, .ncmds = 1, .cmds = &add};
    memcpy(f3.client_id, c2, sizeof c2);
    ASSERT_EQ(fl_ktest_produce_flush(rk, prefix, &f3, "u", "gw", 3), 0);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    /* wait for a snapshot round (500 ms) to checkpoint past both outcomes */
    cp_ctx_t cp = {.prefix = prefix, .part = part, .arena = fc.arena, .last_outcome = -1,
                   .checkpoint = -1};
    ASSERT_TRUE(fl_wait_until(two_outcomes, &cp, 60000));
    ASSERT_TRUE(fl_wait_until(checkpoint_past_outcomes, &cp, 30000));
    fl_proc_kill(&proc);
    ASSERT_EQ(start(&proc, prefix, "p1"), 0);
    /* c2 creates /a; then c1 resends its seq 1 */
    ASSERT_EQ(fl_ktest_produce_flush(rk, prefix, &f2, "u", "gw", 2), 0);
    ASSERT_EQ(fl_ktest_produce_flush(rk, prefix, &f1, "u", "gw", 1), 0);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    fc.seq = 1;
    stream_t st = {.produced = 4};
    fl_proc_t *procs[1] = {&proc};
    ASSERT_EQ(finish_and_check(prefix, &st, procs, 1), 0);
    /* the resend was answered as a duplicate: /a is still there */
    fl_model_t *m = fl_model_check(bootstrap, prefix, &rep);
    ASSERT_TRUE(m != NULL);
    fl_doc_t *doc = fl_model_doc(m, "acme/dd-doc");
    ASSERT_TRUE(doc != NULL);
    ASSERT_EQ(fl_doc_version(doc), 1); /* c2's add; the resent remove applied nothing */
    ASSERT_TRUE(fl_map_get(fl_doc_state(doc), "a", 1) != NULL);
    fl_model_free(m);
    fc.found = fc.dup = 0;
    ASSERT_TRUE(outcome_count(&fc));
    ASSERT_EQ(fc.found, 3); /* c1 seq 1, c2 seq 1, c1 seq 1 again */
    ASSERT_EQ(fc.dup, 1);
    fl_arena_free(fc.arena);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    RUN(test_kill9_ten_times);
    RUN(test_rebalance);
    RUN(test_dedup_survives_restore);
    return fl_test_done();
}
