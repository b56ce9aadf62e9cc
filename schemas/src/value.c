/* SPDX-License-Identifier: Apache-2.0 */
/*
 * value: the msgpack value model (see value.h): a strict hand-written
 * msgpack reader for the decode fast path, the canonical encoder (one writer
 * shared by encode, pack, digest), size computation, heap tree operations
 * (clone, free, map and array edits) and the msgpack-c object conversion.
 */
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "value_int.h"

const fl_limits_t fl_limits_default = {
    .max_bytes = 1u << 20,
    .max_depth = 64,
    .max_items = 1000000,
    .max_str = 1u << 20,
};

const char *fl_value_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case FL_VERR_NOMEM: return "out of memory";
    case FL_VERR_TRUNCATED: return "input ends inside a value";
    case FL_VERR_TYPE: return "msgpack type not allowed (ext or uint64 above INT64_MAX)";
    case FL_VERR_UTF8: return "string or key is not valid UTF-8";
    case FL_VERR_DEPTH: return "nesting too deep";
    case FL_VERR_SIZE: return "size limit exceeded";
    case FL_VERR_KEY: return "map key not a string, or duplicate key";
    case FL_VERR_FLOAT: return "NaN or infinity";
    case FL_VERR_TRAILING: return "bytes left after the value";
    case FL_VERR_BASE64:
        return "{\"$bin\": ...} is not base64 (standard alphabet, padded, canonical)";
    default: return "unknown value error";
    }
}

/* ---- storage helpers ---------------------------------------------------- */

void *fl_vbuf_alloc(fl_arena_t *arena, size_t n, size_t esz)
{
    fl_vhdr_t *h;
    if (n > (SIZE_MAX - sizeof(fl_vhdr_t)) / esz)
        return NULL;
    if (arena)
        return fl_arena_alloc(arena, n ? n * esz : 1);
    h = malloc(sizeof *h + n * esz);
    if (!h)
        return NULL;
    h->cap = n;
    return h + 1;
}

static void vbuf_free(void *items)
{
    if (items)
        free((fl_vhdr_t *)items - 1);
}

char *fl_vstrdup(fl_arena_t *arena, const char *p, size_t n, int *err)
{
    char *s;
    if (n == 0)
        return NULL;
    s = fl_valloc(arena, n);
    if (!s) {
        *err = FL_VERR_NOMEM;
        return NULL;
    }
    memcpy(s, p, n);
    return s;
}

static int ent_cmp(const void *a, const void *b)
{
    const fl_entry_t *x = a, *y = b;
    return fl_key_cmp(x->key, x->klen, y->key, y->klen);
}

int fl_map_canonicalize(fl_value_t *map)
{
    fl_entry_t *e = map->u.ents;
    uint32_t i, n = map->len;
    bool sorted = true;
    for (i = 1; i < n; i++) {
        int c = fl_key_cmp(e[i - 1].key, e[i - 1].klen, e[i].key, e[i].klen);
        if (c == 0)
            return FL_VERR_KEY;
        if (c > 0)
            sorted = false;
    }
    if (sorted)
        return 0;
    qsort(e, n, sizeof *e, ent_cmp);
    for (i = 1; i < n; i++)
        if (fl_key_cmp(e[i - 1].key, e[i - 1].klen, e[i].key, e[i].klen) == 0)
            return FL_VERR_KEY;
    return 0;
}

int fl_vraw(const fl_limits_t *lim, fl_arena_t *arena, const char *p, size_t n, size_t avail,
            bool is_str, fl_value_t *out)
{
    int err = 0;
    if (n > lim->max_str)
        return FL_VERR_SIZE;
    if (avail < n)
        return FL_VERR_TRUNCATED;
    if (is_str && !fl_utf8_valid(p, n))
        return FL_VERR_UTF8;
    out->u.str = fl_vstrdup(arena, p, n, &err);
    if (err)
        return err;
    out->type = is_str ? FL_STR : FL_BIN;
    out->len = (uint32_t)n;
    return 0;
}

