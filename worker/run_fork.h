/*
 * run_fork.h — a module handler in a forked child, --isolation fork
 * (run_fork.c).
 */
#ifndef LW_RUN_FORK_H
#define LW_RUN_FORK_H

#include "runner.h"

extern const runner run_fork_runner;

#endif
