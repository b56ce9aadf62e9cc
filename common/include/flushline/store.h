/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: a processor's local state store for one partition, the Kafka
 * Streams idea (a local store backed by a changelog topic; the `snapshots`
 * topic stays the changelog any machine can restore from). It lives in its
 * own folder under the state folder (fl_store_path) and holds
 *
 *   - documents by id: the value is the encoded snapshot record
 *     core/history produces (fl_history_encode_snapshot), opaque here;
 *   - the partition's metadata, written in the SAME LMDB transaction as the
 *     documents of every batch: the format version, the topic set
 *     (commands, events and snapshots names and the partition), the Kafka
 *     offsets the stored state reflects (commands consumed below, events
 *     reflected below, the snapshot round), the writer's id, and the count,
 *     bytes and order-independent checksums of all documents.
 *
 * Why LMDB (Debian's liblmdb-dev): it is embedded, small (one C file, no
 * threads of its own, no compaction, no tuning) and transactional with one
 * writer and MVCC readers. Its copy-on-write B+tree commits by writing one
 * of two meta pages last, so a crash at any moment (kill -9 included)
 * leaves exactly the last committed transaction: no recovery log to
 * replay, and documents and metadata can never be seen half-written. Reads
 * are zero-copy from a shared read-only mapping, which makes a restore from
 * the store a scan of the file. RocksDB (what Kafka Streams uses) is built
 * for write-heavy LSM workloads and brings C++, background compaction and
 * many knobs; SQLite would work but adds a SQL layer and copies.
 *
 * Integrity. LMDB has no checksums, so each value carries its own: 8 bytes
 * of SipHash-2-4 (libsodium's crypto_shorthash, fixed key: it detects
 * errors, it is no authenticator) over the document id and the record.
 * It is verified on EVERY read (fl_store_get, fl_store_iter_next): no
 * record is ever handed out unchecked, and a document is hashed when it is
 * used, at about 1 GB/s, not before. That alone cannot see a document that
 * vanished (a flipped byte in a B-tree page can make a key unreachable:
 * the processor would then take the document for a new one), nor an id
 * that changed, so the metadata keeps the document count, bytes, the XOR
 * of every value's checksum and the XOR of a hash of every id, and
 * fl_store_validate scans the store's structure against them: every id,
 * in order, hashed, found again by a lookup from the root (the path
 * fl_store_get takes), the totals equal. That scan reads the ids and 8
 * bytes per record, not the record, which keeps a restart from the store cheap; with
 * verify_records it hashes every record too (a full check, about as costly
 * as reading the store). The scan runs in a forked child that opens its
 * own read-only environment: a corrupted file can make LMDB itself read
 * out of bounds, and that must not take the processor down. A store that
 * passed it is sound in structure as of that moment; a record that rots
 * later, or that only a full check would have caught, is refused when it
 * is read (FL_STORE_ECORRUPT), and the caller then discards the store.
 *
 * Crashes. Every step leaves a store that is valid or detected invalid:
 * a batch commits whole or not at all (one LMDB transaction); a store
 * created but never committed has no metadata (MISSING); growing the map
 * happens between transactions (the file only grows); fl_store_discard
 * renames the folder away first (atomic), then deletes.
 *
 * The caller's contract (issue 18): write only committed state, after the
 * Kafka transaction that made it committed, with the offsets it reflects
 * in the same batch; before using a store, validate it against what Kafka
 * committed; on any verdict but VALID, or any error while reading it later,
 * discard it and restore from the topics. Deleting a store is always safe.
 *
 * @locality one thread at a time per store (the partition's thread); an
 * open store holds an exclusive lock on its folder (flock) so that no two
 * processes write one partition's store. fl_store_validate,
 * fl_store_discard and fl_store_path are free functions on a path.
 */
#ifndef FLUSHLINE_STORE_H
#define FLUSHLINE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors (negative), see fl_store_strerror(). */
enum {
    FL_STORE_ENOMEM = -1,
    FL_STORE_EARG = -2,     /* bad argument: id not 1-255 bytes, offsets going backwards,
                               another topic set than the store's, iterators open... */
    FL_STORE_EIO = -3,      /* the file system or LMDB failed (errstr / log says why) */
    FL_STORE_ECORRUPT = -4, /* a checksum or an LMDB structure check failed: discard */
    FL_STORE_EFULL = -5,    /* the map reached map_size_max */
    FL_STORE_ENOTFOUND = -6,
    FL_STORE_EBUSY = -7,    /* another process holds the store open */
};
const char *fl_store_strerror(int err);

/* The store's format version (fl_store_meta_t.format). A store of another
 * format is invalid (FL_STORE_FORMAT). */
#define FL_STORE_FORMAT_VERSION 1u
/* Kafka topic names are at most 249 bytes. */
#define FL_STORE_TOPIC_MAX 249
#define FL_STORE_WRITER_MAX 255
#define FL_STORE_ID_MAX 255

/* The topic set a store belongs to: names as the processor uses them
 * (prefix included) and the partition. */
typedef struct fl_store_topics_s {
    char commands[FL_STORE_TOPIC_MAX + 1];
    char events[FL_STORE_TOPIC_MAX + 1];
    char snapshots[FL_STORE_TOPIC_MAX + 1];
    int32_t partition;
} fl_store_topics_t;

/* The Kafka state the stored documents reflect. */
typedef struct fl_store_offsets_s {
    int64_t commands; /* every commands record below it is applied (a consumer position) */
    int64_t events;   /* every events record below it is reflected (snapshot events_offset) */
    uint64_t round;   /* the snapshot round the store was written after */
} fl_store_offsets_t;

typedef struct fl_store_meta_s {
    uint32_t format;
    fl_store_topics_t topics;
    fl_store_offsets_t offsets;
    char writer[FL_STORE_WRITER_MAX + 1]; /* who wrote the last batch (a transactional.id) */
    uint64_t docs;                        /* documents stored */
    uint64_t bytes;                       /* their record bytes (ids and checksums excluded) */
    uint64_t sum;                         /* XOR of every value's checksum */
    uint64_t idsum;                       /* XOR of a hash of every id */
} fl_store_meta_t;

typedef enum fl_store_sync_e {
    /* One fsync per commit, the meta page not synced: an OS crash or power
     * loss may undo the last commit (the store is then behind Kafka, which
     * is valid), never tear it. The default. */
    FL_STORE_SYNC_DATA = 0,
    /* Two fsyncs per commit: durable. */
    FL_STORE_SYNC_FULL,
    /* No fsync: a process crash loses nothing, an OS crash may corrupt the
     * file (detected by validation). Tests and benchmarks. */
    FL_STORE_SYNC_NONE,
} fl_store_sync_t;

typedef struct fl_store_config_s {
    fl_store_topics_t topics; /* the store's topic set: set by its first batch, then checked */
    const char *writer;       /* recorded with every batch (NULL: "") */
    size_t map_size;          /* initial map size; 0: 64 MiB. Grows x2 when full */
    size_t map_size_max;      /* 0: no limit (FL_STORE_EFULL past it) */
    fl_store_sync_t sync;
    /* After this many bytes read (get, iterate), the mapping's pages are
     * dropped from the process (madvise DONTNEED on the read-only map; they
     * stay in the page cache), so reading a store larger than memory does
     * not grow the RSS a memory budget is measured by. 0: 32 MiB;
     * SIZE_MAX: never. */
    size_t trim_bytes;
} fl_store_config_t;

typedef struct fl_store_s fl_store_t;

/* "<state_dir>/<topics->commands>.<partition>" into out (NUL-terminated).
 * 0, or FL_STORE_EARG when it does not fit. */
int fl_store_path(char *out, size_t size, const char *state_dir, const fl_store_topics_t *topics);

/*
 * Opens the store in folder dir, creating it (and its parents) when
 * missing, and locks it for this process. Opening does not validate: call
 * fl_store_validate first (opening a corrupted file may fault: LMDB
 * trusts its pages). NULL with errstr on failure (the folder is
 * locked by another process: "busy"; LMDB refuses the file: discard it).
 * The config is copied.
 */
fl_store_t *fl_store_open(const char *dir, const fl_store_config_t *cfg, char *errstr,
                          size_t errstr_size);
/* Closes and unlocks; fails no pending batch (batches are the caller's).
 * NULL safe. Iterators must be freed before. */
void fl_store_close(fl_store_t *st);

/* The metadata of the last batch: 0, or FL_STORE_ENOTFOUND before the
 * first batch. */
int fl_store_meta(const fl_store_t *st, fl_store_meta_t *meta);
uint64_t fl_store_count(const fl_store_t *st); /* documents */
uint64_t fl_store_bytes(const fl_store_t *st); /* their record bytes */
size_t fl_store_map_size(const fl_store_t *st);

/* ---- write batches ------------------------------------------------------ */

/*
 * A batch of puts and deletes with the offsets they bring the store to,
 * built in memory (values are copied) and written in one LMDB transaction
 * by fl_store_write. Building it needs no store; it is reusable after
 * fl_store_batch_clear. Operations apply in order (a put then a delete of
 * one id deletes it).
 */
typedef struct fl_store_batch_s fl_store_batch_t;

fl_store_batch_t *fl_store_batch_new(void);
void fl_store_batch_free(fl_store_batch_t *b); /* NULL safe */
void fl_store_batch_clear(fl_store_batch_t *b);
/* 0, FL_STORE_EARG (id not 1-255 bytes) or FL_STORE_ENOMEM. */
int fl_store_batch_put(fl_store_batch_t *b, const char *id, size_t idlen, const void *rec,
                       size_t len);
int fl_store_batch_del(fl_store_batch_t *b, const char *id, size_t idlen);
/* Required before every write: the offsets the store reflects after it. */
void fl_store_batch_offsets(fl_store_batch_t *b, const fl_store_offsets_t *off);
uint32_t fl_store_batch_ops(const fl_store_batch_t *b);

/*
 * Writes b and the metadata (topics from the config, the writer, b's
 * offsets, the new count, bytes and checksum sum) atomically. A full map
 * is grown (doubled, up to map_size_max) and the batch written again.
 * 0, or: FL_STORE_EARG (no offsets set, offsets below the store's, the
 * store belongs to another topic set, an iterator is open while the map
 * must grow), FL_STORE_EFULL, FL_STORE_ECORRUPT (an old value the batch
 * replaces fails its checksum, or LMDB reports corruption), FL_STORE_EIO,
 * FL_STORE_ENOMEM. On error nothing of b is written; b is left as it was.
 */
int fl_store_write(fl_store_t *st, const fl_store_batch_t *b);

/* ---- reads ---------------------------------------------------------------- */

/*
 * The record of document id, checksum verified, copied into a malloc'd
 * buffer (*rec, the caller frees). 0, FL_STORE_ENOTFOUND,
 * FL_STORE_ECORRUPT, FL_STORE_EIO or FL_STORE_ENOMEM.
 */
int fl_store_get(fl_store_t *st, const char *id, size_t idlen, char **rec, size_t *len);

/*
 * Iteration over every document in id order (bytewise), as of the moment
 * the iterator was made (a read transaction: later writes are not seen).
 * Memory stays bounded whatever the store's size: records are read in
 * place from the mapping and the mapping is trimmed (trim_bytes). While an
 * iterator is open the map cannot grow: a write that needs it fails with
 * FL_STORE_EARG.
 */
typedef struct fl_store_iter_s fl_store_iter_t;

/* NULL with *err set (FL_STORE_ENOMEM, FL_STORE_EIO). */
fl_store_iter_t *fl_store_iter_new(fl_store_t *st, int *err);
/*
 * 1 with the next document's id and record (both point into the mapping,
 * valid until the next call on this iterator), 0 at the end, or
 * FL_STORE_ECORRUPT (a checksum failed, or the ids are not in order) /
 * FL_STORE_EIO. At the end, the documents seen are checked against the
 * metadata's count, bytes and checksum sum (FL_STORE_ECORRUPT when they
 * differ).
 */
int fl_store_iter_next(fl_store_iter_t *it, const char **id, size_t *idlen, const char **rec,
                       size_t *len);
void fl_store_iter_free(fl_store_iter_t *it); /* NULL safe */

/* ---- validation and removal ---------------------------------------------- */

/* What a store is good for. */
typedef enum fl_store_verdict_e {
    FL_STORE_VALID = 0, /* use it, then replay events from meta.offsets.events */
    FL_STORE_MISSING,   /* no store, or one that never committed a batch */
    FL_STORE_FORMAT,    /* another format version, or not a Flushline store */
    FL_STORE_TOPICS,    /* another topic set or partition */
    FL_STORE_AHEAD,     /* offsets ahead of what Kafka committed (or of the events
                           partition's end): state Kafka does not have */
    FL_STORE_GONE,      /* the events after the store were deleted (retention) */
    FL_STORE_CORRUPT,   /* LMDB refused the file, a checksum failed, or the documents
                           do not match the metadata */
} fl_store_verdict_t;

const char *fl_store_verdict_name(fl_store_verdict_t v);

/* What the store is checked against. */
typedef struct fl_store_expect_s {
    fl_store_topics_t topics;
    int64_t committed;    /* the group's committed commands offset; -1: none committed */
    int64_t events_start; /* the events partition's log start offset; -1: not checked */
    int64_t events_end;   /* the events partition's end (high watermark); -1: not checked */
    bool verify_records;  /* also hash every record (a full check; see Integrity) */
} fl_store_expect_t;

/*
 * Checks the store in dir, in a forked child that opens it read-only (see
 * Integrity above): the format, the topic set, the offsets against exp
 * (commands <= committed; events within [events_start, events_end]), and
 * a scan of the documents (each id in order and found again by lookup;
 * count, bytes and checksum sum equal to the metadata; with
 * exp->verify_records each record's checksum). Behind
 * Kafka is valid: the caller replays the events after meta.offsets.events.
 * The store may be open in this process meanwhile (the check sees its last
 * commit). timeout_ms bounds the child (0: no bound); a child that times
 * out or dies is CORRUPT.
 *
 * Returns the verdict (>= 0), with meta filled when the metadata could be
 * read (meta may be NULL) and reason saying why in words; or a negative
 * FL_STORE_ error when the check itself could not run (FL_STORE_EIO: fork
 * or pipe failed).
 */
int fl_store_validate(const char *dir, const fl_store_expect_t *exp, int timeout_ms,
                      fl_store_meta_t *meta, char *reason, size_t reason_size);

/*
 * Removes the store in dir: renames the folder to a unique sibling name
 * (atomic: from then on the store is MISSING), then deletes it. Leftovers
 * of an earlier discard interrupted by a crash are deleted too. 0 (also
 * when there was no store), FL_STORE_EBUSY (a process holds it open) or
 * FL_STORE_EIO.
 */
int fl_store_discard(const char *dir);

#endif
