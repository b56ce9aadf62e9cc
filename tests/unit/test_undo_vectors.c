/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs the undo and redo vectors (schemas/vectors/undo/undo.json) on the C engine. Each
 * case is a sequence of flushes by two clients; the undo and redo steps carry the guarded
 * inverse flushes the JS client computes (client/js/src/undo.js; client/js/test/undo.test.js
 * checks it computes exactly these). Here every step that the client sends is applied with
 * fl_doc_apply and its flush code, duplicate flag, per-command result codes (when listed),
 * document version and state are compared with the vector, so the processor refuses an undo
 * exactly where the vector says (`aborted` with `test_failed`) and applies it everywhere
 * else. Steps with "send": false are refused by the client and never reach the processor.
 */
#include <jansson.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/engine.h"

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

/* A step's flush: the client's id from the file's "clients" table. */
static int flush_from_step(const json_t *step, const json_t *clients, fl_slice_t doc,
                           fl_arena_t *arena, fl_flush_t *fl)
{
    memset(fl, 0, sizeof(*fl));
    fl->doc = doc;
    const char *who = json_string_value(json_object_get(step, "client"));
    if (!who || unhex16(json_string_value(json_object_get(clients, who)), fl->client_id) < 0)
        return -1;
    fl->seq = (uint64_t)json_integer_value(json_object_get(step, "seq"));
    fl->atomic = json_is_true(json_object_get(step, "atomic"));
    json_t *cmds = json_object_get(step, "commands");
    fl->ncmds = (uint32_t)json_array_size(cmds);
    fl->cmds = fl_arena_alloc(arena, (fl->ncmds + 1) * sizeof(fl_cmd_t));
    if (!fl->cmds)
        return -1;
    for (uint32_t i = 0; i < fl->ncmds; i++) {
        json_t *c = json_array_get(cmds, i);
        fl_cmd_t *cmd = &fl->cmds[i];
        memset(cmd, 0, sizeof(*cmd));
        fl_slice_t op = jslice(json_object_get(c, "op"));
        int opcode = fl_op_from_name(op.ptr, op.len);
        if (opcode < 0)
            return -1;
        cmd->op = (uint8_t)opcode;
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

/* Runs one case; returns the number of mismatches (each printed). */
static int check_case(const json_t *c, const json_t *clients, int *nsent, int *nrefused)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    fl_slice_t id = jslice(json_object_get(c, "doc"));
    fl_arena_t *arena = fl_arena_new(1 << 14);
    fl_doc_t *doc = fl_doc_new(id, &fl_engine_config_default);
    uint8_t zero[FL_HASH_LEN] = {0};
    fl_value_t state;
    int bad = 0;
    if (!arena || !doc || fl_value_from_json(json_object_get(c, "state"), NULL, arena, &state) < 0 ||
        fl_doc_restore(doc, &state, (uint64_t)json_integer_value(json_object_get(c, "version")),
                       zero) < 0) {
        fprintf(stderr, "[%s] setup failed\n", name);
        bad++;
        goto out;
    }
    json_t *steps = json_object_get(c, "steps");
    for (size_t i = 0; i < json_array_size(steps); i++) {
        json_t *s = json_array_get(steps, i);
        if (json_is_false(json_object_get(s, "send")))
            continue; /* refused by the client: never sent */
        json_t *exp = json_object_get(s, "expect");
        fl_flush_t fl;
        fl_outcome_t o;
        if (flush_from_step(s, clients, id, arena, &fl) < 0 ||
            fl_doc_apply(doc, &fl, arena, &o) != 0) {
            fprintf(stderr, "[%s] step %zu: flush not applied\n", name, i);
            bad++;
            break;
        }
        (*nsent)++;
        const char *code = json_string_value(json_object_get(exp, "code"));
        if (!code || fl_code_from_name(code, strlen(code)) != o.code) {
            fprintf(stderr, "[%s] step %zu: code %s, got %s\n", name, i, code ? code : "?",
                    fl_code_name(o.code));
            bad++;
        }
        if (o.code == FL_CODE_ABORTED)
            (*nrefused)++;
        if (json_is_true(json_object_get(exp, "duplicate")) != o.duplicate) {
            fprintf(stderr, "[%s] step %zu: duplicate %d\n", name, i, o.duplicate);
            bad++;
        }
        if ((uint64_t)json_integer_value(json_object_get(exp, "version")) != fl_doc_version(doc)) {
            fprintf(stderr, "[%s] step %zu: version %llu\n", name, i,
                    (unsigned long long)fl_doc_version(doc));
            bad++;
        }
        json_t *res = json_object_get(exp, "results");
        if (res) {
            if (json_array_size(res) != o.nresults) {
                fprintf(stderr, "[%s] step %zu: %u results\n", name, i, o.nresults);
                bad++;
            }
            for (uint32_t k = 0; k < o.nresults && k < json_array_size(res); k++) {
                const char *rc = json_string_value(json_object_get(json_array_get(res, k), "code"));
                if (!rc || fl_code_from_name(rc, strlen(rc)) != o.results[k].code) {
                    fprintf(stderr, "[%s] step %zu: result %u is %s\n", name, i, k,
                            fl_code_name(o.results[k].code));
                    bad++;
                }
            }
        }
        fl_value_t want;
        if (fl_value_from_json(json_object_get(exp, "state"), NULL, arena, &want) < 0 ||
            !fl_value_equal(&want, fl_doc_state(doc))) {
            json_t *got = fl_value_to_json(fl_doc_state(doc));
            char *text = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            fprintf(stderr, "[%s] step %zu: state %s\n", name, i, text ? text : "?");
            free(text);
            json_decref(got);
            bad++;
        }
    }
out:
    fl_doc_free(doc);
    fl_arena_free(arena);
    return bad;
}

static void test_undo_vectors(void)
{
    json_error_t jerr;
    json_t *root =
        json_load_file(fl_test_source_path("schemas/vectors/undo/undo.json"), 0, &jerr);
    if (!root)
        fprintf(stderr, "undo.json: %s\n", jerr.text);
    ASSERT_TRUE(root != NULL);
    json_t *clients = json_object_get(root, "clients");
    json_t *cases = json_object_get(root, "cases");
    int bad = 0, nsent = 0, nrefused = 0;
    for (size_t i = 0; i < json_array_size(cases); i++)
        bad += check_case(json_array_get(cases, i), clients, &nsent, &nrefused);
    size_t ncases = json_array_size(cases);
    json_decref(root);
    ASSERT_EQ(bad, 0);
    ASSERT_GE(ncases, 10);
    ASSERT_GE(nsent, 25);
    ASSERT_GE(nrefused, 2); /* the processor's side of "someone else changed it since" */
}

int main(void)
{
    RUN(test_undo_vectors);
    return fl_test_done();
}
