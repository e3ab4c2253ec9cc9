/*
 * run_exec.h — an exec handler: fork + exec of the registry's command (run_exec.c).
 */
#ifndef LW_RUN_EXEC_H
#define LW_RUN_EXEC_H

#include "attempt.h"
#include "registry.h"

int run_exec_start(attempt *a, const lw_exec_handler *ex);
void run_exec_reaped(attempt *a);
/* Frees a runner's state (fds, buffers) without completing the attempt:
 * only for a worker that exits with attempts it gave up on. */
void run_exec_release(attempt *a);

#endif
