/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rules validator (fl_rules_parse): every kind of bad rules document
 * gets FL_RERR_INVALID (or FL_RERR_TOO_LARGE) and one message naming the
 * JSON path of the problem; the catalogue's longest-prefix lookup;
 * fl_rules_check_doc; and a rule set that is evaluated without leaking or
 * touching the document on a refused command.
 */
#include <jansson.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/engine.h"
#include "flushline/rules.h"
#include "flushline/wire.h"

static int parse(const char *json, char *err, size_t errsz)
{
    fl_rules_t *rs = NULL;
    int rc = fl_rules_parse(json, strlen(json), &rs, err, errsz);
    if ((rc == 0) != (rs != NULL))
        fl_test_fail(__FILE__, __LINE__, "a rule set exactly when parse succeeds (rc %d)", rc);
    fl_rules_free(rs);
    return rc;
}

static void bad(const char *json, const char *want)
{
    char err[512];
    int rc = parse(json, err, sizeof err);
    ASSERT_EQ(rc, FL_RERR_INVALID);
    ASSERT_STR_EQ(err, want);
}

#define RULE(r) "{\"rules\":[" r "]}"
#define ALLOW(body) RULE("{\"name\":\"r\",\"allow\":" body "}")
#define SCHEMA(s) RULE("{\"name\":\"r\",\"constraint\":{\"path\":\"/x\",\"schema\":" s "}}")

static void test_good(void)
{
    char err[256];
    ASSERT_EQ(parse("{\"rules\":[]}", err, sizeof err), 0);
    ASSERT_EQ(parse(ALLOW("{\"ops\":[\"add\",\"create\"],\"paths\":[\"\",\"/a/*/**\"],"
                          "\"roles\":[\"admin\"],\"where\":[{\"target\":\"/by\",\"eq\":\"$user\"},"
                          "{\"value\":\"\",\"ne\":{\"a\":[1]}}]}"),
                    err, sizeof err),
              0);
    ASSERT_EQ(parse(SCHEMA("{\"type\":[\"object\",\"null\"],\"properties\":{\"a\":{\"type\":"
                           "\"string\",\"maxLength\":3}},\"required\":[\"a\"],"
                           "\"additionalProperties\":{\"enum\":[1,2]},\"maxProperties\":4,"
                           "\"title\":\"t\"}"),
                    err, sizeof err),
              0);
    ASSERT_EQ(parse(RULE("{\"name\":\"s\",\"stamp\":{\"path\":\"/c/*\",\"on\":[\"create\"],"
                         "\"set\":{\"by\":\"$user\",\"at\":\"$ts\",\"v\":\"$version\","
                         "\"k\":\"$key\"}}}"),
                    err, sizeof err),
              0);
}

