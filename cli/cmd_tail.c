/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline tail`: follows one document's outcomes live. Reads the
 * document's partition of <prefix>.events (read_committed) from its end, or
 * from a version (starting at the newest snapshot below it) or a time, and
 * prints each of its outcomes as one readable JSON line until Ctrl-C.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "history.h"

typedef struct tail_opts_s {
    fl_cli_common_t common;
    const char *doc, *from_time;
    int64_t from_version, count;
    bool all;
} tail_opts_t;

static const fl_config_entry_t entries[] = {
    FL_CLI_COMMON_ENTRIES(tail_opts_t),
    FL_CLI_DOC_ENTRY(tail_opts_t, FL_CONFIG_REQUIRED, "The document."),
    {.name = "from-version", .type = FL_CONFIG_INT, .offset = offsetof(tail_opts_t, from_version),
     .min = 0, .max = INT64_MAX, .group = 1, .metavar = "V",
     .doc = "Start after version V (default: new outcomes only)."},
    FL_CLI_TIME_ENTRY(tail_opts_t, "from-time", from_time, 1, 0,
                      "Start at the first event written at or after T."),
    {.name = "count", .type = FL_CONFIG_INT, .def = "0", .offset = offsetof(tail_opts_t, count),
     .min = 0, .max = INT64_MAX, .metavar = "N",
     .doc = "Exit after printing N outcomes (0: run until Ctrl-C)."},
    {.name = "all", .type = FL_CONFIG_BOOL, .def = "false", .offset = offsetof(tail_opts_t, all),
     .flags = FL_CONFIG_SWITCH, .doc = "Also outcomes that applied nothing."},
};

FL_CLI_TABLE(fl_cmd_tail_options, "tail", "--doc ID", entries, true,
             "Follows a document's outcomes in the events topic and prints one JSON line "
             "each: {doc, version, version_before, user, ts, time, client_id, seq, code, dup?, "
             "commands, results, chain, partition, offset}. Runs until Ctrl-C.");

typedef struct tail_s {
    fl_slice_t doc;
    bool by_version, all;
    uint64_t from_version;
    uint64_t count, printed;
    fl_arena_t *arena;
} tail_t;

static int on_event(void *opaque, const rd_kafka_message_t *msg)
{
    tail_t *t = opaque;
    fl_wire_msg_t wm;
    char errstr[256], *buf = NULL, when[40];
    size_t len;
    json_error_t jerr;
    json_t *rec, *obj;

    if (msg->key_len != t->doc.len || memcmp(msg->key, t->doc.ptr, t->doc.len) != 0)
        return 0;
    fl_arena_reset(t->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, t->arena, &wm, errstr, sizeof errstr)) {
        fprintf(stderr, "flushline tail: skipped undecodable record [%d] @%lld: %s\n",
                msg->partition, (long long)msg->offset, errstr);
        return 0;
    }
    if (wm.type != FL_WT_REC_OUTCOME)
        return 0;
    const fl_outcome_t *o = &wm.u.outcome.outcome;
    if (o->napplied == 0 && !t->all)
        return 0;
    if (t->by_version && (o->duplicate || o->version_after <= t->from_version))
        return 0;
    /* The record's own JSON form has every field in readable shape
     * (hex ids, commands as JSON); reorder the interesting ones first. */
    if (fl_wire_encode(&wm, FL_WIRE_JSON, &buf, &len, errstr, sizeof errstr) != 0 ||
        !(rec = json_loadb(buf, len, 0, &jerr))) {
        free(buf);
        fprintf(stderr, "flushline tail: record [%d] @%lld has no JSON form: %s\n",
                msg->partition, (long long)msg->offset, errstr);
        return 0;
    }
    free(buf);
    fl_hist_format_time(o->ts_ms, when, sizeof when);
    obj = json_object();
    json_object_set_new(obj, "doc", json_stringn(o->doc.ptr, o->doc.len));
    json_object_set_new(obj, "version", json_integer((json_int_t)o->version_after));
    json_object_set_new(obj, "version_before", json_integer((json_int_t)o->version_before));
    json_object_set_new(obj, "user", json_stringn(o->user.ptr, o->user.len));
    json_object_set_new(obj, "ts", json_integer(o->ts_ms));
    json_object_set_new(obj, "time", json_string(when));
    json_object_set_new(obj, "client_id", fl_hist_json_hex(o->client_id, FL_CLIENT_ID_LEN));
    json_object_set_new(obj, "seq", json_integer((json_int_t)o->seq));
    json_object_set_new(obj, "code", json_string(fl_code_name(o->code)));
    if (o->duplicate)
        json_object_set_new(obj, "dup", json_true());
    json_t *cmds = json_object_get(rec, "commands"), *res = json_object_get(rec, "results");
    json_object_set(obj, "commands", cmds ? cmds : json_array());
    json_object_set(obj, "results", res ? res : json_array());
    json_object_set_new(obj, "chain", fl_hist_json_hex(o->chain, FL_HASH_LEN));
    json_object_set_new(obj, "partition", json_integer(msg->partition));
    json_object_set_new(obj, "offset", json_integer(msg->offset));
    json_decref(rec);
    int rc = json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (rc != 0 || putchar('\n') == EOF || fflush(stdout) != 0)
        return FL_HIST_ENOMEM; /* stdout closed: stop */
    t->printed++;
    return t->count && t->printed >= t->count ? 1 : 0;
}

int fl_cmd_tail(int argc, char **argv)
{
    tail_t t = {0};
    fl_hist_t h = {0};
    fl_part_t *docs = NULL;
    tail_opts_t o = {0};
    fl_config_t *cfg;
    const char *time;
    int64_t ts = 0, start;
    int n, rc = fl_cli_options(&fl_cmd_tail_options, &o, &o.common, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    time = o.from_time;
    if (time)
        fl_hist_parse_time(time, &ts); /* checked by the table */
    t.doc = (fl_slice_t){o.doc, strlen(o.doc)};
    t.by_version = fl_config_is_set(cfg, "from-version");
    t.from_version = (uint64_t)o.from_version;
    t.count = (uint64_t)o.count;
    t.all = o.all;

    if ((rc = fl_hist_open_history(&h, "tail", &o.common, true, &n, NULL)) != FL_EXIT_OK)
        goto fail;
    if (!(t.arena = fl_arena_new(1 << 14))) {
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    int32_t p = fl_hist_doc_partition(t.doc, n);
    if (t.by_version) {
        /* From the newest snapshot at or below the version: everything it
         * reflects is older. */
        fl_part_select_t sel = {FL_HIST_END, t.from_version, t.doc};
        int64_t checkpoint;
        fl_part_doc_t *ent;
        if (!(docs = fl_hist_docs_new(NULL)) || fl_hist_seed(&h, p, &sel, docs, &checkpoint)) {
            rc = FL_EXIT_FAIL;
            goto fail;
        }
        ent = fl_part_get(docs, t.doc);
        start = ent && ent->loaded ? ent->snapshot_offset : 0;
    } else if (time) {
        int64_t *offs = calloc((size_t)n, sizeof *offs);
        if (!offs || fl_hist_offsets_for_time(&h, h.topic[FL_TOPIC_EVENTS], n, ts, offs) != 0) {
            free(offs);
            rc = FL_EXIT_UNREACHABLE;
            goto fail;
        }
        start = offs[p];
        free(offs);
    } else {
        start = FL_HIST_END; /* clamped to the high watermark: new outcomes only */
    }
    fl_hist_catch_signals();
    int err = fl_hist_read(&h, h.topic[FL_TOPIC_EVENTS], p, start, FL_HIST_END, true, on_event,
                           &t);
    rc = err == FL_HIST_ESTOPPED || err == 1 ? FL_EXIT_OK
         : err == FL_HIST_EKAFKA             ? FL_EXIT_UNREACHABLE
                                             : FL_EXIT_FAIL;
fail:
    fl_arena_free(t.arena);
    fl_part_free(docs);
    fl_hist_close(&h);
    fl_config_free(cfg);
    return rc;
}
