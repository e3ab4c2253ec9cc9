/*
 * presence.c — telling the fleet we are alive (presence.h): NS:worker:NAME
 * (expires after 3 leases) and NS:workers (scored on Redis time), for
 * `lanework workers`; written with every lease renewal round, within 250 ms
 * of a change of counts or state, and removed at exit.
 */
#include "presence.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "config.h"
#include "keys.h"
#include "kick.h"
#include "log.h"
#include "timefmt.h"

/* The directory is informational: a refusal (a tenant's ACL user without
 * the NS:worker* grants, deploy/redis-acl) is said once and tolerated. */
/* NS:worker:NAME, this worker's entry. */
static void entry_key(const worker_options *o, char *key, size_t keylen)
{
    lw_key_global(key, keylen, o->common.ns, "worker:");
    size_t kl = strlen(key);
    snprintf(key + kl, keylen - kl, "%s", o->name);
}

static void presence_reply(lw_redis *r, redisReply *reply, void *ud)
{
    worker *w = ud;
    if (!reply || reply->type != REDIS_REPLY_ERROR)
        return;
    lw_log(
        lw_log_gate_level(&w->presence_gate, reply->str, LW_LOG_WARN, INT64_MAX), "presence.error",
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

/* The two presence keys are in two hash slots (NS:worker:NAME and
 * NS:workers): on a Cluster URL each has a link of its own (w->home and
 * w->home_set); elsewhere they are one link. */
static int presence_links_ready(const worker *w)
{
    return w->home && w->home_set && lw_redis_is_ready(w->home->r) &&
           lw_redis_is_ready(w->home_set->r);
}

/* Writes the directory entry, scored on Redis time `now` (ms): a worker
 * whose clock is off must neither look stale nor, trimming names a day
 * old with its own clock, drop its peers from the directory. */
static void presence_write(worker *w, int64_t now)
{
    if (w->state == W_EXITING || !presence_links_ready(w))
        return;
    const worker_options *o = w->opt;
    char key[600], host[256] = "", tenants[2048] = "", queues[1024] = "";
    gethostname(host, sizeof host - 1);
    for (tenant *t = w->tenants; t; t = t->next) {
        if (t->lead)
            continue; /* a partition: the tenant is named once */
        size_t l = strlen(tenants);
        snprintf(tenants + l, sizeof tenants - l, "%s%s", l ? "," : "", t->cfg->name);
    }
    for (char **q = o->queues; *q; q++) {
        size_t l = strlen(queues);
        snprintf(queues + l, sizeof queues - l, "%s%s", l ? "," : "", *q);
    }
    if (!w->started_redis)
        w->started_redis = now - (lw_mono_ms() - w->started_mono);
    lw_argv a;
    lw_argv_init(&a);
    entry_key(o, key, sizeof key);
    lw_argv_adds(&a, "HSET");
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, "name"), lw_argv_adds(&a, o->name);
    lw_argv_adds(&a, "host"), lw_argv_adds(&a, host);
    lw_argv_adds(&a, "pid"), lw_argv_addi(&a, (int64_t)getpid());
    lw_argv_adds(&a, "started"), lw_argv_addi(&a, w->started_redis);
    lw_argv_adds(&a, "concurrency"), lw_argv_addi(&a, o->concurrency);
    lw_argv_adds(&a, "isolation"), lw_argv_adds(&a, options_isolation_name(o->isolation));
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
    lw_redis_command(w->home_set->r, &a, presence_reply, w);

    /* Dead workers' names fall out after a day: the set stays bounded. */
    lw_argv_reset(&a);
    lw_argv_adds(&a, "ZREMRANGEBYSCORE");
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, "-inf");
    lw_argv_addi(&a, now - 24LL * 3600 * 1000);
    lw_redis_command(w->home_set->r, &a, presence_reply, w);
    lw_argv_clear(&a);
}

static void time_reply(lw_redis *r, redisReply *reply, void *ud)
{
    worker *w = ud;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        if (reply)
            presence_reply(r, reply, ud);
        return;
    }
    int64_t now = strtoll(reply->element[0]->str, NULL, 10) * 1000 +
                  strtoll(reply->element[1]->str, NULL, 10) / 1000;
    presence_write(w, now);
}

void presence_update(worker *w)
{
    /* Once exiting, an update would race the removal and bring the entry
     * back after its DEL. The heartbeat is written on the reply to TIME:
     * Redis's clock, not ours. (Not a script: the per-tenant ACL users of
     * deploy/redis-acl may write the directory but not read it, and a
     * script's declared keys need both.) */
    if (w->state == W_EXITING || !presence_links_ready(w))
        return;
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
    if (w->shown_active == w->nrunning && w->shown_processed == w->ended_total &&
        w->shown_state == (int)w->state)
        return;
    if (!w->presence_timer)
        w->presence_timer = evtimer_new(w->base, presence_soon_cb, w);
    if (!w->presence_timer || evtimer_pending(w->presence_timer, NULL))
        return;
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
    if (!presence_links_ready(w))
        return 0;
    const worker_options *o = w->opt;
    char key[600];
    lw_argv a;
    lw_argv_init(&a);
    entry_key(o, key, sizeof key);
    lw_argv_adds(&a, "DEL");
    lw_argv_adds(&a, key);
    lw_redis_command(w->home->r, &a, presence_reply, w);
    lw_argv_reset(&a);
    lw_key_global(key, sizeof key, o->common.ns, "workers");
    lw_argv_adds(&a, "ZREM");
    lw_argv_adds(&a, key);
    lw_argv_adds(&a, o->name);
    /* Only a command that was sent will call presence_removed: one that
     * could not be (out of memory) must not leave the exit waiting. */
    int sent = lw_redis_command(w->home_set->r, &a, presence_removed, w) == 0;
    lw_argv_clear(&a);
    return sent;
}
