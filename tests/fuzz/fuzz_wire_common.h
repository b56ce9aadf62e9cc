/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The checks shared by fuzz_wire_frame.c and fuzz_wire_record.c, included
 * by both (each fuzz target is one program): one(dir, form, buf, len) decodes
 * the input, checks peek against decode, re-encodes an accepted message and
 * compares the direct codec paths with the reference tree codec.
 */
#ifndef FUZZ_WIRE_COMMON_H
#define FUZZ_WIRE_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flushline/wire.h"

static void same_encodings(const fl_wire_msg_t *a, const fl_wire_msg_t *b)
{
    char errstr[256], *ea = NULL, *eb = NULL;
    size_t la, lb;
    int form;
    for (form = FL_WIRE_MSGPACK; form <= FL_WIRE_JSON; form++) {
        if (fl_wire_encode_tree(a, (fl_wire_form_t)form, &ea, &la, errstr, sizeof errstr) != 0 ||
            fl_wire_encode_tree(b, (fl_wire_form_t)form, &eb, &lb, errstr, sizeof errstr) != 0 ||
            la != lb || memcmp(ea, eb, la) != 0)
            abort();
        free(ea);
        free(eb);
    }
}

/* Direct and tree paths agree on buf, and on the encoding of msg. */
static void compare_paths(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len,
                          int rc, const fl_wire_msg_t *msg)
{
    static fl_arena_t *arena;
    fl_wire_msg_t tmsg;
    char errstr[256], *ea = NULL, *eb = NULL;
    size_t la, lb;
    int rct, erc, ert;
    if (!arena)
        arena = fl_arena_new(4096);
    fl_arena_reset(arena);
    rct = fl_wire_decode_tree(dir, form, buf, len, NULL, arena, &tmsg, errstr, sizeof errstr);
    if (rct != rc)
        abort();
    if (rc != 0)
        return;
    if (tmsg.type != msg->type)
        abort();
    same_encodings(msg, &tmsg);
    erc = fl_wire_encode(msg, FL_WIRE_MSGPACK, &ea, &la, errstr, sizeof errstr);
    ert = fl_wire_encode_tree(msg, FL_WIRE_MSGPACK, &eb, &lb, errstr, sizeof errstr);
    if (erc != ert || (erc == 0 && (la != lb || memcmp(ea, eb, la) != 0)))
        abort();
    free(ea);
    free(eb);
}

static void one(fl_wire_dir_t dir, fl_wire_form_t form, const char *buf, size_t len)
{
    static fl_arena_t *arena;
    fl_wire_msg_t msg, msg2;
    char errstr[256], *enc = NULL, *enc2 = NULL;
    size_t enclen, enclen2;
    int type;
    uint32_t version;
    int rc, prc;
    if (!arena)
        arena = fl_arena_new(4096);
    fl_arena_reset(arena);
    prc = fl_wire_peek(buf, len, form, dir, &type, &version, errstr, sizeof errstr);
    rc = fl_wire_decode(dir, form, buf, len, NULL, arena, &msg, errstr, sizeof errstr);
    if (rc == 0 && (prc != 0 || type != msg.type))
        abort();
    compare_paths(dir, form, buf, len, rc, &msg);
    if (dir == FL_WIRE_C2S) {
        /* what a flush frame says about itself (for the refusal that names
         * it): well-formed parts only, and the decoded ones when it decodes */
        fl_slice_t doc;
        uint8_t cid[FL_CLIENT_ID_LEN];
        uint64_t seq;
        unsigned got = fl_wire_flush_ident(form, buf, len, NULL, arena, &doc, cid, &seq);
        if ((got & FL_WIRE_IDENT_DOC) &&
            (doc.len < 1 || doc.len > FL_DOC_ID_MAX || !fl_utf8_valid(doc.ptr, doc.len)))
            abort();
        if ((got & FL_WIRE_IDENT_SEQ) && seq > INT64_MAX)
            abort();
        if (rc == 0 && msg.type == FL_WT_FLUSH &&
            (got != (FL_WIRE_IDENT_DOC | FL_WIRE_IDENT_CLIENT_ID | FL_WIRE_IDENT_SEQ) ||
             doc.len != msg.u.flush.doc.len || memcmp(doc.ptr, msg.u.flush.doc.ptr, doc.len) ||
             memcmp(cid, msg.u.flush.client_id, FL_CLIENT_ID_LEN) || seq != msg.u.flush.seq))
            abort();
    }
    if (rc != 0)
        return;
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &enc, &enclen, errstr, sizeof errstr) != 0)
        abort();
    if (fl_wire_decode(dir, FL_WIRE_MSGPACK, enc, enclen, NULL, arena, &msg2, errstr,
                       sizeof errstr) != 0)
        abort();
    if (fl_wire_encode(&msg2, FL_WIRE_MSGPACK, &enc2, &enclen2, errstr, sizeof errstr) != 0 ||
        enclen != enclen2 || memcmp(enc, enc2, enclen) != 0)
        abort();
    free(enc2);
    if (fl_wire_encode(&msg, FL_WIRE_JSON, &enc2, &enclen2, errstr, sizeof errstr) != 0)
        abort();
    free(enc2);
    free(enc);
}

#endif
