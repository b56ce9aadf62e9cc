/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the local state store (common/store.h), no broker: a
 * round trip of many documents (puts, replaces, deletes, reopen, get,
 * iterate, metadata); every verdict of validation (valid, missing, wrong
 * format, other topic set, ahead of Kafka, events gone, corrupted); a byte
 * flipped in a record (refused by every read and by the full check), in
 * an id (caught by the structural check), random bytes flipped anywhere
 * in data.mdb, a truncated file (each detected, or harmless: a store that
 * validates answers every read as the model at its offsets, or refuses
 * the record); atomicity under kill -9 of a writer at
 * random moments, map growth included (after every kill the store is
 * valid and equal to the model at the batch its metadata names, never a
 * mix); the map growing when full (reads before and after it), and EFULL
 * at its cap; the folder lock; discard, and one a crash interrupted; a
 * validation killed by its deadline; and a 100,000-document store
 * iterated with bounded heap and RSS.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "fl_test.h"
#include "flushline/store.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/allocator_interface.h>
#endif

static size_t heap_bytes(void)
{
#ifdef HAVE_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* ---- fixtures ------------------------------------------------------------ */

static char root[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 512, "%s/%s", root, name);
    return p;
}

static fl_store_topics_t topics_of(const char *prefix, int32_t partition)
{
    fl_store_topics_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.commands, sizeof t.commands, "%s.commands", prefix);
    snprintf(t.events, sizeof t.events, "%s.events", prefix);
    snprintf(t.snapshots, sizeof t.snapshots, "%s.snapshots", prefix);
    t.partition = partition;
    return t;
}

static fl_store_config_t config(size_t map_size)
{
    fl_store_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.topics = topics_of("flt", 3);
    cfg.writer = "proc-test";
    cfg.map_size = map_size;
    cfg.sync = FL_STORE_SYNC_NONE;
    return cfg;
}

static fl_store_expect_t expect(int64_t committed)
{
    fl_store_expect_t e = {.topics = topics_of("flt", 3), .committed = committed,
                           .events_start = -1, .events_end = -1};
    return e;
}

static int validate(const char *dir, const fl_store_expect_t *e, fl_store_meta_t *m, char *why,
                    size_t n)
{
    return fl_store_validate(dir, e, 120000, m, why, n);
}

static int copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = fl_test_read_file(from, &len);
    FILE *f;
    if (!data)
        return -1;
    f = fopen(to, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        if (f)
            fclose(f);
        free(data);
        return -1;
    }
    free(data);
    return fclose(f);
}

/* ---- the model: deterministic batches over a fixed set of ids ------------ */

#define MODEL_IDS 300

typedef struct model_s {
    char *val[MODEL_IDS];
    size_t len[MODEL_IDS];
    uint64_t batch; /* batches applied */
} model_t;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void model_id(int i, char *buf, size_t *len)
{
    *len = (size_t)snprintf(buf, 32, "acme/doc-%04d", i);
}

/* Batch `b` (from 1) as operations, fed to put(id, val, len) or del(id). */
typedef void (*on_op_fn)(void *arg, int id, const char *val, size_t len);

static void gen_batch(uint64_t b, on_op_fn on_op, void *arg)
{
    uint64_t s = mix(b * 0x9E3779B97F4A7C15ull + 1);
    int ops = 1 + (int)(s % 60);
    static char val[4200];
    for (int j = 0; j < ops; j++) {
        s = mix(s + (uint64_t)j);
        int id = (int)(s % MODEL_IDS);
        if ((s >> 20) % 100 < 15) {
            on_op(arg, id, NULL, 0);
            continue;
        }
        size_t len = 50 + (s >> 32) % 3000;
        int hdr = snprintf(val, sizeof val, "batch %llu doc %d|", (unsigned long long)b, id);
        uint64_t r = s;
        for (size_t k = (size_t)hdr; k < len; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            val[k] = (char)('a' + (r >> 59));
        }
        on_op(arg, id, val, len < (size_t)hdr ? (size_t)hdr : len);
    }
}

static void model_op(void *arg, int id, const char *val, size_t len)
{
    model_t *m = arg;
    free(m->val[id]);
    m->val[id] = NULL;
    m->len[id] = 0;
    if (val) {
        m->val[id] = malloc(len);
        memcpy(m->val[id], val, len);
        m->len[id] = len;
    }
}

static void model_advance(model_t *m, uint64_t to)
{
    while (m->batch < to)
        gen_batch(++m->batch, model_op, m);
}

static void model_free(model_t *m)
{
    for (int i = 0; i < MODEL_IDS; i++)
        free(m->val[i]);
    memset(m, 0, sizeof *m);
}

static fl_store_offsets_t offsets_of(uint64_t b)
{
    fl_store_offsets_t o = {.commands = (int64_t)b * 7, .events = (int64_t)b * 3, .round = b};
    return o;
}

