/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apply: a flush against a document (dedup answer, if_version, atomic
 * abort, the chain hash, the dedup record), a delta of applied commands
 * (restore, the gateway's replicas) and the replay of a stored outcome.
 * Also the dedup blob: the compact outcome each document keeps per client.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_int.h"
#include "flushline/rules.h"

static const char *const op_names[] = {
    NULL, "add", "remove", "replace", "move", "copy", "test", "incr", "merge", "create",
};

/* ---------------------------------------------------------- chain, blobs */

static int pack_int(msgpack_packer *pk, uint64_t i)
{
    fl_value_t v = fl_value_int((int64_t)i);
    return fl_value_pack(pk, &v);
}

static int pack_str(msgpack_packer *pk, const char *p, size_t n)
{
    fl_value_t v = fl_value_nil();
    v.type = FL_STR;
    v.len = (uint32_t)n;
    v.u.str = (char *)p;
    return fl_value_pack(pk, &v);
}

/* Canonical encoding of one applied command: a map with keys in byte
 * order from, key, op, path, value (see ENGINE.md). */
static int pack_cmd(msgpack_packer *pk, const fl_cmd_t *cmd)
{
    bool from = cmd->op == FL_OP_MOVE || cmd->op == FL_OP_COPY;
    bool key = cmd->op == FL_OP_CREATE;
    bool value = !(cmd->op == FL_OP_REMOVE || from);
    int rc = msgpack_pack_map(pk, 2 + from + key + value);
    if (from) {
        rc |= pack_str(pk, "from", 4);
        rc |= pack_str(pk, cmd->from.ptr, cmd->from.len);
    }
    if (key) {
        rc |= pack_str(pk, "key", 3);
        rc |= pack_str(pk, cmd->key.ptr, cmd->key.len);
    }
    rc |= pack_str(pk, "op", 2);
    rc |= pack_str(pk, op_names[cmd->op], strlen(op_names[cmd->op]));
    rc |= pack_str(pk, "path", 4);
    rc |= pack_str(pk, cmd->path.ptr, cmd->path.len);
    if (value) {
        rc |= pack_str(pk, "value", 5);
        rc |= fl_value_pack(pk, &cmd->value);
    }
    return rc;
}

/* chain = BLAKE2b-256(chain || [vbefore, vafter, [cmd...]]). */
static int chain_next(fl_doc_t *doc, const uint8_t prev[FL_HASH_LEN], uint64_t vb, uint64_t va,
                      const fl_cmd_t *cmds, uint32_t n, uint8_t out[FL_HASH_LEN])
{
    msgpack_packer pk;
    doc->scr->sbuf.size = 0;
    msgpack_packer_init(&pk, &doc->scr->sbuf, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 3);
    rc |= pack_int(&pk, vb);
    rc |= pack_int(&pk, va);
    rc |= msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        rc |= pack_cmd(&pk, &cmds[i]);
    if (rc)
        return FL_EERR_NOMEM;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, FL_HASH_LEN);
    crypto_generichash_update(&st, prev, FL_HASH_LEN);
    crypto_generichash_update(&st, (const unsigned char *)doc->scr->sbuf.data, doc->scr->sbuf.size);
    crypto_generichash_final(&st, out, FL_HASH_LEN);
    return 0;
}

/* Appends the dedup blob of out to sbuf (emptied first). */
static int blob_encode(msgpack_sbuffer *sbuf, const fl_outcome_t *out)
{
    msgpack_packer pk;
    sbuf->size = 0;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 5);
    rc |= pack_int(&pk, out->code);
    rc |= pack_int(&pk, out->version_before);
    rc |= pack_int(&pk, out->version_after);
    rc |= msgpack_pack_bin(&pk, FL_HASH_LEN);
    rc |= msgpack_pack_bin_body(&pk, out->chain, FL_HASH_LEN);
    rc |= msgpack_pack_array(&pk, out->nresults);
    for (uint32_t i = 0; i < out->nresults; i++) {
        const fl_cmd_result_t *r = &out->results[i];
        /* an empty create key is a key; outcomes from decoders that predate
         * has_key still carry their non-empty keys */
        if (r->rule.len) {
            rc |= msgpack_pack_array(&pk, 3);
            rc |= pack_int(&pk, r->code);
            rc |= msgpack_pack_nil(&pk);
            rc |= pack_str(&pk, r->rule.ptr, r->rule.len);
        } else if (r->has_key || r->key.len) {
            rc |= msgpack_pack_array(&pk, 2);
            rc |= pack_int(&pk, r->code);
            rc |= pack_str(&pk, r->key.ptr, r->key.len);
        } else {
            rc |= pack_int(&pk, r->code);
        }
    }
    return rc ? FL_EERR_NOMEM : 0;
}

