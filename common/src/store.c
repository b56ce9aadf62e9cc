/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the local state store of one partition on LMDB. See store.h for
 * the contract and the reasons (why LMDB, where checksums are verified);
 * the comments here say how.
 *
 * Layout of a store folder: data.mdb and lock.mdb (LMDB), owner.lock (an
 * flock held by the process that has the store open). Two named databases:
 * "docs" (id -> 8-byte checksum + record) and "meta" (one key, "partition",
 * the encoded fl_store_meta_t with its own checksum). Every batch is one
 * write transaction that updates both, so the metadata always describes
 * exactly the documents beside it.
 */
#include "flushline/store.h"

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

#include <lmdb.h>
#include <sodium.h>

#define DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define DEFAULT_TRIM_BYTES ((size_t)32 << 20)
#define MAP_ALIGN ((size_t)1 << 20)
#define SUM_LEN 8
#define META_KEY "partition"
#define META_MAGIC "FLST"
#define DISCARD_TAG ".discard-"

/* Where LMDB mapped the data file: [lo, lo + len). */
typedef struct map_s {
    const char *lo;
    size_t len;
} map_t;

struct fl_store_s {
    MDB_env *env;
    MDB_dbi docs, meta;
    bool have_dbis;  /* both databases exist (made by the first write) */
    bool have_meta;
    fl_store_meta_t m; /* the metadata of the last committed batch */
    fl_store_config_t cfg;
    char writer[FL_STORE_WRITER_MAX + 1];
    size_t map_size;
    MDB_txn *rtxn; /* kept reset between gets (mdb_txn_renew is cheap) */
    map_t map;     /* where the data file is mapped */
    int lock_fd;
    uint32_t iters; /* open iterators: the map cannot be resized under them */
    size_t read_since_trim;
};

typedef enum { OP_PUT, OP_DEL } op_kind_t;

typedef struct op_s {
    uint8_t kind;
    uint8_t idlen;
    size_t off; /* of id then record in the batch buffer */
    size_t len; /* record bytes */
} op_t;

struct fl_store_batch_s {
    op_t *ops;
    uint32_t n, cap;
    char *buf;
    size_t used, bufcap;
    bool have_offsets;
    fl_store_offsets_t off;
};

const char *fl_store_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case FL_STORE_ENOMEM:
        return "out of memory";
    case FL_STORE_EARG:
        return "invalid argument";
    case FL_STORE_EIO:
        return "I/O or LMDB error";
    case FL_STORE_ECORRUPT:
        return "store corrupted";
    case FL_STORE_EFULL:
        return "store full (map_size_max reached)";
    case FL_STORE_ENOTFOUND:
        return "not found";
    case FL_STORE_EBUSY:
        return "store open in another process";
    default:
        return "unknown store error";
    }
}

const char *fl_store_verdict_name(fl_store_verdict_t v)
{
    switch (v) {
    case FL_STORE_VALID:
        return "valid";
    case FL_STORE_MISSING:
        return "missing";
    case FL_STORE_FORMAT:
        return "wrong format";
    case FL_STORE_TOPICS:
        return "other topic set";
    case FL_STORE_AHEAD:
        return "ahead of Kafka";
    case FL_STORE_GONE:
        return "events gone";
    case FL_STORE_CORRUPT:
        return "corrupted";
    }
    return "unknown verdict";
}

/* ---- checksums and the metadata record ----------------------------------- */

/* Fixed keys: the checksum detects errors, it authenticates nothing. */
static const unsigned char k_rec[crypto_shorthash_KEYBYTES] = "flushline.store.";
static const unsigned char k_id[crypto_shorthash_KEYBYTES] = "flushline.ids...";

static uint64_t load64(const void *p)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static void store64(void *p, uint64_t v)
{
    unsigned char *b = p;
    for (int i = 0; i < 8; i++, v >>= 8)
        b[i] = (unsigned char)v;
}

