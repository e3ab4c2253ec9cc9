/*
 * attempt.h — one attempt of one job inside a worker. It is the `lw_job` the
 * module API hands to handlers (lanework/module.h), plus the worker's own
 * bookkeeping.
 *
 * Life of an attempt:
 *
 *   claim reply ─► attempt_new ─► runner starts it (fork child, exec child,
 *   or thread) ─► runner reports the end (attempt_done) ─► outcome queued for
 *   finish.lua ─► attempt_free
 *
 * Everything a handler reads is fixed at attempt_new and lives in one block
 * of memory owned by the attempt. `result`/`error` are written by the
 * handler (thread or child) and read by the worker only after the handler
 * returned. `stop` is the only field both sides touch concurrently (atomic).
 */
#ifndef LW_ATTEMPT_H
#define LW_ATTEMPT_H

#include <lanework/module.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "verdict.h" /* stop_reason, end_kind */

struct tenant;
struct event;
struct lw_claim_job;


typedef enum { RUN_MODULE_FORK, RUN_MODULE_THREAD, RUN_EXEC, RUN_NONE } run_kind;

struct lw_job {
    /* What the handler sees (borrowed by it; owned here). */
    const char *id, *kind, *tenant_name, *lane, *queue, *payload, *spool_dir;
    const char *token;
    int attempt, attempts;
    int64_t timeout_ms, backoff_ms;

    /* Set by the handler. Owned, malloc'ed. */
    char *result;
    char *error;
    /* The handler's result was larger than --max-payload: it was dropped,
     * `error` says why, and the attempt fails without retry whatever the
     * handler returned (attempt_end_kind). */
    int oversize;
    size_t max_payload;     /* --max-payload: results, errors and event data */
    /* Handler events of this attempt (job_api.c bounds them). */
    int events_sent;
    size_t event_bytes;
    long events_dropped;    /* >0 once the attempt's limit was reached */
    /* Thread isolation: how the handler returned. */
    lw_status status;

    /* Shared with the handler: nonzero once asked to stop. */
    atomic_int stop;

    /* How handler events leave the handler: straight to Redis (main thread),
     * through the thread pool's queue, or through a fork child's pipe. */
    void (*emit)(lw_job *job, const char *type, const char *data);

    /* Worker side. */
    struct tenant *tenant; /* holds a reference */
    run_kind run;
    uint64_t serial;        /* unique within the worker: renewals name (slot, serial) */
    int slot;               /* index in worker.slots and the fence table; -1: none */
    int64_t proof_mono;     /* lw_mono_ms() when the latest claim/renewal Redis
                               confirmed for this attempt was sent (fence.h) */
    int64_t started_mono;   /* lw_mono_ms() at start */
    int64_t timeout_at;     /* mono ms the timeout falls due; 0: no timeout.
                               Moved later by the time spent frozen. */
    struct event *timer;    /* the timeout, then the grace after a stop request;
                               always created before the attempt starts */
    int timer_grace;        /* the timer now counts the grace, not the timeout */
    int timed_out_hard;     /* thread isolation: abandoned after timeout + grace */
    pid_t pid;              /* fork/exec child, 0 when none */
    int exit_status;        /* from waitpid, valid when reaped */
    int reaped;             /* child collected */
    int pipe_open;          /* child's output pipe(s) not yet at EOF */
    void *runner_state;     /* owned by the runner that runs it */
    struct lw_job *next, *prev; /* the worker's list of running attempts */
    char *mem;              /* the block the const strings above point into */
};

typedef struct lw_job attempt;

/* Creates an attempt from one job of a claim reply (its fields as
 * script_replies.h reads them; the strings are copied). Takes a
 * reference on `t`. slot is -1 and serial 0 until dispatch gives them.
 * Returns NULL on OOM. Caller frees with attempt_free. */
attempt *attempt_new(struct tenant *t, const struct lw_claim_job *job);
void attempt_free(attempt *a);

/* Asks the attempt to stop; the first reason wins, except that STOP_FENCE
 * gives way to any later one. Returns 1 when this call set it. */
int attempt_request_stop(attempt *a, stop_reason why);
/* How a module handler that returned `st` ended, as outcome.c reads it. */
end_kind attempt_end_kind(const attempt *a, lw_status st);
stop_reason attempt_stop_reason(const attempt *a);
/* a's job, tenant, kind, queue, lane, attempt and worker for
 * lw_log_about (borrowed from a); with_duration adds the time since it
 * started. */
lw_log_facts attempt_facts(const attempt *a, int with_duration);

#endif
