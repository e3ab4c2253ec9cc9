/* test_argv.c — argument vectors for Redis commands. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "argv.h"
#include "tutil.h"

START_TEST(add_and_ptrs)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_argv_adds(&a, "EVALSHA");
    lw_argv_add(&a, "a\0b", 3); /* binary-safe */
    lw_argv_adds(&a, NULL);
    lw_argv_addi(&a, -42);
    lw_argv_addi(&a, INT64_MAX);
    const size_t *lens;
    const char **p = lw_argv_ptrs(&a, &lens);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(a.n, 5);
    ck_assert_str_eq(p[0], "EVALSHA");
    ck_assert_uint_eq(lens[0], 7);
    ck_assert_uint_eq(lens[1], 3);
    ck_assert_int_eq(memcmp(p[1], "a\0b", 3), 0);
    ck_assert_str_eq(p[2], "");
    ck_assert_uint_eq(lens[2], 0);
    ck_assert_str_eq(p[3], "-42");
    ck_assert_str_eq(p[4], "9223372036854775807");
    ck_assert_uint_eq(lens[4], 19);
    lw_argv_clear(&a);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_ptr_null(a.buf);
}
END_TEST

START_TEST(seti)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_argv_adds(&a, "x");
    lw_argv_addi(&a, 0);
    lw_argv_adds(&a, "tail");
    lw_argv_seti(&a, 1, 7);         /* same width: in place */
    lw_argv_seti(&a, 1, 123456789); /* wider: moved */
    lw_argv_seti(&a, 5, 1);         /* no such argument: ignored */
    const size_t *lens;
    const char **p = lw_argv_ptrs(&a, &lens);
    ck_assert_uint_eq(a.n, 3);
    ck_assert_str_eq(p[0], "x");
    ck_assert_str_eq(p[1], "123456789");
    ck_assert_uint_eq(lens[1], 9);
    ck_assert_str_eq(p[2], "tail");
    lw_argv_seti(&a, 1, 5); /* narrower again */
    p = lw_argv_ptrs(&a, &lens);
    ck_assert_str_eq(p[1], "5");
    ck_assert_uint_eq(lens[1], 1);
    ck_assert_str_eq(p[2], "tail");
    lw_argv_clear(&a);
}
END_TEST

START_TEST(many)
{
    lw_argv a;
    lw_argv_init(&a);
    for (int i = 0; i < 20000; i++)
        lw_argv_addi(&a, i);
    const size_t *lens;
    const char **p = lw_argv_ptrs(&a, &lens);
    ck_assert_uint_eq(a.n, 20000);
    for (int i = 0; i < 20000; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        ck_assert_str_eq(p[i], want);
        ck_assert_uint_eq(lens[i], strlen(want));
    }
    size_t cap = a.cap, ncap = a.ncap;
    lw_argv_reset(&a);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_uint_eq(a.cap, cap); /* memory kept */
    ck_assert_uint_eq(a.ncap, ncap);
    lw_argv_adds(&a, "again");
    p = lw_argv_ptrs(&a, &lens);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_str_eq(p[0], "again");
    lw_argv_clear(&a);
}
END_TEST

START_TEST(empty_and_oom)
{
    lw_argv a;
    lw_argv_init(&a);
    const size_t *lens = NULL;
    ck_assert_ptr_nonnull(lw_argv_ptrs(&a, &lens));
    ck_assert_uint_eq(a.n, 0);
    /* Once marked out of memory the vector is frozen and has no pointers. */
    lw_argv_adds(&a, "one");
    a.oom = 1;
    lw_argv_adds(&a, "two");
    lw_argv_seti(&a, 0, 5);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_ptr_null(lw_argv_ptrs(&a, &lens));
    lw_argv_reset(&a);
    ck_assert_int_eq(a.oom, 0);
    lw_argv_clear(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("argv");
    TCase *tc = tcase_create("argv");
    tcase_add_test(tc, add_and_ptrs);
    tcase_add_test(tc, seti);
    tcase_add_test(tc, many);
    tcase_add_test(tc, empty_and_oom);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
