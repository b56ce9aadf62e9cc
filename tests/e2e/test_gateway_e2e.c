/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gateways end to end, through the C client library (client/), against the
 * real broker with flushline-processor and flushline-gateway as child
 * processes. Each case has its own topic set, processor and gateway(s):
 * - converge: two clients on two gateways, 1,000 interleaved generated
 *   flushes each on one document, end with equal local copies whose digest is the processor's
 *   (newest snapshot after SIGTERM) and the sequential model's; the whole
 *   events history matches the model (no mismatch, missing, extra, gap);
 * - catch-up: a client cut off (by a TCP proxy in this process) while 50
 *   deltas are written reconnects with have_version and gets exactly those
 *   50 deltas (consecutive, no duplicate, no snapshot); cut off for more than
 *   window.deltas (64) it gets a snapshot; either way its copy equals the
 *   writer's;
 * - gateway kill -9 with flushes unacknowledged: the client reconnects to a
 *   gateway restarted on the same port, resends, and every flush is applied
 *   exactly once (model check, per-seq count of applied outcomes), with the
 *   client's copy equal to the processor's snapshot;
 * - a client that stops reading is closed with 4200 and resyncs while a
 *   well-behaved client on the same document keeps receiving; a flooding
 *   client (no pacing) is nacked rate_limited with retry_after and still
 *   gets everything applied, while a paced client is not disturbed;
 * - a burst: thousands of outcomes committed in one transaction (many
 *   times the send queue bound) reach two reading subscribers, neither of
 *   which is closed as a slow consumer;
 * - auth through the client: no token, a forged token (4001) and an expired
 *   one (4004) stop the client (no reconnect); a fresh token restarts it;
 *   another tenant's document is nacked doc_forbidden.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fl_gen.h"
#include "fl_ktest.h"
#include "fl_model.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "fl_token.h"
#include "flushline/client.h"
#include "flushline/jwt.h"
#include "flushline/log.h"
#include "flushline/wire.h"

#define PARTITIONS 4

static const char *bootstrap;
static char keypath[600];
static fl_jwt_keyfile_t *key;

/* ---- tokens ------------------------------------------------------------------ */

static char *mint(const char *sub, const char *read, const char *write, int64_t exp_in)
{
    return fl_token_mint(key, sub, read, write, exp_in);
}

static int setup_keys(void)
{
    return fl_token_keyfile("fltest-gwe2e-key", keypath, sizeof keypath, &key);
}

/* ---- processes --------------------------------------------------------------- */

typedef struct proxy_s proxy_t;

typedef struct env_s {
    char prefix[96];
    fl_proc_t proc;
    fl_proc_t gw, gw2; /* gw2: a second gateway, when a case starts one */
    int port, port2;
    int gw_runs; /* gateway ids are unique per run: <prefix>-gw<n> */
    const char *const *gw_extra;
    const char *const *proc_extra; /* more processor settings, set before env_start */
} env_t;

static int start_processor(env_t *env)
{
    char log[512], txid[160], group[160];
    const char *args[64];
    int n = 0;
    snprintf(log, sizeof log, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), env->prefix);
    snprintf(txid, sizeof txid, "%s-tx", env->prefix);
    snprintf(group, sizeof group, "%s-processors", env->prefix);
    const char *base[] = {"--bootstrap", bootstrap, "--prefix", env->prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", txid, "--http.port", "-1",
                          "--snapshot.every.versions", "200", "--snapshot.interval.ms", "1000",
                          NULL};
    for (int i = 0; base[i]; i++)
        args[n++] = base[i];
    for (int i = 0; env->proc_extra && env->proc_extra[i] && n < 62; i++)
        args[n++] = env->proc_extra[i];
    args[n] = NULL;
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

/* Starts (or restarts) gateway `which` (0: gw on env->port, 1: gw2 on
 * env->port2; ports picked on first start). */
static int start_gateway_n(env_t *env, int which)
{
    char log[512], port[16], gwid[160];
    const char *args[64];
    int n = 0, *portp = which ? &env->port2 : &env->port;
    fl_proc_t *gw = which ? &env->gw2 : &env->gw;
    if (!*portp)
        *portp = fl_free_port();
    snprintf(log, sizeof log, "%s/tests/%s-gateway%s.log", getenv("FL_BINARY_DIR"), env->prefix,
             which ? "2" : "");
    snprintf(port, sizeof port, "%d", *portp);
    snprintf(gwid, sizeof gwid, "%s-gw%d", env->prefix, ++env->gw_runs);
    const char *base[] = {"--bootstrap", bootstrap, "--prefix", env->prefix, "--partitions", "4",
                          "--port", port, "--jwt.keys", keypath, "--gateway.id", gwid, NULL};
    for (int i = 0; base[i]; i++)
        args[n++] = base[i];
    for (int i = 0; env->gw_extra && env->gw_extra[i] && n < 62; i++)
        args[n++] = env->gw_extra[i];
    args[n] = NULL;
    if (fl_proc_start(gw, "flushline-gateway", args, log) != 0)
        return -1;
    health_t h = {*portp, gw};
    if (!fl_wait_until(gateway_healthy, &h, 60000) || !fl_proc_alive(gw)) {
        fl_proc_dump_log(gw, 30);
        return -1;
    }
    return 0;
}

static int start_gateway(env_t *env)
{
    return start_gateway_n(env, 0);
}

/* The current case's processes, proxy and client context: a failed assert
 * returns from the case, and main() stops them all after every case. */
static env_t the_env;
static proxy_t *the_px;
static fl_client_ctx_t *the_ctx;

static int env_start(env_t *env, const char *stem, const char *const *gw_extra)
{
    const char *const *proc_extra = env->proc_extra;
    memset(env, 0, sizeof *env);
    env->proc_extra = proc_extra;
    fl_test_unique(stem, env->prefix, sizeof env->prefix);
    env->gw_extra = gw_extra;
    if (fl_ktest_topics(bootstrap, env->prefix, PARTITIONS) != 0 || start_processor(env) != 0 ||
        start_gateway(env) != 0) {
        fprintf(stderr, "setup of %s failed\n", env->prefix);
        return -1;
    }
    return 0;
}

static void env_stop(env_t *env)
{
    if (fl_test_failures) {
        fl_proc_dump_log(&env->gw, 25);
        fl_proc_dump_log(&env->gw2, 25);
        fl_proc_dump_log(&env->proc, 15);
    }
    fl_proc_kill(&env->gw);
    fl_proc_kill(&env->gw2);
    fl_proc_kill(&env->proc);
}

/* ---- a TCP proxy (own thread) that can cut, refuse and stall connections ------ */

#define PROXY_MAX 16

struct proxy_s {
    int lfd, port, upstream;
    pthread_t th;
    _Atomic int block;  /* close every connection, refuse new ones */
    _Atomic int stall;  /* stop reading from the gateway (the client stops receiving) */
    _Atomic int hold;   /* read from the gateway but keep it from the client until cleared */
    _Atomic int stop;
    _Atomic int accepted;
    int small_rcvbuf;   /* SO_RCVBUF of the upstream sockets */
    int c[PROXY_MAX], u[PROXY_MAX];
    char *held[PROXY_MAX]; /* what the gateway sent while held, for the client */
    size_t nheld[PROXY_MAX], capheld[PROXY_MAX];
};

