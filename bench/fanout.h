/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fanout.h: helpers shared by the gateway benchmarks (bench/fanout.c and
 * bench/gateway-memory.c; a header of static functions because every
 * bench/NAME.c is a program of its own): child processes that die with the
 * bench, throwaway topic sets, a token key, /proc readings (RSS, CPU) and a
 * raw-socket WebSocket client for many connections (RFC 6455 client
 * framing over non-blocking sockets and epoll, frames counted without
 * copying their payloads).
 *
 * @locality the bench's main thread.
 */
#ifndef BENCH_FANOUT_H
#define BENCH_FANOUT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flushline/jwt.h"
#include "flushline/keyfile.h"
#include "flushline/kafka.h"
#include "flushline/topics.h"

#define B_MAX_CHILDREN 8

/* not every bench uses every helper */
#pragma clang diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-function"

static const char *b_bootstrap;
static char b_self[PATH_MAX];
static char b_dir[64]; /* scratch dir: key files, logs */
static pid_t b_children[B_MAX_CHILDREN];
static char b_topics[FL_TOPIC__COUNT][FL_TOPIC_NAME_MAX + 1];
static int b_ntopics;

static double b_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void b_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void b_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void b_kill_children(void)
{
    for (int i = 0; i < B_MAX_CHILDREN; i++)
        if (b_children[i] > 0) {
            kill(b_children[i], SIGKILL);
            waitpid(b_children[i], NULL, 0);
            b_children[i] = 0;
        }
}

static void b_on_fatal(int sig)
{
    static const char msg[] = "bench: interrupted or out of time; children killed\n";
    for (int i = 0; i < B_MAX_CHILDREN; i++)
        if (b_children[i] > 0)
            kill(b_children[i], SIGKILL);
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(128 + sig);
    _exit(128 + sig);
}

/* Starts argv[0] with stdout to out_fd (-1: the log) and stderr to logpath;
 * it dies with us (PR_SET_PDEATHSIG). */
static pid_t b_spawn(char *const argv[], const char *logpath, int out_fd)
{
    pid_t parent = getpid(), pid;
    int slot = -1, fd;
    for (int i = 0; i < B_MAX_CHILDREN && slot < 0; i++)
        if (b_children[i] == 0)
            slot = i;
    if (slot < 0 || (fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out_fd >= 0 ? out_fd : fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd);
    if (pid < 0)
        return -1;
    b_children[slot] = pid;
    return pid;
}

/* sig, then SIGKILL after 10 s; reaps. */
static void b_stop(pid_t pid, int sig)
{
    double deadline = b_now() + 10;
    if (pid <= 0)
        return;
    kill(pid, sig);
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || r < 0)
            break;
        if (b_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        b_sleep_ms(20);
    }
    for (int i = 0; i < B_MAX_CHILDREN; i++)
        if (b_children[i] == pid)
            b_children[i] = 0;
}

/* VmRSS of pid in bytes, or -1. */
static long long b_rss(pid_t pid)
{
    char path[64], line[256];
    long long kb = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atoll(line + 6);
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* utime + stime of pid in seconds, or -1. */
static double b_cpu(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strrchr(buf, ')')))
        return -1;
    /* after ") ": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- Kafka -------------------------------------------------------------- */

