/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fl_cli: runs the `flushline` binary of the build (FL_BINARY_DIR/bin) as
 * a child, capturing its exit status, stdout and stderr (stderr through a
 * file in a folder of the test's).
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <stddef.h>

typedef struct fl_cli_run_s {
    int status; /* the exit code, or 128 + the signal */
    char *out, *err;
    size_t outlen;
} fl_cli_run_t;

/* Runs flushline with args (NULL-terminated); stderr goes through
 * tmpdir/cli.err. 0, or -1 when it could not be started. */
int fl_cli_run(fl_cli_run_t *r, const char *tmpdir, const char *const *args);
void fl_cli_run_free(fl_cli_run_t *r);

#endif
