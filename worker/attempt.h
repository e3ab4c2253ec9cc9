/*
 * attempt.h — one attempt of one job inside a worker. It is the `lw_job` the
 * module API hands to handlers (lanework/module.h), plus the worker's own
 * bookkeeping.
 *
 * Life of an attempt:
 *
 *   claim reply ─► attempt_new ─► runner starts it (fork child, exec child,
 *   or thread) ─► runner reports the end (outcome_finished) ─► outcome queued for
 *   finish.lua ─► attempt_free
 *
 * The struct is in state.h (types only).
 */
#ifndef LW_ATTEMPT_H
#define LW_ATTEMPT_H

#include <stdint.h>

#include "state.h"

struct lw_claim_job;

/* Creates an attempt from one job of a claim reply (its fields as
 * script_replies.h reads them; the strings are copied). Takes a
 * reference on `t`. slot is -1 and serial 0 until dispatch gives them.
 * Returns NULL on OOM. Caller frees with attempt_free. */
attempt *attempt_new(struct tenant *t, const struct lw_claim_job *job);
/* Frees a, its timer and what its handler set, and drops its tenant
 * reference (which may free the tenant). NULL is ignored. */
void attempt_free(attempt *a);

/* Asks the attempt to stop; the first reason wins, except that STOP_FENCE
 * gives way to any later one. Returns 1 when this call set it. */
int attempt_request_stop(attempt *a, stop_reason why);
/* How a module handler that returned `st` ended, as outcome.c reads it. */
end_kind attempt_end_kind(const attempt *a, lw_status st);
/* Why a was asked to stop, STOP_NONE if it was not; safe from any thread. */
stop_reason attempt_stop_reason(const attempt *a);
/* a's job, tenant, kind, queue, lane, attempt and worker for
 * lw_log_about (borrowed from a); with_duration adds the time since it
 * started. */
lw_log_facts attempt_facts(const attempt *a, int with_duration);

/* Grace between a stop request (SIGTERM, or the flag a thread polls) and
 * giving up on it (SIGKILL, or abandoning the thread). */
#define KILL_GRACE_MS 3000

/* Mono ms at which a is frozen (or, thread isolation, asked to stop)
 * unless its lease is proven again (lease_rules.h). */
int64_t attempt_freeze_at(const attempt *a);
/* (Re)arms a->timer to fire `ms` from now (0 when negative); the callback
 * is dispatch.c's, set when the timer was made. */
void attempt_arm_timer(attempt *a, int64_t ms);
/* Moves a to phase `to`; a move phase.h does not allow is a bug in the
 * worker, which logs it and aborts rather than run or record a job twice. */
void attempt_set_phase(attempt *a, attempt_phase to);
/* Re-arms a->timer to fire once more after KILL_GRACE_MS, counting the
 * grace now (PHASE_GRACE), not the timeout. */
void attempt_arm_grace(attempt *a);

#endif
