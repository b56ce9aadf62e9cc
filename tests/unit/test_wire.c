/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the wire codec: every vector of schemas/vectors/messages/
 * both ways (JSON -> msgpack bytes, bytes -> bytes, bytes -> JSON), every
 * negative vector's error code, the value vectors, peek, limits and the
 * encoder's own checks; the direct codec paths against the reference tree
 * codec on every vector and on many random messages (canonical, loose and
 * mutated bytes); every message type in both forms through the public entry
 * points (the codec's descriptor table).
 */
#include <jansson.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/wire.h"

static size_t unhex(const char *hex, char **out)
{
    size_t n = strlen(hex) / 2, i;
    char *b = malloc(n + 1);
    for (i = 0; i < n; i++) {
        unsigned x;
        sscanf(hex + 2 * i, "%2x", &x);
        b[i] = (char)x;
    }
    *out = b;
    return n;
}

static json_t *load_vectors(const char *name)
{
    json_error_t jerr;
    char rel[256];
    json_t *j;
    snprintf(rel, sizeof rel, "schemas/vectors/messages/%s", name);
    j = json_load_file(fl_test_source_path(rel), JSON_ALLOW_NUL, &jerr);
    if (!j)
        fprintf(stderr, "%s: %s\n", rel, jerr.text);
    return j;
}

static int ncases_checked;
static int decode_both_ways(fl_wire_dir_t dir, const char *buf, size_t len, int *rc_out);

static void check_message_file(const char *file, fl_wire_dir_t dir)
{
    json_t *root = load_vectors(file), *c;
    size_t i;
    ASSERT_TRUE(root != NULL);
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *hex = json_string_value(json_object_get(c, "msgpack_hex"));
        const char *errname = json_string_value(json_object_get(c, "error"));
        json_t *js = json_object_get(c, "json");
        fl_arena_t *arena = fl_arena_new(4096);
        fl_wire_msg_t msg;
        char errstr[256] = "", *bytes = NULL, *enc = NULL;
        size_t nbytes = 0, enclen;
        int rc;
        fl_test_current = name;
        if (hex)
            nbytes = unhex(hex, &bytes);
        if (errname) {
            int want = fl_code_from_name(errname, strlen(errname));
            const char *text = json_string_value(json_object_get(c, "json_text"));
            ASSERT_GT(want, 0);
            if (text)
                rc = fl_wire_decode(dir, FL_WIRE_JSON, text, strlen(text), NULL, arena, &msg,
                                    errstr, sizeof errstr);
            else
                rc = fl_wire_decode(dir, FL_WIRE_MSGPACK, bytes, nbytes, NULL, arena, &msg,
                                    errstr, sizeof errstr);
            if (rc != -want)
                fprintf(stderr, "%s: got %d (%s)\n", name, rc, errstr);
            ASSERT_EQ(rc, -want);
            ASSERT_TRUE(errstr[0] != '\0');
            if (!text) /* the direct and the tree decoder agree */
                ASSERT_EQ(decode_both_ways(dir, bytes, nbytes, &rc), 0);
        } else {
            char *text = json_dumps(js, JSON_COMPACT);
            json_t *back;
            /* JSON -> struct -> msgpack == vector bytes */
            rc = fl_wire_decode(dir, FL_WIRE_JSON, text, strlen(text), NULL, arena, &msg, errstr,
                                sizeof errstr);
            free(text);
            if (rc)
                fprintf(stderr, "%s: json decode: %s\n", name, errstr);
            ASSERT_EQ(rc, 0);
            ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &enc, &enclen, errstr, sizeof errstr),
                      0);
            ASSERT_MEM_EQ(enc, enclen, bytes, nbytes);
            free(enc);
            /* bytes -> struct -> bytes and -> JSON */
            fl_arena_reset(arena);
            rc = fl_wire_decode(dir, FL_WIRE_MSGPACK, bytes, nbytes, NULL, arena, &msg, errstr,
                                sizeof errstr);
            if (rc)
                fprintf(stderr, "%s: msgpack decode: %s\n", name, errstr);
            ASSERT_EQ(rc, 0);
            ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &enc, &enclen, errstr, sizeof errstr),
                      0);
            ASSERT_MEM_EQ(enc, enclen, bytes, nbytes);
            free(enc);
            /* the reference paths give the same */
            ASSERT_EQ(fl_wire_encode_tree(&msg, FL_WIRE_MSGPACK, &enc, &enclen, errstr,
                                          sizeof errstr), 0);
            ASSERT_MEM_EQ(enc, enclen, bytes, nbytes);
            free(enc);
            ASSERT_EQ(decode_both_ways(dir, bytes, nbytes, &rc), 0);
            ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_JSON, &enc, &enclen, errstr, sizeof errstr), 0);
            back = json_loadb(enc, enclen, JSON_ALLOW_NUL, NULL);
            if (!json_equal(back, js))
                fprintf(stderr, "%s: JSON form differs: %s\n", name, enc);
            ASSERT_TRUE(json_equal(back, js));
            json_decref(back);
            free(enc);
            {
                int type;
                uint32_t version;
                ASSERT_EQ(fl_wire_peek(bytes, nbytes, FL_WIRE_MSGPACK, dir, &type, &version,
                                       errstr, sizeof errstr), 0);
                ASSERT_EQ(type, msg.type);
                ASSERT_EQ(version, 1);
            }
        }
        ncases_checked++;
        free(bytes);
        fl_arena_free(arena);
    }
    json_decref(root);
}

static void test_client_vectors(void) { check_message_file("client.json", FL_WIRE_C2S); }
static void test_server_vectors(void) { check_message_file("server.json", FL_WIRE_S2C); }
static void test_record_vectors(void) { check_message_file("records.json", FL_WIRE_RECORD); }

static int verr_from_name(const char *s)
{
    static const char *names[] = {"", "nomem", "truncated", "type", "utf8", "depth",
                                  "size", "key", "float", "trailing"};
    int i;
    for (i = 1; i < 10; i++)
        if (strcmp(names[i], s) == 0)
            return -i;
    return 0;
}

static void test_value_vectors(void)
{
    json_t *root = load_vectors("values.json"), *c;
    size_t i;
    ASSERT_TRUE(root != NULL);
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *hex = json_string_value(json_object_get(c, "msgpack_hex"));
        const char *in = json_string_value(json_object_get(c, "input_hex"));
        const char *errname = json_string_value(json_object_get(c, "error"));
        json_t *js = json_object_get(c, "json");
        char *bytes, *inb = NULL, *enc;
        size_t n = unhex(hex, &bytes), inn = 0, enclen;
        fl_value_t v;
        long r;
        fl_test_current = name;
        if (errname) {
            int want = verr_from_name(errname);
            ASSERT_NE(want, 0);
            r = fl_value_decode(bytes, n, NULL, NULL, &v);
            if (want == FL_VERR_TRAILING) {
                ASSERT_GT(r, 0);
                ASSERT_LT(r, (long)n);
                fl_value_free(&v);
            } else {
                ASSERT_EQ(r, want);
            }
        } else if (in) {
            inn = unhex(in, &inb);
            ASSERT_EQ(fl_value_decode(inb, inn, NULL, NULL, &v), (long)inn);
            ASSERT_EQ(fl_value_encode(&v, &enc, &enclen), 0);
            ASSERT_MEM_EQ(enc, enclen, bytes, n);
            free(enc);
            fl_value_free(&v);
        } else {
            json_t *back;
            ASSERT_EQ(fl_value_from_json(js, NULL, NULL, &v), 0);
            ASSERT_EQ(fl_value_encode(&v, &enc, &enclen), 0);
            ASSERT_MEM_EQ(enc, enclen, bytes, n);
            free(enc);
            fl_value_free(&v);
            ASSERT_EQ(fl_value_decode(bytes, n, NULL, NULL, &v), (long)n);
            back = fl_value_to_json(&v);
            ASSERT_TRUE(json_equal(back, js));
            json_decref(back);
            fl_value_free(&v);
        }
        ncases_checked++;
        free(bytes);
        free(inb);
    }
    json_decref(root);
}

