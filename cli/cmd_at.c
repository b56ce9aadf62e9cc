/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline at`: one document as it was at a version or at a time. Starts
 * from the newest snapshot that is not past the target (or from version 0)
 * and replays the document's outcomes from its partition of
 * <prefix>.events up to the target. A version inside a multi-command
 * outcome is reached by applying only the first commands of that outcome;
 * the chain hash is not defined there and is printed as null.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "history.h"

/* Snapshots chosen for --time T reflect only events written before
 * T - this: outcome "ts" stamps come from the gateway's clock, events
 * timestamps from the processor's, and the two may disagree a little. */
#define AT_CLOCK_SLACK_MS 60000

typedef struct at_opts_s {
    fl_cli_common_t common;
    const char *doc, *time;
    int64_t version;
    int format;
    bool quiet;
} at_opts_t;

static const char *const formats[] = {"json", NULL};

static const fl_config_entry_t entries[] = {
    FL_CLI_COMMON_ENTRIES(at_opts_t),
    FL_CLI_DOC_ENTRY(at_opts_t, FL_CONFIG_REQUIRED, "The document."),
    {.name = "version", .type = FL_CONFIG_INT, .offset = offsetof(at_opts_t, version), .min = 0,
     .max = INT64_MAX, .group = 1, .flags = FL_CONFIG_REQUIRED, .metavar = "V",
     .doc = "The version (0: the empty document)."},
    FL_CLI_TIME_ENTRY(at_opts_t, "time", time, 1, FL_CONFIG_REQUIRED,
                      "After the document's last outcome stamped at or before T."),
    {.name = "format", .type = FL_CONFIG_ENUM, .def = "json", .choices = formats,
     .offset = offsetof(at_opts_t, format), .doc = "Output format."},
    FL_CLI_QUIET_ENTRY(at_opts_t),
};

const fl_config_table_t fl_cmd_at_options = {
    .program = "flushline at",
    .usage = "--doc ID (--version V | --time T)",
    .summary = "Prints the document at version V, or after its last outcome stamped at or "
               "before T (the outcome's ts: the time the flush reached Kafka), as {doc, version, "
               "chain, digest, partition, offset, ts, state}. Exit 1 when the document has no "
               "history or never reached V.",
    FL_CLI_OPTIONS(entries, true),
};

typedef struct at_s {
    bool by_time;
    uint64_t version;
    int64_t time_ms;
    bool partial;              /* stopped inside an outcome */
    bool any;                  /* an outcome was applied */
    int64_t offset, ts;        /* of the last outcome applied */
    int32_t partition;
    fl_arena_t *arena;
} at_t;

static int on_pre(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
                  const rd_kafka_message_t *msg, fl_hist_pos_t *pos)
{
    at_t *at = opaque;
    if (at->by_time)
        return o->ts_ms > at->time_ms ? 1 : 0;
    if (fl_doc_version(ent->doc) >= at->version)
        return 1;
    if (o->duplicate || o->version_after <= at->version)
        return 0;
    /* The target lies inside this outcome: its first commands only. */
    uint32_t k = (uint32_t)(at->version - o->version_before);
    int rc = fl_doc_apply_applied(ent->doc, o->version_before, o->applied, k, NULL, at->arena);
    if (rc != 0) {
        snprintf(pos->what, sizeof pos->what,
                 "the first %u commands of the outcome do not apply: %s", k,
                 fl_engine_strerror(rc));
        return FL_HIST_EDELTA;
    }
    at->partial = true;
    at->any = true;
    at->offset = msg->offset;
    at->partition = msg->partition;
    at->ts = o->ts_ms;
    return 1;
}

static int on_post(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
                   const rd_kafka_message_t *msg, fl_hist_pos_t *pos)
{
    at_t *at = opaque;
    if (o->napplied > 0) {
        at->any = true;
        at->offset = msg->offset;
        at->partition = msg->partition;
        at->ts = o->ts_ms;
    }
    return !at->by_time && fl_doc_version(ent->doc) >= at->version ? 1 : 0;
}

static int print_doc(const at_t *at, const fl_part_doc_t *ent)
{
    uint8_t digest[FL_HASH_LEN];
    fl_slice_t id = fl_doc_id(ent->doc);
    json_t *obj = json_object(), *st = fl_value_to_json(fl_doc_state(ent->doc));
    int rc = 0;
    if (!obj || !st) {
        json_decref(obj);
        json_decref(st);
        return -1;
    }
    fl_doc_digest(ent->doc, digest);
    json_object_set_new(obj, "doc", json_stringn(id.ptr, id.len));
    json_object_set_new(obj, "version", json_integer((json_int_t)fl_doc_version(ent->doc)));
    json_object_set_new(obj, "chain", at->partial
                                          ? json_null()
                                          : fl_hist_json_hex(fl_doc_chain(ent->doc), FL_HASH_LEN));
    json_object_set_new(obj, "digest", fl_hist_json_hex(digest, FL_HASH_LEN));
    if (at->any) {
        json_object_set_new(obj, "partition", json_integer(at->partition));
        json_object_set_new(obj, "offset", json_integer(at->offset));
        json_object_set_new(obj, "ts", json_integer(at->ts));
    }
    if (at->partial)
        json_object_set_new(obj, "partial", json_true());
    json_object_set_new(obj, "state", st);
    if (json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || putchar('\n') == EOF ||
        fflush(stdout) != 0)
        rc = -1;
    json_decref(obj);
    return rc;
}

int fl_cmd_at(int argc, char **argv)
{
    at_t at = {0};
    at_opts_t o = {0};
    const char *doc;
    fl_hist_t h = {0};
    fl_config_t *cfg;
    fl_part_t *docs = NULL;
    int n, rc = fl_cli_options(&fl_cmd_at_options, &o, &o.common, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    doc = o.doc;
    at.by_time = o.time != NULL;
    at.version = (uint64_t)o.version;
    if (at.by_time)
        fl_hist_parse_time(o.time, &at.time_ms); /* checked by the table */

    if ((rc = fl_hist_open_history(&h, "at", &o.common, o.quiet, &n, NULL)) != FL_EXIT_OK)
        goto fail;
    if (!(docs = fl_hist_docs_new(NULL)) || !(at.arena = fl_arena_new(1 << 14))) {
        fprintf(stderr, "flushline at: out of memory\n");
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    fl_slice_t only = {doc, strlen(doc)};
    fl_hist_rebuild_t rb = {.partition = fl_hist_doc_partition(only, n),
                            .only = only,
                            .start = FL_HIST_END,
                            .max_version = at.by_time ? UINT64_MAX : at.version,
                            .to = FL_HIST_END,
                            .hooks = {on_pre, on_post, &at}};
    if (at.by_time) {
        int64_t *offs = calloc((size_t)n, sizeof *offs);
        if (!offs || fl_hist_offsets_for_time(&h, h.topic[FL_TOPIC_EVENTS], n,
                                              at.time_ms - AT_CLOCK_SLACK_MS, offs) != 0) {
            free(offs);
            rc = FL_EXIT_UNREACHABLE;
            goto fail;
        }
        rb.start = offs[rb.partition];
        free(offs);
    }
    fl_hist_pos_t pos;
    fl_hist_progress_begin(&h, 1);
    int err = fl_hist_rebuild(&h, &rb, docs, &pos);
    fl_hist_progress_end(&h);
    if (err < 0) {
        rc = fl_hist_rebuild_failed(&h, rb.partition, err, &pos);
        goto fail;
    }
    fl_part_doc_t *ent = fl_part_get(docs, only);
    if (!ent) {
        fprintf(stderr, "flushline at: document %s has no history in %s\n", doc,
                h.topic[FL_TOPIC_EVENTS]);
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    if (!at.by_time && fl_doc_version(ent->doc) < at.version) {
        fprintf(stderr, "flushline at: document %s only reaches version %llu\n", doc,
                (unsigned long long)fl_doc_version(ent->doc));
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    rc = print_doc(&at, ent) == 0 ? FL_EXIT_OK : FL_EXIT_FAIL;
fail:
    fl_arena_free(at.arena);
    fl_part_free(docs);
    fl_hist_close(&h);
    fl_config_free(cfg);
    return rc;
}
