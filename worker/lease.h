/*
 * lease.h — lease renewals and the reaper (lease.c).
 */
#ifndef LW_LEASE_H
#define LW_LEASE_H

#include "state.h"

/* Starts the renewal and reaper timers of w. */
void lease_start(worker *w);
/* Renews the leases of t's attempts now (or right after the renewal in
 * flight). */
void lease_renew_tenant(tenant *t);
/* Redis confirmed a's lease in a call sent at `sent_mono` (its claim or a
 * renewal): moves its freeze point, thawing it if it was frozen. */
void lease_proven(attempt *a, int64_t sent_mono);
/* Logs an outage a lease script noticed (gap ms; 0: none). */
void lease_log_outage(tenant *t, long long gap);

#endif
