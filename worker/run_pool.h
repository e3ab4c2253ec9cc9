/*
 * run_pool.h — module handlers in pre-forked children that serve attempts
 * one at a time, --isolation pool (run_pool.c, pool_child.c).
 */
#ifndef LW_RUN_POOL_H
#define LW_RUN_POOL_H

#include "runner.h"

extern const runner run_pool_runner;

#endif
