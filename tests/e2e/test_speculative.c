/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Speculative delivery (gateway delivery = speculative, PROTOCOL.md
 * "Delivery modes") against the real broker, with flushline-processor and
 * flushline-gateway as child processes and raw WebSocket subscribers that
 * record every message they are sent:
 * - kill: kill -9 the processor ten times under load, each time with
 *   outcomes delivered and not committed yet (a long commit interval), and
 *   restart it: after recovery every delta a subscriber was delivered equals,
 *   byte for byte, the committed event of the same version, no subscriber
 *   sees a version twice or a gap or a second snapshot, every committed
 *   version reached every subscriber, the history equals the model and the
 *   gateway counted no divergence and no resync;
 * - divergence: a crash with three flushes delivered and not committed, the
 *   processor restarted with a lower max.state.bytes, so the re-run refuses
 *   the second: the gateway counts a divergence and every subscriber ends
 *   at the committed state, from a fresh snapshot;
 * - committed vs speculative: with a long commit interval, a delta reaches a
 *   subscriber before its outcome is committed with speculative, only after
 *   with committed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "fl_gen.h"
#include "fl_ktest.h"
#include "fl_model.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "fl_token.h"
#include "fl_ws.h"
#include "flushline/history.h"
#include "flushline/log.h"
#include "flushline/wire.h"

#define PARTITIONS 4
#define NSUBS 3
#define NDOCS 3
#define MAXV (1 << 16) /* versions recorded per document */
#define ROUNDS 10

static const char *bootstrap;
static char keypath[600];
static fl_jwt_keyfile_t *key;

/* ---- processes -------------------------------------------------------------------- */

typedef struct env_s {
    char prefix[96];
    fl_proc_t proc, gw;
    int port;
} env_t;

static env_t the_env; /* stopped after every case */

static int start_processor(env_t *env, const char *commit_ms, const char *max_state)
{
    char log[512], txid[160], group[160];
    snprintf(log, sizeof log, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), env->prefix);
    snprintf(txid, sizeof txid, "%s-tx", env->prefix);
    snprintf(group, sizeof group, "%s-processors", env->prefix);
    /* static membership: a restarted instance takes its partitions back at
     * once; its transactional.id fences the killed one and aborts what it
     * left open */
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", env->prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", txid,
                          "--group.instance.id", txid, "--session.timeout.ms", "6000",
                          "--http.port", "-1", "--commit.interval.ms", commit_ms,
                          "--commit.max.records", "1000000", "--max.state.bytes", max_state,
                          "--snapshot.every.versions", "500", "--snapshot.interval.ms", "1000",
                          NULL};
    return fl_proc_start(&env->proc, "flushline-processor", args, log);
}

typedef struct health_s {
    int port;
    fl_proc_t *gw;
} health_t;

static bool gateway_healthy(void *arg)
{
    health_t *h = arg;
    char *body = NULL;
    int st = fl_http_get(h->port, "/healthz", &body);
    free(body);
    return st == 200 || !fl_proc_alive(h->gw);
}

static int start_gateway(env_t *env, const char *delivery)
{
    char log[512], port[16], gwid[160];
    env->port = fl_free_port();
    snprintf(log, sizeof log, "%s/tests/%s-gateway.log", getenv("FL_BINARY_DIR"), env->prefix);
    snprintf(port, sizeof port, "%d", env->port);
    snprintf(gwid, sizeof gwid, "%s-gw", env->prefix);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", env->prefix, "--partitions", "4",
                          "--port", port, "--jwt.keys", keypath, "--gateway.id", gwid,
                          "--delivery", delivery, NULL};
    if (fl_proc_start(&env->gw, "flushline-gateway", args, log) != 0)
        return -1;
    health_t h = {env->port, &env->gw};
    if (!fl_wait_until(gateway_healthy, &h, 60000) || !fl_proc_alive(&env->gw)) {
        fl_proc_dump_log(&env->gw, 30);
        return -1;
    }
    return 0;
}

