/*
 * worker.c — the loop: pump, timers, signals, shutdown.
 *
 * Shutdown (CONTRACT section 5):
 *   SIGTERM/SIGINT  RUNNING/QUIET -> DRAINING: claim nothing more, let the
 *                   running attempts end within --shutdown-timeout.
 *   timeout, or a second signal
 *                   DRAINING -> HANDBACK: stop every running attempt (TERM,
 *                   then KILL after the grace; a second signal: KILL now)
 *                   and record it as handed back (finish.lua puts it back at
 *                   the head of its lane without counting the attempt).
 *   all recorded    -> EXITING: leave the worker directory, exit 0.
 * If Redis stays away during shutdown, the worker still exits after the
 * hand-back deadline; the leases of what it could not record expire and
 * the reaper retries those jobs (an attempt is counted, nothing is lost).
 */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "attempt.h"
#include "backoff.h"
#include "child.h"
#include "claim.h"
#include "dispatch.h"
#include "fence.h"
#include "http.h"
#include "queue_stats.h"
#include "kick.h"
#include "lease.h"
#include "log.h"
#include "partition.h"
#include "outcome.h"
#include "keys.h"
#include "presence.h"
#include "reload.h"
#include "runners.h"
#include "sigfork.h"
#include "slot_share.h"
#include "spool_io.h"
#include "spool_scan.h"
#include "spool_watch.h"
#include "tenant_settings.h"
#include "tenants.h"
#include "timefmt.h"

#define TICK_MS 100
#define HANDBACK_WAIT_MS (KILL_GRACE_MS + 10000)
#define BURST_HORIZON_MS 1000
#define CLAIM_GATHER_MS 2

/* A backed-off poll may go out up to an eighth of its period early, with
 * the others due by then: one timer wake-up and one write for a batch of
 * claims instead of one each (an idle worker's polls of 1,000 tenants fall
 * at 1,000 different times). */
static int64_t poll_slack(const tenant *t)
{
    return t->poll_ivl > t->w->opt->poll_ms ? t->poll_ivl / 8 : 0;
}

/* 1 when t may be asked for work now. All times are our monotonic clock:
 * due times come from Redis as delays, never as Redis time to compare with
 * our wall clock. */
/* Outcomes waiting to be recorded past which a tenant claims nothing more:
 * normally they go out within a round trip, so a backlog means Redis takes
 * claims but not outcomes (replicas not confirming them under
 * --min-replicas, a refused finish.lua); without this bound every job run
 * meanwhile would stay in memory. */
static size_t backlog_max(const worker *w) { return 256 + 4 * (size_t)w->opt->concurrency; }

/* Says once when a tenant stops claiming for its backlog (claimable), and
 * when it claims again. */
static void backlog_notice(tenant *t)
{
    int over = t->nout >= backlog_max(t->w);
    if (over && !t->backlog_said)
        lw_log(LW_LOG_WARN, "outcome.backlog",
               "tenant %s: %zu outcomes not recorded yet (Redis takes claims but not outcomes: "
               "replicas not confirming them?): no new claims until they are",
               t->cfg->name, t->nout);
    else if (!over && t->backlog_said)
        lw_log(LW_LOG_INFO, "outcome.backlog", "tenant %s: outcomes recorded again: claims resume",
               t->cfg->name);
    t->backlog_said = over;
}

static int claimable(const tenant *t, int64_t mono)
{
    if (t->claim_inflight || !lw_redis_is_ready(t->link->r))
        return 0;
    /* Not before the partition count in force is known: the caps are
     * shares of it (tenant_settings.c). */
    if ((t->lead ? t->lead->nparts : t->nparts) == 0)
        return 0;
    if (t->nout >= backlog_max(t->w))
        return 0;
    if (!t->idle)
        return 1;
    if (mono >= t->poll_at - poll_slack(t))
        return 1;
    return t->due_mono >= 0 && t->due_mono <= mono && !t->oom && !t->claim_errors;
}

