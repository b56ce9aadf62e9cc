/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline rules put|get|list|check` against the real broker:
 * - put publishes exactly one rules record to every partition of commands
 *   (read back per partition, key 0xFF "rules", decoding to the file's
 *   prefix and text); get prints that rule set; list shows every prefix in
 *   force; put --remove takes a prefix out;
 * - bad files (unknown op, bad pointer pattern, schema keyword outside the
 *   subset, wrong types, not JSON, a 10 MB file, a missing file) exit 1 with
 *   the JSON path of the problem and publish nothing; bad usage exits 2; an
 *   unreachable broker exits 3;
 * - raw bad rules records written by hand (undecodable, and a valid
 *   envelope around an invalid rule set) are reported and skipped by list,
 *   which keeps the rule set in force; they stay in the log for the
 *   processor to skip (counted: test_processor_rules.c), and it survives them;
 * - check rebuilds the documents the processor wrote and lists the
 *   locations that break the file's constraints (exit 1), or none (exit 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fl_cli.h"
#include "fl_ktest.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"
#include "flushline/rules.h"

#define PARTITIONS 4

static const char *bootstrap;
static char prefix[96];
static fl_proc_t proc;
static char tmpdir[256];

typedef fl_cli_run_t run_t;
#define run_free fl_cli_run_free
#define run_cli(r, args) fl_cli_run((r), tmpdir, (args))

#define CLI(r, ...)                                                                                \
    do {                                                                                           \
        const char *cli_args_[] = {__VA_ARGS__, NULL};                                             \
        ASSERT_EQ(run_cli((r), cli_args_), 0);                                                     \
    } while (0)

static const char *write_tmp(const char *name, const char *text, size_t len)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(text, 1, len, f) != len)
        p = NULL;
    if (f)
        fclose(f);
    return p;
}

/* ---- reading rules records back ---------------------------------------- */

typedef struct recs_s {
    int per_partition[PARTITIONS];
    int total;
    char last_prefix[PARTITIONS][64];
    bool last_has_rules[PARTITIONS];
    fl_arena_t *arena;
} recs_t;

static int on_rec(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    recs_t *rs = opaque;
    fl_wire_msg_t m;
    char err[128];
    (void)off;
    if (msg->key_len != FL_WIRE_RULES_KEY.len ||
        memcmp(msg->key, FL_WIRE_RULES_KEY.ptr, FL_WIRE_RULES_KEY.len) != 0 || p >= PARTITIONS)
        return 0;
    rs->total++;
    fl_arena_reset(rs->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, rs->arena, &m, err, sizeof err) == 0 &&
        m.type == FL_WT_REC_RULES) {
        rs->per_partition[p]++;
        snprintf(rs->last_prefix[p], sizeof rs->last_prefix[p], "%.*s",
                 (int)m.u.rules.prefix.len, m.u.rules.prefix.ptr);
        rs->last_has_rules[p] = m.u.rules.has_rules;
    }
    return 0;
}

static void read_rules_records(recs_t *rs)
{
    memset(rs, 0, sizeof *rs);
    rs->arena = fl_arena_new(4096);
    fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_COMMANDS, on_rec, rs);
    fl_arena_free(rs->arena);
    rs->arena = NULL;
}

/* ---- the documents ------------------------------------------------------ */

static long produced;

static int count_outcomes(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    long *n = opaque;
    (void)p;
    (void)off;
    if (memmem(msg->payload, msg->len, "\xa7outcome", 8))
        (*n)++;
    return 0;
}

static bool all_outcomes(void *arg)
{
    long n = 0;
    (void)arg;
    if (!fl_proc_alive(&proc))
        return true;
    return fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, count_outcomes, &n) >= 0 &&
           n >= produced;
}

static void produce_doc(rd_kafka_t *rk, const char *doc, const char *json, uint8_t client)
{
    fl_arena_t *arena = fl_arena_new(4096);
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    fl_cmd_t cmd = {.op = FL_OP_MERGE, .has_value = true, .path = FL_SLICE("")};
    ASSERT_TRUE(j != NULL);
    ASSERT_EQ(fl_value_from_json(j, NULL, arena, &cmd.value), 0);
    fl_flush_t f = {.doc = {doc, strlen(doc)}, .seq = 1, .ncmds = 1, .cmds = &cmd};
    memset(f.client_id, client, FL_CLIENT_ID_LEN);
    ASSERT_EQ(fl_ktest_produce_flush(rk, prefix, &f, "ann", "gw-r", 1), 0);
    produced++;
    json_decref(j);
    fl_arena_free(arena);
}

static void test_documents(void)
{
    char log[512], port[16], txid[160], group[160];
    snprintf(log, sizeof log, "%s/processor.log", tmpdir);
    snprintf(port, sizeof port, "%d", fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx-1", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", txid, "--http.port", port,
                          NULL};
    ASSERT_EQ(fl_proc_start(&proc, "flushline-processor", args, log), 0);
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    ASSERT_TRUE(rk != NULL);
    produce_doc(rk, "t/board-1",
                "{\"cards\":{\"c1\":{\"title\":\"short\"},\"c2\":{\"title\":\"far too long a "
                "title\"}}}",
                1);
    produce_doc(rk, "t/board-2", "{\"cards\":{\"c1\":{\"title\":\"ok\"}}}", 2);
    produce_doc(rk, "u/other", "{\"cards\":{\"x\":{\"title\":\"another long title\"}}}", 3);
    ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
    rd_kafka_destroy(rk);
    if (!fl_wait_until(all_outcomes, NULL, 120000) || !fl_proc_alive(&proc)) {
        fl_proc_dump_log(&proc, 40);
        FL_FAIL_("the processor did not answer the %ld flushes", produced);
    }
}

/* ---- put, get, list ----------------------------------------------------- */

static const char board_rules[] =
    "{\"rules\":[{\"name\":\"vote +1\",\"allow\":{\"ops\":[\"incr\"],\"paths\":"
    "[\"/cards/*/votes\"],\"where\":[{\"value\":\"\",\"eq\":1}]}},"
    "{\"name\":\"short titles\",\"constraint\":{\"path\":\"/cards/*/title\","
    "\"schema\":{\"type\":\"string\",\"maxLength\":10}}}]}";

static void test_put_get_list(void)
{
    run_t r;
    recs_t rs;
    const char *good = write_tmp("board.json", board_rules, strlen(board_rules));
    const char *other = write_tmp("other.json", "{\"rules\":[]}", 12);
    ASSERT_TRUE(good && other);

    CLI(&r, "rules", "put", good, "--doc-prefix", "t/", "--bootstrap", bootstrap, "--prefix",
        prefix);
    if (r.status != 0)
        fprintf(stderr, "%s", r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.out, "published to 4 partitions") != NULL);
    run_free(&r);
    read_rules_records(&rs);
    for (int p = 0; p < PARTITIONS; p++) {
        ASSERT_EQ(rs.per_partition[p], 1); /* every partition, once */
        ASSERT_STR_EQ(rs.last_prefix[p], "t/");
        ASSERT_TRUE(rs.last_has_rules[p]);
    }

    CLI(&r, "rules", "get", "t/", "--bootstrap", bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 0);
    json_error_t jerr;
    json_t *got = json_loads(r.out, 0, &jerr), *want = json_loads(board_rules, 0, &jerr);
    ASSERT_TRUE(got != NULL && want != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "prefix")), "t/");
    ASSERT_TRUE(json_equal(json_object_get(got, "rules"), want));
    json_decref(got);
    json_decref(want);
    run_free(&r);
    CLI(&r, "rules", "get", "nope/", "--bootstrap", bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 1);
    ASSERT_TRUE(strstr(r.err, "no rule set for prefix \"nope/\"") != NULL);
    run_free(&r);

    CLI(&r, "rules", "put", other, "--doc-prefix", "u/", "--bootstrap", bootstrap, "--prefix",
        prefix);
    ASSERT_EQ(r.status, 0);
    run_free(&r);
    CLI(&r, "rules", "list", "--bootstrap", bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.out, "{\"prefix\":\"t/\"") == r.out);
    ASSERT_TRUE(strstr(r.out, "\"rules\":2,") != NULL);
    ASSERT_TRUE(strstr(r.out, "\n{\"prefix\":\"u/\"") != NULL);
    run_free(&r);

    CLI(&r, "rules", "put", "--doc-prefix", "u/", "--remove", "--bootstrap", bootstrap,
        "--prefix", prefix);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.out, "rules removed for prefix \"u/\"") != NULL);
    run_free(&r);
    read_rules_records(&rs);
    for (int p = 0; p < PARTITIONS; p++) {
        ASSERT_EQ(rs.per_partition[p], 3);
        ASSERT_TRUE(!rs.last_has_rules[p]);
    }
    CLI(&r, "rules", "list", "--bootstrap", bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.out, "\"u/\"") == NULL);
    ASSERT_TRUE(strstr(r.out, "\"t/\"") != NULL);
    run_free(&r);
}

/* ---- bad files ---------------------------------------------------------- */

static void test_bad_files(void)
{
    static const struct {
        const char *name, *text, *want;
    } cases[] = {
        {"op.json", "{\"rules\":[{\"name\":\"a\",\"allow\":{\"ops\":[\"frob\"],\"paths\":[\"/a\"]}}]}",
         "rules[0].allow.ops[0]: unknown op \"frob\""},
        {"ptr.json", "{\"rules\":[{\"name\":\"a\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"a\"]}}]}",
         "rules[0].allow.paths[0]: bad pointer pattern"},
        {"kw.json",
         "{\"rules\":[{\"name\":\"a\",\"constraint\":{\"path\":\"/a\",\"schema\":{\"oneOf\":[]}}}]}",
         "rules[0].constraint.schema.oneOf: schema keyword outside the supported subset"},
        {"type.json", "{\"rules\":[{\"name\":7,\"allow\":{}}]}",
         "rules[0].name: must be a string, not an integer"},
        {"json.json", "{\"rules\": [", "$: not JSON"},
        {"stamp.json",
         "{\"rules\":[{\"name\":\"s\",\"stamp\":{\"path\":\"/c/*\",\"set\":{\"by\":\"$now\"}}}]}",
         "rules[0].stamp.set.by: must be one of"},
        {"dup.json", "{\"rules\":[{\"name\":\"a\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"/a\"]}},"
                     "{\"name\":\"a\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"/a\"]}}]}",
         "rules[1].name: duplicate rule name"},
        {"cond.json", "{\"rules\":[{\"name\":\"a\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"/a\"],"
                      "\"where\":[{\"target\":\"/by\",\"eq\":\"$who\"}]}}]}",
         "rules[0].allow.where[0].eq: unknown variable"},
        {"top.json", "[1]", "$: must be an object, not an array"},
        {"min.json",
         "{\"rules\":[{\"name\":\"a\",\"constraint\":{\"path\":\"/a\",\"schema\":{\"minimum\":\"1\"}}}]}",
         "rules[0].constraint.schema.minimum: must be a number, not a string"},
    };
    recs_t before, after;
    run_t r;
    read_rules_records(&before);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_tmp(cases[i].name, cases[i].text, strlen(cases[i].text));
        ASSERT_TRUE(path != NULL);
        CLI(&r, "rules", "put", path, "--doc-prefix", "t/", "--bootstrap", bootstrap, "--prefix",
            prefix);
        if (r.status != 1 || !strstr(r.err, cases[i].want))
            fprintf(stderr, "%s: status %d: %s", cases[i].name, r.status, r.err);
        ASSERT_EQ(r.status, 1);
        ASSERT_TRUE(strstr(r.err, cases[i].want) != NULL);
        run_free(&r);
    }
    /* a 10 MB file */
    size_t n = 10u << 20;
    char *big = malloc(n);
    ASSERT_TRUE(big != NULL);
    memset(big, ' ', n);
    memcpy(big, "{\"rules\":[]}", 12);
    const char *path = write_tmp("big.json", big, n);
    free(big);
    CLI(&r, "rules", "put", path, "--doc-prefix", "t/", "--bootstrap", bootstrap, "--prefix",
        prefix);
    ASSERT_EQ(r.status, 1);
    ASSERT_TRUE(strstr(r.err, "larger than the limit of 262144 bytes") != NULL);
    run_free(&r);
    CLI(&r, "rules", "put", "/nonexistent/rules.json", "--doc-prefix", "t/", "--bootstrap",
        bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 1);
    ASSERT_TRUE(strstr(r.err, "cannot open") != NULL);
    run_free(&r);
    /* usage */
    CLI(&r, "rules", "put", path, "--bootstrap", bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    CLI(&r, "rules", "frob");
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    /* nothing was published by any of them */
    read_rules_records(&after);
    ASSERT_EQ(after.total, before.total);
    /* an unreachable broker */
    const char *good = write_tmp("good2.json", "{\"rules\":[]}", 12);
    CLI(&r, "rules", "put", good, "--doc-prefix", "t/", "--bootstrap", "127.0.0.1:1",
        "--prefix", prefix);
    ASSERT_EQ(r.status, 3);
    run_free(&r);
}

/* ---- raw bad records ---------------------------------------------------- */

static void test_raw_bad_records(void)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    ASSERT_TRUE(rk != NULL);
    /* undecodable bytes under the rules key, to partition 0 */
    char topic[160];
    snprintf(topic, sizeof topic, "%s.commands", prefix);
    ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_KEY(FL_WIRE_RULES_KEY.ptr, FL_WIRE_RULES_KEY.len),
                                RD_KAFKA_V_VALUE("\x93\x01\x02", 3),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              0);
    /* a well-formed record whose rule set is invalid, for the same prefix */
    fl_wire_msg_t msg = {.type = FL_WT_REC_RULES};
    msg.u.rules.prefix = FL_SLICE("t/");
    msg.u.rules.has_rules = true;
    msg.u.rules.rules = FL_SLICE("{\"rules\":[{\"name\":\"x\",\"allow\":{\"ops\":[\"zap\"]}}]}");
    char *buf, err[128];
    size_t len;
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, err, sizeof err), 0);
    ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_KEY(FL_WIRE_RULES_KEY.ptr, FL_WIRE_RULES_KEY.len),
                                RD_KAFKA_V_VALUE(buf, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              0);
    free(buf);
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);

    run_t r;
    CLI(&r, "rules", "list", "--bootstrap", bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.err, "bad rules record skipped") != NULL);
    ASSERT_TRUE(strstr(r.err, "invalid rule set skipped: rules[0].allow: missing \"paths\"") !=
                NULL);
    /* the rule set in force is still the one put before */
    ASSERT_TRUE(strstr(r.out, "{\"prefix\":\"t/\"") != NULL);
    ASSERT_TRUE(strstr(r.out, "\"rules\":2,") != NULL);
    run_free(&r);
    /* the processor skips them as bad rules records and keeps running */
    ASSERT_TRUE(fl_proc_alive(&proc));
}

/* ---- check -------------------------------------------------------------- */

static void test_check(void)
{
    run_t r;
    const char *good = write_tmp("board3.json", board_rules, strlen(board_rules));
    CLI(&r, "rules", "check", good, "--doc-prefix", "t/", "--bootstrap", bootstrap, "--prefix",
        prefix, "-q");
    if (r.status != 1)
        fprintf(stderr, "check: %d %s %s", r.status, r.out, r.err);
    ASSERT_EQ(r.status, 1);
    ASSERT_TRUE(strstr(r.out, "{\"doc\":\"t/board-1\",\"version\":1,\"rule\":\"short titles\","
                              "\"where\":\"/cards/c2/title\"}") != NULL);
    ASSERT_TRUE(strstr(r.out, "t/board-2") == NULL);
    ASSERT_TRUE(strstr(r.out, "u/other") == NULL); /* not under the prefix */
    ASSERT_TRUE(strstr(r.err, "2 documents checked, 1 violations") != NULL);
    run_free(&r);
    CLI(&r, "rules", "check", good, "--doc-prefix", "t/board-2", "--bootstrap", bootstrap,
        "--prefix", prefix, "-q");
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.outlen, 0);
    run_free(&r);
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-rules", prefix, sizeof prefix);
    snprintf(tmpdir, sizeof tmpdir, "%s/tests/%s", getenv("FL_BINARY_DIR"), prefix);
    if (mkdir(tmpdir, 0755) != 0 || fl_ktest_topics(bootstrap, prefix, PARTITIONS) != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(test_documents);
    if (fl_test_failures == 0) {
        RUN(test_put_get_list);
        RUN(test_bad_files);
        RUN(test_raw_bad_records);
        RUN(test_check);
    }
    fl_proc_kill(&proc);
    return fl_test_done();
}
