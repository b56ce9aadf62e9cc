/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline at`: one document as it was at a version or at a time. Starts
 * from the newest snapshot that is not past the target (or from version 0)
 * and replays the document's outcomes from its partition of
 * <prefix>.events up to the target. A version inside a multi-command
 * outcome is reached by applying only the first commands of that outcome;
 * the chain hash is not defined there and is printed as null. The read and
 * the JSON are the partition module's (flushline/doc_at.h), which the
 * gateway's GET /v1/docs/{id}?version=V shares.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "flushline/doc_at.h"
#include "flushline/reader.h"
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

FL_CLI_TABLE(fl_cmd_at_options, "at", "--doc ID (--version V | --time T)", entries, true,
             "Prints the document at version V, or after its last outcome stamped at or "
             "before T (the outcome's ts: the time the flush reached Kafka), as {doc, version, "
             "chain, digest, partition, offset, ts, state}. Exit 1 when the document has no "
             "history or never reached V.");

static bool at_should_stop(void *opaque)
{
    (void)opaque;
    return fl_hist_stop != 0;
}

static void at_progress(void *opaque, uint64_t records)
{
    fl_hist_progress_records(opaque, records);
}

static void at_skip(void *opaque, const char *topic, const rd_kafka_message_t *msg,
                    const char *why)
{
    fl_hist_t *h = opaque;
    fprintf(stderr, "flushline %s: skipped record %s [%d] @%lld: %s\n", h->cmd, topic,
            msg->partition, (long long)msg->offset, why);
}

/* Why the read failed, on stderr; the exit code. */
static int at_failed(const fl_at_t *at, int err)
{
    fflush(stdout);
    if (err == FL_READER_EKAFKA || err == FL_READER_ETIMEDOUT) {
        fprintf(stderr, "flushline at: %s\n", at->what[0] ? at->what : fl_at_strerror(err));
        return FL_EXIT_UNREACHABLE;
    }
    if (at->fail_offset >= 0)
        fprintf(stderr, "flushline at: %s [%d] @%lld: document %.*s: %s\n", at->events,
                at->partition, (long long)at->fail_offset, (int)at->doc.len, at->doc.ptr,
                at->what);
    else
        fprintf(stderr, "flushline at: partition %d: %s\n", at->partition, fl_at_strerror(err));
    return FL_EXIT_FAIL;
}

static int print_doc(const fl_at_t *at)
{
    json_t *obj = fl_at_json(at);
    int rc = 0;
    if (!obj)
        return -1;
    if (json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || putchar('\n') == EOF ||
        fflush(stdout) != 0)
        rc = -1;
    json_decref(obj);
    return rc;
}

/* The read of the document up to the target: 0, or an exit code after
 * printing why. */
static int read_at(fl_hist_t *h, fl_at_t *at, int n)
{
    int err;
    at->rk = h->rk;
    at->snapshots = h->topic[FL_TOPIC_SNAPSHOTS];
    at->events = h->topic[FL_TOPIC_EVENTS];
    at->partition = fl_hist_doc_partition(at->doc, n);
    at->seed_version = UINT64_MAX;
    at->seed_offset = INT64_MAX;
    at->should_stop = at_should_stop;
    at->on_progress = at_progress;
    at->on_skip = at_skip;
    at->opaque = h;
    if (at->by_time) {
        int64_t *offs = calloc((size_t)n, sizeof *offs);
        if (!offs || fl_hist_offsets_for_time(h, h->topic[FL_TOPIC_EVENTS], n,
                                              at->time_ms - AT_CLOCK_SLACK_MS, offs) != 0) {
            free(offs);
            return FL_EXIT_UNREACHABLE;
        }
        at->seed_offset = offs[at->partition];
        free(offs);
    }
    fl_hist_progress_begin(h, 1);
    err = fl_at_doc(at);
    fl_hist_progress_end(h);
    return err < 0 ? at_failed(at, err) : 0;
}

int fl_cmd_at(int argc, char **argv)
{
    fl_at_t at = {0};
    at_opts_t o = {0};
    fl_hist_t h = {0};
    fl_config_t *cfg;
    int n, rc = fl_cli_options(&fl_cmd_at_options, &o, &o.common, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    at.doc = (fl_slice_t){o.doc, strlen(o.doc)};
    at.by_time = o.time != NULL;
    at.version = (uint64_t)o.version;
    if (at.by_time)
        fl_hist_parse_time(o.time, &at.time_ms); /* checked by the table */

    if ((rc = fl_hist_open_history(&h, "at", &o.common, o.quiet, &n, NULL)) != FL_EXIT_OK ||
        (rc = read_at(&h, &at, n)) != 0)
        goto fail;
    if (!at.ent) {
        fprintf(stderr, "flushline at: document %s has no history in %s\n", o.doc,
                h.topic[FL_TOPIC_EVENTS]);
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    if (!at.by_time && fl_doc_version(at.ent->doc) < at.version) {
        fprintf(stderr, "flushline at: document %s only reaches version %llu\n", o.doc,
                (unsigned long long)fl_doc_version(at.ent->doc));
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    rc = print_doc(&at) == 0 ? FL_EXIT_OK : FL_EXIT_FAIL;
fail:
    fl_at_done(&at);
    fl_hist_close(&h);
    fl_config_free(cfg);
    return rc;
}
