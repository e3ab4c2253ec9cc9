/*
 * tenants.c — tenants and their Redis links: references, lookups, errors.
 *
 * Ownership: the worker's `tenants` and `retired` lists hold one reference
 * to each tenant; each attempt and each Redis call in flight holds another.
 * A tenant holds its registry and its link. Links are shared by every tenant
 * on the same Redis URL and freed (deferred, never inside one of their own
 * callbacks) when the last tenant lets go.
 *
 * Building tenants and reloading the registry is reload.c's (a layer up:
 * it binds modules and syncs spool watches). A link's callbacks only set
 * flags and kick (kick.h): the pump decides what to send.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tenants.h"

#include "invariant.h"
#include "slot.h"
#include "kick.h"
#include "lease_rules.h"
#include "log.h"
#include "partition.h"
#include "sigfork.h"
#include "spool_pending.h"
#include "timefmt.h"

/* ---- registries ---- */

void regref_unref(regref *r)
{
    LW_ASSERT(!r || r->refs > 0); /* a reference given back twice */
    if (!r || --r->refs > 0)
        return;
    lw_registry_free(r->reg);
    free(r);
}

/* ---- links ---- */

static void link_ready(lw_redis *r, void *ud)
{
    rlink *l = ud;
    worker *w = l->w;
    const char *policy = lw_redis_maxmemory_policy(r), *why = lw_redis_maxmemory_policy_error(r);
    if (why)
        /* An ACL user is rightly denied CONFIG: say the check was skipped,
         * and go on. */
        lw_log(
            lw_log_gate_level(&l->policy_gate, why, LW_LOG_WARN, 3600000), "redis.eviction",
            "%s: could not check maxmemory-policy (CONFIG GET refused: %s); make sure it is noeviction, or Redis may evict queued jobs under memory pressure",
            lw_redis_name(r), why);
    else if (strcmp(policy, "noeviction") != 0)
        lw_log(
            lw_log_gate_level(&l->policy_gate, policy, LW_LOG_WARN, 3600000), "redis.eviction",
            "%s: maxmemory-policy is %s, not noeviction: Redis may evict queued jobs under memory pressure",
            lw_redis_name(r), policy[0] ? policy : "unknown");
    /* Back after an outage: our attempts may be frozen (fence.h) until a
     * renewal proves their leases, and work may be waiting. The pump
     * publishes the settings first (the claims apply them), then renews
     * (worker.c, tenant_flags). */
    for (tenant *t = w->tenants; t; t = t->next)
        if (t->link == l) {
            tenant_link_ready(t);
            /* Jobs spooled while Redis was away (enqueue --spool accepts
             * them) are enqueued now, not at the next rescan. */
            if (tenant_nspools(t))
                t->spool_pending |= SPOOL_RESCAN_LOUD;
        }
    for (tenant *t = w->retired; t; t = t->next)
        if (t->link == l && t->running)
            tenant_renew_soon(t);
    if (l == w->home || l == w->home_set)
        worker_presence_soon(w);
    worker_kick(w);
}

static void link_message(lw_redis *r, const char *channel, const char *message, size_t len,
                         void *ud)
{
    (void)r;
    rlink *l = ud;
    tenant *t = tenant_by_prefix(l->w, channel);
    if (!t)
        return;
    const char *suffix = channel + strlen(t->prefix);
    if (!strcmp(suffix, "wake")) {
        /* "@MS": a job falls due MS from now (lib.lua, publish_due); any
         * other payload: a ready list gained work. */
        if (len > 1 && message[0] == '@') {
            char num[24];
            size_t n = len - 1 < sizeof num - 1 ? len - 1 : sizeof num - 1;
            memcpy(num, message + 1, n);
            num[n] = '\0';
            char *end;
            long long ms = strtoll(num, &end, 10);
            if (end != num && *end == '\0' && ms >= 0)
                tenant_due_in(t, ms);
        } else {
            tenant_work_maybe(t);
        }
    } else if (!strcmp(suffix, "cancel")) {
        /* The renewal reply carries the cancel requests: correctness does
         * not depend on this message, it only makes cancel prompt. */
        tenant_renew_soon(t);
    }
}

/* A SUBSCRIBE confirmed, or (channel NULL) the pub/sub connection lost.
 * Confirmed: from now on no wake-up of the tenant is missed, but one sent
 * before may have been -- so it claims once now, which finds whatever that
 * wake-up was about, and its idle polls may back off (worker.c). Lost:
 * wake-ups may be missed from now on; every tenant of the link goes back
 * to polling every --poll, starting within one. */
static void link_subscribed(lw_redis *r, const char *channel, void *ud)
{
    (void)r;
    rlink *l = ud;
    worker *w = l->w;
    if (!channel) {
        int64_t soon = lw_mono_ms() + w->opt->poll_ms;
        for (tenant *t = w->tenants; t; t = t->next)
            if (t->link == l && t->wake_live) {
                t->wake_live = 0;
                t->poll_ivl = 0;
                if (t->poll_at > soon)
                    t->poll_at = soon;
            }
        worker_kick(w);
        return;
    }
    tenant *t = tenant_by_prefix(w, channel);
    if (!t || t->link != l || strcmp(channel + strlen(t->prefix), "wake"))
        return;
    t->wake_live = 1;
    tenant_work_maybe(t);
}

/* The hash slot a link to `url` serves for keys like `key`: on a Cluster
 * URL the key's, elsewhere -1 (one link serves every key). */
