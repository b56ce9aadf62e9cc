/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes, waiting and tiny HTTP for tests; see fl_proc.h. */
#include "fl_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fl_test.h"

/* Every child started, so that a test that fails half-way (its asserts
 * return early) still leaves no process behind when it exits, and one that
 * never reaped a crashed child still fails. */
typedef struct child_s {
    pid_t pid;
    char name[64];
} child_t;
static child_t started[256];
static int nstarted;

static void kill_leftovers(void)
{
    bool crashed = false;
    for (int i = 0; i < nstarted; i++) {
        int status;
        if (started[i].pid <= 0)
            continue;
        pid_t r = waitpid(started[i].pid, &status, WNOHANG);
        if (r == 0) {
            kill(started[i].pid, SIGKILL); /* ours: not a crash */
            waitpid(started[i].pid, &status, 0);
        } else if (r == started[i].pid && WIFSIGNALED(status)) {
            fprintf(stderr, "%s (pid %d) died of signal %d (%s) and no test reaped it\n",
                    started[i].name, (int)started[i].pid, WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
            crashed = true;
        }
    }
    if (crashed) {
        /* exit() cannot be called again from an atexit handler */
        fflush(stdout);
        fflush(stderr);
        _exit(1);
    }
}

static void remember(const fl_proc_t *proc)
{
    if (nstarted == 0)
        atexit(kill_leftovers);
    child_t *c = nstarted < (int)(sizeof started / sizeof started[0])
                     ? &started[nstarted++]
                     : &started[nstarted - 1]; /* the newest matters most */
    c->pid = proc->pid;
    snprintf(c->name, sizeof c->name, "%s", proc->name);
}

static void forget(pid_t pid)
{
    for (int i = 0; i < nstarted; i++)
        if (started[i].pid == pid)
            started[i].pid = 0;
}

/* A sanitizer's report in the child's part of its log. */
static bool sanitizer_report(const fl_proc_t *proc)
{
    static const char *const marks[] = {
        "SUMMARY: AddressSanitizer", "SUMMARY: LeakSanitizer",
        "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: ThreadSanitizer"};
    size_t len;
    bool found = false;
    char *text = fl_test_read_file(proc->log, &len);
    if (!text)
        return false;
    size_t from = proc->log_from > 0 && (size_t)proc->log_from <= len ? (size_t)proc->log_from : 0;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0] && !found; i++)
        found = strstr(text + from, marks[i]) != NULL;
    free(text);
    return found;
}

/* The child has been reaped with status: fail the current case when it
 * crashed (see fl_proc.h). */
static void reaped(fl_proc_t *proc, int status, const char *file, int line)
{
    pid_t pid = proc->pid;
    proc->pid = 0;
    forget(pid);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGKILL && proc->killed)
            return;
        fl_test_fail(file, line, "%s (pid %d) died of signal %d (%s)%s; log %s", proc->name,
                     (int)pid, sig, strsignal(sig),
                     sig == SIGKILL ? ", not sent by this test" : "", proc->log);
        fl_proc_dump_log(proc, 30);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && sanitizer_report(proc)) {
        fl_test_fail(file, line, "%s (pid %d) exited %d after a sanitizer report; log %s",
                     proc->name, (int)pid, WEXITSTATUS(status), proc->log);
        fl_proc_dump_log(proc, 60);
    }
}

int fl_proc_start(fl_proc_t *proc, const char *name, const char *const *args, const char *log)
{
    const char *bindir = getenv("FL_BINARY_DIR");
    char path[1024];
    const char *argv[64];
    int n = 0;
    struct stat sb;
    snprintf(path, sizeof path, "%s/bin/%s", bindir ? bindir : ".", name);
    snprintf(proc->name, sizeof proc->name, "%s", name);
    snprintf(proc->log, sizeof proc->log, "%s", log);
    proc->log_from = stat(log, &sb) == 0 ? (long)sb.st_size : 0;
    proc->killed = false;
    argv[n++] = path;
    for (; args && *args && n < 63; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(path, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    proc->pid = pid;
    remember(proc);
    return 0;
}

int fl_proc_signal(fl_proc_t *proc, int sig)
{
    if (proc->pid <= 0)
        return -1;
    if (sig == SIGKILL)
        proc->killed = true;
    return kill(proc->pid, sig);
}

int fl_proc_wait_(fl_proc_t *proc, int timeout_ms, const char *file, int line)
{
    int64_t deadline = fl_test_now_ms() + timeout_ms;
    int status;
    if (proc->pid <= 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(proc->pid, &status, WNOHANG);
        if (r == proc->pid) {
            reaped(proc, status, file, line);
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        if (fl_test_now_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

void fl_proc_kill_(fl_proc_t *proc, const char *file, int line)
{
    if (proc->pid <= 0)
        return;
    fl_proc_signal(proc, SIGKILL);
    fl_proc_wait_(proc, 10000, file, line);
}

bool fl_proc_alive_(fl_proc_t *proc, const char *file, int line)
{
    int status;
    if (proc->pid <= 0)
        return false;
    if (waitpid(proc->pid, &status, WNOHANG) == proc->pid) {
        reaped(proc, status, file, line);
        return false;
    }
    return true;
}

void fl_proc_dump_log(const fl_proc_t *proc, int lines)
{
    size_t len, at;
    char *text;
    if (!proc->log[0])
        return; /* never started (a case's optional second gateway, say) */
    if (!(text = fl_test_read_file(proc->log, &len))) {
        fprintf(stderr, "(no log at %s)\n", proc->log);
        return;
    }
    /* the last `lines` lines, without a shell */
    at = len;
    if (at > 0 && text[at - 1] == '\n')
        at--;
    for (int n = 0; at > 0; at--)
        if (text[at - 1] == '\n' && ++n == lines)
            break;
    fprintf(stderr, "---- last lines of %s\n", proc->log);
    fwrite(text + at, 1, len - at, stderr);
    if (len > at && text[len - 1] != '\n')
        fputc('\n', stderr);
    free(text);
}

bool fl_proc_log_contains(const fl_proc_t *proc, const char *needle)
{
    size_t len;
    char *text = fl_test_read_file(proc->log, &len);
    bool found = text && strstr(text, needle) != NULL;
    free(text);
    return found;
}

bool fl_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = fl_test_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (fl_test_now_ms() >= deadline)
            return false;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int fl_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int fl_http_request(int port, const char *method, const char *path, const char *headers,
                    const char *body, int timeout_ms, char **head, char **resp)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
    char *req = NULL, *buf = NULL;
    size_t len = 0, cap = 0;
    *resp = NULL;
    if (head)
        *head = NULL;
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto fail;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "%s%.0zu%s\r\n%s",
                     method, path, headers ? headers : "",
                     body ? "Content-Type: application/json\r\nContent-Length: " : "",
                     body ? strlen(body) : 0, body ? "\r\n" : "", body ? body : "");
    if (n < 0 || write(fd, req, (size_t)n) != n)
        goto fail;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb)
                goto fail;
            buf = nb;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue; /* a signal (SIGCHLD of a test's child), not the server */
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    if (!buf)
        goto fail;
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        goto fail;
    char *sep = strstr(buf, "\r\n\r\n");
    *resp = strdup(sep ? sep + 4 : "");
    if (head)
        *head = sep ? strndup(buf, (size_t)(sep - buf)) : strdup(buf);
fail:
    free(req);
    free(buf);
    close(fd);
    return status;
}

int fl_http_get(int port, const char *path, char **body)
{
    return fl_http_request(port, "GET", path, NULL, NULL, 5000, NULL, body);
}
