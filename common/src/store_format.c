/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_format: the checksums (keyed shorthash over id and record), the
 * metadata record with its own checksum, and the helpers that find where
 * LMDB mapped the data file so every value read can be checked to lie
 * inside the used pages before it is touched.
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

/* Fixed keys: the checksum detects errors, it authenticates nothing. */
static const unsigned char k_rec[crypto_shorthash_KEYBYTES] = "flushline.store.";
static const unsigned char k_id[crypto_shorthash_KEYBYTES] = "flushline.ids...";

uint64_t st_load64(const void *p)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

void st_store64(void *p, uint64_t v)
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
    return st_load64(out);
}

/* A value's checksum: over its id and its record, so that a record found
 * under another id fails too. */
uint64_t st_value_sum(const void *id, size_t idlen, const void *rec, size_t len)
{
    return hash_with(k_rec, rec, len) ^ st_id_sum(id, idlen);
}

uint64_t st_id_sum(const char *id, size_t idlen)
{
    return hash_with(k_id, id, idlen);
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
    st_store64(b, v);
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
 * the four names with u16 lengths, and a checksum of all that (META_MAX
 * bytes at most). */

size_t st_meta_encode(const fl_store_meta_t *m, unsigned char *out)
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
    uint64_t v = st_load64(r->p + r->pos);
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
fl_store_verdict_t st_meta_decode(const void *p, size_t n, fl_store_meta_t *m, char *why,
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
    if (n < 16 || hash_with(k_rec, b, n - 8) != st_load64(b + n - 8)) {
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

bool st_topics_equal(const fl_store_topics_t *a, const fl_store_topics_t *b)
{
    return a->partition == b->partition && strcmp(a->commands, b->commands) == 0 &&
           strcmp(a->events, b->events) == 0 && strcmp(a->snapshots, b->snapshots) == 0;
}

/* ---- helpers ------------------------------------------------------------- */

int st_map_err(int rc)
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

/* Finds where LMDB mapped the data file. LMDB does not say
 * (mdb_env_info's me_mapaddr is only set for MDB_FIXEDMAP), so it is
 * looked up in /proc/self/maps by the file's device and inode, again
 * whenever the map may have moved (it is resized). */
int st_map_find(MDB_env *env, map_t *map)
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
size_t st_map_used(MDB_env *env, const map_t *map)
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
bool st_value_in_map(const map_t *map, size_t used, const MDB_val *v)
{
    const char *p = v->mv_data;
    return p >= map->lo && (size_t)(p - map->lo) <= used &&
           v->mv_size <= used - (size_t)(p - map->lo);
}

/* Checks a docs entry read in a read transaction: in the map (the key
 * too when LMDB returned it: key_in_map), long enough, and with verify
 * its checksum. *h gets the stored checksum. */
bool st_value_ok(const map_t *map, size_t used, const MDB_val *k, bool key_in_map,
                     const MDB_val *v, bool verify, uint64_t *h)
{
    if (k->mv_size == 0 || k->mv_size > FL_STORE_ID_MAX || v->mv_size < SUM_LEN ||
        (key_in_map && !st_value_in_map(map, used, k)) || !st_value_in_map(map, used, v))
        return false;
    *h = st_load64(v->mv_data);
    return !verify || st_value_sum(k->mv_data, k->mv_size, (const char *)v->mv_data + SUM_LEN,
                                v->mv_size - SUM_LEN) == *h;
}

void st_maybe_trim(fl_store_t *st, size_t n)
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
