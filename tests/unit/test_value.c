/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the value model: strict decoding (every rejection), the
 * canonical encoding, limits checked before allocation, UTF-8 edge cases,
 * heap map/array edits, clone/equal, digests and JSON conversion.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>

#include "fl_test.h"
#include "flushline/value.h"

/* Hex string to bytes in a static buffer. */
static const char *unhex(const char *hex, size_t *len)
{
    static char buf[4096];
    size_t n = 0;
    while (hex[0] && hex[1] && n < sizeof buf) {
        unsigned b;
        sscanf(hex, "%2x", &b);
        buf[n++] = (char)b;
        hex += 2;
    }
    *len = n;
    return buf;
}

static long dec(const char *hex, fl_arena_t *arena, fl_value_t *out)
{
    size_t n;
    const char *b = unhex(hex, &n);
    return fl_value_decode(b, n, NULL, arena, out);
}

/* Decodes hex (heap), re-encodes, compares with want_hex. */
static int roundtrip(const char *hex, const char *want_hex)
{
    fl_value_t v;
    char *enc = NULL, want[4096];
    size_t enclen, wantlen, n;
    long r = dec(hex, NULL, &v);
    int ok;
    if (r < 0)
        return (int)r;
    const char *raw = unhex(want_hex, &wantlen); /* sets wantlen before it is used */
    memcpy(want, raw, wantlen);
    (void)n;
    if (fl_value_encode(&v, &enc, &enclen) != 0)
        return -100;
    ok = enclen == wantlen && memcmp(enc, want, enclen) == 0 &&
         fl_value_encoded_size(&v) == enclen;
    free(enc);
    fl_value_free(&v);
    return ok ? 0 : -101;
}

static void test_canonical_ints(void)
{
    ASSERT_EQ(roundtrip("00", "00"), 0);
    ASSERT_EQ(roundtrip("cc05", "05"), 0);          /* uint8 small -> fixint */
    ASSERT_EQ(roundtrip("d3ffffffffffffffff", "ff"), 0); /* int64 -1 -> fixint */
    ASSERT_EQ(roundtrip("cd00ff", "ccff"), 0);
    ASSERT_EQ(roundtrip("d0e0", "e0"), 0);          /* -32 */
    ASSERT_EQ(roundtrip("d0df", "d0df"), 0);        /* -33 */
    ASSERT_EQ(roundtrip("cf7fffffffffffffff", "cf7fffffffffffffff"), 0);
    ASSERT_EQ(roundtrip("d38000000000000000", "d38000000000000000"), 0);
    ASSERT_EQ(roundtrip("ce00010000", "ce00010000"), 0);
    ASSERT_EQ(roundtrip("d2ffff7fff", "d1ff7fff" ""), -101); /* -32769 needs int32 */
    ASSERT_EQ(roundtrip("d2ffff7fff", "d2ffff7fff"), 0);
    ASSERT_EQ(roundtrip("d1ff80", "d080"), 0);      /* -128 */
}

static void test_canonical_other(void)
{
    ASSERT_EQ(roundtrip("ca3f800000", "cb3ff0000000000000"), 0); /* float32 widened */
    ASSERT_EQ(roundtrip("d90161", "a161"), 0);                    /* str8 short -> fixstr */
    ASSERT_EQ(roundtrip("c50001ff", "c401ff"), 0);                /* bin16 -> bin8 */
    ASSERT_EQ(roundtrip("dc0001c0", "91c0"), 0);
    /* unsorted keys sorted: {"b":1,"a":2,"ab":3} -> a, ab, b */
    ASSERT_EQ(roundtrip("83a16201a16102a2616203", "83a16102a2616203a16201"), 0);
    ASSERT_EQ(roundtrip("de0000", "80"), 0);
    ASSERT_EQ(roundtrip("c0", "c0"), 0);
    ASSERT_EQ(roundtrip("c3", "c3"), 0);
}

