/* SPDX-License-Identifier: Apache-2.0 */
/*
 * history: what the history subcommands (replay, at, verify, reprocess,
 * tail) share. Reading one partition of a topic between two offsets (the
 * one partition reader, flushline/reader.h, with the CLI's signals and
 * progress), progress lines on stderr for long runs, offset/time range
 * arguments, seeding documents from the newest usable snapshots, and the
 * rebuild driver: replaying a partition's outcomes, checking that each
 * document's versions are contiguous and each chain hash matches. The
 * documents, snapshot loading and event replay are the partition module's
 * restore feed (flushline/part.h), over core's history module.
 *
 * @locality the CLI's main thread; one fl_hist_t per command run.
 */
#ifndef FLUSHLINE_CLI_HISTORY_H
#define FLUSHLINE_CLI_HISTORY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "flushline/engine.h"
#include "flushline/limits.h"
#include "flushline/part.h"
#include "flushline/topics.h"
#include "flushline/wire.h"

/* An offset bound meaning "up to the high watermark". */
#define FL_HIST_END INT64_MAX

/* Errors (negative), see fl_hist_strerror(). */
enum {
    FL_HIST_ENOMEM = -1,
    FL_HIST_EKAFKA = -2,   /* the broker did not answer or refused a request */
    FL_HIST_ENOTOPIC = -3, /* a topic does not exist */
    FL_HIST_ERECORD = -4,  /* a record is undecodable or does not belong where it is */
    FL_HIST_EVERSION = -5, /* an outcome does not start at its document's version */
    FL_HIST_ECHAIN = -6,   /* an outcome's chain hash differs from the replayed one */
    FL_HIST_EDELTA = -7,   /* an outcome's commands do not apply to its document */
    FL_HIST_ESTOPPED = -8, /* interrupted (SIGINT/SIGTERM) */
    FL_HIST_ECHECK = -9,   /* a caller's check failed (verify) */
};
const char *fl_hist_strerror(int err);

/* Set by the SIGINT/SIGTERM handler fl_hist_catch_signals() installs. */
extern volatile sig_atomic_t fl_hist_stop;
void fl_hist_catch_signals(void);

typedef struct fl_hist_s {
    const char *cmd; /* "replay", for messages */
    const fl_cli_common_t *common;
    rd_kafka_t *rk;  /* assign-only consumer, read_committed */
    char topic[FL_TOPIC__COUNT][FL_TOPIC_NAME_MAX + 1];
    bool quiet;      /* no progress lines */
    /* progress of the current run */
    uint64_t records;
    int parts_done, parts_total;
    int64_t t_start, t_last;
} fl_hist_t;

/*
 * Connects: a consumer for common's bootstrap (librdkafka props applied)
 * and the topic names of common's prefix. group: the consumer's group.id
 * (NULL: "flushline-cli-<cmd>", never joined nor committed to; reprocess
 * commits its position to its own). Returns an FL_EXIT_* code:
 * FL_EXIT_OK, FL_EXIT_USAGE (bad prefix or setting) or FL_EXIT_UNREACHABLE,
 * with the reason printed on stderr. fl_hist_close() is safe either way.
 */
int fl_hist_open(fl_hist_t *h, const char *cmd, const fl_cli_common_t *common,
                 const char *group);
void fl_hist_close(fl_hist_t *h);
/* fl_hist_open (no group) for the commands that read events and
 * snapshots, with quiet set, checking that both topics exist: FL_EXIT_OK
 * with *n the events partition count and *nsnap (NULL: not wanted) the
 * snapshots', or an FL_EXIT_* code after printing why. */
int fl_hist_open_history(fl_hist_t *h, const char *cmd, const fl_cli_common_t *common,
                         bool quiet, int *n, int *nsnap);

/* Partition count of a topic: > 0, FL_HIST_ENOTOPIC or FL_HIST_EKAFKA. */
int fl_hist_partitions(fl_hist_t *h, const char *topic);
/* Checks that <prefix>.<kind> exists; returns its partition count or, after
 * printing why, a negative FL_EXIT_* code (-FL_EXIT_FAIL for a missing
 * topic, -FL_EXIT_UNREACHABLE). */
int fl_hist_need_topic(fl_hist_t *h, fl_topic_kind_t kind);
/* The partition of a document id (murmur2_random, as every producer). */
int32_t fl_hist_doc_partition(fl_slice_t doc, int partitions);

/* Watermarks (retried while a partition has no leader). 0 or FL_HIST_EKAFKA. */
int fl_hist_watermarks(fl_hist_t *h, const char *topic, int32_t p, int64_t *lo, int64_t *hi);

/*
 * For each of n partitions of topic, the first offset whose record
 * timestamp is >= ts_ms (FL_HIST_END when none). 0 or FL_HIST_EKAFKA.
 */
int fl_hist_offsets_for_time(fl_hist_t *h, const char *topic, int n, int64_t ts_ms,
                             int64_t *out);

/* "P:O,P:O,...": fills out[P] = O for listed partitions (others untouched).
 * 0, or -1 after writing why to errstr (partition >= n, bad number). */
int fl_hist_parse_offsets(const char *arg, int n, int64_t *out, char *errstr, size_t errstr_size);
/* ISO-8601 UTC ("2024-05-01T12:00:00Z", "...T12:00:00.250Z", "2024-05-01",
 * an offset "+02:00") or epoch milliseconds. 0 or -1. */
int fl_hist_parse_time(const char *arg, int64_t *ms);
/* An unsigned decimal. 0 or -1. */
int fl_hist_parse_u64(const char *arg, uint64_t *out);
/* "2024-05-01T12:00:00.250Z" into buf (>= 32 bytes). */
void fl_hist_format_time(int64_t ms, char *buf, size_t size);

