/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task and the restore feed with rule sets (schemas/RULES.md, section
 * 3), no broker: a rules record puts its set in force for its prefix (and
 * is emitted to events), later flushes are applied under it (a refused
 * command gets rule_violation and the rule's name in the emitted outcome;
 * the record's role selects role rules; other prefixes are untouched; the
 * longest prefix wins); an invalid or undecodable rules record is skipped
 * and the set in force stays; a removal ends it. A checkpoint carries the
 * sets in force, and a partition restored from it, or from the emitted
 * rules record in events, decides as the original did.
 */
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/part.h"
#include "flushline/task.h"

static const char *plus_one =
    "{\"rules\":[{\"name\":\"plus one\",\"allow\":{\"ops\":[\"incr\"],\"paths\":[\"/n\"],"
    "\"where\":[{\"value\":\"\",\"eq\":1}]}},"
    "{\"name\":\"admin\",\"allow\":{\"ops\":[\"incr\"],\"paths\":[\"/**\"],"
    "\"roles\":[\"admin\"]}}]}";
static const char *anything = "{\"rules\":[]}";

static char *flush_rec(const char *doc, uint64_t seq, int64_t by, const char *role, size_t *len)
{
    fl_cmd_t c;
    fl_wire_rec_flush_t r;
    char *buf = NULL, errstr[128];
    memset(&c, 0, sizeof c);
    c.op = FL_OP_INCR;
    c.path = (fl_slice_t){"/n", 2};
    c.value = fl_value_int(by);
    c.has_value = true;
    memset(&r, 0, sizeof r);
    r.flush.doc = (fl_slice_t){doc, strlen(doc)};
    memset(r.flush.client_id, 7, FL_CLIENT_ID_LEN);
    r.flush.seq = seq;
    r.flush.cmds = &c;
    r.flush.ncmds = 1;
    r.flush.user = (fl_slice_t){"ann", 3};
    r.gw = (fl_slice_t){"gw", 2};
    r.origin = 1;
    r.role = role ? (fl_slice_t){role, strlen(role)} : (fl_slice_t){"", 0};
    return fl_wire_encode_rec_flush(&r, &buf, len, errstr, sizeof errstr) ? NULL : buf;
}

/* A rules record for prefix: text NULL removes. */
static char *rules_rec(const char *prefix, const char *text, size_t *len)
{
    fl_wire_msg_t m;
    char *buf = NULL, errstr[128];
    memset(&m, 0, sizeof m);
    m.type = FL_WT_REC_RULES;
    m.u.rules.prefix = (fl_slice_t){prefix, strlen(prefix)};
    m.u.rules.has_rules = text != NULL;
    m.u.rules.rules = text ? (fl_slice_t){text, strlen(text)} : (fl_slice_t){"", 0};
    m.u.rules.id = (fl_slice_t){"test", 4};
    return fl_wire_encode(&m, FL_WIRE_MSGPACK, &buf, len, errstr, sizeof errstr) ? NULL : buf;
}

static fl_part_t *new_part(void)
{
    fl_part_config_t cfg;
    fl_part_config_default(&cfg);
    return fl_part_new(0, &cfg);
}

/* Runs a rules record through the task into *out. 0 or -1. */
static int put_rec(fl_part_t *part, const char *prefix, const char *text, fl_arena_t *arena,
                   fl_task_out_t *out)
{
    size_t len;
    char *rec = rules_rec(prefix, text, &len);
    fl_task_rec_t r = {FL_WIRE_RULES_KEY, rec, len, 1000};
    int rc = rec ? fl_task_apply(part, &r, 0, arena, out) : -1;
    free(rec);
    return rc;
}
#define put(part, prefix, text, arena, out) ASSERT_EQ(put_rec(part, prefix, text, arena, out), 0)

/* Applies a flush of incr /n by `by`; returns the first result's code (or
 * -1 when the task did not answer with one outcome of one result) and
 * copies its rule name into rule. */
static int flush(fl_part_t *part, const char *doc, uint64_t seq, int64_t by, const char *role,
                 fl_arena_t *arena, char *rule)
{
    fl_task_out_t out;
    fl_wire_msg_t m;
    size_t len;
    char *rec = flush_rec(doc, seq, by, role, &len), errstr[128];
    fl_task_rec_t r = {{doc, strlen(doc)}, rec, len, 2000};
    fl_arena_t *dec = fl_arena_new(4096);
    int code = -1;
    rule[0] = '\0';
    if (rec && fl_task_apply(part, &r, 0, arena, &out) == 0) {
        if (out.kind == FL_TASK_FLUSH && out.nemit == 1 &&
            fl_wire_decode_record(out.emit[0].rec, out.emit[0].len, dec, &m, errstr,
                                  sizeof errstr) == 0 &&
            m.u.outcome.outcome.nresults == 1) {
            const fl_cmd_result_t *res = &m.u.outcome.outcome.results[0];
            snprintf(rule, 65, "%.*s", (int)res->rule.len, res->rule.len ? res->rule.ptr : "");
            code = res->code;
        }
        fl_task_out_release(&out);
    }
    free(rec);
    fl_arena_free(dec);
    return code;
}