static void batch_op(void *arg, int id, const char *val, size_t len)
{
    char buf[32];
    size_t n;
    model_id(id, buf, &n);
    if (val)
        fl_store_batch_put(arg, buf, n, val, len);
    else
        fl_store_batch_del(arg, buf, n);
}

/* Writes batches from+1..to. 0 or the first error. */
static int write_batches(fl_store_t *st, uint64_t from, uint64_t to, int progress_fd)
{
    fl_store_batch_t *b = fl_store_batch_new();
    int rc = 0;
    for (uint64_t i = from + 1; i <= to && rc == 0; i++) {
        fl_store_batch_clear(b);
        gen_batch(i, batch_op, b);
        fl_store_offsets_t o = offsets_of(i);
        fl_store_batch_offsets(b, &o);
        rc = fl_store_write(st, b);
        if (rc == 0 && progress_fd >= 0 && write(progress_fd, &i, sizeof i) != sizeof i)
            rc = -100;
    }
    fl_store_batch_free(b);
    return rc;
}

/* The store (open) against the model at the batch its metadata names: by
 * get for every id, by iteration, and in count and bytes. Returns the
 * number of wrong answers (a record that differs, a document missing or
 * extra, totals that differ; the first is printed); *refused counts reads
 * the store refused as corrupted (FL_STORE_ECORRUPT), which are not
 * wrong: the caller then discards the store. */
static int check_model(fl_store_t *st, model_t *m, int *refused)
{
    fl_store_meta_t meta;
    int bad = 0, err = 0;
    uint64_t docs = 0, bytes = 0;
    *refused = 0;
    if (fl_store_meta(st, &meta) != 0) {
        fprintf(stderr, "  no metadata\n");
        return 1;
    }
    uint64_t b = meta.offsets.round;
    if (meta.offsets.commands != (int64_t)b * 7 || meta.offsets.events != (int64_t)b * 3) {
        fprintf(stderr, "  metadata offsets not of one batch\n");
        return 1;
    }
    if (b < m->batch)
        model_free(m);
    model_advance(m, b);
    for (int i = 0; i < MODEL_IDS; i++) {
        char id[32], *rec = NULL;
        size_t n, len = 0;
        model_id(i, id, &n);
        int rc = fl_store_get(st, id, n, &rec, &len);
        if (m->val[i]) {
            docs++;
            bytes += m->len[i];
        }
        if (rc == FL_STORE_ECORRUPT) {
            (*refused)++;
        } else if ((m->val[i] &&
                    (rc != 0 || len != m->len[i] || memcmp(rec, m->val[i], len) != 0)) ||
                   (!m->val[i] && rc != FL_STORE_ENOTFOUND)) {
            if (!bad++)
                fprintf(stderr, "  %s: get %d (%s), batch %llu\n", id, rc, fl_store_strerror(rc),
                        (unsigned long long)b);
        }
        free(rec);
    }
    if (meta.docs != docs || meta.bytes != bytes || fl_store_count(st) != docs) {
        fprintf(stderr, "  metadata counts %llu docs %llu bytes, model %llu %llu\n",
                (unsigned long long)meta.docs, (unsigned long long)meta.bytes,
                (unsigned long long)docs, (unsigned long long)bytes);
        bad++;
    }
    fl_store_iter_t *it = fl_store_iter_new(st, &err);
    const char *id, *rec;
    size_t idlen, len;
    uint64_t seen = 0;
    int rc;
    if (!it)
        return bad + 1;
    while ((rc = fl_store_iter_next(it, &id, &idlen, &rec, &len)) == 1) {
        char num[16] = {0};
        memcpy(num, id + 9, idlen > 9 && idlen - 9 < sizeof num ? idlen - 9 : 0);
        int i = idlen == 13 ? atoi(num) : -1;
        seen++;
        if (i < 0 || i >= MODEL_IDS || !m->val[i] || len != m->len[i] ||
            memcmp(rec, m->val[i], len) != 0) {
            if (!bad++)
                fprintf(stderr, "  iterated %.*s: %zu bytes, model %zu\n", (int)idlen, id, len,
                        i >= 0 && i < MODEL_IDS ? m->len[i] : 0);
        }
    }
    if (rc == FL_STORE_ECORRUPT) {
        (*refused)++;
    } else if (rc != 0 || seen != docs) {
        fprintf(stderr, "  iteration: %d, %llu of %llu documents\n", rc,
                (unsigned long long)seen, (unsigned long long)docs);
        bad++;
    }
    fl_store_iter_free(it);
    return bad;
}

/* The store equals the model, every read answered. */
static int check_against_model(fl_store_t *st, model_t *m)
{
    int refused, bad = check_model(st, m, &refused);
    return bad + refused;
}

/* ---- round trip ---------------------------------------------------------- */

