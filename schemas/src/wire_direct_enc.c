/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire_direct_enc: the direct encoders of the hot messages (see wire_int.h).
 * Outcomes, flushes and deltas are written straight into one growing buffer
 * in canonical key order (hard-coded below, bytewise), with no tree, no
 * arena and no sort. The checks and their codes are the tree builder's
 * (doc id first, then each field), so both paths accept and refuse the same
 * messages and write the same bytes; fl_wire_encode_tree is the reference
 * the tests compare against.
 */
#include <stdlib.h>
#include <string.h>

#include "wire_int.h"

struct fl_wire_ow_s {
    char *buf;
    size_t n, cap;
    fl_wire_err_t err;
};

/* ---- the writer --------------------------------------------------------- */

/* The slow path of ow_reserve: grows the buffer (never after an error). */
static bool ow_grow(fl_wire_ow_t *w, size_t more)
{
    size_t ncap;
    char *nb;
    if (w->err.code)
        return false;
    ncap = w->cap ? w->cap : 256;
    while (ncap - w->n < more) {
        if (ncap > SIZE_MAX / 2) {
            fl_wire_fail(&w->err, FL_CODE_INTERNAL, "out of memory");
            return false;
        }
        ncap *= 2;
    }
    if (!(nb = realloc(w->buf, ncap))) {
        fl_wire_fail(&w->err, FL_CODE_INTERNAL, "out of memory");
        return false;
    }
    w->buf = nb;
    w->cap = ncap;
    return true;
}

/* Room for more bytes. After an error writes may go on (into room that
 * exists) or stop; the output is discarded either way. */
static inline bool ow_reserve(fl_wire_ow_t *w, size_t more)
{
    return w->cap - w->n >= more || ow_grow(w, more);
}

static inline void ow_put(fl_wire_ow_t *w, const void *p, size_t n)
{
    if (ow_reserve(w, n)) {
        memcpy(w->buf + w->n, p, n);
        w->n += n;
    }
}

