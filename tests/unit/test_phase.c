/* test_phase.c — the moves an attempt's phase may make (worker/phase.c):
 * nothing goes back to starting, only a starting attempt starts, and only
 * a started one is stopped or abandoned. */
#include <check.h>
#include <string.h>

#include "phase.h"
#include "tutil.h"

START_TEST(moves)
{
    static const attempt_phase all[] = {PHASE_STARTING, PHASE_RUNNING, PHASE_GRACE,
                                        PHASE_ABANDONED};
    /* [from][to] */
    static const int want[4][4] = {
        /* STARTING */ {0, 1, 0, 0},
        /* RUNNING */ {0, 0, 1, 1},
        /* GRACE */ {0, 0, 1, 1},
        /* ABANDONED */ {0, 0, 0, 0},
    };
    for (int f = 0; f < 4; f++)
        for (int t = 0; t < 4; t++)
            ck_assert_msg(attempt_phase_allowed(all[f], all[t]) == want[f][t], "%s -> %s",
                          attempt_phase_name(all[f]), attempt_phase_name(all[t]));
    ck_assert_str_eq(attempt_phase_name(PHASE_GRACE), "grace");
    ck_assert_str_eq(attempt_phase_name((attempt_phase)99), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("phase");
    TCase *tc = tcase_create("phase");
    tcase_add_test(tc, moves);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
