/* SPDX-License-Identifier: Apache-2.0 */
#include "fl_kbroker.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"

static char dir[256], outfile[300];
static bool armed; /* the folder exists: stop at exit */

int fl_kbroker(const char *args)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "FLUSHLINE_KAFKA_DIR='%s' '%s/scripts/kafka' %s >'%s' 2>&1", dir,
             getenv("FL_SOURCE_DIR"), args, outfile);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

char *fl_kbroker_output(void)
{
    size_t len;
    char *o = fl_test_read_file(outfile, &len);
    return o ? o : strdup("");
}

void fl_kbroker_show_output(void)
{
    char *o = fl_kbroker_output();
    fprintf(stderr, "---- scripts/kafka output\n%s\n", o);
    free(o);
}

const char *fl_kbroker_dir(void)
{
    return dir;
}

const char *fl_kbroker_outfile(void)
{
    return outfile;
}

int fl_kbroker_bootstrap(char *buf, size_t size)
{
    if (fl_kbroker("env") != 0)
        return -1;
    char *o = fl_kbroker_output();
    const char *v = strncmp(o, "FLUSHLINE_BOOTSTRAP=", 20) == 0 ? o + 20 : NULL;
    if (v)
        snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
    free(o);
    return v ? 0 : -1;
}

static void stop_atexit(void)
{
    if (armed)
        fl_kbroker("stop"); /* harmless when nothing runs */
}

int fl_kbroker_remove(void)
{
    char cmd[700];
    if (fl_kbroker("stop") != 0)
        return -1;
    armed = false;
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, outfile);
    return system(cmd) == 0 ? 0 : -1;
}

/* A child that stops the brokers when this process is gone, however it
 * ends (a sanitizer's halt skips atexit): it waits for the end of a pipe
 * only this process writes to. */
static void start_reaper(void)
{
    int fds[2];
    /* close-on-exec: the brokers the scripts start must not hold it open */
    if (pipe2(fds, O_CLOEXEC) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        char c, cmd[700];
        close(fds[1]);
        while (read(fds[0], &c, 1) > 0)
            ;
        snprintf(cmd, sizeof cmd, "FLUSHLINE_KAFKA_DIR='%s' '%s/scripts/kafka' stop >/dev/null 2>&1",
                 dir, getenv("FL_SOURCE_DIR"));
        _exit(system(cmd) == 0 ? 0 : 1);
    }
    close(fds[0]); /* the write end stays open, unused, until this process ends */
}

int fl_kbroker_init(const char *stem)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", stem);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(outfile, sizeof outfile, "%s.out", dir);
    armed = true;
    atexit(stop_atexit);
    start_reaper();
    return 0;
}
