/*
 * settings.h — a tenant's settings that every writer must apply alike: the
 * retention of finished jobs and the cap of the event stream.
 *
 * Where each value comes from, first found wins:
 *   1. the tenant's registry "defaults" (keep_succeeded, keep_failed,
 *      events_max);
 *   2. the worker's own flags/environment, for a tenant that sets nothing.
 * Workers publish the result to Redis (`P settings`, settings.lua) whenever
 * a link becomes ready or the registry is reloaded; every script reads the
 * published values (lib.lua `setting`) and uses the caller's arguments only
 * while nothing is published, so a shell script's CLI, a client or another
 * worker cannot trim the stream or set a retention of its own.
 */
#ifndef LW_SETTINGS_H
#define LW_SETTINGS_H

#include <stdint.h>

#include "config.h"
#include "registry.h"

typedef struct lw_tenant_settings {
    int64_t keep_succeeded_s;
    int64_t keep_failed_s;
    int64_t events_max;
    /* Which of the three came from the registry (1) rather than flags (0). */
    int from_registry[3];
} lw_tenant_settings;

/* Fills *out with the settings of tenant `t` (NULL: no registry entry) under
 * config `c`: each value is the registry's when it is set there (> 0), else
 * c's. Both are borrowed for the call; `out` keeps no pointer into them.
 * Cannot fail. */
void lw_settings_resolve(lw_tenant_settings *out, const lw_tenant *t, const lw_config *c);

#endif
