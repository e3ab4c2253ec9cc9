/*
 * state.h — the worker's data, types only: the attempt (the `lw_job` the
 * module API hands to handlers), the outcome record, tenants, Redis links
 * and the worker itself. No function is declared here: each lives in the
 * header of the file that defines it, and files call only files of a lower
 * layer (docs/DESIGN.md, "Layers of worker/"). The only way up is a flag
 * on the tenant or worker plus worker_kick() (kick.h), which schedules the
 * pump in worker.c.
 *
 * Tenants and Redis links are reference-counted: an attempt holds its tenant,
 * a tenant holds its link and its registry, so a SIGHUP reload can replace
 * them while attempts of the old ones finish and record their outcomes.
 *
 * An attempt: everything a handler reads is fixed at attempt_new and lives
 * in one block of memory owned by the attempt. `result`/`error` are written
 * by the handler (thread or child) and read by the worker only after the
 * handler returned. `stop` is the only field both sides touch concurrently
 * (atomic).
 */
#ifndef LW_STATE_H
#define LW_STATE_H

#include <lanework/module.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "metrics.h"
#include "module_host.h"
#include "options.h"
#include "phase.h"
#include "redis_async.h"
#include "registry.h"
#include "settings.h"
#include "verdict.h" /* stop_reason, end_kind */

struct event_base;
struct event;
struct runner;
struct thread_pool;
struct fork_pool;
struct http_server;
struct queue_stats;
struct fence;
struct spool_io;
struct spool_watch;

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
    size_t max_payload; /* --max-payload: results, errors and event data */
    /* Handler events of this attempt (job_api.c bounds them). */
    int events_sent;
    size_t event_bytes;
    long events_dropped; /* >0 once the attempt's limit was reached */
    int64_t event_seq;   /* events handed to outcome.c so far (main thread) */
    /* Thread isolation: how the handler returned. */
    lw_status status;

    /* Shared with the handler: nonzero once asked to stop. */
    atomic_int stop;

    /* How handler events leave the handler: straight to Redis (main thread),
     * through the thread pool's queue, or through a fork child's pipe. */
    void (*emit)(lw_job *job, const char *type, const char *data);

    /* Worker side. */
    struct tenant *tenant;       /* holds a reference */
    const struct runner *runner; /* NULL until a runner took it (runner.h) */
    uint64_t serial;             /* unique within the worker: renewals name (slot, serial) */
    int slot;                    /* index in worker.slots and the fence table; -1: none */
    int64_t proof_mono;          /* lw_mono_ms() when the latest claim/renewal Redis
                               confirmed for this attempt was sent (fence.h) */
    int64_t started_mono;        /* lw_mono_ms() at start */
    int64_t timeout_at;          /* mono ms the timeout falls due; 0: no timeout.
                               Moved later by the time spent frozen. */
    struct event *timer;         /* the timeout, then the grace after a stop request;
                               always created before the attempt starts */
    attempt_phase phase;         /* where it is in its life (attempt.h) */
    pid_t pid;                   /* fork/exec child, 0 when none */
    int exit_status;             /* from waitpid, valid when reaped */
    int reaped;                  /* child collected */
    void *runner_state;          /* owned by the runner that runs it */
    struct lw_job *next, *prev;  /* the worker's list of running attempts */
    char *mem;                   /* the block the const strings above point into */
};

typedef struct lw_job attempt;

/* One record on its way to finish.lua (outcome.h). */
typedef struct outcome {
    struct outcome *next;
    char *id, *token; /* owned */
    const char *word; /* finish.lua's outcome: event ok retry fail cancelled handback */
    char *text;       /* owned: result JSON, error, or event data; never NULL */
    int64_t delay_ms; /* retry backoff */
    char *event_type; /* owned, events only */
    size_t bytes;     /* about what it adds to a finish.lua call */
    int replaced;     /* a refused outcome already replaced by a failure */
    int resent;       /* --min-replicas: sent again after a shortfall; the primary may have
                       * it already (a 'stale' answer is then its own first try) */
} outcome;

/* A registry shared by the tenants made from it. */
typedef struct regref {
    lw_registry *reg;
    int refs;
} regref;

/* One Redis server, shared by every tenant that lives on it. */
typedef struct rlink {
    struct worker *w;
    lw_redis *r;
    char *url_text; /* as configured: with slot, the key that makes tenants share a link */
    int slot;       /* Cluster URLs: the hash slot served; else -1 */
    int refs;
    lw_log_gate policy_gate; /* the eviction-policy warning: once an hour, not each reconnect */
    struct rlink *next;
} rlink;

/* One queue of one tenant struct (partition) as queue_stats.c last read it. */
typedef struct qstat {
    int64_t queued, scheduled, active; /* P stats queued:Q, scheduled:Q; ZCARD P active:Q */
    int paused;                        /* Q is in P paused */
    int64_t oldest_ms;                 /* age of the oldest runnable job; 0: none waits;
                                          -1: unknown (only tombstones among the entries read) */
} qstat;

