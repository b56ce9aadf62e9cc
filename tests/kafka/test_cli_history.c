/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The history commands of the `flushline` CLI against the real broker. A
 * history is written by the real processor (generated flushes over 10
 * documents, 4 partitions, a snapshot every 40 versions, SIGTERM for the
 * final snapshots and checkpoints), then the CLI binary is run and its
 * output compared with an in-process model:
 * - replay: every document's final version, chain and digest equal the
 *   model's; a replay starting mid-history (seeded from a snapshot) prints
 *   the same lines as the full replay from there on;
 * - at --version: equal to the document built by applying its flushes
 *   in-process up to that version (mid-history and at a snapshot's version);
 *   inside a multi-command outcome: that version, chain null;
 * - at --time: the state after the last outcome stamped at or before T;
 * - verify: passes on the clean history; on a copy with one outcome's
 *   commands altered it exits 1 naming that record's partition and offset;
 * - reprocess into a fresh prefix: byte-identical outcomes, same digests,
 *   and verify passes there; a second run adds nothing; commands written
 *   later are picked up by a third run, which continues the documents
 *   restored from the new events;
 * - tail: prints a document's outcomes from a version;
 * - bad inputs: unreachable bootstrap (exit 3), unknown prefix (non-zero,
 *   topic named), bad ranges (exit 2).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fl_gen.h"
#include "fl_ktest.h"
#include "fl_model.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

#define PARTITIONS 4
#define NDOCS 10
#define NCLIENTS 10
#define ROUNDS 300

static const char *bootstrap;
static char prefix[96];
static fl_proc_t proc;
static long produced;
static fl_model_t *model;
static char docs[NDOCS][32];

/* ---- running the CLI ---------------------------------------------------- */

typedef struct run_s {
    int status;
    char *out; /* stdout, NUL-terminated */
    size_t outlen;
    char *err; /* stderr */
} run_t;

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Runs FL_BINARY_DIR/bin/flushline with args (NULL-terminated); captures
 * stdout and stderr. */
static int run_cli(run_t *r, const char *const *args)
{
    const char *bindir = getenv("FL_BINARY_DIR");
    char path[1024], errpath[1024];
    const char *argv[64];
    int n = 0, fds[2], status;
    size_t cap = 1 << 16;

    memset(r, 0, sizeof *r);
    snprintf(path, sizeof path, "%s/bin/flushline", bindir ? bindir : ".");
    snprintf(errpath, sizeof errpath, "%s/tests/%s-cli-%d.err", bindir ? bindir : ".", prefix,
             (int)getpid());
    argv[n++] = path;
    for (; *args && n < 63; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fds[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        close(fds[0]);
        close(fds[1]);
        execv(path, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    r->out = malloc(cap);
    for (;;) {
        if (r->outlen + 4096 + 1 > cap)
            r->out = realloc(r->out, cap *= 2);
        ssize_t got = read(fds[0], r->out + r->outlen, cap - r->outlen - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        r->outlen += (size_t)got;
    }
    r->out[r->outlen] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    size_t len;
    r->err = fl_test_read_file(errpath, &len);
    if (!r->err)
        r->err = strdup("");
    unlink(errpath);
    return 0;
}

#define CLI(r, ...)                                                                                \
    do {                                                                                           \
        const char *cli_args_[] = {__VA_ARGS__, NULL};                                             \
        ASSERT_EQ(run_cli((r), cli_args_), 0);                                                     \
    } while (0)

/* ---- the history -------------------------------------------------------- */

static int start_processor(void)
{
    char log[512], port[16], txid[160], group[160];
    snprintf(log, sizeof log, "%s/tests/%s-processor.log", getenv("FL_BINARY_DIR"), prefix);
    snprintf(port, sizeof port, "%d", fl_free_port());
    snprintf(txid, sizeof txid, "%s-tx-1", prefix);
    snprintf(group, sizeof group, "%s-processors", prefix);
    const char *args[] = {"--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4",
                          "--group.id", group, "--transactional.id", txid, "--http.port", port,
                          "--snapshot.every.versions", "40", NULL};
    return fl_proc_start(&proc, "flushline-processor", args, log);
}

static int count_outcomes(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    long *n = opaque;
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

static void test_write_history(void)
{
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    uint8_t cids[NCLIENTS][FL_CLIENT_ID_LEN];
    static uint64_t seqs[NCLIENTS][NDOCS];
    fl_model_report_t rep;
    fl_gen_t g;

    ASSERT_TRUE(rk != NULL);
    fl_gen_seed(&g, 7);
    for (int d = 0; d < NDOCS; d++)
        snprintf(docs[d], sizeof docs[d], "acme/hist-%d", d);
    for (int c = 0; c < NCLIENTS; c++)
        fl_gen_client_id(cids[c], (uint32_t)c + 100);
    for (int s = 0; s < ROUNDS; s++) {
        for (int c = 0; c < NCLIENTS; c++) {
            fl_flush_t f;
            int d = (int)(fl_gen_next(&g) % NDOCS);
            fl_arena_reset(arena);
            fl_gen_flush(&g, arena, docs[d], cids[c], ++seqs[c][d], 5, &f);
            if (fl_ktest_produce_flush(rk, prefix, &f, "user-h", "gw-h", 3) == 0)
                produced++;
        }
        /* spread the flushes over a few hundred ms so that times differ */
        if (s % 30 == 29) {
            rd_kafka_flush(rk, 10000);
            usleep(30000);
        }
    }
    ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
    rd_kafka_destroy(rk);
    fl_arena_free(arena);

    if (!fl_wait_until(all_outcomes, NULL, 180000) || !fl_proc_alive(&proc)) {
        fl_proc_dump_log(&proc, 40);
        FL_FAIL_("the processor did not answer all %ld flushes", produced);
    }
    ASSERT_EQ(fl_proc_signal(&proc, SIGTERM), 0);
    int st = fl_proc_wait(&proc, 60000);
    if (st != 0)
        fl_proc_dump_log(&proc, 40);
    ASSERT_EQ(st, 0);
    model = fl_model_check(bootstrap, prefix, &rep);
    ASSERT_TRUE(model != NULL);
    ASSERT_EQ(rep.commands, produced);
    ASSERT_EQ(rep.mismatches, 0);
    ASSERT_EQ(rep.gaps, 0);
}

/* ---- replay ------------------------------------------------------------- */

typedef struct line_s {
    char doc[64];
    uint64_t version;
    char chain[65], digest[65];
    int32_t partition;
    int64_t offset, ts;
} line_t;

static line_t *lines;
static size_t nlines;

/* Parses JSON lines of replay into an array; NULL on a bad line. */
static line_t *parse_lines(const char *text, size_t *count)
{
    size_t cap = 1024, n = 0;
    line_t *v = malloc(cap * sizeof *v);
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t jerr;
        json_t *o = json_loadb(p, len, 0, &jerr);
        if (!o || !json_is_object(o)) {
            fprintf(stderr, "bad replay line: %.*s\n", (int)len, p);
            json_decref(o);
            free(v);
            return NULL;
        }
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        line_t *l = &v[n++];
        memset(l, 0, sizeof *l);
        snprintf(l->doc, sizeof l->doc, "%s", json_string_value(json_object_get(o, "doc")));
        l->version = (uint64_t)json_integer_value(json_object_get(o, "version"));
        snprintf(l->chain, sizeof l->chain, "%s", json_string_value(json_object_get(o, "chain")));
        snprintf(l->digest, sizeof l->digest, "%s",
                 json_string_value(json_object_get(o, "digest")));
        l->partition = (int32_t)json_integer_value(json_object_get(o, "partition"));
        l->offset = json_integer_value(json_object_get(o, "offset"));
        l->ts = json_integer_value(json_object_get(o, "ts"));
        json_decref(o);
        p += len;
        if (*p == '\n')
            p++;
    }
    *count = n;
    return v;
}

static void hex(const uint8_t *p, char out[65])
{
    fl_wire_hex(p, 32, out);
}

/* Compares the last line of every document with the model. */
static int check_final(const line_t *v, size_t n, const char *what)
{
    int bad = 0;
    for (int d = 0; d < NDOCS; d++) {
        const line_t *last = NULL;
        char chain[65], digest[65];
        uint8_t dg[32];
        fl_doc_t *md = fl_model_doc(model, docs[d]);
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i].doc, docs[d]) == 0)
                last = &v[i];
        if (!md || !last) {
            fprintf(stderr, "%s: %s missing\n", what, docs[d]);
            bad++;
            continue;
        }
        hex(fl_doc_chain(md), chain);
        fl_doc_digest(md, dg);
        hex(dg, digest);
        if (last->version != fl_doc_version(md) || strcmp(last->chain, chain) != 0 ||
            strcmp(last->digest, digest) != 0) {
            fprintf(stderr, "%s: %s at v%llu, model v%llu\n", what, docs[d],
                    (unsigned long long)last->version, (unsigned long long)fl_doc_version(md));
            bad++;
        }
    }
    return bad;
}

static void test_replay(void)
{
    run_t r;
    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", prefix);
    if (r.status != 0)
        fprintf(stderr, "%s", r.err);
    ASSERT_EQ(r.status, 0);
    lines = parse_lines(r.out, &nlines);
    run_free(&r);
    ASSERT_TRUE(lines != NULL);
    ASSERT_GT(nlines, 1000);
    ASSERT_EQ(check_final(lines, nlines, "replay"), 0);
    /* versions of each document strictly increase line by line */
    for (int d = 0; d < NDOCS; d++) {
        uint64_t prev = 0;
        for (size_t i = 0; i < nlines; i++) {
            if (strcmp(lines[i].doc, docs[d]) != 0)
                continue;
            ASSERT_GT(lines[i].version, prev);
            prev = lines[i].version;
        }
    }
}

/* A replay from mid-history of one document: seeded from a snapshot, the
 * same lines as the full replay from that offset on. */
static void test_replay_from_offset(void)
{
    const char *doc = docs[3];
    size_t idx[4096], k = 0;
    char arg[64];
    run_t r;
    for (size_t i = 0; i < nlines && k < 4096; i++)
        if (strcmp(lines[i].doc, doc) == 0)
            idx[k++] = i;
    ASSERT_GT(k, 20);
    const line_t *mid = &lines[idx[k / 2]];
    snprintf(arg, sizeof arg, "%d:%lld", mid->partition, (long long)mid->offset);
    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", prefix, "--doc", doc,
        "--from-offset", arg, "--quiet");
    ASSERT_EQ(r.status, 0);
    size_t n;
    line_t *v = parse_lines(r.out, &n);
    run_free(&r);
    ASSERT_TRUE(v != NULL);
    if (n != k - k / 2) {
        free(v);
        FL_FAIL_("%zu lines, expected %zu", n, k - k / 2);
    }
    for (size_t i = 0; i < n; i++) {
        const line_t *want = &lines[idx[k / 2 + i]];
        if (v[i].version != want->version || strcmp(v[i].digest, want->digest) != 0 ||
            strcmp(v[i].chain, want->chain) != 0 || v[i].offset != want->offset) {
            /* read what the message needs before v goes */
            unsigned long long got = (unsigned long long)v[i].version;
            free(v);
            FL_FAIL_("line %zu: v%llu vs v%llu", i, got, (unsigned long long)want->version);
        }
    }
    free(v);
    /* msgpack form: a stream of maps, as many as JSON lines */
    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", prefix, "--doc", doc, "--format",
        "msgpack", "--quiet");
    ASSERT_EQ(r.status, 0);
    {
        msgpack_unpacker up;
        msgpack_unpacked res;
        size_t maps = 0;
        msgpack_unpacker_init(&up, r.outlen + 16);
        memcpy(msgpack_unpacker_buffer(&up), r.out, r.outlen);
        msgpack_unpacker_buffer_consumed(&up, r.outlen);
        msgpack_unpacked_init(&res);
        while (msgpack_unpacker_next(&up, &res) == MSGPACK_UNPACK_SUCCESS)
            if (res.data.type == MSGPACK_OBJECT_MAP)
                maps++;
        msgpack_unpacked_destroy(&res);
        msgpack_unpacker_destroy(&up);
        run_free(&r);
        ASSERT_EQ(maps, k);
    }
}

