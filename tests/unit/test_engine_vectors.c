/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs the shared engine vectors (every JSON file in schemas/vectors/engine) and checks
 * every field: flush code, duplicate flag, versions, each result's code,
 * version and key (an empty key is a key), the state, the chain hash and the
 * state digest. For each case it also checks that the tracked size equals
 * the canonical size, that replaying the applied commands on a replica
 * (fl_doc_apply_applied) reproduces state and chain, and that running the
 * case twice gives byte-identical results. Every expected field comes from
 * schemas/vectors/engine/cases.py and its reference model (model.py), never
 * from this engine.
 *
 * Two coverage checks: every code listed in schemas/ENGINE.md's code table
 * is produced by at least one vector, and the op x target type x location
 * matrix is complete: for every op (move and copy also by their from) and
 * every target type (nil, bool, int, float, str, bin, array, map, missing)
 * there is a case whose first command addresses such a target at a
 * root-level key, nested (3+ tokens) in a map, and nested in an array, and
 * one addressing the root "". The location and type are read from each
 * case's state, not from its name.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/engine.h"

static bool seen_code[FL_CODE__COUNT];
static bool seen_duplicate, seen_stale;
static int ncases;

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int unhex16(const char *s, uint8_t out[16])
{
    if (!s || strlen(s) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned b;
        if (sscanf(s + 2 * i, "%2x", &b) != 1)
            return -1;
        out[i] = (uint8_t)b;
    }
    return 0;
}

static fl_slice_t jslice(const json_t *j)
{
    if (!json_is_string(j))
        return (fl_slice_t){"", 0};
    return (fl_slice_t){json_string_value(j), json_string_length(j)};
}

static int flush_from_json(const json_t *j, fl_arena_t *arena, fl_flush_t *fl)
{
    memset(fl, 0, sizeof(*fl));
    fl->doc = jslice(json_object_get(j, "doc"));
    if (unhex16(json_string_value(json_object_get(j, "client_id")), fl->client_id) < 0)
        return -1;
    fl->seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    fl->base_version = (uint64_t)json_integer_value(json_object_get(j, "base_version"));
    json_t *iv = json_object_get(j, "if_version");
    if (iv) {
        fl->has_if_version = true;
        fl->if_version = (uint64_t)json_integer_value(iv);
    }
    fl->atomic = json_is_true(json_object_get(j, "atomic"));
    json_t *cmds = json_object_get(j, "commands");
    fl->ncmds = (uint32_t)json_array_size(cmds);
    fl->cmds = fl_arena_alloc(arena, (fl->ncmds + 1) * sizeof(fl_cmd_t));
    if (!fl->cmds)
        return -1;
    for (uint32_t i = 0; i < fl->ncmds; i++) {
        json_t *c = json_array_get(cmds, i);
        fl_cmd_t *cmd = &fl->cmds[i];
        memset(cmd, 0, sizeof(*cmd));
        fl_slice_t op = jslice(json_object_get(c, "op"));
        cmd->op = (uint8_t)fl_op_from_name(op.ptr, op.len);
        cmd->path = jslice(json_object_get(c, "path"));
        cmd->from = jslice(json_object_get(c, "from"));
        json_t *key = json_object_get(c, "key");
        if (key) {
            cmd->has_key = true;
            cmd->key = jslice(key);
        }
        json_t *val = json_object_get(c, "value");
        if (val) {
            cmd->has_value = true;
            if (fl_value_from_json(val, NULL, arena, &cmd->value) < 0)
                return -1;
        }
    }
    return 0;
}

typedef struct run_s {
    fl_doc_t *doc;
    fl_outcome_t out; /* of the last flush */
    char *state;      /* canonical encoding of the final state */
    size_t statelen;
} run_t;

static void run_free(run_t *r)
{
    fl_doc_free(r->doc);
    free(r->state);
    memset(r, 0, sizeof(*r));
}

/* Applies the case's "before" flushes and its flush on a fresh document,
 * with a replica following by deltas. Returns a message on failure. */