/* Fills the stored fields of out from a blob (results in arena). */
static int blob_to_outcome(const char *blob, size_t len, fl_arena_t *arena, fl_outcome_t *out)
{
    fl_value_t v;
    const uint8_t *chain;
    if (fl_blob_decode(blob, len, arena, &v, &chain) < 0)
        return FL_EERR_RESTORE;
    const fl_value_t *it = v.u.items;
    out->code = (uint16_t)it[0].u.i;
    out->version_before = (uint64_t)it[1].u.i;
    out->version_after = (uint64_t)it[2].u.i;
    memcpy(out->chain, chain, FL_HASH_LEN);
    out->nresults = it[4].len;
    out->results = out->nresults ? fl_arena_alloc(arena, out->nresults * sizeof(fl_cmd_result_t))
                                 : NULL;
    if (out->nresults && !out->results)
        return FL_EERR_NOMEM;
    uint64_t ver = out->version_before;
    for (uint32_t i = 0; i < out->nresults; i++) {
        const fl_value_t *r = &it[4].u.items[i];
        fl_cmd_result_t *res = &out->results[i];
        memset(res, 0, sizeof(*res));
        if (r->type == FL_ARRAY && r->len == 3) {
            res->code = (uint16_t)r->u.items[0].u.i;
            res->rule = (fl_slice_t){r->u.items[2].len ? r->u.items[2].u.str : "",
                                     r->u.items[2].len};
        } else if (r->type == FL_ARRAY) {
            res->code = (uint16_t)r->u.items[0].u.i;
            res->key = (fl_slice_t){r->u.items[1].len ? r->u.items[1].u.str : "",
                                    r->u.items[1].len};
            res->has_key = true;
        } else {
            res->code = (uint16_t)r->u.i;
        }
        res->version = res->code == FL_CODE_OK ? ++ver : 0;
    }
    return 0;
}

int fl_engine_dedup_to_outcome(fl_slice_t blob, fl_arena_t *arena, fl_outcome_t *out)
{
    if (!arena || !out || !blob.ptr)
        return FL_EERR_ARG;
    memset(out, 0, sizeof(*out));
    return blob_to_outcome(blob.ptr, blob.len, arena, out);
}

int fl_engine_dedup_from_outcome(const fl_outcome_t *outcome, char **out, size_t *outlen)
{
    msgpack_sbuffer sbuf;
    if (!outcome || !out || !outlen || (outcome->nresults && !outcome->results))
        return FL_EERR_ARG;
    msgpack_sbuffer_init(&sbuf);
    if (blob_encode(&sbuf, outcome) < 0) {
        msgpack_sbuffer_destroy(&sbuf);
        return FL_EERR_NOMEM;
    }
    *outlen = sbuf.size;
    *out = msgpack_sbuffer_release(&sbuf);
    return 0;
}

/* ---------------------------------------------------------------- apply */

int fl_doc_apply(fl_doc_t *doc, const fl_flush_t *flush, fl_arena_t *arena, fl_outcome_t *out)
{
    return fl_doc_apply_rules(doc, flush, NULL, NULL, arena, out);
}

/* Answers a flush the dedup table or its seq settles without applying:
 * seq 0, a duplicate (its stored outcome), a stale seq, a gap. Returns 1
 * when *out is the answer, 0 when the flush is to be applied, or
 * FL_EERR_NOMEM. */
static int dedup_answer(fl_doc_t *doc, const fl_flush_t *flush, fl_arena_t *arena,
                        fl_outcome_t *out)
{
    if (flush->seq == 0) {
        out->code = FL_CODE_INVALID;
        return 1;
    }
    dd_ent_t *e = fl_dedup_find(doc->dedup, flush->client_id);
    if (e && flush->seq == e->seq) {
        /* stored blobs were validated; only the arena can fail here */
        out->duplicate = true;
        return blob_to_outcome(e->blob, e->blen, arena, out) ? FL_EERR_NOMEM : 1;
    }
    if (e && flush->seq < e->seq) {
        out->duplicate = true; /* stale: processed before, outcome no longer kept */
        return 1;
    }
    if (e && flush->seq > e->seq + 1) {
        out->code = FL_CODE_GAP;
        return 1;
    }
    /* An unknown client starts at seq 1. Accepting a later seq would let a
     * seq 2 published before a lost seq 1 become the client's first flush,
     * and the resent seq 1 would then be answered as stale: acknowledged,
     * never applied. Only once the table has evicted may an unknown client
     * be one whose entry went (ENGINE.md, Dedup). */
    if (!e && flush->seq > 1 && fl_dedup_evictions(doc->dedup) == 0) {
        out->code = FL_CODE_GAP;
        return 1;
    }
    return 0;
}

