/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The native cluster under load: scripts/cluster runs two processors and two
 * gateways (this build's binaries, the suite's broker, a topic set and run
 * folder of its own per case), and C clients (client/, all in one
 * fl_client_ctx_t) sit on both gateways, FL_CLUSTER_CLIENTS per gateway
 * (default 200), flushing to 50 documents in rounds: FL_CLUSTER_FLUSHES
 * flushes per client (default 20), each `incr /n 1` + `incr /c<client> 1`.
 * Cases:
 * - converge: no fault;
 * - sigterm: while the rounds go on, SIGTERM processor-1 and gateway-1
 *   (scripts/cluster stop), then start them again;
 * - kill9: the same with SIGKILL (scripts/cluster kill).
 * Each case then checks:
 * - every flush answered, no final nack; every client's copy of its document
 *   at the expected version (2 per flush), /n = the document's flushes and
 *   /c<client> = its flushes (nothing lost, nothing applied twice);
 * - after `scripts/cluster down` (SIGTERM: final snapshots), the whole
 *   history against the sequential model (tests/util/fl_model.h): one outcome
 *   per commands record, equal to the model's, contiguous versions, no
 *   missing, no extra; every snapshot has the model's digest;
 * - exactly one applied (non-duplicate) outcome in events per (client, seq),
 *   and exactly one acknowledgement per seq to each client;
 * - per document, the client copies' digest = the newest snapshot's digest =
 *   the model's = the digest of `flushline replay`'s last line; `flushline
 *   verify` exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_ktest.h"
#include "fl_model.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/client.h"
#include "flushline/log.h"
#include "flushline/wire.h"

#define DOCS 50
#define MAX_CLIENTS 1000
#define MAX_FLUSHES 200
#define PARTITIONS 6

static const char *bootstrap;
static int nper = 200, nflush = 20;

/* ---- the cluster, through scripts/cluster ------------------------------------ */

typedef struct cluster_s {
    char dir[600], prefix[96], env[2400];
    int ports[4]; /* gateway-1, gateway-2, processor-1, processor-2 */
    bool up;
} cluster_t;

static cluster_t the_cluster;

static void cluster_init(cluster_t *c, const char *stem)
{
    char name[96];
    memset(c, 0, sizeof *c);
    fl_test_unique(stem, c->prefix, sizeof c->prefix);
    snprintf(c->dir, sizeof c->dir, "%s/tests/%s", getenv("FL_BINARY_DIR"),
             fl_test_unique("cluster", name, sizeof name));
    for (int i = 0; i < 4; i++) {
        c->ports[i] = fl_free_port();
        for (int j = 0; j < i; j++)
            if (c->ports[j] == c->ports[i])
                i--;
    }
    /* The gateways' hello.timeout.ms (10 s in compose/gateway.conf) is a
     * deadline on this one process serving every client: after a gateway
     * restart its clients all reconnect at once, and on a busy machine the
     * last hellos left 15-27 s after their connections (500 clients per
     * gateway; nothing was unread when the gateway timed them out). A late hello is closed 4001,
     * and a client stops for good on 4001 (PROTOCOL.md section 7) with its
     * flushes unanswered. The environment overrides the file. */
    snprintf(c->env, sizeof c->env,
             "FLUSHLINE_CLUSTER_DIR='%s' FLUSHLINE_CLUSTER_BIN='%s/bin' "
             "FLUSHLINE_CLUSTER_BOOTSTRAP='%s' FLUSHLINE_CLUSTER_PORTS='%d %d %d %d' "
             "FLUSHLINE_PREFIX='%s' FLUSHLINE_PARTITIONS=%d FLUSHLINE_HELLO_TIMEOUT_MS=2m",
             c->dir, getenv("FL_BINARY_DIR"), bootstrap, c->ports[0], c->ports[1], c->ports[2],
             c->ports[3], c->prefix, PARTITIONS);
}

/* Starts `sh -c "ENV scripts/cluster ARGS"` (output appended to the run
 * folder's script.log); returns the child's pid. */
