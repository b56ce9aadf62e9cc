/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire_direct_dec: reading msgpack in place (see wire_int.h).
 *
 * Flush frames and records (the processor's input) are read straight from
 * the msgpack bytes: the envelope and the commands are parsed in place,
 * strings copied into the arena, and only command values go through
 * fl_value_decode. It accepts only what the tree decoder accepts, with the
 * same result; anything else (an error of any kind, an unknown or repeated
 * key, another type) returns FL_WIRE_DIRECT_NO and the caller decodes the
 * message again through the tree, which then gives the error or the answer.
 * So errors keep their exact codes and messages, and rare shapes cost a
 * second pass instead of code here.
 *
 * fl_wire_peek lives here too: in msgpack it skips over the message to read
 * only "v" and "t".
 */
#include <stddef.h>
#include <string.h>

#include "wire_int.h"

/* read_flush reads a frame's flush through msg->u.rflush (see there). */
_Static_assert(offsetof(fl_wire_msg_t, u.rflush.flush) == offsetof(fl_wire_msg_t, u.flush),
               "a flush record starts with its flush");

#define BAD(d, ...) fl_wire_seterr((d)->errstr, (d)->errsz, FL_CODE_BAD_FRAME, __VA_ARGS__)

typedef struct ir_s {
    const uint8_t *p, *end;
} ir_t;

/* ---- the reader --------------------------------------------------------- */

static inline uint64_t ir_be(const uint8_t *p, int w)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads a width-w big-endian number after the tag. */
static inline bool ir_num(ir_t *r, int w, uint64_t *v)
{
    if (r->end - r->p < w)
        return false;
    *v = ir_be(r->p, w);
    r->p += w;
    return true;
}

/* A map or array header (fix, 16, 32) into *n. */
static inline bool ir_count(ir_t *r, uint8_t fix, uint8_t tag16, uint32_t *n)
{
    uint64_t v;
    uint8_t c;
    if (r->p >= r->end)
        return false;
    c = *r->p++;
    if ((c & 0xf0) == fix) {
        *n = c & 0x0f;
        return true;
    }
    if (c != tag16 && c != tag16 + 1)
        return false;
    if (!ir_num(r, c == tag16 ? 2 : 4, &v))
        return false;
    *n = (uint32_t)v;
    return true;
}

/* A str of any form; not checked for UTF-8. */
static inline bool ir_str(ir_t *r, const char **s, uint32_t *n)
{
    uint64_t v;
    uint8_t c;
    if (r->p >= r->end)
        return false;
    c = *r->p++;
    if (c >= 0xa0 && c <= 0xbf)
        v = c & 0x1f;
    else if (c < 0xd9 || c > 0xdb || !ir_num(r, 1 << (c - 0xd9), &v))
        return false;
    if ((uint64_t)(r->end - r->p) < v)
        return false;
    *s = (const char *)r->p;
    *n = (uint32_t)v;
    r->p += v;
    return true;
}

/* An int the strict reader accepts (uint64 only up to INT64_MAX). */
static inline bool ir_int(ir_t *r, int64_t *out)
{
    uint64_t v;
    uint8_t c;
    if (r->p >= r->end)
        return false;
    c = *r->p++;
    if (c <= 0x7f || c >= 0xe0) {
        *out = c <= 0x7f ? (int64_t)c : (int64_t)(int8_t)c;
        return true;
    }
    if (c >= 0xcc && c <= 0xcf) {
        if (!ir_num(r, 1 << (c - 0xcc), &v) || v > INT64_MAX)
            return false;
        *out = (int64_t)v;
        return true;
    }
    if (c >= 0xd0 && c <= 0xd3) {
        int w = 1 << (c - 0xd0);
        if (!ir_num(r, w, &v))
            return false;
        /* sign-extend from w bytes */
        if (w < 8 && (v >> (8 * w - 1)))
            v |= ~(uint64_t)0 << (8 * w);
        *out = (int64_t)v;
        return true;
    }
    return false;
}

static inline bool ir_uint(ir_t *r, uint64_t *out)
{
    int64_t i;
    if (!ir_int(r, &i) || i < 0)
        return false;
    *out = (uint64_t)i;
    return true;
}

static inline bool ir_nil(ir_t *r)
{
    if (r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

/* A UTF-8 str of at most max bytes, copied into the arena. */
static inline bool ir_slice(ir_t *r, fl_arena_t *arena, size_t max, fl_slice_t *out)
{
    const char *s;
    uint32_t n;
    char *copy;
    if (!ir_str(r, &s, &n) || n > max || !fl_utf8_valid(s, n))
        return false;
    if (n == 0) {
        out->ptr = "";
        out->len = 0;
        return true;
    }
    if (!(copy = fl_arena_alloc(arena, n)))
        return false;
    memcpy(copy, s, n);
    out->ptr = copy;
    out->len = n;
    return true;
}

/* An embedded value: ints, nil and bools inline, the rest through the
 * strict reader with the tree decoder's limits at this depth. */
static inline bool ir_value(ir_t *r, const fl_limits_t *vl, fl_arena_t *arena, fl_value_t *out)
{
    long n;
    uint8_t c;
    if (r->p >= r->end)
        return false;
    c = *r->p;
    memset(out, 0, sizeof *out);
    if (c == 0xc0 || c == 0xc2 || c == 0xc3) {
        r->p++;
        out->type = c == 0xc0 ? FL_NIL : FL_BOOL;
        out->u.b = c == 0xc3;
        return true;
    }
    if (c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xcf) || (c >= 0xd0 && c <= 0xd3)) {
        out->type = FL_INT;
        return ir_int(r, &out->u.i);
    }
    n = fl_value_decode((const char *)r->p, (size_t)(r->end - r->p), vl, arena, out);
    if (n <= 0)
        return false;
    r->p += n;
    return true;
}

/* Key names of a flush: a bit each, to refuse repeats. */
enum {
    K_V = 1 << 0, K_T = 1 << 1, K_DOC = 1 << 2, K_CLIENT_ID = 1 << 3, K_SEQ = 1 << 4,
    K_BASE = 1 << 5, K_IF = 1 << 6, K_ATOMIC = 1 << 7, K_COMMANDS = 1 << 8, K_USER = 1 << 9,
    K_GW = 1 << 10, K_ORIGIN = 1 << 11, K_ROLE = 1 << 12,
};

static int flush_key(const char *k, uint32_t n, bool record)
{
#define IS(lit) (memcmp(k, lit, n) == 0)
    switch (n) {
    case 1:
        return k[0] == 'v' ? K_V : k[0] == 't' ? K_T : 0;
    case 2:
        return record && IS("gw") ? K_GW : 0;
    case 3:
        return IS("doc") ? K_DOC : IS("seq") ? K_SEQ : 0;
    case 4:
        return !record ? 0 : IS("user") ? K_USER : IS("role") ? K_ROLE : 0;
    case 6:
        return IS("atomic") ? K_ATOMIC : record && IS("origin") ? K_ORIGIN : 0;
    case 8:
        return IS("commands") ? K_COMMANDS : 0;
    case 9:
        return IS("client_id") ? K_CLIENT_ID : 0;
    case 10:
        return IS("if_version") ? K_IF : 0;
    case 12:
        return IS("base_version") ? K_BASE : 0;
    default:
        return 0;
    }
#undef IS
}

/* One command map: op, path, from?, key?, value? and nothing else. */
static bool ir_cmd(ir_t *r, const fl_limits_t *vl, fl_arena_t *arena, fl_cmd_t *cmd)
{
    uint32_t n, i, seen = 0;
    memset(cmd, 0, sizeof *cmd);
    cmd->path.ptr = cmd->from.ptr = cmd->key.ptr = "";
    if (!ir_count(r, 0x80, 0xde, &n))
        return false;
    for (i = 0; i < n; i++) {
        const char *k;
        uint32_t kl, bit;
        if (!ir_str(r, &k, &kl))
            return false;
#define IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0)
        bit = kl == 2 ? (IS("op") ? 1 : 0)
            : kl == 4 ? (IS("path") ? 2 : IS("from") ? 4 : 0)
            : kl == 3 ? (IS("key") ? 8 : 0)
            : kl == 5 ? (IS("value") ? 16 : 0)
            : 0;
#undef IS
        if (!bit || (seen & bit))
            return false;
        seen |= bit;
        switch (bit) {
        case 1: {
            /* op names are ASCII: a match is valid UTF-8 of <= 16 bytes */
            const char *op;
            uint32_t ol;
            if (!ir_str(r, &op, &ol) || !(cmd->op = (uint8_t)fl_op_from_name(op, ol)))
                return false;
            break;
        }
        case 2:
            if (!ir_slice(r, arena, UINT32_MAX, &cmd->path))
                return false;
            break;
        case 4:
            if (!ir_nil(r) && !ir_slice(r, arena, UINT32_MAX, &cmd->from))
                return false;
            break;
        case 8:
            if (!ir_nil(r)) {
                if (!ir_slice(r, arena, UINT32_MAX, &cmd->key))
                    return false;
                cmd->has_key = true;
            }
            break;
        default:
            if (!ir_value(r, vl, arena, &cmd->value))
                return false;
            cmd->has_value = true;
            break;
        }
    }
    return (seen & 3) == 3;
}

/* ---- flushes (the direct_dec column) ------------------------------------ */

/* One command array (the count checked against the limit first). */
static bool ir_cmds(ir_t *r, uint32_t max, const fl_limits_t *vl, fl_arena_t *arena,
                    fl_flush_t *f)
{
    uint32_t c, n;
    fl_cmd_t *cmds = NULL;
    if (!ir_count(r, 0x90, 0xdc, &n) || n > max)
        return false;
    if (n && !(cmds = fl_arena_alloc(arena, n * sizeof(fl_cmd_t))))
        return false;
    f->ncmds = n;
    f->cmds = cmds;
    for (c = 0; c < n; c++)
        if (!ir_cmd(r, vl, arena, &cmds[c]))
            return false;
    return true;
}

/* The value of the envelope key bit, into rec (a frame uses rec->flush only). */
static bool ir_flush_field(ir_t *r, int bit, const fl_wire_limits_t *lim, const fl_limits_t *vl,
                           fl_arena_t *arena, fl_wire_rec_flush_t *rec)
{
    fl_flush_t *f = &rec->flush;
    int64_t iv;
    const char *t;
    uint32_t tl;
    switch (bit) {
    case K_V:
        return ir_int(r, &iv) && iv == FL_WIRE_VERSION;
    case K_T:
        return ir_str(r, &t, &tl) && tl == 5 && memcmp(t, "flush", 5) == 0;
    case K_DOC:
        return ir_slice(r, arena, FL_DOC_ID_MAX, &f->doc) && f->doc.len >= 1;
    case K_CLIENT_ID:
        if (r->end - r->p < 2 + FL_CLIENT_ID_LEN || r->p[0] != 0xc4 ||
            r->p[1] != FL_CLIENT_ID_LEN)
            return false;
        memcpy(f->client_id, r->p + 2, FL_CLIENT_ID_LEN);
        r->p += 2 + FL_CLIENT_ID_LEN;
        return true;
    case K_SEQ:
        return ir_uint(r, &f->seq) && f->seq != 0;
    case K_BASE:
        return ir_uint(r, &f->base_version);
    case K_IF:
        if (!ir_nil(r)) {
            if (!ir_uint(r, &f->if_version))
                return false;
            f->has_if_version = true;
        }
        return true;
    case K_ATOMIC:
        if (r->p >= r->end || (*r->p != 0xc0 && *r->p != 0xc2 && *r->p != 0xc3))
            return false;
        f->atomic = *r->p++ == 0xc3;
        return true;
    case K_COMMANDS:
        return ir_cmds(r, lim->max_commands, vl, arena, f);
    case K_USER:
        return ir_slice(r, arena, UINT32_MAX, &f->user);
    case K_GW:
        return ir_slice(r, arena, FL_WIRE_GW_MAX, &rec->gw);
    case K_ORIGIN:
        return ir_uint(r, &rec->origin);
    case K_ROLE:
        return ir_slice(r, arena, FL_WIRE_ROLE_MAX, &rec->role) && rec->role.len >= 1;
    default:
        return false;
    }
}

/* 0 with *msg filled, or FL_WIRE_DIRECT_NO (the tree decoder decides). A
 * frame's flush is read into msg->u.rflush.flush, which is msg->u.flush (the
 * record starts with it); its gw and origin keys are refused, so the rest of
 * the record struct stays zero. */
static int read_flush(bool record, const char *buf, size_t len, const fl_wire_limits_t *lim,
                      fl_arena_t *arena, fl_wire_msg_t *msg)
{
    ir_t r = {(const uint8_t *)buf, (const uint8_t *)buf + len};
    fl_wire_rec_flush_t *rec = &msg->u.rflush;
    uint32_t n, i, seen = 0, need;
    fl_limits_t vl;
    memset(msg, 0, sizeof *msg);
    if (len > lim->max_frame || !ir_count(&r, 0x80, 0xde, &n))
        return FL_WIRE_DIRECT_NO;
    /* what the tree decoder allows a command value: its limits, minus the
     * three levels above a value (root map, commands array, command map) */
    fl_wire_value_limits(lim, 3, &vl);
    rec->flush.user.ptr = "";
    if (record)
        rec->gw.ptr = rec->role.ptr = "";
    for (i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        int bit;
        if (!ir_str(&r, &k, &kl) || !(bit = flush_key(k, kl, record)) ||
            (seen & (uint32_t)bit) || !ir_flush_field(&r, bit, lim, &vl, arena, rec))
            return FL_WIRE_DIRECT_NO;
        seen |= (uint32_t)bit;
    }
    need = K_V | K_T | K_DOC | K_CLIENT_ID | K_SEQ | K_BASE | K_COMMANDS;
    if (record)
        need |= K_USER | K_GW | K_ORIGIN;
    if ((seen & need) != need || r.p != r.end)
        return FL_WIRE_DIRECT_NO;
    msg->type = record ? FL_WT_REC_FLUSH : FL_WT_FLUSH;
    return 0;
}

int fl_wire_direct_dec_flush(const char *buf, size_t len, const fl_wire_limits_t *lim,
                             fl_arena_t *arena, fl_wire_msg_t *msg)
{
    return read_flush(false, buf, len, lim, arena, msg);
}

int fl_wire_direct_dec_rec_flush(const char *buf, size_t len, const fl_wire_limits_t *lim,
                                 fl_arena_t *arena, fl_wire_msg_t *msg)
{
    return read_flush(true, buf, len, lim, arena, msg);
}

/* ---- peek --------------------------------------------------------------- */

/* Skips one msgpack value; returns the new position or NULL. Iterative over
 * a pending-items counter, so it needs no recursion and no depth limit. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end)
{
    uint64_t pending = 1;
    while (pending) {
        uint8_t c;
        uint64_t n = 0, add = 0, v = 0;
        size_t w;
        if (p >= end)
            return NULL;
        c = *p++;
        pending--;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
            continue;
        if (c >= 0xa0 && c <= 0xbf) {
            n = c & 0x1f;
        } else if (c >= 0x90 && c <= 0x9f) {
            add = c & 0x0f;
        } else if (c >= 0x80 && c <= 0x8f) {
            add = 2 * (uint64_t)(c & 0x0f);
        } else {
            switch (c) {
            case 0xc4: case 0xd9: w = 1; goto prefixed;                       /* bin8, str8 */
            case 0xc5: case 0xda: case 0xdc: case 0xde: w = 2; goto prefixed; /* 16-bit */
            case 0xc6: case 0xdb: case 0xdd: case 0xdf: w = 4; goto prefixed; /* 32-bit */
            case 0xca: n = 4; break;
            case 0xcb: n = 8; break;
            case 0xcc: case 0xd0: n = 1; break;
            case 0xcd: case 0xd1: n = 2; break;
            case 0xce: case 0xd2: n = 4; break;
            case 0xcf: case 0xd3: n = 8; break;
            default: return NULL; /* ext and 0xc1: invalid here anyway */
            }
            goto skip;
        prefixed: /* a length (bin, str) or a count (array 0xdc/dd, map 0xde/df) */
            if ((size_t)(end - p) < w)
                return NULL;
            for (; w; w--)
                v = v << 8 | *p++;
            if (c < 0xdc)
                n = v;
            else
                add = c >= 0xde ? 2 * v : v;
        }
    skip:
        if ((uint64_t)(end - p) < n)
            return NULL;
        p += n;
        if (add > (uint64_t)(end - p))
            return NULL; /* more items than bytes left */
        pending += add;
    }
    return p;
}

