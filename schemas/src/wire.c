/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire: message and record codec (see wire.h and schemas/PROTOCOL.md).
 *
 * The reference path ("tree"): decoding parses the whole message into an
 * arena value tree with the strict value reader (msgpack) or jansson +
 * fl_value_from_json (JSON), then reads fields by binary search over the
 * sorted map. Encoding builds the message map in a scratch arena and writes
 * it canonically, so the msgpack bytes of a message are the canonical
 * encoding of its map: keys in bytewise order, optional fields omitted when
 * absent. The two forms differ only in client ids and hashes (bin vs
 * lowercase hex) and bin values ({"$bin": base64}).
 *
 * The hot messages take direct paths in msgpack form (sections at the end
 * of the decoding and encoding parts): outcomes, flushes and deltas are
 * written in canonical key order without a tree, and flushes are read
 * without an envelope tree. They give the tree path's bytes and results
 * exactly (tests and fuzz_wire_* compare them).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/wire.h"
#include "value_int.h"

const fl_wire_limits_t fl_wire_limits_frame = {
    .max_frame = 1u << 20, .max_depth = 64, .max_commands = 1000, .max_body = 4096,
    .max_token = 8192,
};
const fl_wire_limits_t fl_wire_limits_record = {
    .max_frame = 64u << 20, .max_depth = 64, .max_commands = 1000, .max_body = 4096,
    .max_token = 8192,
};

#define ENVELOPE_DEPTH 8
#define CLIENT_NAME_MAX 128
#define REASON_MAX 1024
#define GW_MAX 255

static const struct {
    const char *name;
    fl_wire_dir_t dir;
} types[FL_WT__COUNT] = {
    [FL_WT_HELLO] = {"hello", FL_WIRE_C2S},
    [FL_WT_AUTH] = {"auth", FL_WIRE_C2S},
    [FL_WT_SUBSCRIBE] = {"subscribe", FL_WIRE_C2S},
    [FL_WT_UNSUBSCRIBE] = {"unsubscribe", FL_WIRE_C2S},
    [FL_WT_FLUSH] = {"flush", FL_WIRE_C2S},
    [FL_WT_SIGNAL] = {"signal", FL_WIRE_C2S},
    [FL_WT_PING] = {"ping", FL_WIRE_C2S},
    [FL_WT_WELCOME] = {"welcome", FL_WIRE_S2C},
    [FL_WT_SNAPSHOT] = {"snapshot", FL_WIRE_S2C},
    [FL_WT_DELTAS] = {"deltas", FL_WIRE_S2C},
    [FL_WT_OUTCOME] = {"outcome", FL_WIRE_S2C},
    [FL_WT_NACK] = {"nack", FL_WIRE_S2C},
    [FL_WT_SIGNAL_OUT] = {"signal", FL_WIRE_S2C},
    [FL_WT_ERROR] = {"error", FL_WIRE_S2C},
    [FL_WT_PONG] = {"pong", FL_WIRE_S2C},
    [FL_WT_REC_FLUSH] = {"flush", FL_WIRE_RECORD},
    [FL_WT_REC_SYNC] = {"sync", FL_WIRE_RECORD},
    [FL_WT_REC_OUTCOME] = {"outcome", FL_WIRE_RECORD},
    [FL_WT_REC_SYNC_REPLY] = {"sync_reply", FL_WIRE_RECORD},
    [FL_WT_REC_SNAPSHOT] = {"snapshot", FL_WIRE_RECORD},
    [FL_WT_REC_SIGNAL] = {"signal", FL_WIRE_RECORD},
    [FL_WT_REC_CHECKPOINT] = {"checkpoint", FL_WIRE_RECORD},
    [FL_WT_CHANGED] = {"changed", FL_WIRE_S2C},
};

const char *fl_wire_type_name(int type)
{
    return type > FL_WT_NONE && type < FL_WT__COUNT ? types[type].name : NULL;
}

fl_wire_dir_t fl_wire_type_dir(int type)
{
    return type > FL_WT_NONE && type < FL_WT__COUNT ? types[type].dir : (fl_wire_dir_t)0;
}

int fl_wire_type_from_name(fl_wire_dir_t dir, const char *name, size_t len)
{
    int i;
    for (i = 1; i < FL_WT__COUNT; i++)
        if (types[i].dir == dir && strlen(types[i].name) == len &&
            memcmp(types[i].name, name, len) == 0)
            return i;
    return FL_WT_NONE;
}