/* ---- at ----------------------------------------------------------------- */

typedef struct build_s {
    fl_doc_t *doc;
    fl_arena_t *arena;
    uint64_t target;
    bool done;
} build_t;

/* Applies the document's flushes from commands in order until its version
 * reaches the target (an outcome boundary). */
static int on_build(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    build_t *b = opaque;
    fl_wire_msg_t wm;
    fl_outcome_t out;
    char errstr[128];
    rd_kafka_timestamp_type_t tt;
    fl_slice_t id = fl_doc_id(b->doc);
    if (b->done || msg->key_len != id.len || memcmp(msg->key, id.ptr, id.len) != 0)
        return 0;
    fl_arena_reset(b->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, b->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_FLUSH)
        return 0;
    wm.u.rflush.flush.ts_ms = rd_kafka_message_timestamp(msg, &tt);
    if (fl_doc_apply(b->doc, &wm.u.rflush.flush, b->arena, &out) != 0)
        return 1;
    if (fl_doc_version(b->doc) >= b->target)
        b->done = true;
    return 0;
}

static bool built_digest(const char *doc, uint64_t version, char digest[65])
{
    build_t b = {fl_doc_new((fl_slice_t){doc, strlen(doc)}, NULL), fl_arena_new(1 << 14),
                 version, version == 0};
    uint8_t dg[32];
    fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_COMMANDS, on_build, &b);
    bool ok = fl_doc_version(b.doc) == version;
    fl_doc_digest(b.doc, dg);
    hex(dg, digest);
    fl_doc_free(b.doc);
    fl_arena_free(b.arena);
    return ok;
}