static void due_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker_kick(arg);
}

/* Arms the timer for the next moment an idle tenant becomes claimable
 * (its poll, or its earliest scheduled job), so due jobs start on time
 * rather than on the next 100 ms tick. */
static void arm_due_timer(worker *w, int64_t mono)
{
    int64_t next = -1;
    for (const tenant *t = w->tenants; t; t = t->next) {
        if (!t->idle || t->claim_inflight)
            continue;
        int64_t at = t->poll_at - poll_slack(t);
        if (t->due_mono >= 0 && t->due_mono < at && !t->oom && !t->claim_errors)
            at = t->due_mono;
        if (next < 0 || at < next)
            next = at;
    }
    if (w->claim_pause_until > mono && (next < 0 || w->claim_pause_until > next))
        next = w->claim_pause_until;
    if (next < 0)
        return;
    if (!w->due_timer && !(w->due_timer = evtimer_new(w->base, due_timeout_cb, w)))
        return;
    int64_t ms = next - mono;
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(w->due_timer, &tv);
}

/* Claim batching. A claim.lua call costs Redis a fixed ~25 us besides its
 * jobs. Claiming each slot the moment it frees made that fixed part the
 * largest share of a busy worker's Redis time: with one claim in flight per
 * tenant, the slots split into two halves taking turns (8 slots, short
 * jobs: ~4 jobs per claim; waiting for a quarter or half of the slots did
 * not change that, the turns just shift). So while attempts run or a claim
 * is in flight, a round waits until every slot is free (at most SLOT_SHARE_CLAIM_MAX)
 * -- each attempt that ends runs the pump again -- but never longer than
 * CLAIM_GATHER_MS after a slot was first seen free: a slot beside
 * long-running attempts idles that long at most. A worker with nothing
 * running and nothing in flight claims at once. */

static void gather_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker_kick(arg);
}

/* 1 when the round should wait for more free slots (the timer will kick).
 * Only a drain waits: when some claimable tenant has no backlog, its work
 * is new (a wake-up, a poll, a due time) and waiting would only add to its
 * start latency. */
static int claim_gather(worker *w, int64_t free_slots, int64_t left, int64_t mono)
{
    if (!slot_share_should_gather(free_slots, left, w->opt->concurrency,
                                  w->nrunning > 0 || w->reserved > 0))
        return 0;
    for (const tenant *t = w->tenants; t; t = t->next)
        if (!t->backlog && claimable(t, mono))
            return 0;
    if (w->gather_since < 0)
        w->gather_since = mono;
    int64_t wait = w->gather_since + CLAIM_GATHER_MS - mono;
    if (wait <= 0)
        return 0;
    if (!w->gather_timer && !(w->gather_timer = evtimer_new(w->base, gather_timeout_cb, w)))
        return 0;
    if (!evtimer_pending(w->gather_timer, NULL)) {
        struct timeval tv = {0, (suseconds_t)(wait * 1000)};
        if (evtimer_add(w->gather_timer, &tv))
            return 0;
    }
    return 1;
}

/* Idle polls. Correctness never depends on a wake-up: an idle tenant is
 * asked for work now and then whatever it was told. How often is what a
 * missed wake-up may cost. While the tenant's wake channel is confirmed on
 * a live pub/sub connection (tenant.wake_live) a wake-up can only be missed
 * in ways nothing notices (and it claimed once right after the
 * confirmation, which covers the messages sent before it), so the period
 * doubles after each empty poll, from --poll up to POLL_CAP_MS: with 1,000
 * idle tenants and 4 workers, polls every 250-375 ms were ~13,000 claim.lua
 * calls a second, a quarter of a core of Redis. Without a live
 * subscription (connecting, lost, refused) it stays at --poll, and a lost
 * pub/sub connection brings every tenant of it back to --poll at once
 * (tenants.c). Work found resets it (claim.c). A tenant with a max_active
 * cap on one of our queues stays at --poll: a claim the cap refused answers
 * "nothing", as an empty tenant does, and the slot another worker's finish
 * frees announces nothing, so only a poll finds the job that waited. */
