/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire: the codec for every client <-> gateway message and every Kafka
 * record (schemas/PROTOCOL.md is the contract). Each message is a map with
 * string keys carrying "v" (schema version, FL_WIRE_VERSION) and "t" (type
 * name), in two forms with the same key names: msgpack (binary frames,
 * Kafka record values; canonical encoding, keys in bytewise order) and JSON
 * (text frames; client ids and hashes as lowercase hex, bin as {"$bin":..}).
 *
 * Decoding is strict: limits are checked before allocating; unknown keys are
 * ignored; an unknown "t" gives -FL_CODE_UNKNOWN_TYPE, an unknown "v"
 * -FL_CODE_UNSUPPORTED_VERSION, a bad doc id -FL_CODE_BAD_DOC_ID, an array
 * over its count limit or a bounded string over its length (token, client,
 * reason, server) -FL_CODE_LIMIT, anything else -FL_CODE_BAD_FRAME, always
 * with a reason in errstr (naming the field). JSON strings may hold U+0000
 * ("\u0000"): every string is a (ptr, len) slice; object keys cannot
 * (jansson refuses them: bad_frame). A decoded message
 * lives in the arena passed in (slices, values, arrays); it does not point
 * into the input buffer, so the buffer may be released right away.
 *
 * Pure: no I/O, no clock, no logging. @locality any thread.
 */
#ifndef FLUSHLINE_WIRE_H
#define FLUSHLINE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/errors.h"
#include "flushline/flush.h"
#include "flushline/value.h"

#define FL_WIRE_VERSION 1

typedef enum fl_wire_form_e {
    FL_WIRE_MSGPACK = 0, /* binary WebSocket frames and Kafka record values */
    FL_WIRE_JSON = 1,    /* text WebSocket frames, CLI output */
} fl_wire_form_t;

/* Which namespace "t" is looked up in ("signal" exists in all three). */
typedef enum fl_wire_dir_e {
    FL_WIRE_C2S = 1,    /* client -> gateway frames */
    FL_WIRE_S2C = 2,    /* gateway -> client frames */
    FL_WIRE_RECORD = 3, /* Kafka record values (all topics) */
} fl_wire_dir_t;

typedef enum fl_wire_type_e {
    FL_WT_NONE = 0,
    /* client -> gateway */
    FL_WT_HELLO,       /* fl_wire_hello_t */
    FL_WT_AUTH,        /* fl_wire_hello_t (token only) */
    FL_WT_SUBSCRIBE,   /* fl_wire_subscribe_t */
    FL_WT_UNSUBSCRIBE, /* fl_wire_subscribe_t (doc only) */
    FL_WT_FLUSH,       /* fl_flush_t (user, ts_ms unset) */
    FL_WT_SIGNAL,      /* fl_wire_signal_t (doc, body) */
    FL_WT_PING,        /* fl_wire_ping_t */
    /* gateway -> client */
    FL_WT_WELCOME,     /* fl_wire_welcome_t */
    FL_WT_SNAPSHOT,    /* fl_wire_snapshot_t (state only: digest, dedup... unused) */
    FL_WT_DELTAS,      /* fl_wire_deltas_t */
    FL_WT_OUTCOME,     /* fl_wire_outcome_t (applied, user, ts, gw, origin unused) */
    FL_WT_NACK,        /* fl_wire_nack_t */
    FL_WT_SIGNAL_OUT,  /* fl_wire_signal_t (doc, user = from, body); "t":"signal" */
    FL_WT_ERROR,       /* fl_wire_error_t */
    FL_WT_PONG,        /* fl_wire_ping_t */
    /* Kafka records */
    FL_WT_REC_FLUSH,      /* commands topic, fl_wire_rec_flush_t; "t":"flush" */
    FL_WT_REC_SYNC,       /* commands topic, fl_wire_sync_t */
    FL_WT_REC_OUTCOME,    /* events topic, fl_wire_outcome_t; "t":"outcome" */
    FL_WT_REC_SYNC_REPLY, /* events topic, fl_wire_sync_reply_t */
    FL_WT_REC_SNAPSHOT,   /* snapshots topic, fl_wire_snapshot_t; "t":"snapshot" */
    FL_WT_REC_SIGNAL,     /* signals topic, fl_wire_signal_t (doc, gw, user, body) */
    FL_WT_REC_CHECKPOINT, /* snapshots topic, fl_wire_checkpoint_t */
    /* appended later (numbers never change) */
    FL_WT_CHANGED,        /* gateway -> client, fl_wire_changed_t */
    FL_WT_REC_RULES,      /* commands topic, fl_wire_rules_t (schemas/RULES.md) */
    FL_WT__COUNT
} fl_wire_type_t;