static void pair_close(proxy_t *px, int i)
{
    close(px->c[i]);
    if (px->u[i] >= 0)
        close(px->u[i]);
    px->c[i] = px->u[i] = -1;
    free(px->held[i]);
    px->held[i] = NULL;
    px->nheld[i] = px->capheld[i] = 0;
}

static void hold_bytes(proxy_t *px, int i, const char *p, size_t n)
{
    if (px->nheld[i] + n > px->capheld[i]) {
        size_t cap = (px->nheld[i] + n) * 2;
        char *b = realloc(px->held[i], cap);
        if (!b)
            abort(); /* a test helper out of memory */
        px->held[i] = b;
        px->capheld[i] = cap;
    }
    memcpy(px->held[i] + px->nheld[i], p, n);
    px->nheld[i] += n;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *proxy_main(void *arg)
{
    proxy_t *px = arg;
    static __thread char buf[1 << 16];
    while (!atomic_load(&px->stop)) {
        struct pollfd pfd[1 + 2 * PROXY_MAX];
        int idx[1 + 2 * PROXY_MAX], n = 0;
        if (atomic_load(&px->block))
            for (int i = 0; i < PROXY_MAX; i++)
                if (px->c[i] >= 0)
                    pair_close(px, i);
        /* released: what was held goes first; a gateway that has ended
         * meanwhile ends the client's connection after it */
        if (!atomic_load(&px->hold))
            for (int i = 0; i < PROXY_MAX; i++) {
                if (px->c[i] < 0 || (!px->nheld[i] && px->u[i] >= 0))
                    continue;
                if (write_all(px->c[i], px->held[i], px->nheld[i]) != 0 || px->u[i] < 0)
                    pair_close(px, i);
                else
                    px->nheld[i] = 0;
            }
        pfd[n++] = (struct pollfd){px->lfd, POLLIN, 0};
        for (int i = 0; i < PROXY_MAX; i++) {
            if (px->c[i] < 0)
                continue;
            idx[n] = i;
            pfd[n++] = (struct pollfd){px->c[i], POLLIN, 0};
            if (!atomic_load(&px->stall) && px->u[i] >= 0) {
                idx[n] = i;
                pfd[n++] = (struct pollfd){px->u[i], POLLIN, 0};
            }
        }
        if (poll(pfd, (nfds_t)n, 10) <= 0)
            continue;
        if (pfd[0].revents & POLLIN) {
            int c = accept(px->lfd, NULL, NULL), slot = -1;
            for (int i = 0; i < PROXY_MAX && c >= 0; i++)
                if (px->c[i] < 0) {
                    slot = i;
                    break;
                }
            if (c >= 0 && (atomic_load(&px->block) || slot < 0)) {
                close(c);
            } else if (c >= 0) {
                struct sockaddr_in sa = {.sin_family = AF_INET,
                                         .sin_port = htons((uint16_t)px->upstream)};
                int u = socket(AF_INET, SOCK_STREAM, 0);
                sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                if (px->small_rcvbuf)
                    setsockopt(u, SOL_SOCKET, SO_RCVBUF, &px->small_rcvbuf,
                               sizeof px->small_rcvbuf);
                if (u < 0 || connect(u, (struct sockaddr *)&sa, sizeof sa) != 0) {
                    close(c);
                    if (u >= 0)
                        close(u);
                } else {
                    px->c[slot] = c;
                    px->u[slot] = u;
                    atomic_fetch_add(&px->accepted, 1);
                }
            }
        }
        for (int k = 1; k < n; k++) {
            int i = idx[k];
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) || px->c[i] < 0)
                continue;
            bool from_client = pfd[k].fd == px->c[i];
            int in = from_client ? px->c[i] : px->u[i], out = from_client ? px->u[i] : px->c[i];
            ssize_t r = read(in, buf, sizeof buf);
            if (!from_client && (atomic_load(&px->hold) || px->nheld[i])) {
                /* held: the gateway's bytes (and its end) wait for the client */
                if (r > 0) {
                    hold_bytes(px, i, buf, (size_t)r);
                } else {
                    close(px->u[i]);
                    px->u[i] = -1;
                }
            } else if (from_client && r > 0 && out < 0) {
                continue; /* the gateway is gone; the client has yet to hear */
            } else if (r <= 0 || write_all(out, buf, (size_t)r) != 0) {
                pair_close(px, i);
            }
        }
    }
    for (int i = 0; i < PROXY_MAX; i++)
        if (px->c[i] >= 0)
            pair_close(px, i);
    return NULL;
}

