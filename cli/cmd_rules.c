/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `flushline rules put|get|list|check`: rule sets (schemas/RULES.md).
 * put validates a rules file and publishes a rules record to every
 * partition of <prefix>.commands in one transaction (all partitions or
 * none); get and list read the rules records back from partition 0 of
 * commands (every put reaches every partition, so one partition holds the
 * whole catalogue); check rebuilds the current documents (as `at` and
 * `verify` do, through history.h) and lists where they break the file's
 * constraints.
 *
 * Document-id prefixes are given with --doc-prefix: --prefix is the topic
 * name prefix, as in every other subcommand.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "flushline/rules.h"
#include "history.h"

typedef struct rules_opts_s {
    fl_cli_common_t common;
    const char *file, *doc_prefix, *id;
    bool remove, quiet;
    int64_t max_violations;
} rules_opts_t;

#define F(field) offsetof(rules_opts_t, field)

#define DOC_PREFIX_ENTRY(flags_)                                                                  \
    {.name = "doc-prefix", .type = FL_CONFIG_STRING, .offset = F(doc_prefix), .flags = (flags_),   \
     .metavar = "P", .check = check_doc_prefix,                                                    \
     .doc = "The document-id prefix the rule set is for (\"\" = every document; the longest "     \
            "matching prefix wins)."}

static int check_doc_prefix(const void *field, char *errstr, size_t errstr_size)
{
    if (strlen(*(const char *const *)field) > FL_RULES_MAX_PREFIX) {
        snprintf(errstr, errstr_size, "a document-id prefix takes at most %d bytes",
                 FL_RULES_MAX_PREFIX);
        return -1;
    }
    return 0;
}

static const fl_config_entry_t put_entries[] = {
    {.name = "file", .type = FL_CONFIG_STRING, .offset = F(file), .flags = FL_CONFIG_POSITIONAL,
     .metavar = "FILE", .doc = "The rules file (JSON, schemas/RULES.md); none with --remove."},
    FL_CLI_COMMON_ENTRIES(rules_opts_t),
    DOC_PREFIX_ENTRY(FL_CONFIG_REQUIRED),
    {.name = "remove", .type = FL_CONFIG_BOOL, .def = "false", .offset = F(remove),
     .flags = FL_CONFIG_SWITCH,
     .doc = "Publish the removal of the prefix's rule set instead of a file."},
    {.name = "id", .type = FL_CONFIG_STRING, .def = "flushline-cli", .offset = F(id),
     .metavar = "TEXT", .doc = "Who publishes (kept in the record for the audit, <= 255 bytes)."},
};

FL_CLI_TABLE(fl_cmd_rules_put_options, "rules put", "FILE --doc-prefix P | --doc-prefix P --remove",
             put_entries, true,
             "Validates FILE (errors name the JSON path of the problem; exit 1) and publishes "
             "a rules record to every partition of <prefix>.commands in one transaction, so "
             "that every partition applies the rule set from the same point of its log on.");

static const fl_config_entry_t get_entries[] = {
    {.name = "doc-prefix", .type = FL_CONFIG_STRING, .offset = F(doc_prefix),
     .flags = FL_CONFIG_POSITIONAL | FL_CONFIG_REQUIRED, .metavar = "P",
     .check = check_doc_prefix, .doc = "The document-id prefix."},
    FL_CLI_COMMON_ENTRIES(rules_opts_t),
};

FL_CLI_TABLE(fl_cmd_rules_get_options, "rules get", "P", get_entries, true,
             "Prints the rule set in force for document-id prefix P (exactly P) as read back "
             "from the commands log: {prefix, offset, id, rules}. Exit 1 when P has none.");

static const fl_config_entry_t list_entries[] = {
    FL_CLI_COMMON_ENTRIES(rules_opts_t),
};

FL_CLI_TABLE(fl_cmd_rules_list_options, "rules list", "", list_entries, true,
             "Lists the rule sets in force, one JSON line per prefix: {prefix, offset, id, "
             "rules (count), bytes}. Bad rules records in the log are reported on stderr with "
             "their offset and skipped, as the processor skips them.");

