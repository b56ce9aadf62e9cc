/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_heads: the request line of each new connection, read before
 * libwebsockets reads it.
 *
 * libwebsockets 4.1.6 decodes and normalises the request path before any
 * callback sees it ("//" and "/./" collapse, ".." climbs, "+" becomes a
 * space, "%00" drops the connection, "%0A" ends the line), which would
 * make a URL address another document than it names. So, without TLS, the
 * gateway looks at each new connection's request head itself before lws
 * reads it: with MSG_PEEK, so the bytes stay in the socket for lws. When
 * the head is already there at accept (the common case) the request line
 * is kept by fd and lws goes on. Else a duplicate of the socket waits as a
 * raw file wsi of the "flushline-head" protocol (lws does not read those;
 * the protocol's user pointer is the gw_heads_t) that peeks again on each
 * POLLIN (pausing a few ms in between, the data being still unread), and
 * is adopted by lws (lws_adopt_socket_vhost) once the head is in; lws
 * drops its own copy. The HTTP and upgrade callbacks take the line back by
 * fd. One request per connection: every HTTP answer closes it (a later
 * request on the same connection has no line). Over the gateway's own TLS
 * the bytes are encrypted here: no line, and /v1/docs is refused
 * (docs/gateway.md). (Handing lws the bytes read instead,
 * lws_adopt_socket_vhost_readbuf, makes lws 4.1.6 spin on any request
 * with a body: it feeds its own buffered head back as the body.)
 *
 * A /v1/docs line that lws would mangle or drop is answered here, straight
 * on the socket (400/404/405 with the JSON error body).
 *
 * @locality lws service thread.
 */
#ifndef GW_HEADS_H
#define GW_HEADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "flushline/hmap.h"
#include "flushline/metrics.h"

#define GW_HEAD_MAX 16384  /* request head bytes read before lws takes over */
#define GW_TARGET_MAX 4096 /* longest request-target kept */
#define GW_HEAD_TIMEOUT_S 10

typedef struct gw_heads_s gw_heads_t;

/* The request line of a connection, as it came. */
typedef struct gw_head_line_s {
    int fd;        /* the key */
    int64_t at_us; /* when it was read (stale ones are swept) */
    char method[16];
    size_t tlen;
    char target[]; /* tlen bytes (not NUL-terminated) */
} gw_head_line_t;

/* raw false (TLS): nothing is read, gw_heads_take always answers NULL.
 * http_requests counts the requests answered here. NULL on OOM. */
gw_heads_t *gw_heads_new(bool raw, fl_counter_t *http_requests);
/* The context (timers) and the vhost (adoption) once they exist. */
void gw_heads_attach(gw_heads_t *heads, struct lws_context *context, struct lws_vhost *vhost);
/* Frees every kept line and pending handoff. NULL is safe. */
void gw_heads_free(gw_heads_t *heads);
bool gw_heads_raw(const gw_heads_t *heads);

/* A connection was accepted (LWS_CALLBACK_FILTER_NETWORK_CONNECTION):
 * keeps its request line when the head is already there; else waits for
 * it on a duplicate of the socket and returns 1 so that lws drops its own
 * copy; 1 too when the line was answered here. */
int gw_heads_on_accept(gw_heads_t *heads, int fd);
/* The callback of the "flushline-head" protocol (user: the gw_heads_t). */
int gw_heads_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
size_t gw_heads_session_size(void);
/* Takes (and forgets) the request line read for wsi's socket; NULL when
 * none was read (TLS, or a later request on a kept-alive connection). The
 * caller frees it. heads may be NULL. */
gw_head_line_t *gw_heads_take(gw_heads_t *heads, struct lws *wsi);
/* Lines nobody took (lws refused the request, the client went away) go
 * after 30 s. */
void gw_heads_sweep(gw_heads_t *heads, int64_t now_us);

#endif