static json_t *at_json(const char *doc, const char *flag, const char *value)
{
    run_t r;
    json_error_t jerr;
    const char *args[] = {"at", "--bootstrap", bootstrap, "--prefix", prefix, "--doc", doc,
                          flag, value, "--quiet", NULL};
    if (run_cli(&r, args) != 0)
        return NULL;
    if (r.status != 0)
        fprintf(stderr, "at %s %s: exit %d: %s", flag, value, r.status, r.err);
    json_t *o = r.status == 0 ? json_loads(r.out, 0, &jerr) : NULL;
    run_free(&r);
    return o;
}

typedef struct snapver_s {
    const char *doc;
    uint64_t version;
    char digest[65];
} snapver_t;

static int on_snap(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    snapver_t *s = opaque;
    fl_arena_t *arena = fl_arena_new(1 << 14);
    fl_wire_msg_t wm;
    char errstr[128];
    if (fl_wire_decode_record(msg->payload, msg->len, arena, &wm, errstr, sizeof errstr) == 0 &&
        wm.type == FL_WT_REC_SNAPSHOT && wm.u.snapshot.doc.len == strlen(s->doc) &&
        memcmp(wm.u.snapshot.doc.ptr, s->doc, wm.u.snapshot.doc.len) == 0 && s->version == 0) {
        /* the first (oldest) snapshot: mid-history */
        s->version = wm.u.snapshot.version;
        hex(wm.u.snapshot.digest, s->digest);
    }
    fl_arena_free(arena);
    return 0;
}

