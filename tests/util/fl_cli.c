/* SPDX-License-Identifier: Apache-2.0 */
/* fl_cli: see fl_cli.h. */
#include "fl_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"

void fl_cli_run_free(fl_cli_run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

int fl_cli_run(fl_cli_run_t *r, const char *tmpdir, const char *const *args)
{
    const char *bindir = getenv("FL_BINARY_DIR");
    char path[1024], errpath[1024];
    const char *argv[64];
    int n = 0, fds[2], status;
    size_t cap = 1 << 16;
    memset(r, 0, sizeof *r);
    snprintf(path, sizeof path, "%s/bin/flushline", bindir ? bindir : ".");
    snprintf(errpath, sizeof errpath, "%s/cli.err", tmpdir);
    argv[n++] = path;
    for (; *args && n < 63; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fds[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        close(fds[0]);
        close(fds[1]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    r->out = malloc(cap);
    for (;;) {
        if (r->outlen + 4096 + 1 > cap)
            r->out = realloc(r->out, cap *= 2);
        ssize_t got = read(fds[0], r->out + r->outlen, cap - r->outlen - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        r->outlen += (size_t)got;
    }
    r->out[r->outlen] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    size_t len;
    r->err = fl_test_read_file(errpath, &len);
    if (!r->err)
        r->err = strdup("");
    return 0;
}

