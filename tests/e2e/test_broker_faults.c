/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemons ride through a broker fault with no restart of theirs (issue
 * 15, "Recovery is slow today"), on a single broker of the test's own
 * (tests/util/fl_kbroker.h: the suite's broker is never paused). Per case,
 * a fresh topic set, one processor (static membership) and one gateway;
 * WRITERS HTTP writers, each with a fixed client id and its own document,
 * resending the same seq until it is answered (`incr /n 1` per flush); and
 * /readyz of both daemons sampled every second. Cases:
 * - pause: the broker is stopped (SIGSTOP) 13 s, then resumed;
 * - kill: kill -9, then started again on the same state;
 * - txn_timeout: the processor's transaction.timeout.ms is 10 s and the
 *   broker is paused 15 s under load: the broker aborts the open
 *   transaction, which the processor sees as being fenced; it must rebuild
 *   its producer rather than stop.
 * After each: both daemons still run (the same processes); every writer was
 * acknowledged again, and the time from the end of the fault to the first
 * acknowledged flush (and to every writer's) is printed and bounded; /readyz
 * was 200 before the fault, 503 during it, 200 after; SIGTERM drains both
 * with exit 0; every flush refused meanwhile was a 503 or 504 with a
 * Retry-After header and retry_after_ms in its body (the time from the
 * start of the fault to the first is printed); the whole history equals
 * the sequential model
 * (tests/util/fl_model.h) and each writer's document is at exactly the
 * number of its acknowledged flushes (nothing applied twice, nothing lost).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fl_kbroker.h"
#include "fl_ktest.h"
#include "fl_model.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/engine.h"
#include "flushline/jwt.h"
#include "flushline/log.h"

#define WRITERS 3
#define PARTITIONS 4
#define WAIT_MS 120000
#define MAX_SAMPLES 400
/* The goal is 5 s from the end of a fault to the next acknowledged flush;
 * what is asserted (see docs/operations.md for where the seconds go). */
#define RECOVERY_BOUND_MS 15000

typedef enum fault_e { F_PAUSE, F_KILL } fault_t;

static char bootstrap[512], keypath[600], auth[9000];
static fl_jwt_keyfile_t *key;

typedef struct writer_s {
    pthread_t thread;
    int id;
    int port;
    char doc[64];
    char cid[33];
    _Atomic long acked;          /* acknowledged seqs: 1..acked */
    _Atomic int64_t last_ack_ms; /* when the last one was */
    _Atomic int64_t first_after; /* the first ack at or after mark_ms; 0: none yet */
    _Atomic long refusals;       /* 503/504 with Retry-After and retry_after_ms */
    _Atomic long bad_refusals;   /* any other answer that was not an outcome */
    _Atomic long no_answer;      /* no HTTP answer at all (connection reset) */
    _Atomic int64_t first_refusal_ms;
} writer_t;

typedef struct sample_s {
    int64_t t;
    int pr, gw;
} sample_t;

typedef struct run_s {
    fl_proc_t pr, gw;
    int pr_port, gw_port;
    writer_t w[WRITERS];
    pthread_t sampler;
    sample_t samples[MAX_SAMPLES];
    _Atomic int nsamples;
    atomic_bool stop_writers, stop_sampler;
    atomic_bool abandon; /* a daemon died: writers leave a pending seq too */
    _Atomic int64_t mark_ms; /* end of the fault (0: not yet) */
} run_t;

/* ---- writers and the readiness sampler ------------------------------------------ */

/* A flush not answered with an outcome: broker trouble must say when to
 * retry (a 503 or 504 with Retry-After and retry_after_ms). No answer at
 * all (-1) is counted apart, and there must be none: the gateway never
 * goes away in these cases. */
static void refused(writer_t *w, int st, const char *head, const char *resp)
{
    if (st < 0) {
        fprintf(stderr, "%s: no HTTP answer at %lld ms (%s)\n", w->doc,
                (long long)fl_test_now_ms(), strerror(errno));
        atomic_fetch_add(&w->no_answer, 1);
        return;
    }
    bool hint = (st == 503 || st == 504) && head && strcasestr(head, "\r\nretry-after: ") &&
                resp && strstr(resp, "\"retry_after_ms\":");
    if (!hint) {
        fprintf(stderr, "%s: HTTP %d without a retry hint: %s\n", w->doc, st,
                resp ? resp : "(no body)");
        atomic_fetch_add(&w->bad_refusals, 1);
        return;
    }
    int64_t zero = 0;
    atomic_compare_exchange_strong(&w->first_refusal_ms, &zero, fl_test_now_ms());
    atomic_fetch_add(&w->refusals, 1);
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    run_t *run = (run_t *)((char *)(w - w->id) - offsetof(run_t, w));
    char path[128], body[512];
    snprintf(path, sizeof path, "/v1/docs/%s/flush", w->doc);
    bool pending = false; /* a seq sent and not acknowledged: never left so */
    while ((pending && !atomic_load(&run->abandon)) || !atomic_load(&run->stop_writers)) {
        char *resp = NULL, *head = NULL;
        long seq = atomic_load(&w->acked) + 1;
        snprintf(body, sizeof body,
                 "{\"client_id\":\"%s\",\"seq\":%ld,\"base_version\":0,"
                 "\"commands\":[{\"op\":\"incr\",\"path\":\"/n\",\"value\":1}]}",
                 w->cid, seq);
        int st = fl_http_request(w->port, "POST", path, auth, body, 20000, &head, &resp);
        bool ok = st == 200 && resp && strstr(resp, "\"t\":\"outcome\"") && strstr(resp, "\"code\":0");
        if (!ok)
            refused(w, st, head, resp);
        free(resp);
        free(head);
        pending = !ok;
        if (!ok) {
            nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL); /* a client's backoff */
            continue;
        }
        int64_t now = fl_test_now_ms(), mark = atomic_load(&run->mark_ms);
        atomic_store(&w->acked, seq);
        atomic_store(&w->last_ack_ms, now);
        if (mark && now >= mark && !atomic_load(&w->first_after))
            atomic_store(&w->first_after, now);
    }
    return NULL;
}

static int readyz(int port)
{
    char *body = NULL;
    int st = fl_http_request(port, "GET", "/readyz", NULL, NULL, 900, NULL, &body);
    free(body);
    return st;
}

static void *sampler_main(void *arg)
{
    run_t *run = arg;
    while (!atomic_load(&run->stop_sampler)) {
        int64_t t0 = fl_test_now_ms();
        int n = atomic_load(&run->nsamples);
        if (n < MAX_SAMPLES) {
            run->samples[n] = (sample_t){t0, readyz(run->pr_port), readyz(run->gw_port)};
            atomic_store(&run->nsamples, n + 1);
        }
        int64_t left = t0 + 1000 - fl_test_now_ms();
        if (left > 0)
            nanosleep(&(struct timespec){0, (long)left * 1000000L}, NULL); /* the period */
    }
    return NULL;
}

/* ---- conditions ------------------------------------------------------------------ */

static bool both_ready(void *arg)
{
    run_t *run = arg;
    return (readyz(run->pr_port) == 200 && readyz(run->gw_port) == 200) ||
           !fl_proc_alive(&run->pr) || !fl_proc_alive(&run->gw);
}

static long min_acked(run_t *run)
{
    long m = -1;
    for (int i = 0; i < WRITERS; i++)
        if (m < 0 || atomic_load(&run->w[i].acked) < m)
            m = atomic_load(&run->w[i].acked);
    return m;
}

static bool steady(void *arg)
{
    return min_acked(arg) >= 5;
}

static bool all_back(void *arg)
{
    run_t *run = arg;
    if (!fl_proc_alive(&run->pr) || !fl_proc_alive(&run->gw))
        return true; /* the caller fails */
    for (int i = 0; i < WRITERS; i++)
        if (!atomic_load(&run->w[i].first_after))
            return false;
    return true;
}

/* ---- the daemons ----------------------------------------------------------------- */

static int start_daemons(run_t *run, const char *prefix, const char *txn_timeout)
{
    char plog[600], glog[600], pport[16], gport[16], txid[160], group[160], gwid[160];
    snprintf(plog, sizeof plog, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(glog, sizeof glog, "%s/tests/%s-gateway.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(pport, sizeof pport, "%d", run->pr_port = fl_free_port());
    snprintf(gport, sizeof gport, "%d", run->gw_port = fl_free_port());
    snprintf(txid, sizeof txid, "%s-p1", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    snprintf(gwid, sizeof gwid, "%s-gw", prefix);
    const char *pargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--group.id", group, "--transactional.id", txid,
                           "--group.instance.id", txid, "--http.port", pport,
                           "--transaction.timeout.ms", txn_timeout, NULL};
    const char *gargs[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                           "--port", gport, "--jwt.keys", keypath, "--gateway.id", gwid, NULL};
    if (fl_proc_start(&run->pr, "flushline-processor", pargs, plog) != 0 ||
        fl_proc_start(&run->gw, "flushline-gateway", gargs, glog) != 0)
        return -1;
    return 0;
}

static void dump(run_t *run)
{
    fl_proc_dump_log(&run->pr, 40);
    fl_proc_dump_log(&run->gw, 40);
}

/* ---- checks ---------------------------------------------------------------------- */

/* /readyz: 200 before t_fault, at least one 503 of each daemon during the
 * fault, and the last samples 200. */
static void check_readiness(run_t *run, int64_t t_fault, int64_t t_end)
{
    int n = atomic_load(&run->nsamples), bad_before = 0, pr_down = 0, gw_down = 0;
    for (int i = 0; i < n; i++) {
        sample_t *s = &run->samples[i];
        if (s->t < t_fault)
            bad_before += (s->pr != 200) + (s->gw != 200);
        else if (s->t < t_end) {
            pr_down += s->pr != 200;
            gw_down += s->gw != 200;
        }
    }
    printf("  /readyz: %d samples; during the fault 503 from the processor %d times, the "
           "gateway %d times; last: %d / %d\n",
           n, pr_down, gw_down, n ? run->samples[n - 1].pr : 0, n ? run->samples[n - 1].gw : 0);
    ASSERT_EQ(bad_before, 0);
    ASSERT_TRUE(pr_down > 0);
    ASSERT_TRUE(gw_down > 0);
    ASSERT_TRUE(n > 0 && run->samples[n - 1].pr == 200 && run->samples[n - 1].gw == 200);
}

static void check_history(run_t *run, const char *prefix)
{
    fl_model_report_t rep;
    fl_model_t *m = fl_model_check(bootstrap, prefix, &rep);
    ASSERT_TRUE(m != NULL);
    printf("  commands %ld, outcomes %ld; mismatches %ld missing %ld extra %ld gaps %ld\n",
           rep.commands, rep.outcomes, rep.mismatches, rep.missing, rep.extra, rep.gaps);
    for (int i = 0; i < WRITERS; i++) {
        fl_doc_t *d = fl_model_doc(m, run->w[i].doc);
        long acked = atomic_load(&run->w[i].acked);
        uint64_t v = d ? fl_doc_version(d) : 0;
        if ((long)v != acked)
            fprintf(stderr, "%s: version %llu, acknowledged flushes %ld\n", run->w[i].doc,
                    (unsigned long long)v, acked);
        ASSERT_EQ((long)v, acked);
    }
    fl_model_free(m);
    ASSERT_EQ(rep.mismatches, 0);
    ASSERT_EQ(rep.missing, 0);
    ASSERT_EQ(rep.extra, 0);
    ASSERT_EQ(rep.gaps, 0);
}

/* ---- a case ---------------------------------------------------------------------- */

/* The fault; *t_end: when it ended (the broker answers again), 0: the
 * scripts failed. */
static void inject(fault_t fault, int seconds, int64_t *t_end)
{
    *t_end = 0;
    if (fault == F_KILL) {
        ASSERT_EQ(fl_kbroker("kill 1"), 0);
        if (fl_kbroker("restart 1") != 0) {
            fl_kbroker_show_output();
            FL_FAIL_("scripts/kafka restart 1 failed");
        }
    } else {
        ASSERT_EQ(fl_kbroker("pause 1"), 0);
        nanosleep(&(struct timespec){seconds, 0}, NULL); /* the fault's length, not a wait */
        ASSERT_EQ(fl_kbroker("resume 1"), 0);
    }
    *t_end = fl_test_now_ms();
}

static void start_load(run_t *run, const char *prefix)
{
    for (int i = 0; i < WRITERS; i++) {
        writer_t *w = &run->w[i];
        w->id = i;
        w->port = run->gw_port;
        snprintf(w->doc, sizeof w->doc, "acme/%s-w%d", prefix + strlen(prefix) - 6, i);
        snprintf(w->cid, sizeof w->cid, "a0a1a2a3a4a5a6a7a8a9aaabacadae%02x", i);
        pthread_create(&w->thread, NULL, writer_main, w);
    }
    pthread_create(&run->sampler, NULL, sampler_main, run);
}

/* Stops the writers (each after its pending seq is answered, unless the
 * case failed: abandon) and the sampler. */
static void stop_load(run_t *run, bool failed)
{
    if (failed || !fl_proc_alive(&run->pr) || !fl_proc_alive(&run->gw))
        atomic_store(&run->abandon, true);
    atomic_store(&run->stop_writers, true);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(run->w[i].thread, NULL);
    atomic_store(&run->stop_sampler, true);
    pthread_join(run->sampler, NULL);
}

/* Every refusal said when to retry, and the first came soon after the
 * fault began. */
static void check_refusals(run_t *run, int64_t t_fault)
{
    long ok = 0, bad = 0, none = 0;
    int64_t first = 0;
    for (int i = 0; i < WRITERS; i++) {
        int64_t t = atomic_load(&run->w[i].first_refusal_ms);
        ok += atomic_load(&run->w[i].refusals);
        none += atomic_load(&run->w[i].no_answer);
        bad += atomic_load(&run->w[i].bad_refusals);
        if (t && (!first || t < first))
            first = t;
    }
    printf("  refusals with Retry-After and retry_after_ms: %ld (the first %lld ms after the "
           "fault began); without: %ld; no answer: %ld\n",
           ok, first ? (long long)(first - t_fault) : -1LL, bad, none);
    ASSERT_TRUE(ok > 0);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(none, 0);
}

static void report_recovery(run_t *run, const char *name, int64_t t_end)
{
    int64_t first = 0, last = 0;
    for (int i = 0; i < WRITERS; i++) {
        int64_t t = atomic_load(&run->w[i].first_after) - t_end;
        first = i == 0 || t < first ? t : first;
        last = t > last ? t : last;
    }
    printf("  %s: first acknowledged flush %lld ms after the end of the fault, every writer "
           "within %lld ms\n",
           name, (long long)first, (long long)last);
    ASSERT_TRUE(first <= RECOVERY_BOUND_MS);
}

static void run_case(const char *name, fault_t fault, int seconds, const char *txn_timeout)
{
    static run_t run;
    char prefix[96];
    memset(&run, 0, sizeof run);
    fl_test_unique(name, prefix, sizeof prefix);
    ASSERT_EQ(fl_ktest_topics(bootstrap, prefix, PARTITIONS), 0);
    ASSERT_EQ(start_daemons(&run, prefix, txn_timeout), 0);
    if (!fl_wait_until(both_ready, &run, WAIT_MS) || !fl_proc_alive(&run.pr) ||
        !fl_proc_alive(&run.gw)) {
        dump(&run);
        FL_FAIL_("the daemons did not get ready");
    }
    start_load(&run, prefix);
    bool ok = fl_wait_until(steady, &run, WAIT_MS);
    int64_t t_fault = fl_test_now_ms();
    if (ok) {
        int64_t t_end;
        inject(fault, seconds, &t_end);
        printf("  fault from %lld to %lld ms\n", (long long)t_fault, (long long)t_end);
        atomic_store(&run.mark_ms, t_end);
        ok = t_end && fl_wait_until(all_back, &run, WAIT_MS) && fl_wait_until(both_ready, &run, WAIT_MS);
        /* two more samples after recovery */
        int n = atomic_load(&run.nsamples) + 2;
        while (ok && atomic_load(&run.nsamples) < n && fl_proc_alive(&run.pr))
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
        stop_load(&run, !ok);
        if (ok && fl_proc_alive(&run.pr) && fl_proc_alive(&run.gw)) {
            report_recovery(&run, name, t_end);
            check_readiness(&run, t_fault, t_end);
            check_refusals(&run, t_fault);
        }
    } else {
        stop_load(&run, true);
    }
    if (!ok || !fl_proc_alive(&run.pr) || !fl_proc_alive(&run.gw)) {
        dump(&run);
        fl_proc_kill(&run.pr);
        fl_proc_kill(&run.gw);
        FL_FAIL_("no recovery: a daemon died or writers were not answered again");
    }
    ASSERT_EQ(fl_proc_signal(&run.gw, SIGTERM), 0);
    ASSERT_EQ(fl_proc_signal(&run.pr, SIGTERM), 0);
    ASSERT_EQ(fl_proc_wait(&run.gw, 60000), 0);
    ASSERT_EQ(fl_proc_wait(&run.pr, 90000), 0);
    check_history(&run, prefix);
}

static void test_pause_13s(void)
{
    run_case("flt-pause", F_PAUSE, 13, "60000");
}

static void test_kill_restart(void)
{
    run_case("flt-kill", F_KILL, 0, "60000");
}

static void test_txn_timeout(void)
{
    run_case("flt-txnto", F_PAUSE, 15, "10000");
}

/* ---- setup ----------------------------------------------------------------------- */

static int setup_keys(void)
{
    char errstr[256], text[2048], claims[512], *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    long n;
    FILE *fp;
    snprintf(keypath, sizeof keypath, "%s/tests/broker-faults-%d.key", getenv("FL_BINARY_DIR"),
             (int)getpid());
    if (fl_jwt_keyfile_generate(FL_JWT_EDDSA, "k1", &key, errstr, sizeof errstr) != 0 ||
        (n = fl_jwt_keyfile_format(key, false, text, sizeof text)) < 0 ||
        !(fp = fopen(keypath, "w")))
        return -1;
    fwrite(text, 1, (size_t)n, fp);
    fclose(fp);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"w\",\"exp\":%lld,\"iat\":%lld,\"read\":[\"acme/\"],\"write\":[\"acme/\"]}",
             (long long)(now + 3600), (long long)now);
    if (fl_jwt_mint_keyfile(key, claims, &tok, errstr, sizeof errstr) != 0)
        return -1;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", tok);
    free(tok);
    return 0;
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    setenv("FLUSHLINE_KAFKA_TIMEOUT", "300", 0);
    if (setup_keys() != 0 || fl_kbroker_init("flushline-faults") != 0)
        return 1;
    if (fl_kbroker("start") != 0 || fl_kbroker_bootstrap(bootstrap, sizeof bootstrap) != 0) {
        fl_kbroker_show_output();
        return 1;
    }
    RUN(test_pause_13s);
    RUN(test_kill_restart);
    RUN(test_txn_timeout);
    fl_jwt_keyfile_free(key);
    unlink(keypath);
    int rc = fl_test_done();
    /* the broker's folder is kept for a failure's post-mortem only */
    if (rc == 0 && fl_kbroker_remove() != 0)
        fprintf(stderr, "could not remove %s\n", fl_kbroker_dir());
    return rc;
}
