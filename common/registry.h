/*
 * registry.h — the tenant registry (CONTRACT section 3).
 *
 * PATH is a JSON file holding an array of tenant objects, or a directory
 * whose *.json files each hold one tenant object (read in name order). A
 * registry is immutable once loaded; a reload builds a new one and the old
 * one is freed when nothing uses it any more.
 *
 * Parsing checks everything that can be checked without running anything:
 * JSON syntax, field types, safe names (tenant, exec kinds, spool kinds,
 * queues), positive defaults, duplicate tenants, the per-tenant Redis URL.
 * Loading the module (dlopen, ABI, init) is the worker's job
 * (worker/module_host.c); the CLI learns a module's kinds from what the
 * workers publish (enqueue-cli/kinds.c).
 */
#ifndef LW_REGISTRY_H
#define LW_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "partition.h"

typedef struct lw_exec_handler {
    char *kind;  /* owned */
    char **argv; /* owned, NULL-terminated, argv[0] is the program */
    size_t argc;
    /* The object form {"command": [...], "persistent": true, ...}
     * (CONTRACT section 11): one process serves attempts one after another. */
    int persistent;
    int max_jobs;  /* persistent: replaced after this many attempts; 0: never */
    int idle_exit; /* persistent: stopped after this many seconds idle; 0: never */
} lw_exec_handler;

typedef struct lw_spool_cfg {
    char *kind; /* owned: the kind of the jobs found in `dir` */
    char *dir;  /* owned */
} lw_spool_cfg;

typedef struct lw_queue_cfg {
    char *name;     /* owned */
    int max_active; /* fleet-wide cap; 0: none */
} lw_queue_cfg;

typedef struct lw_job_defaults {
    int attempts;       /* >= 1 */
    int64_t timeout_ms; /* > 0 */
    int64_t backoff_ms; /* >= 0: base of the exponential retry backoff */
    /* Tenant settings every writer applies (settings.h); 0: not set here. */
    int64_t keep_succeeded_s;
    int64_t keep_failed_s;
    int64_t events_max;
} lw_job_defaults;

typedef struct lw_tenant {
    char *name;        /* owned; a safe name */
    char *module_path; /* owned; NULL: no module */
    char *config_json; /* owned; the "config" value as JSON text, "null" when absent */
    lw_exec_handler *execs;
    size_t nexecs;
    lw_spool_cfg *spools;
    size_t nspools;
    lw_queue_cfg *queues;
    size_t nqueues;
    char *redis_url; /* owned; NULL: the default Redis */
    char *user;      /* owned; NULL: handlers run as the worker's user. Else the
                        user (name or uid) exec handlers and fork-isolation
                        handler processes switch to (a worker run as root) */
    lw_job_defaults defaults;
    int partitions; /* >= 1: the keyspaces its lanes are spread over (partition.h) */
    char *source;   /* owned: the file this tenant came from, for messages */
} lw_tenant;

typedef struct lw_registry {
    lw_tenant *tenants;
    size_t ntenants;
    char *path; /* owned */
} lw_registry;

/* Loads PATH (file or directory; borrowed). Beyond lw_registry_parse's
 * checks it refuses two spools (any tenants, any kinds) that are one
 * directory. Returns a new registry the caller frees with
 * lw_registry_free(), owning all it holds, or NULL with "FILE: why" in err
 * (unreadable, not a regular file, too large, bad content, OOM). */
lw_registry *lw_registry_load(const char *path, char *err, size_t errlen);

/* Parses registry text (borrowed): an array of tenant objects, or (when
 * `single` is nonzero) one tenant object. `source` (NULL: "registry") names
 * the text in messages and becomes r->path; relative paths in the text
 * (module, spool dirs) resolve against its directory, not the cwd. Returns
 * a new registry the caller frees with lw_registry_free(), or NULL with
 * "SOURCE: why" in err. */
lw_registry *lw_registry_parse(const char *text, size_t len, const char *source, int single,
                               char *err, size_t errlen);

/* Frees `r` and everything in it: pointers from lw_registry_find() and the
 * tenant lookups die with it. NULL is ignored. */
void lw_registry_free(lw_registry *r);

/* 1 when entries a and b need the same runtime -- module and its config,
 * Redis URL, user, handlers, spools, queues and caps, job defaults -- so a
 * reload keeps the tenant (its module is not loaded again, its attempts go
 * on); 0 when it must be rebuilt. Names must match too; lists are compared
 * in order (a reordered list counts as a change). The tenant settings
 * (keep_succeeded, keep_failed, events_max) are not compared: a reload
 * applies and publishes them either way. */
int lw_tenant_same_runtime(const lw_tenant *a, const lw_tenant *b);

/* Borrowed pointers into the registry (valid until lw_registry_free), or
 * NULL when there is no such entry or an argument is NULL. */
const lw_tenant *lw_registry_find(const lw_registry *r, const char *tenant);
const lw_exec_handler *lw_tenant_exec(const lw_tenant *t, const char *kind);
const lw_spool_cfg *lw_tenant_spool(const lw_tenant *t, const char *kind);
/* The queue's max_active, or 0 when the queue has no cap or is not listed
 * (or t is NULL). */
int lw_tenant_queue_cap(const lw_tenant *t, const char *queue);

#endif
