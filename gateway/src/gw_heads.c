/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_heads: the raw request line of each new connection (see gw_heads.h).
 *
 * @locality lws service thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include <jansson.h>

#include "flushline/clock.h"
#include "flushline/errors.h"
#include "flushline/flush.h"
#include "gw.h"
#include "gw_heads.h"
#include "gw_url.h"

#define CT_JSON "application/json"

#define GW_HEAD_REPEEK_US 5000 /* wait before peeking at a partial head again */

static bool head_refuse(gw_heads_t *heads, int fd, const gw_head_line_t *hl, size_t peeked);

typedef struct gw_head_s {
    gw_heads_t *heads;
    struct lws *wsi;
    lws_sorted_usec_list_t sul; /* lets POLLIN in again after a partial head */
} gw_head_t;

/* A socket whose head is in, waiting for the next loop turn to be adopted
 * by lws (not from inside the callback of the wsi that waited for it). */
typedef struct handoff_s {
    struct handoff_s *next;
    int fd;
} handoff_t;

struct gw_heads_s {
    bool raw;
    fl_counter_t *http_requests;
    struct lws_context *context;
    struct lws_vhost *vhost;
    fl_hmap_t *map; /* socket fd -> gw_head_line_t */
    char *buf;      /* GW_HEAD_MAX bytes: the peek */
    handoff_t *handoffs;
    lws_sorted_usec_list_t sul_handoff;
};

gw_heads_t *gw_heads_new(bool raw, fl_counter_t *http_requests)
{
    gw_heads_t *heads = calloc(1, sizeof *heads);
    if (!heads)
        return NULL;
    heads->raw = raw;
    heads->http_requests = http_requests;
    if (!(heads->map = fl_hmap_new()) || !(heads->buf = malloc(GW_HEAD_MAX))) {
        gw_heads_free(heads);
        return NULL;
    }
    return heads;
}

void gw_heads_attach(gw_heads_t *heads, struct lws_context *context, struct lws_vhost *vhost)
{
    heads->context = context;
    heads->vhost = vhost;
}

bool gw_heads_raw(const gw_heads_t *heads)
{
    return heads->raw;
}

size_t gw_heads_session_size(void)
{
    return sizeof(gw_head_t);
}

static void head_line_del(gw_heads_t *heads, int fd)
{
    gw_head_line_t *hl = fl_hmap_get(heads->map, &fd, sizeof fd);
    if (hl) {
        fl_hmap_del(heads->map, &fd, sizeof fd);
        free(hl);
    }
}

/* Keeps "METHOD SP target SP HTTP-version" of buf for fd (replacing a
 * stale one): the target is all between the first and the last space, so
 * a space inside it (which must be percent-encoded) stays visible. A line
 * that does not look like a request keeps nothing (lws refuses it): false
 * then. */
static bool head_line_keep(gw_heads_t *heads, int fd, const char *buf, size_t len)
{
    const char *eol = memchr(buf, '\n', len), *sp1, *sp2;
    gw_head_line_t *hl;
    size_t mlen, tlen;
    head_line_del(heads, fd);
    if (!eol)
        return false;
    if (!(sp1 = memchr(buf, ' ', (size_t)(eol - buf))))
        return false;
    for (sp2 = eol; sp2 > sp1 && *sp2 != ' '; sp2--)
        ;
    if (sp2 == sp1)
        return false;
    mlen = (size_t)(sp1 - buf);
    tlen = (size_t)(sp2 - sp1 - 1);
    if (mlen == 0 || mlen >= sizeof hl->method || tlen > GW_TARGET_MAX ||
        !(hl = malloc(sizeof *hl + tlen)))
        return false;
    hl->fd = fd;
    hl->at_us = fl_clock_mono_us();
    memcpy(hl->method, buf, mlen);
    hl->method[mlen] = '\0';
    hl->tlen = tlen;
    memcpy(hl->target, sp1 + 1, tlen);
    if (fl_hmap_put(heads->map, &hl->fd, sizeof hl->fd, hl) != 0) {
        free(hl);
        return false;
    }
    return true;
}