static int env_start(env_t *env, const char *stem, const char *delivery, const char *commit_ms,
                     const char *max_state)
{
    memset(env, 0, sizeof *env);
    fl_test_unique(stem, env->prefix, sizeof env->prefix);
    if (fl_ktest_topics(bootstrap, env->prefix, PARTITIONS) != 0 ||
        start_processor(env, commit_ms, max_state) != 0 || start_gateway(env, delivery) != 0) {
        fprintf(stderr, "setup of %s failed\n", env->prefix);
        return -1;
    }
    return 0;
}

static void env_stop(env_t *env)
{
    if (fl_test_failures) {
        fl_proc_dump_log(&env->gw, 30);
        fl_proc_dump_log(&env->proc, 30);
    }
    if (env->gw.pid > 0)
        fl_proc_kill(&env->gw);
    if (env->proc.pid > 0)
        fl_proc_kill(&env->proc);
    memset(env, 0, sizeof *env);
}

/* A gateway counter from /metrics; -1 when it cannot be read. */
static double gateway_metric(env_t *env, const char *name)
{
    char *body = NULL, needle[128];
    double v = -1;
    snprintf(needle, sizeof needle, "\n%s ", name);
    if (fl_http_get(env->port, "/metrics", &body) == 200 && body) {
        const char *p = strstr(body, needle);
        if (p)
            v = strtod(p + strlen(needle), NULL);
    }
    free(body);
    return v;
}

/* ---- deltas as bytes ------------------------------------------------------------------ */

/* One delta item as a one-item deltas message in msgpack: how a subscriber's
 * delivered delta and a committed event are compared, byte for byte. */
static char *delta_bytes(fl_slice_t doc, const fl_wire_delta_t *d, size_t *len)
{
    fl_wire_msg_t msg;
    char *out = NULL, errstr[128];
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_DELTAS;
    msg.u.deltas.doc = doc;
    msg.u.deltas.from_version = d->version - d->ncmds;
    msg.u.deltas.nitems = 1;
    msg.u.deltas.items = (fl_wire_delta_t *)d;
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &out, len, errstr, sizeof errstr) != 0)
        fprintf(stderr, "encoding a delta: %s\n", errstr);
    return out;
}

/* Versions of one document: the bytes of the delta ending at each. */
typedef struct track_s {
    char **at;      /* [MAXV] */
    size_t *len;    /* [MAXV] */
    uint64_t last;  /* the version held */
    uint8_t chain[FL_HASH_LEN];
    int snapshots;
} track_t;

static int track_init(track_t *t)
{
    memset(t, 0, sizeof *t);
    t->at = calloc(MAXV, sizeof *t->at);
    t->len = calloc(MAXV, sizeof *t->len);
    return t->at && t->len ? 0 : -1;
}

static void track_free(track_t *t)
{
    for (int v = 0; t->at && v < MAXV; v++)
        free(t->at[v]);
    free(t->at);
    free(t->len);
    memset(t, 0, sizeof *t);
}

static const char *docs[NDOCS];
static char docnames[NDOCS][64];

static int doc_index(fl_slice_t doc)
{
    for (int d = 0; d < NDOCS; d++)
        if (docs[d] && strlen(docs[d]) == doc.len && memcmp(docs[d], doc.ptr, doc.len) == 0)
            return d;
    return -1;
}

/* ---- the committed events --------------------------------------------------------------- */

typedef struct committed_s {
    track_t t[NDOCS];
    long outcomes[NDOCS]; /* outcome records of each doc (applied or not) */
    long all_outcomes;
    fl_arena_t *arena;
} committed_t;

