/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire: the message and record codec's table and entry points (see wire.h,
 * schemas/PROTOCOL.md, and wire_int.h for how the codec is laid out).
 *
 * Every message type has a descriptor below: its "t", its namespace and its
 * functions in the reference (tree) codec and, for the hot types, in the
 * direct one. The entry points here only choose the path: the direct
 * functions for msgpack where a type has them, the tree otherwise (and
 * whenever a direct decoder declines).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire_int.h"

const fl_wire_limits_t fl_wire_limits_frame = {
    .max_frame = 1u << 20, .max_depth = 64, .max_commands = 1000, .max_body = 4096,
    .max_token = 8192,
};
const fl_wire_limits_t fl_wire_limits_record = {
    .max_frame = 64u << 20, .max_depth = 64, .max_commands = 1000, .max_body = 4096,
    .max_token = 8192,
};

/* The descriptors (see wire_int.h): name, namespace, tree decoder and
 * builder, direct encoder and decoder (NULL: the tree). Pong shares
 * ping's functions; the three signals and the frame and record forms of
 * flush, outcome and snapshot each have their own. */
const fl_wire_desc_t fl_wire_desc[FL_WT__COUNT] = {
    /* client -> gateway */
    [FL_WT_HELLO] = {"hello", FL_WIRE_C2S,
        fl_wire_tree_dec_hello, fl_wire_tree_enc_hello,
        NULL, NULL},
    [FL_WT_AUTH] = {"auth", FL_WIRE_C2S,
        fl_wire_tree_dec_auth, fl_wire_tree_enc_auth,
        NULL, NULL},
    [FL_WT_SUBSCRIBE] = {"subscribe", FL_WIRE_C2S,
        fl_wire_tree_dec_subscribe, fl_wire_tree_enc_subscribe,
        NULL, NULL},
    [FL_WT_UNSUBSCRIBE] = {"unsubscribe", FL_WIRE_C2S,
        fl_wire_tree_dec_unsubscribe, fl_wire_tree_enc_unsubscribe,
        NULL, NULL},
    [FL_WT_FLUSH] = {"flush", FL_WIRE_C2S,
        fl_wire_tree_dec_flush, fl_wire_tree_enc_flush,
        fl_wire_direct_enc_flush, fl_wire_direct_dec_flush},
    [FL_WT_SIGNAL] = {"signal", FL_WIRE_C2S,
        fl_wire_tree_dec_signal, fl_wire_tree_enc_signal,
        NULL, NULL},
    [FL_WT_PING] = {"ping", FL_WIRE_C2S,
        fl_wire_tree_dec_ping, fl_wire_tree_enc_ping,
        NULL, NULL},
    /* gateway -> client */
    [FL_WT_WELCOME] = {"welcome", FL_WIRE_S2C,
        fl_wire_tree_dec_welcome, fl_wire_tree_enc_welcome,
        NULL, NULL},
    [FL_WT_SNAPSHOT] = {"snapshot", FL_WIRE_S2C,
        fl_wire_tree_dec_snapshot, fl_wire_tree_enc_snapshot,
        NULL, NULL},
    [FL_WT_DELTAS] = {"deltas", FL_WIRE_S2C,
        fl_wire_tree_dec_deltas, fl_wire_tree_enc_deltas,
        fl_wire_direct_enc_deltas, NULL},
    [FL_WT_OUTCOME] = {"outcome", FL_WIRE_S2C,
        fl_wire_tree_dec_outcome, fl_wire_tree_enc_outcome,
        fl_wire_direct_enc_outcome, NULL},
    [FL_WT_NACK] = {"nack", FL_WIRE_S2C,
        fl_wire_tree_dec_nack, fl_wire_tree_enc_nack,
        NULL, NULL},
    [FL_WT_SIGNAL_OUT] = {"signal", FL_WIRE_S2C,
        fl_wire_tree_dec_signal_out, fl_wire_tree_enc_signal_out,
        NULL, NULL},
    [FL_WT_ERROR] = {"error", FL_WIRE_S2C,
        fl_wire_tree_dec_error, fl_wire_tree_enc_error,
        NULL, NULL},
    [FL_WT_PONG] = {"pong", FL_WIRE_S2C,
        fl_wire_tree_dec_ping, fl_wire_tree_enc_ping,
        NULL, NULL},
    [FL_WT_CHANGED] = {"changed", FL_WIRE_S2C,
        fl_wire_tree_dec_changed, fl_wire_tree_enc_changed,
        NULL, NULL},
    /* Kafka records */
    [FL_WT_REC_FLUSH] = {"flush", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_flush, fl_wire_tree_enc_rec_flush,
        fl_wire_direct_enc_rec_flush, fl_wire_direct_dec_rec_flush},
    [FL_WT_REC_SYNC] = {"sync", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_sync, fl_wire_tree_enc_rec_sync,
        NULL, NULL},
    [FL_WT_REC_OUTCOME] = {"outcome", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_outcome, fl_wire_tree_enc_rec_outcome,
        fl_wire_direct_enc_rec_outcome, NULL},
    [FL_WT_REC_SYNC_REPLY] = {"sync_reply", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_sync_reply, fl_wire_tree_enc_rec_sync_reply,
        NULL, NULL},
    [FL_WT_REC_SNAPSHOT] = {"snapshot", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_snapshot, fl_wire_tree_enc_rec_snapshot,
        NULL, NULL},
    [FL_WT_REC_SIGNAL] = {"signal", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_signal, fl_wire_tree_enc_rec_signal,
        NULL, NULL},
    [FL_WT_REC_CHECKPOINT] = {"checkpoint", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_checkpoint, fl_wire_tree_enc_rec_checkpoint,
        NULL, NULL},
    [FL_WT_REC_RULES] = {"rules", FL_WIRE_RECORD,
        fl_wire_tree_dec_rec_rules, fl_wire_tree_enc_rec_rules,
        NULL, NULL},
};

