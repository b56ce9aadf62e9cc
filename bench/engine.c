/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/engine: apply-engine throughput, measured as the processor sees it:
 * flush records (wire msgpack, 100 commands each) are decoded with
 * fl_wire_decode_record and applied with fl_doc_apply. Workloads: replace
 * of an int at depth 3 (/a/b/kNNN) in a 1,000-key document, incr of the same
 * keys, and array append (/list/-). The baseline, run in the same process
 * on the same records, is the decode alone; the headline ratio is
 * (decode + apply) / decode. Best of several rounds; the last line is the
 * headline for bench/run and BENCHMARKS.md.
 *
 * Rules (schemas/RULES.md, issue acceptance 2): the replace workload is also
 * applied (decoded beforehand, as "apply only") under a realistic rule set of
 * ten rules that all lie on the command's path (allow rules with a role and
 * a condition, constraints at the document, the map and the value, stamp
 * guards); its rate is reported against the same apply-only pass without
 * rules, measured in the same round, in wall time and in thread CPU time
 * (the latter is what other processes on a shared machine cannot skew).
 *
 * Usage: engine [total_commands (default 2000000)] [rounds (default 3)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flushline/engine.h"
#include "flushline/rules.h"
#include "flushline/wire.h"

#define CMDS_PER_FLUSH 100
#define KEYS 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: what the rules comparison is measured in, so
 * that other processes on a shared machine do not decide it. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct rec_s {
    char *buf;
    size_t len;
} rec_t;

typedef enum { W_REPLACE, W_INCR, W_ADD } workload_t;

static const char *const wl_names[] = {"replace", "incr", "add"};
static const fl_slice_t doc_id = {"bench/doc", 9};

/* Encodes nflush flush records of the workload. Pointers live in paths[]. */
static rec_t *make_records(workload_t wl, uint32_t nflush)
{
    static char paths[KEYS][16];
    rec_t *recs = calloc(nflush, sizeof(*recs));
    fl_cmd_t cmds[CMDS_PER_FLUSH];
    if (!recs)
        return NULL;
    for (int k = 0; k < KEYS; k++)
        snprintf(paths[k], sizeof paths[k], "/a/b/k%d", k);
    uint32_t n = 0;
    for (uint32_t f = 0; f < nflush; f++) {
        fl_flush_t fl = {0};
        fl.doc = doc_id;
        memset(fl.client_id, 0x11, FL_CLIENT_ID_LEN);
        fl.client_id[0] = (uint8_t)(f % 16); /* 16 clients interleaved */
        fl.seq = f / 16 + 1;
        fl.ncmds = CMDS_PER_FLUSH;
        fl.cmds = cmds;
        for (int i = 0; i < CMDS_PER_FLUSH; i++, n++) {
            fl_cmd_t *c = &cmds[i];
            memset(c, 0, sizeof(*c));
            c->has_value = true;
            if (wl == W_ADD) {
                c->op = FL_OP_ADD;
                c->path = FL_SLICE("/list/-");
                c->value = fl_value_int((int64_t)n);
            } else {
                c->op = wl == W_REPLACE ? FL_OP_REPLACE : FL_OP_INCR;
                const char *p = paths[(n * 7919u) % KEYS];
                c->path = (fl_slice_t){p, strlen(p)};
                c->value = fl_value_int(wl == W_REPLACE ? (int64_t)(n % 100000) : 1);
            }
        }
        char err[128];
        if (fl_wire_encode_flush_record(&fl, FL_SLICE("gw1"), 1, &recs[f].buf, &recs[f].len, err,
                                        sizeof err) != 0) {
            fprintf(stderr, "encode: %s\n", err);
            exit(1);
        }
    }
    return recs;
}

static fl_doc_t *make_doc(void)
{
    fl_engine_config_t cfg = fl_engine_config_default;
    cfg.max_state_bytes = (size_t)1 << 30; /* the add workload grows one array */
    fl_doc_t *doc = fl_doc_new(doc_id, &cfg);
    fl_value_t root, a, b, list;
    if (!doc || fl_value_new_map(&root) || fl_value_new_map(&a) || fl_value_new_map(&b) ||
        fl_value_new_array(&list))
        exit(1);
    for (int k = 0; k < KEYS; k++) {
        char key[16];
        int n = snprintf(key, sizeof key, "k%d", k);
        fl_value_t v = fl_value_int(k);
        fl_map_set(&b, key, (size_t)n, &v);
    }
    fl_map_set(&a, "b", 1, &b);
    fl_map_set(&root, "a", 1, &a);
    fl_map_set(&root, "list", 4, &list);
    uint8_t zero[FL_HASH_LEN] = {0};
    if (fl_doc_restore(doc, &root, 0, zero) != 0)
        exit(1);
    fl_value_free(&root);
    return doc;
}

/* One timed pass: decode every record, and apply it when doc != NULL.
 * Returns elapsed seconds. */
static double pass(const rec_t *recs, uint32_t nflush, fl_doc_t *doc, fl_arena_t *arena)
{
    double t0 = now_s();
    for (uint32_t f = 0; f < nflush; f++) {
        fl_wire_msg_t msg;
        fl_outcome_t out;
        char err[128];
        fl_arena_reset(arena);
        if (fl_wire_decode_record(recs[f].buf, recs[f].len, arena, &msg, err, sizeof err) != 0) {
            fprintf(stderr, "decode: %s\n", err);
            exit(1);
        }
        if (doc && (fl_doc_apply(doc, &msg.u.rflush.flush, arena, &out) != 0 ||
                    out.napplied != CMDS_PER_FLUSH)) {
            fprintf(stderr, "apply failed\n");
            exit(1);
        }
    }
    return now_s() - t0;
}

/* Ten rules on the path of /a/b/kNNN replaces: every one is looked at for
 * every command, and six of them match it. */
static const char bench_rules[] =
    "{\"default_role\":\"member\",\"rules\":["
    "{\"name\":\"admin\",\"allow\":{\"ops\":[\"add\",\"remove\"],\"paths\":[\"/**\"],"
    "\"roles\":[\"admin\"]}},"
    "{\"name\":\"lists\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"/list/-\"]}},"
    "{\"name\":\"counters\",\"allow\":{\"ops\":[\"incr\"],\"paths\":[\"/a/b/*\"],"
    "\"where\":[{\"value\":\"\",\"eq\":1}]}},"
    "{\"name\":\"values\",\"allow\":{\"ops\":[\"replace\"],\"paths\":[\"/a/b/*\"],"
    "\"roles\":[\"member\",\"admin\"],\"where\":[{\"value\":\"\",\"ne\":-1},"
    "{\"target\":\"\",\"ne\":null}]}},"
    "{\"name\":\"value range\",\"constraint\":{\"path\":\"/a/b/*\",\"schema\":"
    "{\"type\":\"integer\",\"minimum\":0,\"maximum\":1000000}}},"
    "{\"name\":\"map size\",\"constraint\":{\"path\":\"/a/b\",\"schema\":"
    "{\"type\":\"object\",\"maxProperties\":5000}}},"
    "{\"name\":\"shape\",\"constraint\":{\"path\":\"/a\",\"schema\":"
    "{\"type\":\"object\",\"required\":[\"b\"]}}},"
    "{\"name\":\"root\",\"constraint\":{\"path\":\"\",\"schema\":"
    "{\"type\":\"object\",\"maxProperties\":16}}},"
    "{\"name\":\"author\",\"stamp\":{\"path\":\"/a/*\",\"on\":[\"create\"],"
    "\"set\":{\"by\":\"$user\",\"at\":\"$ts\"}}},"
    "{\"name\":\"version\",\"stamp\":{\"path\":\"/a/b/*\",\"on\":[\"add\"],"
    "\"set\":{\"v\":\"$version\"}}}"
    "]}";

/* Apply only: records decoded beforehand (each into its own arena), under
 * rules when rules != NULL. */
static double pass_apply_only(const rec_t *recs, uint32_t nflush, fl_doc_t *doc,
                              const fl_rules_t *rules, double *cpu)
{
    fl_arena_t **arenas = calloc(nflush, sizeof(*arenas));
    fl_flush_t *flushes = calloc(nflush, sizeof(*flushes));
    fl_arena_t *out_arena = fl_arena_new(1 << 16);
    if (!arenas || !flushes || !out_arena)
        exit(1);
    for (uint32_t f = 0; f < nflush; f++) {
        fl_wire_msg_t msg;
        char err[128];
        arenas[f] = fl_arena_new(8192);
        if (!arenas[f] ||
            fl_wire_decode_record(recs[f].buf, recs[f].len, arenas[f], &msg, err, sizeof err))
            exit(1);
        flushes[f] = msg.u.rflush.flush;
    }
    double t0 = now_s(), c0 = cpu_s();
    for (uint32_t f = 0; f < nflush; f++) {
        fl_outcome_t out;
        fl_arena_reset(out_arena);
        if (fl_doc_apply_rules(doc, &flushes[f], rules, NULL, out_arena, &out) != 0 ||
            out.napplied != CMDS_PER_FLUSH)
            exit(1);
    }
    double t = now_s() - t0;
    *cpu = cpu_s() - c0;
    for (uint32_t f = 0; f < nflush; f++)
        fl_arena_free(arenas[f]);
    free(arenas);
    free(flushes);
    fl_arena_free(out_arena);
    return t;
}

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 2000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (total < CMDS_PER_FLUSH || rounds < 1) {
        fprintf(stderr, "usage: engine [total_commands] [rounds]\n");
        return 2;
    }
    uint32_t nflush = (uint32_t)(total / CMDS_PER_FLUSH);
    double ncmds = (double)nflush * CMDS_PER_FLUSH;
    fl_arena_t *arena = fl_arena_new(1 << 16);
    double rate[3] = {0}, base[3] = {0}, apply_only = 0, with_rules = 0;
    double cpu_plain = 0, cpu_rules = 0; /* best rates in thread CPU time */
    char err[256];
    fl_rules_t *rules = NULL;
    if (fl_rules_parse(bench_rules, sizeof bench_rules - 1, &rules, err, sizeof err) != 0 ||
        fl_rules_count(rules) != 10) {
        fprintf(stderr, "bench rules: %s\n", err);
        return 1;
    }
    printf("engine bench: %u flushes x %d commands, %d-key document, best of %d\n", nflush,
           CMDS_PER_FLUSH, KEYS, rounds);
    for (int w = 0; w < 3; w++) {
        rec_t *recs = make_records((workload_t)w, nflush);
        if (!recs)
            return 1;
        for (int r = 0; r < rounds; r++) {
            double tb = pass(recs, nflush, NULL, arena);
            fl_doc_t *doc = make_doc();
            double ta = pass(recs, nflush, doc, arena);
            fl_doc_free(doc);
            if (ncmds / tb > base[w])
                base[w] = ncmds / tb;
            if (ncmds / ta > rate[w])
                rate[w] = ncmds / ta;
            if (w == W_REPLACE) {
                doc = make_doc();
                double co, cr;
                double to = pass_apply_only(recs, nflush, doc, NULL, &co);
                fl_doc_free(doc);
                if (ncmds / to > apply_only)
                    apply_only = ncmds / to;
                if (ncmds / co > cpu_plain)
                    cpu_plain = ncmds / co;
                doc = make_doc();
                double tr = pass_apply_only(recs, nflush, doc, rules, &cr);
                fl_doc_free(doc);
                if (ncmds / tr > with_rules)
                    with_rules = ncmds / tr;
                if (ncmds / cr > cpu_rules)
                    cpu_rules = ncmds / cr;
            }
        }
        printf("  %-8s decode+apply %10.0f cmds/s   decode only %10.0f cmds/s   ratio %.2f\n",
               wl_names[w], rate[w], base[w], rate[w] / base[w]);
        for (uint32_t f = 0; f < nflush; f++)
            free(recs[f].buf);
        free(recs);
    }
    printf("  replace  apply only   %10.0f cmds/s\n", apply_only);
    printf("  replace  apply only with 10 rules %10.0f cmds/s   ratio to no rules %.2f\n",
           with_rules, with_rules / apply_only);
    printf("  replace  in thread CPU time: %.0f cmds/s without rules, %.0f with 10 rules, "
           "ratio %.2f\n",
           cpu_plain, cpu_rules, cpu_rules / cpu_plain);
    fl_rules_free(rules);
    fl_arena_free(arena);
    printf("engine replace: %.0f cmds/s (decode baseline %.0f/s, ratio %.2f)\n", rate[W_REPLACE],
           base[W_REPLACE], rate[W_REPLACE] / base[W_REPLACE]);
    return 0;
}
