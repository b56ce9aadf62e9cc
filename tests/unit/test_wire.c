/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the wire codec: every vector of schemas/vectors/messages/
 * both ways (JSON -> msgpack bytes, bytes -> bytes, bytes -> JSON), every
 * negative vector's error code, the value vectors, peek, limits and the
 * encoder's own checks.
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
    j = json_load_file(fl_test_source_path(rel), 0, &jerr);
    if (!j)
        fprintf(stderr, "%s: %s\n", rel, jerr.text);
    return j;
}

static int ncases_checked;

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
            ASSERT_EQ(fl_wire_encode(&msg, FL_WIRE_JSON, &enc, &enclen, errstr, sizeof errstr), 0);
            back = json_loadb(enc, enclen, 0, NULL);
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
    printf("%d vector cases checked\n", ncases_checked);
    return fl_test_done();
}
