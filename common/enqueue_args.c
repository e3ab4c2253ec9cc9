/*
 * enqueue_args.c — KEYS/ARGV of enqueue.lua (enqueue_args.h), through the
 * builders generated from the script's interface block (script_args.h):
 * the order of the fields is written there only.
 */
#include "enqueue_args.h"

void lw_enqueue_begin(lw_argv *a, const char *prefix, int64_t events_max, int partitions)
{
    lw_argv_reset(a);
    lw_enqueue_keys(a, prefix);
    lw_enqueue_argv_add(
        a, &(lw_enqueue_argv){
               .prefix = prefix, .events_cap = events_max, .n = 0, .partitions = partitions});
}

void lw_enqueue_add(lw_argv *a, const lw_job_spec *s)
{
    /* Fallbacks mirror lw_job_spec_resolve, for a caller that skipped it. */
    lw_enqueue_job_argv_add(a, &(lw_enqueue_job_argv){
                                   .id = s->id,
                                   .kind = s->kind,
                                   .queue = s->queue ? s->queue : "default",
                                   .lane = s->lane ? s->lane : s->id,
                                   .payload = s->payload ? s->payload : "null",
                                   .attempts = s->attempts,
                                   .timeout_ms = s->timeout_ms,
                                   .backoff_ms = s->backoff_ms < 0 ? 0 : s->backoff_ms,
                                   .delay_ms = s->delay_ms,
                                   .expires_ms = s->expires_ms,
                                   .unique = s->unique,
                                   .spool = s->spool_dir,
                                   .unique_for_ms = s->unique_for_ms,
                               });
    lw_enqueue_argv_set_n(a, (int64_t)lw_enqueue_count(a));
}

size_t lw_enqueue_count(const lw_argv *a) { return lw_enqueue_job_count(a); }
