/*
 * lease.c — keeping what we run and taking back what the dead ran.
 *
 *   renewal   every lease/6: renew.lua extends the leases of our attempts.
 *             Its reply says, per (slot, serial), whether the lease is
 *             still this attempt's: a confirmed renewal proves the lease
 *             from its send time on and moves the attempt's freeze point
 *             (fence.h) to 0.65 lease after it -- thawing it if it was
 *             frozen -- while a lost one kills the attempt at once. It also
 *             says whether a cancel was requested.
 *   reaper    every lease/6 per tenant, jittered: reap.lua takes back jobs
 *             whose lease expired. Any live worker calls it; the first call
 *             of a period does the work and the others are told when the
 *             next is due (reap_period below). The script re-checks expiry
 *             itself, and gives leases back the time of a Redis outage
 *             (lib.lua).
 * and, with the renewal, the worker's directory entry (presence.h).
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "attempt.h"
#include "backoff.h"
#include "dispatch.h"
#include "fence.h"
#include "invariant.h"
#include "keys.h"
#include "kick.h"
#include "lease.h"
#include "lease_rules.h"
#include "log.h"
#include "presence.h"
#include "script_args.h"
#include "script_replies.h"
#include "scripts.h"
#include "state.h"
#include "tenants.h"
#include "timefmt.h"

#define REAP_LIMIT 200

/* A renewal in flight: which attempts it speaks for, by slot and serial
 * (an attempt may end, and its slot go to a new attempt -- even of the same
 * job -- before the reply comes), and when it was sent: a confirmed
 * renewal proves the lease from its send time on (fence.h). */
typedef struct renew_call {
    tenant *t;
    int64_t sent_mono;
    size_t n;
    int *slots;
    uint64_t *serials;
} renew_call;

static void renew_call_free(renew_call *c)
{
    free(c->slots);
    free(c->serials);
    free(c);
}

static int64_t freeze_point(const worker *w, int64_t proof)
{
    return lease_rules_freeze_point(w->opt->lease_ms, proof);
}

void lease_proven(attempt *a, int64_t sent_mono)
{
    worker *w = a->tenant->w;
    if (sent_mono <= a->proof_mono)
        return;
    /* A confirmation that comes back after the point it would move the
     * freeze to proves nothing now: the lease may have run out while the
     * reply was on its way, and the job gone elsewhere. The renewal sent
     * next (renew_reply) decides. */
    if (freeze_point(w, sent_mono) <= lw_mono_ms())
        return;
    a->proof_mono = sent_mono;
    if (a->slot < 0 || !w->fence || a->pid <= 0 || a->reaped)
        return;
    int64_t frozen = fence_extend(w->fence, a->slot, freeze_point(w, sent_mono));
    int64_t ran = lw_mono_ms() - a->started_mono;
    if (frozen > ran)
        frozen = ran;
    if (frozen > 0) {
        /* Frozen time is not running time: the timeout waits for it. */
        if (a->timeout_at)
            a->timeout_at += frozen;
        lw_log_about(LW_LOG_INFO, "lease.thawed", attempt_facts(a, 1),
                     "lease proven again after %.1f s frozen; resuming the attempt",
                     (double)frozen / 1000.0);
    }
}

void lease_log_outage(tenant *t, long long gap)
{
    if (gap == 0)
        return;
    lw_log(
        LW_LOG_WARN, "lease.outage",
        "tenant %s: no lease renewal or reaper could reach Redis for %.1f s (Redis stopped, restarting or unreachable); running jobs' leases were given that time back",
        t->cfg->name, (double)gap / 1000.0);
}

static void renew_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    renew_call *c = ud;
    tenant *t = c->t;
    worker *w = t->w;
    t->renew_inflight = 0;
    lw_renew_reply got;
    if (reply && lw_renew_reply_read(reply, &got, NULL, 0) == 0 && got.n_lease == c->n) {
        lease_log_outage(t, got.gap);
        for (size_t i = 0; i < c->n; i++) {
            attempt *a = w->slots[c->slots[i]];
            if (!a || a->serial != c->serials[i])
                continue; /* ended meanwhile */
            lw_renew_lease lease;
            lw_renew_lease_at(&got, i, &lease);
            long long v = lease.status;
            if (v == 0) {
                lw_log_about(LW_LOG_WARN, "lease.lost", attempt_facts(a, 1),
                             "lease lost (the job was taken back); killing the attempt");
                dispatch_stop(a, STOP_LOST);
                continue;
            }
            lease_proven(a, c->sent_mono);
            if (v == 2) {
                lw_log_about(LW_LOG_INFO, "job.cancel", attempt_facts(a, 1),
                             "cancel requested; stopping the attempt");
                dispatch_stop(a, STOP_CANCEL);
            }
        }
    } else if (reply) {
        tenant_redis_error(t, "lease renewal", reply);
    }
    /* A renewal wanted meanwhile (a cancel message), or one that came back
     * too late to prove anything (it sat in a stalled Redis): once more. */
    int again = t->renew_again;
    t->renew_again = 0;
    if (reply && lw_mono_ms() - c->sent_mono > w->opt->lease_ms / 6)
        again = 1;
    renew_call_free(c);
    if (again)
        lease_renew_tenant(t);
    tenant_unref(t);
}

