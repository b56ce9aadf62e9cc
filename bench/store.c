/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/store: the local state store (common/store.h) against decoding the
 * same snapshot records from memory, in one invocation. It predicts issue
 * 18's acceptance 3 ("restart from the local store >= 10x faster than
 * from the topic") without a broker.
 *
 * Records: N snapshot records of about 1 KiB, each a real one made by
 * core/history (fl_history_encode_snapshot) for a document of its own id
 * ("bench/doc-NNNNNNN"): 16 states of a board (a title, five cards with
 * text, votes and tags, a counter), each with a dedup table of four
 * clients, made once and given each document's id. All N records are kept
 * in memory, as the topic path would have them after fetching.
 *
 * Phases, each timed with the monotonic clock:
 *   write     the N records into a fresh store in batches of B (the
 *             default sync: one fsync per commit), offsets set per batch;
 *   validate  fl_store_validate: the forked structural check (every id in
 *             order, hashed and looked up again, the totals and checksum
 *             sums against the metadata; records are hashed when read);
 *   full      the same with verify_records: every record hashed too;
 *   open      fl_store_open of the validated store;
 *   iterate   every document, checksum verified, records read in place;
 *   load      iterate + decode + build each document (fl_wire_decode_record,
 *             fl_history_doc_from_snapshot, then freed): a restore that
 *             loads everything from the store;
 *   decode    the same decode + build of the N records from memory: what a
 *             restore from the snapshots topic does per record once Kafka
 *             has delivered it, so a floor for that path (which also pays
 *             the fetches: bench/run restore measures them);
 *   get       G random documents by id, each decoded and built: a load on
 *             demand (the cold-document path of a memory budget).
 * A restart from the local store validates and opens it, then loads
 * documents on demand: "restore from store" is validate + open. The
 * headline compares it with the decode phase; the load phase shows the
 * case of loading every document anyway.
 *
 * Usage: store [docs (1000000)] [batch (10000)] [gets (100000)]. The store
 * lives under $TMPDIR (or /tmp) and is discarded at the end. The last
 * stdout line is the headline.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "flushline/engine.h"
#include "flushline/history.h"
#include "flushline/store.h"
#include "flushline/wire.h"

#define ID_FMT "bench/doc-%07u"
#define ID_LEN 17
#define NTEMPLATES 16

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "bench store: %s\n", what);
    exit(1);
}

/* One snapshot record of a ~1 KiB board for id "bench/doc-0000000". */
static char *make_template(unsigned variant, size_t *len)
{
    char json[2048], id[32], errstr[256];
    int n = snprintf(json, sizeof json, "{\"title\":\"Sprint board %u\",\"n\":%u,\"cards\":[",
                     variant, variant);
    for (unsigned c = 0; c < 5; c++)
        n += snprintf(json + n, sizeof json - (size_t)n,
                      "%s{\"id\":\"card-%u-%u\",\"text\":\"Write the %u-th part of the thing "
                      "that does the work for variant %u\",\"votes\":%u,\"done\":%s,"
                      "\"tags\":[\"ops\",\"ui\",\"p%u\"]}",
                      c ? "," : "", variant, c, c, variant, c * 3 + variant, c % 2 ? "true" : "false",
                      c);
    snprintf(json + n, sizeof json - (size_t)n, "]}");
    json_error_t jerr;
    json_t *js = json_loads(json, 0, &jerr);
    fl_arena_t *arena = fl_arena_new(8192);
    fl_value_t state;
    snprintf(id, sizeof id, ID_FMT, 0u);
    fl_doc_t *doc = fl_doc_new((fl_slice_t){id, ID_LEN}, NULL);
    uint8_t chain[FL_HASH_LEN] = {0};
    if (!js || !arena || !doc || fl_value_from_json(js, NULL, arena, &state) != 0 ||
        fl_doc_restore(doc, &state, 100 + variant, chain) != 0)
        die("making a template state");
    json_decref(js);
    /* four clients in the dedup table */
    for (uint8_t c = 1; c <= 4; c++) {
        fl_cmd_t cmd;
        fl_flush_t fl;
        fl_outcome_t out;
        memset(&cmd, 0, sizeof cmd);
        cmd.op = FL_OP_INCR;
        cmd.has_value = true;
        cmd.path = FL_SLICE("/n");
        cmd.value.type = FL_INT;
        cmd.value.u.i = 1;
        memset(&fl, 0, sizeof fl);
        fl.doc = (fl_slice_t){id, ID_LEN};
        fl.client_id[0] = c;
        fl.client_id[15] = (uint8_t)variant;
        fl.seq = 1;
        fl.cmds = &cmd;
        fl.ncmds = 1;
        fl.ts_ms = 1700000000000 + c;
        fl_arena_reset(arena);
        if (fl_doc_apply(doc, &fl, arena, &out) != 0 || out.napplied != 1)
            die("applying a template flush");
    }
    char *buf = NULL;
    fl_arena_reset(arena);
    if (fl_history_encode_snapshot(doc, 4242, arena, &buf, len, errstr, sizeof errstr) != 0)
        die(errstr);
    fl_doc_free(doc);
    fl_arena_free(arena);
    return buf;
}

