/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The processor applies rule sets (schemas/RULES.md) against the real
 * broker, as a separate process:
 * - a rules change in the middle of a stream of flushes: the flushes before
 *   the `flushline rules put` record are applied without rules, those after
 *   it under the set (a refused command gets rule_violation and the rule's
 *   name; a record carrying the role "admin" is allowed by the admin rule;
 *   documents outside the prefix are untouched);
 * - raw bad rules records written by hand to every partition (undecodable,
 *   and a valid envelope around an invalid rule set) are skipped and counted
 *   (flushline_processor_rules_records_bad_total), the set in force stays;
 * - kill -9 of the processor just after a rules record, once as soon as
 *   every partition consumed it (committed or not) and once after its
 *   transaction committed (the processor that takes over starts after it
 *   and restores the set in force): the new processor applies that
 *   record's set, and every (client, seq) has exactly one outcome;
 * - `flushline verify` and `at` read the history with the rules records in
 *   it, and `flushline reprocess` reproduces every outcome byte for byte
 *   (verify passes on its copy too).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fl_cli.h"
#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

#define PARTITIONS 2
#define NDOCS 4
#define MAXSEQ 32

static const char *bootstrap;
static char prefix[96], tmpdir[256];
static fl_proc_t proc;
static int http_port, generation;
static long produced;

/* What each (document, seq) must be answered with. docs[NDOCS] is outside
 * the rules' prefix. */
static const char *docs[NDOCS + 1] = {"t/d0", "t/d1", "t/d2", "t/d3", "u/x"};
typedef struct want_s {
    int code; /* -1: nothing sent */
    const char *rule;
    int seen;
} want_t;
static want_t want[NDOCS + 1][MAXSEQ + 1];
static uint64_t next_seq[NDOCS + 1];

static const char plus_one[] =
    "{\"rules\":[{\"name\":\"plus one\",\"allow\":{\"ops\":[\"incr\"],\"paths\":[\"/n\"],"
    "\"where\":[{\"value\":\"\",\"eq\":1}]}},"
    "{\"name\":\"admin\",\"allow\":{\"ops\":[\"incr\"],\"paths\":[\"/**\"],"
    "\"roles\":[\"admin\"]}}]}";
static const char one_or_two[] =
    "{\"rules\":[{\"name\":\"plus one\",\"allow\":{\"ops\":[\"incr\"],\"paths\":[\"/n\"],"
    "\"where\":[{\"value\":\"\",\"eq\":1}]}},"
    "{\"name\":\"plus two\",\"allow\":{\"ops\":[\"incr\"],\"paths\":[\"/n\"],"
    "\"where\":[{\"value\":\"\",\"eq\":2}]}}]}";

static int start_processor(void)
{
    char log[512], port[16], txid[160], group[160];
    snprintf(log, sizeof log, "%s/processor-%d.log", tmpdir, ++generation);
    snprintf(port, sizeof port, "%d", http_port = fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx-1", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "2",
                          "--group.id", group, "--transactional.id", txid, "--http.port", port,
                          "--snapshot.interval.ms", "300", NULL};
    return fl_proc_start(&proc, "flushline-processor", args, log);
}

/* incr /n by `by` on document d with its next seq, expected to be answered
 * with code (and rule). */
static void send_flush(rd_kafka_t *rk, int d, int64_t by, const char *role, int code,
                       const char *rule)
{
    fl_cmd_t cmd = {.op = FL_OP_INCR, .path = FL_SLICE("/n"), .has_value = true,
                    .value = fl_value_int(by)};
    uint64_t seq = ++next_seq[d];
    fl_flush_t f = {.doc = {docs[d], strlen(docs[d])}, .seq = seq, .ncmds = 1, .cmds = &cmd};
    ASSERT_TRUE(seq <= MAXSEQ);
    memset(f.client_id, d + 1, FL_CLIENT_ID_LEN);
    ASSERT_EQ(fl_ktest_produce_flush_role(rk, prefix, &f, "ann", role, "gw-r", seq), 0);
    want[d][seq] = (want_t){code, rule, 0};
    produced++;
}

static void put_rules(const char *name, const char *text)
{
    char path[512];
    fl_cli_run_t r;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs(text, f);
    fclose(f);
    const char *args[] = {"rules", "put", path, "--doc-prefix", "t/", "--bootstrap", bootstrap,
                          "--prefix", prefix, NULL};
    ASSERT_EQ(fl_cli_run(&r, tmpdir, args), 0);
    if (r.status != 0)
        fprintf(stderr, "rules put: %s", r.err);
    ASSERT_EQ(r.status, 0);
    fl_cli_run_free(&r);
}

