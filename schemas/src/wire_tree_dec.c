/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire_tree_dec: the reference decoder (see wire_int.h). The whole message
 * is parsed into an arena value tree by the strict value reader (msgpack) or
 * jansson + fl_value_from_json (JSON), then each type's decoder reads its
 * fields by key (binary search over the sorted map). The field helpers give
 * every error its code and a reason naming the field; fixed-size bytes are
 * bin in msgpack and lowercase hex in JSON, the only place the forms differ
 * after parsing.
 */
#include <jansson.h>
#include <string.h>

#include "wire_int.h"

#define FAIL(d, code, ...) fl_wire_seterr((d)->errstr, (d)->errsz, (code), __VA_ARGS__)
#define BAD(d, ...) FAIL(d, FL_CODE_BAD_FRAME, __VA_ARGS__)

/* ---- field helpers ------------------------------------------------------ */

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
static int get_u64(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, bool *has,
                   uint64_t *out)
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

static int get_u32(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, bool *has,
                   uint32_t *out)
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

static int get_code(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, uint16_t *out)
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

/* A required field of one value type ("must be <what>" otherwise). */
static int get_typed(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, int type,
                     const char *what, const fl_value_t **out)
{
    const fl_value_t *v = field(map, key);
    if (!v)
        return BAD(d, "missing \"%s\"", key);
    if (v->type != type)
        return BAD(d, "\"%s\" must be %s", key, what);
    *out = v;
    return 0;
}

static int get_i64(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, int64_t *out)
{
    const fl_value_t *v;
    int err = get_typed(d, map, key, FL_INT, "an integer", &v);
    if (!err)
        *out = v->u.i;
    return err;
}

static int get_bool(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, bool *out)
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
static int get_str(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, bool *has,
                   size_t max, fl_slice_t *out)
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
static int get_str_max(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, bool *has,
                       size_t max, fl_slice_t *out)
{
    const fl_value_t *v = field(map, key);
    if (v && v->type == FL_STR && v->len > max)
        return FAIL(d, FL_CODE_LIMIT, "\"%s\" of %u bytes is over %zu", key, v->len, max);
    return get_str(d, map, key, has, max, out);
}

