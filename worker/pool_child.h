/*
 * pool_child.h — what a pool child does (--isolation pool): the process
 * run_pool.c forks for one tenant, which serves that tenant's attempts one
 * at a time until it is told to go (pool_child.c).
 *
 * Over its socket it reads job frames (pool_wire.h) and answers each with
 * frames.h's frames: 'A' at once (it took the job: a death before that is
 * not the job's), then any 'V' events while the handler runs, and at the
 * end, in one write, 'Q' when it will exit after this attempt (the handler
 * left processes behind or its process group, or it was sent SIGTERM), 'R'
 * the result, 'X' the error and last 'S' the lw_status. A module init that
 * fails sends 'X' with why and exits with status 4.
 */
#ifndef LW_POOL_CHILD_H
#define LW_POOL_CHILD_H

#include <sys/types.h>

#include "state.h"

/* Exit status of a pool child whose module init failed. */
#define POOL_CHILD_INIT_FAILED 4

/* In a child just forked (child_fork_attempt) for tenant t: gives up what
 * is the worker's (fds but `sock` and the module's, the fence table, the
 * worker's signal dispositions and, per the registry's "user", its
 * identity), dies with `parent`, runs the module's init once, then serves
 * job frames from `sock` until EOF (the worker retires it: fini, exit 0),
 * SIGTERM, or an attempt that left processes behind. Never returns. */
_Noreturn void pool_child_main(const tenant *t, int sock, pid_t parent);

#endif
