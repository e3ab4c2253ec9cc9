/*
 * invariant.c — a broken invariant's last line (invariant.h).
 *
 * Formatted on the stack and written with one write(2): the state is
 * already wrong, so nothing here allocates or takes the log's path.
 */
#include "invariant.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "timefmt.h"

_Noreturn void lw_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    char ts[LW_RFC3339_LEN];
    lw_rfc3339(lw_now_ms(), ts);
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s error lw.assert assertion failed: %s at %s:%d (%s)\n", ts,
                     expr, file, line, func);
    if (n > 0)
        (void)!write(STDERR_FILENO, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    abort();
}