static int get_doc(fl_wire_dctx_t *d, const fl_value_t *map, fl_slice_t *out)
{
    const fl_value_t *v;
    int err = get_typed(d, map, "doc", FL_STR, "a string", &v);
    if (err)
        return err;
    if (v->len < 1 || v->len > FL_DOC_ID_MAX)
        return FAIL(d, FL_CODE_BAD_DOC_ID, "doc id must be 1-%d bytes", FL_DOC_ID_MAX);
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
static int get_fixed(fl_wire_dctx_t *d, const fl_value_t *v, const char *key, uint8_t *out,
                     size_t n)
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

static int get_bytes(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, uint8_t *out,
                     size_t n)
{
    return get_fixed(d, field(map, key), key, out, n);
}

static void *dalloc(fl_wire_dctx_t *d, size_t n, size_t esz)
{
    if (n == 0)
        return NULL;
    return fl_arena_alloc(d->arena, n * esz); /* n <= 32-bit limits: no overflow */
}

static int get_array(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, uint32_t max,
                     const fl_value_t **out)
{
    const fl_value_t *v;
    int err = get_typed(d, map, key, FL_ARRAY, "an array", &v);
    if (err)
        return err;
    if (v->len > max)
        return FAIL(d, FL_CODE_LIMIT, "\"%s\" has %u items, limit %u", key, v->len, max);
    *out = v;
    return 0;
}

/* How to decode the items of an array: the size of a decoded item, which
 * must be a map unless map_of is NULL ("<map_of> must be a map"), and the
 * function that decodes item i into out (which it clears first); ctx is
 * what the caller passed to dec_array. */
typedef struct item_s {
    size_t size;
    const char *map_of;
    int (*fn)(fl_wire_dctx_t *d, const fl_value_t *item, uint32_t i, void *out, void *ctx);
} item_t;

/* The array field key (at most max items) decoded item by item, in order,
 * into a fresh arena array of *n: returns it (NULL when empty) and sets
 * *err (the first error wins). */
static void *dec_array(fl_wire_dctx_t *d, const fl_value_t *map, const char *key, uint32_t max,
                       const item_t *it, void *ctx, uint32_t *n, int *err)
{
    const fl_value_t *arr;
    char *items;
    uint32_t i;
    if ((*err = get_array(d, map, key, max, &arr)))
        return NULL;
    *n = arr->len;
    items = dalloc(d, arr->len, it->size);
    if (arr->len && !items) {
        *err = FAIL(d, FL_CODE_INTERNAL, "out of memory");
        return NULL;
    }
    for (i = 0; i < arr->len; i++) {
        if (it->map_of && arr->u.items[i].type != FL_MAP)
            *err = BAD(d, "%s must be a map", it->map_of);
        else
            *err = it->fn(d, &arr->u.items[i], i, items + i * it->size, ctx);
        if (*err)
            break;
    }
    return items;
}

static int dec_cmd(fl_wire_dctx_t *d, const fl_value_t *m, uint32_t i, void *out, void *ctx)
{
    fl_cmd_t *cmd = out;
    fl_slice_t op;
    bool has;
    const fl_value_t *v;
    int err;
    (void)i;
    (void)ctx;
    memset(cmd, 0, sizeof *cmd);
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

static const item_t cmd_item = {sizeof(fl_cmd_t), "a command", dec_cmd};

static int dec_cmds(fl_wire_dctx_t *d, const fl_value_t *map, uint32_t *n, fl_cmd_t **out)
{
    int err;
    *out = dec_array(d, map, "commands", d->lim->max_commands, &cmd_item, NULL, n, &err);
    return err;
}

static int dec_result(fl_wire_dctx_t *d, const fl_value_t *r, uint32_t i, void *out, void *ctx)
{
    fl_cmd_result_t *res = out;
    bool has;
    int err;
    (void)i;
    (void)ctx;
    memset(res, 0, sizeof *res);
    if ((err = get_code(d, r, "code", &res->code)) ||
        (err = get_u64(d, r, "version", &has, &res->version)) ||
        (err = get_str(d, r, "key", &has, UINT32_MAX, &res->key)))
        return err;
    res->has_key = has; /* "" is a key */
    if ((err = get_str(d, r, "rule", &has, 255, &res->rule)))
        return err;
    return 0;
}

static const item_t result_item = {sizeof(fl_cmd_result_t), "a result", dec_result};

static int dec_results(fl_wire_dctx_t *d, const fl_value_t *m, fl_outcome_t *o)
{
    int err;
    o->results = dec_array(d, m, "results", d->lim->max_commands, &result_item, NULL,
                           &o->nresults, &err);
    return err;
}

/* A delta; *ctx is the version before it, and becomes the one after it. */
static int dec_delta(fl_wire_dctx_t *d, const fl_value_t *it, uint32_t i, void *out, void *ctx)
{
    fl_wire_delta_t *dl = out;
    uint64_t *from = ctx;
    bool has;
    int err;
    memset(dl, 0, sizeof *dl);
    if ((err = get_u64(d, it, "version", NULL, &dl->version)) ||
        (err = get_bytes(d, it, "client_id", dl->client_id, FL_CLIENT_ID_LEN)) ||
        (err = get_u64(d, it, "seq", NULL, &dl->seq)) ||
        (err = get_str(d, it, "user", &has, UINT32_MAX, &dl->user)) ||
        (err = get_i64(d, it, "ts", &dl->ts_ms)) ||
        (err = get_bytes(d, it, "chain", dl->chain, FL_HASH_LEN)) ||
        (err = dec_cmds(d, it, &dl->ncmds, &dl->cmds)))
        return err;
    if (dl->version - dl->ncmds != *from || dl->version < dl->ncmds)
        return BAD(d, "delta %u is not consecutive (version %llu, %u commands, after %llu)", i,
                   (unsigned long long)dl->version, dl->ncmds, (unsigned long long)*from);
    *from = dl->version;
    return 0;
}

static const item_t delta_item = {sizeof(fl_wire_delta_t), "a delta", dec_delta};

/* "items": consecutive deltas from version from; *last is the version after them. */
static int dec_delta_items(fl_wire_dctx_t *d, const fl_value_t *m, uint64_t from, uint32_t *n,
                           fl_wire_delta_t **out, uint64_t *last)
{
    int err;
    *out = dec_array(d, m, "items", d->lim->max_commands, &delta_item, &from, n, &err);
    *last = from;
    return err;
}

/* "doc", "client_id" and "seq": what names a flush and its outcome. */
static int dec_ident(fl_wire_dctx_t *d, const fl_value_t *m, fl_slice_t *doc,
                     uint8_t client_id[FL_CLIENT_ID_LEN], uint64_t *seq)
{
    int err;
    if ((err = get_doc(d, m, doc)) ||
        (err = get_bytes(d, m, "client_id", client_id, FL_CLIENT_ID_LEN)))
        return err;
    return get_u64(d, m, "seq", NULL, seq);
}

static int dec_flush(fl_wire_dctx_t *d, const fl_value_t *m, fl_flush_t *f)
{
    int err;
    memset(f, 0, sizeof *f);
    f->user.ptr = "";
    if ((err = dec_ident(d, m, &f->doc, f->client_id, &f->seq)) ||
        (err = get_u64(d, m, "base_version", NULL, &f->base_version)) ||
        (err = get_u64(d, m, "if_version", &f->has_if_version, &f->if_version)) ||
        (err = get_bool(d, m, "atomic", &f->atomic)))
        return err;
    if (f->seq == 0)
        return BAD(d, "\"seq\" starts at 1");
    return dec_cmds(d, m, &f->ncmds, &f->cmds);
}

/* The outcome fields shared by the outcome message, the outcome record and
 * the stored outcomes of a snapshot's dedup table (without doc/client/seq). */
static int dec_outcome_body(fl_wire_dctx_t *d, const fl_value_t *m, fl_outcome_t *o)
{
    int err;
    bool has;
    if ((err = get_code(d, m, "code", &o->code)) || (err = get_bool(d, m, "dup", &o->duplicate)) ||
        (err = get_u64(d, m, "version_before", NULL, &o->version_before)) ||
        (err = get_u64(d, m, "version_after", NULL, &o->version_after)) ||
        (err = get_bytes(d, m, "chain", o->chain, FL_HASH_LEN)) ||
        (err = dec_results(d, m, o)))
        return err;
    if (o->version_after < o->version_before)
        return BAD(d, "version_after < version_before");
    if ((err = get_str(d, m, "user", &has, UINT32_MAX, &o->user)))
        return err;
    if (field(m, "ts") && (err = get_i64(d, m, "ts", &o->ts_ms)))
        return err;
    if (field(m, "commands")) {
        if ((err = dec_cmds(d, m, &o->napplied, &o->applied)))
            return err;
        /* A duplicate repeats the original versions without the commands. */
        if (!o->duplicate && o->version_before + o->napplied != o->version_after)
            return BAD(d, "%u applied commands do not lead from version %llu to %llu",
                       o->napplied, (unsigned long long)o->version_before,
                       (unsigned long long)o->version_after);
    }
    return 0;
}

static int dec_outcome(fl_wire_dctx_t *d, const fl_value_t *m, fl_outcome_t *o)
{
    int err;
    memset(o, 0, sizeof *o);
    o->user.ptr = "";
    if ((err = dec_ident(d, m, &o->doc, o->client_id, &o->seq)))
        return err;
    return dec_outcome_body(d, m, o);
}

static int get_body(fl_wire_dctx_t *d, const fl_value_t *m, fl_value_t *out)
{
    const fl_value_t *v = field(m, "body");
    if (!v)
        return BAD(d, "missing \"body\"");
    if (fl_value_encoded_size(v) > d->lim->max_body)
        return FAIL(d, FL_CODE_LIMIT, "signal body over %u bytes", d->lim->max_body);
    *out = *v;
    return 0;
}

static int get_state(fl_wire_dctx_t *d, const fl_value_t *m, fl_value_t *out)
{
    const fl_value_t *v;
    int err = get_typed(d, m, "state", FL_MAP, "a map", &v);
    if (!err)
        *out = *v;
    return err;
}

/* A dedup entry [client_id, seq, outcome body] of the snapshot at ctx. */
static int dec_dedup_entry(fl_wire_dctx_t *d, const fl_value_t *e, uint32_t i, void *out,
                           void *ctx)
{
    const fl_wire_snapshot_t *s = ctx;
    fl_wire_dedup_t *dd = out;
    int err;
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
    return 0;
}

static const item_t dedup_item = {sizeof(fl_wire_dedup_t), NULL, dec_dedup_entry};

static int dec_dedup(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_snapshot_t *s)
{
    int err;
    s->dedup = dec_array(d, m, "dedup", UINT32_MAX, &dedup_item, s, &s->ndedup, &err);
    return err;
}

/* ---- one decoder per message type (the tree_dec column) ----------------- */

int fl_wire_tree_dec_hello(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_hello_t *h = &msg->u.hello;
    bool has;
    int err = get_str_max(d, m, "token", NULL, d->lim->max_token, &h->token);
    return err ? err : get_str_max(d, m, "client", &has, FL_WIRE_CLIENT_NAME_MAX, &h->client);
}

int fl_wire_tree_dec_auth(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_hello_t *h = &msg->u.hello;
    int err = get_str_max(d, m, "token", NULL, d->lim->max_token, &h->token);
    if (err)
        return err;
    h->client.ptr = "";
    h->client.len = 0;
    return 0;
}

/* An unsubscribe: the doc; a subscribe adds a version. */
int fl_wire_tree_dec_unsubscribe(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_subscribe_t *s = &msg->u.sub;
    s->has_version = false;
    s->have_version = 0;
    return get_doc(d, m, &s->doc);
}

int fl_wire_tree_dec_subscribe(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_subscribe_t *s = &msg->u.sub;
    int err = fl_wire_tree_dec_unsubscribe(d, m, msg);
    return err ? err : get_u64(d, m, "have_version", &s->has_version, &s->have_version);
}

int fl_wire_tree_dec_flush(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    return dec_flush(d, m, &msg->u.flush);
}

/* A C2S signal: doc and body, the fields every signal has. */
int fl_wire_tree_dec_signal(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_signal_t *s = &msg->u.signal;
    int err;
    memset(s, 0, sizeof *s);
    s->user.ptr = s->gw.ptr = "";
    if ((err = get_doc(d, m, &s->doc)))
        return err;
    return get_body(d, m, &s->body);
}

int fl_wire_tree_dec_signal_out(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_signal_t *s = &msg->u.signal;
    int err = fl_wire_tree_dec_signal(d, m, msg);
    return err ? err : get_str(d, m, "from", NULL, UINT32_MAX, &s->user);
}

int fl_wire_tree_dec_rec_signal(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_signal_t *s = &msg->u.signal;
    int err;
    if ((err = fl_wire_tree_dec_signal(d, m, msg)) ||
        (err = get_str(d, m, "user", NULL, UINT32_MAX, &s->user)))
        return err;
    return get_str(d, m, "gw", NULL, FL_WIRE_GW_MAX, &s->gw);
}

/* ping and pong */
int fl_wire_tree_dec_ping(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    msg->u.ping.id = 0;
    return get_u64(d, m, "id", &msg->u.ping.has_id, &msg->u.ping.id);
}

int fl_wire_tree_dec_welcome(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_welcome_t *w = &msg->u.welcome;
    const fl_value_t *l = field(m, "limits"), *e;
    int err;
    if (!l || l->type != FL_MAP)
        return BAD(d, "\"limits\" must be a map");
    if ((err = get_u32(d, l, "max_frame", NULL, &w->max_frame)) ||
        (err = get_u32(d, l, "max_commands", NULL, &w->max_commands)) ||
        (err = get_u32(d, l, "max_subscriptions", NULL, &w->max_subscriptions)) ||
        (err = get_u32(d, l, "rate", NULL, &w->rate)) ||
        (err = get_u32(d, l, "burst", NULL, &w->burst)) ||
        (err = get_str(d, m, "user", NULL, UINT32_MAX, &w->user)) ||
        (err = get_str_max(d, m, "server", NULL, FL_WIRE_CLIENT_NAME_MAX, &w->server)))
        return err;
    if ((e = field(m, "exp")) && e->type != FL_NIL) {
        if ((err = get_i64(d, m, "exp", &w->exp)))
            return err;
        w->has_exp = true;
    }
    return get_u32(d, m, "leeway", &w->has_leeway, &w->leeway);
}

/* The snapshot message; the record repeats its fields. */
int fl_wire_tree_dec_snapshot(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_snapshot_t *s = &msg->u.snapshot;
    int err;
    memset(s, 0, sizeof *s);
    if ((err = get_doc(d, m, &s->doc)) || (err = get_u64(d, m, "version", NULL, &s->version)) ||
        (err = get_bytes(d, m, "chain", s->chain, FL_HASH_LEN)))
        return err;
    return get_state(d, m, &s->state);
}

int fl_wire_tree_dec_rec_snapshot(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_snapshot_t *s = &msg->u.snapshot;
    bool has;
    int err;
    if ((err = fl_wire_tree_dec_snapshot(d, m, msg)) ||
        (err = get_bytes(d, m, "digest", s->digest, FL_HASH_LEN)) ||
        (err = get_i64(d, m, "events_offset", &s->events_offset)) ||
        (err = get_u64(d, m, "dedup_evicted", &has, &s->dedup_evicted)))
        return err;
    return dec_dedup(d, m, s);
}

int fl_wire_tree_dec_deltas(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_deltas_t *dl = &msg->u.deltas;
    uint64_t last;
    int err;
    if ((err = get_doc(d, m, &dl->doc)) ||
        (err = get_u64(d, m, "from_version", NULL, &dl->from_version)) ||
        (err = dec_delta_items(d, m, dl->from_version, &dl->nitems, &dl->items, &last)))
        return err;
    if (dl->nitems == 0)
        return BAD(d, "\"items\" is empty");
    return 0;
}

int fl_wire_tree_dec_outcome(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_outcome_t *o = &msg->u.outcome;
    o->gw.ptr = "";
    o->gw.len = 0;
    o->origin = 0;
    return dec_outcome(d, m, &o->outcome);
}

int fl_wire_tree_dec_rec_outcome(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_outcome_t *o = &msg->u.outcome;
    int err = fl_wire_tree_dec_outcome(d, m, msg);
    if (err)
        return err;
    if (!field(m, "commands") || !field(m, "ts") || !field(m, "user"))
        return BAD(d, "an outcome record needs \"commands\", \"ts\" and \"user\"");
    if ((err = get_str(d, m, "gw", NULL, FL_WIRE_GW_MAX, &o->gw)))
        return err;
    return get_u64(d, m, "origin", NULL, &o->origin);
}

int fl_wire_tree_dec_nack(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_nack_t *n = &msg->u.nack;
    int err;
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
        (err = get_code(d, m, "code", &n->code)))
        return err;
    return get_str_max(d, m, "reason", NULL, FL_WIRE_REASON_MAX, &n->reason);
}

int fl_wire_tree_dec_error(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    int err = get_code(d, m, "code", &msg->u.error.code);
    return err ? err : get_str_max(d, m, "reason", NULL, FL_WIRE_REASON_MAX, &msg->u.error.reason);
}

int fl_wire_tree_dec_changed(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_changed_t *c = &msg->u.changed;
    int err = get_doc(d, m, &c->doc);
    return err ? err : get_u64(d, m, "version", NULL, &c->version);
}

int fl_wire_tree_dec_rec_flush(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_rec_flush_t *r = &msg->u.rflush;
    bool has_role;
    int err;
    if ((err = dec_flush(d, m, &r->flush)) ||
        (err = get_str(d, m, "user", NULL, UINT32_MAX, &r->flush.user)) ||
        (err = get_str(d, m, "gw", NULL, FL_WIRE_GW_MAX, &r->gw)) ||
        (err = get_str(d, m, "role", &has_role, FL_WIRE_ROLE_MAX, &r->role)) ||
        (err = get_u64(d, m, "origin", NULL, &r->origin)))
        return err;
    if (has_role && r->role.len == 0)
        return BAD(d, "\"role\" must not be empty");
    return 0;
}

int fl_wire_tree_dec_rec_sync(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_sync_t *s = &msg->u.sync;
    int err;
    if ((err = get_doc(d, m, &s->doc)) ||
        (err = get_str(d, m, "gw", NULL, FL_WIRE_GW_MAX, &s->gw)) ||
        (err = get_u64(d, m, "req", NULL, &s->req)))
        return err;
    return get_u64(d, m, "have_version", NULL, &s->have_version);
}

/* A sync reply's items: from "from_version" up to exactly "version". */
static int dec_reply_items(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_sync_reply_t *r)
{
    uint64_t from, last;
    bool has_from;
    int err;
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

int fl_wire_tree_dec_rec_sync_reply(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_sync_reply_t *r = &msg->u.reply;
    int err;
    memset(r, 0, sizeof *r);
    if ((err = get_doc(d, m, &r->doc)) ||
        (err = get_str(d, m, "gw", NULL, FL_WIRE_GW_MAX, &r->gw)) ||
        (err = get_u64(d, m, "req", NULL, &r->req)) ||
        (err = get_u64(d, m, "version", NULL, &r->version)) ||
        (err = get_bytes(d, m, "chain", r->chain, FL_HASH_LEN)))
        return err;
    if (!field(m, "state"))
        return dec_reply_items(d, m, r);
    if (field(m, "items"))
        return BAD(d, "a sync_reply carries either \"state\" or \"items\"");
    r->has_state = true;
    return get_state(d, m, &r->state);
}

int fl_wire_tree_dec_rec_rules(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_rules_t *r = &msg->u.rules;
    bool has_id;
    int err;
    if ((err = get_str(d, m, "prefix", NULL, 255, &r->prefix)) ||
        (err = get_str(d, m, "rules", &r->has_rules, FL_WIRE_RULES_MAX, &r->rules)) ||
        (err = get_str(d, m, "id", &has_id, 255, &r->id)))
        return err;
    return 0;
}

/* A rule set in force of a checkpoint: {prefix, rules}. */
static int dec_cp_rules(fl_wire_dctx_t *d, const fl_value_t *m, uint32_t i, void *out, void *ctx)
{
    fl_wire_rules_t *r = out;
    int err;
    (void)i;
    (void)ctx;
    memset(r, 0, sizeof *r);
    r->id.ptr = "";
    if ((err = get_str(d, m, "prefix", NULL, 255, &r->prefix)) ||
        (err = get_str(d, m, "rules", NULL, FL_WIRE_RULES_MAX, &r->rules)))
        return err;
    r->has_rules = true;
    return 0;
}

static const item_t cp_rules_item = {sizeof(fl_wire_rules_t), "a rule set in force", dec_cp_rules};

int fl_wire_tree_dec_rec_checkpoint(fl_wire_dctx_t *d, const fl_value_t *m, fl_wire_msg_t *msg)
{
    fl_wire_checkpoint_t *cp = &msg->u.checkpoint;
    uint64_t part;
    int err;
    if ((err = get_u64(d, m, "partition", NULL, &part)) ||
        (err = get_u64(d, m, "events_offset", NULL, &cp->events_offset)))
        return err;
    if (part > INT32_MAX)
        return BAD(d, "\"partition\" out of range");
    cp->partition = (uint32_t)part;
    cp->nrules = 0;
    cp->rules = NULL;
    if (!field(m, "rules"))
        return 0;
    cp->rules = dec_array(d, m, "rules", FL_WIRE_CHECKPOINT_MAX_RULES, &cp_rules_item, NULL,
                          &cp->nrules, &err);
    return err;
}

/* ---- parsing and the entry point ---------------------------------------- */

/* JSON text into an arena value tree (the one part of decoding only JSON has). */
static int parse_json(fl_wire_dctx_t *d, const char *buf, size_t len, const fl_limits_t *vl,
                      fl_value_t *root)
{
    json_error_t jerr;
    /* U+0000 is data (a JSON client must be able to write back any string
     * the msgpack side holds); strings are read by length */
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    int err;
    if (!j)
        return BAD(d, "bad JSON: %s", jerr.text);
    err = fl_value_from_json(j, vl, d->arena, root);
    json_decref(j);
    if (err)
        return BAD(d, "bad JSON value: %s", fl_value_strerror(err));
    return 0;
}

int fl_wire_tree_parse(fl_wire_dctx_t *d, const char *buf, size_t len, fl_value_t *root)
{
    fl_limits_t vl;
    int err;
    fl_wire_value_limits(d->lim, 0, &vl);
    if (len > d->lim->max_frame)
        return FAIL(d, FL_CODE_LIMIT, "message of %zu bytes over %zu", len, d->lim->max_frame);
    if (d->form == FL_WIRE_MSGPACK) {
        long n = fl_value_decode(buf, len, &vl, d->arena, root);
        if (n < 0)
            return BAD(d, "bad msgpack: %s", fl_value_strerror((int)n));
        if ((size_t)n != len)
            return BAD(d, "%zu bytes after the message", len - (size_t)n);
    } else if ((err = parse_json(d, buf, len, &vl, root))) {
        return err;
    }
    if (root->type != FL_MAP)
        return BAD(d, "a message must be a map");
    return 0;
}

int fl_wire_tree_header(fl_wire_dctx_t *d, fl_wire_dir_t dir, const fl_value_t *root, int *type,
                        uint32_t *version)
{
    const fl_value_t *v = field(root, "v"), *t = field(root, "t");
    if (!v || v->type != FL_INT)
        return BAD(d, "missing or non-integer \"v\"");
    *version = v->u.i < 0 || v->u.i > UINT32_MAX ? UINT32_MAX : (uint32_t)v->u.i;
    if (v->u.i != FL_WIRE_VERSION)
        return FAIL(d, FL_CODE_UNSUPPORTED_VERSION, "schema version %lld not supported (want %d)",
                    (long long)v->u.i, FL_WIRE_VERSION);
    if (!t || t->type != FL_STR)
        return BAD(d, "missing or non-string \"t\"");
    *type = fl_wire_type_from_name(dir, t->u.str, t->len);
    if (*type == FL_WT_NONE)
        return FAIL(d, FL_CODE_UNKNOWN_TYPE, "unknown type \"%.*s\"",
                    (int)(t->len > 64 ? 64 : t->len), t->len ? t->u.str : "");
    return 0;
}

int fl_wire_decode_tree(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len,
                        const fl_wire_limits_t *lim, fl_arena_t *arena, fl_wire_msg_t *msg,
                        char *errstr, size_t errstr_size)
{
    fl_wire_dctx_t d = {form, arena, lim, errstr, errstr_size};
    fl_value_t root;
    uint32_t version;
    int type = FL_WT_NONE, err;
    if (!lim)
        d.lim = dir == FL_WIRE_RECORD ? &fl_wire_limits_record : &fl_wire_limits_frame;
    memset(msg, 0, sizeof *msg);
    if ((err = fl_wire_tree_parse(&d, buf, len, &root)) ||
        (err = fl_wire_tree_header(&d, dir, &root, &type, &version)))
        return err;
    msg->type = (uint8_t)type;
    return fl_wire_desc[type].tree_dec(&d, &root, msg);
}

/* ---- what a bad flush frame says about itself ---------------------------- */

unsigned fl_wire_flush_ident(fl_wire_form_t form, const char *buf, size_t len,
                             const fl_wire_limits_t *lim, fl_arena_t *arena, fl_slice_t *doc,
                             uint8_t client_id[FL_CLIENT_ID_LEN], uint64_t *seq)
{
    fl_wire_dctx_t d = {form, arena, lim ? lim : &fl_wire_limits_frame, NULL, 0};
    fl_value_t root;
    const fl_value_t *v;
    uint8_t cid[FL_CLIENT_ID_LEN];
    unsigned got = 0;
    *doc = (fl_slice_t){"", 0};
    *seq = 0;
    if (fl_wire_tree_parse(&d, buf, len, &root) != 0)
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