/* ---- outcomes and metrics --------------------------------------------------- */

typedef struct tally_s {
    long outcomes;
    fl_arena_t *arena;
    bool check; /* fill want[].seen and compare */
    int bad;
} tally_t;

static int on_event(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    tally_t *t = opaque;
    fl_wire_msg_t m;
    char err[128];
    (void)p;
    (void)off;
    fl_arena_reset(t->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, t->arena, &m, err, sizeof err) != 0 ||
        m.type != FL_WT_REC_OUTCOME)
        return 0;
    t->outcomes++;
    if (!t->check)
        return 0;
    const fl_outcome_t *o = &m.u.outcome.outcome;
    int d = -1;
    for (int i = 0; i <= NDOCS; i++)
        if (o->doc.len == strlen(docs[i]) && memcmp(o->doc.ptr, docs[i], o->doc.len) == 0)
            d = i;
    if (d < 0 || o->seq > MAXSEQ || o->nresults != 1) {
        t->bad++;
        return 0;
    }
    want_t *w = &want[d][o->seq];
    const fl_cmd_result_t *r = &o->results[0];
    const char *rule = w->rule ? w->rule : "";
    w->seen++;
    if (r->code != w->code || r->rule.len != strlen(rule) ||
        memcmp(r->rule.ptr ? r->rule.ptr : "", rule, r->rule.len) != 0) {
        fprintf(stderr, "%s seq %llu: want %s '%s', got %s '%.*s'\n", docs[d],
                (unsigned long long)o->seq, fl_code_name(w->code), rule, fl_code_name(r->code),
                (int)r->rule.len, r->rule.len ? r->rule.ptr : "");
        t->bad++;
    }
    return 0;
}

static long outcomes_now(void)
{
    tally_t t = {.arena = fl_arena_new(4096)};
    fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, on_event, &t);
    fl_arena_free(t.arena);
    return t.outcomes;
}

static bool all_answered(void *arg)
{
    (void)arg;
    return !fl_proc_alive(&proc) || outcomes_now() >= produced;
}

static void wait_answered(void)
{
    if (!fl_wait_until(all_answered, NULL, 180000) || !fl_proc_alive(&proc)) {
        fl_proc_dump_log(&proc, 40);
        FL_FAIL_("the processor did not answer the %ld flushes", produced);
    }
}

/* The value of a processor counter, or -1. */
static long metric(const char *name)
{
    char *body = NULL, *at;
    long v = -1;
    if (fl_http_get(http_port, "/metrics", &body) == 200 && body) {
        char needle[160];
        snprintf(needle, sizeof needle, "\n%s ", name);
        if ((at = strstr(body, needle)))
            v = strtol(at + strlen(needle), NULL, 10);
    }
    free(body);
    return v;
}

typedef struct metric_wait_s {
    const char *name;
    long want;
} metric_wait_t;

static bool metric_reached(void *arg)
{
    const metric_wait_t *mw = arg;
    return !fl_proc_alive(&proc) || metric(mw->name) >= mw->want;
}

/* ---- raw bad rules records ---------------------------------------------------- */

static void produce_bad_rules(rd_kafka_t *rk)
{
    char topic[160], *buf, err[128];
    size_t len;
    fl_wire_msg_t msg = {.type = FL_WT_REC_RULES};
    msg.u.rules.prefix = FL_SLICE("t/");
    msg.u.rules.has_rules = true;
    msg.u.rules.rules = FL_SLICE("{\"rules\":[{\"name\":\"x\",\"allow\":{\"ops\":[\"zap\"]}}]}");
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, err, sizeof err), 0);
    snprintf(topic, sizeof topic, "%s.commands", prefix);
    for (int32_t p = 0; p < PARTITIONS; p++) {
        ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                    RD_KAFKA_V_KEY(FL_WIRE_RULES_KEY.ptr, FL_WIRE_RULES_KEY.len),
                                    RD_KAFKA_V_VALUE("\x93\x01\x02", 3),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                  0);
        ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                    RD_KAFKA_V_KEY(FL_WIRE_RULES_KEY.ptr, FL_WIRE_RULES_KEY.len),
                                    RD_KAFKA_V_VALUE(buf, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                  0);
    }
    free(buf);
}

/* ---- the tests ------------------------------------------------------------------ */