static void test_bad_kinds(void)
{
    /* not JSON, wrong top level */
    char err[512];
    ASSERT_EQ(parse("{\"rules\":[", err, sizeof err), FL_RERR_INVALID);
    ASSERT_TRUE(strncmp(err, "$: not JSON (line 1", 19) == 0);
    bad("[]", "$: must be an object, not an array");
    bad("{}", "$: missing \"rules\"");
    bad("{\"rules\":[],\"extra\":1}", "extra: unknown top-level key");
    bad("{\"rules\":{}}", "rules: must be an array, not an object");
    bad("{\"rules\":[],\"default_role\":7}", "default_role: must be a string, not an integer");
    /* rules */
    bad(RULE("3"), "rules[0]: must be an object, not an integer");
    bad(RULE("{\"allow\":{}}"), "rules[0]: missing \"name\"");
    bad(RULE("{\"name\":\"\",\"allow\":{}}"), "rules[0].name: must be 1-64 bytes");
    bad(RULE("{\"name\":\"allow\",\"allow\":{}}"),
        "rules[0].name: \"allow\" is reserved (it names a command no allow rule permits)");
    bad(RULE("{\"name\":\"a\"}"),
        "rules[0]: needs exactly one of \"allow\", \"constraint\" and \"stamp\"");
    bad(RULE("{\"name\":\"a\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"/a\"]},\"stamp\":{}}"),
        "rules[0]: needs exactly one of \"allow\", \"constraint\" and \"stamp\"");
    bad(RULE("{\"name\":\"a\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"/a\"]}},"
             "{\"name\":\"a\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"/a\"]}}"),
        "rules[1].name: duplicate rule name \"a\"");
    bad(RULE("{\"name\":\"a\",\"when\":1}"), "rules[0].when: unknown rule key");
    /* unknown op, wrong types */
    bad(ALLOW("{\"ops\":[\"add\",\"frob\"],\"paths\":[\"/a\"]}"),
        "rules[0].allow.ops[1]: unknown op \"frob\"");
    bad(ALLOW("{\"ops\":\"add\",\"paths\":[\"/a\"]}"),
        "rules[0].allow.ops: must be an array, not a string");
    bad(ALLOW("{\"ops\":[],\"paths\":[\"/a\"]}"), "rules[0].allow.ops: must not be empty");
    bad(ALLOW("{\"ops\":[\"add\"]}"), "rules[0].allow: missing \"paths\"");
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"/a\"],\"roles\":[1]}"),
        "rules[0].allow.roles[0]: must be a string, not an integer");
    /* bad pointer patterns */
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"a/b\"]}"),
        "rules[0].allow.paths[0]: bad pointer pattern: must be \"\" or start with \"/\", "
        "escapes ~0 ~1 only");
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"/a~2\"]}"),
        "rules[0].allow.paths[0]: bad pointer pattern: must be \"\" or start with \"/\", "
        "escapes ~0 ~1 only");
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"/a/**/b\"]}"),
        "rules[0].allow.paths[0]: bad pointer pattern: \"**\" only as the last segment");
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"/a*\"]}"),
        "rules[0].allow.paths[0]: bad pointer pattern: \"*\" must be a whole segment");
    bad(RULE("{\"name\":\"c\",\"constraint\":{\"path\":\"/a/**\",\"schema\":{}}}"),
        "rules[0].constraint.path: bad pointer pattern: \"**\" is not allowed here");
    /* conditions */
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"/a\"],\"where\":[{\"target\":\"/by\"}]}"),
        "rules[0].allow.where[0]: needs exactly one of \"eq\" and \"ne\"");
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"/a\"],\"where\":[{\"target\":\"/by\","
              "\"value\":\"\",\"eq\":1}]}"),
        "rules[0].allow.where[0]: needs exactly one of \"target\" and \"value\"");
    bad(ALLOW("{\"ops\":[\"add\"],\"paths\":[\"/a\"],\"where\":[{\"target\":\"/by\","
              "\"eq\":\"$who\"}]}"),
        "rules[0].allow.where[0].eq: unknown variable \"$who\" (conditions know $user and "
        "$role)");
    /* schema keywords outside the subset, wrong schema types */
    bad(SCHEMA("{\"pattern\":\"^a\"}"),
        "rules[0].constraint.schema.pattern: schema keyword outside the supported subset "
        "(RULES.md)");
    bad(SCHEMA("{\"properties\":{\"a\":{\"$ref\":\"#\"}}}"),
        "rules[0].constraint.schema.properties.a.$ref: schema keyword outside the supported "
        "subset (RULES.md)");
    bad(SCHEMA("{\"type\":\"int\"}"), "rules[0].constraint.schema.type: unknown type \"int\"");
    bad(SCHEMA("{\"maxLength\":-1}"),
        "rules[0].constraint.schema.maxLength: must be a non-negative integer, not -1");
    bad(SCHEMA("{\"maxLength\":\"3\"}"),
        "rules[0].constraint.schema.maxLength: must be a non-negative integer, not a string");
    bad(SCHEMA("{\"minimum\":\"0\"}"),
        "rules[0].constraint.schema.minimum: must be a number, not a string");
    bad(SCHEMA("{\"required\":[1]}"),
        "rules[0].constraint.schema.required[0]: must be a string, not an integer");
    bad(SCHEMA("[]"), "rules[0].constraint.schema: a schema must be an object, not an array");
    /* stamps */
    bad(RULE("{\"name\":\"s\",\"stamp\":{\"path\":\"/c/*\",\"set\":{\"by\":\"$now\"}}}"),
        "rules[0].stamp.set.by: must be one of \"$user\", \"$ts\", \"$version\", \"$key\"");
    bad(RULE("{\"name\":\"s\",\"stamp\":{\"path\":\"/c/*\",\"on\":[\"incr\"],"
             "\"set\":{\"by\":\"$user\"}}}"),
        "rules[0].stamp.on[0]: op \"incr\" is not allowed here");
    bad(RULE("{\"name\":\"s\",\"stamp\":{\"path\":\"/c/*\",\"set\":{}}}"),
        "rules[0].stamp.set: must have 1-64 fields");
}

