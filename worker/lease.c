/*
 * lease.c — keeping what we run, taking back what the dead ran, and telling
 * the fleet we are alive.
 *
 *   renewal   every lease/6: renew.lua extends the leases of our attempts.
 *             Its reply says, per (slot, serial), whether the lease is
 *             still this attempt's: a confirmed renewal proves the lease
 *             from its send time on and moves the attempt's freeze point
 *             (fence.h) to 0.65 lease after it -- thawing it if it was
 *             frozen -- while a lost one kills the attempt at once. It also
 *             says whether a cancel was requested.
 *   reaper    every lease/6, jittered ±20% so a fleet does not reap in
 *             step: reap.lua takes back jobs whose lease expired. Any live
 *             worker does it; the script re-checks expiry itself, and
 *             gives leases back the time of a Redis outage (lib.lua).
 *   presence  every lease/6: NS:worker:NAME (expires after 3 leases) and
 *             NS:workers (scored on Redis time), for `lanework workers`.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "backoff.h"
#include "dispatch.h"
#include "invariant.h"
#include "fence.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "scripts.h"
#include "tenants.h"
#include "timefmt.h"
#include "worker.h"

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

int64_t lease_freeze_point(const worker *w, int64_t proof)
{
    /* 0.35 lease of margin before the deadline: more than lib.lua's
     * OUTAGE_FRACTION (0.3), the largest forward step of Redis's clock the
     * outage check may leave unnoticed. */
    return proof + w->opt->lease_ms * 65 / 100;
}

int64_t lease_reply_timeout_ms(const worker *w)
{
    /* A renewal sent lease/6 after the last confirmed one and stuck on a
     * dead connection is noticed after this, probed and resent on a fresh
     * connection (redis_async.c: a quarter more for the watchdog, the
     * probe's round trip, a reconnect from 100 ms) before the freeze point
     * at 0.65 lease: 1/6 + 1/4 * 1.25 = 0.48 lease, plus the reconnect.
     * The fixed 10 s the link used before exceeded the fence's slack for
     * every lease under 20 s. At most 10 s, which long leases keep. */
    int64_t ms = w->opt->lease_ms / 4;
    return ms < 10000 ? ms : 10000;
}

static int64_t freeze_point(const worker *w, int64_t proof) { return lease_freeze_point(w, proof); }

void lease_proven(attempt *a, int64_t sent_mono)
{
    worker *w = a->tenant->w;
    if (sent_mono <= a->proof_mono) return;
    /* A confirmation that comes back after the point it would move the
     * freeze to proves nothing now: the lease may have run out while the
     * reply was on its way, and the job gone elsewhere. The renewal sent
     * next (renew_reply) decides. */
    if (freeze_point(w, sent_mono) <= lw_mono_ms()) return;
    a->proof_mono = sent_mono;
    if (a->slot < 0 || !w->fence || a->pid <= 0 || a->reaped) return;
    int64_t frozen = fence_extend(w->fence, a->slot, freeze_point(w, sent_mono));
    int64_t ran = lw_mono_ms() - a->started_mono;
    if (frozen > ran) frozen = ran;
    if (frozen > 0) {
        /* Frozen time is not running time: the timeout waits for it. */
        if (a->timeout_at) a->timeout_at += frozen;
        lw_log_about(LW_LOG_INFO, "lease.thawed", attempt_facts(a, 1),
                     "lease proven again after %.1f s frozen; resuming the attempt", (double)frozen / 1000.0);
    }
}

int64_t lease_freeze_at(const attempt *a)
{
    return freeze_point(a->tenant->w, a->proof_mono);
}

