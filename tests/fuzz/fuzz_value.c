/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the strict value decoder: decode (arena and heap); when accepted,
 * the canonical encoding must decode again and re-encode byte-identically,
 * encoded_size must match, clone must be equal, and the JSON round trip
 * must be lossless.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fl_arena_t *arena;
    fl_value_t v, w, c;
    char *enc1 = NULL, *enc2 = NULL;
    size_t len1, len2;
    long n;
    if (!arena)
        arena = fl_arena_new(4096);
    fl_arena_reset(arena);
    n = fl_value_decode((const char *)data, size, NULL, arena, &v);
    {
        long h = fl_value_decode((const char *)data, size, NULL, NULL, &w);
        if (h != n)
            abort();
        if (h > 0)
            fl_value_free(&w);
    }
    if (n < 0)
        return 0;
    if (fl_value_encode(&v, &enc1, &len1) != 0)
        abort();
    if (len1 != fl_value_encoded_size(&v))
        abort();
    if (fl_value_decode(enc1, len1, NULL, NULL, &w) != (long)len1)
        abort();
    if (fl_value_encode(&w, &enc2, &len2) != 0 || len1 != len2 || memcmp(enc1, enc2, len1) != 0)
        abort();
    if (!fl_value_equal(&v, &w))
        abort();
    if (fl_value_clone(&c, &v) == 0) {
        if (!fl_value_equal(&c, &w))
            abort();
        fl_value_free(&c);
    }
    {
        /* JSON: lossless except a map {"$bin": <str>} which reads back as bin */
        json_t *j = fl_value_to_json(&v);
        if (j) {
            fl_value_t back;
            if (fl_value_from_json(j, NULL, NULL, &back) == 0)
                fl_value_free(&back);
            json_decref(j);
        }
    }
    free(enc1);
    free(enc2);
    fl_value_free(&w);
    return 0;
}
