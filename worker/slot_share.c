/* slot_share.c — sharing free slots between tenants (slot_share.h). */
#include "slot_share.h"

int64_t slot_share_free(int concurrency, int nrunning, int reserved, int64_t max_jobs,
                        int64_t started, int64_t *left)
{
    int64_t free_slots = (int64_t)concurrency - nrunning - reserved;
    *left = INT64_MAX;
    if (max_jobs) {
        *left = max_jobs - started - reserved;
        if (*left < free_slots)
            free_slots = *left;
    }
    return free_slots;
}

int slot_share_should_gather(int64_t free_slots, int64_t left, int concurrency, int busy)
{
    int64_t batch = concurrency;
    if (batch > SLOT_SHARE_CLAIM_MAX)
        batch = SLOT_SHARE_CLAIM_MAX;
    if (left < batch)
        batch = left;
    return free_slots < batch && busy;
}

void slot_share_begin(slot_share *s, int64_t free_slots, int64_t eligible)
{
    s->free = free_slots > 0 ? free_slots : 0;
    s->eligible = eligible > 0 ? eligible : 0;
}

int64_t slot_share_next(slot_share *s)
{
    if (s->free <= 0 || s->eligible <= 0)
        return 0;
    int64_t share = (s->free + s->eligible - 1) / s->eligible;
    if (share > SLOT_SHARE_CLAIM_MAX)
        share = SLOT_SHARE_CLAIM_MAX;
    s->eligible--;
    return share;
}

void slot_share_used(slot_share *s, int64_t n)
{
    s->free -= n;
    if (s->free < 0)
        s->free = 0;
}