#define POLL_CAP_MS 8000

static int capped(const worker *w, const tenant *t)
{
    for (size_t q = 0; w->opt->queues[q]; q++)
        if (t->caps[q] > 0)
            return 1;
    return 0;
}

static int64_t next_poll_ms(const worker *w, tenant *t)
{
    int64_t base = w->opt->poll_ms, cap = base > POLL_CAP_MS ? base : POLL_CAP_MS;
    if (!t->wake_live || t->poll_ivl <= 0 || capped(w, t))
        t->poll_ivl = base;
    else
        t->poll_ivl = t->poll_ivl * 2 > cap ? cap : t->poll_ivl * 2;
    return t->poll_ivl;
}

/* Sends t a claim for `want` slots (a poll when it is idle), promising them
 * in `share` when it went. */
static void claim_one(worker *w, tenant *t, int64_t want, int64_t mono, slot_share *share)
{
    if (t->idle) {
        /* A poll: if it finds nothing, the next one is a period away. */
        int64_t poll = next_poll_ms(w, t);
        t->poll_at = mono + poll + (int64_t)(lw_random64() % (uint64_t)(poll / 2 + 1));
    }
    claim_send(t, (int)want);
    if (t->claim_inflight) {
        slot_share_used(share, want);
        w->gather_since = -1;
    }
}

#define PART_CLAIM_MIN 16

/* A tenant's turn in a round: `want` slots, which a partitioned tenant
 * shares between its claimable partitions (order[0..n): the round's
 * structs) from a rotating one, so it takes one tenant's share of the
 * round whatever its partition count (DESIGN.md section 7). Returns the
 * slots promised. */
static int64_t claim_tenant(worker *w, tenant *lead, tenant **order, size_t n, int64_t want,
                            int64_t mono)
{
    slot_share mine;
    if (lead->cfg->partitions < 2 && lead->nparts < 2) {
        slot_share_begin(&mine, want, 1);
        claim_one(w, lead, want, mono, &mine);
        return want - mine.free;
    }
    tenant *parts[LW_PARTITIONS_MAX];
    int m = 0;
    for (size_t i = 0; i < n && m < LW_PARTITIONS_MAX; i++)
        if (tenant_lead(order[i]) == lead && claimable(order[i], mono))
            parts[m++] = order[i];
    /* Claims of at least PART_CLAIM_MIN slots (or the whole turn): a
     * claim.lua or finish.lua call costs Redis about as much for one job as
     * for a few, so slicing a turn thin over many partitions would cost a
     * drain several times the Redis CPU per job. The partitions left out
     * start the next turn. */
    int served = m < (int)(want / PART_CLAIM_MIN) ? m : (int)(want / PART_CLAIM_MIN);
    if (served < 1)
        served = 1;
    slot_share_begin(&mine, want, served);
    for (int i = 0; i < served && mine.free > 0; i++) {
        tenant *t = parts[(lead->part_rr + (size_t)i) % (size_t)m];
        int64_t each = slot_share_next(&mine);
        if (each > 0)
            claim_one(w, t, each, mono, &mine);
    }
    lead->part_rr += (size_t)served;
    return want - mine.free;
}

/* 1 when the tenant of t (its lead) has a partition that may claim now. */
static int tenant_claimable(tenant *lead, tenant **order, size_t n, int64_t mono)
{
    if (lead->cfg->partitions < 2 && lead->nparts < 2)
        return claimable(lead, mono);
    for (size_t i = 0; i < n; i++)
        if (tenant_lead(order[i]) == lead && claimable(order[i], mono))
            return 1;
    return 0;
}

/* Shares the free slots among the tenants that may have work, starting at a
 * rotating tenant so no tenant is always served first. */