static uint64_t hash_with(const unsigned char key[crypto_shorthash_KEYBYTES], const void *p,
                          size_t n)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, p, n, key);
    return load64(out);
}

/* A value's checksum: over its id and its record, so that a record found
 * under another id fails too. */
static uint64_t value_sum(const void *id, size_t idlen, const void *rec, size_t len)
{
    return hash_with(k_rec, rec, len) ^ hash_with(k_id, id, idlen);
}

typedef struct wbuf_s {
    unsigned char *p;
    size_t n, cap;
} wbuf_t;

static void w_bytes(wbuf_t *w, const void *p, size_t n)
{
    if (w->n + n <= w->cap)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void w_u64(wbuf_t *w, uint64_t v)
{
    unsigned char b[8];
    store64(b, v);
    w_bytes(w, b, 8);
}

static void w_str(wbuf_t *w, const char *s)
{
    size_t n = strlen(s);
    unsigned char b[2] = {(unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    w_bytes(w, b, 2);
    w_bytes(w, s, n);
}

/* The metadata record: "FLST", format (u32), then little-endian fields,
 * the four names with u16 lengths, and a checksum of all that. Its size
 * is bounded (4 names of at most 255 bytes). */
#define META_MAX (8 + 8 * 8 + 4 * (2 + 255) + 8)

static size_t meta_encode(const fl_store_meta_t *m, unsigned char *out)
{
    wbuf_t w = {out, 0, META_MAX};
    unsigned char hdr[8];
    memcpy(hdr, META_MAGIC, 4);
    hdr[4] = (unsigned char)m->format;
    hdr[5] = (unsigned char)(m->format >> 8);
    hdr[6] = (unsigned char)(m->format >> 16);
    hdr[7] = (unsigned char)(m->format >> 24);
    w_bytes(&w, hdr, 8);
    w_u64(&w, (uint64_t)(int64_t)m->topics.partition);
    w_u64(&w, (uint64_t)m->offsets.commands);
    w_u64(&w, (uint64_t)m->offsets.events);
    w_u64(&w, m->offsets.round);
    w_u64(&w, m->docs);
    w_u64(&w, m->bytes);
    w_u64(&w, m->sum);
    w_u64(&w, m->idsum);
    w_str(&w, m->topics.commands);
    w_str(&w, m->topics.events);
    w_str(&w, m->topics.snapshots);
    w_str(&w, m->writer);
    w_u64(&w, hash_with(k_rec, out, w.n));
    return w.n;
}

typedef struct rbuf_s {
    const unsigned char *p;
    size_t n, pos;
    bool bad;
} rbuf_t;

static uint64_t r_u64(rbuf_t *r)
{
    if (r->n - r->pos < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = load64(r->p + r->pos);
    r->pos += 8;
    return v;
}

static void r_str(rbuf_t *r, char *out, size_t max)
{
    size_t len;
    if (r->n - r->pos < 2) {
        r->bad = true;
        return;
    }
    len = (size_t)r->p[r->pos] | (size_t)r->p[r->pos + 1] << 8;
    r->pos += 2;
    if (len > max || r->n - r->pos < len) {
        r->bad = true;
        return;
    }
    memcpy(out, r->p + r->pos, len);
    out[len] = '\0';
    r->pos += len;
}

/* FL_STORE_VALID, FL_STORE_FORMAT (not ours, or another version) or
 * FL_STORE_CORRUPT (ours, but the checksum or the layout fails). */
static fl_store_verdict_t meta_decode(const void *p, size_t n, fl_store_meta_t *m, char *why,
                                      size_t why_size)
{
    const unsigned char *b = p;
    rbuf_t r = {b, n, 8, false};
    memset(m, 0, sizeof *m);
    if (n < 8 || memcmp(b, META_MAGIC, 4) != 0) {
        snprintf(why, why_size, "the metadata is not a Flushline store's");
        return FL_STORE_FORMAT;
    }
    m->format = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    if (m->format != FL_STORE_FORMAT_VERSION) {
        snprintf(why, why_size, "format version %u, this program reads %u", m->format,
                 FL_STORE_FORMAT_VERSION);
        return FL_STORE_FORMAT;
    }
    if (n < 16 || hash_with(k_rec, b, n - 8) != load64(b + n - 8)) {
        snprintf(why, why_size, "the metadata fails its checksum");
        return FL_STORE_CORRUPT;
    }
    r.n = n - 8;
    m->topics.partition = (int32_t)(int64_t)r_u64(&r);
    m->offsets.commands = (int64_t)r_u64(&r);
    m->offsets.events = (int64_t)r_u64(&r);
    m->offsets.round = r_u64(&r);
    m->docs = r_u64(&r);
    m->bytes = r_u64(&r);
    m->sum = r_u64(&r);
    m->idsum = r_u64(&r);
    r_str(&r, m->topics.commands, FL_STORE_TOPIC_MAX);
    r_str(&r, m->topics.events, FL_STORE_TOPIC_MAX);
    r_str(&r, m->topics.snapshots, FL_STORE_TOPIC_MAX);
    r_str(&r, m->writer, FL_STORE_WRITER_MAX);
    if (r.bad || r.pos != r.n) {
        snprintf(why, why_size, "the metadata record is malformed");
        return FL_STORE_CORRUPT;
    }
    return FL_STORE_VALID;
}

static bool topics_equal(const fl_store_topics_t *a, const fl_store_topics_t *b)
{
    return a->partition == b->partition && strcmp(a->commands, b->commands) == 0 &&
           strcmp(a->events, b->events) == 0 && strcmp(a->snapshots, b->snapshots) == 0;
}

/* ---- helpers ------------------------------------------------------------- */

static int map_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return FL_STORE_ENOTFOUND;
    case MDB_MAP_FULL:
        return FL_STORE_EFULL;
    case ENOMEM:
        return FL_STORE_ENOMEM;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_BAD_TXN:
        return FL_STORE_ECORRUPT;
    default:
        return FL_STORE_EIO;
    }
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

/* Finds where LMDB mapped the data file. LMDB does not say
 * (mdb_env_info's me_mapaddr is only set for MDB_FIXEDMAP), so it is
 * looked up in /proc/self/maps by the file's device and inode, again
 * whenever the map may have moved (it is resized). */
static int map_find(MDB_env *env, map_t *map)
{
    int fd;
    struct stat sb;
    char line[512];
    FILE *f;

    map->lo = NULL;
    map->len = 0;
    if (mdb_env_get_fd(env, &fd) != 0 || fstat(fd, &sb) != 0 || !(f = fopen("/proc/self/maps", "re")))
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, ino;
        unsigned maj, min;
        if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu", &lo, &hi, &off, &maj, &min, &ino) != 6)
            continue;
        if (off == 0 && ino == (unsigned long)sb.st_ino && maj == major(sb.st_dev) &&
            min == minor(sb.st_dev)) {
            map->lo = (const char *)lo;
            map->len = hi - lo;
            break;
        }
    }
    fclose(f);
    return map->lo ? 0 : -1;
}

/* The bytes LMDB may hand out: those of the used pages of the file, from
 * the map's start. Taken once per read transaction (pages only ever get
 * added, so the newest meta page's count covers any older snapshot). */
static size_t map_used(MDB_env *env, const map_t *map)
{
    MDB_envinfo info;
    MDB_stat st;
    if (!map->lo || mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0)
        return 0;
    size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    return used > map->len ? map->len : used;
}

/* A value outside the used pages comes from a corrupted node: reading it
 * could fault. */
static bool value_in_map(const map_t *map, size_t used, const MDB_val *v)
{
    const char *p = v->mv_data;
    return p >= map->lo && (size_t)(p - map->lo) <= used &&
           v->mv_size <= used - (size_t)(p - map->lo);
}

/* Checks a docs entry read in a read transaction: in the map (the key
 * too when LMDB returned it: key_in_map), long enough, and with verify
 * its checksum. *h gets the stored checksum. */
static bool value_ok(const map_t *map, size_t used, const MDB_val *k, bool key_in_map,
                     const MDB_val *v, bool verify, uint64_t *h)
{
    if (k->mv_size == 0 || k->mv_size > FL_STORE_ID_MAX || v->mv_size < SUM_LEN ||
        (key_in_map && !value_in_map(map, used, k)) || !value_in_map(map, used, v))
        return false;
    *h = load64(v->mv_data);
    return !verify || value_sum(k->mv_data, k->mv_size, (const char *)v->mv_data + SUM_LEN,
                                v->mv_size - SUM_LEN) == *h;
}

static void maybe_trim(fl_store_t *st, size_t n)
{
    st->read_since_trim += n;
    if (st->cfg.trim_bytes == SIZE_MAX || st->read_since_trim < st->cfg.trim_bytes)
        return;
    st->read_since_trim = 0;
    if (st->map.lo)
        /* A read-only shared file mapping: dropping its pages loses
         * nothing (they stay in the page cache) and pointers into it
         * stay valid (they fault back in). */
        (void)madvise((void *)st->map.lo, st->map.len, MADV_DONTNEED);
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
        return map_err(rc);
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
        if (!value_in_map(&st->map, map_used(st->env, &st->map), &v) ||
            meta_decode(v.mv_data, v.mv_size, &st->m, why, sizeof why) != FL_STORE_VALID) {
            snprintf(errstr, errstr_size, "the store's metadata is unreadable: discard it");
            mdb_txn_abort(txn);
            return FL_STORE_ECORRUPT;
        }
        st->have_meta = true;
    } else if (rc != MDB_NOTFOUND) {
        snprintf(errstr, errstr_size, "reading the store's metadata: %s", mdb_strerror(rc));
        mdb_txn_abort(txn);
        return map_err(rc);
    }
    /* Committing a read transaction keeps its database handles open. */
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "reading the store: %s", mdb_strerror(rc));
        return map_err(rc);
    }
    st->have_dbis = true;
    return 0;
}

