/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SIGTERM drains of flushline-processor against the real broker.
 * - sync_pending: the state in which librdkafka 2.0.2 aborts when a
 *   cooperative-sticky consumer is destroyed (its JoinGroup was answered,
 *   its SyncGroup was not). Made deterministic by holding the group's
 *   leader, a consumer of this test, inside its log callback right after
 *   it was elected: the leader sends no SyncGroup, so the processor waits
 *   for its assignment until the test releases the leader.
 * - fifty: three processors in one group (two dynamic members, one static)
 *   under a steady load of flushes, SIGTERM'd 50 times at moments of the
 *   rebalance cycle picked by watching them (signal handler installed,
 *   "processing" logged, a restore started after a kill -9 left a backlog,
 *   records flowing, another member just joined or left, partitions just
 *   revoked), each drain must exit 0. Then nothing acknowledged was lost or
 *   applied twice: every commands record has exactly one outcome equal to
 *   the sequential model's, versions are contiguous, the last snapshots
 *   carry the model's digests, and `flushline verify` passes.
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
#include "flushline/kafka.h"
#include "flushline/log.h"

#define PARTITIONS 4

static const char *bootstrap;

/* ---- a group leader that can be held ------------------------------------ */

typedef struct leader_s {
    rd_kafka_t *rk;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, held, release;
    _Atomic int stop;
    _Atomic int assigned; /* partitions in its assignment */
} leader_t;

static leader_t leader = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* librdkafka calls this from the thread that logs: the one that handles
 * the JoinGroup response and, right after the line below, runs the
 * assignor and sends SyncGroup. */
static void on_leader_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac;
    if (!strstr(buf, "I am elected leader"))
        return;
    pthread_mutex_lock(&leader.mu);
    if (leader.armed) {
        leader.armed = false;
        leader.held = true;
        pthread_cond_broadcast(&leader.cv);
        while (!leader.release)
            pthread_cond_wait(&leader.cv, &leader.mu);
        leader.held = false;
    }
    pthread_mutex_unlock(&leader.mu);
}

static void *leader_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&leader.stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(leader.rk, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
        rd_kafka_topic_partition_list_t *parts = NULL;
        if (rd_kafka_assignment(leader.rk, &parts) == 0) {
            atomic_store(&leader.assigned, parts->cnt);
            rd_kafka_topic_partition_list_destroy(parts);
        }
    }
    return NULL;
}

static int leader_start(const char *prefix, const char *group)
{
    char errstr[512], topic[FL_TOPIC_NAME_MAX + 1];
    fl_kafka_kv_t kv[] = {
        {"group.id", group},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"debug", "cgrp"},
        {"session.timeout.ms", "30000"},
        {"heartbeat.interval.ms", "200"},
        {"enable.auto.commit", "false"},
        {NULL, NULL},
    };
    fl_kafka_spec_t spec = {.type = RD_KAFKA_CONSUMER, .what = "test leader",
                            .bootstrap = bootstrap, .defaults = kv, .on_log = on_leader_log};
    if (!(leader.rk = fl_kafka_new(&spec, errstr, sizeof errstr))) {
        fprintf(stderr, "leader: %s\n", errstr);
        return -1;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    fl_topic_name(prefix, FL_TOPIC_COMMANDS, topic, sizeof topic);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(leader.rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err)
        return -1;
    return pthread_create(&leader.th, NULL, leader_main, NULL) == 0 ? 0 : -1;
}

static void leader_release(void)
{
    pthread_mutex_lock(&leader.mu);
    leader.armed = false;
    leader.release = true;
    pthread_cond_broadcast(&leader.cv);
    pthread_mutex_unlock(&leader.mu);
}

static void leader_stop(void)
{
    if (!leader.rk)
        return;
    leader_release();
    atomic_store(&leader.stop, 1);
    pthread_join(leader.th, NULL);
    rd_kafka_consumer_close(leader.rk);
    rd_kafka_destroy(leader.rk);
    leader.rk = NULL;
}