static int on_event(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *m)
{
    committed_t *c = opaque;
    fl_wire_msg_t wm;
    fl_wire_delta_t d;
    char errstr[128];
    int i;
    (void)p, (void)off;
    fl_arena_reset(c->arena);
    if (fl_wire_decode_record(m->payload, m->len, c->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_OUTCOME)
        return 0;
    const fl_outcome_t *o = &wm.u.outcome.outcome;
    c->all_outcomes++;
    if ((i = doc_index(o->doc)) < 0)
        return 0;
    c->outcomes[i]++;
    if (o->napplied == 0 || o->duplicate || o->version_after >= MAXV)
        return 0;
    track_t *t = &c->t[i];
    fl_history_outcome_to_delta(o, &d);
    free(t->at[o->version_after]);
    t->at[o->version_after] = delta_bytes(o->doc, &d, &t->len[o->version_after]);
    if (o->version_after > t->last) {
        t->last = o->version_after;
        memcpy(t->chain, o->chain, FL_HASH_LEN);
    }
    return 0;
}

/* Reads the committed (read_committed) events. 0 or -1. */
static int committed_read(env_t *env, committed_t *c)
{
    memset(c, 0, sizeof *c);
    if (!(c->arena = fl_arena_new(1 << 16)))
        return -1;
    for (int d = 0; d < NDOCS; d++)
        if (track_init(&c->t[d]) != 0)
            return -1;
    return fl_ktest_read_all(bootstrap, env->prefix, FL_TOPIC_EVENTS, on_event, c) < 0 ? -1 : 0;
}

static void committed_free(committed_t *c)
{
    for (int d = 0; d < NDOCS; d++)
        track_free(&c->t[d]);
    fl_arena_free(c->arena);
}

/* ---- subscribers ------------------------------------------------------------------------ */

typedef struct sub_s {
    fl_ws_t *ws;
    pthread_t thread;
    bool started;
    _Atomic int stop;
    pthread_mutex_t mu; /* guards what follows */
    track_t t[NDOCS];
    long deltas, dups, gaps, closes, other;
    fl_arena_t *arena;
} sub_t;

static int ws_send_msg(fl_ws_t *ws, const fl_wire_msg_t *msg)
{
    char *buf = NULL, errstr[128];
    size_t len;
    int rc;
    if (fl_wire_encode(msg, FL_WIRE_MSGPACK, &buf, &len, errstr, sizeof errstr) != 0)
        return -1;
    rc = fl_ws_send(ws, 2, buf, len);
    free(buf);
    return rc;
}

static void on_deltas(sub_t *s, const fl_wire_deltas_t *ds)
{
    int i = doc_index(ds->doc);
    if (i < 0)
        return;
    track_t *t = &s->t[i];
    for (uint32_t k = 0; k < ds->nitems; k++) {
        const fl_wire_delta_t *d = &ds->items[k];
        if (d->version - d->ncmds != t->last)
            s->gaps++;
        if (d->version >= MAXV)
            continue;
        if (t->at[d->version])
            s->dups++;
        else
            t->at[d->version] = delta_bytes(ds->doc, d, &t->len[d->version]);
        t->last = d->version;
        memcpy(t->chain, d->chain, FL_HASH_LEN);
        s->deltas++;
    }
}

static void on_message(sub_t *s, const char *p, size_t n)
{
    fl_wire_msg_t msg;
    char errstr[128];
    int i;
    fl_arena_reset(s->arena);
    if (fl_wire_decode(FL_WIRE_S2C, FL_WIRE_MSGPACK, p, n, NULL, s->arena, &msg, errstr,
                       sizeof errstr) != 0) {
        s->other++;
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (msg.type == FL_WT_DELTAS) {
        on_deltas(s, &msg.u.deltas);
    } else if (msg.type == FL_WT_SNAPSHOT && (i = doc_index(msg.u.snapshot.doc)) >= 0) {
        s->t[i].snapshots++;
        s->t[i].last = msg.u.snapshot.version;
        memcpy(s->t[i].chain, msg.u.snapshot.chain, FL_HASH_LEN);
    } else if (msg.type != FL_WT_WELCOME && msg.type != FL_WT_PONG) {
        s->other++;
    }
    pthread_mutex_unlock(&s->mu);
}

static void *sub_main(void *arg)
{
    sub_t *s = arg;
    while (!atomic_load(&s->stop)) {
        char *p = NULL;
        size_t n = 0;
        int op = fl_ws_recv(s->ws, 100, &p, &n);
        char c;
        if (op < 0 && recv(s->ws->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            break; /* the gateway is gone */
        if (op == 2)
            on_message(s, p, n);
        else if (op == 8) {
            pthread_mutex_lock(&s->mu);
            s->closes++;
            pthread_mutex_unlock(&s->mu);
            free(p);
            break;
        }
        free(p);
    }
    return NULL;
}

/* Connects, says hello (msgpack), subscribes to every doc, starts reading. */
static int sub_start(sub_t *s, env_t *env, const char *tok)
{
    fl_wire_msg_t msg;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    if (!(s->ws = malloc(sizeof *s->ws)) || !(s->arena = fl_arena_new(1 << 16)))
        return -1;
    for (int d = 0; d < NDOCS; d++)
        if (track_init(&s->t[d]) != 0)
            return -1;
    if (fl_ws_connect(s->ws, env->port, NULL, 0) != 101)
        return -1;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_HELLO;
    msg.u.hello.token = (fl_slice_t){tok, strlen(tok)};
    if (ws_send_msg(s->ws, &msg) != 0 || fl_ws_next(s->ws, 20000, s->arena, &msg) != FL_WT_WELCOME)
        return -1;
    for (int d = 0; d < NDOCS; d++) {
        if (!docs[d])
            continue;
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_SUBSCRIBE;
        msg.u.sub.doc = (fl_slice_t){docs[d], strlen(docs[d])};
        if (ws_send_msg(s->ws, &msg) != 0)
            return -1;
    }
    if (pthread_create(&s->thread, NULL, sub_main, s) != 0)
        return -1;
    s->started = true;
    return 0;
}

static void sub_stop(sub_t *s)
{
    atomic_store(&s->stop, 1);
    if (s->started)
        pthread_join(s->thread, NULL);
    if (s->ws) {
        fl_ws_close(s->ws);
        free(s->ws);
    }
    for (int d = 0; d < NDOCS; d++)
        track_free(&s->t[d]);
    fl_arena_free(s->arena);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof *s);
}

typedef struct subs_s {
    sub_t *s;
    int n;
    uint64_t version[NDOCS]; /* all_at: every subscriber holds these */
} subs_t;

static bool all_synced(void *arg)
{
    subs_t *w = arg;
    bool ok = true;
    for (int i = 0; i < w->n && ok; i++) {
        pthread_mutex_lock(&w->s[i].mu);
        for (int d = 0; d < NDOCS; d++)
            ok = ok && (!docs[d] || w->s[i].t[d].snapshots > 0);
        pthread_mutex_unlock(&w->s[i].mu);
    }
    return ok;
}

static bool all_at(void *arg)
{
    subs_t *w = arg;
    bool ok = true;
    for (int i = 0; i < w->n && ok; i++) {
        pthread_mutex_lock(&w->s[i].mu);
        for (int d = 0; d < NDOCS; d++)
            ok = ok && (!docs[d] || w->s[i].t[d].last == w->version[d]);
        pthread_mutex_unlock(&w->s[i].mu);
    }
    return ok;
}

static uint64_t sub_last(sub_t *s, int d)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->t[d].last;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static long sub_deltas(sub_t *s)
{
    pthread_mutex_lock(&s->mu);
    long n = s->deltas;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- the kill case --------------------------------------------------------------------- */

typedef struct stream_s {
    const char *prefix;
    _Atomic long produced;
    _Atomic int stop, done;
    int failed;
} stream_t;

/* Flushes of 4 clients to the docs, produced straight to commands (a
 * foreign gateway id: nobody is answered) until stopped. */
static void *stream_main(void *arg)
{
    stream_t *st = arg;
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    uint64_t seqs[4][NDOCS];
    uint8_t cids[4][FL_CLIENT_ID_LEN];
    fl_gen_t g;
    memset(seqs, 0, sizeof seqs);
    fl_gen_seed(&g, 11);
    for (int c = 0; c < 4; c++)
        fl_gen_client_id(cids[c], (uint32_t)(300 + c));
    while (rk && arena && !atomic_load(&st->stop)) {
        for (int c = 0; c < 4; c++) {
            fl_flush_t f;
            int d = (int)(fl_gen_next(&g) % NDOCS);
            fl_arena_reset(arena);
            fl_gen_flush(&g, arena, docs[d], cids[c], ++seqs[c][d], 3, &f);
            if (fl_ktest_produce_flush(rk, st->prefix, &f, "u", "elsewhere", (uint64_t)c) != 0)
                st->failed = 1;
            else
                atomic_fetch_add(&st->produced, 1);
        }
        rd_kafka_poll(rk, 0);
        struct timespec ts = {0, 20 * 1000 * 1000};
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

typedef struct progress_s {
    sub_t *s;
    long above;
    fl_proc_t *proc;
} progress_t;

static bool progressed(void *arg)
{
    progress_t *p = arg;
    return sub_deltas(p->s) >= p->above || !fl_proc_alive(p->proc);
}

static int count_outcome(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    long *n = opaque;
    (void)p, (void)off;
    if (memmem(msg->payload, msg->len, "\xa7outcome", 8))
        (*n)++;
    return 0;
}

typedef struct answered_s {
    const char *prefix;
    long want;
} answered_t;

static bool all_answered(void *arg)
{
    answered_t *a = arg;
    long n = 0;
    if (fl_ktest_read_all(bootstrap, a->prefix, FL_TOPIC_EVENTS, count_outcome, &n) < 0)
        return false;
    return n >= a->want;
}

/* One kill: wait for deltas since the last restart, kill -9, see whether a
 * delivered version is not committed (a re-run will come), restart. 1 when
 * it was, 0 when not, -1 on failure. */
static int kill_round(env_t *env, sub_t *s0)
{
    progress_t pr = {s0, sub_deltas(s0) + 30, &env->proc};
    committed_t c;
    uint64_t delivered[NDOCS];
    int ahead = 0;
    if (!fl_wait_until(progressed, &pr, 90000) || !fl_proc_alive(&env->proc)) {
        fprintf(stderr, "no progress before the kill\n");
        return -1;
    }
    fl_proc_kill(&env->proc);
    for (int d = 0; d < NDOCS; d++)
        delivered[d] = sub_last(s0, d);
    if (committed_read(env, &c) != 0) {
        committed_free(&c);
        return -1;
    }
    for (int d = 0; d < NDOCS; d++)
        ahead |= delivered[d] > c.t[d].last;
    committed_free(&c);
    if (start_processor(env, "2000", "1M") != 0)
        return -1;
    return ahead;
}

/* Every delivered delta equals the committed one of its version, every
 * committed version above the first snapshot was delivered once. */
static long compare(sub_t *s, committed_t *c, long *missing)
{
    long bad = 0;
    for (int d = 0; d < NDOCS; d++)
        for (uint64_t v = 1; v < MAXV; v++) {
            const track_t *got = &s->t[d], *want = &c->t[d];
            if (got->at[v] && (!want->at[v] || got->len[v] != want->len[v] ||
                               memcmp(got->at[v], want->at[v], got->len[v]) != 0))
                bad++;
            if (want->at[v] && !got->at[v])
                (*missing)++;
        }
    return bad;
}

static int model_check(env_t *env, long produced, committed_t *c)
{
    fl_model_report_t rep;
    fl_model_t *m;
    int rc = -1;
    fl_proc_signal(&env->proc, SIGTERM);
    if (fl_proc_wait(&env->proc, 90000) != 0 || !(m = fl_model_check(bootstrap, env->prefix, &rep)))
        return -1;
    printf("  model: commands %ld outcomes %ld applied %ld; mismatches %ld missing %ld extra %ld "
           "gaps %ld\n",
           rep.commands, rep.outcomes, rep.applied_cmds, rep.mismatches, rep.missing, rep.extra,
           rep.gaps);
    if (rep.commands == produced && rep.outcomes == produced && !rep.mismatches && !rep.missing &&
        !rep.extra && !rep.gaps)
        rc = 0;
    for (int d = 0; d < NDOCS && rc == 0; d++) {
        fl_doc_t *md = fl_model_doc(m, docs[d]);
        if (!md || fl_doc_version(md) != c->t[d].last ||
            memcmp(fl_doc_chain(md), c->t[d].chain, FL_HASH_LEN) != 0)
            rc = -1;
    }
    fl_model_free(m);
    return rc;
}

static void test_kill9_speculative(void)
{
    env_t *env = &the_env;
    static sub_t subs[NSUBS];
    static stream_t st;
    static committed_t c;
    pthread_t th;
    int ahead = 0;
    long bad = 0, missing = 0;
    char *tok = fl_token_mint(key, "watcher", "\"acme/\"", "", 3600);

    for (int d = 0; d < NDOCS; d++)
        docs[d] = docnames[d], snprintf(docnames[d], sizeof docnames[d], "acme/k-%d", d);
    ASSERT_TRUE(tok != NULL);
    ASSERT_EQ(env_start(env, "fltest-spec-kill", "speculative", "2000", "1M"), 0);
    for (int i = 0; i < NSUBS; i++)
        ASSERT_EQ(sub_start(&subs[i], env, tok), 0);
    subs_t w = {subs, NSUBS, {0}};
    ASSERT_TRUE(fl_wait_until(all_synced, &w, 60000));

    memset(&st, 0, sizeof st);
    st.prefix = env->prefix;
    ASSERT_EQ(pthread_create(&th, NULL, stream_main, &st), 0);
    for (int r = 0; r < ROUNDS; r++) {
        int a = kill_round(env, &subs[0]);
        if (a < 0)
            break;
        ahead += a;
    }
    atomic_store(&st.stop, 1);
    pthread_join(th, NULL);
    ASSERT_EQ(st.failed, 0);
    printf("  %d of %d kills found delivered outcomes not committed yet\n", ahead, ROUNDS);
    ASSERT_GE(ahead, ROUNDS / 2);

    answered_t an = {env->prefix, atomic_load(&st.produced)};
    ASSERT_TRUE(fl_wait_until(all_answered, &an, 120000));
    ASSERT_EQ(committed_read(env, &c), 0);
    for (int d = 0; d < NDOCS; d++)
        w.version[d] = c.t[d].last;
    ASSERT_TRUE(fl_wait_until(all_at, &w, 60000));
    for (int i = 0; i < NSUBS; i++) {
        sub_t *s = &subs[i];
        pthread_mutex_lock(&s->mu);
        bad += compare(s, &c, &missing);
        printf("  subscriber %d: %ld deltas, %ld seen twice, %ld gaps, snapshots %d/%d/%d, %ld "
               "closes\n",
               i, s->deltas, s->dups, s->gaps, s->t[0].snapshots, s->t[1].snapshots,
               s->t[2].snapshots, s->closes);
        ASSERT_EQ(s->dups, 0);
        ASSERT_EQ(s->gaps, 0);
        ASSERT_EQ(s->closes, 0);
        for (int d = 0; d < NDOCS; d++)
            ASSERT_EQ(s->t[d].snapshots, 1);
        pthread_mutex_unlock(&s->mu);
    }
    printf("  deltas differing from the committed event: %ld; committed versions not delivered: "
           "%ld\n",
           bad, missing);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(missing, 0);
    ASSERT_EQ(gateway_metric(env, "flushline_gateway_divergences_total"), 0);
    ASSERT_EQ(gateway_metric(env, "flushline_gateway_resyncs_total"), 0);
    ASSERT_EQ(model_check(env, atomic_load(&st.produced), &c), 0);
    for (int i = 0; i < NSUBS; i++)
        sub_stop(&subs[i]);
    committed_free(&c);
    free(tok);
}

/* ---- the divergence case ------------------------------------------------------------------ */

/* Adds a 1,500-byte string at /a<seq> of doc (seq 1, 2, 3...). */
static int produce_big(rd_kafka_t *rk, const char *prefix, const char *doc, uint64_t seq)
{
    char text[1500];
    fl_flush_t f;
    fl_cmd_t cmd;
    char path[16];
    int rc;
    memset(&f, 0, sizeof f);
    memset(&cmd, 0, sizeof cmd);
    memset(text, 'a' + (int)seq, sizeof text);
    snprintf(path, sizeof path, "/a%llu", (unsigned long long)seq);
    cmd.op = FL_OP_ADD;
    cmd.path = (fl_slice_t){path, strlen(path)};
    cmd.has_value = true;
    if (fl_value_new_str(&cmd.value, text, sizeof text) != 0)
        return -1;
    f.doc = (fl_slice_t){doc, strlen(doc)};
    fl_gen_client_id(f.client_id, 900);
    f.seq = seq;
    f.ncmds = 1;
    f.cmds = &cmd;
    rc = fl_ktest_produce_flush(rk, prefix, &f, "u", "elsewhere", 0);
    fl_value_free(&cmd.value);
    return rc;
}

typedef struct count_s {
    env_t *env;
    long want;
} count_t;

static bool committed_events_at_least(void *arg)
{
    count_t *c = arg;
    long n = fl_ktest_count(bootstrap, c->env->prefix, FL_TOPIC_EVENTS);
    return n >= c->want;
}

/* docs[0] has a committed outcome ending at version want or above. */
static bool doc_committed(void *arg)
{
    count_t *cc = arg;
    committed_t c;
    bool ok = committed_read(cc->env, &c) == 0 && c.t[0].last >= (uint64_t)cc->want;
    committed_free(&c);
    return ok;
}

/* Subscribers on a new doc, three flushes delivered, the processor killed
 * before its commit. 1 when nothing of them was committed (a diverging
 * re-run can follow), 0 when the commit came first (try again), -1. */
static int deliver_then_kill(env_t *env, sub_t *subs, rd_kafka_t *rk, const char *tok)
{
    subs_t w = {subs, 2, {0}};
    count_t cc = {env, fl_ktest_count(bootstrap, env->prefix, FL_TOPIC_EVENTS) + 1};
    committed_t c;
    long outcomes;
    for (int i = 0; i < 2; i++)
        if (sub_start(&subs[i], env, tok) != 0)
            return -1;
    /* synced, and the sync's transaction committed: the flushes open the
     * next one, which commits 10 s after */
    if (!fl_wait_until(all_synced, &w, 60000) ||
        !fl_wait_until(committed_events_at_least, &cc, 60000))
        return -1;
    for (uint64_t seq = 1; seq <= 3; seq++)
        if (produce_big(rk, env->prefix, docs[0], seq) != 0)
            return -1;
    if (rd_kafka_flush(rk, 30000) != 0)
        return -1;
    w.version[0] = 3;
    if (!fl_wait_until(all_at, &w, 30000))
        return -1;
    fl_proc_kill(&env->proc);
    if (committed_read(env, &c) != 0) {
        committed_free(&c);
        return -1;
    }
    outcomes = c.outcomes[0];
    committed_free(&c);
    return outcomes == 0 ? 1 : 0;
}

static void test_divergence(void)
{
    env_t *env = &the_env;
    static sub_t subs[2];
    committed_t c;
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    char *tok = fl_token_mint(key, "watcher", "\"acme/\"", "", 3600);
    int got = 0;

    docs[1] = docs[2] = NULL;
    docs[0] = docnames[0];
    ASSERT_TRUE(tok && rk);
    ASSERT_EQ(env_start(env, "fltest-spec-div", "speculative", "10000", "1M"), 0);
    for (int attempt = 0; attempt < 3 && got != 1; attempt++) {
        snprintf(docnames[0], sizeof docnames[0], "acme/div-%d", attempt);
        got = deliver_then_kill(env, subs, rk, tok);
        if (got == 0) {
            for (int i = 0; i < 2; i++)
                sub_stop(&subs[i]);
            ASSERT_EQ(start_processor(env, "10000", "1M"), 0);
        }
        ASSERT_GE(got, 0);
    }
    ASSERT_EQ(got, 1);
    /* the re-run applies the first flush (the same version 1), refuses the
     * second (too large under 2K), and commits soon */
    ASSERT_EQ(start_processor(env, "200", "2K"), 0);
    subs_t w = {subs, 2, {1}};
    ASSERT_TRUE(fl_wait_until(all_at, &w, 60000));
    /* the subscribers may be ahead of the commit (a speculative snapshot) */
    count_t cc = {env, 1};
    ASSERT_TRUE(fl_wait_until(doc_committed, &cc, 60000));
    ASSERT_EQ(committed_read(env, &c), 0);
    printf("  committed: version %llu from %ld outcomes\n", (unsigned long long)c.t[0].last,
           c.outcomes[0]);
    ASSERT_EQ(c.t[0].last, 1);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&subs[i].mu);
        bool same = subs[i].t[0].last == 1 &&
                    memcmp(subs[i].t[0].chain, c.t[0].chain, FL_HASH_LEN) == 0;
        int snaps = subs[i].t[0].snapshots;
        pthread_mutex_unlock(&subs[i].mu);
        ASSERT_TRUE(same);
        ASSERT_EQ(snaps, 2); /* the first, and the one after the divergence */
    }
    ASSERT_EQ(gateway_metric(env, "flushline_gateway_divergences_total"), 1);
    ASSERT_TRUE(fl_proc_log_contains(&env->gw, "diverged"));
    for (int i = 0; i < 2; i++)
        sub_stop(&subs[i]);
    committed_free(&c);
    rd_kafka_destroy(rk);
    free(tok);
}

/* ---- committed vs speculative --------------------------------------------------------------- */

/* With a commit interval of 10 s, a flush's delta reaches the subscriber
 * before its outcome is committed (speculative) or only after (committed). */
static void visibility(const char *delivery, bool before_commit)
{
    env_t *env = &the_env;
    static sub_t sub;
    committed_t c;
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    char *tok = fl_token_mint(key, "watcher", "\"acme/\"", "", 3600);
    subs_t w = {&sub, 1, {1}};
    long committed_outcomes;

    docs[1] = docs[2] = NULL;
    docs[0] = docnames[0];
    snprintf(docnames[0], sizeof docnames[0], "acme/vis");
    ASSERT_TRUE(tok && rk);
    ASSERT_EQ(env_start(env, "fltest-spec-vis", delivery, "10000", "1M"), 0);
    ASSERT_EQ(sub_start(&sub, env, tok), 0);
    count_t cc = {env, 1};
    ASSERT_TRUE(fl_wait_until(all_synced, &w, 60000));
    ASSERT_TRUE(fl_wait_until(committed_events_at_least, &cc, 60000));
    ASSERT_EQ(produce_big(rk, env->prefix, docs[0], 1), 0);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    ASSERT_TRUE(fl_wait_until(all_at, &w, 60000));
    ASSERT_EQ(committed_read(env, &c), 0);
    committed_outcomes = c.outcomes[0];
    committed_free(&c);
    printf("  %s: committed outcomes when the delta arrived: %ld\n", delivery, committed_outcomes);
    ASSERT_EQ(committed_outcomes, before_commit ? 0 : 1);
    sub_stop(&sub);
    rd_kafka_destroy(rk);
    free(tok);
}

static void test_speculative_before_commit(void)
{
    visibility("speculative", true);
}

static void test_committed_after_commit(void)
{
    visibility("committed", false);
}

static void run(const char *name, fl_test_fn fn)
{
    fl_test_run(name, fn);
    env_stop(&the_env);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    if (fl_token_keyfile("fltest-spec-key", keypath, sizeof keypath, &key) != 0) {
        fprintf(stderr, "cannot write a key file\n");
        return 1;
    }
    run("test_committed_after_commit", test_committed_after_commit);
    run("test_speculative_before_commit", test_speculative_before_commit);
    run("test_divergence", test_divergence);
    run("test_kill9_speculative", test_kill9_speculative);
    fl_jwt_keyfile_free(key);
    return fl_test_done();
}
