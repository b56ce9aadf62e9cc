/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topics: create and check the deployment's topics with librdkafka's Admin
 * API (CreateTopics, metadata for partition counts, DescribeConfigs for the
 * cleanup policy). See topics.h.
 */
#include "flushline/topics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_names[FL_TOPIC__COUNT] = {"commands", "events", "snapshots", "signals"};

/* Per-topic settings. Commands and events are kept forever: events are the
 * history (replay, verify) and commands feed `flushline reprocess`. */
typedef struct topic_conf_s {
    const char *cleanup_policy;
    const char *retention_ms;
    const char *max_message_bytes;
} topic_conf_t;

static const topic_conf_t topic_confs[FL_TOPIC__COUNT] = {
    {"delete", "-1", "2097152"},      /* commands: a flush up to the frame limit */
    {"delete", "-1", "8388608"},      /* events: outcomes, sync replies with snapshots */
    {"compact", "-1", "8388608"},     /* snapshots: state (<= 1 MiB cap) + dedup table */
    {"delete", "3600000", "1048576"}, /* signals: ephemeral */
};

size_t fl_events_committed_format(uint64_t version, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%llu", (unsigned long long)version);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

int fl_events_committed_get(const rd_kafka_message_t *msg, uint64_t *version)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t len = 0;
    char text[24], *end;
    unsigned long long v;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, FL_EVENTS_HDR_COMMITTED, &val, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val || len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, val, len);
    text[len] = '\0';
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno || *end)
        return -1;
    *version = (uint64_t)v;
    return 0;
}

void fl_topics_spec_default(fl_topics_spec_t *spec)
{
    spec->prefix = FL_TOPICS_DEFAULT_PREFIX;
    spec->partitions = FL_TOPICS_DEFAULT_PARTITIONS;
    spec->replication_factor = 1;
    spec->timeout_ms = 15000;
}

const char *fl_topic_kind_name(fl_topic_kind_t kind)
{
    return (unsigned)kind < FL_TOPIC__COUNT ? kind_names[kind] : "?";
}

int fl_topic_name(const char *prefix, fl_topic_kind_t kind, char *buf, size_t size)
{
    const char *p;
    int n;
    if ((unsigned)kind >= FL_TOPIC__COUNT || !prefix || !*prefix)
        return -1;
    for (p = prefix; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return -1;
    }
    n = snprintf(buf, size, "%s.%s", prefix, kind_names[kind]);
    if (n < 0 || (size_t)n >= size || n > FL_TOPIC_NAME_MAX)
        return -1;
    return 0;
}

static int names_for(const fl_topics_spec_t *spec, fl_topic_state_t out[FL_TOPIC__COUNT],
                     char *errstr, size_t errstr_size)
{
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        memset(&out[k], 0, sizeof out[k]);
        out[k].partitions = -1;
        if (fl_topic_name(spec->prefix, (fl_topic_kind_t)k, out[k].name, sizeof out[k].name) != 0) {
            snprintf(errstr, errstr_size,
                     "invalid topic prefix \"%s\": use 1-230 of [a-zA-Z0-9._-]", spec->prefix);
            return -1;
        }
    }
    return 0;
}

/* Fills exists/partitions from one metadata request. */
static int read_metadata(rd_kafka_t *rk, const fl_topics_spec_t *spec,
                         fl_topic_state_t out[FL_TOPIC__COUNT], char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, spec->timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "cannot read cluster metadata: %s", rd_kafka_err2str(err));
        return -2;
    }
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        for (int i = 0; i < md->topic_cnt; i++) {
            const struct rd_kafka_metadata_topic *t = &md->topics[i];
            if (strcmp(t->topic, out[k].name) != 0 || t->err)
                continue;
            out[k].exists = 1;
            out[k].partitions = t->partition_cnt;
        }
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* Waits for one admin result event on q. */
static rd_kafka_event_t *wait_event(rd_kafka_queue_t *q, int timeout_ms)
{
    return rd_kafka_queue_poll(q, timeout_ms + 5000);
}