static int proxy_start(proxy_t *px, int upstream, int small_rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    memset(px, 0, sizeof *px);
    for (int i = 0; i < PROXY_MAX; i++)
        px->c[i] = px->u[i] = -1;
    px->upstream = upstream;
    px->small_rcvbuf = small_rcvbuf;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((px->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(px->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(px->lfd, 16) != 0 ||
        getsockname(px->lfd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    px->port = ntohs(sa.sin_port);
    return pthread_create(&px->th, NULL, proxy_main, px) == 0 ? 0 : -1;
}

static void proxy_stop(proxy_t *px)
{
    atomic_store(&px->stop, 1);
    pthread_join(px->th, NULL);
    close(px->lfd);
}

/* ---- clients ------------------------------------------------------------------ */

#define MAX_SEQ 4096

/* What one client saw, filled by its callbacks. */
typedef struct cl_s {
    fl_client_t *client;
    const char *name;
    int last_state, last_close, stops, disconnects, readies;
    long deltas, snapshots, outcomes, dups, nacks, nack_rate, nack_retry_after, nack_forbidden;
    long nack_final, errors;
    long bad_deltas; /* deltas not starting at the previous delta's end */
    uint64_t last_delta_version; /* 0: none since the last reset */
    uint64_t max_version_after;
    uint16_t last_nack_code;
    uint16_t final_code;    /* of the last nack the client did not retry */
    uint64_t final_seq;     /* its seq, and the outcomes that seq had had by then */
    int final_answered;
    int outcome_per_seq[MAX_SEQ];
} cl_t;

static void on_status(fl_client_t *client, void *opaque, fl_client_state_t state, int close_code)
{
    cl_t *cl = opaque;
    (void)client;
    if (cl->last_state == FL_CLIENT_READY && state != FL_CLIENT_READY)
        cl->disconnects++;
    if (state == FL_CLIENT_READY)
        cl->readies++;
    if (state == FL_CLIENT_STOPPED)
        cl->stops++;
    if (close_code)
        cl->last_close = close_code;
    cl->last_state = state;
}

static void on_snapshot(fl_client_t *client, void *opaque, fl_slice_t doc, uint64_t version,
                        const fl_value_t *state)
{
    cl_t *cl = opaque;
    (void)client, (void)doc, (void)state;
    cl->snapshots++;
    cl->last_delta_version = version;
}

static void on_delta(fl_client_t *client, void *opaque, fl_slice_t doc, const fl_wire_delta_t *d)
{
    cl_t *cl = opaque;
    (void)client, (void)doc;
    if (cl->last_delta_version && d->version - d->ncmds != cl->last_delta_version)
        cl->bad_deltas++;
    cl->last_delta_version = d->version;
    cl->deltas++;
}

static void on_outcome(fl_client_t *client, void *opaque, const fl_outcome_t *o)
{
    cl_t *cl = opaque;
    (void)client;
    cl->outcomes++;
    cl->dups += o->duplicate;
    if (o->seq < MAX_SEQ)
        cl->outcome_per_seq[o->seq]++;
    if (o->version_after > cl->max_version_after)
        cl->max_version_after = o->version_after;
}

static void on_nack(fl_client_t *client, void *opaque, const fl_client_nack_t *nack)
{
    cl_t *cl = opaque;
    (void)client;
    cl->nacks++;
    cl->last_nack_code = nack->code;
    if (nack->code == FL_CODE_RATE_LIMITED) {
        cl->nack_rate++;
        if (nack->retry_after_ms > 0 && nack->retrying)
            cl->nack_retry_after++;
    }
    if (nack->code == FL_CODE_DOC_FORBIDDEN)
        cl->nack_forbidden++;
    if (!nack->retrying) {
        cl->nack_final++;
        cl->final_code = nack->code;
        cl->final_seq = nack->has_seq ? nack->seq : 0;
        cl->final_answered = nack->has_seq && nack->seq < MAX_SEQ
                                 ? cl->outcome_per_seq[nack->seq]
                                 : -1;
    }
}

static void on_error(fl_client_t *client, void *opaque, int code, fl_slice_t reason)
{
    cl_t *cl = opaque;
    (void)client, (void)code, (void)reason;
    cl->errors++;
}

static fl_client_t *cl_new(fl_client_ctx_t *ctx, cl_t *cl, const char *name, int port,
                           const char *token, bool no_pacing)
{
    fl_client_opts_t o;
    memset(cl, 0, sizeof *cl);
    memset(&o, 0, sizeof o);
    cl->name = name;
    o.host = "127.0.0.1";
    o.port = port;
    o.token = token;
    o.name = name;
    o.no_pacing = no_pacing;
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 400;
    o.cb.on_status = on_status;
    o.cb.on_snapshot = on_snapshot;
    o.cb.on_delta = on_delta;
    o.cb.on_outcome = on_outcome;
    o.cb.on_nack = on_nack;
    o.cb.on_error = on_error;
    o.opaque = cl;
    return cl->client = fl_client_new(ctx, &o);
}

typedef bool (*cond_fn)(void *arg);

/* Runs the client loop until cond(arg) holds or timeout_ms pass. */
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

/* Conditions over a few clients and one document. */
typedef struct wait_s {
    cl_t *cl[4];
    int n;
    fl_slice_t doc;
    uint64_t version; /* every local copy at it */
} wait_t;

static bool all_ready(void *arg)
{
    wait_t *w = arg;
    for (int i = 0; i < w->n; i++)
        if (fl_client_state(w->cl[i]->client) != FL_CLIENT_READY)
            return false;
    return true;
}

static bool all_synced(void *arg)
{
    wait_t *w = arg;
    for (int i = 0; i < w->n; i++)
        if (!fl_client_doc(w->cl[i]->client, w->doc))
            return false;
    return true;
}

static bool all_at_version(void *arg)
{
    wait_t *w = arg;
    for (int i = 0; i < w->n; i++) {
        const fl_doc_t *doc = fl_client_doc(w->cl[i]->client, w->doc);
        if (!doc || fl_doc_version(doc) != w->version)
            return false;
    }
    return true;
}

static bool all_answered(void *arg)
{
    wait_t *w = arg;
    for (int i = 0; i < w->n; i++)
        if (fl_client_pending(w->cl[i]->client) != 0)
            return false;
    return true;
}

static uint64_t doc_version(cl_t *cl, fl_slice_t doc)
{
    const fl_doc_t *d = fl_client_doc(cl->client, doc);
    return d ? fl_doc_version(d) : UINT64_MAX;
}

static void doc_digest(cl_t *cl, fl_slice_t doc, uint8_t out[FL_HASH_LEN])
{
    const fl_doc_t *d = fl_client_doc(cl->client, doc);
    memset(out, 0, FL_HASH_LEN);
    if (d)
        fl_doc_digest(d, out);
}

/* Flushes one generated flush's commands through the client. */
static int flush_generated(cl_t *cl, fl_gen_t *g, fl_arena_t *arena, const char *doc)
{
    static const uint8_t cid[FL_CLIENT_ID_LEN];
    fl_flush_t f;
    fl_arena_reset(arena);
    fl_gen_flush(g, arena, doc, cid, 1, 4, &f);
    return fl_client_flush(cl->client, f.doc, f.cmds, f.ncmds, f.atomic ? FL_CLIENT_FLUSH_ATOMIC : 0,
                           NULL);
}

static int flush_incr(cl_t *cl, fl_slice_t doc, int64_t by)
{
    fl_cmd_t c = {.op = FL_OP_INCR, .path = FL_SLICE("/n"), .has_value = true};
    c.value = fl_value_int(by);
    return fl_client_flush(cl->client, doc, &c, 1, 0, NULL);
}

/* ---- history checks ---------------------------------------------------------- */

typedef struct snapfind_s {
    fl_arena_t *arena;
    fl_slice_t doc;
    bool seen;
    uint64_t version;
    uint8_t digest[FL_HASH_LEN];
} snapfind_t;

static int on_snap_record(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    snapfind_t *sf = opaque;
    fl_wire_msg_t wm;
    char errstr[128];
    (void)p, (void)off;
    fl_arena_reset(sf->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, sf->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_SNAPSHOT || wm.u.snapshot.doc.len != sf->doc.len ||
        memcmp(wm.u.snapshot.doc.ptr, sf->doc.ptr, sf->doc.len) != 0)
        return 0;
    if (!sf->seen || wm.u.snapshot.version >= sf->version) {
        sf->seen = true;
        sf->version = wm.u.snapshot.version;
        memcpy(sf->digest, wm.u.snapshot.digest, FL_HASH_LEN);
    }
    return 0;
}

/* Applied (non-duplicate) outcome events per seq of one client on one doc. */
typedef struct seqcount_s {
    fl_arena_t *arena;
    fl_slice_t doc;
    const uint8_t *client_id;
    int applied[MAX_SEQ];
    long dup_events;
    long gap_events; /* seqs refused as gaps (resent later, then applied) */
} seqcount_t;

static int on_event_record(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    seqcount_t *sc = opaque;
    fl_wire_msg_t wm;
    char errstr[128];
    (void)p, (void)off;
    fl_arena_reset(sc->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, sc->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_OUTCOME)
        return 0;
    const fl_outcome_t *o = &wm.u.outcome.outcome;
    if (o->doc.len != sc->doc.len || memcmp(o->doc.ptr, sc->doc.ptr, sc->doc.len) != 0 ||
        memcmp(o->client_id, sc->client_id, FL_CLIENT_ID_LEN) != 0 || o->seq >= MAX_SEQ)
        return 0;
    /* A gap refusal applies nothing and is not recorded (ENGINE.md): a
     * resend after a gateway kill may reach the processor before an
     * earlier seq does, and is answered `gap`, then applied once resent. */
    if (o->duplicate)
        sc->dup_events++;
    else if (o->code == FL_CODE_GAP)
        sc->gap_events++;
    else
        sc->applied[o->seq]++;
    return 0;
}

/*
 * SIGTERM the processor (it snapshots on revoke), check the whole history
 * against the model and that the newest snapshot of doc has the model's
 * digest and digest (what the clients hold). Returns 0 when all holds.
 */
static int check_history(env_t *env, const char *doc, const uint8_t digest[FL_HASH_LEN],
                         uint64_t version, long min_commands)
{
    fl_model_report_t rep;
    snapfind_t sf = {.arena = fl_arena_new(1 << 16), .doc = {doc, strlen(doc)}};
    uint8_t mdigest[FL_HASH_LEN];
    int rc = -1, st;
    fl_model_t *m = NULL;
    fl_proc_signal(&env->proc, SIGTERM);
    if ((st = fl_proc_wait(&env->proc, 90000)) != 0) {
        fprintf(stderr, "processor exit status %d after SIGTERM\n", st);
        goto done;
    }
    if (!(m = fl_model_check(bootstrap, env->prefix, &rep)))
        goto done;
    printf("  model: commands %ld outcomes %ld applied commands %ld docs %ld; mismatches %ld "
           "missing %ld extra %ld gaps %ld\n",
           rep.commands, rep.outcomes, rep.applied_cmds, rep.docs, rep.mismatches, rep.missing,
           rep.extra, rep.gaps);
    long badsnap = fl_model_check_snapshots(m, bootstrap, env->prefix);
    fl_doc_t *mdoc = fl_model_doc(m, doc);
    if (!mdoc) {
        fprintf(stderr, "model has no %s\n", doc);
        goto done;
    }
    fl_doc_digest(mdoc, mdigest);
    if (fl_ktest_read_all(bootstrap, env->prefix, FL_TOPIC_SNAPSHOTS, on_snap_record, &sf) < 0)
        goto done;
    printf("  %s: model v%llu, snapshot v%llu, clients v%llu\n", doc,
           (unsigned long long)fl_doc_version(mdoc), (unsigned long long)sf.version,
           (unsigned long long)version);
    if (rep.commands < min_commands || rep.outcomes != rep.commands || rep.mismatches ||
        rep.missing || rep.extra || rep.gaps || badsnap != 0) {
        fprintf(stderr, "model check failed (bad snapshots %ld)\n", badsnap);
        goto done;
    }
    if (!sf.seen || sf.version != version || fl_doc_version(mdoc) != version ||
        memcmp(sf.digest, digest, FL_HASH_LEN) != 0 || memcmp(mdigest, digest, FL_HASH_LEN) != 0) {
        fprintf(stderr, "client copy differs from the processor's snapshot or the model\n");
        goto done;
    }
    rc = 0;
done:
    fl_model_free(m);
    fl_arena_free(sf.arena);
    return rc;
}

/* ---- 1. two clients converge ------------------------------------------------- */

static void test_two_clients_converge(void)
{
    static const char *extra[] = {"--rate", "500", "--burst", "100", NULL};
    env_t *const envp = &the_env;
    char errstr[256];
    fl_client_ctx_t *ctx = NULL;
    cl_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    char *tok_a = mint("alice", "", "\"acme/\"", 3600), *tok_b = mint("bob", "", "\"acme/\"", 3600);
    const char *docid = "acme/converge";
    fl_slice_t doc = {docid, strlen(docid)};
    fl_arena_t *arena = fl_arena_new(1 << 14);
    fl_gen_t g;
    uint8_t da[FL_HASH_LEN], db[FL_HASH_LEN];
    int64_t t0 = fl_test_now_ms();

    if (env_start(envp, "fltest-gwe-conv", extra) != 0 || start_gateway_n(envp, 1) != 0)
        FL_FAIL_("setup");
    ctx = the_ctx = fl_client_ctx_new(errstr, sizeof errstr);
    ASSERT_TRUE(ctx != NULL);
    /* A on the first gateway, B on the second */
    ASSERT_TRUE(cl_new(ctx, a, "A", envp->port, tok_a, false) != NULL);
    ASSERT_TRUE(cl_new(ctx, b, "B", envp->port2, tok_b, false) != NULL);
    ASSERT_EQ(fl_client_subscribe(a->client, doc), 0);
    ASSERT_EQ(fl_client_subscribe(b->client, doc), 0);
    wait_t w = {.cl = {a, b}, .n = 2, .doc = doc};
    ASSERT_TRUE(pump(ctx, all_synced, &w, 60000));

    fl_gen_seed(&g, 42);
    for (int i = 0; i < 1000; i++) {
        ASSERT_EQ(flush_generated(a, &g, arena, docid), 0);
        ASSERT_EQ(flush_generated(b, &g, arena, docid), 0);
        if (i % 20 == 0)
            fl_client_service(ctx, 0);
    }
    ASSERT_TRUE(pump(ctx, all_answered, &w, 120000));
    w.version = a->max_version_after > b->max_version_after ? a->max_version_after
                                                             : b->max_version_after;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));
    printf("  2000 flushes answered in %lld ms, document at v%llu\n",
           (long long)(fl_test_now_ms() - t0), (unsigned long long)w.version);
    ASSERT_EQ(a->outcomes, 1000);
    ASSERT_EQ(b->outcomes, 1000);
    printf("  nacks: A %ld (rate_limited %ld), B %ld (rate_limited %ld)\n", a->nacks, a->nack_rate,
           b->nacks, b->nack_rate);
    ASSERT_EQ(a->nack_final + b->nack_final, 0);
    ASSERT_EQ(a->bad_deltas + b->bad_deltas, 0);
    ASSERT_EQ(a->disconnects + b->disconnects, 0);
    fl_client_stats_t sa, sb;
    fl_client_get_stats(a->client, &sa);
    fl_client_get_stats(b->client, &sb);
    ASSERT_EQ(sa.resyncs + sb.resyncs, 0);
    doc_digest(a, doc, da);
    doc_digest(b, doc, db);
    ASSERT_MEM_EQ(da, FL_HASH_LEN, db, FL_HASH_LEN);
    ASSERT_EQ(check_history(envp, docid, da, w.version, 2000), 0);

    fl_arena_free(arena);
    free(a);
    free(b);
    free(tok_a);
    free(tok_b);
}

/* ---- 2. catch-up with have_version ------------------------------------------------ */

static bool state_not_ready(void *arg)
{
    cl_t *cl = arg;
    return fl_client_state(cl->client) != FL_CLIENT_READY;
}

static void test_catchup_have_version(void)
{
    static const char *extra[] = {"--window.deltas", "64", NULL};
    env_t *const envp = &the_env;
    proxy_t *px = the_px = calloc(1, sizeof *px);
    char errstr[256];
    fl_client_ctx_t *ctx = NULL;
    cl_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    char *tok_a = mint("alice", "\"acme/\"", "", 3600), *tok_b = mint("bob", "", "\"acme/\"", 3600);
    const char *docid = "acme/catchup";
    fl_slice_t doc = {docid, strlen(docid)};
    uint8_t da[FL_HASH_LEN], db[FL_HASH_LEN];

    if (env_start(envp, "fltest-gwe-catch", extra) != 0)
        FL_FAIL_("setup");
    ASSERT_EQ(proxy_start(px, envp->port, 0), 0);
    ctx = the_ctx = fl_client_ctx_new(errstr, sizeof errstr);
    ASSERT_TRUE(ctx != NULL);
    /* A (read-only) goes through the proxy, B (the writer) directly */
    ASSERT_TRUE(cl_new(ctx, a, "A", px->port, tok_a, false) != NULL);
    ASSERT_TRUE(cl_new(ctx, b, "B", envp->port, tok_b, false) != NULL);
    ASSERT_EQ(fl_client_subscribe(a->client, doc), 0);
    ASSERT_EQ(fl_client_subscribe(b->client, doc), 0);
    wait_t w = {.cl = {a, b}, .n = 2, .doc = doc};
    ASSERT_TRUE(pump(ctx, all_synced, &w, 60000));
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(flush_incr(b, doc, 1), 0);
    w.version = 5;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));

    /* cut A off; B writes 50 single-command flushes */
    atomic_store(&px->block, 1);
    ASSERT_TRUE(pump(ctx, state_not_ready, a, 10000));
    for (int i = 0; i < 50; i++)
        ASSERT_EQ(flush_incr(b, doc, i + 1), 0);
    wait_t wb = {.cl = {b}, .n = 1, .doc = doc, .version = 55};
    ASSERT_TRUE(pump(ctx, all_at_version, &wb, 60000));
    ASSERT_EQ(doc_version(a, doc), 5);
    a->deltas = a->snapshots = a->bad_deltas = 0;
    a->last_delta_version = 5;
    int readies = a->readies;
    atomic_store(&px->block, 0);
    w.version = 55;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));
    ASSERT_GT(a->readies, readies);
    /* exactly the 50 missing deltas, consecutive, no snapshot */
    ASSERT_EQ(a->snapshots, 0);
    ASSERT_EQ(a->deltas, 50);
    ASSERT_EQ(a->bad_deltas, 0);
    ASSERT_EQ(a->last_delta_version, 55);
    /* nothing more arrives (no duplicate after the catch-up) */
    pump(ctx, NULL, NULL, 300);
    ASSERT_EQ(a->deltas, 50);
    doc_digest(a, doc, da);
    doc_digest(b, doc, db);
    ASSERT_MEM_EQ(da, FL_HASH_LEN, db, FL_HASH_LEN);

    /* cut off for more than window.deltas (64): a snapshot instead */
    atomic_store(&px->block, 1);
    ASSERT_TRUE(pump(ctx, state_not_ready, a, 10000));
    for (int i = 0; i < 80; i++)
        ASSERT_EQ(flush_incr(b, doc, 1), 0);
    wb.version = 135;
    ASSERT_TRUE(pump(ctx, all_at_version, &wb, 60000));
    a->deltas = a->snapshots = a->bad_deltas = 0;
    atomic_store(&px->block, 0);
    w.version = 135;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));
    ASSERT_EQ(a->snapshots, 1);
    ASSERT_EQ(a->deltas, 0);
    /* and live deltas go on after the snapshot */
    ASSERT_EQ(flush_incr(b, doc, 1), 0);
    w.version = 136;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));
    ASSERT_EQ(a->deltas, 1);
    ASSERT_EQ(a->bad_deltas, 0);
    doc_digest(a, doc, da);
    doc_digest(b, doc, db);
    ASSERT_MEM_EQ(da, FL_HASH_LEN, db, FL_HASH_LEN);
    fl_client_stats_t sa;
    fl_client_get_stats(a->client, &sa);
    ASSERT_EQ(sa.resyncs, 0);

    free(a);
    free(b);
    free(tok_a);
    free(tok_b);
}