static pid_t cluster_async(cluster_t *c, const char *args)
{
    char cmd[4600];
    /* ARGS name the script as "$s" */
    snprintf(cmd, sizeof cmd, "export %s; mkdir -p '%s'; s='%s/scripts/cluster'; { %s; } >>'%s/script.log' 2>&1",
             c->env, c->dir, getenv("FL_SOURCE_DIR"), args, c->dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int cluster_sync(cluster_t *c, const char *args)
{
    int st;
    pid_t pid = cluster_async(c, args);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void cluster_dump(cluster_t *c)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "for f in '%s'/script.log '%s'/logs/*.log; do echo \"== $f\"; tail -n 15 \"$f\"; "
             "done >&2",
             c->dir, c->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no logs)\n");
}

static void cluster_down_atexit(void)
{
    if (the_cluster.up) {
        cluster_sync(&the_cluster, "\"$s\" down");
        the_cluster.up = false;
    }
}

static char *mint_token(cluster_t *c)
{
    char cmd[2000], buf[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/bin/flushline' token mint --key '%s/dev.key' --sub load --write ops/ --ttl 2h",
             getenv("FL_BINARY_DIR"), c->dir);
    FILE *fp = popen(cmd, "r");
    if (!fp)
        return NULL;
    char *ok = fgets(buf, sizeof buf, fp);
    pclose(fp);
    if (!ok)
        return NULL;
    buf[strcspn(buf, "\n")] = '\0';
    return strdup(buf);
}

/* ---- clients ------------------------------------------------------------------ */

typedef struct cl_s {
    fl_client_t *client;
    int idx, doc;
    uint8_t id[FL_CLIENT_ID_LEN]; /* kept after the client is freed */
    long outcomes, dups, nack_final;
    int acks[MAX_FLUSHES + 1];
    int stops, last_close; /* a stop is for good (4000-4099): reported */
} cl_t;

static cl_t *cls;
static int ncl;
static char docids[DOCS][16];

static void on_outcome(fl_client_t *client, void *opaque, const fl_outcome_t *o)
{
    cl_t *cl = opaque;
    (void)client;
    cl->outcomes++;
    cl->dups += o->duplicate;
    if (o->seq <= MAX_FLUSHES)
        cl->acks[o->seq]++;
}

static void on_nack(fl_client_t *client, void *opaque, const fl_client_nack_t *nack)
{
    cl_t *cl = opaque;
    (void)client;
    if (!nack->retrying)
        cl->nack_final++;
}

static void on_status(fl_client_t *client, void *opaque, fl_client_state_t state, int close_code)
{
    cl_t *cl = opaque;
    (void)client;
    if (close_code)
        cl->last_close = close_code;
    if (state == FL_CLIENT_STOPPED)
        cl->stops++;
}

/* For a failure's message: how many clients are in each state with each
 * last close code, and a few of those that are stopped (a stopped client
 * never resends) or not ready or have flushes pending. */
typedef struct group_s {
    int state, close, n;
    long pending;
} group_t;

static void report_clients(void)
{
    group_t groups[32];
    int ngroups = 0, shown = 0;
    for (int i = 0; i < ncl; i++) {
        int st = (int)fl_client_state(cls[i].client), g;
        for (g = 0; g < ngroups; g++)
            if (groups[g].state == st && groups[g].close == cls[i].last_close)
                break;
        if (g == ngroups && ngroups < 32)
            groups[ngroups++] = (group_t){st, cls[i].last_close, 0, 0};
        if (g < ngroups) {
            groups[g].n++;
            groups[g].pending += fl_client_pending(cls[i].client);
        }
    }
    for (int g = 0; g < ngroups; g++)
        fprintf(stderr, "  %d clients %s, last close %d, %ld flushes pending\n", groups[g].n,
                fl_client_state_name(groups[g].state), groups[g].close, groups[g].pending);
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < ncl && shown < 12; i++) {
            fl_client_state_t st = fl_client_state(cls[i].client);
            unsigned pending = fl_client_pending(cls[i].client);
            bool show = pass == 0   ? st == FL_CLIENT_STOPPED
                        : pass == 1 ? st != FL_CLIENT_STOPPED && st != FL_CLIENT_READY
                                    : st == FL_CLIENT_READY && pending > 0;
            if (show && shown++ < 12)
                fprintf(stderr,
                        "  client %d (gateway-%d, %s): %s, last close %d, stops %d, %u pending, "
                        "%ld answered\n",
                        i, i < nper ? 1 : 2, docids[cls[i].doc], fl_client_state_name(st),
                        cls[i].last_close, cls[i].stops, pending, cls[i].outcomes);
        }
}

