/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_read: reading one document and iterating over all of them, each
 * value checked against the map and its checksum before it is handed out.
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

/* ---- reading ------------------------------------------------------------- */

int fl_store_get(fl_store_t *st, const char *id, size_t idlen, char **rec, size_t *len)
{
    MDB_val k = {idlen, (void *)id}, v;
    uint64_t h;
    int rc;

    if (!id || idlen == 0 || idlen > FL_STORE_ID_MAX)
        return FL_STORE_EARG;
    if (!st->have_dbis)
        return FL_STORE_ENOTFOUND;
    rc = st->rtxn ? mdb_txn_renew(st->rtxn) : mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn);
    if (rc != 0) {
        if (st->rtxn) {
            mdb_txn_abort(st->rtxn);
            st->rtxn = NULL;
        }
        return st_map_err(rc);
    }
    rc = mdb_get(st->rtxn, st->docs, &k, &v);
    if (rc != 0) {
        rc = st_map_err(rc);
    } else if (!st_value_ok(&st->map, st_map_used(st->env, &st->map), &k, false, &v, true, &h)) {
        rc = FL_STORE_ECORRUPT;
    } else if (!(*rec = malloc(v.mv_size - SUM_LEN ? v.mv_size - SUM_LEN : 1))) {
        rc = FL_STORE_ENOMEM;
    } else {
        *len = v.mv_size - SUM_LEN;
        memcpy(*rec, (const char *)v.mv_data + SUM_LEN, *len);
        st_maybe_trim(st, v.mv_size);
    }
    mdb_txn_reset(st->rtxn);
    return rc;
}

struct fl_store_iter_s {
    fl_store_t *st;
    MDB_txn *txn;
    MDB_cursor *cur;
    fl_store_meta_t m; /* as of this iterator's transaction */
    bool have_meta, started, done;
    size_t used; /* map_used when the transaction began */
    uint64_t docs, bytes, sum, idsum;
    char last[FL_STORE_ID_MAX];
    size_t lastlen;
};

fl_store_iter_t *fl_store_iter_new(fl_store_t *st, int *err)
{
    fl_store_iter_t *it = calloc(1, sizeof *it);
    int rc;
    if (!it) {
        *err = FL_STORE_ENOMEM;
        return NULL;
    }
    it->st = st;
    if (!st->have_dbis) {
        it->done = true; /* never written: nothing to see */
        st->iters++;
        return it;
    }
    if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &it->txn)) != 0 ||
        (rc = mdb_cursor_open(it->txn, st->docs, &it->cur)) != 0) {
        *err = st_map_err(rc);
        if (it->txn)
            mdb_txn_abort(it->txn);
        free(it);
        return NULL;
    }
    MDB_val k = {sizeof META_KEY - 1, (void *)META_KEY}, v;
    char why[128];
    it->used = st_map_used(st->env, &st->map);
    if (mdb_get(it->txn, st->meta, &k, &v) == 0 && st_value_in_map(&st->map, it->used, &v) &&
        st_meta_decode(v.mv_data, v.mv_size, &it->m, why, sizeof why) == FL_STORE_VALID)
        it->have_meta = true;
    st->iters++;
    return it;
}

int fl_store_iter_next(fl_store_iter_t *it, const char **id, size_t *idlen, const char **rec,
                       size_t *len)
{
    MDB_val k, v;
    uint64_t h;
    int rc;

    if (it->done)
        return 0;
    rc = mdb_cursor_get(it->cur, &k, &v, it->started ? MDB_NEXT : MDB_FIRST);
    it->started = true;
    if (rc == MDB_NOTFOUND) {
        it->done = true;
        /* Every document was seen: they must be those the metadata counts. */
        if (!it->have_meta || it->docs != it->m.docs || it->bytes != it->m.bytes ||
            it->sum != it->m.sum || it->idsum != it->m.idsum)
            return FL_STORE_ECORRUPT;
        return 0;
    }
    if (rc != 0)
        return st_map_err(rc);
    if (!st_value_ok(&it->st->map, it->used, &k, true, &v, true, &h))
        return FL_STORE_ECORRUPT;
    /* Ids come in strictly increasing order (LMDB's default comparison:
     * memcmp, shorter first); anything else is a damaged tree. */
    if (it->docs > 0) {
        size_t n = it->lastlen < k.mv_size ? it->lastlen : k.mv_size;
        int c = memcmp(it->last, k.mv_data, n);
        if (c > 0 || (c == 0 && it->lastlen >= k.mv_size))
            return FL_STORE_ECORRUPT;
    }
    memcpy(it->last, k.mv_data, k.mv_size);
    it->lastlen = k.mv_size;
    it->docs++;
    it->bytes += v.mv_size - SUM_LEN;
    it->sum ^= h;
    it->idsum ^= st_id_sum(k.mv_data, k.mv_size);
    if (it->have_meta && it->docs > it->m.docs)
        return FL_STORE_ECORRUPT;
    *id = k.mv_data;
    *idlen = k.mv_size;
    *rec = (const char *)v.mv_data + SUM_LEN;
    *len = v.mv_size - SUM_LEN;
    st_maybe_trim(it->st, v.mv_size + k.mv_size);
    return 1;
}

void fl_store_iter_free(fl_store_iter_t *it)
{
    if (!it)
        return;
    if (it->cur)
        mdb_cursor_close(it->cur);
    if (it->txn)
        mdb_txn_abort(it->txn);
    it->st->iters--;
    free(it);
}
