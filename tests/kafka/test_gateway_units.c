/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's bookkeeping without a broker or sockets (the fl_gateway
 * library's modules: gw_grants, gw_conn, gw_url, gw_origins):
 * - grants: interned per distinct (sub, read, write), shared by reference
 *   count, freed with the last reference; read/write checks agree with
 *   fl_claims_can_read / fl_claims_can_write;
 * - failed publishes: after seq n of (doc, client_id) failed, later seqs of
 *   that key are blocked until n itself is published (delivery confirmed);
 *   other keys are not; an older seq passes; a second failure keeps the
 *   lowest seq.
 * (Forcing a real publish failure for a later seq while an earlier one is
 * in flight is not reproducible against a healthy broker, hence this.)
 * - document ids in URLs: percent-decoding, the refused shapes, 255 bytes;
 * - the form bit of a record's origin.
 */
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "flushline/jwt.h"
#include "gw_conn.h"
#include "gw_grants.h"
#include "gw_origins.h"
#include "gw_url.h"

static fl_claims_t *claims_of(const char *sub, const char *read, const char *write)
{
    fl_claims_t *c = calloc(1, sizeof *c);
    snprintf(c->sub, sizeof c->sub, "%s", sub);
    c->exp = 1;
    if (read) {
        snprintf(c->read[0], sizeof c->read[0], "%s", read);
        c->nread = 1;
    }
    if (write) {
        snprintf(c->write[0], sizeof c->write[0], "%s", write);
        c->nwrite = 1;
    }
    return c;
}

static void test_grants_shared(void)
{
    fl_hmap_t *table = fl_hmap_new();
    fl_claims_t *a = claims_of("alice", "acme/pub/", "acme/"), *b = claims_of("bob", "*", NULL);
    gw_grants_t *g1, *g2, *g3;
    static const char *const docs[] = {"acme/x", "acme/pub/y", "other/z", "acme", "", "\xff"};

    g1 = gw_grants_get(table, a);
    g2 = gw_grants_get(table, a);
    g3 = gw_grants_get(table, b);
    ASSERT_TRUE(g1 && g2 && g3);
    ASSERT_TRUE(g1 == g2);
    ASSERT_TRUE(g1 != g3);
    ASSERT_EQ(g1->refs, 2);
    ASSERT_EQ(fl_hmap_count(table), 2);
    ASSERT_STR_EQ(g1->sub.ptr, "alice");
    ASSERT_EQ(g1->sub.len, 5);
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        fl_slice_t d = {docs[i], strlen(docs[i])};
        ASSERT_EQ(gw_grants_can_read(g1, d), fl_claims_can_read(a, d.ptr, d.len));
        ASSERT_EQ(gw_grants_can_write(g1, d), fl_claims_can_write(a, d.ptr, d.len));
        ASSERT_EQ(gw_grants_can_read(g3, d), fl_claims_can_read(b, d.ptr, d.len));
        ASSERT_EQ(gw_grants_can_write(g3, d), fl_claims_can_write(b, d.ptr, d.len));
    }
    ASSERT_TRUE(!gw_grants_can_write(NULL, FL_SLICE("acme/x")));
    gw_grants_unref(table, g1);
    ASSERT_EQ(fl_hmap_count(table), 2);
    gw_grants_unref(table, g2);
    gw_grants_unref(table, g3);
    ASSERT_EQ(fl_hmap_count(table), 0);
    fl_hmap_free(table);
    free(a);
    free(b);
}

static gw_inflight_t inflight(const char *doc, uint8_t cid, uint64_t seq)
{
    gw_inflight_t inf;
    memset(&inf, 0, sizeof inf);
    memset(inf.client_id, cid, sizeof inf.client_id);
    inf.seq = seq;
    inf.doclen = strlen(doc);
    memcpy(inf.doc, doc, inf.doclen);
    inf.partition = -1;
    return inf;
}