static void claim_round(worker *w)
{
    int64_t left;
    int64_t free_slots = slot_share_free(w->opt->concurrency, w->nrunning, w->reserved,
                                         w->opt->max_jobs, w->started_total, &left);
    if (free_slots <= 0) {
        w->gather_since = -1;
        return;
    }
    int64_t mono = lw_mono_ms();
    if (mono < w->claim_pause_until)
        return;
    if (claim_gather(w, free_slots, left, mono))
        return;
    size_t n = 0;
    for (tenant *t = w->tenants; t; t = t->next)
        n++;
    tenant **order = calloc(n ? n : 1, sizeof *order);
    if (!order)
        return;
    size_t k = 0, eligible = 0;
    for (tenant *t = w->tenants; t; t = t->next, k++)
        order[k] = t;
    for (size_t i = 0; i < n; i++) {
        backlog_notice(order[i]);
        if (!order[i]->lead && tenant_claimable(order[i], order, n, mono))
            eligible++;
    }
    slot_share share;
    slot_share_begin(&share, free_slots, (int64_t)eligible);
    for (size_t i = 0; i < n && share.free > 0 && share.eligible > 0; i++) {
        tenant *t = order[(w->rr + i) % n];
        if (t->lead || !tenant_claimable(t, order, n, mono))
            continue;
        int64_t want = slot_share_next(&share);
        slot_share_used(&share, claim_tenant(w, t, order, n, want, mono));
    }
    if (n)
        w->rr = (w->rr + 1) % n;
    free(order);
}

/* Attempts that still occupy the worker (not counting abandoned threads,
 * whose outcome is already recorded). */
static int live_attempts(const worker *w)
{
    int n = 0;
    for (const attempt *a = w->running; a; a = a->next)
        if (a->phase != PHASE_ABANDONED)
            n++;
    return n;
}

static int burst_done(const worker *w)
{
    if (w->nrunning || w->reserved || outcomes_pending(w))
        return 0;
    int64_t mono = lw_mono_ms();
    for (const tenant *t = w->tenants; t; t = t->next) {
        if (!lw_redis_is_ready(t->link->r) || !t->idle || t->claim_inflight || t->spool_pending ||
            t->spool_inflight || t->spool_scanning || t->npend)
            return 0;
        if (t->due_mono >= 0 && t->due_mono <= mono + BURST_HORIZON_MS)
            return 0;
    }
    return 1;
}

static void exit_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker_exit_ready(arg);
}

static void begin_exit(worker *w, const char *why)
{
    if (w->state == W_EXITING)
        return;
    w->state = W_EXITING;
    lw_log(LW_LOG_INFO, "worker.exit", "%s; exiting", why);
    if (!presence_remove(w)) {
        worker_exit_ready(w);
        return;
    }
    /* Wait for the directory removal's reply, but not for a Redis that
     * stopped answering. */
    struct timeval tv = {2, 0};
    if (event_base_once(w->base, -1, EV_TIMEOUT, exit_now, w, &tv) != 0)
        worker_exit_ready(w); /* no memory for the timer */
}

static void check_exit(worker *w)
{
    if (w->state == W_EXITING)
        return;
    if (w->state == W_DRAINING || w->state == W_HANDBACK) {
        /* A claim in flight may bring jobs (handed back at once, claim.c):
         * leaving before its reply would leave them leased to nobody. */
        if (live_attempts(w) == 0 && !outcomes_pending(w) && w->reserved == 0) {
            begin_exit(w, "every attempt ended and was recorded");
        } else if (w->state == W_HANDBACK && lw_mono_ms() > w->handback_deadline) {
            lw_log(
                LW_LOG_ERROR, "worker.exit",
                "could not record every outcome before the hand-back deadline (Redis unreachable?); their leases will expire and the reaper will retry those jobs");
            begin_exit(w, "hand-back deadline passed");
        }
        return;
    }
    if (w->opt->max_jobs && w->started_total >= w->opt->max_jobs && w->nrunning == 0 &&
        !w->reserved && !outcomes_pending(w)) {
        begin_exit(w, "--max-jobs reached");
        return;
    }
    if (w->opt->burst && w->state == W_RUNNING && burst_done(w))
        begin_exit(w, "--burst: nothing left to claim");
}