int link_slot(const lw_url *url, const char *key)
{
    return url->kind == LW_URL_CLUSTER ? lw_key_slot(key, strlen(key)) : -1;
}

rlink *link_get(worker *w, const char *url_text, const lw_url *url, int slot)
{
    for (rlink *l = w->links; l; l = l->next)
        if (!strcmp(l->url_text, url_text) && l->slot == slot) {
            l->refs++;
            return l;
        }
    rlink *l = calloc(1, sizeof *l);
    if (!l || !(l->url_text = strdup(url_text))) {
        free(l);
        return NULL;
    }
    l->w = w;
    l->refs = 1;
    l->slot = slot;
    l->r = lw_redis_new(w->base, url, slot);
    if (!l->r) {
        free(l->url_text);
        free(l);
        return NULL;
    }
    int64_t reply_ms = lease_rules_reply_timeout_ms(w->opt->lease_ms);
    lw_redis_set_reply_timeout(l->r, reply_ms);
    /* A WAIT holds the connection's replies back: it must end well before
     * the watchdog takes the silence for a dead path. */
    int64_t wait_ms =
        reply_ms / 2 < LW_MIN_REPLICAS_WAIT_MS ? reply_ms / 2 : LW_MIN_REPLICAS_WAIT_MS;
    lw_redis_set_min_replicas(l->r, (int)w->opt->common.min_replicas,
                              (int)(wait_ms > 1 ? wait_ms : 1));
    lw_redis_on_ready(l->r, link_ready, l);
    lw_redis_on_message(l->r, link_message, l);
    lw_redis_on_subscribed(l->r, link_subscribed, l);
    l->next = w->links;
    w->links = l;
    return l;
}

static void link_free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    rlink *l = arg;
    lw_redis_free(l->r);
    free(l->url_text);
    free(l);
}

void link_unref(rlink *l)
{
    LW_ASSERT(!l || l->refs > 0);
    if (!l || --l->refs > 0)
        return;
    worker *w = l->w;
    for (rlink **p = &w->links; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    /* We may be inside one of this link's reply callbacks. */
    if (event_base_once(w->base, -1, EV_TIMEOUT, link_free_cb, l, NULL) != 0)
        link_free_cb(-1, 0, l);
}

/* ---- tenants ---- */

void tenant_ref(tenant *t) { t->refs++; }

void tenant_set_caps(tenant *t, int nparts)
{
    char *const *queues = t->w->opt->queues;
    /* Partition 0 sends the whole cap: claim.lua shares it by the count in
     * force there, which this worker may not know yet. */
    for (size_t q = 0; queues[q]; q++) {
        int cap = lw_tenant_queue_cap(t->cfg, queues[q]);
        t->caps[q] = t->part == 0 ? cap : lw_partition_cap_share(cap, nparts, t->part);
    }
}

void tenant_unref(tenant *t)
{
    LW_ASSERT(!t || t->refs > 0);
    if (!t || --t->refs > 0)
        return;
    while (t->out_head) {
        /* Only reachable when the worker gives up on Redis at exit. */
        outcome *o = t->out_head;
        t->out_head = o->next;
        free(o->id), free(o->token), free(o->text), free(o->event_type), free(o);
    }
    if (t->mod && !t->lead) {
        module_unbind(t->mod);
        sigfork_note_dispositions(); /* fini and destructors may have changed some */
    }
    link_unref(t->link);
    regref_unref(t->reg);
    tenant_unref(t->lead);
    free(t->caps);
    free(t->qs);
    free(t->groups);
    spool_pending_free(t);
    for (int i = 0; i < 3; i++)
        free(t->user_env[i]);
    free(t);
}

int child_drop_privileges(const tenant *t)
{
    if (!t->run_as)
        return 0;
    /* Raw system calls: in a child forked from a threaded worker, glibc's
     * set*id wrappers would try to reach threads that are not there. The
     * group list and gid go first, while we may still change them. */
    if (syscall(SYS_setgroups, (size_t)t->ngroups, t->groups) != 0)
        return -1;
    if (syscall(SYS_setresgid, t->gid, t->gid, t->gid) != 0)
        return -1;
    if (syscall(SYS_setresuid, t->uid, t->uid, t->uid) != 0)
        return -1;
    return 0;
}

/* Redis's words for an ACL denial: NOPERM for a command, this text for a
 * command inside a script (Redis 7). */
static int acl_denial(const char *s)
{
    return strncmp(s, "NOPERM", 6) == 0 || strstr(s, "The user executing the script can't") != NULL;
}

void tenant_redis_error(tenant *t, const char *what, const redisReply *reply)
{
    const char *why = reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply";
    char hint[600] = "";
    if (acl_denial(why))
        snprintf(
            hint, sizeof hint,
            " (Redis ACL: the user of %s lacks a permission on %s* that lanework needs; see deploy/redis-acl/README.md)",
            lw_redis_name(t->link->r), t->prefix);
    /* Gated on the reply's text alone: the claim, the reaper and the rest
     * meeting the same refusal make one line a minute, not one each. */
    lw_log(lw_log_gate_level(&t->err_gate, why, LW_LOG_ERROR, 60000), "tenant.redis_error",
           "tenant %s: %s failed: %s%s", t->cfg->name, what, why, hint);
}

tenant *tenant_by_prefix(worker *w, const char *channel)
{
    for (tenant *t = w->tenants; t; t = t->next)
        if (!strncmp(channel, t->prefix, strlen(t->prefix)))
            return t;
    return NULL;
}