static void test_round_trip(void)
{
    const char *dir = tmp_path("roundtrip");
    fl_store_config_t cfg = config(0);
    char errstr[256], why[256];
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    fl_store_meta_t meta;
    model_t m = {0};
    ASSERT_TRUE(st);
    ASSERT_EQ(fl_store_meta(st, &meta), FL_STORE_ENOTFOUND);
    ASSERT_EQ(fl_store_count(st), 0);
    char *rec = NULL;
    size_t len;
    ASSERT_EQ(fl_store_get(st, "x", 1, &rec, &len), FL_STORE_ENOTFOUND);
    /* opened, never written: missing */
    fl_store_expect_t e = expect(1000000);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_MISSING);

    /* 400 batches: thousands of puts, replaces and deletes */
    ASSERT_EQ(write_batches(st, 0, 400, -1), 0);
    ASSERT_EQ(check_against_model(st, &m), 0);
    ASSERT_EQ(fl_store_meta(st, &meta), 0);
    ASSERT_STR_EQ(meta.writer, "proc-test");
    ASSERT_STR_EQ(meta.topics.events, "flt.events");
    ASSERT_EQ(meta.topics.partition, 3);
    ASSERT_EQ(meta.format, FL_STORE_FORMAT_VERSION);
    ASSERT_EQ(meta.offsets.commands, 2800);

    /* big records (overflow pages) and binary ids survive too */
    fl_store_batch_t *b = fl_store_batch_new();
    char *big = malloc(300000);
    for (size_t i = 0; i < 300000; i++)
        big[i] = (char)(i * 31 + 7);
    ASSERT_EQ(fl_store_batch_put(b, "big/\x00\xff", 6, big, 300000), 0);
    ASSERT_EQ(fl_store_batch_put(b, "empty", 5, "", 0), 0);
    /* rejected: no offsets; then backwards; bad ids */
    ASSERT_EQ(fl_store_write(st, b), FL_STORE_EARG);
    fl_store_offsets_t back = {.commands = 2799, .events = 1200, .round = 400};
    fl_store_batch_offsets(b, &back);
    ASSERT_EQ(fl_store_write(st, b), FL_STORE_EARG);
    char longid[300];
    memset(longid, 'x', sizeof longid);
    ASSERT_EQ(fl_store_batch_put(b, longid, 256, "v", 1), FL_STORE_EARG);
    ASSERT_EQ(fl_store_batch_put(b, longid, 0, "v", 1), FL_STORE_EARG);
    ASSERT_EQ(fl_store_batch_ops(b), 2);
    fl_store_offsets_t fwd = {.commands = 2800, .events = 1200, .round = 400};
    fl_store_batch_offsets(b, &fwd);
    ASSERT_EQ(fl_store_write(st, b), 0);
    ASSERT_EQ(fl_store_get(st, "big/\x00\xff", 6, &rec, &len), 0);
    ASSERT_MEM_EQ(rec, len, big, 300000);
    free(rec);
    ASSERT_EQ(fl_store_get(st, "empty", 5, &rec, &len), 0);
    ASSERT_EQ(len, 0);
    free(rec);
    fl_store_close(st);

    /* reopen: the same documents and metadata; validation agrees */
    st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    ASSERT_EQ(fl_store_get(st, "big/\x00\xff", 6, &rec, &len), 0);
    ASSERT_MEM_EQ(rec, len, big, 300000);
    free(rec);
    fl_store_batch_clear(b);
    ASSERT_EQ(fl_store_batch_del(b, "big/\x00\xff", 6), 0);
    ASSERT_EQ(fl_store_batch_del(b, "empty", 5), 0);
    ASSERT_EQ(fl_store_batch_del(b, "never-there", 11), 0);
    fl_store_batch_offsets(b, &fwd);
    ASSERT_EQ(fl_store_write(st, b), 0);
    ASSERT_EQ(check_against_model(st, &m), 0);
    ASSERT_EQ(fl_store_meta(st, &meta), 0);
    fl_store_meta_t vm;
    ASSERT_EQ(validate(dir, &e, &vm, why, sizeof why), FL_STORE_VALID);
    ASSERT_EQ(vm.docs, meta.docs);
    ASSERT_EQ(vm.bytes, meta.bytes);
    ASSERT_EQ(vm.offsets.events, 1200);

    /* a store of another topic set refuses to be written by this config */
    fl_store_close(st);
    fl_store_config_t other = cfg;
    other.topics.partition = 4;
    st = fl_store_open(dir, &other, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    ASSERT_EQ(fl_store_write(st, b), FL_STORE_EARG);
    fl_store_close(st);

    free(big);
    fl_store_batch_free(b);
    model_free(&m);
    ASSERT_EQ(fl_store_discard(dir), 0);
}

/* ---- verdicts ------------------------------------------------------------ */