static void drop_idle_retired(worker *w)
{
    for (tenant **p = &w->retired; *p;) {
        tenant *t = *p;
        if (!t->running && !t->nout && !t->finish_inflight && !t->claim_inflight &&
            !t->spool_writes) {
            *p = t->next;
            tenant_unref(t);
        } else {
            p = &t->next;
        }
    }
}

/* What lower layers asked for with a flag (kick.h). A link that came back
 * publishes the settings before anything else (the claims apply them) and
 * renews the leases its frozen attempts wait for. */
static void tenant_flags(tenant *t, int serving)
{
    if (t->link_fresh) {
        t->link_fresh = 0;
        if (serving)
            tenant_settings_publish(t);
        if (t->running)
            t->renew_wanted = 1;
    }
    if (t->renew_wanted) {
        t->renew_wanted = 0;
        lease_renew_tenant(t);
    }
}

static void pump_flags(worker *w)
{
    if (w->parts_resize && w->state == W_RUNNING) {
        w->parts_resize = 0;
        tenants_resize(w);
    }
    for (tenant *t = w->tenants; t; t = t->next)
        tenant_flags(t, 1);
    for (tenant *t = w->retired; t; t = t->next)
        tenant_flags(t, 0);
    if (w->presence_wanted) {
        w->presence_wanted = 0;
        presence_update(w);
    }
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    w->last_pump_mono = lw_mono_ms();
    pump_flags(w);
    for (tenant *t = w->tenants; t; t = t->next) {
        spool_scan_tenant(t);
        outcome_flush(t);
    }
    for (tenant *t = w->retired; t; t = t->next)
        outcome_flush(t);
    drop_idle_retired(w);
    if (w->state == W_RUNNING) {
        claim_round(w);
        arm_due_timer(w, lw_mono_ms());
    }
    presence_soon(w);
    check_exit(w);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    int64_t now = lw_mono_ms();
    /* Belt and braces for the keeper (fence.h): the same freeze check. */
    if (w->fence) {
        fence_check(w->fence, now);
        fence_keeper_ensure(w->fence, now);
    }
    dispatch_fence_threads(w, now);
    children_sweep(w, now);
    if (w->state == W_RUNNING)
        for (tenant *t = w->tenants; t; t = t->next)
            tenant_settings_retry(t, now);
    worker_kick(w);
}

static void shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    if (w->state == W_DRAINING) {
        lw_log(LW_LOG_WARN, "worker.handback",
               "--shutdown-timeout passed with %d attempt(s) running; handing them back",
               live_attempts(w));
        worker_begin_shutdown(w, 0);
    }
}

void worker_begin_shutdown(worker *w, int immediate)
{
    if (w->state == W_EXITING)
        return;
    if (w->state == W_RUNNING || w->state == W_QUIET) {
        w->state = W_DRAINING;
        lw_log(LW_LOG_INFO, "worker.drain",
               "stopping: claiming nothing more; %d attempt(s) running, waiting up to %.0f s",
               live_attempts(w), (double)w->opt->shutdown_timeout_ms / 1000.0);
        int64_t ms = w->opt->shutdown_timeout_ms;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evtimer_add(w->shutdown_timer, &tv);
        presence_update(w);
        worker_kick(w);
        return;
    }
    /* Second signal, or the timeout: hand back. */
    int first = w->state != W_HANDBACK;
    w->state = W_HANDBACK;
    w->handback_immediate |= immediate;
    if (first)
        w->handback_deadline = lw_mono_ms() + HANDBACK_WAIT_MS;
    if (immediate)
        lw_log(LW_LOG_WARN, "worker.handback", "second signal: handing back every attempt now");
    for (attempt *a = w->running, *next; a; a = next) {
        next = a->next; /* dispatch_stop may end (and free) a */
        if (a->phase != PHASE_ABANDONED)
            dispatch_stop(a, STOP_HANDBACK);
    }
    worker_kick(w);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    worker *w = arg;
    switch (sig) {
    case SIGTERM:
    case SIGINT: worker_begin_shutdown(w, w->state == W_DRAINING || w->state == W_HANDBACK); break;
    case SIGTSTP:
        if (w->state == W_RUNNING) {
            w->state = W_QUIET;
            lw_log(LW_LOG_INFO, "worker.quiet",
                   "SIGTSTP: claiming nothing more; %d attempt(s) keep running", live_attempts(w));
            presence_update(w);
        }
        break;
    case SIGHUP: tenants_reload(w); break;
    case SIGCHLD: dispatch_reap(w); break;
    default: break;
    }
}

