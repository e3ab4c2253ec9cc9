/*
 * run_thread.h — module handlers on the worker's thread pool, --isolation
 * thread (run_thread.c).
 */
#ifndef LW_RUN_THREAD_H
#define LW_RUN_THREAD_H

#include "runner.h"

extern const runner run_thread_runner;

#endif
