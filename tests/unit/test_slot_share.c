/* test_slot_share.c — how a claim round shares free slots between tenants
 * (worker/slot_share.c) and the times derived from --lease
 * (worker/lease_rules.c), without a worker, a loop or Redis. */
#include <check.h>
#include <stdint.h>

#include "lease_rules.h"
#include "slot_share.h"
#include "tutil.h"

/* Runs a round in which every claim is sent; returns the shares. */
static void round_of(int64_t free_slots, int64_t n, int64_t *out)
{
    slot_share s;
    slot_share_begin(&s, free_slots, n);
    for (int64_t i = 0; i < n; i++) {
        out[i] = slot_share_next(&s);
        slot_share_used(&s, out[i]);
    }
}

START_TEST(even_split_rounds_up_and_never_overshoots)
{
    int64_t got[8];
    round_of(10, 3, got);
    /* 10 slots, 3 tenants: 4 3 3 -- no slot idles, none promised twice. */
    ck_assert_int_eq(got[0], 4);
    ck_assert_int_eq(got[1], 3);
    ck_assert_int_eq(got[2], 3);
    round_of(2, 5, got);
    /* Fewer slots than tenants: the first ones get one each, then none. */
    ck_assert_int_eq(got[0], 1);
    ck_assert_int_eq(got[1], 1);
    ck_assert_int_eq(got[2], 0);
    ck_assert_int_eq(got[4], 0);
    for (int64_t free_slots = 0; free_slots <= 40; free_slots++)
        for (int64_t n = 1; n <= 7; n++) {
            round_of(free_slots, n, got);
            int64_t sum = 0, lo = INT64_MAX, hi = 0;
            for (int64_t i = 0; i < n; i++) {
                sum += got[i];
                if (got[i] < lo)
                    lo = got[i];
                if (got[i] > hi)
                    hi = got[i];
            }
            ck_assert_int_eq(sum, free_slots); /* every slot given, once */
            ck_assert_int_le(hi - lo, 1);      /* fair within one slot */
        }
}
END_TEST

START_TEST(a_claim_not_sent_leaves_its_slots_to_the_rest)
{
    slot_share s;
    slot_share_begin(&s, 9, 3);
    ck_assert_int_eq(slot_share_next(&s), 3); /* not sent: nothing used */
    ck_assert_int_eq(slot_share_next(&s), 5); /* 9 between the two left */
    slot_share_used(&s, 5);
    ck_assert_int_eq(slot_share_next(&s), 4);
    slot_share_used(&s, 4);
    ck_assert_int_eq(s.free, 0);
    ck_assert_int_eq(slot_share_next(&s), 0);
}
END_TEST

START_TEST(one_claim_asks_for_at_most_the_claim_max)
{
    slot_share s;
    slot_share_begin(&s, 1000, 2);
    ck_assert_int_eq(slot_share_next(&s), SLOT_SHARE_CLAIM_MAX);
    slot_share_used(&s, SLOT_SHARE_CLAIM_MAX);
    ck_assert_int_eq(slot_share_next(&s), SLOT_SHARE_CLAIM_MAX);
    slot_share_begin(&s, -3, 2); /* over-committed: nothing */
    ck_assert_int_eq(slot_share_next(&s), 0);
}
END_TEST

START_TEST(free_slots_count_claims_in_flight_and_max_jobs)
{
    int64_t left;
    ck_assert_int_eq(slot_share_free(8, 3, 2, 0, 100, &left), 3);
    ck_assert_int_eq(left, INT64_MAX);
    /* --max-jobs 10 with 7 started and 2 reserved: one more job to start. */
    ck_assert_int_eq(slot_share_free(8, 0, 2, 10, 7, &left), 1);
    ck_assert_int_eq(left, 1);
    ck_assert_int_le(slot_share_free(8, 0, 0, 10, 10, &left), 0);
}
END_TEST

START_TEST(gathering_waits_only_while_busy_and_short_of_a_batch)
{
    /* Idle worker: claim at once, whatever is free. */
    ck_assert_int_eq(slot_share_should_gather(1, INT64_MAX, 8, 0), 0);
    /* Busy, 3 of 8 free: wait for more. */
    ck_assert_int_eq(slot_share_should_gather(3, INT64_MAX, 8, 1), 1);
    ck_assert_int_eq(slot_share_should_gather(8, INT64_MAX, 8, 1), 0);
    /* The batch is at most the claim max, and at most what --max-jobs leaves. */
    ck_assert_int_eq(slot_share_should_gather(SLOT_SHARE_CLAIM_MAX, INT64_MAX, 1000, 1), 0);
    ck_assert_int_eq(slot_share_should_gather(2, 2, 8, 1), 0);
}
END_TEST

START_TEST(lease_rules)
{
    /* The freeze point is 0.65 lease after the proof. */
    ck_assert_int_eq(lease_rules_freeze_point(10000, 5000), 11500);
    ck_assert_int_eq(lease_rules_freeze_point(3000, 0), 1950);
    /* The reply timeout is lease/4, at most 10 s. */
    ck_assert_int_eq(lease_rules_reply_timeout_ms(3000), 750);
    ck_assert_int_eq(lease_rules_reply_timeout_ms(15000), 3750);
    ck_assert_int_eq(lease_rules_reply_timeout_ms(120000), 10000);
    /* Why the pair works: a renewal sent lease/6 after the last proof and
     * stuck on a dead connection is resent (timeout * 1.25) before the
     * freeze point. */
    for (int64_t lease = 1000; lease <= 40000; lease += 1000)
        ck_assert_int_lt(lease / 6 + lease_rules_reply_timeout_ms(lease) * 5 / 4,
                         lease_rules_freeze_point(lease, 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("slot_share");
    TCase *tc = tcase_create("slot_share");
    tcase_add_test(tc, even_split_rounds_up_and_never_overshoots);
    tcase_add_test(tc, a_claim_not_sent_leaves_its_slots_to_the_rest);
    tcase_add_test(tc, one_claim_asks_for_at_most_the_claim_max);
    tcase_add_test(tc, free_slots_count_claims_in_flight_and_max_jobs);
    tcase_add_test(tc, gathering_waits_only_while_busy_and_short_of_a_batch);
    tcase_add_test(tc, lease_rules);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