/* A tag byte and a width-byte big-endian number. */
static inline void ow_tag(fl_wire_ow_t *w, uint8_t tag, uint64_t v, int width)
{
    uint8_t *b;
    int i;
    if (!ow_reserve(w, (size_t)width + 1))
        return;
    b = (uint8_t *)w->buf + w->n;
    b[0] = tag;
    for (i = width; i > 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    w->n += (size_t)width + 1;
}

static inline void ow_byte(fl_wire_ow_t *w, uint8_t c)
{
    if (ow_reserve(w, 1))
        w->buf[w->n++] = (char)c;
}

/* The smallest form, as value.c writes ints. */
static inline void ow_int(fl_wire_ow_t *w, int64_t i)
{
    if (i >= 0) {
        if (i <= 0x7f)
            ow_byte(w, (uint8_t)i);
        else if (i <= 0xff)
            ow_tag(w, 0xcc, (uint64_t)i, 1);
        else if (i <= 0xffff)
            ow_tag(w, 0xcd, (uint64_t)i, 2);
        else if (i <= 0xffffffffLL)
            ow_tag(w, 0xce, (uint64_t)i, 4);
        else
            ow_tag(w, 0xcf, (uint64_t)i, 8);
    } else {
        if (i >= -32)
            ow_byte(w, (uint8_t)(int8_t)i);
        else if (i >= INT8_MIN)
            ow_tag(w, 0xd0, (uint64_t)i & 0xff, 1);
        else if (i >= INT16_MIN)
            ow_tag(w, 0xd1, (uint64_t)i & 0xffff, 2);
        else if (i >= INT32_MIN)
            ow_tag(w, 0xd2, (uint64_t)i & 0xffffffffu, 4);
        else
            ow_tag(w, 0xd3, (uint64_t)i, 8);
    }
}

static void ow_u64(fl_wire_ow_t *w, const char *key, uint64_t u)
{
    if (u > INT64_MAX) {
        fl_wire_fail(&w->err, FL_CODE_BAD_FRAME, "\"%s\" above INT64_MAX", key);
        return;
    }
    ow_int(w, (int64_t)u);
}

/* Map (fix 0x80, 0xde, 0xdf) and array (fix 0x90, 0xdc, 0xdd) headers. */
static inline void ow_count(fl_wire_ow_t *w, uint8_t fix, uint8_t tag16, uint32_t n)
{
    if (n < 16)
        ow_byte(w, (uint8_t)(fix | n));
    else if (n <= 0xffff)
        ow_tag(w, tag16, n, 2);
    else
        ow_tag(w, (uint8_t)(tag16 + 1), n, 4);
}

#define ow_map(w, n) ow_count((w), 0x80, 0xde, (n))
#define ow_array(w, n) ow_count((w), 0x90, 0xdc, (n))

static inline void ow_raw(fl_wire_ow_t *w, const char *p, uint32_t n)
{
    if (n < 32 && ow_reserve(w, (size_t)n + 1)) {
        w->buf[w->n] = (char)(0xa0 | n);
        if (n) /* an empty slice may have a NULL pointer */
            memcpy(w->buf + w->n + 1, p, n);
        w->n += (size_t)n + 1;
        return;
    }
    if (n < 32)
        return; /* failed */
    if (n <= 0xff)
        ow_tag(w, 0xd9, n, 1);
    else if (n <= 0xffff)
        ow_tag(w, 0xda, n, 2);
    else
        ow_tag(w, 0xdb, n, 4);
    ow_put(w, p, n);
}

/* A key (a literal shorter than 32 bytes: one fixstr, copied with a size
 * known at compile time). */
#define ow_key(w, k) ow_raw((w), (k), (uint32_t)(sizeof(k) - 1))

/* A key and its value, in one line per field (k a literal, as for ow_key). */
#define OW_U64(w, k, u) (ow_key((w), k), ow_u64((w), k, (u)))
#define OW_INT(w, k, i) (ow_key((w), k), ow_int((w), (i)))
#define OW_STR(w, k, s) (ow_key((w), k), ow_str((w), k, (s)))
#define OW_FIXED(w, k, p, n) (ow_key((w), k), ow_fixed((w), (p), (n)))
#define OW_TRUE(w, k) (ow_key((w), k), ow_byte((w), 0xc3))

/* A string field, checked as b_str checks it. */
static void ow_str(fl_wire_ow_t *w, const char *key, fl_slice_t s)
{
    if (s.len > UINT32_MAX || (s.len && !s.ptr) || !fl_utf8_valid(s.ptr, s.len)) {
        fl_wire_fail(&w->err, FL_CODE_BAD_FRAME, "\"%s\" is not a valid UTF-8 string", key);
        return;
    }
    ow_raw(w, s.ptr, (uint32_t)s.len);
}

/* Client ids and hashes: bin8. */
static void ow_fixed(fl_wire_ow_t *w, const uint8_t *p, size_t n)
{
    ow_tag(w, 0xc4, n, 1);
    ow_put(w, p, n);
}

static int ow_sink(void *data, const char *buf, size_t len)
{
    fl_wire_ow_t *w = data;
    ow_put(w, buf, len);
    return w->err.code ? -1 : 0;
}

/* An embedded value (canonical, as the tree path writes it): scalars
 * inline, containers through fl_value_pack. */
static void ow_value(fl_wire_ow_t *w, const fl_value_t *v)
{
    msgpack_packer pk;
    switch (v->type) {
    case FL_NIL:
        ow_byte(w, 0xc0);
        return;
    case FL_BOOL:
        ow_byte(w, v->u.b ? 0xc3 : 0xc2);
        return;
    case FL_INT:
        ow_int(w, v->u.i);
        return;
    case FL_STR:
        ow_raw(w, v->len ? v->u.str : "", v->len);
        return;
    default:
        msgpack_packer_init(&pk, w, ow_sink);
        if (fl_value_pack(&pk, v) != 0)
            fl_wire_fail(&w->err, FL_CODE_INTERNAL, "out of memory");
        return;
    }
}

static bool ow_doc_ok(fl_wire_ow_t *w, fl_slice_t doc)
{
    if (doc.len >= 1 && doc.len <= FL_DOC_ID_MAX)
        return true;
    fl_wire_fail(&w->err, FL_CODE_BAD_DOC_ID, "doc id must be 1-%d bytes", FL_DOC_ID_MAX);
    return false;
}

/* "t" and its value, "v" and its value are written where their keys sort. */
static void ow_t_field(fl_wire_ow_t *w, int type)
{
    const char *name = fl_wire_desc[type].name;
    ow_key(w, "t");
    ow_raw(w, name, (uint32_t)strlen(name));
}

static void ow_v_field(fl_wire_ow_t *w)
{
    OW_INT(w, "v", FL_WIRE_VERSION);
}

/* A command: keys from, key, op, path, value (b_cmds' choice of fields). */
static void ow_cmds(fl_wire_ow_t *w, const fl_cmd_t *cmds, uint32_t n)
{
    uint32_t i;
    ow_array(w, n);
    for (i = 0; i < n && !w->err.code; i++) {
        const fl_cmd_t *cmd = &cmds[i];
        const char *op = fl_op_name(cmd->op);
        bool from = cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY || cmd->from.len;
        if (!op) {
            fl_wire_fail(&w->err, FL_CODE_BAD_FRAME, "unknown op in a command");
            return;
        }
        ow_map(w, 2u + from + cmd->has_key + cmd->has_value);
        if (from)
            OW_STR(w, "from", cmd->from);
        if (cmd->has_key)
            OW_STR(w, "key", cmd->key);
        ow_key(w, "op");
        ow_raw(w, op, (uint32_t)strlen(op));
        OW_STR(w, "path", cmd->path);
        if (cmd->has_value) {
            ow_key(w, "value");
            ow_value(w, &cmd->value);
        }
    }
}

/* Results: keys code, key, rule, version. */
static void ow_results(fl_wire_ow_t *w, const fl_outcome_t *o)
{
    uint32_t i;
    ow_array(w, o->nresults);
    for (i = 0; i < o->nresults && !w->err.code; i++) {
        const fl_cmd_result_t *r = &o->results[i];
        bool ok = r->code == FL_CODE_OK, key = r->has_key, rule = r->rule.len > 0;
        ow_map(w, 1u + ok + key + rule);
        OW_INT(w, "code", r->code);
        if (key)
            OW_STR(w, "key", r->key);
        if (rule)
            OW_STR(w, "rule", r->rule);
        if (ok)
            OW_U64(w, "version", r->version);
    }
}

/* Outcome message (S2C) and record: canonical key order
 * chain client_id code commands* doc dup? gw* origin* results seq t ts*
 * user* v version_after version_before   (* record only). */
static void ow_outcome(fl_wire_ow_t *w, const fl_outcome_t *o, bool record, fl_slice_t gw,
                       uint64_t origin)
{
    if (!ow_doc_ok(w, o->doc))
        return;
    ow_map(w, (record ? 15u : 10u) + o->duplicate);
    OW_FIXED(w, "chain", o->chain, FL_HASH_LEN);
    OW_FIXED(w, "client_id", o->client_id, FL_CLIENT_ID_LEN);
    OW_INT(w, "code", o->code);
    if (record) {
        ow_key(w, "commands");
        ow_cmds(w, o->applied, o->napplied);
    }
    OW_STR(w, "doc", o->doc);
    if (o->duplicate)
        OW_TRUE(w, "dup");
    if (record) {
        OW_STR(w, "gw", gw);
        OW_U64(w, "origin", origin);
    }
    ow_key(w, "results");
    ow_results(w, o);
    OW_U64(w, "seq", o->seq);
    ow_t_field(w, record ? FL_WT_REC_OUTCOME : FL_WT_OUTCOME);
    if (record) {
        OW_INT(w, "ts", o->ts_ms);
        OW_STR(w, "user", o->user);
    }
    ow_v_field(w);
    OW_U64(w, "version_after", o->version_after);
    OW_U64(w, "version_before", o->version_before);
}

/* Flush frame and record: atomic? base_version client_id commands doc gw*
 * if_version? origin* role*? seq t user* v   (* record only). */
static void ow_flush(fl_wire_ow_t *w, const fl_flush_t *f, bool record, fl_slice_t gw,
                     uint64_t origin, fl_slice_t role)
{
    if (!ow_doc_ok(w, f->doc))
        return;
    ow_map(w, (record ? 10u + (role.len > 0) : 7u) + f->atomic + f->has_if_version);
    if (f->atomic)
        OW_TRUE(w, "atomic");
    OW_U64(w, "base_version", f->base_version);
    OW_FIXED(w, "client_id", f->client_id, FL_CLIENT_ID_LEN);
    ow_key(w, "commands");
    ow_cmds(w, f->cmds, f->ncmds);
    OW_STR(w, "doc", f->doc);
    if (record)
        OW_STR(w, "gw", gw);
    if (f->has_if_version)
        OW_U64(w, "if_version", f->if_version);
    if (record)
        OW_U64(w, "origin", origin);
    if (record && role.len)
        OW_STR(w, "role", role);
    OW_U64(w, "seq", f->seq);
    ow_t_field(w, record ? FL_WT_REC_FLUSH : FL_WT_FLUSH);
    if (record)
        OW_STR(w, "user", f->user);
    ow_v_field(w);
}

/* Deltas: doc from_version items t v; an item: chain client_id commands seq
 * ts user version. */
static void ow_deltas(fl_wire_ow_t *w, const fl_wire_deltas_t *dl)
{
    uint32_t i;
    if (!ow_doc_ok(w, dl->doc))
        return;
    ow_map(w, 5);
    OW_STR(w, "doc", dl->doc);
    OW_U64(w, "from_version", dl->from_version);
    ow_key(w, "items");
    ow_array(w, dl->nitems);
    for (i = 0; i < dl->nitems && !w->err.code; i++) {
        const fl_wire_delta_t *it = &dl->items[i];
        ow_map(w, 7);
        OW_FIXED(w, "chain", it->chain, FL_HASH_LEN);
        OW_FIXED(w, "client_id", it->client_id, FL_CLIENT_ID_LEN);
        ow_key(w, "commands");
        ow_cmds(w, it->cmds, it->ncmds);
        OW_U64(w, "seq", it->seq);
        OW_INT(w, "ts", it->ts_ms);
        OW_STR(w, "user", it->user);
        OW_U64(w, "version", it->version);
    }
    ow_t_field(w, FL_WT_DELTAS);
    ow_v_field(w);
}

/* A rough size to start from, so that most messages need no realloc. */
static size_t cmds_estimate(const fl_cmd_t *cmds, uint32_t n)
{
    size_t s = 0;
    uint32_t i;
    for (i = 0; i < n; i++)
        s += 32 + cmds[i].path.len + cmds[i].from.len + cmds[i].key.len +
             (cmds[i].value.type == FL_STR || cmds[i].value.type == FL_BIN ? cmds[i].value.len
                                                                            : 16);
    return s;
}

/* ---- one writer per hot type (the direct_enc column) -------------------- */

/* Each reserves a rough size first (see cmds_estimate). */

void fl_wire_direct_enc_outcome(fl_wire_ow_t *w, const fl_wire_msg_t *msg)
{
    ow_reserve(w, 192 + 24 * (size_t)msg->u.outcome.outcome.nresults);
    ow_outcome(w, &msg->u.outcome.outcome, false, (fl_slice_t){"", 0}, 0);
}

void fl_wire_direct_enc_rec_outcome(fl_wire_ow_t *w, const fl_wire_msg_t *msg)
{
    const fl_wire_outcome_t *r = &msg->u.outcome;
    ow_reserve(w, 256 + 24 * (size_t)r->outcome.nresults + r->outcome.user.len + r->gw.len +
                      cmds_estimate(r->outcome.applied, r->outcome.napplied));
    ow_outcome(w, &r->outcome, true, r->gw, r->origin);
}

void fl_wire_direct_enc_flush(fl_wire_ow_t *w, const fl_wire_msg_t *msg)
{
    ow_reserve(w, 160 + cmds_estimate(msg->u.flush.cmds, msg->u.flush.ncmds));
    ow_flush(w, &msg->u.flush, false, (fl_slice_t){"", 0}, 0, (fl_slice_t){"", 0});
}

void fl_wire_direct_enc_rec_flush(fl_wire_ow_t *w, const fl_wire_msg_t *msg)
{
    const fl_wire_rec_flush_t *r = &msg->u.rflush;
    ow_reserve(w, 200 + r->flush.user.len + r->gw.len + r->role.len +
                      cmds_estimate(r->flush.cmds, r->flush.ncmds));
    ow_flush(w, &r->flush, true, r->gw, r->origin, r->role);
}

void fl_wire_direct_enc_deltas(fl_wire_ow_t *w, const fl_wire_msg_t *msg)
{
    ow_deltas(w, &msg->u.deltas);
}

/* ---- the whole message -------------------------------------------------- */

int fl_wire_direct_encode(const fl_wire_desc_t *desc, const fl_wire_msg_t *msg, char **out,
                          size_t *outlen, char *errstr, size_t errstr_size)
{
    fl_wire_ow_t w = {NULL, 0, 0, {0, errstr, errstr_size}};
    char *trimmed;
    *out = NULL;
    *outlen = 0;
    desc->direct_enc(&w, msg);
    if (w.err.code) {
        free(w.buf);
        return w.err.code;
    }
    /* outcome buffers are kept (the processor's window): no slack */
    if (w.cap - w.n > 64 && (trimmed = realloc(w.buf, w.n)))
        w.buf = trimmed;
    *out = w.buf;
    *outlen = w.n;
    return 0;
}

int fl_wire_direct_pack(const fl_wire_desc_t *desc, msgpack_packer *pk, const fl_wire_msg_t *msg,
                        char *errstr, size_t errstr_size)
{
    fl_wire_ow_t w = {NULL, 0, 0, {0, errstr, errstr_size}};
    int err;
    /* written whole or not at all, as the tree path does */
    desc->direct_enc(&w, msg);
    err = w.err.code;
    if (!err && pk->callback(pk->data, w.buf, w.n) != 0)
        err = fl_wire_seterr(errstr, errstr_size, FL_CODE_INTERNAL, "write failed");
    free(w.buf);
    return err;
}
