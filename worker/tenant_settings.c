/*
 * tenant_settings.c — publishing what only a worker knows of a tenant:
 * its settings (common/settings.h), which every writer's scripts take from
 * Redis, and the kinds its module serves, which the CLI checks enqueues
 * against (enqueue-cli/kinds.c).
 *
 * A worker publishes whenever the tenant's link becomes ready (a fresh
 * Redis, or one restored, may hold none or old ones) and after a reload,
 * before its first claim on that link: commands on one connection run in
 * order, so its own scripts already apply them. Values set in the registry
 * are the fleet's word. Values from this worker's flags are the fallback of
 * a tenant that sets nothing; when another worker published different ones
 * the last to start wins, and the log says so, naming the registry field
 * that would make it one value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "keys.h"
#include "kick.h"
#include "log.h"
#include "partition.h"
#include "script_args.h"
#include "script_replies.h"
#include "scripts.h"
#include "tenant_settings.h"
#include "state.h"
#include "tenants.h"
#include "timefmt.h"

/* How often a refused partition count is asked for again. settings.lua
 * refuses it while partition 0 holds a job waiting, running or failed and
 * kept; one script call this often per tenant in that state costs nothing,
 * and an operator who drained the tenant sees the count apply within it. */
#define TENANT_PARTS_REPUBLISH_MS 10000

static const char *const NAMES[3] = {"keep_succeeded", "keep_failed", "events_max"};

static int64_t value_of(const lw_tenant_settings *s, int i)
{
    return i == 0 ? s->keep_succeeded_s : i == 1 ? s->keep_failed_s : s->events_max;
}

/* settings.lua's last entry for partition 0: the partition count in force
 * (it changes only on an empty tenant). A count other than the registry's
 * is said at error, once a minute while it lasts: enqueuers route by the
 * one in force, so partitions this worker has no struct for are not served
 * by it. */
static void partitions_in_force(tenant *t, const lw_settings_reply *got)
{
    lw_settings_old prev;
    lw_settings_old_at(got, 3, &prev);
    long k = strtol(prev.value.s, NULL, 10);
    t->nparts = k >= 1 && k <= LW_PARTITIONS_MAX ? (int)k : 1;
    /* This worker serves the count in force whatever its registry says,
     * with the caps shared by it: a worker with an older or newer registry
     * beside the others must neither leave partitions unserved nor run a
     * partition with a share meant for another count. */
    int structs = 0;
    for (tenant *x = t->w->tenants; x; x = x->next)
        if (tenant_lead(x) == t) {
            structs++;
            tenant_set_caps(x, t->nparts);
        }
    if (structs != t->nparts && !t->retired) {
        t->w->parts_resize = 1;
        worker_kick(t->w);
    }
    if (t->nparts == t->cfg->partitions) {
        if (t->parts_retry_at)
            lw_log(
                LW_LOG_INFO, "tenant.partitions",
                "tenant %s: partitions %d now in force, as the registry says (partition 0 drained)",
                t->cfg->name, t->nparts);
        t->parts_retry_at = 0;
        return;
    }
    /* Refused (or the fleet's registries disagree): ask again later, so the
     * count applies once the tenant drains (tenant_settings_retry). */
    t->parts_retry_at = lw_mono_ms() + TENANT_PARTS_REPUBLISH_MS;
    char why[64];
    snprintf(why, sizeof why, "%d/%d", t->nparts, t->cfg->partitions);
    lw_log(
        lw_log_gate_level(&t->parts_gate, why, LW_LOG_ERROR, 60000), "tenant.partitions",
        "tenant %s: the registry says partitions %d, but its jobs are routed over %d: the count changes only while the tenant has no job kept (drain it; DESIGN.md section 11); serving %d",
        t->cfg->name, t->cfg->partitions, t->nparts, t->nparts);
}

static void publish_reply(lw_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    tenant *t = ud;
    lw_settings_reply got;
    size_t want = t->part == 0 ? 4 : 3;
    if (!reply || lw_settings_reply_read(reply, &got, NULL, 0) != 0 || got.n_old != want) {
        /* Scripts fall back to each caller's own values meanwhile; the next
         * link-ready publishes again. */
        if (reply) {
            tenant_redis_error(t, "publishing settings", reply);
            /* Refused (not lost): claims and scans would wait for ever for
             * the count in force; the registry's is the best guess. */
            if (t->part == 0 && t->nparts == 0) {
                t->nparts = t->cfg->partitions;
                worker_kick(t->w);
            }
        }
        tenant_unref(t);
        return;
    }
    for (int i = 0; i < 3; i++) {
        lw_settings_old prev;
        lw_settings_old_at(&got, (size_t)i, &prev);
        const lw_rstr *old = &prev.value;
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)value_of(&t->set, i));
        if (old->len == 0 || strcmp(old->s, now) == 0)
            continue;
        if (t->set.from_registry[i])
            lw_log(LW_LOG_INFO, "tenant.settings", "tenant %s: %s is now %s (registry), was %s",
                   t->cfg->name, NAMES[i], now, old->s);
        else
            lw_log(
                LW_LOG_WARN, "tenant.settings",
                "tenant %s: %s was %s (published by another worker), now %s from this worker's flags; set \"%s\" in the tenant's registry \"defaults\" to give every worker and the CLI one value",
                t->cfg->name, NAMES[i], old->s, now, NAMES[i]);
    }
    if (want == 4) {
        partitions_in_force(t, &got);
        worker_kick(t->w);
    }
    tenant_unref(t);
}

void tenant_settings_publish(tenant *t)
{
    lw_argv a;
    lw_argv_init(&a);
    lw_settings_keys(&a, t->prefix);
    lw_settings_argv_add(&a, &(lw_settings_argv){.prefix = t->prefix,
                                                 .events_cap = t->set.events_max,
                                                 .n = t->part == 0 ? 4 : 3});
    for (int i = 0; i < 3; i++)
        lw_settings_setting_argv_add(
            &a, &(lw_settings_setting_argv){.name = NAMES[i], .value = value_of(&t->set, i)});
    /* Partition 0 holds the count enqueuers route by (settings.lua). */
    if (t->part == 0)
        lw_settings_setting_argv_add(
            &a, &(lw_settings_setting_argv){.name = "partitions", .value = t->cfg->partitions});
    /* Exec keys need no publishing: the registry names them to the CLI. */
    if (t->mod && !t->mod->mod->kinds)
        lw_settings_kind_argv_add(&a, &(lw_settings_kind_argv){.name = "*"});
    else if (t->mod)
        for (const char *const *k = t->mod->mod->kinds; *k; k++)
            lw_settings_kind_argv_add(&a, &(lw_settings_kind_argv){.name = *k});
    tenant_ref(t);
    if (lw_redis_script(t->link->r, &lw_script_settings, LW_SETTINGS_NKEYS, &a, publish_reply, t)) {
        /* Not sent (out of memory, the link going down): claims and spool
         * scans wait for the count in force, so try again at the next
         * pump rather than at the next reconnect. */
        if (t->part == 0 && t->nparts == 0)
            t->link_fresh = 1;
        tenant_unref(t);
    }
    lw_argv_clear(&a);
}

void tenant_settings_retry(tenant *t, int64_t now)
{
    if (t->part != 0 || t->retired || !t->parts_retry_at || now < t->parts_retry_at)
        return;
    /* Not ready: the link's own ready callback publishes when it is. */
    if (!lw_redis_is_ready(t->link->r))
        return;
    /* Pushed on now; the reply sets it again if refused once more. */
    t->parts_retry_at = now + TENANT_PARTS_REPUBLISH_MS;
    tenant_settings_publish(t);
}
