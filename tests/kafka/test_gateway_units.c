/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's bookkeeping without a broker or sockets (the fl_gateway
 * library's internals, gw_int.h):
 * - grants: interned per distinct (sub, read, write), shared by reference
 *   count, freed with the last reference; read/write checks agree with
 *   fl_claims_can_read / fl_claims_can_write;
 * - failed publishes: after seq n of (doc, client_id) failed, later seqs of
 *   that key are blocked until n itself is published (delivery confirmed);
 *   other keys are not; an older seq passes; a second failure keeps the
 *   lowest seq.
 * (Forcing a real publish failure for a later seq while an earlier one is
 * in flight is not reproducible against a healthy broker, hence this.)
 */
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "flushline/jwt.h"
#include "gw_int.h"

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
    gw_t *gw = calloc(1, sizeof *gw);
    fl_claims_t *a = claims_of("alice", "acme/pub/", "acme/"), *b = claims_of("bob", "*", NULL);
    gw_grants_t *g1, *g2, *g3;
    static const char *const docs[] = {"acme/x", "acme/pub/y", "other/z", "acme", "", "\xff"};

    gw->grants = gw_map_new();
    g1 = gw_grants_get(gw, a);
    g2 = gw_grants_get(gw, a);
    g3 = gw_grants_get(gw, b);
    ASSERT_TRUE(g1 && g2 && g3);
    ASSERT_TRUE(g1 == g2);
    ASSERT_TRUE(g1 != g3);
    ASSERT_EQ(g1->refs, 2);
    ASSERT_EQ(gw_map_count(gw->grants), 2);
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
    gw_grants_unref(gw, g1);
    ASSERT_EQ(gw_map_count(gw->grants), 2);
    gw_grants_unref(gw, g2);
    gw_grants_unref(gw, g3);
    ASSERT_EQ(gw_map_count(gw->grants), 0);
    gw_map_free(gw->grants);
    free(a);
    free(b);
    free(gw);
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

int main(void)
{
    RUN(test_grants_shared);
    RUN(test_failed_publish_blocks_later_seqs);
    return fl_test_done();
}