static void make_flush(fl_flush_t *f, fl_cmd_t *cmds, uint32_t n)
{
    uint32_t i;
    memset(f, 0, sizeof *f);
    f->doc = FL_SLICE("t/doc");
    memset(f->client_id, 0xab, sizeof f->client_id);
    f->seq = 1;
    f->user = FL_SLICE("u");
    for (i = 0; i < n; i++) {
        memset(&cmds[i], 0, sizeof cmds[i]);
        cmds[i].op = FL_OP_INCR;
        cmds[i].path = FL_SLICE("/n");
        cmds[i].has_value = true;
        cmds[i].value = fl_value_int(i);
    }
    f->cmds = cmds;
    f->ncmds = n;
}

static void test_limits(void)
{
    static fl_cmd_t cmds[1001];
    fl_flush_t f;
    fl_wire_msg_t msg;
    fl_arena_t *arena = fl_arena_new(0);
    char *enc, errstr[200];
    size_t enclen;
    fl_wire_limits_t lim = fl_wire_limits_frame;
    make_flush(&f, cmds, 1001);
    msg.type = FL_WT_FLUSH;
    msg.u.flush = f;
    ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_MSGPACK, &enc, &enclen, errstr, sizeof errstr), 0);
    ASSERT_EQ(fl_wire_decode(FL_WIRE_C2S, FL_WIRE_MSGPACK, enc, enclen, NULL, arena, &msg, errstr,
                             sizeof errstr), -FL_CODE_LIMIT);
    lim.max_commands = 2000;
    ASSERT_EQ(fl_wire_decode(FL_WIRE_C2S, FL_WIRE_MSGPACK, enc, enclen, &lim, arena, &msg, errstr,
                             sizeof errstr), 0);
    ASSERT_EQ(msg.u.flush.ncmds, 1001);
    ASSERT_EQ(msg.u.flush.cmds[1000].value.u.i, 1000);
    lim.max_frame = enclen - 1;
    ASSERT_EQ(fl_wire_decode(FL_WIRE_C2S, FL_WIRE_MSGPACK, enc, enclen, &lim, arena, &msg, errstr,
                             sizeof errstr), -FL_CODE_LIMIT);
    free(enc);
    fl_arena_free(arena);
}

static void test_flush_record_roundtrip(void)
{
    fl_cmd_t cmds[3];
    fl_flush_t f;
    fl_wire_msg_t msg;
    fl_arena_t *arena = fl_arena_new(0);
    char *enc, errstr[200];
    size_t enclen;
    make_flush(&f, cmds, 3);
    f.has_if_version = true;
    f.if_version = 9;
    f.atomic = true;
    ASSERT_EQ(fl_wire_encode_flush_record(&f, FL_SLICE("gw-1"), 77, &enc, &enclen, errstr,
                                          sizeof errstr), 0);
    ASSERT_EQ(fl_wire_decode_record(enc, enclen, arena, &msg, errstr, sizeof errstr), 0);
    ASSERT_EQ(msg.type, FL_WT_REC_FLUSH);
    ASSERT_EQ(msg.u.rflush.origin, 77);
    ASSERT_MEM_EQ(msg.u.rflush.gw.ptr, msg.u.rflush.gw.len, "gw-1", 4);
    ASSERT_MEM_EQ(msg.u.rflush.flush.user.ptr, msg.u.rflush.flush.user.len, "u", 1);
    ASSERT_TRUE(msg.u.rflush.flush.atomic);
    ASSERT_EQ(msg.u.rflush.flush.if_version, 9);
    ASSERT_EQ(msg.u.rflush.flush.ncmds, 3);
    ASSERT_EQ(msg.u.rflush.flush.cmds[2].op, FL_OP_INCR);
    ASSERT_MEM_EQ(msg.u.rflush.flush.client_id, 16, f.client_id, 16);
    free(enc);
    /* out-of-range fields are refused by the encoder */
    f.seq = UINT64_MAX;
    ASSERT_EQ(fl_wire_encode_flush_record(&f, FL_SLICE("gw-1"), 77, &enc, &enclen, errstr,
                                          sizeof errstr), -FL_CODE_BAD_FRAME);
    f.seq = 1;
    f.doc.len = 0;
    ASSERT_EQ(fl_wire_encode_flush_record(&f, FL_SLICE("gw-1"), 77, &enc, &enclen, errstr,
                                          sizeof errstr), -FL_CODE_BAD_DOC_ID);
    fl_arena_free(arena);
}

static void test_peek(void)
{
    int type;
    uint32_t version;
    char errstr[100];
    /* {"t":"ping","v":1} and variants */
    const char ok[] = "\x82\xa1t\xa4ping\xa1v\x01";
    const char v2[] = "\x82\xa1t\xa4ping\xa1v\x02";
    const char unk[] = "\x82\xa1t\xa4pong\xa1v\x01";
    const char extra[] = "\x83\xa1x\x92\x81\xa1q\xc0\xc3\xa1t\xa4ping\xa1v\x01";
    ASSERT_EQ(fl_wire_peek(ok, sizeof ok - 1, FL_WIRE_MSGPACK, FL_WIRE_C2S, &type, &version,
                           errstr, sizeof errstr), 0);
    ASSERT_EQ(type, FL_WT_PING);
    ASSERT_EQ(fl_wire_peek(extra, sizeof extra - 1, FL_WIRE_MSGPACK, FL_WIRE_C2S, &type, &version,
                           errstr, sizeof errstr), 0);
    ASSERT_EQ(type, FL_WT_PING);
    ASSERT_EQ(fl_wire_peek(v2, sizeof v2 - 1, FL_WIRE_MSGPACK, FL_WIRE_C2S, &type, &version,
                           errstr, sizeof errstr), -FL_CODE_UNSUPPORTED_VERSION);
    ASSERT_EQ(version, 2);
    ASSERT_EQ(fl_wire_peek(unk, sizeof unk - 1, FL_WIRE_MSGPACK, FL_WIRE_C2S, &type, &version,
                           errstr, sizeof errstr), -FL_CODE_UNKNOWN_TYPE);
    ASSERT_EQ(fl_wire_peek(unk, sizeof unk - 1, FL_WIRE_MSGPACK, FL_WIRE_S2C, &type, &version,
                           errstr, sizeof errstr), 0);
    ASSERT_EQ(type, FL_WT_PONG);
    ASSERT_EQ(fl_wire_peek(ok, 5, FL_WIRE_MSGPACK, FL_WIRE_C2S, &type, &version, errstr,
                           sizeof errstr), -FL_CODE_BAD_FRAME);
    ASSERT_EQ(fl_wire_peek("{\"v\":1,\"t\":\"sync\"}", 18, FL_WIRE_JSON, FL_WIRE_RECORD, &type,
                           &version, errstr, sizeof errstr), 0);
    ASSERT_EQ(type, FL_WT_REC_SYNC);
}