static void test_at_version(void)
{
    const char *doc = docs[5];
    const line_t *mid = NULL;
    char v[32], want[65];
    size_t k = 0, seen = 0;
    for (size_t i = 0; i < nlines; i++)
        if (strcmp(lines[i].doc, doc) == 0)
            k++;
    for (size_t i = 0; i < nlines && !mid; i++)
        if (strcmp(lines[i].doc, doc) == 0 && ++seen == k / 3)
            mid = &lines[i];
    ASSERT_TRUE(mid != NULL);

    /* mid-history, at an outcome boundary */
    snprintf(v, sizeof v, "%llu", (unsigned long long)mid->version);
    json_t *o = at_json(doc, "--version", v);
    ASSERT_TRUE(o != NULL);
    ASSERT_TRUE(built_digest(doc, mid->version, want));
    ASSERT_EQ(json_integer_value(json_object_get(o, "version")), mid->version);
    ASSERT_STR_EQ(json_string_value(json_object_get(o, "digest")), want);
    ASSERT_STR_EQ(json_string_value(json_object_get(o, "chain")), mid->chain);
    json_decref(o);

    /* at a snapshot's version */
    snapver_t sv = {doc, 0, ""};
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_SNAPSHOTS, on_snap, &sv) >= 0);
    ASSERT_GT(sv.version, 0);
    snprintf(v, sizeof v, "%llu", (unsigned long long)sv.version);
    o = at_json(doc, "--version", v);
    ASSERT_TRUE(o != NULL);
    ASSERT_TRUE(built_digest(doc, sv.version, want));
    ASSERT_STR_EQ(json_string_value(json_object_get(o, "digest")), want);
    ASSERT_STR_EQ(json_string_value(json_object_get(o, "digest")), sv.digest);
    json_decref(o);

    /* inside a multi-command outcome: that version, no chain */
    for (size_t i = 0; i < nlines; i++) {
        if (strcmp(lines[i].doc, doc) != 0)
            continue;
        uint64_t prev = 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(lines[j].doc, doc) == 0)
                prev = lines[j].version;
        if (lines[i].version - prev >= 2) {
            snprintf(v, sizeof v, "%llu", (unsigned long long)prev + 1);
            o = at_json(doc, "--version", v);
            ASSERT_TRUE(o != NULL);
            ASSERT_EQ(json_integer_value(json_object_get(o, "version")), prev + 1);
            ASSERT_TRUE(json_is_null(json_object_get(o, "chain")));
            json_decref(o);
            break;
        }
    }

    /* past the end: exit 1 */
    run_t r;
    CLI(&r, "at", "--bootstrap", bootstrap, "--prefix", prefix, "--doc", doc, "--version",
        "999999999", "--quiet");
    ASSERT_EQ(r.status, 1);
    ASSERT_TRUE(strstr(r.err, "only reaches version") != NULL);
    run_free(&r);
}