gw_head_line_t *gw_heads_take(gw_heads_t *heads, struct lws *wsi)
{
    int fd = (int)lws_get_socket_fd(wsi);
    gw_head_line_t *hl = heads && heads->map ? fl_hmap_get(heads->map, &fd, sizeof fd) : NULL;
    if (hl)
        fl_hmap_del(heads->map, &fd, sizeof fd);
    return hl;
}

/* Peeks at fd's head: 1 when it is complete (or as long as we read), 0 when
 * more is to come, -1 when the peer is gone. *n: bytes seen. */
static int head_peek(gw_heads_t *heads, int fd, size_t *n)
{
    ssize_t r = recv(fd, heads->buf, GW_HEAD_MAX, MSG_PEEK | MSG_DONTWAIT);
    *n = 0;
    if (r == 0)
        return -1;
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    *n = (size_t)r;
    if (*n >= GW_HEAD_MAX || memmem(heads->buf, *n, "\r\n\r\n", 4) ||
        memmem(heads->buf, *n, "\n\n", 2))
        return 1;
    return 0;
}

int gw_heads_on_accept(gw_heads_t *heads, int fd)
{
    lws_sock_file_fd_type desc;
    size_t n;
    int dup_fd, rc;

    if (!heads || !heads->raw || !heads->map)
        return 0;
    head_line_del(heads, fd); /* a closed predecessor's */
    if ((rc = head_peek(heads, fd, &n)) != 0) {
        if (rc > 0 && head_line_keep(heads, fd, heads->buf, n) &&
            head_refuse(heads, fd, fl_hmap_get(heads->map, &fd, sizeof fd), n)) {
            head_line_del(heads, fd);
            return 1; /* answered: lws closes it */
        }
        return 0; /* (a peer already gone: lws sees it too) */
    }
    /* not all there yet: wait for it on a duplicate */
    if ((dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return 0; /* served without a line: /v1/docs is refused */
    desc.filefd = dup_fd;
    if (!lws_adopt_descriptor_vhost(heads->vhost, LWS_ADOPT_RAW_FILE_DESC, desc, "flushline-head",
                                    NULL))
        return 0; /* (lws closed the duplicate) */
    return 1; /* lws closes its copy; the duplicate carries on */
}

static void on_handoff(lws_sorted_usec_list_t *sul)
{
    gw_heads_t *heads = lws_container_of(sul, gw_heads_t, sul_handoff);
    handoff_t *h = heads->handoffs, *rev = NULL;
    heads->handoffs = NULL;
    while (h) { /* oldest first */
        handoff_t *next = h->next;
        h->next = rev;
        rev = h;
        h = next;
    }
    while (rev) {
        handoff_t *next = rev->next;
        /* lws reads the head from the socket as if it had just accepted
         * it; on failure it has closed the socket */
        if (!lws_adopt_socket_vhost(heads->vhost, rev->fd))
            head_line_del(heads, rev->fd);
        free(rev);
        rev = next;
    }
}

static void on_repeek(lws_sorted_usec_list_t *sul)
{
    gw_head_t *head = lws_container_of(sul, gw_head_t, sul);
    lws_rx_flow_control(head->wsi, 1);
}

int gw_heads_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
    const struct lws_protocols *prot = lws_get_protocol(wsi);
    gw_heads_t *heads = prot ? prot->user : NULL;
    gw_head_t *head = user;
    handoff_t *h;
    size_t n;
    int fd, rc;

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT_FILE:
        if (!head || !heads)
            return -1;
        memset(head, 0, sizeof *head);
        head->heads = heads;
        head->wsi = wsi;
        /* a client that never finishes its head cannot hold a socket */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, GW_HEAD_TIMEOUT_S);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!head || !heads)
            return -1;
        fd = (int)lws_get_socket_fd(wsi);
        if ((rc = head_peek(heads, fd, &n)) < 0)
            return -1; /* gone */
        if (rc == 0) {
            /* the bytes stay unread, so POLLIN would fire at once again:
             * pause, then look again */
            lws_rx_flow_control(wsi, 0);
            lws_sul_schedule(heads->context, 0, &head->sul, on_repeek, GW_HEAD_REPEEK_US);
            return 0;
        }
        /* the head is in: lws takes a duplicate, this wsi closes its fd
         * (unless the gateway answers a bad /v1/docs line itself) */
        if (head_line_keep(heads, fd, heads->buf, n) &&
            head_refuse(heads, fd, fl_hmap_get(heads->map, &fd, sizeof fd), n)) {
            head_line_del(heads, fd);
            return -1;
        }
        head_line_del(heads, fd);
        if (!(h = malloc(sizeof *h)))
            return -1;
        if ((h->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            free(h);
            return -1;
        }
        head_line_keep(heads, h->fd, heads->buf, n);
        h->next = heads->handoffs;
        heads->handoffs = h;
        lws_sul_schedule(heads->context, 0, &heads->sul_handoff, on_handoff, 1);
        return -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (head)
            lws_sul_cancel(&head->sul);
        return 0;
    default:
        return 0;
    }
}