static void test_names(void)
{
    int i;
    for (i = 0; i < FL_CODE__COUNT; i++) {
        const char *n = fl_code_name(i);
        if (strcmp(n, "unknown") == 0)
            continue;
        ASSERT_EQ(fl_code_from_name(n, strlen(n)), i);
    }
    ASSERT_EQ(fl_code_from_name("nope", 4), -1);
    ASSERT_STR_EQ(fl_code_name(FL_CODE_GAP), "gap");
    ASSERT_STR_EQ(fl_close_name(FL_CLOSE_SLOW_CONSUMER), "slow_consumer");
    for (i = FL_OP_ADD; i <= FL_OP_CREATE; i++)
        ASSERT_EQ(fl_op_from_name(fl_op_name(i), strlen(fl_op_name(i))), i);
    ASSERT_TRUE(fl_op_name(0) == NULL);
    ASSERT_EQ(fl_op_from_name("ad", 2), 0);
    for (i = 1; i < FL_WT__COUNT; i++) {
        const char *n = fl_wire_type_name(i);
        ASSERT_EQ(fl_wire_type_from_name(fl_wire_type_dir(i), n, strlen(n)), i);
    }
}

/* ---- direct paths against the reference tree codec ---------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint32_t rndn(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

/* Numbers around every boundary of the msgpack int forms; rarely out of
 * range (above INT64_MAX) when bad is set. */
static uint64_t rnd_u64(bool bad)
{
    static const uint64_t edges[] = {0, 1, 31, 127, 128, 255, 256, 65535, 65536,
                                     0xffffffffu, 0x100000000ull, INT64_MAX};
    if (bad && rndn(200) == 0)
        return (uint64_t)INT64_MAX + 1 + rndn(3);
    if (rndn(3) == 0)
        return edges[rndn(sizeof edges / sizeof edges[0])];
    return rnd() >> rndn(64);
}

static int64_t rnd_i64(void)
{
    static const int64_t edges[] = {-1, -32, -33, -128, -129, -32768, -32769, INT32_MIN,
                                    (int64_t)INT32_MIN - 1, INT64_MIN};
    if (rndn(2))
        return edges[rndn(sizeof edges / sizeof edges[0])];
    return (int64_t)rnd_u64(false);
}

/* A string around the str header boundaries; rarely invalid UTF-8. */
static fl_slice_t rnd_str(fl_arena_t *arena, bool bad)
{
    static const uint32_t lens[] = {0, 1, 2, 5, 16, 31, 32, 33, 100, 255, 256, 300};
    uint32_t n = rndn(500) == 0 ? 65536 + rndn(3) : lens[rndn(sizeof lens / sizeof lens[0])];
    char *p = fl_arena_alloc(arena, n + 1);
    uint32_t i;
    for (i = 0; i < n; i++)
        p[i] = (char)('a' + rndn(26));
    if (n >= 2 && rndn(4) == 0)
        memcpy(p + rndn(n - 1), "\xc3\xa9", 2); /* é */
    if (bad && n && rndn(100) == 0)
        p[rndn(n)] = (char)0xff;
    return (fl_slice_t){n ? p : "", n};
}

static fl_value_t rnd_value(fl_arena_t *arena, int depth)
{
    fl_value_t v = fl_value_nil();
    uint32_t i, n;
    switch (rndn(depth > 3 ? 7 : 9)) {
    case 0:
        return v;
    case 1:
        v.type = FL_BOOL;
        v.u.b = rndn(2);
        return v;
    case 2:
    case 3:
        return fl_value_int(rndn(2) ? rnd_i64() : (int64_t)rnd_u64(false));
    case 4:
        v.type = FL_FLOAT;
        v.u.f = (double)rnd_i64() / 7.0;
        return v;
    case 5: {
        fl_slice_t s = rnd_str(arena, false);
        v.type = FL_STR;
        v.len = (uint32_t)s.len;
        v.u.str = (char *)s.ptr;
        return v;
    }
    case 6: {
        fl_slice_t s = rnd_str(arena, false);
        v.type = FL_BIN;
        v.len = (uint32_t)s.len;
        v.u.str = (char *)s.ptr;
        return v;
    }
    case 7:
        n = rndn(3) ? rndn(4) : 14 + rndn(4);
        v.type = FL_ARRAY;
        v.len = n;
        v.u.items = fl_arena_alloc(arena, (n + 1) * sizeof(fl_value_t));
        for (i = 0; i < n; i++)
            v.u.items[i] = rnd_value(arena, depth + 1);
        return v;
    default:
        /* keys k000, k001, ... in bytewise order, as a canonical map keeps them */
        n = rndn(3) ? rndn(4) : 14 + rndn(4);
        v.type = FL_MAP;
        v.len = n;
        v.u.ents = fl_arena_alloc(arena, (n + 1) * sizeof(fl_entry_t));
        for (i = 0; i < n; i++) {
            char *k = fl_arena_alloc(arena, 8);
            snprintf(k, 8, "k%03u", i * (1 + rndn(3)) + i);
            v.u.ents[i].key = k;
            v.u.ents[i].klen = 4;
            v.u.ents[i].val = rnd_value(arena, depth + 1);
        }
        for (i = 1; i < n; i++) /* keep keys strictly increasing */
            snprintf(v.u.ents[i].key, 8, "k%03u", i);
        return v;
    }
}

static fl_cmd_t *rnd_cmds(fl_arena_t *arena, uint32_t n, bool bad)
{
    fl_cmd_t *cmds = fl_arena_alloc(arena, (n + 1) * sizeof(fl_cmd_t));
    uint32_t i;
    for (i = 0; i < n; i++) {
        fl_cmd_t *c = &cmds[i];
        memset(c, 0, sizeof *c);
        c->op = (uint8_t)(1 + rndn(9));
        if (bad && rndn(300) == 0)
            c->op = (uint8_t)(rndn(2) ? 0 : 10 + rndn(5));
        c->path = rnd_str(arena, bad);
        c->from = rndn(3) == 0 ? rnd_str(arena, bad) : (fl_slice_t){"", 0};
        c->key = (fl_slice_t){"", 0};
        if (rndn(4) == 0) {
            c->has_key = true;
            c->key = rnd_str(arena, bad);
        }
        if (rndn(5)) {
            c->has_value = true;
            c->value = rnd_value(arena, 0);
        }
    }
    return cmds;
}

