/* test_redis_argv.c — a command whose arguments could not all be built is
 * never sent (common/redis_sync.c): with the first append failed, an
 * FCALL or EVALSHA would otherwise go out with no ARGV at all -- a different command
 * from the one the caller built. No server: the calls must refuse before
 * touching the connection (NULL here). */
#include <check.h>
#include <string.h>

#include "argv.h"
#include "fault.h"
#include "redis_sync.h"
#include "scripts.h"
#include "tutil.h"

START_TEST(an_argv_that_ran_out_of_memory_is_not_sent)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_fault_configure("alloc:1+", NULL, 0);
    lw_argv_adds(&a, "first"); /* fails: a.oom, nothing in it */
    lw_fault_configure(NULL, NULL, 0);
    ck_assert_int_eq(a.oom, 1);
    ck_assert_uint_eq(a.n, 0);
    for (int evalsha_only = 0; evalsha_only < 2; evalsha_only++) { /* FCALL, EVALSHA */
        char err[128] = "";
        int mode = evalsha_only;
        ck_assert_ptr_null(
            lw_redis_script_sync(NULL, &mode, &lw_script_claim, 0, &a, err, sizeof err));
        ck_assert_str_eq(err, "out of memory");
        ck_assert_int_eq(mode, evalsha_only);
        ck_assert_int_eq(lw_redis_append_script(NULL, evalsha_only, &lw_script_claim, 0, &a), -1);
    }
    char err[128] = "";
    ck_assert_ptr_null(lw_redis_argv(NULL, &a, err, sizeof err));
    lw_argv_clear(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_argv");
    TCase *tc = tcase_create("redis_argv");
    tcase_add_test(tc, an_argv_that_ran_out_of_memory_is_not_sent);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
