/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd: see httpd.h. One libwebsockets context with one explicit vhost and
 * one HTTP protocol. A request is answered in two steps, as libwebsockets
 * wants: the headers from LWS_CALLBACK_HTTP, the body from the next
 * LWS_CALLBACK_HTTP_WRITEABLE. Stopping sets a flag and wakes lws_service()
 * with lws_cancel_service(), the one lws call that is safe from another
 * thread.
 */
#include "flushline/httpd.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "flushline/log.h"

struct fl_httpd_s {
    struct lws_context *context;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[2];
    fl_httpd_handler_fn handler;
    void *opaque;
    pthread_t thread;
    atomic_bool stop;
    int port;
};

/* Per connection: the response body waiting for the socket to be writable. */
typedef struct pss_s {
    unsigned char *buf; /* LWS_PRE bytes, then the body */
    size_t len;
    bool close; /* close after this response (non-GET requests) */
} pss_t;

/* Sends the status line and headers and queues the body. Non-zero on failure
 * (the connection is then closed). */
static int respond(struct lws *wsi, pss_t *pss, int status, const char *content_type,
                   const char *body, size_t body_len, bool close)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start;
    unsigned char *end = hdr + sizeof hdr - 1;

    free(pss->buf);
    pss->buf = malloc(LWS_PRE + body_len + 1);
    if (!pss->buf)
        return -1;
    memcpy(pss->buf + LWS_PRE, body, body_len);
    pss->len = body_len;
    pss->close = close;
    if (lws_add_http_common_headers(wsi, (unsigned int)status, content_type,
                                    (lws_filepos_t)body_len, &p, end))
        return -1;
    if (close && lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                             (const unsigned char *)"GET", 3, &p, end))
        return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_request(struct lws *wsi, pss_t *pss, const char *path)
{
    fl_httpd_t *h = lws_context_user(lws_get_context(wsi));
    fl_httpd_response_t resp = {404, "text/plain; charset=utf-8", NULL, 0};
    const char *ctype;
    int r;

    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        static const char msg[] = "method not allowed\n";
        return respond(wsi, pss, 405, "text/plain; charset=utf-8", msg, sizeof msg - 1, true);
    }
    h->handler(h->opaque, path, &resp);
    ctype = resp.content_type ? resp.content_type : "text/plain; charset=utf-8";
    if (resp.status == 404 && !resp.body) {
        static const char msg[] = "not found\n";
        return respond(wsi, pss, 404, ctype, msg, sizeof msg - 1, false);
    }
    if (resp.status < 100 || resp.status > 599) {
        fl_error("httpd: handler for %s returned status %d", path, resp.status);
        resp.status = 500;
    }
    r = respond(wsi, pss, resp.status, ctype, resp.body ? resp.body : "",
                resp.body ? resp.body_len : 0, false);
    free(resp.body);
    return r;
}

static int on_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    pss_t *pss = user;
    int n;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_request(wsi, pss, in ? (const char *)in : "/") ? -1 : 0;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!pss || !pss->buf)
            break;
        if (pss->len > 0) {
            n = lws_write(wsi, pss->buf + LWS_PRE, pss->len, LWS_WRITE_HTTP_FINAL);
            if (n < 0 || (size_t)n != pss->len) {
                free(pss->buf);
                pss->buf = NULL;
                return -1;
            }
        }
        free(pss->buf);
        pss->buf = NULL;
        if (pss->close)
            return -1; /* lws drains anything still buffered before closing */
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;

    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /* bodies (of refused methods) are ignored */
        return 0;

    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss) {
            free(pss->buf);
            pss->buf = NULL;
        }
        break;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void *service_main(void *arg)
{
    fl_httpd_t *h = arg;
    while (!atomic_load(&h->stop))
        if (lws_service(h->context, 0) < 0)
            break;
    return NULL;
}

fl_httpd_t *fl_httpd_start(const char *bind_addr, int port, fl_httpd_handler_fn handler,
                           void *opaque, char *errstr, size_t errstr_size)
{
    struct lws_context_creation_info info;
    fl_httpd_t *h = NULL;
    const char *iface = bind_addr;
    int r;

    if (port < 0 || port > 65535 || !handler) {
        snprintf(errstr, errstr_size, "httpd: invalid port %d or no handler", port);
        return NULL;
    }
    if (!(h = calloc(1, sizeof *h))) {
        snprintf(errstr, errstr_size, "httpd: out of memory");
        return NULL;
    }
    h->handler = handler;
    h->opaque = opaque;
    atomic_init(&h->stop, false);
    h->protocols[0].name = "http";
    h->protocols[0].callback = on_http;
    h->protocols[0].per_session_data_size = sizeof(pss_t);

    fl_log_lws_bridge();

    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    info.user = h;
    /* lws sizes its poll table by this; a few health probes need little. */
    info.fd_limit_per_thread = 256;
    h->context = lws_create_context(&info);
    if (!h->context) {
        snprintf(errstr, errstr_size, "httpd: cannot create the libwebsockets context");
        goto fail;
    }

    if (iface && (!*iface || strcmp(iface, "0.0.0.0") == 0 || strcmp(iface, "::") == 0)) {
        if (strcmp(iface, "0.0.0.0") == 0)
            info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
        iface = NULL;
    } else if (iface && !strchr(iface, ':')) {
        /* an IPv4 literal: bind an IPv4 socket to exactly that address */
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info.port = port;
    info.iface = iface;
    info.protocols = h->protocols;
    info.vhost_name = "fl_httpd";
    info.server_string = "flushline";
    h->vhost = lws_create_vhost(h->context, &info);
    if (!h->vhost) {
        snprintf(errstr, errstr_size, "httpd: cannot listen on %s:%d (address in use or not local)",
                 bind_addr && *bind_addr ? bind_addr : "*", port);
        goto fail;
    }
    h->port = lws_get_vhost_listen_port(h->vhost);
    if ((r = pthread_create(&h->thread, NULL, service_main, h)) != 0) {
        snprintf(errstr, errstr_size, "httpd: cannot start the service thread: %s", strerror(r));
        goto fail;
    }
    return h;
fail:
    if (h->context)
        lws_context_destroy(h->context);
    free(h);
    return NULL;
}

int fl_httpd_port(const fl_httpd_t *h)
{
    return h->port;
}

void fl_httpd_stop(fl_httpd_t *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    lws_cancel_service(h->context);
    pthread_join(h->thread, NULL);
    lws_context_destroy(h->context);
    free(h);
}
