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

#endif