static void test_rules_change_mid_stream(void)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    ASSERT_TRUE(rk != NULL);
    ASSERT_EQ(start_processor(), 0);
    /* before the rules: anything goes */
    for (int d = 0; d < NDOCS; d++) {
        send_flush(rk, d, 1, NULL, FL_CODE_OK, NULL);
        send_flush(rk, d, 2, NULL, FL_CODE_OK, NULL);
    }
    ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
    put_rules("plus_one.json", plus_one);
    /* after: +1 only, unless the record carries the admin role */
    for (int d = 0; d < NDOCS; d++) {
        send_flush(rk, d, 1, NULL, FL_CODE_OK, NULL);
        send_flush(rk, d, 2, NULL, FL_CODE_RULE_VIOLATION, "plus one");
        send_flush(rk, d, 5, "admin", FL_CODE_OK, NULL);
        send_flush(rk, d, 5, "member", FL_CODE_RULE_VIOLATION, "plus one");
    }
    send_flush(rk, NDOCS, 7, NULL, FL_CODE_OK, NULL); /* outside the prefix */
    /* bad rules records change nothing */
    produce_bad_rules(rk);
    for (int d = 0; d < NDOCS; d++)
        send_flush(rk, d, 2, NULL, FL_CODE_RULE_VIOLATION, "plus one");
    ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
    rd_kafka_destroy(rk);
    wait_answered();
    ASSERT_EQ(metric("flushline_processor_rules_records_total"), PARTITIONS);
    ASSERT_EQ(metric("flushline_processor_rules_records_bad_total"), 2 * PARTITIONS);
    ASSERT_TRUE(fl_proc_log_contains(&proc, "skipped bad rules record"));
}

/* Rules records copied to events (read_committed: committed ones), per
 * partition. */
static int count_rules(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    int *n = opaque;
    (void)off;
    if (p < PARTITIONS && msg->key_len == FL_WIRE_RULES_KEY.len &&
        memcmp(msg->key, FL_WIRE_RULES_KEY.ptr, msg->key_len) == 0)
        n[p]++;
    return 0;
}

static bool rules_committed(void *arg)
{
    int n[PARTITIONS] = {0}, need = *(int *)arg;
    if (fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, count_rules, n) < 0)
        return false;
    for (int p = 0; p < PARTITIONS; p++)
        if (n[p] < need)
            return false;
    return true;
}

/* Puts text, waits until every partition consumed it (committed too when
 * committed > 0: that many rules records in events per partition), then
 * kill -9 and a new processor. */
static void put_then_kill(const char *name, const char *text, int committed)
{
    metric_wait_t mw = {"flushline_processor_rules_records_total", 0};
    mw.want = metric(mw.name) + PARTITIONS;
    put_rules(name, text);
    ASSERT_TRUE(fl_wait_until(metric_reached, &mw, 120000));
    if (committed)
        ASSERT_TRUE(fl_wait_until(rules_committed, &committed, 120000));
    ASSERT_TRUE(fl_proc_alive(&proc));
    ASSERT_EQ(fl_proc_signal(&proc, SIGKILL), 0);
    ASSERT_EQ(fl_proc_wait(&proc, 30000), 128 + SIGKILL);
    ASSERT_EQ(start_processor(), 0);
}

static void check_every_outcome(void)
{
    tally_t t = {.arena = fl_arena_new(4096), .check = true};
    for (int d = 0; d <= NDOCS; d++)
        for (uint64_t s = 1; s <= next_seq[d]; s++)
            want[d][s].seen = 0;
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, on_event, &t) > 0);
    fl_arena_free(t.arena);
    ASSERT_EQ(t.bad, 0);
    ASSERT_EQ(t.outcomes, produced);
    for (int d = 0; d <= NDOCS; d++)
        for (uint64_t s = 1; s <= next_seq[d]; s++)
            ASSERT_EQ(want[d][s].seen, 1);
}

static void test_kill_after_rules_record(void)
{
    /* killed as soon as every partition consumed the record (whether its
     * transaction committed or not) */
    put_then_kill("one_or_two.json", one_or_two, 0);
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    ASSERT_TRUE(rk != NULL);
    for (int d = 0; d < NDOCS; d++) {
        send_flush(rk, d, 2, NULL, FL_CODE_OK, NULL);
        send_flush(rk, d, 3, NULL, FL_CODE_RULE_VIOLATION, "plus one");
        send_flush(rk, d, 5, "admin", FL_CODE_RULE_VIOLATION, "plus one"); /* no admin rule */
    }
    ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
    wait_answered();
    check_every_outcome();

    /* killed once the record is committed: the processor that takes over
     * starts after it in commands and must restore the set in force (from
     * a checkpoint and the events after it) */
    put_then_kill("plus_one_again.json", plus_one, 3);
    for (int d = 0; d < NDOCS; d++) {
        send_flush(rk, d, 2, NULL, FL_CODE_RULE_VIOLATION, "plus one");
        send_flush(rk, d, 5, "admin", FL_CODE_OK, NULL);
        send_flush(rk, d, 1, NULL, FL_CODE_OK, NULL);
    }
    ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
    rd_kafka_destroy(rk);
    wait_answered();
    check_every_outcome();
}

