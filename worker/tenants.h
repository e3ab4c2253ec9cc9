/*
 * tenants.h — tenants and the Redis links they share: references, lookups,
 * error lines (tenants.c). The structs (tenant, rlink, regref) are in
 * state.h; building tenants from a registry is reload.h's.
 */
#ifndef LW_TENANTS_H
#define LW_TENANTS_H

#include "state.h"
#include "url.h"

/* Sets t's caps (max_active of each of the worker's queues) to its share of
 * the registry's caps among `nparts` partitions (lw_partition_cap_share);
 * partition 0's are the whole caps, shared by claim.lua itself. */
void tenant_set_caps(tenant *t, int nparts);

/* Takes one more reference on t. */
void tenant_ref(tenant *t);
/* Drops a reference; the last one frees t, its outcomes still queued (only
 * at a forced exit), its module binding, and its link and registry
 * references. NULL is ignored. */
void tenant_unref(tenant *t);
/* The serving tenant whose key prefix starts `channel` (a pub/sub channel
 * name), or NULL; borrowed. */
tenant *tenant_by_prefix(worker *w, const char *channel);
/* An error reply (or an unexpected one) to the tenant's `what` ("claim",
 * "reaper", ...): one log line naming the tenant, rate-limited so a refusal
 * that persists (an ACL denial) does not flood the log. */
void tenant_redis_error(tenant *t, const char *what, const redisReply *reply);

/* The hash slot a link to `url` serves for keys like `key`: on a Cluster
 * URL the key's (slot.h), elsewhere -1 (one link serves every key). */
int link_slot(const lw_url *url, const char *key);
/* The link to `url_text` for `slot` (link_slot; the configured text and the
 * slot are the sharing key), shared or new; one reference for the caller.
 * NULL on OOM. */
rlink *link_get(worker *w, const char *url_text, const lw_url *url, int slot);
/* Drops a reference; the last frees the link on the next loop turn (never
 * inside one of its own callbacks). NULL is ignored. */
void link_unref(rlink *l);
/* Drops a reference to a shared registry; the last frees it. */
void regref_unref(regref *r);

/* In a handler process (fork or exec child) of t, before anything of the
 * tenant runs: switch to the tenant's "user". Returns 0, or -1 (the child
 * must exit). Async-signal-safe. */
int child_drop_privileges(const tenant *t);

#endif