static bool leader_has_all(void *arg)
{
    (void)arg;
    return atomic_load(&leader.assigned) == PARTITIONS;
}

static bool leader_held(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&leader.mu);
    bool held = leader.held;
    pthread_mutex_unlock(&leader.mu);
    return held;
}

static bool proc_log_has(void *arg)
{
    const void **a = arg;
    return fl_proc_log_contains(a[0], a[1]) || !fl_proc_alive((fl_proc_t *)a[0]);
}

static void test_sync_pending(void)
{
    char prefix[96], group[160], log[512];
    static fl_proc_t proc;

    fl_test_unique("fltest-drsync", prefix, sizeof prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    snprintf(log, sizeof log, "%s/tests/%s-p.log", getenv("FL_BINARY_DIR"), prefix);
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, PARTITIONS), 0);
    ASSERT_EQ(leader_start(prefix, group), 0);
    /* The leader alone owns everything: it is the group's leader. */
    ASSERT_TRUE(fl_wait_until(leader_has_all, NULL, 60000));
    pthread_mutex_lock(&leader.mu);
    leader.armed = true;
    pthread_mutex_unlock(&leader.mu);

    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", prefix, "--http.port", "-1",
                          "--session.timeout.ms", "30000", "--log.level", "debug",
                          "-X", "debug=cgrp", NULL};
    ASSERT_EQ(fl_proc_start(&proc, "flushline-processor", args, log), 0);
    /* The processor's join starts a rebalance; the leader rejoins, is
     * elected and held before it sends SyncGroup. */
    ASSERT_TRUE(fl_wait_until(leader_held, NULL, 60000));
    /* The processor got its JoinGroup response and waits in SyncGroup. */
    const void *want[] = {&proc, "-> wait-sync"};
    ASSERT_TRUE(fl_wait_until(proc_log_has, want, 30000));
    ASSERT_TRUE(fl_proc_alive(&proc));
    ASSERT_EQ(fl_proc_signal(&proc, SIGTERM), 0);
    int st = fl_proc_wait(&proc, 60000);
    leader_stop();
    if (st != 0)
        fl_proc_dump_log(&proc, 40);
    ASSERT_EQ(st, 0);
    /* It was the state that aborts: no assignment ever came. */
    ASSERT_TRUE(fl_proc_log_contains(&proc, "closed but not destroyed"));
}

/* ---- fifty drains ------------------------------------------------------- */

#define D_PARTITIONS 6
#define NODES 3
#define DRAINS 50
#define CL_CLIENTS 12  /* closed loop: one flush in flight each, resent until answered */
#define BULK_CLIENTS 6 /* open loop: the load behind restores and mid-stream drains */
#define DOCS 24
#define RESEND_MS 3000

typedef struct load_s {
    const char *prefix;
    _Atomic int stop;       /* send no new flush (resends go on until answered) */
    _Atomic long produced;  /* flush records produced: sends, resends, bulk */
    fl_ktest_delivery_t dr; /* of those, delivered to commands (or failed) */
    _Atomic long acked;     /* closed-loop flushes answered in committed events */
    _Atomic long resends;
    _Atomic int failed;
} load_t;

typedef struct client_s {
    uint8_t id[FL_CLIENT_ID_LEN];
    uint64_t seqs[DOCS];
    int doc; /* of the flush in flight; -1: none */
    int64_t sent_ms;
    fl_arena_t *arena; /* holds the flush in flight, for resends */
    fl_flush_t flush;
} client_t;

static char docs[DOCS][32];

