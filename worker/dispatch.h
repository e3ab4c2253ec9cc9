/*
 * dispatch.h — starting an attempt with the right runner, stopping it,
 * giving its slot back (dispatch.c).
 */
#ifndef LW_DISPATCH_H
#define LW_DISPATCH_H

#include "worker.h"

/* Starts `a` with the right runner. */
void dispatch_attempt(attempt *a);
/* Stops an attempt for `why` (kill its processes, or flag its thread). */
void dispatch_stop(attempt *a, stop_reason why);
/* Gives a's slot back (the attempt is leaving the running list). */
void dispatch_release_slot(attempt *a);
/* Asks thread attempts past their freeze point to stop (fence.h). */
void dispatch_fence_threads(worker *w, int64_t now);

/* Re-arms a->timer to fire once more after the kill grace (dispatch.c
 * decides what happens then). */
void attempt_arm_grace(attempt *a);

#endif
