/*
 * tenants.h — building tenants from a registry, links, reloads (tenants.c).
 *
 * The structs (tenant, rlink, regref) are in worker.h.
 */
#ifndef LW_TENANTS_H
#define LW_TENANTS_H

#include "url.h"
#include "worker.h"

int tenants_build(worker *w, regref *rr, tenant **out, char *err, size_t errlen);
void tenant_unref(tenant *t);
void tenant_ref(tenant *t);
void tenants_reload(worker *w);
tenant *tenant_by_prefix(worker *w, const char *channel);
/* An error reply (or an unexpected one) to the tenant's `what` ("claim",
 * "reaper", ...): one log line naming the tenant, rate-limited so a refusal
 * that persists (an ACL denial) does not flood the log. */
void tenant_redis_error(tenant *t, const char *what, const redisReply *reply);

rlink *link_get(worker *w, const char *url_text, const lw_url *url);
void link_unref(rlink *l);
void regref_unref(regref *r);

/* In a handler process (fork or exec child) of t, before anything of the
 * tenant runs: switch to the tenant's "user". Returns 0, or -1 (the child
 * must exit). Async-signal-safe (tenants.c). */
int child_drop_privileges(const tenant *t);

#endif