static void test_verdicts(void)
{
    const char *dir = tmp_path("verdicts");
    fl_store_config_t cfg = config(0);
    char errstr[256], why[256];
    fl_store_meta_t meta;
    fl_store_expect_t e = expect(-1);

    ASSERT_EQ(validate(tmp_path("no-such-store"), &e, &meta, why, sizeof why), FL_STORE_MISSING);
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    ASSERT_EQ(write_batches(st, 0, 10, -1), 0); /* commands 70, events 30 */
    fl_store_close(st);

    /* offsets: behind Kafka is valid (events are replayed after it) */
    e = expect(70);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_VALID);
    ASSERT_EQ(meta.offsets.commands, 70);
    e = expect(5000);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_VALID);
    /* ahead: state Kafka does not have (an aborted-then-lost commit, a
     * recreated topic) */
    e = expect(69);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_AHEAD);
    ASSERT_TRUE(strstr(why, "70") != NULL);
    e = expect(-1);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_AHEAD);
    e = expect(70);
    e.events_end = 29;
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_AHEAD);
    e.events_end = 30;
    e.events_start = 30;
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_VALID);
    e.events_start = 31; /* retention deleted events the replay needs */
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_GONE);

    /* another topic set: prefix, one name, or the partition */
    e = expect(70);
    e.topics = topics_of("other", 3);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_TOPICS);
    e = expect(70);
    e.topics.partition = 2;
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_TOPICS);
    e = expect(70);
    snprintf(e.topics.snapshots, sizeof e.topics.snapshots, "flt.snapshots2");
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_TOPICS);

    /* another format version, and a foreign LMDB: rewrite the metadata
     * record with LMDB directly */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {9, "partition"}, v;
    char saved[2048];
    size_t savedlen;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 2), 0);
    ASSERT_EQ(mdb_env_open(env, dir, 0, 0644), 0);
    ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    ASSERT_EQ(mdb_get(txn, dbi, &k, &v), 0);
    ASSERT_TRUE(v.mv_size < sizeof saved);
    memcpy(saved, v.mv_data, v.mv_size);
    savedlen = v.mv_size;
    saved[4] = 2; /* format 2 */
    v.mv_data = saved;
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    e = expect(70);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_FORMAT);
    ASSERT_TRUE(strstr(why, "version 2") != NULL);
    ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    v.mv_data = "NOPE....";
    v.mv_size = 8;
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_FORMAT);
    /* the right format with a flipped bit in a field: its checksum fails */
    saved[4] = 1;
    saved[20] ^= 0x10;
    v.mv_data = saved;
    v.mv_size = savedlen;
    ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_CORRUPT);
    /* restored: valid again */
    saved[20] ^= 0x10;
    ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_VALID);
    /* a document deleted behind the store's back: the totals catch it */
    MDB_dbi docs;
    MDB_val dk = {13, "acme/doc-0000"};
    ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ASSERT_EQ(mdb_dbi_open(txn, "docs", 0, &docs), 0);
    MDB_cursor *cur;
    ASSERT_EQ(mdb_cursor_open(txn, docs, &cur), 0);
    ASSERT_EQ(mdb_cursor_get(cur, &dk, &v, MDB_FIRST), 0);
    ASSERT_EQ(mdb_cursor_del(cur, 0), 0);
    mdb_cursor_close(cur);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_CORRUPT);
    ASSERT_TRUE(strstr(why, "do not match") != NULL);

    ASSERT_EQ(fl_store_discard(dir), 0);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_MISSING);
}

/* ---- corruption ---------------------------------------------------------- */

/* A store of `batches` batches in dir; returns the path of its data.mdb. */
static const char *make_store(const char *dir, uint64_t batches)
{
    static char path[512];
    fl_store_config_t cfg = config(0);
    char errstr[256];
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    if (!st || write_batches(st, 0, batches, -1) != 0) {
        fl_store_close(st);
        return NULL;
    }
    fl_store_close(st);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return path;
}

static void flip(const char *path, long off, unsigned char mask)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    if (fd < 0)
        return;
    if (pread(fd, &c, 1, off) == 1) {
        c ^= mask;
        if (pwrite(fd, &c, 1, off) != 1)
            fprintf(stderr, "pwrite failed\n");
    }
    close(fd);
}

/* Flips the bits of mask at `delta` into every copy of needle in the file (LMDB's
 * copy-on-write leaves stale copies of a page in free space; the live one
 * is among them). Returns how many. */
static int flip_copies(const char *path, const char *needle, long delta, unsigned char mask)
{
    size_t len, n = strlen(needle);
    char *data = fl_test_read_file(path, &len);
    int found = 0;
    for (size_t i = 0; data && i + n <= len; i++)
        if (memcmp(data + i, needle, n) == 0) {
            flip(path, (long)i + delta, mask);
            found++;
        }
    free(data);
    return found;
}

