/* test_backoff.c — exponential backoff with equal jitter, and the PRNG. */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "tutil.h"

START_TEST(exponential)
{
    /* rnd picks within [d/2, d]: rnd 0 gives d/2, rnd = d - d/2 gives d. */
    ck_assert_int_eq(lw_backoff_ms(1000, 1, 60000, 0), 500);
    ck_assert_int_eq(lw_backoff_ms(1000, 1, 60000, 500), 1000);
    ck_assert_int_eq(lw_backoff_ms(1000, 2, 60000, 0), 1000);
    ck_assert_int_eq(lw_backoff_ms(1000, 2, 60000, 1000), 2000);
    ck_assert_int_eq(lw_backoff_ms(1000, 3, 60000, 2000), 4000);
    ck_assert_int_eq(lw_backoff_ms(1000, 4, 60000, 4000), 8000);
    ck_assert_int_eq(lw_backoff_ms(1000, 4, 60000, 4001), 4000); /* wraps: 4001 % 4001 */
    ck_assert_int_eq(lw_backoff_ms(3, 1, 0, 1), 2);              /* d=3: half 1, span 3 */
}
END_TEST

START_TEST(cap)
{
    ck_assert_int_eq(lw_backoff_ms(1000, 10, 5000, 2500), 5000);
    ck_assert_int_eq(lw_backoff_ms(1000, 10, 5000, 0), 2500);
    ck_assert_int_eq(lw_backoff_ms(1000, 3, 3000, 1500), 3000);  /* 4000 capped */
    ck_assert_int_eq(lw_backoff_ms(10000, 1, 3000, 1500), 3000); /* base over the cap */
    /* A huge try number is cheap and stays at the cap. */
    ck_assert_int_eq(lw_backoff_ms(1000, INT_MAX, 60000, 30000), 60000);
    /* No cap: doubling stops before overflowing, the result stays positive. */
    int64_t d = lw_backoff_ms(1000, INT_MAX, 0, UINT64_MAX);
    ck_assert_int_gt(d, INT64_MAX / 4);
}
END_TEST

START_TEST(zero_and_odd_input)
{
    ck_assert_int_eq(lw_backoff_ms(0, 1, 60000, 12345), 0);
    ck_assert_int_eq(lw_backoff_ms(0, 50, 60000, UINT64_MAX), 0);
    ck_assert_int_eq(lw_backoff_ms(-5, 3, 60000, 7), 0);
    /* n below 1 is treated as the first try. */
    ck_assert_int_eq(lw_backoff_ms(1000, 0, 60000, 500), 1000);
    ck_assert_int_eq(lw_backoff_ms(1000, -3, 60000, 500), 1000);
    ck_assert_int_eq(lw_backoff_ms(1, 1, 60000, 1), 1);
    ck_assert_int_eq(lw_backoff_ms(1, 1, 60000, 0), 0);
}
END_TEST

START_TEST(jitter_bounds)
{
    for (int n = 1; n <= 20; n++) {
        int64_t d = (int64_t)1000 << (n - 1);
        if (d > 30000)
            d = 30000;
        int64_t lo = INT64_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            int64_t v = lw_backoff_ms(1000, n, 30000, lw_random64());
            ck_assert_int_ge(v, d / 2);
            ck_assert_int_le(v, d);
            if (v < lo)
                lo = v;
            if (v > hi)
                hi = v;
        }
        /* The draws spread over the interval rather than sitting at one end. */
        ck_assert_int_lt(lo, d / 2 + d / 8);
        ck_assert_int_gt(hi, d - d / 8);
    }
    ck_assert_int_eq(lw_backoff_ms(1000, 5, 60000, 987654321),
                     lw_backoff_ms(1000, 5, 60000, 987654321));
}
END_TEST

static void *draw(void *arg)
{
    uint64_t *out = arg;
    for (int i = 0; i < 1000; i++)
        out[i] = lw_random64();
    return NULL;
}

START_TEST(random_threads_and_fork)
{
    uint64_t a[1000], b[1000];
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, draw, a), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, draw, b), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    int same = 0, distinct = 0;
    for (int i = 0; i < 1000; i++) {
        same += a[i] == b[i];
        distinct += i > 0 && a[i] != a[i - 1];
    }
    ck_assert_int_eq(same, 0);
    ck_assert_int_eq(distinct, 999);

    /* A forked child does not repeat its parent's sequence. */
    (void)lw_random64();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        uint64_t v = lw_random64();
        _exit(write(fds[1], &v, sizeof v) == sizeof v ? 0 : 1);
    }
    uint64_t mine = lw_random64(), child = 0;
    ck_assert_int_eq(read(fds[0], &child, sizeof child), (ssize_t)sizeof child);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_uint_ne(mine, child);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("backoff");
    tcase_add_test(tc, exponential);
    tcase_add_test(tc, cap);
    tcase_add_test(tc, zero_and_odd_input);
    tcase_add_test(tc, jitter_bounds);
    tcase_add_test(tc, random_threads_and_fork);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
