/*
 * outcome.h — what attempts report, on its way to Redis.
 *
 * Each tenant keeps a FIFO of records: handler events and attempt outcomes,
 * in the order they happened. The pump sends them in batches through
 * finish.lua, one call in flight per tenant. A batch whose reply is lost
 * (connection loss, failover) goes back to the front of the FIFO and is sent
 * again when Redis is back: outcomes of attempts that finished during an
 * outage are kept in memory and written later, and fencing makes the resend
 * harmless.
 */
#ifndef LW_OUTCOME_H
#define LW_OUTCOME_H

#include <stdint.h>

#include "state.h"

/* A job claimed while the worker shuts down: queue its hand-back without
 * running it (`a` was never dispatched; the caller frees it). */
void outcome_handback_unstarted(attempt *a);

/* Gives up on a thread-isolation attempt whose handler ignores its stop
 * request: records `how`/`text` as its end now, keeps the attempt (and its
 * slot) until the thread returns. */
void outcome_abandon(attempt *a, end_kind how, const char *text);
/* The abandoned attempt's thread returned: free it and its slot. */
void outcome_release_abandoned(attempt *a);

/* An attempt ended `how` (text: its result or error, borrowed): queues
 * what it means for the job (verdict.h), gives its slot back and frees
 * `a`. Exactly once per attempt, on the loop thread. */
void outcome_finished(attempt *a, end_kind how, const char *text);
/* Sends t's queued records in one finish.lua call, if none is in flight
 * and its Redis is ready (from the pump); a lost reply queues them again. */
void outcome_flush(struct tenant *t);
/* 1 while any tenant, retired ones included, has records Redis has not
 * confirmed or job.json writes they wait for (the exit waits for them). */
int outcomes_pending(const struct worker *w);

/* Queues a handler event of a running attempt; it reaches Redis with the
 * tenant's next finish.lua batch, before the attempt's outcome. */
void outcome_event(attempt *a, const char *type, const char *data);

#endif