static void test_at_time(void)
{
    const char *doc = docs[7];
    const line_t *pick = NULL, *want = NULL;
    size_t k = 0, seen = 0;
    char t[32];
    for (size_t i = 0; i < nlines; i++)
        if (strcmp(lines[i].doc, doc) == 0)
            k++;
    for (size_t i = 0; i < nlines && !pick; i++)
        if (strcmp(lines[i].doc, doc) == 0 && ++seen == k / 2)
            pick = &lines[i];
    ASSERT_TRUE(pick != NULL);
    /* the expected state: after the last outcome before the first one
     * stamped later than T */
    for (size_t i = 0; i < nlines; i++) {
        if (strcmp(lines[i].doc, doc) != 0)
            continue;
        if (lines[i].ts > pick->ts)
            break;
        want = &lines[i];
    }
    snprintf(t, sizeof t, "%lld", (long long)pick->ts);
    json_t *o = at_json(doc, "--time", t);
    ASSERT_TRUE(o != NULL);
    ASSERT_EQ(json_integer_value(json_object_get(o, "version")), want->version);
    ASSERT_STR_EQ(json_string_value(json_object_get(o, "digest")), want->digest);
    json_decref(o);
}

/* ---- verify ------------------------------------------------------------- */

static void test_verify_clean(void)
{
    run_t r;
    CLI(&r, "verify", "--bootstrap", bootstrap, "--prefix", prefix, "--quiet");
    if (r.status != 0)
        fprintf(stderr, "%s%s", r.out, r.err);
    ASSERT_EQ(r.status, 0);
    ASSERT_TRUE(strstr(r.out, "verify: ok:") != NULL);
    ASSERT_TRUE(strstr(r.out, "10 documents") != NULL);
    printf("%s", r.out);
    run_free(&r);
    CLI(&r, "verify", "--bootstrap", bootstrap, "--prefix", prefix, "--doc", docs[2],
        "--strict-offsets", "--quiet");
    ASSERT_EQ(r.status, 0);
    run_free(&r);
}

typedef struct copy_s {
    rd_kafka_t *rk;
    const char *to_prefix;
    fl_topic_kind_t kind;
    long count[PARTITIONS];
    /* tamper with the outcome that is the nth applied one of partition 1 */
    int applied_seen;
    int tamper_at;
    int32_t tampered_partition;
    long tampered_offset;
    fl_arena_t *arena;
} copy_t;