void lease_renew_tenant(tenant *t)
{
    worker *w = t->w;
    if (t->renew_inflight) {
        t->renew_again = 1;
        return;
    }
    if (!lw_redis_is_ready(t->link->r))
        return;
    size_t n = 0;
    for (attempt *at = w->running; at; at = at->next)
        if (at->tenant == t && at->phase != PHASE_ABANDONED && attempt_stop_reason(at) != STOP_LOST)
            n++;
    if (n == 0)
        return;
    renew_call *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(n, sizeof *c->slots)) ||
        !(c->serials = calloc(n, sizeof *c->serials))) {
        if (c)
            renew_call_free(c);
        return;
    }
    lw_argv a;
    lw_argv_init(&a);
    lw_renew_keys(&a, t->prefix);
    lw_renew_argv_add(&a, &(lw_renew_argv){.prefix = t->prefix,
                                           .events_cap = t->set.events_max,
                                           .lease_ms = w->opt->lease_ms,
                                           .n = (int64_t)n});
    for (attempt *at = w->running; at; at = at->next) {
        if (at->tenant != t || at->phase == PHASE_ABANDONED || attempt_stop_reason(at) == STOP_LOST)
            continue;
        LW_ASSERT(at->token && at->token[0]); /* a renewal names the lease by its token */
        lw_renew_lease_argv_add(&a, &(lw_renew_lease_argv){.id = at->id, .token = at->token});
        c->slots[c->n] = at->slot;
        c->serials[c->n] = at->serial;
        c->n++;
    }
    c->t = t;
    c->sent_mono = lw_mono_ms();
    tenant_ref(t);
    if (lw_redis_script(t->link->r, &lw_script_renew, LW_RENEW_NKEYS, &a, renew_reply, c) == 0) {
        t->renew_inflight = 1;
    } else {
        tenant_unref(t);
        renew_call_free(c);
    }
    lw_argv_clear(&a);
}

static void renew_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    for (tenant *t = w->tenants; t; t = t->next)
        if (t->running)
            lease_renew_tenant(t);
    for (tenant *t = w->retired; t; t = t->next)
        if (t->running)
            lease_renew_tenant(t);
    presence_update(w);
}

/* The reaper's period, lease/6, and the delay added to the due time a
 * reap.lua reply names. Once per period per tenant is all the fleet needs,
 * so reap.lua does the work for the first caller of a period and tells the
 * others when the next one is due (its `wait`). The one that reaped comes
 * back a period later; the others a twentieth to a tenth of a period after
 * the due time, so it stays the one that reaps, and if it died the first of
 * them comes at most a tenth late. The timer serves due tenants in rounds
 * a twentieth of a period apart. So deaths are still found within about
 * lease + lease/5, and no gap between two runs comes near 0.3 lease, which
 * observe_outage (lib.lua) would take for an outage. */
static int64_t reap_period(const worker *w) { return w->opt->lease_ms / 6; }

static int64_t reap_jitter(const worker *w)
{
    int64_t p = reap_period(w);
    return p / 20 + (int64_t)(lw_random64() % (uint64_t)(p / 20 + 1));
}

static void arm_reap(worker *w, int64_t now);

static void reap_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    tenant *t = ud;
    worker *w = t->w;
    int64_t now = lw_mono_ms();
    t->reap_inflight = 0;
    lw_reap_reply got;
    if (reply && lw_reap_reply_read(reply, &got, NULL, 0) == 0) {
        lease_log_outage(t, got.gap);
        for (size_t i = 0; i < got.n_taken; i++) {
            lw_reap_taken taken;
            lw_reap_taken_at(&got, i, &taken);
            const char *id = taken.id.s, *what = taken.status.s;
            lw_log_facts job = {.job = id, .tenant = t->cfg->name};
            if (!strcmp(what, "queued"))
                lw_log_about(LW_LOG_WARN, "job.lost", job,
                             "its worker's lease expired; retrying it");
            else if (!strcmp(what, "failed"))
                lw_log_about(LW_LOG_WARN, "job.lost", job,
                             "its worker's lease expired on its last attempt; failed");
            else if (!strcmp(what, "cancelled"))
                lw_log_about(LW_LOG_WARN, "job.lost", job,
                             "its worker's lease expired; its cancel was pending: cancelled");
            else if (strcmp(what, "missing"))
                lw_log_about(LW_LOG_ERROR, "job.corrupt", job, "skipped by the reaper: %s", what);
        }
        if (got.n_taken)
            tenant_work_maybe(t);
        /* We reaped: again a period on, first in line. Another worker
         * did: ours is due a little after its period is over, so that it
         * stays the one that reaps while it lives. */
        t->reap_skipped = got.wait > 0;
        /* A call's worth taken: maybe more expired (reap.lua let go of the
         * period), so again in the next round. */
        if (got.n_taken >= REAP_LIMIT)
            t->reap_at = now;
        else if (got.wait > 0 && got.wait <= reap_period(w))
            t->reap_at = now + got.wait + reap_jitter(w);
        else
            t->reap_at = now + reap_period(w);
        if (t->reap_at < w->reap_next)
            arm_reap(w, now);
    } else if (reply) {
        tenant_redis_error(t, "reaper", reply);
    }
    worker_kick(w);
    tenant_unref(t);
}

