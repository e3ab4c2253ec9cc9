/* kick.c — flags plus worker_kick: how lower layers ask for the pump
 * (kick.h). Nothing here decides anything; worker.c reads the flags. */
#include "kick.h"

#include <event2/event.h>

#include "timefmt.h"

void worker_kick(worker *w)
{
    if (w->pump_ev && !event_pending(w->pump_ev, EV_TIMEOUT, NULL))
        event_active(w->pump_ev, EV_TIMEOUT, 0);
}

void tenant_work_maybe(tenant *t)
{
    t->work_seq++;
    t->idle = 0;
    worker_kick(t->w);
}

void tenant_due_in(tenant *t, int64_t delay_ms)
{
    int64_t at = lw_mono_ms() + delay_ms;
    /* A claim in flight answers with the schedule as it was before this:
     * remember the announcement for its reply (claim.c). */
    if (t->claim_inflight && (t->due_hint < 0 || at < t->due_hint))
        t->due_hint = at;
    if (t->due_mono < 0 || at < t->due_mono)
        t->due_mono = at;
    worker_kick(t->w);
}

void tenant_set_oom(tenant *t, int oom)
{
    if (oom == t->oom)
        return;
    t->oom = oom;
    if (oom)
        lw_log(
            lw_log_gate_level(&t->oom_gate, "oom", LW_LOG_ERROR, 60000), "redis.oom",
            "tenant %s: Redis %s is at maxmemory (noeviction): claiming nothing until memory is freed; outcomes, lease renewals and the reaper go on",
            t->cfg->name, lw_redis_name(t->link->r));
    else
        lw_log(LW_LOG_WARN, "redis.oom", "tenant %s: Redis %s takes claims again", t->cfg->name,
               lw_redis_name(t->link->r));
}

void tenant_link_ready(tenant *t)
{
    t->link_fresh = 1;
    tenant_work_maybe(t);
}

void tenant_renew_soon(tenant *t)
{
    t->renew_wanted = 1;
    worker_kick(t->w);
}

void worker_presence_soon(worker *w)
{
    w->presence_wanted = 1;
    worker_kick(w);
}

void worker_exit_ready(worker *w) { event_base_loopbreak(w->base); }