/* Fills result i of out from command cmd's code rc (>= 0), and appends the
 * command as applied when it succeeded. 0 or FL_EERR_NOMEM. */
static int note_result(const ctx_t *cx, const fl_cmd_t *cmd, int rc, fl_arena_t *arena,
                       fl_cmd_result_t *res, fl_outcome_t *out)
{
    res->code = (uint16_t)rc;
    res->version = rc == FL_CODE_OK ? cx->doc->version : 0;
    res->key = cx->key;
    res->has_key = cx->has_key;
    res->rule = (fl_slice_t){NULL, 0};
    if (rc == FL_CODE_RULE_VIOLATION) {
        /* the name outlives the rule set: copy it into the outcome */
        char *name = fl_arena_alloc(arena, cx->rule.len ? cx->rule.len : 1);
        if (!name)
            return FL_EERR_NOMEM;
        memcpy(name, cx->rule.ptr, cx->rule.len);
        res->rule = (fl_slice_t){name, cx->rule.len};
    }
    if (rc != FL_CODE_OK)
        return 0;
    fl_cmd_t *ap = &out->applied[out->napplied++];
    *ap = *cmd;
    if (cx->rules && cx->stamped)
        ap->value = cx->sval; /* deltas and the chain carry the stamped value */
    if (cmd->op == FL_OP_CREATE) {
        ap->has_key = true;
        ap->key = cx->key;
    }
    return 0;
}

/* An atomic flush whose command failed: the state goes back to v0, every
 * other command is answered aborted. */
static void abort_flush(fl_doc_t *doc, uint32_t failed, size_t size0, uint64_t v0,
                        uint32_t ncmds, fl_outcome_t *out)
{
    fl_undo_rollback(doc, 0);
    doc->size = size0;
    doc->version = v0;
    for (uint32_t i = 0; i < ncmds; i++) {
        if (i == failed)
            continue;
        out->results[i].code = FL_CODE_ABORTED;
        out->results[i].version = 0;
        out->results[i].key = (fl_slice_t){NULL, 0};
        out->results[i].has_key = false;
        out->results[i].rule = (fl_slice_t){NULL, 0};
    }
    out->napplied = 0;
    out->code = FL_CODE_ABORTED;
}

int fl_doc_apply_rules(fl_doc_t *doc, const fl_flush_t *flush, const fl_rules_t *rules,
                       const fl_rules_ctx_t *rctx, fl_arena_t *arena, fl_outcome_t *out)
{
    if (!doc || !flush || !arena || !out || (flush->ncmds && !flush->cmds))
        return FL_EERR_ARG;
    if (flush->doc.len != doc->idlen || memcmp(flush->doc.ptr, doc->id, doc->idlen) != 0)
        return FL_EERR_ARG;
    memset(out, 0, sizeof(*out));
    out->doc = flush->doc;
    memcpy(out->client_id, flush->client_id, FL_CLIENT_ID_LEN);
    out->seq = flush->seq;
    out->user = flush->user;
    out->ts_ms = flush->ts_ms;
    out->version_before = out->version_after = doc->version;
    memcpy(out->chain, doc->chain, FL_HASH_LEN);

    int rc = dedup_answer(doc, flush, arena, out);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    uint64_t v0 = doc->version;
    size_t size0 = doc->size;
    uint8_t chain0[FL_HASH_LEN];
    memcpy(chain0, doc->chain, FL_HASH_LEN);
    if (flush->has_if_version && flush->if_version != doc->version) {
        out->code = FL_CODE_VERSION_MISMATCH;
        goto record;
    }
    if (flush->ncmds) {
        out->results = fl_arena_alloc(arena, flush->ncmds * sizeof(fl_cmd_result_t));
        out->applied = fl_arena_alloc(arena, flush->ncmds * sizeof(fl_cmd_t));
        if (!out->results || !out->applied)
            return FL_EERR_NOMEM;
    }
    out->nresults = flush->ncmds;
    ctx_t cx = {.doc = doc, .arena = arena, .rules = rules, .rctx = rctx, .flush = flush};
    uint32_t failed = FL_NONE;
    for (uint32_t i = 0; i < flush->ncmds; i++) {
        const fl_cmd_t *cmd = &flush->cmds[i];
        rc = fl_apply_cmd(&cx, cmd);
        if (rc < 0 || note_result(&cx, cmd, rc, arena, &out->results[i], out) < 0)
            goto fail;
        if (rc != FL_CODE_OK && flush->atomic) {
            failed = i;
            break;
        }
    }
    if (failed != FL_NONE)
        abort_flush(doc, failed, size0, v0, flush->ncmds, out);
    if (out->napplied && chain_next(doc, chain0, v0, doc->version, out->applied, out->napplied,
                                    doc->chain) < 0)
        goto fail;
    out->version_after = doc->version;
    memcpy(out->chain, doc->chain, FL_HASH_LEN);
record:
    if (blob_encode(&doc->scr->sbuf, out) < 0 ||
        fl_dedup_record(doc->dedup, flush->client_id, flush->seq, doc->scr->sbuf.data,
                        doc->scr->sbuf.size) < 0)
        goto fail;
    fl_undo_commit(doc, 0);
    return 0;
fail:
    fl_undo_rollback(doc, 0);
    doc->size = size0;
    doc->version = v0;
    memcpy(doc->chain, chain0, FL_HASH_LEN);
    return FL_EERR_NOMEM;
}

