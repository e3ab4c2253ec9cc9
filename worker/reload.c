/*
 * reload.c — tenants built from a registry, at start and on SIGHUP.
 *
 * Reload: the new registry is loaded and every tenant built from it before
 * anything changes; any failure keeps the old registry whole. A tenant whose
 * entry did not change keeps its runtime (module state, link); others are
 * retired — they keep serving the attempts they run and record their
 * outcomes, and are dropped once idle — and replaced.
 */
#include "reload.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "kick.h"
#include "log.h"
#include "partition.h"
#include "sigfork.h"
#include "spool_pending.h"
#include "spool_watch.h"
#include "tenant_settings.h"
#include "tenants.h"

/* Resolves the registry's "user" (a name, or a numeric uid) for t. The
 * switch itself happens in each handler process (child_drop_privileges). */
static int resolve_user(tenant *t, char *err, size_t errlen)
{
    const char *u = t->cfg->user;
    if (!u)
        return 0;
    char buf[16384];
    struct passwd pw, *found = NULL;
    int rc = getpwnam_r(u, &pw, buf, sizeof buf, &found);
    if (!found) {
        char *end;
        long uid = strtol(u, &end, 10);
        if (*u && !*end && uid >= 0)
            rc = getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &found);
    }
    if (!found) {
        snprintf(err, errlen, "%s: tenant %s: user \"%s\": %s", t->cfg->source, t->cfg->name, u,
                 rc ? strerror(rc) : "no such user on this host");
        return -1;
    }
    if (pw.pw_uid == geteuid() && pw.pw_gid == getegid()) {
        /* The worker's own user: nothing to switch (and a worker that is
         * not root could not call setgroups). */
        return 0;
    }
    if (geteuid() != 0) {
        snprintf(
            err, errlen,
            "%s: tenant %s: user \"%s\": handlers can run as another user only when the worker runs as root (it runs as uid %ld)",
            t->cfg->source, t->cfg->name, u, (long)geteuid());
        return -1;
    }
    if (t->mod && t->w->opt->isolation == ISOLATION_THREAD) {
        snprintf(
            err, errlen,
            "%s: tenant %s: user \"%s\" cannot apply to module handlers in --isolation thread (they run inside the worker); use --isolation fork",
            t->cfg->source, t->cfg->name, u);
        return -1;
    }
    int n = 64;
    gid_t *groups = NULL;
    for (int tries = 0; tries < 4; tries++) {
        gid_t *g = realloc(groups, (size_t)n * sizeof *g);
        if (!g)
            break;
        groups = g;
        int want = n;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
            n = want;
            t->groups = groups;
            t->ngroups = n;
            groups = NULL;
            break;
        }
        n = want > n ? want : n * 2;
    }
    free(groups);
    if (!t->groups) {
        snprintf(err, errlen, "%s: tenant %s: user \"%s\": cannot read its groups", t->cfg->source,
                 t->cfg->name, u);
        return -1;
    }
    const char *names[3] = {"HOME", "USER", "LOGNAME"};
    const char *values[3] = {pw.pw_dir, pw.pw_name, pw.pw_name};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(names[i]) + strlen(values[i]) + 2;
        if (!(t->user_env[i] = malloc(len))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        snprintf(t->user_env[i], len, "%s=%s", names[i], values[i]);
    }
    t->uid = pw.pw_uid;
    t->gid = pw.pw_gid;
    t->run_as = 1;
    return 0;
}

static int wanted(const worker *w, const char *name)
{
    if (!w->opt->tenants)
        return 1;
    for (char **p = w->opt->tenants; *p; p++)
        if (!strcmp(*p, name))
            return 1;
    return 0;
}

/* The struct of partition `part` of tenant `cfg` (its caps: build_list);
 * lead: partition 0's (NULL for partition 0 itself), whose module the
 * others use. */
