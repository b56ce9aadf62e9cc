/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyfile: reading the key files of `flushline token keygen` from disk (the
 * I/O half of key files; their text format, parsing and use are the pure
 * core's, flushline/jwt.h). The file text is read into sodium_malloc memory
 * and wiped; error messages name the path, never key material.
 *
 * Returns 0 or a negative errno value: the open/read errno of the file,
 * -EINVAL (not a regular file of at most FL_JWT_KEYFILE_MAX bytes, bad key
 * file), -EEXIST (kid already in the set), -ENAMETOOLONG, -ENOMEM; errstr
 * says which file and why.
 *
 * @locality any thread; a key set is filled by one thread (see jwt.h).
 */
#ifndef FLUSHLINE_KEYFILE_H
#define FLUSHLINE_KEYFILE_H

#include <stddef.h>

#include "flushline/jwt.h"

/* Reads and parses a key file. *out is freed with fl_jwt_keyfile_free. */
int fl_jwt_keyfile_read(const char *path, fl_jwt_keyfile_t **out, char *errstr,
                        size_t errstr_size);
/* Adds the key of a key file (a secret file or an Ed25519 .pub file,
 * docs/auth.md) to a key set, as fl_jwt_keys_add_keyfile. */
int fl_jwt_keys_load_file(fl_jwt_keys_t *keys, const char *path, char *errstr, size_t errstr_size);
/* fl_jwt_keys_load_file for each path of a comma-separated list (the
 * gateway's --jwt.keys PATH[,PATH...]). Stops at the first failure. */
int fl_jwt_keys_load_list(fl_jwt_keys_t *keys, const char *paths, char *errstr,
                          size_t errstr_size);

#endif
