/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_buf: refcounted frames. One encoded message with LWS_PRE bytes of
 * headroom, shared by every connection it is queued on (fan-out encodes
 * once), its WebSocket frame header built once in the headroom.
 *
 * @locality lws service thread (buffers are not shared across threads).
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "flushline/wire.h"

typedef struct gw_buf_s {
    uint32_t refs;
    bool text;    /* JSON text frame, else msgpack binary frame */
    uint8_t hlen; /* WebSocket frame header bytes, just before the payload */
    size_t len;
    int64_t src_ms; /* a delta's: its outcome's Kafka timestamp (write latency); 0: none */
    unsigned char *data; /* LWS_PRE headroom (ending in the frame header), then len bytes */
} gw_buf_t;

/* The whole server-to-client frame (unmasked header + payload), built once:
 * sent raw, several queued frames of one connection go out in one write. */
#define GW_BUF_FRAME(buf) ((buf)->data + LWS_PRE - (buf)->hlen)
#define GW_BUF_FRAME_LEN(buf) ((buf)->hlen + (buf)->len)
#define GW_WBATCH 65536 /* bytes of queued frames coalesced into one write */

/* A buffer holding a copy of p (len bytes); refs = 1; NULL on OOM. */
gw_buf_t *gw_buf_new(const char *p, size_t len, bool text);
/* Drops a reference; the last one frees. NULL is safe. */
void gw_buf_unref(gw_buf_t *buf);
/* Encodes msg in form into a new buffer; NULL (logged) on failure. */
gw_buf_t *gw_buf_encode(const fl_wire_msg_t *msg, fl_wire_form_t form);

#endif
