/* SPDX-License-Identifier: Apache-2.0 */
/* frag: see frag.h. */
#include "flushline/frag.h"

#include <stdlib.h>
#include <string.h>

int fl_frag_append(char **buf, size_t *len, size_t *cap, const char *in, size_t n, size_t max)
{
    if (*len + n > max)
        return 1;
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        char *p;
        while (ncap < *len + n)
            ncap *= 2;
        if (ncap > max)
            ncap = max;
        if (!(p = realloc(*buf, ncap)))
            return -1;
        *buf = p;
        *cap = ncap;
    }
    if (n)
        memcpy(*buf + *len, in, n);
    *len += n;
    return 0;
}
