/*
 * enqueue_args.h — packs job specs into the KEYS/ARGV of enqueue.lua, so the
 * CLI (enqueue, --batch) and the worker (spool scan) enqueue the same way.
 *
 * Usage: lw_enqueue_begin(); lw_enqueue_add() per job (all of one tenant);
 * then send lw_enqueue_nkeys() keys + the rest as arguments of
 * lw_script_enqueue. The reply is LW_ENQUEUE_REPLY entries per job: the id,
 * 1 when the job was created or 0 when one with that id or unique key
 * already existed, and why: "" when created, "held STATUS" (its unique key
 * is held by that job) or "exists STATUS" (a job with that id exists).
 */
#ifndef LW_ENQUEUE_ARGS_H
#define LW_ENQUEUE_ARGS_H

#include "argv.h"
#include "jobspec.h"
#include "script_args.h"

/* The layout comes from enqueue.lua's interface block (script_args.h):
 * LW_ENQUEUE_NKEYS keys, then per job this many arguments, and this many
 * reply entries per job. */
#define LW_ENQUEUE_STRIDE LW_ENQUEUE_JOB_NARGV
#define LW_ENQUEUE_REPLY LW_ENQUEUE_JOB_FIELDS

/* Starts a batch for tenant prefix `prefix` ("NS:{T}:", or a partition's:
 * partition.h) in `a`, routed by `partitions` -- the count the caller read
 * from partition 0, which enqueue.lua checks there (initialised
 * with lw_argv_init; emptied here, its memory and a past OOM forgotten).
 * Everything is copied in. Cannot fail as such: an allocation failure is
 * kept in `a` and shows as lw_argv_ptrs() returning NULL. */
void lw_enqueue_begin(lw_argv *a, const char *prefix, int64_t events_max, int partitions);
/* Adds one resolved spec (id, attempts, timeout, backoff set: see
 * lw_job_spec_resolve) after lw_enqueue_begin(); `s` is copied in, not kept.
 * OOM as for lw_enqueue_begin(). */
void lw_enqueue_add(lw_argv *a, const lw_job_spec *s);
/* Number of jobs added since lw_enqueue_begin(). */
size_t lw_enqueue_count(const lw_argv *a);

#endif