static void test_rejections(void)
{
    fl_value_t v;
    ASSERT_EQ(dec("d40100", NULL, &v), FL_VERR_TYPE);           /* fixext1 */
    ASSERT_EQ(dec("c70101ff", NULL, &v), FL_VERR_TYPE);         /* ext8 */
    ASSERT_EQ(dec("c1", NULL, &v), FL_VERR_TYPE);
    ASSERT_EQ(dec("cf8000000000000000", NULL, &v), FL_VERR_TYPE);
    ASSERT_EQ(dec("cb7ff8000000000000", NULL, &v), FL_VERR_FLOAT); /* NaN */
    ASSERT_EQ(dec("cb7ff0000000000000", NULL, &v), FL_VERR_FLOAT); /* +Inf */
    ASSERT_EQ(dec("caff800000", NULL, &v), FL_VERR_FLOAT);         /* -Inf f32 */
    ASSERT_EQ(dec("810101", NULL, &v), FL_VERR_KEY);              /* int key */
    ASSERT_EQ(dec("82a16101a16102", NULL, &v), FL_VERR_KEY);      /* duplicate */
    ASSERT_EQ(dec("83a16201a16102a16203", NULL, &v), FL_VERR_KEY); /* dup, unsorted */
    ASSERT_EQ(dec("a2c0af", NULL, &v), FL_VERR_UTF8);
    ASSERT_EQ(dec("81a1ff01", NULL, &v), FL_VERR_UTF8);           /* bad key */
    ASSERT_EQ(dec("a3616263", NULL, &v), 4);
    fl_value_free(&v);
    ASSERT_EQ(dec("a461", NULL, &v), FL_VERR_TRUNCATED);
    ASSERT_EQ(dec("", NULL, &v), FL_VERR_TRUNCATED);
    ASSERT_EQ(dec("92c0", NULL, &v), FL_VERR_TRUNCATED);
    ASSERT_EQ(dec("cd00", NULL, &v), FL_VERR_TRUNCATED);
    ASSERT_EQ(v.type, FL_NIL);
}

static void test_huge_declared_lengths(void)
{
    fl_value_t v;
    fl_limits_t lim = fl_limits_default;
    /* 4 billion items: refused by the item limit before any malloc */
    ASSERT_EQ(dec("ddffffffff", NULL, &v), FL_VERR_SIZE);
    ASSERT_EQ(dec("dfffffffff", NULL, &v), FL_VERR_SIZE);
    ASSERT_EQ(dec("dbffffffff", NULL, &v), FL_VERR_SIZE);
    ASSERT_EQ(dec("c6ffffffff", NULL, &v), FL_VERR_SIZE);
    /* within the limit but more than the remaining bytes */
    ASSERT_EQ(dec("dd000f4240c0c0", NULL, &v), FL_VERR_TRUNCATED);
    ASSERT_EQ(dec("de0100c0c0", NULL, &v), FL_VERR_TRUNCATED);
    {
        size_t n;
        const char *b = unhex("93c0c0c0", &n);
        lim.max_items = 2;
        ASSERT_EQ(fl_value_decode(b, n, &lim, NULL, &v), FL_VERR_SIZE);
        lim = fl_limits_default;
        lim.max_bytes = 3;
        ASSERT_EQ(fl_value_decode(b, n, &lim, NULL, &v), FL_VERR_SIZE);
        lim.max_bytes = 4;
        ASSERT_EQ(fl_value_decode(b, n, &lim, NULL, &v), 4);
        fl_value_free(&v);
        b = unhex("a3616263", &n);
        lim = fl_limits_default;
        lim.max_str = 2;
        ASSERT_EQ(fl_value_decode(b, n, &lim, NULL, &v), FL_VERR_SIZE);
    }
}

static void test_depth_bomb(void)
{
    char buf[100000];
    fl_value_t v;
    fl_limits_t lim = fl_limits_default;
    size_t i;
    memset(buf, 0x91, sizeof buf);
    ASSERT_EQ(fl_value_decode(buf, sizeof buf, NULL, NULL, &v), FL_VERR_DEPTH);
    for (i = 0; i + 2 < sizeof buf; i += 3) {
        buf[i] = (char)0x81;
        buf[i + 1] = (char)0xa1;
        buf[i + 2] = 'k';
    }
    ASSERT_EQ(fl_value_decode(buf, sizeof buf, NULL, NULL, &v), FL_VERR_DEPTH);
    /* exactly max_depth containers are fine */
    memset(buf, 0x91, 64);
    buf[64] = (char)0xc0;
    ASSERT_EQ(fl_value_decode(buf, 65, &lim, NULL, &v), 65);
    fl_value_free(&v);
    ASSERT_EQ(fl_value_decode(buf, 66, &lim, NULL, &v), 65); /* trailing allowed */
    fl_value_free(&v);
    buf[64] = (char)0x91;
    buf[65] = (char)0xc0;
    ASSERT_EQ(fl_value_decode(buf, 66, &lim, NULL, &v), FL_VERR_DEPTH);
}