int fl_vkey(const fl_limits_t *lim, fl_arena_t *arena, const char *p, size_t n, size_t avail,
            fl_entry_t *e)
{
    fl_value_t k;
    int err = fl_vraw(lim, arena, p, n, avail, true, &k);
    if (err)
        return err;
    e->key = k.u.str;
    e->klen = k.len;
    return 0;
}

int fl_vcontainer(const fl_limits_t *lim, uint32_t depth, size_t n, size_t avail, uint8_t type,
                  fl_arena_t *arena, fl_value_t *out)
{
    void *buf;
    if (depth >= lim->max_depth)
        return FL_VERR_DEPTH;
    if (n > lim->max_items)
        return FL_VERR_SIZE;
    if (avail < n)
        return FL_VERR_TRUNCATED;
    buf = fl_vbuf_alloc(arena, n, type == FL_MAP ? sizeof(fl_entry_t) : sizeof(fl_value_t));
    if (!buf)
        return FL_VERR_NOMEM;
    out->type = type;
    out->len = 0;
    if (type == FL_MAP)
        out->u.ents = buf;
    else
        out->u.items = buf;
    return 0;
}

int fl_vfail(fl_arena_t *arena, fl_value_t *out, int err)
{
    if (!arena)
        fl_value_free(out);
    out->type = FL_NIL;
    out->len = 0;
    return err;
}

int fl_vdone(fl_arena_t *arena, fl_value_t *out, int err)
{
    if (!err && out->type == FL_MAP)
        err = fl_map_canonicalize(out);
    return err ? fl_vfail(arena, out, err) : 0;
}

/* ---- strict reader ------------------------------------------------------ */

typedef struct rd_s {
    const uint8_t *p, *end;
    const fl_limits_t *lim;
    fl_arena_t *arena;
} rd_t;

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* Reads a length field of w bytes. */
static int rd_len(rd_t *r, int w, uint32_t *n)
{
    if (r->end - r->p < w)
        return FL_VERR_TRUNCATED;
    *n = w == 1 ? r->p[0] : w == 2 ? be16(r->p) : be32(r->p);
    r->p += w;
    return 0;
}

static int rd_value(rd_t *r, uint32_t depth, fl_value_t *out);

static int rd_raw(rd_t *r, uint32_t n, bool is_str, fl_value_t *out)
{
    int err = fl_vraw(r->lim, r->arena, (const char *)r->p, n, (size_t)(r->end - r->p), is_str,
                      out);
    if (!err)
        r->p += n;
    return err;
}

static int rd_array(rd_t *r, uint32_t n, uint32_t depth, fl_value_t *out)
{
    uint32_t i;
    /* every item takes at least one byte */
    int err = fl_vcontainer(r->lim, depth, n, (size_t)(r->end - r->p), FL_ARRAY, r->arena, out);
    if (err)
        return err;
    for (i = 0; i < n; i++) {
        out->u.items[i].type = FL_NIL;
        err = rd_value(r, depth + 1, &out->u.items[i]);
        out->len = i + 1; /* so that a partial heap tree frees cleanly */
        if (err)
            return err;
    }
    return 0;
}

/* One map entry: a str key, then its value. */
static inline int rd_entry(rd_t *r, uint32_t depth, fl_entry_t *e)
{
    uint32_t klen;
    uint8_t c;
    int err = 0;
    if (r->p >= r->end)
        return FL_VERR_TRUNCATED;
    c = *r->p++;
    if (c >= 0xa0 && c <= 0xbf)
        klen = c & 0x1f;
    else if (c >= 0xd9 && c <= 0xdb)
        err = rd_len(r, 1 << (c - 0xd9), &klen);
    else
        return FL_VERR_KEY;
    if (err || (err = fl_vkey(r->lim, r->arena, (const char *)r->p, klen,
                              (size_t)(r->end - r->p), e)))
        return err;
    r->p += klen;
    return rd_value(r, depth + 1, &e->val);
}

static int rd_map(rd_t *r, uint32_t n, uint32_t depth, fl_value_t *out)
{
    uint32_t i;
    /* a key and a value: two bytes at least */
    int err = fl_vcontainer(r->lim, depth, n, (size_t)(r->end - r->p) / 2, FL_MAP, r->arena, out);
    if (err)
        return err;
    for (i = 0; i < n; i++)
        if ((err = rd_entry(r, depth, fl_vmap_entry(out, i))))
            return err;
    return fl_map_canonicalize(out);
}

