/*
 * tenant_settings.h — what this worker publishes of a tenant's settings
 * (tenant_settings.c).
 */
#ifndef LW_TENANT_SETTINGS_H
#define LW_TENANT_SETTINGS_H

#include "state.h"

/* Publishes t->set to Redis (P settings) once t's link is
 * ready; says so when it replaces values another worker published. */
void tenant_settings_publish(tenant *t);

/* Called on the worker's tick (mono ms `now`): publishes partition 0's
 * settings again when the registry asks for a count settings.lua refused
 * and TENANT_PARTS_REPUBLISH_MS passed, so the count applies once partition
 * 0 drains, without a SIGHUP or a reconnect. */
void tenant_settings_retry(tenant *t, int64_t now);

#endif
