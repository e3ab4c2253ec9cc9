/* test_partition.c — partitions of a tenant: routing, prefixes, placement. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec.h"
#include "ids.h"
#include "partition.h"
#include "slot.h"
#include "tutil.h"

START_TEST(routing)
{
    /* CRC16/XMODEM's check value: the clients must compute the same. */
    ck_assert_uint_eq(lw_crc16("123456789", 9), 0x31C3);
    ck_assert_int_eq(lw_partition_of("123456789", 8), 0x31C3 % 8);
    ck_assert_int_eq(lw_partition_of("123456789", 1), 0);
    ck_assert_int_eq(lw_partition_of("anything", 0), 0);
    /* The whole key counts, braces included (no hash-tag rule). */
    ck_assert_int_eq(lw_partition_of("{a}b", 64), (int)(lw_crc16("{a}b", 4) % 64));
    int seen[8] = {0};
    char key[16];
    for (int i = 0; i < 800; i++) {
        snprintf(key, sizeof key, "lane-%d", i);
        seen[lw_partition_of(key, 8)]++;
    }
    for (int p = 0; p < 8; p++)
        ck_assert_msg(seen[p] > 50, "partition %d got %d of 800 lanes", p, seen[p]);
}
END_TEST

START_TEST(prefixes)
{
    char p[64];
    ck_assert_int_eq(lw_partition_prefix(p, sizeof p, "lw", "acme", 0), 0);
    ck_assert_str_eq(p, "lw:{acme}:");
    ck_assert_int_eq(lw_partition_prefix(p, sizeof p, "lw", "acme", 7), 0);
    ck_assert_str_eq(p, "lw:{acme#7}:");
    ck_assert_int_eq(lw_partition_prefix(p, 12, "lw", "acme", 7), -1);
    ck_assert_int_eq(lw_partition_of_prefix("lw:{acme}:"), 0);
    ck_assert_int_eq(lw_partition_of_prefix("lw:{acme#7}:"), 7);
    ck_assert_int_eq(lw_partition_of_prefix("lw:{acme#63}:"), 63);
    ck_assert_int_eq(lw_partition_of_prefix("lw:{acme#64}:"), -1);
    ck_assert_int_eq(lw_partition_of_prefix("lw:{acme#0}:"), -1);
    ck_assert_int_eq(lw_partition_of_prefix("lw:{acme#x}:"), -1);
    ck_assert_int_eq(lw_partition_of_prefix("lw:acme:"), -1);
    /* Partition slots differ from the tenant's: they spread over a cluster. */
    ck_assert_int_ne(lw_key_slot("lw:{acme}:", 10), lw_key_slot("lw:{acme#1}:", 12));
}
END_TEST

START_TEST(placement)
{
    lw_job_spec s;
    /* A generated id falls in its lane's partition: the id alone finds it. */
    for (int i = 0; i < 50; i++) {
        lw_job_spec_init(&s);
        s.lane = strdup("user-7");
        int p = lw_job_spec_place(&s, 16);
        ck_assert_int_eq(p, lw_partition_of("user-7", 16));
        ck_assert_ptr_nonnull(s.id);
        ck_assert_int_eq(lw_partition_of(s.id, 16), p);
        lw_job_spec_clear(&s);
    }
    /* No lane: the unique key routes (one holder per key across partitions). */
    lw_job_spec_init(&s);
    s.unique = strdup("invoice-9");
    ck_assert_int_eq(lw_job_spec_place(&s, 16), lw_partition_of("invoice-9", 16));
    ck_assert_int_eq(lw_partition_of(s.id, 16), lw_partition_of("invoice-9", 16));
    lw_job_spec_clear(&s);
    /* An explicit id is kept; the lane still routes. */
    lw_job_spec_init(&s);
    s.id = strdup("my-id");
    s.lane = strdup("user-7");
    ck_assert_int_eq(lw_job_spec_place(&s, 16), lw_partition_of("user-7", 16));
    ck_assert_str_eq(s.id, "my-id");
    lw_job_spec_clear(&s);
    /* Only an id: it routes itself. */
    lw_job_spec_init(&s);
    s.id = strdup("my-id");
    ck_assert_int_eq(lw_job_spec_place(&s, 16), lw_partition_of("my-id", 16));
    lw_job_spec_clear(&s);
    /* One partition: 0, and an id is still made. */
    lw_job_spec_init(&s);
    ck_assert_int_eq(lw_job_spec_place(&s, 1), 0);
    ck_assert_ptr_nonnull(s.id);
    lw_job_spec_clear(&s);
}
END_TEST

/* Generated ids land in every partition of every count, stay ids (24 hex
 * digits, the clock first) and stay apart: only their last three digits
 * are chosen, from a random start. */
START_TEST(placement_every_partition)
{
    static const int counts[] = {2, 3, 7, 16, 63, 64};
    char seen[64 * 8][LW_ID_LEN + 1];
    size_t nseen = 0;
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        int k = counts[c];
        for (int i = 0; i < 3 * k; i++) {
            char lane[16];
            snprintf(lane, sizeof lane, "lane-%d", i);
            lw_job_spec s;
            lw_job_spec_init(&s);
            s.lane = strdup(lane);
            int p = lw_job_spec_place(&s, k);
            ck_assert_int_eq(p, lw_partition_of(lane, k));
            ck_assert_int_eq(lw_partition_of(s.id, k), p);
            ck_assert_uint_eq(strlen(s.id), LW_ID_LEN);
            ck_assert_uint_eq(strspn(s.id, "0123456789abcdef"), LW_ID_LEN);
            if (k == 64 && nseen < sizeof seen / sizeof *seen) {
                for (size_t j = 0; j < nseen; j++)
                    ck_assert_str_ne(seen[j], s.id);
                memcpy(seen[nseen++], s.id, LW_ID_LEN + 1);
            }
            lw_job_spec_clear(&s);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("partition");
    TCase *tc = tcase_create("partition");
    tcase_add_test(tc, routing);
    tcase_add_test(tc, prefixes);
    tcase_add_test(tc, placement);
    tcase_add_test(tc, placement_every_partition);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