/* The float32 (widened) or float64 after tag c; NaN and infinities are refused. */
static inline int rd_float(rd_t *r, uint8_t c, fl_value_t *out)
{
    double d;
    int w = c == 0xca ? 4 : 8;
    if (r->end - r->p < w)
        return FL_VERR_TRUNCATED;
    if (w == 4) {
        uint32_t bits = be32(r->p);
        float f;
        memcpy(&f, &bits, 4);
        d = f;
    } else {
        uint64_t bits = be64(r->p);
        memcpy(&d, &bits, 8);
    }
    r->p += w;
    return fl_vfloat(d, out);
}

/* The uint8-64 (up to INT64_MAX) or int8-64 after tag c. */
static inline int rd_int(rd_t *r, uint8_t c, fl_value_t *out)
{
    int w = 1 << (c & 3);
    uint64_t u;
    int64_t i;
    if (r->end - r->p < w)
        return FL_VERR_TRUNCATED;
    u = w == 1 ? r->p[0] : w == 2 ? be16(r->p) : w == 4 ? be32(r->p) : be64(r->p);
    if (c <= 0xcf) {
        if (u > INT64_MAX)
            return FL_VERR_TYPE;
        i = (int64_t)u;
    } else {
        i = w == 1 ? (int8_t)u : w == 2 ? (int16_t)u : w == 4 ? (int32_t)u : (int64_t)u;
    }
    r->p += w;
    out->type = FL_INT;
    out->u.i = i;
    return 0;
}

static int rd_value(rd_t *r, uint32_t depth, fl_value_t *out)
{
    const uint8_t *p = r->p;
    uint32_t n;
    uint8_t c;
    int err;
    if (p >= r->end)
        return FL_VERR_TRUNCATED;
    c = *p;
    r->p = p + 1;
    if (c <= 0x7f) {
        out->type = FL_INT;
        out->u.i = c;
        return 0;
    }
    if (c >= 0xe0) {
        out->type = FL_INT;
        out->u.i = (int8_t)c;
        return 0;
    }
    if (c >= 0xa0 && c <= 0xbf)
        return rd_raw(r, c & 0x1f, true, out);
    if (c >= 0x90 && c <= 0x9f)
        return rd_array(r, c & 0x0f, depth, out);
    if (c >= 0x80 && c <= 0x8f)
        return rd_map(r, c & 0x0f, depth, out);
    switch (c) {
    case 0xc0: out->type = FL_NIL; return 0;
    case 0xc2: out->type = FL_BOOL; out->u.b = false; return 0;
    case 0xc3: out->type = FL_BOOL; out->u.b = true; return 0;
    case 0xc4: case 0xc5: case 0xc6:
        if ((err = rd_len(r, 1 << (c - 0xc4), &n)))
            return err;
        return rd_raw(r, n, false, out);
    case 0xd9: case 0xda: case 0xdb:
        if ((err = rd_len(r, 1 << (c - 0xd9), &n)))
            return err;
        return rd_raw(r, n, true, out);
    case 0xdc: case 0xdd:
        if ((err = rd_len(r, c == 0xdc ? 2 : 4, &n)))
            return err;
        return rd_array(r, n, depth, out);
    case 0xde: case 0xdf:
        if ((err = rd_len(r, c == 0xde ? 2 : 4, &n)))
            return err;
        return rd_map(r, n, depth, out);
    case 0xca: case 0xcb:
        return rd_float(r, c, out);
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        return rd_int(r, c, out);
    default: /* 0xc1 (never used), ext 0xc7-0xc9 and 0xd4-0xd8 */
        return FL_VERR_TYPE;
    }
}