/* The "t" string of a type ("flush"), and its direction. */
const char *fl_wire_type_name(int type);
fl_wire_dir_t fl_wire_type_dir(int type);
/* Type for (dir, name) or FL_WT_NONE. */
int fl_wire_type_from_name(fl_wire_dir_t dir, const char *name, size_t len);

/* Decoding limits. Embedded values (state, bodies, command values) may nest
 * max_depth deep below their own position; the envelope adds up to 8. */
typedef struct fl_wire_limits_s {
    size_t max_frame;        /* whole encoded message */
    uint32_t max_depth;      /* nesting of embedded values */
    uint32_t max_commands;   /* commands per flush, items per deltas */
    uint32_t max_body;       /* encoded bytes of a signal body */
    uint32_t max_token;      /* bytes of a token */
} fl_wire_limits_t;

/* Client frames: 1 MiB, depth 64, 1000 commands, 4 KiB bodies, 8 KiB tokens. */
extern const fl_wire_limits_t fl_wire_limits_frame;
/* Kafka records: 64 MiB (snapshots with their dedup table), else as frames. */
extern const fl_wire_limits_t fl_wire_limits_record;

typedef struct fl_wire_hello_s {
    fl_slice_t token;  /* JWT (hello, auth) */
    fl_slice_t client; /* hello: optional "name/version", <= 128 bytes */
} fl_wire_hello_t;

typedef struct fl_wire_subscribe_s {
    fl_slice_t doc;
    bool has_version;
    uint64_t have_version;
} fl_wire_subscribe_t;

typedef struct fl_wire_signal_s {
    fl_slice_t doc;
    fl_slice_t user; /* S2C "from", records "user"; unused C2S */
    fl_slice_t gw;   /* records only */
    fl_value_t body;
} fl_wire_signal_t;

typedef struct fl_wire_ping_s {
    bool has_id;
    uint64_t id;
} fl_wire_ping_t;

typedef struct fl_wire_welcome_s {
    uint32_t max_frame, max_commands, max_subscriptions;
    uint32_t rate, burst; /* flushes per second and burst of the rate limit */
    fl_slice_t user;
    fl_slice_t server;    /* "flushline/0.1.0" */
    /* Optional (gateways before them omit both): the accepted token's exp
     * and the gateway's leeway in seconds. The connection is closed with
     * 4004 once the gateway's clock reaches exp + leeway. */
    bool has_exp, has_leeway;
    int64_t exp;     /* "exp": seconds since the epoch */
    uint32_t leeway; /* "leeway": seconds */
} fl_wire_welcome_t;

typedef struct fl_wire_snapshot_s fl_wire_snapshot_t;

/* One applied outcome as seen by subscribers. Its version_before is
 * version - ncmds (each applied command adds one). */
typedef struct fl_wire_delta_s {
    uint64_t version; /* version_after */
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    fl_slice_t user;
    int64_t ts_ms;
    uint32_t ncmds;
    fl_cmd_t *cmds; /* the applied commands (fl_outcome_t.applied) */
    uint8_t chain[FL_HASH_LEN];
} fl_wire_delta_t;

typedef struct fl_wire_deltas_s {
    fl_slice_t doc;
    uint64_t from_version; /* version before items[0]; items are consecutive */
    uint32_t nitems;
    fl_wire_delta_t *items;
} fl_wire_deltas_t;

typedef struct fl_wire_outcome_s {
    fl_outcome_t outcome;
    fl_slice_t gw;   /* record: gateway that published the flush */
    uint64_t origin; /* record: that gateway's connection id */
} fl_wire_outcome_t;

typedef struct fl_wire_nack_s {
    fl_slice_t doc; /* len 0: absent */
    bool has_client_id, has_seq, has_retry;
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    uint16_t code;
    uint32_t retry_after_ms;
    fl_slice_t reason;
} fl_wire_nack_t;

typedef struct fl_wire_error_s {
    uint16_t code;
    fl_slice_t reason;
} fl_wire_error_t;

typedef struct fl_wire_rec_flush_s {
    fl_flush_t flush; /* flush.user from the token; flush.ts_ms is the Kafka
                         timestamp: set by the consumer, never encoded */
    fl_slice_t gw;
    uint64_t origin;
    /* The connection's role for rule sets (the token's `role` claim,
     * docs/auth.md), "role" in the record, omitted when empty: empty is the
     * rule set's default role (records before roles carry none). */
    fl_slice_t role;
} fl_wire_rec_flush_t;

#define FL_WIRE_ROLE_MAX 64

typedef struct fl_wire_sync_s {
    fl_slice_t doc;
    fl_slice_t gw;
    uint64_t req;
    uint64_t have_version;
} fl_wire_sync_t;

