/*
 * enqueue_args.c — KEYS/ARGV of enqueue.lua (enqueue_args.h).
 *
 * Layout of the vector (see the top of scripts/enqueue.lua):
 *   [0..4]  KEYS: P events, P schedule, P stats, P queues, P expiring
 *   [5]     prefix P
 *   [6]     events cap
 *   [7]     n, the number of jobs (rewritten by every lw_enqueue_add)
 *   then per job LW_ENQUEUE_STRIDE entries: id kind queue lane payload
 *   attempts timeout_ms backoff_ms delay_ms expires_ms unique spool
 *   unique_for_ms
 */
#include "enqueue_args.h"

#include <stdlib.h>
#include <string.h>

#define HEADER (LW_ENQUEUE_NKEYS + 3)
#define N_INDEX (LW_ENQUEUE_NKEYS + 2)

static void add_key(lw_argv *a, const char *prefix, const char *suffix)
{
    char small[512];
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *k = pl + sl <= sizeof small ? small : malloc(pl + sl);
    if (!k) {
        a->oom = 1;
        return;
    }
    memcpy(k, prefix, pl);
    memcpy(k + pl, suffix, sl);
    lw_argv_add(a, k, pl + sl);
    if (k != small)
        free(k);
}

void lw_enqueue_begin(lw_argv *a, const char *prefix, int64_t events_max)
{
    static const char *const keys[LW_ENQUEUE_NKEYS] = {"events", "schedule", "stats", "queues",
                                                       "expiring"};
    lw_argv_reset(a);
    for (size_t i = 0; i < LW_ENQUEUE_NKEYS; i++)
        add_key(a, prefix, keys[i]);
    lw_argv_adds(a, prefix);
    lw_argv_addi(a, events_max);
    lw_argv_addi(a, 0);
}

void lw_enqueue_add(lw_argv *a, const lw_job_spec *s)
{
    /* Fallbacks mirror lw_job_spec_resolve, for a caller that skipped it. */
    lw_argv_adds(a, s->id);
    lw_argv_adds(a, s->kind);
    lw_argv_adds(a, s->queue ? s->queue : "default");
    lw_argv_adds(a, s->lane ? s->lane : s->id);
    lw_argv_adds(a, s->payload ? s->payload : "null");
    lw_argv_addi(a, s->attempts);
    lw_argv_addi(a, s->timeout_ms);
    lw_argv_addi(a, s->backoff_ms < 0 ? 0 : s->backoff_ms);
    lw_argv_addi(a, s->delay_ms);
    lw_argv_addi(a, s->expires_ms);
    lw_argv_adds(a, s->unique);
    lw_argv_adds(a, s->spool_dir);
    lw_argv_addi(a, s->unique_for_ms);
    lw_argv_seti(a, N_INDEX, (int64_t)lw_enqueue_count(a));
}

size_t lw_enqueue_count(const lw_argv *a)
{
    return a->n >= HEADER ? (a->n - HEADER) / LW_ENQUEUE_STRIDE : 0;
}
