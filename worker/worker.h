/*
 * worker.h — the worker process: one libevent loop that claims jobs, hands
 * them to runners, and records their outcomes.
 *
 * The loop never blocks. Everything that can make progress possible (a claim
 * reply, an attempt ending, a wake-up message, a timer, Redis coming back)
 * calls worker_kick(), which schedules one run of the pump:
 *
 *   pump: for each tenant, send its pending outcomes (one finish.lua call);
 *         then, while slots are free, send claims (one claim.lua call per
 *         tenant, round-robin, the free slots shared between tenants);
 *         then check the exit conditions (--burst, --max-jobs, shutdown).
 *
 * Correctness never depends on a wake-up: idle tenants are polled, scheduled
 * jobs have a timer, leases are renewed and reaped on timers.
 *
 * Tenants and Redis links are reference-counted: an attempt holds its tenant,
 * a tenant holds its link and its registry, so a SIGHUP reload can replace
 * them while attempts of the old ones finish and record their outcomes.
 */
#ifndef LW_WORKER_H
#define LW_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "attempt.h"
#include "log.h"
#include "metrics.h"
#include "module_host.h"
#include "options.h"
#include "redis_async.h"
#include "registry.h"

struct event_base;
struct event;
struct outcome;
struct thread_pool;
struct http_server;

/* A registry shared by the tenants made from it. */
typedef struct regref {
    lw_registry *reg;
    int refs;
} regref;

/* One Redis server, shared by every tenant that lives on it. */
typedef struct rlink {
    struct worker *w;
    lw_redis *r;
    char *url_text; /* as configured: the key that makes tenants share a link */
    int refs;
    struct rlink *next;
} rlink;

typedef struct tenant {
    struct worker *w;
    int refs;
    int retired;             /* removed or replaced by a reload */
    regref *reg;             /* holds a reference */
    const lw_tenant *cfg;    /* borrowed from reg */
    rlink *link;             /* holds a reference */
    char prefix[300];        /* "NS:{T}:" */
    int *caps;               /* max_active of each of the worker's queues */
    module_binding *mod;     /* NULL: no module */

    /* claiming */
    int claim_inflight;      /* slots reserved by the claim in flight, 0: none */
    int claim_errors;        /* consecutive error replies to claims, for the backoff */
    int idle;                /* the last claim found nothing to do */
    int64_t poll_at;         /* mono ms: claim again even if idle */
    int64_t next_due;        /* wall ms of the earliest scheduled job, -1: none */

    /* outcomes waiting for finish.lua */
    struct outcome *out_head, **out_tail;
    size_t nout;
    int finish_inflight;
    int64_t finish_retry_at;  /* mono ms: after an error reply, resend no sooner */

    int running;             /* attempts of this tenant running */
    int renew_inflight;
    int spool_pending;       /* spools to (re)scan once Redis is ready */
    int spool_inflight;      /* enqueue calls of a scan in flight */
    int spool_errors;        /* consecutive scans whose enqueue got an error reply */
    int64_t spool_retry_at;  /* mono ms: rescan no sooner (after an error reply) */
    lw_log_gate err_gate;    /* error replies to its commands: one line a minute */
    struct tenant *next;
} tenant;

typedef enum {
    W_RUNNING,   /* claiming */
    W_QUIET,     /* SIGTSTP: no more claims, runs what it has */
    W_DRAINING,  /* SIGTERM: no more claims, waits up to --shutdown-timeout */
    W_HANDBACK,  /* timeout or second signal: stopping attempts, handing back */
    W_EXITING    /* everything recorded (or given up on): leave the loop */
} worker_state;

typedef struct worker {
    worker_options *opt;
    struct event_base *base;
    worker_state state;
    int exit_code;

    regref *reg;
    tenant *tenants;    /* serving, registry order */
    tenant *retired;    /* finishing attempts after a reload */
    size_t rr;          /* round-robin start for claims */
    rlink *links;
    rlink *home;        /* the --redis server: worker presence */
    lw_log_gate presence_gate; /* presence refused (an ACL without NS:worker*) */

    attempt *running;   /* every attempt started and not yet ended */
    int nrunning;       /* attempts occupying a slot (abandoned ones included) */
    int reserved;       /* slots reserved by claims in flight */
    int64_t started_total; /* attempts started, for --max-jobs */
    int64_t ended_total;   /* attempts ended (outcome recorded or discarded) */
    int64_t started_wall;  /* wall ms at start, for `lanework workers` */
    int64_t last_pump_mono;

    struct thread_pool *pool;  /* --isolation thread */
    struct http_server *http;
    metrics m;

    struct event *pump_ev;
    struct event *tick;         /* 100 ms housekeeping: polls, due timers, burst */
    struct event *renew_timer;
    struct event *gather_timer; /* claim batching: ends a wait for more free slots */
    int64_t gather_since;       /* mono ms free slots were first seen unclaimed; -1: none */
    struct event *reap_timer;
    struct event *shutdown_timer;
    struct event *sigs[6];
    int handback_immediate;     /* a second signal: kill at once, no grace */
    int64_t handback_deadline;  /* mono ms after which we exit even if Redis is away */
} worker;

/* worker.c */
worker *worker_new(worker_options *opt, lw_registry *reg, char *err, size_t errlen);
int worker_run(worker *w); /* returns the exit status */
void worker_free(worker *w);
void worker_kick(worker *w);
void worker_begin_shutdown(worker *w, int immediate);

/* tenants.c: building tenants from a registry, links, reloads. */
int tenants_build(worker *w, regref *rr, tenant **out, char *err, size_t errlen);
void tenant_unref(tenant *t);
void tenant_ref(tenant *t);
void tenants_reload(worker *w);
tenant *tenant_by_prefix(worker *w, const char *channel);
/* An error reply (or an unexpected one) to the tenant's `what` ("claim",
 * "reaper", ...): one log line naming the tenant, rate-limited so a refusal
 * that persists (an ACL denial) does not flood the log. */
void tenant_redis_error(tenant *t, const char *what, const redisReply *reply);
rlink *link_get(worker *w, const char *url_text, const lw_url *url);
void link_unref(rlink *l);
void regref_unref(regref *r);

/* claim.c */
void claim_send(tenant *t, int n);

/* outcome.c: an attempt ended; what it means for the job. */
void attempt_finished(attempt *a, end_kind how, const char *text);
void outcome_flush(tenant *t);
int outcomes_pending(const worker *w);

/* lease.c: renewals, the reaper, the worker directory. */
void lease_start(worker *w);
void lease_renew_tenant(tenant *t);
void presence_update(worker *w);
/* Removes this worker from the directory; returns 1 when a reply will
 * call worker_exit_ready(), 0 when nothing was sent (Redis away). */
int presence_remove(worker *w);
/* The exit's last Redis write was answered: stop the loop. */
void worker_exit_ready(worker *w);

/* spool_scan.c */
void spool_scan_tenant(tenant *t);

/* dispatch.c: start an attempt with the right runner. */
void dispatch_attempt(attempt *a);
/* Stops an attempt for `why` (kill its processes, or flag its thread). */
void dispatch_stop(attempt *a, stop_reason why);

#endif