static int read_configs(rd_kafka_t *rk, const fl_topics_spec_t *spec,
                        fl_topic_state_t out[FL_TOPIC__COUNT], char *errstr, size_t errstr_size)
{
    rd_kafka_ConfigResource_t *res[FL_TOPIC__COUNT];
    size_t nres = 0;
    int kind_of[FL_TOPIC__COUNT];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_event_t *ev = NULL;
    int rc = -2;

    rd_kafka_AdminOptions_set_request_timeout(opts, spec->timeout_ms, NULL, 0);
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        if (!out[k].exists)
            continue;
        kind_of[nres] = k;
        res[nres++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, out[k].name);
    }
    if (nres == 0) {
        rc = 0;
        goto fail;
    }
    rd_kafka_DescribeConfigs(rk, res, nres, opts, q);
    ev = wait_event(q, spec->timeout_ms);
    if (!ev || rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "cannot describe topic configs: %s",
                 ev ? rd_kafka_event_error_string(ev) : "timed out");
        goto fail;
    }
    {
        const rd_kafka_DescribeConfigs_result_t *result = rd_kafka_event_DescribeConfigs_result(ev);
        size_t cnt = 0;
        const rd_kafka_ConfigResource_t **rres =
            rd_kafka_DescribeConfigs_result_resources(result, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            const char *rname = rd_kafka_ConfigResource_name(rres[i]);
            size_t ncfg = 0;
            const rd_kafka_ConfigEntry_t **cfgs = rd_kafka_ConfigResource_configs(rres[i], &ncfg);
            for (size_t r = 0; r < nres; r++) {
                int k = kind_of[r];
                if (strcmp(rname, out[k].name) != 0)
                    continue;
                for (size_t c = 0; c < ncfg; c++) {
                    const char *val = rd_kafka_ConfigEntry_value(cfgs[c]);
                    if (strcmp(rd_kafka_ConfigEntry_name(cfgs[c]), "cleanup.policy") == 0 && val)
                        snprintf(out[k].cleanup_policy, sizeof out[k].cleanup_policy, "%s", val);
                }
            }
        }
    }
    rc = 0;
fail:
    if (ev)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; i < nres; i++)
        rd_kafka_ConfigResource_destroy(res[i]);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return rc;
}

int fl_topics_check(rd_kafka_t *rk, const fl_topics_spec_t *spec,
                    fl_topic_state_t out[FL_TOPIC__COUNT], char *errstr, size_t errstr_size)
{
    int rc;
    const char *first = NULL;
    if ((rc = names_for(spec, out, errstr, errstr_size)) != 0)
        return rc;
    if ((rc = read_metadata(rk, spec, out, errstr, errstr_size)) != 0)
        return rc;
    if ((rc = read_configs(rk, spec, out, errstr, errstr_size)) != 0)
        return rc;
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        fl_topic_state_t *t = &out[k];
        if (!t->exists)
            snprintf(t->problem, sizeof t->problem,
                     "missing (run `flushline topics create --prefix %s`)", spec->prefix);
        else if (t->partitions != spec->partitions)
            snprintf(t->problem, sizeof t->problem, "has %d partitions, expected %d",
                     t->partitions, spec->partitions);
        else if (k == FL_TOPIC_SNAPSHOTS && strstr(t->cleanup_policy, "compact") == NULL)
            snprintf(t->problem, sizeof t->problem, "cleanup.policy is \"%s\", expected compact",
                     t->cleanup_policy);
        if (t->problem[0] && !first) {
            first = t->name;
            snprintf(errstr, errstr_size, "topic %s %s", t->name, t->problem);
        }
    }
    return first ? -1 : 0;
}

/* -1 when a topic of a CreateTopics result failed for another reason than
 * existing already (another creator may have won the race: then it is
 * checked after). */
