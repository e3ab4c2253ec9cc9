/*
 * lease.h — lease renewals, the reaper, the worker directory (lease.c).
 */
#ifndef LW_LEASE_H
#define LW_LEASE_H

#include "worker.h"

void lease_start(worker *w);
/* Renews the leases of t's attempts now (or right after the renewal in
 * flight). */
void lease_renew_tenant(tenant *t);
/* Redis confirmed a's lease in a call sent at `sent_mono` (its claim or a
 * renewal): moves its freeze point, thawing it if it was frozen. */
void lease_proven(attempt *a, int64_t sent_mono);
/* Mono ms at which a is frozen (or, thread isolation, asked to stop)
 * unless its lease is proven again. */
int64_t lease_freeze_at(const attempt *a);
/* The freeze point of leases proven by a call sent at `proof` (mono ms). */
int64_t lease_freeze_point(const worker *w, int64_t proof);
/* How long a Redis reply may be overdue before the link is probed (and
 * reset if the server answers a new connection), and half of it before
 * /healthz says so: tied to the lease (lease.c). */
int64_t lease_reply_timeout_ms(const worker *w);
/* Logs an outage a lease script noticed (gap ms; 0: none). */
void lease_log_outage(tenant *t, long long gap);
void presence_update(worker *w);
/* The counts or the state differ from what the directory shows: write them
 * within a quarter second (one write for a burst of changes), not at the
 * next heartbeat. Cheap to call on every loop pass. */
void presence_soon(worker *w);
/* Removes this worker from the directory; returns 1 when a reply will
 * call worker_exit_ready(), 0 when nothing was sent (Redis away). */
int presence_remove(worker *w);

#endif