fl_store_t *fl_store_open(const char *dir, const fl_store_config_t *cfg, char *errstr,
                          size_t errstr_size)
{
    fl_store_t *st = calloc(1, sizeof *st);
    char path[4096];
    unsigned flags = MDB_NOTLS;
    int rc;

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
    if (make_dirs(dir) != 0) {
        snprintf(errstr, errstr_size, "creating %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (snprintf(path, sizeof path, "%s/owner.lock", dir) >= (int)sizeof path) {
        snprintf(errstr, errstr_size, "path too long");
        goto fail;
    }
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        snprintf(errstr, errstr_size, "opening %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(errstr, errstr_size, "%s: busy (open in another process): %s", dir,
                 strerror(errno));
        goto fail;
    }
    switch (cfg->sync) {
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
        goto fail;
    }
    if ((rc = mdb_env_open(st->env, dir, flags, 0644)) != 0) {
        snprintf(errstr, errstr_size, "opening the store in %s: %s%s", dir, mdb_strerror(rc),
                 rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? " (discard it)" : "");
        goto fail;
    }
    /* A store that grew before: LMDB maps just its used pages; take the
     * size the doublings from map_size reached instead, so the first
     * write does not have to grow it again. */
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info) == 0 && info.me_mapsize > st->map_size) {
        size_t size = st->map_size;
        while (size < info.me_mapsize && size <= SIZE_MAX / 2)
            size *= 2;
        if (cfg->map_size_max && size > cfg->map_size_max)
            size = cfg->map_size_max > info.me_mapsize ? cfg->map_size_max : info.me_mapsize;
        if (mdb_env_set_mapsize(st->env, size) == 0)
            st->map_size = size;
        else
            st->map_size = info.me_mapsize;
    }
    if (map_find(st->env, &st->map) != 0) {
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
    if (b->n == b->cap) {
        uint32_t ncap = b->cap ? b->cap * 2 : 64;
        op_t *ops = realloc(b->ops, ncap * sizeof *ops);
        if (!ops)
            return FL_STORE_ENOMEM;
        b->ops = ops;
        b->cap = ncap;
    }
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

/* Applies b in id order: B-tree pages are visited once in order, and ids
 * past the last one in the store are appended (MDB_APPEND fills pages
 * instead of splitting them in halves, which a bulk load of ascending ids
 * would otherwise leave half empty). */
static int write_once(fl_store_t *st, const fl_store_batch_t *b, const uint32_t *order,
                      fl_store_meta_t *m)
{
    MDB_txn *txn;
    MDB_dbi docs = st->docs, meta = st->meta;
    MDB_cursor *cur = NULL;
    MDB_val lastk = {0, NULL}, lastv;
    char lastbuf[FL_STORE_ID_MAX];
    int rc;

    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc == MDB_MAP_RESIZED) { /* another process grew it: adopt its size */
        if ((rc = mdb_env_set_mapsize(st->env, 0)) != 0)
            return rc;
        MDB_envinfo info;
        if (mdb_env_info(st->env, &info) == 0)
            st->map_size = info.me_mapsize;
        if (map_find(st->env, &st->map) != 0)
            return EIO;
        rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    }
    if (rc != 0)
        return rc;
    if (!st->have_dbis && ((rc = mdb_dbi_open(txn, "docs", MDB_CREATE, &docs)) != 0 ||
                           (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta)) != 0))
        goto fail;
    if ((rc = mdb_cursor_open(txn, docs, &cur)) != 0)
        goto fail;
    rc = mdb_cursor_get(cur, &lastk, &lastv, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        lastk.mv_size = 0;
    } else if (rc != 0 || lastk.mv_size > FL_STORE_ID_MAX) {
        rc = rc ? rc : MDB_CORRUPTED;
        goto fail;
    } else {
        /* copied: the page it points into may change below */
        memcpy(lastbuf, lastk.mv_data, lastk.mv_size);
        lastk.mv_data = lastbuf;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        const op_t *op = &b->ops[order ? order[i] : i];
        const char *id = b->buf + op->off;
        MDB_val k = {op->idlen, (void *)id}, old;
        bool had = false;
        uint64_t old_sum = 0;

        rc = mdb_get(txn, docs, &k, &old);
        if (rc == 0) {
            /* The stored checksum leaves the sum as it went in: a value
             * that rotted meanwhile is caught by validation, not hidden.
             * (Not checked against the map: a page this transaction
             * already changed is a heap copy.) */
            if (old.mv_size < SUM_LEN) {
                rc = MDB_CORRUPTED;
                goto fail;
            }
            had = true;
            old_sum = load64(old.mv_data);
        } else if (rc != MDB_NOTFOUND) {
            goto fail;
        }
        if (had) {
            m->docs--;
            m->bytes -= old.mv_size - SUM_LEN;
            m->sum ^= old_sum;
            m->idsum ^= hash_with(k_id, id, op->idlen);
        }
        if (op->kind == OP_DEL) {
            if (had && (rc = mdb_del(txn, docs, &k, NULL)) != 0)
                goto fail;
            continue;
        }
        const char *rec = id + op->idlen;
        uint64_t h = value_sum(id, op->idlen, rec, op->len);
        MDB_val v = {op->len + SUM_LEN, NULL};
        bool append = !had && (lastk.mv_size == 0 || key_cmp(id, op->idlen, lastk.mv_data,
                                                              lastk.mv_size) > 0);
        if ((rc = mdb_put(txn, docs, &k, &v, MDB_RESERVE | (append ? MDB_APPEND : 0))) != 0)
            goto fail;
        if (append) {
            lastk.mv_data = (void *)id; /* the batch's copy: stable */
            lastk.mv_size = op->idlen;
        }
        store64(v.mv_data, h);
        memcpy((char *)v.mv_data + SUM_LEN, rec, op->len);
        m->docs++;
        m->bytes += op->len;
        m->sum ^= h;
        m->idsum ^= hash_with(k_id, id, op->idlen);
    }
    unsigned char enc[META_MAX];
    MDB_val mk = {sizeof META_KEY - 1, (void *)META_KEY};
    MDB_val mv = {meta_encode(m, enc), enc};
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
        if (!topics_equal(&st->m.topics, &st->cfg.topics) ||
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
            return map_err(rc);
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
        if (map_find(st->env, &st->map) != 0 || rc != 0) {
            free(order);
            return rc != 0 ? map_err(rc) : FL_STORE_EIO;
        }
        st->map_size = grown;
    }
}

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
        return map_err(rc);
    }
    rc = mdb_get(st->rtxn, st->docs, &k, &v);
    if (rc != 0) {
        rc = map_err(rc);
    } else if (!value_ok(&st->map, map_used(st->env, &st->map), &k, false, &v, true, &h)) {
        rc = FL_STORE_ECORRUPT;
    } else if (!(*rec = malloc(v.mv_size - SUM_LEN ? v.mv_size - SUM_LEN : 1))) {
        rc = FL_STORE_ENOMEM;
    } else {
        *len = v.mv_size - SUM_LEN;
        memcpy(*rec, (const char *)v.mv_data + SUM_LEN, *len);
        maybe_trim(st, v.mv_size);
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
        *err = map_err(rc);
        if (it->txn)
            mdb_txn_abort(it->txn);
        free(it);
        return NULL;
    }
    MDB_val k = {sizeof META_KEY - 1, (void *)META_KEY}, v;
    char why[128];
    it->used = map_used(st->env, &st->map);
    if (mdb_get(it->txn, st->meta, &k, &v) == 0 && value_in_map(&st->map, it->used, &v) &&
        meta_decode(v.mv_data, v.mv_size, &it->m, why, sizeof why) == FL_STORE_VALID)
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
        return map_err(rc);
    if (!value_ok(&it->st->map, it->used, &k, true, &v, true, &h))
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
    it->idsum ^= hash_with(k_id, k.mv_data, k.mv_size);
    if (it->have_meta && it->docs > it->m.docs)
        return FL_STORE_ECORRUPT;
    *id = k.mv_data;
    *idlen = k.mv_size;
    *rec = (const char *)v.mv_data + SUM_LEN;
    *len = v.mv_size - SUM_LEN;
    maybe_trim(it->st, v.mv_size + k.mv_size);
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

