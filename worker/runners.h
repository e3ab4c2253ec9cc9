/*
 * runners.h — the three ways an attempt runs.
 *
 *   run_fork   a module handler in a forked child (--isolation fork)
 *   run_exec   an exec handler: fork + exec of the registry's command
 *   pool       a module handler on the worker's thread pool (--isolation thread)
 *
 * Each runner ends an attempt by calling attempt_finished() (outcome.c)
 * exactly once, on the loop thread.
 */
#ifndef LW_RUNNERS_H
#define LW_RUNNERS_H

#include "attempt.h"
#include "registry.h"

struct worker;
struct thread_pool;

/* Starts `a` in a forked child. Returns 0, or -1 (fork failed: the caller
 * reports a failed attempt). */
int run_fork_start(attempt *a);
/* The child was collected (a->exit_status). */
void run_fork_reaped(attempt *a);

int run_exec_start(attempt *a, const lw_exec_handler *ex);
void run_exec_reaped(attempt *a);

/* Frees a runner's state (fds, buffers) without completing the attempt:
 * only for a worker that exits with attempts it gave up on. */
void run_fork_release(attempt *a);
void run_exec_release(attempt *a);

/* The thread pool. */
struct thread_pool *pool_new(struct worker *w, int nthreads);
void pool_submit(struct thread_pool *p, attempt *a);
/* Joins the threads; threads still inside a handler are waited for at most
 * `wait_ms`, then left behind (the process is exiting). */
void pool_free(struct thread_pool *p, int wait_ms);

/* Queues a handler event of a running attempt; it reaches Redis with the
 * tenant's next finish.lua batch, before the attempt's outcome. */
void send_handler_event(attempt *a, const char *type, const char *data);

#endif