/* The range arguments of replay and reprocess, as given (NULL: absent). */
typedef struct fl_hist_range_args_s {
    const char *from_offset, *from_time, *to_offset, *to_time;
} fl_hist_range_args_t;

/* Checks what can be checked without Kafka (one of each pair, valid times,
 * from-time <= to-time). FL_EXIT_OK or FL_EXIT_USAGE after printing why. */
int fl_hist_range_check(const char *cmd, const fl_hist_range_args_t *args);
/*
 * Turns the range into per-partition offsets of topic (n partitions):
 * from[p] (default 0) and to[p] (exclusive, default FL_HIST_END). Times go
 * through offsets_for_times. FL_EXIT_OK, FL_EXIT_USAGE (bad list, or
 * from > to somewhere) or FL_EXIT_UNREACHABLE, after printing why.
 */
int fl_hist_range_resolve(fl_hist_t *h, const char *topic, int n,
                          const fl_hist_range_args_t *args, int64_t *from, int64_t *to);

/* Progress: begin a run over parts partitions, one finished, the end. Lines
 * go to stderr at most once a second, only once a run has lasted a second. */
void fl_hist_progress_begin(fl_hist_t *h, int parts);
void fl_hist_progress_part_done(fl_hist_t *h);
/* Records read so far by a read of its own (flushline/doc_at.h). */
void fl_hist_progress_records(fl_hist_t *h, uint64_t records);
void fl_hist_progress_end(fl_hist_t *h);

/* Called for each record in offset order. 0 goes on, 1 stops the read, a
 * negative value stops it and is returned. */
typedef int (*fl_hist_record_fn)(void *opaque, const rd_kafka_message_t *msg);

/*
 * Reads topic[p] from offset `from` up to min(to, the high watermark read at
 * the start), exclusive. Returns 0 (reached the end), 1 (fn stopped it), fn's
 * negative value, FL_HIST_EKAFKA or FL_HIST_ESTOPPED. With follow, reads on
 * past the high watermark until fn stops it or a signal arrives.
 */
int fl_hist_read(fl_hist_t *h, const char *topic, int32_t p, int64_t from, int64_t to,
                 bool follow, fl_hist_record_fn fn, void *opaque);

/* ---- documents -------------------------------------------------------- */

/* A table of documents (the partition module's: by id, in creation order;
 * the CLI's per-document data in ent->user, freed by free_user, may be
 * NULL), with the engine's default settings. NULL on OOM. */
fl_part_t *fl_hist_docs_new(void (*free_user)(void *user));

/*
 * Reads <prefix>.snapshots[p] and restores (state, version, chain, dedup
 * table) each document's best snapshot per sel into docs (fl_part_select_t:
 * the newest with events_offset <= max_offset and version <= max_version,
 * of one document or all). *checkpoint gets the highest checkpoint
 * events_offset <= sel->max_offset, or -1. Bad snapshot records are
 * reported on stderr with their offset and skipped. 0 or a negative
 * FL_HIST_* error.
 */
int fl_hist_seed(fl_hist_t *h, int32_t p, const fl_part_select_t *sel, fl_part_t *docs,
                 int64_t *checkpoint);

/* Where a rebuild failed, for the caller's message. */
typedef struct fl_hist_pos_s {
    char topic[FL_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int64_t offset;
    char doc[FL_DOC_ID_MAX + 1];
    uint64_t version; /* the outcome's version_after (0 when unknown) */
    char what[512];
} fl_hist_pos_t;

/* Hooks of a rebuild. pre runs before an outcome is replayed (return 1 to
 * stop without replaying it), post after (return 1 to stop). ent->doc is at
 * version_before in pre and at version_after in post. A negative return
 * stops the rebuild and is returned; fill pos->what to say why. */
typedef struct fl_hist_hooks_s {
    int (*pre)(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
               const rd_kafka_message_t *msg, fl_hist_pos_t *pos);
    int (*post)(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
                const rd_kafka_message_t *msg, fl_hist_pos_t *pos);
    void *opaque;
} fl_hist_hooks_t;

typedef struct fl_hist_rebuild_s {
    int32_t partition;
    fl_slice_t only;      /* len 0: every document of the partition */
    int64_t start;        /* documents are seeded to their state at this events offset */
    uint64_t max_version; /* seed only from snapshots at or below this version */
    int64_t to;           /* stop before this offset (FL_HIST_END) */
    bool strict;          /* bad or misplaced records are errors, not warnings */
    fl_hist_hooks_t hooks;
    /* results */
    uint64_t outcomes;    /* outcomes replayed */
    uint64_t bad;         /* bad records skipped (not strict) */
} fl_hist_rebuild_t;

/*
 * Rebuilds the documents of one events partition into docs (cleared
 * first): seeds them from snapshots when rb->start (or the log start) is
 * past offset 0, reads events from the partition checkpoint (or the log
 * start) and replays every outcome with fl_doc_replay, checking contiguous
 * versions and chain hashes; the hooks see every outcome. Returns 0, 1 when
 * a hook stopped it, or a negative FL_HIST_* error with *pos filled.
 */
int fl_hist_rebuild(fl_hist_t *h, fl_hist_rebuild_t *rb, fl_part_t *docs,
                    fl_hist_pos_t *pos);

/* Prints why a rebuild of partition p failed (err, with *pos when it names
 * a record) on stderr; returns the exit code (FL_EXIT_UNREACHABLE for
 * FL_HIST_EKAFKA, else FL_EXIT_FAIL). */
int fl_hist_rebuild_failed(const fl_hist_t *h, int32_t p, int err, const fl_hist_pos_t *pos);

/* Lowercase hex into a json string (new reference). */
struct json_t *fl_hist_json_hex(const uint8_t *p, size_t n);

#endif
