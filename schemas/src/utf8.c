/* SPDX-License-Identifier: Apache-2.0 */
/*
 * utf8: strict UTF-8 validation (RFC 3629): no overlong forms, no UTF-16
 * surrogates, nothing above U+10FFFF. ASCII runs are checked 8 bytes at a
 * time because nearly every key and path on the wire is ASCII.
 */
#include <stdint.h>
#include <string.h>

#include "flushline/value.h"

bool fl_utf8_valid(const char *s, size_t n)
{
    if (n == 0)
        return true; /* s may be NULL for an empty slice */
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c, lo, hi;
        ptrdiff_t len, i;
        if ((size_t)(end - p) >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                p += 8;
                continue;
            }
        }
        c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        /* the sequence's length, and the range of its second byte (which
         * excludes overlongs, surrogates and code points above U+10FFFF) */
        lo = 0x80;
        hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            lo = c == 0xe0 ? 0xa0 : lo;
            hi = c == 0xed ? 0x9f : hi;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            lo = c == 0xf0 ? 0x90 : lo;
            hi = c == 0xf4 ? 0x8f : hi;
        } else {
            return false; /* continuation byte, C0/C1, F5..FF */
        }
        if (end - p < len || p[1] < lo || p[1] > hi)
            return false;
        for (i = 2; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        p += len;
    }
    return true;
}
