/*
 * phase.h — the phases of an attempt's life and the moves between them
 * (phase.c). Pure; unit-tested (tests/unit/test_phase.c).
 */
#ifndef LW_PHASE_H
#define LW_PHASE_H

/* The life of an attempt inside the worker; attempt_set_phase() allows only
 * these moves:
 *   STARTING ─► RUNNING ─► GRACE        (a stop was asked; the timer counts
 *      │           │         │           the grace, no longer the timeout)
 *      └───────────┴─────────┴─► ABANDONED  (in-process runners only: its
 *                                            outcome is recorded, the thread
 *                                            still holds the slot)
 * It leaves the worker from any phase (outcome_finished, or
 * outcome_release_abandoned). Why it stops is `stop`; process runners also
 * track `pid` and `reaped`. */
typedef enum {
    PHASE_STARTING, /* slot and timer held, no runner yet (a spooled job's mark) */
    PHASE_RUNNING,  /* its runner started it */
    PHASE_GRACE,    /* asked to stop; the grace runs */
    PHASE_ABANDONED /* a thread that ignored its stop: outcome recorded */
} attempt_phase;

/* 1 when an attempt in phase `from` may move to `to` (the diagram above). */
int attempt_phase_allowed(attempt_phase from, attempt_phase to);
/* "starting", "running", "grace", "abandoned". */
const char *attempt_phase_name(attempt_phase p);

#endif
