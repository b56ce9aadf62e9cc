/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal WebSocket client on a plain socket, for gateway tests that need
 * what a real client library hides: exact frames, garbage, a small receive
 * buffer, a reader that stops reading, Authorization headers at the upgrade.
 * Client frames are masked; messages are whole (no fragmentation).
 */
#ifndef FL_WS_H
#define FL_WS_H

#include <stddef.h>

#include "flushline/wire.h"

typedef struct fl_ws_s {
    int fd;
    char buf[1 << 21];
    size_t len;
} fl_ws_t;

/* Connects to 127.0.0.1:port and upgrades at /v1/ws with extra header lines
 * ("Name: value\r\n", or NULL); rcvbuf > 0 sets SO_RCVBUF first. Returns
 * the HTTP status (101) or -1. */
int fl_ws_connect(fl_ws_t *ws, int port, const char *extra, int rcvbuf);
void fl_ws_close(fl_ws_t *ws);
/* Appends whatever arrives within timeout_ms to ws->buf. 0, or -1 on
 * timeout, EOF or error. (Also for plain HTTP over the same buffer.) */
int fl_ws_read_more(fl_ws_t *ws, int timeout_ms);
/* One masked frame with opcode (1 text, 2 binary, 8 close, ...). 0 or -1. */
int fl_ws_send(fl_ws_t *ws, int opcode, const void *p, size_t n);
int fl_ws_text(fl_ws_t *ws, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One whole message: its opcode (1, 2, 8) with the payload copied to *out
 * (malloc'd), or -1 on timeout or EOF. */
int fl_ws_recv(fl_ws_t *ws, int timeout_ms, char **out, size_t *outlen);
/* The next server message decoded into msg (type returned), or -code for a
 * close frame, or 0 on timeout/EOF. */
int fl_ws_next(fl_ws_t *ws, int timeout_ms, fl_arena_t *arena, fl_wire_msg_t *msg);

/* Plain HTTP/1.1 on c's socket and buffer: one request on a fresh
 * connection to 127.0.0.1:port (token: an Authorization: Bearer header;
 * body: JSON, or NULL). 0 or -1. Close with fl_ws_close. */
int fl_http_send(fl_ws_t *c, int port, const char *method, const char *path, const char *token,
                 const char *body);
/* Its answer: the status with the body in *body and the header lines in
 * *head (may be NULL), both malloc'd; -1 on timeout or EOF. */
int fl_http_recv(fl_ws_t *c, int timeout_ms, char **body, char **head);

#endif
