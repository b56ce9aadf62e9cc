/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline replay`: rebuilds documents from <prefix>.events with the
 * engine (from version 0, or from the newest usable snapshot when the range
 * starts mid-history) and writes one line per applied outcome in the range:
 * document, version, chain hash, state digest, where the outcome is in the
 * log, who wrote it and when; optionally the whole state.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "cli.h"
#include "history.h"

typedef struct replay_opts_s {
    fl_cli_common_t common;
    const char *doc;
    fl_hist_range_args_t range;
    int format; /* FORMAT_* */
    bool state, all, quiet;
} replay_opts_t;

enum { FORMAT_JSON, FORMAT_MSGPACK };
static const char *const formats[] = {"json", "msgpack", NULL};

#define F(field) offsetof(replay_opts_t, field)

static const fl_config_entry_t entries[] = {
    FL_CLI_COMMON_ENTRIES(replay_opts_t),
    FL_CLI_DOC_ENTRY(replay_opts_t, 0, "One document (only its partition is read)."),
    {.name = "from-offset", .type = FL_CONFIG_STRING, .offset = F(range.from_offset), .group = 1,
     .metavar = "P:O,...", .doc = "Start at these events offsets (other partitions: the start)."},
    FL_CLI_TIME_ENTRY(replay_opts_t, "from-time", range.from_time, 1, 0,
                      "Start at the first event written at or after T."),
    {.name = "to-offset", .type = FL_CONFIG_STRING, .offset = F(range.to_offset), .group = 2,
     .metavar = "P:O,...", .doc = "Stop before these offsets (other partitions: the end)."},
    FL_CLI_TIME_ENTRY(replay_opts_t, "to-time", range.to_time, 2, 0,
                      "Stop after the last event written at or before T."),
    {.name = "format", .type = FL_CONFIG_ENUM, .def = "json", .choices = formats,
     .offset = F(format), .doc = "JSON lines, or a stream of msgpack maps."},
    {.name = "state", .type = FL_CONFIG_BOOL, .def = "false", .offset = F(state),
     .flags = FL_CONFIG_SWITCH, .doc = "Include each document's state after the outcome."},
    {.name = "all", .type = FL_CONFIG_BOOL, .def = "false", .offset = F(all),
     .flags = FL_CONFIG_SWITCH,
     .doc = "Also outcomes that applied nothing (rejected, duplicate, gap)."},
    FL_CLI_QUIET_ENTRY(replay_opts_t),
};

FL_CLI_TABLE(fl_cmd_replay_options, "replay", NULL, entries, true,
             "Rebuilds documents from the events topic and prints one line per applied "
             "outcome: {doc, version, chain, digest, offset, partition, ts, user, client_id, "
             "seq, applied} (+ state). Ranges start mid-history from the newest snapshot at or "
             "before the start; offsets and times refer to <prefix>.events.");

typedef struct replay_s {
    int64_t start;
    bool msgpack, state, all;
    uint64_t lines;
    msgpack_sbuffer sbuf;
    char *line; /* one JSON line, built in place (see print_json) */
    size_t len, cap;
    bool oom;
} replay_t;

/*
 * JSON lines are written by hand, not through a jansson tree: building and
 * dumping a tree (json_dumpf writes token by token) took over half of a
 * replay's time. The output is byte for byte what jansson's
 * JSON_COMPACT | JSON_PRESERVE_ORDER dump gave: same key order, integers as
 * %lld, strings escaped as jansson does (", \, \b \f \n \r \t, other
 * control characters as \u00XX, everything else as is). The state, when
 * asked for, still goes through jansson.
 */
static char *reserve(replay_t *r, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        char *p;
        while (cap < r->len + n)
            cap *= 2;
        if (!(p = realloc(r->line, cap))) {
            r->oom = true;
            return NULL;
        }
        r->line = p;
        r->cap = cap;
    }
    return r->line + r->len;
}

static void put(replay_t *r, const char *s, size_t n)
{
    char *p = reserve(r, n);
    if (p) {
        memcpy(p, s, n);
        r->len += n;
    }
}

#define PUT_LIT(r, s) put((r), (s), sizeof(s) - 1)

static void put_u64(replay_t *r, uint64_t v)
{
    char buf[24], *e = buf + sizeof buf, *b = e;
    do {
        *--b = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(r, b, (size_t)(e - b));
}

static void put_i64(replay_t *r, int64_t v)
{
    if (v < 0) {
        PUT_LIT(r, "-");
        put_u64(r, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(r, (uint64_t)v);
    }
}

static void put_hex(replay_t *r, const uint8_t *b, size_t n)
{
    char *p = reserve(r, 2 * n + 3);
    if (p) {
        p[0] = '"';
        fl_wire_hex(b, n, p + 1); /* NUL-terminates */
        p[2 * n + 1] = '"';
        r->len += 2 * n + 2;
    }
}

static void put_str(replay_t *r, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *p = reserve(r, 6 * n + 2), *q = p;
    if (!p)
        return;
    *q++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *q++ = (char)c;
            continue;
        }
        *q++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *q++ = (char)c;
            break;
        case '\b':
            *q++ = 'b';
            break;
        case '\f':
            *q++ = 'f';
            break;
        case '\n':
            *q++ = 'n';
            break;
        case '\r':
            *q++ = 'r';
            break;
        case '\t':
            *q++ = 't';
            break;
        default:
            *q++ = 'u';
            *q++ = '0';
            *q++ = '0';
            *q++ = hex[c >> 4];
            *q++ = hex[c & 15];
        }
    }
    *q++ = '"';
    r->len += (size_t)(q - p);
}

static int print_json(replay_t *r, const fl_part_doc_t *ent, const fl_outcome_t *o,
                      const rd_kafka_message_t *msg)
{
    uint8_t digest[FL_HASH_LEN];
    fl_doc_digest(ent->doc, digest);
    r->len = 0;
    PUT_LIT(r, "{\"doc\":");
    put_str(r, o->doc.ptr, o->doc.len);
    PUT_LIT(r, ",\"version\":");
    put_i64(r, (int64_t)o->version_after);
    PUT_LIT(r, ",\"chain\":");
    put_hex(r, fl_doc_chain(ent->doc), FL_HASH_LEN);
    PUT_LIT(r, ",\"digest\":");
    put_hex(r, digest, FL_HASH_LEN);
    PUT_LIT(r, ",\"offset\":");
    put_i64(r, msg->offset);
    PUT_LIT(r, ",\"partition\":");
    put_i64(r, msg->partition);
    PUT_LIT(r, ",\"ts\":");
    put_i64(r, o->ts_ms);
    PUT_LIT(r, ",\"user\":");
    put_str(r, o->user.ptr, o->user.len);
    PUT_LIT(r, ",\"client_id\":");
    put_hex(r, o->client_id, FL_CLIENT_ID_LEN);
    PUT_LIT(r, ",\"seq\":");
    put_i64(r, (int64_t)o->seq);
    PUT_LIT(r, ",\"applied\":");
    put_u64(r, o->napplied);
    if (r->all) {
        const char *code = fl_code_name(o->code);
        PUT_LIT(r, ",\"code\":");
        put_str(r, code, strlen(code));
        if (o->duplicate)
            PUT_LIT(r, ",\"dup\":true");
    }
    if (r->state) {
        json_t *st = fl_value_to_json(fl_doc_state(ent->doc));
        char *text = st ? json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(st);
        if (!text)
            return FL_HIST_ENOMEM;
        PUT_LIT(r, ",\"state\":");
        put(r, text, strlen(text));
        free(text);
    }
    PUT_LIT(r, "}\n");
    if (r->oom || fwrite(r->line, 1, r->len, stdout) != r->len)
        return FL_HIST_ENOMEM;
    return 0;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

static int print_msgpack(replay_t *r, const fl_part_doc_t *ent, const fl_outcome_t *o,
                         const rd_kafka_message_t *msg)
{
    uint8_t digest[FL_HASH_LEN];
    msgpack_packer pk;
    size_t n = 11 + (r->state ? 1 : 0) + (r->all ? 2 : 0);
    msgpack_sbuffer_clear(&r->sbuf);
    msgpack_packer_init(&pk, &r->sbuf, msgpack_sbuffer_write);
    fl_doc_digest(ent->doc, digest);
    msgpack_pack_map(&pk, n);
    pack_str(&pk, "doc", 3);
    pack_str(&pk, o->doc.ptr, o->doc.len);
    pack_str(&pk, "version", 7);
    msgpack_pack_uint64(&pk, o->version_after);
    pack_str(&pk, "chain", 5);
    pack_bin(&pk, fl_doc_chain(ent->doc), FL_HASH_LEN);
    pack_str(&pk, "digest", 6);
    pack_bin(&pk, digest, FL_HASH_LEN);
    pack_str(&pk, "offset", 6);
    msgpack_pack_int64(&pk, msg->offset);
    pack_str(&pk, "partition", 9);
    msgpack_pack_int32(&pk, msg->partition);
    pack_str(&pk, "ts", 2);
    msgpack_pack_int64(&pk, o->ts_ms);
    pack_str(&pk, "user", 4);
    pack_str(&pk, o->user.ptr, o->user.len);
    pack_str(&pk, "client_id", 9);
    pack_bin(&pk, o->client_id, FL_CLIENT_ID_LEN);
    pack_str(&pk, "seq", 3);
    msgpack_pack_uint64(&pk, o->seq);
    pack_str(&pk, "applied", 7);
    msgpack_pack_uint32(&pk, o->napplied);
    if (r->all) {
        const char *code = fl_code_name(o->code);
        pack_str(&pk, "code", 4);
        pack_str(&pk, code, strlen(code));
        pack_str(&pk, "dup", 3);
        if (o->duplicate)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
    }
    if (r->state) {
        pack_str(&pk, "state", 5);
        if (fl_value_pack(&pk, fl_doc_state(ent->doc)) != 0)
            return FL_HIST_ENOMEM;
    }
    if (fwrite(r->sbuf.data, 1, r->sbuf.size, stdout) != r->sbuf.size)
        return FL_HIST_ENOMEM;
    return 0;
}

static int on_outcome(void *opaque, fl_part_doc_t *ent, const fl_outcome_t *o,
                      const rd_kafka_message_t *msg, fl_hist_pos_t *pos)
{
    replay_t *r = opaque;
    int rc;
    if (msg->offset < r->start || (o->napplied == 0 && !r->all))
        return 0;
    rc = r->msgpack ? print_msgpack(r, ent, o, msg) : print_json(r, ent, o, msg);
    if (rc != 0) {
        snprintf(pos->what, sizeof pos->what, "writing the output failed");
        return rc;
    }
    r->lines++;
    return 0;
}

/* The end of a run: output written, the document found, no bad record.
 * The exit code. */
static int finish(const fl_hist_t *h, int rc, const char *doc, bool doc_found, uint64_t bad)
{
    if (fflush(stdout) != 0) {
        fprintf(stderr, "flushline replay: writing the output failed\n");
        return FL_EXIT_FAIL;
    }
    if (rc == FL_EXIT_OK && doc && !doc_found) {
        fprintf(stderr, "flushline replay: document %s has no history in %s\n", doc,
                h->topic[FL_TOPIC_EVENTS]);
        return FL_EXIT_FAIL;
    }
    if (rc == FL_EXIT_OK && bad > 0) {
        fprintf(stderr, "flushline replay: %llu bad records skipped\n", (unsigned long long)bad);
        return FL_EXIT_FAIL;
    }
    return rc;
}

/* Replays partition p's events from offset from to offset to. */
static int replay_partition(fl_hist_t *h, replay_t *r, fl_part_t *docs, fl_slice_t only,
                            int32_t p, int64_t from, int64_t to, uint64_t *outcomes,
                            uint64_t *bad)
{
    fl_hist_rebuild_t rb = {.partition = p,
                            .only = only,
                            .start = from,
                            .max_version = UINT64_MAX,
                            .to = to,
                            .hooks = {NULL, on_outcome, r}};
    fl_hist_pos_t pos;
    int err, rc = FL_EXIT_OK;
    r->start = from;
    if (from != FL_HIST_END) { /* else nothing was written after --from-time there */
        err = fl_hist_rebuild(h, &rb, docs, &pos);
        *outcomes += rb.outcomes;
        *bad += rb.bad;
        if (err < 0)
            rc = fl_hist_rebuild_failed(h, p, err, &pos);
    }
    fl_hist_progress_part_done(h);
    return rc;
}

int fl_cmd_replay(int argc, char **argv)
{
    replay_t r = {0};
    fl_part_t *docs = NULL;
    replay_opts_t o = {0};
    fl_hist_t h = {0};
    const char *doc;
    fl_config_t *cfg;
    int64_t *from = NULL, *to = NULL;
    bool quiet, doc_found = false;
    uint64_t outcomes = 0, bad = 0;
    int n, rc = fl_cli_options(&fl_cmd_replay_options, &o, &o.common, argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    doc = o.doc;
    quiet = o.quiet;
    r.msgpack = o.format == FORMAT_MSGPACK;
    r.state = o.state;
    r.all = o.all;
    if (fl_hist_range_check("replay", &o.range) != FL_EXIT_OK) {
        fl_config_free(cfg);
        return FL_EXIT_USAGE;
    }

    if ((rc = fl_hist_open_history(&h, "replay", &o.common, quiet, &n, NULL)) != FL_EXIT_OK)
        goto fail;
    if (!(from = calloc((size_t)n, sizeof *from)) || !(to = calloc((size_t)n, sizeof *to)) ||
        !(docs = fl_hist_docs_new(NULL))) {
        fprintf(stderr, "flushline replay: out of memory\n");
        rc = FL_EXIT_FAIL;
        goto fail;
    }
    if ((rc = fl_hist_range_resolve(&h, h.topic[FL_TOPIC_EVENTS], n, &o.range, from, to)) !=
        FL_EXIT_OK)
        goto fail;
    msgpack_sbuffer_init(&r.sbuf);

    fl_slice_t only = doc ? (fl_slice_t){doc, strlen(doc)} : (fl_slice_t){NULL, 0};
    int32_t first = doc ? fl_hist_doc_partition(only, n) : 0;
    int32_t last = doc ? first : n - 1;
    fl_hist_progress_begin(&h, last - first + 1);
    rc = FL_EXIT_OK;
    for (int32_t p = first; p <= last && rc == FL_EXIT_OK; p++) {
        rc = replay_partition(&h, &r, docs, only, p, from[p], to[p], &outcomes, &bad);
        if (doc && fl_part_get(docs, only))
            doc_found = true;
    }
    fl_hist_progress_end(&h);
    rc = finish(&h, rc, doc, doc_found, bad);
    if (!quiet)
        fprintf(stderr, "flushline replay: %llu outcomes replayed, %llu lines written\n",
                (unsigned long long)outcomes, (unsigned long long)r.lines);
    msgpack_sbuffer_destroy(&r.sbuf);
fail:
    free(r.line);
    fl_part_free(docs);
    free(from);
    free(to);
    fl_hist_close(&h);
    fl_config_free(cfg);
    return rc;
}
