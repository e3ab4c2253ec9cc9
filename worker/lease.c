/*
 * lease.c — keeping what we run, taking back what the dead ran, and telling
 * the fleet we are alive.
 *
 *   renewal   every lease/3: renew.lua extends the leases of our attempts;
 *             its reply names attempts whose lease we lost (stopped, their
 *             outcome discarded) and attempts whose cancel was requested.
 *   reaper    every lease/3, jittered ±30% so a fleet does not reap in
 *             step: reap.lua takes back jobs whose lease expired. Any live
 *             worker does it; the script re-checks expiry itself.
 *   presence  every lease/3: NS:worker:NAME (expires after 3 leases) and
 *             NS:workers, for `lanework workers`.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "backoff.h"
#include "keys.h"
#include "log.h"
#include "scripts.h"
#include "timefmt.h"
#include "worker.h"

#define REAP_LIMIT 200

static void renew_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    tenant *t = ud;
    t->renew_inflight = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        for (int list = 0; list < 2; list++) {
            redisReply *ids = reply->element[list];
            for (size_t i = 0; i < ids->elements; i++) {
                for (attempt *a = t->w->running; a; a = a->next) {
                    if (a->tenant != t || strcmp(a->id, ids->element[i]->str)) continue;
                    if (list == 0) {
                        lw_log(LW_LOG_WARN, "lease.lost", "job %s: lease lost; stopping the attempt", a->id);
                        dispatch_stop(a, STOP_LOST);
                    } else {
                        lw_log(LW_LOG_INFO, "job.cancel", "job %s: cancel requested; stopping the attempt", a->id);
                        dispatch_stop(a, STOP_CANCEL);
                    }
                    break;
                }
            }
        }
    } else if (reply) {
        tenant_redis_error(t, "lease renewal", reply);
    }
    tenant_unref(t);
}

void lease_renew_tenant(tenant *t)
{
    worker *w = t->w;
    if (t->renew_inflight || !lw_redis_is_ready(t->link->r)) return;
    lw_argv a;
    char key[400];
    lw_argv_init(&a);
    snprintf(key, sizeof key, "%sevents", t->prefix);
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, t->prefix);
    lw_argv_addi(&a, w->opt->common.events_max);
    lw_argv_addi(&a, w->opt->lease_ms);
    lw_argv_addi(&a, 0);
    int64_t n = 0;
    for (attempt *at = w->running; at; at = at->next) {
        if (at->tenant != t || at->timed_out_hard || attempt_stop_reason(at) == STOP_LOST) continue;
        lw_argv_adds(&a, at->id);
        lw_argv_adds(&a, at->token);
        n++;
    }
    if (n > 0) {
        lw_argv_seti(&a, 4, n);
        tenant_ref(t);
        if (lw_redis_script(t->link->r, &lw_script_renew, 1, &a, renew_reply, t) == 0)
            t->renew_inflight = 1;
        else
            tenant_unref(t);
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
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const char *what = reply->element[i + 1]->str;
            if (!strcmp(what, "queued"))
                lw_log(LW_LOG_WARN, "job.lost", "tenant %s: job %s: its worker's lease expired; retrying it",
                       t->cfg->name, reply->element[i]->str);
            else if (!strcmp(what, "failed"))
                lw_log(LW_LOG_WARN, "job.lost", "tenant %s: job %s: its worker's lease expired on its last attempt; failed",
                       t->cfg->name, reply->element[i]->str);
            else if (strcmp(what, "missing"))
                lw_log(LW_LOG_ERROR, "job.corrupt", "tenant %s: job %s skipped by the reaper: %s",
                       t->cfg->name, reply->element[i]->str, what);
        }
        if (reply->elements) t->idle = 0;
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
        snprintf(key, sizeof key, "%s%s", t->prefix, keys[i]);
        lw_argv_adds(&a, key);
    }
    lw_argv_adds(&a, t->prefix);
    lw_argv_addi(&a, w->opt->common.events_max);
    lw_argv_addi(&a, w->opt->common.keep_failed_s);
    lw_argv_addi(&a, REAP_LIMIT);
    tenant_ref(t);
    if (lw_redis_script(t->link->r, &lw_script_reap, 4, &a, reap_reply, t)) tenant_unref(t);
    lw_argv_clear(&a);
}

static void schedule_reap(worker *w)
{
    /* lease/3 ± 30%: deaths are noticed within about lease + lease/3. */
    int64_t base = w->opt->lease_ms / 3;
    int64_t ms = base * 7 / 10 + (int64_t)(lw_random64() % (uint64_t)(base * 6 / 10 + 1));
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
    int64_t ms = w->opt->lease_ms / 3;
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

void presence_update(worker *w)
{
    /* Once exiting, an update would race the removal and bring the entry
     * back after its DEL. */
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
    lw_argv_adds(&a, "started"), lw_argv_addi(&a, w->started_wall);
    lw_argv_adds(&a, "concurrency"), lw_argv_addi(&a, o->concurrency);
    lw_argv_adds(&a, "isolation"), lw_argv_adds(&a, o->isolation == ISOLATION_FORK ? "fork" : "thread");
    lw_argv_adds(&a, "tenants"), lw_argv_adds(&a, tenants);
    lw_argv_adds(&a, "queues"), lw_argv_adds(&a, queues);
    lw_argv_adds(&a, "active"), lw_argv_addi(&a, w->nrunning);
    lw_argv_adds(&a, "processed"), lw_argv_addi(&a, w->ended_total);
    lw_argv_adds(&a, "state"), lw_argv_adds(&a, state_name(w->state));
    lw_argv_adds(&a, "version"), lw_argv_adds(&a, LW_VERSION);
    lw_redis_command(w->home->r, &a, presence_reply, w);

    lw_argv_reset(&a);
    lw_argv_adds(&a, "EXPIRE");
    lw_argv_adds(&a, key);
    lw_argv_addi(&a, (o->lease_ms * 3 + 999) / 1000);
    lw_redis_command(w->home->r, &a, presence_reply, w);

    lw_argv_reset(&a);
    lw_key_global(key, sizeof key, o->common.ns, "workers");
    int64_t now = lw_now_ms();
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
