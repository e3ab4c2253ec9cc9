/*
 * reload.h — tenants built from a registry, at start and on SIGHUP
 * (reload.c).
 */
#ifndef LW_RELOAD_H
#define LW_RELOAD_H

#include <stddef.h>

#include "state.h"

/* Builds the tenant list for registry `rr` (each tenant takes a reference
 * on it). Returns 0 with the list in *out (one reference per tenant), or -1
 * with a one-line reason in err and nothing built. */
int tenants_build(worker *w, regref *rr, tenant **out, char *err, size_t errlen);
/* SIGHUP: reloads the registry file. Any failure keeps the current registry
 * whole and logs why; unchanged tenants keep their runtime, the others are
 * retired (finishing their attempts) and replaced. */
void tenants_reload(worker *w);
/* Rebuilds the tenants whose partition count in force (tenant_settings.c)
 * differs from the structs they have: partitions added or retired (after
 * their attempts), caps shared anew. Asked for with worker.parts_resize. */
void tenants_resize(worker *w);

#endif
