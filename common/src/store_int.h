/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_int: internals shared by the store's files: store.c opens, closes
 * and discards a store, store_write.c writes batches, store_read.c reads
 * (get, iterate), store_check.c validates a store in a child process,
 * store_format.c holds the checksums, the metadata record and the helpers
 * that find what LMDB mapped. See store.h for the contract.
 */
#ifndef FL_STORE_INT_H
#define FL_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "flushline/store.h"


#define DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define DEFAULT_TRIM_BYTES ((size_t)32 << 20)
#define MAP_ALIGN ((size_t)1 << 20)
#define SUM_LEN 8
#define META_KEY "partition"
#define META_MAGIC "FLST"
#define DISCARD_TAG ".discard-"
/* The metadata record's size is bounded (4 names of at most 255 bytes). */
#define META_MAX (8 + 8 * 8 + 4 * (2 + 255) + 8)

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

/* Little-endian 64-bit load and store. */
uint64_t st_load64(const void *p);
void st_store64(void *p, uint64_t v);
/* A value's checksum: over its id and its record, so that a record found
 * under another id fails too. */
uint64_t st_value_sum(const void *id, size_t idlen, const void *rec, size_t len);
/* An id's checksum (the ids' xor is kept in the metadata). */
uint64_t st_id_sum(const char *id, size_t idlen);
/* Encodes m with its checksum into out; returns its length. */
size_t st_meta_encode(const fl_store_meta_t *m, unsigned char *out);
/* FL_STORE_VALID, FL_STORE_FORMAT (not ours, or another version) or
 * FL_STORE_CORRUPT (ours, but the checksum or the layout fails). */
fl_store_verdict_t st_meta_decode(const void *p, size_t n, fl_store_meta_t *m, char *why,
                                  size_t why_size);
bool st_topics_equal(const fl_store_topics_t *a, const fl_store_topics_t *b);
/* An LMDB error as an FL_STORE_E* code. */
int st_map_err(int rc);
/* Finds where LMDB mapped the data file. LMDB does not say
 * (mdb_env_info's me_mapaddr is only set for MDB_FIXEDMAP), so it is
 * looked up in /proc/self/maps by the file's device and inode, again
 * whenever the map may have moved (it is resized). */
int st_map_find(MDB_env *env, map_t *map);
/* The bytes LMDB may hand out: those of the used pages of the file, from
 * the map's start. Taken once per read transaction (pages only ever get
 * added, so the newest meta page's count covers any older snapshot). */
size_t st_map_used(MDB_env *env, const map_t *map);
/* A value outside the used pages comes from a corrupted node: reading it
 * could fault. */
bool st_value_in_map(const map_t *map, size_t used, const MDB_val *v);
/* Checks a docs entry read in a read transaction: in the map (the key
 * too when LMDB returned it: key_in_map), long enough, and with verify
 * its checksum. *h gets the stored checksum. */
bool st_value_ok(const map_t *map, size_t used, const MDB_val *k, bool key_in_map,
                 const MDB_val *v, bool verify, uint64_t *h);
/* Counts n bytes read; past trim_bytes, drops the read pages from the
 * page cache. */
void st_maybe_trim(fl_store_t *st, size_t n);

#endif