static tenant *tenant_new(worker *w, regref *rr, const lw_tenant *cfg, int part, tenant *lead,
                          char *err, size_t errlen)
{
    const worker_options *o = w->opt;
    tenant *t = calloc(1, sizeof *t);
    size_t nq = 0;
    while (o->queues[nq])
        nq++;
    if (!t || !(t->caps = calloc(nq, sizeof *t->caps))) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->w = w;
    t->refs = 1;
    t->cfg = cfg;
    t->reg = rr;
    rr->refs++;
    t->out_tail = &t->out_head;
    t->due_mono = -1;
    t->due_hint = -1;
    t->finish_limit = 0; /* outcome.c: the full batch */
    t->part = part;
    if (lead) {
        t->lead = lead;
        tenant_ref(lead);
    }
    lw_settings_resolve(&t->set, cfg, &o->common);
    if (lw_partition_prefix(t->prefix, sizeof t->prefix, o->common.ns, cfg->name, part)) {
        snprintf(err, errlen, "tenant %s: name too long for a key prefix", cfg->name);
        goto fail;
    }
    const char *url_text = cfg->redis_url ? cfg->redis_url : o->common.redis_url;
    lw_url *url = lw_url_parse(url_text, err, errlen);
    if (!url)
        goto fail;
    t->link = link_get(w, url_text, url, link_slot(url, t->prefix));
    lw_url_free(url);
    if (!t->link) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (lead) {
        t->mod = lead->mod; /* borrowed: the lead holds it */
    } else if (cfg->module_path) {
        t->mod = module_bind(cfg->module_path, cfg->name, cfg->config_json, err, errlen);
        /* Its constructors and init may have set dispositions, even if the
         * init failed: what fork children reset (sigfork.h). */
        sigfork_note_dispositions();
        if (!t->mod)
            goto fail;
    }
    if (resolve_user(t, err, errlen))
        goto fail;
    char channel[400];
    lw_key(channel, sizeof channel, t->prefix, "wake", NULL);
    lw_redis_subscribe(t->link->r, channel);
    /* A tenant rebuilt by a reload finds its channel confirmed already. */
    t->wake_live = lw_redis_subscribed(t->link->r, channel);
    lw_key(channel, sizeof channel, t->prefix, "cancel", NULL);
    lw_redis_subscribe(t->link->r, channel);
    t->spool_pending = tenant_nspools(t) > 0 ? SPOOL_RESCAN_LOUD : 0;
    return t;
fail:
    tenant_unref(t);
    return NULL;
}

/* Builds the tenant list for registry `rr`, reusing unchanged tenants of
 * `old` (nold entries; their `next` is not read). Returns 0 with the new list
 * in *out (one reference per entry), or -1 with err and nothing changed. */
/* The partition count to build tenant `cfg` with: the count in force, as
 * a struct of it already learned (tenant_settings.c) -- the one enqueuers
 * route by, whatever this registry says -- else the registry's. */
static int count_to_build(tenant *const *old, size_t nold, const lw_tenant *cfg, int *known)
{
    for (size_t k = 0; k < nold; k++)
        if (!old[k]->lead && old[k]->nparts > 0 && !strcmp(old[k]->cfg->name, cfg->name)) {
            *known = 1;
            return old[k]->nparts;
        }
    *known = 0;
    return cfg->partitions;
}