static int check_created(rd_kafka_event_t *ev, char *errstr, size_t errstr_size)
{
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(tr[i]);
        if (terr && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(errstr, errstr_size, "cannot create %s: %s", rd_kafka_topic_result_name(tr[i]),
                     rd_kafka_topic_result_error_string(tr[i]));
            return -1;
        }
    }
    return 0;
}

/* Whether a topic this call created is not fully visible yet: missing from
 * the metadata, or from the answer of the broker that described its configs
 * (on a cluster a new topic reaches each broker in its own time). */
static bool still_settling(const fl_topic_state_t out[FL_TOPIC__COUNT], unsigned created)
{
    for (int k = 0; k < FL_TOPIC__COUNT; k++)
        if (!out[k].exists || ((created >> k) & 1u && !out[k].cleanup_policy[0]))
            return true;
    return false;
}

/* Metadata and configs may lag creation by a moment: checks until the
 * deadline while what was created is still settling. */
static int wait_created(rd_kafka_t *rk, const fl_topics_spec_t *spec, unsigned created,
                        fl_topic_state_t out[FL_TOPIC__COUNT], char *errstr, size_t errstr_size)
{
    int waited = 0, rc;
    for (;;) {
        rc = fl_topics_check(rk, spec, out, errstr, errstr_size);
        if (rc == 0 || waited >= spec->timeout_ms || !still_settling(out, created))
            return rc;
        rd_kafka_poll(rk, 100);
        waited += 100;
    }
}

int fl_topics_create(rd_kafka_t *rk, const fl_topics_spec_t *spec,
                     fl_topic_state_t out[FL_TOPIC__COUNT], char *errstr, size_t errstr_size)
{
    rd_kafka_NewTopic_t *nt[FL_TOPIC__COUNT];
    size_t nnew = 0;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    char err[512];
    unsigned created = 0; /* kinds this call creates */
    int rc;

    if (spec->partitions < 1 || spec->partitions > 10000) {
        snprintf(errstr, errstr_size, "partitions must be 1-10000, got %d", spec->partitions);
        return -1;
    }
    if ((rc = names_for(spec, out, errstr, errstr_size)) != 0)
        return rc;
    if ((rc = read_metadata(rk, spec, out, errstr, errstr_size)) != 0)
        return rc;
    for (int k = 0; k < FL_TOPIC__COUNT; k++) {
        const topic_conf_t *tc = &topic_confs[k];
        if (out[k].exists)
            continue;
        nt[nnew] = rd_kafka_NewTopic_new(out[k].name, spec->partitions, spec->replication_factor,
                                         err, sizeof err);
        if (!nt[nnew]) {
            snprintf(errstr, errstr_size, "topic %s: %s", out[k].name, err);
            rc = -1;
            goto fail;
        }
        rd_kafka_NewTopic_set_config(nt[nnew], "cleanup.policy", tc->cleanup_policy);
        rd_kafka_NewTopic_set_config(nt[nnew], "retention.ms", tc->retention_ms);
        rd_kafka_NewTopic_set_config(nt[nnew], "max.message.bytes", tc->max_message_bytes);
        rd_kafka_NewTopic_set_config(nt[nnew], "message.timestamp.type", "CreateTime");
        created |= 1u << k;
        nnew++;
    }
    if (nnew > 0) {
        q = rd_kafka_queue_new(rk);
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_request_timeout(opts, spec->timeout_ms, NULL, 0);
        rd_kafka_AdminOptions_set_operation_timeout(opts, spec->timeout_ms, NULL, 0);
        rd_kafka_CreateTopics(rk, nt, nnew, opts, q);
        ev = wait_event(q, spec->timeout_ms);
        if (!ev || rd_kafka_event_error(ev)) {
            snprintf(errstr, errstr_size, "CreateTopics failed: %s",
                     ev ? rd_kafka_event_error_string(ev) : "timed out");
            rc = -2;
            goto fail;
        }
        if ((rc = check_created(ev, errstr, errstr_size)) != 0)
            goto fail;
    }
    rc = wait_created(rk, spec, created, out, errstr, errstr_size);
fail:
    if (ev)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; i < nnew; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
}
