/* test_invariant.c — LW_ASSERT: silent when the invariant holds, one line
 * and SIGABRT when it does not, in every build type (NDEBUG included). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NDEBUG 1 /* LW_ASSERT must not care */
#include "invariant.h"
#include "tutil.h"

START_TEST(holds)
{
    int refs = 1, n = 0;
    LW_ASSERT(refs > 0);
    LW_ASSERT(++n == 1); /* evaluated exactly once */
    ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(broken_aborts)
{
    int refs = 0;
    /* The line goes to stderr: keep the test log readable. */
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0)
        dup2(fd, 2);
    LW_ASSERT(refs > 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("invariant");
    TCase *tc = tcase_create("assert");
    tcase_add_test(tc, holds);
    tcase_add_test_raise_signal(tc, broken_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