void lease_log_outage(tenant *t, long long gap)
{
    if (gap == 0) return;
    lw_log(LW_LOG_WARN, "lease.outage",
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
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == c->n) {
        redisReply *st = reply->element[0];
        if (reply->element[1]->type == REDIS_REPLY_INTEGER) lease_log_outage(t, reply->element[1]->integer);
        for (size_t i = 0; i < c->n; i++) {
            attempt *a = w->slots[c->slots[i]];
            if (!a || a->serial != c->serials[i]) continue; /* ended meanwhile */
            long long v = st->element[i]->type == REDIS_REPLY_INTEGER ? st->element[i]->integer : 0;
            if (v == 0) {
                lw_log_about(LW_LOG_WARN, "lease.lost", attempt_facts(a, 1),
                             "lease lost (the job was taken back); killing the attempt");
                dispatch_stop(a, STOP_LOST);
                continue;
            }
            lease_proven(a, c->sent_mono);
            if (v == 2) {
                lw_log_about(LW_LOG_INFO, "job.cancel", attempt_facts(a, 1), "cancel requested; stopping the attempt");
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
    if (reply && lw_mono_ms() - c->sent_mono > w->opt->lease_ms / 6) again = 1;
    renew_call_free(c);
    if (again) lease_renew_tenant(t);
    tenant_unref(t);
}

void lease_renew_tenant(tenant *t)
{
    worker *w = t->w;
    if (t->renew_inflight) {
        t->renew_again = 1;
        return;
    }
    if (!lw_redis_is_ready(t->link->r)) return;
    size_t n = 0;
    for (attempt *at = w->running; at; at = at->next)
        if (at->tenant == t && !at->timed_out_hard && attempt_stop_reason(at) != STOP_LOST) n++;
    if (n == 0) return;
    renew_call *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(n, sizeof *c->slots)) || !(c->serials = calloc(n, sizeof *c->serials))) {
        if (c) renew_call_free(c);
        return;
    }
    lw_argv a;
    char key[400];
    lw_argv_init(&a);
    lw_key(key, sizeof key, t->prefix, "events", NULL);
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, t->prefix);
    lw_argv_addi(&a, t->set.events_max);
    lw_argv_addi(&a, w->opt->lease_ms);
    lw_argv_addi(&a, (int64_t)n);
    for (attempt *at = w->running; at; at = at->next) {
        if (at->tenant != t || at->timed_out_hard || attempt_stop_reason(at) == STOP_LOST) continue;
        lw_argv_adds(&a, at->id);
        LW_ASSERT(at->token && at->token[0]); /* a renewal names the lease by its token */
        lw_argv_adds(&a, at->token);
        c->slots[c->n] = at->slot;
        c->serials[c->n] = at->serial;
        c->n++;
    }
    c->t = t;
    c->sent_mono = lw_mono_ms();
    tenant_ref(t);
    if (lw_redis_script(t->link->r, &lw_script_renew, 1, &a, renew_reply, c) == 0) {
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
        if (t->running) lease_renew_tenant(t);
    for (tenant *t = w->retired; t; t = t->next)
        if (t->running) lease_renew_tenant(t);
    presence_update(w);
}

static void reap_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    tenant *t = ud;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY) {
        redisReply *pairs = reply->element[0];
        if (reply->element[1]->type == REDIS_REPLY_INTEGER) lease_log_outage(t, reply->element[1]->integer);
        for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
            const char *id = pairs->element[i]->str, *what = pairs->element[i + 1]->str;
            lw_log_facts job = {.job = id, .tenant = t->cfg->name};
            if (!strcmp(what, "queued"))
                lw_log_about(LW_LOG_WARN, "job.lost", job, "its worker's lease expired; retrying it");
            else if (!strcmp(what, "failed"))
                lw_log_about(LW_LOG_WARN, "job.lost", job, "its worker's lease expired on its last attempt; failed");
            else if (!strcmp(what, "cancelled"))
                lw_log_about(LW_LOG_WARN, "job.lost", job,
                             "its worker's lease expired; its cancel was pending: cancelled");
            else if (strcmp(what, "missing"))
                lw_log_about(LW_LOG_ERROR, "job.corrupt", job, "skipped by the reaper: %s", what);
        }
        if (pairs->elements) tenant_work_maybe(t);
    } else if (reply) {
        tenant_redis_error(t, "reaper", reply);
    }
    worker_kick(t->w);
    tenant_unref(t);
}

static void reap_tenant(tenant *t)
{
    worker *w = t->w;
    if (!lw_redis_is_ready(t->link->r)) return;
    lw_argv a;
    char key[400];
    const char *keys[4] = {"events", "queues", "stats", "failed"};
    lw_argv_init(&a);
    for (int i = 0; i < 4; i++) {
        lw_key(key, sizeof key, t->prefix, keys[i], NULL);
        lw_argv_adds(&a, key);
    }
    lw_argv_adds(&a, t->prefix);
    lw_argv_addi(&a, t->set.events_max);
    lw_argv_addi(&a, t->set.keep_failed_s);
    lw_argv_addi(&a, REAP_LIMIT);
    lw_argv_addi(&a, w->opt->lease_ms);
    tenant_ref(t);
    if (lw_redis_script(t->link->r, &lw_script_reap, 4, &a, reap_reply, t)) tenant_unref(t);
    lw_argv_clear(&a);
}