static int on_copy(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    copy_t *c = opaque;
    char topic[FL_TOPIC_NAME_MAX + 1];
    char *buf = NULL, errstr[128];
    size_t len = msg->len;
    const void *val = msg->payload;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(msg, &tt);
    fl_wire_msg_t wm;

    if (c->tamper_at > 0 && p == 1) {
        fl_arena_reset(c->arena);
        if (fl_wire_decode_record(msg->payload, msg->len, c->arena, &wm, errstr, sizeof errstr) ==
                0 &&
            wm.type == FL_WT_REC_OUTCOME && wm.u.outcome.outcome.napplied > 0 &&
            ++c->applied_seen == c->tamper_at) {
            fl_outcome_t *o = &wm.u.outcome.outcome;
            /* one applied command gets another value (or path) */
            fl_cmd_t *cmd = &o->applied[0];
            if (cmd->has_value)
                cmd->value = fl_value_int(4242424242LL);
            else
                cmd->path = FL_SLICE("/tampered");
            if (fl_wire_encode_outcome_record(o, wm.u.outcome.gw, wm.u.outcome.origin, &buf, &len,
                                              errstr, sizeof errstr) != 0)
                return 1;
            val = buf;
            c->tampered_partition = p;
            c->tampered_offset = c->count[p];
        }
    }
    fl_topic_name(c->to_prefix, c->kind, topic, sizeof topic);
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(c->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                    RD_KAFKA_V_KEY(msg->key, msg->key_len),
                                    RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_TIMESTAMP(ts),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(c->rk, 10);
    free(buf);
    c->count[p]++;
    return err ? 1 : 0;
}

static void test_verify_tampered(void)
{
    char to[128], want[128];
    copy_t c = {0};
    run_t r;
    snprintf(to, sizeof to, "%s-tamper", prefix);
    ASSERT_EQ(fl_ktest_topics(bootstrap, to, PARTITIONS), 0);
    c.rk = fl_ktest_producer(bootstrap);
    c.to_prefix = to;
    c.arena = fl_arena_new(1 << 14);
    ASSERT_TRUE(c.rk != NULL);
    c.kind = FL_TOPIC_EVENTS;
    c.tamper_at = 50;
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, on_copy, &c) > 0);
    ASSERT_EQ(c.tampered_partition, 1);
    memset(c.count, 0, sizeof c.count);
    c.kind = FL_TOPIC_SNAPSHOTS;
    c.tamper_at = 0;
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_SNAPSHOTS, on_copy, &c) > 0);
    ASSERT_EQ(rd_kafka_flush(c.rk, 30000), 0);
    rd_kafka_destroy(c.rk);
    fl_arena_free(c.arena);

    CLI(&r, "verify", "--bootstrap", bootstrap, "--prefix", to, "--quiet");
    printf("%s", r.out);
    ASSERT_EQ(r.status, 1);
    snprintf(want, sizeof want, "%s.events partition 1 offset %ld:", to, c.tampered_offset);
    ASSERT_TRUE(strstr(r.out, want) != NULL);
    run_free(&r);
}

/* ---- reprocess ---------------------------------------------------------- */

typedef struct outs_s {
    char **rec[PARTITIONS];
    size_t *len[PARTITIONS];
    size_t n[PARTITIONS], cap[PARTITIONS];
} outs_t;

