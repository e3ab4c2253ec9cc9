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

#include "run_exec.h"
#include "run_fork.h"
#include "run_thread.h"

#endif