static const fl_config_entry_t check_entries[] = {
    {.name = "file", .type = FL_CONFIG_STRING, .offset = F(file),
     .flags = FL_CONFIG_POSITIONAL | FL_CONFIG_REQUIRED, .metavar = "FILE",
     .doc = "The rules file to try."},
    FL_CLI_COMMON_ENTRIES(rules_opts_t),
    DOC_PREFIX_ENTRY(FL_CONFIG_REQUIRED),
    {.name = "max-violations", .type = FL_CONFIG_INT, .def = "1000", .offset = F(max_violations),
     .min = 1, .max = 1000000, .metavar = "N", .doc = "Stop listing after N violations."},
    FL_CLI_QUIET_ENTRY(rules_opts_t),
};

FL_CLI_TABLE(fl_cmd_rules_check_options, "rules check", "FILE --doc-prefix P", check_entries, true,
             "Dry run: validates FILE, rebuilds the current state of every document whose id "
             "starts with P (snapshots and events, as `at` does) and prints one JSON line "
             "{doc, version, rule, where} per location that breaks a constraint of FILE. "
             "Exit 0 when none does, 1 when some do (or FILE is invalid).");

static void help(FILE *out)
{
    fprintf(out, "usage: flushline rules put|get|list|check [OPTIONS]\n\n"
                 "  put    validate a rules file and publish it to every commands partition\n"
                 "  get    print the rule set in force for a document-id prefix\n"
                 "  list   list the rule sets in force\n"
                 "  check  dry-run a rules file against the current documents\n\n"
                 "`flushline rules SUBCOMMAND --help` for its options; the language is "
                 "schemas/RULES.md.\n");
}

/* Reads a rules file, refusing one above the limit before reading it all.
 * Returns the malloc'd text or NULL after printing why. */
