/* SPDX-License-Identifier: Apache-2.0 */
/* The sequential model of processor tests; see fl_model.h. */
#include "fl_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_ktest.h"
#include "fl_test.h"
#include "flushline/wire.h"

#define MAX_DOCS 4096

/* An expected outcome, kept encoded (the engine's arena is reused). */
typedef struct expect_s {
    char *rec;
    size_t len;
    int seen;
} expect_t;

typedef struct mdoc_s {
    fl_doc_t *doc;
    expect_t *exp;
    size_t nexp, cap;
    uint64_t events_version; /* version after the last outcome event seen */
} mdoc_t;

struct fl_model_s {
    mdoc_t docs[MAX_DOCS];
    int ndocs;
    fl_arena_t *arena;
    fl_model_report_t *rep;
};

static mdoc_t *find(fl_model_t *m, fl_slice_t id, int create)
{
    for (int i = 0; i < m->ndocs; i++) {
        fl_slice_t d = fl_doc_id(m->docs[i].doc);
        if (d.len == id.len && memcmp(d.ptr, id.ptr, id.len) == 0)
            return &m->docs[i];
    }
    if (!create || m->ndocs == MAX_DOCS)
        return NULL;
    mdoc_t *md = &m->docs[m->ndocs];
    memset(md, 0, sizeof *md);
    if (!(md->doc = fl_doc_new(id, NULL)))
        return NULL;
    m->ndocs++;
    return md;
}

static int on_command(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    fl_model_t *m = opaque;
    fl_wire_msg_t wm;
    fl_outcome_t out;
    char errstr[256], *buf;
    size_t len;
    rd_kafka_timestamp_type_t tt;
    fl_arena_reset(m->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, m->arena, &wm, errstr, sizeof errstr) != 0 ||
        wm.type != FL_WT_REC_FLUSH)
        return 0; /* bad records and syncs have no outcome to model */
    if (msg->key_len != wm.u.rflush.flush.doc.len ||
        memcmp(msg->key, wm.u.rflush.flush.doc.ptr, msg->key_len) != 0)
        return 0;
    wm.u.rflush.flush.ts_ms = rd_kafka_message_timestamp(msg, &tt);
    mdoc_t *md = find(m, wm.u.rflush.flush.doc, 1);
    if (!md || fl_doc_apply(md->doc, &wm.u.rflush.flush, m->arena, &out) != 0)
        return 1;
    if (fl_wire_encode_outcome_record(&out, wm.u.rflush.gw, wm.u.rflush.origin, &buf, &len, errstr,
                                      sizeof errstr) != 0)
        return 1;
    if (md->nexp == md->cap) {
        md->cap = md->cap ? md->cap * 2 : 64;
        md->exp = realloc(md->exp, md->cap * sizeof *md->exp);
    }
    md->exp[md->nexp++] = (expect_t){buf, len, 0};
    m->rep->commands++;
    m->rep->applied_cmds += out.napplied;
    return 0;
}

/* Outcome events of one document arrive in order; match them in order. */
static int on_event(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    fl_model_t *m = opaque;
    fl_wire_msg_t wm;
    char errstr[256];
    fl_arena_reset(m->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, m->arena, &wm, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "model: undecodable event %d@%lld: %s\n", p, (long long)off, errstr);
        m->rep->mismatches++;
        return 0;
    }
    if (wm.type != FL_WT_REC_OUTCOME)
        return 0;
    const fl_outcome_t *o = &wm.u.outcome.outcome;
    m->rep->outcomes++;
    mdoc_t *md = find(m, o->doc, 0);
    if (!md) {
        m->rep->extra++;
        return 0;
    }
    if (!o->duplicate && o->version_before != md->events_version) {
        if (m->rep->gaps++ < 5)
            fprintf(stderr, "model: %.*s outcome from v%llu after v%llu\n", (int)o->doc.len,
                    o->doc.ptr, (unsigned long long)o->version_before,
                    (unsigned long long)md->events_version);
    }
    if (!o->duplicate)
        md->events_version = o->version_after;
    size_t i = 0;
    while (i < md->nexp && md->exp[i].seen)
        i++;
    if (i == md->nexp) {
        m->rep->extra++;
        return 0;
    }
    md->exp[i].seen = 1;
    if (md->exp[i].len != msg->len || memcmp(md->exp[i].rec, msg->payload, msg->len) != 0) {
        if (m->rep->mismatches++ < 5)
            fprintf(stderr, "model: %.*s outcome #%zu (seq %llu) differs from the model\n",
                    (int)o->doc.len, o->doc.ptr, i, (unsigned long long)o->seq);
    }
    return 0;
}