static void test_limits(void)
{
    char err[256];
    /* a 10 MB file is refused before it is parsed */
    size_t n = 10u << 20;
    char *big = malloc(n);
    ASSERT_TRUE(big != NULL);
    memset(big, ' ', n);
    memcpy(big, "{\"rules\":[]}", 12);
    fl_rules_t *rs = NULL;
    ASSERT_EQ(fl_rules_parse(big, n, &rs, err, sizeof err), FL_RERR_TOO_LARGE);
    ASSERT_STR_EQ(err, "$: 10485760 bytes, above the limit of 262144");
    free(big);
    /* nesting: schemas deeper than the limit */
    char deep[4096] = "{\"rules\":[{\"name\":\"d\",\"constraint\":{\"path\":\"\",\"schema\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "{\"items\":");
    strcat(deep, "{}");
    for (int i = 0; i < 20; i++)
        strcat(deep, "}");
    strcat(deep, "}}]}");
    ASSERT_EQ(parse(deep, err, sizeof err), FL_RERR_INVALID);
    ASSERT_TRUE(strstr(err, "schema nested deeper than 16") != NULL);
    /* too many segments */
    char segs[512] = "{\"rules\":[{\"name\":\"p\",\"allow\":{\"ops\":[\"add\"],\"paths\":[\"";
    for (int i = 0; i < 33; i++)
        strcat(segs, "/a");
    strcat(segs, "\"]}}]}");
    ASSERT_EQ(parse(segs, err, sizeof err), FL_RERR_INVALID);
    ASSERT_STR_EQ(err, "rules[0].allow.paths[0]: bad pointer pattern: more than 32 segments");
    /* the error string is cut to its buffer, never overrun */
    char tiny[8];
    ASSERT_EQ(parse("[]", tiny, sizeof tiny), FL_RERR_INVALID);
    ASSERT_EQ(strlen(tiny), 7);
}

static fl_rules_t *compile(const char *json)
{
    fl_rules_t *rs = NULL;
    char err[256];
    if (fl_rules_parse(json, strlen(json), &rs, err, sizeof err) != 0)
        fl_test_fail(__FILE__, __LINE__, "%s", err);
    return rs;
}

static void test_catalog(void)
{
    fl_rules_catalog_t *cat = fl_rules_catalog_new();
    fl_rules_t *all = compile("{\"rules\":[]}"), *t = compile("{\"rules\":[]}");
    fl_rules_t *tb = compile("{\"rules\":[]}");
    ASSERT_EQ(fl_rules_catalog_put(cat, FL_SLICE(""), all), 0);
    ASSERT_EQ(fl_rules_catalog_put(cat, FL_SLICE("t/"), t), 0);
    ASSERT_EQ(fl_rules_catalog_put(cat, FL_SLICE("t/board"), tb), 0);
    ASSERT_TRUE(fl_rules_catalog_find(cat, FL_SLICE("t/board/1")) == tb);
    ASSERT_TRUE(fl_rules_catalog_find(cat, FL_SLICE("t/boar")) == t);
    ASSERT_TRUE(fl_rules_catalog_find(cat, FL_SLICE("u/x")) == all);
    ASSERT_EQ(fl_rules_catalog_put(cat, FL_SLICE("t/board"), NULL), 0); /* removal */
    ASSERT_TRUE(fl_rules_catalog_find(cat, FL_SLICE("t/board/1")) == t);
    ASSERT_EQ(fl_rules_catalog_count(cat), 2);
    fl_rules_t *t2 = compile("{\"rules\":[]}");
    ASSERT_EQ(fl_rules_catalog_put(cat, FL_SLICE("t/"), t2), 0); /* replaces (frees t) */
    ASSERT_TRUE(fl_rules_catalog_find(cat, FL_SLICE("t/x")) == t2);
    fl_rules_catalog_free(cat);
}

static int nviol;
static char viol[4][64];
static void on_violation(void *opaque, fl_slice_t rule, fl_slice_t where)
{
    (void)opaque;
    if (nviol < 4)
        snprintf(viol[nviol], sizeof viol[0], "%.*s@%.*s", (int)rule.len, rule.ptr,
                 (int)where.len, where.ptr);
    nviol++;
}