static const char *run_case(const json_t *c, fl_arena_t *arena, run_t *r)
{
    fl_engine_config_t cfg = fl_engine_config_default;
    json_t *jc = json_object_get(c, "config"), *x;
    if ((x = json_object_get(jc, "max_state_bytes")))
        cfg.max_state_bytes = (size_t)json_integer_value(x);
    if ((x = json_object_get(jc, "max_depth")))
        cfg.max_depth = (uint32_t)json_integer_value(x);
    if ((x = json_object_get(jc, "max_dedup")))
        cfg.max_dedup = (uint32_t)json_integer_value(x);
    fl_slice_t id = jslice(json_object_get(c, "doc"));
    fl_value_t state;
    uint8_t zero[FL_HASH_LEN] = {0};
    uint64_t version = (uint64_t)json_integer_value(json_object_get(c, "version"));
    memset(r, 0, sizeof(*r));
    r->doc = fl_doc_new(id, &cfg);
    fl_doc_t *replica = fl_doc_new(id, &cfg);
    const char *err = NULL;
    if (!r->doc || !replica)
        return "fl_doc_new";
    if (fl_value_from_json(json_object_get(c, "state"), NULL, arena, &state) < 0) {
        err = "state JSON";
        goto fail;
    }
    if (fl_doc_restore(r->doc, &state, version, zero) < 0 ||
        fl_doc_restore(replica, &state, version, zero) < 0) {
        err = "restore";
        goto fail;
    }
    json_t *before = json_object_get(c, "before");
    size_t nsteps = json_array_size(before) + 1;
    for (size_t i = 0; i < nsteps; i++) {
        json_t *jf = i + 1 < nsteps ? json_array_get(before, i) : json_object_get(c, "flush");
        fl_flush_t fl;
        if (flush_from_json(jf, arena, &fl) < 0) {
            err = "flush JSON";
            goto fail;
        }
        if (fl_doc_apply(r->doc, &fl, arena, &r->out) != 0) {
            err = "fl_doc_apply failed";
            goto fail;
        }
        if (fl_doc_size(r->doc) != fl_value_encoded_size(fl_doc_state(r->doc))) {
            err = "tracked size differs from the canonical size";
            goto fail;
        }
        uint32_t ok = 0;
        for (uint32_t k = 0; k < r->out.nresults; k++)
            ok += r->out.results[k].code == FL_CODE_OK;
        if (!r->out.duplicate && (r->out.version_after - r->out.version_before != ok ||
                                  r->out.napplied != (r->out.code == FL_CODE_ABORTED ? 0 : ok))) {
            err = "versions do not account for the results";
            goto fail;
        }
        if (r->out.napplied &&
            fl_doc_apply_applied(replica, r->out.version_before, r->out.applied, r->out.napplied,
                                 r->out.chain, arena) != 0) {
            err = "delta replay failed";
            goto fail;
        }
    }
    if (fl_doc_version(replica) != fl_doc_version(r->doc) ||
        memcmp(fl_doc_chain(replica), fl_doc_chain(r->doc), FL_HASH_LEN) != 0 ||
        !fl_value_equal(fl_doc_state(replica), fl_doc_state(r->doc))) {
        err = "replica diverged";
        goto fail;
    }
    if (fl_value_encode(fl_doc_state(r->doc), &r->state, &r->statelen) < 0)
        err = "encode";
fail:
    fl_doc_free(replica);
    return err;
}

