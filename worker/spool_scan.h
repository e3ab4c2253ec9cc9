/*
 * spool_scan.h — enqueueing the entries of a tenant's spools (spool_scan.c).
 */
#ifndef LW_SPOOL_SCAN_H
#define LW_SPOOL_SCAN_H

#include "worker.h"

#define SPOOL_RESCAN 1      /* a full scan of t's spools, summary at debug level */
#define SPOOL_RESCAN_LOUD 2 /* the same, summary at info (start, SIGHUP, Redis back) */
/* Sends the scans t needs, if its Redis is ready (from the pump). */
void spool_scan_tenant(tenant *t);
/* Entry `name` appeared in t's spool number `spool`: read it soon. */
void spool_scan_name(tenant *t, size_t spool, const char *name);
/* The same for every serving tenant whose spool is `spool`. */
void spool_scan_name_all(worker *w, const char *spool, const char *name);
/* Asks every serving tenant with spools for a full scan (flags: SPOOL_RESCAN*). */
void spool_rescan_all(worker *w, int flags);
/* Frees t's scan bookkeeping (tenant_unref). */
void spool_scan_free(tenant *t);

#endif