static rd_kafka_event_t *b_admin_wait(rd_kafka_queue_t *q, int type, int timeout_ms)
{
    double deadline = b_now() + timeout_ms / 1000.0;
    while (b_now() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

static rd_kafka_t *b_producer(void)
{
    char errstr[512];
    fl_kafka_spec_t ks = {
        .type = RD_KAFKA_PRODUCER, .what = "bench admin", .bootstrap = b_bootstrap};
    rd_kafka_t *rk = fl_kafka_new(&ks, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "kafka: %s\n", errstr);
    return rk;
}

static int b_create_topics(const char *prefix, int partitions)
{
    fl_topics_spec_t spec;
    fl_topic_state_t st[FL_TOPIC__COUNT];
    char errstr[512];
    rd_kafka_t *rk = b_producer();
    int rc;
    if (!rk)
        return -1;
    fl_topics_spec_default(&spec);
    spec.prefix = prefix;
    spec.partitions = partitions;
    spec.timeout_ms = 30000;
    for (int k = 0; k < FL_TOPIC__COUNT; k++)
        fl_topic_name(prefix, (fl_topic_kind_t)k, b_topics[b_ntopics++], sizeof b_topics[0]);
    if ((rc = fl_topics_create(rk, &spec, st, errstr, sizeof errstr)) != 0)
        fprintf(stderr, "creating topics %s.*: %s\n", prefix, errstr);
    rd_kafka_destroy(rk);
    return rc;
}

static void b_delete_topics(void)
{
    rd_kafka_DeleteTopic_t *dt[FL_TOPIC__COUNT];
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    if (b_ntopics == 0 || !(rk = b_producer()))
        return;
    q = rd_kafka_queue_new(rk);
    for (int i = 0; i < b_ntopics; i++)
        dt[i] = rd_kafka_DeleteTopic_new(b_topics[i]);
    rd_kafka_DeleteTopics(rk, dt, (size_t)b_ntopics, NULL, q);
    if ((ev = b_admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, 15000)))
        rd_kafka_event_destroy(ev);
    else
        fprintf(stderr, "deleting the bench topics timed out\n");
    for (int i = 0; i < b_ntopics; i++)
        rd_kafka_DeleteTopic_destroy(dt[i]);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    b_ntopics = 0;
}

/* ---- keys and tokens ------------------------------------------------------ */

/* Writes b_dir/key (secret) and b_dir/key.pub. */
static int b_make_key(void)
{
    fl_jwt_keyfile_t *kf = NULL;
    char errstr[256], text[1024], path[PATH_MAX];
    FILE *f;
    long n;
    for (int pub = 0; pub < 2; pub++) {
        if (!kf && fl_jwt_keyfile_generate(FL_JWT_EDDSA, "bench", &kf, errstr, sizeof errstr))
            return -1;
        if ((n = fl_jwt_keyfile_format(kf, !pub, text, sizeof text)) < 0)
            return -1;
        snprintf(path, sizeof path, "%s/key%s", b_dir, pub ? ".pub" : "");
        if (!(f = fopen(path, "w")) || fwrite(text, 1, (size_t)n, f) != (size_t)n) {
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
    }
    fl_jwt_keyfile_free(kf);
    return 0;
}

/* A token for sub, good for an hour, reading and writing "bench/". */
static char *b_token(fl_jwt_keyfile_t *kf, const char *sub)
{
    char claims[512], errstr[256], *tok = NULL;
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%lld,\"write\":[\"bench/\"]}", sub,
             (long long)time(NULL) + 3600);
    if (fl_jwt_mint_keyfile(kf, claims, &tok, errstr, sizeof errstr) != 0)
        fprintf(stderr, "mint: %s\n", errstr);
    return tok;
}

/* ---- HTTP ------------------------------------------------------------------ */

static int b_tcp_connect(int port, bool nonblock)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0) | SOCK_CLOEXEC, 0), one = 1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET path; the status, the body (up to size-1 bytes) in body; -1. */
static int b_http_get(int port, const char *path, char *body, size_t size)
{
    char req[256], *buf = malloc(1 << 20), *p;
    size_t len = 0;
    ssize_t n;
    int fd = b_tcp_connect(port, false), status = -1;
    struct timeval tv = {5, 0};
    if (fd < 0 || !buf) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    if (write(fd, req, strlen(req)) > 0)
        while (len < (1 << 20) - 1 && (n = read(fd, buf + len, (1 << 20) - 1 - len)) > 0)
            len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    if (len > 12 && sscanf(buf, "HTTP/1.%*c %d", &status) == 1 && body) {
        p = strstr(buf, "\r\n\r\n");
        snprintf(body, size, "%s", p ? p + 4 : "");
    }
    free(buf);
    return status;
}

/* The value of a Prometheus sample line "name value" in text, or -1. */
static double b_metric(const char *text, const char *name)
{
    const char *p = text;
    size_t n = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
        p += n;
    }
    return -1;
}

/* ---- a raw WebSocket client for many connections ------------------------------ */

enum { WS_CONNECTING, WS_UPGRADING, WS_OPEN, WS_DEAD };

typedef struct b_ws_s {
    int fd;
    uint8_t state;
    uint32_t frames;        /* whole frames received since open */
    unsigned char *in;      /* unparsed bytes (heap; only while a frame is split) */
    size_t inlen, incap;
    const char *greeting;   /* sent after the upgrade (a hello frame), may be NULL */
    size_t greetlen;
} b_ws_t;

