/* test_keys.c — Redis key names. */
#include <check.h>
#include <string.h>

#include "keys.h"
#include "tutil.h"

START_TEST(names)
{
    char p[64], k[128];
    ck_assert_int_eq(lw_key_prefix(p, sizeof p, "lw", "acme"), 0);
    ck_assert_str_eq(p, "lw:{acme}:");
    ck_assert_int_eq(lw_key(k, sizeof k, p, "ready:", "default"), 0);
    ck_assert_str_eq(k, "lw:{acme}:ready:default");
    ck_assert_int_eq(lw_key(k, sizeof k, p, "job:", "0190abcdef01"), 0);
    ck_assert_str_eq(k, "lw:{acme}:job:0190abcdef01");
    ck_assert_int_eq(lw_key(k, sizeof k, p, "events", NULL), 0);
    ck_assert_str_eq(k, "lw:{acme}:events");
    ck_assert_int_eq(lw_key_global(k, sizeof k, "lw", "workers"), 0);
    ck_assert_str_eq(k, "lw:workers");
    ck_assert_int_eq(lw_key_global(k, sizeof k, "prod", "worker:"), 0);
    ck_assert_str_eq(k, "prod:worker:");
}
END_TEST

START_TEST(too_small)
{
    char p[11]; /* "lw:{acme}:" is 10 bytes + NUL */
    ck_assert_int_eq(lw_key_prefix(p, sizeof p, "lw", "acme"), 0);
    ck_assert_int_eq(lw_key_prefix(p, sizeof p - 1, "lw", "acme"), -1);
    char k[18]; /* "lw:{acme}:stats" + NUL = 16 */
    ck_assert_int_eq(lw_key(k, 16, "lw:{acme}:", "stats", NULL), 0);
    ck_assert_int_eq(lw_key(k, 15, "lw:{acme}:", "stats", NULL), -1);
    ck_assert_int_eq(lw_key(k, sizeof k, "lw:{acme}:", "job:", "abcdef"), -1);
    ck_assert_int_eq(lw_key_global(k, 11, "lw", "workers"), 0);
    ck_assert_int_eq(lw_key_global(k, 10, "lw", "workers"), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, names);
    tcase_add_test(tc, too_small);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