long fl_value_decode(const char *buf, size_t len, const fl_limits_t *lim, fl_arena_t *arena,
                     fl_value_t *out)
{
    rd_t r;
    size_t avail;
    int err;
    if (!lim)
        lim = &fl_limits_default;
    out->type = FL_NIL;
    out->len = 0;
    /* Only the first max_bytes may hold the value. */
    avail = len > lim->max_bytes ? lim->max_bytes : len;
    r.p = (const uint8_t *)buf;
    r.end = r.p + avail;
    r.lim = lim;
    r.arena = arena;
    err = rd_value(&r, 0, out);
    if (err) {
        /* A value cut off by the byte limit is a size error, not "need more". */
        if (err == FL_VERR_TRUNCATED && avail < len)
            err = FL_VERR_SIZE;
        return fl_vfail(arena, out, err);
    }
    return (long)(r.p - (const uint8_t *)buf);
}

/* ---- canonical writer --------------------------------------------------- */

typedef struct wr_s wr_t;
struct wr_s {
    uint8_t *buf;
    size_t n, cap;
    int (*sink)(wr_t *w, const uint8_t *p, size_t n); /* NULL: buf is big enough */
    void *ctx;
    int err;
};

static void wr_drain(wr_t *w)
{
    if (w->n && w->sink && !w->err)
        w->err = w->sink(w, w->buf, w->n);
    w->n = 0;
}

static void wr_put(wr_t *w, const void *p, size_t n)
{
    if (w->cap - w->n >= n) {
        if (n)
            memcpy(w->buf + w->n, p, n);
        w->n += n;
        return;
    }
    wr_drain(w);
    if (n >= w->cap) {
        if (!w->err)
            w->err = w->sink(w, p, n);
        return;
    }
    memcpy(w->buf, p, n);
    w->n = n;
}

static void put_be(uint8_t *b, uint64_t v, int w)
{
    int i;
    for (i = w - 1; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Writes a tag byte followed by a w-byte big-endian number. */
static void wr_tag(wr_t *w, uint8_t tag, uint64_t v, int width)
{
    uint8_t b[9];
    b[0] = tag;
    put_be(b + 1, v, width);
    wr_put(w, b, (size_t)width + 1);
}

static void wr_int(wr_t *w, int64_t i)
{
    if (i >= 0) {
        if (i <= 0x7f) { uint8_t b = (uint8_t)i; wr_put(w, &b, 1); }
        else if (i <= 0xff) wr_tag(w, 0xcc, (uint64_t)i, 1);
        else if (i <= 0xffff) wr_tag(w, 0xcd, (uint64_t)i, 2);
        else if (i <= 0xffffffffLL) wr_tag(w, 0xce, (uint64_t)i, 4);
        else wr_tag(w, 0xcf, (uint64_t)i, 8);
    } else {
        if (i >= -32) { uint8_t b = (uint8_t)(int8_t)i; wr_put(w, &b, 1); }
        else if (i >= INT8_MIN) wr_tag(w, 0xd0, (uint64_t)i & 0xff, 1);
        else if (i >= INT16_MIN) wr_tag(w, 0xd1, (uint64_t)i & 0xffff, 2);
        else if (i >= INT32_MIN) wr_tag(w, 0xd2, (uint64_t)i & 0xffffffffu, 4);
        else wr_tag(w, 0xd3, (uint64_t)i, 8);
    }
}

static void wr_str_hdr(wr_t *w, uint32_t n)
{
    if (n < 32) { uint8_t b = (uint8_t)(0xa0 | n); wr_put(w, &b, 1); }
    else if (n <= 0xff) wr_tag(w, 0xd9, n, 1);
    else if (n <= 0xffff) wr_tag(w, 0xda, n, 2);
    else wr_tag(w, 0xdb, n, 4);
}

static void wr_value(wr_t *w, const fl_value_t *v)
{
    uint32_t i, n = v->len;
    switch (v->type) {
    case FL_NIL: { uint8_t b = 0xc0; wr_put(w, &b, 1); break; }
    case FL_BOOL: { uint8_t b = v->u.b ? 0xc3 : 0xc2; wr_put(w, &b, 1); break; }
    case FL_INT: wr_int(w, v->u.i); break;
    case FL_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v->u.f, 8);
        wr_tag(w, 0xcb, bits, 8);
        break;
    }
    case FL_STR:
        wr_str_hdr(w, n);
        wr_put(w, v->u.str, n);
        break;
    case FL_BIN:
        if (n <= 0xff) wr_tag(w, 0xc4, n, 1);
        else if (n <= 0xffff) wr_tag(w, 0xc5, n, 2);
        else wr_tag(w, 0xc6, n, 4);
        wr_put(w, v->u.str, n);
        break;
    case FL_ARRAY:
        if (n < 16) { uint8_t b = (uint8_t)(0x90 | n); wr_put(w, &b, 1); }
        else if (n <= 0xffff) wr_tag(w, 0xdc, n, 2);
        else wr_tag(w, 0xdd, n, 4);
        for (i = 0; i < n; i++)
            wr_value(w, &v->u.items[i]);
        break;
    case FL_MAP:
        if (n < 16) { uint8_t b = (uint8_t)(0x80 | n); wr_put(w, &b, 1); }
        else if (n <= 0xffff) wr_tag(w, 0xde, n, 2);
        else wr_tag(w, 0xdf, n, 4);
        for (i = 0; i < n; i++) {
            wr_str_hdr(w, v->u.ents[i].klen);
            wr_put(w, v->u.ents[i].key, v->u.ents[i].klen);
            wr_value(w, &v->u.ents[i].val);
        }
        break;
    default: /* corrupt tree: encode nil rather than crash */
        { uint8_t b = 0xc0; wr_put(w, &b, 1); }
        break;
    }
}