static int build_list(worker *w, regref *rr, tenant *const *old, size_t nold, tenant **out,
                      char *err, size_t errlen)
{
    tenant *head = NULL, **tail = &head;
    const lw_registry *reg = rr->reg;
    *out = NULL;
    if (w->opt->tenants)
        for (char **p = w->opt->tenants; *p; p++)
            if (!lw_registry_find(reg, *p)) {
                snprintf(err, errlen, "%s: --tenant %s: no such tenant in the registry", reg->path,
                         *p);
                return -1;
            }
    tenant **fresh = calloc(reg->ntenants + 1, sizeof *fresh);
    size_t nfresh = 0;
    if (!fresh) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t nslots = 0;
    int known;
    for (size_t i = 0; i < reg->ntenants; i++)
        nslots += (size_t)count_to_build(old, nold, &reg->tenants[i], &known);
    if (nslots > reg->ntenants) {
        tenant **more = realloc(fresh, (nslots + 1) * sizeof *more);
        if (!more) {
            free(fresh);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        fresh = more;
    }
    for (size_t i = 0; i < reg->ntenants; i++) {
        const lw_tenant *cfg = &reg->tenants[i];
        if (!wanted(w, cfg->name))
            continue;
        tenant *lead = NULL;
        int nparts = count_to_build(old, nold, cfg, &known);
        for (int p = 0; p < nparts; p++) {
            tenant *t = NULL;
            for (size_t k = 0; k < nold && !t; k++)
                if (old[k]->part == p && lw_tenant_same_runtime(old[k]->cfg, cfg) &&
                    (p == 0 || old[k]->lead == lead))
                    t = old[k];
            if (t) {
                tenant_ref(t);
            } else if (!(t = tenant_new(w, rr, cfg, p, lead, err, errlen))) {
                for (size_t k = 0; k < nfresh; k++)
                    tenant_unref(fresh[k]);
                free(fresh);
                return -1;
            }
            fresh[nfresh++] = t;
            if (p == 0) {
                lead = t;
                /* Known already (a reload that rebuilds the tenant): no
                 * claim or spool scan waits for the settings reply. */
                if (known)
                    t->nparts = nparts;
            }
            tenant_set_caps(t, nparts); /* a kept struct's count may have changed */
        }
    }
    if (nfresh == 0) {
        free(fresh);
        snprintf(err, errlen, "%s: no tenant to serve", reg->path);
        return -1;
    }
    /* Only now, with nothing left to fail, relink (kept tenants included). */
    for (size_t k = 0; k < nfresh; k++) {
        fresh[k]->next = NULL;
        *tail = fresh[k];
        tail = &fresh[k]->next;
    }
    free(fresh);
    *out = head;
    return 0;
}

int tenants_build(worker *w, regref *rr, tenant **out, char *err, size_t errlen)
{
    return build_list(w, rr, NULL, 0, out, err, errlen);
}

/* Rebuilds the tenant list from registry `rr` (one reference given to
 * this function), keeping unchanged tenants; `why` names the cause in the
 * log ("reloaded", "resized"). On failure everything stays as it was. */
static void apply(worker *w, regref *rr, const char *why)
{
    char err[1024];
    const lw_registry *reg = rr->reg;
    int reloaded = !strcmp(why, "reloaded");
    size_t nold = 0;
    for (tenant *t = w->tenants; t; t = t->next)
        nold++;
    tenant **old = calloc(nold + 1, sizeof *old);
    if (!old) {
        regref_unref(rr);
        lw_log(LW_LOG_ERROR, "registry.reload", "keeping the current tenants: out of memory");
        return;
    }
    nold = 0;
    for (tenant *t = w->tenants; t; t = t->next)
        old[nold++] = t;
    tenant *fresh;
    if (build_list(w, rr, old, nold, &fresh, err, sizeof err)) {
        free(old);
        regref_unref(rr);
        lw_log(LW_LOG_ERROR, "registry.reload", "keeping the current tenants: %s", err);
        return;
    }
    size_t kept = 0, retired = 0, added = 0;
    for (size_t i = 0; i < nold; i++) {
        tenant *t = old[i];
        int still = 0;
        for (tenant *f = fresh; f; f = f->next)
            if (f == t)
                still = 1;
        if (still) {
            /* Same runtime, now described by the new registry. */
            regref *prev = t->reg;
            t->cfg = lw_registry_find(reg, t->cfg->name);
            t->reg = rr;
            rr->refs++;
            regref_unref(prev);
            tenant_unref(t); /* the old list's reference */
            kept++;
        } else {
            t->retired = 1;
            t->next = w->retired;
            w->retired = t; /* the old list's reference moves here */
            retired++;
        }
    }
    for (tenant *f = fresh; f; f = f->next) {
        int was = 0;
        for (size_t i = 0; i < nold; i++)
            if (old[i] == f)
                was = 1;
        if (!was)
            added++;
        if (reloaded && tenant_nspools(f)) {
            /* SIGHUP rescans every spool and reports every bad entry anew
             * (the operator may be checking a fix). */
            f->spool_pending |= SPOOL_RESCAN_LOUD;
            f->nseen = 0;
        }
        lw_settings_resolve(&f->set, f->cfg, &w->opt->common);
        if ((reloaded || !was) && lw_redis_is_ready(f->link->r))
            tenant_settings_publish(f);
    }
    free(old);
    w->tenants = fresh;
    regref *prev = w->reg;
    w->reg = rr;
    regref_unref(prev);
    spool_watch_sync(w->watch);
    lw_log(LW_LOG_INFO, "registry.reload",
           "registry %s %s: %zu tenant(s) kept, %zu added, %zu retired", reg->path, why, kept,
           added, retired);
    worker_kick(w);
}

void tenants_reload(worker *w)
{
    char err[1024];
    lw_registry *reg = lw_registry_load(w->opt->common.registry_path, err, sizeof err);
    if (!reg) {
        lw_log(LW_LOG_ERROR, "registry.reload", "keeping the current registry: %s", err);
        return;
    }
    regref *rr = calloc(1, sizeof *rr);
    if (!rr) {
        lw_registry_free(reg);
        lw_log(LW_LOG_ERROR, "registry.reload", "keeping the current registry: out of memory");
        return;
    }
    rr->reg = reg;
    rr->refs = 1;
    apply(w, rr, "reloaded");
}

void tenants_resize(worker *w)
{
    w->reg->refs++; /* apply's reference: the same registry, rebuilt by the counts in force */
    apply(w, w->reg, "resized to the partition counts in force");
}
