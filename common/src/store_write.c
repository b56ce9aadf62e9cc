/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_write: batches (puts and deletes with the offsets they bring the
 * store to) and writing one as a single LMDB write transaction that
 * updates the documents and the metadata together, growing the map when
 * it is full.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "flushline/value.h"

/* ---- batches ------------------------------------------------------------- */

fl_store_batch_t *fl_store_batch_new(void)
{
    return calloc(1, sizeof(fl_store_batch_t));
}

void fl_store_batch_free(fl_store_batch_t *b)
{
    if (!b)
        return;
    free(b->ops);
    free(b->buf);
    free(b);
}

void fl_store_batch_clear(fl_store_batch_t *b)
{
    b->n = 0;
    b->used = 0;
    b->have_offsets = false;
}

static int batch_add(fl_store_batch_t *b, op_kind_t kind, const char *id, size_t idlen,
                     const void *rec, size_t len)
{
    if (!id || idlen == 0 || idlen > FL_STORE_ID_MAX || (len && !rec) ||
        len > SIZE_MAX / 2 - SUM_LEN)
        return FL_STORE_EARG;
    if (fl_grow(&b->ops, &b->cap, b->n, sizeof *b->ops, 64) != 0)
        return FL_STORE_ENOMEM;
    size_t need = idlen + len;
    if (b->bufcap - b->used < need) {
        size_t ncap = b->bufcap ? b->bufcap : 4096;
        while (ncap - b->used < need)
            ncap *= 2;
        char *buf = realloc(b->buf, ncap);
        if (!buf)
            return FL_STORE_ENOMEM;
        b->buf = buf;
        b->bufcap = ncap;
    }
    op_t *op = &b->ops[b->n++];
    op->kind = (uint8_t)kind;
    op->idlen = (uint8_t)idlen;
    op->off = b->used;
    op->len = len;
    memcpy(b->buf + b->used, id, idlen);
    if (len)
        memcpy(b->buf + b->used + idlen, rec, len);
    b->used += need;
    return 0;
}

int fl_store_batch_put(fl_store_batch_t *b, const char *id, size_t idlen, const void *rec,
                       size_t len)
{
    return batch_add(b, OP_PUT, id, idlen, rec, len);
}

int fl_store_batch_del(fl_store_batch_t *b, const char *id, size_t idlen)
{
    return batch_add(b, OP_DEL, id, idlen, NULL, 0);
}

void fl_store_batch_offsets(fl_store_batch_t *b, const fl_store_offsets_t *off)
{
    b->off = *off;
    b->have_offsets = true;
}

uint32_t fl_store_batch_ops(const fl_store_batch_t *b)
{
    return b->n;
}

/* ---- writing ------------------------------------------------------------- */

/* One attempt at writing b in one transaction. 0, or an LMDB code
 * (MDB_MAP_FULL: grow and try again) or -FL_STORE_ECORRUPT-ish codes
 * mapped by the caller. */
/* LMDB's default key order: bytewise, the shorter first on a common
 * prefix. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Batch positions by id, then position: the order the operations are
 * applied in (the same result as the batch's order, as operations on one
 * id keep theirs). */
static int op_cmp(const void *x, const void *y, void *arg)
{
    const fl_store_batch_t *b = arg;
    uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
    const op_t *p = &b->ops[i], *q = &b->ops[j];
    int c = key_cmp(b->buf + p->off, p->idlen, b->buf + q->off, q->idlen);
    return c ? c : i < j ? -1 : i > j;
}

/* Begins the write transaction, adopting the map size another process
 * grew the map to. 0 or an LMDB/errno code. */
static int begin_write(fl_store_t *st, MDB_txn **txn)
{
    int rc = mdb_txn_begin(st->env, NULL, 0, txn);
    if (rc == MDB_MAP_RESIZED) { /* another process grew it: adopt its size */
        if ((rc = mdb_env_set_mapsize(st->env, 0)) != 0)
            return rc;
        MDB_envinfo info;
        if (mdb_env_info(st->env, &info) == 0)
            st->map_size = info.me_mapsize;
        if (st_map_find(st->env, &st->map) != 0)
            return EIO;
        rc = mdb_txn_begin(st->env, NULL, 0, txn);
    }
    return rc;
}

/* The greatest id stored, copied into lastbuf (the page it points into may
 * change as the batch is written); size 0 when there is none. */
static int last_key(MDB_txn *txn, MDB_dbi docs, MDB_val *lastk, char *lastbuf)
{
    MDB_cursor *cur = NULL;
    MDB_val lastv;
    int rc = mdb_cursor_open(txn, docs, &cur);
    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(cur, lastk, &lastv, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        lastk->mv_size = 0;
        return 0;
    }
    if (rc != 0 || lastk->mv_size > FL_STORE_ID_MAX)
        return rc ? rc : MDB_CORRUPTED;
    memcpy(lastbuf, lastk->mv_data, lastk->mv_size);
    lastk->mv_data = lastbuf;
    return 0;
}

/* Applies one put or delete of the batch, keeping m's counts and sums.
 * Puts past the greatest id (lastk) are appended. */
