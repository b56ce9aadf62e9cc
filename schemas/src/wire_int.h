/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire_int: internals shared by the files of the wire codec (wire.h is its
 * API, schemas/PROTOCOL.md the contract).
 *
 * The codec is table-driven: one descriptor per message type (fl_wire_desc,
 * indexed by fl_wire_type_t, in wire.c) says what the type is called, which
 * namespace its "t" lives in, and which function each codec path calls for
 * it. Nothing else in the codec switches on the type.
 *
 *   column      what it does                                 who has one
 *   name, dir   "t" and its namespace (C2S, S2C, RECORD)     every type
 *   tree_dec    reads the fields from the decoded value map  every type
 *   tree_enc    adds the fields to the message map           every type
 *   direct_enc  writes canonical msgpack straight, no tree   flush, outcome (frame and
 *                                                            record), deltas
 *   direct_dec  reads msgpack straight, no envelope tree     flush (frame and record)
 *
 * The tree pair is the reference codec (fl_wire_*_tree): every type has it,
 * in both forms. The direct pair is the hot path, msgpack only; a NULL
 * column means "use the tree". A direct encoder must refuse what the tree
 * builder refuses, with the same code and text, and write the same bytes; a
 * direct decoder returns FL_WIRE_DIRECT_NO for anything it does not accept
 * exactly as the tree decoder would, and the message is then decoded again
 * through the tree, which gives the answer or the error. The unit tests and
 * fuzz_wire_* compare the two paths.
 *
 * A direct decoder is tried before the type is known ("t" sorts after
 * "commands", so finding it first would cost a pass over the message): per
 * direction, wire.c names the one type whose direct decoder is tried first.
 *
 * JSON has no column: both forms use the same field names and differ only
 * at the ends of the tree codec (parsing and writing the whole message) and
 * in fixed-size bytes (bin in msgpack, lowercase hex in JSON), which the
 * tree codec's field helpers handle by form.
 *
 * Files:
 *   wire.c             the descriptor table, type names, limits, public entry
 *                      points (which path a message takes)
 *   wire_tree_dec.c    reference decoder: parse to a value tree, read fields;
 *                      fl_wire_flush_ident
 *   wire_tree_enc.c    reference encoder: build the message map, write it
 *   wire_direct_enc.c  direct encoders of the hot types
 *   wire_direct_dec.c  direct decoder of flushes; fl_wire_peek (msgpack scan)
 *
 * Pure: no I/O, no clock, no logging. @locality any thread.
 */
#ifndef FL_WIRE_INT_H
#define FL_WIRE_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flushline/wire.h"
#include "value_int.h"

/* Levels the envelope may add above an embedded value's own max_depth. */
#define FL_WIRE_ENVELOPE_DEPTH 8
/* Byte bounds of bounded strings (over them: -FL_CODE_LIMIT or bad_frame). */
#define FL_WIRE_CLIENT_NAME_MAX 128 /* hello "client", welcome "server" */
#define FL_WIRE_REASON_MAX 1024     /* nack and error "reason" */
#define FL_WIRE_GW_MAX 255          /* gateway ids in records */

/* A direct decoder's "not mine": decode through the tree instead. */
#define FL_WIRE_DIRECT_NO 1

/* Tree decoding: the form, the arena the message lives in, the limits and
 * where the error text goes. */
typedef struct fl_wire_dctx_s {
    fl_wire_form_t form;
    fl_arena_t *arena;
    const fl_wire_limits_t *lim;
    char *errstr;
    size_t errsz;
} fl_wire_dctx_t;

typedef struct fl_wire_bld_s fl_wire_bld_t; /* tree builder (wire_tree_enc.c) */
typedef struct fl_wire_ow_s fl_wire_ow_t;   /* direct writer (wire_direct_enc.c) */

typedef int (*fl_wire_tree_dec_fn)(fl_wire_dctx_t *d, const fl_value_t *map, fl_wire_msg_t *msg);
typedef void (*fl_wire_tree_enc_fn)(fl_wire_bld_t *b, fl_value_t *map, const fl_wire_msg_t *msg);
typedef void (*fl_wire_direct_enc_fn)(fl_wire_ow_t *w, const fl_wire_msg_t *msg);
typedef int (*fl_wire_direct_dec_fn)(const char *buf, size_t len, const fl_wire_limits_t *lim,
                                     fl_arena_t *arena, fl_wire_msg_t *msg);

