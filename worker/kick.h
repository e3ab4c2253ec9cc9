/*
 * kick.h — the one way up (kick.c). A lower layer that made progress
 * possible (a reply came, an attempt ended, Redis is back) never calls the
 * code that acts on it: it sets a flag on the tenant or worker (state.h)
 * and kicks; the pump in worker.c, which owns every decision about what to
 * send next, reads the flags. Like disque's signalQueueAsReady + beforeSleep.
 */
#ifndef LW_KICK_H
#define LW_KICK_H

#include <stdint.h>

#include "state.h"

/* Schedules one run of the pump (at most one pending). Cheap; safe to call
 * from any callback on the loop thread, never from another thread. */
void worker_kick(worker *w);
/* Something may have made t's work claimable now (a wake-up, an outcome
 * recorded, a reap, a reconnect): claim again, even if a claim in flight
 * replies that there is nothing. */
void tenant_work_maybe(tenant *t);
/* A due time announced by Redis, `delay_ms` from now (a wake-up "@MS"). */
void tenant_due_in(tenant *t, int64_t delay_ms);
/* Redis refused t's claims for being at maxmemory (oom=1) or took one
 * again (oom=0): said once, shown by /healthz. */
void tenant_set_oom(tenant *t, int oom);
/* t's link is (again) ready: the pump publishes its settings, renews its
 * leases and rescans its spools (worker.c). */
void tenant_link_ready(tenant *t);
/* t's leases should be renewed soon (a cancel was announced). */
void tenant_renew_soon(tenant *t);
/* The worker's directory should be written soon (its counts or state
 * changed). */
void worker_presence_soon(worker *w);
/* The exit's last Redis write was answered (or given up on): stop the
 * loop. */
void worker_exit_ready(worker *w);

#endif