static void test_utf8(void)
{
    ASSERT_TRUE(fl_utf8_valid("", 0));
    ASSERT_TRUE(fl_utf8_valid("hello world, plain ascii", 24));
    ASSERT_TRUE(fl_utf8_valid("\xc3\xa9", 2));
    ASSERT_TRUE(fl_utf8_valid("\xe2\x82\xac", 3));
    ASSERT_TRUE(fl_utf8_valid("\xf0\x9f\x98\x80", 4));
    ASSERT_TRUE(fl_utf8_valid("\xf4\x8f\xbf\xbf", 4));      /* U+10FFFF */
    ASSERT_TRUE(fl_utf8_valid("\xed\x9f\xbf", 3));          /* U+D7FF */
    ASSERT_TRUE(fl_utf8_valid("\xee\x80\x80", 3));          /* U+E000 */
    ASSERT_TRUE(!fl_utf8_valid("\xc0\x80", 2));             /* overlong NUL */
    ASSERT_TRUE(!fl_utf8_valid("\xc1\xbf", 2));
    ASSERT_TRUE(!fl_utf8_valid("\xe0\x9f\xbf", 3));         /* overlong 3 */
    ASSERT_TRUE(!fl_utf8_valid("\xf0\x8f\xbf\xbf", 4));     /* overlong 4 */
    ASSERT_TRUE(!fl_utf8_valid("\xed\xa0\x80", 3));         /* U+D800 */
    ASSERT_TRUE(!fl_utf8_valid("\xed\xbf\xbf", 3));         /* U+DFFF */
    ASSERT_TRUE(!fl_utf8_valid("\xf4\x90\x80\x80", 4));     /* > U+10FFFF */
    ASSERT_TRUE(!fl_utf8_valid("\xf5\x80\x80\x80", 4));
    ASSERT_TRUE(!fl_utf8_valid("\x80", 1));
    ASSERT_TRUE(!fl_utf8_valid("\xc3", 1));                 /* truncated */
    ASSERT_TRUE(!fl_utf8_valid("\xe2\x82", 2));
    ASSERT_TRUE(!fl_utf8_valid("abcdefgh\xe2\x82", 10));
    ASSERT_TRUE(!fl_utf8_valid("\xff", 1));
    ASSERT_TRUE(fl_utf8_valid("abc\0def", 7)); /* NUL is a valid code point */
}

static void test_arena_decode(void)
{
    fl_arena_t *arena = fl_arena_new(64);
    fl_value_t v;
    int i;
    ASSERT_TRUE(arena != NULL);
    for (i = 0; i < 100; i++) {
        /* {"a":[1,2,"xyz"],"b":{"c":true}} */
        ASSERT_EQ(dec("82a161930102a378797aa16281a163c3", arena, &v), 16);
        fl_arena_reset(arena);
    }
    ASSERT_EQ(dec("82a161930102a378797aa16281a163c3", arena, &v), 16);
    ASSERT_EQ(v.type, FL_MAP);
    ASSERT_EQ(fl_map_get(&v, "a", 1)->len, 3);
    ASSERT_EQ(fl_map_get(&v, "a", 1)->u.items[1].u.i, 2);
    ASSERT_TRUE(fl_map_get(fl_map_get(&v, "b", 1), "c", 1)->u.b);
    ASSERT_TRUE(fl_map_get(&v, "c", 1) == NULL);
    {
        /* big allocations beyond the first block */
        void *p = fl_arena_alloc(arena, 100000);
        ASSERT_TRUE(p != NULL);
        memset(p, 1, 100000);
    }
    fl_arena_free(arena);
    fl_arena_free(NULL);
}

