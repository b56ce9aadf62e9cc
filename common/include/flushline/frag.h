/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frag: the one reassembly of a WebSocket message from its fragments, for the
 * gateway's connections and the C client: a growing buffer bounded by the
 * largest message allowed.
 */
#ifndef FLUSHLINE_FRAG_H
#define FLUSHLINE_FRAG_H

#include <stddef.h>

/* Appends the fragment (in, n) to the message held in *buf (*len bytes used
 * of *cap, malloc'd; NULL, 0, 0 at first). The buffer starts at 4096 bytes
 * and doubles, never past max. Returns 0; 1 when the message would pass max
 * bytes (nothing appended: the caller drops the rest of the message); -1 out
 * of memory (nothing changed). */
int fl_frag_append(char **buf, size_t *len, size_t *cap, const char *in, size_t n, size_t max);

#endif