static bool check_case(json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *exp = json_object_get(c, "expect");
    fl_arena_t *arena = fl_arena_new(1 << 14);
    run_t r, r2;
    bool ok = false;
    const char *err = run_case(c, arena, &r);
    const char *err2 = err ? NULL : run_case(c, arena, &r2);
    char buf[2 * FL_HASH_LEN + 1];
    uint8_t digest[FL_HASH_LEN];
    fl_value_t want;
    if (err || err2) {
        fprintf(stderr, "[%s] %s\n", name, err ? err : err2);
        goto out;
    }
    /* determinism: the same history twice gives the same bytes */
    if (r.statelen != r2.statelen || memcmp(r.state, r2.state, r.statelen) != 0 ||
        memcmp(fl_doc_chain(r.doc), fl_doc_chain(r2.doc), FL_HASH_LEN) != 0) {
        fprintf(stderr, "[%s] not deterministic\n", name);
        goto out;
    }
    const fl_outcome_t *o = &r.out;
    const char *code = json_string_value(json_object_get(exp, "code"));
    if (!code || fl_code_from_name(code, strlen(code)) != o->code) {
        fprintf(stderr, "[%s] code %s, got %s\n", name, code, fl_code_name(o->code));
        goto out;
    }
    seen_code[o->code] = true;
    if (json_is_true(json_object_get(exp, "duplicate")) != o->duplicate) {
        fprintf(stderr, "[%s] duplicate %d\n", name, o->duplicate);
        goto out;
    }
    seen_duplicate |= o->duplicate && o->nresults;
    seen_stale |= o->duplicate && !o->nresults;
    if ((uint64_t)json_integer_value(json_object_get(exp, "version_before")) != o->version_before ||
        (uint64_t)json_integer_value(json_object_get(exp, "version_after")) != o->version_after ||
        (uint64_t)json_integer_value(json_object_get(exp, "version")) != fl_doc_version(r.doc)) {
        fprintf(stderr, "[%s] versions %llu..%llu doc %llu\n", name,
                (unsigned long long)o->version_before, (unsigned long long)o->version_after,
                (unsigned long long)fl_doc_version(r.doc));
        goto out;
    }
    json_t *res = json_object_get(exp, "results");
    if (json_array_size(res) != o->nresults) {
        fprintf(stderr, "[%s] %zu results, got %u\n", name, json_array_size(res), o->nresults);
        goto out;
    }
    for (uint32_t i = 0; i < o->nresults; i++) {
        json_t *jr = json_array_get(res, i);
        const char *rc = json_string_value(json_object_get(jr, "code"));
        fl_slice_t key = jslice(json_object_get(jr, "key"));
        bool haskey = json_object_get(jr, "key") != NULL;
        const fl_cmd_result_t *cr = &o->results[i];
        seen_code[cr->code < FL_CODE__COUNT ? cr->code : 0] = true;
        if (!rc || fl_code_from_name(rc, strlen(rc)) != cr->code ||
            (uint64_t)json_integer_value(json_object_get(jr, "version")) != cr->version ||
            (haskey && (!cr->has_key || key.len != cr->key.len ||
                        memcmp(key.ptr, cr->key.ptr, key.len) != 0)) ||
            (!haskey && (cr->has_key || cr->key.len))) {
            fprintf(stderr, "[%s] result %u: want %s v%lld, got %s v%llu key %.*s\n", name, i, rc,
                    (long long)json_integer_value(json_object_get(jr, "version")),
                    fl_code_name(cr->code), (unsigned long long)cr->version, (int)cr->key.len,
                    cr->key.ptr ? cr->key.ptr : "");
            goto out;
        }
    }
    if (fl_value_from_json(json_object_get(exp, "state"), NULL, arena, &want) < 0 ||
        !fl_value_equal(&want, fl_doc_state(r.doc))) {
        json_t *got = fl_value_to_json(fl_doc_state(r.doc));
        char *s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "[%s] state differs, got %s\n", name, s);
        free(s);
        json_decref(got);
        goto out;
    }
    hex(fl_doc_chain(r.doc), FL_HASH_LEN, buf);
    const char *chain = json_string_value(json_object_get(exp, "chain"));
    fl_doc_digest(r.doc, digest);
    char dbuf[2 * FL_HASH_LEN + 1];
    hex(digest, FL_HASH_LEN, dbuf);
    const char *dig = json_string_value(json_object_get(exp, "digest"));
    if (!chain || strcmp(chain, buf) != 0 || !dig || strcmp(dig, dbuf) != 0) {
        fprintf(stderr, "[%s] chain %s digest %s, got %s %s\n", name, chain ? chain : "(none)",
                dig ? dig : "(none)", buf, dbuf);
        goto out;
    }
    ok = true;
out:
    if (!err)
        run_free(&r);
    if (!err && !err2)
        run_free(&r2);
    fl_arena_free(arena);
    return ok;
}

