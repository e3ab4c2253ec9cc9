/*
 * invariant.h — LW_ASSERT, an assert that stays on in release builds.
 *
 * For invariants the code relies on and that are cheap to check (a count
 * within bounds, a token set before it is used). A broken invariant means
 * the process's state is wrong in a way it cannot reason about; going on
 * risks running a job twice or losing one, so it stops: one log line naming
 * file:line, the function and the expression, then abort() (a core, and the
 * worker's supervisor restarts it; leases make its jobs come back).
 */
#ifndef LW_INVARIANT_H
#define LW_INVARIANT_H

/* Logs "assertion failed: EXPR at FILE:LINE (FUNC)" and aborts. */
_Noreturn void lw_assert_fail(const char *expr, const char *file, int line, const char *func);

#define LW_ASSERT(cond) ((cond) ? (void)0 : lw_assert_fail(#cond, __FILE__, __LINE__, __func__))

#endif