static size_t int_size(int64_t i)
{
    if (i >= 0)
        return i <= 0x7f ? 1 : i <= 0xff ? 2 : i <= 0xffff ? 3 : i <= 0xffffffffLL ? 5 : 9;
    return i >= -32 ? 1 : i >= INT8_MIN ? 2 : i >= INT16_MIN ? 3 : i >= INT32_MIN ? 5 : 9;
}

static size_t str_hdr_size(uint32_t n) { return n < 32 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5; }

size_t fl_value_encoded_size(const fl_value_t *v)
{
    size_t s;
    uint32_t i, n = v->len;
    switch (v->type) {
    case FL_INT: return int_size(v->u.i);
    case FL_FLOAT: return 9;
    case FL_STR: return str_hdr_size(n) + n;
    case FL_BIN: return (n <= 0xff ? 2 : n <= 0xffff ? 3 : 5) + (size_t)n;
    case FL_ARRAY:
        s = n < 16 ? 1 : n <= 0xffff ? 3 : 5;
        for (i = 0; i < n; i++)
            s += fl_value_encoded_size(&v->u.items[i]);
        return s;
    case FL_MAP:
        s = n < 16 ? 1 : n <= 0xffff ? 3 : 5;
        for (i = 0; i < n; i++)
            s += str_hdr_size(v->u.ents[i].klen) + v->u.ents[i].klen +
                 fl_value_encoded_size(&v->u.ents[i].val);
        return s;
    default: return 1;
    }
}

int fl_value_encode(const fl_value_t *val, char **out, size_t *outlen)
{
    size_t n = fl_value_encoded_size(val);
    wr_t w = {0};
    w.buf = malloc(n);
    if (!w.buf)
        return FL_VERR_NOMEM;
    w.cap = n;
    wr_value(&w, val);
    *out = (char *)w.buf;
    *outlen = w.n;
    return 0;
}

static int pack_sink(wr_t *w, const uint8_t *p, size_t n)
{
    msgpack_packer *pk = w->ctx;
    return pk->callback(pk->data, (const char *)p, n) ? FL_VERR_NOMEM : 0;
}

int fl_value_pack(msgpack_packer *pk, const fl_value_t *val)
{
    uint8_t buf[2048];
    wr_t w = {buf, 0, sizeof buf, pack_sink, pk, 0};
    wr_value(&w, val);
    wr_drain(&w);
    return w.err;
}

static int digest_sink(wr_t *w, const uint8_t *p, size_t n)
{
    crypto_generichash_update(w->ctx, p, n);
    return 0;
}

void fl_value_digest(const fl_value_t *val, uint8_t out[32])
{
    uint8_t buf[2048];
    crypto_generichash_state st;
    wr_t w = {buf, 0, sizeof buf, digest_sink, &st, 0};
    crypto_generichash_init(&st, NULL, 0, 32);
    wr_value(&w, val);
    wr_drain(&w);
    crypto_generichash_final(&st, out, 32);
}