/* Per direction, the type whose direct decoder is tried before the type is
 * known (see wire_int.h): the processor's and the gateway's hot input. */
static const uint8_t direct_first[] = {
    [FL_WIRE_C2S] = FL_WT_FLUSH,
    [FL_WIRE_S2C] = FL_WT_NONE,
    [FL_WIRE_RECORD] = FL_WT_REC_FLUSH,
};

/* ---- entry points ------------------------------------------------------- */

int fl_wire_decode(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len,
                   const fl_wire_limits_t *lim, fl_arena_t *arena, fl_wire_msg_t *msg,
                   char *errstr, size_t errstr_size)
{
    const fl_wire_desc_t *desc = NULL;
    if (!lim)
        lim = dir == FL_WIRE_RECORD ? &fl_wire_limits_record : &fl_wire_limits_frame;
    if (form == FL_WIRE_MSGPACK && dir >= FL_WIRE_C2S && dir <= FL_WIRE_RECORD)
        desc = fl_wire_desc_of(direct_first[dir]);
    if (desc && desc->direct_dec && desc->direct_dec(buf, len, lim, arena, msg) == 0)
        return 0;
    return fl_wire_decode_tree(dir, form, buf, len, lim, arena, msg, errstr, errstr_size);
}

int fl_wire_decode_record(const char *buf, size_t len, fl_arena_t *arena, fl_wire_msg_t *msg,
                          char *errstr, size_t errstr_size)
{
    return fl_wire_decode(FL_WIRE_RECORD, FL_WIRE_MSGPACK, buf, len, NULL, arena, msg, errstr,
                          errstr_size);
}

int fl_wire_encode(const fl_wire_msg_t *msg, fl_wire_form_t form, char **out, size_t *outlen,
                   char *errstr, size_t errstr_size)
{
    const fl_wire_desc_t *desc = fl_wire_desc_of(msg->type);
    if (form == FL_WIRE_MSGPACK && desc && desc->direct_enc)
        return fl_wire_direct_encode(desc, msg, out, outlen, errstr, errstr_size);
    return fl_wire_encode_tree(msg, form, out, outlen, errstr, errstr_size);
}

int fl_wire_pack(msgpack_packer *pk, const fl_wire_msg_t *msg, char *errstr, size_t errstr_size)
{
    const fl_wire_desc_t *desc = fl_wire_desc_of(msg->type);
    if (desc && desc->direct_enc)
        return fl_wire_direct_pack(desc, pk, msg, errstr, errstr_size);
    return fl_wire_pack_tree(pk, msg, errstr, errstr_size);
}

int fl_wire_encode_flush_record(const fl_flush_t *flush, fl_slice_t gw, uint64_t origin,
                                char **out, size_t *outlen, char *errstr, size_t errstr_size)
{
    fl_wire_rec_flush_t rec = {*flush, gw, origin, {"", 0}};
    return fl_wire_encode_rec_flush(&rec, out, outlen, errstr, errstr_size);
}

int fl_wire_encode_rec_flush(const fl_wire_rec_flush_t *rec, char **out, size_t *outlen,
                             char *errstr, size_t errstr_size)
{
    fl_wire_msg_t msg = {.type = FL_WT_REC_FLUSH, .u.rflush = *rec};
    return fl_wire_direct_encode(&fl_wire_desc[msg.type], &msg, out, outlen, errstr, errstr_size);
}

int fl_wire_encode_outcome_record(const fl_outcome_t *outcome, fl_slice_t gw, uint64_t origin,
                                  char **out, size_t *outlen, char *errstr, size_t errstr_size)
{
    fl_wire_msg_t msg = {.type = FL_WT_REC_OUTCOME, .u.outcome = {*outcome, gw, origin}};
    return fl_wire_direct_encode(&fl_wire_desc[msg.type], &msg, out, outlen, errstr, errstr_size);
}
