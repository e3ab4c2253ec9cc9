/*
 * spool_scan.h — enqueueing the entries of a tenant's spools (spool_scan.c).
 */
#ifndef LW_SPOOL_SCAN_H
#define LW_SPOOL_SCAN_H

#include "spool_pending.h"
#include "state.h"

/* Sends the scans t needs, if its Redis is ready (from the pump). */
void spool_scan_tenant(tenant *t);

#endif
