/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal raw WebSocket client for gateway tests; see fl_ws.h. */
#include "fl_ws.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fl_test.h"


int fl_ws_read_more(fl_ws_t *ws, int timeout_ms)
{
    struct pollfd pfd = {ws->fd, POLLIN, 0};
    ssize_t n;
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return -1;
    n = read(ws->fd, ws->buf + ws->len, sizeof ws->buf - ws->len);
    if (n <= 0)
        return -1;
    ws->len += (size_t)n;
    return 0;
}

/* Connects and upgrades; returns the HTTP status (101) or -1. */
int fl_ws_connect(fl_ws_t *ws, int port, const char *extra, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[12000];
    int status = -1;
    char *end;
    memset(ws, 0, sizeof *ws);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((ws->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    if (rcvbuf)
        setsockopt(ws->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(ws->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    snprintf(req, sizeof req,
             "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n%s\r\n",
             extra ? extra : "");
    if (write(ws->fd, req, strlen(req)) != (ssize_t)strlen(req))
        return -1;
    while (!(end = memmem(ws->buf, ws->len, "\r\n\r\n", 4)))
        if (fl_ws_read_more(ws, 5000) != 0)
            return -1;
    sscanf(ws->buf, "HTTP/1.1 %d", &status);
    end += 4;
    ws->len -= (size_t)(end - ws->buf);
    memmove(ws->buf, end, ws->len);
    return status;
}

void fl_ws_close(fl_ws_t *ws)
{
    if (ws->fd > 0)
        close(ws->fd);
    ws->fd = -1;
}

int fl_ws_send(fl_ws_t *ws, int opcode, const void *p, size_t n)
{
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    uint8_t *frame = malloc(n + 14);
    size_t h = 0;
    int rc;
    frame[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        frame[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        frame[h++] = 0x80 | 126;
        frame[h++] = (uint8_t)(n >> 8);
        frame[h++] = (uint8_t)n;
    } else {
        frame[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            frame[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(frame + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        frame[h + i] = ((const uint8_t *)p)[i] ^ mask[i % 4];
    rc = write(ws->fd, frame, h + n) == (ssize_t)(h + n) ? 0 : -1;
    free(frame);
    return rc;
}

int fl_ws_text(fl_ws_t *ws, const char *fmt, ...)
{
    char text[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return fl_ws_send(ws, 1, text, strlen(text));
}

/* One whole message: its opcode (1, 2, 8) with the payload copied to
 * *out (malloc'd), or -1 on timeout or EOF. */
int fl_ws_recv(fl_ws_t *ws, int timeout_ms, char **out, size_t *outlen)
{
    int64_t deadline = fl_test_now_ms() + timeout_ms;
    for (;;) {
        if (ws->len >= 2) {
            const uint8_t *b = (const uint8_t *)ws->buf;
            size_t h = 2, n = b[1] & 0x7f;
            if (n == 126 && ws->len >= 4) {
                n = (size_t)b[2] << 8 | b[3];
                h = 4;
            } else if (n == 127 && ws->len >= 10) {
                n = 0;
                for (int i = 0; i < 8; i++)
                    n = n << 8 | b[2 + i];
                h = 10;
            }
            if ((b[1] & 0x7f) < 126 || h > 2) {
                if (ws->len >= h + n) {
                    int op = b[0] & 0x0f;
                    *out = malloc(n + 1);
                    memcpy(*out, ws->buf + h, n);
                    (*out)[n] = '\0';
                    *outlen = n;
                    ws->len -= h + n;
                    memmove(ws->buf, ws->buf + h + n, ws->len);
                    return op;
                }
            }
        }
        int left = (int)(deadline - fl_test_now_ms());
        if (left <= 0 || fl_ws_read_more(ws, left) != 0)
            return -1;
    }
}

/* The next server message decoded into msg (type returned), or -code for a
 * close frame, or 0 on timeout/EOF. */
int fl_ws_next(fl_ws_t *ws, int timeout_ms, fl_arena_t *arena, fl_wire_msg_t *msg)
{
    char *p = NULL, errstr[256];
    size_t n;
    int op = fl_ws_recv(ws, timeout_ms, &p, &n), rc;
    if (op < 0)
        return 0;
    if (op == 8) {
        int code = n >= 2 ? ((uint8_t)p[0] << 8 | (uint8_t)p[1]) : 1005;
        free(p);
        return -code;
    }
    rc = fl_wire_decode(FL_WIRE_S2C, op == 1 ? FL_WIRE_JSON : FL_WIRE_MSGPACK, p, n, NULL, arena,
                        msg, errstr, sizeof errstr);
    if (rc != 0) {
        fprintf(stderr, "undecodable server message (%s): %.*s\n", errstr, (int)n, p);
        free(p);
        return 0;
    }
    free(p);
    return msg->type;
}

/* ---- plain HTTP over the same buffer -------------------------------------------- */

int fl_http_send(fl_ws_t *c, int port, const char *method, const char *path, const char *token,
                 const char *body)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[12000], auth[9000] = "";
    size_t blen = body ? strlen(body) : 0;
    memset(c, 0, sizeof *c);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n%s\r\n%s",
             method, path, auth, blen, body ? "Content-Type: application/json\r\n" : "",
             body ? body : "");
    return write(c->fd, req, strlen(req)) == (ssize_t)strlen(req) ? 0 : -1;
}

int fl_http_recv(fl_ws_t *c, int timeout_ms, char **body, char **head)
{
    char *end, *p;
    int status = -1;
    size_t clen = 0;
    *body = NULL;
    if (head)
        *head = NULL;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (fl_ws_read_more(c, timeout_ms) != 0)
            return -1;
    sscanf(c->buf, "HTTP/1.1 %d", &status);
    *end = '\0';
    if ((p = strcasestr(c->buf, "content-length:")))
        clen = (size_t)strtoul(p + 15, NULL, 10);
    if (head)
        *head = strdup(c->buf);
    end += 4;
    while ((size_t)(c->buf + c->len - end) < clen)
        if (fl_ws_read_more(c, timeout_ms) != 0)
            break;
    *body = strndup(end, clen);
    return status;
}
