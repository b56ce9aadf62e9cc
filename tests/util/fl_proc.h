/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Child processes for tests: start a daemon from build/bin with arguments,
 * its output in a log file; signal it; wait for it with a deadline; wait
 * for a condition with a deadline (never a bare sleep).
 */
#ifndef FL_PROC_H
#define FL_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct fl_proc_s {
    pid_t pid;
    char log[512];
} fl_proc_t;

/* Starts FL_BINARY_DIR/bin/<name> with argv (NULL-terminated, without
 * argv[0]); stdout and stderr go to log (appended). 0 or -1. */
int fl_proc_start(fl_proc_t *proc, const char *name, const char *const *args, const char *log);
/* Sends sig. */
int fl_proc_signal(fl_proc_t *proc, int sig);
/* Waits up to timeout_ms for the child to exit. Returns its exit status
 * (0-255), 128+signal when killed, or -1 on timeout (still running). */
int fl_proc_wait(fl_proc_t *proc, int timeout_ms);
/* SIGKILL and reap (no-op when already gone). */
void fl_proc_kill(fl_proc_t *proc);
/* True while running. */
bool fl_proc_alive(fl_proc_t *proc);
/* Prints the last lines of the log to stderr (for failures). */
void fl_proc_dump_log(const fl_proc_t *proc, int lines);
/* True once the log contains needle. */
bool fl_proc_log_contains(const fl_proc_t *proc, const char *needle);

/* Polls cond(arg) every few ms until true or timeout; true when it held. */
bool fl_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* A free TCP port on 127.0.0.1. */
int fl_free_port(void);
/* GET http://127.0.0.1:port/path; returns the status (body malloc'd into
 * *body, NUL-terminated) or -1 when nothing answers. */
int fl_http_get(int port, const char *path, char **body);

#endif