static void test_corrupt_record(void)
{
    const char *dir = tmp_path("corrupt1");
    const char *data = make_store(dir, 200);
    char errstr[256], why[256], needle[64];
    fl_store_expect_t e = expect(1 << 30);
    model_t m = {0};
    ASSERT_TRUE(data);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_VALID);

    /* a byte inside a record of the newest batch that touched some doc */
    model_advance(&m, 200);
    int victim = -1;
    for (int i = 0; i < MODEL_IDS && victim < 0; i++)
        if (m.val[i])
            victim = i;
    ASSERT_TRUE(victim >= 0);
    ASSERT_TRUE(m.len[victim] > 40);
    memcpy(needle, m.val[victim], 40);
    needle[40] = '\0';
    ASSERT_GT(flip_copies(data, needle, 30, 0x01), 0);
    /* the structural check reads no record: it passes; the full one
     * hashes every record and fails */
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_VALID);
    e.verify_records = true;
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_CORRUPT);
    ASSERT_TRUE(strstr(why, "checksum") != NULL);

    /* read without validating: the record is refused, never handed out */
    fl_store_config_t cfg = config(0);
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    char id[32], *rec = NULL;
    size_t n, len;
    model_id(victim, id, &n);
    ASSERT_EQ(fl_store_get(st, id, n, &rec, &len), FL_STORE_ECORRUPT);
    int err = 0, rc;
    fl_store_iter_t *it = fl_store_iter_new(st, &err);
    const char *iid, *irec;
    size_t iidlen, ilen;
    ASSERT_TRUE(it);
    while ((rc = fl_store_iter_next(it, &iid, &iidlen, &irec, &ilen)) == 1)
        ;
    ASSERT_EQ(rc, FL_STORE_ECORRUPT);
    fl_store_iter_free(it);
    fl_store_close(st);

    /* flipped back: valid again; then a truncated file, an empty one,
     * garbage */
    needle[30] ^= 0x01;
    ASSERT_GT(flip_copies(data, needle, 30, 0x01), 0);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_VALID);

    /* a flipped byte in an id: the last id, whose last digit becomes a
     * letter, so the order still holds and a lookup of the damaged key
     * finds it; the sum of id hashes does not match */
    int lastid = -1;
    for (int i = 0; i < MODEL_IDS; i++)
        if (m.val[i])
            lastid = i;
    char key[32];
    size_t keylen;
    model_id(lastid, key, &keylen);
    ASSERT_GT(flip_copies(data, key, (long)keylen - 1, 0x40), 0);
    e.verify_records = false;
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_CORRUPT);
    ASSERT_TRUE(strstr(why, "id sum differs") != NULL);
    key[keylen - 1] ^= 0x40;
    ASSERT_GT(flip_copies(data, key, (long)keylen - 1, 0x40), 0);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_VALID);
    struct stat sb;
    ASSERT_EQ(stat(data, &sb), 0);
    ASSERT_EQ(truncate(data, sb.st_size / 2), 0);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_CORRUPT);
    ASSERT_EQ(truncate(data, 0), 0);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_CORRUPT);
    FILE *f = fopen(data, "wb");
    ASSERT_TRUE(f);
    for (int i = 0; i < 100000; i++)
        fputc((int)(mix((uint64_t)i) & 0xff), f);
    fclose(f);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_CORRUPT);
    model_free(&m);
    ASSERT_EQ(fl_store_discard(dir), 0);
}

/* Random bytes flipped anywhere in data.mdb. Each time the store is
 * detected invalid by validation, or it validates and then every read
 * either answers exactly what the model holds or refuses the record as
 * corrupted (a flip inside a record, which only the full check or the
 * read itself hashes). Never a wrong record, a lost or an extra
 * document, and never a crash of this process. A store that passes the
 * full check (verify_records) answers every read. */
static void test_corrupt_random(void)
{
    const char *pristine = tmp_path("pristine");
    const char *data = make_store(pristine, 300);
    char src[512], dst[512], why[256], errstr[256];
    fl_store_expect_t e = expect(1 << 30);
    int detected = 0, on_read = 0, harmless = 0, trials = 50;
    model_t m = {0}; /* kept across trials: it only rebuilds when a store is older */
    struct stat sb;
    ASSERT_TRUE(data);
    snprintf(src, sizeof src, "%s", data);
    ASSERT_EQ(stat(src, &sb), 0);
    srand(12345);
    for (int t = 0; t < trials; t++) {
        const char *dir = tmp_path("flipped");
        ASSERT_EQ(mkdir(dir, 0755), 0);
        snprintf(dst, sizeof dst, "%s/data.mdb", dir);
        ASSERT_EQ(copy_file(src, dst), 0);
        int nflips = 1 + rand() % 8;
        for (int i = 0; i < nflips; i++) {
            /* a third of the trials hit the first two pages (LMDB's meta
             * pages), the rest anywhere */
            long off = t % 3 == 0 ? rand() % 8192 : (long)(rand() % sb.st_size);
            flip(dst, off, (unsigned char)(1u << (rand() % 8)));
        }
        fl_store_meta_t meta;
        e.verify_records = false;
        int v = validate(dir, &e, &meta, why, sizeof why);
        e.verify_records = true;
        int full = validate(dir, &e, &meta, why, sizeof why);
        if (v != FL_STORE_VALID) {
            /* anything but VALID is a store the caller discards */
            ASSERT_TRUE(v > FL_STORE_VALID && v <= FL_STORE_CORRUPT);
            ASSERT_TRUE(full != FL_STORE_VALID);
            detected++;
        } else {
            fl_store_config_t cfg = config(0);
            fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
            int refused = 0;
            ASSERT_TRUE(st);
            int bad = check_model(st, &m, &refused);
            fl_store_close(st);
            if (bad)
                fprintf(stderr, "trial %d: valid but %d wrong answers\n", t, bad);
            ASSERT_EQ(bad, 0);
            if (full == FL_STORE_VALID)
                ASSERT_EQ(refused, 0);
            else
                ASSERT_GT(refused, 0);
            refused ? on_read++ : harmless++;
        }
        ASSERT_EQ(fl_store_discard(dir), 0);
    }
    printf("# %d random corruptions: %d detected by validation, %d by the reads, %d harmless "
           "(valid and equal to the model)\n",
           trials, detected, on_read, harmless);
    ASSERT_GT(detected + on_read, trials / 4);
    ASSERT_GT(on_read, 0);
    model_free(&m);
    ASSERT_EQ(fl_store_discard(pristine), 0);
}

