/*
 * fence.h — self-fencing: an attempt runs only while its worker can prove
 * it still holds the job's lease.
 *
 * A lease in Redis ends at a deadline of Redis time. A worker cut off from
 * Redis (a partition, a stopped or restarting Redis, or the worker itself
 * stopped by SIGSTOP) cannot renew it, and after the deadline another
 * worker may take the job. The attempt must therefore not go on past the
 * point where its lease could have expired. The worker knows a lower bound
 * of the deadline: a renewal (or the claim) it sent at monotonic time S and
 * that Redis confirmed put the deadline at no less than S + lease. So each
 * attempt gets a *freeze point*, S + 0.65 lease of its latest confirmed
 * renewal, and at that point its process group is frozen (SIGSTOP): it does
 * nothing more, and no state is lost. A later confirmed renewal thaws it
 * (SIGCONT) — a Redis outage then costs nothing, because the reaper gives
 * leases their outage time back (lib.lua, observe_outage) — while a
 * renewal that says the lease is gone kills it (SIGKILL: it never ran past
 * its lease, and must never run again).
 *
 * Freezing rather than stopping (TERM, then KILL) is the point: stopping at
 * the freeze point would turn every Redis outage longer than 0.65 lease into
 * a rerun of every running job, while a frozen attempt resumes as if
 * nothing happened when Redis comes back.
 *
 * The freeze points live in a table shared with a small keeper process
 * (forked at start, its own process group, dies with the worker), which
 * freezes overdue groups even while the worker itself is stopped or stuck;
 * the worker runs the same check on its own tick, so a dead keeper (it is
 * restarted) weakens nothing. Thread attempts cannot be frozen: at their
 * freeze point the worker asks the handler to stop (outcome.c: the job is
 * handed back unless it succeeded).
 *
 * Slots are indexed by the attempt's slot number (state.h, slots.h); only the
 * worker writes pgid and freeze_at and starts a slot's generation, both
 * sides set and clear its frozen bit (fence.c). A confirmation that comes
 * back after the freeze point it would move proves nothing (the lease may
 * have run out meanwhile): it neither thaws nor starts an attempt.
 */
#ifndef LW_FENCE_H
#define LW_FENCE_H

#include <stdint.h>
#include <sys/types.h>

typedef struct fence fence;

/* Creates the shared table for `nslots` attempts and starts the keeper.
 * Returns NULL with errno set when the shared mapping cannot be made (the
 * keeper failing to start is logged and retried, not an error). Must be
 * called before the worker starts threads. Free with fence_free. */
fence *fence_new(int nslots);
/* Kills the keeper and unmaps the table. */
void fence_free(fence *f);
/* In a handler process forked from the worker: unmaps the table, which
 * tenant code must not be able to write (the keeper, running as the
 * worker's user, stops whatever group a slot names). */
void fence_child_detach(fence *f);

/* The attempt in `slot` runs as process group `pgid`; freeze it at
 * `freeze_at` (CLOCK_MONOTONIC ms) unless extended. */
void fence_arm(fence *f, int slot, pid_t pgid, int64_t freeze_at);
/* Moves the freeze point of `slot` later. If the group was frozen it is
 * thawed; returns how long it was frozen (ms, >= 1), else 0. */
int64_t fence_extend(fence *f, int slot, int64_t freeze_at);
/* 1 while the group of `slot` is frozen. */
int fence_frozen(const fence *f, int slot);
/* The attempt's leader exited: forget the group. Call before reaping the
 * leader, while its zombie still reserves the group id. */
void fence_clear(fence *f, int slot);

/* Freezes every group whose freeze point has passed; what the keeper does
 * in its loop, and the worker on its tick. Returns the earliest freeze
 * point still ahead (ms), or now + 200 when there is none. Async-signal-
 * safe (it runs in a child forked from a threaded worker). */
int64_t fence_check(fence *f, int64_t now);

/* The keeper process exited (dispatch_reap saw `pid`): 1 when it was the
 * keeper; it is restarted (at most once a second). */
int fence_keeper_exited(fence *f, pid_t pid, int status);
/* The keeper's pid, 0 when none runs. */
pid_t fence_keeper_pid(const fence *f);
/* Starts the keeper if it is not running and its restart is due. */
void fence_keeper_ensure(fence *f, int64_t now);

#endif
