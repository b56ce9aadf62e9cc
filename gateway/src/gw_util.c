/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_util: the gateway's small building blocks: refcounted frame buffers
 * with LWS_PRE headroom (one encoding shared by every receiver, its
 * WebSocket frame header built once in the headroom) and a hash
 * map keyed by bytes (documents by id, connections by origin id).
 *
 * @locality lws service thread (buffers and maps are not shared).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/log.h"
#include "gw_int.h"

/* ---- buffers --------------------------------------------------------------- */

_Static_assert(LWS_PRE >= 10, "the frame header is built in the LWS_PRE headroom");

gw_buf_t *gw_buf_new(const char *p, size_t len, bool text)
{
    gw_buf_t *buf = malloc(sizeof *buf + LWS_PRE + len);
    if (!buf)
        return NULL;
    unsigned char *h;
    buf->refs = 1;
    buf->text = text;
    buf->len = len;
    buf->data = (unsigned char *)(buf + 1);
    if (len)
        memcpy(buf->data + LWS_PRE, p, len);
    /* RFC 6455 server frame header: FIN + opcode, unmasked length */
    buf->hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    h = buf->data + LWS_PRE - buf->hlen;
    h[0] = 0x80 | (text ? 0x1 : 0x2);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    return buf;
}

void gw_buf_unref(gw_buf_t *buf)
{
    if (buf && --buf->refs == 0)
        free(buf);
}

gw_buf_t *gw_buf_encode(const fl_wire_msg_t *msg, fl_wire_form_t form)
{
    char *out = NULL, errstr[256];
    size_t len;
    gw_buf_t *buf;
    if (fl_wire_encode(msg, form, &out, &len, errstr, sizeof errstr) != 0) {
        fl_error("encoding a %s message: %s", fl_wire_type_name(msg->type), errstr);
        return NULL;
    }
    buf = gw_buf_new(out, len, form == FL_WIRE_JSON);
    free(out);
    return buf;
}

/* ---- map: open addressing, linear probing, backward-shift deletion -------- */

typedef struct slot_s {
    uint64_t hash; /* 0: empty */
    const void *key;
    size_t klen;
    void *val;
} slot_t;

struct gw_map_s {
    slot_t *slots;
    size_t cap, count; /* cap: a power of two */
};

static uint64_t hash_bytes(const void *key, size_t len)
{
    /* FNV-1a, then a final mix; never 0 (0 marks an empty slot) */
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

gw_map_t *gw_map_new(void)
{
    gw_map_t *map = calloc(1, sizeof *map);
    if (!map)
        return NULL;
    map->cap = 64;
    if (!(map->slots = calloc(map->cap, sizeof *map->slots))) {
        free(map);
        return NULL;
    }
    return map;
}

void gw_map_free(gw_map_t *map)
{
    if (!map)
        return;
    free(map->slots);
    free(map);
}

static slot_t *find(const gw_map_t *map, const void *key, size_t klen, uint64_t h)
{
    size_t mask = map->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot_t *s = &map->slots[i];
        if (s->hash == 0)
            return s;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return s;
    }
}

void *gw_map_get(const gw_map_t *map, const void *key, size_t klen)
{
    slot_t *s = find(map, key, klen, hash_bytes(key, klen));
    return s->hash ? s->val : NULL;
}

static int grow(gw_map_t *map)
{
    slot_t *old = map->slots;
    size_t oldcap = map->cap;
    slot_t *slots = calloc(oldcap * 2, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    map->slots = slots;
    map->cap = oldcap * 2;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].hash)
            *find(map, old[i].key, old[i].klen, old[i].hash) = old[i];
    free(old);
    return 0;
}

int gw_map_put(gw_map_t *map, const void *key, size_t klen, void *val)
{
    uint64_t h = hash_bytes(key, klen);
    slot_t *s;
    if ((map->count + 1) * 4 > map->cap * 3 && grow(map) != 0)
        return -ENOMEM;
    s = find(map, key, klen, h);
    if (!s->hash)
        map->count++;
    s->hash = h;
    s->key = key;
    s->klen = klen;
    s->val = val;
    return 0;
}

void gw_map_del(gw_map_t *map, const void *key, size_t klen)
{
    size_t mask = map->cap - 1, i, j;
    slot_t *s = find(map, key, klen, hash_bytes(key, klen));
    if (!s->hash)
        return;
    i = (size_t)(s - map->slots);
    map->slots[i].hash = 0;
    map->count--;
    /* shift back the entries that probed past the hole */
    for (j = (i + 1) & mask; map->slots[j].hash; j = (j + 1) & mask) {
        size_t home = map->slots[j].hash & mask;
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            map->slots[i] = map->slots[j];
            map->slots[j].hash = 0;
            i = j;
        }
    }
}

size_t gw_map_count(const gw_map_t *map)
{
    return map->count;
}

void gw_map_each(const gw_map_t *map, void (*fn)(void *val, void *arg), void *arg)
{
    for (size_t i = 0; i < map->cap; i++)
        if (map->slots[i].hash)
            fn(map->slots[i].val, arg);
}