static void test_check_doc(void)
{
    fl_rules_t *rs = compile("{\"rules\":[{\"name\":\"short\",\"constraint\":{\"path\":\"/t/*\","
                             "\"schema\":{\"maxLength\":2}}},{\"name\":\"few\",\"constraint\":"
                             "{\"path\":\"/t\",\"schema\":{\"maxProperties\":1}}}]}");
    fl_arena_t *arena = fl_arena_new(1024);
    json_error_t jerr;
    json_t *j = json_loads("{\"t\":{\"a\":\"ok\",\"b/c\":\"long\",\"d\":\"xyz\"}}", 0, &jerr);
    fl_value_t v;
    ASSERT_EQ(fl_value_from_json(j, NULL, arena, &v), 0);
    ASSERT_EQ(fl_rules_check_doc(rs, &v, 10, on_violation, NULL), 3);
    ASSERT_STR_EQ(viol[0], "short@/t/b~1c");
    ASSERT_STR_EQ(viol[1], "short@/t/d");
    ASSERT_STR_EQ(viol[2], "few@/t");
    nviol = 0;
    ASSERT_EQ(fl_rules_check_doc(rs, &v, 1, on_violation, NULL), 1); /* capped */
    json_decref(j);
    fl_arena_free(arena);
    fl_rules_free(rs);
}

/* A refused command leaves the document as it was; the result names the
 * rule; the outcome's rule name outlives the rule set. */
static void test_engine_hook(void)
{
    fl_rules_t *rs = compile("{\"rules\":[{\"name\":\"votes +1\",\"allow\":{\"ops\":[\"incr\"],"
                             "\"paths\":[\"/v\"],\"where\":[{\"value\":\"\",\"eq\":1}]}}]}");
    fl_doc_t *doc = fl_doc_new(FL_SLICE("t/d"), NULL);
    fl_arena_t *arena = fl_arena_new(1024);
    fl_cmd_t cmds[2] = {{.op = FL_OP_INCR, .has_value = true, .path = FL_SLICE("/v")},
                        {.op = FL_OP_INCR, .has_value = true, .path = FL_SLICE("/v")}};
    cmds[0].value = fl_value_int(2);
    cmds[1].value = fl_value_int(1);
    fl_flush_t fl = {.doc = FL_SLICE("t/d"), .seq = 1, .ncmds = 2, .cmds = cmds,
                     .user = FL_SLICE("ann")};
    fl.client_id[0] = 1;
    fl_outcome_t out;
    ASSERT_EQ(fl_doc_apply_rules(doc, &fl, rs, NULL, arena, &out), 0);
    fl_rules_free(rs);
    ASSERT_EQ(out.results[0].code, FL_CODE_RULE_VIOLATION);
    ASSERT_MEM_EQ(out.results[0].rule.ptr, out.results[0].rule.len, "votes +1", 8);
    ASSERT_EQ(out.results[1].code, FL_CODE_OK);
    ASSERT_EQ(out.results[1].rule.len, 0);
    ASSERT_EQ(fl_doc_version(doc), 1);
    /* the repeat answers from the dedup table with the rule name */
    fl_outcome_t again;
    ASSERT_EQ(fl_doc_apply(doc, &fl, arena, &again), 0);
    ASSERT_TRUE(again.duplicate);
    ASSERT_EQ(again.results[0].code, FL_CODE_RULE_VIOLATION);
    ASSERT_MEM_EQ(again.results[0].rule.ptr, again.results[0].rule.len, "votes +1", 8);
    fl_doc_free(doc);
    fl_arena_free(arena);
}

static int decode_rules(const char *buf, size_t len, fl_arena_t *arena, fl_wire_msg_t *msg)
{
    char err[256];
    return fl_wire_decode_record(buf, len, arena, msg, err, sizeof err);
}

/* The rules record: both forms round-trip; limits and types are checked;
 * mutated bytes never crash the decoder and decode only to a rules record
 * within its limits. */
