/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire_tree_enc: the reference encoder (see wire_int.h). Each type's builder
 * adds its fields to a message map in a scratch arena; the map is sorted and
 * written canonically (fl_value_encode, fl_value_pack), or converted to JSON
 * text. So the msgpack bytes of a message are the canonical encoding of its
 * map: keys in bytewise order, optional fields omitted when absent. The two
 * forms differ only in client ids and hashes (bin vs lowercase hex) and bin
 * values ({"$bin": base64}). The first error wins: the builder keeps it and
 * later fields are skipped or go to a dummy slot.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "wire_int.h"

#define MAP_CAP 20 /* the most fields any message map has, with room */

struct fl_wire_bld_s {
    fl_arena_t *arena;
    fl_wire_form_t form;
    fl_wire_err_t err;
};

/* ---- builder helpers ---------------------------------------------------- */

static void b_map(fl_wire_bld_t *b, fl_value_t *out)
{
    out->type = FL_MAP;
    out->len = 0;
    out->u.ents = fl_arena_alloc(b->arena, MAP_CAP * sizeof(fl_entry_t));
    if (!out->u.ents) {
        out->type = FL_NIL;
        fl_wire_fail(&b->err, FL_CODE_INTERNAL, "out of memory");
    }
}

/* The value slot of a new key; a dummy when the builder already failed. */
static fl_value_t *b_slot(fl_wire_bld_t *b, fl_value_t *map, const char *key)
{
    static fl_value_t sink;
    fl_entry_t *e;
    if (map->type != FL_MAP || map->len >= MAP_CAP) {
        fl_wire_fail(&b->err, FL_CODE_INTERNAL, "internal: message map overflow");
        return &sink;
    }
    e = &map->u.ents[map->len++];
    e->key = (char *)key;
    e->klen = (uint32_t)strlen(key);
    e->val.type = FL_NIL;
    e->val.len = 0;
    return &e->val;
}

static void b_end(fl_wire_bld_t *b, fl_value_t *map)
{
    if (map->type == FL_MAP)
        fl_map_canonicalize(map); /* keys are distinct by construction */
}

static void b_u64(fl_wire_bld_t *b, fl_value_t *map, const char *key, uint64_t u)
{
    fl_value_t *v = b_slot(b, map, key);
    if (u > INT64_MAX) {
        fl_wire_fail(&b->err, FL_CODE_BAD_FRAME, "\"%s\" above INT64_MAX", key);
        return;
    }
    v->type = FL_INT;
    v->u.i = (int64_t)u;
}

static void b_i64(fl_wire_bld_t *b, fl_value_t *map, const char *key, int64_t i)
{
    fl_value_t *v = b_slot(b, map, key);
    v->type = FL_INT;
    v->u.i = i;
}

static void b_bool(fl_wire_bld_t *b, fl_value_t *map, const char *key, bool x)
{
    fl_value_t *v = b_slot(b, map, key);
    v->type = FL_BOOL;
    v->u.b = x;
}

static void b_str(fl_wire_bld_t *b, fl_value_t *map, const char *key, fl_slice_t s)
{
    fl_value_t *v = b_slot(b, map, key);
    if (s.len > UINT32_MAX || (s.len && !s.ptr) || !fl_utf8_valid(s.ptr, s.len)) {
        fl_wire_fail(&b->err, FL_CODE_BAD_FRAME, "\"%s\" is not a valid UTF-8 string", key);
        return;
    }
    v->type = FL_STR;
    v->len = (uint32_t)s.len;
    v->u.str = (char *)s.ptr;
}

static void b_doc(fl_wire_bld_t *b, fl_value_t *map, fl_slice_t doc)
{
    if (doc.len < 1 || doc.len > FL_DOC_ID_MAX) {
        fl_wire_fail(&b->err, FL_CODE_BAD_DOC_ID, "doc id must be 1-%d bytes", FL_DOC_ID_MAX);
        return;
    }
    b_str(b, map, "doc", doc);
}