static fl_slice_t doc_of(const cl_t *cl)
{
    return (fl_slice_t){docids[cl->doc], strlen(docids[cl->doc])};
}

typedef bool (*cond_fn)(void *arg);

static bool pump(fl_client_ctx_t *ctx, cond_fn cond, void *arg, int timeout_ms)
{
    int64_t deadline = fl_test_now_ms() + timeout_ms;
    while (!cond || !cond(arg)) {
        if (fl_test_now_ms() >= deadline)
            return cond ? cond(arg) : true;
        fl_client_service(ctx, 10);
    }
    return true;
}

static bool all_synced(void *arg)
{
    (void)arg;
    for (int i = 0; i < ncl; i++)
        if (!fl_client_doc(cls[i].client, doc_of(&cls[i])))
            return false;
    return true;
}

static bool all_answered(void *arg)
{
    (void)arg;
    for (int i = 0; i < ncl; i++)
        if (fl_client_pending(cls[i].client) != 0)
            return false;
    return true;
}

/* Every copy at its document's final version: 2 commands per flush, 2 *
 * nper / DOCS clients per document. */
static bool all_final(void *arg)
{
    uint64_t want = (uint64_t)2 * (uint64_t)nflush * (uint64_t)(2 * nper / DOCS);
    (void)arg;
    for (int i = 0; i < ncl; i++) {
        const fl_doc_t *d = fl_client_doc(cls[i].client, doc_of(&cls[i]));
        if (!d || fl_doc_version(d) != want)
            return false;
    }
    return true;
}

static int flush_round(int round)
{
    (void)round;
    for (int i = 0; i < ncl; i++) {
        char key[16];
        fl_cmd_t c[2] = {{.op = FL_OP_INCR, .path = FL_SLICE("/n"), .has_value = true},
                         {.op = FL_OP_INCR, .has_value = true}};
        snprintf(key, sizeof key, "/c%d", cls[i].idx);
        c[0].value = fl_value_int(1);
        c[1].path = (fl_slice_t){key, strlen(key)};
        c[1].value = fl_value_int(1);
        int rc = fl_client_flush(cls[i].client, doc_of(&cls[i]), c, 2, 0, NULL);
        if (rc != 0) {
            fprintf(stderr, "flush of client %d: %s\n", i, fl_client_strerror(rc));
            report_clients();
            return -1;
        }
    }
    return 0;
}

/* ---- history checks ------------------------------------------------------------- */

typedef struct hist_s {
    fl_arena_t *arena;
    uint64_t snap_version[DOCS];
    uint8_t snap_digest[DOCS][FL_HASH_LEN];
    int applied[MAX_CLIENTS][MAX_FLUSHES + 1];
    long dup_events, foreign;
} hist_t;

static int doc_index(fl_slice_t doc)
{
    int d;
    if (doc.len < 5 || memcmp(doc.ptr, "ops/d", 5) != 0)
        return -1;
    d = atoi(doc.ptr + 5);
    return d >= 0 && d < DOCS && strlen(docids[d]) == doc.len ? d : -1;
}

static int on_snapshot_rec(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    hist_t *h = opaque;
    fl_wire_msg_t wm;
    char errstr[128];
    int d;
    (void)p, (void)off;
    fl_arena_reset(h->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, h->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_SNAPSHOT || (d = doc_index(wm.u.snapshot.doc)) < 0)
        return 0;
    if (wm.u.snapshot.version >= h->snap_version[d]) {
        h->snap_version[d] = wm.u.snapshot.version;
        memcpy(h->snap_digest[d], wm.u.snapshot.digest, FL_HASH_LEN);
    }
    return 0;
}

