/* test_enqueue_args.c — the KEYS/ARGV layout of enqueue.lua. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "enqueue_args.h"
#include "tutil.h"

START_TEST(layout)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_enqueue_begin(&a, "lw:{acme}:", 5000, 4);
    ck_assert_uint_eq(lw_enqueue_count(&a), 0);

    lw_job_spec s;
    lw_job_spec_init(&s);
    s.id = strdup("j1");
    s.kind = strdup("thumb");
    s.queue = strdup("chat");
    s.lane = strdup("user-7");
    s.payload = strdup("{\"a\":1}");
    s.attempts = 3;
    s.timeout_ms = 180000;
    s.backoff_ms = 1000;
    s.delay_ms = 1500;
    s.expires_ms = 60000;
    s.unique = strdup("u-1");
    s.spool_dir = strdup("/sp/j1");
    s.unique_for_ms = 90000;
    lw_enqueue_add(&a, &s);
    lw_job_spec_clear(&s);

    /* Unresolved leftovers fall back like lw_job_spec_resolve would. */
    s.id = strdup("j2");
    s.kind = strdup("k");
    s.attempts = 1;
    s.timeout_ms = 10;
    lw_enqueue_add(&a, &s);
    lw_job_spec_clear(&s);

    ck_assert_uint_eq(lw_enqueue_count(&a), 2);
    static const char *const want[] = {
        "lw:{acme}:events",
        "lw:{acme}:schedule",
        "lw:{acme}:stats",
        "lw:{acme}:queues",
        "lw:{acme}:expiring",
        "lw:{acme}:",
        "5000",
        "2",
        "4", /* the partition count the jobs were routed by */
        "j1",
        "thumb",
        "chat",
        "user-7",
        "{\"a\":1}",
        "3",
        "180000",
        "1000",
        "1500",
        "60000",
        "u-1",
        "/sp/j1",
        "90000",
        "j2",
        "k",
        "default",
        "j2",
        "null",
        "1",
        "10",
        "0",
        "0",
        "0",
        "",
        "",
        "0",
    };
    const size_t *lens;
    const char **p = lw_argv_ptrs(&a, &lens);
    ck_assert_uint_eq(a.n, sizeof want / sizeof want[0]);
    ck_assert_uint_eq(a.n, LW_ENQUEUE_NKEYS + LW_ENQUEUE_NARGV + 2 * LW_ENQUEUE_STRIDE);
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_msg(strcmp(p[i], want[i]) == 0, "arg %zu: %s != %s", i, p[i], want[i]);
        ck_assert_uint_eq(lens[i], strlen(want[i]));
    }

    /* n keeps counting past a change of its digit count. */
    lw_enqueue_begin(&a, "lw:{b}:", 1, 1);
    for (int i = 0; i < 12; i++) {
        lw_job_spec_init(&s);
        s.id = strdup("x");
        s.kind = strdup("k");
        lw_enqueue_add(&a, &s);
        lw_job_spec_clear(&s);
    }
    p = lw_argv_ptrs(&a, &lens);
    ck_assert_uint_eq(lw_enqueue_count(&a), 12);
    ck_assert_str_eq(p[0], "lw:{b}:events");
    ck_assert_str_eq(p[7], "12");
    ck_assert_uint_eq(lens[7], 2);
    lw_argv_clear(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("enqueue_args");
    TCase *tc = tcase_create("enqueue_args");
    tcase_add_test(tc, layout);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
