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
} module_binding;

/* Loads `path`, checks its ABI, calls init(tenant, config_json). Returns a
 * binding the caller releases with module_unbind, or NULL with "PATH: why" in
 * err (the word "abi" names an ABI mismatch). */
module_binding *module_bind(const char *path, const char *tenant, const char *config_json,
                            char *err, size_t errlen);
/* Calls fini and unloads. NULL is fine. */
void module_unbind(module_binding *b);
/* 1 when the module handles `kind` (its kinds list holds it, or is NULL). */
int module_handles(const module_binding *b, const char *kind);

#endif
