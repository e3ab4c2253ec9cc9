/*
 * run_thread.h — module handlers on the worker's thread pool, --isolation
 * thread (run_thread.c).
 */
#ifndef LW_RUN_THREAD_H
#define LW_RUN_THREAD_H

#include "attempt.h"

struct worker;
struct thread_pool;

/* The thread pool. */
struct thread_pool *pool_new(struct worker *w, int nthreads);
void pool_submit(struct thread_pool *p, attempt *a);
/* Joins the threads; threads still inside a handler are waited for at most
 * `wait_ms`, then left behind (the process is exiting). */
void pool_free(struct thread_pool *p, int wait_ms);

#endif