static int on_outcome_rec(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    outs_t *o = opaque;
    if (!memmem(msg->payload, msg->len, "\xa7outcome", 8) || p >= PARTITIONS)
        return 0;
    if (o->n[p] == o->cap[p]) {
        o->cap[p] = o->cap[p] ? o->cap[p] * 2 : 256;
        o->rec[p] = realloc(o->rec[p], o->cap[p] * sizeof *o->rec[p]);
        o->len[p] = realloc(o->len[p], o->cap[p] * sizeof *o->len[p]);
    }
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

static void test_reprocess(void)
{
    char to[128];
    run_t r;
    snprintf(to, sizeof to, "%s-re", prefix);
    CLI(&r, "reprocess", "--bootstrap", bootstrap, "--prefix", prefix, "--to-prefix", to,
        "--quiet");
    if (r.status != 0)
        fprintf(stderr, "%s%s", r.out, r.err);
    ASSERT_EQ(r.status, 0);
    run_free(&r);

    /* the same outcomes, byte for byte, in the same order per partition */
    outs_t a = {0}, b = {0};
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, on_outcome_rec, &a) > 0);
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, to, FL_TOPIC_EVENTS, on_outcome_rec, &b) > 0);
    for (int p = 0; p < PARTITIONS; p++) {
        ASSERT_EQ(a.n[p], b.n[p]);
        for (size_t i = 0; i < a.n[p]; i++)
            ASSERT_MEM_EQ(a.rec[p][i], a.len[p][i], b.rec[p][i], b.len[p][i]);
    }
    outs_free(&a);
    outs_free(&b);

    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", to, "--quiet");
    ASSERT_EQ(r.status, 0);
    size_t n;
    line_t *v = parse_lines(r.out, &n);
    run_free(&r);
    ASSERT_TRUE(v != NULL);
    ASSERT_EQ(n, nlines);
    ASSERT_EQ(check_final(v, n, "replay of the reprocessed"), 0);
    free(v);

    CLI(&r, "verify", "--bootstrap", bootstrap, "--prefix", to, "--strict-offsets", "--quiet");
    if (r.status != 0)
        fprintf(stderr, "%s%s", r.out, r.err);
    ASSERT_EQ(r.status, 0);
    run_free(&r);

    /* a second run resumes at the committed end: nothing new */
    CLI(&r, "reprocess", "--bootstrap", bootstrap, "--prefix", prefix, "--to-prefix", to,
        "--quiet");
    ASSERT_EQ(r.status, 0);
    run_free(&r);
    outs_t c = {0};
    ASSERT_TRUE(fl_ktest_read_all(bootstrap, to, FL_TOPIC_EVENTS, on_outcome_rec, &c) > 0);
    size_t total = 0;
    for (int p = 0; p < PARTITIONS; p++)
        total += c.n[p];
    outs_free(&c);
    ASSERT_EQ(total, (size_t)produced);

    /* More commands arrive (the processor is gone): a third run restores
     * the documents from the new events and continues them exactly. */
    rd_kafka_t *rk = fl_ktest_producer(bootstrap);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    fl_gen_t g;
    uint8_t cid[FL_CLIENT_ID_LEN];
    ASSERT_TRUE(rk != NULL);
    fl_gen_seed(&g, 99);
    fl_gen_client_id(cid, 555);
    for (int i = 0; i < 60; i++) {
        fl_flush_t f;
        fl_arena_reset(arena);
        fl_gen_flush(&g, arena, docs[i % NDOCS], cid, (uint64_t)(i / NDOCS) + 1, 4, &f);
        ASSERT_EQ(fl_ktest_produce_flush(rk, prefix, &f, "user-late", "gw-h", 4), 0);
    }
    ASSERT_EQ(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    fl_arena_free(arena);
    CLI(&r, "reprocess", "--bootstrap", bootstrap, "--prefix", prefix, "--to-prefix", to,
        "--quiet");
    ASSERT_EQ(r.status, 0);
    run_free(&r);
    fl_model_report_t rep;
    fl_model_t *m2 = fl_model_check(bootstrap, prefix, &rep); /* docs from all commands */
    ASSERT_TRUE(m2 != NULL);
    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", to, "--quiet");
    ASSERT_EQ(r.status, 0);
    v = parse_lines(r.out, &n);
    run_free(&r);
    ASSERT_TRUE(v != NULL);
    fl_model_t *keep = model;
    model = m2;
    int bad = check_final(v, n, "replay after resuming");
    model = keep;
    fl_model_free(m2);
    free(v);
    ASSERT_EQ(bad, 0);
    CLI(&r, "verify", "--bootstrap", bootstrap, "--prefix", to, "--strict-offsets", "--quiet");
    ASSERT_EQ(r.status, 0);
    run_free(&r);
}

/* ---- tail --------------------------------------------------------------- */

static void test_tail(void)
{
    const char *doc = docs[1];
    uint64_t last = 0, from;
    size_t k = 0;
    char v[32];
    run_t r;
    for (size_t i = 0; i < nlines; i++)
        if (strcmp(lines[i].doc, doc) == 0) {
            last = lines[i].version;
            k++;
        }
    from = last - 20 > 0 ? last - 20 : 0;
    snprintf(v, sizeof v, "%llu", (unsigned long long)from);
    /* --count ends it once it has printed that many */
    size_t want = 0;
    for (size_t i = 0; i < nlines; i++)
        if (strcmp(lines[i].doc, doc) == 0 && lines[i].version > from)
            want++;
    char cnt[32];
    snprintf(cnt, sizeof cnt, "%zu", want);
    CLI(&r, "tail", "--bootstrap", bootstrap, "--prefix", prefix, "--doc", doc, "--from-version",
        v, "--count", cnt);
    ASSERT_EQ(r.status, 0);
    size_t nl = 0;
    for (const char *p = r.out; (p = strchr(p, '\n')); p++)
        nl++;
    ASSERT_EQ(nl, want);
    ASSERT_TRUE(strstr(r.out, "\"commands\"") != NULL);
    run_free(&r);
}

