/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_rerun: a speculative gateway's memory of what it applied above a
 * document's committed version. A re-run's copy (same version, same chain
 * hash) is recognised however far back it reaches, down to the committed
 * version; another chain hash, or a version that was no outcome boundary,
 * is a divergence; below the memory (cap, or a live copy built above the
 * committed version) it cannot be checked; the committed version prunes.
 */
#include <stdint.h>
#include <string.h>

#include "fl_test.h"
#include "gw_rerun.h"

/* An outcome of flush seq from before to v with a chain made of v and salt. */
static const fl_outcome_t *oc(uint64_t before, uint64_t v, uint8_t salt, uint64_t seq)
{
    static fl_outcome_t o;
    memset(&o, 0, sizeof o);
    memset(o.chain, salt, sizeof o.chain);
    memcpy(o.chain, &v, sizeof v);
    o.version_before = before;
    o.version_after = v;
    o.seq = seq;
    o.client_id[0] = 7;
    return &o;
}

static const uint8_t *chain(uint64_t v, uint8_t salt)
{
    return oc(v, v, salt, 0)->chain;
}

#define CHECK(before, v, salt) gw_rerun_check(&r, oc(before, v, salt, (v) / 2))

static void test_copies_down_to_committed(void)
{
    gw_rerun_t r = {0};
    gw_rerun_reset(&r, 0, chain(0, 0));
    /* 5,000 outcomes of two versions each above committed 0: far more than
     * any fixed ring would hold; every one is still recognised */
    for (uint64_t v = 2; v <= 10000; v += 2)
        gw_rerun_push(&r, oc(v - 2, v, 1, v / 2), 100000);
    for (uint64_t v = 2; v <= 10000; v += 2)
        ASSERT_EQ(CHECK(v - 2, v, 1), GW_RERUN_COPY);
    ASSERT_EQ(CHECK(2, 4, 2), GW_RERUN_DIVERGED);
    ASSERT_EQ(CHECK(4, 5, 1), GW_RERUN_DIVERGED); /* not a boundary */
    ASSERT_EQ(CHECK(3, 4, 1), GW_RERUN_DIVERGED); /* another cut */
    /* refusals: of the flush the first run applied from there, or another */
    ASSERT_EQ(gw_rerun_check_refusal(&r, oc(4, 4, 0, 3)), GW_RERUN_DIVERGED);
    ASSERT_EQ(gw_rerun_check_refusal(&r, oc(4, 4, 0, 9)), GW_RERUN_COPY);
    ASSERT_EQ(gw_rerun_check_refusal(&r, oc(10000, 10000, 0, 9)), GW_RERUN_COPY);
    /* committed advances: what is at or below it is forgotten and passes */
    gw_rerun_committed(&r, 9000);
    ASSERT_EQ(gw_rerun_count(&r), 500);
    ASSERT_EQ(CHECK(2, 4, 2), GW_RERUN_COPY);
    ASSERT_EQ(gw_rerun_check_refusal(&r, oc(4, 4, 0, 3)), GW_RERUN_COPY);
    ASSERT_EQ(CHECK(9000, 9002, 1), GW_RERUN_COPY);
    ASSERT_EQ(CHECK(9000, 9002, 3), GW_RERUN_DIVERGED);
    gw_rerun_committed(&r, 100); /* never goes back */
    ASSERT_EQ(r.committed, 9000);
    gw_rerun_committed(&r, 10000);
    ASSERT_EQ(gw_rerun_count(&r), 0);
    gw_rerun_push(&r, oc(10000, 10001, 1, 5000), 100000);
    ASSERT_EQ(gw_rerun_check(&r, oc(10000, 10001, 1, 5000)), GW_RERUN_COPY);
    gw_rerun_free(&r);
}

static void test_cap_and_sync(void)
{
    gw_rerun_t r = {0};
    gw_rerun_reset(&r, 0, chain(0, 0));
    for (uint64_t v = 1; v <= 100; v++)
        gw_rerun_push(&r, oc(v - 1, v, 1, v / 2), 16);
    ASSERT_EQ(gw_rerun_count(&r), 16);
    ASSERT_EQ(CHECK(84, 85, 1), GW_RERUN_COPY);
    ASSERT_EQ(CHECK(83, 84, 1), GW_RERUN_UNKNOWN);
    /* a live copy built by a sync at 50 while 40 was committed: 41..49
     * cannot be checked, 50 can */
    gw_rerun_committed(&r, 40);
    gw_rerun_reset(&r, 50, chain(50, 7));
    ASSERT_EQ(CHECK(39, 40, 9), GW_RERUN_COPY);
    ASSERT_EQ(CHECK(44, 45, 1), GW_RERUN_UNKNOWN);
    ASSERT_EQ(CHECK(50, 50, 7), GW_RERUN_COPY);
    ASSERT_EQ(CHECK(50, 50, 1), GW_RERUN_DIVERGED);
    gw_rerun_committed(&r, 60);
    ASSERT_EQ(CHECK(44, 45, 1), GW_RERUN_COPY);
    gw_rerun_free(&r);
}

int main(void)
{
    RUN(test_copies_down_to_committed);
    RUN(test_cap_and_sync);
    return fl_test_done();
}
