/* test_timefmt.c — clocks and RFC 3339. */
#include <check.h>
#include <string.h>

#include "timefmt.h"
#include "tutil.h"

static void check_ts(int64_t ms, const char *want)
{
    char out[LW_RFC3339_LEN];
    lw_rfc3339(ms, out);
    ck_assert_str_eq(out, want);
}

START_TEST(rfc3339)
{
    check_ts(0, "1970-01-01T00:00:00.000Z");
    check_ts(1, "1970-01-01T00:00:00.001Z");
    check_ts(999, "1970-01-01T00:00:00.999Z");
    check_ts(1795338223308, "2026-11-22T09:03:43.308Z");
    check_ts(1700000000123, "2023-11-14T22:13:20.123Z");
    check_ts(951782400000, "2000-02-29T00:00:00.000Z");
    /* Out of range: clamped, never a malformed date. */
    check_ts(-5, "1970-01-01T00:00:00.000Z");
    check_ts(INT64_MAX, "9999-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(clocks)
{
    int64_t now = lw_now_ms();
    ck_assert_int_gt(now, INT64_C(1704067200000)); /* after 2024-01-01 */
    ck_assert_int_lt(now, INT64_C(4102444800000)); /* before 2100 */
    int64_t a = lw_mono_ms(), b = lw_mono_ms();
    ck_assert_int_ge(b, a);
    char out[LW_RFC3339_LEN];
    lw_rfc3339(now, out);
    ck_assert_uint_eq(strlen(out), 24);
    ck_assert_int_eq(out[23], 'Z');
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timefmt");
    TCase *tc = tcase_create("timefmt");
    tcase_add_test(tc, rfc3339);
    tcase_add_test(tc, clocks);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
