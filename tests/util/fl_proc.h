/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Child processes for tests: start a daemon from build/bin with arguments,
 * its output in a log file; signal it; wait for it with a deadline; wait
 * for a condition with a deadline (never a bare sleep).
 *
 * No test can miss a crash on the way out: whichever function reaps a child
 * (fl_proc_wait, fl_proc_alive, fl_proc_kill), a death by a signal other
 * than a SIGKILL this test sent itself (fl_proc_kill or fl_proc_signal with
 * SIGKILL) -- SIGABRT from an assert, SIGSEGV, a SIGTERM with no handler
 * yet -- fails the current test case with the log's tail, and so does a
 * non-zero exit after a sanitizer report (ASan, LSan and UBSan exit 1
 * instead of dying by a signal). A child that crashed and was never
 * reaped fails the test program at exit.
 */
#ifndef FL_PROC_H
#define FL_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct fl_proc_s {
    pid_t pid;
    char name[64];
    char log[512];
    long log_from; /* size of the log when this child started */
    bool killed;   /* this test sent it SIGKILL */
} fl_proc_t;

/* Starts FL_BINARY_DIR/bin/<name> with argv (NULL-terminated, without
 * argv[0]); stdout and stderr go to log (appended). 0 or -1. */
int fl_proc_start(fl_proc_t *proc, const char *name, const char *const *args, const char *log);
/* Sends sig (SIGKILL marks the child as killed by the test). */
int fl_proc_signal(fl_proc_t *proc, int sig);
/* Waits up to timeout_ms for the child to exit. Returns its exit status
 * (0-255), 128+signal when killed, or -1 on timeout (still running). A
 * crash fails the current test case (see above) whatever the caller does
 * with the status. */
#define fl_proc_wait(proc, timeout_ms) fl_proc_wait_((proc), (timeout_ms), __FILE__, __LINE__)
/* SIGKILL and reap (no-op when already gone). */
#define fl_proc_kill(proc) fl_proc_kill_((proc), __FILE__, __LINE__)
/* True while running (reaps the child once it is gone). */
#define fl_proc_alive(proc) fl_proc_alive_((proc), __FILE__, __LINE__)

int fl_proc_wait_(fl_proc_t *proc, int timeout_ms, const char *file, int line);
void fl_proc_kill_(fl_proc_t *proc, const char *file, int line);
bool fl_proc_alive_(fl_proc_t *proc, const char *file, int line);
/* Prints the last lines of the log to stderr (for failures); nothing for a
 * process never started (no log named). */
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
/* Any request to http://127.0.0.1:port/path: headers (NULL or lines each
 * ending in CRLF), body (NULL: none, else sent as JSON), each read bounded
 * by timeout_ms. The status or -1; the body malloc'd into *resp, and with
 * head the status line and headers into *head. */
int fl_http_request(int port, const char *method, const char *path, const char *headers,
                    const char *body, int timeout_ms, char **head, char **resp);

#endif
