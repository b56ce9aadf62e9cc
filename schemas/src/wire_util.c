/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire_util: what every part of the codec shares and that calls none of
 * them: type names looked up in the descriptor table (read as data), error
 * reasons, hex, the value reader's limits. wire.c (the entry points) and the
 * four codec files call it; it calls neither (scripts/check-layout).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire_int.h"

const char *fl_wire_type_name(int type)
{
    const fl_wire_desc_t *desc = fl_wire_desc_of(type);
    return desc ? desc->name : NULL;
}

fl_wire_dir_t fl_wire_type_dir(int type)
{
    const fl_wire_desc_t *desc = fl_wire_desc_of(type);
    return desc ? desc->dir : (fl_wire_dir_t)0;
}

int fl_wire_type_from_name(fl_wire_dir_t dir, const char *name, size_t len)
{
    int i;
    for (i = 1; i < FL_WT__COUNT; i++)
        if (fl_wire_desc[i].dir == dir && strlen(fl_wire_desc[i].name) == len &&
            memcmp(fl_wire_desc[i].name, name, len) == 0)
            return i;
    return FL_WT_NONE;
}

void fl_wire_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int fl_wire_vseterr(char *errstr, size_t size, int code, const char *fmt, va_list ap)
{
    if (errstr && size)
        vsnprintf(errstr, size, fmt, ap);
    return -code;
}

int fl_wire_seterr(char *errstr, size_t size, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = fl_wire_vseterr(errstr, size, code, fmt, ap);
    va_end(ap);
    return code;
}

void fl_wire_fail(fl_wire_err_t *e, int code, const char *fmt, ...)
{
    va_list ap;
    if (e->code)
        return;
    va_start(ap, fmt);
    e->code = fl_wire_vseterr(e->errstr, e->errsz, code, fmt, ap);
    va_end(ap);
}

void fl_wire_value_limits(const fl_wire_limits_t *lim, uint32_t above, fl_limits_t *vl)
{
    vl->max_bytes = lim->max_frame;
    vl->max_depth = lim->max_depth + FL_WIRE_ENVELOPE_DEPTH - above;
    vl->max_items = 1000000;
    vl->max_str = lim->max_frame > UINT32_MAX ? UINT32_MAX : (uint32_t)lim->max_frame;
}