int fl_doc_apply_applied(fl_doc_t *doc, uint64_t version_before, const fl_cmd_t *cmds,
                         uint32_t n, const uint8_t *expected_chain, fl_arena_t *arena)
{
    if (!doc || !arena || (n && !cmds))
        return FL_EERR_ARG;
    if (doc->version != version_before)
        return FL_EERR_DELTA;
    if (n == 0)
        return 0;
    size_t size0 = doc->size;
    uint8_t chain[FL_HASH_LEN];
    ctx_t cx = {.doc = doc, .arena = arena};
    int rc = 0;
    doc->strict = true;
    for (uint32_t i = 0; i < n; i++) {
        if (cmds[i].op == FL_OP_CREATE && !cmds[i].has_key) {
            rc = FL_EERR_DELTA;
            goto fail;
        }
        rc = fl_apply_cmd(&cx, &cmds[i]);
        if (rc != FL_CODE_OK) {
            rc = rc < 0 ? rc : FL_EERR_DELTA;
            goto fail;
        }
    }
    if ((rc = chain_next(doc, doc->chain, version_before, doc->version, cmds, n, chain)) < 0)
        goto fail;
    if (expected_chain && memcmp(expected_chain, chain, FL_HASH_LEN) != 0) {
        rc = FL_EERR_CHAIN;
        goto fail;
    }
    memcpy(doc->chain, chain, FL_HASH_LEN);
    doc->strict = false;
    fl_undo_commit(doc, 0);
    return 0;
fail:
    doc->strict = false;
    fl_undo_rollback(doc, 0);
    doc->size = size0;
    doc->version = version_before;
    return rc;
}

/* ---------------------------------------------------------------- replay */

int fl_doc_replay(fl_doc_t *doc, const fl_outcome_t *outcome, fl_arena_t *arena)
{
    int rc;
    if (!doc || !outcome || !arena || (outcome->napplied && !outcome->applied))
        return FL_EERR_ARG;
    if (outcome->doc.len != doc->idlen || memcmp(outcome->doc.ptr, doc->id, doc->idlen) != 0)
        return FL_EERR_ARG;
    /* Answers that changed nothing and were not recorded when applied:
     * duplicates (stale ones included), gaps and seq 0. */
    if (outcome->duplicate || outcome->code == FL_CODE_GAP || outcome->seq == 0)
        return 0;
    if (outcome->napplied > 0) {
        rc = fl_doc_apply_applied(doc, outcome->version_before, outcome->applied,
                                  outcome->napplied, outcome->chain, arena);
        if (rc < 0)
            return rc;
    } else if (outcome->version_before != doc->version ||
               outcome->version_after != doc->version) {
        return FL_EERR_DELTA;
    }
    if ((rc = blob_encode(&doc->scr->sbuf, outcome)) < 0 ||
        (rc = fl_dedup_record(doc->dedup, outcome->client_id, outcome->seq, doc->scr->sbuf.data,
                              doc->scr->sbuf.size)) < 0)
        return FL_EERR_NOMEM;
    return 0;
}
