/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd: a minimal HTTP/1.1 server for daemons that only answer a few GET
 * endpoints (/healthz, /readyz, /metrics), built on libwebsockets and running
 * its own service thread. Each GET is answered by one call of the handler;
 * other methods get 405 (with "Allow: GET") and the connection is closed.
 * libwebsockets' own errors and warnings go through log.h.
 *
 * @locality fl_httpd_start/stop: the owning thread; the handler runs on the
 * httpd's service thread (so it must only read state that is safe to read
 * from another thread, e.g. atomics or metrics).
 */
#ifndef FLUSHLINE_HTTPD_H
#define FLUSHLINE_HTTPD_H

#include <stddef.h>

typedef struct fl_httpd_s fl_httpd_t;

typedef struct fl_httpd_response_s {
    int status;               /* preset to 404; set 200, 503, ... */
    const char *content_type; /* preset to text/plain; must outlive the call (a literal) */
    char *body;               /* malloc'd by the handler, freed by httpd; NULL = empty */
    size_t body_len;
} fl_httpd_response_t;

/*
 * Called on the service thread for each GET with the request path (without
 * the query string, NUL terminated). Leaving the response untouched answers
 * 404 "not found". Ownership of resp->body passes to httpd in every case.
 */
typedef void (*fl_httpd_handler_fn)(void *opaque, const char *path, fl_httpd_response_t *resp);

/*
 * Listens on bind_addr (an IPv4 or IPv6 literal; NULL, "", "0.0.0.0" or "::"
 * for every address) and port (0 picks a free one, see fl_httpd_port()) and
 * starts the service thread. opaque is passed to the handler. NULL with
 * errstr when the address cannot be bound or the thread not started.
 */
fl_httpd_t *fl_httpd_start(const char *bind_addr, int port, fl_httpd_handler_fn handler,
                           void *opaque, char *errstr, size_t errstr_size);

/* The port actually listened on. */
int fl_httpd_port(const fl_httpd_t *h);

/* Stops the service thread, waits for it, closes every connection and frees
 * h. After it returns the handler is never called again. NULL is fine. */
void fl_httpd_stop(fl_httpd_t *h);

#endif