/* ---- bad inputs --------------------------------------------------------- */

static void test_bad_inputs(void)
{
    run_t r;
    CLI(&r, "replay", "--bootstrap", "127.0.0.1:1", "--quiet");
    ASSERT_EQ(r.status, 3);
    run_free(&r);
    CLI(&r, "verify", "--bootstrap", "127.0.0.1:1");
    ASSERT_EQ(r.status, 3);
    run_free(&r);

    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", "no-such-prefix", "--quiet");
    ASSERT_NE(r.status, 0);
    ASSERT_TRUE(strstr(r.err, "no-such-prefix.events") != NULL);
    run_free(&r);
    CLI(&r, "verify", "--bootstrap", bootstrap, "--prefix", "no-such-prefix");
    ASSERT_NE(r.status, 0);
    ASSERT_TRUE(strstr(r.err, "no-such-prefix.events") != NULL);
    run_free(&r);
    CLI(&r, "at", "--bootstrap", bootstrap, "--prefix", "no-such-prefix", "--doc", "a/b",
        "--version", "1");
    ASSERT_NE(r.status, 0);
    ASSERT_TRUE(strstr(r.err, "no-such-prefix.events") != NULL);
    run_free(&r);

    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", prefix, "--from-offset", "0:10",
        "--to-offset", "0:5");
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", prefix, "--from-offset", "9:0");
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    CLI(&r, "replay", "--from-time", "2024-05-01T00:00:00Z", "--to-time", "2024-04-01");
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    CLI(&r, "replay", "--from-time", "yesterday");
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    CLI(&r, "at", "--doc", "a/b", "--version", "1", "--time", "5");
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    CLI(&r, "reprocess", "--bootstrap", bootstrap, "--prefix", prefix);
    ASSERT_EQ(r.status, 2);
    run_free(&r);
    /* a -X value librdkafka refuses, or a TLS file it cannot read: usage
     * errors that name the setting, and nothing freed twice */
    CLI(&r, "replay", "--bootstrap", bootstrap, "--prefix", prefix, "-X",
        "fetch.wait.max.ms=soon", "--quiet");
    ASSERT_EQ(r.status, 2);
    ASSERT_TRUE(strstr(r.err, "fetch.wait.max.ms=soon") != NULL);
    ASSERT_TRUE(strstr(r.err, "Sanitizer") == NULL);
    run_free(&r);
    CLI(&r, "verify", "--bootstrap", bootstrap, "--prefix", prefix, "-X",
        "security.protocol=ssl", "-X", "ssl.ca.location=/nonexistent/ca.pem");
    ASSERT_EQ(r.status, 2);
    ASSERT_TRUE(strstr(r.err, "ssl.ca.location") != NULL);
    ASSERT_TRUE(strstr(r.err, "Sanitizer") == NULL);
    run_free(&r);
    const char *cmds[] = {"replay", "at", "verify", "reprocess", "tail"};
    for (int i = 0; i < 5; i++) {
        CLI(&r, cmds[i], "--help");
        ASSERT_EQ(r.status, 0);
        ASSERT_TRUE(strstr(r.out, "usage: flushline") != NULL);
        run_free(&r);
    }
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    if (!(bootstrap = fl_test_bootstrap()))
        return 1;
    fl_test_unique("fltest-hist", prefix, sizeof prefix);
    if (fl_ktest_topics(bootstrap, prefix, PARTITIONS) != 0 || start_processor() != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(test_write_history);
    if (fl_test_failures == 0) {
        RUN(test_replay);
        RUN(test_replay_from_offset);
        RUN(test_at_version);
        RUN(test_at_time);
        RUN(test_verify_clean);
        RUN(test_verify_tampered);
        RUN(test_reprocess);
        RUN(test_tail);
        RUN(test_bad_inputs);
    }
    fl_proc_kill(&proc);
    free(lines);
    fl_model_free(model);
    return fl_test_done();
}
