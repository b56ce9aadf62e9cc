/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_buf: refcounted frame buffers with LWS_PRE headroom (see gw_buf.h).
 *
 * @locality lws service thread (buffers are not shared).
 */
#include <stdlib.h>
#include <string.h>

#include "flushline/log.h"
#include "gw_buf.h"

_Static_assert(LWS_PRE >= 10, "the frame header is built in the LWS_PRE headroom");

gw_buf_t *gw_buf_new(const char *p, size_t len, bool text)
{
    gw_buf_t *buf = malloc(sizeof *buf + LWS_PRE + len);
    if (!buf)
        return NULL;
    unsigned char *h;
    buf->refs = 1;
    buf->text = text;
    buf->len = len;
    buf->src_ms = 0;
    buf->data = (unsigned char *)(buf + 1);
    if (len)
        memcpy(buf->data + LWS_PRE, p, len);
    /* RFC 6455 server frame header: FIN + opcode, unmasked length */
    buf->hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    h = buf->data + LWS_PRE - buf->hlen;
    h[0] = 0x80 | (text ? 0x1 : 0x2);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    return buf;
}

void gw_buf_unref(gw_buf_t *buf)
{
    if (buf && --buf->refs == 0)
        free(buf);
}

gw_buf_t *gw_buf_encode(const fl_wire_msg_t *msg, fl_wire_form_t form)
{
    char *out = NULL, errstr[256];
    size_t len;
    gw_buf_t *buf;
    if (fl_wire_encode(msg, form, &out, &len, errstr, sizeof errstr) != 0) {
        fl_error("encoding a %s message: %s", fl_wire_type_name(msg->type), errstr);
        return NULL;
    }
    buf = gw_buf_new(out, len, form == FL_WIRE_JSON);
    free(out);
    return buf;
}