/* Lines nobody took (lws refused the request, the client went away before
 * its headers were served) go after a while. */
void gw_heads_sweep(gw_heads_t *heads, int64_t now_us)
{
    gw_head_line_t *hl;
    if (!heads)
        return;
    FL_HMAP_FOREACH(heads->map, it, hl)
        if (hl->at_us < now_us - 30 * 1000000ll)
            head_line_del(heads, hl->fd); /* the current entry: the iteration goes on */
}

void gw_heads_free(gw_heads_t *heads)
{
    if (!heads)
        return;
    if (heads->context)
        lws_sul_cancel(&heads->sul_handoff);
    while (heads->handoffs) {
        handoff_t *h = heads->handoffs;
        heads->handoffs = h->next;
        close(h->fd);
        free(h);
    }
    if (heads->map) {
        gw_head_line_t *hl;
        FL_HMAP_FOREACH(heads->map, it, hl)
            free(hl);
        fl_hmap_free(heads->map);
    }
    free(heads->buf);
    free(heads);
}


/* An error answer written straight to a socket lws has not read from yet:
 * for a /v1/docs request line that lws would mangle or drop (a "%00"
 * makes it close the connection without a word). The peeked head is read
 * first, so that the close sends FIN, not RST. True when it answered. */
static bool head_refuse(gw_heads_t *heads, int fd, const gw_head_line_t *hl, size_t peeked)
{
    char doc[FL_DOC_ID_MAX], reason[256], *text = NULL, hdr[256];
    const char *q;
    size_t doclen, plen;
    uint16_t code;
    int status, hn;
    json_t *j;

    if (!hl || hl->tlen < 9 || memcmp(hl->target, "/v1/docs/", 9) != 0)
        return false;
    q = memchr(hl->target, '?', hl->tlen);
    plen = q ? (size_t)(q - hl->target) : hl->tlen;
    if ((status = gw_url_docs_target(hl->method, hl->target, plen, q != NULL, doc, &doclen, &code,
                              reason, sizeof reason)) == 0)
        return false;
    fl_counter_inc(heads->http_requests);
    j = json_pack("{s:i,s:s,s:s}", "code", (int)code, "name", fl_code_name(code), "reason",
                  reason);
    text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (text) {
        hn = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %d %s\r\ncontent-type: " CT_JSON "\r\ncontent-length: %zu\r\n"
                      "cache-control: no-store\r\nconnection: close\r\nserver: " GW_SERVER_NAME
                      "\r\n\r\n",
                      status, status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
                                                                          : "Bad Request",
                      strlen(text));
        ssize_t got = recv(fd, heads->buf, peeked, MSG_DONTWAIT); /* consumed */
        (void)got;
        /* a few hundred bytes into an idle socket's buffer: they fit */
        if (send(fd, hdr, (size_t)hn, MSG_DONTWAIT | MSG_NOSIGNAL) == hn)
            send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
        free(text);
    }
    return true;
}