/* ---- the op x target type x location matrix ---- */

enum { ROLE_FROM = 10 }; /* roles: FL_OP_* on the path, FL_OP_MOVE/COPY + ROLE_FROM on from */
enum { LOC_ROOT, LOC_TOP, LOC_MAP, LOC_ARRAY, LOC__COUNT };
enum { TYPE_MISSING = FL_MAP + 1, TYPE__COUNT };
static const char *const loc_names[] = {"the root", "a root-level key", "nested in a map",
                                        "nested in an array"};
static const char *const type_names[] = {"nil", "bool", "int",   "float",  "str",
                                         "bin", "array", "map", "missing"};
static bool seen_matrix[ROLE_FROM + FL_OP_COPY + 1][LOC__COUNT][TYPE__COUNT];

/* The n-th token of pointer p (unescaped into buf), or -1 past the end. */
static int ptr_token(const char *p, int n, char *buf, size_t size)
{
    const char *t = p;
    for (int i = 0; i <= n; i++) {
        t = strchr(t, '/');
        if (!t)
            return -1;
        t++;
    }
    size_t o = 0;
    for (; *t && *t != '/' && o + 1 < size; t++)
        buf[o++] = *t == '~' ? (*++t == '0' ? '~' : '/') : *t;
    buf[o] = 0;
    return (int)o;
}

/* RFC 6901 syntax: "" or "/..." where every ~ is followed by 0 or 1. */
static bool ptr_syntax_ok(const char *p)
{
    if (*p && *p != '/')
        return false;
    for (const char *c = p; *c; c++)
        if (*c == '~' && c[1] != '0' && c[1] != '1')
            return false;
    return true;
}

/* Array index syntax ("0" or no leading zero); idx UINT32_MAX when huge. */
static bool is_index(const char *t, uint32_t *idx)
{
    if (!*t || (t[0] == '0' && t[1]))
        return false;
    for (const char *c = t; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    *idx = strlen(t) > 9 ? UINT32_MAX : (uint32_t)strtoul(t, NULL, 10);
    return true;
}

/* Marks what pointer p addresses in state: the root, or a target whose
 * container exists (a map or an array), at one token or three and more. */
static void classify_ptr(int role, const fl_value_t *state, const char *p)
{
    if (!ptr_syntax_ok(p))
        return;
    if (!*p) {
        seen_matrix[role][LOC_ROOT][FL_MAP] = true;
        return;
    }
    int ntok = 0;
    for (const char *c = p; *c; c++)
        ntok += *c == '/';
    if (ntok == 2)
        return;
    char tok[256];
    const fl_value_t *cur = state;
    for (int i = 0; i < ntok; i++) {
        const fl_value_t *next = NULL;
        uint32_t idx;
        int tlen = ptr_token(p, i, tok, sizeof tok);
        if (cur->type == FL_MAP)
            next = fl_map_get(cur, tok, (size_t)tlen);
        else if (cur->type != FL_ARRAY || (!is_index(tok, &idx) && strcmp(tok, "-") != 0))
            return; /* no container, or not an index */
        else if (strcmp(tok, "-") != 0 && idx < cur->len)
            next = &cur->u.items[idx];
        if (i + 1 == ntok) {
            int loc = ntok == 1 ? LOC_TOP : cur->type == FL_MAP ? LOC_MAP : LOC_ARRAY;
            seen_matrix[role][loc][next ? (int)next->type : TYPE_MISSING] = true;
            return;
        }
        if (!next)
            return;
        cur = next;
    }
}

/* Classifies the first command of a case without "before" flushes. */
static void classify_case(const json_t *c)
{
    json_t *cmd = json_array_get(json_object_get(json_object_get(c, "flush"), "commands"), 0);
    if (json_array_size(json_object_get(c, "before")) || !cmd)
        return;
    const char *op = json_string_value(json_object_get(cmd, "op"));
    int code = op ? fl_op_from_name(op, strlen(op)) : -1;
    if (code < FL_OP_ADD || code > FL_OP_CREATE)
        return;
    fl_arena_t *arena = fl_arena_new(1 << 12);
    fl_value_t state;
    const char *path = json_string_value(json_object_get(cmd, "path"));
    const char *from = json_string_value(json_object_get(cmd, "from"));
    if (arena && fl_value_from_json(json_object_get(c, "state"), NULL, arena, &state) == 0) {
        classify_ptr(code, &state, path ? path : "");
        if (code == FL_OP_MOVE || code == FL_OP_COPY)
            classify_ptr(ROLE_FROM + code, &state, from ? from : "");
    }
    fl_arena_free(arena);
}

static void test_vectors(void)
{
    const char *dir = fl_test_source_path("schemas/vectors/engine");
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", dir);
    DIR *d = opendir(dirbuf);
    ASSERT_TRUE(d != NULL);
    struct dirent *de;
    int bad = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dirbuf, de->d_name);
        json_error_t jerr;
        json_t *root = json_load_file(path, 0, &jerr);
        if (!root) {
            fprintf(stderr, "%s: %s\n", path, jerr.text);
            bad++;
            continue;
        }
        json_t *cases = json_object_get(root, "cases");
        int file_bad = 0;
        for (size_t i = 0; i < json_array_size(cases); i++) {
            ncases++;
            file_bad += !check_case(json_array_get(cases, i));
            classify_case(json_array_get(cases, i));
        }
        bad += file_bad;
        json_decref(root);
    }
    closedir(d);
    ASSERT_EQ(bad, 0);
    ASSERT_GE(ncases, 900);
}

