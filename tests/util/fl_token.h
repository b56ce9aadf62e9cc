/* SPDX-License-Identifier: Apache-2.0 */
/* Test tokens: a fresh key file for a gateway's jwt.keys, and tokens it verifies. */
#ifndef FL_TOKEN_H
#define FL_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "flushline/jwt.h"

/* Generates an EdDSA key "k1" and writes it to <FL_BINARY_DIR>/tests/<stem-unique>.key
 * (path). 0 or -1. */
int fl_token_keyfile(const char *stem, char *path, size_t size, fl_jwt_keyfile_t **key);
/* A token of sub with read and write grants (JSON array bodies, e.g.
 * "\"acme/\""), expiring exp_in seconds from now; malloc'd, NULL on error. */
char *fl_token_mint(fl_jwt_keyfile_t *key, const char *sub, const char *read, const char *write,
                    int64_t exp_in);

#endif