/* One message type (see the top of this file). */
typedef struct fl_wire_desc_s {
    const char *name;    /* "t" */
    fl_wire_dir_t dir;   /* the namespace "t" is looked up in */
    fl_wire_tree_dec_fn tree_dec;     /* map -> msg: 0 or a negative fl_code_t */
    fl_wire_tree_enc_fn tree_enc;     /* msg -> map (after "v" and "t"); errors in the builder */
    fl_wire_direct_enc_fn direct_enc; /* NULL: the tree; errors in the writer */
    fl_wire_direct_dec_fn direct_dec; /* NULL: the tree; 0 or FL_WIRE_DIRECT_NO */
} fl_wire_desc_t;

/* Indexed by type; entry FL_WT_NONE is empty. */
extern const fl_wire_desc_t fl_wire_desc[FL_WT__COUNT];

/* The descriptor of a type, or NULL when type is out of range. */
static inline const fl_wire_desc_t *fl_wire_desc_of(int type)
{
    return type > FL_WT_NONE && type < FL_WT__COUNT ? &fl_wire_desc[type] : NULL;
}

/* The first error of an encoder (tree builder or direct writer): once set,
 * later errors are dropped and the output is discarded. */
typedef struct fl_wire_err_s {
    int code; /* 0, or the first error: a negative fl_code_t */
    char *errstr;
    size_t errsz;
} fl_wire_err_t;

/* Sets *e to code and the reason, unless it holds an error already. */
void fl_wire_fail(fl_wire_err_t *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the reason into errstr (when given) and returns -code. */
int fl_wire_seterr(char *errstr, size_t size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int fl_wire_vseterr(char *errstr, size_t size, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* The value reader's limits for what sits below `above` envelope levels
 * (0 for the whole message), derived from the message limits. */
void fl_wire_value_limits(const fl_wire_limits_t *lim, uint32_t above, fl_limits_t *vl);

/* ---- wire_tree_dec.c ---------------------------------------------------- */

/* Parses (buf, len) into an arena value tree (either form): 0 or an error. */
int fl_wire_tree_parse(fl_wire_dctx_t *d, const char *buf, size_t len, fl_value_t *root);
/* Reads "v" and "t" of a parsed root in namespace dir. */
int fl_wire_tree_header(fl_wire_dctx_t *d, fl_wire_dir_t dir, const fl_value_t *root, int *type,
                        uint32_t *version);

int fl_wire_tree_dec_hello(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_auth(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_subscribe(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_unsubscribe(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_flush(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_signal(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_ping(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_welcome(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_snapshot(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_deltas(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_outcome(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_nack(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_signal_out(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_error(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_changed(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_flush(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_sync(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_outcome(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_sync_reply(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_snapshot(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_signal(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_checkpoint(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);
int fl_wire_tree_dec_rec_rules(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg);

/* ---- wire_tree_enc.c ---------------------------------------------------- */

void fl_wire_tree_enc_hello(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_auth(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_subscribe(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_unsubscribe(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_flush(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_signal(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_ping(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_welcome(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_snapshot(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_deltas(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_outcome(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_nack(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_signal_out(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_error(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_changed(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_flush(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_sync(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_outcome(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_sync_reply(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_snapshot(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_signal(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_checkpoint(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);
void fl_wire_tree_enc_rec_rules(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg);

/* ---- wire_direct_enc.c -------------------------------------------------- */

/* Writes msg with desc->direct_enc into a malloc'd buffer trimmed to its
 * size (*out owned by the caller), or appends it whole to pk. Same returns
 * as fl_wire_encode / fl_wire_pack. */
int fl_wire_direct_encode(const fl_wire_desc_t *desc, const fl_wire_msg_t *msg, char **out,
                          size_t *outlen, char *errstr, size_t errstr_size);
int fl_wire_direct_pack(const fl_wire_desc_t *desc, msgpack_packer *pk, const fl_wire_msg_t *msg,
                        char *errstr, size_t errstr_size);

void fl_wire_direct_enc_flush(fl_wire_ow_t *w, const fl_wire_msg_t *msg);
void fl_wire_direct_enc_deltas(fl_wire_ow_t *w, const fl_wire_msg_t *msg);
void fl_wire_direct_enc_outcome(fl_wire_ow_t *w, const fl_wire_msg_t *msg);
void fl_wire_direct_enc_rec_flush(fl_wire_ow_t *w, const fl_wire_msg_t *msg);
void fl_wire_direct_enc_rec_outcome(fl_wire_ow_t *w, const fl_wire_msg_t *msg);

/* ---- wire_direct_dec.c -------------------------------------------------- */

int fl_wire_direct_dec_flush(const char *buf, size_t len, const fl_wire_limits_t *lim,
                             fl_arena_t *arena, fl_wire_msg_t *msg);
int fl_wire_direct_dec_rec_flush(const char *buf, size_t len, const fl_wire_limits_t *lim,
                                 fl_arena_t *arena, fl_wire_msg_t *msg);

#endif