/* Decodes a record and builds its document (then frees it). */
static void decode_build(const char *rec, size_t len, fl_arena_t *arena, const char *want_id)
{
    fl_wire_msg_t msg;
    fl_doc_t *doc = NULL;
    char errstr[128];
    fl_arena_reset(arena);
    if (fl_wire_decode_record(rec, len, arena, &msg, errstr, sizeof errstr) != 0 ||
        msg.type != FL_WT_REC_SNAPSHOT ||
        fl_history_doc_from_snapshot(&msg.u.snapshot, NULL, &doc) != 0)
        die("decoding a record");
    if (want_id && memcmp(fl_doc_id(doc).ptr, want_id, ID_LEN) != 0)
        die("a record of another document");
    fl_doc_free(doc);
}

int main(int argc, char **argv)
{
    unsigned ndocs = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000000;
    unsigned batch = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 10000;
    unsigned ngets = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 100000;
    char *tmpl[NTEMPLATES];
    size_t tlen[NTEMPLATES], maxlen = 0, total = 0;
    char errstr[256], why[256], dir[512], id[32];

    if (ndocs == 0 || batch == 0)
        die("usage: store [docs] [batch] [gets]");
    for (unsigned v = 0; v < NTEMPLATES; v++) {
        tmpl[v] = make_template(v, &tlen[v]);
        maxlen = tlen[v] > maxlen ? tlen[v] : maxlen;
    }
    /* every document's record, in memory, at offs[i] */
    size_t *offs = malloc(((size_t)ndocs + 1) * sizeof *offs);
    char *recs = malloc((size_t)ndocs * maxlen);
    if (!offs || !recs)
        die("out of memory for the records");
    for (unsigned i = 0; i < ndocs; i++) {
        unsigned v = i % NTEMPLATES;
        char *r = recs + total;
        memcpy(r, tmpl[v], tlen[v]);
        char *at = memmem(r, tlen[v], "bench/doc-0000000", ID_LEN);
        if (!at)
            die("template without its id");
        snprintf(id, sizeof id, ID_FMT, i);
        memcpy(at, id, ID_LEN);
        offs[i] = total;
        total += tlen[v];
    }
    offs[ndocs] = total;

    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fl-bench-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp");
    strncat(dir, "/p0", sizeof dir - strlen(dir) - 1);

    fl_store_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.topics.commands, sizeof cfg.topics.commands, "bench.commands");
    snprintf(cfg.topics.events, sizeof cfg.topics.events, "bench.events");
    snprintf(cfg.topics.snapshots, sizeof cfg.topics.snapshots, "bench.snapshots");
    cfg.writer = "bench";
    cfg.sync = FL_STORE_SYNC_DATA;

    /* write */
    double t0 = now_ms();
    fl_store_t *st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    fl_store_batch_t *b = fl_store_batch_new();
    if (!st || !b)
        die(errstr);
    unsigned commits = 0;
    for (unsigned i = 0; i < ndocs;) {
        fl_store_batch_clear(b);
        for (unsigned j = 0; j < batch && i < ndocs; j++, i++) {
            snprintf(id, sizeof id, ID_FMT, i);
            if (fl_store_batch_put(b, id, ID_LEN, recs + offs[i], offs[i + 1] - offs[i]) != 0)
                die("batch put");
        }
        fl_store_offsets_t o = {.commands = i, .events = i, .round = ++commits};
        fl_store_batch_offsets(b, &o);
        int rc = fl_store_write(st, b);
        if (rc != 0)
            die(fl_store_strerror(rc));
    }
    size_t map = fl_store_map_size(st);
    fl_store_close(st);
    fl_store_batch_free(b);
    double t_write = now_ms() - t0;
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "rb");
    long fsize = 0;
    if (f && fseek(f, 0, SEEK_END) == 0)
        fsize = ftell(f);
    if (f)
        fclose(f);

    /* validate, open */
    fl_store_expect_t exp = {.topics = cfg.topics, .committed = ndocs, .events_start = 0,
                             .events_end = ndocs};
    fl_store_meta_t meta;
    t0 = now_ms();
    int v = fl_store_validate(dir, &exp, 0, &meta, why, sizeof why);
    double t_validate = now_ms() - t0;
    if (v != FL_STORE_VALID || meta.docs != ndocs)
        die(why);
    exp.verify_records = true;
    t0 = now_ms();
    v = fl_store_validate(dir, &exp, 0, &meta, why, sizeof why);
    double t_full = now_ms() - t0;
    if (v != FL_STORE_VALID)
        die(why);
    t0 = now_ms();
    st = fl_store_open(dir, &cfg, errstr, sizeof errstr);
    double t_open = now_ms() - t0;
    if (!st)
        die(errstr);

    /* iterate; load (iterate + decode + build) */
    fl_arena_t *arena = fl_arena_new(16384);
    const char *iid, *irec;
    size_t iidlen, ilen;
    int err = 0, rc;
    unsigned seen = 0;
    t0 = now_ms();
    fl_store_iter_t *it = fl_store_iter_new(st, &err);
    if (!it)
        die("iterator");
    while ((rc = fl_store_iter_next(it, &iid, &iidlen, &irec, &ilen)) == 1)
        seen += ilen > 0;
    fl_store_iter_free(it);
    double t_iter = now_ms() - t0;
    if (rc != 0 || seen != ndocs)
        die("iteration");
    seen = 0;
    t0 = now_ms();
    it = fl_store_iter_new(st, &err);
    while ((rc = fl_store_iter_next(it, &iid, &iidlen, &irec, &ilen)) == 1) {
        decode_build(irec, ilen, arena, iid);
        seen++;
    }
    fl_store_iter_free(it);
    double t_load = now_ms() - t0;
    if (rc != 0 || seen != ndocs)
        die("load");

    /* decode the same records from memory */
    t0 = now_ms();
    for (unsigned i = 0; i < ndocs; i++)
        decode_build(recs + offs[i], offs[i + 1] - offs[i], arena, NULL);
    double t_decode = now_ms() - t0;

    /* random gets */
    uint64_t x = 88172645463325252ull;
    t0 = now_ms();
    for (unsigned g = 0; g < ngets; g++) {
        char *rec;
        size_t len;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        snprintf(id, sizeof id, ID_FMT, (unsigned)(x % ndocs));
        if (fl_store_get(st, id, ID_LEN, &rec, &len) != 0)
            die("get");
        decode_build(rec, len, arena, id);
        free(rec);
    }
    double t_get = now_ms() - t0;
    fl_store_close(st);
    fl_arena_free(arena);
    if (fl_store_discard(dir) != 0)
        die("discard");
    dir[strlen(dir) - 3] = '\0';
    rmdir(dir);

    double restore = t_validate + t_open;
    printf("store: %u documents, records %zu bytes on average (%.0f MB), batches of %u, one "
           "fsync per commit\n",
           ndocs, total / ndocs, (double)total / 1e6, batch);
    printf("write:    %8.0f ms  %9.0f docs/s  (%u commits; file %.0f MB, map %.0f MB)\n", t_write,
           ndocs / t_write * 1e3, commits, (double)fsize / 1e6, (double)map / 1e6);
    printf("validate: %8.0f ms  %9.0f docs/s  (forked structural check: ids, lookups, sums)\n",
           t_validate, ndocs / t_validate * 1e3);
    printf("full:     %8.0f ms  %9.0f docs/s  (the same, every record hashed too)\n", t_full,
           ndocs / t_full * 1e3);
    printf("open:     %8.1f ms\n", t_open);
    printf("iterate:  %8.0f ms  %9.0f docs/s  (checksums verified, records in place)\n", t_iter,
           ndocs / t_iter * 1e3);
    printf("load:     %8.0f ms  %9.0f docs/s  (iterate + decode + build every document)\n", t_load,
           ndocs / t_load * 1e3);
    printf("decode:   %8.0f ms  %9.0f docs/s  (decode + build the same records from memory)\n",
           t_decode, ndocs / t_decode * 1e3);
    printf("get:      %8.2f us per document (%u random gets, each decoded and built)\n",
           t_get * 1e3 / (ngets ? ngets : 1), ngets);
    printf("restore of %u documents: from the store (validate + open, documents then load on "
           "demand) %.0f ms, decoding every snapshot record from memory %.0f ms: %.1fx; "
           "with the full check %.1fx; loading every document from the store %.0f ms (%.2fx)\n",
           ndocs, restore, t_decode, t_decode / restore, t_decode / (t_full + t_open), t_load,
           t_decode / t_load);
    for (unsigned i = 0; i < NTEMPLATES; i++)
        free(tmpl[i]);
    free(recs);
    free(offs);
    return 0;
}