worker *worker_new(worker_options *opt, lw_registry *reg, char *err, size_t errlen)
{
    worker *w = calloc(1, sizeof *w);
    regref *rr = calloc(1, sizeof *rr);
    if (!w || !rr) {
        free(w), free(rr);
        lw_registry_free(reg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->gather_since = -1;
    w->tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    rr->reg = reg;
    rr->refs = 1;
    w->reg = rr;
    w->opt = opt;
    w->state = W_RUNNING;
    w->started_mono = lw_mono_ms();
    w->last_pump_mono = lw_mono_ms();
    w->slots = calloc((size_t)opt->concurrency, sizeof *w->slots);
    w->free_slots = calloc((size_t)opt->concurrency, sizeof *w->free_slots);
    if (!w->slots || !w->free_slots) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = opt->concurrency - 1; i >= 0; i--)
        w->free_slots[w->nfree++] = i;
    /* Processes an attempt starts and orphans come back to us, so that
     * the sweep can kill what left its attempt's process group. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    /* Before any thread exists: the keeper is forked now (fence.h). */
    if (!(w->fence = fence_new(opt->concurrency))) {
        snprintf(err, errlen, "cannot create the lease fence table: %s", strerror(errno));
        goto fail;
    }
    w->base = event_base_new();
    if (!w->base) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    if (tenants_build(w, rr, &w->tenants, err, errlen))
        goto fail;
    lw_url *home = lw_url_parse(opt->common.redis_url, err, errlen);
    if (!home)
        goto fail;
    char entry[600], set[600];
    lw_key_global(entry, sizeof entry, opt->common.ns, "worker:");
    snprintf(entry + strlen(entry), sizeof entry - strlen(entry), "%s", opt->name);
    lw_key_global(set, sizeof set, opt->common.ns, "workers");
    w->home = link_get(w, opt->common.redis_url, home, link_slot(home, entry));
    w->home_set = link_get(w, opt->common.redis_url, home, link_slot(home, set));
    lw_url_free(home);
    if (!w->home || !w->home_set) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(w->spool_io = spool_io_new(w->base)) || !(w->watch = spool_watch_new(w))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    spool_watch_sync(w->watch);
    if (runners_open(w, err, errlen))
        goto fail;
    if (opt->http && !(w->http = http_start(w, opt->http, err, errlen)))
        goto fail;
    /* The queue gauges are read only for /metrics. */
    if (opt->http && queue_stats_start(w)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    w->pump_ev = event_new(w->base, -1, 0, pump_cb, w);
    w->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
    w->shutdown_timer = evtimer_new(w->base, shutdown_timeout_cb, w);
    if (!w->pump_ev || !w->tick || !w->shutdown_timer) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct timeval tick = {0, TICK_MS * 1000};
    event_add(w->tick, &tick);
    const int sigs[6] = {SIGTERM, SIGINT, SIGTSTP, SIGHUP, SIGCHLD, 0};
    for (int i = 0; sigs[i]; i++) {
        w->sigs[i] = evsignal_new(w->base, sigs[i], signal_cb, w);
        if (!w->sigs[i] || event_add(w->sigs[i], NULL)) {
            snprintf(err, errlen, "cannot install signal handlers");
            goto fail;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    /* A worker in the background of a terminal must not be stopped for
     * writing its log there (attempts give the terminal up: child.h). */
    signal(SIGTTOU, SIG_IGN);
    signal(SIGTTIN, SIG_IGN);
    sigfork_note_dispositions(); /* what fork children reset (run_fork.c) */
    /* Held since main() started: deliver them to the handlers now. */
    sigset_t held;
    sigemptyset(&held);
    for (int i = 0; sigs[i]; i++)
        sigaddset(&held, sigs[i]);
    sigprocmask(SIG_UNBLOCK, &held, NULL);
    lease_start(w);
    return w;
fail:
    worker_free(w);
    return NULL;
}

int worker_run(worker *w)
{
    size_t nt = 0, np = 0;
    for (tenant *t = w->tenants; t; t = t->next)
        t->lead ? np++ : nt++;
    char parts[64] = "";
    if (np)
        snprintf(parts, sizeof parts, " (%zu partitions)", nt + np);
    lw_log(LW_LOG_INFO, "worker.start",
           "worker %s: %zu tenant(s)%s, concurrency %d, isolation %s, lease %.1f s, redis %s",
           w->opt->name, nt, parts, w->opt->concurrency, options_isolation_name(w->opt->isolation),
           (double)w->opt->lease_ms / 1000.0, lw_redis_name(w->home->r));
    worker_kick(w);
    event_base_dispatch(w->base);
    return w->exit_code;
}

void worker_free(worker *w)
{
    if (!w)
        return;
    runners_close(w);
    /* Before the links: its reads in flight then end without going on. */
    queue_stats_free(w);
    /* Before the attempts and tenants its tasks point to are freed. */
    spool_io_free(w->spool_io, 2000);
    spool_watch_free(w->watch);
    /* Close every link first: their pending callbacks run now (with NULL
     * replies) and drop the tenant references they hold. */
    for (rlink *l = w->links; l; l = l->next) {
        lw_redis_free(l->r);
        l->r = NULL;
    }
    while (w->running) {
        /* Only after a forced exit: the attempts are gone with us (their
         * processes die with the worker, PR_SET_PDEATHSIG). */
        attempt *a = w->running;
        w->running = a->next;
        if (a->runner && a->runner->release)
            a->runner->release(a);
        attempt_free(a);
    }
    fence_free(w->fence);
    if (w->tty_fd >= 0)
        close(w->tty_fd);
    free(w->slots);
    free(w->free_slots);
    while (w->tenants) {
        tenant *t = w->tenants;
        w->tenants = t->next;
        tenant_unref(t);
    }
    while (w->retired) {
        tenant *t = w->retired;
        w->retired = t->next;
        tenant_unref(t);
    }
    if (w->home)
        link_unref(w->home);
    if (w->home_set)
        link_unref(w->home_set);
    http_free(w->http);
    for (int i = 0; i < 6; i++)
        if (w->sigs[i])
            event_free(w->sigs[i]);
    if (w->pump_ev)
        event_free(w->pump_ev);
    if (w->tick)
        event_free(w->tick);
    if (w->renew_timer)
        event_free(w->renew_timer);
    if (w->presence_timer)
        event_free(w->presence_timer);
    if (w->reap_timer)
        event_free(w->reap_timer);
    if (w->shutdown_timer)
        event_free(w->shutdown_timer);
    if (w->gather_timer)
        event_free(w->gather_timer);
    w->gather_timer = NULL;
    if (w->due_timer)
        event_free(w->due_timer);
    w->due_timer = NULL;
    /* Links freed by link_unref wait in deferred callbacks: run them. */
    if (w->base) {
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        event_base_free(w->base);
    }
    regref_unref(w->reg);
    metrics_clear(&w->m);
    free(w);
}
