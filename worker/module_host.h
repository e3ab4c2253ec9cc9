/*
 * module_host.h — loading tenant modules (lanework/module.h): dlopen, the
 * ABI check, init and fini. One binding per tenant: two tenants naming the
 * same file share the loaded object (dlopen counts references) but each gets
 * its own init/state.
 */
#ifndef LW_MODULE_HOST_H
#define LW_MODULE_HOST_H

#include <lanework/module.h>
#include <stddef.h>

typedef struct module_binding {
    void *dl;
    const lw_module *mod; /* borrowed from the loaded object */
    void *state;          /* what init returned */
    char *path;           /* owned */
    int *fds;             /* owned: fds the module opened while loading and in
                             init, ascending: a fork-isolation handler keeps
                             these and nothing else of the worker's */
    size_t nfds;
} module_binding;

/* Loads `path`, checks its ABI, calls init(tenant, config_json). Returns a
 * binding the caller releases with module_unbind, or NULL with "PATH: why" in
 * err (the word "abi" names an ABI mismatch). */
module_binding *module_bind(const char *path, const char *tenant, const char *config_json,
                            char *err, size_t errlen);
/* Calls fini and unloads. NULL is fine. */
void module_unbind(module_binding *b);
/* In a fork-isolation handler process: closes every fd above 2 but `keep`
 * and those the module opened itself while loading (b->fds), so tenant
 * code holds none of the worker's (Redis connections, the signal pipe,
 * the HTTP listener, other attempts' pipes). Async-signal-safe. */
void module_child_keep_only(const module_binding *b, int keep);
/* 1 when the module handles `kind` (its kinds list holds it, or is NULL). */
int module_handles(const module_binding *b, const char *kind);

#endif