static fl_slice_t rnd_doc(fl_arena_t *arena, bool bad)
{
    static const char chars[] = "abcdefghij/";
    uint32_t n = 1 + rndn(rndn(4) ? 20 : 255), i;
    char *p = fl_arena_alloc(arena, 300);
    if (bad && rndn(100) == 0)
        n = rndn(2) ? 0 : 256;
    for (i = 0; i < n; i++)
        p[i] = chars[rndn(sizeof chars - 1)];
    return (fl_slice_t){p, n};
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* A random message of a directly encoded type (bad: rarely out of range). */
static void rnd_message(fl_arena_t *arena, int type, bool bad, fl_wire_msg_t *msg)
{
    uint32_t i;
    memset(msg, 0, sizeof *msg);
    msg->type = (uint8_t)type;
    switch (type) {
    case FL_WT_OUTCOME:
    case FL_WT_REC_OUTCOME: {
        fl_outcome_t *o = &msg->u.outcome.outcome;
        o->doc = rnd_doc(arena, bad);
        rnd_bytes(o->client_id, FL_CLIENT_ID_LEN);
        o->seq = rnd_u64(bad);
        o->code = (uint16_t)rndn(32);
        o->duplicate = rndn(4) == 0;
        o->version_before = rnd_u64(bad);
        o->version_after = rnd_u64(bad);
        rnd_bytes(o->chain, FL_HASH_LEN);
        o->nresults = rndn(4) ? rndn(5) : rndn(40);
        o->results = fl_arena_alloc(arena, (o->nresults + 1) * sizeof(fl_cmd_result_t));
        for (i = 0; i < o->nresults; i++) {
            fl_cmd_result_t *r = &o->results[i];
            r->code = (uint16_t)(rndn(2) ? FL_CODE_OK : rndn(12));
            r->version = rnd_u64(bad);
            r->has_key = rndn(4) == 0;
            r->key = r->has_key ? rnd_str(arena, bad) : (fl_slice_t){NULL, 0};
            r->rule = rndn(5) == 0 ? FL_SLICE("votes +1") : (fl_slice_t){NULL, 0};
        }
        o->user = rnd_str(arena, bad);
        o->ts_ms = rnd_i64();
        o->napplied = rndn(4) ? rndn(5) : rndn(40);
        o->applied = rnd_cmds(arena, o->napplied, bad);
        msg->u.outcome.gw = rnd_str(arena, bad);
        msg->u.outcome.origin = rnd_u64(bad);
        break;
    }
    case FL_WT_FLUSH:
    case FL_WT_REC_FLUSH: {
        fl_flush_t *f = type == FL_WT_FLUSH ? &msg->u.flush : &msg->u.rflush.flush;
        f->doc = rnd_doc(arena, bad);
        rnd_bytes(f->client_id, FL_CLIENT_ID_LEN);
        f->seq = 1 + rnd_u64(bad) / 2;
        f->base_version = rnd_u64(bad);
        f->has_if_version = rndn(3) == 0;
        f->if_version = rnd_u64(bad);
        f->atomic = rndn(3) == 0;
        f->ncmds = rndn(4) ? rndn(6) : rndn(60);
        f->cmds = rnd_cmds(arena, f->ncmds, bad);
        if (type == FL_WT_REC_FLUSH) {
            f->user = rnd_str(arena, bad);
            msg->u.rflush.gw = rnd_str(arena, false);
            if (msg->u.rflush.gw.len > 255)
                msg->u.rflush.gw.len = 255;
            msg->u.rflush.origin = rnd_u64(bad);
            msg->u.rflush.role = rndn(2) ? FL_SLICE("editor") : (fl_slice_t){"", 0};
        }
        break;
    }
    default: {
        fl_wire_deltas_t *dl = &msg->u.deltas;
        dl->doc = rnd_doc(arena, bad);
        dl->from_version = rnd_u64(false) / 4;
        dl->nitems = 1 + rndn(5);
        dl->items = fl_arena_alloc(arena, dl->nitems * sizeof(fl_wire_delta_t));
        uint64_t v = dl->from_version;
        for (i = 0; i < dl->nitems; i++) {
            fl_wire_delta_t *it = &dl->items[i];
            memset(it, 0, sizeof *it);
            it->ncmds = rndn(6);
            it->cmds = rnd_cmds(arena, it->ncmds, bad);
            v += it->ncmds;
            it->version = v;
            rnd_bytes(it->client_id, FL_CLIENT_ID_LEN);
            it->seq = rnd_u64(bad);
            it->user = rnd_str(arena, bad);
            it->ts_ms = rnd_i64();
            rnd_bytes(it->chain, FL_HASH_LEN);
        }
        break;
    }
    }
}

/* 0 when every direct encoder gives the tree's code and bytes. */
static int encode_both_ways(const fl_wire_msg_t *msg)
{
    char errstr[256], *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    msgpack_sbuffer sa, sb;
    msgpack_packer pa, pb;
    int ra, rb, bad = 0;
    ra = fl_wire_encode(msg, FL_WIRE_MSGPACK, &a, &alen, errstr, sizeof errstr);
    rb = fl_wire_encode_tree(msg, FL_WIRE_MSGPACK, &b, &blen, errstr, sizeof errstr);
    if (ra != rb || (ra == 0 && (alen != blen || memcmp(a, b, alen) != 0)))
        bad = 1;
    free(a);
    a = NULL;
    if (!bad && msg->type == FL_WT_REC_OUTCOME) {
        ra = fl_wire_encode_outcome_record(&msg->u.outcome.outcome, msg->u.outcome.gw,
                                           msg->u.outcome.origin, &a, &alen, errstr,
                                           sizeof errstr);
        if (ra != rb || (ra == 0 && (alen != blen || memcmp(a, b, alen) != 0)))
            bad = 2;
    }
    if (!bad && msg->type == FL_WT_REC_FLUSH) {
        ra = msg->u.rflush.role.len
                 ? fl_wire_encode_rec_flush(&msg->u.rflush, &a, &alen, errstr, sizeof errstr)
                 : fl_wire_encode_flush_record(&msg->u.rflush.flush, msg->u.rflush.gw,
                                               msg->u.rflush.origin, &a, &alen, errstr,
                                               sizeof errstr);
        if (ra != rb || (ra == 0 && (alen != blen || memcmp(a, b, alen) != 0)))
            bad = 3;
    }
    free(a);
    free(b);
    msgpack_sbuffer_init(&sa);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pa, &sa, msgpack_sbuffer_write);
    msgpack_packer_init(&pb, &sb, msgpack_sbuffer_write);
    ra = fl_wire_pack(&pa, msg, errstr, sizeof errstr);
    rb = fl_wire_pack_tree(&pb, msg, errstr, sizeof errstr);
    if (!bad && (ra != rb || sa.size != sb.size || (sa.size && memcmp(sa.data, sb.data, sa.size))))
        bad = 4;
    msgpack_sbuffer_destroy(&sa);
    msgpack_sbuffer_destroy(&sb);
    return bad;
}

static void test_direct_encode_random(void)
{
    static const int types[] = {FL_WT_REC_OUTCOME, FL_WT_OUTCOME, FL_WT_REC_FLUSH, FL_WT_FLUSH,
                                FL_WT_DELTAS};
    fl_arena_t *arena = fl_arena_new(1 << 16);
    int i, ok = 0, refused = 0;
    for (i = 0; i < 10000; i++) {
        fl_wire_msg_t msg;
        int type = types[i % 5];
        char *enc = NULL, errstr[200];
        size_t len;
        fl_arena_reset(arena);
        rnd_message(arena, type, i % 3 == 0, &msg);
        fl_test_current = fl_wire_type_name(type);
        ASSERT_EQ(encode_both_ways(&msg), 0);
        if (fl_wire_encode_tree(&msg, FL_WIRE_MSGPACK, &enc, &len, errstr, sizeof errstr) == 0)
            ok++;
        else
            refused++;
        free(enc);
    }
    /* both kinds were exercised */
    ASSERT_GT(ok, 7500);
    ASSERT_GT(refused, 50);
    fl_arena_free(arena);
}

/* 0 when two decoded messages are the same, by their reference encodings
 * (canonical msgpack: every field, byte for byte). */
static int same_message(const fl_wire_msg_t *a, const fl_wire_msg_t *b)
{
    char errstr[200], *ea = NULL, *eb = NULL;
    size_t la, lb;
    int bad = 0;
    if (a->type != b->type)
        return 1;
    if (fl_wire_encode_tree(a, FL_WIRE_MSGPACK, &ea, &la, errstr, sizeof errstr) != 0 ||
        fl_wire_encode_tree(b, FL_WIRE_MSGPACK, &eb, &lb, errstr, sizeof errstr) != 0 ||
        la != lb || memcmp(ea, eb, la) != 0)
        bad = 2;
    free(ea);
    free(eb);
    return bad;
}

static bool inside(const void *p, const char *buf, size_t len)
{
    return (const char *)p >= buf && (const char *)p < buf + len;
}

/* Decodes buf both ways: 0 when they agree (code, error text, message),
 * and direct-decoded strings do not point into buf. */