static void b_fixed_into(fl_wire_bld_t *b, fl_value_t *v, const uint8_t *p, size_t n)
{
    if (b->form == FL_WIRE_MSGPACK) {
        v->type = FL_BIN;
        v->len = (uint32_t)n;
        v->u.str = (char *)p;
        return;
    }
    v->u.str = fl_arena_alloc(b->arena, 2 * n + 1);
    if (!v->u.str) {
        fl_wire_fail(&b->err, FL_CODE_INTERNAL, "out of memory");
        return;
    }
    fl_wire_hex(p, n, v->u.str);
    v->type = FL_STR;
    v->len = (uint32_t)(2 * n);
}

static void b_fixed(fl_wire_bld_t *b, fl_value_t *map, const char *key, const uint8_t *p, size_t n)
{
    b_fixed_into(b, b_slot(b, map, key), p, n);
}

static void b_value(fl_wire_bld_t *b, fl_value_t *map, const char *key, const fl_value_t *val)
{
    *b_slot(b, map, key) = *val;
}

static void b_header(fl_wire_bld_t *b, fl_value_t *map, int type)
{
    const char *name = fl_wire_desc[type].name;
    b_u64(b, map, "v", FL_WIRE_VERSION);
    b_str(b, map, "t", (fl_slice_t){name, strlen(name)});
}

static fl_value_t *b_array(fl_wire_bld_t *b, fl_value_t *map, const char *key, uint32_t n)
{
    fl_value_t *v = b_slot(b, map, key);
    v->type = FL_ARRAY;
    v->len = n;
    v->u.items = n ? fl_arena_alloc(b->arena, (size_t)n * sizeof(fl_value_t)) : NULL;
    if (n && !v->u.items) {
        v->type = FL_NIL;
        v->len = 0;
        fl_wire_fail(&b->err, FL_CODE_INTERNAL, "out of memory");
        return NULL;
    }
    return v->u.items;
}