static char *read_rules_file(const char *cmd, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "flushline rules %s: %s: cannot open\n", cmd, path);
        return NULL;
    }
    char *buf = malloc(FL_RULES_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, FL_RULES_MAX_BYTES + 1, f) : 0;
    bool err = ferror(f) != 0;
    fclose(f);
    if (!buf || err) {
        fprintf(stderr, "flushline rules %s: %s: %s\n", cmd, path,
                buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    if (n > FL_RULES_MAX_BYTES) {
        fprintf(stderr, "flushline rules %s: %s: $: larger than the limit of %u bytes\n", cmd,
                path, FL_RULES_MAX_BYTES);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static fl_rules_t *load_rules(const char *cmd, const char *path, char **text, size_t *len)
{
    char errstr[512];
    fl_rules_t *rs = NULL;
    *text = read_rules_file(cmd, path, len);
    if (!*text)
        return NULL;
    if (fl_rules_parse(*text, *len, &rs, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline rules %s: %s: %s\n", cmd, path, errstr);
        free(*text);
        *text = NULL;
        return NULL;
    }
    return rs;
}

/* ------------------------------------------------------------------ put */

typedef struct put_s {
    int delivered, failed;
    char error[256];
} put_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    put_t *put = opaque;
    (void)rk;
    if (msg->err) {
        put->failed++;
        snprintf(put->error, sizeof put->error, "%s", rd_kafka_err2str(msg->err));
    } else {
        put->delivered++;
    }
}

static int txn_error(const char *what, rd_kafka_error_t *err)
{
    fprintf(stderr, "flushline rules put: %s: %s\n", what, rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
    return FL_EXIT_UNREACHABLE;
}

/* rec to every partition of topic, in one transaction. 0, or -1
 * (reported). */
static int publish_all(rd_kafka_t *producer, const char *topic, int n, char *rec,
                       size_t reclen)
{
    rd_kafka_error_t *err;
    if ((err = rd_kafka_init_transactions(producer, 60000))) {
        txn_error("init_transactions", err);
        return -1;
    }
    if ((err = rd_kafka_begin_transaction(producer))) {
        txn_error("begin_transaction", err);
        return -1;
    }
    for (int32_t p = 0; p < n; p++) {
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
            RD_KAFKA_V_KEY(FL_WIRE_RULES_KEY.ptr, FL_WIRE_RULES_KEY.len),
            RD_KAFKA_V_VALUE(rec, reclen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (kerr) {
            fprintf(stderr, "flushline rules put: produce to partition %d: %s\n", p,
                    rd_kafka_err2str(kerr));
            if ((err = rd_kafka_abort_transaction(producer, 60000)))
                txn_error("abort_transaction", err);
            return -1;
        }
    }
    if ((err = rd_kafka_commit_transaction(producer, 60000))) {
        /* nothing was committed: the records of an aborted transaction are
         * invisible to read_committed readers (the processor) */
        txn_error("commit_transaction", err);
        return -1;
    }
    return 0;
}

/* The transactional producer of rules put. NULL (reported) on error. */
static rd_kafka_t *new_producer(const fl_cli_common_t *common, put_t *put)
{
    char errstr[512];
    rd_kafka_t *producer;
    /* One transactional.id for every put of a deployment: a second put
     * running at once fences the first, so two never interleave. */
    char txid[FL_TOPIC_NAME_MAX + 32];
    snprintf(txid, sizeof txid, "%s-rules-put", common->prefix);
    const fl_kafka_kv_t defaults[] = {
        {"transactional.id", txid},
        {"enable.idempotence", "true"},
        {"message.max.bytes", "8388608"},
        {NULL, NULL},
    };
    fl_kafka_spec_t ks = {.type = RD_KAFKA_PRODUCER,
                          .what = "rules producer",
                          .bootstrap = common->bootstrap,
                          .defaults = defaults,
                          .props = &common->props,
                          .opaque = put,
                          .on_delivery = on_delivery};
    if (!(producer = fl_kafka_new(&ks, errstr, sizeof errstr)))
        fprintf(stderr, "flushline rules put: %s\n", errstr);
    return producer;
}

static int cmd_put(int argc, char **argv)
{
    rules_opts_t o = {0};
    fl_config_t *cfg;
    fl_hist_t h = {0};
    rd_kafka_t *producer = NULL;
    char *text = NULL, *rec = NULL, errstr[512];
    size_t len = 0, reclen = 0;
    fl_rules_t *rs = NULL;
    put_t put = {0};
    int n, rc = fl_cli_options(&fl_cmd_rules_put_options, &o, &o.common, argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    if (!o.file == !o.remove) {
        rc = fl_cli_usage_error(&fl_cmd_rules_put_options, "give FILE or --remove, not both");
        goto out;
    }
    if (strlen(o.id) > 255) {
        rc = fl_cli_usage_error(&fl_cmd_rules_put_options, "--id takes at most 255 bytes");
        goto out;
    }
    if (o.file && !(rs = load_rules("put", o.file, &text, &len))) {
        rc = FL_EXIT_FAIL;
        goto out;
    }
    fl_wire_msg_t msg = {.type = FL_WT_REC_RULES};
    msg.u.rules.prefix = (fl_slice_t){o.doc_prefix, strlen(o.doc_prefix)};
    msg.u.rules.has_rules = text != NULL;
    msg.u.rules.rules = (fl_slice_t){text ? text : "", len};
    msg.u.rules.id = (fl_slice_t){o.id, strlen(o.id)};
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &rec, &reclen, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "flushline rules put: encode: %s\n", errstr);
        rc = FL_EXIT_FAIL;
        goto out;
    }
    if ((rc = fl_hist_open(&h, "rules", &o.common, NULL)) != FL_EXIT_OK)
        goto out;
    if ((n = fl_hist_need_topic(&h, FL_TOPIC_COMMANDS)) < 0) {
        rc = -n;
        goto out;
    }
    if (!(producer = new_producer(&o.common, &put))) {
        rc = FL_EXIT_USAGE;
        goto out;
    }
    rc = FL_EXIT_UNREACHABLE;
    if (publish_all(producer, h.topic[FL_TOPIC_COMMANDS], n, rec, reclen) != 0)
        goto out;
    if (put.delivered != n) {
        fprintf(stderr, "flushline rules put: %d of %d records delivered: %s\n", put.delivered,
                n, put.error);
        goto out;
    }
    printf("rules %s for prefix \"%s\": published to %d partitions of %s\n",
           text ? "set" : "removed", o.doc_prefix, n, h.topic[FL_TOPIC_COMMANDS]);
    rc = FL_EXIT_OK;
out:
    if (producer)
        rd_kafka_destroy(producer);
    fl_hist_close(&h);
    fl_rules_free(rs);
    free(rec);
    free(text);
    fl_config_free(cfg);
    return rc;
}

/* ------------------------------------------------------------- get, list */

typedef struct cat_ent_s {
    char *prefix, *id, *rules;
    size_t rules_len;
    int64_t offset;
    uint32_t count;
} cat_ent_t;

typedef struct scan_s {
    cat_ent_t *ents;
    size_t n, cap;
    uint64_t bad;
    const char *topic;
    fl_arena_t *arena;
    bool failed;
} scan_t;

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static void ent_free(cat_ent_t *e)
{
    free(e->prefix);
    free(e->id);
    free(e->rules);
}

/* A rules record: valid ones replace (or remove) their prefix's entry, as
 * the processor installs them; bad ones are reported and skipped. */
static int on_record(void *opaque, const rd_kafka_message_t *msg)
{
    scan_t *sc = opaque;
    char errstr[512];
    fl_wire_msg_t m;
    if (msg->key_len != FL_WIRE_RULES_KEY.len ||
        memcmp(msg->key, FL_WIRE_RULES_KEY.ptr, FL_WIRE_RULES_KEY.len) != 0)
        return 0;
    fl_arena_reset(sc->arena);
    if (fl_wire_decode_record(msg->payload, msg->len, sc->arena, &m, errstr, sizeof errstr) != 0 ||
        m.type != FL_WT_REC_RULES) {
        fprintf(stderr, "flushline rules: %s [%d] @%lld: bad rules record skipped: %s\n",
                sc->topic, msg->partition, (long long)msg->offset,
                m.type != FL_WT_REC_RULES ? "not a rules record" : errstr);
        sc->bad++;
        return 0;
    }
    fl_rules_t *rs = NULL;
    if (m.u.rules.has_rules &&
        fl_rules_parse(m.u.rules.rules.ptr, m.u.rules.rules.len, &rs, errstr, sizeof errstr)) {
        fprintf(stderr, "flushline rules: %s [%d] @%lld: invalid rule set skipped: %s\n",
                sc->topic, msg->partition, (long long)msg->offset, errstr);
        sc->bad++;
        return 0;
    }
    size_t i;
    for (i = 0; i < sc->n; i++)
        if (strlen(sc->ents[i].prefix) == m.u.rules.prefix.len &&
            memcmp(sc->ents[i].prefix, m.u.rules.prefix.ptr, m.u.rules.prefix.len) == 0)
            break;
    if (i < sc->n) {
        ent_free(&sc->ents[i]);
        sc->ents[i] = sc->ents[--sc->n];
    }
    if (rs) {
        if (sc->n == sc->cap) {
            size_t ncap = sc->cap ? 2 * sc->cap : 8;
            cat_ent_t *ne = realloc(sc->ents, ncap * sizeof *ne);
            if (!ne)
                goto oom;
            sc->ents = ne;
            sc->cap = ncap;
        }
        cat_ent_t *e = &sc->ents[sc->n];
        e->prefix = dupn(m.u.rules.prefix.ptr, m.u.rules.prefix.len);
        e->id = dupn(m.u.rules.id.ptr, m.u.rules.id.len);
        e->rules = dupn(m.u.rules.rules.ptr, m.u.rules.rules.len);
        e->rules_len = m.u.rules.rules.len;
        e->offset = msg->offset;
        e->count = fl_rules_count(rs);
        fl_rules_free(rs);
        if (!e->prefix || !e->id || !e->rules) {
            ent_free(e);
            goto oom;
        }
        sc->n++;
    }
    return 0;
oom:
    fl_rules_free(rs);
    sc->failed = true;
    return FL_HIST_ENOMEM;
}

static int cmp_ent(const void *a, const void *b)
{
    return strcmp(((const cat_ent_t *)a)->prefix, ((const cat_ent_t *)b)->prefix);
}

/* Reads every rules record of partition 0 of commands. */
static int scan(const char *cmd, fl_hist_t *h, scan_t *sc)
{
    int n = fl_hist_need_topic(h, FL_TOPIC_COMMANDS);
    if (n < 0)
        return -n;
    sc->topic = h->topic[FL_TOPIC_COMMANDS];
    if (!(sc->arena = fl_arena_new(1 << 14))) {
        fprintf(stderr, "flushline rules %s: out of memory\n", cmd);
        return FL_EXIT_FAIL;
    }
    int err = fl_hist_read(h, sc->topic, 0, 0, FL_HIST_END, false, on_record, sc);
    if (err < 0) {
        fprintf(stderr, "flushline rules %s: %s\n", cmd, fl_hist_strerror(err));
        return err == FL_HIST_EKAFKA ? FL_EXIT_UNREACHABLE : FL_EXIT_FAIL;
    }
    qsort(sc->ents, sc->n, sizeof *sc->ents, cmp_ent);
    return FL_EXIT_OK;
}

static void scan_free(scan_t *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        ent_free(&sc->ents[i]);
    free(sc->ents);
    fl_arena_free(sc->arena);
}

static int print_ent(const cat_ent_t *e, bool with_rules)
{
    json_t *obj = json_object();
    int rc = 0;
    if (!obj)
        return -1;
    json_object_set_new(obj, "prefix", json_string(e->prefix));
    json_object_set_new(obj, "offset", json_integer(e->offset));
    json_object_set_new(obj, "id", json_string(e->id));
    if (with_rules) {
        json_t *r = json_loadb(e->rules, e->rules_len, 0, NULL);
        json_object_set_new(obj, "rules", r ? r : json_stringn(e->rules, e->rules_len));
    } else {
        json_object_set_new(obj, "rules", json_integer(e->count));
        json_object_set_new(obj, "bytes", json_integer((json_int_t)e->rules_len));
    }
    if (json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || putchar('\n') == EOF)
        rc = -1;
    json_decref(obj);
    return rc;
}

static int cmd_get_list(int argc, char **argv, bool get)
{
    rules_opts_t o = {0};
    fl_config_t *cfg;
    fl_hist_t h = {0};
    scan_t sc = {0};
    const fl_config_table_t *t = get ? &fl_cmd_rules_get_options : &fl_cmd_rules_list_options;
    int rc = fl_cli_options(t, &o, &o.common, argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    if ((rc = fl_hist_open(&h, "rules", &o.common, NULL)) != FL_EXIT_OK ||
        (rc = scan(get ? "get" : "list", &h, &sc)) != FL_EXIT_OK)
        goto out;
    rc = FL_EXIT_OK;
    if (get) {
        rc = FL_EXIT_FAIL;
        for (size_t i = 0; i < sc.n; i++)
            if (strcmp(sc.ents[i].prefix, o.doc_prefix) == 0)
                rc = print_ent(&sc.ents[i], true) == 0 ? FL_EXIT_OK : FL_EXIT_FAIL;
        if (rc != FL_EXIT_OK)
            fprintf(stderr, "flushline rules get: no rule set for prefix \"%s\"\n",
                    o.doc_prefix);
    } else {
        for (size_t i = 0; i < sc.n && rc == FL_EXIT_OK; i++)
            if (print_ent(&sc.ents[i], false) != 0)
                rc = FL_EXIT_FAIL;
    }
    fflush(stdout);
out:
    scan_free(&sc);
    fl_hist_close(&h);
    fl_config_free(cfg);
    return rc;
}

/* ---------------------------------------------------------------- check */

typedef struct check_s {
    const char *doc;
    uint64_t version;
    uint64_t found, max;
} check_t;

static void on_violation(void *opaque, fl_slice_t rule, fl_slice_t where)
{
    check_t *ck = opaque;
    json_t *obj = json_object();
    if (!obj)
        return;
    json_object_set_new(obj, "doc", json_string(ck->doc));
    json_object_set_new(obj, "version", json_integer((json_int_t)ck->version));
    json_object_set_new(obj, "rule", json_stringn(rule.ptr, rule.len));
    json_object_set_new(obj, "where", json_stringn(where.ptr, where.len));
    json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(obj);
    ck->found++;
}

/* Checks the documents of docs under prefix against rs, until ck->max
 * violations are found. 0, or -1 on OOM. */
static int check_docs(const fl_rules_t *rs, fl_part_t *docs, const char *prefix, size_t plen,
                      check_t *ck, uint64_t *checked)
{
    for (uint32_t i = 0; i < fl_part_count(docs) && ck->found < ck->max; i++) {
        fl_part_doc_t *ent = fl_part_at(docs, i);
        fl_slice_t id = fl_doc_id(ent->doc);
        if (id.len < plen || memcmp(id.ptr, prefix, plen) != 0)
            continue;
        char idbuf[FL_DOC_ID_MAX + 1];
        memcpy(idbuf, id.ptr, id.len);
        idbuf[id.len] = '\0';
        ck->doc = idbuf;
        ck->version = fl_doc_version(ent->doc);
        (*checked)++;
        if (fl_rules_check_doc(rs, fl_doc_state(ent->doc), (uint32_t)(ck->max - ck->found),
                               on_violation, ck) < 0)
            return -1;
    }
    return 0;
}

static int cmd_check(int argc, char **argv)
{
    rules_opts_t o = {0};
    fl_config_t *cfg;
    fl_hist_t h = {0};
    fl_part_t *docs = NULL;
    fl_rules_t *rs = NULL;
    char *text = NULL;
    size_t len, plen;
    uint64_t checked = 0;
    check_t ck = {0};
    int n, rc = fl_cli_options(&fl_cmd_rules_check_options, &o, &o.common, argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    plen = strlen(o.doc_prefix);
    ck.max = (uint64_t)o.max_violations;
    if (!(rs = load_rules("check", o.file, &text, &len))) {
        rc = FL_EXIT_FAIL;
        goto out;
    }
    if ((rc = fl_hist_open(&h, "rules", &o.common, NULL)) != FL_EXIT_OK)
        goto out;
    h.quiet = o.quiet;
    if ((n = fl_hist_need_topic(&h, FL_TOPIC_EVENTS)) < 0 ||
        (rc = fl_hist_need_topic(&h, FL_TOPIC_SNAPSHOTS)) < 0) {
        rc = n < 0 ? -n : -rc;
        goto out;
    }
    if (!(docs = fl_hist_docs_new(NULL))) {
        fprintf(stderr, "flushline rules check: out of memory\n");
        rc = FL_EXIT_FAIL;
        goto out;
    }
    fl_hist_progress_begin(&h, n);
    for (int32_t p = 0; p < n && ck.found < ck.max; p++) {
        /* the current state of every document of the partition */
        fl_hist_rebuild_t rb = {.partition = p, .start = FL_HIST_END,
                                .max_version = UINT64_MAX, .to = FL_HIST_END};
        fl_hist_pos_t pos;
        int err = fl_hist_rebuild(&h, &rb, docs, &pos);
        if (err < 0) {
            fprintf(stderr, "flushline rules check: %s [%d]: %s\n", pos.topic, p,
                    pos.what[0] ? pos.what : fl_hist_strerror(err));
            rc = err == FL_HIST_EKAFKA ? FL_EXIT_UNREACHABLE : FL_EXIT_FAIL;
            fl_hist_progress_end(&h);
            goto out;
        }
        if (check_docs(rs, docs, o.doc_prefix, plen, &ck, &checked) < 0) {
            fprintf(stderr, "flushline rules check: out of memory\n");
            rc = FL_EXIT_FAIL;
            fl_hist_progress_end(&h);
            goto out;
        }
        fl_hist_progress_part_done(&h);
    }
    fl_hist_progress_end(&h);
    fflush(stdout);
    fprintf(stderr, "flushline rules check: %llu documents checked, %llu violations%s\n",
            (unsigned long long)checked, (unsigned long long)ck.found,
            ck.found >= ck.max ? " (stopped at --max-violations)" : "");
    rc = ck.found ? FL_EXIT_FAIL : FL_EXIT_OK;
out:
    fl_part_free(docs);
    fl_hist_close(&h);
    fl_rules_free(rs);
    free(text);
    fl_config_free(cfg);
    return rc;
}

static int cmd_get(int argc, char **argv)
{
    return cmd_get_list(argc, argv, true);
}

static int cmd_list(int argc, char **argv)
{
    return cmd_get_list(argc, argv, false);
}

int fl_cmd_rules(int argc, char **argv)
{
    static const fl_cli_sub_t subs[] = {
        {"put", cmd_put, NULL}, {"get", cmd_get, NULL},
        {"list", cmd_list, NULL}, {"check", cmd_check, NULL},
    };
    static const fl_cli_group_t group = {"flushline rules", "subcommand", help, subs,
                                         sizeof subs / sizeof subs[0]};
    return fl_cli_dispatch(&group, argc, argv);
}