static void test_failed_publish_blocks_later_seqs(void)
{
    gw_conn_t conn;
    uint8_t c1[FL_CLIENT_ID_LEN], c2[FL_CLIENT_ID_LEN];
    fl_slice_t d1 = FL_SLICE("acme/a"), d2 = FL_SLICE("acme/b");
    gw_inflight_t f5 = inflight("acme/a", 1, 5), f4 = inflight("acme/a", 1, 4);

    memset(&conn, 0, sizeof conn);
    memset(c1, 1, sizeof c1);
    memset(c2, 2, sizeof c2);
    /* nothing failed: nothing blocked, nothing allocated */
    ASSERT_TRUE(!gw_conn_blocked(&conn, d1, c1, 6));
    gw_conn_on_published(&conn, &f5, 0);
    ASSERT_EQ(conn.nblocks, 0);
    ASSERT_TRUE(conn.blocks == NULL);

    /* seq 5 failed: 6 and 7 wait, other keys and older seqs do not */
    gw_conn_on_published(&conn, &f5, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    ASSERT_EQ(conn.nblocks, 1);
    ASSERT_TRUE(gw_conn_blocked(&conn, d1, c1, 6));
    ASSERT_TRUE(gw_conn_blocked(&conn, d1, c1, 7));
    ASSERT_TRUE(!gw_conn_blocked(&conn, d2, c1, 6));
    ASSERT_TRUE(!gw_conn_blocked(&conn, d1, c2, 6));
    ASSERT_TRUE(!gw_conn_blocked(&conn, d1, c1, 3));

    /* an earlier seq (4, in flight before) fails too: 4 is the one to wait for */
    gw_conn_on_published(&conn, &f4, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    ASSERT_EQ(conn.nblocks, 1);
    ASSERT_TRUE(gw_conn_blocked(&conn, d1, c1, 5));
    /* 4 comes again and passes; 5 still waits until 4 is confirmed */
    ASSERT_TRUE(!gw_conn_blocked(&conn, d1, c1, 4));
    ASSERT_TRUE(gw_conn_blocked(&conn, d1, c1, 5));
    /* a confirmation of another seq does not lift it */
    gw_conn_on_published(&conn, &f5, 0);
    ASSERT_TRUE(gw_conn_blocked(&conn, d1, c1, 5));
    /* 4 is in the log: the key is free again, and the list is gone */
    gw_conn_on_published(&conn, &f4, 0);
    ASSERT_TRUE(!gw_conn_blocked(&conn, d1, c1, 5));
    ASSERT_EQ(conn.nblocks, 0);
    ASSERT_TRUE(conn.blocks == NULL);

    /* two keys at once */
    {
        gw_inflight_t a = inflight("acme/a", 1, 9), b = inflight("acme/b", 2, 3);
        gw_conn_on_published(&conn, &a, RD_KAFKA_RESP_ERR__QUEUE_FULL);
        gw_conn_on_published(&conn, &b, RD_KAFKA_RESP_ERR__QUEUE_FULL);
        ASSERT_EQ(conn.nblocks, 2);
        ASSERT_TRUE(gw_conn_blocked(&conn, d1, c1, 10));
        ASSERT_TRUE(gw_conn_blocked(&conn, d2, c2, 4));
        gw_conn_on_published(&conn, &a, 0);
        ASSERT_TRUE(!gw_conn_blocked(&conn, d1, c1, 10));
        ASSERT_TRUE(gw_conn_blocked(&conn, d2, c2, 4));
        gw_conn_on_published(&conn, &b, 0);
        ASSERT_EQ(conn.nblocks, 0);
    }
    free(conn.blocks);
}

/* Document ids in URLs (docs/gateway.md): the raw path after /v1/docs/. */
static void test_http_doc_id(void)
{
    static const struct {
        const char *path, *id; /* id NULL: refused */
    } cases[] = {
        {"acme/x", "acme/x"},
        {"acme%2Fx", "acme/x"},
        {"acme%2fx", "acme/x"},
        {"acme/a+b", "acme/a+b"},
        {"acme/a%2Bb", "acme/a+b"},
        {"acme/a%20b", "acme/a b"},
        {"acme/d%C3%A9j%C3%A0", "acme/d\xc3\xa9j\xc3\xa0"},
        {"acme/!$&'()*,;=:@-._~", "acme/!$&'()*,;=:@-._~"},
        {"acme/.x/..y/x.", "acme/.x/..y/x."},
        {"acme/%3F%23%25", "acme/?#%"},
        {"acme//x", NULL},
        {"acme/./x", NULL},
        {"acme/../x", NULL},
        {"acme/%2e%2E/x", NULL},
        {"acme/.", NULL},
        {"acme/x/", NULL},
        {"/acme", NULL},
        {"acme/%2F", NULL},
        {"", NULL},
        {"acme/n%0Arest", NULL},
        {"acme/z%00z", NULL},
        {"acme/%7F", NULL},
        {"acme/%FF", NULL},
        {"acme/%C3", NULL},
        {"acme/%", NULL},
        {"acme/%4", NULL},
        {"acme/%g1", NULL},
        {"acme/sp ace", NULL},
        {"acme/x?y", NULL},
        {"acme/\xc3\xa9", NULL}, /* raw UTF-8 must be percent-encoded */
        {"acme/a\"b", NULL},
    };
    char out[FL_DOC_ID_MAX], longp[1024];
    size_t n;
    const char *why;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        fl_test_current = cases[i].path;
        why = NULL;
        rc = gw_url_doc_id(cases[i].path, strlen(cases[i].path), out, &n, &why);
        if (cases[i].id) {
            ASSERT_EQ(rc, 0);
            ASSERT_MEM_EQ(out, n, cases[i].id, strlen(cases[i].id));
        } else {
            ASSERT_EQ(rc, -1);
            ASSERT_TRUE(why != NULL && *why);
        }
    }
    fl_test_current = "test_http_doc_id";
    /* 255 decoded bytes pass, 256 do not, however they are written */
    memset(longp, 'a', 255);
    ASSERT_EQ(gw_url_doc_id(longp, 255, out, &n, &why), 0);
    ASSERT_EQ(n, 255);
    ASSERT_EQ(gw_url_doc_id(longp, 256, out, &n, &why), -1);
    for (int i = 0; i < 256; i++)
        memcpy(longp + 3 * i, "%61", 3);
    ASSERT_EQ(gw_url_doc_id(longp, 3 * 255, out, &n, &why), 0);
    ASSERT_EQ(gw_url_doc_id(longp, 3 * 256, out, &n, &why), -1);
}

/* The record origin of a flush carries its frame's form; the origin id
 * (even) finds the connection either way. */
static void test_origin_form_bit(void)
{
    static const gw_origin_ops_t ops = {0};
    gw_origins_t *reg = gw_origins_new((uint64_t)1 << 40, NULL);
    gw_origin_t o, o2;
    ASSERT_TRUE(reg != NULL);
    ASSERT_EQ(gw_origins_add(reg, &o, &ops), 0);
    ASSERT_EQ(o.id % 2, 0);
    ASSERT_EQ(gw_origins_add(reg, &o2, &ops), 0);
    ASSERT_EQ(o2.id % 2, 0);
    ASSERT_TRUE(gw_origins_get(reg, gw_origin_tag(o.id, FL_WIRE_JSON)) == &o);
    ASSERT_TRUE(gw_origins_get(reg, gw_origin_tag(o.id, FL_WIRE_MSGPACK)) == &o);
    ASSERT_EQ(gw_origin_form(gw_origin_tag(o.id, FL_WIRE_JSON)), FL_WIRE_JSON);
    ASSERT_EQ(gw_origin_form(gw_origin_tag(o.id, FL_WIRE_MSGPACK)), FL_WIRE_MSGPACK);
    gw_origins_del(reg, &o);
    ASSERT_TRUE(gw_origins_get(reg, o.id) == NULL);
    ASSERT_TRUE(gw_origins_get(reg, o2.id) == &o2);
    gw_origins_free(reg);
}

int main(void)
{
    RUN(test_grants_shared);
    RUN(test_failed_publish_blocks_later_seqs);
    RUN(test_http_doc_id);
    RUN(test_origin_form_bit);
    return fl_test_done();
}