void fl_wire_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int seterr(char *errstr, size_t size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int seterr(char *errstr, size_t size, int code, const char *fmt, ...)
{
    va_list ap;
    if (errstr && size) {
        va_start(ap, fmt);
        vsnprintf(errstr, size, fmt, ap);
        va_end(ap);
    }
    return -code;
}

/* ======================================================================== */
/* decoding                                                                 */
/* ======================================================================== */

typedef struct dctx_s {
    fl_wire_form_t form;
    fl_arena_t *arena;
    const fl_wire_limits_t *lim;
    char *errstr;
    size_t errsz;
} dctx_t;

#define BAD(d, ...) seterr((d)->errstr, (d)->errsz, FL_CODE_BAD_FRAME, __VA_ARGS__)

static const fl_value_t *field(const fl_value_t *map, const char *key)
{
    return fl_map_get(map, key, strlen(key));
}

static fl_slice_t slice_of(const fl_value_t *v)
{
    fl_slice_t s = {v->len ? v->u.str : "", v->len};
    return s;
}

/* Required (or optional with *has) non-negative integer. */
static int get_u64(dctx_t *d, const fl_value_t *map, const char *key, bool *has, uint64_t *out)
{
    const fl_value_t *v = field(map, key);
    if (has)
        *has = false;
    if (!v || (has && v->type == FL_NIL)) {
        if (has)
            return 0;
        return BAD(d, "missing \"%s\"", key);
    }
    if (v->type != FL_INT || v->u.i < 0)
        return BAD(d, "\"%s\" must be a non-negative integer", key);
    *out = (uint64_t)v->u.i;
    if (has)
        *has = true;
    return 0;
}

static int get_u32(dctx_t *d, const fl_value_t *map, const char *key, bool *has, uint32_t *out)
{
    uint64_t u = 0;
    int err = get_u64(d, map, key, has, &u);
    if (err)
        return err;
    if (u > UINT32_MAX)
        return BAD(d, "\"%s\" out of range", key);
    *out = (uint32_t)u;
    return 0;
}

static int get_code(dctx_t *d, const fl_value_t *map, const char *key, uint16_t *out)
{
    uint32_t c = 0;
    int err = get_u32(d, map, key, NULL, &c);
    if (err)
        return err;
    if (c > 0xffff)
        return BAD(d, "\"%s\" out of range", key);
    *out = (uint16_t)c;
    return 0;
}

static int get_i64(dctx_t *d, const fl_value_t *map, const char *key, int64_t *out)
{
    const fl_value_t *v = field(map, key);
    if (!v)
        return BAD(d, "missing \"%s\"", key);
    if (v->type != FL_INT)
        return BAD(d, "\"%s\" must be an integer", key);
    *out = v->u.i;
    return 0;
}

static int get_bool(dctx_t *d, const fl_value_t *map, const char *key, bool *out)
{
    const fl_value_t *v = field(map, key);
    *out = false;
    if (!v || v->type == FL_NIL)
        return 0;
    if (v->type != FL_BOOL)
        return BAD(d, "\"%s\" must be a boolean", key);
    *out = v->u.b;
    return 0;
}

/* String field; has == NULL means required. Empty allowed unless min. */
static int get_str(dctx_t *d, const fl_value_t *map, const char *key, bool *has, size_t max,
                   fl_slice_t *out)
{
    const fl_value_t *v = field(map, key);
    out->ptr = "";
    out->len = 0;
    if (has)
        *has = false;
    if (!v || (has && v->type == FL_NIL)) {
        if (has)
            return 0;
        return BAD(d, "missing \"%s\"", key);
    }
    if (v->type != FL_STR)
        return BAD(d, "\"%s\" must be a string", key);
    if (v->len > max)
        return BAD(d, "\"%s\" longer than %zu bytes", key, max);
    *out = slice_of(v);
    if (has)
        *has = true;
    return 0;
}

/* A string with a byte bound of its own (token, client name, reason, server):
 * over it is "limit", naming the field, like an array over its count. */
static int get_str_max(dctx_t *d, const fl_value_t *map, const char *key, bool *has, size_t max,
                       fl_slice_t *out)
{
    const fl_value_t *v = field(map, key);
    if (v && v->type == FL_STR && v->len > max)
        return seterr(d->errstr, d->errsz, FL_CODE_LIMIT, "\"%s\" of %u bytes is over %zu", key,
                      v->len, max);
    return get_str(d, map, key, has, max, out);
}

static int get_doc(dctx_t *d, const fl_value_t *map, fl_slice_t *out)
{
    const fl_value_t *v = field(map, "doc");
    if (!v)
        return BAD(d, "missing \"doc\"");
    if (v->type != FL_STR)
        return BAD(d, "\"doc\" must be a string");
    if (v->len < 1 || v->len > FL_DOC_ID_MAX)
        return seterr(d->errstr, d->errsz, FL_CODE_BAD_DOC_ID, "doc id must be 1-%d bytes",
                      FL_DOC_ID_MAX);
    *out = slice_of(v); /* UTF-8 was checked by the value reader */
    return 0;
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int hi, lo;
        char a = s[2 * i], b = s[2 * i + 1];
        hi = a >= '0' && a <= '9' ? a - '0' : a >= 'a' && a <= 'f' ? a - 'a' + 10 : -1;
        lo = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ? b - 'a' + 10 : -1;
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Fixed-size bytes: bin of n bytes (msgpack) or 2n lowercase hex (JSON). */
static int get_fixed(dctx_t *d, const fl_value_t *v, const char *key, uint8_t *out, size_t n)
{
    if (!v)
        return BAD(d, "missing \"%s\"", key);
    if (d->form == FL_WIRE_MSGPACK) {
        if (v->type != FL_BIN || v->len != n)
            return BAD(d, "\"%s\" must be bin of %zu bytes", key, n);
        memcpy(out, v->u.str, n);
        return 0;
    }
    if (v->type != FL_STR || v->len != 2 * n || unhex(v->u.str, n, out) != 0)
        return BAD(d, "\"%s\" must be %zu lowercase hex digits", key, 2 * n);
    return 0;
}

static int get_bytes(dctx_t *d, const fl_value_t *map, const char *key, uint8_t *out, size_t n)
{
    return get_fixed(d, field(map, key), key, out, n);
}

static int get_array(dctx_t *d, const fl_value_t *map, const char *key, uint32_t max,
                     const fl_value_t **out)
{
    const fl_value_t *v = field(map, key);
    if (!v)
        return BAD(d, "missing \"%s\"", key);
    if (v->type != FL_ARRAY)
        return BAD(d, "\"%s\" must be an array", key);
    if (v->len > max)
        return seterr(d->errstr, d->errsz, FL_CODE_LIMIT, "\"%s\" has %u items, limit %u", key,
                      v->len, max);
    *out = v;
    return 0;
}

static void *dalloc(dctx_t *d, size_t n, size_t esz)
{
    if (n == 0)
        return NULL;
    return fl_arena_alloc(d->arena, n * esz); /* n <= 32-bit limits: no overflow */
}

static int dec_cmd(dctx_t *d, const fl_value_t *m, fl_cmd_t *cmd)
{
    fl_slice_t op;
    bool has;
    const fl_value_t *v;
    int err;
    memset(cmd, 0, sizeof *cmd);
    if (m->type != FL_MAP)
        return BAD(d, "a command must be a map");
    if ((err = get_str(d, m, "op", NULL, 16, &op)))
        return err;
    cmd->op = (uint8_t)fl_op_from_name(op.ptr, op.len);
    if (!cmd->op)
        return BAD(d, "unknown op \"%.*s\"", (int)op.len, op.ptr);
    if ((err = get_str(d, m, "path", NULL, UINT32_MAX, &cmd->path)) ||
        (err = get_str(d, m, "from", &has, UINT32_MAX, &cmd->from)) ||
        (err = get_str(d, m, "key", &cmd->has_key, UINT32_MAX, &cmd->key)))
        return err;
    /* Semantic checks (value required for add, from for move...) are the
     * engine's: such a command is rejected alone with "invalid". */
    v = field(m, "value");
    if (v) {
        cmd->has_value = true;
        cmd->value = *v;
    }
    return 0;
}

static int dec_cmds(dctx_t *d, const fl_value_t *map, const char *key, uint32_t *n,
                    fl_cmd_t **out)
{
    const fl_value_t *arr;
    uint32_t i;
    int err;
    if ((err = get_array(d, map, key, d->lim->max_commands, &arr)))
        return err;
    *n = arr->len;
    *out = dalloc(d, arr->len, sizeof(fl_cmd_t));
    if (arr->len && !*out)
        return seterr(d->errstr, d->errsz, FL_CODE_INTERNAL, "out of memory");
    for (i = 0; i < arr->len; i++)
        if ((err = dec_cmd(d, &arr->u.items[i], &(*out)[i])))
            return err;
    return 0;
}

static int dec_flush(dctx_t *d, const fl_value_t *m, fl_flush_t *f)
{
    int err;
    memset(f, 0, sizeof *f);
    f->user.ptr = "";
    if ((err = get_doc(d, m, &f->doc)) ||
        (err = get_bytes(d, m, "client_id", f->client_id, FL_CLIENT_ID_LEN)) ||
        (err = get_u64(d, m, "seq", NULL, &f->seq)) ||
        (err = get_u64(d, m, "base_version", NULL, &f->base_version)) ||
        (err = get_u64(d, m, "if_version", &f->has_if_version, &f->if_version)) ||
        (err = get_bool(d, m, "atomic", &f->atomic)))
        return err;
    if (f->seq == 0)
        return BAD(d, "\"seq\" starts at 1");
    return dec_cmds(d, m, "commands", &f->ncmds, &f->cmds);
}

static int dec_results(dctx_t *d, const fl_value_t *m, fl_outcome_t *o)
{
    const fl_value_t *arr;
    uint32_t i;
    int err;
    if ((err = get_array(d, m, "results", d->lim->max_commands, &arr)))
        return err;
    o->nresults = arr->len;
    o->results = dalloc(d, arr->len, sizeof(fl_cmd_result_t));
    if (arr->len && !o->results)
        return seterr(d->errstr, d->errsz, FL_CODE_INTERNAL, "out of memory");
    for (i = 0; i < arr->len; i++) {
        const fl_value_t *r = &arr->u.items[i];
        fl_cmd_result_t *res = &o->results[i];
        bool has;
        memset(res, 0, sizeof *res);
        if (r->type != FL_MAP)
            return BAD(d, "a result must be a map");
        if ((err = get_code(d, r, "code", &res->code)) ||
            (err = get_u64(d, r, "version", &has, &res->version)) ||
            (err = get_str(d, r, "key", &has, UINT32_MAX, &res->key)))
            return err;
        res->has_key = has; /* "" is a key */
    }
    return 0;
}

/* The outcome fields shared by the outcome message, the outcome record and
 * the stored outcomes of a snapshot's dedup table (without doc/client/seq). */
static int dec_outcome_body(dctx_t *d, const fl_value_t *m, fl_outcome_t *o)
{
    int err;
    bool has;
    if ((err = get_code(d, m, "code", &o->code)) || (err = get_bool(d, m, "dup", &o->duplicate)) ||
        (err = get_u64(d, m, "version_before", NULL, &o->version_before)) ||
        (err = get_u64(d, m, "version_after", NULL, &o->version_after)) ||
        (err = get_bytes(d, m, "chain", o->chain, FL_HASH_LEN)) || (err = dec_results(d, m, o)))
        return err;
    if (o->version_after < o->version_before)
        return BAD(d, "version_after < version_before");
    if ((err = get_str(d, m, "user", &has, UINT32_MAX, &o->user)))
        return err;
    if (field(m, "ts") && (err = get_i64(d, m, "ts", &o->ts_ms)))
        return err;
    if (field(m, "commands")) {
        if ((err = dec_cmds(d, m, "commands", &o->napplied, &o->applied)))
            return err;
        /* A duplicate repeats the original versions without the commands. */
        if (!o->duplicate && o->version_before + o->napplied != o->version_after)
            return BAD(d, "%u applied commands do not lead from version %llu to %llu",
                       o->napplied, (unsigned long long)o->version_before,
                       (unsigned long long)o->version_after);
    }
    return 0;
}

static int dec_outcome(dctx_t *d, const fl_value_t *m, fl_outcome_t *o)
{
    int err;
    memset(o, 0, sizeof *o);
    o->user.ptr = "";
    if ((err = get_doc(d, m, &o->doc)) ||
        (err = get_bytes(d, m, "client_id", o->client_id, FL_CLIENT_ID_LEN)) ||
        (err = get_u64(d, m, "seq", NULL, &o->seq)))
        return err;
    return dec_outcome_body(d, m, o);
}

static int dec_delta_items(dctx_t *d, const fl_value_t *m, uint64_t from, uint32_t *n,
                           fl_wire_delta_t **out, uint64_t *last)
{
    const fl_value_t *arr;
    uint32_t i;
    int err;
    if ((err = get_array(d, m, "items", d->lim->max_commands, &arr)))
        return err;
    *n = arr->len;
    *out = dalloc(d, arr->len, sizeof(fl_wire_delta_t));
    if (arr->len && !*out)
        return seterr(d->errstr, d->errsz, FL_CODE_INTERNAL, "out of memory");
    for (i = 0; i < arr->len; i++) {
        const fl_value_t *it = &arr->u.items[i];
        fl_wire_delta_t *dl = &(*out)[i];
        bool has;
        memset(dl, 0, sizeof *dl);
        if (it->type != FL_MAP)
            return BAD(d, "a delta must be a map");
        if ((err = get_u64(d, it, "version", NULL, &dl->version)) ||
            (err = get_bytes(d, it, "client_id", dl->client_id, FL_CLIENT_ID_LEN)) ||
            (err = get_u64(d, it, "seq", NULL, &dl->seq)) ||
            (err = get_str(d, it, "user", &has, UINT32_MAX, &dl->user)) ||
            (err = get_i64(d, it, "ts", &dl->ts_ms)) ||
            (err = get_bytes(d, it, "chain", dl->chain, FL_HASH_LEN)) ||
            (err = dec_cmds(d, it, "commands", &dl->ncmds, &dl->cmds)))
            return err;
        if (dl->version - dl->ncmds != from || dl->version < dl->ncmds)
            return BAD(d, "delta %u is not consecutive (version %llu, %u commands, after %llu)",
                       i, (unsigned long long)dl->version, dl->ncmds,
                       (unsigned long long)from);
        from = dl->version;
    }
    *last = from;
    return 0;
}

static int get_body(dctx_t *d, const fl_value_t *m, fl_value_t *out)
{
    const fl_value_t *v = field(m, "body");
    if (!v)
        return BAD(d, "missing \"body\"");
    if (fl_value_encoded_size(v) > d->lim->max_body)
        return seterr(d->errstr, d->errsz, FL_CODE_LIMIT, "signal body over %u bytes",
                      d->lim->max_body);
    *out = *v;
    return 0;
}

static int get_state(dctx_t *d, const fl_value_t *m, fl_value_t *out)
{
    const fl_value_t *v = field(m, "state");
    if (!v)
        return BAD(d, "missing \"state\"");
    if (v->type != FL_MAP)
        return BAD(d, "\"state\" must be a map");
    *out = *v;
    return 0;
}

static int dec_dedup(dctx_t *d, const fl_value_t *m, fl_wire_snapshot_t *s)
{
    const fl_value_t *arr;
    uint32_t i;
    int err;
    if ((err = get_array(d, m, "dedup", UINT32_MAX, &arr)))
        return err;
    s->ndedup = arr->len;
    s->dedup = dalloc(d, arr->len, sizeof(fl_wire_dedup_t));
    if (arr->len && !s->dedup)
        return seterr(d->errstr, d->errsz, FL_CODE_INTERNAL, "out of memory");
    for (i = 0; i < arr->len; i++) {
        const fl_value_t *e = &arr->u.items[i];
        fl_wire_dedup_t *dd = &s->dedup[i];
        memset(dd, 0, sizeof *dd);
        if (e->type != FL_ARRAY || e->len != 3 || e->u.items[1].type != FL_INT ||
            e->u.items[1].u.i < 1 || e->u.items[2].type != FL_MAP)
            return BAD(d, "dedup entry %u must be [client_id, seq, outcome]", i);
        if ((err = get_fixed(d, &e->u.items[0], "dedup client_id", dd->client_id,
                             FL_CLIENT_ID_LEN)))
            return err;
        dd->seq = (uint64_t)e->u.items[1].u.i;
        dd->outcome.user.ptr = "";
        if ((err = dec_outcome_body(d, &e->u.items[2], &dd->outcome)))
            return err;
        dd->outcome.doc = s->doc;
        memcpy(dd->outcome.client_id, dd->client_id, FL_CLIENT_ID_LEN);
        dd->outcome.seq = dd->seq;
    }
    return 0;
}

static int dec_body(dctx_t *d, int type, const fl_value_t *m, fl_wire_msg_t *msg)
{
    int err;
    bool has;
    uint64_t last;
    switch (type) {
    case FL_WT_HELLO:
    case FL_WT_AUTH: {
        fl_wire_hello_t *h = &msg->u.hello;
        if ((err = get_str_max(d, m, "token", NULL, d->lim->max_token, &h->token)))
            return err;
        if (type == FL_WT_HELLO)
            return get_str_max(d, m, "client", &has, CLIENT_NAME_MAX, &h->client);
        h->client.ptr = "";
        h->client.len = 0;
        return 0;
    }
    case FL_WT_SUBSCRIBE:
    case FL_WT_UNSUBSCRIBE: {
        fl_wire_subscribe_t *s = &msg->u.sub;
        s->has_version = false;
        s->have_version = 0;
        if ((err = get_doc(d, m, &s->doc)))
            return err;
        if (type == FL_WT_SUBSCRIBE)
            return get_u64(d, m, "have_version", &s->has_version, &s->have_version);
        return 0;
    }
    case FL_WT_FLUSH:
        return dec_flush(d, m, &msg->u.flush);
    case FL_WT_SIGNAL:
    case FL_WT_SIGNAL_OUT:
    case FL_WT_REC_SIGNAL: {
        fl_wire_signal_t *s = &msg->u.signal;
        memset(s, 0, sizeof *s);
        s->user.ptr = s->gw.ptr = "";
        if ((err = get_doc(d, m, &s->doc)) || (err = get_body(d, m, &s->body)))
            return err;
        if (type == FL_WT_SIGNAL_OUT)
            return get_str(d, m, "from", NULL, UINT32_MAX, &s->user);
        if (type == FL_WT_REC_SIGNAL) {
            if ((err = get_str(d, m, "user", NULL, UINT32_MAX, &s->user)))
                return err;
            return get_str(d, m, "gw", NULL, GW_MAX, &s->gw);
        }
        return 0;
    }
    case FL_WT_PING:
    case FL_WT_PONG:
        msg->u.ping.id = 0;
        return get_u64(d, m, "id", &msg->u.ping.has_id, &msg->u.ping.id);
    case FL_WT_WELCOME: {
        fl_wire_welcome_t *w = &msg->u.welcome;
        const fl_value_t *l = field(m, "limits");
        if (!l || l->type != FL_MAP)
            return BAD(d, "\"limits\" must be a map");
        if ((err = get_u32(d, l, "max_frame", NULL, &w->max_frame)) ||
            (err = get_u32(d, l, "max_commands", NULL, &w->max_commands)) ||
            (err = get_u32(d, l, "max_subscriptions", NULL, &w->max_subscriptions)) ||
            (err = get_u32(d, l, "rate", NULL, &w->rate)) ||
            (err = get_u32(d, l, "burst", NULL, &w->burst)) ||
            (err = get_str(d, m, "user", NULL, UINT32_MAX, &w->user)) ||
            (err = get_str_max(d, m, "server", NULL, CLIENT_NAME_MAX, &w->server)))
            return err;
        if (field(m, "exp")) {
            const fl_value_t *e = field(m, "exp");
            if (e->type != FL_NIL) {
                if ((err = get_i64(d, m, "exp", &w->exp)))
                    return err;
                w->has_exp = true;
            }
        }
        if ((err = get_u32(d, m, "leeway", &w->has_leeway, &w->leeway)))
            return err;
        return 0;
    }
    case FL_WT_SNAPSHOT:
    case FL_WT_REC_SNAPSHOT: {
        fl_wire_snapshot_t *s = &msg->u.snapshot;
        memset(s, 0, sizeof *s);
        if ((err = get_doc(d, m, &s->doc)) || (err = get_u64(d, m, "version", NULL, &s->version)) ||
            (err = get_bytes(d, m, "chain", s->chain, FL_HASH_LEN)) ||
            (err = get_state(d, m, &s->state)))
            return err;
        if (type == FL_WT_SNAPSHOT)
            return 0;
        if ((err = get_bytes(d, m, "digest", s->digest, FL_HASH_LEN)) ||
            (err = get_i64(d, m, "events_offset", &s->events_offset)) ||
            (err = get_u64(d, m, "dedup_evicted", &has, &s->dedup_evicted)))
            return err;
        return dec_dedup(d, m, s);
    }
    case FL_WT_DELTAS: {
        fl_wire_deltas_t *dl = &msg->u.deltas;
        if ((err = get_doc(d, m, &dl->doc)) ||
            (err = get_u64(d, m, "from_version", NULL, &dl->from_version)))
            return err;
        if ((err = dec_delta_items(d, m, dl->from_version, &dl->nitems, &dl->items, &last)))
            return err;
        if (dl->nitems == 0)
            return BAD(d, "\"items\" is empty");
        return 0;
    }
    case FL_WT_OUTCOME:
    case FL_WT_REC_OUTCOME: {
        fl_wire_outcome_t *o = &msg->u.outcome;
        o->gw.ptr = "";
        o->gw.len = 0;
        o->origin = 0;
        if ((err = dec_outcome(d, m, &o->outcome)))
            return err;
        if (type == FL_WT_OUTCOME)
            return 0;
        if (!field(m, "commands") || !field(m, "ts") || !field(m, "user"))
            return BAD(d, "an outcome record needs \"commands\", \"ts\" and \"user\"");
        if ((err = get_str(d, m, "gw", NULL, GW_MAX, &o->gw)) ||
            (err = get_u64(d, m, "origin", NULL, &o->origin)))
            return err;
        return 0;
    }
    case FL_WT_NACK: {
        fl_wire_nack_t *n = &msg->u.nack;
        memset(n, 0, sizeof *n);
        n->doc.ptr = "";
        if (field(m, "doc") && (err = get_doc(d, m, &n->doc)))
            return err;
        if (field(m, "client_id")) {
            if ((err = get_bytes(d, m, "client_id", n->client_id, FL_CLIENT_ID_LEN)))
                return err;
            n->has_client_id = true;
        }
        if ((err = get_u64(d, m, "seq", &n->has_seq, &n->seq)) ||
            (err = get_u32(d, m, "retry_after_ms", &n->has_retry, &n->retry_after_ms)) ||
            (err = get_code(d, m, "code", &n->code)) ||
            (err = get_str_max(d, m, "reason", NULL, REASON_MAX, &n->reason)))
            return err;
        return 0;
    }
    case FL_WT_ERROR:
        if ((err = get_code(d, m, "code", &msg->u.error.code)) ||
            (err = get_str_max(d, m, "reason", NULL, REASON_MAX, &msg->u.error.reason)))
            return err;
        return 0;
    case FL_WT_REC_FLUSH: {
        fl_wire_rec_flush_t *r = &msg->u.rflush;
        if ((err = dec_flush(d, m, &r->flush)) ||
            (err = get_str(d, m, "user", NULL, UINT32_MAX, &r->flush.user)) ||
            (err = get_str(d, m, "gw", NULL, GW_MAX, &r->gw)) ||
            (err = get_u64(d, m, "origin", NULL, &r->origin)))
            return err;
        return 0;
    }
    case FL_WT_REC_SYNC: {
        fl_wire_sync_t *s = &msg->u.sync;
        if ((err = get_doc(d, m, &s->doc)) || (err = get_str(d, m, "gw", NULL, GW_MAX, &s->gw)) ||
            (err = get_u64(d, m, "req", NULL, &s->req)) ||
            (err = get_u64(d, m, "have_version", NULL, &s->have_version)))
            return err;
        return 0;
    }
    case FL_WT_REC_SYNC_REPLY: {
        fl_wire_sync_reply_t *r = &msg->u.reply;
        uint64_t from;
        bool has_from;
        memset(r, 0, sizeof *r);
        if ((err = get_doc(d, m, &r->doc)) || (err = get_str(d, m, "gw", NULL, GW_MAX, &r->gw)) ||
            (err = get_u64(d, m, "req", NULL, &r->req)) ||
            (err = get_u64(d, m, "version", NULL, &r->version)) ||
            (err = get_bytes(d, m, "chain", r->chain, FL_HASH_LEN)))
            return err;
        if (field(m, "state")) {
            if (field(m, "items"))
                return BAD(d, "a sync_reply carries either \"state\" or \"items\"");
            r->has_state = true;
            return get_state(d, m, &r->state);
        }
        if ((err = get_u64(d, m, "from_version", &has_from, &from)))
            return err;
        if (!has_from)
            return BAD(d, "a sync_reply needs \"state\" or \"from_version\" and \"items\"");
        if ((err = dec_delta_items(d, m, from, &r->nitems, &r->items, &last)))
            return err;
        if (last != r->version)
            return BAD(d, "items end at version %llu, not %llu", (unsigned long long)last,
                       (unsigned long long)r->version);
        return 0;
    }
    case FL_WT_CHANGED: {
        fl_wire_changed_t *c = &msg->u.changed;
        if ((err = get_doc(d, m, &c->doc)) || (err = get_u64(d, m, "version", NULL, &c->version)))
            return err;
        return 0;
    }
    case FL_WT_REC_CHECKPOINT: {
        uint64_t part;
        if ((err = get_u64(d, m, "partition", NULL, &part)) ||
            (err = get_u64(d, m, "events_offset", NULL, &msg->u.checkpoint.events_offset)))
            return err;
        if (part > INT32_MAX)
            return BAD(d, "\"partition\" out of range");
        msg->u.checkpoint.partition = (uint32_t)part;
        return 0;
    }
    default:
        return BAD(d, "internal: no decoder for type %d", type);
    }
}

/* Parses the input into an arena value tree (either form). */
static int parse_tree(dctx_t *d, const char *buf, size_t len, fl_value_t *root)
{
    fl_limits_t vl;
    vl.max_bytes = d->lim->max_frame;
    vl.max_depth = d->lim->max_depth + ENVELOPE_DEPTH;
    vl.max_items = 1000000;
    vl.max_str = d->lim->max_frame > UINT32_MAX ? UINT32_MAX : (uint32_t)d->lim->max_frame;
    if (len > d->lim->max_frame)
        return seterr(d->errstr, d->errsz, FL_CODE_LIMIT, "message of %zu bytes over %zu", len,
                      d->lim->max_frame);
    if (d->form == FL_WIRE_MSGPACK) {
        long n = fl_value_decode(buf, len, &vl, d->arena, root);
        if (n < 0)
            return BAD(d, "bad msgpack: %s", fl_value_strerror((int)n));
        if ((size_t)n != len)
            return BAD(d, "%zu bytes after the message", len - (size_t)n);
    } else {
        json_error_t jerr;
        /* U+0000 is data (a JSON client must be able to write back any
         * string the msgpack side holds); strings are read by length */
        json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        int err;
        if (!j)
            return BAD(d, "bad JSON: %s", jerr.text);
        err = fl_value_from_json(j, &vl, d->arena, root);
        json_decref(j);
        if (err)
            return BAD(d, "bad JSON value: %s", fl_value_strerror(err));
    }
    if (root->type != FL_MAP)
        return BAD(d, "a message must be a map");
    return 0;
}

/* Reads "v" and "t" from a decoded root. */
static int root_header(dctx_t *d, fl_wire_dir_t dir, const fl_value_t *root, int *type,
                       uint32_t *version)
{
    const fl_value_t *v = field(root, "v"), *t = field(root, "t");
    if (!v || v->type != FL_INT)
        return BAD(d, "missing or non-integer \"v\"");
    *version = v->u.i < 0 || v->u.i > UINT32_MAX ? UINT32_MAX : (uint32_t)v->u.i;
    if (v->u.i != FL_WIRE_VERSION)
        return seterr(d->errstr, d->errsz, FL_CODE_UNSUPPORTED_VERSION,
                      "schema version %lld not supported (want %d)", (long long)v->u.i,
                      FL_WIRE_VERSION);
    if (!t || t->type != FL_STR)
        return BAD(d, "missing or non-string \"t\"");
    *type = fl_wire_type_from_name(dir, t->u.str, t->len);
    if (*type == FL_WT_NONE)
        return seterr(d->errstr, d->errsz, FL_CODE_UNKNOWN_TYPE, "unknown type \"%.*s\"",
                      (int)(t->len > 64 ? 64 : t->len), t->len ? t->u.str : "");
    return 0;
}

int fl_wire_decode_tree(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len,
                        const fl_wire_limits_t *lim, fl_arena_t *arena, fl_wire_msg_t *msg,
                        char *errstr, size_t errstr_size)
{
    dctx_t d = {form, arena, lim, errstr, errstr_size};
    fl_value_t root;
    uint32_t version;
    int type = FL_WT_NONE, err;
    if (!lim)
        d.lim = dir == FL_WIRE_RECORD ? &fl_wire_limits_record : &fl_wire_limits_frame;
    memset(msg, 0, sizeof *msg);
    if ((err = parse_tree(&d, buf, len, &root)) ||
        (err = root_header(&d, dir, &root, &type, &version)))
        return err;
    msg->type = (uint8_t)type;
    return dec_body(&d, type, &root, msg);
}

/* ======================================================================== */
/* direct decoding of flushes                                               */
/* ======================================================================== */

/*
 * Flush frames and records (the processor's input) are read straight from
 * the msgpack bytes: the envelope and the commands are parsed in place,
 * strings copied into the arena, and only command values go through
 * fl_value_decode. It accepts only what the tree decoder accepts, with the
 * same result; anything else (an error of any kind, an unknown or repeated
 * key, another type) returns DIRECT_NO and the caller decodes the message
 * again through the tree, which then gives the error or the answer. So
 * errors keep their exact codes and messages, and rare shapes cost a second
 * pass instead of code here.
 */

#define DIRECT_NO 1

typedef struct ir_s {
    const uint8_t *p, *end;
} ir_t;

static uint64_t ir_be(const uint8_t *p, int w)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads a width-w big-endian number after the tag. */
static bool ir_num(ir_t *r, int w, uint64_t *v)
{
    if (r->end - r->p < w)
        return false;
    *v = ir_be(r->p, w);
    r->p += w;
    return true;
}

/* A map or array header (fix, 16, 32) into *n. */
static bool ir_count(ir_t *r, uint8_t fix, uint8_t tag16, uint32_t *n)
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
static bool ir_str(ir_t *r, const char **s, uint32_t *n)
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
static bool ir_int(ir_t *r, int64_t *out)
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

static bool ir_uint(ir_t *r, uint64_t *out)
{
    int64_t i;
    if (!ir_int(r, &i) || i < 0)
        return false;
    *out = (uint64_t)i;
    return true;
}

static bool ir_nil(ir_t *r)
{
    if (r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

/* A UTF-8 str of at most max bytes, copied into the arena. */
static bool ir_slice(ir_t *r, fl_arena_t *arena, size_t max, fl_slice_t *out)
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
static bool ir_value(ir_t *r, const fl_limits_t *vl, fl_arena_t *arena, fl_value_t *out)
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
    K_GW = 1 << 10, K_ORIGIN = 1 << 11,
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
        return record && IS("user") ? K_USER : 0;
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

/* 0 with *msg filled, or DIRECT_NO (the tree decoder decides). */
static int direct_decode_flush(fl_wire_dir_t dir, const char *buf, size_t len,
                               const fl_wire_limits_t *lim, fl_arena_t *arena, fl_wire_msg_t *msg)
{
    bool record = dir == FL_WIRE_RECORD;
    ir_t r = {(const uint8_t *)buf, (const uint8_t *)buf + len};
    fl_flush_t *f = record ? &msg->u.rflush.flush : &msg->u.flush;
    fl_slice_t gw = {"", 0};
    uint64_t origin = 0;
    uint32_t n, i, seen = 0, need;
    fl_limits_t vl;
    memset(msg, 0, sizeof *msg);
    if (len > lim->max_frame || !ir_count(&r, 0x80, 0xde, &n))
        return DIRECT_NO;
    /* what the tree decoder allows a command value: its limits, minus the
     * three levels above a value (root map, commands array, command map) */
    vl.max_bytes = lim->max_frame;
    vl.max_depth = lim->max_depth + ENVELOPE_DEPTH - 3;
    vl.max_items = 1000000;
    vl.max_str = lim->max_frame > UINT32_MAX ? UINT32_MAX : (uint32_t)lim->max_frame;
    f->user.ptr = "";
    for (i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        int bit;
        int64_t iv;
        if (!ir_str(&r, &k, &kl) || !(bit = flush_key(k, kl, record)) || (seen & (uint32_t)bit))
            return DIRECT_NO;
        seen |= (uint32_t)bit;
        switch (bit) {
        case K_V:
            if (!ir_int(&r, &iv) || iv != FL_WIRE_VERSION)
                return DIRECT_NO;
            break;
        case K_T: {
            const char *t;
            uint32_t tl;
            if (!ir_str(&r, &t, &tl) || tl != 5 || memcmp(t, "flush", 5) != 0)
                return DIRECT_NO;
            break;
        }
        case K_DOC:
            if (!ir_slice(&r, arena, FL_DOC_ID_MAX, &f->doc) || f->doc.len < 1)
                return DIRECT_NO;
            break;
        case K_CLIENT_ID:
            if (r.end - r.p < 2 + FL_CLIENT_ID_LEN || r.p[0] != 0xc4 || r.p[1] != FL_CLIENT_ID_LEN)
                return DIRECT_NO;
            memcpy(f->client_id, r.p + 2, FL_CLIENT_ID_LEN);
            r.p += 2 + FL_CLIENT_ID_LEN;
            break;
        case K_SEQ:
            if (!ir_uint(&r, &f->seq) || f->seq == 0)
                return DIRECT_NO;
            break;
        case K_BASE:
            if (!ir_uint(&r, &f->base_version))
                return DIRECT_NO;
            break;
        case K_IF:
            if (!ir_nil(&r)) {
                if (!ir_uint(&r, &f->if_version))
                    return DIRECT_NO;
                f->has_if_version = true;
            }
            break;
        case K_ATOMIC:
            if (r.p >= r.end || (*r.p != 0xc0 && *r.p != 0xc2 && *r.p != 0xc3))
                return DIRECT_NO;
            f->atomic = *r.p++ == 0xc3;
            break;
        case K_COMMANDS:
            if (!ir_count(&r, 0x90, 0xdc, &f->ncmds) || f->ncmds > lim->max_commands)
                return DIRECT_NO;
            if (f->ncmds && !(f->cmds = fl_arena_alloc(arena, f->ncmds * sizeof(fl_cmd_t))))
                return DIRECT_NO;
            for (uint32_t c = 0; c < f->ncmds; c++)
                if (!ir_cmd(&r, &vl, arena, &f->cmds[c]))
                    return DIRECT_NO;
            break;
        case K_USER:
            if (!ir_slice(&r, arena, UINT32_MAX, &f->user))
                return DIRECT_NO;
            break;
        case K_GW:
            if (!ir_slice(&r, arena, GW_MAX, &gw))
                return DIRECT_NO;
            break;
        case K_ORIGIN:
            if (!ir_uint(&r, &origin))
                return DIRECT_NO;
            break;
        default:
            return DIRECT_NO;
        }
    }
    need = K_V | K_T | K_DOC | K_CLIENT_ID | K_SEQ | K_BASE | K_COMMANDS;
    if (record)
        need |= K_USER | K_GW | K_ORIGIN;
    if ((seen & need) != need || r.p != r.end)
        return DIRECT_NO;
    msg->type = record ? FL_WT_REC_FLUSH : FL_WT_FLUSH;
    if (record) {
        msg->u.rflush.gw = gw;
        msg->u.rflush.origin = origin;
    }
    return 0;
}

int fl_wire_decode(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len,
                   const fl_wire_limits_t *lim, fl_arena_t *arena, fl_wire_msg_t *msg,
                   char *errstr, size_t errstr_size)
{
    if (!lim)
        lim = dir == FL_WIRE_RECORD ? &fl_wire_limits_record : &fl_wire_limits_frame;
    if (form == FL_WIRE_MSGPACK && (dir == FL_WIRE_RECORD || dir == FL_WIRE_C2S) &&
        direct_decode_flush(dir, buf, len, lim, arena, msg) == 0)
        return 0;
    return fl_wire_decode_tree(dir, form, buf, len, lim, arena, msg, errstr, errstr_size);
}

int fl_wire_decode_record(const char *buf, size_t len, fl_arena_t *arena, fl_wire_msg_t *msg,
                          char *errstr, size_t errstr_size)
{
    return fl_wire_decode(FL_WIRE_RECORD, FL_WIRE_MSGPACK, buf, len, NULL, arena, msg, errstr,
                          errstr_size);
}

/* ---- peek --------------------------------------------------------------- */

/* Skips one msgpack value; returns the new position or NULL. Iterative over
 * a pending-items counter, so it needs no recursion and no depth limit. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end)
{
    uint64_t pending = 1;
    while (pending) {
        uint8_t c;
        uint64_t n = 0, add = 0;
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
            case 0xc4: case 0xd9: w = 1; goto len;
            case 0xc5: case 0xda: w = 2; goto len;
            case 0xc6: case 0xdb: w = 4; goto len;
            case 0xdc: case 0xde: w = 2; goto cnt;
            case 0xdd: case 0xdf: w = 4; goto cnt;
            case 0xca: n = 4; break;
            case 0xcb: n = 8; break;
            case 0xcc: case 0xd0: n = 1; break;
            case 0xcd: case 0xd1: n = 2; break;
            case 0xce: case 0xd2: n = 4; break;
            case 0xcf: case 0xd3: n = 8; break;
            default: return NULL; /* ext and 0xc1: invalid here anyway */
            }
            goto skip;
        len:
            if ((size_t)(end - p) < w)
                return NULL;
            for (; w; w--)
                n = n << 8 | *p++;
            goto skip;
        cnt:
            if ((size_t)(end - p) < w)
                return NULL;
            for (; w; w--)
                add = add << 8 | *p++;
            if (c >= 0xde)
                add *= 2;
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

int fl_wire_peek(const char *buf, size_t len, fl_wire_form_t form, fl_wire_dir_t dir,
                 int *type, uint32_t *version, char *errstr, size_t errstr_size)
{
    dctx_t d = {form, NULL, &fl_wire_limits_frame, errstr, errstr_size};
    fl_value_t root;
    *type = FL_WT_NONE;
    *version = 0;
    if (form == FL_WIRE_JSON) {
        fl_arena_t *arena = fl_arena_new(1024);
        int err;
        fl_wire_limits_t lim = fl_wire_limits_record;
        if (!arena)
            return seterr(errstr, errstr_size, FL_CODE_INTERNAL, "out of memory");
        lim.max_frame = len;
        d.arena = arena;
        d.lim = &lim;
        err = parse_tree(&d, buf, len, &root);
        if (!err)
            err = root_header(&d, dir, &root, type, version);
        fl_arena_free(arena);
        return err;
    } else {
        const uint8_t *p = (const uint8_t *)buf, *end = p + len;
        fl_entry_t e[2]; /* "t" < "v": already in key order */
        uint32_t n, i;
        uint8_t c;
        memset(e, 0, sizeof e);
        e[0].key = "t";
        e[1].key = "v";
        e[0].klen = e[1].klen = 1;
        if (len < 1)
            return BAD(&d, "empty message");
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
            return BAD(&d, "a message must be a map");
        }
        for (i = 0; i < n; i++) {
            const uint8_t *kend = skip_value(p, end), *vend;
            if (!kend || !(vend = skip_value(kend, end)))
                return BAD(&d, "truncated message");
            if (kend - p == 2 && p[0] == 0xa1 && (p[1] == 't' || p[1] == 'v')) {
                fl_entry_t *slot = &e[p[1] == 'v'];
                size_t vlen = (size_t)(vend - kend);
                slot->val.type = FL_BOOL; /* present but not what we want */
                if (p[1] == 'v' && (kend[0] <= 0x7f || kend[0] >= 0xe0 ||
                                    (kend[0] >= 0xcc && kend[0] <= 0xd3))) {
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
        return root_header(&d, dir, &root, type, version);
    }
}

/* ---- what a bad flush frame says about itself ----------------------------- */

unsigned fl_wire_flush_ident(fl_wire_form_t form, const char *buf, size_t len,
                             const fl_wire_limits_t *lim, fl_arena_t *arena, fl_slice_t *doc,
                             uint8_t client_id[FL_CLIENT_ID_LEN], uint64_t *seq)
{
    dctx_t d = {form, arena, lim ? lim : &fl_wire_limits_frame, NULL, 0};
    fl_value_t root;
    const fl_value_t *v;
    uint8_t cid[FL_CLIENT_ID_LEN];
    unsigned got = 0;
    *doc = (fl_slice_t){"", 0};
    *seq = 0;
    if (parse_tree(&d, buf, len, &root) != 0)
        return 0;
    v = field(&root, "doc");
    if (v && v->type == FL_STR && v->len >= 1 && v->len <= FL_DOC_ID_MAX) {
        *doc = slice_of(v); /* UTF-8 was checked by the value reader */
        got |= FL_WIRE_IDENT_DOC;
    }
    if ((v = field(&root, "client_id")) && get_fixed(&d, v, "client_id", cid, sizeof cid) == 0) {
        memcpy(client_id, cid, sizeof cid);
        got |= FL_WIRE_IDENT_CLIENT_ID;
    }
    if ((v = field(&root, "seq")) && v->type == FL_INT && v->u.i >= 0) {
        *seq = (uint64_t)v->u.i;
        got |= FL_WIRE_IDENT_SEQ;
    }
    return got;
}

/* ======================================================================== */
/* encoding                                                                 */
/* ======================================================================== */

#define MAP_CAP 20 /* the most fields any message map has, with room */

typedef struct bld_s {
    fl_arena_t *arena;
    fl_wire_form_t form;
    int err;
    char *errstr;
    size_t errsz;
} bld_t;

static void b_fail(bld_t *b, int code, const char *what)
{
    if (!b->err)
        b->err = seterr(b->errstr, b->errsz, code, "%s", what);
}

static void b_map(bld_t *b, fl_value_t *out)
{
    out->type = FL_MAP;
    out->len = 0;
    out->u.ents = fl_arena_alloc(b->arena, MAP_CAP * sizeof(fl_entry_t));
    if (!out->u.ents) {
        out->type = FL_NIL;
        b_fail(b, FL_CODE_INTERNAL, "out of memory");
    }
}

/* The value slot of a new key; a dummy when the builder already failed. */
static fl_value_t *b_slot(bld_t *b, fl_value_t *map, const char *key)
{
    static fl_value_t sink;
    fl_entry_t *e;
    if (map->type != FL_MAP || map->len >= MAP_CAP) {
        b_fail(b, FL_CODE_INTERNAL, "internal: message map overflow");
        return &sink;
    }
    e = &map->u.ents[map->len++];
    e->key = (char *)key;
    e->klen = (uint32_t)strlen(key);
    e->val.type = FL_NIL;
    e->val.len = 0;
    return &e->val;
}

static void b_end(bld_t *b, fl_value_t *map)
{
    if (map->type == FL_MAP)
        fl_map_canonicalize(map); /* keys are distinct by construction */
}

static void b_u64(bld_t *b, fl_value_t *map, const char *key, uint64_t u)
{
    fl_value_t *v = b_slot(b, map, key);
    if (u > INT64_MAX) {
        if (!b->err)
            b->err = seterr(b->errstr, b->errsz, FL_CODE_BAD_FRAME, "\"%s\" above INT64_MAX",
                            key);
        return;
    }
    v->type = FL_INT;
    v->u.i = (int64_t)u;
}

static void b_i64(bld_t *b, fl_value_t *map, const char *key, int64_t i)
{
    fl_value_t *v = b_slot(b, map, key);
    v->type = FL_INT;
    v->u.i = i;
}

static void b_bool(bld_t *b, fl_value_t *map, const char *key, bool x)
{
    fl_value_t *v = b_slot(b, map, key);
    v->type = FL_BOOL;
    v->u.b = x;
}

static void b_str(bld_t *b, fl_value_t *map, const char *key, fl_slice_t s)
{
    fl_value_t *v = b_slot(b, map, key);
    if (s.len > UINT32_MAX || (s.len && !s.ptr) || !fl_utf8_valid(s.ptr, s.len)) {
        if (!b->err)
            b->err = seterr(b->errstr, b->errsz, FL_CODE_BAD_FRAME,
                            "\"%s\" is not a valid UTF-8 string", key);
        return;
    }
    v->type = FL_STR;
    v->len = (uint32_t)s.len;
    v->u.str = (char *)s.ptr;
}

static void b_doc(bld_t *b, fl_value_t *map, fl_slice_t doc)
{
    if (doc.len < 1 || doc.len > FL_DOC_ID_MAX) {
        if (!b->err)
            b->err = seterr(b->errstr, b->errsz, FL_CODE_BAD_DOC_ID, "doc id must be 1-%d bytes",
                            FL_DOC_ID_MAX);
        return;
    }
    b_str(b, map, "doc", doc);
}

static void b_fixed_into(bld_t *b, fl_value_t *v, const uint8_t *p, size_t n)
{
    if (b->form == FL_WIRE_MSGPACK) {
        v->type = FL_BIN;
        v->len = (uint32_t)n;
        v->u.str = (char *)p;
        return;
    }
    v->u.str = fl_arena_alloc(b->arena, 2 * n + 1);
    if (!v->u.str) {
        b_fail(b, FL_CODE_INTERNAL, "out of memory");
        return;
    }
    fl_wire_hex(p, n, v->u.str);
    v->type = FL_STR;
    v->len = (uint32_t)(2 * n);
}

static void b_fixed(bld_t *b, fl_value_t *map, const char *key, const uint8_t *p, size_t n)
{
    b_fixed_into(b, b_slot(b, map, key), p, n);
}

static void b_value(bld_t *b, fl_value_t *map, const char *key, const fl_value_t *val)
{
    *b_slot(b, map, key) = *val;
}

static void b_header(bld_t *b, fl_value_t *map, int type)
{
    b_u64(b, map, "v", FL_WIRE_VERSION);
    b_str(b, map, "t", (fl_slice_t){types[type].name, strlen(types[type].name)});
}

static fl_value_t *b_array(bld_t *b, fl_value_t *map, const char *key, uint32_t n)
{
    fl_value_t *v = b_slot(b, map, key);
    v->type = FL_ARRAY;
    v->len = n;
    v->u.items = n ? fl_arena_alloc(b->arena, (size_t)n * sizeof(fl_value_t)) : NULL;
    if (n && !v->u.items) {
        v->type = FL_NIL;
        v->len = 0;
        b_fail(b, FL_CODE_INTERNAL, "out of memory");
        return NULL;
    }
    return v->u.items;
}

static void b_cmds(bld_t *b, fl_value_t *map, const char *key, const fl_cmd_t *cmds, uint32_t n)
{
    fl_value_t *items = b_array(b, map, key, n);
    uint32_t i;
    for (i = 0; items && i < n && !b->err; i++) {
        const fl_cmd_t *cmd = &cmds[i];
        const char *op = fl_op_name(cmd->op);
        fl_value_t *m = &items[i];
        if (!op) {
            b_fail(b, FL_CODE_BAD_FRAME, "unknown op in a command");
            return;
        }
        b_map(b, m);
        b_str(b, m, "op", (fl_slice_t){op, strlen(op)});
        b_str(b, m, "path", cmd->path);
        if (cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY || cmd->from.len)
            b_str(b, m, "from", cmd->from);
        if (cmd->has_key)
            b_str(b, m, "key", cmd->key);
        if (cmd->has_value)
            b_value(b, m, "value", &cmd->value);
        b_end(b, m);
    }
}

static void b_flush(bld_t *b, fl_value_t *m, const fl_flush_t *f)
{
    b_doc(b, m, f->doc);
    b_fixed(b, m, "client_id", f->client_id, FL_CLIENT_ID_LEN);
    b_u64(b, m, "seq", f->seq);
    b_u64(b, m, "base_version", f->base_version);
    if (f->has_if_version)
        b_u64(b, m, "if_version", f->if_version);
    if (f->atomic)
        b_bool(b, m, "atomic", true);
    b_cmds(b, m, "commands", f->cmds, f->ncmds);
}

static void b_outcome_body(bld_t *b, fl_value_t *m, const fl_outcome_t *o, bool record)
{
    fl_value_t *items;
    uint32_t i;
    b_u64(b, m, "code", o->code);
    if (o->duplicate)
        b_bool(b, m, "dup", true);
    b_u64(b, m, "version_before", o->version_before);
    b_u64(b, m, "version_after", o->version_after);
    b_fixed(b, m, "chain", o->chain, FL_HASH_LEN);
    items = b_array(b, m, "results", o->nresults);
    for (i = 0; items && i < o->nresults && !b->err; i++) {
        const fl_cmd_result_t *r = &o->results[i];
        b_map(b, &items[i]);
        b_u64(b, &items[i], "code", r->code);
        if (r->code == FL_CODE_OK)
            b_u64(b, &items[i], "version", r->version);
        if (r->has_key) /* "" included: an empty proposed create key was used */
            b_str(b, &items[i], "key", r->key);
        b_end(b, &items[i]);
    }
    if (record) {
        b_str(b, m, "user", o->user);
        b_i64(b, m, "ts", o->ts_ms);
        b_cmds(b, m, "commands", o->applied, o->napplied);
    }
}

static void b_outcome(bld_t *b, fl_value_t *m, const fl_outcome_t *o, bool record)
{
    b_doc(b, m, o->doc);
    b_fixed(b, m, "client_id", o->client_id, FL_CLIENT_ID_LEN);
    b_u64(b, m, "seq", o->seq);
    b_outcome_body(b, m, o, record);
}

static void b_deltas(bld_t *b, fl_value_t *m, const fl_wire_delta_t *dl, uint32_t n)
{
    fl_value_t *items = b_array(b, m, "items", n);
    uint32_t i;
    for (i = 0; items && i < n && !b->err; i++) {
        fl_value_t *it = &items[i];
        b_map(b, it);
        b_u64(b, it, "version", dl[i].version);
        b_fixed(b, it, "client_id", dl[i].client_id, FL_CLIENT_ID_LEN);
        b_u64(b, it, "seq", dl[i].seq);
        b_str(b, it, "user", dl[i].user);
        b_i64(b, it, "ts", dl[i].ts_ms);
        b_fixed(b, it, "chain", dl[i].chain, FL_HASH_LEN);
        b_cmds(b, it, "commands", dl[i].cmds, dl[i].ncmds);
        b_end(b, it);
    }
}

static void b_message(bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    uint32_t i;
    b_map(b, m);
    if (msg->type <= FL_WT_NONE || msg->type >= FL_WT__COUNT) {
        b_fail(b, FL_CODE_UNKNOWN_TYPE, "unknown message type");
        return;
    }
    b_header(b, m, msg->type);
    switch (msg->type) {
    case FL_WT_HELLO:
    case FL_WT_AUTH:
        b_str(b, m, "token", msg->u.hello.token);
        if (msg->type == FL_WT_HELLO && msg->u.hello.client.len)
            b_str(b, m, "client", msg->u.hello.client);
        break;
    case FL_WT_SUBSCRIBE:
    case FL_WT_UNSUBSCRIBE:
        b_doc(b, m, msg->u.sub.doc);
        if (msg->type == FL_WT_SUBSCRIBE && msg->u.sub.has_version)
            b_u64(b, m, "have_version", msg->u.sub.have_version);
        break;
    case FL_WT_FLUSH:
        b_flush(b, m, &msg->u.flush);
        break;
    case FL_WT_SIGNAL:
    case FL_WT_SIGNAL_OUT:
    case FL_WT_REC_SIGNAL:
        b_doc(b, m, msg->u.signal.doc);
        b_value(b, m, "body", &msg->u.signal.body);
        if (msg->type == FL_WT_SIGNAL_OUT)
            b_str(b, m, "from", msg->u.signal.user);
        if (msg->type == FL_WT_REC_SIGNAL) {
            b_str(b, m, "user", msg->u.signal.user);
            b_str(b, m, "gw", msg->u.signal.gw);
        }
        break;
    case FL_WT_PING:
    case FL_WT_PONG:
        if (msg->u.ping.has_id)
            b_u64(b, m, "id", msg->u.ping.id);
        break;
    case FL_WT_WELCOME: {
        const fl_wire_welcome_t *w = &msg->u.welcome;
        fl_value_t *l = b_slot(b, m, "limits");
        b_map(b, l);
        b_u64(b, l, "max_frame", w->max_frame);
        b_u64(b, l, "max_commands", w->max_commands);
        b_u64(b, l, "max_subscriptions", w->max_subscriptions);
        b_u64(b, l, "rate", w->rate);
        b_u64(b, l, "burst", w->burst);
        b_end(b, l);
        b_str(b, m, "user", w->user);
        b_str(b, m, "server", w->server);
        if (w->has_exp)
            b_i64(b, m, "exp", w->exp);
        if (w->has_leeway)
            b_u64(b, m, "leeway", w->leeway);
        break;
    }
    case FL_WT_SNAPSHOT:
    case FL_WT_REC_SNAPSHOT: {
        const fl_wire_snapshot_t *s = &msg->u.snapshot;
        fl_value_t *items;
        b_doc(b, m, s->doc);
        b_u64(b, m, "version", s->version);
        b_fixed(b, m, "chain", s->chain, FL_HASH_LEN);
        if (s->state.type != FL_MAP)
            b_fail(b, FL_CODE_BAD_FRAME, "\"state\" must be a map");
        b_value(b, m, "state", &s->state);
        if (msg->type == FL_WT_SNAPSHOT)
            break;
        b_fixed(b, m, "digest", s->digest, FL_HASH_LEN);
        b_i64(b, m, "events_offset", s->events_offset);
        if (s->dedup_evicted)
            b_u64(b, m, "dedup_evicted", s->dedup_evicted);
        items = b_array(b, m, "dedup", s->ndedup);
        for (i = 0; items && i < s->ndedup && !b->err; i++) {
            fl_value_t *e = fl_arena_alloc(b->arena, 3 * sizeof(fl_value_t));
            if (!e) {
                b_fail(b, FL_CODE_INTERNAL, "out of memory");
                break;
            }
            items[i].type = FL_ARRAY;
            items[i].len = 3;
            items[i].u.items = e;
            b_fixed_into(b, &e[0], s->dedup[i].client_id, FL_CLIENT_ID_LEN);
            if (s->dedup[i].seq > INT64_MAX)
                b_fail(b, FL_CODE_BAD_FRAME, "dedup seq above INT64_MAX");
            e[1] = fl_value_int((int64_t)s->dedup[i].seq);
            b_map(b, &e[2]);
            b_outcome_body(b, &e[2], &s->dedup[i].outcome, false);
            b_end(b, &e[2]);
        }
        break;
    }
    case FL_WT_DELTAS:
        b_doc(b, m, msg->u.deltas.doc);
        b_u64(b, m, "from_version", msg->u.deltas.from_version);
        b_deltas(b, m, msg->u.deltas.items, msg->u.deltas.nitems);
        break;
    case FL_WT_OUTCOME:
    case FL_WT_REC_OUTCOME:
        b_outcome(b, m, &msg->u.outcome.outcome, msg->type == FL_WT_REC_OUTCOME);
        if (msg->type == FL_WT_REC_OUTCOME) {
            b_str(b, m, "gw", msg->u.outcome.gw);
            b_u64(b, m, "origin", msg->u.outcome.origin);
        }
        break;
    case FL_WT_NACK: {
        const fl_wire_nack_t *n = &msg->u.nack;
        if (n->doc.len)
            b_doc(b, m, n->doc);
        if (n->has_client_id)
            b_fixed(b, m, "client_id", n->client_id, FL_CLIENT_ID_LEN);
        if (n->has_seq)
            b_u64(b, m, "seq", n->seq);
        b_u64(b, m, "code", n->code);
        if (n->has_retry)
            b_u64(b, m, "retry_after_ms", n->retry_after_ms);
        b_str(b, m, "reason", n->reason);
        break;
    }
    case FL_WT_ERROR:
        b_u64(b, m, "code", msg->u.error.code);
        b_str(b, m, "reason", msg->u.error.reason);
        break;
    case FL_WT_REC_FLUSH:
        b_flush(b, m, &msg->u.rflush.flush);
        b_str(b, m, "user", msg->u.rflush.flush.user);
        b_str(b, m, "gw", msg->u.rflush.gw);
        b_u64(b, m, "origin", msg->u.rflush.origin);
        break;
    case FL_WT_REC_SYNC:
        b_doc(b, m, msg->u.sync.doc);
        b_str(b, m, "gw", msg->u.sync.gw);
        b_u64(b, m, "req", msg->u.sync.req);
        b_u64(b, m, "have_version", msg->u.sync.have_version);
        break;
    case FL_WT_REC_SYNC_REPLY: {
        const fl_wire_sync_reply_t *r = &msg->u.reply;
        b_doc(b, m, r->doc);
        b_str(b, m, "gw", r->gw);
        b_u64(b, m, "req", r->req);
        b_u64(b, m, "version", r->version);
        b_fixed(b, m, "chain", r->chain, FL_HASH_LEN);
        if (r->has_state) {
            if (r->state.type != FL_MAP)
                b_fail(b, FL_CODE_BAD_FRAME, "\"state\" must be a map");
            b_value(b, m, "state", &r->state);
        } else {
            uint64_t from = r->version;
            for (i = 0; i < r->nitems; i++)
                from -= r->items[i].ncmds;
            b_u64(b, m, "from_version", from);
            b_deltas(b, m, r->items, r->nitems);
        }
        break;
    }
    case FL_WT_CHANGED:
        b_doc(b, m, msg->u.changed.doc);
        b_u64(b, m, "version", msg->u.changed.version);
        break;
    case FL_WT_REC_CHECKPOINT:
        b_u64(b, m, "partition", msg->u.checkpoint.partition);
        b_u64(b, m, "events_offset", msg->u.checkpoint.events_offset);
        break;
    default:
        break;
    }
    b_end(b, m);
}

/* Builds the message tree in a scratch arena (caller frees the arena). */
static int build(const fl_wire_msg_t *msg, fl_wire_form_t form, fl_arena_t **arena,
                 fl_value_t *root, char *errstr, size_t errstr_size)
{
    bld_t b = {NULL, form, 0, errstr, errstr_size};
    *arena = b.arena = fl_arena_new(4096);
    if (!b.arena)
        return seterr(errstr, errstr_size, FL_CODE_INTERNAL, "out of memory");
    b_message(&b, root, msg);
    return b.err;
}

int fl_wire_encode_tree(const fl_wire_msg_t *msg, fl_wire_form_t form, char **out,
                        size_t *outlen, char *errstr, size_t errstr_size)
{
    fl_arena_t *arena = NULL;
    fl_value_t root;
    json_t *j = NULL;
    int err;
    *out = NULL;
    *outlen = 0;
    if ((err = build(msg, form, &arena, &root, errstr, errstr_size)))
        goto fail;
    if (form == FL_WIRE_MSGPACK) {
        if (fl_value_encode(&root, out, outlen) != 0)
            err = seterr(errstr, errstr_size, FL_CODE_INTERNAL, "out of memory");
    } else {
        j = fl_value_to_json(&root);
        *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!*out)
            err = seterr(errstr, errstr_size, FL_CODE_INTERNAL, "out of memory");
        else
            *outlen = strlen(*out);
    }
fail:
    json_decref(j);
    fl_arena_free(arena);
    return err;
}

int fl_wire_pack_tree(msgpack_packer *pk, const fl_wire_msg_t *msg, char *errstr,
                      size_t errstr_size)
{
    fl_arena_t *arena = NULL;
    fl_value_t root;
    int err = build(msg, FL_WIRE_MSGPACK, &arena, &root, errstr, errstr_size);
    if (!err && fl_value_pack(pk, &root) != 0)
        err = seterr(errstr, errstr_size, FL_CODE_INTERNAL, "write failed");
    fl_arena_free(arena);
    return err;
}

/* ======================================================================== */
/* direct encoding of the hot messages                                      */
/* ======================================================================== */

/*
 * Outcomes, flushes and deltas are written straight into one growing buffer
 * in canonical key order (hard-coded below, bytewise), with no tree, no
 * arena and no sort. The checks and their codes are the tree builder's
 * (doc id first, then each field), so both paths accept and refuse the same
 * messages and write the same bytes; fl_wire_encode_tree is the reference
 * the tests compare against.
 */

typedef struct ow_s {
    char *buf;
    size_t n, cap;
    int err; /* first error, a negative fl_code_t */
    char *errstr;
    size_t errsz;
} ow_t;

static void ow_fail(ow_t *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ow_fail(ow_t *w, int code, const char *fmt, ...)
{
    va_list ap;
    if (w->err)
        return;
    w->err = -code;
    if (w->errstr && w->errsz) {
        va_start(ap, fmt);
        vsnprintf(w->errstr, w->errsz, fmt, ap);
        va_end(ap);
    }
}

/* The slow path of ow_reserve: grows the buffer (never after an error). */
static bool ow_grow(ow_t *w, size_t more)
{
    size_t ncap;
    char *nb;
    if (w->err)
        return false;
    ncap = w->cap ? w->cap : 256;
    while (ncap - w->n < more) {
        if (ncap > SIZE_MAX / 2) {
            ow_fail(w, FL_CODE_INTERNAL, "out of memory");
            return false;
        }
        ncap *= 2;
    }
    if (!(nb = realloc(w->buf, ncap))) {
        ow_fail(w, FL_CODE_INTERNAL, "out of memory");
        return false;
    }
    w->buf = nb;
    w->cap = ncap;
    return true;
}

/* Room for more bytes. After an error writes may go on (into room that
 * exists) or stop; the output is discarded either way. */
static inline bool ow_reserve(ow_t *w, size_t more)
{
    return w->cap - w->n >= more || ow_grow(w, more);
}

static inline void ow_put(ow_t *w, const void *p, size_t n)
{
    if (ow_reserve(w, n)) {
        memcpy(w->buf + w->n, p, n);
        w->n += n;
    }
}

/* A tag byte and a width-byte big-endian number. */
static inline void ow_tag(ow_t *w, uint8_t tag, uint64_t v, int width)
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

static inline void ow_byte(ow_t *w, uint8_t c)
{
    if (ow_reserve(w, 1))
        w->buf[w->n++] = (char)c;
}

/* The smallest form, as value.c writes ints. */
static inline void ow_int(ow_t *w, int64_t i)
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

static void ow_u64(ow_t *w, const char *key, uint64_t u)
{
    if (u > INT64_MAX) {
        ow_fail(w, FL_CODE_BAD_FRAME, "\"%s\" above INT64_MAX", key);
        return;
    }
    ow_int(w, (int64_t)u);
}

/* Map (fix 0x80, 0xde, 0xdf) and array (fix 0x90, 0xdc, 0xdd) headers. */
static inline void ow_count(ow_t *w, uint8_t fix, uint8_t tag16, uint32_t n)
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

static inline void ow_raw(ow_t *w, const char *p, uint32_t n)
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

/* A string field, checked as b_str checks it. */
static void ow_str(ow_t *w, const char *key, fl_slice_t s)
{
    if (s.len > UINT32_MAX || (s.len && !s.ptr) || !fl_utf8_valid(s.ptr, s.len)) {
        ow_fail(w, FL_CODE_BAD_FRAME, "\"%s\" is not a valid UTF-8 string", key);
        return;
    }
    ow_raw(w, s.ptr, (uint32_t)s.len);
}

/* Client ids and hashes: bin8. */
static void ow_fixed(ow_t *w, const uint8_t *p, size_t n)
{
    ow_tag(w, 0xc4, n, 1);
    ow_put(w, p, n);
}

static int ow_sink(void *data, const char *buf, size_t len)
{
    ow_t *w = data;
    ow_put(w, buf, len);
    return w->err ? -1 : 0;
}

/* An embedded value (canonical, as the tree path writes it): scalars
 * inline, containers through fl_value_pack. */
static void ow_value(ow_t *w, const fl_value_t *v)
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
            ow_fail(w, FL_CODE_INTERNAL, "out of memory");
        return;
    }
}

static bool ow_doc_ok(ow_t *w, fl_slice_t doc)
{
    if (doc.len >= 1 && doc.len <= FL_DOC_ID_MAX)
        return true;
    ow_fail(w, FL_CODE_BAD_DOC_ID, "doc id must be 1-%d bytes", FL_DOC_ID_MAX);
    return false;
}

/* "t" and its value, "v" and its value are written where their keys sort. */
static void ow_t_field(ow_t *w, int type)
{
    ow_key(w, "t");
    ow_raw(w, types[type].name, (uint32_t)strlen(types[type].name));
}

static void ow_v_field(ow_t *w)
{
    ow_key(w, "v");
    ow_int(w, FL_WIRE_VERSION);
}

/* A command: keys from, key, op, path, value (b_cmds' choice of fields). */
static void ow_cmds(ow_t *w, const fl_cmd_t *cmds, uint32_t n)
{
    uint32_t i;
    ow_array(w, n);
    for (i = 0; i < n && !w->err; i++) {
        const fl_cmd_t *cmd = &cmds[i];
        const char *op = fl_op_name(cmd->op);
        bool from = cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY || cmd->from.len;
        if (!op) {
            ow_fail(w, FL_CODE_BAD_FRAME, "unknown op in a command");
            return;
        }
        ow_map(w, 2u + from + cmd->has_key + cmd->has_value);
        if (from) {
            ow_key(w, "from");
            ow_str(w, "from", cmd->from);
        }
        if (cmd->has_key) {
            ow_key(w, "key");
            ow_str(w, "key", cmd->key);
        }
        ow_key(w, "op");
        ow_raw(w, op, (uint32_t)strlen(op));
        ow_key(w, "path");
        ow_str(w, "path", cmd->path);
        if (cmd->has_value) {
            ow_key(w, "value");
            ow_value(w, &cmd->value);
        }
    }
}

/* Results: keys code, key, version. */
static void ow_results(ow_t *w, const fl_outcome_t *o)
{
    uint32_t i;
    ow_array(w, o->nresults);
    for (i = 0; i < o->nresults && !w->err; i++) {
        const fl_cmd_result_t *r = &o->results[i];
        bool ok = r->code == FL_CODE_OK, key = r->has_key;
        ow_map(w, 1u + ok + key);
        ow_key(w, "code");
        ow_int(w, r->code);
        if (key) {
            ow_key(w, "key");
            ow_str(w, "key", r->key);
        }
        if (ok) {
            ow_key(w, "version");
            ow_u64(w, "version", r->version);
        }
    }
}

/* Outcome message (S2C) and record: canonical key order
 * chain client_id code commands* doc dup? gw* origin* results seq t ts*
 * user* v version_after version_before   (* record only). */
static void ow_outcome(ow_t *w, const fl_outcome_t *o, bool record, fl_slice_t gw,
                       uint64_t origin)
{
    if (!ow_doc_ok(w, o->doc))
        return;
    ow_map(w, (record ? 15u : 10u) + o->duplicate);
    ow_key(w, "chain");
    ow_fixed(w, o->chain, FL_HASH_LEN);
    ow_key(w, "client_id");
    ow_fixed(w, o->client_id, FL_CLIENT_ID_LEN);
    ow_key(w, "code");
    ow_int(w, o->code);
    if (record) {
        ow_key(w, "commands");
        ow_cmds(w, o->applied, o->napplied);
    }
    ow_key(w, "doc");
    ow_str(w, "doc", o->doc);
    if (o->duplicate) {
        ow_key(w, "dup");
        ow_byte(w, 0xc3);
    }
    if (record) {
        ow_key(w, "gw");
        ow_str(w, "gw", gw);
        ow_key(w, "origin");
        ow_u64(w, "origin", origin);
    }
    ow_key(w, "results");
    ow_results(w, o);
    ow_key(w, "seq");
    ow_u64(w, "seq", o->seq);
    ow_t_field(w, record ? FL_WT_REC_OUTCOME : FL_WT_OUTCOME);
    if (record) {
        ow_key(w, "ts");
        ow_int(w, o->ts_ms);
        ow_key(w, "user");
        ow_str(w, "user", o->user);
    }
    ow_v_field(w);
    ow_key(w, "version_after");
    ow_u64(w, "version_after", o->version_after);
    ow_key(w, "version_before");
    ow_u64(w, "version_before", o->version_before);
}

/* Flush frame and record: atomic? base_version client_id commands doc gw*
 * if_version? origin* seq t user* v   (* record only). */
static void ow_flush(ow_t *w, const fl_flush_t *f, bool record, fl_slice_t gw, uint64_t origin)
{
    if (!ow_doc_ok(w, f->doc))
        return;
    ow_map(w, (record ? 10u : 7u) + f->atomic + f->has_if_version);
    if (f->atomic) {
        ow_key(w, "atomic");
        ow_byte(w, 0xc3);
    }
    ow_key(w, "base_version");
    ow_u64(w, "base_version", f->base_version);
    ow_key(w, "client_id");
    ow_fixed(w, f->client_id, FL_CLIENT_ID_LEN);
    ow_key(w, "commands");
    ow_cmds(w, f->cmds, f->ncmds);
    ow_key(w, "doc");
    ow_str(w, "doc", f->doc);
    if (record) {
        ow_key(w, "gw");
        ow_str(w, "gw", gw);
    }
    if (f->has_if_version) {
        ow_key(w, "if_version");
        ow_u64(w, "if_version", f->if_version);
    }
    if (record) {
        ow_key(w, "origin");
        ow_u64(w, "origin", origin);
    }
    ow_key(w, "seq");
    ow_u64(w, "seq", f->seq);
    ow_t_field(w, record ? FL_WT_REC_FLUSH : FL_WT_FLUSH);
    if (record) {
        ow_key(w, "user");
        ow_str(w, "user", f->user);
    }
    ow_v_field(w);
}

/* Deltas: doc from_version items t v; an item: chain client_id commands seq
 * ts user version. */
static void ow_deltas(ow_t *w, const fl_wire_deltas_t *dl)
{
    uint32_t i;
    if (!ow_doc_ok(w, dl->doc))
        return;
    ow_map(w, 5);
    ow_key(w, "doc");
    ow_str(w, "doc", dl->doc);
    ow_key(w, "from_version");
    ow_u64(w, "from_version", dl->from_version);
    ow_key(w, "items");
    ow_array(w, dl->nitems);
    for (i = 0; i < dl->nitems && !w->err; i++) {
        const fl_wire_delta_t *it = &dl->items[i];
        ow_map(w, 7);
        ow_key(w, "chain");
        ow_fixed(w, it->chain, FL_HASH_LEN);
        ow_key(w, "client_id");
        ow_fixed(w, it->client_id, FL_CLIENT_ID_LEN);
        ow_key(w, "commands");
        ow_cmds(w, it->cmds, it->ncmds);
        ow_key(w, "seq");
        ow_u64(w, "seq", it->seq);
        ow_key(w, "ts");
        ow_int(w, it->ts_ms);
        ow_key(w, "user");
        ow_str(w, "user", it->user);
        ow_key(w, "version");
        ow_u64(w, "version", it->version);
    }
    ow_t_field(w, FL_WT_DELTAS);
    ow_v_field(w);
}

/* True for the types written directly (msgpack form only). */
static bool direct_type(int type)
{
    return type == FL_WT_OUTCOME || type == FL_WT_REC_OUTCOME || type == FL_WT_FLUSH ||
           type == FL_WT_REC_FLUSH || type == FL_WT_DELTAS;
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

static void ow_message(ow_t *w, const fl_wire_msg_t *msg)
{
    switch (msg->type) {
    case FL_WT_OUTCOME:
        ow_reserve(w, 192 + 24 * (size_t)msg->u.outcome.outcome.nresults);
        ow_outcome(w, &msg->u.outcome.outcome, false, (fl_slice_t){"", 0}, 0);
        break;
    case FL_WT_REC_OUTCOME: {
        const fl_wire_outcome_t *r = &msg->u.outcome;
        ow_reserve(w, 256 + 24 * (size_t)r->outcome.nresults + r->outcome.user.len + r->gw.len +
                          cmds_estimate(r->outcome.applied, r->outcome.napplied));
        ow_outcome(w, &r->outcome, true, r->gw, r->origin);
        break;
    }
    case FL_WT_FLUSH:
        ow_reserve(w, 160 + cmds_estimate(msg->u.flush.cmds, msg->u.flush.ncmds));
        ow_flush(w, &msg->u.flush, false, (fl_slice_t){"", 0}, 0);
        break;
    case FL_WT_REC_FLUSH: {
        const fl_wire_rec_flush_t *r = &msg->u.rflush;
        ow_reserve(w, 192 + r->flush.user.len + r->gw.len +
                          cmds_estimate(r->flush.cmds, r->flush.ncmds));
        ow_flush(w, &r->flush, true, r->gw, r->origin);
        break;
    }
    case FL_WT_DELTAS:
        ow_deltas(w, &msg->u.deltas);
        break;
    default:
        ow_fail(w, FL_CODE_INTERNAL, "internal: no direct encoder");
        break;
    }
}

/* Encodes msg directly into a malloc'd buffer trimmed to its size. */
static int direct_encode(const fl_wire_msg_t *msg, char **out, size_t *outlen, char *errstr,
                         size_t errstr_size)
{
    ow_t w = {NULL, 0, 0, 0, errstr, errstr_size};
    char *trimmed;
    ow_message(&w, msg);
    if (w.err) {
        free(w.buf);
        return w.err;
    }
    /* outcome buffers are kept (the processor's window): no slack */
    if (w.cap - w.n > 64 && (trimmed = realloc(w.buf, w.n)))
        w.buf = trimmed;
    *out = w.buf;
    *outlen = w.n;
    return 0;
}

int fl_wire_encode(const fl_wire_msg_t *msg, fl_wire_form_t form, char **out, size_t *outlen,
                   char *errstr, size_t errstr_size)
{
    if (form == FL_WIRE_MSGPACK && direct_type(msg->type)) {
        *out = NULL;
        *outlen = 0;
        return direct_encode(msg, out, outlen, errstr, errstr_size);
    }
    return fl_wire_encode_tree(msg, form, out, outlen, errstr, errstr_size);
}

int fl_wire_pack(msgpack_packer *pk, const fl_wire_msg_t *msg, char *errstr, size_t errstr_size)
{
    ow_t w = {NULL, 0, 0, 0, errstr, errstr_size};
    int err;
    if (!direct_type(msg->type))
        return fl_wire_pack_tree(pk, msg, errstr, errstr_size);
    /* written whole or not at all, as the tree path does */
    ow_message(&w, msg);
    err = w.err;
    if (!err && pk->callback(pk->data, w.buf, w.n) != 0)
        err = seterr(errstr, errstr_size, FL_CODE_INTERNAL, "write failed");
    free(w.buf);
    return err;
}

int fl_wire_encode_flush_record(const fl_flush_t *flush, fl_slice_t gw, uint64_t origin,
                                char **out, size_t *outlen, char *errstr, size_t errstr_size)
{
    fl_wire_msg_t msg;
    msg.type = FL_WT_REC_FLUSH;
    msg.u.rflush.flush = *flush;
    msg.u.rflush.gw = gw;
    msg.u.rflush.origin = origin;
    *out = NULL;
    *outlen = 0;
    return direct_encode(&msg, out, outlen, errstr, errstr_size);
}

int fl_wire_encode_outcome_record(const fl_outcome_t *outcome, fl_slice_t gw, uint64_t origin,
                                  char **out, size_t *outlen, char *errstr, size_t errstr_size)
{
    fl_wire_msg_t msg;
    msg.type = FL_WT_REC_OUTCOME;
    msg.u.outcome.outcome = *outcome;
    msg.u.outcome.gw = gw;
    msg.u.outcome.origin = origin;
    *out = NULL;
    *outlen = 0;
    return direct_encode(&msg, out, outlen, errstr, errstr_size);
}
