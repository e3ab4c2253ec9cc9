/* spool_pending.c — what a tenant's spools are waiting for (spool_pending.h):
 * flags and a queue of names, read by spool_scan.c from the pump. */
#include "spool_pending.h"

#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "kick.h"

/* Names waiting for a read; beyond that a full scan is cheaper to keep. */
#define NAMES_MAX 4096

void spool_pending_clear(tenant *t)
{
    for (size_t i = 0; i < t->npend; i++)
        free(t->pend_names[i]);
    t->npend = 0;
}

void spool_pending_name(tenant *t, size_t spool, const char *name)
{
    if (t->npend >= NAMES_MAX || !lw_redis_is_ready(t->link->r)) {
        /* Not enqueueable now: the full scan when Redis is ready sees it. */
        spool_pending_clear(t);
        t->spool_pending |= SPOOL_RESCAN;
        worker_kick(t->w);
        return;
    }
    if (lw_grow((void **)&t->pend_names, &t->pend_cap, t->npend, sizeof *t->pend_names) ||
        lw_grow((void **)&t->pend_spool, &t->pend_scap, t->npend, sizeof *t->pend_spool) ||
        !(t->pend_names[t->npend] = strdup(name))) {
        t->spool_pending |= SPOOL_RESCAN;
    } else {
        t->pend_spool[t->npend++] = spool;
    }
    worker_kick(t->w);
}

void spool_pending_name_all(worker *w, const char *spool, const char *name)
{
    for (tenant *t = w->tenants; t; t = t->next)
        for (size_t i = 0; i < tenant_nspools(t); i++)
            if (!strcmp(t->cfg->spools[i].dir, spool))
                spool_pending_name(t, i, name);
}

void spool_pending_rescan_all(worker *w, int flags)
{
    for (tenant *t = w->tenants; t; t = t->next)
        if (tenant_nspools(t))
            t->spool_pending |= flags;
    worker_kick(w);
}

void spool_pending_free(tenant *t)
{
    spool_pending_clear(t);
    free(t->pend_names);
    free(t->pend_spool);
    free(t->spool_seen);
}