/* ---- heap trees --------------------------------------------------------- */

void fl_value_free(fl_value_t *v)
{
    uint32_t i;
    if (!v)
        return;
    switch (v->type) {
    case FL_STR:
    case FL_BIN:
        free(v->u.str);
        break;
    case FL_ARRAY:
        for (i = 0; i < v->len; i++)
            fl_value_free(&v->u.items[i]);
        vbuf_free(v->u.items);
        break;
    case FL_MAP:
        for (i = 0; i < v->len; i++) {
            free(v->u.ents[i].key);
            fl_value_free(&v->u.ents[i].val);
        }
        vbuf_free(v->u.ents);
        break;
    default:
        break;
    }
    v->type = FL_NIL;
    v->len = 0;
    v->u.i = 0;
}

/* A heap copy of one map entry: key, then value. */
static int clone_entry(fl_entry_t *d, const fl_entry_t *s)
{
    int err = 0;
    d->klen = s->klen;
    d->val.type = FL_NIL;
    d->key = fl_vstrdup(NULL, s->key, s->klen, &err);
    return err ? err : fl_value_clone(&d->val, &s->val);
}

int fl_value_clone(fl_value_t *dst, const fl_value_t *src)
{
    uint32_t i, n = src->len;
    bool map = src->type == FL_MAP;
    int err = 0;
    *dst = *src;
    switch (src->type) {
    case FL_STR:
    case FL_BIN:
        dst->u.str = fl_vstrdup(NULL, src->u.str, n, &err);
        break;
    case FL_ARRAY:
    case FL_MAP:
        /* items and ents share the union: one buffer of the right size */
        dst->u.items = fl_vbuf_alloc(NULL, n, map ? sizeof(fl_entry_t) : sizeof(fl_value_t));
        if (!dst->u.items) {
            err = FL_VERR_NOMEM;
            break;
        }
        for (i = 0; i < n && !err; i++) {
            dst->len = i + 1;
            err = map ? clone_entry(&dst->u.ents[i], &src->u.ents[i])
                      : fl_value_clone(&dst->u.items[i], &src->u.items[i]);
        }
        break;
    default:
        break;
    }
    if (err) {
        if ((src->type == FL_ARRAY || map) && dst->u.items)
            fl_value_free(dst);
        dst->type = FL_NIL;
        dst->len = 0;
        return err;
    }
    return 0;
}

bool fl_value_equal(const fl_value_t *a, const fl_value_t *b)
{
    uint32_t i;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case FL_NIL: return true;
    case FL_BOOL: return a->u.b == b->u.b;
    case FL_INT: return a->u.i == b->u.i;
    case FL_FLOAT: return a->u.f == b->u.f;
    case FL_STR:
    case FL_BIN:
        return a->len == b->len && (a->len == 0 || memcmp(a->u.str, b->u.str, a->len) == 0);
    case FL_ARRAY:
        if (a->len != b->len)
            return false;
        for (i = 0; i < a->len; i++)
            if (!fl_value_equal(&a->u.items[i], &b->u.items[i]))
                return false;
        return true;
    case FL_MAP:
        if (a->len != b->len)
            return false;
        for (i = 0; i < a->len; i++) {
            const fl_entry_t *x = &a->u.ents[i], *y = &b->u.ents[i];
            if (fl_key_cmp(x->key, x->klen, y->key, y->klen) != 0 ||
                !fl_value_equal(&x->val, &y->val))
                return false;
        }
        return true;
    default:
        return false;
    }
}

int fl_value_new_str(fl_value_t *out, const char *p, size_t n)
{
    int err = 0;
    if (n > UINT32_MAX)
        return FL_VERR_SIZE;
    out->u.str = fl_vstrdup(NULL, p, n, &err);
    if (err)
        return err;
    out->type = FL_STR;
    out->len = (uint32_t)n;
    return 0;
}

int fl_value_new_map(fl_value_t *out)
{
    out->type = FL_MAP;
    out->len = 0;
    out->u.ents = NULL;
    return 0;
}

