/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline verify`: proves a topic set's history consistent. First every
 * record of <prefix>.snapshots is read and checked by itself (decodes, key,
 * partition, digest of its own state) and remembered per document; then
 * every document is rebuilt from <prefix>.events from the start with the
 * engine, which checks each outcome's chain hash and that versions are
 * contiguous; each (client_id, seq) must be processed once (repeats only as
 * duplicate answers); and whenever a rebuilt document reaches the version
 * of one of its snapshots, the snapshot's digest and chain must equal the
 * rebuilt ones. The first mismatch is named (topic, partition, offset,
 * document, version, what differs) and ends the run with exit 1.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flushline/clock.h"
#include "history.h"

typedef struct verify_opts_s {
    fl_cli_common_t common;
    const char *doc;
    bool strict_offsets, quiet;
} verify_opts_t;

static const fl_config_entry_t entries[] = {
    FL_CLI_COMMON_ENTRIES(verify_opts_t),
    FL_CLI_DOC_ENTRY(verify_opts_t, 0, "Only this document (and its partition's checkpoints)."),
    {.name = "strict-offsets", .type = FL_CONFIG_BOOL, .def = "false",
     .offset = offsetof(verify_opts_t, strict_offsets), .flags = FL_CONFIG_SWITCH,
     .doc = "A snapshot whose events_offset disagrees with the events log is a mismatch "
            "(default: a warning; copied topics have other offsets)."},
    FL_CLI_QUIET_ENTRY(verify_opts_t),
};

FL_CLI_TABLE(fl_cmd_verify_options, "verify", NULL, entries, true,
             "Rebuilds every document from the events topic and checks chain hashes, "
             "contiguous versions, one outcome per (client_id, seq), and every snapshot record "
             "(digest and chain at its version). Exit 0 with a summary, or 1 naming the first "
             "mismatch: topic, partition, offset, document, version, what differs.");

/* ---- snapshots seen in pass 1 ------------------------------------------ */

typedef struct snap_s {
    uint64_t version;
    uint8_t digest[FL_HASH_LEN];
    uint8_t chain[FL_HASH_LEN];
    int64_t events_offset;
    int32_t partition;
    int64_t offset; /* of the snapshot record */
} snap_t;

typedef struct snaplist_s {
    snap_t *v;
    uint32_t n, cap, next; /* next: first not yet compared */
} snaplist_t;

static void snaplist_free(void *p)
{
    snaplist_t *sl = p;
    free(sl->v);
    free(sl);
}

static int cmp_snap(const void *a, const void *b)
{
    const snap_t *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* ---- per-document state of pass 2 -------------------------------------- */

typedef struct client_s {
    uint8_t id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    bool used;
} client_t;

typedef struct vdoc_s {
    snaplist_t *snaps;   /* NULL: no snapshot */
    client_t *clients;   /* open addressing */
    uint32_t nclients, cap;
    int64_t pending_eo;  /* the next applied outcome must be at or past this offset */
    int32_t pending_part;
    int64_t pending_snap_offset;
} vdoc_t;

static void vdoc_free(void *p)
{
    vdoc_t *vd = p;
    free(vd->clients);
    free(vd);
}

static client_t *client_get(vdoc_t *vd, const uint8_t id[FL_CLIENT_ID_LEN])
{
    uint64_t x = 0;
    uint32_t s;
    if ((vd->nclients + 1) * 10 >= vd->cap * 7) {
        uint32_t cap = vd->cap ? vd->cap * 2 : 16;
        client_t *nc = calloc(cap, sizeof *nc);
        if (!nc)
            return NULL;
        for (uint32_t i = 0; i < vd->cap; i++) {
            if (!vd->clients[i].used)
                continue;
            memcpy(&x, vd->clients[i].id, sizeof x);
            for (s = (uint32_t)(x * 0x9e3779b97f4a7c15ull >> 32) & (cap - 1); nc[s].used;
                 s = (s + 1) & (cap - 1))
                ;
            nc[s] = vd->clients[i];
        }
        free(vd->clients);
        vd->clients = nc;
        vd->cap = cap;
    }
    memcpy(&x, id, sizeof x);
    for (s = (uint32_t)(x * 0x9e3779b97f4a7c15ull >> 32) & (vd->cap - 1); vd->clients[s].used;
         s = (s + 1) & (vd->cap - 1))
        if (memcmp(vd->clients[s].id, id, FL_CLIENT_ID_LEN) == 0)
            return &vd->clients[s];
    vd->clients[s].used = true;
    memcpy(vd->clients[s].id, id, FL_CLIENT_ID_LEN);
    vd->clients[s].seq = 0; /* unknown */
    vd->nclients++;
    return &vd->clients[s];
}

typedef struct verify_s {
    fl_hist_t *h;
    fl_part_t *snaps; /* doc -> snaplist_t (pass 1) */
    fl_slice_t only;
    int partitions;
    bool strict_offsets;
    fl_arena_t *arena;
    /* mismatch found in pass 1 */
    bool bad;
    fl_hist_pos_t pos;
    /* counts */
    uint64_t snapshots, checked, unverifiable, checkpoints, offset_warnings, applied_cmds;
    int64_t events_hi[FL_MAX_PARTITIONS];
} verify_t;

static void mismatch_at(verify_t *v, const char *topic, int32_t p, int64_t off, fl_slice_t doc,
                        uint64_t version, const char *what)
{
    v->bad = true;
    snprintf(v->pos.topic, sizeof v->pos.topic, "%s", topic);
    v->pos.partition = p;
    v->pos.offset = off;
    snprintf(v->pos.doc, sizeof v->pos.doc, "%.*s", (int)doc.len, doc.ptr);
    v->pos.version = version;
    snprintf(v->pos.what, sizeof v->pos.what, "%s", what);
}

/* Pass 1: each snapshots record on its own. */
/* A checkpoint record: under the checkpoint key, of its own partition,
 * not past the end of the events (a warning unless strict). 0, or 1 on a
 * mismatch (reported). */
static int on_checkpoint(verify_t *v, const rd_kafka_message_t *msg, fl_slice_t key,
                         const fl_wire_checkpoint_t *cp)
{
    const char *topic = v->h->topic[FL_TOPIC_SNAPSHOTS];
    char what[400];
    if (key.len != FL_WIRE_CHECKPOINT_KEY.len ||
        memcmp(key.ptr, FL_WIRE_CHECKPOINT_KEY.ptr, key.len) != 0) {
        mismatch_at(v, topic, msg->partition, msg->offset, (fl_slice_t){"", 0}, 0,
                    "a checkpoint record without the checkpoint key");
        return 1;
    }
    if ((int32_t)cp->partition != msg->partition) {
        snprintf(what, sizeof what, "checkpoint of partition %u stored in partition %d",
                 cp->partition, msg->partition);
        mismatch_at(v, topic, msg->partition, msg->offset, (fl_slice_t){"", 0}, 0, what);
        return 1;
    }
    if ((int64_t)cp->events_offset > v->events_hi[msg->partition]) {
        snprintf(what, sizeof what, "checkpoint events_offset %llu is past the end of %s (%lld)",
                 (unsigned long long)cp->events_offset, v->h->topic[FL_TOPIC_EVENTS],
                 (long long)v->events_hi[msg->partition]);
        if (v->strict_offsets) {
            mismatch_at(v, topic, msg->partition, msg->offset, (fl_slice_t){"", 0}, 0, what);
            return 1;
        }
        if (v->offset_warnings++ < 5)
            fprintf(stderr, "flushline verify: warning: %s [%d] @%lld: %s\n", topic,
                    msg->partition, (long long)msg->offset, what);
    }
    v->checkpoints++;
    return 0;
}

/* Adds snapshot s (read at msg) to its document's list. 0 or
 * FL_HIST_ENOMEM. */
static int keep_snapshot(verify_t *v, const rd_kafka_message_t *msg, const fl_wire_snapshot_t *s)
{
    fl_part_doc_t *ent = fl_part_get_or_create(v->snaps, s->doc);
    if (!ent)
        return FL_HIST_ENOMEM;
    snaplist_t *sl = ent->user;
    if (!sl && !(sl = ent->user = calloc(1, sizeof *sl)))
        return FL_HIST_ENOMEM;
    if (fl_grow(&sl->v, &sl->cap, sl->n, sizeof *sl->v, 8) != 0)
        return FL_HIST_ENOMEM;
    snap_t *sn = &sl->v[sl->n++];
    sn->version = s->version;
    memcpy(sn->digest, s->digest, FL_HASH_LEN);
    memcpy(sn->chain, s->chain, FL_HASH_LEN);
    sn->events_offset = s->events_offset;
    sn->partition = msg->partition;
    sn->offset = msg->offset;
    return 0;
}

static int on_snapshot_record(void *opaque, const rd_kafka_message_t *msg)
{
    verify_t *v = opaque;
    const char *topic = v->h->topic[FL_TOPIC_SNAPSHOTS];
    fl_wire_msg_t wm;
    char errstr[256], what[400];
    fl_slice_t key = {(const char *)msg->key, msg->key_len};

    fl_arena_reset(v->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, v->arena, &wm, errstr, sizeof errstr)) {
        snprintf(what, sizeof what, "undecodable record: %s", errstr);
        mismatch_at(v, topic, msg->partition, msg->offset, key, 0, what);
        return 1;
    }
    if (wm.type == FL_WT_REC_CHECKPOINT)
        return on_checkpoint(v, msg, key, &wm.u.checkpoint);
    if (wm.type != FL_WT_REC_SNAPSHOT) {
        snprintf(what, sizeof what, "a %s record does not belong in snapshots",
                 fl_wire_type_name(wm.type));
        mismatch_at(v, topic, msg->partition, msg->offset, key, 0, what);
        return 1;
    }
    const fl_wire_snapshot_t *s = &wm.u.snapshot;
    if (v->only.len && (s->doc.len != v->only.len || memcmp(s->doc.ptr, v->only.ptr, s->doc.len)))
        return 0;
    if (key.len != s->doc.len || memcmp(key.ptr, s->doc.ptr, key.len) != 0) {
        mismatch_at(v, topic, msg->partition, msg->offset, s->doc, s->version,
                    "the record key is not the snapshot's document");
        return 1;
    }
    if (fl_hist_doc_partition(s->doc, v->partitions) != msg->partition) {
        snprintf(what, sizeof what, "the document belongs in partition %d",
                 fl_hist_doc_partition(s->doc, v->partitions));
        mismatch_at(v, topic, msg->partition, msg->offset, s->doc, s->version, what);
        return 1;
    }
    uint8_t digest[FL_HASH_LEN];
    fl_value_digest(&s->state, digest);
    if (memcmp(digest, s->digest, FL_HASH_LEN) != 0) {
        char a[2 * FL_HASH_LEN + 1], b[2 * FL_HASH_LEN + 1];
        fl_wire_hex(s->digest, FL_HASH_LEN, a);
        fl_wire_hex(digest, FL_HASH_LEN, b);
        snprintf(what, sizeof what, "the snapshot's digest %s is not the digest of its state %s",
                 a, b);
        mismatch_at(v, topic, msg->partition, msg->offset, s->doc, s->version, what);
        return 1;
    }
    int rc = keep_snapshot(v, msg, s);
    if (rc != 0)
        return rc;
    v->snapshots++;
    return 0;
}

/* Compares the snapshots of ent at or below its current version. */
static int check_snaps(verify_t *v, fl_part_doc_t *ent, vdoc_t *vd,
                       const rd_kafka_message_t *msg, const fl_outcome_t *o, fl_hist_pos_t *pos)
{
    snaplist_t *sl = vd->snaps;
    uint64_t ver = fl_doc_version(ent->doc);
    bool have_digest = false;
    uint8_t digest[FL_HASH_LEN];
    const char *stopic = v->h->topic[FL_TOPIC_SNAPSHOTS];
    fl_slice_t id = fl_doc_id(ent->doc);
    char what[512], a[2 * FL_HASH_LEN + 1], b[2 * FL_HASH_LEN + 1];

    while (sl && sl->next < sl->n && sl->v[sl->next].version <= ver) {
        snap_t *sn = &sl->v[sl->next++];
        if (sn->version < ver || (ent->loaded && sn->version <= ent->snapshot_version && !ent->replayed)) {
            if (ent->loaded && sn->version <= ent->snapshot_version) {
                v->unverifiable++; /* before the events log's start */
                continue;
            }
            snprintf(what, sizeof what,
                     "snapshot at version %llu: no outcome ends there (%s [%d] @%lld goes from "
                     "v%llu to v%llu)",
                     (unsigned long long)sn->version, v->h->topic[FL_TOPIC_EVENTS],
                     msg->partition, (long long)msg->offset,
                     (unsigned long long)o->version_before, (unsigned long long)o->version_after);
            mismatch_at(v, stopic, sn->partition, sn->offset, id, sn->version, what);
            *pos = v->pos;
            return FL_HIST_ECHECK;
        }
        if (!have_digest) {
            fl_doc_digest(ent->doc, digest);
            have_digest = true;
        }
        if (memcmp(digest, sn->digest, FL_HASH_LEN) != 0) {
            fl_wire_hex(sn->digest, FL_HASH_LEN, a);
            fl_wire_hex(digest, FL_HASH_LEN, b);
            snprintf(what, sizeof what,
                     "snapshot digest %s differs from the rebuilt state's digest %s", a, b);
            mismatch_at(v, stopic, sn->partition, sn->offset, id, sn->version, what);
            *pos = v->pos;
            return FL_HIST_ECHECK;
        }
        if (memcmp(fl_doc_chain(ent->doc), sn->chain, FL_HASH_LEN) != 0) {
            fl_wire_hex(sn->chain, FL_HASH_LEN, a);
            fl_wire_hex(fl_doc_chain(ent->doc), FL_HASH_LEN, b);
            snprintf(what, sizeof what, "snapshot chain %s differs from the rebuilt chain %s", a,
                     b);
            mismatch_at(v, stopic, sn->partition, sn->offset, id, sn->version, what);
            *pos = v->pos;
            return FL_HIST_ECHECK;
        }
        v->checked++;
        /* Where it says the events after it start: past the outcome that
         * made this version, at or before the next one. */
        if (msg && ent->replayed && sn->events_offset <= msg->offset) {
            snprintf(what, sizeof what,
                     "snapshot at version %llu has events_offset %lld, but the outcome that "
                     "made the version is at offset %lld",
                     (unsigned long long)sn->version, (long long)sn->events_offset,
                     (long long)msg->offset);
            if (v->strict_offsets) {
                mismatch_at(v, stopic, sn->partition, sn->offset, id, sn->version, what);
                *pos = v->pos;
                return FL_HIST_ECHECK;
            }
            if (v->offset_warnings++ < 5)
                fprintf(stderr, "flushline verify: warning: %s [%d] @%lld: document %.*s: %s\n",
                        stopic, sn->partition, (long long)sn->offset, (int)id.len, id.ptr, what);
        }
        if (sn->events_offset > vd->pending_eo) {
            vd->pending_eo = sn->events_offset;
            vd->pending_part = sn->partition;
            vd->pending_snap_offset = sn->offset;
        }
    }
    return 0;
}

static vdoc_t *vdoc_of(verify_t *v, fl_part_doc_t *ent)
{
    vdoc_t *vd = ent->user;
    if (vd)
        return vd;
    if (!(vd = calloc(1, sizeof *vd)))
        return NULL;
    fl_part_doc_t *se = fl_part_get(v->snaps, fl_doc_id(ent->doc));
    vd->snaps = se ? se->user : NULL;
    vd->pending_eo = -1;
    ent->user = vd;
    return vd;
}

static int on_pre(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
                  const rd_kafka_message_t *msg, fl_hist_pos_t *pos)
{
    verify_t *v = opaque;
    vdoc_t *vd = ent->user;
    if (!vd) {
        /* First outcome of the document: snapshots of its start state. */
        if (!(vd = vdoc_of(v, ent)))
            return FL_HIST_ENOMEM;
        return check_snaps(v, ent, vd, NULL, o, pos);
    }
    return 0;
}

static int on_post(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
                   const rd_kafka_message_t *msg, fl_hist_pos_t *pos)
{
    verify_t *v = opaque;
    vdoc_t *vd = ent->user;
    char cid[2 * FL_CLIENT_ID_LEN + 1];
    /* Evicted dedup entries make an old client new again (schemas/ENGINE.md):
     * seq checks hold only while the table never overflowed. */
    bool exact = vd->nclients < fl_engine_config_default.max_dedup;
    client_t *cl;

    if (!(cl = client_get(vd, o->client_id)))
        return FL_HIST_ENOMEM;
    fl_wire_hex(o->client_id, FL_CLIENT_ID_LEN, cid);
    if (o->duplicate) {
        if (exact && !ent->loaded && o->seq > cl->seq) {
            snprintf(pos->what, sizeof pos->what,
                     "duplicate answer for client %s seq %llu, which was never processed", cid,
                     (unsigned long long)o->seq);
            return FL_HIST_ECHECK;
        }
    } else if (o->code != FL_CODE_GAP && o->seq != 0) {
        if (exact && cl->seq != 0 && o->seq != cl->seq + 1) {
            snprintf(pos->what, sizeof pos->what,
                     o->seq <= cl->seq
                         ? "client %s seq %llu processed again (after seq %llu)"
                         : "client %s seq %llu processed after seq %llu (a gap)",
                     cid, (unsigned long long)o->seq, (unsigned long long)cl->seq);
            return FL_HIST_ECHECK;
        }
        cl->seq = o->seq;
    }
    if (o->napplied == 0)
        return 0;
    v->applied_cmds += o->napplied;
    if (vd->pending_eo >= 0 && msg->offset < vd->pending_eo) {
        char what[400];
        snprintf(what, sizeof what,
                 "snapshot has events_offset %lld, but the outcome at offset %lld comes after "
                 "its version",
                 (long long)vd->pending_eo, (long long)msg->offset);
        if (v->strict_offsets) {
            fl_slice_t id = fl_doc_id(ent->doc);
            mismatch_at(v, v->h->topic[FL_TOPIC_SNAPSHOTS], vd->pending_part,
                        vd->pending_snap_offset, id, o->version_before, what);
            *pos = v->pos;
            return FL_HIST_ECHECK;
        }
        if (v->offset_warnings++ < 5)
            fprintf(stderr, "flushline verify: warning: %s [%d] @%lld: %s\n",
                    v->h->topic[FL_TOPIC_SNAPSHOTS], vd->pending_part,
                    (long long)vd->pending_snap_offset, what);
    }
    vd->pending_eo = -1;
    return check_snaps(v, ent, vd, msg, o, pos);
}

/* After a partition: snapshots never reached by the rebuilt history. */
static int check_leftovers(verify_t *v, int32_t p, fl_part_t *docs)
{
    char what[400];
    for (uint32_t i = 0; i < fl_part_count(v->snaps); i++) {
        fl_part_doc_t *se = fl_part_at(v->snaps, i);
        snaplist_t *sl = se->user;
        fl_slice_t id = fl_doc_id(se->doc);
        if (!sl || sl->n == 0 || sl->v[0].partition != p || sl->next >= sl->n)
            continue;
        snap_t *sn = &sl->v[sl->next];
        fl_part_doc_t *ent = fl_part_get(docs, id);
        if (!ent)
            snprintf(what, sizeof what, "snapshot of a document with no outcome in %s",
                     v->h->topic[FL_TOPIC_EVENTS]);
        else
            snprintf(what, sizeof what,
                     "snapshot at version %llu, but the history in %s ends at version %llu",
                     (unsigned long long)sn->version, v->h->topic[FL_TOPIC_EVENTS],
                     (unsigned long long)fl_doc_version(ent->doc));
        mismatch_at(v, v->h->topic[FL_TOPIC_SNAPSHOTS], sn->partition, sn->offset, id,
                    sn->version, what);
        return FL_HIST_ECHECK;
    }
    return 0;
}

/* Pass 1: the snapshots of partitions first..last, each document's sorted. */
static int read_snapshots(verify_t *v, int32_t first, int32_t last)
{
    fl_hist_t *h = v->h;
    int err = 0;
    for (int32_t p = first; p <= last && !v->bad && err >= 0; p++) {
        err = fl_hist_read(h, h->topic[FL_TOPIC_SNAPSHOTS], p, 0, FL_HIST_END, false,
                           on_snapshot_record, v);
        fl_hist_progress_part_done(h);
    }
    for (uint32_t i = 0; i < fl_part_count(v->snaps); i++) {
        snaplist_t *sl = fl_part_at(v->snaps, i)->user;
        if (sl)
            qsort(sl->v, sl->n, sizeof *sl->v, cmp_snap);
    }
    return err;
}

/* Pass 2: rebuild from events, comparing as the versions pass by. A found
 * mismatch sets v->bad; the error of the last rebuild. */
static int rebuild_all(verify_t *v, fl_part_t *docs, int32_t first, int32_t last,
                       uint64_t *outcomes, uint64_t *ndocs)
{
    int err = 0;
    for (int32_t p = first; p <= last && !v->bad && err >= 0; p++) {
        fl_hist_rebuild_t rb = {.partition = p, .only = v->only, .start = 0,
                                .max_version = UINT64_MAX, .to = FL_HIST_END, .strict = true,
                                .hooks = {on_pre, on_post, v}};
        err = fl_hist_rebuild(v->h, &rb, docs, &v->pos);
        *outcomes += rb.outcomes;
        if (err == FL_HIST_ECHECK || err == FL_HIST_ERECORD || err == FL_HIST_ECHAIN ||
            err == FL_HIST_EDELTA || err == FL_HIST_EVERSION) {
            v->bad = true;
            break;
        }
        if (err >= 0 && check_leftovers(v, p, docs) != 0)
            break;
        for (uint32_t i = 0; i < fl_part_count(docs); i++)
            if (fl_doc_version(fl_part_at(docs, i)->doc) > 0)
                (*ndocs)++;
        fl_hist_progress_part_done(v->h);
    }
    return err;
}

/* Prints the verdict: the first mismatch, an error (err < 0) or the
 * totals. Returns the exit code. */
static int print_result(const verify_t *v, int err, uint64_t ndocs, uint64_t outcomes,
                        int64_t t0)
{
    if (v->bad) {
        printf("verify: MISMATCH %s partition %d offset %lld: document %s version %llu: %s\n",
               v->pos.topic, v->pos.partition, (long long)v->pos.offset,
               v->pos.doc[0] ? v->pos.doc : "-", (unsigned long long)v->pos.version, v->pos.what);
        return FL_EXIT_FAIL;
    }
    if (err < 0) {
        fprintf(stderr, "flushline verify: %s\n", fl_hist_strerror(err));
        return err == FL_HIST_EKAFKA ? FL_EXIT_UNREACHABLE : FL_EXIT_FAIL;
    }
    printf("verify: ok: %llu documents, %llu outcomes, %llu commands applied, %llu snapshots "
           "checked (%llu before the log start), %llu checkpoints, %.1f s\n",
           (unsigned long long)ndocs, (unsigned long long)outcomes,
           (unsigned long long)v->applied_cmds, (unsigned long long)v->checked,
           (unsigned long long)v->unverifiable, (unsigned long long)v->checkpoints,
           (double)(fl_clock_mono_ms() - t0) / 1000.0);
    if (v->offset_warnings)
        printf("verify: %llu snapshot events_offset warnings (see stderr)\n",
               (unsigned long long)v->offset_warnings);
    return FL_EXIT_OK;
}

int fl_cmd_verify(int argc, char **argv)
{
    verify_t *v = NULL;
    uint64_t ndocs = 0, outcomes = 0;
    verify_opts_t o = {0};
    fl_part_t *docs = NULL;
    fl_config_t *cfg;
    fl_hist_t h = {0};
    const char *doc;
    int n, nsnap, err = 0;
    int rc = fl_cli_options(&fl_cmd_verify_options, &o, &o.common, argc, argv, &cfg);
    int64_t t0 = fl_clock_mono_ms();

    if (rc >= 0)
        return rc;
    doc = o.doc;

    if ((rc = fl_hist_open_history(&h, "verify", &o.common, o.quiet, &n, &nsnap)) != FL_EXIT_OK)
        goto fail;
    if (nsnap != n) {
        printf("verify: MISMATCH %s has %d partitions, %s has %d\n", h.topic[FL_TOPIC_EVENTS], n,
               h.topic[FL_TOPIC_SNAPSHOTS], nsnap);
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    if (!(v = calloc(1, sizeof *v)) || !(v->snaps = fl_hist_docs_new(snaplist_free)) ||
        !(docs = fl_hist_docs_new(vdoc_free)) || !(v->arena = fl_arena_new(1 << 16))) {
        fprintf(stderr, "flushline verify: out of memory\n");
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    v->h = &h;
    v->partitions = n;
    v->strict_offsets = o.strict_offsets;
    v->only = doc ? (fl_slice_t){doc, strlen(doc)} : (fl_slice_t){NULL, 0};
    int32_t first = doc ? fl_hist_doc_partition(v->only, n) : 0;
    int32_t last = doc ? first : n - 1;
    for (int32_t p = first; p <= last; p++) {
        int64_t lo;
        if (fl_hist_watermarks(&h, h.topic[FL_TOPIC_EVENTS], p, &lo, &v->events_hi[p]) != 0) {
            rc = FL_EXIT_UNREACHABLE;
            goto fail;
        }
    }

    fl_hist_progress_begin(&h, 2 * (last - first + 1));
    err = read_snapshots(v, first, last);
    if (err >= 0)
        err = rebuild_all(v, docs, first, last, &outcomes, &ndocs);
    fl_hist_progress_end(&h);
    rc = print_result(v, err, ndocs, outcomes, t0);
fail:
    fflush(stdout);
    if (v) {
        fl_part_free(v->snaps);
        fl_arena_free(v->arena);
        free(v);
    }
    fl_part_free(docs);
    fl_hist_close(&h);
    fl_config_free(cfg);
    return rc;
}