/* ---- 3. gateway kill -9 with unacknowledged flushes ------------------------------- */

/* Some flushes answered, and at least 10 written but not answered (sent
 * counts frames: hello and subscribe are 2 of them). */
typedef struct killpoint_s {
    cl_t *cl;
    long answered; /* at least this many outcomes */
    long lost;     /* flush frames written on connections that died unanswered */
} killpoint_t;

/* Flush frames written and not answered yet (hello and subscribe are 2
 * frames per connection; every answer answers one frame). */
static long inflight_estimate(killpoint_t *kp)
{
    fl_client_stats_t st;
    fl_client_get_stats(kp->cl->client, &st);
    return (long)st.sent - 2 * (long)st.welcomes - kp->cl->outcomes - kp->cl->nacks - kp->lost;
}

static bool some_answered_some_inflight(void *arg)
{
    killpoint_t *kp = arg;
    return kp->cl->outcomes >= kp->answered && inflight_estimate(kp) >= 10;
}

static void test_gateway_kill9_resend(void)
{
    static const char *extra[] = {"--rate", "300", "--burst", "50", NULL};
    env_t *const envp = &the_env;
    char errstr[256];
    fl_client_ctx_t *ctx = NULL;
    cl_t *c = calloc(1, sizeof *c);
    char *tok = mint("carol", "", "\"acme/\"", 3600);
    const char *docid = "acme/kill9";
    fl_slice_t doc = {docid, strlen(docid)};
    fl_arena_t *arena = fl_arena_new(1 << 14);
    seqcount_t *sc = calloc(1, sizeof *sc);
    fl_gen_t g;
    uint8_t dc[FL_HASH_LEN];
    /* enough that flushes are still in flight at the third kill point
     * (answered >= 190) however fast the paced client drains them */
    const int N = 600;

    if (env_start(envp, "fltest-gwe-kill", extra) != 0)
        FL_FAIL_("setup");
    ctx = the_ctx = fl_client_ctx_new(errstr, sizeof errstr);
    ASSERT_TRUE(ctx != NULL);
    ASSERT_TRUE(cl_new(ctx, c, "C", envp->port, tok, false) != NULL);
    ASSERT_EQ(fl_client_subscribe(c->client, doc), 0);
    wait_t w = {.cl = {c}, .n = 1, .doc = doc};
    ASSERT_TRUE(pump(ctx, all_synced, &w, 60000));
    fl_gen_seed(&g, 99);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(flush_generated(c, &g, arena, docid), 0);
    /* kill -9 the gateway three times, each time with flushes written and
     * not answered; the client reconnects to the restarted gateway (same
     * port, new gateway id) and resends */
    killpoint_t kp = {.cl = c};
    for (int k = 0; k < 3; k++) {
        /* each kill after some progress since the previous restart */
        kp.answered = k == 0 ? 50 : c->outcomes + 40;
        if (!pump(ctx, some_answered_some_inflight, &kp, 60000))
            FL_FAIL_("kill %d: no moment with flushes in flight (answered %ld)", k, c->outcomes);
        long inflight = inflight_estimate(&kp);
        printf("  kill -9 #%d: %u flushes pending (~%ld written, unanswered), %ld answered\n",
               k + 1, fl_client_pending(c->client), inflight, c->outcomes);
        ASSERT_GT(fl_client_pending(c->client), 0);
        fl_proc_kill(&envp->gw);
        ASSERT_TRUE(pump(ctx, state_not_ready, c, 10000));
        kp.lost += inflight_estimate(&kp); /* never answered now: the connection is gone */
        ASSERT_EQ(start_gateway(envp), 0);
        wait_t wr = {.cl = {c}, .n = 1};
        ASSERT_TRUE(pump(ctx, all_ready, &wr, 30000));
    }
    ASSERT_TRUE(pump(ctx, all_answered, &w, 120000));
    ASSERT_EQ(fl_client_pending(c->client), 0);
    ASSERT_GE(c->disconnects, 1);
    w.version = c->max_version_after;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));
    fl_client_stats_t st;
    fl_client_get_stats(c->client, &st);
    printf("  outcomes %ld (duplicates %ld), resent %llu, connects %llu, nacks %ld\n", c->outcomes,
           c->dups, (unsigned long long)st.resent, (unsigned long long)st.connects, c->nacks);
    ASSERT_EQ(c->nack_final, 0);
    /* every seq answered once to the client */
    for (int s = 1; s <= N; s++)
        if (c->outcome_per_seq[s] != 1)
            FL_FAIL_("seq %d answered %d times to the client", s, c->outcome_per_seq[s]);
    /* a draining gateway (SIGTERM) closes with 4201 going_away: the client
     * reconnects at once to its successor */
    int readies = c->readies;
    ASSERT_EQ(fl_proc_signal(&envp->gw, SIGTERM), 0);
    ASSERT_TRUE(pump(ctx, state_not_ready, c, 20000));
    ASSERT_EQ(fl_proc_wait(&envp->gw, 20000), 0);
    ASSERT_EQ(c->last_close, FL_CLOSE_GOING_AWAY);
    ASSERT_EQ(start_gateway(envp), 0);
    wait_t wr = {.cl = {c}, .n = 1};
    ASSERT_TRUE(pump(ctx, all_ready, &wr, 30000));
    ASSERT_EQ(c->readies, readies + 1);
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));
    doc_digest(c, doc, dc);
    ASSERT_EQ(check_history(envp, docid, dc, w.version, N), 0);
    /* exactly one applied (non-duplicate) outcome per seq in events */
    sc->arena = fl_arena_new(1 << 16);
    sc->doc = doc;
    sc->client_id = fl_client_id(c->client);
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, envp->prefix, FL_TOPIC_EVENTS, on_event_record, sc) >=
                0);
    for (int s = 1; s <= N; s++)
        if (sc->applied[s] != 1)
            FL_FAIL_("seq %d has %d applied outcomes in events", s, sc->applied[s]);
    printf("  duplicate answers in events: %ld, gap refusals: %ld\n", sc->dup_events,
           sc->gap_events);

    fl_arena_free(sc->arena);
    fl_arena_free(arena);
    free(sc);
    free(c);
    free(tok);
}

