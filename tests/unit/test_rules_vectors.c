/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs the shared rules vectors (every JSON file in schemas/vectors/rules)
 * through fl_doc_apply_rules and checks every field: flush code, duplicate
 * flag, versions, each result's code, version, create key and rule name,
 * the state, the chain hash and the digest. Each case also replays the
 * applied commands (stamped values included) on a replica without rules,
 * which must reach the same state and chain: deltas carry the stamps. The
 * expectations come from schemas/vectors/rules/cases.py and its model
 * (rules_model.py), never from this engine.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/engine.h"
#include "flushline/rules.h"

static int ncases;
static bool seen_rule_violation;

static fl_slice_t jslice(const json_t *j)
{
    if (!json_is_string(j))
        return (fl_slice_t){"", 0};
    return (fl_slice_t){json_string_value(j), json_string_length(j)};
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int flush_from_json(const json_t *j, fl_arena_t *arena, fl_flush_t *fl)
{
    memset(fl, 0, sizeof(*fl));
    fl->doc = jslice(json_object_get(j, "doc"));
    const char *cid = json_string_value(json_object_get(j, "client_id"));
    if (!cid || strlen(cid) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned b;
        if (sscanf(cid + 2 * i, "%2x", &b) != 1)
            return -1;
        fl->client_id[i] = (uint8_t)b;
    }
    fl->seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    fl->base_version = (uint64_t)json_integer_value(json_object_get(j, "base_version"));
    fl->atomic = json_is_true(json_object_get(j, "atomic"));
    fl->user = jslice(json_object_get(j, "user"));
    fl->ts_ms = json_integer_value(json_object_get(j, "ts"));
    json_t *cmds = json_object_get(j, "commands");
    fl->ncmds = (uint32_t)json_array_size(cmds);
    fl->cmds = fl_arena_alloc(arena, (fl->ncmds + 1) * sizeof(fl_cmd_t));
    if (!fl->cmds)
        return -1;
    for (uint32_t i = 0; i < fl->ncmds; i++) {
        json_t *c = json_array_get(cmds, i), *x;
        fl_cmd_t *cmd = &fl->cmds[i];
        memset(cmd, 0, sizeof(*cmd));
        fl_slice_t op = jslice(json_object_get(c, "op"));
        cmd->op = (uint8_t)fl_op_from_name(op.ptr, op.len);
        cmd->path = jslice(json_object_get(c, "path"));
        cmd->from = jslice(json_object_get(c, "from"));
        if ((x = json_object_get(c, "key"))) {
            cmd->has_key = true;
            cmd->key = jslice(x);
        }
        if ((x = json_object_get(c, "value"))) {
            cmd->has_value = true;
            if (fl_value_from_json(x, NULL, arena, &cmd->value) < 0)
                return -1;
        }
    }
    return 0;
}

static bool check_case(const json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *exp = json_object_get(c, "expect"), *jc = json_object_get(c, "config"), *x;
    fl_engine_config_t cfg = fl_engine_config_default;
    if ((x = json_object_get(jc, "max_state_bytes")))
        cfg.max_state_bytes = (size_t)json_integer_value(x);
    fl_arena_t *arena = fl_arena_new(1 << 14);
    fl_slice_t id = jslice(json_object_get(c, "doc"));
    fl_doc_t *doc = fl_doc_new(id, &cfg), *replica = fl_doc_new(id, &cfg);
    fl_rules_t *rules = NULL;
    fl_outcome_t out;
    fl_value_t state, want;
    uint8_t zero[FL_HASH_LEN] = {0}, digest[FL_HASH_LEN];
    char errstr[256], buf[2 * FL_HASH_LEN + 1], dbuf[2 * FL_HASH_LEN + 1];
    const char *err = NULL;
    uint64_t version = (uint64_t)json_integer_value(json_object_get(c, "version"));
    char *rtext = json_dumps(json_object_get(c, "rules"), JSON_COMPACT);
    fl_rules_ctx_t rctx = {.role = jslice(json_object_get(c, "role"))};

    if (!doc || !replica || !arena || !rtext) {
        err = "setup";
        goto out;
    }
    if (fl_rules_parse(rtext, strlen(rtext), &rules, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "[%s] rules: %s\n", name, errstr);
        err = "rules do not parse";
        goto out;
    }
    if (fl_value_from_json(json_object_get(c, "state"), NULL, arena, &state) < 0 ||
        fl_doc_restore(doc, &state, version, zero) < 0 ||
        fl_doc_restore(replica, &state, version, zero) < 0) {
        err = "state";
        goto out;
    }
    json_t *before = json_object_get(c, "before");
    size_t nsteps = json_array_size(before) + 1;
    for (size_t i = 0; i < nsteps; i++) {
        json_t *jf = i + 1 < nsteps ? json_array_get(before, i) : json_object_get(c, "flush");
        fl_flush_t fl;
        if (flush_from_json(jf, arena, &fl) < 0) {
            err = "flush JSON";
            goto out;
        }
        if (fl_doc_apply_rules(doc, &fl, rules, &rctx, arena, &out) != 0) {
            err = "fl_doc_apply_rules failed";
            goto out;
        }
        if (fl_doc_size(doc) != fl_value_encoded_size(fl_doc_state(doc))) {
            err = "tracked size differs from the canonical size";
            goto out;
        }
        if (out.napplied && fl_doc_apply_applied(replica, out.version_before, out.applied,
                                                 out.napplied, out.chain, arena) != 0) {
            err = "delta replay (stamped values) failed";
            goto out;
        }
    }
    if (fl_doc_version(replica) != fl_doc_version(doc) ||
        !fl_value_equal(fl_doc_state(replica), fl_doc_state(doc))) {
        err = "replica diverged";
        goto out;
    }
    const char *code = json_string_value(json_object_get(exp, "code"));
    if (!code || fl_code_from_name(code, strlen(code)) != out.code ||
        json_is_true(json_object_get(exp, "duplicate")) != out.duplicate ||
        (uint64_t)json_integer_value(json_object_get(exp, "version_before")) !=
            out.version_before ||
        (uint64_t)json_integer_value(json_object_get(exp, "version_after")) != out.version_after ||
        (uint64_t)json_integer_value(json_object_get(exp, "version")) != fl_doc_version(doc)) {
        fprintf(stderr, "[%s] code %s dup %d versions %llu..%llu\n", name,
                fl_code_name(out.code), out.duplicate, (unsigned long long)out.version_before,
                (unsigned long long)out.version_after);
        err = "outcome differs";
        goto out;
    }
    json_t *res = json_object_get(exp, "results");
    if (json_array_size(res) != out.nresults) {
        err = "result count differs";
        goto out;
    }
    for (uint32_t i = 0; i < out.nresults; i++) {
        json_t *jr = json_array_get(res, i);
        const fl_cmd_result_t *r = &out.results[i];
        const char *rc = json_string_value(json_object_get(jr, "code"));
        fl_slice_t key = jslice(json_object_get(jr, "key"));
        fl_slice_t rule = jslice(json_object_get(jr, "rule"));
        bool haskey = json_object_get(jr, "key") != NULL;
        seen_rule_violation |= r->code == FL_CODE_RULE_VIOLATION;
        if (!rc || fl_code_from_name(rc, strlen(rc)) != r->code ||
            (uint64_t)json_integer_value(json_object_get(jr, "version")) != r->version ||
            haskey != r->has_key ||
            (haskey && (key.len != r->key.len || memcmp(key.ptr, r->key.ptr, key.len) != 0)) ||
            rule.len != r->rule.len || (rule.len && memcmp(rule.ptr, r->rule.ptr, rule.len))) {
            fprintf(stderr, "[%s] result %u: want %s rule '%.*s', got %s rule '%.*s' v%llu\n",
                    name, i, rc, (int)rule.len, rule.ptr, fl_code_name(r->code),
                    (int)r->rule.len, r->rule.len ? r->rule.ptr : "",
                    (unsigned long long)r->version);
            err = "result differs";
            goto out;
        }
    }
    if (fl_value_from_json(json_object_get(exp, "state"), NULL, arena, &want) < 0 ||
        !fl_value_equal(&want, fl_doc_state(doc))) {
        json_t *got = fl_value_to_json(fl_doc_state(doc));
        char *s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "[%s] state differs, got %s\n", name, s);
        free(s);
        json_decref(got);
        err = "state differs";
        goto out;
    }
    hex(fl_doc_chain(doc), FL_HASH_LEN, buf);
    fl_doc_digest(doc, digest);
    hex(digest, FL_HASH_LEN, dbuf);
    const char *chain = json_string_value(json_object_get(exp, "chain"));
    const char *dig = json_string_value(json_object_get(exp, "digest"));
    if (!chain || strcmp(chain, buf) || !dig || strcmp(dig, dbuf) ||
        memcmp(fl_doc_chain(replica), fl_doc_chain(doc), FL_HASH_LEN)) {
        fprintf(stderr, "[%s] chain %s digest %s, got %s %s\n", name, chain, dig, buf, dbuf);
        err = "chain or digest differs";
    }
out:
    if (err)
        fprintf(stderr, "[%s] %s\n", name, err);
    free(rtext);
    fl_rules_free(rules);
    fl_doc_free(doc);
    fl_doc_free(replica);
    fl_arena_free(arena);
    return err == NULL;
}

static void test_vectors(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", fl_test_source_path("schemas/vectors/rules"));
    DIR *d = opendir(dir);
    ASSERT_TRUE(d != NULL);
    struct dirent *de;
    int bad = 0, files = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        json_error_t jerr;
        json_t *root = json_load_file(path, 0, &jerr);
        if (!root) {
            fprintf(stderr, "%s: %s\n", path, jerr.text);
            bad++;
            continue;
        }
        files++;
        json_t *cases = json_object_get(root, "cases");
        for (size_t i = 0; i < json_array_size(cases); i++) {
            ncases++;
            bad += !check_case(json_array_get(cases, i));
        }
        json_decref(root);
    }
    closedir(d);
    ASSERT_EQ(bad, 0);
    ASSERT_GE(files, 5);
    ASSERT_GE(ncases, 80);
    ASSERT_TRUE(seen_rule_violation);
}

int main(void)
{
    RUN(test_vectors);
    return fl_test_done();
}