static void test_task_applies_rules(void)
{
    fl_part_t *part = new_part();
    fl_arena_t *arena = fl_arena_new(4096);
    fl_task_out_t out;
    char rule[65];
    uint64_t seq = 1;

    ASSERT_EQ(flush(part, "t/a", seq++, 2, NULL, arena, rule), FL_CODE_OK); /* no rules yet */
    put(part, "t/", plus_one, arena, &out);
    ASSERT_EQ(out.kind, FL_TASK_RULES);
    ASSERT_TRUE(!(out.rules_bad));
    ASSERT_EQ(out.nemit, 1); /* copied to events */
    ASSERT_MEM_EQ(out.emit[0].key.ptr, out.emit[0].key.len, "\xffrules", 6);
    fl_task_out_release(&out);
    ASSERT_EQ(fl_part_rules_count(part), 1);

    ASSERT_EQ(flush(part, "t/a", seq++, 1, NULL, arena, rule), FL_CODE_OK);
    ASSERT_EQ(flush(part, "t/a", seq++, 2, NULL, arena, rule), FL_CODE_RULE_VIOLATION);
    ASSERT_STR_EQ(rule, "plus one");
    ASSERT_EQ(flush(part, "t/a", seq++, 2, "admin", arena, rule), FL_CODE_OK); /* role */
    ASSERT_EQ(flush(part, "u/a", 1, 2, NULL, arena, rule), FL_CODE_OK); /* other prefix */
    put(part, "t/free", anything, arena, &out); /* longest prefix wins */
    fl_task_out_release(&out);
    ASSERT_EQ(flush(part, "t/free1", 1, 5, NULL, arena, rule), FL_CODE_OK);
    ASSERT_EQ(flush(part, "t/b", 1, 5, NULL, arena, rule), FL_CODE_RULE_VIOLATION);

    /* Bad rules records: skipped, the set in force stays. */
    put(part, "t/", "{\"rules\":[{\"name\":\"x\",\"allow\":{\"ops\":[\"fly\"],"
                          "\"paths\":[\"/n\"]}}]}", arena, &out);
    ASSERT_EQ(out.kind, FL_TASK_RULES);
    ASSERT_TRUE(out.rules_bad);
    ASSERT_EQ(out.nemit, 0);
    ASSERT_TRUE(strstr(out.reason, "rules[0].allow.ops[0]") != NULL);
    fl_task_rec_t junk = {FL_WIRE_RULES_KEY, "\x81\xa1t\xa5rules", 8, 1};
    ASSERT_EQ(fl_task_apply(part, &junk, 0, arena, &out), 0);
    ASSERT_EQ(out.kind, FL_TASK_RULES);
    ASSERT_TRUE(out.rules_bad);
    ASSERT_EQ(flush(part, "t/a", seq++, 2, NULL, arena, rule), FL_CODE_RULE_VIOLATION);

    /* A removal ends the set. */
    put(part, "t/", NULL, arena, &out);
    ASSERT_TRUE(!(out.rules_bad));
    fl_task_out_release(&out);
    ASSERT_EQ(flush(part, "t/a", seq++, 2, NULL, arena, rule), FL_CODE_OK);
    ASSERT_EQ(fl_part_rules_count(part), 1);
    fl_part_free(part);
    fl_arena_free(arena);
}

static void test_checkpoint_and_events_restore_rules(void)
{
    fl_part_t *part = new_part(), *from_cp = new_part(), *from_ev = new_part();
    fl_arena_t *arena = fl_arena_new(4096);
    fl_task_out_t out;
    char *buf = NULL, errstr[256], rule[65];
    size_t len;
    int64_t cp = -1;

    put(part, "t/", plus_one, arena, &out);
    /* The emitted copy, fed to the restore feed as an events record. */
    ASSERT_EQ(fl_part_replay_event_rec(from_ev, out.emit[0].rec, out.emit[0].len, 5, arena, NULL,
                                       errstr, sizeof errstr),
              FL_PART_SKIPPED);
    fl_task_out_release(&out);
    ASSERT_EQ(fl_part_checkpoint_record(part, 42, arena, &buf, &len, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_part_load_snapshot_rec(from_cp, buf, len, NULL, arena, &cp, errstr,
                                        sizeof errstr),
              FL_PART_SKIPPED);
    free(buf);
    ASSERT_EQ(cp, 42);
    ASSERT_EQ(fl_part_rules_count(from_cp), 1);
    ASSERT_EQ(fl_part_rules_count(from_ev), 1);
    ASSERT_EQ(flush(from_cp, "t/a", 1, 2, NULL, arena, rule), FL_CODE_RULE_VIOLATION);
    ASSERT_STR_EQ(rule, "plus one");
    ASSERT_EQ(flush(from_ev, "t/a", 1, 2, NULL, arena, rule), FL_CODE_RULE_VIOLATION);

    /* A newer checkpoint without rule sets replaces them; an older one is
     * passed over. */
    put(part, "t/", NULL, arena, &out);
    fl_task_out_release(&out);
    ASSERT_EQ(fl_part_checkpoint_record(part, 50, arena, &buf, &len, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_part_load_snapshot_rec(from_cp, buf, len, NULL, arena, &cp, errstr,
                                        sizeof errstr),
              FL_PART_SKIPPED);
    free(buf);
    ASSERT_EQ(fl_part_rules_count(from_cp), 0);
    ASSERT_EQ(flush(from_cp, "t/a", 2, 2, NULL, arena, rule), FL_CODE_OK);
    fl_part_free(part);
    fl_part_free(from_cp);
    fl_part_free(from_ev);
    fl_arena_free(arena);
}

int main(void)
{
    RUN(test_task_applies_rules);
    RUN(test_checkpoint_and_events_restore_rules);
    return fl_test_done();
}
