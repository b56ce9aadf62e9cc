/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flush: the decoded form of a flush and of its outcome, shared by the wire
 * codec (schemas/), the apply engine (core/engine) and the clients.
 *
 * Ownership: a decoded fl_flush_t and everything it points to (slices,
 * values, command array) live in the fl_arena_t it was decoded into, or
 * point into the input buffer; it is valid while both live. An fl_outcome_t
 * filled by the engine lives in the arena the caller passes to it.
 */
#ifndef FLUSHLINE_FLUSH_H
#define FLUSHLINE_FLUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "flushline/errors.h"
#include "flushline/value.h"

#define FL_DOC_ID_MAX 255
#define FL_CLIENT_ID_LEN 16
#define FL_HASH_LEN 32

typedef enum fl_op_e {
    FL_OP_ADD = 1,
    FL_OP_REMOVE = 2,
    FL_OP_REPLACE = 3,
    FL_OP_MOVE = 4,
    FL_OP_COPY = 5,
    FL_OP_TEST = 6,
    FL_OP_INCR = 7,
    FL_OP_MERGE = 8,
    FL_OP_CREATE = 9,
} fl_op_t;

/* "add", ...; NULL for an unknown op. */
const char *fl_op_name(int op);
/* op for a name, or 0. */
int fl_op_from_name(const char *name, size_t len);

typedef struct fl_cmd_s {
    uint8_t op;        /* fl_op_t */
    bool has_value;    /* value present (add, replace, test, incr, merge, create) */
    bool has_key;      /* create: a proposed key */
    fl_slice_t path;   /* RFC 6901 pointer, "" is the root */
    fl_slice_t from;   /* move, copy */
    fl_slice_t key;    /* create: the client's proposed key */
    fl_value_t value;
} fl_cmd_t;

typedef struct fl_flush_s {
    fl_slice_t doc;                          /* 1-255 bytes UTF-8; tenant = first '/' segment */
    uint8_t client_id[FL_CLIENT_ID_LEN];     /* random per client */
    uint64_t seq;                            /* 1, 2, ... per client */
    uint64_t base_version;                   /* version the client's local state was at */
    bool has_if_version;
    bool atomic;
    uint64_t if_version;
    uint32_t ncmds;
    fl_cmd_t *cmds;
    /* Stamps that come from the record, never from the client: */
    fl_slice_t user;   /* user id the gateway took from the token ("" for server-side) */
    int64_t ts_ms;     /* the Kafka record timestamp */
} fl_flush_t;

typedef struct fl_cmd_result_s {
    uint16_t code;     /* FL_CODE_OK when applied, else why it was rejected */
    uint64_t version;  /* the version this command produced (0 when rejected) */
    fl_slice_t key;    /* create: the key used (len 0 otherwise) */
    bool has_key;      /* key is set, even when empty (create's proposed key "") */
    fl_slice_t rule;   /* rule_violation: the name of the rule (len 0 otherwise) */
} fl_cmd_result_t;

typedef struct fl_outcome_s {
    fl_slice_t doc;
    uint8_t client_id[FL_CLIENT_ID_LEN];
    uint64_t seq;
    uint16_t code;           /* whole flush: OK, VERSION_MISMATCH, GAP, INVALID */
    bool duplicate;          /* answered from the dedup table, nothing applied */
    uint64_t version_before; /* document version before this flush */
    uint64_t version_after;  /* after (equal when nothing applied) */
    uint32_t nresults;       /* == ncmds of the flush (0 when the whole flush was refused) */
    fl_cmd_result_t *results;
    /* The commands as applied, in order: only those with code OK, with
     * create resolved to its final key (see schemas/ENGINE.md). Applying
     * these to the state at version_before gives the state at version_after;
     * this is what deltas carry and what the chain hash covers. */
    uint32_t napplied;
    fl_cmd_t *applied;
    uint8_t chain[FL_HASH_LEN]; /* chain hash after this outcome */
    fl_slice_t user;
    int64_t ts_ms;
} fl_outcome_t;

#endif