static void test_map_ops(void)
{
    fl_value_t m, v, old;
    char key[16];
    int i;
    bool found;
    fl_value_new_map(&m);
    for (i = 999; i >= 0; i--) {
        snprintf(key, sizeof key, "k%04d", i);
        v = fl_value_int(i);
        ASSERT_EQ(fl_map_set(&m, key, strlen(key), &v), 0);
        ASSERT_EQ(v.type, FL_NIL);
    }
    ASSERT_EQ(m.len, 1000);
    for (i = 1; i < 1000; i++)
        ASSERT_LT(memcmp(m.u.ents[i - 1].key, m.u.ents[i].key, 5), 0);
    ASSERT_EQ(fl_map_get(&m, "k0500", 5)->u.i, 500);
    ASSERT_EQ(fl_map_find(&m, "k0500x", 6, &found), 501);
    ASSERT_TRUE(!found);
    fl_value_new_str(&v, "replaced", 8);
    ASSERT_EQ(fl_map_set(&m, "k0500", 5, &v), 0);
    ASSERT_EQ(m.len, 1000);
    ASSERT_EQ(fl_map_get(&m, "k0500", 5)->type, FL_STR);
    ASSERT_EQ(fl_map_remove(&m, "k0500", 5, &old), 0);
    ASSERT_EQ(old.type, FL_STR);
    fl_value_free(&old);
    ASSERT_EQ(fl_map_remove(&m, "k0500", 5, NULL), 1);
    ASSERT_EQ(fl_map_remove(&m, "k0001", 5, NULL), 0);
    ASSERT_EQ(m.len, 998);
    /* empty key sorts first */
    v = fl_value_int(7);
    ASSERT_EQ(fl_map_set(&m, "", 0, &v), 0);
    ASSERT_EQ(m.u.ents[0].klen, 0);
    ASSERT_EQ(fl_map_get(&m, "", 0)->u.i, 7);
    fl_value_free(&m);
    ASSERT_EQ(m.type, FL_NIL);
}

static void test_array_ops(void)
{
    fl_value_t a, v, old;
    int i;
    fl_value_new_array(&a);
    for (i = 0; i < 100; i++) {
        v = fl_value_int(i);
        ASSERT_EQ(fl_array_insert(&a, a.len, &v), 0);
    }
    v = fl_value_int(-1);
    ASSERT_EQ(fl_array_insert(&a, 0, &v), 0);
    ASSERT_EQ(a.len, 101);
    ASSERT_EQ(a.u.items[0].u.i, -1);
    ASSERT_EQ(a.u.items[100].u.i, 99);
    v = fl_value_int(5);
    ASSERT_NE(fl_array_insert(&a, 102, &v), 0);
    ASSERT_EQ(fl_array_remove(&a, 0, &old), 0);
    ASSERT_EQ(old.u.i, -1);
    ASSERT_NE(fl_array_remove(&a, 100, NULL), 0);
    ASSERT_EQ(fl_array_remove(&a, 99, NULL), 0);
    ASSERT_EQ(a.len, 99);
    fl_value_free(&a);
}

static void test_clone_equal_digest(void)
{
    fl_arena_t *arena = fl_arena_new(0);
    fl_value_t a, b, c;
    uint8_t d1[32], d2[32];
    char *enc;
    size_t enclen;
    /* {"x":[1,1.5,"s",<bin 01>],"y":nil} in unsorted order */
    ASSERT_GT(dec("82a179c0a1789401cb3ff8000000000000a173c40101", arena, &a), 0);
    ASSERT_EQ(fl_value_clone(&b, &a), 0);
    ASSERT_TRUE(fl_value_equal(&a, &b));
    fl_value_digest(&a, d1);
    fl_value_digest(&b, d2);
    ASSERT_MEM_EQ(d1, 32, d2, 32);
    /* digest is BLAKE2b-256 of the canonical bytes: pinned for stability */
    ASSERT_EQ(fl_value_encode(&b, &enc, &enclen), 0);
    {
        static const char want[] = "82a1789401cb3ff8000000000000a173c40101a179c0";
        size_t wl;
        const char *w = unhex(want, &wl);
        ASSERT_MEM_EQ(enc, enclen, w, wl);
    }
    free(enc);
    c = fl_value_int(1);
    ASSERT_EQ(fl_map_set(&b, "z", 1, &c), 0);
    ASSERT_TRUE(!fl_value_equal(&a, &b));
    fl_value_digest(&b, d2);
    ASSERT_TRUE(memcmp(d1, d2, 32) != 0);
    {
        fl_value_t i1 = fl_value_int(1), f1 = {0};
        f1.type = FL_FLOAT;
        f1.u.f = 1.0;
        ASSERT_TRUE(!fl_value_equal(&i1, &f1));
    }
    fl_value_free(&b);
    fl_arena_free(arena);
}

