/* SPDX-License-Identifier: Apache-2.0 */
/*
 * value: the msgpack value model shared by the codec, the engine, the
 * gateway's live copies and both clients.
 *
 * A value is a small tagged struct (16 bytes) held by value inside arrays and
 * map entries. Maps have string keys only, kept sorted bytewise (memcmp, the
 * shorter key first on a common prefix) with no duplicates: that order is the
 * canonical order, lookup is a binary search, and the canonical encoding is
 * one byte sequence per value (smallest int form, floats always float64,
 * str8/16/32 by length, map entries in key order), so digests are stable.
 * Integers are int64 (msgpack uint64 above INT64_MAX is rejected); NaN and
 * infinities are rejected; strings and keys must be valid UTF-8; bin is kept.
 *
 * Storage: a value tree is either heap-owned (documents: every string and
 * container buffer is its own malloc, freed by fl_value_free) or arena-owned
 * (decoded messages: everything lives in an fl_arena_t and is released with
 * the arena; never pass such a tree to fl_value_free). fl_value_clone makes
 * a heap copy of either kind.
 *
 * Pure: no I/O, no clock, no logging. @locality any thread; a tree is used by
 * one thread at a time.
 */
#ifndef FLUSHLINE_VALUE_H
#define FLUSHLINE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/* A borrowed byte slice (wire data is passed as ptr+len, never NUL-terminated). */
typedef struct fl_slice_s {
    const char *ptr;
    size_t len;
} fl_slice_t;

#define FL_SLICE(s) ((fl_slice_t){(s), sizeof(s) - 1})

typedef enum fl_type_e {
    FL_NIL = 0,
    FL_BOOL,
    FL_INT,
    FL_FLOAT,
    FL_STR,
    FL_BIN,
    FL_ARRAY,
    FL_MAP,
} fl_type_t;

typedef struct fl_value_s fl_value_t;
typedef struct fl_entry_s fl_entry_t;

struct fl_value_s {
    uint8_t type; /* fl_type_t */
    uint32_t len; /* bytes of str/bin, items of array, entries of map */
    union {
        bool b;
        int64_t i;
        double f;
        char *str;          /* FL_STR, FL_BIN: len bytes, not NUL-terminated */
        fl_value_t *items;  /* FL_ARRAY: len items (heap capacity kept privately,
                               e.g. in a header before the buffer) */
        fl_entry_t *ents;   /* FL_MAP: len entries sorted by key */
    } u;
};

struct fl_entry_s {
    char *key;
    uint32_t klen;
    fl_value_t val;
};

/* Limits checked while decoding, before anything is allocated. */
typedef struct fl_limits_s {
    size_t max_bytes;     /* whole encoded input, default 1 MiB */
    uint32_t max_depth;   /* nesting depth of containers, default 64 */
    uint32_t max_items;   /* elements of one array/map, default 1,000,000 */
    uint32_t max_str;     /* bytes of one str/bin, default 1 MiB */
} fl_limits_t;

extern const fl_limits_t fl_limits_default;

/* Errors returned by value functions (negative), see fl_value_strerror(). */
enum {
    FL_VERR_NOMEM = -1,
    FL_VERR_TRUNCATED = -2, /* input ends inside a value ("need more") */
    FL_VERR_TYPE = -3,      /* msgpack type not allowed (ext, uint64 > INT64_MAX) */
    FL_VERR_UTF8 = -4,      /* string or key not valid UTF-8 */
    FL_VERR_DEPTH = -5,     /* nesting deeper than max_depth */
    FL_VERR_SIZE = -6,      /* a limit in fl_limits_t exceeded */
    FL_VERR_KEY = -7,       /* map key not a string, or duplicate key */
    FL_VERR_FLOAT = -8,     /* NaN or infinity */
    FL_VERR_TRAILING = -9,  /* bytes left after the value */
    FL_VERR_BASE64 = -10,   /* JSON {"$bin": ...} that is not canonical padded base64 */
};
const char *fl_value_strerror(int err);

/* A bump allocator for decoded messages. Blocks grow geometrically. */
typedef struct fl_arena_s fl_arena_t;
fl_arena_t *fl_arena_new(size_t first_block);
void fl_arena_free(fl_arena_t *arena);  /* NULL is safe */
void fl_arena_reset(fl_arena_t *arena); /* keeps the first block for reuse */
void *fl_arena_alloc(fl_arena_t *arena, size_t size); /* 8-byte aligned; NULL on OOM */