/* ---- kill -9 at random moments ------------------------------------------- */

static void test_kill_atomicity(void)
{
    const char *dir = tmp_path("killed");
    char why[256], errstr[256];
    fl_store_expect_t e = expect(INT64_MAX);
    model_t m = {0};
    uint64_t committed = 0; /* the newest batch a child said it committed */
    int kills = 0, mid_grow = 0;
    size_t first_map = 0, last_map = 0;
    srand(777);
    for (int t = 0; t < 30; t++) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
            /* the writer: continue from what the store holds, forever */
            close(fds[0]);
            fl_store_config_t cfg = config(1 << 20); /* 1 MiB: it grows under the kills */
            cfg.sync = t % 2 ? FL_STORE_SYNC_NONE : FL_STORE_SYNC_DATA;
            char err[256];
            fl_store_t *st = fl_store_open(dir, &cfg, err, sizeof err);
            fl_store_meta_t meta;
            uint64_t from = st && fl_store_meta(st, &meta) == 0 ? meta.offsets.round : 0;
            if (!st)
                _exit(3);
            write_batches(st, from, UINT64_MAX, fds[1]);
            _exit(4);
        }
        close(fds[1]);
        /* let it commit 1..8 batches, then kill it at a random moment
         * (a random spin: where in a commit it dies is the point) */
        int want = 1 + rand() % 8;
        uint64_t got;
        for (int i = 0; i < want; i++) {
            ssize_t r = read(fds[0], &got, sizeof got);
            if (r != sizeof got)
                break;
            committed = got;
        }
        struct timespec ts = {0, (long)(rand() % 3000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* what it reported after the kill decision is committed too */
        while (read(fds[0], &got, sizeof got) == sizeof got)
            committed = got;
        close(fds[0]);
        kills++;

        fl_store_meta_t meta;
        int v = validate(dir, &e, &meta, why, sizeof why);
        if (v != FL_STORE_VALID) {
            /* detected invalid is allowed; it must then be discardable */
            fprintf(stderr, "kill %d: %s (%s): discarded\n", t, fl_store_verdict_name(v), why);
            ASSERT_EQ(fl_store_discard(dir), 0);
            model_free(&m);
            committed = 0;
            continue;
        }
        /* every batch reported is in; at most one more (killed between its
         * commit and its report) */
        ASSERT_GE(meta.offsets.round, committed);
        ASSERT_LE(meta.offsets.round, committed + 1);
        committed = meta.offsets.round;
        fl_store_config_t cfg = config(1 << 20);
        fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
        ASSERT_TRUE(st);
        if (!first_map)
            first_map = fl_store_map_size(st);
        if (fl_store_map_size(st) != last_map && last_map)
            mid_grow++;
        last_map = fl_store_map_size(st);
        int bad = check_against_model(st, &m);
        fl_store_close(st);
        if (bad)
            fprintf(stderr, "kill %d at batch %llu: %d mismatches\n", t,
                    (unsigned long long)committed, bad);
        ASSERT_EQ(bad, 0);
    }
    printf("# %d kills, %llu batches; map %zu -> %zu bytes, grown between %d kills\n", kills,
           (unsigned long long)committed, first_map, last_map, mid_grow);
    ASSERT_GT(last_map, (size_t)1 << 20);
    model_free(&m);
    ASSERT_EQ(fl_store_discard(dir), 0);
}

/* ---- map growth ------------------------------------------------------------ */

