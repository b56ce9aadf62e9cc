/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pointer: RFC 6901 JSON Pointer resolution over the value tree, without
 * allocation in the common case (tokens without escapes are used in place;
 * tokens with ~0 / ~1 are unescaped into the caller's arena). Array indexes
 * are "0" or a digit string without leading zero; "-" means "one past the
 * end" and is only a valid target for add-like operations.
 */
#include <string.h>

#include "engine_int.h"

int fl_ptr_check(fl_slice_t p)
{
    if (p.len == 0)
        return FL_CODE_OK;
    if (p.ptr[0] != '/')
        return FL_CODE_INVALID;
    for (size_t i = 0; i < p.len; i++) {
        if (p.ptr[i] == '~') {
            if (i + 1 >= p.len || (p.ptr[i + 1] != '0' && p.ptr[i + 1] != '1'))
                return FL_CODE_INVALID;
            i++;
        }
    }
    return FL_CODE_OK;
}

size_t fl_ptr_escaped_len(fl_slice_t key)
{
    size_t n = key.len;
    for (size_t i = 0; i < key.len; i++)
        n += key.ptr[i] == '~' || key.ptr[i] == '/';
    return n;
}

void fl_ptr_escape(char *out, fl_slice_t key)
{
    size_t o = 0;
    for (size_t i = 0; i < key.len; i++) {
        if (key.ptr[i] == '~' || key.ptr[i] == '/') {
            out[o++] = '~';
            out[o++] = key.ptr[i] == '~' ? '0' : '1';
        } else {
            out[o++] = key.ptr[i];
        }
    }
}

bool fl_ptr_is_proper_prefix(fl_slice_t a, fl_slice_t b)
{
    return a.len < b.len && memcmp(a.ptr, b.ptr, a.len) == 0 && b.ptr[a.len] == '/';
}

/* Unescapes raw token (s, n) into arena when needed. */
static int token(const char *s, size_t n, fl_arena_t *arena, const char **out)
{
    if (!memchr(s, '~', n)) {
        *out = s;
        return (int)n;
    }
    char *buf = fl_arena_alloc(arena, n ? n : 1);
    if (!buf)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~') {
            buf[o++] = s[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            buf[o++] = s[i];
        }
    }
    *out = buf;
    return (int)o;
}

/* Array index syntax: "0" or [1-9][0-9]*. Returns 1 valid (idx set, or
 * UINT32_MAX when too large to be an index), 0 invalid. */
static int parse_index(const char *s, size_t n, uint32_t *idx)
{
    if (n == 0 || (n > 1 && s[0] == '0'))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        if (v < UINT32_MAX)
            v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *idx = v >= UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return 1;
}

int fl_ptr_resolve(fl_value_t *root, fl_slice_t p, ptr_mode_t mode, fl_arena_t *arena, loc_t *loc)
{
    memset(loc, 0, sizeof(*loc));
    loc->target = root;
    if (p.len == 0)
        return FL_CODE_OK;
    fl_value_t *cur = root;
    size_t pos = 1, start = 0; /* start: offset of the '/' opening the token */
    uint32_t level = 0;
    for (;;) {
        const char *seg = p.ptr + pos;
        const char *slash = memchr(seg, '/', p.len - pos);
        size_t n = slash ? (size_t)(slash - seg) : p.len - pos;
        bool last = slash == NULL;
        const char *tok;
        int tlen = token(seg, n, arena, &tok);
        if (tlen < 0)
            return -1;
        level++;
        fl_value_t *child = NULL;
        uint32_t idx = 0;
        if (cur->type == FL_MAP) {
            bool found;
            idx = fl_map_find(cur, tok, (size_t)tlen, &found);
            if (found)
                child = &cur->u.ents[idx].val;
            else if (!last || mode == PTR_EXISTING)
                return FL_CODE_PATH_NOT_FOUND;
        } else if (cur->type == FL_ARRAY) {
            if (tlen == 1 && tok[0] == '-') {
                if (!last || mode != PTR_ADD)
                    return FL_CODE_PATH_NOT_FOUND;
                idx = cur->len;
            } else {
                if (!parse_index(tok, (size_t)tlen, &idx))
                    return FL_CODE_INVALID;
                if (idx < cur->len)
                    child = &cur->u.items[idx];
                else if (!(last && mode == PTR_ADD && idx == cur->len))
                    return FL_CODE_PATH_NOT_FOUND;
            }
        } else {
            return FL_CODE_TYPE_MISMATCH;
        }
        if (last) {
            loc->parent = cur;
            loc->target = child;
            loc->key = tok;
            loc->klen = (size_t)tlen;
            loc->idx = idx;
            loc->level = level;
            loc->parent_ptr = (fl_slice_t){p.ptr, start};
            return FL_CODE_OK;
        }
        cur = child;
        start = pos + n;
        pos = start + 1;
    }
}
