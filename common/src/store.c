/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the local state store of one partition on LMDB. See store.h for
 * the contract and the reasons (why LMDB, where checksums are verified);
 * the comments here say how. This file opens, closes and discards a
 * store; writing, reading, validation and the format are beside it (see
 * store_int.h).
 *
 * Layout of a store folder: data.mdb and lock.mdb (LMDB), owner.lock (an
 * flock held by the process that has the store open). Two named databases:
 * "docs" (id -> 8-byte checksum + record) and "meta" (one key, "partition",
 * the encoded fl_store_meta_t with its own checksum). Every batch is one
 * write transaction that updates both, so the metadata always describes
 * exactly the documents beside it.
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

#include "flushline/errors.h"

const char *fl_store_strerror(int err)
{
    /* by -err */
    static const char *const text[] = {"success",
                                       "out of memory",
                                       "invalid argument",
                                       "I/O or LMDB error",
                                       "store corrupted",
                                       "store full (map_size_max reached)",
                                       "not found",
                                       "store open in another process"};
    return FL_NAME_AT(text, -(long)err, "unknown store error");
}

const char *fl_store_verdict_name(fl_store_verdict_t v)
{
    static const char *const names[] = {"valid",          "missing",     "wrong format",
                                        "other topic set", "ahead of Kafka", "events gone",
                                        "corrupted"};
    return FL_NAME_AT(names, (long)v, "unknown verdict");
}

static size_t align_up(size_t n)
{
    return (n + MAP_ALIGN - 1) / MAP_ALIGN * MAP_ALIGN;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return -1;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        path[i] = c;
    }
    return 0;
}


int fl_store_path(char *out, size_t size, const char *state_dir, const fl_store_topics_t *topics)
{
    int n = snprintf(out, size, "%s/%s.%d", state_dir, topics->commands, (int)topics->partition);
    return n < 0 || (size_t)n >= size ? FL_STORE_EARG : 0;
}

/* ---- open and close ------------------------------------------------------ */

/* Opens both databases when they exist and reads the metadata. */
static int load_meta(fl_store_t *st, char *errstr, size_t errstr_size)
{
    MDB_txn *txn;
    MDB_val k = {sizeof META_KEY - 1, (void *)META_KEY}, v;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "reading the store: %s", mdb_strerror(rc));
        return st_map_err(rc);
    }
    rc = mdb_dbi_open(txn, "meta", 0, &st->meta);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "docs", 0, &st->docs);
    if (rc == MDB_NOTFOUND) { /* created, never committed a batch */
        mdb_txn_abort(txn);
        return 0;
    }
    if (rc == 0)
        rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0) {
        char why[128];
        if (!st_value_in_map(&st->map, st_map_used(st->env, &st->map), &v) ||
            st_meta_decode(v.mv_data, v.mv_size, &st->m, why, sizeof why) != FL_STORE_VALID) {
            snprintf(errstr, errstr_size, "the store's metadata is unreadable: discard it");
            mdb_txn_abort(txn);
            return FL_STORE_ECORRUPT;
        }
        st->have_meta = true;
    } else if (rc != MDB_NOTFOUND) {
        snprintf(errstr, errstr_size, "reading the store's metadata: %s", mdb_strerror(rc));
        mdb_txn_abort(txn);
        return st_map_err(rc);
    }
    /* Committing a read transaction keeps its database handles open. */
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "reading the store: %s", mdb_strerror(rc));
        return st_map_err(rc);
    }
    st->have_dbis = true;
    return 0;
}