/* ---- 4. slow consumer and flooding --------------------------------------------- */

static bool gateway_closed_slow(void *arg)
{
    env_t *env = arg;
    return fl_proc_log_contains(&env->gw, "closing as slow consumer");
}

/* The other subscriber's copy has reached b_version. */
typedef struct slowwait_s {
    cl_t *b;
    fl_slice_t doc;
    uint64_t b_version;
} slowwait_t;

static bool b_receiving(void *arg)
{
    slowwait_t *sw = arg;
    const fl_doc_t *d = fl_client_doc(sw->b->client, sw->doc);
    return d && fl_doc_version(d) >= sw->b_version;
}

static void test_slow_consumer_and_flood(void)
{
    /* A committed transaction of outcomes becomes visible at once
     * (read_committed); the gateway fans it out a quarter of the queue
     * bound per service turn, and B reads between turns. 2 MiB leaves B
     * room for a busy machine's scheduling at 1,000 flushes/s of 4 KiB. */
    static const char *extra[] = {"--rate", "1000", "--burst", "50", "--send.queue.bytes", "2M",
                                  NULL};
    env_t *const envp = &the_env;
    proxy_t *px = the_px = calloc(1, sizeof *px);
    char errstr[256];
    fl_client_ctx_t *ctx = NULL;
    cl_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *f = calloc(1, sizeof *f),
         *p = calloc(1, sizeof *p);
    char *tok_r = mint("slow", "\"acme/\"", "", 3600), *tok_w = mint("bob", "", "\"acme/\"", 3600);
    const char *docid = "acme/slow", *flood_doc = "acme/flood";
    fl_slice_t doc = {docid, strlen(docid)}, fdoc = {flood_doc, strlen(flood_doc)};
    uint8_t da[FL_HASH_LEN], db[FL_HASH_LEN];
    static char pad[4001];
    const int NPAD = 3000, NFLOOD = 300, NPOLITE = 40;

    if (env_start(envp, "fltest-gwe-slow", extra) != 0)
        FL_FAIL_("setup");
    ASSERT_EQ(proxy_start(px, envp->port, 4096), 0);
    ctx = the_ctx = fl_client_ctx_new(errstr, sizeof errstr);
    ASSERT_TRUE(ctx != NULL);
    /* A reads through the proxy (which will stop reading for it); B writes
     * big flushes and subscribes too */
    ASSERT_TRUE(cl_new(ctx, a, "A", px->port, tok_r, false) != NULL);
    ASSERT_TRUE(cl_new(ctx, b, "B", envp->port, tok_w, false) != NULL);
    ASSERT_EQ(fl_client_subscribe(a->client, doc), 0);
    ASSERT_EQ(fl_client_subscribe(b->client, doc), 0);
    wait_t w = {.cl = {a, b}, .n = 2, .doc = doc};
    ASSERT_TRUE(pump(ctx, all_synced, &w, 60000));

    atomic_store(&px->stall, 1);
    memset(pad, 'x', sizeof pad - 1);
    for (int i = 0; i < NPAD; i++) {
        fl_cmd_t c = {.op = FL_OP_ADD, .path = FL_SLICE("/pad"), .has_value = true};
        pad[0] = (char)('a' + i % 26);
        c.value.type = FL_STR;
        c.value.len = sizeof pad - 1;
        c.value.u.str = pad;
        ASSERT_EQ(fl_client_flush(b->client, doc, &c, 1, 0, NULL), 0);
    }
    /* B keeps receiving while A's queue fills up, until the gateway closes
     * A: by then over 2 MiB (500 deltas of 4 KiB) waited for A, each of
     * them also sent to B. The gateway's close frame waits behind what the
     * sockets hold, and the gateway drops a connection that does not take
     * its close within 5 s (no close frame then): so from the close on,
     * the proxy takes A's bytes at once (the close frame among them) but
     * keeps them from A until B has gone on receiving (on a busy machine
     * that is far longer than 5 s after the close). */
    ASSERT_TRUE(pump(ctx, gateway_closed_slow, envp, 90000));
    atomic_store(&px->hold, 1);
    atomic_store(&px->stall, 0);
    int64_t t_close = fl_test_now_ms();
    slowwait_t sw = {.b = b, .doc = doc, .b_version = 400};
    ASSERT_TRUE(pump(ctx, b_receiving, &sw, 90000));
    printf("  A closed as slow consumer; B at v%llu %lld ms later\n",
           (unsigned long long)doc_version(b, doc), (long long)(fl_test_now_ms() - t_close));
    ASSERT_EQ(a->disconnects, 0); /* it has not heard yet: nothing reaches it */
    ASSERT_EQ(doc_version(a, doc), 0);
    /* A reads again: the buffered frames, then close 4200, then at once a
     * reconnect with have_version and a catch-up to B's version */
    a->last_close = 0;
    atomic_store(&px->hold, 0);
    w.version = NPAD;
    if (!pump(ctx, all_at_version, &w, 120000))
        FL_FAIL_("not at v%d: A at v%llu (%s, last close %d), B at v%llu (%s, %u pending, %ld "
                 "outcomes, %ld nacks not retried, the last %s for seq %llu answered %d times "
                 "before)",
                 NPAD, (unsigned long long)doc_version(a, doc),
                 fl_client_state_name(fl_client_state(a->client)), a->last_close,
                 (unsigned long long)doc_version(b, doc),
                 fl_client_state_name(fl_client_state(b->client)), fl_client_pending(b->client),
                 b->outcomes, b->nack_final, fl_code_name(b->final_code),
                 (unsigned long long)b->final_seq, b->final_answered);
    ASSERT_TRUE(pump(ctx, all_ready, &w, 10000));
    ASSERT_GE(a->disconnects, 1);
    ASSERT_EQ(a->last_close, FL_CLOSE_SLOW_CONSUMER);
    ASSERT_EQ(a->stops, 0);
    if (b->disconnects)
        FL_FAIL_("the reading client was disconnected %d times (last close %d)", b->disconnects,
                 b->last_close);
    ASSERT_EQ(b->outcomes, NPAD);
    if (b->nack_final) /* (a paced client may still meet a rate_limited: retried) */
        FL_FAIL_("B had %ld nacks it did not retry, the last %s for seq %llu (answered %d times "
                 "before)",
                 b->nack_final, fl_code_name(b->final_code), (unsigned long long)b->final_seq,
                 b->final_answered);
    ASSERT_EQ(b->bad_deltas, 0);
    doc_digest(a, doc, da);
    doc_digest(b, doc, db);
    ASSERT_MEM_EQ(da, FL_HASH_LEN, db, FL_HASH_LEN);

    /* a flooding client (no pacing) and a polite one on one gateway with a
     * low rate limit (100/s, burst 10): the flooder is nacked rate_limited
     * with retry_after and still gets everything applied once; the polite
     * client (a flush every 50 ms) is never nacked */
    static const char *flood_extra[] = {"--rate", "100", "--burst", "10", NULL};
    fl_client_free(a->client);
    fl_client_free(b->client);
    ASSERT_EQ(fl_proc_signal(&envp->gw, SIGTERM), 0);
    ASSERT_EQ(fl_proc_wait(&envp->gw, 20000), 0);
    envp->gw_extra = flood_extra;
    ASSERT_EQ(start_gateway(envp), 0);
    ASSERT_TRUE(cl_new(ctx, f, "F", envp->port, tok_w, true) != NULL);
    ASSERT_TRUE(cl_new(ctx, p, "P", envp->port, tok_w, false) != NULL);
    ASSERT_EQ(fl_client_subscribe(f->client, fdoc), 0);
    ASSERT_EQ(fl_client_subscribe(p->client, fdoc), 0);
    wait_t wf = {.cl = {f, p}, .n = 2, .doc = fdoc};
    ASSERT_TRUE(pump(ctx, all_synced, &wf, 60000));
    int64_t t0 = fl_test_now_ms();
    for (int i = 0; i < NFLOOD; i++)
        ASSERT_EQ(flush_incr(f, fdoc, 1), 0);
    for (int i = 0; i < NPOLITE; i++) {
        int64_t next = t0 + 50 * (i + 1);
        ASSERT_EQ(flush_incr(p, fdoc, 1000), 0);
        while (fl_test_now_ms() < next) /* the polite client's own pace */
            fl_client_service(ctx, (int)(next - fl_test_now_ms()));
    }
    long flood_answered_meanwhile = f->outcomes;
    ASSERT_TRUE(pump(ctx, all_answered, &wf, 120000));
    wf.version = NFLOOD + NPOLITE;
    ASSERT_TRUE(pump(ctx, all_at_version, &wf, 30000));
    printf("  flooder: %ld rate_limited nacks, %ld of %d answered while the polite client "
           "wrote, all in %lld ms; polite: %ld nacks\n",
           f->nack_rate, flood_answered_meanwhile, NFLOOD, (long long)(fl_test_now_ms() - t0),
           p->nacks);
    ASSERT_LT(flood_answered_meanwhile, NFLOOD); /* the flood overlapped the polite flushes */
    ASSERT_GT(f->nack_rate, 0);
    ASSERT_EQ(f->nack_retry_after, f->nack_rate); /* each with retry_after, retried */
    ASSERT_EQ(f->nack_final, 0);
    ASSERT_EQ(f->outcomes, NFLOOD);
    ASSERT_EQ(p->nacks, 0);
    ASSERT_EQ(p->outcomes, NPOLITE);
    ASSERT_EQ(p->disconnects + f->disconnects, 0);
    /* every increment applied exactly once */
    const fl_doc_t *fd = fl_client_doc(p->client, fdoc);
    const fl_value_t *n = fl_map_get(fl_doc_state(fd), "n", 1);
    ASSERT_TRUE(n != NULL && n->type == FL_INT);
    ASSERT_EQ(n->u.i, NFLOOD + 1000 * NPOLITE);
    doc_digest(f, fdoc, da);
    doc_digest(p, fdoc, db);
    ASSERT_MEM_EQ(da, FL_HASH_LEN, db, FL_HASH_LEN);

    free(a);
    free(b);
    free(f);
    free(p);
    free(tok_r);
    free(tok_w);
}