static int on_event_rec(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    hist_t *h = opaque;
    fl_wire_msg_t wm;
    char errstr[128];
    (void)p, (void)off;
    fl_arena_reset(h->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, h->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_OUTCOME)
        return 0;
    const fl_outcome_t *o = &wm.u.outcome.outcome;
    for (int i = 0; i < ncl; i++) {
        if (memcmp(cls[i].id, o->client_id, FL_CLIENT_ID_LEN) != 0)
            continue;
        if (o->duplicate)
            h->dup_events++;
        else if (o->seq <= MAX_FLUSHES)
            h->applied[i][o->seq]++;
        return 0;
    }
    h->foreign++;
    return 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* `flushline replay` digests: the last line per document. */
static int replay_digests(cluster_t *c, char out[DOCS][2 * FL_HASH_LEN + 1])
{
    char cmd[2000], *line = NULL;
    size_t cap = 0;
    int lines = 0;
    snprintf(cmd, sizeof cmd, "'%s/bin/flushline' replay --quiet --bootstrap '%s' --prefix '%s'",
             getenv("FL_BINARY_DIR"), bootstrap, c->prefix);
    FILE *fp = popen(cmd, "r");
    if (!fp)
        return -1;
    while (getline(&line, &cap, fp) > 0) {
        const char *d = strstr(line, "\"doc\":\""), *g = strstr(line, "\"digest\":\"");
        if (!d || !g)
            continue;
        d += 7;
        fl_slice_t doc = {d, strcspn(d, "\"")};
        int i = doc_index(doc);
        if (i >= 0)
            snprintf(out[i], 2 * FL_HASH_LEN + 1, "%.*s", 2 * FL_HASH_LEN, g + 10);
        lines++;
    }
    free(line);
    return pclose(fp) == 0 ? lines : -1;
}

/* ---- one case -------------------------------------------------------------------- */

typedef enum { FAULT_NONE, FAULT_TERM, FAULT_KILL } fault_t;

static bool child_done(void *arg)
{
    pid_t *pid = arg;
    int st;
    if (*pid <= 0)
        return true;
    if (waitpid(*pid, &st, WNOHANG) == *pid) {
        *pid = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        return true;
    }
    return false;
}

static void run_case(const char *stem, fault_t fault)
{
    cluster_t *const c = &the_cluster;
    char errstr[256];
    fl_client_ctx_t *ctx = NULL;
    char *tok = NULL;
    hist_t *h = NULL;
    fl_model_t *m = NULL;
    int64_t t0 = fl_test_now_ms();

    cluster_init(c, stem);
    ASSERT_EQ(fl_ktest_topics(bootstrap, c->prefix, PARTITIONS), 0);
    c->up = true;
    if (cluster_sync(c, "\"$s\" up") != 0) {
        cluster_dump(c);
        FL_FAIL_("scripts/cluster up failed");
    }
    printf("  cluster up in %lld ms (gateways %d %d, processors %d %d)\n",
           (long long)(fl_test_now_ms() - t0), c->ports[0], c->ports[1], c->ports[2], c->ports[3]);
    ASSERT_TRUE((tok = mint_token(c)) != NULL);
    ASSERT_TRUE((ctx = fl_client_ctx_new(errstr, sizeof errstr)) != NULL);
    ncl = 2 * nper;
    cls = calloc((size_t)ncl, sizeof *cls);
    for (int i = 0; i < ncl; i++) {
        fl_client_opts_t o;
        memset(&o, 0, sizeof o);
        cls[i].idx = i;
        cls[i].doc = i % DOCS;
        o.host = "127.0.0.1";
        o.port = i < nper ? c->ports[0] : c->ports[1];
        o.token = tok;
        o.name = "cluster-load";
        o.backoff_initial_ms = 100;
        o.backoff_max_ms = 1000;
        o.ack_timeout_ms = 8000;
        o.cb.on_outcome = on_outcome;
        o.cb.on_nack = on_nack;
        o.cb.on_status = on_status;
        o.opaque = &cls[i];
        ASSERT_TRUE((cls[i].client = fl_client_new(ctx, &o)) != NULL);
        memcpy(cls[i].id, fl_client_id(cls[i].client), FL_CLIENT_ID_LEN);
        ASSERT_EQ(fl_client_subscribe(cls[i].client, doc_of(&cls[i])), 0);
    }
    if (!pump(ctx, all_synced, NULL, 120000)) {
        report_clients();
        cluster_dump(c);
        FL_FAIL_("not every client synced");
    }
    int64_t t1 = fl_test_now_ms();
    printf("  %d clients subscribed in %lld ms\n", ncl, (long long)(t1 - t0));

    /* rounds every 200 ms; the fault at a third of them, the restart as soon
     * as both parts are gone, the rounds going on meanwhile */
    pid_t job = 0;
    int phase = 0; /* 0 before the fault, 1 stopping, 2 starting, 3 back */
    int64_t tfault = 0, tstopped = 0, tback = 0;
    for (int r = 0; r < nflush; r++) {
        ASSERT_EQ(flush_round(r), 0);
        if (fault != FAULT_NONE && phase == 0 && r == nflush / 3) {
            job = cluster_async(c, fault == FAULT_TERM
                                       ? "\"$s\" stop processor-1 & p=$!; \"$s\" stop gateway-1 "
                                         "|| exit 1; wait $p"
                                       : "\"$s\" kill processor-1 & p=$!; \"$s\" kill gateway-1 "
                                         "|| exit 1; wait $p");
            tfault = fl_test_now_ms();
            phase = 1;
        }
        int64_t next = fl_test_now_ms() + 200;
        while (fl_test_now_ms() < next) {
            fl_client_service(ctx, 10);
            if ((phase == 1 || phase == 2) && child_done(&job)) {
                ASSERT_EQ(job, 0);
                if (phase == 1) {
                    tstopped = fl_test_now_ms();
                    job = cluster_async(c, "\"$s\" start processor-1 & p=$!; \"$s\" start "
                                           "gateway-1 || exit 1; wait $p");
                    phase = 2;
                } else {
                    tback = fl_test_now_ms();
                    phase = 3;
                }
            }
        }
    }
    if (fault != FAULT_NONE) {
        while (phase != 3) {
            fl_client_service(ctx, 10);
            if (child_done(&job)) {
                if (job != 0) {
                    cluster_dump(c);
                    FL_FAIL_("scripts/cluster stop/kill/start failed (phase %d)", phase);
                }
                if (phase == 1) {
                    tstopped = fl_test_now_ms();
                    job = cluster_async(c, "\"$s\" start processor-1 & p=$!; \"$s\" start "
                                           "gateway-1 || exit 1; wait $p");
                    phase = 2;
                } else {
                    tback = fl_test_now_ms();
                    phase = 3;
                }
            }
            if (fl_test_now_ms() - tfault > 300000)
                FL_FAIL_("the fault did not finish (phase %d)", phase);
        }
        printf("  %s processor-1 and gateway-1: both gone after %lld ms, both healthy again "
               "%lld ms later\n",
               fault == FAULT_TERM ? "SIGTERM" : "SIGKILL", (long long)(tstopped - tfault),
               (long long)(tback - tstopped));
    }
    int64_t t2 = fl_test_now_ms();
    if (!pump(ctx, all_answered, NULL, 180000) || !pump(ctx, all_final, NULL, 60000)) {
        long pending = 0;
        for (int i = 0; i < ncl; i++)
            pending += fl_client_pending(cls[i].client);
        report_clients();
        cluster_dump(c);
        FL_FAIL_("not converged: %ld flushes pending", pending);
    }
    int64_t t3 = fl_test_now_ms();
    long outcomes = 0, dups = 0, resent = 0, connects = 0;
    for (int i = 0; i < ncl; i++) {
        fl_client_stats_t st;
        fl_client_get_stats(cls[i].client, &st);
        outcomes += cls[i].outcomes;
        dups += cls[i].dups;
        resent += (long)st.resent;
        connects += (long)st.connects;
        ASSERT_EQ(cls[i].nack_final, 0);
        ASSERT_EQ(cls[i].stops, 0);
        for (int s = 1; s <= nflush; s++)
            if (cls[i].acks[s] != 1)
                FL_FAIL_("client %d seq %d acknowledged %d times", i, s, cls[i].acks[s]);
    }
    printf("  %d flushes answered %lld ms after the last round (%lld ms of rounds); outcomes %ld "
           "(duplicates %ld), resent %ld, connects %ld\n",
           ncl * nflush, (long long)(t3 - t2), (long long)(t2 - t1), outcomes, dups, resent,
           connects);
    /* the state says it: /n = flushes on the document, /c<i> = client i's */
    uint8_t digest[DOCS][FL_HASH_LEN];
    bool have[DOCS] = {false};
    for (int i = 0; i < ncl; i++) {
        const fl_doc_t *d = fl_client_doc(cls[i].client, doc_of(&cls[i]));
        char key[16];
        uint8_t dg[FL_HASH_LEN];
        snprintf(key, sizeof key, "c%d", i);
        const fl_value_t *n = fl_map_get(fl_doc_state(d), "n", 1);
        const fl_value_t *mine = fl_map_get(fl_doc_state(d), key, strlen(key));
        ASSERT_TRUE(n && n->type == FL_INT && mine && mine->type == FL_INT);
        ASSERT_EQ(n->u.i, nflush * (2 * nper / DOCS));
        ASSERT_EQ(mine->u.i, nflush);
        fl_doc_digest(d, dg);
        if (!have[cls[i].doc]) {
            memcpy(digest[cls[i].doc], dg, FL_HASH_LEN);
            have[cls[i].doc] = true;
        }
        ASSERT_MEM_EQ(dg, FL_HASH_LEN, digest[cls[i].doc], FL_HASH_LEN);
    }

    /* stop (SIGTERM: final snapshots) while the clients are served */
    job = cluster_async(c, "\"$s\" down");
    ASSERT_TRUE(pump(ctx, child_done, &job, 240000));
    ASSERT_EQ(job, 0);
    c->up = false;
    fl_client_ctx_free(ctx);
    ctx = NULL;

    /* the whole history against the sequential model */
    fl_model_report_t rep;
    ASSERT_TRUE((m = fl_model_check(bootstrap, c->prefix, &rep)) != NULL);
    printf("  model: commands %ld outcomes %ld applied commands %ld docs %ld; mismatches %ld "
           "missing %ld extra %ld gaps %ld\n",
           rep.commands, rep.outcomes, rep.applied_cmds, rep.docs, rep.mismatches, rep.missing,
           rep.extra, rep.gaps);
    ASSERT_GE(rep.commands, (long)ncl * nflush);
    ASSERT_EQ(rep.outcomes, rep.commands);
    ASSERT_EQ(rep.mismatches + rep.missing + rep.extra + rep.gaps, 0);
    ASSERT_EQ(rep.applied_cmds, 2L * ncl * nflush);
    ASSERT_EQ(rep.docs, DOCS);
    ASSERT_EQ(fl_model_check_snapshots(m, bootstrap, c->prefix), 0);
    /* each (client, seq) applied exactly once in events */
    h = calloc(1, sizeof *h);
    h->arena = fl_arena_new(1 << 16);
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, c->prefix, FL_TOPIC_EVENTS, on_event_rec, h) > 0);
    ASSERT_EQ(h->foreign, 0);
    for (int i = 0; i < ncl; i++)
        for (int s = 1; s <= nflush; s++)
            if (h->applied[i][s] != 1)
                FL_FAIL_("client %d seq %d applied %d times in events", i, s, h->applied[i][s]);
    printf("  events: every (client, seq) applied once; %ld duplicate answers\n", h->dup_events);
    /* digests: clients = newest snapshot = model = flushline replay */
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, c->prefix, FL_TOPIC_SNAPSHOTS, on_snapshot_rec, h) >
                0);
    static char replayed[DOCS][2 * FL_HASH_LEN + 1];
    memset(replayed, 0, sizeof replayed);
    ASSERT_GT(replay_digests(c, replayed), 0);
    uint64_t want = (uint64_t)2 * (uint64_t)nflush * (uint64_t)(2 * nper / DOCS);
    for (int d = 0; d < DOCS; d++) {
        uint8_t md[FL_HASH_LEN];
        char hx[2 * FL_HASH_LEN + 1];
        fl_doc_t *mdoc = fl_model_doc(m, docids[d]);
        ASSERT_TRUE(have[d] && mdoc != NULL);
        fl_doc_digest(mdoc, md);
        ASSERT_EQ(fl_doc_version(mdoc), want);
        ASSERT_EQ(h->snap_version[d], want);
        ASSERT_MEM_EQ(h->snap_digest[d], FL_HASH_LEN, digest[d], FL_HASH_LEN);
        ASSERT_MEM_EQ(md, FL_HASH_LEN, digest[d], FL_HASH_LEN);
        hex(digest[d], FL_HASH_LEN, hx);
        ASSERT_STR_EQ(replayed[d], hx);
    }
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "'%s/bin/flushline' verify --quiet --bootstrap '%s' --prefix '%s' > '%s/verify.out' "
             "2>&1",
             getenv("FL_BINARY_DIR"), bootstrap, c->prefix, c->dir);
    int vst = system(cmd);
    snprintf(cmd, sizeof cmd, "sed 's/^/  /' '%s/verify.out'", c->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no verify output)\n");
    ASSERT_EQ(vst, 0);
    printf("  %d documents: client copies, snapshots, model and replay agree at v%llu; case "
           "took %lld ms\n",
           DOCS, (unsigned long long)want, (long long)(fl_test_now_ms() - t0));

    fl_model_free(m);
    fl_arena_free(h->arena);
    free(h);
    free(tok);
    free(cls);
    cls = NULL;
}