static void test_record(void)
{
    fl_arena_t *arena = fl_arena_new(4096);
    fl_wire_msg_t msg = {.type = FL_WT_REC_RULES}, back;
    msg.u.rules.prefix = FL_SLICE("acme/");
    msg.u.rules.has_rules = true;
    msg.u.rules.rules = FL_SLICE("{\"rules\":[]}");
    msg.u.rules.id = FL_SLICE("ops@host");
    char *buf = NULL, err[256];
    size_t len = 0;
    for (int form = 0; form < 2; form++) {
        fl_wire_form_t f = form ? FL_WIRE_JSON : FL_WIRE_MSGPACK;
        ASSERT_EQ(fl_wire_encode(&msg, f, &buf, &len, err, sizeof err), 0);
        fl_arena_reset(arena);
        ASSERT_EQ(fl_wire_decode(FL_WIRE_RECORD, f, buf, len, &fl_wire_limits_record, arena, &back,
                                 err, sizeof err),
                  0);
        ASSERT_EQ(back.type, FL_WT_REC_RULES);
        ASSERT_MEM_EQ(back.u.rules.prefix.ptr, back.u.rules.prefix.len, "acme/", 5);
        ASSERT_TRUE(back.u.rules.has_rules);
        ASSERT_MEM_EQ(back.u.rules.rules.ptr, back.u.rules.rules.len, "{\"rules\":[]}", 12);
        ASSERT_MEM_EQ(back.u.rules.id.ptr, back.u.rules.id.len, "ops@host", 8);
        free(buf);
    }
    /* removal: no "rules" */
    msg.u.rules.has_rules = false;
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, err, sizeof err), 0);
    ASSERT_EQ(decode_rules(buf, len, arena, &back), 0);
    ASSERT_TRUE(!back.u.rules.has_rules);
    free(buf);
    /* limits and types */
    static const char *const badj[] = {
        "{\"v\":1,\"t\":\"rules\"}",                               /* no prefix */
        "{\"v\":1,\"t\":\"rules\",\"prefix\":3}",                 /* wrong type */
        "{\"v\":1,\"t\":\"rules\",\"prefix\":\"\",\"rules\":{}}",  /* rules not text */
        "{\"v\":1,\"t\":\"rules\",\"prefix\":\"\",\"id\":1}",
    };
    for (size_t i = 0; i < sizeof badj / sizeof badj[0]; i++)
        ASSERT_EQ(fl_wire_decode(FL_WIRE_RECORD, FL_WIRE_JSON, badj[i], strlen(badj[i]),
                                 &fl_wire_limits_record, arena, &back, err, sizeof err),
                  -FL_CODE_BAD_FRAME);
    char *big = malloc(FL_WIRE_RULES_MAX + 64);
    ASSERT_TRUE(big != NULL);
    memset(big, 'x', FL_WIRE_RULES_MAX + 64);
    msg.u.rules.has_rules = true;
    msg.u.rules.rules = (fl_slice_t){big, FL_WIRE_RULES_MAX + 1};
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, err, sizeof err), 0);
    ASSERT_EQ(decode_rules(buf, len, arena, &back), -FL_CODE_BAD_FRAME);
    free(buf);
    msg.u.rules.rules = (fl_slice_t){big, FL_WIRE_RULES_MAX};
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, err, sizeof err), 0);
    ASSERT_EQ(decode_rules(buf, len, arena, &back), 0);
    free(buf);
    msg.u.rules.rules = FL_SLICE("{}");
    msg.u.rules.prefix = (fl_slice_t){big, 256};
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, err, sizeof err), 0);
    ASSERT_EQ(decode_rules(buf, len, arena, &back), -FL_CODE_BAD_FRAME);
    free(buf);
    free(big);
    /* mutations: flip, truncate, extend */
    msg.u.rules.prefix = FL_SLICE("t/");
    msg.u.rules.rules = FL_SLICE("{\"rules\":[{\"name\":\"a\",\"stamp\":{}}]}");
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &buf, &len, err, sizeof err), 0);
    uint32_t seed = 12345, decoded = 0;
    char *m = malloc(len + 8);
    ASSERT_TRUE(m != NULL);
    for (int it = 0; it < 20000; it++) {
        size_t mlen = len;
        memcpy(m, buf, len);
        int nflip = 1 + it % 4;
        for (int k = 0; k < nflip; k++) {
            seed = seed * 1103515245u + 12345u;
            m[(seed >> 8) % len] ^= (char)(1u << ((seed >> 3) % 8));
        }
        if (it % 5 == 0)
            mlen = (seed >> 4) % (len + 1);
        fl_arena_reset(arena);
        if (decode_rules(m, mlen, arena, &back) == 0 && back.type == FL_WT_REC_RULES) {
            decoded++;
            ASSERT_LE(back.u.rules.prefix.len, 255);
            ASSERT_LE(back.u.rules.rules.len, FL_WIRE_RULES_MAX);
            /* whatever decoded, the rules parser refuses or accepts it cleanly */
            fl_rules_t *rs = NULL;
            if (back.u.rules.has_rules &&
                fl_rules_parse(back.u.rules.rules.ptr, back.u.rules.rules.len, &rs, err,
                               sizeof err) == 0)
                fl_rules_free(rs);
        }
    }
    ASSERT_GT(decoded, 0);
    free(m);
    free(buf);
    fl_arena_free(arena);
}

int main(void)
{
    RUN(test_record);
    RUN(test_good);
    RUN(test_bad_kinds);
    RUN(test_limits);
    RUN(test_catalog);
    RUN(test_check_doc);
    RUN(test_engine_hook);
    return fl_test_done();
}
