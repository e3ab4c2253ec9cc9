/*
 * slot_share.h — how a claim round shares the worker's free slots between
 * its tenants (slot_share.c). Pure arithmetic, unit-tested
 * (tests/unit/test_slot_share.c); worker.c's claim_round walks the tenants
 * from a rotating start and asks this for each claimable one's share.
 */
#ifndef LW_SLOT_SHARE_H
#define LW_SLOT_SHARE_H

#include <stdint.h>

/* Most jobs one claim.lua call asks for. */
#define SLOT_SHARE_CLAIM_MAX 256

typedef struct slot_share {
    int64_t free;     /* slots not yet promised to a claim of this round */
    int64_t eligible; /* claimable tenants not yet served in this round */
} slot_share;

/* The slots a round may fill: --concurrency minus the running attempts and
 * the slots reserved by claims in flight, and, with --max-jobs (0: none),
 * no more than the jobs still to start (*left, INT64_MAX without). May be
 * zero or negative: nothing to claim. */
int64_t slot_share_free(int concurrency, int nrunning, int reserved, int64_t max_jobs,
                        int64_t started, int64_t *left);
/* 1 when a round should wait for more slots to free (claim batching,
 * worker.c): attempts run or a claim is in flight (`busy`), and fewer than
 * a full batch -- every slot, at most SLOT_SHARE_CLAIM_MAX, at most `left`
 * -- is free. */
int slot_share_should_gather(int64_t free_slots, int64_t left, int concurrency, int busy);
/* Starts a round over `eligible` tenants. */
void slot_share_begin(slot_share *s, int64_t free_slots, int64_t eligible);
/* The share of the next eligible tenant: the free slots split evenly
 * between those not served yet, rounded up (so no slot idles), at most
 * SLOT_SHARE_CLAIM_MAX; 0 when nothing is left. Counts the tenant as
 * served. */
int64_t slot_share_next(slot_share *s);
/* The tenant's claim was sent for `n` slots: they are promised. A claim
 * that could not be sent promises nothing, and the tenants after it share
 * its slots. */
void slot_share_used(slot_share *s, int64_t n);

#endif
