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
        unsigned c;
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
        } else if (c >= 0xc2 && c <= 0xdf) {
            if (end - p < 2 || (p[1] & 0xc0) != 0x80)
                return false;
            p += 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            unsigned lo = 0x80, hi = 0xbf;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
            if (end - p < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80)
                return false;
            p += 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            unsigned lo = 0x80, hi = 0xbf;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* > U+10FFFF */
            if (end - p < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80 ||
                (p[3] & 0xc0) != 0x80)
                return false;
            p += 4;
        } else {
            return false; /* continuation byte, C0/C1, F5..FF */
        }
    }
    return true;
}