static int write_op(MDB_txn *txn, MDB_dbi docs, const fl_store_batch_t *b, const op_t *op,
                    MDB_val *lastk, fl_store_meta_t *m)
{
    const char *id = b->buf + op->off;
    MDB_val k = {op->idlen, (void *)id}, old;
    bool had = false;
    uint64_t old_sum = 0;

    int rc = mdb_get(txn, docs, &k, &old);
    if (rc == 0) {
        /* The stored checksum leaves the sum as it went in: a value
         * that rotted meanwhile is caught by validation, not hidden.
         * (Not checked against the map: a page this transaction
         * already changed is a heap copy.) */
        if (old.mv_size < SUM_LEN)
            return MDB_CORRUPTED;
        had = true;
        old_sum = st_load64(old.mv_data);
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if (had) {
        m->docs--;
        m->bytes -= old.mv_size - SUM_LEN;
        m->sum ^= old_sum;
        m->idsum ^= st_id_sum(id, op->idlen);
    }
    if (op->kind == OP_DEL)
        return had ? mdb_del(txn, docs, &k, NULL) : 0;
    const char *rec = id + op->idlen;
    uint64_t h = st_value_sum(id, op->idlen, rec, op->len);
    MDB_val v = {op->len + SUM_LEN, NULL};
    bool append = !had && (lastk->mv_size == 0 ||
                           key_cmp(id, op->idlen, lastk->mv_data, lastk->mv_size) > 0);
    if ((rc = mdb_put(txn, docs, &k, &v, MDB_RESERVE | (append ? MDB_APPEND : 0))) != 0)
        return rc;
    if (append) {
        lastk->mv_data = (void *)id; /* the batch's copy: stable */
        lastk->mv_size = op->idlen;
    }
    st_store64(v.mv_data, h);
    memcpy((char *)v.mv_data + SUM_LEN, rec, op->len);
    m->docs++;
    m->bytes += op->len;
    m->sum ^= h;
    m->idsum ^= st_id_sum(id, op->idlen);
    return 0;
}

/* Applies b in id order: B-tree pages are visited once in order, and ids
 * past the last one in the store are appended (MDB_APPEND fills pages
 * instead of splitting them in halves, which a bulk load of ascending ids
 * would otherwise leave half empty). */
static int write_once(fl_store_t *st, const fl_store_batch_t *b, const uint32_t *order,
                      fl_store_meta_t *m)
{
    MDB_txn *txn;
    MDB_dbi docs = st->docs, meta = st->meta;
    MDB_val lastk = {0, NULL};
    char lastbuf[FL_STORE_ID_MAX];
    int rc;

    if ((rc = begin_write(st, &txn)) != 0)
        return rc;
    if (!st->have_dbis && ((rc = mdb_dbi_open(txn, "docs", MDB_CREATE, &docs)) != 0 ||
                           (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta)) != 0))
        goto fail;
    if ((rc = last_key(txn, docs, &lastk, lastbuf)) != 0)
        goto fail;
    for (uint32_t i = 0; i < b->n; i++)
        if ((rc = write_op(txn, docs, b, &b->ops[order ? order[i] : i], &lastk, m)) != 0)
            goto fail;
    unsigned char enc[META_MAX];
    MDB_val mk = {sizeof META_KEY - 1, (void *)META_KEY};
    MDB_val mv = {st_meta_encode(m, enc), enc};
    if ((rc = mdb_put(txn, meta, &mk, &mv, 0)) != 0)
        goto fail;
    rc = mdb_txn_commit(txn); /* frees txn whatever the outcome */
    if (rc == 0 && !st->have_dbis) {
        st->docs = docs;
        st->meta = meta;
        st->have_dbis = true;
    }
    return rc;
fail:
    mdb_txn_abort(txn);
    return rc;
}

int fl_store_write(fl_store_t *st, const fl_store_batch_t *b)
{
    const fl_store_offsets_t *o = &b->off;
    fl_store_meta_t m;

    if (!b->have_offsets || o->commands < 0 || o->events < 0)
        return FL_STORE_EARG;
    if (st->have_meta) {
        /* Committed state only moves forward; another topic set means
         * another store. */
        if (!st_topics_equal(&st->m.topics, &st->cfg.topics) ||
            o->commands < st->m.offsets.commands || o->events < st->m.offsets.events ||
            o->round < st->m.offsets.round)
            return FL_STORE_EARG;
        m = st->m;
    } else {
        memset(&m, 0, sizeof m);
    }
    m.format = FL_STORE_FORMAT_VERSION;
    m.topics = st->cfg.topics;
    m.offsets = *o;
    snprintf(m.writer, sizeof m.writer, "%s", st->writer);
    if (st->rtxn) /* no transaction of ours may be live when the map grows */
        mdb_txn_reset(st->rtxn);
    uint32_t *order = b->n ? malloc(b->n * sizeof *order) : NULL;
    if (b->n && !order)
        return FL_STORE_ENOMEM;
    for (uint32_t i = 0; i < b->n; i++)
        order[i] = i;
    qsort_r(order, b->n, sizeof *order, op_cmp, (void *)b);
    for (;;) {
        fl_store_meta_t next = m;
        int rc = write_once(st, b, order, &next);
        if (rc == 0) {
            free(order);
            st->m = next;
            st->have_meta = true;
            return 0;
        }
        if (rc != MDB_MAP_FULL) {
            free(order);
            return st_map_err(rc);
        }
        size_t grown = st->map_size * 2;
        if (st->cfg.map_size_max && grown > st->cfg.map_size_max)
            grown = st->cfg.map_size_max;
        if (grown <= st->map_size || st->iters) {
            free(order);
            return grown <= st->map_size ? FL_STORE_EFULL : FL_STORE_EARG;
        }
        rc = mdb_env_set_mapsize(st->env, grown);
        /* The map moved (or failed to): find it again before any read. */
        if (st_map_find(st->env, &st->map) != 0 || rc != 0) {
            free(order);
            return rc != 0 ? st_map_err(rc) : FL_STORE_EIO;
        }
        st->map_size = grown;
    }
}