static int decode_both_ways(fl_wire_dir_t dir, const char *buf, size_t len, int *rc_out)
{
    static fl_arena_t *aa, *ab;
    fl_wire_msg_t ma, mb;
    char ea[256] = "", eb[256] = "";
    int ra, rb;
    if (!aa) {
        aa = fl_arena_new(1 << 14);
        ab = fl_arena_new(1 << 14);
    }
    fl_arena_reset(aa);
    fl_arena_reset(ab);
    ra = fl_wire_decode(dir, FL_WIRE_MSGPACK, buf, len, NULL, aa, &ma, ea, sizeof ea);
    rb = fl_wire_decode_tree(dir, FL_WIRE_MSGPACK, buf, len, NULL, ab, &mb, eb, sizeof eb);
    *rc_out = ra;
    if (ra != rb || strcmp(ea, eb) != 0)
        return 1;
    if (ra != 0)
        return 0;
    if (ma.type == FL_WT_FLUSH || ma.type == FL_WT_REC_FLUSH) {
        const fl_flush_t *f = ma.type == FL_WT_FLUSH ? &ma.u.flush : &ma.u.rflush.flush;
        if (inside(f->doc.ptr, buf, len) || inside(f->user.ptr, buf, len) || f->ts_ms != 0)
            return 3;
        for (uint32_t i = 0; i < f->ncmds; i++)
            if (inside(f->cmds[i].path.ptr, buf, len))
                return 3;
    }
    return same_message(&ma, &mb) ? 2 : 0;
}

/* A loose msgpack writer: any valid form, not only the canonical one. */
typedef struct lw_s {
    char buf[1 << 16];
    size_t n;
} lw_t;

static void lw_put(lw_t *w, const void *p, size_t n)
{
    if (w->n + n <= sizeof w->buf) {
        memcpy(w->buf + w->n, p, n);
        w->n += n;
    } else {
        w->n = sizeof w->buf + 1; /* overflow: caller skips */
    }
}