typedef struct fl_wire_sync_reply_s {
    fl_slice_t doc;
    fl_slice_t gw;
    uint64_t req;
    uint64_t version; /* current version (after the last delta) */
    uint8_t chain[FL_HASH_LEN];
    bool has_state;   /* true: state at version; false: items from have_version */
    fl_value_t state;
    uint32_t nitems;
    fl_wire_delta_t *items;
} fl_wire_sync_reply_t;

typedef struct fl_wire_dedup_s {
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    fl_outcome_t outcome; /* doc, client_id, seq copied from the snapshot/entry */
} fl_wire_dedup_t;

struct fl_wire_snapshot_s {
    fl_slice_t doc;
    uint64_t version;
    uint8_t chain[FL_HASH_LEN];
    fl_value_t state;             /* root is a map */
    /* records only: */
    uint8_t digest[FL_HASH_LEN];  /* fl_value_digest(state) */
    uint32_t ndedup;
    fl_wire_dedup_t *dedup;
    int64_t events_offset;        /* events offset this snapshot reflects */
    uint64_t dedup_evicted;       /* fl_doc_dedup_evictions; "dedup_evicted", omitted when 0 */
};

/* Minimum-disclosure tenants: the document is now at version; subscribers
 * fetch the content themselves (no deltas, no snapshot). */
typedef struct fl_wire_changed_s {
    fl_slice_t doc;
    uint64_t version;
} fl_wire_changed_t;

/* A partition checkpoint in the snapshots topic, keyed FL_WIRE_CHECKPOINT_KEY
 * and produced to that partition explicitly: every document with an event
 * below events_offset in this partition of the events topic has a snapshot
 * that reflects it, so a restore reads events from events_offset on. */
typedef struct fl_wire_rules_s fl_wire_rules_t;
typedef struct fl_wire_checkpoint_s {
    uint32_t partition;
    uint64_t events_offset;
    /* The rule sets in force at events_offset (schemas/RULES.md, section 3):
     * "rules", an array of {prefix, rules}, omitted when empty (no rule
     * set in force; checkpoints before rules carry none). */
    uint32_t nrules;
    fl_wire_rules_t *rules;
} fl_wire_checkpoint_t;

#define FL_WIRE_CHECKPOINT_MAX_RULES 1024

/* The record key of checkpoints: not valid UTF-8, so never a document id. */
#define FL_WIRE_CHECKPOINT_KEY ((fl_slice_t){"\xff" "checkpoint", 11})

/* A rules record in the commands topic (schemas/RULES.md), keyed
 * FL_WIRE_RULES_KEY and produced to every partition: from its offset on, the
 * documents whose id starts with prefix are applied under the rule set in
 * rules (the JSON text, not parsed here), or without one when has_rules is
 * false. id says who published it (audit; may be empty). */
struct fl_wire_rules_s {
    fl_slice_t prefix; /* 0-255 bytes UTF-8 */
    bool has_rules;
    fl_slice_t rules;  /* JSON text, at most FL_WIRE_RULES_MAX bytes */
    fl_slice_t id;     /* <= 255 bytes */
};

#define FL_WIRE_RULES_MAX (256u * 1024u)
/* The record key of rules records: not valid UTF-8, so never a document id. */
#define FL_WIRE_RULES_KEY ((fl_slice_t){"\xff" "rules", 6})

typedef struct fl_wire_msg_s {
    uint8_t type; /* fl_wire_type_t */
    union {
        fl_wire_hello_t hello;       /* HELLO, AUTH */
        fl_wire_subscribe_t sub;     /* SUBSCRIBE, UNSUBSCRIBE */
        fl_flush_t flush;            /* FLUSH */
        fl_wire_signal_t signal;     /* SIGNAL, SIGNAL_OUT, REC_SIGNAL */
        fl_wire_ping_t ping;         /* PING, PONG */
        fl_wire_welcome_t welcome;   /* WELCOME */
        fl_wire_snapshot_t snapshot; /* SNAPSHOT, REC_SNAPSHOT */
        fl_wire_deltas_t deltas;     /* DELTAS */
        fl_wire_outcome_t outcome;   /* OUTCOME, REC_OUTCOME */
        fl_wire_nack_t nack;         /* NACK */
        fl_wire_error_t error;       /* ERROR */
        fl_wire_rec_flush_t rflush;  /* REC_FLUSH */
        fl_wire_sync_t sync;         /* REC_SYNC */
        fl_wire_sync_reply_t reply;  /* REC_SYNC_REPLY */
        fl_wire_checkpoint_t checkpoint; /* REC_CHECKPOINT */
        fl_wire_changed_t changed;   /* CHANGED */
        fl_wire_rules_t rules;       /* REC_RULES */
    } u;
} fl_wire_msg_t;

/*
 * Reads only "v" and "t" of a message (msgpack: without decoding the rest).
 * 0 with *type and *version set, or a negative fl_code_t: -FL_CODE_BAD_FRAME,
 * -FL_CODE_UNKNOWN_TYPE (then *version is set), -FL_CODE_UNSUPPORTED_VERSION.
 */
