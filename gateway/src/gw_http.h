/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_http: the HTTP side of the gateway's port (routes in gw_http.c; the
 * lws context's user pointer is the gw_svc_t).
 *
 * @locality lws service thread.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stddef.h>

#include <libwebsockets.h>

/* The lws callback of the "flushline" protocol for HTTP reasons (the
 * others fall back to lws's defaults). */
int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
/* Size of the HTTP per-session state (the protocol's pss is the larger of
 * it and a connection's). */
size_t gw_http_session_size(void);

#endif