/* Appends a masked client frame (opcode 2, binary) of (p, len) to out. */
static size_t b_ws_frame(unsigned char *out, const void *p, size_t len)
{
    unsigned char *o = out, mask[4] = {0x12, 0x34, 0x56, 0x78};
    *o++ = 0x82;
    if (len < 126) {
        *o++ = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        *o++ = 0x80 | 126;
        *o++ = (unsigned char)(len >> 8);
        *o++ = (unsigned char)len;
    } else {
        *o++ = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            *o++ = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(o, mask, 4);
    o += 4;
    for (size_t i = 0; i < len; i++)
        o[i] = ((const unsigned char *)p)[i] ^ mask[i & 3];
    return (size_t)(o - out) + len;
}

/* Writes all of (p, len) to a socket (blocking briefly on EAGAIN). */
static int b_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    double deadline = b_now() + 10;
    while (len > 0) {
        ssize_t n = write(fd, c, len);
        if (n > 0) {
            c += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR) && b_now() < deadline) {
            b_sleep_ms(1);
        } else {
            return -1;
        }
    }
    return 0;
}

static int b_ws_send(b_ws_t *ws, const void *p, size_t len)
{
    unsigned char stackbuf[4096], *out = len + 14 <= sizeof stackbuf ? stackbuf : malloc(len + 14);
    int rc;
    if (!out)
        return -1;
    rc = b_write_all(ws->fd, out, b_ws_frame(out, p, len));
    if (out != stackbuf)
        free(out);
    return rc;
}

static int b_ws_upgrade(b_ws_t *ws)
{
    static const char req[] = "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    ws->state = WS_UPGRADING;
    return b_write_all(ws->fd, req, sizeof req - 1);
}

/* Consumes whole frames of buf (len), counting them; on_frame (may be
 * NULL) sees each payload. Returns bytes consumed. */
static size_t b_ws_parse(b_ws_t *ws, const unsigned char *buf, size_t len,
                         void (*on_frame)(b_ws_t *ws, const unsigned char *p, size_t n))
{
    size_t off = 0;
    while (len - off >= 2) {
        const unsigned char *h = buf + off;
        uint64_t plen = h[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (len - off < 4)
                break;
            plen = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | h[2 + i];
            hl = 10;
        }
        if (len - off - hl < plen)
            break;
        if ((h[0] & 0x0f) == 8) {
            ws->state = WS_DEAD; /* close */
        } else if ((h[0] & 0x0f) == 1 || (h[0] & 0x0f) == 2) {
            ws->frames++;
            if (on_frame)
                on_frame(ws, h + hl, (size_t)plen);
        }
        off += hl + (size_t)plen;
    }
    return off;
}

/* Reads what a socket has and parses it. -1 when the peer closed. */
static int b_ws_read(b_ws_t *ws, unsigned char *scratch, size_t size,
                     void (*on_frame)(b_ws_t *ws, const unsigned char *p, size_t n))
{
    for (;;) {
        ssize_t n = read(ws->fd, scratch, size);
        const unsigned char *p = scratch;
        size_t len, used;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            ws->state = WS_DEAD;
            return -1;
        }
        len = (size_t)n;
        if (ws->state == WS_UPGRADING) {
            /* the 101 answer fits in the first read on loopback */
            const unsigned char *e = memmem(p, len, "\r\n\r\n", 4);
            if (!e || memcmp(p, "HTTP/1.1 101", 12) != 0) {
                ws->state = WS_DEAD;
                return -1;
            }
            ws->state = WS_OPEN;
            used = (size_t)(e + 4 - p);
            p += used;
            len -= used;
            if (ws->greeting && b_ws_send(ws, ws->greeting, ws->greetlen) != 0)
                return -1;
        }
        if (ws->inlen) {
            if (ws->inlen + len > ws->incap) {
                size_t cap = (ws->inlen + len) * 2;
                unsigned char *in = realloc(ws->in, cap);
                if (!in)
                    return -1;
                ws->in = in;
                ws->incap = cap;
            }
            memcpy(ws->in + ws->inlen, p, len);
            ws->inlen += len;
            used = b_ws_parse(ws, ws->in, ws->inlen, on_frame);
            memmove(ws->in, ws->in + used, ws->inlen - used);
            ws->inlen -= used;
        } else {
            used = b_ws_parse(ws, p, len, on_frame);
            if (used < len) {
                if (len - used > ws->incap) {
                    unsigned char *in = realloc(ws->in, (len - used) * 2);
                    if (!in)
                        return -1;
                    ws->in = in;
                    ws->incap = (len - used) * 2;
                }
                memcpy(ws->in, p + used, len - used);
                ws->inlen = len - used;
            }
        }
        if (ws->state == WS_DEAD)
            return -1;
        if ((size_t)n < size)
            return 0;
    }
}

#endif