/* ---- 4b. a burst of outcomes does not close readers ----------------------------- */

/* The writer has sent every flush frame (hello and subscribe are 2). */
typedef struct sentwait_s {
    cl_t *cl;
    uint64_t frames;
} sentwait_t;

static bool all_sent(void *arg)
{
    sentwait_t *sw = arg;
    fl_client_stats_t st;
    fl_client_get_stats(sw->cl->client, &st);
    return st.sent >= sw->frames;
}

static void test_burst_keeps_readers(void)
{
    /* One transaction holds all NBURST outcomes (the processor commits
     * every 3 s; its transaction timeout leaves room for a slow machine),
     * so the gateway receives them at once: 600 KB of deltas, more than
     * twice the send queue bound of its subscribers, and less than their
     * sockets take. Readers must not be closed as slow consumers: the
     * gateway fans a backlog out a share at a time and writes the sockets
     * in between (it used to queue a whole batch of records for every
     * subscriber before writing any, and closed both). */
    static const char *gw_extra[] = {"--rate", "100000", "--burst", "100000",
                                     "--send.queue.bytes", "256K", NULL};
    static const char *proc_extra[] = {"--commit.interval.ms", "3000",
                                       "--transaction.timeout.ms", "60000", NULL};
    env_t *const envp = &the_env;
    char errstr[256];
    fl_client_ctx_t *ctx = NULL;
    cl_t *r = calloc(1, sizeof *r), *wr = calloc(1, sizeof *wr);
    char *tok_r = mint("reader", "\"acme/\"", "", 3600);
    char *tok_w = mint("bob", "", "\"acme/\"", 3600);
    const char *docid = "acme/burst";
    fl_slice_t doc = {docid, strlen(docid)};
    uint8_t dr[FL_HASH_LEN], dw[FL_HASH_LEN];
    static char pad[4001];
    const int NBURST = 150;

    envp->proc_extra = proc_extra;
    if (env_start(envp, "fltest-gwe-burst", gw_extra) != 0)
        FL_FAIL_("setup");
    ctx = the_ctx = fl_client_ctx_new(errstr, sizeof errstr);
    ASSERT_TRUE(ctx != NULL);
    ASSERT_TRUE(cl_new(ctx, r, "R", envp->port, tok_r, false) != NULL);
    ASSERT_TRUE(cl_new(ctx, wr, "W", envp->port, tok_w, false) != NULL);
    ASSERT_EQ(fl_client_subscribe(r->client, doc), 0);
    ASSERT_EQ(fl_client_subscribe(wr->client, doc), 0);
    wait_t w = {.cl = {r, wr}, .n = 2, .doc = doc};
    ASSERT_TRUE(pump(ctx, all_synced, &w, 60000));

    memset(pad, 'x', sizeof pad - 1);
    for (int i = 0; i < NBURST; i++) {
        fl_cmd_t c = {.op = FL_OP_ADD, .path = FL_SLICE("/pad"), .has_value = true};
        pad[0] = (char)('a' + i % 26);
        c.value.type = FL_STR;
        c.value.len = sizeof pad - 1;
        c.value.u.str = pad;
        ASSERT_EQ(fl_client_flush(wr->client, doc, &c, 1, 0, NULL), 0);
    }
    /* every flush is out before the transaction commits: nothing answered
     * yet, all of it will come at once */
    sentwait_t sw = {.cl = wr, .frames = 2 + (uint64_t)NBURST};
    ASSERT_TRUE(pump(ctx, all_sent, &sw, 30000));
    ASSERT_EQ(wr->outcomes, 0);
    ASSERT_EQ(r->deltas, 0);
    w.version = NBURST;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 90000));
    ASSERT_TRUE(pump(ctx, all_answered, &w, 30000));
    printf("  %d outcomes of %d bytes in one transaction; reader: %ld deltas, %d "
           "disconnects\n",
           NBURST, (int)sizeof pad - 1, r->deltas, r->disconnects);
    if (r->disconnects || wr->disconnects)
        FL_FAIL_("readers closed: R %d times (last close %d), W %d times (last close %d)",
                 r->disconnects, r->last_close, wr->disconnects, wr->last_close);
    ASSERT_TRUE(!fl_proc_log_contains(&envp->gw, "closing as slow consumer"));
    ASSERT_EQ(r->deltas, NBURST);
    ASSERT_EQ(r->bad_deltas + wr->bad_deltas, 0);
    ASSERT_EQ(wr->outcomes, NBURST);
    doc_digest(r, doc, dr);
    doc_digest(wr, doc, dw);
    ASSERT_MEM_EQ(dr, FL_HASH_LEN, dw, FL_HASH_LEN);

    free(r);
    free(wr);
    free(tok_r);
    free(tok_w);
}