/* JSON: the whole text is parsed (jansson has no partial reader), in a
 * scratch arena under the record limits but no frame size limit. */
static int peek_json(fl_wire_dctx_t *d, const char *buf, size_t len, fl_wire_dir_t dir,
                     int *type, uint32_t *version)
{
    fl_arena_t *arena = fl_arena_new(1024);
    fl_wire_limits_t lim = fl_wire_limits_record;
    fl_value_t root;
    int err;
    if (!arena)
        return fl_wire_seterr(d->errstr, d->errsz, FL_CODE_INTERNAL, "out of memory");
    lim.max_frame = len;
    d->arena = arena;
    d->lim = &lim;
    err = fl_wire_tree_parse(d, buf, len, &root);
    if (!err)
        err = fl_wire_tree_header(d, dir, &root, type, version);
    fl_arena_free(arena);
    return err;
}

/* The value of "t" or "v" (the key at p, its value at kend..vend) into its
 * slot of e: FL_STR / FL_INT when it is what the header wants, else FL_BOOL
 * ("present but wrong"), which the header check then refuses. */
static void peek_slot(fl_entry_t e[2], const uint8_t *p, const uint8_t *kend,
                      const uint8_t *vend)
{
    fl_entry_t *slot = &e[p[1] == 'v'];
    size_t vlen = (size_t)(vend - kend);
    slot->val.type = FL_BOOL;
    if (p[1] == 'v' &&
        (kend[0] <= 0x7f || kend[0] >= 0xe0 || (kend[0] >= 0xcc && kend[0] <= 0xd3))) {
        /* ints need no allocation: the heap decode is free here */
        if (fl_value_decode((const char *)kend, vlen, NULL, NULL, &slot->val) < 0 ||
            slot->val.type != FL_INT) {
            fl_value_free(&slot->val);
            slot->val.type = FL_BOOL;
        }
    } else if (p[1] == 't' && kend[0] >= 0xa0 && kend[0] <= 0xbf &&
               fl_utf8_valid((const char *)kend + 1, vlen - 1)) {
        slot->val.type = FL_STR;
        slot->val.len = (uint32_t)(vlen - 1);
        slot->val.u.str = (char *)kend + 1;
    }
}