/* ---- verify and reprocess ------------------------------------------------------ */

typedef struct outs_s {
    char **rec[PARTITIONS];
    size_t *len[PARTITIONS];
    size_t n[PARTITIONS];
} outs_t;

static int keep_outcome(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    outs_t *o = opaque;
    (void)off;
    if (!memmem(msg->payload, msg->len, "\xa7outcome", 8) || p >= PARTITIONS)
        return 0;
    o->rec[p] = realloc(o->rec[p], (o->n[p] + 1) * sizeof *o->rec[p]);
    o->len[p] = realloc(o->len[p], (o->n[p] + 1) * sizeof *o->len[p]);
    o->rec[p][o->n[p]] = malloc(msg->len);
    memcpy(o->rec[p][o->n[p]], msg->payload, msg->len);
    o->len[p][o->n[p]++] = msg->len;
    return 0;
}

static void outs_free(outs_t *o)
{
    for (int p = 0; p < PARTITIONS; p++) {
        for (size_t i = 0; i < o->n[p]; i++)
            free(o->rec[p][i]);
        free(o->rec[p]);
        free(o->len[p]);
    }
}

static void verify_ok(const char *pfx)
{
    fl_cli_run_t r;
    const char *args[] = {"verify", "--bootstrap", bootstrap, "--prefix", pfx, "--quiet", NULL};
    ASSERT_EQ(fl_cli_run(&r, tmpdir, args), 0);
    if (r.status != 0)
        fprintf(stderr, "verify %s: %s%s", pfx, r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.out, "verify: ok:") != NULL);
    fl_cli_run_free(&r);
}

static void test_verify_and_reprocess(void)
{
    char to[128];
    fl_cli_run_t r;
    verify_ok(prefix);
    /* `at` (doc_at) reads events with the rules records in them */
    const char *at[] = {"at",      "--doc",     "t/d0", "--version", "3", "--bootstrap",
                        bootstrap, "--prefix", prefix, NULL};
    ASSERT_EQ(fl_cli_run(&r, tmpdir, at), 0);
    if (r.status != 0)
        fprintf(stderr, "at: %s%s", r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.out, "\"n\"") != NULL);
    fl_cli_run_free(&r);
    snprintf(to, sizeof to, "%s-re", prefix);
    const char *args[] = {"reprocess", "--bootstrap", bootstrap, "--prefix", prefix,
                          "--to-prefix", to, "--quiet", NULL};
    ASSERT_EQ(fl_cli_run(&r, tmpdir, args), 0);
    if (r.status != 0)
        fprintf(stderr, "reprocess: %s%s", r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.err, "skipped bad record") != NULL); /* the bad rules records */
    fl_cli_run_free(&r);
    outs_t a = {0}, b = {0};
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, keep_outcome, &a) > 0);
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, to, FL_TOPIC_EVENTS, keep_outcome, &b) > 0);
    size_t total = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        ASSERT_EQ(a.n[p], b.n[p]);
        for (size_t i = 0; i < a.n[p]; i++)
            ASSERT_MEM_EQ(a.rec[p][i], a.len[p][i], b.rec[p][i], b.len[p][i]);
        total += a.n[p];
    }
    ASSERT_EQ((long)total, produced);
    outs_free(&a);
    outs_free(&b);
    verify_ok(to);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-prules", prefix, sizeof prefix);
    snprintf(tmpdir, sizeof tmpdir, "%s/tests/%s", getenv("FL_BINARY_DIR"), prefix);
    if (mkdir(tmpdir, 0755) != 0 || fl_ktest_topics(bootstrap, prefix, PARTITIONS) != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(test_rules_change_mid_stream);
    if (fl_test_failures == 0)
        RUN(test_kill_after_rules_record);
    if (fl_test_failures == 0)
        RUN(test_verify_and_reprocess);
    fl_proc_kill(&proc);
    return fl_test_done();
}
