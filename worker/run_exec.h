/*
 * run_exec.h — an exec handler: fork + exec of the registry's command
 * (run_exec.c).
 */
#ifndef LW_RUN_EXEC_H
#define LW_RUN_EXEC_H

#include "runner.h"

extern const runner run_exec_runner;

#endif