static void b_cmds(fl_wire_bld_t *b, fl_value_t *map, const char *key, const fl_cmd_t *cmds,
                   uint32_t n)
{
    fl_value_t *items = b_array(b, map, key, n);
    uint32_t i;
    for (i = 0; items && i < n && !b->err.code; i++) {
        const fl_cmd_t *cmd = &cmds[i];
        const char *op = fl_op_name(cmd->op);
        fl_value_t *m = &items[i];
        if (!op) {
            fl_wire_fail(&b->err, FL_CODE_BAD_FRAME, "unknown op in a command");
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

static void b_flush(fl_wire_bld_t *b, fl_value_t *m, const fl_flush_t *f)
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

static void b_outcome_body(fl_wire_bld_t *b, fl_value_t *m, const fl_outcome_t *o, bool record)
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
    for (i = 0; items && i < o->nresults && !b->err.code; i++) {
        const fl_cmd_result_t *r = &o->results[i];
        b_map(b, &items[i]);
        b_u64(b, &items[i], "code", r->code);
        if (r->code == FL_CODE_OK)
            b_u64(b, &items[i], "version", r->version);
        if (r->has_key) /* "" included: an empty proposed create key was used */
            b_str(b, &items[i], "key", r->key);
        if (r->rule.len)
            b_str(b, &items[i], "rule", r->rule);
        b_end(b, &items[i]);
    }
    if (record) {
        b_str(b, m, "user", o->user);
        b_i64(b, m, "ts", o->ts_ms);
        b_cmds(b, m, "commands", o->applied, o->napplied);
    }
}

static void b_outcome(fl_wire_bld_t *b, fl_value_t *m, const fl_outcome_t *o, bool record)
{
    b_doc(b, m, o->doc);
    b_fixed(b, m, "client_id", o->client_id, FL_CLIENT_ID_LEN);
    b_u64(b, m, "seq", o->seq);
    b_outcome_body(b, m, o, record);
}

static void b_deltas(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_delta_t *dl, uint32_t n)
{
    fl_value_t *items = b_array(b, m, "items", n);
    uint32_t i;
    for (i = 0; items && i < n && !b->err.code; i++) {
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

/* ---- one builder per message type (the tree_enc column) ----------------- */

void fl_wire_tree_enc_hello(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_str(b, m, "token", msg->u.hello.token);
    if (msg->u.hello.client.len)
        b_str(b, m, "client", msg->u.hello.client);
}

void fl_wire_tree_enc_auth(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_str(b, m, "token", msg->u.hello.token);
}

void fl_wire_tree_enc_subscribe(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_doc(b, m, msg->u.sub.doc);
    if (msg->u.sub.has_version)
        b_u64(b, m, "have_version", msg->u.sub.have_version);
}

void fl_wire_tree_enc_unsubscribe(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_doc(b, m, msg->u.sub.doc);
}

void fl_wire_tree_enc_flush(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_flush(b, m, &msg->u.flush);
}

void fl_wire_tree_enc_signal(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_doc(b, m, msg->u.signal.doc);
    b_value(b, m, "body", &msg->u.signal.body);
}

void fl_wire_tree_enc_signal_out(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    fl_wire_tree_enc_signal(b, m, msg);
    b_str(b, m, "from", msg->u.signal.user);
}

void fl_wire_tree_enc_rec_signal(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    fl_wire_tree_enc_signal(b, m, msg);
    b_str(b, m, "user", msg->u.signal.user);
    b_str(b, m, "gw", msg->u.signal.gw);
}

/* ping and pong */
void fl_wire_tree_enc_ping(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    if (msg->u.ping.has_id)
        b_u64(b, m, "id", msg->u.ping.id);
}

void fl_wire_tree_enc_welcome(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
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
}

/* "state", a map (snapshots and sync replies). */
static void b_state(fl_wire_bld_t *b, fl_value_t *m, const fl_value_t *state)
{
    if (state->type != FL_MAP)
        fl_wire_fail(&b->err, FL_CODE_BAD_FRAME, "\"state\" must be a map");
    b_value(b, m, "state", state);
}

void fl_wire_tree_enc_snapshot(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    const fl_wire_snapshot_t *s = &msg->u.snapshot;
    b_doc(b, m, s->doc);
    b_u64(b, m, "version", s->version);
    b_fixed(b, m, "chain", s->chain, FL_HASH_LEN);
    b_state(b, m, &s->state);
}

/* A dedup entry: [client_id, seq, outcome body]. */
static void b_dedup_entry(fl_wire_bld_t *b, fl_value_t *item, const fl_wire_dedup_t *dd)
{
    fl_value_t *e = fl_arena_alloc(b->arena, 3 * sizeof(fl_value_t));
    if (!e) {
        fl_wire_fail(&b->err, FL_CODE_INTERNAL, "out of memory");
        return;
    }
    item->type = FL_ARRAY;
    item->len = 3;
    item->u.items = e;
    b_fixed_into(b, &e[0], dd->client_id, FL_CLIENT_ID_LEN);
    if (dd->seq > INT64_MAX)
        fl_wire_fail(&b->err, FL_CODE_BAD_FRAME, "dedup seq above INT64_MAX");
    e[1] = fl_value_int((int64_t)dd->seq);
    b_map(b, &e[2]);
    b_outcome_body(b, &e[2], &dd->outcome, false);
    b_end(b, &e[2]);
}

void fl_wire_tree_enc_rec_snapshot(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    const fl_wire_snapshot_t *s = &msg->u.snapshot;
    fl_value_t *items;
    uint32_t i;
    fl_wire_tree_enc_snapshot(b, m, msg);
    b_fixed(b, m, "digest", s->digest, FL_HASH_LEN);
    b_i64(b, m, "events_offset", s->events_offset);
    if (s->dedup_evicted)
        b_u64(b, m, "dedup_evicted", s->dedup_evicted);
    items = b_array(b, m, "dedup", s->ndedup);
    for (i = 0; items && i < s->ndedup && !b->err.code; i++)
        b_dedup_entry(b, &items[i], &s->dedup[i]);
}

void fl_wire_tree_enc_deltas(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_doc(b, m, msg->u.deltas.doc);
    b_u64(b, m, "from_version", msg->u.deltas.from_version);
    b_deltas(b, m, msg->u.deltas.items, msg->u.deltas.nitems);
}

void fl_wire_tree_enc_outcome(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_outcome(b, m, &msg->u.outcome.outcome, false);
}

void fl_wire_tree_enc_rec_outcome(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_outcome(b, m, &msg->u.outcome.outcome, true);
    b_str(b, m, "gw", msg->u.outcome.gw);
    b_u64(b, m, "origin", msg->u.outcome.origin);
}

void fl_wire_tree_enc_nack(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
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
}

void fl_wire_tree_enc_error(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_u64(b, m, "code", msg->u.error.code);
    b_str(b, m, "reason", msg->u.error.reason);
}

void fl_wire_tree_enc_changed(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_doc(b, m, msg->u.changed.doc);
    b_u64(b, m, "version", msg->u.changed.version);
}

void fl_wire_tree_enc_rec_rules(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    const fl_wire_rules_t *r = &msg->u.rules;
    b_str(b, m, "prefix", r->prefix);
    if (r->has_rules)
        b_str(b, m, "rules", r->rules);
    if (r->id.len)
        b_str(b, m, "id", r->id);
}

void fl_wire_tree_enc_rec_flush(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_flush(b, m, &msg->u.rflush.flush);
    b_str(b, m, "user", msg->u.rflush.flush.user);
    b_str(b, m, "gw", msg->u.rflush.gw);
    b_u64(b, m, "origin", msg->u.rflush.origin);
    if (msg->u.rflush.role.len)
        b_str(b, m, "role", msg->u.rflush.role);
}

void fl_wire_tree_enc_rec_sync(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_doc(b, m, msg->u.sync.doc);
    b_str(b, m, "gw", msg->u.sync.gw);
    b_u64(b, m, "req", msg->u.sync.req);
    b_u64(b, m, "have_version", msg->u.sync.have_version);
}

void fl_wire_tree_enc_rec_sync_reply(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    const fl_wire_sync_reply_t *r = &msg->u.reply;
    uint64_t from = r->version;
    uint32_t i;
    b_doc(b, m, r->doc);
    b_str(b, m, "gw", r->gw);
    b_u64(b, m, "req", r->req);
    b_u64(b, m, "version", r->version);
    b_fixed(b, m, "chain", r->chain, FL_HASH_LEN);
    if (r->has_state) {
        b_state(b, m, &r->state);
        return;
    }
    for (i = 0; i < r->nitems; i++)
        from -= r->items[i].ncmds;
    b_u64(b, m, "from_version", from);
    b_deltas(b, m, r->items, r->nitems);
}

void fl_wire_tree_enc_rec_checkpoint(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    b_u64(b, m, "partition", msg->u.checkpoint.partition);
    b_u64(b, m, "events_offset", msg->u.checkpoint.events_offset);
    if (msg->u.checkpoint.nrules == 0)
        return;
    fl_value_t *items = b_array(b, m, "rules", msg->u.checkpoint.nrules);
    for (uint32_t i = 0; items && i < msg->u.checkpoint.nrules && !b->err.code; i++) {
        b_map(b, &items[i]);
        b_str(b, &items[i], "prefix", msg->u.checkpoint.rules[i].prefix);
        b_str(b, &items[i], "rules", msg->u.checkpoint.rules[i].rules);
        b_end(b, &items[i]);
    }
}

/* ---- the whole message -------------------------------------------------- */

static void b_message(fl_wire_bld_t *b, fl_value_t *m, const fl_wire_msg_t *msg)
{
    const fl_wire_desc_t *desc = fl_wire_desc_of(msg->type);
    b_map(b, m);
    if (!desc) {
        fl_wire_fail(&b->err, FL_CODE_UNKNOWN_TYPE, "unknown message type");
        return;
    }
    b_header(b, m, msg->type);
    desc->tree_enc(b, m, msg);
    b_end(b, m);
}

/* Builds the message tree in a scratch arena (caller frees the arena). */
static int build(const fl_wire_msg_t *msg, fl_wire_form_t form, fl_arena_t **arena,
                 fl_value_t *root, char *errstr, size_t errstr_size)
{
    fl_wire_bld_t b = {NULL, form, {0, errstr, errstr_size}};
    *arena = b.arena = fl_arena_new(4096);
    if (!b.arena)
        return fl_wire_seterr(errstr, errstr_size, FL_CODE_INTERNAL, "out of memory");
    b_message(&b, root, msg);
    return b.err.code;
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
            err = fl_wire_seterr(errstr, errstr_size, FL_CODE_INTERNAL, "out of memory");
    } else {
        j = fl_value_to_json(&root);
        *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!*out)
            err = fl_wire_seterr(errstr, errstr_size, FL_CODE_INTERNAL, "out of memory");
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
        err = fl_wire_seterr(errstr, errstr_size, FL_CODE_INTERNAL, "write failed");
    fl_arena_free(arena);
    return err;
}