/* Makes dir and takes owner.lock in it: one process has a store open. */
static int take_lock(fl_store_t *st, const char *dir, char *errstr, size_t errstr_size)
{
    char path[4096];
    if (make_dirs(dir) != 0) {
        snprintf(errstr, errstr_size, "creating %s: %s", dir, strerror(errno));
        return -1;
    }
    if (snprintf(path, sizeof path, "%s/owner.lock", dir) >= (int)sizeof path) {
        snprintf(errstr, errstr_size, "path too long");
        return -1;
    }
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        snprintf(errstr, errstr_size, "opening %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(errstr, errstr_size, "%s: busy (open in another process): %s", dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Creates the LMDB environment and opens it on dir. */
static int open_env(fl_store_t *st, const char *dir, char *errstr, size_t errstr_size)
{
    unsigned flags = MDB_NOTLS;
    int rc;
    switch (st->cfg.sync) {
    case FL_STORE_SYNC_FULL:
        break;
    case FL_STORE_SYNC_NONE:
        flags |= MDB_NOSYNC;
        break;
    default:
        flags |= MDB_NOMETASYNC;
        break;
    }
    if ((rc = mdb_env_create(&st->env)) != 0 || (rc = mdb_env_set_maxdbs(st->env, 2)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, st->map_size)) != 0) {
        snprintf(errstr, errstr_size, "LMDB: %s", mdb_strerror(rc));
        return -1;
    }
    if ((rc = mdb_env_open(st->env, dir, flags, 0644)) != 0) {
        snprintf(errstr, errstr_size, "opening the store in %s: %s%s", dir, mdb_strerror(rc),
                 rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? " (discard it)" : "");
        return -1;
    }
    return 0;
}

/* A store that grew before: LMDB maps just its used pages; take the
 * size the doublings from map_size reached instead, so the first
 * write does not have to grow it again. */
static void adopt_map_size(fl_store_t *st)
{
    MDB_envinfo info;
    size_t max = st->cfg.map_size_max;
    if (mdb_env_info(st->env, &info) != 0 || info.me_mapsize <= st->map_size)
        return;
    size_t size = st->map_size;
    while (size < info.me_mapsize && size <= SIZE_MAX / 2)
        size *= 2;
    if (max && size > max)
        size = max > info.me_mapsize ? max : info.me_mapsize;
    if (mdb_env_set_mapsize(st->env, size) == 0)
        st->map_size = size;
    else
        st->map_size = info.me_mapsize;
}

fl_store_t *fl_store_open(const char *dir, const fl_store_config_t *cfg, char *errstr,
                          size_t errstr_size)
{
    fl_store_t *st = calloc(1, sizeof *st);

    if (!st) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    st->lock_fd = -1;
    if (sodium_init() < 0) {
        snprintf(errstr, errstr_size, "libsodium failed to initialise");
        goto fail;
    }
    st->cfg = *cfg;
    snprintf(st->writer, sizeof st->writer, "%s", cfg->writer ? cfg->writer : "");
    st->cfg.writer = st->writer;
    if (!st->cfg.trim_bytes)
        st->cfg.trim_bytes = DEFAULT_TRIM_BYTES;
    st->map_size = align_up(cfg->map_size ? cfg->map_size : DEFAULT_MAP_SIZE);
    if (cfg->map_size_max && st->map_size > cfg->map_size_max) {
        snprintf(errstr, errstr_size, "map_size %zu is above map_size_max %zu", st->map_size,
                 cfg->map_size_max);
        goto fail;
    }
    if (take_lock(st, dir, errstr, errstr_size) != 0 ||
        open_env(st, dir, errstr, errstr_size) != 0)
        goto fail;
    adopt_map_size(st);
    if (st_map_find(st->env, &st->map) != 0) {
        snprintf(errstr, errstr_size, "cannot find the store's mapping");
        goto fail;
    }
    int dead;
    (void)mdb_reader_check(st->env, &dead); /* readers killed before they ended */
    if (load_meta(st, errstr, errstr_size) != 0)
        goto fail;
    return st;
fail:
    fl_store_close(st);
    return NULL;
}

void fl_store_close(fl_store_t *st)
{
    if (!st)
        return;
    if (st->rtxn)
        mdb_txn_abort(st->rtxn);
    if (st->env)
        mdb_env_close(st->env);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the flock */
    free(st);
}

int fl_store_meta(const fl_store_t *st, fl_store_meta_t *meta)
{
    if (!st->have_meta)
        return FL_STORE_ENOTFOUND;
    *meta = st->m;
    return 0;
}

uint64_t fl_store_count(const fl_store_t *st)
{
    return st->have_meta ? st->m.docs : 0;
}

uint64_t fl_store_bytes(const fl_store_t *st)
{
    return st->have_meta ? st->m.bytes : 0;
}

size_t fl_store_map_size(const fl_store_t *st)
{
    return st->map_size;
}
/* ---- discard ------------------------------------------------------------- */

/* Deletes the files in dir (a store folder has no subfolders) and dir. */
static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
            rc = -1;
    }
    closedir(d);
    if (rmdir(dir) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

/* Deletes "<dir>.discard-*" siblings: discards a crash interrupted. */
static int remove_leftovers(const char *dir)
{
    char parent[4096], path[4096];
    const char *base;
    char *slash;
    int rc = 0;

    if (snprintf(parent, sizeof parent, "%s", dir) >= (int)sizeof parent)
        return -1;
    slash = strrchr(parent, '/');
    if (!slash) {
        base = dir;
        strcpy(parent, ".");
    } else {
        base = dir + (slash - parent) + 1;
        slash[slash == parent ? 1 : 0] = '\0';
    }
    DIR *d = opendir(parent);
    struct dirent *de;
    size_t blen = strlen(base), tlen = strlen(DISCARD_TAG);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, base, blen) != 0 ||
            strncmp(de->d_name + blen, DISCARD_TAG, tlen) != 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", parent, de->d_name) >= (int)sizeof path ||
            remove_tree(path) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int fl_store_discard(const char *dir)
{
    static atomic_uint counter;
    char path[4096], away[4096];
    struct stat sb;
    int fd = -1, rc = FL_STORE_EIO;

    if (!dir || !*dir || strlen(dir) > sizeof path - 64)
        return FL_STORE_EARG;
    if (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/') {
        /* "x/" is renamed as "x" */
        snprintf(away, sizeof away, "%.*s", (int)strlen(dir) - 1, dir);
        return fl_store_discard(away);
    }
    if (stat(dir, &sb) != 0) {
        if (errno != ENOENT)
            return FL_STORE_EIO;
        return remove_leftovers(dir) == 0 ? 0 : FL_STORE_EIO;
    }
    snprintf(path, sizeof path, "%s/owner.lock", dir);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return FL_STORE_EBUSY;
    }
    snprintf(away, sizeof away, "%s" DISCARD_TAG "%ld-%u", dir, (long)getpid(),
             atomic_fetch_add(&counter, 1));
    /* The rename is the commit point: from here the store is missing. */
    if (rename(dir, away) != 0)
        goto fail;
    rc = remove_tree(away) == 0 && remove_leftovers(dir) == 0 ? 0 : FL_STORE_EIO;
fail:
    if (fd >= 0)
        close(fd);
    return rc;
}
