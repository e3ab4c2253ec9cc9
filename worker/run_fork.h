/*
 * run_fork.h — a module handler in a forked child, --isolation fork (run_fork.c).
 */
#ifndef LW_RUN_FORK_H
#define LW_RUN_FORK_H

#include "attempt.h"

/* Starts `a` in a forked child. Returns 0, or -1 (fork failed: the caller
 * reports a failed attempt). */
int run_fork_start(attempt *a);
/* The child was collected (a->exit_status). */
void run_fork_reaped(attempt *a);
/* Frees a runner's state (fds, buffers) without completing the attempt:
 * only for a worker that exits with attempts it gave up on. */
void run_fork_release(attempt *a);

#endif