static void test_map_full_grows(void)
{
    const char *dir = tmp_path("grow");
    fl_store_config_t cfg = config(1 << 20);
    char errstr[256], *rec;
    size_t len;
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    fl_store_batch_t *b = fl_store_batch_new();
    char val[4000], id[32];
    ASSERT_TRUE(st);
    ASSERT_EQ(fl_store_map_size(st), 1 << 20);
    /* one batch of 6 MB into a 1 MiB map: grown in the middle of a write */
    for (int i = 0; i < 1500; i++) {
        memset(val, 'a' + i % 26, sizeof val);
        int n = snprintf(id, sizeof id, "g/%05d", i);
        ASSERT_EQ(fl_store_batch_put(b, id, (size_t)n, val, sizeof val), 0);
    }
    fl_store_offsets_t o = {1, 1, 1};
    fl_store_batch_offsets(b, &o);
    ASSERT_EQ(fl_store_write(st, b), 0);
    ASSERT_GE(fl_store_map_size(st), 8 << 20);
    ASSERT_EQ(fl_store_count(st), 1500);
    ASSERT_EQ(fl_store_get(st, "g/01499", 7, &rec, &len), 0);
    ASSERT_EQ(len, sizeof val);
    ASSERT_EQ(rec[0], 'a' + 1499 % 26);
    free(rec);
    size_t grown = fl_store_map_size(st);
    fl_store_close(st);

    /* reopened with the small setting: it keeps the size it grew to */
    st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    ASSERT_GE(fl_store_map_size(st), grown);
    /* an open iterator pins the map: a write that must grow is refused */
    fl_store_batch_clear(b);
    for (int i = 0; i < 3000; i++) {
        memset(val, 'z', sizeof val);
        int n = snprintf(id, sizeof id, "h/%05d", i);
        ASSERT_EQ(fl_store_batch_put(b, id, (size_t)n, val, sizeof val), 0);
    }
    fl_store_offsets_t o2 = {2, 2, 2};
    fl_store_batch_offsets(b, &o2);
    int err = 0;
    fl_store_iter_t *it = fl_store_iter_new(st, &err);
    ASSERT_TRUE(it);
    ASSERT_EQ(fl_store_write(st, b), FL_STORE_EARG);
    fl_store_iter_free(it);
    ASSERT_EQ(fl_store_count(st), 1500);
    size_t before = fl_store_map_size(st);
    ASSERT_EQ(fl_store_get(st, "g/00007", 7, &rec, &len), 0); /* a read before the map moves */
    free(rec);
    ASSERT_EQ(fl_store_write(st, b), 0);
    ASSERT_GT(fl_store_map_size(st), before);
    ASSERT_EQ(fl_store_count(st), 4500);
    /* reads after it: the moved map is found again */
    ASSERT_EQ(fl_store_get(st, "g/00007", 7, &rec, &len), 0);
    ASSERT_EQ(rec[0], 'a' + 7);
    free(rec);
    ASSERT_EQ(fl_store_get(st, "h/02999", 7, &rec, &len), 0);
    ASSERT_EQ(rec[len - 1], 'z');
    free(rec);
    fl_store_close(st);

    /* a cap: EFULL, and the store is as it was */
    cfg.map_size_max = fl_store_map_size(st = fl_store_open(dir, &cfg, errstr, sizeof errstr));
    ASSERT_TRUE(st);
    fl_store_close(st);
    st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    int rc = 0;
    uint64_t round = 3;
    while (rc == 0 && round < 100) {
        fl_store_batch_clear(b);
        for (int i = 0; i < 1000; i++) {
            int n = snprintf(id, sizeof id, "f/%03llu/%04d", (unsigned long long)round, i);
            ASSERT_EQ(fl_store_batch_put(b, id, (size_t)n, val, sizeof val), 0);
        }
        fl_store_offsets_t o3 = {(int64_t)round, (int64_t)round, round};
        fl_store_batch_offsets(b, &o3);
        rc = fl_store_write(st, b);
        round++;
    }
    ASSERT_EQ(rc, FL_STORE_EFULL);
    fl_store_meta_t meta;
    ASSERT_EQ(fl_store_meta(st, &meta), 0);
    ASSERT_EQ(meta.offsets.round, round - 2);
    ASSERT_EQ(meta.docs, 4500 + 1000 * (round - 2 - 2));
    fl_store_close(st);
    char why[256];
    fl_store_expect_t e = expect(1000);
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_VALID);
    fl_store_batch_free(b);
    ASSERT_EQ(fl_store_discard(dir), 0);
}

/* ---- lock and discard ------------------------------------------------------ */

static void test_lock_and_discard(void)
{
    const char *dir = tmp_path("locked");
    fl_store_config_t cfg = config(0);
    char errstr[256], why[256], away[600];
    fl_store_expect_t e = expect(1000);
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    ASSERT_EQ(write_batches(st, 0, 5, -1), 0);
    /* one writer per store */
    ASSERT_TRUE(fl_store_open(dir, &cfg, errstr, sizeof errstr) == NULL);
    ASSERT_TRUE(strstr(errstr, "busy") != NULL);
    ASSERT_EQ(fl_store_discard(dir), FL_STORE_EBUSY);
    /* validation works beside an open writer */
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_VALID);
    fl_store_close(st);

    /* a discard a crash interrupted after its rename: the store is
     * missing, and the next discard removes the leftovers */
    snprintf(away, sizeof away, "%s.discard-1-1", dir);
    ASSERT_EQ(rename(dir, away), 0);
    ASSERT_EQ(validate(dir, &e, NULL, why, sizeof why), FL_STORE_MISSING);
    ASSERT_EQ(fl_store_discard(dir), 0);
    struct stat sb;
    ASSERT_EQ(stat(away, &sb), -1);
    ASSERT_EQ(fl_store_discard(dir), 0); /* nothing there: fine */

    char path[600];
    ASSERT_EQ(fl_store_path(path, sizeof path, "/var/lib/fl", &cfg.topics), 0);
    ASSERT_STR_EQ(path, "/var/lib/fl/flt.commands.3");
    ASSERT_EQ(fl_store_path(path, 10, "/var/lib/fl", &cfg.topics), FL_STORE_EARG);
}

