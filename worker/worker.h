/*
 * worker.h — the worker process: one libevent loop that claims jobs, hands
 * them to runners, and records their outcomes (worker.c, the top layer but
 * for main.c).
 *
 * The loop never blocks. Everything that can make progress possible (a claim
 * reply, an attempt ending, a wake-up message, a timer, Redis coming back)
 * calls worker_kick() (kick.h), which schedules one run of the pump:
 *
 *   pump: for each tenant, the flags lower layers left (a link came back, a
 *         cancel was announced); its spool scans; its pending outcomes (one
 *         finish.lua call); then, while slots are free, claims (one
 *         claim.lua call per tenant, round-robin, the free slots shared
 *         between tenants: slot_share.h); then the exit conditions (--burst,
 *         --max-jobs, shutdown).
 *
 * Correctness never depends on a wake-up: idle tenants are polled, scheduled
 * jobs have a timer, leases are renewed and reaped on timers.
 */
#ifndef LW_WORKER_H
#define LW_WORKER_H

#include <stddef.h>

#include "state.h"

/* Builds a worker for `opt` (borrowed; must outlive it) serving registry
 * `reg` (taken: freed with the worker, or here on failure). NULL with a
 * one-line reason in err on failure. */
worker *worker_new(worker_options *opt, lw_registry *reg, char *err, size_t errlen);
/* Runs the loop until the worker exits; returns the exit status. */
int worker_run(worker *w);
/* Frees everything; attempts still running are released, not recorded. */
void worker_free(worker *w);
/* SIGTERM/SIGINT or the shutdown timeout: drain, then hand back
 * (`immediate`: kill at once, no grace). */
void worker_begin_shutdown(worker *w, int immediate);

#endif