int fl_value_new_array(fl_value_t *out)
{
    out->type = FL_ARRAY;
    out->len = 0;
    out->u.items = NULL;
    return 0;
}

/* Makes room for one more element of a heap container (geometric growth). */
static int grow(void **items, uint32_t len, size_t esz)
{
    fl_vhdr_t *h = *items ? (fl_vhdr_t *)*items - 1 : NULL;
    size_t cap = h ? h->cap : 0, ncap;
    if (len < cap)
        return 0;
    if (len >= UINT32_MAX)
        return FL_VERR_SIZE;
    ncap = cap < 4 ? 4 : cap + cap / 2;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    h = realloc(h, sizeof *h + ncap * esz);
    if (!h)
        return FL_VERR_NOMEM;
    h->cap = ncap;
    *items = h + 1;
    return 0;
}

uint32_t fl_map_find(const fl_value_t *map, const char *key, size_t klen, bool *found)
{
    uint32_t lo = 0, hi = map->type == FL_MAP ? map->len : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const fl_entry_t *e = &map->u.ents[mid];
        int c = fl_key_cmp(e->key, e->klen, key, klen);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

fl_value_t *fl_map_get(const fl_value_t *map, const char *key, size_t klen)
{
    bool found;
    uint32_t i;
    if (map->type != FL_MAP)
        return NULL;
    i = fl_map_find(map, key, klen, &found);
    return found ? &map->u.ents[i].val : NULL;
}

int fl_map_set(fl_value_t *map, const char *key, size_t klen, fl_value_t *val)
{
    bool found;
    uint32_t i;
    fl_entry_t *e;
    int err = 0;
    if (map->type != FL_MAP || klen > UINT32_MAX)
        return FL_VERR_TYPE;
    i = fl_map_find(map, key, klen, &found);
    if (found) {
        fl_value_free(&map->u.ents[i].val);
        map->u.ents[i].val = *val;
        *val = fl_value_nil();
        return 0;
    }
    if ((err = grow((void **)&map->u.ents, map->len, sizeof(fl_entry_t))))
        return err;
    e = map->u.ents;
    {
        char *k = fl_vstrdup(NULL, key, klen, &err);
        if (err)
            return err;
        memmove(&e[i + 1], &e[i], (size_t)(map->len - i) * sizeof *e);
        e[i].key = k;
        e[i].klen = (uint32_t)klen;
        e[i].val = *val;
        map->len++;
    }
    *val = fl_value_nil();
    return 0;
}

int fl_map_remove(fl_value_t *map, const char *key, size_t klen, fl_value_t *old)
{
    bool found;
    uint32_t i;
    fl_entry_t *e;
    if (map->type != FL_MAP)
        return 1;
    i = fl_map_find(map, key, klen, &found);
    if (!found)
        return 1;
    e = map->u.ents;
    free(e[i].key);
    if (old)
        *old = e[i].val;
    else
        fl_value_free(&e[i].val);
    memmove(&e[i], &e[i + 1], (size_t)(map->len - i - 1) * sizeof *e);
    map->len--;
    return 0;
}

int fl_array_insert(fl_value_t *arr, uint32_t idx, fl_value_t *val)
{
    int err;
    if (arr->type != FL_ARRAY || idx > arr->len)
        return FL_VERR_TYPE;
    if ((err = grow((void **)&arr->u.items, arr->len, sizeof(fl_value_t))))
        return err;
    memmove(&arr->u.items[idx + 1], &arr->u.items[idx],
            (size_t)(arr->len - idx) * sizeof(fl_value_t));
    arr->u.items[idx] = *val;
    arr->len++;
    *val = fl_value_nil();
    return 0;
}

int fl_array_remove(fl_value_t *arr, uint32_t idx, fl_value_t *old)
{
    if (arr->type != FL_ARRAY || idx >= arr->len)
        return FL_VERR_TYPE;
    if (old)
        *old = arr->u.items[idx];
    else
        fl_value_free(&arr->u.items[idx]);
    memmove(&arr->u.items[idx], &arr->u.items[idx + 1],
            (size_t)(arr->len - idx - 1) * sizeof(fl_value_t));
    arr->len--;
    return 0;
}