/* ---- 5. auth through the client ----------------------------------------------------- */

static bool stopped(void *arg)
{
    cl_t *cl = arg;
    return fl_client_state(cl->client) == FL_CLIENT_STOPPED;
}

static bool nacked(void *arg)
{
    cl_t *cl = arg;
    return cl->nacks >= 2 && fl_client_pending(cl->client) == 0;
}

static void test_auth_codes(void)
{
    env_t *const envp = &the_env;
    char errstr[256];
    fl_client_ctx_t *ctx = NULL;
    cl_t *cl = calloc(4, sizeof *cl);
    char *good = mint("dave", "", "\"acme/\"", 3600), *expired = mint("dave", "", "\"acme/\"", -3600);
    char *forged = strdup(good);
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
    const char *toks[3] = {NULL, forged, expired};
    const int codes[3] = {FL_CLOSE_UNAUTHORIZED, FL_CLOSE_UNAUTHORIZED, FL_CLOSE_TOKEN_EXPIRED};

    if (env_start(envp, "fltest-gwe-auth", NULL) != 0)
        FL_FAIL_("setup");
    ctx = the_ctx = fl_client_ctx_new(errstr, sizeof errstr);
    ASSERT_TRUE(ctx != NULL);
    for (int i = 0; i < 3; i++) {
        ASSERT_TRUE(cl_new(ctx, &cl[i], "bad", envp->port, toks[i], false) != NULL);
        ASSERT_EQ(fl_client_subscribe(cl[i].client, FL_SLICE("acme/auth")), 0);
    }
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(pump(ctx, stopped, &cl[i], 20000));
    /* stopped for good: no reconnect in the next second */
    pump(ctx, NULL, NULL, 1000);
    for (int i = 0; i < 3; i++) {
        fl_client_stats_t st;
        fl_client_get_stats(cl[i].client, &st);
        if (cl[i].last_close != codes[i] || cl[i].stops != 1 || st.connects != 1 ||
            st.welcomes != 0 || fl_client_state(cl[i].client) != FL_CLIENT_STOPPED)
            FL_FAIL_("client %d: close %d (want %d), stops %d, connects %llu, welcomes %llu", i,
                     cl[i].last_close, codes[i], cl[i].stops, (unsigned long long)st.connects,
                     (unsigned long long)st.welcomes);
    }
    /* a stopped client refuses flushes; a fresh token starts it again */
    ASSERT_EQ(flush_incr(&cl[2], FL_SLICE("acme/auth"), 1), FL_CLIENT_ECLOSED);
    ASSERT_EQ(fl_client_refresh_token(cl[2].client, good), 0);
    wait_t w = {.cl = {&cl[2]}, .n = 1, .doc = FL_SLICE("acme/auth")};
    ASSERT_TRUE(pump(ctx, all_synced, &w, 30000));
    ASSERT_EQ(flush_incr(&cl[2], FL_SLICE("acme/auth"), 1), 0);
    w.version = 1;
    ASSERT_TRUE(pump(ctx, all_at_version, &w, 30000));

    /* another tenant's document: subscribe and flush are nacked doc_forbidden */
    cl_t *d = &cl[3];
    ASSERT_TRUE(cl_new(ctx, d, "D", envp->port, good, false) != NULL);
    wait_t wd = {.cl = {d}, .n = 1};
    ASSERT_TRUE(pump(ctx, all_ready, &wd, 30000));
    ASSERT_EQ(fl_client_subscribe(d->client, FL_SLICE("other/doc")), 0);
    ASSERT_EQ(flush_incr(d, FL_SLICE("other/doc"), 1), 0);
    ASSERT_TRUE(pump(ctx, nacked, d, 30000));
    ASSERT_EQ(d->nack_forbidden, 2);
    ASSERT_EQ(d->nack_final, 2);
    ASSERT_EQ(fl_client_pending(d->client), 0);
    ASSERT_EQ(fl_client_state(d->client), FL_CLIENT_READY);
    ASSERT_TRUE(fl_client_doc(d->client, FL_SLICE("other/doc")) == NULL);
    /* the connection still works */
    ASSERT_EQ(fl_client_subscribe(d->client, FL_SLICE("acme/auth")), 0);
    ASSERT_EQ(flush_incr(d, FL_SLICE("acme/auth"), 1), 0);
    wait_t w2 = {.cl = {d, &cl[2]}, .n = 2, .doc = FL_SLICE("acme/auth"), .version = 2};
    ASSERT_TRUE(pump(ctx, all_at_version, &w2, 30000));
    ASSERT_EQ(d->disconnects, 0);

    free(cl);
    free(good);
    free(expired);
    free(forged);
}

static void cleanup(void)
{
    the_env.proc_extra = NULL;
    fl_client_ctx_free(the_ctx);
    the_ctx = NULL;
    if (the_px) {
        proxy_stop(the_px);
        free(the_px);
        the_px = NULL;
    }
    env_stop(&the_env);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!(bootstrap = fl_test_bootstrap()) || setup_keys() != 0)
        return 1;
    const char *only = getenv("FL_TEST_ONLY");
#define RUN_SEL(fn)                                                                                \
    do {                                                                                           \
        if (!only || strstr(#fn, only)) {                                                          \
            int64_t t0_ = fl_test_now_ms();                                                        \
            RUN(fn);                                                                               \
            cleanup();                                                                             \
            printf("  (%s: %lld ms)\n", #fn, (long long)(fl_test_now_ms() - t0_));                 \
        }                                                                                          \
    } while (0)
    RUN_SEL(test_auth_codes);
    RUN_SEL(test_catchup_have_version);
    RUN_SEL(test_two_clients_converge);
    RUN_SEL(test_gateway_kill9_resend);
    RUN_SEL(test_slow_consumer_and_flood);
    RUN_SEL(test_burst_keeps_readers);
    fl_jwt_keyfile_free(key);
    return fl_test_done();
}