static rd_kafka_t *events_reader(const char *prefix)
{
    char errstr[512], topic[FL_TOPIC_NAME_MAX + 1], group[160];
    rd_kafka_t *rk;
    snprintf(group, sizeof group, "%s-test-reader", prefix);
    fl_kafka_kv_t kv[] = {
        {"group.id", group},
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {"fetch.wait.max.ms", "10"},
        {NULL, NULL},
    };
    fl_kafka_spec_t spec = {.type = RD_KAFKA_CONSUMER, .what = "test events reader",
                            .bootstrap = bootstrap, .defaults = kv};
    if (!(rk = fl_kafka_new(&spec, errstr, sizeof errstr))) {
        fprintf(stderr, "events reader: %s\n", errstr);
        return NULL;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(D_PARTITIONS);
    fl_topic_name(prefix, FL_TOPIC_EVENTS, topic, sizeof topic);
    for (int p = 0; p < D_PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

static int send_flush(load_t *ld, rd_kafka_t *rk, const fl_flush_t *f, uint64_t origin)
{
    if (fl_ktest_produce_flush(rk, ld->prefix, f, "u", "gw-drain", origin) != 0)
        return -1;
    atomic_fetch_add(&ld->produced, 1);
    return 0;
}

/* The closed loop: each client has one flush in flight, resends it with
 * the same seq until its outcome is in committed events, then sends the
 * next. Ends when stopped and everything is answered. */
static void *closed_loop_main(void *arg)
{
    load_t *ld = arg;
    static client_t cl[CL_CLIENTS];
    rd_kafka_t *rk = fl_ktest_producer_dr(bootstrap, &ld->dr);
    rd_kafka_t *ev = events_reader(ld->prefix);
    fl_arena_t *dec = fl_arena_new(1 << 16);
    int64_t stop_deadline = 0;
    fl_gen_t g;

    fl_gen_seed(&g, 11);
    memset(cl, 0, sizeof cl);
    for (int c = 0; c < CL_CLIENTS; c++) {
        fl_gen_client_id(cl[c].id, (uint32_t)(1000 + c));
        cl[c].doc = -1;
        cl[c].arena = fl_arena_new(1 << 14);
    }
    if (!rk || !ev || !dec)
        atomic_store(&ld->failed, 1);
    while (!atomic_load(&ld->failed)) {
        int64_t now = fl_test_now_ms();
        int inflight = 0;
        bool stop = atomic_load(&ld->stop);
        for (int c = 0; c < CL_CLIENTS; c++) {
            client_t *k = &cl[c];
            if (k->doc < 0 && !stop) {
                k->doc = (int)(fl_gen_next(&g) % DOCS);
                fl_arena_reset(k->arena);
                fl_gen_flush(&g, k->arena, docs[k->doc], k->id, ++k->seqs[k->doc], 4, &k->flush);
                if (send_flush(ld, rk, &k->flush, (uint64_t)c) != 0)
                    atomic_store(&ld->failed, 1);
                k->sent_ms = now;
            } else if (k->doc >= 0 && now - k->sent_ms >= RESEND_MS) {
                if (send_flush(ld, rk, &k->flush, (uint64_t)c) != 0)
                    atomic_store(&ld->failed, 1);
                atomic_fetch_add(&ld->resends, 1);
                k->sent_ms = now;
            }
            inflight += k->doc >= 0;
        }
        if (stop && !stop_deadline)
            stop_deadline = now + 300000;
        if (stop && inflight == 0)
            break;
        if (stop && now > stop_deadline) {
            fprintf(stderr, "closed loop: %d flushes still unanswered\n", inflight);
            atomic_store(&ld->failed, 1);
            break;
        }
        rd_kafka_poll(rk, 0);
        for (rd_kafka_message_t *msg = rd_kafka_consumer_poll(ev, 20); msg;
             msg = rd_kafka_consumer_poll(ev, 0)) {
            fl_wire_msg_t wm;
            char errstr[256];
            fl_arena_reset(dec);
            if (!msg->err &&
                fl_wire_decode_record(msg->payload, msg->len, dec, &wm, errstr, sizeof errstr) ==
                    0 &&
                wm.type == FL_WT_REC_OUTCOME) {
                const fl_outcome_t *o = &wm.u.outcome.outcome;
                for (int c = 0; c < CL_CLIENTS; c++) {
                    client_t *k = &cl[c];
                    if (k->doc >= 0 && memcmp(o->client_id, k->id, FL_CLIENT_ID_LEN) == 0 &&
                        o->seq == k->flush.seq && o->doc.len == strlen(docs[k->doc]) &&
                        memcmp(o->doc.ptr, docs[k->doc], o->doc.len) == 0) {
                        k->doc = -1;
                        atomic_fetch_add(&ld->acked, 1);
                    }
                }
            }
            rd_kafka_message_destroy(msg);
        }
    }
    if (!rk || rd_kafka_flush(rk, 60000) != 0)
        atomic_store(&ld->failed, 1);
    if (rk)
        rd_kafka_destroy(rk);
    if (ev) {
        rd_kafka_consumer_close(ev);
        rd_kafka_destroy(ev);
    }
    for (int c = 0; c < CL_CLIENTS; c++)
        fl_arena_free(cl[c].arena);
    fl_arena_free(dec);
    return NULL;
}

/* The open loop: a round of BULK_CLIENTS flushes every 20 ms. */
static void *bulk_main(void *arg)
{
    load_t *ld = arg;
    rd_kafka_t *rk = fl_ktest_producer_dr(bootstrap, &ld->dr);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    static uint64_t seqs[BULK_CLIENTS][DOCS];
    uint8_t ids[BULK_CLIENTS][FL_CLIENT_ID_LEN];
    fl_gen_t g;

    memset(seqs, 0, sizeof seqs);
    fl_gen_seed(&g, 12);
    for (int c = 0; c < BULK_CLIENTS; c++)
        fl_gen_client_id(ids[c], (uint32_t)(2000 + c));
    while (rk && !atomic_load(&ld->stop) && !atomic_load(&ld->failed)) {
        for (int c = 0; c < BULK_CLIENTS; c++) {
            fl_flush_t f;
            int d = (int)(fl_gen_next(&g) % DOCS);
            fl_arena_reset(arena);
            fl_gen_flush(&g, arena, docs[d], ids[c], ++seqs[c][d], 5, &f);
            if (send_flush(ld, rk, &f, (uint64_t)(100 + c)) != 0)
                atomic_store(&ld->failed, 1);
        }
        rd_kafka_poll(rk, 0);
        struct timespec ts = {0, 20 * 1000000}; /* the pace of the load, not a wait */
        nanosleep(&ts, NULL);
    }
    if (!rk || rd_kafka_flush(rk, 60000) != 0)
        atomic_store(&ld->failed, 1);
    if (rk)
        rd_kafka_destroy(rk);
    fl_arena_free(arena);
    return NULL;
}

/* ---- the processors ---- */

typedef struct node_s {
    const char *prefix;
    char name[8];
    bool is_static; /* group.instance.id: a restart takes its partitions back at once */
    fl_proc_t proc;
    int port; /* of this incarnation's /metrics; 0: not known yet */
} node_t;

static node_t nodes[NODES];

typedef struct stats_s {
    int drains, before_run, kept, restore_cut, assigned_draining, lost, rewind_cut, kills;
    int by_moment[16];
} stats_t;

static stats_t stats;

static int node_start(node_t *n)
{
    char log[512], txid[160], group[160];
    snprintf(log, sizeof log, "%s/tests/%s-%s.log", getenv("FL_BINARY_DIR"), n->prefix, n->name);
    snprintf(txid, sizeof txid, "%s-%s", n->prefix, n->name);
    snprintf(group, sizeof group, "%s-processors", n->prefix);
    /* Short sessions and heartbeats keep rebalances quick; a long snapshot
     * interval lets a backlog of events build up for restores. */
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", n->prefix, "--partitions", "6",
                          "--group.id", group, "--transactional.id", txid, "--http.port", "0",
                          "--session.timeout.ms", "6000", "--snapshot.interval.ms", "20000",
                          "--snapshot.every.versions", "100000", "-X",
                          "heartbeat.interval.ms=500", n->is_static ? "--group.instance.id" : NULL,
                          txid, NULL};
    n->port = 0;
    return fl_proc_start(&n->proc, "flushline-processor", args, log);
}

/* This incarnation's log (malloc'd), or NULL. */
static char *node_log(const node_t *n)
{
    size_t len;
    char *text = fl_test_read_file(n->proc.log, &len);
    if (text && n->proc.log_from > 0 && (size_t)n->proc.log_from <= len)
        memmove(text, text + n->proc.log_from, len - (size_t)n->proc.log_from + 1);
    return text;
}

static int node_log_count(const node_t *n, const char *needle)
{
    char *text = node_log(n);
    int count = 0;
    for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
        count++;
    free(text);
    return count;
}

static bool node_alive(node_t *n)
{
    return fl_proc_alive(&n->proc);
}

/* A counter of this incarnation's /metrics, or -1. */
static long long node_metric(node_t *n, const char *name)
{
    char *body = NULL, key[128];
    long long v = -1;
    if (!n->port) {
        char *text = node_log(n), *at = text ? strstr(text, "http on 127.0.0.1:") : NULL;
        if (at)
            n->port = atoi(at + strlen("http on 127.0.0.1:"));
        free(text);
    }
    if (n->port && fl_http_get(n->port, "/metrics", &body) == 200) {
        snprintf(key, sizeof key, "\nflushline_processor_%s ", name);
        char *at = strstr(body, key);
        if (at)
            v = strtoll(at + strlen(key), NULL, 10);
    }
    free(body);
    return v;
}

/* SIGTERM is caught: main() has installed its handler. */
static bool handler_installed(void *arg)
{
    node_t *n = arg;
    char path[64], line[256];
    bool caught = false;
    if (!node_alive(n))
        return true;
    /* /proc files have no size: read them line by line. */
    snprintf(path, sizeof path, "/proc/%d/status", (int)n->proc.pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "SigCgt:", 7) == 0)
            caught = (strtoull(line + 7, NULL, 16) >> (SIGTERM - 1)) & 1;
    if (f)
        fclose(f);
    return caught;
}

typedef struct logwait_s {
    node_t *n;
    const char *needle;
    int above; /* true once the needle occurs more often than this */
} logwait_t;

static bool log_grew(void *arg)
{
    logwait_t *w = arg;
    return !node_alive(w->n) || node_log_count(w->n, w->needle) > w->above;
}

/* Waits up to timeout_ms for needle to appear (once more than now, when
 * fresh) in n's log; false when it did not (the drain still happens). */
static bool wait_log(node_t *n, const char *needle, bool fresh, int timeout_ms)
{
    logwait_t w = {n, needle, fresh ? node_log_count(n, needle) : 0};
    return fl_wait_until(log_grew, &w, timeout_ms) && node_alive(n);
}

enum { M_ANY, M_STARTING, M_JOINING, M_FIRST_ASSIGN, M_RESTORING, M_STREAM, M_AFTER_JOIN,
       M_AFTER_LEAVE, M_REVOKED, M_FINAL, M__COUNT };
static const char *const moment_names[M__COUNT] = {
    "at an arbitrary moment", "while starting (handler installed)", "joining (processing logged)",
    "at its first assignment", "restoring a backlog after a kill -9", "mid-stream under load",
    "right after another member joined", "right after another member left",
    "with partitions just revoked", "final"};

/* SIGTERM, and the exit must be 0. Only once main() has installed its
 * handler: before that (exec, loading) no program can drain, and the
 * signal's default action ends it. */
static int drain(node_t *n, int moment)
{
    if (!fl_wait_until(handler_installed, n, 30000) || !node_alive(n)) {
        fprintf(stderr, "%s is not running before its drain (%s)\n", n->name, moment_names[moment]);
        fl_proc_dump_log(&n->proc, 40);
        return -1;
    }
    fl_proc_signal(&n->proc, SIGTERM);
    int st = fl_proc_wait(&n->proc, 120000);
    char *text = node_log(n);
    stats.drains++;
    stats.by_moment[moment]++;
    bool kept = text && strstr(text, "not destroyed");
    bool cut = text && strstr(text, "abandoned: draining");
    bool before = text && strstr(text, "stopped before processing anything");
    bool late = text && strstr(text, "while draining: not restored");
    bool lost = text && strstr(text, "rebalance: lost");
    bool rewind = text && strstr(text, "rewind interrupted");
    stats.kept += kept;
    stats.restore_cut += cut;
    stats.before_run += before;
    stats.assigned_draining += late;
    stats.lost += lost;
    stats.rewind_cut += rewind;
    printf("drain %2d: %s %s: exit %d%s%s%s%s%s%s\n", stats.drains, n->name, moment_names[moment],
           st, before ? ", before run" : "", kept ? ", consumer kept (no assignment yet)" : "",
           cut ? ", restore interrupted" : "",
           late ? ", assignment acknowledged while draining" : "",
           lost ? ", assignment lost" : "", rewind ? ", rewind interrupted" : "");
    fflush(stdout);
    free(text);
    if (st != 0) {
        fprintf(stderr, "%s exited %d after SIGTERM %s\n", n->name, st, moment_names[moment]);
        fl_proc_dump_log(&n->proc, 60);
        return -1;
    }
    return 0;
}

typedef struct progress_s {
    node_t *n;
    long long from;
} progress_t;

/* Records flow through n and it is not restoring. */
static bool streaming(void *arg)
{
    progress_t *pg = arg;
    if (!node_alive(pg->n))
        return true;
    long long v = node_metric(pg->n, "records_in_total");
    if (v < 0)
        return false;
    if (pg->from < 0 || v <= pg->from) {
        pg->from = v;
        return false;
    }
    return node_log_count(pg->n, "restoring partition") ==
           node_log_count(pg->n, "restored:") + node_log_count(pg->n, "abandoned: draining");
}

static bool records_in_above(void *arg)
{
    progress_t *pg = arg;
    return !node_alive(pg->n) || node_metric(pg->n, "records_in_total") >= pg->from;
}

typedef struct restoring_s {
    int before[NODES];
    int who;
} restoring_t;

static bool someone_restoring(void *arg)
{
    restoring_t *r = arg;
    for (int i = 0; i < NODES; i++)
        if (node_alive(&nodes[i]) &&
            node_log_count(&nodes[i], "restoring partition") > r->before[i]) {
            r->who = i;
            return true;
        }
    return false;
}

static bool load_flowing(void *arg)
{
    load_t *ld = arg;
    return atomic_load(&ld->acked) >= 50 || atomic_load(&ld->failed);
}

static bool all_answered(void *arg)
{
    load_t *ld = arg;
    for (int i = 0; i < NODES; i++)
        if (!node_alive(&nodes[i]))
            return true; /* the caller fails */
    long commands = fl_ktest_count(bootstrap, ld->prefix, FL_TOPIC_COMMANDS);
    long events = fl_ktest_count(bootstrap, ld->prefix, FL_TOPIC_EVENTS);
    return commands > 0 && events >= commands;
}

/* One cycle: drains X (and Y) at the kind's moment; 0 or -1. */
static int cycle(int kind, fl_gen_t *g)
{
    int x = (int)(fl_gen_next(g) % NODES);
    int y = (x + 1 + (int)(fl_gen_next(g) % (NODES - 1))) % NODES; /* another one */
    node_t *X = &nodes[x], *Y = &nodes[y];
    switch (kind) {
    case M_STARTING:
    case M_JOINING:
    case M_FIRST_ASSIGN:
        if (drain(X, M_ANY) != 0 || node_start(X) != 0)
            return -1;
        if (kind == M_STARTING)
            fl_wait_until(handler_installed, X, 30000);
        else
            wait_log(X, kind == M_JOINING ? "processing " : "rebalance: assigned", false, 60000);
        return drain(X, kind);
    case M_RESTORING: {
        /* A backlog: let it apply for a while (its counter starts at its
         * start), then kill -9 it, so that its partitions' events since
         * their last checkpoint must be replayed by whoever restores them:
         * itself at once when static, else after its session expires. */
        progress_t pg = {X, 600};
        restoring_t r = {.who = -1};
        fl_wait_until(records_in_above, &pg, 40000);
        for (int i = 0; i < NODES; i++)
            r.before[i] = i == x ? 0 : node_log_count(&nodes[i], "restoring partition");
        fl_proc_kill(&X->proc);
        stats.kills++;
        if (node_start(X) != 0)
            return -1;
        if (!fl_wait_until(someone_restoring, &r, 40000) || r.who < 0)
            r.who = x;
        return drain(&nodes[r.who], M_RESTORING);
    }
    case M_STREAM: {
        progress_t pg = {X, -1};
        fl_wait_until(streaming, &pg, 30000);
        return drain(X, M_STREAM);
    }
    case M_AFTER_JOIN:
        if (drain(Y, M_ANY) != 0 || node_start(Y) != 0)
            return -1;
        wait_log(Y, "processing ", false, 60000);
        return drain(X, M_AFTER_JOIN);
    case M_AFTER_LEAVE:
        if (drain(Y, M_ANY) != 0)
            return -1;
        return drain(X, M_AFTER_LEAVE);
    case M_REVOKED:
        /* A dynamic member leaves and comes back: X takes some of its
         * partitions, then gives them back. */
        if (Y->is_static) {
            node_t *t = X;
            X = Y;
            Y = t;
        }
        if (drain(Y, M_ANY) != 0 || node_start(Y) != 0)
            return -1;
        wait_log(X, "rebalance: revoking", true, 30000);
        return drain(X, M_REVOKED);
    }
    return -1;
}

static void test_fifty_drains(void)
{
    static char prefix[96]; /* the load threads read it */
    static load_t ld;
    pthread_t cl_th, bulk_th;
    fl_gen_t g;
    unsigned seed = (unsigned)time(NULL);
    int kinds[] = {M_STARTING, M_JOINING, M_FIRST_ASSIGN, M_RESTORING, M_STREAM,
                   M_AFTER_JOIN, M_AFTER_LEAVE, M_REVOKED};
    const int nkinds = (int)(sizeof kinds / sizeof kinds[0]);
    int64_t t0 = fl_test_now_ms();

    fl_test_unique("fltest-drain", prefix, sizeof prefix);
    ld.prefix = prefix;
    for (int d = 0; d < DOCS; d++)
        snprintf(docs[d], sizeof docs[d], "acme/drain-%d", d);
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, D_PARTITIONS), 0);
    for (int i = 0; i < NODES; i++) {
        nodes[i].prefix = prefix;
        snprintf(nodes[i].name, sizeof nodes[i].name, "p%d", i);
        nodes[i].is_static = i == NODES - 1;
        ASSERT_EQ(node_start(&nodes[i]), 0);
    }
    ASSERT_EQ(pthread_create(&cl_th, NULL, closed_loop_main, &ld), 0);
    ASSERT_EQ(pthread_create(&bulk_th, NULL, bulk_main, &ld), 0);
    ASSERT_TRUE(fl_wait_until(load_flowing, &ld, 120000));
    ASSERT_EQ(atomic_load(&ld.failed), 0);

    /* Every kind of moment in turn, in a fresh random order each round. */
    fl_gen_seed(&g, seed);
    printf("seed %u\n", seed);
    while (stats.drains < DRAINS) {
        for (int i = nkinds - 1; i > 0; i--) {
            int j = (int)(fl_gen_next(&g) % (uint64_t)(i + 1)), t = kinds[i];
            kinds[i] = kinds[j];
            kinds[j] = t;
        }
        for (int k = 0; k < nkinds && stats.drains < DRAINS; k++) {
            if (cycle(kinds[k], &g) != 0) {
                atomic_store(&ld.stop, 1);
                FL_FAIL_("drain %d failed", stats.drains);
            }
            for (int i = 0; i < NODES; i++)
                if (!node_alive(&nodes[i]))
                    ASSERT_EQ(node_start(&nodes[i]), 0);
            ASSERT_EQ(atomic_load(&ld.failed), 0);
        }
    }
    int64_t t1 = fl_test_now_ms();

    /* Stop the load; every flush in flight is answered, every record is. */
    atomic_store(&ld.stop, 1);
    pthread_join(bulk_th, NULL);
    pthread_join(cl_th, NULL);
    ASSERT_EQ(atomic_load(&ld.failed), 0);
    ASSERT_TRUE(fl_wait_until(all_answered, &ld, 300000));
    for (int i = 0; i < NODES; i++)
        ASSERT_EQ(drain(&nodes[i], M_FINAL), 0);

    fl_model_report_t rep;
    fl_model_t *m = fl_model_check(bootstrap, prefix, &rep);
    ASSERT_TRUE(m != NULL);
    long badsnap = fl_model_check_snapshots(m, bootstrap, prefix);
    fl_model_free(m);
    printf("%d drains in %lld s (%d kill -9 to leave backlogs); restores interrupted %d, "
           "consumers kept (drained before any assignment) %d, drained before run %d, "
           "assignments acknowledged while draining %d, lost %d, rewinds interrupted %d\n",
           stats.drains, (long long)(t1 - t0) / 1000, stats.kills, stats.restore_cut, stats.kept,
           stats.before_run, stats.assigned_draining, stats.lost, stats.rewind_cut);
    for (int k = 0; k < M__COUNT; k++)
        printf("  %2d %s\n", stats.by_moment[k], moment_names[k]);
    printf("produced %ld (delivered %ld, failed %ld; resends %ld, closed-loop answered %ld), "
           "commands %ld, outcomes %ld, applied commands %ld, docs %ld; mismatches %ld missing "
           "%ld extra %ld gaps %ld, bad snapshots %ld\n",
           atomic_load(&ld.produced), atomic_load(&ld.dr.delivered), atomic_load(&ld.dr.failed),
           atomic_load(&ld.resends), atomic_load(&ld.acked), rep.commands, rep.outcomes, rep.applied_cmds, rep.docs, rep.mismatches, rep.missing,
           rep.extra, rep.gaps, badsnap);
    ASSERT_GE(stats.drains, DRAINS);
    /* Every produce call got its delivery report (the producers were
     * flushed), and every delivered record is read back. */
    ASSERT_EQ(atomic_load(&ld.dr.delivered) + atomic_load(&ld.dr.failed),
              atomic_load(&ld.produced));
    ASSERT_EQ(atomic_load(&ld.dr.failed), 0);
    ASSERT_EQ(rep.commands, atomic_load(&ld.dr.delivered));
    ASSERT_EQ(rep.outcomes, rep.commands);
    ASSERT_EQ(rep.mismatches, 0);
    ASSERT_EQ(rep.missing, 0);
    ASSERT_EQ(rep.extra, 0);
    ASSERT_EQ(rep.gaps, 0);
    ASSERT_EQ(badsnap, 0);
    ASSERT_GT(rep.applied_cmds, 0);
    /* The states that matter were reached: drains before any assignment
     * (the kept consumer) and drains that cut a restore short. */
    ASSERT_GE(stats.kept, 1);
    ASSERT_GE(stats.restore_cut, 1);

    /* And the history verifies on its own. */
    char log[512];
    static fl_proc_t verify;
    snprintf(log, sizeof log, "%s/tests/%s-verify.log", getenv("FL_BINARY_DIR"), prefix);
    const char *vargs[] = {"verify", "--bootstrap", bootstrap, "--prefix", prefix,
                           "--strict-offsets", "--quiet", NULL};
    ASSERT_EQ(fl_proc_start(&verify, "flushline", vargs, log), 0);
    int st = fl_proc_wait(&verify, 300000);
    if (st != 0)
        fl_proc_dump_log(&verify, 20);
    ASSERT_EQ(st, 0);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    RUN(test_sync_pending);
    RUN(test_fifty_drains);
    return fl_test_done();
}