static void reap_send(tenant *t)
{
    worker *w = t->w;
    lw_argv a;
    lw_argv_init(&a);
    lw_reap_keys(&a, t->prefix);
    lw_reap_argv_add(&a, &(lw_reap_argv){.prefix = t->prefix,
                                         .events_cap = t->set.events_max,
                                         .keep_failed_s = t->set.keep_failed_s,
                                         .limit = REAP_LIMIT,
                                         .lease_ms = w->opt->lease_ms});
    tenant_ref(t);
    if (lw_redis_script(t->link->r, &lw_script_reap, LW_REAP_NKEYS, &a, reap_reply, t))
        tenant_unref(t);
    else
        t->reap_inflight = 1;
    lw_argv_clear(&a);
}

/* The reply to PTTL P reaped: the next reap of the tenant is due then, or
 * now (reap.lua decides again: two workers may both find it due). */
static void reap_check_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    tenant *t = ud;
    worker *w = t->w;
    t->reap_inflight = 0;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        t->reap_no_check = 1; /* refused (an ACL): reap.lua decides alone */
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0 &&
        reply->integer <= reap_period(w)) {
        int64_t now = lw_mono_ms();
        t->reap_at = now + reply->integer + reap_jitter(w);
        if (t->reap_at < w->reap_next)
            arm_reap(w, now);
    } else if (reply && lw_redis_is_ready(t->link->r)) {
        reap_send(t);
    }
    tenant_unref(t);
}

/* A worker that reaped the tenant last time calls reap.lua straight away:
 * it is most likely the first again. One that was told another had reaped
 * asks first with a plain PTTL of P reaped, a tenth of a script call's cost
 * to Redis, and calls reap.lua only once it is due: with 4 workers and
 * 1,000 idle tenants, 3 of every 4 calls were such refusals. */
static void reap_tenant(tenant *t, int64_t now)
{
    worker *w = t->w;
    /* Until the reply says otherwise (or if there is none): a period on,
     * jittered ±20 % as before. */
    int64_t base = reap_period(w);
    t->reap_at = now + base * 8 / 10 + (int64_t)(lw_random64() % (uint64_t)(base * 4 / 10 + 1));
    if (!lw_redis_is_ready(t->link->r))
        return;
    if (!t->reap_skipped || t->reap_no_check) {
        reap_send(t);
        return;
    }
    char key[400];
    if (lw_key(key, sizeof key, t->prefix, "reaped", NULL)) {
        reap_send(t);
        return;
    }
    lw_argv a;
    lw_argv_init(&a);
    lw_argv_adds(&a, "PTTL");
    lw_argv_adds(&a, key);
    tenant_ref(t);
    if (lw_redis_command(t->link->r, &a, reap_check_reply, t))
        tenant_unref(t);
    else
        t->reap_inflight = 1;
    lw_argv_clear(&a);
}

/* The timer: at the earliest due tenant, but rounds at least a twentieth
 * of a period apart (1,000 tenants, each due at its own time, would otherwise
 * wake the loop 1,000 times a period). */
static void arm_reap(worker *w, int64_t now)
{
    int64_t next = -1;
    for (const tenant *t = w->tenants; t; t = t->next)
        if (!t->reap_inflight && (next < 0 || t->reap_at < next))
            next = t->reap_at;
    if (next < 0)
        next = now + reap_period(w);
    int64_t ms = next - now, round = reap_period(w) / 20;
    if (ms < round)
        ms = round;
    w->reap_next = now + ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(w->reap_timer, &tv);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    int64_t now = lw_mono_ms();
    for (tenant *t = w->tenants; t; t = t->next)
        if (!t->reap_inflight && t->reap_at <= now)
            reap_tenant(t, now);
    arm_reap(w, now);
}

void lease_start(worker *w)
{
    /* Every sixth of a lease: an attempt is frozen at 0.65 lease without a
     * confirmed renewal (fence.h), so three renewals may go unanswered. */
    int64_t ms = w->opt->lease_ms / 6;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    w->renew_timer = event_new(w->base, -1, EV_PERSIST, renew_cb, w);
    w->reap_timer = evtimer_new(w->base, reap_cb, w);
    if (w->renew_timer)
        event_add(w->renew_timer, &tv);
    if (w->reap_timer) {
        /* The first reaps a period after start, jittered, as every later one. */
        int64_t now = lw_mono_ms(), base = reap_period(w);
        for (tenant *t = w->tenants; t; t = t->next)
            t->reap_at =
                now + base * 8 / 10 + (int64_t)(lw_random64() % (uint64_t)(base * 4 / 10 + 1));
        arm_reap(w, now);
    }
}