int fl_wire_peek(const char *buf, size_t len, fl_wire_form_t form, fl_wire_dir_t dir,
                 int *type, uint32_t *version, char *errstr, size_t errstr_size);

/*
 * Decodes one whole message (the buffer holds exactly one) into *msg, all
 * of it allocated in arena. lim NULL: fl_wire_limits_frame for C2S/S2C,
 * fl_wire_limits_record for RECORD. 0 or a negative fl_code_t (see top).
 */
int fl_wire_decode(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len,
                   const fl_wire_limits_t *lim, fl_arena_t *arena, fl_wire_msg_t *msg,
                   char *errstr, size_t errstr_size);

/*
 * Encodes msg (msg->type picks the struct) into a fresh malloc'd buffer
 * *out of *outlen bytes, owned by the caller (free()). The msgpack form is
 * the canonical encoding of the message map; the JSON form is compact text
 * with keys in the same order (not NUL-terminated in *outlen, but *out has a
 * trailing NUL). Returns 0 or -FL_CODE_BAD_FRAME (a field out of range,
 * e.g. a uint64 above INT64_MAX) / -FL_CODE_INTERNAL (out of memory).
 */
int fl_wire_encode(const fl_wire_msg_t *msg, fl_wire_form_t form, char **out, size_t *outlen,
                   char *errstr, size_t errstr_size);

/* The msgpack form appended to any msgpack-c writer (sbuffer, vrefbuffer, a
 * buffer with LWS_PRE headroom...). Same return values. */
int fl_wire_pack(msgpack_packer *pk, const fl_wire_msg_t *msg, char *errstr, size_t errstr_size);

/* Typed shorthands for the hot paths. The encoders return a buffer of
 * exactly *outlen bytes (no slack: callers may keep it, e.g. a window). */
int fl_wire_encode_flush_record(const fl_flush_t *flush, fl_slice_t gw, uint64_t origin,
                                char **out, size_t *outlen, char *errstr, size_t errstr_size);
/* A flush record with every field of rec (the role included). */
int fl_wire_encode_rec_flush(const fl_wire_rec_flush_t *rec, char **out, size_t *outlen,
                             char *errstr, size_t errstr_size);
int fl_wire_encode_outcome_record(const fl_outcome_t *outcome, fl_slice_t gw, uint64_t origin,
                                  char **out, size_t *outlen, char *errstr, size_t errstr_size);
int fl_wire_decode_record(const char *buf, size_t len, fl_arena_t *arena, fl_wire_msg_t *msg,
                          char *errstr, size_t errstr_size);

/*
 * The reference codec, for tests and fuzzers. Every message goes through
 * an intermediate value tree: decoded whole by the strict value reader and
 * read by key; built as a map, sorted and written canonically. The
 * functions above take direct paths for the hot types in msgpack form
 * (encode: outcome, flush, deltas, both directions; decode: flush frames
 * and records, falling back to the tree for anything unusual) and must give
 * exactly what these give: the same bytes, the same decoded message, the
 * same error codes. Same arguments and returns as their namesakes.
 */
int fl_wire_encode_tree(const fl_wire_msg_t *msg, fl_wire_form_t form, char **out,
                        size_t *outlen, char *errstr, size_t errstr_size);
int fl_wire_pack_tree(msgpack_packer *pk, const fl_wire_msg_t *msg, char *errstr,
                      size_t errstr_size);
int fl_wire_decode_tree(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len,
                        const fl_wire_limits_t *lim, fl_arena_t *arena, fl_wire_msg_t *msg,
                        char *errstr, size_t errstr_size);

/*
 * What a flush frame that fails to decode says about itself, so that its
 * refusal can name it (a nack with doc, client_id and seq): each of "doc"
 * (a string of 1-255 bytes of UTF-8), "client_id" (16 bytes: bin, or 32
 * lowercase hex digits in JSON) and "seq" (an integer >= 0: seq 0 is
 * reported too) that is well-formed. Returns a mask of FL_WIRE_IDENT_*
 * (0 when the frame is no readable map); the slice lives in arena.
 */
enum { FL_WIRE_IDENT_DOC = 1, FL_WIRE_IDENT_CLIENT_ID = 2, FL_WIRE_IDENT_SEQ = 4 };
unsigned fl_wire_flush_ident(fl_wire_form_t form, const char *buf, size_t len,
                             const fl_wire_limits_t *lim, fl_arena_t *arena, fl_slice_t *doc,
                             uint8_t client_id[FL_CLIENT_ID_LEN], uint64_t *seq);

/* Lowercase hex of n bytes into out (2n + 1 with the NUL). */
void fl_wire_hex(const uint8_t *p, size_t n, char *out);

#endif