typedef struct tenant {
    struct worker *w;
    int refs;
    int retired;          /* removed or replaced by a reload */
    regref *reg;          /* holds a reference */
    const lw_tenant *cfg; /* borrowed from reg */
    rlink *link;          /* holds a reference */
    char prefix[300];     /* "NS:{T}:", or partition `part`'s "NS:{T#p}:" */
    /* Partitions (partition.h): one tenant struct per partition, each its
     * own keyspace with its own claims, reaper, outcomes and link. What is
     * the tenant's as a whole -- its module, spools, process pools -- is
     * partition 0's (tenant_lead). */
    int part;
    struct tenant *lead;    /* holds a reference; NULL: this is partition 0 */
    lw_log_gate parts_gate; /* partition 0: the count in force differs from the registry's */
    size_t part_rr;         /* partition 0: where its next claim turn starts (worker.c) */
    int nparts;             /* partition 0: the count in force, as settings.lua said (0:
                               not known yet: the registry's is used) */
    int legacy_done;        /* partition 0: known.lua said it answers for nothing from
                               before the tenant was partitioned: spool scans stop asking */
    int64_t parts_retry_at; /* partition 0: mono ms of the next publication while the
                               registry's count is refused (0: none due; tenant_settings.c) */
    lw_tenant_settings set; /* retention, events cap: what this worker publishes */
    int *caps;              /* max_active of each of the worker's queues */
    module_binding *mod;    /* NULL: no module */
    /* The registry's "user": the identity handler processes switch to.
     * Set by reload.c, read by the runners' children (tenants.c). */
    int run_as; /* 0: they run as the worker */
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* owned: supplementary groups of that user */
    int ngroups;
    char *user_env[3]; /* owned: HOME=, USER=, LOGNAME= for exec handlers */

    /* Claiming: claim.c's, read by the pump (worker.c) and kick.c. */
    int claim_inflight; /* slots reserved by the claim in flight, 0: none */
    int claim_errors;   /* consecutive error replies to claims, for the backoff */
    int idle;           /* the last claim found nothing to do (and nothing said
                                otherwise since it was sent) */
    int backlog;        /* the last claim said more is ready: a drain, whose
                                claims may wait to be batched (worker.c) */
    uint64_t work_seq;  /* bumped by whatever may make work claimable (wake-up,
                                outcome recorded, reap, reconnect): a claim reply
                                that says "nothing" only makes the tenant idle if
                                no such thing happened while it was in flight */
    uint64_t claim_seq; /* work_seq when the claim in flight was sent */
    int64_t poll_at;    /* mono ms: claim again even if idle */
    int64_t poll_ivl;   /* the idle poll period now, ms (0: none yet): --poll,
                                doubled after each poll while wake_live, up to
                                POLL_CAP_MS (worker.c) */
    int wake_live;      /* its wake channel is confirmed subscribed on a live
                                pub/sub connection (tenants.c): a wake-up
                                would reach us, so idle polls back off */
    int64_t reap_at;    /* mono ms of its next reap.lua call (lease.c) */
    int reap_inflight;
    int reap_skipped;  /* the last reap.lua call found another worker had reaped */
    int reap_no_check; /* PTTL of P reaped was refused: reap.lua decides alone */
    int64_t due_mono;  /* mono ms when the earliest scheduled job falls due
                                (Redis's delay, on our own clock), -1: none known */
    int64_t due_hint;  /* mono ms: due times announced while a claim was in
                                flight (its reply may predate them), -1: none */
    int oom;           /* claims are refused: Redis is at maxmemory */
    lw_log_gate oom_gate;

    /* Outcomes waiting for finish.lua: outcome.c's. */
    struct outcome *out_head, **out_tail;
    size_t nout;
    int backlog_said; /* the claim pause for an outcome backlog was logged */
    int finish_inflight;
    int64_t finish_retry_at; /* mono ms: after an error reply, resend no sooner */
    int finish_limit;        /* entries per finish.lua call; halved while Redis
                                 refuses a batch, to find the entry it refuses */
    int finish_nulls;        /* consecutive lost replies to the head batch */

    /* Attempts and leases: dispatch.c and outcome.c count, lease.c renews;
     * the flags are kick.h's, read by the pump. */
    int running;      /* attempts of this tenant running */
    int link_fresh;   /* its link is (again) ready: the pump publishes the
                                settings and renews the leases (kick.h) */
    int renew_wanted; /* a renewal asked for from below (kick.h) */
    int renew_inflight;
    int renew_again; /* a renewal was wanted while one was in flight */
    /* Spools: spool_pending.c queues, spool_scan.c reads and enqueues. */
    int spool_pending;  /* SPOOL_RESCAN*: a full scan once Redis is ready */
    int spool_inflight; /* enqueue calls of a scan in flight */
    int spool_scanning; /* scan tasks on the spool I/O threads */
    int spool_writes;   /* job.json status writes whose outcome waits for them */
    char **pend_names;  /* owned: entries the watcher saw appear, to read */
    size_t *pend_spool; /* the spool index of each */
    size_t npend, pend_cap, pend_scap;
    uint64_t *spool_seen; /* owned, sorted: bad entries already reported */
    size_t nseen, seen_cap;
    int spool_errors;       /* consecutive scans whose enqueue got an error reply */
    int64_t spool_retry_at; /* mono ms: rescan no sooner (after an error reply) */
    lw_log_gate err_gate;   /* error replies to its commands: one line a minute */
    /* Queue gauges (queue_stats.c): the latest complete read, one entry per
     * worker queue (--queue order), and when it ended. */
    qstat *qs;       /* owned; NULL until the first read */
    int64_t qs_mono; /* mono ms the latest complete read ended; 0: none */
    int qs_inflight; /* a read is in flight */
    struct tenant *next;
} tenant;

