/*
 * dispatch.h — an attempt's life around its runner (dispatch.c): the slot
 * and the timer, the spool mark, the runner chosen (runners.h), the timeout,
 * stop requests, and the reaping of process leaders.
 */
#ifndef LW_DISPATCH_H
#define LW_DISPATCH_H

#include <stdint.h>

#include "state.h"

/* Starts `a` (from a claim reply; the running list takes it). Whatever
 * goes wrong ends it through outcome_finished, never silently. */
void dispatch_attempt(attempt *a);
/* Stops an attempt for `why` through its runner (kill its processes, or
 * flag its thread). The first reason wins (attempt_request_stop); a repeat
 * may only make the stop immediate. May end (and free) `a`. */
void dispatch_stop(attempt *a, stop_reason why);
/* Asks in-process attempts past their freeze point to stop (fence.h). */
void dispatch_fence_threads(worker *w, int64_t now);
/* SIGCHLD: collects the attempt leaders that exited and tells their
 * runners, and the fence keeper. May end (and free) attempts. */
void dispatch_reap(worker *w);

#endif