/* msgpack: the top map's keys are skipped over without decoding; only "t"
 * (a fixstr) and "v" (an int) are read, into a two-entry root map. */
static int peek_msgpack(fl_wire_dctx_t *d, const char *buf, size_t len, fl_wire_dir_t dir,
                        int *type, uint32_t *version)
{
    const uint8_t *p = (const uint8_t *)buf, *end = p + len;
    fl_entry_t e[2]; /* "t" < "v": already in key order */
    fl_value_t root;
    uint32_t n, i;
    uint8_t c;
    memset(e, 0, sizeof e);
    e[0].key = "t";
    e[1].key = "v";
    e[0].klen = e[1].klen = 1;
    if (len < 1)
        return BAD(d, "empty message");
    c = *p++;
    if (c >= 0x80 && c <= 0x8f) {
        n = c & 0x0f;
    } else if (c == 0xde && end - p >= 2) {
        n = (uint32_t)p[0] << 8 | p[1];
        p += 2;
    } else if (c == 0xdf && end - p >= 4) {
        n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        p += 4;
    } else {
        return BAD(d, "a message must be a map");
    }
    for (i = 0; i < n; i++) {
        const uint8_t *kend = skip_value(p, end), *vend;
        if (!kend || !(vend = skip_value(kend, end)))
            return BAD(d, "truncated message");
        if (kend - p == 2 && p[0] == 0xa1 && (p[1] == 't' || p[1] == 'v'))
            peek_slot(e, p, kend, vend);
        p = vend;
    }
    root.type = FL_MAP;
    root.u.ents = e;
    root.len = 2;
    if (e[0].val.type == FL_NIL && e[1].val.type == FL_NIL)
        root.len = 0;
    else if (e[0].val.type == FL_NIL) {
        root.u.ents = &e[1];
        root.len = 1;
    } else if (e[1].val.type == FL_NIL)
        root.len = 1;
    return fl_wire_tree_header(d, dir, &root, type, version);
}

int fl_wire_peek(const char *buf, size_t len, fl_wire_form_t form, fl_wire_dir_t dir,
                 int *type, uint32_t *version, char *errstr, size_t errstr_size)
{
    fl_wire_dctx_t d = {form, NULL, &fl_wire_limits_frame, errstr, errstr_size};
    *type = FL_WT_NONE;
    *version = 0;
    if (form == FL_WIRE_JSON)
        return peek_json(&d, buf, len, dir, type, version);
    return peek_msgpack(&d, buf, len, dir, type, version);
}