/* The struct of t's partition 0, which holds what is the tenant's as a
 * whole (module, spools, pools); t itself when it is partition 0. */
static inline tenant *tenant_lead(tenant *t) { return t->lead ? t->lead : t; }

/* The spools t scans: its registry's, for partition 0 only (the jobs found
 * go to their own partitions: spool_scan.c). */
static inline size_t tenant_nspools(const tenant *t) { return t->lead ? 0 : t->cfg->nspools; }

typedef enum {
    W_RUNNING,  /* claiming */
    W_QUIET,    /* SIGTSTP: no more claims, runs what it has */
    W_DRAINING, /* SIGTERM: no more claims, waits up to --shutdown-timeout */
    W_HANDBACK, /* timeout or second signal: stopping attempts, handing back */
    W_EXITING   /* everything recorded (or given up on): leave the loop */
} worker_state;

typedef struct worker {
    worker_options *opt;
    struct event_base *base;
    worker_state state;
    int exit_code;

    regref *reg;
    tenant *tenants; /* serving, registry order */
    tenant *retired; /* finishing attempts after a reload */
    size_t rr;       /* round-robin start for claims */
    rlink *links;
    rlink *home;                  /* the --redis server: worker presence (NS:worker:NAME) */
    rlink *home_set;              /* ...and its NS:workers; == home but on a Cluster URL */
    lw_log_gate presence_gate;    /* presence refused (an ACL without NS:worker*) */
    struct event *presence_timer; /* a write soon: the counts changed */
    int presence_wanted;          /* a write now, asked for from below (kick.h) */
    int parts_resize;             /* a tenant's partition count in force differs from its
                                     structs (tenant_settings.c): rebuild (reload.h) */
    int shown_active;             /* the counts and state of the last presence write */
    int64_t shown_processed;
    int shown_state;

    attempt *running; /* every attempt started and not yet ended */
    int nrunning;     /* attempts occupying a slot (abandoned ones included) */
    int reserved;     /* slots reserved by claims in flight */
    attempt **slots;  /* --concurrency entries: the attempt in each slot, or NULL */
    int *free_slots;  /* a stack of the free slot numbers */
    int nfree;
    uint64_t next_serial;
    struct fence *fence;       /* freeze points of attempt processes (fence.h) */
    int tty_fd;                /* owned: our controlling terminal, -1 when none
                                  (attempt children give it up: child.h) */
    int64_t claim_pause_until; /* mono ms: no claims (a handler could not start
                                  for want of fds or processes) */
    lw_log_gate resource_gate;
    int64_t sweep_at;      /* mono ms of the next orphan sweep (child.c) */
    int sweep_wanted;      /* a process attempt ended since the last sweep */
    int64_t started_total; /* attempts started, for --max-jobs */
    int64_t ended_total;   /* attempts ended (outcome recorded or discarded) */
    int64_t started_mono;  /* mono ms at start */
    int64_t started_redis; /* the start on Redis's clock (from the first
                              heartbeat's reply), 0 until known */
    int64_t last_pump_mono;

    struct thread_pool *pool;    /* --isolation thread */
    struct fork_pool *fork_pool; /* --isolation pool: the pre-forked children (run_pool.c) */
    struct spool_io *spool_io;   /* job.json reads, writes and scans (spool_io.h) */
    struct spool_watch *watch;   /* inotify on the spools, the periodic rescan */
    struct http_server *http;
    struct queue_stats *qstats; /* the queue gauges' reader (queue_stats.c); NULL: none */
    metrics m;

    struct event *pump_ev;
    struct event *tick; /* 100 ms housekeeping: polls, due timers, burst */
    struct event *renew_timer;
    struct event *gather_timer; /* claim batching: ends a wait for more free slots */
    struct event *due_timer;    /* the earliest poll or due time of an idle tenant */
    int64_t gather_since;       /* mono ms free slots were first seen unclaimed; -1: none */
    struct event *reap_timer;
    int64_t reap_next; /* mono ms the reap timer fires (lease.c) */
    struct event *shutdown_timer;
    struct event *sigs[6];
    int handback_immediate;    /* a second signal: kill at once, no grace */
    int64_t handback_deadline; /* mono ms after which we exit even if Redis is away */
} worker;

#endif