/* ---- 100,000 documents in bounded memory ----------------------------------- */

static void test_iterate_100k_bounded(void)
{
    const char *dir = tmp_path("big");
    fl_store_config_t cfg = config(0);
    char errstr[256], why[256], id[32], val[1024];
    const int ndocs = 100000;
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    fl_store_batch_t *b = fl_store_batch_new();
    ASSERT_TRUE(st);
    int64_t t0 = fl_test_now_ms();
    for (int i = 0; i < ndocs;) {
        fl_store_batch_clear(b);
        for (int j = 0; j < 5000; j++, i++) {
            int n = snprintf(id, sizeof id, "t/%07d", i);
            memset(val, 'a' + i % 26, sizeof val);
            memcpy(val, &i, sizeof i);
            ASSERT_EQ(fl_store_batch_put(b, id, (size_t)n, val, sizeof val), 0);
        }
        fl_store_offsets_t o = {i, i, (uint64_t)i};
        fl_store_batch_offsets(b, &o);
        ASSERT_EQ(fl_store_write(st, b), 0);
    }
    fl_store_batch_free(b);
    fl_store_close(st);
    /* a check that cannot finish in time is killed (mid-scan, holding a
     * read transaction): not valid; the next check cleans up after it */
    fl_store_expect_t e = expect(ndocs);
    fl_store_meta_t meta;
    ASSERT_EQ(fl_store_validate(dir, &e, 1, &meta, why, sizeof why), FL_STORE_CORRUPT);
    ASSERT_TRUE(strstr(why, "took over") != NULL);
    int64_t t1 = fl_test_now_ms();
    ASSERT_EQ(validate(dir, &e, &meta, why, sizeof why), FL_STORE_VALID);
    ASSERT_EQ(meta.docs, ndocs);
    int64_t t2 = fl_test_now_ms();

    /* iterate with the mapping trimmed every 8 MiB read: ~110 MB of
     * records pass through, the process keeps a few MiB of them */
    cfg.trim_bytes = 8 << 20;
    st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    ASSERT_TRUE(st);
    size_t heap0 = heap_bytes();
    long rss0 = rss_kib(), rss_max = rss0;
    int err = 0, rc, seen = 0;
    fl_store_iter_t *it = fl_store_iter_new(st, &err);
    const char *iid, *irec;
    size_t iidlen, ilen;
    size_t heap_max = heap0;
    ASSERT_TRUE(it);
    while ((rc = fl_store_iter_next(it, &iid, &iidlen, &irec, &ilen)) == 1) {
        int i;
        memcpy(&i, irec, sizeof i);
        if (i != seen || ilen != sizeof val || irec[ilen - 1] != 'a' + i % 26)
            break;
        seen++;
        if (seen % 2000 == 0) {
            long r = rss_kib();
            size_t h = heap_bytes();
            rss_max = r > rss_max ? r : rss_max;
            heap_max = h > heap_max ? h : heap_max;
        }
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(seen, ndocs);
    fl_store_iter_free(it);
    fl_store_close(st);
    int64_t t3 = fl_test_now_ms();
    printf("# 100k docs: write %lld ms, validate %lld ms, iterate %lld ms; "
           "RSS +%ld KiB (max), heap +%zu bytes (max)\n",
           (long long)(t1 - t0), (long long)(t2 - t1), (long long)(t3 - t2), rss_max - rss0,
           heap_max - heap0);
    ASSERT_LT(heap_max - heap0, 64 * 1024);
    ASSERT_LT(rss_max - rss0, 40 * 1024); /* the file is ~110 MB */
    ASSERT_EQ(fl_store_discard(dir), 0);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/fl-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_round_trip);
    RUN(test_verdicts);
    RUN(test_corrupt_record);
    RUN(test_corrupt_random);
    RUN(test_kill_atomicity);
    RUN(test_map_full_grows);
    RUN(test_lock_and_discard);
    RUN(test_iterate_100k_bounded);
    /* each case discards its stores; what a failed one left goes too */
    const char *left[] = {"roundtrip", "verdicts", "corrupt1", "pristine", "flipped",
                          "killed", "grow", "locked", "big"};
    for (size_t i = 0; i < sizeof left / sizeof *left; i++)
        fl_store_discard(tmp_path(left[i]));
    rmdir(root);
    return fl_test_done();
}