/* Every code in ENGINE.md's table ("| `name` |" lines) appears in a vector. */
static void test_codes_covered(void)
{
    size_t len;
    char *md = fl_test_read_file(fl_test_source_path("schemas/ENGINE.md"), &len);
    ASSERT_TRUE(md != NULL);
    int listed = 0, missing = 0;
    for (char *line = md; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char *end = strchr(line + 3, '`');
        if (!end)
            continue;
        int code = fl_code_from_name(line + 3, (size_t)(end - line - 3));
        if (code < 0) {
            if ((size_t)(end - line - 3) == 9 && memcmp(line + 3, "duplicate", 9) == 0) {
                listed++;
                missing += !seen_duplicate;
            } else if ((size_t)(end - line - 3) == 5 && memcmp(line + 3, "stale", 5) == 0) {
                listed++;
                missing += !seen_stale;
            }
            continue;
        }
        listed++;
        if (!seen_code[code]) {
            fprintf(stderr, "code %s listed in ENGINE.md but produced by no vector\n",
                    fl_code_name(code));
            missing++;
        }
    }
    free(md);
    ASSERT_GE(listed, 11);
    ASSERT_EQ(missing, 0);
}

/* Every role on every target type at every location has a case. */
static void test_matrix_covered(void)
{
    static const int roles[] = {
        FL_OP_ADD,  FL_OP_REMOVE, FL_OP_REPLACE, FL_OP_MOVE,  ROLE_FROM + FL_OP_MOVE,
        FL_OP_COPY, ROLE_FROM + FL_OP_COPY,      FL_OP_TEST,  FL_OP_INCR,
        FL_OP_MERGE, FL_OP_CREATE,
    };
    int missing = 0, cells = 0;
    for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
        int role = roles[r];
        const char *name = role == ROLE_FROM + FL_OP_MOVE   ? "move from"
                           : role == ROLE_FROM + FL_OP_COPY ? "copy from"
                                                            : fl_op_name(role);
        for (int loc = LOC_ROOT; loc < LOC__COUNT; loc++) {
            for (int t = 0; t < TYPE__COUNT; t++) {
                if (loc == LOC_ROOT && t != FL_MAP)
                    continue; /* the root is always a map */
                cells++;
                if (!seen_matrix[role][loc][t]) {
                    fprintf(stderr, "no vector for %s on a %s target at %s\n", name,
                            type_names[t], loc_names[loc]);
                    missing++;
                }
            }
        }
    }
    ASSERT_EQ(cells, 11 * (1 + 3 * 9));
    ASSERT_EQ(missing, 0);
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_codes_covered);
    RUN(test_matrix_covered);
    return fl_test_done();
}