/* ---- validation ---------------------------------------------------------- */

typedef struct verdict_msg_s {
    int verdict;
    bool have_meta;
    fl_store_meta_t meta;
    char reason[256];
} verdict_msg_t;

/* The whole check, in the child. */
static void check_store(const char *dir, const fl_store_expect_t *exp, verdict_msg_t *out)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi docs, meta;
    char path[4096];
    struct stat sb;
    int rc;

    out->verdict = FL_STORE_CORRUPT;
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path) {
        snprintf(out->reason, sizeof out->reason, "path too long");
        return;
    }
    if (stat(path, &sb) != 0) {
        out->verdict = FL_STORE_MISSING;
        snprintf(out->reason, sizeof out->reason, "no store in %s", dir);
        return;
    }
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 2)) != 0 ||
        (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644)) != 0) {
        snprintf(out->reason, sizeof out->reason, "LMDB cannot open it: %s", mdb_strerror(rc));
        goto done;
    }
    /* LMDB maps the file and trusts its last page number: past the end of
     * a truncated file a read would fault (SIGBUS). */
    MDB_envinfo info;
    MDB_stat est;
    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &est) != 0 ||
        (uint64_t)(info.me_last_pgno + 1) * est.ms_psize > (uint64_t)sb.st_size) {
        snprintf(out->reason, sizeof out->reason, "the file is shorter than its last page");
        goto done;
    }
    map_t map;
    if (map_find(env, &map) != 0) {
        snprintf(out->reason, sizeof out->reason, "cannot find the store's mapping");
        goto done;
    }
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
        snprintf(out->reason, sizeof out->reason, "LMDB: %s", mdb_strerror(rc));
        goto done;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "docs", 0, &docs);
    MDB_val mk = {sizeof META_KEY - 1, (void *)META_KEY}, mv;
    if (rc == 0)
        rc = mdb_get(txn, meta, &mk, &mv);
    if (rc == MDB_NOTFOUND) {
        out->verdict = FL_STORE_MISSING;
        snprintf(out->reason, sizeof out->reason, "the store never committed a batch");
        goto done;
    }
    if (rc != 0) {
        snprintf(out->reason, sizeof out->reason, "reading the metadata: %s", mdb_strerror(rc));
        goto done;
    }
    size_t used = map_used(env, &map);
    if (!value_in_map(&map, used, &mv)) {
        snprintf(out->reason, sizeof out->reason, "the metadata lies outside the file");
        goto done;
    }
    out->verdict = meta_decode(mv.mv_data, mv.mv_size, &out->meta, out->reason,
                               sizeof out->reason);
    if (out->verdict != FL_STORE_VALID)
        goto done;
    out->have_meta = true;
    const fl_store_meta_t *m = &out->meta;
    const fl_store_offsets_t *o = &m->offsets;
    out->verdict = FL_STORE_TOPICS;
    if (!topics_equal(&m->topics, &exp->topics)) {
        snprintf(out->reason, sizeof out->reason, "the store is of %s/%s/%s [%d]",
                 m->topics.commands, m->topics.events, m->topics.snapshots,
                 (int)m->topics.partition);
        goto done;
    }
    out->verdict = FL_STORE_AHEAD;
    if (o->commands > (exp->committed < 0 ? 0 : exp->committed)) {
        snprintf(out->reason, sizeof out->reason,
                 "the store reflects commands up to offset %lld, Kafka committed %lld",
                 (long long)o->commands, (long long)exp->committed);
        goto done;
    }
    if (exp->events_end >= 0 && o->events > exp->events_end) {
        snprintf(out->reason, sizeof out->reason,
                 "the store reflects events up to offset %lld, the partition ends at %lld",
                 (long long)o->events, (long long)exp->events_end);
        goto done;
    }
    out->verdict = FL_STORE_GONE;
    if (exp->events_start >= 0 && o->events < exp->events_start) {
        snprintf(out->reason, sizeof out->reason,
                 "the events from offset %lld are needed, the partition starts at %lld",
                 (long long)o->events, (long long)exp->events_start);
        goto done;
    }

    /* The scan: every id in order and found again by a lookup from the
     * root (a damaged branch page can hide a key from lookups while the
     * scan, which walks siblings, still sees it), the totals (count,
     * bytes, XOR of the stored checksums) against the metadata, and with
     * verify_records every record's checksum. */
    out->verdict = FL_STORE_CORRUPT;
    uint64_t n = 0, bytes = 0, sum = 0, idsum = 0, h;
    MDB_val k, v, again;
    char last[FL_STORE_ID_MAX];
    size_t lastlen = 0;
    if ((rc = mdb_cursor_open(txn, docs, &cur)) != 0) {
        snprintf(out->reason, sizeof out->reason, "LMDB: %s", mdb_strerror(rc));
        goto done;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!value_ok(&map, used, &k, true, &v, exp->verify_records, &h)) {
            snprintf(out->reason, sizeof out->reason, "document %llu fails its checksum",
                     (unsigned long long)n);
            goto done;
        }
        if (n > 0) {
            size_t c = lastlen < k.mv_size ? lastlen : k.mv_size;
            int d = memcmp(last, k.mv_data, c);
            if (d > 0 || (d == 0 && lastlen >= k.mv_size)) {
                snprintf(out->reason, sizeof out->reason, "document ids out of order");
                goto done;
            }
        }
        memcpy(last, k.mv_data, k.mv_size);
        lastlen = k.mv_size;
        if (mdb_get(txn, docs, &k, &again) != 0 || again.mv_data != v.mv_data) {
            snprintf(out->reason, sizeof out->reason, "document %llu cannot be looked up",
                     (unsigned long long)n);
            goto done;
        }
        if (++n > m->docs) {
            snprintf(out->reason, sizeof out->reason, "more documents than the metadata's %llu",
                     (unsigned long long)m->docs);
            goto done;
        }
        bytes += v.mv_size - SUM_LEN;
        sum ^= h;
        idsum ^= hash_with(k_id, k.mv_data, k.mv_size);
    }
    if (rc != MDB_NOTFOUND) {
        snprintf(out->reason, sizeof out->reason, "scanning: %s", mdb_strerror(rc));
        goto done;
    }
    if (n != m->docs || bytes != m->bytes || sum != m->sum || idsum != m->idsum) {
        snprintf(out->reason, sizeof out->reason,
                 "%llu documents of %llu bytes do not match the metadata (%llu, %llu%s%s)",
                 (unsigned long long)n, (unsigned long long)bytes, (unsigned long long)m->docs,
                 (unsigned long long)m->bytes, sum != m->sum ? ", checksum sum differs" : "",
                 idsum != m->idsum ? ", id sum differs" : "");
        goto done;
    }
    out->verdict = FL_STORE_VALID;
    snprintf(out->reason, sizeof out->reason, "%llu documents, commands %lld, events %lld",
             (unsigned long long)n, (long long)o->commands, (long long)o->events);
done:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fl_store_validate(const char *dir, const fl_store_expect_t *exp, int timeout_ms,
                      fl_store_meta_t *meta, char *reason, size_t reason_size)
{
    verdict_msg_t msg;
    int fds[2], status;
    pid_t pid;
    size_t got = 0;

    if (sodium_init() < 0 || pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(reason, reason_size, "cannot check: %s", strerror(errno));
        return FL_STORE_EIO;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(reason, reason_size, "cannot check: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return FL_STORE_EIO;
    }
    if (pid == 0) {
        /* The child: check, report in one write (below PIPE_BUF, so
         * atomic), and leave without atexit handlers (the parent's). */
        static verdict_msg_t out;
        close(fds[0]);
        memset(&out, 0, sizeof out);
        check_store(dir, exp, &out);
        ssize_t w = write(fds[1], &out, sizeof out);
        _exit(w == (ssize_t)sizeof out ? 0 : 1);
    }
    _Static_assert(sizeof(verdict_msg_t) <= PIPE_BUF, "one atomic write");
    close(fds[1]);
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : INT64_MAX;
    while (got < sizeof msg) {
        int64_t left = deadline - now_ms();
        struct pollfd pfd = {fds[0], POLLIN, 0};
        if (left <= 0)
            break;
        int pr = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(fds[0], (char *)&msg + got, sizeof msg - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    if (got < sizeof msg)
        kill(pid, SIGKILL); /* timed out, or it died; either way it is reaped */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got < sizeof msg) {
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
            snprintf(reason, reason_size, "checking the store crashed (signal %d)",
                     WTERMSIG(status));
        else if (now_ms() >= deadline)
            snprintf(reason, reason_size, "checking the store took over %d ms", timeout_ms);
        else
            snprintf(reason, reason_size, "checking the store failed (status %d)", status);
        return FL_STORE_CORRUPT;
    }
    if (meta && msg.have_meta)
        *meta = msg.meta;
    else if (meta)
        memset(meta, 0, sizeof *meta);
    msg.reason[sizeof msg.reason - 1] = '\0';
    snprintf(reason, reason_size, "%s", msg.reason);
    return msg.verdict;
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
