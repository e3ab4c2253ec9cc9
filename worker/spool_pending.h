/*
 * spool_pending.h — what a tenant's spools wait for, as the watcher, the
 * links and reloads say it (spool_pending.c): a full scan (flags in
 * tenant.spool_pending) or entries to read (tenant.pend_names). The pump
 * acts on it (spool_scan.c). Lower than both so that neither calls up.
 */
#ifndef LW_SPOOL_PENDING_H
#define LW_SPOOL_PENDING_H

#include <stddef.h>

#include "state.h"

#define SPOOL_RESCAN 1      /* a full scan of t's spools, summary at debug level */
#define SPOOL_RESCAN_LOUD 2 /* the same, summary at info (start, SIGHUP, Redis back) */

/* Entry `name` (copied) appeared in t's spool number `spool`: read it soon.
 * Too many waiting, Redis away, or no memory: a full scan instead. */
void spool_pending_name(tenant *t, size_t spool, const char *name);
/* The same for every serving tenant whose spool is the directory `spool`. */
void spool_pending_name_all(worker *w, const char *spool, const char *name);
/* Asks every serving tenant with spools for a full scan (SPOOL_RESCAN*). */
void spool_pending_rescan_all(worker *w, int flags);
/* Forgets the names waiting (a full scan reads them too). */
void spool_pending_clear(tenant *t);
/* Frees t's spool bookkeeping: names waiting and bad entries reported
 * (tenant_unref). */
void spool_pending_free(tenant *t);

#endif
