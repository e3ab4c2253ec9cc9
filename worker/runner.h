/*
 * runner.h — the interface every way of running an attempt implements: an
 * operations table, one file per runner (run_*.c), all of them listed in
 * runners.c. A new isolation mode is one new file plus one line there.
 *
 * The life of an attempt as the runners see it (dispatch.c drives it):
 *
 *   handles? ─► start ─► [stop ─► grace_over] ─► the runner ends it:
 *   outcome_finished() exactly once, on the loop thread (outcome.h)
 *
 * A process runner also gets `reaped` when its leader was collected
 * (dispatch_reap); `release` frees its state at a forced exit, when the
 * attempt will never end.
 */
#ifndef LW_RUNNER_H
#define LW_RUNNER_H

#include <stddef.h>

#include "state.h"

typedef struct runner {
    const char *name; /* "exec", "fork", "thread": logs and DESIGN.md */
    /* Runs inside the worker (a thread): it can be neither frozen nor
     * killed. At its freeze point it is asked to stop instead (dispatch.c),
     * and a handler that ignores its stop request is abandoned. */
    int in_process;
    /* 1 when this runner runs a's kind for a's tenant (registry exec entry,
     * module, --isolation). The first runner of runners.c that handles a
     * kind runs it. */
    int (*handles)(const attempt *a);
    /* Worker-wide resources (a thread pool), once at start. NULL: none.
     * 0, or -1 with a one-line reason in err. */
    int (*open)(worker *w, char *err, size_t errlen);
    /* Starts a, which holds its slot and timer. 0, or -1 with errno set:
     * EMFILE/ENFILE/EAGAIN/ENOMEM/ENOSPC hand the job back (dispatch.c),
     * anything else fails this attempt. Nothing of a's is kept on -1. */
    int (*start)(attempt *a);
    /* a's stop reason is set (attempt_request_stop): make it stop, with a
     * grace (a->timer, attempt_arm_grace) unless `now`. */
    void (*stop)(attempt *a, int now);
    /* The grace after a stop request ran out. */
    void (*grace_over)(attempt *a);
    /* Process runners: a's leader was reaped (a->exit_status). NULL for
     * in-process runners. */
    void (*reaped)(attempt *a);
    /* A forced exit: frees a's runner state without ending the attempt.
     * NULL: nothing to free. */
    void (*release)(attempt *a);
    /* At worker_free, before attempts and tenants go: the worker-wide
     * resources of `open`. NULL: none. */
    void (*close)(worker *w);
} runner;

#endif
