/* test_frames.c — the fork child's result frames (worker/frames.c): whole,
 * partial and several frames in one buffer, an announced length past the
 * bound, and the exit status digits -- what a hostile child may send. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* One report as a child sends it: frames whose pieces go in one writev,
 * one of them more than a pipe holds (the write is partial, continued). */
START_TEST(writev_sends_every_piece_in_order)
{
    enum { BIG = 300 * 1024 };
    char *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 26);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        char h1[LW_FRAME_HEAD], h2[LW_FRAME_HEAD], h3[LW_FRAME_HEAD];
        lw_frame_head(h1, 'V', 6 + 3);
        lw_frame_head(h2, 'R', BIG);
        lw_frame_head(h3, 'S', 1);
        struct iovec iov[] = {{h1, sizeof h1}, {"event", 6},    {"abc", 3}, {h2, sizeof h2},
                              {big, BIG},      {h3, sizeof h3}, {"0", 1}};
        lw_frame_writev_all(fds[1], iov, (int)(sizeof iov / sizeof iov[0]));
        _exit(0);
    }
    close(fds[1]);
    size_t cap = BIG + 100, len = 0;
    char *got = malloc(cap);
    ck_assert_ptr_nonnull(got);
    ssize_t n;
    while ((n = read(fds[0], got + len, cap - len)) > 0)
        len += (size_t)n;
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(len, 3 * LW_FRAME_HEAD + 9 + BIG + 1);
    lw_frame f;
    size_t over = 0, at = 0;
    long took = lw_frame_next(got, len, BIG, &f, &over);
    ck_assert_int_eq(took, LW_FRAME_HEAD + 9);
    ck_assert(f.type == 'V' && memcmp(f.body, "event\0abc", 9) == 0);
    at += (size_t)took;
    took = lw_frame_next(got + at, len - at, BIG, &f, &over);
    ck_assert_int_eq(took, LW_FRAME_HEAD + BIG);
    ck_assert(f.type == 'R' && memcmp(f.body, big, BIG) == 0);
    at += (size_t)took;
    took = lw_frame_next(got + at, len - at, BIG, &f, &over);
    ck_assert_int_eq(took, LW_FRAME_HEAD + 1);
    ck_assert_int_eq(f.type, 'S');
    ck_assert_int_eq(lw_frame_status(&f), 0);
    free(got);
    free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("frames");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, whole_partial_and_several);
    tcase_add_test(tc, oversize_is_refused_before_the_body);
    tcase_add_test(tc, status_digits);
    tcase_add_test(tc, writev_sends_every_piece_in_order);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
