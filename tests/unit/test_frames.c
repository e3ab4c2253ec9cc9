/* test_frames.c — the fork child's result frames (worker/frames.c): whole,
 * partial and several frames in one buffer, an announced length past the
 * bound, and the exit status digits -- what a hostile child may send. */
#include <check.h>
#include <string.h>

#include "frames.h"
#include "tutil.h"

static size_t put(char *buf, char type, const char *body, uint32_t len)
{
    buf[0] = type;
    memcpy(buf + 1, &len, sizeof len);
    memcpy(buf + LW_FRAME_HEAD, body, len);
    return LW_FRAME_HEAD + len;
}

START_TEST(whole_partial_and_several)
{
    char buf[256];
    size_t n = put(buf, 'R', "{\"a\":1}", 7);
    n += put(buf + n, 'S', "0", 1);
    lw_frame f;
    size_t over = 0;
    for (size_t cut = 0; cut < 12; cut++) /* any prefix of the first frame: wait for more */
        ck_assert_int_eq(lw_frame_next(buf, cut, 100, &f, &over), 0);
    ck_assert_int_eq(lw_frame_next(buf, n, 100, &f, &over), 12);
    ck_assert_int_eq(f.type, 'R');
    ck_assert_uint_eq(f.len, 7);
    ck_assert_int_eq(memcmp(f.body, "{\"a\":1}", 7), 0);
    ck_assert_int_eq(lw_frame_next(buf + 12, n - 12, 100, &f, &over), 6);
    ck_assert_int_eq(f.type, 'S');
    ck_assert_int_eq(lw_frame_status(&f), 0);
    /* An empty body is a frame too. */
    n = put(buf, 'X', "", 0);
    ck_assert_int_eq(lw_frame_next(buf, n, 100, &f, &over), 5);
    ck_assert_uint_eq(f.len, 0);
}
END_TEST

START_TEST(oversize_is_refused_before_the_body)
{
    char buf[16];
    uint32_t huge = 0xffffffffu;
    buf[0] = 'R';
    memcpy(buf + 1, &huge, sizeof huge);
    lw_frame f;
    size_t over = 0;
    /* Known from the header alone: no need to wait for 4 GiB. */
    ck_assert_int_eq(lw_frame_next(buf, LW_FRAME_HEAD, 1024, &f, &over), -1);
    ck_assert_uint_eq(over, 0xffffffffu);
    uint32_t edge = 1024;
    memcpy(buf + 1, &edge, sizeof edge);
    ck_assert_int_eq(lw_frame_next(buf, LW_FRAME_HEAD, 1024, &f, &over),
                     0); /* at the bound: fine, incomplete */
    edge = 1025;
    memcpy(buf + 1, &edge, sizeof edge);
    ck_assert_int_eq(lw_frame_next(buf, LW_FRAME_HEAD, 1024, &f, &over), -1);
}
END_TEST

START_TEST(status_digits)
{
    lw_frame f = {'S', "143", 3};
    ck_assert_int_eq(lw_frame_status(&f), 143);
    f = (lw_frame){'S', "65xyz", 5};
    ck_assert_int_eq(lw_frame_status(&f), 65);
    f = (lw_frame){'S', "99999", 5}; /* at most 3 digits */
    ck_assert_int_eq(lw_frame_status(&f), 999);
    f = (lw_frame){'S', "x1", 2};
    ck_assert_int_eq(lw_frame_status(&f), 0);
    f = (lw_frame){'S', "7", 0}; /* the length rules, not the bytes */
    ck_assert_int_eq(lw_frame_status(&f), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("frames");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, whole_partial_and_several);
    tcase_add_test(tc, oversize_is_refused_before_the_body);
    tcase_add_test(tc, status_digits);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