static void schedule_reap(worker *w)
{
    /* lease/6 ± 20%: deaths are noticed within about lease + lease/5, and
     * a live worker never leaves a gap that observe_outage (lib.lua, 0.3
     * lease) would take for an outage. */
    int64_t base = w->opt->lease_ms / 6;
    int64_t ms = base * 8 / 10 + (int64_t)(lw_random64() % (uint64_t)(base * 4 / 10 + 1));
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(w->reap_timer, &tv);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    for (tenant *t = w->tenants; t; t = t->next) reap_tenant(t);
    schedule_reap(w);
}

void lease_start(worker *w)
{
    /* Every sixth of a lease: an attempt is frozen at 0.65 lease without a
     * confirmed renewal (fence.h), so three renewals may go unanswered. */
    int64_t ms = w->opt->lease_ms / 6;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    w->renew_timer = event_new(w->base, -1, EV_PERSIST, renew_cb, w);
    w->reap_timer = evtimer_new(w->base, reap_cb, w);
    if (w->renew_timer) event_add(w->renew_timer, &tv);
    if (w->reap_timer) schedule_reap(w);
}

/* ---- presence ---- */

/* The directory is informational: a refusal (a tenant's ACL user without
 * the NS:worker* grants, deploy/redis-acl) is said once and tolerated. */
static void presence_reply(lw_redis *r, redisReply *reply, void *ud)
{
    worker *w = ud;
    if (!reply || reply->type != REDIS_REPLY_ERROR) return;
    lw_log(lw_log_gate_level(&w->presence_gate, reply->str, LW_LOG_WARN, INT64_MAX), "presence.error",
           "worker directory on %s not updated: %s; `lanework workers` will not list this worker (jobs are not affected)",
           lw_redis_name(r), reply->str);
}

static const char *state_name(worker_state s)
{
    switch (s) {
    case W_RUNNING: return "running";
    case W_QUIET: return "quiet";
    case W_DRAINING: return "draining";
    default: return "stopping";
    }
}

/* Writes the directory entry, scored on Redis time `now` (ms): a worker
 * whose clock is off must neither look stale nor, trimming names a day
 * old with its own clock, drop its peers from the directory. */
static void presence_write(worker *w, int64_t now)
{
    if (w->state == W_EXITING || !w->home || !lw_redis_is_ready(w->home->r)) return;
    const worker_options *o = w->opt;
    char key[600], host[256] = "", tenants[2048] = "", queues[1024] = "";
    gethostname(host, sizeof host - 1);
    for (tenant *t = w->tenants; t; t = t->next) {
        size_t l = strlen(tenants);
        snprintf(tenants + l, sizeof tenants - l, "%s%s", l ? "," : "", t->cfg->name);
    }
    for (char **q = o->queues; *q; q++) {
        size_t l = strlen(queues);
        snprintf(queues + l, sizeof queues - l, "%s%s", l ? "," : "", *q);
    }
    if (!w->started_redis) w->started_redis = now - (lw_mono_ms() - w->started_mono);
    lw_argv a;
    lw_argv_init(&a);
    lw_key_global(key, sizeof key, o->common.ns, "worker:");
    size_t kl = strlen(key);
    snprintf(key + kl, sizeof key - kl, "%s", o->name);
    lw_argv_adds(&a, "HSET");
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, "name"), lw_argv_adds(&a, o->name);
    lw_argv_adds(&a, "host"), lw_argv_adds(&a, host);
    lw_argv_adds(&a, "pid"), lw_argv_addi(&a, (int64_t)getpid());
    lw_argv_adds(&a, "started"), lw_argv_addi(&a, w->started_redis);
    lw_argv_adds(&a, "concurrency"), lw_argv_addi(&a, o->concurrency);
    lw_argv_adds(&a, "isolation"), lw_argv_adds(&a, o->isolation == ISOLATION_FORK ? "fork" : "thread");
    lw_argv_adds(&a, "tenants"), lw_argv_adds(&a, tenants);
    lw_argv_adds(&a, "queues"), lw_argv_adds(&a, queues);
    lw_argv_adds(&a, "active"), lw_argv_addi(&a, w->nrunning);
    lw_argv_adds(&a, "processed"), lw_argv_addi(&a, w->ended_total);
    lw_argv_adds(&a, "state"), lw_argv_adds(&a, state_name(w->state));
    /* `lanework workers` shows "lost" once the heartbeat is older than this. */
    lw_argv_adds(&a, "lease"), lw_argv_addi(&a, o->lease_ms);
    w->shown_active = w->nrunning;
    w->shown_processed = w->ended_total;
    w->shown_state = (int)w->state;
    lw_argv_adds(&a, "version"), lw_argv_adds(&a, LW_VERSION);
    lw_redis_command(w->home->r, &a, presence_reply, w);

    lw_argv_reset(&a);
    lw_argv_adds(&a, "EXPIRE");
    lw_argv_adds(&a, key);
    lw_argv_addi(&a, (o->lease_ms * 3 + 999) / 1000);
    lw_redis_command(w->home->r, &a, presence_reply, w);

    lw_argv_reset(&a);
    lw_key_global(key, sizeof key, o->common.ns, "workers");
    lw_argv_adds(&a, "ZADD");
    lw_argv_adds(&a, key);
    lw_argv_addi(&a, now);
    lw_argv_adds(&a, o->name);
    lw_redis_command(w->home->r, &a, presence_reply, w);

    /* Dead workers' names fall out after a day: the set stays bounded. */
    lw_argv_reset(&a);
    lw_argv_adds(&a, "ZREMRANGEBYSCORE");
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, "-inf");
    lw_argv_addi(&a, now - 24LL * 3600 * 1000);
    lw_redis_command(w->home->r, &a, presence_reply, w);
    lw_argv_clear(&a);
}

