/*
 * settings.c — tenant settings: the registry's word, else the flags
 * (settings.h).
 */
#include "settings.h"

static int64_t pick(int64_t registry, int64_t flag, int *from_registry)
{
    *from_registry = registry > 0;
    return registry > 0 ? registry : flag;
}

void lw_settings_resolve(lw_tenant_settings *out, const lw_tenant *t, const lw_config *c)
{
    const lw_job_defaults *d = t ? &t->defaults : NULL;
    out->keep_succeeded_s =
        pick(d ? d->keep_succeeded_s : 0, c->keep_succeeded_s, &out->from_registry[0]);
    out->keep_failed_s = pick(d ? d->keep_failed_s : 0, c->keep_failed_s, &out->from_registry[1]);
    out->events_max = pick(d ? d->events_max : 0, c->events_max, &out->from_registry[2]);
}