static void test_converge(void)
{
    run_case("fltest-cl-conv", FAULT_NONE);
}

static void test_sigterm_processor_and_gateway(void)
{
    run_case("fltest-cl-term", FAULT_TERM);
}

static void test_kill9_processor_and_gateway(void)
{
    run_case("fltest-cl-kill", FAULT_KILL);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    if (getenv("FL_CLUSTER_CLIENTS"))
        nper = atoi(getenv("FL_CLUSTER_CLIENTS"));
    if (getenv("FL_CLUSTER_FLUSHES"))
        nflush = atoi(getenv("FL_CLUSTER_FLUSHES"));
    if (nper < DOCS / 2 || 2 * nper > MAX_CLIENTS || (2 * nper) % DOCS || nflush < 3 ||
        nflush > MAX_FLUSHES) {
        fprintf(stderr, "FL_CLUSTER_CLIENTS: 25..500, a multiple of 25; FL_CLUSTER_FLUSHES "
                        "3..200\n");
        return 2;
    }
    for (int d = 0; d < DOCS; d++)
        snprintf(docids[d], sizeof docids[d], "ops/d%02d", d);
    atexit(cluster_down_atexit);
    printf("  %d clients per gateway, %d flushes each, %d documents\n", nper, nflush, DOCS);
    const char *only = getenv("FL_TEST_ONLY");
#define RUN_SEL(fn)                                                                                \
    do {                                                                                           \
        if (!only || strstr(#fn, only)) {                                                          \
            RUN(fn);                                                                               \
            cluster_down_atexit();                                                                 \
            free(cls);                                                                             \
            cls = NULL;                                                                            \
        }                                                                                          \
    } while (0)
    RUN_SEL(test_converge);
    RUN_SEL(test_sigterm_processor_and_gateway);
    RUN_SEL(test_kill9_processor_and_gateway);
    return fl_test_done();
}