fl_model_t *fl_model_check(const char *bootstrap, const char *prefix, fl_model_report_t *rep)
{
    fl_model_t *m = calloc(1, sizeof *m);
    memset(rep, 0, sizeof *rep);
    if (!m || !(m->arena = fl_arena_new(1 << 16))) {
        free(m);
        return NULL;
    }
    m->rep = rep;
    if (fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_COMMANDS, on_command, m) < 0 ||
        fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_EVENTS, on_event, m) < 0) {
        fl_model_free(m);
        return NULL;
    }
    for (int d = 0; d < m->ndocs; d++)
        for (size_t i = 0; i < m->docs[d].nexp; i++)
            if (!m->docs[d].exp[i].seen)
                rep->missing++;
    rep->docs = m->ndocs;
    return m;
}

fl_doc_t *fl_model_doc(fl_model_t *m, const char *id)
{
    mdoc_t *md = find(m, (fl_slice_t){id, strlen(id)}, 0);
    return md ? md->doc : NULL;
}

typedef struct snapctx_s {
    fl_model_t *m;
    uint64_t version[MAX_DOCS];
    uint8_t digest[MAX_DOCS][FL_HASH_LEN];
    int seen[MAX_DOCS];
} snapctx_t;

static int on_snapshot(void *opaque, int32_t p, int64_t off, const rd_kafka_message_t *msg)
{
    snapctx_t *sc = opaque;
    fl_wire_msg_t wm;
    char errstr[256];
    fl_arena_reset(sc->m->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, sc->m->arena, &wm, errstr, sizeof errstr) !=
            0 ||
        wm.type != FL_WT_REC_SNAPSHOT)
        return 0;
    mdoc_t *md = find(sc->m, wm.u.snapshot.doc, 0);
    if (!md)
        return 0;
    int i = (int)(md - sc->m->docs);
    if (!sc->seen[i] || wm.u.snapshot.version >= sc->version[i]) {
        sc->seen[i] = 1;
        sc->version[i] = wm.u.snapshot.version;
        memcpy(sc->digest[i], wm.u.snapshot.digest, FL_HASH_LEN);
    }
    return 0;
}

long fl_model_check_snapshots(fl_model_t *m, const char *bootstrap, const char *prefix)
{
    snapctx_t *sc = calloc(1, sizeof *sc);
    long bad = 0;
    sc->m = m;
    if (fl_ktest_read_all(bootstrap, prefix, FL_TOPIC_SNAPSHOTS, on_snapshot, sc) < 0) {
        free(sc);
        return -1;
    }
    for (int i = 0; i < m->ndocs; i++) {
        uint8_t want[FL_HASH_LEN];
        if (fl_doc_version(m->docs[i].doc) == 0)
            continue; /* nothing ever applied: nothing to snapshot */
        fl_doc_digest(m->docs[i].doc, want);
        if (!sc->seen[i] || sc->version[i] != fl_doc_version(m->docs[i].doc) ||
            memcmp(want, sc->digest[i], FL_HASH_LEN) != 0) {
            if (bad++ < 5) {
                fl_slice_t id = fl_doc_id(m->docs[i].doc);
                fprintf(stderr, "model: snapshot of %.*s: %s v%llu, model v%llu\n", (int)id.len,
                        id.ptr, sc->seen[i] ? "at" : "missing", (unsigned long long)sc->version[i],
                        (unsigned long long)fl_doc_version(m->docs[i].doc));
            }
        }
    }
    free(sc);
    return bad;
}

void fl_model_free(fl_model_t *m)
{
    if (!m)
        return;
    for (int d = 0; d < m->ndocs; d++) {
        for (size_t i = 0; i < m->docs[d].nexp; i++)
            free(m->docs[d].exp[i].rec);
        free(m->docs[d].exp);
        fl_doc_free(m->docs[d].doc);
    }
    fl_arena_free(m->arena);
    free(m);
}
