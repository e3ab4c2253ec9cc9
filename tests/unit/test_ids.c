/* test_ids.c — job ids: 24 lowercase hex digits, time-ordered, unique. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "timefmt.h"
#include "tutil.h"

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

START_TEST(shape_and_time)
{
    char id[LW_ID_LEN + 1];
    int64_t before = lw_now_ms();
    lw_id_new(id);
    int64_t after = lw_now_ms();
    ck_assert_uint_eq(strlen(id), 24);
    ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 24);
    char head[13];
    memcpy(head, id, 12);
    head[12] = '\0';
    int64_t t = strtoll(head, NULL, 16);
    ck_assert_int_ge(t, before);
    ck_assert_int_le(t, after);
}
END_TEST

START_TEST(unique_and_ordered)
{
    enum { N = 20000 };
    char(*ids)[LW_ID_LEN + 1] = malloc(N * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < N; i++)
        lw_id_new(ids[i]);
    /* Later ids never sort before earlier ones by their time part. */
    for (int i = 1; i < N; i++)
        ck_assert_int_le(strncmp(ids[i - 1], ids[i], 12), 0);
    qsort(ids, N, sizeof *ids, cmp);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
    free(ids);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ids");
    TCase *tc = tcase_create("ids");
    tcase_add_test(tc, shape_and_time);
    tcase_add_test(tc, unique_and_ordered);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