static void lw_be(lw_t *w, uint8_t tag, uint64_t v, int width)
{
    uint8_t b[9];
    int i;
    b[0] = tag;
    for (i = width; i > 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    lw_put(w, b, (size_t)width + 1);
}

static void lw_uint(lw_t *w, uint64_t v)
{
    int form = rndn(5);
    if (form == 0 && v <= 0x7f) {
        uint8_t b = (uint8_t)v;
        lw_put(w, &b, 1);
    } else if (form <= 1 && v <= 0xff) {
        lw_be(w, rndn(2) ? 0xcc : 0xd0, v, 1); /* int8 only when it fits */
        if (w->buf[w->n - 2] == (char)0xd0 && v > 0x7f)
            w->buf[w->n - 2] = (char)0xcc;
    } else if (form <= 2 && v <= 0xffff) {
        lw_be(w, 0xcd, v, 2);
    } else if (form <= 3 && v <= 0xffffffffu) {
        lw_be(w, 0xce, v, 4);
    } else {
        lw_be(w, rndn(2) ? 0xcf : 0xd3, v, 8);
    }
}

static void lw_str(lw_t *w, fl_slice_t s)
{
    int form = rndn(4);
    if (form == 0 && s.len < 32) {
        uint8_t b = (uint8_t)(0xa0 | s.len);
        lw_put(w, &b, 1);
    } else if (form <= 1 && s.len <= 0xff) {
        lw_be(w, 0xd9, s.len, 1);
    } else if (form <= 2 && s.len <= 0xffff) {
        lw_be(w, 0xda, s.len, 2);
    } else {
        lw_be(w, 0xdb, s.len, 4);
    }
    lw_put(w, s.ptr, s.len);
}

static void lw_count(lw_t *w, uint8_t fix, uint8_t tag16, uint32_t n)
{
    int form = rndn(3);
    if (form == 0 && n < 16) {
        uint8_t b = (uint8_t)(fix | n);
        lw_put(w, &b, 1);
    } else if (form <= 1 && n <= 0xffff) {
        lw_be(w, tag16, n, 2);
    } else {
        lw_be(w, (uint8_t)(tag16 + 1), n, 4);
    }
}

static void lw_key(lw_t *w, const char *k)
{
    lw_str(w, (fl_slice_t){k, strlen(k)});
}

static void lw_value(lw_t *w, const fl_value_t *v)
{
    char *enc;
    size_t len;
    if (fl_value_encode(v, &enc, &len) == 0) {
        lw_put(w, enc, len);
        free(enc);
    }
}

static void lw_nil(lw_t *w)
{
    lw_put(w, "\xc0", 1);
}

/* A flush (record) map with keys in random order, any forms, sometimes nil
 * optionals, an unknown key, a repeated key or a wrong type. */
static void lw_flush(lw_t *w, const fl_flush_t *f, bool record, fl_slice_t gw, uint64_t origin)
{
    int order[16], nk = 0, i, extra = rndn(12);
    for (i = 0; i < (record ? 12 : 9); i++)
        order[nk++] = i;
    if (extra == 0)
        order[nk++] = 12; /* unknown key */
    if (extra == 1)
        order[nk++] = rndn(9); /* repeated key */
    for (i = nk - 1; i > 0; i--) {
        int j = rndn(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    lw_count(w, 0x80, 0xde, (uint32_t)nk);
    for (i = 0; i < nk; i++) {
        switch (order[i]) {
        case 0:
            lw_key(w, "v");
            lw_uint(w, extra == 2 ? 2 : FL_WIRE_VERSION);
            break;
        case 1:
            lw_key(w, "t");
            lw_str(w, extra == 3 ? FL_SLICE("flusH") : FL_SLICE("flush"));
            break;
        case 2:
            lw_key(w, "doc");
            lw_str(w, f->doc);
            break;
        case 3:
            lw_key(w, "client_id");
            if (rndn(3) == 0) /* bin16 */
                lw_be(w, 0xc5, FL_CLIENT_ID_LEN, 2);
            else
                lw_be(w, 0xc4, FL_CLIENT_ID_LEN - (extra == 4), 1);
            lw_put(w, f->client_id, FL_CLIENT_ID_LEN - (extra == 4));
            break;
        case 4:
            lw_key(w, "seq");
            lw_uint(w, extra == 5 ? 0 : f->seq);
            break;
        case 5:
            lw_key(w, "base_version");
            lw_uint(w, f->base_version);
            break;
        case 6:
            lw_key(w, "if_version");
            if (f->has_if_version)
                lw_uint(w, f->if_version);
            else
                lw_nil(w);
            break;
        case 7:
            lw_key(w, "atomic");
            lw_put(w, f->atomic ? "\xc3" : rndn(2) ? "\xc2" : "\xc0", 1);
            break;
        case 8: {
            uint32_t c;
            lw_key(w, "commands");
            lw_count(w, 0x90, 0xdc, f->ncmds);
            for (c = 0; c < f->ncmds; c++) {
                const fl_cmd_t *cmd = &f->cmds[c];
                bool nilfrom = !cmd->from.len && rndn(3) == 0;
                bool nilkey = !cmd->has_key && rndn(3) == 0;
                const char *op = fl_op_name(cmd->op);
                lw_count(w, 0x80, 0xde,
                         2u + (cmd->from.len || nilfrom) + (cmd->has_key || nilkey) +
                             cmd->has_value);
                if (cmd->has_value) {
                    lw_key(w, "value");
                    lw_value(w, &cmd->value);
                }
                lw_key(w, "path");
                lw_str(w, cmd->path);
                if (cmd->has_key || nilkey) {
                    lw_key(w, "key");
                    if (nilkey)
                        lw_nil(w);
                    else
                        lw_str(w, cmd->key);
                }
                lw_key(w, "op");
                lw_str(w, op ? (fl_slice_t){op, strlen(op)} : FL_SLICE("nope"));
                if (cmd->from.len || nilfrom) {
                    lw_key(w, "from");
                    if (nilfrom)
                        lw_nil(w);
                    else
                        lw_str(w, cmd->from);
                }
            }
            break;
        }
        case 9:
            lw_key(w, "user");
            lw_str(w, f->user);
            break;
        case 10:
            lw_key(w, "gw");
            lw_str(w, gw);
            break;
        case 11:
            lw_key(w, "origin");
            lw_uint(w, origin);
            break;
        default:
            lw_key(w, "zz_future");
            lw_uint(w, 7);
            break;
        }
    }
}

static void test_direct_decode_random(void)
{
    fl_arena_t *arena = fl_arena_new(1 << 16);
    static lw_t w;
    int i, k, accepted = 0, refused = 0, rc;
    for (i = 0; i < 4000; i++) {
        fl_wire_msg_t msg;
        bool record = i % 2 == 0;
        fl_wire_dir_t dir = record ? FL_WIRE_RECORD : FL_WIRE_C2S;
        char *enc = NULL, errstr[200];
        size_t len;
        fl_arena_reset(arena);
        rnd_message(arena, record ? FL_WT_REC_FLUSH : FL_WT_FLUSH, i % 4 == 0, &msg);
        fl_test_current = record ? "flush record" : "flush frame";
        /* the canonical bytes, then mutations of them */
        if (fl_wire_encode_tree(&msg, FL_WIRE_MSGPACK, &enc, &len, errstr, sizeof errstr) == 0) {
            ASSERT_EQ(decode_both_ways(dir, enc, len, &rc), 0);
            for (k = 0; k < 10; k++) {
                char *m = malloc(len + 1);
                size_t mlen = len, at = rndn((uint32_t)len);
                memcpy(m, enc, len);
                switch (rndn(4)) {
                case 0:
                    m[at] = (char)rnd();
                    break;
                case 1:
                    m[at] ^= (char)(1 << rndn(8));
                    break;
                case 2:
                    mlen = at;
                    break;
                default:
                    memmove(m + at + 1, m + at, len - at);
                    m[at] = (char)rnd();
                    mlen = len + 1;
                    break;
                }
                ASSERT_EQ(decode_both_ways(dir, m, mlen, &rc), 0);
                free(m);
            }
        }
        free(enc);
        /* loose but mostly valid forms */
        w.n = 0;
        lw_flush(&w, record ? &msg.u.rflush.flush : &msg.u.flush, record, msg.u.rflush.gw,
                 msg.u.rflush.origin);
        if (w.n > sizeof w.buf)
            continue;
        ASSERT_EQ(decode_both_ways(dir, w.buf, w.n, &rc), 0);
        if (rc == 0)
            accepted++;
        else
            refused++;
    }
    ASSERT_GT(accepted, 1300);
    ASSERT_GT(refused, 300);
    fl_arena_free(arena);
}

/* Boundaries the random inputs rarely reach: nesting of command values at
 * the depth limit (default and custom limits), and envelope field limits. */
static void test_direct_decode_edges(void)
{
    fl_arena_t *arena = fl_arena_new(1 << 16);
    fl_cmd_t cmds[2];
    fl_flush_t f;
    fl_wire_msg_t msg;
    char *enc, errstr[200];
    size_t len;
    int k, rc, accepted = 0;
    for (k = 60; k <= 76; k++) {
        fl_value_t v = fl_value_int(1);
        int d;
        fl_arena_reset(arena);
        for (d = 0; d < k; d++) {
            fl_value_t *inner = fl_arena_alloc(arena, sizeof *inner);
            *inner = v;
            v = fl_value_nil();
            v.type = d % 2 ? FL_ARRAY : FL_MAP;
            v.len = 1;
            if (v.type == FL_ARRAY) {
                v.u.items = inner;
            } else {
                v.u.ents = fl_arena_alloc(arena, sizeof(fl_entry_t));
                v.u.ents[0].key = "k";
                v.u.ents[0].klen = 1;
                v.u.ents[0].val = *inner;
            }
        }
        make_flush(&f, cmds, 2);
        cmds[1].value = v;
        msg.type = FL_WT_REC_FLUSH;
        msg.u.rflush.flush = f;
        msg.u.rflush.gw = FL_SLICE("g");
        msg.u.rflush.origin = 1;
        msg.u.rflush.role = (fl_slice_t){"", 0};
        ASSERT_EQ(fl_wire_encode_tree(&msg, FL_WIRE_MSGPACK, &enc, &len, errstr, sizeof errstr), 0);
        ASSERT_EQ(decode_both_ways(FL_WIRE_RECORD, enc, len, &rc), 0);
        accepted += rc == 0;
        free(enc);
        msg.type = FL_WT_FLUSH;
        msg.u.flush = f;
        ASSERT_EQ(fl_wire_encode_tree(&msg, FL_WIRE_MSGPACK, &enc, &len, errstr, sizeof errstr), 0);
        ASSERT_EQ(decode_both_ways(FL_WIRE_C2S, enc, len, &rc), 0);
        {
            fl_wire_limits_t lim = fl_wire_limits_frame;
            fl_wire_msg_t ma, mb;
            int ra, rb;
            lim.max_depth = (uint32_t)k - 6;
            ra = fl_wire_decode(FL_WIRE_C2S, FL_WIRE_MSGPACK, enc, len, &lim, arena, &ma, errstr,
                                sizeof errstr);
            rb = fl_wire_decode_tree(FL_WIRE_C2S, FL_WIRE_MSGPACK, enc, len, &lim, arena, &mb,
                                     errstr, sizeof errstr);
            ASSERT_EQ(ra, rb);
            lim.max_depth = (uint32_t)k - 5;
            ra = fl_wire_decode(FL_WIRE_C2S, FL_WIRE_MSGPACK, enc, len, &lim, arena, &ma, errstr,
                                sizeof errstr);
            rb = fl_wire_decode_tree(FL_WIRE_C2S, FL_WIRE_MSGPACK, enc, len, &lim, arena, &mb,
                                     errstr, sizeof errstr);
            ASSERT_EQ(ra, rb);
        }
        free(enc);
    }
    ASSERT_GT(accepted, 0);
    ASSERT_LT(accepted, 17);
    /* envelope limits: doc 255/256 bytes, gw 255/256, op names, seq range */
    {
        static const struct {
            const char *field;
            int what;
        } cases[] = {{"doc", 255}, {"doc", 256}, {"gw", 255}, {"gw", 256}};
        char big[300];
        int c;
        memset(big, 'x', sizeof big);
        for (c = 0; c < 4; c++) {
            make_flush(&f, cmds, 1);
            msg.type = FL_WT_REC_FLUSH;
            msg.u.rflush.flush = f;
            msg.u.rflush.gw = FL_SLICE("g");
            msg.u.rflush.origin = 1;
            msg.u.rflush.role = (fl_slice_t){"", 0};
        msg.u.rflush.role = (fl_slice_t){"", 0};
            if (strcmp(cases[c].field, "doc") == 0)
                msg.u.rflush.flush.doc = (fl_slice_t){big, (size_t)cases[c].what};
            else
                msg.u.rflush.gw = (fl_slice_t){big, (size_t)cases[c].what};
            /* the tree encoder checks doc ids: write a 256-byte one by hand */
            if (cases[c].what == 256 && strcmp(cases[c].field, "doc") == 0) {
                msg.u.rflush.flush.doc.len = 255;
                ASSERT_EQ(fl_wire_encode_tree(&msg, FL_WIRE_MSGPACK, &enc, &len, errstr,
                                              sizeof errstr), 0);
                /* str8 of 255 -> str16 of 256: two more bytes */
                char *p = memmem(enc, len, "\xd9\xff", 2), *m = malloc(len + 2);
                ASSERT_TRUE(p != NULL);
                size_t at = (size_t)(p - enc);
                memcpy(m, enc, at);
                m[at] = (char)0xda;
                m[at + 1] = 0x01;
                m[at + 2] = 0x00;
                memcpy(m + at + 3, enc + at + 2, len - at - 2);
                m[at + 3 + 255] = 'x';
                memcpy(m + at + 3 + 256, enc + at + 2 + 255, len - at - 2 - 255);
                ASSERT_EQ(decode_both_ways(FL_WIRE_RECORD, m, len + 2, &rc), 0);
                ASSERT_EQ(rc, -FL_CODE_BAD_DOC_ID);
                free(m);
                free(enc);
                continue;
            }
            ASSERT_EQ(fl_wire_encode_tree(&msg, FL_WIRE_MSGPACK, &enc, &len, errstr, sizeof errstr),
                      0);
            ASSERT_EQ(decode_both_ways(FL_WIRE_RECORD, enc, len, &rc), 0);
            ASSERT_EQ(rc, cases[c].what == 255 ? 0 : -FL_CODE_BAD_FRAME);
            free(enc);
        }
    }
    fl_arena_free(arena);
}

/* ---- every type through the descriptor table ---------------------------- */

/* A number every uint64 field accepts (at most INT64_MAX). */
static uint64_t rnd_ok(void)
{
    return rnd_u64(false) & (uint64_t)INT64_MAX;
}

/* A valid string of at most max bytes. */
static fl_slice_t rnd_str_max(fl_arena_t *arena, size_t max)
{
    fl_slice_t s = rnd_str(arena, false);
    if (s.len > max)
        s.len = max;
    /* a cut may split the two-byte é: drop its lead byte */
    if (s.len && ((unsigned char)s.ptr[s.len - 1] & 0xe0) == 0xc0)
        s.len--;
    return s;
}

static fl_value_t rnd_map(fl_arena_t *arena)
{
    fl_value_t v = rnd_value(arena, 0);
    if (v.type != FL_MAP) {
        v = fl_value_nil();
        v.type = FL_MAP;
    }
    return v;
}

/* Consecutive deltas from version from; the version after the last. */
static uint64_t rnd_items(fl_arena_t *arena, uint64_t from, uint32_t n, fl_wire_delta_t **out)
{
    fl_wire_delta_t *items = fl_arena_alloc(arena, (n + 1) * sizeof *items);
    uint32_t i;
    for (i = 0; i < n; i++) {
        fl_wire_delta_t *it = &items[i];
        memset(it, 0, sizeof *it);
        it->ncmds = rndn(4);
        it->cmds = rnd_cmds(arena, it->ncmds, false);
        from += it->ncmds;
        it->version = from;
        rnd_bytes(it->client_id, FL_CLIENT_ID_LEN);
        it->seq = rnd_ok();
        it->user = rnd_str(arena, false);
        it->ts_ms = rnd_i64();
        rnd_bytes(it->chain, FL_HASH_LEN);
    }
    *out = items;
    return from;
}

/* An outcome body the decoder accepts: versions in order, as many applied
 * commands as the versions say. */
static void rnd_outcome(fl_arena_t *arena, fl_outcome_t *o)
{
    uint32_t i;
    memset(o, 0, sizeof *o);
    o->doc = rnd_doc(arena, false);
    rnd_bytes(o->client_id, FL_CLIENT_ID_LEN);
    o->seq = rnd_ok();
    o->code = (uint16_t)rndn(0x10000);
    o->duplicate = rndn(4) == 0;
    o->napplied = rndn(5);
    o->applied = rnd_cmds(arena, o->napplied, false);
    o->version_before = rnd_ok() / 2;
    o->version_after = o->version_before + o->napplied;
    rnd_bytes(o->chain, FL_HASH_LEN);
    o->nresults = rndn(6);
    o->results = fl_arena_alloc(arena, (o->nresults + 1) * sizeof(fl_cmd_result_t));
    for (i = 0; i < o->nresults; i++) {
        fl_cmd_result_t *r = &o->results[i];
        memset(r, 0, sizeof *r);
        r->code = (uint16_t)(rndn(2) ? FL_CODE_OK : rndn(12));
        r->version = rnd_ok();
        r->has_key = rndn(3) == 0;
        r->key = r->has_key ? rnd_str(arena, false) : (fl_slice_t){"", 0};
        r->rule = rndn(5) == 0 ? FL_SLICE("votes +1") : (fl_slice_t){NULL, 0};
    }
    o->user = rnd_str(arena, false);
    o->ts_ms = rnd_i64();
}

/* A valid random message of any type (every field within its limits). */
static void rnd_any(fl_arena_t *arena, int type, fl_wire_msg_t *msg)
{
    uint32_t i;
    memset(msg, 0, sizeof *msg);
    msg->type = (uint8_t)type;
    switch (type) {
    case FL_WT_HELLO:
    case FL_WT_AUTH:
        msg->u.hello.token = rnd_str_max(arena, fl_wire_limits_frame.max_token);
        msg->u.hello.client = rnd_str_max(arena, 128);
        break;
    case FL_WT_SUBSCRIBE:
    case FL_WT_UNSUBSCRIBE:
        msg->u.sub.doc = rnd_doc(arena, false);
        msg->u.sub.has_version = rndn(2);
        msg->u.sub.have_version = rnd_ok();
        break;
    case FL_WT_SIGNAL:
    case FL_WT_SIGNAL_OUT:
    case FL_WT_REC_SIGNAL:
        msg->u.signal.doc = rnd_doc(arena, false);
        msg->u.signal.user = rnd_str(arena, false);
        msg->u.signal.gw = rnd_str_max(arena, 255);
        msg->u.signal.body = rnd_value(arena, 2);
        if (fl_value_encoded_size(&msg->u.signal.body) > fl_wire_limits_frame.max_body)
            msg->u.signal.body = fl_value_int(rnd_i64());
        break;
    case FL_WT_PING:
    case FL_WT_PONG:
        msg->u.ping.has_id = rndn(2);
        msg->u.ping.id = rnd_ok();
        break;
    case FL_WT_WELCOME: {
        fl_wire_welcome_t *w = &msg->u.welcome;
        w->max_frame = (uint32_t)rnd();
        w->max_commands = (uint32_t)rnd();
        w->max_subscriptions = (uint32_t)rnd();
        w->rate = (uint32_t)rnd();
        w->burst = (uint32_t)rnd();
        w->user = rnd_str(arena, false);
        w->server = rnd_str_max(arena, 128);
        w->has_exp = rndn(2);
        w->exp = rnd_i64();
        w->has_leeway = rndn(2);
        w->leeway = (uint32_t)rnd();
        break;
    }
    case FL_WT_SNAPSHOT:
    case FL_WT_REC_SNAPSHOT: {
        fl_wire_snapshot_t *s = &msg->u.snapshot;
        s->doc = rnd_doc(arena, false);
        s->version = rnd_ok();
        rnd_bytes(s->chain, FL_HASH_LEN);
        s->state = rnd_map(arena);
        rnd_bytes(s->digest, FL_HASH_LEN);
        s->events_offset = rnd_i64();
        s->dedup_evicted = rndn(2) ? 0 : rnd_ok();
        s->ndedup = rndn(4);
        s->dedup = fl_arena_alloc(arena, (s->ndedup + 1) * sizeof(fl_wire_dedup_t));
        for (i = 0; i < s->ndedup; i++) {
            rnd_outcome(arena, &s->dedup[i].outcome);
            memcpy(s->dedup[i].client_id, s->dedup[i].outcome.client_id, FL_CLIENT_ID_LEN);
            s->dedup[i].seq = 1 + rnd_ok() / 2;
        }
        break;
    }
    case FL_WT_OUTCOME:
    case FL_WT_REC_OUTCOME:
        rnd_outcome(arena, &msg->u.outcome.outcome);
        msg->u.outcome.gw = rnd_str_max(arena, 255);
        msg->u.outcome.origin = rnd_ok();
        break;
    case FL_WT_NACK: {
        fl_wire_nack_t *n = &msg->u.nack;
        n->doc = rndn(2) ? rnd_doc(arena, false) : (fl_slice_t){"", 0};
        n->has_client_id = rndn(2);
        rnd_bytes(n->client_id, FL_CLIENT_ID_LEN);
        n->has_seq = rndn(2);
        n->seq = rnd_ok();
        n->code = (uint16_t)rndn(0x10000);
        n->has_retry = rndn(2);
        n->retry_after_ms = (uint32_t)rnd();
        n->reason = rnd_str_max(arena, 1024);
        break;
    }
    case FL_WT_ERROR:
        msg->u.error.code = (uint16_t)rndn(0x10000);
        msg->u.error.reason = rnd_str_max(arena, 1024);
        break;
    case FL_WT_REC_SYNC:
        msg->u.sync.doc = rnd_doc(arena, false);
        msg->u.sync.gw = rnd_str_max(arena, 255);
        msg->u.sync.req = rnd_ok();
        msg->u.sync.have_version = rnd_ok();
        break;
    case FL_WT_REC_SYNC_REPLY: {
        fl_wire_sync_reply_t *r = &msg->u.reply;
        r->doc = rnd_doc(arena, false);
        r->gw = rnd_str_max(arena, 255);
        r->req = rnd_ok();
        rnd_bytes(r->chain, FL_HASH_LEN);
        r->has_state = rndn(2);
        if (r->has_state) {
            r->version = rnd_ok();
            r->state = rnd_map(arena);
        } else {
            r->nitems = rndn(4);
            r->version = rnd_items(arena, rnd_ok() / 2, r->nitems, &r->items);
        }
        break;
    }
    case FL_WT_REC_CHECKPOINT:
        msg->u.checkpoint.partition = (uint32_t)(rnd() % ((uint64_t)INT32_MAX + 1));
        msg->u.checkpoint.events_offset = rnd_ok();
        msg->u.checkpoint.nrules = rndn(3);
        msg->u.checkpoint.rules =
            fl_arena_alloc(arena, (msg->u.checkpoint.nrules + 1) * sizeof(fl_wire_rules_t));
        for (uint32_t k = 0; k < msg->u.checkpoint.nrules; k++)
            msg->u.checkpoint.rules[k] = (fl_wire_rules_t){
                rnd_doc(arena, false), true, FL_SLICE("{\"rules\":[]}"), {"", 0}};
        break;
    case FL_WT_REC_RULES:
        msg->u.rules.prefix = rndn(3) ? rnd_doc(arena, false) : (fl_slice_t){"", 0};
        msg->u.rules.has_rules = rndn(4) != 0;
        msg->u.rules.rules = msg->u.rules.has_rules ? FL_SLICE("{\"rules\":[]}")
                                                    : (fl_slice_t){"", 0};
        msg->u.rules.id = rndn(2) ? FL_SLICE("cli@host") : (fl_slice_t){"", 0};
        break;
    case FL_WT_CHANGED:
        msg->u.changed.doc = rnd_doc(arena, false);
        msg->u.changed.version = rnd_ok();
        break;
    case FL_WT_DELTAS:
        msg->u.deltas.doc = rnd_doc(arena, false);
        msg->u.deltas.nitems = 1 + rndn(4);
        msg->u.deltas.from_version = rnd_ok() / 2;
        rnd_items(arena, msg->u.deltas.from_version, msg->u.deltas.nitems,
                  &msg->u.deltas.items);
        break;
    default: { /* flush frame and record */
        fl_flush_t *f = type == FL_WT_FLUSH ? &msg->u.flush : &msg->u.rflush.flush;
        rnd_message(arena, type, false, msg);
        f->seq = 1 + rnd_ok() / 2;
        f->base_version = rnd_ok();
        f->if_version = rnd_ok();
        msg->u.rflush.origin = rnd_ok();
        break;
    }
    }
}

/* Every message type, in both forms, through the public entry points (which
 * pick each type's functions from the descriptor table): the direct and
 * tree encoders agree, a valid message encodes, peeks and decodes (direct
 * and tree paths alike) to a message that encodes to the same bytes, and
 * the JSON form decodes to the message the msgpack form holds. */
static void test_every_type_random(void)
{
    enum { PER_TYPE = 100 };
    fl_arena_t *arena = fl_arena_new(1 << 16), *darena = fl_arena_new(1 << 16);
    int type, i, form, checked = 0;
    for (type = FL_WT_NONE + 1; type < FL_WT__COUNT; type++) {
        fl_wire_dir_t dir = fl_wire_type_dir(type);
        fl_test_current = fl_wire_type_name(type);
        for (i = 0; i < PER_TYPE; i++) {
            fl_wire_msg_t msg, dec, dtree;
            char errstr[256], *enc[2] = {NULL, NULL}, *again;
            size_t enclen[2], againlen;
            int ptype;
            uint32_t version;
            fl_arena_reset(arena);
            rnd_any(arena, type, &msg);
            ASSERT_EQ(encode_both_ways(&msg), 0);
            for (form = FL_WIRE_MSGPACK; form <= FL_WIRE_JSON; form++) {
                fl_wire_form_t f = (fl_wire_form_t)form;
                ASSERT_EQ(fl_wire_encode(&msg, f, &enc[form], &enclen[form], errstr,
                                         sizeof errstr), 0);
                ASSERT_EQ(fl_wire_peek(enc[form], enclen[form], f, dir, &ptype, &version, errstr,
                                       sizeof errstr), 0);
                ASSERT_EQ(ptype, type);
                ASSERT_EQ(version, FL_WIRE_VERSION);
                fl_arena_reset(darena);
                ASSERT_EQ(fl_wire_decode(dir, f, enc[form], enclen[form], NULL, darena, &dec,
                                         errstr, sizeof errstr), 0);
                ASSERT_EQ(dec.type, type);
                ASSERT_EQ(fl_wire_decode_tree(dir, f, enc[form], enclen[form], NULL, darena,
                                              &dtree, errstr, sizeof errstr), 0);
                ASSERT_EQ(same_message(&dec, &dtree), 0);
                /* the decoded message in msgpack is the original's msgpack form */
                ASSERT_EQ(fl_wire_encode_tree(&dec, FL_WIRE_MSGPACK, &again, &againlen, errstr,
                                              sizeof errstr), 0);
                ASSERT_MEM_EQ(again, againlen, enc[0], enclen[0]);
                free(again);
                ASSERT_EQ(fl_wire_encode_tree(&dec, f, &again, &againlen, errstr, sizeof errstr),
                          0);
                ASSERT_MEM_EQ(again, againlen, enc[form], enclen[form]);
                free(again);
                checked++;
            }
            free(enc[0]);
            free(enc[1]);
        }
    }
    ASSERT_EQ(checked, 2 * PER_TYPE * (FL_WT__COUNT - 1));
    fl_arena_free(arena);
    fl_arena_free(darena);
}

int main(void)
{
    RUN(test_client_vectors);
    RUN(test_server_vectors);
    RUN(test_record_vectors);
    RUN(test_value_vectors);
    RUN(test_limits);
    RUN(test_flush_record_roundtrip);
    RUN(test_peek);
    RUN(test_names);
    RUN(test_direct_encode_random);
    RUN(test_direct_decode_random);
    RUN(test_direct_decode_edges);
    RUN(test_every_type_random);
    printf("%d vector cases checked\n", ncases_checked);
    return fl_test_done();
}