static void test_big_digest_streaming(void)
{
    /* a value larger than the writer's chunk: streamed digest equals the
     * digest of the flat encoding */
    fl_value_t a, s;
    uint8_t d1[32], d2[32];
    char *enc, *big = malloc(100000);
    size_t enclen;
    int i;
    memset(big, 'q', 100000);
    fl_value_new_array(&a);
    for (i = 0; i < 50; i++) {
        fl_value_new_str(&s, big, (size_t)(i * 1000 + 1));
        fl_array_insert(&a, a.len, &s);
    }
    fl_value_digest(&a, d1);
    ASSERT_EQ(fl_value_encode(&a, &enc, &enclen), 0);
    ASSERT_EQ(enclen, fl_value_encoded_size(&a));
    crypto_generichash(d2, 32, (unsigned char *)enc, enclen, NULL, 0);
    ASSERT_MEM_EQ(d1, 32, d2, 32);
    {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ASSERT_EQ(fl_value_pack(&pk, &a), 0);
        ASSERT_MEM_EQ(sb.data, sb.size, enc, enclen);
        msgpack_sbuffer_destroy(&sb);
    }
    free(enc);
    free(big);
    fl_value_free(&a);
}

static void test_json(void)
{
    json_error_t jerr;
    json_t *j = json_loads("{\"b\":[1,2.5,\"\xc3\xa9\",{\"$bin\":\"AQID\"}],\"a\":null,\"c\":true}",
                           0, &jerr), *back;
    fl_value_t v;
    char *s;
    ASSERT_TRUE(j != NULL);
    ASSERT_EQ(fl_value_from_json(j, NULL, NULL, &v), 0);
    json_decref(j);
    ASSERT_EQ(v.type, FL_MAP);
    ASSERT_EQ(v.u.ents[0].key[0], 'a');
    ASSERT_EQ(fl_map_get(&v, "b", 1)->u.items[0].type, FL_INT);
    ASSERT_EQ(fl_map_get(&v, "b", 1)->u.items[1].type, FL_FLOAT);
    ASSERT_EQ(fl_map_get(&v, "b", 1)->u.items[3].type, FL_BIN);
    ASSERT_EQ(fl_map_get(&v, "b", 1)->u.items[3].len, 3);
    back = fl_value_to_json(&v);
    s = json_dumps(back, JSON_COMPACT);
    ASSERT_STR_EQ(s, "{\"a\":null,\"b\":[1,2.5,\"\xc3\xa9\",{\"$bin\":\"AQID\"}],\"c\":true}");
    free(s);
    json_decref(back);
    fl_value_free(&v);
    /* a bad $bin says so (it once said "ext or uint64 above INT64_MAX") */
    static const char *const bad_b64[] = {"!!", "AAE", "AAF=", "A===", "AAEC Aw=="};
    for (size_t i = 0; i < sizeof bad_b64 / sizeof bad_b64[0]; i++) {
        j = json_pack("{s:s}", "$bin", bad_b64[i]);
        ASSERT_EQ(fl_value_from_json(j, NULL, NULL, &v), FL_VERR_BASE64);
        json_decref(j);
    }
    ASSERT_TRUE(strstr(fl_value_strerror(FL_VERR_BASE64), "base64") != NULL);
    /* NUL inside strings is data (length-aware both ways) */
    j = json_loads("[\"a\\u0000b\"]", JSON_ALLOW_NUL, &jerr);
    ASSERT_TRUE(j != NULL);
    ASSERT_EQ(fl_value_from_json(j, NULL, NULL, &v), 0);
    json_decref(j);
    ASSERT_MEM_EQ(v.u.items[0].u.str, v.u.items[0].len, "a\0b", 3);
    back = fl_value_to_json(&v);
    s = json_dumps(back, JSON_COMPACT);
    ASSERT_STR_EQ(s, "[\"a\\u0000b\"]");
    free(s);
    json_decref(back);
    fl_value_free(&v);
    j = json_real(1.0);
    ASSERT_EQ(fl_value_from_json(j, NULL, NULL, &v), 0);
    ASSERT_EQ(v.type, FL_FLOAT);
    json_decref(j);
}

int main(void)
{
    RUN(test_canonical_ints);
    RUN(test_canonical_other);
    RUN(test_rejections);
    RUN(test_huge_declared_lengths);
    RUN(test_depth_bomb);
    RUN(test_utf8);
    RUN(test_arena_decode);
    RUN(test_map_ops);
    RUN(test_array_ops);
    RUN(test_clone_equal_digest);
    RUN(test_big_digest_streaming);
    RUN(test_json);
    return fl_test_done();
}