static void time_reply(lw_redis *r, redisReply *reply, void *ud)
{
    worker *w = ud;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING) {
        if (reply) presence_reply(r, reply, ud);
        return;
    }
    int64_t now = strtoll(reply->element[0]->str, NULL, 10) * 1000 + strtoll(reply->element[1]->str, NULL, 10) / 1000;
    presence_write(w, now);
}

void presence_update(worker *w)
{
    /* Once exiting, an update would race the removal and bring the entry
     * back after its DEL. The heartbeat is written on the reply to TIME:
     * Redis's clock, not ours. (Not a script: the per-tenant ACL users of
     * deploy/redis-acl may write the directory but not read it, and a
     * script's declared keys need both.) */
    if (w->state == W_EXITING || !w->home || !lw_redis_is_ready(w->home->r)) return;
    lw_argv a;
    lw_argv_init(&a);
    lw_argv_adds(&a, "TIME");
    lw_redis_command(w->home->r, &a, time_reply, w);
    lw_argv_clear(&a);
}

#define PRESENCE_SOON_MS 250

static void presence_soon_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    presence_update(arg);
}

void presence_soon(worker *w)
{
    if (w->shown_active == w->nrunning && w->shown_processed == w->ended_total && w->shown_state == (int)w->state)
        return;
    if (!w->presence_timer) w->presence_timer = evtimer_new(w->base, presence_soon_cb, w);
    if (!w->presence_timer || evtimer_pending(w->presence_timer, NULL)) return;
    struct timeval tv = {0, PRESENCE_SOON_MS * 1000};
    evtimer_add(w->presence_timer, &tv);
}

/* The reply to the removal's last command: the loop may stop now. */
static void presence_removed(lw_redis *r, redisReply *reply, void *ud)
{
    presence_reply(r, reply, ud);
    worker_exit_ready(ud);
}

int presence_remove(worker *w)
{
    if (!w->home || !lw_redis_is_ready(w->home->r)) return 0;
    const worker_options *o = w->opt;
    char key[600];
    lw_argv a;
    lw_argv_init(&a);
    lw_key_global(key, sizeof key, o->common.ns, "worker:");
    size_t kl = strlen(key);
    snprintf(key + kl, sizeof key - kl, "%s", o->name);
    lw_argv_adds(&a, "DEL");
    lw_argv_adds(&a, key);
    lw_redis_command(w->home->r, &a, presence_reply, w);
    lw_argv_reset(&a);
    lw_key_global(key, sizeof key, o->common.ns, "workers");
    lw_argv_adds(&a, "ZREM");
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, o->name);
    lw_redis_command(w->home->r, &a, presence_removed, w);
    lw_argv_clear(&a);
    return 1;
}
