/* test_names.c — safe names. */
#include <check.h>
#include <string.h>

#include "names.h"
#include "tutil.h"

START_TEST(safe)
{
    static const char *const ok[] = {
        "a", "acme", "A-b_c.d", "0", "x.", "-lead", "_x", "job-1.2", "0123456789abcdef0123abcd"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(lw_name_is_safe(ok[i]) == 1, "%s", ok[i]);
    char max[LW_NAME_MAX + 2];
    memset(max, 'n', LW_NAME_MAX);
    max[LW_NAME_MAX] = '\0';
    ck_assert_int_eq(lw_name_is_safe(max), 1);
    max[LW_NAME_MAX] = 'n';
    max[LW_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(lw_name_is_safe(max), 0);
}
END_TEST

START_TEST(unsafe)
{
    static const char *const bad[] = {
        "",    ".",  "..",    ".hidden", "a/b",         "../x", "a b",   "a:b",
        "{t}", "a*", "tab\t", "nl\n",    "caf\xc3\xa9", "a\\b", "semi;", "q?"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(lw_name_is_safe(bad[i]) == 0, "%s", bad[i]);
    ck_assert_int_eq(lw_name_is_safe(NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, safe);
    tcase_add_test(tc, unsafe);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