/* Makes room for element n of a malloc'd array (arrayp: the address of the
 * pointer to it) of *cap elements of size bytes: when n == *cap the array
 * doubles (to first elements the first time). 0, or -1 when out of memory
 * or past UINT32_MAX elements (the array and *cap unchanged). */
int fl_grow(void *arrayp, uint32_t *cap, uint32_t n, size_t size, uint32_t first);

/* True when (p, n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool fl_utf8_valid(const char *p, size_t n);

/*
 * Decodes exactly one msgpack value from (buf, len), strictly, into *out.
 * With arena != NULL the tree lives in the arena; with NULL it is heap-owned.
 * Returns bytes consumed (> 0) or a negative FL_VERR_*. Trailing bytes are
 * allowed (the count tells where the value ended); callers that want a whole
 * buffer check consumed == len.
 */
long fl_value_decode(const char *buf, size_t len, const fl_limits_t *lim, fl_arena_t *arena,
                     fl_value_t *out);

/* Canonical encoding into a msgpack-c packer (sbuffer or any writer). 0 or FL_VERR_NOMEM. */
int fl_value_pack(msgpack_packer *pk, const fl_value_t *val);
/* Exact size in bytes of the canonical encoding, without encoding. */
size_t fl_value_encoded_size(const fl_value_t *val);
/* Canonical encoding into a fresh malloc'd buffer (*out, *outlen); 0 or FL_VERR_NOMEM. */
int fl_value_encode(const fl_value_t *val, char **out, size_t *outlen);

/* BLAKE2b-256 of the canonical encoding (streamed, no full copy). */
void fl_value_digest(const fl_value_t *val, uint8_t out[32]);

/* Heap deep copy of src (either storage kind) into *dst. 0 or FL_VERR_NOMEM. */
int fl_value_clone(fl_value_t *dst, const fl_value_t *src);
/* Frees a heap-owned tree and sets it to nil. Arena trees: do not call. */
void fl_value_free(fl_value_t *val);
/* Deep equality (RFC 6902 "test" semantics: int 1 != float 1.0, maps by content). */
bool fl_value_equal(const fl_value_t *a, const fl_value_t *b);

/* Constructors for heap-owned values; strings are copied. */
static inline fl_value_t fl_value_nil(void) { fl_value_t v = {0}; v.type = FL_NIL; return v; }
static inline fl_value_t fl_value_int(int64_t i) { fl_value_t v = {0}; v.type = FL_INT; v.u.i = i; return v; }
int fl_value_new_str(fl_value_t *out, const char *p, size_t n);
int fl_value_new_map(fl_value_t *out);   /* empty heap map */
int fl_value_new_array(fl_value_t *out); /* empty heap array */

/* Heap map operations (keys copied; val moved in: the caller's copy is set to nil). */
fl_value_t *fl_map_get(const fl_value_t *map, const char *key, size_t klen);
/* Index where key is or would be inserted; *found set. */
uint32_t fl_map_find(const fl_value_t *map, const char *key, size_t klen, bool *found);
int fl_map_set(fl_value_t *map, const char *key, size_t klen, fl_value_t *val);
/* Removes key; moves the old value to *old (or frees it when old is NULL). -ENOENT-like 1 if absent. */
int fl_map_remove(fl_value_t *map, const char *key, size_t klen, fl_value_t *old);

/* Heap array operations (val moved in). idx == len appends. */
int fl_array_insert(fl_value_t *arr, uint32_t idx, fl_value_t *val);
int fl_array_remove(fl_value_t *arr, uint32_t idx, fl_value_t *old);

/* JSON (jansson) conversion for JSON text frames and the CLI's JSON output.
 * JSON integers -> FL_INT, reals -> FL_FLOAT, objects -> maps (keys sorted).
 * bin is written as {"$bin": "<base64>"} and read back the same way. */
struct json_t;
int fl_value_from_json(const struct json_t *json, const fl_limits_t *lim, fl_arena_t *arena,
                       fl_value_t *out);
struct json_t *fl_value_to_json(const fl_value_t *val); /* new reference or NULL */

#endif
